//! Failover benchmark: kill -9 of the VIP holder under light mail load, time to the first 250
//! through the VIP. Each run is the `kill_leader_during_load` scenario on a fresh cluster in the
//! chaos lab (subnet 91), with all its checks; prints each run, then the median and maximum.
//!
//! Run (as root, after `cargo build --workspace --bins`):
//! `$CARGO_TARGET_DIR/debug/failover_bench [RUNS]` (default 5). `MCLUSTER_CHAOS_SEED` fixes the
//! first run's seed (the others follow it).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chaos_tests::scenario::{self, Setup, median_max};

fn main() -> Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().context("RUNS is a number")?,
        None => 5,
    };
    if runs == 0 {
        bail!("RUNS must be at least 1");
    }
    let first_seed = scenario::seed();
    let mut times = Vec::new();
    for run in 0..runs {
        let seed = first_seed + run as u64;
        let mut setup = Setup::new("kill_leader_during_load", 91, seed);
        setup.label = "failover_bench";
        let row = scenario::run(setup, |chaos| {
            scenario::kill_vip_holder(chaos, Duration::from_secs(4))
        });
        let ms = row
            .failover_ms
            .context("the scenario measured no failover time")?;
        println!(
            "run {}: seed {seed}: kill -9 of the VIP holder -> first 250 through the VIP: {ms} ms",
            run + 1
        );
        times.push(ms);
    }
    let (median, max) = median_max(&times).expect("at least one run");
    println!("failover over {runs} runs: median {median} ms, max {max} ms (runs: {times:?})");
    Ok(())
}
