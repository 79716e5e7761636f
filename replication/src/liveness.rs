//! How long a peer has left this node's requests unanswered: the failure detector the leader
//! uses to stop waiting for a dead mirror partner, to refuse it as a failover target and to
//! report it unreachable.
//!
//! It counts from the first request sent after the peer's last answer, not from the last
//! answer. The difference shows on a node starved of CPU: one that sends nothing while the
//! scheduler holds it back has nothing left unanswered, so it does not take its own pause for
//! the peer's silence (openraft's heartbeat acknowledgements did, and a leader at 5 % of a CPU
//! accepted healthy mail with one copy, its partner "not answering"). A dead peer's silence
//! grows from the first request it missed, however the requests end (timeout, error, or
//! dropped by the caller).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_store::NodeId;

#[derive(Default)]
struct Peer {
    /// Requests in flight: sequence number to when each was sent.
    pending: BTreeMap<u64, Instant>,
    /// When the latest answered request was sent.
    answered: Option<Instant>,
    /// When the earliest request that ended without an answer, sent after `answered`, was
    /// sent.
    missed_since: Option<Instant>,
}

impl Peer {
    fn silence(&self, now: Instant) -> Duration {
        let after_answer = |sent: &&Instant| self.answered.is_none_or(|a| **sent > a);
        let oldest_pending = self.pending.values().filter(after_answer).min();
        match (self.missed_since, oldest_pending) {
            (Some(missed), Some(pending)) => now.saturating_duration_since(missed.min(*pending)),
            (Some(since), None) | (None, Some(&since)) => now.saturating_duration_since(since),
            (None, None) => Duration::ZERO,
        }
    }
}

#[derive(Clone, Default)]
pub(crate) struct Liveness {
    inner: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    next: u64,
    peers: HashMap<NodeId, Peer>,
}

impl Liveness {
    /// Notes a request to `peer` sent now; the returned guard reports how it ended.
    pub(crate) fn sent(&self, peer: NodeId) -> Request {
        self.sent_at(peer, Instant::now())
    }

    fn sent_at(&self, peer: NodeId, at: Instant) -> Request {
        let mut table = self.inner.lock().expect("liveness lock");
        let seq = table.next;
        table.next += 1;
        table.peers.entry(peer).or_default().pending.insert(seq, at);
        Request {
            liveness: self.clone(),
            peer,
            seq,
            answered: false,
        }
    }

    /// How long `peer` has left this node's requests unanswered (zero when it answers them).
    pub(crate) fn silence(&self, peer: NodeId) -> Duration {
        self.silence_at(peer, Instant::now())
    }

    fn silence_at(&self, peer: NodeId, now: Instant) -> Duration {
        let table = self.inner.lock().expect("liveness lock");
        table
            .peers
            .get(&peer)
            .map_or(Duration::ZERO, |p| p.silence(now))
    }

    fn ended(&self, peer: NodeId, seq: u64, answered: bool) {
        let mut table = self.inner.lock().expect("liveness lock");
        let Some(state) = table.peers.get_mut(&peer) else {
            return;
        };
        let Some(sent) = state.pending.remove(&seq) else {
            return;
        };
        if answered {
            if state.answered.is_none_or(|a| sent > a) {
                state.answered = Some(sent);
            }
            // The answer shows the peer alive after every miss sent before this request.
            if state.missed_since.is_some_and(|missed| missed <= sent) {
                state.missed_since = None;
            }
        } else if state.answered.is_none_or(|a| sent > a) {
            state.missed_since = Some(state.missed_since.map_or(sent, |m| m.min(sent)));
        }
    }
}

/// One request in flight; dropped without [`Request::answered`], it counts as missed.
pub(crate) struct Request {
    liveness: Liveness,
    peer: NodeId,
    seq: u64,
    answered: bool,
}

impl Request {
    pub(crate) fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.liveness.ended(self.peer, self.seq, self.answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_peer_that_answers_is_never_silent_however_late_its_answers_are_read() {
        let live = Liveness::default();
        let t0 = Instant::now();
        // Requests go out every 50 ms; each answer is read 95 ms later (a starved sender).
        for i in 0..10u32 {
            let sent = t0 + MS * 50 * i;
            let request = live.sent_at(2, sent);
            assert!(live.silence_at(2, sent + MS * 94) < MS * 100);
            request.answered();
        }
        assert_eq!(live.silence_at(2, t0 + MS * 10_000), Duration::ZERO);
        // Nothing sent for a long while (the sender was paused): not the peer's silence.
        assert_eq!(live.silence(2), Duration::ZERO);
        assert_eq!(live.silence(7), Duration::ZERO);
    }

    #[test]
    fn a_dead_peers_silence_grows_from_the_first_request_it_missed() {
        let live = Liveness::default();
        let t0 = Instant::now();
        live.sent_at(2, t0).answered();
        // Each later request times out (dropped unanswered); the silence keeps counting from
        // the first of them, not from the latest.
        let first_missed = t0 + MS * 50;
        for i in 1..=8u32 {
            drop(live.sent_at(2, t0 + MS * 50 * i));
        }
        let now = t0 + MS * 1000;
        assert_eq!(live.silence_at(2, now), now - first_missed);
        // One in flight now does not hide the earlier misses.
        let pending = live.sent_at(2, t0 + MS * 1000);
        assert_eq!(live.silence_at(2, t0 + MS * 1100), MS * 1050);
        // An answer to a request sent after the misses: alive again.
        pending.answered();
        assert_eq!(live.silence_at(2, t0 + MS * 1200), Duration::ZERO);
    }

    #[test]
    fn a_slow_request_in_flight_does_not_count_while_later_ones_are_answered() {
        let live = Liveness::default();
        let t0 = Instant::now();
        // A large transfer sent at t0 is still going when a heartbeat sent later is answered.
        let transfer = live.sent_at(2, t0);
        live.sent_at(2, t0 + MS * 10).answered();
        assert_eq!(live.silence_at(2, t0 + MS * 5000), Duration::ZERO);
        transfer.answered();
        // A request in flight with no answer since it was sent is silence from its start.
        let _waiting = live.sent_at(2, t0 + MS * 6000);
        assert_eq!(live.silence_at(2, t0 + MS * 6400), MS * 400);
    }
}
