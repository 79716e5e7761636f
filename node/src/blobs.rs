//! Message blobs on a data node: storing a new blob here and on the mirror partner at the same
//! time, reading a blob (from local disk or a replica), pulling the blobs this node is missing
//! (resync), and deleting blobs no message refers to (garbage collection).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use raft_store::blob_store::{self, BlobStore};
use raft_store::{BlobHash, Command, DegradedAccept, Member, NodeId, Role};

use crate::cluster::Cluster;

/// After a failed push, a partner is skipped (no waiting on it per message) until the resync
/// loop's probe reaches it again, and at most this long.
const PEER_DOWN_BACKOFF: Duration = Duration::from_secs(30);
/// How long a probe of a peer marked down may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A push that fails faster than this is tried once more on a fresh connection.
const QUICK_FAILURE: Duration = Duration::from_millis(500);
/// How often the resync task looks for blobs this node is missing (a prefix scan of its own
/// missing list: cheap when there is none).
const RESYNC_INTERVAL: Duration = Duration::from_millis(500);
/// Blobs installed and confirmed to the cluster per `BlobsStored` entry (32 KiB of hashes).
const RESYNC_BATCH: usize = 1024;
/// Blob fetches a resync pass keeps in flight: enough to hide the round trips and keep the
/// peer's disk busy, few enough to bound memory (each holds one blob).
const RESYNC_PARALLEL: usize = 32;
/// How often unreferenced blob files are looked for.
const GC_INTERVAL: Duration = Duration::from_secs(600);
/// A file no record refers to is deleted only when it is at least this old and was already
/// unreferenced at the previous sweep: a delivery in flight has written its blob before the
/// record commits, and a POP3/IMAP session may still read a message another session expunged.
const GC_MIN_AGE: Duration = Duration::from_secs(600);
/// Degraded accepts are logged at most this often (each is also counted in the metrics).
const DEGRADED_LOG_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no mirror partner could store the message and degraded accept is refused")]
    NoMirror,
    #[error("could not store the message locally: {0}")]
    Local(std::io::Error),
    #[error("message unavailable: {0}")]
    Unavailable(String),
}

/// Where a new blob was stored, for the `Delivery` record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub hash: BlobHash,
    pub replicas: Vec<NodeId>,
    pub missing: Vec<NodeId>,
}

crate::counters::counters! {
    /// Counters shown in `/metrics` and the node status.
    pub struct BlobMetrics {
        stored => "mcluster_blobs_stored_total",
            "Blobs written by this node as receiver.";
        mirrored => "mcluster_blobs_mirrored_total",
            "Blobs also fsync'd by a mirror partner.";
        degraded_accepts => "mcluster_degraded_accepts_total",
            "Messages accepted with one copy.";
        mirror_failures => "mcluster_mirror_failures_total",
            "Failed pushes to a mirror partner.";
        resync_fetched => "mcluster_resync_fetched_total",
            "Blobs pulled during resync.";
        resync_failures => "mcluster_resync_failures_total",
            "Failed resync fetches.";
        gc_removed => "mcluster_blobs_gc_removed_total",
            "Unreferenced blob files deleted.";
    }
    also {
        /// 1 while the last write could not be mirrored.
        degraded: AtomicBool,
        /// On the leader, at its last placement pass: blobs that name a replica which left the
        /// cluster (one live copy at most until they are moved and pulled).
        misplaced: AtomicU64,
        /// On the leader, at its last placement pass: blob copies short of every blob having two
        /// live, confirmed copies (not yet placed, still to pull, or on a data node that does not
        /// answer).
        copies_short: AtomicU64,
    }
}

pub struct Blobs {
    store: BlobStore,
    cluster: Arc<Cluster>,
    pub metrics: BlobMetrics,
    down_until: Mutex<HashMap<NodeId, Instant>>,
    last_degraded_log: Mutex<Option<Instant>>,
    /// When this node last handed leadership away because its disk failed.
    last_disk_handover: Mutex<Option<Instant>>,
    /// Where the last resync pass stopped, if it stopped before the end of the list.
    resync_cursor: Mutex<Option<BlobHash>>,
}

/// How often the leader looks for blobs whose replica left the cluster, and how many it moves
/// per entry.
const PLACEMENT_INTERVAL: Duration = Duration::from_secs(3);
const PLACEMENT_BATCH: usize = 1000;

/// A leader whose blob disk fails hands leadership (and the VIP) to another data node at most
/// this often, so two sick nodes do not pass it back and forth.
const DISK_HANDOVER_EVERY: Duration = Duration::from_secs(60);

impl Blobs {
    pub fn new(store: BlobStore, cluster: Arc<Cluster>) -> Blobs {
        Blobs {
            store,
            cluster,
            metrics: BlobMetrics::default(),
            down_until: Mutex::new(HashMap::new()),
            last_degraded_log: Mutex::new(None),
            last_disk_handover: Mutex::new(None),
            resync_cursor: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    fn node_id(&self) -> NodeId {
        self.cluster.config.node_id
    }

    /// The other data voters in mirror order: the ring of data node ids starting after this one.
    /// Every node computes the same order, so with three or more data nodes the load spreads
    /// evenly and a dead partner is skipped for the next one.
    fn partner_candidates(&self) -> Vec<(NodeId, Member)> {
        let metrics = self.cluster.metrics();
        let membership = metrics.membership_config.membership();
        let voters: HashSet<NodeId> = membership.voter_ids().collect();
        let mut data: Vec<(NodeId, Member)> = membership
            .nodes()
            .filter(|(id, m)| m.role == Role::Data && voters.contains(id))
            .map(|(id, m)| (*id, m.clone()))
            .filter(|(id, _)| *id != self.node_id())
            .collect();
        data.sort_by_key(|(id, _)| *id);
        let me = self.node_id();
        let split = data.partition_point(|(id, _)| *id < me);
        data.rotate_left(split);
        data
    }

    fn is_down(&self, node: NodeId) -> bool {
        let down = self.down_until.lock().expect("peer health lock");
        down.get(&node).is_some_and(|until| Instant::now() < *until)
    }

    fn mark(&self, node: NodeId, up: bool) {
        let mut down = self.down_until.lock().expect("peer health lock");
        if up {
            down.remove(&node);
        } else {
            down.insert(node, Instant::now() + PEER_DOWN_BACKOFF);
        }
    }

    /// Stores a new blob durably here and on a mirror partner, concurrently. Returns once both
    /// copies are fsync'd, or (degraded, if policy allows) once the local one is.
    pub async fn store_new(&self, data: Arc<Vec<u8>>, hash: BlobHash) -> Result<Stored, BlobError> {
        let local = {
            let store = self.store.clone();
            let data = data.clone();
            tokio::task::spawn_blocking(move || store.write(&hash, &data))
        };
        let mirror = self.mirror(&data, &hash);
        let (local, mirror) = tokio::join!(local, mirror);
        local
            .map_err(|e| BlobError::Local(std::io::Error::other(e)))?
            .map_err(|e| {
                tracing::error!(error = %e, "could not write a blob to local disk");
                self.hand_over_after_disk_failure();
                BlobError::Local(e)
            })?;
        self.metrics.stored.fetch_add(1, Ordering::Relaxed);
        let me = self.node_id();
        match mirror {
            Mirror::Stored(partner) => {
                self.metrics.mirrored.fetch_add(1, Ordering::Relaxed);
                if self.metrics.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(partner, "mirroring restored");
                }
                Ok(Stored {
                    hash,
                    replicas: vec![me, partner],
                    missing: Vec::new(),
                })
            }
            Mirror::Failed { intended } => {
                let policy = self
                    .cluster
                    .reader
                    .mail_policy()
                    .map_err(|e| BlobError::Unavailable(e.to_string()))?;
                self.metrics.degraded.store(true, Ordering::Relaxed);
                if policy.degraded_accept == DegradedAccept::Refuse {
                    self.log_degraded(intended, "refusing mail");
                    return Err(BlobError::NoMirror);
                }
                self.metrics
                    .degraded_accepts
                    .fetch_add(1, Ordering::Relaxed);
                self.log_degraded(intended, "accepting mail with one copy");
                let mut replicas = vec![me];
                replicas.extend(intended);
                Ok(Stored {
                    hash,
                    replicas,
                    missing: intended.into_iter().collect(),
                })
            }
        }
    }

    /// The leader cannot store mail (disk full or failing): every message would get a 451 for
    /// as long as that lasts, while another data node could take it. Hand leadership, and so
    /// the VIP, to a caught-up data node; its mirror pushes to this node fail fast and it
    /// accepts degraded until this disk is fixed.
    fn hand_over_after_disk_failure(&self) {
        if !self.cluster.is_leader() || self.cluster.caught_up_data_voters().is_empty() {
            return;
        }
        {
            let mut last = self.last_disk_handover.lock().expect("handover lock");
            if last.is_some_and(|t| t.elapsed() < DISK_HANDOVER_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let cluster = self.cluster.clone();
        tokio::spawn(async move {
            match cluster.failover(None).await {
                Ok(to) => {
                    tracing::warn!(to, "local disk failed: handed leadership and the VIP over")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "local disk failed; could not hand leadership over")
                }
            }
        });
    }

    fn log_degraded(&self, intended: Option<NodeId>, what: &'static str) {
        let mut last = self.last_degraded_log.lock().expect("degraded log lock");
        if last.is_none_or(|t| t.elapsed() >= DEGRADED_LOG_EVERY) {
            *last = Some(Instant::now());
            let total = self.metrics.degraded_accepts.load(Ordering::Relaxed);
            tracing::warn!(
                partner = ?intended,
                degraded_accepts = total,
                "degraded: no mirror partner stored the blob; {what}"
            );
        }
    }

    /// A push that gives up early when the partner is known to be gone (see
    /// [`Blobs::watched`]).
    async fn push_watched(
        &self,
        partner: NodeId,
        member: &Member,
        hash: &BlobHash,
        data: &[u8],
    ) -> Result<(), replication::ReplicationError> {
        let push = replication::blob::push(&self.cluster.transport, partner, member, hash, data);
        self.watched(partner, push).await
    }

    /// Runs a request to `peer` that gives up early when the peer is known to be gone: on the
    /// leader, one that has left requests unanswered for three heartbeat intervals is down (a
    /// dead process's host drops QUIC silently, so the request itself would only fail at its
    /// timeout, seconds later, right after every failover).
    async fn watched<T>(
        &self,
        peer: NodeId,
        request: impl std::future::Future<Output = Result<T, replication::ReplicationError>>,
    ) -> Result<T, replication::ReplicationError> {
        let silence = self.cluster.config.heartbeat_interval * 3;
        let watch = async {
            loop {
                tokio::time::sleep(self.cluster.config.heartbeat_interval / 2).await;
                if self.raft_silence(peer).is_some_and(|s| s > silence) {
                    return;
                }
            }
        };
        tokio::select! {
            result = request => result,
            () = watch => Err(replication::ReplicationError::PeerUnreachable {
                node_id: peer,
                reason: format!("it has answered no Raft heartbeat for {silence:?}"),
            }),
        }
    }

    fn raft_silence(&self, node: NodeId) -> Option<Duration> {
        self.cluster.raft_silence(node)
    }

    async fn mirror(&self, data: &[u8], hash: &BlobHash) -> Mirror {
        let candidates = self.partner_candidates();
        let Some(intended) = candidates.first().map(|(id, _)| *id) else {
            return Mirror::Failed { intended: None };
        };
        // Partners known to be down are not waited for: a message is accepted degraded at once,
        // and the resync loop's probe notices when one answers again.
        let silence_limit = self.cluster.config.heartbeat_interval * 3;
        for (partner, member) in candidates.into_iter().filter(|(id, _)| !self.is_down(*id)) {
            // The leader knows a dead partner already (it has left heartbeats unanswered): no
            // push to wait out.
            if self
                .raft_silence(partner)
                .is_some_and(|silence| silence > silence_limit)
            {
                self.metrics.mirror_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    partner,
                    "mirror partner is not answering Raft; not waiting for it"
                );
                self.mark(partner, false);
                continue;
            }
            let started = Instant::now();
            let mut result = self.push_watched(partner, &member, hash, data).await;
            // A quick failure is usually a cached connection to a process that restarted (the
            // push dropped it): one more try on a fresh connection before calling it down.
            if result.is_err() && started.elapsed() < QUICK_FAILURE {
                result = self.push_watched(partner, &member, hash, data).await;
            }
            match result {
                Ok(()) => {
                    self.mark(partner, true);
                    return Mirror::Stored(partner);
                }
                Err(err) => {
                    self.metrics.mirror_failures.fetch_add(1, Ordering::Relaxed);
                    if !self.is_down(partner) {
                        tracing::warn!(partner, error = %err, "blob mirror push failed");
                    }
                    self.mark(partner, false);
                }
            }
        }
        Mirror::Failed {
            intended: Some(intended),
        }
    }

    /// Reads a blob: from local disk, else from a node that holds it.
    pub async fn read(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
        let store = self.store.clone();
        let h = *hash;
        match tokio::task::spawn_blocking(move || store.read(&h)).await {
            Ok(Ok(data)) => return Ok(data),
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(err)) => return Err(BlobError::Local(err)),
            Err(err) => return Err(BlobError::Unavailable(err.to_string())),
        }
        self.fetch_from_replicas(hash).await
    }

    async fn fetch_from_replicas(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
        let record = self
            .cluster
            .reader
            .blob(hash)
            .map_err(|e| BlobError::Unavailable(e.to_string()))?
            .ok_or_else(|| BlobError::Unavailable("the message was deleted".into()))?;
        let metrics = self.cluster.metrics();
        let membership = metrics.membership_config.membership();
        let mut last_error = "no replica is a member".to_owned();
        let silence_limit = self.cluster.config.heartbeat_interval * 3;
        for node in record.replicas.iter().filter(|n| **n != self.node_id()) {
            let Some(member) = membership.get_node(node) else {
                continue;
            };
            // A replica known to be down is not asked: a client reading many messages that
            // only it holds gets each answer at once instead of one wait per message.
            if self.is_down(*node)
                || self
                    .raft_silence(*node)
                    .is_some_and(|silence| silence > silence_limit)
            {
                last_error = format!("node {node}, which holds it, is down");
                continue;
            }
            // A replica that died a moment ago (the old leader, after a failover) would make
            // the client wait out the QUIC timeout; the leader knows sooner.
            let fetch = replication::blob::fetch(&self.cluster.transport, *node, member, hash);
            match self.watched(*node, fetch).await {
                Ok(Some(data)) => return Ok(data),
                Ok(None) => last_error = format!("node {node} does not hold it"),
                Err(err) => {
                    // Not asked again per read until the resync loop's probe reaches it: a
                    // client reading many messages only it holds (a follower has no Raft
                    // heartbeats to tell) waits for the first one, not for each.
                    if matches!(err, replication::ReplicationError::PeerUnreachable { .. }) {
                        self.mark(*node, false);
                    }
                    last_error = err.to_string();
                }
            }
        }
        Err(BlobError::Unavailable(last_error))
    }

    /// Pulls every blob the replicated state says this node must hold but has not confirmed,
    /// until stopped. Runs on every data node.
    pub async fn resync_loop(self: Arc<Self>) {
        let mut copies_checked = false;
        loop {
            if !copies_checked {
                match self.check_local_copies().await {
                    Ok(()) => copies_checked = true,
                    Err(err) => tracing::debug!(error = %format!("{err:#}"),
                        "checking local blob copies; trying again"),
                }
            }
            self.probe_peers().await;
            match self.resync_once().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(blobs = n, "resync: pulled missing blobs"),
                Err(err) => tracing::warn!(error = %err, "resync pass failed"),
            }
            tokio::time::sleep(RESYNC_INTERVAL).await;
        }
    }

    /// Once after start-up, when this node has caught up: every blob the state says it holds
    /// must be on its disk. A data directory restored from an older copy lacks the blobs it
    /// acknowledged since; they are reported (`BlobsLost`), so status shows the lost redundancy
    /// and the resync below pulls them from the other replica.
    async fn check_local_copies(&self) -> anyhow::Result<()> {
        // Caught up first: records applied later would otherwise go unchecked.
        self.cluster.linearize().await?;
        let me = self.node_id();
        let reader = self.cluster.reader.clone();
        let store = self.store.clone();
        let absent = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<BlobHash>> {
            let held = reader.blobs_held_by(me)?;
            Ok(held
                .into_iter()
                .filter(|hash| !store.path(hash).exists())
                .collect())
        })
        .await??;
        if absent.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            blobs = absent.len(),
            "blobs this node should hold are not on its disk (restored from an older copy?); \
             pulling them from their other replica"
        );
        for chunk in absent.chunks(RESYNC_BATCH) {
            self.cluster
                .write(Command::BlobsLost {
                    node: me,
                    blobs: chunk.to_vec(),
                })
                .await?;
        }
        Ok(())
    }

    /// Asks every data node marked down (and, while degraded, every mirror partner) whether it
    /// answers again, so neither mirroring nor reads wait out `PEER_DOWN_BACKOFF` and the
    /// degraded flag does not wait for the next message to clear.
    async fn probe_peers(&self) {
        let degraded = self.metrics.degraded.load(Ordering::Relaxed);
        for (peer, member) in self.partner_candidates() {
            if !degraded && !self.is_down(peer) {
                continue;
            }
            let probe = [0u8; 32];
            let fetch = replication::blob::fetch(&self.cluster.transport, peer, &member, &probe);
            if let Ok(Ok(_)) = tokio::time::timeout(PROBE_TIMEOUT, fetch).await {
                self.mark(peer, true);
                if self.metrics.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(partner = peer, "mirror partner reachable again");
                }
            }
        }
    }

    /// One pass over the blobs this node must hold but has not confirmed: pulls them
    /// `RESYNC_PARALLEL` at a time, installs each batch with two file-system flushes, and
    /// confirms it (`BlobsStored`), so a restart continues after the last confirmed batch.
    /// The next batch is fetched while the previous one is installed and confirmed. Blobs no
    /// reachable node holds now are left for the next pass.
    async fn resync_once(&self) -> anyhow::Result<u64> {
        raft_store::failpoint::pause("resync-before-pass").await;
        let me = self.node_id();
        let mut total = 0;
        // Where the last pass stopped (at a batch it could pull nothing of): this one goes on
        // from there, so blobs no reachable node holds cost one batch a pass, not the walk
        // of the whole list, and do not keep the ones after them waiting.
        let mut cursor: Option<BlobHash> = self.resync_cursor.lock().expect("cursor lock").take();
        let mut confirming: Option<
            std::pin::Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send + '_>>,
        > = None;
        loop {
            let reader = self.cluster.reader.clone();
            let after = cursor;
            let missing = tokio::task::spawn_blocking(move || {
                reader.missing_blobs_after(me, after.as_ref(), RESYNC_BATCH)
            })
            .await??;
            let Some(last) = missing.last().copied() else {
                if let Some(previous) = confirming {
                    total += previous.await?;
                }
                return Ok(total);
            };
            cursor = Some(last);
            let fetch = self.pull_batch(missing);
            let pulled = match confirming.take() {
                Some(previous) => {
                    let (pulled, confirmed) = tokio::join!(fetch, previous);
                    total += confirmed?;
                    pulled
                }
                None => fetch.await,
            };
            if pulled.is_empty() {
                *self.resync_cursor.lock().expect("cursor lock") = cursor;
                return Ok(total);
            }
            confirming = Some(Box::pin(self.confirm_batch(pulled)));
        }
    }

    /// Pulls a batch of missing blobs, `RESYNC_PARALLEL` at a time.
    async fn pull_batch(&self, missing: Vec<BlobHash>) -> Vec<Pulled> {
        use futures::StreamExt;
        futures::stream::iter(missing)
            .map(|hash| self.pull(hash))
            .buffer_unordered(RESYNC_PARALLEL)
            .filter_map(|pulled| async move { pulled })
            .collect()
            .await
    }

    /// Makes a pulled batch durable (`BlobStore::install`) and confirms it to the cluster;
    /// answers how many blobs it confirmed.
    async fn confirm_batch(&self, pulled: Vec<Pulled>) -> anyhow::Result<u64> {
        let mut confirmed = Vec::with_capacity(pulled.len());
        let mut staged = Vec::new();
        for pulled in pulled {
            match pulled {
                Pulled::Present(hash) => confirmed.push(hash),
                Pulled::Staged(blob) => {
                    confirmed.push(*blob.hash());
                    staged.push(blob);
                }
            }
        }
        let fetched = staged.len() as u64;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.install(staged)).await??;
        self.metrics
            .resync_fetched
            .fetch_add(fetched, Ordering::Relaxed);
        let n = confirmed.len() as u64;
        self.cluster
            .write(Command::BlobsStored {
                node: self.node_id(),
                blobs: confirmed,
            })
            .await?;
        raft_store::failpoint::pause("resync-after-batch").await;
        Ok(n)
    }

    /// Gets one missing blob onto this node's disk: already here with the right content
    /// (written before a crash lost the confirmation, or pushed twice), or fetched from a
    /// replica and staged. None when no reachable replica has it now.
    async fn pull(&self, hash: BlobHash) -> Option<Pulled> {
        if self.local_verified(&hash).await.is_some() {
            return Some(Pulled::Present(hash));
        }
        let data = match self.fetch_from_replicas(&hash).await {
            Ok(data) => data,
            Err(err) => {
                self.metrics.resync_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(blob = %blob_store::hex(&hash), error = %err, "resync fetch failed");
                return None;
            }
        };
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.stage(&hash, &data)).await {
            Ok(Ok(staged)) => Some(Pulled::Staged(staged)),
            Ok(Err(err)) => {
                tracing::warn!(blob = %blob_store::hex(&hash), error = %err, "resync could not write a blob");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "resync write task failed");
                None
            }
        }
    }

    async fn local_verified(&self, hash: &BlobHash) -> Option<Vec<u8>> {
        let store = self.store.clone();
        let h = *hash;
        let data = tokio::task::spawn_blocking(move || store.read(&h))
            .await
            .ok()?
            .ok()?;
        (blob_store::hash(&data) == *hash).then_some(data)
    }

    /// On the leader: gives every blob that names a replica which left the cluster a data
    /// voter that is not yet a replica instead (`Command::MoveReplicas`), and every blob with
    /// one replica only a second one (`Command::AddReplicas`), which then pulls it with its
    /// resync loop. This is how a replaced node gets the mail its predecessor held, and the
    /// mail taken while it was alone.
    pub async fn placement_loop(self: Arc<Self>) {
        use openraft::async_runtime::watch::WatchReceiver;
        let mut metrics = self.cluster.raft.metrics();
        let mut membership = *metrics.borrow_watched().membership_config.log_id();
        let mut more = false;
        loop {
            // A pass that moved a full batch goes on at once: a replaced node holding a
            // million blobs should not wait 3 s per thousand. A membership change (a node
            // joined or left) starts one at once too.
            if !more {
                let changed = async {
                    loop {
                        if metrics.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        let now = *metrics.borrow_watched().membership_config.log_id();
                        if now != membership {
                            membership = now;
                            return;
                        }
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(PLACEMENT_INTERVAL) => {}
                    () = changed => {}
                }
            }
            more = false;
            if !self.cluster.is_leader() {
                continue;
            }
            match self.place_once().await {
                Ok(Placed {
                    moved: 0,
                    forgotten: 0,
                }) => {}
                Ok(Placed { moved, forgotten }) => {
                    tracing::info!(
                        moved,
                        forgotten,
                        "blobs given a new replica or rid of a departed one"
                    );
                    more = moved >= PLACEMENT_BATCH;
                }
                Err(err) => {
                    tracing::debug!(error = %format!("{err:#}"), "blob placement pass failed")
                }
            }
        }
    }

    /// One placement pass (a batch at most): how many blobs it moved, and how many it asked
    /// to forget a departed replica (applied only to those with two other confirmed copies,
    /// so those do not count for going on at once).
    async fn place_once(&self) -> anyhow::Result<Placed> {
        let metrics = self.cluster.metrics();
        let membership = metrics.membership_config.membership();
        let members: std::collections::BTreeSet<NodeId> =
            membership.nodes().map(|(id, _)| *id).collect();
        let data_voters = self.cluster.data_voters();
        let reader = self.cluster.reader.clone();
        let (census, missing) = tokio::task::spawn_blocking(move || {
            let census = reader.misplaced_blobs(&members, PLACEMENT_BATCH)?;
            Ok::<_, raft_store::StoreError>((census, reader.missing_blob_counts()?))
        })
        .await??;
        let raft_store::MisplacedBlobs {
            found,
            total,
            per_replica,
        } = census;
        self.metrics.misplaced.store(total, Ordering::Relaxed);
        // Copies short of every blob having two live, confirmed copies: those not yet placed,
        // those a node still has to pull, and those on a data node that does not answer.
        let silence_limit = self.cluster.unreachable_after();
        let unreachable_held: u64 = data_voters
            .iter()
            .filter(|id| {
                self.raft_silence(**id)
                    .is_some_and(|silence| silence > silence_limit)
            })
            .map(|id| {
                let must = per_replica.get(id).copied().unwrap_or(0);
                must.saturating_sub(missing.get(id).copied().unwrap_or(0))
            })
            .sum();
        let short = total + missing.values().sum::<u64>() + unreachable_held;
        self.metrics.copies_short.store(short, Ordering::Relaxed);
        let mut moves: std::collections::BTreeMap<(NodeId, NodeId), Vec<BlobHash>> =
            Default::default();
        let mut forget: std::collections::BTreeMap<NodeId, Vec<BlobHash>> = Default::default();
        let mut adds: std::collections::BTreeMap<NodeId, Vec<BlobHash>> = Default::default();
        for (hash, replicas) in found {
            let Some(&from) = replicas.iter().find(|r| membership.get_node(r).is_none()) else {
                // One replica only (accepted while no other data node existed): a second one
                // as soon as there is a data voter to hold it.
                if let Some(&to) = data_voters.iter().find(|d| !replicas.contains(d)) {
                    adds.entry(to).or_default().push(hash);
                }
                continue;
            };
            // A node that left after a drain: its blobs have two other replicas already, and
            // only lose the name (the entry leaves alone any whose copies are not confirmed).
            if replicas
                .iter()
                .filter(|r| membership.get_node(r).is_some())
                .count()
                >= 2
            {
                forget.entry(from).or_default().push(hash);
                continue;
            }
            // No data voter to take it (the other one left and none replaced it yet): the blob
            // stays counted as misplaced, and status says so.
            let Some(&to) = data_voters.iter().find(|d| !replicas.contains(d)) else {
                continue;
            };
            moves.entry((from, to)).or_default().push(hash);
        }
        let mut moved = 0;
        let mut forgotten = 0;
        for (from, blobs) in forget {
            forgotten += blobs.len();
            self.cluster
                .write(Command::ForgetReplicas { from, blobs })
                .await?;
        }
        for ((from, to), blobs) in moves {
            moved += blobs.len();
            self.cluster
                .write(Command::MoveReplicas { from, to, blobs })
                .await?;
        }
        for (to, blobs) in adds {
            moved += blobs.len();
            self.cluster
                .write(Command::AddReplicas { to, blobs })
                .await?;
        }
        Ok(Placed { moved, forgotten })
    }

    /// Deletes blob files no record refers to, in two sweeps (see `GC_MIN_AGE`).
    pub async fn gc_loop(self: Arc<Self>) {
        let mut suspects: HashSet<BlobHash> = HashSet::new();
        loop {
            tokio::time::sleep(GC_INTERVAL).await;
            match self.gc_once(&suspects).await {
                Ok((removed, next)) => {
                    if removed > 0 {
                        tracing::info!(removed, "removed unreferenced blobs");
                    }
                    suspects = next;
                }
                Err(err) => tracing::warn!(error = %err, "blob garbage collection failed"),
            }
        }
    }

    async fn gc_once(
        &self,
        suspects: &HashSet<BlobHash>,
    ) -> anyhow::Result<(u64, HashSet<BlobHash>)> {
        let store = self.store.clone();
        let files = tokio::task::spawn_blocking(move || store.list()).await??;
        let now = SystemTime::now();
        let mut next = HashSet::new();
        let mut removed = 0;
        for (hash, modified) in files {
            if self.cluster.reader.blob(&hash)?.is_some() {
                continue;
            }
            let old = now
                .duration_since(modified)
                .is_ok_and(|age| age >= GC_MIN_AGE);
            if old && suspects.contains(&hash) {
                self.store.remove(&hash)?;
                removed += 1;
            } else {
                next.insert(hash);
            }
        }
        self.metrics
            .gc_removed
            .fetch_add(removed, Ordering::Relaxed);
        Ok((removed, next))
    }
}

/// What one placement pass wrote.
struct Placed {
    moved: usize,
    forgotten: usize,
}

/// A blob a resync pass got onto this node's disk.
enum Pulled {
    /// Already on disk with the right content.
    Present(BlobHash),
    /// Fetched and written to a temp file, to install with the batch.
    Staged(blob_store::Staged),
}

enum Mirror {
    Stored(NodeId),
    /// No partner stored it; `intended` is the one that should have (None: no other data node).
    Failed {
        intended: Option<NodeId>,
    },
}
