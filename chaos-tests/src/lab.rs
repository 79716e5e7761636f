//! The chaos lab: Linux network namespaces on one bridge, one namespace per node plus a client
//! and an ARP observer, so a node can own a virtual IP on a real (virtual) Ethernet segment and
//! faults can cut, filter or slow its link.
//!
//! Lab `S` uses subnet 10.77.S.0/24 and namespaces named `mccS-<host>`: `mccS-sw` holds the
//! bridge, `mccS-n1`.. the nodes (.1, .2, ..), `mccS-cl` the client (.200), `mccS-ob` the observer
//! (.201); the VIP is .100. Every host's `eth0` has a MAC derived from its name, so the observer
//! can say which node answered. A lock file per subnet keeps two runs from sharing a lab, and a
//! lab left behind by a run that was killed (its namespaces, the processes in them, its tmpfs
//! mounts) is removed when the next lab on that subnet is made. Dropping the lab removes all of it.
//!
//! Processes run in a namespace through `nsenter --net=/run/netns/NAME` (which execs, so a child's
//! PID is the program's own) and stay in the harness's mount namespace, so the tmpfs data
//! directories the lab mounts are the ones the nodes see. The harness's own requests to the
//! admin API run on a thread that entered the client namespace ([`Lab::in_host`]): a socket
//! belongs to the namespace of the thread that creates it.

use std::fs::{self, File};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const LOCK_DIR: &str = "/run/mcluster-chaos";
const NETNS_DIR: &str = "/run/netns";

/// A host of the lab: one network namespace with one `eth0` on the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Node by index into the cluster's nodes (0-based); address .index+1.
    Node(usize),
    Client,
    Observer,
}

impl Host {
    /// The short name: the namespace suffix and the bridge port's name.
    pub fn name(self) -> String {
        match self {
            Host::Node(i) => format!("n{}", i + 1),
            Host::Client => "cl".into(),
            Host::Observer => "ob".into(),
        }
    }

    fn last_octet(self) -> u8 {
        match self {
            Host::Node(i) => u8::try_from(i + 1).expect("fewer than 99 nodes"),
            Host::Client => 200,
            Host::Observer => 201,
        }
    }
}

pub struct Lab {
    subnet: u8,
    n_nodes: usize,
    /// Namespaces this lab made (removed on drop).
    namespaces: Vec<String>,
    /// tmpfs mounts this lab made (unmounted on drop).
    mounts: Mutex<Vec<PathBuf>>,
    /// Held for the lab's lifetime; the kernel releases it if the run dies.
    _lock: File,
}

impl Lab {
    /// Makes lab `subnet` with `n_nodes` node hosts, a client and an observer.
    pub fn create(subnet: u8, n_nodes: usize) -> Result<Lab> {
        assert!(
            (1..=250).contains(&subnet) && (1..100).contains(&n_nodes),
            "lab subnet 1-250, 1-99 nodes"
        );
        // /proc/self belongs to the process's effective user.
        let euid = std::os::unix::fs::MetadataExt::uid(&fs::metadata("/proc/self")?);
        if euid != 0 {
            bail!("the chaos lab makes network namespaces: run the scenarios as root");
        }
        for tool in ["ip", "nft", "nsenter", "python3"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                bail!("{tool} is missing (apt-get install iproute2 nftables util-linux python3)");
            }
        }
        let lock = take_lock(subnet)?;
        remove_leftovers(subnet)?;
        let mut lab = Lab {
            subnet,
            n_nodes,
            namespaces: Vec::new(),
            mounts: Mutex::new(Vec::new()),
            _lock: lock,
        };
        lab.build().with_context(|| format!("build lab {subnet}"))?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let switch = self.switch_ns();
        self.add_namespace(&switch)?;
        run_ok(
            "ip",
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
        )?;
        run_ok("ip", &["-n", &switch, "link", "set", "br0", "up"])?;
        for host in self.hosts() {
            let ns = self.ns(host);
            self.add_namespace(&ns)?;
            let port = host.name();
            let mac = self.mac(host);
            let port_mac = format!("02:78{}", &mac[5..]);
            run_ok(
                "ip",
                &[
                    "link", "add", "eth0", "netns", &ns, "address", &mac, "type", "veth", "peer",
                    "name", &port, "netns", &switch, "address", &port_mac,
                ],
            )?;
            run_ok(
                "ip",
                &["-n", &switch, "link", "set", &port, "master", "br0", "up"],
            )?;
            let cidr = format!("{}/24", self.ip(host));
            run_ok("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            run_ok("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn add_namespace(&mut self, name: &str) -> Result<()> {
        run_ok("ip", &["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run_ok("ip", &["-n", name, "link", "set", "lo", "up"]).map(drop)
    }

    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// Every host with an address: the nodes, the client, the observer.
    pub fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = (0..self.n_nodes).map(Host::Node).collect();
        hosts.extend([Host::Client, Host::Observer]);
        hosts
    }

    fn switch_ns(&self) -> String {
        format!("{}sw", prefix(self.subnet))
    }

    /// The namespace name of a host.
    pub fn ns(&self, host: Host) -> String {
        if let Host::Node(i) = host {
            assert!(i < self.n_nodes, "lab {} has no node {i}", self.subnet);
        }
        format!("{}{}", prefix(self.subnet), host.name())
    }

    pub fn ns_path(&self, host: Host) -> PathBuf {
        Path::new(NETNS_DIR).join(self.ns(host))
    }

    pub fn ip(&self, host: Host) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, host.last_octet())
    }

    /// The lab's whole subnet, as a CIDR.
    pub fn network(&self) -> String {
        format!("10.77.{}.0/24", self.subnet)
    }

    pub fn vip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 100)
    }

    pub fn vip_cidr(&self) -> String {
        format!("{}/24", self.vip())
    }

    /// The MAC of a host's `eth0`: 02:77:<subnet>:00:00:<last octet of its address>.
    pub fn mac(&self, host: Host) -> String {
        format!("02:77:{:02x}:00:00:{:02x}", self.subnet, host.last_octet())
    }

    /// The host whose `eth0` has this MAC, if it is one of the lab's.
    pub fn host_of_mac(&self, mac: &str) -> Option<Host> {
        self.hosts()
            .into_iter()
            .find(|&h| self.mac(h).eq_ignore_ascii_case(mac))
    }

    /// A command that runs `program` inside a host's network namespace.
    pub fn command(&self, host: Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.ns_path(host).display()))
            .arg("--")
            .arg(program);
        command
    }

    /// A command that runs `program` in the switch's namespace (the bridge and its filters).
    pub(crate) fn command_in_switch(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!(
                "--net={}",
                Path::new(NETNS_DIR).join(self.switch_ns()).display()
            ))
            .arg("--")
            .arg(program);
        command
    }

    /// Runs `f` on a thread that entered a host's network namespace.
    pub fn in_host<T: Send>(&self, host: Host, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(&self.ns_path(host), f)
    }

    /// The bridge port of a host (in the switch namespace): link faults act on it.
    pub(crate) fn port_command(&self, host: Host, state: &str) -> Result<()> {
        run_ok(
            "ip",
            &["-n", &self.switch_ns(), "link", "set", &host.name(), state],
        )
        .map(drop)
    }

    /// Mounts a tmpfs of `size_mb` at `dir` (which must be empty), named after the lab so a
    /// leftover is found and unmounted by the next run.
    pub fn mount_tmpfs(&self, host: Host, dir: &Path, size_mb: u64) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        if fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{} is not empty: mount the tmpfs before the node writes",
                dir.display()
            );
        }
        let source = format!("{}{}-disk", prefix(self.subnet), host.name());
        nix::mount::mount(
            Some(source.as_str()),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size_mb}m,mode=0700").as_str()),
        )
        .with_context(|| format!("mount tmpfs at {}", dir.display()))?;
        self.mounts.lock().expect("mount list").push(dir.to_owned());
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The processes first (nodes, clients), so nothing holds the mounts or namespaces.
        for ns in &self.namespaces {
            kill_processes_in(ns);
        }
        for dir in self.mounts.lock().map(|m| m.clone()).unwrap_or_default() {
            if let Err(err) = nix::mount::umount2(&dir, MntFlags::MNT_DETACH) {
                eprintln!("lab {}: unmount {}: {err}", self.subnet, dir.display());
            }
        }
        // Deleting a namespace also deletes its nftables tables, qdiscs and veth ends.
        for ns in self.namespaces.iter().rev() {
            if let Err(err) = run_ok("ip", &["netns", "del", ns]) {
                eprintln!("lab {}: {err:#}", self.subnet);
            }
        }
    }
}

fn prefix(subnet: u8) -> String {
    format!("mcc{subnet}-")
}

/// Runs `f` on a new thread that entered the network namespace at `path`.
pub fn in_netns<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> Result<T> {
    let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> Result<T> {
                nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("enter {}", path.display()))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn take_lock(subnet: u8) -> Result<File> {
    fs::create_dir_all(LOCK_DIR).with_context(|| format!("create {LOCK_DIR}"))?;
    let path = Path::new(LOCK_DIR).join(format!("lab-{subnet}.lock"));
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let owner = fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "lab subnet {subnet} is in use by another run (pid {}); scenarios that run at \
                 the same time need different subnets",
                owner.trim()
            );
        }
        Err(fs::TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Removes what a killed run of lab `subnet` left: the processes in its namespaces (all started
/// by that run), its tmpfs mounts and its namespaces. Called with the lab's lock held.
fn remove_leftovers(subnet: u8) -> Result<()> {
    let prefix = prefix(subnet);
    let mut leftovers = Vec::new();
    if let Ok(entries) = fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                leftovers.push(name);
            }
        }
    }
    for ns in &leftovers {
        eprintln!("lab {subnet}: removing leftover namespace {ns}");
        kill_processes_in(ns);
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        // "<id> <parent> <dev> <root> <mount point> <opts> [tags] - <fstype> <source> <opts>"
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = after.split(' ');
        let (Some("tmpfs"), Some(source)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !source.starts_with(&prefix) {
            continue;
        }
        if let Some(point) = before.split(' ').nth(4) {
            eprintln!("lab {subnet}: unmounting leftover {source} at {point}");
            nix::mount::umount2(point, MntFlags::MNT_DETACH)
                .with_context(|| format!("unmount leftover {point}"))?;
        }
    }
    for ns in &leftovers {
        run_ok("ip", &["netns", "del", ns])?;
    }
    Ok(())
}

/// SIGKILL to every process in a lab namespace: only the harness starts processes there. The
/// harness's own process is spared (its helper threads enter namespaces, its main one never).
fn kill_processes_in(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    let own = std::process::id();
    for pid in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|&p| p != own)
    {
        let _ = kill(
            Pid::from_raw(i32::try_from(pid).expect("pids fit i32")),
            Signal::SIGKILL,
        );
    }
}

/// Runs a command to completion and fails with its stderr unless it succeeds.
pub(crate) fn run_ok(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
