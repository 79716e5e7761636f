//! Rolling upgrades in the admin API: `GET /v1/upgrade` (the active cluster version, each
//! member's build, what waits) and `POST /v1/upgrade/finalize` (raise the active version to
//! the newest every member runs; `crate::versions`).

use axum::Json;
use raft_store::api::UpgradeStatus;

use crate::admin_api::{Admin, ApiResult, Current};

pub(super) async fn status(Current(state): Current) -> ApiResult<Json<UpgradeStatus>> {
    Ok(Json(crate::versions::status(&state.cluster)?))
}

/// Raising a version already raised, or one no member runs yet, changes nothing: the answer
/// is the status either way, and `active` says which.
pub(super) async fn finalize(Admin(state): Admin) -> ApiResult<Json<UpgradeStatus>> {
    crate::versions::finalize(&state.cluster).await?;
    state.cluster.linearize().await?;
    Ok(Json(crate::versions::status(&state.cluster)?))
}
