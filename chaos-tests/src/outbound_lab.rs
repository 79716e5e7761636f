//! The outbound lab: a DNS stub (`clients/dns_stub.py`) that serves MX, A and AAAA records to
//! the delivery engine, and SMTP sinks (`clients/smtp_sink.py`) that accept, tempfail, permfail
//! or delay mail and record every transaction and connection, so tests can count deliveries,
//! duplicates and the connections that carried them.
//!
//! Both listen only on loopback addresses (127.0.0.0/8); each runs as a child process that is
//! stopped by its PID when its handle is dropped.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long a stub or sink gets to print its ready line (the sink makes an RSA key first).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process gets after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The Python modules the lab's scripts import.
const MODULES: &str = "import aiosmtpd, dnslib";

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(name)
}

/// The Python that has aiosmtpd and dnslib: `$MCLUSTER_PYTHON`, else `python3` on the PATH, else
/// the system's `/usr/bin/python3` (where Debian's python3-aiosmtpd and python3-dnslib go when a
/// pyenv or venv `python3` comes first on the PATH).
pub fn python() -> Result<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let mut candidates: Vec<PathBuf> = Vec::new();
            if let Some(path) = std::env::var_os("MCLUSTER_PYTHON") {
                candidates.push(path.into());
            }
            candidates.push("python3".into());
            candidates.push("/usr/bin/python3".into());
            for candidate in &candidates {
                let ok = Command::new(candidate)
                    .args(["-c", MODULES])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success());
                if ok {
                    return Ok(candidate.clone());
                }
            }
            Err(format!(
                "no Python among {candidates:?} imports aiosmtpd and dnslib \
                 (apt-get install python3-aiosmtpd python3-dnslib, or set MCLUSTER_PYTHON)"
            ))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A lab script running as a child process, with its working directory.
struct LabProcess {
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
    stopped: bool,
}

impl LabProcess {
    /// Starts `clients/<name>` with `args` and waits up to [`READY_TIMEOUT`] for the JSON line
    /// with `"ready": true` it prints once it listens.
    fn start(name: &'static str, dir: tempfile::TempDir, args: &[String]) -> Result<(Self, Value)> {
        let stderr = File::create(dir.path().join("stderr.log")).context("create stderr.log")?;
        let mut child = Command::new(python()?)
            .arg(script(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut process = LabProcess {
            name,
            child,
            dir,
            stopped: false,
        };
        // The reader keeps draining stdout after the ready line, so the child never blocks on a
        // full pipe; it ends when the child closes stdout.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(value) = serde_json::from_str::<Value>(&line)
                    && value["ready"] == Value::Bool(true)
                {
                    let _ = tx.send(value);
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(ready) => Ok((process, ready)),
            Err(err) => {
                let status = process.child.try_wait().ok().flatten();
                let stderr = process.stderr();
                let _ = process.stop();
                bail!(
                    "{name} did not report ready ({err}; exit status {status:?}); stderr: {stderr}"
                )
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// SIGTERM by PID, then SIGKILL if it outlives [`STOP_GRACE`]; reaps the child either way.
    fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("Linux pids fit in i32"));
        if self.child.try_wait().context("poll child")?.is_some() {
            bail!("{} (pid {pid}) had already exited", self.name);
        }
        kill(pid, Signal::SIGTERM).with_context(|| format!("send SIGTERM to {}", self.name))?;
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait().context("poll child")?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = kill(pid, Signal::SIGKILL);
        self.child.wait().context("reap child")?;
        bail!(
            "{} (pid {pid}) outlived SIGTERM by {STOP_GRACE:?} and was killed",
            self.name
        )
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("outbound lab: {err:#}");
        }
    }
}

fn ensure_loopback(ip: IpAddr) -> Result<()> {
    ensure!(
        ip.is_loopback(),
        "the outbound lab listens only on loopback addresses, not {ip}"
    );
    Ok(())
}

fn ready_addr(ready: &Value) -> Result<SocketAddr> {
    let host: IpAddr = ready["host"]
        .as_str()
        .context("ready line has no host")?
        .parse()
        .context("parse ready host")?;
    let port = ready["port"].as_u64().context("ready line has no port")?;
    Ok(SocketAddr::new(
        host,
        u16::try_from(port).context("port fits u16")?,
    ))
}

fn read_json_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("read {}", path.display())),
    };
    // A line being written as we read has no newline yet: leave it for the next read.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("parse {line:?}")))
        .collect()
}

/// The records the DNS stub serves. Names match without case and without the trailing dot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Zone {
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u32>,
    records: BTreeMap<String, ZoneEntry>,
    servfail: Vec<String>,
    timeout: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct ZoneEntry {
    #[serde(rename = "MX", skip_serializing_if = "Vec::is_empty")]
    mx: Vec<(u16, String)>,
    #[serde(rename = "A", skip_serializing_if = "Vec::is_empty")]
    a: Vec<Ipv4Addr>,
    #[serde(rename = "AAAA", skip_serializing_if = "Vec::is_empty")]
    aaaa: Vec<Ipv6Addr>,
    #[serde(rename = "TXT", skip_serializing_if = "Vec::is_empty")]
    txt: Vec<String>,
}

impl Zone {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// An MX record for `domain` pointing at `host` with `preference` (lower is tried first).
    pub fn mx(mut self, domain: &str, preference: u16, host: &str) -> Self {
        self.entry(domain).mx.push((preference, host.to_owned()));
        self
    }

    pub fn a(mut self, name: &str, ip: Ipv4Addr) -> Self {
        self.entry(name).a.push(ip);
        self
    }

    pub fn aaaa(mut self, name: &str, ip: Ipv6Addr) -> Self {
        self.entry(name).aaaa.push(ip);
        self
    }

    /// A TXT record (SPF, DKIM key, DMARC policy, a DNS list's reason) for `name`.
    pub fn txt(mut self, name: &str, text: &str) -> Self {
        self.entry(name).txt.push(text.to_owned());
        self
    }

    /// Every query for `name` is answered SERVFAIL.
    pub fn servfail(mut self, name: &str) -> Self {
        self.servfail.push(name.to_owned());
        self
    }

    /// Every query for `name` goes unanswered.
    pub fn timeout(mut self, name: &str) -> Self {
        self.timeout.push(name.to_owned());
        self
    }

    fn entry(&mut self, name: &str) -> &mut ZoneEntry {
        self.records
            .entry(name.trim_end_matches('.').to_lowercase())
            .or_default()
    }
}

/// One query the DNS stub received, and what it did: `"NOERROR <n answers>"`, `"NXDOMAIN"`,
/// `"SERVFAIL"`, `"timeout"` (no answer) or `"unparsable: ..."`.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsQuery {
    pub time: f64,
    pub transport: String,
    pub peer: String,
    pub qname: Option<String>,
    pub qtype: Option<String>,
    pub action: String,
}

/// A running DNS stub, serving UDP and TCP on one loopback address and port.
pub struct DnsStub {
    process: LabProcess,
    addr: SocketAddr,
}

impl DnsStub {
    /// Starts a stub serving `zone` on `ip` (a loopback address) and `port` (0 picks one).
    pub fn start(ip: IpAddr, port: u16, zone: &Zone) -> Result<Self> {
        ensure_loopback(ip)?;
        let dir = tempfile::tempdir().context("make dns stub dir")?;
        let zone_path = dir.path().join("zone.json");
        fs::write(&zone_path, serde_json::to_vec_pretty(zone)?).context("write zone")?;
        let args = vec![
            "--zone".to_owned(),
            zone_path.display().to_string(),
            "--log".to_owned(),
            dir.path().join("queries.jsonl").display().to_string(),
            "--host".to_owned(),
            ip.to_string(),
            "--port".to_owned(),
            port.to_string(),
        ];
        let (process, ready) = LabProcess::start("dns_stub.py", dir, &args)?;
        let addr = ready_addr(&ready)?;
        Ok(Self { process, addr })
    }

    /// Where it listens, for UDP and TCP alike.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Every query so far, oldest first.
    pub fn queries(&self) -> Result<Vec<DnsQuery>> {
        read_json_lines(&self.process.dir.path().join("queries.jsonl"))
    }

    /// Stops the stub now (Drop does the same, but cannot report a failure).
    pub fn stop(mut self) -> Result<()> {
        self.process.stop()
    }
}

/// Where in a transaction a sink rule applies, or a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
}

#[derive(Debug, Clone, Serialize)]
struct SinkRule {
    at: Stage,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    reply: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    first: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
struct SinkAuth {
    user: String,
    password: String,
}

/// How an SMTP sink behaves. The default accepts everything, at once, without TLS or AUTH.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkSpec {
    rules: Vec<SinkRule>,
    delay: f64,
    greeting_delay: f64,
    starttls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<SinkAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<f64>,
}

impl SinkSpec {
    pub fn accept_all() -> Self {
        Self::default()
    }

    /// At `stage`, answer `reply` (e.g. "451 4.3.0 try later") whenever the address matches
    /// the regex `pattern` (the sender at MAIL, the recipient at RCPT, any accepted recipient at
    /// DATA; `None` matches all). Rules are tried in order; the first that applies answers.
    pub fn reply(mut self, stage: Stage, pattern: Option<&str>, reply: &str) -> Self {
        self.rules.push(SinkRule {
            at: stage,
            pattern: pattern.map(str::to_owned),
            reply: reply.to_owned(),
            first: None,
        });
        self
    }

    /// Like [`SinkSpec::reply`], but only the first `n` times the rule matches over the sink's
    /// life; after that the command is accepted (unless a later rule applies).
    pub fn reply_first(mut self, n: u32, stage: Stage, pattern: Option<&str>, reply: &str) -> Self {
        self.rules.push(SinkRule {
            at: stage,
            pattern: pattern.map(str::to_owned),
            reply: reply.to_owned(),
            first: Some(n),
        });
        self
    }

    /// Wait this long before each reply to MAIL, RCPT and DATA.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay.as_secs_f64();
        self
    }

    /// Wait this long before the 220 greeting.
    pub fn greeting_delay(mut self, delay: Duration) -> Self {
        self.greeting_delay = delay.as_secs_f64();
        self
    }

    /// Offer STARTTLS with a self-signed certificate made at start ([`SmtpSink::cert`]).
    pub fn starttls(mut self) -> Self {
        self.starttls = true;
        self
    }

    /// Drop a connection whose client has said nothing for `timeout` (default 60 s), without a
    /// reply, as a server that closes idle connections does.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout.as_secs_f64());
        self
    }

    /// Offer AUTH PLAIN and LOGIN (also without TLS) and refuse MAIL until `user` logged in.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some(SinkAuth {
            user: user.to_owned(),
            password: password.to_owned(),
        });
        self
    }
}

/// A recipient a sink refused at RCPT, and the reply it gave.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefusedRcpt {
    pub rcpt: String,
    pub reply: String,
}

/// One transaction a sink saw, recorded when it ended: at DATA's reply (`stage` Data), at a
/// refused MAIL (Mail), or without DATA after RCPT (Rcpt; `reply` says how it ended).
#[derive(Debug, Clone, Deserialize)]
pub struct SinkRecord {
    pub time: f64,
    pub peer: Option<String>,
    /// The connection it came on, numbered from 1 in the order the sink accepted them.
    pub connection: Option<u64>,
    pub helo: Option<String>,
    pub tls: bool,
    pub auth_user: Option<String>,
    pub mail_from: Option<String>,
    /// The recipients accepted at RCPT.
    pub rcpts: Vec<String>,
    pub refused_rcpts: Vec<RefusedRcpt>,
    pub data_sha256: Option<String>,
    pub size: Option<u64>,
    pub message_id: Option<String>,
    pub stage: Stage,
    pub reply: String,
}

impl SinkRecord {
    /// The message was accepted for [`SinkRecord::rcpts`]: DATA answered 2xx.
    pub fn delivered(&self) -> bool {
        self.stage == Stage::Data && self.reply.starts_with('2')
    }

    /// The reply's three-digit code, if it has one.
    pub fn code(&self) -> Option<u16> {
        self.reply.get(..3)?.parse().ok()
    }
}

/// One connection a sink accepted, recorded when it ended.
#[derive(Debug, Clone, Deserialize)]
pub struct SinkConnection {
    /// The number [`SinkRecord::connection`] refers to.
    pub connection: u64,
    pub peer: Option<String>,
    pub opened: f64,
    pub closed: f64,
    /// How many transactions were recorded on it.
    pub transactions: u64,
    pub rsets: u64,
    /// The client said QUIT (rather than dropping the connection or being dropped).
    pub quit: bool,
}

/// The delivered transactions among `records`, by Message-ID (those without one are left out).
pub fn deliveries_by_message_id(records: &[SinkRecord]) -> BTreeMap<String, Vec<SinkRecord>> {
    let mut by_id: BTreeMap<String, Vec<SinkRecord>> = BTreeMap::new();
    for record in records.iter().filter(|r| r.delivered()) {
        if let Some(id) = &record.message_id {
            by_id.entry(id.clone()).or_default().push(record.clone());
        }
    }
    by_id
}

/// A message delivered to one recipient more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub message_id: String,
    pub rcpt: String,
    pub n_deliveries: usize,
}

/// Every (Message-ID, recipient) delivered more than once among `records`. A message split over
/// several transactions, one per recipient, is not a duplicate. Pass the records of all the
/// sinks a domain's MX hosts run on, since a retry may go to another host.
pub fn duplicates(records: &[SinkRecord]) -> Vec<Duplicate> {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (id, deliveries) in deliveries_by_message_id(records) {
        for record in deliveries {
            for rcpt in &record.rcpts {
                *counts.entry((id.clone(), rcpt.to_lowercase())).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((message_id, rcpt), n_deliveries)| Duplicate {
            message_id,
            rcpt,
            n_deliveries,
        })
        .collect()
}

/// A running SMTP sink on one loopback address and port.
pub struct SmtpSink {
    process: LabProcess,
    addr: SocketAddr,
    cert: Option<PathBuf>,
}

impl SmtpSink {
    /// Starts a sink behaving as `spec` on `ip` (a loopback address) and `port` (0 picks one).
    pub fn start(ip: IpAddr, port: u16, spec: &SinkSpec) -> Result<Self> {
        ensure_loopback(ip)?;
        let dir = tempfile::tempdir().context("make smtp sink dir")?;
        let spec_path = dir.path().join("spec.json");
        fs::write(&spec_path, serde_json::to_vec_pretty(spec)?).context("write sink spec")?;
        let args = vec![
            "--record".to_owned(),
            dir.path().join("records.jsonl").display().to_string(),
            "--connections".to_owned(),
            dir.path().join("connections.jsonl").display().to_string(),
            "--spec".to_owned(),
            spec_path.display().to_string(),
            "--tls-dir".to_owned(),
            dir.path().display().to_string(),
            "--host".to_owned(),
            ip.to_string(),
            "--port".to_owned(),
            port.to_string(),
        ];
        let (process, ready) = LabProcess::start("smtp_sink.py", dir, &args)?;
        let addr = ready_addr(&ready)?;
        let cert = ready["cert"].as_str().map(PathBuf::from);
        Ok(Self {
            process,
            addr,
            cert,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The self-signed certificate (PEM) offered with STARTTLS, for clients that pin it.
    pub fn cert(&self) -> Option<&Path> {
        self.cert.as_deref()
    }

    /// Every transaction that has ended so far, oldest first.
    pub fn records(&self) -> Result<Vec<SinkRecord>> {
        read_json_lines(&self.process.dir.path().join("records.jsonl"))
    }

    /// Every connection that has ended so far, in the order they ended.
    pub fn connections(&self) -> Result<Vec<SinkConnection>> {
        read_json_lines(&self.process.dir.path().join("connections.jsonl"))
    }

    /// This sink's delivered transactions by Message-ID.
    pub fn deliveries_by_message_id(&self) -> Result<BTreeMap<String, Vec<SinkRecord>>> {
        Ok(deliveries_by_message_id(&self.records()?))
    }

    /// Messages this sink took more than once for the same recipient.
    pub fn duplicates(&self) -> Result<Vec<Duplicate>> {
        Ok(duplicates(&self.records()?))
    }

    /// Stops the sink now (Drop does the same, but cannot report a failure).
    pub fn stop(mut self) -> Result<()> {
        self.process.stop()
    }
}
