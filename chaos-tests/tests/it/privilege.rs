//! Least privilege: an existing cluster (started as root) is moved node by node to a service
//! user (`user = "nobody"` in each node's file). A node whose files still belong to root refuses
//! to start and says how to fix it; after the chown every node, and the VIP guard beside the
//! VIP holder, runs as nobody with exactly CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_NET_RAW.
//! Those are enough for the whole job: mail on port 25 of the VIP, and a failover after kill -9
//! in which the new holder adds the address (netlink), announces it (raw ARP) and binds the
//! mail ports on it.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chaos_tests::cluster::{Cluster, wait_until};
use chaos_tests::lab::{Host, Lab};
use chaos_tests::mail::{DOMAIN, PASSWORD, add_users, subjects};
use chaos_tests::scenario::{wait_healthy, wait_vip_holder};
use chaos_tests::workload::client_script;
use serde_json::Value;

const SUBNET: u8 = 78;
const NOBODY: u32 = 65534;
/// CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13).
const THREE_CAPS: &str = "0000000000003400";

/// The fields of /proc/`pid`/status.
fn proc_status(pid: u32) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect())
}

/// `pid` runs as nobody (real, effective, saved and filesystem ids) with the three
/// capabilities in every set, and nothing else.
fn assert_least_privilege(pid: u32, what: &str) -> Result<()> {
    let status = proc_status(pid)?;
    let ids = format!("{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}");
    for key in ["Uid", "Gid"] {
        ensure!(status[key] == ids, "{what}: {key} {:?}", status[key]);
    }
    for key in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        ensure!(status[key] == THREE_CAPS, "{what}: {key} {}", status[key]);
    }
    Ok(())
}

/// The VIP guard process `mclusterd` (pid `parent`) started.
fn guard_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let status = proc_status(pid).ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (status.get("PPid")? == &parent.to_string()
                && String::from_utf8_lossy(&cmdline).contains("--vip-guard"))
            .then_some(pid)
        })
}

/// Runs `mailclient.py` in the lab's client namespace; its JSON answer.
fn mailclient(lab: &Lab, args: &[&str]) -> Result<Value> {
    let output = lab
        .command(Host::Client, "timeout")
        .args(["60", "python3"])
        .arg(client_script("mailclient.py"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("run mailclient.py")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "mailclient.py {args:?} printed {stdout:?}; stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    ensure!(
        value.get("error").is_none(),
        "mailclient.py {args:?}: {value}"
    );
    Ok(value)
}

/// Sends a message from outside to the VIP's port 25; the answer to DATA.
fn send(lab: &Lab, to: &str, subject: &str) -> Result<u64> {
    let vip = lab.vip().to_string();
    let sent = mailclient(
        lab,
        &[
            "send",
            "--host",
            &vip,
            "--port",
            "25",
            "--mode",
            "plain",
            "--from",
            "sender@remote.test",
            "--to",
            to,
            "--subject",
            subject,
        ],
    )?;
    sent["code"].as_u64().context("code")
}

fn chown_nobody(dir: &Path) -> Result<()> {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{NOBODY}:{NOBODY}"))
        .arg(dir)
        .status()
        .context("run chown")?;
    ensure!(status.success(), "chown -R {}: {status}", dir.display());
    Ok(())
}

/// Every file under `dir` belongs to nobody.
fn owned_by_nobody(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        ensure!(
            meta.uid() == NOBODY,
            "{} belongs to uid {}",
            entry.path().display(),
            meta.uid()
        );
        if meta.is_dir() {
            owned_by_nobody(&entry.path())?;
        }
    }
    Ok(())
}

#[test]
fn nodes_run_as_the_service_user_with_three_capabilities() -> Result<()> {
    let mut cluster = Cluster::start_pair_with_vip(SUBNET)?;
    add_users(&cluster, &["alice"])?;
    let alice = format!("alice@{DOMAIN}");
    // The nodes' directories live in a private (0700) temp dir; the service user must reach
    // them, as it reaches /var/lib/mcluster on a real host.
    std::fs::set_permissions(cluster.root(), std::fs::Permissions::from_mode(0o755))?;

    // A rolling move to the service user, one node at a time while the others serve.
    for i in 0..cluster.nodes.len() {
        cluster.stop(i, Duration::from_secs(30))?;
        let config = cluster.nodes[i].config_path();
        let text = std::fs::read_to_string(&config)?;
        std::fs::write(&config, format!("user = \"nobody\"\n{text}"))?;
        if i == 0 {
            // Its files are still root's: it says so and does not start.
            cluster.start_node(i)?;
            let status = wait_until(Duration::from_secs(30), "the node to give up", || {
                cluster.exited(i).ok().flatten()
            })?;
            ensure!(
                !status.success(),
                "a node with root's files started as nobody"
            );
            let log = cluster.nodes[i].log();
            ensure!(
                log.contains("cannot drop privileges") && log.contains("chown -R nobody:"),
                "no clear refusal in the log:\n{log}"
            );
        }
        chown_nobody(&cluster.nodes[i].dir)?;
        cluster.start_node(i)?;
        cluster.wait_ready(i, Duration::from_secs(30))?;
        wait_healthy(&cluster, Duration::from_secs(60))?;
    }

    for node in &cluster.nodes {
        let pid = node.pid().context("node running")?;
        assert_least_privilege(pid, &node.name)?;
        ensure!(
            node.log().contains("running as the service user"),
            "{}: no identity in the log",
            node.name
        );
    }
    let holder = wait_vip_holder(&cluster, None)?;
    let holder_pid = cluster.nodes[holder].pid().context("holder running")?;
    let guard = wait_until(Duration::from_secs(10), "the VIP guard", || {
        guard_of(holder_pid)
    })?;
    // The guard removes the VIP when the holder dies: it needs CAP_NET_ADMIN across exec.
    assert_least_privilege(guard, "the VIP guard")?;

    let lab = cluster.expect_lab();
    ensure!(send(lab, &alice, "before failover")? == 250);
    // Whatever the node wrote since (RocksDB files, blobs) is the service user's.
    for node in &cluster.nodes {
        owned_by_nobody(&node.data_dir())?;
    }

    // kill -9 the holder: the other data node, also nobody, takes the VIP over.
    cluster.kill(holder)?;
    let new_holder = wait_vip_holder(&cluster, Some(holder))?;
    let lab = cluster.expect_lab();
    let code = wait_until(Duration::from_secs(30), "mail accepted on the VIP", || {
        send(lab, &alice, "after failover")
            .ok()
            .filter(|c| *c == 250)
    })?;
    ensure!(code == 250);
    let new_pid = cluster.nodes[new_holder]
        .pid()
        .context("new holder running")?;
    assert_least_privilege(new_pid, "the new holder")?;

    let vip = lab.vip().to_string();
    let listing = mailclient(
        lab,
        &[
            "pop3",
            "--host",
            &vip,
            "--port",
            "110",
            "--mode",
            "stls",
            "--user",
            &alice,
            "--password",
            PASSWORD,
        ],
    )?;
    let subjects = subjects(&listing);
    if !["before failover", "after failover"]
        .iter()
        .all(|s| subjects.iter().any(|got| got == s))
    {
        bail!("alice's maildrop after the failover: {listing}");
    }

    // The killed node comes back as nobody and catches up.
    cluster.start_node(holder)?;
    wait_healthy(&cluster, Duration::from_secs(60))?;
    assert_least_privilege(
        cluster.nodes[holder].pid().context("restarted")?,
        "the restarted node",
    )?;
    cluster.check_no_unexpected_errors(&["cannot drop privileges", "node failed"]);
    Ok(())
}
