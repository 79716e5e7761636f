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

use serde::{Deserialize, Serialize};

use super::{BlobHash, MailOverlay};
use crate::db::{CF_QUEUE, CF_QUEUE_DUE, CF_SETTINGS, KEY_OUTBOUND_POLICY};
use crate::error::StoreError;
use crate::state_machine::{Staged, StateReader};
use crate::types::{CommandResult, NodeId, Rejection};

/// What the receiving node hands over for the remote recipients of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    /// The envelope reverse-path; empty for the null sender `<>` (bounces are never bounced).
    pub sender: String,
    /// Remote recipients, as given in RCPT TO.
    pub recipients: Vec<String>,
    /// RFC 3461 ENVID, if the client gave one.
    pub envid: Option<String>,
    /// RFC 3461 RET=FULL (else headers only) for a failure report.
    pub ret_full: bool,
}

/// One message in the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: String,
    pub blob: BlobHash,
    pub size: u64,
    pub sender: String,
    pub recipients: Vec<QueuedRecipient>,
    pub envid: Option<String>,
    pub ret_full: bool,
    /// Seconds since the Unix epoch, as decided by the receiving node.
    pub arrived_at: i64,
    /// Attempts made on this message (each may cover several recipients).
    pub attempts: u32,
    /// When the next attempt is due (seconds since the epoch).
    pub next_attempt_at: i64,
    /// Held by an operator: not attempted until released.
    pub held: bool,
    /// The sender has been sent the one "still trying" notice (RFC 3464 Action: delayed).
    pub delay_notified: bool,
}

/// A remote recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub state: RecipientState,
    pub attempts: u32,
    /// The last temporary or permanent failure: enhanced status code and the remote's words.
    pub last_error: Option<AttemptError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientState {
    Pending,
    Delivered,
    /// Permanently failed (5xx, or expired); `bounced` once the sender has been told.
    Failed {
        bounced: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Enhanced status code, such as 4.4.1 or 5.1.1.
    pub status: String,
    /// What the remote side said, or what went wrong locally (no MX, connection refused).
    pub diagnostic: String,
    /// The host that answered, if one did.
    pub remote: Option<String>,
    pub at: i64,
}

/// The result of one attempt for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    Delivered,
    /// 4xx or a connection problem: tried again at the entry's next attempt time.
    Deferred(AttemptError),
    /// 5xx, or given up (expired, hop limit): reported to the sender.
    Failed(AttemptError),
}

/// An operator's action on a queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueAction {
    /// Due now (and released if held).
    Retry,
    Hold,
    Release,
    /// Removed without a report to the sender.
    Delete,
}

/// When outbound mail goes through a smarthost (a relay) instead of the recipients' MX hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmarthostMode {
    /// Always to the MX hosts.
    #[default]
    Never,
    /// To the MX hosts; a recipient they defer is tried through the smarthost in the same attempt.
    OnFailure,
    /// Everything through the smarthost.
    Always,
}

/// STARTTLS towards MX hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboundTls {
    Disabled,
    /// When offered, without certificate checks (what MTAs do without DANE or MTA-STS).
    #[default]
    Opportunistic,
    /// Defer when an MX does not offer STARTTLS.
    Required,
}

/// Outbound delivery behaviour that must be the same on every node (the leader may change).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct OutboundPolicy {
    /// Seconds between attempts of a message with recipients deferred.
    pub retry_interval_secs: u64,
    /// Attempts before deferred recipients are given up on and bounced.
    pub max_attempts: u32,
    /// Send the sender one "still trying" notice when a message is still queued this many
    /// seconds after it arrived; 0: never.
    pub delay_warning_secs: u64,
    /// Delivery attempts in flight at once on the leader.
    pub concurrency: u32,
    /// Of those, at most this many to one destination domain.
    pub per_domain_concurrency: u32,
    pub tls: OutboundTls,
    /// `host:port` of a relay; empty: none.
    pub smarthost: String,
    pub smarthost_mode: SmarthostMode,
    /// AUTH towards the smarthost when `smarthost_user` is not empty (only over TLS).
    pub smarthost_user: String,
    pub smarthost_password: String,
}

impl Default for OutboundPolicy {
    fn default() -> OutboundPolicy {
        OutboundPolicy {
            retry_interval_secs: 480,
            max_attempts: 16,
            delay_warning_secs: 3600,
            concurrency: 25,
            per_domain_concurrency: 10,
            tls: OutboundTls::Opportunistic,
            smarthost: String::new(),
            smarthost_mode: SmarthostMode::Never,
            smarthost_user: String::new(),
            smarthost_password: String::new(),
        }
    }
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("retry_interval_secs", &self.retry_interval_secs)
            .field("max_attempts", &self.max_attempts)
            .field("delay_warning_secs", &self.delay_warning_secs)
            .field("concurrency", &self.concurrency)
            .field("per_domain_concurrency", &self.per_domain_concurrency)
            .field("tls", &self.tls)
            .field("smarthost", &self.smarthost)
            .field("smarthost_mode", &self.smarthost_mode)
            .field("smarthost_user", &self.smarthost_user)
            .field("smarthost_password", &"<hidden>")
            .finish()
    }
}

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

impl QueuedMessage {
    /// When the leader should look at it next: at once while a failure is unreported (the
    /// bounce does not wait for the next retry), else at the next attempt.
    fn due_at(&self) -> i64 {
        if self.unreported().next().is_some() {
            i64::MIN
        } else {
            self.next_attempt_at
        }
    }

    /// Recipients still to be tried, or failures not yet reported.
    fn has_work(&self) -> bool {
        self.recipients.iter().any(|r| {
            matches!(
                r.state,
                RecipientState::Pending | RecipientState::Failed { bounced: false }
            )
        })
    }

    /// Recipients still to be tried.
    pub fn pending(&self) -> impl Iterator<Item = &QueuedRecipient> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
    }

    /// Failed recipients the sender has not been told about.
    pub fn unreported(&self) -> impl Iterator<Item = &QueuedRecipient> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Failed { bounced: false })
    }
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

/// A notice to the sender about a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// These recipients failed for good (RFC 3464 Action: failed).
    Failures(Vec<String>),
    /// The message is still queued after the delay-warning time (Action: delayed); sent once.
    Delay,
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
