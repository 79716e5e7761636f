//! The Debian package (`deploy/deb/build.sh`) as an administrator meets it: `dpkg -i`, the unit
//! verified, a node made with `mclusterctl init` put in /etc/mcluster and started as the
//! package's `mcluster` user the way the unit starts it, then `dpkg -i` of a newer package that
//! keeps the node's config and data, and a purge that keeps the mail. It installs into this
//! machine, so it runs only when asked (`MCLUSTER_PACKAGE_TEST=1`, which `deploy/dev.sh test`
//! sets; root and dpkg needed), leaves the machine as it found it, and will not touch a machine
//! that has an mcluster installation of its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chaos_tests::cluster::wait_until;
use chaos_tests::mail::PASSWORD;

const ADMIN: &str = "127.77.123.1:7070";
/// Left by a run, in both directories it installs into, until its cleanup: a later run may
/// clean up after one that died only where both are there (a real installation has neither).
const MARKERS: [&str; 2] = [
    "/var/lib/mcluster/.mcluster-package-test",
    "/etc/mcluster/.mcluster-package-test",
];
/// In the markers when the run made the `mcluster` user (so its cleanup removes it).
const MADE_USER: &str = "made the mcluster user";

fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build_package(out: &Path, version: Option<&str>) -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/deb/build.sh");
    let out = out.display().to_string();
    let mut args = vec!["--out", out.as_str()];
    if let Some(version) = version {
        args.extend(["--version", version]);
    }
    let path = run(script.to_str().context("script path")?, &args)?;
    Ok(PathBuf::from(path.trim()))
}

/// The installed node, started as the `mcluster` user like the unit does; killed when dropped.
struct Node(Child);

impl Node {
    fn start() -> Result<Node> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/var/lib/mcluster/package-test.log")?;
        let child = Command::new("setpriv")
            .args(["--reuid=mcluster", "--regid=mcluster", "--init-groups"])
            .args([
                "/usr/bin/mclusterd",
                "--config",
                "/etc/mcluster/mclusterd.toml",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start mclusterd as mcluster")?;
        let node = Node(child);
        // Over HTTPS with the CA in the node's directory: the cluster takes nothing else.
        let ready = format!("https://{ADMIN}/ready");
        wait_until(
            Duration::from_secs(60),
            "the packaged node to be ready",
            || {
                run(
                    "curl",
                    &["-fsS", "--cacert", "/etc/mcluster/ca.crt", &ready],
                )
                .ok()
            },
        )
        .with_context(|| {
            std::fs::read_to_string("/var/lib/mcluster/package-test.log").unwrap_or_default()
        })?;
        Ok(node)
    }

    /// The user the process runs as, by name.
    fn user(&self) -> Result<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .context("Uid in /proc")?;
        let entry = run("getent", &["passwd", uid])?;
        Ok(entry.split(':').next().unwrap_or_default().to_owned())
    }

    fn stop(mut self) -> Result<()> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.0.id())?),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let status = self.0.wait()?;
        ensure!(
            status.success(),
            "mclusterd exited with {status} after SIGTERM"
        );
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes what the test installed, also after a failure.
struct Cleanup {
    created_user: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "mcluster"]);
        let _ = std::fs::remove_dir_all("/var/lib/mcluster");
        let _ = std::fs::remove_dir_all("/etc/mcluster");
        if self.created_user {
            let _ = run("deluser", &["--quiet", "--system", "mcluster"]);
            let _ = run("delgroup", &["--quiet", "--system", "mcluster"]);
        }
    }
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "mcluster"])
        .is_ok_and(|status| status.contains("installed"))
}

#[test]
fn the_debian_package_installs_runs_as_its_user_and_upgrades_keeping_config_and_data() -> Result<()>
{
    if std::env::var("MCLUSTER_PACKAGE_TEST").as_deref() != Ok("1") {
        println!(
            "skipped: MCLUSTER_PACKAGE_TEST=1 runs the package test (it installs into this machine)"
        );
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() || run("dpkg", &["--version"]).is_err() {
        println!("skipped: the package test needs root and dpkg");
        return Ok(());
    }
    let leftover = MARKERS.iter().all(|m| Path::new(m).exists());
    if !leftover
        && (installed()
            || Path::new("/var/lib/mcluster").exists()
            || Path::new("/etc/mcluster").exists())
    {
        println!(
            "skipped: this machine has an mcluster installation; the package test leaves it alone"
        );
        return Ok(());
    }
    let made_user = if leftover {
        std::fs::read_to_string(MARKERS[0])?.contains(MADE_USER)
    } else {
        run("getent", &["passwd", "mcluster"]).is_err()
    };
    let _cleanup = Cleanup {
        created_user: made_user,
    };
    if leftover {
        // A run that died half-way: start again from nothing.
        let _ = run("dpkg", &["--purge", "mcluster"]);
        std::fs::remove_dir_all("/var/lib/mcluster")?;
        let _ = std::fs::remove_dir_all("/etc/mcluster");
    }
    let work = tempfile::tempdir()?;
    let first = build_package(work.path(), None)?;
    let newer = build_package(&work.path().join("newer"), Some("99.0.0"))?;

    run("dpkg", &["-i", first.to_str().context("path")?])?;
    let marker = if made_user {
        format!("made by the package test; {MADE_USER}\n")
    } else {
        "made by the package test\n".to_owned()
    };
    for path in MARKERS {
        std::fs::write(path, &marker)?;
    }
    let version = run("/usr/bin/mclusterd", &["--version"])?;
    ensure!(
        version.starts_with(&format!("mclusterd {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    for page in [
        "/usr/share/man/man8/mclusterd.8.gz",
        "/usr/share/man/man1/mclusterctl.1.gz",
        "/usr/share/man/man1/mclusterctl-upgrade-status.1.gz",
    ] {
        ensure!(Path::new(page).exists(), "{page} is missing");
    }
    let conffiles = run("dpkg-query", &["-W", "-f=${Conffiles}", "mcluster"])?;
    ensure!(
        conffiles.contains("/etc/mcluster/mclusterd.toml"),
        "{conffiles}"
    );
    run(
        "systemd-analyze",
        &["verify", "/lib/systemd/system/mclusterd.service"],
    )?;
    run("getent", &["passwd", "mcluster"])?;

    // A node directory as `mclusterctl init` writes it, put where the unit expects it.
    let dir = work.path().join("cluster");
    let ctl = |args: &[&str]| -> Result<String> {
        let config = dir.join("client.toml");
        let mut all = vec!["--config", config.to_str().context("path")?];
        all.extend_from_slice(args);
        run("/usr/bin/mclusterctl", &all)
    };
    let dir_arg = dir.display().to_string();
    let mut init = vec![
        "init",
        "--dir",
        &dir_arg,
        "--name",
        "n1",
        "--raft-addr",
        "127.77.123.1:7071",
        "--admin-addr",
        ADMIN,
        "--data-dir",
        "/var/lib/mcluster",
    ];
    let ports = [
        ("--smtp-addr", "127.77.123.1:2525"),
        ("--submission-addr", "127.77.123.1:2587"),
        ("--smtps-addr", "127.77.123.1:2465"),
        ("--pop3-addr", "127.77.123.1:2110"),
        ("--pop3s-addr", "127.77.123.1:2995"),
        ("--imap-addr", "127.77.123.1:2143"),
        ("--imaps-addr", "127.77.123.1:2993"),
    ];
    for (flag, addr) in &ports {
        init.extend([*flag, *addr]);
    }
    ctl(&init)?;
    run("cp", &["-a", &format!("{dir_arg}/n1/."), "/etc/mcluster/"])?;
    run("chown", &["-R", "mcluster:mcluster", "/etc/mcluster"])?;

    let node = Node::start()?;
    ensure!(
        node.user()? == "mcluster",
        "the node runs as {}",
        node.user()?
    );
    ctl(&["domain", "add", "example.test"])?;
    ctl(&["user", "add", "alice@example.test", "--password", PASSWORD])?;
    node.stop()?;

    // The newer package: the node's config (a changed conffile) and its data stay.
    run("dpkg", &["-i", newer.to_str().context("path")?])?;
    let config = std::fs::read_to_string("/etc/mcluster/mclusterd.toml")?;
    ensure!(
        config.contains("127.77.123.1:7070"),
        "the node's config was replaced:\n{config}"
    );
    ensure!(
        Path::new("/var/lib/mcluster/rocksdb").exists(),
        "the data is gone"
    );
    let node = Node::start()?;
    let users = ctl(&["user", "list", "--domain", "example.test"])?;
    ensure!(users.contains("alice@example.test"), "{users}");
    node.stop()?;

    // A purge removes the package and its config, never the mail.
    let said = run("dpkg", &["--purge", "mcluster"])?;
    ensure!(!Path::new("/usr/bin/mclusterd").exists());
    ensure!(
        Path::new("/var/lib/mcluster/rocksdb").exists(),
        "a purge deleted the data"
    );
    ensure!(said.contains("stays in /var/lib/mcluster"), "{said}");
    Ok(())
}
