//! The bookkeeping of the outbound connection cache, without I/O: which destination a session
//! belongs to, which idle session an attempt may take, which have expired, and whether a used one
//! may be parked again. `ConnectionPool` in `client.rs` wraps it with the sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::outbound::client::{Attempt, Credentials, TlsPolicy};

/// What a session is bound to once it is past the connection stage: a session is handed only to
/// an attempt whose destination is equal. Everything the greeting, EHLO, STARTTLS and AUTH
/// depended on is here, so a reused session is one this attempt could have opened itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The MX host's name, lower-cased and without a trailing dot (DNS names ignore both).
    host: String,
    peer: SocketAddr,
    tls: TlsPolicy,
    helo: String,
    /// The whole credentials, not only the user: a session logged in with one password (or
    /// over plain text) is not handed to an attempt configured with another.
    credentials: Option<Credentials>,
}

impl Destination {
    /// The destination of `attempt` at `peer`, one of its addresses.
    pub fn new(attempt: &Attempt<'_>, peer: SocketAddr) -> Destination {
        Destination {
            host: attempt.host.trim_end_matches('.').to_ascii_lowercase(),
            peer,
            tls: attempt.tls,
            helo: attempt.helo.to_owned(),
            credentials: attempt.credentials.cloned(),
        }
    }
}

/// The limits of a pool (see `ConnectionPool::new`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub max_idle_per_destination: usize,
    pub max_messages_per_connection: u32,
}

struct Idle<C> {
    since: Instant,
    connection: C,
}

/// Idle connections by destination, most recently parked last.
pub struct IdleSet<C> {
    limits: Limits,
    idle: HashMap<Destination, Vec<Idle<C>>>,
}

impl<C> IdleSet<C> {
    pub fn new(limits: Limits) -> IdleSet<C> {
        IdleSet {
            limits,
            idle: HashMap::new(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn len(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Whether a connection that has carried `n_messages` may carry another, as far as the
    /// limits go (the destination may still be full).
    pub fn keeps(&self, n_messages: u32) -> bool {
        n_messages < self.limits.max_messages_per_connection
            && self.limits.max_idle_per_destination > 0
            && !self.limits.idle_timeout.is_zero()
    }

    /// Takes the most recently parked connection for `destination` that has not expired (the
    /// one most likely to still be open; older ones are left to expire when traffic drops).
    pub fn take(&mut self, destination: &Destination, now: Instant) -> Option<C> {
        let timeout = self.limits.idle_timeout;
        let list = self.idle.get_mut(destination)?;
        let since = list.last()?.since;
        // An expired one is left for take_expired, which closes it politely.
        let taken = if has_expired(timeout, since, now) {
            None
        } else {
            list.pop().map(|idle| idle.connection)
        };
        if list.is_empty() {
            self.idle.remove(destination);
        }
        taken
    }

    /// Parks `connection`, which has carried `n_messages`, or gives it back when the limits
    /// say it must close: its message limit is reached or `destination` already has its share.
    pub fn put(
        &mut self,
        destination: Destination,
        connection: C,
        n_messages: u32,
        now: Instant,
    ) -> Result<(), C> {
        if !self.keeps(n_messages) {
            return Err(connection);
        }
        let max = self.limits.max_idle_per_destination;
        let list = self.idle.entry(destination).or_default();
        if list.len() >= max {
            return Err(connection);
        }
        list.push(Idle {
            since: now,
            connection,
        });
        Ok(())
    }

    /// Removes and returns every connection that has expired at `now`, for closing.
    pub fn take_expired(&mut self, now: Instant) -> Vec<C> {
        let timeout = self.limits.idle_timeout;
        let mut expired = Vec::new();
        self.idle.retain(|_, list| {
            let (old, live): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|idle| has_expired(timeout, idle.since, now));
            expired.extend(old.into_iter().map(|idle| idle.connection));
            *list = live;
            !list.is_empty()
        });
        expired
    }

    /// Removes and returns every idle connection.
    pub fn take_all(&mut self) -> Vec<C> {
        self.idle
            .drain()
            .flat_map(|(_, list)| list.into_iter().map(|idle| idle.connection))
            .collect()
    }
}

/// Whether a connection parked at `since` has been idle too long at `now`. A zero timeout
/// expires everything at once, which turns the pool off.
fn has_expired(idle_timeout: Duration, since: Instant, now: Instant) -> bool {
    now.saturating_duration_since(since) >= idle_timeout
}
