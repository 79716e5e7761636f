use crate::smtp::{count_received, rfc5322_date};

#[test]
fn dates_are_rfc5322() {
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(
        rfc5322_date(1_795_349_045),
        "Sun, 22 Nov 2026 12:04:05 +0000"
    );
    assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
}

#[test]
fn received_headers_are_counted_in_the_header_section_only() {
    let message = b"Received: a\r\nreceived: b\r\nSubject: x\r\n\r\nReceived: in the body\r\n";
    assert_eq!(count_received(message), 2);
}
