//! Faults a scenario does to a cluster: to processes (SIGSTOP/SIGCONT; kill -9 and SIGTERM are
//! in `cluster.rs`), to disks (a full tmpfs, a data directory rolled back to an older copy) and
//! to the lab's network (a link down, packet filters, random loss, netem delay).
//!
//! Packet filters live where a network fault happens: in the switch. One nftables table
//! (`bridge mcchaos`) in the switch namespace drops frames by source and destination MAC (a
//! node may send from its own address or from the VIP; both carry its MAC), so a partition is
//! one atomic change whose moment is known, the hosts' own stacks are untouched (no EPERM from
//! a local output filter), and broadcasts (ARP requests) still reach everyone, as behind a
//! firewall that filters unicast traffic.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cluster::Cluster;
use crate::lab::{Host, Lab};

const TABLE: &str = "mcchaos";

/// Whether a netem qdisc could be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netem {
    Applied,
    /// The kernel has no sch_netem (the reason, from tc).
    Unsupported(String),
}

impl Lab {
    /// Takes a host's bridge port down: it loses carrier and reaches nobody, clients included.
    pub fn link_down(&self, host: Host) -> Result<()> {
        self.port_command(host, "down")
    }

    pub fn link_up(&self, host: Host) -> Result<()> {
        self.port_command(host, "up")
    }

    /// Applies an nftables script in the switch namespace (atomically: all rules or none).
    fn switch_nft(&self, script: &str) -> Result<()> {
        let mut child = self
            .command_in_switch("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("run nft")?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "nft -f failed: {}\n{script}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Makes the switch drop frames between pairs of hosts (`(from, to)`: what `from` sends to
    /// `to`), all at once; `percent` < 100 drops that share of them at random.
    pub fn drop_frames(&self, pairs: &[(Host, Host)], percent: u8) -> Result<()> {
        let mut script = format!(
            "table bridge {TABLE} {{\n  chain forward {{ type filter hook forward priority 0; \
             policy accept; }}\n}}\n"
        );
        for &(from, to) in pairs {
            let random = if percent < 100 {
                format!(" numgen random mod 100 < {percent}")
            } else {
                String::new()
            };
            script.push_str(&format!(
                "add rule bridge {TABLE} forward ether saddr {} ether daddr {}{random} drop\n",
                self.mac(from),
                self.mac(to)
            ));
        }
        self.switch_nft(&script)
    }

    /// Drops everything `from` sends to `to` (one direction).
    pub fn drop_one_way(&self, from: Host, to: Host) -> Result<()> {
        self.drop_frames(&[(from, to)], 100)
    }

    /// Cuts `host` off from each of `others`, both directions, in one step; everyone still
    /// reaches everyone else (clients included).
    pub fn partition(&self, host: Host, others: &[Host]) -> Result<()> {
        let pairs: Vec<(Host, Host)> = others
            .iter()
            .flat_map(|&other| [(host, other), (other, host)])
            .collect();
        self.drop_frames(&pairs, 100)
    }

    /// Loses `percent`% of the frames between `host` and each of `peers`, both ways, at random.
    pub fn random_loss(&self, host: Host, peers: &[Host], percent: u8) -> Result<()> {
        let pairs: Vec<(Host, Host)> = peers
            .iter()
            .flat_map(|&peer| [(host, peer), (peer, host)])
            .collect();
        self.drop_frames(&pairs, percent)
    }

    /// Removes every packet filter and netem qdisc and brings every link up.
    pub fn heal_network(&self) -> Result<()> {
        // Deleting a table that was never made fails; that is fine.
        let _ = self
            .command_in_switch("nft")
            .args(["delete", "table", "bridge", TABLE])
            .output();
        for host in self.hosts() {
            let _ = Command::new("tc")
                .args(["-n", &self.ns(host), "qdisc", "del", "dev", "eth0", "root"])
                .output();
            self.link_up(host)?;
        }
        Ok(())
    }

    /// Delays every packet a host sends by `ms` (netem), if the kernel can.
    pub fn delay(&self, host: Host, ms: u32) -> Result<Netem> {
        let ns = self.ns(host);
        let delay = format!("{ms}ms");
        let out = Command::new("tc")
            .args([
                "-n", &ns, "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", &delay,
            ])
            .output()
            .context("run tc")?;
        if out.status.success() {
            return Ok(Netem::Applied);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if stderr.contains("qdisc kind is unknown") {
            return Ok(Netem::Unsupported(stderr));
        }
        bail!("tc netem in {ns} failed: {stderr}")
    }
}

impl Cluster {
    fn signal(&self, i: usize, signal: Signal) -> Result<()> {
        let pid = self.nodes[i]
            .pid()
            .with_context(|| format!("node {} is not running", self.nodes[i].name))?;
        kill(Pid::from_raw(i32::try_from(pid)?), signal)
            .with_context(|| format!("{signal} to node {}", self.nodes[i].name))
    }

    /// SIGSTOP: the process stops where it is; its kernel (sockets, ARP) carries on.
    pub fn freeze(&self, i: usize) -> Result<()> {
        self.signal(i, Signal::SIGSTOP)
    }

    /// SIGCONT after [`Cluster::freeze`].
    pub fn thaw(&self, i: usize) -> Result<()> {
        self.signal(i, Signal::SIGCONT)
    }

    /// Fills the filesystem under node `i`'s data directory (a lab tmpfs) until it has no free
    /// space; returns the bytes written.
    pub fn fill_disk(&self, i: usize) -> Result<u64> {
        let path = filler_path(&self.nodes[i].data_dir());
        let mut file = fs::File::create(&path).with_context(|| format!("create {path:?}"))?;
        let chunk = vec![0x5a_u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(err) => return Err(err).context("fill the disk"),
            }
        }
        // The last partial page may still fit a few bytes: take them too.
        let tail = [0x5a_u8; 1];
        while let Ok(1) = file.write(&tail) {
            written += 1;
        }
        let stat = nix::sys::statvfs::statvfs(&self.nodes[i].data_dir())?;
        if stat.blocks_available() > 0 {
            bail!(
                "the disk of {} still has {} free blocks after filling",
                self.nodes[i].name,
                stat.blocks_available()
            );
        }
        Ok(written)
    }

    /// Removes the filler of [`Cluster::fill_disk`].
    pub fn free_disk(&self, i: usize) -> Result<()> {
        let path = filler_path(&self.nodes[i].data_dir());
        fs::remove_file(&path).with_context(|| format!("remove {path:?}"))
    }

    /// Copies node `i`'s data directory (the node must be stopped) for a later
    /// [`Cluster::restore_data_dir`]; returns where the copy is.
    pub fn save_data_dir(&self, i: usize) -> Result<PathBuf> {
        let node = &self.nodes[i];
        if node.is_running() {
            bail!("stop {} before copying its data directory", node.name);
        }
        let copy = self.root().join(format!("{}-data-copy", node.name));
        if copy.exists() {
            fs::remove_dir_all(&copy)?;
        }
        copy_dir(&node.data_dir(), &copy)?;
        Ok(copy)
    }

    /// Replaces node `i`'s data directory (the node must be stopped) by an older copy.
    pub fn restore_data_dir(&self, i: usize, copy: &Path) -> Result<()> {
        let node = &self.nodes[i];
        if node.is_running() {
            bail!("stop {} before restoring its data directory", node.name);
        }
        let data = node.data_dir();
        // Empty the directory rather than replace it: it may be a mount point.
        for entry in fs::read_dir(&data)? {
            let path = entry?.path();
            if path.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        for entry in fs::read_dir(copy)? {
            let entry = entry?;
            copy_dir_entry(&entry.path(), &data.join(entry.file_name()))?;
        }
        Ok(())
    }
}

fn filler_path(data_dir: &Path) -> PathBuf {
    data_dir.join("chaos-filler")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        copy_dir_entry(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

fn copy_dir_entry(from: &Path, to: &Path) -> Result<()> {
    let kind = fs::symlink_metadata(from)?.file_type();
    if kind.is_dir() {
        copy_dir(from, to)
    } else if kind.is_file() {
        fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
        Ok(())
    } else {
        bail!("unexpected file type at {}", from.display())
    }
}

/// A CPU quota on one node's process (a cgroup of its own), lifted when dropped: the node gets
/// at most `percent` of one CPU, in slices of the scheduler's 100 ms period, as on a host where
/// other work takes the rest.
pub struct CpuLimit {
    dir: PathBuf,
    /// Where the process goes back to (the cgroup root of the hierarchy).
    root: PathBuf,
    pid: u32,
}

impl Cluster {
    /// Limits node `i` to `percent` of one CPU until the returned guard is dropped (cgroup v2
    /// `cpu.max`, or v1 `cpu.cfs_quota_us`).
    pub fn limit_cpu(&self, i: usize, percent: u32) -> Result<CpuLimit> {
        let pid = self.nodes[i]
            .pid()
            .with_context(|| format!("node {} is not running", self.nodes[i].name))?;
        let name = format!("mcluster-chaos-{pid}");
        let quota_us = u64::from(percent.clamp(1, 100)) * 1000;
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers");
        let (root, dir) = if v2.exists() {
            let root = PathBuf::from("/sys/fs/cgroup");
            let dir = root.join(&name);
            // The cpu controller must be enabled for the root's children.
            let _ = fs::write(root.join("cgroup.subtree_control"), "+cpu");
            fs::create_dir_all(&dir).with_context(|| format!("create {dir:?}"))?;
            fs::write(dir.join("cpu.max"), format!("{quota_us} 100000"))
                .with_context(|| format!("set {dir:?}/cpu.max"))?;
            (root, dir)
        } else {
            let root = PathBuf::from("/sys/fs/cgroup/cpu");
            let dir = root.join(&name);
            fs::create_dir_all(&dir).with_context(|| format!("create {dir:?}"))?;
            fs::write(dir.join("cpu.cfs_period_us"), "100000")?;
            fs::write(dir.join("cpu.cfs_quota_us"), quota_us.to_string())
                .with_context(|| format!("set {dir:?}/cpu.cfs_quota_us"))?;
            (root, dir)
        };
        fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("move {pid} into {dir:?}"))?;
        Ok(CpuLimit { dir, root, pid })
    }
}

impl CpuLimit {
    /// How long the scheduler held the process back so far (cpu.stat), in milliseconds.
    pub fn throttled_ms(&self) -> Option<u64> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        stat.lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            match key {
                "throttled_usec" => value.parse::<u64>().ok().map(|us| us / 1000),
                "throttled_time" => value.parse::<u64>().ok().map(|ns| ns / 1_000_000),
                _ => None,
            }
        })
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // Threads first (v1 moves them one by one through `tasks` as well as `cgroup.procs`).
        let _ = fs::write(self.root.join("cgroup.procs"), self.pid.to_string());
        if let Ok(tasks) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for task in tasks.lines() {
                let _ = fs::write(self.root.join("cgroup.procs"), task);
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}
