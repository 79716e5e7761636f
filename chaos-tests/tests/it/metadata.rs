//! The replicated metadata under faults: a leader killed mid-write, a node that falls behind a
//! purged log.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chaos_tests::{Api, Cluster, NodeTuning, wait_until};
use serde_json::{Value, json};

/// What the account-creating client saw.
#[derive(Default)]
struct History {
    attempted: BTreeSet<String>,
    acknowledged: BTreeSet<String>,
}

fn accounts_on(cluster: &Cluster, i: usize, domain: &str) -> BTreeSet<String> {
    let base = cluster.nodes[i].admin_url();
    let list = cluster
        .api
        .get_from(
            &base,
            &format!("/v1/accounts?domain={domain}"),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("list accounts on {}: {e:#}", cluster.nodes[i].name));
    list.as_array()
        .expect("a list")
        .iter()
        .map(|a| a["address"].as_str().expect("address").to_string())
        .collect()
}

/// Every acknowledged create is on the node; nothing that was never attempted is.
#[track_caller]
fn check_history(history: &History, on_node: &BTreeSet<String>, node: &str) {
    let missing: Vec<_> = history.acknowledged.difference(on_node).collect();
    assert!(
        missing.is_empty(),
        "{node} lost acknowledged accounts: {missing:?}"
    );
    let invented: Vec<_> = on_node.difference(&history.attempted).collect();
    assert!(
        invented.is_empty(),
        "{node} holds accounts nobody created: {invented:?}"
    );
}

/// Creates accounts through every node in turn until `stop`, recording what was acknowledged.
fn account_writer(
    api: Api,
    urls: Vec<String>,
    domain: String,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let address = format!("u{k}@{domain}");
        let base = &urls[k % urls.len()];
        k += 1;
        history.lock().unwrap().attempted.insert(address.clone());
        let body = json!({ "address": address, "password": "pw-12345678", "quota_mb": 10 });
        match api.send_to(base, "POST", "/v1/accounts", Some(body)) {
            Ok(answer) if answer.status == 201 => {
                history.lock().unwrap().acknowledged.insert(address);
            }
            // No answer, or an error answer: the outcome is unknown to the client, which is
            // allowed; only acknowledged creates are promised.
            _ => thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[test]
fn kill_leader_while_creating_accounts() {
    let mut cluster = Cluster::start(1, 2, true, NodeTuning::default()).expect("start cluster");
    let domain = "kill.test".to_string();
    let created = cluster.api.send_to(
        &cluster.nodes[0].admin_url(),
        "POST",
        "/v1/domains",
        Some(json!({"name": domain})),
    );
    assert_eq!(created.expect("add domain").status, 201);

    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.admin_url()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let writer = {
        let (api, stop, history, domain) = (
            cluster.api.clone(),
            stop.clone(),
            history.clone(),
            domain.clone(),
        );
        thread::spawn(move || account_writer(api, urls, domain, stop, history))
    };

    wait_until(Duration::from_secs(30), "20 acknowledged creates", || {
        (history.lock().unwrap().acknowledged.len() >= 20).then_some(())
    })
    .unwrap();
    let old_leader = cluster.current_leader().expect("a leader");
    let killed = cluster.index_of(old_leader);
    let killed_at = Instant::now();
    cluster.kill(killed).unwrap();
    let new_leader = wait_until(Duration::from_secs(10), "a new leader", || {
        cluster.current_leader().filter(|&l| l != old_leader)
    })
    .unwrap();
    let election = killed_at.elapsed();
    println!(
        "kill -9 of leader {old_leader} -> new leader {new_leader} in {} ms",
        election.as_millis()
    );

    let acked_at_kill = history.lock().unwrap().acknowledged.len();
    wait_until(
        Duration::from_secs(30),
        "20 more acknowledged creates",
        || (history.lock().unwrap().acknowledged.len() >= acked_at_kill + 20).then_some(()),
    )
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let history = history.lock().unwrap();
    for i in (0..cluster.nodes.len()).filter(|&i| cluster.nodes[i].is_running()) {
        check_history(
            &history,
            &accounts_on(&cluster, i, &domain),
            &cluster.nodes[i].name,
        );
    }

    // The killed node comes back and catches up to the same state.
    cluster.start_node(killed).unwrap();
    let leader_status = cluster
        .node_status(cluster.index_of(new_leader))
        .expect("leader answers");
    let committed = leader_status["committed_index"]
        .as_u64()
        .expect("committed index");
    cluster
        .wait_applied(killed, committed, Duration::from_secs(30))
        .unwrap();
    let on_restarted = accounts_on(&cluster, killed, &domain);
    check_history(&history, &on_restarted, "the restarted node");
    let on_leader = accounts_on(&cluster, cluster.index_of(new_leader), &domain);
    assert_eq!(
        on_restarted, on_leader,
        "restarted node and leader disagree"
    );
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn node_behind_a_purged_log_catches_up_by_snapshot() {
    let tuning = NodeTuning {
        extra_toml: "[raft]\nsnapshot-after-entries = 50\nkeep-entries-after-snapshot = 10\n"
            .into(),
        ..NodeTuning::default()
    };
    let mut cluster = Cluster::start(2, 2, true, tuning).expect("start cluster");
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).unwrap();
    // Keep a follower data node down while the log moves far past a snapshot.
    let behind = (0..cluster.nodes.len())
        .find(|&i| cluster.nodes[i].id != leader && cluster.nodes[i].role == "data");
    let behind = behind.expect("a data follower");
    cluster
        .stop(behind, Duration::from_secs(10))
        .expect("stop follower");

    let leader_url = cluster.nodes[cluster.index_of(leader)].admin_url();
    let mut names = BTreeSet::new();
    for k in 0..300 {
        let name = format!("d{k}.snap.test");
        let answer = cluster
            .api
            .send_to(
                &leader_url,
                "POST",
                "/v1/domains",
                Some(json!({ "name": name })),
            )
            .unwrap();
        assert_eq!(answer.status, 201, "add domain {name}: {:?}", answer.body);
        names.insert(name);
    }
    let leader_status = cluster.node_status(cluster.index_of(leader)).unwrap();
    let purged = leader_status["purged_index"]
        .as_u64()
        .expect("the leader purged its log");
    assert!(purged > 100, "leader purged only up to {purged}");

    cluster.start_node(behind).unwrap();
    let committed = leader_status["committed_index"].as_u64().unwrap();
    cluster
        .wait_applied(behind, committed, Duration::from_secs(30))
        .unwrap();
    let status = cluster.node_status(behind).unwrap();
    let snapshot_index = status["snapshot_index"].as_u64().unwrap_or(0);
    assert!(
        snapshot_index >= purged,
        "follower did not install a snapshot: {status}"
    );
    let domains = cluster
        .api
        .get_from(
            &cluster.nodes[behind].admin_url(),
            "/v1/domains",
            Duration::from_secs(10),
        )
        .unwrap();
    let on_node: BTreeSet<String> = domains
        .as_array()
        .unwrap()
        .iter()
        .map(|d: &Value| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(on_node, names);
    assert!(
        cluster.nodes[behind].log().contains("installed snapshot"),
        "no snapshot install in the follower's log"
    );
    cluster.check_no_unexpected_errors(&[]);
}
