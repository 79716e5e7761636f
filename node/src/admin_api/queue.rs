//! The outbound queue in the admin API: list and show queued messages, and the operator's
//! retry, hold, release and delete (each a Raft command, answered once applied).

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use raft_store::{Command, CommandResult, QueueAction, QueuedMessage, RecipientState};
use serde::{Deserialize, Serialize};

use super::{Admin, ApiError, ApiResult, Current};

/// How many entries one listing returns at most.
const MAX_LIMIT: usize = 1000;

/// A queued message as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueEntry {
    pub id: String,
    /// The blob's SHA-256 in hex.
    pub blob: String,
    pub size: u64,
    /// The envelope sender; empty for the null sender (a bounce).
    pub sender: String,
    pub arrived_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub held: bool,
    pub recipients: Vec<QueueRecipient>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueRecipient {
    pub address: String,
    /// pending, delivered, failed (the sender is still to be told) or bounced (told).
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_remote: Option<String>,
    pub last_attempt_at: Option<i64>,
}

impl From<QueuedMessage> for QueueEntry {
    fn from(entry: QueuedMessage) -> QueueEntry {
        QueueEntry {
            id: entry.id,
            blob: hex::encode(entry.blob),
            size: entry.size,
            sender: entry.sender,
            arrived_at: entry.arrived_at,
            attempts: entry.attempts,
            next_attempt_at: entry.next_attempt_at,
            held: entry.held,
            recipients: entry
                .recipients
                .into_iter()
                .map(|r| QueueRecipient {
                    address: r.address,
                    state: match r.state {
                        RecipientState::Pending => "pending",
                        RecipientState::Delivered => "delivered",
                        RecipientState::Failed { bounced: false } => "failed",
                        RecipientState::Failed { bounced: true } => "bounced",
                    }
                    .to_owned(),
                    attempts: r.attempts,
                    last_status: r.last_error.as_ref().map(|e| e.status.clone()),
                    last_error: r.last_error.as_ref().map(|e| e.diagnostic.clone()),
                    last_remote: r.last_error.as_ref().and_then(|e| e.remote.clone()),
                    last_attempt_at: r.last_error.as_ref().map(|e| e.at),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// Continue after this queue id.
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct QueueListing {
    /// Messages in the queue in all.
    total: u64,
    entries: Vec<QueueEntry>,
}

pub(super) async fn list(
    Current(state): Current,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<QueueListing>> {
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let reader = &state.cluster.reader;
    let entries = reader.queue(query.after.as_deref(), limit)?;
    Ok(Json(QueueListing {
        total: reader.queue_len()?,
        entries: entries.into_iter().map(QueueEntry::from).collect(),
    }))
}

pub(super) async fn show(
    Current(state): Current,
    Path(id): Path<String>,
) -> ApiResult<Json<QueueEntry>> {
    match state.cluster.reader.queued(&id)? {
        Some(entry) => Ok(Json(entry.into())),
        None => Err(ApiError::not_found(format!("no such queued message: {id}"))),
    }
}

/// POST /v1/queue/{id}/{retry|hold|release}: the entry afterwards (204 if it is gone).
pub(super) async fn act(
    Admin(state): Admin,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let action = match action.as_str() {
        "retry" => QueueAction::Retry,
        "hold" => QueueAction::Hold,
        "release" => QueueAction::Release,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown queue action {other:?} (retry, hold, release; DELETE to delete)"
            )));
        }
    };
    match state
        .cluster
        .write_ok(Command::QueueAct { id, action })
        .await?
    {
        CommandResult::Queued(Some(entry)) => Ok(Json(QueueEntry::from(*entry)).into_response()),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

pub(super) async fn delete(Admin(state): Admin, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state
        .cluster
        .write_ok(Command::QueueAct {
            id,
            action: QueueAction::Delete,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests;
