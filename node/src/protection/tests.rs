use std::net::IpAddr;
use std::time::{Duration, Instant};

use raft_store::{ConnectionBudgets, LockTarget, ProtectionPolicy};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn policy() -> ProtectionPolicy {
    ProtectionPolicy {
        account_lockout_failures: 3,
        ip_lockout_failures: 5,
        failure_window_secs: 60,
        lockout_secs: 120,
        ..ProtectionPolicy::default()
    }
}

/// Six SMTP connections a minute, a hundred IMAP ones.
fn budgets() -> ConnectionBudgets {
    ConnectionBudgets {
        smtp_connections_per_minute_per_ip: 6,
        imap_connections_per_minute_per_ip: 100,
        ..ConnectionBudgets::default()
    }
}

/// One new SMTP connection from `ip` at `now`.
fn admit(guard: &Guard, policy: &ProtectionPolicy, ip: IpAddr, now: Instant) -> bool {
    guard.admit_connection(policy, &budgets(), Budget::Smtp, ip, now)
}

#[test]
fn the_rate_limit_allows_a_burst_then_refills_per_client() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let client = ip("192.0.2.7");
    for n in 0..6 {
        assert!(admit(&guard, &policy, client, t0), "connection {n}");
    }
    assert!(!admit(&guard, &policy, client, t0));
    // Another client has its own bucket.
    assert!(admit(&guard, &policy, ip("192.0.2.8"), t0));
    // Six per minute: one more every ten seconds.
    assert!(!admit(&guard, &policy, client, t0 + Duration::from_secs(9)));
    assert!(admit(&guard, &policy, client, t0 + Duration::from_secs(11)));
    assert!(!admit(
        &guard,
        &policy,
        client,
        t0 + Duration::from_secs(12)
    ));
    // A quiet minute restores the whole burst, and no more.
    let later = t0 + Duration::from_secs(600);
    for _ in 0..6 {
        assert!(admit(&guard, &policy, client, later));
    }
    assert!(!admit(&guard, &policy, client, later));
}

#[test]
fn a_raised_budget_gives_a_client_at_its_limit_the_difference_at_once() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let client = ip("192.0.2.7");
    while admit(&guard, &policy, client, t0) {}
    let raised = ConnectionBudgets {
        smtp_connections_per_minute_per_ip: 10,
        ..budgets()
    };
    let admit_raised = || guard.admit_connection(&policy, &raised, Budget::Smtp, client, t0);
    for n in 0..4 {
        assert!(admit_raised(), "connection {n} under the raised budget");
    }
    assert!(!admit_raised());
    // Lowered again, the client gets nothing back it had not earned.
    assert!(!admit(&guard, &policy, client, t0 + Duration::from_secs(5)));
}

#[test]
fn exempt_networks_and_a_zero_rate_are_not_limited() {
    let guard = Guard::new();
    let mut policy = policy();
    let t0 = Instant::now();
    for _ in 0..100 {
        assert!(admit(&guard, &policy, ip("127.0.0.5"), t0));
        assert!(admit(&guard, &policy, ip("::1"), t0));
        // An IPv4-mapped loopback address is loopback too.
        assert!(admit(&guard, &policy, ip("::ffff:127.0.0.1"), t0));
    }
    policy.exempt_networks = vec!["198.51.100.0/24".into()];
    assert!(guard.exempt(&policy, ip("198.51.100.200")));
    assert!(!guard.exempt(&policy, ip("127.0.0.1")));
    let off = ConnectionBudgets {
        smtp_connections_per_minute_per_ip: 0,
        ..budgets()
    };
    for _ in 0..100 {
        assert!(guard.admit_connection(&policy, &off, Budget::Smtp, ip("203.0.113.1"), t0));
    }
}

#[test]
fn each_service_has_its_own_budget() {
    let guard = Guard::new();
    let policy = policy();
    let budgets = budgets();
    let t0 = Instant::now();
    let office = ip("198.51.100.7");
    for _ in 0..6 {
        assert!(guard.admit_connection(&policy, &budgets, Budget::Smtp, office, t0));
    }
    assert!(!guard.admit_connection(&policy, &budgets, Budget::Smtp, office, t0));
    // The SMTP budget used up, the same address still opens its IMAP connections.
    for n in 0..100 {
        assert!(
            guard.admit_connection(&policy, &budgets, Budget::Imap, office, t0),
            "imap connection {n}"
        );
    }
    assert!(!guard.admit_connection(&policy, &budgets, Budget::Imap, office, t0));
    assert!(guard.admit_connection(&policy, &budgets, Budget::Pop3, office, t0));
    assert!(guard.admit_connection(&policy, &budgets, Budget::Submission, office, t0));
    assert_eq!(Budget::Imap.key(), "imap-connections-per-minute-per-ip");
    assert_eq!(Budget::Imap.per_minute(&budgets), 100);
}

#[test]
fn the_default_budgets_let_a_natted_office_start_its_day() {
    // 50 people behind one address: Thunderbird opens five IMAP connections per account at
    // once, and each sends a message.
    let guard = Guard::new();
    let policy = ProtectionPolicy::default();
    let budgets = ConnectionBudgets::default();
    let t0 = Instant::now();
    let office = ip("198.51.100.8");
    for n in 0..250 {
        assert!(
            guard.admit_connection(&policy, &budgets, Budget::Imap, office, t0),
            "imap connection {n}"
        );
    }
    for n in 0..50 {
        assert!(
            guard.admit_connection(&policy, &budgets, Budget::Submission, office, t0),
            "submission connection {n}"
        );
    }
}

#[test]
fn failures_lock_the_guessing_address_out_of_the_account_and_then_out_of_all() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let attacker = ip("203.0.113.9");
    assert_eq!(
        guard.login_failed(&policy, "Alice@Example.com", attacker, t0),
        Failure::Counted
    );
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", attacker, t0),
        Failure::Counted
    );
    let alice_from_attacker = LockTarget::AccountFrom {
        account: "alice@example.com".into(),
        ip: attacker,
    };
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", attacker, t0),
        Failure::LockOut(vec![(alice_from_attacker.clone(), 3)])
    );
    assert!(guard.locally_locked(&alice_from_attacker, t0));
    // The owner, from another address, is not stopped by any lockout this node holds.
    let owner = ip("198.51.100.4");
    for target in guard.lock_targets(&policy, "alice@example.com", owner, t0) {
        assert!(!guard.locally_locked(&target, t0), "{target}");
    }
    // Two more guesses at other names reach the address's threshold of five.
    assert_eq!(
        guard.login_failed(&policy, "bob@example.com", attacker, t0),
        Failure::Counted
    );
    let from_ip = LockTarget::Ip(attacker);
    assert_eq!(
        guard.login_failed(&policy, "carol@example.com", attacker, t0),
        Failure::LockOut(vec![(from_ip.clone(), 5)])
    );
    assert!(guard.locally_locked(&from_ip, t0 + Duration::from_secs(119)));
    assert!(!guard.locally_locked(&from_ip, t0 + Duration::from_secs(121)));
    assert!(!guard.locally_locked(&LockTarget::Account("bob@example.com".into()), t0));
}

#[test]
fn many_addresses_lock_the_account_but_not_for_its_known_addresses() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let home = ip("198.51.100.4");
    guard.login_succeeded("alice@example.com", home, t0);
    // Ten times the per-address threshold, from addresses that each stay under it.
    let alice = LockTarget::Account("alice@example.com".into());
    let mut outcomes = Vec::new();
    for n in 0..30u8 {
        let bot = IpAddr::from([203, 0, 113, n]);
        outcomes.push(guard.login_failed(&policy, "alice@example.com", bot, t0));
    }
    assert_eq!(
        outcomes.pop(),
        Some(Failure::LockOut(vec![(alice.clone(), 30)]))
    );
    assert!(outcomes.iter().all(|o| *o == Failure::Counted));
    // A new address meets the account-wide lockout; the owner's known address does not.
    assert!(
        guard
            .lock_targets(&policy, "alice@example.com", ip("192.0.2.50"), t0)
            .contains(&alice)
    );
    assert!(
        !guard
            .lock_targets(&policy, "alice@example.com", home, t0)
            .contains(&alice)
    );
    // Known for thirty days after the last login.
    let later = t0 + Duration::from_secs(31 * 86_400);
    assert!(
        guard
            .lock_targets(&policy, "alice@example.com", home, later)
            .contains(&alice)
    );
}

#[test]
fn ipv6_clients_are_counted_by_their_slash_64() {
    assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    for n in 1..=4u16 {
        let address = IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, n]);
        guard.login_failed(&policy, &format!("u{n}@example.com"), address, t0);
    }
    assert_eq!(
        guard.login_failed(&policy, "u9@example.com", ip("2001:db8:0:7::99"), t0),
        Failure::LockOut(vec![(LockTarget::Ip(ip("2001:db8:0:7::")), 5)])
    );
}

#[test]
fn a_committed_lockout_is_left_to_the_replicated_record() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let client = ip("192.0.2.1");
    for _ in 0..3 {
        guard.login_failed(&policy, "alice@example.com", client, t0);
    }
    let target = LockTarget::AccountFrom {
        account: "alice@example.com".into(),
        ip: client,
    };
    assert!(guard.locally_locked(&target, t0));
    guard.lockout_committed(&target);
    assert!(!guard.locally_locked(&target, t0));
}

#[test]
fn failures_outside_the_window_and_after_a_success_start_over() {
    let guard = Guard::new();
    let policy = policy();
    let t0 = Instant::now();
    let client = ip("192.0.2.1");
    guard.login_failed(&policy, "alice@example.com", client, t0);
    guard.login_failed(&policy, "alice@example.com", client, t0);
    // The window is 60 s: these start a new count.
    let t1 = t0 + Duration::from_secs(61);
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", client, t1),
        Failure::Counted
    );
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", client, t1),
        Failure::Counted
    );
    guard.login_succeeded("alice@example.com", client, t1);
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", client, t1),
        Failure::Counted
    );
    assert_eq!(
        guard.login_failed(&policy, "alice@example.com", client, t1),
        Failure::Counted
    );
}

#[test]
fn an_exempt_client_is_never_locked_out_by_address() {
    let guard = Guard::new();
    let mut policy = policy();
    policy.account_lockout_failures = 0;
    let t0 = Instant::now();
    for n in 0..50 {
        let outcome =
            guard.login_failed(&policy, &format!("u{n}@example.com"), ip("127.0.0.1"), t0);
        assert_eq!(outcome, Failure::Counted);
    }
    assert!(
        !guard
            .lock_targets(&policy, "u1@example.com", ip("127.0.0.1"), t0)
            .contains(&LockTarget::Ip(ip("127.0.0.1")))
    );
}

#[test]
fn a_lockout_records_its_reason_and_end() {
    let lockout = lockout(&policy(), LockTarget::Ip(ip("192.0.2.1")), 5, 1000);
    assert_eq!((lockout.since, lockout.until), (1000, 1120));
    assert_eq!(lockout.reason, "5 failed logins within 60 s");
}

#[test]
fn networks_and_policies_are_checked() {
    assert_eq!(
        parse_net("192.0.2.9/24").unwrap().to_string(),
        "192.0.2.0/24"
    );
    assert_eq!(
        parse_net("2001:db8::1").unwrap().to_string(),
        "2001:db8::1/128"
    );
    assert!(parse_net("192.0.2.0/33").is_err());
    assert!(parse_net("example.com").is_err());
    assert!(check_policy(&ProtectionPolicy::default()).is_ok());
    let bad = ProtectionPolicy {
        exempt_networks: vec!["10.0.0.0/8".into(), "nonsense".into()],
        ..ProtectionPolicy::default()
    };
    assert!(check_policy(&bad).unwrap_err().contains("exempt-networks"));
    let bad = ProtectionPolicy {
        lockout_secs: 0,
        ..ProtectionPolicy::default()
    };
    assert!(check_policy(&bad).is_err());
}

#[test]
fn lock_targets_parse_as_they_print() {
    for text in [
        "ip:192.0.2.1",
        "ip:2001:db8::1",
        "account:alice@example.com",
        "account:alice@example.com,ip:192.0.2.1",
        "account:alice@example.com,ip:2001:db8::",
    ] {
        let target: LockTarget = text.parse().unwrap();
        assert_eq!(target.to_string(), text);
    }
    assert_eq!(
        "account:Alice@Example.com".parse::<LockTarget>().unwrap(),
        LockTarget::Account("alice@example.com".into())
    );
    assert!("ip:nonsense".parse::<LockTarget>().is_err());
    assert!("user:alice".parse::<LockTarget>().is_err());
    assert!("account:".parse::<LockTarget>().is_err());
    assert!("account:a@b.c,ip:nonsense".parse::<LockTarget>().is_err());
    assert!("ip:192.0.2.1,ip:192.0.2.2".parse::<LockTarget>().is_err());
}
