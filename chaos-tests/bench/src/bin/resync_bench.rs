//! Resync benchmark: a data node comes back after `--messages` messages of `--size` bytes
//! arrived while it was down (each accepted with one copy on the other data node); how fast it
//! pulls them back, in blobs per second from its process start to its last confirmation, and
//! from its first confirmed batch to its last. The ratio is against the reference figure for
//! Dovecot dsync of 5,115 messages to a new replica on this kind of machine (BENCHMARKS.md,
//! 163 msg/s; dsync is not installed on a CI machine, so it is not rerun here) and the target
//! of 50x that (8,000 blobs/s).
//!
//! With `--replace` it measures a replaced node instead: the messages are mirrored, n2 leaves
//! (`--force`) and a fresh data node joins; from the join to full redundancy.
//!
//! Run (after `cargo build --release --workspace --bins`; a debug build says little):
//! `$CARGO_TARGET_DIR/release/resync_bench [--messages N] [--size BYTES] [--sessions S]
//! [--replace]` (defaults 10,000, 10,240, 8). The cluster is two data nodes and a witness on 127.77.106.x,
//! stopped by PID at the end.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::mail::{DOMAIN, add_users};
use chaos_tests::{Cluster, NodeTuning, wait_until};
use mcluster_bench::driver::{SmtpClient, loadavg, wire_message};

/// Dovecot dsync to a new replica, BENCHMARKS.md's reference table.
const DSYNC_MSG_PER_S: f64 = 163.0;

struct Options {
    messages: usize,
    size: usize,
    sessions: usize,
    /// Measure a replacement instead: the messages are mirrored, n2 leaves (`--force`) and a
    /// fresh data node joins; the time from its join to full redundancy.
    replace: bool,
}

fn options() -> Result<Options> {
    let mut options = Options {
        messages: 10_000,
        size: 10_240,
        sessions: 8,
        replace: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--replace" {
            options.replace = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number: usize = value
            .parse()
            .with_context(|| format!("{flag} takes a number, not {value:?}"))?;
        match flag.as_str() {
            "--messages" => options.messages = number,
            "--size" => options.size = number,
            "--sessions" => options.sessions = number.max(1),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(options)
}

fn main() -> Result<()> {
    let options = options()?;
    let mut cluster = Cluster::start(106, 2, true, NodeTuning::default())?;
    add_users(&cluster, &["resync"])?;
    let sender = if options.replace {
        0
    } else {
        cluster.kill(0)?;
        cluster.wait_for_leader(Duration::from_secs(10))?;
        1
    };

    let addr: SocketAddr = cluster.nodes[sender].smtp_addr().parse()?;
    let to = format!("resync@{DOMAIN}");
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..options.sessions)
            .map(|s| {
                let to = &to;
                let options = &options;
                scope.spawn(move || -> Result<()> {
                    let mut rng = rand::rng();
                    let mut client =
                        SmtpClient::connect(addr, Duration::from_secs(5), Duration::from_secs(30))?;
                    client.ehlo("bench.test")?;
                    for i in (s..options.messages).step_by(options.sessions) {
                        let id = format!("<resync-{i}@bench.test>");
                        let message = wire_message(
                            &[("Message-ID", &id), ("Subject", "resync")],
                            options.size,
                            &mut rng,
                        );
                        client.send("bench@remote.test", to, &message)?;
                    }
                    client.quit();
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a sender thread panicked")?;
        }
        Ok(())
    })?;
    println!(
        "{} messages of {} bytes accepted ({}) in {:.1} s",
        options.messages,
        options.size,
        if options.replace {
            "mirrored"
        } else {
            "with one copy"
        },
        started.elapsed().as_secs_f64()
    );
    if options.replace {
        return replace(cluster, &options);
    }

    let url = cluster.nodes[0].admin_url();
    let missing = |cluster: &Cluster| -> Option<u64> {
        let node = cluster
            .api
            .get_from(&url, "/v1/node", Duration::from_secs(10))
            .ok()?;
        node["mail"]["blobs_missing"].as_u64()
    };
    let load_before = loadavg();
    let start = Instant::now();
    cluster.start_node(0)?;
    // The restarted node first applies the deliveries (what it misses grows to all of them),
    // then pulls them (it shrinks to nothing).
    let all = options.messages as u64;
    let mut caught_up_at = None;
    let limit = Duration::from_secs(600);
    loop {
        let now = missing(&cluster);
        if caught_up_at.is_none() && now == Some(all) {
            caught_up_at = Some(start.elapsed());
        }
        if caught_up_at.is_some() && now == Some(0) {
            break;
        }
        if start.elapsed() > limit {
            bail!("the node still misses {now:?} blobs after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let total = start.elapsed();
    let fetched = wait_until(Duration::from_secs(10), "n1's counters", || {
        let node = cluster
            .api
            .get_from(&url, "/v1/node", Duration::from_secs(10))
            .ok()?;
        node["mail"]["resync_fetched"].as_u64()
    })?;
    if fetched != options.messages as u64 {
        bail!("n1 fetched {fetched} blobs, expected {}", options.messages);
    }
    let rate = options.messages as f64 / total.as_secs_f64();
    println!(
        "resync of {} blobs: {:.2} s from the process start, {rate:.0} blobs/s, {:.1}x dsync's \
         {DSYNC_MSG_PER_S} msg/s (target 50x, 8,000/s); load before: {load_before}",
        options.messages,
        total.as_secs_f64(),
        rate / DSYNC_MSG_PER_S,
    );
    if let Some(at) = caught_up_at {
        let pulling = total.saturating_sub(at).as_secs_f64();
        let steady = options.messages as f64 / pulling;
        println!(
            "caught up with the log at {:.2} s; pulled every blob in the {pulling:.2} s after: \
             {steady:.0} blobs/s, {:.1}x dsync",
            at.as_secs_f64(),
            steady / DSYNC_MSG_PER_S,
        );
    }
    Ok(())
}

/// n2 leaves with `--force` (its copies then have one live copy, on n1) and a fresh data node
/// joins: the time from the join to full redundancy, and the rate.
fn replace(mut cluster: Cluster, options: &Options) -> Result<()> {
    let n1 = cluster.nodes[0].name.clone();
    wait_until(Duration::from_secs(20), "n1 leads", || {
        cluster.ctl_ok(&["failover", "--to", &n1]).ok()
    })?;
    cluster.ctl_ok(&["leave", "n2", "--force"])?;
    wait_until(Duration::from_secs(20), "n2 stops", || {
        cluster.exited(1).ok().flatten()
    })?;
    let load_before = loadavg();
    let start = Instant::now();
    let fresh = cluster.add_node("data")?;
    wait_until(Duration::from_secs(600), "full redundancy", || {
        let status = cluster.api.get("/v1/status").ok()?;
        (status["redundant"] == true).then_some(())
    })?;
    let took = start.elapsed();
    let url = cluster.nodes[fresh].admin_url();
    let node = cluster
        .api
        .get_from(&url, "/v1/node", Duration::from_secs(10))?;
    let fetched = node["mail"]["resync_fetched"].as_u64().unwrap_or(0);
    if fetched != options.messages as u64 {
        bail!(
            "the replacement fetched {fetched} blobs, expected {}",
            options.messages
        );
    }
    let rate = options.messages as f64 / took.as_secs_f64();
    println!(
        "replacement: {} messages re-mirrored to a fresh data node {:.2} s after its join \
         started (join, start, catch-up and pull), {rate:.0} blobs/s, {:.1}x dsync's \
         {DSYNC_MSG_PER_S} msg/s; load before: {load_before}",
        options.messages,
        took.as_secs_f64(),
        rate / DSYNC_MSG_PER_S,
    );
    Ok(())
}
