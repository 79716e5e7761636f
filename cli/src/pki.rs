//! The cluster's certificates: the CA made by `init`, node certificates it signs, and the key
//! and certificate signing request a joining node sends to the cluster.
//!
//! Every node certificate carries the DNS name `node-<id>` (nodes verify each other by id) and
//! both server and client authentication, since Raft connections are mutual TLS.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::calendar;

#[cfg(test)]
mod tests;

/// CA and node certificates are valid this long.
pub const VALIDITY_YEARS: i32 = 10;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// A fresh private key and a CSR for it, both PEM.
#[derive(Clone)]
pub struct KeyRequest {
    pub csr_pem: String,
    pub key_pem: String,
}

/// The DNS name in node `node_id`'s certificate.
pub fn node_dns_name(node_id: u64) -> String {
    format!("node-{node_id}")
}

/// The self-signed cluster CA, named `mcluster CA <cluster_name>`.
pub fn generate_ca(cluster_name: &str) -> Result<CertifiedKey> {
    let key_pair = KeyPair::generate().context("generate CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(&format!("mcluster CA {cluster_name}"));
    // The CA signs node certificates directly, never an intermediate.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params);
    let cert = params
        .self_signed(&key_pair)
        .context("self-sign CA certificate")?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
    })
}

/// A new key for node `node_id` named `name`, with a certificate signed by `ca`.
pub fn issue_node_cert(ca: &CertifiedKey, node_id: u64, name: &str) -> Result<CertifiedKey> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).context("parse CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).context("parse CA certificate")?;
    let key_pair = KeyPair::generate().context("generate node key")?;
    let mut params = CertificateParams::new(vec![node_dns_name(node_id)])
        .context("build node certificate parameters")?;
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    let cert = params
        .signed_by(&key_pair, &issuer)
        .context("sign node certificate")?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
    })
}

/// A new key and a CSR with subject CN `name` and nothing else: the cluster decides the node id,
/// the DNS name and the usages when it signs.
pub fn node_key_request(name: &str) -> Result<KeyRequest> {
    let key_pair = KeyPair::generate().context("generate node key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    let csr = params
        .serialize_request(&key_pair)
        .context("build certificate signing request")?;
    Ok(KeyRequest {
        csr_pem: csr.pem().context("encode certificate signing request")?,
        key_pem: key_pair.serialize_pem(),
    })
}

fn common_name(name: &str) -> DistinguishedName {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, name);
    distinguished_name
}

/// From the start of today (UTC) for [`VALIDITY_YEARS`]: starting at midnight tolerates clocks
/// that are a little behind.
fn set_validity(params: &mut CertificateParams) {
    let today = calendar::today();
    let until = today.plus_years(VALIDITY_YEARS);
    params.not_before = rcgen::date_time_ymd(today.year, today.month, today.day);
    params.not_after = rcgen::date_time_ymd(until.year, until.month, until.day);
}
