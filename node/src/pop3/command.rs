//! POP3 command lines (RFC 1939, CAPA and STLS from RFC 2449/2595, AUTH from RFC 5034) parsed
//! into `Command`s; no I/O.
//!
//! Which commands are allowed in which state (AUTHORIZATION or TRANSACTION) is the session's
//! business, not the parser's.

#[cfg(test)]
mod tests;

/// RFC 4422 3.1 caps mechanism names at 20 characters.
const MAX_MECHANISM: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The rest of the line, trailing blanks removed.
    User(String),
    /// The rest of the line after exactly one space, kept byte for byte: passwords may contain
    /// or end in spaces.
    Pass(String),
    Auth {
        /// Upper-cased; `None` for a bare `AUTH`, which older clients send to list mechanisms.
        mechanism: Option<String>,
        /// The initial response as sent; `=` stands for an empty one (RFC 5034 4).
        initial: Option<String>,
    },
    Capa,
    Stls,
    Stat,
    List(Option<u32>),
    Uidl(Option<u32>),
    Retr(u32),
    /// `lines` may be 0: headers only.
    Top {
        msg: u32,
        lines: u32,
    },
    Dele(u32),
    Rset,
    Noop,
    Quit,
}

/// Each message reads well after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    UnknownCommand,
    #[error("{0}")]
    Syntax(&'static str),
}

/// Parses one command line, given without its CRLF or LF.
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    if line.contains(&0) {
        return Err(ParseError::Syntax("NUL byte in command"));
    }
    let line =
        std::str::from_utf8(line).map_err(|_| ParseError::Syntax("command is not valid UTF-8"))?;
    if let Some((keyword, password)) = line.split_once(' ')
        && keyword.eq_ignore_ascii_case("PASS")
    {
        return if password.is_empty() {
            Err(ParseError::Syntax("PASS requires a password"))
        } else {
            Ok(Command::Pass(password.to_owned()))
        };
    }
    // Outside PASS, trailing blanks are typing noise, not meaning.
    let line = line.trim_end_matches([' ', '\t']);
    let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
    if keyword.len() > 4 {
        return Err(ParseError::UnknownCommand);
    }
    let args: Vec<&str> = rest.split(' ').filter(|arg| !arg.is_empty()).collect();
    match keyword.to_ascii_uppercase().as_str() {
        "USER" => match rest.trim_start_matches(' ') {
            "" => Err(ParseError::Syntax("USER requires a name")),
            name => Ok(Command::User(name.to_owned())),
        },
        "PASS" => Err(ParseError::Syntax("PASS requires a password")),
        "AUTH" => parse_auth(&args),
        "CAPA" => no_argument(&args, Command::Capa),
        "STLS" => no_argument(&args, Command::Stls),
        "STAT" => no_argument(&args, Command::Stat),
        "RSET" => no_argument(&args, Command::Rset),
        "NOOP" => no_argument(&args, Command::Noop),
        "QUIT" => no_argument(&args, Command::Quit),
        "LIST" => optional_message(&args).map(Command::List),
        "UIDL" => optional_message(&args).map(Command::Uidl),
        "RETR" => single_message(&args).map(Command::Retr),
        "DELE" => single_message(&args).map(Command::Dele),
        "TOP" => match args.as_slice() {
            [msg, lines] => Ok(Command::Top {
                msg: message_number(msg)?,
                lines: decimal(lines).ok_or(ParseError::Syntax(
                    "line count must be a non-negative integer",
                ))?,
            }),
            _ => Err(ParseError::Syntax(
                "TOP takes a message number and a line count",
            )),
        },
        _ => Err(ParseError::UnknownCommand),
    }
}

fn no_argument(args: &[&str], command: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::Syntax("this command takes no argument"))
    }
}

fn parse_auth(args: &[&str]) -> Result<Command, ParseError> {
    let (mechanism, initial) = match *args {
        [] => {
            return Ok(Command::Auth {
                mechanism: None,
                initial: None,
            });
        }
        [mechanism] => (mechanism, None),
        [mechanism, initial] => (mechanism, Some(initial)),
        _ => {
            return Err(ParseError::Syntax(
                "AUTH takes a mechanism and at most one response",
            ));
        }
    };
    let valid = (1..=MAX_MECHANISM).contains(&mechanism.len())
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ParseError::Syntax("malformed SASL mechanism name"));
    }
    if initial.is_some_and(|initial| !initial.is_ascii()) {
        return Err(ParseError::Syntax("malformed initial response"));
    }
    Ok(Command::Auth {
        mechanism: Some(mechanism.to_ascii_uppercase()),
        initial: initial.map(str::to_owned),
    })
}

fn optional_message(args: &[&str]) -> Result<Option<u32>, ParseError> {
    match *args {
        [] => Ok(None),
        [msg] => message_number(msg).map(Some),
        _ => Err(ParseError::Syntax("too many arguments")),
    }
}

fn single_message(args: &[&str]) -> Result<u32, ParseError> {
    match *args {
        [msg] => message_number(msg),
        [] => Err(ParseError::Syntax("a message number is required")),
        _ => Err(ParseError::Syntax("too many arguments")),
    }
}

/// Message numbers count from 1 (RFC 1939 5).
fn message_number(text: &str) -> Result<u32, ParseError> {
    decimal(text)
        .filter(|&msg| msg >= 1)
        .ok_or(ParseError::Syntax(
            "message number must be a positive integer",
        ))
}

/// Plain decimal digits only: `str::parse` would also take a leading `+`.
fn decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
