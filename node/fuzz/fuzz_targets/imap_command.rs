//! Feeds arbitrary bytes to the IMAP command reader in chunks of varying size; it must never
//! panic. The first byte picks the chunk size and whether lines are read as IDLE or AUTHENTICATE.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::imap::command::{CommandEvent, CommandReader, LineEvent, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        line: 256,
        append_literal: 4096,
        literal: 64,
    };
    let mut reader = CommandReader::new(limits);
    let chunk = usize::from(control % 16) + 1;
    for bytes in input.chunks(chunk) {
        reader.feed(bytes);
        loop {
            match reader.next_command() {
                CommandEvent::NeedMore => break,
                CommandEvent::Command(_) if control & 0x10 != 0 => {
                    while !matches!(reader.next_idle_done(), LineEvent::NeedMore) {}
                }
                CommandEvent::Command(_) if control & 0x20 != 0 => {
                    while !matches!(reader.next_authenticate_data(), LineEvent::NeedMore) {}
                }
                _ => {}
            }
        }
    }
    let _ = node::imap::utf7::decode(&String::from_utf8_lossy(input));
});
