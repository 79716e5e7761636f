//! The per-message summary IMAP needs (envelope, MIME structure, byte offsets of every part's
//! header and body), computed once at delivery so that FETCH ENVELOPE, BODY, BODYSTRUCTURE and
//! header sections never reread or reparse the blob.
//!
//! [`summarize`] parses the raw message with mail-parser for the MIME tree and the offsets, and
//! reads header values from the raw bytes itself, because IMAP wants them as written (RFC 2047
//! encoded words and RFC 2231 parameters stay encoded; 8-bit bytes are sent as literals).
//!
//! Fallbacks, for input that is not valid MIME (it never fails and never panics):
//! - No parse at all (empty input, or mail-parser gives up): one text/plain part; the header is
//!   everything up to the first blank line (all of it when there is none), the body the rest.
//! - Missing or unparsable Content-Type: `TEXT/PLAIN ("CHARSET" "US-ASCII")` (RFC 2045 5.2).
//!   A text/plain part without a charset gets `CHARSET US-ASCII` (RFC 2046 4.1.2).
//! - Content-Type multipart/* that mail-parser did not split (no boundary parameter) or that has
//!   no body part at all (the boundary never appears): a text/plain us-ascii leaf, as RFC 2046
//!   5.1.1 leaves such a body without parts. A missing close delimiter is tolerated: the last part
//!   runs to the end of the enclosing body.
//! - message/rfc822 with a Content-Transfer-Encoding other than 7bit/8bit/binary (forbidden by RFC
//!   2046 5.2.1): it cannot be served by slicing the blob, so it is a leaf (basic body, no
//!   envelope), as Dovecot does.
//! - Missing Content-Transfer-Encoding: "7BIT". Missing header/body separator: the body is empty.
//! - Addresses without a domain get host "MISSING_DOMAIN", without a local part "MISSING_MAILBOX"
//!   (a NIL host would mean group syntax in an IMAP address list).
//!
//! Bounds, because the summary travels in a Raft entry and is stored per blob: nothing in it
//! may grow without limit with what a stranger sends. [`summarize_within`] refuses a message
//! over the cluster's [`MessageLimits`] (MIME parts, nesting depth, header fields and bytes per
//! header section) or whose summary would encode to more than [`MAX_SUMMARY_BYTES`]; SMTP and
//! IMAP APPEND answer that with a clear refusal. [`summarize`], for messages the cluster makes
//! or must take anyway (bounces, a summary record that is missing), applies the hard ceilings
//! ([`MessageLimits::CEILING`]) and summarizes a message over them as one text/plain part, the
//! way Dovecot treats what lies past its MIME limits (CVE-2020-12100).
//!
//! Offsets are the stored bytes. SMTP delivers CRLF, so sizes and sections match the wire; a
//! blob stored with bare LF has sizes of its own bytes (the caller must then convert as it sends).

use std::ops::Range;

use mail_parser::{MessageParser, PartType};
use serde::{Deserialize, Serialize};

/// The deepest nesting of MIME parts any summary holds (the root part is at depth 0).
pub const MAX_DEPTH: u32 = 32;

/// The most a summary may take encoded (bincode, as in the log and the store).
pub const MAX_SUMMARY_BYTES: usize = 2 * 1024 * 1024;

/// How complex a message the cluster takes: part of the replicated mail policy, checked when a
/// message arrives (SMTP DATA, IMAP APPEND), before anything is stored or proposed.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", default)]
pub struct MessageLimits {
    /// MIME parts in the whole message, counting multiparts, encapsulated messages and the
    /// root.
    pub max_mime_parts: u32,
    /// How deep parts may nest (a part of a multipart at the top is at depth 1).
    pub max_mime_depth: u32,
    /// Header fields in any one header section (the message's or a part's).
    pub max_header_fields: u32,
    /// Bytes of any one header section, its blank line included.
    pub max_header_bytes: u32,
}

impl MessageLimits {
    /// The most any limit may be set to; also what [`summarize`] applies.
    pub const CEILING: MessageLimits = MessageLimits {
        max_mime_parts: 10_000,
        max_mime_depth: MAX_DEPTH,
        max_header_fields: 10_000,
        max_header_bytes: 4 * 1024 * 1024,
    };

    /// Whether every limit is between 1 and its ceiling; else why not, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let ceiling = MessageLimits::CEILING;
        for (key, value, max) in [
            (
                "max-mime-parts",
                self.max_mime_parts,
                ceiling.max_mime_parts,
            ),
            (
                "max-mime-depth",
                self.max_mime_depth,
                ceiling.max_mime_depth,
            ),
            (
                "max-header-fields",
                self.max_header_fields,
                ceiling.max_header_fields,
            ),
            (
                "max-header-bytes",
                self.max_header_bytes,
                ceiling.max_header_bytes,
            ),
        ] {
            if value == 0 || value > max {
                return Err(format!("{key} must be between 1 and {max}"));
            }
        }
        Ok(())
    }
}

impl Default for MessageLimits {
    fn default() -> MessageLimits {
        MessageLimits {
            // Real mail stays far below these: a digest of a hundred messages has a few
            // hundred parts, a chain of forwards as attachments a depth of ten.
            max_mime_parts: 1000,
            max_mime_depth: MAX_DEPTH,
            max_header_fields: 1000,
            max_header_bytes: 512 * 1024,
        }
    }
}

/// Which limit a message is over; `Display` is a sentence for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    #[error("the message has more than {max} MIME parts")]
    Parts { max: u32 },
    #[error("the message nests MIME parts more than {max} deep")]
    Depth { max: u32 },
    #[error("a header section of the message has more than {max} fields")]
    HeaderFields { max: u32 },
    #[error("a header section of the message is larger than {max} bytes")]
    HeaderBytes { max: u32 },
    #[error("the message's structure takes more than {max} bytes to describe")]
    Summary { max: usize },
}

/// Everything FETCH needs about one message (or one encapsulated message/rfc822).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub envelope: Envelope,
    pub root: Part,
}

/// The RFC 3501 ENVELOPE fields, raw as in the header (unfolded, outer whitespace trimmed).
/// Sender and reply-to are stored as written; [`envelope`] defaults them to from.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

/// One entry of an address list: a mailbox or a (possibly empty) group of mailboxes.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Mailbox(Mailbox),
    Group {
        name: Vec<u8>,
        members: Vec<Mailbox>,
    },
}

/// An RFC 3501 address: name (raw phrase, quotes removed; for an address written without a
/// phrase, its comment, as Dovecot gives it), source route, local part, domain.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<Vec<u8>>,
    pub adl: Option<Vec<u8>>,
    pub mailbox: Vec<u8>,
    pub host: Vec<u8>,
}

/// One MIME part (the whole message is the root part).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where the part's header starts (for the root: 0).
    pub offset_header: u32,
    /// Where the body starts; the header, with its blank line, is `offset_header..offset_body`.
    pub offset_body: u32,
    /// Where the body ends (before the CRLF that belongs to the next boundary).
    pub offset_end: u32,
    /// Upper-cased media type and subtype, e.g. `TEXT` `PLAIN`.
    pub media_type: Vec<u8>,
    pub media_subtype: Vec<u8>,
    /// Parameters: upper-cased names, raw values (quotes removed).
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    /// Upper-cased Content-Transfer-Encoding; "7BIT" when absent.
    pub encoding: Vec<u8>,
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Disposition>,
    pub language: Vec<Vec<u8>>,
    pub location: Option<Vec<u8>>,
    /// Body lines (LF count, plus one for an unterminated last line); meaningful for text/* and
    /// message/rfc822.
    pub lines: u32,
    pub kind: PartKind,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    Leaf,
    Multipart(Vec<Part>),
    /// message/rfc822 (7bit/8bit/binary): the encapsulated message, offsets in the outer blob.
    Message(Box<MessageSummary>),
}

impl Part {
    /// Body size in octets.
    pub fn size(&self) -> u32 {
        self.offset_end - self.offset_body
    }
    pub fn header_range(&self) -> Range<usize> {
        self.offset_header as usize..self.offset_body as usize
    }
    pub fn body_range(&self) -> Range<usize> {
        self.offset_body as usize..self.offset_end as usize
    }

    /// Whether the part is text/* (BODYSTRUCTURE gives such parts a line count).
    pub fn is_text(&self) -> bool {
        self.media_type == b"TEXT"
    }
}

/// Summarizes a raw RFC 5322 message. Never fails; see the module docs for the fallbacks. A
/// message over [`MessageLimits::CEILING`] is summarized as one text/plain part.
pub fn summarize(raw: &[u8]) -> MessageSummary {
    summarize_within(raw, &MessageLimits::CEILING).unwrap_or_else(|_| unparsed(raw))
}

/// Summarizes a raw RFC 5322 message within `limits`: the summary, or which limit the message
/// is over. The work is bounded by the message size and the limits.
pub fn summarize_within(raw: &[u8], limits: &MessageLimits) -> Result<MessageSummary, TooComplex> {
    // Offsets are u32 (as mail-parser's); larger input is summarized as its first 4 GiB.
    let raw = &raw[..raw.len().min(u32::MAX as usize)];
    let top_header = header_end(raw);
    if top_header > limits.max_header_bytes as usize {
        return Err(TooComplex::HeaderBytes {
            max: limits.max_header_bytes,
        });
    }
    let summary = match parse_mime(raw) {
        Some(message) if !message.parts.is_empty() => {
            let mut walk = Walk {
                raw,
                limits: *limits,
                n_parts: 0,
            };
            let mut summary = walk.message(&message, 0)?;
            // The top-level header always starts at the first byte of the blob.
            summary.root.offset_header = 0;
            summary
        }
        _ => unparsed(raw),
    };
    if crate::encoded_len(&summary) > MAX_SUMMARY_BYTES {
        return Err(TooComplex::Summary {
            max: MAX_SUMMARY_BYTES,
        });
    }
    Ok(summary)
}

impl MessageSummary {
    /// Whether the summary is within the hard ceilings (parts, depth): the state machine's
    /// check on a summary in a committed entry, which no proposer of this build exceeds.
    pub fn within_ceiling(&self) -> bool {
        let mut n_parts = 0u32;
        count_parts(&self.root, 0, &mut n_parts)
    }
}

/// Counts `part` and what it contains into `n_parts`; false once over a ceiling.
fn count_parts(part: &Part, depth: u32, n_parts: &mut u32) -> bool {
    *n_parts += 1;
    if *n_parts > MessageLimits::CEILING.max_mime_parts || depth > MAX_DEPTH {
        return false;
    }
    match &part.kind {
        PartKind::Leaf => true,
        PartKind::Multipart(children) => children
            .iter()
            .all(|child| count_parts(child, depth + 1, n_parts)),
        PartKind::Message(inner) => count_parts(&inner.root, depth + 1, n_parts),
    }
}

/// mail-parser's MIME parse, or None where it gives up or panics: some malformed nestings of
/// multipart and message/rfc822 parts hit an internal assertion of mail-parser 0.11 (found by
/// the `mime_summary` fuzz target). Such input is summarized (and searched) as unparsed bytes
/// rather than taking down the task that met it.
pub fn parse_mime(raw: &[u8]) -> Option<mail_parser::Message<'_>> {
    match std::panic::catch_unwind(|| MessageParser::default().parse(raw)) {
        Ok(parsed) => parsed,
        Err(_) => {
            tracing::warn!(
                size = raw.len(),
                "the MIME parser failed on a message; treated as unstructured"
            );
            None
        }
    }
}

fn unparsed(raw: &[u8]) -> MessageSummary {
    let body = header_end(raw);
    let mut root = leaf_defaults(0, body, raw.len());
    root.lines = count_lines(&raw[body..]);
    MessageSummary {
        envelope: Envelope::default(),
        root,
    }
}

/// Offset just after the blank line ending the header, or the end when there is none.
fn header_end(raw: &[u8]) -> usize {
    let mut line_start = 0;
    while line_start < raw.len() {
        let rest = &raw[line_start..];
        if rest.starts_with(b"\r\n") {
            return line_start + 2;
        }
        if rest.starts_with(b"\n") {
            return line_start + 1;
        }
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => line_start += n + 1,
            None => return raw.len(),
        }
    }
    raw.len()
}

fn leaf_defaults(header: usize, body: usize, end: usize) -> Part {
    Part {
        offset_header: header as u32,
        offset_body: body as u32,
        offset_end: end as u32,
        media_type: b"TEXT".to_vec(),
        media_subtype: b"PLAIN".to_vec(),
        params: vec![(b"CHARSET".to_vec(), b"US-ASCII".to_vec())],
        id: None,
        description: None,
        encoding: b"7BIT".to_vec(),
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
        lines: 0,
        kind: PartKind::Leaf,
    }
}

/// One summary being built: the message, the limits and the parts counted so far.
struct Walk<'a> {
    raw: &'a [u8],
    limits: MessageLimits,
    n_parts: u32,
}

impl Walk<'_> {
    fn message(
        &mut self,
        message: &mail_parser::Message,
        depth: u32,
    ) -> Result<MessageSummary, TooComplex> {
        let raw = self.raw;
        let envelope = match message.parts.first() {
            Some(root) => {
                let fields = |name: &str| header_values(root, raw, name);
                let first = |name: &str| fields(name).into_iter().next();
                let addresses =
                    |name: &str| first(name).map(|v| parse_addresses(&v)).unwrap_or_default();
                Envelope {
                    date: first("Date"),
                    subject: first("Subject"),
                    from: addresses("From"),
                    sender: addresses("Sender"),
                    reply_to: addresses("Reply-To"),
                    to: addresses("To"),
                    cc: addresses("Cc"),
                    bcc: addresses("Bcc"),
                    in_reply_to: first("In-Reply-To"),
                    message_id: first("Message-ID"),
                }
            }
            None => Envelope::default(),
        };
        Ok(MessageSummary {
            envelope,
            root: self.part(message, 0, depth)?,
        })
    }

    fn part(
        &mut self,
        message: &mail_parser::Message,
        id: usize,
        depth: u32,
    ) -> Result<Part, TooComplex> {
        let raw = self.raw;
        let len = raw.len();
        self.n_parts += 1;
        if self.n_parts > self.limits.max_mime_parts {
            return Err(TooComplex::Parts {
                max: self.limits.max_mime_parts,
            });
        }
        let Some(part) = message.parts.get(id) else {
            return Ok(leaf_defaults(len, len, len));
        };
        let header = (part.offset_header as usize).min(len);
        let body = (part.offset_body as usize).clamp(header, len);
        let end = (part.offset_end as usize).clamp(body, len);
        if part.headers.len() > self.limits.max_header_fields as usize {
            return Err(TooComplex::HeaderFields {
                max: self.limits.max_header_fields,
            });
        }
        if body - header > self.limits.max_header_bytes as usize {
            return Err(TooComplex::HeaderBytes {
                max: self.limits.max_header_bytes,
            });
        }
        let mut summary = leaf_defaults(header, body, end);

        let first = |name: &str| header_values(part, raw, name).into_iter().next();
        let content_type = first("Content-Type").and_then(|v| parse_content_type(&v));
        summary.id = first("Content-ID");
        summary.description = first("Content-Description");
        if let Some(encoding) = first("Content-Transfer-Encoding").filter(|e| !e.is_empty()) {
            summary.encoding = encoding.to_ascii_uppercase();
        }
        summary.md5 = first("Content-MD5");
        summary.disposition = first("Content-Disposition").and_then(|v| {
            let mut lexer = Lexer::new(&v);
            let kind = lexer.token()?;
            Some(Disposition {
                kind: kind.to_ascii_uppercase(),
                params: lexer.params(),
            })
        });
        if let Some(language) = first("Content-Language") {
            summary.language = language
                .split(|&b| b == b',')
                .map(|l| trim(l).to_vec())
                .filter(|l| !l.is_empty())
                .collect();
        }
        summary.location = first("Content-Location");

        let declared =
            content_type.map(|(t, s, p)| (t.to_ascii_uppercase(), s.to_ascii_uppercase(), p));
        let too_deep = depth >= self.limits.max_mime_depth.min(MAX_DEPTH);
        match &part.body {
            PartType::Multipart(ids) => {
                // mail-parser numbers parts in the order it meets them, so a real child comes
                // after its parent and lies inside its body. Malformed input can make its part
                // list point back up (a cycle, found by the mime_summary fuzz target): such
                // "children" are left out rather than summarized again and again.
                let inside = |child: &mail_parser::MessagePart| {
                    child.offset_header as usize >= body && child.offset_end as usize <= end
                };
                let ids: Vec<usize> = ids
                    .iter()
                    .map(|&child| child as usize)
                    .filter(|&child| child > id)
                    .filter(|&child| message.parts.get(child).is_some_and(inside))
                    .collect();
                if !ids.is_empty() {
                    if too_deep {
                        return Err(TooComplex::Depth {
                            max: self.limits.max_mime_depth,
                        });
                    }
                    let mut children = Vec::with_capacity(ids.len());
                    for child in ids {
                        children.push(self.part(message, child, depth + 1)?);
                    }
                    summary.media_type = b"MULTIPART".to_vec();
                    summary.params.clear();
                    summary.media_subtype = b"MIXED".to_vec();
                    if let Some((t, s, p)) = declared {
                        if t == b"MULTIPART" {
                            summary.media_subtype = s;
                        }
                        summary.params = p;
                    }
                    summary.kind = PartKind::Multipart(children);
                    return Ok(summary);
                }
            }
            PartType::Message(inner)
                if inner.raw_message.as_ptr() == raw.as_ptr()
                    && inner.raw_message.len() == raw.len()
                    && !inner.parts.is_empty() =>
            {
                if too_deep {
                    return Err(TooComplex::Depth {
                        max: self.limits.max_mime_depth,
                    });
                }
                let mut inner_summary = self.message(inner, depth + 1)?;
                // The encapsulated message is all of this part's body: its header starts
                // where the body does, and it ends where the body ends.
                inner_summary.root.offset_header = body as u32;
                extend_to(&mut inner_summary.root, end, raw);
                summary.media_type = b"MESSAGE".to_vec();
                summary.media_subtype = b"RFC822".to_vec();
                summary.params.clear();
                if let Some((t, s, p)) = declared {
                    if t == b"MESSAGE" {
                        summary.media_subtype = s;
                    }
                    summary.params = p;
                }
                summary.lines = count_lines(&raw[body..end]);
                summary.kind = PartKind::Message(Box::new(inner_summary));
                return Ok(summary);
            }
            _ => {}
        }
        // A leaf.
        if let Some((t, s, p)) = declared
            && t != b"MULTIPART"
        {
            summary.media_type = t;
            summary.media_subtype = s;
            summary.params = p;
            if summary.media_type == b"TEXT"
                && summary.media_subtype == b"PLAIN"
                && !summary.params.iter().any(|(n, _)| n == b"CHARSET")
            {
                summary
                    .params
                    .push((b"CHARSET".to_vec(), b"US-ASCII".to_vec()));
            }
        }
        summary.lines = count_lines(&raw[body..end]);
        Ok(summary)
    }
}

/// Makes an encapsulated message's root `part` end at `end`, where the body holding it ends
/// (RFC 2046 5.2.1: the encapsulated message is that whole body). mail-parser ends a multipart
/// at its close delimiter when no outer boundary follows (a message that is one message/rfc822
/// part), which would leave its epilogue out of the TEXT, the size and the lines of the
/// encapsulated message and of the message/rfc822 parts inside it.
fn extend_to(part: &mut Part, end: usize, raw: &[u8]) {
    if part.offset_end as usize >= end {
        return;
    }
    part.offset_end = end as u32;
    // Offsets come from parsing untrusted bytes: a body that does not lie before `end` counts
    // no lines rather than panicking.
    let lines = raw
        .get(part.offset_body as usize..end)
        .map_or(0, count_lines);
    match &mut part.kind {
        // A multipart's own line count is not shown; its children keep their ends.
        PartKind::Multipart(_) => {}
        PartKind::Leaf => part.lines = lines,
        PartKind::Message(inner) => {
            part.lines = lines;
            extend_to(&mut inner.root, end, raw);
        }
    }
}

/// Raw, unfolded, trimmed values of every header field called `name` in `part`.
fn header_values(part: &mail_parser::MessagePart, raw: &[u8], name: &str) -> Vec<Vec<u8>> {
    part.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .filter_map(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .map(unfold)
        .collect()
}

/// Removes folding (CR and LF) and surrounding whitespace.
fn unfold(value: &[u8]) -> Vec<u8> {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    trim(&unfolded).to_vec()
}

/// `s` without leading and trailing spaces and tabs.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn count_lines(body: &[u8]) -> u32 {
    let lf = body.iter().filter(|&&b| b == b'\n').count();
    let unterminated = usize::from(body.last().is_some_and(|&b| b != b'\n'));
    (lf + unterminated).min(u32::MAX as usize) as u32
}

/// `type "/" subtype *(";" parameter)`; None when type or subtype is missing.
type ContentType = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let mut lexer = Lexer::new(value);
    let media_type = lexer.token()?;
    lexer.skip_cfws();
    if !lexer.eat(b'/') {
        return None;
    }
    let subtype = lexer.token()?;
    Some((media_type, subtype, lexer.params()))
}

/// A lenient RFC 2045 / RFC 5322 lexer over one unfolded header value.
struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_mime_special(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn is_rfc5322_special(b: u8) -> bool {
    b <= b' ' || b == 0x7f || b"()<>@,;:\\\".[]".contains(&b)
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer { s, i: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace and (nested) comments; returns the text of the last comment skipped.
    fn skip_cfws(&mut self) -> Option<Vec<u8>> {
        let mut last = None;
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => last = Some(self.comment()),
                _ => break,
            }
        }
        last
    }

    /// The comment starting at the cursor (which is on the `(`), to its matching `)` or the
    /// end: its text without the outer parentheses, nested ones kept, quoted pairs undone
    /// (as Dovecot reads a comment it makes a display name of).
    fn comment(&mut self) -> Vec<u8> {
        let mut text = Vec::new();
        let mut level = 0usize;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        text.push(escaped);
                        self.i += 1;
                    }
                }
                b'(' => {
                    level += 1;
                    if level > 1 {
                        text.push(b);
                    }
                }
                b')' => {
                    level -= 1;
                    if level == 0 {
                        break;
                    }
                    text.push(b);
                }
                _ => text.push(b),
            }
        }
        text
    }

    fn run(&mut self, special: fn(u8) -> bool) -> Option<Vec<u8>> {
        self.skip_cfws();
        let start = self.i;
        while self.peek().is_some_and(|b| !special(b)) {
            self.i += 1;
        }
        (self.i > start).then(|| self.s[start..self.i].to_vec())
    }

    fn token(&mut self) -> Option<Vec<u8>> {
        self.run(is_mime_special)
    }

    /// The content of a quoted string starting at the cursor (which is on the `"`).
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        out.push(escaped);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// `*(";" attribute "=" value)`, skipping anything unparsable up to the next `;`.
    fn params(&mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            let Some(b) = self.peek() else { break };
            if b == b';' {
                self.i += 1;
                continue;
            }
            let Some(name) = self.token() else {
                self.i += 1;
                continue;
            };
            self.skip_cfws();
            if !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                self.token().unwrap_or_default()
            };
            params.push((name.to_ascii_uppercase(), value));
        }
        params
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Atom(Vec<u8>),
    Quoted(Vec<u8>),
    Special(u8),
}

/// The tokens of an address list, and beside each the last comment that follows it (before
/// the next token), which names an address written without a phrase.
fn tokenize_addresses(value: &[u8]) -> (Vec<Tok>, Vec<Option<Vec<u8>>>) {
    let mut lexer = Lexer::new(value);
    let mut toks = Vec::new();
    let mut comments = Vec::new();
    loop {
        // A comment before the first token follows nothing.
        if let Some(comment) = lexer.skip_cfws()
            && let Some(after_last) = comments.last_mut()
        {
            *after_last = Some(comment);
        }
        let Some(b) = lexer.peek() else { break };
        match b {
            b'"' => toks.push(Tok::Quoted(lexer.quoted())),
            b'[' => {
                let start = lexer.i;
                while lexer.peek().is_some_and(|b| b != b']') {
                    lexer.i += 1;
                }
                lexer.eat(b']');
                toks.push(Tok::Atom(value[start..lexer.i].to_vec()));
            }
            _ if is_rfc5322_special(b) => {
                lexer.i += 1;
                toks.push(Tok::Special(b));
            }
            _ => {
                if let Some(atom) = lexer.run(is_rfc5322_special) {
                    toks.push(Tok::Atom(atom));
                }
            }
        }
        comments.resize(toks.len(), None);
    }
    (toks, comments)
}

fn is_word(tok: &Tok) -> bool {
    matches!(tok, Tok::Atom(_) | Tok::Quoted(_) | Tok::Special(b'.'))
}

/// A display name: words separated by one space, quotes removed, "." glued to the word before.
fn phrase(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for tok in toks {
        match tok {
            Tok::Atom(w) | Tok::Quoted(w) => {
                if !out.is_empty() {
                    out.push(b' ');
                }
                out.extend_from_slice(w);
            }
            Tok::Special(b) => out.push(*b),
        }
    }
    out
}

/// A local part or domain: tokens concatenated.
fn joined(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for tok in toks {
        match tok {
            Tok::Atom(w) | Tok::Quoted(w) => out.extend_from_slice(w),
            Tok::Special(b) => out.push(*b),
        }
    }
    out
}

fn mailbox(name: Option<Vec<u8>>, adl: Option<Vec<u8>>, local: Vec<u8>, host: Vec<u8>) -> Mailbox {
    Mailbox {
        name: name.filter(|n| !n.is_empty()),
        adl: adl.filter(|a| !a.is_empty()),
        mailbox: if local.is_empty() {
            b"MISSING_MAILBOX".to_vec()
        } else {
            local
        },
        host: if host.is_empty() {
            b"MISSING_DOMAIN".to_vec()
        } else {
            host
        },
    }
}

/// Parses an RFC 5322 address list leniently (obsolete routes, groups, junk skipped).
fn parse_addresses(value: &[u8]) -> Vec<Address> {
    let (toks, comments) = tokenize_addresses(value);
    // An address written without a phrase (`user@domain (Real Name)`) takes the last comment
    // in or after its addr-spec as its display name, as Dovecot does; `<addr> (comment)` and
    // `phrase <addr>` do not.
    let comment_name = |range: Range<usize>| comments[range].iter().rev().find_map(Clone::clone);
    let mut out = Vec::new();
    let mut group: Option<(Vec<u8>, Vec<Mailbox>)> = None;
    let mut i = 0;
    while i < toks.len() {
        let start = i;
        while i < toks.len() && is_word(&toks[i]) {
            i += 1;
        }
        let words = &toks[start..i];
        let found = match toks.get(i) {
            Some(Tok::Special(b':')) if group.is_none() => {
                i += 1;
                group = Some((phrase(words), Vec::new()));
                continue;
            }
            Some(Tok::Special(b'<')) => {
                i += 1;
                let inner_start = i;
                while i < toks.len() && toks[i] != Tok::Special(b'>') {
                    i += 1;
                }
                let mut inner = &toks[inner_start..i];
                i += 1;
                let mut adl = None;
                if inner.first() == Some(&Tok::Special(b'@'))
                    && let Some(colon) = inner.iter().position(|t| *t == Tok::Special(b':'))
                {
                    adl = Some(joined(&inner[..colon]));
                    inner = &inner[colon + 1..];
                }
                let (local, host) = match inner.iter().rposition(|t| *t == Tok::Special(b'@')) {
                    Some(at) => (joined(&inner[..at]), joined(&inner[at + 1..])),
                    None => (joined(inner), Vec::new()),
                };
                if local.is_empty() && host.is_empty() {
                    None
                } else {
                    Some(mailbox(Some(phrase(words)), adl, local, host))
                }
            }
            Some(Tok::Special(b'@')) => {
                i += 1;
                let domain_start = i;
                while i < toks.len() && matches!(toks[i], Tok::Atom(_) | Tok::Special(b'.')) {
                    i += 1;
                }
                Some(mailbox(
                    comment_name(start..i),
                    None,
                    joined(words),
                    joined(&toks[domain_start..i]),
                ))
            }
            _ => (!words.is_empty())
                .then(|| mailbox(comment_name(start..i), None, joined(words), Vec::new())),
        };
        if let Some(found) = found {
            match &mut group {
                Some((_, members)) => members.push(found),
                None => out.push(Address::Mailbox(found)),
            }
        }
        match toks.get(i) {
            Some(Tok::Special(b';')) => {
                i += 1;
                if let Some((name, members)) = group.take() {
                    out.push(Address::Group { name, members });
                }
            }
            Some(Tok::Special(b'<')) => {}
            Some(_) => i += 1,
            None => {}
        }
    }
    if let Some((name, members)) = group {
        out.push(Address::Group { name, members });
    }
    out
}
