//! The admin API over HTTPS, beside plain HTTP on the same port: a client that trusts the
//! cluster CA (`ca.crt` in the directory `mclusterctl init` wrote) verifies every node's admin
//! certificate by its address, the first node's and a joined one's alike; a client that does
//! not trust it refuses the connection. mclusterctl with `https://` URLs and the CA in its
//! client config administers the cluster and joins a node, which asks to be added over HTTPS.

use std::process::{Command, Stdio};

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
fn the_admin_api_answers_https_with_a_certificate_from_the_cluster_ca() -> Result<()> {
    let cluster = Cluster::start(125, 2, false, NodeTuning::default())?;
    let ca = cluster.root().join("ca.crt");
    let ca = ca.to_str().unwrap_or_default();
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
        // Plain HTTP on the same port still answers.
        let (body, code) = curl(&[&format!("http://{}/ready", node.admin_addr)])?;
        assert_eq!((body.trim(), code), ("ready", 0), "{}", node.name);
    }
    // mclusterctl over HTTPS: the client config's URLs turned to https://, with the CA.
    let config = cluster.root().join("client.toml");
    let plain = std::fs::read_to_string(&config)?;
    let https = plain.replace("http://", "https://");
    std::fs::write(&config, &https)?;
    let refused = cluster.ctl(&["members"])?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "https without the CA: {said}");
    assert!(said.contains("no ca-cert-pem"), "{said}");
    let pem = std::fs::read_to_string(cluster.root().join("ca.crt"))?;
    std::fs::write(&config, format!("{https}ca-cert-pem = {pem:?}\n"))?;
    let members = cluster.ctl_ok(&["members"])?;
    assert!(members.contains("n2"), "{members}");
    // A join through https:// seeds: the new node asks to be added over HTTPS too.
    let mut cluster = cluster;
    let i = cluster.add_node("witness")?;
    let config = std::fs::read_to_string(cluster.root().join("client.toml"))?;
    let url = format!("https://{}", cluster.nodes[i].admin_addr);
    assert!(config.contains(&url), "{config}");
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
