//! How the cluster's own commands apply: initialization, token digests, and the registration
//! of a joining node.

use crate::db::{
    CF_PENDING_NODES, CF_SETTINGS, KEY_CLUSTER, KEY_NEXT_NODE_ID, KEY_READ_ONLY_TOKEN,
};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{
    ClusterSettings, CommandResult, Member, NodeId, PendingNode, Rejection, TokenKind,
};

/// The first node of a cluster is node 1; joining nodes are numbered from here.
const FIRST_JOINED_NODE_ID: NodeId = 2;

fn rejected(rejection: Rejection) -> Result<CommandResult, StoreError> {
    Ok(CommandResult::Rejected(rejection))
}

pub(crate) fn init_cluster(
    reader: &StateReader,
    settings: &ClusterSettings,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.cluster_settings()?.is_some() {
        return rejected(Rejection::AlreadyInitialized);
    }
    batch.put(CF_SETTINGS, KEY_CLUSTER, settings);
    Ok(CommandResult::Done)
}

pub(crate) fn set_token_digest(
    reader: &StateReader,
    token: TokenKind,
    sha256: &str,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let Some(mut settings) = reader.cluster_settings()? else {
        return rejected(Rejection::NotInitialized);
    };
    match token {
        TokenKind::Admin => sha256.clone_into(&mut settings.admin_token_sha256),
        TokenKind::Join => sha256.clone_into(&mut settings.join_token_sha256),
        TokenKind::ReadOnly => {
            batch.put(CF_SETTINGS, KEY_READ_ONLY_TOKEN, sha256);
            return Ok(CommandResult::Done);
        }
    }
    batch.put(CF_SETTINGS, KEY_CLUSTER, &settings);
    Ok(CommandResult::Done)
}

/// A joining node gets the next node id, unless its name or an address is a member's.
pub(crate) fn register_node(
    reader: &StateReader,
    member: &Member,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    // A name or address a member already has would make a second node that status cannot
    // tell apart, certificates name twice, and a ghost voter.
    let membership = reader.membership()?;
    for (id, existing) in membership.membership().nodes() {
        if let Some(what) = member.clash(existing) {
            return rejected(Rejection::MemberClash(format!(
                "{what} is already used by node {id} ({})",
                existing.name
            )));
        }
    }
    // A registration that never became a member (a join given up) is replaced.
    for pending in reader.pending_nodes()? {
        if member.clash(&pending.member).is_some() {
            batch.delete(CF_PENDING_NODES, &pending.node_id.to_be_bytes());
        }
    }
    let node_id = reader
        .db
        .get::<NodeId>(CF_SETTINGS, KEY_NEXT_NODE_ID)?
        .unwrap_or(FIRST_JOINED_NODE_ID);
    batch.put(CF_SETTINGS, KEY_NEXT_NODE_ID, &(node_id + 1));
    let pending = PendingNode {
        node_id,
        member: member.clone(),
    };
    batch.put(CF_PENDING_NODES, &node_id.to_be_bytes(), &pending);
    Ok(CommandResult::NodeRegistered(node_id))
}
