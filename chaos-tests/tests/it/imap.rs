//! IMAP against real `mclusterd` processes: Python's imaplib through every command on two nodes,
//! and mbsync pulling mailboxes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_tests::mail::{
    DOMAIN, PASSWORD, add_users, have, imap_tool, python_client, python_script,
};
use chaos_tests::{Cluster, NodeTuning};

// ---- imaplib through every command ----

/// The steps of `clients/imap_session.py`, in order; each one checks what it did.
const SESSION_STEPS: [&str; 16] = [
    "capability_starttls_login",
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
