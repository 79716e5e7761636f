//! FETCH response tests: every item kind and section form against a real multipart message,
//! with items parsed from command text by imap-codec, and expected responses written out in full.

use std::cell::Cell;
use std::io;
use std::sync::Arc;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::{CommandCodec, decode::Decoder};
use raft_store::summary::{MessageSummary, summarize};
use raft_store::{Message, flag};

use imap_codec::imap_types::IntoStatic;

use crate::imap::fetch::{
    FetchError, FetchOptions, expand, fetch_response, internal_date, marks_seen, needs_summary,
};

const RAW: &[u8] = b"From: Alice <alice@example.com>\r\n\
To: bob@example.org\r\n\
Subject: Hello\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hello B=C3=B6b, a long =\r\n\
line.\r\n\
--XX\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC\r\n\
--XX\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
\r\n\
Inner body.\r\n\
--XX--\r\n";

const HEADER: &str = "From: Alice <alice@example.com>\r\n\
To: bob@example.org\r\n\
Subject: Hello\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n";

fn message() -> Message {
    Message {
        uid: 42,
        blob: [0; 32],
        size: RAW.len() as u64,
        internal_date: 1_700_000_000,
        flags: 0,
        keywords: Vec::new(),
        queue_id: "q1".to_owned(),
        modseq: 7,
    }
}

struct Fetched {
    response: String,
    sets_seen: bool,
    loads: usize,
}

/// Runs `FETCH 1 (<items>)` (parsed by imap-codec) on `message` and the summary of [`RAW`].
fn fetch_with(
    items: &str,
    message: &Message,
    options: FetchOptions,
) -> Result<Fetched, FetchError> {
    let line = format!("a FETCH 1 {items}\r\n");
    let (_, command) = CommandCodec::default()
        .decode(line.as_bytes())
        .unwrap_or_else(|e| panic!("{line:?} does not parse: {e:?}"));
    let CommandBody::Fetch {
        macro_or_item_names,
        ..
    } = command.body
    else {
        panic!("not a FETCH: {line:?}");
    };
    let summary: MessageSummary = summarize(RAW);
    let loads = Cell::new(0);
    let loader = || {
        loads.set(loads.get() + 1);
        Ok(Arc::new(RAW.to_vec()))
    };
    let items = expand(&macro_or_item_names);
    let output = fetch_response(1, message, &summary, &items, loader, options)?;
    Ok(Fetched {
        response: String::from_utf8_lossy(&output.response).into_owned(),
        sets_seen: output.sets_seen,
        loads: loads.get(),
    })
}

/// `FETCH 1 <items>` answers `* 1 FETCH (<expected>)\r\n`.
#[track_caller]
fn check(items: &str, expected: &str) {
    let fetched = fetch_with(items, &message(), FetchOptions::default()).expect("fetch");
    assert_eq!(
        fetched.response,
        format!("* 1 FETCH ({expected})\r\n"),
        "items {items}"
    );
    assert!(fetched.loads <= 1, "blob loaded {} times", fetched.loads);
}

#[test]
fn fetch_simple_items() {
    check("UID", "UID 42");
    check("RFC822.SIZE", &format!("RFC822.SIZE {}", RAW.len()));
    check(
        "INTERNALDATE",
        "INTERNALDATE \"14-Nov-2023 22:13:20 +0000\"",
    );
    check("FLAGS", "FLAGS ()");
    check(
        "(uid rfc822.size)",
        &format!("UID 42 RFC822.SIZE {}", RAW.len()),
    );
    check("(UID UID)", "UID 42");
}

#[test]
fn fetch_internal_date_formatting() {
    assert_eq!(internal_date(1_700_000_000), "14-Nov-2023 22:13:20 +0000");
    assert_eq!(internal_date(0), "01-Jan-1970 00:00:00 +0000");
    assert_eq!(internal_date(951_782_400), "29-Feb-2000 00:00:00 +0000");
    assert_eq!(internal_date(-1), "31-Dec-1969 23:59:59 +0000");
    assert_eq!(internal_date(4_102_444_799), "31-Dec-2099 23:59:59 +0000");
}

#[test]
fn fetch_flags_with_keywords() {
    let mut message = message();
    message.flags = flag::SEEN | flag::FLAGGED | flag::DRAFT;
    message.keywords = vec!["$Forwarded".to_owned(), "Junk".to_owned()];
    let fetched = fetch_with("FLAGS", &message, FetchOptions::default()).expect("fetch");
    assert_eq!(
        fetched.response,
        "* 1 FETCH (FLAGS (\\Seen \\Flagged \\Draft $Forwarded Junk))\r\n"
    );
    message.flags = flag::ANSWERED | flag::DELETED;
    message.keywords.clear();
    let fetched = fetch_with("FLAGS", &message, FetchOptions::default()).expect("fetch");
    assert_eq!(
        fetched.response,
        "* 1 FETCH (FLAGS (\\Answered \\Deleted))\r\n"
    );
}

#[test]
fn fetch_macros_expand() {
    let envelope = "(\"Tue, 14 Nov 2023 22:13:20 +0000\" \"Hello\" \
((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) \
((\"Alice\" NIL \"alice\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL \
\"<m1@example.com>\")";
    let fast = format!(
        "FLAGS () INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" RFC822.SIZE {}",
        RAW.len()
    );
    check("FAST", &fast);
    check("all", &format!("{fast} ENVELOPE {envelope}"));
    let body = String::from_utf8(crate::imap::render::body_structure(&summarize(RAW), false))
        .expect("ascii");
    assert!(body.starts_with("((\"TEXT\" \"PLAIN\""), "{body}");
    check("FULL", &format!("{fast} ENVELOPE {envelope} BODY {body}"));
}

#[test]
fn fetch_structure_items_do_not_read_the_blob() {
    let summary = summarize(RAW);
    let mut items = imap_codec::imap_types::fetch::Macro::Full.expand();
    items.push(imap_codec::imap_types::fetch::MessageDataItemName::BodyStructure);
    items.push(imap_codec::imap_types::fetch::MessageDataItemName::Uid);
    let never = || -> io::Result<Arc<Vec<u8>>> { panic!("the blob must not be read") };
    let output = fetch_response(
        3,
        &message(),
        &summary,
        &items,
        never,
        FetchOptions::default(),
    )
    .expect("fetch");
    let text = String::from_utf8(output.response).expect("ascii");
    let structure =
        String::from_utf8(crate::imap::render::body_structure(&summary, true)).expect("ascii");
    assert!(text.starts_with("* 3 FETCH (FLAGS () "), "{text}");
    assert!(
        text.ends_with(&format!(" BODYSTRUCTURE {structure} UID 42)\r\n")),
        "{text}"
    );
}

#[test]
fn fetch_whole_message_forms() {
    let raw = String::from_utf8(RAW.to_vec()).expect("ascii");
    check(
        "RFC822",
        &format!("RFC822 {{{}}}\r\n{raw} FLAGS (\\Seen)", RAW.len()),
    );
    check(
        "BODY[]",
        &format!("BODY[] {{{}}}\r\n{raw} FLAGS (\\Seen)", RAW.len()),
    );
    check("BODY.PEEK[]", &format!("BODY[] {{{}}}\r\n{raw}", RAW.len()));
    check(
        "RFC822.HEADER",
        &format!("RFC822.HEADER {{{}}}\r\n{HEADER}", HEADER.len()),
    );
    check(
        "BODY.PEEK[HEADER]",
        &format!("BODY[HEADER] {{{}}}\r\n{HEADER}", HEADER.len()),
    );
    let text = &raw[HEADER.len()..];
    check(
        "RFC822.TEXT",
        &format!("RFC822.TEXT {{{}}}\r\n{text} FLAGS (\\Seen)", text.len()),
    );
    check(
        "BODY.PEEK[TEXT]",
        &format!("BODY[TEXT] {{{}}}\r\n{text}", text.len()),
    );
}

#[test]
fn fetch_header_fields() {
    check(
        "BODY.PEEK[HEADER.FIELDS (subject FROM)]",
        "BODY[HEADER.FIELDS (subject FROM)] {51}\r\n\
From: Alice <alice@example.com>\r\nSubject: Hello\r\n\r\n",
    );
    check(
        "body.peek[header.fields.not (From To Date Message-ID MIME-Version Content-Type)]",
        "BODY[HEADER.FIELDS.NOT (From To Date Message-ID MIME-Version Content-Type)] {18}\r\n\
Subject: Hello\r\n\r\n",
    );
    check(
        "BODY.PEEK[HEADER.FIELDS (X-Missing)]",
        "BODY[HEADER.FIELDS (X-Missing)] {2}\r\n\r\n",
    );
    check(
        "BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]",
        "BODY[3.HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: inner\r\n\r\n",
    );
}

#[test]
fn fetch_part_sections() {
    check(
        "BODY.PEEK[1]",
        "BODY[1] {31}\r\nHello B=C3=B6b, a long =\r\nline.",
    );
    check(
        "BODY.PEEK[1.MIME]",
        "BODY[1.MIME] {88}\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n",
    );
    check("BODY.PEEK[2]", "BODY[2] {4}\r\nAAEC");
    check(
        "BODY.PEEK[3]",
        "BODY[3] {29}\r\nSubject: inner\r\n\r\nInner body.",
    );
    check(
        "BODY.PEEK[3.MIME]",
        "BODY[3.MIME] {32}\r\nContent-Type: message/rfc822\r\n\r\n",
    );
    check(
        "BODY.PEEK[3.HEADER]",
        "BODY[3.HEADER] {18}\r\nSubject: inner\r\n\r\n",
    );
    check("BODY.PEEK[3.TEXT]", "BODY[3.TEXT] {11}\r\nInner body.");
    check("BODY.PEEK[3.1]", "BODY[3.1] {11}\r\nInner body.");
}

#[test]
fn fetch_missing_sections_are_nil() {
    check("BODY.PEEK[5]", "BODY[5] NIL");
    check("BODY.PEEK[1.5]", "BODY[1.5] NIL");
    check("BODY.PEEK[1.TEXT]", "BODY[1.TEXT] NIL");
    check(
        "BODY.PEEK[1.HEADER.FIELDS (From)]",
        "BODY[1.HEADER.FIELDS (From)] NIL",
    );
    check("BODY.PEEK[3.2]", "BODY[3.2] NIL");
    check("BINARY.PEEK[4]", "BINARY[4] NIL");
    check("BINARY.SIZE[4]", "BINARY.SIZE[4] NIL");
}

#[test]
fn fetch_partial() {
    check("BODY.PEEK[]<0.4>", "BODY[]<0> {4}\r\nFrom");
    check("BODY.PEEK[2]<1.2>", "BODY[2]<1> {2}\r\nAE");
    // Length past the end: truncated; the origin is still named.
    check("BODY.PEEK[2]<2.100>", "BODY[2]<2> {2}\r\nEC");
    check("BODY.PEEK[2]<0.100>", "BODY[2]<0> {4}\r\nAAEC");
    // Origin at or past the end: the empty string.
    check("BODY.PEEK[2]<4.1>", "BODY[2]<4> \"\"");
    check("BODY.PEEK[2]<4000000000.10>", "BODY[2]<4000000000> \"\"");
    // After header subsetting.
    check(
        "BODY.PEEK[HEADER.FIELDS (Subject)]<9.5>",
        "BODY[HEADER.FIELDS (Subject)]<9> {5}\r\nHello",
    );
    check("BODY.PEEK[9]<0.10>", "BODY[9]<0> NIL");
}

#[test]
fn fetch_binary() {
    check(
        "BINARY.PEEK[1]",
        "BINARY[1] {24}\r\nHello B\u{f6}b, a long line.",
    );
    check("BINARY.PEEK[2]", "BINARY[2] ~{3}\r\n\u{0}\u{1}\u{2}");
    check("BINARY.SIZE[1]", "BINARY.SIZE[1] 24");
    check("BINARY.SIZE[2]", "BINARY.SIZE[2] 3");
    check("BINARY.PEEK[2]<1.1>", "BINARY[2]<1> {1}\r\n\u{1}");
    check("BINARY.PEEK[3.1]", "BINARY[3.1] {11}\r\nInner body.");
}

#[test]
fn fetch_uid_and_modseq_are_added() {
    let uid = FetchOptions {
        uid: true,
        ..FetchOptions::default()
    };
    let fetched = fetch_with("FLAGS", &message(), uid).expect("fetch");
    assert_eq!(fetched.response, "* 1 FETCH (UID 42 FLAGS ())\r\n");
    let fetched = fetch_with("(FLAGS UID)", &message(), uid).expect("fetch");
    assert_eq!(fetched.response, "* 1 FETCH (UID 42 FLAGS ())\r\n");

    check("(FLAGS MODSEQ)", "FLAGS () MODSEQ (7)");
    let condstore = FetchOptions {
        condstore: true,
        ..FetchOptions::default()
    };
    let fetched = fetch_with("FLAGS", &message(), condstore).expect("fetch");
    assert_eq!(fetched.response, "* 1 FETCH (FLAGS () MODSEQ (7))\r\n");
}

#[test]
fn fetch_seen_side_effect() {
    #[track_caller]
    fn seen(items: &str, expected: bool) {
        let fetched = fetch_with(items, &message(), FetchOptions::default()).expect("fetch");
        assert_eq!(fetched.sets_seen, expected, "items {items}");
        assert_eq!(
            fetched.response.contains("FLAGS (\\Seen)"),
            expected,
            "items {items}: {}",
            fetched.response
        );
    }
    seen("BODY[]", true);
    seen("body[1]", true);
    seen("BODY[HEADER]", true);
    seen("RFC822", true);
    seen("RFC822.TEXT", true);
    seen("BINARY[1]", true);
    seen("BODY.PEEK[]", false);
    seen("BINARY.PEEK[1]", false);
    seen("BINARY.SIZE[1]", false);
    seen("RFC822.HEADER", false);
    seen("(FLAGS ENVELOPE BODYSTRUCTURE)", false);
    seen("FULL", false);

    // FLAGS already requested: shown once, with \Seen.
    let fetched =
        fetch_with("(FLAGS BODY[2])", &message(), FetchOptions::default()).expect("fetch");
    assert_eq!(
        fetched.response,
        "* 1 FETCH (FLAGS (\\Seen) BODY[2] {4}\r\nAAEC)\r\n"
    );

    // Already seen: nothing to set, FLAGS not added.
    let mut read = message();
    read.flags = flag::SEEN;
    let fetched = fetch_with("BODY[2]", &read, FetchOptions::default()).expect("fetch");
    assert!(!fetched.sets_seen);
    assert_eq!(fetched.response, "* 1 FETCH (BODY[2] {4}\r\nAAEC)\r\n");

    // EXAMINE: read-only, never sets \Seen.
    let examine = FetchOptions {
        read_only: true,
        ..FetchOptions::default()
    };
    let fetched = fetch_with("BODY[2]", &message(), examine).expect("fetch");
    assert!(!fetched.sets_seen);
    assert_eq!(fetched.response, "* 1 FETCH (BODY[2] {4}\r\nAAEC)\r\n");

    // The session stored \Seen first and says so: FLAGS (and MODSEQ) come from the new state.
    let changed = FetchOptions {
        flags_changed: true,
        condstore: true,
        ..FetchOptions::default()
    };
    read.modseq = 8;
    let fetched = fetch_with("BODY[2]", &read, changed).expect("fetch");
    assert_eq!(
        fetched.response,
        "* 1 FETCH (BODY[2] {4}\r\nAAEC FLAGS (\\Seen) MODSEQ (8))\r\n"
    );
}

#[test]
fn fetch_marks_seen_rule() {
    use imap_codec::imap_types::fetch::MessageDataItemName::{Rfc822Header, Rfc822Text};
    assert!(marks_seen(&[Rfc822Header, Rfc822Text]));
    assert!(!marks_seen(&[Rfc822Header]));
}

#[test]
fn fetch_blob_errors() {
    let summary = summarize(RAW);
    let items = [imap_codec::imap_types::fetch::MessageDataItemName::Rfc822];
    let failing = || -> io::Result<Arc<Vec<u8>>> { Err(io::Error::other("gone")) };
    let result = fetch_response(
        1,
        &message(),
        &summary,
        &items,
        failing,
        FetchOptions::default(),
    );
    assert!(matches!(result, Err(FetchError::Blob(_))), "{result:?}");
    let short = || -> io::Result<Arc<Vec<u8>>> { Ok(Arc::new(RAW[..10].to_vec())) };
    let result = fetch_response(
        1,
        &message(),
        &summary,
        &items,
        short,
        FetchOptions::default(),
    );
    assert!(
        matches!(result, Err(FetchError::BlobTooShort { len: 10, .. })),
        "{result:?}"
    );
}

#[test]
fn fetch_binary_unknown_encoding() {
    let raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
    let summary = summarize(raw);
    let items = [imap_codec::imap_types::fetch::MessageDataItemName::Binary {
        section: vec![std::num::NonZeroU32::new(1).expect("non-zero")],
        partial: None,
        peek: true,
    }];
    let loader = || -> io::Result<Arc<Vec<u8>>> { Ok(Arc::new(raw.to_vec())) };
    let stored = Message {
        size: raw.len() as u64,
        ..message()
    };
    let result = fetch_response(
        1,
        &stored,
        &summary,
        &items,
        loader,
        FetchOptions::default(),
    );
    assert!(
        matches!(&result, Err(FetchError::UnknownCte { encoding }) if encoding == "X-UUENCODE"),
        "{result:?}"
    );
}

#[test]
fn the_whole_message_needs_no_summary() {
    let items = |text: &str| {
        let line = format!("a FETCH 1 {text}\r\n");
        let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
        let CommandBody::Fetch {
            macro_or_item_names,
            ..
        } = command.body
        else {
            panic!("not a FETCH");
        };
        expand(&macro_or_item_names)
            .into_iter()
            .map(|i| i.into_static())
            .collect::<Vec<_>>()
    };
    for without in [
        "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])",
        "RFC822",
        "BINARY[]",
        "FAST",
    ] {
        assert!(!needs_summary(&items(without)), "{without}");
    }
    for with in [
        "ENVELOPE",
        "BODY[TEXT]",
        "BODY[1]",
        "RFC822.HEADER",
        "BINARY.SIZE[1]",
        "ALL",
    ] {
        assert!(needs_summary(&items(with)), "{with}");
    }
    // With an empty stand-in summary, BODY[] is still the whole blob.
    let stand_in = summarize(b"");
    let loader = || -> io::Result<Arc<Vec<u8>>> { Ok(Arc::new(RAW.to_vec())) };
    let output = fetch_response(
        1,
        &message(),
        &stand_in,
        &items("BODY.PEEK[]"),
        loader,
        FetchOptions::default(),
    )
    .expect("fetch");
    let expected = format!("* 1 FETCH (BODY[] {{{}}}\r\n", RAW.len());
    assert!(output.response.starts_with(expected.as_bytes()));
    assert!(output.response.ends_with(b")\r\n"));
    assert_eq!(output.response.len(), expected.len() + RAW.len() + 3);
}
