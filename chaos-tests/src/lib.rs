//! chaos-tests builds real clusters of `mclusterd` processes, breaks them, and checks what
//! clients saw. Nothing in production depends on it.
//!
//! Scenarios live in `tests/it/`; this library holds the pieces they share: the cluster of
//! processes (`cluster.rs`), a blocking admin API client (`api.rs`), mail clients (`mail.rs`),
//! and a private Postfix for benchmarks (`postfix.rs`). Scenario traffic goes only to the
//! loopback addresses the harness gives its own nodes (127.77.x.y); the benchmarks use the demo's
//! addresses (127.0.0.11-13) and Postfix on 127.0.0.1.

pub mod api;
pub mod cluster;
pub mod mail;
pub mod postfix;

pub use crate::api::{Answer, Api};
pub use crate::cluster::{Cluster, Node, NodeTuning, binary, wait_until};
