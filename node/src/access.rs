//! Block and allow lists as the mail services apply them. The entries are replicated state
//! (`raft_store::AccessEntry`); this module keeps them in memory, re-read only when the state
//! machine says they may have changed (`StateReader::access_version`), so a check costs no
//! disk read. Expiry is decided at each check, against the clock.
//!
//! Precedence: an allow entry wins over a block entry. A client IP on the allow list is exempt
//! from the HELO and sender blocks too; a sender (address or domain) on the allow list is
//! exempt from the sender blocks; a recipient address on the allow list is exempt from the
//! recipient blocks. Only a block on the recipient ignores an allowed client: it is how an
//! operator stops mail to an address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use raft_store::{AccessEntry, AccessList, AccessPattern, StateReader};

use crate::cluster::unix_now;

#[cfg(test)]
mod tests;

/// Longest comment an entry may carry: it is shown to refused clients in one reply line.
pub const MAX_COMMENT_CHARS: usize = 200;

/// The lists of one node, compiled from the replicated state.
pub struct AccessLists {
    reader: StateReader,
    cache: Mutex<Option<(u64, Arc<Compiled>)>>,
    pub counters: AccessCounters,
}

/// What the lists refused, for `/metrics`.
#[derive(Default)]
pub struct AccessCounters {
    pub connections: AtomicU64,
    pub helo: AtomicU64,
    pub senders: AtomicU64,
    pub recipients: AtomicU64,
    /// Checks where a block entry matched but an allow entry won.
    pub allowed_over_block: AtomicU64,
}

/// Both lists at one version of the state.
#[derive(Debug, Default)]
pub struct Compiled {
    block: Vec<AccessEntry>,
    allow: Vec<AccessEntry>,
}

/// What a matching block entry says: the reason a refused client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub reason: String,
}

impl AccessLists {
    pub fn new(reader: StateReader) -> AccessLists {
        AccessLists {
            reader,
            cache: Mutex::new(None),
            counters: AccessCounters::default(),
        }
    }

    /// The lists as applied now: the cached copy, unless the state changed since it was made.
    fn current(&self) -> Arc<Compiled> {
        let version = self.reader.access_version();
        let mut cache = self.cache.lock().expect("access list cache lock");
        if let Some((cached, compiled)) = &*cache
            && *cached == version
        {
            return compiled.clone();
        }
        match self.reader.access_entries() {
            Ok(entries) => {
                let compiled = Arc::new(Compiled::new(entries));
                *cache = Some((version, compiled.clone()));
                compiled
            }
            Err(err) => {
                // Keep the last good lists (or none) and try again at the next check.
                tracing::warn!(error = %err, "cannot read the access lists");
                cache
                    .as_ref()
                    .map(|(_, compiled)| compiled.clone())
                    .unwrap_or_default()
            }
        }
    }

    /// Whether the allow list names this client IP: the anti-spam checks (DNSBL, SPF,
    /// content filters) must pass such a client without looking.
    pub fn allowed_client(&self, ip: IpAddr) -> bool {
        self.current().allowed_client(ip, unix_now())
    }

    /// Whether the allow list names this sender (`local@domain`) or its domain: the anti-spam
    /// checks must pass its mail without looking.
    pub fn allowed_sender(&self, address: &str) -> bool {
        self.current().allowed_sender(address, unix_now())
    }

    /// The block entry that refuses a client at connect, counted, unless the client is allowed.
    pub fn refuse_client(&self, ip: IpAddr) -> Option<Blocked> {
        let decision = self.current().client(ip, unix_now());
        self.count(decision, &self.counters.connections)
    }

    /// The block entry that refuses a HELO/EHLO name from this client.
    pub fn refuse_helo(&self, ip: IpAddr, helo: &str) -> Option<Blocked> {
        let decision = self.current().helo(ip, helo, unix_now());
        self.count(decision, &self.counters.helo)
    }

    /// The block entry that refuses a sender (`local@domain`) from this client.
    pub fn refuse_sender(&self, ip: IpAddr, address: &str) -> Option<Blocked> {
        let decision = self.current().sender(ip, address, unix_now());
        self.count(decision, &self.counters.senders)
    }

    /// The block entry that refuses a recipient (`local@domain`).
    pub fn refuse_recipient(&self, address: &str) -> Option<Blocked> {
        let decision = self.current().recipient(address, unix_now());
        self.count(decision, &self.counters.recipients)
    }

    fn count(&self, decision: Decision, refused: &AtomicU64) -> Option<Blocked> {
        match decision {
            Decision::Pass => None,
            Decision::Allowed => {
                self.counters
                    .allowed_over_block
                    .fetch_add(1, Ordering::Relaxed);
                None
            }
            Decision::Blocked(blocked) => {
                refused.fetch_add(1, Ordering::Relaxed);
                Some(blocked)
            }
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No block entry matched.
    Pass,
    /// A block entry matched, and an allow entry overrode it.
    Allowed,
    Blocked(Blocked),
}

impl Compiled {
    pub fn new(entries: Vec<AccessEntry>) -> Compiled {
        let (block, allow) = entries
            .into_iter()
            .partition(|entry| entry.list == AccessList::Block);
        Compiled { block, allow }
    }

    fn first_block(
        &self,
        now: u64,
        matches: impl Fn(&AccessPattern) -> bool,
    ) -> Option<&AccessEntry> {
        self.block
            .iter()
            .find(|entry| entry.active(now) && matches(&entry.pattern))
    }

    fn any_allow(&self, now: u64, matches: impl Fn(&AccessPattern) -> bool) -> bool {
        self.allow
            .iter()
            .any(|entry| entry.active(now) && matches(&entry.pattern))
    }

    pub fn allowed_client(&self, ip: IpAddr, now: u64) -> bool {
        self.any_allow(now, |p| p.matches_ip(ip))
    }

    pub fn allowed_sender(&self, address: &str, now: u64) -> bool {
        let domain = domain_of(address);
        self.any_allow(now, |p| {
            p.matches_address(address) || domain.is_some_and(|d| p.matches_domain(d))
        })
    }

    /// Decides: blocked by the first matching block entry, unless `allowed` says otherwise
    /// (asked only when something is blocked, which is rare).
    fn decide(&self, blocked: Option<&AccessEntry>, allowed: impl FnOnce() -> bool) -> Decision {
        match blocked {
            None => Decision::Pass,
            Some(_) if allowed() => Decision::Allowed,
            Some(entry) => Decision::Blocked(Blocked {
                reason: entry
                    .comment
                    .clone()
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "Access denied".into()),
            }),
        }
    }

    pub fn client(&self, ip: IpAddr, now: u64) -> Decision {
        let blocked = self.first_block(now, |p| p.matches_ip(ip));
        self.decide(blocked, || self.allowed_client(ip, now))
    }

    pub fn helo(&self, ip: IpAddr, helo: &str, now: u64) -> Decision {
        let blocked = self.first_block(now, |p| p.matches_domain(helo));
        self.decide(blocked, || {
            self.allowed_client(ip, now) || self.any_allow(now, |p| p.matches_domain(helo))
        })
    }

    pub fn sender(&self, ip: IpAddr, address: &str, now: u64) -> Decision {
        let domain = domain_of(address);
        let blocked = self.first_block(now, |p| {
            p.matches_address(address) || domain.is_some_and(|d| p.matches_domain(d))
        });
        self.decide(blocked, || {
            self.allowed_client(ip, now) || self.allowed_sender(address, now)
        })
    }

    pub fn recipient(&self, address: &str, now: u64) -> Decision {
        let blocked = self.first_block(now, |p| p.matches_address(address));
        self.decide(blocked, || {
            self.any_allow(now, |p| p.matches_address(address))
        })
    }
}

fn domain_of(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(_, domain)| domain)
}

/// Whether `comment` can go into a reply line; else why not.
pub fn check_comment(comment: &str) -> Result<(), String> {
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(format!(
            "a comment is at most {MAX_COMMENT_CHARS} characters (it is shown to refused clients)"
        ));
    }
    if comment.chars().any(char::is_control) {
        return Err("a comment is one line without control characters".into());
    }
    if !comment.is_ascii() {
        return Err("a comment is ASCII (it is shown in SMTP, POP3 and IMAP replies)".into());
    }
    Ok(())
}
