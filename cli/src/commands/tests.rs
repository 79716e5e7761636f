//! Tests for command output and helpers that need no cluster.

use crate::api::{Account, ClusterStatus, Domain, Member, NodeStatus, Role};
use crate::commands::{
    build_report, find_member, leader_line, normalize_url, password_from_line, render_account,
    render_domains, render_members, render_status,
};

fn member(node_id: u64, name: &str, role: Role, voter: bool) -> Member {
    Member {
        node_id,
        name: name.to_owned(),
        role,
        voter,
        raft_addr: format!("127.0.0.1{node_id}:7071"),
        admin_addr: format!("127.0.0.1{node_id}:7070"),
        matched_index: Some(40 + node_id),
    }
}

fn node(member: &Member, state: &str, last: u64, applied: u64) -> NodeStatus {
    NodeStatus {
        node_id: member.node_id,
        name: member.name.clone(),
        role: member.role,
        state: state.to_owned(),
        term: 3,
        leader_id: Some(1),
        last_log_index: Some(last),
        committed_index: Some(applied),
        applied_index: Some(applied),
        snapshot_index: None,
        purged_index: None,
    }
}

fn cluster() -> ClusterStatus {
    ClusterStatus {
        cluster_name: "mcluster".to_owned(),
        leader_id: Some(1),
        term: 3,
        members: vec![
            member(1, "n1", Role::Data, true),
            member(2, "n2", Role::Data, true),
            member(3, "n3", Role::Witness, true),
        ],
    }
}

#[test]
fn status_table_shows_lag_and_unreachable_nodes() {
    let cluster = cluster();
    let views = vec![
        Some(node(&cluster.members[0], "Leader", 45, 45)),
        Some(node(&cluster.members[1], "Follower", 45, 42)),
        None,
    ];
    let report = build_report(cluster, views);
    assert_eq!(report.nodes[1].lag, Some(3));
    assert_eq!(report.nodes[2].lag, None);
    assert_eq!(
        render_status(&report),
        "cluster mcluster: leader 1 (n1), term 3\n\
         ID  NAME  ROLE     VOTER  STATE        TERM  COMMITTED  APPLIED  LAG  ADMIN\n\
         1   n1    data     yes    Leader       3     45         45       0    127.0.0.11:7070\n\
         2   n2    data     yes    Follower     3     42         42       3    127.0.0.12:7070\n\
         3   n3    witness  yes    unreachable  -     -          -        -    127.0.0.13:7070\n"
    );
}

#[test]
fn status_json_has_the_documented_shape() {
    let cluster = cluster();
    let views = vec![
        Some(node(&cluster.members[0], "Leader", 45, 45)),
        None,
        None,
    ];
    let report = build_report(cluster, views);
    let json = serde_json::to_value(&report).expect("encode");
    assert_eq!(json["cluster"]["cluster_name"], "mcluster");
    assert_eq!(json["nodes"][0]["member"]["name"], "n1");
    assert_eq!(json["nodes"][0]["node"]["state"], "Leader");
    assert_eq!(json["nodes"][0]["lag"], 0);
    assert!(json["nodes"][1]["node"].is_null());
    assert!(json["nodes"][1]["lag"].is_null());
}

#[test]
fn no_lag_without_a_reachable_leader() {
    let cluster = cluster();
    let views = vec![
        None,
        Some(node(&cluster.members[1], "Follower", 45, 42)),
        None,
    ];
    let report = build_report(cluster, views);
    assert!(report.nodes.iter().all(|node| node.lag.is_none()));
}

#[test]
fn leader_line_without_leader() {
    let status = ClusterStatus {
        leader_id: None,
        ..cluster()
    };
    assert_eq!(leader_line(&status), "cluster mcluster: no leader, term 3");
}

#[test]
fn members_table() {
    let members = [
        member(1, "n1", Role::Data, true),
        member(3, "n3", Role::Witness, false),
    ];
    assert_eq!(
        render_members(&members),
        "ID  NAME  ROLE     VOTER  MATCHED  RAFT             ADMIN\n\
         1   n1    data     yes    41       127.0.0.11:7071  127.0.0.11:7070\n\
         3   n3    witness  no     43       127.0.0.13:7071  127.0.0.13:7070\n"
    );
}

#[test]
fn finds_members_by_id_or_name() {
    let members = cluster().members;
    assert_eq!(find_member(&members, "2").expect("by id").name, "n2");
    assert_eq!(find_member(&members, "n3").expect("by name").node_id, 3);
    let err = find_member(&members, "n9").expect_err("unknown");
    assert_eq!(
        err.to_string(),
        r#"no member "n9"; members are 1 (n1), 2 (n2), 3 (n3)"#
    );
}

#[test]
fn domain_and_account_listings() {
    let domains = [Domain {
        name: "example.test".to_owned(),
        enabled: true,
        created_at: 1_763_789_947,
    }];
    assert_eq!(
        render_domains(&domains),
        "NAME          ENABLED  CREATED\nexample.test  yes      2025-11-22 05:39:07Z\n"
    );
    let account = Account {
        address: "demo@example.test".to_owned(),
        domain: "example.test".to_owned(),
        quota_mb: 1024,
        enabled: false,
        created_at: 0,
    };
    assert_eq!(
        render_account(&account),
        "address:  demo@example.test\n\
         domain:   example.test\n\
         quota:    1024 MB\n\
         enabled:  no\n\
         created:  1970-01-01 00:00:00Z\n"
    );
}

#[test]
fn password_from_standard_input_line() {
    assert_eq!(password_from_line("s3cret\n").expect("line"), "s3cret");
    assert_eq!(
        password_from_line("with space\r\n").expect("crlf"),
        "with space"
    );
    assert!(password_from_line("\n").is_err());
    assert!(password_from_line("").is_err());
}

#[test]
fn seed_urls_get_a_scheme() {
    assert_eq!(normalize_url("127.0.0.11:7070"), "http://127.0.0.11:7070");
    assert_eq!(
        normalize_url("http://127.0.0.11:7070/"),
        "http://127.0.0.11:7070"
    );
}
