//! Tests for the admin API client against a scripted HTTP server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::api::{
    ApiError, Client, QueueAction, QueueRecipient, Role, Unreachable, VipStatus, encode_component,
    error_status,
};
use crate::test_server::{Recorded, Reply, TestServer, refused_url};

const TOKEN: &str = "secret-token";

const STATUS: &str = r#"{"cluster_name":"mcluster","leader_id":1,"term":3,"members":[
    {"node_id":1,"name":"n1","role":"data","voter":true,"raft_addr":"127.0.0.11:7071",
     "admin_addr":"127.0.0.11:7070","matched_index":10},
    {"node_id":3,"name":"n3","role":"witness","voter":false,"raft_addr":"127.0.0.13:7071",
     "admin_addr":"127.0.0.13:7070","matched_index":null}]}"#;

fn client(urls: &[&str]) -> Client {
    Client::new(
        urls.iter().map(|url| (*url).to_owned()).collect(),
        TOKEN,
        None,
    )
    .expect("client")
}

#[track_caller]
fn check_request(recorded: &Recorded, method: &str, target: &str, body: &str) {
    assert_eq!(recorded.method, method);
    assert_eq!(recorded.target, target);
    assert_eq!(recorded.body, body);
    assert_eq!(
        recorded.authorization.as_deref(),
        Some("Bearer secret-token")
    );
}

#[test]
fn reads_cluster_status_with_bearer_token() {
    let server = TestServer::start(|_| Reply::json(200, STATUS));
    let status = client(&[&server.url]).status().expect("status");
    assert_eq!(status.leader_id, Some(1));
    assert_eq!(status.members[1].role, Role::Witness);
    assert_eq!(status.members[1].matched_index, None);
    check_request(&server.requests()[0], "GET", "/v1/status", "");
}

#[test]
fn reads_blob_redundancy_and_mail_counters() {
    let status = STATUS.replace(
        r#""term":3,"#,
        r#""term":3,"blobs_missing":{"1":0,"2":12},"redundant":false,"#,
    );
    let server = TestServer::start(move |request| match request.target.as_str() {
        "/v1/status" => Reply::json(200, &status),
        _ => Reply::json(
            200,
            r#"{"node_id":2,"name":"n2","role":"data","state":"Follower","term":3,
            "leader_id":1,"last_log_index":9,"committed_index":9,"applied_index":9,
            "snapshot_index":null,"purged_index":null,"mail":{"degraded":false,
            "blobs_missing":12,"blobs_stored":3,"blobs_mirrored":0,"degraded_accepts":0,
            "mirror_failures":0,"resync_fetched":40,"resync_failures":1,"gc_removed":0,
            "messages_accepted":3,"smtp_sessions":5,"pop3_sessions":0}}"#,
        ),
    });
    let client = client(&[&server.url]);
    let status = client.status().expect("status");
    assert_eq!(status.blobs_missing, [(1, 0), (2, 12)].into());
    assert_eq!(status.redundant, Some(false));
    let node = client.node().expect("node");
    let mail = node.mail.expect("a data node reports mail");
    assert_eq!((mail.blobs_missing, mail.resync_fetched), (12, 40));
}

/// `GET /v1/node` of a data node, with `vip` spliced in (nothing: the field is absent).
fn node_answer(vip: &str) -> String {
    format!(
        r#"{{"node_id":1,"name":"n1","role":"data","state":"Leader","term":3,"leader_id":1,
        "last_log_index":9,"committed_index":9,"applied_index":9,"snapshot_index":null,
        "purged_index":null,"mail":null{vip}}}"#
    )
}

#[track_caller]
fn check_vip_decodes(vip: &str, expected: Option<VipStatus>) {
    let answer = node_answer(vip);
    let server = TestServer::start(move |_| Reply::json(200, &answer));
    let node = client(&[&server.url]).node().expect("node");
    assert_eq!(node.vip, expected);
}

#[test]
fn reads_the_virtual_ip_of_a_node() {
    check_vip_decodes(
        r#","vip":{"addresses":["192.0.2.10/24"],"interface":"eth0","held":true,
        "acquisitions":2,"last_failover_ms":812,"last_change_unix_ms":1795336375287}"#,
        Some(VipStatus {
            addresses: vec!["192.0.2.10/24".to_owned()],
            interface: "eth0".to_owned(),
            held: true,
            acquisitions: 2,
            last_failover_ms: Some(812),
            last_change_unix_ms: Some(1_795_336_375_287),
            problem: None,
        }),
    );
    check_vip_decodes(
        r#","vip":{"addresses":["127.0.0.10/32"],"interface":"lo","held":false,
        "acquisitions":0,"last_failover_ms":null,"last_change_unix_ms":1795336375287}"#,
        Some(VipStatus {
            addresses: vec!["127.0.0.10/32".to_owned()],
            interface: "lo".to_owned(),
            held: false,
            acquisitions: 0,
            last_failover_ms: None,
            last_change_unix_ms: Some(1_795_336_375_287),
            problem: None,
        }),
    );
    check_vip_decodes(r#","vip":null"#, None);
    // Nodes older than the virtual IP do not send the field.
    check_vip_decodes("", None);
}

#[test]
fn older_nodes_without_mail_fields_still_decode() {
    let server = TestServer::start(|_| Reply::json(200, STATUS));
    let status = client(&[&server.url]).status().expect("status");
    assert!(status.blobs_missing.is_empty());
    assert_eq!(status.redundant, None);
}

#[test]
fn tls_and_mail_policy_routes() {
    let server = TestServer::start(|request| match request.target.as_str() {
        "/v1/tls" => Reply::json(200, r#"{"updated":true}"#),
        _ => Reply::json(
            200,
            r#"{"max-message-bytes":1000,"max-recipients":200,"degraded-accept":"refuse",
            "auth-without-tls":false,"max-connections":10,"imap-connections-per-ip":2,
            "max-errors":3,"smtp-idle-timeout-secs":60,"pop3-idle-timeout-secs":600}"#,
        ),
    });
    let client = client(&[&server.url]);
    client.set_client_tls("CERT", "KEY").expect("set tls");
    let mut changes = serde_json::Map::new();
    changes.insert("degraded-accept".to_owned(), "refuse".into());
    let policy = client.set_mail_policy(&changes).expect("set policy");
    assert_eq!(
        (policy.degraded_accept.as_str(), policy.max_recipients),
        ("refuse", 200)
    );
    let requests = server.requests();
    check_request(
        &requests[0],
        "PUT",
        "/v1/tls",
        r#"{"cert_pem":"CERT","key_pem":"KEY"}"#,
    );
    check_request(
        &requests[1],
        "PUT",
        "/v1/mail-policy",
        r#"{"degraded-accept":"refuse"}"#,
    );
}

#[test]
fn skips_unreachable_urls_and_remembers_the_one_that_answered() {
    let server = TestServer::start(|_| Reply::json(200, "[]"));
    let refused = refused_url();
    let client = client(&[&refused, &server.url]);
    assert!(client.domains().expect("domains").is_empty());
    assert!(client.domains().expect("domains again").is_empty());
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn an_error_answer_is_final() {
    let first = TestServer::start(|_| Reply::error(409, "exists", "domain example.test exists"));
    let second = TestServer::start(|_| Reply::json(201, "{}"));
    let err = client(&[&first.url, &second.url])
        .add_domain("example.test")
        .expect_err("409");
    let api_error = err.downcast_ref::<ApiError>().expect("an ApiError");
    assert_eq!(api_error.code, "exists");
    assert_eq!(error_status(&err), Some(409));
    assert!(
        format!("{err:#}").contains("409 exists: domain example.test exists"),
        "{err:#}"
    );
    assert!(second.requests().is_empty());
    check_request(
        &first.requests()[0],
        "POST",
        "/v1/domains",
        r#"{"name":"example.test"}"#,
    );
}

#[test]
fn retries_no_leader_until_a_leader_answers() {
    let calls = AtomicUsize::new(0);
    let server = TestServer::start(move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::error(503, "no_leader", "election in progress")
        } else {
            Reply::json(200, r#"{"leader":2}"#)
        }
    });
    let leader = client(&[&server.url]).failover(Some(2)).expect("failover");
    assert_eq!(leader, 2);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    check_request(&requests[2], "POST", "/v1/failover", r#"{"to":2}"#);
}

#[test]
fn gives_up_on_no_leader_after_its_patience() {
    let server = TestServer::start(|_| Reply::error(503, "no_leader", "no quorum"));
    let started = Instant::now();
    let err = client(&[&server.url])
        .with_no_leader_patience(Duration::from_millis(500))
        .status()
        .expect_err("no leader");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(format!("{err:#}").contains("no leader"), "{err:#}");
    assert_eq!(error_status(&err), Some(503));
    assert!(server.requests().len() >= 2);
}

#[test]
fn names_every_url_when_none_answers() {
    let (first, second) = (refused_url(), refused_url());
    let err = client(&[&first, &second])
        .members()
        .expect_err("unreachable");
    assert!(err.downcast_ref::<Unreachable>().is_some());
    let message = format!("{err:#}");
    assert!(
        message.contains(&first) && message.contains(&second),
        "{message}"
    );
}

#[test]
fn a_post_that_timed_out_is_not_sent_elsewhere() {
    let slow = TestServer::start(|_| Reply::json(200, "{}").after(Duration::from_secs(2)));
    let other = TestServer::start(|_| Reply::json(200, "{}"));
    let err = client(&[&slow.url, &other.url])
        .post::<_, serde_json::Value>(
            "/v1/domains",
            &serde_json::json!({}),
            Duration::from_millis(300),
        )
        .expect_err("timeout");
    assert!(format!("{err:#}").contains("may or may not"), "{err:#}");
    assert!(other.requests().is_empty());
}

#[test]
fn node_probe_has_its_own_timeout() {
    let slow = TestServer::start(|_| Reply::json(200, "{}").after(Duration::from_secs(3)));
    let started = Instant::now();
    let result = client(&["http://unused.invalid"]).node_at(&slow.url, Duration::from_millis(300));
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn failover_without_target_sends_empty_object() {
    let server = TestServer::start(|_| Reply::json(200, r#"{"leader":1}"#));
    client(&[&server.url]).failover(None).expect("failover");
    check_request(&server.requests()[0], "POST", "/v1/failover", "{}");
}

#[test]
fn account_routes_encode_addresses() {
    let server = TestServer::start(|request| match request.method.as_str() {
        "GET" => Reply::json(200, "[]"),
        _ => Reply::json(204, ""),
    });
    let client = client(&[&server.url]);
    client.accounts(Some("exa mple.test")).expect("list");
    client
        .set_enabled("a b@example.test", false)
        .expect("disable");
    client.set_password("a@example.test", "pw").expect("passwd");
    client.delete_account("a@example.test").expect("delete");
    let requests = server.requests();
    check_request(
        &requests[0],
        "GET",
        "/v1/accounts?domain=exa%20mple.test",
        "",
    );
    check_request(
        &requests[1],
        "PUT",
        "/v1/accounts/a%20b@example.test/enabled",
        r#"{"enabled":false}"#,
    );
    check_request(
        &requests[2],
        "PUT",
        "/v1/accounts/a@example.test/password",
        r#"{"password":"pw"}"#,
    );
    check_request(&requests[3], "DELETE", "/v1/accounts/a@example.test", "");
}

#[test]
fn error_without_json_body_still_reports_status() {
    let server = TestServer::start(|_| Reply::json(500, "internal trouble"));
    let err = client(&[&server.url]).domains().expect_err("500");
    let api_error = err.downcast_ref::<ApiError>().expect("an ApiError");
    assert_eq!((api_error.status, api_error.code.as_str()), (500, ""));
    assert!(format!("{err:#}").contains("internal trouble"), "{err:#}");
}

#[test]
fn encodes_path_components() {
    assert_eq!(encode_component("demo@example.test"), "demo@example.test");
    assert_eq!(encode_component("a/b c?d"), "a%2Fb%20c%3Fd");
    assert_eq!(encode_component("ü"), "%C3%BC");
}

#[test]
fn no_urls_is_an_error() {
    assert!(Client::new(Vec::new(), TOKEN, None).is_err());
}

/// `GET /v1/queue/{id}` as the node writes it: a held bounce (null sender) with one recipient
/// deferred and one delivered.
const QUEUE_ENTRY: &str = r#"{"id":"0001Q","blob":"abab","size":2048,"sender":"",
    "arrived_at":1700000000,"attempts":1,"next_attempt_at":1700000480,"held":true,
    "recipients":[
      {"address":"a@remote.test","state":"pending","attempts":1,"last_status":"4.4.1",
       "last_error":"connection refused","last_remote":"mx1.remote.test",
       "last_attempt_at":1700000100},
      {"address":"b@remote.test","state":"delivered","attempts":1,"last_status":null,
       "last_error":null,"last_remote":null,"last_attempt_at":null}]}"#;

#[test]
fn queue_routes_encode_ids_and_read_entries() {
    let listing = format!(r#"{{"total":7,"entries":[{QUEUE_ENTRY}]}}"#);
    let server = TestServer::start(move |request| {
        match (request.method.as_str(), request.target.as_str()) {
            ("GET", target) if target.starts_with("/v1/queue?") => Reply::json(200, &listing),
            ("POST", "/v1/queue/0001Q/release") => Reply::json(204, ""),
            ("DELETE", _) => Reply::json(204, ""),
            _ => Reply::json(200, QUEUE_ENTRY),
        }
    });
    let client = client(&[&server.url]);
    let page = client.queue(None, 100).expect("list");
    assert_eq!(page.total, 7);
    assert_eq!(page.entries.len(), 1);
    client.queue(Some("0001 Q/x"), 5).expect("list after");
    let entry = client.queued("0001Q").expect("show");
    assert_eq!(entry.sender, "");
    assert!(entry.held);
    assert_eq!(
        entry.recipients[0],
        QueueRecipient {
            address: "a@remote.test".to_owned(),
            state: "pending".to_owned(),
            attempts: 1,
            last_status: Some("4.4.1".to_owned()),
            last_error: Some("connection refused".to_owned()),
            last_remote: Some("mx1.remote.test".to_owned()),
            last_attempt_at: Some(1_700_000_100),
        }
    );
    let after_hold = client.queue_act("0001Q", QueueAction::Hold).expect("hold");
    assert_eq!(after_hold, Some(entry));
    // 204: the entry is gone.
    let gone = client
        .queue_act("0001Q", QueueAction::Release)
        .expect("release");
    assert_eq!(gone, None);
    client
        .queue_act("0001Q", QueueAction::Retry)
        .expect("retry");
    client.delete_queued("0001Q").expect("delete");
    let requests = server.requests();
    check_request(&requests[0], "GET", "/v1/queue?limit=100", "");
    check_request(
        &requests[1],
        "GET",
        "/v1/queue?limit=5&after=0001%20Q%2Fx",
        "",
    );
    check_request(&requests[2], "GET", "/v1/queue/0001Q", "");
    check_request(&requests[3], "POST", "/v1/queue/0001Q/hold", "");
    check_request(&requests[4], "POST", "/v1/queue/0001Q/release", "");
    check_request(&requests[5], "POST", "/v1/queue/0001Q/retry", "");
    check_request(&requests[6], "DELETE", "/v1/queue/0001Q", "");
}

#[test]
fn a_missing_queued_message_is_a_404() {
    let server =
        TestServer::start(|_| Reply::error(404, "not_found", "no such queued message: NOPE"));
    let err = client(&[&server.url]).queued("NOPE").expect_err("404");
    assert_eq!(error_status(&err), Some(404));
    assert!(
        format!("{err:#}").contains("no such queued message: NOPE"),
        "{err:#}"
    );
}
