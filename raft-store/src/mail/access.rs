//! Block and allow lists as replicated state: client networks, domains and addresses an
//! operator refuses (or exempts) cluster-wide, so every node answers a client alike and a
//! failover keeps the lists. This module parses and matches patterns and stores entries; the
//! node decides what each list means for a session (`node/src/access.rs`).

pub use mcluster_types::access::*;

use crate::db::CF_ACCESS_LISTS;
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

/// The key of an entry: one per list and pattern, so adding again replaces.
fn key(list: AccessList, pattern: &AccessPattern) -> Vec<u8> {
    format!("{list}:{pattern}").into_bytes()
}

/// Adds (or replaces) an entry, and drops the entries that had expired when it was made: the
/// table holds current entries plus recently expired ones, decided by the command's own time.
pub(crate) fn add(
    reader: &StateReader,
    entry: &AccessEntry,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let own_key = key(entry.list, &entry.pattern);
    for old in reader.access_entries()? {
        let old_key = key(old.list, &old.pattern);
        if !old.active(entry.created_at) && old_key != own_key {
            staged.delete(CF_ACCESS_LISTS, &old_key);
        }
    }
    staged.put(CF_ACCESS_LISTS, &own_key, entry);
    Ok(CommandResult::Done)
}

pub(crate) fn remove(
    reader: &StateReader,
    list: AccessList,
    pattern: &AccessPattern,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let key = key(list, pattern);
    if reader
        .db
        .get::<AccessEntry>(CF_ACCESS_LISTS, &key)?
        .is_none()
    {
        return Ok(CommandResult::Rejected(Rejection::NoAccessEntry(format!(
            "{list} {pattern}"
        ))));
    }
    staged.delete(CF_ACCESS_LISTS, &key);
    Ok(CommandResult::Done)
}

/// Access list reads of the applied state.
impl StateReader {
    /// Every entry of both lists, expired ones included until the next add clears them.
    pub fn access_entries(&self) -> Result<Vec<AccessEntry>, StoreError> {
        self.db.scan(CF_ACCESS_LISTS)
    }

    pub fn access_entry(
        &self,
        list: AccessList,
        pattern: &AccessPattern,
    ) -> Result<Option<AccessEntry>, StoreError> {
        self.db.get(CF_ACCESS_LISTS, &key(list, pattern))
    }
}
