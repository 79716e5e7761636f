//! The mail workload of the chaos scenarios (`clients/workload.py`, run in the lab's client
//! namespace): senders through the VIP with unique Message-IDs, a POP3 reader that deletes a
//! seeded fraction, and the final full read of every node's mailboxes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::history::{Listed, Listing, WorkloadHistory};
use crate::lab::{Host, Lab};
use crate::mail::PASSWORD;

pub fn client_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(name)
}

/// What the workload does; every bound is explicit.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub seed: u64,
    /// Where the clients connect: the VIP (or one node's address).
    pub host: String,
    pub users: Vec<String>,
    pub senders: usize,
    pub max_messages: usize,
    pub duration: Duration,
    /// Per-operation socket timeout of the clients, in seconds.
    pub timeout_s: f64,
    /// TCP connect timeout, in seconds: short, so a SYN lost to a VIP owner that just went
    /// away is given up for a new attempt rather than retransmitted a second later.
    pub connect_timeout_s: f64,
    /// Mean pause between a sender's acknowledged messages.
    pub pause_ms: u32,
    /// Fraction of listed messages the reader deletes; negative: no reader.
    pub delete_fraction: f64,
}

impl WorkloadSpec {
    /// A light load: three senders, a message every ~50 ms each, a reader deleting a quarter.
    pub fn light(seed: u64, host: String, users: Vec<String>, duration: Duration) -> WorkloadSpec {
        WorkloadSpec {
            seed,
            host,
            users,
            senders: 3,
            max_messages: 5000,
            duration,
            timeout_s: 3.0,
            connect_timeout_s: 0.25,
            pause_ms: 50,
            delete_fraction: 0.25,
        }
    }
}

/// A running workload process. Dropping it kills the process (by PID) if it still runs.
pub struct Workload {
    child: Option<Child>,
    pub out: PathBuf,
    stderr: PathBuf,
    spec: WorkloadSpec,
}

impl Workload {
    pub fn start(lab: &Lab, spec: WorkloadSpec, dir: &Path) -> Result<Workload> {
        let out = dir.join("workload.jsonl");
        let stderr = dir.join("workload.stderr");
        let child = lab
            .command(Host::Client, "python3")
            .arg(client_script("workload.py"))
            .arg("run")
            .args(["--host", &spec.host])
            .args(["--users", &spec.users.join(",")])
            .args(["--password", PASSWORD])
            .args(["--seed", &spec.seed.to_string()])
            .args(["--out", &out.display().to_string()])
            .args(["--senders", &spec.senders.to_string()])
            .args(["--max-messages", &spec.max_messages.to_string()])
            .args(["--duration", &spec.duration.as_secs_f64().to_string()])
            .args(["--timeout", &spec.timeout_s.to_string()])
            .args(["--connect-timeout", &spec.connect_timeout_s.to_string()])
            .args(["--pause-ms", &spec.pause_ms.to_string()])
            .args(["--delete-fraction", &spec.delete_fraction.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("start workload.py")?;
        Ok(Workload {
            child: Some(child),
            out,
            stderr,
            spec,
        })
    }

    /// What the workload recorded so far.
    pub fn history(&self) -> Result<WorkloadHistory> {
        if !self.out.exists() {
            return Ok(WorkloadHistory::default());
        }
        WorkloadHistory::parse(&self.out)
    }

    /// Waits until the workload ends by itself (its duration, plus time for the attempts in
    /// flight to time out); fails if it does not or exits with an error.
    pub fn wait(&mut self) -> Result<WorkloadHistory> {
        let grace = Duration::from_secs_f64(self.spec.timeout_s * 4.0 + 20.0);
        let deadline = Instant::now() + self.spec.duration + grace;
        let Some(child) = self.child.as_mut() else {
            bail!("the workload was already waited for");
        };
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "the workload did not end within {grace:?} after its duration; {}",
                    self.stderr_text()
                );
            }
            sleep(Duration::from_millis(100));
        };
        self.child = None;
        if !status.success() {
            bail!("workload.py exited with {status}: {}", self.stderr_text());
        }
        let history = self.history()?;
        if !history.finished {
            bail!(
                "workload.py did not write its end line: {}",
                self.stderr_text()
            );
        }
        Ok(history)
    }

    /// Asks the workload to stop now (SIGTERM), waiting a bounded time, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(
                &mut child,
                Duration::from_secs_f64(self.spec.timeout_s * 3.0 + 5.0),
            );
        }
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM to a child we started, SIGKILL if it is still there after `grace`.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads every message of `users` in full from one node (`ip`, POP3 port 110) through the
/// client namespace.
pub fn final_listing(lab: &Lab, node: &str, ip: &str, users: &[String]) -> Result<Listing> {
    let out = lab
        .command(Host::Client, "python3")
        .arg(client_script("workload.py"))
        .arg("final")
        .args(["--host", ip])
        .args(["--users", &users.join(",")])
        .args(["--password", PASSWORD])
        .args(["--timeout", "10"])
        .stdin(Stdio::null())
        .output()
        .context("run workload.py final")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| {
            format!(
                "workload.py final printed {stdout:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    if let Some(err) = value.get("error") {
        bail!("final read from {node}: {err}");
    }
    let mut listing = Listing {
        node: node.to_owned(),
        users: Default::default(),
    };
    for user in users {
        let messages: Vec<Listed> = serde_json::from_value(value["users"][user].clone())
            .with_context(|| format!("listing of {user} on {node}"))?;
        listing.users.insert(user.clone(), messages);
    }
    Ok(listing)
}
