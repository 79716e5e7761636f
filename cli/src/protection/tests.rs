use serde_json::{Value, json};

use super::*;

fn settings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_network_list_is_sent_as_a_list() {
    let changes = policy_changes(&settings(&[
        "exempt-networks=127.0.0.0/8, 10.1.0.0/16,",
        "imap-connections-per-minute-per-ip=600",
        "sender-login-match=false",
    ]))
    .unwrap();
    assert_eq!(
        Value::Object(changes),
        json!({
            "exempt-networks": ["127.0.0.0/8", "10.1.0.0/16"],
            "imap-connections-per-minute-per-ip": 600,
            "sender-login-match": false,
        })
    );
    let none = policy_changes(&settings(&["exempt-networks="])).unwrap();
    assert_eq!(none["exempt-networks"], json!([]));
    assert!(policy_changes(&settings(&["nonsense"])).is_err());
}

#[test]
fn the_policy_shows_as_set_takes_it() {
    let policy = json!({
        "imap-connections-per-minute-per-ip": 300,
        "exempt-networks": ["127.0.0.0/8", "::1/128"],
        "sender-login-match": true,
    });
    let Value::Object(policy) = policy else {
        unreachable!()
    };
    let text = render_policy(&policy);
    assert!(
        text.contains("exempt-networks                     127.0.0.0/8,::1/128\n"),
        "{text}"
    );
    assert!(
        text.contains("sender-login-match                  true\n"),
        "{text}"
    );
}

#[test]
fn lockouts_render_as_a_table() {
    let text = render_lockouts(&[Lockout {
        target: "ip:192.0.2.1".into(),
        since: 0,
        until: 900,
        reason: "20 failed logins within 900 s".into(),
        active: true,
    }]);
    assert!(text.starts_with("TARGET"), "{text}");
    assert!(text.contains("ip:192.0.2.1"), "{text}");
    assert!(text.contains("20 failed logins within 900 s"), "{text}");
}
