use crate::checks::stable_uids::check;
use crate::history::{Listed, Listing, Seen, WorkloadHistory};

fn listing(node: &str, messages: &[(&str, &str)]) -> Listing {
    let messages = messages
        .iter()
        .map(|(uidl, id)| Listed {
            uidl: (*uidl).into(),
            id: (*id).into(),
            token: String::new(),
            body_ok: true,
            error: None,
        })
        .collect();
    Listing {
        node: node.into(),
        users: [("u".to_owned(), messages)].into_iter().collect(),
    }
}

fn seen(uidl: &str, id: &str) -> Seen {
    Seen {
        user: "u".into(),
        uidl: uidl.into(),
        id: id.into(),
        t: 1.0,
    }
}

#[test]
fn consistent_observations_pass() {
    let h = WorkloadHistory {
        seen: vec![seen("9.1", "<a>"), seen("9.2", "<b>")],
        ..WorkloadHistory::default()
    };
    let result = check(
        &h,
        &[
            listing("n1", &[("9.1", "<a>")]),
            listing("n2", &[("9.1", "<a>")]),
        ],
    );
    assert_eq!(result.observations, 4);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
}

#[test]
fn a_changed_uidvalidity_fails() {
    let h = WorkloadHistory {
        seen: vec![seen("9.1", "<a>")],
        ..WorkloadHistory::default()
    };
    let result = check(&h, &[listing("n1", &[("10.1", "<a>")])]);
    assert!(
        result.problems.iter().any(|p| p.contains("UIDVALIDITY")),
        "{:?}",
        result.problems
    );
}

#[test]
fn a_reused_uid_fails() {
    let h = WorkloadHistory {
        seen: vec![seen("9.1", "<a>")],
        ..WorkloadHistory::default()
    };
    let result = check(&h, &[listing("n1", &[("9.1", "<b>")])]);
    assert!(
        result.problems.iter().any(|p| p.contains("UID 1")),
        "{:?}",
        result.problems
    );
}

#[test]
fn a_renumbered_message_fails() {
    let result = check(
        &WorkloadHistory::default(),
        &[
            listing("n1", &[("9.1", "<a>")]),
            listing("n2", &[("9.2", "<a>")]),
        ],
    );
    assert!(
        result.problems.iter().any(|p| p.contains("several UIDs")),
        "{:?}",
        result.problems
    );
}

#[test]
fn a_malformed_uidl_fails() {
    let result = check(
        &WorkloadHistory::default(),
        &[listing("n1", &[("x", "<a>")])],
    );
    assert_eq!(result.problems.len(), 1);
}
