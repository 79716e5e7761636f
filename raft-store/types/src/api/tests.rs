use super::*;

#[test]
fn a_policy_view_round_trips_and_keeps_the_retired_keys_stored_value() {
    let stored = ProtectionPolicy {
        connections_per_minute_per_ip: 77,
        ..ProtectionPolicy::default()
    };
    let budgets = ConnectionBudgets {
        imap_connections_per_minute_per_ip: 999,
        ..ConnectionBudgets::default()
    };
    let view = ProtectionView::from_parts(stored.clone(), budgets, PasswordPolicy::default());
    let json = serde_json::to_value(&view).unwrap();
    // One flat object, without the retired rate.
    assert_eq!(json["imap-connections-per-minute-per-ip"], 999);
    assert!(json.get("connections-per-minute-per-ip").is_none());
    assert!(json.get("min-password-length").is_some());
    let (policy, back, _) = view.into_parts(&stored);
    assert_eq!((policy, back), (stored, budgets));

    let stored = MailPolicy {
        max_connections_per_ip: 55,
        ..MailPolicy::default()
    };
    let view = MailPolicyView::from_parts(
        stored.clone(),
        ConnectionsPerIp::default(),
        MessageLimits::default(),
    );
    let json = serde_json::to_value(&view).unwrap();
    assert!(json.get("max-connections-per-ip").is_none());
    assert!(json.get("smtp-connections-per-ip").is_some());
    let (policy, _, _) = view.into_parts(&stored);
    assert_eq!(policy, stored);
}
