//! First start of a node: the first node of a cluster initializes it and writes the cluster
//! settings from its bootstrap file; a node made by `mclusterctl join` asks the cluster to add it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raft_store::{ClusterSettings, Command, CommandResult, Member, Rejection};

use crate::cluster::Cluster;
use crate::config::{BootstrapSecrets, JoinFile};

pub async fn start(cluster: &Arc<Cluster>) -> anyhow::Result<()> {
    if let Some(path) = &cluster.config.bootstrap_file
        && path.exists()
    {
        bootstrap(cluster, path)
            .await
            .context("bootstrap the cluster")?;
    }
    if let Some(join) = &cluster.config.join
        && !is_voter(cluster)
    {
        // Also after a restart: a node that crashed between being added as a learner and being
        // promoted asks again (adding is idempotent on the leader).
        tokio::spawn(join_cluster(cluster.clone(), join.clone()));
    }
    Ok(())
}

fn is_voter(cluster: &Cluster) -> bool {
    let metrics = cluster.metrics();
    let node_id = cluster.config.node_id;
    metrics
        .membership_config
        .membership()
        .voter_ids()
        .any(|id| id == node_id)
}

fn own_member(cluster: &Cluster) -> Member {
    let config = &cluster.config;
    Member {
        name: config.name.clone(),
        role: config.role,
        raft_addr: config.raft_addr.to_string(),
        admin_addr: config.admin_addr.to_string(),
    }
}

async fn bootstrap(cluster: &Cluster, path: &std::path::Path) -> anyhow::Result<()> {
    let secrets = BootstrapSecrets::load(path)?;
    if !cluster
        .raft
        .is_initialized()
        .await
        .context("read raft state")?
    {
        tracing::info!("initializing a new one-node cluster");
        let members = BTreeMap::from([(cluster.config.node_id, own_member(cluster))]);
        cluster
            .raft
            .initialize(members)
            .await
            .context("initialize raft")?;
    }
    if cluster.reader.cluster_settings()?.is_none() {
        let BootstrapSecrets {
            cluster_name,
            admin_token_sha256,
            join_token_sha256,
            ca_cert_pem,
            ca_key_pem,
        } = secrets;
        let settings = ClusterSettings {
            cluster_name,
            admin_token_sha256,
            join_token_sha256,
            ca_cert_pem,
            ca_key_pem,
        };
        match cluster.write(Command::InitCluster(settings)).await {
            Ok(CommandResult::Done | CommandResult::Rejected(Rejection::AlreadyInitialized)) => {}
            Ok(other) => anyhow::bail!("unexpected result writing cluster settings: {other:?}"),
            Err(err) => return Err(err).context("write cluster settings"),
        }
        tracing::info!("cluster settings written");
    }
    if cluster.reader.client_tls()?.is_none() {
        let names = vec![cluster.config.hostname.clone(), "localhost".to_owned()];
        let tls = crate::tls::self_signed(names).context("make the client TLS certificate")?;
        cluster
            .write(Command::SetClientTls(tls))
            .await
            .context("write the client TLS certificate")?;
        tracing::info!(
            "self-signed client TLS certificate written; replace it with `mclusterctl tls set`"
        );
    }
    // The file holds the CA key; the replicated state has it now.
    std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
    Ok(())
}

/// Asks the seeds, one after the other, to add this node, until one has. The leader adds the
/// node as a learner, waits until it has caught up and promotes it to voter.
async fn join_cluster(cluster: Arc<Cluster>, join: JoinFile) {
    let node_id = cluster.config.node_id;
    let body = serde_json::json!({ "node_id": node_id });
    loop {
        if is_voter(&cluster) {
            tracing::info!("this node is a voter");
            return;
        }
        for seed in &join.seeds {
            let url = format!("{}/v1/members", seed.trim_end_matches('/'));
            let token = join.token.clone();
            let body = body.clone();
            let answer =
                tokio::task::spawn_blocking(move || -> Result<(u16, String), ureq::Error> {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(150)))
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut response = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .send_json(body)?;
                    Ok((
                        response.status().as_u16(),
                        response.body_mut().read_to_string()?,
                    ))
                })
                .await;
            match answer {
                Ok(Ok((200, _))) => {
                    tracing::info!(seed = %seed, "joined the cluster as a voter");
                    return;
                }
                Ok(Ok((status, text))) if (400..500).contains(&status) => {
                    tracing::error!(seed = %seed, status, answer = %text, "the cluster refused to add this node");
                    return;
                }
                Ok(Ok((status, text))) => {
                    tracing::warn!(seed = %seed, status, answer = %text, "join attempt failed")
                }
                Ok(Err(err)) => tracing::warn!(seed = %seed, error = %err, "join attempt failed"),
                Err(err) => tracing::warn!(error = %err, "join attempt failed"),
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
