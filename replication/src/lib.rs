//! replication owns the wire between nodes: a QUIC endpoint with mutual TLS from the cluster CA,
//! openraft's network (append, vote, pre-vote, transfer-leader, full snapshot) over it, write
//! forwarding and read-index requests from followers to the leader, blob mirroring and fetching
//! between data nodes, and certificate issuing for joining nodes.
//!
//! replication never opens RocksDB and holds no state of its own beyond open connections:
//! received snapshots are handed to raft-store through openraft, received blobs to its blob store.

pub mod blob;
mod error;
mod liveness;
mod network;
pub mod pki;
mod server;
mod transport;
pub mod wire;

#[cfg(test)]
mod tests;

pub use crate::error::ReplicationError;
pub use crate::network::{NetworkFactory, PeerClient};
pub use crate::server::serve;
pub use crate::transport::Transport;
