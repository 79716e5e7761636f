//! Abuse protection as replicated: the protection policy, connection budgets, the password
//! policy, and lockouts.

use serde::{Deserialize, Serialize};

/// Limits against floods and password guessing, the same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ProtectionPolicy {
    /// The one connection rate of builds before [`ConnectionBudgets`], over all mail services.
    /// No longer enforced; kept because it is part of the stored and logged encoding, and read
    /// once: a store without budgets derives them from it ([`ConnectionBudgets::from_legacy`]).
    pub connections_per_minute_per_ip: u32,
    /// Clients (CIDRs) the connection rate limit and login lockouts never apply to.
    pub exempt_networks: Vec<String>,
    /// How long the answer to a failed login is held back, in milliseconds.
    pub login_failure_delay_ms: u64,
    /// Failed logins to one account from one client address (IPv6: its /64) within
    /// `failure-window-secs` that lock that address out of that account for `lockout-secs`.
    /// Ten times as many from all addresses together lock the account for every address but
    /// those it logged in from lately, so a guesser never locks the owner out; 0: never.
    pub account_lockout_failures: u32,
    /// Failed logins from one client address (IPv6: its /64) within the window, to any
    /// accounts, that lock that address out of logging in for `lockout-secs`; 0: never.
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

/// New connections one client address may open per minute on one node, one budget per mail
/// service (a burst of that many, then one every 60/n seconds; 0: no limit). Stored under a key
/// of its own beside the protection policy, so stores and log entries written before it existed
/// keep their encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ConnectionBudgets {
    /// Port 25: other mail servers.
    pub smtp_connections_per_minute_per_ip: u32,
    /// Ports 587 and 465: the users' mail programs sending.
    pub submission_connections_per_minute_per_ip: u32,
    /// Ports 143 and 993.
    pub imap_connections_per_minute_per_ip: u32,
    /// Ports 110 and 995.
    pub pop3_connections_per_minute_per_ip: u32,
}

impl Default for ConnectionBudgets {
    /// Sized for an office of 50 people behind one NAT address: Thunderbird and Outlook open up
    /// to five IMAP connections per account at start and reconnect after every sleep or network
    /// change, send each message on a new submission connection, and POP3 clients poll every
    /// few minutes. A stranger's flood still meets a limit, and its logins the lockouts.
    fn default() -> ConnectionBudgets {
        ConnectionBudgets {
            smtp_connections_per_minute_per_ip: 60,
            submission_connections_per_minute_per_ip: 120,
            imap_connections_per_minute_per_ip: 300,
            pop3_connections_per_minute_per_ip: 120,
        }
    }
}

impl ConnectionBudgets {
    /// The budgets of a store written before they existed, from its one shared rate: no limit
    /// stays no limit, and no service gets less than it had (nor less than the defaults).
    pub fn from_legacy(connections_per_minute_per_ip: u32) -> ConnectionBudgets {
        let old = connections_per_minute_per_ip;
        let at_least = |default: u32| if old == 0 { 0 } else { default.max(old) };
        let defaults = ConnectionBudgets::default();
        ConnectionBudgets {
            smtp_connections_per_minute_per_ip: at_least(
                defaults.smtp_connections_per_minute_per_ip,
            ),
            submission_connections_per_minute_per_ip: at_least(
                defaults.submission_connections_per_minute_per_ip,
            ),
            imap_connections_per_minute_per_ip: at_least(
                defaults.imap_connections_per_minute_per_ip,
            ),
            pop3_connections_per_minute_per_ip: at_least(
                defaults.pop3_connections_per_minute_per_ip,
            ),
        }
    }
}

/// What a new or changed account password must be. Stored under a key of its own (see
/// [`ConnectionBudgets`]); checked by the admin API before a password is hashed, never on
/// login, so passwords set before a stricter policy keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct PasswordPolicy {
    /// Characters (Unicode scalar values) a new password has at least.
    pub min_password_length: u32,
}

impl PasswordPolicy {
    /// The range an administrator may set `min_password_length` in: below 8 is no policy
    /// (NIST SP 800-63B's floor), above 128 no one types.
    pub const MIN_LENGTH_RANGE: std::ops::RangeInclusive<u32> = 8..=128;
}

impl Default for PasswordPolicy {
    fn default() -> PasswordPolicy {
        PasswordPolicy {
            min_password_length: 10,
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
    /// Logins to this account name from this client address only (for IPv6, its /64): the
    /// lockout that stops a guesser without shutting the account's owner out. (Appended last:
    /// the variant index is part of the log's encoding.)
    AccountFrom {
        account: String,
        ip: std::net::IpAddr,
    },
}

impl LockTarget {
    /// Its lockout's key in the store.
    pub fn key(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The account a lockout shuts out, if it names one.
    pub fn account(&self) -> Option<&str> {
        match self {
            LockTarget::Ip(_) => None,
            LockTarget::Account(account) | LockTarget::AccountFrom { account, .. } => Some(account),
        }
    }
}

impl std::fmt::Display for LockTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockTarget::Ip(ip) => write!(f, "ip:{ip}"),
            LockTarget::Account(name) => write!(f, "account:{name}"),
            LockTarget::AccountFrom { account, ip } => write!(f, "account:{account},ip:{ip}"),
        }
    }
}

impl std::str::FromStr for LockTarget {
    type Err = String;

    /// `ip:ADDRESS`, `account:NAME` or `account:NAME,ip:ADDRESS`, as `Display` writes them.
    fn from_str(s: &str) -> Result<LockTarget, String> {
        if let Some((account, ip)) = s.rsplit_once(",ip:") {
            let LockTarget::Account(account) = account.parse()? else {
                return Err(format!("{s:?} is not a lockout (account:NAME,ip:ADDRESS)"));
            };
            let ip = ip
                .parse()
                .map_err(|_| format!("{ip:?} is not an IP address"))?;
            return Ok(LockTarget::AccountFrom { account, ip });
        }
        match s.split_once(':') {
            Some(("ip", ip)) => ip
                .parse()
                .map(LockTarget::Ip)
                .map_err(|_| format!("{ip:?} is not an IP address")),
            Some(("account", name)) if !name.is_empty() => {
                Ok(LockTarget::Account(name.to_ascii_lowercase()))
            }
            _ => Err(format!(
                "{s:?} is not a lockout (ip:ADDRESS, account:NAME or account:NAME,ip:ADDRESS)"
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
