//! Feeds arbitrary lines to the SMTP command parser; it must never panic, and an address it
//! accepts must come back unchanged when written out and parsed again (the session writes
//! addresses into queue entries, bounces and Received headers this way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::smtp::command::{Command, parse};

fuzz_target!(|line: &[u8]| {
    let (verb, address) = match parse(line) {
        Ok(Command::Mail(mail)) => ("MAIL FROM:", mail.reverse_path),
        Ok(Command::Rcpt(rcpt)) => ("RCPT TO:", Some(rcpt.forward_path)),
        _ => return,
    };
    let Some(address) = address else {
        return;
    };
    let again = format!("{verb}<{address}>");
    let reparsed = match parse(again.as_bytes()) {
        Ok(Command::Mail(mail)) => mail.reverse_path,
        Ok(Command::Rcpt(rcpt)) => Some(rcpt.forward_path),
        other => panic!("{again:?} parsed as {other:?}"),
    };
    assert_eq!(reparsed.as_ref(), Some(&address), "{again:?}");
    let _ = address.normalized();
});
