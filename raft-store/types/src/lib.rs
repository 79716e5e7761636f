//! The replicated records of mcluster: what a command carries and what the state machine
//! stores. Commands and their results (`command.rs`), members, domains, accounts and aliases
//! (`cluster.rs`), the mail model (`mail.rs`, `folders.rs`, `queue.rs`), policies and abuse
//! protection (`protection.rs`, `access.rs`, `dkim.rs`), the per-message summary
//! (`summary.rs`), and the versions and feature gates (`version.rs`).
//!
//! Only types and the pure logic that belongs to them (parsing, matching, the summary's
//! parser): no storage, no network, no async runtime. raft-store applies these records and
//! re-exports them; the node and the CLI read them.
//!
//! Their encoding is the log's and the store's (bincode, variant indexes included): a variant
//! or field is only ever appended, never reordered or removed.

pub mod access;
pub mod api;
pub mod calendar;
pub mod cluster;
pub mod command;
pub mod dkim;
pub mod folders;
pub mod mail;
pub mod protection;
pub mod queue;
pub mod summary;
pub mod version;

pub use crate::access::{AccessEntry, AccessList, AccessPattern, DomainPattern};
pub use crate::cluster::{
    Account, Alias, ClusterSettings, Domain, Member, NodeId, PendingNode, Role, TokenKind,
};
pub use crate::command::{Command, CommandResult, Rejection, Request};
pub use crate::dkim::{DkimAlgorithm, DkimKey};
pub use crate::folders::{AppendedMessage, DELIMITER, FlagChange, FlagOp};
pub use crate::mail::{
    BlobHash, BlobRecord, ClientTls, ConnectionsPerIp, DEFAULT_MAILBOXES, DegradedAccept, Delivery,
    DeliveryOutcome, FiledDelivery, Filing, INBOX, MAX_MESSAGE_BYTES_LIMIT, MailPolicy, Mailbox,
    Message, flag,
};
pub use crate::protection::{
    ConnectionBudgets, LockTarget, Lockout, PasswordPolicy, ProtectionPolicy,
};
pub use crate::queue::{
    AttemptError, AttemptOutcome, NoticeKind, Outbound, OutboundPolicy, OutboundTls, QueueAction,
    QueuedMessage, QueuedRecipient, RecipientState, SmarthostMode,
};
pub use crate::summary::{MessageLimits, MessageSummary, TooComplex};
pub use crate::version::{ClusterVersion, Feature, MemberBuild};

/// What `value` takes encoded as in the log and the store, counted without building it.
pub fn encoded_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut size, bincode::config::standard()) {
        Ok(()) => size.bytes_written,
        // Our types always encode; a failure would be a bug, and counts as too large.
        Err(_) => usize::MAX,
    }
}
