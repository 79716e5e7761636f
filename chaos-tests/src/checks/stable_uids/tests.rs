use crate::checks::identical_state::tests::listing;
use crate::checks::stable_uids::check;
use crate::history::{Listing, Seen, WorkloadHistory};

/// What the workload saw of u's maildrop through the VIP: (UIDL, Message-ID) pairs.
fn history(seen: &[(&str, &str)]) -> WorkloadHistory {
    WorkloadHistory {
        seen: seen
            .iter()
            .map(|(uidl, id)| Seen {
                user: "u".into(),
                uidl: (*uidl).into(),
                id: (*id).into(),
                t: 1.0,
            })
            .collect(),
        ..WorkloadHistory::default()
    }
}

/// Checks what the VIP showed (`seen`) and what the nodes listed; some problem must mention
/// `needle`.
#[track_caller]
fn assert_fails(seen: &[(&str, &str)], listings: &[Listing], needle: &str) {
    let result = check(&history(seen), listings);
    assert!(
        result.problems.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle:?}: {:?}",
        result.problems
    );
}

#[test]
fn consistent_observations_pass() {
    let result = check(
        &history(&[("9.1", "<a>"), ("9.2", "<b>")]),
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
    let listings = [listing("n1", &[("10.1", "<a>")])];
    assert_fails(&[("9.1", "<a>")], &listings, "UIDVALIDITY");
}

#[test]
fn a_reused_uid_fails() {
    let listings = [listing("n1", &[("9.1", "<b>")])];
    assert_fails(&[("9.1", "<a>")], &listings, "UID 1");
}

#[test]
fn a_renumbered_message_fails() {
    let listings = [
        listing("n1", &[("9.1", "<a>")]),
        listing("n2", &[("9.2", "<a>")]),
    ];
    assert_fails(&[], &listings, "several UIDs");
}

#[test]
fn a_malformed_uidl_fails() {
    let result = check(&history(&[]), &[listing("n1", &[("x", "<a>")])]);
    assert_eq!(result.problems.len(), 1);
}
