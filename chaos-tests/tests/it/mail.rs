//! Mail in and out with real clients (smtplib, poplib, swaks, fetchmail), and SMTP protocol edge
//! cases answered clearly with the session surviving.

use std::process::Command;

use chaos_tests::mail::{
    DOMAIN, PASSWORD, Probe, add_users, have, imap_tool, pop3_fetch, python_client, smtp_send,
    subjects,
};
use chaos_tests::{Cluster, NodeTuning};

#[test]
fn real_clients_send_on_one_node_and_read_on_the_other() {
    let cluster = Cluster::start(6, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice", "bob"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);

    // Port 25 style: no AUTH, local recipient.
    let (code, reply) = smtp_send(&n1.smtp_addr(), "plain", None, &alice, "plain").unwrap();
    assert_eq!(code, 250, "{reply}");
    assert!(reply.contains("queued as"), "{reply}");
    // Submission: STARTTLS then AUTH (smtplib picks PLAIN or LOGIN).
    let (code, _) = smtp_send(
        &n2.submission_addr(),
        "starttls",
        Some(&alice),
        &alice,
        "starttls",
    )
    .unwrap();
    assert_eq!(code, 250);
    // Implicit TLS with AUTH.
    let (code, _) = smtp_send(
        &n1.smtps_addr(),
        "tls",
        Some("bob@example.test"),
        &alice,
        "smtps",
    )
    .unwrap();
    assert_eq!(code, 250);
    let mut expected = vec!["plain", "starttls", "smtps", "swaks"];
    assert!(
        have("swaks"),
        "swaks is needed (deploy/dev.sh test installs it)"
    );
    {
        let out = Command::new("swaks")
            .args([
                "--server",
                &n2.smtp_addr(),
                "--to",
                &alice,
                "--from",
                "s@remote.test",
            ])
            .args(["--header", "Subject: swaks", "--timeout", "30"])
            .output()
            .expect("run swaks");
        assert!(
            out.status.success(),
            "swaks: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // Read from the other node, over STLS and over 995; both see the same UIDLs.
    let on_n2 = pop3_fetch(&n2.pop3_addr(), "stls", &alice, false).unwrap();
    let on_n1 = pop3_fetch(&n1.pop3s_addr(), "tls", &alice, false).unwrap();
    let mut got = subjects(&on_n2);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let uidls = |v: &serde_json::Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["uidl"].to_string())
            .collect()
    };
    assert_eq!(
        uidls(&on_n1),
        uidls(&on_n2),
        "UIDLs are the same on every node"
    );
    let first = &on_n2["messages"][0];
    assert_eq!(first["received"], 1, "one Received header: {first}");
    assert_eq!(first["return_path"], "<sender@remote.test>");
    assert!(
        on_n2["capa"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "UIDL")
    );

    // SASL PLAIN login works too.
    let plain = python_client(&[
        "pop3",
        "--host",
        n1.ip(),
        "--port",
        "2110",
        "--mode",
        "stls",
        "--user",
        &alice,
        "--password",
        PASSWORD,
        "--auth",
        "plain",
    ])
    .unwrap();
    assert_eq!(plain["count"], expected.len());

    assert!(
        have("fetchmail"),
        "fetchmail is needed (deploy/dev.sh test installs it)"
    );
    fetchmail_reads(&cluster, &alice, expected.len());

    // Deleting through one node is seen on the other; a second session's deletions of the same
    // messages do no harm.
    let deleted = pop3_fetch(&n1.pop3s_addr(), "tls", &alice, true).unwrap();
    assert!(
        deleted["quit"].as_str().unwrap().contains("deleted"),
        "{deleted}"
    );
    let after = pop3_fetch(&n2.pop3_addr(), "stls", &alice, false).unwrap();
    assert_eq!(after["count"], 0, "{after}");
    let status = cluster.api.get("/v1/status").unwrap();
    assert_eq!(status["redundant"], true, "{status}");
    cluster.check_no_unexpected_errors(&[]);
}

/// fetchmail over POP3 with STLS, delivering into an mbox, keeping the messages on the server.
fn fetchmail_reads(cluster: &Cluster, user: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("mbox");
    let rc = dir.path().join("fetchmailrc");
    let node = &cluster.nodes[1];
    std::fs::write(
        &rc,
        format!(
            "poll {} protocol pop3 service 2110 auth password\n  user \"{user}\" password \"{PASSWORD}\"\n  sslproto tls1.2+ no sslcertck keep\n  mda \"cat >> {}\"\n",
            node.ip(),
            mbox.display()
        ),
    )
    .unwrap();
    #[allow(clippy::permissions_set_readonly_false)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = Command::new("fetchmail")
        .args([
            "-f",
            &rc.display().to_string(),
            "--nodetach",
            "--nosyslog",
            "-v",
        ])
        .env("HOME", dir.path())
        .output()
        .expect("run fetchmail");
    let log =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "fetchmail failed: {log}");
    let text = std::fs::read_to_string(&mbox).unwrap_or_default();
    assert_eq!(
        text.matches("\nSubject: ").count() + usize::from(text.starts_with("Subject: ")),
        n,
        "{log}"
    );
}

/// Runs a transcript of (client line, expected reply prefix) pairs on one connection.
#[track_caller]
fn check_transcript(probe: &mut Probe, steps: &[(&str, &str)]) {
    for (line, expected) in steps {
        let reply = probe
            .command(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e:#}"));
        assert!(
            reply.starts_with(expected),
            "to {line:?} expected {expected:?}, got {reply:?}"
        );
    }
}

#[test]
fn smtp_edge_cases_get_clear_replies_and_the_session_survives() {
    let cluster = Cluster::start(7, 1, false, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    cluster
        .ctl_ok(&["policy", "set", "max-message-bytes=20000"])
        .expect("set policy");
    let node = &cluster.nodes[0];
    let mut probe = Probe::connect(&node.smtp_addr()).unwrap();
    assert!(probe.reply().unwrap().starts_with("220 "));
    let ehlo = probe.command("EHLO client.test").unwrap();
    for keyword in [
        "PIPELINING",
        "SIZE 20000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(keyword), "EHLO lacks {keyword}: {ehlo}");
    }
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH is not offered before TLS: {ehlo}"
    );
    check_transcript(
        &mut probe,
        &[
            ("AUTH PLAIN AGFsaWNlAHg=", "538 5.7.11"),
            ("MAIL FROM:<a@remote.test> SIZE=999999", "552 5.3.4"),
            (
                "MAIL FROM:<a@remote.test> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x",
                "250 2.1.0",
            ),
            ("RCPT TO:<nobody@example.test>", "550 5.1.1"),
            ("RCPT TO:<victim@elsewhere.test>", "554 5.7.1"),
            (
                "RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.test",
                "250 2.1.5",
            ),
            ("RSET", "250"),
        ],
    );
    // A 10,000-byte command line, a NUL, an unknown verb: clear errors, the session goes on.
    let long = format!("MAIL FROM:<{}@remote.test>", "a".repeat(10_000));
    check_transcript(
        &mut probe,
        &[
            (&long, "500 5.5.2"),
            ("NOOP\0", "501"),
            ("FROB", "500 5.5.1"),
            ("NOOP", "250"),
        ],
    );
    check_transcript(&mut probe, &[("QUIT", "221")]);
    // Each session below stays under the limit of 10 errors.
    let session = || {
        let mut probe = Probe::connect(&node.smtp_addr()).unwrap();
        probe.reply().unwrap();
        check_transcript(&mut probe, &[("EHLO client.test", "250")]);
        probe
    };
    // Too many recipients: the 101st gets 452.
    let mut probe = session();
    check_transcript(&mut probe, &[("MAIL FROM:<a@remote.test>", "250")]);
    for i in 0..100 {
        let reply = probe.command("RCPT TO:<alice@example.test>").unwrap();
        assert!(reply.starts_with("250"), "recipient {i}: {reply}");
    }
    check_transcript(
        &mut probe,
        &[
            ("RCPT TO:<alice@example.test>", "452 4.5.3"),
            ("RSET", "250"),
        ],
    );
    // Bodies with problems are refused after the dot; the session stays usable.
    let bad_bodies: [(&[u8], &str); 4] = [
        // (A dot after a bare LF is not the end of the data: see the smuggling scenario.)
        (b"Subject: bare lf\nline\r\n.\r\n", "550 5.6.0"),
        (b"Subject: nul\r\n\r\nx\0y\r\n.\r\n", "550 5.6.0"),
        (
            &[
                b"Subject: long\r\n\r\n".as_slice(),
                &[b'x'; 10_000],
                b"\r\n.\r\n",
            ]
            .concat(),
            "550 5.6.0",
        ),
        (
            &[
                b"Subject: big\r\n\r\n".as_slice(),
                &b"0123456789012345678901234567890123456789\r\n".repeat(800),
                b".\r\n",
            ]
            .concat(),
            "552 5.3.4",
        ),
    ];
    for (body, expected) in bad_bodies {
        check_transcript(
            &mut probe,
            &[
                ("MAIL FROM:<a@remote.test>", "250"),
                ("RCPT TO:<alice@example.test>", "250"),
                ("DATA", "354"),
            ],
        );
        probe.send_raw(body).unwrap();
        let reply = probe.reply().unwrap();
        assert!(
            reply.starts_with(expected),
            "expected {expected}, got {reply}"
        );
    }
    // Pipelined: one write, replies in order, and the message is accepted.
    let mut probe = session();
    probe
        .send_raw(
            b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n",
        )
        .unwrap();
    assert!(probe.reply().unwrap().starts_with("250"));
    assert!(probe.reply().unwrap().starts_with("250"));
    assert!(probe.reply().unwrap().starts_with("550 5.1.1"));
    assert!(probe.reply().unwrap().starts_with("354"));
    probe
        .send_raw(b"Subject: pipelined\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n")
        .unwrap();
    assert!(
        probe
            .reply()
            .unwrap()
            .starts_with("250 2.0.0 Ok: queued as")
    );
    assert!(probe.reply().unwrap().starts_with("250"));
    check_transcript(&mut probe, &[("QUIT", "221")]);

    // Submission insists on AUTH, and AUTH on TLS.
    let mut submission = Probe::connect(&node.submission_addr()).unwrap();
    submission.reply().unwrap();
    check_transcript(
        &mut submission,
        &[
            ("EHLO client.test", "250"),
            ("AUTH LOGIN", "538 5.7.11"),
            ("MAIL FROM:<alice@example.test>", "530 5.7.0"),
        ],
    );
    // Ten errors end a session with 421.
    let mut noisy = Probe::connect(&node.smtp_addr()).unwrap();
    noisy.reply().unwrap();
    for _ in 0..10 {
        let reply = noisy.command("FROB").unwrap();
        assert!(reply.starts_with("500 5.5.1"), "{reply}");
    }
    let last = noisy.reply().unwrap();
    assert!(last.starts_with("421 4.7.0"), "{last}");
    assert!(noisy.closed());

    let listing = pop3_fetch(&node.pop3_addr(), "stls", "alice@example.test", false).unwrap();
    assert_eq!(subjects(&listing), ["pipelined"]);

    // Two POP3 sessions on one maildrop, both deleting the same message: no lock is needed, the
    // second expunge finds it gone, and the mailbox stays consistent.
    let (code, _) = smtp_send(
        &node.smtp_addr(),
        "plain",
        None,
        "alice@example.test",
        "second",
    )
    .unwrap();
    assert_eq!(code, 250);
    cluster
        .ctl_ok(&["policy", "set", "auth-without-tls=true"])
        .unwrap();
    let pop3_session = || {
        let mut pop = Probe::connect(&node.pop3_addr()).unwrap();
        assert!(pop.reply().unwrap().starts_with("+OK"));
        check_transcript(
            &mut pop,
            &[
                ("USER alice@example.test", "+OK"),
                (&format!("PASS {PASSWORD}"), "+OK logged in, 2 messages"),
            ],
        );
        pop
    };
    let (mut first, mut second) = (pop3_session(), pop3_session());
    check_transcript(
        &mut first,
        &[("DELE 1", "+OK"), ("DELE 1", "-ERR"), ("RETR 9", "-ERR")],
    );
    check_transcript(
        &mut second,
        &[("DELE 1", "+OK"), ("QUIT", "+OK bye, 1 messages deleted")],
    );
    check_transcript(&mut first, &[("QUIT", "+OK bye, 1 messages deleted")]);
    let listing = pop3_fetch(&node.pop3_addr(), "stls", "alice@example.test", false).unwrap();
    assert_eq!(subjects(&listing), ["second"]);
    assert!(
        listing["messages"][0]["uidl"]
            .as_str()
            .unwrap()
            .ends_with(".2")
    );
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn a_full_mailbox_refuses_smtp_rcpt_and_imap_append_but_not_the_message_that_fits() {
    let cluster = Cluster::start(47, 1, false, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &[]).expect("add the domain");
    let tiny = format!("tiny@{DOMAIN}");
    cluster
        .ctl_ok(&[
            "user",
            "add",
            &tiny,
            "--password",
            PASSWORD,
            "--quota-mb",
            "1",
        ])
        .expect("add a 1 MB account");
    let node = &cluster.nodes[0];

    // SMTP: a declared size over what is left of the quota is refused at RCPT.
    let mut probe = Probe::connect(&node.smtp_addr()).unwrap();
    assert!(probe.reply().unwrap().starts_with("220 "));
    probe.command("EHLO client.test").unwrap();
    let reply = probe
        .command("MAIL FROM:<a@remote.test> SIZE=2000000")
        .unwrap();
    assert!(reply.starts_with("250 "), "{reply}");
    let reply = probe.command(&format!("RCPT TO:<{tiny}>")).unwrap();
    assert!(reply.starts_with("452 4.2.2"), "{reply}");
    let reply = probe.command("RSET").unwrap();
    assert!(reply.starts_with("250"), "the session goes on: {reply}");

    // IMAP: the first 600 KB message fits in 1 MB, the second does not.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.eml");
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    while message.len() < 600 * 1024 {
        message.extend_from_slice(&[b'x'; 78]);
        message.extend_from_slice(b"\r\n");
    }
    std::fs::write(&file, &message).unwrap();
    let append = || {
        let reply = imap_tool(
            &node.imaps_addr(),
            &tiny,
            "append",
            &["--file", &file.display().to_string()],
        )
        .expect("run the IMAP client");
        (
            reply["status"].as_str().unwrap_or_default().to_owned(),
            reply["text"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (status, text) = append();
    assert_eq!(status, "OK", "{text}");
    let (status, text) = append();
    assert_eq!(status, "NO", "{text}");
    assert!(text.contains("[OVERQUOTA]"), "{text}");
    cluster.check_no_unexpected_errors(&[]);
}
