//! Fetch-all benchmark: how fast POP3 and IMAP clients download whole mailboxes from the demo
//! cluster (`mclusterctl demo`; POP3 on 127.0.0.11:2110, IMAP on 127.0.0.11:2143) compared with
//! a private Dovecot 2.3 (IMAP on 127.0.0.1:3143, POP3 on 127.0.0.1:3110) holding the same
//! messages, measured in the same run, in interleaved rounds, by the same client. Each summary
//! row gives the median ratio of messages per second (the median over rounds of
//! mcluster/dovecot in the same round) and its band [min(mcluster)/max(dovecot),
//! max(mcluster)/min(dovecot)].
//!
//! Run as root (Dovecot, the Maildir owners and dropping the page cache need it), after
//! `sh deploy/bench-setup.sh` and `cargo build --release --workspace --bins`:
//! `target/release/fetch_bench [--rounds N] [--messages M] [--size BYTES] [--accounts A]
//! [--per-account K] [--clients C] [--only mcluster|dovecot] [--protocols imap,pop3]
//! [--shapes one,many] [--cell-seconds S] [--no-drop-caches] [--dovecot-passdb static|argon2id]
//! [--dir DIR]`. Numbers from a debug build say nothing about mcluster.
//!
//! What it measures:
//! - Shapes: `one-mailbox`, one account holding `--messages` messages of `--size` bytes
//!   (default 5,000 x 10 KiB), fetched by one client; `many-mailboxes`, `--accounts` accounts
//!   (default 200) of `--per-account` messages (default 25) of random sizes between 2 and
//!   50 KiB, fetched by `--clients` parallel clients (default 8) that take accounts from a
//!   shared queue, one session per account.
//! - Protocols: POP3 is USER, PASS, LIST, RETR of every message one at a time, QUIT (no DELE).
//!   IMAP is LOGIN, SELECT INBOX, one `FETCH 1:* BODY.PEEK[]`, LOGOUT. Both use plain TCP and
//!   plaintext logins (the cluster's policy `auth-without-tls` is set to true for this).
//! - Cold and warm: before each (shape, protocol, system) the system is stopped, for Dovecot its
//!   index files (`dovecot.index*`, `dovecot.list.index*`) are deleted (the `dovecot-uidlist`
//!   stays: it is the mailbox's UID state, which the cluster keeps too), the system is started
//!   and waited for until it answers (mcluster: SMTP RCPT and a POP3 login of the demo user,
//!   which needs a leader, and the IMAP greeting; Dovecot: both greetings), then `sync` and `echo 3 > /proc/sys/vm/drop_caches`
//!   (unless `--no-drop-caches`). The first full fetch after that is the cold cell; the same
//!   fetch repeated at once is the warm cell. The cold cell thus includes Dovecot rebuilding its
//!   index and the cluster reading its RocksDB and blob files back from disk.
//! - Rounds alternate the systems (mcluster first in even rounds, Dovecot first in odd ones)
//!   for each (shape, protocol), so both run under similar load; /proc/loadavg is logged per
//!   cell. Messages per second counts verified messages from the cell's start to the end of its
//!   last session, logins and logouts included; MB/s is 10^6 bytes of fetched messages per s.
//! - Every fetched message is checked: it must carry one of the benchmark's Message-IDs for
//!   this account, end with exactly the bytes that were delivered, have only trace header
//!   lines before them, arrive once, and for POP3 be as long as LIST said. Every message
//!   that is missing, duplicated or different, and every failed session, is counted as an
//!   error and shown; the rate counts only verified messages.
//!
//! How the mailboxes are filled: the messages are generated once (random words, CRLF line
//! ends, lines of at most 78 characters, lone-dot and leading-dot lines to exercise
//! dot-stuffing). The accounts are `fetch-one@example.test` and `fetch-mNNNN@example.test`,
//! all with one random password. The cluster gets the messages over SMTP (127.0.0.11:2525,
//! 8 sessions) to accounts made with `mclusterctl user add`; it stores each with a Return-Path and a Received header in
//! front. Dovecot's Maildirs are written directly: each message is a file in cur/ with a
//! unique Postfix-style name (no `,S=` size in it), holding a Return-Path and a Received header
//! of the cluster's form followed by the same bytes, so both servers hold messages of the
//! same size within a few bytes. BENCHMARKS.md says "Maildir filled by Postfix"; writing the
//! files directly gives the same Maildir layout without a delivery path, with one difference:
//! Postfix writes LF line ends, which Dovecot turns back into CRLF on every fetch, while these
//! files hold the CRLF form the clients receive.
//!
//! Logins: the cluster checks an Argon2id hash (default parameters) and then remembers the
//! login for 15 minutes in memory, so after a restart the cold cell pays one verification per
//! account and the warm cell none. Dovecot's passdb is `static` with the password in clear (as
//! BENCHMARKS.md describes the reference) unless `--dovecot-passdb argon2id`, which gives it a
//! passwd-file with an Argon2id hash of the same parameters, verified on every login (Dovecot's
//! auth cache keeps the looked-up hash, not the verdict, so it would not spare the hashing).
//! The login time (connect to logged in) is reported per cell, so the difference shows in the
//! many-mailboxes shape, which logs in once per account. Dovecot's login processes run in its
//! documented high-performance mode (long-lived, one per CPU) rather than its default of one
//! process per connection, which costs a fork and exec per login (about 1.5-2x fewer messages
//! per second in that shape on a 2-core machine); its mail processes stay one per session.
//!
//! All clients connect to the data node n1 (127.0.0.11), whichever node leads. If nothing
//! answers IMAP there (the cluster's IMAP server may not exist yet), the benchmark says so,
//! measures IMAP on Dovecot alone (no ratio) and POP3 on both. Clients are blocking, one
//! thread each; every read has an idle timeout and every cell a time limit. Everything the
//! benchmark starts is stopped by PID when it ends, also on errors and signals.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use mcluster_bench::command_line::{read_flags, run_main};
use mcluster_bench::demo::{Demo, MCLUSTER_SMTP};
use mcluster_bench::dovecot::{self, Dovecot, Passdb};
use mcluster_bench::driver::{
    CONNECT_TIMEOUT, SETTLE, SHOWN_ERRORS, band, dot_stuff, in_threads, is_root, keep_first,
    loadavg, median, millis, per_second, reuse_or_connect, rfc5322_date, round_order, round_ratios,
    text_message, wait_ready, work_dir,
};
use mcluster_bench::process::{catch_stop_signals, stop_requested};
use rand::Rng;
use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::ThreadRng;

const MCLUSTER_POP3: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 2110);
const MCLUSTER_IMAP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 2143);
const DOVECOT_IMAP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 3143);
const DOVECOT_POP3: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 3110);
/// The demo's mail domain and user (see cli/src/demo.rs).
const DOMAIN: &str = "example.test";
const DEMO_USER: &str = "demo@example.test";
const SENDER: &str = "bench@bench.test";
const CLIENT_NAME: &str = "fetch-bench.bench.test";

/// A read fails after this long without a byte.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const CTL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bounds the whole SMTP fill.
const FILL_TIMEOUT: Duration = Duration::from_secs(3600);
const FILL_SESSIONS: usize = 8;
const FILL_ATTEMPTS: usize = 3;
const FILL_PROGRESS: Duration = Duration::from_secs(15);
const BUFFER_BYTES: usize = 64 * 1024;
const MAX_LITERAL: usize = 64 * 1024 * 1024;
const MAX_LITERALS_PER_RESPONSE: usize = 16;
const MAX_REPLY_LINES: usize = 64;
const MIXED_SIZES: (usize, usize) = (2 * 1024, 50 * 1024);
const MAX_CORPUS_BYTES: usize = 4 << 30;

const USAGE: &str = "\
usage: fetch_bench [--rounds N] [--messages M] [--size BYTES] [--accounts A] [--per-account K]
                   [--clients C] [--only mcluster|dovecot] [--protocols imap,pop3]
                   [--shapes one,many] [--cell-seconds S] [--no-drop-caches]
                   [--dovecot-passdb static|argon2id] [--dir DIR]

  --rounds N           interleaved rounds (default 3)
  --messages M         messages in the one-mailbox shape (default 5000)
  --size BYTES         their size (default 10240)
  --accounts A         accounts in the many-mailboxes shape (default 200)
  --per-account K      messages per account there, 2-50 KiB each (default 25)
  --clients C          parallel clients in the many-mailboxes shape (default 8)
  --only SYSTEM        measure only mcluster or only dovecot (no ratio)
  --protocols LIST     imap, pop3 or both (default imap,pop3)
  --shapes LIST        one (one mailbox), many (many mailboxes) or both (default one,many)
  --cell-seconds S     time limit of a cell (default 600)
  --no-drop-caches     cold cells keep the page cache (only the servers restart)
  --dovecot-passdb P   static (password in clear, default) or argon2id (as the cluster hashes)
  --dir DIR            where the temporary work directory goes (default $TMPDIR or /tmp)

mcluster: `mclusterctl demo` from the directory of this binary; POP3 127.0.0.11:2110, IMAP
127.0.0.11:2143. dovecot: a private Dovecot, IMAP 127.0.0.1:3143, POP3 127.0.0.1:3110.
Run as root.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Mcluster,
    Dovecot,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Mcluster => "mcluster",
            System::Dovecot => "dovecot",
        }
    }

    fn addr(self, protocol: Protocol) -> SocketAddrV4 {
        match (self, protocol) {
            (System::Mcluster, Protocol::Pop3) => MCLUSTER_POP3,
            (System::Mcluster, Protocol::Imap) => MCLUSTER_IMAP,
            (System::Dovecot, Protocol::Pop3) => DOVECOT_POP3,
            (System::Dovecot, Protocol::Imap) => DOVECOT_IMAP,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Imap,
    Pop3,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    OneMailbox,
    ManyMailboxes,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::OneMailbox => "one-mailbox",
            Shape::ManyMailboxes => "many-mailboxes",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Temperature {
    Cold,
    Warm,
}

impl Temperature {
    fn name(self) -> &'static str {
        match self {
            Temperature::Cold => "cold",
            Temperature::Warm => "warm",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DovecotPassdb {
    Static,
    Argon2id,
}

struct Options {
    rounds: usize,
    messages: usize,
    size: usize,
    accounts: usize,
    per_account: usize,
    clients: usize,
    systems: Vec<System>,
    protocols: Vec<Protocol>,
    shapes: Vec<Shape>,
    cell_time: Duration,
    drop_caches: bool,
    dovecot_passdb: DovecotPassdb,
    dir: PathBuf,
}

impl Options {
    /// `None` when the user asked for help.
    fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>> {
        let mut options = Options {
            rounds: 3,
            messages: 5000,
            size: 10 * 1024,
            accounts: 200,
            per_account: 25,
            clients: 8,
            systems: vec![System::Mcluster, System::Dovecot],
            protocols: vec![Protocol::Imap, Protocol::Pop3],
            shapes: vec![Shape::OneMailbox, Shape::ManyMailboxes],
            cell_time: Duration::from_secs(600),
            drop_caches: true,
            dovecot_passdb: DovecotPassdb::Static,
            dir: std::env::temp_dir(),
        };
        let read = read_flags(args, USAGE, &["--no-drop-caches"], |flag| {
            let value = &flag.value;
            match flag.name.as_str() {
                "--no-drop-caches" => options.drop_caches = false,
                "--rounds" => options.rounds = flag.count()?,
                "--messages" => options.messages = flag.count()?,
                "--size" => options.size = flag.count()?,
                "--accounts" => options.accounts = flag.count()?,
                "--per-account" => options.per_account = flag.count()?,
                "--clients" => options.clients = flag.count()?,
                "--cell-seconds" => options.cell_time = flag.seconds()?,
                "--only" => {
                    options.systems = flag.only(System::Mcluster, System::Dovecot, &["dovecot"])?;
                }
                "--protocols" => {
                    options.protocols = flag.items(|name| match name {
                        "imap" => Some(Protocol::Imap),
                        "pop3" => Some(Protocol::Pop3),
                        _ => None,
                    })?;
                }
                "--shapes" => {
                    options.shapes = flag.items(|name| match name {
                        "one" | "one-mailbox" => Some(Shape::OneMailbox),
                        "many" | "many-mailboxes" => Some(Shape::ManyMailboxes),
                        _ => None,
                    })?;
                }
                "--dovecot-passdb" => {
                    options.dovecot_passdb = match value.as_str() {
                        "static" => DovecotPassdb::Static,
                        "argon2id" => DovecotPassdb::Argon2id,
                        _ => bail!("--dovecot-passdb takes static or argon2id, not {value:?}"),
                    };
                }
                "--dir" => options.dir = PathBuf::from(value),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if !read {
            return Ok(None);
        }
        ensure!(
            (1024..=10_000_000).contains(&options.size),
            "--size {} is outside 1024..=10000000 bytes",
            options.size
        );
        ensure!(options.messages <= 200_000, "--messages is at most 200000");
        ensure!(options.accounts <= 5000, "--accounts is at most 5000");
        ensure!(options.per_account <= 1000, "--per-account is at most 1000");
        ensure!(options.clients <= 64, "--clients is at most 64");
        ensure!(options.rounds <= 100, "--rounds is at most 100");
        let corpus_bytes = options.wanted(Shape::OneMailbox) as usize
            * options.messages.saturating_mul(options.size)
            + options.wanted(Shape::ManyMailboxes) as usize
                * options
                    .accounts
                    .saturating_mul(options.per_account)
                    .saturating_mul(MIXED_SIZES.1);
        ensure!(
            corpus_bytes <= MAX_CORPUS_BYTES,
            "the messages would take up to {corpus_bytes} bytes of memory; the limit is \
             {MAX_CORPUS_BYTES}"
        );
        Ok(Some(options))
    }

    fn wants(&self, system: System) -> bool {
        self.systems.contains(&system)
    }

    fn wanted(&self, shape: Shape) -> bool {
        self.shapes.contains(&shape)
    }

    fn clients_for(&self, shape: Shape) -> usize {
        match shape {
            Shape::OneMailbox => 1,
            Shape::ManyMailboxes => self.clients,
        }
    }
}

fn main() -> ExitCode {
    run_main(USAGE, Options::parse, run)
}

fn run(options: Options) -> Result<()> {
    if options.wants(System::Dovecot) && !Dovecot::is_installed() {
        bail!(
            "{} is missing. Install Dovecot without starting any service (as root, from the \
             workspace root): {}",
            dovecot::DOVECOT,
            dovecot::INSTALL_COMMAND
        );
    }
    if !is_root()? && (options.wants(System::Dovecot) || options.drop_caches) {
        bail!(
            "run as root: the private Dovecot and dropping the page cache need it (or use \
             --only mcluster --no-drop-caches)"
        );
    }
    catch_stop_signals()?;

    // Dropped last: the systems below live in it and stop first.
    let work = work_dir(&options.dir, "fetch-bench-")?;
    // Dovecot's mail processes (as nobody) reach their Maildirs through it.
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o711))
        .context("open the work directory to the mail user")?;
    let started = Instant::now();
    let corpus = Corpus::generate(&options);
    println!(
        "generated {} messages ({:.1} MB) in {} mailboxes in {:.1?}",
        corpus.n_messages(),
        corpus.n_bytes() as f64 / 1e6,
        corpus.mailboxes.len(),
        started.elapsed()
    );

    let mut systems = Systems::default();
    let measured = set_up_and_measure(&options, &corpus, work.path(), &mut systems);
    let clean_stop = systems.stop_all();
    let (records, imap_note) = measured?;
    print_summary(&options, &records, imap_note.as_deref());
    if !clean_stop {
        bail!("a system under test did not stop cleanly (see above)");
    }
    if stop_requested() {
        bail!("interrupted");
    }
    let bad_cells = records.iter().filter(|r| !r.cell.complete()).count();
    if bad_cells > 0 {
        bail!("{bad_cells} cells had errors or missing messages (see the cell lines)");
    }
    Ok(())
}

/// What the benchmark started; the caller stops it whatever happened.
#[derive(Default)]
struct Systems {
    demo: Option<Demo>,
    dovecot: Option<Dovecot>,
}

impl Systems {
    /// Stops both; false if one did not stop cleanly.
    fn stop_all(&mut self) -> bool {
        let mut clean = true;
        if let Some(demo) = self.demo.as_mut() {
            clean &= demo.stop_and_report();
        }
        if let Some(dovecot) = self.dovecot.as_mut() {
            clean &= dovecot.stop_and_report();
        }
        clean
    }
}

/// Starts and fills the systems (into `systems`, so the caller stops them whatever happens
/// here), then runs every round. Also returns why IMAP was not measured on mcluster, if not.
fn set_up_and_measure(
    options: &Options,
    corpus: &Corpus,
    work: &Path,
    systems: &mut Systems,
) -> Result<(Vec<CellRecord>, Option<String>)> {
    let password = Alphanumeric.sample_string(&mut rand::rng(), 20);
    let mut imap_note = None;
    if options.wants(System::Mcluster) {
        let demo_password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let demo = systems
            .demo
            .insert(Demo::create(work, &demo_password, CTL_TIMEOUT)?);
        let waited = wait_demo_ready(demo, false, false)?;
        println!("mcluster accepts RCPT {DEMO_USER} on {MCLUSTER_SMTP} after {waited:.1?}");
        // Clients log in without TLS (both servers are measured over plain TCP).
        let changed = demo.raise_policy(
            &[
                "imap-connections-per-ip",
                "pop3-connections-per-ip",
                "max-connections",
            ],
            options.clients.max(FILL_SESSIONS),
            &["auth-without-tls"],
        )?;
        if !changed.is_empty() {
            println!("mcluster policy: {}", changed.join(", "));
        }
        fill_mcluster(demo, corpus, &password)?;
        if options.protocols.contains(&Protocol::Imap) {
            match probe_imap(MCLUSTER_IMAP, DEMO_USER, demo.password()) {
                Ok(()) => println!("mcluster IMAP answers on {MCLUSTER_IMAP}"),
                Err(err) => {
                    let note = format!(
                        "IMAP on mcluster is unavailable ({MCLUSTER_IMAP}: {err:#}); IMAP is \
                         measured on dovecot alone, without a ratio"
                    );
                    println!("{note}");
                    imap_note = Some(note);
                }
            }
        }
    }
    if options.wants(System::Dovecot) {
        let dir = work.join("dovecot");
        fs::create_dir(&dir).context("create the dovecot directory")?;
        for addr in [DOVECOT_IMAP, DOVECOT_POP3] {
            TcpListener::bind(addr)
                .with_context(|| format!("{addr} is taken; the private dovecot needs it"))?;
        }
        let passdb = match options.dovecot_passdb {
            DovecotPassdb::Static => Passdb::Static {
                password: password.clone(),
            },
            DovecotPassdb::Argon2id => {
                let hash = argon2id_hash(&password)?;
                Passdb::PasswdFile {
                    users: corpus
                        .mailboxes
                        .iter()
                        .map(|mailbox| (mailbox.address.clone(), format!("{{ARGON2ID}}{hash}")))
                        .collect(),
                }
            }
        };
        let dovecot = systems.dovecot.insert(Dovecot::configure(
            &dir,
            DOVECOT_IMAP,
            DOVECOT_POP3,
            &passdb,
        )?);
        fill_dovecot(dovecot, corpus)?;
        let pid = dovecot.start()?;
        let waited = wait_dovecot_ready(dovecot)?;
        println!(
            "dovecot: master pid {pid}, config {}, log {}, IMAP {DOVECOT_IMAP}, POP3 \
             {DOVECOT_POP3}, passdb {}; answers after {waited:.1?}",
            dovecot.config_path().display(),
            dovecot.log_path().display(),
            match options.dovecot_passdb {
                DovecotPassdb::Static => "static (clear)",
                DovecotPassdb::Argon2id => "passwd-file (Argon2id)",
            }
        );
    }
    for &system in &options.systems {
        check_fill(system, corpus, &password, options.clients)?;
    }

    let mut records = Vec::new();
    println!(
        "measuring: {} rounds; shapes {:?}; protocols {:?}; many-mailboxes clients {}; cell time \
         limit {:?}; idle timeout {IDLE_TIMEOUT:?}; cold = restart{}",
        options.rounds,
        options.shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        options
            .protocols
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>(),
        options.clients,
        options.cell_time,
        if options.drop_caches {
            " + drop caches"
        } else {
            " only (--no-drop-caches)"
        }
    );
    'rounds: for round in 0..options.rounds {
        for &shape in &options.shapes {
            for &protocol in &options.protocols {
                for system in round_order(&options.systems, round) {
                    if system == System::Mcluster
                        && protocol == Protocol::Imap
                        && imap_note.is_some()
                    {
                        continue;
                    }
                    if stop_requested() {
                        break 'rounds;
                    }
                    let imap_available =
                        options.protocols.contains(&Protocol::Imap) && imap_note.is_none();
                    let restart = restart_cold(system, systems, options, imap_available)?;
                    println!(
                        "round={round} {} {} {}: {restart}",
                        protocol.name(),
                        shape.name(),
                        system.name()
                    );
                    for temperature in [Temperature::Cold, Temperature::Warm] {
                        if stop_requested() {
                            break 'rounds;
                        }
                        if temperature == Temperature::Warm {
                            thread::sleep(SETTLE);
                        }
                        let plan = CellPlan {
                            system,
                            protocol,
                            clients: options.clients_for(shape),
                            time_limit: options.cell_time,
                        };
                        let load_before = loadavg();
                        let cell = run_cell(&plan, corpus, corpus.of(shape), &password);
                        let load_after = loadavg();
                        if stop_requested() {
                            println!(
                                "cell round={round} {} {} {} {}: interrupted, not counted",
                                system.name(),
                                protocol.name(),
                                shape.name(),
                                temperature.name()
                            );
                            break 'rounds;
                        }
                        println!(
                            "cell round={round} system={} protocol={} shape={} temp={} \
                             clients={} messages={}/{}{} MB={:.1} secs={:.2} msg/s={:.1} \
                             MB/s={:.1} login_p50_ms={:.1} errors={} load_before={load_before} \
                             load_after={load_after}",
                            system.name(),
                            protocol.name(),
                            shape.name(),
                            temperature.name(),
                            plan.clients,
                            cell.verified,
                            cell.expected,
                            if cell.hit_time_limit {
                                " (time limit)"
                            } else {
                                ""
                            },
                            cell.bytes as f64 / 1e6,
                            cell.elapsed.as_secs_f64(),
                            cell.rate(),
                            cell.megabytes_per_second(),
                            median(&cell.logins_ms),
                            cell.errors,
                        );
                        for error in &cell.first_errors {
                            println!("  error: {error}");
                        }
                        systems.ensure_running(system)?;
                        records.push(CellRecord {
                            round,
                            system,
                            protocol,
                            shape,
                            temperature,
                            cell,
                        });
                    }
                }
            }
        }
    }
    Ok((records, imap_note))
}

impl Systems {
    fn ensure_running(&mut self, system: System) -> Result<()> {
        match system {
            System::Mcluster => self
                .demo
                .as_mut()
                .map_or(Ok(()), |demo| demo.ensure_running("during the measurement")),
            System::Dovecot => self
                .dovecot
                .as_mut()
                .map_or(Ok(()), Dovecot::ensure_running),
        }
    }
}

/// Restarts `system` as a cold cell wants it (see the module doc); says what it did.
/// `imap_available`: whether the cluster answered IMAP before, so it must again.
fn restart_cold(
    system: System,
    systems: &mut Systems,
    options: &Options,
    imap_available: bool,
) -> Result<String> {
    let started = Instant::now();
    let mut what = match system {
        System::Mcluster => {
            let mut old = systems.demo.take().context("the demo is not running")?;
            old.stop().context("stop the demo for a cold start")?;
            let demo = systems
                .demo
                .insert(Demo::start(old.dir(), old.password(), CTL_TIMEOUT)?);
            wait_demo_ready(demo, true, imap_available)?;
            format!("mcluster restarted (demo pid {})", demo.pid())
        }
        System::Dovecot => {
            let dovecot = systems.dovecot.as_mut().context("dovecot is not running")?;
            dovecot.stop().context("stop dovecot for a cold start")?;
            let n_removed = dovecot.remove_indexes()?;
            let pid = dovecot.start()?;
            wait_dovecot_ready(dovecot)?;
            format!("dovecot restarted (master pid {pid}) after removing {n_removed} index files")
        }
    };
    if options.drop_caches {
        drop_caches()?;
        what.push_str(", page cache dropped");
    }
    what.push_str(&format!(", in {:.1?}", started.elapsed()));
    Ok(what)
}

fn drop_caches() -> Result<()> {
    nix::unistd::sync();
    fs::write("/proc/sys/vm/drop_caches", "3").context("write 3 to /proc/sys/vm/drop_caches")
}

/// Waits until both greetings come, or fails early if the master exits.
fn wait_dovecot_ready(dovecot: &mut Dovecot) -> Result<Duration> {
    let waited = wait_ready(READY_TIMEOUT, Duration::from_millis(100), || {
        ensure!(!stop_requested(), "interrupted");
        dovecot.ensure_running()?;
        let deadline = Instant::now() + PROBE_TIMEOUT;
        Ok(Imap::connect(dovecot.imap_addr(), deadline)
            .and_then(|_| Pop3::connect(dovecot.pop3_addr(), deadline).map(drop)))
    })?;
    waited.with_context(|| {
        format!(
            "dovecot did not greet within {READY_TIMEOUT:?}; the end of {}:\n{}",
            dovecot.log_path().display(),
            dovecot.log_tail(10)
        )
    })
}

/// Greeting, LOGIN and LOGOUT.
fn probe_imap(addr: SocketAddrV4, user: &str, password: &str) -> Result<()> {
    let mut imap = Imap::open(addr, user, password, Instant::now() + PROBE_TIMEOUT)?;
    imap.command("LOGOUT", 10, |_, _| Ok(()))
}

/// Logs in with POP3 and returns STAT's message count.
fn pop3_count(addr: SocketAddrV4, user: &str, password: &str, deadline: Instant) -> Result<usize> {
    let mut pop3 = Pop3::open(addr, user, password, deadline)?;
    let stat = pop3.command("STAT", "STAT")?;
    let count = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("STAT: malformed reply {stat:?}"))?;
    pop3.command("QUIT", "QUIT")?;
    Ok(count)
}

/// Every mailbox holds as many messages as were delivered (POP3 STAT), before the first cell.
fn check_fill(system: System, corpus: &Corpus, password: &str, clients: usize) -> Result<()> {
    let started = Instant::now();
    let deadline =
        started + READY_TIMEOUT.max(Duration::from_secs(10 + corpus.mailboxes.len() as u64 / 2));
    let next = AtomicUsize::new(0);
    let addr = system.addr(Protocol::Pop3);
    let problems: Vec<String> = in_threads(clients.min(corpus.mailboxes.len()), |_| {
        let mut problems = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(mailbox) = corpus.mailboxes.get(i) else {
                break;
            };
            if stop_requested() {
                problems.push("interrupted".to_owned());
                break;
            }
            match pop3_count(addr, &mailbox.address, password, deadline) {
                Ok(n) if n == mailbox.messages.len() => {}
                Ok(n) => problems.push(format!(
                    "{} holds {n} messages, not {}",
                    mailbox.address,
                    mailbox.messages.len()
                )),
                Err(err) => problems.push(format!("{}: {err:#}", mailbox.address)),
            }
        }
        problems
    })
    .into_iter()
    .flat_map(|joined| joined.unwrap_or_else(|_| vec!["panicked".into()]))
    .collect();
    if !problems.is_empty() {
        bail!(
            "{} does not hold the messages it was given ({} problems): {}",
            system.name(),
            problems.len(),
            problems[..problems.len().min(SHOWN_ERRORS)].join("; ")
        );
    }
    println!(
        "{} holds all {} messages in {} mailboxes (POP3 STAT of each, {:.1?})",
        system.name(),
        corpus.n_messages(),
        corpus.mailboxes.len(),
        started.elapsed()
    );
    Ok(())
}

/// The messages, generated once and given to both systems.
struct Corpus {
    /// Part of every Message-ID, so a message from another run is never taken for one of ours.
    nonce: String,
    /// The one-mailbox shape's account first (if that shape is wanted), then the others.
    mailboxes: Vec<Mailbox>,
    n_one: usize,
}

struct Mailbox {
    address: String,
    /// As delivered: CRLF line ends, not dot-stuffed.
    messages: Vec<Vec<u8>>,
}

impl Corpus {
    fn generate(options: &Options) -> Corpus {
        let mut rng = rand::rng();
        let nonce = format!("{:012x}", rng.random::<u64>() & 0xffff_ffff_ffff);
        let mut mailboxes = Vec::new();
        let date = rfc5322_date(SystemTime::now());
        let build = |index: usize, address: String, sizes: Vec<usize>, rng: &mut ThreadRng| {
            let messages = sizes
                .into_iter()
                .enumerate()
                .map(|(k, size)| {
                    let message_id = message_id(&nonce, index, k);
                    build_message(size, &address, &message_id, &date, rng)
                })
                .collect();
            Mailbox { address, messages }
        };
        if options.wanted(Shape::OneMailbox) {
            let sizes = vec![options.size; options.messages];
            mailboxes.push(build(0, format!("fetch-one@{DOMAIN}"), sizes, &mut rng));
        }
        let n_one = mailboxes.len();
        if options.wanted(Shape::ManyMailboxes) {
            for account in 0..options.accounts {
                let sizes = (0..options.per_account)
                    .map(|_| rng.random_range(MIXED_SIZES.0..=MIXED_SIZES.1))
                    .collect();
                let address = format!("fetch-m{account:04}@{DOMAIN}");
                mailboxes.push(build(mailboxes.len(), address, sizes, &mut rng));
            }
        }
        Corpus {
            nonce,
            mailboxes,
            n_one,
        }
    }

    fn of(&self, shape: Shape) -> &[Mailbox] {
        match shape {
            Shape::OneMailbox => &self.mailboxes[..self.n_one],
            Shape::ManyMailboxes => &self.mailboxes[self.n_one..],
        }
    }

    fn n_messages(&self) -> usize {
        self.mailboxes.iter().map(|m| m.messages.len()).sum()
    }

    fn n_bytes(&self) -> usize {
        self.mailboxes
            .iter()
            .flat_map(|m| &m.messages)
            .map(Vec::len)
            .sum()
    }

    /// The mailbox index and message number in a Message-ID this corpus made.
    fn locate(&self, message: &[u8]) -> Option<(usize, usize)> {
        let header_end = find(message, b"\r\n\r\n").unwrap_or(message.len());
        let header = &message[..header_end];
        let needle = format!("\r\nMessage-ID: <fb{}.", self.nonce);
        let at = find(header, needle.as_bytes())? + needle.len();
        let rest = &header[at..];
        let end = rest.iter().position(|&b| b == b'@')?;
        let (mailbox, k) = std::str::from_utf8(&rest[..end]).ok()?.split_once('.')?;
        Some((mailbox.parse().ok()?, k.parse().ok()?))
    }
}

fn message_id(nonce: &str, mailbox: usize, k: usize) -> String {
    format!("fb{nonce}.{mailbox}.{k}@bench.test")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The trace headers a delivering MTA puts in front, in the form the cluster writes them.
fn trace_header(address: &str, queue_id: u64, date: &str) -> String {
    format!(
        "Return-Path: <{SENDER}>\r\nReceived: from {CLIENT_NAME} ([127.0.0.1])\r\n\tby \
         dovecot.bench.test (postfix) with ESMTP id {queue_id:016X}\r\n\tfor <{address}>;\r\n\t\
         {date}\r\n"
    )
}

/// Writes every message into the Maildirs, as files in cur/ (see the module doc).
fn fill_dovecot(dovecot: &Dovecot, corpus: &Corpus) -> Result<()> {
    let started = Instant::now();
    let date = rfc5322_date(SystemTime::now());
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut rng = rand::rng();
    for mailbox in &corpus.mailboxes {
        let maildir = dovecot.create_maildir(&mailbox.address)?;
        for (k, message) in mailbox.messages.iter().enumerate() {
            let trace = trace_header(&mailbox.address, rng.random(), &date);
            // Postfix's form: time.VdeviceIinode_Mmicroseconds.host, unique per Maildir.
            let name = format!("{seconds}.V801I{k:x}M{:06}.fetch-bench:2,", k % 1_000_000);
            dovecot.write_message(&maildir, &name, &[trace.as_bytes(), message])?;
        }
    }
    nix::unistd::sync();
    println!(
        "dovecot: wrote {} messages into {} Maildirs in {:.1?}",
        corpus.n_messages(),
        corpus.mailboxes.len(),
        started.elapsed()
    );
    Ok(())
}

/// Adds the accounts and delivers every message over SMTP.
fn fill_mcluster(demo: &Demo, corpus: &Corpus, password: &str) -> Result<()> {
    let started = Instant::now();
    for mailbox in &corpus.mailboxes {
        let bytes: usize = mailbox.messages.iter().map(Vec::len).sum();
        // Room for the trace headers and for the quota's own rounding.
        let quota_mb = (2 * bytes / 1_000_000 + 16).max(1024);
        demo.ctl_with_input(
            &[
                "user",
                "add",
                &mailbox.address,
                "--quota-mb",
                &quota_mb.to_string(),
            ],
            Some(&format!("{password}\n")),
        )?;
    }
    println!(
        "mcluster: added {} accounts in {:.1?}",
        corpus.mailboxes.len(),
        started.elapsed()
    );

    let started = Instant::now();
    let deadline = started + FILL_TIMEOUT;
    let items: Vec<(usize, usize)> = corpus
        .mailboxes
        .iter()
        .enumerate()
        .flat_map(|(i, mailbox)| (0..mailbox.messages.len()).map(move |k| (i, k)))
        .collect();
    let next = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = (0..FILL_SESSIONS.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    fill_session(corpus, &items, &next, &sent, deadline)
                        .err()
                        .map(|err| format!("{err:#}"))
                })
            })
            .collect();
        let mut last_report = Instant::now();
        while !handles.iter().all(|handle| handle.is_finished()) {
            thread::sleep(Duration::from_millis(200));
            if last_report.elapsed() >= FILL_PROGRESS {
                last_report = Instant::now();
                println!(
                    "  mcluster fill: {}/{} messages after {:.0?}",
                    sent.load(Ordering::Relaxed),
                    items.len(),
                    started.elapsed()
                );
            }
        }
        handles
            .into_iter()
            .filter_map(|handle| handle.join().unwrap_or_else(|_| Some("panicked".into())))
            .collect()
    });
    if !failures.is_empty() {
        bail!(
            "filling mcluster failed after {} of {} messages: {}",
            sent.load(Ordering::Relaxed),
            items.len(),
            failures.join("; ")
        );
    }
    let elapsed = started.elapsed();
    println!(
        "mcluster: delivered {} messages over SMTP ({FILL_SESSIONS} sessions) in {elapsed:.1?} \
         ({:.0} msg/s)",
        items.len(),
        items.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// One SMTP session taking messages from the shared list; a failed message is retried on a
/// new connection, up to [`FILL_ATTEMPTS`] times.
fn fill_session(
    corpus: &Corpus,
    items: &[(usize, usize)],
    next: &AtomicUsize,
    sent: &AtomicUsize,
    deadline: Instant,
) -> Result<()> {
    let mut smtp: Option<Smtp> = None;
    while let Some(&(i, k)) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
        let mailbox = &corpus.mailboxes[i];
        let mut attempt = 0;
        loop {
            attempt += 1;
            ensure!(!stop_requested(), "interrupted");
            let result = reuse_or_connect(&mut smtp, || Smtp::connect(MCLUSTER_SMTP, deadline))
                .and_then(|session| session.send(&mailbox.address, &mailbox.messages[k]));
            match result {
                Ok(()) => break,
                Err(err) if attempt >= FILL_ATTEMPTS => {
                    return Err(err.context(format!(
                        "deliver message {k} to {} ({attempt} attempts)",
                        mailbox.address
                    )));
                }
                Err(_) => {
                    smtp = None;
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(session) = smtp {
        session.quit();
    }
    Ok(())
}

/// One cell: one system, one protocol, one shape, cold or warm.
struct CellPlan {
    system: System,
    protocol: Protocol,
    clients: usize,
    time_limit: Duration,
}

#[derive(Default)]
struct CellResult {
    expected: usize,
    verified: usize,
    /// Of the verified messages, as fetched.
    bytes: u64,
    errors: usize,
    first_errors: Vec<String>,
    /// From the start to the end of the last session.
    elapsed: Duration,
    logins_ms: Vec<f64>,
    hit_time_limit: bool,
}

impl CellResult {
    fn rate(&self) -> f64 {
        per_second(self.verified as f64, self.elapsed.as_secs_f64())
    }

    fn megabytes_per_second(&self) -> f64 {
        per_second(self.bytes as f64 / 1e6, self.elapsed.as_secs_f64())
    }

    fn complete(&self) -> bool {
        self.errors == 0 && self.verified == self.expected
    }

    fn add(&mut self, outcome: MailboxOutcome) {
        self.verified += outcome.verified;
        self.bytes += outcome.bytes;
        self.errors += outcome.errors;
        for problem in outcome.problems {
            keep_first(&mut self.first_errors, problem);
        }
        self.logins_ms.extend(outcome.login.map(millis));
    }
}

struct CellRecord {
    round: usize,
    system: System,
    protocol: Protocol,
    shape: Shape,
    temperature: Temperature,
    cell: CellResult,
}

fn run_cell(plan: &CellPlan, corpus: &Corpus, mailboxes: &[Mailbox], password: &str) -> CellResult {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + plan.time_limit;
    let addr = plan.system.addr(plan.protocol);
    let sessions = in_threads(plan.clients.min(mailboxes.len()), |_| {
        let mut outcomes = Vec::new();
        let mut hit_time_limit = false;
        loop {
            if stop_requested() {
                break;
            }
            if Instant::now() >= deadline {
                hit_time_limit = true;
                break;
            }
            let Some(mailbox) = mailboxes.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            outcomes.push(fetch_mailbox(
                plan.protocol,
                addr,
                corpus,
                mailbox,
                password,
                deadline,
            ));
        }
        (outcomes, Instant::now(), hit_time_limit)
    });
    let mut cell = CellResult {
        expected: mailboxes.iter().map(|m| m.messages.len()).sum(),
        ..CellResult::default()
    };
    let mut last_end = started;
    for session in sessions {
        let (outcomes, ended, hit_time_limit) = session.unwrap_or_else(|_| {
            let mut outcome = MailboxOutcome::default();
            outcome.problem("a client thread panicked".into());
            (vec![outcome], Instant::now(), false)
        });
        for outcome in outcomes {
            cell.add(outcome);
        }
        last_end = last_end.max(ended);
        cell.hit_time_limit |= hit_time_limit;
    }
    cell.elapsed = last_end - started;
    cell
}

/// What fetching one mailbox gave.
#[derive(Default)]
struct MailboxOutcome {
    verified: usize,
    bytes: u64,
    errors: usize,
    problems: Vec<String>,
    /// From the connect to the login's OK.
    login: Option<Duration>,
}

impl MailboxOutcome {
    fn problem(&mut self, text: String) {
        self.errors += 1;
        keep_first(&mut self.problems, text);
    }
}

/// Checks each fetched message of one mailbox against what was delivered.
struct Check<'a> {
    corpus: &'a Corpus,
    mailbox: &'a Mailbox,
    index: usize,
    seen: Vec<bool>,
    outcome: MailboxOutcome,
}

impl<'a> Check<'a> {
    fn new(corpus: &'a Corpus, mailbox: &'a Mailbox) -> Check<'a> {
        let index = corpus
            .mailboxes
            .iter()
            .position(|m| std::ptr::eq(m, mailbox))
            .expect("the mailbox belongs to the corpus");
        Check {
            corpus,
            mailbox,
            index,
            seen: vec![false; mailbox.messages.len()],
            outcome: MailboxOutcome::default(),
        }
    }

    /// One fetched message; `listed` is the size the server announced for it (POP3 LIST).
    fn message(&mut self, data: &[u8], listed: Option<usize>) {
        let address = &self.mailbox.address;
        let Some((index, k)) = self.corpus.locate(data) else {
            self.outcome.problem(format!(
                "{address}: a {}-byte message without a Message-ID of this run",
                data.len()
            ));
            return;
        };
        let Some(original) = self.mailbox.messages.get(k).filter(|_| index == self.index) else {
            self.outcome.problem(format!(
                "{address}: message {index}.{k} belongs to another mailbox"
            ));
            return;
        };
        if let Some(listed) = listed.filter(|&listed| listed != data.len()) {
            self.outcome.problem(format!(
                "{address}: message {k} is {} bytes, but LIST said {listed}",
                data.len()
            ));
            return;
        }
        let prefix_len = data.len().saturating_sub(original.len());
        let prefix = &data[..prefix_len];
        let trace_only = prefix.is_empty()
            || (prefix.ends_with(b"\r\n")
                && find(prefix, b"\r\n\r\n").is_none()
                && !prefix[0].is_ascii_whitespace());
        if !data.ends_with(original) || !trace_only {
            self.outcome.problem(format!(
                "{address}: message {k} differs from what was delivered ({} bytes fetched, {} \
                 delivered)",
                data.len(),
                original.len()
            ));
            return;
        }
        if std::mem::replace(&mut self.seen[k], true) {
            self.outcome
                .problem(format!("{address}: message {k} came twice"));
            return;
        }
        self.outcome.verified += 1;
        self.outcome.bytes += data.len() as u64;
    }

    fn logged_in(&mut self, after: Duration) {
        self.outcome.login = Some(after);
    }

    fn finish(mut self, result: Result<()>) -> MailboxOutcome {
        let address = &self.mailbox.address;
        if let Err(err) = result {
            self.outcome.problem(format!("{address}: {err:#}"));
        }
        let missing = self.seen.iter().filter(|seen| !**seen).count();
        if missing > 0 {
            self.outcome.problem(format!(
                "{address}: {missing} of {} messages not fetched intact",
                self.seen.len()
            ));
        }
        self.outcome
    }
}

fn fetch_mailbox(
    protocol: Protocol,
    addr: SocketAddrV4,
    corpus: &Corpus,
    mailbox: &Mailbox,
    password: &str,
    deadline: Instant,
) -> MailboxOutcome {
    let mut check = Check::new(corpus, mailbox);
    let result = match protocol {
        Protocol::Pop3 => fetch_all(addr, password, deadline, &mut check, pop3_fetch_all),
        Protocol::Imap => fetch_all(addr, password, deadline, &mut check, imap_fetch_all),
    };
    check.finish(result)
}

/// Logs in as the mailbox's user (the time from the connect to the login's OK goes to
/// `check`), then fetches every message with `fetch`.
fn fetch_all<S: Login>(
    addr: SocketAddrV4,
    password: &str,
    deadline: Instant,
    check: &mut Check,
    fetch: impl FnOnce(&mut S, &mut Check) -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let mut session = S::open(addr, &check.mailbox.address, password, deadline)?;
    check.logged_in(started.elapsed());
    fetch(&mut session, check)
}

/// LIST, RETR of each message in turn, QUIT.
fn pop3_fetch_all(pop3: &mut Pop3, check: &mut Check) -> Result<()> {
    pop3.command("LIST", "LIST")?;
    let mut listing = Vec::new();
    pop3.multiline(
        &mut listing,
        64 * (check.mailbox.messages.len() + 16),
        "LIST",
    )?;
    let mut sizes = Vec::new();
    for line in listing
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
    {
        let line = String::from_utf8_lossy(line);
        let mut fields = line.split_whitespace();
        let (Some(n), Some(size)) = (fields.next(), fields.next()) else {
            bail!("LIST: malformed line {line:?}");
        };
        let (Ok(n), Ok(size)) = (n.parse::<usize>(), size.parse::<usize>()) else {
            bail!("LIST: malformed line {line:?}");
        };
        sizes.push((n, size));
    }
    for (n, size) in sizes {
        pop3.command(&format!("RETR {n}"), "RETR")?;
        let mut message = Vec::with_capacity(size);
        pop3.multiline(&mut message, size.max(1024) * 2, "RETR")?;
        check.message(&message, Some(size));
    }
    pop3.command("QUIT", "QUIT")?;
    Ok(())
}

/// SELECT INBOX, FETCH 1:* BODY.PEEK[], LOGOUT.
fn imap_fetch_all(imap: &mut Imap, check: &mut Check) -> Result<()> {
    let mut exists = None;
    imap.command("SELECT INBOX", 10_000, |line, _| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        if let [b"*", n, word, ..] = fields[..]
            && word.eq_ignore_ascii_case(b"EXISTS")
        {
            exists = std::str::from_utf8(n)
                .ok()
                .and_then(|n| n.parse::<usize>().ok());
        }
        Ok(())
    })?;
    let exists = exists.context("SELECT INBOX: no EXISTS")?;
    if exists > 0 {
        let mut n_fetched = 0usize;
        imap.command("FETCH 1:* BODY.PEEK[]", exists + 10_000, |line, body| {
            let fields: Vec<&[u8]> = line.splitn(4, |&b| b == b' ').collect();
            let is_fetch = matches!(fields[..], [b"*", n, word, ..]
                if n.iter().all(u8::is_ascii_digit) && word.eq_ignore_ascii_case(b"FETCH"));
            if is_fetch {
                n_fetched += 1;
                match body {
                    Some(body) => check.message(&body, None),
                    None => check.outcome.problem(format!(
                        "{}: a FETCH response without BODY[]: {}",
                        check.mailbox.address,
                        String::from_utf8_lossy(&line[..line.len().min(100)])
                    )),
                }
            }
            Ok(())
        })?;
        ensure!(
            n_fetched == exists,
            "FETCH 1:* gave {n_fetched} responses for {exists} messages"
        );
    }
    imap.command("LOGOUT", 10, |_, _| Ok(()))
}

/// A blocking connection with a read buffer; every read waits at most [`IDLE_TIMEOUT`] and
/// never past the deadline.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    deadline: Instant,
}

impl Wire {
    fn connect(addr: SocketAddrV4, deadline: Instant) -> Result<Wire> {
        let left = deadline.saturating_duration_since(Instant::now());
        ensure!(!left.is_zero(), "no time left to connect to {addr}");
        let stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), left.min(CONNECT_TIMEOUT))
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        Ok(Wire {
            stream,
            buf: vec![0; BUFFER_BYTES],
            start: 0,
            end: 0,
            deadline,
        })
    }

    fn timeout(&self, what: &str) -> Result<Duration> {
        ensure!(!stop_requested(), "{what}: interrupted");
        let left = self.deadline.saturating_duration_since(Instant::now());
        ensure!(!left.is_zero(), "{what}: the cell's time is up");
        Ok(left.min(IDLE_TIMEOUT))
    }

    fn send(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        let timeout = self.timeout(what)?;
        self.stream
            .set_write_timeout(Some(timeout))
            .context("set the write timeout")?;
        self.stream
            .write_all(bytes)
            .with_context(|| format!("send {what}"))
    }

    /// Reads more bytes into the buffer, moving what is unread to its front if it is full.
    fn fill(&mut self, what: &str) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            ensure!(
                self.start > 0,
                "{what}: a line longer than {BUFFER_BYTES} bytes"
            );
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let timeout = self.timeout(what)?;
        self.stream
            .set_read_timeout(Some(timeout))
            .context("set the read timeout")?;
        // Only signals interrupt, and SA_RESTART restarts most reads; a few retries suffice.
        for _ in 0..8 {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => bail!("{what}: the server closed the connection"),
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    bail!("{what}: nothing received for {timeout:.1?}");
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).with_context(|| format!("{what}: read")),
            }
        }
        bail!("{what}: reads keep being interrupted")
    }

    /// The next line, with its line end.
    fn line(&mut self, what: &str) -> Result<&[u8]> {
        let mut scanned = 0;
        // Each pass reads at least one byte or fails, and the buffer bounds a line.
        for _ in 0..=BUFFER_BYTES {
            let unread = &self.buf[self.start..self.end];
            if let Some(i) = unread[scanned..].iter().position(|&b| b == b'\n') {
                let line_start = self.start;
                self.start += scanned + i + 1;
                return Ok(&self.buf[line_start..self.start]);
            }
            scanned = unread.len();
            self.fill(what)?;
        }
        bail!("{what}: no line end")
    }

    /// Appends exactly `n` bytes to `out`.
    fn read_exact(&mut self, n: usize, out: &mut Vec<u8>, what: &str) -> Result<()> {
        out.reserve(n);
        let mut left = n;
        // Each pass takes at least one byte or fails.
        for _ in 0..=n {
            let take = left.min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
            left -= take;
            if left == 0 {
                return Ok(());
            }
            self.fill(what)?;
        }
        bail!("{what}: short read")
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A POP3 client session.
struct Pop3 {
    wire: Wire,
}

/// A mail client session that logs in: POP3 or IMAP.
trait Login: Sized {
    /// Connects and reads the greeting.
    fn connect(addr: SocketAddrV4, deadline: Instant) -> Result<Self>;

    fn login(&mut self, user: &str, password: &str) -> Result<()>;

    /// Connects and logs in.
    fn open(addr: SocketAddrV4, user: &str, password: &str, deadline: Instant) -> Result<Self> {
        let mut session = Self::connect(addr, deadline)?;
        session.login(user, password)?;
        Ok(session)
    }
}

impl Login for Pop3 {
    /// Connects and reads the +OK greeting.
    fn connect(addr: SocketAddrV4, deadline: Instant) -> Result<Pop3> {
        let mut pop3 = Pop3 {
            wire: Wire::connect(addr, deadline)?,
        };
        pop3.reply("greeting")?;
        Ok(pop3)
    }

    fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.command(&format!("USER {user}"), "USER")?;
        self.command(&format!("PASS {password}"), "PASS")?;
        Ok(())
    }
}

impl Pop3 {
    /// Sends `line` and fails unless the reply is +OK; returns the reply's text. `what` names
    /// the command in errors (the line may hold a password).
    fn command(&mut self, line: &str, what: &str) -> Result<String> {
        self.wire.send(format!("{line}\r\n").as_bytes(), what)?;
        self.reply(what)
    }

    fn reply(&mut self, what: &str) -> Result<String> {
        let line = String::from_utf8_lossy(trim_line_end(self.wire.line(what)?)).into_owned();
        match line.strip_prefix("+OK") {
            Some(text) => Ok(text.trim_start().to_owned()),
            None => bail!("{what}: {line}"),
        }
    }

    /// The body of a multi-line response, without the dot-stuffing and the final dot.
    fn multiline(&mut self, out: &mut Vec<u8>, max_bytes: usize, what: &str) -> Result<()> {
        // Each line takes at least one byte of `max_bytes`.
        for _ in 0..=max_bytes {
            let line = self.wire.line(what)?;
            if trim_line_end(line) == b"." {
                return Ok(());
            }
            let line = line.strip_prefix(b".").unwrap_or(line);
            ensure!(
                out.len() + line.len() <= max_bytes,
                "{what}: more than {max_bytes} bytes"
            );
            out.extend_from_slice(line);
        }
        bail!("{what}: more than {max_bytes} lines")
    }
}

/// An IMAP client session that knows just enough for the benchmark: tagged commands, untagged
/// responses, and literals anywhere in a response.
struct Imap {
    wire: Wire,
    n_tag: u32,
}

impl Login for Imap {
    fn connect(addr: SocketAddrV4, deadline: Instant) -> Result<Imap> {
        let mut imap = Imap {
            wire: Wire::connect(addr, deadline)?,
            n_tag: 0,
        };
        let (greeting, _) = imap.response("greeting")?;
        ensure!(
            greeting.starts_with(b"* OK") || greeting.starts_with(b"* PREAUTH"),
            "greeting from {addr}: {}",
            String::from_utf8_lossy(&greeting)
        );
        Ok(imap)
    }

    fn login(&mut self, user: &str, password: &str) -> Result<()> {
        self.command(
            &format!("LOGIN {} {}", quoted(user), quoted(password)),
            100,
            |_, _| Ok(()),
        )
    }
}

impl Imap {
    /// Sends a tagged command and reads responses until its tagged OK, handing each untagged
    /// response (its first line, and the BODY[] literal if it has one) to `untagged`. Fails on
    /// NO, BAD, or more than `max_responses` responses.
    fn command(
        &mut self,
        command: &str,
        max_responses: usize,
        mut untagged: impl FnMut(&[u8], Option<Vec<u8>>) -> Result<()>,
    ) -> Result<()> {
        self.n_tag += 1;
        let tag = format!("b{}", self.n_tag);
        // Errors name only the command's first word: LOGIN carries a password.
        let verb = command.split(' ').next().unwrap_or(command);
        self.wire
            .send(format!("{tag} {command}\r\n").as_bytes(), verb)?;
        for _ in 0..max_responses {
            let (line, body) = self.response(verb)?;
            if let Some(status) = line
                .strip_prefix(tag.as_bytes())
                .and_then(|rest| rest.strip_prefix(b" "))
            {
                ensure!(
                    status.len() >= 2 && status[..2].eq_ignore_ascii_case(b"OK"),
                    "{verb}: {}",
                    String::from_utf8_lossy(status)
                );
                return Ok(());
            }
            ensure!(
                !line.starts_with(b"+"),
                "{verb}: unexpected continuation request"
            );
            untagged(&line, body)?;
        }
        bail!("{verb}: more than {max_responses} responses")
    }

    /// One response: its first line (without the line end) and the literal that follows a
    /// `BODY[]` in it, if any. Other literals are read and dropped.
    fn response(&mut self, what: &str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let mut first = None;
        let mut body = None;
        for _ in 0..=MAX_LITERALS_PER_RESPONSE {
            let line = trim_line_end(self.wire.line(what)?).to_vec();
            let literal = trailing_literal(&line);
            let is_body = literal.is_some_and(|(prefix_end, _)| {
                let prefix = line[..prefix_end].trim_ascii_end();
                prefix.len() >= 6 && prefix[prefix.len() - 6..].eq_ignore_ascii_case(b"BODY[]")
            });
            if first.is_none() {
                first = Some(line);
            }
            let Some((_, n)) = literal else {
                return Ok((first.expect("set above"), body));
            };
            ensure!(
                n <= MAX_LITERAL,
                "{what}: a literal of {n} bytes, more than {MAX_LITERAL}"
            );
            let mut data = Vec::new();
            self.wire.read_exact(n, &mut data, what)?;
            if is_body && body.is_none() {
                body = Some(data);
            }
        }
        bail!("{what}: more than {MAX_LITERALS_PER_RESPONSE} literals in one response")
    }
}

/// `{N}` (or `{N+}`) at the end of a line: where the `{` is and N.
fn trailing_literal(line: &[u8]) -> Option<(usize, usize)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((open, std::str::from_utf8(digits).ok()?.parse().ok()?))
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A blocking SMTP client session for filling the cluster, without pipelining.
struct Smtp {
    wire: Wire,
}

impl Smtp {
    fn connect(addr: SocketAddrV4, deadline: Instant) -> Result<Smtp> {
        let mut smtp = Smtp {
            wire: Wire::connect(addr, deadline)?,
        };
        smtp.expect(2, "greeting")?;
        smtp.command(&format!("EHLO {CLIENT_NAME}"), 2, "EHLO")?;
        Ok(smtp)
    }

    /// MAIL, RCPT, DATA, the dot-stuffed message, the final dot.
    fn send(&mut self, recipient: &str, message: &[u8]) -> Result<()> {
        self.command(&format!("MAIL FROM:<{SENDER}>"), 2, "MAIL")?;
        self.command(&format!("RCPT TO:<{recipient}>"), 2, "RCPT")?;
        self.command("DATA", 3, "DATA")?;
        let mut wire = dot_stuff(message);
        wire.extend_from_slice(b".\r\n");
        self.wire.send(&wire, "the message")?;
        self.expect(2, "end of data")
    }

    fn command(&mut self, line: &str, class: u16, what: &str) -> Result<()> {
        self.wire.send(format!("{line}\r\n").as_bytes(), what)?;
        self.expect(class, what)
    }

    /// Reads a possibly multi-line reply and fails unless its class is `class`.
    fn expect(&mut self, class: u16, what: &str) -> Result<()> {
        for _ in 0..MAX_REPLY_LINES {
            let line = String::from_utf8_lossy(trim_line_end(self.wire.line(what)?)).into_owned();
            let code: u16 = line
                .get(..3)
                .and_then(|code| code.parse().ok())
                .with_context(|| format!("{what}: malformed reply line {line:?}"))?;
            if line.as_bytes().get(3) != Some(&b'-') {
                ensure!(code / 100 == class, "{what}: {line}");
                return Ok(());
            }
        }
        bail!("{what}: reply longer than {MAX_REPLY_LINES} lines")
    }

    /// Best effort: the fill is over.
    fn quit(mut self) {
        let _ = self.command("QUIT", 2, "QUIT");
    }
}

/// A message to `recipient` of exactly `size` bytes, not dot-stuffed (see
/// [`text_message`]).
fn build_message(
    size: usize,
    recipient: &str,
    message_id: &str,
    date: &str,
    rng: &mut impl Rng,
) -> Vec<u8> {
    let headers = [
        ("From", format!("fetch_bench <{SENDER}>")),
        ("To", format!("<{recipient}>")),
        ("Subject", format!("fetch_bench {message_id}")),
        ("Date", date.to_owned()),
        ("Message-ID", format!("<{message_id}>")),
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=us-ascii".to_owned()),
    ];
    text_message(&headers, size, rng).into_bytes()
}

/// A `$argon2id$...` hash of `password` with the parameters the cluster uses (the argon2
/// crate's defaults).
fn argon2id_hash(password: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|err| anyhow!("salt: {err}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|err| anyhow!("hash the password: {err}"))?;
    Ok(hash.to_string())
}

/// Polls until the cluster accepts RCPT to the demo user over SMTP and, if asked, lets the
/// demo user log in over POP3 (which needs a leader) and greets over IMAP.
fn wait_demo_ready(demo: &mut Demo, pop3: bool, imap: bool) -> Result<Duration> {
    let waited = wait_ready(READY_TIMEOUT, Duration::from_millis(250), || {
        ensure!(!stop_requested(), "interrupted");
        demo.ensure_running("before it was ready")?;
        let deadline = Instant::now() + PROBE_TIMEOUT;
        let mut ready = Smtp::connect(MCLUSTER_SMTP, deadline).and_then(|mut smtp| {
            smtp.command(&format!("MAIL FROM:<{SENDER}>"), 2, "MAIL")?;
            smtp.command(&format!("RCPT TO:<{DEMO_USER}>"), 2, "RCPT")?;
            smtp.quit();
            Ok(())
        });
        if pop3 && ready.is_ok() {
            ready = pop3_count(MCLUSTER_POP3, DEMO_USER, demo.password(), deadline).map(drop);
        }
        if imap && ready.is_ok() {
            ready = Imap::connect(MCLUSTER_IMAP, deadline).map(drop);
        }
        Ok(ready)
    })?;
    waited.with_context(|| {
        format!(
            "mcluster was not ready within {READY_TIMEOUT:?}; {}",
            demo.log_end()
        )
    })
}

/// One row per (protocol, shape, cold/warm): medians per system and, when both were measured,
/// the ratio of messages per second with its band.
fn print_summary(options: &Options, records: &[CellRecord], imap_note: Option<&str>) {
    println!();
    println!(
        "summary, {} rounds: ratio = median over rounds of mcluster/dovecot msg/s in the same \
         round; band = [min(mcluster)/max(dovecot), max(mcluster)/min(dovecot)]; per system the \
         median msg/s and MB/s, the median login time, and errors summed over rounds",
        options.rounds
    );
    let mut notes = Vec::new();
    for &protocol in &options.protocols {
        for &shape in &options.shapes {
            for temperature in [Temperature::Cold, Temperature::Warm] {
                let of = |system: System| -> Vec<&CellRecord> {
                    records
                        .iter()
                        .filter(|r| {
                            r.system == system
                                && r.protocol == protocol
                                && r.shape == shape
                                && r.temperature == temperature
                        })
                        .collect()
                };
                let label = format!(
                    "{} {} {}",
                    protocol.name(),
                    shape.name(),
                    temperature.name()
                );
                let (ours, reference) = (of(System::Mcluster), of(System::Dovecot));
                let rates = |cells: &[&CellRecord]| -> Vec<f64> {
                    cells.iter().map(|r| r.cell.rate()).collect()
                };
                let ratio = if ours.is_empty() || reference.is_empty() {
                    match (options.wants(System::Mcluster), imap_note) {
                        (true, Some(_)) if protocol == Protocol::Imap => {
                            "no ratio: IMAP on mcluster is unavailable".to_owned()
                        }
                        _ => "no ratio".to_owned(),
                    }
                } else {
                    let by_round = |cells: &[&CellRecord]| -> Vec<(usize, f64)> {
                        cells.iter().map(|r| (r.round, r.cell.rate())).collect()
                    };
                    let ratios = round_ratios(&by_round(&ours), &by_round(&reference));
                    let (low, high) = band(&rates(&ours), &rates(&reference));
                    format!("ratio {:.2}x [{low:.2}x, {high:.2}x]", median(&ratios))
                };
                let mut parts = vec![ratio];
                for (system, cells) in [(System::Mcluster, &ours), (System::Dovecot, &reference)] {
                    if cells.is_empty() {
                        continue;
                    }
                    let megabytes: Vec<f64> = cells
                        .iter()
                        .map(|r| r.cell.megabytes_per_second())
                        .collect();
                    let logins: Vec<f64> = cells
                        .iter()
                        .flat_map(|r| r.cell.logins_ms.iter().copied())
                        .collect();
                    let errors: usize = cells.iter().map(|r| r.cell.errors).sum();
                    let incomplete = cells.iter().filter(|r| !r.cell.complete()).count();
                    parts.push(format!(
                        "{} {:.0} msg/s {:.1} MB/s login p50 {:.1} ms errors {errors}",
                        system.name(),
                        median(&rates(cells)),
                        median(&megabytes),
                        median(&logins)
                    ));
                    if incomplete > 0 {
                        notes.push(format!(
                            "note: {label}: {incomplete} {} cells had errors or missing \
                             messages; their msg/s counts only verified messages",
                            system.name()
                        ));
                    }
                }
                println!("{label}: {}", parts.join("; "));
            }
        }
    }
    if let Some(note) = imap_note {
        println!("{note}");
    }
    for note in &notes {
        println!("{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `transcript` to the first client on a loopback port, ignoring what it sends.
    fn canned_server(transcript: Vec<u8>) -> SocketAddrV4 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let SocketAddr::V4(addr) = listener.local_addr().expect("a local address") else {
            panic!("bound to IPv4");
        };
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept the client");
            stream.write_all(&transcript).expect("send the transcript");
            // Keep the connection open until the client is done reading.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).is_ok_and(|n| n > 0) {}
        });
        addr
    }

    fn corpus() -> Corpus {
        let nonce = "00000000abcd".to_owned();
        let mut rng = rand::rng();
        let date = rfc5322_date(UNIX_EPOCH);
        let mailboxes = (0..2)
            .map(|index| {
                let address = format!("fetch-m{index:04}@{DOMAIN}");
                let messages = (0..3)
                    .map(|k| {
                        build_message(
                            2048,
                            &address,
                            &message_id(&nonce, index, k),
                            &date,
                            &mut rng,
                        )
                    })
                    .collect();
                Mailbox { address, messages }
            })
            .collect();
        Corpus {
            nonce,
            mailboxes,
            n_one: 0,
        }
    }

    #[track_caller]
    fn check_literal(line: &str, expected: Option<(usize, usize)>) {
        assert_eq!(trailing_literal(line.as_bytes()), expected, "{line:?}");
    }

    #[test]
    fn literals_at_line_ends() {
        check_literal("* 1 FETCH (BODY[] {123}", Some((18, 123)));
        check_literal("* 1 FETCH (BODY[] {7+}", Some((18, 7)));
        check_literal("* OK {123} not at the end", None);
        check_literal("* OK {}", None);
        check_literal("* OK {12a}", None);
    }

    #[test]
    fn messages_are_built_to_size_with_stuffable_lines() {
        let corpus = corpus();
        for message in corpus.mailboxes.iter().flat_map(|m| &m.messages) {
            assert_eq!(message.len(), 2048);
            assert!(message.ends_with(b"\r\n"));
            assert!(message.split(|&b| b == b'\n').all(|line| line.len() <= 78));
        }
        let first = &corpus.mailboxes[1].messages[2];
        assert_eq!(corpus.locate(first), Some((1, 2)));
    }

    #[test]
    fn check_accepts_trace_headers_and_rejects_changes() {
        let corpus = corpus();
        let mailbox = &corpus.mailboxes[1];
        let mut check = Check::new(&corpus, mailbox);
        let trace = trace_header(&mailbox.address, 7, "Thu, 01 Jan 1970 00:00:00 +0000");
        check.message(&[trace.as_bytes(), &mailbox.messages[0]].concat(), None);
        check.message(&mailbox.messages[1], Some(mailbox.messages[1].len()));
        assert_eq!(check.outcome.verified, 2);
        assert_eq!(check.outcome.errors, 0);

        check.message(&mailbox.messages[1], None);
        let mut changed = mailbox.messages[2].clone();
        let last = changed.len() - 3;
        changed[last] ^= 1;
        check.message(&changed, None);
        check.message(&mailbox.messages[2], Some(1));
        check.message(&corpus.mailboxes[0].messages[0], None);
        check.message(&[b"\r\n", &mailbox.messages[2][..]].concat(), None);
        assert_eq!(check.outcome.verified, 2);
        assert_eq!(check.outcome.errors, 5, "{:?}", check.outcome.problems);
        let outcome = check.finish(Ok(()));
        assert_eq!(outcome.errors, 6, "message 2 is missing");
    }

    #[test]
    fn imap_fetch_reads_literals_and_skips_other_ones() {
        let body_one = b"Subject: one\r\n\r\n{5}\r\n)\r\n".to_vec();
        let body_two = b"Subject: two\r\n\r\nbody\r\n".to_vec();
        let mut transcript = b"* OK ready\r\nb1 OK logged in\r\n* 2 EXISTS\r\n* OK [UIDVALIDITY 1]\r\nb2 OK [READ-WRITE] selected\r\n".to_vec();
        transcript
            .extend_from_slice(format!("* 1 FETCH (BODY[] {{{}}}\r\n", body_one.len()).as_bytes());
        transcript.extend_from_slice(&body_one);
        transcript.extend_from_slice(b")\r\n* 2 FETCH (X-NOTE {3}\r\nabc UID 9 body[] ");
        transcript.extend_from_slice(format!("{{{}}}\r\n", body_two.len()).as_bytes());
        transcript.extend_from_slice(&body_two);
        transcript.extend_from_slice(b" FLAGS ())\r\nb3 OK fetched\r\n* BYE\r\nb4 OK bye\r\n");
        let addr = canned_server(transcript);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut imap = Imap::connect(addr, deadline).expect("greeting");
        imap.login("user", "pass\"word").expect("login");
        let mut exists = Vec::new();
        imap.command("SELECT INBOX", 10, |line, _| {
            exists.push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        })
        .expect("select");
        assert_eq!(exists, ["* 2 EXISTS", "* OK [UIDVALIDITY 1]"]);
        let mut bodies = Vec::new();
        imap.command("FETCH 1:* BODY.PEEK[]", 10, |_, body| {
            bodies.push(body);
            Ok(())
        })
        .expect("fetch");
        assert_eq!(bodies, [Some(body_one), Some(body_two)]);
        imap.command("LOGOUT", 10, |_, _| Ok(())).expect("logout");
    }

    #[test]
    fn imap_no_fails_the_command() {
        let addr = canned_server(b"* OK ready\r\nb1 NO [AUTHENTICATIONFAILED] no\r\n".to_vec());
        let mut imap =
            Imap::connect(addr, Instant::now() + Duration::from_secs(10)).expect("greeting");
        let err = imap.login("user", "secret").expect_err("NO fails");
        assert!(!format!("{err:#}").contains("secret"), "{err:#}");
    }

    #[test]
    fn pop3_retr_is_unstuffed() {
        let addr =
            canned_server(b"+OK ready\r\n+OK 10 octets\r\nline\r\n..\r\n..dot\r\n.\r\n".to_vec());
        let mut pop3 =
            Pop3::connect(addr, Instant::now() + Duration::from_secs(10)).expect("greeting");
        pop3.command("RETR 1", "RETR").expect("RETR");
        let mut message = Vec::new();
        pop3.multiline(&mut message, 1000, "RETR")
            .expect("the message");
        assert_eq!(message, b"line\r\n.\r\n.dot\r\n");
    }
}
