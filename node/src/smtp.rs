//! The SMTP server (RFC 5321) for port 25 (mail for local domains), 587 (submission, AUTH
//! required) and 465 (submission over implicit TLS). A message is answered 250 only after its
//! blob is fsync'd here and on the mirror partner and its `Deliver` entry is committed and
//! applied (see `crate::blobs` and `crate::delivery`).
//!
//! Replies are collected and written when the client has nothing more in flight, which is what
//! PIPELINING (RFC 2920) needs.

pub mod command;
pub mod filters;
pub mod inbound_checks;
pub mod reply;
pub mod verdict;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transcripts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use raft_store::summary::MessageSummary;
use raft_store::{Delivery, Filing, Outbound};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::line_reader::{self, Line, RawLine};
use crate::mail_service::{
    Goodbye, Greeting, LoginRefused, MailContext, Service, TlsConnection, serve_connection,
};
use crate::outbound::dkim;
use crate::sasl::{self, SaslError};
use crate::smtp::command::{Address, Command, MailFrom, ParseError, RcptTo, Ret};
use crate::smtp::inbound_checks::{ClientReport, Disposition, Refusal};
use crate::smtp::reply::Reply;
use crate::smtp::verdict::{Action, Verdict};
use crate::store::Resolved;
use crate::store::{StoreMessageError, Stored};

/// Command lines longer than this are refused (RFC 5321 allows 512; extensions add a little).
const MAX_COMMAND_LINE: usize = 2048;
/// RFC 5322 2.1.1: at most 998 characters per line, not counting CRLF.
const MAX_TEXT_LINE: usize = 998;
/// RFC 5321 6.3: more Received headers than this means a mail loop.
const MAX_HOPS: usize = 32;
/// How a session ended.
#[derive(PartialEq, Eq)]
enum End {
    Closed,
    /// STARTTLS accepted: the caller upgrades the connection and starts a new session on it.
    StartTls,
}

pub async fn serve(
    context: Arc<MailContext>,
    stream: TcpStream,
    peer: SocketAddr,
    service: Service,
) {
    let client = client_checks(&context, &stream, peer, service).await;
    let plain = async |stream: TcpStream| {
        let mut session = Session::new(context.clone(), peer, service, false);
        session.client = client.clone();
        let mut reader = BufReader::new(stream);
        // RFC 3207 5: anything the client pipelined after STARTTLS goes with the buffer.
        (session.run_plain(&mut reader).await == End::StartTls).then(|| reader.into_inner())
    };
    let secure = async |tls: TlsConnection, greeting| {
        // RFC 3207 4.2: everything learnt before TLS is forgotten; the client says EHLO
        // again.
        let mut session = Session::new(context.clone(), peer, service, true);
        session.client = client.clone();
        session
            .run(BufReader::new(tls), greeting == Greeting::Send)
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
    service: Service,
    tls: bool,
) {
    Session::new(context, peer, service, tls)
        .run(BufReader::new(stream), true)
        .await;
}

/// The connect-time DNS checks, for a client of the public SMTP listener (before the greeting,
/// which waits for them, postscreen-style). None: no checks on this connection, as on other
/// listeners, for clients in the protection policy's exempt networks (the site's own relays
/// and applications, whose mail would otherwise be judged by SPF against a relay's address) and
/// for clients on the allow list.
async fn client_checks(
    context: &MailContext,
    stream: &TcpStream,
    peer: SocketAddr,
    service: Service,
) -> Option<ClientReport> {
    let checker = context.inbound_checks.as_ref()?;
    if service != Service::Smtp
        || context
            .guard
            .exempt(&context.protection_policy(), peer.ip())
        || context.access.allowed_client(peer.ip())
    {
        return None;
    }
    let local_ip = stream.local_addr().ok()?.ip();
    let limit = inbound_checks::connect_limit(checker.config());
    match tokio::time::timeout(limit, checker.connect(peer.ip(), local_ip)).await {
        Ok(report) => Some(report),
        Err(_) => {
            tracing::warn!(client = %peer.ip(), "connect-time DNS checks timed out; skipped");
            None
        }
    }
}

/// A recipient accepted by RCPT: the address as given and the accounts it delivers to.
struct Recipient {
    accounts: Vec<String>,
}

#[derive(Default)]
struct Transaction {
    from: Option<MailFrom>,
    recipients: Vec<Recipient>,
    /// Recipients in other domains (authenticated senders only), for the outbound queue.
    remote: Vec<String>,
    /// The SPF result of MAIL FROM, for DMARC and the Authentication-Results header.
    spf: Option<mail_auth::SpfOutput>,
    /// The client or the sender is on the allow list: no DNS checks, no spam scoring (the
    /// virus scan still runs).
    allow_listed: bool,
}

struct Session {
    context: Arc<MailContext>,
    peer: SocketAddr,
    service: Service,
    tls: bool,
    helo: Option<String>,
    esmtp: bool,
    /// The authenticated account.
    user: Option<String>,
    tx: Transaction,
    errors: u32,
    out: Vec<u8>,
    /// What the connect-time checks found (port 25 only): MAIL, RCPT and DATA check on it.
    client: Option<ClientReport>,
}

/// The outcome of one command: go on, or stop.
enum Next {
    Continue,
    Quit,
    StartTls,
}

impl Session {
    fn new(context: Arc<MailContext>, peer: SocketAddr, service: Service, tls: bool) -> Session {
        Session {
            context,
            peer,
            service,
            tls,
            helo: None,
            esmtp: false,
            user: None,
            tx: Transaction::default(),
            errors: 0,
            out: Vec::new(),
            client: None,
        }
    }

    fn reply(&mut self, reply: &Reply) {
        self.line(&reply.to_string());
    }

    /// A line as it is: the greeting, EHLO's lines, a SASL challenge, DATA's go-ahead.
    fn line(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn run_plain(&mut self, reader: &mut BufReader<TcpStream>) -> End {
        self.greet();
        self.session_loop(reader).await
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut reader: BufReader<S>,
        greet: bool,
    ) {
        if greet {
            self.greet();
        }
        self.session_loop(&mut reader).await;
    }

    fn greet(&mut self) {
        let host = self.context.hostname.clone();
        self.line(&format!("220 {host} ESMTP mcluster"));
    }

    async fn session_loop<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
    ) -> End {
        let policy = self.context.store.state().mail_policy().unwrap_or_default();
        let idle = Duration::from_secs(policy.smtp_idle_timeout_secs);
        let mut line = Vec::new();
        loop {
            // Replies wait while the client has more pipelined commands buffered.
            if reader.buffer().is_empty() && self.flush(reader.get_mut()).await.is_err() {
                return End::Closed;
            }
            let read = tokio::select! {
                read = tokio::time::timeout(
                    idle,
                    line_reader::read_line(reader, MAX_COMMAND_LINE, &mut line),
                ) => read,
                goodbye = self.context.closing() => {
                    self.reply(match goodbye {
                        Goodbye::Stopping => &reply::SHUTTING_DOWN,
                        Goodbye::Moving => {
                            &reply::MOVING
                        }
                    });
                    let _ = self.flush(reader.get_mut()).await;
                    let _ = reader.get_mut().shutdown().await;
                    return End::Closed;
                }
            };
            let next = match read {
                Err(_) => {
                    self.reply(&reply::IDLE_TIMEOUT);
                    let _ = self.flush(reader.get_mut()).await;
                    return End::Closed;
                }
                Ok(Err(_)) | Ok(Ok(Line::Eof)) => return End::Closed,
                Ok(Ok(Line::TooLong)) => {
                    self.error(&reply::LINE_TOO_LONG);
                    Next::Continue
                }
                Ok(Ok(Line::Complete { .. })) => match command::parse(&line) {
                    Ok(command) => self.handle(command, reader).await,
                    Err(err) => {
                        self.parse_error(&err);
                        Next::Continue
                    }
                },
            };
            match next {
                Next::Continue => {}
                Next::Quit => {
                    let _ = self.flush(reader.get_mut()).await;
                    return End::Closed;
                }
                Next::StartTls => {
                    let _ = self.flush(reader.get_mut()).await;
                    return End::StartTls;
                }
            }
            if self.errors >= policy.max_errors {
                self.reply(&reply::TOO_MANY_ERRORS);
                let _ = self.flush(reader.get_mut()).await;
                tracing::info!(peer = %self.peer, "disconnected after too many errors");
                return End::Closed;
            }
        }
    }

    /// Replies with an error that counts towards the session's error limit.
    fn error(&mut self, reply: &Reply) {
        self.errors += 1;
        self.reply(reply);
    }

    fn parse_error(&mut self, err: &ParseError) {
        let line = match err {
            ParseError::UnknownCommand => reply::UNKNOWN_COMMAND.clone(),
            ParseError::Syntax(why) => reply::syntax_error(why),
            ParseError::BadAddress(why) => reply::bad_address(why),
            ParseError::BadParameter(why) => reply::bad_parameter(why),
        };
        self.error(&line);
    }

    fn auth_allowed(&self, auth_without_tls: bool) -> bool {
        self.tls || auth_without_tls
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        command: Command,
        reader: &mut BufReader<S>,
    ) -> Next {
        let policy = self.context.store.state().mail_policy().unwrap_or_default();
        if let Command::Ehlo(name) | Command::Helo(name) = &command
            && let Some(reply) = self.helo_blocked(name)
        {
            self.error(&reply);
            return Next::Continue;
        }
        match command {
            Command::Ehlo(name) | Command::Helo(name) if name.is_empty() => {
                self.error(&reply::EHLO_SYNTAX);
            }
            Command::Ehlo(name) => {
                self.helo = Some(name.clone());
                self.esmtp = true;
                self.tx = Transaction::default();
                let host = self.context.hostname.clone();
                let mut lines = vec![format!("{host} Hello {name}")];
                lines.push("PIPELINING".into());
                lines.push(format!("SIZE {}", policy.max_message_bytes));
                lines.push("8BITMIME".into());
                lines.push("SMTPUTF8".into());
                lines.push("ENHANCEDSTATUSCODES".into());
                lines.push("DSN".into());
                if !self.tls && self.context.tls.acceptor().is_some() {
                    lines.push("STARTTLS".into());
                }
                if self.auth_allowed(policy.auth_without_tls) {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                let last = lines.len() - 1;
                for (i, line) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    self.line(&format!("250{sep}{line}"));
                }
            }
            Command::Helo(name) => {
                self.helo = Some(name.clone());
                self.esmtp = false;
                self.tx = Transaction::default();
                let host = self.context.hostname.clone();
                self.line(&format!("250 {host}"));
            }
            Command::StartTls => {
                if self.tls {
                    self.error(&reply::TLS_ACTIVE);
                } else if self.context.tls.acceptor().is_none() {
                    self.error(&reply::TLS_UNAVAILABLE);
                } else {
                    self.reply(&reply::START_TLS);
                    return Next::StartTls;
                }
            }
            Command::Auth { mechanism, initial } => {
                self.auth(&mechanism, initial, policy.auth_without_tls, reader)
                    .await;
            }
            Command::Mail(from) => self.mail(from, policy.max_message_bytes).await,
            Command::Rcpt(to) => self.rcpt(to, policy.max_recipients),
            Command::Data => {
                return self.data(reader, policy.max_message_bytes).await;
            }
            Command::Bdat { size, .. } => return self.bdat(size, reader).await,
            Command::Rset => {
                self.tx = Transaction::default();
                self.reply(&reply::OK);
            }
            Command::Noop => self.reply(&reply::OK),
            Command::Help => self.reply(&reply::HELP),
            Command::Vrfy(_) => self.reply(&reply::NO_VRFY),
            Command::Quit => {
                self.reply(&reply::BYE);
                return Next::Quit;
            }
        }
        Next::Continue
    }

    async fn auth<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mechanism: &str,
        initial: Option<String>,
        auth_without_tls: bool,
        reader: &mut BufReader<S>,
    ) {
        if !self.esmtp {
            return self.error(&reply::AUTH_NEEDS_EHLO);
        }
        if self.user.is_some() {
            return self.error(&reply::ALREADY_AUTHENTICATED);
        }
        if self.tx.from.is_some() {
            return self.error(&reply::AUTH_IN_TRANSACTION);
        }
        if !self.auth_allowed(auth_without_tls) {
            return self.error(&reply::ENCRYPTION_REQUIRED);
        }
        let credentials = match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(initial) if initial == "=" => Some(String::new()),
                    Some(initial) => Some(initial),
                    None => self.challenge("", reader).await,
                };
                response.map(|r| sasl::decode_plain(&r).map(|c| (c.authzid, c.authcid, c.password)))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(initial) => Some(initial),
                    None => {
                        self.challenge(&sasl::encode_text("Username:"), reader)
                            .await
                    }
                };
                match user.map(|u| sasl::decode_text(&u)) {
                    None => None,
                    Some(Err(err)) => Some(Err(err)),
                    Some(Ok(user)) => {
                        let password = self
                            .challenge(&sasl::encode_text("Password:"), reader)
                            .await;
                        password.map(|p| sasl::decode_text(&p).map(|p| (String::new(), user, p)))
                    }
                }
            }
            _ => return self.error(&reply::UNKNOWN_MECHANISM),
        };
        let (authzid, login, password) = match credentials {
            None => return, // the connection ended mid-exchange
            Some(Err(SaslError::Cancelled)) => {
                return self.error(&reply::AUTH_CANCELLED);
            }
            Some(Err(_)) => return self.error(&reply::AUTH_MALFORMED),
            Some(Ok(c)) => c,
        };
        let login = login.to_ascii_lowercase();
        if !authzid.is_empty() && authzid.to_ascii_lowercase() != login {
            tokio::time::sleep(self.context.login_failure_delay()).await;
            return self.error(&reply::AUTH_INVALID);
        }
        match self
            .context
            .authenticate(&login, &password, self.peer.ip())
            .await
        {
            Ok(account) => {
                tracing::info!(peer = %self.peer, user = %account.address, "authenticated");
                self.user = Some(account.address);
                self.reply(&reply::AUTH_OK);
            }
            Err(LoginRefused::Invalid) => {
                tracing::info!(peer = %self.peer, user = %login, "authentication failed");
                self.error(&reply::AUTH_INVALID);
            }
            Err(LoginRefused::Locked) => {
                self.error(&reply::LOCKED_OUT);
            }
        }
    }

    /// Sends a 334 challenge and reads the client's one-line answer (None: connection gone).
    async fn challenge<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        text: &str,
        reader: &mut BufReader<S>,
    ) -> Option<String> {
        self.line(&format!("334 {text}"));
        self.flush(reader.get_mut()).await.ok()?;
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(60),
            line_reader::read_line(reader, MAX_COMMAND_LINE, &mut line),
        )
        .await;
        match read {
            Ok(Ok(Line::Complete { .. })) => Some(String::from_utf8_lossy(&line).into_owned()),
            Ok(Ok(Line::TooLong)) => Some(String::new()),
            _ => None,
        }
    }

    async fn mail(&mut self, from: MailFrom, max_message_bytes: u64) {
        if self.helo.is_none() {
            return self.error(&reply::MAIL_NEEDS_HELO);
        }
        if self.tx.from.is_some() {
            return self.error(&reply::NESTED_MAIL);
        }
        if self.service != Service::Smtp && self.user.is_none() {
            return self.error(&reply::AUTH_REQUIRED);
        }
        let esmtp_params = from.size.is_some()
            || from.body.is_some()
            || from.smtputf8
            || from.ret.is_some()
            || from.envid.is_some()
            || from.auth.is_some();
        if esmtp_params && !self.esmtp {
            return self.error(&reply::PARAMETERS_NEED_EHLO);
        }
        // Our users are never refused by the sender lists: only unauthenticated sessions.
        if self.user.is_none()
            && let Some(address) = &from.reverse_path
            && let Some(blocked) = (self.context.access)
                .refuse_sender(self.peer.ip(), &address.normalized().to_lowercase())
        {
            tracing::info!(peer = %self.peer, sender = %address, "sender refused: block list");
            return self.error(&reply::sender_blocked(address, &blocked.reason));
        }
        if let Some(address) = &from.reverse_path
            && address.utf8()
            && !from.smtputf8
        {
            return self.error(&reply::NEEDS_SMTPUTF8);
        }
        if let Some(size) = from.size
            && size > max_message_bytes
        {
            return self.error(&reply::TOO_BIG);
        }
        if let (Some(user), Some(address)) = (&self.user, &from.reverse_path) {
            match self.sender_allowed(user, address) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(peer = %self.peer, user, sender = %address, "sender refused: not the user's address");
                    return self.error(&reply::sender_not_owned(address, user));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "sender lookup failed");
                    return self.reply(&reply::LOOKUP_FAILED);
                }
            }
        }
        let allow_listed = self.context.access.allowed_client(self.peer.ip())
            || from.reverse_path.as_ref().is_some_and(|address| {
                (self.context.access).allowed_sender(&address.normalized().to_lowercase())
            });
        self.tx.allow_listed = allow_listed;
        if let (Some(checker), Some(client), None, false) = (
            &self.context.inbound_checks,
            &self.client,
            &self.user,
            allow_listed,
        ) {
            let sender = from.reverse_path.as_ref().map(|a| a.to_string());
            let helo = self.helo.as_deref().unwrap_or_default();
            match checker
                .mail_from(client, helo, sender.as_deref().unwrap_or_default())
                .await
            {
                Ok(spf) => self.tx.spf = spf,
                Err(refusal) => return self.refuse(refusal),
            }
        }
        self.tx.from = Some(from);
        self.reply(&reply::SENDER_OK);
    }

    fn rcpt(&mut self, to: RcptTo, max_recipients: u32) {
        let Some(from) = &self.tx.from else {
            return self.error(&reply::NEEDS_MAIL);
        };
        if to.forward_path.utf8() && !from.smtputf8 {
            return self.error(&reply::NEEDS_SMTPUTF8);
        }
        if self.tx.recipients.len() + self.tx.remote.len() >= max_recipients as usize {
            // RFC 5321 4.5.3.1.10: 452, and the client sends the rest in another transaction.
            return self.reply(&reply::TOO_MANY_RECIPIENTS);
        }
        if let Some(blocked) =
            (self.context.access).refuse_recipient(&to.forward_path.normalized().to_lowercase())
        {
            let address = &to.forward_path;
            tracing::info!(peer = %self.peer, recipient = %address, "recipient refused: block list");
            return self.error(&reply::recipient_blocked(address, &blocked.reason));
        }
        let declared = from.size.unwrap_or(0);
        if let (Some(checker), Some(client), None) =
            (&self.context.inbound_checks, &self.client, &self.user)
        {
            let postmaster = to.forward_path.local.eq_ignore_ascii_case("postmaster");
            if let Some(refusal) = checker.rcpt(client, postmaster) {
                return self.refuse(refusal);
            }
        }
        match self.resolve(&to.forward_path) {
            Ok(Resolved::Local(accounts)) => {
                let reader = &self.context.store.state();
                for account in &accounts {
                    if let Ok(Some(account)) = reader.account(account)
                        && self.context.over_quota(&account, declared)
                    {
                        return self.reply(&reply::MAILBOX_FULL);
                    }
                }
                self.tx.recipients.push(Recipient { accounts });
                self.reply(&reply::RECIPIENT_OK);
            }
            Ok(Resolved::Unknown) if to.forward_path.local.eq_ignore_ascii_case("postmaster") => {
                tracing::warn!(peer = %self.peer, recipient = %to.forward_path, "mail to the postmaster refused: no postmaster account or alias is configured");
                self.error(&reply::NO_POSTMASTER);
            }
            Ok(Resolved::Unknown) => self.error(&reply::UNKNOWN_USER),
            Ok(Resolved::Remote) if self.user.is_some() => {
                let address = to.forward_path.normalized();
                if !self.tx.remote.contains(&address) {
                    self.tx.remote.push(address);
                }
                self.reply(&reply::RECIPIENT_OK);
            }
            Ok(Resolved::Remote) => self.error(&reply::RELAY_DENIED),
            Err(err) => {
                tracing::warn!(error = %err, "recipient lookup failed");
                self.reply(&reply::LOOKUP_FAILED);
            }
        }
    }

    /// The reply refusing a HELO/EHLO name on the block list: checked on port 25 before any
    /// AUTH (the submission ports refuse MAIL without AUTH anyway, and our users are never
    /// refused by sender lists).
    fn helo_blocked(&self, name: &str) -> Option<Reply> {
        if self.service != Service::Smtp || self.user.is_some() || name.is_empty() {
            return None;
        }
        let blocked = self.context.access.refuse_helo(self.peer.ip(), name)?;
        tracing::info!(peer = %self.peer, helo = name, "helo refused: block list");
        Some(reply::helo_blocked(name, &blocked.reason))
    }

    /// Whether the authenticated `user` may send as `address`: its own address, or an alias
    /// that reaches it (so shared addresses like sales@ work for their members). The null
    /// sender is not checked (it names nobody). The policy can turn the check off.
    fn sender_allowed(
        &self,
        user: &str,
        address: &Address,
    ) -> Result<bool, raft_store::StoreError> {
        if !self.context.protection_policy().sender_login_match {
            return Ok(true);
        }
        let address = address.normalized().to_lowercase();
        if address == user {
            return Ok(true);
        }
        Ok(match self.context.store.resolve(&address)? {
            Resolved::Local(accounts) => accounts.iter().any(|a| a == user),
            Resolved::Unknown | Resolved::Remote => false,
        })
    }

    /// Resolves a recipient to local accounts (following aliases), or says it is not local.
    /// Postmaster addresses (any case, RFC 5321 4.5.1) fall back to the primary domain's
    /// postmaster (see `store::resolve_postmaster`).
    fn resolve(&self, address: &Address) -> Result<Resolved, raft_store::StoreError> {
        let store = &self.context.store;
        if address.local.eq_ignore_ascii_case("postmaster") {
            let domain = address.domain.to_lowercase();
            let domain = (!domain.is_empty()).then_some(domain.as_str());
            return crate::store::resolve_postmaster(store.state(), &self.context.hostname, domain);
        }
        store.resolve(&address.normalized().to_lowercase())
    }

    async fn data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<S>,
        max_message_bytes: u64,
    ) -> Next {
        if self.tx.from.is_none() {
            self.error(&reply::NEEDS_MAIL);
            return Next::Continue;
        }
        if self.tx.recipients.is_empty() && self.tx.remote.is_empty() {
            self.error(&reply::NO_VALID_RECIPIENTS);
            return Next::Continue;
        }
        self.line("354 End data with <CR><LF>.<CR><LF>");
        if self.flush(reader.get_mut()).await.is_err() {
            return Next::Quit;
        }
        let pace = DataPace {
            grace: DATA_GRACE,
            min_bytes_per_sec: self.context.protection_policy().min_data_rate,
        };
        // Holds the message's share of the node's message memory until it is answered.
        let (body, _memory) = match read_body(
            reader,
            max_message_bytes,
            pace,
            &self.context.message_memory,
        )
        .await
        {
            Ok(read) => read,
            Err(_) => return Next::Quit,
        };
        let tx = std::mem::take(&mut self.tx);
        let problem = match &body {
            Body::Eof => return Next::Quit,
            Body::TooSlow => {
                tracing::info!(peer = %self.peer, "disconnected: message data too slow");
                self.reply(&reply::TOO_SLOW);
                return Next::Quit;
            }
            Body::TooBig => Some(&reply::TOO_BIG),
            Body::NoMemory => {
                tracing::warn!(peer = %self.peer, "message refused: the node's message memory is in use");
                self.context
                    .metrics
                    .messages_refused_temp
                    .fetch_add(1, Ordering::Relaxed);
                Some(&reply::NO_MEMORY)
            }
            Body::Bad(problem) => Some(*problem),
            Body::Message(data) if count_received(data) > MAX_HOPS => Some(&reply::TOO_MANY_HOPS),
            Body::Message(_) => None,
        };
        if let Some(problem) = problem {
            self.error(problem);
            return Next::Continue;
        }
        let Body::Message(data) = body else {
            unreachable!("other bodies were answered above")
        };
        let (data, trace, quarantine) = match self.check_message(&tx, data).await {
            Ok(checked) => checked,
            Err(refusal) => {
                self.refuse(refusal);
                return Next::Continue;
            }
        };
        let reply = self.accept(tx, data, trace, quarantine).await;
        self.reply(&reply);
        Next::Continue
    }

    /// BDAT without CHUNKING on offer (RFC 3030): the chunk is read and dropped, so none of its
    /// bytes is ever taken for a command, and the transaction ends. When the size is not
    /// readable nobody knows where the chunk ends: the connection is closed.
    async fn bdat<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        size: Option<u64>,
        reader: &mut BufReader<S>,
    ) -> Next {
        self.tx = Transaction::default();
        let Some(size) = size else {
            self.reply(&reply::BDAT_SYNTAX);
            return Next::Quit;
        };
        let mut chunk = tokio::io::AsyncReadExt::take(&mut *reader, size);
        let skipped = tokio::time::timeout(
            Duration::from_secs(300),
            tokio::io::copy(&mut chunk, &mut tokio::io::sink()),
        )
        .await;
        match skipped {
            Ok(Ok(n)) if n == size => {
                self.error(&reply::NO_CHUNKING);
                Next::Continue
            }
            _ => Next::Quit,
        }
    }

    /// Replies with a refusal from the inbound checks, and counts it.
    fn refuse(&mut self, refusal: Refusal) {
        tracing::info!(peer = %self.peer, check = ?refusal.check, reply = %refusal.reply, "refused by an inbound check");
        self.context.metrics.count_inbound_refusal(refusal.check);
        self.error(&refusal.reply);
    }

    /// Runs the DKIM/DMARC checks on an arriving message (port 25, not logged in, not allow
    /// listed): the message with the headers only we may write removed, the trace headers to
    /// add, and whether the domain's DMARC policy quarantines it (files it to Junk); or the
    /// refusal.
    async fn check_message(
        &self,
        tx: &Transaction,
        data: Vec<u8>,
    ) -> Result<(Vec<u8>, String, bool), Refusal> {
        let (Some(checker), Some(client), None, false) = (
            &self.context.inbound_checks,
            &self.client,
            &self.user,
            tx.allow_listed,
        ) else {
            return Ok((data, String::new(), false));
        };
        let sender = tx
            .from
            .as_ref()
            .and_then(|from| from.reverse_path.as_ref())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let helo = self.helo.as_deref().unwrap_or_default();
        let verdict = checker
            .message(client, helo, &sender, tx.spf.as_ref(), &data)
            .await;
        let quarantine = match verdict.disposition {
            Disposition::Accept => false,
            Disposition::Reject(reply) => {
                return Err(Refusal {
                    check: inbound_checks::Check::Dmarc,
                    reply,
                });
            }
            // Filed in each local recipient's Junk mailbox, like a content filter's Junk verdict
            // (see `accept`).
            Disposition::Quarantine => {
                self.context
                    .metrics
                    .inbound_quarantined
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
        };
        let data = inbound_checks::strip_our_headers(&data, &self.context.hostname);
        Ok((data, verdict.headers, quarantine))
    }

    /// Stores, mirrors and commits one message whose data has been read; returns the reply to
    /// DATA. In order: the content filters, the headers this server adds, both copies of the
    /// blob, the committed delivery. `trace` holds header fields from the inbound checks, placed
    /// after Received; `quarantine` (DMARC) files the message in Junk unless a content filter
    /// refuses it.
    async fn accept(
        &mut self,
        tx: Transaction,
        body: Vec<u8>,
        trace: String,
        quarantine: bool,
    ) -> Reply {
        let queue_id = format!("{:016X}", rand::random::<u64>());
        let from = tx.from.expect("DATA checked MAIL");
        let remote = tx.remote;
        let mut accounts: Vec<String> =
            tx.recipients.into_iter().flat_map(|r| r.accounts).collect();
        accounts.sort();
        accounts.dedup();
        let verdict = match self
            .filter(&body, tx.allow_listed, quarantine, &queue_id)
            .await
        {
            Ok(verdict) => verdict,
            Err(refusal) => return refusal,
        };
        let now = chrono_like_now();
        let return_path = from
            .reverse_path
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let message = self
            .with_added_headers(
                verdict.apply(body),
                &queue_id,
                &return_path,
                &accounts,
                !remote.is_empty(),
                &trace,
                &now,
            )
            .await;
        let size = message.len() as u64;
        let (stored, summary) = match self.store(message, &queue_id).await {
            Ok(stored) => stored,
            Err(refusal) => return refusal,
        };
        raft_store::failpoint::pause("deliver-before-propose").await;
        let delivery = Delivery {
            queue_id: queue_id.clone(),
            blob: stored.hash,
            size,
            replicas: stored.replicas,
            missing: stored.missing,
            recipients: accounts,
            internal_date: now.unix,
            summary,
            outbound: (!remote.is_empty()).then(|| Outbound {
                sender: return_path.clone(),
                recipients: remote,
                envid: from.envid.clone(),
                ret_full: from.ret == Some(Ret::Full),
            }),
        };
        self.commit(delivery, verdict.filing(), &return_path).await
    }

    /// The content filters' verdict (with a DMARC quarantine merged in), or the reply refusing
    /// the message.
    async fn filter(
        &self,
        body: &[u8],
        allow_listed: bool,
        quarantine: bool,
        queue_id: &str,
    ) -> Result<Verdict, Reply> {
        let mut verdict = filters::check(
            &self.context.filters,
            &self.context.metrics.filters,
            body,
            self.user.is_some(),
            allow_listed,
            queue_id,
        )
        .await;
        if quarantine {
            verdict.merge(Verdict {
                action: Action::Junk,
                ..Verdict::accept()
            });
        }
        if let Some(refusal) = verdict.refusal() {
            tracing::info!(queue_id, peer = %self.peer, reply = %refusal, "message refused by content filters");
            if refusal.is_temporary() {
                self.count_tempfail();
            }
            return Err(refusal.clone());
        }
        Ok(verdict)
    }

    /// The message as it is stored: Return-Path, Received and the trace headers of the checks
    /// on top, a submission's missing Date and Message-ID filled in, and a DKIM signature when
    /// an authenticated user sends to other domains.
    #[allow(clippy::too_many_arguments)]
    async fn with_added_headers(
        &self,
        body: Vec<u8>,
        queue_id: &str,
        return_path: &str,
        accounts: &[String],
        to_remote: bool,
        trace: &str,
        now: &Now,
    ) -> Vec<u8> {
        // RFC 6409 8.2 and 8.3: a submission server may add the Date and Message-ID a client
        // left out; before DKIM signs the header. Port 25 passes mail on as it came.
        let body = if matches!(self.service, Service::Submission | Service::Smtps) {
            let message_id = format!(
                "<{:032x}.{queue_id}@{}>",
                rand::random::<u128>(),
                self.context.hostname
            );
            complete_submission(body, &now.rfc5322, &message_id)
        } else {
            body
        };
        let mut message = Vec::with_capacity(body.len() + 512);
        message.extend_from_slice(format!("Return-Path: <{return_path}>\r\n").as_bytes());
        message.extend_from_slice(self.received_header(queue_id, accounts, now).as_bytes());
        message.extend_from_slice(trace.as_bytes());
        if self.user.is_some() && to_remote {
            let signature = self.dkim_signature(&body).await;
            message.extend_from_slice(signature.unwrap_or_default().as_bytes());
        }
        message.extend_from_slice(&body);
        message
    }

    /// Both copies of the blob and its summary (`MailStore::store_message`), or the reply
    /// refusing the message.
    async fn store(
        &self,
        message: Vec<u8>,
        queue_id: &str,
    ) -> Result<(Stored, MessageSummary), Reply> {
        match self.context.store.store_message(message).await {
            Ok(stored) => Ok(stored),
            Err(StoreMessageError::NoMirror) => {
                self.count_tempfail();
                Err(reply::NO_MIRROR.clone())
            }
            Err(StoreMessageError::Storage(err)) => {
                tracing::warn!(queue_id, error = %err, "could not store message");
                self.count_tempfail();
                Err(reply::STORAGE_FAILED.clone())
            }
            Err(StoreMessageError::TooComplex(too_complex)) => {
                tracing::info!(queue_id, peer = %self.peer, reason = %too_complex, "message refused: too complex");
                self.context
                    .metrics
                    .messages_too_complex
                    .fetch_add(1, Ordering::Relaxed);
                Err(reply::too_complex(&too_complex))
            }
            Err(err @ StoreMessageError::Parse(_)) => {
                tracing::error!(queue_id, error = %err, "could not store message");
                Err(reply::TEMPORARY_FAILURE.clone())
            }
        }
    }

    /// Commits the delivery (and the remote part's queue entry) through Raft; 250 once it is
    /// applied here.
    async fn commit(&self, delivery: Delivery, filing: Filing, return_path: &str) -> Reply {
        let queue_id = delivery.queue_id.clone();
        let remote = delivery.outbound.as_ref().map_or(0, |o| o.recipients.len());
        let (recipients, size) = (delivery.recipients.len(), delivery.size);
        let (replicas, degraded) = (delivery.replicas.clone(), !delivery.missing.is_empty());
        match self.context.deliverer.deliver(delivery, filing).await {
            Ok(outcome) => {
                self.context
                    .metrics
                    .messages_accepted
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    queue_id,
                    from = %return_path,
                    recipients,
                    remote,
                    delivered = outcome.delivered,
                    filing = ?filing,
                    size,
                    replicas = ?replicas,
                    degraded,
                    "message accepted"
                );
                if !outcome.undeliverable.is_empty() {
                    // The accounts went away between RCPT and commit; bounces arrive with the
                    // outbound queue.
                    tracing::warn!(queue_id, recipients = ?outcome.undeliverable, "recipients vanished before delivery");
                }
                if remote > 0 {
                    self.context.outbound_wake.notify_one();
                }
                reply::queued(&queue_id)
            }
            Err(reason) => {
                tracing::warn!(queue_id, reason = %reason, "delivery did not commit");
                self.count_tempfail();
                reply::COMMIT_FAILED.clone()
            }
        }
    }

    /// One more message answered 4xx after its data.
    fn count_tempfail(&self) {
        self.context
            .metrics
            .messages_refused_temp
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The DKIM-Signature field for an authenticated user's mail to other domains, when its
    /// From domain has a signing key. Signing fails only on a message without a usable From
    /// or a broken key; the message then goes out unsigned (and the log says why).
    async fn dkim_signature(&self, body: &[u8]) -> Option<String> {
        let domain = dkim::signer_domain(body)?;
        let key = match self.context.store.state().dkim_key(&domain) {
            Ok(key) => key?,
            Err(err) => {
                tracing::warn!(domain, error = %err, "could not read the DKIM key");
                return None;
            }
        };
        let body = body.to_vec();
        // Hashing a large body and an RSA signature are CPU work: off the session's thread.
        match tokio::task::spawn_blocking(move || dkim::sign(&body, &key)).await {
            Ok(Ok(signature)) => Some(signature),
            Ok(Err(err)) => {
                tracing::warn!(domain, error = %err, "DKIM signing failed; sent unsigned");
                None
            }
            Err(err) => {
                tracing::warn!(domain, error = %err, "DKIM signing task failed; sent unsigned");
                None
            }
        }
    }

    fn received_header(&self, queue_id: &str, accounts: &[String], now: &Now) -> String {
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let helo: String = helo.chars().filter(|c| !c.is_control()).take(255).collect();
        let with = match (self.esmtp, self.tls, self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let for_clause = match accounts {
            [one] => format!("\r\n\tfor <{one}>"),
            _ => String::new(),
        };
        format!(
            "Received: from {helo} ([{}])\r\n\tby {} (mcluster) with {with} id {queue_id}{for_clause};\r\n\t{}\r\n",
            self.peer.ip(),
            self.context.hostname,
            now.rfc5322
        )
    }
}

/// What DATA read.
enum Body {
    Message(Vec<u8>),
    TooBig,
    /// The node's message memory (`mail.message-memory-mb`) ran out while it arrived.
    NoMemory,
    Bad(&'static Reply),
    Eof,
    /// The client fell below the minimum data rate (a slow-drip client holding a session).
    TooSlow,
}

/// How long message data may take before the minimum rate applies.
const DATA_GRACE: Duration = Duration::from_secs(60);

/// The slowest message data accepted: after `grace`, at least `min_bytes_per_sec` on average
/// since DATA (0: no minimum, only the per-line timeout).
#[derive(Debug, Clone, Copy)]
struct DataPace {
    grace: Duration,
    min_bytes_per_sec: u64,
}

impl DataPace {
    /// Whether `received` bytes `elapsed` after DATA are too few.
    fn too_slow(&self, received: u64, elapsed: Duration) -> bool {
        self.min_bytes_per_sec > 0
            && elapsed > self.grace
            && (received / self.min_bytes_per_sec) < (elapsed - self.grace).as_secs()
    }
}

/// Reads the message up to the lone dot, undoing dot-stuffing. A problem (too big, bare LF,
/// NUL, an overlong line) is remembered and the rest is read and dropped, so the session can
/// answer and go on. Only CRLF "." CRLF ends the data: a dot line after a line that ended in a
/// bare LF (or, as a line of its own, a dot followed by a bare CR or LF) is message data, so the
/// message runs on to the real terminator and is refused as a whole. Nothing a client sends
/// after a non-standard terminator is ever taken as a command (SMTP smuggling,
/// CVE-2023-51764/51765/51766).
async fn read_body<S: AsyncRead + Unpin>(
    reader: &mut BufReader<S>,
    max_message_bytes: u64,
    pace: DataPace,
    memory: &Arc<Semaphore>,
) -> std::io::Result<(Body, Option<OwnedSemaphorePermit>)> {
    let mut held = MemoryShare::new(memory);
    let started = tokio::time::Instant::now();
    let mut received = 0u64;
    let mut data = Vec::new();
    let mut problem: Option<Body> = None;
    let mut line = Vec::new();
    // Whether the line before ended in CRLF: the DATA command line did.
    let mut after_crlf = true;
    loop {
        let read = tokio::time::timeout(
            Duration::from_secs(300),
            line_reader::read_raw_line(reader, MAX_TEXT_LINE, &mut line),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        match read {
            RawLine::Eof => return Ok((Body::Eof, None)),
            RawLine::TooLong { crlf } => {
                after_crlf = crlf;
                received += line.len() as u64;
                problem.get_or_insert(Body::Bad(&reply::LONG_LINE));
                data = Vec::new();
                continue;
            }
            RawLine::Complete => {}
        }
        if after_crlf && line == b".\r\n" {
            break;
        }
        let crlf = line.ends_with(b"\r\n");
        after_crlf = crlf;
        received += line.len() as u64;
        if pace.too_slow(received, started.elapsed()) {
            return Ok((Body::TooSlow, None));
        }
        if problem.is_some() {
            continue;
        }
        let content = &line[..line.len() - if crlf { 2 } else { 1 }];
        if !crlf || content.contains(&b'\r') {
            problem = Some(Body::Bad(&reply::BARE_LINE_END));
            data = Vec::new();
            continue;
        }
        if content.contains(&0) {
            problem = Some(Body::Bad(&reply::NUL_BYTE));
            data = Vec::new();
            continue;
        }
        let unstuffed = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        if (data.len() + unstuffed.len()) as u64 > max_message_bytes {
            problem = Some(Body::TooBig);
            data = Vec::new();
            continue;
        }
        if !held.cover(data.len() + unstuffed.len()) {
            problem = Some(Body::NoMemory);
            data = Vec::new();
            held = MemoryShare::new(memory);
            continue;
        }
        data.extend_from_slice(unstuffed);
    }
    match problem {
        Some(problem) => Ok((problem, None)),
        None => Ok((Body::Message(data), held.permit)),
    }
}

/// DATA as a session reads it, from bytes in memory (for the `accept_path` fuzz target and
/// tests): the message with dot-stuffing undone, or None when it was refused or never ended,
/// and how many bytes of `input` the session consumed (what follows is read as commands).
pub async fn read_data(input: &[u8], max_message_bytes: u64) -> (Option<Vec<u8>>, usize) {
    let pace = DataPace {
        grace: DATA_GRACE,
        min_bytes_per_sec: 0,
    };
    let memory = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let mut reader = BufReader::new(input);
    let body = read_body(&mut reader, max_message_bytes, pace, &memory).await;
    let left = reader.buffer().len() + reader.get_ref().len();
    match body {
        Ok((Body::Message(data), _)) => (Some(data), input.len() - left),
        _ => (None, input.len() - left),
    }
}

/// A message's share of the node's message memory, taken as its data grows.
struct MemoryShare<'a> {
    memory: &'a Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    /// KiB held.
    kib: usize,
}

/// Message memory is taken in steps of this many KiB.
const MEMORY_STEP_KIB: usize = 64;

impl<'a> MemoryShare<'a> {
    fn new(memory: &'a Arc<Semaphore>) -> MemoryShare<'a> {
        MemoryShare {
            memory,
            permit: None,
            kib: 0,
        }
    }

    /// Makes the share cover `bytes`; false when the node's message memory is used up.
    fn cover(&mut self, bytes: usize) -> bool {
        let needed = bytes.div_ceil(1024);
        if needed <= self.kib {
            return true;
        }
        let more = (needed - self.kib).max(MEMORY_STEP_KIB);
        let Ok(more_permit) = self.memory.clone().try_acquire_many_owned(more as u32) else {
            return false;
        };
        match &mut self.permit {
            Some(permit) => permit.merge(more_permit),
            None => self.permit = Some(more_permit),
        }
        self.kib += more;
        true
    }
}

/// The message with a `Date` and a `Message-ID` field in front when its header section (up to
/// the first empty line) has none of its own; field names match in any case.
pub(crate) fn complete_submission(body: Vec<u8>, date: &str, message_id: &str) -> Vec<u8> {
    let has = |name: &[u8]| {
        body.split(|b| *b == b'\n')
            .take_while(|line| !line.is_empty() && *line != b"\r")
            .filter(|line| !line.starts_with(b" ") && !line.starts_with(b"\t"))
            .filter_map(|line| line.iter().position(|b| *b == b':').map(|i| &line[..i]))
            .any(|field| field.trim_ascii_end().eq_ignore_ascii_case(name))
    };
    let mut added = String::new();
    if !has(b"date") {
        added.push_str(&format!("Date: {date}\r\n"));
    }
    if !has(b"message-id") {
        added.push_str(&format!("Message-ID: {message_id}\r\n"));
    }
    if added.is_empty() {
        return body;
    }
    let mut message = Vec::with_capacity(added.len() + body.len());
    message.extend_from_slice(added.as_bytes());
    message.extend_from_slice(&body);
    message
}

/// Received headers in the header section (up to the first empty line).
fn count_received(data: &[u8]) -> usize {
    data.split(|b| *b == b'\n')
        .take_while(|line| !line.is_empty() && *line != b"\r")
        .filter(|line| line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

pub(crate) struct Now {
    pub unix: i64,
    pub rfc5322: String,
}

/// The current time as Unix seconds and as an RFC 5322 date (UTC).
pub(crate) fn chrono_like_now() -> Now {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Now {
        unix,
        rfc5322: rfc5322_date(unix),
    }
}

/// Formats Unix seconds as e.g. `Sun, 22 Nov 2026 10:04:05 +0000`.
pub(crate) fn rfc5322_date(unix: i64) -> String {
    raft_store::calendar::DateTime::from_unix(unix).rfc5322()
}
