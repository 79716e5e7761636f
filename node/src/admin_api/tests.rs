//! Tests of the admin API's pure parts: which tokens open which routes.

use raft_store::ClusterSettings;

use crate::admin_api::{Access, is_sha256_hex, token_accepted, token_digest};

fn settings(admin: &str, join: &str) -> ClusterSettings {
    ClusterSettings {
        cluster_name: "c".into(),
        admin_token_sha256: token_digest(admin),
        join_token_sha256: token_digest(join),
        ca_cert_pem: String::new(),
        ca_key_pem: String::new(),
    }
}

#[track_caller]
fn check_access(settings: &ClusterSettings, presented: Option<&str>, admin: bool, join: bool) {
    assert_eq!(
        token_accepted(settings, presented, Access::Admin),
        admin,
        "{presented:?} on an admin route"
    );
    assert_eq!(
        token_accepted(settings, presented, Access::AdminOrJoin),
        join,
        "{presented:?} on a join route"
    );
}

#[test]
fn the_join_token_opens_only_join_routes_and_a_rotated_token_nothing() {
    let before = settings("admin-1", "join-1");
    check_access(&before, Some("admin-1"), true, true);
    check_access(&before, Some("join-1"), false, true);
    check_access(&before, Some("other"), false, false);
    check_access(&before, None, false, false);
    // What `SetTokenDigest` leaves after `mclusterctl token rotate` and `--admin`.
    let after = settings("admin-2", "join-2");
    check_access(&after, Some("join-1"), false, false);
    check_access(&after, Some("join-2"), false, true);
    check_access(&after, Some("admin-1"), false, false);
    check_access(&after, Some("admin-2"), true, true);
}

#[test]
fn new_token_digests_must_be_sha256_hex() {
    assert!(is_sha256_hex(&token_digest("x")));
    assert!(!is_sha256_hex(&"A".repeat(64)));
    assert!(!is_sha256_hex(&"a".repeat(63)));
    assert!(!is_sha256_hex("x"));
}
