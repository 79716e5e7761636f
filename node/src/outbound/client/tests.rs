//! The client's pure parts: reply parsing, EHLO keywords, status codes, dot-stuffing, AUTH PLAIN,
//! and the connection pool's bookkeeping (destinations, expiry, limits).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use crate::outbound::client::pool::{Destination, IdleSet, Limits};
use crate::outbound::client::{
    Attempt, ConnectionPool, Credentials, Extensions, MAX_DIAGNOSTIC, Reply, ReplyError, Timeouts,
    TlsPolicy, auth_plain, cap_diagnostic, data_bytes, is_8bit, parse_reply, reply_status,
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
    // Every smuggling variant in a stored message goes out with one end of data: the last.
    for fake_end in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n.\n",
    ] {
        let mut message = b"Subject: x\r\n\r\nhello".to_vec();
        message.extend_from_slice(fake_end);
        message.extend_from_slice(b"MAIL FROM:<a@b.test>\r\nDATA\r\nsmuggled\r\n");
        let data = data_bytes(&message);
        let ends = data.windows(5).filter(|w| w == b"\r\n.\r\n").count();
        assert_eq!(ends, 1, "{:?}", String::from_utf8_lossy(fake_end));
        assert!(data.ends_with(b"\r\n.\r\n"));
    }
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

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 25);

fn credentials(user: &str, password: &str) -> Credentials {
    Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
        allow_plaintext: false,
    }
}

/// The destination of an attempt to `host` at `peer`; `change` edits the attempt first.
fn destination<'a>(
    host: &'a str,
    peer: SocketAddr,
    change: impl FnOnce(&mut Attempt<'a>),
) -> Destination {
    let mut attempt = Attempt {
        host,
        addresses: &[],
        port: peer.port(),
        helo: "out.src.test",
        sender: "sender@src.test",
        recipients: &[],
        message: b"",
        tls: TlsPolicy::Opportunistic,
        credentials: None,
        timeouts: Timeouts::default(),
    };
    change(&mut attempt);
    Destination::new(&attempt, peer)
}

#[test]
fn destinations_ignore_case_trailing_dots_and_the_message() {
    let base = destination("mx.dest.test", PEER, |_| {});
    assert_eq!(destination("MX.Dest.Test.", PEER, |_| {}), base);
    // The sender, recipients, message and deadlines are per message, not per connection.
    let recipients = vec!["other@dest.test".to_owned()];
    let other_message = destination("mx.dest.test", PEER, |a| {
        a.sender = "";
        a.recipients = &recipients;
        a.message = b"different";
        a.timeouts.mail = Duration::from_secs(1);
    });
    assert_eq!(other_message, base);
}

#[test]
fn destinations_differ_in_anything_the_connection_stage_used() {
    let relay = credentials("relay", "s3cret");
    let other_user = credentials("other", "s3cret");
    let other_password = credentials("relay", "changed");
    let plaintext = Credentials {
        allow_plaintext: true,
        ..relay.clone()
    };
    let base = destination("mx.dest.test", PEER, |_| {});
    let with_relay = destination("mx.dest.test", PEER, |a| a.credentials = Some(&relay));
    let other_ip = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10)), 25);
    let different = [
        destination("mx2.dest.test", PEER, |_| {}),
        destination("mx.dest.test", other_ip, |_| {}),
        destination("mx.dest.test", SocketAddr::new(PEER.ip(), 587), |_| {}),
        destination("mx.dest.test", PEER, |a| a.tls = TlsPolicy::Required),
        destination("mx.dest.test", PEER, |a| a.tls = TlsPolicy::Disabled),
        destination("mx.dest.test", PEER, |a| a.helo = "other.src.test"),
        with_relay.clone(),
        destination("mx.dest.test", PEER, |a| a.credentials = Some(&other_user)),
        destination("mx.dest.test", PEER, |a| {
            a.credentials = Some(&other_password)
        }),
        destination("mx.dest.test", PEER, |a| a.credentials = Some(&plaintext)),
    ];
    for (i, one) in different.iter().enumerate() {
        assert_ne!(*one, base, "{one:?}");
        for other in &different[i + 1..] {
            assert_ne!(one, other);
        }
    }
    assert_eq!(
        destination("mx.dest.test", PEER, |a| a.credentials = Some(&relay)),
        with_relay
    );
    // The password takes part in equality but never shows.
    assert!(!format!("{with_relay:?}").contains("s3cret"));
}

fn limits(idle_timeout_secs: u64, max_idle: usize, max_messages: u32) -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(idle_timeout_secs),
        max_idle_per_destination: max_idle,
        max_messages_per_connection: max_messages,
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn the_pool_hands_out_the_most_recent_connection_of_the_right_destination() {
    let mut idle = IdleSet::new(limits(5, 8, 100));
    let t0 = Instant::now();
    let mx = destination("mx.dest.test", PEER, |_| {});
    let other = destination("mx2.dest.test", PEER, |_| {});
    assert_eq!(idle.put(mx.clone(), "first", 1, t0), Ok(()));
    assert_eq!(idle.put(mx.clone(), "second", 1, t0 + secs(1)), Ok(()));
    assert_eq!(idle.len(), 2);
    assert_eq!(idle.take(&other, t0 + secs(2)), None);
    assert_eq!(idle.take(&mx, t0 + secs(2)), Some("second"));
    assert_eq!(idle.take(&mx, t0 + secs(2)), Some("first"));
    assert_eq!(idle.take(&mx, t0 + secs(2)), None);
    assert_eq!(idle.len(), 0);
}

#[test]
fn idle_connections_expire_after_the_timeout() {
    let mut idle = IdleSet::new(limits(5, 8, 100));
    let t0 = Instant::now();
    let mx = destination("mx.dest.test", PEER, |_| {});
    let other = destination("mx2.dest.test", PEER, |_| {});
    idle.put(mx.clone(), "old", 1, t0).expect("room");
    idle.put(other.clone(), "young", 1, t0 + secs(3))
        .expect("room");
    let just_before = t0 + Duration::from_millis(4999);
    assert_eq!(idle.take_expired(just_before), Vec::<&str>::new());
    // Not handed out once expired, and collected for closing; the young one stays.
    assert_eq!(idle.take(&mx, t0 + secs(5)), None);
    assert_eq!(idle.take_expired(t0 + secs(5)), vec!["old"]);
    assert_eq!(idle.len(), 1);
    assert_eq!(idle.take_expired(t0 + secs(7)), Vec::<&str>::new());
    assert_eq!(idle.take_expired(t0 + secs(8)), vec!["young"]);
    assert_eq!(idle.len(), 0);
}

#[test]
fn a_full_destination_or_a_used_up_connection_is_refused() {
    let mut idle = IdleSet::new(limits(5, 2, 3));
    let t0 = Instant::now();
    let mx = destination("mx.dest.test", PEER, |_| {});
    let other = destination("mx2.dest.test", PEER, |_| {});
    assert_eq!(idle.put(mx.clone(), 1, 1, t0), Ok(()));
    assert_eq!(idle.put(mx.clone(), 2, 2, t0), Ok(()));
    assert_eq!(idle.put(mx.clone(), 3, 1, t0), Err(3));
    // The limit is per destination.
    assert_eq!(idle.put(other.clone(), 4, 1, t0), Ok(()));
    // Three messages is the limit: such a connection quits instead.
    assert!(idle.keeps(2));
    assert!(!idle.keeps(3));
    assert_eq!(idle.put(other.clone(), 5, 3, t0), Err(5));
    let mut all = idle.take_all();
    all.sort_unstable();
    assert_eq!(all, vec![1, 2, 4]);
    assert_eq!(idle.len(), 0);
}

#[test]
fn expired_connections_make_room_once_collected() {
    let mut idle = IdleSet::new(limits(5, 1, 100));
    let t0 = Instant::now();
    let mx = destination("mx.dest.test", PEER, |_| {});
    idle.put(mx.clone(), "old", 1, t0).expect("room");
    // Parking first would be refused; the pool collects the expired one before parking.
    assert_eq!(idle.take_expired(t0 + secs(6)), vec!["old"]);
    assert_eq!(idle.put(mx.clone(), "new", 1, t0 + secs(6)), Ok(()));
    assert_eq!(idle.take(&mx, t0 + secs(7)), Some("new"));
}

#[test]
fn a_zero_limit_turns_reuse_off() {
    let t0 = Instant::now();
    let mx = destination("mx.dest.test", PEER, |_| {});
    for limits in [limits(0, 8, 100), limits(5, 0, 100), limits(5, 8, 0)] {
        let mut idle = IdleSet::new(limits);
        assert!(!idle.keeps(0), "{limits:?}");
        assert_eq!(idle.put(mx.clone(), 1, 0, t0), Err(1), "{limits:?}");
    }
}

#[test]
fn the_pool_is_shared_between_tasks() {
    fn shared<T: Send + Sync>() {}
    shared::<ConnectionPool>();
    let pool = ConnectionPool::default();
    assert_eq!(pool.n_idle(), 0);
    assert!(format!("{pool:?}").contains("max_messages_per_connection: 100"));
}
