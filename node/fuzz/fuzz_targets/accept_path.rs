//! The accept path on whatever a client sends after DATA: the session's DATA reader, then the
//! summary that would travel in the Raft entry. DATA must end exactly at the first CRLF "."
//! CRLF (nothing after a non-standard end of data is ever a command), the message must read
//! back the same when our client sends it again, and the summary, within the default message limits or the fallback for a
//! message over them, must stay within its byte bound and the hard ceilings.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raft_store::summary::{MAX_SUMMARY_BYTES, MessageLimits, summarize, summarize_within};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|input: &[u8]| {
    // summarize catches mail-parser's own panics (see summary::parse_mime).
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    let (data, consumed) = runtime().block_on(node::smtp::read_data(input, 1 << 30));
    let real_end = if input.starts_with(b".\r\n") {
        Some(3)
    } else {
        input
            .windows(5)
            .position(|w| w == b"\r\n.\r\n")
            .map(|at| at + 5)
    };
    match real_end {
        Some(end) => assert_eq!(consumed, end, "DATA must end at the first CRLF.CRLF"),
        None => assert_eq!(consumed, input.len(), "no end: everything is data"),
    }
    let Some(data) = data else { return };
    // Sent again as our SMTP client sends it, the message reads back the same, whole.
    if data.ends_with(b"\r\n") || data.is_empty() {
        let resent = node::outbound::client::data_bytes(&data);
        let (again, used) = runtime().block_on(node::smtp::read_data(&resent, 1 << 30));
        assert_eq!(again.as_deref(), Some(&data[..]), "the message reads back the same");
        assert_eq!(used, resent.len());
    }
    match summarize_within(&data, &MessageLimits::default()) {
        Ok(summary) => {
            assert!(summary.within_ceiling());
            assert!(raft_store::encoded_len(&summary) <= MAX_SUMMARY_BYTES);
        }
        Err(_) => assert!(raft_store::encoded_len(&summarize(&data)) <= MAX_SUMMARY_BYTES),
    }
});
