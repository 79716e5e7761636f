//! The node's log subscriber, and the one rule for what clients write into it: every field value
//! is escaped, so a CR, LF or other control character in a user name, a HELO name or an error
//! text can never start a forged log line. Text logs escape in the field formatter below (which
//! sees every event's and span's fields, whatever the call site wrote); JSON logs are escaped by
//! the JSON encoder itself.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, FormatFields};

use crate::config::LogFormat;

#[cfg(test)]
mod tests;

/// `text` with control characters (C0, DEL, C1) and the Unicode line and paragraph separators
/// written as escapes (`\n`, `\r`, `\t`, `\u{1b}`), so it stays on one line of a log.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// The field formatter of text logs: `name=value` pairs (the message bare), each value escaped
/// by [`escape_control`].
pub fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = escape_control(&text);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

/// Installs the process's one subscriber: the RUST_LOG filter (default "info", openraft's
/// per-heartbeat warnings quiet unless asked for), on standard error, text or JSON.
pub fn init(format: LogFormat) {
    // openraft warns on every missed heartbeat (ten lines a second per dead peer); the node
    // reports unreachable peers itself, so those go quiet unless RUST_LOG asks for openraft.
    let mut spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    if !spec.contains("openraft") {
        spec.push_str(",openraft::core::heartbeat=error");
    }
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Text => subscriber.fmt_fields(text_fields()).init(),
    }
}
