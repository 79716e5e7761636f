//! Tests of the admin API's pure parts: which tokens open which routes.

use raft_store::ClusterSettings;

use crate::admin_api::{Access, Verdict, is_sha256_hex, token_accepted, token_digest};

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
    let accepted = |access| token_accepted(settings, None, presented, access) == Verdict::Accepted;
    assert_eq!(
        accepted(Access::Admin),
        admin,
        "{presented:?} on an admin route"
    );
    assert_eq!(
        accepted(Access::AdminOrJoin),
        join,
        "{presented:?} on a join route"
    );
    assert_eq!(accepted(Access::Read), admin, "{presented:?} on a GET");
}

/// The read-only token opens every GET and nothing else, and says why on a change.
#[test]
fn the_read_only_token_reads_and_changes_nothing() {
    let settings = settings("admin-1", "join-1");
    let read_only = token_digest("reader-1");
    let verdict =
        |presented, access| token_accepted(&settings, Some(&read_only), Some(presented), access);
    assert_eq!(verdict("reader-1", Access::Read), Verdict::Accepted);
    assert_eq!(verdict("reader-1", Access::Admin), Verdict::ReadOnly);
    assert_eq!(verdict("reader-1", Access::AdminOrJoin), Verdict::ReadOnly);
    assert_eq!(verdict("admin-1", Access::Read), Verdict::Accepted);
    assert_eq!(verdict("join-1", Access::Read), Verdict::Refused);
    assert_eq!(verdict("reader-2", Access::Read), Verdict::Refused);
    // Before one is set, nothing but the admin token reads.
    assert_eq!(
        token_accepted(&settings, None, Some("reader-1"), Access::Read),
        Verdict::Refused
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
