//! chaos-tests builds real clusters of `mclusterd` processes, breaks them, and checks what
//! clients saw. Nothing in production depends on it.
//!
//! Scenarios live in `tests/it/`; this library holds the pieces they share: the cluster of
//! processes (`cluster.rs`) and a blocking admin API client (`api.rs`). Traffic goes only to the
//! loopback addresses the harness gives its own nodes (127.77.x.y).

pub mod api;
pub mod cluster;
pub mod mail;
pub mod postfix;

pub use crate::api::{Answer, Api};
pub use crate::cluster::{Cluster, Node, NodeTuning, binary, wait_until};
