//! The outbound queue as replicated state: per message its blob, envelope sender, and each
//! remote recipient with its attempts and last error; when the next attempt is due; whether an
//! operator holds it. Deliveries are made by the leader; their results come back as
//! `RecordAttempt` entries, so a new leader resumes exactly where the old one stopped.
//!
//! A queued message holds one reference to its blob (like a mailbox message), released when
//! the entry goes. An entry goes when no recipient is pending and every failure has been
//! reported to the sender (`bounced`), or when an operator deletes it. The queue is indexed
//! by due time (`queue_due`: big-endian due time ++ queue id), so the leader finds due entries
//! without scanning the whole queue.

pub use mcluster_types::queue::*;

use super::{BlobHash, MailOverlay};
use crate::db::{CF_QUEUE, CF_QUEUE_DUE, CF_SETTINGS, KEY_OUTBOUND_POLICY};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{CommandResult, NodeId, Rejection};

pub(crate) fn set_outbound_policy(policy: &OutboundPolicy, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_OUTBOUND_POLICY, policy);
}

fn due_key(at: i64, id: &str) -> Vec<u8> {
    // Times before the epoch sort first; the offset keeps the order of signed values.
    let mut key = ((at as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn store(entry: &QueuedMessage, staged: &mut Staged<'_>) {
    staged.put(CF_QUEUE, entry.id.as_bytes(), entry);
    if !entry.held && entry.has_work() {
        staged.put(CF_QUEUE_DUE, &due_key(entry.due_at(), &entry.id), &());
    }
}

fn unindex(entry: &QueuedMessage, staged: &mut Staged<'_>) {
    staged.delete(CF_QUEUE_DUE, &due_key(entry.due_at(), &entry.id));
}

/// Queues the remote part of an accepted message (within `Deliver`), once per queue id.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue(
    reader: &StateReader,
    overlay: &mut MailOverlay,
    id: &str,
    blob: &BlobHash,
    size: u64,
    replicas: &[NodeId],
    missing: &[NodeId],
    summary: &crate::summary::MessageSummary,
    outbound: &Outbound,
    arrived_at: i64,
    staged: &mut Staged<'_>,
) -> Result<bool, StoreError> {
    if outbound.recipients.is_empty() || reader.queued(id)?.is_some() {
        return Ok(false);
    }
    let entry = QueuedMessage {
        id: id.to_owned(),
        blob: *blob,
        size,
        sender: outbound.sender.clone(),
        recipients: outbound
            .recipients
            .iter()
            .map(|address| QueuedRecipient {
                address: address.clone(),
                state: RecipientState::Pending,
                attempts: 0,
                last_error: None,
            })
            .collect(),
        envid: outbound.envid.clone(),
        ret_full: outbound.ret_full,
        arrived_at,
        attempts: 0,
        next_attempt_at: arrived_at,
        held: false,
        delay_notified: false,
    };
    overlay.add_blob_ref(reader, blob, size, replicas, missing, summary, staged)?;
    store(&entry, staged);
    Ok(true)
}

/// The leader's report of one attempt: per recipient what happened, and when to try the
/// pending ones again. Recipients not named are left as they are. Returns the entry as it is
/// now (None once it is gone: everything delivered or reported).
pub(crate) fn record_attempt(
    reader: &StateReader,
    id: &str,
    outcomes: &[(String, AttemptOutcome)],
    next_attempt_at: i64,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut entry) = reader.queued(id)? else {
        return Ok(CommandResult::Rejected(Rejection::NotQueued(id.to_owned())));
    };
    unindex(&entry, staged);
    entry.attempts += 1;
    for (address, outcome) in outcomes {
        let Some(recipient) = entry
            .recipients
            .iter_mut()
            .find(|r| r.address == *address && r.state == RecipientState::Pending)
        else {
            continue;
        };
        recipient.attempts += 1;
        match outcome {
            AttemptOutcome::Delivered => recipient.state = RecipientState::Delivered,
            AttemptOutcome::Deferred(error) => recipient.last_error = Some(error.clone()),
            AttemptOutcome::Failed(error) => {
                recipient.last_error = Some(error.clone());
                // Nobody to tell when the sender is null: a bounce is never bounced.
                recipient.state = RecipientState::Failed {
                    bounced: entry.sender.is_empty(),
                };
            }
        }
    }
    entry.next_attempt_at = next_attempt_at;
    finish(reader, entry, staged)
}

/// The failure report for these recipients has been queued (or, with a null sender, is not
/// needed): they no longer keep the entry.
pub(crate) fn mark_bounced(
    reader: &StateReader,
    id: &str,
    recipients: &[String],
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut entry) = reader.queued(id)? else {
        return Ok(CommandResult::Rejected(Rejection::NotQueued(id.to_owned())));
    };
    unindex(&entry, staged);
    for recipient in &mut entry.recipients {
        if recipients.contains(&recipient.address)
            && recipient.state == (RecipientState::Failed { bounced: false })
        {
            recipient.state = RecipientState::Failed { bounced: true };
        }
    }
    finish(reader, entry, staged)
}

/// Queues the notice (when there is one to send: `delivery` is None when the sender cannot be
/// reached) and records that it was sent, in one step, so a new leader neither loses nor
/// repeats it. A notice already recorded is not delivered again.
pub(crate) fn notify(
    reader: &StateReader,
    id: &str,
    kind: &NoticeKind,
    delivery: Option<&super::Delivery>,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut entry) = reader.queued(id)? else {
        return Ok(CommandResult::Rejected(Rejection::NotQueued(id.to_owned())));
    };
    let unreported = |entry: &QueuedMessage, address: &str| {
        entry
            .unreported()
            .any(|recipient| recipient.address == address)
    };
    let due = match kind {
        NoticeKind::Failures(recipients) => recipients.iter().any(|r| unreported(&entry, r)),
        NoticeKind::Delay => !entry.delay_notified,
    };
    if !due {
        return Ok(CommandResult::Queued(Some(Box::new(entry))));
    }
    if let Some(delivery) = delivery {
        super::deliver(reader, std::slice::from_ref(delivery), staged)?;
    }
    unindex(&entry, staged);
    match kind {
        NoticeKind::Failures(recipients) => {
            for recipient in &mut entry.recipients {
                if recipients.contains(&recipient.address)
                    && recipient.state == (RecipientState::Failed { bounced: false })
                {
                    recipient.state = RecipientState::Failed { bounced: true };
                }
            }
        }
        NoticeKind::Delay => entry.delay_notified = true,
    }
    finish(reader, entry, staged)
}

/// An operator's retry, hold, release or delete.
pub(crate) fn act(
    reader: &StateReader,
    id: &str,
    action: QueueAction,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut entry) = reader.queued(id)? else {
        return Ok(CommandResult::Rejected(Rejection::NotQueued(id.to_owned())));
    };
    unindex(&entry, staged);
    match action {
        QueueAction::Retry => {
            entry.held = false;
            entry.next_attempt_at = i64::MIN;
        }
        QueueAction::Hold => entry.held = true,
        QueueAction::Release => entry.held = false,
        QueueAction::Delete => {
            let mut overlay = MailOverlay::default();
            staged.delete(CF_QUEUE, id.as_bytes());
            overlay.unref_blob(reader, &entry.blob, staged)?;
            overlay.write(staged);
            return Ok(CommandResult::Queued(None));
        }
    }
    finish(reader, entry, staged)
}

/// Stores the entry, or removes it (and its blob reference) when nothing is left to do.
fn finish(
    reader: &StateReader,
    entry: QueuedMessage,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if entry.has_work() {
        store(&entry, staged);
        return Ok(CommandResult::Queued(Some(Box::new(entry))));
    }
    let mut overlay = MailOverlay::default();
    staged.delete(CF_QUEUE, entry.id.as_bytes());
    overlay.unref_blob(reader, &entry.blob, staged)?;
    overlay.write(staged);
    Ok(CommandResult::Queued(None))
}

/// Queue reads of the applied state.
impl StateReader {
    pub fn queued(&self, id: &str) -> Result<Option<QueuedMessage>, StoreError> {
        self.db.get(CF_QUEUE, id.as_bytes())
    }

    /// Up to `limit` queued messages in queue id order, starting after `after`.
    pub fn queue(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>, StoreError> {
        let start = after.map_or_else(Vec::new, |after| {
            // The first key after `after`: `after` followed by the smallest byte.
            let mut key = after.as_bytes().to_vec();
            key.push(0);
            key
        });
        let rows = self
            .db
            .scan_from::<QueuedMessage>(CF_QUEUE, &start, limit, |_| true)?;
        Ok(rows.into_iter().map(|(_, entry)| entry).collect())
    }

    pub fn outbound_policy(&self) -> Result<OutboundPolicy, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_OUTBOUND_POLICY)?
            .unwrap_or_default())
    }

    pub fn queue_len(&self) -> Result<u64, StoreError> {
        self.db.count_prefix(CF_QUEUE, b"")
    }

    /// Up to `limit` ids of messages due at `now` (not held, with work left), earliest first.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let end = due_key(now, "");
        let rows = self
            .db
            .scan_from::<()>(CF_QUEUE_DUE, b"", limit, |key| key[..8] <= end[..8])?;
        Ok(rows
            .into_iter()
            .map(|(key, ())| String::from_utf8_lossy(&key[8..]).into_owned())
            .collect())
    }
}
