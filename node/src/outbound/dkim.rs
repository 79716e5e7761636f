//! DKIM (RFC 6376, Ed25519 per RFC 8463) for outbound mail, with the per-domain keys held in
//! the replicated state: making a key, checking an imported one, the DNS TXT record that
//! publishes it, and the signer. No I/O: keys come in as [`DkimKey`], a signature goes out as
//! the header text to put in front of the message.
//!
//! Keys are kept as PKCS#8 PEM. ring signs and loads them; ring cannot make RSA keys, so the
//! pure-Rust `rsa` crate makes those (and reads PKCS#1 imports and derives the public key).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{DkimKey as SigningKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use raft_store::{DkimAlgorithm, DkimKey};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::der::pem::LineEnding;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The size of the RSA keys made here (RFC 8301 asks for at least 1024 bits and recommends
/// 2048; ring signs with 2048 to 4096).
pub const RSA_BITS: usize = 2048;

/// The headers signed when the message has them, in this order (the RFC 6376 5.4.1 list).
/// Headers a message lacks are left out of `h=`, so a relay may still add them.
pub const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
];

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error(
        "invalid DKIM selector {0:?}: use DNS labels of letters, digits and '-', separated by '.'"
    )]
    InvalidSelector(String),
    /// The PEM given (or stored) is not a key this module can sign with.
    #[error("unusable DKIM private key: {0}")]
    InvalidKey(String),
    #[error("the message has no From header, which a DKIM signature must cover")]
    NoFrom,
    /// Key generation or signing failed inside the crypto library.
    #[error("DKIM {what} failed: {reason}")]
    Crypto { what: &'static str, reason: String },
}

/// Checks that `selector` can stand in front of `._domainkey.` (RFC 6376 3.1).
pub fn check_selector(selector: &str) -> Result<(), DkimError> {
    let labels_ok = selector.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if selector.is_empty() || selector.len() > 200 || !labels_ok {
        return Err(DkimError::InvalidSelector(selector.to_owned()));
    }
    Ok(())
}

/// The selector a new key gets when the operator names none: `mc` and the UTC date, so a key
/// made to rotate on another day gets a new DNS name of its own.
pub fn default_selector(now: u64) -> String {
    let date = mail_parser::DateTime::from_timestamp(i64::try_from(now).unwrap_or(i64::MAX));
    format!("mc{:04}{:02}{:02}", date.year, date.month, date.day)
}

/// Makes a new key for `domain`. RSA generation takes a moment: call it off the async runtime.
pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
    created_at: u64,
) -> Result<DkimKey, DkimError> {
    check_selector(selector)?;
    let crypto = |reason: String| DkimError::Crypto {
        what: "key generation",
        reason,
    };
    let private_key_pem = match algorithm {
        DkimAlgorithm::RsaSha256 => {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                .map_err(|e| crypto(e.to_string()))?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| crypto(e.to_string()))?
                .to_string()
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let der = Ed25519Key::generate_pkcs8().map_err(|e| crypto(e.to_string()))?;
            pkcs8_pem(&der).map_err(crypto)?
        }
    };
    let key = DkimKey {
        domain: domain.to_owned(),
        selector: selector.to_owned(),
        algorithm,
        private_key_pem,
        created_at,
    };
    // A key that does not load would fail every signature later: find out now.
    load(&key)?;
    Ok(key)
}

/// Makes a key for `domain` from an operator's private key: PKCS#8 PEM (RSA or Ed25519) or
/// PKCS#1 PEM (RSA), stored as PKCS#8. `algorithm`, when given, must match the key.
pub fn import(
    domain: &str,
    selector: &str,
    algorithm: Option<DkimAlgorithm>,
    pem: &str,
    created_at: u64,
) -> Result<DkimKey, DkimError> {
    check_selector(selector)?;
    let invalid = |reason: String| DkimError::InvalidKey(reason);
    let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(PrivateKeyDer::Pkcs8(der)) => der.secret_pkcs8_der().to_vec(),
        Ok(PrivateKeyDer::Pkcs1(der)) => {
            let key = rsa::RsaPrivateKey::from_pkcs1_der(der.secret_pkcs1_der())
                .map_err(|e| invalid(format!("PKCS#1 RSA key: {e}")))?;
            let pkcs8 = key
                .to_pkcs8_der()
                .map_err(|e| invalid(format!("PKCS#1 RSA key: {e}")))?;
            pkcs8.as_bytes().to_vec()
        }
        Ok(_) => {
            return Err(invalid(
                "an EC key; DKIM signs with RSA or Ed25519".to_owned(),
            ));
        }
        Err(e) => return Err(invalid(format!("no private key PEM block found ({e})"))),
    };
    let found = algorithm_of(&der)?;
    if let Some(wanted) = algorithm
        && wanted != found
    {
        return Err(invalid(format!("the key is for {found}, not {wanted}")));
    }
    let key = DkimKey {
        domain: domain.to_owned(),
        selector: selector.to_owned(),
        algorithm: found,
        private_key_pem: pkcs8_pem(&der).map_err(invalid)?,
        created_at,
    };
    load(&key)?;
    Ok(key)
}

/// The TXT record that publishes `key`: its name (`selector._domainkey.domain`) and value
/// (`v=DKIM1; k=rsa; p=...`, the whole value; zone files split it into strings of at most 255
/// bytes).
pub fn dns_record(key: &DkimKey) -> Result<(String, String), DkimError> {
    let (k, public_key) = match key.algorithm {
        // p= holds the SubjectPublicKeyInfo, as `openssl rsa -pubout` prints it.
        DkimAlgorithm::RsaSha256 => {
            let private = rsa::RsaPrivateKey::from_pkcs8_pem(&key.private_key_pem)
                .map_err(|e| DkimError::InvalidKey(format!("RSA key: {e}")))?;
            let spki = private
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| DkimError::InvalidKey(format!("RSA public key: {e}")))?;
            ("rsa", spki.as_bytes().to_vec())
        }
        // p= holds the bare 32-byte key (RFC 8463 4.2).
        DkimAlgorithm::Ed25519Sha256 => {
            let der = pkcs8_der(&key.private_key_pem)?;
            let pair = Ed25519Key::from_pkcs8_maybe_unchecked_der(&der)
                .map_err(|e| DkimError::InvalidKey(format!("Ed25519 key: {e}")))?;
            ("ed25519", pair.public_key())
        }
    };
    let name = format!("{}._domainkey.{}", key.selector, key.domain);
    let value = format!("v=DKIM1; k={k}; p={}", BASE64.encode(public_key));
    Ok((name, value))
}

/// Signs `message` (headers and body, CRLF line ends) with `key`, relaxed/relaxed, timestamped
/// now. Returns the folded `DKIM-Signature: ...\r\n` header to put in front of the message.
pub fn sign(message: &[u8], key: &DkimKey) -> Result<String, DkimError> {
    let present = header_names(message);
    let signed: Vec<&str> = SIGNED_HEADERS
        .into_iter()
        .filter(|name| {
            present
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect();
    if !signed.contains(&"From") {
        return Err(DkimError::NoFrom);
    }
    let signature = DkimSigner::from_key(load(key)?)
        .domain(key.domain.as_str())
        .selector(key.selector.as_str())
        .headers(signed)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| DkimError::Crypto {
            what: "signing",
            reason: e.to_string(),
        })?;
    Ok(signature.to_header())
}

/// The domain of the first address of the first From header, lower case: whose key signs.
pub fn signer_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty()).then_some(domain)
}

/// Loads `key` the way the signer uses it.
fn load(key: &DkimKey) -> Result<SigningKey, DkimError> {
    let der = pkcs8_der(&key.private_key_pem)?;
    match key.algorithm {
        DkimAlgorithm::RsaSha256 => {
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)))
                .map(SigningKey::Rsa)
                .map_err(|e| {
                    DkimError::InvalidKey(format!("RSA key ({} to 4096 bits): {e}", RSA_BITS))
                })
        }
        // Also PKCS#8 v1 (no public key inside), as `openssl genpkey` writes.
        DkimAlgorithm::Ed25519Sha256 => Ed25519Key::from_pkcs8_maybe_unchecked_der(&der)
            .map(SigningKey::Ed25519)
            .map_err(|e| DkimError::InvalidKey(format!("Ed25519 key: {e}"))),
    }
}

/// Which algorithm a PKCS#8 key is for, from its algorithm identifier.
fn algorithm_of(der: &[u8]) -> Result<DkimAlgorithm, DkimError> {
    let info = rsa::pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|e| DkimError::InvalidKey(format!("PKCS#8: {e}")))?;
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA_ENCRYPTION => Ok(DkimAlgorithm::RsaSha256),
        OID_ED25519 => Ok(DkimAlgorithm::Ed25519Sha256),
        other => Err(DkimError::InvalidKey(format!(
            "a key of algorithm {other}; DKIM signs with RSA or Ed25519"
        ))),
    }
}

fn pkcs8_der(pem: &str) -> Result<Vec<u8>, DkimError> {
    PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.secret_pkcs8_der().to_vec())
        .map_err(|e| DkimError::InvalidKey(format!("no PKCS#8 private key PEM block ({e})")))
}

fn pkcs8_pem(der: &[u8]) -> Result<String, String> {
    rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, der)
        .map_err(|e| e.to_string())
}

/// The names of the message's header fields, in order (a field's continuation lines start with
/// white space; the header ends at the first empty line).
fn header_names(message: &[u8]) -> Vec<&[u8]> {
    let mut names = Vec::new();
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            names.push(line[..colon].trim_ascii_end());
        }
    }
    names
}

#[cfg(test)]
mod tests;
