//! The demo cluster (`mclusterctl demo`: three nodes, SMTP on 127.0.0.11:2525) as a child
//! process, the mcluster that smtp_bench and fetch_bench measure: starting it in the
//! benchmark's directory with its own client config, running mclusterctl against it, raising
//! the mail policy's limits for the benchmark's clients, and stopping it by PID.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chaos_tests::cluster::bin_dir;
use nix::sys::signal::{Signal, kill};

use crate::driver::{run_ctl, tail};
use crate::process::{child_pids, pid_of, report_stop, spawn_unblocked};

/// The demo's first node's SMTP listener.
pub const MCLUSTER_SMTP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 2525);
/// The demo's client config, in the benchmark's directory, not the user's.
const CLIENT_CONFIG: &str = "client.toml";
/// The demo gives each of its three nodes 10 s after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(60);
/// Room above the benchmark's sessions in the cluster's connection limits (probes, sessions
/// of the previous cell still closing).
const ADMIT_MARGIN: u64 = 16;
/// Lines of the demo's log an error shows.
const LOG_LINES: usize = 20;

/// The demo cluster as a child process. Dropping it stops it.
pub struct Demo {
    child: Child,
    ctl: PathBuf,
    /// The benchmark's mcluster directory; the cluster itself lives in `demo/` below it.
    dir: PathBuf,
    log: PathBuf,
    /// Of the demo user.
    password: String,
    /// Bounds every mclusterctl run.
    ctl_timeout: Duration,
    stopped: bool,
}

impl Demo {
    /// Creates `work/mcluster`, starts a new demo cluster there and says where it is.
    pub fn create(work: &Path, password: &str, ctl_timeout: Duration) -> Result<Demo> {
        let dir = work.join("mcluster");
        fs::create_dir(&dir).context("create the mcluster directory")?;
        let demo = Demo::start(&dir, password, ctl_timeout)?;
        println!(
            "mcluster demo: pid {}, dir {}, log {}",
            demo.pid(),
            dir.join("demo").display(),
            demo.log.display()
        );
        Ok(demo)
    }

    /// Starts `mclusterctl demo`, which creates the cluster in `dir/demo` or restarts the one
    /// there; its output goes to `dir/demo.log`.
    pub fn start(dir: &Path, password: &str, ctl_timeout: Duration) -> Result<Demo> {
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
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .context("open the demo log")?;
        let mut command = Command::new(&ctl);
        command
            // Its own client config, so the user's stays untouched.
            .arg("--config")
            .arg(dir.join(CLIENT_CONFIG))
            .arg("demo")
            .arg("--dir")
            .arg(dir.join("demo"))
            .arg("--password")
            .arg(password)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("share the demo log")?)
            .stderr(log_file);
        // The demo stays in our process group: a Ctrl-C at the terminal reaches it too, and it
        // stops its nodes itself.
        let child = spawn_unblocked(&mut command)
            .with_context(|| format!("start {} demo", ctl.display()))?;
        Ok(Demo {
            child,
            ctl,
            dir: dir.to_path_buf(),
            log,
            password: password.to_owned(),
            ctl_timeout,
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// `the end of LOG:` and its last lines, for an error message.
    pub fn log_end(&self) -> String {
        format!(
            "the end of {}:\n{}",
            self.log.display(),
            tail(&self.log, LOG_LINES)
        )
    }

    /// `mclusterctl --config <the demo's client config> ARGS`, bounded in time; its stdout.
    pub fn ctl(&self, args: &[&str]) -> Result<String> {
        self.ctl_with_input(args, None)
    }

    /// [`Demo::ctl`] with `input` on its standard input (for passwords, which stay out of the
    /// process list).
    pub fn ctl_with_input(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        run_ctl(
            &self.ctl,
            &self.dir.join(CLIENT_CONFIG),
            args,
            input,
            &self.dir,
            self.ctl_timeout,
        )
    }

    /// Raises each of the mail policy's `limits` below `n_sessions` and a margin to that (every
    /// benchmark session comes from 127.0.0.1) and turns on each of its `switches` that is off.
    /// Returns what it changed (`key old -> new`).
    pub fn raise_policy(
        &self,
        limits: &[&str],
        n_sessions: usize,
        switches: &[&str],
    ) -> Result<Vec<String>> {
        let shown = self.ctl(&["policy", "show", "--json"])?;
        let policy: serde_json::Value =
            serde_json::from_str(&shown).context("parse `mclusterctl policy show --json`")?;
        let wanted = n_sessions as u64 + ADMIT_MARGIN;
        let mut settings = Vec::new();
        for &key in limits {
            let value = policy[key]
                .as_u64()
                .with_context(|| format!("the mail policy has no number {key}: {shown}"))?;
            if value < wanted {
                settings.push((key, value.to_string(), wanted.to_string()));
            }
        }
        for &key in switches {
            let on = policy[key]
                .as_bool()
                .with_context(|| format!("the mail policy has no boolean {key}: {shown}"))?;
            if !on {
                settings.push((key, "false".to_owned(), "true".to_owned()));
            }
        }
        if settings.is_empty() {
            return Ok(Vec::new());
        }
        let assignments: Vec<String> = settings
            .iter()
            .map(|(key, _, wanted)| format!("{key}={wanted}"))
            .collect();
        let mut args = vec!["policy", "set"];
        args.extend(assignments.iter().map(String::as_str));
        self.ctl(&args)?;
        Ok(settings
            .iter()
            .map(|(key, value, wanted)| format!("{key} {value} -> {wanted}"))
            .collect())
    }

    /// Fails, with the end of its log, if the demo has exited; `when` says when it was found.
    pub fn ensure_running(&mut self, when: &str) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("check the demo process")? {
            bail!(
                "the mcluster demo exited ({status}) {when}; {}",
                self.log_end()
            );
        }
        Ok(())
    }

    /// SIGTERM (the demo stops its nodes itself), then waits; kills the demo and its children
    /// by PID if it overstays.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = self.child.id();
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        kill(pid_of(pid), Signal::SIGTERM).context("send SIGTERM to the demo")?;
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        let children = child_pids(pid);
        for victim in std::iter::once(pid).chain(children.iter().copied()) {
            let _ = kill(pid_of(victim), Signal::SIGKILL);
        }
        self.child.wait()?;
        bail!(
            "the demo did not stop within {STOP_GRACE:?}; killed it and its children {children:?}"
        )
    }

    /// [`Demo::stop`], said on stdout (or stderr); whether it stopped cleanly.
    pub fn stop_and_report(&mut self) -> bool {
        let pid = self.pid();
        let stopped = self.stop();
        report_stop(&format!("mcluster demo (pid {pid})"), true, stopped)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("stop the mcluster demo: {err:#}");
        }
    }
}
