//! Attacks by a stranger, against real processes: a message built to stop the cluster (the
//! query of death: 100,000 MIME parts, or nestings 10,000 deep), SMTP smuggling, unauthenticated
//! IMAP connections announcing 50 MiB literals, a user name that forges a log line, and POP3
//! replies split across writes. Each must get a clear answer while mail keeps flowing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::mail::{DOMAIN, Probe, add_users, imap_tool, pop3_fetch, smtp_send, subjects};
use chaos_tests::smtp_client::base64;
use chaos_tests::{Cluster, NodeTuning};

/// A message of `n` text parts in one multipart/mixed.
fn many_parts(n: usize) -> Vec<u8> {
    let mut raw = b"From: stranger@remote.test\r\nSubject: parts\r\n\
                    Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        .to_vec();
    for i in 0..n {
        raw.extend_from_slice(format!("--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"--b--\r\n");
    raw
}

/// Multiparts nested `depth` deep.
fn nested_multiparts(depth: usize) -> Vec<u8> {
    let mut raw =
        b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n".to_vec();
    for level in 1..depth {
        raw.extend_from_slice(
            format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n",
                level - 1
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"bottom\r\n");
    for level in (0..depth).rev() {
        raw.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
    }
    raw
}

/// message/rfc822 parts nested `depth` deep.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..depth {
        raw.extend_from_slice(b"Subject: wrapper\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: inner\r\n\r\nbottom\r\n");
    raw
}

/// Sends `message` (CRLF lines, no dot at a line start) with a raw SMTP session to port 25;
/// the reply to the data and how long it took after the final dot.
fn send_raw_message(addr: &str, to: &str, message: &[u8]) -> Result<(String, Duration)> {
    let mut probe = Probe::connect(addr)?;
    probe.reply()?;
    for (line, expected) in [
        ("EHLO stranger.test".to_owned(), "250"),
        ("MAIL FROM:<stranger@remote.test>".to_owned(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        let reply = probe.command(&line)?;
        if !reply.starts_with(expected) {
            bail!("{line}: {reply}");
        }
    }
    probe.send_raw(message)?;
    let started = Instant::now();
    probe.send_raw(b".\r\n")?;
    let reply = probe.reply()?;
    let took = started.elapsed();
    probe.command("QUIT")?;
    Ok((reply, took))
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

/// What an unauthenticated IMAP connection may cost the node, in KiB: the command reader's
/// 8 KiB before login, a 4 KiB read buffer, the reply buffer and the session's task, with room
/// for the allocator (docs/OPERATIONS.md, "Memory").
const PRE_AUTH_CONNECTION_KIB: u64 = 64;

/// Reads what the server sends until it closes the connection (or 10 s pass).
fn read_to_close(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A node's mail addresses, kept while the node restarts.
struct Addrs {
    smtp: String,
    imap: String,
    imaps: String,
    pop3: String,
}

#[test]
fn strangers_cannot_stop_the_cluster_smuggle_mail_or_forge_logs() -> Result<()> {
    let mut cluster = Cluster::start(100, 2, true, NodeTuning::default())?;
    add_users(&cluster, &["alice", "bob"])?;
    let alice = format!("alice@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    // Many connections from one loopback address, and AUTH without TLS for the raw probes.
    cluster.ctl_ok(&[
        "policy",
        "set",
        "smtp-connections-per-ip=1000",
        "imap-connections-per-ip=1000",
        "pop3-connections-per-ip=1000",
        "auth-without-tls=true",
    ])?;
    let n1 = Addrs {
        smtp: cluster.nodes[0].smtp_addr(),
        imap: cluster.nodes[0].imap_addr(),
        imaps: cluster.nodes[0].imaps_addr(),
        pop3: cluster.nodes[0].pop3_addr(),
    };

    // 1. Unauthenticated IMAP connections announcing 50 MiB literals are refused before a
    // byte of the literal is read and closed; 300 more sit on partial command lines. The
    // node's memory grows by no more than the documented bound per connection.
    let pid = cluster.nodes[0].pid().context("n1 runs")?;
    let before = rss_kib(pid)?;
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(&n1.imap)?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let sync = if i % 2 == 0 { "" } else { "+" };
        stream.write_all(format!("a{i} APPEND INBOX {{52428800{sync}}}\r\n").as_bytes())?;
        // A client that does not wait: the first 64 KiB of the literal.
        let _ = stream.write_all(&[b'x'; 64 * 1024]);
        let answer = read_to_close(&mut stream);
        assert!(
            answer.contains(&format!("a{i} BAD")) && answer.contains("* BYE"),
            "connection {i}: {answer:?}"
        );
        let mut partial = TcpStream::connect(&n1.imap)?;
        partial.write_all(format!("b{i} LOGIN {}", "x".repeat(7000)).as_bytes())?;
        idle.push(partial);
    }
    std::thread::sleep(Duration::from_secs(1));
    let during = rss_kib(pid)?;
    let bound = 300 * PRE_AUTH_CONNECTION_KIB;
    eprintln!(
        "n1 RSS {before} KiB before, {during} KiB with 300 idle unauthenticated IMAP \
         connections (bound {bound} KiB)"
    );
    assert!(
        during.saturating_sub(before) < bound,
        "RSS grew from {before} to {during} KiB"
    );
    drop(idle);

    // 2. The query of death: refused at the end of the data, at once, and the cluster goes on.
    for (name, message) in [
        ("100,000 parts", many_parts(100_000)),
        ("multiparts 10,000 deep", nested_multiparts(10_000)),
        ("messages 10,000 deep", nested_messages(10_000)),
    ] {
        let (reply, took) = send_raw_message(&n1.smtp, &alice, &message)?;
        eprintln!("{name} ({} bytes): {reply:?} after {took:?}", message.len());
        assert!(
            reply.starts_with("554 5.6.0 Message refused"),
            "{name}: {reply}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{name}: answered after {took:?}"
        );
    }
    // Within the limits, a message with many parts is taken.
    let (reply, _) = send_raw_message(&n1.smtp, &alice, &many_parts(500))?;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    // An operator raises a limit for a known sender (docs/OPERATIONS.md).
    let (reply, _) = send_raw_message(&n1.smtp, &alice, &many_parts(1500))?;
    assert!(reply.contains("more than 1000 MIME parts"), "{reply}");
    cluster.ctl_ok(&[
        "policy",
        "set",
        "max-mime-parts=2000",
        "max-header-bytes=1048576",
    ])?;
    let shown = cluster.ctl_ok(&["policy", "show"])?;
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().eq(["max-mime-parts", "2000"])),
        "{shown}"
    );
    let (reply, _) = send_raw_message(&n1.smtp, &alice, &many_parts(1500))?;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    // IMAP APPEND refuses the same message with [LIMIT].
    let file = cluster.root().join("death.eml");
    std::fs::write(&file, many_parts(100_000))?;
    let appended = imap_tool(
        &n1.imaps,
        &alice,
        "append",
        &["--file", file.to_str().context("path")?],
    )?;
    assert_eq!(appended["status"], "NO", "{appended}");
    assert!(
        appended["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[LIMIT] Message refused"),
        "{appended}"
    );
    // Normal mail flows on every data node.
    for i in 0..2 {
        let (code, reply) = smtp_send(
            &cluster.nodes[i].smtp_addr(),
            "plain",
            None,
            &alice,
            &format!("after the attack via n{}", i + 1),
        )?;
        assert_eq!(code, 250, "n{}: {reply}", i + 1);
    }

    // 3. SMTP smuggling: a message with a non-standard end of data and a second transaction
    // inside. One reply, a refusal, and nothing after the fake end is ever a command.
    let smuggled = b"MAIL FROM:<ceo@bank.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n\
                     From: ceo@bank.test\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n";
    for fake_end in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n.\n",
    ] {
        let shown = String::from_utf8_lossy(fake_end).escape_debug().to_string();
        let mut probe = Probe::connect(&n1.smtp)?;
        probe.reply()?;
        for line in [
            "EHLO relay.test",
            "MAIL FROM:<a@remote.test>",
            &format!("RCPT TO:<{alice}>"),
            "DATA",
        ] {
            probe.command(line)?;
        }
        let mut data = b"From: a@remote.test\r\nSubject: outer\r\n\r\nhello".to_vec();
        data.extend_from_slice(fake_end);
        data.extend_from_slice(smuggled);
        probe.send_raw(&data)?;
        let reply = probe.reply()?;
        assert!(
            reply.starts_with("550 5.6.0 Bare CR or LF"),
            "{shown}: {reply}"
        );
        let quit = probe.command("QUIT")?;
        assert!(
            quit.starts_with("221"),
            "{shown}: after the data came {quit:?}"
        );
    }
    // BDAT is not offered; its chunk is skipped, never read as commands.
    let mut probe = Probe::connect(&n1.smtp)?;
    probe.reply()?;
    probe.command("EHLO relay.test")?;
    probe.command("MAIL FROM:<a@remote.test>")?;
    probe.command(&format!("RCPT TO:<{alice}>"))?;
    let chunk = smuggled.as_slice();
    probe.send_raw(format!("BDAT {} LAST\r\n", chunk.len()).as_bytes())?;
    probe.send_raw(chunk)?;
    let reply = probe.reply()?;
    assert!(reply.starts_with("502 5.5.1"), "{reply}");
    assert!(probe.command("NOOP")?.starts_with("250"));
    assert!(probe.command("QUIT")?.starts_with("221"));

    // 4. A user name with CR/LF in SMTP AUTH leaves one escaped log line, no forged one.
    let forged =
        "fake-log 2026-12-04T08:00:00Z  INFO node::smtp: authenticated user=admin@example.test";
    let mut probe = Probe::connect(&n1.smtp)?;
    probe.reply()?;
    probe.command("EHLO relay.test")?;
    let plain = base64(format!("\0admin\r\n{forged}\0wrong").as_bytes());
    let reply = probe.command(&format!("AUTH PLAIN {plain}"))?;
    assert!(reply.starts_with("535"), "{reply}");
    probe.command("QUIT")?;
    let log = cluster.nodes[0].log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("fake-log")).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("admin\\r\\nfake-log"), "{}", lines[0]);
    assert!(!log.lines().any(|l| l.starts_with("fake-log")));

    // 5. POP3 replies arrive whole: the greeting's first read ends in CRLF.
    for attempt in 0..20 {
        let mut stream = TcpStream::connect(&n1.pop3)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf)?;
        assert!(
            buf[..n].ends_with(b"\r\n"),
            "greeting {attempt} came in pieces: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }

    // A restart of every node is clean, and mail still flows.
    for i in 0..cluster.nodes.len() {
        cluster.kill(i)?;
    }
    for i in 0..cluster.nodes.len() {
        cluster.start_node(i)?;
    }
    for i in 0..2 {
        cluster.wait_ready(i, Duration::from_secs(60))?;
    }
    let (code, reply) = smtp_send(&n1.smtp, "plain", None, &alice, "after the restart")?;
    assert_eq!(code, 250, "{reply}");
    let inbox = subjects(&pop3_fetch(&n1.pop3, "stls", &alice, false)?);
    assert_eq!(
        inbox,
        [
            "parts",
            "parts",
            "after the attack via n1",
            "after the attack via n2",
            "after the restart"
        ],
        "{inbox:?}"
    );
    // The smuggled messages went nowhere.
    let bobs = subjects(&pop3_fetch(&n1.pop3, "stls", &bob, false)?);
    assert!(bobs.is_empty(), "{bobs:?}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
