//! The selected mailbox as one IMAP session shows it: the messages in sequence-number order,
//! and how the session tells its client about changes made by anyone (new messages, flag
//! changes, expunges), with no I/O.
//!
//! The session re-reads the mailbox when the store announces a change to the account (or before
//! answering a command) and hands the fresh message list to [`View::sync`], which returns the
//! untagged responses that bring the client up to date. Expunges cannot always be told at once:
//! RFC 3501 7.4.1 forbids EXPUNGE responses during FETCH, STORE and SEARCH (sequence numbers
//! would shift under the client), so a message removed meanwhile stays in the view, marked gone,
//! until a command that may report it.

use std::collections::BTreeSet;

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use raft_store::{Mailbox, Message};

use crate::imap::fetch::write_flags;

/// The flags every mailbox offers (besides keywords).
pub const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[derive(Debug)]
pub struct View {
    /// The mailbox's name (UTF-8, as stored).
    pub name: String,
    /// Opened with EXAMINE.
    pub read_only: bool,
    pub uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
    /// In UID order, which is sequence order.
    messages: Vec<Message>,
    /// Parallel to `messages`: removed from the store but not reported to the client yet.
    gone: Vec<bool>,
    /// Keywords the client has been told about in a FLAGS response.
    keywords: BTreeSet<String>,
    /// Which messages are `\Recent` in this session.
    recent: Recent,
}

/// `\Recent` as one session sees it (RFC 3501 2.3.2): after SELECT, the UID ranges this
/// session's claims won (`from + 1 ..= to` each; the cluster gives every UID to one claim);
/// after EXAMINE, which claims nothing, every message above the mailbox's floor as it was then.
#[derive(Debug, Default)]
enum Recent {
    /// Nothing is recent (the cluster version has no `\Recent` yet, or no claim won).
    #[default]
    None,
    Claimed(Vec<(u32, u32)>),
    Above(u32),
}

/// A sequence number or UID the client named that the mailbox does not have (RFC 3501: a
/// sequence number beyond the last message is a protocol error; unknown UIDs are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid message sequence number: {0}")]
pub struct BadSequence(pub u32);

impl View {
    pub fn new(name: String, read_only: bool, mailbox: &Mailbox, messages: Vec<Message>) -> View {
        let keywords = messages
            .iter()
            .flat_map(|m| m.keywords.iter().cloned())
            .collect();
        View {
            name,
            read_only,
            uidvalidity: mailbox.uidvalidity,
            uidnext: mailbox.uidnext,
            highest_modseq: mailbox.highest_modseq,
            gone: vec![false; messages.len()],
            messages,
            keywords,
            recent: Recent::None,
        }
    }

    /// This session's claim won UIDs `from + 1 ..= to`: they are `\Recent` here.
    pub fn add_recent(&mut self, from: u32, to: u32) {
        if to <= from {
            return;
        }
        match &mut self.recent {
            Recent::Claimed(ranges) => ranges.push((from, to)),
            _ => self.recent = Recent::Claimed(vec![(from, to)]),
        }
    }

    /// EXAMINE: every message above `floor` (no session has claimed it) shows `\Recent`.
    pub fn recent_above(&mut self, floor: u32) {
        self.recent = Recent::Above(floor);
    }

    /// Whether the message of `uid` is `\Recent` in this session.
    pub fn is_recent(&self, uid: u32) -> bool {
        match &self.recent {
            Recent::None => false,
            Recent::Claimed(ranges) => ranges.iter().any(|(from, to)| uid > *from && uid <= *to),
            Recent::Above(floor) => uid > *floor,
        }
    }

    /// How many messages the client knows of are `\Recent` (the `* n RECENT` count).
    pub fn recent_count(&self) -> u32 {
        self.messages
            .iter()
            .zip(&self.gone)
            .filter(|(m, gone)| !**gone && self.is_recent(m.uid))
            .count() as u32
    }

    /// The highest UID the view holds (0 when empty).
    pub fn last_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    /// How many messages the client knows of (gone ones included until reported).
    pub fn len(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn message(&self, index: usize) -> &Message {
        &self.messages[index]
    }

    pub fn is_gone(&self, index: usize) -> bool {
        self.gone[index]
    }

    pub fn uidnext(&self) -> u32 {
        self.uidnext
    }

    pub fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// The first message without `\Seen`, as a sequence number.
    pub fn first_unseen(&self) -> Option<u32> {
        self.messages
            .iter()
            .position(|m| m.flags & raft_store::flag::SEEN == 0)
            .map(|i| i as u32 + 1)
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` for the keywords in use.
    pub fn flags_responses(&self) -> String {
        let mut keywords = String::new();
        for keyword in &self.keywords {
            keywords.push(' ');
            keywords.push_str(keyword);
        }
        let permanent = if self.read_only {
            "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n".to_owned()
        } else {
            format!("* OK [PERMANENTFLAGS ({SYSTEM_FLAGS}{keywords} \\*)] Flags permitted\r\n")
        };
        format!("* FLAGS ({SYSTEM_FLAGS}{keywords})\r\n{permanent}")
    }

    /// Adds `keywords` to those the client has been told of. When one is new, returns the
    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` lines that announce it, which must reach the
    /// client before any FETCH that shows it (RFC 3501 7.2.6); else nothing.
    pub fn announce_keywords<'a>(
        &mut self,
        keywords: impl IntoIterator<Item = &'a String>,
    ) -> String {
        let known = self.keywords.len();
        self.keywords.extend(keywords.into_iter().cloned());
        if self.keywords.len() > known {
            self.flags_responses()
        } else {
            String::new()
        }
    }

    /// Whether the stored mailbox moved on since the view was last synced.
    pub fn outdated(&self, mailbox: &Mailbox) -> bool {
        mailbox.highest_modseq != self.highest_modseq || mailbox.uidnext != self.uidnext
    }

    /// Whether [`View::sync`] has anything to tell: the stored mailbox moved on, or (where
    /// expunges may be reported) a removal seen during FETCH, STORE or SEARCH is still untold.
    pub fn needs_sync(&self, mailbox: &Mailbox, allow_expunge: bool) -> bool {
        self.outdated(mailbox) || (allow_expunge && self.gone.contains(&true))
    }

    /// The messages a sequence set names, as indexes into `messages()`, ascending and without
    /// repeats. With `uid`, the set holds UIDs and those the mailbox lacks are skipped (`*` is
    /// the highest UID; `n:*` includes it even when n is higher, RFC 3501 6.4.8).
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, BadSequence> {
        let mut out = Vec::new();
        for sequence in set.0.as_ref() {
            let (a, b) = match sequence {
                Sequence::Single(x) => (x, x),
                Sequence::Range(a, b) => (a, b),
            };
            if uid {
                let Some(highest) = self.messages.last().map(|m| m.uid) else {
                    continue;
                };
                let value = |x: &SeqOrUid| match x {
                    SeqOrUid::Value(n) => n.get(),
                    SeqOrUid::Asterisk => highest,
                };
                let (low, high) = ordered(value(a), value(b));
                let start = self.messages.partition_point(|m| m.uid < low);
                let end = self.messages.partition_point(|m| m.uid <= high);
                out.extend(start..end);
            } else {
                let count = self.len();
                let value = |x: &SeqOrUid| match x {
                    SeqOrUid::Value(n) if n.get() <= count => Ok(n.get()),
                    SeqOrUid::Value(n) => Err(BadSequence(n.get())),
                    SeqOrUid::Asterisk if count > 0 => Ok(count),
                    SeqOrUid::Asterisk => Err(BadSequence(0)),
                };
                let (low, high) = ordered(value(a)?, value(b)?);
                out.extend(low as usize - 1..high as usize);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Takes this session's own STORE result (already reported to its client) so the next sync
    /// does not report it again.
    pub fn note_flags(&mut self, uid: u32, flags: u8, keywords: &[String], modseq: u64) -> bool {
        let Ok(index) = self.messages.binary_search_by_key(&uid, |m| m.uid) else {
            return false;
        };
        let message = &mut self.messages[index];
        message.flags = flags;
        message.keywords = keywords.to_vec();
        message.modseq = modseq;
        true
    }

    /// The sequence number of a UID in the view.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Brings the view up to the store's `mailbox` and its `fresh` messages (in UID order) and
    /// returns the untagged responses that tell the client: EXPUNGE (only with
    /// `allow_expunge`), FETCH of changed flags (with MODSEQ under `condstore`), FLAGS for new
    /// keywords, and EXISTS when messages arrived.
    pub fn sync(
        &mut self,
        mailbox: &Mailbox,
        fresh: Vec<Message>,
        allow_expunge: bool,
        condstore: bool,
    ) -> Vec<u8> {
        let known = self.messages.len();
        let mut merged: Vec<Message> = Vec::with_capacity(fresh.len().max(known));
        let mut gone = Vec::with_capacity(merged.capacity());
        let mut changed = Vec::new();
        let mut fresh = fresh.into_iter().peekable();
        for (old, was_gone) in self.messages.drain(..).zip(self.gone.drain(..)) {
            // A UID below one the view holds that the view never had cannot appear (UIDs only
            // grow); skip it rather than renumber what the client knows.
            while fresh.next_if(|m| m.uid < old.uid).is_some() {}
            match fresh.next_if(|m| m.uid == old.uid) {
                Some(now) if !was_gone => {
                    if now.flags != old.flags || now.keywords != old.keywords {
                        changed.push(merged.len());
                    }
                    merged.push(now);
                    gone.push(false);
                }
                _ => {
                    merged.push(old);
                    gone.push(true);
                }
            }
        }
        let highest_known = merged.last().map_or(0, |m| m.uid);
        for message in fresh.filter(|m| m.uid > highest_known) {
            merged.push(message);
            gone.push(false);
        }
        self.messages = merged;
        self.gone = gone;
        self.uidnext = mailbox.uidnext;
        self.highest_modseq = mailbox.highest_modseq;

        let mut out = Vec::new();
        let new_keywords: Vec<String> = self
            .messages
            .iter()
            .flat_map(|m| m.keywords.iter())
            .filter(|k| !self.keywords.contains(*k))
            .cloned()
            .collect();
        out.extend_from_slice(self.announce_keywords(&new_keywords).as_bytes());
        let mut removed_before = vec![0usize; self.messages.len()];
        let mut client_count = known;
        if allow_expunge && self.gone.iter().any(|g| *g) {
            // Highest first, so each number is still valid when the client reads it.
            for index in (0..self.messages.len()).rev() {
                if self.gone[index] && index < known {
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", index + 1).as_bytes());
                    client_count -= 1;
                }
            }
            let mut removed = 0;
            for (index, slot) in removed_before.iter_mut().enumerate() {
                *slot = removed;
                if self.gone[index] {
                    removed += 1;
                }
            }
            let mut index = 0;
            self.messages.retain(|_| {
                index += 1;
                !self.gone[index - 1]
            });
            self.gone.retain(|g| !g);
        }
        for index in changed {
            let seq = index - removed_before[index] + 1;
            let message = &self.messages[index - removed_before[index]];
            out.extend_from_slice(format!("* {seq} FETCH (UID {} FLAGS ", message.uid).as_bytes());
            write_flags(
                &mut out,
                message.flags,
                self.is_recent(message.uid),
                &message.keywords,
            );
            if condstore {
                out.extend_from_slice(format!(" MODSEQ ({})", message.modseq).as_bytes());
            }
            out.extend_from_slice(b")\r\n");
        }
        if self.messages.len() > client_count {
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
        }
        out
    }
}

fn ordered(a: u32, b: u32) -> (u32, u32) {
    if a <= b { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests;
