//! DKIM signing keys as replicated state: at most one key per local domain, so every node signs
//! that domain's outbound mail alike whichever one accepts it. A key lives only while its
//! domain does. The keys themselves are made and checked by the node; this module stores them.

pub use mcluster_types::dkim::*;

use crate::db::CF_DKIM_KEYS;
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

/// Sets (or replaces) the key of a local domain.
pub(crate) fn set_key(
    reader: &StateReader,
    key: &DkimKey,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.domain(&key.domain)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchDomain(
            key.domain.clone(),
        )));
    }
    staged.put(CF_DKIM_KEYS, key.domain.as_bytes(), key);
    Ok(CommandResult::Done)
}

pub(crate) fn delete_key(
    reader: &StateReader,
    domain: &str,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.dkim_key(domain)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoDkimKey(
            domain.to_owned(),
        )));
    }
    staged.delete(CF_DKIM_KEYS, domain.as_bytes());
    Ok(CommandResult::Done)
}

/// Removes a domain's key along with the domain (nothing if it has none).
pub(crate) fn delete_key_of_domain(domain: &str, staged: &mut Staged<'_>) {
    staged.delete(CF_DKIM_KEYS, domain.as_bytes());
}

/// DKIM key reads of the applied state.
impl StateReader {
    pub fn dkim_key(&self, domain: &str) -> Result<Option<DkimKey>, StoreError> {
        self.db.get(CF_DKIM_KEYS, domain.as_bytes())
    }

    /// Every domain's key, by domain name.
    pub fn dkim_keys(&self) -> Result<Vec<DkimKey>, StoreError> {
        self.db.scan(CF_DKIM_KEYS)
    }
}
