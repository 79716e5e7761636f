use crate::version::{Feature, gate};
use crate::{ClusterVersion, Command, LockTarget, Lockout};

#[test]
fn every_command_of_a_newer_version_is_gated_until_it_is_active() {
    let lockout = |target| {
        Command::Lock(Lockout {
            target,
            since: 0,
            until: 1,
            reason: String::new(),
        })
    };
    let from_one_address = LockTarget::AccountFrom {
        account: "a".into(),
        ip: "192.0.2.1".parse().unwrap(),
    };
    let cases = [
        (
            Command::SetTokenDigest {
                token: crate::TokenKind::Join,
                sha256: String::new(),
            },
            Some(Feature::TokenRotation),
        ),
        (
            lockout(from_one_address.clone()),
            Some(Feature::AddressLockouts),
        ),
        (
            Command::Unlock {
                target: from_one_address,
            },
            Some(Feature::AddressLockouts),
        ),
        // Version 1's own lockouts stay ungated.
        (lockout(LockTarget::Account("a".into())), None),
        (
            Command::SetClusterVersion {
                version: ClusterVersion::V2,
            },
            None,
        ),
    ];
    for (command, feature) in cases {
        assert_eq!(command.feature(), feature, "{command}");
        let at_v1 = gate(&command, ClusterVersion::V1);
        assert_eq!(at_v1.is_err(), feature.is_some(), "{command}");
        assert_eq!(gate(&command, ClusterVersion::V2), Ok(()), "{command}");
    }
}

#[test]
fn a_read_only_token_waits_for_version_3_and_says_so() {
    let command = Command::SetTokenDigest {
        token: crate::TokenKind::ReadOnly,
        sha256: String::new(),
    };
    assert_eq!(command.feature(), Some(Feature::ReadOnlyToken));
    let refused = gate(&command, ClusterVersion::V2).unwrap_err().to_string();
    assert_eq!(
        refused,
        "setting a read-only token (feature read-only-token) needs cluster version 3, and the \
         cluster runs version 2: finish the upgrade first (mclusterctl upgrade status)"
    );
    assert_eq!(gate(&command, ClusterVersion::V3), Ok(()));
    assert_eq!(ClusterVersion::NEWEST, ClusterVersion::V3);
}

#[test]
fn a_move_within_one_mailbox_waits_for_version_3() {
    let copy = |from: &str, to: &str, remove_source| Command::CopyMessages {
        account: "a".into(),
        from: from.into(),
        to: to.into(),
        uids: vec![1],
        remove_source,
    };
    let within = copy("INBOX", "INBOX", true);
    assert_eq!(within.feature(), Some(Feature::MoveWithinMailbox));
    assert!(gate(&within, ClusterVersion::V2).is_err());
    assert_eq!(gate(&within, ClusterVersion::V3), Ok(()));
    assert_eq!(Feature::MoveWithinMailbox.name(), "move-within-mailbox");
    assert!(Feature::ALL.contains(&Feature::MoveWithinMailbox));
    // Copies, and moves to another mailbox, did not change: version 1 runs them.
    for ungated in [
        copy("INBOX", "INBOX", false),
        copy("INBOX", "Archive", true),
        copy("INBOX", "Archive", false),
    ] {
        assert_eq!(ungated.feature(), None, "{ungated}");
        assert_eq!(gate(&ungated, ClusterVersion::V1), Ok(()), "{ungated}");
    }
}
