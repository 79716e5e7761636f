//! The outbound SMTP client (`node::outbound::client`) against real SMTP sinks: what each kind
//! of reply does to each recipient, and what the sink recorded of what we sent.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_tests::outbound_lab::{self, SinkRecord, SinkSpec, SmtpSink, Stage};
use node::outbound::client::{
    self, Attempt, ConnectionPool, Credentials, Delivery, Timeouts, TlsPolicy,
};
use raft_store::AttemptOutcome;
use tokio::runtime::Runtime;

const SENDER: &str = "sender@src.test";
const HELO: &str = "out.src.test";

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 40, d))
}

fn message(id: &str, body: &str) -> Vec<u8> {
    format!("Message-ID: <{id}@src.test>\r\nSubject: client test\r\n\r\n{body}").into_bytes()
}

/// The sha256 the sink computes, by the same Python (chaos-tests links no hash crate).
fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new(outbound_lab::python().expect("python"))
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(bytes)
        .expect("write to python");
    let out = child.wait_with_output().expect("python output");
    String::from_utf8(out.stdout)
        .expect("hex")
        .trim()
        .to_owned()
}

struct Run<'a> {
    addresses: Vec<IpAddr>,
    port: u16,
    sender: &'a str,
    recipients: Vec<String>,
    message: Vec<u8>,
    tls: TlsPolicy,
    credentials: Option<Credentials>,
    timeouts: Timeouts,
}

impl<'a> Run<'a> {
    fn to(sink: &SmtpSink, recipients: &[&str], message: Vec<u8>) -> Run<'a> {
        Run {
            addresses: vec![sink.addr().ip()],
            port: sink.addr().port(),
            sender: SENDER,
            recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
            message,
            tls: TlsPolicy::Opportunistic,
            credentials: None,
            timeouts: Timeouts {
                // Long enough for a loaded machine, short enough that a hang fails the test.
                connect: Duration::from_secs(5),
                greeting: Duration::from_secs(20),
                command: Duration::from_secs(20),
                mail: Duration::from_secs(20),
                rcpt: Duration::from_secs(20),
                data_init: Duration::from_secs(20),
                data_block: Duration::from_secs(20),
                data_done: Duration::from_secs(20),
                quit: Duration::from_secs(5),
            },
        }
    }

    /// One attempt without a pool, on a runtime of its own.
    fn deliver(&self) -> Delivery {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        self.deliver_on(&runtime, None)
    }

    /// One attempt on `runtime`, through `pool` when given (a pool's connections belong to the
    /// runtime that opened them, so pooled attempts share one).
    fn deliver_on(&self, runtime: &Runtime, pool: Option<&ConnectionPool>) -> Delivery {
        let attempt = Attempt {
            host: "mx.dest.test",
            addresses: &self.addresses,
            port: self.port,
            helo: HELO,
            sender: self.sender,
            recipients: &self.recipients,
            message: &self.message,
            tls: self.tls,
            credentials: self.credentials.as_ref(),
            timeouts: self.timeouts,
        };
        runtime.block_on(client::deliver(&attempt, pool))
    }
}

/// Each outcome as text: "a@dest.test delivered", "b@dest.test deferred 4.2.1", "failed 5.1.1".
fn outcomes(delivery: &Delivery) -> Vec<String> {
    delivery
        .outcomes
        .iter()
        .map(|(rcpt, outcome)| match outcome {
            AttemptOutcome::Delivered => format!("{rcpt} delivered"),
            AttemptOutcome::Deferred(err) => format!("{rcpt} deferred {}", err.status),
            AttemptOutcome::Failed(err) => format!("{rcpt} failed {}", err.status),
        })
        .collect()
}

#[track_caller]
fn check_outcomes(delivery: &Delivery, expected: &[&str]) {
    assert_eq!(outcomes(delivery), expected, "outcomes {delivery:#?}");
}

/// The sink's records, waiting briefly for the one written as the connection closed.
fn records(sink: &SmtpSink, n: usize) -> Vec<SinkRecord> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = sink.records().expect("sink records");
        if records.len() >= n || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn diagnostic(outcome: &AttemptOutcome) -> &str {
    match outcome {
        AttemptOutcome::Delivered => "",
        AttemptOutcome::Deferred(err) | AttemptOutcome::Failed(err) => &err.diagnostic,
    }
}

#[test]
fn outbound_client_delivers_and_the_sink_gets_exactly_the_message() {
    let sink = SmtpSink::start(v4(1), 0, &SinkSpec::accept_all()).expect("start sink");
    // Lines starting with a dot, a lone dot and one that looks like the end of data.
    let body = ".leading dot\r\n.\r\n..two dots\r\nplain\r\n";
    let message = message("accept", body);
    let run = Run::to(&sink, &["a@dest.test", "b@dest.test"], message.clone());
    let delivery = run.deliver();
    check_outcomes(
        &delivery,
        &["a@dest.test delivered", "b@dest.test delivered"],
    );
    assert_eq!(delivery.address, Some(sink.addr()));
    assert!(!delivery.try_next_host);

    let records = records(&sink, 1);
    assert_eq!(records.len(), 1, "{records:#?}");
    let record = &records[0];
    assert!(record.delivered());
    assert_eq!(record.helo.as_deref(), Some(HELO));
    assert_eq!(record.mail_from.as_deref(), Some(SENDER));
    assert_eq!(record.rcpts, ["a@dest.test", "b@dest.test"]);
    assert_eq!(record.size, Some(message.len() as u64));
    assert_eq!(record.data_sha256, Some(sha256(&message)));
    assert_eq!(record.message_id.as_deref(), Some("<accept@src.test>"));
    assert!(!record.tls);
}

#[test]
fn outbound_client_maps_rcpt_replies_per_recipient() {
    let spec = SinkSpec::accept_all()
        .reply(Stage::Rcpt, Some("^unknown@"), "550 5.1.1 no such user")
        .reply(Stage::Rcpt, Some("^full@"), "452 4.2.2 mailbox full")
        .reply(Stage::Rcpt, Some("^plain@"), "451 try later");
    let sink = SmtpSink::start(v4(2), 0, &spec).expect("start sink");
    let run = Run::to(
        &sink,
        &[
            "ok@dest.test",
            "unknown@dest.test",
            "full@dest.test",
            "plain@dest.test",
        ],
        message("mixed", "hi\r\n"),
    );
    let delivery = run.deliver();
    check_outcomes(
        &delivery,
        &[
            "ok@dest.test delivered",
            "unknown@dest.test failed 5.1.1",
            "full@dest.test deferred 4.2.2",
            // No enhanced code in the reply: derived from its class.
            "plain@dest.test deferred 4.0.0",
        ],
    );
    let (_, failed) = &delivery.outcomes[1];
    let AttemptOutcome::Failed(err) = failed else {
        panic!("{failed:?}")
    };
    assert!(err.diagnostic.contains("550 5.1.1 no such user"), "{err:?}");
    assert_eq!(err.remote.as_deref(), Some("mx.dest.test"));
    assert!(err.at > 1_700_000_000);
    let records = records(&sink, 1);
    assert_eq!(records[0].rcpts, ["ok@dest.test"]);
    assert!(records[0].delivered());
}

#[test]
fn outbound_client_fails_everyone_on_5xx_at_data() {
    let spec = SinkSpec::accept_all().reply(Stage::Data, None, "554 5.6.0 content rejected");
    let sink = SmtpSink::start(v4(3), 0, &spec).expect("start sink");
    let run = Run::to(
        &sink,
        &["a@dest.test", "b@dest.test"],
        message("d", "x\r\n"),
    );
    let delivery = run.deliver();
    check_outcomes(
        &delivery,
        &["a@dest.test failed 5.6.0", "b@dest.test failed 5.6.0"],
    );
}

#[test]
fn outbound_client_defers_everyone_on_4xx_at_mail() {
    let spec = SinkSpec::accept_all().reply(Stage::Mail, None, "451 4.3.0 queue full");
    let sink = SmtpSink::start(v4(4), 0, &spec).expect("start sink");
    let delivery = Run::to(
        &sink,
        &["a@dest.test", "b@dest.test"],
        message("m", "x\r\n"),
    )
    .deliver();
    check_outcomes(
        &delivery,
        &["a@dest.test deferred 4.3.0", "b@dest.test deferred 4.3.0"],
    );
    // Nothing got past MAIL: the next MX host may do better.
    assert!(delivery.try_next_host);
    assert!(diagnostic(&delivery.outcomes[0].1).contains("451 4.3.0 queue full"));
}

#[test]
fn outbound_client_fails_everyone_on_5xx_at_mail() {
    let spec = SinkSpec::accept_all().reply(Stage::Mail, None, "550 5.7.1 sender refused");
    let sink = SmtpSink::start(v4(5), 0, &spec).expect("start sink");
    let delivery = Run::to(
        &sink,
        &["a@dest.test", "b@dest.test"],
        message("m5", "x\r\n"),
    )
    .deliver();
    check_outcomes(
        &delivery,
        &["a@dest.test failed 5.7.1", "b@dest.test failed 5.7.1"],
    );
    assert!(!delivery.try_next_host);
}

#[test]
fn outbound_client_moves_to_the_next_address_when_one_refuses_connections() {
    let sink = SmtpSink::start(v4(7), 0, &SinkSpec::accept_all()).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("next", "x\r\n"));
    // Nothing listens on 127.0.40.6 at the sink's port.
    run.addresses = vec![v4(6), v4(7)];
    let delivery = run.deliver();
    check_outcomes(&delivery, &["a@dest.test delivered"]);
    assert_eq!(delivery.address, Some(sink.addr()));
    assert_eq!(records(&sink, 1).len(), 1);

    // With only the closed one, the attempt is deferred with "no answer" and no remote.
    run.addresses = vec![v4(6)];
    let delivery = run.deliver();
    check_outcomes(&delivery, &["a@dest.test deferred 4.4.1"]);
    assert!(delivery.try_next_host);
    let AttemptOutcome::Deferred(err) = &delivery.outcomes[0].1 else {
        unreachable!()
    };
    assert_eq!(err.remote, None);
    assert!(err.diagnostic.contains("refused"), "{err:?}");
}

#[test]
fn outbound_client_sends_the_null_sender() {
    let sink = SmtpSink::start(v4(8), 0, &SinkSpec::accept_all()).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("bounce", "x\r\n"));
    run.sender = "";
    check_outcomes(&run.deliver(), &["a@dest.test delivered"]);
    let records = records(&sink, 1);
    assert_eq!(records[0].mail_from.as_deref(), Some("<>"));
}

#[test]
fn outbound_client_uses_starttls_when_offered() {
    let sink = SmtpSink::start(v4(9), 0, &SinkSpec::accept_all().starttls()).expect("start sink");
    let message = message("tls", "secret\r\n");
    let delivery = Run::to(&sink, &["a@dest.test"], message.clone()).deliver();
    check_outcomes(&delivery, &["a@dest.test delivered"]);
    assert!(delivery.tls);
    let records = records(&sink, 1);
    assert!(records[0].tls, "{records:#?}");
    assert_eq!(records[0].data_sha256, Some(sha256(&message)));
}

#[test]
fn outbound_client_requires_tls_when_told_to() {
    let sink = SmtpSink::start(v4(10), 0, &SinkSpec::accept_all()).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("notls", "x\r\n"));
    run.tls = TlsPolicy::Required;
    let delivery = run.deliver();
    check_outcomes(&delivery, &["a@dest.test deferred 4.7.0"]);
    assert!(sink.records().expect("records").is_empty());
}

#[test]
fn outbound_client_authenticates_to_a_smarthost() {
    let spec = SinkSpec::accept_all().starttls().auth("relay", "s3cret");
    let sink = SmtpSink::start(v4(11), 0, &spec).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("auth", "x\r\n"));
    run.tls = TlsPolicy::Required;
    run.credentials = Some(Credentials {
        user: "relay".into(),
        password: "s3cret".into(),
        allow_plaintext: false,
    });
    check_outcomes(&run.deliver(), &["a@dest.test delivered"]);
    let records = records(&sink, 1);
    assert_eq!(records[0].auth_user.as_deref(), Some("relay"));
    assert!(records[0].tls);

    // Wrong password: deferred (a configuration problem must not bounce), nothing delivered.
    run.credentials = Some(Credentials {
        user: "relay".into(),
        password: "wrong".into(),
        allow_plaintext: false,
    });
    let delivery = run.deliver();
    let [(_, AttemptOutcome::Deferred(err))] = delivery.outcomes.as_slice() else {
        panic!("{delivery:#?}")
    };
    assert!(err.status.starts_with('4'), "{err:?}");
    assert!(
        !err.diagnostic.contains("wrong"),
        "credentials leaked: {err:?}"
    );
    assert_eq!(
        sink.records()
            .expect("records")
            .iter()
            .filter(|r| r.delivered())
            .count(),
        1
    );
}

#[test]
fn outbound_client_keeps_credentials_off_plain_connections() {
    let spec = SinkSpec::accept_all().auth("relay", "s3cret");
    let sink = SmtpSink::start(v4(12), 0, &spec).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("plainauth", "x\r\n"));
    run.credentials = Some(Credentials {
        user: "relay".into(),
        password: "s3cret".into(),
        allow_plaintext: false,
    });
    check_outcomes(&run.deliver(), &["a@dest.test deferred 4.7.0"]);
    // Allowed explicitly (a relay on a trusted link), it logs in without TLS (AUTH LOGIN
    // or PLAIN, whichever aiosmtpd lists; both are implemented).
    run.credentials = Some(Credentials {
        user: "relay".into(),
        password: "s3cret".into(),
        allow_plaintext: true,
    });
    check_outcomes(&run.deliver(), &["a@dest.test delivered"]);
    let records = records(&sink, 1);
    assert_eq!(
        records.last().and_then(|r| r.auth_user.as_deref()),
        Some("relay")
    );
    assert!(!records.last().expect("a record").tls);
}

#[test]
fn outbound_client_defers_when_the_server_is_too_slow() {
    let spec = SinkSpec::accept_all().delay(Duration::from_secs(5));
    let sink = SmtpSink::start(v4(13), 0, &spec).expect("start sink");
    let mut run = Run::to(&sink, &["a@dest.test"], message("slow", "x\r\n"));
    run.timeouts.mail = Duration::from_millis(300);
    run.timeouts.quit = Duration::from_millis(300);
    let started = Instant::now();
    let delivery = run.deliver();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    check_outcomes(&delivery, &["a@dest.test deferred 4.4.2"]);
    let text = diagnostic(&delivery.outcomes[0].1);
    assert!(
        text.contains("timeout") && text.contains("MAIL FROM"),
        "{text}"
    );
}

#[test]
fn outbound_client_sends_8bit_messages_intact() {
    let sink = SmtpSink::start(v4(14), 0, &SinkSpec::accept_all()).expect("start sink");
    let message = message("8bit", "Gr\u{fc}\u{df}e, caf\u{e9} \u{2603}\r\n");
    check_outcomes(
        &Run::to(&sink, &["a@dest.test"], message.clone()).deliver(),
        &["a@dest.test delivered"],
    );
    let records = records(&sink, 1);
    assert_eq!(records[0].data_sha256, Some(sha256(&message)));
}
