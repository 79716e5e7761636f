//! Errors of the transport, one variant per case a caller treats differently.

use raft_store::NodeId;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("read {path}: {reason}")]
    Pem { path: String, reason: String },
    #[error("tls: {0}")]
    Tls(rustls::Error),
    #[error("transport configuration: {0}")]
    Config(String),
    #[error("sign certificate: {0}")]
    Sign(String),
    #[error("bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("node {node_id} is unreachable: {reason}")]
    PeerUnreachable { node_id: NodeId, reason: String },
    #[error("node {node_id} broke the protocol: {reason}")]
    Protocol { node_id: NodeId, reason: String },
    #[error("node {node_id} is not the leader (leader: {leader:?})")]
    NotLeader {
        node_id: NodeId,
        leader: Option<NodeId>,
    },
    #[error("node {node_id} failed the request: {reason}")]
    Remote { node_id: NodeId, reason: String },
}
