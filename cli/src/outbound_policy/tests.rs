//! Tests for `mclusterctl outbound` against a scripted server: the table, KEY=VALUE parsing and
//! where the smarthost password comes from.

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::client_config::ClientConfig;
use crate::commands::Context;
use crate::outbound_policy::{
    OutboundPolicy, parse_settings, password_from_text, read_password, render, set, show,
};
use crate::test_server::{Reply, TestServer};

const TOKEN: &str = "abababababababababababababababababababababababababababababababab";

const POLICY_JSON: &str = r#"{"retry-interval-secs":2,"max-attempts":16,
    "delay-warning-secs":14400,"concurrency":25,"per-domain-concurrency":10,
    "tls":"opportunistic","smarthost":"127.0.0.1:2525","smarthost-mode":"on-failure",
    "smarthost-user":"u","smarthost-password-set":true}"#;

fn policy() -> OutboundPolicy {
    OutboundPolicy {
        retry_interval_secs: 2,
        max_attempts: 16,
        delay_warning_secs: 14_400,
        concurrency: 25,
        per_domain_concurrency: 10,
        tls: "opportunistic".to_owned(),
        smarthost: "127.0.0.1:2525".to_owned(),
        smarthost_mode: "on-failure".to_owned(),
        smarthost_user: "u".to_owned(),
        smarthost_password_set: true,
    }
}

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

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

#[test]
fn the_table_uses_the_keys_set_takes_and_hides_the_password() {
    let decoded: OutboundPolicy = serde_json::from_str(POLICY_JSON).expect("decode");
    assert_eq!(decoded, policy());
    assert_eq!(
        render(&policy()),
        "KEY                     VALUE\n\
         retry-interval-secs     2\n\
         max-attempts            16\n\
         delay-warning-secs      14400\n\
         concurrency             25\n\
         per-domain-concurrency  10\n\
         tls                     opportunistic\n\
         smarthost               127.0.0.1:2525\n\
         smarthost-mode          on-failure\n\
         smarthost-user          u\n\
         smarthost-password      (set)\n"
    );
    let without = OutboundPolicy {
        smarthost: String::new(),
        smarthost_mode: "never".to_owned(),
        smarthost_user: String::new(),
        smarthost_password_set: false,
        ..policy()
    };
    let text = render(&without);
    assert!(text.contains("smarthost               (none)\n"), "{text}");
    assert!(text.contains("smarthost-user          (none)\n"), "{text}");
    assert!(text.ends_with("smarthost-password      (none)\n"), "{text}");
}

#[test]
fn settings_keep_text_keys_as_text() {
    let changes = parse_settings(&strings(&[
        "retry-interval-secs=2",
        "smarthost=127.0.0.1:2525",
        "smarthost-mode=on-failure",
        "smarthost-user=1234",
        "smarthost-password=",
        "tls=required",
        "max-attempts=x",
    ]))
    .expect("parse");
    assert_eq!(
        serde_json::Value::Object(changes),
        json!({
            "retry-interval-secs": 2,
            "smarthost": "127.0.0.1:2525",
            "smarthost-mode": "on-failure",
            "smarthost-user": "1234",
            "smarthost-password": "",
            "tls": "required",
            // The cluster refuses it, naming the key.
            "max-attempts": "x",
        })
    );
    for (bad, message) in [
        ("retry-interval-secs", "expected KEY=VALUE"),
        ("=5", "expected KEY=VALUE"),
    ] {
        let err = parse_settings(&strings(&[bad])).expect_err(bad);
        assert!(err.to_string().contains(message), "{err}");
    }
    let err = parse_settings(&strings(&["concurrency=3", "concurrency=4"])).expect_err("twice");
    assert_eq!(
        err.to_string(),
        "outbound policy key concurrency is given twice"
    );
}

#[test]
fn a_password_is_one_line_without_its_line_end() {
    for (text, expected) in [
        ("pw", "pw"),
        ("pw\n", "pw"),
        ("pw\r\n", "pw"),
        (" spaced pw \n", " spaced pw "),
    ] {
        assert_eq!(password_from_text(text, "f").expect(text), expected);
    }
    for (text, message) in [
        ("", "no smarthost password in f"),
        ("\n", "no smarthost password in f"),
        ("pw\nmore\n", "f holds more than one line"),
        ("pw\n\n", "f holds more than one line"),
    ] {
        let err = password_from_text(text, "f").expect_err(text);
        assert!(err.to_string().contains(message), "{text:?}: {err}");
    }
    let dir = tempfile::tempdir().expect("create temp dir");
    let file = dir.path().join("smarthost.pw");
    fs::write(&file, "from-a-file\n").expect("write password file");
    assert_eq!(read_password(&file).expect("read"), "from-a-file");
    let err = read_password(&dir.path().join("missing")).expect_err("missing file");
    assert!(format!("{err:#}").contains("missing"), "{err:#}");
}

#[test]
fn set_sends_the_password_from_its_file_and_show_reads_the_policy() {
    let server = TestServer::start(|_| Reply::json(200, POLICY_JSON));
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let file = dir.path().join("smarthost.pw");
    fs::write(&file, "s3cret\n").expect("write password file");
    set(
        &ctx,
        &strings(&[
            "retry-interval-secs=2",
            "smarthost=127.0.0.1:2525",
            "smarthost-mode=on-failure",
            "smarthost-user=u",
        ]),
        Some(&file),
    )
    .expect("set");
    // The file alone is enough to change the password.
    set(&ctx, &[], Some(&file)).expect("set the password only");
    show(&ctx, false).expect("show");
    show(&ctx, true).expect("show --json");
    let requests = server.requests();
    let summary: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("PUT", "/v1/outbound-policy"),
            ("PUT", "/v1/outbound-policy"),
            ("GET", "/v1/outbound-policy"),
            ("GET", "/v1/outbound-policy"),
        ]
    );
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "retry-interval-secs": 2,
            "smarthost": "127.0.0.1:2525",
            "smarthost-mode": "on-failure",
            "smarthost-user": "u",
            "smarthost-password": "s3cret",
        })
    );
    let body: serde_json::Value = serde_json::from_str(&requests[1].body).expect("JSON body");
    assert_eq!(body, json!({"smarthost-password": "s3cret"}));
    assert_eq!(requests[0].authorization, Some(format!("Bearer {TOKEN}")));
}

#[test]
fn set_refuses_a_password_given_twice_or_nothing_before_sending() {
    let server = TestServer::start(|_| Reply::json(200, POLICY_JSON));
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let file = dir.path().join("smarthost.pw");
    fs::write(&file, "s3cret\n").expect("write password file");
    let err = set(&ctx, &strings(&["smarthost-password=x"]), Some(&file)).expect_err("twice");
    assert!(
        err.to_string()
            .contains("smarthost-password is given twice"),
        "{err}"
    );
    let err = set(&ctx, &[], None).expect_err("nothing");
    assert!(err.to_string().starts_with("nothing to set"), "{err}");
    let empty = dir.path().join("empty.pw");
    fs::write(&empty, "").expect("write empty file");
    let err = set(&ctx, &[], Some(&empty)).expect_err("empty file");
    assert!(
        err.to_string().contains("no smarthost password in"),
        "{err}"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn set_reports_the_cluster_refusal() {
    let server = TestServer::start(|_| {
        Reply::error(
            400,
            "bad_request",
            "retry-interval-secs must be between 1 and 86400",
        )
    });
    let dir = tempfile::tempdir().expect("create temp dir");
    let ctx = context_for(&server, dir.path());
    let err = set(&ctx, &strings(&["retry-interval-secs=0"]), None).expect_err("400");
    let message = format!("{err:#}");
    assert!(
        message.starts_with("set the outbound policy: "),
        "{message}"
    );
    assert!(
        message.contains("400 bad_request: retry-interval-secs must be between 1 and 86400"),
        "{message}"
    );
}
