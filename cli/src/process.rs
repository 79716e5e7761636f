//! Finding, starting, watching and stopping mclusterd processes.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::calendar;
use crate::node_dir::NodePaths;

#[cfg(test)]
mod tests;

/// How long a stopping node gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(250);
const LOG_TAIL_LINES: usize = 20;
const LOG_TAIL_BYTES: u64 = 16 * 1024;

/// Where to look for mclusterd, in order: `--mclusterd`, `$MCLUSTERD`, next to the running
/// executable, on `PATH`.
#[derive(Debug, Clone, Default)]
pub struct MclusterdSearch {
    pub explicit: Option<PathBuf>,
    pub env: Option<OsString>,
    pub exe_dir: Option<PathBuf>,
    pub path_var: Option<OsString>,
}

impl MclusterdSearch {
    /// The search for this process: its environment and executable.
    pub fn from_env(explicit: Option<PathBuf>) -> MclusterdSearch {
        MclusterdSearch {
            explicit,
            env: std::env::var_os("MCLUSTERD").filter(|value| !value.is_empty()),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(Path::to_path_buf)),
            path_var: std::env::var_os("PATH"),
        }
    }

    /// The absolute path of the mclusterd to run.
    pub fn find(&self) -> Result<PathBuf> {
        if let Some(path) = &self.explicit {
            return executable(path).context("check --mclusterd");
        }
        if let Some(path) = &self.env {
            return executable(Path::new(path)).context("check $MCLUSTERD");
        }
        let beside = self.exe_dir.iter().map(|dir| dir.join("mclusterd"));
        let on_path = self
            .path_var
            .iter()
            .flat_map(std::env::split_paths)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join("mclusterd"));
        beside
            .chain(on_path)
            .find(|candidate| is_executable_file(candidate))
            .context(
                "cannot find mclusterd: pass --mclusterd PATH, set $MCLUSTERD, or put mclusterd \
                 next to mclusterctl or on PATH",
            )
    }
}

fn executable(path: &Path) -> Result<PathBuf> {
    let path = fs::canonicalize(path).with_context(|| format!("find {}", path.display()))?;
    if !is_executable_file(&path) {
        bail!("{} is not an executable file", path.display());
    }
    Ok(path)
}

fn is_executable_file(path: &Path) -> bool {
    fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// How a node process relates to mclusterctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// In its own process group, so it outlives mclusterctl and the terminal's Ctrl-C.
    Detached,
    /// A plain child (the demo), stopped by mclusterctl before it exits.
    Attached,
}

/// A running (or exited) mclusterd that mclusterctl started.
#[derive(Debug)]
pub struct NodeProcess {
    pub name: String,
    pub paths: NodePaths,
    child: Child,
    exit_status: Option<ExitStatus>,
}

impl NodeProcess {
    /// Runs `mclusterd --config <paths.config>` in the node's directory, appending its output
    /// to `paths.log` and writing its pid to `paths.pid`.
    pub fn spawn(
        mclusterd: &Path,
        name: &str,
        paths: &NodePaths,
        launch: Launch,
    ) -> Result<NodeProcess> {
        let mut command = Command::new(mclusterd);
        command
            .arg("--config")
            .arg(&paths.config)
            .current_dir(&paths.dir);
        NodeProcess::spawn_command(command, name, paths, launch)
            .with_context(|| format!("start {} for {name}", mclusterd.display()))
    }

    /// Like [`NodeProcess::spawn`] with any command: output to the log, pid to the pid file.
    pub fn spawn_command(
        mut command: Command,
        name: &str,
        paths: &NodePaths,
        launch: Launch,
    ) -> Result<NodeProcess> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.log)
            .with_context(|| format!("open log file {}", paths.log.display()))?;
        writeln!(
            log,
            "--- mclusterctl starts {} at {} ---",
            name,
            calendar::format_unix_utc(calendar::unix_now())
        )
        .with_context(|| format!("write to {}", paths.log.display()))?;
        let log_for_stderr = log.try_clone().context("duplicate log file handle")?;
        command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr);
        if launch == Launch::Detached {
            command.process_group(0);
        }
        let child = command.spawn().context("spawn process")?;
        let mut node_process = NodeProcess {
            name: name.to_owned(),
            paths: paths.clone(),
            child,
            exit_status: None,
        };
        if let Err(err) = fs::write(&paths.pid, format!("{}\n", node_process.pid())) {
            // A node whose pid nobody can find must not keep running unnoticed.
            node_process.stop(Duration::ZERO);
            return Err(err).with_context(|| format!("write {}", paths.pid.display()));
        }
        Ok(node_process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited; reaps it.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit_status.is_none() {
            self.exit_status = self
                .child
                .try_wait()
                .with_context(|| format!("check on mclusterd for {}", self.name))?;
        }
        Ok(self.exit_status)
    }

    /// Fails, with the end of the log, if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.exit_status()? {
            bail!(
                "mclusterd for {} exited ({}); the end of {}:\n{}",
                self.name,
                status,
                self.paths.log.display(),
                log_tail(&self.paths.log)
            );
        }
        Ok(())
    }

    /// Sends SIGTERM unless the process has already exited.
    pub fn terminate(&mut self) -> Result<()> {
        if self.exit_status()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.pid()).context("pid out of range")?);
        match kill(pid, Signal::SIGTERM) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(errno) => Err(errno).with_context(|| format!("send SIGTERM to {}", self.name)),
        }
    }

    /// Waits up to `grace` for the process to exit, then kills it. Removes the pid file.
    pub fn wait_or_kill(&mut self, grace: Duration) -> Stopped {
        let deadline = Instant::now() + grace;
        let stopped = loop {
            match self.exit_status() {
                Ok(Some(status)) => break Stopped::Exited(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) | Err(_) => {
                    // SIGKILL; errors mean it is already gone, which wait() then reports.
                    let _ = self.child.kill();
                    break match self.child.wait() {
                        Ok(status) => {
                            self.exit_status = Some(status);
                            Stopped::Killed
                        }
                        Err(err) => Stopped::Lost(err.to_string()),
                    };
                }
            }
        };
        // The pid file would name a process that no longer exists; a stale one only misleads.
        let _ = fs::remove_file(&self.paths.pid);
        stopped
    }

    /// SIGTERM, then [`NodeProcess::wait_or_kill`].
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        if let Err(err) = self.terminate() {
            return Stopped::Lost(format!("{err:#}"));
        }
        self.wait_or_kill(grace)
    }
}

/// How a stopped process ended.
#[derive(Debug)]
pub enum Stopped {
    Exited(ExitStatus),
    /// It did not exit within the grace period and got SIGKILL.
    Killed,
    /// Waiting for it failed.
    Lost(String),
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Exited(status) => write!(f, "stopped ({status})"),
            Stopped::Killed => write!(f, "killed (did not stop within the grace period)"),
            Stopped::Lost(err) => write!(f, "lost track of it: {err}"),
        }
    }
}

/// The last lines of a log file, indented; a note if it cannot be read.
pub fn log_tail(path: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..]
                .iter()
                .map(|line| format!("    {line}\n"))
                .collect()
        }
        Err(err) => format!("    (cannot read the log: {err})\n"),
    }
}

/// Waiting was cut short by SIGINT or SIGTERM.
#[derive(Debug, Clone, Copy)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Polls `probe` until it answers true, for at most `timeout`. Fails early if one of
/// `processes` exits or `stop` is set ([`Interrupted`]); on timeout the error names the last
/// probe failure.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    stop: &AtomicBool,
    processes: &mut [&mut NodeProcess],
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_error: Option<anyhow::Error>;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        for node_process in processes.iter_mut() {
            node_process
                .check_running()
                .with_context(|| format!("wait for {what}"))?;
        }
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => last_error = None,
            Err(err) => last_error = Some(err),
        }
        if Instant::now() >= deadline {
            let waited = timeout.as_secs();
            return Err(match last_error {
                Some(err) => err.context(format!("no {what} after {waited} s")),
                None => anyhow::anyhow!("no {what} after {waited} s"),
            });
        }
        thread::sleep(READY_POLL_INTERVAL);
    }
}
