//! The cluster's certificates: TLS configurations for mutual authentication between nodes, the
//! name a node's certificate carries, and signing the certificate of a joining node.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;

use crate::error::ReplicationError;
use raft_store::NodeId;

/// ALPN protocol of the node-to-node transport.
pub const ALPN: &[u8] = b"mcluster/1";

/// The DNS name a node's certificate is issued for, and that a peer checks when it dials it.
pub fn node_name(node_id: NodeId) -> String {
    format!("node-{node_id}")
}

/// The one crypto provider used everywhere in the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A node's identity: the cluster CA and its own certificate chain and key.
pub struct NodeIdentity {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl NodeIdentity {
    pub fn load(
        ca_path: &Path,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<NodeIdentity, ReplicationError> {
        let pem_err = |path: &Path| {
            let path = path.display().to_string();
            move |err: rustls::pki_types::pem::Error| ReplicationError::Pem {
                path,
                reason: err.to_string(),
            }
        };
        let ca = CertificateDer::from_pem_file(ca_path).map_err(pem_err(ca_path))?;
        let chain = CertificateDer::pem_file_iter(cert_path)
            .map_err(pem_err(cert_path))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem_err(cert_path))?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(pem_err(key_path))?;
        Ok(NodeIdentity { ca, chain, key })
    }

    /// The key for QUIC stateless resets, derived from this node's private key: the same on
    /// every start, so a restarted node can tell peers at once that their old connection to it
    /// is gone (they would otherwise wait for the idle timeout), and secret, so no one else can.
    pub fn reset_key(&self) -> ring::hmac::Key {
        let mut seed = ring::digest::Context::new(&ring::digest::SHA256);
        seed.update(b"mcluster quic stateless reset v1");
        seed.update(self.key.secret_der());
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed.finish().as_ref())
    }

    fn roots(&self) -> Result<rustls::RootCertStore, ReplicationError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).map_err(ReplicationError::Tls)?;
        Ok(roots)
    }

    /// The server side: only clients with a certificate from the cluster CA get in.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, ReplicationError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots()?), provider())
                .build()
                .map_err(|e| ReplicationError::Config(e.to_string()))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ReplicationError::Tls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(ReplicationError::Tls)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// The client side: the server must present a certificate from the cluster CA naming the
    /// node we dialled (checked against `node_name(target)` at connect time).
    pub fn client_config(&self) -> Result<rustls::ClientConfig, ReplicationError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(ReplicationError::Tls)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(ReplicationError::Tls)?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }
}

/// Whether `cert` (already verified against the cluster CA by the TLS handshake) names `node_id`.
pub fn cert_names_node(cert: &CertificateDer<'_>, node_id: NodeId) -> bool {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(node_name(node_id)) else {
        return false;
    };
    end_entity.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Checks that `csr_pem` is a well-formed, correctly self-signed certificate signing request.
pub fn check_csr(csr_pem: &str) -> Result<(), ReplicationError> {
    CertificateSigningRequestParams::from_pem(csr_pem)
        .map(|_| ())
        .map_err(|e| ReplicationError::Sign(e.to_string()))
}

/// Signs a certificate for a joining node. The CSR contributes only its public key (its
/// signature is checked): the names in the certificate are decided here, from the node id the
/// cluster allocated, never taken from the request.
pub fn issue_node_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    node_id: NodeId,
    display_name: &str,
    csr_pem: &str,
) -> Result<String, ReplicationError> {
    let sign_err = |e: rcgen::Error| ReplicationError::Sign(e.to_string());
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(sign_err)?;
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(sign_err)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(sign_err)?;
    let mut params = CertificateParams::new(vec![node_name(node_id)]).map_err(sign_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, display_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params
        .signed_by(&csr.public_key, &issuer)
        .map_err(sign_err)?;
    Ok(cert.pem())
}

/// A certificate and its new private key (PEM) for node `node_id`'s admin API over HTTPS,
/// signed by the cluster CA: it names the node (`node-<id>`) and the address clients dial, so a
/// client that trusts the cluster CA verifies it like any HTTPS server.
pub fn issue_admin_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    node_id: NodeId,
    admin_ip: std::net::IpAddr,
) -> Result<(String, String), ReplicationError> {
    let sign_err = |e: rcgen::Error| ReplicationError::Sign(e.to_string());
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(sign_err)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key).map_err(sign_err)?;
    let mut params = CertificateParams::new(vec![node_name(node_id)]).map_err(sign_err)?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(admin_ip));
    params
        .distinguished_name
        .push(DnType::CommonName, node_name(node_id));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let key = KeyPair::generate().map_err(sign_err)?;
    let cert = params.signed_by(&key, &issuer).map_err(sign_err)?;
    Ok((cert.pem(), key.serialize_pem()))
}
