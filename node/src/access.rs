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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use raft_store::{AccessEntry, AccessList, AccessPattern, DomainPattern, StateReader};

use crate::clock::unix_now;

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

/// Both lists at one version of the state, indexed by pattern.
#[derive(Debug, Default)]
pub struct Compiled {
    block: Side,
    allow: Side,
}

/// One list, keyed by pattern: a check looks up the few patterns that could match its subject
/// (each network prefix length in use, the domain and each parent, the address with and without
/// wildcards) instead of trying every entry, so a long list costs no more than a short one.
#[derive(Debug, Default)]
struct Side {
    by_pattern: HashMap<AccessPattern, AccessEntry>,
    /// The prefix lengths of the networks on this list, per family, longest first.
    v4_prefixes: Vec<u8>,
    v6_prefixes: Vec<u8>,
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

impl Side {
    fn new(entries: Vec<AccessEntry>) -> Side {
        let mut side = Side::default();
        for entry in entries {
            if let AccessPattern::Network { addr, prefix } = entry.pattern {
                let prefixes = if addr.is_ipv4() {
                    &mut side.v4_prefixes
                } else {
                    &mut side.v6_prefixes
                };
                if !prefixes.contains(&prefix) {
                    prefixes.push(prefix);
                }
            }
            side.by_pattern.insert(entry.pattern.clone(), entry);
        }
        side.v4_prefixes.sort_unstable_by(|a, b| b.cmp(a));
        side.v6_prefixes.sort_unstable_by(|a, b| b.cmp(a));
        side
    }

    fn active(&self, pattern: &AccessPattern, now: u64) -> Option<&AccessEntry> {
        self.by_pattern
            .get(pattern)
            .filter(|entry| entry.active(now))
    }

    /// The entry for the longest network holding `ip`.
    fn ip(&self, ip: IpAddr, now: u64) -> Option<&AccessEntry> {
        let ip = ip.to_canonical();
        let prefixes = if ip.is_ipv4() {
            &self.v4_prefixes
        } else {
            &self.v6_prefixes
        };
        prefixes
            .iter()
            .find_map(|&prefix| self.active(&AccessPattern::network_containing(ip, prefix), now))
    }

    /// The entry for `domain` itself, else for the nearest parent with a `*.` wildcard.
    fn domain(&self, domain: &str, now: u64) -> Option<&AccessEntry> {
        domain_patterns(&normal_domain(domain))
            .find_map(|pattern| self.active(&AccessPattern::Domain(pattern), now))
    }

    /// The entry for `local@domain`, trying the exact address first and `*@*.parent` last.
    fn address(&self, address: &str, now: u64) -> Option<&AccessEntry> {
        let (local, domain) = address.rsplit_once('@')?;
        let local = local.to_ascii_lowercase();
        domain_patterns(&normal_domain(domain))
            .chain([DomainPattern::Any])
            .find_map(|domain| {
                [Some(local.clone()), None].into_iter().find_map(|local| {
                    self.active(
                        &AccessPattern::Address {
                            local,
                            domain: domain.clone(),
                        },
                        now,
                    )
                })
            })
    }
}

/// A domain as patterns store it: lower case, no trailing dot.
fn normal_domain(domain: &str) -> String {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase()
}

/// The domain patterns that match `domain`: itself, then `*.parent` for each parent.
fn domain_patterns(domain: &str) -> impl Iterator<Item = DomainPattern> + '_ {
    let parents = domain
        .match_indices('.')
        .filter(|&(i, _)| i > 0 && i + 1 < domain.len())
        .map(|(i, _)| DomainPattern::Subdomains(domain[i + 1..].to_owned()));
    std::iter::once(DomainPattern::Exact(domain.to_owned())).chain(parents)
}

impl Compiled {
    pub fn new(entries: Vec<AccessEntry>) -> Compiled {
        let (block, allow): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|entry| entry.list == AccessList::Block);
        Compiled {
            block: Side::new(block),
            allow: Side::new(allow),
        }
    }

    pub fn allowed_client(&self, ip: IpAddr, now: u64) -> bool {
        self.allow.ip(ip, now).is_some()
    }

    pub fn allowed_sender(&self, address: &str, now: u64) -> bool {
        self.allow.address(address, now).is_some()
            || domain_of(address).is_some_and(|d| self.allow.domain(d, now).is_some())
    }

    /// Decides: blocked by the block entry found, unless `allowed` says otherwise (asked only
    /// when something is blocked, which is rare).
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
        self.decide(self.block.ip(ip, now), || self.allowed_client(ip, now))
    }

    pub fn helo(&self, ip: IpAddr, helo: &str, now: u64) -> Decision {
        self.decide(self.block.domain(helo, now), || {
            self.allowed_client(ip, now) || self.allow.domain(helo, now).is_some()
        })
    }

    pub fn sender(&self, ip: IpAddr, address: &str, now: u64) -> Decision {
        let blocked = self
            .block
            .address(address, now)
            .or_else(|| domain_of(address).and_then(|d| self.block.domain(d, now)));
        self.decide(blocked, || {
            self.allowed_client(ip, now) || self.allowed_sender(address, now)
        })
    }

    pub fn recipient(&self, address: &str, now: u64) -> Decision {
        self.decide(self.block.address(address, now), || {
            self.allow.address(address, now).is_some()
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
