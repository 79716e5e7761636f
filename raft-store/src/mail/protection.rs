//! Abuse protection as replicated state: the protection policy every node enforces alike, and
//! the lockouts that failed logins earn. A lockout is committed through Raft, so it holds on
//! every node and survives a failover; the counting that leads to one stays in the memory of
//! the node that sees the failures (the VIP holder, normally), which is what makes it cheap.

use serde::{Deserialize, Serialize};

use crate::db::{CF_LOCKOUTS, CF_SETTINGS, KEY_PROTECTION_POLICY};
use crate::error::StoreError;
use crate::state_machine::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

/// Limits against floods and password guessing, the same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ProtectionPolicy {
    /// New connections one client IP may open per minute on one node, over all mail services
    /// (a burst of this many, then one every 60/n seconds); 0: no limit.
    pub connections_per_minute_per_ip: u32,
    /// Clients (CIDRs) the connection rate limit and login lockouts never apply to.
    pub exempt_networks: Vec<String>,
    /// How long the answer to a failed login is held back, in milliseconds.
    pub login_failure_delay_ms: u64,
    /// Failed logins naming one account within `failure-window-secs` that lock the account
    /// (for every client) for `lockout-secs`; 0: never.
    pub account_lockout_failures: u32,
    /// Failed logins from one client IP within the window that lock that IP out of logging in
    /// (to any account) for `lockout-secs`; 0: never.
    pub ip_lockout_failures: u32,
    pub failure_window_secs: u64,
    pub lockout_secs: u64,
    /// An authenticated SMTP client may use only its own address, or an alias that reaches
    /// it, as MAIL FROM.
    pub sender_login_match: bool,
    /// Message data slower than this many bytes a second on average (after a minute's grace)
    /// ends the session with 421: a client dripping a line every few minutes cannot hold a
    /// session for hours. 0: only the per-line timeout.
    pub min_data_rate: u64,
}

impl Default for ProtectionPolicy {
    fn default() -> ProtectionPolicy {
        ProtectionPolicy {
            // The source documents' defaults.
            connections_per_minute_per_ip: 32,
            exempt_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            login_failure_delay_ms: 1000,
            account_lockout_failures: 10,
            ip_lockout_failures: 20,
            failure_window_secs: 900,
            lockout_secs: 900,
            sender_login_match: true,
            // A 50 MB message at this rate takes 14 hours: no real client is that slow.
            min_data_rate: 1024,
        }
    }
}

/// What a lockout shuts out.
/// (No serde tag attributes: the log is bincode, which has no field names; the API uses the
/// `Display` form.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockTarget {
    /// Logins from this client address, to any account.
    Ip(std::net::IpAddr),
    /// Logins to this account name (lower case) from anywhere. The name need not exist, so a
    /// lockout says nothing about which accounts do.
    Account(String),
}

impl LockTarget {
    fn key(&self) -> Vec<u8> {
        match self {
            LockTarget::Ip(ip) => format!("ip:{ip}").into_bytes(),
            LockTarget::Account(name) => format!("account:{name}").into_bytes(),
        }
    }
}

impl std::fmt::Display for LockTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockTarget::Ip(ip) => write!(f, "ip:{ip}"),
            LockTarget::Account(name) => write!(f, "account:{name}"),
        }
    }
}

impl std::str::FromStr for LockTarget {
    type Err = String;

    /// `ip:ADDRESS` or `account:NAME`, as `Display` writes them.
    fn from_str(s: &str) -> Result<LockTarget, String> {
        match s.split_once(':') {
            Some(("ip", ip)) => ip
                .parse()
                .map(LockTarget::Ip)
                .map_err(|_| format!("{ip:?} is not an IP address")),
            Some(("account", name)) if !name.is_empty() => {
                Ok(LockTarget::Account(name.to_ascii_lowercase()))
            }
            _ => Err(format!(
                "{s:?} is not a lockout (ip:ADDRESS or account:NAME)"
            )),
        }
    }
}

/// One lockout: logins by `target` fail, whatever the password, until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    pub target: LockTarget,
    /// Unix seconds, decided by the proposer like every time in a command.
    pub since: u64,
    pub until: u64,
    /// Why, for the operator: e.g. "20 failed logins in 900 s".
    pub reason: String,
}

pub(crate) fn set_policy(policy: &ProtectionPolicy, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_PROTECTION_POLICY, policy);
}

/// Records a lockout (replacing one of the same target), and drops the lockouts that ended
/// before it began: the table holds current lockouts only, decided by the command's own time.
pub(crate) fn lock(
    reader: &StateReader,
    lockout: &Lockout,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    for ended in reader.lockouts()? {
        if ended.until <= lockout.since && ended.target != lockout.target {
            staged.delete(CF_LOCKOUTS, &ended.target.key());
        }
    }
    staged.put(CF_LOCKOUTS, &lockout.target.key(), lockout);
    Ok(CommandResult::Done)
}

pub(crate) fn unlock(
    reader: &StateReader,
    target: &LockTarget,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.lockout(target)?.is_none() {
        return Ok(CommandResult::Rejected(Rejection::NoLockout(
            target.to_string(),
        )));
    }
    staged.delete(CF_LOCKOUTS, &target.key());
    Ok(CommandResult::Done)
}

/// Protection reads of the applied state.
impl StateReader {
    pub fn protection_policy(&self) -> Result<ProtectionPolicy, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_PROTECTION_POLICY)?
            .unwrap_or_default())
    }

    /// The lockout of `target`, if one is recorded (it may have ended: compare `until`).
    pub fn lockout(&self, target: &LockTarget) -> Result<Option<Lockout>, StoreError> {
        self.db.get(CF_LOCKOUTS, &target.key())
    }

    /// Whether `target` is locked out at `now` (unix seconds).
    pub fn locked(&self, target: &LockTarget, now: u64) -> Result<bool, StoreError> {
        Ok(self.lockout(target)?.is_some_and(|l| l.until > now))
    }

    /// Every recorded lockout, ended ones included until the next lockout clears them.
    pub fn lockouts(&self) -> Result<Vec<Lockout>, StoreError> {
        self.db.scan(CF_LOCKOUTS)
    }
}
