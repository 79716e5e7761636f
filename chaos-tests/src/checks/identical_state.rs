//! Every node holds the same state: the state-machine digests of all nodes (`GET /v1/digest`)
//! agree once they have applied the same index, and every data node serves the same maildrops
//! (the same UIDLs naming the same messages).

use std::collections::{BTreeMap, BTreeSet};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::history::Listing;

#[derive(Debug, Default)]
pub struct StateCheck {
    /// The index at which all digests were compared and agreed.
    pub agreed_at: Option<u64>,
    pub problems: Vec<String>,
}

/// Polls every node's digest until all report the same applied index (the cluster must be idle
/// by then), and compares them there. A mismatch must be seen three times in a row at the
/// same index before it counts, so a digest read while an entry was being applied cannot fail
/// the check; a real divergence does not go away.
pub fn check_digests(cluster: &Cluster, timeout: Duration) -> StateCheck {
    let deadline = Instant::now() + timeout;
    let mut mismatches = 0;
    loop {
        let mut reports = BTreeMap::new();
        for node in &cluster.nodes {
            if let Ok(value) =
                cluster
                    .api
                    .get_from(&node.admin_url(), "/v1/digest", Duration::from_secs(5))
                && let (Some(index), Some(digest)) =
                    (value["applied_index"].as_u64(), value["digest"].as_str())
            {
                reports.insert(node.name.clone(), (index, digest.to_owned()));
            }
        }
        let last_seen = format!("{reports:?}");
        let indexes: BTreeSet<u64> = reports.values().map(|(i, _)| *i).collect();
        if reports.len() == cluster.nodes.len() && indexes.len() == 1 {
            let index = *indexes.first().expect("one index");
            let digests: BTreeSet<&str> = reports.values().map(|(_, d)| d.as_str()).collect();
            if digests.len() == 1 {
                return StateCheck {
                    agreed_at: Some(index),
                    problems: Vec::new(),
                };
            }
            mismatches += 1;
            if mismatches >= 3 {
                return StateCheck {
                    agreed_at: None,
                    problems: vec![format!(
                        "state machines differ at applied index {index}: {reports:?}"
                    )],
                };
            }
        } else {
            mismatches = 0;
        }
        if Instant::now() > deadline {
            return StateCheck {
                agreed_at: None,
                problems: vec![format!(
                    "nodes did not reach one applied index within {timeout:?}; last digests: \
                     {last_seen}"
                )],
            };
        }
        sleep(Duration::from_millis(200));
    }
}

/// The data nodes' final listings must be identical.
pub fn check_listings(listings: &[Listing]) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(first) = listings.first() else {
        return vec!["no final listing to compare".into()];
    };
    let view = |l: &Listing| -> BTreeMap<String, BTreeSet<(String, String)>> {
        l.users
            .iter()
            .map(|(user, messages)| {
                let set = messages
                    .iter()
                    .map(|m| (m.uidl.clone(), m.id.clone()))
                    .collect();
                (user.clone(), set)
            })
            .collect()
    };
    let reference = view(first);
    for other in &listings[1..] {
        let theirs = view(other);
        for (user, ours) in &reference {
            let empty = BTreeSet::new();
            let their = theirs.get(user).unwrap_or(&empty);
            let only_first: Vec<_> = ours.difference(their).take(5).collect();
            let only_other: Vec<_> = their.difference(ours).take(5).collect();
            if !only_first.is_empty() || !only_other.is_empty() {
                problems.push(format!(
                    "{user}'s maildrop differs: only on {}: {only_first:?}; only on {}: \
                     {only_other:?}",
                    first.node, other.node
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
pub(crate) mod tests;
