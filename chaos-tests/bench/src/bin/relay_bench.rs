//! Outbound relay benchmark (BENCHMARKS.md suite item 4): how fast the cluster relays mail to
//! remote domains, found by MX lookups in a local DNS stub, to SMTP sinks that tempfail a fixed
//! share of the recipients the first time, against a private Postfix relaying the same mail to
//! the same sinks, both measured in the same run, in interleaved rounds, by the same client.
//! Every message must arrive exactly once after the retries; a missing one fails its cell.
//!
//! Run as root (Postfix needs it), after `sh deploy/bench-setup.sh` and
//! `cargo build --release --workspace --bins`:
//! `target/release/relay_bench [--rounds N] [--messages M] [--size BYTES] [--sessions S]
//! [--domains D] [--tempfail-percent P] [--retry-secs R] [--cell-seconds T]
//! [--only mcluster|postfix] [--no-ceiling]`.
//!
//! The lab (all on loopback): a DNS stub on 127.0.200.1:5353 serving an MX record (TTL 300 s)
//! for each destination domain `destN.test`, whose host `mx.destN.test` is 127.0.200.(N+2);
//! one aiosmtpd sink per MX host on port 2525. The sinks of a cell are started for that cell
//! (so their records and their once-only rules start empty) and answer
//! `451 4.2.1` to RCPT the first time they see a recipient whose local part starts with `tf-`
//! (one such recipient in every 100/P of each domain's messages), then accept it.
//!
//! mcluster: two data nodes and a witness (`chaos_tests::Cluster`, 127.77.200.1-3, mirroring
//! on), `[outbound] nameservers = ["127.0.200.1:5353"]` and `port = 2525` in each node's
//! config, the outbound policy's `retry-interval-secs` set to `--retry-secs` and its other keys
//! at their defaults. Messages go in through the leader's submission port with AUTH PLAIN (the
//! mail policy's `auth-without-tls` is set to true: the benchmark's client speaks no TLS).
//!
//! postfix-relay: a private Postfix on 127.0.0.1:2527 (`mcluster_bench::postfix`, relay mode) that
//! takes mail for the destination domains from 127.0.0.0/8 without AUTH and sends each domain
//! to its sink through `transport_maps` (`destN.test smtp:[127.0.200.(N+2)]:2525`). It does no
//! DNS lookups at all, which spares it the MX and address lookups the cluster makes for every
//! message (answers are cached for their TTL, except the stub's empty AAAA answers, which carry
//! no SOA and so cannot be cached). Its retry timing is made comparable (`queue_run_delay = 1s`,
//! `minimal_backoff_time = --retry-secs`, `maximal_backoff_time = 2 x --retry-secs`); its
//! delivery concurrency and connection caching stay at their defaults. Both systems make every
//! accepted message durable before the 250: Postfix fsyncs its queue file, the cluster fsyncs
//! the message here and on its mirror partner and commits it through Raft.
//!
//! A cell: N messages of `--size` bytes, one recipient each, spread round-robin over the
//! domains, submitted over `--sessions` concurrent sessions (one command, one reply, every read
//! under a deadline). Its time runs from the first submission until the sinks have recorded
//! the first delivery of every message; relayed msg/s is N over that time. Then the benchmark
//! waits for the system's queue to empty and reads the sinks' records once more, and counts,
//! per message, missing deliveries and duplicates (deliveries of the same Message-ID to the
//! same recipient beyond the first). Before the rounds, smtp-source measures the sinks'
//! own ceiling (all sinks at once), with a new connection per message and with connections
//! reused (both systems cache connections to a destination). Each cell also reports how many
//! connections carried its transactions and which DNS queries the stub answered.
//!
//! Everything the benchmark starts is stopped by PID when it ends, also on errors and signals.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use chaos_tests::cluster::{Cluster, NodeTuning, bin_dir, wait_until};
use chaos_tests::mail::{self, PASSWORD};
use chaos_tests::outbound_lab::{
    DnsQuery, DnsStub, SinkRecord, SinkSpec, SmtpSink, Stage, Zone, duplicates,
};
use mcluster_bench::command_line::{read_flags, run_main};
use mcluster_bench::driver::{
    CONNECT_TIMEOUT, REPLY_TIMEOUT, SETTLE, SHOWN_ERRORS, SmtpClient, band, epoch_secs, is_root,
    keep_first, loadavg, median, per_second, percentile, print_table, reuse_or_connect,
    rfc5322_date, round_ratios, run_ctl, run_sessions, wire_message, work_dir,
};
use mcluster_bench::postfix::{INSTALL_COMMAND, POSTFIX, Postfix, Relay};
use mcluster_bench::process::{catch_stop_signals, report_stop, stop_requested};
use rand::Rng;
use serde_json::Value;

/// The cluster's nodes are 127.77.200.1-3.
const CLUSTER_SUBNET: u8 = 200;
const DNS_PORT: u16 = 5353;
const MX_PORT: u16 = 2525;
const DNS_TTL: u32 = 300;
const POSTFIX_SMTP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 2527);
/// The benchmark's account in the cluster (`bench@example.test`) and the envelope sender on
/// both systems.
const USER: &str = "bench";
const CLIENT_NAME: &str = "relay-bench.bench.test";
/// Recipients whose local part starts with this are tempfailed once.
const TEMPFAIL_PREFIX: &str = "tf-";
const TEMPFAIL_REPLY: &str = "451 4.2.1 relay_bench: mailbox busy, try again later";

/// A message is submitted at most this many times (a 4xx or a broken session tries again).
const SUBMIT_ATTEMPTS: usize = 3;
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// How often the sinks' records are read while waiting for deliveries.
const POLL: Duration = Duration::from_millis(500);
/// After the last message arrived: how long the queue gets to empty, and the wait for late
/// duplicates after that.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
const LATE_DUPLICATES: Duration = Duration::from_secs(2);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
const NODE_STOP_GRACE: Duration = Duration::from_secs(20);
const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds each smtp-source run of the ceiling measurement.
const CEILING_TIMEOUT: Duration = Duration::from_secs(120);
const CEILING_SESSIONS_PER_SINK: usize = 5;
const WARMUP_MESSAGES: usize = 100;
const MAX_DOMAINS: usize = 50;

const USAGE: &str = "\
usage: relay_bench [--rounds N] [--messages M] [--size BYTES] [--sessions S] [--domains D]
                   [--tempfail-percent P] [--retry-secs R] [--cell-seconds T]
                   [--only mcluster|postfix] [--no-ceiling]

  --rounds N            interleaved rounds, mcluster then postfix-relay in each (default 3)
  --messages M          messages per cell, one recipient each (default 2000)
  --size BYTES          message size (default 10240)
  --sessions S          concurrent submission sessions (default 10)
  --domains D           destination domains, each with its own MX host and sink (default 4)
  --tempfail-percent P  share of recipients the sinks tempfail once, 451 at RCPT (default 5)
  --retry-secs R        mcluster's retry-interval-secs; postfix-relay's minimal_backoff_time
                        (its maximal_backoff_time is 2R, queue_run_delay 1s) (default 2)
  --cell-seconds T      time limit of a cell, submission to the last delivery (default 300)
  --only SYSTEM         measure only mcluster or only postfix (no ratio)
  --no-ceiling          skip the smtp-source measurement of the sinks' own ceiling

mcluster: two data nodes and a witness on 127.77.200.1-3 (submission on the leader, port 2587),
MX lookups in a DNS stub on 127.0.200.1:5353. postfix-relay: a private Postfix on
127.0.0.1:2527 routing each domain to its sink by transport_maps (no DNS). Sinks: aiosmtpd on
127.0.200.2 and up, port 2525. Run as root.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Mcluster,
    PostfixRelay,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Mcluster => "mcluster",
            System::PostfixRelay => "postfix-relay",
        }
    }

    /// For message ids.
    fn letter(self) -> char {
        match self {
            System::Mcluster => 'm',
            System::PostfixRelay => 'p',
        }
    }
}

struct Options {
    rounds: usize,
    messages: usize,
    size: usize,
    sessions: usize,
    domains: usize,
    tempfail_percent: usize,
    retry: Duration,
    cell_time: Duration,
    systems: Vec<System>,
    ceiling: bool,
}

impl Options {
    /// `None` when the user asked for help.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>> {
        let mut options = Options {
            rounds: 3,
            messages: 2000,
            size: 10 * 1024,
            sessions: 10,
            domains: 4,
            tempfail_percent: 5,
            retry: Duration::from_secs(2),
            cell_time: Duration::from_secs(300),
            systems: vec![System::Mcluster, System::PostfixRelay],
            ceiling: true,
        };
        let read = read_flags(args, USAGE, &["--no-ceiling"], |flag| {
            let (name, value) = (&flag.name, &flag.value);
            match name.as_str() {
                "--no-ceiling" => options.ceiling = false,
                "--rounds" => options.rounds = flag.count()?,
                "--messages" => options.messages = flag.count()?,
                "--size" => options.size = flag.count()?,
                "--sessions" => options.sessions = flag.count()?,
                "--domains" => options.domains = flag.count()?,
                "--tempfail-percent" => {
                    options.tempfail_percent = value.parse().with_context(|| {
                        format!("{name} takes a number from 0 to 50, not {value:?}")
                    })?;
                }
                "--retry-secs" => options.retry = flag.seconds()?,
                "--cell-seconds" => options.cell_time = flag.seconds()?,
                "--only" => {
                    options.systems = flag.only(
                        System::Mcluster,
                        System::PostfixRelay,
                        &["postfix", "postfix-relay"],
                    )?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if !read {
            return Ok(None);
        }
        ensure!(
            (1024..=10_000_000).contains(&options.size),
            "message size {} is outside 1024..=10000000 bytes",
            options.size
        );
        ensure!(
            options.sessions <= 30,
            "{} sessions is more than the 30 this benchmark allows (the cluster admits 32 \
             connections per client address)",
            options.sessions
        );
        ensure!(
            options.domains <= MAX_DOMAINS,
            "{} domains is more than the {MAX_DOMAINS} this benchmark allows",
            options.domains
        );
        ensure!(
            options.tempfail_percent <= 50,
            "--tempfail-percent {} is above 50",
            options.tempfail_percent
        );
        ensure!(
            options.messages <= 100_000,
            "{} messages is more than the 100000 this benchmark allows",
            options.messages
        );
        ensure!(
            options.retry <= Duration::from_secs(600),
            "--retry-secs above 600 would not retry within a cell"
        );
        Ok(Some(options))
    }

    fn wants(&self, system: System) -> bool {
        self.systems.contains(&system)
    }

    /// `3 rounds of 2000 x 10240-byte messages`.
    fn workload(&self) -> String {
        format!(
            "{} rounds of {} x {}-byte messages",
            self.rounds, self.messages, self.size
        )
    }
}

/// The DNS stub's address and the lab's sinks' addresses: 127.0.200.x.
fn lab_ip(d: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 200, d)
}

fn domain(d: usize) -> String {
    format!("dest{d}.test")
}

fn sink_addr(d: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(lab_ip(
            2 + u8::try_from(d).expect("at most MAX_DOMAINS domains"),
        )),
        MX_PORT,
    )
}

fn main() -> ExitCode {
    run_main(USAGE, Options::parse, run)
}

/// What the benchmark started and must stop.
#[derive(Default)]
struct Started {
    stub: Option<DnsStub>,
    cluster: Option<Cluster>,
    postfix: Option<Postfix>,
}

impl Started {
    /// Stops everything by PID: the cluster's nodes (SIGTERM, then SIGKILL after a grace),
    /// Postfix (`postfix stop`, then its processes by PID), the DNS stub. Returns whether all
    /// stopped cleanly.
    fn stop(&mut self) -> bool {
        let mut clean = true;
        if let Some(mut cluster) = self.cluster.take() {
            // Before the stop, whose leadership hand-over warns when the peers are gone.
            report_log_problems(&cluster);
            for i in (0..cluster.nodes.len()).rev() {
                let Some(pid) = cluster.nodes[i].pid() else {
                    continue;
                };
                let name = cluster.nodes[i].name.clone();
                match cluster.stop(i, NODE_STOP_GRACE) {
                    Ok(status) => println!("mcluster node {name} (pid {pid}) stopped: {status}"),
                    Err(err) => {
                        eprintln!("stop mcluster node {name} (pid {pid}): {err:#}");
                        clean = false;
                    }
                }
            }
            // Dropping it removes its directory.
        }
        if let Some(mut postfix) = self.postfix.take() {
            clean &= postfix.stop_and_report();
        }
        if let Some(stub) = self.stub.take() {
            let pid = stub.pid();
            clean &= report_stop(&format!("dns stub (pid {pid})"), true, stub.stop());
        }
        clean
    }
}

/// Counts the WARN and ERROR lines in the nodes' logs so far and shows the first few: the
/// run's figures mean little if the cluster was complaining.
fn report_log_problems(cluster: &Cluster) {
    for node in &cluster.nodes {
        let log = node.log();
        for level in [" WARN ", " ERROR "] {
            let lines: Vec<&str> = log.lines().filter(|line| line.contains(level)).collect();
            if lines.is_empty() {
                continue;
            }
            println!(
                "mcluster node {}: {} {} lines in its log, the first {}:",
                node.name,
                lines.len(),
                level.trim(),
                lines.len().min(SHOWN_ERRORS)
            );
            for line in lines.iter().take(SHOWN_ERRORS) {
                println!("  {line}");
            }
        }
    }
}

fn run(options: Options) -> Result<()> {
    if options.wants(System::PostfixRelay) {
        if !Postfix::is_installed() {
            bail!(
                "{POSTFIX} is missing. Install Postfix without starting any service (as root, from \
                 the workspace root): {INSTALL_COMMAND}"
            );
        }
        ensure!(
            is_root()?,
            "run as root: the private Postfix (postfix start) needs it"
        );
    }
    for program in ["mclusterd", "mclusterctl"] {
        let path = bin_dir().join(program);
        ensure!(
            path.is_file() || !options.wants(System::Mcluster),
            "{} is missing: build the binaries first (cargo build --release --workspace --bins)",
            path.display()
        );
    }
    chaos_tests::outbound_lab::python()?;
    catch_stop_signals()?;

    let work = work_dir(&std::env::temp_dir(), "relay-bench-")?;
    let mut started = Started::default();
    let measured = start_and_measure(&options, work.path(), &mut started);
    let clean_stop = started.stop();
    let records = measured?;
    print_summary(&options, &records);
    ensure!(
        clean_stop,
        "a process the benchmark started did not stop cleanly (see above)"
    );
    let failed: Vec<String> = records
        .iter()
        .filter(|record| !record.cell.complete())
        .map(|record| format!("round {} {}", record.round, record.system.name()))
        .collect();
    ensure!(
        failed.is_empty(),
        "cells without every message delivered exactly once: {}",
        failed.join(", ")
    );
    ensure!(!stop_requested(), "interrupted");
    Ok(())
}

/// Starts the lab and the systems (into `started`, so the caller stops them whatever happens
/// here), measures the sinks' ceiling, warms both systems up and runs every round.
fn start_and_measure(
    options: &Options,
    work: &Path,
    started: &mut Started,
) -> Result<Vec<CellRecord>> {
    for d in 0..options.domains {
        let addr = sink_addr(d);
        TcpListener::bind(addr).with_context(|| format!("{addr} is taken; a sink needs it"))?;
    }
    let mut zone = Zone::new().ttl(DNS_TTL);
    for d in 0..options.domains {
        let host = format!("mx.{}", domain(d));
        let IpAddr::V4(ip) = sink_addr(d).ip() else {
            unreachable!("the lab is IPv4")
        };
        zone = zone.mx(&domain(d), 10, &host).a(&host, ip);
    }
    let stub = started
        .stub
        .insert(DnsStub::start(IpAddr::V4(lab_ip(1)), DNS_PORT, &zone)?);
    println!(
        "dns stub: pid {}, {}, MX {} -> mx.DOMAIN -> {}..{} port {MX_PORT}, TTL {DNS_TTL} s",
        stub.pid(),
        stub.addr(),
        (0..options.domains)
            .map(domain)
            .collect::<Vec<_>>()
            .join(" "),
        sink_addr(0).ip(),
        sink_addr(options.domains - 1).ip()
    );

    if options.ceiling {
        measure_sink_ceiling(options)?;
    }

    if options.wants(System::Mcluster) {
        let cluster = started.cluster.insert(start_cluster(options)?);
        let policy: Value = serde_json::from_str(&ctl(cluster, &["outbound", "show", "--json"])?)
            .context("parse `mclusterctl outbound show --json`")?;
        println!(
            "mcluster: nodes {} (pids {}), data in {}; outbound policy: retry-interval-secs {}, \
             max-attempts {}, concurrency {}, per-domain-concurrency {}, tls {}; mail policy \
             auth-without-tls true; connection reuse at the engine's defaults",
            cluster
                .nodes
                .iter()
                .map(|node| format!("{} {} {}", node.name, node.role, node.ip()))
                .collect::<Vec<_>>()
                .join(", "),
            cluster
                .nodes
                .iter()
                .filter_map(|node| node.pid().map(|pid| pid.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            cluster.root().display(),
            policy["retry-interval-secs"],
            policy["max-attempts"],
            policy["concurrency"],
            policy["per-domain-concurrency"],
            policy["tls"],
        );
    }
    if options.wants(System::PostfixRelay) {
        let dir = work.join("postfix");
        fs::create_dir(&dir).context("create the postfix directory")?;
        TcpListener::bind(POSTFIX_SMTP)
            .with_context(|| format!("{POSTFIX_SMTP} is taken; postfix-relay needs it"))?;
        let relay = Relay {
            routes: (0..options.domains)
                .map(|d| (domain(d), sink_addr(d)))
                .collect(),
            queue_run_delay: Duration::from_secs(1),
            minimal_backoff: options.retry,
            maximal_backoff: 2 * options.retry,
            process_limit: 100,
        };
        let postfix = started
            .postfix
            .insert(Postfix::start_relay(&dir, POSTFIX_SMTP, &relay)?);
        println!(
            "postfix-relay: master pid {}, config {}, listening on {POSTFIX_SMTP}; {}",
            postfix.master_pid(),
            postfix.config_dir().display(),
            relay.settings()
        );
        println!(
            "  caveat: postfix-relay reaches the sinks through transport_maps \
             (destN.test smtp:[ip]:port) and makes no DNS lookups; mcluster looks up the MX, A \
             and AAAA records of every message's domain in the DNS stub (its resolver caches \
             answers for the TTL; the stub's empty AAAA answers carry no SOA, so they are not \
             cached: dns_queries per cell shows what was asked)"
        );
        wait_for_postfix(postfix)?;
    }

    let nonce: u32 = rand::rng().random();
    let mut records = Vec::new();
    for &system in &options.systems {
        if stop_requested() {
            return Ok(records);
        }
        let plan = CellPlan::new(
            system,
            format!("{nonce:08x}{}w", system.letter()),
            WARMUP_MESSAGES,
            options,
        );
        let cell = run_cell(&plan, options, started)?;
        println!("warm-up {}: {} (not counted)", system.name(), cell.line());
    }
    println!(
        "measuring: {} over {} sessions to {} domains, {}% tempfailed once; cell time limit {:?}",
        options.workload(),
        options.sessions,
        options.domains,
        options.tempfail_percent,
        options.cell_time
    );
    'rounds: for round in 0..options.rounds {
        for &system in &options.systems {
            if stop_requested() {
                break 'rounds;
            }
            thread::sleep(SETTLE);
            let plan = CellPlan::new(
                system,
                format!("{nonce:08x}{}{round}", system.letter()),
                options.messages,
                options,
            );
            let load_before = loadavg();
            let cell = run_cell(&plan, options, started)?;
            let load_after = loadavg();
            if stop_requested() {
                println!(
                    "cell round={round} system={}: interrupted, not counted",
                    system.name()
                );
                break 'rounds;
            }
            println!(
                "cell round={round} system={} {} load_before={load_before} \
                 load_after={load_after}",
                system.name(),
                cell.line()
            );
            for error in &cell.first_errors {
                println!("  error: {error}");
            }
            records.push(CellRecord {
                round,
                system,
                cell,
            });
        }
    }
    Ok(records)
}

/// Two data nodes and a witness, with the DNS stub and the sinks' port in `[outbound]`, the
/// benchmark's account, AUTH allowed without TLS and the short retry interval.
fn start_cluster(options: &Options) -> Result<Cluster> {
    let tuning = NodeTuning {
        extra_toml: format!(
            "[outbound]\nnameservers = [\"{}:{DNS_PORT}\"]\nport = {MX_PORT}\n",
            lab_ip(1)
        ),
        ..NodeTuning::default()
    };
    let cluster = Cluster::start(CLUSTER_SUBNET, 2, true, tuning).context("start the cluster")?;
    mail::add_users(&cluster, &[USER])?;
    ctl(&cluster, &["policy", "set", "auth-without-tls=true"])?;
    ctl(
        &cluster,
        &[
            "outbound",
            "set",
            &format!("retry-interval-secs={}", options.retry.as_secs()),
        ],
    )?;
    let submission = leader_submission(&cluster)?;
    let started = Instant::now();
    wait_until(READY_TIMEOUT, "the leader's submission port", || {
        probe(submission, true).ok()
    })?;
    println!(
        "mcluster accepts AUTH and RCPT to {} on {submission} after {:.1?}",
        domain(0),
        started.elapsed()
    );
    Ok(cluster)
}

/// The submission address of the node that leads now.
fn leader_submission(cluster: &Cluster) -> Result<SocketAddr> {
    let leader = cluster.wait_for_leader(LEADER_TIMEOUT)?;
    let node = &cluster.nodes[cluster.index_of(leader)];
    node.submission_addr()
        .parse()
        .with_context(|| format!("parse {}", node.submission_addr()))
}

fn wait_for_postfix(postfix: &Postfix) -> Result<()> {
    let started = Instant::now();
    let addr = SocketAddr::V4(POSTFIX_SMTP);
    wait_until(READY_TIMEOUT, "postfix-relay to greet", || {
        probe(addr, false).ok()
    })
    .with_context(|| format!("the end of its log:\n{}", postfix.maillog_tail(10)))?;
    println!(
        "postfix-relay accepts RCPT to {} after {:.1?}",
        domain(0),
        started.elapsed()
    );
    Ok(())
}

/// Greeting, EHLO (AUTH when `auth`), MAIL and RCPT to the first domain, then RSET and QUIT.
fn probe(addr: SocketAddr, auth: bool) -> Result<()> {
    let mut client = SmtpClient::connect(addr, Duration::from_secs(5), Duration::from_secs(5))?;
    client.ehlo(CLIENT_NAME)?;
    if auth {
        client.auth_plain(&sender(), PASSWORD)?;
    }
    client.command(&format!("MAIL FROM:<{}>", sender()), 2, "MAIL")?;
    client.command(&format!("RCPT TO:<probe@{}>", domain(0)), 2, "RCPT")?;
    client.command("RSET", 2, "RSET")?;
    client.quit();
    Ok(())
}

fn sender() -> String {
    format!("{USER}@{}", mail::DOMAIN)
}

/// `mclusterctl --config <the cluster's client config> ARGS`, bounded in time; its stdout.
fn ctl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    run_ctl(
        &bin_dir().join("mclusterctl"),
        &cluster.client_config,
        args,
        None,
        cluster.root(),
        CTL_TIMEOUT,
    )
}

/// smtp-source straight into fresh accept-all sinks, all at once, CEILING_SESSIONS_PER_SINK
/// sessions each: first with a new connection per message, then reusing connections.
fn measure_sink_ceiling(options: &Options) -> Result<()> {
    let per_sink = options.messages.div_ceil(options.domains);
    for (reuse, how) in [
        (false, "a new connection per message"),
        (true, "connections reused (-d)"),
    ] {
        let sinks = start_sinks(options.domains, |_| SinkSpec::accept_all())?;
        let load_before = loadavg();
        let started = Instant::now();
        let mut children: Vec<Child> = Vec::new();
        let spawned: Result<()> = (0..options.domains).try_for_each(|d| {
            let mut command = Command::new("/usr/sbin/smtp-source");
            if reuse {
                command.arg("-d");
            }
            let child = command
                .args(["-s", &CEILING_SESSIONS_PER_SINK.to_string()])
                .args(["-m", &per_sink.to_string()])
                .args(["-l", &options.size.to_string()])
                .args(["-M", CLIENT_NAME])
                .args(["-f", &sender()])
                .args(["-t", &format!("ceiling@{}", domain(d))])
                .arg(sink_addr(d).to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("run smtp-source")?;
            children.push(child);
            Ok(())
        });
        let finished = spawned.and_then(|()| wait_children(&mut children, CEILING_TIMEOUT));
        let elapsed = started.elapsed();
        finished?;
        let expected = per_sink * options.domains;
        let delivered = wait_until(Duration::from_secs(10), "the sinks' records", || {
            let n = sinks
                .iter()
                .map(|sink| {
                    sink.records()
                        .map_or(0, |r| r.iter().filter(|r| r.delivered()).count())
                })
                .sum::<usize>();
            (n >= expected).then_some(n)
        })
        .unwrap_or(0);
        println!(
            "sink ceiling, {how}: smtp-source x {} ({CEILING_SESSIONS_PER_SINK} sessions each) \
             -> {} sinks, {delivered}/{expected} x {} bytes in {:.2} s = {:.1} msg/s; load \
             {load_before} -> {}",
            options.domains,
            options.domains,
            options.size,
            elapsed.as_secs_f64(),
            delivered as f64 / elapsed.as_secs_f64(),
            loadavg()
        );
        stop_sinks(sinks)?;
    }
    Ok(())
}

/// Waits for every child to exit; kills (by PID) and reaps those still running at the deadline
/// or on a stop signal.
fn wait_children(children: &mut [Child], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut failures = Vec::new();
    let mut running: Vec<&mut Child> = children.iter_mut().collect();
    while !running.is_empty() {
        let mut still = Vec::new();
        for child in running {
            match child.try_wait()? {
                Some(status) if !status.success() => {
                    failures.push(format!("pid {} exited {status}", child.id()));
                }
                Some(_) => {}
                None => still.push(child),
            }
        }
        running = still;
        if running.is_empty() {
            break;
        }
        if Instant::now() >= deadline || stop_requested() {
            for child in running {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("pid {} killed after {timeout:?}", child.id()));
            }
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    ensure!(failures.is_empty(), "smtp-source: {}", failures.join("; "));
    Ok(())
}

/// One sink per domain, on its MX host's address, behaving as `spec(domain index)`.
fn start_sinks(n_domains: usize, spec: impl Fn(usize) -> SinkSpec) -> Result<Vec<SmtpSink>> {
    let mut sinks = Vec::with_capacity(n_domains);
    for d in 0..n_domains {
        // On an error the sinks started so far are dropped, which stops them.
        sinks.push(SmtpSink::start(sink_addr(d).ip(), MX_PORT, &spec(d))?);
    }
    Ok(sinks)
}

fn stop_sinks(sinks: Vec<SmtpSink>) -> Result<()> {
    let mut errors = Vec::new();
    for sink in sinks {
        let pid = sink.pid();
        if let Err(err) = sink.stop() {
            errors.push(format!("sink pid {pid}: {err:#}"));
        }
    }
    ensure!(errors.is_empty(), "stop the sinks: {}", errors.join("; "));
    Ok(())
}

/// One message of a cell.
struct Planned {
    /// With its angle brackets, as the sinks record it.
    message_id: String,
    rcpt: String,
    domain: usize,
    tempfail: bool,
    wire: Vec<u8>,
}

/// One cell: one system, the messages, where they go in.
struct CellPlan {
    system: System,
    messages: Vec<Planned>,
}

impl CellPlan {
    /// `n` messages, message k to domain k mod D; in each domain, `tempfail_percent` of its
    /// messages (evenly spread) go to a `tf-` recipient.
    fn new(system: System, tag: String, n: usize, options: &Options) -> CellPlan {
        let mut rng = rand::rng();
        let messages = (0..n)
            .map(|k| {
                let d = k % options.domains;
                // The j-th message of its domain; Bresenham spreads the tempfails evenly.
                let j = k / options.domains;
                let p = options.tempfail_percent;
                let tempfail = (j + 1) * p / 100 != j * p / 100;
                let local = if tempfail {
                    format!("{TEMPFAIL_PREFIX}{tag}-{k}")
                } else {
                    format!("u-{tag}-{k}")
                };
                let rcpt = format!("{local}@{}", domain(d));
                let message_id = format!("<{k}.{tag}@relay-bench.test>");
                let subject = format!("relay_bench {} {tag} message {k}", system.name());
                let to = format!("<{rcpt}>");
                let from = format!("relay_bench <{}>", sender());
                let date = rfc5322_date(SystemTime::now());
                let wire = wire_message(
                    &[
                        ("From", &from),
                        ("To", &to),
                        ("Subject", &subject),
                        ("Date", &date),
                        ("Message-ID", &message_id),
                        ("MIME-Version", "1.0"),
                        ("Content-Type", "text/plain; charset=us-ascii"),
                    ],
                    options.size,
                    &mut rng,
                );
                Planned {
                    message_id,
                    rcpt,
                    domain: d,
                    tempfail,
                    wire,
                }
            })
            .collect();
        CellPlan { system, messages }
    }

    /// Domain `d`'s sink: 451 to the first RCPT of each of its `tf-` recipients.
    fn sink_spec(&self, d: usize) -> SinkSpec {
        self.messages
            .iter()
            .filter(|m| m.tempfail && m.domain == d)
            .fold(SinkSpec::accept_all(), |spec, m| {
                let pattern = format!("^{}$", regex_escape(&m.rcpt));
                spec.reply_first(1, Stage::Rcpt, Some(&pattern), TEMPFAIL_REPLY)
            })
    }
}

/// `text` with the characters Python's `re` treats specially escaped.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() && c != '@' && c != '_' && c != '-' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[derive(Default)]
struct CellResult {
    n_messages: usize,
    /// Submitted and answered 250.
    accepted: usize,
    /// Messages given up after SUBMIT_ATTEMPTS.
    not_submitted: usize,
    /// Submission attempts that failed and were tried again.
    resubmitted: usize,
    first_errors: Vec<String>,
    /// From the first submission to the last 250.
    accept_secs: f64,
    /// From the first submission to the first delivery of the last message to arrive.
    all_delivered_secs: f64,
    /// The same for the messages that were not tempfailed.
    first_pass_secs: f64,
    /// Per message: first delivery minus its 250.
    latencies: Vec<f64>,
    delivered: usize,
    missing: usize,
    /// Deliveries beyond the first of a (Message-ID, recipient).
    duplicates: usize,
    /// Delivered to a recipient other than the message's.
    misrouted: usize,
    /// 4xx refusals the sinks gave (the planned tempfails, once each).
    tempfailed: usize,
    planned_tempfails: usize,
    /// 5xx refusals the sinks gave (none are planned).
    permfailed: usize,
    hit_time_limit: bool,
    /// Messages still queued when the drain wait ended (None: not known).
    left_queued: Option<usize>,
    /// Connections that carried at least one transaction, over all sinks.
    connections: usize,
    /// Queries the DNS stub answered during the cell, by type and answer (`AAAA NOERROR 0`).
    dns_queries: BTreeMap<String, usize>,
}

impl CellResult {
    fn rate(&self) -> f64 {
        per_second(self.delivered as f64, self.all_delivered_secs)
    }

    fn accept_rate(&self) -> f64 {
        per_second(self.accepted as f64, self.accept_secs)
    }

    fn complete(&self) -> bool {
        self.not_submitted == 0
            && self.missing == 0
            && self.duplicates == 0
            && self.misrouted == 0
            && !self.hit_time_limit
            && self.delivered == self.n_messages
    }

    fn line(&self) -> String {
        format!(
            "messages={}/{} accepted_in={:.2}s ({:.1} msg/s) all_delivered_in={:.2}s{} \
             relayed_msg/s={:.1} first_pass_in={:.2}s delivery_p50={:.2}s p99={:.2}s \
             tempfailed={}/{} permfailed={} duplicates={} missing={} misrouted={} \
             resubmitted={} queue_left={} connections={} dns_queries={} {}",
            self.delivered,
            self.n_messages,
            self.accept_secs,
            self.accept_rate(),
            self.all_delivered_secs,
            if self.hit_time_limit {
                " (time limit)"
            } else {
                ""
            },
            self.rate(),
            self.first_pass_secs,
            percentile(&self.latencies, 50.0),
            percentile(&self.latencies, 99.0),
            self.tempfailed,
            self.planned_tempfails,
            self.permfailed,
            self.duplicates,
            self.missing,
            self.misrouted,
            self.resubmitted,
            self.left_queued
                .map_or_else(|| "?".to_owned(), |n| n.to_string()),
            self.connections,
            dns_summary(&self.dns_queries),
            if self.complete() { "ok" } else { "FAILED" }
        )
    }
}

struct CellRecord {
    round: usize,
    system: System,
    cell: CellResult,
}

/// What one submission session did.
#[derive(Default)]
struct SessionOutcome {
    /// (message index, epoch seconds of its 250).
    acked: Vec<(usize, f64)>,
    given_up: usize,
    resubmitted: usize,
    errors: Vec<String>,
}

/// Starts the cell's sinks, submits every message, waits until each has arrived (or the time
/// limit), waits for the system's queue to empty, and counts what the sinks recorded.
fn run_cell(plan: &CellPlan, options: &Options, started: &mut Started) -> Result<CellResult> {
    let sinks = start_sinks(options.domains, |d| plan.sink_spec(d))?;
    let dns_queries_before = dns_queries(started)?.len();
    let target = match plan.system {
        System::Mcluster => leader_submission(
            started
                .cluster
                .as_ref()
                .context("the cluster is not running")?,
        )?,
        System::PostfixRelay => SocketAddr::V4(POSTFIX_SMTP),
    };
    let auth = plan.system == System::Mcluster;
    let started_at = SystemTime::now();
    let start_epoch = epoch_secs(started_at);
    let deadline = Instant::now() + options.cell_time;

    let next = AtomicUsize::new(0);
    let outcomes = run_sessions(options.sessions, |_| {
        submit_session(plan, target, auth, &next, deadline)
    })?;
    let mut cell = CellResult {
        n_messages: plan.messages.len(),
        planned_tempfails: plan.messages.iter().filter(|m| m.tempfail).count(),
        ..CellResult::default()
    };
    let mut acked: BTreeMap<usize, f64> = BTreeMap::new();
    for outcome in outcomes {
        acked.extend(outcome.acked);
        cell.not_submitted += outcome.given_up;
        cell.resubmitted += outcome.resubmitted;
        for error in outcome.errors {
            keep_first(&mut cell.first_errors, error);
        }
    }
    cell.accepted = acked.len();
    // Messages the sessions never got to (time limit, stop signal) were not submitted either.
    cell.not_submitted = plan.messages.len() - cell.accepted;
    cell.accept_secs = acked.values().fold(start_epoch, |a, &b| a.max(b)) - start_epoch;

    // Wait for every accepted message to arrive.
    let expected: BTreeSet<&str> = acked
        .keys()
        .map(|&k| plan.messages[k].message_id.as_str())
        .collect();
    loop {
        let records = all_records(&sinks)?;
        let arrived: BTreeSet<&str> = records
            .iter()
            .filter(|r| r.delivered())
            .filter_map(|r| r.message_id.as_deref())
            .filter(|id| expected.contains(id))
            .collect();
        if arrived.len() == expected.len() || stop_requested() {
            break;
        }
        if Instant::now() >= deadline {
            cell.hit_time_limit = true;
            break;
        }
        ensure_alive(plan.system, started)?;
        thread::sleep(POLL);
    }

    // Then for the queue to empty, so that a late duplicate would show.
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let left = queued(plan.system, started).ok();
        cell.left_queued = left;
        if left == Some(0) || Instant::now() >= drain_deadline || stop_requested() {
            break;
        }
        thread::sleep(POLL);
    }
    thread::sleep(LATE_DUPLICATES);
    let mut records = Vec::new();
    for sink in &sinks {
        let of_sink = sink.records()?;
        let connections: BTreeSet<u64> = of_sink.iter().filter_map(|r| r.connection).collect();
        cell.connections += connections.len();
        records.extend(of_sink);
    }
    stop_sinks(sinks)?;
    for query in dns_queries(started)?.iter().skip(dns_queries_before) {
        let kind = format!("{} {}", query.qtype.as_deref().unwrap_or("?"), query.action);
        *cell.dns_queries.entry(kind).or_default() += 1;
    }
    count_deliveries(plan, &acked, &records, start_epoch, &mut cell);
    Ok(cell)
}

fn submit_session(
    plan: &CellPlan,
    target: SocketAddr,
    auth: bool,
    next: &AtomicUsize,
    deadline: Instant,
) -> SessionOutcome {
    let mut outcome = SessionOutcome::default();
    let mut client: Option<SmtpClient> = None;
    'messages: loop {
        if stop_requested() || Instant::now() >= deadline {
            break;
        }
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(message) = plan.messages.get(k) else {
            break;
        };
        for attempt in 1..=SUBMIT_ATTEMPTS {
            match submit(&mut client, target, auth, message) {
                Ok(()) => {
                    outcome.acked.push((k, epoch_secs(SystemTime::now())));
                    continue 'messages;
                }
                Err(err) => {
                    client = None;
                    keep_first(
                        &mut outcome.errors,
                        format!("message {k}, attempt {attempt}: {err:#}"),
                    );
                    if attempt == SUBMIT_ATTEMPTS || stop_requested() || Instant::now() >= deadline
                    {
                        outcome.given_up += 1;
                        continue 'messages;
                    }
                    outcome.resubmitted += 1;
                    thread::sleep(ERROR_PAUSE);
                }
            }
        }
    }
    if let Some(client) = client {
        client.quit();
    }
    outcome
}

/// Sends one message, connecting (and logging in) first if needed.
fn submit(
    client: &mut Option<SmtpClient>,
    target: SocketAddr,
    auth: bool,
    message: &Planned,
) -> Result<()> {
    let client = reuse_or_connect(client, || {
        let mut connected = SmtpClient::connect(target, CONNECT_TIMEOUT, REPLY_TIMEOUT)?;
        connected.ehlo(CLIENT_NAME)?;
        if auth {
            connected.auth_plain(&sender(), PASSWORD)?;
        }
        Ok(connected)
    })?;
    client.send(&sender(), &message.rcpt, &message.wire)?;
    Ok(())
}

/// Every query the DNS stub has answered so far.
fn dns_queries(started: &Started) -> Result<Vec<DnsQuery>> {
    started
        .stub
        .as_ref()
        .context("the dns stub is not running")?
        .queries()
}

/// `1418 (AAAA NOERROR 0: 1400, ...)`: the count, then by type and answer, most first.
fn dns_summary(queries: &BTreeMap<String, usize>) -> String {
    let total: usize = queries.values().sum();
    if total == 0 {
        return "0".to_owned();
    }
    let mut kinds: Vec<(&String, &usize)> = queries.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let kinds: Vec<String> = kinds
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    format!("{total}({})", kinds.join(", "))
}

fn all_records(sinks: &[SmtpSink]) -> Result<Vec<SinkRecord>> {
    let mut records = Vec::new();
    for sink in sinks {
        records.extend(sink.records()?);
    }
    Ok(records)
}

/// Fails when the system under test has died.
fn ensure_alive(system: System, started: &mut Started) -> Result<()> {
    match system {
        System::Mcluster => {
            let cluster = started
                .cluster
                .as_mut()
                .context("the cluster is not running")?;
            for i in 0..cluster.nodes.len() {
                if let Some(status) = cluster.exited(i)? {
                    let log = cluster.nodes[i].log();
                    let tail: Vec<&str> = log.lines().rev().take(20).collect();
                    bail!(
                        "mcluster node {} exited ({status}); the end of its log:\n{}",
                        cluster.nodes[i].name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            Ok(())
        }
        System::PostfixRelay => started
            .postfix
            .as_ref()
            .context("postfix-relay is not running")?
            .ensure_running(),
    }
}

/// Messages the system still holds: the cluster's outbound queue, Postfix's queue files.
fn queued(system: System, started: &Started) -> Result<usize> {
    match system {
        System::Mcluster => {
            let cluster = started
                .cluster
                .as_ref()
                .context("the cluster is not running")?;
            let listed: Value =
                serde_json::from_str(&ctl(cluster, &["queue", "list", "--limit", "1", "--json"])?)
                    .context("parse `mclusterctl queue list --json`")?;
            listed["total"]
                .as_u64()
                .map(|n| n as usize)
                .context("`queue list --json` has no total")
        }
        System::PostfixRelay => started
            .postfix
            .as_ref()
            .context("postfix-relay is not running")?
            .queued_files(),
    }
}

fn count_deliveries(
    plan: &CellPlan,
    acked: &BTreeMap<usize, f64>,
    records: &[SinkRecord],
    start_epoch: f64,
    cell: &mut CellResult,
) {
    let mut first_delivery: BTreeMap<&str, (f64, &SinkRecord)> = BTreeMap::new();
    for record in records.iter().filter(|r| r.delivered()) {
        if let Some(id) = record.message_id.as_deref() {
            let entry = first_delivery.entry(id).or_insert((record.time, record));
            if record.time < entry.0 {
                *entry = (record.time, record);
            }
        }
    }
    let mut last = start_epoch;
    let mut last_first_pass = start_epoch;
    for (&k, &acked_at) in acked {
        let message = &plan.messages[k];
        match first_delivery.get(message.message_id.as_str()) {
            None => cell.missing += 1,
            Some(&(time, record)) => {
                cell.delivered += 1;
                if !record
                    .rcpts
                    .iter()
                    .any(|rcpt| rcpt.eq_ignore_ascii_case(&message.rcpt))
                {
                    cell.misrouted += 1;
                }
                cell.latencies.push(time - acked_at);
                last = last.max(time);
                if !message.tempfail {
                    last_first_pass = last_first_pass.max(time);
                }
            }
        }
    }
    cell.all_delivered_secs = last - start_epoch;
    cell.first_pass_secs = last_first_pass - start_epoch;
    cell.duplicates = duplicates(records)
        .iter()
        .map(|duplicate| duplicate.n_deliveries - 1)
        .sum();
    for record in records {
        for refused in &record.refused_rcpts {
            match refused.reply.as_bytes().first() {
                Some(b'4') => cell.tempfailed += 1,
                Some(b'5') => cell.permfailed += 1,
                _ => {}
            }
        }
        if record.stage != Stage::Rcpt && record.reply.starts_with('5') {
            cell.permfailed += 1;
        }
    }
}

fn print_summary(options: &Options, records: &[CellRecord]) {
    let complete = |system: System| -> Vec<&CellResult> {
        records
            .iter()
            .filter(|r| r.system == system && r.cell.complete())
            .map(|r| &r.cell)
            .collect()
    };
    let header: Vec<String> = [
        "system",
        "cells ok",
        "relayed msg/s",
        "min-max",
        "all delivered s",
        "first pass s",
        "accept msg/s",
        "delivery p50/p99 s",
        "tempfailed",
        "duplicates",
        "missing",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut rows = Vec::new();
    for &system in &options.systems {
        let all: Vec<&CellResult> = records
            .iter()
            .filter(|r| r.system == system)
            .map(|r| &r.cell)
            .collect();
        let ok = complete(system);
        let rates: Vec<f64> = ok.iter().map(|c| c.rate()).collect();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let latencies: Vec<f64> = ok.iter().flat_map(|c| c.latencies.clone()).collect();
        let medians = |f: fn(&CellResult) -> f64| -> String {
            let values: Vec<f64> = ok.iter().map(|c| f(c)).collect();
            if values.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.2}", median(&values))
            }
        };
        rows.push(vec![
            system.name().to_owned(),
            format!("{}/{}", ok.len(), all.len()),
            if rates.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.1}", median(&rates))
            },
            if rates.is_empty() {
                "n/a".to_owned()
            } else {
                format!("{min:.1}-{max:.1}")
            },
            medians(|c| c.all_delivered_secs),
            medians(|c| c.first_pass_secs),
            medians(CellResult::accept_rate),
            format!(
                "{:.2} / {:.2}",
                percentile(&latencies, 50.0),
                percentile(&latencies, 99.0)
            ),
            all.iter().map(|c| c.tempfailed).sum::<usize>().to_string(),
            all.iter().map(|c| c.duplicates).sum::<usize>().to_string(),
            all.iter().map(|c| c.missing).sum::<usize>().to_string(),
        ]);
    }
    println!();
    println!(
        "summary: {}, {} submission sessions, {} domains (one sink each), {}% of recipients \
         tempfailed once (451 at RCPT), retry {} s; relayed msg/s = messages / (first \
         submission -> last first delivery), median over complete cells; tempfailed, \
         duplicates and missing summed over all cells",
        options.workload(),
        options.sessions,
        options.domains,
        options.tempfail_percent,
        options.retry.as_secs()
    );
    print_table(&header, &rows);
    if options.systems.len() < 2 {
        return;
    }
    let by_round = |system: System| -> Vec<(usize, f64)> {
        records
            .iter()
            .filter(|r| r.system == system && r.cell.complete())
            .map(|r| (r.round, r.cell.rate()))
            .collect()
    };
    let ratios = round_ratios(&by_round(System::Mcluster), &by_round(System::PostfixRelay));
    if ratios.is_empty() {
        println!("ratio mcluster/postfix-relay: n/a (no round with both cells complete)");
        return;
    }
    let rates =
        |system: System| -> Vec<f64> { complete(system).iter().map(|c| c.rate()).collect() };
    let (low, high) = band(&rates(System::Mcluster), &rates(System::PostfixRelay));
    println!(
        "relayed msg/s, mcluster/postfix-relay: median ratio {:.2} over {} rounds, band [{:.2}, \
         {:.2}] = [min(mcluster)/max(postfix-relay), max(mcluster)/min(postfix-relay)] \
         (postfix-relay routes by transport_maps without DNS; mcluster looks up MX, A and \
         AAAA records)",
        median(&ratios),
        ratios.len(),
        low,
        high
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempfails_are_the_asked_share_of_each_domain() {
        let options = Options::parse(std::iter::empty())
            .expect("defaults parse")
            .expect("not help");
        let plan = CellPlan::new(System::Mcluster, "t".into(), 2000, &options);
        for d in 0..options.domains {
            let of_domain: Vec<&Planned> = plan.messages.iter().filter(|m| m.domain == d).collect();
            let tempfails = of_domain.iter().filter(|m| m.tempfail).count();
            assert_eq!((of_domain.len(), tempfails), (500, 25));
        }
        assert!(
            plan.messages
                .iter()
                .all(|m| m.rcpt.starts_with(TEMPFAIL_PREFIX) == m.tempfail)
        );
    }

    #[test]
    fn addresses_are_escaped_for_python_regexes() {
        assert_eq!(regex_escape("tf-ab1-3@dest0.test"), "tf-ab1-3@dest0\\.test");
    }
}
