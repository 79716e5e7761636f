//! Abuse protection in the admin API: the replicated protection policy (`GET`/`PUT
//! /v1/protection-policy`, merged and checked like the mail policy; the connection budgets and
//! the password policy are stored apart but shown and set with it), and the lockouts that
//! failed logins earned: list them, lift one, or impose one by hand.

use axum::Json;
use axum::extract::Path;
use raft_store::api::ProtectionView;
use raft_store::{Command, LockTarget, Lockout, PasswordPolicy, StateReader, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::admin_api::{Admin, ApiError, ApiResult, Current, merge_keys};
use crate::clock::unix_now;
use crate::protection::check_policy;

/// The key the per-service budgets replaced, named in the answer to a client that still sets it.
const RETIRED_KEY: &str = "connections-per-minute-per-ip";

fn read_view(reader: &StateReader) -> Result<ProtectionView, StoreError> {
    Ok(ProtectionView::from_parts(
        reader.protection_policy()?,
        reader.connection_budgets()?,
        reader.password_policy()?,
    ))
}

pub(super) async fn show_policy(Current(state): Current) -> ApiResult<Json<ProtectionView>> {
    Ok(Json(read_view(&state.cluster.reader)?))
}

/// Changes some keys of the protection policy: the body is a JSON object with any of its keys.
pub(super) async fn set_policy(
    Admin(state): Admin,
    Json(changes): Json<Map<String, Value>>,
) -> ApiResult<Json<ProtectionView>> {
    if changes.contains_key(RETIRED_KEY) {
        return Err(ApiError::bad_request(format!(
            "{RETIRED_KEY} was replaced by one budget per service: \
             smtp-connections-per-minute-per-ip, submission-connections-per-minute-per-ip, \
             imap-connections-per-minute-per-ip and pop3-connections-per-minute-per-ip"
        )));
    }
    state.cluster.linearize().await?;
    let reader = &state.cluster.reader;
    let current = read_view(reader)?;
    let view: ProtectionView =
        merge_keys(&current, changes, "protection policy").map_err(ApiError::bad_request)?;
    let (policy, budgets, passwords) = view.clone().into_parts(&reader.protection_policy()?);
    check_policy(&policy).map_err(ApiError::bad_request)?;
    check_password_policy(&passwords).map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::SetProtectionSettings {
            policy,
            budgets,
            passwords,
        })
        .await?;
    tracing::info!(policy = ?view, "protection policy changed");
    Ok(Json(view))
}

fn check_password_policy(policy: &PasswordPolicy) -> Result<(), String> {
    let range = PasswordPolicy::MIN_LENGTH_RANGE;
    if !range.contains(&policy.min_password_length) {
        return Err(format!(
            "min-password-length must be between {} and {}",
            range.start(),
            range.end()
        ));
    }
    Ok(())
}

pub use raft_store::api::LockoutView;

/// A lockout as the API shows it.
fn view_of(lockout: Lockout, now: u64) -> LockoutView {
    LockoutView {
        target: lockout.target.to_string(),
        since: lockout.since,
        until: lockout.until,
        active: lockout.until > now,
        reason: lockout.reason,
    }
}

pub(super) async fn list_lockouts(Current(state): Current) -> ApiResult<Json<Vec<LockoutView>>> {
    let now = unix_now();
    let lockouts = state.cluster.reader.lockouts()?;
    Ok(Json(
        lockouts.into_iter().map(|l| view_of(l, now)).collect(),
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
    Admin(state): Admin,
    Json(body): Json<NewLockout>,
) -> ApiResult<Json<LockoutView>> {
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
    Ok(Json(view_of(lockout, now)))
}

pub(super) async fn delete_lockout(
    Admin(state): Admin,
    Path(target): Path<String>,
) -> ApiResult<Json<Value>> {
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
