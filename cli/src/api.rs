//! The admin API as mclusterctl sees it: the JSON shapes of docs/ADMIN_API.md and a blocking
//! HTTP client that tries a cluster's admin URLs in turn.
//!
//! Failover rules: a URL that cannot be reached (refused, unresolvable, connect timeout) is
//! skipped for the next one. A request that may already have reached a node (a timeout or a
//! broken connection after sending) is retried elsewhere only if it is idempotent (GET, PUT,
//! DELETE); a POST fails instead, since the first node may have applied it. An HTTP answer is
//! final, except `503 no_leader`, which is retried (every URL, every 200 ms) for up to 10 s.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ureq::http::{Method, Request, header};

#[cfg(test)]
mod tests;

/// Time allowed to set up a TCP connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed for a whole request, answer body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `POST /v1/members` waits until the new node has caught up.
pub const ADD_MEMBER_TIMEOUT: Duration = Duration::from_secs(120);
/// `GET /v1/node` on each member for `status`: a node that is slow to answer counts as down.
pub const NODE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `503 no_leader` answers are retried.
pub const NO_LEADER_PATIENCE: Duration = Duration::from_secs(10);
const NO_LEADER_RETRY_INTERVAL: Duration = Duration::from_millis(200);
const MAX_ANSWER_BYTES: u64 = 16 << 20;
const MAX_ERROR_TEXT_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

// The replies, and the records they show, are mcluster-types' (the node writes the same types).
pub use mcluster_types::api::{
    AccountView as Account, ClientCert, ClusterStatus, DkimKeyView as DkimKey, ErrorBody,
    FailoverResponse, FeatureView, JoinRequest, JoinResponse, MailStatus, MemberUpgradeView,
    MemberView as Member, NodeStatus, QueueEntry, QueueListing, QueueRecipient, UpgradeStatus,
    VipStatus,
};
use mcluster_types::api::{
    AddMember, Enabled, Failover, NewAccount, NewClientTls, NewDkimKey, NewDomain, NewPassword,
};
pub use mcluster_types::{Domain, Role};

/// TLS that trusts only the cluster CA in `ca_pem` (with the process's one crypto provider).
fn cluster_ca_tls(ca_pem: &str) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
    let ca = Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("read ca-cert-pem: {e}"))?;
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .root_certs(RootCerts::new_with_certs(&[ca]))
        .build())
}

/// The answer to a leave that waits for copies (`202`).
#[derive(Debug, Clone, Deserialize)]
struct Draining {
    blobs_waiting: u64,
}

/// `GET /v1/mail-policy`: limits and behaviour the same on every node. Keys are kebab-case, as
/// `mclusterctl policy set` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MailPolicy {
    pub max_message_bytes: u64,
    pub max_recipients: u32,
    /// "accept" or "refuse"; kept as text so that a newer server value still shows.
    pub degraded_accept: String,
    pub auth_without_tls: bool,
    pub max_connections: u32,
    /// One shared limit on a client address's open connections: servers before the
    /// per-service limits below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<u32>,
    /// Open connections one client address may hold per service (absent from older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_connections_per_ip: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_connections_per_ip: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap_connections_per_ip: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3_connections_per_ip: Option<u32>,
    pub max_errors: u32,
    pub smtp_idle_timeout_secs: u64,
    pub pop3_idle_timeout_secs: u64,
    /// The message limits (absent from servers older than them).
    #[serde(default)]
    pub max_mime_parts: Option<u32>,
    #[serde(default)]
    pub max_mime_depth: Option<u32>,
    #[serde(default)]
    pub max_header_fields: Option<u32>,
    #[serde(default)]
    pub max_header_bytes: Option<u32>,
}

/// An operator's action on a queued message (`POST /v1/queue/{id}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Due now, and released if held.
    Retry,
    Hold,
    Release,
}

impl QueueAction {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueAction::Retry => "retry",
            QueueAction::Hold => "hold",
            QueueAction::Release => "release",
        }
    }
}

/// The signing algorithm of a new DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

impl DkimAlgorithm {
    /// The name the admin API takes.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa-sha256",
            DkimAlgorithm::Ed25519 => "ed25519-sha256",
        }
    }
}

impl FromStr for DkimAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<DkimAlgorithm, String> {
        match s {
            "rsa" | "rsa-sha256" => Ok(DkimAlgorithm::Rsa),
            "ed25519" | "ed25519-sha256" => Ok(DkimAlgorithm::Ed25519),
            _ => Err(format!(
                "unknown DKIM algorithm {s:?}: expected rsa or ed25519"
            )),
        }
    }
}

#[derive(Deserialize)]
struct Updated {
    updated: bool,
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A node answered with an error status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub url: String,
    pub status: u16,
    /// The `code` of the error body, empty if the body was not the documented JSON.
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ApiError {
            url,
            status,
            code,
            message,
        } = self;
        if code.is_empty() {
            write!(f, "{url} answered {status}: {message}")
        } else {
            write!(f, "{url} answered {status} {code}: {message}")
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    fn from_answer(url: &str, status: u16, body: &[u8]) -> ApiError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error, code }) => ApiError {
                url: url.to_owned(),
                status,
                code,
                message: error,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let mut message: String = text.trim().chars().take(MAX_ERROR_TEXT_CHARS).collect();
                if message.is_empty() {
                    message = "(no body)".to_owned();
                }
                ApiError {
                    url: url.to_owned(),
                    status,
                    code: String::new(),
                    message,
                }
            }
        }
    }

    fn is_no_leader(&self) -> bool {
        self.status == 503 && self.code == "no_leader"
    }
}

/// The HTTP status of an error answer anywhere in `err`'s chain.
pub fn error_status(err: &anyhow::Error) -> Option<u16> {
    err.downcast_ref::<ApiError>()
        .map(|api_error| api_error.status)
}

/// No node answered at all.
#[derive(Debug)]
pub struct Unreachable {
    pub attempts: Vec<String>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no admin url answered ({})", self.attempts.join("; "))
    }
}

impl std::error::Error for Unreachable {}

/// Why a request got no HTTP answer.
struct Unanswered {
    error: ureq::Error,
}

impl Unanswered {
    /// Whether the request certainly never reached the node, so any request may go elsewhere.
    fn surely_not_sent(&self) -> bool {
        use std::io::ErrorKind;
        match &self.error {
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed => true,
            ureq::Error::Io(io) => matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NotConnected
            ),
            _ => false,
        }
    }

    /// Whether the failure is about reaching the node at all (as opposed to, say, a bad URL).
    fn is_transport(&self) -> bool {
        matches!(
            self.error,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::HostNotFound
                | ureq::Error::ConnectionFailed
                | ureq::Error::Protocol(_)
        )
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            ureq::Error::Timeout(timeout) => write!(f, "timed out ({timeout})"),
            error => write!(f, "{error}"),
        }
    }
}

fn is_idempotent(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::PUT, Method::DELETE].contains(method)
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A blocking admin API client for one cluster. Cheap to share between threads.
pub struct Client {
    agent: ureq::Agent,
    urls: Vec<String>,
    token: String,
    no_leader_patience: Duration,
    /// Index of the URL that answered last; later requests start there.
    preferred: AtomicUsize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("urls", &self.urls)
            .field("token", &"[elided]")
            .finish()
    }
}

impl Client {
    /// A client that tries `urls` (`http://host:port` or `https://host:port`) in order and
    /// presents `token`. An `https://` URL's certificate must chain to `ca_pem`, the cluster CA.
    pub fn new(
        urls: Vec<String>,
        token: impl Into<String>,
        ca_pem: Option<&str>,
    ) -> Result<Client> {
        if urls.is_empty() {
            bail!("no admin urls to try (add some to the client config's admin-urls)");
        }
        let urls: Vec<String> = urls
            .into_iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect();
        let tls = if urls.iter().any(|url| url.starts_with("https://")) {
            let pem = ca_pem.context(
                "the admin URLs use https://, and the client config has no ca-cert-pem (the \
                 cluster CA: ca.crt in the directory mclusterctl init wrote)",
            )?;
            cluster_ca_tls(pem)?
        } else {
            ureq::tls::TlsConfig::default()
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_redirects(0)
            // The admin API lives on the cluster's own network; an HTTP proxy from the
            // environment would only get in the way.
            .proxy(None)
            .user_agent(concat!("mclusterctl/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            urls,
            token: token.into(),
            no_leader_patience: NO_LEADER_PATIENCE,
            preferred: AtomicUsize::new(0),
        })
    }

    /// Sets how long `503 no_leader` answers are retried (zero: not at all).
    pub fn with_no_leader_patience(mut self, patience: Duration) -> Client {
        self.no_leader_patience = patience;
        self
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The admin URL of a node's admin address, in the scheme this client speaks (`https://`
    /// once any of its URLs does).
    pub fn url_of(&self, admin_addr: &str) -> String {
        crate::client_config::url_in_scheme_of(&self.urls, admin_addr)
    }

    // Routes, in the order of docs/ADMIN_API.md.

    /// `GET /v1/node` from the first node that answers.
    pub fn node(&self) -> Result<NodeStatus> {
        self.get("/v1/node")
    }

    /// `GET /v1/node` from one node only, with its own timeout.
    pub fn node_at(&self, base_url: &str, timeout: Duration) -> Result<NodeStatus> {
        let path = "/v1/node";
        let base_url = base_url.trim_end_matches('/');
        match self.send_once(base_url, &Method::GET, path, None, timeout) {
            Ok(body) => decode(&body, &Method::GET, path, base_url),
            Err(Attempt::Answered(api_error)) => Err(api_error.into()),
            Err(Attempt::Unanswered(unanswered)) => {
                bail!("{base_url}: {unanswered}")
            }
        }
    }

    pub fn status(&self) -> Result<ClusterStatus> {
        self.get("/v1/status")
    }

    pub fn members(&self) -> Result<Vec<Member>> {
        self.get("/v1/members")
    }

    /// `POST /v1/join` (join token).
    pub fn join(&self, join_request: &JoinRequest) -> Result<JoinResponse> {
        self.post("/v1/join", join_request, REQUEST_TIMEOUT)
    }

    /// `POST /v1/members`: waits (up to two minutes) until the node is a caught-up voter.
    pub fn add_member(&self, node_id: u64) -> Result<Member> {
        self.post(
            "/v1/members",
            &AddMember {
                node_id,
                build: None,
            },
            ADD_MEMBER_TIMEOUT,
        )
    }

    /// `DELETE /v1/members/{id}`; `force` removes a data node whose copies no other data node
    /// can take.
    /// `DELETE /v1/members/{id}`: None once the node is removed; `Some(n)` while a data node
    /// that leaves still has `n` blobs without two copies on other data nodes (the cluster is
    /// making them: ask again).
    pub fn remove_member(&self, node_id: u64, force: bool) -> Result<Option<u64>> {
        let force = if force { "?force=true" } else { "" };
        let path = format!("/v1/members/{node_id}{force}");
        let (url, body) = self.exchange(&Method::DELETE, &path, None, REQUEST_TIMEOUT)?;
        if body.is_empty() {
            return Ok(None);
        }
        let draining: Draining = decode(&body, &Method::DELETE, &path, &url)?;
        Ok(Some(draining.blobs_waiting))
    }

    /// `POST /v1/failover`; answers the new leader's id.
    pub fn failover(&self, to: Option<u64>) -> Result<u64> {
        let answer: FailoverResponse =
            self.post("/v1/failover", &Failover { to }, REQUEST_TIMEOUT)?;
        Ok(answer.leader)
    }

    pub fn domains(&self) -> Result<Vec<Domain>> {
        self.get("/v1/domains")
    }

    pub fn add_domain(&self, name: &str) -> Result<Domain> {
        self.post(
            "/v1/domains",
            &NewDomain {
                name: name.to_owned(),
            },
            REQUEST_TIMEOUT,
        )
    }

    pub fn domain(&self, name: &str) -> Result<Domain> {
        self.get(&format!("/v1/domains/{}", encode_component(name)))
    }

    pub fn delete_domain(&self, name: &str) -> Result<()> {
        self.delete(&format!("/v1/domains/{}", encode_component(name)))
    }

    /// `GET /v1/accounts`, all of them or those of one domain.
    pub fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        match domain {
            Some(domain) => self.get(&format!("/v1/accounts?domain={}", encode_component(domain))),
            None => self.get("/v1/accounts"),
        }
    }

    pub fn add_account(&self, address: &str, password: &str, quota_mb: u64) -> Result<Account> {
        let new_account = NewAccount {
            address: address.to_owned(),
            password: password.to_owned(),
            quota_mb: Some(quota_mb),
        };
        self.post("/v1/accounts", &new_account, REQUEST_TIMEOUT)
    }

    pub fn account(&self, address: &str) -> Result<Account> {
        self.get(&format!("/v1/accounts/{}", encode_component(address)))
    }

    pub fn delete_account(&self, address: &str) -> Result<()> {
        self.delete(&format!("/v1/accounts/{}", encode_component(address)))
    }

    pub fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let path = format!("/v1/accounts/{}/password", encode_component(address));
        self.put(
            &path,
            &NewPassword {
                password: password.to_owned(),
            },
        )
    }

    pub fn set_enabled(&self, address: &str, enabled: bool) -> Result<()> {
        let path = format!("/v1/accounts/{}/enabled", encode_component(address));
        self.put(&path, &Enabled { enabled })
    }

    /// `GET /v1/tls` (`404` when none is set).
    pub fn client_cert(&self) -> Result<ClientCert> {
        self.get("/v1/tls")
    }

    /// `PUT /v1/tls`: the node checks that the chain and key make a usable server certificate.
    pub fn set_client_tls(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        let answer: Updated = self.put_answer(
            "/v1/tls",
            &NewClientTls {
                cert_pem: cert_pem.to_owned(),
                key_pem: key_pem.to_owned(),
            },
        )?;
        if !answer.updated {
            bail!("PUT /v1/tls answered updated: false");
        }
        Ok(())
    }

    pub fn mail_policy(&self) -> Result<MailPolicy> {
        self.get("/v1/mail-policy")
    }

    /// `PUT /v1/mail-policy` with some of the policy's keys; answers the whole new policy.
    pub fn set_mail_policy(
        &self,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<MailPolicy> {
        self.put_answer("/v1/mail-policy", changes)
    }

    /// `GET /v1/queue`: up to `limit` entries after queue id `after`, and the queue's total.
    pub fn queue(&self, after: Option<&str>, limit: u32) -> Result<QueueListing> {
        let mut path = format!("/v1/queue?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={}", encode_component(after)));
        }
        self.get(&path)
    }

    /// `GET /v1/queue/{id}` (`404` when no such message is queued).
    pub fn queued(&self, id: &str) -> Result<QueueEntry> {
        self.get(&format!("/v1/queue/{}", encode_component(id)))
    }

    /// `POST /v1/queue/{id}/{action}`: the entry afterwards, or `None` when it is gone (nothing
    /// was left to deliver or report).
    pub fn queue_act(&self, id: &str, action: QueueAction) -> Result<Option<QueueEntry>> {
        let path = format!("/v1/queue/{}/{}", encode_component(id), action.as_str());
        let (url, answer) = self.exchange(&Method::POST, &path, None, REQUEST_TIMEOUT)?;
        if answer.is_empty() {
            return Ok(None);
        }
        decode(&answer, &Method::POST, &path, &url).map(Some)
    }

    /// `DELETE /v1/queue/{id}`: removed without a report to the sender.
    pub fn delete_queued(&self, id: &str) -> Result<()> {
        self.delete(&format!("/v1/queue/{}", encode_component(id)))
    }

    /// `GET /v1/dkim`: every domain's DKIM key.
    pub fn dkim_keys(&self) -> Result<Vec<DkimKey>> {
        self.get("/v1/dkim")
    }

    /// `GET /v1/domains/{domain}/dkim` (`404` when the domain has no key).
    pub fn dkim_key(&self, domain: &str) -> Result<DkimKey> {
        self.get(&format!("/v1/domains/{}/dkim", encode_component(domain)))
    }

    /// `PUT /v1/domains/{domain}/dkim`: the cluster makes a key (`private_key_pem` None) or
    /// checks the given one, and replaces the domain's key with it. The server picks the
    /// selector and algorithm left out.
    pub fn set_dkim_key(
        &self,
        domain: &str,
        selector: Option<&str>,
        algorithm: Option<DkimAlgorithm>,
        private_key_pem: Option<&str>,
    ) -> Result<DkimKey> {
        let path = format!("/v1/domains/{}/dkim", encode_component(domain));
        let new_key = NewDkimKey {
            selector: selector.map(str::to_owned),
            algorithm: algorithm.map(|a| match a {
                DkimAlgorithm::Rsa => mcluster_types::DkimAlgorithm::RsaSha256,
                DkimAlgorithm::Ed25519 => mcluster_types::DkimAlgorithm::Ed25519Sha256,
            }),
            private_key_pem: private_key_pem.map(str::to_owned),
        };
        self.put_answer(&path, &new_key)
    }

    /// `DELETE /v1/domains/{domain}/dkim`: the domain's mail goes out unsigned.
    pub fn delete_dkim_key(&self, domain: &str) -> Result<()> {
        self.delete(&format!("/v1/domains/{}/dkim", encode_component(domain)))
    }

    // Generic requests.

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let (url, body) = self.exchange(&Method::GET, path, None, REQUEST_TIMEOUT)?;
        decode(&body, &Method::GET, path, &url)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T> {
        let body = serde_json::to_vec(body).context("encode request body")?;
        let (url, answer) = self.exchange(&Method::POST, path, Some(&body), timeout)?;
        decode(&answer, &Method::POST, path, &url)
    }

    /// A PUT whose success answer has no body worth reading (`204`).
    pub fn put<B: Serialize>(&self, path: &str, body: &B) -> Result<()> {
        let body = serde_json::to_vec(body).context("encode request body")?;
        self.exchange(&Method::PUT, path, Some(&body), REQUEST_TIMEOUT)?;
        Ok(())
    }

    /// A PUT whose success answer is JSON to decode.
    pub fn put_answer<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let body = serde_json::to_vec(body).context("encode request body")?;
        let (url, answer) = self.exchange(&Method::PUT, path, Some(&body), REQUEST_TIMEOUT)?;
        decode(&answer, &Method::PUT, path, &url)
    }

    /// A DELETE whose success answer has no body worth reading (`204`).
    pub fn delete(&self, path: &str) -> Result<()> {
        self.exchange(&Method::DELETE, path, None, REQUEST_TIMEOUT)?;
        Ok(())
    }

    /// Sends the request to the URLs in turn (see the module docs) and returns the URL that
    /// answered with a success status and the answer's body.
    fn exchange(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<(String, Vec<u8>)> {
        let deadline = Instant::now() + self.no_leader_patience;
        let n_urls = self.urls.len();
        loop {
            let start = self.preferred.load(Ordering::Relaxed) % n_urls;
            let mut attempts = Vec::new();
            let mut no_leader = None;
            for offset in 0..n_urls {
                let index = (start + offset) % n_urls;
                let url = &self.urls[index];
                match self.send_once(url, method, path, body, timeout) {
                    Ok(answer) => {
                        self.preferred.store(index, Ordering::Relaxed);
                        return Ok((url.clone(), answer));
                    }
                    Err(Attempt::Answered(api_error)) if api_error.is_no_leader() => {
                        no_leader = Some(api_error);
                    }
                    Err(Attempt::Answered(api_error)) => {
                        return Err(anyhow::Error::new(api_error))
                            .with_context(|| format!("{method} {path}"));
                    }
                    Err(Attempt::Unanswered(unanswered))
                        if unanswered.surely_not_sent()
                            || (unanswered.is_transport() && is_idempotent(method)) =>
                    {
                        attempts.push(format!("{url}: {unanswered}"));
                    }
                    Err(Attempt::Unanswered(unanswered)) if unanswered.is_transport() => {
                        bail!(
                            "{method} {path} to {url}: {unanswered}; the cluster may or may not \
                             have applied it, check before retrying"
                        );
                    }
                    Err(Attempt::Unanswered(unanswered)) => {
                        bail!("{method} {path} to {url}: {unanswered}");
                    }
                }
            }
            match no_leader {
                Some(_) if Instant::now() + NO_LEADER_RETRY_INTERVAL < deadline => {
                    std::thread::sleep(NO_LEADER_RETRY_INTERVAL);
                }
                Some(api_error) => {
                    return Err(anyhow::Error::new(api_error))
                        .with_context(|| format!("{method} {path}: the cluster has no leader"));
                }
                None => {
                    return Err(anyhow::Error::new(Unreachable { attempts }))
                        .with_context(|| format!("{method} {path}"));
                }
            }
        }
    }

    /// One request to one URL. `Ok` only for a 2xx answer.
    fn send_once(
        &self,
        base_url: &str,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Attempt> {
        let url = format!("{base_url}{path}");
        let builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::ACCEPT, "application/json");
        let sent = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .map_err(ureq::Error::from)
                .and_then(|request| self.run(request, timeout)),
            None => builder
                .body(())
                .map_err(ureq::Error::from)
                .and_then(|request| self.run(request, timeout)),
        };
        let response = sent.map_err(|error| Attempt::Unanswered(Unanswered { error }))?;
        let status = response.status().as_u16();
        let answer = response
            .into_body()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|error| Attempt::Unanswered(Unanswered { error }))?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(Attempt::Answered(ApiError::from_answer(
                base_url, status, &answer,
            )))
        }
    }

    fn run<S: ureq::AsSendBody>(
        &self,
        request: Request<S>,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        self.agent.run(request)
    }
}

enum Attempt {
    Answered(ApiError),
    Unanswered(Unanswered),
}

fn decode<T: DeserializeOwned>(body: &[u8], method: &Method, path: &str, url: &str) -> Result<T> {
    serde_json::from_slice(body)
        .with_context(|| format!("decode the answer to {method} {path} from {url}"))
}

/// Percent-encodes a path segment or query value: everything but unreserved characters and `@`.
pub fn encode_component(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            write!(out, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}
