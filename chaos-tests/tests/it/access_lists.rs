//! Block and allow lists from outside: an operator adds entries with `mclusterctl access`, and
//! real smtplib, poplib and imaplib clients connecting from chosen loopback source addresses
//! (127.0.77.x) see the refusals on every data node. The lists are replicated: the node that
//! takes over after the leader is killed enforces them, and takes new entries.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chaos_tests::cluster::{Cluster, Node, NodeTuning, wait_until};
use chaos_tests::mail::{DOMAIN, add_users, python_script};
use serde_json::Value;

const SUBNET: u8 = 76;

/// Sources inside the blocked 127.0.77.0/28, one of them on the allow list.
const BLOCKED: &str = "127.0.77.10";
const ALLOWED: &str = "127.0.77.11";
/// Sources outside it.
const OTHER: &str = "127.0.77.20";
const TEMPORARY: &str = "127.0.77.40";

/// One SMTP session to `node` from `source`; the answer to each step it reached.
fn smtp(node: &Node, source: &str, helo: &str, from: &str, to: &[&str]) -> Result<Value> {
    let port = node.ports.smtp.to_string();
    let mut args = vec![
        "smtp",
        "--host",
        node.ip(),
        "--port",
        &port,
        "--source",
        source,
        "--helo",
        helo,
        "--from",
        from,
    ];
    for rcpt in to {
        args.extend(["--to", rcpt]);
    }
    let answer = python_script("access_probe.py", &args)?;
    if let Some(err) = answer.get("error") {
        bail!("access_probe.py {args:?}: {err}");
    }
    Ok(answer)
}

/// The greeting a POP3 or IMAP client from `source` gets.
fn greeting(node: &Node, source: &str, protocol: &str) -> Result<String> {
    let port = match protocol {
        "pop3" => node.ports.pop3,
        _ => node.ports.imap,
    }
    .to_string();
    let args = [
        "greeting",
        "--host",
        node.ip(),
        "--port",
        &port,
        "--source",
        source,
        "--protocol",
        protocol,
    ];
    let answer = python_script("access_probe.py", &args)?;
    answer["greeting"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("access_probe.py {args:?}: {answer}"))
}

fn code(answer: &Value, step: &str) -> u64 {
    answer[step]["code"].as_u64().unwrap_or(0)
}

fn text(answer: &Value, step: &str) -> String {
    answer[step]["text"].as_str().unwrap_or_default().to_owned()
}

fn alice() -> String {
    format!("alice@{DOMAIN}")
}

/// Waits (bounded) until a plain session from `source` to `node` is refused at connect with
/// 554 5.7.1 and `reason`: the entry may reach a follower a moment after the add returns.
fn wait_refused(node: &Node, source: &str, reason: &str) -> Result<()> {
    let to = alice();
    wait_until(
        Duration::from_secs(20),
        "connection refused by the block list",
        || {
            let answer = smtp(
                node,
                source,
                "client.example",
                "sender@remote.example",
                &[&to],
            )
            .ok()?;
            (code(&answer, "connect") == 554 && text(&answer, "connect").contains(reason))
                .then_some(())
        },
    )
    .with_context(|| format!("{source} to {}", node.name))
}

/// Waits (bounded) until a session from `source` to `node` delivers a message to alice.
fn wait_served(node: &Node, source: &str) -> Result<()> {
    let to = alice();
    wait_until(Duration::from_secs(30), "message accepted", || {
        let answer = smtp(
            node,
            source,
            "client.example",
            "sender@remote.example",
            &[&to],
        )
        .ok()?;
        (code(&answer, "data") == 250).then_some(())
    })
    .with_context(|| format!("{source} to {}", node.name))
}

/// Node `i`'s `/metrics` text.
fn metrics(cluster: &Cluster, i: usize) -> Result<String> {
    cluster
        .api
        .get_text_from(&cluster.nodes[i].admin_url(), "/metrics")
}

/// The value of the metric line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix)?.trim().parse().ok())
}

#[test]
fn block_and_allow_lists_hold_on_every_node_and_across_a_failover() -> Result<()> {
    let mut cluster = Cluster::start(SUBNET, 2, true, NodeTuning::default())?;
    add_users(&cluster, &["alice", "bob"])?;
    let bob = format!("bob@{DOMAIN}");
    for i in 0..2 {
        wait_served(&cluster.nodes[i], BLOCKED)?;
    }

    // A bad pattern is refused with the reason, and nothing is added.
    let bad = cluster.ctl(&["access", "add", "block", "127.0.77.10/28"])?;
    ensure!(!bad.status.success(), "a CIDR with host bits was accepted");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    ensure!(stderr.contains("did you mean 127.0.77.0/28"), "{stderr}");

    // A blocked network is refused at connect on every data node and every protocol; a
    // client outside it is served. An allow entry wins over the block.
    cluster.ctl_ok(&[
        "access",
        "add",
        "block",
        "127.0.77.0/28",
        "--comment",
        "spam source",
    ])?;
    cluster.ctl_ok(&["access", "add", "allow", ALLOWED])?;
    for i in 0..2 {
        let node = &cluster.nodes[i];
        wait_refused(node, BLOCKED, "spam source")?;
        wait_served(node, ALLOWED)?;
        wait_served(node, OTHER)?;
    }
    let pop3 = greeting(&cluster.nodes[0], BLOCKED, "pop3")?;
    ensure!(
        pop3.contains("-ERR") && pop3.contains("spam source"),
        "{pop3}"
    );
    let imap = greeting(&cluster.nodes[1], BLOCKED, "imap")?;
    ensure!(
        imap.contains("BYE") && imap.contains("spam source"),
        "{imap}"
    );
    ensure!(greeting(&cluster.nodes[0], OTHER, "pop3")?.starts_with("+OK"));
    let listed = cluster.ctl_ok(&["access", "list"])?;
    ensure!(
        listed.contains("127.0.77.0/28") && listed.contains("spam source"),
        "{listed}"
    );
    let listed: Value =
        serde_json::from_str(&cluster.ctl_ok(&["access", "list", "allow", "--json"])?)?;
    ensure!(
        listed.as_array().map(Vec::len) == Some(1) && listed[0]["pattern"] == ALLOWED,
        "{listed}"
    );

    // Senders, HELO names and recipients.
    cluster.ctl_ok(&["access", "add", "block", "*@spam.example"])?;
    cluster.ctl_ok(&["access", "add", "allow", "good@spam.example"])?;
    cluster.ctl_ok(&["access", "add", "allow", "*@partner.bad.example"])?;
    cluster.ctl_ok(&["access", "add", "block", "*.bad.example"])?;
    cluster.ctl_ok(&["access", "add", "block", DOMAIN])?;
    cluster.ctl_ok(&[
        "access",
        "add",
        "block",
        &bob,
        "--comment",
        "mailbox closed",
    ])?;
    // Entries apply in log order: once the last one is enforced on node 1, so are the others.
    let node = &cluster.nodes[0];
    let to = alice();
    let answer = wait_until(Duration::from_secs(20), "recipient refused", || {
        let answer = smtp(
            node,
            OTHER,
            "client.example",
            "y@remote.example",
            &[&bob, &to],
        )
        .ok()?;
        (answer["rcpt"][0]["code"] == 550).then_some(answer)
    })?;
    ensure!(
        answer["rcpt"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("5.7.1") && t.contains("mailbox closed")),
        "{answer}"
    );
    ensure!(answer["rcpt"][1]["code"] == 250, "{answer}");
    let answer = smtp(node, OTHER, "client.example", "x@spam.example", &[&to])?;
    ensure!(
        code(&answer, "mail") == 553 && text(&answer, "mail").contains("5.7.1"),
        "{answer}"
    );
    // The allowed sender, and any sender from the allowed client, get through.
    let answer = smtp(node, OTHER, "client.example", "good@spam.example", &[&to])?;
    ensure!(code(&answer, "data") == 250, "{answer}");
    let answer = smtp(node, ALLOWED, "client.example", "x@spam.example", &[&to])?;
    ensure!(code(&answer, "data") == 250, "{answer}");
    // A domain entry blocks senders of that domain too, but the allowed ones.
    let answer = smtp(node, OTHER, "client.example", "x@mx.bad.example", &[&to])?;
    ensure!(code(&answer, "mail") == 553, "{answer}");
    let answer = smtp(
        node,
        OTHER,
        "client.example",
        "x@partner.bad.example",
        &[&to],
    )?;
    ensure!(code(&answer, "data") == 250, "{answer}");
    let answer = smtp(node, OTHER, "mx.bad.example", "y@remote.example", &[&to])?;
    ensure!(
        code(&answer, "helo") == 550 && text(&answer, "helo").contains("5.7.1"),
        "{answer}"
    );
    // Our own domain as a sender from outside is refused (a spoof); our users, once
    // authenticated, are never refused by the sender lists.
    let answer = smtp(node, OTHER, "client.example", &bob, &[&to])?;
    ensure!(code(&answer, "mail") == 553, "{answer}");
    let (status, reply) = chaos_tests::mail::smtp_send(
        &node.submission_addr(),
        "starttls",
        Some(&to),
        &to,
        "from an authenticated user",
    )?;
    ensure!(status == 250, "{status} {reply}");

    // A temporary entry stops matching when it expires.
    cluster.ctl_ok(&[
        "access",
        "add",
        "block",
        TEMPORARY,
        "--expires",
        "6s",
        "--comment",
        "cool off",
    ])?;
    wait_refused(&cluster.nodes[0], TEMPORARY, "cool off")?;
    wait_served(&cluster.nodes[0], TEMPORARY)?;
    let active = cluster.ctl_ok(&["access", "list", "block"])?;
    ensure!(!active.contains(TEMPORARY), "{active}");
    let all = cluster.ctl_ok(&["access", "list", "--all"])?;
    ensure!(
        all.contains(TEMPORARY) && all.contains("(expired)"),
        "{all}"
    );

    let text = metrics(&cluster, 0)?;
    let blocked = metric(
        &text,
        "mcluster_block_list_refused_total{what=\"connection\"}",
    );
    ensure!(blocked.is_some_and(|n| n >= 2), "{text}");
    ensure!(
        metric(&text, "mcluster_block_list_refused_total{what=\"sender\"}").is_some_and(|n| n >= 1),
        "{text}"
    );

    // Kill the leader (once it is a data node): the other data node enforces the lists, and
    // takes a new entry as the new leader.
    let leader = wait_until(Duration::from_secs(30), "a data node leads", || {
        let id = cluster.current_leader()?;
        let i = cluster.index_of(id);
        (cluster.nodes[i].role == "data").then_some(i)
    })?;
    let survivor = 1 - leader;
    cluster.kill(leader)?;
    wait_until(Duration::from_secs(30), "the survivor leads", || {
        let id = cluster.current_leader()?;
        (cluster.index_of(id) == survivor).then_some(())
    })?;
    wait_refused(&cluster.nodes[survivor], BLOCKED, "spam source")?;
    wait_served(&cluster.nodes[survivor], ALLOWED)?;
    cluster.ctl_ok(&["access", "remove", "allow", ALLOWED])?;
    wait_refused(&cluster.nodes[survivor], ALLOWED, "spam source")?;

    // The killed node comes back with the lists, the change made without it included.
    cluster.start_node(leader)?;
    cluster.wait_ready(leader, Duration::from_secs(60))?;
    wait_refused(&cluster.nodes[leader], ALLOWED, "spam source")?;
    wait_refused(&cluster.nodes[leader], BLOCKED, "spam source")?;

    // Removing the block serves the network again.
    cluster.ctl_ok(&["access", "remove", "block", "127.0.77.0/28"])?;
    let gone = cluster.ctl(&["access", "remove", "block", "127.0.77.0/28"])?;
    ensure!(!gone.status.success(), "removing twice succeeded");
    for i in 0..2 {
        wait_served(&cluster.nodes[i], BLOCKED)?;
    }
    cluster.check_no_unexpected_errors(&[]);
    Ok(())
}
