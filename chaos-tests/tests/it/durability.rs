//! Accepted means durable on two machines: kill -9 at the wrong moments of the write path, and
//! check what the client was told against what the cluster holds afterwards.

use std::path::Path;
use std::thread;
use std::time::Duration;

use chaos_tests::mail::{DOMAIN, add_users, imap_tool, pop3_fetch, smtp_send, subjects};
use chaos_tests::{Cluster, NodeTuning, wait_until};

/// Blob files (not temp files) under a node's blob store.
fn blob_files(node_dir: &Path) -> usize {
    let root = node_dir.join("data").join("blobs");
    let Ok(shards) = std::fs::read_dir(&root) else {
        return 0;
    };
    shards
        .flatten()
        .filter(|s| s.file_name() != "tmp")
        .filter_map(|s| std::fs::read_dir(s.path()).ok())
        .map(|files| files.count())
        .sum()
}

fn wait_for_log(cluster: &Cluster, i: usize, needle: &str) {
    wait_until(Duration::from_secs(30), needle, || {
        cluster.nodes[i].log().contains(needle).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", cluster.nodes[i].log()));
}

/// POP3 listing from node `i`, retried while the cluster elects a leader.
fn subjects_on(cluster: &Cluster, i: usize, user: &str) -> Vec<String> {
    let addr = cluster.nodes[i].pop3_addr();
    wait_until(Duration::from_secs(30), "a POP3 listing", || {
        pop3_fetch(&addr, "stls", user, false).ok()
    })
    .map(|listing| subjects(&listing))
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn failpoint(cluster: &mut Cluster, i: usize, spec: &str) {
    cluster.nodes[i].env = vec![("MCLUSTER_FAILPOINTS".into(), spec.into())];
}

#[test]
fn kill_receiver_after_mirror_ack_before_commit() {
    let mut cluster = Cluster::start(8, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).unwrap();
    let alice = format!("alice@{DOMAIN}");
    // Node 1 stops between "the partner has the blob" and "propose the delivery".
    cluster.kill(0).unwrap();
    failpoint(&mut cluster, 0, "deliver-before-propose=pause:60000");
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    let blobs_before = blob_files(&cluster.nodes[1].dir);

    let addr = cluster.nodes[0].smtp_addr();
    let to = alice.clone();
    let client = thread::spawn(move || smtp_send(&addr, "plain", None, &to, "never acknowledged"));
    wait_for_log(&cluster, 0, "failpoint reached");
    // The partner acknowledged: it holds the blob, fsync'd.
    assert_eq!(blob_files(&cluster.nodes[1].dir), blobs_before + 1);
    cluster.kill(0).unwrap();
    let outcome = client.join().unwrap();
    assert!(
        outcome.is_err(),
        "the client must not see a 250: {outcome:?}"
    );

    // Nothing half-delivered appears: not on the survivor, not after the receiver restarts.
    cluster.nodes[0].env.clear();
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    let (code, _) = smtp_send(
        &cluster.nodes[0].smtp_addr(),
        "plain",
        None,
        &alice,
        "after",
    )
    .unwrap();
    assert_eq!(code, 250);
    for i in [0, 1] {
        assert_eq!(subjects_on(&cluster, i, &alice), ["after"], "node {i}");
    }
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn kill_leader_right_after_250() {
    let mut cluster = Cluster::start(9, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).unwrap();
    let alice = format!("alice@{DOMAIN}");
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
    let leader_i = cluster.index_of(leader);
    assert_eq!(
        cluster.nodes[leader_i].role, "data",
        "a data node leads after start-up"
    );
    let survivor = 1 - leader_i;
    let (code, reply) = smtp_send(
        &cluster.nodes[leader_i].smtp_addr(),
        "plain",
        None,
        &alice,
        "acked",
    )
    .unwrap();
    assert_eq!(code, 250, "{reply}");
    cluster.kill(leader_i).unwrap();
    assert_eq!(subjects_on(&cluster, survivor, &alice), ["acked"]);
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn kill_mirror_partner_mid_transfer_then_resync() {
    let mut cluster = Cluster::start(10, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).unwrap();
    let alice = format!("alice@{DOMAIN}");
    // Node 2 receives the blob and stalls before its fsync.
    cluster.kill(1).unwrap();
    failpoint(&mut cluster, 1, "mirror-before-fsync=pause:60000");
    cluster.start_node(1).unwrap();
    cluster.wait_ready(1, Duration::from_secs(30)).unwrap();
    cluster
        .wait_voter(cluster.nodes[1].id, Duration::from_secs(30))
        .unwrap();

    let addr = cluster.nodes[0].smtp_addr();
    let to = alice.clone();
    let client = thread::spawn(move || smtp_send(&addr, "plain", None, &to, "degraded"));
    wait_for_log(&cluster, 1, "failpoint reached");
    cluster.kill(1).unwrap();
    // Default policy: accepted with one copy, and said so.
    let (code, reply) = client.join().unwrap().unwrap();
    assert_eq!(code, 250, "{reply}");
    let status = cluster.api.get("/v1/status").unwrap();
    assert_eq!(status["redundant"], false, "{status}");
    assert_eq!(status["blobs_missing"]["2"], 1, "{status}");
    assert!(
        cluster.nodes[0]
            .log()
            .contains("degraded: no mirror partner stored the blob")
    );

    // With degraded accept refused, the same situation answers 451.
    cluster
        .ctl_ok(&["policy", "set", "degraded-accept=refuse"])
        .unwrap();
    let (code, reply) = smtp_send(
        &cluster.nodes[0].smtp_addr(),
        "plain",
        None,
        &alice,
        "refused",
    )
    .unwrap();
    assert_eq!(code, 451, "{reply}");
    assert!(reply.contains("4.3.0"), "{reply}");

    // The partner comes back, pulls exactly what it is missing, and redundancy is full again.
    cluster.nodes[1].env.clear();
    cluster.start_node(1).unwrap();
    wait_until(Duration::from_secs(60), "full redundancy", || {
        let status = cluster.api.get("/v1/status").ok()?;
        (status["redundant"] == true).then_some(())
    })
    .unwrap();
    // /v1/node is the node's own (local) view: it applies its confirmation a moment later.
    let node2 = wait_until(
        Duration::from_secs(10),
        "node 2 to apply its confirmation",
        || {
            let node = cluster
                .api
                .get_from(
                    &cluster.nodes[1].admin_url(),
                    "/v1/node",
                    Duration::from_secs(10),
                )
                .ok()?;
            (node["mail"]["blobs_missing"] == 0).then_some(node)
        },
    )
    .unwrap();
    assert_eq!(node2["mail"]["resync_fetched"], 1, "{node2}");
    assert_eq!(node2["mail"]["blobs_missing"], 0, "{node2}");
    let status = cluster.ctl_ok(&["status"]).unwrap();
    assert!(status.contains("redundancy: full"), "{status}");
    // The resynced copy serves reads with the other data node gone.
    cluster.kill(0).unwrap();
    assert_eq!(subjects_on(&cluster, 1, &alice), ["degraded"]);
    cluster.check_no_unexpected_errors(&["failpoint reached"]);
}

// ---- IMAP APPEND ----

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// INBOX as node `i` serves it over IMAPS (imap_tool.py dump), retried while the cluster
/// elects a leader.
fn inbox_on(cluster: &Cluster, i: usize, user: &str) -> serde_json::Value {
    let addr = cluster.nodes[i].imaps_addr();
    wait_until(Duration::from_secs(60), "an IMAP dump of INBOX", || {
        imap_tool(&addr, user, "dump", &[]).ok()
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// APPENDs `file` to INBOX through node `i`; returns the tagged reply's status and text.
fn imap_append(
    addr: &str,
    user: &str,
    file: &Path,
    flags: &str,
) -> anyhow::Result<(String, String)> {
    let reply = imap_tool(
        addr,
        user,
        "append",
        &[
            "--file",
            &file.display().to_string(),
            "--flags",
            flags,
            "--date",
            "\"02-Feb-2022 10:20:30 +0000\"",
        ],
    )?;
    Ok((
        reply["status"].as_str().unwrap_or_default().to_owned(),
        reply["text"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// The UIDVALIDITY and UID of an APPENDUID response code.
fn appenduid(text: &str) -> (u64, u64) {
    let code = text
        .strip_prefix("[APPENDUID ")
        .and_then(|rest| rest.split_once(']'))
        .map(|(code, _)| code)
        .unwrap_or_else(|| panic!("no APPENDUID in {text:?}"));
    let (validity, uid) = code.split_once(' ').expect("two numbers");
    (validity.parse().unwrap(), uid.parse().unwrap())
}

#[test]
fn imap_append_killed_after_mirror_ack_before_commit() {
    let mut cluster = Cluster::start(45, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).unwrap();
    let alice = format!("alice@{DOMAIN}");
    let before = inbox_on(&cluster, 1, &alice);
    // Node 1 stops between "the partner has the blob" and "propose the append".
    cluster.kill(0).unwrap();
    failpoint(&mut cluster, 0, "append-before-propose=pause:60000");
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    let blobs_before = blob_files(&cluster.nodes[1].dir);

    let dir = tempfile::tempdir().unwrap();
    let lost = dir.path().join("lost.eml");
    std::fs::write(
        &lost,
        "From: a@remote.test\r\nSubject: never acknowledged\r\n\r\nhalf appended?\r\n",
    )
    .unwrap();
    let addr = cluster.nodes[0].imaps_addr();
    let (user, file) = (alice.clone(), lost.clone());
    let client = thread::spawn(move || imap_append(&addr, &user, &file, "(\\Flagged)"));
    wait_for_log(&cluster, 0, "failpoint reached");
    // The partner acknowledged: it holds the blob, fsync'd.
    assert_eq!(blob_files(&cluster.nodes[1].dir), blobs_before + 1);
    cluster.kill(0).unwrap();
    match client.join().unwrap() {
        Err(_) => {}
        Ok((status, text)) => assert_ne!(status, "OK", "the client must not see OK: {text}"),
    }

    // Nothing half-appended appears: not on the survivor, not after the appender restarts, and
    // no UID was used up.
    let on_survivor = inbox_on(&cluster, 1, &alice);
    assert_eq!(
        on_survivor["messages"],
        serde_json::json!([]),
        "{on_survivor}"
    );
    assert_eq!(on_survivor["uidnext"], before["uidnext"]);
    cluster.nodes[0].env.clear();
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    let after = dir.path().join("after.eml");
    let after_bytes = b"From: a@remote.test\r\nSubject: after\r\n\r\nthis one counts\r\n";
    std::fs::write(&after, after_bytes).unwrap();
    let (status, text) = imap_append(&cluster.nodes[0].imaps_addr(), &alice, &after, "()").unwrap();
    assert_eq!(status, "OK", "{text}");
    let (validity, uid) = appenduid(&text);
    assert_eq!(Some(validity), before["uidvalidity"].as_u64());
    assert_eq!(
        Some(uid),
        before["uidnext"].as_u64(),
        "the lost APPEND took no UID"
    );
    for i in [0, 1] {
        let inbox = inbox_on(&cluster, i, &alice);
        let messages = inbox["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "node {i}: {inbox}");
        assert_eq!(messages[0]["uid"], uid, "node {i}");
        assert_eq!(messages[0]["body"], to_hex(after_bytes), "node {i}");
    }
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn imap_append_then_kill_leader_right_after_ok() {
    let mut cluster = Cluster::start(46, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).unwrap();
    let alice = format!("alice@{DOMAIN}");
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).unwrap();
    let leader_i = cluster.index_of(leader);
    assert_eq!(
        cluster.nodes[leader_i].role, "data",
        "a data node leads after start-up"
    );
    let survivor = 1 - leader_i;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acked.eml");
    let message = b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: acked append\r\n\r\nkept through the crash\r\n";
    std::fs::write(&file, message).unwrap();
    let (status, text) = imap_append(
        &cluster.nodes[leader_i].imaps_addr(),
        &alice,
        &file,
        "(\\Seen $Durable)",
    )
    .unwrap();
    assert_eq!(status, "OK", "{text}");
    let (validity, uid) = appenduid(&text);
    cluster.kill(leader_i).unwrap();

    let inbox = inbox_on(&cluster, survivor, &alice);
    assert_eq!(inbox["uidvalidity"], validity, "{inbox}");
    let messages = inbox["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{inbox}");
    let kept = &messages[0];
    assert_eq!(kept["uid"], uid);
    assert_eq!(kept["body"], to_hex(message), "the same bytes");
    // \Recent: the session that reads it here is the first to select the mailbox.
    assert_eq!(
        kept["flags"],
        serde_json::json!(["\\Seen", "\\Recent", "$Durable"])
    );
    assert_eq!(kept["internaldate"], "02-Feb-2022 10:20:30 +0000");
    assert_eq!(kept["size"], message.len());
    cluster.check_no_unexpected_errors(&[]);
}
