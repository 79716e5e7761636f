//! Content filters against the real scanners: SpamAssassin's spamd (stock rules, network tests
//! off, two local test rules) over TCP and ClamAV's clamd (a test signature database) over its
//! unix socket, both started by the test (on 127.0.75.x). Messages are sent with smtplib in one
//! session and read back with imaplib: clean mail reaches INBOX with clean verdict headers, spam
//! is tagged, filed to Junk or refused by score band, a forged verdict header is dropped, a
//! virus pattern is refused 554, a message over spamd's size limit and clamd's StreamMaxLength
//! is accepted as not scanned; a hung scanner with on-error = tempfail answers 451 and an
//! unreachable one with on-error = accept lets mail in with a note. The SMTP session answers
//! NOOP after every refusal.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chaos_tests::cluster::{Cluster, NodeTuning};
use chaos_tests::filter_lab::{self, GTUBE, HungScanner};
use chaos_tests::mail::{DOMAIN, PASSWORD, add_users, imap_tool, python_script};
use serde_json::Value;

const SPAMD: &str = "127.0.75.1:7830";
const CLAMD: &str = "127.0.75.2:7831";
const HUNG: &str = "127.0.75.3:7832";
/// Nothing listens here.
const DOWN: &str = "127.0.75.4:7833";

const VIRUS_PATTERN: &str = "MCLUSTER-TEST-VIRUS-PATTERN-7F3A";
const VIRUS_NAME: &str = "Mcluster.Test.Virus";

/// Two rules of our own, so that one spamd run shows every band: 60 tags, 200 junks, and
/// GTUBE's 1000 is refused. Stock rules give ordinary test mail a few points at most.
const LOCAL_RULES: &str = "body MCLUSTER_TAG_TEST /mcluster-tag-me/\nscore MCLUSTER_TAG_TEST 60\n\
body MCLUSTER_JUNK_TEST /mcluster-junk-me/\nscore MCLUSTER_JUNK_TEST 200\n";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address constant")
}

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: sender@remote.test\r\nTo: alice@{DOMAIN}\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@remote.test>\r\n\
         \r\n{body}\r\n"
    )
}

/// Sends `messages` in one smtplib session; the replies' codes and texts, after checking that
/// the session still answered NOOP with 250.
fn send_batch(
    addr: &str,
    from: &str,
    login: Option<&str>,
    dir: &std::path::Path,
    messages: &[(&str, String)],
) -> Result<Vec<(u64, String)>> {
    let (host, port) = addr.rsplit_once(':').context("host:port")?;
    let to = format!("alice@{DOMAIN}");
    let mut args: Vec<String> = ["--host", host, "--port", port, "--from", from, "--to", &to]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(user) = login {
        args.extend([
            "--user".into(),
            user.into(),
            "--password".into(),
            PASSWORD.into(),
        ]);
    }
    for (name, text) in messages {
        let path = filter_lab::message_file(dir, &format!("{name}.eml"), text)?;
        args.extend(["--message".into(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let value = python_script("smtp_batch.py", &args)?;
    ensure!(value.get("error").is_none(), "smtp_batch.py: {value}");
    ensure!(value["noop"] == 250, "the session did not survive: {value}");
    Ok(value["replies"]
        .as_array()
        .context("replies")?
        .iter()
        .map(|r| {
            (
                r["code"].as_u64().unwrap_or(0),
                r["reply"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// The messages of alice's `mailbox` as text.
fn mailbox(cluster: &Cluster, name: &str) -> Result<Vec<String>> {
    let user = format!("alice@{DOMAIN}");
    let dump = imap_tool(
        &cluster.nodes[0].imaps_addr(),
        &user,
        "dump",
        &["--mailbox", name],
    )?;
    dump["messages"]
        .as_array()
        .context("messages")?
        .iter()
        .map(|m: &Value| {
            let bytes = hex_decode(m["body"].as_str().context("body")?)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

fn hex_decode(text: &str) -> Result<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).context("odd hex")?, 16).context("hex"))
        .collect()
}

/// Node 0's /metrics text.
fn metrics(cluster: &Cluster) -> Result<String> {
    cluster
        .api
        .get_text_from(&cluster.nodes[0].admin_url(), "/metrics")
}

/// The header section of a message.
fn header(message: &str) -> &str {
    message.split("\r\n\r\n").next().unwrap_or_default()
}

/// The one message whose header has `subject_line`.
fn find<'a>(messages: &'a [String], subject_line: &str) -> Result<&'a str> {
    let found: Vec<&String> = messages
        .iter()
        .filter(|m| header(m).lines().any(|l| l == subject_line))
        .collect();
    ensure!(
        found.len() == 1,
        "want one message with {subject_line:?}, found {}: {messages:#?}",
        found.len()
    );
    Ok(found[0])
}

#[test]
fn spamd_and_clamd_verdicts_tag_junk_refuse_and_pass_clean_mail() -> Result<()> {
    let mut spamd = filter_lab::spamd(addr(SPAMD), LOCAL_RULES)?;
    let mut clamd = filter_lab::clamd(addr(CLAMD), VIRUS_NAME, VIRUS_PATTERN, "1M")?;
    let tuning = NodeTuning {
        extra_toml: format!(
            "[filters.spamd]\naddress = \"{SPAMD}\"\ntimeout-ms = 60000\ntag-score = 50.0\n\
             junk-score = 100.0\nreject-score = 500.0\n\n\
             [filters.clamd]\naddress = \"{}\"\ntimeout-ms = 60000\n",
            // clamd over its unix socket; spamd over TCP.
            clamd.unix_socket().display()
        ),
        ..NodeTuning::default()
    };
    let cluster = Cluster::start(74, 1, false, tuning)?;
    add_users(&cluster, &["alice"])?;
    let dir = tempfile::tempdir()?;
    // Over spamd's max-bytes (500 KiB) and clamd's StreamMaxLength (1 MiB).
    let big_body = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
        .repeat(16_000);
    let replies = send_batch(
        &cluster.nodes[0].smtp_addr(),
        "sender@remote.test",
        None,
        dir.path(),
        &[
            ("clean", message("clean-one", "Hello, see you tomorrow.")),
            // A sender's own verdict header does not survive.
            (
                "tag",
                format!(
                    "X-Spam-Status: No, forged\r\n{}",
                    message("tag-one", "mcluster-tag-me")
                ),
            ),
            ("junk", message("junk-one", "mcluster-junk-me")),
            ("gtube", message("gtube-one", GTUBE)),
            ("virus", message("virus-one", VIRUS_PATTERN)),
            ("big", message("big-one", &big_body)),
        ],
    )
    .with_context(|| format!("spamd log:\n{}\nclamd log:\n{}", spamd.log(), clamd.log()))?;
    let codes: Vec<u64> = replies.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [250, 250, 250, 550, 554, 250], "{replies:?}");
    assert!(replies[3].1.starts_with("5.7.1"), "{replies:?}");
    assert!(
        replies[4].1.contains(VIRUS_NAME),
        "the reply names the finding: {replies:?}"
    );

    let inbox = mailbox(&cluster, "INBOX")?;
    assert_eq!(inbox.len(), 3, "clean, tagged and big: {inbox:#?}");
    let clean = header(find(&inbox, "Subject: clean-one")?);
    assert!(clean.contains("X-Spam-Status: No, score="), "{clean}");
    assert!(clean.contains("X-Virus-Scanned: clamd, clean"), "{clean}");
    assert!(!clean.contains("X-Spam-Flag"), "{clean}");
    let tagged = header(find(&inbox, "Subject: [SPAM] tag-one")?);
    assert!(tagged.contains("X-Spam-Flag: YES"), "{tagged}");
    assert!(!tagged.contains("forged"), "{tagged}");
    assert!(
        tagged.contains("X-Spam-Status: Yes, score=6") && tagged.contains("MCLUSTER_TAG_TEST"),
        "{tagged}"
    );
    let big = header(find(&inbox, "Subject: big-one")?);
    assert!(
        big.contains("X-Spam-Status: not scanned (larger than 512000 bytes)"),
        "{big}"
    );
    assert!(
        big.contains("X-Virus-Scanned: not scanned (scanner unavailable)"),
        "clamd's size limit is an error, not clean: {big}"
    );

    let junk = mailbox(&cluster, "Junk")?;
    assert_eq!(junk.len(), 1, "{junk:#?}");
    let junked = header(find(&junk, "Subject: [SPAM] junk-one")?);
    assert!(junked.contains("MCLUSTER_JUNK_TEST"), "{junked}");

    let metrics = metrics(&cluster)?;
    for (name, value) in [
        // Clean, tag, junk and GTUBE; the big one was not scored.
        ("mcluster_spam_scanned_total", 5),
        ("mcluster_spam_found_total", 3),
        ("mcluster_spam_skipped_total", 1),
        // All but the big one, which clamd refused as too large.
        ("mcluster_virus_scanned_total", 5),
        ("mcluster_virus_found_total", 1),
        ("mcluster_filter_errors_total", 1),
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{name} {value}")),
            "{name} should be {value}:\n{metrics}"
        );
    }
    let log = cluster.nodes[0].log();
    assert!(log.contains("virus found"), "the node logs the finding");
    // clamd answers "INSTREAM size limit exceeded" and closes while we are still sending: the
    // node reads while it sends, so it has the answer before the connection is reset.
    assert!(
        log.contains("virus scan failed") && log.contains("INSTREAM size limit exceeded"),
        "the node logs why the big message was not scanned"
    );
    cluster.check_no_unexpected_errors(&[]);
    spamd.stop()?;
    clamd.stop()?;
    Ok(())
}

#[test]
fn scanner_outage_fails_closed_or_open_as_configured() -> Result<()> {
    // spamd hangs (accepts, never answers) and fails closed; clamd is down and fails open.
    let hung = HungScanner::bind(addr(HUNG))?;
    let tuning = NodeTuning {
        extra_toml: format!(
            "[filters.spamd]\naddress = \"{}\"\ntimeout-ms = 1500\non-error = \"tempfail\"\n\n\
             [filters.clamd]\naddress = \"{DOWN}\"\ntimeout-ms = 1500\non-error = \"accept\"\n",
            hung.addr()?
        ),
        ..NodeTuning::default()
    };
    let cluster = Cluster::start(75, 1, false, tuning)?;
    add_users(&cluster, &["alice"])?;
    let dir = tempfile::tempdir()?;

    let started = Instant::now();
    let replies = send_batch(
        &cluster.nodes[0].smtp_addr(),
        "sender@remote.test",
        None,
        dir.path(),
        &[
            ("one", message("outage-one", "hello")),
            ("two", message("outage-two", "hello again")),
        ],
    )?;
    let elapsed = started.elapsed();
    assert_eq!(
        replies,
        [
            (
                451,
                "4.7.1 Content scanner unavailable, try again later".to_owned()
            ),
            (
                451,
                "4.7.1 Content scanner unavailable, try again later".to_owned()
            ),
        ]
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "the timeout bounds the wait: {elapsed:?}"
    );
    assert!(mailbox(&cluster, "INBOX")?.is_empty());
    let metrics = metrics(&cluster)?;
    for line in [
        "mcluster_messages_tempfailed_total 2",
        "mcluster_filter_errors_total 4",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }

    // An authenticated sender's mail skips the spam scorer (scan-authenticated = false) but not
    // the virus scanner, which is down: accepted with a note.
    let user = format!("alice@{DOMAIN}");
    let replies = send_batch(
        &cluster.nodes[0].submission_addr(),
        &user,
        Some(&user),
        dir.path(),
        &[("submitted", message("submitted-one", "hello from alice"))],
    )?;
    assert_eq!(replies[0].0, 250, "{replies:?}");
    let inbox = mailbox(&cluster, "INBOX")?;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    let submitted = header(&inbox[0]);
    assert!(
        submitted.contains("X-Virus-Scanned: not scanned (scanner unavailable)"),
        "{submitted}"
    );
    assert!(!submitted.contains("X-Spam"), "{submitted}");
    let log = cluster.nodes[0].log();
    assert!(log.contains("spam scan failed") && log.contains("timed out"));
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
