use super::*;

fn account(hash: &str) -> Account {
    Account {
        address: "alice@example.test".into(),
        domain: "example.test".into(),
        password_hash: hash.into(),
        quota_mb: 0,
        enabled: true,
        created_at: 0,
    }
}

#[test]
fn a_remembered_login_needs_the_same_password_and_the_same_stored_hash() {
    let cache = LoginCache::new();
    let alice = account("$argon2id$one");
    assert!(!cache.verified(&alice, "secret"));
    cache.remember(&alice, "secret");
    assert!(cache.verified(&alice, "secret"));
    assert!(!cache.verified(&alice, "Secret"));
    assert!(!cache.verified(&alice, ""));
    // A password change (a new stored hash) ends the entry.
    assert!(!cache.verified(&account("$argon2id$two"), "secret"));
    // Another process's cache (another key) knows nothing.
    assert!(!LoginCache::new().verified(&alice, "secret"));
}

#[test]
fn a_full_cache_makes_room() {
    let cache = LoginCache::new();
    for i in 0..LOGIN_CACHE_ENTRIES + 5 {
        let mut a = account("h");
        a.address = format!("u{i}@example.test");
        cache.remember(&a, "pw");
    }
    assert!(cache.entries.lock().unwrap().len() <= LOGIN_CACHE_ENTRIES);
}

#[test]
fn a_refused_connection_names_the_budget_it_used_up() {
    let fast = |budget, per_minute| Refusal::RatePerIp { budget, per_minute };
    assert_eq!(
        fast(Budget::Smtp, 60).line(Service::Smtp),
        "421 4.7.0 Too many connections per minute from your address \
         (smtp-connections-per-minute-per-ip is 60), try later"
    );
    assert_eq!(
        fast(Budget::Submission, 120).line(Service::Submission),
        "421 4.7.0 Too many connections per minute from your address \
         (submission-connections-per-minute-per-ip is 120), try later"
    );
    assert_eq!(
        fast(Budget::Imap, 300).line(Service::Imap),
        "* BYE [UNAVAILABLE] Too many connections per minute from your address \
         (imap-connections-per-minute-per-ip is 300), try later"
    );
    assert_eq!(
        fast(Budget::Pop3, 120).line(Service::Pop3),
        "-ERR [SYS/TEMP] Too many connections per minute from your address \
         (pop3-connections-per-minute-per-ip is 120), try later"
    );
    assert_eq!(
        Refusal::OpenPerIp {
            budget: Budget::Imap,
            limit: 500
        }
        .line(Service::Imaps),
        "* BYE [UNAVAILABLE] Too many open connections from your address \
         (imap-connections-per-ip is 500), try later"
    );
    assert_eq!(
        Refusal::OpenPerIp {
            budget: Budget::Submission,
            limit: 50
        }
        .line(Service::Smtps),
        "421 4.7.0 Too many open connections from your address \
         (submission-connections-per-ip is 50), try later"
    );
    assert_eq!(
        Refusal::NodeFull { limit: 1000 }.line(Service::Pop3),
        "-ERR [SYS/TEMP] Too many connections to this server (max-connections is 1000), \
         try later"
    );
    assert_eq!(Service::Smtps.budget(), Budget::Submission);
    assert_eq!(Service::Imaps.budget(), Budget::Imap);
    assert_eq!(Service::Pop3s.budget(), Budget::Pop3);
}
