//! Prints the chaos results table collected by the scenarios (`<target>/debug/chaos-table.jsonl`
//! or `$MCLUSTER_CHAOS_TABLE`), with the failover median and maximum per scenario.
//! `chaos_table --reset` empties it (before a suite run).

use anyhow::Result;
use chaos_tests::scenario::{by_scenario, median_max, read_rows, render_table, table_path};

fn main() -> Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--reset") {
        let path = table_path();
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        return Ok(());
    }
    let rows = read_rows()?;
    print!("{}", render_table(&rows));
    for (scenario, rows) in by_scenario(&rows) {
        let times: Vec<u64> = rows.iter().filter_map(|r| r.failover_ms).collect();
        if let Some((median, max)) = median_max(&times) {
            println!(
                "{scenario}: failover median {median} ms, max {max} ms over {} runs",
                times.len()
            );
        }
    }
    let failed = rows
        .iter()
        .filter(|r| r.verdict.starts_with("FAIL"))
        .count();
    let skipped = rows
        .iter()
        .filter(|r| r.verdict.starts_with("skipped"))
        .count();
    println!(
        "{} runs: {} ok, {failed} failed, {skipped} skipped",
        rows.len(),
        rows.len() - failed - skipped
    );
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
