//! POP3 transcripts played in process against the in-memory store (`crate::transcript`): the
//! examples of RFC 1939 for the commands we support (with our reply texts, which the RFC leaves
//! to the server), RFC 2449 CAPA and RFC 5034 AUTH, then the edge cases.

use crate::transcript::{Harness, PASSWORD, Session};

/// A session over implicit TLS (POP3S).
const POP3S: Session = Session::Pop3 { tls: true };
/// A session on the plain port before STLS.
const POP3_PLAIN: Session = Session::Pop3 { tls: false };

const FIRST: &str = "Subject: first\r\n\r\nline one\r\n.starts with a dot\r\n";
const SECOND: &str = "Subject: second\r\nX-Long: yes\r\n\r\nbody 1\r\nbody 2\r\nbody 3\r\n";

/// The greeting, then alice logs in with USER and PASS.
fn login() -> String {
    format!(
        "
        S: +OK mail.example.test POP3 mcluster ready
        C: USER alice@example.test
        S: +OK send PASS
        C: PASS {PASSWORD}
        S: +OK logged in, 2 messages
        "
    )
}

/// The greeting and CAPA, with USER and SASL when credentials may be sent.
fn capa(credentials: bool) -> String {
    let login = if credentials {
        "S: USER\nS: SASL PLAIN\n"
    } else {
        ""
    };
    format!(
        "
        S: +OK mail.example.test POP3 mcluster ready
        C: CAPA
        S: +OK capability list follows
        S: TOP
        S: UIDL
        S: RESP-CODES
        S: AUTH-RESP-CODE
        S: PIPELINING
        {login}
        S: IMPLEMENTATION mcluster
        S: .
        "
    )
}

/// alice with the two messages above.
async fn maildrop() -> Harness {
    let harness = Harness::new();
    harness.deliver("alice@example.test", FIRST, 1_700_000_000);
    harness.deliver("alice@example.test", SECOND, 1_700_000_100);
    harness
}

fn inbox_len(harness: &Harness) -> usize {
    harness
        .context
        .store
        .state()
        .messages("alice@example.test", raft_store::INBOX)
        .unwrap()
        .len()
}

/// RFC 1939 section 10, the example session: log in, STAT, LIST, RETR and DELE each message,
/// QUIT; the UPDATE state removes both.
#[tokio::test]
async fn rfc1939_example_session() {
    let harness = maildrop().await;
    let (one, two) = (FIRST.len(), SECOND.len());
    let total = one + two;
    let script = format!(
        "
        {login}
        C: STAT
        S: +OK 2 {total}
        C: LIST
        S: +OK scan listing follows
        S: 1 {one}
        S: 2 {two}
        S: .
        C: RETR 1
        S: +OK {one} octets
        S: Subject: first
        S:
        S: line one
        S: ..starts with a dot
        S: .
        C: DELE 1
        S: +OK message 1 deleted
        C: RETR 2
        S: +OK {two} octets
        S: Subject: second
        S: X-Long: yes
        S:
        S: body 1
        S: body 2
        S: body 3
        S: .
        C: DELE 2
        S: +OK message 2 deleted
        C: QUIT
        S: +OK bye, 2 messages deleted
        ",
        login = login(),
    );
    harness.play(POP3S, &script).await;
    assert_eq!(inbox_len(&harness), 0);
}

/// RFC 1939 sections 5 and 7: LIST and UIDL of one message, an unknown one, TOP, NOOP, DELE
/// twice, STAT without the deleted message, RSET, and a QUIT that deletes nothing.
#[tokio::test]
async fn rfc1939_transaction_commands() {
    let harness = maildrop().await;
    let (one, two) = (FIRST.len(), SECOND.len());
    let script = format!(
        "
        {login}
        C: LIST 2
        S: +OK 2 {two}
        C: LIST 3
        S: -ERR no such message
        C: UIDL
        S: +OK unique-id listing follows
        S: 1 {{..}}.1
        S: 2 {{..}}.2
        S: .
        C: UIDL 2
        S: +OK 2 {{..}}.2
        C: TOP 2 1
        S: +OK {two} octets
        S: Subject: second
        S: X-Long: yes
        S:
        S: body 1
        S: .
        C: TOP 1 0
        S: +OK {one} octets
        S: Subject: first
        S:
        S: .
        C: NOOP
        S: +OK
        C: DELE 1
        S: +OK message 1 deleted
        C: DELE 1
        S: -ERR message is deleted
        C: STAT
        S: +OK 1 {two}
        C: LIST
        S: +OK scan listing follows
        S: 2 {two}
        S: .
        C: RETR 1
        S: -ERR message is deleted
        C: RSET
        S: +OK maildrop has been reset
        C: STAT
        S: +OK 2 {total}
        C: QUIT
        S: +OK bye
        ",
        total = one + two,
        login = login(),
    );
    harness.play(POP3S, &script).await;
    assert_eq!(inbox_len(&harness), 2, "RSET undid the deletion");
}

/// RFC 2449 CAPA and RFC 5034 AUTH PLAIN, with and without an initial response.
#[tokio::test]
async fn capa_and_sasl_plain() {
    let harness = maildrop().await;
    use base64::Engine;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let wrong = b64("\0alice@example.test\0wrong");
    let right = b64(&format!("\0alice@example.test\0{PASSWORD}"));
    let script = format!(
        "
        {capa}
        C: AUTH
        S: +OK mechanisms follow
        S: PLAIN
        S: .
        C: AUTH CRAM-MD5
        S: -ERR unsupported SASL mechanism
        C: AUTH PLAIN {wrong}
        S: -ERR [AUTH] authentication failed
        C: AUTH PLAIN
        S: +{{..}}
        C: *
        S: -ERR authentication cancelled
        C: AUTH PLAIN
        S: +{{..}}
        C: {right}
        S: +OK logged in, 2 messages
        C: AUTH PLAIN {right}
        S: -ERR already logged in
        C: QUIT
        S: +OK bye
        ",
        capa = capa(true),
    );
    harness.play(POP3S, &script).await;
}

/// On the plain port, before STLS: no credentials in clear, and no STLS when the cluster has
/// no certificate; an overlong line and unknown commands get errors, and ten errors close the
/// session.
#[tokio::test]
async fn no_credentials_in_clear_and_errors_are_bounded() {
    let harness = maildrop().await;
    let long = format!("C: USER {}", "a".repeat(300));
    let errors: String = (0..5)
        .map(|_| "C: FROB\nS: -ERR unknown command\n")
        .collect();
    let script = format!(
        "
        {capa}
        C: STLS
        S: -ERR TLS not available
        C: USER alice@example.test
        S: -ERR [AUTH] log in after STLS: credentials are not sent in clear
        C: PASS {PASSWORD}
        S: -ERR [AUTH] log in after STLS: credentials are not sent in clear
        C: STAT
        S: -ERR not logged in
        {long}
        S: -ERR {{..}}
        {errors}
        S: -ERR too many errors, closing connection
        ",
        capa = capa(false),
    );
    harness.play(POP3_PLAIN, &script).await;
}
