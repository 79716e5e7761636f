//! IMAP's `\Recent` (RFC 3501 2.3.2): a message is recent in exactly one session, the first to
//! select its mailbox after it arrived. Sessions on different nodes, and a session that comes
//! back after a failover, must never both see it, so the claim is replicated: each mailbox has
//! a floor, the highest UID some session has claimed, and `ClaimRecent` raises it and answers
//! the range it covered. Entries apply one after another, so two claims never cover one UID.
//! The floor is kept with the mailbox's UIDVALIDITY: a floor of a deleted (or renamed away)
//! mailbox does not count for a new one of the same name.

use serde::{Deserialize, Serialize};

use crate::db::{CF_SETTINGS, PREFIX_RECENT};
use crate::error::StoreError;
use crate::mail::{mailbox_key, message_key, message_prefix};
use crate::reader::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

/// The key of a mailbox's claim in the settings table.
fn recent_key(account: &str, mailbox: &str) -> Vec<u8> {
    let mut key = PREFIX_RECENT.to_vec();
    key.extend_from_slice(&mailbox_key(account, mailbox));
    key
}

/// What the settings table holds for a mailbox under [`recent_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Claimed {
    uidvalidity: u32,
    up_to: u32,
}

impl StateReader {
    /// The highest UID of `mailbox` (of `uidvalidity`) that a session has claimed as recent;
    /// messages above it are recent to the next session that selects the mailbox.
    pub fn recent_floor(
        &self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<u32, StoreError> {
        let claimed: Option<Claimed> = self.db().get(CF_SETTINGS, &recent_key(account, mailbox))?;
        Ok(claimed
            .filter(|claimed| claimed.uidvalidity == uidvalidity)
            .map_or(0, |claimed| claimed.up_to))
    }

    /// How many messages of `mailbox` no session has claimed yet (STATUS RECENT), counting
    /// keys from the floor on rather than loading the mailbox.
    pub fn unclaimed_messages(&self, account: &str, mailbox: &str) -> Result<u32, StoreError> {
        let Some(found) = self.mailbox(account, mailbox)? else {
            return Ok(0);
        };
        let floor = self.recent_floor(account, mailbox, found.uidvalidity)?;
        let prefix = message_prefix(account, mailbox);
        let start = message_key(account, mailbox, floor.saturating_add(1));
        let mut n = 0;
        for item in self.db().iter_from(crate::db::CF_MESSAGES, &start) {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Forgets the claim of a mailbox being deleted (a mailbox of the same name made later has
/// another UIDVALIDITY, so the claim would not count; this keeps no key behind).
pub(crate) fn forget(account: &str, mailbox: &str, staged: &mut Staged<'_>) {
    staged.delete(CF_SETTINGS, &recent_key(account, mailbox));
}

/// Moves a mailbox's claim to its new name: a RENAME keeps the mailbox's UIDVALIDITY and UIDs,
/// so what a session claimed stays claimed.
pub(crate) fn follow_rename(
    reader: &StateReader,
    account: &str,
    from: &str,
    to: &str,
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    let old = recent_key(account, from);
    if let Some(claimed) = reader.db().get::<Claimed>(CF_SETTINGS, &old)? {
        staged.delete(CF_SETTINGS, &old);
        staged.put(CF_SETTINGS, &recent_key(account, to), &claimed);
    }
    Ok(())
}

/// Forgets the claims of an account's mailboxes (the account is being deleted; `prefix` is
/// `account \0`).
pub(crate) fn forget_account(
    reader: &StateReader,
    prefix: &[u8],
    staged: &mut Staged<'_>,
) -> Result<(), StoreError> {
    let mut claims = PREFIX_RECENT.to_vec();
    claims.extend_from_slice(prefix);
    for (key, _) in reader.db().scan_prefix::<Claimed>(CF_SETTINGS, &claims)? {
        staged.delete(CF_SETTINGS, &key);
    }
    Ok(())
}

/// Raises the floor of `mailbox` to `up_to` (at most its last UID) and answers the UIDs this
/// claim covered: none when another session claimed them first.
pub(crate) fn claim(
    reader: &StateReader,
    account: &str,
    mailbox: &str,
    up_to: u32,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(found) = reader.mailbox(account, mailbox)? else {
        return Ok(CommandResult::Rejected(Rejection::NoSuchMailbox(
            mailbox.to_owned(),
        )));
    };
    let from = reader.recent_floor(account, mailbox, found.uidvalidity)?;
    let to = up_to.min(found.uidnext.saturating_sub(1)).max(from);
    if to > from {
        staged.put(
            CF_SETTINGS,
            &recent_key(account, mailbox),
            &Claimed {
                uidvalidity: found.uidvalidity,
                up_to: to,
            },
        );
    }
    Ok(CommandResult::RecentClaimed {
        uidvalidity: found.uidvalidity,
        from,
        to,
    })
}
