//! Content filters for mail SMTP accepts, run after DATA and before the blob is stored: a spam
//! scorer spoken to over spamd's protocol (SpamAssassin's spamd, rspamd) and a virus scanner
//! over clamd's INSTREAM. Each is off unless configured, bounded by one timeout covering connect
//! and the whole exchange, and fails open (accept, say so in a header) or closed (451) as
//! configured. Each turns its answer into a `Verdict`.
//!
//! The reply parsers (`parse_spamd_reply`, `parse_clamd_reply`) are I/O-free.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::smtp::reply;
use crate::smtp::verdict::{Action, Verdict};

/// The fields each check writes; the message's own copies go.
const SPAM_FIELDS: &[&str] = &["X-Spam-Flag", "X-Spam-Status", "X-Spam-Score"];
const VIRUS_FIELDS: &[&str] = &["X-Virus-Scanned"];

/// Replies longer than this are not from a scanner we understand.
const MAX_REPLY: u64 = 64 * 1024;
/// clamd's INSTREAM chunk size (its StreamMaxLength counts the sum, not the chunk).
const CLAMD_CHUNK: usize = 64 * 1024;

/// Where a scanner listens: `host:port`, or a unix socket path (starting with '/').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(String),
    Unix(PathBuf),
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        if text.starts_with('/') {
            return Ok(Endpoint::Unix(text.into()));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Endpoint::Tcp(text.to_owned()))
            }
            _ => Err(format!(
                "{text:?} is neither host:port nor an absolute unix socket path"
            )),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => f.write_str(addr),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What to do with a message when its scanner cannot be reached or answers nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Accept it unscanned, with a header saying so.
    Accept,
    /// Answer 451 4.7.1: the sender tries again later.
    TempFail,
}

/// What to do with a message the virus scanner finds something in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirusAction {
    /// 554 5.7.1 at the end of DATA.
    Reject,
    /// Accept into each recipient's Junk mailbox, with the finding in a header.
    Junk,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpamdConfig {
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub on_error: OnError,
    /// Score bands (None: that action is off). Tagging prefixes the Subject and adds
    /// X-Spam-Flag.
    pub tag_score: Option<f64>,
    pub junk_score: Option<f64>,
    pub reject_score: Option<f64>,
    pub subject_tag: String,
    /// Larger messages are not scored (spamd's own limit is 500 KB by default).
    pub max_bytes: u64,
    /// Score mail from authenticated senders too.
    pub scan_authenticated: bool,
    /// Sent as spamd's User header (whose preferences apply); empty: not sent.
    pub user: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClamdConfig {
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub on_error: OnError,
    pub action: VirusAction,
}

/// The filters that are on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub spamd: Option<SpamdConfig>,
    pub clamd: Option<ClamdConfig>,
}

crate::counters::counters! {
    /// What the filters did, for /metrics.
    pub struct FilterMetrics {
        spam_scanned => "mcluster_spam_scanned_total",
            "Messages the spam scorer (spamd) scored.";
        /// Messages at or above a spam band (tagged, junked or rejected).
        spam_found => "mcluster_spam_found_total",
            "Scored messages that reached a spam band (tagged, junked or rejected).";
        /// Not scored: larger than `max-bytes`.
        spam_skipped => "mcluster_spam_skipped_total",
            "Messages not scored for spam because they were larger than max-bytes.";
        virus_scanned => "mcluster_virus_scanned_total",
            "Messages the virus scanner (clamd) scanned.";
        virus_found => "mcluster_virus_found_total",
            "Messages the virus scanner found something in.";
        /// Exchanges with either scanner that failed (timeout, refused, bad reply).
        errors => "mcluster_filter_errors_total",
            "Scans that failed (scanner unreachable, timed out, bad reply); on-error decided.";
    }
}

/// Why a scan gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
}

/// A scanner reply we cannot use.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed reply: {0}")]
    Malformed(&'static str),
    /// spamd answered with a non-zero status (EX_USAGE, EX_TEMPFAIL...).
    #[error("spamd status {code} {message}")]
    SpamdStatus { code: u32, message: String },
    /// clamd said ERROR (e.g. "INSTREAM size limit exceeded").
    #[error("clamd error: {0}")]
    ClamdError(String),
}

/// spamd's answer to CHECK or SYMBOLS.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamReport {
    /// spamd's own opinion against its own threshold (we decide with ours).
    pub is_spam: bool,
    pub score: f64,
    pub threshold: f64,
    /// The rules that hit (SYMBOLS only).
    pub symbols: Vec<String>,
}

/// clamd's answer to one INSTREAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    Clean,
    Found(String),
}

/// The SYMBOLS request for `body` (headers; the body follows).
pub fn spamd_request_head(body_len: usize, user: &str) -> Vec<u8> {
    let mut head = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {body_len}\r\n");
    if !user.is_empty() {
        head.push_str(&format!("User: {user}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Parses spamd's whole reply: `SPAMD/1.1 0 EX_OK`, headers with `Spam: True ; 7.3 / 5.0`, an
/// empty line, then (SYMBOLS) the rule names separated by commas.
pub fn parse_spamd_reply(reply: &[u8]) -> Result<SpamReport, ProtocolError> {
    let text = std::str::from_utf8(reply).map_err(|_| ProtocolError::Malformed("not UTF-8"))?;
    let (head, body) = match text.split_once("\r\n\r\n") {
        Some((head, body)) => (head, body),
        None => (text.trim_end_matches("\r\n"), ""),
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut words = status.splitn(3, ' ');
    let protocol = words.next().unwrap_or_default();
    if !protocol.starts_with("SPAMD/") {
        return Err(ProtocolError::Malformed("status line is not SPAMD/x.y"));
    }
    let code: u32 = words
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(ProtocolError::Malformed("no status code"))?;
    let message = words.next().unwrap_or_default().to_owned();
    if code != 0 {
        return Err(ProtocolError::SpamdStatus { code, message });
    }
    let mut report = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ProtocolError::Malformed("header without a colon"));
        };
        if name.trim().eq_ignore_ascii_case("spam") {
            report = Some(parse_spam_header(value)?);
        }
    }
    let mut report = report.ok_or(ProtocolError::Malformed("no Spam header"))?;
    report.symbols = body
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if report
        .symbols
        .iter()
        .any(|s| !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(ProtocolError::Malformed("symbol is not a rule name"));
    }
    Ok(report)
}

/// `True ; 7.3 / 5.0` (spamd also writes `Yes`/`No`).
fn parse_spam_header(value: &str) -> Result<SpamReport, ProtocolError> {
    let (verdict, scores) = value
        .split_once(';')
        .ok_or(ProtocolError::Malformed("Spam header without ';'"))?;
    let is_spam = match verdict.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => true,
        "false" | "no" => false,
        _ => return Err(ProtocolError::Malformed("Spam header is not True or False")),
    };
    let (score, threshold) = scores
        .split_once('/')
        .ok_or(ProtocolError::Malformed("Spam header without '/'"))?;
    let number = |text: &str| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or(ProtocolError::Malformed(
                "Spam header score is not a number",
            ))
    };
    Ok(SpamReport {
        is_spam,
        score: number(score)?,
        threshold: number(threshold)?,
        symbols: Vec::new(),
    })
}

/// Parses clamd's reply to `zINSTREAM` (one line, NUL- or newline-terminated):
/// `stream: OK`, `stream: Eicar-Test-Signature FOUND`, `... ERROR`.
pub fn parse_clamd_reply(reply: &[u8]) -> Result<ScanResult, ProtocolError> {
    let end = reply
        .iter()
        .position(|b| *b == 0 || *b == b'\n')
        .unwrap_or(reply.len());
    let text = std::str::from_utf8(&reply[..end])
        .map_err(|_| ProtocolError::Malformed("not UTF-8"))?
        .trim();
    if let Some(what) = text.strip_suffix(" ERROR") {
        return Err(ProtocolError::ClamdError(what.to_owned()));
    }
    let result = text
        .strip_prefix("stream:")
        .ok_or(ProtocolError::Malformed(
            "reply does not start with 'stream:'",
        ))?
        .trim();
    if result == "OK" {
        return Ok(ScanResult::Clean);
    }
    match result.strip_suffix(" FOUND") {
        Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(ScanResult::Found(name.to_owned()))
        }
        _ => Err(ProtocolError::Malformed("neither OK, FOUND nor ERROR")),
    }
}

impl SpamdConfig {
    /// The lowest configured band, if any.
    fn lowest_band(&self) -> Option<f64> {
        [self.tag_score, self.junk_score, self.reject_score]
            .into_iter()
            .flatten()
            .reduce(f64::min)
    }
}

/// The spam verdict for a score: every band the score reaches applies.
pub fn spam_verdict(config: &SpamdConfig, report: &SpamReport) -> Verdict {
    let reached = |band: Option<f64>| band.is_some_and(|b| report.score >= b);
    let (tag, junk, reject) = (
        reached(config.tag_score),
        reached(config.junk_score),
        reached(config.reject_score),
    );
    let spam = reached(config.lowest_band());
    let required = config.lowest_band().unwrap_or(report.threshold);
    let mut verdict = Verdict::accept();
    verdict.headers.push(format!(
        "X-Spam-Status: {}, score={:.1} required={required:.1} tests={}",
        if spam { "Yes" } else { "No" },
        report.score,
        if report.symbols.is_empty() {
            "none".to_owned()
        } else {
            report.symbols.join(",")
        }
    ));
    verdict
        .headers
        .push(format!("X-Spam-Score: {:.1}", report.score));
    if tag {
        verdict.headers.push("X-Spam-Flag: YES".into());
        verdict.subject_tag = Some(config.subject_tag.clone()).filter(|t| !t.is_empty());
    }
    if junk {
        verdict.action = Action::Junk;
    }
    if reject {
        verdict.action = Action::Reject(reply::SPAM.clone());
    }
    verdict
}

/// The virus verdict for a scan result.
pub fn virus_verdict(config: &ClamdConfig, result: &ScanResult) -> Verdict {
    match result {
        ScanResult::Clean => Verdict::accept().with_header("X-Virus-Scanned: clamd, clean".into()),
        ScanResult::Found(name) => match config.action {
            VirusAction::Reject => Verdict {
                action: Action::Reject(reply::virus(name)),
                ..Verdict::accept()
            },
            VirusAction::Junk => Verdict {
                action: Action::Junk,
                headers: vec![format!("X-Virus-Scanned: clamd, infected ({name})")],
                ..Verdict::accept()
            },
        },
    }
}

/// The verdict when a scanner gave no answer.
fn error_verdict(on_error: OnError, header: &str) -> Verdict {
    match on_error {
        OnError::Accept => {
            Verdict::accept().with_header(format!("{header}: not scanned (scanner unavailable)"))
        }
        OnError::TempFail => Verdict {
            action: Action::TempFail(reply::SCANNER_UNAVAILABLE.clone()),
            ..Verdict::accept()
        },
    }
}

/// Runs the configured filters on `message` (as the client sent it) at once and merges their
/// verdicts. Spam scoring is skipped for allow-listed clients and senders, and for authenticated
/// ones unless `scan-authenticated`; the virus scan always runs.
pub async fn check(
    filters: &Filters,
    metrics: &FilterMetrics,
    message: &[u8],
    authenticated: bool,
    allow_listed: bool,
    queue_id: &str,
) -> Verdict {
    let spam = async {
        let config = filters.spamd.as_ref()?;
        if allow_listed || (authenticated && !config.scan_authenticated) {
            return None;
        }
        if message.len() as u64 > config.max_bytes {
            metrics.spam_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                queue_id,
                size = message.len(),
                "message too large to score for spam"
            );
            return Some(
                Verdict::accept()
                    .with_header(format!(
                        "X-Spam-Status: not scanned (larger than {} bytes)",
                        config.max_bytes
                    ))
                    .owning(SPAM_FIELDS),
            );
        }
        let scan = tokio::time::timeout(config.timeout, spamd_scan(config, message)).await;
        let verdict = match scan.unwrap_or(Err(ScanError::Timeout)) {
            Ok(report) => {
                metrics.spam_scanned.fetch_add(1, Ordering::Relaxed);
                let verdict = spam_verdict(config, &report);
                if config.lowest_band().is_some_and(|b| report.score >= b) {
                    metrics.spam_found.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(queue_id, score = report.score, action = ?verdict.action, "spam scored");
                verdict
            }
            Err(err) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(queue_id, scanner = %config.endpoint, error = %err, on_error = ?config.on_error, "spam scan failed");
                error_verdict(config.on_error, "X-Spam-Status")
            }
        };
        Some(verdict.owning(SPAM_FIELDS))
    };
    let virus = async {
        let config = filters.clamd.as_ref()?;
        let scan = tokio::time::timeout(config.timeout, clamd_scan(config, message)).await;
        let verdict = match scan.unwrap_or(Err(ScanError::Timeout)) {
            Ok(result) => {
                metrics.virus_scanned.fetch_add(1, Ordering::Relaxed);
                if let ScanResult::Found(name) = &result {
                    metrics.virus_found.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(queue_id, virus = %name, action = ?config.action, "virus found");
                }
                virus_verdict(config, &result)
            }
            Err(err) => {
                metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(queue_id, scanner = %config.endpoint, error = %err, on_error = ?config.on_error, "virus scan failed");
                error_verdict(config.on_error, "X-Virus-Scanned")
            }
        };
        Some(verdict.owning(VIRUS_FIELDS))
    };
    let (spam, virus) = tokio::join!(spam, virus);
    let mut verdict = Verdict::accept();
    for one in [virus, spam].into_iter().flatten() {
        verdict.merge(one);
    }
    verdict
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

async fn connect(endpoint: &Endpoint) -> std::io::Result<Pin<Box<dyn Io>>> {
    Ok(match endpoint {
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr.as_str()).await?;
            stream.set_nodelay(true)?;
            Box::pin(stream)
        }
        Endpoint::Unix(path) => Box::pin(tokio::net::UnixStream::connect(path).await?),
    })
}

/// Reads the reply to its end (the scanner closes the connection), at most `MAX_REPLY` bytes.
/// What arrived before a reset still counts: a scanner that answers and closes on a request it
/// did not read to the end makes the kernel reset the connection right after its answer.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return Ok(reply),
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.len() as u64 > MAX_REPLY {
                    return Err(std::io::Error::other("reply too long"));
                }
            }
            Err(_) if !reply.is_empty() => return Ok(reply),
            Err(err) => return Err(err),
        }
    }
}

async fn spamd_scan(config: &SpamdConfig, message: &[u8]) -> Result<SpamReport, ScanError> {
    let mut stream = connect(&config.endpoint).await?;
    stream
        .write_all(&spamd_request_head(message.len(), &config.user))
        .await?;
    stream.write_all(message).await?;
    stream.flush().await?;
    let reply = read_reply(&mut stream).await?;
    Ok(parse_spamd_reply(&reply)?)
}

async fn clamd_scan(config: &ClamdConfig, message: &[u8]) -> Result<ScanResult, ScanError> {
    let stream = connect(&config.endpoint).await?;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = async {
        writer.write_all(b"zINSTREAM\0").await?;
        for chunk in message.chunks(CLAMD_CHUNK) {
            // Chunks are at most 64 KiB, so the length fits.
            writer
                .write_all(&(chunk.len() as u32).to_be_bytes())
                .await?;
            writer.write_all(chunk).await?;
        }
        writer.write_all(&0u32.to_be_bytes()).await?;
        writer.flush().await
    };
    // Read while sending: past its StreamMaxLength clamd answers and closes while we still
    // write, and its answer, not the broken pipe, says what happened.
    let (sent, reply) = tokio::join!(send, read_reply(&mut reader));
    match (sent, reply) {
        (_, Ok(reply)) if !reply.is_empty() => Ok(parse_clamd_reply(&reply)?),
        (Err(err), _) | (Ok(()), Err(err)) => Err(err.into()),
        (Ok(()), Ok(_)) => Err(ProtocolError::Malformed("empty reply").into()),
    }
}

#[cfg(test)]
mod tests;
