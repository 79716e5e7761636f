//! Faults a scenario does to a cluster: to processes (SIGSTOP/SIGCONT; kill -9 and SIGTERM are
//! in `cluster.rs`), to disks (a full tmpfs, a data directory rolled back to an older copy) and
//! to the lab's network (a link down, packet filters, random loss, netem delay).
//!
//! Packet filters drop on the receiving side, in an nftables table `mcchaos` inside the
//! receiver's namespace, matched on the sender's MAC (a node may send from its own address or
//! from the VIP). Dropping on the sender's output hook would make `sendmsg` fail with EPERM, a
//! local error no real network produces. ARP is not filtered: a partitioned host still
//! resolves, as it would behind a broken switch port or firewall.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

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

    /// Runs `nft` in a host's namespace.
    fn nft(&self, host: Host, args: &[&str]) -> Result<()> {
        let out = self
            .command(host, "nft")
            .args(args)
            .output()
            .context("run nft")?;
        if !out.status.success() {
            bail!(
                "nft {} in {} failed: {}",
                args.join(" "),
                self.ns(host),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Adds an input rule in `host`'s namespace (making the table and chain on first use).
    fn drop_rule(&self, host: Host, rule: &[&str]) -> Result<()> {
        self.nft(host, &["add", "table", "inet", TABLE])?;
        self.nft(
            host,
            &[
                "add",
                "chain",
                "inet",
                TABLE,
                "input",
                "{ type filter hook input priority -10 ; policy accept ; }",
            ],
        )?;
        let mut args = vec!["add", "rule", "inet", TABLE, "input"];
        args.extend_from_slice(rule);
        args.push("drop");
        self.nft(host, &args)
    }

    /// Drops everything `from` sends to `to` (one direction).
    pub fn drop_one_way(&self, from: Host, to: Host) -> Result<()> {
        let mac = self.mac(from);
        self.drop_rule(to, &["ether", "saddr", &mac])
    }

    /// Cuts two hosts apart, both directions; each still reaches everyone else.
    pub fn partition(&self, a: Host, b: Host) -> Result<()> {
        self.drop_one_way(a, b)?;
        self.drop_one_way(b, a)
    }

    /// Loses `percent`% of the packets a node receives from `peers`, and of those it sends
    /// them, at random.
    pub fn random_loss(&self, node: Host, peers: &[Host], percent: u8) -> Result<()> {
        let percent = percent.to_string();
        for &peer in peers {
            for (from, to) in [(peer, node), (node, peer)] {
                let mac = self.mac(from);
                self.drop_rule(
                    to,
                    &[
                        "ether", "saddr", &mac, "numgen", "random", "mod", "100", "<", &percent,
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Removes every packet filter and netem qdisc and brings every link up.
    pub fn heal_network(&self) -> Result<()> {
        for host in self.hosts() {
            // Deleting a table that was never made fails; that is fine.
            let _ = self.nft(host, &["delete", "table", "inet", TABLE]);
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
