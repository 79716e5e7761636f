//! Checking `POST /v1/access-lists` bodies, without a cluster.

use serde_json::{Value, json};

use crate::admin_api::access_lists::{NewEntry, new_entry, view_of};

const NOW: u64 = 1_700_000_000;

fn body(value: Value) -> NewEntry {
    serde_json::from_value(value).expect("a body of known keys")
}

/// The entry made from `value`, as the API would show it.
#[track_caller]
fn check_added(value: Value, expected: Value) {
    match new_entry(body(value.clone()), NOW) {
        Ok(entry) => {
            let shown = serde_json::to_value(view_of(&entry, NOW)).unwrap();
            assert_eq!(shown, expected, "{value}");
        }
        Err(why) => panic!("{value} was refused: {why}"),
    }
}

#[track_caller]
fn check_refused(value: Value, expected_fragment: &str) {
    match new_entry(body(value.clone()), NOW) {
        Ok(entry) => panic!("{value} was accepted: {entry:?}"),
        Err(why) => assert!(
            why.contains(expected_fragment),
            "{value}: {why:?} does not mention {expected_fragment:?}"
        ),
    }
}

#[test]
fn entries_are_made_in_canonical_form_with_their_expiry() {
    check_added(
        json!({"list": "block", "pattern": "203.0.113.0/24", "comment": "spam run",
               "expires-in-secs": 3600}),
        json!({"list": "block", "kind": "network", "pattern": "203.0.113.0/24",
               "comment": "spam run", "created-at": NOW, "expires-at": NOW + 3600,
               "active": true}),
    );
    check_added(
        json!({"list": "Allow", "pattern": "*@Partner.Example", "comment": "  "}),
        json!({"list": "allow", "kind": "address", "pattern": "*@partner.example",
               "comment": null, "created-at": NOW, "expires-at": null, "active": true}),
    );
    check_added(
        json!({"list": "block", "pattern": "*.spam.example", "expires-at": NOW + 60}),
        json!({"list": "block", "kind": "domain", "pattern": "*.spam.example",
               "comment": null, "created-at": NOW, "expires-at": NOW + 60, "active": true}),
    );
}

#[test]
fn bad_entries_are_refused_with_the_reason() {
    check_refused(
        json!({"list": "deny", "pattern": "192.0.2.1"}),
        "block or allow",
    );
    check_refused(
        json!({"list": "block", "pattern": "192.0.2.1/24"}),
        "did you mean 192.0.2.0/24",
    );
    check_refused(
        json!({"list": "block", "pattern": "sp*m.example"}),
        "wildcard goes only at the start",
    );
    check_refused(
        json!({"list": "block", "pattern": "192.0.2.1", "comment": "a\r\n250 ok"}),
        "one line",
    );
    check_refused(
        json!({"list": "block", "pattern": "192.0.2.1", "expires-in-secs": 0}),
        "between 1 and",
    );
    check_refused(
        json!({"list": "block", "pattern": "192.0.2.1", "expires-at": NOW}),
        "not in the future",
    );
    check_refused(
        json!({"list": "block", "pattern": "192.0.2.1", "expires-at": NOW + 10,
               "expires-in-secs": 10}),
        "not both",
    );
}

#[test]
fn unknown_keys_are_refused() {
    let parsed: Result<NewEntry, _> =
        serde_json::from_value(json!({"list": "block", "pattern": "192.0.2.1", "expires": 5}));
    assert!(parsed.is_err());
}
