use raft_store::PasswordPolicy;

use crate::admin_api::names::{check_password, domain_name, new_domain_name};

#[track_caller]
fn check_refused(name: &str, fragment: &str) {
    match new_domain_name(name) {
        Ok(name) => panic!("{name:?} was accepted as a new domain"),
        Err(why) => assert!(why.contains(fragment), "{why:?} lacks {fragment:?}"),
    }
}

#[test]
fn new_domains_are_fully_qualified_host_names() {
    assert_eq!(new_domain_name(" Example.COM ").unwrap(), "example.com");
    assert_eq!(
        new_domain_name("mail.example.test").unwrap(),
        "mail.example.test"
    );
    // RFC 1123 2.1: a label may start with a digit.
    assert_eq!(new_domain_name("3com.example").unwrap(), "3com.example");
    let longest_label = format!("{}.example", "a".repeat(63));
    assert!(new_domain_name(&longest_label).is_ok());

    check_refused("localhost", "single-label name");
    check_refused("10.99.0.10", "is an IP address");
    check_refused("[10.99.0.10]", "is an IP address");
    check_refused("[IPv6:2001:db8::1]", "is an IP address");
    check_refused("::1", "is an IP address");
    check_refused("1.2.3", "all digits");
    check_refused("example.123", "all digits");
    check_refused("", "empty");
    check_refused("exa_mple.com", "label \"exa_mple\"");
    check_refused("-bad.example", "label \"-bad\"");
    check_refused("bad-.example", "label \"bad-\"");
    check_refused("a..example", "label \"\"");
    check_refused("example.com.", "label \"\"");
    check_refused(&format!("{}.example", "a".repeat(64)), "must be 1 to 63");
    let long = vec!["abcdefghi"; 26].join(".");
    assert_eq!(long.len(), 259);
    check_refused(&long, "longer than 253");
}

#[test]
fn existing_domains_are_looked_up_by_shape_only() {
    // A domain an older build let in stays reachable, to be shown and deleted.
    assert_eq!(domain_name("LocalHost").unwrap(), "localhost");
    assert_eq!(domain_name("10.99.0.10").unwrap(), "10.99.0.10");
    assert!(domain_name("a b").is_err());
}

#[test]
fn passwords_meet_the_policy_length_in_characters() {
    let policy = PasswordPolicy::default();
    assert_eq!(policy.min_password_length, 10);
    let why = check_password(&policy, "x").unwrap_err();
    assert_eq!(
        why,
        "the password is too short: the cluster's password policy asks for at least 10 \
         characters (min-password-length), this one has 1"
    );
    assert!(check_password(&policy, "123456789").is_err());
    assert!(check_password(&policy, "1234567890").is_ok());
    // Ten characters, twenty bytes.
    assert!(check_password(&policy, "éééééééééé").is_ok());
    assert!(check_password(&policy, &"x".repeat(1025)).is_err());
    let strict = PasswordPolicy {
        min_password_length: 16,
    };
    assert!(check_password(&strict, "1234567890").is_err());
}
