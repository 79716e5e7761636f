//! Command reader tests: every command the server takes, framing across arbitrary byte
//! boundaries, limits and recovery after errors, and seeded random input that must never panic.

use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::{CommandCodec, encode::Encoder};

use crate::imap::command::{CommandErrorKind, CommandEvent, CommandReader, Limits, LineEvent};

/// Small limits so tests can cross them cheaply.
const TEST_LIMITS: Limits = Limits {
    line: 200,
    append_literal: 1000,
    literal: 20,
};

/// Renders an event as one line of text: `+` for a continuation request, the command as
/// imap-codec encodes it back (its reading of what was sent), or `ERR tag kind`.
fn render(event: &CommandEvent) -> String {
    match event {
        CommandEvent::NeedMore => "need more".into(),
        CommandEvent::SendContinuation => "+".into(),
        CommandEvent::Command(command) => {
            let bytes = CommandCodec::default().encode(command).dump();
            let text = String::from_utf8_lossy(&bytes);
            text.trim_end_matches("\r\n").replace("\r\n", "\\r\\n")
        }
        CommandEvent::Error(error) => format!(
            "ERR {} {:?}",
            error.tag.as_ref().map_or("*", |tag| tag.inner()),
            error.kind
        ),
    }
}

/// Feeds `chunks` one after the other, taking every event after each, and renders them.
fn run(limits: Limits, chunks: &[&[u8]]) -> Vec<String> {
    let mut reader = CommandReader::new(limits);
    let mut events = Vec::new();
    for chunk in chunks {
        reader.feed(chunk);
        loop {
            let event = reader.next_command();
            if event == CommandEvent::NeedMore {
                break;
            }
            events.push(render(&event));
            assert!(events.len() < 10_000, "the reader does not stop");
        }
    }
    events
}

/// Checks the events for `input` fed at once, byte by byte, and in seeded random chunks.
#[track_caller]
fn check_with(limits: Limits, input: &[u8], expected: &[&str]) {
    assert_eq!(run(limits, &[input]), expected, "fed at once");
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(limits, &bytes), expected, "fed byte by byte");
    let mut seed = 0x1234_5678_9abc_def0 ^ input.len() as u64;
    for _ in 0..5 {
        let mut chunks = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let n = 1 + (next(&mut seed) % 17) as usize;
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        assert_eq!(run(limits, &chunks), expected, "fed in chunks");
    }
}

#[track_caller]
fn check(input: &str, expected: &[&str]) {
    check_with(Limits::default(), input.as_bytes(), expected);
}

/// Parses one command that must succeed and returns its body.
#[track_caller]
fn parse(input: &[u8]) -> Command<'static> {
    let mut reader = CommandReader::new(Limits::default());
    reader.feed(input);
    loop {
        match reader.next_command() {
            CommandEvent::SendContinuation => continue,
            CommandEvent::Command(command) => return command,
            other => panic!("{input:?} gave {other:?}"),
        }
    }
}

fn next(seed: &mut u64) -> u64 {
    // xorshift64: deterministic, no dependency.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn imap_any_state_commands() {
    check("a1 CAPABILITY\r\n", &["a1 CAPABILITY"]);
    check("a2 noop\r\n", &["a2 NOOP"]);
    check("a3 LOGOUT\r\n", &["a3 LOGOUT"]);
    check("a4 STARTTLS\r\n", &["a4 STARTTLS"]);
}

#[test]
fn imap_login_quoted_and_literal() {
    check("a1 LOGIN bob \"pa ss\"\r\n", &["a1 LOGIN bob \"pa ss\""]);
    check(
        "a2 LOGIN {3}\r\nbob {4}\r\np\"ss\r\n",
        &["+", "+", "a2 LOGIN {3}\\r\\nbob {4}\\r\\np\"ss"],
    );
    check(
        "a3 LOGIN bob {4+}\r\np ss\r\n",
        &["a3 LOGIN bob {4+}\\r\\np ss"],
    );
    let CommandBody::Login { username, password } =
        parse(b"a4 login {3+}\r\nbob {2}\r\n\xc3\xa9\r\n").body
    else {
        panic!("not LOGIN");
    };
    assert_eq!(username.as_ref(), b"bob");
    assert_eq!(password.declassify().as_ref(), "é".as_bytes());
}

#[test]
fn imap_authenticate_with_and_without_initial_response() {
    check("a1 AUTHENTICATE PLAIN\r\n", &["a1 AUTHENTICATE PLAIN"]);
    check(
        "a2 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n",
        &["a2 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ="],
    );
    check("a3 authenticate plain =\r\n", &["a3 AUTHENTICATE PLAIN ="]);
}

#[test]
fn imap_authenticate_continuation_lines() {
    let mut reader = CommandReader::new(Limits::default());
    reader.feed(b"a1 AUTHENTICATE PLAIN\r\nAGJvYgBz");
    assert!(matches!(reader.next_command(), CommandEvent::Command(_)));
    assert_eq!(reader.next_authenticate_data(), LineEvent::NeedMore);
    reader.feed(b"ZWNyZXQ=\r\n*\r\n!!\r\na2 NOOP\r\n");
    let LineEvent::Line(AuthenticateData::Continue(data)) = reader.next_authenticate_data() else {
        panic!("no data");
    };
    assert_eq!(data.declassify().as_ref(), b"\0bob\0secret");
    assert_eq!(
        reader.next_authenticate_data(),
        LineEvent::Line(AuthenticateData::Cancel)
    );
    let LineEvent::Error(error) = reader.next_authenticate_data() else {
        panic!("bad base64 accepted");
    };
    assert_eq!((error.tag, error.kind), (None, CommandErrorKind::Syntax));
    assert_eq!(render(&reader.next_command()), "a2 NOOP");
}

#[test]
fn imap_idle_and_done() {
    let mut reader = CommandReader::new(Limits::default());
    reader.feed(b"a1 IDLE\r\nDO");
    assert_eq!(render(&reader.next_command()), "a1 IDLE");
    assert_eq!(reader.next_idle_done(), LineEvent::NeedMore);
    reader.feed(b"NE\r\ndone\r\nnope\r\na2 NOOP\r\n");
    assert_eq!(reader.next_idle_done(), LineEvent::Line(()));
    assert_eq!(reader.next_idle_done(), LineEvent::Line(()));
    assert!(matches!(reader.next_idle_done(), LineEvent::Error(_)));
    assert_eq!(render(&reader.next_command()), "a2 NOOP");
}

#[test]
fn imap_mailbox_commands() {
    check("a1 SELECT INBOX\r\n", &["a1 SELECT INBOX"]);
    check("a2 select inbox\r\n", &["a2 SELECT INBOX"]);
    check(
        "a3 EXAMINE \"Sent Items\"\r\n",
        &["a3 EXAMINE \"Sent Items\""],
    );
    check("a4 CREATE &ZTZO9nux-\r\n", &["a4 CREATE &ZTZO9nux-"]);
    check(
        "a5 DELETE \"&XeVPXA-/&mHl27g-\"\r\n",
        &["a5 DELETE \"&XeVPXA-/&mHl27g-\""],
    );
    check(
        "a6 RENAME old {3}\r\nnew\r\n",
        &["+", "a6 RENAME old {3}\\r\\nnew"],
    );
    check("a7 SUBSCRIBE Archive\r\n", &["a7 SUBSCRIBE Archive"]);
    check("a8 UNSUBSCRIBE Archive\r\n", &["a8 UNSUBSCRIBE Archive"]);
    check("a9 LIST \"\" *\r\n", &["a9 LIST \"\" *"]);
    check("a10 LIST \"\" \"%\"\r\n", &["a10 LIST \"\" \"%\""]);
    check(
        "a11 LIST Archive/ &ZTZO9nux-/*\r\n",
        &["a11 LIST Archive/ &ZTZO9nux-/*"],
    );
    check("a12 LSUB \"\" \"*\"\r\n", &["a12 LSUB \"\" \"*\""]);
    check(
        "a13 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)\r\n",
        &["a13 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)"],
    );
    check("a14 CHECK\r\n", &["a14 CHECK"]);
    check("a15 CLOSE\r\n", &["a15 CLOSE"]);
    check("a16 EXPUNGE\r\n", &["a16 EXPUNGE"]);
    check("a17 UNSELECT\r\n", &["a17 UNSELECT"]);
}

/// imap-codec 2.0.0-alpha.10 has no LIST-EXTENDED command syntax (RFC 5258), so the RFC 6154
/// forms that need it are refused: the server must not advertise LIST-EXTENDED. Plain LIST
/// works and SPECIAL-USE attributes go in its responses.
#[test]
fn imap_list_extended_forms_are_refused() {
    check("a1 LIST (SPECIAL-USE) \"\" \"*\"\r\n", &["ERR a1 Syntax"]);
    check(
        "a2 LIST \"\" \"*\" RETURN (SPECIAL-USE)\r\n",
        &["ERR a2 Syntax"],
    );
}

#[test]
fn imap_append() {
    check(
        "a1 APPEND INBOX {5}\r\nHello\r\n",
        &["+", "a1 APPEND INBOX {5}\\r\\nHello"],
    );
    check(
        "a2 APPEND Drafts (\\Seen \\Draft) \"05-Jan-2024 10:00:00 +0800\" {5+}\r\nHello\r\n",
        &["a2 APPEND Drafts (\\Seen \\Draft) \"05-Jan-2024 10:00:00 +0800\" {5+}\\r\\nHello"],
    );
    let CommandBody::Append { message, .. } =
        parse(b"a3 APPEND INBOX {12+}\r\nA: b\r\n\r\nbody\r\n").body
    else {
        panic!("not APPEND");
    };
    let imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal(literal) = message
    else {
        panic!("not a literal");
    };
    assert_eq!(literal.data(), b"A: b\r\n\r\nbody");
}

#[test]
fn imap_search() {
    check("a1 SEARCH ALL\r\n", &["a1 SEARCH ALL"]);
    check(
        "a2 SEARCH OR (FROM bob NOT SEEN) OR DELETED (TO x CC y)\r\n",
        &["a2 SEARCH OR (FROM bob NOT SEEN) OR DELETED (TO x CC y)"],
    );
    check(
        "a3 SEARCH CHARSET UTF-8 SUBJECT {6}\r\n你好\r\n",
        &["+", "a3 SEARCH CHARSET UTF-8 SUBJECT {6}\\r\\n你好"],
    );
    check(
        "a4 UID SEARCH 1:3,7,10:* UID 10:*\r\n",
        &["a4 UID SEARCH 1:3,7,10:* UID 10:*"],
    );
    let keys = "ALL ANSWERED BCC a BEFORE 1-Feb-2024 BODY b CC c DELETED DRAFT FLAGGED FROM d \
                HEADER X-A e KEYWORD k LARGER 10 NEW NOT SEEN OLD ON 2-Feb-2024 OR SEEN UNSEEN \
                RECENT SEEN SENTBEFORE 3-Feb-2024 SENTON 4-Feb-2024 SENTSINCE 5-Feb-2024 \
                SINCE 6-Feb-2024 SMALLER 99 SUBJECT s TEXT t TO u UID 1:3 UNANSWERED UNDELETED \
                UNDRAFT UNFLAGGED UNKEYWORD k2 1,3:5";
    let command = format!("a5 SEARCH {keys}\r\n");
    let events = run(Limits::default(), &[command.as_bytes()]);
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("a5 SEARCH "), "{}", events[0]);
    assert!(!events[0].starts_with("ERR"));
}

#[test]
fn imap_fetch() {
    check("a1 FETCH 1:* ALL\r\n", &["a1 FETCH 1:* ALL"]);
    check("a2 FETCH 1 FAST\r\n", &["a2 FETCH 1 FAST"]);
    check("a3 FETCH 1 FULL\r\n", &["a3 FETCH 1 FULL"]);
    check(
        "a4 FETCH 2 BODY[1.2.TEXT]<0.100>\r\n",
        &["a4 FETCH 2 BODY[1.2.TEXT]<0.100>"],
    );
    check(
        "a5 UID FETCH 1:5 (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)])\r\n",
        &["a5 UID FETCH 1:5 (UID FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)])"],
    );
    check(
        "a6 FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT INTERNALDATE)\r\n",
        &[
            "a6 FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT INTERNALDATE)",
        ],
    );
    check(
        "a7 FETCH 1 (BINARY.PEEK[1]<0.10> BINARY.SIZE[1])\r\n",
        &["a7 FETCH 1 (BINARY.PEEK[1]<0.10> BINARY.SIZE[1])"],
    );
    check(
        "a8 FETCH 1 BODY[HEADER.FIELDS.NOT (X-Spam)]\r\n",
        &["a8 FETCH 1 BODY[HEADER.FIELDS.NOT (X-Spam)]"],
    );
    check("a9 FETCH 1 BODY[]\r\n", &["a9 FETCH 1 BODY[]"]);
    check(
        "a10 FETCH 1 BODY[2.MIME]\r\n",
        &["a10 FETCH 1 BODY[2.MIME]"],
    );
}

#[test]
fn imap_store_copy_move() {
    check(
        "a1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n",
        &["a1 STORE 1 +FLAGS.SILENT (\\Seen)"],
    );
    check(
        "a2 STORE 1:3 -FLAGS (\\Deleted $Junk)\r\n",
        &["a2 STORE 1:3 -FLAGS (\\Deleted $Junk)"],
    );
    check(
        "a3 STORE 2 FLAGS \\Answered\r\n",
        &["a3 STORE 2 FLAGS (\\Answered)"],
    );
    check(
        "a4 UID STORE 5:* +FLAGS (\\Flagged)\r\n",
        &["a4 UID STORE 5:* +FLAGS (\\Flagged)"],
    );
    check("a5 COPY 1:2 Archive\r\n", &["a5 COPY 1:2 Archive"]);
    check(
        "a6 UID COPY 7 \"&ZTZO9nux-\"\r\n",
        &["a6 UID COPY 7 \"&ZTZO9nux-\""],
    );
    check("a7 MOVE 1 Trash\r\n", &["a7 MOVE 1 Trash"]);
    check("a8 UID MOVE 3:4 Trash\r\n", &["a8 UID MOVE 3:4 Trash"]);
    check("a9 UID EXPUNGE 3:4,9\r\n", &["a9 UID EXPUNGE 3:4,9"]);
}

#[test]
fn imap_extension_commands() {
    check("a1 NAMESPACE\r\n", &["a1 NAMESPACE"]);
    check(
        "a2 ENABLE CONDSTORE UTF8=ACCEPT\r\n",
        &["a2 ENABLE CONDSTORE UTF8=ACCEPT"],
    );
    check(
        "a3 ID (\"name\" \"Thunderbird\" \"version\" \"115\")\r\n",
        &["a3 ID (\"name\" \"Thunderbird\" \"version\" \"115\")"],
    );
    check("a4 ID NIL\r\n", &["a4 ID NIL"]);
    check("a5 GETQUOTA \"\"\r\n", &["a5 GETQUOTA \"\""]);
    check("a6 GETQUOTAROOT INBOX\r\n", &["a6 GETQUOTAROOT INBOX"]);
    check("a7 IDLE\r\n", &["a7 IDLE"]);
}

#[test]
fn imap_condstore() {
    check(
        "a1 SELECT INBOX (CONDSTORE)\r\n",
        &["a1 SELECT INBOX (CONDSTORE)"],
    );
    check(
        "a2 FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
        &["a2 FETCH 1:* FLAGS (CHANGEDSINCE 12345)"],
    );
    check(
        "a3 STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)\r\n",
        &["a3 STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)"],
    );
    check("a4 SEARCH MODSEQ 100\r\n", &["a4 SEARCH MODSEQ 100"]);
    check(
        "a5 STATUS INBOX (HIGHESTMODSEQ)\r\n",
        &["a5 STATUS INBOX (HIGHESTMODSEQ)"],
    );
}

#[test]
fn imap_pipelined_commands_in_one_buffer() {
    check(
        "a1 NOOP\r\na2 LOGIN {3+}\r\nbob pw\r\na3 SELECT INBOX\r\nbad\r\na4 LOGOUT\r\n",
        &[
            "a1 NOOP",
            "a2 LOGIN {3+}\\r\\nbob pw",
            "a3 SELECT INBOX",
            "ERR bad Syntax",
            "a4 LOGOUT",
        ],
    );
}

#[test]
fn imap_malformed_commands_are_refused_and_the_next_one_is_read() {
    check(
        "a1 SELECT (INBOX\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 SEARCH (SEEN\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 SEARCH SEEN)\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check("\r\nz NOOP\r\n", &["ERR * Syntax", "z NOOP"]);
    check("a+b NOOP\r\nz NOOP\r\n", &["ERR * Syntax", "z NOOP"]);
    check("a1 FROB\r\nz NOOP\r\n", &["ERR a1 Syntax", "z NOOP"]);
    check("a1 NOOP extra\r\nz NOOP\r\n", &["ERR a1 Syntax", "z NOOP"]);
    check(
        "a1 SELECT IN\u{e9}BOX\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 SELECT IN\0BOX\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 NOOP\rz NOOP\r\nz2 NOOP\r\n",
        &["ERR a1 Syntax", "z2 NOOP"],
    );
    check("a1 NOOP\nz NOOP\r\n", &["ERR a1 Syntax", "z NOOP"]);
    check(
        "a1 FETCH -1 FLAGS\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 FETCH 0 FLAGS\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 FETCH 99999999999999999999 FLAGS\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    check(
        "a1 FETCH 4294967296 FLAGS\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    // A literal that is not followed by the rest of a command is part of the failed one.
    check(
        "a1 LOGIN {3+}\r\nz N\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
    // A literal holding the start of a command is never read as a command.
    check(
        "a1 LOGIN bob {10+}\r\nz LOGOUT\r\n x\r\nz NOOP\r\n",
        &["ERR a1 Syntax", "z NOOP"],
    );
}

#[test]
fn imap_too_long_line_is_refused_without_keeping_it() {
    let long = format!("a1 SELECT {}\r\nz NOOP\r\n", "x".repeat(300));
    check_with(
        TEST_LIMITS,
        long.as_bytes(),
        &["ERR a1 LineTooLong { max: 200 }", "z NOOP"],
    );
    // The limit counts all lines of a command, not only the first.
    let split = format!("a1 LOGIN {{3+}}\r\nbob {}\r\nz NOOP\r\n", "x".repeat(190));
    check_with(
        TEST_LIMITS,
        split.as_bytes(),
        &["ERR a1 LineTooLong { max: 200 }", "z NOOP"],
    );
    // A too-long line ending in a LITERAL+ announcement: the literal is dropped, not parsed.
    let literal = format!("a1 X {} {{8+}}\r\nz LOGOUT\r\nz NOOP\r\n", "x".repeat(300));
    check_with(
        TEST_LIMITS,
        literal.as_bytes(),
        &["ERR a1 LineTooLong { max: 200 }", "z NOOP"],
    );
    // Just under the limit is fine: "a1 SELECT " is 10 bytes and the ending 2.
    let fits = format!("a1 SELECT {}\r\n", "x".repeat(188));
    check_with(
        TEST_LIMITS,
        fits.as_bytes(),
        &[&format!("a1 SELECT {}", "x".repeat(188))],
    );
    let over = format!("a1 SELECT {}\r\n", "x".repeat(189));
    check_with(
        TEST_LIMITS,
        over.as_bytes(),
        &["ERR a1 LineTooLong { max: 200 }"],
    );
}

#[test]
fn imap_too_long_line_without_end_holds_at_most_the_limit() {
    let mut reader = CommandReader::new(TEST_LIMITS);
    for _ in 0..1000 {
        reader.feed(&[b'x'; 1000]);
        assert_eq!(reader.next_command(), CommandEvent::NeedMore);
        assert!(reader.message.len() <= TEST_LIMITS.line);
        assert!(!reader.has_buffered_input());
    }
}

#[test]
fn imap_too_large_sync_literal_is_refused_before_it_is_sent() {
    // The client waits for "+", gets the tagged reply instead and sends its next command.
    check_with(
        TEST_LIMITS,
        b"a1 LOGIN bob {21}\r\nz NOOP\r\n",
        &["ERR a1 LiteralTooLarge { length: 21, max: 20 }", "z NOOP"],
    );
    check_with(
        TEST_LIMITS,
        b"a1 APPEND INBOX {1001}\r\nz NOOP\r\n",
        &[
            "ERR a1 LiteralTooLarge { length: 1001, max: 1000 }",
            "z NOOP",
        ],
    );
    check_with(
        TEST_LIMITS,
        b"a1 APPEND INBOX {99999999999999999999999}\r\nz NOOP\r\n",
        &[
            "ERR a1 LiteralTooLarge { length: 18446744073709551615, max: 1000 }",
            "z NOOP",
        ],
    );
    // Within the limits: APPEND takes the larger one.
    check_with(TEST_LIMITS, b"a1 APPEND INBOX {21}\r\n", &["+"]);
    check_with(TEST_LIMITS, b"a1 LOGIN bob {20}\r\n", &["+"]);
}

#[test]
fn imap_too_large_non_sync_literal_is_dropped_unread() {
    // LITERAL+: the data comes anyway; it is skipped (and the rest of the command with it).
    let input = format!(
        "a1 APPEND INBOX {{1001+}}\r\n{}\r\nz NOOP\r\n",
        "z NOOP\r\n".repeat(125) + "x"
    );
    check_with(
        TEST_LIMITS,
        input.as_bytes(),
        &[
            "ERR a1 LiteralTooLarge { length: 1001, max: 1000 }",
            "z NOOP",
        ],
    );
    // The sum over a command's literals counts.
    check_with(
        TEST_LIMITS,
        b"a1 LOGIN {15+}\r\nbobbobbobbobbob {6+}\r\nsecret\r\nz NOOP\r\n",
        &["ERR a1 LiteralTooLarge { length: 6, max: 20 }", "z NOOP"],
    );
    // A rejected command whose later line announces a sync literal ends there.
    check_with(
        TEST_LIMITS,
        b"a1 LOGIN {21+}\r\nxxxxxxxxxxxxxxxxxxxxx {3}\r\nz NOOP\r\n",
        &["ERR a1 LiteralTooLarge { length: 21, max: 20 }", "z NOOP"],
    );
}

#[test]
fn imap_starttls_leaves_no_plaintext_behind() {
    let mut reader = CommandReader::new(Limits::default());
    reader.feed(b"a1 STARTTLS\r\na2 LOGIN bob pw\r\n");
    assert_eq!(render(&reader.next_command()), "a1 STARTTLS");
    assert!(reader.has_buffered_input());
    reader.discard_buffered_input();
    assert!(!reader.has_buffered_input());
    assert_eq!(reader.next_command(), CommandEvent::NeedMore);
}

#[test]
fn imap_large_append_is_read_whole() {
    let body = "x".repeat(100_000) + "\r\n";
    let input = format!("a1 APPEND INBOX {{{}}}\r\n{body}\r\n", body.len());
    let mut reader = CommandReader::new(Limits::default());
    reader.feed(input.as_bytes());
    assert_eq!(reader.next_command(), CommandEvent::SendContinuation);
    let CommandEvent::Command(command) = reader.next_command() else {
        panic!("no command");
    };
    let CommandBody::Append { message, .. } = command.body else {
        panic!("not APPEND");
    };
    let imap_codec::imap_types::extensions::binary::LiteralOrLiteral8::Literal(literal) = message
    else {
        panic!("not a literal");
    };
    assert_eq!(literal.data(), body.as_bytes());
    // The big buffer is let go once the command is out.
    assert!(reader.message.capacity() <= 2 * Limits::default().line);
}

/// Seeded random bytes and mutated valid commands, fed in random chunks: the reader must not
/// panic, and produces at most one event per input byte (it never spins).
#[test]
fn imap_fuzz_style_random_input_never_panics() {
    let valid: &[&[u8]] = &[
        b"a1 LOGIN {3+}\r\nbob {2}\r\npw\r\n",
        b"a2 APPEND INBOX (\\Seen) {5+}\r\nHello\r\n",
        b"a3 UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From)]<0.10> FLAGS)\r\n",
        b"a4 SEARCH CHARSET UTF-8 OR (FROM x NOT SEEN) SUBJECT {3}\r\nabc\r\n",
        b"a5 STORE 1:5,7 +FLAGS.SILENT (\\Deleted)\r\n",
        b"a6 ID (\"name\" \"x\")\r\n",
        b"a7 STATUS &ZTZO9nux- (MESSAGES UNSEEN)\r\n",
    ];
    let alphabet = b"{}+()[]<>\"\\ *%:,.0123456789aAzZ\r\n\0\xff~";
    let mut seed: u64 = 0xdead_beef;
    for round in 0..3000 {
        let mut input: Vec<u8> = if round % 2 == 0 {
            let n = (next(&mut seed) % 64) as usize;
            (0..n)
                .map(|_| alphabet[(next(&mut seed) % alphabet.len() as u64) as usize])
                .collect()
        } else {
            let mut bytes = valid[(next(&mut seed) % valid.len() as u64) as usize].to_vec();
            for _ in 0..1 + next(&mut seed) % 4 {
                let at = (next(&mut seed) % bytes.len() as u64) as usize;
                let byte = alphabet[(next(&mut seed) % alphabet.len() as u64) as usize];
                match next(&mut seed) % 3 {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => {
                        bytes.remove(at);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            bytes
        };
        input.extend_from_slice(b"\r\nzz NOOP\r\n");
        let mut reader = CommandReader::new(TEST_LIMITS);
        let mut rest = &input[..];
        let mut n_events = 0;
        while !rest.is_empty() {
            let n = 1 + (next(&mut seed) % 9) as usize;
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            reader.feed(chunk);
            loop {
                let event = reader.next_command();
                if event == CommandEvent::NeedMore {
                    break;
                }
                n_events += 1;
                assert!(n_events <= input.len() + 2, "too many events for {input:?}");
            }
        }
        let _ = reader.next_idle_done();
        let _ = reader.next_authenticate_data();
    }
}
