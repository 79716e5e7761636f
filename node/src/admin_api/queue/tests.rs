use raft_store::{AttemptError, QueuedRecipient};

use super::*;

#[test]
fn queue_entries_show_recipient_states_and_the_last_error() {
    let recipient = |address: &str, state, error: Option<AttemptError>| QueuedRecipient {
        address: address.into(),
        state,
        attempts: u32::from(error.is_some()),
        last_error: error,
    };
    let error = AttemptError {
        status: "4.4.1".into(),
        diagnostic: "connection refused".into(),
        remote: Some("mx1.remote.test".into()),
        at: 1_700_000_100,
    };
    let entry = QueuedMessage {
        id: "Q1".into(),
        blob: [0xab; 32],
        size: 1234,
        sender: String::new(),
        recipients: vec![
            recipient("a@remote.test", RecipientState::Pending, Some(error)),
            recipient("b@remote.test", RecipientState::Delivered, None),
            recipient(
                "c@remote.test",
                RecipientState::Failed { bounced: false },
                None,
            ),
            recipient(
                "d@remote.test",
                RecipientState::Failed { bounced: true },
                None,
            ),
        ],
        envid: None,
        ret_full: false,
        arrived_at: 1_700_000_000,
        attempts: 1,
        next_attempt_at: 1_700_000_480,
        held: true,
        delay_notified: false,
    };
    let shown = super::entry_view(entry);
    assert_eq!(shown.blob, "ab".repeat(32));
    assert!(shown.held);
    let states: Vec<&str> = shown.recipients.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["pending", "delivered", "failed", "bounced"]);
    let first = &shown.recipients[0];
    assert_eq!(first.last_status.as_deref(), Some("4.4.1"));
    assert_eq!(first.last_error.as_deref(), Some("connection refused"));
    assert_eq!(first.last_remote.as_deref(), Some("mx1.remote.test"));
    assert_eq!(first.last_attempt_at, Some(1_700_000_100));
    assert_eq!(shown.recipients[1].last_status, None);
}
