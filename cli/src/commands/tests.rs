//! Tests for command output and helpers that need no cluster.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::json;

use crate::api::Client;
use crate::api::{
    Account, ClusterStatus, Domain, MailPolicy, MailStatus, Member, NodeStatus, QueueAction,
    QueueEntry, QueueListing, QueueRecipient, Role, VipStatus,
};
use crate::api::{DkimAlgorithm, DkimKey};
use crate::client_config::ClientConfig;
use crate::commands::{
    Context, FailoverOutcome, StatusReport, VipMove, VipReport, build_report, fail_over,
    failover_lines, find_member, leader_line, normalize_url, parse_policy_settings,
    password_from_line, policy_set, policy_show, policy_value, queue_act, queue_act_line,
    queue_delete, queue_list, queue_show, queue_state, redundancy_line, render_account,
    render_domains, render_mail_policy, render_members, render_queue, render_queue_entry,
    render_status, tls_set, tls_show, vip_lines, vip_note,
};
use crate::node_config::VipSection;
use crate::test_server::{Reply, TestServer, refused_url};

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
        mail: (member.role == Role::Data).then(|| mail(0, false)),
        vip: None,
    }
}

fn vip(addresses: &[&str], held: bool) -> VipStatus {
    VipStatus {
        addresses: addresses.iter().map(|text| (*text).to_owned()).collect(),
        interface: "eth0".to_owned(),
        held,
        acquisitions: u64::from(held),
        last_failover_ms: held.then_some(812),
        last_change_unix_ms: Some(1_795_336_375_287),
        problem: None,
    }
}

const VIP: &str = "192.0.2.10/24";

/// Leader n1, follower n2, witness n3, each data node with `vips[i]` (the witness has none);
/// `None` in `reachable` marks a node that did not answer.
fn vip_report_of(vips: [Option<VipStatus>; 2], reachable: [bool; 3]) -> StatusReport {
    let cluster = cluster();
    let [n1_vip, n2_vip] = vips;
    let views = vec![
        Some(NodeStatus {
            vip: n1_vip,
            ..node(&cluster.members[0], "Leader", 45, 45)
        }),
        Some(NodeStatus {
            vip: n2_vip,
            ..node(&cluster.members[1], "Follower", 45, 45)
        }),
        Some(node(&cluster.members[2], "Follower", 45, 45)),
    ];
    let views = views
        .into_iter()
        .zip(reachable)
        .map(|(view, reachable)| view.filter(|_| reachable))
        .collect();
    build_report(cluster, views)
}

#[track_caller]
fn check_vip_lines(report: &StatusReport, expected: &[&str]) {
    assert_eq!(vip_lines(report), expected);
}

fn mail(resync_fetched: u64, degraded: bool) -> MailStatus {
    MailStatus {
        degraded,
        blobs_missing: 0,
        blobs_stored: 10,
        blobs_mirrored: 10,
        degraded_accepts: 0,
        mirror_failures: 0,
        resync_fetched,
        resync_failures: 0,
        gc_removed: 0,
        messages_accepted: 10,
        smtp_sessions: 4,
        pop3_sessions: 2,
        imap_sessions: 3,
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
        blobs_missing: [(1, 0), (2, 0)].into(),
        blobs_assigned: [(1, 10), (2, 10)].into(),
        unreachable: Vec::new(),
        blobs_misplaced: 0,
        redundant: Some(true),
    }
}

/// n2 came back after missing some mail: it lacks 5 blobs and has fetched 7 so far, and n1
/// took mail it could not mirror.
fn resyncing_cluster() -> ClusterStatus {
    ClusterStatus {
        blobs_missing: [(1, 0), (2, 5)].into(),
        redundant: Some(false),
        ..cluster()
    }
}

#[track_caller]
fn check_redundancy(cluster: ClusterStatus, expected: &str) {
    let report = build_report(cluster, vec![None, None, None]);
    assert_eq!(redundancy_line(&report), expected);
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
         3   n3    witness  yes    unreachable  -     -          -        -    127.0.0.13:7070\n\
         \n\
         redundancy: full\n\
         ID  NAME  REACHABLE  MUST HOLD  HOLDS  MISSING  COPIED  RESYNCED  DEGRADED\n\
         1   n1    yes        10         10     0        100%    0         no\n\
         2   n2    yes        10         10     0        100%    0         no\n"
    );
}

#[test]
fn status_table_shows_resync_progress() {
    let cluster = resyncing_cluster();
    let mut leader = node(&cluster.members[0], "Leader", 45, 45);
    leader.mail = Some(mail(0, true));
    let mut follower = node(&cluster.members[1], "Follower", 45, 45);
    follower.mail = Some(mail(7, false));
    let report = build_report(cluster, vec![Some(leader), Some(follower), None]);
    let text = render_status(&report);
    let blobs = text.split_once("\n\n").expect("two parts").1;
    assert_eq!(
        blobs,
        "redundancy: DEGRADED (5 blobs missing on n2)\n\
         ID  NAME  REACHABLE  MUST HOLD  HOLDS  MISSING  COPIED  RESYNCED  DEGRADED\n\
         1   n1    yes        10         10     0        100%    0         yes\n\
         2   n2    yes        10         5      5        50%     7         no\n"
    );
}

#[test]
fn status_of_unreachable_data_nodes_still_shows_missing_blobs() {
    let report = build_report(resyncing_cluster(), vec![None, None, None]);
    let text = render_status(&report);
    assert!(
        text.ends_with(
            "ID  NAME  REACHABLE  MUST HOLD  HOLDS  MISSING  COPIED  RESYNCED  DEGRADED\n\
             1   n1    no answer  10         10     0        100%    -         -\n\
             2   n2    no answer  10         5      5        50%     -         -\n"
        ),
        "{text}"
    );
}

#[test]
fn redundancy_line_says_why_not() {
    check_redundancy(cluster(), "redundancy: full");
    check_redundancy(
        resyncing_cluster(),
        "redundancy: DEGRADED (5 blobs missing on n2)",
    );
    check_redundancy(
        ClusterStatus {
            blobs_missing: [(1, 1), (2, 2)].into(),
            ..resyncing_cluster()
        },
        "redundancy: DEGRADED (3 blobs missing on n1, n2)",
    );
    let mut one_data_voter = ClusterStatus {
        blobs_missing: [(1, 1), (2, 0)].into(),
        ..resyncing_cluster()
    };
    one_data_voter.members[1].voter = false;
    check_redundancy(
        one_data_voter,
        "redundancy: DEGRADED (1 blob missing on n1; 1 data voter, 2 needed)",
    );
    // A data node that stopped answering, with no mail arriving since.
    check_redundancy(
        ClusterStatus {
            unreachable: vec![2, 3],
            redundant: Some(false),
            ..cluster()
        },
        "redundancy: DEGRADED (n2 not reachable)",
    );
    let report = build_report(
        ClusterStatus {
            unreachable: vec![2, 3],
            redundant: Some(false),
            ..cluster()
        },
        vec![None, None, None],
    );
    assert!(
        render_status(&report)
            .ends_with("2   n2    no         10         10     0        100%    -         -\n"),
        "{}",
        render_status(&report)
    );
    check_redundancy(
        ClusterStatus {
            redundant: None,
            ..cluster()
        },
        "redundancy: unknown (the cluster does not report it)",
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
    assert_eq!(json["cluster"]["redundant"], true);
    assert_eq!(json["cluster"]["blobs_missing"], json!({"1": 0, "2": 0}));
    assert_eq!(json["nodes"][0]["node"]["mail"]["resync_fetched"], 0);
    assert_eq!(json["nodes"][0]["node"]["mail"]["degraded"], false);
    assert_eq!(json["nodes"][1]["blobs_missing"], 0);
    assert!(json["nodes"][2]["blobs_missing"].is_null());
    assert_eq!(json["cluster"]["blobs_assigned"], json!({"1": 10, "2": 10}));
    assert_eq!(json["nodes"][1]["blobs_assigned"], 10);
    assert!(json["nodes"][2]["blobs_assigned"].is_null());
}

#[test]
fn status_shows_the_vip_and_its_holder() {
    let report = vip_report_of(
        [Some(vip(&[VIP], true)), Some(vip(&[VIP], false))],
        [true; 3],
    );
    assert_eq!(
        report.vip,
        Some(VipReport {
            addresses: vec![VIP.to_owned()],
            interface: "eth0".to_owned(),
            held_by: vec![1],
            unreachable: vec![],
            consistent: true,
        })
    );
    assert_eq!(
        render_status(&report)
            .lines()
            .take(3)
            .collect::<Vec<&str>>(),
        [
            "cluster mcluster: leader 1 (n1), term 3",
            "vip: 192.0.2.10/24 on eth0, held by n1",
            "ID  NAME  ROLE     VOTER  STATE     TERM  COMMITTED  APPLIED  LAG  ADMIN",
        ]
    );
    let two = vip_report_of(
        [
            Some(vip(&["192.0.2.10/24", "2001:db8::10/64"], true)),
            Some(vip(&["2001:DB8::10/64", "192.0.2.10/24"], false)),
        ],
        [true; 3],
    );
    check_vip_lines(
        &two,
        &["vip: 192.0.2.10/24, 2001:db8::10/64 on eth0, held by n1"],
    );
}

#[test]
fn status_names_a_node_that_cannot_hold_the_vip() {
    let broken = VipStatus {
        problem: Some("cannot use interface ens18: no such interface".to_owned()),
        ..vip(&[VIP], false)
    };
    let report = vip_report_of([Some(vip(&[VIP], true)), Some(broken)], [true; 3]);
    check_vip_lines(
        &report,
        &[
            "vip: 192.0.2.10/24 on eth0, held by n1",
            "vip: n2 CANNOT HOLD IT (cannot use interface ens18: no such interface); it hands \
             leadership to another data node",
        ],
    );
}

#[test]
fn status_says_when_no_node_holds_the_vip() {
    let report = vip_report_of(
        [Some(vip(&[VIP], false)), Some(vip(&[VIP], false))],
        [true; 3],
    );
    check_vip_lines(&report, &["vip: 192.0.2.10/24, NOT HELD"]);
    // A node that does not answer might hold it.
    let report = vip_report_of([Some(vip(&[VIP], false)), None], [true, false, true]);
    assert_eq!(
        report.vip.as_ref().map(|vip| vip.unreachable.clone()),
        Some(vec![2])
    );
    check_vip_lines(
        &report,
        &["vip: 192.0.2.10/24, NOT HELD by any node that answered (n2 did not answer)"],
    );
    let mut witness_leads = vip_report_of(
        [Some(vip(&[VIP], false)), Some(vip(&[VIP], false))],
        [true; 3],
    );
    witness_leads.cluster.leader_id = Some(3);
    check_vip_lines(
        &witness_leads,
        &["vip: 192.0.2.10/24, NOT HELD; the leader n3 is a witness, which never holds it"],
    );
}

#[test]
fn status_warns_loudly_when_two_nodes_hold_the_vip() {
    let report = vip_report_of(
        [Some(vip(&[VIP], true)), Some(vip(&[VIP], true))],
        [true; 3],
    );
    assert_eq!(
        report.vip.as_ref().map(|vip| vip.held_by.clone()),
        Some(vec![1, 2])
    );
    check_vip_lines(
        &report,
        &["vip: HELD BY n1 AND n2 (192.0.2.10/24): only the leader may hold it"],
    );
    let text = render_status(&report);
    assert!(
        text.starts_with(
            "cluster mcluster: leader 1 (n1), term 3\n\
             vip: HELD BY n1 AND n2 (192.0.2.10/24): only the leader may hold it\nID "
        ),
        "{text}"
    );
}

#[test]
fn status_warns_when_a_follower_holds_the_vip() {
    let report = vip_report_of(
        [Some(vip(&[VIP], false)), Some(vip(&[VIP], true))],
        [true; 3],
    );
    check_vip_lines(
        &report,
        &["vip: 192.0.2.10/24 on eth0, held by n2, which is NOT THE LEADER (n1)"],
    );
}

#[test]
fn status_warns_when_data_nodes_have_different_vips() {
    let report = vip_report_of(
        [
            Some(vip(&[VIP], true)),
            Some(vip(&["192.0.2.20/24"], false)),
        ],
        [true; 3],
    );
    assert_eq!(report.vip.as_ref().map(|vip| vip.consistent), Some(false));
    check_vip_lines(
        &report,
        &[
            "vip: 192.0.2.10/24 on eth0, held by n1",
            "vip: WARNING: the data nodes have different virtual IPs: n1 192.0.2.10/24; \
             n2 192.0.2.20/24",
        ],
    );
    let one_without = vip_report_of([None, Some(vip(&[VIP], false))], [true; 3]);
    check_vip_lines(
        &one_without,
        &[
            "vip: 192.0.2.10/24, NOT HELD",
            "vip: WARNING: the data nodes have different virtual IPs: n1 none; n2 192.0.2.10/24",
        ],
    );
}

#[test]
fn status_without_a_vip_has_no_vip_line() {
    let report = vip_report_of([None, None], [true; 3]);
    assert_eq!(report.vip, None);
    assert!(vip_lines(&report).is_empty());
    assert!(!render_status(&report).contains("vip"));
    let json = serde_json::to_value(&report).expect("encode");
    assert!(json["vip"].is_null(), "{json}");
}

#[test]
fn status_json_has_the_vip() {
    let report = vip_report_of([Some(vip(&[VIP], true)), None], [true, true, false]);
    let json = serde_json::to_value(&report).expect("encode");
    assert_eq!(
        json["vip"],
        json!({
            "addresses": ["192.0.2.10/24"],
            "interface": "eth0",
            "held_by": [1],
            "unreachable": [],
            "consistent": false,
        })
    );
    assert_eq!(
        json["nodes"][0]["node"]["vip"],
        json!({
            "addresses": ["192.0.2.10/24"],
            "interface": "eth0",
            "held": true,
            "acquisitions": 1,
            "last_failover_ms": 812,
            "last_change_unix_ms": 1_795_336_375_287_u64,
            "problem": null,
        })
    );
    assert!(json["nodes"][1]["node"]["vip"].is_null());
    assert!(json["nodes"][2]["node"].is_null());
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
    // Two members of one name (joined before names were checked): only the id will do.
    let mut twins = members.clone();
    twins.push(member(4, "n2", Role::Data, true));
    let err = find_member(&twins, "n2").expect_err("ambiguous");
    assert_eq!(
        err.to_string(),
        r#""n2" names 2 members (nodes 2, 4): give the node id instead"#
    );
    assert_eq!(find_member(&twins, "4").expect("by id").node_id, 4);
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
fn seed_urls_get_the_scheme_of_the_client_config() {
    let mut client_config = ClientConfig {
        admin_urls: vec!["http://127.0.0.12:7070".into()],
        admin_token: None,
        join_token: None,
        read_only_token: None,
        cluster_name: "mcluster".into(),
        ca_cert_pem: None,
    };
    // An older init's config: plain HTTP.
    assert_eq!(
        normalize_url("127.0.0.11:7070", &client_config),
        "http://127.0.0.11:7070"
    );
    assert_eq!(
        normalize_url("https://127.0.0.11:7070/", &client_config),
        "https://127.0.0.11:7070"
    );
    client_config.use_https("-----BEGIN CERTIFICATE-----\n".into());
    assert_eq!(client_config.admin_urls, ["https://127.0.0.12:7070"]);
    assert_eq!(
        normalize_url("127.0.0.11:7070", &client_config),
        "https://127.0.0.11:7070"
    );
    // No URLs yet, but the CA: HTTPS.
    client_config.admin_urls.clear();
    assert_eq!(
        normalize_url("127.0.0.11:7070/", &client_config),
        "https://127.0.0.11:7070"
    );
}

fn policy() -> MailPolicy {
    MailPolicy {
        max_message_bytes: 52_428_800,
        max_recipients: 100,
        degraded_accept: "accept".to_owned(),
        auth_without_tls: false,
        max_connections: 1000,
        max_connections_per_ip: None,
        smtp_connections_per_ip: Some(50),
        submission_connections_per_ip: Some(50),
        imap_connections_per_ip: Some(500),
        pop3_connections_per_ip: Some(100),
        max_errors: 10,
        smtp_idle_timeout_secs: 300,
        pop3_idle_timeout_secs: 600,
        max_mime_parts: Some(1000),
        max_mime_depth: Some(32),
        max_header_fields: Some(1000),
        max_header_bytes: Some(524_288),
    }
}

const POLICY_JSON: &str = r#"{"max-message-bytes":52428800,"max-recipients":100,
    "degraded-accept":"accept","auth-without-tls":false,"max-connections":1000,
    "smtp-connections-per-ip":50,"submission-connections-per-ip":50,
    "imap-connections-per-ip":500,"pop3-connections-per-ip":100,"max-errors":10,"smtp-idle-timeout-secs":300,
    "pop3-idle-timeout-secs":600,"max-mime-parts":1000,"max-mime-depth":32,
    "max-header-fields":1000,"max-header-bytes":524288}"#;

#[test]
fn mail_policy_table_uses_the_keys_policy_set_takes() {
    assert_eq!(
        render_mail_policy(&policy()),
        "KEY                            VALUE\n\
         max-message-bytes              52428800\n\
         max-recipients                 100\n\
         degraded-accept                accept\n\
         auth-without-tls               false\n\
         max-connections                1000\n\
         smtp-connections-per-ip        50\n\
         submission-connections-per-ip  50\n\
         imap-connections-per-ip        500\n\
         pop3-connections-per-ip        100\n\
         max-errors                     10\n\
         smtp-idle-timeout-secs         300\n\
         pop3-idle-timeout-secs         600\n\
         max-mime-parts                 1000\n\
         max-mime-depth                 32\n\
         max-header-fields              1000\n\
         max-header-bytes               524288\n"
    );
    let decoded: MailPolicy = serde_json::from_str(POLICY_JSON).expect("decode");
    assert_eq!(decoded, policy());
    // An older server's one shared limit still shows.
    let older = MailPolicy {
        max_connections_per_ip: Some(32),
        smtp_connections_per_ip: None,
        submission_connections_per_ip: None,
        imap_connections_per_ip: None,
        pop3_connections_per_ip: None,
        ..policy()
    };
    let table = render_mail_policy(&older);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().eq(["max-connections-per-ip", "32"])),
        "{table}"
    );
    assert!(!table.contains("imap-connections-per-ip"), "{table}");
}

#[test]
fn policy_settings_become_a_json_object() {
    let settings = [
        "degraded-accept=refuse",
        "max-recipients=200",
        "auth-without-tls=true",
    ];
    let settings: Vec<String> = settings
        .iter()
        .map(|setting| (*setting).to_owned())
        .collect();
    let changes = parse_policy_settings(&settings).expect("parse");
    assert_eq!(
        serde_json::Value::Object(changes),
        json!({"degraded-accept": "refuse", "max-recipients": 200, "auth-without-tls": true})
    );
    for (bad, message) in [
        ("max-recipients", "expected KEY=VALUE"),
        ("=5", "expected KEY=VALUE"),
    ] {
        let err = parse_policy_settings(&[bad.to_owned()]).expect_err(bad);
        assert!(err.to_string().contains(message), "{err}");
    }
    let twice = ["max-errors=3".to_owned(), "max-errors=4".to_owned()];
    let err = parse_policy_settings(&twice).expect_err("twice");
    assert_eq!(err.to_string(), "policy key max-errors is given twice");
}

#[test]
fn policy_values_are_numbers_and_booleans_else_strings() {
    assert_eq!(policy_value("200"), json!(200));
    assert_eq!(policy_value("false"), json!(false));
    assert_eq!(policy_value("refuse"), json!("refuse"));
    assert_eq!(policy_value(""), json!(""));
    assert_eq!(policy_value("null"), json!("null"));
    assert_eq!(policy_value("\"x\""), json!("\"x\""));
    assert_eq!(policy_value("-1"), json!(-1));
}

const TOKEN: &str = "abababababababababababababababababababababababababababababababab";

/// A context whose client config points at `server`.
fn context_for(server: &TestServer, dir: &Path) -> Context {
    let client_config_path = dir.join("client.toml");
    ClientConfig {
        admin_urls: vec![server.url.clone()],
        admin_token: Some(TOKEN.to_owned()),
        join_token: None,
        read_only_token: None,
        cluster_name: "mcluster".to_owned(),
        ca_cert_pem: None,
    }
    .save(&client_config_path)
    .expect("save client config");
    Context { client_config_path }
}

#[test]
fn policy_commands_read_and_merge_the_policy() {
    let server = TestServer::start(|_| Reply::json(200, POLICY_JSON));
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    policy_show(&ctx, false).expect("show");
    policy_show(&ctx, true).expect("show --json");
    policy_set(
        &ctx,
        &[
            "degraded-accept=refuse".to_owned(),
            "max-recipients=200".to_owned(),
        ],
    )
    .expect("set");
    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].target.as_str()),
        ("GET", "/v1/mail-policy")
    );
    assert_eq!(
        (requests[2].method.as_str(), requests[2].target.as_str()),
        ("PUT", "/v1/mail-policy")
    );
    let body: serde_json::Value = serde_json::from_str(&requests[2].body).expect("JSON body");
    assert_eq!(
        body,
        json!({"degraded-accept": "refuse", "max-recipients": 200})
    );
    assert_eq!(requests[2].authorization, Some(format!("Bearer {TOKEN}")));
}

#[test]
fn policy_set_reports_the_cluster_refusal() {
    let server = TestServer::start(|_| {
        Reply::error(400, "bad_request", "max-recipients must be at least 100")
    });
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let err = policy_set(&ctx, &["max-recipients=5".to_owned()]).expect_err("400");
    let message = format!("{err:#}");
    assert!(message.starts_with("set the mail policy: "), "{message}");
    assert!(
        message.contains("max-recipients must be at least 100"),
        "{message}"
    );
}

const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n";

#[test]
fn tls_set_sends_the_files_and_tls_show_fetches_the_chain() {
    let server = TestServer::start(|request| match request.method.as_str() {
        "PUT" => Reply::json(200, r#"{"updated":true}"#),
        _ => Reply::json(200, &json!({ "cert_pem": CERT_PEM }).to_string()),
    });
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let (cert, key) = (dir.path().join("mail.crt"), dir.path().join("mail.key"));
    fs::write(&cert, CERT_PEM).expect("write cert");
    fs::write(&key, KEY_PEM).expect("write key");
    tls_set(&ctx, &cert, &key).expect("set");
    tls_show(&ctx).expect("show");
    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].target.as_str()),
        ("PUT", "/v1/tls")
    );
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("JSON body");
    assert_eq!(body, json!({"cert_pem": CERT_PEM, "key_pem": KEY_PEM}));
    assert_eq!(
        (requests[1].method.as_str(), requests[1].target.as_str()),
        ("GET", "/v1/tls")
    );
}

#[test]
fn tls_set_refuses_files_that_are_not_pem_before_sending() {
    let server = TestServer::start(|_| Reply::json(200, r#"{"updated":true}"#));
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let (cert, key) = (dir.path().join("mail.crt"), dir.path().join("mail.key"));
    fs::write(&cert, CERT_PEM).expect("write cert");
    fs::write(&key, CERT_PEM).expect("write a certificate as the key");
    let err = tls_set(&ctx, &cert, &key).expect_err("key is a certificate");
    assert!(
        err.to_string().ends_with("holds no PEM PRIVATE KEY"),
        "{err}"
    );
    let err = tls_set(&ctx, &key, &dir.path().join("absent.key")).expect_err("no key file");
    assert!(format!("{err:#}").contains("absent.key"), "{err:#}");
    assert!(server.requests().is_empty());
}

#[test]
fn tls_show_without_a_certificate_says_how_to_set_one() {
    let server =
        TestServer::start(|_| Reply::error(404, "not_found", "no client TLS certificate is set"));
    let dir = tempfile::tempdir().expect("create temp dir");
    let err = tls_show(&context_for(&server, dir.path())).expect_err("404");
    assert!(
        err.to_string()
            .contains("mclusterctl tls set --cert FILE --key FILE"),
        "{err}"
    );
}

/// `GET /v1/node` of a data node with `vip`.
fn node_json(node_id: u64, state: &str, vip: Option<&VipStatus>) -> String {
    let member = member(node_id, &format!("n{node_id}"), Role::Data, true);
    let node = NodeStatus {
        vip: vip.cloned(),
        ..node(&member, state, 45, 45)
    };
    serde_json::to_string(&node).expect("encode")
}

/// n1 leads until asked to fail over to n2; n2 answers its i-th `GET /v1/node` with the VIP
/// from `n2_vip(i)`; the witness n3 does not answer. Returns n1 (the client's URL) and n2.
fn failover_cluster(
    n1_vip: Option<VipStatus>,
    n2_vip: impl Fn(usize) -> Option<VipStatus> + Send + Sync + 'static,
) -> (TestServer, TestServer) {
    let n_asked = AtomicUsize::new(0);
    let n2 = TestServer::start(move |_| {
        let i = n_asked.fetch_add(1, Ordering::SeqCst);
        Reply::json(200, &node_json(2, "Leader", n2_vip(i).as_ref()))
    });
    let members_json: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let members = Arc::clone(&members_json);
    let n1 = TestServer::start(move |request| match request.target.as_str() {
        "/v1/members" => Reply::json(200, members.get().expect("set before any request")),
        "/v1/failover" => Reply::json(200, r#"{"leader":2}"#),
        _ => Reply::json(200, &node_json(1, "Follower", n1_vip.as_ref())),
    });
    let at = |node_id: u64, name: &str, role: Role, url: &str| Member {
        admin_addr: url.trim_start_matches("http://").to_owned(),
        ..member(node_id, name, role, true)
    };
    let members = [
        at(1, "n1", Role::Data, &n1.url),
        at(2, "n2", Role::Data, &n2.url),
        at(3, "n3", Role::Witness, &refused_url()),
    ];
    members_json
        .set(serde_json::to_string(&members).expect("encode"))
        .expect("set once");
    (n1, n2)
}

#[track_caller]
fn check_failover(
    n1_vip: Option<VipStatus>,
    n2_vip: impl Fn(usize) -> Option<VipStatus> + Send + Sync + 'static,
    vip_timeout: Duration,
) -> (FailoverOutcome, usize) {
    let (n1, n2) = failover_cluster(n1_vip, n2_vip);
    let client = Client::new(vec![n1.url.clone()], TOKEN, None).expect("client");
    let outcome = fail_over(&client, Some("n2"), vip_timeout).expect("fail over");
    assert_eq!((outcome.leader, outcome.leader_name.as_str()), (2, "n2"));
    let failover_request = n1
        .requests()
        .into_iter()
        .find(|request| request.method == "POST")
        .expect("a failover request");
    assert_eq!(
        (
            failover_request.target.as_str(),
            failover_request.body.as_str()
        ),
        ("/v1/failover", r#"{"to":2}"#)
    );
    (outcome, n2.requests().len())
}

#[test]
fn failover_waits_until_the_new_leader_holds_the_vip() {
    let (outcome, n_polls) = check_failover(
        Some(vip(&[VIP], false)),
        |i| Some(vip(&[VIP], i >= 2)),
        Duration::from_secs(5),
    );
    assert_eq!(n_polls, 3, "polled until held, then stopped");
    let VipMove::Held {
        addresses,
        elapsed,
        also_held_by,
    } = outcome.vip
    else {
        panic!("not held: {outcome:?}");
    };
    assert_eq!(addresses, [VIP]);
    assert!(
        elapsed >= Duration::from_millis(100),
        "two polls apart: {elapsed:?}"
    );
    assert!(also_held_by.is_empty());
}

#[test]
fn failover_reports_an_old_holder_that_kept_the_vip() {
    let (outcome, _) = check_failover(
        Some(vip(&[VIP], true)),
        |_| Some(vip(&[VIP], true)),
        Duration::from_secs(5),
    );
    assert!(
        matches!(&outcome.vip, VipMove::Held { also_held_by, .. } if also_held_by == &["n1"]),
        "{outcome:?}"
    );
}

#[test]
fn failover_gives_up_on_the_vip_after_its_bound() {
    let started = std::time::Instant::now();
    let (outcome, n_polls) = check_failover(
        Some(vip(&[VIP], false)),
        |_| Some(vip(&[VIP], false)),
        Duration::from_millis(300),
    );
    assert!(started.elapsed() < Duration::from_secs(2), "bounded");
    assert!(n_polls >= 2, "{n_polls}");
    assert_eq!(
        outcome.vip,
        VipMove::NotHeld {
            addresses: Some(vec![VIP.to_owned()]),
            waited: Duration::from_millis(300),
        }
    );
}

#[test]
fn failover_without_a_vip_asks_the_new_leader_once() {
    let (outcome, n_polls) = check_failover(None, |_| None, Duration::from_secs(5));
    assert_eq!(outcome.vip, VipMove::NoVip);
    assert_eq!(n_polls, 1);
}

#[test]
fn failover_warns_when_the_new_leader_has_no_vip_but_others_do() {
    let (outcome, _) = check_failover(Some(vip(&[VIP], false)), |_| None, Duration::from_secs(5));
    assert_eq!(
        outcome.vip,
        VipMove::LeaderHasNone {
            others: vec![("n1".to_owned(), vec![VIP.to_owned()])],
        }
    );
}

#[track_caller]
fn check_failover_lines(vip: VipMove, out: &[&str], warnings: &[&str]) {
    let outcome = FailoverOutcome {
        leader: 2,
        leader_name: "n2".to_owned(),
        vip,
    };
    let (lines, warned) = failover_lines(&outcome);
    assert_eq!(lines, out);
    assert_eq!(warned, warnings);
}

#[test]
fn failover_output() {
    check_failover_lines(VipMove::NoVip, &["leader is now node 2 (n2)"], &[]);
    check_failover_lines(
        VipMove::Held {
            addresses: vec![VIP.to_owned(), "2001:db8::10/64".to_owned()],
            elapsed: Duration::from_millis(840),
            also_held_by: vec![],
        },
        &["leadership and VIP 192.0.2.10/24, 2001:db8::10/64 moved to node 2 (n2) in 840 ms"],
        &[],
    );
    check_failover_lines(
        VipMove::Held {
            addresses: vec![VIP.to_owned()],
            elapsed: Duration::from_millis(840),
            also_held_by: vec!["n1".to_owned()],
        },
        &["leadership and VIP 192.0.2.10/24 moved to node 2 (n2) in 840 ms"],
        &["n1 still says to hold the VIP too: check `mclusterctl status` and its log"],
    );
    check_failover_lines(
        VipMove::NotHeld {
            addresses: Some(vec![VIP.to_owned()]),
            waited: Duration::from_secs(5),
        },
        &["leader is now node 2 (n2)"],
        &[
            "n2 leads but has not taken the VIP 192.0.2.10/24 within 5 s; check `mclusterctl \
           status` and n2's log",
        ],
    );
    check_failover_lines(
        VipMove::NotHeld {
            addresses: None,
            waited: Duration::from_millis(300),
        },
        &["leader is now node 2 (n2)"],
        &[
            "n2 did not answer within 300 ms, so whether it took the virtual IP is unknown; check \
           `mclusterctl status`",
        ],
    );
    check_failover_lines(
        VipMove::LeaderHasNone {
            others: vec![("n1".to_owned(), vec![VIP.to_owned()])],
        },
        &["leader is now node 2 (n2)"],
        &[
            "n2 has no virtual IP configured but n1 has 192.0.2.10/24: no node holds it while n2 \
           leads; give every data node the same [vip] addresses",
        ],
    );
}

#[test]
fn init_and_join_name_the_vip_they_wrote() {
    assert_eq!(vip_note(None), "");
    let vip = VipSection {
        addresses: vec![VIP.to_owned(), "2001:db8::10/64".to_owned()],
        interface: "eth0".to_owned(),
    };
    assert_eq!(
        vip_note(Some(&vip)),
        ", virtual IP 192.0.2.10/24, 2001:db8::10/64 on eth0"
    );
}

// The outbound queue.

/// When the queue tests look at the queue: an hour after the first message arrived.
const NOW: i64 = 1_700_003_600;

fn recipient(address: &str, state: &str, error: Option<(&str, &str, i64)>) -> QueueRecipient {
    QueueRecipient {
        address: address.to_owned(),
        state: state.to_owned(),
        attempts: if state == "pending" && error.is_none() {
            0
        } else {
            2
        },
        last_status: error.map(|(status, _, _)| status.to_owned()),
        last_error: error.map(|(_, text, _)| text.to_owned()),
        last_remote: error.map(|_| "mx1.remote.test".to_owned()),
        last_attempt_at: error.map(|(_, _, at)| at),
    }
}

/// A held message with a recipient in every state; a bounce (null sender) waiting for its
/// next attempt; a message whose only failure is still to be reported.
fn queue_entries() -> Vec<QueueEntry> {
    vec![
        QueueEntry {
            id: "0001A".to_owned(),
            blob: "ab".repeat(32),
            size: 48_213,
            sender: "alice@example.test".to_owned(),
            arrived_at: 1_700_000_000,
            attempts: 2,
            next_attempt_at: 1_700_004_080,
            held: true,
            recipients: vec![
                recipient(
                    "a@remote.test",
                    "pending",
                    Some((
                        "4.4.1",
                        "connect to mx1.remote.test:25: connection refused (os error 111)",
                        1_700_003_000,
                    )),
                ),
                recipient("b@remote.test", "delivered", None),
                recipient(
                    "c@remote.test",
                    "failed",
                    Some((
                        "5.1.1",
                        "550 5.1.1 <c@remote.test>: no such user",
                        1_700_000_500,
                    )),
                ),
                recipient(
                    "d@remote.test",
                    "bounced",
                    Some(("5.2.2", "552 5.2.2 mailbox full", 1_700_000_400)),
                ),
            ],
        },
        QueueEntry {
            id: "0002B".to_owned(),
            blob: "cd".repeat(32),
            size: 900,
            sender: String::new(),
            arrived_at: 1_700_003_590,
            attempts: 1,
            next_attempt_at: 1_700_004_080,
            held: false,
            recipients: vec![recipient(
                "alice@remote.test",
                "pending",
                Some((
                    "4.7.1",
                    "451 4.7.1 greylisted,\n try again later",
                    1_700_003_595,
                )),
            )],
        },
        QueueEntry {
            id: "0003C".to_owned(),
            blob: "ef".repeat(32),
            size: 3 << 20,
            sender: "bob@example.test".to_owned(),
            arrived_at: 1_699_900_000,
            attempts: 3,
            next_attempt_at: 1_699_999_000,
            held: false,
            recipients: vec![
                recipient("x@remote.test", "delivered", None),
                recipient(
                    "y@remote.test",
                    "failed",
                    Some(("5.4.7", "delivery time expired", 1_699_999_000)),
                ),
            ],
        },
    ]
}

#[test]
fn queue_list_shows_each_message_and_the_total() {
    let listing = QueueListing {
        total: 3,
        entries: queue_entries(),
    };
    assert_eq!(
        render_queue(&listing, 100, NOW),
        "ID     AGE   SIZE      SENDER              RCPTS  ATTEMPTS  NEXT   STATE     LAST ERROR\n\
         0001A  1h    47.1 KiB  alice@example.test  1/4    2         -      held      4.4.1 connect to mx1.remote.test:25: co…\n\
         0002B  10s   900 B     <>                  1/1    1         in 8m  deferred  4.7.1 451 4.7.1 greylisted, try again l…\n\
         0003C  1d4h  3.0 MiB   bob@example.test    0/2    3         now    bouncing  5.4.7 delivery time expired\n\
         total: 3 queued messages\n"
    );
}

#[test]
fn queue_list_points_to_the_next_page_when_the_page_is_full() {
    let entries = queue_entries();
    let listing = QueueListing {
        total: 250,
        entries: entries[..2].to_vec(),
    };
    let shown = render_queue(&listing, 2, NOW);
    assert!(
        shown.ends_with(
            "total: 250 queued messages\nmore may follow: mclusterctl queue list --after 0002B\n"
        ),
        "{shown}"
    );
    // A page with room left is the last one.
    assert!(!render_queue(&listing, 3, NOW).contains("more may follow"));
}

#[test]
fn an_empty_queue_lists_no_rows_and_total_zero() {
    let listing = QueueListing {
        total: 0,
        entries: vec![],
    };
    assert_eq!(
        render_queue(&listing, 100, NOW),
        "ID  AGE  SIZE  SENDER  RCPTS  ATTEMPTS  NEXT  STATE  LAST ERROR\n\
         total: 0 queued messages\n"
    );
}

#[test]
fn queue_state_follows_hold_pending_recipients_and_the_next_attempt() {
    let [held, deferred, bouncing] = queue_entries().try_into().expect("three entries");
    assert_eq!(queue_state(&held, NOW), "held");
    assert_eq!(queue_state(&deferred, NOW), "deferred");
    assert_eq!(queue_state(&deferred, deferred.next_attempt_at), "due");
    assert_eq!(queue_state(&bouncing, NOW), "bouncing");
    // `retry` makes it due at once: the API then says i64::MIN.
    let retried = QueueEntry {
        next_attempt_at: i64::MIN,
        ..deferred
    };
    assert_eq!(queue_state(&retried, NOW), "due");
    assert!(render_queue_entry(&retried, NOW).contains("next attempt:  due now\n"));
}

#[test]
fn queue_show_lists_every_field_and_every_recipient() {
    let entry = &queue_entries()[0];
    assert_eq!(
        render_queue_entry(entry, NOW),
        "id:            0001A\n\
         state:         held\n\
         sender:        alice@example.test\n\
         size:          47.1 KiB (48213 bytes)\n\
         blob:          abababababababababababababababababababababababababababababababab\n\
         arrived:       2023-11-14 22:13:20Z (1h ago)\n\
         attempts:      2\n\
         next attempt:  2023-11-14 23:21:20Z (in 8m)\n\
         held:          yes (not attempted until released)\n\
         recipients:    1 pending, 1 delivered, 1 failed, 1 bounced\n\
         \n\
         RECIPIENT      STATE      ATTEMPTS  STATUS  REMOTE           LAST ATTEMPT                    ERROR\n\
         a@remote.test  pending    2         4.4.1   mx1.remote.test  2023-11-14 23:03:20Z (10m ago)  connect to mx1.remote.test:25: connection refused (os error 111)\n\
         b@remote.test  delivered  2         -       -                -                               -\n\
         c@remote.test  failed     2         5.1.1   mx1.remote.test  2023-11-14 22:21:40Z (51m ago)  550 5.1.1 <c@remote.test>: no such user\n\
         d@remote.test  bounced    2         5.2.2   mx1.remote.test  2023-11-14 22:20:00Z (53m ago)  552 5.2.2 mailbox full\n"
    );
}

#[test]
fn queue_actions_say_what_became_of_the_message() {
    let entry = &queue_entries()[1];
    for (action, expected) in [
        (
            QueueAction::Retry,
            "queued message 0002B is due now (1 pending recipient)",
        ),
        (
            QueueAction::Hold,
            "held queued message 0002B: not attempted until released",
        ),
        (QueueAction::Release, "released queued message 0002B"),
    ] {
        assert_eq!(queue_act_line("0002B", action, Some(entry)), expected);
    }
    assert_eq!(
        queue_act_line("0002B", QueueAction::Release, None),
        "queued message 0002B is gone: nothing was left to deliver or report"
    );
}

#[test]
fn queue_commands_send_their_requests() {
    let entry = serde_json::to_string(&queue_entries()[0]).expect("encode entry");
    let listing = json!({"total": 0, "entries": []}).to_string();
    let server = TestServer::start(move |request| {
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/v1/queue?limit=100") => Reply::json(200, &listing),
            ("DELETE", _) => Reply::json(204, ""),
            _ => Reply::json(200, &entry),
        }
    });
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    queue_list(&ctx, None, 100, false).expect("list");
    queue_list(&ctx, None, 100, true).expect("list --json");
    queue_show(&ctx, "0001A", false).expect("show");
    queue_show(&ctx, "0001A", true).expect("show --json");
    queue_act(&ctx, "0001A", QueueAction::Hold).expect("hold");
    queue_delete(&ctx, "0001A").expect("delete");
    let sent: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|request| (request.method, request.target))
        .collect();
    let expected = [
        ("GET", "/v1/queue?limit=100"),
        ("GET", "/v1/queue?limit=100"),
        ("GET", "/v1/queue/0001A"),
        ("GET", "/v1/queue/0001A"),
        ("POST", "/v1/queue/0001A/hold"),
        ("DELETE", "/v1/queue/0001A"),
    ]
    .map(|(method, target)| (method.to_owned(), target.to_owned()));
    assert_eq!(sent, expected);
}

#[track_caller]
fn check_queue_not_found(run: impl FnOnce(&Context) -> anyhow::Result<()>, context: &str) {
    let server =
        TestServer::start(|_| Reply::error(404, "not_found", "no such queued message: NOPE"));
    let dir = tempfile::tempdir().expect("create temp dir");
    let err = run(&context_for(&server, dir.path())).expect_err("404");
    let message = format!("{err:#}");
    assert!(message.starts_with(context), "{message}");
    assert!(
        message.ends_with("answered 404 not_found: no such queued message: NOPE"),
        "{message}"
    );
}

#[test]
fn queue_commands_on_a_missing_message_fail_with_the_cluster_words() {
    check_queue_not_found(
        |ctx| queue_show(ctx, "NOPE", false),
        "get queued message NOPE: GET /v1/queue/NOPE: ",
    );
    check_queue_not_found(
        |ctx| queue_act(ctx, "NOPE", QueueAction::Retry),
        "retry queued message NOPE: POST /v1/queue/NOPE/retry: ",
    );
    check_queue_not_found(
        |ctx| queue_act(ctx, "NOPE", QueueAction::Release),
        "release queued message NOPE: POST /v1/queue/NOPE/release: ",
    );
    check_queue_not_found(
        |ctx| queue_delete(ctx, "NOPE"),
        "delete queued message NOPE: DELETE /v1/queue/NOPE: ",
    );
}

fn dkim_key(dns_value: &str) -> DkimKey {
    DkimKey {
        domain: "example.test".to_owned(),
        selector: "s1".to_owned(),
        algorithm: "rsa-sha256".to_owned(),
        created_at: 1_763_805_600,
        dns_name: "s1._domainkey.example.test".to_owned(),
        dns_value: dns_value.to_owned(),
    }
}

#[test]
fn dkim_records_show_split_for_zone_files() {
    use crate::commands::{dkim_zone_line, render_dkim_key, render_dkim_keys};
    let short = dkim_key("v=DKIM1; k=ed25519; p=AAAA");
    assert_eq!(
        dkim_zone_line(&short),
        r#"s1._domainkey.example.test. IN TXT ( "v=DKIM1; k=ed25519; p=AAAA" )"#
    );
    // "v=DKIM1; k=rsa; p=" is 18 characters: the first string takes 237 of the key's 392.
    let long = dkim_key(&format!("v=DKIM1; k=rsa; p={}", "A".repeat(392)));
    assert_eq!(
        dkim_zone_line(&long),
        format!(
            r#"s1._domainkey.example.test. IN TXT ( "v=DKIM1; k=rsa; p={}" "{}" )"#,
            "A".repeat(237),
            "A".repeat(155)
        )
    );
    let shown = render_dkim_key(&short);
    assert!(
        shown.contains("\nname:  s1._domainkey.example.test\nvalue: v=DKIM1; k=ed25519; p=AAAA\n"),
        "{shown}"
    );
    assert!(shown.contains("created:   2025-11-22 10:00:00"), "{shown}");
    let listed = render_dkim_keys(&[short]);
    assert!(listed.starts_with("DOMAIN"), "{listed}");
    assert!(listed.contains("s1._domainkey.example.test"), "{listed}");
}

#[test]
fn dkim_commands_send_their_requests() {
    use crate::commands::{dkim_delete, dkim_generate, dkim_import, dkim_list, dkim_show};
    let key = serde_json::to_string(&dkim_key("v=DKIM1; k=rsa; p=AAAA")).expect("encode key");
    let server = TestServer::start(move |request| {
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", "/v1/dkim") => Reply::json(200, &format!("[{key}]")),
            ("DELETE", _) => Reply::json(204, ""),
            _ => Reply::json(200, &key),
        }
    });
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let pem_file = dir.path().join("key.pem");
    fs::write(&pem_file, pem).expect("write key");
    let not_a_key = dir.path().join("cert.pem");
    fs::write(&not_a_key, "-----BEGIN CERTIFICATE-----\n").expect("write cert");

    dkim_generate(&ctx, "example.test", None, None, false).expect("generate");
    dkim_generate(
        &ctx,
        "example.test",
        Some("s2"),
        Some(DkimAlgorithm::Ed25519),
        true,
    )
    .expect("generate --json");
    dkim_import(&ctx, "example.test", "s1", &pem_file, false).expect("import");
    let err = dkim_import(&ctx, "example.test", "s1", &not_a_key, false).expect_err("no key");
    assert!(
        format!("{err:#}").ends_with("holds no PEM PRIVATE KEY"),
        "{err:#}"
    );
    dkim_show(&ctx, "example.test", false).expect("show");
    dkim_list(&ctx, false).expect("list");
    dkim_list(&ctx, true).expect("list --json");
    dkim_delete(&ctx, "example.test").expect("delete");

    let sent: Vec<(String, String, String)> = server
        .requests()
        .into_iter()
        .map(|request| (request.method, request.target, request.body))
        .collect();
    let path = "/v1/domains/example.test/dkim";
    let expected = [
        ("PUT", path, "{}".to_owned()),
        (
            "PUT",
            path,
            r#"{"selector":"s2","algorithm":"ed25519-sha256"}"#.to_owned(),
        ),
        (
            "PUT",
            path,
            format!(r#"{{"selector":"s1","private-key-pem":{}}}"#, json!(pem)),
        ),
        ("GET", path, String::new()),
        ("GET", "/v1/dkim", String::new()),
        ("GET", "/v1/dkim", String::new()),
        ("DELETE", path, String::new()),
    ]
    .map(|(method, target, body)| (method.to_owned(), target.to_owned(), body));
    assert_eq!(sent, expected);
}

#[test]
fn dkim_generate_for_an_unknown_domain_fails_with_the_cluster_words() {
    use crate::commands::dkim_generate;
    let server = TestServer::start(|_| Reply::error(404, "not_found", "no such domain: nope.test"));
    let dir = tempfile::tempdir().expect("create temp dir");
    let err = dkim_generate(
        &context_for(&server, dir.path()),
        "nope.test",
        None,
        None,
        false,
    )
    .expect_err("404");
    let message = format!("{err:#}");
    assert!(
        message.starts_with("make a DKIM key for nope.test: PUT /v1/domains/nope.test/dkim: "),
        "{message}"
    );
    assert!(
        message.ends_with("answered 404 not_found: no such domain: nope.test"),
        "{message}"
    );
}

mod token_rotation {
    use crate::commands::{TokenKind, rotation_note, token_rotate};
    use crate::secrets::sha256_hex;

    use super::*;

    /// The cluster gets the new token's digest, never the token, with the old admin token; the
    /// client config ends with the new token and nothing staged beside it.
    #[track_caller]
    fn check_rotation(kind: TokenKind) {
        let server = TestServer::start(|_| Reply::json(204, ""));
        let dir = tempfile::tempdir().expect("create temp dir");
        let ctx = context_for(&server, dir.path());
        let before = ctx.client_config().expect("config");
        token_rotate(&ctx, kind).expect("rotate");
        let after = ctx.client_config().expect("config");
        let (new_token, unchanged) = match kind {
            TokenKind::Admin => (
                after.admin_token.clone(),
                after.join_token == before.join_token,
            ),
            TokenKind::Join => (
                after.join_token.clone(),
                after.admin_token == before.admin_token,
            ),
            TokenKind::ReadOnly => (
                after.read_only_token.clone(),
                after.admin_token == before.admin_token && after.join_token == before.join_token,
            ),
        };
        let new_token = new_token.expect("a new token");
        assert_ne!(Some(&new_token), before.admin_token.as_ref());
        assert!(unchanged, "the other token stays");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("PUT", format!("/v1/tokens/{}", kind.as_str()).as_str())
        );
        assert_eq!(request.authorization, Some(format!("Bearer {TOKEN}")));
        let body: serde_json::Value = serde_json::from_str(&request.body).expect("JSON body");
        assert_eq!(body, json!({ "sha256": sha256_hex(&new_token) }));
        assert!(!request.body.contains(&new_token));
        let n_files = fs::read_dir(dir.path()).expect("read dir").count();
        assert_eq!(n_files, 1, "only client.toml is left");
    }

    #[test]
    fn rotation_sends_only_the_digest_and_saves_the_new_token() {
        check_rotation(TokenKind::Join);
        check_rotation(TokenKind::Admin);
        // The read-only token is made with the admin token, which stays the one presented.
        check_rotation(TokenKind::ReadOnly);
    }

    #[test]
    fn a_refused_rotation_keeps_the_old_token() {
        let server =
            TestServer::start(|_| Reply::error(401, "unauthorized", "missing or wrong token"));
        let dir = tempfile::tempdir().expect("create temp dir");
        let ctx = context_for(&server, dir.path());
        let before = ctx.client_config().expect("config");
        let err = token_rotate(&ctx, TokenKind::Join).expect_err("401");
        let message = format!("{err:#}");
        assert!(message.starts_with("rotate the join token: "), "{message}");
        assert_eq!(ctx.client_config().expect("config"), before);
        let n_files = fs::read_dir(dir.path()).expect("read dir").count();
        assert_eq!(n_files, 1, "nothing staged is left");
    }

    #[test]
    fn an_unanswered_rotation_says_where_the_new_token_is() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let client_config_path = dir.path().join("client.toml");
        ClientConfig {
            admin_urls: vec![refused_url()],
            admin_token: Some(TOKEN.to_owned()),
            join_token: Some(TOKEN.to_owned()),
            read_only_token: None,
            cluster_name: "mcluster".to_owned(),
            ca_cert_pem: None,
        }
        .save(&client_config_path)
        .expect("save");
        let ctx = Context { client_config_path };
        let err = token_rotate(&ctx, TokenKind::Admin).expect_err("unreachable");
        let message = format!("{err:#}");
        assert!(message.contains("client.toml.new"), "{message}");
        let staged = ClientConfig::load(&dir.path().join("client.toml.new")).expect("staged");
        assert_ne!(staged.admin_token.as_deref(), Some(TOKEN));
    }

    #[test]
    fn the_rotation_note_says_what_to_do_next() {
        let path = Path::new("/home/op/.config/mcluster/client.toml");
        assert_eq!(
            rotation_note(TokenKind::Join, path),
            "rotated the join token: the cluster refuses the old one from now on and accepts the \
             new one, saved as join-token in /home/op/.config/mcluster/client.toml; copy it to \
             the machine that runs the next `mclusterctl join` (nodes that are already voters \
             need nothing)"
        );
        assert!(
            rotation_note(TokenKind::Admin, path)
                .contains("replace the client config on every other machine")
        );
    }
}

#[test]
fn start_lines_say_how_to_start_on_a_server_and_here() {
    let node = crate::node_dir::NodePaths::new(Path::new("/srv/mail/n1")).expect("paths");
    let lines = crate::commands::start_lines(&node, "data");
    assert_eq!(
        lines,
        [
            "on a server:     copy /srv/mail/n1/ to it as /etc/mcluster/ (owned by the mcluster \
             user), then `systemctl enable --now mclusterd` (deploy/mclusterd.service)",
            "                 (its data-dir is \"data\", inside that directory: on a server set \
             data-dir = \"/var/lib/mcluster\" in mclusterd.toml, or pass --data-dir)",
            "on this machine: mclusterd --config /srv/mail/n1/mclusterd.toml",
        ]
    );
    let server = crate::commands::start_lines(&node, "/var/lib/mcluster");
    assert_eq!(server.len(), 2, "no data-dir hint: {server:?}");
}
