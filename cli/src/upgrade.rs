//! `mclusterctl upgrade status|finalize` (`/v1/upgrade`): the active cluster version, the
//! build each member runs, what a newer version would bring, and raising it by hand when
//! `[upgrade] auto-finalize` is off (docs/OPERATIONS.md, "Upgrades").

use anyhow::{Context as _, Result};

use crate::api::UpgradeStatus;
use crate::commands::{Context, print_json};
use crate::table::Table;

#[cfg(test)]
mod tests;

const PATH: &str = "/v1/upgrade";
const FINALIZE_PATH: &str = "/v1/upgrade/finalize";

pub fn status(ctx: &Context, json: bool) -> Result<()> {
    let status: UpgradeStatus = ctx
        .admin_client()?
        .get(PATH)
        .context("get the upgrade status")?;
    if json {
        return print_json(&status);
    }
    print!("{}", render(&status));
    Ok(())
}

pub fn finalize(ctx: &Context) -> Result<()> {
    let client = ctx.admin_client()?;
    let before: UpgradeStatus = client.get(PATH).context("get the upgrade status")?;
    let after: UpgradeStatus = client
        .post(
            FINALIZE_PATH,
            &serde_json::json!({}),
            crate::api::REQUEST_TIMEOUT,
        )
        .context("finalize the upgrade")?;
    if after.active > before.active {
        println!(
            "the cluster runs cluster version {} now (was {}); the previous build can no \
             longer run it",
            after.active, before.active
        );
    } else {
        println!(
            "nothing to finalize: the cluster runs cluster version {}, the newest every member \
             runs",
            after.active
        );
    }
    print!("{}", render(&after));
    Ok(())
}

pub fn render(status: &UpgradeStatus) -> String {
    let mut out = format!("active cluster version: {}\n", status.active);
    match status.runnable {
        Some(runnable) if runnable > status.active => out.push_str(&format!(
            "every member runs cluster version {runnable}: {}\n",
            if status.auto_finalize {
                "the leader raises it shortly"
            } else {
                "raise it with `mclusterctl upgrade finalize` (there is no way back after)"
            }
        )),
        Some(_) => {}
        None => out.push_str("waiting for members to report their build (start them)\n"),
    }
    let mut table = Table::new(&["NODE", "NAME", "ROLE", "BUILD", "CLUSTER VERSIONS"]);
    for m in &status.members {
        let versions = match (m.oldest, m.newest) {
            (Some(oldest), Some(newest)) => format!("{oldest} to {newest}"),
            _ => "-".to_owned(),
        };
        table.push_row(vec![
            m.node_id.to_string(),
            m.name.clone(),
            m.role.to_string(),
            m.build.clone().unwrap_or_else(|| "not reported".to_owned()),
            versions,
        ]);
    }
    out.push_str(&table.render());
    if !status.waiting.is_empty() {
        out.push_str("waiting for a newer cluster version:\n");
        for f in &status.waiting {
            out.push_str(&format!(
                "  {} (version {}): {}\n",
                f.name, f.since, f.description
            ));
        }
    }
    out
}
