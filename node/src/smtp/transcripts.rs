//! SMTP transcripts played in process against the in-memory store (`crate::transcript`): the
//! examples of RFC 5321 appendix D for the commands we support, then the edge cases the socket
//! tests in chaos-tests also cover.

use crate::mail_service::Service;
use crate::transcript::{Harness, Session};

/// A port-25 session (no TLS, so no AUTH).
const SMTP: Session = Session::Smtp {
    service: Service::Smtp,
    tls: false,
};
/// A submission session over implicit TLS.
const SUBMISSION_TLS: Session = Session::Smtp {
    service: Service::Submission,
    tls: true,
};

/// The default message size limit, 50 MiB.
const SIZE: u64 = 52_428_800;

/// The greeting, EHLO, and its reply with the extensions we offer (AUTH where credentials may
/// be sent).
fn ehlo(size: u64, auth: bool) -> String {
    let last = if auth {
        "S: 250-DSN\nS: 250 AUTH PLAIN LOGIN"
    } else {
        "S: 250 DSN"
    };
    format!(
        "
        S: 220 mail.example.test ESMTP mcluster
        C: EHLO bar.example
        S: 250-mail.example.test Hello bar.example
        S: 250-PIPELINING
        S: 250-SIZE {size}
        S: 250-8BITMIME
        S: 250-SMTPUTF8
        S: 250-ENHANCEDSTATUSCODES
        {last}
        "
    )
}

fn subjects(harness: &Harness, account: &str) -> Vec<String> {
    let state = harness.context.store.state();
    state
        .messages(account, raft_store::INBOX)
        .unwrap()
        .iter()
        .map(|m| {
            state
                .summary(&m.blob)
                .unwrap()
                .expect("a delivered message has its summary")
                .envelope
                .subject
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// RFC 5321 D.1, a typical transaction: one recipient unknown, two delivered.
#[tokio::test]
async fn rfc5321_d1_a_typical_transaction() {
    let harness = Harness::new();
    harness.add_account("jones@example.test");
    harness.add_account("brown@example.test");
    let script = format!(
        "
        {ehlo}
        C: MAIL FROM:<Smith@bar.example>
        S: 250 2.1.0 Ok
        C: RCPT TO:<Jones@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<Green@example.test>
        S: 550 5.1.1 User unknown in local recipient table
        C: RCPT TO:<Brown@example.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: D.1
        C:
        C: Blah blah blah...
        C: ...etc. etc. etc.
        C: .
        S: 250 2.0.0 Ok: queued as {{..}}
        C: QUIT
        S: 221 2.0.0 Bye
        ",
        ehlo = ehlo(SIZE, false),
    );
    harness.play(SMTP, &script).await;
    assert_eq!(subjects(&harness, "jones@example.test"), ["D.1"]);
    assert_eq!(subjects(&harness, "brown@example.test"), ["D.1"]);
}

/// RFC 5321 D.2, an aborted transaction: RSET forgets the sender and recipients, and nothing
/// is delivered.
#[tokio::test]
async fn rfc5321_d2_an_aborted_transaction() {
    let harness = Harness::new();
    let script = format!(
        "
        {ehlo}
        C: MAIL FROM:<Smith@bar.example>
        S: 250 2.1.0 Ok
        C: RCPT TO:<alice@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<Green@example.test>
        S: 550 5.1.1 User unknown in local recipient table
        C: RSET
        S: 250 2.0.0 Ok
        C: DATA
        S: 503 5.5.1 Need MAIL command
        C: QUIT
        S: 221 2.0.0 Bye
        ",
        ehlo = ehlo(SIZE, false),
    );
    harness.play(SMTP, &script).await;
    assert!(subjects(&harness, "alice@example.test").is_empty());
}

/// RFC 5321 D.4 (verifying, then sending): VRFY gives nothing away (252, RFC 5321 3.5.3);
/// MAIL before HELO is out of sequence.
#[tokio::test]
async fn rfc5321_d4_vrfy_does_not_confirm_an_address() {
    let harness = Harness::new();
    harness
        .play(
            SMTP,
            "
            S: 220 mail.example.test ESMTP mcluster
            C: MAIL FROM:<a@remote.test>
            S: 503 5.5.1 Send HELO/EHLO first
            C: HELO bar.example
            S: 250 mail.example.test
            C: VRFY alice
            S: 252 2.5.2 Cannot VRFY user, but will accept message
            C: VRFY nobody
            S: 252 2.5.2 Cannot VRFY user, but will accept message
            C: NOOP
            S: 250 2.0.0 Ok
            C: HELP
            S: 214 2.0.0 See RFC 5321
            C: QUIT
            S: 221 2.0.0 Bye
            ",
        )
        .await;
}

/// Refusals with their codes; the session goes on after each, up to ten errors.
#[tokio::test]
async fn refusals_get_clear_codes_and_the_session_survives() {
    let harness = Harness::new();
    let long = format!("C: MAIL FROM:<{}@remote.test>", "a".repeat(10_000));
    let script = format!(
        "
        {ehlo}
        # No AUTH without TLS.
        C: AUTH PLAIN AGFsaWNlAHg=
        S: 538 5.7.11 Encryption required for requested authentication mechanism
        C: MAIL FROM:<a@remote.test> SIZE=999999999
        S: 552 5.3.4 Message size exceeds fixed maximum message size
        C: MAIL FROM:<a@remote.test> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x
        S: 250 2.1.0 Ok
        C: MAIL FROM:<b@remote.test>
        S: 503 5.5.1 Nested MAIL command
        C: RCPT TO:<nobody@example.test>
        S: 550 5.1.1 User unknown in local recipient table
        C: RCPT TO:<victim@elsewhere.test>
        S: 554 5.7.1 Relay access denied
        C: RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test
        S: 250 2.1.5 Ok
        C: RSET
        S: 250 2.0.0 Ok
        C: RCPT TO:<alice@example.test>
        S: 503 5.5.1 Need MAIL command
        {long}
        S: 500 5.5.2 Line too long
        R: NOOP\\0\\r\\n
        S: 501 5.5.4 Syntax error: {{..}}
        C: FROB
        S: 500 5.5.1 Command unrecognized
        C: NOOP
        S: 250 2.0.0 Ok
        # The tenth error ends the session.
        C: MAIL FROM:<a@remote.test
        S: 501 5.5.4 Syntax error: address must be enclosed in <>
        S: 421 4.7.0 Too many errors, closing connection
        ",
        ehlo = ehlo(SIZE, false),
    );
    harness.play(SMTP, &script).await;
}

/// Bodies with bare line ends, NULs, overlong lines or too many bytes are refused after the
/// dot; the session stays usable, and the message that is right is delivered.
#[tokio::test]
async fn bad_bodies_are_refused_after_the_dot() {
    let harness = Harness::new();
    harness.apply(raft_store::Command::SetMailPolicy(raft_store::MailPolicy {
        max_message_bytes: 20_000,
        ..Default::default()
    }));
    let transaction = "
        C: MAIL FROM:<a@remote.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<alice@example.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
    ";
    let long_line = format!("C: {}", "x".repeat(10_000));
    let big: String = (0..800)
        .map(|_| "C: 0123456789012345678901234567890123456789\n")
        .collect();
    let script = format!(
        "
        {ehlo_small}
        {transaction}
        R: Subject: bare lf\\nline\\r\\n.\\r\\n
        S: 550 5.6.0 {{..}}
        {transaction}
        R: Subject: nul\\r\\n\\r\\nx\\0y\\r\\n.\\r\\n
        S: 550 5.6.0 {{..}}
        {transaction}
        C: Subject: long
        C:
        {long_line}
        C: .
        S: 550 5.6.0 {{..}}
        {transaction}
        C: Subject: big
        C:
        {big}
        C: .
        S: 552 5.3.4 {{..}}
        {transaction}
        C: Subject: fine
        C:
        C: ..a line that starts with a dot
        C: .
        S: 250 2.0.0 Ok: queued as {{..}}
        C: QUIT
        S: 221 2.0.0 Bye
        ",
        ehlo_small = ehlo(20_000, false),
    );
    harness.play(SMTP, &script).await;
    assert_eq!(subjects(&harness, "alice@example.test"), ["fine"]);
    let state = harness.context.store.state();
    let message = &state
        .messages("alice@example.test", raft_store::INBOX)
        .unwrap()[0];
    let raw = harness
        .context
        .store
        .read_blob(&message.blob)
        .await
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert!(
        text.starts_with("Return-Path: <a@remote.test>\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n.a line that starts with a dot\r\n"),
        "{text}"
    );
}

/// RFC 2920: pipelined commands are answered in order, in one go.
#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let harness = Harness::new();
    let script = format!(
        "
        {ehlo}
        R: MAIL FROM:<a@remote.test>\\r\\nRCPT TO:<alice@example.test>\\r\\nRCPT TO:<x@example.test>\\r\\nDATA\\r\\n
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 550 5.1.1 User unknown in local recipient table
        S: 354 End data with <CR><LF>.<CR><LF>
        R: Subject: pipelined\\r\\n\\r\\nbody\\r\\n.\\r\\nNOOP\\r\\n
        S: 250 2.0.0 Ok: queued as {{..}}
        S: 250 2.0.0 Ok
        C: QUIT
        S: 221 2.0.0 Bye
        ",
        ehlo = ehlo(SIZE, false),
    );
    harness.play(SMTP, &script).await;
    assert_eq!(subjects(&harness, "alice@example.test"), ["pipelined"]);
}

/// Ten errors end a session with 421.
#[tokio::test]
async fn ten_errors_end_the_session() {
    let harness = Harness::new();
    let frobs: String = (0..10)
        .map(|_| "C: FROB\nS: 500 5.5.1 Command unrecognized\n")
        .collect();
    let script = format!(
        "
        S: 220 mail.example.test ESMTP mcluster
        {frobs}
        S: 421 4.7.0 Too many errors, closing connection
        "
    );
    harness.play(SMTP, &script).await;
}

/// Submission: MAIL needs AUTH; a wrong password is refused; AUTH PLAIN (RFC 4954) and then
/// mail to a local and a remote recipient, the remote one queued for the outbound engine.
#[tokio::test]
async fn submission_authenticates_then_takes_local_and_remote_mail() {
    let harness = Harness::new();
    use base64::Engine;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let wrong = b64("\0alice@example.test\0wrong");
    let right = b64(&format!(
        "\0alice@example.test\0{}",
        crate::transcript::PASSWORD
    ));
    let script = format!(
        "
        {ehlo_auth}
        C: MAIL FROM:<alice@example.test>
        S: 530 5.7.0 Authentication required
        C: AUTH PLAIN {wrong}
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH PLAIN {right}
        S: 235 2.7.0 Authentication successful
        C: AUTH PLAIN {right}
        S: 503 5.5.1 Already authenticated
        C: MAIL FROM:<alice@example.test>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@example.test>
        S: 250 2.1.5 Ok
        C: RCPT TO:<someone@elsewhere.test>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: From: alice@example.test
        C: Subject: out and in
        C:
        C: hello
        C: .
        S: 250 2.0.0 Ok: queued as {{..}}
        C: QUIT
        S: 221 2.0.0 Bye
        ",
        ehlo_auth = ehlo(SIZE, true),
    );
    harness.play(SUBMISSION_TLS, &script).await;
    assert_eq!(subjects(&harness, "bob@example.test"), ["out and in"]);
    let queued = harness.context.store.state().due(i64::MAX, 10).unwrap();
    assert_eq!(queued.len(), 1, "the remote recipient is queued once");
}
