use raft_store::{Command, Delivery, FiledDelivery, Filing};

use crate::delivery::deliver_command;

fn filed(queue_id: &str, filing: Filing) -> FiledDelivery {
    FiledDelivery {
        delivery: Delivery {
            queue_id: queue_id.into(),
            blob: [1; 32],
            size: 10,
            replicas: vec![1, 2],
            missing: Vec::new(),
            recipients: vec!["a@example.test".into()],
            internal_date: 0,
            summary: raft_store::summary::summarize(b"Subject: x\r\n\r\nbody\r\n"),
            outbound: None,
        },
        filing,
    }
}

#[test]
fn inbox_only_batches_keep_the_old_entry() {
    let batch = vec![filed("q1", Filing::Inbox), filed("q2", Filing::Inbox)];
    match deliver_command(batch.clone()) {
        Command::Deliver { deliveries } => {
            let expected: Vec<Delivery> = batch.into_iter().map(|d| d.delivery).collect();
            assert_eq!(deliveries, expected);
        }
        other => panic!("expected Deliver, got {other}"),
    }
    let mixed = vec![filed("q1", Filing::Inbox), filed("q2", Filing::Junk)];
    assert_eq!(
        deliver_command(mixed.clone()),
        Command::DeliverFiled { deliveries: mixed }
    );
}
