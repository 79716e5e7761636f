//! The admin API over HTTPS only: a client that trusts the cluster CA (`ca.crt` in the
//! directory `mclusterctl init` wrote) verifies every node's admin certificate by its address,
//! the first node's and a joined one's alike; a client that does not trust it refuses the
//! connection; plain HTTP gets 426 with what to do, unless a node keeps it open on its loopback
//! address (`admin-plain-http`). mclusterctl speaks HTTPS from `init` on, an older client config
//! on plain HTTP is turned to HTTPS by `mclusterctl client-config use-https`, a node passes a
//! request on to the leader over HTTPS, and a joining node asks to be added over HTTPS.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use chaos_tests::cluster::{Cluster, NodeTuning};

/// curl's answer body and exit code.
fn curl(args: &[&str]) -> Result<(String, i32)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

#[test]
fn the_admin_api_takes_https_only_with_a_certificate_from_the_cluster_ca() -> Result<()> {
    let mut cluster = Cluster::start(125, 2, false, NodeTuning::default())?;
    let ca_path = cluster.root().join("ca.crt");
    let ca = ca_path.to_str().unwrap_or_default();
    let token = chaos_tests::cluster::admin_token(&cluster.root().join("client.toml"))?;
    let auth = format!("Authorization: Bearer {token}");
    for node in &cluster.nodes {
        let https = format!("https://{}", node.admin_addr);
        let (body, code) = curl(&["--cacert", ca, &format!("{https}/ready")])?;
        assert_eq!((body.trim(), code), ("ready", 0), "{}", node.name);
        let (body, code) = curl(&["--cacert", ca, "-H", &auth, &format!("{https}/v1/members")])?;
        assert_eq!(code, 0, "{body}");
        assert!(body.contains("\"voter\":true"), "{body}");
        // Not trusted without the cluster CA (curl: 60, peer certificate cannot be verified).
        let (_, code) = curl(&[&format!("{https}/ready")])?;
        assert_eq!(code, 60, "{} verified without the cluster CA", node.name);
        // Plain HTTP on the same port: 426, saying what to do; the token is not looked at.
        let plain = format!("http://{}", node.admin_addr);
        for path in ["/ready", "/v1/members"] {
            let (body, code) = curl(&[
                "-w",
                " %{http_code}",
                "-H",
                &auth,
                &format!("{plain}{path}"),
            ])?;
            assert_eq!(code, 0, "{body}");
            assert!(body.ends_with(" 426"), "{path} over plain HTTP: {body}");
            assert!(body.contains("\"code\":\"https_only\""), "{body}");
            assert!(body.contains(&https), "{body}");
            assert!(body.contains("client-config use-https"), "{body}");
        }
    }

    // A node passes a membership request on to the leader, over HTTPS: a failover asked of the
    // follower.
    let leader = cluster.wait_for_leader(Duration::from_secs(10))?;
    let follower = &cluster.nodes[1 - cluster.index_of(leader)];
    let (body, code) = curl(&[
        "--cacert",
        ca,
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-X",
        "POST",
        "-d",
        "{}",
        "-w",
        " %{http_code}",
        &format!("https://{}/v1/failover", follower.admin_addr),
    ])?;
    assert_eq!(code, 0, "{body}");
    assert!(
        body.ends_with(" 200"),
        "failover through the follower: {body}"
    );
    assert!(
        body.contains(&format!("\"leader\":{}", follower.id)),
        "{body}"
    );

    // A client config an older init wrote (plain HTTP, no CA) is refused with the way out...
    cluster.use_plain_http()?;
    let refused = cluster.ctl(&["members"])?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "members over plain HTTP: {said}");
    assert!(said.contains("client-config use-https"), "{said}");
    // ...which needs the right CA, and changes nothing with another one...
    let other_ca = cluster.root().join("other-ca.crt");
    let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()])?;
    std::fs::write(&other_ca, other.cert.pem())?;
    let before = std::fs::read_to_string(cluster.root().join("client.toml"))?;
    let wrong = cluster.ctl(&[
        "client-config",
        "use-https",
        "--ca-cert",
        other_ca.to_str().unwrap_or_default(),
    ])?;
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "another CA accepted: {said}");
    assert!(said.contains("unchanged"), "{said}");
    assert_eq!(
        std::fs::read_to_string(cluster.root().join("client.toml"))?,
        before
    );
    // ...and with the cluster's CA turns it to HTTPS.
    let said = cluster.use_https()?;
    assert!(said.contains("speaks HTTPS"), "{said}");
    let members = cluster.ctl_ok(&["members"])?;
    assert!(members.contains("n2"), "{members}");

    // A join: the new node asks to be added over HTTPS, and the client config lists it so.
    let i = cluster.add_node("witness")?;
    let config = std::fs::read_to_string(cluster.root().join("client.toml"))?;
    let url = format!("https://{}", cluster.nodes[i].admin_addr);
    assert!(config.contains(&url), "{config}");

    // A node set to keep plain HTTP on its loopback admin address answers it.
    let config_path = cluster.nodes[0].config_path();
    let text = std::fs::read_to_string(&config_path)?;
    std::fs::write(&config_path, format!("admin-plain-http = true\n{text}"))?;
    cluster.stop(0, Duration::from_secs(20))?;
    cluster.start_node(0)?;
    cluster.wait_ready(0, Duration::from_secs(30))?;
    let plain = format!("http://{}", cluster.nodes[0].admin_addr);
    let (body, code) = curl(&["-H", &auth, &format!("{plain}/v1/members")])?;
    assert_eq!(code, 0, "{body}");
    assert!(body.contains("\"voter\":true"), "{body}");
    // The others still refuse it.
    let (body, _) = curl(&[
        "-w",
        " %{http_code}",
        &format!("http://{}/ready", cluster.nodes[1].admin_addr),
    ])?;
    assert!(body.ends_with(" 426"), "{body}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
