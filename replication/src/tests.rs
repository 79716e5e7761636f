//! Tests of framing and certificate issuing.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::pki::{cert_names_node, issue_node_cert};
use crate::wire::{FrameError, MAX_FRAME, Request, read_frame, write_frame};

fn test_ca() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn csr() -> String {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["evil-name".to_string(), "node-1".to_string()]).unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn issued_certificate_names_the_allocated_node_only() {
    let (ca_pem, ca_key) = test_ca();
    let cert_pem = issue_node_cert(&ca_pem, &ca_key, 7, "n7", &csr()).expect("issue");
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    assert!(cert_names_node(&cert, 7));
    // Names asked for in the CSR are ignored.
    assert!(!cert_names_node(&cert, 1));
}

#[test]
fn garbage_csr_is_refused() {
    let (ca_pem, ca_key) = test_ca();
    assert!(issue_node_cert(&ca_pem, &ca_key, 2, "n2", "not a csr").is_err());
}

#[tokio::test]
async fn frames_round_trip_and_oversized_frames_are_refused() {
    let mut buf = Vec::new();
    write_frame(&mut buf, &Request::ReadIndex).await.unwrap();
    let decoded: Request = read_frame(&mut buf.as_slice()).await.unwrap();
    assert!(matches!(decoded, Request::ReadIndex));

    let mut huge = (MAX_FRAME + 1).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 16]);
    let result: Result<Request, _> = read_frame(&mut huge.as_slice()).await;
    assert!(matches!(result, Err(FrameError::TooLarge(_))));

    let mut garbage = 5u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff; 5]);
    let result: Result<Request, _> = read_frame(&mut garbage.as_slice()).await;
    assert!(matches!(result, Err(FrameError::Decode(_))));
}
