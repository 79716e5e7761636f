//! Client-facing TLS (SMTP STARTTLS and 465, POP3 STLS and 995): one certificate for the whole
//! cluster, kept in the replicated state so every node presents the same one. The rustls config
//! is rebuilt when the replicated certificate changes.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use raft_store::{ClientTls, StateReader};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

pub struct TlsConfigs {
    reader: StateReader,
    cached: Mutex<Option<(ClientTls, TlsAcceptor)>>,
}

impl TlsConfigs {
    pub fn new(reader: StateReader) -> TlsConfigs {
        TlsConfigs {
            reader,
            cached: Mutex::new(None),
        }
    }

    /// The acceptor for the current certificate, or None while the cluster has none.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        let current = match self.reader.client_tls() {
            Ok(Some(tls)) => tls,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the client TLS certificate");
                return None;
            }
        };
        let mut cached = self.cached.lock().expect("tls cache lock");
        if let Some((tls, acceptor)) = cached.as_ref()
            && *tls == current
        {
            return Some(acceptor.clone());
        }
        match server_config(&current) {
            Ok(config) => {
                let acceptor = TlsAcceptor::from(Arc::new(config));
                *cached = Some((current, acceptor.clone()));
                Some(acceptor)
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "the cluster's client TLS certificate is unusable");
                None
            }
        }
    }
}

/// Checks a certificate chain and key (PEM) and builds the server config from them.
pub fn server_config(tls: &ClientTls) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parse certificate PEM")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the PEM");
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).context("parse key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("certificate and key do not match")
}

/// A self-signed certificate for `names`, for a new cluster until an operator installs a real one.
pub fn self_signed(names: Vec<String>) -> anyhow::Result<ClientTls> {
    let key = rcgen::KeyPair::generate().context("generate key")?;
    let mut params = rcgen::CertificateParams::new(names).context("certificate names")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mcluster self-signed");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.self_signed(&key).context("sign certificate")?;
    Ok(ClientTls {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
