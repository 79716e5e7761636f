//! Real clusters of `mclusterd` processes, built the way an operator builds them (`mclusterctl
//! init` and `mclusterctl join`): either on loopback addresses (127.77.S.x, one subnet per
//! scenario) or in the chaos lab, each node in its own network namespace with a virtual IP on
//! the lab's bridge (`lab.rs`). Faults done to processes, disks and links are in `faults.rs`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::api::Api;
use crate::lab::{Host, Lab};

#[cfg(test)]
mod tests;

/// The directory holding `mclusterd` and `mclusterctl`: `MCLUSTER_BIN_DIR`, else the target
/// directory the running test or program was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MCLUSTER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    let dir = exe.parent().expect("the binary lives in a directory");
    // Test binaries live in target/<profile>/deps/, programs beside the binaries.
    if dir.ends_with("deps") {
        dir.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// The admin token of the client config at `path` (as mclusterctl writes it).
pub fn admin_token(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("read the client config {}", path.display()))?;
    let token = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("admin-token = "))
        .context("the client config has no admin-token")?;
    Ok(token.trim_matches('"').to_owned())
}

/// The previous release's binaries (mclusterd, mclusterctl), which `deploy/previous-release.sh`
/// builds once (`deploy/dev.sh test` runs it and passes the directory in
/// `MCLUSTER_PREVIOUS_RELEASE`) into `<target>/previous-release/<commit>/`.
pub fn previous_release() -> PathBuf {
    if let Some(dir) = std::env::var_os("MCLUSTER_PREVIOUS_RELEASE") {
        return PathBuf::from(dir);
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/PREVIOUS_RELEASE");
    let commit = fs::read_to_string(&file).expect("read deploy/PREVIOUS_RELEASE");
    let dir = bin_dir().join("../previous-release").join(commit.trim());
    assert!(
        dir.join("mclusterd").exists(),
        "the previous release is not built in {}: run deploy/previous-release.sh",
        dir.display()
    );
    dir
}

/// The ports a node's mail services listen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailPorts {
    pub smtp: u16,
    pub submission: u16,
    pub smtps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub imap: u16,
    pub imaps: u16,
}

impl MailPorts {
    /// Loopback clusters share the machine's ports: unprivileged ones, each node on its own
    /// loopback address (the demo's: the standard ports plus 2000).
    pub const LOOPBACK: MailPorts = MailPorts {
        smtp: 2525,
        submission: 2587,
        smtps: 2465,
        pop3: 2110,
        pop3s: 2995,
        imap: 2143,
        imaps: 2993,
    };
    /// A lab node has a namespace to itself: the standard ports.
    pub const STANDARD: MailPorts = MailPorts {
        smtp: 25,
        submission: 587,
        smtps: 465,
        pop3: 110,
        pop3s: 995,
        imap: 143,
        imaps: 993,
    };
}

/// How a lab cluster is set up beyond its nodes.
#[derive(Clone, Debug, Default)]
pub struct LabOptions {
    /// Give the data nodes the lab's virtual IP (a `[vip]` section).
    pub vip: bool,
    /// Put each data node's data directory on a tmpfs of this many MB (for disk-full faults).
    pub data_tmpfs_mb: Option<u64>,
}

/// Where the cluster's nodes live.
enum Hosts {
    Loopback { subnet: u8 },
    Lab { lab: Lab, options: LabOptions },
}

/// Settings a scenario may change for every node it starts.
#[derive(Clone, Debug, Default)]
pub struct NodeTuning {
    /// Extra TOML appended to each node's config (for example a `[raft]` table).
    pub extra_toml: String,
    /// Extra environment every node starts with (each node's `env` starts as a copy).
    pub env: Vec<(String, String)>,
    /// Another build's mclusterd for every node (each node's `mclusterd` starts as a copy);
    /// None: this build's.
    pub mclusterd: Option<PathBuf>,
}

/// One node process of a test cluster.
pub struct Node {
    pub id: u64,
    pub name: String,
    pub role: &'static str,
    pub dir: PathBuf,
    pub admin_addr: String,
    pub raft_addr: String,
    pub ports: MailPorts,
    /// Extra environment for the node's process (failpoints), applied at each start.
    pub env: Vec<(String, String)>,
    /// The mclusterd it starts: another build's, or None for this build's.
    pub mclusterd: Option<PathBuf>,
    /// Whether the harness speaks HTTPS to its admin API (as the client config does).
    pub https: bool,
    child: Option<Child>,
}

impl Node {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("mclusterd.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("mclusterd.log")
    }

    /// The node's data directory (`data-dir`, as `mclusterctl` writes it): RocksDB and blobs.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The node's IP address (each node has its own loopback address).
    pub fn ip(&self) -> &str {
        self.admin_addr
            .rsplit_once(':')
            .map_or(self.admin_addr.as_str(), |(ip, _)| ip)
    }

    pub fn smtp_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.smtp)
    }

    pub fn submission_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.submission)
    }

    pub fn smtps_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.smtps)
    }

    pub fn pop3_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.pop3)
    }

    pub fn pop3s_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.pop3s)
    }

    pub fn imap_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.imap)
    }

    pub fn imaps_addr(&self) -> String {
        format!("{}:{}", self.ip(), self.ports.imaps)
    }

    pub fn admin_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.admin_addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// A cluster under test. Dropping it kills every node it started (by PID), then removes its lab
/// (if any) and its directory.
pub struct Cluster {
    // Dropped before `root`: the lab unmounts the tmpfs data directories inside it.
    hosts: Hosts,
    pub root: tempfile::TempDir,
    pub client_config: PathBuf,
    pub nodes: Vec<Node>,
    pub api: Api,
    tuning: NodeTuning,
}

impl Cluster {
    /// Starts `n_data` data nodes and, if `witness`, a witness, on 127.77.`subnet`.0.x. Each
    /// scenario uses its own subnet so scenarios can run in parallel.
    pub fn start(subnet: u8, n_data: usize, witness: bool, tuning: NodeTuning) -> Result<Cluster> {
        Cluster::build(Hosts::Loopback { subnet }, n_data, witness, tuning)
    }

    /// Starts `n_data` data nodes and, if `witness`, a witness in chaos lab `subnet`
    /// (10.77.`subnet`.0/24, see `lab.rs`), each node in its own network namespace.
    pub fn start_in_lab(
        subnet: u8,
        n_data: usize,
        witness: bool,
        tuning: NodeTuning,
        options: LabOptions,
    ) -> Result<Cluster> {
        let lab = Lab::create(subnet, n_data + usize::from(witness))?;
        Cluster::build(Hosts::Lab { lab, options }, n_data, witness, tuning)
    }

    /// Two data nodes with the lab's virtual IP and a witness in chaos lab `subnet`, on the
    /// default tuning: the cluster most lab tests start.
    pub fn start_pair_with_vip(subnet: u8) -> Result<Cluster> {
        let options = LabOptions {
            vip: true,
            ..LabOptions::default()
        };
        Cluster::start_in_lab(subnet, 2, true, NodeTuning::default(), options)
    }

    fn build(hosts: Hosts, n_data: usize, witness: bool, tuning: NodeTuning) -> Result<Cluster> {
        let root = tempfile::Builder::new()
            .prefix("mcluster-chaos-")
            .tempdir()
            .context("create temp dir")?;
        let client_config = root.path().join("client.toml");
        let netns = match &hosts {
            Hosts::Loopback { .. } => None,
            Hosts::Lab { lab, .. } => Some(lab.ns_path(Host::Client)),
        };
        let mut cluster = Cluster {
            api: Api::new(vec![], String::new()).from_netns(netns),
            client_config,
            nodes: Vec::new(),
            root,
            hosts,
            tuning,
        };
        let first = cluster.new_node(0, 1, "data");
        let dir = cluster.root.path().display().to_string();
        let mut args = vec![
            "init",
            "--dir",
            &dir,
            "--name",
            "n1",
            "--raft-addr",
            &first.raft_addr,
            "--admin-addr",
            &first.admin_addr,
        ];
        let node_args = cluster.node_args(&first);
        args.extend(node_args.iter().map(String::as_str));
        cluster.ctl_ok(&args)?;
        cluster.nodes.push(first);
        if cluster.tuning.mclusterd.is_some() {
            // The nodes run the previous release, which its own init set up for plain HTTP.
            cluster.use_plain_http()?;
        }
        cluster.reload_api()?;
        cluster.prepare(0)?;
        cluster.start_node(0)?;
        cluster.wait_for_leader(Duration::from_secs(20))?;
        cluster.wait_ready(0, Duration::from_secs(20))?;
        let mut roles: Vec<&'static str> = vec!["data"; n_data.saturating_sub(1)];
        if witness {
            roles.push("witness");
        }
        for role in roles {
            cluster.add_node(role)?;
        }
        if let Hosts::Lab { lab, .. } = &cluster.hosts {
            // The lab's client and observer open connections far faster than the default
            // per-service budgets a real client gets: like an MTA's own LAN, the lab is exempt from the
            // rate limit and lockouts. Tests of those limits set the policy back.
            let lab_net = format!("exempt-networks=127.0.0.0/8,::1/128,{}", lab.network());
            cluster.ctl_ok(&["protection", "set", &lab_net])?;
        }
        Ok(cluster)
    }

    /// The node at index `i`, before `init` or `join` gave it its id.
    fn new_node(&self, i: usize, id: u64, role: &'static str) -> Node {
        let ip = self.host_ip(i);
        let name = format!("n{}", i + 1);
        Node {
            id,
            dir: self.root.path().join(&name),
            name,
            role,
            admin_addr: format!("{ip}:7070"),
            raft_addr: format!("{ip}:7071"),
            ports: match self.hosts {
                Hosts::Loopback { .. } => MailPorts::LOOPBACK,
                Hosts::Lab { .. } => MailPorts::STANDARD,
            },
            env: self.tuning.env.clone(),
            mclusterd: self.tuning.mclusterd.clone(),
            https: self.speaks_https(),
            child: None,
        }
    }

    /// The address of node `i`.
    fn host_ip(&self, i: usize) -> String {
        match &self.hosts {
            Hosts::Loopback { subnet } => format!("127.77.{subnet}.{}", i + 1),
            Hosts::Lab { lab, .. } => lab.ip(Host::Node(i)).to_string(),
        }
    }

    pub fn subnet(&self) -> u8 {
        match &self.hosts {
            Hosts::Loopback { subnet } => *subnet,
            Hosts::Lab { lab, .. } => lab.subnet(),
        }
    }

    /// The lab the cluster runs in (None on loopback).
    pub fn lab(&self) -> Option<&Lab> {
        match &self.hosts {
            Hosts::Loopback { .. } => None,
            Hosts::Lab { lab, .. } => Some(lab),
        }
    }

    /// The lab the cluster runs in; panics for a loopback cluster.
    #[track_caller]
    pub fn expect_lab(&self) -> &Lab {
        self.lab()
            .expect("this scenario needs a cluster in the chaos lab")
    }

    fn reload_api(&mut self) -> Result<()> {
        let token = admin_token(&self.client_config)?;
        let https = self.speaks_https();
        for node in &mut self.nodes {
            node.https = https;
        }
        let urls = self.nodes.iter().map(Node::admin_url).collect();
        let netns = self.lab().map(|lab| lab.ns_path(Host::Client));
        // The CA init wrote: also for a client config on plain HTTP, whose nodes answer 426
        // once the cluster takes HTTPS only.
        let ca_pem = fs::read_to_string(self.root.path().join("ca.crt")).ok();
        self.api = Api::new(urls, token).with_ca(ca_pem).from_netns(netns);
        Ok(())
    }

    /// Whether the client config's admin URLs are `https://` (as `mclusterctl init` writes
    /// them since the admin API takes HTTPS only).
    fn speaks_https(&self) -> bool {
        fs::read_to_string(&self.client_config)
            .is_ok_and(|text| text.lines().any(|line| line.contains("\"https://")))
    }

    /// Makes the client config what an `mclusterctl init` before HTTPS wrote: `http://` URLs
    /// and no cluster CA. For a cluster of the previous release, which serves plain HTTP only.
    pub fn use_plain_http(&mut self) -> Result<()> {
        let text = fs::read_to_string(&self.client_config)?;
        let mut kept = String::new();
        let mut in_ca = false;
        let mut closing = "";
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("ca-cert-pem = ") {
                // A multi-line string runs to its closing delimiter.
                closing = ["\"\"\"", "'''"]
                    .into_iter()
                    .find(|quotes| value.starts_with(quotes) && value.matches(quotes).count() == 1)
                    .unwrap_or_default();
                in_ca = !closing.is_empty();
                continue;
            }
            if in_ca {
                in_ca = !line.contains(closing);
                continue;
            }
            kept.push_str(&line.replace("\"https://", "\"http://"));
            kept.push('\n');
        }
        fs::write(&self.client_config, kept)?;
        self.reload_api()
    }

    /// `mclusterctl client-config use-https --ca-cert ca.crt`, as an operator runs it once
    /// every node runs a build that serves HTTPS; the harness follows.
    pub fn use_https(&mut self) -> Result<String> {
        let ca = self.root.path().join("ca.crt").display().to_string();
        let said = self.ctl_ok(&["client-config", "use-https", "--ca-cert", &ca])?;
        self.reload_api()?;
        Ok(said)
    }

    /// More `mclusterctl init`/`join` flags for a data node: its mail listeners, each on its
    /// own address, and in a lab with a VIP the VIP on `eth0`. A witness has neither.
    fn node_args(&self, node: &Node) -> Vec<String> {
        if node.role != "data" {
            return Vec::new();
        }
        let ip = node.ip();
        let p = node.ports;
        let mut args: Vec<String> = vec![
            "--mail-hostname".into(),
            format!("{}.test", node.name),
            "--smtp-addr".into(),
            format!("{ip}:{}", p.smtp),
            "--submission-addr".into(),
            format!("{ip}:{}", p.submission),
            "--smtps-addr".into(),
            format!("{ip}:{}", p.smtps),
            "--pop3-addr".into(),
            format!("{ip}:{}", p.pop3),
            "--pop3s-addr".into(),
            format!("{ip}:{}", p.pop3s),
            "--imap-addr".into(),
            format!("{ip}:{}", p.imap),
            "--imaps-addr".into(),
            format!("{ip}:{}", p.imaps),
        ];
        if let Hosts::Lab { lab, options } = &self.hosts
            && options.vip
        {
            args.extend([
                "--vip".into(),
                lab.vip_cidr(),
                "--vip-interface".into(),
                "eth0".into(),
            ]);
        }
        args
    }

    /// Readies node `i` for its first start: its disk (a tmpfs if asked) and the scenario's
    /// extra TOML in its config.
    fn prepare(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        if let Hosts::Lab { lab, options } = &self.hosts
            && node.role == "data"
            && let Some(size_mb) = options.data_tmpfs_mb
        {
            lab.mount_tmpfs(Host::Node(i), &node.data_dir(), size_mb)?;
        }
        let path = node.config_path();
        let mut text = fs::read_to_string(&path)?;
        text.push('\n');
        text.push_str(&self.tuning.extra_toml);
        fs::write(&path, text)?;
        Ok(())
    }

    /// Joins a new node through `mclusterctl join`, starts it and waits until it is a voter.
    pub fn add_node(&mut self, role: &'static str) -> Result<usize> {
        let i = self.nodes.len();
        if let Some(lab) = self.lab()
            && i >= lab.n_nodes()
        {
            bail!("lab {} has room for {} nodes", lab.subnet(), lab.n_nodes());
        }
        let node = self.new_node(i, 0, role);
        self.nodes.push(node);
        if let Err(err) = self.join(i) {
            self.nodes.pop();
            return Err(err);
        }
        Ok(i)
    }

    /// Replaces node `i` the way an operator replaces a server: its directory is wiped and it
    /// joins again, fresh, under the same name and addresses (the cluster gives it a new id).
    /// The node must have stopped and left the cluster first.
    pub fn rejoin_fresh(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].pid().is_some() && self.exited(i)?.is_none() {
            bail!("{} is still running", self.nodes[i].name);
        }
        if let Hosts::Lab { options, .. } = &self.hosts
            && options.data_tmpfs_mb.is_some()
        {
            bail!("rejoin_fresh does not remount a data tmpfs");
        }
        let role = self.nodes[i].role;
        match fs::remove_dir_all(&self.nodes[i].dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).context("wipe the node's directory");
            }
            _ => {}
        }
        self.nodes[i] = self.new_node(i, 0, role);
        self.join(i)
    }

    /// `mclusterctl join` for node `i` (not yet given an id), then starts it and waits until
    /// it is a voter.
    fn join(&mut self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let dir = self.root.path().display().to_string();
        let mut args = vec![
            "join",
            "--dir",
            &dir,
            "--name",
            &node.name,
            "--raft-addr",
            &node.raft_addr,
            "--admin-addr",
            &node.admin_addr,
            "--role",
            node.role,
        ];
        let node_args = self.node_args(node);
        args.extend(node_args.iter().map(String::as_str));
        let out = self.ctl_ok(&args)?;
        let config = fs::read_to_string(node.config_path()).context("read joined node config")?;
        let id = config
            .lines()
            .find_map(|l| l.strip_prefix("node-id = "))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("node id in the config written by join ({out})"))?;
        self.nodes[i].id = id;
        self.reload_api()?;
        self.prepare(i)?;
        self.start_node(i)?;
        self.wait_voter(id, Duration::from_secs(60))?;
        Ok(())
    }

    /// A command for `program` where node `i` runs: in its namespace in a lab.
    fn node_command(&self, i: usize, program: &Path) -> Command {
        match self.lab() {
            None => Command::new(program),
            Some(lab) => lab.command(Host::Node(i), program),
        }
    }

    /// Runs `mclusterctl` against this cluster's client config (from the lab's client host).
    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        let program = binary("mclusterctl");
        let mut command = match self.lab() {
            None => Command::new(program),
            Some(lab) => lab.command(Host::Client, program),
        };
        command
            .arg("--config")
            .arg(&self.client_config)
            .args(args)
            .env("MCLUSTERD", binary("mclusterd"));
        command.stdin(Stdio::null());
        command
            .output()
            .with_context(|| format!("run mclusterctl {args:?}"))
    }

    /// Runs `mclusterctl` and fails unless it succeeds; returns its standard output.
    pub fn ctl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.ctl(args)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "mclusterctl {args:?} failed: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Starts (or restarts) node `i`'s process; its log is appended to `mclusterd.log`.
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        assert!(
            self.nodes[i].child.is_none(),
            "node {} is already running",
            self.nodes[i].name
        );
        let program = self.nodes[i]
            .mclusterd
            .clone()
            .unwrap_or_else(|| binary("mclusterd"));
        let mut command = self.node_command(i, &program);
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())?;
        let child = command
            .arg("--config")
            .arg(node.config_path())
            .env(
                "RUST_LOG",
                std::env::var("MCLUSTER_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn mclusterd")?;
        node.child = Some(child);
        Ok(())
    }

    /// kill -9: the process gets no chance to do anything.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.nodes[i].child.take() {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait for a clean exit (which must come within `grace`).
    pub fn stop(&mut self, i: usize, grace: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut child) = self.nodes[i].child.take() else {
            bail!("node {i} is not running")
        };
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "node {} did not stop within {grace:?} of SIGTERM",
                    self.nodes[i].name
                );
            }
            sleep(Duration::from_millis(50));
        }
    }

    pub fn index_of(&self, node_id: u64) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == node_id)
            .expect("node id belongs to the cluster")
    }

    /// `GET /v1/node` of node `i`, if it answers.
    pub fn node_status(&self, i: usize) -> Option<Value> {
        self.api
            .get_from(
                &self.nodes[i].admin_url(),
                "/v1/node",
                Duration::from_millis(500),
            )
            .ok()
    }

    /// The leader as the running nodes agree on it: a node that says it is the leader.
    pub fn current_leader(&self) -> Option<u64> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .find_map(|i| {
                let status = self.node_status(i)?;
                (status["state"] == "Leader")
                    .then(|| status["node_id"].as_u64())
                    .flatten()
            })
    }

    pub fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        wait_until(timeout, "a leader", || self.current_leader())
    }

    pub fn wait_ready(&self, i: usize, timeout: Duration) -> Result<()> {
        let url = format!("{}/ready", self.nodes[i].admin_url());
        wait_until(timeout, "node ready", || {
            self.api
                .get_status(&url)
                .ok()
                .filter(|s| *s == 200)
                .map(|_| ())
        })
    }

    pub fn wait_voter(&self, node_id: u64, timeout: Duration) -> Result<()> {
        wait_until(timeout, "node to become a voter", || {
            let members = self.api.get("/v1/members").ok()?;
            let is_voter = members
                .as_array()?
                .iter()
                .any(|m| m["node_id"].as_u64() == Some(node_id) && m["voter"] == true);
            is_voter.then_some(())
        })
    }

    /// Waits until node `i` has applied at least `index`.
    pub fn wait_applied(&self, i: usize, index: u64, timeout: Duration) -> Result<()> {
        wait_until(timeout, "node to apply the log", || {
            let applied = self.node_status(i)?["applied_index"].as_u64()?;
            (applied >= index).then_some(())
        })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Fails the scenario on any ERROR line in a node's log that is not expected: an ERROR
    /// means a person must look, so a scenario that provokes one says which.
    #[track_caller]
    pub fn check_no_unexpected_errors(&self, expected: &[&str]) {
        let unexpected = self.unexpected_errors(expected);
        assert!(
            unexpected.is_empty(),
            "unexpected ERROR lines:\n{}",
            unexpected.join("\n")
        );
    }

    /// ERROR lines (prefixed with the node's name) that contain none of `expected`.
    #[track_caller]
    pub fn unexpected_errors(&self, expected: &[&str]) -> Vec<String> {
        let mut unexpected = Vec::new();
        for node in &self.nodes {
            let log = node.log();
            // Guards the check itself: levels must appear as plain words (no colour codes).
            assert!(
                log.contains(" INFO "),
                "{}'s log has no plain INFO lines: is it coloured?",
                node.name
            );
            unexpected.extend(
                log.lines()
                    .filter(|line| line.contains(" ERROR "))
                    .filter(|line| !expected.iter().any(|e| line.contains(e)))
                    .map(|line| format!("{}: {line}", node.name)),
            );
        }
        unexpected
    }

    /// Whether node `i`'s process has exited by itself (then it counts as stopped).
    pub fn exited(&mut self, i: usize) -> Result<Option<std::process::ExitStatus>> {
        let Some(child) = self.nodes[i].child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        if status.is_some() {
            self.nodes[i].child = None;
        }
        Ok(status)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("----- log of {} -----\n{}", node.name, node.log());
            }
        }
    }
}

/// Polls `probe` every 20 ms until it yields a value or `timeout` passes.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        sleep(Duration::from_millis(20));
    }
}
