//! What the mail protocols share: the context a session needs, the accept loop with its
//! connection limits (global and per client IP), password checks, and mail counters.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use raft_store::{Account, Command, ConnectionBudgets, LockTarget, ProtectionPolicy};
use tokio::net::TcpStream;

use crate::access::AccessLists;
use crate::config::Config;
use crate::delivery::Deliverer;
use crate::protection::{Budget, Guard};
pub use crate::service::Service;
use crate::smtp::filters::{FilterMetrics, Filters};
use crate::store::MailStore;
use crate::tls::TlsConfigs;

/// Polite refusals over implicit TLS in progress at once. Each costs a TLS handshake, which a
/// flood of refused connections must not get without bound: beyond this many, a refused
/// implicit-TLS client only sees the connection close.
const TLS_REFUSALS: usize = 16;

/// Everything a mail session uses.
pub struct MailContext {
    /// The cluster as sessions see it (`store.rs`).
    pub store: MailStore,
    pub deliverer: Deliverer,
    pub tls: TlsConfigs,
    pub hostname: String,
    pub metrics: MailMetrics,
    /// Poked when a message for other domains is queued on this node, so the outbound engine
    /// (when this node leads) starts on it at once instead of at its next look at the queue.
    pub outbound_wake: tokio::sync::Notify,
    /// Connection rate limits and failed-login counting (`protection.rs`).
    pub guard: Arc<Guard>,
    /// The block and allow lists (`access.rs`).
    pub access: AccessLists,
    /// DNS-based checks of mail on the public SMTP listener; None when no resolver could be
    /// built (the node then takes mail unchecked, and said so at start).
    pub inbound_checks: Option<Arc<crate::smtp::inbound_checks::InboundChecker>>,
    /// Content filters run on each message SMTP accepts.
    pub filters: Filters,
    /// Message data all SMTP sessions may hold at once, in KiB (`mail.message-memory-mb`).
    pub message_memory: Arc<tokio::sync::Semaphore>,
    /// Set when the node stops: sessions waiting for their client say goodbye and close.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Open connections per client address and service budget.
    connections: Mutex<HashMap<(IpAddr, Budget), u32>>,
    n_connections: AtomicU64,
    /// See [`TLS_REFUSALS`].
    pub(crate) tls_refusals: tokio::sync::Semaphore,
    logins: LoginCache,
}

crate::counters::counters! {
    pub struct MailMetrics {
        smtp_sessions => "mcluster_smtp_sessions_total",
            "SMTP sessions started.";
        pop3_sessions => "mcluster_pop3_sessions_total",
            "POP3 sessions started.";
        imap_sessions => "mcluster_imap_sessions_total",
            "IMAP sessions started.";
        imap_appends => "mcluster_imap_appends_total",
            "Messages stored by IMAP APPEND (fsync'd on two nodes and committed before the OK).";
        messages_accepted => "mcluster_messages_accepted_total",
            "Messages answered 250.";
        messages_refused_temp => "mcluster_messages_tempfailed_total",
            "Messages answered 451 after DATA.";
        /// Messages (SMTP DATA, IMAP APPEND) refused for being over the message limits.
        messages_too_complex => "mcluster_messages_too_complex_total",
            "Messages refused (SMTP 554 5.6.0, IMAP NO [LIMIT]) for MIME parts, nesting or header sections over the message limits.";
        auth_failures => "mcluster_auth_failures_total",
            "Failed logins (SMTP AUTH, POP3, IMAP), lockouts included.";
        connections_refused => "mcluster_connections_refused_total",
            "Connections refused by the limits (concurrency or rate).";
        /// Connections refused by the per-IP connection rate limit (also in `connections_refused`).
        connections_rate_limited => "mcluster_connections_rate_limited_total",
            "Connections refused because the client IP opened too many a minute.";
        /// Logins refused because the account or the client IP is locked out.
        logins_locked_out => "mcluster_logins_locked_out_total",
            "Logins refused because the account or the client IP was locked out.";
        /// Lockouts this node imposed.
        lockouts => "mcluster_lockouts_total",
            "Lockouts this node imposed after repeated failed logins.";
        outbound_delivered => "mcluster_outbound_delivered_total",
            "Remote recipients delivered by this node as leader.";
        outbound_deferred => "mcluster_outbound_deferred_total",
            "Remote recipients deferred (4xx, no connection), to be retried.";
        outbound_failed => "mcluster_outbound_failed_total",
            "Remote recipients failed for good (5xx, expired), reported to the sender.";
        /// Refusals by the inbound DNS checks (`smtp/inbound_checks.rs`), one counter per check.
        inbound_refused_dnsbl => "mcluster_inbound_refused_dnsbl_total",
            "SMTP recipients refused because the client is on a DNS block list.";
        inbound_refused_helo => "mcluster_inbound_refused_helo_total",
            "MAIL commands refused for a bad HELO name (inbound-checks.helo = reject).";
        inbound_refused_reverse_dns => "mcluster_inbound_refused_reverse_dns_total",
            "MAIL commands refused for missing reverse DNS (inbound-checks.reverse-dns = reject).";
        inbound_refused_spf => "mcluster_inbound_refused_spf_total",
            "MAIL commands refused for an SPF fail (inbound-checks.spf-fail = reject).";
        inbound_refused_dmarc => "mcluster_inbound_refused_dmarc_total",
            "Messages refused for failing their domain's DMARC reject policy.";
        /// Messages whose DMARC policy asked for quarantine (delivered to the inbox until Junk
        /// filing is connected).
        inbound_quarantined => "mcluster_inbound_quarantined_total",
            "Messages failing a DMARC policy that asks for quarantine.";
    }
    also {
        filters: FilterMetrics,
    }
}

impl MailMetrics {
    pub fn count_inbound_refusal(&self, check: crate::smtp::inbound_checks::Check) {
        use crate::smtp::inbound_checks::Check;
        let counter = match check {
            Check::Dnsbl => &self.inbound_refused_dnsbl,
            Check::Helo => &self.inbound_refused_helo,
            Check::ReverseDns => &self.inbound_refused_reverse_dns,
            Check::Spf => &self.inbound_refused_spf,
            Check::Dmarc => &self.inbound_refused_dmarc,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_outbound(&self, outcomes: &[(String, raft_store::AttemptOutcome)]) {
        use raft_store::AttemptOutcome;
        for (_, outcome) in outcomes {
            let counter = match outcome {
                AttemptOutcome::Delivered => &self.outbound_delivered,
                AttemptOutcome::Deferred(_) => &self.outbound_deferred,
                AttemptOutcome::Failed(_) => &self.outbound_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Holds one slot of the connection limits while a session runs.
pub struct ConnectionSlot {
    context: Arc<MailContext>,
    key: (IpAddr, Budget),
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.context.n_connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self
            .context
            .connections
            .lock()
            .expect("connection table lock");
        if let Some(n) = per_ip.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.key);
            }
        }
    }
}

impl MailContext {
    pub fn new(store: MailStore, deliverer: Deliverer, config: &Config) -> MailContext {
        let tls = TlsConfigs::new(store.state().clone());
        let access = AccessLists::new(store.state().clone());
        let hostname = config.hostname.clone();
        let filters = config.filters.clone();
        let inbound_checks = match crate::smtp::inbound_checks::InboundChecker::new(
            config.inbound_checks.clone(),
            &config.nameservers,
            &hostname,
        ) {
            Ok(checker) => Some(Arc::new(checker)),
            Err(err) => {
                tracing::error!(error = %err, "no DNS resolver: inbound mail is taken without DNS checks");
                None
            }
        };
        let message_memory = Arc::new(tokio::sync::Semaphore::new(
            (config.message_memory_bytes / 1024) as usize,
        ));
        MailContext {
            store,
            deliverer,
            tls,
            hostname,
            metrics: MailMetrics::default(),
            outbound_wake: tokio::sync::Notify::new(),
            guard: Arc::new(Guard::new()),
            access,
            inbound_checks,
            filters,
            message_memory,
            closing: tokio::sync::watch::Sender::new(false),
            connections: Mutex::new(HashMap::new()),
            n_connections: AtomicU64::new(0),
            tls_refusals: tokio::sync::Semaphore::new(TLS_REFUSALS),
            logins: LoginCache::new(),
        }
    }

    /// Takes a connection slot for `ip` on `service`, or says which limit refuses it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        service: Service,
    ) -> Result<ConnectionSlot, Refusal> {
        let policy = self.store.state().mail_policy().unwrap_or_default();
        let protection = self.protection_policy();
        let budgets = self
            .store
            .state()
            .connection_budgets()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "cannot read the connection budgets: using defaults");
                ConnectionBudgets::default()
            });
        let open_limits = self
            .store
            .state()
            .connections_per_ip()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "cannot read the per-address connection limits: using defaults");
                raft_store::ConnectionsPerIp::default()
            });
        let budget = service.budget();
        let key = (ip, budget);
        let mut per_ip = self.connections.lock().expect("connection table lock");
        let n_ip = per_ip.get(&key).copied().unwrap_or(0);
        let total = self.n_connections.load(Ordering::Relaxed);
        if total >= u64::from(policy.max_connections) {
            return Err(Refusal::NodeFull {
                limit: policy.max_connections,
            });
        }
        let open_limit = budget.open_limit(&open_limits);
        if open_limit != 0 && n_ip >= open_limit {
            return Err(Refusal::OpenPerIp {
                budget,
                limit: open_limit,
            });
        }
        // Counted only for connections the concurrency limits let in, so a client held at its
        // limit does not also use up its rate.
        if !self.guard.admit_connection(
            &protection,
            &budgets,
            budget,
            ip,
            std::time::Instant::now(),
        ) {
            return Err(Refusal::RatePerIp {
                budget,
                per_minute: budget.per_minute(&budgets),
            });
        }
        per_ip.insert(key, n_ip + 1);
        self.n_connections.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionSlot {
            context: self.clone(),
            key,
        })
    }

    /// The replicated protection policy (the defaults if it cannot be read).
    pub fn protection_policy(&self) -> ProtectionPolicy {
        self.store
            .state()
            .protection_policy()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "cannot read the protection policy: using defaults");
                ProtectionPolicy::default()
            })
    }

    /// Completes once the session should say goodbye (at once if it should): the node has
    /// begun to stop, or the virtual IP the session came in on is being handed to another
    /// node (`VIP_LEAVING`).
    pub async fn closing(&self) -> Goodbye {
        let mut closing = self.closing.subscribe();
        let stopping = async {
            let _ = closing.wait_for(|closing| *closing).await;
        };
        let Ok(mut leaving) = VIP_LEAVING.try_with(Clone::clone) else {
            stopping.await;
            return Goodbye::Stopping;
        };
        let moving = async {
            if leaving.wait_for(|leaving| *leaving).await.is_err() {
                // The VIP manager is gone: only the node's stop is left to wait for.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = stopping => Goodbye::Stopping,
            () = moving => Goodbye::Moving,
        }
    }

    /// How long the answer to a failed login is held back.
    pub fn login_failure_delay(&self) -> Duration {
        Duration::from_millis(self.protection_policy().login_failure_delay_ms)
    }

    /// Whether `extra` more bytes would take the account over its quota (0 MB: no quota).
    pub fn over_quota(&self, account: &Account, extra: u64) -> bool {
        let quota = account.quota_mb.saturating_mul(1024 * 1024);
        quota > 0
            && self
                .store
                .state()
                .usage_bytes(&account.address)
                .unwrap_or(0)
                .saturating_add(extra)
                > quota
    }

    /// Checks a login (an account address, lower-cased) and password from a client at `ip`.
    /// Disabled accounts fail. A failure is answered only after the policy's delay (here, so
    /// every protocol pays it) and is counted towards lockouts. A wrong password looks the same
    /// whether or not the account exists. A lockout is checked before the password, so a guess
    /// that happens to be right during one is not confirmed; it is answered as `Locked`, which
    /// says nothing about the account either, since lockouts are by name whether or not it
    /// exists.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Account, LoginRefused> {
        let login = login.trim().to_ascii_lowercase();
        let policy = self.protection_policy();
        let delay = Duration::from_millis(policy.login_failure_delay_ms);
        if let Some(target) = self.locked_out(&policy, &login, ip).await {
            self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .logins_locked_out
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%ip, user = %login, lockout = %target, "login refused: locked out");
            tokio::time::sleep(delay).await;
            return Err(LoginRefused::Locked);
        }
        let account = match self.store.state().account(&login) {
            Ok(Some(account)) if account.enabled => Some(account),
            _ => None,
        };
        if let Some(account) = &account
            && self.logins.verified(account, password)
        {
            self.guard
                .login_succeeded(&login, ip, std::time::Instant::now());
            return Ok(account.clone());
        }
        // An unknown account costs the same verification as a known one, so the answer's
        // timing does not tell them apart.
        let hash = match &account {
            Some(account) => account.password_hash.clone(),
            None => unknown_account_hash().to_owned(),
        };
        let secret = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        match account {
            Some(account) if ok => {
                self.logins.remember(&account, password);
                self.guard
                    .login_succeeded(&login, ip, std::time::Instant::now());
                Ok(account)
            }
            _ => {
                self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                self.login_failed(&policy, &login, ip);
                tokio::time::sleep(delay).await;
                Err(LoginRefused::Invalid)
            }
        }
    }

    /// The lockout that stops `login` from `ip`, if any: one this node earned and has not seen
    /// committed yet, or a replicated one. A replicated lockout is confirmed with a
    /// linearizable read before it refuses, so one an operator has just lifted anywhere no
    /// longer counts here (without a quorum the local copy decides).
    async fn locked_out(
        &self,
        policy: &ProtectionPolicy,
        login: &str,
        ip: IpAddr,
    ) -> Option<LockTarget> {
        let now = std::time::Instant::now();
        let targets = self.guard.lock_targets(policy, login, ip, now);
        if let Some(target) = targets
            .iter()
            .find(|target| self.guard.locally_locked(target, now))
        {
            return Some(target.clone());
        }
        let replicated = |targets: &[LockTarget]| {
            let unix = crate::clock::unix_now();
            targets
                .iter()
                .find(|target| {
                    self.store
                        .state()
                        .locked(target, unix)
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "cannot read lockouts");
                            false
                        })
                })
                .cloned()
        };
        replicated(&targets)?;
        if let Err(err) = self.store.linearize().await {
            tracing::debug!(error = %err, "cannot confirm a lockout with the leader");
        }
        replicated(&targets)
    }

    /// Counts a failure; a target that crossed its threshold is locked out cluster-wide (in the
    /// background: the client's answer does not wait for the commit).
    fn login_failed(&self, policy: &ProtectionPolicy, login: &str, ip: IpAddr) {
        let crate::protection::Failure::LockOut(targets) =
            self.guard
                .login_failed(policy, login, ip, std::time::Instant::now())
        else {
            return;
        };
        let unix = crate::clock::unix_now();
        for (target, count) in targets {
            self.metrics.lockouts.fetch_add(1, Ordering::Relaxed);
            let lockout = crate::protection::lockout(policy, target, count, unix);
            tracing::warn!(
                target = %lockout.target,
                until = lockout.until,
                reason = %lockout.reason,
                "locking out"
            );
            let store = self.store.clone();
            let guard = self.guard.clone();
            tokio::spawn(async move {
                let target = lockout.target.clone();
                match store.write_ok(Command::Lock(lockout)).await {
                    Ok(_) => guard.lockout_committed(&target),
                    Err(err) => {
                        tracing::warn!(%target, error = %err, "lockout not committed: it holds on this node only");
                    }
                }
            });
        }
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Wrong password, unknown or disabled account: the same answer for all three.
    Invalid,
    /// Too many failed logins: the account, the address, or the address for this account is
    /// locked out for a while.
    Locked,
}

/// The sessions of one connection: over TLS from the first byte on an implicit-TLS listener;
/// otherwise in clear, then over TLS if the clear session accepted STARTTLS (or STLS).
/// `plain` runs the clear session and hands the connection back when it ends in STARTTLS
/// (whatever the client pipelined after it is dropped with the session's buffer); `secure`
/// runs a session over TLS, with a greeting or (after STARTTLS) without.
pub(crate) async fn serve_connection(
    context: &MailContext,
    stream: TcpStream,
    peer: SocketAddr,
    service: Service,
    plain: impl AsyncFnOnce(TcpStream) -> Option<TcpStream>,
    secure: impl AsyncFnOnce(TlsConnection, Greeting),
) {
    let (stream, greeting) = if service.implicit_tls() {
        (stream, Greeting::Send)
    } else {
        match plain(stream).await {
            Some(stream) => (stream, Greeting::AlreadySent),
            None => return,
        }
    };
    if let Some(tls) = accept_tls(context, stream, peer).await {
        secure(tls, greeting).await;
    }
}

/// A client connection over TLS.
pub(crate) type TlsConnection = tokio_rustls::server::TlsStream<TcpStream>;

/// Whether a session over TLS greets the client: not after STARTTLS, which continues a session
/// already greeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Greeting {
    Send,
    AlreadySent,
}

/// The TLS handshake for implicit TLS and STARTTLS/STLS, with the cluster's certificate and a
/// 30 s limit. None: no certificate, or the handshake failed (logged at debug: clients do that).
pub async fn accept_tls(
    context: &MailContext,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let Some(acceptor) = context.tls.acceptor() else {
        tracing::warn!(%peer, "no TLS certificate: closing the connection");
        return None;
    };
    match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The node's connections from all clients together (`max-connections`).
    NodeFull { limit: u32 },
    /// This client's open connections on the service's budget.
    OpenPerIp { budget: Budget, limit: u32 },
    /// This client's connection rate on the service's budget.
    RatePerIp { budget: Budget, per_minute: u32 },
}

impl Refusal {
    /// The line a client of `service` is told before the connection closes.
    pub(crate) fn line(self, service: Service) -> String {
        let what = match self {
            Refusal::NodeFull { limit } => format!(
                "Too many connections to this server (max-connections is {limit}), try later"
            ),
            Refusal::OpenPerIp { budget, limit } => format!(
                "Too many open connections from your address ({} is {limit}), try later",
                budget.open_key()
            ),
            Refusal::RatePerIp { budget, per_minute } => format!(
                "Too many connections per minute from your address ({} is {per_minute}), \
                 try later",
                budget.key()
            ),
        };
        match service {
            Service::Pop3 | Service::Pop3s => format!("-ERR [SYS/TEMP] {what}"),
            Service::Imap | Service::Imaps => format!("* BYE [UNAVAILABLE] {what}"),
            _ => format!("421 4.7.0 {what}"),
        }
    }
}

/// An argon2 hash of a random password, verified against for logins to accounts that do not
/// exist (made once, with the default parameters every stored hash has).
fn unknown_account_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::PasswordHasher;
        use argon2::password_hash::SaltString;
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .expect("16 bytes always make a valid salt");
        let password: [u8; 32] = rand::random();
        Argon2::default()
            .hash_password(&password, &salt)
            .expect("hashing with default parameters cannot fail")
            .to_string()
    })
}

/// How long a verified password is remembered.
const LOGIN_CACHE_TTL: Duration = Duration::from_secs(15 * 60);
/// Accounts remembered at most; when full, expired entries go, and if none has, all of them.
const LOGIN_CACHE_ENTRIES: usize = 10_000;

/// Passwords verified recently, so that a client that logs in again and again (phones do, on
/// every poll and IDLE renewal) costs one argon2 verification per quarter hour instead of one
/// per connection (about 45 ms of CPU each). Like Dovecot's auth cache. What is kept is
/// SHA-256 of a per-process random key and the password, never the password; an entry counts
/// only while the account's stored hash is the one it was verified against, so a password
/// change ends it at once. Failed logins are never cached: each costs a full verification.
struct LoginCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, CachedLogin>>,
}

struct CachedLogin {
    password_hash: String,
    proof: [u8; 32],
    until: std::time::Instant,
}

impl LoginCache {
    fn new() -> LoginCache {
        LoginCache {
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn proof(&self, password: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn verified(&self, account: &Account, password: &str) -> bool {
        let proof = self.proof(password);
        let entries = self.entries.lock().expect("login cache lock");
        entries.get(&account.address).is_some_and(|entry| {
            entry.until > std::time::Instant::now()
                && entry.password_hash == account.password_hash
                && entry
                    .proof
                    .iter()
                    .zip(&proof)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    fn remember(&self, account: &Account, password: &str) {
        let entry = CachedLogin {
            password_hash: account.password_hash.clone(),
            proof: self.proof(password),
            until: std::time::Instant::now() + LOGIN_CACHE_TTL,
        };
        let mut entries = self.entries.lock().expect("login cache lock");
        if entries.len() >= LOGIN_CACHE_ENTRIES && !entries.contains_key(&account.address) {
            let now = std::time::Instant::now();
            entries.retain(|_, e| e.until > now);
            if entries.len() >= LOGIN_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(account.address.clone(), entry);
    }
}

/// Why a session is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goodbye {
    /// The node is stopping.
    Stopping,
    /// The virtual IP the session came in on moves to another node (a planned hand-over):
    /// the client should reconnect at once.
    Moving,
}

tokio::task_local! {
    /// In a session that came in on the virtual IP: becomes true just before the VIP manager
    /// lets go of the address in a planned hand-over, while the session can still say so.
    pub(crate) static VIP_LEAVING: tokio::sync::watch::Receiver<bool>;
}

#[cfg(test)]
mod tests;
