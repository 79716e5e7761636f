//! DKIM signing keys in the admin API: make or import a domain's key, show the DNS record that
//! publishes it, list and delete keys. The private key is taken in but never given out.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use raft_store::{Command, DkimAlgorithm, DkimKey};

use crate::admin_api::{Admin, ApiError, ApiResult, Current, domain_name};
use crate::clock::unix_now;
use crate::outbound::dkim::{self, DkimError};

/// A domain's key as the API shows it, with the TXT record to publish.
pub use raft_store::api::DkimKeyView as DkimView;

/// The view of a stored key.
fn view_of(key: &DkimKey) -> ApiResult<DkimView> {
    let (dns_name, dns_value) = dkim::dns_record(key).map_err(|e| {
        tracing::error!(domain = %key.domain, error = %e, "stored dkim key is unusable");
        ApiError::internal(e.to_string())
    })?;
    Ok(DkimView {
        domain: key.domain.clone(),
        selector: key.selector.clone(),
        algorithm: key.algorithm.to_string(),
        created_at: key.created_at,
        dns_name,
        dns_value,
    })
}

pub(crate) use raft_store::api::NewDkimKey as SetKey;

impl From<DkimError> for ApiError {
    fn from(err: DkimError) -> ApiError {
        match err {
            DkimError::InvalidSelector(_) | DkimError::InvalidKey(_) | DkimError::NoFrom => {
                ApiError::bad_request(err.to_string())
            }
            DkimError::Crypto { .. } => ApiError::internal(err.to_string()),
        }
    }
}

/// PUT /v1/domains/{domain}/dkim: makes (or imports) the domain's key, replacing the one it had.
pub(crate) async fn set(
    Admin(state): Admin,
    Path(domain): Path<String>,
    Json(body): Json<SetKey>,
) -> ApiResult<Json<DkimView>> {
    let cluster = &state.cluster;
    let domain = domain_name(&domain)?;
    // Refuse before making a key for nothing; the command checks again when it applies.
    cluster.linearize().await?;
    if cluster.reader.domain(&domain)?.is_none() {
        return Err(ApiError::not_found(format!("no such domain: {domain}")));
    }
    let now = unix_now();
    let selector = match body.selector {
        Some(selector) => selector.trim().to_owned(),
        None => {
            let selector = dkim::default_selector(now);
            // A new key under the published name would break signatures until DNS catches up.
            if let Some(current) = cluster.reader.dkim_key(&domain)?
                && current.selector == selector
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "exists",
                    format!(
                        "{domain}'s key already uses selector {selector}; name another selector \
                         to rotate"
                    ),
                ));
            }
            selector
        }
    };
    let key = {
        let domain = domain.clone();
        tokio::task::spawn_blocking(move || match body.private_key_pem {
            Some(pem) => dkim::import(&domain, &selector, body.algorithm, &pem, now),
            None => dkim::generate(
                &domain,
                &selector,
                body.algorithm.unwrap_or(DkimAlgorithm::RsaSha256),
                now,
            ),
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??
    };
    let view = view_of(&key)?;
    cluster.write_ok(Command::SetDkimKey(key)).await?;
    tracing::info!(domain = %view.domain, selector = %view.selector, "set dkim key");
    Ok(Json(view))
}

/// GET /v1/domains/{domain}/dkim
pub(crate) async fn show(
    Admin(state): Admin,
    Path(domain): Path<String>,
) -> ApiResult<Json<DkimView>> {
    let cluster = &state.cluster;
    let domain = domain_name(&domain)?;
    cluster.linearize().await?;
    match cluster.reader.dkim_key(&domain)? {
        Some(key) => Ok(Json(view_of(&key)?)),
        None if cluster.reader.domain(&domain)?.is_none() => {
            Err(ApiError::not_found(format!("no such domain: {domain}")))
        }
        None => Err(ApiError::not_found(format!(
            "domain {domain} has no DKIM key"
        ))),
    }
}

/// GET /v1/dkim: every domain's key, by domain.
pub(crate) async fn list(Current(state): Current) -> ApiResult<Json<Vec<DkimView>>> {
    let keys = state.cluster.reader.dkim_keys()?;
    keys.iter()
        .map(view_of)
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

/// DELETE /v1/domains/{domain}/dkim: the domain's mail goes out unsigned from then on.
pub(crate) async fn delete(
    Admin(state): Admin,
    Path(domain): Path<String>,
) -> ApiResult<StatusCode> {
    let domain = domain_name(&domain)?;
    state
        .cluster
        .write_ok(Command::DeleteDkimKey { domain })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
