//! IMAP against real `mclusterd` processes: Python's imaplib through every command on two nodes,
//! mbsync pulling mailboxes, and raw transcripts of tricky input (literals, limits, garbage,
//! wrong states, bad sequence numbers, partial fetches, malformed MIME) answered per RFC 3501
//! with the session and the server surviving.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::mail::{
    DOMAIN, PASSWORD, add_users, have, imap_tool, python_client, python_script, send_numbered,
    smtp_send,
};
use chaos_tests::{Cluster, NodeTuning, wait_until};

// ---- imaplib through every command ----

/// The steps of `clients/imap_session.py`, in order; each one checks what it did.
const SESSION_STEPS: [&str; 17] = [
    "capability_starttls_login",
    "pipelining_and_starttls_injection",
    "implicit_tls_authenticate_plain",
    "noop_id_namespace",
    "mailboxes",
    "deliver",
    "status_examine_read_only",
    "fetch_all_items",
    "append",
    "store",
    "search",
    "copy_move_uid",
    "expunge_close_unselect",
    "idle_cross_node",
    "condstore",
    "quota",
    "logout",
];

#[test]
fn imaplib_session_runs_every_command_across_two_nodes() {
    let cluster = Cluster::start(41, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let ports = n1.ports;
    let report = python_script(
        "imap_session.py",
        &[
            "--n1",
            n1.ip(),
            "--n2",
            n2.ip(),
            "--user",
            &alice,
            "--password",
            PASSWORD,
            "--smtp-port",
            &ports.smtp.to_string(),
            "--imap-port",
            &ports.imap.to_string(),
            "--imaps-port",
            &ports.imaps.to_string(),
        ],
    )
    .expect("run imap_session.py");
    assert_eq!(
        report["ok"],
        true,
        "step {} failed: {}\n{}",
        report["step"],
        report["error"],
        report["traceback"].as_str().unwrap_or_default()
    );
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect();
    assert_eq!(steps, SESSION_STEPS, "every step ran, in order");
    // Each step asserts on results; a much lower count means checks were skipped.
    let checks = report["checks"].as_u64().unwrap_or(0);
    assert!(checks >= 600, "only {checks} checks ran: {report}");
    cluster.check_no_unexpected_errors(&[]);
}

// ---- mbsync ----

/// The bytes of every message in a Maildir folder, by file name (the `:2,FLAGS` suffix kept).
fn maildir(folder: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
            out.insert(
                name,
                std::fs::read(entry.path()).expect("read a maildir file"),
            );
        }
    }
    out
}

/// A Maildir file name without its flags: it stays the same while only flags change.
fn base_name(name: &str) -> &str {
    let name = name.rsplit_once('/').map_or(name, |(_, file)| file);
    name.split_once(":2,").map_or(name, |(base, _)| base)
}

fn maildir_flags(name: &str) -> &str {
    name.split_once(":2,").map_or("", |(_, flags)| flags)
}

/// The messages of a mailbox as node `addr` serves them: uid -> (bytes, flags).
fn server_messages(addr: &str, user: &str, mailbox: &str) -> BTreeMap<u64, (Vec<u8>, Vec<String>)> {
    let dump = imap_tool(addr, user, "dump", &["--mailbox", mailbox]).expect("dump a mailbox");
    dump["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let flags = m["flags"]
                .as_array()
                .expect("flags")
                .iter()
                .map(|f| f.as_str().unwrap_or_default().to_owned())
                .collect();
            let uid = m["uid"].as_u64().expect("uid");
            (uid, (hex(m["body"].as_str().expect("body")), flags))
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from imap_tool.py"))
        .collect()
}

/// mbsync stores messages with bare LF line ends (Maildir is a Unix format).
fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

/// A Maildir copy as the server has it: mbsync adds an `X-TUID` header (its own bookkeeping,
/// RFC 5322 header syntax) to every message it stores.
fn without_tuid(local: &[u8]) -> Vec<u8> {
    let header_end = local
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(local.len(), |i| i + 1);
    let mut out = Vec::with_capacity(local.len());
    let mut dropped = false;
    for line in local[..header_end].split_inclusive(|&b| b == b'\n') {
        if !dropped && line.starts_with(b"X-TUID: ") {
            dropped = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(&local[header_end..]);
    out
}

/// Runs `mbsync -a` (killed after two minutes); returns its output, failing on a non-zero exit.
fn run_mbsync(config: &Path, home: &Path) -> String {
    let mut child = Command::new("mbsync")
        .arg("-V")
        .arg("-c")
        .arg(config)
        .arg("-a")
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mbsync");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait for mbsync").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mbsync did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("mbsync output");
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mbsync failed: {log}");
    log
}

/// The local copy of a server mailbox is exactly its messages: same bytes (LF line ends), same
/// flags (Maildir letters), nothing more.
#[track_caller]
fn check_mirrored(
    local: &BTreeMap<String, Vec<u8>>,
    server: &BTreeMap<u64, (Vec<u8>, Vec<String>)>,
) {
    let letter = |flag: &str| match flag {
        "\\Seen" => Some('S'),
        "\\Flagged" => Some('F'),
        "\\Answered" => Some('R'),
        "\\Draft" => Some('D'),
        "\\Deleted" => Some('T'),
        _ => None,
    };
    let mut expected: Vec<(Vec<u8>, String)> = server
        .values()
        .map(|(bytes, flags)| {
            let mut letters: Vec<char> = flags.iter().filter_map(|f| letter(f)).collect();
            letters.sort_unstable();
            (lf(bytes), letters.into_iter().collect())
        })
        .collect();
    let mut got: Vec<(Vec<u8>, String)> = local
        .iter()
        .map(|(name, bytes)| (without_tuid(bytes), maildir_flags(name).to_owned()))
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(
        got.len(),
        expected.len(),
        "local files {:?}",
        local.keys().collect::<Vec<_>>()
    );
    for (got, expected) in got.iter().zip(&expected) {
        assert!(
            got.0 == expected.0,
            "local bytes differ:\n{}\n---\n{}",
            String::from_utf8_lossy(&got.0),
            String::from_utf8_lossy(&expected.0)
        );
        assert_eq!(got.1, expected.1, "flags of a local copy");
    }
}

#[test]
fn imap_mbsync_pulls_every_message_then_only_what_changed() {
    assert!(
        have("mbsync"),
        "mbsync is needed (deploy/dev.sh test installs isync)"
    );
    let cluster = Cluster::start(42, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);

    // Mail arrives through node 1: SMTP into INBOX (one message large), APPEND into a folder.
    let smtp = n1.smtp_addr();
    let (host, port) = smtp.rsplit_once(':').unwrap();
    let send = |subject: &str, body_bytes: usize| {
        let sent = python_client(&[
            "send",
            "--host",
            host,
            "--port",
            port,
            "--from",
            "sender@remote.test",
            "--to",
            &alice,
            "--subject",
            subject,
            "--body-bytes",
            &body_bytes.to_string(),
        ])
        .unwrap();
        assert_eq!(sent["code"], 250, "{sent}");
    };
    for (i, size) in [200, 3_000, 400_000, 200].into_iter().enumerate() {
        send(&format!("message {i}"), size);
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = "Lists/rust";
    imap_tool(&n1.imaps_addr(), &alice, "create", &["--mailbox", folder]).unwrap();
    let appended = dir.path().join("appended.eml");
    std::fs::write(
        &appended,
        "From: list@remote.test\r\nTo: alice@example.test\r\nSubject: in a folder\r\n\r\nlist mail\r\n",
    )
    .unwrap();
    imap_tool(
        &n1.imaps_addr(),
        &alice,
        "append",
        &[
            "--mailbox",
            folder,
            "--file",
            &appended.display().to_string(),
            "--flags",
            "(\\Seen \\Answered)",
        ],
    )
    .unwrap();

    // mbsync reads node 2 over implicit TLS and checks the certificate the cluster presents.
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, cluster.ctl_ok(&["tls", "show"]).unwrap()).unwrap();
    let mail = dir.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let config = dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount node2\nHost {host}\nPort {port}\nUser {alice}\nPass \"{PASSWORD}\"\n\
             SSLType IMAPS\nCertificateFile {cert}\nAuthMechs PLAIN\nTimeout 30\n\n\
             IMAPStore remote\nAccount node2\n\n\
             MaildirStore local\nPath {mail}/\nInbox {mail}/INBOX\nSubFolders Verbatim\n\n\
             Channel pull\nFar :remote:\nNear :local:\nPatterns *\nSync Pull\nCreate Near\n\
             SyncState *\n",
            host = n2.ip(),
            port = n2.ports.imaps,
            cert = cert.display(),
            mail = mail.display(),
        ),
    )
    .unwrap();
    let inbox = mail.join("INBOX");
    let lists = mail.join(folder);

    let first = run_mbsync(&config, dir.path());
    let local_inbox = maildir(&inbox);
    check_mirrored(
        &local_inbox,
        &server_messages(&n2.imaps_addr(), &alice, "INBOX"),
    );
    assert_eq!(local_inbox.len(), 4, "{first}");
    let local_lists = maildir(&lists);
    check_mirrored(
        &local_lists,
        &server_messages(&n2.imaps_addr(), &alice, folder),
    );
    assert_eq!(
        local_lists
            .keys()
            .map(|n| maildir_flags(n))
            .collect::<Vec<_>>(),
        ["RS"],
        "APPEND's flags reached the Maildir"
    );
    for name in ["Drafts", "Junk", "Sent", "Trash"] {
        assert!(mail.join(name).is_dir(), "mbsync created {name}: {first}");
    }

    // A second run with nothing new changes nothing.
    run_mbsync(&config, dir.path());
    assert_eq!(
        maildir(&inbox),
        local_inbox,
        "nothing changed, nothing moved"
    );

    // One more message (through node 1): only it is fetched, the others stay as they were.
    send("late arrival", 500);
    run_mbsync(&config, dir.path());
    let after_new = maildir(&inbox);
    assert_eq!(after_new.len(), 5);
    for (name, bytes) in &local_inbox {
        assert_eq!(after_new.get(name), Some(bytes), "{name} was left alone");
    }
    let server = server_messages(&n2.imaps_addr(), &alice, "INBOX");
    check_mirrored(&after_new, &server);

    // A flag change on node 1 reaches the local copy by renaming the file, not refetching it.
    let (uid, (bytes, _)) = server.iter().next().expect("a message");
    imap_tool(
        &n1.imaps_addr(),
        &alice,
        "store",
        &[
            "--uid",
            &uid.to_string(),
            "--op",
            "+FLAGS",
            "--flags",
            "(\\Flagged \\Seen)",
        ],
    )
    .unwrap();
    run_mbsync(&config, dir.path());
    let after_flags = maildir(&inbox);
    let server = server_messages(&n2.imaps_addr(), &alice, "INBOX");
    check_mirrored(&after_flags, &server);
    let flagged: Vec<&String> = after_flags
        .iter()
        .filter(|(_, b)| without_tuid(b) == lf(bytes))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(maildir_flags(flagged[0]), "FS");
    let bases = |m: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        m.keys()
            .map(|n| base_name(n).to_owned())
            .collect::<Vec<_>>()
    };
    let mut before_bases = bases(&after_new);
    let mut after_bases = bases(&after_flags);
    before_bases.sort();
    after_bases.sort();
    assert_eq!(
        before_bases, after_bases,
        "the same files, renamed for their flags"
    );

    // An expunge on node 1: the local copy is marked deleted (Sync Pull propagates it).
    let (gone_uid, (gone_bytes, _)) = server.iter().nth(1).expect("a second message");
    let expunged = imap_tool(
        &n1.imaps_addr(),
        &alice,
        "expunge",
        &["--uid", &gone_uid.to_string()],
    )
    .unwrap();
    assert_eq!(
        expunged["expunged"],
        serde_json::json!([2]),
        "UID {gone_uid} was message 2"
    );
    let log = run_mbsync(&config, dir.path());
    let after_expunge = maildir(&inbox);
    let server = server_messages(&n2.imaps_addr(), &alice, "INBOX");
    assert_eq!(server.len(), 4);
    let gone: Vec<(&String, &Vec<u8>)> = after_expunge
        .iter()
        .filter(|(_, b)| without_tuid(b) == lf(gone_bytes))
        .collect();
    assert!(
        gone.len() == 1 && maildir_flags(gone[0].0).contains('T'),
        "the expunged message is marked trashed locally (Expunge None keeps the file): {:?}\n{log}",
        gone.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    let kept: BTreeMap<String, Vec<u8>> = after_expunge
        .into_iter()
        .filter(|(_, b)| without_tuid(b) != lf(gone_bytes))
        .collect();
    check_mirrored(&kept, &server);
    cluster.check_no_unexpected_errors(&[]);
}

// ---- raw transcripts ----

/// A raw IMAP connection: writes bytes, reads response lines with their literals inline.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(addr: &str) -> Result<Raw> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        Ok(Raw {
            reader: BufReader::new(stream),
        })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.reader.get_mut().write_all(bytes).context("send")
    }

    /// One response: a line (without its CRLF) with every literal it announces read into it
    /// (`{n}\r\n` and the n bytes kept as they came).
    fn response(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                bail!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&out)
                );
            }
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
            out.extend_from_slice(&line);
            let Some(length) = announced_literal(&line) else {
                return Ok(out);
            };
            let mut literal = vec![0; length];
            self.reader.read_exact(&mut literal)?;
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&literal);
        }
    }

    /// Responses up to and including the tagged one for `tag`.
    fn until_tagged(&mut self, tag: &str) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            let response = self.response()?;
            let done = response.starts_with(format!("{tag} ").as_bytes());
            out.push(response);
            if done {
                return Ok(out);
            }
        }
    }

    /// True once the server has closed the connection (within the read timeout).
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// The length of a literal a response line ends with (`{n}` or `~{n}`).
fn announced_literal(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

fn text(response: &[u8]) -> String {
    String::from_utf8_lossy(response).into_owned()
}

/// Sends each client line (CRLF added) and reads as many responses as expected. An expected
/// line ending in `…` must begin the received one; any other must equal it.
#[track_caller]
fn check(raw: &mut Raw, steps: &[(&str, &[&str])]) {
    for (line, expected) in steps {
        raw.send(format!("{line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("send {line:?}: {e:#}"));
        expect(raw, line, expected);
    }
}

#[track_caller]
fn expect(raw: &mut Raw, after: &str, expected: &[&str]) {
    let shown: String = after.chars().take(80).collect();
    for want in expected {
        let got = raw
            .response()
            .unwrap_or_else(|e| panic!("after {shown:?} expected {want:?}: {e:#}"));
        let got = text(&got);
        let matched = match want.strip_suffix('…') {
            Some(prefix) => got.starts_with(prefix),
            None => got == *want,
        };
        assert!(matched, "after {shown:?} expected {want:?}, got {got:?}");
    }
}

/// A logged-in raw session on node `i`'s plain port (the test cluster allows AUTH without TLS).
fn logged_in(cluster: &Cluster, i: usize) -> Raw {
    let mut raw = Raw::connect(&cluster.nodes[i].imap_addr()).unwrap();
    expect(&mut raw, "connect", &["* OK [CAPABILITY IMAP4rev1 …"]);
    check(
        &mut raw,
        &[(
            &format!("l1 LOGIN alice@{DOMAIN} \"{PASSWORD}\""),
            &["l1 OK [CAPABILITY …"],
        )],
    );
    raw
}

/// Allows LOGIN without TLS (so raw sessions can be read as text) and waits until both data
/// nodes offer it; sessions take the policy when they start.
fn allow_plain_login(cluster: &Cluster, extra: &[&str]) {
    let mut args = vec!["policy", "set", "auth-without-tls=true"];
    args.extend_from_slice(extra);
    cluster.ctl_ok(&args).unwrap();
    for node in &cluster.nodes[..2] {
        wait_until(
            Duration::from_secs(20),
            "AUTH=PLAIN on the plain port",
            || {
                let mut raw = Raw::connect(&node.imap_addr()).ok()?;
                let greeting = text(&raw.response().ok()?);
                greeting.contains("AUTH=PLAIN").then_some(())
            },
        )
        .unwrap();
    }
}

/// APPENDs `message` with a LITERAL+ literal; returns its UID.
fn append(raw: &mut Raw, message: &[u8]) -> u32 {
    let mut command = format!("ap APPEND INBOX {{{}+}}\r\n", message.len()).into_bytes();
    command.extend_from_slice(message);
    command.extend_from_slice(b"\r\n");
    raw.send(&command).unwrap();
    let responses = raw.until_tagged("ap").unwrap();
    let tagged = text(responses.last().expect("a tagged reply"));
    assert!(tagged.starts_with("ap OK [APPENDUID "), "{tagged}");
    tagged
        .split_whitespace()
        .nth(4)
        .and_then(|uid| uid.trim_end_matches(']').parse().ok())
        .unwrap_or_else(|| panic!("APPENDUID in {tagged}"))
}

/// A NOOP answered OK: the session is alive and nothing is left unread.
#[track_caller]
fn alive(raw: &mut Raw) {
    check(raw, &[("alive NOOP", &["alive OK NOOP completed"])]);
}

#[test]
fn imap_transcripts_of_bad_input_get_rfc_replies_and_the_session_survives() {
    let mut cluster = Cluster::start(43, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    allow_plain_login(&cluster, &["max-message-bytes=100000"]);
    let addr = cluster.nodes[0].imap_addr();

    // Literals: synchronizing ones wait for "+", LITERAL+ ones do not; the wrong state first.
    let mut raw = Raw::connect(&addr).unwrap();
    let greeting = text(&raw.response().unwrap());
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    // RFC 7889: the policy's message size limit, which APPEND enforces.
    assert!(greeting.contains(" APPENDLIMIT=100000 "), "{greeting}");
    let user = format!("alice@{DOMAIN}");
    check(
        &mut raw,
        &[
            ("w1 SELECT INBOX", &["w1 BAD Log in first"]),
            ("w2 IDLE", &["w2 BAD Log in first"]),
            (&format!("t1 LOGIN {{{}}}", user.len()), &["+ …"]),
            (&format!("{user} {{{}}}", PASSWORD.len()), &["+ …"]),
            (PASSWORD, &["t1 OK [CAPABILITY …"]),
            ("t2 CREATE {4+}\r\nLitP", &["t2 OK Create completed"]),
            ("t3 LIST \"\" {4}", &["+ …"]),
            (
                "LitP",
                &[
                    "* LIST (\\HasNoChildren) \"/\" \"LitP\"",
                    "t3 OK List completed",
                ],
            ),
            // Over the limits: refused before a byte of the literal is read.
            ("t4 APPEND INBOX {99999999}", &["t4 NO [TOOBIG] …"]),
            (
                "t5 APPEND INBOX {99999999999999999999999}",
                &["t5 NO [TOOBIG] …"],
            ),
            (
                "t6 CREATE {70000}",
                &["t6 NO [TOOBIG] literal of 70000 bytes is over the limit …"],
            ),
        ],
    );
    alive(&mut raw);
    // LITERAL+ over the limit: the data still comes and must not be taken for commands.
    let mut oversized = b"t7 APPEND INBOX {200000+}\r\n".to_vec();
    oversized.extend(b"x1 LOGOUT\r\n".iter().cycle().take(200_000));
    oversized.extend_from_slice(b"\r\n");
    raw.send(&oversized).unwrap();
    expect(&mut raw, "t7 APPEND {200000+}", &["t7 NO [TOOBIG] …"]);
    alive(&mut raw);
    check(
        &mut raw,
        &[(
            "bye LOGOUT",
            &["* BYE Logging out", "bye OK Logout completed"],
        )],
    );
    assert!(raw.closed(), "LOGOUT closes the connection");

    // A line over 256 KiB, garbage, NUL bytes, an unknown command (a session allows ten errors).
    let mut raw = logged_in(&cluster, 0);
    let long = format!("t8 NOOP {}", "x".repeat(300 * 1024));
    check(
        &mut raw,
        &[
            (&long, &["t8 BAD command line too long …"]),
            ("\u{1}\u{2}\u{7f} garbage", &["* BAD syntax error"]),
            ("t9 NOOP\0", &["t9 BAD syntax error"]),
            ("t10 SELECT IN\0BOX", &["t10 BAD syntax error"]),
            ("t11 FROBNICATE", &["t11 BAD syntax error"]),
        ],
    );
    raw.send(b"\xff\xfe\xfd\r\n").unwrap();
    expect(&mut raw, "non-UTF-8 bytes", &["* BAD syntax error"]);
    // Nesting 30,000 deep is refused by the parser's depth limit, not by the stack.
    let not = format!("d1 SEARCH {}ALL", "NOT ".repeat(30_000));
    let parens = format!(
        "d2 FETCH 1 {}FLAGS{}",
        "(".repeat(30_000),
        ")".repeat(30_000)
    );
    check(
        &mut raw,
        &[
            (&not, &["d1 BAD syntax error"]),
            (&parens, &["d2 BAD syntax error"]),
        ],
    );
    alive(&mut raw);

    // Commands in the wrong state, IDLE and AUTHENTICATE ended wrongly.
    let mut raw = logged_in(&cluster, 0);
    check(
        &mut raw,
        &[
            ("s1 FETCH 1 FLAGS", &["s1 BAD No mailbox selected"]),
            ("s2 CLOSE", &["s2 BAD No mailbox selected"]),
            ("s3 LOGIN a b", &["s3 BAD Already authenticated"]),
            ("s4 STARTTLS", &["s4 BAD Already authenticated"]),
            ("s5 IDLE", &["+ idling"]),
            ("NOT DONE", &["s5 BAD Expected DONE"]),
            ("s6 IDLE", &["+ idling"]),
            (
                "done\r\ns7 NOOP",
                &["s6 OK IDLE terminated", "s7 OK NOOP completed"],
            ),
        ],
    );
    alive(&mut raw);
    let mut unauthenticated = Raw::connect(&addr).unwrap();
    expect(&mut unauthenticated, "connect", &["* OK …"]);
    check(
        &mut unauthenticated,
        &[
            ("a1 AUTHENTICATE PLAIN", &["+ "]),
            ("*", &["a1 BAD Authentication cancelled"]),
            (
                "a2 AUTHENTICATE CRAM-MD5",
                &["a2 NO Unsupported authentication mechanism"],
            ),
            ("a3 AUTHENTICATE PLAIN", &["+ "]),
            ("%%% not base64", &["a3 BAD Authentication cancelled"]),
        ],
    );
    alive(&mut unauthenticated);

    // Sequence numbers and partial fetches on a one-message mailbox.
    let mut raw = logged_in(&cluster, 0);
    let message = b"From: a@remote.test\r\nSubject: partial\r\n\r\n0123456789\r\n";
    let size = message.len();
    let uid = append(&mut raw, message);
    check(
        &mut raw,
        &[
            (
                "f1 SELECT INBOX",
                &[
                    "* FLAGS …",
                    "* OK [PERMANENTFLAGS …",
                    "* 1 EXISTS",
                    // The first SELECT claims it.
                    "* 1 RECENT",
                    "* OK [UNSEEN 1] …",
                    "* OK [UIDVALIDITY …",
                    "* OK [UIDNEXT …",
                    "* OK [HIGHESTMODSEQ …",
                    "f1 OK [READ-WRITE] Select completed",
                ],
            ),
            ("f2 FETCH 0 FLAGS", &["f2 BAD syntax error"]),
            (
                "f3 FETCH 2 FLAGS",
                &["f3 BAD invalid message sequence number: 2"],
            ),
            (
                "f4 FETCH 1:5 FLAGS",
                &["f4 BAD invalid message sequence number: 5"],
            ),
            (
                "f5 STORE 9 +FLAGS (x)",
                &["f5 BAD invalid message sequence number: 9"],
            ),
            ("f6 FETCH a:b FLAGS", &["f6 BAD syntax error"]),
            ("f7 FETCH 4294967296 FLAGS", &["f7 BAD syntax error"]),
        ],
    );
    alive(&mut raw);
    check(
        &mut raw,
        &[
            (
                "g1 FETCH * (UID FLAGS)",
                &[
                    // Recent in this session, which claimed it with its SELECT.
                    &format!("* 1 FETCH (UID {uid} FLAGS (\\Recent))"),
                    "g1 OK Fetch completed",
                ],
            ),
            ("g2 UID FETCH 999 FLAGS", &["g2 OK Fetch completed"]),
            (
                "g3 UID FETCH 999:* UID",
                &[&format!("* 1 FETCH (UID {uid})"), "g3 OK Fetch completed"],
            ),
            (
                "g4 FETCH 1 (BODY.PEEK[]<1000000.10>)",
                &["* 1 FETCH (BODY[]<1000000> \"\")", "g4 OK Fetch completed"],
            ),
            (
                &format!("g5 FETCH 1 (BODY.PEEK[]<{size}.10>)"),
                &[
                    &format!("* 1 FETCH (BODY[]<{size}> \"\")"),
                    "g5 OK Fetch completed",
                ],
            ),
            (
                &format!("g6 FETCH 1 (BODY.PEEK[]<{}.10>)", size - 4),
                &[
                    &format!("* 1 FETCH (BODY[]<{}> {{4}}\r\n89\r\n)", size - 4),
                    "g6 OK Fetch completed",
                ],
            ),
            (
                "g7 FETCH 1 (BODY.PEEK[TEXT]<2.3>)",
                &[
                    "* 1 FETCH (BODY[TEXT]<2> {3}\r\n234)",
                    "g7 OK Fetch completed",
                ],
            ),
            (
                "g8 FETCH 1 (BODY.PEEK[3.2] BODY.PEEK[2] BODY.PEEK[1.TEXT])",
                &[
                    "* 1 FETCH (BODY[3.2] NIL BODY[2] NIL BODY[1.TEXT] NIL)",
                    "g8 OK Fetch completed",
                ],
            ),
            (
                "g9 FETCH 1 (BODY.PEEK[1]<0.4>)",
                &[
                    "* 1 FETCH (BODY[1]<0> {4}\r\n0123)",
                    "g9 OK Fetch completed",
                ],
            ),
            (
                "g10 FETCH 1 (FLAGS)",
                &["* 1 FETCH (FLAGS (\\Recent))", "g10 OK Fetch completed"],
            ),
        ],
    );
    alive(&mut raw);

    // Another session expunges while this one runs STORE, which may not announce it (RFC 3501
    // 7.4.1); the NOOP after it must.
    let (second, third) = (append(&mut raw, message), append(&mut raw, message));
    let mut other = logged_in(&cluster, 0);
    check(&mut other, &[("x1 SELECT INBOX", &["* FLAGS …"])]);
    other.until_tagged("x1").unwrap();
    check(
        &mut other,
        &[
            (
                &format!("x2 UID STORE {second} +FLAGS.SILENT (\\Deleted)"),
                &["x2 OK Store completed"],
            ),
            ("x3 EXPUNGE", &["* 2 EXPUNGE", "x3 OK Expunge completed"]),
        ],
    );
    check(
        &mut raw,
        &[
            (
                "e1 STORE 1 +FLAGS (\\Seen)",
                &[
                    "* 1 FETCH (FLAGS (\\Seen \\Recent))",
                    "e1 OK Store completed",
                ],
            ),
            ("e2 NOOP", &["* 2 EXPUNGE", "e2 OK NOOP completed"]),
            (
                "e3 FETCH 1:* (UID)",
                &[
                    &format!("* 1 FETCH (UID {uid})"),
                    &format!("* 2 FETCH (UID {third})"),
                    "e3 OK Fetch completed",
                ],
            ),
        ],
    );

    // Ten errors end a session with BYE; the server goes on.
    let mut noisy = logged_in(&cluster, 0);
    for i in 0..9 {
        check(
            &mut noisy,
            &[(&format!("n{i} FROB"), &[&format!("n{i} BAD syntax error")])],
        );
    }
    check(
        &mut noisy,
        &[(
            "n9 FROB",
            &[
                "n9 BAD syntax error",
                "* BYE Too many errors, closing connection",
            ],
        )],
    );
    assert!(noisy.closed(), "the session ends after too many errors");
    alive(&mut raw);
    check(
        &mut raw,
        &[("z LOGOUT", &["* BYE Logging out", "z OK Logout completed"])],
    );
    for i in 0..2 {
        assert_eq!(
            cluster.exited(i).unwrap(),
            None,
            "node {i} is still running"
        );
    }
    cluster.check_no_unexpected_errors(&[]);
}

// ---- malformed MIME ----

/// A parsed IMAP value: atom (a section like `BODY[1.MIME]<0>` stays one atom), string, NIL,
/// or list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value2 {
    Atom(String),
    Str(Vec<u8>),
    Nil,
    List(Vec<Value2>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Value2> {
        self.skip();
        match self.s.get(self.i) {
            None => bail!("unexpected end"),
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    match self.s.get(self.i) {
                        Some(b')') => {
                            self.i += 1;
                            return Ok(Value2::List(items));
                        }
                        None => bail!("unterminated list"),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(b'"') => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => bail!("unterminated string"),
                        Some(b'\\') => {
                            out.push(*self.s.get(self.i + 1).context("escape")?);
                            self.i += 2;
                        }
                        Some(b'"') => {
                            self.i += 1;
                            return Ok(Value2::Str(out));
                        }
                        Some(&b) => {
                            out.push(b);
                            self.i += 1;
                        }
                    }
                }
            }
            Some(b'{') | Some(b'~') => {
                let open = self.i + usize::from(self.s[self.i] == b'~');
                let close = open
                    + self.s[open..]
                        .iter()
                        .position(|&b| b == b'}')
                        .context("}")?;
                let n: usize = std::str::from_utf8(&self.s[open + 1..close])?.parse()?;
                let start = close + 3;
                let data = self.s.get(start..start + n).context("literal data")?;
                self.i = start + n;
                Ok(Value2::Str(data.to_vec()))
            }
            Some(_) => {
                let start = self.i;
                let mut depth = 0i32;
                while let Some(&b) = self.s.get(self.i) {
                    match b {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let atom = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                Ok(if atom == "NIL" {
                    Value2::Nil
                } else {
                    Value2::Atom(atom)
                })
            }
        }
    }
}

/// The items of `* n FETCH (...)`, by name.
fn fetch_items(response: &[u8]) -> Result<BTreeMap<String, Value2>> {
    let open = response.iter().position(|&b| b == b'(').context("(")?;
    let mut parser = Parser {
        s: response,
        i: open,
    };
    let Value2::List(items) = parser.value()? else {
        bail!("not a list");
    };
    if parser.i != response.len() {
        bail!("trailing bytes after the FETCH list");
    }
    let mut out = BTreeMap::new();
    for pair in items.chunks(2) {
        let [Value2::Atom(name), value] = pair else {
            bail!("item {pair:?}");
        };
        out.insert(name.clone(), value.clone());
    }
    Ok(out)
}

/// How deep lists nest in a value.
fn depth(value: &Value2) -> usize {
    match value {
        Value2::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn bytes(value: &Value2) -> Vec<u8> {
    match value {
        Value2::Str(s) => s.clone(),
        other => panic!("expected a string, got {other:?}"),
    }
}

/// The media type of a BODYSTRUCTURE: ("MULTIPART", subtype) or (type, subtype) of a leaf.
fn media(structure: &Value2) -> (String, String) {
    let Value2::List(items) = structure else {
        panic!("BODYSTRUCTURE {structure:?}");
    };
    let text = |v: &Value2| match v {
        Value2::Str(s) => String::from_utf8_lossy(s).into_owned(),
        other => format!("{other:?}"),
    };
    match &items[0] {
        Value2::List(_) => {
            let subtype = items
                .iter()
                .find(|v| !matches!(v, Value2::List(_)))
                .map(text)
                .unwrap_or_default();
            ("MULTIPART".to_owned(), subtype)
        }
        first => (text(first), text(&items[1])),
    }
}

/// A message `depth` multiparts deep.
fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut body = b"Content-Type: text/plain\r\n\r\ninnermost text\r\n".to_vec();
    for level in (0..depth).rev() {
        let mut outer =
            format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n")
                .into_bytes();
        outer.extend_from_slice(&body);
        outer.extend_from_slice(format!("\r\n--b{level}--\r\n").as_bytes());
        body = outer;
    }
    let mut message =
        b"From: deep@remote.test\r\nSubject: deep multipart\r\nMIME-Version: 1.0\r\n".to_vec();
    message.extend_from_slice(&body);
    message
}

/// A message with `depth` message/rfc822 parts inside each other.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut message =
        b"From: inner@remote.test\r\nSubject: innermost\r\n\r\ninnermost text\r\n".to_vec();
    for level in 0..depth {
        let mut outer = format!(
            "From: level{level}@remote.test\r\nSubject: level {level}\r\nContent-Type: message/rfc822\r\n\r\n"
        )
        .into_bytes();
        outer.extend_from_slice(&message);
        message = outer;
    }
    message
}

#[test]
fn imap_malformed_mime_gets_sane_fetch_answers_and_the_server_survives() {
    let mut cluster = Cluster::start(44, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    allow_plain_login(&cluster, &[]);
    let mut raw = logged_in(&cluster, 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unterminated boundary",
            b"Subject: unterminated\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsecond, never closed\r\n".to_vec(),
        ),
        (
            "missing boundary parameter",
            b"Subject: no boundary\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nstuff\r\n--x--\r\n".to_vec(),
        ),
        (
            "bad base64",
            b"Subject: bad base64\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!! this is * not base64 ====\r\n".to_vec(),
        ),
        (
            "header without colon",
            b"Subject: colonless\r\nThis header line has no colon\r\nFrom: Someone <s@remote.test>\r\n\r\nbody text\r\n".to_vec(),
        ),
        ("no header at all", b"just text, no header and no blank line".to_vec()),
        ("header only", b"Subject: only a header\r\nFrom: h@remote.test\r\n".to_vec()),
        (
            "8-bit garbage in headers",
            b"Subject: \xff\xfe\xc3(\r\nFrom: \"\x80\x81\" <g@remote.test>\r\nContent-Type: text/plain; charset=\"\xff\"\r\n\r\nbody \xff\r\n".to_vec(),
        ),
        (
            "broken content-type and encoding",
            b"Subject: broken type\r\nContent-Type: ;;; = \"unterminated\r\nContent-Transfer-Encoding: x-unknown-(\r\n\r\nbody\r\n".to_vec(),
        ),
        // As deep as the default message limits allow (max-mime-depth 32).
        ("32 nested multiparts", nested_multipart(32)),
        ("32 nested message/rfc822", nested_messages(32)),
    ];
    let mut uids = Vec::new();
    for (what, message) in &cases {
        let uid = append(&mut raw, message);
        uids.push(uid);
        assert_eq!(uid as usize, uids.len(), "{what}: UIDs count up");
    }
    check(
        &mut raw,
        &[(
            "m0 EXAMINE INBOX",
            &[
                "* FLAGS …",
                "* OK [PERMANENTFLAGS …",
                &format!("* {} EXISTS", cases.len()),
                // Nobody claimed them; EXAMINE shows them recent.
                &format!("* {} RECENT", cases.len()),
                "* OK [UNSEEN 1] …",
                "* OK [UIDVALIDITY …",
                "* OK [UIDNEXT …",
                "* OK [HIGHESTMODSEQ …",
                "m0 OK [READ-ONLY] Examine completed",
            ],
        )],
    );
    for (seq, (what, message)) in cases.iter().enumerate() {
        let seq = seq + 1;
        raw.send(
            format!(
                "m{seq} FETCH {seq} (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE BODY[] BODY[HEADER] BODY[TEXT] BODY[1] BODY[1.MIME] BODY[2])\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let responses = raw
            .until_tagged(&format!("m{seq}"))
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let tagged = text(responses.last().expect("tagged"));
        assert_eq!(tagged, format!("m{seq} OK Fetch completed"), "{what}");
        assert_eq!(responses.len(), 2, "{what}: one FETCH response");
        let items = fetch_items(&responses[0])
            .unwrap_or_else(|e| panic!("{what}: unparsable FETCH: {e:#}\n{}", text(&responses[0])));
        // The bytes come back exactly; header and text split them.
        assert_eq!(&bytes(&items["BODY[]"]), message, "{what}: BODY[]");
        assert_eq!(
            items["RFC822.SIZE"],
            Value2::Atom(message.len().to_string()),
            "{what}"
        );
        let mut rejoined = bytes(&items["BODY[HEADER]"]);
        rejoined.extend(bytes(&items["BODY[TEXT]"]));
        assert_eq!(&rejoined, message, "{what}: HEADER + TEXT = the message");
        assert!(
            matches!(items["ENVELOPE"], Value2::List(ref l) if l.len() == 10),
            "{what}: ENVELOPE"
        );
        let structure = &items["BODYSTRUCTURE"];
        assert!(
            depth(structure) <= 40,
            "{what}: nesting is cut: {}",
            depth(structure)
        );
        assert!(matches!(items["BODY"], Value2::List(_)), "{what}: BODY");
        for section in ["BODY[1]", "BODY[1.MIME]", "BODY[2]"] {
            assert!(
                matches!(items[section], Value2::Str(_) | Value2::Nil),
                "{what}: {section} is a string or NIL"
            );
        }
        let (media_type, subtype) = media(structure);
        match *what {
            "unterminated boundary" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("MULTIPART", "MIXED")
                );
                assert_eq!(bytes(&items["BODY[1]"]), b"first");
                assert!(
                    bytes(&items["BODY[2]"]).starts_with(b"second, never closed"),
                    "{items:?}"
                );
            }
            "missing boundary parameter" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("TEXT", "PLAIN"),
                    "{structure:?}"
                );
                assert_eq!(items["BODY[2]"], Value2::Nil);
            }
            "bad base64" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("APPLICATION", "OCTET-STREAM")
                );
                assert_eq!(
                    bytes(&items["BODY[1]"]),
                    b"!!!! this is * not base64 ====\r\n"
                );
            }
            "no header at all" | "header only" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("TEXT", "PLAIN"),
                    "{structure:?}"
                );
            }
            "32 nested multiparts" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("MULTIPART", "MIXED")
                );
                assert!(depth(structure) >= 10, "{what}: the first levels are parts");
            }
            "32 nested message/rfc822" => {
                assert_eq!(
                    (media_type.as_str(), subtype.as_str()),
                    ("MESSAGE", "RFC822")
                );
            }
            _ => {}
        }
    }
    // Deeper is refused at APPEND with [LIMIT], and the session goes on.
    for message in [nested_multipart(200), nested_messages(200)] {
        let mut command = format!("deep APPEND INBOX {{{}+}}\r\n", message.len()).into_bytes();
        command.extend_from_slice(&message);
        command.extend_from_slice(b"\r\n");
        raw.send(&command).unwrap();
        let responses = raw.until_tagged("deep").unwrap();
        let tagged = text(responses.last().expect("a tagged reply"));
        assert!(
            tagged.starts_with("deep NO [LIMIT] Message refused: the message nests MIME parts"),
            "{tagged}"
        );
    }
    // BINARY of undecodable base64 is refused as the RFC says, and the session goes on.
    let bad_base64 = cases.iter().position(|(w, _)| *w == "bad base64").unwrap() + 1;
    check(
        &mut raw,
        &[(
            &format!("b1 FETCH {bad_base64} (BINARY.PEEK[1])"),
            &["b1 NO [UNKNOWN-CTE] …"],
        )],
    );
    // SEARCH reads and decodes every one of them.
    check(
        &mut raw,
        &[
            (
                "s1 SEARCH TEXT innermost",
                &["* SEARCH …", "s1 OK Search completed"],
            ),
            (
                "s2 SEARCH BODY \"never closed\"",
                &["* SEARCH 1", "s2 OK Search completed"],
            ),
            (
                "s3 SEARCH HEADER X-Nothing \"\"",
                &["* SEARCH", "s3 OK Search completed"],
            ),
            (
                "s4 FETCH 1:* (BODYSTRUCTURE)",
                &[
                    "* 1 FETCH …",
                    "* 2 FETCH …",
                    "* 3 FETCH …",
                    "* 4 FETCH …",
                    "* 5 FETCH …",
                    "* 6 FETCH …",
                    "* 7 FETCH …",
                    "* 8 FETCH …",
                    "* 9 FETCH …",
                    "* 10 FETCH …",
                    "s4 OK Fetch completed",
                ],
            ),
        ],
    );
    alive(&mut raw);
    // The same on the other node, from its own copy; both processes are still running.
    let mut other = logged_in(&cluster, 1);
    check(&mut other, &[("o1 EXAMINE INBOX", &["* FLAGS …"])]);
    other.until_tagged("o1").unwrap();
    other
        .send(b"o2 FETCH 1:* (BODYSTRUCTURE BODY.PEEK[])\r\n")
        .unwrap();
    let responses = other.until_tagged("o2").unwrap();
    assert_eq!(responses.len(), cases.len() + 1);
    assert_eq!(text(responses.last().unwrap()), "o2 OK Fetch completed");
    for (response, (what, message)) in responses.iter().zip(&cases) {
        let items = fetch_items(response).unwrap_or_else(|e| panic!("{what} on node 2: {e:#}"));
        assert_eq!(&bytes(&items["BODY[]"]), message, "{what} on node 2");
    }
    alive(&mut other);
    for i in 0..2 {
        assert_eq!(
            cluster.exited(i).unwrap(),
            None,
            "node {i} is still running"
        );
    }
    let fresh = logged_in(&cluster, 0);
    drop(fresh);
    cluster.check_no_unexpected_errors(&[]);
}

/// n2 takes mail alone while n1 is down; n1 comes back (its resync held by a failpoint), takes
/// leadership, and n2 hangs: those messages now have no live copy. Reading the mailbox on n1
/// must not wait on the dead node once per message: the whole FETCH of every body answers at
/// once, the messages it holds in full and the others with [UNAVAILABLE].
#[test]
fn reads_do_not_wait_per_message_for_a_dead_replica() {
    let mut cluster = Cluster::start(102, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    allow_plain_login(&cluster, &[]);
    let send = |addr: &str, n: usize, subject: &str| send_parallel(addr, 1, n, subject);
    // Ten messages on both nodes.
    send(&cluster.nodes[0].smtp_addr(), 10, "mirrored");
    // n1 goes; n2 (with the witness) leads and takes 300 messages with one copy.
    cluster.kill(0).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    send(&cluster.nodes[1].smtp_addr(), 300, "alone");
    // n1 returns without pulling them, leads, and n2 dies.
    cluster.nodes[0].env = vec![(
        "MCLUSTER_FAILPOINTS".into(),
        "resync-before-pass=pause:600000".into(),
    )];
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    let n1 = cluster.nodes[0].name.clone();
    wait_until(Duration::from_secs(20), "n1 leads", || {
        cluster.ctl_ok(&["failover", "--to", &n1]).ok()
    })
    .unwrap();
    // Frozen, like a hung host: its kernel takes the packets and nothing answers, so only
    // the leader's view of it (no heartbeat acknowledged) tells it is gone.
    cluster.freeze(1).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut raw = logged_in(&cluster, 0);
    let started = Instant::now();
    check(
        &mut raw,
        &[(
            "s1 SELECT INBOX",
            &[
                "* FLAGS …",
                "* OK [PERMANENTFLAGS …",
                "* 310 EXISTS",
                "* 310 RECENT",
                "* OK [UNSEEN 1] …",
                "* OK [UIDVALIDITY …",
                "* OK [UIDNEXT …",
                "* OK [HIGHESTMODSEQ …",
                "s1 OK [READ-WRITE] Select completed",
            ],
        )],
    );
    raw.send(b"f1 FETCH 1:* (BODY.PEEK[])\r\n").unwrap();
    let responses = raw.until_tagged("f1").unwrap();
    let took = started.elapsed();
    let tagged = text(responses.last().expect("tagged"));
    let served = responses.len() - 1;
    eprintln!(
        "SELECT and FETCH 1:* BODY[] of 310 messages, 300 without a live copy: {took:?}, {served} served; {tagged}"
    );
    // The ten mirrored ones at least (the restarted n1 may have pulled a few before its
    // resync was held).
    assert!((10..300).contains(&served), "{served} served: {tagged}");
    assert!(tagged.starts_with("f1 NO [UNAVAILABLE]"), "{tagged}");
    assert!(took < Duration::from_secs(5), "the FETCH took {took:?}");
    cluster.thaw(1).unwrap();
}

/// Sends `n` messages to alice through `addr` over `sessions` parallel SMTP sessions.
fn send_parallel(addr: &str, sessions: usize, n: usize, subject: &str) {
    let alice = format!("alice@{DOMAIN}");
    std::thread::scope(|scope| {
        for s in 0..sessions {
            let alice = &alice;
            scope.spawn(move || {
                send_numbered(addr, alice, (s..n).step_by(sessions), subject).expect("send");
            });
        }
    });
}

/// One node's own view of its blobs (`/v1/node`).
fn node_mail(cluster: &Cluster, i: usize) -> Option<serde_json::Value> {
    let node = cluster
        .api
        .get_from(
            &cluster.nodes[i].admin_url(),
            "/v1/node",
            Duration::from_secs(10),
        )
        .ok()?;
    Some(node["mail"].clone())
}

/// n2 takes 1,200 messages alone while n1 is down. n1 comes back and its resync stops after
/// the first batch (a failpoint); n2 then hangs. Reads on n1 answer at once (what it has in
/// full, the rest `[UNAVAILABLE]`). n1 is killed there, n2 thaws, n1 restarts: its resync
/// continues with exactly what it had not confirmed (nothing is fetched twice), redundancy is
/// full, and with n2 killed every message reads from n1.
#[test]
fn resync_continues_after_a_restart_and_reads_do_not_wait_for_it() {
    const ALONE: usize = 1200;
    let mut cluster = Cluster::start(105, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    allow_plain_login(&cluster, &[]);
    send_parallel(&cluster.nodes[0].smtp_addr(), 1, 10, "mirrored");
    cluster.kill(0).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    send_parallel(&cluster.nodes[1].smtp_addr(), 4, ALONE, "alone");
    eprintln!(
        "{ALONE} messages accepted with one copy in {:?}",
        started.elapsed()
    );

    cluster.nodes[0].env = vec![(
        "MCLUSTER_FAILPOINTS".into(),
        "resync-after-batch=pause:600000".into(),
    )];
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    // The first batch is confirmed, then the pass holds (the node had caught up before its
    // first pass, so what it misses no longer changes).
    let log = cluster.nodes[0].log_path();
    wait_until(Duration::from_secs(60), "n1's first resync batch", || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("resync-after-batch").then_some(())
    })
    .unwrap();
    let held = wait_until(
        Duration::from_secs(10),
        "n1 applies its first batch",
        || {
            let missing = node_mail(&cluster, 0)?["blobs_missing"].as_u64()?;
            (missing > 0 && missing < ALONE as u64).then_some(missing)
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let remaining = node_mail(&cluster, 0).unwrap()["blobs_missing"]
        .as_u64()
        .unwrap();
    assert_eq!(remaining, held, "the resync pass is held after one batch");
    eprintln!(
        "n1 confirmed {} blobs, {remaining} remain",
        ALONE as u64 - remaining
    );

    // n2 hangs: n1 and the witness elect n1; reads of what only n2 holds fail at once.
    cluster.freeze(1).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let total = 10 + ALONE;
    let mut raw = logged_in(&cluster, 0);
    let started = Instant::now();
    raw.send(b"s1 SELECT INBOX\r\n").unwrap();
    let selected = raw.until_tagged("s1").unwrap();
    let exists = format!("* {total} EXISTS");
    assert!(
        selected.iter().any(|line| text(line) == exists),
        "{:?}",
        selected.iter().map(|l| text(l)).collect::<Vec<_>>()
    );
    raw.send(b"f1 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        .unwrap();
    let responses = raw.until_tagged("f1").unwrap();
    let took = started.elapsed();
    let tagged = text(responses.last().expect("tagged"));
    let served = responses.len() - 1;
    eprintln!(
        "SELECT and FETCH 1:* of {total} messages, {remaining} without a live copy: {took:?}, \
         {served} served; {tagged}"
    );
    assert_eq!(served as u64, total as u64 - remaining, "{tagged}");
    assert_eq!(
        tagged,
        format!("f1 NO [UNAVAILABLE] {remaining} messages could not be read, try again")
    );
    assert!(
        took < Duration::from_secs(3),
        "SELECT and FETCH took {took:?}"
    );
    drop(raw);

    // n1 dies with its pass held; n2 thaws; n1 restarts and continues.
    cluster.kill(0).unwrap();
    cluster.thaw(1).unwrap();
    cluster.nodes[0].env.clear();
    let restarted = Instant::now();
    cluster.start_node(0).unwrap();
    wait_until(Duration::from_secs(120), "full redundancy", || {
        let status = cluster.api.get("/v1/status").ok()?;
        (status["redundant"] == true).then_some(())
    })
    .unwrap();
    let took = restarted.elapsed();
    let mail = wait_until(Duration::from_secs(10), "n1 applies its last batch", || {
        let mail = node_mail(&cluster, 0)?;
        (mail["blobs_missing"] == 0).then_some(mail)
    })
    .unwrap();
    eprintln!(
        "after the restart n1 fetched {} blobs; start to full redundancy {took:?} (debug build)",
        mail["resync_fetched"]
    );
    assert_eq!(
        mail["resync_fetched"].as_u64(),
        Some(remaining),
        "the restarted resync fetches what was not confirmed, and only that: {mail}"
    );

    // Every message now reads from n1 alone.
    cluster.kill(1).unwrap();
    cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    let mut raw = logged_in(&cluster, 0);
    raw.send(b"s2 SELECT INBOX\r\nf2 FETCH 1:* (BODY.PEEK[])\r\n")
        .unwrap();
    raw.until_tagged("s2").unwrap();
    let responses = raw.until_tagged("f2").unwrap();
    assert_eq!(
        text(responses.last().unwrap()),
        "f2 OK Fetch completed",
        "every message reads from n1"
    );
    assert_eq!(responses.len() - 1, total);
    cluster.check_no_unexpected_errors(&["failpoint reached"]);
}

/// The SELECT response up to the tagged OK, with `exists` messages of which `recent` are
/// `\Recent` in this session.
fn selected(tag: &str, exists: u32, recent: u32) -> Vec<String> {
    vec![
        "* FLAGS …".to_owned(),
        "* OK [PERMANENTFLAGS …".to_owned(),
        format!("* {exists} EXISTS"),
        format!("* {recent} RECENT"),
        "* OK [UNSEEN …".to_owned(),
        "* OK [UIDVALIDITY …".to_owned(),
        "* OK [UIDNEXT …".to_owned(),
        "* OK [HIGHESTMODSEQ …".to_owned(),
        format!("{tag} OK [READ-WRITE] Select completed"),
    ]
}

/// `\Recent` across nodes and a failover (RFC 3501 2.3.2): the claim a SELECT makes is a
/// committed entry, so once the leader that took it dies, sessions on the survivor see those
/// messages claimed; mail that arrives after the failover is recent in exactly one session.
#[test]
fn recent_is_claimed_once_across_nodes_and_a_failover() {
    let mut cluster = Cluster::start(126, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    allow_plain_login(&cluster, &[]);
    let alice = format!("alice@{DOMAIN}");
    let send = |cluster: &Cluster, i: usize, subject: &str| {
        let (code, reply) = smtp_send(
            &cluster.nodes[i].smtp_addr(),
            "plain",
            None,
            &alice,
            subject,
        )
        .unwrap();
        assert_eq!(code, 250, "{reply}");
    };
    for subject in ["one", "two", "three"] {
        send(&cluster, 0, subject);
    }
    // n2 leads, and a session on it claims the three.
    cluster.ctl_ok(&["failover", "--to", "n2"]).unwrap();
    let mut first = logged_in(&cluster, 1);
    let want = selected("s1", 3, 3);
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    check(&mut first, &[("s1 SELECT INBOX", &want)]);
    drop(first);

    cluster.kill(1).unwrap();
    cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
    let mut second = logged_in(&cluster, 0);
    let want = selected("s2", 3, 0);
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    check(&mut second, &[("s2 SELECT INBOX", &want)]);
    send(&cluster, 0, "four");
    check(
        &mut second,
        &[(
            "n1 NOOP",
            &["* 4 EXISTS", "* 1 RECENT", "n1 OK NOOP completed"],
        )],
    );
    check(
        &mut second,
        &[(
            "f1 FETCH 3:4 FLAGS",
            &[
                "* 3 FETCH (FLAGS ())",
                "* 4 FETCH (FLAGS (\\Recent))",
                "f1 OK Fetch completed",
            ],
        )],
    );
    let mut third = logged_in(&cluster, 0);
    let want = selected("s3", 4, 0);
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    check(&mut third, &[("s3 SELECT INBOX", &want)]);
    cluster.check_no_unexpected_errors(&[]);
}
