//! The benchmarks (`src/bin/`): each measures mcluster against a reference server run on the
//! same machine in the same run (Postfix for accepting and relaying mail, Dovecot for reading
//! it) and prints the ratio, as ../shared/BENCHMARKS.md asks; the others measure failover,
//! resync, metadata writes and the VIP lease under a starved CPU.
//!
//! What they share is here: the driver (`driver.rs`: message generation, statistics, ratios,
//! tables, client sessions and report helpers), the command line (`command_line.rs`), the
//! processes they start and the stop signals (`process.rs`), the demo cluster (`demo.rs`) and
//! the private reference servers (`postfix.rs`, `dovecot.rs`). The clusters, labs and clients
//! come from `chaos-tests`.

pub mod command_line;
pub mod demo;
pub mod dovecot;
pub mod driver;
pub mod postfix;
pub mod process;
