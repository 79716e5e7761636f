//! Rolling upgrades between cluster versions. An older build is stood in for by this build
//! with `MCLUSTER_TEST_NEWEST_CLUSTER_VERSION=1` (it reports, joins and finalizes as a build
//! that runs cluster version 1 only); "upgrading" a node restarts it without that.

use std::time::Duration;

use anyhow::Result;
use chaos_tests::cluster::{Cluster, NodeTuning, wait_until};
use chaos_tests::mail::add_users;
use serde_json::{Value, json};

const AS_OLD_BUILD: (&str, &str) = ("MCLUSTER_TEST_NEWEST_CLUSTER_VERSION", "1");

/// Two data nodes and a witness, all of the "older build", so the cluster runs version 1.
fn start_old_cluster(subnet: u8, extra_toml: &str) -> Result<Cluster> {
    let tuning = NodeTuning {
        extra_toml: extra_toml.to_owned(),
        env: vec![(AS_OLD_BUILD.0.to_owned(), AS_OLD_BUILD.1.to_owned())],
    };
    Cluster::start(subnet, 2, true, tuning)
}

fn status(cluster: &Cluster) -> Result<Value> {
    let text = cluster.ctl_ok(&["upgrade", "status", "--json"])?;
    Ok(serde_json::from_str(&text)?)
}

/// Restarts node `i` on the "new build".
fn upgrade_node(cluster: &mut Cluster, i: usize) -> Result<()> {
    cluster.stop(i, Duration::from_secs(20))?;
    cluster.nodes[i].env.clear();
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
        (member["newest"] == 2).then_some(())
    })
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
    assert!(stderr.contains("need cluster version 2"), "{stderr}");
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
        format!("mclusterd {build} (cluster versions 1 to 2)"),
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
    wait_until(Duration::from_secs(20), "cluster version 2", || {
        (status(&cluster).ok()?["active"] == 2).then_some(())
    })?;
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
    assert!(text.contains("runs cluster version 2"), "{text}");
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
    assert_eq!(held["runnable"], 2, "{held}");
    assert_eq!(held["auto_finalize"], false, "{held}");
    let text = cluster.ctl_ok(&["upgrade", "status"])?;
    assert!(text.contains("mclusterctl upgrade finalize"), "{text}");
    assert_gated_refused(&cluster)?;

    let said = cluster.ctl_ok(&["upgrade", "finalize"])?;
    assert!(
        said.contains("runs cluster version 2 now (was 1)"),
        "{said}"
    );
    assert_eq!(status(&cluster)?["active"], 2);
    cluster.ctl_ok(&["protection", "set", "lockout-secs=60"])?;
    // Again: nothing to do.
    let said = cluster.ctl_ok(&["upgrade", "finalize"])?;
    assert!(said.contains("nothing to finalize"), "{said}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
