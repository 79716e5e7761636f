//! `mclusterctl protection show|set` (the cluster-wide abuse limits, `/v1/protection-policy`)
//! and `mclusterctl lockouts list|add|remove` (logins locked out after failures,
//! `/v1/lockouts`).

use anyhow::{Context as _, Result};
use serde_json::{Map, Value};

use crate::commands::{Context, parse_policy_settings, print_json};
use crate::table::{Table, unix_time};

#[cfg(test)]
mod tests;

const POLICY_PATH: &str = "/v1/protection-policy";
const LOCKOUTS_PATH: &str = "/v1/lockouts";
/// The policy key that holds a list; `set` takes it comma-separated.
const LIST_KEY: &str = "exempt-networks";

/// `mclusterctl protection show`: every key as `set` takes it.
pub fn show(ctx: &Context, json: bool) -> Result<()> {
    let policy: Map<String, Value> = ctx
        .admin_client()?
        .get(POLICY_PATH)
        .context("get the protection policy")?;
    if json {
        print_json(&policy)
    } else {
        print!("{}", render_policy(&policy));
        Ok(())
    }
}

/// `mclusterctl protection set KEY=VALUE...`; `exempt-networks=10.0.0.0/8,192.0.2.7` (empty:
/// none). The cluster checks every key and changes all of them or none.
pub fn set(ctx: &Context, settings: &[String]) -> Result<()> {
    let changes = policy_changes(settings)?;
    let policy: Map<String, Value> = ctx
        .admin_client()?
        .put_answer(POLICY_PATH, &changes)
        .context("set the protection policy")?;
    println!("set the protection policy; it is now:");
    print!("{}", render_policy(&policy));
    Ok(())
}

/// The `PUT` body for `settings`: numbers and booleans as such, the network list as a list.
pub fn policy_changes(settings: &[String]) -> Result<Map<String, Value>> {
    let mut changes = parse_policy_settings(settings)?;
    if let Some(value) = changes.get_mut(LIST_KEY) {
        let text = match &*value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        *value = Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|net| !net.is_empty())
                .map(|net| Value::String(net.to_owned()))
                .collect(),
        );
    }
    Ok(changes)
}

pub fn render_policy(policy: &Map<String, Value>) -> String {
    let width = policy.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in policy {
        let shown = match value {
            Value::String(text) => text.clone(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_owned)
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.push_str(&format!("{key:width$}  {shown}\n"));
    }
    out
}

/// One lockout, as `GET /v1/lockouts` lists it.
pub use mcluster_types::api::LockoutView as Lockout;

pub fn list(ctx: &Context, json: bool, all: bool) -> Result<()> {
    let mut lockouts: Vec<Lockout> = ctx
        .admin_client()?
        .get(LOCKOUTS_PATH)
        .context("list lockouts")?;
    if !all {
        lockouts.retain(|l| l.active);
    }
    if json {
        return print_json(&lockouts);
    }
    if lockouts.is_empty() {
        println!("no lockouts");
        return Ok(());
    }
    print!("{}", render_lockouts(&lockouts));
    Ok(())
}

pub fn render_lockouts(lockouts: &[Lockout]) -> String {
    let mut table = Table::new(&["TARGET", "SINCE", "UNTIL", "ACTIVE", "REASON"]);
    for l in lockouts {
        table.push_row(vec![
            l.target.clone(),
            unix_time(l.since),
            unix_time(l.until),
            if l.active { "yes" } else { "ended" }.into(),
            l.reason.clone(),
        ]);
    }
    table.render()
}

/// `mclusterctl lockouts add TARGET [--secs N] [--reason TEXT]`.
pub fn add(ctx: &Context, target: &str, secs: Option<u64>, reason: Option<&str>) -> Result<()> {
    let mut body = Map::new();
    body.insert("target".into(), Value::String(target.to_owned()));
    if let Some(secs) = secs {
        body.insert("secs".into(), Value::from(secs));
    }
    if let Some(reason) = reason {
        body.insert("reason".into(), Value::String(reason.to_owned()));
    }
    let lockout: Lockout = ctx
        .admin_client()?
        .post(LOCKOUTS_PATH, &body, crate::api::REQUEST_TIMEOUT)
        .with_context(|| format!("lock out {target}"))?;
    println!(
        "locked out {} until {}",
        lockout.target,
        unix_time(lockout.until)
    );
    Ok(())
}

/// `mclusterctl lockouts remove TARGET`: lifts a lockout before it ends.
pub fn remove(ctx: &Context, target: &str) -> Result<()> {
    let path = format!("{LOCKOUTS_PATH}/{}", crate::api::encode_component(target));
    ctx.admin_client()?
        .delete(&path)
        .with_context(|| format!("lift the lockout of {target}"))?;
    println!("lifted the lockout of {target}");
    Ok(())
}
