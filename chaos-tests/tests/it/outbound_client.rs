//! The outbound SMTP client (`node::outbound::client`) against real SMTP sinks: what each kind
//! of reply does to each recipient, what the sink recorded of what we sent, and which
//! connections a `ConnectionPool` reused.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_tests::outbound_lab::{self, SinkConnection, SinkRecord, SinkSpec, SmtpSink, Stage};
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

/// A runtime for pooled attempts; its workers also run the QUITs the pool sends on its own.
fn pool_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
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

/// The sink's ended connections, waiting up to ten seconds until `ready` holds for them.
fn connections_when(
    sink: &SmtpSink,
    ready: impl Fn(&[SinkConnection]) -> bool,
) -> Vec<SinkConnection> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let connections = sink.connections().expect("sink connections");
        if ready(&connections) || Instant::now() > deadline {
            return connections;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The connection each record came on, in order.
fn connection_ids(records: &[SinkRecord]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r.connection.expect("the sink numbers connections"))
        .collect()
}

/// For each of `runs`' deliveries through `pool`: whether it reused a connection, after checking
/// that each recipient got `outcome`.
#[track_caller]
fn check_pooled(
    runtime: &Runtime,
    pool: &ConnectionPool,
    runs: &[&Run<'_>],
    outcome: &str,
) -> Vec<bool> {
    runs.iter()
        .map(|run| {
            let delivery = run.deliver_on(runtime, Some(pool));
            let expected: Vec<String> = run
                .recipients
                .iter()
                .map(|r| format!("{r} {outcome}"))
                .collect();
            assert_eq!(outcomes(&delivery), expected, "outcomes {delivery:#?}");
            delivery.reused
        })
        .collect()
}

#[test]
fn outbound_client_pool_carries_several_messages_on_one_connection() {
    let sink = SmtpSink::start(v4(20), 0, &SinkSpec::accept_all()).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let runs: Vec<Run> = (0..3)
        .map(|i| {
            Run::to(
                &sink,
                &["a@dest.test"],
                message(&format!("pooled{i}"), "x\r\n"),
            )
        })
        .collect();
    let reused = check_pooled(
        &runtime,
        &pool,
        &runs.iter().collect::<Vec<_>>(),
        "delivered",
    );
    assert_eq!(reused, [false, true, true]);
    assert_eq!(pool.n_idle(), 1);

    let records = records(&sink, 3);
    assert!(records.iter().all(SinkRecord::delivered), "{records:#?}");
    assert_eq!(connection_ids(&records), [1, 1, 1]);
    let ids: Vec<_> = records.iter().map(|r| r.message_id.clone()).collect();
    assert_eq!(
        ids,
        [
            "<pooled0@src.test>",
            "<pooled1@src.test>",
            "<pooled2@src.test>"
        ]
        .map(|id| Some(id.to_owned()))
    );
    // Still open: nothing has ended yet.
    assert!(sink.connections().expect("connections").is_empty());

    runtime.block_on(pool.close_idle());
    assert_eq!(pool.n_idle(), 0);
    let connections = connections_when(&sink, |c| !c.is_empty());
    let [connection] = connections.as_slice() else {
        panic!("{connections:#?}")
    };
    // One RSET probe before each reused message, then QUIT.
    assert_eq!(
        (connection.transactions, connection.rsets, connection.quit),
        (3, 2, true),
        "{connection:#?}"
    );
}

#[test]
fn outbound_client_pool_reuses_tls_sessions() {
    let sink = SmtpSink::start(v4(21), 0, &SinkSpec::accept_all().starttls()).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let message = message("tlspool", "secret\r\n");
    let run = Run::to(&sink, &["a@dest.test"], message.clone());
    for reused in [false, true] {
        let delivery = run.deliver_on(&runtime, Some(&pool));
        check_outcomes(&delivery, &["a@dest.test delivered"]);
        assert_eq!((delivery.tls, delivery.reused), (true, reused));
    }
    let records = records(&sink, 2);
    assert_eq!(connection_ids(&records), [1, 1]);
    assert!(records.iter().all(|r| r.tls), "{records:#?}");
    assert_eq!(records[1].data_sha256, Some(sha256(&message)));
}

#[test]
fn outbound_client_pool_replaces_a_connection_the_server_closed_while_idle() {
    let spec = SinkSpec::accept_all().idle_timeout(Duration::from_secs(1));
    let sink = SmtpSink::start(v4(22), 0, &spec).expect("start sink");
    let runtime = pool_runtime();
    // The pool would keep it for a minute; the server gives up first.
    let pool = ConnectionPool::new(Duration::from_secs(60), 8, 100);
    let first = Run::to(&sink, &["a@dest.test"], message("before", "x\r\n"));
    assert_eq!(
        check_pooled(&runtime, &pool, &[&first], "delivered"),
        [false]
    );
    assert_eq!(pool.n_idle(), 1);
    let closed = connections_when(&sink, |c| !c.is_empty());
    assert_eq!(closed.len(), 1, "the sink did not drop the idle client");
    assert!(!closed[0].quit, "{closed:#?}");

    // The stale connection is noticed and replaced; the message does not notice.
    let second = Run::to(&sink, &["a@dest.test"], message("after", "x\r\n"));
    assert_eq!(
        check_pooled(&runtime, &pool, &[&second], "delivered"),
        [false]
    );
    let records = records(&sink, 2);
    assert_eq!(connection_ids(&records), [1, 2]);
    assert!(records.iter().all(SinkRecord::delivered), "{records:#?}");
    assert_eq!(pool.n_idle(), 1);
}

#[test]
fn outbound_client_pool_replaces_connections_to_a_restarted_server() {
    let sink = SmtpSink::start(v4(23), 0, &SinkSpec::accept_all()).expect("start sink");
    let addr = sink.addr();
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let run = Run::to(&sink, &["a@dest.test"], message("restart", "x\r\n"));
    assert_eq!(
        check_pooled(&runtime, &pool, &[&run, &run], "delivered"),
        [false, true]
    );
    sink.stop().expect("stop sink");

    let sink =
        SmtpSink::start(addr.ip(), addr.port(), &SinkSpec::accept_all()).expect("restart sink");
    assert_eq!(
        check_pooled(&runtime, &pool, &[&run, &run], "delivered"),
        [false, true]
    );
    let records = records(&sink, 2);
    assert_eq!(connection_ids(&records), [1, 1]);
    assert!(records.iter().all(SinkRecord::delivered), "{records:#?}");
}

#[test]
fn outbound_client_pool_keeps_credentials_apart() {
    let spec = SinkSpec::accept_all().starttls().auth("relay", "s3cret");
    let sink = SmtpSink::start(v4(24), 0, &spec).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let mut with_auth = Run::to(&sink, &["a@dest.test"], message("cred", "x\r\n"));
    with_auth.tls = TlsPolicy::Required;
    with_auth.credentials = Some(Credentials {
        user: "relay".into(),
        password: "s3cret".into(),
        allow_plaintext: false,
    });
    let mut without = Run::to(&sink, &["b@dest.test"], message("nocred", "x\r\n"));
    without.tls = TlsPolicy::Required;
    let mut wrong = Run::to(&sink, &["c@dest.test"], message("wrongcred", "x\r\n"));
    wrong.tls = TlsPolicy::Required;
    wrong.credentials = Some(Credentials {
        password: "wrong".into(),
        ..with_auth.credentials.clone().expect("set above")
    });

    assert_eq!(
        check_pooled(&runtime, &pool, &[&with_auth], "delivered"),
        [false]
    );
    // The logged-in connection is idle, but neither an attempt without credentials nor one with
    // other credentials may have it: each opens its own and is refused there.
    assert_eq!(
        check_pooled(&runtime, &pool, &[&without], "failed 5.7.0"),
        [false]
    );
    let wrong_delivery = wrong.deliver_on(&runtime, Some(&pool));
    let [(_, AttemptOutcome::Deferred(err))] = wrong_delivery.outcomes.as_slice() else {
        panic!("{wrong_delivery:#?}")
    };
    assert!(err.diagnostic.contains("AUTH"), "{err:?}");
    assert!(!wrong_delivery.reused);
    // The attempt with the right credentials still finds its own.
    assert_eq!(
        check_pooled(&runtime, &pool, &[&with_auth], "delivered"),
        [true]
    );

    let records = records(&sink, 3);
    let delivered: Vec<_> = records.iter().filter(|r| r.delivered()).collect();
    assert_eq!(delivered.len(), 2, "{records:#?}");
    assert_eq!(delivered[0].connection, delivered[1].connection);
    assert!(
        delivered
            .iter()
            .all(|r| r.auth_user.as_deref() == Some("relay"))
    );
    let refused = records
        .iter()
        .find(|r| r.stage == Stage::Mail)
        .expect("the refused MAIL");
    assert_ne!(refused.connection, delivered[0].connection);
    assert_eq!(refused.auth_user, None);
}

#[test]
fn outbound_client_pool_honours_the_message_limit() {
    let sink = SmtpSink::start(v4(25), 0, &SinkSpec::accept_all()).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::new(Duration::from_secs(60), 8, 2);
    let run = Run::to(&sink, &["a@dest.test"], message("limit", "x\r\n"));
    let runs = [&run, &run, &run, &run, &run];
    assert_eq!(
        check_pooled(&runtime, &pool, &runs, "delivered"),
        [false, true, false, true, false]
    );
    assert_eq!(connection_ids(&records(&sink, 5)), [1, 1, 2, 2, 3]);
    // The first two quit as soon as they carried two messages; the third is idle.
    let connections = connections_when(&sink, |c| c.len() >= 2);
    let ended: Vec<_> = connections
        .iter()
        .map(|c| (c.connection, c.transactions, c.quit))
        .collect();
    assert_eq!(ended, [(1, 2, true), (2, 2, true)]);
    assert_eq!(pool.n_idle(), 1);
}

#[test]
fn outbound_client_pool_parks_a_connection_after_refused_recipients() {
    let spec =
        SinkSpec::accept_all().reply(Stage::Rcpt, Some("^unknown@"), "550 5.1.1 no such user");
    let sink = SmtpSink::start(v4(26), 0, &spec).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let refused = Run::to(&sink, &["unknown@dest.test"], message("nobody", "x\r\n"));
    let accepted = Run::to(&sink, &["a@dest.test"], message("somebody", "x\r\n"));
    assert_eq!(
        check_pooled(&runtime, &pool, &[&refused], "failed 5.1.1"),
        [false]
    );
    assert_eq!(
        check_pooled(&runtime, &pool, &[&accepted], "delivered"),
        [true]
    );
    let records = records(&sink, 2);
    // The empty transaction was ended with RSET before the connection was parked.
    assert_eq!(records[0].stage, Stage::Rcpt);
    assert_eq!(records[0].reply, "reset before DATA");
    assert!(records[1].delivered());
    assert_eq!(connection_ids(&records), [1, 1]);
}

#[test]
fn outbound_client_pool_connects_afresh_when_a_reused_connection_refuses_mail() {
    // A server that takes only so many messages per connection says so at MAIL.
    let spec = SinkSpec::accept_all().reply_first(
        1,
        Stage::Mail,
        Some("^second@"),
        "421 4.7.0 too many messages on this connection",
    );
    let sink = SmtpSink::start(v4(27), 0, &spec).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let first = Run::to(&sink, &["a@dest.test"], message("one", "x\r\n"));
    let mut second = Run::to(&sink, &["a@dest.test"], message("two", "x\r\n"));
    second.sender = "second@src.test";
    assert_eq!(
        check_pooled(&runtime, &pool, &[&first, &second], "delivered"),
        [false, false]
    );
    let records = records(&sink, 3);
    let summary: Vec<_> = records
        .iter()
        .map(|r| (r.connection.expect("numbered"), r.stage, r.code()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Stage::Data, Some(250)),
            (1, Stage::Mail, Some(421)),
            (2, Stage::Data, Some(250))
        ]
    );
}

#[test]
fn outbound_client_pool_quits_expired_connections_and_closes_on_drop() {
    let sink = SmtpSink::start(v4(28), 0, &SinkSpec::accept_all()).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::new(Duration::from_millis(200), 8, 100);
    let run = Run::to(&sink, &["a@dest.test"], message("expiry", "x\r\n"));
    assert_eq!(check_pooled(&runtime, &pool, &[&run], "delivered"), [false]);
    // Let the idle connection outlive the pool's timeout (the sink keeps it for a minute).
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(check_pooled(&runtime, &pool, &[&run], "delivered"), [false]);
    let connections = connections_when(&sink, |c| !c.is_empty());
    let ended: Vec<_> = connections
        .iter()
        .map(|c| (c.connection, c.transactions, c.quit))
        .collect();
    assert_eq!(
        ended,
        [(1, 1, true)],
        "the expired connection was not closed with QUIT"
    );

    // Dropping the pool closes the connection still idle (without QUIT: nothing awaits it).
    assert_eq!(pool.n_idle(), 1);
    drop(pool);
    let connections = connections_when(&sink, |c| c.len() >= 2);
    let ended: Vec<_> = connections
        .iter()
        .map(|c| (c.connection, c.transactions, c.quit))
        .collect();
    assert_eq!(ended, [(1, 1, true), (2, 1, false)]);
}

#[test]
fn outbound_client_pool_does_not_park_a_connection_that_timed_out() {
    // MAIL is answered after a second; RCPT's answer comes after we gave up on it, so a RSET
    // sent now would read RCPT's late 250 as its own.
    let spec = SinkSpec::accept_all().delay(Duration::from_secs(1));
    let sink = SmtpSink::start(v4(29), 0, &spec).expect("start sink");
    let runtime = pool_runtime();
    let pool = ConnectionPool::default();
    let mut run = Run::to(&sink, &["a@dest.test"], message("slowpool", "x\r\n"));
    run.timeouts.rcpt = Duration::from_millis(300);
    run.timeouts.quit = Duration::from_millis(300);
    let delivery = run.deliver_on(&runtime, Some(&pool));
    check_outcomes(&delivery, &["a@dest.test deferred 4.4.2"]);
    assert_eq!(pool.n_idle(), 0);
}
