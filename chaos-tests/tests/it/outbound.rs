//! Outbound delivery end to end: a cluster whose leader delivers its queue to SMTP sinks found
//! through a DNS stub (MX preference, a dead primary MX, the implicit MX, null MX, a domain
//! that does not exist), retries a tempfail, bounces 5xx failures to a local sender's INBOX and
//! to a remote sender through the queue, and never bounces a bounce.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{Context, Result};
use chaos_tests::cluster::{Cluster, NodeTuning, wait_until};
use chaos_tests::mail::{self, PASSWORD};
use chaos_tests::outbound_lab::{DnsStub, SinkRecord, SinkSpec, SmtpSink, Stage, Zone};
use serde_json::Value;

/// The cluster's subnet (127.0.64.x) and the lab's (127.0.65.x: DNS stub and MX sinks).
const SUBNET: u8 = 64;
const DNS_PORT: u16 = 5353;
const MX_PORT: u16 = 2525;

fn lab_ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 65, d)
}

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(lab_ip(d))
}

fn zone() -> Zone {
    Zone::new()
        // mx1 has no server: delivery moves on to mx2.
        .mx("multi.test", 10, "mx1.multi.test")
        .mx("multi.test", 20, "mx2.multi.test")
        .a("mx1.multi.test", lab_ip(2))
        .a("mx2.multi.test", lab_ip(3))
        .mx("other.test", 10, "mx.other.test")
        .a("mx.other.test", lab_ip(4))
        // No MX: the domain's own address is its mail host.
        .a("nomx.test", lab_ip(5))
        // RFC 7505: accepts no mail.
        .mx("nullmx.test", 0, ".")
}

fn tuning() -> NodeTuning {
    NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}:{DNS_PORT}\"]\nport = {MX_PORT}\n",
            lab_ip(1)
        ),
        ..NodeTuning::default()
    }
}

/// Sends one message through the submission port as `user` (STARTTLS, AUTH); returns its
/// Message-ID.
fn submit(cluster: &Cluster, user: &str, from: &str, to: &[&str], subject: &str) -> Result<String> {
    let addr = cluster.nodes[0].submission_addr();
    let (host, port) = addr.rsplit_once(':').context("host:port")?;
    let mut args = vec![
        "send",
        "--host",
        host,
        "--port",
        port,
        "--mode",
        "starttls",
        "--user",
        user,
        "--password",
        PASSWORD,
        "--from",
        from,
        "--subject",
        subject,
    ];
    for rcpt in to {
        args.extend(["--to", rcpt]);
    }
    let value = mail::python_client(&args)?;
    anyhow::ensure!(value.get("error").is_none(), "send failed: {value}");
    anyhow::ensure!(value["code"] == 250, "DATA answered {value}");
    Ok(value["message_id"]
        .as_str()
        .context("message id")?
        .to_owned())
}

fn delivered_to(records: &[SinkRecord], message_id: &str) -> Vec<Vec<String>> {
    records
        .iter()
        .filter(|r| r.delivered() && r.message_id.as_deref() == Some(message_id))
        .map(|r| r.rcpts.clone())
        .collect()
}

/// The sink's record of `MAIL FROM:<>` (aiosmtpd keeps the brackets of the null path).
fn null_sender(record: &SinkRecord) -> bool {
    matches!(record.mail_from.as_deref(), Some("" | "<>"))
}

/// dkimpy's verdict on `message` with `txt` as the selector's DNS record.
fn dkim_verify(message: &str, txt: &str) -> Result<String> {
    use std::io::Write;
    let script = "import dkim, sys\n\
txt = sys.argv[1].encode()\n\
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: txt)\n\
print('pass' if ok else 'fail')\n";
    let mut child = std::process::Command::new(chaos_tests::outbound_lab::python()?)
        .args(["-c", script, txt])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("run dkimpy")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(message.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn inbox(cluster: &Cluster, user: &str) -> Result<Vec<Value>> {
    inbox_on(cluster, 0, user)
}

fn inbox_on(cluster: &Cluster, node: usize, user: &str) -> Result<Vec<Value>> {
    mail::pop3_raw(&cluster.nodes[node].pop3_addr(), user)
}

fn queue(cluster: &Cluster) -> Result<Value> {
    let out = cluster.ctl_ok(&["queue", "list", "--json"])?;
    Ok(serde_json::from_str(&out)?)
}

fn queue_is_empty(cluster: &Cluster) -> bool {
    queue(cluster).is_ok_and(|q| q["total"] == 0)
}

#[test]
fn outbound_mail_is_routed_retried_and_bounced() -> Result<()> {
    let stub = DnsStub::start(ip(1), DNS_PORT, &zone())?;
    let mx2 = SmtpSink::start(ip(3), MX_PORT, &SinkSpec::accept_all())?;
    let other = SmtpSink::start(
        ip(4),
        MX_PORT,
        &SinkSpec::accept_all()
            .reply(Stage::Rcpt, Some("^nobody@"), "550 5.1.1 No such user here")
            .reply(Stage::Rcpt, Some("^gone@"), "550 5.1.1 Gone")
            .reply_first(
                1,
                Stage::Rcpt,
                Some("^later@"),
                "451 4.2.1 Mailbox busy, try later",
            ),
    )?;
    let nomx = SmtpSink::start(ip(5), MX_PORT, &SinkSpec::accept_all())?;
    let cluster = Cluster::start(SUBNET, 2, true, tuning())?;
    mail::add_users(&cluster, &["alice", "bob"])?;
    let alice = "alice@example.test";
    let key: Value = serde_json::from_str(&cluster.ctl_ok(&[
        "dkim",
        "generate",
        "example.test",
        "--selector",
        "s1",
        "--json",
    ])?)?;

    // One message to local, remote, failing and tempfailing recipients.
    let first = submit(
        &cluster,
        alice,
        alice,
        &[
            "one@multi.test",
            "two@multi.test",
            "bob@example.test",
            "nobody@other.test",
            "later@other.test",
            "x@nomx.test",
            "y@nullmx.test",
            "z@missing.test",
        ],
        "outbound one",
    )?;

    // The remote recipients arrive once each: both multi.test ones in one transaction to mx2.
    wait_until(Duration::from_secs(30), "delivery to mx2 and nomx", || {
        let at_mx2 = delivered_to(&mx2.records().ok()?, &first);
        let at_nomx = delivered_to(&nomx.records().ok()?, &first);
        (!at_mx2.is_empty() && !at_nomx.is_empty()).then_some(())
    })?;
    assert_eq!(
        delivered_to(&mx2.records()?, &first),
        [["one@multi.test", "two@multi.test"]]
    );
    assert_eq!(delivered_to(&nomx.records()?, &first), [["x@nomx.test"]]);
    // The local recipient got it from the same accepted message.
    let bob = inbox(&cluster, "bob@example.test")?;
    assert_eq!(
        mail::subjects(&serde_json::json!({ "messages": bob })),
        ["outbound one"]
    );
    // Mail from an authenticated user to other domains is DKIM-signed with its From domain's
    // key (the one stored copy is the local recipient's too), and dkimpy verifies it against
    // the TXT record `dkim generate` printed.
    let txt = key["dns-value"].as_str().context("dns-value")?;
    let copy = bob[0]["raw"].as_str().context("raw")?;
    assert!(copy.contains("DKIM-Signature:"), "{copy}");
    assert!(copy.contains("d=example.test"), "{copy}");
    assert_eq!(dkim_verify(copy, txt)?, "pass", "{copy}");
    let forged = copy.replace("Subject: outbound one", "Subject: outbound 1");
    assert_eq!(
        dkim_verify(&forged, txt)?,
        "fail",
        "a changed Subject breaks it"
    );

    // The three permanent failures come back to alice in one notice.
    let bounce = wait_until(Duration::from_secs(30), "alice's bounce", || {
        inbox(&cluster, alice).ok()?.into_iter().next()
    })?;
    let raw = bounce["raw"].as_str().context("raw")?;
    assert_eq!(bounce["return_path"], "<>");
    assert!(raw.contains("multipart/report"), "{raw}");
    assert!(raw.contains("report-type=delivery-status"), "{raw}");
    for (recipient, status) in [
        ("nobody@other.test", "5.1.1"),
        ("y@nullmx.test", "5.1.10"),
        ("z@missing.test", "5.1.2"),
    ] {
        assert!(
            raw.contains(&format!("Final-Recipient: rfc822; {recipient}")),
            "{recipient} missing in {raw}"
        );
        assert!(
            raw.contains(&format!("Status: {status}")),
            "{status} missing in {raw}"
        );
    }
    assert_eq!(raw.matches("Action: failed").count(), 3, "{raw}");
    assert!(
        !raw.contains("Final-Recipient: rfc822; later@other.test"),
        "a deferred recipient is not bounced"
    );
    assert!(
        raw.contains("No such user here"),
        "the remote's words are in the notice"
    );

    // The tempfailed recipient waits for its retry; an operator's retry makes it due now.
    let listed = queue(&cluster)?;
    let entries = listed["entries"].as_array().context("queue list")?;
    assert_eq!(entries.len(), 1, "{listed}");
    let id = entries[0]["id"].as_str().context("id")?.to_owned();
    let shown: Value = serde_json::from_str(&cluster.ctl_ok(&["queue", "show", &id, "--json"])?)?;
    let pending: Vec<&Value> = shown["recipients"]
        .as_array()
        .context("recipients")?
        .iter()
        .filter(|r| r["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "{shown}");
    assert_eq!(pending[0]["address"], "later@other.test");
    assert_eq!(pending[0]["last_status"], "4.2.1", "{shown}");
    cluster.ctl_ok(&["queue", "retry", &id])?;
    wait_until(Duration::from_secs(30), "the retry", || {
        (!delivered_to(&other.records().ok()?, &first).is_empty()).then_some(())
    })?;
    assert_eq!(
        delivered_to(&other.records()?, &first),
        [["later@other.test"]]
    );
    wait_until(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&cluster).then_some(())
    })?;

    // A remote sender's bounce goes out through the queue from <>; when it fails in turn it is
    // dropped, not bounced again. Only a cluster that lets users send as anyone (a relay for an
    // application, say) accepts such mail from alice.
    cluster.ctl_ok(&["protection", "set", "sender-login-match=false"])?;
    let second = submit(
        &cluster,
        alice,
        "carol@other.test",
        &["nobody@other.test"],
        "outbound two",
    )?;
    let third = submit(
        &cluster,
        alice,
        "gone@other.test",
        &["nobody@other.test"],
        "outbound three",
    )?;
    let notice_to = |sender: &str| -> Option<SinkRecord> {
        other
            .records()
            .ok()?
            .into_iter()
            .find(|r| null_sender(r) && r.rcpts == [sender.to_owned()])
    };
    let notice = wait_until(Duration::from_secs(30), "the notice to carol", || {
        notice_to("carol@other.test")
    })
    .unwrap();
    assert!(notice.delivered(), "{notice:?}");
    wait_until(Duration::from_secs(30), "the queue to drain", || {
        queue_is_empty(&cluster).then_some(())
    })?;
    let to_gone: Vec<SinkRecord> = other
        .records()?
        .into_iter()
        .filter(|r| null_sender(r) && r.refused_rcpts.iter().any(|f| f.rcpt == "gone@other.test"))
        .collect();
    assert_eq!(
        to_gone.len(),
        1,
        "the notice to gone@ was tried once and dropped"
    );
    for id in [&second, &third] {
        assert!(delivered_to(&other.records()?, id).is_empty());
    }
    assert!(
        other.duplicates()?.is_empty() && mx2.duplicates()?.is_empty(),
        "nothing arrived twice"
    );
    // Alice's INBOX holds only the first bounce: the others went to the remote senders.
    assert_eq!(inbox(&cluster, alice)?.len(), 1);

    cluster.check_no_unexpected_errors(&[]);
    drop(cluster);
    stub.stop()?;
    Ok(())
}

/// Guarantee 5: kill -9 of the leader in the middle of a large outbound batch. After the
/// cluster heals every message has arrived, and the only duplicates are attempts that were in
/// flight at the kill (at most the engine's concurrency).
#[test]
fn killing_the_leader_mid_batch_loses_nothing() -> Result<()> {
    const COUNT: usize = 300;
    const CONCURRENCY: usize = 25;
    let lab = |d: u8| Ipv4Addr::new(127, 0, 67, d);
    let domains = ["d1.test", "d2.test", "d3.test"];
    let mut zone = Zone::new();
    for (i, domain) in domains.iter().enumerate() {
        let host = format!("mx.{domain}");
        zone = zone.mx(domain, 10, &host).a(&host, lab(2 + i as u8));
    }
    let stub = DnsStub::start(IpAddr::V4(lab(1)), DNS_PORT, &zone)?;
    // Slow sinks, so the kill lands while many sessions are open.
    let slow = SinkSpec::accept_all().delay(Duration::from_millis(400));
    let sinks = (0..domains.len())
        .map(|i| SmtpSink::start(IpAddr::V4(lab(2 + i as u8)), MX_PORT, &slow))
        .collect::<Result<Vec<_>>>()?;
    let tuning = NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}:{DNS_PORT}\"]\nport = {MX_PORT}\n",
            lab(1)
        ),
        ..NodeTuning::default()
    };
    let mut cluster = Cluster::start(66, 2, true, tuning)?;
    mail::add_users(&cluster, &["alice"])?;
    let leader = cluster.index_of(cluster.wait_for_leader(Duration::from_secs(10))?);
    let addr = cluster.nodes[leader].submission_addr();
    let (host, port) = addr.rsplit_once(':').context("host:port")?;
    let count = COUNT.to_string();
    let mut args = vec![
        "bulk",
        "--host",
        host,
        "--port",
        port,
        "--user",
        "alice@example.test",
        "--password",
        PASSWORD,
        "--from",
        "alice@example.test",
        "--count",
        &count,
    ];
    for domain in &domains {
        args.extend(["--domain", domain]);
    }
    let sent = mail::python_client(&args)?;
    anyhow::ensure!(sent.get("error").is_none(), "bulk send: {sent}");
    let ids: Vec<String> = sent["ids"]
        .as_array()
        .context("ids")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), COUNT);

    let delivered = |sinks: &[SmtpSink]| -> Vec<SinkRecord> {
        sinks
            .iter()
            .flat_map(|s| s.records().unwrap_or_default())
            .filter(SinkRecord::delivered)
            .collect()
    };
    // Kill the leader with the batch about a third done.
    wait_until(Duration::from_secs(60), "a third of the batch", || {
        (delivered(&sinks).len() >= COUNT / 3).then_some(())
    })?;
    let before_kill = delivered(&sinks).len();
    cluster.kill(leader)?;
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let new_leader = cluster.index_of(cluster.wait_for_leader(Duration::from_secs(10))?);
    assert_ne!(new_leader, leader);
    // The new leader resumes within seconds.
    let resumed = wait_until(Duration::from_secs(20), "a delivery after the kill", || {
        delivered(&sinks)
            .iter()
            .map(|r| r.time)
            .filter(|t| *t > killed_at)
            .fold(None, |min: Option<f64>, t| {
                Some(min.map_or(t, |m| m.min(t)))
            })
    })?;
    cluster.start_node(leader)?;
    wait_until(Duration::from_secs(120), "every message delivered", || {
        let records = delivered(&sinks);
        let arrived: std::collections::BTreeSet<&str> = records
            .iter()
            .filter_map(|r| r.message_id.as_deref())
            .collect();
        ids.iter()
            .all(|id| arrived.contains(id.as_str()))
            .then_some(())
    })?;
    wait_until(Duration::from_secs(30), "an empty queue", || {
        queue_is_empty(&cluster).then_some(())
    })?;
    let records = delivered(&sinks);
    let duplicates: usize = sinks
        .iter()
        .flat_map(|s| s.duplicates().unwrap_or_default())
        .map(|d| d.n_deliveries - 1)
        .sum();
    eprintln!(
        "outbound kill: {COUNT} messages, {before_kill} delivered before the kill, first delivery \
         by the new leader {:.0} ms after the kill, {} deliveries in all, {duplicates} duplicates",
        (resumed - killed_at) * 1000.0,
        records.len()
    );
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicates, more than the {CONCURRENCY} attempts that can be in flight"
    );
    assert_eq!(records.len(), COUNT + duplicates);
    // Nothing bounced: alice's INBOX is empty.
    assert!(inbox(&cluster, "alice@example.test")?.is_empty());
    drop(cluster);
    stub.stop()?;
    Ok(())
}

/// The policy's knobs: a recipient deferred on every attempt gets one delay notice and then a
/// 5.4.7 failure after `max-attempts`; a smarthost takes what the MX hosts deferred
/// (`on-failure`) or everything (`always`), with AUTH over STARTTLS.
#[test]
fn retries_expire_and_smarthosts_relay() -> Result<()> {
    let lab = |d: u8| Ipv4Addr::new(127, 0, 69, d);
    let zone = Zone::new()
        .mx("slow.test", 10, "mx.slow.test")
        .a("mx.slow.test", lab(2))
        // Nothing listens there: every attempt is deferred at the connection stage.
        .mx("down.test", 10, "mx.down.test")
        .a("mx.down.test", lab(9));
    let stub = DnsStub::start(IpAddr::V4(lab(1)), DNS_PORT, &zone)?;
    let slow = SmtpSink::start(
        IpAddr::V4(lab(2)),
        MX_PORT,
        &SinkSpec::accept_all().reply(Stage::Rcpt, None, "451 4.2.1 Try again later"),
    )?;
    let relay = SmtpSink::start(
        IpAddr::V4(lab(5)),
        MX_PORT,
        &SinkSpec::accept_all()
            .starttls()
            .auth("relayuser", "relay secret"),
    )?;
    let tuning = NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}:{DNS_PORT}\"]\nport = {MX_PORT}\n",
            lab(1)
        ),
        ..NodeTuning::default()
    };
    let cluster = Cluster::start(68, 2, true, tuning)?;
    mail::add_users(&cluster, &["alice"])?;
    let alice = "alice@example.test";
    cluster.ctl_ok(&[
        "outbound",
        "set",
        "retry-interval-secs=1",
        "max-attempts=4",
        "delay-warning-secs=2",
    ])?;

    let doomed = submit(&cluster, alice, alice, &["someone@slow.test"], "doomed")?;
    let notices = wait_until(
        Duration::from_secs(60),
        "the delay notice and the bounce",
        || {
            let inbox = inbox(&cluster, alice).ok()?;
            (inbox.len() >= 2).then_some(inbox)
        },
    )?;
    let raw = |m: &Value| m["raw"].as_str().unwrap_or_default().to_owned();
    let (delay, failure) = (raw(&notices[0]), raw(&notices[1]));
    assert!(delay.contains("Action: delayed"), "{delay}");
    assert!(delay.contains("Status: 4.2.1"), "{delay}");
    assert!(delay.contains("Will-Retry-Until:"), "{delay}");
    assert!(failure.contains("Action: failed"), "{failure}");
    assert!(failure.contains("Status: 5.4.7"), "{failure}");
    assert!(failure.contains("gave up after 4 attempts"), "{failure}");
    for notice in [&delay, &failure] {
        assert!(
            notice.contains(&doomed),
            "the notice names the original: {notice}"
        );
    }
    let attempts = slow
        .records()?
        .iter()
        .filter(|r| {
            r.refused_rcpts
                .iter()
                .any(|f| f.rcpt == "someone@slow.test")
        })
        .count();
    assert_eq!(attempts, 4, "one session per attempt");
    wait_until(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&cluster).then_some(())
    })?;

    // on-failure: the MX host is down, so the smarthost gets it in the same attempt.
    let password = cluster.root().join("relay-password");
    std::fs::write(&password, "relay secret\n")?;
    cluster.ctl_ok(&[
        "outbound",
        "set",
        &format!("smarthost={}:{MX_PORT}", lab(5)),
        "smarthost-mode=on-failure",
        "smarthost-user=relayuser",
        "--smarthost-password-file",
        password.to_str().context("path")?,
    ])?;
    let fallback = submit(&cluster, alice, alice, &["a@down.test"], "fallback")?;
    // always: even a domain that does not exist goes to the smarthost.
    let relayed = wait_until(Duration::from_secs(30), "the relayed message", || {
        relay
            .records()
            .ok()?
            .into_iter()
            .find(|r| r.delivered() && r.message_id.as_deref() == Some(fallback.as_str()))
    })?;
    assert_eq!(relayed.rcpts, ["a@down.test"]);
    assert!(relayed.tls, "AUTH only over TLS");
    assert_eq!(relayed.auth_user.as_deref(), Some("relayuser"));
    cluster.ctl_ok(&["outbound", "set", "smarthost-mode=always"])?;
    let always = submit(&cluster, alice, alice, &["b@nowhere.test"], "always")?;
    wait_until(
        Duration::from_secs(30),
        "the second relayed message",
        || (!delivered_to(&relay.records().ok()?, &always).is_empty()).then_some(()),
    )?;
    assert_eq!(
        delivered_to(&relay.records()?, &always),
        [["b@nowhere.test"]]
    );
    wait_until(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&cluster).then_some(())
    })?;
    // Only the two notices: nothing relayed bounced.
    assert_eq!(inbox(&cluster, alice)?.len(), 2);
    drop(cluster);
    stub.stop()?;
    Ok(())
}

/// The notice path's crash window: the leader has stored and mirrored a bounce but dies before
/// committing it. The new leader builds the same notice and commits it; the sender gets exactly
/// one bounce, also after the old leader returns.
#[test]
fn a_bounce_survives_the_leader_dying_before_its_commit() -> Result<()> {
    let lab = |d: u8| Ipv4Addr::new(127, 0, 71, d);
    let zone = Zone::new()
        .mx("other.test", 10, "mx.other.test")
        .a("mx.other.test", lab(2));
    let stub = DnsStub::start(IpAddr::V4(lab(1)), DNS_PORT, &zone)?;
    let _mx = SmtpSink::start(
        IpAddr::V4(lab(2)),
        MX_PORT,
        &SinkSpec::accept_all().reply(Stage::Rcpt, None, "550 5.1.1 No such user"),
    )?;
    let tuning = NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}:{DNS_PORT}\"]\nport = {MX_PORT}\n",
            lab(1)
        ),
        ..NodeTuning::default()
    };
    let mut cluster = Cluster::start(70, 2, true, tuning)?;
    mail::add_users(&cluster, &["alice"])?;
    let alice = "alice@example.test";
    // Node 1 leads, and stops between storing a notice and committing it.
    cluster.kill(0)?;
    cluster.nodes[0].env = vec![(
        "MCLUSTER_FAILPOINTS".into(),
        "notice-before-commit=pause:60000".into(),
    )];
    cluster.start_node(0)?;
    cluster.wait_ready(0, Duration::from_secs(30))?;
    let name = cluster.nodes[0].name.clone();
    cluster.ctl_ok(&["failover", "--to", &name])?;
    let id = submit(&cluster, alice, alice, &["nobody@other.test"], "bounce me")?;
    wait_until(Duration::from_secs(30), "the failpoint", || {
        cluster.nodes[0]
            .log()
            .contains("failpoint reached")
            .then_some(())
    })?;
    cluster.kill(0)?;
    let bounces = wait_until(Duration::from_secs(30), "the bounce on node 2", || {
        let inbox = inbox_on(&cluster, 1, alice).ok()?;
        (!inbox.is_empty()).then_some(inbox)
    })?;
    assert_eq!(bounces.len(), 1);
    let raw = bounces[0]["raw"].as_str().context("raw")?;
    assert!(raw.contains(&id) && raw.contains("Status: 5.1.1"), "{raw}");
    cluster.nodes[0].env.clear();
    cluster.start_node(0)?;
    cluster.wait_ready(0, Duration::from_secs(30))?;
    wait_until(Duration::from_secs(30), "an empty queue", || {
        queue_is_empty(&cluster).then_some(())
    })?;
    // Still one bounce, read through the node that died.
    let after = wait_until(Duration::from_secs(30), "a listing from node 1", || {
        inbox_on(&cluster, 0, alice).ok()
    })?;
    assert_eq!(after.len(), 1);
    drop(cluster);
    stub.stop()?;
    Ok(())
}
