//! The decision on one message after DATA, as content checks (spam scorer, virus scanner, and
//! later sender authentication) reach it: accept, file to Junk, refuse for now or for good, plus
//! the header fields and Subject tag to add. Checks each give a `Verdict`; `merge` keeps the
//! most severe action and every header. I/O-free.

use crate::smtp::reply::Reply;
use raft_store::Filing;

/// What happens to the message, from least to most severe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Accepted, filed in each local recipient's `\Junk` mailbox.
    Junk,
    /// Answered with this 4xx reply (the sender retries).
    TempFail(Reply),
    /// Answered with this 5xx reply.
    Reject(Reply),
}

impl Action {
    fn severity(&self) -> u8 {
        match self {
            Action::Accept => 0,
            Action::Junk => 1,
            Action::TempFail(_) => 2,
            Action::Reject(_) => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// Complete header fields without the line end, e.g. `X-Spam-Flag: YES`.
    pub headers: Vec<String>,
    /// Put before the Subject (`[SPAM] `).
    pub subject_tag: Option<String>,
    /// Header fields this check vouches for: copies already in the message (a sender's forged
    /// `X-Spam-Status: No`) are removed.
    pub owned: Vec<&'static str>,
}

impl Default for Verdict {
    fn default() -> Verdict {
        Verdict::accept()
    }
}

impl Verdict {
    pub fn accept() -> Verdict {
        Verdict {
            action: Action::Accept,
            headers: Vec::new(),
            subject_tag: None,
            owned: Vec::new(),
        }
    }

    /// The same verdict, also removing the message's own copies of `fields`.
    pub fn owning(mut self, fields: &[&'static str]) -> Verdict {
        self.owned.extend_from_slice(fields);
        self
    }

    pub fn with_header(mut self, header: String) -> Verdict {
        self.headers.push(header);
        self
    }

    /// Combines another check's verdict into this one: the more severe action wins (the first
    /// on a tie), headers add up, the first Subject tag is kept.
    pub fn merge(&mut self, other: Verdict) {
        if other.action.severity() > self.action.severity() {
            self.action = other.action;
        }
        self.headers.extend(other.headers);
        self.owned.extend(other.owned);
        if self.subject_tag.is_none() {
            self.subject_tag = other.subject_tag;
        }
    }

    /// Where an accepted message is filed.
    pub fn filing(&self) -> Filing {
        match self.action {
            Action::Junk => Filing::Junk,
            _ => Filing::Inbox,
        }
    }

    /// The reply when the message is refused.
    pub fn refusal(&self) -> Option<&Reply> {
        match &self.action {
            Action::TempFail(line) | Action::Reject(line) => Some(line),
            Action::Accept | Action::Junk => None,
        }
    }

    /// The message without its copies of the owned fields, with the headers added at the top and
    /// the Subject tagged.
    pub fn apply(&self, message: Vec<u8>) -> Vec<u8> {
        if self.headers.is_empty() && self.subject_tag.is_none() && self.owned.is_empty() {
            return message;
        }
        let message = if self.owned.is_empty() {
            message
        } else {
            strip_fields(&message, &self.owned)
        };
        let mut out = Vec::with_capacity(message.len() + 256);
        for header in &self.headers {
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match &self.subject_tag {
            None => out.extend_from_slice(&message),
            Some(tag) => tag_subject(&message, tag, &mut out),
        }
        out
    }
}

/// `message` without the header fields named in `names` (with their continuation lines).
fn strip_fields(message: &[u8], names: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    let mut dropping = false;
    let mut in_header = true;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if in_header && (line == b"\r\n" || line == b"\n") {
            in_header = false;
        }
        if !in_header {
            out.extend_from_slice(line);
            continue;
        }
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            let name = line.split(|b| *b == b':').next().unwrap_or_default();
            dropping = names
                .iter()
                .any(|n| name.trim_ascii_end().eq_ignore_ascii_case(n.as_bytes()));
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Copies `message` to `out` with `tag` put before the first Subject's text; a message without
/// a Subject gets one that is just the tag.
fn tag_subject(message: &[u8], tag: &str, out: &mut Vec<u8>) {
    let mut offset = 0;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break; // end of the header section: no Subject
        }
        if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") {
            let text = &line[8..];
            // Keep the one space after the colon where it was.
            let space = usize::from(text.first() == Some(&b' '));
            let at = offset + 8 + space;
            out.extend_from_slice(&message[..at]);
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(&message[at..]);
            return;
        }
        offset += line.len();
    }
    out.extend_from_slice(format!("Subject: {}\r\n", tag.trim_end()).as_bytes());
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests;
