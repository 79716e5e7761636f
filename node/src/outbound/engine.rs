//! The delivery engine: while this node is the Raft leader it delivers the outbound queue.
//!
//! Every half second, at once when a message for other domains is accepted here, and whenever
//! a task ends, the leader reads the queue's due index and starts up to `concurrency` messages
//! at once, each in its own task. A task:
//! 1. reports failures the sender has not been told about: it builds the RFC 3464 notice,
//!    stores it like any accepted message (fsync'd here and on the mirror partner), and commits
//!    `Notify`, which delivers the notice (into the sender's INBOX when the sender is local, to
//!    the outbound queue otherwise) and marks the failures reported, in one entry;
//! 2. sends the one "still trying" notice when the message has waited `delay-warning-secs`;
//! 3. when the next attempt is due, groups the pending recipients by domain and delivers to
//!    each domain (at most `per-domain-concurrency` sessions to one domain at once): the MX
//!    hosts in preference order, then the smarthost if the policy says so, and commits the
//!    outcomes with `RecordAttempt`. A recipient still deferred on the last allowed attempt
//!    fails with 5.4.7 and the last error; a failure is then reported at once (step 1).
//!
//! A step that fails on this node (the blob store, a Raft write) leaves that message alone for
//! 30 s, so a lasting fault does not spin; a notice that cannot be built at all (a sender that
//! cannot be written into a header) is dropped and the failure marked reported.
//!
//! Exactly-once where it can be: the queue entry, the attempt results and the notices are Raft
//! state, so a new leader carries on from the last committed result. Before it first acts on
//! the queue in a term the leader takes a read index, so it never acts on a stale view after an
//! election.
//! The only duplicate that remains is the remote delivery in flight when the leader dies: its
//! result was never committed, so the new leader sends it again (RFC 5321's at-least-once).
//! Notices are built deterministically (their time is the failure's), so a notice rebuilt by a
//! new leader is the same message, and `Notify` never delivers a notice twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_store::{
    AttemptError, AttemptOutcome, Command, CommandResult, Delivery, NoticeKind, Outbound,
    OutboundPolicy, OutboundTls, QueuedMessage, SmarthostMode, blob_store,
};
use tokio::sync::Semaphore;

use super::client::{self, Attempt, Credentials, Timeouts, TlsPolicy};
use super::dsn::{self, Action, Notice, OriginalMessage, RecipientReport, Ret, StatusCode};
use super::route::{RouteError, Router};
use crate::clock::unix_now;
use crate::cluster::Cluster;
use crate::mail_service::MailContext;
use crate::store::Resolved;

/// How often the leader looks at the queue when nothing wakes it.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// A message with more `Received:` fields than this is not relayed again (a loop).
const MAX_HOPS: usize = 32;
/// How long a message whose step failed here (a storage or Raft error) is left alone before
/// this node tries it again, so a lasting fault does not spin.
const REST_AFTER_ERROR: Duration = Duration::from_secs(30);
/// The largest original returned in full with a bounce (RET=FULL); above it, headers only.
const MAX_RETURNED: usize = 1024 * 1024;

pub struct Engine {
    context: Arc<MailContext>,
    /// Whether this node leads (the engine works only then).
    cluster: Arc<Cluster>,
    router: Router,
    /// Sessions kept open between messages to the same host (Postfix's connection cache).
    pool: client::ConnectionPool,
    mx_port: u16,
    /// Queue ids being worked on by a task of this node.
    in_flight: Mutex<HashSet<String>>,
    /// Queue ids whose last step failed, with when they may be tried again.
    resting: Mutex<HashMap<String, Instant>>,
    /// Sessions open per destination domain.
    domains: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Poked when a task ends, so its slot is refilled at once rather than at the next look.
    slot_freed: tokio::sync::Notify,
    /// The term in which this node last took a read index before acting on the queue.
    checked_term: std::sync::atomic::AtomicU64,
}

/// Starts the engine of a data node; it works only while the node leads.
pub fn start(
    context: Arc<MailContext>,
    cluster: Arc<Cluster>,
    nameservers: &[SocketAddr],
    mx_port: u16,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let engine = Arc::new(Engine {
        context,
        cluster,
        router: Router::new(nameservers)?,
        pool: client::ConnectionPool::default(),
        mx_port,
        in_flight: Mutex::new(HashSet::new()),
        resting: Mutex::new(HashMap::new()),
        domains: Mutex::new(HashMap::new()),
        slot_freed: tokio::sync::Notify::new(),
        checked_term: std::sync::atomic::AtomicU64::new(0),
    });
    Ok(tokio::spawn(engine.run()))
}

impl Engine {
    async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = self.context.outbound_wake.notified() => {}
                _ = self.slot_freed.notified() => {}
            }
            self.pool.close_expired().await;
            if !self.cluster.is_leader() {
                continue;
            }
            if let Err(err) = self.dispatch().await {
                tracing::warn!(error = %err, "outbound queue: could not start deliveries");
            }
        }
    }

    /// Starts a task for each due message not already being worked on, up to the policy's
    /// concurrency.
    async fn dispatch(self: &Arc<Self>) -> anyhow::Result<()> {
        let cluster = &self.cluster;
        let policy = cluster.reader.outbound_policy()?;
        let busy = self.in_flight.lock().expect("in-flight lock").len();
        let free = (policy.concurrency as usize).saturating_sub(busy);
        if free == 0 {
            return Ok(());
        }
        let resting = {
            let mut resting = self.resting.lock().expect("resting lock");
            let now = Instant::now();
            resting.retain(|_, until| *until > now);
            resting.len()
        };
        // Enough of the due list to see past what is running or resting.
        let scan = busy + resting + free;
        let startable = |id: &String| {
            !self.in_flight.lock().expect("in-flight lock").contains(id)
                && !self.resting.lock().expect("resting lock").contains_key(id)
        };
        if !cluster
            .reader
            .due(unix_now() as i64, scan)?
            .iter()
            .any(startable)
        {
            return Ok(());
        }
        // A new leader may not have applied everything its predecessor committed: once per
        // term, catch up to a read index before trusting the local queue. (Later results of
        // this term are written by this node, which waits for their apply.)
        let term = cluster.metrics().current_term;
        if self.checked_term.load(Ordering::Acquire) != term {
            cluster.linearize().await?;
            self.checked_term.store(term, Ordering::Release);
        }
        let start: Vec<String> = cluster
            .reader
            .due(unix_now() as i64, scan)?
            .into_iter()
            .filter(startable)
            .take(free)
            .collect();
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        for id in start {
            in_flight.insert(id.clone());
            let engine = self.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                if let Err(err) = engine.work(&id, &policy).await {
                    tracing::warn!(queue_id = %id, error = %err, "outbound delivery step failed; trying again in {REST_AFTER_ERROR:?}");
                    let until = Instant::now() + REST_AFTER_ERROR;
                    engine
                        .resting
                        .lock()
                        .expect("resting lock")
                        .insert(id.clone(), until);
                }
                engine.in_flight.lock().expect("in-flight lock").remove(&id);
                engine.slot_freed.notify_one();
            });
        }
        Ok(())
    }

    /// Everything due for one queued message: notices, then an attempt.
    async fn work(&self, id: &str, policy: &OutboundPolicy) -> anyhow::Result<()> {
        let reader = &self.context.store.state();
        let Some(mut entry) = reader.queued(id)? else {
            return Ok(());
        };
        if entry.held {
            return Ok(());
        }
        if entry.unreported().next().is_some() {
            match self.report_failures(&entry).await? {
                Some(now) => entry = now,
                None => return Ok(()),
            }
        }
        let now = unix_now() as i64;
        if entry.pending().next().is_none() || entry.next_attempt_at > now {
            return Ok(());
        }
        if policy.delay_warning_secs > 0
            && !entry.delay_notified
            && now >= entry.arrived_at + policy.delay_warning_secs as i64
            && dsn::should_bounce(&entry.sender)
        {
            match self.send_delay_notice(&entry, policy).await? {
                Some(now) => entry = now,
                None => return Ok(()),
            }
        }
        if !self.cluster.is_leader() {
            return Ok(());
        }
        let outcomes = self.attempt(&entry, policy).await;
        let attempts = entry.attempts + 1;
        let outcomes = outcomes
            .into_iter()
            .map(|(address, outcome)| match outcome {
                AttemptOutcome::Deferred(error) if attempts >= policy.max_attempts => {
                    (address, AttemptOutcome::Failed(expired(error, attempts)))
                }
                other => (address, other),
            })
            .collect::<Vec<_>>();
        log_outcomes(&entry, &outcomes);
        self.context.metrics.count_outbound(&outcomes);
        let next_attempt_at = unix_now() as i64 + policy.retry_interval_secs as i64;
        let result = self
            .cluster
            .write_ok(Command::RecordAttempt {
                id: id.to_owned(),
                outcomes,
                next_attempt_at,
            })
            .await?;
        if let CommandResult::Queued(Some(entry)) = result
            && entry.unreported().next().is_some()
        {
            self.report_failures(&entry).await?;
        }
        Ok(())
    }

    /// One attempt for every pending recipient, domain by domain in parallel.
    async fn attempt(
        &self,
        entry: &QueuedMessage,
        policy: &OutboundPolicy,
    ) -> Vec<(String, AttemptOutcome)> {
        let pending: Vec<String> = entry.pending().map(|r| r.address.clone()).collect();
        let raw = match self.context.store.read_blob(&entry.blob).await {
            Ok(raw) => raw,
            Err(err) => {
                let error = local_error("4.3.0", &format!("the message could not be read: {err}"));
                return all(&pending, AttemptOutcome::Deferred(error));
            }
        };
        let message = without_return_path(&raw);
        if dsn::too_many_hops(message, MAX_HOPS) {
            let error = local_error(
                "5.4.6",
                &format!("mail loop: more than {MAX_HOPS} Received header fields"),
            );
            return all(&pending, AttemptOutcome::Failed(error));
        }
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for address in pending {
            let domain = address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            by_domain.entry(domain).or_default().push(address);
        }
        let sessions = by_domain.into_iter().map(|(domain, recipients)| {
            self.deliver_domain(domain, recipients, &entry.sender, message, policy)
        });
        futures::future::join_all(sessions)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Delivers to one domain's recipients: its MX hosts, then the smarthost as the policy says.
    async fn deliver_domain(
        &self,
        domain: String,
        recipients: Vec<String>,
        sender: &str,
        message: &[u8],
        policy: &OutboundPolicy,
    ) -> Vec<(String, AttemptOutcome)> {
        let limit = self.domain_slots(&domain, policy.per_domain_concurrency);
        let _slot = limit.acquire_owned().await.expect("never closed");
        let mut outcomes: BTreeMap<String, AttemptOutcome> = BTreeMap::new();
        let helo = self.context.hostname.as_str();
        if policy.smarthost_mode != SmarthostMode::Always {
            match self.router.targets(&domain).await {
                Ok(targets) => {
                    let tls = match policy.tls {
                        OutboundTls::Disabled => TlsPolicy::Disabled,
                        OutboundTls::Opportunistic => TlsPolicy::Opportunistic,
                        OutboundTls::Required => TlsPolicy::Required,
                    };
                    for target in targets {
                        let delivery = self
                            .send(&Attempt {
                                host: &target.host,
                                addresses: &target.addresses,
                                port: self.mx_port,
                                helo,
                                sender,
                                recipients: &recipients,
                                message,
                                tls,
                                credentials: None,
                                timeouts: Timeouts::default(),
                            })
                            .await;
                        outcomes.extend(delivery.outcomes);
                        if !delivery.try_next_host {
                            break;
                        }
                    }
                }
                Err(RouteError::Permanent { status, reason }) => {
                    let error = local_error(status, &format!("{domain}: {reason}"));
                    outcomes.extend(all(&recipients, AttemptOutcome::Failed(error)));
                }
                Err(RouteError::Temporary { status, reason }) => {
                    let error = local_error(status, &format!("{domain}: {reason}"));
                    outcomes.extend(all(&recipients, AttemptOutcome::Deferred(error)));
                }
            }
        }
        let relay: Vec<String> = match policy.smarthost_mode {
            SmarthostMode::Never => Vec::new(),
            SmarthostMode::Always => recipients.clone(),
            SmarthostMode::OnFailure => outcomes
                .iter()
                .filter(|(_, o)| matches!(o, AttemptOutcome::Deferred(_)))
                .map(|(address, _)| address.clone())
                .collect(),
        };
        if !relay.is_empty() {
            outcomes.extend(
                self.via_smarthost(&relay, sender, message, policy, helo)
                    .await,
            );
        }
        // A recipient nothing was tried for (no MX host at all) stays pending.
        recipients
            .into_iter()
            .map(|address| {
                let outcome = outcomes.remove(&address).unwrap_or_else(|| {
                    AttemptOutcome::Deferred(local_error("4.4.4", "no host to deliver to"))
                });
                (address, outcome)
            })
            .collect()
    }

    async fn via_smarthost(
        &self,
        recipients: &[String],
        sender: &str,
        message: &[u8],
        policy: &OutboundPolicy,
        helo: &str,
    ) -> Vec<(String, AttemptOutcome)> {
        let (host, port) = match split_host_port(&policy.smarthost) {
            Some(parts) => parts,
            None => {
                let error = local_error(
                    "4.3.5",
                    &format!("smarthost {:?} is not host:port", policy.smarthost),
                );
                return all(recipients, AttemptOutcome::Deferred(error));
            }
        };
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(err) => {
                    let error = local_error("4.4.3", &format!("smarthost {host}: {err}"));
                    return all(recipients, AttemptOutcome::Deferred(error));
                }
            },
        };
        let credentials = (!policy.smarthost_user.is_empty()).then(|| Credentials {
            user: policy.smarthost_user.clone(),
            password: policy.smarthost_password.clone(),
            allow_plaintext: false,
        });
        let delivery = self
            .send(&Attempt {
                host: &host,
                addresses: &addresses,
                port,
                helo,
                sender,
                recipients,
                message,
                tls: TlsPolicy::Opportunistic,
                credentials: credentials.as_ref(),
                timeouts: Timeouts::default(),
            })
            .await;
        delivery.outcomes
    }

    async fn send(&self, attempt: &Attempt<'_>) -> client::Delivery {
        client::deliver(attempt, Some(&self.pool)).await
    }

    fn domain_slots(&self, domain: &str, limit: u32) -> Arc<Semaphore> {
        let mut domains = self.domains.lock().expect("domain table lock");
        // Idle entries go, so the table does not grow with every domain ever seen.
        domains.retain(|_, slots| Arc::strong_count(slots) > 1);
        domains
            .entry(domain.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1) as usize)))
            .clone()
    }

    /// Reports the unreported failures of `entry` to its sender. Returns the entry as it is
    /// afterwards (None once it is gone).
    async fn report_failures(
        &self,
        entry: &QueuedMessage,
    ) -> anyhow::Result<Option<QueuedMessage>> {
        let failed: Vec<_> = entry.unreported().collect();
        let reports: Vec<RecipientReport<'_>> = failed
            .iter()
            .map(|r| {
                let error = r.last_error.as_ref();
                RecipientReport {
                    address: &r.address,
                    original_recipient: None,
                    action: Action::Failed,
                    status: status_of(error, 5, "5.0.0"),
                    remote_mta: error.and_then(|e| e.remote.as_deref()),
                    diagnostic: error.map(|e| e.diagnostic.as_str()),
                    last_attempt: error.map(|e| e.at),
                    will_retry_until: None,
                }
            })
            .collect();
        // The failure's own time, so a notice rebuilt after a failover is the same message.
        let at = failed
            .iter()
            .filter_map(|r| r.last_error.as_ref().map(|e| e.at))
            .max()
            .unwrap_or(entry.arrived_at);
        let kind = NoticeKind::Failures(failed.iter().map(|r| r.address.clone()).collect());
        let notice_id = format!("{}-B{}", entry.id, entry.attempts);
        self.notify(entry, kind, &notice_id, &reports, at).await
    }

    async fn send_delay_notice(
        &self,
        entry: &QueuedMessage,
        policy: &OutboundPolicy,
    ) -> anyhow::Result<Option<QueuedMessage>> {
        let until =
            entry.arrived_at + policy.retry_interval_secs as i64 * i64::from(policy.max_attempts);
        let reports: Vec<RecipientReport<'_>> = entry
            .pending()
            .map(|r| {
                let error = r.last_error.as_ref();
                RecipientReport {
                    address: &r.address,
                    original_recipient: None,
                    action: Action::Delayed,
                    status: status_of(error, 4, "4.0.0"),
                    remote_mta: error.and_then(|e| e.remote.as_deref()),
                    diagnostic: error.map(|e| e.diagnostic.as_str()),
                    last_attempt: error.map(|e| e.at),
                    will_retry_until: Some(until),
                }
            })
            .collect();
        let at = entry.arrived_at + policy.delay_warning_secs as i64;
        let notice_id = format!("{}-D", entry.id);
        self.notify(entry, NoticeKind::Delay, &notice_id, &reports, at)
            .await
    }

    /// Builds, stores and commits one notice about `entry` to its sender.
    async fn notify(
        &self,
        entry: &QueuedMessage,
        kind: NoticeKind,
        notice_id: &str,
        reports: &[RecipientReport<'_>],
        at: i64,
    ) -> anyhow::Result<Option<QueuedMessage>> {
        let delivery = if dsn::should_bounce(&entry.sender) {
            self.notice_delivery(entry, notice_id, reports, at).await?
        } else {
            None
        };
        raft_store::failpoint::pause("notice-before-commit").await;
        let result = self
            .cluster
            .write_ok(Command::Notify {
                id: entry.id.clone(),
                kind,
                delivery: delivery.map(Box::new),
            })
            .await?;
        Ok(match result {
            CommandResult::Queued(entry) => entry.map(|e| *e),
            _ => None,
        })
    }

    /// The notice as a stored blob and the delivery that puts it where the sender reads mail.
    /// None when the sender is a local address that no longer exists.
    async fn notice_delivery(
        &self,
        entry: &QueuedMessage,
        notice_id: &str,
        reports: &[RecipientReport<'_>],
        at: i64,
    ) -> anyhow::Result<Option<Delivery>> {
        let raw = match self.context.store.read_blob(&entry.blob).await {
            Ok(raw) => raw,
            // The notice still goes out, without the original.
            Err(err) => {
                tracing::warn!(queue_id = %entry.id, error = %err, "original unreadable for its notice");
                Vec::new()
            }
        };
        let hostname = &self.context.hostname;
        let postmaster = format!("MAILER-DAEMON@{hostname}");
        let built = match dsn::build(&Notice {
            reporting_mta: hostname,
            postmaster: &postmaster,
            original: OriginalMessage {
                envelope_sender: &entry.sender,
                raw: without_return_path(&raw),
                arrival: entry.arrived_at,
                envid: entry.envid.as_deref(),
                ret: Some(if entry.ret_full { Ret::Full } else { Ret::Hdrs }),
            },
            recipients: reports,
            now: at,
            max_returned_size: MAX_RETURNED,
        }) {
            Ok(built) => built,
            // Nothing about the message will change: the notice can never be built.
            Err(err) => {
                tracing::warn!(queue_id = %entry.id, sender = %entry.sender, error = %err, "the notice cannot be built; dropped");
                return Ok(None);
            }
        };
        let (recipients, outbound, message) = match self
            .context
            .store
            .resolve(&built.rcpt_to.to_lowercase())?
        {
            Resolved::Local(accounts) => {
                let mut message = b"Return-Path: <>\r\n".to_vec();
                message.extend_from_slice(&built.message);
                (accounts, None, message)
            }
            Resolved::Remote => (
                Vec::new(),
                Some(Outbound {
                    sender: String::new(),
                    recipients: vec![built.rcpt_to.clone()],
                    envid: None,
                    ret_full: false,
                }),
                built.message,
            ),
            Resolved::Unknown => {
                tracing::warn!(queue_id = %entry.id, sender = %entry.sender, "the sender of a failed message is not a local address any more; the notice is dropped");
                return Ok(None);
            }
        };
        let data = Arc::new(message);
        let hash = blob_store::hash(&data);
        let size = data.len() as u64;
        let summary = tokio::task::spawn_blocking({
            let data = data.clone();
            move || raft_store::summary::summarize(&data)
        })
        .await?;
        let stored = self.context.store.store_blob(data, hash).await?;
        Ok(Some(Delivery {
            queue_id: notice_id.to_owned(),
            blob: stored.hash,
            size,
            replicas: stored.replicas,
            missing: stored.missing,
            recipients,
            internal_date: at,
            summary,
            outbound,
        }))
    }
}

fn all(recipients: &[String], outcome: AttemptOutcome) -> Vec<(String, AttemptOutcome)> {
    recipients
        .iter()
        .map(|r| (r.clone(), outcome.clone()))
        .collect()
}

fn local_error(status: &str, diagnostic: &str) -> AttemptError {
    AttemptError {
        status: status.to_owned(),
        diagnostic: diagnostic.to_owned(),
        remote: None,
        at: unix_now() as i64,
    }
}

/// A deferral on the last allowed attempt becomes a permanent failure.
fn expired(last: AttemptError, attempts: u32) -> AttemptError {
    AttemptError {
        status: "5.4.7".to_owned(),
        diagnostic: format!(
            "gave up after {attempts} attempts; last error: {} {}",
            last.status, last.diagnostic
        ),
        remote: last.remote,
        at: last.at,
    }
}

/// The status to report: the last error's when it has the class the action needs.
fn status_of(error: Option<&AttemptError>, class: u8, fallback: &str) -> StatusCode {
    error
        .and_then(|e| e.status.parse::<StatusCode>().ok())
        .filter(|s| s.class() == class)
        .unwrap_or_else(|| fallback.parse().expect("a valid fallback status"))
}

/// The stored message without the `Return-Path:` field SMTP put first for local delivery: an
/// MTA passing a message on must not send one (RFC 5321 section 4.4).
pub fn without_return_path(raw: &[u8]) -> &[u8] {
    if !raw
        .get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"Return-Path:"))
    {
        return raw;
    }
    let mut at = 0;
    loop {
        match raw[at..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                at += i + 1;
                // A folded field goes on while the next line starts with white space.
                if !matches!(raw.get(at), Some(b' ' | b'\t')) {
                    return &raw[at..];
                }
            }
            None => return &raw[raw.len()..],
        }
    }
}

/// `host:port` or `[host]:port` (an IPv6 literal in brackets).
fn split_host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

fn log_outcomes(entry: &QueuedMessage, outcomes: &[(String, AttemptOutcome)]) {
    for (address, outcome) in outcomes {
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::info!(queue_id = %entry.id, to = %address, "relayed");
            }
            AttemptOutcome::Deferred(e) => {
                tracing::info!(queue_id = %entry.id, to = %address, status = %e.status, remote = ?e.remote, error = %e.diagnostic, "deferred");
            }
            AttemptOutcome::Failed(e) => {
                tracing::info!(queue_id = %entry.id, to = %address, status = %e.status, remote = ?e.remote, error = %e.diagnostic, "failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_path_field_is_dropped_with_its_continuation() {
        let raw = b"Return-Path: <a@b.test>\r\nReceived: x\r\n\r\nbody";
        assert_eq!(without_return_path(raw), b"Received: x\r\n\r\nbody");
        let folded = b"return-path:\r\n <a@b.test>\r\nSubject: s\r\n\r\n";
        assert_eq!(without_return_path(folded), b"Subject: s\r\n\r\n");
        let none = b"Subject: Return-Path: no\r\n\r\n";
        assert_eq!(without_return_path(none), none);
    }

    #[test]
    fn smarthosts_are_host_and_port() {
        assert_eq!(
            split_host_port("relay.example.test:587"),
            Some(("relay.example.test".into(), 587))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:25"),
            Some(("2001:db8::1".into(), 25))
        );
        assert_eq!(split_host_port("relay.example.test"), None);
        assert_eq!(split_host_port(":25"), None);
        assert_eq!(split_host_port("relay:0"), None);
    }

    #[test]
    fn a_deferral_on_the_last_attempt_fails_with_the_last_error() {
        let last = AttemptError {
            status: "4.2.1".into(),
            diagnostic: "451 try later".into(),
            remote: Some("mx.remote.test".into()),
            at: 7,
        };
        let failed = expired(last, 16);
        assert_eq!(failed.status, "5.4.7");
        assert_eq!(
            failed.diagnostic,
            "gave up after 16 attempts; last error: 4.2.1 451 try later"
        );
        assert_eq!(failed.remote.as_deref(), Some("mx.remote.test"));
        assert_eq!(status_of(Some(&failed), 5, "5.0.0").to_string(), "5.4.7");
        assert_eq!(status_of(Some(&failed), 4, "4.0.0").to_string(), "4.0.0");
        assert_eq!(status_of(None, 5, "5.0.0").to_string(), "5.0.0");
    }
}
