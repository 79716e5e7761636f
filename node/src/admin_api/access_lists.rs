//! The block and allow lists in the admin API: `GET /v1/access-lists`, `POST
//! /v1/access-lists` (add or replace an entry) and `DELETE /v1/access-lists/{list}/{pattern}`.
//! Patterns are checked and put in canonical form here, before they are proposed.

use axum::Json;
use axum::extract::Path;
use raft_store::{AccessEntry, AccessList, AccessPattern, Command};
use serde::Deserialize;
use serde_json::Value;

use crate::access::check_comment;
use crate::admin_api::{Admin, ApiError, ApiResult, Current};
use crate::clock::unix_now;

#[cfg(test)]
mod tests;

/// Longest expiry: ten years (longer is "never": leave it out).
const MAX_EXPIRY_SECS: u64 = 10 * 365 * 86_400;

pub use raft_store::api::AccessEntryView;

/// An entry as the API shows it.
pub fn view_of(entry: &AccessEntry, now: u64) -> AccessEntryView {
    AccessEntryView {
        list: entry.list.to_string(),
        kind: entry.pattern.kind().into(),
        pattern: entry.pattern.to_string(),
        comment: entry.comment.clone(),
        created_at: entry.created_at,
        expires_at: entry.expires_at,
        active: entry.active(now),
    }
}

/// The body of `POST /v1/access-lists`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct NewEntry {
    list: String,
    pattern: String,
    comment: Option<String>,
    /// Expires this many seconds from now.
    expires_in_secs: Option<u64>,
    /// Expires at this unix time.
    expires_at: Option<u64>,
}

/// The entry `body` asks for at unix time `now`, or why it cannot be.
pub(crate) fn new_entry(body: NewEntry, now: u64) -> Result<AccessEntry, String> {
    let list: AccessList = body.list.parse()?;
    let pattern: AccessPattern = body.pattern.parse()?;
    let comment = body.comment.map(|c| c.trim().to_owned());
    if let Some(comment) = &comment {
        check_comment(comment)?;
    }
    let expires_at = match (body.expires_in_secs, body.expires_at) {
        (Some(_), Some(_)) => {
            return Err("give expires-in-secs or expires-at, not both".into());
        }
        (Some(secs), None) => {
            if secs == 0 || secs > MAX_EXPIRY_SECS {
                return Err(format!(
                    "expires-in-secs must be between 1 and {MAX_EXPIRY_SECS}"
                ));
            }
            Some(now + secs)
        }
        (None, Some(at)) => {
            if at <= now {
                return Err(format!("expires-at {at} is not in the future (now {now})"));
            }
            if at - now > MAX_EXPIRY_SECS {
                return Err("expires-at is more than ten years away: leave it out".into());
            }
            Some(at)
        }
        (None, None) => None,
    };
    Ok(AccessEntry {
        list,
        pattern,
        comment: comment.filter(|c| !c.is_empty()),
        created_at: now,
        expires_at,
    })
}

pub(super) async fn list(Current(state): Current) -> ApiResult<Json<Vec<AccessEntryView>>> {
    let now = unix_now();
    let mut entries = state.cluster.reader.access_entries()?;
    entries.sort_by(|a, b| (a.list, &a.pattern).cmp(&(b.list, &b.pattern)));
    Ok(Json(entries.iter().map(|e| view_of(e, now)).collect()))
}

pub(super) async fn add(
    Admin(state): Admin,
    Json(body): Json<NewEntry>,
) -> ApiResult<Json<AccessEntryView>> {
    let now = unix_now();
    let entry = new_entry(body, now).map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::AddAccessEntry(entry.clone()))
        .await?;
    tracing::info!(list = %entry.list, pattern = %entry.pattern, expires_at = ?entry.expires_at, "access list entry added");
    Ok(Json(view_of(&entry, now)))
}

/// `DELETE /v1/access-lists/{list}/{pattern}`: the pattern is the rest of the path, so a CIDR's
/// slash needs no escaping (an escaped one works too).
pub(super) async fn remove(
    Admin(state): Admin,
    Path((list, pattern)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let list: AccessList = list.parse().map_err(ApiError::bad_request)?;
    let pattern: AccessPattern = pattern.parse().map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::RemoveAccessEntry {
            list,
            pattern: pattern.clone(),
        })
        .await?;
    tracing::info!(%list, %pattern, "access list entry removed");
    Ok(Json(serde_json::json!({
        "removed": { "list": list.to_string(), "pattern": pattern.to_string() }
    })))
}
