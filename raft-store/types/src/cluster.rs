//! The cluster's members and settings, domains, accounts and aliases, as replicated.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node's number in the cluster (node 1 made it).
pub type NodeId = u64;

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves mail, stores blobs, votes.
    #[default]
    Data,
    /// Votes and keeps the metadata, nothing else: the tie-breaker of a two-server pair.
    Witness,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Data => "data",
            Role::Witness => "witness",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "data" => Ok(Role::Data),
            "witness" => Ok(Role::Witness),
            _ => Err(format!("unknown role {s:?}: expected data or witness")),
        }
    }
}

/// A node as the Raft membership knows it: the payload of openraft's `Node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub role: Role,
    /// UDP address of the node's QUIC transport.
    pub raft_addr: String,
    /// TCP address of the node's admin API.
    pub admin_addr: String,
}

impl Member {
    /// What `self` shares with `other` that must be unique in a cluster (the name, either
    /// address), said for an operator; None when nothing.
    pub fn clash(&self, other: &Member) -> Option<String> {
        let same_addr = |a: &str, b: &str| match (
            a.parse::<std::net::SocketAddr>(),
            b.parse::<std::net::SocketAddr>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if self.name.eq_ignore_ascii_case(&other.name) {
            Some(format!("the name {:?}", self.name))
        } else if same_addr(&self.raft_addr, &other.raft_addr) {
            Some(format!("the raft address {}", self.raft_addr))
        } else if same_addr(&self.admin_addr, &other.admin_addr) {
            Some(format!("the admin address {}", self.admin_addr))
        } else {
            None
        }
    }
}

/// A mail domain served by the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub name: String,
    pub enabled: bool,
    pub created_at: u64,
}

/// A mailbox account. The password is stored only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub address: String,
    pub domain: String,
    pub password_hash: String,
    pub quota_mb: u64,
    pub enabled: bool,
    pub created_at: u64,
}

/// An address that delivers to other addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub address: String,
    pub domain: String,
    pub targets: Vec<String>,
}

/// Cluster-wide secrets and identity, written once when the cluster is bootstrapped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub cluster_name: String,
    /// SHA-256 (hex) of the admin API token.
    pub admin_token_sha256: String,
    /// SHA-256 (hex) of the join token.
    pub join_token_sha256: String,
    /// The cluster CA, which signs the certificate of every node that joins.
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
}

/// One of the cluster's bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    /// Every `/v1/` route.
    Admin,
    /// Only joining a node (`POST /v1/join`, `POST /v1/members`).
    Join,
    /// Every `GET` of `/v1/`, nothing that changes anything (cluster version 3; its digest is a
    /// settings key of its own, so `ClusterSettings` keeps its encoding). Appended last: the
    /// variant index is part of the log's encoding.
    ReadOnly,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenKind::Admin => "admin",
            TokenKind::Join => "join",
            TokenKind::ReadOnly => "read-only",
        })
    }
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the CA key.
        f.debug_struct("ClusterSettings")
            .field("cluster_name", &self.cluster_name)
            .finish_non_exhaustive()
    }
}

/// A node that asked to join (it holds a certificate for its id) but is not yet a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingNode {
    pub node_id: NodeId,
    pub member: Member,
}
