//! Log lines stay lines: client text with CR, LF and other controls is escaped in text and JSON
//! output, through the same subscriber set-up the node uses.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::logging::{escape_control, text_fields};

#[test]
fn controls_are_escaped_and_plain_text_is_borrowed() {
    assert!(matches!(
        escape_control("alice@example.test"),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        escape_control("a\r\nb\tc\u{1b}[31md\u{7f}\u{85}\u{2028}"),
        "a\\r\\nb\\tc\\u{1b}[31md\\u{7f}\\u{85}\\u{2028}"
    );
    assert_eq!(escape_control("用户 ü"), "用户 ü");
}

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// What an SMTP AUTH with a forged line in its user name used to produce, logged the way the
/// session logs it (Display, inside a span with a client field of its own).
fn log_forged_login() {
    let forged =
        "admin\r\n2026-12-04T08:00:00Z  INFO node::smtp: authenticated user=admin@example.test";
    let span = tracing::info_span!("session", helo = %"evil\nhost");
    let _entered = span.enter();
    tracing::info!(peer = "192.0.2.1:1234", user = %forged, "authentication failed");
}

#[test]
fn a_forged_line_in_a_text_log_stays_on_its_own_line() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(captured.clone())
        .fmt_fields(text_fields())
        .finish();
    tracing::subscriber::with_default(subscriber, log_forged_login);
    let text = captured.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("user=admin\\r\\n2026-12-04T08:00:00Z  INFO node::smtp"),
        "{text}"
    );
    assert!(text.contains("helo=evil\\nhost"), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
}

#[test]
fn a_forged_line_in_a_json_log_stays_in_its_string() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, log_forged_login);
    let text = captured.text();
    assert_eq!(text.lines().count(), 1, "{text}");
    let event: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert!(
        event["fields"]["user"]
            .as_str()
            .is_some_and(|user| user.starts_with("admin\r\n2026")),
        "{text}"
    );
}
