//! Merging and checking outbound policy changes, without a cluster.

use raft_store::{OutboundPolicy, OutboundTls, SmarthostMode};
use serde_json::{Map, Value, json};

use crate::admin_api::outbound_policy::{merge, view_of};

fn changes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A policy with a smarthost and credentials, as an operator would have set it.
fn with_smarthost() -> OutboundPolicy {
    OutboundPolicy {
        smarthost: "relay.example.net:587".into(),
        smarthost_mode: SmarthostMode::OnFailure,
        smarthost_user: "u".into(),
        smarthost_password: "old-secret".into(),
        ..OutboundPolicy::default()
    }
}

#[track_caller]
fn check_refused(current: &OutboundPolicy, change: Value, expected_fragment: &str) {
    match merge(current, changes(change.clone())) {
        Ok(policy) => panic!("{change} was accepted: {policy:?}"),
        Err(message) => assert!(
            message.contains(expected_fragment),
            "{change}: {message:?} does not mention {expected_fragment:?}"
        ),
    }
}

#[track_caller]
fn check_merged(current: &OutboundPolicy, change: Value, expected: &OutboundPolicy) {
    match merge(current, changes(change.clone())) {
        Ok(policy) => assert!(
            policy == *expected,
            "{change}: got {policy:?}, expected {expected:?}"
        ),
        Err(message) => panic!("{change} was refused: {message}"),
    }
}

#[test]
fn changes_merge_into_the_current_policy() {
    let defaults = OutboundPolicy::default();
    check_merged(&defaults, json!({}), &defaults);
    check_merged(
        &defaults,
        json!({
            "retry-interval-secs": 2,
            "smarthost": "127.0.0.1:2525",
            "smarthost-mode": "on-failure",
            "smarthost-user": "u",
            "smarthost-password": "p",
        }),
        &OutboundPolicy {
            retry_interval_secs: 2,
            smarthost: "127.0.0.1:2525".into(),
            smarthost_mode: SmarthostMode::OnFailure,
            smarthost_user: "u".into(),
            smarthost_password: "p".into(),
            ..OutboundPolicy::default()
        },
    );
    check_merged(
        &defaults,
        json!({
            "max-attempts": 1000,
            "delay-warning-secs": 0,
            "concurrency": 1,
            "per-domain-concurrency": 1,
            "tls": "required",
        }),
        &OutboundPolicy {
            max_attempts: 1000,
            delay_warning_secs: 0,
            concurrency: 1,
            per_domain_concurrency: 1,
            tls: OutboundTls::Required,
            ..OutboundPolicy::default()
        },
    );
}

#[test]
fn the_stored_password_stays_unless_one_is_given() {
    let current = with_smarthost();
    check_merged(
        &current,
        json!({"retry-interval-secs": 600}),
        &OutboundPolicy {
            retry_interval_secs: 600,
            ..with_smarthost()
        },
    );
    // A new user with the stored password, a new password for the stored user.
    check_merged(
        &current,
        json!({"smarthost-user": "v"}),
        &OutboundPolicy {
            smarthost_user: "v".into(),
            ..with_smarthost()
        },
    );
    check_merged(
        &current,
        json!({"smarthost-password": "new-secret"}),
        &OutboundPolicy {
            smarthost_password: "new-secret".into(),
            ..with_smarthost()
        },
    );
    // Credentials and smarthost go away together.
    check_merged(
        &current,
        json!({"smarthost": "", "smarthost-mode": "never", "smarthost-user": "",
               "smarthost-password": ""}),
        &OutboundPolicy::default(),
    );
}

#[test]
fn unknown_and_read_only_keys_are_refused_by_name() {
    let defaults = OutboundPolicy::default();
    check_refused(
        &defaults,
        json!({"retry-interval": 60}),
        "unknown outbound policy key \"retry-interval\" (known keys: ",
    );
    check_refused(&defaults, json!({"retry_interval_secs": 60}), "unknown");
    check_refused(
        &defaults,
        json!({"smarthost-password-set": true}),
        "smarthost-password-set is read-only",
    );
}

#[test]
fn values_of_the_wrong_type_are_refused_by_key() {
    let defaults = OutboundPolicy::default();
    for (change, fragment) in [
        (
            json!({"retry-interval-secs": "60"}),
            "retry-interval-secs: invalid type",
        ),
        (json!({"max-attempts": -1}), "max-attempts: invalid value"),
        (
            json!({"max-attempts": 5_000_000_000_u64}),
            "max-attempts: invalid value",
        ),
        (json!({"concurrency": 2.5}), "concurrency: invalid type"),
        (
            json!({"tls": "sometimes"}),
            "tls: unknown variant `sometimes`",
        ),
        (
            json!({"smarthost-mode": "fallback"}),
            "smarthost-mode: unknown variant",
        ),
        (json!({"smarthost": null}), "smarthost: invalid type: null"),
        (json!({"smarthost-user": 7}), "smarthost-user: invalid type"),
    ] {
        check_refused(&defaults, change, fragment);
    }
}

#[test]
fn numbers_out_of_range_are_refused_by_key() {
    let defaults = OutboundPolicy::default();
    for (change, fragment) in [
        (
            json!({"retry-interval-secs": 0}),
            "retry-interval-secs must be between 1 and 86400",
        ),
        (
            json!({"retry-interval-secs": 86_401}),
            "retry-interval-secs must be",
        ),
        (
            json!({"max-attempts": 0}),
            "max-attempts must be between 1 and 1000",
        ),
        (json!({"max-attempts": 1001}), "max-attempts must be"),
        (
            json!({"delay-warning-secs": 365 * 86_400 + 1}),
            "delay-warning-secs must be",
        ),
        (
            json!({"concurrency": 0}),
            "concurrency must be between 1 and 1000",
        ),
        (json!({"concurrency": 1001}), "concurrency must be"),
        // The default per-domain limit (10) is over the new total.
        (
            json!({"concurrency": 5}),
            "per-domain-concurrency must be between 1 and concurrency (5)",
        ),
        (
            json!({"per-domain-concurrency": 0}),
            "per-domain-concurrency must be",
        ),
        (
            json!({"per-domain-concurrency": 26}),
            "per-domain-concurrency must be",
        ),
    ] {
        check_refused(&defaults, change, fragment);
    }
    check_merged(
        &defaults,
        json!({"retry-interval-secs": 86_400, "delay-warning-secs": 60,
               "concurrency": 1000, "per-domain-concurrency": 1000}),
        &OutboundPolicy {
            retry_interval_secs: 86_400,
            delay_warning_secs: 60,
            concurrency: 1000,
            per_domain_concurrency: 1000,
            ..OutboundPolicy::default()
        },
    );
}

#[test]
fn smarthosts_are_host_and_port() {
    let defaults = OutboundPolicy::default();
    for good in [
        "relay.example.net:587",
        "relay.example.net.:25",
        "localhost:2525",
        "127.0.0.1:2525",
        "[2001:db8::25]:587",
        "[::1]:65535",
        "[relay.example.net]:25",
    ] {
        let merged = merge(&defaults, changes(json!({"smarthost": good})));
        assert!(merged.is_ok(), "{good}: {merged:?}");
    }
    for (bad, fragment) in [
        (
            "relay.example.net",
            "smarthost \"relay.example.net\": expected host:port",
        ),
        (
            "relay.example.net:",
            "port \"\" is not a number from 1 to 65535",
        ),
        ("relay.example.net:0", "port \"0\" is not"),
        ("relay.example.net:65536", "port \"65536\" is not"),
        ("relay.example.net:+25", "port \"+25\" is not"),
        (":25", "\"\" is neither an IP address nor a host name"),
        (
            "relay_1.example.net:25",
            "is neither an IP address nor a host name",
        ),
        ("-relay.example.net:25", "is neither"),
        ("2001:db8::25:587", "write an IPv6 address in brackets"),
        ("[2001:db8::25:587", "expected [host]:port"),
        ("[2001:db8::25]", "expected [host]:port"),
        ("[]:25", "is neither"),
        ("relay example:25", "is neither"),
    ] {
        check_refused(&defaults, json!({"smarthost": bad}), fragment);
    }
}

#[test]
fn smarthost_modes_and_credentials_need_what_they_use() {
    let defaults = OutboundPolicy::default();
    check_refused(
        &defaults,
        json!({"smarthost-mode": "on-failure"}),
        "smarthost-mode on-failure needs a smarthost (host:port)",
    );
    check_refused(
        &defaults,
        json!({"smarthost-mode": "always"}),
        "smarthost-mode always needs a smarthost",
    );
    // Taking the smarthost away from a policy that uses it.
    check_refused(
        &with_smarthost(),
        json!({"smarthost": ""}),
        "smarthost-mode on-failure needs a smarthost",
    );
    check_refused(
        &defaults,
        json!({"smarthost": "127.0.0.1:2525", "smarthost-user": "u"}),
        "smarthost-user needs a smarthost-password",
    );
    check_refused(
        &with_smarthost(),
        json!({"smarthost-password": ""}),
        "smarthost-user needs a smarthost-password",
    );
    check_refused(
        &with_smarthost(),
        json!({"smarthost-password": "a\r\nQUIT"}),
        "smarthost-password must not contain NUL, CR or LF",
    );
    check_refused(
        &with_smarthost(),
        json!({"smarthost-user": "u\u{0}x"}),
        "smarthost-user must not contain",
    );
    check_refused(
        &with_smarthost(),
        json!({"smarthost-password": "x".repeat(1025)}),
        "smarthost-password is longer than 1024 bytes",
    );
    // A smarthost kept for later while mail goes to the MX hosts.
    check_merged(
        &with_smarthost(),
        json!({"smarthost-mode": "never"}),
        &OutboundPolicy {
            smarthost_mode: SmarthostMode::Never,
            ..with_smarthost()
        },
    );
}

#[test]
fn the_view_never_holds_the_password() {
    let view = serde_json::to_value(view_of(&with_smarthost())).expect("encode");
    assert_eq!(
        view,
        json!({
            "retry-interval-secs": 480,
            "max-attempts": 16,
            "delay-warning-secs": 3_600,
            "concurrency": 25,
            "per-domain-concurrency": 10,
            "tls": "opportunistic",
            "smarthost": "relay.example.net:587",
            "smarthost-mode": "on-failure",
            "smarthost-user": "u",
            "smarthost-password-set": true,
        })
    );
    assert!(!view.to_string().contains("old-secret"), "{view}");
    let view = view_of(&OutboundPolicy::default());
    assert!(!view.smarthost_password_set);
}
