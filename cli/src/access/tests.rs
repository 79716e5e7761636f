//! `mclusterctl access`: request bodies, time spans and the table.

use serde_json::{Value, json};

use super::*;

#[test]
fn spans_are_read_with_their_units() {
    assert_eq!(parse_span("90").unwrap(), 90);
    assert_eq!(parse_span("90s").unwrap(), 90);
    assert_eq!(parse_span("30m").unwrap(), 1_800);
    assert_eq!(parse_span("1h").unwrap(), 3_600);
    assert_eq!(parse_span("7d").unwrap(), 604_800);
    assert_eq!(parse_span("2w").unwrap(), 1_209_600);
    for bad in ["", "h", "1y", "1.5h", "-1h", "99999999999999999999w"] {
        assert!(parse_span(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn an_add_sends_the_span_in_seconds() {
    let body = add_body("block", "203.0.113.0/24", Some("spam run"), Some("1h")).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({"list": "block", "pattern": "203.0.113.0/24", "comment": "spam run",
               "expires-in-secs": 3600})
    );
    let body = add_body("allow", "*@partner.example", None, None).unwrap();
    assert_eq!(
        Value::Object(body),
        json!({"list": "allow", "pattern": "*@partner.example"})
    );
}

#[test]
fn entries_show_as_a_table_with_expiry() {
    let entry = |pattern: &str, expires_at, active| AccessEntry {
        list: "block".into(),
        kind: "network".into(),
        pattern: pattern.into(),
        comment: Some("why".into()),
        created_at: 0,
        expires_at,
        active,
    };
    let text = render(&[
        entry("192.0.2.1", None, true),
        entry("192.0.2.2", Some(86_400), false),
    ]);
    assert!(text.contains("PATTERN"), "{text}");
    assert!(text.contains("never"), "{text}");
    assert!(text.contains("(expired)"), "{text}");
}
