//! Rolling upgrades on this node (docs/OPERATIONS.md, "Upgrades"): it reports the build it
//! runs into the replicated state, and as the leader raises the active cluster version once
//! every member runs it (unless `[upgrade] auto-finalize` is off, when only `mclusterctl
//! upgrade finalize` does). What a version brings is gated in `Cluster::write` and again in
//! the state machine (`raft_store::version`).

use std::sync::Arc;
use std::time::Duration;

use raft_store::api::{FeatureView, MemberUpgradeView, UpgradeStatus};
use raft_store::{ClusterVersion, Command, CommandResult, Feature, MemberBuild};

use crate::cluster::{Cluster, ClusterError};

/// How often a node checks its report and, as the leader, whether the version can rise.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// What this node runs.
pub fn this_build(cluster: &Cluster) -> MemberBuild {
    MemberBuild::this_build(
        cluster.config.node_id,
        cluster.config.newest_cluster_version,
    )
}

/// Runs for the node's life: keeps its report current and, on the leader, finalizes.
pub async fn run(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = report(&cluster).await {
            tracing::debug!(error = %err, "could not report this node's build yet");
            continue;
        }
        if cluster.config.auto_finalize
            && cluster.is_leader()
            && can_rise(&cluster).unwrap_or(false)
            && let Err(err) = finalize(&cluster).await
        {
            tracing::warn!(error = %err, "could not raise the cluster version");
        }
    }
}

/// Writes this node's report unless the state has it already. Only a member reports: a node
/// that is still joining is not one yet.
pub async fn report(cluster: &Cluster) -> Result<(), ClusterError> {
    let mine = this_build(cluster);
    let is_member = cluster
        .metrics()
        .membership_config
        .membership()
        .get_node(&mine.node_id)
        .is_some();
    let reported = cluster
        .reader
        .member_builds()
        .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
    if !is_member || reported.contains(&mine) {
        return Ok(());
    }
    cluster.write_ok(Command::ReportBuild(mine.clone())).await?;
    tracing::info!(
        build = %mine.build,
        newest = %mine.newest,
        "reported this node's build to the cluster"
    );
    Ok(())
}

/// Raises the active version to the newest every member runs: Some(the new version), or None
/// when every member runs no newer one than the active. A member that has not reported yet
/// holds it back (a conflict naming it).
pub async fn finalize(cluster: &Cluster) -> Result<Option<ClusterVersion>, ClusterError> {
    let store = |e: raft_store::StoreError| ClusterError::Unavailable(e.to_string());
    cluster.linearize().await?;
    let active = cluster.reader.cluster_version().map_err(store)?;
    let target = match cluster.reader.runnable_version().map_err(store)? {
        Ok(runnable) if runnable <= active => return Ok(None),
        Ok(runnable) => runnable,
        Err(unreported) => {
            return Err(ClusterError::Conflict(format!(
                "nodes {unreported:?} have not reported their build: start them (on the new \
                 build) first"
            )));
        }
    };
    cluster
        .write_ok(Command::SetClusterVersion { version: target })
        .await?;
    tracing::info!(from = %active, to = %target, "cluster version raised");
    Ok(Some(target))
}

/// Whether every member runs a newer version than the active one (by this node's state).
fn can_rise(cluster: &Cluster) -> Result<bool, raft_store::StoreError> {
    let active = cluster.reader.cluster_version()?;
    Ok(matches!(cluster.reader.runnable_version()?, Ok(runnable) if runnable > active))
}

/// The upgrade status as this node's applied state has it.
pub fn status(cluster: &Cluster) -> Result<UpgradeStatus, raft_store::StoreError> {
    let reader = &cluster.reader;
    let active = reader.cluster_version()?;
    let builds = reader.member_builds()?;
    let membership = reader.membership()?;
    let members = membership
        .membership()
        .nodes()
        .map(|(id, member)| {
            let build = builds.iter().find(|b| b.node_id == *id);
            MemberUpgradeView {
                node_id: *id,
                name: member.name.clone(),
                role: member.role,
                build: build.map(|b| b.build.clone()),
                oldest: build.map(|b| b.oldest),
                newest: build.map(|b| b.newest),
            }
        })
        .collect();
    let waiting = Feature::ALL
        .into_iter()
        .filter(|f| f.since() > active)
        .map(|f| FeatureView {
            name: f.name().to_owned(),
            since: f.since(),
            description: f.describe().to_owned(),
        })
        .collect();
    Ok(UpgradeStatus {
        active,
        runnable: reader.runnable_version()?.ok(),
        auto_finalize: cluster.config.auto_finalize,
        members,
        waiting,
    })
}

/// Whether a node running `build` may become a member of a cluster at `active`; Err: why not,
/// for the operator, naming the builds the members run.
pub fn check_joiner(
    build: &MemberBuild,
    active: ClusterVersion,
    members: &[MemberBuild],
) -> Result<(), String> {
    let runs = format!(
        "node {} runs build {}, which runs cluster versions {} to {}",
        build.node_id, build.build, build.oldest, build.newest
    );
    if active > build.newest {
        let mut needed: Vec<&str> = members
            .iter()
            .filter(|m| (m.oldest..=m.newest).contains(&active))
            .map(|m| m.build.as_str())
            .collect();
        needed.sort_unstable();
        needed.dedup();
        let install = if needed.is_empty() {
            format!("a build that runs cluster version {active}")
        } else {
            format!("the build the members run ({})", needed.join(", "))
        };
        return Err(format!(
            "the cluster runs cluster version {active} and {runs}: install {install} on it"
        ));
    }
    if active < build.oldest {
        return Err(format!(
            "the cluster runs cluster version {active} and {runs}: a build may skip no release; \
             first upgrade the cluster to a release that runs both"
        ));
    }
    Ok(())
}

/// Refuses to start on a store whose cluster runs a version this build does not: after an
/// upgrade was finalized the previous build cannot go back (it would meet entries it cannot
/// read), and says which build it needs instead of failing on the first such entry.
pub fn check_store(reader: &raft_store::StateReader, newest: ClusterVersion) -> anyhow::Result<()> {
    let active = reader.cluster_version()?;
    if active > newest {
        anyhow::bail!(
            "this node's data is of a cluster that runs cluster version {active}, and this build \
             ({}) runs cluster versions {} to {newest}: the upgrade to the newer build was \
             finalized, so this build cannot go back; install the build the other members run \
             (mclusterctl upgrade status shows it)",
            raft_store::version::BUILD,
            ClusterVersion::OLDEST
        );
    }
    Ok(())
}

/// Writes this node's report and makes a new cluster's version this build's newest: a cluster
/// that never ran an older build has nothing to go back to.
pub async fn start_new_cluster(cluster: &Cluster) -> Result<(), ClusterError> {
    report(cluster).await?;
    let newest = cluster.config.newest_cluster_version;
    match cluster
        .write(Command::SetClusterVersion { version: newest })
        .await?
    {
        CommandResult::Done => Ok(()),
        CommandResult::Rejected(rejection) => Err(ClusterError::Rejected(rejection)),
        other => Err(ClusterError::Unavailable(format!(
            "unexpected result setting the cluster version: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests;
