//! Abuse protection in the admin API: the replicated protection policy (`GET`/`PUT
//! /v1/protection-policy`, merged and checked like the mail policy), and the lockouts that
//! failed logins earned: list them, lift one, or impose one by hand.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use raft_store::{Command, LockTarget, Lockout, ProtectionPolicy};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::admin_api::{Access, ApiError, ApiResult, ApiState, authorize, merge_keys};
use crate::cluster::unix_now;
use crate::protection::check_policy;

pub(super) async fn show_policy(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ProtectionPolicy>> {
    authorize(&state.cluster, &headers, Access::Admin)?;
    state.cluster.linearize().await?;
    Ok(Json(state.cluster.reader.protection_policy()?))
}

/// Changes some keys of the protection policy: the body is a JSON object with any of its keys.
pub(super) async fn set_policy(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Json(changes): Json<Map<String, Value>>,
) -> ApiResult<Json<ProtectionPolicy>> {
    authorize(&state.cluster, &headers, Access::Admin)?;
    state.cluster.linearize().await?;
    let current = state.cluster.reader.protection_policy()?;
    let policy: ProtectionPolicy =
        merge_keys(&current, changes, "protection policy").map_err(ApiError::bad_request)?;
    check_policy(&policy).map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::SetProtectionPolicy(policy.clone()))
        .await?;
    tracing::info!(policy = ?policy, "protection policy changed");
    Ok(Json(policy))
}

/// A lockout as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockoutView {
    /// `ip:ADDRESS` or `account:NAME`.
    pub target: String,
    pub since: u64,
    pub until: u64,
    pub reason: String,
    /// Whether it still runs (ended ones stay listed until the next lockout clears them).
    pub active: bool,
}

impl LockoutView {
    fn of(lockout: Lockout, now: u64) -> LockoutView {
        LockoutView {
            target: lockout.target.to_string(),
            since: lockout.since,
            until: lockout.until,
            active: lockout.until > now,
            reason: lockout.reason,
        }
    }
}

pub(super) async fn list_lockouts(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<LockoutView>>> {
    authorize(&state.cluster, &headers, Access::Admin)?;
    state.cluster.linearize().await?;
    let now = unix_now();
    let lockouts = state.cluster.reader.lockouts()?;
    Ok(Json(
        lockouts
            .into_iter()
            .map(|l| LockoutView::of(l, now))
            .collect(),
    ))
}

/// An operator's lockout.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct NewLockout {
    target: String,
    /// How long; default: the policy's `lockout-secs`.
    secs: Option<u64>,
    reason: Option<String>,
}

/// Longest lockout by hand: a year (a permanent block belongs on the block list).
const MAX_LOCKOUT_SECS: u64 = 365 * 86_400;

pub(super) async fn add_lockout(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Json(body): Json<NewLockout>,
) -> ApiResult<Json<LockoutView>> {
    authorize(&state.cluster, &headers, Access::Admin)?;
    let target: LockTarget = body.target.parse().map_err(ApiError::bad_request)?;
    let secs = match body.secs {
        Some(secs) => secs,
        None => state.cluster.reader.protection_policy()?.lockout_secs,
    };
    if secs == 0 || secs > MAX_LOCKOUT_SECS {
        return Err(ApiError::bad_request(format!(
            "secs must be between 1 and {MAX_LOCKOUT_SECS}"
        )));
    }
    let now = unix_now();
    let lockout = Lockout {
        target,
        since: now,
        until: now + secs,
        reason: body.reason.unwrap_or_else(|| "set by an operator".into()),
    };
    state
        .cluster
        .write_ok(Command::Lock(lockout.clone()))
        .await?;
    tracing::info!(target = %lockout.target, until = lockout.until, "lockout set by an operator");
    Ok(Json(LockoutView::of(lockout, now)))
}

pub(super) async fn delete_lockout(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&state.cluster, &headers, Access::Admin)?;
    let target: LockTarget = target.parse().map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::Unlock {
            target: target.clone(),
        })
        .await?;
    tracing::info!(%target, "lockout lifted by an operator");
    Ok(Json(serde_json::json!({ "lifted": target.to_string() })))
}
