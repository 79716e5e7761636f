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

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use chaos_tests::cluster::bin_dir;
use mcluster_bench::driver::{
    SmtpClient, dot_stuff, filesystem_of, loadavg, median, millis, parse_count, percentile, pid_of,
    print_table, rfc5322_date, tail, text_message,
};
use mcluster_bench::postfix::{self, INSTALL_COMMAND, POSTFIX, PostfixHold};
use nix::sys::signal::{SigSet, Signal, kill};
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};

const MCLUSTER_SMTP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 2525);
const POSTFIX_SMTP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 2526);
const SENDER: &str = "bench@bench.test";
const RECIPIENT: &str = "demo@example.test";
const CLIENT_NAME: &str = "smtp-bench.bench.test";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// For each reply, from the command (or the connect) to its last line.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The demo gives each of its three nodes 10 s after SIGTERM.
const DEMO_STOP_GRACE: Duration = Duration::from_secs(60);
/// Lets the disk and the servers settle between cells.
const SETTLE: Duration = Duration::from_secs(1);
const WARMUP_MESSAGES: usize = 100;
const SHOWN_ERRORS: usize = 3;
/// A session waits this long after an error before its next attempt.
const ERROR_PAUSE: Duration = Duration::from_millis(500);
/// Room above the largest cell's sessions in the cluster's connection limits (probes, sessions
/// of the previous cell still closing).
const ADMIT_MARGIN: u64 = 16;
const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// The demo's client config, in the benchmark's directory, not the user's.
const DEMO_CLIENT_CONFIG: &str = "client.toml";

/// Set by the signal thread; every loop and wait checks it.
static STOP: AtomicBool = AtomicBool::new(false);

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
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>> {
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
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--rounds" => options.rounds = parse_count(&flag, &value)?,
                "--messages" => options.messages = Some(parse_count(&flag, &value)?),
                "--sizes" => options.sizes = parse_list(&flag, &value)?,
                "--clients" => options.clients = parse_list(&flag, &value)?,
                "--cell-seconds" => {
                    options.cell_time = Duration::from_secs(parse_count(&flag, &value)? as u64);
                }
                "--only" => {
                    options.systems = match value.as_str() {
                        "mcluster" => vec![System::Mcluster],
                        "postfix" | "postfix-hold" => vec![System::PostfixHold],
                        _ => bail!("--only takes mcluster or postfix, not {value:?}"),
                    };
                }
                "--dir" => options.dir = PathBuf::from(value),
                "--protection" => options.protection.push(value),
                "--access" => {
                    let (list, pattern) = value
                        .split_once(':')
                        .with_context(|| format!("--access takes LIST:PATTERN, not {value:?}"))?;
                    options.access.push((list.to_owned(), pattern.to_owned()));
                }
                _ => bail!("unknown flag {flag:?}\n{USAGE}"),
            }
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

fn parse_list(flag: &str, value: &str) -> Result<Vec<usize>> {
    value
        .split(',')
        .map(|item| parse_count(flag, item.trim()))
        .collect()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    if options.wants(System::PostfixHold) {
        if !PostfixHold::is_installed() {
            bail!(
                "{POSTFIX} is missing. Install Postfix without starting any service (as root, from \
                 the workspace root): {INSTALL_COMMAND}\n(it runs: echo \"postfix \
                 postfix/main_mailer_type select Local only\" | debconf-set-selections; \
                 DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix)"
            );
        }
        let euid = fs::metadata("/proc/self").context("read /proc/self")?.uid();
        if euid != 0 {
            bail!("run as root: the private Postfix (postfix start) needs it");
        }
    }
    catch_stop_signals()?;

    fs::create_dir_all(&options.dir)
        .with_context(|| format!("create {}", options.dir.display()))?;
    // Dropped last: the systems below live in it and stop first.
    let work = tempfile::Builder::new()
        .prefix("smtp-bench-")
        .tempdir_in(&options.dir)
        .context("create the work directory")?;
    println!(
        "work dir {} on {}; load {}",
        work.path().display(),
        filesystem_of(work.path()),
        loadavg()
    );

    let mut postfix_hold = None;
    let mut demo = None;
    let measured = start_and_measure(&options, work.path(), &mut postfix_hold, &mut demo);

    let mut clean_stop = true;
    if let Some(demo) = demo.as_mut() {
        let pid = demo.child.id();
        match demo.stop() {
            Ok(()) => println!("mcluster demo (pid {pid}) stopped"),
            Err(err) => {
                eprintln!("stop the mcluster demo (pid {pid}): {err:#}");
                clean_stop = false;
            }
        }
    }
    if let Some(postfix_hold) = postfix_hold.as_mut() {
        let pid = postfix_hold.master_pid();
        match postfix_hold.stop() {
            Ok(()) => println!("postfix-hold (master pid {pid}) stopped"),
            Err(err) => {
                eprintln!("stop postfix-hold (master pid {pid}): {err:#}");
                clean_stop = false;
            }
        }
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
    if STOP.load(Ordering::SeqCst) {
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
    // The demo starts first: its spawn briefly unblocks the stop signals (see `Demo::start`),
    // and nothing else runs yet that a signal in that moment would orphan.
    if options.wants(System::Mcluster) {
        let dir = work.join("mcluster");
        fs::create_dir(&dir).context("create the mcluster directory")?;
        let demo = demo_slot.insert(Demo::start(&dir)?);
        println!(
            "mcluster demo: pid {}, dir {}, log {}",
            demo.child.id(),
            dir.join("demo").display(),
            demo.log.display()
        );
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
        let changed = demo.admit_sessions(max_clients)?;
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
                let mut order = options.systems.clone();
                if round % 2 == 1 {
                    order.reverse();
                }
                for system in order {
                    if STOP.load(Ordering::SeqCst) {
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
                    if STOP.load(Ordering::SeqCst) {
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
    let started = Instant::now();
    let mut last_error = anyhow!("not tried yet");
    while started.elapsed() < READY_TIMEOUT {
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted while waiting for {}", system.name());
        }
        if let Some(demo) = demo.as_deref_mut() {
            demo.ensure_running("before accepting mail")?;
        }
        match probe(system.addr()) {
            Ok(()) => return Ok(started.elapsed()),
            Err(err) => last_error = err,
        }
        thread::sleep(Duration::from_millis(500));
    }
    let log = match demo {
        Some(demo) => format!(
            "\nthe end of {}:\n{}",
            demo.log.display(),
            tail(&demo.log, 20)
        ),
        None => String::new(),
    };
    Err(last_error.context(format!(
        "{} did not accept RCPT {RECIPIENT} on {} within {READY_TIMEOUT:?}{log}",
        system.name(),
        system.addr()
    )))
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
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.accepted as f64 / secs
        } else {
            0.0
        }
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
    let sessions: Vec<SessionStats> = thread::scope(|scope| {
        let handles: Vec<_> = (0..plan.clients)
            .map(|session| {
                let next = &next;
                scope.spawn(move || run_session(plan, session, next, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow!("a client thread panicked"))
            })
            .collect::<Result<_>>()
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
            if cell.first_errors.len() < SHOWN_ERRORS {
                cell.first_errors.push(error);
            }
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
        if STOP.load(Ordering::SeqCst) {
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
                if stats.errors_seen.len() < SHOWN_ERRORS {
                    stats.errors_seen.push(format!("{err:#}"));
                }
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
    let client = match client {
        Some(client) => client,
        None => {
            let (mut connected, greeting) = connect(addr, CONNECT_TIMEOUT)?;
            stats.greetings_ms.push(millis(greeting));
            connected.hello(CLIENT_NAME)?;
            client.insert(connected)
        }
    };
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
    dot_stuff(&text_message(&headers, size, rng))
}

/// The demo cluster as a child process. Dropping it stops it.
struct Demo {
    child: Child,
    ctl: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    stopped: bool,
}

impl Demo {
    fn start(dir: &Path) -> Result<Demo> {
        let ctl = bin_dir().join("mclusterctl");
        if !ctl.is_file() {
            bail!(
                "{} is missing: build the binaries first (cargo build --release --workspace --bins)",
                ctl.display()
            );
        }
        if TcpStream::connect_timeout(&SocketAddr::V4(MCLUSTER_SMTP), Duration::from_secs(1))
            .is_ok()
        {
            bail!("something already listens on {MCLUSTER_SMTP}: is another demo running?");
        }
        let log = dir.join("demo.log");
        let log_file = File::create(&log).context("create the demo log")?;
        let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let mut command = Command::new(&ctl);
        command
            // Its own client config, so the user's stays untouched.
            .arg("--config")
            .arg(dir.join(DEMO_CLIENT_CONFIG))
            .arg("demo")
            .arg("--dir")
            .arg(dir.join("demo"))
            .arg("--password")
            .arg(password)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("share the demo log")?)
            .stderr(log_file);
        // A child inherits the blocked signal mask across exec (std does not reset it), and
        // the demo and its nodes would then never see SIGTERM. So this thread unblocks the stop
        // signals for the moment of the spawn; a signal in that moment ends the benchmark,
        // before it has started anything else. The demo stays in our process group: a Ctrl-C
        // at the terminal reaches it too, and it stops its nodes itself.
        let signals = stop_signals();
        signals.thread_unblock().context("unblock stop signals")?;
        let spawned = command.spawn();
        signals.thread_block().context("block stop signals")?;
        let child = spawned.with_context(|| format!("start {} demo", ctl.display()))?;
        Ok(Demo {
            child,
            ctl,
            dir: dir.to_path_buf(),
            log,
            stopped: false,
        })
    }

    /// Makes the cluster admit `n_sessions` sessions from one address, as postfix-hold does
    /// (its per-client limit is off): every benchmark session comes from 127.0.0.1. Returns
    /// what it changed.
    fn admit_sessions(&self, n_sessions: usize) -> Result<Vec<String>> {
        let shown = self.ctl(&["policy", "show", "--json"])?;
        let policy: serde_json::Value =
            serde_json::from_str(&shown).context("parse `mclusterctl policy show --json`")?;
        let wanted = n_sessions as u64 + ADMIT_MARGIN;
        let mut settings = Vec::new();
        for key in ["smtp-connections-per-ip", "max-connections"] {
            let value = policy[key]
                .as_u64()
                .with_context(|| format!("the mail policy has no number {key}: {shown}"))?;
            if value < wanted {
                settings.push((key, value));
            }
        }
        if settings.is_empty() {
            return Ok(Vec::new());
        }
        let assignments: Vec<String> = settings
            .iter()
            .map(|(key, _)| format!("{key}={wanted}"))
            .collect();
        let mut args = vec!["policy", "set"];
        args.extend(assignments.iter().map(String::as_str));
        self.ctl(&args)?;
        Ok(settings
            .iter()
            .map(|(key, value)| format!("{key} {value} -> {wanted}"))
            .collect())
    }

    /// `mclusterctl --config <the demo's client config> ARGS`, bounded in time; its stdout.
    fn ctl(&self, args: &[&str]) -> Result<String> {
        mcluster_bench::driver::run_ctl(
            &self.ctl,
            &self.dir.join(DEMO_CLIENT_CONFIG),
            args,
            &self.dir,
            CTL_TIMEOUT,
        )
    }

    fn ensure_running(&mut self, when: &str) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("check the demo process")? {
            bail!(
                "the mcluster demo exited ({status}) {when}; the end of {}:\n{}",
                self.log.display(),
                tail(&self.log, 20)
            );
        }
        Ok(())
    }

    /// SIGTERM (the demo stops its nodes itself), then waits; kills the demo and its children
    /// by PID if it overstays.
    fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = self.child.id();
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        kill(pid_of(pid), Signal::SIGTERM).context("send SIGTERM to the demo")?;
        let deadline = Instant::now() + DEMO_STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        let children = postfix::child_pids(pid);
        for victim in std::iter::once(pid).chain(children.iter().copied()) {
            let _ = kill(pid_of(victim), Signal::SIGKILL);
        }
        self.child.wait()?;
        bail!(
            "the demo did not stop within {DEMO_STOP_GRACE:?}; killed it and its children \
             {children:?}"
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("stop the mcluster demo: {err:#}");
        }
    }
}

fn stop_signals() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
}

/// Blocks SIGINT, SIGTERM and SIGHUP in every thread (threads inherit the mask, so this runs
/// before any other thread starts) and lets one thread take them and set [`STOP`], so the
/// benchmark always gets to stop what it started. Postfix's master resets its own mask.
fn catch_stop_signals() -> Result<()> {
    let signals = stop_signals();
    signals.thread_block().context("block stop signals")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(signal) = signals.wait() {
                STOP.store(true, Ordering::SeqCst);
                eprintln!("{signal} received: finishing the cell and stopping what was started");
            }
        })
        .context("start the signal thread")?;
    Ok(())
}

fn print_summary(options: &Options, records: &[CellRecord]) {
    let both = options.systems.len() == 2;
    let ours = System::Mcluster;
    let reference = System::PostfixHold;
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
                let (ours_cells, reference_cells) = (of(ours), of(reference));
                // Rounds in which both systems were measured.
                let ratios: Vec<f64> = ours_cells
                    .iter()
                    .filter_map(|o| {
                        let r = reference_cells.iter().find(|r| r.round == o.round)?;
                        (r.cell.rate() > 0.0).then(|| o.cell.rate() / r.cell.rate())
                    })
                    .collect();
                let (ours_rates, reference_rates) = (rates(ours), rates(reference));
                let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if ratios.is_empty() {
                    row.push("n/a".to_owned());
                    row.push("n/a".to_owned());
                } else {
                    row.push(format!("{:.2}", median(&ratios)));
                    row.push(format!(
                        "[{:.2}, {:.2}]",
                        min(&ours_rates) / max(&reference_rates),
                        max(&ours_rates) / min(&reference_rates)
                    ));
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
