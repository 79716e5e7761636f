use crate::checks::no_acked_mail_lost::check;
use crate::history::{Attempt, Deletion, Listed, Listing, Seen, WorkloadHistory};

fn attempt(id: &str, user: &str, code: Option<u16>, stage: &str) -> Attempt {
    Attempt {
        id: id.into(),
        token: format!("t-{id}"),
        user: user.into(),
        start: 1.0,
        end: 2.0,
        code,
        stage: stage.into(),
        error: None,
    }
}

fn listed(id: &str, uid: u32) -> Listed {
    Listed {
        uidl: format!("7.{uid}"),
        id: id.into(),
        token: format!("t-{id}"),
        body_ok: true,
        error: None,
    }
}

fn listing(node: &str, user: &str, messages: Vec<Listed>) -> Listing {
    Listing {
        node: node.into(),
        users: [(user.to_owned(), messages)].into_iter().collect(),
    }
}

fn history(attempts: Vec<Attempt>) -> WorkloadHistory {
    WorkloadHistory {
        attempts,
        finished: true,
        ..WorkloadHistory::default()
    }
}

/// The reader deleted <a> (UIDL 7.1) at t = 5: certainly (QUIT answered +OK) or maybe.
fn deletion_of_a(certain: bool) -> Deletion {
    Deletion {
        user: "u".into(),
        uidl: "7.1".into(),
        id: "<a>".into(),
        t: 5.0,
        certain,
    }
}

#[test]
fn clean_history_passes() {
    let h = history(vec![
        attempt("<a>", "u", Some(250), "done"),
        attempt("<b>", "u", None, "data"),
        attempt("<c>", "u", None, "connect"),
    ]);
    // <b> may or may not have been delivered: both are fine.
    let l1 = listing("n1", "u", vec![listed("<a>", 1), listed("<b>", 2)]);
    let l2 = listing("n2", "u", vec![listed("<a>", 1), listed("<b>", 2)]);
    let result = check(&h, &[l1, l2]);
    assert_eq!(result.acknowledged, 1);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
}

#[test]
fn an_acked_message_missing_on_one_node_is_lost() {
    let h = history(vec![attempt("<a>", "u", Some(250), "done")]);
    let l1 = listing("n1", "u", vec![listed("<a>", 1)]);
    let l2 = listing("n2", "u", vec![]);
    let result = check(&h, &[l1, l2]);
    assert_eq!(result.lost.len(), 1);
    assert!(
        result.problems[0].contains("missing on n2"),
        "{:?}",
        result.problems
    );
}

#[test]
fn a_corrupt_body_counts_as_lost() {
    let h = history(vec![attempt("<a>", "u", Some(250), "done")]);
    let mut bad = listed("<a>", 1);
    bad.body_ok = false;
    let result = check(&h, &[listing("n1", "u", vec![bad])]);
    assert_eq!(result.lost.len(), 1);
}

#[test]
fn duplicates_phantoms_and_refused_deliveries_are_caught() {
    let h = history(vec![
        attempt("<a>", "u", Some(250), "done"),
        attempt("<r>", "u", Some(451), "data"),
        attempt("<o>", "other", Some(250), "done"),
    ]);
    let l = listing(
        "n1",
        "u",
        vec![
            listed("<a>", 1),
            listed("<a>", 2),
            listed("<never>", 3),
            listed("<r>", 4),
            listed("<o>", 5),
        ],
    );
    let result = check(&h, &[l]);
    assert_eq!(result.duplicated.len(), 1);
    let phantoms: Vec<&str> = result.phantom.iter().map(String::as_str).collect();
    assert_eq!(phantoms, ["<never>", "<o>", "<r>"]);
}

#[test]
fn deleted_messages_may_not_come_back() {
    let mut h = history(vec![attempt("<a>", "u", Some(250), "done")]);
    h.deletions.push(deletion_of_a(true));
    h.seen.push(Seen {
        user: "u".into(),
        uidl: "7.1".into(),
        id: "<a>".into(),
        t: 6.0,
    });
    // Deleted and absent at the end is fine; seen after the deletion is not.
    let result = check(&h, &[listing("n1", "u", vec![])]);
    assert!(result.lost.is_empty());
    assert_eq!(result.resurrected.len(), 1);
    let result = check(&h, &[listing("n1", "u", vec![listed("<a>", 1)])]);
    assert_eq!(result.resurrected.len(), 1);
}

#[test]
fn a_maybe_deleted_message_may_be_absent() {
    let mut h = history(vec![attempt("<a>", "u", Some(250), "done")]);
    h.deletions.push(deletion_of_a(false));
    let result = check(&h, &[listing("n1", "u", vec![])]);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
}

#[test]
fn an_unretrievable_acked_message_is_lost() {
    let h = history(vec![attempt("<a>", "u", Some(250), "done")]);
    let mut broken = listed("", 1);
    broken.token = String::new();
    broken.body_ok = false;
    broken.error = Some("-ERR [SYS/TEMP] message unavailable".into());
    let result = check(&h, &[listing("n1", "u", vec![broken])]);
    assert_eq!(result.lost.len(), 1);
    assert!(result.phantom.is_empty());
    assert!(
        result
            .problems
            .iter()
            .any(|p| p.starts_with("unretrievable")),
        "{:?}",
        result.problems
    );
}
