//! DNS-based checks of mail arriving on port 25, seen by a sending MTA: Python's smtplib (and
//! dkimpy to sign) from lab addresses 127.0.73.x, with SPF, DKIM, DMARC and DNS list
//! records served by the lab's DNS stub. The stored copy carries an Authentication-Results
//! header with the verdicts (and no forged one); a DMARC p=reject failure is refused or only
//! marked, as configured, and a p=quarantine failure is filed in Junk; an allow-listed sender
//! is not judged; a block-listed client reaches only postmaster unless an allow list
//! lists it; bad HELO names, missing reverse DNS and SPF fails are refused when set to reject,
//! as configured.
//!
//! Reverse DNS of loopback clients cannot come from the stub: the resolver answers every
//! 127.in-addr.arpa question itself with "localhost" (RFC 6761), and localhost is 127.0.0.1.
//! So 127.0.0.1 is the client with forward-confirmed reverse DNS, and 127.0.73.x clients are
//! ones whose PTR name does not lead back to them. The 450 for a failed lookup is a unit test.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use chaos_tests::cluster::{Cluster, NodeTuning, wait_until};
use chaos_tests::mail;
use chaos_tests::outbound_lab::{DnsStub, Zone, python};
use serde_json::Value;

/// The lab's addresses: 127.0.73.1 and .2 are the DNS stubs of the two scenarios, .10 and up
/// are sending MTAs.
fn lab(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 73, d)
}

const DNS_PORT: u16 = 5353;
/// A client in good.test's SPF record.
const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 73, 10);
/// A client whose reverse DNS does not lead back to it.
const NO_FCRDNS: Ipv4Addr = Ipv4Addr::new(127, 0, 73, 11);
/// Listed by the block list bl.test.
const LISTED: Ipv4Addr = Ipv4Addr::new(127, 0, 73, 20);
/// Listed by bl.test and by the allow list wl.test.
const ALLOWED: Ipv4Addr = Ipv4Addr::new(127, 0, 73, 21);
/// Its reverse DNS is localhost, which is 127.0.0.1: forward-confirmed.
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/inbound_sender.py")
}

fn run(args: &[&str]) -> Result<Value> {
    let out = std::process::Command::new(python()?)
        .arg(script())
        .args(args)
        .output()
        .context("run inbound_sender.py")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| {
            format!(
                "inbound_sender.py {args:?} printed {stdout:?}; stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    ensure!(
        value.get("error").is_none(),
        "inbound_sender.py {args:?}: {value}"
    );
    Ok(value)
}

/// A DKIM key for good.test: the PEM file and the p= value.
struct DkimKey {
    _dir: tempfile::TempDir,
    pem: String,
    public: String,
}

fn dkim_key() -> Result<DkimKey> {
    let dir = tempfile::tempdir()?;
    let pem = dir.path().join("key.pem").display().to_string();
    let value = run(&["keygen", "--out", &pem])?;
    let public = value["public"].as_str().context("public")?.to_owned();
    Ok(DkimKey {
        _dir: dir,
        pem,
        public,
    })
}

/// The records both scenarios use.
fn zone(key: &DkimKey) -> Zone {
    Zone::new()
        // good.test: SPF for the lab, a DKIM key, DMARC p=reject.
        .txt("good.test", "v=spf1 ip4:127.0.73.0/24 ip4:127.0.0.1 -all")
        .txt(
            "s1._domainkey.good.test",
            &format!("v=DKIM1; k=rsa; p={}", key.public),
        )
        .txt("_dmarc.good.test", "v=DMARC1; p=reject")
        // strict.test: nobody may send for it (softly), and DMARC says reject.
        .txt("strict.test", "v=spf1 ~all")
        .txt("_dmarc.strict.test", "v=DMARC1; p=reject")
        // quarantine.test: like strict.test, but DMARC says quarantine.
        .txt("quarantine.test", "v=spf1 ~all")
        .txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine")
        // hardfail.test: "-all".
        .txt("hardfail.test", "v=spf1 -all")
        // plain.test has no records at all.
        // The block list lists .20 and .21 (with a reason); the allow list .21.
        .a("20.73.0.127.bl.test", Ipv4Addr::new(127, 0, 0, 2))
        .txt("20.73.0.127.bl.test", "listed for testing")
        .a("21.73.0.127.bl.test", Ipv4Addr::new(127, 0, 0, 2))
        .a("21.73.0.127.wl.test", Ipv4Addr::new(127, 0, 10, 1))
        // A second block list that never answers about GOOD: it must not matter.
        .timeout("10.73.0.127.slow.test")
        // tempfail.test's SPF record cannot be had.
        .servfail("tempfail.test")
}

/// The harness exempts all of 127.0.0.0/8 from the protection policy, and exempt clients are not
/// checked: exempt only ::1 so that the lab's clients are.
fn check_loopback_clients(cluster: &Cluster) -> Result<()> {
    cluster.ctl_ok(&["protection", "set", "exempt-networks=::1/128"])?;
    Ok(())
}

fn tuning(stub: &DnsStub, checks: &str) -> NodeTuning {
    NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}\"]\n[inbound-checks]\ndns-timeout-ms = 1000\n{checks}",
            stub.addr()
        ),
        ..NodeTuning::default()
    }
}

/// One message as a sending MTA on `client` sends it to node 0's port 25.
struct Send<'a> {
    client: Ipv4Addr,
    helo: &'a str,
    from: &'a str,
    to: Vec<&'a str>,
    subject: &'a str,
    dkim: Option<&'a DkimKey>,
    tamper: bool,
    extra_header: Option<&'a str>,
}

impl<'a> Send<'a> {
    fn new(client: Ipv4Addr, from: &'a str, subject: &'a str) -> Send<'a> {
        Send {
            client,
            helo: "mail.good.test",
            from,
            to: vec!["bob@example.test"],
            subject,
            dkim: None,
            tamper: false,
            extra_header: None,
        }
    }

    fn run(&self, cluster: &Cluster) -> Result<Value> {
        let addr = cluster.nodes[0].smtp_addr();
        let (host, port) = addr.rsplit_once(':').context("host:port")?;
        let source = self.client.to_string();
        let mut args = vec![
            "send",
            "--host",
            host,
            "--port",
            port,
            "--source",
            &source,
            "--helo",
            self.helo,
            "--from",
            self.from,
            "--subject",
            self.subject,
        ];
        for to in &self.to {
            args.extend(["--to", to]);
        }
        if let Some(key) = self.dkim {
            args.extend([
                "--dkim-key",
                &key.pem,
                "--dkim-domain",
                "good.test",
                "--dkim-selector",
                "s1",
            ]);
        }
        if self.tamper {
            args.push("--tamper");
        }
        if let Some(header) = self.extra_header {
            args.extend(["--extra-header", header]);
        }
        run(&args)
    }
}

fn code(reply: &Value) -> u64 {
    reply[0].as_u64().unwrap_or(0)
}

/// The stored copy of the message with `subject` in `user`'s maildrop.
fn stored(cluster: &Cluster, user: &str, subject: &str) -> Result<String> {
    let messages = mail::pop3_raw(&cluster.nodes[0].pop3_addr(), user)?;
    let needle = format!("Subject: {subject}\r\n");
    messages
        .iter()
        .filter_map(|m| m["raw"].as_str())
        .find(|raw| raw.contains(&needle))
        .map(str::to_owned)
        .with_context(|| format!("no message {subject:?} for {user}"))
}

/// The Authentication-Results header this node wrote (the first header after Received),
/// unfolded.
fn results(raw: &str) -> String {
    let start = raw
        .find("Authentication-Results: n1.test")
        .unwrap_or_else(|| panic!("no Authentication-Results: n1.test in\n{raw}"));
    let mut field = String::new();
    for (i, line) in raw[start..].split("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        field.push_str(line.trim());
        field.push(' ');
    }
    field
}

/// Node 0's /metrics text.
fn metrics(cluster: &Cluster) -> Result<String> {
    cluster
        .api
        .get_text_from(&cluster.nodes[0].admin_url(), "/metrics")
}

#[track_caller]
fn check_results(raw: &str, expected: &[&str]) {
    let field = results(raw);
    for part in expected {
        assert!(field.contains(part), "{part:?} not in {field:?}");
    }
}

#[test]
fn spf_dkim_dmarc_results_and_dns_lists_on_port_25() -> Result<()> {
    let key = dkim_key()?;
    let stub = DnsStub::start(IpAddr::V4(lab(1)), DNS_PORT, &zone(&key))?;
    let cluster = Cluster::start(
        72,
        2,
        true,
        tuning(
            &stub,
            "dmarc-reject = \"reject\"\ndnsbl-zones = [\"bl.test\", \"slow.test\"]\ndnswl-zones = [\"wl.test\"]\n",
        ),
    )?;
    mail::add_users(&cluster, &["bob", "postmaster"])?;
    check_loopback_clients(&cluster)?;
    let bob = "bob@example.test";

    // Aligned SPF and a good signature: everything passes, and a forged header claiming our
    // name is gone. (The block list slow.test never answers about this client: the lookup
    // times out and counts as not listed.)
    let mut send = Send::new(GOOD, "alice@good.test", "all pass");
    send.dkim = Some(&key);
    send.extra_header = Some("Authentication-Results: n1.test; dkim=pass (forged by the sender)");
    let answer = send.run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    assert!(
        cluster.nodes[0].log().contains("DNS list lookup timed out"),
        "the slow list was not asked"
    );
    let raw = stored(&cluster, bob, "all pass")?;
    check_results(
        &raw,
        &[
            "iprev=fail",
            "spf=pass",
            "smtp.mailfrom=alice@good.test",
            "dkim=pass header.i=@good.test header.s=s1",
            "dmarc=pass header.from=good.test policy.dmarc=reject",
        ],
    );
    assert!(!raw.contains("forged by the sender"), "{raw}");
    assert_eq!(raw.matches("Authentication-Results:").count(), 1, "{raw}");

    // The body changed after signing: dkim=fail, but SPF still aligns, so DMARC passes.
    let mut send = Send::new(GOOD, "alice@good.test", "tampered");
    send.dkim = Some(&key);
    send.tamper = true;
    let answer = send.run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    check_results(
        &stored(&cluster, bob, "tampered")?,
        &["spf=pass", "dkim=fail", "dmarc=pass"],
    );

    // A domain without any records.
    let mut send = Send::new(GOOD, "carol@plain.test", "no records");
    send.helo = "mail.plain.test";
    let answer = send.run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    check_results(
        &stored(&cluster, bob, "no records")?,
        &["spf=none", "dkim=none", "dmarc=none"],
    );

    // DMARC p=reject, SPF softfail and no signature: refused after DATA.
    let answer = Send::new(GOOD, "mallory@strict.test", "dmarc reject").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 550, "{answer}");
    assert!(
        answer["data"][1]
            .as_str()
            .unwrap_or_default()
            .contains("DMARC")
    );

    // DMARC p=quarantine failing: accepted, and filed in the recipient's Junk mailbox.
    let answer = Send::new(GOOD, "mallory@quarantine.test", "dmarc quarantine").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    ensure!(
        stored(&cluster, bob, "dmarc quarantine").is_err(),
        "a quarantined message reached the inbox"
    );
    let junk = mail::imap_tool(
        &cluster.nodes[0].imaps_addr(),
        bob,
        "dump",
        &["--mailbox", "Junk"],
    )?;
    ensure!(
        junk["messages"].as_array().map(Vec::len) == Some(1),
        "Junk after the quarantine: {junk}"
    );

    // A block-listed client may write to postmaster only.
    let mut send = Send::new(LISTED, "dave@plain.test", "listed");
    send.to = vec![bob, "postmaster@example.test"];
    let answer = send.run(&cluster)?;
    let refused = &answer["rcpt"][0];
    assert_eq!(code(refused), 554, "{answer}");
    let text = refused[1].as_str().unwrap_or_default();
    assert!(
        text.contains("client [127.0.73.20] blocked using bl.test")
            && text.contains("listed for testing"),
        "{answer}"
    );
    assert_eq!(code(&answer["rcpt"][1]), 250, "{answer}");
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    stored(&cluster, "postmaster@example.test", "listed")?;

    // On the allow list too: not refused.
    let answer = Send::new(ALLOWED, "erin@plain.test", "allowed").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    stored(&cluster, bob, "allowed")?;

    // A client in the exempt networks (the site's own relays) is not checked at all.
    cluster.ctl_ok(&["protection", "set", "exempt-networks=127.0.73.0/24"])?;
    let answer = Send::new(LISTED, "mallory@strict.test", "exempt").run(&cluster)?;
    assert_eq!(code(&answer["rcpt"][0]), 250, "{answer}");
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    let raw = stored(&cluster, bob, "exempt")?;
    assert!(!raw.contains("Authentication-Results:"), "{raw}");

    let metrics = metrics(&cluster)?;
    for line in [
        "mcluster_inbound_refused_dnsbl_total 1",
        "mcluster_inbound_refused_dmarc_total 1",
        "mcluster_inbound_quarantined_total 1",
    ] {
        assert!(metrics.contains(line), "{line:?} not in metrics");
    }

    // A sender on the allow list is not judged: the same DMARC failure as above is taken, no
    // header. (After the metrics: an attempt before the entry applies counts a refusal.)
    check_loopback_clients(&cluster)?;
    cluster.ctl_ok(&["access", "add", "allow", "*@strict.test"])?;
    let answer = wait_until(Duration::from_secs(10), "the allow entry applied", || {
        Send::new(GOOD, "mallory@strict.test", "allowed sender")
            .run(&cluster)
            .ok()
            .filter(|answer| code(&answer["data"]) == 250)
    })?;
    let raw = stored(&cluster, bob, "allowed sender")?;
    assert!(!raw.contains("Authentication-Results:"), "{answer} {raw}");
    cluster.ctl_ok(&["access", "remove", "allow", "*@strict.test"])?;

    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}

#[test]
fn helo_reverse_dns_and_spf_refusals_when_set_to_reject() -> Result<()> {
    let key = dkim_key()?;
    let stub = DnsStub::start(IpAddr::V4(lab(2)), DNS_PORT, &zone(&key))?;
    let cluster = Cluster::start(
        73,
        2,
        true,
        tuning(
            &stub,
            "dmarc-reject = \"none\"\nspf-fail = \"reject\"\nhelo = \"reject\"\nreverse-dns = \"reject\"\n",
        ),
    )?;
    mail::add_users(&cluster, &["bob"])?;
    check_loopback_clients(&cluster)?;
    let bob = "bob@example.test";

    // A well set up sender gets through.
    let answer = Send::new(LOCALHOST, "alice@good.test", "fine").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    check_results(
        &stored(&cluster, bob, "fine")?,
        &["iprev=pass", "spf=pass", "dmarc=pass"],
    );

    // DMARC p=reject fails, but dmarc-reject = "none": delivered, and the header says so.
    let answer = Send::new(LOCALHOST, "mallory@strict.test", "dmarc none").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    check_results(
        &stored(&cluster, bob, "dmarc none")?,
        &["spf=softfail", "dmarc=fail", "policy.dmarc=reject"],
    );

    // SPF cannot be looked up (SERVFAIL): temperror, never a refusal, even with spf-fail set to
    // reject.
    let answer = Send::new(LOCALHOST, "x@tempfail.test", "spf temperror").run(&cluster)?;
    assert_eq!(code(&answer["data"]), 250, "{answer}");
    check_results(&stored(&cluster, bob, "spf temperror")?, &["spf=temperror"]);

    // SPF -all: refused at MAIL FROM.
    let answer = Send::new(LOCALHOST, "x@hardfail.test", "spf fail").run(&cluster)?;
    assert_eq!(code(&answer["mail"]), 550, "{answer}");
    assert!(
        answer["mail"][1]
            .as_str()
            .unwrap_or_default()
            .contains("5.7.23")
    );

    // HELO names: not a FQDN, our own name, our own address.
    let own_literal = format!("[{}]", cluster.nodes[0].ip());
    for helo in ["localhost", "n1.test", own_literal.as_str()] {
        let mut send = Send::new(LOCALHOST, "alice@good.test", "bad helo");
        send.helo = helo;
        let answer = send.run(&cluster)?;
        assert_eq!(code(&answer["mail"]), 550, "HELO {helo}: {answer}");
        assert!(
            answer["mail"][1]
                .as_str()
                .unwrap_or_default()
                .contains("Helo command rejected"),
            "{answer}"
        );
    }

    // Reverse DNS that does not lead back to the client: refused.
    let answer = Send::new(NO_FCRDNS, "alice@good.test", "rdns").run(&cluster)?;
    assert_eq!(code(&answer["mail"]), 550, "{answer}");
    let text = answer["mail"][1].as_str().unwrap_or_default();
    assert!(text.contains("5.7.25"), "{answer}");

    let metrics = metrics(&cluster)?;
    for line in [
        "mcluster_inbound_refused_spf_total 1",
        "mcluster_inbound_refused_helo_total 3",
        "mcluster_inbound_refused_reverse_dns_total 1",
    ] {
        assert!(metrics.contains(line), "{line:?} not in metrics");
    }
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
