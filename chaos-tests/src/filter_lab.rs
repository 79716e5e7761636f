//! Real content scanners for the filter scenarios: SpamAssassin's spamd (local rules only, no
//! network tests) and ClamAV's clamd with a signature database written by the test (freshclam
//! cannot download here), each started as a child process on a loopback address, waited for
//! with its own PING, and stopped by PID. Also a listener that accepts and never answers (a
//! hung scanner).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a daemon may take to answer its first PING (spamd compiles its rules at start).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a daemon gets after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The string SpamAssassin's GTUBE rule matches (scores 1000).
pub const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// A scanner daemon we started.
pub struct Daemon {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stopped: bool,
}

impl Daemon {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// clamd's unix socket (clamd only).
    pub fn unix_socket(&self) -> PathBuf {
        self.dir.path().join(CLAMD_SOCKET)
    }

    /// What the daemon wrote to stderr and its log file so far (for failure messages).
    pub fn log(&self) -> String {
        let mut text = String::new();
        for name in ["stderr.log", "daemon.log"] {
            if let Ok(part) = std::fs::read_to_string(self.dir.path().join(name)) {
                text.push_str(&part);
            }
        }
        text
    }

    /// SIGTERM, then SIGKILL after the grace period.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let pid = Pid::from_raw(i32::try_from(self.child.id()).context("pid")?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!(
            "{} outlived SIGTERM by {STOP_GRACE:?} and was killed",
            self.name
        )
    }

    fn start(
        name: &'static str,
        mut command: Command,
        dir: tempfile::TempDir,
        addr: SocketAddr,
        ping: &[u8],
        pong: &[u8],
    ) -> Result<Daemon> {
        let stderr =
            std::fs::File::create(dir.path().join("stderr.log")).context("create stderr.log")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stderr.try_clone()?)
            .stderr(stderr)
            .spawn()
            .with_context(|| {
                format!("start {name} (is it installed? deploy/dev.sh installs it)")
            })?;
        let mut daemon = Daemon {
            name,
            child,
            addr,
            dir,
            stopped: false,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = daemon.child.try_wait()? {
                bail!("{name} exited ({status}): {}", daemon.log());
            }
            if ping_once(addr, ping).is_ok_and(|reply| reply.windows(pong.len()).any(|w| w == pong))
            {
                return Ok(daemon);
            }
            if Instant::now() > deadline {
                let log = daemon.log();
                let _ = daemon.stop();
                bail!("{name} did not answer PING within {READY_TIMEOUT:?}: {log}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn ping_once(addr: SocketAddr, ping: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(ping)?;
    let mut reply = Vec::new();
    stream.take(4096).read_to_end(&mut reply)?;
    Ok(reply)
}

/// Debian installs the daemons in /usr/sbin, which is not on every user's PATH.
fn sbin(name: &str) -> PathBuf {
    let path = Path::new("/usr/sbin").join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(name)
    }
}

fn world_readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Starts spamd on `addr` with SpamAssassin's stock rules plus `local_rules` (a local.cf),
/// network tests off.
pub fn spamd(addr: SocketAddr, local_rules: &str) -> Result<Daemon> {
    let dir = tempfile::Builder::new()
        .prefix("mcluster-spamd-")
        .tempdir()?;
    let site = dir.path().join("site");
    std::fs::create_dir(&site)?;
    // The site directory replaces /etc/spamassassin, whose .pre files load the plugins.
    for entry in std::fs::read_dir("/etc/spamassassin").context("read /etc/spamassassin")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "pre") {
            let copy = site.join(path.file_name().context("file name")?);
            std::fs::copy(&path, &copy)?;
            world_readable(&copy)?;
        }
    }
    std::fs::write(site.join("local.cf"), local_rules)?;
    // spamd's children run as nobody when started as root: they must read the rules.
    world_readable(dir.path())?;
    world_readable(&site)?;
    world_readable(&site.join("local.cf"))?;
    let mut command = Command::new(sbin("spamd"));
    command
        .arg(format!("--listen={addr}"))
        .arg("--local")
        .arg("--nouser-config")
        .arg(format!("--siteconfigpath={}", site.display()))
        .arg("--min-children=1")
        .arg("--max-children=2")
        .arg("--allowed-ips=127.0.0.0/8")
        .arg(format!(
            "--pidfile={}",
            dir.path().join("spamd.pid").display()
        ))
        .arg("--syslog=stderr");
    if nix::unistd::geteuid().is_root() {
        command.arg("--username=nobody");
    }
    Daemon::start(
        "spamd",
        command,
        dir,
        addr,
        b"PING SPAMC/1.5\r\n\r\n",
        b"PONG",
    )
}

/// clamd's unix socket, in its directory.
const CLAMD_SOCKET: &str = "clamd.sock";

/// Starts clamd on `addr` (and on a unix socket, `Daemon::unix_socket`) with one signature, `signature_name`, for `pattern` (an .ndb body
/// signature) and the given StreamMaxLength.
pub fn clamd(
    addr: SocketAddr,
    signature_name: &str,
    pattern: &str,
    stream_max_length: &str,
) -> Result<Daemon> {
    let dir = tempfile::Builder::new()
        .prefix("mcluster-clamd-")
        .tempdir()?;
    let db = dir.path().join("db");
    std::fs::create_dir(&db)?;
    let hex: String = pattern.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        db.join("mcluster-test.ndb"),
        format!("{signature_name}:0:*:{hex}\n"),
    )?;
    let config = dir.path().join("clamd.conf");
    std::fs::write(
        &config,
        format!(
            "DatabaseDirectory {}\nTCPSocket {}\nTCPAddr {}\nLocalSocket {}\nForeground yes\n\
             LogFile {}\nStreamMaxLength {stream_max_length}\nMaxThreads 4\n",
            db.display(),
            addr.port(),
            addr.ip(),
            dir.path().join(CLAMD_SOCKET).display(),
            dir.path().join("daemon.log").display(),
        ),
    )?;
    let mut command = Command::new(sbin("clamd"));
    command.arg("--config-file").arg(&config);
    Daemon::start("clamd", command, dir, addr, b"zPING\0", b"PONG")
}

/// A scanner that accepts connections (the kernel completes them) and never answers.
pub struct HungScanner {
    listener: TcpListener,
}

impl HungScanner {
    pub fn bind(addr: SocketAddr) -> Result<HungScanner> {
        Ok(HungScanner {
            listener: TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?,
        })
    }

    pub fn addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }
}

/// Writes `text` to `dir/name`; its path.
pub fn message_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}
