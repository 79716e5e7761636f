//! The outbound queue as replicated: queued messages with their recipients and attempts, the
//! outbound policy, and the notices to senders.

use serde::{Deserialize, Serialize};

use crate::BlobHash;

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

impl SmarthostMode {
    /// The name the policy and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            SmarthostMode::Never => "never",
            SmarthostMode::OnFailure => "on-failure",
            SmarthostMode::Always => "always",
        }
    }
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

impl OutboundTls {
    /// The name the policy and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundTls::Disabled => "disabled",
            OutboundTls::Opportunistic => "opportunistic",
            OutboundTls::Required => "required",
        }
    }
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

impl QueuedMessage {
    /// When the leader should look at it next: at once while a failure is unreported (the
    /// bounce does not wait for the next retry), else at the next attempt.
    pub fn due_at(&self) -> i64 {
        if self.unreported().next().is_some() {
            i64::MIN
        } else {
            self.next_attempt_at
        }
    }

    /// Recipients still to be tried, or failures not yet reported.
    pub fn has_work(&self) -> bool {
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

/// A notice to the sender about a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// These recipients failed for good (RFC 3464 Action: failed).
    Failures(Vec<String>),
    /// The message is still queued after the delay-warning time (Action: delayed); sent once.
    Delay,
}
