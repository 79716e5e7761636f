//! Every reply the SMTP server gives, in one place: a basic code (RFC 5321 4.2), an enhanced
//! status code (RFC 3463), and text for the person reading a bounce. Fixed replies are statics;
//! replies with a detail are functions. A session sends one with `Session::reply` (or
//! `Session::error`, which also counts it towards the session's error limit).
//!
//! Multi-line replies (EHLO) and the greeting are written by the session itself.

use std::borrow::Cow;
use std::fmt;

/// One single-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    const fn fixed(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    fn with(code: u16, status: &'static str, text: String) -> Reply {
        Reply {
            code,
            status,
            text: Cow::Owned(text),
        }
    }

    /// A 4xx reply: the client should try again later.
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.status, self.text)
    }
}

// ---- the session ----
pub static SHUTTING_DOWN: Reply =
    Reply::fixed(421, "4.3.2", "Service shutting down, closing connection");
pub static MOVING: Reply = Reply::fixed(
    421,
    "4.3.2",
    "This address is moving to another cluster node, reconnect now",
);
pub static IDLE_TIMEOUT: Reply = Reply::fixed(421, "4.4.2", "Idle timeout, closing connection");
pub static TOO_MANY_ERRORS: Reply =
    Reply::fixed(421, "4.7.0", "Too many errors, closing connection");
pub static LINE_TOO_LONG: Reply = Reply::fixed(500, "5.5.2", "Line too long");
pub static UNKNOWN_COMMAND: Reply = Reply::fixed(500, "5.5.1", "Command unrecognized");
pub static OK: Reply = Reply::fixed(250, "2.0.0", "Ok");
pub static HELP: Reply = Reply::fixed(214, "2.0.0", "See RFC 5321");
pub static NO_VRFY: Reply = Reply::fixed(252, "2.5.2", "Cannot VRFY user, but will accept message");
pub static BYE: Reply = Reply::fixed(221, "2.0.0", "Bye");
pub static EHLO_SYNTAX: Reply = Reply::fixed(501, "5.5.4", "Syntax: EHLO hostname");

pub fn syntax_error(why: &str) -> Reply {
    Reply::with(501, "5.5.4", format!("Syntax error: {why}"))
}

pub fn bad_address(why: &str) -> Reply {
    Reply::with(501, "5.1.3", format!("Bad address syntax: {why}"))
}

pub fn bad_parameter(why: &str) -> Reply {
    Reply::with(555, "5.5.4", why.to_owned())
}

pub fn helo_blocked(name: &str, reason: &str) -> Reply {
    Reply::with(
        550,
        "5.7.1",
        format!("<{name}>: Helo command rejected: {reason}"),
    )
}

// ---- STARTTLS and AUTH ----
pub static TLS_ACTIVE: Reply = Reply::fixed(503, "5.5.1", "TLS already active");
pub static TLS_UNAVAILABLE: Reply = Reply::fixed(454, "4.7.0", "TLS not available");
pub static START_TLS: Reply = Reply::fixed(220, "2.0.0", "Ready to start TLS");
pub static AUTH_NEEDS_EHLO: Reply = Reply::fixed(503, "5.5.1", "Send EHLO first");
pub static ALREADY_AUTHENTICATED: Reply = Reply::fixed(503, "5.5.1", "Already authenticated");
pub static AUTH_IN_TRANSACTION: Reply =
    Reply::fixed(503, "5.5.1", "AUTH not allowed during a mail transaction");
pub static ENCRYPTION_REQUIRED: Reply = Reply::fixed(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
);
pub static UNKNOWN_MECHANISM: Reply =
    Reply::fixed(504, "5.5.4", "Unrecognized authentication mechanism");
pub static AUTH_CANCELLED: Reply = Reply::fixed(501, "5.0.0", "Authentication cancelled");
pub static AUTH_MALFORMED: Reply = Reply::fixed(501, "5.5.2", "Malformed authentication response");
pub static AUTH_INVALID: Reply = Reply::fixed(535, "5.7.8", "Authentication credentials invalid");
pub static AUTH_OK: Reply = Reply::fixed(235, "2.7.0", "Authentication successful");
pub static LOCKED_OUT: Reply = Reply::fixed(
    454,
    "4.7.0",
    "Too many failed logins: logging in to this account from your address is blocked for a \
     while; try again later",
);

// ---- MAIL and RCPT ----
pub static MAIL_NEEDS_HELO: Reply = Reply::fixed(503, "5.5.1", "Send HELO/EHLO first");
pub static NESTED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Nested MAIL command");
pub static AUTH_REQUIRED: Reply = Reply::fixed(530, "5.7.0", "Authentication required");
pub static PARAMETERS_NEED_EHLO: Reply = Reply::fixed(555, "5.5.4", "MAIL parameters need EHLO");
pub static NEEDS_SMTPUTF8: Reply = Reply::fixed(553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
pub static TOO_BIG: Reply = Reply::fixed(
    552,
    "5.3.4",
    "Message size exceeds fixed maximum message size",
);
pub static LOOKUP_FAILED: Reply =
    Reply::fixed(451, "4.3.0", "Temporary lookup failure, try again later");
pub static SENDER_OK: Reply = Reply::fixed(250, "2.1.0", "Ok");
pub static NEEDS_MAIL: Reply = Reply::fixed(503, "5.5.1", "Need MAIL command");
/// RFC 5321 4.5.3.1.10: the client sends the rest in another transaction.
pub static TOO_MANY_RECIPIENTS: Reply = Reply::fixed(452, "4.5.3", "Too many recipients");
pub static MAILBOX_FULL: Reply = Reply::fixed(452, "4.2.2", "Mailbox full");
pub static RECIPIENT_OK: Reply = Reply::fixed(250, "2.1.5", "Ok");
pub static NO_POSTMASTER: Reply = Reply::fixed(
    550,
    "5.1.1",
    "No postmaster mailbox is configured here; the operator must add postmaster@ of the \
     primary domain",
);
pub static UNKNOWN_USER: Reply =
    Reply::fixed(550, "5.1.1", "User unknown in local recipient table");
pub static RELAY_DENIED: Reply = Reply::fixed(554, "5.7.1", "Relay access denied");

pub fn sender_blocked(address: &impl fmt::Display, reason: &str) -> Reply {
    Reply::with(
        553,
        "5.7.1",
        format!("<{address}>: Sender address rejected: {reason}"),
    )
}

pub fn sender_not_owned(address: &impl fmt::Display, user: &str) -> Reply {
    Reply::with(
        553,
        "5.7.1",
        format!("<{address}>: Sender address not owned by user {user}"),
    )
}

pub fn recipient_blocked(address: &impl fmt::Display, reason: &str) -> Reply {
    Reply::with(
        550,
        "5.7.1",
        format!("<{address}>: Recipient address rejected: {reason}"),
    )
}

// ---- DATA and BDAT ----
pub static NO_VALID_RECIPIENTS: Reply = Reply::fixed(554, "5.5.1", "No valid recipients");
pub static TOO_SLOW: Reply = Reply::fixed(
    421,
    "4.4.2",
    "Message data arriving too slowly, closing connection",
);
pub static NO_MEMORY: Reply =
    Reply::fixed(452, "4.3.1", "Insufficient system storage, try again later");
pub static TOO_MANY_HOPS: Reply = Reply::fixed(554, "5.4.6", "Too many hops (mail loop?)");
pub static BDAT_SYNTAX: Reply = Reply::fixed(
    501,
    "5.5.4",
    "Syntax: BDAT chunk-size [LAST]; closing connection",
);
pub static NO_CHUNKING: Reply = Reply::fixed(
    502,
    "5.5.1",
    "CHUNKING is not offered here; send the message with DATA",
);
pub static LONG_LINE: Reply = Reply::fixed(
    550,
    "5.6.0",
    "Message has a line longer than 998 characters (RFC 5322)",
);
pub static BARE_LINE_END: Reply = Reply::fixed(
    550,
    "5.6.0",
    "Bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)",
);
pub static NUL_BYTE: Reply = Reply::fixed(550, "5.6.0", "NUL byte in message");

// ---- storing and committing ----
pub static NO_MIRROR: Reply = Reply::fixed(451, "4.3.0", "Mirror unavailable, try again later");
pub static STORAGE_FAILED: Reply =
    Reply::fixed(451, "4.3.0", "Temporary storage failure, try again later");
pub static TEMPORARY_FAILURE: Reply =
    Reply::fixed(451, "4.3.0", "Temporary failure, try again later");
pub static COMMIT_FAILED: Reply = Reply::fixed(
    451,
    "4.3.0",
    "Temporary failure committing the message, try again later",
);

pub fn too_complex(why: &impl fmt::Display) -> Reply {
    Reply::with(554, "5.6.0", format!("Message refused: {why}"))
}

pub fn queued(queue_id: &str) -> Reply {
    Reply::with(250, "2.0.0", format!("Ok: queued as {queue_id}"))
}

// ---- content filters ----
pub static SPAM: Reply = Reply::fixed(550, "5.7.1", "Message rejected as spam");
pub static SCANNER_UNAVAILABLE: Reply =
    Reply::fixed(451, "4.7.1", "Content scanner unavailable, try again later");

pub fn virus(name: &str) -> Reply {
    Reply::with(
        554,
        "5.7.1",
        format!("Message rejected: virus found ({name})"),
    )
}

// ---- DNS checks on port 25 ----
pub fn helo_not_acceptable(name: &str, problem: &impl fmt::Display) -> Reply {
    Reply::with(
        550,
        "5.7.1",
        format!("<{name}>: Helo command rejected: the name {problem}"),
    )
}

pub fn spf_fail(client: &impl fmt::Display, domain: &str) -> Reply {
    Reply::with(
        550,
        "5.7.23",
        format!("SPF check failed: {client} is not allowed to send mail for {domain}"),
    )
}

pub fn no_reverse_dns(ip: &impl fmt::Display, temporary: bool) -> Reply {
    if temporary {
        Reply::with(
            450,
            "4.7.25",
            format!("Client host rejected: cannot find your reverse hostname, [{ip}]"),
        )
    } else {
        Reply::with(
            550,
            "5.7.25",
            format!("Client host rejected: cannot find your hostname, [{ip}]"),
        )
    }
}

pub static DMARC_REJECT: Reply = Reply::fixed(
    550,
    "5.7.1",
    "Message rejected: the sender's domain publishes a DMARC reject policy and this message \
     fails it",
);

pub fn dnsbl_listed(ip: &impl fmt::Display, zone: &str, reason: Option<&str>) -> Reply {
    let text = match reason {
        Some(reason) => {
            format!("Service unavailable; client [{ip}] blocked using {zone}; {reason}")
        }
        None => format!("Service unavailable; client [{ip}] blocked using {zone}"),
    };
    Reply::with(554, "5.7.1", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_code_status_and_text() {
        assert_eq!(OK.to_string(), "250 2.0.0 Ok");
        assert_eq!(queued("7f3a").to_string(), "250 2.0.0 Ok: queued as 7f3a");
        assert!(LOOKUP_FAILED.is_temporary());
        assert!(!UNKNOWN_USER.is_temporary());
    }
}
