//! What the mail protocols share: the context a session needs, the accept loop with its
//! connection limits (global and per client IP), password checks, and mail counters.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use raft_store::Account;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::blobs::Blobs;
use crate::cluster::Cluster;
use crate::delivery::Deliverer;
use crate::tls::TlsConfigs;

/// A failed login costs the client this long before it hears the answer.
pub const LOGIN_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Everything a mail session uses.
pub struct MailContext {
    pub cluster: Arc<Cluster>,
    pub blobs: Arc<Blobs>,
    pub deliverer: Deliverer,
    pub tls: TlsConfigs,
    pub hostname: String,
    pub metrics: MailMetrics,
    /// Poked when a message for other domains is queued on this node, so the outbound engine
    /// (when this node leads) starts on it at once instead of at its next look at the queue.
    pub outbound_wake: tokio::sync::Notify,
    connections: Mutex<HashMap<IpAddr, u32>>,
    n_connections: AtomicU64,
    logins: LoginCache,
}

#[derive(Default)]
pub struct MailMetrics {
    pub smtp_sessions: AtomicU64,
    pub pop3_sessions: AtomicU64,
    pub imap_sessions: AtomicU64,
    pub imap_appends: AtomicU64,
    pub messages_accepted: AtomicU64,
    pub messages_refused_temp: AtomicU64,
    pub auth_failures: AtomicU64,
    pub connections_refused: AtomicU64,
    pub outbound_delivered: AtomicU64,
    pub outbound_deferred: AtomicU64,
    pub outbound_failed: AtomicU64,
}

impl MailMetrics {
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

/// Which protocol a listener speaks, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Port 25: mail for local domains from anyone, relaying only after AUTH.
    Smtp,
    /// Port 587: AUTH required, STARTTLS offered.
    Submission,
    /// Port 465: submission over implicit TLS.
    Smtps,
    Pop3,
    Pop3s,
    /// Port 143: IMAP with STARTTLS.
    Imap,
    /// Port 993: IMAP over implicit TLS.
    Imaps,
}

impl Service {
    pub fn implicit_tls(self) -> bool {
        matches!(self, Service::Smtps | Service::Pop3s | Service::Imaps)
    }

    fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Smtps => "smtps",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
        }
    }
}

/// Holds one slot of the connection limits while a session runs.
pub struct ConnectionSlot {
    context: Arc<MailContext>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.context.n_connections.fetch_sub(1, Ordering::Relaxed);
        let mut per_ip = self
            .context
            .connections
            .lock()
            .expect("connection table lock");
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl MailContext {
    pub fn new(
        cluster: Arc<Cluster>,
        blobs: Arc<Blobs>,
        deliverer: Deliverer,
        hostname: String,
    ) -> MailContext {
        let tls = TlsConfigs::new(cluster.reader.clone());
        MailContext {
            cluster,
            blobs,
            deliverer,
            tls,
            hostname,
            metrics: MailMetrics::default(),
            outbound_wake: tokio::sync::Notify::new(),
            connections: Mutex::new(HashMap::new()),
            n_connections: AtomicU64::new(0),
            logins: LoginCache::new(),
        }
    }

    /// Takes a connection slot for `ip`, or None when a limit is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let policy = self.cluster.reader.mail_policy().unwrap_or_default();
        let mut per_ip = self.connections.lock().expect("connection table lock");
        let n_ip = per_ip.get(&ip).copied().unwrap_or(0);
        let total = self.n_connections.load(Ordering::Relaxed);
        if total >= u64::from(policy.max_connections) || n_ip >= policy.max_connections_per_ip {
            return None;
        }
        per_ip.insert(ip, n_ip + 1);
        self.n_connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionSlot {
            context: self.clone(),
            ip,
        })
    }

    /// Whether `extra` more bytes would take the account over its quota (0 MB: no quota).
    pub fn over_quota(&self, account: &Account, extra: u64) -> bool {
        let quota = account.quota_mb.saturating_mul(1024 * 1024);
        quota > 0
            && self
                .cluster
                .reader
                .usage_bytes(&account.address)
                .unwrap_or(0)
                .saturating_add(extra)
                > quota
    }

    /// Checks a login (an account address, lower-cased) and password. Disabled accounts fail.
    /// A failure is delayed by the caller's protocol handler, not here.
    pub async fn authenticate(&self, login: &str, password: &str) -> Option<Account> {
        let login = login.trim().to_ascii_lowercase();
        let account = match self.cluster.reader.account(&login) {
            Ok(Some(account)) if account.enabled => account,
            _ => {
                self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        if self.logins.verified(&account, password) {
            return Some(account);
        }
        let hash = account.password_hash.clone();
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
        if ok {
            self.logins.remember(&account, password);
            Some(account)
        } else {
            self.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
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

/// Binds a mail listener.
pub async fn bind(service: Service, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {} on {addr}", service.name()))
}

/// Accepts connections until the task is aborted; sessions run in `sessions`, so aborting the
/// owner of that set ends them too.
pub async fn accept_loop(
    context: Arc<MailContext>,
    listener: TcpListener,
    service: Service,
    sessions: Arc<tokio::sync::Mutex<JoinSet<()>>>,
) {
    tracing::info!(service = service.name(), addr = ?listener.local_addr().ok(), "listening");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(service = service.name(), error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(slot) = context.admit(peer.ip()) else {
            context
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(service = service.name(), %peer, "connection refused: too many connections");
            tokio::spawn(refuse(stream, service));
            continue;
        };
        let context = context.clone();
        let mut sessions = sessions.lock().await;
        while sessions.try_join_next().is_some() {}
        sessions.spawn(async move {
            let _slot = slot;
            serve(context, stream, peer, service).await;
        });
    }
}

async fn refuse(mut stream: TcpStream, service: Service) {
    let line: &[u8] = match service {
        Service::Pop3 | Service::Pop3s => b"-ERR [SYS/TEMP] too many connections, try later\r\n",
        Service::Imap | Service::Imaps => {
            b"* BYE [UNAVAILABLE] Too many connections, try later\r\n"
        }
        _ => b"421 4.7.0 Too many connections, try later\r\n",
    };
    // Implicit-TLS clients cannot read a plain line; they just see the connection close.
    if !service.implicit_tls() {
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(line)).await;
    }
}

async fn serve(context: Arc<MailContext>, stream: TcpStream, peer: SocketAddr, service: Service) {
    match service {
        Service::Smtp | Service::Submission | Service::Smtps => {
            context
                .metrics
                .smtp_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::smtp::serve(context, stream, peer, service).await;
        }
        Service::Pop3 | Service::Pop3s => {
            context
                .metrics
                .pop3_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::pop3::serve(context, stream, peer, service).await;
        }
        Service::Imap | Service::Imaps => {
            context
                .metrics
                .imap_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::imap::session::serve(context, stream, peer, service).await;
        }
    }
}

#[cfg(test)]
mod tests;

/// Aliases pointing at aliases are followed this deep at most (a loop ends there).
const MAX_ALIAS_DEPTH: usize = 8;

/// Where mail for an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// These enabled accounts (aliases followed), each to its INBOX.
    Local(Vec<String>),
    /// A local domain, but no enabled account answers to the address.
    Unknown,
    /// Not a local domain: the outbound queue.
    Remote,
}

/// Resolves a lowercase `local@domain` address (SMTP RCPT, and the sender of a notice).
pub fn resolve(
    reader: &raft_store::StateReader,
    address: &str,
) -> Result<Resolved, raft_store::StoreError> {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return Ok(Resolved::Unknown);
    };
    match reader.domain(domain)? {
        Some(d) if d.enabled => {}
        Some(_) => return Ok(Resolved::Unknown),
        None => return Ok(Resolved::Remote),
    }
    let mut accounts = std::collections::BTreeSet::new();
    let mut pending = vec![(address.to_owned(), 0)];
    while let Some((address, depth)) = pending.pop() {
        if let Some(account) = reader.account(&address)? {
            if account.enabled {
                accounts.insert(account.address);
            }
        } else if let Some(alias) = reader.alias(&address)?
            && depth < MAX_ALIAS_DEPTH
        {
            for target in alias.targets {
                pending.push((target.to_ascii_lowercase(), depth + 1));
            }
        }
    }
    if accounts.is_empty() {
        Ok(Resolved::Unknown)
    } else {
        Ok(Resolved::Local(accounts.into_iter().collect()))
    }
}
