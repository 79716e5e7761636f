//! raft-store owns the node's disk: the openraft type configuration, the Raft log and vote on
//! RocksDB, the replicated state machine, snapshots and the on-disk format version.
//!
//! raft-store does no networking: it never opens a socket and knows nothing of peers. It does not
//! decide policy either (who may write what): it applies committed commands deterministically.

pub mod blob_store;
mod db;
mod directory;
mod error;
pub mod failpoint;
mod log_store;
mod mail;
mod membership;
mod reader;
pub mod runtime;
mod snapshot;
mod state_machine;
pub use mcluster_types::{api, calendar, summary, version};
mod types;
mod versions;

#[cfg(test)]
mod tests;

pub use crate::db::{FORMAT_VERSION, MAX_ENTRY_BYTES, encoded_len};
pub use crate::error::StoreError;
pub use crate::log_store::LogStore;
pub use crate::mail::access::{AccessEntry, AccessList, AccessPattern, DomainPattern};
pub use crate::mail::dkim::{DkimAlgorithm, DkimKey};
pub use crate::mail::folders::{AppendedMessage, DELIMITER, FlagChange, FlagOp};
pub use crate::mail::protection::{
    ConnectionBudgets, LockTarget, Lockout, PasswordPolicy, ProtectionPolicy,
};
pub use crate::mail::queue::{
    AttemptError, AttemptOutcome, NoticeKind, Outbound, OutboundPolicy, OutboundTls, QueueAction,
    QueuedMessage, QueuedRecipient, RecipientState, SmarthostMode,
};
pub use crate::mail::{
    BlobHash, BlobRecord, ClientTls, ConnectionsPerIp, DEFAULT_MAILBOXES, DegradedAccept, Delivery,
    DeliveryOutcome, DrainPlan, FiledDelivery, Filing, INBOX, MAX_MESSAGE_BYTES_LIMIT, MailPolicy,
    Mailbox, Message, MisplacedBlobs, flag,
};
pub use crate::reader::{MailChange, StateDigest, StateReader};
pub use crate::snapshot::{SnapshotBuilder, incoming_dir};
pub use crate::state_machine::StateMachine;
pub use crate::summary::{MessageLimits, TooComplex};
pub use crate::types::{
    Account, Alias, ClusterSettings, Command, CommandResult, Domain, Entry, LogId, Member, NodeId,
    PendingNode, Raft, Rejection, Request, Role, Snapshot, SnapshotDir, SnapshotMeta,
    StoredMembership, TokenKind, TypeConfig, Vote,
};
pub use mcluster_types::version::{ClusterVersion, Feature, MemberBuild};

use std::path::{Path, PathBuf};

/// Opens the store under `dir` and returns the two halves openraft needs.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    let db = db::Db::open(dir)?;
    snapshot::remove_partial(&db.snapshot_root)?;
    Ok((LogStore::new(db.clone()), StateMachine::new(db)))
}

/// Where a store under `dir` keeps its snapshots (for receiving one from a peer).
pub fn snapshot_root(dir: &Path) -> PathBuf {
    dir.join("snapshots")
}
