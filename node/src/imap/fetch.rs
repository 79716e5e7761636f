//! The untagged FETCH response for one message (RFC 3501 6.4.5 and 7.4.2, RFC 3516 BINARY,
//! RFC 7162 MODSEQ), built from the stored message, its summary and, only when a requested item
//! needs message bytes, the blob. No I/O: the blob comes through a loader called at most once.
//!
//! Choices where the RFCs leave room:
//! - A section that does not exist (`BODY[1.5]` of a message without that part, `BODY[1.TEXT]` of
//!   a leaf) is answered `NIL`: the response grammar makes it an nstring, RFC 3501 gives no other
//!   meaning to NIL there, and Dovecot and Gmail answer the same, so a client can tell a missing
//!   part from an empty one. An existing but empty section, or a partial fetch whose origin lies
//!   past its end, is the empty string `""`.
//! - Non-empty contents always go out as literals (`{n}\r\n...`), never as quoted strings, so no
//!   byte needs escaping. BINARY contents containing NUL go out as literal8 (`~{n}`).
//! - Items are answered in the order requested. UID (for UID FETCH) is put first when not
//!   requested; FLAGS (after an implicit `\Seen`) and MODSEQ (with CONDSTORE enabled) are added
//!   at the end when not requested. A repeated item is answered once.

use std::io;
use std::num::NonZeroU32;
use std::sync::Arc;

use base64::Engine;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItemName, Part as SectionPath, Section,
};
use raft_store::summary::{MessageSummary, PartKind};

use crate::imap::render::{self, SectionPart};
use raft_store::{Message, flag};

/// How the session wants the response built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchOptions {
    /// The command was UID FETCH: UID is always included (RFC 3501 6.4.8).
    pub uid: bool,
    /// The client enabled CONDSTORE (or QRESYNC): MODSEQ is always included (RFC 7162 3.1.4.1).
    pub condstore: bool,
    /// The mailbox was opened with EXAMINE: nothing sets `\Seen` (RFC 3501 6.3.2).
    pub read_only: bool,
    /// This message's flags changed as a side effect of this command (the session already
    /// stored an implicit `\Seen` and passes the updated message): include FLAGS.
    pub flags_changed: bool,
    /// The message is `\Recent` in this session: FLAGS shows it.
    pub recent: bool,
}

/// One `* n FETCH (...)` line, with its literals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutput {
    /// The whole untagged response, ending in CRLF.
    pub response: Vec<u8>,
    /// The fetch implicitly sets `\Seen` on a message that lacks it (and the mailbox is
    /// writable). The response already shows FLAGS with `\Seen`; the session must store it.
    pub sets_seen: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The loader failed; the session answers NO (or BYE when the store is gone).
    #[error("read message blob")]
    Blob(#[source] io::Error),
    /// The blob is not as long as the message record says, or does not hold the bytes its
    /// summary points at: storage corruption.
    #[error("blob is {len} bytes but should be {needed}")]
    BlobTooShort { len: usize, needed: usize },
    /// BINARY of a part whose Content-Transfer-Encoding cannot be decoded: the session answers
    /// `NO [UNKNOWN-CTE]` (RFC 3516 4.3).
    #[error("unknown content-transfer-encoding {encoding:?}")]
    UnknownCte { encoding: String },
}

/// The data items a FETCH command names, with macros expanded (RFC 3501 6.4.5).
pub fn expand<'a>(items: &'a MacroOrMessageDataItemNames<'a>) -> Vec<MessageDataItemName<'a>> {
    match items {
        MacroOrMessageDataItemNames::Macro(m) => m.expand(),
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items.clone(),
    }
}

/// Whether fetching `items` sets `\Seen`: BODY[...] and BINARY[...] without .PEEK, RFC822 and
/// RFC822.TEXT do; RFC822.HEADER, the .PEEK forms and BINARY.SIZE do not.
pub fn marks_seen(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|item| match item {
        MessageDataItemName::BodyExt { peek, .. } | MessageDataItemName::Binary { peek, .. } => {
            !peek
        }
        MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => true,
        _ => false,
    })
}

/// Whether answering `items` reads the message's bytes (the summary answers the rest).
pub fn needs_blob(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|item| {
        matches!(
            item,
            MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Header
                | MessageDataItemName::Rfc822Text
                | MessageDataItemName::BodyExt { .. }
                | MessageDataItemName::Binary { .. }
                | MessageDataItemName::BinarySize { .. }
        )
    })
}

/// Whether answering `items` needs the message's summary. Without it the caller may pass any
/// summary (an empty one): flags, UID, size, dates and the whole message (BODY[], RFC822,
/// BINARY[]) come from the message record and the blob.
pub fn needs_summary(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|item| match item {
        MessageDataItemName::Envelope
        | MessageDataItemName::Body
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Rfc822Header
        | MessageDataItemName::Rfc822Text => true,
        MessageDataItemName::BodyExt { section, .. } => section.is_some(),
        MessageDataItemName::Binary { section, .. }
        | MessageDataItemName::BinarySize { section } => !section.is_empty(),
        _ => false,
    })
}

/// Builds `* <seq> FETCH (...)\r\n` for `message`. `blob` is called at most once, and only when
/// an item needs message bytes (ENVELOPE, BODY, BODYSTRUCTURE, FLAGS and the like never do).
pub fn fetch_response(
    seq: u32,
    message: &Message,
    summary: &MessageSummary,
    items: &[MessageDataItemName<'_>],
    blob: impl FnOnce() -> io::Result<Arc<Vec<u8>>>,
    options: FetchOptions,
) -> Result<FetchOutput, FetchError> {
    let sets_seen = !options.read_only && marks_seen(items) && message.flags & flag::SEEN == 0;
    let mut flags = message.flags;
    if sets_seen {
        flags |= flag::SEEN;
    }

    let mut wanted: Vec<&MessageDataItemName<'_>> = Vec::with_capacity(items.len() + 3);
    let uid = MessageDataItemName::Uid;
    let flags_item = MessageDataItemName::Flags;
    let modseq = MessageDataItemName::ModSeq;
    let extra_flags = sets_seen || options.flags_changed;
    let chosen = options
        .uid
        .then_some(&uid)
        .into_iter()
        .chain(items)
        .chain(extra_flags.then_some(&flags_item))
        .chain(options.condstore.then_some(&modseq));
    for item in chosen {
        if !wanted.contains(&item) {
            wanted.push(item);
        }
    }

    let mut loader = Some(blob);
    let mut loaded: Option<Arc<Vec<u8>>> = None;
    let mut raw = || -> Result<Arc<Vec<u8>>, FetchError> {
        if let Some(raw) = &loaded {
            return Ok(raw.clone());
        }
        let load = loader
            .take()
            .expect("the loader is taken only when nothing is loaded");
        let raw = load().map_err(FetchError::Blob)?;
        // The record's size is what was stored: a blob of another length is damaged.
        if raw.len() as u64 != message.size {
            return Err(FetchError::BlobTooShort {
                len: raw.len(),
                needed: usize::try_from(message.size).unwrap_or(usize::MAX),
            });
        }
        loaded = Some(raw.clone());
        Ok(raw)
    };

    let mut out = format!("* {seq} FETCH (").into_bytes();
    for (i, item) in wanted.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match item {
            MessageDataItemName::Uid => {
                out.extend_from_slice(format!("UID {}", message.uid).as_bytes())
            }
            MessageDataItemName::Flags => {
                out.extend_from_slice(b"FLAGS ");
                write_flags(&mut out, flags, options.recent, &message.keywords);
            }
            MessageDataItemName::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE \"");
                out.extend_from_slice(internal_date(message.internal_date).as_bytes());
                out.push(b'"');
            }
            MessageDataItemName::Rfc822Size => {
                out.extend_from_slice(format!("RFC822.SIZE {}", message.size).as_bytes())
            }
            MessageDataItemName::ModSeq => {
                out.extend_from_slice(format!("MODSEQ ({})", message.modseq).as_bytes())
            }
            MessageDataItemName::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                out.extend_from_slice(&render::envelope(summary));
            }
            MessageDataItemName::Body => {
                out.extend_from_slice(b"BODY ");
                out.extend_from_slice(&render::body_structure(summary, false));
            }
            MessageDataItemName::BodyStructure => {
                out.extend_from_slice(b"BODYSTRUCTURE ");
                out.extend_from_slice(&render::body_structure(summary, true));
            }
            MessageDataItemName::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                write_nstring(&mut out, Some(&raw()?));
            }
            MessageDataItemName::Rfc822Header => {
                out.extend_from_slice(b"RFC822.HEADER ");
                let data = slice(&raw()?, summary, &[], SectionPart::Header)?;
                write_nstring(&mut out, data.as_deref());
            }
            MessageDataItemName::Rfc822Text => {
                out.extend_from_slice(b"RFC822.TEXT ");
                let data = slice(&raw()?, summary, &[], SectionPart::Text)?;
                write_nstring(&mut out, data.as_deref());
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section(&mut out, section.as_ref());
                out.push(b']');
                let data = body_section(&raw()?, summary, section.as_ref())?;
                write_partial(&mut out, data.as_deref(), *partial, false);
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BINARY[");
                write_path(&mut out, section);
                out.push(b']');
                let data = binary_section(&raw()?, summary, section)?;
                write_partial(&mut out, data.as_deref(), *partial, true);
            }
            MessageDataItemName::BinarySize { section } => {
                out.extend_from_slice(b"BINARY.SIZE[");
                write_path(&mut out, section);
                out.push(b']');
                match binary_section(&raw()?, summary, section)? {
                    Some(data) => out.extend_from_slice(format!(" {}", data.len()).as_bytes()),
                    None => out.extend_from_slice(b" NIL"),
                }
            }
        }
    }
    out.extend_from_slice(b")\r\n");
    Ok(FetchOutput {
        response: out,
        sets_seen,
    })
}

/// `dd-Mon-yyyy hh:mm:ss +0000` for a unix time, in UTC.
pub fn internal_date(unix_secs: i64) -> String {
    let time = raft_store::calendar::DateTime::from_unix(unix_secs);
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} +0000",
        time.date.day,
        time.date.month_name(),
        time.date.year,
        time.hour,
        time.minute,
        time.second
    )
}

/// A flag list: `(\Seen \Flagged keyword ...)`, with `\Recent` when `recent`.
pub(crate) fn write_flags(out: &mut Vec<u8>, flags: u8, recent: bool, keywords: &[String]) {
    const SYSTEM: [(u8, &str); 5] = [
        (flag::SEEN, "\\Seen"),
        (flag::ANSWERED, "\\Answered"),
        (flag::FLAGGED, "\\Flagged"),
        (flag::DELETED, "\\Deleted"),
        (flag::DRAFT, "\\Draft"),
    ];
    let names = SYSTEM
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .chain(recent.then_some("\\Recent"))
        .chain(keywords.iter().map(String::as_str));
    out.push(b'(');
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b')');
}

fn path_of(part: Option<&SectionPath>) -> Vec<u32> {
    part.map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
        .unwrap_or_default()
}

/// The bytes of `raw` the summary gives for a section; None when the section does not exist.
fn slice(
    raw: &[u8],
    summary: &MessageSummary,
    path: &[u32],
    part: SectionPart,
) -> Result<Option<Vec<u8>>, FetchError> {
    let Some(range) = render::section(summary, path, part) else {
        return Ok(None);
    };
    match raw.get(range.clone()) {
        Some(bytes) => Ok(Some(bytes.to_vec())),
        None => Err(FetchError::BlobTooShort {
            len: raw.len(),
            needed: range.end,
        }),
    }
}

fn body_section(
    raw: &[u8],
    summary: &MessageSummary,
    section: Option<&Section<'_>>,
) -> Result<Option<Vec<u8>>, FetchError> {
    let filtered = |part: Option<&SectionPath>, names: &[AString<'_>], not: bool| {
        let header = slice(raw, summary, &path_of(part), SectionPart::Header)?;
        let names: Vec<&[u8]> = names.iter().map(|n| n.as_ref()).collect();
        Ok(header.map(|h| render::filter_header_fields(&h, &names, not)))
    };
    match section {
        // The whole message is the blob, whatever its parse.
        None => Ok(Some(raw.to_vec())),
        Some(Section::Part(p)) => slice(raw, summary, &path_of(Some(p)), SectionPart::Full),
        Some(Section::Header(p)) => slice(raw, summary, &path_of(p.as_ref()), SectionPart::Header),
        Some(Section::Text(p)) => slice(raw, summary, &path_of(p.as_ref()), SectionPart::Text),
        Some(Section::Mime(p)) => slice(raw, summary, &path_of(Some(p)), SectionPart::Mime),
        Some(Section::HeaderFields(p, names)) => filtered(p.as_ref(), names.as_ref(), false),
        Some(Section::HeaderFieldsNot(p, names)) => filtered(p.as_ref(), names.as_ref(), true),
    }
}

/// BINARY[path]: the part's body with its Content-Transfer-Encoding removed. An empty path is
/// the whole message, unchanged (RFC 3516 4.2).
fn binary_section(
    raw: &[u8],
    summary: &MessageSummary,
    path: &[NonZeroU32],
) -> Result<Option<Vec<u8>>, FetchError> {
    let path: Vec<u32> = path.iter().map(|n| n.get()).collect();
    if path.is_empty() {
        return Ok(Some(raw.to_vec()));
    }
    let Some(part) = find_part(summary, &path) else {
        return Ok(None);
    };
    let Some(body) = slice(raw, summary, &path, SectionPart::Full)? else {
        return Ok(None);
    };
    match part.encoding.as_slice() {
        b"7BIT" | b"8BIT" | b"BINARY" => Ok(Some(body)),
        b"BASE64" if matches!(part.kind, PartKind::Leaf) => decode_base64(&body).map(Some),
        b"QUOTED-PRINTABLE" if matches!(part.kind, PartKind::Leaf) => {
            Ok(Some(decode_quoted_printable(&body)))
        }
        other => Err(FetchError::UnknownCte {
            encoding: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}

/// The part a non-empty section path names, walking as [`render::section`] does.
fn find_part<'s>(
    summary: &'s MessageSummary,
    path: &[u32],
) -> Option<&'s raft_store::summary::Part> {
    let select = |message: &'s MessageSummary, n: u32| match &message.root.kind {
        PartKind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
        _ => (n == 1).then_some(&message.root),
    };
    let mut current = select(summary, *path.first()?)?;
    for &n in &path[1..] {
        current = match &current.kind {
            PartKind::Multipart(children) => children.get((n as usize).checked_sub(1)?)?,
            PartKind::Message(inner) => select(inner, n)?,
            PartKind::Leaf => return None,
        };
    }
    Some(current)
}

fn decode_base64(body: &[u8]) -> Result<Vec<u8>, FetchError> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(&compact).map_err(|_| FetchError::UnknownCte {
        encoding: "BASE64".to_owned(),
    })
}

/// RFC 2045 6.7, leniently: a malformed `=` escape is kept as written.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (content, eol) = match line {
            [rest @ .., b'\r', b'\n'] => (rest, &b"\r\n"[..]),
            [rest @ .., b'\n'] => (rest, &b"\n"[..]),
            rest => (rest, &b""[..]),
        };
        // Trailing whitespace is added in transport and removed on decoding.
        let mut content = content;
        while let [rest @ .., b' ' | b'\t'] = content {
            content = rest;
        }
        let soft_break = content.last() == Some(&b'=');
        if soft_break {
            content = &content[..content.len() - 1];
        }
        let mut i = 0;
        while i < content.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match content[i..] {
                [b'=', hi, lo, ..] if hex(hi).is_some() && hex(lo).is_some() => {
                    let value = hex(hi).expect("checked") * 16 + hex(lo).expect("checked");
                    out.push(value as u8);
                    i += 3;
                }
                _ => {
                    out.push(content[i]);
                    i += 1;
                }
            }
        }
        if !soft_break {
            out.extend_from_slice(eol);
        }
    }
    out
}

fn write_path(out: &mut Vec<u8>, path: &[NonZeroU32]) {
    for (i, n) in path.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(n.to_string().as_bytes());
    }
}

/// The section spec as the response names it, e.g. `1.2.HEADER.FIELDS (From To)`.
fn write_section(out: &mut Vec<u8>, section: Option<&Section<'_>>) {
    let (part, text): (Option<&SectionPath>, &str) = match section {
        None => return,
        Some(Section::Part(p)) => (Some(p), ""),
        Some(Section::Header(p)) => (p.as_ref(), "HEADER"),
        Some(Section::HeaderFields(p, _)) => (p.as_ref(), "HEADER.FIELDS"),
        Some(Section::HeaderFieldsNot(p, _)) => (p.as_ref(), "HEADER.FIELDS.NOT"),
        Some(Section::Text(p)) => (p.as_ref(), "TEXT"),
        Some(Section::Mime(p)) => (Some(p), "MIME"),
    };
    if let Some(part) = part {
        write_path(out, part.0.as_ref());
        if !text.is_empty() {
            out.push(b'.');
        }
    }
    out.extend_from_slice(text.as_bytes());
    if let Some(Section::HeaderFields(_, names) | Section::HeaderFieldsNot(_, names)) = section {
        out.extend_from_slice(b" (");
        for (i, name) in names.as_ref().iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, name.as_ref());
        }
        out.push(b')');
    }
}

fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(s);
    } else if s.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        crate::imap::render::write_quoted(out, s);
    } else {
        write_literal(out, s, false);
    }
}

/// ` <origin>` and the (partial) contents, after the item name.
fn write_partial(
    out: &mut Vec<u8>,
    data: Option<&[u8]>,
    partial: Option<(u32, NonZeroU32)>,
    binary: bool,
) {
    let Some((origin, length)) = partial else {
        out.push(b' ');
        return write_contents(out, data, binary);
    };
    out.extend_from_slice(format!("<{origin}> ").as_bytes());
    let data = data.map(|data| {
        let start = (origin as usize).min(data.len());
        let end = start.saturating_add(length.get() as usize).min(data.len());
        &data[start..end]
    });
    write_contents(out, data, binary);
}

fn write_contents(out: &mut Vec<u8>, data: Option<&[u8]>, binary: bool) {
    match data {
        None => out.extend_from_slice(b"NIL"),
        Some(data) => write_literal(out, data, binary && data.contains(&0)),
    }
}

fn write_nstring(out: &mut Vec<u8>, data: Option<&[u8]>) {
    write_contents(out, data, false)
}

fn write_literal(out: &mut Vec<u8>, data: &[u8], literal8: bool) {
    if data.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    if literal8 {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests;
