//! Real clusters of `mclusterd` processes on loopback addresses, built the way an operator builds
//! them (`mclusterctl init` and `mclusterctl join`), and the faults done to their processes.

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

/// Mail ports of test nodes (each node listens on its own address).
pub const SMTP_PORT: u16 = 2525;
pub const SUBMISSION_PORT: u16 = 2587;
pub const SMTPS_PORT: u16 = 2465;
pub const POP3_PORT: u16 = 2110;
pub const POP3S_PORT: u16 = 2995;

/// Settings a scenario may change for every node it starts.
#[derive(Clone, Debug, Default)]
pub struct NodeTuning {
    /// Extra TOML appended to each node's config (for example a `[raft]` table).
    pub extra_toml: String,
}

/// One node process of a test cluster.
pub struct Node {
    pub id: u64,
    pub name: String,
    pub role: &'static str,
    pub dir: PathBuf,
    pub admin_addr: String,
    pub raft_addr: String,
    /// Extra environment for the node's process (failpoints), applied at each start.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Node {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("mclusterd.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("mclusterd.log")
    }

    /// The node's IP address (each node has its own loopback address).
    pub fn ip(&self) -> &str {
        self.admin_addr
            .rsplit_once(':')
            .map_or(self.admin_addr.as_str(), |(ip, _)| ip)
    }

    pub fn smtp_addr(&self) -> String {
        format!("{}:{SMTP_PORT}", self.ip())
    }

    pub fn submission_addr(&self) -> String {
        format!("{}:{SUBMISSION_PORT}", self.ip())
    }

    pub fn smtps_addr(&self) -> String {
        format!("{}:{SMTPS_PORT}", self.ip())
    }

    pub fn pop3_addr(&self) -> String {
        format!("{}:{POP3_PORT}", self.ip())
    }

    pub fn pop3s_addr(&self) -> String {
        format!("{}:{POP3S_PORT}", self.ip())
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
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

/// A cluster under test. Dropping it kills every node it started (by PID).
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub client_config: PathBuf,
    pub nodes: Vec<Node>,
    pub api: Api,
    subnet: u8,
    tuning: NodeTuning,
}

impl Cluster {
    /// Starts `n_data` data nodes and, if `witness`, a witness, on 127.77.`subnet`.0.x. Each
    /// scenario uses its own subnet so scenarios can run in parallel.
    pub fn start(subnet: u8, n_data: usize, witness: bool, tuning: NodeTuning) -> Result<Cluster> {
        let root = tempfile::Builder::new()
            .prefix("mcluster-chaos-")
            .tempdir()
            .context("create temp dir")?;
        let client_config = root.path().join("client.toml");
        let addr = |i: usize, port: u16| format!("127.77.{subnet}.{}:{port}", i + 1);
        let first = Node {
            id: 1,
            name: "n1".into(),
            role: "data",
            dir: root.path().join("n1"),
            admin_addr: addr(0, 7070),
            raft_addr: addr(0, 7071),
            env: Vec::new(),
            child: None,
        };
        let mut cluster = Cluster {
            api: Api::new(vec![], String::new()),
            client_config,
            nodes: Vec::new(),
            root,
            subnet,
            tuning,
        };
        cluster.ctl_ok(&[
            "init",
            "--dir",
            &cluster.root.path().display().to_string(),
            "--name",
            "n1",
            "--raft-addr",
            &first.raft_addr,
            "--admin-addr",
            &first.admin_addr,
        ])?;
        cluster.nodes.push(first);
        cluster.reload_api()?;
        cluster.tune(0)?;
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
        Ok(cluster)
    }

    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    fn reload_api(&mut self) -> Result<()> {
        let text = fs::read_to_string(&self.client_config).context("read client config")?;
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("admin-token = "))
            .map(|v| v.trim().trim_matches('"').to_string())
            .context("client config has an admin token")?;
        let urls = self.nodes.iter().map(Node::admin_url).collect();
        self.api = Api::new(urls, token);
        Ok(())
    }

    /// Appends the node's mail listeners (on its own address) and the scenario's extra TOML.
    fn tune(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        let path = node.config_path();
        let mut text = fs::read_to_string(&path)?;
        let ip = node.ip();
        text.push_str(&format!(
            "\n[mail]\nhostname = \"{}.test\"\nsmtp = \"{ip}:{SMTP_PORT}\"\n\
             submission = \"{ip}:{SUBMISSION_PORT}\"\nsmtps = \"{ip}:{SMTPS_PORT}\"\n\
             pop3 = \"{ip}:{POP3_PORT}\"\npop3s = \"{ip}:{POP3S_PORT}\"\n",
            node.name
        ));
        text.push('\n');
        text.push_str(&self.tuning.extra_toml);
        fs::write(&path, text)?;
        Ok(())
    }

    /// Joins a new node through `mclusterctl join`, starts it and waits until it is a voter.
    pub fn add_node(&mut self, role: &'static str) -> Result<usize> {
        let i = self.nodes.len();
        let name = format!("n{}", i + 1);
        let admin_addr = format!("127.77.{}.{}:7070", self.subnet, i + 1);
        let raft_addr = format!("127.77.{}.{}:7071", self.subnet, i + 1);
        let out = self.ctl_ok(&[
            "join",
            "--dir",
            &self.root.path().display().to_string(),
            "--name",
            &name,
            "--raft-addr",
            &raft_addr,
            "--admin-addr",
            &admin_addr,
            "--role",
            role,
        ])?;
        let dir = self.root.path().join(&name);
        let config =
            fs::read_to_string(dir.join("mclusterd.toml")).context("read joined node config")?;
        let id = config
            .lines()
            .find_map(|l| l.strip_prefix("node-id = "))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("node id in the config written by join ({out})"))?;
        self.nodes.push(Node {
            id,
            name,
            role,
            dir,
            admin_addr,
            raft_addr,
            env: Vec::new(),
            child: None,
        });
        self.reload_api()?;
        self.tune(i)?;
        self.start_node(i)?;
        self.wait_voter(id, Duration::from_secs(60))?;
        Ok(i)
    }

    /// Runs `mclusterctl` against this cluster's client config.
    pub fn ctl(&self, args: &[&str]) -> Result<Output> {
        let mut command = Command::new(binary("mclusterctl"));
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
        let node = &mut self.nodes[i];
        assert!(
            node.child.is_none(),
            "node {} is already running",
            node.name
        );
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())?;
        let child = Command::new(binary("mclusterd"))
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
            crate::api::get_status(&url)
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
        for node in &self.nodes {
            let log = node.log();
            // Guards the check itself: levels must appear as plain words (no colour codes).
            assert!(
                log.contains(" INFO "),
                "{}'s log has no plain INFO lines: is it coloured?",
                node.name
            );
            let unexpected: Vec<&str> = log
                .lines()
                .filter(|line| line.contains(" ERROR "))
                .filter(|line| !expected.iter().any(|e| line.contains(e)))
                .collect();
            assert!(
                unexpected.is_empty(),
                "unexpected ERROR lines from {}:\n{}",
                node.name,
                unexpected.join("\n")
            );
        }
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
