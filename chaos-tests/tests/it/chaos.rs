//! Chaos scenarios in the lab (network namespaces, a VIP, an ARP observer, a mail workload
//! through the VIP): each breaks one thing under load and the runner checks what clients saw
//! (`chaos_tests::scenario`). The smoke subset runs by default; `MCLUSTER_CHAOS_FULL=1` runs
//! them all. `MCLUSTER_CHAOS_SEED=N` replays one run. Each scenario has its own lab subnet
//! (11-27); nextest runs them one at a time (test group `chaos`).

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::checks::imap_cache::{self, ImapRecords};
use chaos_tests::checks::single_vip_owner;
use chaos_tests::faults::Netem;
use chaos_tests::history::monotonic_now;
use chaos_tests::lab::{Host, Lab};
use chaos_tests::mail::PASSWORD;
use chaos_tests::observer::Observer;
use chaos_tests::scenario::{self, Chaos, Outcome, Setup, full_suite, seed_from_env};
use chaos_tests::workload::client_script;
use rand::Rng;

/// Whether to run a scenario: smoke ones always, the rest with `MCLUSTER_CHAOS_FULL=1`.
fn selected(name: &str, smoke: bool) -> bool {
    if smoke || full_suite() {
        return true;
    }
    println!("{name}: not in the smoke subset; MCLUSTER_CHAOS_FULL=1 runs it");
    false
}

/// Runs a scenario once, with the seed from the environment or a fresh one.
fn run_once(
    name: &'static str,
    subnet: u8,
    smoke: bool,
    adjust: impl FnOnce(&mut Setup),
    fault: impl FnOnce(&mut Chaos) -> Result<Outcome>,
) {
    if !selected(name, smoke) {
        return;
    }
    let mut setup = Setup::new(name, subnet, scenario::seed());
    adjust(&mut setup);
    scenario::run(setup, fault);
}

/// SIGTERM, and the node must exit cleanly.
fn stop_cleanly(chaos: &mut Chaos, i: usize) -> Result<()> {
    let status = chaos.cluster.stop(i, Duration::from_secs(15))?;
    if !status.success() {
        bail!(
            "{} exited with {status} after SIGTERM",
            chaos.cluster.nodes[i].name
        );
    }
    Ok(())
}

#[test]
fn kill_leader_during_load() {
    // Several seeds: two in the smoke run, five in the full one; one when a seed is given.
    let seeds: Vec<u64> = match seed_from_env() {
        Some(seed) => vec![seed],
        None => (0..if full_suite() { 5 } else { 2 })
            .map(|_| scenario::seed())
            .collect(),
    };
    for seed in seeds {
        scenario::run(Setup::new("kill_leader_during_load", 11, seed), |chaos| {
            scenario::kill_vip_holder(chaos, Duration::from_secs(4))
        });
    }
}

#[test]
fn kill_mirror_partner_during_load() {
    run_once(
        "kill_mirror_partner_during_load",
        12,
        true,
        |_| {},
        |chaos| {
            let partner = chaos.partner_of(chaos.holder()?);
            chaos.fault(None);
            chaos.cluster.kill(partner)?;
            chaos.hold(Duration::from_secs(4));
            chaos.cluster.start_node(partner)?;
            chaos.healed();
            chaos.check_alone_at_end(partner);
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn partition_leader_from_both_peers() {
    run_once(
        "partition_leader_from_both_peers",
        13,
        true,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            let others: Vec<Host> = (0..chaos.cluster.nodes.len())
                .filter(|&i| i != holder)
                .map(Host::Node)
                .collect();
            chaos.lab().partition(Host::Node(holder), &others)?;
            chaos.fault(Some(holder));
            chaos.hold(Duration::from_secs(5));
            chaos.lab().heal_network()?;
            chaos.healed();
            chaos.check_alone_at_end(holder);
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn partition_data_nodes_witness_sees_both() {
    run_once(
        "partition_data_nodes_witness_sees_both",
        14,
        false,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            let partner = chaos.partner_of(holder);
            chaos
                .lab()
                .partition(Host::Node(holder), &[Host::Node(partner)])?;
            chaos.fault(None);
            chaos.hold(Duration::from_secs(5));
            chaos.lab().heal_network()?;
            chaos.healed();
            chaos.check_alone_at_end(partner);
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn freeze_leader_beyond_lease() {
    run_once(
        "freeze_leader_beyond_lease",
        15,
        true,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            chaos.fault(Some(holder));
            chaos.cluster.freeze(holder)?;
            // Longer than the leader lease (election timeout max, 600 ms) plus the address's
            // kernel lifetime (1 s): the cluster must have moved on when it wakes up.
            let frozen = chaos.hold(Duration::from_secs(3));
            chaos.cluster.thaw(holder)?;
            chaos.healed();
            chaos.check_alone_at_end(holder);
            chaos.note(format!(
                "{} frozen for {frozen:?}",
                chaos.cluster.nodes[holder].name
            ));
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn witness_down_during_load() {
    run_once(
        "witness_down_during_load",
        16,
        false,
        |_| {},
        |chaos| {
            let witness = chaos.witness();
            chaos.fault(None);
            chaos.cluster.kill(witness)?;
            chaos.hold(Duration::from_secs(5));
            chaos.cluster.start_node(witness)?;
            Ok(Outcome::Ran)
        },
    );
}

/// Fills node `i`'s disk (the fault takes effect when it is full; `on_holder` as in
/// [`Chaos::fault`]), holds, frees it, and gives the node a bounded time to recover by
/// itself; a node that has exited or not caught up by then is restarted, as an operator would,
/// and the report says so.
fn disk_full(chaos: &mut Chaos, i: usize, on_holder: bool) -> Result<()> {
    let name = chaos.cluster.nodes[i].name.clone();
    let filled = chaos.cluster.fill_disk(i)?;
    chaos.fault(on_holder.then_some(i));
    chaos.note(format!("{name}: disk full ({} MB written)", filled >> 20));
    chaos.hold(Duration::from_secs(5));
    chaos.cluster.free_disk(i)?;
    if let Some(status) = chaos.cluster.exited(i)? {
        chaos.note(format!(
            "{name} exited on the full disk ({status}); restarting it"
        ));
        chaos.cluster.start_node(i)?;
    } else if let Err(err) = chaos.wait_caught_up(i, Duration::from_secs(20)) {
        chaos.note(format!(
            "{name} did not recover within 20 s of the disk being freed ({err:#}); restarting it"
        ));
        if chaos.cluster.stop(i, Duration::from_secs(10)).is_err() {
            chaos.cluster.kill(i)?;
        }
        chaos.cluster.start_node(i)?;
    }
    chaos.healed();
    chaos.check_alone_at_end(i);
    Ok(())
}

/// Full disks provoke ERRORs on purpose: the ones a full disk explains.
const DISK_FULL_ERRORS: [&str; 2] = ["No space left on device", "could not write a blob"];

#[test]
fn disk_full_on_mirror_partner() {
    run_once(
        "disk_full_on_mirror_partner",
        17,
        false,
        |setup| {
            setup.lab.data_tmpfs_mb = Some(256);
            setup.expected_errors.extend(DISK_FULL_ERRORS);
        },
        |chaos| {
            let partner = chaos.partner_of(chaos.holder()?);
            disk_full(chaos, partner, false)?;
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn disk_full_on_leader() {
    run_once(
        "disk_full_on_leader",
        18,
        false,
        |setup| {
            setup.lab.data_tmpfs_mb = Some(256);
            setup.expected_errors.extend(DISK_FULL_ERRORS);
        },
        |chaos| {
            let holder = chaos.holder()?;
            disk_full(chaos, holder, true)?;
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn planned_failover_under_load() {
    run_once(
        "planned_failover_under_load",
        26,
        true,
        |_| {},
        |chaos| {
            // `mclusterctl failover` releases the VIP before leadership moves (a transfer
            // election does not wait for the lease) and returns once the new leader holds it.
            let holder = chaos.holder()?;
            let target = chaos.partner_of(holder);
            let name = chaos.cluster.nodes[target].name.clone();
            chaos.fault(Some(holder));
            let out = chaos.cluster.ctl_ok(&["failover", "--to", &name])?;
            if !out.contains("VIP") {
                bail!("failover did not report the VIP moving: {out}");
            }
            chaos.hold(Duration::from_secs(3));
            let now = chaos.holder()?;
            if now != target {
                bail!(
                    "the VIP is on {} after failing over to {name}",
                    chaos.cluster.nodes[now].name
                );
            }
            Ok(Outcome::Ran)
        },
    );
}

/// The leader's process gets 10 % of one CPU (a cgroup quota, in slices of the scheduler's
/// 100 ms period) for 30 s under the scenario's load, as on a host where other work takes the
/// rest. Slow answers are expected; a lapsed lease (both nodes are up) or a lost leadership is
/// not. At 10 % no build we have measured lapses; at 5 %, where openraft's 50 ms limit on
/// heartbeats and our acknowledgement-based silence made the lease lapse about eight times a
/// minute, it still lapses now and then (`lease_bench --cpu 5`), so 5 % is not held here.
#[test]
fn starve_leader_cpu() {
    run_once(
        "starve_leader_cpu",
        28,
        true,
        |_| {},
        |chaos| {
            const PERCENT: u32 = 10;
            let holder = chaos.holder()?;
            let logs_before: Vec<usize> =
                chaos.cluster.nodes.iter().map(|n| n.log().len()).collect();
            let limit = chaos.cluster.limit_cpu(holder, PERCENT)?;
            chaos.fault(None);
            let held = chaos.hold(Duration::from_secs(30));
            let throttled = limit.throttled_ms();
            drop(limit);
            chaos.healed();
            let mut expiries = 0;
            for (node, before) in chaos.cluster.nodes.iter().zip(logs_before) {
                let log = node.log();
                let window = log.get(before..).unwrap_or_default();
                expiries += window.matches("the leader lease expired").count();
            }
            chaos.note(format!(
                "{} at {PERCENT}% of one CPU for {held:?} (throttled {} ms): {expiries} lease \
                 expiries",
                chaos.cluster.nodes[holder].name,
                throttled.map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
            ));
            if expiries > 0 {
                bail!("the starved leader's lease lapsed {expiries} times with both nodes up");
            }
            let now = chaos.holder()?;
            if now != holder {
                bail!(
                    "the VIP moved from {} to {} while the leader was only slow",
                    chaos.cluster.nodes[holder].name,
                    chaos.cluster.nodes[now].name
                );
            }
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn rolling_restart_under_load() {
    run_once(
        "rolling_restart_under_load",
        19,
        false,
        |_| {},
        |chaos| {
            // The witness and the partner first, the VIP holder last (as an operator would).
            let holder = chaos.holder()?;
            let order = [chaos.witness(), chaos.partner_of(holder), holder];
            for i in order {
                if i == holder {
                    chaos.fault(Some(holder));
                }
                stop_cleanly(chaos, i)?;
                chaos.hold(Duration::from_secs(2));
                chaos.cluster.start_node(i)?;
                chaos.wait_caught_up(i, Duration::from_secs(30))?;
                if chaos.cluster.nodes[i].role == "data" {
                    chaos.healed();
                    chaos.wait_resynced()?;
                }
            }
            chaos.check_alone_at_end(chaos.partner_of(holder));
            if chaos.resyncs().len() != 2 {
                bail!("expected two data node restarts");
            }
            Ok(Outcome::Ran)
        },
    );
}

/// A rolling upgrade from the previous release while mail flows through the VIP: the witness,
/// then the data node without the VIP, then (after a planned failover to it) the one that held
/// it, each stopped, started on this build and caught up. The checks are the runner's (no
/// acknowledged message lost or doubled, UIDs unchanged, one VIP owner, equal state); the
/// notes give the longest time senders saw no 250 during each step.
#[test]
fn rolling_upgrade_under_load() {
    let previous = chaos_tests::cluster::previous_release();
    run_once(
        "rolling_upgrade_under_load",
        29,
        true,
        |setup| setup.tuning.mclusterd = Some(previous.join("mclusterd")),
        |chaos| {
            let builds = |chaos: &Chaos| -> Result<Vec<String>> {
                let status: serde_json::Value =
                    serde_json::from_str(&chaos.cluster.ctl_ok(&["upgrade", "status", "--json"])?)?;
                Ok(status["members"]
                    .as_array()
                    .context("members")?
                    .iter()
                    .map(|m| m["build"].as_str().unwrap_or("not reported").to_owned())
                    .collect())
            };
            let old = builds(chaos)?;
            if old.iter().any(|b| b == env!("CARGO_PKG_VERSION")) {
                bail!("the previous release reports this build's version: {old:?}");
            }
            // IMAP load too: a client caches two mailboxes and keeps an IDLE session through
            // the VIP; after the holder's step it finds its cache valid (checks/imap_cache.rs).
            let mut imap = ImapCacheClient::start(chaos)?;
            imap.wait_for(
                Duration::from_secs(45),
                "the IMAP client to cache its mailboxes and get an IDLE update",
                |r| r.is_ready("cache") && r.is_ready("idle") && !r.idle_updates.is_empty(),
            )?;
            let holder = chaos.holder()?;
            let partner = chaos.partner_of(holder);
            let mut steps = Vec::new();
            for (i, what) in [(chaos.witness(), "witness"), (partner, "data node")] {
                let start = monotonic_now();
                upgrade_node(chaos, i)?;
                steps.push((what, start, monotonic_now()));
            }
            // What the new release brings waits while a member runs the old one.
            // (Refused by the gate on a node of this build, or as unknown by one of the previous.)
            let early = chaos.cluster.ctl(&["token", "rotate", "--read-only"])?;
            let said = String::from_utf8_lossy(&early.stderr);
            if early.status.success()
                || !(said.contains("needs cluster version 3") || said.contains("no token"))
            {
                bail!("a read-only token while the VIP holder ran the previous release: {said}");
            }
            let start = monotonic_now();
            imap.fault_coming()?;
            chaos.fault(Some(holder));
            let name = chaos.cluster.nodes[partner].name.clone();
            chaos.cluster.ctl_ok(&["failover", "--to", &name])?;
            upgrade_node(chaos, holder)?;
            steps.push(("VIP holder, after a failover", start, monotonic_now()));
            // Every node serves HTTPS now, and the cluster takes nothing else once its new
            // version is active (the leader raises it by itself): the operator's next step.
            chaos.cluster.use_https()?;
            imap.wait_exit()?;
            let fault_at = chaos.fault_at().context("the failover is stamped")?;
            chaos.check_after_load(imap_cache_check(imap.out.clone(), fault_at));
            let new = builds(chaos)?;
            if new.iter().any(|b| b != env!("CARGO_PKG_VERSION")) {
                bail!("after the upgrade the members run {new:?}");
            }
            let finalized = chaos.cluster.ctl_ok(&["upgrade", "finalize"])?;
            chaos.note(format!(
                "builds {old:?} -> {new:?}; {}",
                finalized.lines().next().unwrap_or_default()
            ));
            check_read_only_token(chaos)?;
            chaos.check_alone_at_end(holder);
            chaos.check_after_load(move |chaos, history| {
                let mut problems = Vec::new();
                for (what, from, to) in steps {
                    match history.longest_gap(from, to) {
                        Some(gap) => {
                            chaos.note(format!(
                                "upgrading the {what}: longest time without a 250 {:.0} ms",
                                gap * 1000.0
                            ));
                            if gap > MAX_UPGRADE_GAP_S {
                                problems.push(format!(
                                    "upgrading the {what} kept mail out for {gap:.1} s"
                                ));
                            }
                        }
                        None => problems.push(format!("no mail taken around the {what}'s upgrade")),
                    }
                }
                problems
            });
            Ok(Outcome::Ran)
        },
    );
}

/// After the upgrade, the new release's read-only token: it reads, and it changes nothing.
fn check_read_only_token(chaos: &mut Chaos) -> Result<()> {
    let status: serde_json::Value =
        serde_json::from_str(&chaos.cluster.ctl_ok(&["upgrade", "status", "--json"])?)?;
    if status["active"] != 3 {
        bail!("the cluster version did not rise to 3: {status}");
    }
    chaos.cluster.ctl_ok(&["token", "rotate", "--read-only"])?;
    // A monitoring machine's client config: the URLs and the read-only token only.
    let config = fs::read_to_string(chaos.cluster.root().join("client.toml"))?;
    let reader: String = config
        .lines()
        .filter(|l| !l.starts_with("admin-token") && !l.starts_with("join-token"))
        .map(|l| format!("{l}\n"))
        .collect();
    let reader_config = chaos.cluster.root().join("reader.toml");
    fs::write(&reader_config, reader)?;
    let as_reader = |args: &[&str]| -> Result<std::process::Output> {
        let mut command = chaos
            .lab()
            .command(Host::Client, chaos_tests::cluster::binary("mclusterctl"));
        command.arg("--config").arg(&reader_config).args(args);
        Ok(command.stdin(Stdio::null()).output()?)
    };
    let read = as_reader(&["status"])?;
    if !read.status.success() {
        bail!(
            "a read with the read-only token: {}",
            String::from_utf8_lossy(&read.stderr)
        );
    }
    let write = as_reader(&["domain", "add", "reader.test"])?;
    let said = String::from_utf8_lossy(&write.stderr);
    if write.status.success() || !said.contains("may only read") {
        bail!("a change with the read-only token: {said}");
    }
    Ok(())
}

/// Far above the target (under a second per step), so that a slow CI machine does not fail
/// the scenario; the notes report the measured gaps.
const MAX_UPGRADE_GAP_S: f64 = 10.0;

/// Stops node `i` (SIGTERM), starts it on this build, and waits until it has caught up (and,
/// for a data node, until no blob is missing).
fn upgrade_node(chaos: &mut Chaos, i: usize) -> Result<()> {
    stop_cleanly(chaos, i)?;
    chaos.cluster.nodes[i].mclusterd = None;
    chaos.cluster.start_node(i)?;
    chaos.wait_caught_up(i, Duration::from_secs(30))?;
    if chaos.cluster.nodes[i].role == "data" {
        chaos.healed();
        chaos.wait_resynced()?;
    }
    Ok(())
}

#[test]
fn leader_link_down() {
    run_once(
        "leader_link_down",
        20,
        false,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            chaos.lab().link_down(Host::Node(holder))?;
            chaos.fault(Some(holder));
            chaos.hold(Duration::from_secs(5));
            chaos.lab().link_up(Host::Node(holder))?;
            chaos.healed();
            chaos.check_alone_at_end(holder);
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn one_way_loss_between_data_nodes() {
    run_once(
        "one_way_loss_between_data_nodes",
        21,
        false,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            let partner = chaos.partner_of(holder);
            // The seed picks the direction.
            let (from, to) = if chaos.rng.random_bool(0.5) {
                (holder, partner)
            } else {
                (partner, holder)
            };
            let names = (
                chaos.cluster.nodes[from].name.clone(),
                chaos.cluster.nodes[to].name.clone(),
            );
            chaos.note(format!(
                "dropping everything {} sends to {}",
                names.0, names.1
            ));
            chaos.lab().drop_one_way(Host::Node(from), Host::Node(to))?;
            chaos.fault(None);
            chaos.hold(Duration::from_secs(5));
            chaos.lab().heal_network()?;
            chaos.healed();
            chaos.check_alone_at_end(partner);
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn random_loss_around_leader() {
    run_once(
        "random_loss_around_leader",
        22,
        false,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            let peers: Vec<Host> = (0..chaos.cluster.nodes.len())
                .filter(|&i| i != holder)
                .map(Host::Node)
                .collect();
            chaos.lab().random_loss(Host::Node(holder), &peers, 20)?;
            chaos.fault(None);
            chaos.note("20 % loss between the leader and both peers, both ways");
            chaos.hold(Duration::from_secs(8));
            chaos.lab().heal_network()?;
            chaos.healed();
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn netem_delay_on_leader() {
    run_once(
        "netem_delay_on_leader",
        23,
        false,
        |_| {},
        |chaos| {
            let holder = chaos.holder()?;
            match chaos.lab().delay(Host::Node(holder), 100)? {
                Netem::Unsupported(reason) => {
                    return Ok(Outcome::Skipped(format!(
                        "kernel has no sch_netem ({reason})"
                    )));
                }
                Netem::Applied => {}
            }
            chaos.fault(None);
            chaos.note("100 ms netem delay on everything the leader sends");
            chaos.hold(Duration::from_secs(8));
            chaos.lab().heal_network()?;
            chaos.healed();
            Ok(Outcome::Ran)
        },
    );
}

#[test]
fn restart_partner_from_old_disk() {
    run_once(
        "restart_partner_from_old_disk",
        24,
        false,
        |_| {},
        |chaos| {
            let partner = chaos.partner_of(chaos.holder()?);
            stop_cleanly(chaos, partner)?;
            let copy = chaos.cluster.save_data_dir(partner)?;
            chaos.cluster.start_node(partner)?;
            chaos.wait_caught_up(partner, Duration::from_secs(30))?;
            // The partner acknowledges more entries and stores more blobs, then forgets them.
            chaos.hold(Duration::from_secs(4));
            chaos.fault(None);
            stop_cleanly(chaos, partner)?;
            chaos.cluster.restore_data_dir(partner, &copy)?;
            chaos.cluster.start_node(partner)?;
            chaos.healed();
            chaos.check_alone_at_end(partner);
            chaos.check_alone_at_end(partner);
            Ok(Outcome::Ran)
        },
    );
}

/// `clients/imap_cache.py` in the client namespace, through the VIP: a cache session (STARTTLS
/// on 143) and an IDLE session (993). Killed by PID if dropped while it runs.
struct ImapCacheClient {
    child: Option<Child>,
    out: PathBuf,
    stderr: PathBuf,
}

impl ImapCacheClient {
    /// Bounds the client's whole run (its sessions give up by then).
    const DEADLINE: Duration = Duration::from_secs(100);

    fn start(chaos: &Chaos) -> Result<ImapCacheClient> {
        let dir = chaos.cluster.root();
        let out = dir.join("imap_cache.jsonl");
        let stderr = dir.join("imap_cache.stderr");
        let child = chaos
            .lab()
            .command(Host::Client, "python3")
            .arg(client_script("imap_cache.py"))
            .args(["--host", &chaos.lab().vip().to_string()])
            .args(["--user", &chaos.users[0]])
            .args(["--idle-user", &chaos.users[1]])
            .args(["--password", PASSWORD])
            .args(["--seed", &chaos.seed.to_string()])
            .args(["--out", &out.display().to_string()])
            .args(["--deadline", &Self::DEADLINE.as_secs().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr)?)
            .spawn()
            .context("start imap_cache.py")?;
        Ok(ImapCacheClient {
            child: Some(child),
            out,
            stderr,
        })
    }

    fn records(&self) -> Result<ImapRecords> {
        if !self.out.exists() {
            return Ok(ImapRecords::default());
        }
        ImapRecords::parse(&self.out)
    }

    fn trouble(&self, records: &ImapRecords) -> String {
        format!(
            "client errors {:?}; stderr: {}",
            records.errors,
            fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Waits until the records satisfy `probe`; fails early if a session gave up or the client
    /// exited.
    fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        probe: impl Fn(&ImapRecords) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records()?;
            if probe(&records) {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?.is_some(),
                None => true,
            };
            if !records.errors.is_empty() || exited || Instant::now() > deadline {
                bail!("waiting for {what}: {}", self.trouble(&records));
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Tells the client (SIGUSR1) that the fault comes now: the next dropped connection is
    /// the fault's, not one to start over from.
    fn fault_coming(&self) -> Result<()> {
        let child = self
            .child
            .as_ref()
            .context("imap_cache.py is not running")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1)
            .context("signal imap_cache.py")
    }

    /// Waits for the client to end by itself (bounded by its own deadline).
    fn wait_exit(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let deadline = Instant::now() + Self::DEADLINE + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                if !status.success() {
                    bail!(
                        "imap_cache.py exited with {status}: {}",
                        self.trouble(&self.records()?)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("imap_cache.py did not end by its deadline");
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ImapCacheClient {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The check of [`ImapCacheClient`]'s records once the load has stopped (`checks/imap_cache.rs`),
/// with its measurements as notes.
fn imap_cache_check(
    out: PathBuf,
    fault_at: f64,
) -> impl FnOnce(&mut Chaos, &chaos_tests::history::WorkloadHistory) -> Vec<String> + 'static {
    move |chaos, history| {
        let records = match ImapRecords::parse(&out) {
            Ok(records) => records,
            Err(err) => return vec![format!("read the IMAP client's records: {err:#}")],
        };
        let check = imap_cache::check(history, &records, fault_at);
        if !records.restarts.is_empty() {
            chaos.note(format!(
                "IMAP: sessions started over before the fault (connection lost or NO \
                 [UNAVAILABLE]: the VIP was let go without a fault): {:?}",
                records.restarts
            ));
        }
        let ms = |map: &std::collections::BTreeMap<String, f64>, session: &str| {
            map.get(session)
                .map_or("-".into(), |s| format!("{:.0}", s * 1000.0))
        };
        chaos.note(format!(
            "IMAP: first SELECT through the VIP {} ms after the fault (cache session, \
             STARTTLS), {} ms (IDLE session, 993); dead connections noticed after {} \
             and {} ms",
            ms(&check.select_after, "cache"),
            ms(&check.select_after, "idle"),
            ms(&check.drop_after, "cache"),
            ms(&check.drop_after, "idle"),
        ));
        chaos.note(format!(
            "IMAP cache: {} cached UIDs unchanged, {} deleted by the POP3 reader, {} new \
             above the cached UIDNEXT; {} IDLE updates before the fault",
            check.unchanged, check.deleted_by_reader, check.new_after, check.idle_updates_before
        ));
        check.problems
    }
}

/// Guarantee 4 through a failover: an IMAP client caches two mailboxes (INBOX, where the load
/// arrives and the POP3 reader deletes, and one it made with copies, an append, flag changes
/// and an expunge) and keeps an IDLE connection, both through the VIP; the VIP holder is
/// killed; the client reconnects and finds its cache valid (`checks/imap_cache.rs`).
#[test]
fn imap_cache_survives_vip_kill() {
    run_once(
        "imap_cache_survives_vip_kill",
        27,
        true,
        |_| {},
        |chaos| {
            let mut client = ImapCacheClient::start(chaos)?;
            client.wait_for(
                Duration::from_secs(45),
                "the IMAP client to cache its mailboxes and get an IDLE update",
                |r| r.is_ready("cache") && r.is_ready("idle") && !r.idle_updates.is_empty(),
            )?;
            client.fault_coming()?;
            scenario::kill_vip_holder(chaos, Duration::from_secs(4))?;
            let fault_at = chaos
                .fault_at()
                .context("kill_vip_holder stamps the fault")?;
            client.wait_exit()?;
            chaos.check_after_load(imap_cache_check(client.out.clone(), fault_at));
            Ok(Outcome::Ran)
        },
    );
}

/// UDP datagrams `from` -> `to` that arrive, out of `n`.
fn udp_delivered(lab: &Lab, from: Host, to: Host, n: usize) -> usize {
    let addr = SocketAddr::from((lab.ip(to), 9999));
    let receiver = lab
        .in_host(to, move || UdpSocket::bind(addr))
        .unwrap()
        .unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    lab.in_host(from, move || {
        let sender = UdpSocket::bind("0.0.0.0:0").unwrap();
        for k in 0..n {
            sender.send_to(&k.to_be_bytes(), addr).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    })
    .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 16];
    while receiver.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    got
}

/// The lab's faults and the ARP observer do what they say, checked without a cluster: a
/// checker or a fault that cannot be seen to work proves nothing.
#[test]
fn lab_faults_and_observer_work() {
    if !selected("lab_faults_and_observer_work", true) {
        return;
    }
    let lab = Lab::create(25, 2).expect("make the lab");
    let (n1, n2, client) = (Host::Node(0), Host::Node(1), Host::Client);
    assert_eq!(udp_delivered(&lab, n1, n2, 20), 20, "baseline");
    assert_eq!(udp_delivered(&lab, client, n2, 20), 20, "baseline");

    lab.partition(n1, &[n2]).unwrap();
    assert_eq!(udp_delivered(&lab, n1, n2, 20), 0, "partitioned");
    assert_eq!(udp_delivered(&lab, n2, n1, 20), 0, "partitioned");
    assert_eq!(udp_delivered(&lab, client, n2, 20), 20, "the client is not");
    lab.heal_network().unwrap();
    assert_eq!(udp_delivered(&lab, n1, n2, 20), 20, "healed");

    lab.drop_one_way(n1, n2).unwrap();
    assert_eq!(udp_delivered(&lab, n1, n2, 20), 0, "one way");
    assert_eq!(udp_delivered(&lab, n2, n1, 20), 20, "the other way");
    lab.heal_network().unwrap();

    lab.random_loss(n1, &[n2], 50).unwrap();
    let got = udp_delivered(&lab, n1, n2, 400);
    assert!(
        (100..=300).contains(&got),
        "50 % loss delivered {got} of 400"
    );
    lab.heal_network().unwrap();

    lab.link_down(n2).unwrap();
    assert_eq!(udp_delivered(&lab, client, n2, 20), 0, "link down");
    lab.heal_network().unwrap();
    assert_eq!(udp_delivered(&lab, client, n2, 20), 20, "link up");

    match lab.delay(n1, 50).unwrap() {
        Netem::Unsupported(reason) => println!("netem: not available here ({reason})"),
        Netem::Applied => {
            let t = std::time::Instant::now();
            assert_eq!(udp_delivered(&lab, n1, n2, 1), 1);
            assert!(t.elapsed() >= Duration::from_millis(50), "netem delay");
            lab.heal_network().unwrap();
        }
    }

    // The observer sees one owner, then two when the VIP is on two hosts at once.
    let dir = tempfile::tempdir().unwrap();
    let vip = lab.vip_cidr();
    let add_vip = |host: Host| {
        let out = std::process::Command::new("ip")
            .args(["-n", &lab.ns(host), "addr", "add", &vip, "dev", "eth0"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let mut observer = Observer::start(&lab, dir.path(), Duration::from_secs(60)).unwrap();
    add_vip(n1);
    std::thread::sleep(Duration::from_secs(1));
    add_vip(n2);
    std::thread::sleep(Duration::from_secs(1));
    let arp = observer.finish().unwrap();
    let check = single_vip_owner::check(&arp, &lab);
    assert!(check.rounds > 50, "{} rounds", check.rounds);
    assert!(
        check.timeline.iter().any(|s| s.owners == ["n1"]),
        "{:?}",
        check.timeline
    );
    assert!(check.double.len() > 10, "{:?}", check.timeline);
    assert!(
        check.problems[0].contains("two owners"),
        "{:?}",
        check.problems
    );
}
