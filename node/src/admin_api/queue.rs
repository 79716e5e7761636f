//! The outbound queue in the admin API: list and show queued messages, and the operator's
//! retry, hold, release and delete (each a Raft command, answered once applied).

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use raft_store::{Command, CommandResult, QueueAction, QueuedMessage, RecipientState};
use serde::Deserialize;

use raft_store::api::{QueueEntry, QueueListing, QueueRecipient};

use super::{Admin, ApiError, ApiResult, Current};

/// How many entries one listing returns at most.
const MAX_LIMIT: usize = 1000;

/// A queued message as the API shows it.
fn entry_view(entry: QueuedMessage) -> QueueEntry {
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

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// Continue after this queue id.
    after: Option<String>,
    limit: Option<usize>,
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
        entries: entries.into_iter().map(entry_view).collect(),
    }))
}

pub(super) async fn show(
    Current(state): Current,
    Path(id): Path<String>,
) -> ApiResult<Json<QueueEntry>> {
    match state.cluster.reader.queued(&id)? {
        Some(entry) => Ok(Json(entry_view(entry))),
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
        CommandResult::Queued(Some(entry)) => Ok(Json(entry_view(*entry)).into_response()),
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
