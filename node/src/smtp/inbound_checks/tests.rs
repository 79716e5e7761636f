//! Unit tests of the inbound checks' pure parts: DNS list names, HELO names, and removing
//! forged Authentication-Results.

use std::net::IpAddr;

use crate::smtp::inbound_checks::{
    HeloProblem, Listing, authserv_id, dnsbl_reply, helo_problem, list_query_name,
    reverse_dns_refusal, strip_our_headers,
};
use mail_auth::{DnsError, Error, IprevResult};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn list_names_reverse_octets_and_nibbles() {
    assert_eq!(
        list_query_name(ip("192.0.2.99"), "bl.example"),
        "99.2.0.192.bl.example."
    );
    assert_eq!(
        list_query_name(ip("2001:db8::1"), "bl.example"),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example."
    );
    // A v4-mapped client is looked up as the IPv4 address it is.
    assert_eq!(
        list_query_name(ip("::ffff:198.51.100.7"), "bl.example"),
        "7.100.51.198.bl.example."
    );
}

#[test]
fn dnsbl_reply_names_the_zone_and_reason() {
    let mut listing = Listing {
        zone: "bl.example".into(),
        reason: None,
    };
    assert_eq!(
        dnsbl_reply(ip("192.0.2.1"), &listing).to_string(),
        "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.example"
    );
    listing.reason = Some("see https://bl.example/192.0.2.1".into());
    assert_eq!(
        dnsbl_reply(ip("192.0.2.1"), &listing).to_string(),
        "554 5.7.1 Service unavailable; client [192.0.2.1] blocked using bl.example; see https://bl.example/192.0.2.1"
    );
}

#[track_caller]
fn check_helo(helo: &str, expected: Option<HeloProblem>) {
    assert_eq!(
        helo_problem(helo, "mx.example.org", ip("192.0.2.25")),
        expected,
        "HELO {helo:?}"
    );
}

#[test]
fn helo_names_must_be_fqdns_or_literals_and_not_ours() {
    check_helo("mail.sender.example", None);
    check_helo("mail.sender.example.", None);
    check_helo("[198.51.100.1]", None);
    check_helo("[IPv6:2001:db8::5]", None);
    check_helo("localhost", Some(HeloProblem::NotFqdn));
    check_helo("198.51.100.1", Some(HeloProblem::NotFqdn));
    check_helo("bad..example", Some(HeloProblem::NotFqdn));
    check_helo("under score.example", Some(HeloProblem::NotFqdn));
    check_helo("-x.example", Some(HeloProblem::NotFqdn));
    check_helo("[300.1.1.1]", Some(HeloProblem::BadLiteral));
    check_helo("[IPv6:nonsense]", Some(HeloProblem::BadLiteral));
    check_helo("MX.Example.Org", Some(HeloProblem::OurName));
    check_helo("[192.0.2.25]", Some(HeloProblem::OurAddress));
}

#[test]
fn authserv_id_is_the_first_token_without_comments() {
    assert_eq!(
        authserv_id(" mx.example.org; spf=pass").as_deref(),
        Some("mx.example.org")
    );
    assert_eq!(
        authserv_id(" (forged) mx.example.org 1; dkim=pass").as_deref(),
        Some("mx.example.org")
    );
    assert_eq!(authserv_id(" ; none"), None);
}

#[track_caller]
fn check_strip(input: &str, expected: &str) {
    let out = strip_our_headers(input.as_bytes(), "mx.example.org");
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn forged_results_for_our_name_are_removed_with_their_folded_lines() {
    check_strip(
        "Authentication-Results: mx.example.org;\r\n\tdkim=pass\r\n\
         authentication-results: other.example; spf=pass\r\n\
         Subject: hi\r\n\
         X-Mcluster-Warning: forged\r\n\
         \r\n\
         Authentication-Results: mx.example.org; in the body stays\r\n",
        "authentication-results: other.example; spf=pass\r\n\
         Subject: hi\r\n\
         \r\n\
         Authentication-Results: mx.example.org; in the body stays\r\n",
    );
    // A message without a body, and one whose last field is ours.
    check_strip(
        "Subject: x\r\nAuthentication-Results: MX.EXAMPLE.ORG; spf=pass\r\n",
        "Subject: x\r\n",
    );
}

#[test]
fn reverse_dns_failures_are_temporary_only_when_dns_failed() {
    let client = ip("192.0.2.7");
    let code = |result: IprevResult| {
        reverse_dns_refusal(&result, client).map(|r| r.reply.to_string()[..3].to_owned())
    };
    assert_eq!(code(IprevResult::Pass), None);
    assert_eq!(
        code(IprevResult::TempError(Error::Dns(DnsError::Resolver(
            "timed out".into()
        )))),
        Some("450".into())
    );
    assert_eq!(
        code(IprevResult::Fail(Error::NotAligned)),
        Some("550".into())
    );
    assert_eq!(
        code(IprevResult::PermError(Error::Dns(
            DnsError::InvalidRecordType
        ))),
        Some("550".into())
    );
}

/// mail-auth parses every message arriving on port 25; the input that panics mail-parser
/// (found by fuzzing) must not panic it.
#[test]
fn the_authentication_parser_survives_input_that_panics_the_mime_parser() {
    let raw: &[u8] =
        include_bytes!("../../../../raft-store/types/src/summary/fuzz/parser-panic-1.eml");
    let _ = mail_auth::AuthenticatedMessage::parse(raw);
}
