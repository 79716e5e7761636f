//! Abuse protection seen from the internet: a client namespace that is not local (the lab's
//! client, 10.77.S.200) attacks the VIP with real smtplib sessions while a legitimate client
//! (the observer, .201) uses the service. Relaying is refused, a password-guessing loop is
//! slowed and locked out of the account it guessed at, then out of every account, without
//! ever stopping the account's owner at another address (the lockouts survive a failover, and
//! one an operator lifts is lifted on every node at once), and a connection flood is cut to
//! the per-IP rate while the other client is still served.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use chaos_tests::cluster::{Cluster, wait_until};
use chaos_tests::lab::{Host, Lab};
use chaos_tests::mail::{DOMAIN, PASSWORD, add_users};
use chaos_tests::scenario::wait_vip_holder;
use chaos_tests::workload::client_script;
use serde_json::Value;

const SUBNET: u8 = 80;

/// Runs a client script in `host`'s namespace; its JSON answer.
fn run(lab: &Lab, host: Host, script: &str, args: &[&str]) -> Result<Value> {
    let output = lab
        .command(host, "timeout")
        .args(["120", "python3"])
        .arg(client_script(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {script}"))?;
    parse(script, args, &output)
}

fn parse(script: &str, args: &[&str], output: &Output) -> Result<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value: Value = serde_json::from_str(stdout.trim()).with_context(|| {
        format!(
            "{script} {args:?} printed {stdout:?}; stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    ensure!(value.get("error").is_none(), "{script} {args:?}: {value}");
    Ok(value)
}

/// The answers to one login per password, from `host`, through the VIP.
fn logins(lab: &Lab, host: Host, user: &str, passwords: &[&str]) -> Result<Vec<Value>> {
    logins_at(lab, host, &lab.vip().to_string(), user, passwords)
}

/// As `logins`, to the mail service at `address`.
fn logins_at(
    lab: &Lab,
    host: Host,
    address: &str,
    user: &str,
    passwords: &[&str],
) -> Result<Vec<Value>> {
    let mut args = vec!["login", "--host", address, "--user", user];
    for password in passwords {
        args.extend(["--password", password]);
    }
    let answer = run(lab, host, "abuse.py", &args)?;
    Ok(answer["attempts"].as_array().context("attempts")?.to_vec())
}

fn code(answer: &Value) -> u64 {
    answer["code"].as_u64().unwrap_or(0)
}

/// The answer to a login refused by a lockout: it says so, whatever the password.
#[track_caller]
fn assert_locked(answer: &Value) {
    assert_eq!(code(answer), 454, "{answer}");
    assert!(
        answer["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Too many failed logins"),
        "{answer}"
    );
}

#[test]
fn abuse_from_outside_is_refused_slowed_and_locked_out() -> Result<()> {
    let mut cluster = Cluster::start_pair_with_vip(SUBNET)?;
    add_users(&cluster, &["alice", "bob"])?;
    let alice = format!("alice@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    // The default policy (the lab's own exemption removed), with low lockout thresholds so the
    // guessing loop stays short; the rate limit and the delay are the defaults.
    cluster.ctl_ok(&[
        "protection",
        "set",
        "exempt-networks=127.0.0.0/8,::1/128",
        "account-lockout-failures=4",
        "ip-lockout-failures=7",
    ])?;
    let holder = wait_vip_holder(&cluster, None)?;
    let lab = cluster.expect_lab();
    let vip = lab.vip().to_string();
    let attacker = lab.ip(Host::Client).to_string();

    // No open relay: port 25 without AUTH takes mail for local users only.
    let relay = run(
        lab,
        Host::Client,
        "abuse.py",
        &[
            "relay",
            "--host",
            &vip,
            "--from",
            "spammer@attacker.example",
            "--to",
            "victim@elsewhere.example",
        ],
    )?;
    assert_eq!(code(&relay["mail"]), 250, "{relay}");
    assert_eq!(code(&relay["rcpt"]), 554, "{relay}");
    assert!(
        relay["rcpt"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Relay access denied"),
        "{relay}"
    );

    // A user sends as itself only.
    let spoof = run(
        lab,
        Host::Client,
        "abuse.py",
        &[
            "spoof",
            "--host",
            &vip,
            "--user",
            &alice,
            "--password",
            PASSWORD,
            "--from",
            &bob,
        ],
    )?;
    assert_eq!(code(&spoof["mail"]), 553, "{spoof}");

    // Guessing alice's password: every failure costs a second, and the fourth locks the
    // attacker's address out of the account, so even the right password is refused from there
    // after it, with an answer that says why.
    let guesses = logins(
        lab,
        Host::Client,
        &alice,
        &["123456", "password", "alice2026", "letmein", PASSWORD],
    )?;
    for (i, answer) in guesses[..4].iter().enumerate() {
        assert_eq!(code(answer), 535, "attempt {i}: {guesses:?}");
        let secs = answer["secs"].as_f64().unwrap_or(0.0);
        assert!(
            secs >= 0.9,
            "attempt {i} answered after {secs} s: {guesses:?}"
        );
    }
    assert_locked(&guesses[4]);
    // The owner, from another address, is not locked out by the guesser.
    let alice_elsewhere = logins(lab, Host::Observer, &alice, &[PASSWORD])?;
    assert_eq!(code(&alice_elsewhere[0]), 235, "{alice_elsewhere:?}");
    // An account that does not exist fails the same way (same answer, same delay).
    let ghost = logins(
        lab,
        Host::Client,
        &format!("ghost@{DOMAIN}"),
        &["x", "y", "z"],
    )?;
    for answer in &ghost {
        assert_eq!(
            answer["text"], guesses[0]["text"],
            "{ghost:?} vs {guesses:?}"
        );
        assert!(answer["secs"].as_f64().unwrap_or(0.0) >= 0.9, "{ghost:?}");
    }
    // Seven failures from the attacker's address (four at alice, three at ghost) lock it out
    // of every account: bob's right password is refused from there, and works from elsewhere.
    let from_attacker = logins(lab, Host::Client, &bob, &[PASSWORD])?;
    assert_locked(&from_attacker[0]);
    let from_observer = logins(lab, Host::Observer, &bob, &[PASSWORD])?;
    assert_eq!(code(&from_observer[0]), 235, "{from_observer:?}");

    // Both lockouts are replicated state...
    let attacker_target = format!("ip:{attacker}");
    let alice_target = format!("account:{alice},ip:{attacker}");
    wait_until(Duration::from_secs(10), "both lockouts committed", || {
        let listed = cluster.ctl_ok(&["lockouts", "list", "--json"]).ok()?;
        let listed: Vec<Value> = serde_json::from_str(&listed).ok()?;
        let targets: Vec<&str> = listed.iter().filter_map(|l| l["target"].as_str()).collect();
        (targets.contains(&attacker_target.as_str()) && targets.contains(&alice_target.as_str()))
            .then_some(())
    })?;
    // ...so a failover, which loses the old leader's counters, keeps them.
    cluster.kill(holder)?;
    let new_holder = wait_vip_holder(&cluster, Some(holder))?;
    let lab = cluster.expect_lab();
    let after = logins(lab, Host::Client, &bob, &[PASSWORD])?;
    assert_locked(&after[0]);
    let alice_after = logins(lab, Host::Observer, &alice, &[PASSWORD])?;
    assert_eq!(
        code(&alice_after[0]),
        235,
        "node {new_holder}: {alice_after:?}"
    );
    // The old holder comes back and catches up.
    cluster.start_node(holder)?;
    cluster.wait_ready(holder, Duration::from_secs(60))?;
    let lab = cluster.expect_lab();
    // An operator lifts the IP's lockout, and then alice's: each is lifted at once, through
    // the VIP and on every data node.
    cluster.ctl_ok(&["lockouts", "remove", &attacker_target])?;
    let lifted = logins(lab, Host::Client, &bob, &[PASSWORD])?;
    assert_eq!(code(&lifted[0]), 235, "{lifted:?}");
    let still = logins(lab, Host::Client, &alice, &[PASSWORD])?;
    assert_locked(&still[0]);
    cluster.ctl_ok(&["lockouts", "remove", &format!("account:{alice}")])?;
    let nodes = [holder, new_holder].map(|i| lab.ip(Host::Node(i)).to_string());
    for address in [vip.as_str(), nodes[0].as_str(), nodes[1].as_str()] {
        let lifted = logins_at(lab, Host::Client, address, &alice, &[PASSWORD])?;
        assert_eq!(code(&lifted[0]), 235, "{address}: {lifted:?}");
    }

    // A connection flood from the attacker gets port 25's default budget of 60 connections a
    // minute (the logins above took a few of them), while the observer's mail still goes
    // through.
    let flood = lab
        .command(Host::Client, "timeout")
        .args(["120", "python3"])
        .arg(client_script("abuse.py"))
        .args([
            "flood",
            "--host",
            &vip,
            "--count",
            "100",
            "--deadline",
            "60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("start the flood")?;
    let started = Instant::now();
    let legit = run(
        lab,
        Host::Observer,
        "mailclient.py",
        &[
            "send",
            "--host",
            &vip,
            "--port",
            "25",
            "--mode",
            "plain",
            "--from",
            "friend@partner.example",
            "--to",
            &alice,
            "--subject",
            "during the flood",
        ],
    )?;
    assert_eq!(legit["code"], 250, "{legit}");
    let output = flood.wait_with_output().context("wait for the flood")?;
    let flood = parse("abuse.py", &["flood"], &output)?;
    let greetings: Vec<&str> = flood["greetings"]
        .as_array()
        .context("greetings")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let served = greetings.iter().filter(|g| g.starts_with("220")).count();
    let limited = greetings
        .iter()
        .filter(|g| g.starts_with("421 4.7.0 Too many connections per minute"))
        .count();
    eprintln!(
        "flood: {served} of 100 served, {limited} refused in {:?}; guesses answered after {:?} s",
        started.elapsed(),
        guesses
            .iter()
            .map(|g| g["secs"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(greetings.len(), 100, "{greetings:?}");
    assert_eq!(served + limited, 100, "{greetings:?}");
    // 60 a minute, less the logins since the failover, plus what refilled during the flood.
    let budget = 60;
    let refilled = (started.elapsed().as_secs_f64() * budget as f64 / 60.0).ceil() as usize;
    assert!(
        (budget - 8..=budget + refilled).contains(&served),
        "{served} of 100 connections served in {:?}: {greetings:?}",
        started.elapsed()
    );
    Ok(())
}
