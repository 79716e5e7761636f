//! Feeds arbitrary lines to the POP3 command parser; it must never panic, and PASS keeps the
//! password byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::pop3::command::{Command, parse};

fuzz_target!(|line: &[u8]| {
    if let Ok(Command::Pass(password)) = parse(line) {
        assert!(line.ends_with(password.as_bytes()), "{line:?} gave {password:?}");
    }
});
