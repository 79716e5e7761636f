//! The admin HTTP API (see docs/ADMIN_API.md): token auth, cluster and member management,
//! domains and their DKIM keys, accounts and aliases, plus /health, /ready and /metrics. Errors
//! map to HTTP here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use raft_store::api::{
    AccountView, AddMember, ClientCert, ClusterStatus, Enabled, ErrorBody, Failover,
    FailoverResponse, JoinRequest, JoinResponse, MailPolicyView, MailStatus, MemberView,
    NewAccount, NewClientTls, NewDomain, NewPassword, NodeStatus,
};
use raft_store::{
    Account, Alias, Command, CommandResult, Domain, Member, MemberBuild, NodeId, Rejection, Role,
    TokenKind,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clock::unix_now;
use crate::cluster::{Cluster, ClusterError};
use crate::metrics::Metrics;

pub mod access_lists;
pub mod dkim;
pub mod names;
pub mod outbound_policy;
pub mod protection;
pub mod queue;
pub mod upgrade;

#[cfg(test)]
mod tests;

/// What the API shows of a data node's mail services.
pub struct MailState {
    pub context: Arc<crate::mail_service::MailContext>,
    pub blobs: Arc<crate::blobs::Blobs>,
}

pub struct ApiState {
    /// The mail services (data nodes only).
    pub mail: Option<MailState>,
    pub cluster: Arc<Cluster>,
    pub metrics: Arc<Metrics>,
    /// Set when the leader tells this node it was removed from the cluster (`leave`).
    pub removed: tokio::sync::watch::Sender<bool>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/node", get(node_status))
        .route("/v1/node/removed", post(node_removed))
        .route("/v1/status", get(cluster_status))
        .route("/v1/digest", get(state_digest))
        .route("/v1/members", get(list_members).post(add_member))
        .route("/v1/members/{id}", axum::routing::delete(remove_member))
        .route("/v1/failover", post(failover))
        .route("/v1/join", post(join))
        .route("/v1/tokens/{kind}", put(rotate_token))
        .route("/v1/domains", get(list_domains).post(add_domain))
        .route("/v1/domains/{name}", get(show_domain).delete(delete_domain))
        .route(
            "/v1/domains/{name}/dkim",
            get(dkim::show).put(dkim::set).delete(dkim::delete),
        )
        .route("/v1/dkim", get(dkim::list))
        .route("/v1/accounts", get(list_accounts).post(add_account))
        .route(
            "/v1/accounts/{address}",
            get(show_account).delete(delete_account),
        )
        .route("/v1/accounts/{address}/password", put(set_password))
        .route("/v1/accounts/{address}/enabled", put(set_enabled))
        .route("/v1/aliases", get(list_aliases).post(add_alias))
        .route("/v1/aliases/{address}", axum::routing::delete(delete_alias))
        .route("/v1/tls", get(show_tls).put(set_tls))
        .route(
            "/v1/mail-policy",
            get(show_mail_policy).put(set_mail_policy),
        )
        .route(
            "/v1/outbound-policy",
            get(outbound_policy::show).put(outbound_policy::set),
        )
        .route(
            "/v1/protection-policy",
            get(protection::show_policy).put(protection::set_policy),
        )
        .route(
            "/v1/lockouts",
            get(protection::list_lockouts).post(protection::add_lockout),
        )
        .route(
            "/v1/lockouts/{target}",
            axum::routing::delete(protection::delete_lockout),
        )
        .route(
            "/v1/access-lists",
            get(access_lists::list).post(access_lists::add),
        )
        .route(
            "/v1/access-lists/{list}/{*pattern}",
            axum::routing::delete(access_lists::remove),
        )
        .route("/v1/queue", get(queue::list))
        .route("/v1/queue/{id}", get(queue::show).delete(queue::delete))
        .route("/v1/queue/{id}/{action}", post(queue::act))
        .route("/v1/upgrade", get(upgrade::status))
        .route("/v1/upgrade/finalize", post(upgrade::finalize))
        .layer(middleware::from_fn_with_state(state.clone(), require_https))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state.metrics.count_http(response.status().as_u16());
    response
}

/// Once the cluster takes HTTPS only, a request that came over plain HTTP is answered
/// `426 Upgrade Required`, unless this node is set to keep plain HTTP on its loopback admin
/// address (`admin-plain-http`). A request without connection info (none comes that way from
/// the listener) counts as plain.
async fn require_https(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let tls = request
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::admin_tls::AdminPeer>>()
        .is_some_and(|axum::extract::ConnectInfo(peer)| peer.tls);
    if tls || state.cluster.config.admin_plain_http || !https_only(&state.cluster) {
        return next.run(request).await;
    }
    let addr = state.cluster.config.admin_addr;
    let mut response = ApiError::new(
        StatusCode::UPGRADE_REQUIRED,
        "https_only",
        format!(
            "this cluster's admin API takes HTTPS only: use https://{addr} with the cluster CA \
             (a client config made by an older mclusterctl init: run `mclusterctl client-config \
             use-https --ca-cert ca.crt` with the cluster's ca.crt, from the init directory or \
             any node's directory)"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::UPGRADE, header::HeaderValue::from_static("TLS/1.3"));
    response
}

/// Whether the cluster runs a version that takes the admin API over HTTPS only. A node that
/// cannot read its store answers as if it did (refusing plain HTTP is the safe side).
pub(crate) fn https_only(cluster: &Cluster) -> bool {
    cluster.reader.cluster_version().map_or(true, |version| {
        raft_store::version::active(raft_store::version::Feature::AdminHttpsOnly, version)
    })
}

/// An error answer: `{"error": ..., "code": ...}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
                code: self.code.to_owned(),
            }),
        )
            .into_response()
    }
}

impl From<ClusterError> for ApiError {
    fn from(err: ClusterError) -> ApiError {
        let message = err.to_string();
        match err {
            ClusterError::NoLeader => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_leader", message)
            }
            ClusterError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            ClusterError::NotFound(_) => ApiError::not_found(message),
            ClusterError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ClusterError::Rejected(rejection) => match rejection {
                Rejection::NoSuchDomain(_)
                | Rejection::NoSuchAccount(_)
                | Rejection::NoSuchAlias(_)
                | Rejection::NoSuchMailbox(_)
                | Rejection::NotQueued(_)
                | Rejection::NoDkimKey(_)
                | Rejection::NoLockout(_)
                | Rejection::NoAccessEntry(_) => ApiError::not_found(message),
                Rejection::DomainExists(_)
                | Rejection::AddressExists(_)
                | Rejection::MailboxExists(_)
                | Rejection::AlreadyInitialized => {
                    ApiError::new(StatusCode::CONFLICT, "exists", message)
                }
                Rejection::MemberClash(_) => ApiError::new(StatusCode::CONFLICT, "exists", message),
                Rejection::DomainNotEmpty(_) => {
                    ApiError::new(StatusCode::CONFLICT, "not_empty", message)
                }
                Rejection::InvalidAddress(_) | Rejection::InvalidMailboxName(_) => {
                    ApiError::bad_request(message)
                }
                Rejection::MessageTooComplex => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too_complex", message)
                }
                Rejection::ApplyFailed => ApiError::internal(message),
                Rejection::NotInitialized => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
                }
                Rejection::NotActive(_) => {
                    ApiError::new(StatusCode::CONFLICT, "not_active", message)
                }
                Rejection::ClusterVersion(_) => {
                    ApiError::new(StatusCode::CONFLICT, "cluster_version", message)
                }
            },
            ClusterError::NotActive(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_active", message)
            }
            ClusterError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
        }
    }
}

impl From<raft_store::StoreError> for ApiError {
    fn from(err: raft_store::StoreError) -> ApiError {
        tracing::error!(error = %err, "state machine read failed");
        ApiError::internal(err.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Which tokens a route accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Admin,
    AdminOrJoin,
    /// A `GET`: the admin token, or the read-only one.
    Read,
}

fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The state of a route only the admin token opens: taking it as a handler argument checks the
/// token first (401 without it), so a handler cannot forget to.
pub(crate) struct Admin(pub(crate) Arc<ApiState>);

impl axum::extract::FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ApiState>,
    ) -> Result<Admin, ApiError> {
        let access = if parts.method == Method::GET {
            Access::Read
        } else {
            Access::Admin
        };
        authorize(&state.cluster, &parts.headers, access)?;
        Ok(Admin(state.clone()))
    }
}

/// Like [`Admin`], and this node has applied everything committed before the request came (a
/// linearizable read, `Cluster::linearize`), so what the handler reads is current.
pub(crate) struct Current(pub(crate) Arc<ApiState>);

impl axum::extract::FromRequestParts<Arc<ApiState>> for Current {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ApiState>,
    ) -> Result<Current, ApiError> {
        let Admin(state) = Admin::from_request_parts(parts, state).await?;
        state.cluster.linearize().await?;
        Ok(Current(state))
    }
}

fn authorize(cluster: &Cluster, headers: &HeaderMap, access: Access) -> ApiResult<()> {
    let Some(settings) = cluster.reader.cluster_settings()? else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "this node has not received the cluster settings yet",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let read_only = cluster.reader.read_only_token_sha256()?;
    match token_accepted(&settings, read_only.as_deref(), presented, access) {
        Verdict::Accepted => Ok(()),
        Verdict::ReadOnly => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this token may only read (GET); changes need the admin token",
        )),
        Verdict::Refused => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token",
        )),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    /// The read-only token, presented for a change.
    ReadOnly,
    Refused,
}

fn token_accepted(
    settings: &raft_store::ClusterSettings,
    read_only_sha256: Option<&str>,
    presented: Option<&str>,
    access: Access,
) -> Verdict {
    let Some(digest) = presented.map(token_digest) else {
        return Verdict::Refused;
    };
    if digest == settings.admin_token_sha256
        || (access == Access::AdminOrJoin && digest == settings.join_token_sha256)
    {
        return Verdict::Accepted;
    }
    match read_only_sha256 {
        Some(read_only) if digest == read_only && access == Access::Read => Verdict::Accepted,
        Some(read_only) if digest == read_only => Verdict::ReadOnly,
        _ => Verdict::Refused,
    }
}

#[derive(Deserialize)]
struct NewTokenDigest {
    /// SHA-256 (64 lowercase hex digits) of the new token; the token itself never travels.
    sha256: String,
}

/// `PUT /v1/tokens/{admin|join}`: from now on the cluster accepts only the token with this
/// digest in that role (`mclusterctl token rotate`).
async fn rotate_token(
    Admin(state): Admin,
    Path(kind): Path<String>,
    Json(body): Json<NewTokenDigest>,
) -> ApiResult<StatusCode> {
    let cluster = &state.cluster;
    let token = match kind.as_str() {
        "admin" => TokenKind::Admin,
        "join" => TokenKind::Join,
        "read-only" => TokenKind::ReadOnly,
        other => {
            return Err(ApiError::not_found(format!(
                "no token {other:?}: admin, join or read-only"
            )));
        }
    };
    if !is_sha256_hex(&body.sha256) {
        return Err(ApiError::bad_request(
            "sha256 must be 64 lowercase hex digits",
        ));
    }
    cluster
        .write_ok(Command::SetTokenDigest {
            token,
            sha256: body.sha256,
        })
        .await?;
    tracing::info!(token = %token, "token rotated");
    Ok(StatusCode::NO_CONTENT)
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(state): State<Arc<ApiState>>) -> Response {
    let metrics = state.cluster.metrics();
    let caught_up = metrics.last_applied.as_ref().map(|l| l.index)
        >= metrics.cluster_committed.as_ref().map(|l| l.index);
    let configured = matches!(state.cluster.reader.cluster_settings(), Ok(Some(_)));
    if metrics.current_leader.is_some() && caught_up && configured {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let mut text = state.metrics.render(&state.cluster);
    if let Some(mail) = &state.mail {
        text.push_str(
            &state
                .metrics
                .render_mail(&mail.context, &mail.blobs, &state.cluster),
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[derive(Serialize)]
pub struct DigestView {
    node_id: NodeId,
    applied_index: Option<u64>,
    digest: String,
}

/// A digest of this node's state machine: nodes at the same applied index must agree.
async fn state_digest(Admin(state): Admin) -> ApiResult<Json<DigestView>> {
    let cluster = &state.cluster;
    let reader = cluster.reader.clone();
    let digest = tokio::task::spawn_blocking(move || reader.digest())
        .await
        .map_err(|e| ApiError::internal(format!("digest task: {e}")))??;
    Ok(Json(DigestView {
        node_id: cluster.config.node_id,
        applied_index: digest.applied_index,
        digest: hex::encode(digest.sha256),
    }))
}

fn mail_status(state: &ApiState) -> ApiResult<Option<MailStatus>> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(mail) = &state.mail else {
        return Ok(None);
    };
    let b = &mail.blobs.metrics;
    let m = &mail.context.metrics;
    Ok(Some(MailStatus {
        degraded: b.degraded.load(Relaxed),
        blobs_missing: state
            .cluster
            .reader
            .missing_blob_count(state.cluster.config.node_id)?,
        blobs_stored: b.stored.load(Relaxed),
        blobs_mirrored: b.mirrored.load(Relaxed),
        degraded_accepts: b.degraded_accepts.load(Relaxed),
        mirror_failures: b.mirror_failures.load(Relaxed),
        resync_fetched: b.resync_fetched.load(Relaxed),
        resync_failures: b.resync_failures.load(Relaxed),
        gc_removed: b.gc_removed.load(Relaxed),
        messages_accepted: m.messages_accepted.load(Relaxed),
        smtp_sessions: m.smtp_sessions.load(Relaxed),
        pop3_sessions: m.pop3_sessions.load(Relaxed),
        imap_sessions: m.imap_sessions.load(Relaxed),
    }))
}

async fn node_status(Admin(state): Admin) -> ApiResult<Json<NodeStatus>> {
    let cluster = &state.cluster;
    let m = cluster.metrics();
    Ok(Json(NodeStatus {
        node_id: cluster.config.node_id,
        name: cluster.config.name.clone(),
        role: cluster.config.role,
        state: format!("{:?}", m.state),
        term: m.current_term,
        leader_id: m.current_leader,
        last_log_index: m.last_log_index,
        committed_index: m.local_committed.as_ref().map(|l| l.index),
        applied_index: m.last_applied.as_ref().map(|l| l.index),
        snapshot_index: m.snapshot.as_ref().map(|l| l.index),
        purged_index: m.purged.as_ref().map(|l| l.index),
        mail: mail_status(&state)?,
        vip: cluster.vip.view(),
    }))
}

async fn cluster_status(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let cluster = &state.cluster;
    if let Err(err) = authorize(cluster, &headers, Access::Read) {
        return err.into_response();
    }
    // Only the leader knows which members answer its heartbeats.
    if !cluster.is_leader() {
        return proxy_to_leader(cluster, Method::GET, "/v1/status".into(), &headers, None).await;
    }
    match leader_status(cluster).await {
        Ok(status) => Json(status).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn leader_status(cluster: &Cluster) -> ApiResult<ClusterStatus> {
    cluster.linearize().await?;
    let settings = cluster.reader.cluster_settings()?;
    let m = cluster.metrics();
    let members = cluster.members();
    let missing = cluster.reader.missing_blob_counts()?;
    let data_voters = members
        .iter()
        .filter(|m| m.voter && m.role == Role::Data)
        .count();
    let blobs_missing = members
        .iter()
        .filter(|m| m.role == Role::Data)
        .map(|m| (m.node_id, missing.get(&m.node_id).copied().unwrap_or(0)))
        .collect();
    // Members that have left the leader's requests unanswered for an election timeout.
    let silence_limit = cluster.unreachable_after();
    let unreachable: Vec<NodeId> = members
        .iter()
        .filter(|m| m.node_id != cluster.config.node_id)
        .filter(|m| {
            cluster
                .raft_silence(m.node_id)
                .is_some_and(|silence| silence > silence_limit)
        })
        .map(|m| m.node_id)
        .collect();
    // Blobs that still name a replica which left the cluster (the leader moves them to a data
    // voter that is not a replica yet; until then they have at most one live copy).
    let member_ids: std::collections::BTreeSet<NodeId> =
        members.iter().map(|m| m.node_id).collect();
    let reader = cluster.reader.clone();
    // One pass over the blob records (proportional to the mail held; on a blocking thread).
    let census = tokio::task::spawn_blocking(move || reader.misplaced_blobs(&member_ids, 0))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let misplaced = census.total;
    // What each data member must hold (it holds that minus what it misses).
    let blobs_assigned = members
        .iter()
        .filter(|m| m.role == Role::Data)
        .map(|m| {
            (
                m.node_id,
                census.per_replica.get(&m.node_id).copied().unwrap_or(0),
            )
        })
        .collect();
    // Redundant: at least two data voters, all of them answering, none of them missing a blob
    // it must hold, and no blob naming a replica that left.
    let redundant = data_voters >= 2
        && misplaced == 0
        && missing.values().all(|n| *n == 0)
        && !members
            .iter()
            .any(|m| m.role == Role::Data && unreachable.contains(&m.node_id));
    Ok(ClusterStatus {
        cluster_name: settings.map(|s| s.cluster_name).unwrap_or_default(),
        leader_id: m.current_leader,
        term: m.current_term,
        members,
        blobs_missing,
        blobs_assigned,
        unreachable,
        blobs_misplaced: misplaced,
        redundant: Some(redundant),
    })
}

async fn list_members(Current(state): Current) -> ApiResult<Json<Vec<MemberView>>> {
    Ok(Json(state.cluster.members()))
}

async fn add_member(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Json(body): Json<AddMember>,
) -> Response {
    let cluster = &state.cluster;
    if let Err(err) = authorize(cluster, &headers, Access::AdminOrJoin) {
        return err.into_response();
    }
    if !cluster.is_leader() {
        return proxy_to_leader(
            cluster,
            Method::POST,
            "/v1/members".into(),
            &headers,
            Some(json!(body)),
        )
        .await;
    }
    let node_id = body.node_id;
    if let Some(build) = &body.build
        && let Err(err) = check_joiner(cluster, node_id, build).await
    {
        return err.into_response();
    }
    let member = match cluster.add_member(node_id).await {
        Ok(member) => member,
        Err(err) => return ApiError::from(err).into_response(),
    };
    // The cluster version may have risen between the check and the learner entry (a finalize
    // in between, counting only the members of then): checked again now that the node counts,
    // and a node that cannot run it goes again.
    if let Some(build) = &body.build
        && let Err(err) = check_joiner(cluster, node_id, build).await
    {
        tracing::warn!(node_id, error = ?err, "a joined node cannot run the cluster version: removing it");
        if let Err(remove) = cluster.remove_member(node_id).await {
            tracing::error!(node_id, error = %remove, "could not remove the node that cannot run the cluster version");
        }
        return err.into_response();
    }
    Json(member_view(node_id, member, true)).into_response()
}

/// A node whose build cannot run the active cluster version does not become a member.
async fn check_joiner(cluster: &Cluster, node_id: NodeId, build: &MemberBuild) -> ApiResult<()> {
    if build.node_id != node_id {
        return Err(ApiError::bad_request(format!(
            "the build report is for node {}, not node {node_id}",
            build.node_id
        )));
    }
    cluster.linearize().await?;
    let active = cluster.reader.cluster_version()?;
    let members = cluster.reader.member_builds()?;
    crate::versions::check_joiner(build, active, &members)
        .map_err(|why| ApiError::new(StatusCode::CONFLICT, "cluster_version", why))
}

fn member_view(node_id: NodeId, member: Member, voter: bool) -> MemberView {
    MemberView {
        node_id,
        name: member.name,
        role: member.role,
        voter,
        raft_addr: member.raft_addr,
        admin_addr: member.admin_addr,
        matched_index: None,
    }
}

#[derive(Deserialize, Default)]
struct RemoveOptions {
    /// Remove a data node even when no other data node can take the copies it holds.
    #[serde(default)]
    force: bool,
}

async fn remove_member(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<NodeId>,
    Query(options): Query<RemoveOptions>,
) -> Response {
    let cluster = &state.cluster;
    if let Err(err) = authorize(cluster, &headers, Access::Admin) {
        return err.into_response();
    }
    if !cluster.is_leader() {
        let force = if options.force { "?force=true" } else { "" };
        return proxy_to_leader(
            cluster,
            Method::DELETE,
            format!("/v1/members/{id}{force}"),
            &headers,
            None,
        )
        .await;
    }
    // A removal that must fail (the leader itself, not a member) fails before any copying.
    if let Err(err) = cluster.removal(id) {
        return ApiError::from(err).into_response();
    }
    if !options.force {
        if let Err(err) = cluster.copies_stay_after_removing(id).await {
            return ApiError::from(err).into_response();
        }
        match cluster.drain_data_node(id).await {
            Ok(0) => {}
            Ok(waiting) => {
                return (
                    StatusCode::ACCEPTED,
                    Json(json!({
                        "blobs_waiting": waiting,
                        "message": format!(
                            "copying the blobs node {id} holds to other data nodes: {waiting} \
                             without two other copies yet; ask again to leave once they have them"
                        ),
                    })),
                )
                    .into_response();
            }
            Err(err) => return ApiError::from(err).into_response(),
        }
    }
    let admin_addr = cluster
        .metrics()
        .membership_config
        .membership()
        .get_node(&id)
        .map(|member| member.admin_addr.clone());
    match cluster.remove_member(id).await {
        Ok(()) => {
            // The removed node may not learn it from Raft (the leader stops replicating to it
            // before it has the membership that leaves it out): tell it, with the caller's
            // token, so it stops instead of campaigning in vain. Best effort: a node that is
            // down now must be stopped by hand.
            if let Some(addr) = admin_addr {
                tell_removed(cluster, id, addr, &headers).await;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => ApiError::from(err).into_response(),
    }
}

async fn tell_removed(cluster: &Cluster, node_id: NodeId, admin_addr: String, headers: &HeaderMap) {
    let auth = caller_auth(headers);
    let peers = PeerCalls::of(cluster);
    let url = peers.url(&admin_addr, &format!("/v1/node/removed?node_id={node_id}"));
    let told = tokio::task::spawn_blocking(move || {
        peers
            .agent(Duration::from_secs(2), true)?
            .post(&url)
            .header("Authorization", &auth)
            .send_empty()
            .map(|_| ())
    })
    .await;
    match told {
        Ok(Ok(())) => tracing::info!(node_id, "told the removed node to stop"),
        Ok(Err(err)) => {
            tracing::info!(node_id, error = %err, "could not tell the removed node; stop it by hand")
        }
        Err(err) => tracing::warn!(node_id, error = %err, "telling the removed node failed"),
    }
}

/// The caller's `Authorization` header, passed on when this node calls another for it.
fn caller_auth(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// How this node calls another node's admin API: over HTTPS, checking the certificate against
/// the cluster CA (the node's `ca-cert`), once the cluster takes HTTPS only; before that over
/// plain HTTP, which a member of the previous build is the only thing it serves.
#[derive(Clone)]
struct PeerCalls {
    https: Option<std::path::PathBuf>,
}

impl PeerCalls {
    fn of(cluster: &Cluster) -> PeerCalls {
        PeerCalls {
            https: https_only(cluster).then(|| cluster.config.ca_cert.clone()),
        }
    }

    fn url(&self, admin_addr: &str, path: &str) -> String {
        let scheme = if self.https.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{admin_addr}{path}")
    }

    /// An agent with `timeout` for the whole call; `status_as_error`: a 4xx or 5xx is an Err.
    fn agent(&self, timeout: Duration, status_as_error: bool) -> Result<ureq::Agent, ureq::Error> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(status_as_error);
        if let Some(ca_cert) = &self.https {
            config = config.tls_config(crate::bootstrap::cluster_ca_tls(ca_cert)?);
        }
        Ok(config.build().into())
    }
}

#[derive(Deserialize)]
struct RemovedNode {
    node_id: NodeId,
}

/// The leader says this node is no longer a member: it stops (see `node::run`). The id must be
/// this node's: a replacement that took over the removed node's address is not stopped by a
/// notice meant for its predecessor, and a leader never stops itself this way.
async fn node_removed(
    Admin(state): Admin,
    Query(removed): Query<RemovedNode>,
) -> ApiResult<StatusCode> {
    let me = state.cluster.config.node_id;
    if removed.node_id != me {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_this_node",
            format!("this is node {me}, not node {}", removed.node_id),
        ));
    }
    if state.cluster.is_leader() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "leader",
            "this node leads the cluster; it was not removed",
        ));
    }
    state.removed.send_replace(true);
    Ok(StatusCode::NO_CONTENT)
}

async fn failover(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Option<Json<Failover>>,
) -> Response {
    let cluster = &state.cluster;
    if let Err(err) = authorize(cluster, &headers, Access::Admin) {
        return err.into_response();
    }
    let body = body.map(|Json(b)| b).unwrap_or_default();
    if !cluster.is_leader() {
        return proxy_to_leader(
            cluster,
            Method::POST,
            "/v1/failover".into(),
            &headers,
            Some(json!(body)),
        )
        .await;
    }
    let to = match vip_capable_target(cluster, body.to, &headers).await {
        Ok(to) => to,
        Err(err) => return err.into_response(),
    };
    match cluster.failover(to).await {
        Ok(leader) => Json(FailoverResponse { leader }).into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// With a virtual IP, a failover goes only to a node that can hold it: `to` is refused when its
/// node reports a VIP problem (or does not answer), and without `to` the first reachable,
/// caught-up data voter that can hold it is chosen. The nodes are asked on their admin API
/// with the caller's token.
async fn vip_capable_target(
    cluster: &Cluster,
    to: Option<NodeId>,
    headers: &HeaderMap,
) -> ApiResult<Option<NodeId>> {
    let me = cluster.config.node_id;
    if cluster.vip.config.is_none() || to == Some(me) {
        return Ok(to);
    }
    let auth = caller_auth(headers);
    let refused = |message: String| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("refused, nothing moved: {message}"),
        )
    };
    let membership = cluster.metrics().membership_config.membership().clone();
    let candidates = match to {
        // Raft's own objections (not a member, unreachable, behind) come from `failover`.
        Some(id) if cluster.leadership_problem(id).is_some() => return Ok(to),
        Some(id) => vec![id],
        None => cluster.caught_up_data_voters(),
    };
    let peers = PeerCalls::of(cluster);
    let mut last = None;
    for id in candidates {
        let Some(member) = membership.get_node(&id) else {
            continue;
        };
        match vip_problem_of(&peers, member, auth.clone()).await {
            Ok(None) => return Ok(Some(id)),
            Ok(Some(problem)) => {
                last = Some(format!(
                    "node {id} ({}) cannot hold the virtual IP: {problem}",
                    member.name
                ))
            }
            Err(err) => {
                tracing::warn!(node = id, error = %err, "failover target did not answer");
                last = Some(format!(
                    "node {id} ({}) did not say whether it can hold the virtual IP",
                    member.name
                ))
            }
        }
    }
    Err(refused(last.unwrap_or_else(|| {
        "no other data voter is reachable and caught up".to_owned()
    })))
}

/// Node `member`'s own word on its virtual IP (`GET /v1/node`): why it cannot hold it, or None.
async fn vip_problem_of(
    peers: &PeerCalls,
    member: &Member,
    auth: String,
) -> Result<Option<String>, String> {
    let url = peers.url(&member.admin_addr, "/v1/node");
    let peers = peers.clone();
    tokio::task::spawn_blocking(move || -> Result<Option<String>, String> {
        let mut response = peers
            .agent(Duration::from_secs(2), true)
            .and_then(|agent| agent.get(&url).header("Authorization", &auth).call())
            .map_err(|e| e.to_string())?;
        let node: serde_json::Value = response.body_mut().read_json().map_err(|e| e.to_string())?;
        Ok(node["vip"]["problem"].as_str().map(str::to_owned))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Membership and leadership changes run on the leader: a follower passes the request on, with
/// the caller's token, and returns the leader's answer as it is.
async fn proxy_to_leader(
    cluster: &Cluster,
    method: Method,
    path: String,
    headers: &HeaderMap,
    body: Option<serde_json::Value>,
) -> Response {
    let (leader, member) = match cluster.leader().await {
        Ok(found) => found,
        Err(err) => return ApiError::from(err).into_response(),
    };
    if leader == cluster.config.node_id {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            "leadership is changing; retry",
        )
        .into_response();
    }
    let peers = PeerCalls::of(cluster);
    let url = peers.url(&member.admin_addr, &path);
    let auth = caller_auth(headers);
    let answer = tokio::task::spawn_blocking(move || -> Result<(u16, String), ureq::Error> {
        let agent = peers.agent(Duration::from_secs(150), false)?;
        let mut response = match (method, body) {
            (Method::DELETE, _) => agent.delete(&url).header("Authorization", &auth).call()?,
            (Method::GET, _) => agent.get(&url).header("Authorization", &auth).call()?,
            (_, Some(body)) => agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(body)?,
            (_, None) => agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty()?,
        };
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_to_string()?))
    })
    .await;
    match answer {
        Ok(Ok((status, text))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Ok(Err(err)) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "unavailable",
            format!("forward to leader {leader}: {err}"),
        )
        .into_response(),
        Err(err) => ApiError::internal(err.to_string()).into_response(),
    }
}

async fn join(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Json(body): Json<JoinRequest>,
) -> ApiResult<Json<JoinResponse>> {
    let cluster = &state.cluster;
    authorize(cluster, &headers, Access::AdminOrJoin)?;
    validate_node_name(&body.name)?;
    for addr in [&body.raft_addr, &body.admin_addr] {
        addr.parse::<std::net::SocketAddr>()
            .map_err(|e| ApiError::bad_request(format!("address {addr:?}: {e}")))?;
    }
    // Refuse a bad CSR before a node id is spent on it.
    replication::pki::check_csr(&body.csr_pem).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let member = Member {
        name: body.name.clone(),
        role: body.role,
        raft_addr: body.raft_addr,
        admin_addr: body.admin_addr,
    };
    let CommandResult::NodeRegistered(node_id) =
        cluster.write_ok(Command::RegisterNode { member }).await?
    else {
        return Err(ApiError::internal("node registration returned no node id"));
    };
    let settings = cluster
        .reader
        .cluster_settings()?
        .ok_or_else(|| ApiError::internal("no cluster settings"))?;
    let cert_pem = replication::pki::issue_node_cert(
        &settings.ca_cert_pem,
        &settings.ca_key_pem,
        node_id,
        &body.name,
        &body.csr_pem,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(node_id, name = %body.name, "issued certificate for joining node");
    Ok(Json(JoinResponse {
        node_id,
        cluster_name: settings.cluster_name,
        cert_pem,
        cluster_version: Some(cluster.reader.cluster_version()?),
        ca_pem: settings.ca_cert_pem,
    }))
}

/// The rule `mclusterctl init` applies too (`cli::node_dir::validate_name`): node names become
/// directory names and certificate subjects.
fn validate_node_name(name: &str) -> ApiResult<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(plain)
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "bad node name {name:?}: use 1 to 63 letters, digits, '-', '_' or '.', not starting \
             with '.' or '-'"
        )))
    }
}

/// A domain name in lower case, checked for shape (for a name that must exist already).
fn domain_name(raw: &str) -> ApiResult<String> {
    names::domain_name(raw).map_err(ApiError::bad_request)
}

/// A mailbox address `local@domain` in lower case, checked for shape.
fn mail_address(raw: &str) -> ApiResult<String> {
    let address = raw.trim().to_ascii_lowercase();
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(ApiError::bad_request(format!(
            "{raw:?} is not an address (local@domain)"
        )));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"@<>()[]\\,;:\"".contains(c));
    if !local_ok {
        return Err(ApiError::bad_request(format!(
            "{raw:?}: invalid local part"
        )));
    }
    domain_name(domain)?;
    Ok(address)
}

/// A new password against the cluster's password policy.
fn check_password(cluster: &Cluster, password: &str) -> ApiResult<()> {
    let policy = cluster.reader.password_policy()?;
    names::check_password(&policy, password).map_err(ApiError::bad_request)
}

/// argon2id with a fresh random salt, on a blocking thread (it is deliberately slow).
async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::internal)
}

async fn list_domains(Current(state): Current) -> ApiResult<Json<Vec<Domain>>> {
    Ok(Json(state.cluster.reader.domains()?))
}

async fn add_domain(
    Admin(state): Admin,
    Json(body): Json<NewDomain>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let cluster = &state.cluster;
    let name = names::new_domain_name(&body.name).map_err(ApiError::bad_request)?;
    cluster
        .write_ok(Command::AddDomain {
            name: name.clone(),
            at: unix_now(),
        })
        .await?;
    let domain = cluster
        .reader
        .domain(&name)?
        .ok_or_else(|| ApiError::internal("domain missing after add"))?;
    Ok((StatusCode::CREATED, Json(domain)))
}

async fn show_domain(Admin(state): Admin, Path(name): Path<String>) -> ApiResult<Json<Domain>> {
    let name = domain_name(&name)?;
    state.cluster.linearize().await?;
    let domain = state.cluster.reader.domain(&name)?;
    domain
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no such domain: {name}")))
}

async fn delete_domain(Admin(state): Admin, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let name = domain_name(&name)?;
    state
        .cluster
        .write_ok(Command::DeleteDomain { name })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account as the API shows it: never the password hash.
fn account_view(a: Account) -> AccountView {
    AccountView {
        address: a.address,
        domain: a.domain,
        quota_mb: a.quota_mb,
        enabled: a.enabled,
        created_at: a.created_at,
    }
}

#[derive(Deserialize)]
struct AccountFilter {
    domain: Option<String>,
}

async fn list_accounts(
    Admin(state): Admin,
    Query(filter): Query<AccountFilter>,
) -> ApiResult<Json<Vec<AccountView>>> {
    let domain = filter.domain.as_deref().map(domain_name).transpose()?;
    state.cluster.linearize().await?;
    let accounts = state.cluster.reader.accounts(domain.as_deref())?;
    Ok(Json(accounts.into_iter().map(account_view).collect()))
}

/// Default quota of a new account when the request names none.
const DEFAULT_QUOTA_MB: u64 = 1024;

async fn add_account(
    Admin(state): Admin,
    Json(body): Json<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let cluster = &state.cluster;
    let address = mail_address(&body.address)?;
    check_password(cluster, &body.password)?;
    let password_hash = hash_password(body.password).await?;
    let quota_mb = body.quota_mb.unwrap_or(DEFAULT_QUOTA_MB);
    cluster
        .write_ok(Command::AddAccount {
            address: address.clone(),
            password_hash,
            quota_mb,
            at: unix_now(),
        })
        .await?;
    let account = cluster
        .reader
        .account(&address)?
        .ok_or_else(|| ApiError::internal("account missing after add"))?;
    Ok((StatusCode::CREATED, Json(account_view(account))))
}

async fn show_account(
    Admin(state): Admin,
    Path(address): Path<String>,
) -> ApiResult<Json<AccountView>> {
    let address = mail_address(&address)?;
    state.cluster.linearize().await?;
    let account = state.cluster.reader.account(&address)?;
    account
        .map(|a| Json(account_view(a)))
        .ok_or_else(|| ApiError::not_found(format!("no such account: {address}")))
}

async fn delete_account(Admin(state): Admin, Path(address): Path<String>) -> ApiResult<StatusCode> {
    let address = mail_address(&address)?;
    state
        .cluster
        .write_ok(Command::DeleteAccount { address })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(
    Admin(state): Admin,
    Path(address): Path<String>,
    Json(body): Json<NewPassword>,
) -> ApiResult<StatusCode> {
    let address = mail_address(&address)?;
    check_password(&state.cluster, &body.password)?;
    let password_hash = hash_password(body.password).await?;
    state
        .cluster
        .write_ok(Command::SetPassword {
            address,
            password_hash,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_enabled(
    Admin(state): Admin,
    Path(address): Path<String>,
    Json(body): Json<Enabled>,
) -> ApiResult<StatusCode> {
    let address = mail_address(&address)?;
    state
        .cluster
        .write_ok(Command::SetAccountEnabled {
            address,
            enabled: body.enabled,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_aliases(Current(state): Current) -> ApiResult<Json<Vec<Alias>>> {
    Ok(Json(state.cluster.reader.aliases(None)?))
}

#[derive(Deserialize)]
struct AddAlias {
    address: String,
    targets: Vec<String>,
}

async fn add_alias(
    Admin(state): Admin,
    Json(body): Json<AddAlias>,
) -> ApiResult<(StatusCode, Json<Alias>)> {
    let cluster = &state.cluster;
    let address = mail_address(&body.address)?;
    if body.targets.is_empty() {
        return Err(ApiError::bad_request("an alias needs at least one target"));
    }
    let targets = body
        .targets
        .iter()
        .map(|t| mail_address(t))
        .collect::<ApiResult<Vec<_>>>()?;
    cluster
        .write_ok(Command::AddAlias {
            address: address.clone(),
            targets,
        })
        .await?;
    let alias = cluster
        .reader
        .alias(&address)?
        .ok_or_else(|| ApiError::internal("alias missing after add"))?;
    Ok((StatusCode::CREATED, Json(alias)))
}

async fn delete_alias(Admin(state): Admin, Path(address): Path<String>) -> ApiResult<StatusCode> {
    let address = mail_address(&address)?;
    state
        .cluster
        .write_ok(Command::DeleteAlias { address })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The client-facing certificate chain (never the key).
async fn show_tls(Current(state): Current) -> ApiResult<Json<ClientCert>> {
    let tls = state
        .cluster
        .reader
        .client_tls()?
        .ok_or_else(|| ApiError::not_found("no client TLS certificate is set"))?;
    Ok(Json(ClientCert {
        cert_pem: tls.cert_pem,
    }))
}

/// Replaces the client-facing certificate and key on every node.
async fn set_tls(
    Admin(state): Admin,
    Json(body): Json<NewClientTls>,
) -> ApiResult<Json<serde_json::Value>> {
    let tls = raft_store::ClientTls {
        cert_pem: body.cert_pem,
        key_pem: body.key_pem,
    };
    crate::tls::server_config(&tls)
        .map_err(|e| ApiError::bad_request(format!("unusable certificate: {e:#}")))?;
    state.cluster.write_ok(Command::SetClientTls(tls)).await?;
    Ok(Json(json!({ "updated": true })))
}

/// The key the per-service limits replaced, named in the answer to a client that still sets it.
const RETIRED_MAIL_POLICY_KEY: &str = "max-connections-per-ip";

fn read_mail_policy_view(
    reader: &raft_store::StateReader,
) -> Result<MailPolicyView, raft_store::StoreError> {
    Ok(MailPolicyView::from_parts(
        reader.mail_policy()?,
        reader.connections_per_ip()?,
        reader.message_limits()?,
    ))
}

async fn show_mail_policy(Current(state): Current) -> ApiResult<Json<MailPolicyView>> {
    Ok(Json(read_mail_policy_view(&state.cluster.reader)?))
}

/// Changes some fields of the mail policy: the body is a JSON object with any of its keys.
async fn set_mail_policy(
    Admin(state): Admin,
    Json(changes): Json<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<MailPolicyView>> {
    if changes.contains_key(RETIRED_MAIL_POLICY_KEY) {
        return Err(ApiError::bad_request(format!(
            "{RETIRED_MAIL_POLICY_KEY} was replaced by one limit per service: \
             smtp-connections-per-ip, submission-connections-per-ip, imap-connections-per-ip \
             and pop3-connections-per-ip"
        )));
    }
    state.cluster.linearize().await?;
    let reader = &state.cluster.reader;
    let current = read_mail_policy_view(reader)?;
    let view: MailPolicyView =
        merge_keys(&current, changes, "mail policy").map_err(ApiError::bad_request)?;
    check_mail_policy(&view).map_err(ApiError::bad_request)?;
    view.limits.check().map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok({
            let (policy, connections, limits) = view.clone().into_parts(&reader.mail_policy()?);
            Command::SetMailPolicyLimitsAndConnections {
                policy,
                limits,
                connections,
            }
        })
        .await?;
    Ok(Json(view))
}

/// `current` with some of its keys replaced by `changes` (a policy's `PUT` body); an unknown
/// key or a value of the wrong type is an error naming the key.
pub(crate) fn merge_keys<T: Serialize + serde::de::DeserializeOwned>(
    current: &T,
    changes: serde_json::Map<String, serde_json::Value>,
    what: &str,
) -> Result<T, String> {
    let mut merged = match serde_json::to_value(current) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(format!("the stored {what} is not a JSON object")),
    };
    for (key, value) in changes {
        if !merged.contains_key(&key) {
            let known: Vec<&str> = merged.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown {what} key {key:?} (known keys: {})",
                known.join(", ")
            ));
        }
        merged.insert(key, value);
    }
    serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| format!("invalid {what}: {e}"))
}

fn check_mail_policy(policy: &MailPolicyView) -> Result<(), String> {
    if policy.max_message_bytes == 0
        || policy.max_message_bytes > raft_store::MAX_MESSAGE_BYTES_LIMIT
    {
        return Err(format!(
            "max-message-bytes must be between 1 and {}",
            raft_store::MAX_MESSAGE_BYTES_LIMIT
        ));
    }
    // RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients.
    if policy.max_recipients < 100 {
        return Err("max-recipients must be at least 100 (RFC 5321 4.5.3.1.8)".into());
    }
    if policy.max_connections == 0 || policy.max_errors == 0 {
        return Err("max-connections and max-errors must be at least 1".into());
    }
    if policy.smtp_idle_timeout_secs < 30 || policy.pop3_idle_timeout_secs < 30 {
        return Err("idle timeouts must be at least 30 seconds".into());
    }
    Ok(())
}
