//! The IMAP session: one client connection from greeting to LOGOUT, on 143 (STARTTLS) or 993
//! (implicit TLS), over the replicated mailbox model.
//!
//! - Reading: bytes go into the I/O-free [`CommandReader`]; commands come out one at a time
//!   and are answered in order. Responses collect in a buffer written when the reader needs
//!   more input (so pipelined commands share writes) or when a large FETCH has filled it.
//! - Writes are Raft commands: STORE, EXPUNGE, COPY/MOVE, CREATE/DELETE/RENAME, (UN)SUBSCRIBE,
//!   and APPEND, whose message is first fsync'd here and on the mirror partner, exactly like
//!   SMTP's. No OK is sent before the entry is committed and applied on this node.
//! - Reads come from this node's applied state. SELECT, EXAMINE, STATUS, LIST and LSUB first
//!   catch up with the leader (a linearizable read), so a client that reconnects anywhere sees
//!   every message and mailbox that was acknowledged anywhere; APPEND, COPY and MOVE do so before
//!   answering that their target mailbox does not exist.
//! - Changes made by other sessions (on any node) reach the selected mailbox's view
//!   ([`View`]) before each command's tagged reply, and at once during IDLE, which waits on
//!   the store's change announcements.
//!
//! Commands are split by what they touch: `session/mailboxes.rs` has the authenticated-state
//! commands (LIST, CREATE, STATUS, APPEND, QUOTA ...), `session/selected.rs` the selected-state
//! ones (FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE ...).

mod mailboxes;
mod selected;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox as WireMailbox;
use raft_store::{Account, MailPolicy, flag};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::imap::command::{
    CommandError, CommandErrorKind, CommandEvent, CommandReader, Limits, LineEvent,
};
use crate::imap::utf7;
use crate::imap::view::View;
use crate::mail_service::{
    Goodbye, Greeting, LoginRefused, MailContext, Service, TlsConnection, serve_connection,
};
use crate::sasl::{self, SaslError};

/// RFC 3501 5.4: an autologout timer must be at least 30 minutes.
const AUTHENTICATED_IDLE: Duration = Duration::from_secs(31 * 60);
/// Before login a client has less reason to sit silent.
const UNAUTHENTICATED_IDLE: Duration = Duration::from_secs(120);
/// A client that does not take our output for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(300);
/// Output is written out once this much has piled up within one command.
const FLUSH_AT: usize = 256 * 1024;
/// Line bytes of one command; generous for long UID sets.
const MAX_LINE: usize = 256 * 1024;
/// Literal bytes of a command other than APPEND (passwords, search strings, names).
const MAX_LITERAL: u64 = 64 * 1024;
/// Before login a command may hold this much of a line and of literals (a LOGIN with a long
/// password fits); a larger literal is refused before a byte of it is read, and the connection
/// closed (RFC 7888 4), so no stranger can make the server hold megabytes.
const PRE_AUTH_LIMITS: Limits = Limits {
    line: 8 * 1024,
    append_literal: 8 * 1024,
    literal: 8 * 1024,
};
/// The read buffer before login, and after.
const PRE_AUTH_READ_BUFFER: usize = 4 * 1024;
const READ_BUFFER: usize = 64 * 1024;

/// Serves one accepted connection.
pub async fn serve(
    context: Arc<MailContext>,
    stream: TcpStream,
    peer: SocketAddr,
    service: Service,
) {
    let plain = async |stream: TcpStream| {
        let mut io = Io::new(stream);
        let end = Session::new(context.clone(), peer, false)
            .run(&mut io, true)
            .await;
        // Everything the client sent before the handshake goes with the old session.
        (end == End::StartTls).then_some(io.stream)
    };
    let secure = async |tls: TlsConnection, greeting| {
        Session::new(context.clone(), peer, true)
            .run(&mut Io::new(tls), greeting == Greeting::Send)
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
        .run(&mut Io::new(stream), true)
        .await;
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    StartTls,
}

/// What a command handler tells the loop.
enum Flow {
    Continue,
    Logout,
    StartTls,
}

/// The connection was lost or must be closed (after a BYE that is already queued).
#[derive(Debug)]
struct Closed;

type Handled = Result<Flow, Closed>;

/// The untagged BYE of a session the server ends (RFC 3501 7.1.5).
fn bye_line(goodbye: Goodbye) -> &'static str {
    match goodbye {
        Goodbye::Stopping => "* BYE Server shutting down, reconnect in a moment",
        Goodbye::Moving => "* BYE This address is moving to another cluster node, reconnect now",
    }
}

/// The socket with its output buffer.
struct Io<S> {
    stream: S,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    fn new(stream: S) -> Io<S> {
        Io {
            stream,
            out: Vec::with_capacity(1024),
            buf: vec![0; PRE_AUTH_READ_BUFFER],
        }
    }

    /// The larger read buffer a logged-in session reads with.
    fn grow(&mut self) {
        if self.buf.len() < READ_BUFFER {
            self.buf.resize(READ_BUFFER, 0);
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &Tag<'_>, status: &str, text: &str) {
        self.line(&format!("{} {status} {text}", tag.inner()));
    }

    /// The tagged completion of a command, after which the session goes on.
    fn done(&mut self, tag: &Tag<'_>, status: &str, text: &str) -> Handled {
        self.tagged(tag, status, text);
        Ok(Flow::Continue)
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.out.is_empty() {
            return Ok(());
        }
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => {
                self.out.clear();
                if self.out.capacity() > 4 * FLUSH_AT {
                    self.out = Vec::with_capacity(16 * 1024);
                }
                Ok(())
            }
            _ => Err(Closed),
        }
    }

    /// Sends a last untagged BYE and closes the connection (TLS with close_notify).
    async fn bye(&mut self, line: &str) {
        self.line(line);
        if self.flush().await.is_ok() {
            let _ = tokio::time::timeout(WRITE_TIMEOUT, self.stream.shutdown()).await;
        }
    }

    async fn flush_if_full(&mut self) -> Result<(), Closed> {
        if self.out.len() >= FLUSH_AT {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Reads what the client sent next into `reader`; Closed at end of stream or timeout.
    async fn read(&mut self, reader: &mut CommandReader, idle: Duration) -> Result<(), Closed> {
        match tokio::time::timeout(idle, self.stream.read(&mut self.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => Err(Closed),
            Ok(Ok(n)) => {
                reader.feed(&self.buf[..n]);
                Ok(())
            }
            Err(_) => {
                self.line("* BYE Autologout: idle for too long");
                let _ = self.flush().await;
                Err(Closed)
            }
        }
    }
}

struct Session {
    context: Arc<MailContext>,
    peer: SocketAddr,
    tls: bool,
    reader: CommandReader,
    account: Option<Account>,
    selected: Option<View>,
    /// The client enabled CONDSTORE (ENABLE, SELECT (CONDSTORE), or a CONDSTORE modifier).
    condstore: bool,
    errors: u32,
    policy: MailPolicy,
}

impl Session {
    fn new(context: Arc<MailContext>, peer: SocketAddr, tls: bool) -> Session {
        let policy = context.store.state().mail_policy().unwrap_or_default();
        let reader = CommandReader::new(PRE_AUTH_LIMITS);
        Session {
            context,
            peer,
            tls,
            reader,
            account: None,
            selected: None,
            condstore: false,
            errors: 0,
            policy,
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut Io<S>, greet: bool) -> End {
        if greet {
            io.line(&format!(
                "* OK [CAPABILITY {}] {} IMAP4rev1 mcluster ready",
                self.capabilities(),
                self.context.hostname
            ));
        }
        loop {
            let event = self.reader.next_command();
            let handled = match event {
                CommandEvent::NeedMore => {
                    if io.flush().await.is_err() {
                        return End::Closed;
                    }
                    let idle = if self.account.is_some() {
                        AUTHENTICATED_IDLE
                    } else {
                        UNAUTHENTICATED_IDLE
                    };
                    let closing = self.context.clone();
                    tokio::select! {
                        read = io.read(&mut self.reader, idle) => if read.is_err() {
                            return End::Closed;
                        },
                        goodbye = closing.closing() => {
                            io.bye(bye_line(goodbye)).await;
                            return End::Closed;
                        }
                    }
                    continue;
                }
                CommandEvent::SendContinuation => {
                    io.line("+ Ready for literal data");
                    continue;
                }
                CommandEvent::Error(error) => self.refuse(io, error),
                CommandEvent::Command(command) => self.handle(io, command).await,
            };
            match handled {
                Ok(Flow::Continue) => {}
                Ok(Flow::Logout) | Err(Closed) => {
                    let _ = io.flush().await;
                    return End::Closed;
                }
                Ok(Flow::StartTls) => {
                    if io.flush().await.is_err() {
                        return End::Closed;
                    }
                    return End::StartTls;
                }
            }
            if self.errors >= self.policy.max_errors {
                io.line("* BYE Too many errors, closing connection");
                let _ = io.flush().await;
                return End::Closed;
            }
        }
    }

    /// Answers a command the reader refused.
    /// Before login a command over the small limits ends the connection: the reader has not
    /// read its literal, and a client that sends one anyway is not one to wait for.
    fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        error: CommandError,
    ) -> Handled {
        self.errors += 1;
        if self.account.is_none()
            && matches!(
                error.kind,
                CommandErrorKind::LiteralTooLarge { .. } | CommandErrorKind::LineTooLong { .. }
            )
        {
            let text = format!("{error} before login");
            match &error.tag {
                Some(tag) => io.tagged(tag, "BAD", &text),
                None => io.line(&format!("* BAD {text}")),
            }
            io.line("* BYE Command too large before login, closing connection");
            return Err(Closed);
        }
        let (status, text) = match error.kind {
            CommandErrorKind::LiteralTooLarge { .. } if error.tag.is_some() => {
                ("NO", format!("[TOOBIG] {error}"))
            }
            _ => ("BAD", error.to_string()),
        };
        match &error.tag {
            Some(tag) => io.tagged(tag, status, &text),
            None => io.line(&format!("* BAD {text}")),
        }
        Ok(Flow::Continue)
    }

    /// The capabilities for the current state (RFC 3501 7.2.1).
    fn capabilities(&self) -> String {
        let mut caps = String::from(
            "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT \
             SPECIAL-USE CHILDREN QUOTA CONDSTORE SORT SORT=DISPLAY STATUS=SIZE BINARY",
        );
        // RFC 7889: the largest APPEND any mailbox takes (the message size limit); a larger
        // one gets NO [TOOBIG].
        caps.push_str(&format!(" APPENDLIMIT={}", self.policy.max_message_bytes));
        if self.account.is_none() {
            if !self.tls && self.context.tls.acceptor().is_some() {
                caps.push_str(" STARTTLS");
            }
            if self.auth_allowed() {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    fn auth_allowed(&self) -> bool {
        self.tls || self.policy.auth_without_tls
    }

    async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        command: Command<'static>,
    ) -> Handled {
        let Command { tag, body } = command;
        // Commands valid in every state.
        match body {
            CommandBody::Capability => {
                io.line(&format!("* CAPABILITY {}", self.capabilities()));
                return io.done(&tag, "OK", "Capability completed");
            }
            CommandBody::Noop => {
                self.sync(io, true).await?;
                return io.done(&tag, "OK", "NOOP completed");
            }
            CommandBody::Logout => {
                io.line("* BYE Logging out");
                io.tagged(&tag, "OK", "Logout completed");
                return Ok(Flow::Logout);
            }
            CommandBody::Id { parameters } => {
                if let Some(parameters) = parameters {
                    let shown: Vec<String> = parameters
                        .iter()
                        .take(8)
                        .map(|(k, v)| format!("{k:?}={v:?}"))
                        .collect();
                    tracing::debug!(peer = %self.peer, client = ?shown, "imap client id");
                }
                io.line(&format!(
                    "* ID (\"name\" \"mcluster\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                return io.done(&tag, "OK", "ID completed");
            }
            _ => {}
        }
        if self.account.is_none() {
            return self.handle_unauthenticated(io, tag, body).await;
        }
        self.handle_authenticated(io, tag, body).await
    }

    /// RFC 3501 6.3: the commands of the authenticated state (and of the selected state, which
    /// includes them).
    async fn handle_authenticated<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Handled {
        match body {
            CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => {
                self.bad(io, &tag, "Already authenticated");
                Ok(Flow::Continue)
            }
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for capability in capabilities.as_ref() {
                    if matches!(capability, CapabilityEnable::CondStore) && !self.condstore {
                        self.condstore = true;
                        enabled.push("CONDSTORE");
                    }
                }
                let mut line = String::from("* ENABLED");
                for name in enabled {
                    line.push(' ');
                    line.push_str(name);
                }
                io.line(&line);
                io.done(&tag, "OK", "Enable completed")
            }
            CommandBody::Namespace => {
                io.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                io.done(&tag, "OK", "Namespace completed")
            }
            CommandBody::Idle => self.idle(io, &tag).await,
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(io, &tag, &mailbox, false, &parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(io, &tag, &mailbox, true, &parameters).await,
            CommandBody::Create { mailbox } => self.create(io, &tag, &mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(io, &tag, &mailbox).await,
            CommandBody::Rename { from, to } => self.rename(io, &tag, &from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(io, &tag, &mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(io, &tag, &mailbox, false).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(io, &tag, &reference, &mailbox_wildcard, false)
                    .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(io, &tag, &reference, &mailbox_wildcard, true)
                    .await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(io, &tag, &mailbox, &item_names).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(io, &tag, &mailbox, &flags, date, message).await,
            CommandBody::GetQuota { root } => self.get_quota(io, &tag, root.as_ref()).await,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(io, &tag, &mailbox).await,
            CommandBody::SetQuota { .. } => {
                io.done(&tag, "NO", "[NOPERM] Quotas are set by the administrator")
            }
            body => self.handle_selected(io, tag, body).await,
        }
    }

    /// RFC 3501 6.4: the commands of the selected state.
    async fn handle_selected<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Handled {
        match body {
            body if self.selected.is_none() && selected_state_command(&body) => {
                self.bad(io, &tag, "No mailbox selected");
                Ok(Flow::Continue)
            }
            CommandBody::Check => {
                self.sync(io, true).await?;
                io.done(&tag, "OK", "Check completed")
            }
            CommandBody::Close => self.close(io, &tag, true).await,
            CommandBody::Unselect => self.close(io, &tag, false).await,
            CommandBody::Expunge => self.expunge(io, &tag, None).await,
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(io, &tag, Some(&sequence_set)).await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                self.search(io, &tag, charset.as_ref(), criteria.as_ref(), uid, None)
                    .await
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                let sort = sort_criteria.as_ref();
                let criteria = search_criteria.as_ref();
                self.search(io, &tag, Some(&charset), criteria, uid, Some(sort))
                    .await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(
                    io,
                    &tag,
                    &sequence_set,
                    &macro_or_item_names,
                    uid,
                    &modifiers,
                )
                .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                self.store(
                    io,
                    &tag,
                    &sequence_set,
                    kind,
                    response,
                    &flags,
                    uid,
                    &modifiers,
                )
                .await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(io, &tag, &sequence_set, &mailbox, uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(io, &tag, &sequence_set, &mailbox, uid, true)
                    .await
            }
            other => {
                self.bad(io, &tag, &format!("{} is not supported", other.name()));
                Ok(Flow::Continue)
            }
        }
    }

    async fn handle_unauthenticated<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Handled {
        match body {
            CommandBody::StartTLS if self.tls => self.bad(io, &tag, "TLS is already active"),
            CommandBody::StartTLS if self.context.tls.acceptor().is_none() => {
                io.tagged(&tag, "NO", "[UNAVAILABLE] TLS is not available")
            }
            CommandBody::StartTLS => {
                // Anything the client pipelined after STARTTLS was sent in clear text and must
                // not be taken as sent under TLS (RFC 3501 6.2.1); the new session starts empty.
                self.reader.discard_buffered_input();
                io.tagged(&tag, "OK", "Begin TLS negotiation now");
                return Ok(Flow::StartTls);
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. }
                if !self.auth_allowed() =>
            {
                io.tagged(
                    &tag,
                    "NO",
                    "[PRIVACYREQUIRED] Use STARTTLS first: passwords are not sent in clear",
                );
            }
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(io, &tag, &user, &password).await;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if !matches!(mechanism, AuthMechanism::Plain) {
                    return io.done(&tag, "NO", "Unsupported authentication mechanism");
                }
                // RFC 4959: an empty initial response ("=") is sent as such, not asked for.
                let response = match initial_response {
                    Some(initial) if !initial.declassify().is_empty() => {
                        initial.declassify().to_vec()
                    }
                    _ => match self.authenticate_data(io).await? {
                        Some(data) => data,
                        None => {
                            self.bad(io, &tag, "Authentication cancelled");
                            return Ok(Flow::Continue);
                        }
                    },
                };
                match sasl::parse_plain(&response) {
                    Err(SaslError::Cancelled) => self.bad(io, &tag, "Authentication cancelled"),
                    Err(_) => self.bad(io, &tag, "Malformed PLAIN response"),
                    Ok(credentials) => {
                        if !credentials.authzid.is_empty()
                            && !credentials
                                .authzid
                                .eq_ignore_ascii_case(&credentials.authcid)
                        {
                            tokio::time::sleep(self.context.login_failure_delay()).await;
                            io.tagged(
                                &tag,
                                "NO",
                                "[AUTHORIZATIONFAILED] Cannot act as another user",
                            );
                        } else {
                            self.login(io, &tag, &credentials.authcid, &credentials.password)
                                .await;
                        }
                    }
                }
            }
            _ => self.bad(io, &tag, "Log in first"),
        }
        Ok(Flow::Continue)
    }

    /// Reads the client's answer to an empty AUTHENTICATE challenge; None if it cancelled.
    async fn authenticate_data<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
    ) -> Result<Option<Vec<u8>>, Closed> {
        io.line("+ ");
        loop {
            match self.reader.next_authenticate_data() {
                LineEvent::NeedMore => {
                    io.flush().await?;
                    io.read(&mut self.reader, UNAUTHENTICATED_IDLE).await?;
                }
                LineEvent::Line(AuthenticateData::Continue(data)) => {
                    return Ok(Some(data.declassify().to_vec()));
                }
                LineEvent::Line(AuthenticateData::Cancel) | LineEvent::Error(_) => {
                    return Ok(None);
                }
            }
        }
    }

    async fn login<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        user: &str,
        password: &str,
    ) {
        match self
            .context
            .authenticate(user, password, self.peer.ip())
            .await
        {
            Ok(account) => {
                tracing::info!(peer = %self.peer, user = %account.address, "imap login");
                self.account = Some(account);
                self.reader.set_limits(Limits {
                    line: MAX_LINE,
                    append_literal: self.policy.max_message_bytes,
                    literal: MAX_LITERAL,
                });
                io.grow();
                io.tagged(
                    tag,
                    "OK",
                    &format!("[CAPABILITY {}] Logged in", self.capabilities()),
                );
            }
            Err(LoginRefused::Invalid) => {
                tracing::info!(peer = %self.peer, user, "imap authentication failed");
                self.errors += 1;
                io.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
            }
            Err(LoginRefused::Locked) => {
                self.errors += 1;
                io.tagged(
                    tag,
                    "NO",
                    "[UNAVAILABLE] Too many failed logins: logging in to this account from your \
                     address is blocked for a while; try again later",
                );
            }
        }
    }

    /// IDLE (RFC 2177): reports changes as they are applied on this node until DONE.
    async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
    ) -> Handled {
        // Subscribe before looking, so a change between the look and the wait is not missed.
        let mut changes = self.context.store.changes();
        let closing = self.context.clone();
        self.sync(io, true).await?;
        io.line("+ idling");
        let account: Arc<str> = self.account_name().into();
        let deadline = tokio::time::Instant::now() + AUTHENTICATED_IDLE;
        let mut listening = true;
        loop {
            match self.reader.next_idle_done() {
                LineEvent::Line(()) => break,
                LineEvent::Error(_) => {
                    self.bad(io, tag, "Expected DONE");
                    return Ok(Flow::Continue);
                }
                LineEvent::NeedMore => {}
            }
            io.flush().await?;
            tokio::select! {
                read = io.read(&mut self.reader, AUTHENTICATED_IDLE) => read?,
                goodbye = closing.closing() => {
                    io.bye(bye_line(goodbye)).await;
                    return Err(Closed);
                }
                change = changes.recv(), if listening => {
                    use raft_store::MailChange;
                    use tokio::sync::broadcast::error::RecvError;
                    let relevant = match change {
                        Ok(MailChange::Account(changed)) => changed == account,
                        Ok(MailChange::All) | Err(RecvError::Lagged(_)) => true,
                        // The state machine is gone (the node is stopping): the session
                        // ends with it.
                        Err(RecvError::Closed) => {
                            listening = false;
                            false
                        }
                    };
                    if relevant {
                        self.sync(io, true).await?;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    io.line("* BYE Autologout: idle for too long");
                    return Err(Closed);
                }
            }
        }
        io.done(tag, "OK", "IDLE terminated")
    }

    /// Brings the selected mailbox's view up to date with what this node has applied and
    /// queues the untagged responses. `allow_expunge` is false while answering FETCH, STORE
    /// and SEARCH by sequence number (RFC 3501 7.4.1).
    async fn sync<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        allow_expunge: bool,
    ) -> Result<(), Closed> {
        let Some(view) = self.selected.as_mut() else {
            return Ok(());
        };
        let account = self
            .account
            .as_ref()
            .expect("a mailbox is selected only after login")
            .address
            .clone();
        let reader = self.context.store.state().clone();
        let mailbox = match reader.mailbox(&account, &view.name) {
            Ok(Some(mailbox)) if mailbox.uidvalidity == view.uidvalidity => mailbox,
            Ok(_) => {
                io.line("* BYE The selected mailbox was deleted or renamed");
                return Err(Closed);
            }
            Err(err) => {
                tracing::warn!(error = %err, "imap: cannot read the mailbox");
                return Ok(());
            }
        };
        if !view.needs_sync(&mailbox, allow_expunge) {
            return Ok(());
        }
        let name = view.name.clone();
        let messages =
            match tokio::task::spawn_blocking(move || reader.messages(&account, &name)).await {
                Ok(Ok(messages)) => messages,
                _ => return Ok(()),
            };
        let last_before = view.last_uid();
        let updates = view.sync(&mailbox, messages, allow_expunge, self.condstore);
        io.push(&updates);
        if self
            .selected
            .as_ref()
            .is_some_and(|v| v.last_uid() > last_before)
        {
            // New messages: this session claims them, and says how many are recent now.
            self.claim_recent().await;
            if let Some(view) = self.selected.as_ref() {
                io.line(&format!("* {} RECENT", view.recent_count()));
            }
        }
        Ok(())
    }

    fn bad<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        tag: &Tag<'_>,
        text: &str,
    ) {
        self.errors += 1;
        io.tagged(tag, "BAD", text);
    }

    fn account_name(&self) -> &str {
        &self
            .account
            .as_ref()
            .expect("only called after login")
            .address
    }
}

/// Commands that need a selected mailbox.
fn selected_state_command(body: &CommandBody<'_>) -> bool {
    matches!(
        body,
        CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
    )
}

/// A mailbox name from the wire: INBOX, or modified UTF-7 decoded to the stored UTF-8 name.
fn mailbox_name(mailbox: &WireMailbox<'_>) -> Result<String, &'static str> {
    match mailbox {
        WireMailbox::Inbox => Ok(raft_store::INBOX.to_owned()),
        WireMailbox::Other(other) => {
            let invalid = "Mailbox name is not valid modified UTF-7";
            let text = std::str::from_utf8(other.as_ref()).map_err(|_| invalid)?;
            let name = utf7::decode(text).map_err(|_| invalid)?;
            // Clients may end a name with the delimiter (CREATE "a/" makes "a").
            let name = name
                .strip_suffix(crate::imap::list::DELIMITER)
                .unwrap_or(&name);
            // INBOX is case-insensitive, also as the first level of a longer name: "inbox/a"
            // is INBOX's child, not a child of a second, unreachable mailbox called "inbox".
            match name.get(..raft_store::INBOX.len()) {
                Some(head)
                    if head.eq_ignore_ascii_case(raft_store::INBOX)
                        && name[head.len()..]
                            .chars()
                            .next()
                            .is_none_or(|c| c == crate::imap::list::DELIMITER) =>
                {
                    Ok(format!("{}{}", raft_store::INBOX, &name[head.len()..]))
                }
                _ => Ok(name.to_owned()),
            }
        }
    }
}

/// A name as a quoted string in modified UTF-7.
fn quoted_name(name: &str) -> String {
    quoted(&utf7::encode(name))
}

/// An IMAP quoted string (the text has no CR, LF or NUL).
fn quoted(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    crate::imap::render::write_quoted(&mut out, text.as_bytes());
    String::from_utf8(out).expect("escaping keeps UTF-8 whole")
}

/// The stored form of flags a client names; an unknown `\System` flag is a protocol error.
fn stored_flags(flags: &[Flag<'_>]) -> Result<(u8, Vec<String>), String> {
    let mut bits = 0;
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits |= flag::SEEN,
            Flag::Answered => bits |= flag::ANSWERED,
            Flag::Flagged => bits |= flag::FLAGGED,
            Flag::Deleted => bits |= flag::DELETED,
            Flag::Draft => bits |= flag::DRAFT,
            Flag::Keyword(atom) => keywords.push(atom.as_ref().to_owned()),
            Flag::Extension(_) => return Err(format!("Unknown system flag {f}")),
        }
    }
    Ok((bits, keywords))
}

/// A UID set in the compact form of COPYUID (`1:3,7`), in the given order.
fn uid_set(uids: impl IntoIterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let emit = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b {
            out.push_str(&a.to_string());
        } else {
            out.push_str(&format!("{a}:{b}"));
        }
    };
    for uid in uids {
        run = match run {
            Some((a, b)) if b.checked_add(1) == Some(uid) => Some((a, uid)),
            Some(done) => {
                emit(&mut out, done);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(done) = run {
        emit(&mut out, done);
    }
    out
}

#[cfg(test)]
mod tests;
