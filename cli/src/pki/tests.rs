//! Tests for the CA, node certificates and CSRs: each is parsed back (by rcgen's x509-parser
//! support, by a small DER reader below, and by `openssl verify`).

use std::process::Command;

use rcgen::{
    CertificateSigningRequestParams, DnType, DnValue, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};

use crate::pki::{CertifiedKey, generate_ca, issue_node_cert, node_key_request};

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// One DER element: its tag, its contents and all of its bytes.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    raw: &'a [u8],
}

fn read_tlv(input: &[u8]) -> (Tlv<'_>, &[u8]) {
    let tag = input[0];
    let (len, header) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let n_bytes = usize::from(long & 0x7f);
            let len = input[2..2 + n_bytes]
                .iter()
                .fold(0usize, |len, byte| len << 8 | usize::from(*byte));
            (len, 2 + n_bytes)
        }
    };
    let tlv = Tlv {
        tag,
        content: &input[header..header + len],
        raw: &input[..header + len],
    };
    (tlv, &input[header + len..])
}

fn children(content: &[u8]) -> Vec<Tlv<'_>> {
    let mut rest = content;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (tlv, tail) = read_tlv(rest);
        out.push(tlv);
        rest = tail;
    }
    out
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let mut out = Vec::new();
    let mut bits = 0u32;
    let mut n_bits = 0;
    for c in body.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        bits = bits << 6 | u32::from(value);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push(u8::try_from(bits >> n_bits & 0xff).expect("masked to a byte"));
        }
    }
    out
}

/// The parts of a certificate these tests look at.
struct Parsed<'a> {
    issuer: Tlv<'a>,
    subject: Tlv<'a>,
    spki: Tlv<'a>,
    extensions: Vec<(Vec<u8>, &'a [u8])>,
}

fn parse_cert(der: &[u8]) -> Parsed<'_> {
    let (cert, rest) = read_tlv(der);
    assert!(rest.is_empty());
    let tbs = children(children(cert.content)[0].content);
    // version [0], serial, signature algorithm, issuer, validity, subject, spki, extensions [3]
    assert_eq!(tbs[0].tag, 0xa0, "explicit version");
    let extensions_wrapper = tbs.iter().find(|tlv| tlv.tag == 0xa3).expect("extensions");
    let extensions = children(children(extensions_wrapper.content)[0].content)
        .into_iter()
        .map(|extension| {
            let parts = children(extension.content);
            let value = parts.last().expect("extension value");
            (parts[0].content.to_vec(), value.content)
        })
        .collect();
    Parsed {
        issuer: tbs[3],
        subject: tbs[5],
        spki: tbs[6],
        extensions,
    }
}

impl Parsed<'_> {
    fn extension(&self, oid: &[u8]) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(id, _)| id == oid)
            .map(|(_, value)| *value)
    }

    fn dns_names(&self) -> Vec<String> {
        let san = self
            .extension(OID_SUBJECT_ALT_NAME)
            .expect("subjectAltName");
        children(read_tlv(san).0.content)
            .into_iter()
            .filter(|name| name.tag == 0x82)
            .map(|name| String::from_utf8(name.content.to_vec()).expect("ascii"))
            .collect()
    }
}

fn common_name(name: Tlv<'_>) -> String {
    for set in children(name.content) {
        for attribute in children(set.content) {
            let parts = children(attribute.content);
            if parts[0].content == OID_COMMON_NAME {
                return String::from_utf8(parts[1].content.to_vec()).expect("utf-8");
            }
        }
    }
    panic!("no common name")
}

#[track_caller]
fn check_ca(ca: &CertifiedKey, cluster_name: &str) {
    let der = pem_to_der(&ca.cert_pem);
    let parsed = parse_cert(&der);
    assert_eq!(
        common_name(parsed.subject),
        format!("mcluster CA {cluster_name}")
    );
    assert_eq!(parsed.issuer.raw, parsed.subject.raw, "self-signed");
    // BasicConstraints ::= SEQUENCE { cA BOOLEAN TRUE, pathLen 0 }
    let basic_constraints = parsed
        .extension(OID_BASIC_CONSTRAINTS)
        .expect("basicConstraints");
    assert_eq!(
        basic_constraints,
        [0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]
    );

    // Parsed by x509-parser inside rcgen.
    let key = KeyPair::from_pem(&ca.key_pem).expect("parse CA key");
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, key).expect("parse CA certificate");
    let mut usages = issuer.key_usages().to_vec();
    usages.sort_by_key(|usage| format!("{usage:?}"));
    assert_eq!(
        usages,
        [KeyUsagePurpose::CrlSign, KeyUsagePurpose::KeyCertSign]
    );
    assert_eq!(parsed.spki.raw, issuer.key().subject_public_key_info());
}

#[track_caller]
fn check_node_cert(ca: &CertifiedKey, node: &CertifiedKey, name: &str, dns_name: &str) {
    let ca_der = pem_to_der(&ca.cert_pem);
    let node_der = pem_to_der(&node.cert_pem);
    let ca_parsed = parse_cert(&ca_der);
    let parsed = parse_cert(&node_der);
    assert_eq!(common_name(parsed.subject), name);
    assert_eq!(parsed.issuer.raw, ca_parsed.subject.raw, "issued by the CA");
    assert_eq!(parsed.dns_names(), [dns_name]);
    let eku = parsed
        .extension(OID_EXT_KEY_USAGE)
        .expect("extendedKeyUsage");
    let purposes: Vec<&[u8]> = children(read_tlv(eku).0.content)
        .iter()
        .map(|oid| oid.content)
        .collect();
    assert_eq!(purposes, [OID_SERVER_AUTH, OID_CLIENT_AUTH]);
    assert!(parsed.extension(OID_KEY_USAGE).is_some());
    let node_key = KeyPair::from_pem(&node.key_pem).expect("parse node key");
    assert_eq!(
        parsed.spki.raw,
        node_key.subject_public_key_info(),
        "certifies the node's key"
    );
    // x509-parser (inside rcgen) accepts the certificate too.
    let as_issuer = Issuer::from_ca_cert_pem(&node.cert_pem, node_key).expect("parse node cert");
    assert_eq!(as_issuer.key_usages(), [KeyUsagePurpose::DigitalSignature]);
    check_with_openssl(ca, node, dns_name);
}

/// The full chain check (signature, validity, purposes) by an independent implementation.
/// `deploy/dev.sh test` installs openssl; without it this check fails rather than pass unseen.
fn check_with_openssl(ca: &CertifiedKey, node: &CertifiedKey, dns_name: &str) {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "openssl is needed for this check: apt-get install openssl (deploy/dev.sh does)"
    );
    let dir = tempfile::tempdir().expect("create temp dir");
    let ca_path = dir.path().join("ca.crt");
    let node_path = dir.path().join("node.crt");
    std::fs::write(&ca_path, &ca.cert_pem).expect("write ca.crt");
    std::fs::write(&node_path, &node.cert_pem).expect("write node.crt");
    for purpose in ["sslserver", "sslclient"] {
        let output = Command::new("openssl")
            .args(["verify", "-purpose", purpose, "-CAfile"])
            .arg(&ca_path)
            .arg(&node_path)
            .output()
            .expect("run openssl verify");
        assert!(
            output.status.success(),
            "openssl verify -purpose {purpose}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = Command::new("openssl")
        .args(["verify", "-verify_hostname", dns_name, "-CAfile"])
        .arg(&ca_path)
        .arg(&node_path)
        .output()
        .expect("run openssl verify");
    assert!(output.status.success(), "hostname {dns_name} verifies");
}

#[test]
fn ca_is_a_self_signed_ca() {
    let ca = generate_ca("mcluster").expect("generate CA");
    check_ca(&ca, "mcluster");
}

#[test]
fn first_node_certificate_verifies_against_the_ca() {
    let ca = generate_ca("prod").expect("generate CA");
    let node = issue_node_cert(&ca, 1, "n1").expect("issue node cert");
    check_node_cert(&ca, &node, "n1", "node-1");
}

#[test]
fn csr_names_the_node_and_can_be_signed_like_the_cluster_does() {
    let request = node_key_request("n2").expect("make CSR");
    let csr = CertificateSigningRequestParams::from_pem(&request.csr_pem).expect("parse CSR");
    assert_eq!(
        csr.params.distinguished_name.get(&DnType::CommonName),
        Some(&DnValue::Utf8String("n2".to_owned()))
    );
    let node_key = KeyPair::from_pem(&request.key_pem).expect("parse key");
    assert_eq!(csr.public_key.der_bytes(), node_key.der_bytes());

    // What a node does on POST /v1/join.
    let ca = generate_ca("mcluster").expect("generate CA");
    let ca_key = KeyPair::from_pem(&ca.key_pem).expect("parse CA key");
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).expect("parse CA");
    let mut params = csr.params.clone();
    params.subject_alt_names = vec![rcgen::SanType::DnsName("node-2".try_into().expect("ia5"))];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let signed = CertificateSigningRequestParams {
        params,
        public_key: csr.public_key,
    }
    .signed_by(&issuer)
    .expect("sign CSR");
    let node = CertifiedKey {
        cert_pem: signed.pem(),
        key_pem: request.key_pem,
    };
    check_node_cert(&ca, &node, "n2", "node-2");
}

#[test]
fn debug_output_hides_private_keys() {
    let ca = generate_ca("mcluster").expect("generate CA");
    let debug = format!("{ca:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
}
