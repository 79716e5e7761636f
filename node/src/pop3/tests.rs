use crate::pop3::{stuff, top_of};

#[test]
fn top_returns_headers_and_n_body_lines() {
    let message = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
    assert_eq!(top_of(message, 0), b"A: 1\r\nB: 2\r\n\r\n");
    assert_eq!(top_of(message, 2), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n");
    assert_eq!(top_of(message, 9), message);
}

#[test]
fn stuffing_doubles_leading_dots_and_ends_lines() {
    let mut out = Vec::new();
    stuff(b".hidden\r\nplain\r\n..two\r\nlast", &mut out);
    assert_eq!(out, b"..hidden\r\nplain\r\n...two\r\nlast\r\n");
}
