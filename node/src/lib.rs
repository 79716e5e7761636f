//! node is the server: configuration, start-up and shutdown, the Raft node wired to its store and
//! transport, first-start bootstrap and join, the witness's leadership hand-off, the admin API,
//! the mail services (SMTP, POP3, IMAP) with their write path (blob mirroring, group commit),
//! the outbound queue's delivery engine, and the virtual IP, which follows Raft leadership
//! (`vip.rs`). docs/ARCHITECTURE.md draws its layers.
//!
//! node does not touch RocksDB or sockets between nodes itself: raft-store owns the disk and
//! replication owns the wire.

pub mod access;
pub mod admin_api;
pub mod admin_tls;
pub mod blobs;
pub mod bootstrap;
pub mod clock;
pub mod cluster;
pub mod config;
mod counters;
pub mod delivery;
pub mod imap;
pub mod line_reader;
pub mod listeners;
pub mod logging;
pub mod mail_service;
pub mod metrics;
pub mod outbound;
pub mod pop3;
pub mod privilege;
pub mod protection;
pub mod sasl;
pub mod service;
pub mod smtp;
pub mod store;
pub mod tls;
#[cfg(test)]
mod transcript;
pub mod versions;
pub mod vip;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::{ServerState, SnapshotPolicy};
use raft_store::{Raft, Role};
use replication::pki::NodeIdentity;
use replication::{NetworkFactory, Transport};

use raft_store::blob_store::BlobStore;
use tokio::task::JoinSet;

use crate::admin_api::ApiState;
use crate::blobs::Blobs;
use crate::cluster::Cluster;
pub use crate::config::Config;
use crate::delivery::Deliverer;
use crate::mail_service::MailContext;
use crate::metrics::Metrics;

/// How long in-flight admin requests may run on after a shutdown signal.
const ADMIN_DRAIN: Duration = Duration::from_secs(10);

/// Runs a node until `shutdown` completes, then stops it cleanly: a leader first hands its
/// leadership to a caught-up data node so the cluster does not wait for an election timeout.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("create {}", config.data_dir.display()))?;
    let (log_store, state_machine) = raft_store::open(&config.data_dir).context("open store")?;
    let reader = state_machine.reader();
    versions::check_store(&reader, config.newest_cluster_version)?;
    let identity = NodeIdentity::load(&config.ca_cert, &config.cert, &config.key)
        .context("load TLS identity")?;
    let transport = Transport::bind(config.node_id, config.raft_addr, &identity)
        .context("bind QUIC transport")?;

    let raft_config = openraft::Config {
        cluster_name: "mcluster".into(),
        heartbeat_interval: config.heartbeat_interval.as_millis() as u64,
        election_timeout_min: config.election_timeout_min.as_millis() as u64,
        election_timeout_max: config.election_timeout_max.as_millis() as u64,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
        max_in_snapshot_log_to_keep: config.keep_entries_after_snapshot,
        install_snapshot_timeout: 10_000,
        // A node that cannot win (cut off, restarted, behind) asks before it campaigns, so it
        // does not bump the term and knock a healthy leader (and the VIP) over when it returns.
        enable_pre_vote: Some(true),
        // A voter restarted from an older copy of its data directory has a shorter log than it
        // acknowledged. Without this the leader's replication stops on it for good; with it the
        // leader sends the log again. What the old copy lost is still on the leader and the
        // other voters (a second failure before it has caught up is not covered).
        allow_log_reversion: Some(true),
        ..Default::default()
    }
    .validate()
    .context("raft settings")?;
    // A heartbeat answer read late on a starved host still counts (raft_store::runtime).
    raft_store::runtime::set_timeout_floor(config.election_timeout_max);
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config),
        NetworkFactory::new(transport.clone()).with_append_floor(config.election_timeout_max),
        log_store,
        state_machine,
    )
    .await
    .context("start raft")?;
    let blob_store = match config.role {
        Role::Data => Some(
            raft_store::blob_store::BlobStore::open(&config.blob_dir)
                .with_context(|| format!("open blob store {}", config.blob_dir.display()))?,
        ),
        Role::Witness => None,
    };
    let peer_server = tokio::spawn(replication::serve(
        transport.clone(),
        raft.clone(),
        raft_store::snapshot_root(&config.data_dir),
        blob_store.clone(),
    ));

    let cluster = Arc::new(Cluster {
        config: config.clone(),
        raft: raft.clone(),
        reader,
        transport: transport.clone(),
        vip: Arc::new(vip::VipState::new(config.vip.clone())),
        leader_since: std::sync::Mutex::new(None),
    });
    let leadership = tokio::spawn({
        let cluster = cluster.clone();
        async move { cluster.track_leadership().await }
    });
    tracing::info!(
        node_id = config.node_id,
        name = %config.name,
        role = %config.role,
        raft_addr = %config.raft_addr,
        admin_addr = %config.admin_addr,
        "node started"
    );
    bootstrap::start(&cluster).await?;
    let handoff =
        (config.role == Role::Witness).then(|| tokio::spawn(witness_handoff(cluster.clone())));
    let versions = tokio::spawn(versions::run(cluster.clone()));

    let mail = match blob_store {
        Some(store) => Some(MailServices::start(&cluster, store).await?),
        None => None,
    };

    let listener =
        admin_tls::AdminListener::bind(config.admin_addr, cluster.reader.clone(), config.node_id)
            .await
            .with_context(|| format!("bind admin API on {}", config.admin_addr))?;
    let (removed_tx, mut removed) = tokio::sync::watch::channel(false);
    let state = Arc::new(ApiState {
        cluster: cluster.clone(),
        metrics: Arc::new(Metrics::default()),
        mail: mail.as_ref().map(|m| admin_api::MailState {
            context: m.context.clone(),
            blobs: m.blobs.clone(),
        }),
        removed: removed_tx,
    });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let serve = axum::serve(
        listener,
        admin_api::router(state).into_make_service_with_connect_info::<admin_tls::AdminPeer>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(async move { serve.await });
    tokio::pin!(shutdown);
    let mut raft_stopped = Box::pin(raft_stopped(raft.clone()));
    let mut fatal = None;
    tokio::select! {
        result = &mut server => {
            result.context("admin API task")?.context("serve admin API")?;
            anyhow::bail!("the admin API stopped by itself");
        }
        () = &mut shutdown => {}
        // A Raft core that died (a storage error, a bug) leaves a process that answers but
        // can do nothing: stop cleanly instead (the VIP goes) and let the supervisor restart it.
        reason = &mut raft_stopped => fatal = Some(reason),
        // A node removed with `mclusterctl leave` has nothing left to do: it would only
        // campaign in vain, forever. It says so once and stops (exit status 0, so a supervisor
        // does not start it again).
        _ = removed.wait_for(|removed| *removed) => tracing::warn!(
            "this node is no longer a member of the cluster (removed with mclusterctl leave); stopping"
        ),
    }
    // Mail first: no new sessions, and sessions still running are cut off. A message whose 250
    // was not sent yet is retried by its client; none that was answered depends on this node.
    if let Some(mail) = mail {
        mail.stop().await;
    }
    // In-flight admin requests get a bounded time to finish; every one of them is itself
    // bounded, so this only cuts off a request stuck on a dead peer.
    let _ = stop_tx.send(true);
    if tokio::time::timeout(ADMIN_DRAIN, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("admin requests still running at shutdown; stopping them");
        server.abort();
    }

    tracing::info!("shutting down");
    if let Some(handoff) = handoff {
        handoff.abort();
    }
    versions.abort();
    leadership.abort();
    hand_off_leadership(&cluster).await;
    // Stop taking peers' requests before Raft stops, so none reaches a stopped Raft core.
    transport.close();
    peer_server.abort();
    let _ = peer_server.await;
    if let Err(err) = raft.shutdown().await {
        tracing::warn!(error = %err, "raft did not shut down cleanly");
    }
    tracing::info!("stopped");
    match fatal {
        Some(reason) => anyhow::bail!("the Raft core stopped: {reason}"),
        None => Ok(()),
    }
}

/// Completes when the Raft core has stopped by itself, with the reason.
async fn raft_stopped(raft: Raft) -> String {
    use openraft::async_runtime::watch::WatchReceiver;
    let mut metrics = raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow_watched().running_state {
            return fatal.to_string();
        }
        if metrics.changed().await.is_err() {
            return "its metrics channel closed".into();
        }
    }
}

/// The mail listeners of a data node and the background work of its blob store.
struct MailServices {
    context: Arc<MailContext>,
    blobs: Arc<Blobs>,
    vip: Option<vip::VipManager>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    sessions: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl MailServices {
    async fn start(cluster: &Arc<Cluster>, store: BlobStore) -> anyhow::Result<MailServices> {
        let config = &cluster.config;
        let blobs = Arc::new(Blobs::new(store, cluster.clone()));
        let backend = Arc::new(crate::store::ClusterBackend::new(
            cluster.clone(),
            blobs.clone(),
        ));
        let store = crate::store::MailStore::new(cluster.reader.clone(), backend.clone());
        let deliverer = Deliverer::start(backend);
        let context = Arc::new(MailContext::new(store, deliverer, config));
        let sessions = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let mut tasks = vec![
            tokio::spawn(blobs.clone().resync_loop()),
            tokio::spawn(blobs.clone().placement_loop()),
            tokio::spawn(blobs.clone().gc_loop()),
        ];
        match outbound::engine::start(
            context.clone(),
            cluster.clone(),
            &config.nameservers,
            config.mx_port,
        ) {
            Ok(engine) => tasks.push(engine),
            // Mail still comes in and is queued; it goes out once the resolver is fixed.
            Err(err) => {
                tracing::error!(error = %err, "no DNS resolver: outbound mail stays queued")
            }
        }
        for (service, addr) in config.listeners.enabled() {
            let listener = crate::listeners::bind(service, addr).await?;
            tasks.push(tokio::spawn(crate::listeners::accept_loop(
                context.clone(),
                listener,
                service,
                sessions.clone(),
                None,
            )));
        }
        let vip = vip::VipManager::start(cluster.clone(), context.clone());
        Ok(MailServices {
            context,
            blobs,
            vip,
            tasks,
            sessions,
        })
    }

    async fn stop(self) {
        // The VIP first: clients fail over to the next leader while this node winds down.
        if let Some(vip) = self.vip {
            vip.stop().await;
        }
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        // Sessions waiting for their clients say goodbye (IMAP `* BYE`, POP3 `-ERR`, SMTP 421)
        // and close (TLS with close_notify); any still busy after a moment are cut off.
        self.context.closing.send_replace(true);
        let mut sessions = self.sessions.lock().await;
        let polite = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(SESSIONS_CLOSE, polite).await.is_err() {
            sessions.abort_all();
            while sessions.join_next().await.is_some() {}
        }
    }
}

/// How long sessions get at shutdown to say goodbye.
const SESSIONS_CLOSE: Duration = Duration::from_secs(2);

/// On shutdown, a leader passes leadership to a caught-up data voter (waiting briefly).
async fn hand_off_leadership(cluster: &Cluster) {
    if !cluster.is_leader() || cluster.caught_up_data_voters().is_empty() {
        return;
    }
    match tokio::time::timeout(Duration::from_secs(3), cluster.failover(None)).await {
        Ok(Ok(to)) => tracing::info!(to, "handed leadership over before shutdown"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "could not hand leadership over before shutdown")
        }
        Err(_) => tracing::warn!("leadership hand-over before shutdown timed out"),
    }
}

/// A witness may win an election (it is a voter), but it serves no mail and never holds the
/// virtual IP: as soon as a data voter is caught up, it gives leadership away.
async fn witness_handoff(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        if cluster.metrics().state != ServerState::Leader {
            continue;
        }
        if let Some(&to) = cluster.caught_up_data_voters().first() {
            tracing::info!(to, "witness is leader: handing leadership to a data node");
            if let Err(err) = cluster.raft.trigger().transfer_leader(to).await {
                tracing::warn!(error = %err, "witness could not hand leadership over");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
