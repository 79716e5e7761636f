//! Lease stability under CPU starvation: the VIP holder (the leader) of a lab cluster (two data
//! nodes and a witness in network namespaces, subnet 84) gets at most `--cpu` percent of one
//! CPU (its own cgroup) for `--minutes`, while a client sends `--rate` messages a second through
//! the VIP. Counts what clients feel: lease expiries (the holder lets the VIP go because no
//! quorum acknowledged it in time, though both data nodes are up), VIP takeovers and elections,
//! and prints them per hour.
//!
//! Run as root (after `cargo build --workspace --bins`; the figures in the issue notes are from
//! debug builds, the configuration users run in CI):
//! `$CARGO_TARGET_DIR/debug/lease_bench [--minutes M] [--cpu PERCENT] [--rate N]
//! [--raft-heartbeat-ms MS]` (defaults 2, 20, 10, and the nodes' default heartbeat interval).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::cluster::{Cluster, LabOptions, MailPorts, NodeTuning};
use chaos_tests::lab::Host;
use chaos_tests::load::{Load, LoadSpec};
use chaos_tests::mail::{DOMAIN, add_users};
use chaos_tests::scenario::wait_vip_holder;
use mcluster_bench::driver::loadavg;

struct Options {
    minutes: f64,
    cpu: u32,
    rate: u32,
    /// `[raft] heartbeat-interval-ms` for every node (None: the default).
    heartbeat_ms: Option<u64>,
}

fn options() -> Result<Options> {
    let mut options = Options {
        minutes: 2.0,
        cpu: 20,
        rate: 10,
        heartbeat_ms: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => options.minutes = value.parse().context("--minutes")?,
            "--cpu" => options.cpu = value.parse().context("--cpu")?,
            "--rate" => options.rate = value.parse().context("--rate")?,
            "--raft-heartbeat-ms" => {
                options.heartbeat_ms = Some(value.parse().context("--raft-heartbeat-ms")?)
            }
            other => bail!("unknown option {other}"),
        }
    }
    if !(options.minutes > 0.0 && options.minutes <= 60.0) {
        bail!("--minutes must be between 0 and 60");
    }
    Ok(options)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

fn main() -> Result<()> {
    let options = options()?;
    let tuning = NodeTuning {
        extra_toml: options
            .heartbeat_ms
            .map(|ms| format!("\n[raft]\nheartbeat-interval-ms = {ms}\n"))
            .unwrap_or_default(),
        ..NodeTuning::default()
    };
    let cluster = Cluster::start_in_lab(
        84,
        2,
        true,
        tuning,
        LabOptions {
            vip: true,
            ..LabOptions::default()
        },
    )?;
    add_users(&cluster, &["lease"])?;
    let holder = wait_vip_holder(&cluster, None)?;
    let lab = cluster.expect_lab();
    let vip = std::net::SocketAddr::new(lab.vip().into(), MailPorts::STANDARD.smtp);
    let logs_before: Vec<usize> = cluster.nodes.iter().map(|n| n.log().len()).collect();
    let term =
        |cluster: &Cluster| -> Option<u64> { cluster.node_status(1 - holder)?["term"].as_u64() };
    let term_before = term(&cluster).context("the other data node's term")?;

    let limit = cluster.limit_cpu(holder, options.cpu)?;
    let started = Instant::now();
    let duration = Duration::from_secs_f64(options.minutes * 60.0);
    let load = Load::start(LoadSpec {
        netns: Some(lab.ns_path(Host::Client)),
        addr: vip,
        to: format!("lease@{DOMAIN}"),
        subject: "lease".into(),
        per_second: options.rate,
        max_messages: usize::MAX,
        max_duration: duration,
    });
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(200));
    }
    let report = load.stop();
    let throttled = limit.throttled_ms();
    drop(limit);

    let mut expiries = 0;
    let mut takeovers = 0;
    let elections = term(&cluster)
        .context("the other data node's term")?
        .saturating_sub(term_before);
    for (node, before) in cluster.nodes.iter().zip(logs_before) {
        let log = node.log();
        let window = log.get(before..).unwrap_or_default();
        let saved = std::env::temp_dir().join(format!("lease_bench-{}.log", node.name));
        if std::fs::write(&saved, window).is_ok() {
            println!("{}'s log of the run: {}", node.name, saved.display());
        }
        expiries += count(window, "the leader lease expired");
        takeovers += count(window, "took the virtual IP");
    }
    let hours = started.elapsed().as_secs_f64() / 3600.0;
    println!(
        "leader {} at {}% of one CPU for {:.1} min (throttled {} ms in all), {} msg/s offered; \
         load {}",
        cluster.nodes[holder].name,
        options.cpu,
        options.minutes,
        throttled.map_or_else(|| "?".to_owned(), |ms| ms.to_string()),
        options.rate,
        loadavg()
    );
    println!(
        "lease expiries: {expiries} ({:.0}/hour); VIP takeovers: {takeovers}; elections \
         (terms): {elections}; messages accepted {}, failed {}",
        expiries as f64 / hours,
        report.acked.len(),
        report.failed
    );
    Ok(())
}
