//! Tests for token and password generation and digests.

use crate::secrets::{is_token, random_password, random_password_of, random_token, sha256_hex};

#[test]
fn token_is_64_lowercase_hex_digits() {
    let token = random_token();
    assert!(is_token(&token), "{token}");
    assert_ne!(token, random_token());
}

#[test]
fn is_token_rejects_other_strings() {
    assert!(!is_token("abc"));
    assert!(!is_token(&"A".repeat(64)));
    assert!(!is_token(&"g".repeat(64)));
}

#[test]
fn password_is_16_alphanumerics() {
    let password = random_password();
    assert_eq!(password.len(), 16);
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );
}

#[test]
fn a_password_policy_longer_than_16_gets_longer_passwords() {
    assert_eq!(random_password_of(40).len(), 40);
    assert_eq!(random_password_of(8).len(), 16);
}

#[test]
fn sha256_matches_known_vector() {
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
