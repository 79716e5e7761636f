//! SEARCH evaluation (RFC 3501 6.4.4, plus RFC 7162 MODSEQ) over the messages of a selected
//! mailbox, with no I/O: the session hands in each message with its sequence number and summary,
//! and a loader it calls only for keys that need the message's bytes.
//!
//! What each key looks at:
//! - Flags, keywords, size, internal date, UID, sequence number and MODSEQ: the [`Message`].
//! - FROM, TO, CC, BCC, SUBJECT, SENT*, and HEADER of an envelope field (Date, Subject, From,
//!   Sender, Reply-To, To, Cc, Bcc, In-Reply-To, Message-ID): the summary's envelope, so they
//!   never read the blob. Address fields are matched against `name <mailbox@host>` per address
//!   (groups as `name: member, member;`), which is how they read in the header.
//! - BODY, TEXT, and HEADER of any other field: the blob, through the loader, parsed once per
//!   message and only when an earlier key of the same AND did not already rule it out.
//!
//! Strings match as case-insensitive (Unicode lower-case) substrings of decoded text: header
//! values with RFC 2047 encoded words decoded; bodies of text/* parts with base64 and
//! quoted-printable undone and converted from their charset to UTF-8 (mail-parser's decoders).
//! Parts that are not text/* are not searched; an encapsulated message/rfc822 is searched like
//! the outer one (its header and text parts count as body). The caller accepts only the charsets
//! [`charset_supported`] names and answers `NO [BADCHARSET]` otherwise.
//!
//! Dates: BEFORE, ON and SINCE compare the day of the internal date in UTC (the server keeps no
//! time zone per message). SENTBEFORE, SENTON and SENTSINCE compare the day as written in the
//! Date header (its own time zone, as RFC 3501 says to disregard it); an absent or unparsable
//! Date header falls back to the internal date's UTC day.
//!
//! MODSEQ compares the message's one mod-sequence: the server keeps none per flag, so the
//! optional entry name and type are ignored (RFC 7162 3.1.5 allows this).
//!
//! RECENT, NEW and OLD ask the session which messages are `\Recent` in it (see `view.rs`).

use std::borrow::Cow;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderValue, PartType};
use raft_store::calendar::Date;
use raft_store::summary::{Address, Mailbox, MessageSummary};
use raft_store::{Message, flag};

#[cfg(test)]
mod tests;

/// One message of the selected mailbox as SEARCH sees it.
pub type Candidate<'a> = (u32, &'a Message, &'a MessageSummary);

/// Which numbers the answer lists: `SEARCH` answers sequence numbers, `UID SEARCH` UIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    SequenceNumbers,
    Uids,
}

/// Whether SEARCH takes a `CHARSET` argument: UTF-8 and US-ASCII (any case). Any other charset
/// is answered with `NO [BADCHARSET (UTF-8 US-ASCII)]`.
pub fn charset_supported(charset: &str) -> bool {
    charset.eq_ignore_ascii_case("UTF-8") || charset.eq_ignore_ascii_case("US-ASCII")
}

/// The charsets to list in a BADCHARSET response code.
pub const SUPPORTED_CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

/// The numbers (as `answer` says) of the messages of `mailbox` that match all of `criteria` (the
/// keys of one SEARCH command, which are ANDed), in the order
/// of `mailbox` (which should be sequence order). `load` returns a message's raw bytes; it is
/// called at most once per message and only for BODY, TEXT and HEADER of a non-envelope field.
/// Its error stops the search and is returned. `recent` says whether the message of a UID is
/// `\Recent` in the session.
pub fn search<E>(
    criteria: &[SearchKey<'_>],
    mailbox: &[Candidate<'_>],
    answer: Answer,
    recent: &dyn Fn(u32) -> bool,
    mut load: impl FnMut(&Message) -> Result<Vec<u8>, E>,
) -> Result<Vec<u32>, E> {
    let highest = Highest {
        seq: mailbox.iter().map(|c| c.0).max().unwrap_or(0),
        uid: mailbox.iter().map(|c| c.1.uid).max().unwrap_or(0),
    };
    let mut found = Vec::new();
    for &(seq, message, summary) in mailbox {
        let mut target = Target {
            seq,
            message,
            summary,
            highest,
            recent: recent(message.uid),
            content: None,
        };
        if target.matches_all(criteria, &mut load)? {
            found.push(match answer {
                Answer::SequenceNumbers => seq,
                Answer::Uids => message.uid,
            });
        }
    }
    Ok(found)
}

/// What `*` stands for in sequence sets and UID sets.
#[derive(Debug, Clone, Copy)]
struct Highest {
    seq: u32,
    uid: u32,
}

/// The decoded text of a message read from its blob, lower-cased for matching.
struct Content {
    /// Top-level header fields: lower-cased name, decoded lower-cased value.
    headers: Vec<(String, String)>,
    /// Decoded text of every text/* part, and the headers of encapsulated messages.
    bodies: Vec<String>,
}

struct Target<'a> {
    seq: u32,
    message: &'a Message,
    summary: &'a MessageSummary,
    highest: Highest,
    /// `\Recent` in this session.
    recent: bool,
    content: Option<Content>,
}

impl Target<'_> {
    fn matches_all<E>(
        &mut self,
        keys: &[SearchKey<'_>],
        load: &mut impl FnMut(&Message) -> Result<Vec<u8>, E>,
    ) -> Result<bool, E> {
        // Keys answered from the summary first, so a cheap mismatch spares the blob.
        for key in keys.iter().filter(|k| !needs_blob(k)) {
            if !self.matches(key, load)? {
                return Ok(false);
            }
        }
        for key in keys.iter().filter(|k| needs_blob(k)) {
            if !self.matches(key, load)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn matches<E>(
        &mut self,
        key: &SearchKey<'_>,
        load: &mut impl FnMut(&Message) -> Result<Vec<u8>, E>,
    ) -> Result<bool, E> {
        let message = self.message;
        let envelope = &self.summary.envelope;
        Ok(match key {
            SearchKey::And(keys) => self.matches_all(keys.as_ref(), load)?,
            SearchKey::Or(a, b) => {
                let (first, second) = if needs_blob(a) { (b, a) } else { (a, b) };
                self.matches(first, load)? || self.matches(second, load)?
            }
            SearchKey::Not(key) => !self.matches(key, load)?,
            SearchKey::All => true,
            SearchKey::Recent => self.recent,
            SearchKey::New => self.recent && message.flags & flag::SEEN == 0,
            SearchKey::Old => !self.recent,
            SearchKey::SequenceSet(set) => in_set(set, self.seq, self.highest.seq),
            SearchKey::Uid(set) => in_set(set, message.uid, self.highest.uid),
            SearchKey::Answered => message.flags & flag::ANSWERED != 0,
            SearchKey::Deleted => message.flags & flag::DELETED != 0,
            SearchKey::Draft => message.flags & flag::DRAFT != 0,
            SearchKey::Flagged => message.flags & flag::FLAGGED != 0,
            SearchKey::Seen => message.flags & flag::SEEN != 0,
            SearchKey::Unanswered => message.flags & flag::ANSWERED == 0,
            SearchKey::Undeleted => message.flags & flag::DELETED == 0,
            SearchKey::Undraft => message.flags & flag::DRAFT == 0,
            SearchKey::Unflagged => message.flags & flag::FLAGGED == 0,
            SearchKey::Unseen => message.flags & flag::SEEN == 0,
            SearchKey::Keyword(keyword) => has_keyword(message, keyword.as_ref()),
            SearchKey::Unkeyword(keyword) => !has_keyword(message, keyword.as_ref()),
            SearchKey::Larger(n) => message.size > u64::from(*n),
            SearchKey::Smaller(n) => message.size < u64::from(*n),
            SearchKey::Before(date) => internal_day(message) < day_of(date),
            SearchKey::On(date) => internal_day(message) == day_of(date),
            SearchKey::Since(date) => internal_day(message) >= day_of(date),
            SearchKey::SentBefore(date) => self.sent_day() < day_of(date),
            SearchKey::SentOn(date) => self.sent_day() == day_of(date),
            SearchKey::SentSince(date) => self.sent_day() >= day_of(date),
            SearchKey::ModSequence { modseq, .. } => message.modseq >= *modseq,
            SearchKey::From(s) => addresses_contain(&envelope.from, &needle(s)),
            SearchKey::To(s) => addresses_contain(&envelope.to, &needle(s)),
            SearchKey::Cc(s) => addresses_contain(&envelope.cc, &needle(s)),
            SearchKey::Bcc(s) => addresses_contain(&envelope.bcc, &needle(s)),
            SearchKey::Subject(s) => envelope
                .subject
                .as_ref()
                .is_some_and(|subject| decode_header(subject).contains(&needle(s))),
            SearchKey::Header(name, value) => {
                let name = String::from_utf8_lossy(name.as_ref()).to_ascii_lowercase();
                let value = needle(value);
                match self.envelope_header(&name) {
                    Some(values) => values.iter().any(|v| v.contains(&value)),
                    None => self
                        .content(load)?
                        .headers
                        .iter()
                        .any(|(n, v)| *n == name && v.contains(&value)),
                }
            }
            SearchKey::Body(s) => {
                let s = needle(s);
                self.content(load)?.bodies.iter().any(|b| b.contains(&s))
            }
            SearchKey::Text(s) => {
                let s = needle(s);
                let content = self.content(load)?;
                content
                    .headers
                    .iter()
                    .any(|(n, v)| n.contains(&s) || v.contains(&s))
                    || content.bodies.iter().any(|b| b.contains(&s))
            }
        })
    }

    /// The decoded, lower-cased values of an envelope header field (empty when the message has
    /// none), or None when `name` (lower-cased) is not an envelope field.
    fn envelope_header(&self, name: &str) -> Option<Vec<String>> {
        let envelope = &self.summary.envelope;
        let raw = |value: &Option<Vec<u8>>| value.iter().map(|v| decode_header(v)).collect();
        let addresses = |list: &[Address]| match list {
            [] => Vec::new(),
            list => vec![addresses_text(list)],
        };
        Some(match name {
            "date" => raw(&envelope.date),
            "subject" => raw(&envelope.subject),
            "in-reply-to" => raw(&envelope.in_reply_to),
            "message-id" => raw(&envelope.message_id),
            "from" => addresses(&envelope.from),
            "sender" => addresses(&envelope.sender),
            "reply-to" => addresses(&envelope.reply_to),
            "to" => addresses(&envelope.to),
            "cc" => addresses(&envelope.cc),
            "bcc" => addresses(&envelope.bcc),
            _ => return None,
        })
    }

    fn sent_day(&self) -> i64 {
        self.summary
            .envelope
            .date
            .as_deref()
            .and_then(header_day)
            .unwrap_or_else(|| internal_day(self.message))
    }

    fn content<E>(
        &mut self,
        load: &mut impl FnMut(&Message) -> Result<Vec<u8>, E>,
    ) -> Result<&Content, E> {
        if self.content.is_none() {
            let raw = load(self.message)?;
            self.content = Some(read_content(&raw));
        }
        Ok(self.content.as_ref().expect("filled just above"))
    }
}

/// The header fields the summary's envelope holds (HEADER on them reads no blob); every name
/// here has an arm in `Target::envelope_header`.
const ENVELOPE_FIELDS: [&str; 10] = [
    "date",
    "subject",
    "in-reply-to",
    "message-id",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
];

/// Whether evaluating `key` may need the message's bytes.
fn needs_blob(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        SearchKey::Header(name, _) => !ENVELOPE_FIELDS
            .iter()
            .any(|field| field.as_bytes().eq_ignore_ascii_case(name.as_ref())),
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_blob),
        SearchKey::Or(a, b) => needs_blob(a) || needs_blob(b),
        SearchKey::Not(key) => needs_blob(key),
        _ => false,
    }
}

fn in_set(set: &SequenceSet, n: u32, highest: u32) -> bool {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => highest,
    };
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(v) => value(v) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            (a.min(b)..=a.max(b)).contains(&n)
        }
    })
}

fn has_keyword(message: &Message, keyword: &str) -> bool {
    message
        .keywords
        .iter()
        .any(|k| k.eq_ignore_ascii_case(keyword))
}

/// The search string, lower-cased (the caller has checked it is UTF-8 or US-ASCII).
fn needle(s: &AString<'_>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

/// Days since 1970-01-01 of a search date.
fn day_of(date: &NaiveDate) -> i64 {
    // Inherent chrono methods only: node does not depend on chrono itself.
    date.as_ref()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists on every date")
        .and_utc()
        .timestamp()
        .div_euclid(86_400)
}

/// Days since 1970-01-01 of the internal date, in UTC.
fn internal_day(message: &Message) -> i64 {
    message.internal_date.div_euclid(86_400)
}

/// Days since 1970-01-01 of a Date header's calendar date as written, if it parses.
fn header_day(raw: &[u8]) -> Option<i64> {
    let mut line = raw.to_vec();
    line.extend_from_slice(b"\r\n");
    match MessageStream::new(&line).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(
            Date {
                year: i32::from(date.year),
                month: date.month,
                day: date.day,
            }
            .unix_days(),
        ),
        _ => None,
    }
}

/// The instant a Date header names, in seconds since 1970 UTC, if it parses.
pub(crate) fn header_time(raw: &[u8]) -> Option<i64> {
    let mut line = raw.to_vec();
    line.extend_from_slice(b"\r\n");
    match MessageStream::new(&line).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    }
}

/// A header value with RFC 2047 encoded words decoded (and folding removed), lower-cased.
pub(crate) fn decode_header(raw: &[u8]) -> String {
    let mut line = raw.to_vec();
    line.extend_from_slice(b"\r\n");
    let text = match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text,
        _ => Cow::Borrowed(""),
    };
    text.to_lowercase()
}

fn addresses_contain(list: &[Address], needle: &str) -> bool {
    !list.is_empty() && addresses_text(list).contains(needle)
}

/// An address list as it reads in a header, decoded and lower-cased.
fn addresses_text(list: &[Address]) -> String {
    let mut out = String::new();
    for (i, address) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match address {
            Address::Mailbox(mailbox) => push_mailbox(&mut out, mailbox),
            Address::Group { name, members } => {
                out.push_str(&decode_header(name));
                out.push_str(": ");
                for (j, member) in members.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    push_mailbox(&mut out, member);
                }
                out.push(';');
            }
        }
    }
    out
}

fn push_mailbox(out: &mut String, mailbox: &Mailbox) {
    if let Some(name) = &mailbox.name {
        out.push_str(&decode_header(name));
        out.push(' ');
    }
    out.push('<');
    out.push_str(&String::from_utf8_lossy(&mailbox.mailbox).to_lowercase());
    out.push('@');
    out.push_str(&String::from_utf8_lossy(&mailbox.host).to_lowercase());
    out.push('>');
}

fn read_content(raw: &[u8]) -> Content {
    let mut content = Content {
        headers: Vec::new(),
        bodies: Vec::new(),
    };
    match raft_store::summary::parse_mime(raw) {
        Some(parsed) => {
            content.headers = decoded_headers(&parsed);
            push_bodies(&parsed, &mut content.bodies);
        }
        // mail-parser gives up on empty or header-less input (and on some malformed MIME):
        // search the bytes as they are.
        None => content
            .bodies
            .push(String::from_utf8_lossy(raw).to_lowercase()),
    }
    content
}

fn decoded_headers(message: &mail_parser::Message<'_>) -> Vec<(String, String)> {
    message
        .headers_raw()
        .map(|(name, value)| (name.to_ascii_lowercase(), decode_header(value.as_bytes())))
        .collect()
}

fn push_bodies(message: &mail_parser::Message<'_>, bodies: &mut Vec<String>) {
    for part in &message.parts {
        match &part.body {
            PartType::Text(text) | PartType::Html(text) => bodies.push(text.to_lowercase()),
            PartType::Message(inner) => {
                for (name, value) in decoded_headers(inner) {
                    bodies.push(format!("{name}: {value}"));
                }
                push_bodies(inner, bodies);
            }
            PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Multipart(_) => {}
        }
    }
}
