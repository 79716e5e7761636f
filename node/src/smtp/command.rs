//! SMTP command lines (RFC 5321 plus the ESMTP extensions we offer) parsed into `Command`s; no I/O.
//!
//! The parser is deliberately policy-free: it accepts UTF-8 addresses and every parameter we know,
//! and leaves it to the session to refuse what the conversation so far does not allow (SMTPUTF8
//! not requested, AUTH before STARTTLS, SIZE over the limit).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

#[cfg(test)]
mod tests;

/// RFC 5321 4.5.3.1.1.
const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 4.5.3.1.2.
const MAX_DOMAIN: usize = 255;
/// RFC 5321 4.5.3.1.3; counts the angle brackets and any source route.
const MAX_PATH: usize = 256;
/// RFC 1035 2.3.4, for ASCII labels; a U-label's octet count says little about its A-label.
const MAX_LABEL: usize = 63;
/// RFC 3461 4.4.
const MAX_ENVID: usize = 100;
/// RFC 3461 4.2.
const MAX_ORCPT: usize = 500;
/// RFC 4422 3.1 caps mechanism names at 20 characters.
const MAX_MECHANISM: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The argument as given: a domain or an address literal, not validated, since clients are
    /// notoriously sloppy here and RFC 5321 4.1.4 forbids refusing mail over it.
    Helo(String),
    Ehlo(String),
    Mail(MailFrom),
    Rcpt(RcptTo),
    Data,
    Rset,
    Noop,
    Quit,
    Help,
    StartTls,
    Vrfy(String),
    Auth {
        /// Upper-cased.
        mechanism: String,
        /// The initial response as sent; `=` stands for an empty one (RFC 4954 4).
        initial: Option<String>,
    },
    /// RFC 3030 BDAT. CHUNKING is not offered, but a client that sends BDAT anyway sends
    /// `size` octets of data after the line, which must never be read as commands. `size` is
    /// None when the argument is not a chunk size: then where the data ends is unknown.
    Bdat {
        size: Option<u64>,
        last: bool,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFrom {
    /// `None` for the null reverse-path `<>` (bounces).
    pub reverse_path: Option<Address>,
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// xtext-decoded.
    pub envid: Option<String>,
    /// xtext-decoded; `<>` when the client vouches for no one (RFC 4954 5).
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    pub forward_path: Address,
    pub notify: Option<Vec<Notify>>,
    /// xtext-decoded, still `addr-type;address`, e.g. `rfc822;user@example.com`.
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    Never,
    Success,
    Failure,
    Delay,
}

/// A mailbox from a path. The local part is stored unquoted and unescaped, so `"john"@x` and
/// `john@x` are the same address; `Display` quotes it again when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    /// A domain name or a bracketed address literal such as `[192.0.2.1]`; empty only for the
    /// bare `<Postmaster>` recipient, whose local part is then `postmaster`.
    pub domain: String,
}

impl Address {
    /// Whether the address needs SMTPUTF8 to travel.
    pub fn utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }

    /// `local@domain` with the domain lower-cased, for comparisons and lookups. Local parts are
    /// case-sensitive by the RFC, so folding them is the caller's decision.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        push_local(&mut out, &self.local);
        if !self.domain.is_empty() {
            out.push('@');
            out.push_str(&self.domain.to_lowercase());
        }
        out
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut local = String::new();
        push_local(&mut local, &self.local);
        f.write_str(&local)?;
        if !self.domain.is_empty() {
            write!(f, "@{}", self.domain)?;
        }
        Ok(())
    }
}

/// Writes a local part in the form it must take on the wire: bare if it is a dot-string,
/// otherwise as a quoted string.
fn push_local(out: &mut String, local: &str) {
    if is_dot_string(local) {
        out.push_str(local);
        return;
    }
    out.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The session answers 500 5.5.1.
    #[error("unrecognized command")]
    UnknownCommand,
    /// The command's shape is wrong; the session answers 501 5.5.4.
    #[error("{0}")]
    Syntax(&'static str),
    /// The mailbox inside the angle brackets is malformed; the session answers 501 5.1.7 for
    /// MAIL and 501 5.1.3 for RCPT.
    #[error("{0}")]
    BadAddress(&'static str),
    /// An ESMTP parameter is unknown, repeated or has a bad value; the session answers 555 5.5.4.
    #[error("{0}")]
    BadParameter(String),
}

/// Parses one command line, given without its CRLF or LF.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.contains(&0) {
        return Err(ParseError::Syntax("NUL byte in command"));
    }
    let line =
        std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not valid UTF-8"))?;
    // Hand-typed sessions and some clients leave trailing blanks; no argument ends in one.
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, Some(rest)),
        None => (line, None),
    };
    if verb.len() > 8 {
        return Err(ParseError::UnknownCommand);
    }
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => Ok(Command::Helo(domain_argument(rest)?)),
        "EHLO" => Ok(Command::Ehlo(domain_argument(rest)?)),
        "MAIL" => parse_mail(rest.unwrap_or_default()).map(Command::Mail),
        "RCPT" => parse_rcpt(rest.unwrap_or_default()).map(Command::Rcpt),
        "DATA" => no_argument(rest, Command::Data),
        "RSET" => no_argument(rest, Command::Rset),
        "QUIT" => no_argument(rest, Command::Quit),
        "STARTTLS" => no_argument(rest, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => match rest.map(str::trim).filter(|arg| !arg.is_empty()) {
            Some(arg) => Ok(Command::Vrfy(arg.to_owned())),
            None => Err(ParseError::Syntax("VRFY requires an argument")),
        },
        "AUTH" => parse_auth(rest.unwrap_or_default()),
        "BDAT" => Ok(parse_bdat(rest.unwrap_or_default())),
        _ => Err(ParseError::UnknownCommand),
    }
}

/// `BDAT chunk-size [ SP end-marker ]`; any other argument leaves the size unknown.
fn parse_bdat(rest: &str) -> Command {
    let mut words = rest.split(' ');
    let size = words
        .next()
        .filter(|w| !w.is_empty() && w.len() <= 20 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok());
    let last = match (words.next(), words.next()) {
        (None, None) => false,
        (Some(marker), None) if marker.eq_ignore_ascii_case("LAST") => true,
        _ => {
            return Command::Bdat {
                size: None,
                last: false,
            };
        }
    };
    Command::Bdat { size, last }
}

fn domain_argument(rest: Option<&str>) -> Result<String, ParseError> {
    match rest.map(str::trim).filter(|arg| !arg.is_empty()) {
        Some(arg) => Ok(arg.to_owned()),
        None => Err(ParseError::Syntax(
            "a domain or address literal is required",
        )),
    }
}

fn no_argument(rest: Option<&str>, command: Command) -> Result<Command, ParseError> {
    match rest {
        Some(_) => Err(ParseError::Syntax("this command takes no argument")),
        None => Ok(command),
    }
}

fn parse_auth(rest: &str) -> Result<Command, ParseError> {
    if !rest.is_ascii() {
        return Err(ParseError::Syntax("non-ASCII octets outside an address"));
    }
    let mut words = rest.split(' ').filter(|word| !word.is_empty());
    let mechanism = words
        .next()
        .ok_or(ParseError::Syntax("AUTH requires a mechanism"))?;
    if !is_mechanism(mechanism) {
        return Err(ParseError::Syntax("malformed SASL mechanism name"));
    }
    let initial = words.next().map(str::to_owned);
    if words.next().is_some() {
        return Err(ParseError::Syntax(
            "AUTH takes a mechanism and at most one response",
        ));
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial,
    })
}

/// RFC 4422 3.1: upper-case letters, digits, hyphen and underscore; we also take lower case,
/// since the name is compared case-insensitively anyway.
fn is_mechanism(name: &str) -> bool {
    (1..=MAX_MECHANISM).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_mail(rest: &str) -> Result<MailFrom, ParseError> {
    let (path, params) = split_path(rest, "FROM:", "expected MAIL FROM:<address>")?;
    let reverse_path = if path.is_empty() {
        None
    } else {
        Some(parse_path(path)?)
    };
    let mut mail = MailFrom {
        reverse_path,
        ..MailFrom::default()
    };
    for (keyword, value) in parameters(params)? {
        match keyword.as_str() {
            "SIZE" => mail.size = Some(size_value(required(&keyword, value)?)?),
            "BODY" => {
                let value = required(&keyword, value)?;
                mail.body = Some(if value.eq_ignore_ascii_case("7BIT") {
                    Body::SevenBit
                } else if value.eq_ignore_ascii_case("8BITMIME") {
                    Body::EightBitMime
                } else {
                    return Err(bad_parameter("BODY must be 7BIT or 8BITMIME"));
                });
            }
            "SMTPUTF8" => {
                if value.is_some() {
                    return Err(bad_parameter("SMTPUTF8 takes no value"));
                }
                mail.smtputf8 = true;
            }
            "RET" => {
                let value = required(&keyword, value)?;
                mail.ret = Some(if value.eq_ignore_ascii_case("FULL") {
                    Ret::Full
                } else if value.eq_ignore_ascii_case("HDRS") {
                    Ret::Hdrs
                } else {
                    return Err(bad_parameter("RET must be FULL or HDRS"));
                });
            }
            "ENVID" => {
                let value = required(&keyword, value)?;
                if value.len() > MAX_ENVID {
                    return Err(bad_parameter("ENVID longer than 100 characters"));
                }
                mail.envid = Some(xtext_decode(&keyword, value)?);
            }
            "AUTH" => mail.auth = Some(xtext_decode(&keyword, required(&keyword, value)?)?),
            _ => return Err(unsupported(&keyword)),
        }
    }
    Ok(mail)
}

fn parse_rcpt(rest: &str) -> Result<RcptTo, ParseError> {
    let (path, params) = split_path(rest, "TO:", "expected RCPT TO:<address>")?;
    if path.is_empty() {
        return Err(ParseError::BadAddress(
            "recipient address must not be empty",
        ));
    }
    let forward_path = if path.eq_ignore_ascii_case("postmaster") {
        // RFC 5321 4.5.1: the one mailbox that must work without a domain.
        Address {
            local: "postmaster".to_owned(),
            domain: String::new(),
        }
    } else {
        parse_path(path)?
    };
    let mut rcpt = RcptTo {
        forward_path,
        notify: None,
        orcpt: None,
    };
    for (keyword, value) in parameters(params)? {
        match keyword.as_str() {
            "NOTIFY" => rcpt.notify = Some(notify_value(required(&keyword, value)?)?),
            "ORCPT" => {
                let value = required(&keyword, value)?;
                if value.len() > MAX_ORCPT {
                    return Err(bad_parameter("ORCPT longer than 500 characters"));
                }
                let orcpt = xtext_decode(&keyword, value)?;
                match orcpt.split_once(';') {
                    Some((addr_type, address))
                        if is_keyword(addr_type) && !address.trim().is_empty() => {}
                    _ => return Err(bad_parameter("ORCPT must be addr-type;address")),
                }
                rcpt.orcpt = Some(orcpt);
            }
            _ => return Err(unsupported(&keyword)),
        }
    }
    Ok(rcpt)
}

/// Splits `FROM:<path> params` into the text between the angle brackets and the parameters.
fn split_path<'a>(
    rest: &'a str,
    keyword: &str,
    message: &'static str,
) -> Result<(&'a str, &'a str), ParseError> {
    let rest = rest.trim_start_matches(' ');
    let rest = match rest.get(..keyword.len()) {
        Some(head) if head.eq_ignore_ascii_case(keyword) => &rest[keyword.len()..],
        _ => return Err(ParseError::Syntax(message)),
    };
    // RFC 5321 allows no space after the colon, but enough clients send one that refusing
    // it would only lose mail.
    let rest = rest.trim_start_matches(' ');
    let Some(after_open) = rest.strip_prefix('<') else {
        return Err(ParseError::Syntax("address must be enclosed in <>"));
    };
    let close =
        closing_bracket(after_open).ok_or(ParseError::Syntax("address must be enclosed in <>"))?;
    let path = &after_open[..close];
    if path.len() + 2 > MAX_PATH {
        return Err(ParseError::Syntax("path longer than 256 octets"));
    }
    let params = &after_open[close + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(ParseError::Syntax("expected a space after the address"));
    }
    Ok((path, params))
}

/// Finds the `>` that closes a path, skipping any inside a quoted local part.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'>' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// Parses the text between the angle brackets of a non-null path.
fn parse_path(path: &str) -> Result<Address, ParseError> {
    mailbox(strip_source_route(path)?)
}

/// RFC 5321 4.1.1.3 says to accept and ignore source routes (`@a,@b:user@host`).
fn strip_source_route(path: &str) -> Result<&str, ParseError> {
    if !path.starts_with('@') {
        return Ok(path);
    }
    // The colon ending the route may not be one inside an IPv6 literal.
    let mut in_literal = false;
    for (i, b) in path.bytes().enumerate() {
        match b {
            b'[' => in_literal = true,
            b']' => in_literal = false,
            b':' if !in_literal => {
                for hop in path[..i].split(',') {
                    let domain = hop
                        .strip_prefix('@')
                        .ok_or(ParseError::BadAddress("malformed source route"))?;
                    check_domain(domain)?;
                }
                return Ok(&path[i + 1..]);
            }
            _ => {}
        }
    }
    Err(ParseError::BadAddress("malformed source route"))
}

fn mailbox(text: &str) -> Result<Address, ParseError> {
    let (local, domain) = if let Some(quoted) = text.strip_prefix('"') {
        let (local, rest) = quoted_local_part(quoted)?;
        let domain = rest
            .strip_prefix('@')
            .ok_or(ParseError::BadAddress("address must be local-part@domain"))?;
        (local, domain)
    } else {
        let (local, domain) = text
            .split_once('@')
            .ok_or(ParseError::BadAddress("address must be local-part@domain"))?;
        if local.is_empty() {
            return Err(ParseError::BadAddress("empty local part"));
        }
        if !is_dot_string(local) {
            return Err(ParseError::BadAddress("invalid character in local part"));
        }
        (local.to_owned(), domain)
    };
    if local.is_empty() {
        return Err(ParseError::BadAddress("empty local part"));
    }
    // Measured as sent, quotes and backslashes included, as RFC 5321 counts it.
    if text.len() - domain.len() - 1 > MAX_LOCAL_PART {
        return Err(ParseError::Syntax("local part longer than 64 octets"));
    }
    check_domain(domain)?;
    Ok(Address {
        local,
        domain: domain.to_owned(),
    })
}

/// Reads a quoted local part whose opening quote is already gone; returns it unescaped and the
/// text after the closing quote.
fn quoted_local_part(text: &str) -> Result<(String, &str), ParseError> {
    let mut local = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((local, &text[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) if (' '..='~').contains(&escaped) => local.push(escaped),
                _ => {
                    return Err(ParseError::BadAddress(
                        "invalid escape in quoted local part",
                    ));
                }
            },
            ' ' | '!' | '#'..='[' | ']'..='~' => local.push(c),
            c if is_utf8_text(c) => local.push(c),
            _ => {
                return Err(ParseError::BadAddress(
                    "invalid character in quoted local part",
                ));
            }
        }
    }
    Err(ParseError::BadAddress("unterminated quoted local part"))
}

/// RFC 5321 Dot-string, with RFC 6531's UTF-8 in atoms.
fn is_dot_string(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_utf8_text(c)
}

/// Non-ASCII characters RFC 6531 lets into addresses; controls and spaces would only ever be
/// mischief.
fn is_utf8_text(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace()
}

fn check_domain(domain: &str) -> Result<(), ParseError> {
    if domain.is_empty() {
        return Err(ParseError::BadAddress("missing domain"));
    }
    if domain.len() > MAX_DOMAIN {
        return Err(ParseError::Syntax("domain longer than 255 octets"));
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let literal = literal
            .strip_suffix(']')
            .ok_or(ParseError::BadAddress("malformed address literal"))?;
        let valid = match literal.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                literal[5..].parse::<Ipv6Addr>().is_ok()
            }
            _ => literal.parse::<Ipv4Addr>().is_ok(),
        };
        return if valid {
            Ok(())
        } else {
            Err(ParseError::BadAddress("malformed address literal"))
        };
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(ParseError::BadAddress("empty label in domain"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(ParseError::BadAddress(
                "domain label starts or ends with a hyphen",
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || is_utf8_text(c))
        {
            return Err(ParseError::BadAddress("invalid character in domain"));
        }
        if label.is_ascii() && label.len() > MAX_LABEL {
            return Err(ParseError::BadAddress("domain label longer than 63 octets"));
        }
    }
    Ok(())
}

/// Splits the ESMTP parameters after a path into upper-cased keywords and raw values, refusing
/// repeats so that a later value can never silently override an earlier one.
fn parameters(text: &str) -> Result<Vec<(String, Option<&str>)>, ParseError> {
    let mut params: Vec<(String, Option<&str>)> = Vec::new();
    for param in text.split(' ').filter(|param| !param.is_empty()) {
        if !param.is_ascii() {
            return Err(ParseError::Syntax("non-ASCII octets outside an address"));
        }
        let (keyword, value) = match param.split_once('=') {
            Some((keyword, value)) => (keyword, Some(value)),
            None => (param, None),
        };
        if !is_keyword(keyword) {
            return Err(bad_parameter("malformed parameter"));
        }
        let keyword = keyword.to_ascii_uppercase();
        // RFC 5321 esmtp-value: printable ASCII except "=", at least one.
        if let Some(value) = value
            && (value.is_empty()
                || !value
                    .bytes()
                    .all(|b| (b'!'..=b'~').contains(&b) && b != b'='))
        {
            return Err(ParseError::BadParameter(format!(
                "malformed value for {keyword}"
            )));
        }
        if params.iter().any(|(seen, _)| *seen == keyword) {
            return Err(ParseError::BadParameter(format!(
                "duplicate {keyword} parameter"
            )));
        }
        params.push((keyword, value));
    }
    Ok(params)
}

/// RFC 5321 esmtp-keyword, also the shape of RFC 3461's addr-type.
fn is_keyword(text: &str) -> bool {
    text.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn required<'a>(keyword: &str, value: Option<&'a str>) -> Result<&'a str, ParseError> {
    value.ok_or_else(|| ParseError::BadParameter(format!("{keyword} requires a value")))
}

fn bad_parameter(message: &str) -> ParseError {
    ParseError::BadParameter(message.to_owned())
}

fn unsupported(keyword: &str) -> ParseError {
    ParseError::BadParameter(format!("unsupported parameter {keyword}"))
}

fn size_value(value: &str) -> Result<u64, ParseError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_parameter("SIZE must be a decimal number"));
    }
    value
        .parse()
        .map_err(|_| bad_parameter("SIZE value too large"))
}

fn notify_value(value: &str) -> Result<Vec<Notify>, ParseError> {
    let mut notify = Vec::new();
    for item in value.split(',') {
        let item = if item.eq_ignore_ascii_case("NEVER") {
            Notify::Never
        } else if item.eq_ignore_ascii_case("SUCCESS") {
            Notify::Success
        } else if item.eq_ignore_ascii_case("FAILURE") {
            Notify::Failure
        } else if item.eq_ignore_ascii_case("DELAY") {
            Notify::Delay
        } else {
            return Err(bad_parameter(
                "NOTIFY takes NEVER or SUCCESS, FAILURE and DELAY",
            ));
        };
        if notify.contains(&item) {
            return Err(bad_parameter("NOTIFY lists a value twice"));
        }
        notify.push(item);
    }
    if notify.len() > 1 && notify.contains(&Notify::Never) {
        return Err(bad_parameter("NOTIFY=NEVER must appear alone"));
    }
    Ok(notify)
}

/// Decodes RFC 3461 xtext (`+XX` hex escapes). The result ends up in DSN headers, so control
/// characters smuggled in as escapes are refused rather than passed along.
fn xtext_decode(keyword: &str, value: &str) -> Result<String, ParseError> {
    let bad = || ParseError::BadParameter(format!("malformed xtext in {keyword}"));
    let mut decoded = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'+' {
            // RFC 3461 asks for upper-case hex; lower case is accepted because it is unambiguous.
            let Some((&[high, low], tail)) = tail.split_first_chunk::<2>() else {
                return Err(bad());
            };
            let (high, low) = hex_digit(high).zip(hex_digit(low)).ok_or_else(bad)?;
            decoded.push((high << 4) | low);
            rest = tail;
        } else {
            decoded.push(b);
            rest = tail;
        }
    }
    if decoded.iter().any(|&b| b < b' ' || b == 0x7f) {
        return Err(bad());
    }
    String::from_utf8(decoded).map_err(|_| bad())
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
