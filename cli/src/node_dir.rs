//! A node's directory and the files `init` and `join` put there: key, certificates, mclusterd.toml
//! and, for the first node, bootstrap.toml. Writing files is all this does; starting the node
//! is process.rs's job.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::api::{Client, JoinRequest, Role};
use crate::client_config::ClientConfig;
use crate::files::{self, PRIVATE, PUBLIC};
use crate::node_config::{
    BootstrapFile, BootstrapSection, JoinSection, MailSection, NodeFile, TlsSection,
};
use crate::pki::{self, CertifiedKey};
use crate::secrets;
use crate::vip::{VipOptions, vip_section};

#[cfg(test)]
mod tests;

/// Where a node keeps its store and message files unless `--data-dir` says otherwise: inside
/// its own directory (the demo, the tests). A server's unit gives it /var/lib/mcluster.
pub const DEFAULT_DATA_DIR: &str = "data";
/// The cluster CA certificate `init` writes beside the first node's directory.
pub const CA_CERT_FILE: &str = "ca.crt";
const BOOTSTRAP_FILE: &str = "bootstrap.toml";

/// The files of one node, all under `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub key: PathBuf,
    pub cert: PathBuf,
    pub ca_cert: PathBuf,
    pub bootstrap: PathBuf,
    pub log: PathBuf,
    pub pid: PathBuf,
}

impl NodePaths {
    /// The paths in `dir`, made absolute so that they still hold after a change of directory.
    pub fn new(dir: &Path) -> Result<NodePaths> {
        let dir =
            std::path::absolute(dir).with_context(|| format!("make {} absolute", dir.display()))?;
        let tls = TlsSection::default();
        Ok(NodePaths {
            config: dir.join("mclusterd.toml"),
            key: dir.join(tls.key),
            cert: dir.join(tls.cert),
            ca_cert: dir.join(tls.ca_cert),
            bootstrap: dir.join(BOOTSTRAP_FILE),
            log: dir.join("mclusterd.log"),
            pid: dir.join("mclusterd.pid"),
            dir,
        })
    }

    pub fn load_config(&self) -> Result<NodeFile> {
        let text = files::read_text(&self.config)?;
        NodeFile::parse(&text).with_context(|| format!("load {}", self.config.display()))
    }

    fn refuse_existing(&self) -> Result<()> {
        if self.config.exists() {
            bail!(
                "{} already exists: refusing to overwrite an existing node",
                self.config.display()
            );
        }
        Ok(())
    }
}

/// What `init` makes.
#[derive(Debug, Clone)]
pub struct InitPlan {
    pub dir: PathBuf,
    pub name: String,
    pub raft_addr: String,
    pub admin_addr: String,
    pub cluster_name: String,
    /// `data-dir`: relative to the node's directory, or absolute.
    pub data_dir: String,
    /// The first node is a data node; only the options given are written.
    pub mail: MailSection,
    /// No addresses: no `[vip]` section.
    pub vip: VipOptions,
}

#[derive(Debug, Clone)]
pub struct InitOutcome {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub node: NodePaths,
    pub node_file: NodeFile,
    /// Not saved yet: the caller decides where.
    pub client_config: ClientConfig,
}

/// Makes the cluster CA in `plan.dir` and the first node (id 1) in `plan.dir/<name>`, with fresh
/// admin and join tokens.
pub fn init_files(plan: &InitPlan) -> Result<InitOutcome> {
    validate_name(&plan.name)?;
    validate_member_addr("raft address", &plan.raft_addr)?;
    validate_member_addr("admin address", &plan.admin_addr)?;
    validate_mail(&plan.mail)?;
    validate_data_dir(&plan.data_dir)?;
    let vip = vip_section(&plan.vip, Role::Data, &plan.mail, &plan.raft_addr)?;
    ensure!(!plan.cluster_name.is_empty(), "the cluster name is empty");
    let dir = std::path::absolute(&plan.dir)
        .with_context(|| format!("make {} absolute", plan.dir.display()))?;
    let node = NodePaths::new(&dir.join(&plan.name))?;
    node.refuse_existing()?;
    let ca_cert = dir.join(CA_CERT_FILE);
    let ca_key = dir.join("ca.key");
    for path in [&ca_cert, &ca_key] {
        if path.exists() {
            bail!(
                "{} already exists: {} holds another cluster; choose a new --dir, or add a \
                 node to that cluster with `mclusterctl join`",
                path.display(),
                dir.display()
            );
        }
    }

    // Make everything in memory first, so a failure leaves no half-made node behind.
    let ca = pki::generate_ca(&plan.cluster_name)?;
    let node_id = 1;
    let node_cert = pki::issue_node_cert(&ca, node_id, &plan.name)?;
    let admin_token = secrets::random_token();
    let join_token = secrets::random_token();
    let bootstrap_file = BootstrapFile {
        cluster_name: plan.cluster_name.clone(),
        admin_token_sha256: secrets::sha256_hex(&admin_token),
        join_token_sha256: secrets::sha256_hex(&join_token),
        ca_cert_pem: ca.cert_pem.clone(),
        ca_key_pem: ca.key_pem.clone(),
    };
    let node_file = NodeFile {
        node_id,
        name: plan.name.clone(),
        role: Role::Data,
        data_dir: plan.data_dir.clone(),
        raft_addr: plan.raft_addr.clone(),
        admin_addr: plan.admin_addr.clone(),
        tls: TlsSection::default(),
        mail: plan.mail.clone().into_section(),
        vip,
        bootstrap: Some(BootstrapSection {
            file: BOOTSTRAP_FILE.to_owned(),
        }),
        join: None,
    };

    files::create_dir(&node.dir)?;
    files::write_atomic(&ca_cert, ca.cert_pem.as_bytes(), PUBLIC)?;
    files::write_atomic(&ca_key, ca.key_pem.as_bytes(), PRIVATE)?;
    write_tls_files(&node, &node_cert, &ca.cert_pem)?;
    files::write_atomic(
        &node.bootstrap,
        bootstrap_file.to_toml()?.as_bytes(),
        PRIVATE,
    )?;
    // Last: its presence marks a complete node directory.
    files::write_atomic(&node.config, node_file.to_toml()?.as_bytes(), PRIVATE)?;

    let client_config = ClientConfig {
        admin_urls: vec![format!("https://{}", plan.admin_addr)],
        admin_token: Some(admin_token),
        join_token: Some(join_token),
        read_only_token: None,
        cluster_name: plan.cluster_name.clone(),
        ca_cert_pem: Some(ca.cert_pem.clone()),
    };
    Ok(InitOutcome {
        ca_cert,
        ca_key,
        node,
        node_file,
        client_config,
    })
}

/// What `join` makes.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    pub dir: PathBuf,
    pub name: String,
    pub role: Role,
    pub raft_addr: String,
    pub admin_addr: String,
    /// `data-dir`: relative to the node's directory, or absolute.
    pub data_dir: String,
    /// Admin URLs of existing members: asked now, and by the node on its first start.
    pub seeds: Vec<String>,
    /// Data nodes only; only the options given are written.
    pub mail: MailSection,
    /// Data nodes only; no addresses: no `[vip]` section.
    pub vip: VipOptions,
}

#[derive(Debug, Clone)]
pub struct JoinOutcome {
    pub node: NodePaths,
    pub node_file: NodeFile,
    pub cluster_name: String,
}

/// Asks the cluster (`POST /v1/join`) for a node id and a certificate for a new key, and writes
/// the node's directory `plan.dir/<name>`. The node still has to start to become a member.
/// `ca_pem`: the cluster CA, for `https://` seeds.
pub fn join_files(plan: &JoinPlan, join_token: &str, ca_pem: Option<&str>) -> Result<JoinOutcome> {
    validate_name(&plan.name)?;
    validate_member_addr("raft address", &plan.raft_addr)?;
    validate_member_addr("admin address", &plan.admin_addr)?;
    validate_mail(&plan.mail)?;
    validate_data_dir(&plan.data_dir)?;
    ensure!(
        plan.role == Role::Data || plan.mail == MailSection::default(),
        "a witness serves no mail: the mail options are for data nodes only"
    );
    let vip = vip_section(&plan.vip, plan.role, &plan.mail, &plan.raft_addr)?;
    let node = NodePaths::new(&plan.dir.join(&plan.name))?;
    // Before asking the cluster, which allocates a node id for every join request.
    node.refuse_existing()?;

    let key_request = pki::node_key_request(&plan.name)?;
    let client = Client::new(plan.seeds.clone(), join_token, ca_pem)?;
    let join_request = JoinRequest {
        name: plan.name.clone(),
        role: plan.role,
        raft_addr: plan.raft_addr.clone(),
        admin_addr: plan.admin_addr.clone(),
        csr_pem: key_request.csr_pem,
    };
    let joined = client
        .join(&join_request)
        .with_context(|| format!("ask the cluster to admit {}", plan.name))?;
    if let Some(active) = joined.cluster_version {
        ensure!(
            active.supported(),
            "the cluster runs cluster version {active}, and this build ({}) runs cluster \
             versions {} to {}: install the build the cluster's members run (mclusterctl \
             upgrade status shows it), then join again",
            mcluster_types::version::BUILD,
            mcluster_types::ClusterVersion::OLDEST,
            mcluster_types::ClusterVersion::NEWEST
        );
    }
    for (what, pem) in [("cert_pem", &joined.cert_pem), ("ca_pem", &joined.ca_pem)] {
        ensure!(
            pem.contains("-----BEGIN CERTIFICATE-----"),
            "the join answer's {what} is not a PEM certificate"
        );
    }

    let node_file = NodeFile {
        node_id: joined.node_id,
        name: plan.name.clone(),
        role: plan.role,
        data_dir: plan.data_dir.clone(),
        raft_addr: plan.raft_addr.clone(),
        admin_addr: plan.admin_addr.clone(),
        tls: TlsSection::default(),
        mail: plan.mail.clone().into_section(),
        vip,
        bootstrap: None,
        join: Some(JoinSection {
            seeds: client.urls().to_vec(),
            token: join_token.to_owned(),
        }),
    };
    let node_cert = CertifiedKey {
        cert_pem: joined.cert_pem,
        key_pem: key_request.key_pem,
    };
    files::create_dir(&node.dir)?;
    write_tls_files(&node, &node_cert, &joined.ca_pem)?;
    files::write_atomic(&node.config, node_file.to_toml()?.as_bytes(), PRIVATE)?;
    Ok(JoinOutcome {
        node,
        node_file,
        cluster_name: joined.cluster_name,
    })
}

fn write_tls_files(node: &NodePaths, node_cert: &CertifiedKey, ca_pem: &str) -> Result<()> {
    files::write_atomic(&node.key, node_cert.key_pem.as_bytes(), PRIVATE)?;
    files::write_atomic(&node.cert, node_cert.cert_pem.as_bytes(), PUBLIC)?;
    files::write_atomic(&node.ca_cert, ca_pem.as_bytes(), PUBLIC)
}

/// Node names become directory names and certificate subjects: keep them plain.
pub fn validate_name(name: &str) -> Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    ensure!(
        !name.is_empty()
            && name.len() <= 63
            && name.chars().all(plain)
            && !name.starts_with(['.', '-']),
        "bad node name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.', not starting \
         with '.' or '-'"
    );
    Ok(())
}

/// A path the node can take as its `data-dir`.
pub fn validate_data_dir(data_dir: &str) -> Result<()> {
    ensure!(
        !data_dir.trim().is_empty() && !data_dir.contains(['\n', '\r', '\0']),
        "bad data directory {data_dir:?}: give a path such as /var/lib/mcluster"
    );
    Ok(())
}

/// `host:port`, with a non-zero port.
pub fn validate_addr(what: &str, addr: &str) -> Result<()> {
    let valid = addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0)
    });
    ensure!(valid, "bad {what} {addr:?}: expected host:port");
    Ok(())
}

/// A node's raft or admin address: `host:port` where the other nodes and mclusterctl reach it,
/// so not a wildcard such as `0.0.0.0` (which would also be the name on its admin certificate).
pub fn validate_member_addr(what: &str, addr: &str) -> Result<()> {
    validate_addr(what, addr)?;
    if let Ok(addr) = addr.parse::<std::net::SocketAddr>() {
        ensure!(
            !addr.ip().is_unspecified(),
            "bad {what} {addr}: the other nodes and mclusterctl reach the node at this address, \
             so give one of its own addresses, not {}",
            addr.ip()
        );
    }
    Ok(())
}

/// The mail options: listen addresses like [`validate_addr`], or empty to turn a listener off;
/// the host name as the node takes it in greetings.
pub fn validate_mail(mail: &MailSection) -> Result<()> {
    for (key, addr) in mail.listeners() {
        if let Some(addr) = addr.filter(|addr| !addr.is_empty()) {
            validate_addr(&format!("{key} address"), addr)?;
        }
    }
    if let Some(hostname) = &mail.hostname {
        validate_mail_hostname(hostname)?;
    }
    Ok(())
}

/// A DNS name such as `mail.example.test`: it goes into SMTP and POP3 greetings.
pub fn validate_mail_hostname(hostname: &str) -> Result<()> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    ensure!(
        hostname.len() <= 253 && hostname.split('.').all(label_ok),
        "bad mail host name {hostname:?}: expected a DNS name such as mail.example.test"
    );
    Ok(())
}
