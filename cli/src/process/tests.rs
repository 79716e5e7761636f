//! Tests for starting, watching and stopping processes, with `sh` standing in for mclusterd.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use nix::unistd::{Pid, getpgid};

use crate::node_dir::NodePaths;
use crate::process::{Interrupted, Launch, MclusterdSearch, NodeProcess, Stopped, wait_until};

fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

fn spawn(dir: &Path, script: &str, launch: Launch) -> NodeProcess {
    let paths = NodePaths::new(dir).expect("paths");
    NodeProcess::spawn_command(shell(script), "n1", &paths, launch).expect("spawn")
}

#[track_caller]
fn wait_for_exit(node_process: &mut NodeProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node_process.exit_status().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn writes_pid_file_and_appends_output_to_the_log() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let mut node_process = spawn(dir.path(), "echo out; echo err >&2", Launch::Attached);
    let pid_text = fs::read_to_string(dir.path().join("mclusterd.pid")).expect("pid file");
    assert_eq!(pid_text.trim(), node_process.pid().to_string());
    wait_for_exit(&mut node_process);
    let log = fs::read_to_string(dir.path().join("mclusterd.log")).expect("log");
    assert!(log.contains("--- mclusterctl starts n1 at "), "{log}");
    assert!(log.contains("out\n") && log.contains("err\n"), "{log}");
}

#[test]
fn detached_process_leads_its_own_process_group() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let mut node_process = spawn(dir.path(), "exec sleep 30", Launch::Detached);
    let pid = Pid::from_raw(i32::try_from(node_process.pid()).expect("pid"));
    assert_eq!(getpgid(Some(pid)).expect("getpgid"), pid);
    node_process.stop(Duration::from_secs(5));
}

#[test]
fn stop_sends_sigterm_and_removes_the_pid_file() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let mut node_process = spawn(dir.path(), "exec sleep 30", Launch::Attached);
    let started = Instant::now();
    let stopped = node_process.stop(Duration::from_secs(5));
    assert!(matches!(stopped, Stopped::Exited(_)), "{stopped}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!dir.path().join("mclusterd.pid").exists());
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm() {
    let dir = tempfile::tempdir().expect("create temp dir");
    // Ignored signals stay ignored across exec.
    let mut node_process = spawn(dir.path(), "trap '' TERM; exec sleep 30", Launch::Attached);
    std::thread::sleep(Duration::from_millis(200));
    let stopped = node_process.stop(Duration::from_millis(300));
    assert!(matches!(stopped, Stopped::Killed), "{stopped}");
}

#[test]
fn wait_fails_with_the_log_when_the_process_exits() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let mut node_process = spawn(
        dir.path(),
        "echo cannot bind 127.0.0.11:7070; exit 3",
        Launch::Attached,
    );
    let err = wait_until(
        "leader",
        Duration::from_secs(10),
        &AtomicBool::new(false),
        &mut [&mut node_process],
        || Ok(false),
    )
    .expect_err("process exits");
    let message = format!("{err:#}");
    assert!(message.contains("mclusterd for n1 exited"), "{message}");
    assert!(message.contains("cannot bind 127.0.0.11:7070"), "{message}");
}

#[test]
fn wait_stops_when_asked() {
    let err = wait_until(
        "leader",
        Duration::from_secs(10),
        &AtomicBool::new(true),
        &mut [],
        || Ok(false),
    )
    .expect_err("interrupted");
    assert!(err.is::<Interrupted>());
}

#[test]
fn wait_times_out_with_the_last_probe_error() {
    let mut n_probes = 0;
    let err = wait_until(
        "leader",
        Duration::from_millis(600),
        &AtomicBool::new(false),
        &mut [],
        || {
            n_probes += 1;
            anyhow::bail!("connection refused")
        },
    )
    .expect_err("timeout");
    assert!(n_probes >= 2);
    let message = format!("{err:#}");
    assert!(
        message.contains("no leader after 0 s: connection refused"),
        "{message}"
    );
}

#[test]
fn wait_returns_once_the_probe_succeeds() {
    let mut n_probes = 0;
    wait_until(
        "leader",
        Duration::from_secs(10),
        &AtomicBool::new(false),
        &mut [],
        || {
            n_probes += 1;
            Ok(n_probes == 2)
        },
    )
    .expect("ready");
}

fn executable(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, "#!/bin/sh\n").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn finds_mclusterd_in_order() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let explicit = executable(dir.path(), "custom");
    let beside_dir = dir.path().join("bin");
    fs::create_dir(&beside_dir).expect("mkdir");
    let beside = executable(&beside_dir, "mclusterd");
    let path_dir = dir.path().join("path");
    fs::create_dir(&path_dir).expect("mkdir");
    let on_path = executable(&path_dir, "mclusterd");

    let search = MclusterdSearch {
        explicit: Some(explicit.clone()),
        env: Some(on_path.clone().into()),
        exe_dir: Some(beside_dir.clone()),
        path_var: Some(path_dir.clone().into()),
    };
    assert_eq!(search.find().expect("explicit"), explicit);
    let search = MclusterdSearch {
        explicit: None,
        ..search
    };
    assert_eq!(search.find().expect("env"), on_path);
    let search = MclusterdSearch {
        env: None,
        ..search
    };
    assert_eq!(search.find().expect("beside"), beside);
    let search = MclusterdSearch {
        exe_dir: Some(dir.path().join("empty")),
        ..search
    };
    assert_eq!(search.find().expect("on PATH"), on_path);
    let search = MclusterdSearch {
        path_var: None,
        ..search
    };
    assert!(search.find().is_err());
}

#[test]
fn explicit_mclusterd_must_be_executable() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("mclusterd");
    fs::write(&path, "not executable").expect("write");
    let search = MclusterdSearch {
        explicit: Some(path),
        ..MclusterdSearch::default()
    };
    let err = search.find().expect_err("not executable");
    assert!(
        format!("{err:#}").contains("not an executable file"),
        "{err:#}"
    );
}
