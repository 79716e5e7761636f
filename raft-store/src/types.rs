//! The openraft type configuration and the replicated records: members, commands and their results.

use std::path::PathBuf;

pub use mcluster_types::cluster::*;
pub use mcluster_types::command::*;
pub use mcluster_types::version::{self, ClusterVersion, MemberBuild};

openraft::declare_raft_types!(
    /// The type configuration of mcluster's metadata Raft group.
    pub TypeConfig:
        D = Request,
        R = CommandResult,
        NodeId = NodeId,
        Node = Member,
        AsyncRuntime = crate::runtime::TokioWithTimeoutFloor,
);

pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, SnapshotDir>;
pub type Raft = openraft::Raft<TypeConfig, crate::StateMachine>;

/// A snapshot on disk: a directory holding a RocksDB checkpoint of the state-machine column
/// families plus `meta.bin`. Snapshots are streamed file by file between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDir {
    pub path: PathBuf,
}
