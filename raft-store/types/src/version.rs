//! Versions (DESIGN.md, "Versions, upgrades and migrations"). A build has its own version
//! (semver, from Cargo) and runs a range of *cluster versions*. The cluster version says what
//! the replicated state may hold: the active one lives in that state, only moves forward, and
//! is raised to the lowest newest version the members report. Whatever a cluster version
//! brings (a command, a table, a field with a new meaning) is a [`Feature`], proposed only once
//! its version is active, so a member of the previous build never meets an entry it cannot
//! read, and until activation a node can go back to the previous build.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Command, NodeId};

#[cfg(test)]
mod tests;

/// This build's version.
pub const BUILD: &str = env!("CARGO_PKG_VERSION");

/// A cluster version: 1, 2, 3 ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterVersion(pub u32);

impl ClusterVersion {
    /// The state as builds before versions wrote it (up to commit c77a153): a store or log
    /// that records no cluster version is at this one.
    pub const V1: ClusterVersion = ClusterVersion(1);
    /// The versions themselves and the features of release 0.1.0 ([`Feature::since`]).
    pub const V2: ClusterVersion = ClusterVersion(2);
    /// Release 0.2.0: read-only tokens, the admin API over HTTPS only, IMAP's `\Recent`, IMAP
    /// MOVE within a mailbox.
    pub const V3: ClusterVersion = ClusterVersion(3);
    /// The newest cluster version this build runs.
    pub const NEWEST: ClusterVersion = ClusterVersion::V3;
    /// The oldest cluster version this build runs: it joins a cluster at this version or
    /// newer, so an upgrade goes one release at a time.
    pub const OLDEST: ClusterVersion = ClusterVersion::V1;

    /// Whether this build can run a cluster at this version.
    pub fn supported(self) -> bool {
        (ClusterVersion::OLDEST..=ClusterVersion::NEWEST).contains(&self)
    }
}

impl fmt::Display for ClusterVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a cluster version brings to the replicated state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// The per-service connection limits and budgets, the message limits and the password
    /// policy (`SetMailPolicyAndLimits`, `SetMailPolicyLimitsAndConnections`,
    /// `SetProtectionSettings`).
    PolicySettings,
    /// Replica moves when a data node leaves or is replaced (`MoveReplicas`, `AddReplicas`,
    /// `ForgetReplicas`).
    ReplicaMoves,
    /// Token rotation (`SetTokenDigest`).
    TokenRotation,
    /// Lockouts of one account from one client address (`LockTarget::AccountFrom` in `Lock`
    /// and `Unlock`). Until it is active they hold on the node that counted the failures only.
    AddressLockouts,
    /// A read-only admin token (`SetTokenDigest` of `TokenKind::ReadOnly`).
    ReadOnlyToken,
    /// The admin API over HTTPS only: plain HTTP is refused (426) unless a node is set to allow
    /// it on a loopback address. Not a command: nodes call each other over HTTPS from then on.
    AdminHttpsOnly,
    /// IMAP's `\Recent`: a session that selects a mailbox claims its new messages
    /// (`ClaimRecent`). Until it is active no message is recent.
    RecentFlag,
    /// IMAP MOVE into the mailbox the messages are in (RFC 6851): `CopyMessages` with
    /// `remove_source` and `from == to`, which older builds refuse when they apply it.
    MoveWithinMailbox,
}

impl Feature {
    pub const ALL: [Feature; 8] = [
        Feature::PolicySettings,
        Feature::ReplicaMoves,
        Feature::TokenRotation,
        Feature::AddressLockouts,
        Feature::ReadOnlyToken,
        Feature::AdminHttpsOnly,
        Feature::RecentFlag,
        Feature::MoveWithinMailbox,
    ];

    /// The cluster version that brings it.
    pub fn since(self) -> ClusterVersion {
        match self {
            Feature::PolicySettings
            | Feature::ReplicaMoves
            | Feature::TokenRotation
            | Feature::AddressLockouts => ClusterVersion::V2,
            Feature::ReadOnlyToken
            | Feature::AdminHttpsOnly
            | Feature::RecentFlag
            | Feature::MoveWithinMailbox => ClusterVersion::V3,
        }
    }

    /// Its name in the admin API and `mclusterctl upgrade status`, and in stored rejections:
    /// never renamed.
    pub fn name(self) -> &'static str {
        match self {
            Feature::PolicySettings => "policy-settings",
            Feature::ReplicaMoves => "replica-moves",
            Feature::TokenRotation => "token-rotation",
            Feature::AddressLockouts => "address-lockouts",
            Feature::ReadOnlyToken => "read-only-token",
            Feature::AdminHttpsOnly => "admin-https-only",
            Feature::RecentFlag => "recent-flag",
            Feature::MoveWithinMailbox => "move-within-mailbox",
        }
    }

    /// What it is, for an operator.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::PolicySettings => {
                "setting per-service connection limits, message limits or the password policy"
            }
            Feature::ReplicaMoves => "moving replicas when a data node leaves or is replaced",
            Feature::TokenRotation => "rotating the admin or join token",
            Feature::AddressLockouts => "locking one account out for one client address",
            Feature::ReadOnlyToken => "setting a read-only token",
            Feature::AdminHttpsOnly => "the admin API over HTTPS only (plain HTTP refused)",
            Feature::RecentFlag => "marking new messages \\Recent for one IMAP session",
            Feature::MoveWithinMailbox => "moving IMAP messages into the mailbox they are in",
        }
    }
}

/// Whether `feature` is active at cluster version `active`.
pub fn active(feature: Feature, active: ClusterVersion) -> bool {
    feature.since() <= active
}

/// Why a command may not be proposed yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} (feature {}) needs cluster version {}, and the cluster runs version {active}: finish \
     the upgrade first (mclusterctl upgrade status)",
    feature.describe(),
    feature.name(),
    feature.since()
)]
pub struct NotActive {
    pub feature: Feature,
    pub active: ClusterVersion,
}

/// The one gate every proposal and every apply passes: a command that a newer cluster version
/// brings waits until that version is active.
pub fn gate(command: &Command, active: ClusterVersion) -> Result<(), NotActive> {
    match command.feature() {
        Some(feature) if !self::active(feature, active) => Err(NotActive { feature, active }),
        _ => Ok(()),
    }
}

/// The build a member runs and the cluster versions it can run, as it last reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberBuild {
    pub node_id: NodeId,
    /// Semver, such as `0.2.0`.
    pub build: String,
    pub oldest: ClusterVersion,
    pub newest: ClusterVersion,
}

impl MemberBuild {
    /// This build, on node `node_id`.
    pub fn this_build(node_id: NodeId, newest: ClusterVersion) -> MemberBuild {
        MemberBuild {
            node_id,
            build: BUILD.to_owned(),
            oldest: ClusterVersion::OLDEST,
            newest,
        }
    }
}
