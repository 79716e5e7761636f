//! Group commit of deliveries: messages accepted concurrently (by SMTP sessions on this node)
//! share one `Deliver` Raft entry, so one round of log fsyncs covers all of them.
//!
//! A batch is sent as soon as the previous one is on its way: under light load every message
//! goes alone (no added latency); under heavy load the batch grows with the queue.

use std::sync::Arc;

use raft_store::{Command, CommandResult, Delivery, DeliveryOutcome, FiledDelivery, Filing};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::{Backend, ClusterError};

/// Deliveries per entry at most.
const MAX_BATCH: usize = 512;
/// Encoded bytes of the deliveries in one entry: a batch closes once it holds this much (one
/// delivery is at most a summary of `MAX_SUMMARY_BYTES` and a little more), so an entry stays
/// far below `raft_store::MAX_ENTRY_BYTES` whatever the messages look like.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Batches in flight at once: enough to keep the log busy while earlier ones commit.
const MAX_IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<DeliveryOutcome, DeliveryError>>;

/// Why a delivery was not committed (the message was not accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("the delivery task stopped")]
    TaskStopped,
    #[error("no leader")]
    NoLeader,
    /// The batch's entry did not commit, or gave an unexpected result; the text says which.
    #[error("{0}")]
    NotCommitted(String),
}

/// A delivery waiting for its batch, with its encoded size.
struct Queued {
    delivery: FiledDelivery,
    bytes: usize,
    reply: Reply,
}

#[derive(Clone)]
pub struct Deliverer {
    queue: mpsc::UnboundedSender<Queued>,
}

impl Deliverer {
    /// Starts the batching task; it ends when every `Deliverer` clone is dropped.
    pub fn start(backend: Arc<dyn Backend>) -> Deliverer {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(backend, receiver));
        Deliverer { queue }
    }

    /// Commits the delivery through Raft, filed where `filing` says, and returns once it is
    /// applied on this node.
    pub async fn deliver(
        &self,
        delivery: Delivery,
        filing: Filing,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        let (reply, outcome) = oneshot::channel();
        let delivery = FiledDelivery { delivery, filing };
        let bytes = raft_store::encoded_len(&delivery);
        self.queue
            .send(Queued {
                delivery,
                bytes,
                reply,
            })
            .map_err(|_| DeliveryError::ShuttingDown)?;
        outcome.await.map_err(|_| DeliveryError::TaskStopped)?
    }
}

async fn run(backend: Arc<dyn Backend>, mut receiver: mpsc::UnboundedReceiver<Queued>) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // A delivery that did not fit the last batch starts the next one.
    let mut next: Option<Queued> = None;
    loop {
        let first = match next.take() {
            Some(item) => item,
            None => match receiver.recv().await {
                Some(item) => item,
                None => break,
            },
        };
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (batch, rest) = take_batch(first, &mut receiver);
        next = rest;
        let backend = backend.clone();
        tokio::spawn(async move {
            let (deliveries, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|q| (q.delivery, q.reply)).unzip();
            let n = deliveries.len();
            let result = backend.write(deliver_command(deliveries)).await;
            drop(permit);
            match result {
                Ok(CommandResult::Delivered(outcomes)) if outcomes.len() == n => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                other => {
                    let error = match other {
                        Err(ClusterError::NoLeader) => DeliveryError::NoLeader,
                        Err(err) => DeliveryError::NotCommitted(err.to_string()),
                        Ok(unexpected) => {
                            DeliveryError::NotCommitted(format!("unexpected result {unexpected:?}"))
                        }
                    };
                    tracing::warn!(messages = n, reason = %error, "delivery batch failed");
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        });
    }
}

/// A batch starting with `first`: everything that queued meanwhile, up to `MAX_BATCH`
/// deliveries and `MAX_BATCH_BYTES` (the first always goes, whatever its size). A delivery that
/// would cross the byte limit comes back to start the next batch.
fn take_batch(
    first: Queued,
    receiver: &mut mpsc::UnboundedReceiver<Queued>,
) -> (Vec<Queued>, Option<Queued>) {
    let mut bytes = first.bytes;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match receiver.try_recv() {
            Ok(item) if bytes + item.bytes > MAX_BATCH_BYTES => return (batch, Some(item)),
            Ok(item) => {
                bytes += item.bytes;
                batch.push(item);
            }
            Err(_) => break,
        }
    }
    (batch, None)
}

/// The entry for a batch: plain `Deliver` when everything goes to INBOX (the encoding every
/// node version reads), `DeliverFiled` when something is filed elsewhere.
fn deliver_command(deliveries: Vec<FiledDelivery>) -> Command {
    if deliveries.iter().all(|d| d.filing == Filing::Inbox) {
        Command::Deliver {
            deliveries: deliveries.into_iter().map(|d| d.delivery).collect(),
        }
    } else {
        Command::DeliverFiled { deliveries }
    }
}

#[cfg(test)]
mod tests;
