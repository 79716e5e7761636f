//! Unit tests for the POP3 command parser: one line in, one expected command or error out.

use crate::pop3::command::{Command, ParseError, parse};

#[track_caller]
fn check(line: impl AsRef<[u8]>, expected: Result<Command, ParseError>) {
    let line = line.as_ref();
    assert_eq!(
        parse(line),
        expected,
        "line: {:?}",
        String::from_utf8_lossy(line)
    );
}

fn syntax(message: &'static str) -> Result<Command, ParseError> {
    Err(ParseError::Syntax(message))
}

fn auth(mechanism: Option<&str>, initial: Option<&str>) -> Result<Command, ParseError> {
    Ok(Command::Auth {
        mechanism: mechanism.map(str::to_owned),
        initial: initial.map(str::to_owned),
    })
}

#[test]
fn keywords_in_any_case() {
    check("CAPA", Ok(Command::Capa));
    check("capa", Ok(Command::Capa));
    check("Stls", Ok(Command::Stls));
    check("STAT", Ok(Command::Stat));
    check("rset", Ok(Command::Rset));
    check("NOOP", Ok(Command::Noop));
    check("QuIt", Ok(Command::Quit));
    check("QUIT  ", Ok(Command::Quit));
}

#[test]
fn unknown_keywords() {
    check("", Err(ParseError::UnknownCommand));
    check(
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb",
        Err(ParseError::UnknownCommand),
    );
    check("STARTTLS", Err(ParseError::UnknownCommand));
    check("LIS", Err(ParseError::UnknownCommand));
    check(" QUIT", Err(ParseError::UnknownCommand));
}

#[test]
fn no_argument_commands_refuse_one() {
    check("STAT 1", syntax("this command takes no argument"));
    check("QUIT now", syntax("this command takes no argument"));
    check("CAPA x", syntax("this command takes no argument"));
}

#[test]
fn nul_and_invalid_utf8() {
    check(b"USER a\0b", syntax("NUL byte in command"));
    check(b"PASS se\0cret", syntax("NUL byte in command"));
    check(b"USER \xc3", syntax("command is not valid UTF-8"));
}

#[test]
fn user() {
    check("USER alice", Ok(Command::User("alice".into())));
    check(
        "user alice@example.com ",
        Ok(Command::User("alice@example.com".into())),
    );
    check("USER josé", Ok(Command::User("josé".into())));
    check("USER", syntax("USER requires a name"));
    check("USER  ", syntax("USER requires a name"));
}

#[test]
fn pass_keeps_spaces() {
    check("PASS secret", Ok(Command::Pass("secret".into())));
    check(
        "pass correct horse battery staple",
        Ok(Command::Pass("correct horse battery staple".into())),
    );
    check(
        "PASS  leading and trailing ",
        Ok(Command::Pass(" leading and trailing ".into())),
    );
    check("PASS", syntax("PASS requires a password"));
    check("PASS ", syntax("PASS requires a password"));
}

#[test]
fn auth_forms() {
    check("AUTH", auth(None, None));
    check("auth plain", auth(Some("PLAIN"), None));
    check(
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
        auth(Some("PLAIN"), Some("AGFsaWNlAHNlY3JldA==")),
    );
    check("AUTH PLAIN =", auth(Some("PLAIN"), Some("=")));
    check("AUTH X-OAUTH_2", auth(Some("X-OAUTH_2"), None));
    check(
        "AUTH PLAIN a b",
        syntax("AUTH takes a mechanism and at most one response"),
    );
    check("AUTH PL/AIN", syntax("malformed SASL mechanism name"));
    check("AUTH PLAIN é", syntax("malformed initial response"));
}

#[test]
fn list_and_uidl() {
    check("LIST", Ok(Command::List(None)));
    check("LIST 3", Ok(Command::List(Some(3))));
    check("uidl", Ok(Command::Uidl(None)));
    check("UIDL 4294967295", Ok(Command::Uidl(Some(u32::MAX))));
    check("LIST 1 2", syntax("too many arguments"));
}

#[test]
fn retr_and_dele() {
    check("RETR 1", Ok(Command::Retr(1)));
    check("retr 007", Ok(Command::Retr(7)));
    check("DELE 12", Ok(Command::Dele(12)));
    check("RETR", syntax("a message number is required"));
    check("DELE 1 2", syntax("too many arguments"));
}

#[test]
fn bad_message_numbers() {
    for arg in [
        "0",
        "-1",
        "+1",
        "1.5",
        "x",
        "4294967296",
        "99999999999999999999",
        "１",
    ] {
        check(
            format!("RETR {arg}"),
            syntax("message number must be a positive integer"),
        );
        check(
            format!("LIST {arg}"),
            syntax("message number must be a positive integer"),
        );
    }
}

#[test]
fn top() {
    check("TOP 1 10", Ok(Command::Top { msg: 1, lines: 10 }));
    check("top 2 0", Ok(Command::Top { msg: 2, lines: 0 }));
    check(
        "TOP 0 10",
        syntax("message number must be a positive integer"),
    );
    check(
        "TOP 1 -1",
        syntax("line count must be a non-negative integer"),
    );
    check(
        "TOP 1 4294967296",
        syntax("line count must be a non-negative integer"),
    );
    check(
        "TOP 1",
        syntax("TOP takes a message number and a line count"),
    );
    check(
        "TOP 1 2 3",
        syntax("TOP takes a message number and a line count"),
    );
}

#[test]
fn errors_render_as_reply_text() {
    assert_eq!(ParseError::UnknownCommand.to_string(), "unknown command");
    assert_eq!(
        ParseError::Syntax("too many arguments").to_string(),
        "too many arguments"
    );
}
