//! SORT (RFC 5256) and SORT=DISPLAY (RFC 5957): the order of the messages SEARCH found, by
//! keys read from the summary and the message record, with no I/O.
//!
//! - ARRIVAL is the internal date; DATE the Date header in UTC, or the internal date when it
//!   is missing or does not parse (RFC 5256 section 3); SIZE is RFC822.SIZE.
//! - FROM, TO and CC compare the mailbox (local part) of the first address, ASCII case
//!   folded; DISPLAYFROM and DISPLAYTO the first address's display name, or its addr-spec
//!   when it has none, case folded.
//! - SUBJECT compares the base subject of section 2.1 (no "Re:", "Fwd:", "[list]" leaders or
//!   "(fwd)" trailers), case folded.
//! - REVERSE turns one key around. Messages equal on every key keep mailbox order.

use std::cmp::Ordering;

use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use raft_store::summary::{Address, Mailbox};

use crate::imap::search::{Candidate, decode_header, header_time};

#[cfg(test)]
mod tests;

/// One message's value for one key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Number(i64),
    Text(String),
}

/// The sequence numbers of `candidates` in the order `criteria` give.
pub fn order(criteria: &[SortCriterion], candidates: &[Candidate<'_>]) -> Vec<u32> {
    let mut keyed: Vec<(Vec<Value>, u32)> = candidates
        .iter()
        .map(|candidate| {
            let values = criteria.iter().map(|c| value(&c.key, candidate)).collect();
            (values, candidate.0)
        })
        .collect();
    keyed.sort_by(|(a, a_seq), (b, b_seq)| {
        criteria
            .iter()
            .zip(a.iter().zip(b))
            .map(|(criterion, (a, b))| {
                let ordering = a.cmp(b);
                if criterion.reverse {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
            .find(|ordering| *ordering != Ordering::Equal)
            .unwrap_or_else(|| a_seq.cmp(b_seq))
    });
    keyed.into_iter().map(|(_, seq)| seq).collect()
}

fn value(key: &SortKey, (_, message, summary): &Candidate<'_>) -> Value {
    let envelope = &summary.envelope;
    match key {
        SortKey::Arrival => Value::Number(message.internal_date),
        SortKey::Date => Value::Number(
            envelope
                .date
                .as_deref()
                .and_then(header_time)
                .unwrap_or(message.internal_date),
        ),
        SortKey::Size => Value::Number(i64::try_from(message.size).unwrap_or(i64::MAX)),
        SortKey::Subject => Value::Text(base_subject(
            &envelope
                .subject
                .as_deref()
                .map(decode_header)
                .unwrap_or_default(),
        )),
        SortKey::From => Value::Text(first_mailbox(&envelope.from)),
        SortKey::To => Value::Text(first_mailbox(&envelope.to)),
        SortKey::Cc => Value::Text(first_mailbox(&envelope.cc)),
        SortKey::DisplayFrom => Value::Text(display(&envelope.from)),
        SortKey::DisplayTo => Value::Text(display(&envelope.to)),
    }
}

/// The first mailbox of an address list (a group's first member), if any.
fn first(list: &[Address]) -> Option<&Mailbox> {
    list.iter().find_map(|address| match address {
        Address::Mailbox(mailbox) => Some(mailbox),
        Address::Group { members, .. } => members.first(),
    })
}

/// The local part of the first address, ASCII case folded; empty without one.
fn first_mailbox(list: &[Address]) -> String {
    first(list)
        .map(|mailbox| String::from_utf8_lossy(&mailbox.mailbox).to_ascii_lowercase())
        .unwrap_or_default()
}

/// RFC 5957: the first address's display name, or its addr-spec without one, case folded.
fn display(list: &[Address]) -> String {
    let Some(mailbox) = first(list) else {
        return String::new();
    };
    let name = mailbox
        .name
        .as_deref()
        .map(decode_header)
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        format!(
            "{}@{}",
            String::from_utf8_lossy(&mailbox.mailbox),
            String::from_utf8_lossy(&mailbox.host)
        )
        .to_lowercase()
    } else {
        name.to_owned()
    }
}

/// RFC 5256 section 2.1: the subject without reply and forward markers, its white space
/// collapsed, case folded. `subject` is decoded already (encoded words, folding).
pub fn base_subject(subject: &str) -> String {
    // (1) Runs of white space become one space.
    let mut subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) Trailers: "(fwd)" and white space at the end.
        loop {
            let trimmed = subject.trim_end();
            let without = strip_suffix_ignore_case(trimmed, "(fwd)").unwrap_or(trimmed);
            if without.len() == subject.len() {
                break;
            }
            subject = without.to_owned();
        }
        // (3), (4) Leaders: "re:", "fw:", "fwd:" with optional [blobs], and blobs themselves
        // while something is left after them.
        loop {
            let trimmed = subject.trim_start();
            let next = strip_refwd(trimmed)
                .or_else(|| strip_blob(trimmed).filter(|rest| !rest.trim().is_empty()))
                .unwrap_or(trimmed);
            if next.len() == subject.len() {
                break;
            }
            subject = next.to_owned();
        }
        // (5) "[fwd: ...]" wraps the whole subject: unwrap and start again.
        let wrapped = strip_prefix_ignore_case(&subject, "[fwd:")
            .and_then(|inner| inner.strip_suffix(']'))
            .map(str::to_owned);
        match wrapped {
            Some(inner) => subject = inner,
            None => break,
        }
    }
    subject.trim().to_lowercase()
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`: what follows it, if it is one.
fn strip_refwd(s: &str) -> Option<&str> {
    let rest = strip_prefix_ignore_case(s, "re")
        .or_else(|| strip_prefix_ignore_case(s, "fwd"))
        .or_else(|| strip_prefix_ignore_case(s, "fw"))?;
    let rest = rest.trim_start();
    let rest = strip_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: what follows it, if `s` starts with one.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    if inner.as_bytes()[end] != b']' {
        return None;
    }
    Some(inner[end + 1..].trim_start())
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let start = s.len().checked_sub(suffix.len())?;
    let tail = s.get(start..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..start])
}
