use crate::checks::identical_state::check_listings;
use crate::history::{Listed, Listing};

/// User u's maildrop on `node`: (UIDL, Message-ID) pairs. Also used by the UID checks' tests.
pub(crate) fn listing(node: &str, messages: &[(&str, &str)]) -> Listing {
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

#[test]
fn identical_listings_pass_in_any_order() {
    let a = listing("n1", &[("1.1", "<a>"), ("1.2", "<b>")]);
    let b = listing("n2", &[("1.2", "<b>"), ("1.1", "<a>")]);
    assert!(check_listings(&[a, b]).is_empty());
}

#[test]
fn a_message_on_one_node_only_fails() {
    let a = listing("n1", &[("1.1", "<a>"), ("1.2", "<b>")]);
    let b = listing("n2", &[("1.1", "<a>")]);
    let problems = check_listings(&[a, b]);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("only on n1"), "{problems:?}");
}

#[test]
fn no_listing_fails() {
    assert_eq!(check_listings(&[]).len(), 1);
}
