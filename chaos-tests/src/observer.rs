//! The ARP observer (`clients/arp_observer.py`) in the lab's observer namespace: it asks who has
//! the VIP every 20 ms for the whole scenario and records which MACs answered each round.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::history::ArpHistory;
use crate::lab::{Host, Lab};
use crate::workload::{client_script, stop_child};

/// Rounds per second the observer asks at.
pub const ROUND_MS: u32 = 20;

/// A running observer. Dropping it kills the process (by PID) if it still runs.
pub struct Observer {
    child: Option<Child>,
    pub out: PathBuf,
    stderr: PathBuf,
}

impl Observer {
    /// Starts observing; it stops by itself after `max_duration` at the latest.
    pub fn start(lab: &Lab, dir: &Path, max_duration: Duration) -> Result<Observer> {
        let out = dir.join("arp.jsonl");
        let stderr = dir.join("arp.stderr");
        let child = lab
            .command(Host::Observer, "python3")
            .arg(client_script("arp_observer.py"))
            .args(["--iface", "eth0"])
            .args(["--vip", &lab.vip().to_string()])
            .args(["--src-ip", &lab.ip(Host::Observer).to_string()])
            .args(["--out", &out.display().to_string()])
            .args(["--interval-ms", &ROUND_MS.to_string()])
            .args(["--duration", &max_duration.as_secs().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("start arp_observer.py")?;
        Ok(Observer {
            child: Some(child),
            out,
            stderr,
        })
    }

    /// The rounds recorded so far (rounds are written about 2 s after they were asked).
    pub fn history(&self) -> Result<ArpHistory> {
        if !self.out.exists() {
            return Ok(ArpHistory::default());
        }
        ArpHistory::parse(&self.out)
    }

    /// Stops the observer (SIGTERM: it writes its last rounds) and returns everything it saw.
    pub fn finish(&mut self) -> Result<ArpHistory> {
        let Some(mut child) = self.child.take() else {
            bail!("the observer was already stopped");
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "the ARP observer exited early ({status}): {}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
        stop_child(&mut child, Duration::from_secs(5));
        let history = self.history()?;
        if !history.finished {
            bail!(
                "the ARP observer did not finish cleanly: {}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
        Ok(history)
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
