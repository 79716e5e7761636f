//! Least privilege: a node started as root becomes its service user before it opens anything,
//! keeping only the three capabilities it needs.
//!
//! mclusterd needs root for exactly three things, each covered by one capability:
//! - binding the mail ports below 1024, also on the virtual IP after a takeover
//!   (CAP_NET_BIND_SERVICE);
//! - adding and removing the virtual IP over netlink (CAP_NET_ADMIN);
//! - announcing it with gratuitous ARP on an AF_PACKET socket (CAP_NET_RAW).
//!
//! So the switch happens first, in `main`, before the Tokio runtime starts a thread: capability
//! sets and PR_SET_KEEPCAPS belong to a thread, and a drop done later would leave every other
//! thread with root's full set. Everything the node creates afterwards (RocksDB files, blobs,
//! snapshots) belongs to the service user from the start, and the same file permissions serve
//! a node run by systemd as that user (deploy/mclusterd.service) and one that switches itself.
//! The three capabilities are also raised in the ambient set so the virtual IP guard, a child
//! process (`vip/guard.rs`), keeps CAP_NET_ADMIN across exec.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, bail};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User};

/// What the node keeps.
pub const KEPT: [Capability; 3] = [
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_NET_RAW,
];

/// Who the node runs as once the switch is done, for the log.
#[derive(Debug)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The effective capability set, sorted by name.
    pub capabilities: Vec<String>,
}

/// The service user and group the configuration names, resolved.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// Looks up `user` (and `group`, or the user's primary group when empty).
pub fn resolve(user: &str, group: &str) -> anyhow::Result<Account> {
    let entry = User::from_name(user)
        .with_context(|| format!("look up user {user:?}"))?
        .with_context(|| {
            format!("user {user:?} does not exist (create it: useradd --system {user})")
        })?;
    let gid = if group.is_empty() {
        entry.gid
    } else {
        Group::from_name(group)
            .with_context(|| format!("look up group {group:?}"))?
            .with_context(|| format!("group {group:?} does not exist"))?
            .gid
    };
    Ok(Account {
        name: entry.name,
        uid: entry.uid,
        gid,
    })
}

/// Becomes `account` if running as root, keeping only [`KEPT`]; checks that a node not started
/// as root already runs as `account`. `dirs` are the directories the node writes to: missing
/// ones are created for the account, existing ones must belong to it.
///
/// Must run while the process has a single thread.
pub fn become_user(account: &Account, dirs: &[&Path]) -> anyhow::Result<Identity> {
    let threads = thread_count().context("count threads")?;
    if threads != 1 {
        bail!("the privilege switch must run before any thread starts ({threads} running)");
    }
    if !Uid::effective().is_root() {
        if Uid::current() != account.uid {
            bail!(
                "mclusterd runs as uid {} but the configuration says user = {:?} (uid {}): start \
                 it as root or as that user",
                Uid::current(),
                account.name,
                account.uid
            );
        }
        return identity();
    }
    for dir in dirs {
        prepare_dir(dir, account)?;
    }
    // As root, while CAP_SETPCAP is still effective: nothing this process or its children
    // execute can ever regain a capability outside the three.
    let supported = caps::runtime::thread_all_supported();
    for cap in supported.iter().filter(|cap| !KEPT.contains(cap)) {
        caps::drop(None, CapSet::Bounding, *cap)
            .with_context(|| format!("drop {cap} from the bounding set"))?;
    }
    caps::securebits::set_keepcaps(true).context("set PR_SET_KEEPCAPS")?;
    nix::unistd::initgroups(&cstring(&account.name)?, account.gid)
        .context("set supplementary groups")?;
    nix::unistd::setresgid(account.gid, account.gid, account.gid).context("set group ids")?;
    nix::unistd::setresuid(account.uid, account.uid, account.uid).context("set user ids")?;
    caps::securebits::set_keepcaps(false).context("clear PR_SET_KEEPCAPS")?;
    // setresuid left the permitted set whole (keep-caps) and the effective set empty.
    let kept: CapsHashSet = KEPT.into_iter().collect();
    caps::set(None, CapSet::Permitted, &kept).context("set the permitted capabilities")?;
    caps::set(None, CapSet::Effective, &kept).context("set the effective capabilities")?;
    caps::set(None, CapSet::Inheritable, &kept).context("set the inheritable capabilities")?;
    for cap in KEPT {
        caps::raise(None, CapSet::Ambient, cap)
            .with_context(|| format!("raise {cap} in the ambient set"))?;
    }
    identity()
}

/// The current ids and effective capabilities.
pub fn identity() -> anyhow::Result<Identity> {
    let mut capabilities: Vec<String> = caps::read(None, CapSet::Effective)
        .context("read the effective capabilities")?
        .iter()
        .map(ToString::to_string)
        .collect();
    capabilities.sort();
    Ok(Identity {
        uid: Uid::effective().as_raw(),
        gid: Gid::effective().as_raw(),
        capabilities,
    })
}

/// Creates `dir` for the account if it is missing; an existing one must be the account's.
fn prepare_dir(dir: &Path, account: &Account) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            if meta.uid() != account.uid.as_raw() {
                bail!(
                    "{} belongs to uid {}, not to {} (uid {}): chown -R {}: {}",
                    dir.display(),
                    meta.uid(),
                    account.name,
                    account.uid,
                    account.name,
                    dir.display()
                );
            }
            // RocksDB's and the blob store's files from an earlier run as root would fail
            // later, one by one; say so now.
            for entry in
                std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?
            {
                let entry = entry.with_context(|| format!("read {}", dir.display()))?;
                let owner = entry
                    .metadata()
                    .with_context(|| format!("stat {}", entry.path().display()))?
                    .uid();
                if owner != account.uid.as_raw() {
                    bail!(
                        "{} belongs to uid {owner}, not to {}: chown -R {}: {}",
                        entry.path().display(),
                        account.name,
                        account.name,
                        dir.display()
                    );
                }
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            nix::unistd::chown(dir, Some(account.uid), Some(account.gid))
                .with_context(|| format!("chown {}", dir.display()))?;
            Ok(())
        }
        Err(err) => Err(err).with_context(|| format!("stat {}", dir.display())),
    }
}

fn thread_count() -> anyhow::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .context("no Threads line in /proc/self/status")
}

fn cstring(name: &str) -> anyhow::Result<std::ffi::CString> {
    std::ffi::CString::new(name).with_context(|| format!("user name {name:?} contains NUL"))
}

#[cfg(test)]
mod tests;
