//! The IMAP command reader: the session feeds it the bytes it reads from the client and takes
//! back, one at a time, parsed commands, requests to send a continuation (`+ `) for a
//! synchronizing literal, or errors it answers with `BAD`/`NO` before carrying on. It does no
//! I/O, so it can be fed byte by byte in tests and fuzzed.
//!
//! Parsing is imap-codec's (`CommandCodec`, `IdleDoneCodec`, `AuthenticateDataCodec`); commands
//! come out as its `Command<'static>` (re-exported types in `imap_codec::imap_types`). This module
//! only frames the byte stream into whole commands (lines and the literals they announce), which
//! is where limits and resynchronisation live:
//!
//! - A command's line bytes (everything but literal contents) are limited to `Limits::line`; a
//!   longer command is reported as `LineTooLong` at the end of the offending line and the reader
//!   never holds more than the limit.
//! - A literal is checked against its limit when it is announced, before a byte of it is read:
//!   `Limits::append_literal` for APPEND, `Limits::literal` for everything else (the sum over the
//!   literals of one command counts, so many small literals cannot add up unbounded).
//! - After an error the rest of the command is dropped without being stored: literal data that a
//!   client sends without waiting (LITERAL+ `{n+}`) and the lines after it. A synchronizing
//!   literal `{n}` ends a rejected command, because its client waits for a `+ ` it never gets
//!   and takes the tagged reply instead. The next byte after that starts a new command.

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::Tag;
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec, decode::Decoder};

#[cfg(test)]
mod tests;

/// Size limits for what one client may make the reader hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The line bytes of one command (literal contents excluded), line endings included.
    pub line: usize,
    /// The literal bytes of one APPEND command: the largest message the server takes.
    pub append_literal: u64,
    /// The literal bytes of any other command (passwords, search strings, mailbox names).
    pub literal: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            line: 64 * 1024,
            append_literal: 50 * 1024 * 1024,
            literal: 64 * 1024,
        }
    }
}

/// What `CommandReader::next_command` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandEvent {
    /// Nothing complete yet: feed more bytes.
    NeedMore,
    /// The client announced a synchronizing literal within the limit and waits for it to be
    /// accepted: send a continuation request (`+ ...\r\n`), then go on feeding bytes.
    SendContinuation,
    /// A whole command.
    Command(Command<'static>),
    /// The command was refused; answer it (tagged if `tag` is set, `* BAD` otherwise) and call
    /// `next_command` again: the reader has already moved past (or will drop) its bytes.
    Error(CommandError),
}

/// What `next_idle_done` and `next_authenticate_data` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent<T> {
    /// No whole line yet: feed more bytes.
    NeedMore,
    Line(T),
    /// The line was not what the state expects (or too long); it has been consumed.
    Error(CommandError),
}

/// A refused command, with its tag when one could be read from its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct CommandError {
    pub tag: Option<Tag<'static>>,
    pub kind: CommandErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandErrorKind {
    /// Not a valid command (or IDLE/AUTHENTICATE line): answer `BAD`.
    #[error("syntax error")]
    Syntax,
    /// The command's lines were over `Limits::line`: answer `BAD`.
    #[error("command line too long (limit {max} bytes)")]
    LineTooLong { max: usize },
    /// A literal was announced over its limit and will not be read: the session answers
    /// `NO [TOOBIG]` (RFC 7889; the reader does not know which command it was, and TOOBIG is
    /// true of any). `length` saturates for absurd announcements.
    #[error("literal of {length} bytes is over the limit of {max} bytes")]
    LiteralTooLarge { length: u64, max: u64 },
}

/// Turns client bytes into commands. See the module documentation for limits and recovery.
#[derive(Debug)]
pub struct CommandReader {
    limits: Limits,
    /// Bytes fed and not consumed yet start at `input[consumed]`.
    input: Vec<u8>,
    consumed: usize,
    /// The current command (or line) as far as it is kept.
    message: Vec<u8>,
    /// Line bytes of the current command seen so far, kept or not.
    line_bytes: usize,
    /// Literal bytes announced and accepted for the current command.
    literal_bytes: u64,
    state: State,
    scan: Scan,
    /// The current command was refused and the reader drops its bytes to its end.
    dropping: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    Literal { remaining: u64 },
}

/// Where a line is in spelling a literal announcement (`{123}` or `{123+}` before its ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    Other,
    Open,
    Digits { length: u64, plus: bool },
    Close { length: u64, sync: bool },
    CloseCr { length: u64, sync: bool },
}

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announcement {
    length: u64,
    sync: bool,
}

/// How reading one line ended.
enum LineEnd {
    /// `message` holds the line (unless it was too long).
    Complete {
        announcement: Option<Announcement>,
        too_long: bool,
    },
    NeedMore,
}

impl CommandReader {
    pub fn new(limits: Limits) -> CommandReader {
        CommandReader {
            limits,
            input: Vec::new(),
            consumed: 0,
            message: Vec::new(),
            line_bytes: 0,
            literal_bytes: 0,
            state: State::Line,
            scan: Scan::Other,
            dropping: false,
        }
    }

    /// Changes the limits from the next command on (a login lifts the small ones that hold
    /// before it).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Adds bytes read from the client. Feed only after the reader asked for more (`NeedMore`),
    /// so that at most one read's worth waits here beside the current command.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.consumed == self.input.len() {
            self.input.clear();
            self.consumed = 0;
        } else if self.consumed > 4096 && self.consumed * 2 > self.input.len() {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Whether bytes were fed that no event has consumed yet. After STARTTLS the session must
    /// refuse (or drop) these: they were sent in plain text before the handshake.
    pub fn has_buffered_input(&self) -> bool {
        self.consumed < self.input.len()
    }

    /// Drops bytes fed but not consumed yet (see `has_buffered_input`).
    pub fn discard_buffered_input(&mut self) {
        self.input.clear();
        self.consumed = 0;
    }

    /// Reads on towards the next command.
    pub fn next_command(&mut self) -> CommandEvent {
        loop {
            if let State::Literal { remaining } = self.state {
                let available = self.input.len() - self.consumed;
                let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
                if !self.dropping {
                    self.message
                        .extend_from_slice(&self.input[self.consumed..self.consumed + n]);
                }
                self.consumed += n;
                let remaining = remaining - n as u64;
                if remaining > 0 {
                    self.state = State::Literal { remaining };
                    return CommandEvent::NeedMore;
                }
                self.state = State::Line;
            }
            let LineEnd::Complete {
                announcement,
                too_long,
            } = self.read_line()
            else {
                return CommandEvent::NeedMore;
            };
            if self.dropping || too_long {
                let max = self.limits.line;
                let event =
                    (!self.dropping).then(|| self.error(CommandErrorKind::LineTooLong { max }));
                self.dropping = true;
                match announcement {
                    Some(Announcement {
                        length,
                        sync: false,
                    }) => self.state = State::Literal { remaining: length },
                    _ => self.end_message(),
                }
                match event {
                    Some(event) => return event,
                    None => continue,
                }
            }
            let Some(Announcement { length, sync }) = announcement else {
                let event = match CommandCodec::default().decode(&self.message) {
                    Ok((&[], command)) => CommandEvent::Command(command.into_static()),
                    _ => self.error(CommandErrorKind::Syntax),
                };
                self.end_message();
                return event;
            };
            let max = self.literal_limit();
            if length > max.saturating_sub(self.literal_bytes) {
                let event = self.error(CommandErrorKind::LiteralTooLarge { length, max });
                if sync {
                    self.end_message();
                } else {
                    self.dropping = true;
                    self.state = State::Literal { remaining: length };
                }
                return event;
            }
            self.literal_bytes += length;
            self.state = State::Literal { remaining: length };
            if sync {
                return CommandEvent::SendContinuation;
            }
        }
    }

    /// Reads the line that ends IDLE (RFC 2177): `DONE`. Like `next_authenticate_data`, call it
    /// only between commands (after `next_command` returned the command that started the state).
    pub fn next_idle_done(&mut self) -> LineEvent<()> {
        self.next_line(|line| IdleDoneCodec::default().decode(line).ok().map(|_| ()))
    }

    /// Reads a client's answer to an AUTHENTICATE challenge: base64 data, or `*` to cancel.
    pub fn next_authenticate_data(&mut self) -> LineEvent<AuthenticateData<'static>> {
        self.next_line(|line| {
            AuthenticateDataCodec::default()
                .decode(line)
                .ok()
                .map(|(_, data)| data.into_static())
        })
    }

    fn next_line<T>(&mut self, decode: impl FnOnce(&[u8]) -> Option<T>) -> LineEvent<T> {
        let LineEnd::Complete { too_long, .. } = self.read_line() else {
            return LineEvent::NeedMore;
        };
        let event = if too_long {
            let max = self.limits.line;
            LineEvent::Error(CommandError {
                tag: None,
                kind: CommandErrorKind::LineTooLong { max },
            })
        } else {
            match decode(&self.message) {
                Some(value) => LineEvent::Line(value),
                None => LineEvent::Error(CommandError {
                    tag: None,
                    kind: CommandErrorKind::Syntax,
                }),
            }
        };
        self.end_message();
        event
    }

    /// Consumes input through the next '\n', keeping the line in `message` while the command's
    /// line bytes stay within the limit.
    fn read_line(&mut self) -> LineEnd {
        let start = self.consumed;
        let rest = &self.input[start..];
        let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..=end], true),
            None => (rest, false),
        };
        // The '\n' itself is not stepped: the state before it tells whether a literal follows.
        for &byte in &line[..line.len() - usize::from(complete)] {
            self.scan = self.scan.step(byte);
        }
        let room = self.limits.line.saturating_sub(self.line_bytes);
        if !self.dropping {
            self.message
                .extend_from_slice(&line[..line.len().min(room)]);
        }
        self.line_bytes = self.line_bytes.saturating_add(line.len());
        self.consumed += line.len();
        if !complete {
            return LineEnd::NeedMore;
        }
        let announcement = self.scan.announcement();
        self.scan = Scan::Other;
        LineEnd::Complete {
            announcement,
            too_long: self.line_bytes > self.limits.line,
        }
    }

    /// The literal limit of the current command, chosen by its name (the second word).
    fn literal_limit(&self) -> u64 {
        let mut words = self.message.split(|&b| b == b' ');
        let _tag = words.next();
        match words.next() {
            Some(name) if name.eq_ignore_ascii_case(b"APPEND") => self.limits.append_literal,
            _ => self.limits.literal,
        }
    }

    fn error(&self, kind: CommandErrorKind) -> CommandEvent {
        CommandEvent::Error(CommandError {
            tag: leading_tag(&self.message),
            kind,
        })
    }

    /// Forgets the current command; the next byte starts a new one.
    fn end_message(&mut self) {
        // A large APPEND should not pin its buffer for the rest of the session.
        if self.message.capacity() > 2 * self.limits.line {
            self.message = Vec::new();
        } else {
            self.message.clear();
        }
        self.line_bytes = 0;
        self.literal_bytes = 0;
        self.state = State::Line;
        self.dropping = false;
    }
}

/// The tag a command starts with, if it is a valid one followed by a space or the line end.
fn leading_tag(message: &[u8]) -> Option<Tag<'static>> {
    let end = message
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))?;
    Tag::try_from(&message[..end])
        .ok()
        .map(IntoStatic::into_static)
}

impl Scan {
    fn step(self, byte: u8) -> Scan {
        match (self, byte) {
            (_, b'{') => Scan::Open,
            (Scan::Open, b'0'..=b'9') => Scan::Digits {
                length: u64::from(byte - b'0'),
                plus: false,
            },
            (
                Scan::Digits {
                    length,
                    plus: false,
                },
                b'0'..=b'9',
            ) => Scan::Digits {
                length: length
                    .saturating_mul(10)
                    .saturating_add(u64::from(byte - b'0')),
                plus: false,
            },
            (
                Scan::Digits {
                    length,
                    plus: false,
                },
                b'+',
            ) => Scan::Digits { length, plus: true },
            (Scan::Digits { length, plus }, b'}') => Scan::Close {
                length,
                sync: !plus,
            },
            (Scan::Close { length, sync }, b'\r') => Scan::CloseCr { length, sync },
            _ => Scan::Other,
        }
    }

    /// The literal announced by a line that ended (on '\n') in this state. A bare LF after
    /// `{n}` counts too: the client may well send the literal, and it must not be taken for
    /// commands (the command then fails to parse).
    fn announcement(self) -> Option<Announcement> {
        match self {
            Scan::Close { length, sync } | Scan::CloseCr { length, sync } => {
                Some(Announcement { length, sync })
            }
            _ => None,
        }
    }
}
