//! Commands, the requests that carry them through the log, and their results.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BlobHash, ClientTls, Delivery, DeliveryOutcome, FiledDelivery, MailPolicy};
use crate::{ClusterSettings, Member, NodeId, TokenKind};

/// A command with the id its client gave it. A client that does not learn the outcome of a
/// write (its leader died mid-request) sends it again with the same id; the state machine
/// applies it once and answers the retry with the first outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u128,
    pub command: Command,
}

impl Request {
    /// A request with a fresh random id.
    pub fn new(command: Command) -> Request {
        Request {
            id: rand::random(),
            command,
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:x}", self.command, self.id)
    }
}

/// A change to the replicated state. Everything non-deterministic (timestamps, password salts)
/// is decided by the proposer and carried in the command, so every node applies it identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    InitCluster(ClusterSettings),
    /// Allocates the next node id for a joining node and remembers its addresses.
    RegisterNode {
        member: Member,
    },
    AddDomain {
        name: String,
        at: u64,
    },
    DeleteDomain {
        name: String,
    },
    AddAccount {
        address: String,
        password_hash: String,
        quota_mb: u64,
        at: u64,
    },
    DeleteAccount {
        address: String,
    },
    SetPassword {
        address: String,
        password_hash: String,
    },
    SetAccountEnabled {
        address: String,
        enabled: bool,
    },
    AddAlias {
        address: String,
        targets: Vec<String>,
    },
    DeleteAlias {
        address: String,
    },
    /// Accepted messages whose blobs are fsync'd on their replicas (or on the receiver alone
    /// while degraded): store them in their recipients' INBOXes. Many messages share one entry.
    Deliver {
        deliveries: Vec<Delivery>,
    },
    /// Removes messages from a mailbox (POP3 deletions at QUIT, IMAP EXPUNGE).
    Expunge {
        account: String,
        mailbox: String,
        uids: Vec<u32>,
    },
    /// `node` now holds these blobs, fsync'd (after pulling them during resync).
    BlobsStored {
        node: NodeId,
        blobs: Vec<BlobHash>,
    },
    SetClientTls(ClientTls),
    SetMailPolicy(MailPolicy),
    /// `node` is a replica of these blobs by the record but does not have them on its disk (its
    /// data directory was restored from an older copy, or files were lost): they go back on
    /// its list to pull, so the lost redundancy shows and resync restores it. (Appended last:
    /// the variant index is part of the log's encoding.)
    BlobsLost {
        node: NodeId,
        blobs: Vec<BlobHash>,
    },
    /// IMAP CREATE (`at`: the proposer's clock, seeds the UIDVALIDITY counter).
    CreateMailbox {
        account: String,
        name: String,
        at: u64,
    },
    /// IMAP DELETE: the mailbox and its messages.
    DeleteMailbox {
        account: String,
        name: String,
    },
    /// IMAP RENAME, with the mailboxes below it.
    RenameMailbox {
        account: String,
        from: String,
        to: String,
        at: u64,
    },
    /// IMAP SUBSCRIBE / UNSUBSCRIBE.
    SetSubscribed {
        account: String,
        name: String,
        subscribed: bool,
    },
    /// IMAP STORE (CONDSTORE's UNCHANGEDSINCE in `unchanged_since`).
    StoreFlags {
        account: String,
        mailbox: String,
        uids: Vec<u32>,
        op: crate::FlagOp,
        flags: u8,
        keywords: Vec<String>,
        unchanged_since: Option<u64>,
    },
    /// IMAP APPEND into a named mailbox.
    Append {
        account: String,
        mailbox: String,
        message: Box<crate::AppendedMessage>,
    },
    /// IMAP COPY, or MOVE with `remove_source` (into `from` itself only once
    /// [`crate::version::Feature::MoveWithinMailbox`] is active).
    CopyMessages {
        account: String,
        from: String,
        to: String,
        uids: Vec<u32>,
        remove_source: bool,
    },
    /// The leader's result of one delivery attempt of a queued message.
    RecordAttempt {
        id: String,
        outcomes: Vec<(String, crate::AttemptOutcome)>,
        next_attempt_at: i64,
    },
    /// The failure report for these recipients of a queued message is itself queued.
    MarkBounced {
        id: String,
        recipients: Vec<String>,
    },
    /// An operator's retry, hold, release or delete of a queued message.
    QueueAct {
        id: String,
        action: crate::QueueAction,
    },
    /// A notice to the sender of a queued message (a bounce or a delay notice), queued or
    /// delivered locally as `delivery`, and recorded as sent, in one entry.
    Notify {
        id: String,
        kind: crate::NoticeKind,
        delivery: Option<Box<Delivery>>,
    },
    SetOutboundPolicy(crate::OutboundPolicy),
    /// Sets or replaces the DKIM key of a local domain.
    SetDkimKey(crate::DkimKey),
    DeleteDkimKey {
        domain: String,
    },
    SetProtectionPolicy(crate::ProtectionPolicy),
    /// Failed logins earned a lockout (or an operator set one).
    Lock(crate::Lockout),
    /// An operator lifts a lockout before it ends.
    Unlock {
        target: crate::LockTarget,
    },
    /// Adds (or replaces) a block or allow list entry.
    AddAccessEntry(crate::AccessEntry),
    RemoveAccessEntry {
        list: crate::AccessList,
        pattern: crate::AccessPattern,
    },
    /// Like `Deliver`, each message filed where its `filing` says (a content filter's verdict
    /// can send it to Junk). The receiving node proposes plain `Deliver` when every message
    /// goes to INBOX, so entries from nodes that never file to Junk keep the old encoding.
    DeliverFiled {
        deliveries: Vec<FiledDelivery>,
    },
    /// The mail policy and the message limits, set together (the admin API shows them as one
    /// policy). `SetMailPolicy` stays for entries already in logs.
    SetMailPolicyAndLimits {
        policy: MailPolicy,
        limits: crate::summary::MessageLimits,
    },
    /// `from` (no longer a data member) is replaced by `to` as a replica of these blobs, which
    /// `to` must then pull: how redundancy comes back after a node is replaced. A blob that no
    /// longer names `from`, or already names `to`, is left alone.
    MoveReplicas {
        from: NodeId,
        to: NodeId,
        blobs: Vec<BlobHash>,
    },
    /// Replaces the SHA-256 (hex) of the admin or the join token in the cluster settings: from
    /// this entry on only the new token is accepted (`mclusterctl token rotate`). Appended
    /// last, and `ClusterSettings` keeps its shape, so stores and logs written before it still
    /// decode.
    SetTokenDigest {
        token: TokenKind,
        sha256: String,
    },
    /// `to` becomes one more replica of these blobs, which it must then pull, while every
    /// replica they name stays: how a data node that leaves hands its copies on before it goes.
    /// A blob that already names `to` is left alone.
    AddReplicas {
        to: NodeId,
        blobs: Vec<BlobHash>,
    },
    /// `from` (no longer a member) stops being a replica of these blobs. Only a blob with at
    /// least two other replicas that confirmed their copies loses it; the others are left for
    /// a later entry, so that no blob ever drops below two confirmed copies this way.
    ForgetReplicas {
        from: NodeId,
        blobs: Vec<BlobHash>,
    },
    /// The protection policy with the per-service connection budgets and the password policy,
    /// set together (the admin API shows them as one policy; each is stored under its own key).
    /// `SetProtectionPolicy` stays for entries already in logs. (Appended last: the variant
    /// index is part of the log's encoding.)
    SetProtectionSettings {
        policy: crate::ProtectionPolicy,
        budgets: crate::ConnectionBudgets,
        passwords: crate::PasswordPolicy,
    },
    /// The mail policy, the message limits and the per-service limits on one address's open
    /// connections, set together (the admin API shows them as one policy; each is stored under
    /// its own key). `SetMailPolicyAndLimits` stays for entries already in logs. (Appended
    /// last: the variant index is part of the log's encoding.)
    SetMailPolicyLimitsAndConnections {
        policy: MailPolicy,
        limits: crate::summary::MessageLimits,
        connections: crate::ConnectionsPerIp,
    },
    /// A member reports the build it runs and the cluster versions that build can run (on
    /// start, when the state does not say so yet): what the active version may be raised to.
    /// Part of the versions themselves, so never behind a gate.
    ReportBuild(crate::version::MemberBuild),
    /// Raises the active cluster version. Refused unless it moves forward and every member
    /// has reported a build that runs it.
    SetClusterVersion {
        version: crate::version::ClusterVersion,
    },
    /// An IMAP session that selects `mailbox` claims its messages up to UID `up_to` as
    /// `\Recent` (RFC 3501 2.3.2): each message is recent in the one session whose claim
    /// covered it first, whichever node that session is on. (Appended last: the variant index
    /// is part of the log's encoding.)
    ClaimRecent {
        account: String,
        mailbox: String,
        up_to: u32,
    },
}

impl Command {
    /// The feature of a newer cluster version this command belongs to ([`crate::version::gate`]);
    /// None: it was in cluster version 1, or it is part of the versions themselves. No
    /// wildcard: a new command does not compile until it is placed here.
    pub fn feature(&self) -> Option<crate::version::Feature> {
        use crate::version::Feature;
        match self {
            Command::SetMailPolicyAndLimits { .. }
            | Command::SetMailPolicyLimitsAndConnections { .. }
            | Command::SetProtectionSettings { .. } => Some(Feature::PolicySettings),
            Command::MoveReplicas { .. }
            | Command::AddReplicas { .. }
            | Command::ForgetReplicas { .. } => Some(Feature::ReplicaMoves),
            Command::SetTokenDigest {
                token: crate::TokenKind::ReadOnly,
                ..
            } => Some(Feature::ReadOnlyToken),
            Command::SetTokenDigest { .. } => Some(Feature::TokenRotation),
            Command::Lock(crate::Lockout {
                target: crate::LockTarget::AccountFrom { .. },
                ..
            })
            | Command::Unlock {
                target: crate::LockTarget::AccountFrom { .. },
            } => Some(Feature::AddressLockouts),
            // A move into the source mailbox itself; copies, and moves elsewhere, are ungated.
            Command::CopyMessages {
                from,
                to,
                remove_source: true,
                ..
            } if from == to => Some(Feature::MoveWithinMailbox),
            Command::ClaimRecent { .. } => Some(Feature::RecentFlag),
            Command::ReportBuild(_) | Command::SetClusterVersion { .. } => None,
            Command::InitCluster(_)
            | Command::RegisterNode { .. }
            | Command::AddDomain { .. }
            | Command::DeleteDomain { .. }
            | Command::AddAccount { .. }
            | Command::DeleteAccount { .. }
            | Command::SetPassword { .. }
            | Command::SetAccountEnabled { .. }
            | Command::AddAlias { .. }
            | Command::DeleteAlias { .. }
            | Command::Deliver { .. }
            | Command::Expunge { .. }
            | Command::BlobsStored { .. }
            | Command::SetClientTls(_)
            | Command::SetMailPolicy(_)
            | Command::BlobsLost { .. }
            | Command::CreateMailbox { .. }
            | Command::DeleteMailbox { .. }
            | Command::RenameMailbox { .. }
            | Command::SetSubscribed { .. }
            | Command::StoreFlags { .. }
            | Command::Append { .. }
            | Command::CopyMessages { .. }
            | Command::RecordAttempt { .. }
            | Command::MarkBounced { .. }
            | Command::QueueAct { .. }
            | Command::Notify { .. }
            | Command::SetOutboundPolicy(_)
            | Command::SetDkimKey(_)
            | Command::DeleteDkimKey { .. }
            | Command::SetProtectionPolicy(_)
            | Command::Lock(_)
            | Command::Unlock { .. }
            | Command::AddAccessEntry(_)
            | Command::RemoveAccessEntry { .. }
            | Command::DeliverFiled { .. } => None,
        }
    }

    /// The message summaries the command carries, to be stored with their blobs.
    pub fn summaries(&self) -> Vec<&crate::summary::MessageSummary> {
        match self {
            Command::Deliver { deliveries } => deliveries.iter().map(|d| &d.summary).collect(),
            Command::DeliverFiled { deliveries } => {
                deliveries.iter().map(|d| &d.delivery.summary).collect()
            }
            Command::Notify {
                delivery: Some(delivery),
                ..
            } => vec![&delivery.summary],
            Command::Append { message, .. } => vec![&message.summary],
            _ => Vec::new(),
        }
    }

    /// The accounts whose mailboxes or messages this command may change.
    pub fn mail_accounts(&self) -> Vec<&str> {
        match self {
            Command::Deliver { deliveries } => {
                let mut accounts: Vec<&str> = deliveries
                    .iter()
                    .flat_map(|d| d.recipients.iter().map(String::as_str))
                    .collect();
                accounts.sort_unstable();
                accounts.dedup();
                accounts
            }
            Command::DeliverFiled { deliveries } => {
                let mut accounts: Vec<&str> = deliveries
                    .iter()
                    .flat_map(|d| d.delivery.recipients.iter().map(String::as_str))
                    .collect();
                accounts.sort_unstable();
                accounts.dedup();
                accounts
            }
            Command::Notify {
                delivery: Some(delivery),
                ..
            } => delivery.recipients.iter().map(String::as_str).collect(),
            Command::DeleteAccount { address } | Command::SetAccountEnabled { address, .. } => {
                vec![address]
            }
            Command::Expunge { account, .. }
            | Command::CreateMailbox { account, .. }
            | Command::DeleteMailbox { account, .. }
            | Command::RenameMailbox { account, .. }
            | Command::SetSubscribed { account, .. }
            | Command::StoreFlags { account, .. }
            | Command::Append { account, .. }
            | Command::CopyMessages { account, .. } => vec![account],
            Command::InitCluster(_)
            | Command::RegisterNode { .. }
            | Command::AddDomain { .. }
            | Command::DeleteDomain { .. }
            | Command::AddAccount { .. }
            | Command::SetPassword { .. }
            | Command::AddAlias { .. }
            | Command::DeleteAlias { .. }
            | Command::BlobsStored { .. }
            | Command::SetClientTls(_)
            | Command::SetMailPolicy(_)
            | Command::SetMailPolicyAndLimits { .. }
            | Command::SetMailPolicyLimitsAndConnections { .. }
            | Command::MoveReplicas { .. }
            | Command::SetTokenDigest { .. }
            | Command::AddReplicas { .. }
            | Command::ForgetReplicas { .. }
            | Command::BlobsLost { .. }
            | Command::RecordAttempt { .. }
            | Command::MarkBounced { .. }
            | Command::QueueAct { .. }
            | Command::Notify { .. }
            | Command::SetOutboundPolicy(_)
            | Command::SetDkimKey(_)
            | Command::DeleteDkimKey { .. }
            | Command::SetProtectionPolicy(_)
            | Command::SetProtectionSettings { .. }
            | Command::Lock(_)
            | Command::Unlock { .. }
            | Command::AddAccessEntry(_)
            | Command::RemoveAccessEntry { .. }
            | Command::ReportBuild(_)
            | Command::SetClusterVersion { .. }
            // Nothing another session shows changes.
            | Command::ClaimRecent { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown in openraft's logs: names only, never hashes or keys.
        match self {
            Command::InitCluster(s) => write!(f, "InitCluster({})", s.cluster_name),
            Command::RegisterNode { member } => write!(f, "RegisterNode({})", member.name),
            Command::AddDomain { name, .. } => write!(f, "AddDomain({name})"),
            Command::DeleteDomain { name } => write!(f, "DeleteDomain({name})"),
            Command::AddAccount { address, .. } => write!(f, "AddAccount({address})"),
            Command::DeleteAccount { address } => write!(f, "DeleteAccount({address})"),
            Command::SetPassword { address, .. } => write!(f, "SetPassword({address})"),
            Command::SetAccountEnabled { address, enabled } => {
                write!(f, "SetAccountEnabled({address}, {enabled})")
            }
            Command::AddAlias { address, .. } => write!(f, "AddAlias({address})"),
            Command::DeleteAlias { address } => write!(f, "DeleteAlias({address})"),
            Command::Deliver { deliveries } => write!(f, "Deliver({} messages)", deliveries.len()),
            Command::Expunge {
                account,
                mailbox,
                uids,
            } => write!(f, "Expunge({account}/{mailbox}, {} uids)", uids.len()),
            Command::BlobsStored { node, blobs } => {
                write!(f, "BlobsStored(node {node}, {} blobs)", blobs.len())
            }
            Command::SetClientTls(_) => write!(f, "SetClientTls"),
            Command::SetMailPolicy(_) => write!(f, "SetMailPolicy"),
            Command::BlobsLost { node, blobs } => {
                write!(f, "BlobsLost(node {node}, {} blobs)", blobs.len())
            }
            Command::CreateMailbox { account, .. } => write!(f, "CreateMailbox({account})"),
            Command::DeleteMailbox { account, .. } => write!(f, "DeleteMailbox({account})"),
            Command::RenameMailbox { account, .. } => write!(f, "RenameMailbox({account})"),
            Command::SetSubscribed { account, .. } => write!(f, "SetSubscribed({account})"),
            Command::StoreFlags { account, uids, .. } => {
                write!(f, "StoreFlags({account}, {} uids)", uids.len())
            }
            Command::Append { account, .. } => write!(f, "Append({account})"),
            Command::CopyMessages { account, uids, .. } => {
                write!(f, "CopyMessages({account}, {} uids)", uids.len())
            }
            Command::RecordAttempt { id, outcomes, .. } => {
                write!(f, "RecordAttempt({id}, {} recipients)", outcomes.len())
            }
            Command::MarkBounced { id, .. } => write!(f, "MarkBounced({id})"),
            Command::QueueAct { id, action } => write!(f, "QueueAct({id}, {action:?})"),
            Command::Notify { id, kind, .. } => write!(f, "Notify({id}, {kind:?})"),
            Command::SetOutboundPolicy(_) => write!(f, "SetOutboundPolicy"),
            Command::SetDkimKey(key) => write!(f, "SetDkimKey({}, {})", key.domain, key.selector),
            Command::DeleteDkimKey { domain } => write!(f, "DeleteDkimKey({domain})"),
            Command::SetProtectionPolicy(_) => write!(f, "SetProtectionPolicy"),
            Command::Lock(lockout) => write!(f, "Lock({})", lockout.target),
            Command::Unlock { target } => write!(f, "Unlock({target})"),
            Command::AddAccessEntry(entry) => {
                write!(f, "AddAccessEntry({} {})", entry.list, entry.pattern)
            }
            Command::RemoveAccessEntry { list, pattern } => {
                write!(f, "RemoveAccessEntry({list} {pattern})")
            }
            Command::DeliverFiled { deliveries } => {
                write!(f, "DeliverFiled({} messages)", deliveries.len())
            }
            Command::SetMailPolicyAndLimits { .. } => write!(f, "SetMailPolicyAndLimits"),
            Command::SetMailPolicyLimitsAndConnections { .. } => {
                write!(f, "SetMailPolicyLimitsAndConnections")
            }
            Command::SetProtectionSettings { .. } => write!(f, "SetProtectionSettings"),
            Command::MoveReplicas { from, to, blobs } => {
                write!(f, "MoveReplicas({from} -> {to}, {} blobs)", blobs.len())
            }
            Command::SetTokenDigest { token, .. } => write!(f, "SetTokenDigest({token})"),
            Command::AddReplicas { to, blobs } => {
                write!(f, "AddReplicas(+{to}, {} blobs)", blobs.len())
            }
            Command::ForgetReplicas { from, blobs } => {
                write!(f, "ForgetReplicas(-{from}, {} blobs)", blobs.len())
            }
            Command::ReportBuild(report) => write!(
                f,
                "ReportBuild(node {}, {}, versions {}..={})",
                report.node_id, report.build, report.oldest, report.newest
            ),
            Command::SetClusterVersion { version } => write!(f, "SetClusterVersion({version})"),
            Command::ClaimRecent { account, up_to, .. } => {
                write!(f, "ClaimRecent({account}, up to {up_to})")
            }
        }
    }
}

/// The outcome of applying one command. Rejections are results, not errors: the entry is
/// committed either way, and every node rejects it the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Done,
    NodeRegistered(NodeId),
    Delivered(Vec<DeliveryOutcome>),
    Expunged(u32),
    Rejected(Rejection),
    /// STORE: the messages' flags now, and (CONDSTORE) the UIDs left alone.
    FlagsStored {
        changed: Vec<crate::FlagChange>,
        failed: Vec<u32>,
    },
    /// APPEND: the mailbox's UIDVALIDITY and the new message's UID.
    Appended {
        uidvalidity: u32,
        uid: u32,
    },
    /// COPY/MOVE: the target's UIDVALIDITY and (source UID, new UID) pairs.
    Copied {
        uidvalidity: u32,
        pairs: Vec<(u32, u32)>,
    },
    /// A queue command: the entry as it is now, or None once it is gone.
    Queued(Option<Box<crate::QueuedMessage>>),
    /// `ClaimRecent`: the messages with UIDs in `from + 1 ..= to` of the mailbox of
    /// `uidvalidity` are recent in the claiming session (none when `from == to`).
    RecentClaimed {
        uidvalidity: u32,
        from: u32,
        to: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("domain {0} already exists")]
    DomainExists(String),
    #[error("no such domain: {0}")]
    NoSuchDomain(String),
    #[error("domain {0} still has accounts or aliases")]
    DomainNotEmpty(String),
    #[error("address {0} already exists")]
    AddressExists(String),
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    #[error("no such alias: {0}")]
    NoSuchAlias(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error("mailbox {0} already exists")]
    MailboxExists(String),
    #[error("no such mailbox: {0}")]
    NoSuchMailbox(String),
    #[error("invalid mailbox name: {0}")]
    InvalidMailboxName(String),
    #[error("no such queued message: {0}")]
    NotQueued(String),
    #[error("domain {0} has no DKIM key")]
    NoDkimKey(String),
    #[error("no lockout of {0}")]
    NoLockout(String),
    #[error("no access list entry {0}")]
    NoAccessEntry(String),
    /// A message summary in the entry is over the hard ceilings of this build (no proposer of
    /// this build makes one; an entry from an older one, or a bug, is refused the same way on
    /// every node instead of being applied).
    #[error("a message in the entry is too complex to store")]
    MessageTooComplex,
    /// Applying the entry failed inside this build (a bug): refused on every node alike.
    #[error("the entry could not be applied")]
    ApplyFailed,
    /// A joining node would share a name or address with a member.
    #[error("{0}")]
    MemberClash(String),
    /// A command that changes the cluster settings before `InitCluster` wrote them.
    #[error("the cluster is not initialized yet")]
    NotInitialized,
    /// A command of a cluster version that is not active (no proposer of this build sends
    /// one: the gate refuses it before the log has it).
    #[error("{0}")]
    NotActive(String),
    /// A cluster version change that may not happen: backwards, or to a version a member's
    /// build does not run.
    #[error("{0}")]
    ClusterVersion(String),
}
