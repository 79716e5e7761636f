//! Rolling upgrades between cluster versions. An older build is stood in for by this build
//! with `MCLUSTER_TEST_NEWEST_CLUSTER_VERSION=1` (it reports, joins and finalizes as a build
//! that runs cluster version 1 only); "upgrading" a node restarts it without that.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chaos_tests::api::Api;
use chaos_tests::cluster::{Cluster, NodeTuning, admin_token, binary, wait_until};
use chaos_tests::mail::{PASSWORD, add_users, pop3_fetch, smtp_send, subjects};
use serde_json::{Value, json};

const AS_OLD_BUILD: (&str, &str) = ("MCLUSTER_TEST_NEWEST_CLUSTER_VERSION", "1");
/// The newest cluster version this build runs.
const NEWEST: u32 = 3;

/// Two data nodes and a witness, all of the "older build", so the cluster runs version 1.
fn start_old_cluster(subnet: u8, extra_toml: &str) -> Result<Cluster> {
    let tuning = NodeTuning {
        extra_toml: extra_toml.to_owned(),
        env: vec![(AS_OLD_BUILD.0.to_owned(), AS_OLD_BUILD.1.to_owned())],
        ..NodeTuning::default()
    };
    Cluster::start(subnet, 2, true, tuning)
}

fn status(cluster: &Cluster) -> Result<Value> {
    let text = cluster.ctl_ok(&["upgrade", "status", "--json"])?;
    Ok(serde_json::from_str(&text)?)
}

/// Restarts node `i` on this build (from the stand-in for an older one, or the previous
/// release).
fn upgrade_node(cluster: &mut Cluster, i: usize) -> Result<()> {
    cluster.stop(i, Duration::from_secs(20))?;
    cluster.nodes[i].env.clear();
    cluster.nodes[i].mclusterd = None;
    cluster.start_node(i)?;
    cluster.wait_ready(i, Duration::from_secs(30))?;
    let node_id = cluster.nodes[i].id;
    // Its new report reaches the state.
    wait_until(Duration::from_secs(20), "the node's new report", || {
        let status = status(cluster).ok()?;
        let member = status["members"]
            .as_array()?
            .iter()
            .find(|m| m["node_id"] == node_id)?
            .clone();
        (member["newest"] == NEWEST).then_some(())
    })
}

/// The HTTP status of a GET over plain HTTP (curl's `%{http_code}`).
fn plain_status(url: &str) -> Result<String> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ])
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command of cluster version 2 (the protection settings): refused while the cluster runs
/// version 1, with the reason.
fn gated_command(cluster: &Cluster) -> Result<std::process::Output> {
    cluster.ctl(&["protection", "set", "lockout-secs=60"])
}

fn assert_gated_refused(cluster: &Cluster) -> Result<()> {
    let out = gated_command(cluster)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted at version 1: {stderr}");
    assert!(stderr.contains("needs cluster version 2"), "{stderr}");
    assert!(stderr.contains("mclusterctl upgrade status"), "{stderr}");
    let policy: Value =
        serde_json::from_str(&cluster.ctl_ok(&["protection", "show", "--json"])?)?;
    assert_ne!(policy["lockout-secs"], 60, "{policy}");
    Ok(())
}

/// A build report for `POST /v1/members` as a joining node sends it.
fn join_body(oldest: u32, newest: u32) -> Value {
    json!({
        "node_id": 99,
        "build": { "node_id": 99, "build": "9.9.9", "oldest": oldest, "newest": newest }
    })
}

#[test]
fn a_rolling_upgrade_raises_the_cluster_version_only_when_every_member_runs_it() -> Result<()> {
    let mut cluster = start_old_cluster(120, "")?;
    add_users(&cluster, &["alice"])?;
    let before = status(&cluster)?;
    assert_eq!(before["active"], 1, "{before}");
    // What `mclusterd --version` says a build runs is what the nodes report.
    let version = std::process::Command::new(chaos_tests::cluster::binary("mclusterd"))
        .arg("--version")
        .output()?;
    let version = String::from_utf8_lossy(&version.stdout);
    let build = before["members"][0]["build"].as_str().unwrap_or_default();
    assert_eq!(
        version.trim(),
        format!("mclusterd {build} (cluster versions 1 to {NEWEST})"),
        "{before}"
    );
    assert_eq!(before["members"].as_array().unwrap().len(), 3, "{before}");
    assert!(
        before["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "policy-settings"),
        "{before}"
    );
    assert_gated_refused(&cluster)?;
    // A node whose build only runs newer versions may not join: it would skip a release.
    let leader = cluster.nodes[0].admin_url();
    let answer = cluster
        .api
        .send_to(&leader, "POST", "/v1/members", Some(join_body(2, 3)))?;
    assert_eq!(answer.status, 409, "{:?}", answer.body);
    assert!(
        answer.body.to_string().contains("may skip no release"),
        "{:?}",
        answer.body
    );

    // The witness, then the follower: the leader still runs the old build, so version 1 stays.
    upgrade_node(&mut cluster, 2)?;
    upgrade_node(&mut cluster, 1)?;
    std::thread::sleep(Duration::from_secs(3));
    let mid = status(&cluster)?;
    assert_eq!(mid["active"], 1, "{mid}");
    assert_eq!(mid["runnable"], 1, "{mid}");
    assert_gated_refused(&cluster)?;
    // Then the last one (leadership moves on when it stops): every member runs version 2, and
    // the leader raises it by itself.
    upgrade_node(&mut cluster, 0)?;
    wait_until(
        Duration::from_secs(20),
        "the newest cluster version",
        || (status(&cluster).ok()?["active"] == NEWEST).then_some(()),
    )?;
    let out = gated_command(&cluster)?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Now a node of the old build may not join, and the answer names the build it needs.
    let answer = cluster
        .api
        .send_to(&leader, "POST", "/v1/members", Some(join_body(1, 1)))?;
    assert_eq!(answer.status, 409, "{:?}", answer.body);
    let text = answer.body.to_string();
    assert!(
        text.contains(&format!("runs cluster version {NEWEST}")),
        "{text}"
    );
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}

#[test]
fn with_auto_finalize_off_only_the_operator_raises_the_cluster_version() -> Result<()> {
    let mut cluster = start_old_cluster(121, "[upgrade]\nauto-finalize = false\n")?;
    for i in [2, 1, 0] {
        upgrade_node(&mut cluster, i)?;
    }
    std::thread::sleep(Duration::from_secs(3));
    let held = status(&cluster)?;
    assert_eq!(held["active"], 1, "{held}");
    assert_eq!(held["runnable"], NEWEST, "{held}");
    assert_eq!(held["auto_finalize"], false, "{held}");
    let text = cluster.ctl_ok(&["upgrade", "status"])?;
    assert!(text.contains("mclusterctl upgrade finalize"), "{text}");
    assert_gated_refused(&cluster)?;
    // Plain HTTP still answers (a member of the previous build speaks nothing else)...
    let plain_ready = format!("http://{}/ready", cluster.nodes[0].admin_addr);
    assert_eq!(plain_status(&plain_ready)?, "200");

    let said = cluster.ctl_ok(&["upgrade", "finalize"])?;
    assert!(
        said.contains(&format!("runs cluster version {NEWEST} now (was 1)")),
        "{said}"
    );
    assert_eq!(status(&cluster)?["active"], NEWEST);
    cluster.ctl_ok(&["protection", "set", "lockout-secs=60"])?;
    // ...until the version that takes HTTPS only is active.
    assert_eq!(plain_status(&plain_ready)?, "426");
    // Again: nothing to do.
    let said = cluster.ctl_ok(&["upgrade", "finalize"])?;
    assert!(said.contains("nothing to finalize"), "{said}");
    // After finalizing there is no way back: a build that runs only older versions refuses the
    // node's data, saying what it needs, instead of failing on an entry it cannot read.
    cluster.stop(2, Duration::from_secs(20))?;
    let older = (NEWEST - 1).to_string();
    cluster.nodes[2].env = vec![(AS_OLD_BUILD.0.to_owned(), older)];
    cluster.start_node(2)?;
    let exit = wait_until(
        Duration::from_secs(30),
        "the older build to give up",
        || cluster.exited(2).ok().flatten(),
    )?;
    assert!(!exit.success(), "{exit}");
    let log = cluster.nodes[2].log();
    assert!(
        log.contains(&format!("runs cluster version {NEWEST}")) && log.contains("cannot go back"),
        "{log}"
    );
    cluster.check_no_unexpected_errors(&["cannot go back"]);
    Ok(())
}

/// mclusterd processes on the directories of a cluster made elsewhere; killed (by PID) when
/// dropped, their logs printed if the test failed.
struct Processes {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Processes {
    fn start(dir: &Path, names: &[&str]) -> Result<Processes> {
        let mut processes = Processes {
            children: Vec::new(),
            dir: dir.to_owned(),
        };
        for name in names {
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            let child = Command::new(binary("mclusterd"))
                .arg("--config")
                .arg(dir.join(name).join("mclusterd.toml"))
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawn mclusterd")?;
            processes.children.push(((*name).to_owned(), child));
        }
        Ok(processes)
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")));
                eprintln!("----- log of {name} -----\n{}", log.unwrap_or_default());
            }
        }
    }
}

/// The one upgrade that is not rolling: from the last build before versions (commit c77a153),
/// stop every node and start the new build on the same data. The fixture is that build's
/// cluster with mail in it (`chaos-tests/fixtures/make_c77a153_cluster.sh`), on
/// 127.77.122.1-3: the cluster version starts at 1 and rises to 2 once all three report, and
/// every message, flag, UIDVALIDITY and UID is as the old build left it.
#[test]
fn the_last_build_before_versions_upgrades_in_place_with_nothing_lost() -> Result<()> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let root = tempfile::tempdir()?;
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(fixtures.join("c77a153-cluster.tar.gz"))
        .arg("-C")
        .arg(root.path())
        .status()?;
    anyhow::ensure!(untar.success(), "untar the fixture: {untar}");
    let dir = root.path().join("cluster");
    let _nodes = Processes::start(&dir, &["n1", "n2", "n3"])?;
    let ctl = |args: &[&str]| -> Result<String> {
        let out = Command::new(binary("mclusterctl"))
            .arg("--config")
            .arg(dir.join("client.toml"))
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "mclusterctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The old build's init wrote a client config on plain HTTP, which the new cluster version
    // refuses: the operator turns it to HTTPS once the nodes run the new build.
    let ca = dir.join("ca.crt").display().to_string();
    let said = wait_until(Duration::from_secs(60), "the nodes to answer HTTPS", || {
        ctl(&["client-config", "use-https", "--ca-cert", &ca]).ok()
    })?;
    assert!(said.contains("speaks HTTPS"), "{said}");
    let upgraded = wait_until(
        Duration::from_secs(60),
        "the newest cluster version",
        || {
            let status: Value =
                serde_json::from_str(&ctl(&["upgrade", "status", "--json"]).ok()?).ok()?;
            (status["active"] == NEWEST).then_some(status)
        },
    )?;
    for member in upgraded["members"].as_array().context("members")? {
        assert_eq!(member["build"], env!("CARGO_PKG_VERSION"), "{upgraded}");
    }

    // Mail as the old build left it: the same UIDVALIDITY, UIDs, flags and copies.
    let script = fixtures.join("describe_mail.py");
    let described = Command::new("python3")
        .arg(&script)
        .args(["127.77.122.2", "2143", "alice@example.test", PASSWORD])
        .output()?;
    anyhow::ensure!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    let described: Value = serde_json::from_slice(&described.stdout)?;
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json"))?)?;
    assert_eq!(described, expected);
    let bob = pop3_fetch("127.77.122.1:2110", "stls", "bob@example.test", false)?;
    assert_eq!(subjects(&bob), ["before the upgrade for bob"], "{bob}");

    // New mail is taken, after the old, and a command of version 2 is accepted.
    let (code, reply) = smtp_send(
        "127.77.122.1:2525",
        "plain",
        None,
        "alice@example.test",
        "after the upgrade",
    )?;
    assert_eq!(code, 250, "{reply}");
    let after = Command::new("python3")
        .arg(&script)
        .args(["127.77.122.1", "2143", "alice@example.test", PASSWORD])
        .output()?;
    let after: Value = serde_json::from_slice(&after.stdout)?;
    let inbox = &after["INBOX"];
    assert_eq!(inbox["messages"][3]["uid"], 4, "{inbox}");
    assert_eq!(
        inbox["messages"][3]["subject"], "after the upgrade",
        "{inbox}"
    );
    ctl(&["protection", "set", "lockout-secs=60"])?;

    // Every node holds the same state.
    let ca_pem = std::fs::read_to_string(dir.join("ca.crt"))?;
    let api = Api::new(Vec::new(), admin_token(&dir.join("client.toml"))?).with_ca(Some(ca_pem));
    let mut seen = Vec::new();
    let agreed = wait_until(Duration::from_secs(20), "equal digests", || {
        seen = ["127.77.122.1", "127.77.122.2", "127.77.122.3"]
            .iter()
            .map(|ip| {
                let base = format!("https://{ip}:7070");
                match api.get_from(&base, "/v1/digest", Duration::from_secs(5)) {
                    Ok(d) => json!([d["applied_index"], d["digest"]]),
                    Err(e) => json!(e.to_string()),
                }
            })
            .collect();
        seen.windows(2).all(|w| w[0] == w[1]).then_some(())
    });
    assert!(agreed.is_ok(), "the nodes' state digests differ: {seen:?}");
    Ok(())
}

/// Until the new cluster version is active, nothing the previous release cannot read is
/// written: a cluster of the previous release upgraded to this build with `auto-finalize` off
/// stays at its version and takes mail, and one node goes back to the previous release and runs
/// on with the others, their state equal. Only finalizing closes that door.
#[test]
fn until_finalized_a_node_can_go_back_to_the_previous_release() -> Result<()> {
    let previous = chaos_tests::cluster::previous_release().join("mclusterd");
    let tuning = NodeTuning {
        extra_toml: "[upgrade]\nauto-finalize = false\n".to_owned(),
        mclusterd: Some(previous.clone()),
        ..NodeTuning::default()
    };
    let mut cluster = Cluster::start(124, 2, true, tuning)?;
    add_users(&cluster, &["alice"])?;
    let old_build = status(&cluster)?["members"][0]["build"].clone();
    assert_ne!(
        old_build,
        env!("CARGO_PKG_VERSION"),
        "the previous release is this build"
    );
    for i in [2, 1, 0] {
        upgrade_node(&mut cluster, i)?;
    }
    // Until finalized, plain HTTP still works (the client config of the previous release's
    // init), and HTTPS too.
    let held = status(&cluster)?;
    assert_eq!(held["active"], NEWEST - 1, "{held}");
    assert_eq!(held["runnable"], NEWEST, "{held}");
    let send = |cluster: &Cluster, i: usize, subject: &str| -> Result<()> {
        let addr = cluster.nodes[i].smtp_addr();
        let (code, reply) = smtp_send(&addr, "plain", None, "alice@example.test", subject)?;
        anyhow::ensure!(code == 250, "{subject}: {reply}");
        Ok(())
    };
    send(&cluster, 0, "on the new build")?;

    // Back to the previous release on the second data node.
    cluster.stop(1, Duration::from_secs(20))?;
    cluster.nodes[1].mclusterd = Some(previous);
    cluster.start_node(1)?;
    cluster.wait_ready(1, Duration::from_secs(30))?;
    let node_id = cluster.nodes[1].id;
    wait_until(Duration::from_secs(20), "the node's old report", || {
        let status = status(&cluster).ok()?;
        let member = status["members"]
            .as_array()?
            .iter()
            .find(|m| m["node_id"] == node_id)?
            .clone();
        (member["build"] == old_build).then_some(())
    })?;
    send(&cluster, 1, "on the previous release again")?;
    let listing = pop3_fetch(
        &cluster.nodes[1].pop3_addr(),
        "stls",
        "alice@example.test",
        false,
    )?;
    let mut got = subjects(&listing);
    got.sort();
    assert_eq!(
        got,
        ["on the new build", "on the previous release again"],
        "{listing}"
    );
    let state =
        chaos_tests::checks::identical_state::check_digests(&cluster, Duration::from_secs(30));
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    // With a member on the previous release there is nothing to finalize.
    let said = cluster.ctl_ok(&["upgrade", "finalize"])?;
    assert!(said.contains("nothing to finalize"), "{said}");
    assert_eq!(status(&cluster)?["active"], NEWEST - 1);
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
