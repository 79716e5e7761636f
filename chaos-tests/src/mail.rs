//! Mail clients for scenarios: the real ones (Python smtplib/poplib through
//! `clients/mailclient.py`, swaks, fetchmail) and a raw line-level probe for protocol transcripts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::Cluster;
use crate::workload::client_script;

pub const DOMAIN: &str = "example.test";
pub const PASSWORD: &str = "correct horse battery staple";

/// Runs `mailclient.py` and returns the JSON it printed (success or `{"error": ...}`).
pub fn python_client(args: &[&str]) -> Result<Value> {
    python_script("mailclient.py", args)
}

/// Runs the Python client `clients/<script>` and returns the JSON object it printed last (its
/// report, also when it failed). The scripts time out every socket operation.
pub fn python_script(script: &str, args: &[&str]) -> Result<Value> {
    let out = Command::new("python3")
        .arg(client_script(script))
        .args(args)
        .output()
        .with_context(|| format!("run python3 {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| {
        format!(
            "{script} {args:?} printed {stdout:?}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `clients/<script> <command> --host <host> --port <port> <args>` against the server at
/// `addr` (host:port); fails on the script's `{"error": ...}`.
fn run_against(script: &str, command: &str, addr: &str, args: &[&str]) -> Result<Value> {
    let (host, port) = addr.rsplit_once(':').context("host:port")?;
    let mut all = vec![command, "--host", host, "--port", port];
    all.extend_from_slice(args);
    let value = python_script(script, &all)?;
    if let Some(err) = value.get("error") {
        bail!("{script} {command} failed: {err}");
    }
    Ok(value)
}

/// One operation of `clients/imap_tool.py` (dump, append, store, expunge, create) as `user`
/// over implicit TLS at `addr`; fails on the tool's `{"error": ...}`.
pub fn imap_tool(addr: &str, user: &str, command: &str, extra: &[&str]) -> Result<Value> {
    let mut args = vec!["--user", user, "--password", PASSWORD];
    args.extend_from_slice(extra);
    run_against("imap_tool.py", command, addr, &args)
}

/// Creates the test domain and `users` (local parts) with [`PASSWORD`].
pub fn add_users(cluster: &Cluster, users: &[&str]) -> Result<()> {
    cluster.ctl_ok(&["domain", "add", DOMAIN])?;
    for user in users {
        let address = format!("{user}@{DOMAIN}");
        cluster.ctl_ok(&["user", "add", &address, "--password", PASSWORD])?;
    }
    Ok(())
}

/// Sends messages `numbers` to `to` through the SMTP server at `addr` in one session (port 25
/// style, no AUTH): message `i` is `Subject: {subject} {i}` with the body `body {i}`. Fails
/// unless every one is answered 250.
pub fn send_numbered(
    addr: &str,
    to: &str,
    numbers: impl IntoIterator<Item = usize>,
    subject: &str,
) -> Result<()> {
    let mut probe = Probe::connect(addr)?;
    probe.reply()?;
    probe.command("EHLO client.test")?;
    for i in numbers {
        for line in [
            "MAIL FROM:<a@remote.test>".to_owned(),
            format!("RCPT TO:<{to}>"),
            "DATA".to_owned(),
        ] {
            probe.command(&line)?;
        }
        probe.send_raw(format!("Subject: {subject} {i}\r\n\r\nbody {i}\r\n.\r\n").as_bytes())?;
        let reply = probe.reply()?;
        if !reply.starts_with("250") {
            bail!("message {i} through {addr}: {reply}");
        }
    }
    Ok(())
}

/// Sends one message with smtplib; returns the server's reply to DATA (code, text).
pub fn smtp_send(
    addr: &str,
    mode: &str,
    login: Option<&str>,
    to: &str,
    subject: &str,
) -> Result<(u64, String)> {
    // An authenticated user sends as itself (the sender must match the login).
    let from = login.unwrap_or("sender@remote.test");
    let mut args = vec![
        "--mode",
        mode,
        "--from",
        from,
        "--to",
        to,
        "--subject",
        subject,
    ];
    if let Some(user) = login {
        args.extend(["--user", user, "--password", PASSWORD]);
    }
    let value = run_against("mailclient.py", "send", addr, &args)?;
    Ok((
        value["code"].as_u64().context("code")?,
        value["reply"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// Reads a maildrop with poplib (optionally deleting everything at QUIT).
pub fn pop3_fetch(addr: &str, mode: &str, user: &str, delete_all: bool) -> Result<Value> {
    let mut args = vec!["--mode", mode, "--user", user, "--password", PASSWORD];
    if delete_all {
        args.push("--delete-all");
    }
    run_against("mailclient.py", "pop3", addr, &args)
}

/// Every message in `user`'s maildrop with its text (`raw`), read over POP3 with STLS.
pub fn pop3_raw(addr: &str, user: &str) -> Result<Vec<Value>> {
    let args = [
        "--mode",
        "stls",
        "--user",
        user,
        "--password",
        PASSWORD,
        "--raw",
    ];
    let value = run_against("mailclient.py", "pop3", addr, &args)?;
    Ok(value["messages"].as_array().cloned().unwrap_or_default())
}

/// The subjects of the messages a POP3 listing returned.
pub fn subjects(listing: &Value) -> Vec<String> {
    listing["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| m["subject"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A raw SMTP/POP3 connection for transcripts: send lines, read replies.
pub struct Probe {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Probe {
    pub fn connect(addr: &str) -> Result<Probe> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Probe {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).context("send")
    }

    /// One SMTP reply (all its lines), joined with '\n'.
    pub fn reply(&mut self) -> Result<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed after {lines:?}");
            }
            let line = line.trim_end().to_owned();
            let last = line.len() < 4 || line.as_bytes()[3] != b'-';
            lines.push(line);
            if last {
                return Ok(lines.join("\n"));
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub fn command(&mut self, line: &str) -> Result<String> {
        self.send_raw(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// True once the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

/// Whether a program is on PATH (swaks, fetchmail).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
