//! Guarantee 1 as clients see it: every message that got a 250 is retrievable, intact, exactly
//! once, from every data node (unless the workload deleted it); nothing that was never sent, or
//! that the server refused, is ever delivered; nothing deleted comes back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::history::{Attempt, Listing, WorkloadHistory};

#[derive(Debug, Default)]
pub struct MailCheck {
    pub acknowledged: usize,
    /// Acknowledged, not deleted, and missing (or not intact) on at least one data node.
    pub lost: BTreeSet<String>,
    /// Present more than once in one maildrop of one node.
    pub duplicated: BTreeSet<String>,
    /// Delivered but never sent, sent to someone else, or refused by the server.
    pub phantom: BTreeSet<String>,
    /// Deleted (QUIT answered +OK) and seen again.
    pub resurrected: BTreeSet<String>,
    pub problems: Vec<String>,
}

/// At most this many examples per kind of violation in the problem list.
const EXAMPLES: usize = 5;

pub fn check(history: &WorkloadHistory, listings: &[Listing]) -> MailCheck {
    let mut result = MailCheck {
        acknowledged: history.n_acked(),
        ..MailCheck::default()
    };
    let mut details: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut attempts: HashMap<&str, &Attempt> = HashMap::new();
    for attempt in &history.attempts {
        if attempts.insert(&attempt.id, attempt).is_some() {
            details
                .entry("workload")
                .or_default()
                .push(format!("Message-ID {} was sent twice", attempt.id));
        }
    }
    // (user, id) -> time of the first certain deletion; and the maybe-deleted ones.
    let mut deleted: HashMap<(&str, &str), f64> = HashMap::new();
    let mut maybe_deleted: BTreeSet<(&str, &str)> = BTreeSet::new();
    for deletion in &history.deletions {
        let key = (deletion.user.as_str(), deletion.id.as_str());
        if deletion.certain {
            let t = deleted.entry(key).or_insert(deletion.t);
            *t = t.min(deletion.t);
        } else {
            maybe_deleted.insert(key);
        }
    }

    let phantom = |id: &str, user: &str, place: &str| -> Option<String> {
        match attempts.get(id) {
            None => Some(format!("{id} in {user}'s maildrop {place} was never sent")),
            Some(a) if a.user != user => Some(format!(
                "{id} in {user}'s maildrop {place} was sent to {}",
                a.user
            )),
            Some(a) if a.refused() => Some(format!(
                "{id} in {user}'s maildrop {place} was refused (stage {}, code {:?}, {})",
                a.stage,
                a.code,
                a.error.as_deref().unwrap_or("")
            )),
            Some(_) => None,
        }
    };

    for seen in &history.seen {
        if let Some(why) = phantom(&seen.id, &seen.user, "through the VIP") {
            result.phantom.insert(seen.id.clone());
            details.entry("phantom").or_default().push(why);
        }
        if let Some(&t) = deleted.get(&(seen.user.as_str(), seen.id.as_str()))
            && seen.t > t
        {
            result.resurrected.insert(seen.id.clone());
            details.entry("resurrected").or_default().push(format!(
                "{} (UIDL {}) listed through the VIP {:.3} s after it was deleted",
                seen.id,
                seen.uidl,
                seen.t - t
            ));
        }
    }

    for listing in listings {
        for (user, messages) in &listing.users {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for message in messages {
                if let Some(err) = &message.error {
                    details.entry("unretrievable").or_default().push(format!(
                        "UIDL {} ({}) in {user}'s maildrop on {}: {err}",
                        message.uidl, message.id, listing.node
                    ));
                    if message.id.is_empty() {
                        // Nothing to say who it is: reported above, and counted lost below if
                        // it was an acknowledged message (it is not found by its id).
                        continue;
                    }
                }
                *counts.entry(&message.id).or_default() += 1;
                let place = format!("on {}", listing.node);
                if let Some(why) = phantom(&message.id, user, &place) {
                    result.phantom.insert(message.id.clone());
                    details.entry("phantom").or_default().push(why);
                }
                if deleted.contains_key(&(user.as_str(), message.id.as_str())) {
                    result.resurrected.insert(message.id.clone());
                    details.entry("resurrected").or_default().push(format!(
                        "{} is on {} after it was deleted",
                        message.id, listing.node
                    ));
                }
            }
            for (id, n) in counts.into_iter().filter(|(_, n)| *n > 1) {
                result.duplicated.insert(id.to_owned());
                details.entry("duplicated").or_default().push(format!(
                    "{id} is {n} times in {user}'s maildrop on {}",
                    listing.node
                ));
            }
        }
    }

    for attempt in history.attempts.iter().filter(|a| a.acked()) {
        let key = (attempt.user.as_str(), attempt.id.as_str());
        if deleted.contains_key(&key) || maybe_deleted.contains(&key) {
            continue;
        }
        for listing in listings {
            let copies: Vec<_> = listing
                .users
                .get(&attempt.user)
                .map(|messages| messages.iter().filter(|m| m.id == attempt.id).collect())
                .unwrap_or_default();
            let why = if copies.is_empty() {
                "is missing"
            } else if !copies.iter().any(|m| m.body_ok && m.token == attempt.token) {
                "is not intact (body or token differs)"
            } else {
                continue;
            };
            result.lost.insert(attempt.id.clone());
            details.entry("lost").or_default().push(format!(
                "{} (250 at {:.3}, to {}) {why} on {}",
                attempt.id, attempt.end, attempt.user, listing.node
            ));
        }
    }

    push_examples(&mut result.problems, "", details);
    result
}

/// Adds the details of each kind of violation to `problems`, as "{prefix}{kind}: {detail}": at
/// most [`EXAMPLES`] of them, then how many more there were. Also used by the IMAP cache check.
pub(crate) fn push_examples(
    problems: &mut Vec<String>,
    prefix: &str,
    details: BTreeMap<&str, Vec<String>>,
) {
    for (kind, list) in details {
        let n = list.len();
        for line in list.into_iter().take(EXAMPLES) {
            problems.push(format!("{prefix}{kind}: {line}"));
        }
        if n > EXAMPLES {
            problems.push(format!("{prefix}{kind}: ... {} more", n - EXAMPLES));
        }
    }
}

#[cfg(test)]
mod tests;
