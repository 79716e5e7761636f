//! The POP3 server (RFC 1939 with CAPA, UIDL, TOP, USER/PASS, STLS and SASL PLAIN; 995 is
//! implicit TLS). A session sees the INBOX as it was at login; deletions take effect at QUIT as
//! one `Expunge` entry through Raft. Two sessions on one mailbox need no lock: an expunge of a
//! message that is already gone does nothing.

pub mod command;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transcripts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use raft_store::{INBOX, MailPolicy, Message};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::line_reader::{self, Line};
use crate::mail_service::{
    Goodbye, Greeting, LoginRefused, MailContext, Service, TlsConnection, serve_connection,
};
use crate::pop3::command::{Command, ParseError};
use crate::sasl::{self, SaslError};

/// RFC 2449 4: command lines are at most 255 octets.
const MAX_COMMAND_LINE: usize = 255;

pub async fn serve(
    context: Arc<MailContext>,
    stream: TcpStream,
    peer: SocketAddr,
    service: Service,
) {
    let plain = async |stream: TcpStream| {
        let mut session = Session::new(context.clone(), peer, false);
        let mut reader = BufReader::new(stream);
        (session.run(&mut reader, true).await == End::StartTls).then(|| reader.into_inner())
    };
    let secure = async |tls: TlsConnection, greeting| {
        Session::new(context.clone(), peer, true)
            .run(&mut BufReader::new(tls), greeting == Greeting::Send)
            .await;
    };
    serve_connection(&context, stream, peer, service, plain, secure).await;
}

/// For the transcript tests (`crate::transcript`): a session on an open stream.
#[cfg(test)]
pub(crate) async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    context: Arc<MailContext>,
    stream: S,
    peer: SocketAddr,
    tls: bool,
) {
    Session::new(context, peer, tls)
        .run(&mut BufReader::new(stream), true)
        .await;
}

#[derive(PartialEq, Eq)]
enum End {
    Closed,
    StartTls,
}

/// The mailbox as this session sees it.
struct Maildrop {
    account: String,
    uidvalidity: u32,
    messages: Vec<Message>,
    deleted: Vec<bool>,
}

struct Session {
    context: Arc<MailContext>,
    peer: SocketAddr,
    tls: bool,
    /// The name given by USER, waiting for PASS.
    user: Option<String>,
    maildrop: Option<Maildrop>,
    errors: u32,
    /// The mail policy as the session began.
    policy: MailPolicy,
    /// The next message's bytes, being read while the client takes the current one (clients
    /// RETR one message after the other): its index and the local read.
    read_ahead: Option<(usize, ReadAhead)>,
}

type ReadAhead = tokio::task::JoinHandle<std::io::Result<Vec<u8>>>;

impl Session {
    fn new(context: Arc<MailContext>, peer: SocketAddr, tls: bool) -> Session {
        Session {
            policy: context.store.state().mail_policy().unwrap_or_default(),
            context,
            peer,
            tls,
            user: None,
            maildrop: None,
            errors: 0,
            read_ahead: None,
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        greet: bool,
    ) -> End {
        let idle = Duration::from_secs(self.policy.pop3_idle_timeout_secs);
        if greet {
            let greeting = format!("+OK {} POP3 mcluster ready", self.context.hostname);
            if send(reader, &greeting).await.is_err() {
                return End::Closed;
            }
        }
        let mut line = Vec::new();
        loop {
            let read = tokio::select! {
                read = tokio::time::timeout(
                    idle,
                    line_reader::read_line(reader, MAX_COMMAND_LINE, &mut line),
                ) => read,
                goodbye = self.context.closing() => {
                    // Like an autologout, deletions are not applied.
                    let line = match goodbye {
                        Goodbye::Stopping => "-ERR [SYS/TEMP] server shutting down, try again in a moment",
                        Goodbye::Moving => "-ERR [SYS/TEMP] this address is moving to another cluster node, reconnect now",
                    };
                    let _ = send(reader, line).await;
                    let _ = reader.get_mut().shutdown().await;
                    return End::Closed;
                }
            };
            let reply = match read {
                Err(_) => {
                    // RFC 1939 3: an autologout does not enter UPDATE; deletions are dropped.
                    let _ = send(reader, "-ERR autologout: idle for too long").await;
                    return End::Closed;
                }
                Ok(Err(_)) | Ok(Ok(Line::Eof)) => return End::Closed,
                Ok(Ok(Line::TooLong)) => Reply::Err("line too long".into()),
                Ok(Ok(Line::Complete { .. })) => match command::parse(&line) {
                    Ok(command) => match self.handle(command, reader).await {
                        Step::Reply(reply) => reply,
                        Step::Quit(reply) => {
                            let _ = send_reply(reader, reply).await;
                            return End::Closed;
                        }
                        Step::StartTls => {
                            if send(reader, "+OK begin TLS negotiation").await.is_err() {
                                return End::Closed;
                            }
                            return End::StartTls;
                        }
                    },
                    Err(ParseError::UnknownCommand) => Reply::Err("unknown command".into()),
                    Err(ParseError::Syntax(why)) => Reply::Err(why.into()),
                },
            };
            if matches!(reply, Reply::Err(_)) {
                self.errors += 1;
            }
            if send_reply(reader, reply).await.is_err() {
                return End::Closed;
            }
            if self.errors >= self.policy.max_errors {
                let _ = send(reader, "-ERR too many errors, closing connection").await;
                return End::Closed;
            }
        }
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        command: Command,
        reader: &mut BufReader<S>,
    ) -> Step {
        let auth_allowed = self.tls || self.policy.auth_without_tls;
        if self.maildrop.is_none() {
            return match command {
                Command::Capa => Step::Reply(self.capabilities(auth_allowed)),
                Command::Quit => Step::Quit(Reply::Ok("bye".into())),
                Command::Noop => Step::Reply(Reply::Err("not logged in".into())),
                Command::Stls if self.tls => Step::Reply(Reply::Err("TLS already active".into())),
                Command::Stls if self.context.tls.acceptor().is_none() => {
                    Step::Reply(Reply::Err("TLS not available".into()))
                }
                Command::Stls => Step::StartTls,
                Command::User(_) | Command::Pass(_) | Command::Auth { .. } if !auth_allowed => {
                    Step::Reply(Reply::Err(
                        "[AUTH] log in after STLS: credentials are not sent in clear".into(),
                    ))
                }
                Command::User(name) => {
                    self.user = Some(name);
                    Step::Reply(Reply::Ok("send PASS".into()))
                }
                Command::Pass(password) => match self.user.take() {
                    None => Step::Reply(Reply::Err("USER first".into())),
                    Some(user) => Step::Reply(self.login(&user, &password).await),
                },
                Command::Auth {
                    mechanism: None, ..
                } => Step::Reply(Reply::Multi(
                    "mechanisms follow".into(),
                    vec!["PLAIN".into()],
                )),
                Command::Auth {
                    mechanism: Some(mechanism),
                    initial,
                } => Step::Reply(self.auth(&mechanism, initial, reader).await),
                _ => Step::Reply(Reply::Err("not logged in".into())),
            };
        }
        let maildrop = self.maildrop.as_mut().expect("checked above");
        match command {
            Command::Capa => Step::Reply(self.capabilities(auth_allowed)),
            Command::Stat => {
                let (n, bytes) = maildrop
                    .live()
                    .fold((0, 0), |(n, b), (_, m)| (n + 1, b + m.size));
                Step::Reply(Reply::Ok(format!("{n} {bytes}")))
            }
            Command::List(None) => {
                let lines = maildrop
                    .live()
                    .map(|(i, m)| format!("{} {}", i + 1, m.size))
                    .collect();
                Step::Reply(Reply::Multi("scan listing follows".into(), lines))
            }
            Command::List(Some(n)) => Step::Reply(match maildrop.get(n) {
                Ok(m) => Reply::Ok(format!("{n} {}", m.size)),
                Err(e) => Reply::Err(e.into()),
            }),
            Command::Uidl(None) => {
                let validity = maildrop.uidvalidity;
                let lines = maildrop
                    .live()
                    .map(|(i, m)| format!("{} {validity}.{}", i + 1, m.uid))
                    .collect();
                Step::Reply(Reply::Multi("unique-id listing follows".into(), lines))
            }
            Command::Uidl(Some(n)) => {
                let validity = maildrop.uidvalidity;
                Step::Reply(match maildrop.get(n) {
                    Ok(m) => Reply::Ok(format!("{n} {validity}.{}", m.uid)),
                    Err(e) => Reply::Err(e.into()),
                })
            }
            Command::Retr(n) => Step::Reply(self.retrieve(n, None).await),
            Command::Top { msg, lines } => Step::Reply(self.retrieve(msg, Some(lines)).await),
            Command::Dele(n) => Step::Reply(match maildrop.get(n) {
                Ok(_) => {
                    maildrop.deleted[n as usize - 1] = true;
                    Reply::Ok(format!("message {n} deleted"))
                }
                Err(e) => Reply::Err(e.into()),
            }),
            Command::Rset => {
                maildrop.deleted.iter_mut().for_each(|d| *d = false);
                Step::Reply(Reply::Ok("maildrop has been reset".into()))
            }
            Command::Noop => Step::Reply(Reply::Ok(String::new())),
            Command::Quit => Step::Quit(self.update().await),
            Command::Stls => Step::Reply(Reply::Err("STLS only before login".into())),
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                Step::Reply(Reply::Err("already logged in".into()))
            }
        }
    }

    fn capabilities(&self, auth_allowed: bool) -> Reply {
        let mut caps = vec!["TOP".to_owned(), "UIDL".into(), "RESP-CODES".into()];
        caps.push("AUTH-RESP-CODE".into());
        caps.push("PIPELINING".into());
        if auth_allowed {
            caps.push("USER".into());
            caps.push("SASL PLAIN".into());
        }
        if !self.tls && self.maildrop.is_none() && self.context.tls.acceptor().is_some() {
            caps.push("STLS".into());
        }
        caps.push("IMPLEMENTATION mcluster".into());
        Reply::Multi("capability list follows".into(), caps)
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        reader: &mut BufReader<S>,
    ) -> Reply {
        if mechanism != "PLAIN" {
            return Reply::Err("unsupported SASL mechanism".into());
        }
        let response = match initial {
            Some(initial) if initial == "=" => String::new(),
            Some(initial) => initial,
            None => {
                if send(reader, "+ ").await.is_err() {
                    return Reply::Err("connection lost".into());
                }
                let mut line = Vec::new();
                match line_reader::read_line(reader, 4096, &mut line).await {
                    Ok(Line::Complete { .. }) => String::from_utf8_lossy(&line).into_owned(),
                    _ => return Reply::Err("authentication aborted".into()),
                }
            }
        };
        match sasl::decode_plain(&response) {
            Err(SaslError::Cancelled) => Reply::Err("authentication cancelled".into()),
            Err(_) => Reply::Err("malformed SASL response".into()),
            Ok(credentials) => {
                if !credentials.authzid.is_empty()
                    && !credentials
                        .authzid
                        .eq_ignore_ascii_case(&credentials.authcid)
                {
                    tokio::time::sleep(self.context.login_failure_delay()).await;
                    return Reply::Err("[AUTH] authentication failed".into());
                }
                self.login(&credentials.authcid, &credentials.password)
                    .await
            }
        }
    }

    async fn login(&mut self, user: &str, password: &str) -> Reply {
        let account = match self
            .context
            .authenticate(user, password, self.peer.ip())
            .await
        {
            Ok(account) => account,
            Err(LoginRefused::Invalid) => {
                tracing::info!(peer = %self.peer, user, "pop3 authentication failed");
                return Reply::Err("[AUTH] authentication failed".into());
            }
            Err(LoginRefused::Locked) => {
                return Reply::Err(
                    "[SYS/TEMP] too many failed logins: logging in to this account from your \
                     address is blocked for a while; try again later"
                        .into(),
                );
            }
        };
        // The maildrop must include every message acknowledged anywhere before this login.
        if let Err(err) = self.context.store.linearize().await {
            tracing::warn!(error = %err, "pop3 login: cannot reach the leader");
            return Reply::Err("[SYS/TEMP] mailbox temporarily unavailable".into());
        }
        let reader = &self.context.store.state();
        let (mailbox, messages) = match (
            reader.mailbox(&account.address, INBOX),
            reader.messages(&account.address, INBOX),
        ) {
            (Ok(Some(mailbox)), Ok(messages)) => (mailbox, messages),
            _ => return Reply::Err("[SYS/TEMP] mailbox temporarily unavailable".into()),
        };
        tracing::info!(peer = %self.peer, user = %account.address, messages = messages.len(), "pop3 login");
        let n = messages.len();
        self.maildrop = Some(Maildrop {
            account: account.address,
            uidvalidity: mailbox.uidvalidity,
            messages,
            deleted: vec![false; n],
        });
        Reply::Ok(format!("logged in, {n} messages"))
    }

    async fn retrieve(&mut self, n: u32, top: Option<u32>) -> Reply {
        let maildrop = self.maildrop.as_ref().expect("only called after login");
        let message = match maildrop.get(n) {
            Ok(m) => m.clone(),
            Err(e) => return Reply::Err(e.into()),
        };
        let index = n as usize - 1;
        let ahead = match self.read_ahead.take() {
            Some((i, read)) if i == index => read.await.ok().and_then(Result::ok),
            Some((_, read)) => {
                read.abort();
                None
            }
            None => None,
        };
        if top.is_none() {
            self.read_next_after(index);
        }
        let read = match ahead {
            Some(data) => Ok(data),
            // Not read ahead, or not on this node's disk: the full path (local, else a replica).
            None => self.context.store.read_blob(&message.blob).await,
        };
        match read {
            Ok(data) => {
                let body = match top {
                    None => data,
                    Some(lines) => top_of(&data, lines),
                };
                Reply::Body(format!("{} octets", message.size), body)
            }
            Err(err) => {
                tracing::warn!(error = %err, "pop3: message unavailable");
                Reply::Err("[SYS/TEMP] message temporarily unavailable".into())
            }
        }
    }

    /// Starts reading the first message after `index` not marked deleted from the local disk.
    fn read_next_after(&mut self, index: usize) {
        let maildrop = self.maildrop.as_ref().expect("only called after login");
        let Some((next, message)) = maildrop.live().find(|(i, _)| *i > index) else {
            return;
        };
        let store = self.context.store.clone();
        let hash = message.blob;
        let read = tokio::task::spawn_blocking(move || store.read_local_blob(&hash));
        self.read_ahead = Some((next, read));
    }

    /// The UPDATE state: removes the messages marked deleted, through Raft.
    async fn update(&mut self) -> Reply {
        let maildrop = self.maildrop.take().expect("only called after login");
        let uids: Vec<u32> = maildrop
            .messages
            .iter()
            .zip(&maildrop.deleted)
            .filter(|(_, deleted)| **deleted)
            .map(|(m, _)| m.uid)
            .collect();
        if uids.is_empty() {
            return Reply::Ok("bye".into());
        }
        let n = uids.len();
        let command = raft_store::Command::Expunge {
            account: maildrop.account.clone(),
            mailbox: INBOX.into(),
            uids,
        };
        match self.context.store.write(command).await {
            Ok(_) => {
                tracing::info!(user = %maildrop.account, deleted = n, "pop3 deletions committed");
                Reply::Ok(format!("bye, {n} messages deleted"))
            }
            Err(err) => {
                tracing::warn!(error = %err, "pop3: deletions did not commit");
                Reply::Err("[SYS/TEMP] some deleted messages not removed".into())
            }
        }
    }
}

impl Maildrop {
    /// Messages not marked deleted, with their 0-based position.
    fn live(&self) -> impl Iterator<Item = (usize, &Message)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    fn get(&self, n: u32) -> Result<&Message, &'static str> {
        let i = (n as usize).checked_sub(1).ok_or("no such message")?;
        match self.messages.get(i) {
            None => Err("no such message"),
            Some(_) if self.deleted[i] => Err("message is deleted"),
            Some(m) => Ok(m),
        }
    }
}

/// The header section, the empty line, and the first `lines` lines of the body.
fn top_of(data: &[u8], lines: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_body = false;
    let mut body_lines = 0;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if in_body {
            if body_lines == lines {
                break;
            }
            body_lines += 1;
        } else if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
        out.extend_from_slice(line);
    }
    out
}

enum Step {
    Reply(Reply),
    Quit(Reply),
    StartTls,
}

enum Reply {
    Ok(String),
    Err(String),
    /// +OK, then lines, then the terminating dot.
    Multi(String, Vec<String>),
    /// +OK, then a message byte-stuffed, then the terminating dot.
    Body(String, Vec<u8>),
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
) -> std::io::Result<()> {
    // One write per reply: a client (or a TLS proxy) that reads the greeting in one go must
    // find the whole line, CRLF included.
    let mut out = Vec::with_capacity(line.len() + 2);
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
    let stream = stream.get_mut();
    stream.write_all(&out).await?;
    stream.flush().await
}

async fn send_reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    reply: Reply,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    match reply {
        Reply::Ok(text) if text.is_empty() => out.extend_from_slice(b"+OK\r\n"),
        Reply::Ok(text) => out.extend_from_slice(format!("+OK {text}\r\n").as_bytes()),
        Reply::Err(text) => out.extend_from_slice(format!("-ERR {text}\r\n").as_bytes()),
        Reply::Multi(text, lines) => {
            out.extend_from_slice(format!("+OK {text}\r\n").as_bytes());
            for line in lines {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
        }
        Reply::Body(text, body) => {
            out.reserve(body.len() + 64);
            out.extend_from_slice(format!("+OK {text}\r\n").as_bytes());
            stuff(&body, &mut out);
            out.extend_from_slice(b".\r\n");
        }
    }
    let stream = stream.get_mut();
    stream.write_all(&out).await?;
    stream.flush().await
}

/// Byte-stuffs a message for a multi-line response: a leading "." is doubled and every line
/// ends in CRLF (a final line without one gets it).
fn stuff(body: &[u8], out: &mut Vec<u8>) {
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
}
