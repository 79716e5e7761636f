//! The chaos scenario runner: a cluster in the lab (two data nodes and a witness, the VIP on the
//! data nodes), the ARP observer and the mail workload running for the whole scenario, one fault
//! done by the scenario, then the checks once the cluster has healed, and one row of the
//! results table.
//!
//! Every run has a seed (`MCLUSTER_CHAOS_SEED`, else random) that drives the workload and the
//! scenario's choices; a failure prints the command that replays it and keeps the logs under
//! `<target>/debug/chaos-artifacts/` (`MCLUSTER_CHAOS_KEEP=1` keeps them for passing runs too). Rows are printed and appended to
//! `<target>/debug/chaos-table.jsonl` (or `$MCLUSTER_CHAOS_TABLE`), which the `chaos_table`
//! program prints as a table.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checks::{identical_state, no_acked_mail_lost, single_vip_owner, stable_uids};
use crate::cluster::{Cluster, LabOptions, NodeTuning, bin_dir, wait_until};
use crate::history::{ArpHistory, Listing, WorkloadHistory, monotonic_now};
use crate::lab::{Host, Lab};
use crate::mail::{DOMAIN, add_users};
use crate::observer::Observer;
use crate::workload::{Workload, WorkloadSpec, final_listing};

/// Scenarios in one process run one at a time (under `cargo test`; nextest runs each test in
/// its own process and serializes them with a test group): they are timing-sensitive.
static SERIAL: Mutex<()> = Mutex::new(());

pub const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// `MCLUSTER_CHAOS_FULL=1` runs every scenario; otherwise only the smoke subset.
pub fn full_suite() -> bool {
    std::env::var("MCLUSTER_CHAOS_FULL").is_ok_and(|v| v == "1")
}

/// The seed from `MCLUSTER_CHAOS_SEED`, if set.
pub fn seed_from_env() -> Option<u64> {
    let text = std::env::var("MCLUSTER_CHAOS_SEED").ok()?;
    Some(
        text.trim()
            .parse()
            .expect("MCLUSTER_CHAOS_SEED is a decimal u64"),
    )
}

/// The seed for a run: `MCLUSTER_CHAOS_SEED`, else a fresh random one.
pub fn seed() -> u64 {
    seed_from_env().unwrap_or_else(|| rand::rng().random_range(1..1_000_000_000))
}

/// The command that replays one run of a scenario.
pub fn replay_command(name: &str, seed: u64) -> String {
    format!(
        "MCLUSTER_CHAOS_SEED={seed} MCLUSTER_CHAOS_FULL=1 cargo nextest run --workspace \
         -E 'test(=chaos::{name})'"
    )
}

/// One scenario run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The test's name (its function in `tests/it/chaos.rs`), for the replay command.
    pub name: &'static str,
    /// The scenario's name in the results table (the test's name unless a program runs it).
    pub label: &'static str,
    /// The lab subnet; unique per scenario.
    pub subnet: u8,
    pub seed: u64,
    pub lab: LabOptions,
    pub tuning: NodeTuning,
    /// How long the load goes on after the cluster is healthy again.
    pub after_heal: Duration,
    /// ERROR log lines this scenario provokes on purpose (substrings).
    pub expected_errors: Vec<&'static str>,
}

impl Setup {
    pub fn new(name: &'static str, subnet: u8, seed: u64) -> Setup {
        Setup {
            name,
            label: name,
            subnet,
            seed,
            lab: LabOptions {
                vip: true,
                data_tmpfs_mb: None,
            },
            tuning: NodeTuning::default(),
            after_heal: Duration::from_secs(4),
            expected_errors: Vec::new(),
        }
    }
}

/// What the scenario's fault function reports.
pub enum Outcome {
    Ran,
    /// The fault cannot be done here (the reason is printed, never a pass).
    Skipped(String),
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Row {
    pub scenario: String,
    pub seed: u64,
    pub acknowledged: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub phantom: usize,
    /// ARP rounds in which two MACs answered for the VIP.
    pub double_vip: usize,
    /// kill/freeze/partition of the VIP holder -> first 250 through the VIP.
    pub failover_ms: Option<u64>,
    /// The away data node back -> no blob missing anywhere.
    pub resync_s: Option<f64>,
    /// "ok", "FAIL: ..." or "skipped: ...".
    pub verdict: String,
}

/// A check a scenario leaves for when the workload has stopped: it gets the complete history
/// and returns its problems.
pub type AfterLoad = Box<dyn FnOnce(&mut Chaos, &WorkloadHistory) -> Vec<String>>;

/// What a scenario's fault function works with.
pub struct Chaos {
    // Dropped before the cluster (whose lab kills what runs in its namespaces).
    workload: Option<Workload>,
    observer: Option<Observer>,
    pub cluster: Cluster,
    pub seed: u64,
    pub rng: StdRng,
    pub users: Vec<String>,
    fault_at: Option<f64>,
    /// The VIP holder's name, when the fault hit it.
    holder_faulted: Option<String>,
    heal_at: Option<f64>,
    /// Resync times measured so far, in seconds.
    resyncs: Vec<f64>,
    /// A data node to read everything from alone at the end, the other data nodes killed.
    alone: Option<usize>,
    after_load: Vec<AfterLoad>,
    notes: Vec<String>,
}

impl Chaos {
    pub fn lab(&self) -> &Lab {
        self.cluster.expect_lab()
    }

    /// Data nodes by index.
    pub fn data_nodes(&self) -> Vec<usize> {
        (0..self.cluster.nodes.len())
            .filter(|&i| self.cluster.nodes[i].role == "data")
            .collect()
    }

    pub fn witness(&self) -> usize {
        (0..self.cluster.nodes.len())
            .find(|&i| self.cluster.nodes[i].role == "witness")
            .expect("the chaos cluster has a witness")
    }

    /// The other data node (the mirror partner, with two data nodes).
    pub fn partner_of(&self, i: usize) -> usize {
        self.data_nodes()
            .into_iter()
            .find(|&j| j != i)
            .expect("two data nodes")
    }

    /// The node holding the VIP now, as the nodes report it (`/v1/node` vip.held).
    pub fn holder(&self) -> Result<usize> {
        let holders = vip_holders(&self.cluster);
        match holders.as_slice() {
            [one] => Ok(*one),
            other => bail!("expected one VIP holder, nodes report {other:?}"),
        }
    }

    /// Stamps the moment the fault takes effect: right before a kill or SIGSTOP (immediate),
    /// right after a network change returns (nftables and links change when the command
    /// returns). `on_holder`: the fault hits the VIP holder, so the failover time is measured
    /// from here.
    pub fn fault(&mut self, on_holder: Option<usize>) {
        self.holder_faulted = on_holder.map(|i| self.cluster.nodes[i].name.clone());
        self.fault_at = Some(monotonic_now());
    }

    /// When the fault took effect (see [`Chaos::fault`]), in CLOCK_MONOTONIC seconds.
    pub fn fault_at(&self) -> Option<f64> {
        self.fault_at
    }

    /// Stamps the moment the away data node is back (the resync time is measured from here).
    pub fn healed(&mut self) {
        self.heal_at = Some(monotonic_now());
    }

    /// Waits until no data node misses a blob (`/v1/status`: redundant, blobs_missing all 0)
    /// and records the time since [`Chaos::healed`]. The runner calls it after the fault if
    /// the scenario did not.
    pub fn wait_resynced(&mut self) -> Result<f64> {
        let heal_at = self
            .heal_at
            .take()
            .context("wait_resynced needs a heal stamp")?;
        let done_at = wait_until(Duration::from_secs(120), "no blob missing", || {
            let status = self.cluster.api.get("/v1/status").ok()?;
            let missing: u64 = status["blobs_missing"]
                .as_object()?
                .values()
                .filter_map(Value::as_u64)
                .sum();
            (status["redundant"] == true && missing == 0).then(monotonic_now)
        })?;
        let seconds = done_at - heal_at;
        self.resyncs.push(seconds);
        Ok(seconds)
    }

    /// At the end, after the other checks, kill -9 every other data node and check that node
    /// `i` alone (with the witness) still serves every acknowledged message: proves that its
    /// copies (resynced, or kept across a fault) are really there, not just counted.
    pub fn check_alone_at_end(&mut self, i: usize) {
        self.alone = Some(i);
    }

    /// Runs `check` once the workload has stopped and its history is complete, before the
    /// runner's own checks; its problems fail the scenario.
    pub fn check_after_load(
        &mut self,
        check: impl FnOnce(&mut Chaos, &WorkloadHistory) -> Vec<String> + 'static,
    ) {
        self.after_load.push(Box::new(check));
    }

    /// The resync times measured so far, in seconds.
    pub fn resyncs(&self) -> &[f64] {
        &self.resyncs
    }

    /// A line for the scenario's report.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        println!("  note: {text}");
        self.notes.push(text);
    }

    /// Sleeps `base` plus a seeded 0-50 % more.
    pub fn hold(&mut self, base: Duration) -> Duration {
        let extra = self.rng.random_range(0.0..0.5);
        let d = base.mul_f64(1.0 + extra);
        sleep(d);
        d
    }

    /// Waits until the cluster serves again: every node answers, one leader that all agree
    /// on, and exactly one VIP holder, the leader. Returns the holder.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<usize> {
        wait_healthy(&self.cluster, timeout)
    }

    /// Waits until node `i` has applied what the leader has committed.
    pub fn wait_caught_up(&self, i: usize, timeout: Duration) -> Result<()> {
        let leader = self.wait_healthy(timeout)?;
        let committed = self
            .cluster
            .node_status(leader)
            .and_then(|s| s["committed_index"].as_u64())
            .context("the leader's committed index")?;
        self.cluster.wait_applied(i, committed, timeout)
    }
}

/// The fault of `kill_leader_during_load` and the failover benchmark: kill -9 of the VIP
/// holder; it comes back after `down` (plus a seeded 0-50 %) and resyncs.
pub fn kill_vip_holder(chaos: &mut Chaos, down: Duration) -> Result<Outcome> {
    let holder = chaos.holder()?;
    chaos.fault(Some(holder));
    chaos.cluster.kill(holder)?;
    chaos.hold(down);
    chaos.cluster.start_node(holder)?;
    chaos.healed();
    chaos.check_alone_at_end(holder);
    Ok(Outcome::Ran)
}

/// Nodes that report holding the VIP.
pub fn vip_holders(cluster: &Cluster) -> Vec<usize> {
    (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].is_running())
        .filter(|&i| {
            cluster
                .node_status(i)
                .is_some_and(|s| s["vip"]["held"] == true)
        })
        .collect()
}

/// Waits (up to 30 s) until exactly one running node holds the VIP, other than `not`.
pub fn wait_vip_holder(cluster: &Cluster, not: Option<usize>) -> Result<usize> {
    wait_until(
        Duration::from_secs(30),
        "one VIP holder",
        || match vip_holders(cluster).as_slice() {
            [one] if Some(*one) != not => Some(*one),
            _ => None,
        },
    )
}

/// See [`Chaos::wait_healthy`].
pub fn wait_healthy(cluster: &Cluster, timeout: Duration) -> Result<usize> {
    let mut last = String::new();
    let found = wait_until(timeout, "a healthy cluster", || {
        let mut statuses = Vec::new();
        for i in 0..cluster.nodes.len() {
            if !cluster.nodes[i].is_running() {
                last = format!("{} is not running", cluster.nodes[i].name);
                return None;
            }
            let Some(status) = cluster.node_status(i) else {
                last = format!("{} does not answer", cluster.nodes[i].name);
                return None;
            };
            statuses.push(status);
        }
        let leaders: Vec<usize> = (0..statuses.len())
            .filter(|&i| statuses[i]["state"] == "Leader")
            .collect();
        let [leader] = leaders.as_slice() else {
            last = format!("leaders: {leaders:?}");
            return None;
        };
        let leader_id = &statuses[*leader]["node_id"];
        if statuses.iter().any(|s| &s["leader_id"] != leader_id) {
            last = "nodes disagree on the leader".into();
            return None;
        }
        let holders: Vec<usize> = (0..statuses.len())
            .filter(|&i| statuses[i]["vip"]["held"] == true)
            .collect();
        if holders != [*leader] {
            last = format!("leader {leader}, VIP holders {holders:?}");
            return None;
        }
        Some(*leader)
    });
    found.with_context(|| format!("last seen: {last}"))
}

/// Runs one scenario: prints its row, appends it to the table file, and panics (with the
/// replay command) if any check failed.
pub fn run(setup: Setup, fault: impl FnOnce(&mut Chaos) -> Result<Outcome>) -> Row {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let replay = replay_command(setup.name, setup.seed);
    println!(
        "scenario {} seed {} (replay: {replay})",
        setup.label, setup.seed
    );
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| execute(&setup, fault)));
    let (mut row, problems) = match outcome {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".into());
            (
                Row {
                    scenario: setup.label.into(),
                    seed: setup.seed,
                    ..Row::default()
                },
                vec![format!("panicked: {text}")],
            )
        }
    };
    if !problems.is_empty() {
        row.verdict = format!("FAIL: {}", problems[0]);
    }
    println!("{}", render_table(std::slice::from_ref(&row)));
    println!(
        "scenario {} took {:.0} s",
        setup.label,
        started.elapsed().as_secs_f64()
    );
    if let Err(err) = append_row(&row) {
        eprintln!("could not record the row: {err:#}");
    }
    if !problems.is_empty() {
        panic!(
            "scenario {} failed (seed {}):\n  {}\nreplay: {replay}",
            setup.label,
            setup.seed,
            problems.join("\n  ")
        );
    }
    row
}

fn execute(setup: &Setup, fault: impl FnOnce(&mut Chaos) -> Result<Outcome>) -> (Row, Vec<String>) {
    let mut row = Row {
        scenario: setup.label.into(),
        seed: setup.seed,
        ..Row::default()
    };
    let mut problems = Vec::new();
    assert!(setup.lab.vip, "chaos scenarios run with the VIP");
    let cluster = match Cluster::start_in_lab(
        setup.subnet,
        2,
        true,
        setup.tuning.clone(),
        setup.lab.clone(),
    ) {
        Ok(cluster) => cluster,
        Err(err) => {
            problems.push(format!("start the cluster: {err:#}"));
            return (row, problems);
        }
    };
    let mut chaos = Chaos {
        workload: None,
        observer: None,
        cluster,
        seed: setup.seed,
        rng: StdRng::seed_from_u64(setup.seed),
        users: USERS.iter().map(|u| format!("{u}@{DOMAIN}")).collect(),
        fault_at: None,
        holder_faulted: None,
        heal_at: None,
        resyncs: Vec::new(),
        alone: None,
        after_load: Vec::new(),
        notes: Vec::new(),
    };
    if let Err(err) = drive(setup, &mut chaos, fault, &mut row, &mut problems) {
        problems.push(format!("{err:#}"));
    }
    let keep = std::env::var("MCLUSTER_CHAOS_KEEP").is_ok_and(|v| v == "1");
    if !problems.is_empty() || keep {
        match save_artifacts(setup, &chaos) {
            Ok(dir) if problems.is_empty() => println!("  logs kept in {}", dir.display()),
            Ok(dir) => problems.push(format!("logs kept in {}", dir.display())),
            Err(err) => problems.push(format!("could not keep the logs: {err:#}")),
        }
    }
    (row, problems)
}

fn drive(
    setup: &Setup,
    chaos: &mut Chaos,
    fault: impl FnOnce(&mut Chaos) -> Result<Outcome>,
    row: &mut Row,
    problems: &mut Vec<String>,
) -> Result<()> {
    let users: Vec<&str> = USERS.to_vec();
    add_users(&chaos.cluster, &users).context("add users")?;
    let dir = chaos.cluster.root().to_owned();
    let observer = Observer::start(chaos.lab(), &dir, Duration::from_secs(600))?;
    chaos.observer = Some(observer);
    let holder = chaos
        .wait_healthy(Duration::from_secs(30))
        .context("VIP before the workload")?;
    wait_observed(chaos, holder)?;

    let spec = WorkloadSpec::light(
        setup.seed,
        chaos.lab().vip().to_string(),
        chaos.users.clone(),
        Duration::from_secs(300),
    );
    chaos.workload = Some(Workload::start(chaos.lab(), spec, &dir)?);
    let warm = wait_until(Duration::from_secs(30), "20 acknowledged messages", || {
        let n = chaos.workload.as_ref()?.history().ok()?.n_acked();
        (n >= 20).then_some(n)
    })
    .with_context(|| {
        format!(
            "warm-up; workload stderr: {}",
            chaos
                .workload
                .as_ref()
                .map(Workload::stderr_text)
                .unwrap_or_default()
        )
    })?;
    let jitter = Duration::from_millis(chaos.rng.random_range(0..1000));
    sleep(jitter);
    println!("  warm: {warm} acknowledged, then {jitter:?}");

    if let Outcome::Skipped(reason) = fault(chaos)? {
        if let Some(workload) = chaos.workload.as_mut() {
            workload.stop();
        }
        row.verdict = format!("skipped: {reason}");
        println!("  skipped: {reason}");
        return Ok(());
    }

    if chaos.heal_at.is_some()
        && let Err(err) = chaos.wait_resynced()
    {
        problems.push(format!("resync: {err:#}"));
    }
    row.resync_s = chaos.resyncs.iter().copied().reduce(f64::max);
    // A cluster that does not heal is a finding, not a reason to skip the checks.
    match chaos.wait_healthy(Duration::from_secs(60)) {
        Ok(_) => sleep(setup.after_heal),
        Err(err) => problems.push(format!("after the fault: {err:#}")),
    }

    let workload = chaos.workload.as_mut().expect("started above");
    workload.stop();
    let history = workload.history()?;
    if !history.finished {
        problems.push(format!(
            "the workload did not finish cleanly: {}",
            workload.stderr_text()
        ));
    }
    let arp = chaos.observer.as_mut().expect("started above").finish()?;
    for check in std::mem::take(&mut chaos.after_load) {
        problems.extend(check(chaos, &history));
    }

    let state = identical_state::check_digests(&chaos.cluster, Duration::from_secs(60));
    problems.extend(state.problems);
    let listings = final_listings(chaos, problems);
    let mut lost = judge(chaos, setup, &history, &arp, &listings, row, problems);
    if let Some(i) = chaos.alone {
        check_alone(chaos, i, &history, &mut lost, problems)?;
        row.lost = lost.len();
    }
    Ok(())
}

/// See [`Chaos::check_alone_at_end`]. The workload has stopped, so the history is complete.
fn check_alone(
    chaos: &mut Chaos,
    i: usize,
    history: &WorkloadHistory,
    lost: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Result<()> {
    let name = chaos.cluster.nodes[i].name.clone();
    for other in chaos.data_nodes().into_iter().filter(|&j| j != i) {
        chaos.cluster.kill(other)?;
    }
    let alone = wait_until(
        Duration::from_secs(30),
        "the node alone to hold the VIP",
        || (vip_holders(&chaos.cluster) == [i]).then_some(()),
    );
    if let Err(err) = alone {
        problems.push(format!("{name} alone: {err:#}"));
        return Ok(());
    }
    let node = &chaos.cluster.nodes[i];
    let listing = wait_until(
        Duration::from_secs(30),
        "a listing from the node alone",
        || final_listing(chaos.lab(), &node.name, node.ip(), &chaos.users).ok(),
    )?;
    let mail = no_acked_mail_lost::check(history, &[listing]);
    let n_lost = mail.lost.len();
    for problem in mail.problems {
        problems.push(format!("{name} alone: {problem}"));
    }
    lost.extend(mail.lost);
    chaos.note(format!(
        "{name} alone (other data node killed): {n_lost} acknowledged messages not served"
    ));
    Ok(())
}

/// Waits until the observer has seen `holder`'s MAC answer for the VIP (so the double-owner
/// check watches a VIP that really was up).
fn wait_observed(chaos: &Chaos, holder: usize) -> Result<()> {
    let mac = chaos.lab().mac(Host::Node(holder));
    let observer = chaos.observer.as_ref().expect("started");
    wait_until(
        Duration::from_secs(15),
        "the observer to see the VIP holder",
        || {
            let arp = observer.history().ok()?;
            arp.rounds
                .iter()
                .any(|r| r.macs == [mac.clone()])
                .then_some(())
        },
    )
}

/// Every data node's maildrops, read in full; a node that cannot serve them within 30 s is a
/// problem (and the checks go on with the others).
fn final_listings(chaos: &Chaos, problems: &mut Vec<String>) -> Vec<Listing> {
    let mut listings = Vec::new();
    for i in chaos.data_nodes() {
        let node = &chaos.cluster.nodes[i];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match final_listing(chaos.lab(), &node.name, node.ip(), &chaos.users) {
                Ok(listing) => {
                    listings.push(listing);
                    break;
                }
                Err(err) if Instant::now() > deadline => {
                    problems.push(format!(
                        "{} cannot serve its maildrops after the cluster healed: {err:#}",
                        node.name
                    ));
                    break;
                }
                Err(_) => sleep(Duration::from_millis(500)),
            }
        }
    }
    listings
}

fn judge(
    chaos: &mut Chaos,
    setup: &Setup,
    history: &WorkloadHistory,
    arp: &ArpHistory,
    listings: &[Listing],
    row: &mut Row,
    problems: &mut Vec<String>,
) -> BTreeSet<String> {
    let mail = no_acked_mail_lost::check(history, listings);
    row.acknowledged = mail.acknowledged;
    row.lost = mail.lost.len();
    row.duplicated = mail.duplicated.len();
    row.phantom = mail.phantom.len();
    problems.extend(mail.problems);
    if !mail.resurrected.is_empty() {
        problems.push(format!(
            "{} deleted messages came back",
            mail.resurrected.len()
        ));
    }
    problems.extend(stable_uids::check(history, listings).problems);
    problems.extend(identical_state::check_listings(listings));
    let vip = single_vip_owner::check(arp, chaos.lab());
    row.double_vip = vip.double.len();
    problems.extend(vip.problems.iter().cloned());
    // The checks above must have had something to check.
    if vip.rounds < 100 {
        problems.push(format!("the observer recorded only {} rounds", vip.rounds));
    }
    if let Some(fault_at) = chaos.fault_at {
        let after = history
            .attempts
            .iter()
            .filter(|a| a.acked() && a.start >= fault_at);
        if after.count() == 0 {
            problems.push("no message was acknowledged after the fault".into());
        }
        if let Some(old) = chaos.holder_faulted.clone() {
            match history.first_ack_after(fault_at) {
                Some(first) => row.failover_ms = Some(((first.end - fault_at) * 1000.0) as u64),
                None => problems.push("no 250 through the VIP after the fault".into()),
            }
            if let Some((t, new)) = vip.new_owner_after(fault_at, &old) {
                chaos.note(format!(
                    "ARP: {new} answers for the VIP {:.0} ms after the fault on {old}",
                    (t - fault_at) * 1000.0
                ));
            }
        }
        chaos.note(format!(
            "longest time nobody answered ARP for the VIP: {:.0} ms",
            vip.longest_gap() * 1000.0
        ));
    } else {
        problems.push("the scenario did not stamp its fault".into());
    }
    let errors = chaos.cluster.unexpected_errors(&setup.expected_errors);
    if !errors.is_empty() {
        problems.push(format!(
            "{} unexpected ERROR log lines, first: {}",
            errors.len(),
            errors[0]
        ));
    }
    let n_maybe = history
        .attempts
        .iter()
        .filter(|a| !a.acked() && !a.refused())
        .count();
    chaos.note(format!(
        "{} attempts: {} acknowledged, {} outcome unknown (cut off during DATA), {} refused; \
         reader: {} observations, {} deletions, {} POP3 errors; {} ARP rounds",
        history.attempts.len(),
        row.acknowledged,
        n_maybe,
        history.attempts.len() - row.acknowledged - n_maybe,
        history.seen.len(),
        history.deletions.len(),
        history.pop_errors.len(),
        vip.rounds
    ));
    let timeline: Vec<String> = vip
        .timeline
        .iter()
        .filter(|s| s.to - s.from >= 0.1 || s.owners.len() > 1)
        .map(|s| format!("{:.2}-{:.2} {:?}", s.from, s.to, s.owners))
        .collect();
    let owners: Vec<&Vec<String>> = vip
        .timeline
        .iter()
        .map(|s| &s.owners)
        .filter(|o| !o.is_empty())
        .collect();
    let moves = owners.windows(2).filter(|w| w[0] != w[1]).count();
    chaos.note(format!(
        "VIP timeline (ARP, {moves} moves): {}",
        timeline.join(", ")
    ));
    if problems.is_empty() {
        row.verdict = "ok".into();
    }
    mail.lost
}

/// Copies the logs and the clients' records of a failed run to
/// `<target>/debug/chaos-artifacts/<scenario>-<seed>/`.
fn save_artifacts(setup: &Setup, chaos: &Chaos) -> Result<PathBuf> {
    let dir = bin_dir()
        .join("chaos-artifacts")
        .join(format!("{}-{}", setup.label, setup.seed));
    fs::create_dir_all(&dir)?;
    for node in &chaos.cluster.nodes {
        let _ = fs::copy(node.log_path(), dir.join(format!("{}.log", node.name)));
        let _ = fs::copy(node.config_path(), dir.join(format!("{}.toml", node.name)));
    }
    // The clients' records: workload, ARP observer and any a scenario ran.
    for entry in fs::read_dir(chaos.cluster.root())?.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.ends_with(".jsonl") || text.ends_with(".stderr") {
            let _ = fs::copy(entry.path(), dir.join(&name));
        }
    }
    let mut notes = chaos.notes.clone();
    if let Some(t) = chaos.fault_at {
        notes.push(format!("fault at {t:.6} (CLOCK_MONOTONIC)"));
    }
    if let Some(t) = chaos.heal_at {
        notes.push(format!("healed at {t:.6}"));
    }
    fs::write(dir.join("notes.txt"), notes.join("\n"))?;
    Ok(dir)
}

/// Where rows are collected: `$MCLUSTER_CHAOS_TABLE`, else `<target>/debug/chaos-table.jsonl`.
pub fn table_path() -> PathBuf {
    std::env::var_os("MCLUSTER_CHAOS_TABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("chaos-table.jsonl"))
}

pub fn append_row(row: &Row) -> Result<()> {
    let path = table_path();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(row)?)?;
    Ok(())
}

pub fn read_rows() -> Result<Vec<Row>> {
    let path = table_path();
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("row {l}")))
        .collect()
}

/// The results table, one line per row.
pub fn render_table(rows: &[Row]) -> String {
    let header = [
        "scenario",
        "seed",
        "acked",
        "lost",
        "dup",
        "phantom",
        "double VIP",
        "failover ms",
        "resync s",
        "verdict",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for row in rows {
        let mut verdict = row.verdict.clone();
        if verdict.chars().count() > 70 {
            verdict = verdict.chars().take(67).collect::<String>() + "...";
        }
        cells.push(vec![
            row.scenario.clone(),
            row.seed.to_string(),
            row.acknowledged.to_string(),
            row.lost.to_string(),
            row.duplicated.to_string(),
            row.phantom.to_string(),
            row.double_vip.to_string(),
            row.failover_ms.map_or("-".into(), |ms| ms.to_string()),
            row.resync_s.map_or("-".into(), |s| format!("{s:.1}")),
            verdict,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, row) in cells.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join(" | ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("-|-"));
            out.push('\n');
        }
    }
    out
}

/// Median and maximum of a list of measurements (for the summary of several runs).
pub fn median_max(values: &[u64]) -> Option<(u64, u64)> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let max = *sorted.last()?;
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    };
    Some((median, max))
}

/// Rows grouped by scenario, for summaries.
pub fn by_scenario(rows: &[Row]) -> BTreeMap<String, Vec<&Row>> {
    let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.scenario.clone()).or_default().push(row);
    }
    groups
}
