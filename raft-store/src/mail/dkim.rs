//! DKIM signing keys as replicated state: at most one key per local domain, so every node signs
//! that domain's outbound mail alike whichever one accepts it. A key lives only while its
//! domain does. The keys themselves are made and checked by the node; this module stores them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::db::CF_DKIM_KEYS;
use crate::error::StoreError;
use crate::state_machine::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

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

/// Sets (or replaces) the key of a local domain.
pub(crate) fn set_key(
    reader: &StateReader,
    key: &DkimKey,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.domain(&key.domain)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoSuchDomain(
            key.domain.clone(),
        )));
    }
    staged.put(CF_DKIM_KEYS, key.domain.as_bytes(), key);
    Ok(CommandResult::Done)
}

pub(crate) fn delete_key(
    reader: &StateReader,
    domain: &str,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.dkim_key(domain)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoDkimKey(
            domain.to_owned(),
        )));
    }
    staged.delete(CF_DKIM_KEYS, domain.as_bytes());
    Ok(CommandResult::Done)
}

/// Removes a domain's key along with the domain (nothing if it has none).
pub(crate) fn delete_key_of_domain(domain: &str, staged: &mut Staged<'_>) {
    staged.delete(CF_DKIM_KEYS, domain.as_bytes());
}

/// DKIM key reads of the applied state.
impl StateReader {
    pub fn dkim_key(&self, domain: &str) -> Result<Option<DkimKey>, StoreError> {
        self.db.get(CF_DKIM_KEYS, domain.as_bytes())
    }

    /// Every domain's key, by domain name.
    pub fn dkim_keys(&self) -> Result<Vec<DkimKey>, StoreError> {
        self.db.scan(CF_DKIM_KEYS)
    }
}
