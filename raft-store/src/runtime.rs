//! The async runtime openraft runs on: its tokio runtime with one change, a floor under the
//! time limits openraft puts on requests to peers ([`set_timeout_floor`]).
//!
//! openraft gives each heartbeat as long as the heartbeat interval (50 ms) to be answered, and
//! no setting changes that. On a host that gives the node little CPU, the process is stopped
//! for most of each scheduler period (up to 95 ms of 100 at 5 %): an answer that came back in
//! a millisecond is read only after the pause, when the 50 ms are over, and openraft drops it.
//! With every heartbeat answer dropped, no quorum acknowledges the leader, its lease lapses and
//! it lets the virtual IP go, with both nodes up. An answer read late is still good: the lease
//! counts from when the heartbeat was sent, not from when its answer is read. So the node sets
//! the floor to the election timeout, as it does for AppendEntries
//! (`replication::NetworkFactory::with_append_floor`).
//!
//! openraft's other uses of `timeout` are its vote and leadership-transfer requests (limited to
//! the election timeout already), waiting for its core to stop at shutdown, and a one-second
//! wait of its own; none is shortened. Deadlines (`timeout_at`) are left alone.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::TokioRuntime;

static TIMEOUT_FLOOR_MS: AtomicU64 = AtomicU64::new(0);

/// No time limit openraft sets on a request is shorter than `floor` from now on, in this
/// process (all of its nodes share it: tests run several).
pub fn set_timeout_floor(floor: Duration) {
    let ms = u64::try_from(floor.as_millis()).unwrap_or(u64::MAX);
    TIMEOUT_FLOOR_MS.store(ms, Ordering::Relaxed);
}

/// `limit`, or the floor if that is longer.
pub fn floored(limit: Duration) -> Duration {
    limit.max(Duration::from_millis(
        TIMEOUT_FLOOR_MS.load(Ordering::Relaxed),
    ))
}

/// openraft's [`TokioRuntime`] with [`floored`] time limits.
#[derive(Debug)]
pub struct TokioWithTimeoutFloor(TokioRuntime);

type Tokio = TokioRuntime;

impl AsyncRuntime for TokioWithTimeoutFloor {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <Tokio as AsyncRuntime>::ThreadLocalRng;
    type Mpsc = <Tokio as AsyncRuntime>::Mpsc;
    type Watch = <Tokio as AsyncRuntime>::Watch;
    type Oneshot = <Tokio as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(floored(duration), future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        Tokio::thread_rng()
    }

    fn new(threads: usize) -> Self {
        TokioWithTimeoutFloor(Tokio::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }
}
