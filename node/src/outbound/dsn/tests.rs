//! Tests for the DSN builder: every notice is parsed back with mail-parser and checked field by
//! field, so a wrong structure fails here rather than in a sender's mail reader.

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

use crate::outbound::dsn::{
    Action, Dsn, DsnError, Notice, OriginalMessage, RecipientReport, Ret, StatusCode, build,
    hop_count, pick_boundary, quoted_printable, should_bounce, too_many_hops, xtext_decode,
};
use crate::smtp::rfc5322_date;

const NOW: i64 = 1_795_349_045; // Sun, 22 Nov 2026 12:04:05 +0000
const ARRIVAL: i64 = NOW - 3_600;
const HOST: &str = "mx1.example.com";
const POSTMASTER: &str = "MAILER-DAEMON@mx1.example.com";

const ORIGINAL: &[u8] = b"Received: from client.example.net by mx1.example.com;\r\n\
    \tSun, 22 Nov 2026 11:04:05 +0000\r\n\
    From: Alice <alice@example.net>\r\n\
    To: bob@example.org\r\n\
    Subject: lunch\r\n\
    Message-ID: <lunch-1@example.net>\r\n\
    \r\n\
    See you at noon.\r\n\
    BODY-MARKER\r\n";

fn status(code: &str) -> StatusCode {
    code.parse().expect("test status codes are valid")
}

fn original(raw: &[u8], ret: Option<Ret>) -> OriginalMessage<'_> {
    OriginalMessage {
        envelope_sender: "alice@example.net",
        raw,
        arrival: ARRIVAL,
        envid: None,
        ret,
    }
}

fn failed(address: &str) -> RecipientReport<'_> {
    RecipientReport {
        address,
        original_recipient: None,
        action: Action::Failed,
        status: status("5.1.1"),
        remote_mta: Some("mx.example.org"),
        diagnostic: Some("550 5.1.1 <bob@example.org>: Recipient address rejected"),
        last_attempt: Some(NOW - 60),
        will_retry_until: None,
    }
}

fn delayed(address: &str) -> RecipientReport<'_> {
    RecipientReport {
        address,
        original_recipient: None,
        action: Action::Delayed,
        status: status("4.4.1"),
        remote_mta: None,
        diagnostic: Some("421 4.4.1 mx.example.org: connection timed out"),
        last_attempt: Some(NOW - 60),
        will_retry_until: Some(NOW + 5 * 86_400),
    }
}

fn notice<'a>(original: OriginalMessage<'a>, recipients: &'a [RecipientReport<'a>]) -> Notice<'a> {
    Notice {
        reporting_mta: HOST,
        postmaster: POSTMASTER,
        original,
        recipients,
        now: NOW,
        max_returned_size: 10_000,
    }
}

/// A notice as its reader sees it.
struct Parsed {
    dsn: Dsn,
}

/// Builds the notice and checks what every notice must be: CRLF lines of at most 998 octets,
/// the null reverse path, the top-level headers, and `multipart/report` with three parts of
/// which the first two are the text and `message/delivery-status`.
#[track_caller]
fn check_notice(notice: &Notice<'_>) -> Parsed {
    let dsn = build(notice).expect("the notice builds");
    assert_eq!(
        dsn.mail_from, "",
        "a notice goes from the null reverse path"
    );
    assert_eq!(dsn.rcpt_to, "alice@example.net");
    for line in dsn.message.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.ends_with(b"\r\n"),
            "line without CRLF: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(!line[..line.len() - 2].contains(&b'\r'), "a bare CR");
        assert!(line.len() - 2 <= 998, "a line of {} octets", line.len() - 2);
    }
    let parsed = Parsed { dsn };
    let message = parsed.message();
    let from = message.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Mail Delivery System"));
    assert_eq!(from.address(), Some(POSTMASTER));
    let to = message.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("alice@example.net"));
    assert_eq!(message.date().map(|d| d.to_timestamp()), Some(NOW));
    let message_id = message.message_id().expect("Message-ID");
    assert!(
        message_id.ends_with(&format!(".dsn@{HOST}")),
        "{message_id}"
    );
    assert_eq!(
        message.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        message.header_raw("MIME-Version").map(str::trim),
        Some("1.0")
    );
    let content_type = message.content_type().expect("Content-Type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("report"));
    assert_eq!(
        content_type.attribute("report-type"),
        Some("delivery-status")
    );
    let parts = message.root_part().sub_parts().expect("multipart").to_vec();
    assert_eq!(parts.len(), 3, "text, delivery status, original");
    assert!(message.parts[parts[0] as usize].is_content_type("text", "plain"));
    assert!(message.parts[parts[1] as usize].is_content_type("message", "delivery-status"));
    parsed
}

impl Parsed {
    fn message(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.dsn.message)
            .expect("mail-parser reads the notice")
    }

    fn part(&self, index: usize) -> MessagePart<'_> {
        let message = self.message();
        let id = message.root_part().sub_parts().expect("multipart")[index];
        message.parts[id as usize].clone()
    }

    fn subject(&self) -> String {
        self.message().subject().expect("Subject").to_owned()
    }

    fn text(&self) -> String {
        self.part(0).text_contents().expect("text part").to_owned()
    }

    /// The delivery-status part as groups of (field name, unfolded value): the per-message
    /// group first, then one per recipient.
    fn status_groups(&self) -> Vec<Vec<(String, String)>> {
        let part = self.part(1);
        let body = String::from_utf8(part.contents().to_vec()).expect("7-bit status part");
        assert!(body.is_ascii(), "the status part is US-ASCII: {body}");
        body.split("\r\n\r\n")
            .filter(|group| !group.trim().is_empty())
            .map(|group| {
                let mut fields: Vec<(String, String)> = Vec::new();
                for line in group.split("\r\n").filter(|l| !l.is_empty()) {
                    if line.starts_with([' ', '\t']) {
                        let last = fields.last_mut().expect("a continuation follows a field");
                        last.1.push_str(line);
                    } else {
                        let (name, value) = line.split_once(':').expect("name: value");
                        fields.push((name.to_owned(), value.trim().to_owned()));
                    }
                }
                fields
            })
            .collect()
    }

    /// The third part: its content type and content.
    fn returned(&self) -> (String, Vec<u8>) {
        let part = self.part(2);
        let content_type = part.content_type().expect("Content-Type");
        let name = format!(
            "{}/{}",
            content_type.ctype(),
            content_type.subtype().unwrap_or("")
        );
        let content = match &part.body {
            PartType::Message(message) => message.raw_message().to_vec(),
            PartType::Text(text) => text.as_bytes().to_vec(),
            _ => part.contents().to_vec(),
        };
        (name, content)
    }
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn pairs(group: &[(String, String)]) -> Vec<(&str, &str)> {
    group
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn header_section(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a body");
    &raw[..end + 2]
}

#[test]
fn bounce_has_every_field_and_the_original_headers() {
    let mut bob = failed("bob@example.org");
    bob.original_recipient = Some("rfc822;Bob+2Bx@example.org");
    let recipients = [bob];
    let mut original = original(ORIGINAL, None);
    original.envid = Some("QQ+2B314159");
    let parsed = check_notice(&notice(original, &recipients));

    assert_eq!(parsed.subject(), "Undelivered Mail Returned to Sender");
    let text = parsed.text();
    assert!(
        text.contains("<bob@example.org>: delivery failed"),
        "{text}"
    );
    assert!(text.contains("Recipient address rejected"), "{text}");

    let groups = parsed.status_groups();
    assert_eq!(groups.len(), 2);
    let reporting_mta = format!("dns; {HOST}");
    let arrival = rfc5322_date(ARRIVAL);
    assert_eq!(
        pairs(&groups[0]),
        [
            ("Reporting-MTA", reporting_mta.as_str()),
            ("Original-Envelope-Id", "QQ+314159"),
            ("Arrival-Date", arrival.as_str()),
        ]
    );
    let last_attempt = rfc5322_date(NOW - 60);
    assert_eq!(
        pairs(&groups[1]),
        [
            ("Original-Recipient", "rfc822;Bob+x@example.org"),
            ("Final-Recipient", "rfc822; bob@example.org"),
            ("Action", "failed"),
            ("Status", "5.1.1"),
            ("Remote-MTA", "dns; mx.example.org"),
            (
                "Diagnostic-Code",
                "smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected"
            ),
            ("Last-Attempt-Date", last_attempt.as_str()),
        ]
    );

    let (content_type, content) = parsed.returned();
    assert_eq!(
        content_type, "text/rfc822-headers",
        "a failure returns headers by default"
    );
    assert_eq!(content, header_section(ORIGINAL));
}

#[test]
fn one_notice_reports_every_recipient_in_order() {
    let recipients = [failed("bob@example.org"), delayed("carol@example.org")];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert_eq!(parsed.subject(), "Undelivered Mail Returned to Sender");
    let groups = parsed.status_groups();
    assert_eq!(groups.len(), 3);
    assert_eq!(
        field(&groups[1], "Final-Recipient"),
        Some("rfc822; bob@example.org")
    );
    assert_eq!(
        field(&groups[2], "Final-Recipient"),
        Some("rfc822; carol@example.org")
    );
    assert_eq!(field(&groups[2], "Action"), Some("delayed"));
    assert_eq!(field(&groups[2], "Remote-MTA"), None, "unknown, so absent");
    assert_eq!(field(&groups[0], "Original-Envelope-Id"), None);
}

#[test]
fn delay_notice_says_until_when_it_retries() {
    let recipients = [delayed("carol@example.org")];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert_eq!(parsed.subject(), "Delayed Mail (still being retried)");
    let groups = parsed.status_groups();
    assert_eq!(field(&groups[1], "Action"), Some("delayed"));
    assert_eq!(field(&groups[1], "Status"), Some("4.4.1"));
    let until = rfc5322_date(NOW + 5 * 86_400);
    assert_eq!(field(&groups[1], "Will-Retry-Until"), Some(until.as_str()));
    assert!(parsed.text().contains(&format!("retrying until {until}")));
    assert_eq!(parsed.returned().0, "text/rfc822-headers");
}

#[test]
fn will_retry_until_is_only_for_delays() {
    let mut bob = failed("bob@example.org");
    bob.will_retry_until = Some(NOW + 86_400);
    let recipients = [bob];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert_eq!(field(&parsed.status_groups()[1], "Will-Retry-Until"), None);
}

#[test]
fn ret_full_returns_the_whole_message_under_the_cap_only() {
    let recipients = [failed("bob@example.org")];

    let parsed = check_notice(&notice(original(ORIGINAL, Some(Ret::Full)), &recipients));
    let (content_type, content) = parsed.returned();
    assert_eq!(content_type, "message/rfc822");
    assert_eq!(content, ORIGINAL);
    assert!(!parsed.dsn.eight_bit);

    let mut capped = notice(original(ORIGINAL, Some(Ret::Full)), &recipients);
    capped.max_returned_size = ORIGINAL.len() - 1;
    let parsed = check_notice(&capped);
    let (content_type, content) = parsed.returned();
    assert_eq!(content_type, "text/rfc822-headers");
    assert_eq!(content, header_section(ORIGINAL));

    let mut at_cap = notice(original(ORIGINAL, Some(Ret::Full)), &recipients);
    at_cap.max_returned_size = ORIGINAL.len();
    assert_eq!(check_notice(&at_cap).returned().0, "message/rfc822");

    let parsed = check_notice(&notice(original(ORIGINAL, Some(Ret::Hdrs)), &recipients));
    let (content_type, content) = parsed.returned();
    assert_eq!(content_type, "text/rfc822-headers");
    assert!(!content.windows(11).any(|w| w == b"BODY-MARKER"));
}

#[test]
fn ret_parameter_parses_in_any_case() {
    assert_eq!("full".parse(), Ok(Ret::Full));
    assert_eq!("HDRS".parse(), Ok(Ret::Hdrs));
    assert_eq!("headers".parse::<Ret>(), Err(()));
}

#[test]
fn ret_full_with_an_overlong_line_returns_headers() {
    let mut raw = header_section(ORIGINAL).to_vec();
    raw.extend_from_slice(b"\r\n");
    raw.extend(std::iter::repeat_n(b'x', 1200));
    raw.extend_from_slice(b"\r\n");
    let recipients = [failed("bob@example.org")];
    let parsed = check_notice(&notice(original(&raw, Some(Ret::Full)), &recipients));
    assert_eq!(
        parsed.returned(),
        (
            "text/rfc822-headers".into(),
            header_section(ORIGINAL).to_vec()
        )
    );
}

#[test]
fn eight_bit_original_is_returned_and_flagged() {
    let raw = "Subject: caf\u{e9}\r\nFrom: a@example.net\r\n\r\nd\u{e9}j\u{e0} vu\r\n";
    let recipients = [failed("bob@example.org")];

    let parsed = check_notice(&notice(
        original(raw.as_bytes(), Some(Ret::Full)),
        &recipients,
    ));
    assert!(parsed.dsn.eight_bit);
    assert_eq!(parsed.part(2).content_transfer_encoding(), Some("8bit"));
    assert_eq!(parsed.returned().1, raw.as_bytes());

    // Headers only: quoted-printable keeps the notice 7-bit.
    let parsed = check_notice(&notice(original(raw.as_bytes(), None), &recipients));
    assert!(!parsed.dsn.eight_bit);
    assert!(parsed.dsn.message.is_ascii());
    assert_eq!(
        parsed.returned(),
        (
            "text/rfc822-headers".into(),
            "Subject: caf\u{e9}\r\nFrom: a@example.net\r\n"
                .as_bytes()
                .to_vec()
        )
    );
}

#[test]
fn bare_line_feeds_in_the_original_become_crlf() {
    let raw = b"From: a@example.net\nSubject: lf\n\nbody\n";
    let recipients = [failed("bob@example.org")];
    let parsed = check_notice(&notice(original(raw, Some(Ret::Full)), &recipients));
    assert_eq!(
        parsed.returned().1,
        b"From: a@example.net\r\nSubject: lf\r\n\r\nbody\r\n"
    );
}

#[test]
fn long_diagnostics_are_folded_under_998_octets() {
    let word = "w".repeat(1500);
    let diagnostic = format!(
        "550-5.7.1 {}\r\n550 5.7.1 {word} end",
        "policy words ".repeat(200)
    );
    let mut bob = failed("bob@example.org");
    bob.diagnostic = Some(&diagnostic);
    let recipients = [bob];
    // check_notice fails on any line over 998 octets.
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    let groups = parsed.status_groups();
    let code = field(&groups[1], "Diagnostic-Code").expect("Diagnostic-Code");
    assert!(
        code.starts_with("smtp; 550-5.7.1 policy words policy"),
        "{code}"
    );
    assert!(code.ends_with(" end"), "{code}");
    // The one word too long for a line is split; every octet of it is still there.
    assert_eq!(code.matches('w').count(), 1500 + 200);
    let folded = String::from_utf8_lossy(&parsed.dsn.message);
    assert!(
        folded
            .lines()
            .filter(|l| l.starts_with(" policy") || l.starts_with(" words"))
            .all(|l| l.len() <= 78)
            && folded.lines().filter(|l| l.starts_with(' ')).count() > 20,
        "folded near 78 columns"
    );
}

#[test]
fn non_ascii_diagnostics_are_replaced_in_the_report_and_kept_in_the_text() {
    let mut bob = failed("bob@example.org");
    bob.diagnostic = Some("550 5.1.1 Empf\u{e4}nger unbekannt \u{2014} \u{1f4ec}");
    let recipients = [bob];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert!(parsed.dsn.message.is_ascii(), "the notice stays 7-bit");
    assert_eq!(
        field(&parsed.status_groups()[1], "Diagnostic-Code"),
        Some("smtp; 550 5.1.1 Empf?nger unbekannt ? ?")
    );
    assert!(
        parsed
            .text()
            .contains("Empf\u{e4}nger unbekannt \u{2014} \u{1f4ec}")
    );
}

#[test]
fn utf8_recipients_use_the_utf8_address_type() {
    let recipients = [failed("j\u{f6}rg+x@b\u{fc}ro.example")];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert_eq!(
        field(&parsed.status_groups()[1], "Final-Recipient"),
        Some("utf-8; j\\x{F6}rg\\x{2B}x@b\\x{FC}ro.example")
    );
    assert!(parsed.text().contains("<j\u{f6}rg+x@b\u{fc}ro.example>"));
}

#[test]
fn success_notices_have_their_own_subject() {
    let mut bob = failed("bob@example.org");
    bob.action = Action::Relayed;
    bob.status = status("2.0.0");
    let recipients = [bob];
    let parsed = check_notice(&notice(original(ORIGINAL, None), &recipients));
    assert_eq!(parsed.subject(), "Successful Mail Delivery Report");
    assert_eq!(field(&parsed.status_groups()[1], "Action"), Some("relayed"));
}

#[test]
fn never_bounce_a_bounce() {
    assert!(!should_bounce(""));
    assert!(!should_bounce("<>"));
    assert!(!should_bounce(" <> "));
    assert!(should_bounce("alice@example.net"));
    // A choice (see the module docs): only the null reverse path is exempt.
    assert!(should_bounce("MAILER-DAEMON@example.net"));

    let recipients = [failed("bob@example.org")];
    for sender in ["", "<>"] {
        let mut original = original(ORIGINAL, None);
        original.envelope_sender = sender;
        assert_eq!(
            build(&notice(original, &recipients)),
            Err(DsnError::NullSender)
        );
    }
}

#[test]
fn a_sender_in_angle_brackets_is_accepted() {
    let recipients = [failed("bob@example.org")];
    let mut original = original(ORIGINAL, None);
    original.envelope_sender = "<alice@example.net>";
    check_notice(&notice(original, &recipients));
}

#[test]
fn nothing_to_report_or_nothing_writable_is_refused() {
    assert_eq!(
        build(&notice(original(ORIGINAL, None), &[])),
        Err(DsnError::NoRecipients)
    );
    for (address, what) in [
        (
            "bob@example.org\r\nBcc: eve@example.net",
            "recipient address",
        ),
        ("bob @example.org", "recipient address"),
        ("<bob@example.org>", "recipient address"),
        ("", "recipient address"),
    ] {
        let recipients = [failed(address)];
        assert_eq!(
            build(&notice(original(ORIGINAL, None), &recipients)),
            Err(DsnError::Unwritable {
                what,
                value: address.into()
            })
        );
    }
    let recipients = [failed("bob@example.org")];
    let mut bad_host = notice(original(ORIGINAL, None), &recipients);
    bad_host.reporting_mta = "mx1.example.com\r\nX-Injected: yes";
    assert!(matches!(
        build(&bad_host),
        Err(DsnError::Unwritable {
            what: "reporting MTA",
            ..
        })
    ));
}

#[test]
fn status_codes_are_validated() {
    for good in ["2.0.0", "4.4.1", "5.1.1", "5.7.999", "4.10.0"] {
        assert_eq!(status(good).to_string(), good);
    }
    assert_eq!(status("5.1.1").class(), 5);
    for bad in [
        "", "5", "5.1", "5.1.1.1", "3.1.1", "1.0.0", "6.0.0", "5..1", "5.1.", "5.1234.1", "5.+1.1",
        "5.1.-1", " 5.1.1", "5.a.1", "55.1.1",
    ] {
        assert_eq!(
            bad.parse::<StatusCode>(),
            Err(DsnError::InvalidStatus(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn action_and_status_class_must_agree() {
    for (action, code) in [
        (Action::Failed, "4.4.1"),
        (Action::Delayed, "5.1.1"),
        (Action::Delivered, "5.1.1"),
        (Action::Expanded, "4.0.0"),
    ] {
        let mut bob = failed("bob@example.org");
        bob.action = action;
        bob.status = status(code);
        let recipients = [bob];
        assert_eq!(
            build(&notice(original(ORIGINAL, None), &recipients)),
            Err(DsnError::ActionStatusMismatch {
                action,
                status: status(code)
            })
        );
    }
}

#[test]
fn hops_are_received_fields_in_the_header_section() {
    let raw = b"Received: from a by b;\r\n\
        \tSun, 22 Nov 2026 11:04:05 +0000\r\n\
        received: from c\r\n \
        by d\r\n \
        Received: a continuation that looks like a field\r\n\
        Received : obsolete spacing\r\n\
        X-Received: not a hop\r\n\
        Subject: Received: not a hop either\r\n\
        \r\n\
        Received: in the body\r\n";
    assert_eq!(hop_count(raw), 3);
    assert_eq!(hop_count(b"Received: x\nReceived: y\n\nReceived: z\n"), 2);
    assert_eq!(hop_count(b""), 0);
    assert_eq!(hop_count(b"\r\nReceived: body only\r\n"), 0);
}

#[test]
fn the_hop_limit_allows_exactly_limit_hops() {
    let hops = |n: usize| "Received: from x by y\r\n".repeat(n) + "\r\nbody\r\n";
    assert!(!too_many_hops(hops(32).as_bytes(), 32));
    assert!(too_many_hops(hops(33).as_bytes(), 32));
    assert!(!too_many_hops(hops(0).as_bytes(), 32));
}

#[test]
fn xtext_decodes_and_rejects_what_is_not_xtext() {
    assert_eq!(xtext_decode("abc").as_deref(), Some("abc"));
    assert_eq!(xtext_decode("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
    assert_eq!(xtext_decode("a+2"), None);
    assert_eq!(xtext_decode("a+ZZ"), None);
    assert_eq!(xtext_decode("a b"), None);
    assert_eq!(xtext_decode("a=b"), None);
}

#[test]
fn the_boundary_avoids_the_content() {
    let seed = [7u8; 32];
    let first = pick_boundary(&seed, &[b"nothing here"]);
    let content = format!("a line with --{first} in it");
    let second = pick_boundary(&seed, &[b"x", content.as_bytes()]);
    assert_ne!(first, second);
    assert!(!content.contains(&second));

    // End to end: a message quoting the boundary its notice would have had gets another one.
    let recipients = [failed("bob@example.org")];
    let built = build(&notice(original(ORIGINAL, Some(Ret::Full)), &recipients)).expect("builds");
    let boundary = boundary_of(&built);
    let mut raw = ORIGINAL.to_vec();
    raw.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    let built = build(&notice(original(&raw, Some(Ret::Full)), &recipients)).expect("builds");
    let text = String::from_utf8(built.message.clone()).expect("ascii");
    let boundary = boundary_of(&built);
    // The boundary appears only as delimiter lines: 3 parts and the closing one.
    assert_eq!(text.matches(&format!("--{boundary}")).count(), 4);
}

fn boundary_of(dsn: &Dsn) -> String {
    let message = MessageParser::default()
        .parse(&dsn.message)
        .expect("parses");
    message
        .content_type()
        .and_then(|ct| ct.attribute("boundary"))
        .expect("a boundary")
        .to_owned()
}

#[test]
fn quoted_printable_round_trips_and_keeps_lines_short() {
    let text = format!(
        "caf\u{e9} = tea\t\nline with trailing space \n{}\n",
        "long ".repeat(60)
    );
    let encoded = quoted_printable(text.as_bytes());
    assert!(encoded.is_ascii());
    for line in encoded.split(|&b| b == b'\n') {
        assert!(line.len() <= 77, "{}", String::from_utf8_lossy(line));
    }
    let mut message =
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            .to_vec();
    message.extend_from_slice(&encoded);
    let parsed = MessageParser::default().parse(&message).expect("parses");
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some(text.replace('\n', "\r\n").as_str())
    );
}

#[test]
fn the_same_notice_twice_is_the_same_message() {
    let recipients = [failed("bob@example.org")];
    let first = build(&notice(original(ORIGINAL, None), &recipients)).expect("builds");
    let again = build(&notice(original(ORIGINAL, None), &recipients)).expect("builds");
    assert_eq!(first, again);
    let mut later = notice(original(ORIGINAL, None), &recipients);
    later.now += 1;
    assert_ne!(build(&later).expect("builds").message, first.message);
}
