//! The processes a benchmark starts and must stop: pids as nix wants them, liveness and children
//! from `/proc`, killing what outlives a grace period, the stop flag that SIGINT, SIGTERM and
//! SIGHUP set instead of ending the benchmark, and the line that says how a stop went.

use std::fs;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

/// Set once a stop signal came; every loop and wait checks it.
static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
/// Whether the stop signals are blocked ([`block_stop_signals`]) rather than handled.
static BLOCKED: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal came: the benchmark finishes what it does and stops what it started.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// SIGINT, SIGTERM and SIGHUP set the stop flag instead of ending the process, so the benchmark
/// always gets to stop what it started. Handlers (unlike a blocked mask) do not survive exec,
/// so the children keep their default reactions.
pub fn catch_stop_signals() -> Result<()> {
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, Arc::clone(&STOP))
            .with_context(|| format!("install a handler for signal {signal}"))?;
    }
    Ok(())
}

/// Blocks SIGINT, SIGTERM and SIGHUP in every thread (threads inherit the mask, so this runs
/// before any other thread starts) and lets one thread take them and set the stop flag, so the
/// benchmark always gets to stop what it started; no read is ever interrupted. Children are
/// started through [`spawn_unblocked`]. Postfix's master resets its own mask.
pub fn block_stop_signals() -> Result<()> {
    let signals = stop_signals();
    signals.thread_block().context("block stop signals")?;
    BLOCKED.store(true, Ordering::SeqCst);
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

/// Spawns `command`. A child inherits a blocked signal mask across exec (std does not reset
/// it) and would then never see SIGTERM, so while [`block_stop_signals`] is in force this
/// thread unblocks them for the moment of the spawn; a signal in that moment ends the
/// benchmark, so call it before anything else is started.
pub fn spawn_unblocked(command: &mut Command) -> Result<Child> {
    if !BLOCKED.load(Ordering::SeqCst) {
        return Ok(command.spawn()?);
    }
    let signals = stop_signals();
    signals.thread_unblock().context("unblock stop signals")?;
    let spawned = command.spawn();
    signals.thread_block().context("block stop signals")?;
    Ok(spawned?)
}

fn stop_signals() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
}

/// Says how stopping `name` went: `NAME stopped` on stdout, or `stop [the ]NAME: ERROR` on
/// stderr (`the`: whether that message says "the"). True if it stopped cleanly.
pub fn report_stop(name: &str, the: bool, result: Result<()>) -> bool {
    match result {
        Ok(()) => {
            println!("{name} stopped");
            true
        }
        Err(err) => {
            eprintln!("stop {}{name}: {err:#}", if the { "the " } else { "" });
            false
        }
    }
}

/// A child's pid as nix wants it.
pub fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("Linux pids fit in i32"))
}

/// The state letter and parent of a process, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after it do not.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Whether `pid` still runs. A zombie counts as gone: its parent may be an init that never reaps.
pub fn is_alive(pid: u32) -> bool {
    matches!(proc_stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// The live processes whose parent is `pid`.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| matches!(proc_stat(child), Some((state, parent)) if parent == pid && state != 'Z'))
        .collect()
}

/// Waits (polling every `poll`) until each of `pids` has exited or `deadline` has passed, then
/// kills the ones still alive with SIGKILL; returns those.
pub fn kill_survivors(
    pids: impl IntoIterator<Item = u32>,
    deadline: Instant,
    poll: Duration,
) -> Vec<u32> {
    let mut killed = Vec::new();
    for pid in pids {
        while is_alive(pid) && Instant::now() < deadline {
            thread::sleep(poll);
        }
        if is_alive(pid) {
            let _ = kill(pid_of(pid), Signal::SIGKILL);
            killed.push(pid);
        }
    }
    killed
}
