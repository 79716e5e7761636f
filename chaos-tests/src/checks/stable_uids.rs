//! Guarantee 4 as POP3 clients see it: a maildrop's UIDVALIDITY never changes, a UID never
//! names two different messages, and a message keeps its UID, across every observation through
//! the VIP and the final listings of every node. (UIDL values are `uidvalidity.uid`.)

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Listing, WorkloadHistory};

#[derive(Debug, Default)]
pub struct UidCheck {
    /// Observations (user, UIDL, Message-ID) checked.
    pub observations: usize,
    pub problems: Vec<String>,
}

pub fn check(history: &WorkloadHistory, listings: &[Listing]) -> UidCheck {
    let mut observations: Vec<(&str, &str, &str, String)> = Vec::new();
    for seen in &history.seen {
        observations.push((&seen.user, &seen.uidl, &seen.id, "the VIP".into()));
    }
    for listing in listings {
        for (user, messages) in &listing.users {
            for m in messages.iter().filter(|m| !m.id.is_empty()) {
                observations.push((user, &m.uidl, &m.id, listing.node.clone()));
            }
        }
    }
    let mut result = UidCheck {
        observations: observations.len(),
        ..UidCheck::default()
    };
    let mut validity: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut by_uid: BTreeMap<(&str, u64), BTreeSet<&str>> = BTreeMap::new();
    let mut by_id: BTreeMap<(&str, &str), BTreeSet<u64>> = BTreeMap::new();
    for (user, uidl, id, place) in &observations {
        let parsed = uidl
            .split_once('.')
            .and_then(|(v, u)| Some((v.parse::<u64>().ok()?, u.parse::<u64>().ok()?)));
        let Some((v, uid)) = parsed else {
            result.problems.push(format!(
                "UIDL {uidl:?} of {user} on {place} is not uidvalidity.uid"
            ));
            continue;
        };
        validity.entry(user).or_default().insert(v);
        by_uid.entry((user, uid)).or_default().insert(id);
        by_id.entry((user, id)).or_default().insert(uid);
    }
    for (user, values) in validity.iter().filter(|(_, v)| v.len() > 1) {
        result
            .problems
            .push(format!("UIDVALIDITY of {user} changed: {values:?}"));
    }
    for ((user, uid), ids) in by_uid.iter().filter(|(_, ids)| ids.len() > 1) {
        result.problems.push(format!(
            "UID {uid} of {user} named different messages: {ids:?}"
        ));
    }
    for ((user, id), uids) in by_id.iter().filter(|(_, uids)| uids.len() > 1) {
        result.problems.push(format!(
            "{id} in {user}'s maildrop had several UIDs: {uids:?}"
        ));
    }
    result
}

#[cfg(test)]
mod tests;
