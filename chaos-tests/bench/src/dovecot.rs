//! A private Dovecot 2.3 serving IMAP and POP3 from Maildirs: the reference the fetch
//! benchmark compares the cluster with. It has its own config, base_dir, state, log and mail
//! directories under one directory, listens only on the loopback addresses it is given (plain
//! TCP, plaintext logins allowed, no TLS), and never touches the system Dovecot.
//!
//! The master runs in the foreground (`dovecot -F`) as a child of the benchmark, so its PID is
//! known without a pid file; it runs as root, its login processes as `dovenull` (in the
//! high-performance mode: one long-lived process per CPU), and the mail processes (one per
//! session, the default) as `nobody:nogroup`, who own the Maildirs. The caller fills the Maildirs itself
//! ([`Dovecot::create_maildir`], [`Dovecot::write_message`]) while the instance is stopped or
//! running. Needs root and the Debian packages; `deploy/bench-setup.sh` installs them without
//! starting any service.

use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};

use crate::driver::{set_mode, tail};
use crate::process::{child_pids, kill_survivors, pid_of, report_stop};

/// The program whose presence means Dovecot is installed.
pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// What to run when [`DOVECOT`] is missing (from the workspace root, as root).
pub const INSTALL_COMMAND: &str = "sh deploy/bench-setup.sh";
/// The user and group the mail processes run as and the Maildirs belong to.
pub const MAIL_USER: &str = "nobody";
pub const MAIL_GROUP: &str = "nogroup";
/// How long the master gets after SIGTERM before it and its children are killed.
const STOP_GRACE: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How the instance checks passwords.
pub enum Passdb {
    /// One password for every user, compared in clear (`driver = static`): no hashing cost.
    Static { password: String },
    /// A passwd-file of `(user, {SCHEME}hash)` lines, such as `{ARGON2ID}$argon2id$...`. Every
    /// login verifies the hash (no auth cache: Dovecot's would keep the hash, not the verdict).
    PasswdFile { users: Vec<(String, String)> },
}

/// A private Dovecot. It starts stopped; dropping it stops it.
pub struct Dovecot {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    mail_root: PathBuf,
    imap: SocketAddrV4,
    pop3: SocketAddrV4,
    mail_uid: u32,
    mail_gid: u32,
    master: Option<Child>,
}

impl Dovecot {
    pub fn is_installed() -> bool {
        Path::new(DOVECOT).is_file()
    }

    /// Writes a config under `dir` (which must exist and be empty): IMAP on `imap`, POP3 on
    /// `pop3`, mail in `dir/mail/USER/Maildir` where USER is the login's local part. Starts
    /// nothing.
    pub fn configure(
        dir: &Path,
        imap: SocketAddrV4,
        pop3: SocketAddrV4,
        passdb: &Passdb,
    ) -> Result<Dovecot> {
        ensure!(
            imap.ip().is_loopback() && pop3.ip().is_loopback(),
            "the private Dovecot listens on loopback only, not {imap} and {pop3}"
        );
        ensure!(
            imap.ip() == pop3.ip(),
            "IMAP and POP3 must share one address ({imap}, {pop3}): `listen` is one setting"
        );
        let (mail_uid, mail_gid) = mail_ids()?;
        // The mail processes run as nobody and open the Maildirs by absolute path, so they must
        // be able to search every directory above them; the caller's directories too.
        set_mode(dir, 0o755)?;
        let config = dir.join("dovecot.conf");
        let log = dir.join("dovecot.log");
        let mail_root = dir.join("mail");
        let base_dir = dir.join("run");
        let state_dir = dir.join("state");
        fs::create_dir(&mail_root).context("create the dovecot mail directory")?;
        fs::create_dir(&state_dir).context("create the dovecot state directory")?;
        std::os::unix::fs::chown(&mail_root, Some(mail_uid), Some(mail_gid))
            .context("give the dovecot mail directory to the mail user")?;

        let passdb_section = match passdb {
            Passdb::Static { password } => {
                ensure!(
                    !password.contains(|c: char| c.is_whitespace() || c == '"'),
                    "a static Dovecot password must not hold spaces or quotes"
                );
                format!("passdb {{\n  driver = static\n  args = password={password}\n}}\n")
            }
            Passdb::PasswdFile { users } => {
                let passwd = dir.join("passwd");
                let lines: String = users
                    .iter()
                    .map(|(user, hash)| format!("{user}:{hash}\n"))
                    .collect();
                fs::write(&passwd, lines).context("write the dovecot passwd-file")?;
                format!(
                    "passdb {{\n  driver = passwd-file\n  args = scheme=CRYPT {}\n}}\n",
                    passwd.display()
                )
            }
        };
        // Login processes in Dovecot's documented high-performance mode: a few long-lived ones,
        // one per CPU, each serving many connections, instead of a new process per connection
        // (the default, high-security mode), which costs a fork and exec per login and makes
        // the many-mailboxes shape mostly a measure of that. Mail processes stay one per session.
        let n_cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let login_mode = format!("  service_count = 0\n  process_min_avail = {n_cpus}\n");
        // `%n` is the login's local part; `%Lu` (the default username format) lower-cases it.
        let text = format!(
            "# Written by chaos-tests (dovecot.rs) for a benchmark; not a production config.\n\
             instance_name = dovecot-bench\n\
             base_dir = {base_dir}\n\
             state_dir = {state_dir}\n\
             listen = {imap_ip}\n\
             protocols = imap pop3\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             log_path = {log}\n\
             mail_location = maildir:{mail_root}/%n/Maildir\n\
             mail_uid = {MAIL_USER}\n\
             mail_gid = {MAIL_GROUP}\n\
             default_internal_user = dovecot\n\
             default_login_user = dovenull\n\
             {passdb_section}\
             userdb {{\n  driver = static\n  args = uid={MAIL_USER} gid={MAIL_GROUP} \
             home={mail_root}/%n\n}}\n\
             service imap-login {{\n{login_mode}\
             \x20 inet_listener imap {{\n    address = {imap_ip}\n    port = {imap_port}\n  }}\n\
             \x20 inet_listener imaps {{\n    port = 0\n  }}\n\
             }}\n\
             service pop3-login {{\n{login_mode}\
             \x20 inet_listener pop3 {{\n    address = {pop3_ip}\n    port = {pop3_port}\n  }}\n\
             \x20 inet_listener pop3s {{\n    port = 0\n  }}\n\
             }}\n",
            base_dir = base_dir.display(),
            state_dir = state_dir.display(),
            imap_ip = imap.ip(),
            imap_port = imap.port(),
            pop3_ip = pop3.ip(),
            pop3_port = pop3.port(),
            log = log.display(),
            mail_root = mail_root.display(),
        );
        fs::write(&config, text).context("write dovecot.conf")?;
        let dovecot = Dovecot {
            dir: dir.to_path_buf(),
            config,
            log,
            mail_root,
            imap,
            pop3,
            mail_uid,
            mail_gid,
            master: None,
        };
        dovecot.check_config()?;
        Ok(dovecot)
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn imap_addr(&self) -> SocketAddrV4 {
        self.imap
    }

    pub fn pop3_addr(&self) -> SocketAddrV4 {
        self.pop3
    }

    /// The master's PID while it runs.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(Child::id)
    }

    /// `dovecot -n`: fails on a config Dovecot rejects.
    fn check_config(&self) -> Result<()> {
        let output = Command::new(DOVECOT)
            .arg("-c")
            .arg(&self.config)
            .arg("-n")
            .stdin(Stdio::null())
            .output()
            .context("run dovecot -n")?;
        if !output.status.success() {
            bail!(
                "dovecot rejects {} ({}): {}",
                self.config.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// The Maildir of `user` (a login such as `alice@example.test`; its local part names it).
    pub fn maildir(&self, user: &str) -> PathBuf {
        let local = user.split_once('@').map_or(user, |(local, _)| local);
        self.mail_root
            .join(local.to_ascii_lowercase())
            .join("Maildir")
    }

    /// Creates `user`'s empty Maildir (cur, new, tmp), owned by the mail user.
    pub fn create_maildir(&self, user: &str) -> Result<PathBuf> {
        let maildir = self.maildir(user);
        let home = maildir.parent().expect("a Maildir has a home above it");
        for dir in [
            home.to_path_buf(),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
            self.give_to_mail_user(&dir)?;
        }
        Ok(maildir)
    }

    /// Writes one message into `maildir`/cur under `name` (which must be unique in the Maildir
    /// and end in the `:2,` info of a message without flags), as a delivery agent would have
    /// after moving it out of new/.
    pub fn write_message(&self, maildir: &Path, name: &str, bytes: &[&[u8]]) -> Result<()> {
        let path = maildir.join("cur").join(name);
        let mut file =
            File::create_new(&path).with_context(|| format!("create {}", path.display()))?;
        for part in bytes {
            file.write_all(part)
                .with_context(|| format!("write {}", path.display()))?;
        }
        drop(file);
        self.give_to_mail_user(&path)
    }

    fn give_to_mail_user(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.mail_uid), Some(self.mail_gid))
            .with_context(|| format!("chown {}", path.display()))
    }

    /// Deletes Dovecot's index files (`dovecot.index*`, `dovecot.list.index*`) in every
    /// Maildir, so the next session rebuilds them from the messages. Keeps `dovecot-uidlist`
    /// (the UIDs and UIDVALIDITY, which a mailbox keeps for its life). Only while stopped.
    /// Returns how many files it removed.
    pub fn remove_indexes(&self) -> Result<usize> {
        ensure!(
            self.master.is_none(),
            "the index files are removed only while Dovecot is stopped"
        );
        let mut n_removed = 0;
        for home in fs::read_dir(&self.mail_root).context("list the dovecot mail directory")? {
            let maildir = home?.path().join("Maildir");
            let Ok(entries) = fs::read_dir(&maildir) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("dovecot.index") || name.starts_with("dovecot.list.index") {
                    fs::remove_file(entry.path())
                        .with_context(|| format!("remove {}", entry.path().display()))?;
                    n_removed += 1;
                }
            }
        }
        Ok(n_removed)
    }

    /// Starts the master in the foreground, as a child process. The caller waits until the
    /// listeners answer.
    pub fn start(&mut self) -> Result<u32> {
        ensure!(self.master.is_none(), "dovecot is already running");
        let output = self.dir.join("dovecot.out");
        let output = File::options()
            .create(true)
            .append(true)
            .open(&output)
            .with_context(|| format!("open {}", output.display()))?;
        let master = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(output.try_clone().context("share dovecot.out")?)
            .stderr(output)
            .spawn()
            .context("start dovecot")?;
        let pid = master.id();
        self.master = Some(master);
        Ok(pid)
    }

    /// Fails, with the end of the log, if the master has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        let Some(master) = self.master.as_mut() else {
            bail!("dovecot is not running");
        };
        if let Some(status) = master.try_wait().context("check the dovecot master")? {
            self.master = None;
            bail!(
                "the dovecot master exited ({status}); the end of {}:\n{}",
                self.log.display(),
                self.log_tail(10)
            );
        }
        Ok(())
    }

    /// SIGTERM to the master (it stops its children itself), then waits for it and for the
    /// children it had; kills by PID whatever outlives the grace period.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut master) = self.master.take() else {
            return Ok(());
        };
        let pid = master.id();
        if master.try_wait()?.is_some() {
            return Ok(());
        }
        let children = child_pids(pid);
        kill(pid_of(pid), Signal::SIGTERM).context("send SIGTERM to the dovecot master")?;
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if master.try_wait()?.is_some() {
                break;
            }
            sleep(POLL_INTERVAL);
        }
        let mut killed = Vec::new();
        if master.try_wait()?.is_none() {
            let _ = kill(pid_of(pid), Signal::SIGKILL);
            killed.push(pid);
        }
        master.wait().context("wait for the dovecot master")?;
        killed.extend(kill_survivors(children, deadline, POLL_INTERVAL));
        if !killed.is_empty() {
            bail!(
                "dovecot processes {killed:?} outlived SIGTERM by {STOP_GRACE:?} and were killed"
            );
        }
        Ok(())
    }

    /// [`Dovecot::stop`] if it runs, said on stdout (or stderr); whether it stopped cleanly.
    pub fn stop_and_report(&mut self) -> bool {
        let Some(pid) = self.master_pid() else {
            return true;
        };
        let stopped = self.stop();
        report_stop(&format!("dovecot (master pid {pid})"), false, stopped)
    }

    /// The last `lines` lines of the instance's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("stop dovecot: {err:#}");
        }
    }
}

/// The uid of [`MAIL_USER`] and gid of [`MAIL_GROUP`], from /etc/passwd and /etc/group.
fn mail_ids() -> Result<(u32, u32)> {
    let id = |file: &str, name: &str| -> Result<u32> {
        let text = fs::read_to_string(file).with_context(|| format!("read {file}"))?;
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let entry = fields.next()?;
                let id = fields.nth(1)?;
                (entry == name).then(|| id.parse().ok())?
            })
            .next()
            .with_context(|| format!("{file} has no {name}"))
    };
    Ok((id("/etc/passwd", MAIL_USER)?, id("/etc/group", MAIL_GROUP)?))
}
