//! The benchmarks (`src/bin/`): each measures mcluster against a reference server run on the
//! same machine in the same run (Postfix for accepting and relaying mail, Dovecot for reading
//! it) and prints the ratio, as ../shared/BENCHMARKS.md asks; the others measure failover,
//! resync, metadata writes and the VIP lease under a starved CPU.
//!
//! What they share is here: the driver (`driver.rs`: message generation, statistics, tables,
//! command-line and report helpers) and the private reference servers (`postfix.rs`,
//! `dovecot.rs`). The clusters, labs and clients come from `chaos-tests`.

pub mod dovecot;
pub mod driver;
pub mod postfix;
