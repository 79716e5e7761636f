//! The cluster version in the replicated state: what each member reported it runs, the active
//! version, and raising it (see `mcluster_types::version`). Both live in the settings table
//! under keys of their own, so stores and logs written before versions keep their encoding; a
//! store without them is at [`ClusterVersion::V1`].

use crate::db::{CF_SETTINGS, KEY_CLUSTER_VERSION, KEY_MEMBER_BUILDS};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{ClusterVersion, CommandResult, MemberBuild, NodeId, Rejection};

impl StateReader {
    /// The active cluster version.
    pub fn cluster_version(&self) -> Result<ClusterVersion, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_CLUSTER_VERSION)?
            .unwrap_or(ClusterVersion::V1))
    }

    /// What each node last reported it runs, by node id (removed members' reports too).
    pub fn member_builds(&self) -> Result<Vec<MemberBuild>, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_MEMBER_BUILDS)?
            .unwrap_or_default())
    }

    /// The newest cluster version every current member (voters and learners) reported it
    /// runs; Err names the members that hold the cluster back because they have not reported.
    pub fn runnable_version(&self) -> Result<Result<ClusterVersion, Vec<NodeId>>, StoreError> {
        let builds = self.member_builds()?;
        let membership = self.membership()?;
        let mut newest = ClusterVersion(u32::MAX);
        let mut unreported = Vec::new();
        for (id, _) in membership.membership().nodes() {
            match builds.iter().find(|b| b.node_id == *id) {
                Some(build) => newest = newest.min(build.newest),
                None => unreported.push(*id),
            }
        }
        if !unreported.is_empty() {
            return Ok(Err(unreported));
        }
        // No members at all: nothing to run (a store before the first membership entry).
        Ok(Ok(if newest.0 == u32::MAX {
            ClusterVersion::V1
        } else {
            newest
        }))
    }
}

/// A member's report replaces its previous one.
pub(crate) fn report_build(
    reader: &StateReader,
    report: &MemberBuild,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let mut builds = reader.member_builds()?;
    builds.retain(|b| b.node_id != report.node_id);
    builds.push(report.clone());
    builds.sort_by_key(|b| b.node_id);
    staged.put(CF_SETTINGS, KEY_MEMBER_BUILDS, &builds);
    Ok(CommandResult::Done)
}

/// Raises the active version: only forward, and only to a version every member runs. Setting
/// the active version again is a no-op.
pub(crate) fn set_cluster_version(
    reader: &StateReader,
    version: ClusterVersion,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let active = reader.cluster_version()?;
    if version == active {
        return Ok(CommandResult::Done);
    }
    if version < active {
        return Ok(CommandResult::Rejected(Rejection::ClusterVersion(format!(
            "the cluster runs version {active}; a cluster version never goes back (to \
             {version})"
        ))));
    }
    match reader.runnable_version()? {
        Ok(runnable) if runnable >= version => {}
        Ok(runnable) => {
            return Ok(CommandResult::Rejected(Rejection::ClusterVersion(format!(
                "not every member runs cluster version {version} yet (all of them run up to \
                 {runnable}): upgrade the others first"
            ))));
        }
        Err(unreported) => {
            return Ok(CommandResult::Rejected(Rejection::ClusterVersion(format!(
                "nodes {unreported:?} have not reported their build yet: start them on the \
                 new build first"
            ))));
        }
    }
    staged.put(CF_SETTINGS, KEY_CLUSTER_VERSION, &version);
    Ok(CommandResult::Done)
}
