//! Abuse protection in a node's memory: the per-IP connection budgets (one per mail service),
//! and the counting of
//! failed logins that turns into lockouts. The policy and the lockouts themselves are
//! replicated (`raft_store::ProtectionPolicy`, `Command::Lock`), so a failover keeps them; the
//! counters are per node, like Postfix's anvil: whoever holds the VIP sees the traffic.
//!
//! A lockout never shuts an account's owner out because a stranger guessed: failures lock the
//! guessing address first, out of that account (`LockTarget::AccountFrom`) and then out of
//! every account (`LockTarget::Ip`). Only ten times as many failures, from many addresses,
//! lock the account itself (`LockTarget::Account`), and even that lockout lets in the
//! addresses the account logged in from lately (on this node). IPv6 clients are counted and
//! locked by their /64, which one subscriber usually has whole.
//!
//! A lockout is also kept locally the moment it is earned, so it works on this node before the
//! Raft commit comes back, and while the cluster has no quorum; once committed, the replicated
//! record alone decides, so lifting it takes effect on every node at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use raft_store::{ConnectionBudgets, LockTarget, Lockout, ProtectionPolicy};

#[cfg(test)]
mod tests;

/// Clients tracked at most per table; when full, entries that no longer matter are dropped
/// first, then all of them (an attacker with this many addresses gets a clean slate, which
/// costs it more than it gains).
const MAX_TRACKED: usize = 100_000;
/// An account is locked for everyone after this many times the per-address threshold.
const ACCOUNT_WIDE_FACTOR: u32 = 10;
/// Addresses remembered per account as ones it logged in from.
const KNOWN_PER_ACCOUNT: usize = 8;
/// How long an address counts as known after the account's last login from it.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 86_400);

/// A connection budget: each mail service counts a client's new connections on its own, so an
/// office's IMAP clients reconnecting do not use up what its mail programs need to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Port 25.
    Smtp,
    /// Ports 587 and 465.
    Submission,
    /// Ports 143 and 993.
    Imap,
    /// Ports 110 and 995.
    Pop3,
}

impl Budget {
    /// The policy key that sets it, as refusals and the API name it.
    pub fn key(self) -> &'static str {
        match self {
            Budget::Smtp => "smtp-connections-per-minute-per-ip",
            Budget::Submission => "submission-connections-per-minute-per-ip",
            Budget::Imap => "imap-connections-per-minute-per-ip",
            Budget::Pop3 => "pop3-connections-per-minute-per-ip",
        }
    }

    /// The mail policy key that limits one client's open connections on it.
    pub fn open_key(self) -> &'static str {
        match self {
            Budget::Smtp => "smtp-connections-per-ip",
            Budget::Submission => "submission-connections-per-ip",
            Budget::Imap => "imap-connections-per-ip",
            Budget::Pop3 => "pop3-connections-per-ip",
        }
    }

    /// Connections one client may hold open on it at once (0: no limit).
    pub fn open_limit(self, limits: &raft_store::ConnectionsPerIp) -> u32 {
        match self {
            Budget::Smtp => limits.smtp_connections_per_ip,
            Budget::Submission => limits.submission_connections_per_ip,
            Budget::Imap => limits.imap_connections_per_ip,
            Budget::Pop3 => limits.pop3_connections_per_ip,
        }
    }

    /// New connections per minute it allows one client (0: no limit).
    pub fn per_minute(self, budgets: &ConnectionBudgets) -> u32 {
        match self {
            Budget::Smtp => budgets.smtp_connections_per_minute_per_ip,
            Budget::Submission => budgets.submission_connections_per_minute_per_ip,
            Budget::Imap => budgets.imap_connections_per_minute_per_ip,
            Budget::Pop3 => budgets.pop3_connections_per_minute_per_ip,
        }
    }
}

/// The in-memory side of abuse protection for one node.
pub struct Guard {
    buckets: Mutex<HashMap<(Budget, IpAddr), Bucket>>,
    failures: Mutex<HashMap<LockTarget, Window>>,
    /// Lockouts this node earned and has not seen committed yet (the replicated copy may lag
    /// or be missing while the cluster has no quorum).
    local: Mutex<HashMap<LockTarget, Instant>>,
    /// Per account, the client addresses it logged in from lately, with when.
    known: Mutex<HashMap<String, Vec<(IpAddr, Instant)>>>,
    exempt: Mutex<(Vec<String>, Vec<IpNet>)>,
}

/// A token bucket: `tokens` new connections may start now; it refills at the policy's rate.
struct Bucket {
    tokens: f64,
    /// The burst the bucket was last filled up to: a raised budget adds the difference at
    /// once, so an operator who raises it for a client held at its limit gives relief now.
    capacity: f64,
    at: Instant,
}

/// Failed logins counted since `start`.
struct Window {
    start: Instant,
    count: u32,
}

/// What one failed login led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted; no threshold reached.
    Counted,
    /// These targets crossed their threshold just now: lock them out cluster-wide.
    LockOut(Vec<(LockTarget, u32)>),
}

impl Default for Guard {
    fn default() -> Guard {
        Guard::new()
    }
}

/// The address failures are counted and locked by: IPv4 (an IPv4-mapped IPv6 address too) as
/// it is, IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl Guard {
    pub fn new() -> Guard {
        Guard {
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            exempt: Mutex::new((Vec::new(), Vec::new())),
        }
    }

    /// Whether the policy exempts `ip` from rate limits and lockouts.
    pub fn exempt(&self, policy: &ProtectionPolicy, ip: IpAddr) -> bool {
        let mut cached = self.exempt.lock().expect("exempt cache lock");
        if cached.0 != policy.exempt_networks {
            // Checked on write by the admin API; an entry that does not parse exempts nothing.
            let nets = policy
                .exempt_networks
                .iter()
                .filter_map(|net| parse_net(net).ok())
                .collect();
            *cached = (policy.exempt_networks.clone(), nets);
        }
        let ip = ip.to_canonical();
        cached.1.iter().any(|net| net.contains(&ip))
    }

    /// Takes one new connection from `ip` out of its bucket for `budget`; false when the client
    /// has opened more than that budget allows in the last minute.
    pub fn admit_connection(
        &self,
        policy: &ProtectionPolicy,
        budgets: &ConnectionBudgets,
        budget: Budget,
        ip: IpAddr,
        now: Instant,
    ) -> bool {
        let per_minute = budget.per_minute(budgets);
        if per_minute == 0 || self.exempt(policy, ip) {
            return true;
        }
        let capacity = f64::from(per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().expect("rate table lock");
        let key = (budget, ip);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
            // A full bucket limits nothing: forget those first.
            buckets.retain(|(budget, _), b| {
                let capacity = f64::from(budget.per_minute(budgets));
                let refill = now.saturating_duration_since(b.at).as_secs_f64() * capacity / 60.0;
                b.tokens + refill < capacity
            });
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            capacity,
            at: now,
        });
        if capacity > bucket.capacity {
            bucket.tokens += capacity - bucket.capacity;
        }
        bucket.capacity = capacity;
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The lockouts that would stop a login to `account` from `ip`, in the order they are
    /// checked: the address, the address for this account, and the account (unless the
    /// address is one the account logged in from lately).
    pub fn lock_targets(
        &self,
        policy: &ProtectionPolicy,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Vec<LockTarget> {
        let account = account.to_ascii_lowercase();
        let key = client_key(ip);
        let mut targets = Vec::with_capacity(3);
        if !self.exempt(policy, ip) {
            targets.push(LockTarget::Ip(key));
        }
        targets.push(LockTarget::AccountFrom {
            account: account.clone(),
            ip: key,
        });
        if !self.known_address(&account, key, now) {
            targets.push(LockTarget::Account(account));
        }
        targets
    }

    /// Whether this node has locked `target` out, the lockout still runs, and it is not yet
    /// committed (after that the replicated record decides).
    pub fn locally_locked(&self, target: &LockTarget, now: Instant) -> bool {
        let mut local = self.local.lock().expect("lockout table lock");
        match local.get(target) {
            Some(&until) if until > now => true,
            Some(_) => {
                local.remove(target);
                false
            }
            None => false,
        }
    }

    /// The lockout of `target` is committed: from now on the replicated record decides, so an
    /// operator who lifts it lifts it here too.
    pub fn lockout_committed(&self, target: &LockTarget) {
        self.local
            .lock()
            .expect("lockout table lock")
            .remove(target);
    }

    /// Counts a failed login to `account` from `ip`. A target that reaches its threshold is
    /// locked here at once and returned, so the caller commits the lockout cluster-wide.
    pub fn login_failed(
        &self,
        policy: &ProtectionPolicy,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Failure {
        let window = Duration::from_secs(policy.failure_window_secs);
        let account = account.to_ascii_lowercase();
        let key = client_key(ip);
        let per_address = policy.account_lockout_failures;
        let mut targets = vec![
            (
                LockTarget::AccountFrom {
                    account: account.clone(),
                    ip: key,
                },
                per_address,
            ),
            (
                LockTarget::Account(account),
                per_address.saturating_mul(ACCOUNT_WIDE_FACTOR),
            ),
        ];
        if !self.exempt(policy, ip) {
            targets.push((LockTarget::Ip(key), policy.ip_lockout_failures));
        }
        let mut locked = Vec::new();
        let mut failures = self.failures.lock().expect("failure table lock");
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, w| now.saturating_duration_since(w.start) < window);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        for (target, threshold) in targets {
            if threshold == 0 {
                continue;
            }
            let entry = failures.entry(target.clone()).or_insert(Window {
                start: now,
                count: 0,
            });
            if now.saturating_duration_since(entry.start) >= window {
                *entry = Window {
                    start: now,
                    count: 0,
                };
            }
            entry.count += 1;
            if entry.count >= threshold {
                let count = entry.count;
                failures.remove(&target);
                locked.push((target, count));
            }
        }
        drop(failures);
        if locked.is_empty() {
            return Failure::Counted;
        }
        let until = now + Duration::from_secs(policy.lockout_secs);
        let mut local = self.local.lock().expect("lockout table lock");
        if local.len() >= MAX_TRACKED {
            local.retain(|_, &mut end| end > now);
        }
        for (target, _) in &locked {
            local.insert(target.clone(), until);
        }
        Failure::LockOut(locked)
    }

    /// A successful login from `ip` ends the count of failures against the account from that
    /// address (not the address's own count), and makes the address known to the account.
    pub fn login_succeeded(&self, account: &str, ip: IpAddr, now: Instant) {
        let account = account.to_ascii_lowercase();
        let key = client_key(ip);
        self.failures
            .lock()
            .expect("failure table lock")
            .remove(&LockTarget::AccountFrom {
                account: account.clone(),
                ip: key,
            });
        let mut known = self.known.lock().expect("known address lock");
        if known.len() >= MAX_TRACKED && !known.contains_key(&account) {
            known.retain(|_, seen| {
                seen.retain(|&(_, at)| now.saturating_duration_since(at) < KNOWN_FOR);
                !seen.is_empty()
            });
            if known.len() >= MAX_TRACKED {
                known.clear();
            }
        }
        let seen = known.entry(account).or_default();
        seen.retain(|&(address, at)| {
            address != key && now.saturating_duration_since(at) < KNOWN_FOR
        });
        if seen.len() >= KNOWN_PER_ACCOUNT {
            seen.remove(0);
        }
        seen.push((key, now));
    }

    fn known_address(&self, account: &str, key: IpAddr, now: Instant) -> bool {
        self.known
            .lock()
            .expect("known address lock")
            .get(account)
            .is_some_and(|seen| {
                seen.iter().any(|&(address, at)| {
                    address == key && now.saturating_duration_since(at) < KNOWN_FOR
                })
            })
    }
}

/// The lockout to commit for `target` after `count` failures, at unix time `now`.
pub fn lockout(policy: &ProtectionPolicy, target: LockTarget, count: u32, now: u64) -> Lockout {
    Lockout {
        target,
        since: now,
        until: now.saturating_add(policy.lockout_secs),
        reason: format!(
            "{count} failed logins within {} s",
            policy.failure_window_secs
        ),
    }
}

/// A CIDR, or a bare address (a /32 or /128).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IP network (such as 192.0.2.0/24 or ::1/128)"))
}

/// Whether `policy` can be enforced; else why not, naming the key.
pub fn check_policy(policy: &ProtectionPolicy) -> Result<(), String> {
    for net in &policy.exempt_networks {
        parse_net(net).map_err(|why| format!("exempt-networks: {why}"))?;
    }
    if policy.login_failure_delay_ms > 30_000 {
        return Err("login-failure-delay-ms must be at most 30000 (clients time out)".into());
    }
    if policy.failure_window_secs == 0 || policy.failure_window_secs > 86_400 {
        return Err("failure-window-secs must be between 1 and 86400".into());
    }
    if policy.lockout_secs == 0 || policy.lockout_secs > 7 * 86_400 {
        return Err("lockout-secs must be between 1 and 604800 (a week)".into());
    }
    Ok(())
}
