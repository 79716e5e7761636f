//! A blocking SMTP client whose every read has a deadline, for the scenarios, the background
//! load and the benchmarks, and the base64 its AUTH PLAIN needs.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

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

    /// EHLO, or HELO if the server refuses EHLO.
    pub fn hello(&mut self, name: &str) -> Result<()> {
        match self.ehlo(name) {
            Ok(_) => Ok(()),
            Err(_) => self.command(&format!("HELO {name}"), 2, "HELO").map(drop),
        }
    }

    /// MAIL, RCPT, DATA, `message` (already dot-stuffed) and the final dot; fails unless every
    /// reply has the expected class. Returns the time from sending the final dot to its reply:
    /// what accepting the message took the server.
    pub fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<Duration> {
        self.command(&format!("MAIL FROM:<{from}>"), 2, "MAIL")?;
        self.command(&format!("RCPT TO:<{to}>"), 2, "RCPT")?;
        self.command("DATA", 3, "DATA")?;
        self.stream.write_all(message).context("send the message")?;
        if !message.is_empty() && !message.ends_with(b"\r\n") {
            self.stream
                .write_all(b"\r\n")
                .context("end the last line")?;
        }
        let sent = Instant::now();
        self.stream
            .write_all(b".\r\n")
            .context("send the final dot")?;
        let reply = self.read_reply(sent + self.reply_timeout, "end of data")?;
        if reply.code / 100 != 2 {
            bail!("end of data: {} {}", reply.code, reply.text);
        }
        Ok(sent.elapsed())
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
}
