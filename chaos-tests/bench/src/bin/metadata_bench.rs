//! Metadata benchmark: time from kill -9 of the leader to a new leader (several runs, median),
//! and replicated metadata writes per second through the leader with three voters, next to the
//! fsync floor of the same disk measured in the same run.
//!
//! Run: `cargo run -p chaos-tests --bin metadata_bench -- [RUNS] [WRITES] [CLIENTS]`
//! (defaults 7, 2000, 8). It uses loopback addresses 127.77.90.x and stops every process it
//! started.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::{Cluster, NodeTuning, wait_until};
use serde_json::json;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// kill -9 the leader, measure until another node leads and until a data node leads (a witness
/// may win the election; it hands leadership to a data node, the one that will serve mail),
/// restart the killed node, repeat.
fn failover_runs(cluster: &mut Cluster, runs: usize) -> Result<Vec<(f64, f64)>> {
    let mut times = Vec::new();
    for run in 0..runs {
        let old = cluster.wait_for_leader(Duration::from_secs(10))?;
        let i = cluster.index_of(old);
        let killed_at = Instant::now();
        cluster.kill(i)?;
        let new = wait_until(Duration::from_secs(10), "a new leader", || {
            cluster.current_leader().filter(|&l| l != old)
        })?;
        let ms = killed_at.elapsed().as_secs_f64() * 1000.0;
        let is_data = |id: u64| cluster.nodes[cluster.index_of(id)].role == "data";
        let data_leader = wait_until(Duration::from_secs(10), "a data node to lead", || {
            cluster.current_leader().filter(|&l| l != old && is_data(l))
        })?;
        let data_ms = killed_at.elapsed().as_secs_f64() * 1000.0;
        println!(
            "run {run}: killed leader {old}; node {new} leads after {ms:.0} ms, data node \
             {data_leader} after {data_ms:.0} ms (load {})",
            loadavg()
        );
        times.push((ms, data_ms));
        cluster.start_node(i)?;
        cluster.wait_ready(i, Duration::from_secs(30))?;
        // Let the restarted node settle as a follower before the next kill.
        thread::sleep(Duration::from_millis(500));
    }
    Ok(times)
}

/// `writes` domain creations from `clients` threads, all sent to the leader.
fn write_rate(cluster: &Cluster, round: usize, writes: usize, clients: usize) -> Result<f64> {
    let leader = cluster.wait_for_leader(Duration::from_secs(10))?;
    let url = cluster.nodes[cluster.index_of(leader)].admin_url();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (api, url, next, failures) = (
                cluster.api.clone(),
                url.clone(),
                next.clone(),
                failures.clone(),
            );
            thread::spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= writes {
                        break;
                    }
                    let body = json!({ "name": format!("d{k}.r{round}.bench.test") });
                    match api.send_to(&url, "POST", "/v1/domains", Some(body)) {
                        Ok(answer) if answer.status == 201 => {}
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {writes} writes failed");
    }
    Ok(writes as f64 / elapsed)
}

/// Sequential small appends, each followed by fdatasync, in the cluster's own directory.
fn fsync_floor(dir: &std::path::Path, n: usize) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .context("open probe file")?;
    let record = [0u8; 256];
    let started = Instant::now();
    for _ in 0..n {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(rate)
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let runs = args.first().copied().unwrap_or(7);
    let writes = args.get(1).copied().unwrap_or(2000);
    let clients = args.get(2).copied().unwrap_or(8);

    let mut cluster = Cluster::start(90, 2, true, NodeTuning::default())?;
    println!(
        "cluster: 2 data nodes + 1 witness, 3 voters, loopback; load {}",
        loadavg()
    );

    let mut rounds = Vec::new();
    for round in 0..3 {
        let floor = fsync_floor(cluster.root(), 500)?;
        let rate = write_rate(&cluster, round, writes / 3, clients)?;
        println!(
            "round {round}: {rate:.0} writes/s through the leader ({clients} clients); fsync floor {floor:.0}/s; \
             ratio {:.2}; load {}",
            rate / floor,
            loadavg()
        );
        rounds.push((rate, floor));
    }

    let times = failover_runs(&mut cluster, runs)?;
    for (what, mut values) in [
        (
            "a new leader",
            times.iter().map(|t| t.0).collect::<Vec<_>>(),
        ),
        (
            "a data node leads",
            times.iter().map(|t| t.1).collect::<Vec<_>>(),
        ),
    ] {
        let min = values.iter().cloned().fold(f64::MAX, f64::min);
        let max = values.iter().cloned().fold(0.0, f64::max);
        println!(
            "kill -9 leader -> {what}: median {:.0} ms over {runs} runs (min {min:.0}, max {max:.0})",
            median(&mut values)
        );
    }
    let mut rates: Vec<f64> = rounds.iter().map(|(r, _)| *r).collect();
    let mut ratios: Vec<f64> = rounds.iter().map(|(r, f)| r / f).collect();
    println!(
        "metadata writes: median {:.0}/s, median ratio to the fsync floor {:.2}",
        median(&mut rates),
        median(&mut ratios)
    );
    Ok(())
}
