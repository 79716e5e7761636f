//! The smaller things an operator's walk found, against one real node on loopback: domain names
//! are checked, passwords meet the cluster's policy, postmaster mail is taken, each mail service
//! has its own connection budget and its own limit on open connections, whose refusals name
//! them, and submission completes a message's Date and Message-ID while port 25 leaves mail as
//! it came.

use anyhow::{Context, Result, ensure};
use chaos_tests::cluster::{Cluster, NodeTuning};
use chaos_tests::mail::{DOMAIN, PASSWORD, Probe, add_users, pop3_raw, python_script};
use chaos_tests::smtp_client::base64;
use serde_json::{Value, json};

const SUBNET: u8 = 110;

/// Runs `mclusterctl args`, which must fail; its error text.
fn ctl_refused(cluster: &Cluster, args: &[&str]) -> Result<String> {
    let output = cluster.ctl(args)?;
    ensure!(!output.status.success(), "{args:?} was accepted");
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[track_caller]
fn assert_says(text: &str, fragment: &str) {
    assert!(
        text.contains(fragment),
        "{text:?} does not say {fragment:?}"
    );
}

/// One message from a stranger on port 25 to `rcpt`, without a Date or Message-ID.
fn send_from_outside(addr: &str, rcpt: &str, subject: &str) -> Result<String> {
    let mut smtp = Probe::connect(addr)?;
    smtp.reply()?;
    smtp.command("EHLO client.test")?;
    let mail = smtp.command("MAIL FROM:<friend@remote.test>")?;
    ensure!(mail.starts_with("250"), "{mail}");
    let rcpt_reply = smtp.command(&format!("RCPT TO:<{rcpt}>"))?;
    if !rcpt_reply.starts_with("250") {
        return Ok(rcpt_reply);
    }
    smtp.command("DATA")?;
    let done = smtp.command(&format!("Subject: {subject}\r\n\r\nhello postmaster\r\n."))?;
    ensure!(done.starts_with("250"), "{done}");
    smtp.command("QUIT")?;
    Ok(rcpt_reply)
}

/// The greetings of `n` connections opened at once to `addr` (kept open until all are read).
fn greetings(addr: &str, n: usize) -> Result<Vec<String>> {
    let mut probes = Vec::new();
    let mut lines = Vec::new();
    for _ in 0..n {
        let mut probe = Probe::connect(addr)?;
        lines.push(probe.reply().unwrap_or_else(|err| format!("{err}")));
        probes.push(probe);
    }
    Ok(lines)
}

#[test]
fn an_operators_walk_finds_names_passwords_postmaster_budgets_and_headers() -> Result<()> {
    let cluster = Cluster::start(SUBNET, 1, false, NodeTuning::default())?;
    let node = &cluster.nodes[0];

    // Domain names: no IP literals, no single labels.
    let refused = ctl_refused(&cluster, &["domain", "add", "localhost"])?;
    assert_says(&refused, "is a single-label name");
    let refused = ctl_refused(&cluster, &["domain", "add", "10.99.0.10"])?;
    assert_says(&refused, "is an IP address");
    let refused = ctl_refused(&cluster, &["domain", "add", "bad_name.test"])?;
    assert_says(&refused, "must be 1 to 63 letters, digits or hyphens");
    add_users(&cluster, &["alice", "bob"])?;
    cluster.ctl_ok(&["domain", "add", "second.test"])?;

    // Passwords: ten characters by default, then what the administrator sets.
    let refused = ctl_refused(
        &cluster,
        &["user", "add", "carol@example.test", "--password", "x"],
    )?;
    assert_says(&refused, "at least 10 characters (min-password-length)");
    cluster.ctl_ok(&["protection", "set", "min-password-length=16"])?;
    let shown = cluster.ctl_ok(&["protection", "show"])?;
    assert_says(&shown, "min-password-length");
    assert_says(&shown, "imap-connections-per-minute-per-ip");
    let refused = ctl_refused(
        &cluster,
        &[
            "user",
            "passwd",
            "alice@example.test",
            "--password",
            "fifteen-chars!!",
        ],
    )?;
    assert_says(&refused, "at least 16 characters");
    cluster.ctl_ok(&[
        "user",
        "add",
        "carol@example.test",
        "--password",
        "sixteen-chars!!!",
    ])?;
    let refused = ctl_refused(&cluster, &["protection", "set", "min-password-length=4"])?;
    assert_says(&refused, "min-password-length must be between 8 and 128");
    let refused = ctl_refused(
        &cluster,
        &["protection", "set", "connections-per-minute-per-ip=60"],
    )?;
    assert_says(&refused, "replaced by one budget per service");

    // Postmaster: none configured is refused with the reason; then postmaster@example.test,
    // an alias for alice, takes the bare <postmaster> and second.test's postmaster too (the
    // node's host name n1.test is no local domain, so example.test, the oldest, is primary),
    // while a domain's own postmaster alias wins for it.
    let smtp = node.smtp_addr();
    let reply = send_from_outside(&smtp, "postmaster", "nobody")?;
    assert_says(&reply, "550 5.1.1 No postmaster mailbox is configured here");
    let admin = node.admin_url();
    for (address, target) in [
        (format!("postmaster@{DOMAIN}"), format!("alice@{DOMAIN}")),
        ("postmaster@second.test".to_owned(), format!("bob@{DOMAIN}")),
    ] {
        let body = json!({ "address": address, "targets": [target] });
        let answer = cluster
            .api
            .send_to(&admin, "POST", "/v1/aliases", Some(body))?;
        ensure!(answer.status == 201, "alias {address}: {answer:?}");
    }
    for (rcpt, subject) in [
        ("postmaster", "bare"),
        ("PostMaster", "bare mixed case"),
        ("POSTMASTER@Example.Test", "example postmaster"),
    ] {
        let reply = send_from_outside(&smtp, rcpt, subject)?;
        assert_says(&reply, "250");
    }
    let answer =
        cluster
            .api
            .send_to(&admin, "DELETE", "/v1/aliases/postmaster@second.test", None)?;
    ensure!(answer.status == 204, "{answer:?}");
    send_from_outside(&smtp, "postmaster@second.test", "second without its own")?;
    let alice = pop3_raw(&node.pop3_addr(), &format!("alice@{DOMAIN}"))?;
    let subjects: Vec<&str> = alice.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(
        subjects,
        [
            "bare",
            "bare mixed case",
            "example postmaster",
            "second without its own"
        ]
    );
    // Port 25 adds neither Date nor Message-ID.
    let raw = alice[0]["raw"].as_str().context("raw text")?;
    let header = raw
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(!header.contains("\r\ndate:"), "{raw}");
    assert!(!header.contains("\r\nmessage-id:"), "{raw}");

    // Submission completes the message (AUTH without TLS keeps the transcript plain).
    cluster.ctl_ok(&["policy", "set", "auth-without-tls=true"])?;
    let mut submission = Probe::connect(&node.submission_addr())?;
    submission.reply()?;
    submission.command("EHLO laptop.test")?;
    let token = base64(format!("\0bob@{DOMAIN}\0{PASSWORD}").as_bytes());
    let auth = submission.command(&format!("AUTH PLAIN {token}"))?;
    ensure!(auth.starts_with("235"), "{auth}");
    submission.command(&format!("MAIL FROM:<bob@{DOMAIN}>"))?;
    submission.command(&format!("RCPT TO:<bob@{DOMAIN}>"))?;
    submission.command("DATA")?;
    let done = submission.command("Subject: undated\r\n\r\nfrom a minimal client\r\n.")?;
    ensure!(done.starts_with("250"), "{done}");
    submission.command("QUIT")?;
    let bob = pop3_raw(&node.pop3_addr(), &format!("bob@{DOMAIN}"))?;
    let undated = bob
        .iter()
        .find(|m| m["subject"] == "undated")
        .context("the submitted message")?;
    let raw = undated["raw"].as_str().context("raw text")?;
    let date = raw
        .lines()
        .find(|l| l.starts_with("Date: "))
        .context(raw.to_owned())?;
    assert!(date.ends_with("+0000"), "{date}");
    let id = raw
        .lines()
        .find(|l| l.starts_with("Message-ID: <"))
        .context(raw.to_owned())?;
    assert!(id.ends_with("@n1.test>"), "{id}");

    // Connection budgets, loopback no longer exempt: IMAP's budget used up, SMTP still
    // answers; each refusal names its budget.
    cluster.ctl_ok(&[
        "protection",
        "set",
        "exempt-networks=::1/128",
        "imap-connections-per-minute-per-ip=3",
        "smtp-connections-per-minute-per-ip=2",
        "pop3-connections-per-minute-per-ip=1",
    ])?;
    let imap = greetings(&node.imap_addr(), 4)?;
    assert!(imap[..3].iter().all(|g| g.starts_with("* OK")), "{imap:?}");
    assert_eq!(
        imap[3],
        "* BYE [UNAVAILABLE] Too many connections per minute from your address \
         (imap-connections-per-minute-per-ip is 3), try later"
    );
    let smtp_greetings = greetings(&smtp, 3)?;
    assert!(
        smtp_greetings[..2].iter().all(|g| g.starts_with("220")),
        "{smtp_greetings:?}"
    );
    assert_eq!(
        smtp_greetings[2],
        "421 4.7.0 Too many connections per minute from your address \
         (smtp-connections-per-minute-per-ip is 2), try later"
    );
    let pop3 = greetings(&node.pop3_addr(), 2)?;
    assert!(pop3[0].starts_with("+OK"), "{pop3:?}");
    assert_eq!(
        pop3[1],
        "-ERR [SYS/TEMP] Too many connections per minute from your address \
         (pop3-connections-per-minute-per-ip is 1), try later"
    );
    let policy: Value =
        serde_json::from_str(&cluster.ctl_ok(&["protection", "show", "--json"])?)?;
    assert_eq!(policy["submission-connections-per-minute-per-ip"], 120);

    // Open connections: one limit per service too. An office's 40 IMAP connections from one
    // address are more than the 32 all services shared before.
    cluster.ctl_ok(&[
        "protection",
        "set",
        "imap-connections-per-minute-per-ip=1000",
        "smtp-connections-per-minute-per-ip=1000",
        "pop3-connections-per-minute-per-ip=1000",
    ])?;
    let office = greetings(&node.imap_addr(), 40)?;
    assert!(office.iter().all(|g| g.starts_with("* OK")), "{office:?}");
    let refused = ctl_refused(&cluster, &["policy", "set", "max-connections-per-ip=64"])?;
    assert_says(&refused, "replaced by one limit per service");
    cluster.ctl_ok(&[
        "policy",
        "set",
        "imap-connections-per-ip=3",
        "smtp-connections-per-ip=2",
    ])?;
    let shown = cluster.ctl_ok(&["policy", "show"])?;
    assert_says(&shown, "submission-connections-per-ip");
    // Three IMAP connections held open: the fourth is told which key refused it, while port
    // 25 still takes two and POP3 (its own limit, 100) answers.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut probe = Probe::connect(&node.imap_addr())?;
        let greeting = probe.reply()?;
        ensure!(greeting.starts_with("* OK"), "{greeting}");
        held.push(probe);
    }
    let imap = greetings(&node.imap_addr(), 1)?;
    assert_eq!(
        imap[0],
        "* BYE [UNAVAILABLE] Too many open connections from your address \
         (imap-connections-per-ip is 3), try later"
    );
    // IMAP over implicit TLS counts with port 143, and its refusal comes inside TLS.
    let imaps = node.imaps_addr();
    let (host, port) = imaps.rsplit_once(':').context("imaps address")?;
    let over_tls = python_script("tls_greetings.py", &[host, port, "1"])?;
    assert_eq!(
        over_tls["greetings"][0],
        "* BYE [UNAVAILABLE] Too many open connections from your address \
         (imap-connections-per-ip is 3), try later",
        "{over_tls}"
    );
    let smtp_greetings = greetings(&smtp, 3)?;
    assert!(
        smtp_greetings[..2].iter().all(|g| g.starts_with("220")),
        "{smtp_greetings:?}"
    );
    assert_eq!(
        smtp_greetings[2],
        "421 4.7.0 Too many open connections from your address \
         (smtp-connections-per-ip is 2), try later"
    );
    let pop3 = greetings(&node.pop3_addr(), 1)?;
    assert!(pop3[0].starts_with("+OK"), "{pop3:?}");
    // A connection that ends gives its place back.
    drop(held.pop());
    let again = wait_for_greeting(&node.imap_addr())?;
    assert!(again.starts_with("* OK"), "{again}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}

/// The greeting of a new connection to `addr`, trying for up to 5 s until it is not a refusal
/// (a closed connection's slot is given back when its session notices the close).
fn wait_for_greeting(addr: &str) -> Result<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let line = greetings(addr, 1)?.remove(0);
        if !line.contains("Too many") || std::time::Instant::now() > deadline {
            return Ok(line);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
