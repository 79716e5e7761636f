//! openraft's network over the QUIC transport: a factory that hands out one client per peer, and
//! the client that turns each Raft RPC into a request on its own stream.

use std::future::Future;
use std::time::Duration;

use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, RaftNetworkV2};
use raft_store::{Member, NodeId, Snapshot, SnapshotDir, TypeConfig, Vote};
use tokio::io::AsyncWriteExt;

use crate::error::ReplicationError;
use crate::transport::{Transport, unexpected};
use crate::wire::{Envelope, Request, Response, SnapshotFile, read_frame, write_frame};

/// An AppendEntries request carries at most about this many encoded bytes of entries (at least
/// one entry, whatever its size): a larger one sends a prefix and answers `PartialSuccess`, and
/// openraft sends the rest next.
pub(crate) const APPEND_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// The slowest link an AppendEntries is given time for: openraft's deadline (the heartbeat
/// interval) suits a heartbeat, not megabytes, and a large entry that always times out would
/// be sent again and again, stopping every commit behind it.
const MIN_LINK_BYTES_PER_SEC: u64 = 8 * 1024 * 1024;

/// The time an AppendEntries of `bytes` gets: openraft's deadline plus the transfer at the
/// slowest link.
pub(crate) fn append_ttl(base: Duration, bytes: usize) -> Duration {
    base + Duration::from_micros((bytes as u64).saturating_mul(1_000_000) / MIN_LINK_BYTES_PER_SEC)
}

/// Cuts `entries` to a prefix of about `APPEND_CHUNK_BYTES` (at least one entry). Returns the
/// encoded bytes kept and whether anything was cut.
pub(crate) fn cut_to_chunk(entries: &mut Vec<raft_store::Entry>) -> (usize, bool) {
    let mut bytes = 0;
    let mut keep = 0;
    for entry in entries.iter() {
        let n = raft_store::encoded_len(entry);
        if keep > 0 && bytes + n > APPEND_CHUNK_BYTES {
            break;
        }
        bytes += n;
        keep += 1;
    }
    let cut = keep < entries.len();
    entries.truncate(keep);
    (bytes, cut)
}

/// Hands openraft a [`PeerClient`] per target.
#[derive(Clone)]
pub struct NetworkFactory {
    transport: Transport,
    append_floor: Duration,
}

impl NetworkFactory {
    pub fn new(transport: Transport) -> NetworkFactory {
        NetworkFactory {
            transport,
            append_floor: Duration::ZERO,
        }
    }

    /// Gives every AppendEntries at least `floor` to be answered. openraft's deadline for one
    /// is the heartbeat interval (50 ms by default): on a host short of CPU a follower's fsync
    /// or this process's own scheduling easily takes longer, and an answer cut off there is
    /// an acknowledgement lost: replication backs off, no quorum acknowledges the leader, and
    /// its lease (and the virtual IP with it) lapses with every node up. An answer that comes
    /// within the lease (the election timeout) still keeps the leader in office.
    pub fn with_append_floor(mut self, floor: Duration) -> NetworkFactory {
        self.append_floor = floor;
        self
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        PeerClient {
            transport: self.transport.clone(),
            target,
            addr: node.raft_addr.clone(),
            append_floor: self.append_floor,
        }
    }
}

/// Sends Raft RPCs to one peer.
pub struct PeerClient {
    transport: Transport,
    target: NodeId,
    addr: String,
    append_floor: Duration,
}

impl PeerClient {
    async fn rpc(
        &self,
        kind: RPCTypes,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<TypeConfig>> {
        self.rpc_within(kind, request, option.hard_ttl()).await
    }

    async fn rpc_within(
        &self,
        kind: RPCTypes,
        request: Request,
        ttl: Duration,
    ) -> Result<Response, RPCError<TypeConfig>> {
        match tokio::time::timeout(ttl, self.transport.call(self.target, &self.addr, request)).await
        {
            Err(_) => Err(RPCError::Timeout(Timeout {
                action: kind,
                id: self.transport.node_id(),
                target: self.target,
                timeout: ttl,
            })),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(to_rpc_error(err)),
        }
    }

    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
    ) -> Result<SnapshotResponse<TypeConfig>, ReplicationError> {
        let unreachable = crate::transport::unreachable(self.target);
        // Open every file before sending anything: a newer snapshot may prune this directory
        // meanwhile, and open files stay readable.
        let mut files = Vec::new();
        let mut handles = Vec::new();
        let mut dir = tokio::fs::read_dir(&snapshot.snapshot.path)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| unreachable(e.to_string()))?
        {
            let file = tokio::fs::File::open(entry.path())
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let len = file
                .metadata()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .len();
            files.push(SnapshotFile {
                name: entry.file_name().to_string_lossy().into_owned(),
                len,
            });
            handles.push(file);
        }
        let total: u64 = files.iter().map(|f| f.len).sum();
        let conn = self.transport.connection(self.target, &self.addr).await?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let request = Request::Snapshot {
            vote,
            meta: snapshot.meta.clone(),
            files,
        };
        let envelope = Envelope {
            from: self.transport.node_id(),
            request,
        };
        write_frame(&mut send, &envelope)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        for mut file in handles {
            tokio::io::copy(&mut file, &mut send)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
        }
        send.flush().await.map_err(|e| unreachable(e.to_string()))?;
        send.finish().map_err(|e| unreachable(e.to_string()))?;
        tracing::info!(target_node = self.target, bytes = total, "sent snapshot");
        match read_frame(&mut recv)
            .await
            .map_err(|e| unreachable(e.to_string()))?
        {
            Response::Snapshot(response) => Ok(response),
            other => Err(unexpected(self.target, other)),
        }
    }
}

fn to_rpc_error(err: ReplicationError) -> RPCError<TypeConfig> {
    match err {
        ReplicationError::PeerUnreachable { .. } => RPCError::Unreachable(Unreachable::new(&err)),
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotDir;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (bytes, cut) = cut_to_chunk(&mut rpc.entries);
        let last = rpc.entries.last().map(|entry| entry.log_id);
        let ttl = append_ttl(option.hard_ttl().max(self.append_floor), bytes);
        match self
            .rpc_within(RPCTypes::AppendEntries, Request::Append(rpc), ttl)
            .await?
        {
            // The follower has the prefix; openraft sends the rest in the next request.
            Response::Append(AppendEntriesResponse::Success) if cut => {
                Ok(AppendEntriesResponse::PartialSuccess(last))
            }
            Response::Append(response) => Ok(response),
            other => Err(to_rpc_error(unexpected(self.target, other))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .rpc(RPCTypes::Vote, Request::Vote(rpc), &option)
            .await?
        {
            Response::Vote(response) => Ok(response),
            other => Err(to_rpc_error(unexpected(self.target, other))),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .rpc(RPCTypes::Vote, Request::PreVote(rpc), &option)
            .await?
        {
            Response::Vote(response) => Ok(response),
            other => Err(to_rpc_error(unexpected(self.target, other))),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = self.send_snapshot(vote, snapshot) => match result {
                Ok(response) => Ok(response),
                Err(err) => {
                    self.transport.drop_connection(self.target).await;
                    Err(StreamingError::Unreachable(Unreachable::new(&err)))
                }
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .rpc(
                RPCTypes::TransferLeader,
                Request::TransferLeader(req),
                &option,
            )
            .await?
        {
            Response::TransferLeader(response) => Ok(response),
            other => Err(to_rpc_error(unexpected(self.target, other))),
        }
    }

    fn backoff(&self) -> Option<Backoff> {
        // An unreachable peer is retried at 50 ms, doubling up to 1 s: quick to notice a peer
        // that restarted, without spinning on one that is gone.
        let delays = (0..)
            .map(|n: u32| Duration::from_millis(50u64.saturating_mul(1 << n.min(5)).min(1000)));
        Some(Backoff::new(delays))
    }
}
