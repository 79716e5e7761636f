//! DKIM signing keys as replicated: one per local domain.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The signing algorithms of RFC 6376 and RFC 8463 that keys are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl DkimAlgorithm {
    /// The name in a DKIM-Signature's `a=` tag, which is also how the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::RsaSha256 => "rsa-sha256",
            DkimAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

impl fmt::Display for DkimAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DkimAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<DkimAlgorithm, String> {
        match s.to_ascii_lowercase().as_str() {
            "rsa-sha256" | "rsa" => Ok(DkimAlgorithm::RsaSha256),
            "ed25519-sha256" | "ed25519" => Ok(DkimAlgorithm::Ed25519Sha256),
            _ => Err(format!(
                "unknown DKIM algorithm {s:?} (rsa-sha256 or ed25519-sha256)"
            )),
        }
    }
}

/// The key a domain's outbound mail is signed with, published in DNS under
/// `selector._domainkey.domain`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    /// A local domain, lower case: the signature's `d=`.
    pub domain: String,
    /// The signature's `s=`.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The private key as PKCS#8 PEM.
    pub private_key_pem: String,
    /// Seconds since the Unix epoch, decided by the proposer.
    pub created_at: u64,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &"<hidden>")
            .field("created_at", &self.created_at)
            .finish()
    }
}
