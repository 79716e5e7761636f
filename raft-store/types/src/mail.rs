//! The mail model as replicated: mailboxes, messages, blob records, deliveries, and the
//! cluster-wide mail policy and client TLS certificate.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// SHA-256 of a blob's bytes: its name on every node that holds it.
pub type BlobHash = [u8; 32];

pub const INBOX: &str = "INBOX";

/// The mailboxes every account has from the start, with their RFC 6154 special use.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 5] = [
    (INBOX, None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

/// One mailbox of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: String,
    /// Never changes while the mailbox exists, and is never reused by another mailbox.
    pub uidvalidity: u32,
    /// The UID the next message gets; UIDs are never reused.
    pub uidnext: u32,
    pub messages: u32,
    pub bytes: u64,
    pub special_use: Option<String>,
    /// The highest mod-sequence given to a change in this mailbox (RFC 7162 HIGHESTMODSEQ).
    pub highest_modseq: u64,
}

/// IMAP system flags as bits; keywords are kept by name.
pub mod flag {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;
}

/// One message in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub uid: u32,
    pub blob: BlobHash,
    pub size: u64,
    /// Seconds since the Unix epoch, as decided by the receiving node.
    pub internal_date: i64,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub queue_id: String,
    /// The mod-sequence of the last change to this message (its arrival or a flag change).
    pub modseq: u64,
}

/// What the cluster knows of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub size: u64,
    /// The data nodes that must hold the blob (the receiver and its mirror partner).
    pub replicas: Vec<NodeId>,
    /// How many messages refer to it; at zero the record goes and nodes may delete the file.
    pub refs: u64,
}

/// One accepted message to store in local mailboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Chosen by the receiving node; with the recipient it makes delivery idempotent.
    pub queue_id: String,
    pub blob: BlobHash,
    pub size: u64,
    /// Nodes that must hold the blob.
    pub replicas: Vec<NodeId>,
    /// Those of `replicas` that did not confirm an fsync'd copy (the mirror partner was down):
    /// they pull the blob when they can.
    pub missing: Vec<NodeId>,
    /// Account addresses (aliases already resolved), each delivered to its INBOX.
    pub recipients: Vec<String>,
    pub internal_date: i64,
    /// Parsed once by the receiving node, kept per blob for IMAP FETCH.
    pub summary: crate::summary::MessageSummary,
    /// Recipients in other domains: queued for delivery in the same entry, so the local and
    /// the remote part of one message commit together.
    pub outbound: Option<crate::queue::Outbound>,
}

/// Where a delivered message goes in each local recipient's account.
///
/// (Appended variants only: the variant index is part of the log's encoding.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Filing {
    #[default]
    Inbox,
    /// The account's mailbox with special use `\Junk` (the first by name if there are
    /// several); INBOX if the account has none, so the message is never lost.
    Junk,
}

/// A delivery with where to file it (`Command::DeliverFiled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledDelivery {
    pub delivery: Delivery,
    pub filing: Filing,
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    /// Recipients whose INBOX holds the message now (including earlier identical deliveries).
    pub delivered: u32,
    /// Recipients whose account no longer exists or is disabled.
    pub undeliverable: Vec<String>,
}

/// Whether to accept mail while the blob can be fsync'd on one data node only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DegradedAccept {
    /// Accept with one copy, say so in status, metrics and the log, re-mirror later.
    #[default]
    Accept,
    /// Answer 451 4.3.0 until a mirror partner is back.
    Refuse,
}

impl fmt::Display for DegradedAccept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DegradedAccept::Accept => "accept",
            DegradedAccept::Refuse => "refuse",
        })
    }
}

/// Mail limits and behaviour that must be identical on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct MailPolicy {
    pub max_message_bytes: u64,
    pub max_recipients: u32,
    pub degraded_accept: DegradedAccept,
    /// Offer AUTH on connections without TLS (off: credentials never cross in clear).
    pub auth_without_tls: bool,
    pub max_connections: u32,
    /// Retired: one limit shared by every service. [`ConnectionsPerIp`] replaced it, and it
    /// is kept only because the bincode encoding of stored policies and logged entries has it.
    pub max_connections_per_ip: u32,
    /// Protocol errors a session may make before it is disconnected.
    pub max_errors: u32,
    pub smtp_idle_timeout_secs: u64,
    pub pop3_idle_timeout_secs: u64,
}

/// The largest message the node-to-node transport carries in one frame, with room to spare.
pub const MAX_MESSAGE_BYTES_LIMIT: u64 = 60 * 1024 * 1024;

impl Default for MailPolicy {
    fn default() -> MailPolicy {
        MailPolicy {
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            degraded_accept: DegradedAccept::Accept,
            auth_without_tls: false,
            max_connections: 1000,
            max_connections_per_ip: 32,
            max_errors: 10,
            smtp_idle_timeout_secs: 300,
            // RFC 1939: an autologout timer must be at least 10 minutes.
            pop3_idle_timeout_secs: 600,
        }
    }
}

/// Connections one client address may hold open at once on one node, one limit per mail
/// service (0: no limit; `max-connections` still bounds all of them together). Stored under a
/// key of its own beside the mail policy, so that stores and log entries written before it
/// existed keep their encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ConnectionsPerIp {
    /// Port 25: other mail servers.
    pub smtp_connections_per_ip: u32,
    /// Ports 587 and 465: the users' mail programs sending.
    pub submission_connections_per_ip: u32,
    /// Ports 143 and 993.
    pub imap_connections_per_ip: u32,
    /// Ports 110 and 995.
    pub pop3_connections_per_ip: u32,
}

impl Default for ConnectionsPerIp {
    /// Sized for an office of 50 people behind one NAT address: desktop clients keep up to five
    /// IMAP connections per account open and phones on the office Wi-Fi a few more (Dovecot
    /// allows ten per user and address, which is 500 for 50 users); a message is sent on a
    /// connection of its own; POP3 clients poll. Port 25 takes Postfix's per-client default.
    fn default() -> ConnectionsPerIp {
        ConnectionsPerIp {
            smtp_connections_per_ip: 50,
            submission_connections_per_ip: 50,
            imap_connections_per_ip: 500,
            pop3_connections_per_ip: 100,
        }
    }
}

impl ConnectionsPerIp {
    /// The limits of a store written before they existed, from its one shared limit: no
    /// service gets less than it had, nor less than the defaults.
    pub fn from_legacy(max_connections_per_ip: u32) -> ConnectionsPerIp {
        let old = max_connections_per_ip;
        let defaults = ConnectionsPerIp::default();
        ConnectionsPerIp {
            smtp_connections_per_ip: defaults.smtp_connections_per_ip.max(old),
            submission_connections_per_ip: defaults.submission_connections_per_ip.max(old),
            imap_connections_per_ip: defaults.imap_connections_per_ip.max(old),
            pop3_connections_per_ip: defaults.pop3_connections_per_ip.max(old),
        }
    }
}

/// The certificate chain and key (PEM) that SMTP, POP3 and IMAP present to clients.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// A new mailbox with no messages.
    pub fn empty(name: &str, uidvalidity: u32) -> Mailbox {
        Mailbox {
            name: name.to_owned(),
            uidvalidity,
            uidnext: 1,
            messages: 0,
            bytes: 0,
            special_use: None,
            // RFC 7162: a mod-sequence is positive, so an untouched mailbox reports 1.
            highest_modseq: 1,
        }
    }
}
