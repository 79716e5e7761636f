use raft_store::{Command, Delivery, FiledDelivery, Filing};

use tokio::sync::{mpsc, oneshot};

use crate::delivery::{MAX_BATCH, MAX_BATCH_BYTES, Queued, deliver_command, take_batch};

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

fn queued(queue_id: &str, bytes: usize) -> Queued {
    Queued {
        delivery: filed(queue_id, Filing::Inbox),
        bytes,
        reply: oneshot::channel().0,
    }
}

/// Takes batches from deliveries of the given sizes as they would queue, and renders each batch
/// as its queue ids.
fn batches(sizes: &[usize]) -> Vec<Vec<String>> {
    let (queue, mut receiver) = mpsc::unbounded_channel();
    for (n, &bytes) in sizes.iter().enumerate() {
        queue.send(queued(&format!("q{n}"), bytes)).unwrap();
    }
    let mut next = None;
    let mut out = Vec::new();
    while let Some(first) = next.take().or_else(|| receiver.try_recv().ok()) {
        let (batch, rest) = take_batch(first, &mut receiver);
        out.push(
            batch
                .into_iter()
                .map(|q| q.delivery.delivery.queue_id)
                .collect(),
        );
        next = rest;
    }
    out
}

#[test]
fn batches_close_at_their_byte_limit_and_keep_the_order() {
    let mib = 1024 * 1024;
    // Large summaries: no entry grows past the limit, and nothing is lost or reordered.
    assert_eq!(
        batches(&[3 * mib, 3 * mib, 3 * mib, 1000, 7 * mib]),
        vec![vec!["q0", "q1"], vec!["q2", "q3"], vec!["q4"]]
    );
    // A delivery larger than the limit goes alone.
    assert_eq!(
        batches(&[1000, MAX_BATCH_BYTES + 1, 1000]),
        vec![vec!["q0"], vec!["q1"], vec!["q2"]]
    );
    // Small ones fill a batch up to the count limit.
    let small = batches(&vec![100; MAX_BATCH + 3]);
    assert_eq!(small.len(), 2);
    assert_eq!(small[0].len(), MAX_BATCH);
    assert_eq!(
        small[1],
        vec![
            format!("q{}", MAX_BATCH),
            format!("q{}", MAX_BATCH + 1),
            format!("q{}", MAX_BATCH + 2)
        ]
    );
}
