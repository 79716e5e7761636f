//! SASL response decoding shared by the mail protocols: PLAIN (RFC 4616) and the single base64
//! lines of the LOGIN mechanism; no I/O.
//!
//! Responses arrive as base64 text lines (RFC 4954 for SMTP, RFC 5034 for POP3). A lone `*`
//! cancels the exchange, and `=`, the SMTP/POP3 spelling of an empty initial response, is taken
//! as empty here too so callers need not special-case it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};

#[cfg(test)]
mod tests;

/// What a PLAIN response carries. `Debug` leaves the password out, so credentials can sit in
/// structs that get logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as; empty means the same as `authcid`.
    pub authzid: String,
    /// The identity whose password this is.
    pub authcid: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 4: answer 501 5.7.0; RFC 5034: -ERR).
    #[error("authentication cancelled")]
    Cancelled,
    #[error("invalid base64 in SASL response")]
    BadBase64,
    #[error("{0}")]
    Malformed(&'static str),
}

/// Decodes a PLAIN response: base64 of `authzid NUL authcid NUL password`.
pub fn decode_plain(response: &str) -> Result<Credentials, SaslError> {
    parse_plain(&decode(response)?)
}

/// Splits a decoded PLAIN response (IMAP hands it over already decoded from base64).
pub fn parse_plain(bytes: &[u8]) -> Result<Credentials, SaslError> {
    let mut fields = bytes.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN response must have exactly three fields",
        ));
    };
    let utf8 = |field: &[u8]| {
        String::from_utf8(field.to_vec())
            .map_err(|_| SaslError::Malformed("PLAIN response is not UTF-8"))
    };
    let credentials = Credentials {
        authzid: utf8(authzid)?,
        authcid: utf8(authcid)?,
        password: utf8(password)?,
    };
    if credentials.authcid.is_empty() {
        return Err(SaslError::Malformed(
            "PLAIN response has an empty user name",
        ));
    }
    if credentials.password.is_empty() {
        return Err(SaslError::Malformed("PLAIN response has an empty password"));
    }
    Ok(credentials)
}

/// Decodes one LOGIN step (a user name or a password); the text may be empty.
pub fn decode_text(response: &str) -> Result<String, SaslError> {
    let bytes = decode(response)?;
    // A NUL has no business in a user name or password and would only confuse later lookups.
    if bytes.contains(&0) {
        return Err(SaslError::Malformed("SASL response contains a NUL"));
    }
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed("SASL response is not UTF-8"))
}

/// Encodes a challenge, such as LOGIN's `Username:` and `Password:`.
pub fn encode_text(text: &str) -> String {
    STANDARD.encode(text)
}

fn decode(response: &str) -> Result<Vec<u8>, SaslError> {
    let response = response.trim_matches([' ', '\t']);
    match response {
        "*" => Err(SaslError::Cancelled),
        "=" => Ok(Vec::new()),
        // Some clients leave out the padding; the length still determines the bytes exactly.
        _ => STANDARD_PAD_INDIFFERENT
            .decode(response)
            .map_err(|_| SaslError::BadBase64),
    }
}
