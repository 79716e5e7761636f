//! Abuse protection as replicated state: the protection policy every node enforces alike, and
//! the lockouts that failed logins earn. A lockout is committed through Raft, so it holds on
//! every node and survives a failover; the counting that leads to one stays in the memory of
//! the node that sees the failures (the VIP holder, normally), which is what makes it cheap.

pub use mcluster_types::protection::*;

use crate::db::{
    CF_LOCKOUTS, CF_SETTINGS, KEY_CONNECTION_BUDGETS, KEY_PASSWORD_POLICY, KEY_PROTECTION_POLICY,
};
use crate::error::StoreError;
use crate::reader::{Staged, StateReader};
use crate::types::{CommandResult, Rejection};

pub(crate) fn set_policy(policy: &ProtectionPolicy, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_PROTECTION_POLICY, policy);
}

pub(crate) fn set_budgets(budgets: &ConnectionBudgets, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_CONNECTION_BUDGETS, budgets);
}

pub(crate) fn set_password_policy(policy: &PasswordPolicy, staged: &mut Staged<'_>) {
    staged.put(CF_SETTINGS, KEY_PASSWORD_POLICY, policy);
}

/// Records a lockout (replacing one of the same target), and drops the lockouts that ended
/// before it began: the table holds current lockouts only, decided by the command's own time.
pub(crate) fn lock(
    reader: &StateReader,
    lockout: &Lockout,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    for ended in reader.lockouts()? {
        if ended.until <= lockout.since && ended.target != lockout.target {
            staged.delete(CF_LOCKOUTS, &ended.target.key());
        }
    }
    staged.put(CF_LOCKOUTS, &lockout.target.key(), lockout);
    Ok(CommandResult::Done)
}

/// Lifts a lockout. Lifting `account:NAME` also lifts the account's lockouts for single client
/// addresses, so the owner can log in again from anywhere.
pub(crate) fn unlock(
    reader: &StateReader,
    target: &LockTarget,
    staged: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let mut lifted: Vec<LockTarget> = reader
        .lockout(target)?
        .map(|l| l.target)
        .into_iter()
        .collect();
    if let LockTarget::Account(name) = target {
        lifted.extend(
            reader
                .lockouts()?
                .into_iter()
                .filter_map(|l| match l.target {
                    LockTarget::AccountFrom { ref account, .. } if account == name => {
                        Some(l.target)
                    }
                    _ => None,
                }),
        );
    }
    if lifted.is_empty() {
        return Ok(CommandResult::Rejected(Rejection::NoLockout(
            target.to_string(),
        )));
    }
    for target in lifted {
        staged.delete(CF_LOCKOUTS, &target.key());
    }
    Ok(CommandResult::Done)
}

/// Protection reads of the applied state.
impl StateReader {
    pub fn protection_policy(&self) -> Result<ProtectionPolicy, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_PROTECTION_POLICY)?
            .unwrap_or_default())
    }

    /// The per-service connection budgets; for a store that has none yet, those its legacy
    /// shared rate implies.
    pub fn connection_budgets(&self) -> Result<ConnectionBudgets, StoreError> {
        match self.db.get(CF_SETTINGS, KEY_CONNECTION_BUDGETS)? {
            Some(budgets) => Ok(budgets),
            None => Ok(ConnectionBudgets::from_legacy(
                self.protection_policy()?.connections_per_minute_per_ip,
            )),
        }
    }

    pub fn password_policy(&self) -> Result<PasswordPolicy, StoreError> {
        Ok(self
            .db
            .get(CF_SETTINGS, KEY_PASSWORD_POLICY)?
            .unwrap_or_default())
    }

    /// The lockout of `target`, if one is recorded (it may have ended: compare `until`).
    pub fn lockout(&self, target: &LockTarget) -> Result<Option<Lockout>, StoreError> {
        self.db.get(CF_LOCKOUTS, &target.key())
    }

    /// Whether `target` is locked out at `now` (unix seconds).
    pub fn locked(&self, target: &LockTarget, now: u64) -> Result<bool, StoreError> {
        Ok(self.lockout(target)?.is_some_and(|l| l.until > now))
    }

    /// Every recorded lockout, ended ones included until the next lockout clears them.
    pub fn lockouts(&self) -> Result<Vec<Lockout>, StoreError> {
        self.db.scan(CF_LOCKOUTS)
    }
}
