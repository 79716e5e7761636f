//! The replicated outbound policy in the admin API: `GET /v1/outbound-policy` shows it with the
//! smarthost password replaced by whether one is set; `PUT` merges some keys into it, checks the
//! whole result and commits it as one `SetOutboundPolicy` (all of the change or none of it).
//!
//! The password is write-only here: no answer carries it, so it leaves the cluster only towards
//! the smarthost. A `PUT` without `smarthost-password` keeps the stored one.

use std::net::IpAddr;

use axum::Json;
use raft_store::{Command, OutboundPolicy, SmarthostMode};
use serde_json::{Map, Value};

use crate::admin_api::{ApiError, ApiResult, Current};

#[cfg(test)]
mod tests;

/// The shortest and longest time between attempts: a retry storm on one side, a message that
/// waits more than a day for its next try on the other.
pub const RETRY_INTERVAL_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=1000;
/// A delay notice sooner than a minute would go out for mail that is merely slow.
pub const MIN_DELAY_WARNING_SECS: u64 = 1;
/// A year: far beyond the longest a message can stay queued (a day times 1000 attempts is
/// longer, but nobody wants a notice after a year), and far from overflowing a timestamp.
pub const MAX_DELAY_WARNING_SECS: u64 = 365 * 86_400;
pub const CONCURRENCY: std::ops::RangeInclusive<u32> = 1..=1000;
/// The longest smarthost user name or password accepted.
const MAX_CREDENTIAL_BYTES: usize = 1024;

/// The key `GET` shows in place of `smarthost-password`.
const PASSWORD_SET_KEY: &str = "smarthost-password-set";

pub use raft_store::api::OutboundPolicyView;

/// The outbound policy as the API shows it: everything but the smarthost password, and whether
/// one is set.
pub fn view_of(policy: &OutboundPolicy) -> OutboundPolicyView {
    // Every field by name, so a new one does not compile until it is shown (or hidden).
    let OutboundPolicy {
        retry_interval_secs,
        max_attempts,
        delay_warning_secs,
        concurrency,
        per_domain_concurrency,
        tls,
        smarthost,
        smarthost_mode,
        smarthost_user,
        smarthost_password,
    } = policy;
    OutboundPolicyView {
        retry_interval_secs: *retry_interval_secs,
        max_attempts: *max_attempts,
        delay_warning_secs: *delay_warning_secs,
        concurrency: *concurrency,
        per_domain_concurrency: *per_domain_concurrency,
        tls: tls.as_str().to_owned(),
        smarthost: smarthost.clone(),
        smarthost_mode: smarthost_mode.as_str().to_owned(),
        smarthost_user: smarthost_user.clone(),
        smarthost_password_set: !smarthost_password.is_empty(),
    }
}

pub(super) async fn show(Current(state): Current) -> ApiResult<Json<OutboundPolicyView>> {
    let policy = state.cluster.reader.outbound_policy()?;
    Ok(Json(view_of(&policy)))
}

/// Changes some keys of the outbound policy: the body is a JSON object with any of its keys.
pub(super) async fn set(
    Current(state): Current,
    Json(changes): Json<Map<String, Value>>,
) -> ApiResult<Json<OutboundPolicyView>> {
    let current = state.cluster.reader.outbound_policy()?;
    let policy = merge(&current, changes).map_err(ApiError::bad_request)?;
    state
        .cluster
        .write_ok(Command::SetOutboundPolicy(policy.clone()))
        .await?;
    tracing::info!(policy = ?policy, "outbound policy changed");
    Ok(Json(view_of(&policy)))
}

/// `current` with `changes` applied, if every key is known, every value has the key's type and
/// the result is a usable policy; else why not, naming the key.
pub fn merge(
    current: &OutboundPolicy,
    changes: Map<String, Value>,
) -> Result<OutboundPolicy, String> {
    let mut merged = match serde_json::to_value(current) {
        Ok(Value::Object(map)) => map,
        _ => return Err("the stored outbound policy is not a JSON object".into()),
    };
    for (key, value) in changes {
        if key == PASSWORD_SET_KEY {
            return Err(format!(
                "{PASSWORD_SET_KEY} is read-only; send smarthost-password to set the password \
                 (\"\" removes it)"
            ));
        }
        if !merged.contains_key(&key) {
            let known: Vec<&str> = merged.keys().map(String::as_str).collect();
            return Err(format!(
                "unknown outbound policy key {key:?} (known keys: {})",
                known.join(", ")
            ));
        }
        // Alone (the rest at defaults), so that a type error names its key.
        let alone = Map::from_iter([(key.clone(), value.clone())]);
        if let Err(err) = serde_json::from_value::<OutboundPolicy>(Value::Object(alone)) {
            return Err(format!("{key}: {err}"));
        }
        merged.insert(key, value);
    }
    let policy: OutboundPolicy = serde_json::from_value(Value::Object(merged))
        .map_err(|e| format!("invalid outbound policy: {e}"))?;
    check(&policy)?;
    Ok(policy)
}

/// Whether `policy` is one the delivery engine can work with; else why not, naming the key.
pub fn check(policy: &OutboundPolicy) -> Result<(), String> {
    let OutboundPolicy {
        retry_interval_secs,
        max_attempts,
        delay_warning_secs,
        concurrency,
        per_domain_concurrency,
        tls: _,
        smarthost,
        smarthost_mode,
        smarthost_user,
        smarthost_password,
    } = policy;
    if !RETRY_INTERVAL_SECS.contains(retry_interval_secs) {
        return Err(format!(
            "retry-interval-secs must be between {} and {}",
            RETRY_INTERVAL_SECS.start(),
            RETRY_INTERVAL_SECS.end()
        ));
    }
    if !MAX_ATTEMPTS.contains(max_attempts) {
        return Err(format!(
            "max-attempts must be between {} and {}",
            MAX_ATTEMPTS.start(),
            MAX_ATTEMPTS.end()
        ));
    }
    if *delay_warning_secs != 0
        && !(MIN_DELAY_WARNING_SECS..=MAX_DELAY_WARNING_SECS).contains(delay_warning_secs)
    {
        return Err(format!(
            "delay-warning-secs must be 0 (no delay notice) or between {MIN_DELAY_WARNING_SECS} \
             and {MAX_DELAY_WARNING_SECS}"
        ));
    }
    if !CONCURRENCY.contains(concurrency) {
        return Err(format!(
            "concurrency must be between {} and {}",
            CONCURRENCY.start(),
            CONCURRENCY.end()
        ));
    }
    if !(1..=*concurrency).contains(per_domain_concurrency) {
        return Err(format!(
            "per-domain-concurrency must be between 1 and concurrency ({concurrency})"
        ));
    }
    if !smarthost.is_empty() {
        check_smarthost(smarthost).map_err(|why| format!("smarthost {smarthost:?}: {why}"))?;
    }
    if *smarthost_mode != SmarthostMode::Never && smarthost.is_empty() {
        return Err(format!(
            "smarthost-mode {} needs a smarthost (host:port)",
            mode_name(*smarthost_mode)
        ));
    }
    for (key, value) in [
        ("smarthost-user", smarthost_user),
        ("smarthost-password", smarthost_password),
    ] {
        if value.len() > MAX_CREDENTIAL_BYTES {
            return Err(format!("{key} is longer than {MAX_CREDENTIAL_BYTES} bytes"));
        }
        // AUTH PLAIN separates the user and the password with NUL; a line end would end the
        // command early.
        if value.contains(['\0', '\r', '\n']) {
            return Err(format!("{key} must not contain NUL, CR or LF"));
        }
    }
    if !smarthost_user.is_empty() && smarthost_password.is_empty() {
        return Err(
            "smarthost-user needs a smarthost-password (none is set; give one with the user)"
                .into(),
        );
    }
    Ok(())
}

fn mode_name(mode: SmarthostMode) -> &'static str {
    match mode {
        SmarthostMode::Never => "never",
        SmarthostMode::OnFailure => "on-failure",
        SmarthostMode::Always => "always",
    }
}

/// `host:port` (a host name or IPv4 address) or `[host]:port` (also an IPv6 address); the port
/// 1 to 65535.
fn check_smarthost(text: &str) -> Result<(), String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest
                .split_once("]:")
                .ok_or("expected [host]:port, such as [2001:db8::25]:587")?;
            (host, port)
        }
        None => {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or("expected host:port, such as relay.example.net:587")?;
            if host.contains(':') {
                return Err("write an IPv6 address in brackets: [2001:db8::25]:587".into());
            }
            (host, port)
        }
    };
    if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(format!("{host:?} is neither an IP address nor a host name"));
    }
    let port_ok =
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !port_ok {
        return Err(format!("port {port:?} is not a number from 1 to 65535"));
    }
    Ok(())
}

/// Letters, digits and hyphens in dot-separated labels of 1 to 63 characters (RFC 1123).
fn is_host_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty() && text.len() <= 253 && text.split('.').all(crate::admin_api::names::label_ok)
}
