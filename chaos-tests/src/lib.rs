//! chaos-tests builds real clusters of `mclusterd` processes, breaks them, and checks what
//! clients saw. Nothing in production depends on it.
//!
//! Scenarios live in `tests/it/`; this library holds the pieces they share: the cluster of
//! processes (`cluster.rs`), the lab of network namespaces a cluster can run in (`lab.rs`), the
//! faults (`faults.rs`), a blocking admin API client (`api.rs`), mail clients (`mail.rs`), the
//! chaos workload and ARP observer (`workload.rs`, `observer.rs`) and what they recorded
//! (`history.rs`), one checker per guarantee (`checks/`), the scenario runner and results table
//! (`scenario.rs`), a blocking SMTP client (`smtp_client.rs`), and the DNS stub and SMTP sinks
//! outbound delivery is tested against (`outbound_lab.rs`). The benchmarks are their own crate,
//! `bench/`.
//!
//! Test traffic goes only to addresses the harness made: loopback addresses it gives its own
//! nodes (127.77.x.y; the benchmarks use the demo's 127.0.0.11-13 and Postfix on 127.0.0.1) or
//! addresses inside the lab's own network namespaces (10.77.x.y). It kills only processes it
//! started, by PID, and removes every namespace and mount it made.

pub mod api;
pub mod checks;
pub mod cluster;
pub mod faults;
pub mod filter_lab;
pub mod history;
pub mod lab;
pub mod load;
pub mod mail;
pub mod observer;
pub mod outbound_lab;
pub mod scenario;
pub mod smtp_client;
pub mod workload;

pub use crate::api::{Answer, Api};
pub use crate::cluster::{Cluster, LabOptions, Node, NodeTuning, binary, wait_until};
