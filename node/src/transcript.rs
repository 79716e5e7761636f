//! In-process protocol transcripts: a session of SMTP, POP3 or IMAP runs against the in-memory
//! store (`store::memory`) over `tokio::io::duplex`, and a script of client and server lines is
//! played against it and compared as text. No sockets, no cluster, no disk.
//!
//! A script has one line per protocol line:
//! - `C: text` is sent by the client (CRLF is added);
//! - `R: bytes` is sent as it is, with `\r`, `\n`, `\0` and `\\` for CR, LF, NUL and `\`
//!   (bare line ends, NULs, a line without its end);
//! - `S: text` must be the server's next line; `{..}` in it matches any text (a queue id, a
//!   date, a UIDVALIDITY);
//! - `X: name` runs the test's step `name` at that point (a delivery while a session idles);
//! - blank lines and lines starting with `#` are skipped.
//!
//! After the last line the client closes its side, and the server must send nothing more.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use raft_store::Command;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use crate::delivery::Deliverer;
use crate::mail_service::{MailContext, Service};
use crate::store::memory::MemoryBackend;

/// The domain every transcript's accounts are in.
pub const DOMAIN: &str = "example.test";
/// The password of every account the harness makes.
pub const PASSWORD: &str = "correct horse";
/// The server's host name in greetings.
pub const HOSTNAME: &str = "mail.example.test";
/// The client's address as the session sees it.
pub const PEER: &str = "192.0.2.10:40000";

/// How long the server may take for one line before the transcript fails.
const LINE_WAIT: Duration = Duration::from_secs(10);

/// Which session a script talks to. `tls` runs it as if over TLS (implicit TLS, or after
/// STARTTLS); the TLS itself is not part of a transcript.
#[derive(Debug, Clone, Copy)]
pub enum Session {
    Smtp { service: Service, tls: bool },
    Pop3 { tls: bool },
    Imap { tls: bool },
}

impl Session {
    async fn serve(self, context: Arc<MailContext>, stream: DuplexStream) {
        let peer = PEER.parse().expect("a socket address");
        match self {
            Session::Smtp { service, tls } => {
                crate::smtp::serve_stream(context, stream, peer, service, tls).await
            }
            Session::Pop3 { tls } => crate::pop3::serve_stream(context, stream, peer, tls).await,
            Session::Imap { tls } => {
                crate::imap::session::serve_stream(context, stream, peer, tls).await
            }
        }
    }
}

/// A mail context on a fresh in-memory store with the domain `example.test` and the accounts
/// `alice@` and `bob@` (password [`PASSWORD`]), and the store's backend to set up more. Failed
/// logins are answered at once (the protection policy's delay is 0), so scripts do not wait.
pub struct Harness {
    pub backend: Arc<MemoryBackend>,
    pub context: Arc<MailContext>,
}

impl Harness {
    pub fn new() -> Harness {
        let (backend, store) = MemoryBackend::new();
        let mut config = crate::config::parse("", std::path::Path::new("/"))
            .expect("the empty configuration is valid")
            .config;
        config.hostname = HOSTNAME.into();
        let deliverer = Deliverer::start(store.backend());
        let mut context = MailContext::new(store, deliverer, &config);
        // Connect-time and per-message DNS checks would ask real resolvers.
        context.inbound_checks = None;
        let harness = Harness {
            backend,
            context: Arc::new(context),
        };
        harness.apply(Command::SetProtectionPolicy(raft_store::ProtectionPolicy {
            login_failure_delay_ms: 0,
            ..Default::default()
        }));
        harness.apply(Command::AddDomain {
            name: DOMAIN.into(),
            at: 1,
        });
        for user in ["alice", "bob"] {
            harness.add_account(&format!("{user}@{DOMAIN}"));
        }
        harness
    }

    /// Applies a command, which must not be refused.
    pub fn apply(&self, command: Command) {
        let shown = command.to_string();
        let result = self.backend.apply(command);
        assert!(
            !matches!(result, raft_store::CommandResult::Rejected(_)),
            "{shown}: {result:?}"
        );
    }

    pub fn add_account(&self, address: &str) {
        self.apply(Command::AddAccount {
            address: address.into(),
            password_hash: password_hash().into(),
            quota_mb: 0,
            at: 2,
        });
    }

    /// Delivers `message` to the INBOX of `account` as an SMTP delivery would (the blob stored,
    /// its summary made, one `Deliver` entry), with the internal date `date` (Unix seconds).
    pub fn deliver(&self, account: &str, message: &str, date: i64) {
        let data = message.as_bytes().to_vec();
        let summary = raft_store::summary::summarize(&data);
        let size = data.len() as u64;
        let hash = self.backend.put_blob(data);
        self.apply(Command::Deliver {
            deliveries: vec![raft_store::Delivery {
                queue_id: format!("transcript-{}", hex::encode(&hash[..8])),
                blob: hash,
                size,
                replicas: vec![1],
                missing: Vec::new(),
                recipients: vec![account.into()],
                internal_date: date,
                summary,
                outbound: None,
            }],
        });
    }

    /// Plays `script` against `session`, run on the server end of a fresh pipe.
    pub async fn play(&self, session: Session, script: &str) {
        self.play_with(session, script, |step| {
            panic!("the script names no step {step:?}")
        })
        .await;
    }

    /// Plays `script`, calling `step` for each `X:` line.
    pub async fn play_with(&self, session: Session, script: &str, mut step: impl FnMut(&str)) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let session = tokio::spawn(session.serve(self.context.clone(), server));
        let (read, mut write) = tokio::io::split(client);
        let mut read = BufReader::new(read);
        let mut seen = String::new();
        for (number, line) in script.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("script line {}", number + 1);
            if let Some(sent) = line.strip_prefix("C:") {
                let sent = sent.strip_prefix(' ').unwrap_or(sent);
                seen.push_str(&format!("C: {}\n", shortened(sent)));
                if let Err(err) = write.write_all(format!("{sent}\r\n").as_bytes()).await {
                    closed_early(&at, err, &mut read, &seen).await;
                }
            } else if let Some(name) = line.strip_prefix("X:") {
                seen.push_str(&format!("X: {}\n", name.trim()));
                step(name.trim());
            } else if let Some(raw) = line.strip_prefix("R:") {
                let raw = unescape(raw.strip_prefix(' ').unwrap_or(raw));
                seen.push_str(&format!("R: {:?}\n", String::from_utf8_lossy(&raw)));
                if let Err(err) = write.write_all(&raw).await {
                    closed_early(&at, err, &mut read, &seen).await;
                }
            } else if let Some(expected) = line.strip_prefix("S:") {
                let expected = expected.strip_prefix(' ').unwrap_or(expected);
                let mut got = String::new();
                match tokio::time::timeout(LINE_WAIT, read.read_line(&mut got)).await {
                    Ok(Ok(0)) => panic!("{at}: the server closed, expected {expected:?}\n{seen}"),
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => panic!("{at}: reading: {err}\n{seen}"),
                    Err(_) => {
                        panic!("{at}: no line from the server, expected {expected:?}\n{seen}")
                    }
                }
                let got = got
                    .strip_suffix("\r\n")
                    .unwrap_or_else(|| panic!("{at}: {got:?} does not end in CRLF\n{seen}"));
                seen.push_str(&format!("S: {}\n", shortened(got)));
                assert!(
                    matches(expected, got),
                    "{at}: expected {expected:?}, got {got:?}\n{seen}"
                );
            } else {
                panic!("{at}: not a transcript line: {line:?}");
            }
        }
        // End of the client's data (the duplex sees EOF only on shutdown: the read half still
        // holds the stream).
        let _ = write.shutdown().await;
        drop(write);
        let mut rest = String::new();
        let _ = tokio::time::timeout(LINE_WAIT, read.read_to_string(&mut rest)).await;
        assert!(
            rest.is_empty(),
            "the server sent more than the script says:\n{rest}\nafter:\n{seen}"
        );
        tokio::time::timeout(LINE_WAIT, session)
            .await
            .expect("the session ends when the client closes")
            .expect("the session does not panic");
    }
}

/// A line as the failure report shows it: long ones cut.
fn shortened(line: &str) -> String {
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}... ({} bytes)", &line[..at], line.len()),
        None => line.to_owned(),
    }
}

/// The bytes of an `R:` line.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            other => panic!("unknown escape \\{other:?} in an R: line"),
        }
    }
    out
}

/// Fails a transcript whose server closed while the client still had lines to send, with
/// what the server said last.
async fn closed_early<R: tokio::io::AsyncRead + Unpin>(
    at: &str,
    err: std::io::Error,
    read: &mut R,
    seen: &str,
) -> ! {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(LINE_WAIT, read.read_to_end(&mut rest)).await;
    panic!(
        "{at}: the server closed ({err}) after sending {:?}\n{seen}",
        String::from_utf8_lossy(&rest)
    );
}

/// Whether `got` is `expected`, where each `{..}` in `expected` stands for any text.
fn matches(expected: &str, got: &str) -> bool {
    let mut parts = expected.split("{..}");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = got.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// One argon2 hash of [`PASSWORD`], made once per test binary.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::PasswordHasher;
        use argon2::password_hash::SaltString;
        let salt = SaltString::from_b64("dHJhbnNjcmlwdHNhbHQ").expect("a valid salt");
        argon2::Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &salt)
            .expect("hashing a password")
            .to_string()
    })
}

#[test]
fn raw_lines_unescape_line_ends_and_nul() {
    assert_eq!(unescape(r"a\r\nb\n\0\\"), b"a\r\nb\n\0\\");
}

#[test]
fn placeholders_match_any_text_and_nothing_else_differs() {
    assert!(matches(
        "250 2.0.0 Ok: queued as {..}",
        "250 2.0.0 Ok: queued as 7f3a"
    ));
    assert!(matches("* {..} EXISTS", "* 3 EXISTS"));
    assert!(matches("a {..} b {..}", "a 1 b 2"));
    assert!(matches("exact", "exact"));
    assert!(!matches("exact", "exactly"));
    assert!(!matches("* {..} EXISTS", "* 3 RECENT"));
    assert!(!matches("{..} x", "y"));
}
