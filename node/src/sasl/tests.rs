//! Unit tests for SASL decoding, with responses built from the raw bytes a client would encode.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::sasl::{Credentials, SaslError, decode_plain, decode_text, encode_text};

fn credentials(authzid: &str, authcid: &str, password: &str) -> Credentials {
    Credentials {
        authzid: authzid.into(),
        authcid: authcid.into(),
        password: password.into(),
    }
}

/// Checks PLAIN decoding of `raw` after base64-encoding it, as a client would.
#[track_caller]
fn check_plain(raw: &[u8], expected: Result<Credentials, SaslError>) {
    assert_eq!(
        decode_plain(&STANDARD.encode(raw)),
        expected,
        "raw: {raw:?}"
    );
}

#[test]
fn plain_with_and_without_authzid() {
    check_plain(b"\0alice\0secret", Ok(credentials("", "alice", "secret")));
    check_plain(
        b"admin\0alice\0secret",
        Ok(credentials("admin", "alice", "secret")),
    );
    check_plain(
        b"\0alice@example.com\0pass word",
        Ok(credentials("", "alice@example.com", "pass word")),
    );
    check_plain(
        "\0josé\0pässwörd".as_bytes(),
        Ok(credentials("", "josé", "pässwörd")),
    );
}

#[test]
fn plain_malformed() {
    let three = SaslError::Malformed("PLAIN response must have exactly three fields");
    check_plain(b"alice\0secret", Err(three.clone()));
    check_plain(b"alicesecret", Err(three.clone()));
    check_plain(b"\0alice\0sec\0ret", Err(three.clone()));
    check_plain(b"\0\0alice\0secret", Err(three));
    check_plain(
        b"\0\0secret",
        Err(SaslError::Malformed(
            "PLAIN response has an empty user name",
        )),
    );
    check_plain(
        b"\0alice\0",
        Err(SaslError::Malformed("PLAIN response has an empty password")),
    );
    check_plain(
        b"\0alice\0\xff",
        Err(SaslError::Malformed("PLAIN response is not UTF-8")),
    );
}

#[test]
fn plain_special_responses() {
    assert_eq!(decode_plain("*"), Err(SaslError::Cancelled));
    assert_eq!(
        decode_plain("="),
        Err(SaslError::Malformed(
            "PLAIN response must have exactly three fields"
        ))
    );
    assert_eq!(
        decode_plain("AGFsaWNlAHNlY3JldA=="),
        Ok(credentials("", "alice", "secret"))
    );
    assert_eq!(
        decode_plain("AGFsaWNlAHNlY3JldA"),
        Ok(credentials("", "alice", "secret"))
    );
    assert_eq!(
        decode_plain(" AGFsaWNlAHNlY3JldA== "),
        Ok(credentials("", "alice", "secret"))
    );
    assert_eq!(
        decode_plain("AGFsaWNl AHNlY3JldA=="),
        Err(SaslError::BadBase64)
    );
    assert_eq!(decode_plain("not base64!"), Err(SaslError::BadBase64));
    assert_eq!(decode_plain("A"), Err(SaslError::BadBase64));
}

#[test]
fn text_steps() {
    assert_eq!(decode_text("YWxpY2U="), Ok("alice".to_owned()));
    assert_eq!(
        decode_text(&STANDARD.encode("pass word")),
        Ok("pass word".to_owned())
    );
    assert_eq!(decode_text(""), Ok(String::new()));
    assert_eq!(decode_text("="), Ok(String::new()));
    assert_eq!(decode_text("*"), Err(SaslError::Cancelled));
    assert_eq!(decode_text("YW*j"), Err(SaslError::BadBase64));
    assert_eq!(
        decode_text(&STANDARD.encode(b"a\0b")),
        Err(SaslError::Malformed("SASL response contains a NUL"))
    );
    assert_eq!(
        decode_text(&STANDARD.encode(b"\xc3")),
        Err(SaslError::Malformed("SASL response is not UTF-8"))
    );
}

#[test]
fn login_challenges() {
    assert_eq!(encode_text("Username:"), "VXNlcm5hbWU6");
    assert_eq!(encode_text("Password:"), "UGFzc3dvcmQ6");
    assert_eq!(
        decode_text(&encode_text("Ünïcödé")),
        Ok("Ünïcödé".to_owned())
    );
}

#[test]
fn debug_hides_the_password() {
    let shown = format!("{:?}", credentials("", "alice", "hunter2"));
    assert!(shown.contains("alice"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn errors_render_as_text() {
    assert_eq!(SaslError::Cancelled.to_string(), "authentication cancelled");
    assert_eq!(SaslError::Malformed("x").to_string(), "x");
}
