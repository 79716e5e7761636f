//! Random tokens and passwords, and the SHA-256 digests the cluster stores in place of tokens.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

const TOKEN_BYTES: usize = 32;
const PASSWORD_CHARS: usize = 16;

/// 32 random bytes as 64 lowercase hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::fill(&mut bytes);
    hex(&bytes)
}

/// 16 random letters and digits (about 95 bits).
pub fn random_password() -> String {
    random_password_of(PASSWORD_CHARS)
}

/// `chars` random letters and digits, but never fewer than 16.
pub fn random_password_of(chars: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(chars.max(PASSWORD_CHARS))
        .map(char::from)
        .collect()
}

/// Lowercase hex SHA-256 of the token string's UTF-8 bytes: what the cluster stores.
pub fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` looks like one made by [`random_token`].
pub fn is_token(token: &str) -> bool {
    token.len() == 2 * TOKEN_BYTES
        && token
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut out, byte| {
            write!(out, "{byte:02x}").expect("writing to a String cannot fail");
            out
        })
}
