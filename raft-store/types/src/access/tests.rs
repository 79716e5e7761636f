//! Parsing and matching access list patterns.

use std::net::IpAddr;

use crate::access::{AccessEntry, AccessList, AccessPattern};

#[track_caller]
fn pattern(text: &str) -> AccessPattern {
    text.parse()
        .unwrap_or_else(|why| panic!("{text:?} was refused: {why}"))
}

/// `text` parses, and writes back as `canonical`.
#[track_caller]
fn check_canonical(text: &str, canonical: &str, kind: &str) {
    let parsed = pattern(text);
    assert_eq!(parsed.to_string(), canonical, "{text:?}");
    assert_eq!(parsed.kind(), kind, "{text:?}");
    assert_eq!(pattern(canonical), parsed, "{canonical:?} reads back");
}

#[track_caller]
fn check_refused(text: &str, expected_fragment: &str) {
    match text.parse::<AccessPattern>() {
        Ok(parsed) => panic!("{text:?} was accepted as {parsed:?}"),
        Err(why) => assert!(
            why.contains(expected_fragment),
            "{text:?}: {why:?} does not mention {expected_fragment:?}"
        ),
    }
}

/// Which of `candidates` the pattern matches, as IPs, domains or addresses by their shape.
#[track_caller]
fn check_matches(text: &str, matching: &[&str], not_matching: &[&str]) {
    let parsed = pattern(text);
    let matches = |candidate: &str| match candidate.parse::<IpAddr>() {
        Ok(ip) => parsed.matches_ip(ip),
        Err(_) if candidate.contains('@') => parsed.matches_address(candidate),
        Err(_) => parsed.matches_domain(candidate),
    };
    for candidate in matching {
        assert!(matches(candidate), "{text:?} should match {candidate:?}");
    }
    for candidate in not_matching {
        assert!(
            !matches(candidate),
            "{text:?} should not match {candidate:?}"
        );
    }
}

#[test]
fn patterns_are_read_in_a_canonical_form() {
    check_canonical("203.0.113.7", "203.0.113.7", "network");
    check_canonical("203.0.113.7/32", "203.0.113.7", "network");
    check_canonical("203.0.113.0/24", "203.0.113.0/24", "network");
    check_canonical("0.0.0.0/0", "0.0.0.0/0", "network");
    check_canonical("2001:DB8::/32", "2001:db8::/32", "network");
    check_canonical("2001:db8::1", "2001:db8::1", "network");
    check_canonical("::ffff:192.0.2.1", "192.0.2.1", "network");
    check_canonical(" Example.COM. ", "example.com", "domain");
    check_canonical("*.Example.com", "*.example.com", "domain");
    check_canonical("User@Example.com", "user@example.com", "address");
    check_canonical("*@example.com", "*@example.com", "address");
    check_canonical("user@*", "user@*", "address");
    check_canonical("*@*.example.com", "*@*.example.com", "address");
}

#[test]
fn bad_patterns_are_refused_with_the_reason() {
    check_refused("", "empty pattern");
    check_refused(
        "203.0.113.7/24",
        "host bits set: did you mean 203.0.113.0/24",
    );
    check_refused("2001:db8::1/32", "did you mean 2001:db8::/32");
    check_refused("203.0.113.0/33", "at most 32");
    check_refused("2001:db8::/129", "at most 128");
    check_refused("203.0.113.0/x", "not a prefix length");
    check_refused("203.0.113.300/24", "not an IP address");
    check_refused("2001:db8::zz", "not an IP address");
    check_refused("*", "every domain");
    check_refused("ex*ample.com", "wildcard goes only at the start");
    check_refused("example.*", "wildcard goes only at the start");
    check_refused("*example.com", "wildcard goes only at the start");
    check_refused("a.*.example.com", "wildcard goes only at the start");
    check_refused("exa mple.com", "no spaces");
    check_refused("example..com", "empty label");
    check_refused("-example.com", "cannot start or end with '-'");
    check_refused("exam!ple.com", "only letters, digits");
    check_refused("us*r@example.com", "whole part");
    check_refused("@example.com", "empty local part");
    check_refused("user@", "empty domain");
    check_refused("*@*", "every address");
    check_refused("user@ex*ample.com", "wildcard goes only at the start");
    check_refused("<user@example.com>", "not a plain address");
}

#[test]
fn networks_match_their_addresses_in_both_families() {
    check_matches(
        "203.0.113.0/24",
        &["203.0.113.0", "203.0.113.255", "::ffff:203.0.113.9"],
        &["203.0.112.255", "203.0.114.0", "2001:db8::1", "example.com"],
    );
    check_matches("203.0.113.7", &["203.0.113.7"], &["203.0.113.8"]);
    check_matches("0.0.0.0/0", &["192.0.2.1", "10.0.0.1"], &["::1"]);
    check_matches(
        "2001:db8::/32",
        &["2001:db8::1", "2001:db8:ffff:ffff::"],
        &["2001:db9::", "203.0.113.1"],
    );
    check_matches("2001:db8::1/128", &["2001:db8::1"], &["2001:db8::2"]);
    check_matches("::/0", &["2001:db8::1", "::1"], &["192.0.2.1"]);
}

#[test]
fn domains_match_exactly_or_by_subdomain_wildcard() {
    check_matches(
        "example.com",
        &["example.com", "EXAMPLE.com", "example.com."],
        &[
            "mail.example.com",
            "badexample.com",
            "example.org",
            "x@example.com",
        ],
    );
    check_matches(
        "*.example.com",
        &["mail.example.com", "a.b.Example.COM"],
        &[
            "example.com",
            "badexample.com",
            ".example.com",
            "203.0.113.1",
        ],
    );
}

#[test]
fn addresses_match_with_wildcard_local_part_or_domain() {
    check_matches(
        "user@example.com",
        &["user@example.com", "USER@Example.Com"],
        &["other@example.com", "user@mail.example.com", "example.com"],
    );
    check_matches(
        "*@example.com",
        &["a@example.com", "b@EXAMPLE.COM"],
        &["a@mail.example.com", "a@example.org"],
    );
    check_matches(
        "*@*.example.com",
        &["a@mail.example.com"],
        &["a@example.com"],
    );
    check_matches(
        "postmaster@*",
        &["postmaster@example.com", "postmaster@a.b"],
        &["post@example.com", "postmaster"],
    );
}

#[test]
fn entries_stop_matching_when_they_expire() {
    let entry = AccessEntry {
        list: AccessList::Block,
        pattern: pattern("192.0.2.1"),
        comment: None,
        created_at: 100,
        expires_at: Some(200),
    };
    assert!(entry.active(100));
    assert!(entry.active(199));
    assert!(!entry.active(200));
    let forever = AccessEntry {
        expires_at: None,
        ..entry
    };
    assert!(forever.active(u64::MAX));
    assert_eq!("Block".parse::<AccessList>(), Ok(AccessList::Block));
    assert_eq!("allow".parse::<AccessList>(), Ok(AccessList::Allow));
    assert!("deny".parse::<AccessList>().is_err());
}
