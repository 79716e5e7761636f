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

/// The index finds exactly what trying every entry with raft-store's own matching finds: one
/// entry at a time, and all of them in one list.
#[test]
fn the_index_agrees_with_matching_every_entry() {
    let patterns = [
        "203.0.113.0/24",
        "203.0.113.7",
        "203.0.0.0/8",
        "0.0.0.0/0",
        "2001:db8::/32",
        "2001:db8::1",
        "::/0",
        "example.com",
        "*.example.com",
        "*.com",
        "user@example.com",
        "*@example.com",
        "user@*",
        "*@*.example.com",
        "USER@Mail.Example.com",
    ];
    let ips = [
        "203.0.113.7",
        "203.0.113.8",
        "203.1.0.1",
        "::ffff:203.0.113.7",
        "2001:db8::1",
        "2001:db8::2",
        "2001:db9::1",
        "10.0.0.1",
    ];
    let domains = [
        "example.com",
        "EXAMPLE.COM.",
        "mail.example.com",
        "a.b.example.com",
        "badexample.com",
        "com",
        "example.org",
    ];
    let addresses = [
        "user@example.com",
        "User@Example.Com",
        "other@example.com",
        "user@mail.example.com",
        "user@example.org",
        "x@a.b.example.com",
        "user@EXAMPLE.COM.",
        "no-domain",
    ];
    let client = ip("192.0.2.1");
    let check = |chosen: &[&str]| {
        let parsed: Vec<raft_store::AccessPattern> =
            chosen.iter().map(|p| p.parse().unwrap()).collect();
        let lines: Vec<String> = chosen.iter().map(|p| format!("block {p}")).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let lists = lists(&lines);
        let any = |f: &dyn Fn(&raft_store::AccessPattern) -> bool| parsed.iter().any(f);
        for text in ips {
            let expected = any(&|p| p.matches_ip(ip(text)));
            let got = lists.client(ip(text), NOW) != Decision::Pass;
            assert_eq!(got, expected, "{chosen:?} client {text}");
        }
        for text in domains {
            let expected = any(&|p| p.matches_domain(text));
            let got = lists.helo(client, text, NOW) != Decision::Pass;
            assert_eq!(got, expected, "{chosen:?} helo {text}");
        }
        for text in addresses {
            let domain = text.rsplit_once('@').map(|(_, d)| d);
            let expected_sender =
                any(&|p| p.matches_address(text) || domain.is_some_and(|d| p.matches_domain(d)));
            let got = lists.sender(client, text, NOW) != Decision::Pass;
            assert_eq!(got, expected_sender, "{chosen:?} sender {text}");
            let expected_rcpt = any(&|p| p.matches_address(text));
            let got = lists.recipient(text, NOW) != Decision::Pass;
            assert_eq!(got, expected_rcpt, "{chosen:?} recipient {text}");
        }
    };
    for pattern in patterns {
        check(&[pattern]);
    }
    check(&patterns);
}

#[test]
fn the_most_specific_network_gives_the_reason() {
    let lists = lists(&[
        "block 203.0.0.0/8 wide",
        "block 203.0.113.0/24 narrow",
        "block 203.0.113.7 exact",
    ]);
    assert_eq!(lists.client(ip("203.0.113.7"), NOW), blocked("exact"));
    assert_eq!(lists.client(ip("203.0.113.8"), NOW), blocked("narrow"));
    assert_eq!(lists.client(ip("203.9.9.9"), NOW), blocked("wide"));
}
