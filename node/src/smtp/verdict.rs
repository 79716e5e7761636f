//! The decision on one message after DATA, as content checks (spam scorer, virus scanner, and
//! later sender authentication) reach it: accept, file to Junk, refuse for now or for good, plus
//! the header fields and Subject tag to add. Checks each give a `Verdict`; `merge` keeps the
//! most severe action and every header. I/O-free.

use raft_store::Filing;

/// What happens to the message, from least to most severe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    /// Accepted, filed in each local recipient's `\Junk` mailbox.
    Junk,
    /// Answered with this 4xx line (the sender retries).
    TempFail(String),
    /// Answered with this 5xx line.
    Reject(String),
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
        }
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

    /// The reply line when the message is refused.
    pub fn refusal(&self) -> Option<&str> {
        match &self.action {
            Action::TempFail(line) | Action::Reject(line) => Some(line),
            Action::Accept | Action::Junk => None,
        }
    }

    /// The message with the headers added at the top and the Subject tagged.
    pub fn apply(&self, message: Vec<u8>) -> Vec<u8> {
        if self.headers.is_empty() && self.subject_tag.is_none() {
            return message;
        }
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
