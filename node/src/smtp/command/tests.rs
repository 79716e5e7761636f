//! Unit tests for the SMTP command parser: one line in, one expected command or error out.

use crate::smtp::command::{
    Address, Body, Command, MailFrom, Notify, ParseError, RcptTo, Ret, check_domain, parse,
};

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

fn address(local: &str, domain: &str) -> Address {
    Address {
        local: local.to_owned(),
        domain: domain.to_owned(),
    }
}

fn mail(local: &str, domain: &str) -> MailFrom {
    MailFrom {
        reverse_path: Some(address(local, domain)),
        ..MailFrom::default()
    }
}

fn rcpt(local: &str, domain: &str) -> RcptTo {
    RcptTo {
        forward_path: address(local, domain),
        notify: None,
        orcpt: None,
    }
}

fn syntax(message: &'static str) -> Result<Command, ParseError> {
    Err(ParseError::Syntax(message))
}

fn bad_address(message: &'static str) -> Result<Command, ParseError> {
    Err(ParseError::BadAddress(message))
}

fn bad_parameter(message: &str) -> Result<Command, ParseError> {
    Err(ParseError::BadParameter(message.to_owned()))
}

#[test]
fn simple_verbs_in_any_case() {
    check("DATA", Ok(Command::Data));
    check("data", Ok(Command::Data));
    check("rSeT", Ok(Command::Rset));
    check("QUIT", Ok(Command::Quit));
    check("StartTLS", Ok(Command::StartTls));
    check("NOOP", Ok(Command::Noop));
    check("HELP", Ok(Command::Help));
}

#[test]
fn trailing_blanks_are_ignored() {
    check("QUIT  ", Ok(Command::Quit));
    check("DATA\t", Ok(Command::Data));
}

#[test]
fn commands_without_arguments_refuse_one() {
    check("DATA now", syntax("this command takes no argument"));
    check("RSET x", syntax("this command takes no argument"));
    check("QUIT bye", syntax("this command takes no argument"));
    check("STARTTLS x", syntax("this command takes no argument"));
}

#[test]
fn noop_and_help_ignore_arguments() {
    check("NOOP anything at all", Ok(Command::Noop));
    check("HELP MAIL", Ok(Command::Help));
}

#[test]
fn unknown_verbs() {
    check("", Err(ParseError::UnknownCommand));
    check("EXPN list", Err(ParseError::UnknownCommand));
    check("MAILFROM:<a@b.c>", Err(ParseError::UnknownCommand));
    check("GET / HTTP/1.1", Err(ParseError::UnknownCommand));
    check(" DATA", Err(ParseError::UnknownCommand));
}

#[test]
fn nul_and_invalid_utf8() {
    check("DATA\0", syntax("NUL byte in command"));
    check(b"MAIL FROM:<a\0b@c.d>", syntax("NUL byte in command"));
    check(
        b"MAIL FROM:<\xff@c.d>",
        syntax("command is not valid UTF-8"),
    );
}

#[test]
fn helo_and_ehlo() {
    check(
        "HELO mail.example.com",
        Ok(Command::Helo("mail.example.com".into())),
    );
    check("ehlo [192.0.2.1]", Ok(Command::Ehlo("[192.0.2.1]".into())));
    check(
        "EHLO  client.example ",
        Ok(Command::Ehlo("client.example".into())),
    );
    check("EHLO", syntax("a domain or address literal is required"));
    check("HELO ", syntax("a domain or address literal is required"));
}

#[test]
fn vrfy() {
    check("VRFY postmaster", Ok(Command::Vrfy("postmaster".into())));
    check("VRFY John Smith", Ok(Command::Vrfy("John Smith".into())));
    check("VRFY", syntax("VRFY requires an argument"));
}

#[test]
fn auth() {
    check(
        "AUTH plain",
        Ok(Command::Auth {
            mechanism: "PLAIN".into(),
            initial: None,
        }),
    );
    check(
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
        Ok(Command::Auth {
            mechanism: "PLAIN".into(),
            initial: Some("AGFsaWNlAHNlY3JldA==".into()),
        }),
    );
    check(
        "AUTH PLAIN =",
        Ok(Command::Auth {
            mechanism: "PLAIN".into(),
            initial: Some("=".into()),
        }),
    );
    check(
        "AUTH SCRAM-SHA-256",
        Ok(Command::Auth {
            mechanism: "SCRAM-SHA-256".into(),
            initial: None,
        }),
    );
    check("AUTH", syntax("AUTH requires a mechanism"));
    check("AUTH PL@IN", syntax("malformed SASL mechanism name"));
    check(
        "AUTH ABCDEFGHIJKLMNOPQRSTU",
        syntax("malformed SASL mechanism name"),
    );
    check(
        "AUTH PLAIN a b",
        syntax("AUTH takes a mechanism and at most one response"),
    );
    check(
        "AUTH PLAIN é",
        syntax("non-ASCII octets outside an address"),
    );
}

#[test]
fn mail_from_basic() {
    check(
        "MAIL FROM:<alice@example.com>",
        Ok(Command::Mail(mail("alice", "example.com"))),
    );
    check(
        "mail from:<alice@example.com>",
        Ok(Command::Mail(mail("alice", "example.com"))),
    );
    check(
        "MAIL FROM: <alice@example.com>",
        Ok(Command::Mail(mail("alice", "example.com"))),
    );
    check(
        "MAIL  From:<alice@example.com>",
        Ok(Command::Mail(mail("alice", "example.com"))),
    );
    check("MAIL FROM:<>", Ok(Command::Mail(MailFrom::default())));
}

#[test]
fn mail_from_shape_errors() {
    check("MAIL", syntax("expected MAIL FROM:<address>"));
    check("MAIL TO:<a@b.c>", syntax("expected MAIL FROM:<address>"));
    check(
        "MAIL FROM:alice@example.com",
        syntax("address must be enclosed in <>"),
    );
    check(
        "MAIL FROM:<alice@example.com",
        syntax("address must be enclosed in <>"),
    );
    check(
        "MAIL FROM:<alice@example.com>SIZE=1",
        syntax("expected a space after the address"),
    );
    check(
        "MAIL FROM:< >",
        bad_address("address must be local-part@domain"),
    );
}

#[test]
fn mail_from_postmaster_needs_a_domain() {
    check(
        "MAIL FROM:<postmaster>",
        bad_address("address must be local-part@domain"),
    );
}

#[test]
fn rcpt_to_basic() {
    check(
        "RCPT TO:<bob@example.org>",
        Ok(Command::Rcpt(rcpt("bob", "example.org"))),
    );
    check(
        "rcpt to: <bob@example.org>",
        Ok(Command::Rcpt(rcpt("bob", "example.org"))),
    );
    check(
        "RCPT TO:<>",
        bad_address("recipient address must not be empty"),
    );
    check("RCPT", syntax("expected RCPT TO:<address>"));
    check(
        "RCPT FROM:<bob@example.org>",
        syntax("expected RCPT TO:<address>"),
    );
}

#[test]
fn rcpt_to_postmaster() {
    check(
        "RCPT TO:<Postmaster>",
        Ok(Command::Rcpt(rcpt("postmaster", ""))),
    );
    check(
        "RCPT TO:<POSTMASTER>",
        Ok(Command::Rcpt(rcpt("postmaster", ""))),
    );
    check(
        "RCPT TO:<Postmaster@Example.COM>",
        Ok(Command::Rcpt(rcpt("Postmaster", "Example.COM"))),
    );
    check(
        "RCPT TO:<bob>",
        bad_address("address must be local-part@domain"),
    );
}

#[test]
fn source_routes_are_ignored() {
    check(
        "RCPT TO:<@a.example,@b.example:bob@c.example>",
        Ok(Command::Rcpt(rcpt("bob", "c.example"))),
    );
    check(
        "MAIL FROM:<@[IPv6:2001:db8::1]:a@b.example>",
        Ok(Command::Mail(mail("a", "b.example"))),
    );
    check(
        "RCPT TO:<@a.example bob@c.example>",
        bad_address("malformed source route"),
    );
    check(
        "RCPT TO:<@a..example:bob@c.example>",
        bad_address("empty label in domain"),
    );
    check(
        "RCPT TO:<a.example,@b:bob@c.example>",
        bad_address("invalid character in local part"),
    );
}

#[test]
fn quoted_local_parts() {
    check(
        "RCPT TO:<\"john doe\"@example.com>",
        Ok(Command::Rcpt(rcpt("john doe", "example.com"))),
    );
    check(
        "RCPT TO:<\"a\\\"b\\\\c\"@example.com>",
        Ok(Command::Rcpt(rcpt("a\"b\\c", "example.com"))),
    );
    check(
        "RCPT TO:<\"a>b\"@example.com>",
        Ok(Command::Rcpt(rcpt("a>b", "example.com"))),
    );
    check(
        "RCPT TO:<\"john\"@example.com>",
        Ok(Command::Rcpt(rcpt("john", "example.com"))),
    );
    check(
        "RCPT TO:<\"\"@example.com>",
        bad_address("empty local part"),
    );
    check(
        "RCPT TO:<\"john@example.com>",
        syntax("address must be enclosed in <>"),
    );
    check(
        "RCPT TO:<\"john\"example.com>",
        bad_address("address must be local-part@domain"),
    );
    check(
        "RCPT TO:<\"a\tb\"@example.com>",
        bad_address("invalid character in quoted local part"),
    );
}

#[test]
fn dot_string_local_parts() {
    check(
        "RCPT TO:<first.last+tag@example.com>",
        Ok(Command::Rcpt(rcpt("first.last+tag", "example.com"))),
    );
    check(
        "RCPT TO:<!#$%&'*+-/=?^_`{|}~@example.com>",
        Ok(Command::Rcpt(rcpt("!#$%&'*+-/=?^_`{|}~", "example.com"))),
    );
    check(
        "RCPT TO:<.bob@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<bob.@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<a..b@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<a b@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<a(b)@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<@example.com>",
        bad_address("malformed source route"),
    );
    check(
        "RCPT TO:<a@b@example.com>",
        bad_address("invalid character in domain"),
    );
}

#[test]
fn domains() {
    check(
        "RCPT TO:<a@localhost>",
        Ok(Command::Rcpt(rcpt("a", "localhost"))),
    );
    check(
        "RCPT TO:<a@x-1.Example.COM>",
        Ok(Command::Rcpt(rcpt("a", "x-1.Example.COM"))),
    );
    check("RCPT TO:<a@>", bad_address("missing domain"));
    check(
        "RCPT TO:<a@.example.com>",
        bad_address("empty label in domain"),
    );
    check(
        "RCPT TO:<a@example.com.>",
        bad_address("empty label in domain"),
    );
    check(
        "RCPT TO:<a@example..com>",
        bad_address("empty label in domain"),
    );
    check(
        "RCPT TO:<a@-example.com>",
        bad_address("domain label starts or ends with a hyphen"),
    );
    check(
        "RCPT TO:<a@example-.com>",
        bad_address("domain label starts or ends with a hyphen"),
    );
    check(
        "RCPT TO:<a@exa mple.com>",
        bad_address("invalid character in domain"),
    );
    check(
        "RCPT TO:<a@exa_mple.com>",
        bad_address("invalid character in domain"),
    );
    let long_label = "x".repeat(64);
    check(
        format!("RCPT TO:<a@{long_label}.com>"),
        bad_address("domain label longer than 63 octets"),
    );
}

#[test]
fn address_literals() {
    check(
        "RCPT TO:<a@[192.0.2.1]>",
        Ok(Command::Rcpt(rcpt("a", "[192.0.2.1]"))),
    );
    check(
        "RCPT TO:<a@[IPv6:2001:db8::1]>",
        Ok(Command::Rcpt(rcpt("a", "[IPv6:2001:db8::1]"))),
    );
    check(
        "RCPT TO:<a@[ipv6:::ffff:192.0.2.1]>",
        Ok(Command::Rcpt(rcpt("a", "[ipv6:::ffff:192.0.2.1]"))),
    );
    check(
        "RCPT TO:<a@[192.0.2.256]>",
        bad_address("malformed address literal"),
    );
    check(
        "RCPT TO:<a@[2001:db8::1]>",
        bad_address("malformed address literal"),
    );
    check(
        "RCPT TO:<a@[IPv6:192.0.2.1]>",
        bad_address("malformed address literal"),
    );
    check(
        "RCPT TO:<a@[192.0.2.1>",
        bad_address("malformed address literal"),
    );
    check(
        "RCPT TO:<a@[x-tag:stuff]>",
        bad_address("malformed address literal"),
    );
}

#[test]
fn utf8_addresses() {
    check(
        "RCPT TO:<用户@例子.广告>",
        Ok(Command::Rcpt(rcpt("用户", "例子.广告"))),
    );
    check(
        "MAIL FROM:<josé@bücher.example> SMTPUTF8",
        Ok(Command::Mail(MailFrom {
            smtputf8: true,
            ..mail("josé", "bücher.example")
        })),
    );
    check(
        "RCPT TO:<\"δοκιμή test\"@παράδειγμα.δοκιμή>",
        Ok(Command::Rcpt(rcpt("δοκιμή test", "παράδειγμα.δοκιμή"))),
    );
    check(
        "RCPT TO:<a\u{a0}b@example.com>",
        bad_address("invalid character in local part"),
    );
    check(
        "RCPT TO:<a@exa\u{85}mple.com>",
        bad_address("invalid character in domain"),
    );
}

#[test]
fn length_limits() {
    let local64 = "l".repeat(64);
    check(
        format!("RCPT TO:<{local64}@example.com>"),
        Ok(Command::Rcpt(rcpt(&local64, "example.com"))),
    );
    check(
        format!("RCPT TO:<{local64}x@example.com>"),
        syntax("local part longer than 64 octets"),
    );
    // Quotes count towards the limit, as they do on the wire.
    check(
        format!("RCPT TO:<\"{}\"@example.com>", "l".repeat(63)),
        syntax("local part longer than 64 octets"),
    );
    // 254 octets inside the brackets make a path of exactly 256.
    let domain = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    check(
        format!("RCPT TO:<@{domain}:x@y>"),
        Ok(Command::Rcpt(rcpt("x", "y"))),
    );
    check(
        format!("RCPT TO:<@{domain}x:x@y>"),
        syntax("path longer than 256 octets"),
    );
    let huge = format!("MAIL FROM:<{}@example.com>", "a".repeat(10_000));
    check(huge, syntax("path longer than 256 octets"));
    let huge_domain = format!("RCPT TO:<a@{}>", "a.".repeat(5_000));
    check(huge_domain, syntax("path longer than 256 octets"));
}

#[test]
fn domain_length_limit() {
    // Unreachable through a whole path, which is capped first, so checked on its own.
    let domain = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(63)
    );
    assert_eq!(check_domain(&domain), Ok(()));
    assert_eq!(
        check_domain(&format!("{domain}e")),
        Err(ParseError::Syntax("domain longer than 255 octets"))
    );
}

#[test]
fn mail_parameters() {
    check(
        "MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159 AUTH=<>",
        Ok(Command::Mail(MailFrom {
            size: Some(12345),
            body: Some(Body::EightBitMime),
            smtputf8: true,
            ret: Some(Ret::Hdrs),
            envid: Some("QQ314159".into()),
            auth: Some("<>".into()),
            ..mail("a", "b.example")
        })),
    );
    check(
        "MAIL FROM:<> size=0 body=7bit ret=full",
        Ok(Command::Mail(MailFrom {
            size: Some(0),
            body: Some(Body::SevenBit),
            ret: Some(Ret::Full),
            ..MailFrom::default()
        })),
    );
    check(
        "MAIL FROM:<a@b.example>  SIZE=1  ",
        Ok(Command::Mail(MailFrom {
            size: Some(1),
            ..mail("a", "b.example")
        })),
    );
}

#[test]
fn mail_parameter_errors() {
    check(
        "MAIL FROM:<a@b.c> SIZE",
        bad_parameter("SIZE requires a value"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=",
        bad_parameter("malformed value for SIZE"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=-1",
        bad_parameter("SIZE must be a decimal number"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=+1",
        bad_parameter("SIZE must be a decimal number"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=1k",
        bad_parameter("SIZE must be a decimal number"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=18446744073709551616",
        bad_parameter("SIZE value too large"),
    );
    check(
        "MAIL FROM:<a@b.c> BODY=BINARYMIME",
        bad_parameter("BODY must be 7BIT or 8BITMIME"),
    );
    check(
        "MAIL FROM:<a@b.c> BODY=8bit",
        bad_parameter("BODY must be 7BIT or 8BITMIME"),
    );
    check(
        "MAIL FROM:<a@b.c> SMTPUTF8=yes",
        bad_parameter("SMTPUTF8 takes no value"),
    );
    check(
        "MAIL FROM:<a@b.c> RET=ALL",
        bad_parameter("RET must be FULL or HDRS"),
    );
    check(
        "MAIL FROM:<a@b.c> SIZE=1 size=2",
        bad_parameter("duplicate SIZE parameter"),
    );
    check(
        "MAIL FROM:<a@b.c> SMTPUTF8 SMTPUTF8",
        bad_parameter("duplicate SMTPUTF8 parameter"),
    );
    check(
        "MAIL FROM:<a@b.c> x-frob=1",
        bad_parameter("unsupported parameter X-FROB"),
    );
    check(
        "MAIL FROM:<a@b.c> NOTIFY=NEVER",
        bad_parameter("unsupported parameter NOTIFY"),
    );
    check(
        "MAIL FROM:<a@b.c> -X=1",
        bad_parameter("malformed parameter"),
    );
    check("MAIL FROM:<a@b.c> =1", bad_parameter("malformed parameter"));
    check(
        "MAIL FROM:<a@b.c> ENVID=a=b",
        bad_parameter("malformed value for ENVID"),
    );
    check(
        "MAIL FROM:<a@b.c> ENVID=é",
        syntax("non-ASCII octets outside an address"),
    );
    check(
        format!("MAIL FROM:<a@b.c> ENVID={}", "x".repeat(101)),
        bad_parameter("ENVID longer than 100 characters"),
    );
}

#[test]
fn xtext_values() {
    check(
        "MAIL FROM:<a@b.c> ENVID=a+2Bb+3dc AUTH=e+3Dmc2@example.com",
        Ok(Command::Mail(MailFrom {
            envid: Some("a+b=c".into()),
            auth: Some("e=mc2@example.com".into()),
            ..mail("a", "b.c")
        })),
    );
    check(
        "MAIL FROM:<a@b.c> ENVID=a+2",
        bad_parameter("malformed xtext in ENVID"),
    );
    check(
        "MAIL FROM:<a@b.c> ENVID=a+ZZ",
        bad_parameter("malformed xtext in ENVID"),
    );
    check(
        "MAIL FROM:<a@b.c> ENVID=a+0D+0Ab",
        bad_parameter("malformed xtext in ENVID"),
    );
    check(
        "MAIL FROM:<a@b.c> AUTH=+FF",
        bad_parameter("malformed xtext in AUTH"),
    );
    check(
        "MAIL FROM:<a@b.c> AUTH=+C3+A9",
        Ok(Command::Mail(MailFrom {
            auth: Some("é".into()),
            ..mail("a", "b.c")
        })),
    );
}

#[test]
fn rcpt_parameters() {
    check(
        "RCPT TO:<b@c.example> NOTIFY=SUCCESS,failure,Delay ORCPT=rfc822;b+40c.example",
        Ok(Command::Rcpt(RcptTo {
            notify: Some(vec![Notify::Success, Notify::Failure, Notify::Delay]),
            orcpt: Some("rfc822;b@c.example".into()),
            ..rcpt("b", "c.example")
        })),
    );
    check(
        "RCPT TO:<b@c.example> notify=never",
        Ok(Command::Rcpt(RcptTo {
            notify: Some(vec![Notify::Never]),
            ..rcpt("b", "c.example")
        })),
    );
    check(
        "RCPT TO:<b@c.example> NOTIFY=NEVER,DELAY",
        bad_parameter("NOTIFY=NEVER must appear alone"),
    );
    check(
        "RCPT TO:<b@c.example> NOTIFY=DELAY,DELAY",
        bad_parameter("NOTIFY lists a value twice"),
    );
    check(
        "RCPT TO:<b@c.example> NOTIFY=SOMETIMES",
        bad_parameter("NOTIFY takes NEVER or SUCCESS, FAILURE and DELAY"),
    );
    check(
        "RCPT TO:<b@c.example> NOTIFY=SUCCESS,",
        bad_parameter("NOTIFY takes NEVER or SUCCESS, FAILURE and DELAY"),
    );
    check(
        "RCPT TO:<b@c.example> ORCPT=b@c.example",
        bad_parameter("ORCPT must be addr-type;address"),
    );
    check(
        "RCPT TO:<b@c.example> ORCPT=rfc822;",
        bad_parameter("ORCPT must be addr-type;address"),
    );
    check(
        "RCPT TO:<b@c.example> ORCPT=rfc822;a ORCPT=rfc822;b",
        bad_parameter("duplicate ORCPT parameter"),
    );
    check(
        "RCPT TO:<b@c.example> SIZE=10",
        bad_parameter("unsupported parameter SIZE"),
    );
    check(
        "RCPT TO:<Postmaster> NOTIFY=NEVER",
        Ok(Command::Rcpt(RcptTo {
            notify: Some(vec![Notify::Never]),
            ..rcpt("postmaster", "")
        })),
    );
}

#[test]
fn address_display_and_normalized() {
    let plain = address("Alice.Smith", "Example.COM");
    assert_eq!(plain.to_string(), "Alice.Smith@Example.COM");
    assert_eq!(plain.normalized(), "Alice.Smith@example.com");
    assert!(!plain.utf8());

    let quoted = address("john \"jd\" doe", "example.com");
    assert_eq!(quoted.to_string(), "\"john \\\"jd\\\" doe\"@example.com");

    let postmaster = address("postmaster", "");
    assert_eq!(postmaster.to_string(), "postmaster");
    assert_eq!(postmaster.normalized(), "postmaster");

    let utf8 = address("josé", "BÜCHER.example");
    assert!(utf8.utf8());
    assert_eq!(utf8.normalized(), "josé@bücher.example");
    assert!(address("a", "例子.广告").utf8());
}

#[test]
fn display_round_trips_through_the_parser() {
    for path in [
        "a@b.c",
        "\"john doe\"@example.com",
        "\"a\\\\b\"@[192.0.2.1]",
        "用户@例子.广告",
    ] {
        let line = format!("RCPT TO:<{path}>");
        let Ok(Command::Rcpt(rcpt)) = parse(line.as_bytes()) else {
            panic!("{line} did not parse");
        };
        assert_eq!(rcpt.forward_path.to_string(), path);
    }
}

#[test]
fn errors_render_as_reply_text() {
    assert_eq!(
        ParseError::UnknownCommand.to_string(),
        "unrecognized command"
    );
    assert_eq!(
        ParseError::Syntax("path longer than 256 octets").to_string(),
        "path longer than 256 octets"
    );
    assert_eq!(
        ParseError::BadParameter("duplicate SIZE parameter".into()).to_string(),
        "duplicate SIZE parameter"
    );
}

#[test]
fn bdat_sizes_are_read_so_the_chunk_can_be_skipped() {
    let bdat = |size, last| Ok(Command::Bdat { size, last });
    check("BDAT 100", bdat(Some(100), false));
    check("bdat 0 last", bdat(Some(0), true));
    check("BDAT 18446744073709551615 LAST", bdat(Some(u64::MAX), true));
    // Where the chunk ends is unknown: the session must close the connection.
    check("BDAT", bdat(None, false));
    check("BDAT -1", bdat(None, false));
    check("BDAT 10x", bdat(None, false));
    check("BDAT 99999999999999999999999", bdat(None, false));
    check("BDAT 10 LAST more", bdat(None, false));
    check("BDAT 10 FIRST", bdat(None, false));
}
