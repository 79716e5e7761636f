//! The SMTP client that makes one delivery attempt of one message to one MX host (RFC 5321),
//! and reports an outcome per recipient in the queue's terms (`raft_store::AttemptOutcome`).
//! The protocol is written here on tokio's `TcpStream` and tokio-rustls; the pure parts (reply
//! parsing, EHLO keywords, enhanced status codes, dot-stuffing) are plain functions tested
//! without sockets.
//!
//! Choices a reader would otherwise have to guess:
//! - Addresses are tried in order. Anything that goes wrong before the first RCPT is answered
//!   (no connection, a greeting or EHLO that is not 2xx, a failed STARTTLS, a 4xx to MAIL, a
//!   timeout or a dropped connection) moves on to the next address, as RFC 5321 section 5.1 asks
//!   of a failure at the connection stage. When no address gets further, every recipient is
//!   deferred with the last address's error, and [`Delivery::try_next_host`] tells the caller it
//!   may try the next MX host. A 5xx greeting is treated the same way (as Postfix's
//!   `smtp_skip_5xx_greeting` does): it speaks for that server, not for the recipient.
//! - A 5xx to MAIL or to DATA fails every recipient; a 4xx to DATA or after the final dot defers
//!   every recipient that RCPT accepted. RCPT replies are per recipient.
//! - A connection that breaks (or times out) after the final dot was sent but before its reply
//!   came defers every accepted recipient. The remote side may have taken the message, so the
//!   retry can deliver a duplicate (RFC 1047); RFC 5321 section 4.5.3.2.6 keeps that window
//!   short by asking servers to answer the dot quickly, and nothing on the client side closes it.
//! - TLS: `Opportunistic` uses STARTTLS when the server offers it and does not verify the
//!   certificate (an MTA talking to an MX has nothing to verify it against without DANE or
//!   MTA-STS). A failed handshake counts as a connection-stage failure: this attempt does not fall
//!   back to plain text on the same address. `Required` defers when STARTTLS is not offered or
//!   fails (for a smarthost); it still does not verify the certificate.
//! - AUTH (PLAIN when offered, else LOGIN) is used only when credentials are given, and only over
//!   TLS unless `Credentials::allow_plaintext` says otherwise; a server that offers neither, or
//!   refuses the credentials, defers the whole message (a configuration problem is not the
//!   recipient's fault, so it must not bounce).
//! - SIZE=n is sent when the server offers SIZE, and a message over the server's stated limit
//!   fails with 5.3.4 without being sent. BODY=8BITMIME is sent for a message with 8-bit bytes
//!   when the server offers 8BITMIME; when it does not, the message is sent anyway, as most MTAs
//!   do (downgrading to 7 bit would mean rewriting MIME parts and breaking DKIM signatures).
//! - The message goes out with CRLF line ends: a bare CR or LF becomes CRLF (so a bare LF cannot
//!   end the data early at a lenient server, the "SMTP smuggling" trick), lines starting with '.'
//!   are dot-stuffed, and a CRLF is added before the final dot if the message lacks one.
//! - PIPELINING is not used: one command, one reply. Slower on high-latency links, but every
//!   reply is matched to its command without bookkeeping.
//! - Without a [`ConnectionPool`] one connection carries one message. With one, a session whose
//!   transaction ended cleanly (the final dot answered, whatever the answer; or no DATA, then
//!   RSET answered 250) is parked instead of quitting, and the next attempt for the same
//!   destination (host name, address, port, TLS policy, EHLO name, credentials: see
//!   `pool::Destination`) takes it and starts at MAIL. A parked session is probed with RSET
//!   first; a probe that fails drops it silently and the attempt connects afresh, and so does a
//!   reused session that fails before any RCPT is answered (a server may refuse a further
//!   message with 421 at MAIL): a stale cached connection never defers a message. A session is
//!   not parked after any I/O error, timeout, malformed or 421 reply or unread bytes, nor once it
//!   has carried the pool's message limit, nor when its destination already has its share of
//!   idle sessions; then it quits as it would without a pool. Sessions idle past the pool's
//!   timeout are closed with QUIT (best effort, in a spawned task with the QUIT deadline) when the
//!   pool next looks at them; dropping the pool closes the sockets of those still idle.
//! - Every read and write has a deadline from [`Timeouts`] (RFC 5321 section 4.5.3.2 defaults);
//!   QUIT is sent after every session that got as far as a greeting and is not parked, with a
//!   short deadline. The RSET probe of a parked session has the EHLO deadline, capped at
//!   [`PROBE_LIMIT`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use raft_store::{AttemptError, AttemptOutcome};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::outbound::client::pool::{Destination, IdleSet, Limits};

mod pool;
#[cfg(test)]
mod tests;

/// The longest diagnostic kept for the queue and the DSN.
pub const MAX_DIAGNOSTIC: usize = 1024;
/// The longest reply line accepted (RFC 5321 allows 512 octets; servers exceed it in practice).
const MAX_REPLY_LINE: usize = 4096;
/// The most lines a multi-line reply may have, so a hostile server cannot grow our buffer forever.
const MAX_REPLY_LINES: usize = 256;
/// Data is written in blocks of this size, each with its own deadline.
const DATA_BLOCK: usize = 64 * 1024;
/// The longest a parked session gets to answer the RSET that checks it is still open; a server
/// that slow is better replaced by a new connection.
pub const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Deadlines for each step, as RFC 5321 section 4.5.3.2 recommends. Tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Waiting for the 220 greeting.
    pub greeting: Duration,
    /// EHLO, HELO, STARTTLS (with its handshake) and AUTH, which RFC 5321 leaves open.
    pub command: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    /// Waiting for the 354 after DATA.
    pub data_init: Duration,
    /// Writing each block of the message.
    pub data_block: Duration,
    /// Waiting for the reply to the final dot.
    pub data_done: Duration,
    /// Writing QUIT and waiting for its reply; nothing depends on it, so it is short.
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_done: Duration::from_secs(600),
            quit: Duration::from_secs(10),
        }
    }
}

/// When to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Never (tests, or a relay on a trusted link).
    Disabled,
    /// When the server offers it, without verifying the certificate.
    Opportunistic,
    /// Always; defer when the server does not offer it or the handshake fails.
    Required,
}

/// AUTH credentials for a smarthost.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Send them over a connection without TLS too (a relay on loopback or a trusted link).
    pub allow_plaintext: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// One delivery attempt: one message, its recipients, one host with its addresses.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The MX host's name, reported as the remote and sent as the TLS server name.
    pub host: &'a str,
    /// Tried in order until one gets past the connection stage.
    pub addresses: &'a [IpAddr],
    /// 25 in production.
    pub port: u16,
    /// Our name, for EHLO/HELO.
    pub helo: &'a str,
    /// The envelope sender; empty for the null reverse path `<>`.
    pub sender: &'a str,
    pub recipients: &'a [String],
    /// The message as stored (header and body).
    pub message: &'a [u8],
    pub tls: TlsPolicy,
    pub credentials: Option<&'a Credentials>,
    pub timeouts: Timeouts,
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// One outcome per recipient of the attempt, in the attempt's order.
    pub outcomes: Vec<(String, AttemptOutcome)>,
    /// The address whose session decided the outcomes, if any got past the connection stage.
    pub address: Option<SocketAddr>,
    /// No address got past the connection stage (every outcome is deferred): the caller may
    /// try the message's next MX host now.
    pub try_next_host: bool,
    /// The session used TLS.
    pub tls: bool,
    /// The session that decided the outcomes was taken from the [`ConnectionPool`], not opened
    /// for this attempt.
    pub reused: bool,
}

/// An SMTP reply: its code and its lines' text (without the code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// The enhanced status code (RFC 3463) at the start of the first line, when its class
    /// agrees with the reply code's.
    pub fn enhanced_status(&self) -> Option<String> {
        let first = self.lines.first()?;
        let word = first.split_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        let ok = parts.next().is_none()
            && matches!(class, "2" | "4" | "5")
            && u16::from(class.as_bytes()[0] - b'0') == self.class()
            && digits(subject, 3)
            && digits(detail, 3);
        ok.then(|| word.to_owned())
    }

    /// The reply as one line: "550 5.1.1 no such user; second line".
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join("; "))
    }
}

/// What is wrong with bytes that should hold a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
    #[error("reply longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
}

/// Parses one complete reply from the start of `buf`: the reply and how many bytes it took, or
/// None when more bytes are needed. Lines end in CRLF (a bare LF is tolerated).
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut at = 0;
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let Some(end) = buf[at..].iter().position(|&b| b == b'\n') else {
            if buf.len() - at > MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong);
            }
            return Ok(None);
        };
        if end > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let raw = &buf[at..at + end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        at += end + 1;
        let line = String::from_utf8_lossy(raw);
        let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
        let digits = line.get(..3).ok_or_else(malformed)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&raw[0]) {
            return Err(malformed());
        }
        let this_code: u16 = digits.parse().map_err(|_| malformed())?;
        if code.is_some_and(|c| c != this_code) {
            return Err(malformed());
        }
        code = Some(this_code);
        let (last, text) = match raw.get(3) {
            None => (true, ""),
            Some(b' ') => (true, line.get(4..).unwrap_or("")),
            Some(b'-') => (false, line.get(4..).unwrap_or("")),
            Some(_) => return Err(malformed()),
        };
        lines.push(text.to_owned());
        if last {
            return Ok(Some((
                Reply {
                    code: this_code,
                    lines,
                },
                at,
            )));
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

/// What an EHLO reply says the server supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub starttls: bool,
    pub eight_bit_mime: bool,
    /// SIZE was offered; the limit, when the server gave one other than 0.
    pub size: Option<Option<u64>>,
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Extensions {
    /// The keywords of an EHLO reply (its lines after the first).
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut extensions = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => extensions.starttls = true,
                "8BITMIME" => extensions.eight_bit_mime = true,
                "SIZE" => {
                    let limit = words.next().and_then(|n| n.parse::<u64>().ok());
                    extensions.size = Some(limit.filter(|&n| n > 0));
                }
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => extensions.auth_plain = true,
                            "LOGIN" => extensions.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        extensions
    }
}

/// The message as it goes after DATA: CRLF line ends, dot-stuffed, ending in CRLF "." CRLF.
pub fn data_bytes(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        match b {
            b'\r' | b'\n' => {
                // CRLF, a bare CR and a bare LF all end the line with CRLF.
                if b == b'\r' && message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            _ => {
                if line_start && b == b'.' {
                    out.push(b'.');
                }
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Whether the message has bytes outside 7-bit ASCII.
pub fn is_8bit(message: &[u8]) -> bool {
    message.iter().any(|&b| b >= 0x80)
}

/// The AUTH PLAIN initial response (RFC 4616), base64.
pub fn auth_plain(user: &str, password: &str) -> String {
    let mut raw = Vec::with_capacity(user.len() + password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.as_bytes());
    BASE64.encode(raw)
}

/// `text` cut to at most [`MAX_DIAGNOSTIC`] bytes, at a character boundary.
pub fn cap_diagnostic(text: &str) -> String {
    if text.len() <= MAX_DIAGNOSTIC {
        return text.to_owned();
    }
    let mut end = MAX_DIAGNOSTIC - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// The status for a reply: its enhanced code, or one derived from its class.
pub fn reply_status(reply: &Reply) -> String {
    reply
        .enhanced_status()
        .unwrap_or_else(|| match reply.class() {
            2 => "2.0.0".to_owned(),
            5 => "5.0.0".to_owned(),
            _ => "4.0.0".to_owned(),
        })
}

/// `status` with its class made temporary: a connection-stage failure never bounces.
fn temporary(status: &str) -> String {
    match status.strip_prefix('5') {
        Some(rest) => format!("4{rest}"),
        None => status.to_owned(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why a session ended before its recipients got their answers.
#[derive(Debug)]
struct Failure {
    status: String,
    diagnostic: String,
    /// Whether the server answered at all (the queue's `remote`).
    answered: bool,
}

impl Failure {
    fn local(status: &str, diagnostic: String) -> Failure {
        Failure {
            status: status.to_owned(),
            diagnostic,
            answered: true,
        }
    }

    fn reply(reply: &Reply, command: &str) -> Failure {
        Failure {
            status: reply_status(reply),
            diagnostic: format!("{} (in reply to {command})", reply.text()),
            answered: true,
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One SMTP connection: the stream, the bytes read but not yet parsed, and what is known of its
/// state, which decides whether it may be parked in a [`ConnectionPool`].
struct Session {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    peer: SocketAddr,
    tls: bool,
    /// What the last EHLO offered (all false after HELO).
    extensions: Extensions,
    /// A read or write failed or timed out, or a reply was malformed: the stream's state is
    /// unknown.
    broken: bool,
    /// The server said 421: it is closing the connection.
    closing: bool,
    /// MAIL was accepted and neither the final dot nor RSET has been answered since.
    in_transaction: bool,
    /// Transactions started on this connection.
    n_messages: u32,
    /// The QUIT deadline of the attempt that last used it, for closing it when it expires.
    quit_limit: Duration,
}

impl Session {
    fn new(stream: TcpStream, peer: SocketAddr, quit_limit: Duration) -> Session {
        Session {
            stream: Box::new(stream),
            buf: Vec::new(),
            peer,
            tls: false,
            extensions: Extensions::default(),
            broken: false,
            closing: false,
            in_transaction: false,
            n_messages: 0,
            quit_limit,
        }
    }

    /// Whether the dialogue is in step: every command answered, nothing unread, no 421.
    fn in_step(&self) -> bool {
        !self.broken && !self.closing && self.buf.is_empty()
    }

    async fn write(&mut self, bytes: &[u8], limit: Duration, what: &str) -> Result<(), Failure> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        let result = tokio::time::timeout(limit, write).await;
        if !matches!(result, Ok(Ok(()))) {
            self.broken = true;
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Failure::local(
                "4.4.2",
                format!("connection to {} broke sending {what}: {err}", self.peer),
            )),
            Err(_) => Err(Failure::local(
                "4.4.2",
                format!("timeout after {limit:?} sending {what} to {}", self.peer),
            )),
        }
    }

    async fn read_reply(&mut self, limit: Duration, what: &str) -> Result<Reply, Failure> {
        let reply = self.read_reply_inner(limit, what).await;
        match &reply {
            Ok(reply) if reply.code == 421 => self.closing = true,
            Ok(_) => {}
            Err(_) => self.broken = true,
        }
        reply
    }

    async fn read_reply_inner(&mut self, limit: Duration, what: &str) -> Result<Reply, Failure> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(err) => {
                    return Err(Failure::local(
                        "4.5.0",
                        format!("{} sent a bad reply to {what}: {err}", self.peer),
                    ));
                }
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Ok(Ok(0)) => {
                    return Err(Failure::local(
                        "4.4.2",
                        format!(
                            "{} closed the connection before replying to {what}",
                            self.peer
                        ),
                    ));
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(err)) => {
                    return Err(Failure::local(
                        "4.4.2",
                        format!(
                            "connection to {} broke waiting for the reply to {what}: {err}",
                            self.peer
                        ),
                    ));
                }
                Err(_) => {
                    return Err(Failure::local(
                        "4.4.2",
                        format!(
                            "timeout after {limit:?} waiting for the reply to {what} from {}",
                            self.peer
                        ),
                    ));
                }
            }
        }
    }

    /// Sends `line` (CRLF added) and reads its reply. `shown` names the command in diagnostics
    /// (and keeps credentials out of them).
    async fn command(
        &mut self,
        line: &str,
        shown: &str,
        limit: Duration,
    ) -> Result<Reply, Failure> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, limit, shown).await?;
        self.read_reply(limit, shown).await
    }

    async fn quit(&mut self, limit: Duration) {
        let quit = self.command("QUIT", "QUIT", limit).await;
        if let Err(failure) = quit {
            tracing::debug!(peer = %self.peer, diagnostic = %failure.diagnostic, "quit failed");
        }
        let _ = tokio::time::timeout(limit, self.stream.shutdown()).await;
    }

    /// RSET, which ends a transaction and shows the server is still there: whether it got a 2xx
    /// and left the dialogue in step.
    async fn reset(&mut self, limit: Duration) -> bool {
        match self.command("RSET", "RSET", limit).await {
            Ok(reply) if reply.class() == 2 && self.in_step() => {
                self.in_transaction = false;
                true
            }
            Ok(reply) => {
                tracing::debug!(peer = %self.peer, reply = %reply.text(), "rset refused");
                false
            }
            Err(failure) => {
                tracing::debug!(peer = %self.peer, diagnostic = %failure.diagnostic, "rset failed");
                false
            }
        }
    }
}

/// Accepts any certificate, as opportunistic TLS between MTAs does; signatures are still checked,
/// so the handshake itself is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The outcome of one session: either every recipient got an answer (`Decided`), or the session
/// failed at the connection stage and the next address may do better (`Retry`).
enum SessionEnd {
    Decided(Vec<(String, AttemptOutcome)>),
    Retry(Failure),
}

/// Idle SMTP sessions kept open for the next message to the same destination, as Postfix's
/// connection cache does; see the module doc. Share one (by `&` or `Arc`) among the attempts
/// of one tokio runtime: its sockets belong to the runtime that opened them.
pub struct ConnectionPool {
    idle: Mutex<IdleSet<Session>>,
}

impl ConnectionPool {
    /// A pool that keeps a session idle for at most `idle_timeout`, at most
    /// `max_idle_per_destination` idle sessions per destination, and uses a connection for at
    /// most `max_messages_per_connection` messages. A zero in any of them turns reuse off.
    pub fn new(
        idle_timeout: Duration,
        max_idle_per_destination: usize,
        max_messages_per_connection: u32,
    ) -> ConnectionPool {
        ConnectionPool {
            idle: Mutex::new(IdleSet::new(Limits {
                idle_timeout,
                max_idle_per_destination,
                max_messages_per_connection,
            })),
        }
    }

    /// How many sessions are idle in the pool.
    pub fn n_idle(&self) -> usize {
        self.lock().len()
    }

    /// Closes, with QUIT, every session idle past the timeout. The pool does this by itself
    /// whenever it is used; a caller may also run it now and then so idle sessions do not wait
    /// for the next message to be closed.
    pub async fn close_expired(&self) {
        let expired = self.lock().take_expired(Instant::now());
        close_all(expired).await;
    }

    /// Closes, with QUIT, every idle session (at shutdown; dropping the pool only closes the
    /// sockets).
    pub async fn close_idle(&self) {
        let idle = self.lock().take_all();
        close_all(idle).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleSet<Session>> {
        // The lock is never held across an await or a call that can panic halfway.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle session for `destination` that answered RSET within `limit` (capped at
    /// [`PROBE_LIMIT`]), if there is one. One that does not answer is dropped without QUIT.
    async fn take(&self, destination: &Destination, limit: Duration) -> Option<Session> {
        let (session, expired) = {
            let mut idle = self.lock();
            let now = Instant::now();
            (idle.take(destination, now), idle.take_expired(now))
        };
        close_in_background(expired);
        let mut session = session?;
        if session.reset(limit.min(PROBE_LIMIT)).await {
            Some(session)
        } else {
            tracing::debug!(peer = %session.peer, "dropped a stale cached connection");
            None
        }
    }

    /// Parks `session` after a transaction on it ended, or quits it when it may not be reused.
    async fn release(&self, destination: Destination, mut session: Session, probe_limit: Duration) {
        let mut keep = session.in_step() && self.lock().keeps(session.n_messages);
        if keep && session.in_transaction {
            // A transaction without a final dot (nobody accepted, DATA refused) is ended first,
            // so a parked session is always between transactions.
            keep = session.reset(probe_limit.min(PROBE_LIMIT)).await;
        }
        if !keep {
            session.quit(session.quit_limit).await;
            return;
        }
        let (refused, expired) = {
            let mut idle = self.lock();
            let now = Instant::now();
            // Expired sessions go first, so they do not take the room of a live one.
            let expired = idle.take_expired(now);
            let n_messages = session.n_messages;
            (
                idle.put(destination, session, n_messages, now).err(),
                expired,
            )
        };
        close_in_background(expired);
        if let Some(mut session) = refused {
            session.quit(session.quit_limit).await;
        }
    }
}

impl Default for ConnectionPool {
    /// Five seconds idle, eight idle sessions per destination, 100 messages per connection.
    fn default() -> Self {
        ConnectionPool::new(Duration::from_secs(5), 8, 100)
    }
}

impl fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle = self.lock();
        f.debug_struct("ConnectionPool")
            .field("limits", &idle.limits())
            .field("n_idle", &idle.len())
            .finish()
    }
}

/// QUITs `sessions` concurrently, each with its own deadline.
async fn close_all(sessions: Vec<Session>) {
    let mut tasks = tokio::task::JoinSet::new();
    for mut session in sessions {
        tasks.spawn(async move { session.quit(session.quit_limit).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// QUITs `sessions` without making the caller wait (each QUIT still has its deadline).
fn close_in_background(sessions: Vec<Session>) {
    if !sessions.is_empty() {
        tokio::spawn(close_all(sessions));
    }
}

/// Makes one delivery attempt; see the module doc for how replies map to outcomes and how
/// `pool` reuses sessions. Without a pool, every session ends with QUIT.
pub async fn deliver(attempt: &Attempt<'_>, pool: Option<&ConnectionPool>) -> Delivery {
    let t = attempt.timeouts;
    let mut last = Failure {
        status: "4.4.1".to_owned(),
        diagnostic: format!("{} has no addresses to try", attempt.host),
        answered: false,
    };
    for &ip in attempt.addresses {
        let peer = SocketAddr::new(ip, attempt.port);
        let pooled = pool.map(|pool| (pool, Destination::new(attempt, peer)));
        if let Some((pool, destination)) = &pooled
            && let Some(mut session) = pool.take(destination, t.command).await
        {
            match transaction(&mut session, attempt, t).await {
                SessionEnd::Decided(outcomes) => {
                    let tls = session.tls;
                    pool.release(destination.clone(), session, t.command).await;
                    return Delivery {
                        outcomes,
                        address: Some(peer),
                        try_next_host: false,
                        tls,
                        reused: true,
                    };
                }
                SessionEnd::Retry(failure) => {
                    // Nothing was sent for any recipient: a new connection decides instead.
                    tracing::debug!(host = attempt.host, %peer, diagnostic = %failure.diagnostic, "cached connection failed before any recipient was answered");
                    session.quit(t.quit).await;
                }
            }
        }
        let connect = tokio::time::timeout(t.connect, TcpStream::connect(peer));
        let stream = match connect.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(host = attempt.host, %peer, error = %err, "connect failed");
                last = Failure {
                    status: "4.4.1".to_owned(),
                    diagnostic: format!("connect to {} ({peer}) failed: {err}", attempt.host),
                    answered: false,
                };
                continue;
            }
            Err(_) => {
                last = Failure {
                    status: "4.4.1".to_owned(),
                    diagnostic: format!(
                        "connect to {} ({peer}) timed out after {:?}",
                        attempt.host, t.connect
                    ),
                    answered: false,
                };
                continue;
            }
        };
        let mut session = Session::new(stream, peer, t.quit);
        match run(&mut session, attempt).await {
            SessionEnd::Decided(outcomes) => {
                let tls = session.tls;
                match pooled {
                    Some((pool, destination)) => {
                        pool.release(destination, session, t.command).await;
                    }
                    None => session.quit(t.quit).await,
                }
                return Delivery {
                    outcomes,
                    address: Some(peer),
                    try_next_host: false,
                    tls,
                    reused: false,
                };
            }
            SessionEnd::Retry(failure) => {
                session.quit(t.quit).await;
                tracing::debug!(host = attempt.host, %peer, diagnostic = %failure.diagnostic, "session failed before any recipient was answered");
                last = failure;
            }
        }
    }
    let error = AttemptError {
        status: temporary(&last.status),
        diagnostic: cap_diagnostic(&last.diagnostic),
        remote: last.answered.then(|| attempt.host.to_owned()),
        at: now(),
    };
    Delivery {
        outcomes: attempt
            .recipients
            .iter()
            .map(|r| (r.clone(), AttemptOutcome::Deferred(error.clone())))
            .collect(),
        address: None,
        try_next_host: true,
        tls: false,
        reused: false,
    }
}

/// The whole SMTP dialogue on one connection, up to (not including) QUIT.
async fn run(session: &mut Session, attempt: &Attempt<'_>) -> SessionEnd {
    match connection_stage(session, attempt).await {
        Ok(extensions) => {
            session.extensions = extensions;
            transaction(session, attempt, attempt.timeouts).await
        }
        Err(failure) => SessionEnd::Retry(failure),
    }
}

/// Greeting, EHLO (or HELO), STARTTLS and AUTH: whatever fails here is the server's problem,
/// not the recipients'.
async fn connection_stage(
    session: &mut Session,
    attempt: &Attempt<'_>,
) -> Result<Extensions, Failure> {
    let t = attempt.timeouts;
    let greeting = session.read_reply(t.greeting, "the greeting").await?;
    if greeting.class() != 2 {
        return Err(Failure::reply(&greeting, "the greeting"));
    }
    let mut extensions = hello(session, attempt).await?;
    if attempt.tls != TlsPolicy::Disabled && extensions.starttls {
        let reply = session.command("STARTTLS", "STARTTLS", t.command).await?;
        if reply.class() != 2 {
            return Err(Failure::reply(&reply, "STARTTLS"));
        }
        if !session.buf.is_empty() {
            // Bytes sent before the handshake must not be read as if they came over TLS.
            return Err(Failure::local(
                "4.5.0",
                format!("{} sent data after its STARTTLS reply", session.peer),
            ));
        }
        let connector = tls_connector()
            .map_err(|err| Failure::local("4.7.0", format!("cannot configure TLS: {err}")))?;
        let name = ServerName::try_from(attempt.host.to_owned())
            .unwrap_or_else(|_| ServerName::IpAddress(session.peer.ip().into()));
        let plain = std::mem::replace(
            &mut session.stream,
            Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
        );
        let handshake = tokio::time::timeout(t.command, connector.connect(name, plain)).await;
        match handshake {
            Ok(Ok(tls)) => {
                session.stream = Box::new(tls);
                session.tls = true;
            }
            Ok(Err(err)) => {
                return Err(Failure::local(
                    "4.7.0",
                    format!("TLS handshake with {} failed: {err}", session.peer),
                ));
            }
            Err(_) => {
                return Err(Failure::local(
                    "4.7.0",
                    format!("TLS handshake with {} timed out", session.peer),
                ));
            }
        }
        extensions = hello(session, attempt).await?;
    } else if attempt.tls == TlsPolicy::Required {
        return Err(Failure::local(
            "4.7.0",
            format!(
                "{} does not offer STARTTLS, which is required",
                attempt.host
            ),
        ));
    }
    if let Some(credentials) = attempt.credentials {
        authenticate(session, &extensions, credentials, t.command).await?;
    }
    Ok(extensions)
}

/// EHLO, or HELO when EHLO gets a 5xx; returns what the server offers.
async fn hello(session: &mut Session, attempt: &Attempt<'_>) -> Result<Extensions, Failure> {
    let t = attempt.timeouts;
    let ehlo = session
        .command(&format!("EHLO {}", attempt.helo), "EHLO", t.command)
        .await?;
    match ehlo.class() {
        2 => Ok(Extensions::from_ehlo(&ehlo)),
        5 => {
            let helo = session
                .command(&format!("HELO {}", attempt.helo), "HELO", t.command)
                .await?;
            if helo.class() == 2 {
                Ok(Extensions::default())
            } else {
                Err(Failure::reply(&helo, "HELO"))
            }
        }
        _ => Err(Failure::reply(&ehlo, "EHLO")),
    }
}

async fn authenticate(
    session: &mut Session,
    extensions: &Extensions,
    credentials: &Credentials,
    limit: Duration,
) -> Result<(), Failure> {
    if !session.tls && !credentials.allow_plaintext {
        return Err(Failure::local(
            "4.7.0",
            format!("not sending credentials to {} without TLS", session.peer),
        ));
    }
    let reply = if extensions.auth_plain {
        let line = format!(
            "AUTH PLAIN {}",
            auth_plain(&credentials.user, &credentials.password)
        );
        session.command(&line, "AUTH PLAIN", limit).await?
    } else if extensions.auth_login {
        let reply = session.command("AUTH LOGIN", "AUTH LOGIN", limit).await?;
        if reply.code != 334 {
            return Err(Failure::reply(&reply, "AUTH LOGIN"));
        }
        let user = BASE64.encode(credentials.user.as_bytes());
        let reply = session.command(&user, "AUTH LOGIN user", limit).await?;
        if reply.code != 334 {
            return Err(Failure::reply(&reply, "AUTH LOGIN user"));
        }
        let password = BASE64.encode(credentials.password.as_bytes());
        session
            .command(&password, "AUTH LOGIN password", limit)
            .await?
    } else {
        return Err(Failure::local(
            "4.7.0",
            format!("{} offers neither AUTH PLAIN nor AUTH LOGIN", session.peer),
        ));
    };
    if reply.code == 235 {
        Ok(())
    } else {
        Err(Failure::reply(&reply, "AUTH"))
    }
}

/// MAIL, RCPT per recipient, DATA and the message, with what the session's EHLO offered.
async fn transaction(session: &mut Session, attempt: &Attempt<'_>, t: Timeouts) -> SessionEnd {
    session.n_messages = session.n_messages.saturating_add(1);
    session.quit_limit = t.quit;
    let extensions = session.extensions.clone();
    let remote = Some(attempt.host.to_owned());
    let error = |status: String, diagnostic: &str| AttemptError {
        status,
        diagnostic: cap_diagnostic(diagnostic),
        remote: remote.clone(),
        at: now(),
    };
    let all = |outcome: AttemptOutcome| {
        SessionEnd::Decided(
            attempt
                .recipients
                .iter()
                .map(|r| (r.clone(), outcome.clone()))
                .collect(),
        )
    };

    let data = data_bytes(attempt.message);
    // The size the server will store: the data without the stuffing's final ".\r\n".
    let size = data.len() - 3;
    let mut mail = format!("MAIL FROM:<{}>", attempt.sender);
    if let Some(limit) = extensions.size {
        if let Some(limit) = limit
            && size as u64 > limit
        {
            let diagnostic = format!(
                "message of {size} bytes exceeds {}'s limit of {limit} bytes",
                attempt.host
            );
            return all(AttemptOutcome::Failed(error("5.3.4".into(), &diagnostic)));
        }
        mail.push_str(&format!(" SIZE={size}"));
    }
    if extensions.eight_bit_mime && is_8bit(attempt.message) {
        mail.push_str(" BODY=8BITMIME");
    }
    let reply = match session.command(&mail, "MAIL FROM", t.mail).await {
        Ok(reply) => reply,
        Err(failure) => return SessionEnd::Retry(failure),
    };
    match reply.class() {
        2 => session.in_transaction = true,
        5 => {
            let failure = Failure::reply(&reply, "MAIL FROM");
            return all(AttemptOutcome::Failed(error(
                failure.status,
                &failure.diagnostic,
            )));
        }
        _ => return SessionEnd::Retry(Failure::reply(&reply, "MAIL FROM")),
    }

    let mut outcomes: Vec<(String, Option<AttemptOutcome>)> = Vec::new();
    for recipient in attempt.recipients {
        let line = format!("RCPT TO:<{recipient}>");
        let outcome = match session.command(&line, "RCPT TO", t.rcpt).await {
            Ok(reply) => {
                let failure = Failure::reply(&reply, "RCPT TO");
                match reply.class() {
                    2 => None,
                    5 => Some(AttemptOutcome::Failed(error(
                        failure.status,
                        &failure.diagnostic,
                    ))),
                    _ => Some(AttemptOutcome::Deferred(error(
                        temporary(&failure.status),
                        &failure.diagnostic,
                    ))),
                }
            }
            Err(failure) => {
                // The connection is gone: this recipient and the rest wait for the next attempt.
                let deferred = AttemptOutcome::Deferred(error(failure.status, &failure.diagnostic));
                outcomes.push((recipient.clone(), Some(deferred.clone())));
                let answered = outcomes.len();
                let rest = attempt.recipients[answered..]
                    .iter()
                    .map(|r| (r.clone(), Some(deferred.clone())));
                outcomes.extend(rest);
                return SessionEnd::Decided(finish(outcomes, &deferred));
            }
        };
        outcomes.push((recipient.clone(), outcome));
    }
    if outcomes.iter().all(|(_, outcome)| outcome.is_some()) {
        // Nobody was accepted: nothing to send.
        return SessionEnd::Decided(finish(outcomes, &AttemptOutcome::Delivered));
    }

    let reply = match session.command("DATA", "DATA", t.data_init).await {
        Ok(reply) => reply,
        Err(failure) => {
            let deferred = AttemptOutcome::Deferred(error(failure.status, &failure.diagnostic));
            return SessionEnd::Decided(finish(outcomes, &deferred));
        }
    };
    if reply.code != 354 {
        let failure = Failure::reply(&reply, "DATA");
        let outcome = if reply.class() == 5 {
            AttemptOutcome::Failed(error(failure.status, &failure.diagnostic))
        } else {
            AttemptOutcome::Deferred(error(temporary(&failure.status), &failure.diagnostic))
        };
        return SessionEnd::Decided(finish(outcomes, &outcome));
    }
    for block in data.chunks(DATA_BLOCK) {
        if let Err(failure) = session.write(block, t.data_block, "the message").await {
            let deferred = AttemptOutcome::Deferred(error(failure.status, &failure.diagnostic));
            return SessionEnd::Decided(finish(outcomes, &deferred));
        }
    }
    // From here a broken connection may hide a delivery: see the module doc on duplicates.
    let outcome = match session.read_reply(t.data_done, "the end of data").await {
        Ok(reply) => {
            session.in_transaction = false;
            let failure = Failure::reply(&reply, "end of data");
            match reply.class() {
                2 => AttemptOutcome::Delivered,
                5 => AttemptOutcome::Failed(error(failure.status, &failure.diagnostic)),
                _ => {
                    AttemptOutcome::Deferred(error(temporary(&failure.status), &failure.diagnostic))
                }
            }
        }
        Err(failure) => AttemptOutcome::Deferred(error(failure.status, &failure.diagnostic)),
    };
    SessionEnd::Decided(finish(outcomes, &outcome))
}

/// Gives every recipient still waiting (accepted at RCPT) `outcome`.
fn finish(
    outcomes: Vec<(String, Option<AttemptOutcome>)>,
    outcome: &AttemptOutcome,
) -> Vec<(String, AttemptOutcome)> {
    outcomes
        .into_iter()
        .map(|(recipient, decided)| (recipient, decided.unwrap_or_else(|| outcome.clone())))
        .collect()
}
