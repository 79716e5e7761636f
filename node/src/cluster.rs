//! The node's handle on the cluster: replicated writes (local on the leader, forwarded over QUIC
//! from a follower), linearizable reads, and membership and leadership changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, RaftMetrics, ReadPolicy, ServerState};
use raft_store::{
    Command, CommandResult, Member, NodeId, Raft, Rejection, Request, Role, StateReader, TypeConfig,
};
use replication::{ReplicationError, Transport};

use crate::config::Config;

/// How long a request waits for a leader to appear (an election in progress) before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How long a write may take in all, retries included.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How many entries behind the leader's last one a voter may be and still count as caught up
/// (a leadership transfer waits for the target to have the rest).
const CAUGHT_UP_LAG: u64 = 100;
/// How long a joining learner may take to catch up before its promotion is given up.
const CATCH_UP_WAIT: Duration = Duration::from_secs(120);

/// The outcome of one write attempt that did not succeed.
enum Attempt {
    /// Worth another try with the same request id.
    Retry(String),
    Failed(ClusterError),
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no leader is known: the cluster is electing one or has lost its quorum")]
    NoLeader,
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    /// A command of a cluster version that is not active yet; nothing was proposed.
    #[error("{0}")]
    NotActive(#[from] raft_store::version::NotActive),
    /// The entry would be larger than any entry the log takes; nothing was proposed.
    #[error("the change is too large to replicate ({bytes} bytes encoded, at most {max})")]
    TooLarge { bytes: usize, max: usize },
}

/// Everything a request handler needs, shared by all of them.
pub struct Cluster {
    pub config: Config,
    pub raft: Raft,
    pub reader: StateReader,
    pub transport: Transport,
    /// The virtual IP's state, and the fence a leadership hand-over raises around it.
    pub vip: std::sync::Arc<crate::vip::state::VipState>,
    /// The term this node leads and since when (see `track_leadership`).
    pub leader_since: std::sync::Mutex<Option<(u64, std::time::Instant)>>,
}

impl Cluster {
    pub fn metrics(&self) -> RaftMetrics<TypeConfig> {
        self.raft.metrics().borrow_watched().clone()
    }

    /// How long this node has been the leader, if it is.
    pub fn leader_for(&self) -> Option<Duration> {
        let since = *self.leader_since.lock().expect("leader clock lock");
        since.map(|(_, at)| at.elapsed())
    }

    /// Keeps `leader_since` current: follows Raft's metrics until Raft stops.
    pub async fn track_leadership(&self) {
        let mut metrics = self.raft.metrics();
        loop {
            let (leading, term) = {
                let m = metrics.borrow_watched();
                (m.state == ServerState::Leader, m.current_term)
            };
            {
                let mut since = self.leader_since.lock().expect("leader clock lock");
                match *since {
                    Some((t, _)) if leading && t == term => {}
                    _ if leading => *since = Some((term, std::time::Instant::now())),
                    _ => *since = None,
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn is_leader(&self) -> bool {
        self.metrics().state == ServerState::Leader
    }

    /// The leader and its addresses, waiting briefly for an election to finish.
    pub async fn leader(&self) -> Result<(NodeId, Member), ClusterError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let metrics = self.metrics();
            if let Some(leader) = metrics.current_leader
                && let Some(member) = metrics.membership_config.membership().get_node(&leader)
            {
                return Ok((leader, member.clone()));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Commits `command` through the leader and returns how it applied. Returns only after the
    /// entry is committed (fsync'd on a majority), applied on the leader, and applied on this
    /// node (so a read here right after sees it). The request keeps
    /// one id across retries, so a retry after an unknown outcome cannot apply it twice; every
    /// attempt, and the whole call, is bounded by `WRITE_DEADLINE`.
    pub async fn write(&self, command: Command) -> Result<CommandResult, ClusterError> {
        // The feature gate: the state machine refuses the same command again, the same way on
        // every node, but it must not reach the log of a cluster whose members may not all
        // know it. Versions only move forward, so what is active here is active at apply.
        if command.feature().is_some() {
            let active = self
                .reader
                .cluster_version()
                .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
            raft_store::version::gate(&command, active)?;
        }
        let request = Request::new(command);
        // An entry too large to send to the followers in time would be retried forever and
        // stop every write behind it: refuse it here, before the log has it.
        let bytes = raft_store::encoded_len(&request);
        if bytes > raft_store::MAX_ENTRY_BYTES {
            return Err(ClusterError::TooLarge {
                bytes,
                max: raft_store::MAX_ENTRY_BYTES,
            });
        }
        let deadline = tokio::time::Instant::now() + WRITE_DEADLINE;
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.write_once(&request)).await;
            match attempt {
                Ok(Ok((result, index))) => {
                    // Read-your-writes on this node: a forwarded write applied on the leader is
                    // visible here once this node has applied the same index.
                    self.raft
                        .wait(Some(LEADER_WAIT))
                        .applied_index_at_least(Some(index), "apply own write")
                        .await
                        .map_err(|e| {
                            ClusterError::Unavailable(format!("apply write {index}: {e}"))
                        })?;
                    return Ok(result);
                }
                // Leadership moved, is being decided, or the outcome is unknown: try again until
                // the deadline (safe: the request id makes the retry idempotent).
                Ok(Err(Attempt::Retry(reason))) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(reason = %reason, "retrying write");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(Attempt::Retry(_))) => return Err(ClusterError::NoLeader),
                Ok(Err(Attempt::Failed(err))) => return Err(err),
                Err(_) => {
                    return Err(ClusterError::Unavailable(format!(
                        "the write did not commit within {WRITE_DEADLINE:?}; its outcome is unknown"
                    )));
                }
            }
        }
    }

    async fn write_once(&self, request: &Request) -> Result<(CommandResult, u64), Attempt> {
        let forward = match self.raft.client_write(request.clone()).await {
            Ok(response) => return Ok((response.data, response.log_id.index)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => forward,
            // The entry was appended but lost its leader before committing; it may still commit
            // under the next leader, which the request id makes harmless.
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(err))) => {
                return Err(Attempt::Retry(err.to_string()));
            }
            Err(err) => return Err(Attempt::Failed(ClusterError::Unavailable(err.to_string()))),
        };
        let (Some(leader), Some(member)) = (forward.leader_id, forward.leader_node) else {
            return Err(Attempt::Retry("no leader known".into()));
        };
        match self
            .transport
            .forward_write(leader, &member, request.clone())
            .await
        {
            Ok(result) => Ok(result),
            Err(
                err @ (ReplicationError::NotLeader { .. }
                | ReplicationError::PeerUnreachable { .. }),
            ) => Err(Attempt::Retry(err.to_string())),
            Err(err) => Err(Attempt::Failed(ClusterError::Unavailable(err.to_string()))),
        }
    }

    /// Like [`Cluster::write`], but a rejection is an error.
    pub async fn write_ok(&self, command: Command) -> Result<CommandResult, ClusterError> {
        match self.write(command).await? {
            CommandResult::Rejected(rejection) => Err(ClusterError::Rejected(rejection)),
            other => Ok(other),
        }
    }

    /// Waits until this node's state machine includes every write committed before the call
    /// (a read index from the leader), so the read that follows is linearizable.
    pub async fn linearize(&self) -> Result<(), ClusterError> {
        if self.is_leader() {
            match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(
                    openraft::error::LinearizableReadError::ForwardToLeader(_),
                )) => {}
                Err(err) => return Err(ClusterError::Unavailable(err.to_string())),
            }
        }
        let (leader, member) = self.leader().await?;
        let index = self
            .transport
            .read_index(leader, &member)
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!("read index from leader {leader}: {e}"))
            })?;
        self.raft
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!("catch up to read index {index}: {e}"))
            })?;
        Ok(())
    }

    /// Adds a node that joined (it holds a certificate for `node_id`) as a learner, waits until it
    /// has caught up, then promotes it to voter. Idempotent: a voter is left as it is.
    pub async fn add_member(&self, node_id: NodeId) -> Result<Member, ClusterError> {
        // A new leader may not have applied the registration yet.
        self.linearize().await?;
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership().clone();
        if membership.voter_ids().any(|id| id == node_id) {
            let member = membership
                .get_node(&node_id)
                .cloned()
                .expect("a voter is a node of the membership");
            return Ok(member);
        }
        let member = match membership.get_node(&node_id) {
            Some(member) => member.clone(),
            None => {
                let pending = self
                    .reader
                    .pending_node(node_id)
                    .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
                let Some(pending) = pending else {
                    return Err(ClusterError::NotFound(format!(
                        "node {node_id} has not joined: run mclusterctl join"
                    )));
                };
                pending.member
            }
        };
        tracing::info!(node_id, name = %member.name, "adding learner");
        let added = self
            .raft
            .add_learner(node_id, member.clone(), false)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("add learner {node_id}: {e}")))?;
        let target = added.log_id.index;
        self.raft
            .wait(Some(CATCH_UP_WAIT))
            .metrics(
                |m| {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&node_id).cloned().flatten());
                    matched.is_some_and(|l| l.index >= target)
                },
                "learner catches up",
            )
            .await
            .map_err(|e| {
                ClusterError::Unavailable(format!("learner {node_id} did not catch up: {e}"))
            })?;
        tracing::info!(node_id, "promoting caught-up learner to voter");
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("promote {node_id}: {e}")))?;
        Ok(member)
    }

    /// Refuses (with the reason) the removal of a data node that is a replica of some blob
    /// when no other data voter could take its copy: the mail would be on one machine only
    /// until a replacement joined.
    pub async fn copies_stay_after_removing(&self, node_id: NodeId) -> Result<(), ClusterError> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        let Some(member) = membership.get_node(&node_id) else {
            return Ok(());
        };
        if member.role != Role::Data {
            return Ok(());
        }
        let other_data_voters = membership
            .voter_ids()
            .filter(|id| *id != node_id)
            .filter(|id| {
                membership
                    .get_node(id)
                    .is_some_and(|m| m.role == Role::Data)
            })
            .count();
        if other_data_voters >= 2 {
            return Ok(());
        }
        let reader = self.reader.clone();
        let held = tokio::task::spawn_blocking(move || reader.replica_count(node_id))
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        if held == 0 {
            return Ok(());
        }
        Err(ClusterError::Conflict(format!(
            "refused: node {node_id} ({}) holds one of the two copies of {held} messages and no \
             other data node can take them; join its replacement first, or leave with --force \
             (those messages then have one copy until a replacement joins and pulls them)",
            member.name
        )))
    }

    /// Before data node `node_id` leaves a cluster with other data voters to take its copies:
    /// gives every blob naming it that lacks two other data voters as replicas one more
    /// (`AddReplicas`, which that node then pulls), and answers how many blobs still lack two
    /// confirmed copies elsewhere. 0: it may leave without any message dropping to one copy.
    /// Each call does one pass (bounded by `DRAIN_BATCH` new copies), so a caller asks again.
    pub async fn drain_data_node(&self, node_id: NodeId) -> Result<u64, ClusterError> {
        const DRAIN_BATCH: usize = 10_000;
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        if membership
            .get_node(&node_id)
            .is_none_or(|member| member.role != Role::Data)
        {
            return Ok(0);
        }
        let data_voters = self.data_voters();
        let reader = self.reader.clone();
        let plan = tokio::task::spawn_blocking(move || {
            reader.drain_plan(node_id, &data_voters, DRAIN_BATCH)
        })
        .await
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        for (to, blobs) in plan.add {
            for chunk in blobs.chunks(1000) {
                self.write_ok(Command::AddReplicas {
                    to,
                    blobs: chunk.to_vec(),
                })
                .await?;
            }
        }
        if plan.waiting > 0 {
            tracing::info!(
                node = node_id,
                waiting = plan.waiting,
                "draining a leaving data node: waiting for copies"
            );
        }
        Ok(plan.waiting)
    }

    /// Removes a node from the cluster. The leader cannot remove itself: fail over first.
    pub async fn remove_member(&self, node_id: NodeId) -> Result<(), ClusterError> {
        let change = self.removal(node_id)?;
        tracing::info!(node_id, "removing member");
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|e| ClusterError::Unavailable(format!("remove {node_id}: {e}")))?;
        Ok(())
    }

    /// The membership change that removes `node_id`, or why it cannot be removed (not a
    /// member, the leader itself, the last voter). Asked before a leave drains a data node, so
    /// that a leave that must fail anyway copies nothing first.
    pub fn removal(&self, node_id: NodeId) -> Result<ChangeMembers<NodeId, Member>, ClusterError> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        if membership.get_node(&node_id).is_none() {
            return Err(ClusterError::NotFound(format!(
                "node {node_id} is not a member"
            )));
        }
        if node_id == self.config.node_id {
            return Err(ClusterError::Conflict(format!(
                "node {node_id} is the leader: move leadership first (mclusterctl failover)"
            )));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let change = if voters.contains(&node_id) {
            if voters.len() <= 1 {
                return Err(ClusterError::Conflict(
                    "cannot remove the last voter".into(),
                ));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
        };
        Ok(change)
    }

    /// How long a member may leave the leader's requests unanswered before the leader calls it
    /// unreachable: as long as a follower waits for the leader before it stands for election.
    /// Mirroring waits far less for a partner (three heartbeat intervals, `blobs.rs`), since a
    /// wrong guess there costs only a degraded accept; here it would refuse a good failover
    /// target or flag a busy node down in `status`.
    pub fn unreachable_after(&self) -> Duration {
        self.config.election_timeout_max
    }

    /// On the leader: how long `node` has left this node's requests unanswered (heartbeats go
    /// out every heartbeat interval, so a live node's silence stays below about one interval,
    /// also when this node is starved of CPU: see `replication::Transport::silence`). `None`
    /// when this node is not the leader.
    pub fn raft_silence(&self, node: NodeId) -> Option<Duration> {
        if self.metrics().state != ServerState::Leader {
            return None;
        }
        Some(self.transport.silence(node))
    }

    /// Why `id` cannot take leadership now, in one sentence; None when it can: a data voter
    /// that answers heartbeats and is within `CAUGHT_UP_LAG` entries of the leader's last
    /// one (openraft's transfer waits until it has the rest).
    pub fn leadership_problem(&self, id: NodeId) -> Option<String> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        let Some(member) = membership.get_node(&id) else {
            return Some(format!("node {id} is not a member"));
        };
        let who = format!("node {id} ({})", member.name);
        if !membership.voter_ids().any(|v| v == id) {
            return Some(format!("{who} is not a voter"));
        }
        if member.role != Role::Data {
            return Some(format!("{who} is a witness, which never serves mail"));
        }
        if id == self.config.node_id {
            return None;
        }
        let silence_limit = self.unreachable_after();
        match self.raft_silence(id) {
            Some(silence) if silence > silence_limit => {
                return Some(format!(
                    "{who} is not reachable: it has answered nothing for {:.1} s",
                    silence.as_secs_f64()
                ));
            }
            Some(_) => {}
            None => return Some("this node is not the leader".into()),
        }
        let last = metrics.last_log_index.unwrap_or(0);
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).cloned().flatten())
            .map(|l| l.index);
        match matched {
            // Under load a healthy follower is always a few entries behind the leader's last
            // one; a transfer waits for the target to have the rest.
            Some(index) if index + CAUGHT_UP_LAG >= last => None,
            Some(index) => Some(format!(
                "{who} is {} entries behind the leader",
                last - index
            )),
            None => Some(format!("{who} has not caught up with the leader yet")),
        }
    }

    /// Data voters that could take leadership now (see `leadership_problem`).
    /// The data nodes that are voters, in id order.
    pub fn data_voters(&self) -> Vec<NodeId> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter(|id| {
                membership
                    .get_node(id)
                    .is_some_and(|m| m.role == Role::Data)
            })
            .collect()
    }

    pub fn caught_up_data_voters(&self) -> Vec<NodeId> {
        let metrics = self.metrics();
        metrics
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| *id != self.config.node_id)
            .filter(|id| self.leadership_problem(*id).is_none())
            .collect()
    }

    /// Moves leadership to `to` (or to any caught-up data voter) and waits until it has it.
    pub async fn failover(&self, to: Option<NodeId>) -> Result<NodeId, ClusterError> {
        if !self.is_leader() {
            return Err(ClusterError::Unavailable("not the leader".into()));
        }
        let target = match to {
            Some(id) if id == self.config.node_id => return Ok(id),
            Some(id) => match self.leadership_problem(id) {
                None => id,
                Some(problem) => {
                    return Err(ClusterError::Conflict(format!(
                        "refused, nothing moved: {problem}"
                    )));
                }
            },
            None => *self.caught_up_data_voters().first().ok_or_else(|| {
                ClusterError::Conflict(
                    "refused, nothing moved: no other data voter is reachable and caught up".into(),
                )
            })?,
        };
        tracing::info!(to = target, "transferring leadership");
        // The target's transfer election does not wait for this leader's lease, so the VIP
        // must be down here before leadership moves; it stays down until the hand-over ends.
        let _step_down = self.vip.step_down().await;
        // openraft's errors are long dumps of its state: they go to the log, the caller gets a
        // sentence.
        if let Err(err) = self.raft.trigger().transfer_leader(target).await {
            tracing::warn!(to = target, error = %err, "leadership transfer failed");
            return Err(ClusterError::Unavailable(format!(
                "the leadership transfer to node {target} could not start"
            )));
        }
        if let Err(err) = self
            .raft
            .wait(Some(LEADER_WAIT))
            .current_leader(target, "leadership transfer")
            .await
        {
            tracing::warn!(to = target, error = %err, "leadership did not move");
            return Err(ClusterError::Unavailable(format!(
                "leadership did not move to node {target} within {LEADER_WAIT:?}"
            )));
        }
        Ok(target)
    }

    /// Members with their voter flag and, on the leader, how far each one's log matches.
    pub fn members(&self) -> Vec<MemberView> {
        let metrics = self.metrics();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = match metrics.replication.as_ref() {
            Some(replication) => replication
                .iter()
                .map(|(id, log_id)| (*id, log_id.as_ref().map(|l| l.index)))
                .collect(),
            None => BTreeMap::new(),
        };
        membership
            .nodes()
            .map(|(id, member)| MemberView {
                node_id: *id,
                name: member.name.clone(),
                role: member.role,
                voter: voters.contains(id),
                raft_addr: member.raft_addr.clone(),
                admin_addr: member.admin_addr.clone(),
                matched_index: if *id == self.config.node_id && metrics.state == ServerState::Leader
                {
                    metrics.last_log_index
                } else {
                    matched.get(id).copied().flatten()
                },
            })
            .collect()
    }
}

pub use raft_store::api::MemberView;
