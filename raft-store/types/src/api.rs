//! The admin API's request and reply shapes (docs/ADMIN_API.md), shared by the node, which
//! writes them, and mclusterctl, which reads them. A field added later is `#[serde(default)]`
//! (an `Option` or a number), so a newer client still reads an older node; an enumeration a
//! newer node may extend travels as text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    ClusterVersion, ConnectionBudgets, ConnectionsPerIp, DegradedAccept, MailPolicy, MemberBuild,
    MessageLimits, PasswordPolicy, ProtectionPolicy, Role,
};

/// One node's own view (`GET /v1/node`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: u64,
    pub name: String,
    pub role: Role,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown"; kept as text so that a newer
    /// server state still shows.
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Null on a witness (and from nodes older than the mail service).
    #[serde(default)]
    pub mail: Option<MailStatus>,
    /// Null when the node has no virtual IP configured: always on a witness (and from nodes older
    /// than the virtual IP).
    #[serde(default)]
    pub vip: Option<VipStatus>,
}

/// A data node's virtual IP and whether it holds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// CIDRs, such as `192.0.2.10/24`.
    pub addresses: Vec<String>,
    /// `lo` in loopback mode.
    pub interface: String,
    pub held: bool,
    /// How often this node has taken the VIP since it started.
    pub acquisitions: u64,
    /// For its last acquisition: from seeing the previous leader gone to holding the VIP.
    #[serde(default)]
    pub last_failover_ms: Option<u64>,
    /// When the node last took or released the VIP.
    #[serde(default)]
    pub last_change_unix_ms: Option<u64>,
    /// Why the node cannot hold the VIP (its interface or address cannot be configured).
    #[serde(default)]
    pub problem: Option<String>,
}

/// A data node's blob and mail counters, counted since it started, except `blobs_missing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailStatus {
    /// The last write could not be mirrored to the partner.
    pub degraded: bool,
    /// Blobs the replicated state says this node must hold but it has not confirmed.
    pub blobs_missing: u64,
    pub blobs_stored: u64,
    pub blobs_mirrored: u64,
    pub degraded_accepts: u64,
    pub mirror_failures: u64,
    /// Blobs pulled from the partner by resync.
    pub resync_fetched: u64,
    pub resync_failures: u64,
    pub gc_removed: u64,
    pub messages_accepted: u64,
    pub smtp_sessions: u64,
    pub pop3_sessions: u64,
    /// (Absent from servers older than IMAP.)
    #[serde(default)]
    pub imap_sessions: u64,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_name: String,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub members: Vec<MemberView>,
    /// Blobs each data member still has to confirm, by node id (JSON keys are strings).
    #[serde(default)]
    pub blobs_missing: BTreeMap<u64, u64>,
    /// Blobs each data member must hold (holds: that minus the missing ones), by node id.
    #[serde(default)]
    pub blobs_assigned: BTreeMap<u64, u64>,
    /// Members that answer the leader's heartbeats no more.
    #[serde(default)]
    pub unreachable: Vec<u64>,
    /// Blobs that name a replica which left the cluster (one live copy at most).
    #[serde(default)]
    pub blobs_misplaced: u64,
    /// At least two data voters, all answering, and none missing a blob; null from nodes that
    /// do not say.
    #[serde(default)]
    pub redundant: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub node_id: u64,
    pub name: String,
    pub role: Role,
    pub voter: bool,
    pub raft_addr: String,
    pub admin_addr: String,
    /// The leader's view of replication; null when not known.
    pub matched_index: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub name: String,
    pub role: Role,
    pub raft_addr: String,
    pub admin_addr: String,
    pub csr_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    pub node_id: u64,
    pub cluster_name: String,
    pub cert_pem: String,
    pub ca_pem: String,
    /// The active cluster version (absent from nodes before versions).
    #[serde(default)]
    pub cluster_version: Option<ClusterVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub address: String,
    pub domain: String,
    pub quota_mb: u64,
    pub enabled: bool,
    pub created_at: u64,
}

/// `GET /v1/tls`: the certificate chain SMTP and POP3 present to mail clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCert {
    pub cert_pem: String,
}

/// A message in the outbound queue (`GET /v1/queue/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: String,
    /// The blob's SHA-256 in hex.
    pub blob: String,
    pub size: u64,
    /// The envelope sender; empty for the null sender `<>` (a bounce).
    pub sender: String,
    /// Unix seconds.
    pub arrived_at: i64,
    /// Attempts made on the message (each may cover several recipients).
    pub attempts: u32,
    /// When the next attempt is due, unix seconds; far in the past after `retry`.
    pub next_attempt_at: i64,
    /// Held by an operator: not attempted until released.
    pub held: bool,
    pub recipients: Vec<QueueRecipient>,
}

/// A remote recipient of a queued message and its last failure, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecipient {
    pub address: String,
    /// "pending", "delivered", "failed" (the sender is still to be told) or "bounced" (told);
    /// kept as text so that a newer server state still shows.
    pub state: String,
    pub attempts: u32,
    /// Enhanced status code of the last failure, such as 4.4.1.
    pub last_status: Option<String>,
    /// What the remote said, or what went wrong locally.
    pub last_error: Option<String>,
    /// The host that answered, if one did.
    pub last_remote: Option<String>,
    pub last_attempt_at: Option<i64>,
}

/// `GET /v1/queue`: one page of the queue, in queue id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueListing {
    /// Messages in the whole queue, not only on this page.
    pub total: u64,
    pub entries: Vec<QueueEntry>,
}

/// A domain's DKIM signing key (`GET /v1/domains/{domain}/dkim`): never the private key, but
/// the DNS TXT record that publishes its public half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DkimKeyView {
    pub domain: String,
    pub selector: String,
    /// "rsa-sha256" or "ed25519-sha256"; kept as text so that a newer server value still shows.
    pub algorithm: String,
    /// Unix seconds.
    pub created_at: u64,
    /// `selector._domainkey.domain`
    pub dns_name: String,
    /// `v=DKIM1; k=rsa; p=...`, unsplit.
    pub dns_value: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverResponse {
    pub leader: u64,
}

/// A block or allow list entry as the API shows it (`GET /v1/access-lists`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccessEntryView {
    /// `block` or `allow`.
    pub list: String,
    /// `network`, `domain` or `address`.
    pub kind: String,
    /// The canonical form, as `DELETE` takes it.
    pub pattern: String,
    pub comment: Option<String>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// Whether it still matches (expired entries stay listed until the next add clears them).
    pub active: bool,
}

/// `GET /v1/outbound-policy`. Keys are kebab-case, as `mclusterctl outbound set` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutboundPolicyView {
    pub retry_interval_secs: u64,
    pub max_attempts: u32,
    /// 0: no delay notice.
    pub delay_warning_secs: u64,
    pub concurrency: u32,
    pub per_domain_concurrency: u32,
    /// "disabled", "opportunistic" or "required"; kept as text (as are the other named values)
    /// so that a newer server value still shows.
    pub tls: String,
    /// `host:port`, or empty for none.
    pub smarthost: String,
    /// "never", "on-failure" or "always".
    pub smarthost_mode: String,
    pub smarthost_user: String,
    /// The password itself is never shown.
    pub smarthost_password_set: bool,
}

/// A lockout as the API shows it (`GET /v1/lockouts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockoutView {
    /// `ip:ADDRESS` or `account:NAME`.
    pub target: String,
    pub since: u64,
    pub until: u64,
    pub reason: String,
    /// Whether it still runs (ended ones stay listed until the next lockout clears them).
    pub active: bool,
}

// ---- request bodies ----
// The ones that carry a password or a private key derive no Debug.

/// `POST /v1/members`: promote a node that joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMember {
    pub node_id: u64,
    /// The build the node runs (absent from nodes before versions): the leader refuses a node
    /// that cannot run the active cluster version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<MemberBuild>,
}

/// `GET /v1/upgrade` (and the answer to `POST /v1/upgrade/finalize`): the active cluster
/// version, what each member runs, and what waits for a newer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeStatus {
    pub active: ClusterVersion,
    /// The newest version every member runs; None while a member has not reported its build.
    pub runnable: Option<ClusterVersion>,
    /// Whether the leader raises the active version by itself (`[upgrade] auto-finalize`; the
    /// answering node's setting).
    pub auto_finalize: bool,
    pub members: Vec<MemberUpgradeView>,
    /// Features of versions newer than the active one, whether or not the members run them.
    pub waiting: Vec<FeatureView>,
}

/// One member in [`UpgradeStatus`]; the build fields are None until it has reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpgradeView {
    pub node_id: u64,
    pub name: String,
    pub role: Role,
    pub build: Option<String>,
    pub oldest: Option<ClusterVersion>,
    pub newest: Option<ClusterVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureView {
    pub name: String,
    pub since: ClusterVersion,
    pub description: String,
}

/// `POST /v1/failover`: hand leadership to `to`, or to the best other data node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
}

/// `POST /v1/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDomain {
    pub name: String,
}

/// `POST /v1/accounts`; without `quota_mb` the node's default quota.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewAccount {
    pub address: String,
    pub password: String,
    #[serde(default)]
    pub quota_mb: Option<u64>,
}

/// `PUT /v1/accounts/{address}/password`.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewPassword {
    pub password: String,
}

/// `PUT /v1/accounts/{address}/enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

/// `PUT /v1/tls`: the certificate chain and key SMTP, POP3 and IMAP present to clients.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewClientTls {
    pub cert_pem: String,
    #[serde(default)]
    pub key_pem: String,
}

/// `PUT /v1/domains/{domain}/dkim`: make a key, or import one. No Debug: it may carry a
/// private key.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NewDkimKey {
    /// Default: `mc` and today's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Default: rsa-sha256 for a new key, the key's own for an imported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<crate::DkimAlgorithm>,
    /// Import this key (PKCS#8, or PKCS#1 for RSA) instead of making one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
}

/// The protection policy as the API shows and takes it (`/v1/protection-policy`): the
/// per-service connection budgets, the policy's keys and the password policy in one object
/// (each is stored apart). The policy's retired shared rate (`connections-per-minute-per-ip`)
/// is not among them: nothing enforces it any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ProtectionView {
    #[serde(flatten)]
    pub budgets: ConnectionBudgets,
    pub exempt_networks: Vec<String>,
    pub login_failure_delay_ms: u64,
    pub account_lockout_failures: u32,
    pub ip_lockout_failures: u32,
    pub failure_window_secs: u64,
    pub lockout_secs: u64,
    pub sender_login_match: bool,
    pub min_data_rate: u64,
    #[serde(flatten)]
    pub passwords: PasswordPolicy,
}

impl ProtectionView {
    pub fn from_parts(
        policy: ProtectionPolicy,
        budgets: ConnectionBudgets,
        passwords: PasswordPolicy,
    ) -> ProtectionView {
        let ProtectionPolicy {
            connections_per_minute_per_ip: _,
            exempt_networks,
            login_failure_delay_ms,
            account_lockout_failures,
            ip_lockout_failures,
            failure_window_secs,
            lockout_secs,
            sender_login_match,
            min_data_rate,
        } = policy;
        ProtectionView {
            budgets,
            exempt_networks,
            login_failure_delay_ms,
            account_lockout_failures,
            ip_lockout_failures,
            failure_window_secs,
            lockout_secs,
            sender_login_match,
            min_data_rate,
            passwords,
        }
    }

    /// The stored parts of the view; the retired rate keeps its `stored` value.
    pub fn into_parts(
        self,
        stored: &ProtectionPolicy,
    ) -> (ProtectionPolicy, ConnectionBudgets, PasswordPolicy) {
        let ProtectionView {
            budgets,
            exempt_networks,
            login_failure_delay_ms,
            account_lockout_failures,
            ip_lockout_failures,
            failure_window_secs,
            lockout_secs,
            sender_login_match,
            min_data_rate,
            passwords,
        } = self;
        let policy = ProtectionPolicy {
            connections_per_minute_per_ip: stored.connections_per_minute_per_ip,
            exempt_networks,
            login_failure_delay_ms,
            account_lockout_failures,
            ip_lockout_failures,
            failure_window_secs,
            lockout_secs,
            sender_login_match,
            min_data_rate,
        };
        (policy, budgets, passwords)
    }
}

/// The mail policy as the API shows and takes it (`/v1/mail-policy`): the policy's keys, the
/// message limits and the per-service limits on one address's open connections in one object
/// (each is stored under its own key). The policy's retired shared limit
/// (`max-connections-per-ip`) is not among them: nothing enforces it any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MailPolicyView {
    pub max_message_bytes: u64,
    pub max_recipients: u32,
    pub degraded_accept: DegradedAccept,
    pub auth_without_tls: bool,
    pub max_connections: u32,
    #[serde(flatten)]
    pub connections: ConnectionsPerIp,
    pub max_errors: u32,
    pub smtp_idle_timeout_secs: u64,
    pub pop3_idle_timeout_secs: u64,
    #[serde(flatten)]
    pub limits: MessageLimits,
}

impl MailPolicyView {
    pub fn from_parts(
        policy: MailPolicy,
        connections: ConnectionsPerIp,
        limits: MessageLimits,
    ) -> MailPolicyView {
        let MailPolicy {
            max_message_bytes,
            max_recipients,
            degraded_accept,
            auth_without_tls,
            max_connections,
            max_connections_per_ip: _,
            max_errors,
            smtp_idle_timeout_secs,
            pop3_idle_timeout_secs,
        } = policy;
        MailPolicyView {
            max_message_bytes,
            max_recipients,
            degraded_accept,
            auth_without_tls,
            max_connections,
            connections,
            max_errors,
            smtp_idle_timeout_secs,
            pop3_idle_timeout_secs,
            limits,
        }
    }

    /// The stored parts of the view; the retired limit keeps its `stored` value.
    pub fn into_parts(self, stored: &MailPolicy) -> (MailPolicy, ConnectionsPerIp, MessageLimits) {
        let MailPolicyView {
            max_message_bytes,
            max_recipients,
            degraded_accept,
            auth_without_tls,
            max_connections,
            connections,
            max_errors,
            smtp_idle_timeout_secs,
            pop3_idle_timeout_secs,
            limits,
        } = self;
        let policy = MailPolicy {
            max_message_bytes,
            max_recipients,
            degraded_accept,
            auth_without_tls,
            max_connections,
            max_connections_per_ip: stored.max_connections_per_ip,
            max_errors,
            smtp_idle_timeout_secs,
            pop3_idle_timeout_secs,
        };
        (policy, connections, limits)
    }
}

#[cfg(test)]
mod tests;
