//! IMAP's view of a message summary: ENVELOPE, BODY and BODYSTRUCTURE in wire syntax
//! (RFC 3501 7.4.2), the byte range a BODY[section] names, and HEADER.FIELDS filtering. The
//! summary itself (raft-store's `summary`, made once at delivery) knows no protocol.

use std::ops::Range;

use raft_store::summary::{Address, Envelope, Mailbox, MessageSummary, Part, PartKind, trim};

#[cfg(test)]
mod tests;

/// Appends an IMAP string: quoted when it is 7-bit text without CR, LF or NUL, else a literal.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.iter()
        .all(|&b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n')
    {
        write_quoted(out, s);
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// Appends `s` as a quoted string; the caller has checked it has no CR, LF or NUL.
pub(crate) fn write_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn write_mailbox(out: &mut Vec<u8>, m: &Mailbox) {
    out.push(b'(');
    write_nstring(out, m.name.as_deref());
    out.push(b' ');
    write_nstring(out, m.adl.as_deref());
    out.push(b' ');
    write_string(out, &m.mailbox);
    out.push(b' ');
    write_string(out, &m.host);
    out.push(b')');
}

fn write_addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for address in list {
        match address {
            Address::Mailbox(m) => write_mailbox(out, m),
            // RFC 3501 7.4.2: group start is (NIL NIL "name" NIL), group end (NIL NIL NIL NIL).
            Address::Group { name, members } => {
                out.extend_from_slice(b"(NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL)");
                for m in members {
                    write_mailbox(out, m);
                }
                out.extend_from_slice(b"(NIL NIL NIL NIL)");
            }
        }
    }
    out.push(b')');
}

fn write_envelope(out: &mut Vec<u8>, e: &Envelope) {
    out.push(b'(');
    write_nstring(out, e.date.as_deref());
    out.push(b' ');
    write_nstring(out, e.subject.as_deref());
    out.push(b' ');
    write_addresses(out, &e.from);
    out.push(b' ');
    // RFC 3501 7.4.2: absent or empty Sender / Reply-To take the value of From.
    write_addresses(
        out,
        if e.sender.is_empty() {
            &e.from
        } else {
            &e.sender
        },
    );
    out.push(b' ');
    write_addresses(
        out,
        if e.reply_to.is_empty() {
            &e.from
        } else {
            &e.reply_to
        },
    );
    for list in [&e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        write_addresses(out, list);
    }
    out.push(b' ');
    write_nstring(out, e.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, e.message_id.as_deref());
    out.push(b')');
}

/// The ENVELOPE of a message, in IMAP wire syntax (without the `ENVELOPE ` keyword).
pub fn envelope(summary: &MessageSummary) -> Vec<u8> {
    let mut out = Vec::new();
    write_envelope(&mut out, &summary.envelope);
    out
}

fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, name);
        out.push(b' ');
        write_string(out, value);
    }
    out.push(b')');
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc, shared by both extension kinds.
fn write_dsp_lang_loc(out: &mut Vec<u8>, part: &Part) {
    match &part.disposition {
        Some(d) => {
            out.push(b'(');
            write_string(out, &d.kind);
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string(out, one),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, l);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    write_nstring(out, part.location.as_deref());
}

fn write_body(out: &mut Vec<u8>, part: &Part, extended: bool) {
    out.push(b'(');
    if let PartKind::Multipart(children) = &part.kind {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        for child in children {
            write_body(out, child, extended);
        }
        out.push(b' ');
        write_string(out, &part.media_subtype);
        if extended {
            out.push(b' ');
            write_params(out, &part.params);
            out.push(b' ');
            write_dsp_lang_loc(out, part);
        }
        out.push(b')');
        return;
    }
    write_string(out, &part.media_type);
    out.push(b' ');
    write_string(out, &part.media_subtype);
    out.push(b' ');
    write_params(out, &part.params);
    out.push(b' ');
    write_nstring(out, part.id.as_deref());
    out.push(b' ');
    write_nstring(out, part.description.as_deref());
    out.push(b' ');
    write_string(out, &part.encoding);
    out.extend_from_slice(format!(" {}", part.size()).as_bytes());
    if let PartKind::Message(inner) = &part.kind {
        // body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines
        out.push(b' ');
        write_envelope(out, &inner.envelope);
        out.push(b' ');
        write_body(out, &inner.root, extended);
        out.extend_from_slice(format!(" {}", part.lines).as_bytes());
    } else if part.is_text() {
        // body-type-text = media-text SP body-fields SP body-fld-lines
        out.extend_from_slice(format!(" {}", part.lines).as_bytes());
    }
    if extended {
        // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        out.push(b' ');
        write_nstring(out, part.md5.as_deref());
        out.push(b' ');
        write_dsp_lang_loc(out, part);
    }
    out.push(b')');
}

/// BODY (`extended = false`) or BODYSTRUCTURE (`extended = true`) in IMAP wire syntax, without
/// the keyword.
pub fn body_structure(summary: &MessageSummary, extended: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_body(&mut out, &summary.root, extended);
    out
}

// ---- sections ----

/// What of a part a BODY[...] section names (RFC 3501 6.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionPart {
    /// `BODY[]` for an empty path, `BODY[1.2]` (the part's body) otherwise.
    Full,
    /// `HEADER` (also the base for `HEADER.FIELDS`, see [`filter_header_fields`]).
    Header,
    /// `TEXT`.
    Text,
    /// `MIME`: the part's own MIME header; needs a non-empty path.
    Mime,
}

/// The byte range of `raw` a section names, or None when the section does not exist.
/// HEADER and TEXT are only valid for the message itself or a message/rfc822 part.
pub fn section(summary: &MessageSummary, path: &[u32], part: SectionPart) -> Option<Range<usize>> {
    if path.is_empty() {
        let root = &summary.root;
        return match part {
            SectionPart::Full => Some(root.offset_header as usize..root.offset_end as usize),
            SectionPart::Header => Some(root.header_range()),
            SectionPart::Text => Some(root.body_range()),
            SectionPart::Mime => None,
        };
    }
    let mut current = select(summary, path[0])?;
    for &n in &path[1..] {
        current = match &current.kind {
            PartKind::Multipart(children) => children.get((n as usize).checked_sub(1)?)?,
            PartKind::Message(inner) => select(inner, n)?,
            PartKind::Leaf => return None,
        };
    }
    finish(current, part)
}

/// Part `n` (1-based) of a message: a child of a multipart root, or the body of a single-part one.
fn select(message: &MessageSummary, n: u32) -> Option<&Part> {
    match &message.root.kind {
        PartKind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
        _ => (n == 1).then_some(&message.root),
    }
}

fn finish(selected: &Part, part: SectionPart) -> Option<Range<usize>> {
    match part {
        SectionPart::Full => Some(selected.body_range()),
        SectionPart::Mime => Some(selected.header_range()),
        SectionPart::Header | SectionPart::Text => match &selected.kind {
            PartKind::Message(inner) if part == SectionPart::Header => {
                Some(inner.root.header_range())
            }
            // The encapsulated message's text runs to the end of this part's body, wherever
            // its root ends: summaries made before that was so end an encapsulated multipart
            // at its close delimiter, without its epilogue.
            PartKind::Message(inner) => Some(
                inner.root.offset_body as usize
                    ..selected.offset_end.max(inner.root.offset_body) as usize,
            ),
            _ => None,
        },
    }
}

/// `HEADER.FIELDS (names)` (or `.NOT` when `not`) applied to a header block (as sliced by
/// [`section`] with [`SectionPart::Header`]): the matching fields with their continuation lines,
/// followed by the blank line when the block has one (RFC 3501 6.4.5). Matching is
/// case-insensitive and exact; a line without a colon has no field name and matches nothing.
pub fn filter_header_fields(header: &[u8], names: &[&[u8]], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    let mut rest = header;
    while !rest.is_empty() {
        let line_len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |n| n + 1);
        let (line, tail) = rest.split_at(line_len);
        rest = tail;
        if line == b"\r\n" || line == b"\n" {
            out.extend_from_slice(line);
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let matched = line.iter().position(|&b| b == b':').is_some_and(|colon| {
                let name = trim(&line[..colon]);
                names.iter().any(|n| n.eq_ignore_ascii_case(name))
            });
            keep = matched != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out
}
