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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::bench::{SmtpClient, loadavg};
use chaos_tests::cluster::{Cluster, LabOptions, MailPorts, NodeTuning};
use chaos_tests::lab::Host;
use chaos_tests::mail::{DOMAIN, add_users};
use chaos_tests::scenario::wait_vip_holder;

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
    let stop = AtomicBool::new(false);
    let (sent, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let to = format!("lease@{DOMAIN}");
            let every = Duration::from_secs_f64(1.0 / f64::from(options.rate.max(1)));
            let mut client: Option<SmtpClient> = None;
            let mut next = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if client.is_none() {
                    client = lab
                        .in_host(Host::Client, || {
                            SmtpClient::connect(
                                vip,
                                Duration::from_secs(5),
                                Duration::from_secs(30),
                            )
                        })
                        .ok()
                        .and_then(Result::ok)
                        .and_then(|mut c| c.ehlo("lease.test").ok().map(|_| c));
                }
                if let Some(c) = &mut client {
                    let message = format!("Subject: lease {i}\r\n\r\nbody {i}\r\n");
                    match c.send("bench@remote.test", &to, message.as_bytes()) {
                        Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            client = None;
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
                next += every;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                } else {
                    next = Instant::now();
                }
            }
        });
        while started.elapsed() < duration {
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
    });
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
        sent.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}
