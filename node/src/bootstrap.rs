//! First start of a node: the first node of a cluster initializes it and writes the cluster
//! settings from its bootstrap file; a node made by `mclusterctl join` asks the cluster to add it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use raft_store::api::AddMember;
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
    if let Some(join) = &cluster.config.join {
        if is_voter(cluster) {
            // A voter that has not removed it yet (it stopped first, or an older build joined it).
            forget_join_token(cluster).await;
        } else {
            // Also after a restart: a node that crashed between being added as a learner and
            // being promoted asks again (adding is idempotent on the leader).
            tokio::spawn(join_cluster(cluster.clone(), join.clone()));
        }
    }
    Ok(())
}

/// A voter needs the join token no more: its `[join]` section goes from the config file, so
/// the token does not linger on every node that ever joined. Crash-safe: the file is written
/// beside the old one and renamed over it, so a crash leaves the old file or the new one, and
/// a node that still finds the section at its next start removes it then.
async fn forget_join_token(cluster: &Cluster) {
    let Some(path) = cluster.config.source.clone() else {
        return;
    };
    let file = path.display().to_string();
    match tokio::task::spawn_blocking(move || remove_join_section(&path)).await {
        Ok(Ok(true)) => tracing::info!(
            file = %file,
            "removed the join token from the config file: this node is a voter"
        ),
        Ok(Ok(false)) => {}
        Ok(Err(err)) => tracing::warn!(
            file = %file,
            error = format!("{err:#}"),
            "could not remove the join token from the config file; delete its [join] section by hand"
        ),
        Err(err) => tracing::warn!(error = %err, "removing the join token failed"),
    }
}

/// Rewrites `path` without its `[join]` section; false when it had none with a token.
pub fn remove_join_section(path: &Path) -> anyhow::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    let text = std::fs::read_to_string(path).context("read the config file")?;
    let Some(new_text) = crate::config::without_join_section(&text)? else {
        return Ok(false);
    };
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mode = std::fs::metadata(path)
        .context("read the config file's mode")?
        .permissions()
        .mode();
    let mut temp = tempfile::Builder::new()
        .prefix(".mclusterd.toml.")
        .tempfile_in(dir)
        .with_context(|| format!("create a file in {}", dir.display()))?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .context("set the new file's mode")?;
    temp.write_all(new_text.as_bytes())
        .context("write the new config file")?;
    temp.as_file()
        .sync_all()
        .context("flush the new config file")?;
    temp.persist(path)
        .context("move the new config file into place")?;
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("flush directory {}", dir.display()))?;
    Ok(true)
}

/// TLS that trusts only the cluster CA (the node's `ca-cert`), for `https://` seeds.
pub(crate) fn cluster_ca_tls(ca_cert: &Path) -> Result<ureq::tls::TlsConfig, ureq::Error> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let pem = std::fs::read(ca_cert)?;
    let ca = Certificate::from_pem(&pem)?;
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(replication::pki::provider())
        .root_certs(RootCerts::new_with_certs(&[ca]))
        .build())
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
    crate::versions::start_new_cluster(cluster)
        .await
        .context("set the new cluster's version")?;
    // The file holds the CA key; the replicated state has it now.
    std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
    Ok(())
}

/// Asks the seeds, one after the other, to add this node, until one has. The leader adds the
/// node as a learner, waits until it has caught up and promotes it to voter.
async fn join_cluster(cluster: Arc<Cluster>, join: JoinFile) {
    let node_id = cluster.config.node_id;
    let body = serde_json::json!(AddMember {
        node_id,
        build: Some(crate::versions::this_build(&cluster)),
    });
    loop {
        if is_voter(&cluster) {
            tracing::info!("this node is a voter");
            forget_join_token(&cluster).await;
            return;
        }
        for seed in &join.seeds {
            let url = format!("{}/v1/members", seed.trim_end_matches('/'));
            let token = join.token.clone();
            let body = body.clone();
            let ca_cert = cluster.config.ca_cert.clone();
            let answer =
                tokio::task::spawn_blocking(move || -> Result<(u16, String), ureq::Error> {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(150)))
                        .http_status_as_error(false)
                        .tls_config(cluster_ca_tls(&ca_cert)?)
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
                    forget_join_token(&cluster).await;
                    return;
                }
                Ok(Ok((status, text))) if (400..500).contains(&status) => {
                    // 401: the join token was rotated after `mclusterctl join`; put the new one
                    // in [join] and start again.
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
