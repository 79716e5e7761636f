//! What an operator does with `mclusterctl`: join, leave, failover, status, the outbound policy,
//! DKIM keys, and the demo.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chaos_tests::{Cluster, NodeTuning, binary, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

fn status_json(cluster: &Cluster) -> Value {
    let out = cluster
        .ctl_ok(&["status", "--json"])
        .expect("mclusterctl status --json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {out}"))
}

fn leader_of(status: &Value) -> u64 {
    status["cluster"]["leader_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no leader in {status}"))
}

#[test]
fn join_failover_and_leave_through_mclusterctl() {
    // Cluster::start runs `mclusterctl init` and `mclusterctl join` for n2 (data) and n3 (witness).
    let mut cluster = Cluster::start(3, 2, true, NodeTuning::default()).expect("start cluster");
    let status = status_json(&cluster);
    let members = status["cluster"]["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    assert!(
        members.iter().all(|m| m["voter"] == true),
        "every joined node is a voter: {status}"
    );
    let nodes = status["nodes"].as_array().expect("per-node rows");
    let n_leaders = nodes
        .iter()
        .filter(|n| n["node"]["state"] == "Leader")
        .count();
    assert_eq!(n_leaders, 1, "{status}");

    // A second node under a member's name, or at a member's address, is refused with the
    // member named, and the cluster is unchanged.
    let spare = cluster.root.path().join("spare");
    let (n2_raft, n2_admin) = (
        cluster.nodes[1].raft_addr.clone(),
        cluster.nodes[1].admin_addr.clone(),
    );
    for (name, raft_addr, admin_addr, expected) in [
        (
            "n2",
            "127.77.3.9:7071",
            "127.77.3.9:7070",
            r#"the name "n2" is already used by node 2 (n2)"#,
        ),
        (
            "n9",
            n2_raft.as_str(),
            "127.77.3.9:7070",
            "the raft address",
        ),
        (
            "n9",
            "127.77.3.9:7071",
            n2_admin.as_str(),
            "the admin address",
        ),
    ] {
        let refused = cluster
            .ctl(&[
                "join",
                "--dir",
                &spare.display().to_string(),
                "--name",
                name,
                "--raft-addr",
                raft_addr,
                "--admin-addr",
                admin_addr,
                "--role",
                "data",
            ])
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "join {name} was accepted");
        assert!(stderr.contains(expected), "{stderr}");
    }
    let who = |status: &Value| -> Vec<String> {
        status["cluster"]["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| {
                format!(
                    "{} {} {} {}",
                    m["node_id"], m["name"], m["raft_addr"], m["voter"]
                )
            })
            .collect()
    };
    assert_eq!(who(&status_json(&cluster)), who(&status));

    // Leadership moves to the other data node, on request, and shows in status.
    let leader = leader_of(&status);
    let target = cluster
        .nodes
        .iter()
        .find(|n| n.role == "data" && n.id != leader)
        .expect("other data node");
    let (target_id, target_name) = (target.id, target.name.clone());
    // But not while that node is down: refused before anything moves, in one sentence.
    let target_index = cluster.index_of(target_id);
    cluster.kill(target_index).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let refused = cluster.ctl(&["failover", "--to", &target_name]).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "failover to a dead node was accepted"
    );
    assert!(
        stderr.contains(&format!(
            "refused, nothing moved: node {target_id} ({target_name}) is not reachable"
        )),
        "{stderr}"
    );
    assert!(stderr.len() < 400, "a sentence, not a dump: {stderr}");
    assert_eq!(leader_of(&status_json(&cluster)), leader);
    // With no mail arriving, status still tells the truth about redundancy.
    let shown = cluster.ctl_ok(&["status"]).unwrap();
    assert!(
        shown.contains(&format!(
            "redundancy: DEGRADED ({target_name} not reachable)"
        )),
        "{shown}"
    );
    cluster.start_node(target_index).unwrap();
    cluster
        .wait_ready(target_index, Duration::from_secs(30))
        .unwrap();
    wait_until(Duration::from_secs(10), "redundancy is full again", || {
        let shown = cluster.ctl_ok(&["status"]).ok()?;
        shown.contains("redundancy: full").then_some(())
    })
    .expect("redundancy back");
    wait_until(
        Duration::from_secs(10),
        "the restarted node takes leadership",
        || cluster.ctl_ok(&["failover", "--to", &target_name]).ok(),
    )
    .expect("failover");
    assert_eq!(leader_of(&status_json(&cluster)), target_id);

    // A witness is never a failover target.
    let witness = cluster
        .nodes
        .iter()
        .find(|n| n.role == "witness")
        .expect("witness")
        .name
        .clone();
    let refused = cluster.ctl(&["failover", "--to", &witness]).unwrap();
    assert!(
        !refused.status.success(),
        "failover to the witness was accepted"
    );

    // Without --to, the cluster picks a caught-up data node.
    cluster
        .ctl_ok(&["failover"])
        .expect("failover without target");
    assert_ne!(leader_of(&status_json(&cluster)), target_id);

    // A removal notice for another node, or to the leader, stops nothing.
    let leader_url = cluster.nodes[cluster.index_of(leader_of(&status_json(&cluster)))].admin_url();
    let witness_url = cluster
        .nodes
        .iter()
        .find(|n| n.role == "witness")
        .unwrap()
        .admin_url();
    for (url, id) in [
        (&witness_url, 99),
        (&leader_url, leader_of(&status_json(&cluster))),
    ] {
        let answer = cluster
            .api
            .send_to(url, "POST", &format!("/v1/node/removed?node_id={id}"), None)
            .unwrap();
        assert_eq!(answer.status, 409, "{url} {id}");
    }
    // The witness leaves; two voters remain and the cluster still takes writes. The removed
    // witness notices, says so once, and stops by itself.
    cluster.ctl_ok(&["leave", &witness]).expect("leave");
    let witness_index = cluster
        .nodes
        .iter()
        .position(|n| n.name == witness)
        .expect("witness index");
    let exit = wait_until(Duration::from_secs(20), "the removed witness stops", || {
        cluster.exited(witness_index).ok().flatten()
    })
    .expect("the removed node stopped");
    assert!(exit.success(), "the removed witness exited with {exit}");
    let log = cluster.nodes[witness_index].log();
    assert_eq!(
        log.matches("this node is no longer a member of the cluster")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.matches("election timeout expired").count() < 20,
        "the removed node campaigned on: {log}"
    );
    let status = status_json(&cluster);
    let members = status["cluster"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{status}");
    cluster
        .ctl_ok(&["domain", "add", "after-leave.test"])
        .expect("write after leave");
    let domains = cluster.ctl_ok(&["domain", "list", "--json"]).unwrap();
    assert!(domains.contains("after-leave.test"), "{domains}");

    // The leader cannot remove itself.
    let leader_name = cluster.nodes[cluster.index_of(leader_of(&status))]
        .name
        .clone();
    assert!(
        !cluster
            .ctl(&["leave", &leader_name])
            .unwrap()
            .status
            .success()
    );

    // A clean stop of a node is quick.
    let started = Instant::now();
    let i = cluster.index_of(leader_of(&status));
    let exit = cluster.stop(i, Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "mclusterd exited with {exit} on SIGTERM");
    println!("SIGTERM to exit: {} ms", started.elapsed().as_millis());
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn user_and_domain_commands_round_trip() {
    let cluster = Cluster::start(4, 1, false, NodeTuning::default()).expect("start cluster");
    cluster.ctl_ok(&["domain", "add", "Example.Test"]).unwrap();
    cluster
        .ctl_ok(&[
            "user",
            "add",
            "Alice@example.test",
            "--password",
            "s3cret-pw-long",
        ])
        .unwrap();
    let shown = cluster
        .ctl_ok(&["user", "show", "alice@example.test", "--json"])
        .unwrap();
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["address"], "alice@example.test");
    assert_eq!(shown["enabled"], true);
    assert!(
        shown.get("password_hash").is_none(),
        "the API leaked a password hash: {shown}"
    );
    cluster
        .ctl_ok(&["user", "disable", "alice@example.test"])
        .unwrap();
    let shown: Value = serde_json::from_str(
        &cluster
            .ctl_ok(&["user", "show", "alice@example.test", "--json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(shown["enabled"], false);
    cluster
        .ctl_ok(&[
            "user",
            "passwd",
            "alice@example.test",
            "--password",
            "another-pw",
        ])
        .unwrap();
    // A domain with users cannot go; after the user, it can.
    assert!(
        !cluster
            .ctl(&["domain", "del", "example.test"])
            .unwrap()
            .status
            .success()
    );
    cluster
        .ctl_ok(&["user", "del", "alice@example.test"])
        .unwrap();
    cluster.ctl_ok(&["domain", "del", "example.test"]).unwrap();
    let list = cluster.ctl_ok(&["domain", "list", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        serde_json::json!([])
    );
    let members: Value =
        serde_json::from_str(&cluster.ctl_ok(&["members", "--json"]).unwrap()).unwrap();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    // Bad input is a clear error, not a crash.
    let bad = cluster
        .ctl(&["user", "add", "no-at-sign", "--password", "x"])
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        cluster.current_leader().is_some(),
        "the node survived bad input"
    );
    cluster.check_no_unexpected_errors(&[]);
}

#[test]
fn queue_commands_on_an_empty_queue() {
    // Nothing fills the outbound queue yet (SMTP refuses remote recipients), so an operator sees
    // an empty queue and not-found errors.
    let cluster = Cluster::start(61, 1, false, NodeTuning::default()).expect("start cluster");
    let list = cluster.ctl_ok(&["queue", "list"]).expect("queue list");
    assert!(list.starts_with("ID  AGE  SIZE  SENDER"), "{list}");
    assert!(list.ends_with("total: 0 queued messages\n"), "{list}");
    let json = cluster
        .ctl_ok(&["queue", "list", "--json", "--limit", "500", "--after", "0"])
        .expect("queue list --json");
    let json: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("queue list --json is not JSON ({e}): {json}"));
    assert_eq!(json, serde_json::json!({"total": 0, "entries": []}));
    for args in [
        ["queue", "show", "NOPE"],
        ["queue", "retry", "NOPE"],
        ["queue", "hold", "NOPE"],
        ["queue", "release", "NOPE"],
        ["queue", "delete", "NOPE"],
    ] {
        let out = cluster.ctl(&args).expect("run mclusterctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        assert!(
            stderr.contains("404 not_found: no such queued message: NOPE"),
            "{args:?}: {stderr}"
        );
    }
    cluster.check_no_unexpected_errors(&[]);
}

fn outbound_json(cluster: &Cluster) -> Value {
    let out = cluster
        .ctl_ok(&["outbound", "show", "--json"])
        .expect("mclusterctl outbound show --json");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("outbound show --json is not JSON ({e}): {out}"))
}

/// `mclusterctl outbound set --smarthost-password-file -` with `password` piped in.
fn set_password_from_stdin(cluster: &Cluster, password: &str) -> String {
    let mut child = Command::new(binary("mclusterctl"))
        .arg("--config")
        .arg(&cluster.client_config)
        .args(["outbound", "set", "--smarthost-password-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mclusterctl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    writeln!(stdin, "{password}").expect("write the password");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for mclusterctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "set from stdin failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn outbound_policy_through_mclusterctl() {
    // A data node and a witness: the witness answers from its own replica of the policy.
    let cluster = Cluster::start(63, 1, true, NodeTuning::default()).expect("start cluster");
    let defaults = outbound_json(&cluster);
    assert_eq!(defaults["retry-interval-secs"], 480, "{defaults}");
    assert_eq!(defaults["max-attempts"], 16, "{defaults}");
    assert_eq!(defaults["concurrency"], 25, "{defaults}");
    assert_eq!(defaults["smarthost"], "", "{defaults}");
    assert_eq!(defaults["smarthost-password-set"], false, "{defaults}");
    let table = cluster
        .ctl_ok(&["outbound", "show"])
        .expect("outbound show");
    assert!(table.contains("retry-interval-secs     480\n"), "{table}");
    assert!(
        table.contains("smarthost-password      (none)\n"),
        "{table}"
    );

    // The password comes from a file, never from the command line.
    let password = "pw63-must-never-show";
    let file = cluster.root().join("smarthost.pw");
    std::fs::write(&file, format!("{password}\n")).expect("write the password file");
    let file = file.display().to_string();
    let out = cluster
        .ctl_ok(&[
            "outbound",
            "set",
            "retry-interval-secs=2",
            "smarthost=127.0.0.1:2525",
            "smarthost-mode=on-failure",
            "smarthost-user=u",
            "--smarthost-password-file",
            &file,
        ])
        .expect("outbound set");
    assert!(out.contains("smarthost-password      (set)\n"), "{out}");
    let set = outbound_json(&cluster);
    let expected = serde_json::json!({
        "retry-interval-secs": 2,
        "max-attempts": 16,
        "delay-warning-secs": 3600,
        "concurrency": 25,
        "per-domain-concurrency": 10,
        "tls": "opportunistic",
        "smarthost": "127.0.0.1:2525",
        "smarthost-mode": "on-failure",
        "smarthost-user": "u",
        "smarthost-password-set": true,
    });
    assert_eq!(set, expected);
    let table = cluster
        .ctl_ok(&["outbound", "show"])
        .expect("outbound show");
    assert!(
        table.contains("smarthost               127.0.0.1:2525\n"),
        "{table}"
    );
    for shown in [&out, &table, &set.to_string()] {
        assert!(!shown.contains(password), "the password showed: {shown}");
    }

    // Bad values are refused with the key named, and change nothing.
    for (setting, fragment) in [
        (
            "retry-interval-secs=0",
            "400 bad_request: retry-interval-secs must be between 1 and 86400",
        ),
        ("max-attempts=many", "max-attempts: invalid type"),
        (
            "delay-warning-secs=40000000",
            "delay-warning-secs must be 0",
        ),
        (
            "per-domain-concurrency=26",
            "per-domain-concurrency must be",
        ),
        ("tls=sometimes", "tls: unknown variant `sometimes`"),
        (
            "smarthost=relay.example.net",
            "smarthost \"relay.example.net\": expected host:port",
        ),
        ("smarthost=", "smarthost-mode on-failure needs a smarthost"),
        (
            "smarthost-password=",
            "smarthost-user needs a smarthost-password",
        ),
        (
            "no-such-key=1",
            "unknown outbound policy key \"no-such-key\"",
        ),
    ] {
        let out = cluster
            .ctl(&["outbound", "set", setting])
            .expect("run mclusterctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{setting} was accepted");
        assert!(stderr.contains(fragment), "{setting}: {stderr}");
    }
    assert_eq!(outbound_json(&cluster), expected);

    // Every node answers the same policy once it has applied it (GET is a linearizable read),
    // and a write sent to a follower reaches the leader.
    let leader = cluster.current_leader().expect("a leader");
    let follower = cluster
        .nodes
        .iter()
        .find(|n| n.id != leader)
        .expect("a follower");
    for node in &cluster.nodes {
        let seen = cluster
            .api
            .get_from(
                &node.admin_url(),
                "/v1/outbound-policy",
                Duration::from_secs(5),
            )
            .unwrap_or_else(|e| panic!("GET from {}: {e:#}", node.name));
        assert_eq!(seen, expected, "as {} sees it", node.name);
    }
    let answer = cluster
        .api
        .send_to(
            &follower.admin_url(),
            "PUT",
            "/v1/outbound-policy",
            Some(serde_json::json!({"concurrency": 30})),
        )
        .expect("PUT through a follower");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["concurrency"], 30, "{}", answer.body);
    assert_eq!(
        answer.body["smarthost-password-set"], true,
        "{}",
        answer.body
    );
    cluster
        .ctl_ok(&[
            "outbound",
            "set",
            "retry-interval-secs=600",
            "max-attempts=20",
        ])
        .expect("outbound set numbers");
    let changed = outbound_json(&cluster);
    assert_eq!(
        (
            &changed["retry-interval-secs"],
            &changed["max-attempts"],
            &changed["concurrency"],
            &changed["smarthost-password-set"],
        ),
        (
            &Value::from(600),
            &Value::from(20),
            &Value::from(30),
            &Value::from(true)
        ),
        "{changed}"
    );

    // A new password piped in; then the smarthost and its credentials go together.
    let other_password = "pw63-piped-never-shown";
    let out = set_password_from_stdin(&cluster, other_password);
    assert!(out.contains("smarthost-password      (set)\n"), "{out}");
    cluster
        .ctl_ok(&[
            "outbound",
            "set",
            "smarthost-mode=never",
            "smarthost=",
            "smarthost-user=",
            "smarthost-password=",
        ])
        .expect("outbound set without a smarthost");
    let cleared = outbound_json(&cluster);
    assert_eq!(cleared["smarthost"], "", "{cleared}");
    assert_eq!(cleared["smarthost-password-set"], false, "{cleared}");

    for node in &cluster.nodes {
        let log = node.log();
        for secret in [password, other_password] {
            assert!(!log.contains(secret), "{} logged the password", node.name);
        }
    }
    cluster.check_no_unexpected_errors(&[]);
}

/// The value of the `value: ` line that `mclusterctl dkim show` prints, checked to be a DKIM1
/// record with a public key of the given type.
#[track_caller]
fn check_dkim_record(shown: &str, domain: &str, k: &str) -> String {
    let name = shown
        .lines()
        .find_map(|line| line.strip_prefix("name:  "))
        .unwrap_or_else(|| panic!("no name line in {shown}"));
    assert!(name.ends_with(&format!("._domainkey.{domain}")), "{shown}");
    let value = shown
        .lines()
        .find_map(|line| line.strip_prefix("value: "))
        .unwrap_or_else(|| panic!("no value line in {shown}"));
    let tags: Vec<(&str, &str)> = value
        .split(';')
        .map(|tag| tag.trim().split_once('=').expect("tag=value"))
        .collect();
    assert_eq!(tags[0], ("v", "DKIM1"), "{value}");
    assert!(tags.contains(&("k", k)), "{value}");
    let (_, p) = tags
        .iter()
        .find(|(tag, _)| *tag == "p")
        .unwrap_or_else(|| panic!("no p= in {value}"));
    assert!(p.len() > 40, "{value}");
    assert!(
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{value}"
    );
    value.to_owned()
}

#[test]
fn dkim_keys_through_mclusterctl() {
    let cluster = Cluster::start(62, 1, false, NodeTuning::default()).expect("start cluster");
    cluster.ctl_ok(&["domain", "add", "example.test"]).unwrap();
    let made = cluster
        .ctl_ok(&["dkim", "generate", "example.test", "--selector", "s1"])
        .expect("dkim generate");
    assert!(
        made.starts_with("made a new rsa-sha256 DKIM key for example.test"),
        "{made}"
    );
    let shown = cluster.ctl_ok(&["dkim", "show", "example.test"]).unwrap();
    assert!(
        shown.contains("name:  s1._domainkey.example.test\n"),
        "{shown}"
    );
    let rsa_value = check_dkim_record(&shown, "example.test", "rsa");
    let json: Value = serde_json::from_str(
        &cluster
            .ctl_ok(&["dkim", "show", "example.test", "--json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["dns-value"], rsa_value.as_str());
    assert!(
        !json.to_string().contains("PRIVATE"),
        "the API gave out a private key: {json}"
    );

    // Rotation: a new key under a new selector replaces the old one.
    cluster
        .ctl_ok(&[
            "dkim",
            "generate",
            "example.test",
            "--selector",
            "s2",
            "--algorithm",
            "ed25519",
        ])
        .unwrap();
    let shown = cluster.ctl_ok(&["dkim", "show", "example.test"]).unwrap();
    check_dkim_record(&shown, "example.test", "ed25519");
    let list: Value =
        serde_json::from_str(&cluster.ctl_ok(&["dkim", "list", "--json"]).unwrap()).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["selector"], "s2");

    // An operator's own key.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dkim.pem");
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    std::fs::write(&key_file, key_pair.serialize_pem()).unwrap();
    let key_arg = key_file.to_str().unwrap();
    cluster
        .ctl_ok(&[
            "dkim",
            "import",
            "example.test",
            "--selector",
            "own",
            "--key",
            key_arg,
        ])
        .expect("dkim import");
    let shown = cluster.ctl_ok(&["dkim", "show", "example.test"]).unwrap();
    check_dkim_record(&shown, "example.test", "ed25519");
    assert!(shown.contains("selector:  own\n"), "{shown}");

    cluster.ctl_ok(&["dkim", "delete", "example.test"]).unwrap();
    let gone = cluster.ctl(&["dkim", "show", "example.test"]).unwrap();
    assert!(!gone.status.success());
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains("404 not_found: domain example.test has no DKIM key"),
        "{stderr}"
    );
    let list = cluster.ctl_ok(&["dkim", "list", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        serde_json::json!([])
    );

    // Clear refusals: an unknown domain, a file that is no key.
    let unknown = cluster.ctl(&["dkim", "generate", "nosuch.test"]).unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("make a DKIM key for nosuch.test")
            && stderr.contains("404 not_found: no such domain: nosuch.test"),
        "{stderr}"
    );
    std::fs::write(
        &key_file,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let bad = cluster
        .ctl(&[
            "dkim",
            "import",
            "example.test",
            "--selector",
            "x",
            "--key",
            key_arg,
        ])
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("400 bad_request: unusable DKIM private key"),
        "{stderr}"
    );

    // Deleting the domain deletes its key.
    cluster
        .ctl_ok(&["dkim", "generate", "example.test", "--algorithm", "ed25519"])
        .unwrap();
    cluster.ctl_ok(&["domain", "del", "example.test"]).unwrap();
    cluster.ctl_ok(&["domain", "add", "example.test"]).unwrap();
    let list = cluster.ctl_ok(&["dkim", "list", "--json"]).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        serde_json::json!([])
    );
    cluster.check_no_unexpected_errors(&[]);
}

/// Reads the demo's standard output line by line, on a thread, so the test can wait with a
/// timeout.
fn spawn_line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn demo_starts_three_nodes_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let client_config = dir.path().join("client.toml");
    let mut demo = Command::new(binary("mclusterctl"))
        .args([
            "--config",
            &client_config.display().to_string(),
            "demo",
            "--dir",
        ])
        .arg(dir.path().join("demo"))
        .args(["--password", "demo-password", "--mclusterd"])
        .arg(binary("mclusterd"))
        // Addresses of its own, so that a demo someone runs on this machine does not collide.
        .args(["--net", "127.0.9"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the demo");
    let lines = spawn_line_reader(demo.stdout.take().expect("piped stdout"));
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.iter().any(|l: &String| l.contains("Ctrl-C")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = demo.kill();
                panic!("the demo did not come up; it printed:\n{}", seen.join("\n"));
            }
        }
    }

    // Another terminal: `mclusterctl status` with only the client config the demo wrote.
    let status = Command::new(binary("mclusterctl"))
        .args([
            "--config",
            &client_config.display().to_string(),
            "status",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let members = status["cluster"]["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    let n_leaders = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["node"]["state"] == "Leader")
        .count();
    assert_eq!(n_leaders, 1, "{status}");
    let user = Command::new(binary("mclusterctl"))
        .args([
            "--config",
            &client_config.display().to_string(),
            "user",
            "show",
            "demo@example.test",
        ])
        .output()
        .unwrap();
    assert!(user.status.success(), "demo user missing");

    // The table the demo printed: NAME ROLE PID ADMIN RAFT LOG.
    let pids: Vec<i32> = seen
        .iter()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let is_node_row = cols.first().is_some_and(|c| ["n1", "n2", "n3"].contains(c));
            if is_node_row {
                cols.get(2)?.parse().ok()
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        pids.len(),
        3,
        "the demo printed no table of three processes:\n{}",
        seen.join("\n")
    );
    kill(Pid::from_raw(demo.id() as i32), Signal::SIGTERM).unwrap();
    let exited = wait_until(Duration::from_secs(40), "the demo to exit", || {
        demo.try_wait().ok().flatten()
    })
    .unwrap();
    assert!(exited.success(), "demo exited with {exited}");
    for pid in pids {
        let alive = kill(Pid::from_raw(pid), None).is_ok();
        assert!(!alive, "mclusterd {pid} outlived the demo");
    }
}

/// A node that stops (SIGTERM) says goodbye to the sessions waiting on it, in each protocol's
/// words, before it closes them: IMAP in IDLE gets `* BYE`, POP3 `-ERR`, SMTP 421.
#[test]
fn a_stopping_node_says_goodbye_to_its_sessions() {
    use chaos_tests::mail::{DOMAIN, PASSWORD, Probe, add_users};
    let mut cluster = Cluster::start(103, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    cluster
        .ctl_ok(&["policy", "set", "auth-without-tls=true"])
        .unwrap();
    // The node that took the policy change (the first admin URL) has applied it.
    let node = &cluster.nodes[0];
    let alice = format!("alice@{DOMAIN}");
    let mut imap = Probe::connect(&node.imap_addr()).unwrap();
    imap.reply().unwrap();
    imap.send_raw(
        format!("a LOGIN {alice} \"{PASSWORD}\"\r\nb SELECT INBOX\r\nc IDLE\r\n").as_bytes(),
    )
    .unwrap();
    let mut pop3 = Probe::connect(&node.pop3_addr()).unwrap();
    assert!(pop3.reply().unwrap().starts_with("+OK"));
    let user = pop3.command(&format!("USER {alice}")).unwrap();
    assert!(user.starts_with("+OK"), "{user}");
    assert!(
        pop3.command(&format!("PASS {PASSWORD}"))
            .unwrap()
            .starts_with("+OK")
    );
    let mut smtp = Probe::connect(&node.smtp_addr()).unwrap();
    smtp.reply().unwrap();
    assert!(smtp.command("EHLO client.test").unwrap().starts_with("250"));
    // Wait until IMAP is idling.
    let mut lines = Vec::new();
    while !lines.last().is_some_and(|l: &String| l.starts_with("+ ")) {
        let line = imap
            .reply()
            .unwrap_or_else(|e| panic!("{e:#} after {lines:#?}"));
        lines.push(line);
    }
    let exit = cluster.stop(0, Duration::from_secs(10)).unwrap();
    assert!(exit.success());
    let bye = imap.reply().unwrap();
    assert!(bye.starts_with("* BYE Server shutting down"), "{bye}");
    let err = pop3.reply().unwrap();
    assert!(
        err.starts_with("-ERR [SYS/TEMP] server shutting down"),
        "{err}"
    );
    let goodbye = smtp.reply().unwrap();
    assert!(goodbye.starts_with("421 4.3.2"), "{goodbye}");
    assert!(imap.closed() && pop3.closed() && smtp.closed());
}

/// Replacing a data node the way an operator does, in the lab with the VIP and mail arriving
/// through it all along: n2 leaves, its directory is wiped, and it joins again fresh under the
/// same name and address; the cluster copies it every message n1 holds, so that redundancy is
/// real again. After "redundancy: full", n1 is killed and its directory wiped, and every
/// acknowledged message is still readable through the VIP, by POP3 and by IMAP.
#[test]
fn a_replaced_data_node_gets_every_message_back() {
    use chaos_tests::cluster::MailPorts;
    use chaos_tests::lab::Host;
    use chaos_tests::load::{Load, LoadSpec};
    use chaos_tests::mail::{DOMAIN, add_users, imap_tool, pop3_raw};
    use chaos_tests::scenario::wait_vip_holder;
    let mut cluster = Cluster::start_pair_with_vip(85).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    let client_ns = cluster.expect_lab().ns_path(Host::Client);
    let vip = cluster.expect_lab().vip();
    // n2 must not lead when it leaves.
    let n1 = cluster.nodes[0].name.clone();
    wait_until(Duration::from_secs(10), "n1 leads", || {
        cluster.ctl_ok(&["failover", "--to", &n1]).ok()
    })
    .expect("failover to n1");
    assert_eq!(wait_vip_holder(&cluster, None).unwrap(), 0);
    let load = Load::start(LoadSpec {
        netns: Some(client_ns.clone()),
        addr: std::net::SocketAddr::new(vip.into(), MailPorts::STANDARD.smtp),
        to: alice.clone(),
        subject: "kept".into(),
        per_second: 20,
        max_messages: 10_000,
        max_duration: Duration::from_secs(300),
    });
    wait_until(
        Duration::from_secs(30),
        "30 messages through the VIP",
        || (load.acked() >= 30).then_some(()),
    )
    .expect("the load runs");
    // With two data nodes nobody could take n2's copies: refused, unless forced.
    let refused = cluster.ctl(&["leave", "n2"]).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "leave of a needed data node was accepted"
    );
    assert!(
        stderr.contains("refused: node 2 (n2) holds one of the two copies of"),
        "{stderr}"
    );
    cluster
        .ctl_ok(&["leave", "n2", "--force"])
        .expect("leave --force");
    wait_until(Duration::from_secs(20), "n2 stops", || {
        cluster.exited(1).ok().flatten()
    })
    .expect("n2 stopped");
    // n1 alone takes mail with one copy, and says so.
    wait_until(
        Duration::from_secs(20),
        "status counts the single copies",
        || {
            let shown = cluster.ctl_ok(&["status"]).ok()?;
            shown
                .contains("blobs not yet placed on two member data nodes")
                .then_some(())
        },
    )
    .expect("status says some mail has one copy");
    let copies_short = |cluster: &Cluster| -> Option<u64> {
        let text = cluster
            .api
            .get_text_from(&cluster.nodes[0].admin_url(), "/metrics")
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix("mcluster_blob_copies_short "))?
            .parse()
            .ok()
    };
    wait_until(Duration::from_secs(10), "the leader's metric", || {
        (copies_short(&cluster)? > 0).then_some(())
    })
    .expect("mcluster_blob_copies_short counts the blobs with one copy");
    // The same server, wiped, joins again; mail keeps arriving while it pulls.
    let before = (Instant::now(), load.acked());
    cluster.rejoin_fresh(1).expect("n2 joins again, fresh");
    let joined = (before.0.elapsed(), load.acked());
    wait_until(Duration::from_secs(90), "redundancy: full", || {
        let shown = cluster.ctl_ok(&["status"]).ok()?;
        shown.contains("redundancy: full").then_some(())
    })
    .expect("redundancy back");
    let full = (before.0.elapsed(), load.acked());
    println!(
        "replacement: join took {:?} ({} messages accepted meanwhile), redundancy full after \
         {:?} ({} more)",
        joined.0,
        joined.1 - before.1,
        full.0,
        full.1 - joined.1
    );
    assert!(
        full.1 > before.1,
        "no mail was accepted while the replacement joined and pulled"
    );
    wait_until(Duration::from_secs(10), "the leader's metric", || {
        (copies_short(&cluster)? == 0).then_some(())
    })
    .expect("mcluster_blob_copies_short back to 0");
    let report = load.stop();
    // The other copy goes for good; the VIP moves to the replacement.
    cluster.kill(0).unwrap();
    std::fs::remove_dir_all(cluster.nodes[0].data_dir()).unwrap();
    assert_eq!(wait_vip_holder(&cluster, Some(0)).unwrap(), 1);
    let lab = cluster.expect_lab();
    let pop3 = format!("{vip}:{}", MailPorts::STANDARD.pop3);
    let messages = wait_until(Duration::from_secs(30), "the replacement serves", || {
        lab.in_host(Host::Client, || pop3_raw(&pop3, &alice).ok())
            .ok()
            .flatten()
    })
    .unwrap();
    let bodies: Vec<&str> = messages
        .iter()
        .map(|m| m["raw"].as_str().unwrap_or_default())
        .collect();
    for i in &report.acked {
        let want = format!("\r\n\r\nbody {i}\r\n");
        assert!(
            bodies.iter().any(|raw| raw.contains(&want)),
            "acknowledged message {i} is not served by POP3 ({} messages)",
            bodies.len()
        );
    }
    let imaps = format!("{vip}:{}", MailPorts::STANDARD.imaps);
    let inbox = lab
        .in_host(Host::Client, || imap_tool(&imaps, &alice, "dump", &[]))
        .unwrap()
        .unwrap();
    let hex: Vec<&str> = inbox["messages"]
        .as_array()
        .expect("IMAP messages")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default())
        .collect();
    for i in &report.acked {
        // imap_tool.py gives each body in hex.
        let want: String = format!("\r\n\r\nbody {i}\r\n")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            hex.iter().any(|body| body.contains(&want)),
            "acknowledged message {i} is not served by IMAP"
        );
    }
    println!(
        "{} acknowledged messages ({} attempts failed) all served by the replacement alone",
        report.acked.len(),
        report.failed
    );
}

/// With three data nodes, `leave` of one waits until every message it holds has two copies on
/// the other two (the cluster makes them) and only then removes it: afterwards each of the
/// two remaining data nodes alone serves every message.
#[test]
fn a_leaving_data_node_hands_its_copies_on_first() {
    use chaos_tests::mail::{DOMAIN, add_users, pop3_raw, send_numbered};
    let mut cluster = Cluster::start(107, 3, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    // Ten messages through each data node: each mirrors to the next in the ring, so n2 holds
    // copies paired with n1 and with n3.
    for (node, first) in [(0, 0), (1, 10), (2, 20)] {
        send_numbered(
            &cluster.nodes[node].smtp_addr(),
            &alice,
            first..first + 10,
            "kept",
        )
        .expect("send");
    }
    let n1 = cluster.nodes[0].name.clone();
    wait_until(Duration::from_secs(10), "n1 leads", || {
        cluster.ctl_ok(&["failover", "--to", &n1]).ok()
    })
    .expect("failover to n1");
    // Leaving the leader is refused before anything is copied for it.
    let assigned =
        |cluster: &Cluster| cluster.api.get("/v1/status").unwrap()["blobs_assigned"].clone();
    let before = assigned(&cluster);
    let refused = cluster.ctl(&["leave", "n1"]).unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "leave of the leader was accepted"
    );
    assert!(stderr.contains("node 1 is the leader"), "{stderr}");
    assert_eq!(
        assigned(&cluster),
        before,
        "copies were made for a leave that was refused"
    );
    let out = cluster.ctl_ok(&["leave", "n2"]).expect("leave n2");
    assert!(
        out.contains("copying what node 2 (n2) holds to the other data nodes: 20 blobs to go"),
        "{out}"
    );
    assert!(out.contains("removed node 2 (n2)"), "{out}");
    wait_until(Duration::from_secs(20), "n2 stops", || {
        cluster.exited(1).ok().flatten()
    })
    .expect("n2 stopped");
    wait_until(Duration::from_secs(30), "redundancy: full", || {
        let shown = cluster.ctl_ok(&["status"]).ok()?;
        shown.contains("redundancy: full").then_some(())
    })
    .expect("redundancy full after the leave");
    let check_all = |cluster: &Cluster, node: usize| {
        let messages = wait_until(Duration::from_secs(20), "a node serves alone", || {
            pop3_raw(&cluster.nodes[node].pop3_addr(), &alice).ok()
        })
        .unwrap();
        assert_eq!(messages.len(), 30);
        for (i, message) in messages.iter().enumerate() {
            let raw = message["raw"].as_str().unwrap_or_default();
            assert!(raw.contains(&format!("body {i}")), "message {i}: {message}");
        }
    };
    // n3 alone, then n1 alone.
    cluster.kill(0).unwrap();
    check_all(&cluster, 2);
    cluster.start_node(0).unwrap();
    cluster.wait_ready(0, Duration::from_secs(30)).unwrap();
    cluster.kill(2).unwrap();
    check_all(&cluster, 0);
}

/// A planned failover (`mclusterctl failover`) says goodbye to the sessions on the virtual IP
/// before the address moves, in each protocol's words and asking them to reconnect: an IMAP
/// client in IDLE gets `* BYE`, POP3 `-ERR`, SMTP 421. Reconnecting reaches the new holder.
#[test]
fn a_planned_failover_says_goodbye_on_the_vip() {
    use chaos_tests::cluster::MailPorts;
    use chaos_tests::lab::Host;
    use chaos_tests::mail::{DOMAIN, PASSWORD, Probe, add_users};
    use chaos_tests::scenario::wait_vip_holder;
    let cluster = Cluster::start_pair_with_vip(82).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    cluster
        .ctl_ok(&["policy", "set", "auth-without-tls=true"])
        .unwrap();
    let holder = wait_vip_holder(&cluster, None).unwrap();
    let lab = cluster.expect_lab();
    let vip = lab.vip();
    let ports = MailPorts::STANDARD;
    let connect = |port: u16| {
        lab.in_host(Host::Client, || Probe::connect(&format!("{vip}:{port}")))
            .unwrap()
            .unwrap()
    };
    // The holder offers plain logins once it has applied the policy.
    wait_until(Duration::from_secs(20), "AUTH=PLAIN on the VIP", || {
        let mut imap = connect(ports.imap);
        imap.reply().ok()?.contains("AUTH=PLAIN").then_some(())
    })
    .unwrap();
    let alice = format!("alice@{DOMAIN}");
    let mut imap = connect(ports.imap);
    imap.reply().unwrap();
    imap.send_raw(
        format!("a LOGIN {alice} \"{PASSWORD}\"\r\nb SELECT INBOX\r\nc IDLE\r\n").as_bytes(),
    )
    .unwrap();
    let mut lines = Vec::new();
    while !lines.last().is_some_and(|l: &String| l.starts_with("+ ")) {
        let line = imap
            .reply()
            .unwrap_or_else(|e| panic!("{e:#} after {lines:#?}"));
        lines.push(line);
    }
    let mut pop3 = connect(ports.pop3);
    assert!(pop3.reply().unwrap().starts_with("+OK"));
    let mut smtp = connect(ports.smtp);
    smtp.reply().unwrap();
    assert!(smtp.command("EHLO client.test").unwrap().starts_with("250"));

    let target = 1 - holder;
    let name = cluster.nodes[target].name.clone();
    let out = cluster.ctl_ok(&["failover", "--to", &name]).unwrap();
    assert!(out.contains("VIP"), "{out}");
    let bye = imap.reply().unwrap();
    assert_eq!(
        bye,
        "* BYE This address is moving to another cluster node, reconnect now"
    );
    let err = pop3.reply().unwrap();
    assert_eq!(
        err,
        "-ERR [SYS/TEMP] this address is moving to another cluster node, reconnect now"
    );
    let goodbye = smtp.reply().unwrap();
    assert_eq!(
        goodbye,
        "421 4.3.2 This address is moving to another cluster node, reconnect now"
    );
    assert!(imap.closed() && pop3.closed() && smtp.closed());
    assert_eq!(wait_vip_holder(&cluster, Some(holder)).unwrap(), target);
    let mut again = connect(ports.imap);
    assert!(again.reply().unwrap().starts_with("* OK"));
}

/// A data node whose VIP interface does not exist (`interface = "nosuch0"`) says so in status
/// and metrics, is refused as a failover target with the reason, and when it wins an election
/// anyway (the holder frozen past its lease) it hands leadership back to the node that can hold
/// the VIP within seconds.
#[test]
fn a_node_that_cannot_hold_the_vip_does_not_keep_leadership() {
    use chaos_tests::scenario::wait_vip_holder;
    let mut cluster = Cluster::start_pair_with_vip(83).expect("start cluster");
    let holder = wait_vip_holder(&cluster, None).unwrap();
    let broken = 1 - holder;
    let name = cluster.nodes[broken].name.clone();
    assert!(
        cluster
            .stop(broken, Duration::from_secs(15))
            .unwrap()
            .success()
    );
    let path = cluster.nodes[broken].config_path();
    let config = std::fs::read_to_string(&path).unwrap();
    let (before, after) = config.split_once("[vip]").expect("a [vip] section");
    let after: String = after
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("interface") {
                "interface = \"nosuch0\"".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, format!("{before}[vip]{after}\n")).unwrap();
    cluster.start_node(broken).unwrap();
    cluster.wait_ready(broken, Duration::from_secs(30)).unwrap();

    let status = wait_until(Duration::from_secs(20), "status names the problem", || {
        let status = cluster.ctl_ok(&["status"]).ok()?;
        status.contains("CANNOT HOLD IT").then_some(status)
    })
    .unwrap();
    assert!(
        status.contains(&format!(
            "vip: {name} CANNOT HOLD IT (cannot use interface nosuch0"
        )),
        "{status}"
    );
    let metrics = cluster
        .api
        .get_text_from(&cluster.nodes[broken].admin_url(), "/metrics")
        .unwrap();
    assert!(metrics.contains("mcluster_vip_unusable 1"), "{metrics}");

    // Reachable and caught up, so only the VIP stands in the way.
    wait_until(
        Duration::from_secs(20),
        "the leader hears the broken node",
        || {
            let status = cluster.api.get("/v1/status").ok()?;
            (status["unreachable"] == serde_json::json!([])).then_some(())
        },
    )
    .unwrap();
    // Raft's own objections (a moment without an answer on a loaded machine) come first and
    // pass; the VIP's must come every time the node is reachable, and nothing may move.
    let said = wait_until(Duration::from_secs(20), "the VIP refusal", || {
        let refused = cluster.ctl(&["failover", "--to", &name]).unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&refused.stdout),
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(!refused.status.success(), "{said}");
        said.contains("cannot hold the virtual IP").then_some(said)
    })
    .unwrap();
    assert!(said.contains("refused, nothing moved"), "{said}");
    assert_eq!(wait_vip_holder(&cluster, None).unwrap(), holder);

    // The broken node wins an election while the holder is frozen ...
    cluster.freeze(holder).unwrap();
    let broken_term = wait_until(Duration::from_secs(20), "the broken node leads", || {
        let node = cluster.node_status(broken)?;
        (node["state"] == "Leader").then_some(node["term"].as_u64()?)
    })
    .unwrap();
    cluster.thaw(holder).unwrap();
    let thawed = Instant::now();
    // ... and hands leadership back, so the VIP is served again. (Right after the thaw the
    // old holder still reports its old term's leadership and VIP: wait for a later term.)
    wait_until(Duration::from_secs(20), "the holder leads again", || {
        let node = cluster.node_status(holder)?;
        (node["state"] == "Leader"
            && node["term"].as_u64()? > broken_term
            && node["vip"]["held"] == true)
            .then_some(())
    })
    .unwrap();
    let took = thawed.elapsed();
    eprintln!("leadership back on a node that can hold the VIP {took:?} after the thaw");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(wait_vip_holder(&cluster, None).unwrap(), holder);
    let log = std::fs::read_to_string(cluster.nodes[broken].log_path()).unwrap();
    assert!(
        log.contains("this node cannot hold the virtual IP: handing leadership over"),
        "the broken node handed leadership over itself"
    );
}

/// The value of `key = "..."` in a TOML file mclusterctl wrote.
fn toml_string(path: &std::path::Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).expect("read TOML file");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{key} = ")))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
}

/// `mclusterctl` with another client config (an operator's copy that still has old tokens).
fn ctl_with(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(binary("mclusterctl"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mclusterctl")
}

#[test]
fn rotated_tokens_refuse_the_old_and_joined_nodes_keep_no_join_token() {
    // n1 (data) and n2 (witness, joined with the join token).
    let mut cluster = Cluster::start(111, 1, true, NodeTuning::default()).expect("start cluster");
    let old_join = toml_string(&cluster.client_config, "join-token");
    let n2_config = cluster.nodes[1].config_path();
    // A voter needs the join token no more: it removes its [join] section itself.
    wait_until(Duration::from_secs(10), "n2 removes its join token", || {
        let text = std::fs::read_to_string(&n2_config).ok()?;
        let no_section = !text.lines().any(|line| line.trim() == "[join]");
        // The file is rewritten just before the line is logged: wait for both.
        let logged = cluster.nodes[1]
            .log()
            .contains("removed the join token from the config file");
        (!text.contains(&old_join) && no_section && logged).then_some(())
    })
    .expect("the joined node's config keeps no join token and says so in its log");
    // It still starts from that file, as a voter that asks nobody to add it.
    cluster.stop(1, Duration::from_secs(20)).expect("stop n2");
    cluster.start_node(1).expect("restart n2");
    cluster
        .wait_ready(1, Duration::from_secs(20))
        .expect("n2 ready again");

    // `user disable` and `user enable` (docs/OPERATIONS.md, "Domains and users").
    cluster.ctl_ok(&["domain", "add", "example.test"]).unwrap();
    cluster
        .ctl_ok(&[
            "user",
            "add",
            "bob@example.test",
            "--password",
            "pw-1-long-enough",
        ])
        .unwrap();
    let enabled = |cluster: &Cluster| {
        let shown = cluster
            .ctl_ok(&["user", "show", "bob@example.test", "--json"])
            .unwrap();
        serde_json::from_str::<Value>(&shown).unwrap()["enabled"].clone()
    };
    cluster
        .ctl_ok(&["user", "disable", "bob@example.test"])
        .unwrap();
    assert_eq!(enabled(&cluster), false);
    cluster
        .ctl_ok(&["user", "enable", "bob@example.test"])
        .unwrap();
    assert_eq!(enabled(&cluster), true);
    let listed = cluster
        .ctl_ok(&["user", "list", "--domain", "example.test"])
        .unwrap();
    assert!(listed.contains("bob@example.test"), "{listed}");

    // An operator's copy of the client config from before the rotation.
    let old_config = cluster.root.path().join("old-client.toml");
    std::fs::copy(&cluster.client_config, &old_config).expect("copy client config");
    let out = cluster.ctl_ok(&["token", "rotate"]).expect("token rotate");
    assert!(
        out.starts_with("rotated the join token: the cluster refuses the old one from now on"),
        "{out}"
    );
    let new_join = toml_string(&cluster.client_config, "join-token");
    assert_ne!(new_join, old_join);

    // The old join token admits nobody; the new one does.
    let spare = cluster.root.path().join("spare");
    let refused = ctl_with(
        &old_config,
        &[
            "join",
            "--dir",
            &spare.display().to_string(),
            "--name",
            "n3",
            "--raft-addr",
            "127.77.111.3:7071",
            "--admin-addr",
            "127.77.111.3:7070",
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "the old join token was accepted");
    assert!(
        stderr.contains("401") && stderr.contains("unauthorized"),
        "{stderr}"
    );
    let n3 = cluster.add_node("data").expect("join with the new token");
    let n3_config = cluster.nodes[n3].config_path();
    wait_until(Duration::from_secs(10), "n3 removes its join token", || {
        let text = std::fs::read_to_string(&n3_config).ok()?;
        (!text.contains(&new_join)).then_some(())
    })
    .expect("the joined node's config keeps no join token");

    // The admin token: the old copy is refused at once, the rotated config works.
    let out = cluster
        .ctl_ok(&["token", "rotate", "--admin"])
        .expect("token rotate --admin");
    assert!(out.starts_with("rotated the admin token: "), "{out}");
    let denied = ctl_with(&old_config, &["members"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(!denied.status.success(), "the old admin token was accepted");
    assert!(stderr.contains("401"), "{stderr}");
    let members = cluster
        .ctl_ok(&["members"])
        .expect("members with the new token");
    assert!(members.contains("n3"), "{members}");
    cluster.check_no_unexpected_errors(&[]);
}

/// Every admin route answers 401 to a request without the admin token: the `Admin` extractor
/// checks it before any handler runs, so no handler can forget to.
#[test]
fn admin_routes_refuse_a_request_without_the_token() {
    let cluster = Cluster::start(112, 1, false, NodeTuning::default()).expect("start cluster");
    let admin = cluster.nodes[0].admin_url();
    for path in [
        "/v1/domains",
        "/v1/domains/example.test",
        "/v1/dkim",
        "/v1/accounts",
        "/v1/accounts/alice@example.test",
        "/v1/aliases",
        "/v1/tls",
        "/v1/mail-policy",
        "/v1/outbound-policy",
        "/v1/protection-policy",
        "/v1/lockouts",
        "/v1/access-lists",
        "/v1/queue",
        "/v1/queue/0123456789ABCDEF",
    ] {
        let status = cluster.api.get_status(&format!("{admin}{path}")).unwrap();
        assert_eq!(status, 401, "GET {path} without the token");
    }
    // With the token the same routes answer.
    cluster.api.get("/v1/mail-policy").expect("with the token");
    cluster.api.get("/v1/queue").expect("with the token");
}
