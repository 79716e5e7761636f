//! What the benchmark programs share: filler text for generated messages, the Date header,
//! the median and percentiles of a round's figures, `/proc/loadavg`, a results table, and a
//! blocking SMTP client whose every read has a deadline.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rand::Rng;

/// Words the generated message bodies are made of.
pub const WORDS: [&str; 24] = [
    "cluster", "mail", "quorum", "replica", "witness", "leader", "follower", "term", "commit",
    "snapshot", "mailbox", "message", "queue", "fsync", "latency", "router", "relay", "domain",
    "header", "body", "envelope", "session", "greeting", "accept",
];

/// Exactly `width` characters of random words.
pub fn push_words(text: &mut String, width: usize, leading_dot: bool, rng: &mut impl Rng) {
    let start = text.len();
    if leading_dot && width > 0 {
        text.push('.');
    }
    while text.len() - start < width {
        if text.len() > start && !text.ends_with('.') {
            text.push(' ');
        }
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    text.truncate(start + width);
    // A cut may end the line in a space, which some servers strip.
    if text.ends_with(' ') {
        text.pop();
        text.push('s');
    }
}

/// `Sun, 01 Nov 2026 07:49:42 +0000`.
pub fn rfc5322_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian, years starting in March).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// Nearest-rank percentile; 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The 1, 5 and 15 minute load averages, comma-separated.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",")
}

/// Prints `rows` under `header`, each column right-aligned to its widest cell.
pub fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:>width$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(header));
    for row in rows {
        println!("{}", line(row));
    }
}

/// Seconds since the Unix epoch, as the outbound lab's sinks stamp their records.
pub fn epoch_secs(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Body lines are at most this long, leaving room for dot-stuffing within 78 characters.
const LINE_WIDTH: usize = 76;

/// An RFC 5322 message as it goes on the wire after DATA (CRLF line ends, dot-stuffed, without
/// the final dot): `headers` in order, then a body of random words that makes the message
/// `size` bytes long before stuffing (or just the headers when they are longer), with a line
/// starting with a dot every 25 lines.
pub fn wire_message(headers: &[(&str, &str)], size: usize, rng: &mut impl Rng) -> Vec<u8> {
    let mut text = String::with_capacity(size + 64);
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    let mut n_line = 0usize;
    loop {
        let remaining = size.saturating_sub(text.len());
        if remaining < 2 {
            break;
        }
        // Room for this line's text; never leave 1 or 2 bytes, which no later line could fill
        // exactly, unless this is the last line.
        let room = remaining - 2;
        let width = if room <= LINE_WIDTH {
            room
        } else if room < LINE_WIDTH + 3 {
            LINE_WIDTH - 3
        } else {
            LINE_WIDTH
        };
        push_words(&mut text, width, n_line % 25 == 13, rng);
        text.push_str("\r\n");
        n_line += 1;
    }
    let mut wire = Vec::with_capacity(text.len() + n_line / 20 + 8);
    for line in text.split_inclusive("\r\n") {
        if line.starts_with('.') {
            wire.push(b'.');
        }
        wire.extend_from_slice(line.as_bytes());
    }
    wire
}

/// Standard base64 with padding (for AUTH PLAIN).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

const MAX_REPLY_LINE: usize = 4096;
const MAX_REPLY_LINES: usize = 64;
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One SMTP reply: its code and its lines' text joined with " / ".
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A blocking SMTP client session without pipelining: one command, one reply, each reply due
/// within the session's reply timeout.
pub struct SmtpClient {
    stream: TcpStream,
    /// Bytes read past the last complete reply line.
    pending: Vec<u8>,
    reply_timeout: Duration,
}

impl SmtpClient {
    /// Connects (within `connect_timeout`) and reads the 220 greeting (within `reply_timeout`).
    pub fn connect(
        addr: SocketAddr,
        connect_timeout: Duration,
        reply_timeout: Duration,
    ) -> Result<SmtpClient> {
        let stream = TcpStream::connect_timeout(&addr, connect_timeout)
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        stream
            .set_write_timeout(Some(reply_timeout))
            .context("set the write timeout")?;
        let mut client = SmtpClient {
            stream,
            pending: Vec::new(),
            reply_timeout,
        };
        let greeting = client.read_reply(Instant::now() + reply_timeout, "greeting")?;
        if greeting.code != 220 {
            bail!("greeting from {addr}: {} {}", greeting.code, greeting.text);
        }
        Ok(client)
    }

    /// EHLO; fails unless it is answered 250.
    pub fn ehlo(&mut self, name: &str) -> Result<Reply> {
        self.command(&format!("EHLO {name}"), 2, "EHLO")
    }

    /// AUTH PLAIN with the credentials as the initial response.
    pub fn auth_plain(&mut self, user: &str, password: &str) -> Result<()> {
        let token = base64(format!("\0{user}\0{password}").as_bytes());
        self.command(&format!("AUTH PLAIN {token}"), 2, "AUTH")?;
        Ok(())
    }

    /// MAIL, RCPT, DATA, `message` (already dot-stuffed, see [`wire_message`]) and the final
    /// dot; fails unless every reply has the expected class.
    pub fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<()> {
        self.command(&format!("MAIL FROM:<{from}>"), 2, "MAIL")?;
        self.command(&format!("RCPT TO:<{to}>"), 2, "RCPT")?;
        self.command("DATA", 3, "DATA")?;
        self.stream.write_all(message).context("send the message")?;
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            self.stream
                .write_all(b"\r\n")
                .context("end the last line")?;
        }
        self.stream
            .write_all(b".\r\n")
            .context("send the final dot")?;
        let reply = self.read_reply(Instant::now() + self.reply_timeout, "end of data")?;
        if reply.code / 100 != 2 {
            bail!("end of data: {} {}", reply.code, reply.text);
        }
        Ok(())
    }

    /// Sends `line` and fails unless the reply's class is `class` (2 for 2xx, 3 for 3xx).
    pub fn command(&mut self, line: &str, class: u16, what: &str) -> Result<Reply> {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .with_context(|| format!("send {what}"))?;
        let reply = self.read_reply(Instant::now() + self.reply_timeout, what)?;
        if reply.code / 100 != class {
            bail!("{what}: {} {}", reply.code, reply.text);
        }
        Ok(reply)
    }

    /// QUIT, best effort: the work is done.
    pub fn quit(mut self) {
        if self.stream.write_all(b"QUIT\r\n").is_ok() {
            let _ = self.read_reply(Instant::now() + QUIT_TIMEOUT, "QUIT");
        }
    }

    /// Reads a possibly multi-line reply whose last line must arrive before `deadline`.
    fn read_reply(&mut self, deadline: Instant, what: &str) -> Result<Reply> {
        let mut text = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let line = self.read_line(deadline, what)?;
            let code = line
                .get(..3)
                .filter(|code| code.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|code| code.parse::<u16>().ok())
                .with_context(|| format!("{what}: malformed reply line {line:?}"))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            text.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                return Ok(Reply {
                    code,
                    text: text.join(" / "),
                });
            }
        }
        bail!("{what}: reply longer than {MAX_REPLY_LINES} lines")
    }

    fn read_line(&mut self, deadline: Instant, what: &str) -> Result<String> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
            }
            if self.pending.len() > MAX_REPLY_LINE {
                bail!("{what}: reply line longer than {MAX_REPLY_LINE} bytes");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("{what}: no reply within {:?}", self.reply_timeout);
            }
            self.stream
                .set_read_timeout(Some(left))
                .context("set the read timeout")?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => bail!("{what}: the server closed the connection"),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    bail!("{what}: no reply within {:?}", self.reply_timeout);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err).with_context(|| format!("{what}: read the reply")),
            }
        }
    }
}

/// `CTL --config CONFIG ARGS` with its output in `dir` (`ctl.out`, `ctl.err`), killed after
/// `timeout`; its stdout, or an error with its stderr.
pub fn run_ctl(
    ctl: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
    timeout: Duration,
) -> Result<String> {
    use std::process::{Command, Stdio};
    let stdout_path = dir.join("ctl.out");
    let stderr_path = dir.join("ctl.err");
    let mut child = Command::new(ctl)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).context("create ctl.out")?)
        .stderr(std::fs::File::create(&stderr_path).context("create ctl.err")?)
        .spawn()
        .with_context(|| format!("run mclusterctl {}", args.join(" ")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("mclusterctl {} took over {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "mclusterctl {} failed ({status}): {}",
            args.join(" "),
            fs::read_to_string(&stderr_path).unwrap_or_default().trim()
        );
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn wire_messages_have_the_size_asked_for_before_stuffing() {
        let mut rng = rand::rng();
        let wire = wire_message(&[("Message-ID", "<a@b.test>")], 10_240, &mut rng);
        let text = String::from_utf8(wire).expect("ascii");
        let mut unstuffed = 0;
        for line in text.split_inclusive("\r\n") {
            assert!(line.ends_with("\r\n") && line.len() <= 80, "{line:?}");
            unstuffed += line.len() - usize::from(line.starts_with(".."));
        }
        assert_eq!(unstuffed, 10_240);
        assert!(text.starts_with("Message-ID: <a@b.test>\r\n\r\n"));
    }
}
