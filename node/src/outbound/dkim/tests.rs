//! Signatures made here are checked by mail-auth's verifier, with the TXT record from
//! `dns_record` served from its resolver cache (no DNS traffic).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};
use mail_auth::{ResolverCache, Txt};
use raft_store::{DkimAlgorithm, DkimKey};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::der::pem::LineEnding;

use crate::outbound::dkim::{
    DkimError, check_selector, default_selector, dns_record, generate, import, sign, signer_domain,
};

const MESSAGE: &str = "From: \"Ann Example\" <ann@example.test>\r\n\
To: bob@remote.test\r\n\
Subject: DKIM  test\r\n\
Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n\
Message-ID: <1@example.test>\r\n\
X-Unsigned: yes\r\n\
\r\n\
Hello Bob,\r\n\
the body is   signed   too.\r\n";

/// TXT records by lower-case FQDN, handed to the verifier as its resolver cache.
#[derive(Default)]
struct TxtRecords(HashMap<Box<str>, Txt>);

impl TxtRecords {
    fn publish(&mut self, key: &DkimKey) {
        let (name, value) = dns_record(key).expect("dns record");
        let parsed = DomainKey::parse(value.as_bytes()).expect("the TXT value parses");
        self.0.insert(
            format!("{}.", name.to_ascii_lowercase()).into(),
            Txt::DomainKey(Arc::new(parsed)),
        );
    }
}

impl ResolverCache<Box<str>, Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// Verifies every DKIM-Signature of `message` against `records`; true when all pass.
async fn verifies(message: &[u8], records: &TxtRecords) -> Vec<DkimResult> {
    // No name servers: a lookup the cache cannot answer fails instead of leaving the host.
    let authenticator = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, vec![], vec![]),
        ResolverOpts::default(),
    )
    .expect("resolver");
    let parsed = AuthenticatedMessage::parse(message).expect("message parses");
    authenticator
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(records))
        .await
        .into_iter()
        .map(|output| output.result().clone())
        .collect()
}

fn signed(message: &str, key: &DkimKey) -> Vec<u8> {
    let header = sign(message.as_bytes(), key).expect("sign");
    [header.as_bytes(), message.as_bytes()].concat()
}

/// Signs MESSAGE with `key`, checks the signature passes with the published record and fails
/// once the body is changed.
#[track_caller]
fn check_round_trip(key: &DkimKey) {
    let mut records = TxtRecords::default();
    records.publish(key);
    let message = signed(MESSAGE, key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        runtime.block_on(verifies(&message, &records)),
        [DkimResult::Pass],
        "{}",
        String::from_utf8_lossy(&message)
    );
    // Relaxed canonicalization forgives white space changes, not content changes.
    let respaced = String::from_utf8(message.clone())
        .unwrap()
        .replace("signed   too", "signed too");
    assert_eq!(
        runtime.block_on(verifies(respaced.as_bytes(), &records)),
        [DkimResult::Pass]
    );
    // mail-auth reports a body hash mismatch as neutral (RFC 6376 6.1.3 allows it); a changed
    // signed header breaks the signature itself.
    let tampered = String::from_utf8(message.clone())
        .unwrap()
        .replace("Hello Bob", "Hello Eve");
    let results = runtime.block_on(verifies(tampered.as_bytes(), &records));
    assert_eq!(
        results,
        [DkimResult::Neutral(mail_auth::Error::Dkim(
            mail_auth::dkim::DkimError::FailedBodyHashMatch
        ))],
        "a changed body must not pass"
    );
    let tampered = String::from_utf8(message)
        .unwrap()
        .replace("Subject: DKIM  test", "Subject: DKIM test!");
    let results = runtime.block_on(verifies(tampered.as_bytes(), &records));
    // (ring's RSA and Ed25519 checks word the failure differently.)
    assert!(
        matches!(
            results.as_slice(),
            [DkimResult::Fail(mail_auth::Error::Crypto(_))]
        ),
        "a changed signed header must fail: {results:?}"
    );
}

#[test]
fn dkim_rsa_signature_verifies_and_a_changed_body_fails() {
    let key = generate("example.test", "s1", DkimAlgorithm::RsaSha256, 1).unwrap();
    assert!(
        key.private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    check_round_trip(&key);
}

#[test]
fn dkim_ed25519_signature_verifies_and_a_changed_body_fails() {
    let key = generate("example.test", "ed", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    assert!(
        key.private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    check_round_trip(&key);
}

#[test]
fn dkim_signature_of_another_key_fails() {
    let signer = generate("example.test", "s1", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    let published = generate("example.test", "s1", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    let mut records = TxtRecords::default();
    records.publish(&published);
    let message = signed(MESSAGE, &signer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(verifies(&message, &records));
    assert!(
        matches!(
            results.as_slice(),
            [DkimResult::Fail(mail_auth::Error::Crypto(_))]
        ),
        "{results:?}"
    );
}

#[test]
fn dkim_signature_header_is_folded_and_covers_the_present_headers() {
    let key = generate("example.test", "ed", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    let header = sign(MESSAGE.as_bytes(), &key).unwrap();
    assert!(
        header.starts_with(
            "DKIM-Signature: v=1; a=ed25519-sha256; s=ed; d=example.test; c=relaxed/relaxed;"
        ),
        "{header}"
    );
    assert!(header.ends_with("\r\n"));
    // Folded: the first line holds the fixed tags, the others stay within 78 characters.
    let mut lines = header.split("\r\n").filter(|line| !line.is_empty());
    assert!(lines.next().is_some_and(|first| first.len() < 998));
    assert!(
        lines.all(|line| line.starts_with('\t') && line.len() <= 78),
        "{header}"
    );
    let unfolded = header.replace("\r\n\t", " ");
    let h = unfolded
        .split(';')
        .map(str::trim)
        .find_map(|tag| tag.strip_prefix("h="))
        .expect("h= tag");
    // mail-auth lists the fields bottom-up, so that repeated fields are taken last first.
    assert_eq!(h, "Message-ID:Date:Subject:To:From");
    assert!(unfolded.contains(" t="), "{header}");

    let no_from = "To: bob@remote.test\r\nSubject: x\r\n\r\nbody\r\n";
    assert!(matches!(
        sign(no_from.as_bytes(), &key),
        Err(DkimError::NoFrom)
    ));
}

#[test]
fn dkim_dns_records_publish_the_public_key() {
    let ed = generate("example.test", "ed", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    let (name, value) = dns_record(&ed).unwrap();
    assert_eq!(name, "ed._domainkey.example.test");
    let p = value.strip_prefix("v=DKIM1; k=ed25519; p=").expect(&value);
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
    assert_eq!(raw.len(), 32);

    let rsa = generate("example.test", "s1", DkimAlgorithm::RsaSha256, 1).unwrap();
    let (name, value) = dns_record(&rsa).unwrap();
    assert_eq!(name, "s1._domainkey.example.test");
    // A SubjectPublicKeyInfo of a 2048-bit key.
    let p = value.strip_prefix("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA");
    assert!(p.is_some(), "{value}");
}

#[test]
fn dkim_imports_pkcs1_rsa_and_pkcs8_v1_ed25519_keys() {
    let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pkcs1 = rsa.to_pkcs1_pem(LineEnding::LF).unwrap();
    let key = import("example.test", "s1", None, &pkcs1, 5).unwrap();
    assert_eq!(key.algorithm, DkimAlgorithm::RsaSha256);
    assert_eq!(key.created_at, 5);
    assert!(
        key.private_key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    check_round_trip(&key);

    // What `openssl genpkey -algorithm ed25519` writes: PKCS#8 v1, the seed only.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(&[7; 32]);
    let pem = rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::CRLF, &der).unwrap();
    let key = import(
        "example.test",
        "ed",
        Some(DkimAlgorithm::Ed25519Sha256),
        &format!("some text before\n{pem}"),
        5,
    )
    .unwrap();
    assert_eq!(key.algorithm, DkimAlgorithm::Ed25519Sha256);
    check_round_trip(&key);
}

#[track_caller]
fn check_import_refused(pem: &str, algorithm: Option<DkimAlgorithm>, reason: &str) {
    match import("example.test", "s1", algorithm, pem, 1) {
        Err(DkimError::InvalidKey(message)) => {
            assert!(message.contains(reason), "{message:?} lacks {reason:?}")
        }
        other => panic!("imported {other:?}"),
    }
}

#[test]
fn dkim_import_refuses_unusable_keys() {
    check_import_refused("not a key", None, "no private key PEM block");
    let small = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let small = small.to_pkcs1_pem(LineEnding::LF).unwrap();
    check_import_refused(&small, None, "RSA key (2048 to 4096 bits)");
    let ed = generate("example.test", "ed", DkimAlgorithm::Ed25519Sha256, 1).unwrap();
    check_import_refused(
        &ed.private_key_pem,
        Some(DkimAlgorithm::RsaSha256),
        "the key is for ed25519-sha256, not rsa-sha256",
    );
    let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n";
    check_import_refused(ec, None, "an EC key");
}

#[test]
fn dkim_signer_domain_is_the_first_from_address_domain() {
    let cases = [
        (
            "From: Ann <Ann@Example.TEST>\r\n\r\nx",
            Some("example.test"),
        ),
        ("From: a@one.test, b@two.test\r\n\r\nx", Some("one.test")),
        ("From: team: a@group.test;\r\n\r\nx", Some("group.test")),
        (
            "From: =?utf-8?q?Ann_=C3=A9?= <a@enc.test>\r\n\r\nx",
            Some("enc.test"),
        ),
        ("To: a@example.test\r\n\r\nx", None),
        ("From: nobody\r\n\r\nx", None),
    ];
    for (message, domain) in cases {
        assert_eq!(
            signer_domain(message.as_bytes()).as_deref(),
            domain,
            "{message:?}"
        );
    }
}

#[test]
fn dkim_selectors_are_dns_labels() {
    for good in ["s1", "mc20251122", "a-b.c"] {
        assert!(check_selector(good).is_ok(), "{good}");
    }
    for bad in ["", "-a", "a-", "a..b", "a b", "a_b", "é", &"x".repeat(64)] {
        assert!(check_selector(bad).is_err(), "{bad}");
    }
    assert_eq!(default_selector(0), "mc19700101");
    assert_eq!(default_selector(1_763_805_600), "mc20251122");
    assert!(matches!(
        generate("example.test", "a b", DkimAlgorithm::Ed25519Sha256, 1),
        Err(DkimError::InvalidSelector(_))
    ));
}
