//! Tests of SEARCH evaluation: a small mailbox of realistic messages (summaries built by
//! `summarize` from the raw bytes), searched with criteria parsed from command text by
//! imap-codec, so each test reads like the client line and the numbers the server answers.

use std::cell::Cell;
use std::convert::Infallible;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::search::SearchKey;
use raft_store::summary::{MessageSummary, summarize};
use raft_store::{Message, flag};

use crate::imap::search::{Answer, Candidate, charset_supported, search};

/// 2024-03-01 00:00:00 UTC.
const MARCH_1: i64 = 1_709_251_200;
const DAY: i64 = 86_400;

/// Joins lines with CRLF.
fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut raw = lines.join("\r\n");
    raw.push_str("\r\n");
    raw.into_bytes()
}

/// Seq 1, UID 10: plain ASCII; sent 1994-02-07 in -0800 (already 02-08 in UTC).
fn report() -> Vec<u8> {
    crlf(&[
        "Date: Mon, 7 Feb 1994 21:52:25 -0800",
        "From: \"Alice Example\" <alice@example.com>",
        "To: bob@example.org",
        "Cc: Carol <carol@example.net>",
        "Subject: Quarterly report",
        "Message-ID: <report-1@example.com>",
        "",
        "Please find the numbers attached.",
    ])
}

/// Seq 2, UID 11: encoded-word subject (Chinese, UTF-8 base64) and sender name (Q), a
/// quoted-printable UTF-8 body with a soft line break; no Date header.
fn cafe() -> Vec<u8> {
    crlf(&[
        "From: =?UTF-8?Q?Z=C3=BCrich_Office?= <office@example.ch>",
        "To: alice@example.com",
        "Bcc: dave@example.com",
        "Subject: =?UTF-8?B?5Lit5paH5rWL6K+V?=",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Caf=C3=A9 meeting at no=",
        "on tomorrow.",
    ])
}

/// Seq 3, UID 20: raw UTF-8 subject, multipart with a base64 text part, an HTML part and a
/// base64 attachment (not text, so not searched); a non-envelope header X-Mailer.
fn weekly() -> Vec<u8> {
    crlf(&[
        "Date: Sat, 02 Mar 2024 01:00:00 +0900",
        "From: bob@example.org",
        "To: alice@example.com",
        "Subject: 周报 weekly",
        "X-Mailer: Mutt 2.2",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"b1\"",
        "",
        "--b1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        "U2VjcmV0IFBocmFzZSDmnLrlr4YsIHNlZSB5b3UuDQo=",
        "--b1",
        "Content-Type: text/html; charset=us-ascii",
        "",
        "<p>html only words</p>",
        "--b1",
        "Content-Type: application/octet-stream",
        "Content-Transfer-Encoding: base64",
        "",
        "dGhlIGhpZGRlbiBuZWVkbGUgaXMgaGVyZQ0K",
        "--b1--",
    ])
}

/// Seq 4, UID 21: GB2312 encoded-word subject, ISO-8859-1 quoted-printable body, a group
/// address in To; unparsable Date header.
fn greetings() -> Vec<u8> {
    crlf(&[
        "Date: sometime last week",
        "From: Dora <dora@example.de>",
        "To: Friends: eve@example.de, frank@example.de;",
        "Subject: =?GB2312?B?1tDOxA==?= Gruss",
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Viele Gr=FC=DFe aus K=F6ln",
    ])
}

struct Fixture {
    raws: Vec<Vec<u8>>,
    messages: Vec<Message>,
    summaries: Vec<MessageSummary>,
}

fn message(uid: u32, raw: &[u8], internal_date: i64, flags: u8, keywords: &[&str]) -> Message {
    Message {
        uid,
        blob: [uid as u8; 32],
        size: raw.len() as u64,
        internal_date,
        flags,
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        queue_id: format!("q{uid}"),
        modseq: u64::from(uid),
    }
}

fn fixture() -> Fixture {
    let raws = vec![report(), cafe(), weekly(), greetings()];
    let messages = vec![
        message(
            10,
            &raws[0],
            MARCH_1,
            flag::SEEN | flag::ANSWERED,
            &["$Forwarded"],
        ),
        message(
            11,
            &raws[1],
            MARCH_1 + DAY - 1,
            flag::FLAGGED | flag::DELETED,
            &[],
        ),
        message(
            20,
            &raws[2],
            MARCH_1 + DAY + 12 * 3600,
            flag::DRAFT,
            &["Work"],
        ),
        message(21, &raws[3], MARCH_1 - 1, 0, &[]),
    ];
    let summaries = raws.iter().map(|raw| summarize(raw)).collect();
    Fixture {
        raws,
        messages,
        summaries,
    }
}

impl Fixture {
    fn mailbox(&self) -> Vec<Candidate<'_>> {
        (0..self.messages.len())
            .map(|i| (i as u32 + 1, &self.messages[i], &self.summaries[i]))
            .collect()
    }
}

/// The criteria of `SEARCH <text>`, as imap-codec parses them (string arguments that are not
/// ASCII must be literals, `{n}\r\n` followed by the bytes, which works here since the whole
/// command is handed over at once).
fn criteria(text: &str) -> Vec<SearchKey<'static>> {
    let line = format!("a SEARCH {text}\r\n");
    let (rest, command) = CommandCodec::default()
        .decode_static(line.as_bytes())
        .unwrap_or_else(|e| panic!("parse {line:?}: {e:?}"));
    assert!(rest.is_empty(), "{line:?} left {rest:?}");
    match command.body {
        CommandBody::Search { criteria, .. } => criteria.into_inner(),
        other => panic!("not a search: {other:?}"),
    }
}

/// Searches the fixture mailbox and returns the answer and how many blobs were loaded.
fn run(text: &str, answer: Answer) -> (Vec<u32>, usize) {
    let fixture = fixture();
    let loads = Cell::new(0);
    let found = search(
        &criteria(text),
        &fixture.mailbox(),
        answer,
        &|_| false,
        |m: &Message| {
            loads.set(loads.get() + 1);
            let i = fixture
                .messages
                .iter()
                .position(|x| x.uid == m.uid)
                .unwrap();
            Ok::<_, Infallible>(fixture.raws[i].clone())
        },
    )
    .unwrap();
    (found, loads.get())
}

/// `SEARCH text` answers `want` (sequence numbers).
#[track_caller]
fn check(text: &str, want: &[u32]) {
    assert_eq!(run(text, Answer::SequenceNumbers).0, want, "SEARCH {text}");
}

/// `UID SEARCH text` answers `want` (UIDs).
#[track_caller]
fn check_uid(text: &str, want: &[u32]) {
    assert_eq!(run(text, Answer::Uids).0, want, "UID SEARCH {text}");
}

/// `SEARCH text` answers `want` without reading a single blob.
#[track_caller]
fn check_no_blob(text: &str, want: &[u32]) {
    let fixture = fixture();
    let found = search(
        &criteria(text),
        &fixture.mailbox(),
        Answer::SequenceNumbers,
        &|_| false,
        |m: &Message| -> Result<Vec<u8>, Infallible> {
            panic!("SEARCH {text} read the blob of UID {}", m.uid)
        },
    )
    .unwrap();
    assert_eq!(found, want, "SEARCH {text}");
}

#[test]
fn search_flags() {
    check_no_blob("ALL", &[1, 2, 3, 4]);
    check_no_blob("SEEN", &[1]);
    check_no_blob("UNSEEN", &[2, 3, 4]);
    check_no_blob("ANSWERED", &[1]);
    check_no_blob("UNANSWERED", &[2, 3, 4]);
    check_no_blob("FLAGGED", &[2]);
    check_no_blob("UNFLAGGED", &[1, 3, 4]);
    check_no_blob("DELETED", &[2]);
    check_no_blob("UNDELETED", &[1, 3, 4]);
    check_no_blob("DRAFT", &[3]);
    check_no_blob("UNDRAFT", &[1, 2, 4]);
    check_no_blob("KEYWORD $Forwarded", &[1]);
    check_no_blob("KEYWORD work", &[3]);
    check_no_blob("UNKEYWORD Work", &[1, 2, 4]);
    check_no_blob("KEYWORD Nonesuch", &[]);
}

#[test]
fn search_recent_new_old_without_recent_flag() {
    check_no_blob("RECENT", &[]);
    check_no_blob("NEW", &[]);
    check_no_blob("OLD", &[1, 2, 3, 4]);
    check_no_blob("NOT RECENT", &[1, 2, 3, 4]);
}

#[test]
fn search_size() {
    let sizes: Vec<u32> = [report(), cafe(), weekly(), greetings()]
        .iter()
        .map(|raw| raw.len() as u32)
        .collect();
    // 1 < 4 < 2 < 3.
    assert!(sizes[0] < sizes[3] && sizes[3] < sizes[1] && sizes[1] < sizes[2]);
    check_no_blob(&format!("LARGER {}", sizes[0] - 1), &[1, 2, 3, 4]);
    check_no_blob(&format!("LARGER {}", sizes[0]), &[2, 3, 4]);
    check_no_blob(&format!("SMALLER {}", sizes[1] + 1), &[1, 2, 4]);
    check_no_blob(&format!("SMALLER {}", sizes[1]), &[1, 4]);
    check_no_blob(&format!("LARGER {} SMALLER {}", sizes[0], sizes[1]), &[4]);
    check_no_blob("LARGER 0", &[1, 2, 3, 4]);
    check_no_blob("SMALLER 1", &[]);
}

#[test]
fn search_internal_date_boundaries() {
    // Internal dates (UTC days): 1 and 2 on 1-Mar-2024 (00:00:00 and 23:59:59), 3 on 2-Mar,
    // 4 at 23:59:59 on 29-Feb.
    check_no_blob("ON 1-Mar-2024", &[1, 2]);
    check_no_blob("ON 29-Feb-2024", &[4]);
    check_no_blob("BEFORE 1-Mar-2024", &[4]);
    check_no_blob("BEFORE 2-Mar-2024", &[1, 2, 4]);
    check_no_blob("SINCE 1-Mar-2024", &[1, 2, 3]);
    check_no_blob("SINCE 2-Mar-2024", &[3]);
    check_no_blob("SINCE 3-Mar-2024", &[]);
    check_no_blob("SINCE 1-Mar-2024 BEFORE 2-Mar-2024", &[1, 2]);
}

#[test]
fn search_sent_date_uses_header_day_as_written() {
    // 1: 7 Feb 1994 -0800 (8 Feb in UTC: must not count). 2: no Date, internal 1-Mar-2024.
    // 3: 2 Mar 2024 +0900 (1 Mar in UTC: must not count). 4: unparsable, internal 29-Feb-2024.
    check_no_blob("SENTON 7-Feb-1994", &[1]);
    check_no_blob("SENTON 8-Feb-1994", &[]);
    check_no_blob("SENTON 2-Mar-2024", &[3]);
    check_no_blob("SENTON 1-Mar-2024", &[2]);
    check_no_blob("SENTON 29-Feb-2024", &[4]);
    check_no_blob("SENTBEFORE 1-Mar-2024", &[1, 4]);
    check_no_blob("SENTBEFORE 8-Feb-1994", &[1]);
    check_no_blob("SENTBEFORE 7-Feb-1994", &[]);
    check_no_blob("SENTSINCE 1-Mar-2024", &[2, 3]);
    check_no_blob("SENTSINCE 2-Mar-2024", &[3]);
}

#[test]
fn search_envelope_addresses() {
    check_no_blob("FROM alice", &[1]);
    check_no_blob("FROM \"ALICE EXAMPLE\"", &[1]);
    check_no_blob("FROM \"example <alice@\"", &[1]);
    check_no_blob("FROM example.org", &[3]);
    check_no_blob("TO alice@example.com", &[2, 3]);
    check_no_blob("TO bob", &[1]);
    check_no_blob("TO friends", &[4]);
    check_no_blob("TO frank@", &[4]);
    check_no_blob("CC carol", &[1]);
    check_no_blob("CC example", &[1]);
    check_no_blob("BCC dave", &[2]);
    check_no_blob("BCC alice", &[]);
}

#[test]
fn search_subject() {
    check_no_blob("SUBJECT quarterly", &[1]);
    check_no_blob("SUBJECT \"REPORT\"", &[1]);
    check_no_blob("SUBJECT weekly", &[3]);
    check_no_blob("SUBJECT gruss", &[4]);
    check_no_blob("SUBJECT \"\"", &[1, 2, 3, 4]);
    check_no_blob("SUBJECT nothing", &[]);
}

/// A criteria text with one literal search string (for strings that are not ASCII).
fn with_literal(key: &str, s: &str) -> String {
    format!("CHARSET UTF-8 {key} {{{}}}\r\n{s}", s.len())
}

#[test]
fn search_unicode_headers() {
    // RFC 2047 UTF-8 base64 (2), raw UTF-8 (3), GB2312 base64 (4).
    check_no_blob(&with_literal("SUBJECT", "中文"), &[2, 4]);
    check_no_blob(&with_literal("SUBJECT", "中文测试"), &[2]);
    check_no_blob(&with_literal("SUBJECT", "周报"), &[3]);
    check_no_blob(&with_literal("FROM", "ZÜRICH office"), &[2]);
    check_no_blob(&with_literal("HEADER SUBJECT", "测试"), &[2]);
}

#[test]
fn search_header() {
    // Envelope fields come from the summary.
    check_no_blob("HEADER Message-ID report-1", &[1]);
    check_no_blob("HEADER message-id \"\"", &[1]);
    check_no_blob("HEADER Date 1994", &[1]);
    check_no_blob("HEADER To friends", &[4]);
    check_no_blob("HEADER Sender \"\"", &[]);
    // Others from the blob.
    check("HEADER X-Mailer mutt", &[3]);
    check("HEADER x-mailer \"\"", &[3]);
    check("HEADER Content-Transfer-Encoding quoted-printable", &[2, 4]);
    check("HEADER X-Absent \"\"", &[]);
}

#[test]
fn search_body_decodes_transfer_encoding_and_charset() {
    check("BODY numbers", &[1]);
    // Quoted-printable UTF-8 with a soft line break in the middle of "noon".
    check("BODY noon", &[2]);
    check(&with_literal("BODY", "café"), &[2]);
    // Quoted-printable ISO-8859-1.
    check(&with_literal("BODY", "grüße aus köln"), &[4]);
    // Base64 UTF-8.
    check("BODY \"secret phrase\"", &[3]);
    check(&with_literal("BODY", "机密"), &[3]);
    check("BODY html", &[3]);
    // The attachment is not text, and the encoded form is not what is searched.
    check("BODY needle", &[]);
    check("BODY U2VjcmV0", &[]);
    // BODY is not the header.
    check("BODY quarterly", &[]);
}

#[test]
fn search_text_covers_header_and_body() {
    check("TEXT quarterly", &[1]);
    check("TEXT numbers", &[1]);
    check("TEXT x-mailer", &[3]);
    check(&with_literal("TEXT", "中文"), &[2, 4]);
    check(&with_literal("TEXT", "机密"), &[3]);
    check("TEXT needle", &[]);
}

#[test]
fn search_sequence_sets() {
    check_no_blob("1", &[1]);
    check_no_blob("2:3", &[2, 3]);
    check_no_blob("3:2", &[2, 3]);
    check_no_blob("*", &[4]);
    check_no_blob("3:*", &[3, 4]);
    check_no_blob("9:*", &[4]);
    check_no_blob("1,3,9", &[1, 3]);
    check_uid("2", &[11]);
}

#[test]
fn search_uid_sets() {
    check_uid("UID 11", &[11]);
    check_uid("UID 12:19", &[]);
    check_uid("UID 11:20", &[11, 20]);
    check_uid("UID *", &[21]);
    check_uid("UID 20:*", &[20, 21]);
    // A range past the highest UID still holds the highest one ("n:*" with n > max).
    check_uid("UID 100:*", &[21]);
    check_no_blob("UID 10,21", &[1, 4]);
    check_uid("UID 1:* UNSEEN", &[11, 20, 21]);
}

#[test]
fn search_modseq() {
    check_no_blob("MODSEQ 11", &[2, 3, 4]);
    check_no_blob("MODSEQ 21", &[4]);
    check_no_blob("MODSEQ 22", &[]);
}

#[test]
fn search_not_or_and_nesting() {
    check_no_blob("NOT SEEN", &[2, 3, 4]);
    check_no_blob("NOT NOT SEEN", &[1]);
    check_no_blob("OR SEEN FLAGGED", &[1, 2]);
    check_no_blob("OR SEEN OR FLAGGED DRAFT", &[1, 2, 3]);
    check_no_blob("NOT OR SEEN FLAGGED", &[3, 4]);
    check_no_blob("(SEEN ANSWERED)", &[1]);
    check_no_blob("(SEEN FLAGGED)", &[]);
    check_no_blob("OR (SEEN ANSWERED) (DRAFT KEYWORD Work)", &[1, 3]);
    check_no_blob("NOT (UNSEEN UNDRAFT) 2:*", &[3]);
    check("OR BODY noon (FROM bob NOT SEEN)", &[2, 3]);
    check("NOT BODY needle UNDELETED", &[1, 3, 4]);
    // OR tries the key that needs no blob first.
    check_no_blob("OR BODY needle ALL", &[1, 2, 3, 4]);
    check_no_blob("NOT OR TEXT needle ALL", &[]);
}

#[test]
fn search_blob_read_only_when_needed() {
    // The cheap key rules out every message but one, so one blob is read.
    assert_eq!(
        run("BODY noon FLAGGED", Answer::SequenceNumbers),
        (vec![2], 1)
    );
    // A message's blob is read once however many keys need it.
    assert_eq!(
        run(
            "BODY noon TEXT cafe HEADER X-Mailer \"\" 2",
            Answer::SequenceNumbers
        ),
        (vec![], 1)
    );
    assert_eq!(run("TEXT a", Answer::SequenceNumbers).1, 4);
}

#[test]
fn search_empty_mailbox() {
    for text in ["ALL", "*", "UID *", "UID 1:*", "BODY x", "NOT ALL"] {
        let found = search(
            &criteria(text),
            &[],
            Answer::Uids,
            &|_| false,
            |_: &Message| -> Result<Vec<u8>, Infallible> { panic!("no messages to load") },
        )
        .unwrap();
        assert!(found.is_empty(), "{text}: {found:?}");
    }
}

#[test]
fn search_loader_error_stops_the_search() {
    let fixture = fixture();
    let result = search(
        &criteria("BODY x"),
        &fixture.mailbox(),
        Answer::Uids,
        &|_| false,
        |m: &Message| Err(m.uid),
    );
    assert_eq!(result, Err(10));
}

#[test]
fn search_charsets() {
    assert!(charset_supported("UTF-8"));
    assert!(charset_supported("utf-8"));
    assert!(charset_supported("US-ASCII"));
    assert!(!charset_supported("ISO-8859-1"));
    assert!(!charset_supported("UTF8"));
}

/// A forwarded message: the encapsulated message's header and text are body text of the outer.
fn forward() -> Vec<u8> {
    crlf(&[
        "From: alice@example.com",
        "To: bob@example.org",
        "Subject: Fwd: minutes",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"outer\"",
        "",
        "--outer",
        "Content-Type: text/plain",
        "",
        "See below.",
        "--outer",
        "Content-Type: message/rfc822",
        "",
        "From: carol@example.net",
        "Subject: =?UTF-8?Q?Protokoll_f=C3=BCr_M=C3=A4rz?=",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Abstimmung: einstimm=",
        "ig angenommen",
        "--outer--",
    ])
}

#[test]
fn search_encapsulated_message() {
    let raw = forward();
    let message = message(7, &raw, MARCH_1, 0, &[]);
    let summary = summarize(&raw);
    let mailbox = [(1, &message, &summary)];
    let run = |text: &str| {
        search(
            &criteria(text),
            &mailbox,
            Answer::Uids,
            &|_| false,
            |_: &Message| Ok::<_, Infallible>(raw.clone()),
        )
        .unwrap()
    };
    assert_eq!(run("BODY \"see below\""), [7]);
    assert_eq!(run("BODY einstimmig"), [7]);
    assert_eq!(run(&with_literal("BODY", "für März")), [7]);
    assert_eq!(run("BODY carol@example.net"), [7]);
    assert_eq!(run("TEXT minutes"), [7]);
    // The envelope keys see the outer header only.
    assert_eq!(run("FROM carol"), [] as [u32; 0]);
    assert_eq!(run("SUBJECT protokoll"), [] as [u32; 0]);
    assert_eq!(run("BODY minutes"), [] as [u32; 0]);
}

/// A message that panics mail-parser (found by fuzzing the MIME summary) is searched as plain
/// bytes: BODY finds its text, and the session does not die.
#[test]
fn body_search_survives_input_that_panics_the_mime_parser() {
    let raw: &[u8] =
        include_bytes!("../../../../raft-store/types/src/summary/fuzz/parser-panic-1.eml");
    let content = super::read_content(raw);
    assert!(content.bodies.iter().any(|body| body.contains("preamble")));
}
