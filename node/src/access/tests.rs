//! The matcher's decisions: which list wins, what each check looks at, expiry.

use std::net::IpAddr;

use raft_store::{AccessEntry, AccessList};

use crate::access::{Blocked, Compiled, Decision, check_comment};

const NOW: u64 = 1_000;

/// Lists from lines like `block 203.0.113.0/24 [comment]`, `allow *@partner.example`, and
/// `block 192.0.2.1 expires=NOW` (expired) or `expires=LATER`.
fn lists(lines: &[&str]) -> Compiled {
    let entries = lines
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace();
            let list: AccessList = words.next().unwrap().parse().unwrap();
            let pattern = words.next().unwrap().parse().unwrap();
            let mut expires_at = None;
            let mut comment = Vec::new();
            for word in words {
                match word {
                    "expires=NOW" => expires_at = Some(NOW),
                    "expires=LATER" => expires_at = Some(NOW + 1),
                    other => comment.push(other),
                }
            }
            AccessEntry {
                list,
                pattern,
                comment: (!comment.is_empty()).then(|| comment.join(" ")),
                created_at: 0,
                expires_at,
            }
        })
        .collect();
    Compiled::new(entries)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn blocked(reason: &str) -> Decision {
    Decision::Blocked(Blocked {
        reason: reason.into(),
    })
}

#[test]
fn clients_are_blocked_by_address_or_network_unless_allowed() {
    let lists = lists(&[
        "block 203.0.113.0/24 spam source",
        "block 2001:db8::/32",
        "allow 203.0.113.9",
        "block 198.51.100.1 expires=NOW",
        "block 198.51.100.2 expires=LATER",
        "block example.com",
    ]);
    assert_eq!(lists.client(ip("203.0.113.7"), NOW), blocked("spam source"));
    assert_eq!(
        lists.client(ip("::ffff:203.0.113.7"), NOW),
        blocked("spam source")
    );
    assert_eq!(
        lists.client(ip("2001:db8::5"), NOW),
        blocked("Access denied")
    );
    assert_eq!(lists.client(ip("203.0.113.9"), NOW), Decision::Allowed);
    assert_eq!(lists.client(ip("192.0.2.1"), NOW), Decision::Pass);
    assert_eq!(lists.client(ip("198.51.100.1"), NOW), Decision::Pass);
    assert_eq!(
        lists.client(ip("198.51.100.2"), NOW),
        blocked("Access denied")
    );
    assert!(lists.allowed_client(ip("203.0.113.9"), NOW));
    assert!(!lists.allowed_client(ip("203.0.113.7"), NOW));
}

#[test]
fn helo_and_senders_are_blocked_by_domain_or_address() {
    let lists = lists(&[
        "block *.spam.example bad helo",
        "block spam.example",
        "block *@bulk.example",
        "block bob@mixed.example",
        "allow 192.0.2.50",
        "allow good@bulk.example",
        "allow partner.spam.example",
    ]);
    let client = ip("192.0.2.1");
    assert_eq!(
        lists.helo(client, "mx.spam.example", NOW),
        blocked("bad helo")
    );
    assert_eq!(
        lists.helo(client, "MX.Spam.Example.", NOW),
        blocked("bad helo")
    );
    assert_eq!(
        lists.helo(client, "spam.example", NOW),
        blocked("Access denied")
    );
    assert_eq!(
        lists.helo(client, "partner.spam.example", NOW),
        Decision::Allowed
    );
    assert_eq!(lists.helo(client, "mail.example.org", NOW), Decision::Pass);
    assert_eq!(lists.helo(client, "[192.0.2.1]", NOW), Decision::Pass);
    assert_eq!(
        lists.helo(ip("192.0.2.50"), "mx.spam.example", NOW),
        Decision::Allowed
    );

    // Address entries (the sender's domain too, for domain entries).
    assert_eq!(
        lists.sender(client, "anyone@bulk.example", NOW),
        blocked("Access denied")
    );
    assert_eq!(
        lists.sender(client, "good@bulk.example", NOW),
        Decision::Allowed
    );
    assert_eq!(
        lists.sender(client, "bob@mixed.example", NOW),
        blocked("Access denied")
    );
    assert_eq!(
        lists.sender(client, "alice@mixed.example", NOW),
        Decision::Pass
    );
    assert_eq!(
        lists.sender(client, "x@a.spam.example", NOW),
        blocked("bad helo")
    );
    assert_eq!(
        lists.sender(client, "x@partner.spam.example", NOW),
        Decision::Allowed
    );
    assert_eq!(
        lists.sender(ip("192.0.2.50"), "bob@mixed.example", NOW),
        Decision::Allowed
    );
    assert!(lists.allowed_sender("good@bulk.example", NOW));
    assert!(lists.allowed_sender("x@partner.spam.example", NOW));
    assert!(!lists.allowed_sender("x@bulk.example", NOW));
}

#[test]
fn recipients_are_blocked_by_address_and_an_allowed_client_does_not_lift_that() {
    let lists = lists(&[
        "block gone@local.example mailbox closed",
        "block *@old.example",
        "allow postmaster@old.example",
        "allow 192.0.2.50",
        "block local.example",
    ]);
    assert_eq!(
        lists.recipient("gone@local.example", NOW),
        blocked("mailbox closed")
    );
    assert_eq!(
        lists.recipient("GONE@Local.Example", NOW),
        blocked("mailbox closed")
    );
    assert_eq!(
        lists.recipient("x@old.example", NOW),
        blocked("Access denied")
    );
    assert_eq!(
        lists.recipient("postmaster@old.example", NOW),
        Decision::Allowed
    );
    // Domain entries are about senders and HELO names, not recipients.
    assert_eq!(lists.recipient("alice@local.example", NOW), Decision::Pass);
}

#[test]
fn comments_must_fit_in_a_reply_line() {
    assert_eq!(check_comment("spam run, ticket 42"), Ok(()));
    assert!(
        check_comment("two\r\nlines")
            .unwrap_err()
            .contains("one line")
    );
    assert!(
        check_comment(&"x".repeat(201))
            .unwrap_err()
            .contains("at most 200")
    );
    assert!(check_comment("caf\u{e9}").unwrap_err().contains("ASCII"));
}
