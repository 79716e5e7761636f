//! Accepted means durable on two machines: kill -9 at the wrong moments of the write path, and
//! check what the client was told against what the cluster holds afterwards.

use std::path::Path;
use std::thread;
use std::time::Duration;

use chaos_tests::mail::{DOMAIN, add_users, pop3_fetch, smtp_send, subjects};
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
