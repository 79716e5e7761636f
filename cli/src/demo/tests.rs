//! Tests for the demo's fixed layout.

use std::ffi::OsString;
use std::path::PathBuf;

use std::sync::atomic::Ordering;

use nix::sys::signal::{Signal, raise};

use crate::api::Role;
use crate::demo::{DEMO_NODES, catch_stop_signals, default_dir};

#[test]
fn default_directory() {
    let runtime =
        |name: &str| (name == "XDG_RUNTIME_DIR").then(|| OsString::from("/run/user/1000"));
    assert_eq!(
        default_dir(runtime),
        PathBuf::from("/run/user/1000/mcluster-demo")
    );
    assert_eq!(default_dir(|_| None), PathBuf::from("/tmp/mcluster-demo"));
    let relative = |_: &str| Some(OsString::from("relative"));
    assert_eq!(default_dir(relative), PathBuf::from("/tmp/mcluster-demo"));
}

#[test]
fn two_data_nodes_and_a_witness_on_their_own_addresses() {
    let layout: Vec<(&str, Role, String, String)> = DEMO_NODES
        .iter()
        .map(|node| (node.name, node.role, node.admin_addr(), node.raft_addr()))
        .collect();
    assert_eq!(
        layout,
        [
            (
                "n1",
                Role::Data,
                "127.0.0.11:7070".to_owned(),
                "127.0.0.11:7071".to_owned()
            ),
            (
                "n2",
                Role::Data,
                "127.0.0.12:7070".to_owned(),
                "127.0.0.12:7071".to_owned()
            ),
            (
                "n3",
                Role::Witness,
                "127.0.0.13:7070".to_owned(),
                "127.0.0.13:7071".to_owned()
            ),
        ]
    );
}

#[test]
fn stop_signals_set_the_flag_instead_of_ending_the_process() {
    let stop = catch_stop_signals().expect("install handlers");
    raise(Signal::SIGHUP).expect("raise SIGHUP");
    assert!(stop.load(Ordering::SeqCst));
}
