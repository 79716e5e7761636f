//! mclusterctl as a library: builds, joins and administers an mcluster through the admin API.
//!
//! Boundaries:
//! - cli reaches nodes only through their HTTP admin API (docs/ADMIN_API.md); of the workspace
//!   it links only mcluster-types (the API's shapes, serde only), never RocksDB or openraft.
//! - cli never serves anything: it writes node directories, starts and stops mclusterd
//!   processes, and sends admin requests.
//!
//! `main.rs` only parses flags and calls [`commands`] (or [`demo`]), so tests and the chaos
//! suite can drive the same code without a shell.

pub mod access;
pub mod api;
pub mod calendar;
pub mod client_config;
pub mod commands;
pub mod demo;
pub mod files;
pub mod node_config;
pub mod node_dir;
pub mod outbound_policy;
pub mod pki;
pub mod process;
pub mod protection;
pub mod secrets;
pub mod table;
pub mod upgrade;
pub mod vip;

#[cfg(test)]
mod test_server;
