//! Delivery status notifications (RFC 3464, with the RET/ENVID/ORCPT semantics of RFC 3461):
//! bytes in, bytes out. The queue decides when a bounce or a delay notice is due; this module
//! writes it and says which envelope it goes out with.
//!
//! Choices a reader would otherwise have to guess:
//! - Only the null reverse path (`<>`) is never bounced (`should_bounce`). A sender that merely
//!   looks like a mailer daemon (`MAILER-DAEMON@…`, `postmaster@…`) still gets its bounce: RFC 5321
//!   sends notifications to the reverse path, such addresses are real mailboxes, and loops are
//!   already stopped by the null sender of every notice, `Auto-Submitted`, and the hop limit.
//! - The `message/delivery-status` part is 7-bit: text that is not printable US-ASCII (a remote
//!   reply in UTF-8, say) is replaced by `?` there, and kept intact in the human-readable part,
//!   which is then quoted-printable UTF-8. (RFC 6533's `message/global-delivery-status` would
//!   keep it in both, but not every reader understands it.)
//! - Long field values are folded at spaces; a single word longer than a line is split, which
//!   adds a space to the unfolded value. No output line exceeds 998 octets.
//! - The Message-ID and the MIME boundary come from a hash of the inputs, so the builder needs no
//!   randomness and the same notice built twice (say, again after a failover) is the same message.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::smtp::rfc5322_date;

/// The longest line RFC 5322 allows, CRLF not counted.
const MAX_LINE: usize = 998;
/// Where a header field is folded when it can be (RFC 5322 section 2.1.1 recommends 78).
const FOLD_AT: usize = 78;
/// Longest encoded line in a quoted-printable body (RFC 2045 section 6.7), soft break included.
const QP_LINE: usize = 76;

/// Why a notice could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// The original message came from the null reverse path: it is itself a notice.
    #[error("the original sender is the null reverse path; a bounce is never bounced")]
    NullSender,
    /// There is nothing to report.
    #[error("a delivery status notification needs at least one recipient")]
    NoRecipients,
    /// A status code that is not `class.subject.detail` with class 2, 4 or 5.
    #[error("{0:?} is not an enhanced status code (class 2, 4 or 5)")]
    InvalidStatus(String),
    /// An action whose status class says otherwise (`failed` with 4.x.x, say).
    #[error("action {action} does not go with status {status}")]
    ActionStatusMismatch { action: Action, status: StatusCode },
    /// An address or host name that cannot be written into a header field as it is.
    #[error("{what} {value:?} cannot be written into a header field")]
    Unwritable { what: &'static str, value: String },
}

/// What the sender asked to get back with a notice (RFC 3461 section 4.3, `RET=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The whole message (`RET=FULL`), within the size cap.
    Full,
    /// Its header section only (`RET=HDRS`).
    Hdrs,
}

impl FromStr for Ret {
    type Err = ();

    /// Parses the value of the ESMTP `RET` parameter, in any case.
    fn from_str(value: &str) -> Result<Ret, ()> {
        if value.eq_ignore_ascii_case("FULL") {
            Ok(Ret::Full)
        } else if value.eq_ignore_ascii_case("HDRS") {
            Ok(Ret::Hdrs)
        } else {
            Err(())
        }
    }
}

/// The `Action` of a recipient (RFC 3464 section 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    /// The status class this action must carry: 5 for failed, 4 for delayed, 2 otherwise.
    fn status_class(self) -> u8 {
        match self {
            Action::Failed => 5,
            Action::Delayed => 4,
            Action::Delivered | Action::Relayed | Action::Expanded => 2,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        })
    }
}

/// An enhanced mail status code (RFC 3463): `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl StatusCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub fn class(self) -> u8 {
        self.class
    }
}

impl FromStr for StatusCode {
    type Err = DsnError;

    fn from_str(code: &str) -> Result<StatusCode, DsnError> {
        let invalid = || DsnError::InvalidStatus(code.to_owned());
        // One to three digits, nothing else (u16's parser would also take a sign).
        let number = |part: &str| -> Option<u16> {
            let ok = (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
            ok.then(|| part.parse().ok()).flatten()
        };
        let mut parts = code.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return Err(invalid()),
        };
        Ok(StatusCode {
            class,
            subject: number(subject).ok_or_else(invalid)?,
            detail: number(detail).ok_or_else(invalid)?,
        })
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The message a notice is about, as the queue holds it.
#[derive(Debug, Clone)]
pub struct OriginalMessage<'a> {
    /// The envelope sender (MAIL FROM) without angle brackets; empty for the null reverse path.
    pub envelope_sender: &'a str,
    /// The message as received. Its header section is enough unless `ret` is `Ret::Full`.
    pub raw: &'a [u8],
    /// When this MTA accepted it, in Unix seconds.
    pub arrival: i64,
    /// The ESMTP `ENVID` parameter as the client sent it (xtext).
    pub envid: Option<&'a str>,
    /// The ESMTP `RET` parameter; without one only the header section is returned.
    pub ret: Option<Ret>,
}

/// What happened to one recipient.
#[derive(Debug, Clone)]
pub struct RecipientReport<'a> {
    /// The address delivery was attempted to (`Final-Recipient`).
    pub address: &'a str,
    /// The ESMTP `ORCPT` parameter as the client sent it: `addr-type;xtext`.
    pub original_recipient: Option<&'a str>,
    pub action: Action,
    pub status: StatusCode,
    /// The host that gave the reply in `diagnostic`.
    pub remote_mta: Option<&'a str>,
    /// The remote SMTP reply, all its lines (e.g. `550 5.1.1 <bob@example.org>: no such user`).
    pub diagnostic: Option<&'a str>,
    /// Unix seconds.
    pub last_attempt: Option<i64>,
    /// Unix seconds; written for `Action::Delayed` only.
    pub will_retry_until: Option<i64>,
}

/// Everything a notice is built from.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// This MTA's host name (`Reporting-MTA`, Message-ID).
    pub reporting_mta: &'a str,
    /// The From address of the notice, e.g. `MAILER-DAEMON@mx1.example.com`.
    pub postmaster: &'a str,
    pub original: OriginalMessage<'a>,
    pub recipients: &'a [RecipientReport<'a>],
    /// Unix seconds; the Date of the notice.
    pub now: i64,
    /// Above this many octets a `RET=FULL` message is returned as its header section only.
    pub max_returned_size: usize,
}

/// A notice ready for the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// The envelope sender: always empty, the null reverse path, so nothing bounces a notice.
    pub mail_from: String,
    /// The envelope recipient: the original envelope sender.
    pub rcpt_to: String,
    /// The RFC 5322 message, CRLF line endings, no line longer than 998 octets.
    pub message: Vec<u8>,
    /// The returned message has 8-bit content, so the notice needs 8BITMIME to go out intact.
    pub eight_bit: bool,
}

/// Whether a message from this envelope sender may be bounced: not when it is the null reverse
/// path, which only notices use (RFC 5321 section 4.5.5, RFC 3464 section 2). See the module
/// docs for why mailer-daemon-like senders are not special.
pub fn should_bounce(envelope_sender: &str) -> bool {
    let sender = envelope_sender.trim();
    !(sender.is_empty() || sender == "<>")
}

/// The number of `Received:` fields in the header section of `raw`: the hops it has made.
/// Continuation lines of folded fields are not fields; the body is not looked at.
pub fn hop_count(raw: &[u8]) -> usize {
    header_lines(raw)
        .filter(|line| {
            // A continuation line starts with white space, so it never matches the name.
            let name = match line.iter().position(|&b| b == b':') {
                Some(colon) => &line[..colon],
                None => return false,
            };
            // RFC 5322's obsolete syntax allows space before the colon.
            name.trim_ascii_end().eq_ignore_ascii_case(b"received")
        })
        .count()
}

/// Whether `raw` has made more than `limit` hops and should be bounced rather than relayed
/// again (issue 6 sets the limit at 32).
pub fn too_many_hops(raw: &[u8], limit: usize) -> bool {
    hop_count(raw) > limit
}

/// Builds the notice for `notice`: a `multipart/report; report-type=delivery-status` message
/// from the null reverse path to the original envelope sender.
pub fn build(notice: &Notice<'_>) -> Result<Dsn, DsnError> {
    let original = &notice.original;
    if !should_bounce(original.envelope_sender) {
        return Err(DsnError::NullSender);
    }
    if notice.recipients.is_empty() {
        return Err(DsnError::NoRecipients);
    }
    let sender = original
        .envelope_sender
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    check_writable("envelope sender", sender, true)?;
    check_writable("postmaster address", notice.postmaster, false)?;
    check_writable("reporting MTA", notice.reporting_mta, false)?;
    for recipient in notice.recipients {
        if recipient.action.status_class() != recipient.status.class() {
            return Err(DsnError::ActionStatusMismatch {
                action: recipient.action,
                status: recipient.status,
            });
        }
        check_writable("recipient address", recipient.address, true)?;
        if let Some(remote_mta) = recipient.remote_mta {
            check_writable("remote MTA", remote_mta, false)?;
        }
    }

    let text_part = text_part(notice);
    let status_part = delivery_status_part(notice);
    let (original_part, eight_bit) = original_part(notice);

    let digest = seed(notice);
    let boundary = pick_boundary(&digest, &[&text_part, &status_part, &original_part]);
    let message_id = format!(
        "<{}.dsn@{}>",
        hex::encode(&digest[..12]),
        notice.reporting_mta
    );

    let subject = if notice.recipients.iter().any(|r| r.action == Action::Failed) {
        "Undelivered Mail Returned to Sender"
    } else if notice
        .recipients
        .iter()
        .any(|r| r.action == Action::Delayed)
    {
        "Delayed Mail (still being retried)"
    } else {
        "Successful Mail Delivery Report"
    };

    let mut message = Vec::new();
    let mut header = |name: &str, value: &str| message.extend(fold(name, value).into_bytes());
    header(
        "From",
        &format!("Mail Delivery System <{}>", notice.postmaster),
    );
    header("To", &format!("<{sender}>"));
    header("Subject", subject);
    header("Date", &rfc5322_date(notice.now));
    header("Message-ID", &message_id);
    header("Auto-Submitted", "auto-replied");
    header("MIME-Version", "1.0");
    header(
        "Content-Type",
        &format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\""),
    );
    message.extend_from_slice(b"\r\nThis is a MIME-encapsulated delivery status notification.\r\n");
    for part in [&text_part, &status_part, &original_part] {
        message.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        message.extend_from_slice(part);
    }
    message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    Ok(Dsn {
        mail_from: String::new(),
        rcpt_to: sender.to_owned(),
        message,
        eight_bit,
    })
}

/// Refuses what would break the header it goes into: nothing empty, no spaces, controls or
/// angle brackets. Addresses may carry UTF-8 (SMTPUTF8); host names may not.
fn check_writable(what: &'static str, value: &str, utf8: bool) -> Result<(), DsnError> {
    let ok = !value.is_empty()
        && value.len() <= 512
        && value.chars().all(|c| {
            if c.is_ascii() {
                c.is_ascii_graphic() && c != '<' && c != '>'
            } else {
                utf8 && !c.is_control() && !c.is_whitespace()
            }
        });
    if ok {
        Ok(())
    } else {
        Err(DsnError::Unwritable {
            what,
            value: value.to_owned(),
        })
    }
}

/// The human-readable first part.
fn text_part(notice: &Notice<'_>) -> Vec<u8> {
    let recipients = notice.recipients;
    let mut text = format!("This is the mail system at {}.\n\n", notice.reporting_mta);
    if recipients.iter().any(|r| r.action == Action::Failed) {
        text.push_str(
            "Your message could not be delivered to one or more of its recipients.\n\
             This is a permanent error; the mail system has given up on them.\n",
        );
    }
    if recipients.iter().any(|r| r.action == Action::Delayed) {
        text.push_str(
            "Your message has not yet been delivered to one or more of its recipients.\n\
             The mail system keeps trying; you do not need to send it again.\n",
        );
    }
    if recipients.iter().any(|r| {
        matches!(
            r.action,
            Action::Delivered | Action::Relayed | Action::Expanded
        )
    }) {
        text.push_str("Your message was passed on to one or more of its recipients.\n");
    }
    for recipient in recipients {
        let what = match recipient.action {
            Action::Failed => "delivery failed".to_owned(),
            Action::Delayed => match recipient.will_retry_until {
                Some(until) => format!("delayed; retrying until {}", rfc5322_date(until)),
                None => "delayed; still retrying".to_owned(),
            },
            Action::Delivered => "delivered".to_owned(),
            Action::Relayed => "relayed to a system that does not send notices".to_owned(),
            Action::Expanded => "delivered, and expanded to further recipients".to_owned(),
        };
        text.push_str(&format!("\n<{}>: {what}\n", recipient.address));
        if let Some(diagnostic) = recipient.diagnostic {
            let said = match recipient.remote_mta {
                Some(host) => format!("{host} said"),
                None => "the reason given".to_owned(),
            };
            text.push_str(&format!("    {said}: {}\n", one_line(diagnostic)));
        }
    }
    text.push_str("\nThe delivery report and the message, or its header section, follow.\n");

    let plain = text.is_ascii() && text.lines().all(|line| line.len() <= MAX_LINE);
    let mut part = Vec::new();
    if plain {
        part.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
        part.extend_from_slice(b"Content-Description: Notification\r\n\r\n");
        part.extend(crlf(text.as_bytes()));
    } else {
        part.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        part.extend_from_slice(b"Content-Description: Notification\r\n");
        part.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        part.extend(quoted_printable(text.as_bytes()));
    }
    part
}

/// The `message/delivery-status` part (RFC 3464 section 2): the per-message fields, then one
/// group of fields per recipient, groups separated by empty lines.
fn delivery_status_part(notice: &Notice<'_>) -> Vec<u8> {
    let original = &notice.original;
    let mut fields = String::new();
    fields.push_str(&fold(
        "Reporting-MTA",
        &format!("dns; {}", notice.reporting_mta),
    ));
    if let Some(envid) = original.envid {
        // ENVID travels as xtext; the notice carries it decoded (RFC 3461 section 4.4).
        let envid = xtext_decode(envid).unwrap_or_else(|| envid.to_owned());
        fields.push_str(&fold("Original-Envelope-Id", &ascii_text(&envid)));
    }
    fields.push_str(&fold("Arrival-Date", &rfc5322_date(original.arrival)));
    for recipient in notice.recipients {
        fields.push_str("\r\n");
        if let Some(orcpt) = recipient.original_recipient.and_then(original_recipient) {
            fields.push_str(&fold("Original-Recipient", &orcpt));
        }
        fields.push_str(&fold("Final-Recipient", &address_field(recipient.address)));
        fields.push_str(&fold("Action", &recipient.action.to_string()));
        fields.push_str(&fold("Status", &recipient.status.to_string()));
        if let Some(host) = recipient.remote_mta {
            fields.push_str(&fold("Remote-MTA", &format!("dns; {host}")));
        }
        if let Some(diagnostic) = recipient.diagnostic {
            let diagnostic = ascii_text(&one_line(diagnostic));
            fields.push_str(&fold("Diagnostic-Code", &format!("smtp; {diagnostic}")));
        }
        if let Some(at) = recipient.last_attempt {
            fields.push_str(&fold("Last-Attempt-Date", &rfc5322_date(at)));
        }
        if let (Action::Delayed, Some(until)) = (recipient.action, recipient.will_retry_until) {
            fields.push_str(&fold("Will-Retry-Until", &rfc5322_date(until)));
        }
    }
    let mut part = b"Content-Type: message/delivery-status\r\n\
                     Content-Description: Delivery report\r\n\r\n"
        .to_vec();
    part.extend_from_slice(fields.as_bytes());
    part
}

/// The third part: the whole message for `RET=FULL` when it fits under the cap and every line
/// is within SMTP's limit, its header section otherwise. Also says whether it has 8-bit octets.
fn original_part(notice: &Notice<'_>) -> (Vec<u8>, bool) {
    let raw = crlf(notice.original.raw);
    let full = notice.original.ret == Some(Ret::Full)
        && raw.len() <= notice.max_returned_size
        && raw
            .split(|&b| b == b'\n')
            .all(|line| line.len() <= MAX_LINE + 1);
    let mut part = Vec::new();
    if full {
        let eight_bit = !raw.is_ascii();
        part.extend_from_slice(b"Content-Type: message/rfc822\r\n");
        part.extend_from_slice(b"Content-Description: Undelivered message\r\n");
        if eight_bit {
            part.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
        }
        part.extend_from_slice(b"\r\n");
        part.extend_from_slice(&raw);
        return (part, eight_bit);
    }
    let headers = header_section(&raw);
    part.extend_from_slice(b"Content-Type: text/rfc822-headers\r\n");
    part.extend_from_slice(b"Content-Description: Undelivered message headers\r\n");
    let plain = headers.is_ascii()
        && headers
            .split(|&b| b == b'\n')
            .all(|line| line.len() <= MAX_LINE + 1);
    if plain {
        part.extend_from_slice(b"\r\n");
        part.extend_from_slice(headers);
    } else {
        // 8-bit or overlong header lines: quoted-printable keeps the notice 7-bit and in bounds.
        part.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        part.extend(quoted_printable(headers));
    }
    (part, false)
}

/// The lines of the header section of `raw`, without their line endings.
fn header_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
}

/// The header section of a CRLF message, through the CRLF that ends its last field (the whole
/// message when it has no body).
fn header_section(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"\r\n") {
        return &[];
    }
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => &raw[..end + 2],
        None => raw,
    }
}

/// `Final-Recipient` value: `rfc822; addr`, or for a UTF-8 address RFC 6533's `utf-8` type in
/// its 7-bit form, non-ASCII characters (and `+`, `=`, `\`) written as `\x{HEX}`.
fn address_field(address: &str) -> String {
    if address.is_ascii() {
        return format!("rfc822; {address}");
    }
    let mut out = String::from("utf-8; ");
    for c in address.chars() {
        if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:X}}}", c as u32));
        }
    }
    out
}

/// `Original-Recipient` value from an ORCPT parameter (`addr-type;xtext`): the address type
/// as given, an `rfc822` address decoded from xtext (RFC 3461 section 4.2). None when the
/// parameter has no address type.
fn original_recipient(orcpt: &str) -> Option<String> {
    let (addr_type, address) = orcpt.split_once(';')?;
    let addr_type = addr_type.trim();
    if addr_type.is_empty() || address.is_empty() {
        return None;
    }
    let address = if addr_type.eq_ignore_ascii_case("rfc822") {
        xtext_decode(address).unwrap_or_else(|| address.to_owned())
    } else {
        address.to_owned()
    };
    Some(format!("{addr_type};{}", ascii_text(&address)))
}

/// Decodes RFC 3461 xtext (`+XX` for an octet); None when it is not valid xtext or not UTF-8.
pub fn xtext_decode(xtext: &str) -> Option<String> {
    let bytes = xtext.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'!'..=b'~' if bytes[i] != b'=' => {
                out.push(bytes[i]);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// A possibly multi-line reply as one line, runs of white space (line breaks too) made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Printable US-ASCII only: anything else becomes `?` (white space becomes a space).
fn ascii_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect()
}

/// One header field, `Name: value` and CRLF, folded at spaces near 78 columns. A word that
/// would not fit on a line of its own is split.
fn fold(name: &str, value: &str) -> String {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    // Never fold before the first word: a field name alone on its line reads as an empty value.
    let mut words_on_line = 0;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        let mut word = word;
        loop {
            // One space before each word; a folded line starts with that space.
            if line_len + 1 + word.len() > FOLD_AT && words_on_line > 0 {
                out.push_str("\r\n");
                line_len = 0;
                words_on_line = 0;
            }
            let room = MAX_LINE - line_len - 1;
            if word.len() <= room {
                out.push(' ');
                out.push_str(word);
                line_len += 1 + word.len();
                words_on_line += 1;
                break;
            }
            let cut = floor_char_boundary(word, room);
            out.push(' ');
            out.push_str(&word[..cut]);
            line_len += 1 + cut;
            words_on_line += 1;
            word = &word[cut..];
        }
    }
    out.push_str("\r\n");
    out
}

/// The largest index ≤ `at` that falls on a character boundary of `s` (at least one character
/// in, so a cut always makes progress).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut cut = at.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == 0 {
        s.chars().next().map_or(0, char::len_utf8)
    } else {
        cut
    }
}

/// Line endings made CRLF: a lone LF or a lone CR becomes CRLF.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if raw.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Quoted-printable (RFC 2045 section 6.7) of text whose line breaks are kept as CRLF.
fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let text = crlf(text);
    let mut out = Vec::with_capacity(text.len() * 11 / 10);
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut len = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal = ((b'!'..=b'~').contains(&b) && b != b'=') || (b == b' ' && !last);
            let encoded;
            let piece: &[u8] = if literal {
                std::slice::from_ref(&b)
            } else {
                encoded = format!("={b:02X}");
                encoded.as_bytes()
            };
            // Keep room for the soft break's `=` unless this is the line's last piece.
            let limit = if last { QP_LINE } else { QP_LINE - 1 };
            if len + piece.len() > limit {
                out.extend_from_slice(b"=\r\n");
                len = 0;
            }
            out.extend_from_slice(piece);
            len += piece.len();
        }
        if lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// A hash of everything the notice says, for its Message-ID and boundary.
fn seed(notice: &Notice<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(notice.reporting_mta.as_bytes());
    hasher.update(notice.now.to_be_bytes());
    hasher.update(notice.original.envelope_sender.as_bytes());
    hasher.update(notice.original.arrival.to_be_bytes());
    hasher.update(notice.original.raw);
    for recipient in notice.recipients {
        hasher.update(recipient.address.as_bytes());
        hasher.update(recipient.action.to_string().as_bytes());
        hasher.update(recipient.status.to_string().as_bytes());
    }
    hasher.finalize().into()
}

/// A MIME boundary that occurs in none of `parts`. Starting with `=_` it cannot occur in
/// quoted-printable text; the check covers the 7-bit and 8-bit parts.
fn pick_boundary(seed: &[u8], parts: &[&[u8]]) -> String {
    (0u32..)
        .map(|n| {
            let mut hasher = Sha256::new();
            hasher.update(seed);
            hasher.update(n.to_be_bytes());
            format!("=_dsn_{}", hex::encode(&hasher.finalize()[..12]))
        })
        .find(|boundary| {
            !parts.iter().any(|part| {
                part.windows(boundary.len())
                    .any(|w| w == boundary.as_bytes())
            })
        })
        .expect("a 96-bit hash collides with the content only a handful of times")
}

#[cfg(test)]
mod tests;
