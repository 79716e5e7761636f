//! Private Postfix instances, the references the SMTP benchmarks compare the cluster with:
//! - hold ([`Postfix::start`]): accepts mail into its hold queue, every message fsync'd before
//!   the 250 and none delivered (smtp_bench's accept-rate reference);
//! - relay ([`Postfix::start_relay`]): accepts mail for some domains from `mynetworks` and relays
//!   it to a fixed next hop per domain through `transport_maps`, so it needs no DNS, with short
//!   retry times so that a tempfailed message is tried again within a benchmark (relay_bench's
//!   outbound reference).
//!
//! Each instance has its own config and queue directories, listens only on the loopback address
//! it is given, and never touches the system Postfix. It needs root (`postfix start` does) and
//! the Debian package; `deploy/bench-setup.sh` installs it without starting any service.

use std::fs;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::driver::{set_mode, tail};
use crate::process::{child_pids, is_alive, kill_survivors, report_stop};

/// The program whose presence means Postfix is installed.
pub const POSTFIX: &str = "/usr/sbin/postfix";
/// What to run when [`POSTFIX`] is missing (from the workspace root, as root).
pub const INSTALL_COMMAND: &str = "sh deploy/bench-setup.sh";
/// How long `postfix stop` gets before the master and its children are killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The queue directories a message can sit in before it leaves (or is held).
const QUEUES: [&str; 5] = ["maildrop", "incoming", "active", "deferred", "hold"];
/// The services every instance runs, none chrooted.
const COMMON_SERVICES: &str = "\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
";

/// A running private Postfix. Dropping it stops it.
pub struct Postfix {
    /// `postfix-hold` or `postfix-relay`.
    name: &'static str,
    config_dir: PathBuf,
    queue_dir: PathBuf,
    maillog: PathBuf,
    master_pid: u32,
    /// Set once the master's pid is known, cleared by [`Postfix::stop`].
    running: bool,
}

/// The name smtp_bench knows the hold instance by.
pub type PostfixHold = Postfix;

/// What a relaying instance relays, and how soon it tries again.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Each destination domain and the SMTP server its mail goes to (`smtp:[ip]:port`).
    pub routes: Vec<(String, SocketAddr)>,
    /// `queue_run_delay`: how often the queue manager scans the deferred queue.
    pub queue_run_delay: Duration,
    /// `minimal_backoff_time` and `maximal_backoff_time`: the wait before a deferred message is
    /// tried again.
    pub minimal_backoff: Duration,
    pub maximal_backoff: Duration,
    /// `default_process_limit` (Postfix's default is 100).
    pub process_limit: usize,
}

impl Relay {
    /// The main.cf settings that differ from Postfix's defaults for relaying, as one line for a
    /// benchmark's output (the routes are left out).
    pub fn settings(&self) -> String {
        format!(
            "queue_run_delay = {}s, minimal_backoff_time = {}s, maximal_backoff_time = {}s, \
             default_process_limit = {}, in_flow_delay = 0, relay_domains and transport_maps = \
             the {} routes; delivery concurrency, connection caching and TLS (none) at their \
             defaults",
            self.queue_run_delay.as_secs(),
            self.minimal_backoff.as_secs(),
            self.maximal_backoff.as_secs(),
            self.process_limit,
            self.routes.len()
        )
    }
}

impl Postfix {
    pub fn is_installed() -> bool {
        Path::new(POSTFIX).is_file()
    }

    /// The hold instance: writes a config under `dir` (which must exist and be empty) and starts
    /// it on `addr`. It accepts mail for `recipients` only and allows `process_limit` processes
    /// per service, so that many SMTP sessions can be open at once.
    pub fn start(
        dir: &Path,
        addr: SocketAddrV4,
        recipients: &[&str],
        process_limit: usize,
    ) -> Result<Postfix> {
        let config_dir = dir.join("etc");
        let mailbox_map = config_dir.join("virtual_mailbox");
        let mut domains: Vec<&str> = recipients
            .iter()
            .filter_map(|recipient| recipient.split_once('@').map(|(_, domain)| domain))
            .collect();
        domains.sort_unstable();
        domains.dedup();
        ensure!(!domains.is_empty(), "postfix-hold needs a recipient");
        let map: String = recipients
            .iter()
            .map(|recipient| {
                let (user, domain) = recipient.split_once('@').unwrap_or((recipient, ""));
                format!("{recipient} {domain}/{user}/\n")
            })
            .collect();
        let main_cf = format!(
            "virtual_mailbox_domains = {domains}\n\
             virtual_mailbox_maps = hash:{map}\n",
            domains = domains.join(", "),
            map = mailbox_map.display(),
        );
        // Only the services a held message passes through. The HOLD action on end-of-data makes
        // cleanup write the queue file into hold/ (fsync'd before smtpd answers 250), where the
        // queue manager never looks.
        let master_cf = format!(
            "{addr} inet n - n - - smtpd\n  \
             -o smtpd_end_of_data_restrictions=check_client_access,static:HOLD\n\
             {COMMON_SERVICES}"
        );
        Postfix::launch(
            dir,
            addr,
            "postfix-hold",
            process_limit,
            &main_cf,
            &master_cf,
            &[(mailbox_map, map)],
        )
    }

    /// The relay instance: writes a config under `dir` (which must exist and be empty) and
    /// starts it on `addr`. It accepts mail for the domains of `relay` (from anyone: they are
    /// its `relay_domains`) and sends each domain's mail to its route, retrying deferred mail as
    /// `relay` says.
    pub fn start_relay(dir: &Path, addr: SocketAddrV4, relay: &Relay) -> Result<Postfix> {
        ensure!(!relay.routes.is_empty(), "postfix-relay needs a route");
        ensure!(
            relay.queue_run_delay <= relay.minimal_backoff
                && relay.minimal_backoff <= relay.maximal_backoff,
            "postfix-relay needs queue_run_delay <= minimal_backoff_time <= maximal_backoff_time"
        );
        let config_dir = dir.join("etc");
        let transport_map = config_dir.join("transport");
        let mut map = String::new();
        for (domain, next_hop) in &relay.routes {
            ensure!(
                next_hop.ip().is_loopback(),
                "postfix-relay relays to loopback addresses only, not {next_hop}"
            );
            map.push_str(&format!(
                "{domain} smtp:[{}]:{}\n",
                next_hop.ip(),
                next_hop.port()
            ));
        }
        let domains: Vec<&str> = relay.routes.iter().map(|(d, _)| d.as_str()).collect();
        let main_cf = format!(
            "relay_domains = {domains}\n\
             transport_maps = hash:{map}\n\
             queue_run_delay = {run}s\n\
             minimal_backoff_time = {min}s\n\
             maximal_backoff_time = {max}s\n",
            domains = domains.join(", "),
            map = transport_map.display(),
            run = relay.queue_run_delay.as_secs(),
            min = relay.minimal_backoff.as_secs(),
            max = relay.maximal_backoff.as_secs(),
        );
        // Stock services: smtp delivers (connection caching on demand, as by default), flush
        // keeps the per-domain logs of deferred mail that relay_domains implies.
        let master_cf = format!(
            "{addr} inet n - n - - smtpd\n\
             {COMMON_SERVICES}\
             smtp      unix  - - n -  - smtp\n\
             relay     unix  - - n -  - smtp\n\
             flush     unix  n - n 1000? 0 flush\n"
        );
        Postfix::launch(
            dir,
            addr,
            "postfix-relay",
            relay.process_limit,
            &main_cf,
            &master_cf,
            &[(transport_map, map)],
        )
    }

    /// Writes main.cf (the settings every instance shares, then `main_cf`), master.cf and the
    /// hash tables `maps` (path, text), then starts the instance.
    fn launch(
        dir: &Path,
        addr: SocketAddrV4,
        name: &'static str,
        process_limit: usize,
        main_cf: &str,
        master_cf: &str,
        maps: &[(PathBuf, String)],
    ) -> Result<Postfix> {
        ensure!(
            addr.ip().is_loopback(),
            "{name} listens on loopback only, not {addr}"
        );
        let config_dir = dir.join("etc");
        let queue_dir = dir.join("queue");
        let maillog = dir.join("maillog");
        // The daemons drop to the postfix user; whatever the umask, they may read and search
        // `dir`. (They reach the queue through their working directory, which the master sets
        // as root, so the directories above `dir` may stay private.)
        set_mode(dir, 0o755)?;
        fs::create_dir(&config_dir).context("create the postfix config directory")?;
        fs::create_dir(&queue_dir).context("create the postfix queue directory")?;
        // Postfix creates the data directory itself, owned by the postfix user.
        let data_dir = dir.join("data");
        for (path, text) in maps {
            fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
        }
        let shared = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             myhostname = {name}.bench.test\n\
             mydomain = bench.test\n\
             mydestination =\n\
             inet_interfaces = {ip}\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             alias_maps =\n\
             alias_database =\n\
             in_flow_delay = 0\n\
             default_process_limit = {process_limit}\n\
             smtpd_client_connection_count_limit = 0\n\
             smtpd_client_connection_rate_limit = 0\n\
             maillog_file = {maillog}\n\
             maillog_file_prefixes = {dir}\n",
            queue = queue_dir.display(),
            data = data_dir.display(),
            ip = addr.ip(),
            maillog = maillog.display(),
            dir = dir.display(),
        );
        fs::write(config_dir.join("main.cf"), format!("{shared}{main_cf}"))
            .context("write main.cf")?;
        fs::write(config_dir.join("master.cf"), master_cf).context("write master.cf")?;

        let mut postfix = Postfix {
            name,
            config_dir,
            queue_dir,
            maillog,
            master_pid: 0,
            running: false,
        };
        for (path, _) in maps {
            postfix.run("postmap", &[&path.display().to_string()])?;
        }
        postfix.run("postfix", &["check"])?;
        postfix.run("postfix", &["start"])?;
        match read_pid(&postfix.queue_dir.join("pid/master.pid")) {
            Ok(pid) => {
                postfix.master_pid = pid;
                postfix.running = true;
                Ok(postfix)
            }
            Err(err) => {
                let _ = postfix.run("postfix", &["stop"]);
                Err(err)
            }
        }
    }

    pub fn master_pid(&self) -> u32 {
        self.master_pid
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Fails, with the end of the log, if the master has exited.
    pub fn ensure_running(&self) -> Result<()> {
        if self.running && !is_alive(self.master_pid) {
            bail!(
                "the postfix master (pid {}) has exited; the end of {}:\n{}",
                self.master_pid,
                self.maillog.display(),
                self.maillog_tail(10)
            );
        }
        Ok(())
    }

    /// Queue files in the hold queue, counted on disk.
    pub fn held_files(&self) -> Result<usize> {
        count_files(&self.queue_dir.join("hold"))
    }

    /// Queue files of messages not yet delivered (maildrop, incoming, active, deferred and
    /// hold), counted on disk: 0 once a relay has delivered everything it accepted.
    pub fn queued_files(&self) -> Result<usize> {
        let mut n_files = 0;
        for queue in QUEUES {
            let dir = self.queue_dir.join(queue);
            if dir.exists() {
                n_files += count_files(&dir)?;
            }
        }
        Ok(n_files)
    }

    /// Held messages as `postqueue -p` reports them.
    pub fn postqueue_held(&self) -> Result<usize> {
        let output = self.run("postqueue", &["-p"])?;
        let listing = String::from_utf8_lossy(&output.stdout);
        let mut held = 0;
        for line in listing.lines() {
            // Entries start with the queue id; `!` after it marks a held message.
            let Some(first) = line.split_whitespace().next() else {
                continue;
            };
            if first.ends_with('!') && first.len() > 1 {
                held += 1;
            }
        }
        Ok(held)
    }

    /// Deletes every held message, so each measurement starts with an empty queue.
    pub fn purge_hold(&self) -> Result<()> {
        self.run("postsuper", &["-d", "ALL", "hold"])?;
        Ok(())
    }

    /// The last `lines` lines of the instance's log.
    pub fn maillog_tail(&self, lines: usize) -> String {
        tail(&self.maillog, lines)
    }

    /// `postfix stop`, then waits for the master and the children it had; kills by PID whatever
    /// outlives the grace period.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let master = self.master_pid;
        let children = child_pids(master);
        let stopped = self.run("postfix", &["stop"]);
        let deadline = Instant::now() + STOP_GRACE;
        // Children notice the master's exit on their own; they get the rest of the grace.
        let killed = kill_survivors(
            std::iter::once(master).chain(children),
            deadline,
            POLL_INTERVAL,
        );
        stopped.context("postfix stop")?;
        if !killed.is_empty() {
            bail!("postfix processes {killed:?} outlived `postfix stop` and were killed");
        }
        Ok(())
    }

    /// [`Postfix::stop`], said on stdout (or stderr); whether it stopped cleanly.
    pub fn stop_and_report(&mut self) -> bool {
        let stopped = self.stop();
        report_stop(
            &format!("{} (master pid {})", self.name, self.master_pid),
            false,
            stopped,
        )
    }

    /// Runs a Postfix command against this instance's config directory.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let config_dir = self.config_dir.display().to_string();
        let output = Command::new(Path::new("/usr/sbin").join(program))
            .arg("-c")
            .arg(&config_dir)
            .args(args)
            .output()
            .with_context(|| format!("run {program}"))?;
        if !output.status.success() {
            bail!(
                "`{program} -c {config_dir} {}` failed ({}): {}{}\nthe end of {}:\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.maillog.display(),
                self.maillog_tail(10)
            );
        }
        Ok(output)
    }
}

impl Drop for Postfix {
    /// The master daemonizes, so nothing else would stop it when the benchmark ends early.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn read_pid(pid_file: &Path) -> Result<u32> {
    let text =
        fs::read_to_string(pid_file).with_context(|| format!("read {}", pid_file.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("parse the pid in {}", pid_file.display()))
}

fn count_files(dir: &Path) -> Result<usize> {
    let mut n_files = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            n_files += count_files(&entry.path())?;
        } else {
            n_files += 1;
        }
    }
    Ok(n_files)
}
