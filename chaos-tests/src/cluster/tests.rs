//! Tests for the flags a test cluster gives `mclusterctl init` and `join`.

use std::path::PathBuf;

use crate::api::Api;
use crate::cluster::{Cluster, Hosts, NodeTuning};

/// A loopback cluster on 127.77.`subnet`.0.x that has started nothing.
fn unstarted(subnet: u8) -> Cluster {
    Cluster {
        hosts: Hosts::Loopback { subnet },
        root: tempfile::tempdir().expect("create temp dir"),
        client_config: PathBuf::from("client.toml"),
        nodes: Vec::new(),
        api: Api::new(Vec::new(), String::new()),
        tuning: NodeTuning::default(),
    }
}

#[track_caller]
fn check_node_args(i: usize, role: &'static str, expected: &[&str]) {
    let cluster = unstarted(9);
    let node = cluster.new_node(i, 0, role);
    assert_eq!(cluster.node_args(&node), expected);
}

/// With a VIP the node refuses a listener on all addresses, and one left out takes its
/// wildcard default: so every listener is given, on the node's own address.
#[test]
fn data_nodes_get_every_mail_listener_on_their_own_address() {
    check_node_args(
        1,
        "data",
        &[
            "--mail-hostname",
            "n2.test",
            "--smtp-addr",
            "127.77.9.2:2525",
            "--submission-addr",
            "127.77.9.2:2587",
            "--smtps-addr",
            "127.77.9.2:2465",
            "--pop3-addr",
            "127.77.9.2:2110",
            "--pop3s-addr",
            "127.77.9.2:2995",
            "--imap-addr",
            "127.77.9.2:2143",
            "--imaps-addr",
            "127.77.9.2:2993",
        ],
    );
    check_node_args(2, "witness", &[]);
}
