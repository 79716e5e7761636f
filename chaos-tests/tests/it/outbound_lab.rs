//! The outbound lab itself, driven by real clients: `dig` against the DNS stub, Python's smtplib
//! against the SMTP sinks, and a check that dropping either stops its process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::outbound_lab::{self, DnsStub, SinkSpec, SmtpSink, Stage, Zone};
use serde_json::{Value, json};

const MX1: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MX2: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

fn ip(ip: Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

/// What `dig` got: the status (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, or `no reply`) and the answer
/// records' data, e.g. `10 mx1.example.test.`.
fn dig(stub: &DnsStub, tcp: bool, qtype: &str, name: &str) -> Result<(String, Vec<String>)> {
    let addr = stub.addr();
    let mut cmd = Command::new("dig");
    cmd.arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string()])
        // One try of two seconds: dig's own read timeout.
        .args(["+time=2", "+tries=1", "+noall", "+comments", "+answer"]);
    if tcp {
        cmd.arg("+tcp");
    }
    let out = cmd.args([qtype, name]).output().context("run dig")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(9) {
        return Ok(("no reply".to_owned(), Vec::new()));
    }
    let status = stdout
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .with_context(|| format!("dig printed no status: {stdout}"))?
        .to_owned();
    let answers = stdout
        .lines()
        .filter(|line| !line.starts_with(';') && !line.trim().is_empty())
        .map(|line| {
            // name ttl class type data...
            line.split_whitespace()
                .skip(4)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok((status, answers))
}

#[track_caller]
fn check_dig(stub: &DnsStub, tcp: bool, qtype: &str, name: &str, status: &str, answers: &[&str]) {
    let (got_status, got_answers) = dig(stub, tcp, qtype, name).expect("dig");
    assert_eq!(
        (got_status.as_str(), got_answers),
        (status, answers.iter().map(|a| a.to_string()).collect()),
        "dig {qtype} {name} (tcp {tcp})"
    );
}

#[test]
fn outbound_lab_dns_stub_answers_mx_a_aaaa_and_failures() {
    let zone = Zone::new()
        .ttl(30)
        .mx("example.test", 10, "mx1.example.test")
        .mx("example.test", 20, "mx2.example.test")
        .a("mx1.example.test", MX1)
        .a("mx2.example.test", MX2)
        .aaaa("mx1.example.test", Ipv6Addr::LOCALHOST)
        .servfail("broken.test")
        .timeout("silent.test");
    let stub = DnsStub::start(ip(DNS), 0, &zone).expect("start dns stub");
    for tcp in [false, true] {
        check_dig(
            &stub,
            tcp,
            "MX",
            "Example.Test",
            "NOERROR",
            &["10 mx1.example.test.", "20 mx2.example.test."],
        );
        check_dig(
            &stub,
            tcp,
            "A",
            "mx2.example.test",
            "NOERROR",
            &["127.0.0.3"],
        );
        check_dig(&stub, tcp, "AAAA", "mx1.example.test", "NOERROR", &["::1"]);
        check_dig(&stub, tcp, "AAAA", "mx2.example.test", "NOERROR", &[]);
        check_dig(&stub, tcp, "MX", "unknown.test", "NXDOMAIN", &[]);
        check_dig(&stub, tcp, "MX", "broken.test", "SERVFAIL", &[]);
    }
    let start = Instant::now();
    check_dig(&stub, false, "MX", "silent.test", "no reply", &[]);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "dig gave up early"
    );

    let queries = stub.queries().expect("read query log");
    let seen: Vec<(String, String, String, String)> = queries
        .iter()
        .map(|q| {
            (
                q.transport.clone(),
                q.qname.clone().unwrap_or_default(),
                q.qtype.clone().unwrap_or_default(),
                q.action.clone(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    for transport in ["udp", "tcp"] {
        for (name, qtype, action) in [
            ("example.test", "MX", "NOERROR 2"),
            ("mx2.example.test", "A", "NOERROR 1"),
            ("mx1.example.test", "AAAA", "NOERROR 1"),
            ("mx2.example.test", "AAAA", "NOERROR 0"),
            ("unknown.test", "MX", "NXDOMAIN"),
            ("broken.test", "MX", "SERVFAIL"),
        ] {
            expected.push((transport, name, qtype, action));
        }
    }
    expected.push(("udp", "silent.test", "MX", "timeout"));
    let expected: Vec<(String, String, String, String)> = expected
        .into_iter()
        .map(|(t, n, q, a)| (t.into(), n.into(), q.into(), a.into()))
        .collect();
    assert_eq!(seen, expected);
    stub.stop().expect("stop dns stub");
}

/// Drives one SMTP session with Python's smtplib (every socket operation times out after 20 s)
/// and prints each command's reply as [command, code, text]. It stops after a refused MAIL or
/// when no recipient was accepted.
const SMTP_CLIENT: &str = r#"
import json, smtplib, ssl, sys
plan = json.loads(sys.argv[1])
steps = []
def step(name, reply):
    steps.append([name, reply[0], reply[1].decode(errors="replace")])
    return reply[0]
try:
    s = smtplib.SMTP(plan["host"], plan["port"], timeout=20)
    step("EHLO", s.ehlo("client.test"))
    if plan.get("cafile"):
        ctx = ssl.create_default_context(cafile=plan["cafile"])
        step("STARTTLS", s.starttls(context=ctx))
        step("EHLO", s.ehlo("client.test"))
    if plan.get("auth"):
        mech, s.user, s.password = plan["auth"]
        try:
            step("AUTH", s.auth(mech, getattr(s, "auth_" + mech.lower())))
        except smtplib.SMTPAuthenticationError as err:
            step("AUTH", (err.smtp_code, err.smtp_error))
    if step("MAIL", s.mail(plan["from"])) == 250:
        accepted = [r for r in plan["to"] if step("RCPT", s.rcpt(r)) == 250]
        if accepted:
            body = ("Message-ID: %s\r\nSubject: lab\r\n\r\nhello\r\n" % plan["message_id"]).encode()
            try:
                step("DATA", s.data(body))
            except smtplib.SMTPDataError as err:
                step("DATA", (err.smtp_code, err.smtp_error))
    s.quit()
except Exception as err:
    steps.append(["error", 0, repr(err)])
print(json.dumps(steps))
"#;

/// One SMTP session against `sink`; returns each step as (command, code, reply text).
fn send_steps(sink: &SmtpSink, plan: Value) -> Result<Vec<(String, u16, String)>> {
    let mut plan = plan;
    plan["host"] = json!(sink.addr().ip().to_string());
    plan["port"] = json!(sink.addr().port());
    let out = Command::new(outbound_lab::python()?)
        .args(["-c", SMTP_CLIENT, &plan.to_string()])
        .output()
        .context("run smtplib client")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<(String, u16, String)> =
        serde_json::from_str(stdout.trim()).with_context(|| {
            format!(
                "client printed {stdout:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    if let Some((_, _, err)) = steps.iter().find(|(name, _, _)| name == "error") {
        bail!("smtplib client failed: {err}; steps {steps:?}");
    }
    Ok(steps)
}

/// One SMTP session against `sink`; returns "COMMAND CODE" per step, e.g. `["EHLO 250", ...]`.
fn send(sink: &SmtpSink, plan: Value) -> Result<Vec<String>> {
    Ok(send_steps(sink, plan)?
        .into_iter()
        .map(|(name, code, _)| format!("{name} {code}"))
        .collect())
}

/// The extension keywords in the first EHLO reply of a session with no recipients to send to.
fn ehlo_keywords(sink: &SmtpSink) -> Vec<String> {
    let steps = send_steps(sink, plan("s@src.test", &[], "<e@lab>")).expect("smtp session");
    let (_, code, text) = &steps[0];
    assert_eq!(*code, 250, "EHLO reply {text}");
    text.lines()
        .skip(1)
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn plan(from: &str, to: &[&str], message_id: &str) -> Value {
    json!({"from": from, "to": to, "message_id": message_id})
}

#[track_caller]
fn check_session(sink: &SmtpSink, plan: Value, expected: &[&str]) {
    let steps = send(sink, plan).expect("smtp session");
    assert_eq!(steps, expected, "session transcript");
}

#[test]
fn outbound_lab_sink_accepts_records_and_counts_duplicates() {
    let mx1 = SmtpSink::start(ip(MX1), 0, &SinkSpec::accept_all()).expect("start mx1");
    let mx2 = SmtpSink::start(ip(MX2), 0, &SinkSpec::accept_all()).expect("start mx2");
    let ok = ["EHLO 250", "MAIL 250", "RCPT 250", "RCPT 250", "DATA 250"];
    check_session(
        &mx1,
        plan(
            "s@src.test",
            &["a@example.test", "b@example.test"],
            "<m1@lab>",
        ),
        &ok,
    );
    check_session(
        &mx1,
        plan("s@src.test", &["c@example.test"], "<m2@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 250", "DATA 250"],
    );
    // The retry of m1 for b@ lands on the other MX host: a duplicate across sinks.
    check_session(
        &mx2,
        plan("s@src.test", &["B@example.test"], "<m1@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 250", "DATA 250"],
    );

    let records = mx1.records().expect("mx1 records");
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert!(first.delivered());
    assert_eq!(first.code(), Some(250));
    assert_eq!(first.helo.as_deref(), Some("client.test"));
    assert_eq!(first.mail_from.as_deref(), Some("s@src.test"));
    assert_eq!(first.rcpts, ["a@example.test", "b@example.test"]);
    assert_eq!(first.message_id.as_deref(), Some("<m1@lab>"));
    assert!(!first.tls);
    assert_eq!(first.auth_user, None);
    assert!(first.size.expect("size") > 0);
    assert_eq!(first.data_sha256.as_deref().map(str::len), Some(64));
    assert!(mx1.duplicates().expect("mx1 duplicates").is_empty());
    let by_id = mx1.deliveries_by_message_id().expect("by id");
    assert_eq!(by_id.keys().collect::<Vec<_>>(), ["<m1@lab>", "<m2@lab>"]);

    let mut all = records;
    all.extend(mx2.records().expect("mx2 records"));
    assert_eq!(
        outbound_lab::deliveries_by_message_id(&all)["<m1@lab>"].len(),
        2
    );
    let duplicates = outbound_lab::duplicates(&all);
    assert_eq!(
        duplicates,
        [outbound_lab::Duplicate {
            message_id: "<m1@lab>".into(),
            rcpt: "b@example.test".into(),
            n_deliveries: 2,
        }]
    );
}

#[test]
fn outbound_lab_sink_tempfails_and_permfails_at_each_stage() {
    let spec = SinkSpec::accept_all()
        .reply(Stage::Mail, Some("^busy@"), "421 4.3.2 shutting down")
        .reply(Stage::Mail, Some("^spammer@"), "554 5.7.1 go away")
        .reply(Stage::Rcpt, Some("^full@"), "452 4.2.2 mailbox full")
        .reply(Stage::Rcpt, Some("^nobody@"), "550 5.1.1 no such user")
        .reply(Stage::Data, Some("^later@"), "451 4.3.0 try again later")
        .reply(Stage::Data, Some("^never@"), "554 5.6.0 content rejected");
    let sink = SmtpSink::start(ip(MX1), 0, &spec).expect("start sink");
    check_session(
        &sink,
        plan("busy@src.test", &["a@x.test"], "<t1@lab>"),
        &["EHLO 250", "MAIL 421"],
    );
    check_session(
        &sink,
        plan("spammer@src.test", &["a@x.test"], "<t2@lab>"),
        &["EHLO 250", "MAIL 554"],
    );
    check_session(
        &sink,
        plan(
            "s@src.test",
            &["full@x.test", "nobody@x.test", "ok@x.test"],
            "<t3@lab>",
        ),
        &[
            "EHLO 250", "MAIL 250", "RCPT 452", "RCPT 550", "RCPT 250", "DATA 250",
        ],
    );
    check_session(
        &sink,
        plan("s@src.test", &["later@x.test"], "<t4@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 250", "DATA 451"],
    );
    check_session(
        &sink,
        plan("s@src.test", &["never@x.test"], "<t5@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 250", "DATA 554"],
    );
    check_session(
        &sink,
        plan("s@src.test", &["nobody@x.test"], "<t6@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 550"],
    );

    let records = sink.records().expect("records");
    let summary: Vec<(Stage, Option<u16>, bool)> = records
        .iter()
        .map(|r| (r.stage, r.code(), r.delivered()))
        .collect();
    assert_eq!(
        summary,
        [
            (Stage::Mail, Some(421), false),
            (Stage::Mail, Some(554), false),
            (Stage::Data, Some(250), true),
            (Stage::Data, Some(451), false),
            (Stage::Data, Some(554), false),
            // No recipient accepted: recorded when the client quit, with no code of its own.
            (Stage::Rcpt, None, false),
        ]
    );
    let refused: Vec<(&str, Option<u16>)> = records[2]
        .refused_rcpts
        .iter()
        .map(|r| {
            (
                r.rcpt.as_str(),
                r.reply.get(..3).and_then(|c| c.parse().ok()),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [("full@x.test", Some(452)), ("nobody@x.test", Some(550))]
    );
    assert_eq!(records[2].rcpts, ["ok@x.test"]);
    assert_eq!(records[5].refused_rcpts.len(), 1);
    assert_eq!(records[5].reply, "quit before DATA");
    // Only the accepted message counts as a delivery.
    let by_id = sink.deliveries_by_message_id().expect("by id");
    assert_eq!(by_id.keys().collect::<Vec<_>>(), ["<t3@lab>"]);
}

#[test]
fn outbound_lab_sink_tempfails_the_first_attempts_then_accepts() {
    let spec = SinkSpec::accept_all().reply_first(2, Stage::Rcpt, None, "451 4.7.1 greylisted");
    let sink = SmtpSink::start(ip(MX2), 0, &spec).expect("start sink");
    let refused = ["EHLO 250", "MAIL 250", "RCPT 451"];
    let accepted = ["EHLO 250", "MAIL 250", "RCPT 250", "DATA 250"];
    for expected in [&refused[..], &refused[..], &accepted[..], &accepted[..]] {
        check_session(
            &sink,
            plan("s@src.test", &["a@x.test"], "<g1@lab>"),
            expected,
        );
    }
    let records = sink.records().expect("records");
    let codes: Vec<Option<u16>> = records.iter().map(|r| r.code()).collect();
    assert_eq!(codes, [None, None, Some(250), Some(250)]);
    assert_eq!(
        sink.duplicates().expect("duplicates").len(),
        1,
        "the fourth send is a duplicate"
    );
}

#[test]
fn outbound_lab_sink_delays_its_replies() {
    let delay = Duration::from_millis(700);
    let spec = SinkSpec::accept_all().delay(delay).greeting_delay(delay);
    let sink = SmtpSink::start(ip(MX1), 0, &spec).expect("start sink");
    let start = Instant::now();
    check_session(
        &sink,
        plan("s@src.test", &["a@x.test"], "<d1@lab>"),
        &["EHLO 250", "MAIL 250", "RCPT 250", "DATA 250"],
    );
    // Greeting, MAIL, RCPT and DATA each waited.
    let elapsed = start.elapsed();
    assert!(elapsed >= delay * 4, "session took only {elapsed:?}");
    assert_eq!(sink.records().expect("records").len(), 1);
}

#[test]
fn outbound_lab_sink_offers_starttls_and_auth() {
    let spec = SinkSpec::accept_all().starttls().auth("relay", "s3cret");
    let sink = SmtpSink::start(ip(MX1), 0, &spec).expect("start sink");
    let cert = sink
        .cert()
        .expect("a starttls sink has a certificate")
        .to_owned();
    let cafile = cert.display().to_string();
    let with = |extra: Value, id: &str| {
        let mut p = plan("s@src.test", &["a@x.test"], id);
        for (key, value) in extra.as_object().expect("object") {
            p[key] = value.clone();
        }
        p
    };
    // The certificate verifies against itself for the sink's address.
    let tls_ok = [
        "EHLO 250",
        "STARTTLS 220",
        "EHLO 250",
        "AUTH 235",
        "MAIL 250",
        "RCPT 250",
        "DATA 250",
    ];
    check_session(
        &sink,
        with(
            json!({"cafile": cafile, "auth": ["PLAIN", "relay", "s3cret"]}),
            "<a1@lab>",
        ),
        &tls_ok,
    );
    // AUTH LOGIN, without TLS (smarthost tests on loopback).
    check_session(
        &sink,
        with(json!({"auth": ["LOGIN", "relay", "s3cret"]}), "<a2@lab>"),
        &["EHLO 250", "AUTH 235", "MAIL 250", "RCPT 250", "DATA 250"],
    );
    check_session(
        &sink,
        with(json!({"auth": ["PLAIN", "relay", "wrong"]}), "<a3@lab>"),
        &["EHLO 250", "AUTH 535", "MAIL 530"],
    );
    check_session(
        &sink,
        with(json!({}), "<a4@lab>"),
        &["EHLO 250", "MAIL 530"],
    );

    let records = sink.records().expect("records");
    let summary: Vec<(bool, Option<&str>, Option<u16>)> = records
        .iter()
        .map(|r| (r.tls, r.auth_user.as_deref(), r.code()))
        .collect();
    assert_eq!(
        summary,
        [
            (true, Some("relay"), Some(250)),
            (false, Some("relay"), Some(250)),
            (false, None, Some(530)),
            (false, None, Some(530)),
        ]
    );
}

#[test]
fn outbound_lab_sink_offers_starttls_and_auth_only_when_asked() {
    let plain = SmtpSink::start(ip(MX1), 0, &SinkSpec::accept_all()).expect("start sink");
    assert!(plain.cert().is_none());
    assert_eq!(ehlo_keywords(&plain), ["SIZE", "8BITMIME", "HELP"]);
    let spec = SinkSpec::accept_all().starttls().auth("relay", "s3cret");
    let secure = SmtpSink::start(ip(MX2), 0, &spec).expect("start sink");
    assert_eq!(
        ehlo_keywords(&secure),
        ["SIZE", "8BITMIME", "STARTTLS", "AUTH", "HELP"]
    );
}

#[test]
fn outbound_lab_drop_stops_the_processes() {
    let zone = Zone::new().mx("example.test", 10, "mx1.example.test");
    let stub = DnsStub::start(ip(MX2), 0, &zone).expect("start dns stub");
    let sink = SmtpSink::start(ip(MX2), 0, &SinkSpec::accept_all()).expect("start sink");
    let (stub_pid, sink_pid) = (stub.pid(), sink.pid());
    let sink_addr = sink.addr();
    for pid in [stub_pid, sink_pid] {
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} runs"
        );
    }
    drop(stub);
    drop(sink);
    for pid in [stub_pid, sink_pid] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} is gone"
        );
    }
    TcpListener::bind(sink_addr).expect("the sink's port is free again");
}

#[test]
fn outbound_lab_refuses_addresses_outside_loopback() {
    let err = SmtpSink::start("10.0.0.1".parse().expect("ip"), 0, &SinkSpec::accept_all())
        .err()
        .expect("10.0.0.1 is refused");
    assert!(err.to_string().contains("loopback"), "{err}");
    let err = DnsStub::start("192.0.2.1".parse().expect("ip"), 0, &Zone::new())
        .err()
        .expect("192.0.2.1 is refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}
