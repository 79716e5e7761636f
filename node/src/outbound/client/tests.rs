//! The client's pure parts: reply parsing, EHLO keywords, status codes, dot-stuffing, AUTH PLAIN.

use crate::outbound::client::{
    Extensions, MAX_DIAGNOSTIC, Reply, ReplyError, auth_plain, cap_diagnostic, data_bytes, is_8bit,
    parse_reply, reply_status,
};

#[track_caller]
fn check_reply(input: &str, code: u16, lines: &[&str], used: usize) {
    let (reply, n) = parse_reply(input.as_bytes())
        .expect("well-formed")
        .expect("complete");
    assert_eq!(reply.code, code);
    assert_eq!(reply.lines, lines);
    assert_eq!(n, used);
}

#[test]
fn replies_single_and_multi_line() {
    check_reply("220 mx.test ESMTP\r\n", 220, &["mx.test ESMTP"], 19);
    check_reply(
        "250-mx.test\r\n250-SIZE 100\r\n250 STARTTLS\r\nextra",
        250,
        &["mx.test", "SIZE 100", "STARTTLS"],
        41,
    );
    check_reply("354\r\n", 354, &[""], 5);
    check_reply("250 ok\n", 250, &["ok"], 7);
}

#[test]
fn incomplete_replies_wait_for_more() {
    assert_eq!(parse_reply(b"250-first\r\n250 sec"), Ok(None));
    assert_eq!(parse_reply(b""), Ok(None));
}

#[test]
fn malformed_replies_are_errors() {
    for bad in [
        "hello\r\n",
        "25\r\n",
        "250-a\r\n251 b\r\n",
        "250xok\r\n",
        "150 x\r\n",
    ] {
        assert!(
            matches!(parse_reply(bad.as_bytes()), Err(ReplyError::Malformed(_))),
            "{bad:?}"
        );
    }
    let long = vec![b'2'; 5000];
    assert_eq!(parse_reply(&long), Err(ReplyError::LineTooLong));
    let many = "250-x\r\n".repeat(300);
    assert_eq!(parse_reply(many.as_bytes()), Err(ReplyError::TooManyLines));
}

fn reply(code: u16, text: &str) -> Reply {
    Reply {
        code,
        lines: vec![text.to_owned()],
    }
}

#[test]
fn status_comes_from_the_enhanced_code_or_the_class() {
    assert_eq!(reply_status(&reply(550, "5.1.1 no such user")), "5.1.1");
    assert_eq!(reply_status(&reply(451, "4.3.0 later")), "4.3.0");
    // A code whose class disagrees with the reply's, or no code at all.
    assert_eq!(reply_status(&reply(550, "4.1.1 odd")), "5.0.0");
    assert_eq!(reply_status(&reply(421, "closing")), "4.0.0");
    assert_eq!(reply_status(&reply(554, "5.7.1234 too long")), "5.0.0");
    assert_eq!(reply_status(&reply(250, "2.0.0 ok")), "2.0.0");
}

#[test]
fn ehlo_keywords() {
    let ehlo = Reply {
        code: 250,
        lines: vec![
            "mx.test hello".into(),
            "SIZE 1000".into(),
            "8bitmime".into(),
            "STARTTLS".into(),
            "AUTH LOGIN PLAIN CRAM-MD5".into(),
        ],
    };
    assert_eq!(
        Extensions::from_ehlo(&ehlo),
        Extensions {
            starttls: true,
            eight_bit_mime: true,
            size: Some(Some(1000)),
            auth_plain: true,
            auth_login: true,
        }
    );
    let unlimited = Reply {
        code: 250,
        lines: vec!["mx.test".into(), "SIZE 0".into()],
    };
    assert_eq!(Extensions::from_ehlo(&unlimited).size, Some(None));
    // The greeting line is not a keyword.
    let bare = reply(250, "STARTTLS");
    assert_eq!(Extensions::from_ehlo(&bare), Extensions::default());
}

#[track_caller]
fn check_data(message: &[u8], expected: &[u8]) {
    assert_eq!(
        String::from_utf8_lossy(&data_bytes(message)),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn data_is_dot_stuffed_and_terminated() {
    check_data(b"a\r\n.b\r\n..c\r\n", b"a\r\n..b\r\n...c\r\n.\r\n");
    check_data(b".\r\n", b"..\r\n.\r\n");
    check_data(b"no newline at end", b"no newline at end\r\n.\r\n");
    check_data(b"", b".\r\n");
    // A dot not at a line start stays single.
    check_data(b"a.b\r\n", b"a.b\r\n.\r\n");
}

#[test]
fn bare_line_ends_become_crlf_so_they_cannot_end_the_data() {
    check_data(b"a\n.\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n");
    check_data(b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n");
}

#[test]
fn eight_bit_detection() {
    assert!(!is_8bit(b"plain ascii\r\n"));
    assert!(is_8bit("caf\u{e9}".as_bytes()));
}

#[test]
fn auth_plain_encoding() {
    // RFC 4616's example identity with an empty authorization id.
    assert_eq!(
        auth_plain("tim", "tanstaaftanstaaf"),
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
    );
}

#[test]
fn diagnostics_are_capped_at_a_char_boundary() {
    assert_eq!(cap_diagnostic("short"), "short");
    let long = "\u{e9}".repeat(MAX_DIAGNOSTIC);
    let capped = cap_diagnostic(&long);
    assert!(capped.len() <= MAX_DIAGNOSTIC);
    assert!(capped.ends_with("..."));
}
