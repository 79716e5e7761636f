//! Tests of framing and certificate issuing.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::pki::{cert_names_node, issue_node_cert};
use crate::wire::{FrameError, MAX_FRAME, Request, WIRE_VERSION, read_frame, write_frame};

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

    let mut garbage = 7u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&WIRE_VERSION.to_be_bytes());
    garbage.extend_from_slice(&[0xff; 5]);
    let result: Result<Request, _> = read_frame(&mut garbage.as_slice()).await;
    assert!(matches!(result, Err(FrameError::Decode(_))));

    let short = [1u32.to_be_bytes().as_slice(), &[1]].concat();
    let result: Result<Request, _> = read_frame(&mut short.as_slice()).await;
    assert!(matches!(result, Err(FrameError::Decode(_))));
}

/// A request of a variant this build does not know, from a newer build, is an error naming
/// both wire versions (never a panic); the same from a sender of this version is plain
/// garbage.
#[tokio::test]
async fn an_unknown_variant_from_a_newer_build_is_an_error_naming_the_versions() {
    // bincode's standard config writes an enum's variant index as a varint: 200 is past every
    // variant `Request` has.
    let body = bincode::serde::encode_to_vec(200u32, bincode::config::standard()).unwrap();
    let frame = |version: u16| {
        let len = u32::try_from(2 + body.len()).unwrap();
        [len.to_be_bytes().as_slice(), &version.to_be_bytes(), &body].concat()
    };
    let newer = frame(WIRE_VERSION + 1);
    let result: Result<Request, _> = read_frame(&mut newer.as_slice()).await;
    let Err(err @ FrameError::Version { .. }) = result else {
        panic!("{result:?}");
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!("wire version {}", WIRE_VERSION + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("(wire version {WIRE_VERSION})")),
        "{text}"
    );
    let same = frame(WIRE_VERSION);
    let result: Result<Request, _> = read_frame(&mut same.as_slice()).await;
    assert!(matches!(result, Err(FrameError::Decode(_))), "{result:?}");
}

fn entry(index: u64, bytes: usize) -> raft_store::Entry {
    use openraft::vote::RaftLeaderId;
    openraft::Entry {
        log_id: openraft::LogId::new(
            openraft::vote::leader_id_adv::CommittedLeaderId::new(1, 1),
            index,
        ),
        payload: openraft::EntryPayload::Normal(raft_store::Request::new(
            raft_store::Command::AddDomain {
                name: "x".repeat(bytes),
                at: 0,
            },
        )),
    }
}

/// Large entries go to a follower a chunk at a time, at least one entry per request, so a
/// request never outgrows its deadline however large the entries are.
#[test]
fn append_requests_are_cut_to_chunks_of_whole_entries() {
    use crate::network::{APPEND_CHUNK_BYTES, cut_to_chunk};
    let mib = 1024 * 1024;
    let mut entries: Vec<_> = (1..=5).map(|i| entry(i, 3 * mib / 2)).collect();
    let (bytes, cut) = cut_to_chunk(&mut entries);
    assert!(cut);
    assert_eq!(entries.len(), 2);
    assert!(bytes <= APPEND_CHUNK_BYTES && bytes > 3 * mib);
    // One entry larger than a chunk still goes, alone.
    let mut entries = vec![entry(1, 6 * mib), entry(2, 10)];
    let (bytes, cut) = cut_to_chunk(&mut entries);
    assert!(cut && entries.len() == 1 && bytes > 6 * mib);
    // Small entries are not cut.
    let mut entries: Vec<_> = (1..=300).map(|i| entry(i, 100)).collect();
    let (_, cut) = cut_to_chunk(&mut entries);
    assert!(!cut);
    assert_eq!(entries.len(), 300);
    let mut none = Vec::new();
    assert_eq!(cut_to_chunk(&mut none), (0, false));
}

#[test]
fn append_deadlines_grow_with_the_bytes_sent() {
    use std::time::Duration;
    let base = Duration::from_millis(50);
    assert_eq!(crate::network::append_ttl(base, 0), base);
    assert_eq!(
        crate::network::append_ttl(base, 4 * 1024 * 1024),
        base + Duration::from_millis(500)
    );
}
