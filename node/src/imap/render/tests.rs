//! Tests of the message summary as IMAP shows it: hand-checked ENVELOPE / BODY / BODYSTRUCTURE strings (RFC 3501
//! 7.4.2), section ranges, storage round trip and a seeded mutation fuzz.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use raft_store::summary::{MessageLimits, MessageSummary, TooComplex, summarize, summarize_within};

use crate::imap::render::{SectionPart, body_structure, envelope, filter_header_fields, section};

/// Joins lines with CRLF (messages are written one line per element).
fn crlf(lines: &[&str]) -> Vec<u8> {
    lines.join("\r\n").into_bytes()
}

#[track_caller]
fn check(
    raw: &[u8],
    want_envelope: &str,
    want_body: &str,
    want_bodystructure: &str,
) -> MessageSummary {
    let summary = summarize(raw);
    assert_eq!(
        String::from_utf8_lossy(&envelope(&summary)),
        want_envelope,
        "ENVELOPE"
    );
    assert_eq!(
        String::from_utf8_lossy(&body_structure(&summary, false)),
        want_body,
        "BODY"
    );
    assert_eq!(
        String::from_utf8_lossy(&body_structure(&summary, true)),
        want_bodystructure,
        "BODYSTRUCTURE"
    );
    assert_well_formed(&envelope(&summary));
    assert_well_formed(&body_structure(&summary, true));
    summary
}

#[track_caller]
fn check_section(
    raw: &[u8],
    summary: &MessageSummary,
    path: &[u32],
    part: SectionPart,
    want: Option<&str>,
) {
    let got = section(summary, path, part).map(|r| String::from_utf8_lossy(&raw[r]).into_owned());
    assert_eq!(got.as_deref(), want, "section {path:?} {part:?}");
}

const SIMPLE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nFrom: Fred Foobar <foobar@Blurdybloop.COM>\r\nSubject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu\r\nMessage-Id: <B27397-0100000@Blurdybloop.COM>\r\nMIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

#[test]
fn summary_simple_text_plain() {
    // The RFC 3501 6.4.5 example message; 55 octets, one line (the CRLF is part of the body).
    let fred = r#"(("Fred Foobar" NIL "foobar" "Blurdybloop.COM"))"#;
    let s = check(
        SIMPLE.as_bytes(),
        &format!(
            r#"("Mon, 7 Feb 1994 21:52:25 -0800" "afternoon meeting" {fred} {fred} {fred} ((NIL NIL "mooch" "owatagu.siam.edu")) NIL NIL NIL "<B27397-0100000@Blurdybloop.COM>")"#
        ),
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL)"#,
    );
    let raw = SIMPLE.as_bytes();
    let body = "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    check_section(raw, &s, &[], SectionPart::Full, Some(SIMPLE));
    check_section(raw, &s, &[], SectionPart::Text, Some(body));
    check_section(
        raw,
        &s,
        &[],
        SectionPart::Header,
        Some(&SIMPLE[..SIMPLE.len() - body.len()]),
    );
    // A non-multipart message has only part 1, its body.
    check_section(raw, &s, &[1], SectionPart::Full, Some(body));
    check_section(raw, &s, &[2], SectionPart::Full, None);
    check_section(raw, &s, &[1], SectionPart::Header, None);
    check_section(raw, &s, &[], SectionPart::Mime, None);
    check_section(raw, &s, &[0], SectionPart::Full, None);
}

#[test]
fn summary_multipart_alternative() {
    let raw = crlf(&[
        "From: a@example.com",
        "To: b@example.com",
        "Subject: alt",
        "Content-Type: multipart/alternative; boundary=\"XX\"",
        "",
        "--XX",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "Plain body",
        "second line",
        "--XX",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "<p>Html</p>",
        "--XX--",
        "",
    ]);
    let a = r#"((NIL NIL "a" "example.com"))"#;
    // The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1): 23 and 11 octets.
    let s = check(
        &raw,
        &format!(r#"(NIL "alt" {a} {a} {a} ((NIL NIL "b" "example.com")) NIL NIL NIL NIL)"#),
        r#"(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 23 2)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 11 1) "ALTERNATIVE")"#,
        r#"(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 23 2 NIL NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 11 1 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "XX") NIL NIL NIL)"#,
    );
    check_section(
        &raw,
        &s,
        &[1],
        SectionPart::Full,
        Some("Plain body\r\nsecond line"),
    );
    check_section(
        &raw,
        &s,
        &[2],
        SectionPart::Mime,
        Some(
            "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
        ),
    );
    check_section(&raw, &s, &[3], SectionPart::Full, None);
    check_section(&raw, &s, &[1, 1], SectionPart::Full, None);
    check_section(&raw, &s, &[1], SectionPart::Text, None);
}

fn mixed_message() -> Vec<u8> {
    crlf(&[
        "From: \"Doe, John\" <john@example.com>",
        "To: undisclosed-recipients:;",
        "Cc: Team: ann@example.com, Bob <bob@example.com>;, carl@example.com",
        "Subject: mixed",
        "Date: Tue, 1 Apr 2025 10:00:00 +0000",
        "Message-ID: <m1@example.com>",
        "Content-Type: multipart/mixed; boundary=\"outer\"",
        "",
        "This is a preamble.",
        "--outer",
        "Content-Type: multipart/related; boundary=inner; type=\"text/html\"",
        "",
        "--inner",
        "Content-Type: text/html; charset=us-ascii",
        "",
        "<img src=\"cid:logo\">",
        "--inner",
        "Content-Type: image/png; name=\"logo.png\"",
        "Content-ID: <logo@example.com>",
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: inline; filename=\"logo.png\"",
        "",
        "iVBORw0KGgo=",
        "--inner--",
        "--outer",
        "Content-Type: application/pdf; name=\"=?UTF-8?B?5oql5ZGK?=.pdf\"",
        "Content-Disposition: attachment; filename=\"report.pdf\"; size=12",
        "Content-Description: Quarterly report",
        "Content-Transfer-Encoding: base64",
        "Content-Language: en, de",
        "Content-Location: http://example.com/r.pdf",
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
        "",
        "JVBERi0xLjQK",
        "--outer",
        "Content-Type: message/rfc822",
        "",
        "From: inner@example.org",
        "Subject: forwarded",
        "Date: Wed, 2 Apr 2025 11:00:00 +0000",
        "",
        "Inner body",
        "--outer--",
        "Epilogue",
        "",
    ])
}

#[test]
fn summary_mixed_related_attachment_and_rfc822() {
    let raw = mixed_message();
    let john = r#"(("Doe, John" NIL "john" "example.com"))"#;
    let inner = r#"((NIL NIL "inner" "example.org"))"#;
    let inner_header = "From: inner@example.org\r\nSubject: forwarded\r\nDate: Wed, 2 Apr 2025 11:00:00 +0000\r\n\r\n";
    let inner_size = inner_header.len() + "Inner body".len();
    assert_eq!(inner_size, 25 + 20 + 38 + 2 + 10);
    // Groups: (NIL NIL "name" NIL) opens, (NIL NIL NIL NIL) closes (RFC 3501 7.4.2).
    let envelope = format!(
        r#"("Tue, 1 Apr 2025 10:00:00 +0000" "mixed" {john} {john} {john} ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "Team" NIL)(NIL NIL "ann" "example.com")("Bob" NIL "bob" "example.com")(NIL NIL NIL NIL)(NIL NIL "carl" "example.com")) NIL NIL "<m1@example.com>")"#
    );
    let inner_envelope = format!(
        r#"("Wed, 2 Apr 2025 11:00:00 +0000" "forwarded" {inner} {inner} {inner} NIL NIL NIL NIL NIL)"#
    );
    let s = check(
        &raw,
        &envelope,
        &format!(
            r#"((("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 1)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@example.com>" NIL "BASE64" 12) "RELATED")("APPLICATION" "PDF" ("NAME" "=?UTF-8?B?5oql5ZGK?=.pdf") NIL "Quarterly report" "BASE64" 12)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 95 {inner_envelope} ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1) 5) "MIXED")"#
        ),
        &format!(
            r#"((("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 1 NIL NIL NIL NIL)("IMAGE" "PNG" ("NAME" "logo.png") "<logo@example.com>" NIL "BASE64" 12 NIL ("INLINE" ("FILENAME" "logo.png")) NIL NIL) "RELATED" ("BOUNDARY" "inner" "TYPE" "text/html") NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "=?UTF-8?B?5oql5ZGK?=.pdf") NIL "Quarterly report" "BASE64" 12 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "report.pdf" "SIZE" "12")) ("en" "de") "http://example.com/r.pdf")("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 95 {inner_envelope} ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) 5 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)"#
        ),
    );
    check_section(
        &raw,
        &s,
        &[1, 1],
        SectionPart::Full,
        Some("<img src=\"cid:logo\">"),
    );
    check_section(&raw, &s, &[1, 2], SectionPart::Full, Some("iVBORw0KGgo="));
    check_section(
        &raw,
        &s,
        &[1, 2],
        SectionPart::Mime,
        Some(
            "Content-Type: image/png; name=\"logo.png\"\r\nContent-ID: <logo@example.com>\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename=\"logo.png\"\r\n\r\n",
        ),
    );
    check_section(&raw, &s, &[1, 3], SectionPart::Full, None);
    check_section(&raw, &s, &[2], SectionPart::Full, Some("JVBERi0xLjQK"));
    check_section(&raw, &s, &[2, 1], SectionPart::Full, None);
    check_section(
        &raw,
        &s,
        &[3],
        SectionPart::Full,
        Some(&format!("{inner_header}Inner body")),
    );
    check_section(&raw, &s, &[3], SectionPart::Header, Some(inner_header));
    check_section(&raw, &s, &[3], SectionPart::Text, Some("Inner body"));
    check_section(&raw, &s, &[3, 1], SectionPart::Full, Some("Inner body"));
    check_section(
        &raw,
        &s,
        &[3],
        SectionPart::Mime,
        Some("Content-Type: message/rfc822\r\n\r\n"),
    );
    check_section(&raw, &s, &[2], SectionPart::Header, None);
}

#[test]
fn summary_encoded_and_8bit_headers() {
    let raw = crlf(&[
        "From: =?UTF-8?B?5byg5LiJ?= <zhang@example.cn>",
        "To: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
        "Subject: =?UTF-8?B?5Lit5paH5Li76aKY?=",
        " =?UTF-8?Q?_and_more?=",
        "Sender: 李四 <li@example.cn>",
        "Reply-To: \"quote\\\"d \\\\ name\" <r@example.com>",
        "Date: Thu, 3 Apr 2025 12:00:00 +0800",
        "In-Reply-To: <a@b>",
        "",
        "正文",
        "",
    ]);
    // RFC 2047 words stay encoded (IMAP sends header text as written); the folded subject is
    // unfolded; raw UTF-8 goes out as a literal; `"` and `\` are escaped in quoted strings.
    let s = check(
        &raw,
        "(\"Thu, 3 Apr 2025 12:00:00 +0800\" \"=?UTF-8?B?5Lit5paH5Li76aKY?= =?UTF-8?Q?_and_more?=\" ((\"=?UTF-8?B?5byg5LiJ?=\" NIL \"zhang\" \"example.cn\")) (({6}\r\n李四 NIL \"li\" \"example.cn\")) ((\"quote\\\"d \\\\ name\" NIL \"r\" \"example.com\")) ((\"=?ISO-8859-1?Q?Andr=E9?= Pirard\" NIL \"PIRARD\" \"vm1.ulg.ac.be\")) NIL NIL \"<a@b>\" NIL)",
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 1)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 1 NIL NIL NIL NIL)"#,
    );
    assert_eq!(s.envelope.sender.len(), 1);

    let raw = "Subject: 中文主题 Grüße\r\nFrom: a@b.c\r\n\r\n".as_bytes();
    check(
        raw,
        "(NIL {20}\r\n中文主题 Grüße ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL NIL NIL)",
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)"#,
    );
}

#[test]
fn summary_missing_fields_and_odd_addresses() {
    // No Date, no From: sender and reply-to default to from, which is NIL.
    check(
        b"To: x@y\r\nCc: Route <@relay1,@relay2:joe@z.example>, nodomain\r\nBcc: Empty:;\r\n\r\nbody",
        r#"(NIL NIL NIL NIL NIL ((NIL NIL "x" "y")) (("Route" "@relay1,@relay2" "joe" "z.example")(NIL NIL "nodomain" "MISSING_DOMAIN")) ((NIL NIL "Empty" NIL)(NIL NIL NIL NIL)) NIL NIL)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 4 1)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 4 1 NIL NIL NIL NIL)"#,
    );
}

const NIL_ENVELOPE: &str = "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";
const PLAIN_EMPTY: &str = r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)"#;

#[test]
fn summary_malformed_missing_final_boundary() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\npart1\r\n--b\r\n\r\npart2 cut";
    let s = check(
        raw,
        NIL_ENVELOPE,
        r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1)("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 9 1) "MIXED")"#,
        r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 9 1 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b") NIL NIL NIL)"#,
    );
    check_section(raw, &s, &[2], SectionPart::Full, Some("part2 cut"));
}

#[test]
fn summary_malformed_boundary_never_appears() {
    check(
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\njust text\r\n",
        NIL_ENVELOPE,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)"#,
    );
}

#[test]
fn summary_malformed_garbage_content_type() {
    // RFC 2045 5.2: an unparsable Content-Type means text/plain; charset=us-ascii.
    check(
        b"Content-Type: ;;garbage\r\nContent-Transfer-Encoding: 8bit\r\n\r\nx",
        NIL_ENVELOPE,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "8BIT" 1 1)"#,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "8BIT" 1 1 NIL NIL NIL NIL)"#,
    );
}

#[test]
fn summary_malformed_headers_only_and_empty() {
    let raw = b"From: a@b\r\nSubject: s\r\n";
    let s = summarize(raw);
    assert_eq!(
        String::from_utf8_lossy(&body_structure(&s, false)),
        PLAIN_EMPTY
    );
    assert_eq!(
        String::from_utf8_lossy(&envelope(&s)),
        r#"(NIL "s" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL)"#
    );
    check_section(
        raw,
        &s,
        &[],
        SectionPart::Header,
        Some("From: a@b\r\nSubject: s\r\n"),
    );
    check_section(raw, &s, &[], SectionPart::Text, Some(""));

    let s = check(
        b"",
        NIL_ENVELOPE,
        PLAIN_EMPTY,
        r#"("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)"#,
    );
    check_section(b"", &s, &[], SectionPart::Full, Some(""));
}

#[test]
fn summary_bare_lf() {
    let raw = b"From: a@b\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n";
    let s = summarize(raw);
    assert_eq!(
        String::from_utf8_lossy(&body_structure(&s, false)),
        r#"(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2 1) "MIXED")"#
    );
    check_section(raw, &s, &[1], SectionPart::Full, Some("hi"));
    check_section(
        raw,
        &s,
        &[1],
        SectionPart::Mime,
        Some("Content-Type: text/plain\n\n"),
    );
}

#[test]
fn summary_header_fields_filter() {
    let header = b"From: a@b\r\nSubject: hello\r\n world\r\nTo: c@d\r\nsubject: second\r\n\r\n";
    let names: [&[u8]; 2] = [b"SUBJECT", b"x-none"];
    assert_eq!(
        String::from_utf8_lossy(&filter_header_fields(header, &names, false)),
        "Subject: hello\r\n world\r\nsubject: second\r\n\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&filter_header_fields(header, &names, true)),
        "From: a@b\r\nTo: c@d\r\n\r\n"
    );
    // No blank line in the block, none in the result (RFC 3501 6.4.5).
    assert_eq!(
        filter_header_fields(b"From: a@b\r\n", &[b"from"], false),
        b"From: a@b\r\n"
    );
}

#[test]
fn summary_bincode_round_trip_and_size() {
    let config = bincode::config::standard();
    for raw in [
        SIMPLE.as_bytes().to_vec(),
        mixed_message(),
        large_multipart(10_000),
        large_multipart(1_000_000),
    ] {
        let summary = summarize(&raw);
        let bytes = bincode::serde::encode_to_vec(&summary, config).expect("encode");
        let (decoded, n): (MessageSummary, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        assert_eq!(n, bytes.len());
        assert_eq!(decoded, summary);
        // Compact: the summary does not grow with the body.
        assert!(
            bytes.len() < 1500,
            "{} bytes for a {} byte message",
            bytes.len(),
            raw.len()
        );
        eprintln!(
            "summary of {} byte message: {} bytes",
            raw.len(),
            bytes.len()
        );
    }
}

/// A typical message: text and html alternatives plus a base64 attachment padding it to `size`.
fn large_multipart(size: usize) -> Vec<u8> {
    let mut raw = crlf(&[
        "Return-Path: <alice@example.com>",
        "Received: from mx.example.com (mx.example.com [192.0.2.1]) by mail.example.org with ESMTPS id abc123 for <bob@example.org>; Tue, 1 Apr 2025 10:00:00 +0000",
        "From: Alice Example <alice@example.com>",
        "To: Bob Example <bob@example.org>, Carol <carol@example.org>",
        "Cc: team@example.org",
        "Subject: Quarterly numbers and the draft report for review",
        "Date: Tue, 1 Apr 2025 10:00:00 +0000",
        "Message-ID: <20250401100000.12345@example.com>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"=_mixed_0001\"",
        "",
        "--=_mixed_0001",
        "Content-Type: multipart/alternative; boundary=\"=_alt_0001\"",
        "",
        "--=_alt_0001",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Hi Bob, the numbers are attached.",
        "--=_alt_0001",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "<p>Hi Bob, the numbers are attached.</p>",
        "--=_alt_0001--",
        "--=_mixed_0001",
        "Content-Type: application/pdf; name=\"report.pdf\"",
        "Content-Disposition: attachment; filename=\"report.pdf\"",
        "Content-Transfer-Encoding: base64",
        "",
        "",
    ]);
    let line =
        "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+\r\n";
    while raw.len() + line.len() + 20 < size {
        raw.extend_from_slice(line.as_bytes());
    }
    raw.extend_from_slice(b"--=_mixed_0001--\r\n");
    raw
}

/// Checks that `s` is one well-formed IMAP parenthesized value (lists, quoted strings with only
/// `\"`/`\\` escapes, literals with the right length, NIL, numbers, single spaces between items).
#[track_caller]
fn assert_well_formed(s: &[u8]) {
    fn item(s: &[u8], mut i: usize) -> Result<usize, String> {
        match s.get(i) {
            Some(b'(') => {
                i += 1;
                let mut first = true;
                loop {
                    match s.get(i) {
                        Some(b')') => return Ok(i + 1),
                        Some(b' ') if !first => i += 1,
                        Some(b'(') if !first => {}
                        _ if first => {}
                        _ => return Err(format!("expected space at {i}")),
                    }
                    i = item(s, i)?;
                    first = false;
                }
            }
            Some(b'"') => {
                i += 1;
                loop {
                    match s.get(i) {
                        Some(b'"') => return Ok(i + 1),
                        Some(b'\\') if matches!(s.get(i + 1), Some(b'"' | b'\\')) => i += 2,
                        Some(b'\\' | b'\r' | b'\n' | 0) | None => {
                            return Err(format!("bad quoted at {i}"));
                        }
                        Some(b) if *b >= 0x80 => return Err(format!("8-bit quoted at {i}")),
                        Some(_) => i += 1,
                    }
                }
            }
            Some(b'{') => {
                let close = s[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("open literal")?
                    + i;
                let n: usize = std::str::from_utf8(&s[i + 1..close])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or("literal length")?;
                if s.get(close + 1..close + 3) != Some(b"\r\n") || s.len() < close + 3 + n {
                    return Err(format!("bad literal at {i}"));
                }
                Ok(close + 3 + n)
            }
            Some(b'N') if s[i..].starts_with(b"NIL") => Ok(i + 3),
            Some(b'0'..=b'9') => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                Ok(i)
            }
            _ => Err(format!("unexpected byte at {i}")),
        }
    }
    match item(s, 0) {
        Ok(end) if end == s.len() => {}
        Ok(end) => panic!("trailing bytes at {end}: {}", String::from_utf8_lossy(s)),
        Err(e) => panic!("{e}: {}", String::from_utf8_lossy(s)),
    }
}

#[test]
fn summary_fuzz_mutations_never_panic_and_stay_in_bounds() {
    let seeds: Vec<Vec<u8>> = vec![
        SIMPLE.as_bytes().to_vec(),
        mixed_message(),
        large_multipart(3000),
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n".to_vec(),
    ];
    let snippets: [&[u8]; 10] = [
        b"\r\n",
        b"\n",
        b"--outer",
        b"--b\r\n",
        b"--inner--",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"\xff\xfe",
        b":;<>@,\"(",
        b"\r\n\r\n",
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed_1a9a);
    for round in 0..4000 {
        let mut raw = seeds[round % seeds.len()].clone();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..=raw.len());
            match rng.random_range(0..5) {
                0 => raw.truncate(at),
                1 => {
                    let snippet = snippets[rng.random_range(0..snippets.len())];
                    raw.splice(at..at, snippet.iter().copied());
                }
                2 if at < raw.len() => raw[at] = rng.random(),
                3 if at < raw.len() => {
                    let end = rng.random_range(at..=raw.len().min(at + 40));
                    raw.drain(at..end);
                }
                _ => raw.insert(at, rng.random()),
            }
        }
        let summary = summarize(&raw);
        check_bounds(&summary, raw.len(), &raw, round);
        assert_well_formed(&envelope(&summary));
        assert_well_formed(&body_structure(&summary, true));
        assert_well_formed(&body_structure(&summary, false));
        for path in [&[][..], &[1], &[2], &[1, 1], &[1, 2], &[3, 1], &[2, 1, 1]] {
            for part in [
                SectionPart::Full,
                SectionPart::Header,
                SectionPart::Text,
                SectionPart::Mime,
            ] {
                if let Some(r) = section(&summary, path, part) {
                    assert!(
                        r.start <= r.end && r.end <= raw.len(),
                        "round {round}: {path:?} {part:?} {r:?}"
                    );
                    let header = &raw[r];
                    let _ = filter_header_fields(header, &[b"subject"], rng.random());
                }
            }
        }
    }
}

#[track_caller]
fn check_bounds(summary: &MessageSummary, len: usize, raw: &[u8], round: usize) {
    let mut stack = vec![&summary.root];
    while let Some(part) = stack.pop() {
        assert!(
            part.offset_header <= part.offset_body
                && part.offset_body <= part.offset_end
                && part.offset_end as usize <= len,
            "round {round}: {part:?} in {len} bytes: {:?}",
            String::from_utf8_lossy(raw)
        );
        match &part.kind {
            raft_store::summary::PartKind::Multipart(children) => stack.extend(children),
            raft_store::summary::PartKind::Message(inner) => stack.push(&inner.root),
            raft_store::summary::PartKind::Leaf => {}
        }
    }
}

/// Found by the `mime_summary` fuzz target: mail-parser 0.11.9 panics ("Invalid part ID, could
/// not find multipart") on this nesting. The message is summarized as unstructured instead.
#[test]
fn input_that_panics_the_mime_parser_is_summarized_unparsed() {
    let raw: &[u8] =
        include_bytes!("../../../../raft-store/types/src/summary/fuzz/parser-panic-1.eml");
    assert!(raft_store::summary::parse_mime(raw).is_none());
    let summary = summarize(raw);
    assert_eq!(summary.root.offset_header, 0);
    assert_eq!(summary.root.offset_end as usize, raw.len());
    assert!(matches!(
        summary.root.kind,
        raft_store::summary::PartKind::Leaf
    ));
    let _ = body_structure(&summary, true);
}

/// Found by the `mime_summary` fuzz target: mail-parser's part list for this message points back
/// up (a part's child is its ancestor). Every child must lie inside its parent's body.
#[test]
fn parts_that_point_back_up_are_not_summarized_as_children() {
    let raw: &[u8] =
        include_bytes!("../../../../raft-store/types/src/summary/fuzz/part-cycle-1.eml");
    let summary = summarize(raw);
    let mut stack = vec![&summary.root];
    let mut parts = 0;
    while let Some(part) = stack.pop() {
        parts += 1;
        if let raft_store::summary::PartKind::Multipart(children) = &part.kind {
            for child in children {
                assert!(
                    child.offset_header >= part.offset_body && child.offset_end <= part.offset_end,
                    "{child:?} outside {part:?}"
                );
                stack.push(child);
            }
        }
    }
    assert!(parts < 10, "{parts} parts in {} bytes", raw.len());
    check_bounds(&summary, raw.len(), raw, 0);
}

/// A message of `n` text parts in one multipart/mixed (n + 1 parts in all).
fn many_parts(n: usize) -> Vec<u8> {
    let mut raw = b"From: a@example.test\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n".to_vec();
    for i in 0..n {
        raw.extend_from_slice(
            format!("--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n").as_bytes(),
        );
    }
    raw.extend_from_slice(b"--b--\r\n");
    raw
}

/// A message whose multiparts nest `depth` deep (the innermost text part at depth `depth`).
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut raw =
        b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n".to_vec();
    for level in 1..depth {
        raw.extend_from_slice(
            format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n",
                level - 1
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(
        format!(
            "--b{}\r\nContent-Type: text/plain\r\n\r\nbottom\r\n",
            depth - 1
        )
        .as_bytes(),
    );
    for level in (0..depth).rev() {
        raw.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
    }
    raw
}

/// A message of message/rfc822 parts nested `depth` deep.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..depth {
        raw.extend_from_slice(b"Subject: wrapper\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: inner\r\n\r\nbottom\r\n");
    raw
}

fn part_count(part: &raft_store::summary::Part) -> usize {
    1 + match &part.kind {
        raft_store::summary::PartKind::Leaf => 0,
        raft_store::summary::PartKind::Multipart(children) => children.iter().map(part_count).sum(),
        raft_store::summary::PartKind::Message(inner) => part_count(&inner.root),
    }
}

#[test]
fn messages_within_the_limits_are_summarized_whole() {
    let limits = MessageLimits::default();
    let summary = summarize_within(&many_parts(999), &limits).expect("999 parts and the root");
    assert_eq!(part_count(&summary.root), 1000);
    assert!(summary.within_ceiling());
    let summary = summarize_within(&nested_multiparts(32), &limits).expect("32 deep");
    assert!(summary.within_ceiling());
    assert!(summarize_within(&nested_messages(32), &limits).is_ok());
}

#[test]
fn messages_over_the_limits_are_refused_with_the_limit_named() {
    let limits = MessageLimits::default();
    assert_eq!(
        summarize_within(&many_parts(1000), &limits),
        Err(TooComplex::Parts { max: 1000 })
    );
    assert_eq!(
        summarize_within(&nested_multiparts(33), &limits),
        Err(TooComplex::Depth { max: 32 })
    );
    assert_eq!(
        summarize_within(&nested_messages(33), &limits),
        Err(TooComplex::Depth { max: 32 })
    );
    let tight = MessageLimits {
        max_mime_depth: 3,
        ..limits
    };
    assert_eq!(
        summarize_within(&nested_multiparts(4), &tight),
        Err(TooComplex::Depth { max: 3 })
    );
    let mut fields = b"Subject: fields\r\n".to_vec();
    for n in 0..1000 {
        fields.extend_from_slice(format!("X-Filler-{n}: x\r\n").as_bytes());
    }
    fields.extend_from_slice(b"\r\nbody\r\n");
    assert_eq!(
        summarize_within(&fields, &limits),
        Err(TooComplex::HeaderFields { max: 1000 })
    );
    let mut big = b"Subject: big\r\nX-Big: ".to_vec();
    for _ in 0..(600 * 1024 / 64) {
        big.extend_from_slice(&[b'x'; 62]);
        big.extend_from_slice(b"\r\n ");
    }
    big.extend_from_slice(b"\r\n\r\nbody\r\n");
    assert_eq!(
        summarize_within(&big, &limits),
        Err(TooComplex::HeaderBytes { max: 512 * 1024 })
    );
    // A part's header section counts too, not only the message's.
    let mut part_fields = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n".to_vec();
    for n in 0..1001 {
        part_fields.extend_from_slice(format!("X-P-{n}: x\r\n").as_bytes());
    }
    part_fields.extend_from_slice(b"\r\nbody\r\n--b--\r\n");
    assert_eq!(
        summarize_within(&part_fields, &limits),
        Err(TooComplex::HeaderFields { max: 1000 })
    );
}

/// The query of death: 100,000 parts (3.6 MB) and deep nestings. Whatever the input, the
/// summary that can reach a Raft entry stays within its byte bound, and the fallback for
/// messages the cluster must take anyway is one text part.
#[test]
fn hostile_structures_get_a_bounded_summary() {
    for raw in [
        many_parts(100_000),
        nested_multiparts(10_000),
        nested_messages(10_000),
    ] {
        assert!(summarize_within(&raw, &MessageLimits::default()).is_err());
        assert!(summarize_within(&raw, &MessageLimits::CEILING).is_err());
        let fallback = summarize(&raw);
        assert_eq!(part_count(&fallback.root), 1);
        assert_eq!(fallback.root.offset_end as usize, raw.len());
        assert!(raft_store::encoded_len(&fallback) < 1024);
    }
    // Many addresses in one header: within the header limits, but the summary would be over
    // its byte bound.
    let mut to = b"Subject: list\r\nTo: ".to_vec();
    for n in 0..120_000 {
        to.extend_from_slice(format!("u{n}@example.test,\r\n ").as_bytes());
    }
    to.extend_from_slice(b"last@example.test\r\n\r\nbody\r\n");
    let roomy = MessageLimits {
        max_header_bytes: MessageLimits::CEILING.max_header_bytes,
        ..MessageLimits::default()
    };
    assert!(matches!(
        summarize_within(&to, &roomy),
        Err(TooComplex::Summary { .. })
    ));
}

#[test]
fn limits_are_checked_against_their_ceilings() {
    assert!(MessageLimits::default().check().is_ok());
    assert!(MessageLimits::CEILING.check().is_ok());
    let zero = MessageLimits {
        max_mime_parts: 0,
        ..MessageLimits::default()
    };
    assert!(zero.check().unwrap_err().contains("max-mime-parts"));
    let deep = MessageLimits {
        max_mime_depth: MessageLimits::CEILING.max_mime_depth + 1,
        ..MessageLimits::default()
    };
    assert!(deep.check().unwrap_err().contains("max-mime-depth"));
}

/// The state machine's backstop recognizes a summary over the ceilings however it was made.
#[test]
fn a_summary_over_the_ceiling_is_recognized() {
    let mut summary = summarize(b"Subject: x\r\n\r\nbody\r\n");
    assert!(summary.within_ceiling());
    let leaf = summary.root.clone();
    summary.root.kind = raft_store::summary::PartKind::Multipart(vec![leaf; 10_000]);
    assert!(!summary.within_ceiling());
}

/// Dovecot's rule: an address written without a phrase (an addr-spec) takes its last comment
/// as the display name, with quoted pairs undone and nested parentheses kept; a name-addr
/// (`phrase <addr>` or `<addr>`) never does.
#[test]
fn summary_comment_names_an_address_that_has_no_phrase() {
    let raw = b"From: user@example.com (Real Name)\r\n\
To: a(first)@example.com (last (nested) \\) one), \"Phrase\" <p@example.com> (ignored), \
<q@example.com> (ignored too), plain@example.com ()\r\n\
Cc: nodomain (Local Only), Team: m@example.com (Member);\r\n\
\r\n";
    let real = r#"(("Real Name" NIL "user" "example.com"))"#;
    assert_eq!(
        String::from_utf8_lossy(&envelope(&summarize(raw))),
        format!(
            r#"(NIL NIL {real} {real} {real} (("last (nested) ) one" NIL "a" "example.com")("Phrase" NIL "p" "example.com")(NIL NIL "q" "example.com")(NIL NIL "plain" "example.com")) (("Local Only" NIL "nodomain" "MISSING_DOMAIN")(NIL NIL "Team" NIL)("Member" NIL "m" "example.com")(NIL NIL NIL NIL)) NIL NIL NIL)"#
        )
    );
}

/// A message that is one encapsulated message, itself one encapsulated message whose body is
/// a multipart with an epilogue: each encapsulated message runs to the end of the body that
/// holds it, so its TEXT, its size and its lines count the epilogue (RFC 2046 5.2.1).
#[test]
fn summary_encapsulated_multipart_keeps_its_epilogue() {
    let innermost_header =
        "From: c@example.com\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n";
    let innermost_text = "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\nepilogue\r\n";
    let inner_header = "From: b@example.com\r\nContent-Type: message/rfc822\r\n\r\n";
    let outer_header = "From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n";
    let inner = format!("{inner_header}{innermost_header}{innermost_text}");
    let raw = format!("{outer_header}{inner}");
    let from = |who: &str| format!(r#"((NIL NIL "{who}" "example.com"))"#);
    let envelope_of = |who: &str| {
        let f = from(who);
        format!("(NIL NIL {f} {f} {f} NIL NIL NIL NIL NIL)")
    };
    let innermost_len = innermost_header.len() + innermost_text.len();
    let s = summarize(raw.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&body_structure(&s, false)),
        format!(
            r#"("MESSAGE" "RFC822" NIL NIL NIL "7BIT" {} {} ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" {innermost_len} {} (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1) "MIXED") 9) 12)"#,
            inner.len(),
            envelope_of("b"),
            envelope_of("c"),
        )
    );
    let raw = raw.as_bytes();
    check_section(raw, &s, &[], SectionPart::Text, Some(&inner));
    check_section(
        raw,
        &s,
        &[1],
        SectionPart::Text,
        Some(&format!("{innermost_header}{innermost_text}")),
    );
    check_section(raw, &s, &[1, 1], SectionPart::Text, Some(innermost_text));
    check_section(raw, &s, &[1, 1, 1], SectionPart::Full, Some("hello"));
}

/// Summaries stored before encapsulated messages ran to the end of their part end an
/// encapsulated multipart at its close delimiter; TEXT of the message/rfc822 part still
/// reaches the end of the part's body.
#[test]
fn text_of_an_encapsulated_message_reaches_the_end_of_its_part_in_older_summaries() {
    let text = "--b1\r\n\r\nhello\r\n--b1--\r\nepilogue\r\n";
    let raw = format!(
        "Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n{text}"
    );
    let mut s = summarize(raw.as_bytes());
    let raft_store::summary::PartKind::Message(inner) = &mut s.root.kind else {
        panic!("{s:?}");
    };
    // As the summary was made before: the multipart ends after "--b1--".
    inner.root.offset_end = (raw.len() - "\r\nepilogue\r\n".len()) as u32;
    check_section(raw.as_bytes(), &s, &[1], SectionPart::Text, Some(text));
}
