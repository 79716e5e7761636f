//! SMTP accept-rate benchmark: messages per second and DATA-dot -> 250 latency of the demo
//! cluster (`mclusterctl demo`, SMTP on 127.0.0.11:2525) against a private Postfix that accepts
//! into its hold queue (127.0.0.1:2526), both measured in the same run, in interleaved rounds,
//! by the same client. Each summary row gives the median ratio and its band.
//!
//! Run as root (Postfix needs it), after `sh deploy/bench-setup.sh` and
//! `cargo build --release --workspace --bins`:
//! `target/release/smtp_bench [--rounds N] [--messages M] [--sizes BYTES,..] [--clients N,..]
//! [--cell-seconds S] [--only mcluster|postfix] [--dir DIR] [--protection KEY=VALUE ...]
//! [--access LIST:PATTERN ...]`.
//!
//! The client is blocking, one thread per session: EHLO once, then MAIL, RCPT and DATA per
//! message, one command and one reply at a time (no PIPELINING), every read under a deadline.
//! Everything the benchmark starts is stopped by PID when it ends, also on errors and signals.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use mcluster_bench::command_line::{read_flags, run_main};
use mcluster_bench::demo::{Demo, MCLUSTER_SMTP};
use mcluster_bench::driver::{
    CONNECT_TIMEOUT, REPLY_TIMEOUT, SETTLE, SmtpClient, band, dot_stuff, is_root, keep_first,
    loadavg, median, millis, per_second, percentile, print_table, reuse_or_connect, rfc5322_date,
    round_order, round_ratios, run_sessions, text_message, wait_ready, work_dir,
};
use mcluster_bench::postfix::{INSTALL_COMMAND, POSTFIX, PostfixHold};
use mcluster_bench::process::{block_stop_signals, stop_requested};
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

const POSTFIX_SMTP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 2526);
const SENDER: &str = "bench@bench.test";
const RECIPIENT: &str = "demo@example.test";
const CLIENT_NAME: &str = "smtp-bench.bench.test";

const READY_TIMEOUT: Duration = Duration::from_secs(120);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const WARMUP_MESSAGES: usize = 100;
/// A session waits this long after an error before its next attempt.
const ERROR_PAUSE: Duration = Duration::from_millis(500);
const CTL_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "\
usage: smtp_bench [--rounds N] [--messages M] [--sizes BYTES,...] [--clients N,...]
                  [--cell-seconds S] [--only mcluster|postfix] [--dir DIR]
                  [--protection KEY=VALUE ...] [--access LIST:PATTERN ...]

  --rounds N          interleaved rounds (default 3)
  --messages M        messages per cell (default min(2000, max(500, 200 x clients)))
  --sizes LIST        message sizes in bytes (default 10240)
  --clients LIST      concurrent sessions per cell (default 1,10,50)
  --cell-seconds S    time limit of a cell (default 60)
  --only SYSTEM       measure only mcluster or only postfix (no ratio)
  --dir DIR           where the temporary work directory goes (default $TMPDIR or /tmp)
  --protection K=V    set a key of the cluster's protection policy before measuring (repeat
                      the flag for more; e.g. `exempt-networks=` to put the benchmark's own
                      127.0.0.1 under the rate limit and lockouts)
  --access LIST:PATTERN  add an entry to the cluster's block or allow list before measuring
                      (repeat for more; e.g. `allow:127.0.0.1` exempts the benchmark's client
                      from the inbound DNS checks but not from the rate limit)

mcluster: `mclusterctl demo`, started from the directory of this binary, SMTP 127.0.0.11:2525.
postfix-hold: a private Postfix on 127.0.0.1:2526 that holds every message. Run as root.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Mcluster,
    PostfixHold,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Mcluster => "mcluster",
            System::PostfixHold => "postfix-hold",
        }
    }

    /// For message ids.
    fn letter(self) -> char {
        match self {
            System::Mcluster => 'm',
            System::PostfixHold => 'p',
        }
    }

    fn addr(self) -> SocketAddrV4 {
        match self {
            System::Mcluster => MCLUSTER_SMTP,
            System::PostfixHold => POSTFIX_SMTP,
        }
    }
}

struct Options {
    rounds: usize,
    messages: Option<usize>,
    sizes: Vec<usize>,
    clients: Vec<usize>,
    cell_time: Duration,
    systems: Vec<System>,
    dir: PathBuf,
    /// `mclusterctl protection set` arguments.
    protection: Vec<String>,
    /// `LIST:PATTERN` entries for `mclusterctl access add`.
    access: Vec<(String, String)>,
}

impl Options {
    /// `None` when the user asked for help.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>> {
        let mut options = Options {
            rounds: 3,
            messages: None,
            sizes: vec![10 * 1024],
            clients: vec![1, 10, 50],
            cell_time: Duration::from_secs(60),
            systems: vec![System::Mcluster, System::PostfixHold],
            dir: std::env::temp_dir(),
            protection: Vec::new(),
            access: Vec::new(),
        };
        let read = read_flags(args, USAGE, &[], |flag| {
            let value = &flag.value;
            match flag.name.as_str() {
                "--rounds" => options.rounds = flag.count()?,
                "--messages" => options.messages = Some(flag.count()?),
                "--sizes" => options.sizes = flag.counts()?,
                "--clients" => options.clients = flag.counts()?,
                "--cell-seconds" => options.cell_time = flag.seconds()?,
                "--only" => {
                    options.systems = flag.only(
                        System::Mcluster,
                        System::PostfixHold,
                        &["postfix", "postfix-hold"],
                    )?;
                }
                "--dir" => options.dir = PathBuf::from(value),
                "--protection" => options.protection.push(value.clone()),
                "--access" => {
                    let (list, pattern) = value
                        .split_once(':')
                        .with_context(|| format!("--access takes LIST:PATTERN, not {value:?}"))?;
                    options.access.push((list.to_owned(), pattern.to_owned()));
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if !read {
            return Ok(None);
        }
        if let Some(&size) = options
            .sizes
            .iter()
            .find(|&&size| !(1024..=10_000_000).contains(&size))
        {
            bail!("message size {size} is outside 1024..=10000000 bytes");
        }
        if let Some(&clients) = options.clients.iter().find(|&&clients| clients > 500) {
            bail!("{clients} clients is more than the 500 this benchmark allows");
        }
        Ok(Some(options))
    }

    fn messages_for(&self, clients: usize) -> usize {
        self.messages
            .unwrap_or_else(|| (200 * clients).clamp(500, 2000))
    }

    fn wants(&self, system: System) -> bool {
        self.systems.contains(&system)
    }
}

fn main() -> ExitCode {
    run_main(USAGE, Options::parse, run)
}

fn run(options: Options) -> Result<()> {
    if options.wants(System::PostfixHold) {
        if !PostfixHold::is_installed() {
            bail!(
                "{POSTFIX} is missing. Install Postfix without starting any service (as root, from \
                 the workspace root): {INSTALL_COMMAND}\n(it runs: echo \"postfix \
                 postfix/main_mailer_type select Local only\" | debconf-set-selections; \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix)"
            );
        }
        if !is_root()? {
            bail!("run as root: the private Postfix (postfix start) needs it");
        }
    }
    // Blocked rather than handled: no client read is ever interrupted.
    block_stop_signals()?;

    // Dropped last: the systems below live in it and stop first.
    let work = work_dir(&options.dir, "smtp-bench-")?;

    let mut postfix_hold = None;
    let mut demo = None;
    let measured = start_and_measure(&options, work.path(), &mut postfix_hold, &mut demo);

    let mut clean_stop = true;
    if let Some(demo) = demo.as_mut() {
        clean_stop &= demo.stop_and_report();
    }
    if let Some(postfix_hold) = postfix_hold.as_mut() {
        clean_stop &= postfix_hold.stop_and_report();
    }
    let records = measured?;
    print_summary(&options, &records);
    if !clean_stop {
        bail!("a system under test did not stop cleanly (see above)");
    }
    let bad_holds = records
        .iter()
        .filter(|record| record.hold_ok == Some(false))
        .count();
    if bad_holds > 0 {
        bail!("{bad_holds} postfix-hold cells held fewer messages than were acknowledged");
    }
    if stop_requested() {
        bail!("interrupted");
    }
    Ok(())
}

/// Starts the systems under test (into the caller's slots, so the caller stops them whatever
/// happens here), warms them up, and runs every round.
fn start_and_measure(
    options: &Options,
    work: &Path,
    postfix_slot: &mut Option<PostfixHold>,
    demo_slot: &mut Option<Demo>,
) -> Result<Vec<CellRecord>> {
    let max_clients = options.clients.iter().copied().max().unwrap_or(1);
    // The demo starts first: its spawn briefly unblocks the stop signals (see
    // `spawn_unblocked`), and nothing else runs yet that a signal in that moment would orphan.
    if options.wants(System::Mcluster) {
        let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        *demo_slot = Some(Demo::create(work, &password, CTL_TIMEOUT)?);
    }
    if options.wants(System::PostfixHold) {
        let dir = work.join("postfix");
        fs::create_dir(&dir).context("create the postfix directory")?;
        TcpListener::bind(POSTFIX_SMTP)
            .with_context(|| format!("{POSTFIX_SMTP} is taken; postfix-hold needs it"))?;
        // smtpd and cleanup each need a process per session, with room to spare.
        let process_limit = (2 * max_clients + 20).max(100);
        let postfix_hold = postfix_slot.insert(PostfixHold::start(
            &dir,
            POSTFIX_SMTP,
            &[RECIPIENT],
            process_limit,
        )?);
        println!(
            "postfix-hold: master pid {}, config {}, listening on {POSTFIX_SMTP}, \
             default_process_limit {process_limit}",
            postfix_hold.master_pid(),
            postfix_hold.config_dir().display()
        );
        let waited = wait_until_accepting(System::PostfixHold, None)?;
        println!("postfix-hold accepts RCPT {RECIPIENT} after {waited:.1?}");
    }
    if let Some(demo) = demo_slot.as_mut() {
        let waited = wait_until_accepting(System::Mcluster, Some(demo))?;
        println!("mcluster accepts RCPT {RECIPIENT} on {MCLUSTER_SMTP} after {waited:.1?}");
        if !options.protection.is_empty() {
            let mut args = vec!["protection", "set"];
            args.extend(options.protection.iter().map(String::as_str));
            demo.ctl(&args)?;
            let shown = demo.ctl(&["protection", "show"])?;
            println!("mcluster protection policy:\n{}", shown.trim_end());
        }
        for (list, pattern) in &options.access {
            demo.ctl(&["access", "add", list, pattern])?;
        }
        if !options.access.is_empty() {
            let shown = demo.ctl(&["access", "list"])?;
            println!("mcluster access lists:\n{}", shown.trim_end());
        }
        // As postfix-hold does (its per-client limit is off).
        let changed = demo.raise_policy(
            &["smtp-connections-per-ip", "max-connections"],
            max_clients,
            &[],
        )?;
        if !changed.is_empty() {
            println!(
                "mcluster policy: {} (all sessions come from 127.0.0.1; postfix-hold has no \
                 per-client limit)",
                changed.join(", ")
            );
        }
    }

    let nonce: u64 = rand::rng().random();
    let first_size = options.sizes[0];
    for &system in &options.systems {
        let plan = CellPlan {
            system,
            // As many sessions as the largest cell, so the server processes every session needs
            // exist before the first cell (Postfix forks an smtpd per session, then keeps it).
            clients: max_clients,
            size: first_size,
            messages: WARMUP_MESSAGES.max(4 * max_clients),
            time_limit: options.cell_time,
            tag: format!("{:012x}.{}w", nonce & 0xffff_ffff_ffff, system.letter()),
        };
        let cell = run_cell(&plan)?;
        println!(
            "warm-up {}: {} clients, {}/{} accepted, greeting p99 {:.1} ms, {} errors (not \
             counted)",
            system.name(),
            plan.clients,
            cell.accepted,
            plan.messages,
            percentile(&cell.greetings_ms, 99.0),
            cell.errors
        );
        if let Some(postfix_hold) = postfix_slot
            .as_ref()
            .filter(|_| system == System::PostfixHold)
        {
            let hold = check_hold(postfix_hold, &cell)?;
            println!("  {}", hold.line);
        }
    }

    println!(
        "measuring: {} rounds; clients {:?}; sizes {:?}; cell time limit {:?}; reply timeout {:?}",
        options.rounds, options.clients, options.sizes, options.cell_time, REPLY_TIMEOUT
    );
    let mut records = Vec::new();
    'rounds: for round in 0..options.rounds {
        for &clients in &options.clients {
            for &size in &options.sizes {
                for system in round_order(&options.systems, round) {
                    if stop_requested() {
                        break 'rounds;
                    }
                    thread::sleep(SETTLE);
                    let plan = CellPlan {
                        system,
                        clients,
                        size,
                        messages: options.messages_for(clients),
                        time_limit: options.cell_time,
                        tag: format!(
                            "{:012x}.{}{round}.{clients}.{size}",
                            nonce & 0xffff_ffff_ffff,
                            system.letter()
                        ),
                    };
                    let load_before = loadavg();
                    let cell = run_cell(&plan)?;
                    let load_after = loadavg();
                    if stop_requested() {
                        println!(
                            "cell round={round} system={} clients={clients} size={size}: \
                             interrupted after {} messages, not counted",
                            system.name(),
                            cell.accepted
                        );
                        break 'rounds;
                    }
                    println!(
                        "cell round={round} system={} clients={clients} size={size} \
                         messages={}/{}{} secs={:.2} msg/s={:.1} p50_ms={:.1} p99_ms={:.1} \
                         greeting_p99_ms={:.1} errors={} load_before={load_before} \
                         load_after={load_after}",
                        system.name(),
                        cell.accepted,
                        plan.messages,
                        if cell.hit_time_limit {
                            " (time limit)"
                        } else {
                            ""
                        },
                        cell.elapsed.as_secs_f64(),
                        cell.rate(),
                        percentile(&cell.latencies_ms, 50.0),
                        percentile(&cell.latencies_ms, 99.0),
                        percentile(&cell.greetings_ms, 99.0),
                        cell.errors,
                    );
                    for error in &cell.first_errors {
                        println!("  error: {error}");
                    }
                    // A system that died would only add connection errors from here on.
                    match system {
                        System::Mcluster => {
                            if let Some(demo) = demo_slot.as_mut() {
                                demo.ensure_running("during the measurement")?;
                            }
                        }
                        System::PostfixHold => {
                            if let Some(postfix_hold) = postfix_slot.as_ref() {
                                postfix_hold.ensure_running()?;
                            }
                        }
                    }
                    let mut hold_ok = None;
                    if let Some(postfix_hold) = postfix_slot
                        .as_ref()
                        .filter(|_| system == System::PostfixHold)
                    {
                        let hold = check_hold(postfix_hold, &cell)?;
                        println!("  {}", hold.line);
                        hold_ok = Some(hold.ok);
                    }
                    records.push(CellRecord {
                        round,
                        system,
                        clients,
                        size,
                        cell,
                        hold_ok,
                    });
                }
            }
        }
    }
    Ok(records)
}

struct HoldCheck {
    ok: bool,
    line: String,
}

/// Every acknowledged message must sit in the hold queue (a message whose 250 was lost to a
/// client error may sit there too). Then empties the queue, so every cell starts alike.
fn check_hold(postfix_hold: &PostfixHold, cell: &CellResult) -> Result<HoldCheck> {
    let files = postfix_hold.held_files()?;
    let listed = postfix_hold.postqueue_held()?;
    let ok = [files, listed]
        .iter()
        .all(|&n| n >= cell.accepted && n <= cell.accepted + cell.errors);
    postfix_hold.purge_hold()?;
    let after = postfix_hold.held_files()?;
    Ok(HoldCheck {
        ok,
        line: format!(
            "hold check: {files} queue files in hold/, postqueue -p lists {listed} held, for {} \
             acknowledged messages: {}; purged ({after} left)",
            cell.accepted,
            if ok { "ok" } else { "MISMATCH" }
        ),
    })
}

/// Polls until `system` greets and accepts RCPT to the benchmark's mailbox, or fails early if
/// the demo process exits.
fn wait_until_accepting(system: System, mut demo: Option<&mut Demo>) -> Result<Duration> {
    let waited = wait_ready(READY_TIMEOUT, Duration::from_millis(500), || {
        if stop_requested() {
            bail!("interrupted while waiting for {}", system.name());
        }
        if let Some(demo) = demo.as_deref_mut() {
            demo.ensure_running("before accepting mail")?;
        }
        Ok(probe(system.addr()))
    })?;
    waited.with_context(|| {
        let log = demo.map_or_else(String::new, |demo| format!("\n{}", demo.log_end()));
        format!(
            "{} did not accept RCPT {RECIPIENT} on {} within {READY_TIMEOUT:?}{log}",
            system.name(),
            system.addr()
        )
    })
}

/// Greeting, EHLO, MAIL and RCPT without DATA: ready means the mailbox exists, not just the port.
fn probe(addr: SocketAddrV4) -> Result<()> {
    let (mut client, _) = connect(addr, PROBE_TIMEOUT)?;
    client.hello(CLIENT_NAME)?;
    client.command(&format!("MAIL FROM:<{SENDER}>"), 2, "MAIL")?;
    client.command(&format!("RCPT TO:<{RECIPIENT}>"), 2, "RCPT")?;
    client.quit();
    Ok(())
}

/// One message cell: one system, one client count, one size.
struct CellPlan {
    system: System,
    clients: usize,
    size: usize,
    messages: usize,
    time_limit: Duration,
    /// Unique per cell; goes into every Message-ID.
    tag: String,
}

#[derive(Default)]
struct CellResult {
    accepted: usize,
    errors: usize,
    /// From the start to the last 250 (the whole cell if none came).
    elapsed: Duration,
    latencies_ms: Vec<f64>,
    greetings_ms: Vec<f64>,
    first_errors: Vec<String>,
    hit_time_limit: bool,
}

impl CellResult {
    fn rate(&self) -> f64 {
        per_second(self.accepted as f64, self.elapsed.as_secs_f64())
    }
}

struct CellRecord {
    round: usize,
    system: System,
    clients: usize,
    size: usize,
    cell: CellResult,
    /// For postfix-hold cells: whether every acknowledged message was in the hold queue.
    hold_ok: Option<bool>,
}

/// What one session saw.
#[derive(Default)]
struct SessionStats {
    accepted: usize,
    errors: usize,
    latencies_ms: Vec<f64>,
    greetings_ms: Vec<f64>,
    errors_seen: Vec<String>,
    last_accepted: Option<Instant>,
    hit_time_limit: bool,
}

fn run_cell(plan: &CellPlan) -> Result<CellResult> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + plan.time_limit;
    let sessions = run_sessions(plan.clients, |session| {
        run_session(plan, session, &next, deadline)
    })?;
    let mut cell = CellResult::default();
    let mut last_accepted = None;
    for session in sessions {
        cell.accepted += session.accepted;
        cell.errors += session.errors;
        cell.latencies_ms.extend(session.latencies_ms);
        cell.greetings_ms.extend(session.greetings_ms);
        cell.hit_time_limit |= session.hit_time_limit;
        for error in session.errors_seen {
            keep_first(&mut cell.first_errors, error);
        }
        last_accepted = last_accepted.max(session.last_accepted);
    }
    cell.elapsed = last_accepted.unwrap_or_else(Instant::now) - started;
    Ok(cell)
}

/// One persistent session sending messages back to back until the cell's count is taken, its
/// time is up, or a stop signal came. After an error it drops the connection and reconnects for
/// the next message; every attempt, failed connects included, takes a message from the count.
fn run_session(
    plan: &CellPlan,
    session: usize,
    next: &AtomicUsize,
    deadline: Instant,
) -> SessionStats {
    let mut stats = SessionStats::default();
    let mut client: Option<SmtpClient> = None;
    let mut rng = rand::rng();
    loop {
        if stop_requested() {
            break;
        }
        if Instant::now() >= deadline {
            stats.hit_time_limit = true;
            break;
        }
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= plan.messages {
            break;
        }
        let message_id = format!("{k}.{session}.{}@bench.test", plan.tag);
        let subject = format!(
            "smtp_bench {} message {k} session {session}",
            plan.system.name()
        );
        let message = build_message(plan.size, &message_id, &subject, &mut rng);
        match send(&mut client, plan.system.addr(), &message, &mut stats) {
            Ok(latency) => {
                stats.accepted += 1;
                stats.latencies_ms.push(millis(latency));
                stats.last_accepted = Some(Instant::now());
            }
            Err(err) => {
                stats.errors += 1;
                keep_first(&mut stats.errors_seen, format!("{err:#}"));
                client = None;
                // Like a client told to try later, but briefly: no spinning on a refusing
                // server, and each retry still takes a message from the count.
                let pause = ERROR_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                thread::sleep(pause);
            }
        }
    }
    if let Some(client) = client {
        client.quit();
    }
    stats
}

/// Sends one message, connecting first if needed; returns the DATA-dot -> 250 latency.
fn send(
    client: &mut Option<SmtpClient>,
    addr: SocketAddrV4,
    message: &[u8],
    stats: &mut SessionStats,
) -> Result<Duration> {
    let client = reuse_or_connect(client, || {
        let (mut connected, greeting) = connect(addr, CONNECT_TIMEOUT)?;
        stats.greetings_ms.push(millis(greeting));
        connected.hello(CLIENT_NAME)?;
        Ok(connected)
    })?;
    client.send(SENDER, RECIPIENT, message)
}

/// Connects and reads the greeting; returns the session and the time from connect to greeting.
fn connect(addr: SocketAddrV4, timeout: Duration) -> Result<(SmtpClient, Duration)> {
    let started = Instant::now();
    let client = SmtpClient::connect(SocketAddr::V4(addr), timeout, REPLY_TIMEOUT)?;
    Ok((client, started.elapsed()))
}

/// A message of exactly `size` bytes before dot-stuffing, as it goes on the wire (see
/// [`text_message`]); the final dot line is not included.
fn build_message(size: usize, message_id: &str, subject: &str, rng: &mut impl Rng) -> Vec<u8> {
    let headers = [
        ("From", format!("smtp_bench <{SENDER}>")),
        ("To", format!("<{RECIPIENT}>")),
        ("Subject", subject.to_owned()),
        ("Date", rfc5322_date(SystemTime::now())),
        ("Message-ID", format!("<{message_id}>")),
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=us-ascii".to_owned()),
    ];
    dot_stuff(text_message(&headers, size, rng).as_bytes())
}

fn print_summary(options: &Options, records: &[CellRecord]) {
    let both = options.systems.len() == 2;
    for &size in &options.sizes {
        let mut header = vec!["clients".to_owned()];
        for &system in &options.systems {
            header.push(format!("{} msg/s", system.name()));
        }
        if both {
            header.push("ratio".to_owned());
            header.push("band".to_owned());
        }
        for &system in &options.systems {
            header.push(format!("{} 250 p50/p99 ms", system.name()));
        }
        for &system in &options.systems {
            header.push(format!("{} errors", system.name()));
        }
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for &clients in &options.clients {
            let of = |system: System| -> Vec<&CellRecord> {
                records
                    .iter()
                    .filter(|r| r.system == system && r.clients == clients && r.size == size)
                    .collect()
            };
            let rates =
                |system: System| -> Vec<f64> { of(system).iter().map(|r| r.cell.rate()).collect() };
            let mut row = vec![clients.to_string()];
            for &system in &options.systems {
                let rates = rates(system);
                row.push(if rates.is_empty() {
                    "n/a".to_owned()
                } else {
                    format!("{:.1}", median(&rates))
                });
            }
            if both {
                let by_round = |system: System| -> Vec<(usize, f64)> {
                    of(system)
                        .iter()
                        .map(|r| (r.round, r.cell.rate()))
                        .collect()
                };
                // Rounds in which both systems were measured.
                let ratios =
                    round_ratios(&by_round(System::Mcluster), &by_round(System::PostfixHold));
                if ratios.is_empty() {
                    row.push("n/a".to_owned());
                    row.push("n/a".to_owned());
                } else {
                    let (low, high) = band(&rates(System::Mcluster), &rates(System::PostfixHold));
                    row.push(format!("{:.2}", median(&ratios)));
                    row.push(format!("[{low:.2}, {high:.2}]"));
                }
            }
            for &system in &options.systems {
                let latencies: Vec<f64> = of(system)
                    .iter()
                    .flat_map(|r| r.cell.latencies_ms.iter().copied())
                    .collect();
                row.push(format!(
                    "{:.1} / {:.1}",
                    percentile(&latencies, 50.0),
                    percentile(&latencies, 99.0)
                ));
            }
            for &system in &options.systems {
                let errors: usize = of(system).iter().map(|r| r.cell.errors).sum();
                row.push(errors.to_string());
                if errors > 0 {
                    notes.push(format!(
                        "note: {} had {errors} errors at {clients} clients; its msg/s there \
                         counts only accepted messages (see the cell lines)",
                        system.name()
                    ));
                }
            }
            rows.push(row);
        }
        println!();
        println!(
            "summary, {size}-byte messages, {} rounds: median msg/s per system{}; 250 latency \
             p50/p99 over all rounds; errors summed",
            options.rounds,
            if both {
                "; ratio = median over rounds of mcluster/postfix-hold in the same round; band = \
                 [min(mcluster)/max(postfix-hold), max(mcluster)/min(postfix-hold)]"
            } else {
                ""
            }
        );
        print_table(&header, &rows);
        for note in &notes {
            println!("{note}");
        }
    }
}
