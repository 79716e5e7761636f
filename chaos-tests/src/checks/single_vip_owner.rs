//! Guarantee 2 as the LAN sees it: in no ARP round did two different MACs answer for the VIP.
//! Also reads the ownership timeline out of the rounds (who answered, from when to when).

use crate::history::{ArpHistory, ArpRound};
use crate::lab::{Host, Lab};

/// A stretch of consecutive rounds with the same answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub from: f64,
    pub to: f64,
    /// Host names that answered (empty: nobody).
    pub owners: Vec<String>,
}

#[derive(Debug, Default)]
pub struct VipCheck {
    pub rounds: usize,
    /// Rounds in which two or more MACs answered.
    pub double: Vec<ArpRound>,
    pub timeline: Vec<Span>,
    pub problems: Vec<String>,
}

impl VipCheck {
    /// The first time at or after `t` that a host other than `old` answered alone.
    pub fn new_owner_after(&self, t: f64, old: &str) -> Option<(f64, String)> {
        self.timeline
            .iter()
            .filter(|s| s.to >= t && s.owners.len() == 1 && s.owners[0] != old)
            .map(|s| (s.from.max(t), s.owners[0].clone()))
            .next()
    }

    /// The longest stretch without any owner, in seconds.
    pub fn longest_gap(&self) -> f64 {
        self.timeline
            .iter()
            .filter(|s| s.owners.is_empty())
            .map(|s| s.to - s.from)
            .fold(0.0, f64::max)
    }
}

pub fn check(arp: &ArpHistory, lab: &Lab) -> VipCheck {
    let name = |mac: &str| match lab.host_of_mac(mac) {
        Some(host @ Host::Node(_)) => host.name(),
        Some(other) => format!("{}!", other.name()),
        None => format!("unknown {mac}"),
    };
    check_with(arp, name)
}

pub fn check_with(arp: &ArpHistory, name: impl Fn(&str) -> String) -> VipCheck {
    let mut result = VipCheck {
        rounds: arp.rounds.len(),
        ..VipCheck::default()
    };
    for round in &arp.rounds {
        let mut owners: Vec<String> = round.macs.iter().map(|m| name(m)).collect();
        owners.sort();
        owners.dedup();
        if owners.len() > 1 {
            result.double.push(round.clone());
        }
        for owner in owners
            .iter()
            .filter(|o| o.starts_with("unknown") || o.ends_with('!'))
        {
            result.problems.push(format!(
                "round {} answered by {owner}, not a node",
                round.round
            ));
        }
        match result.timeline.last_mut() {
            Some(span) if span.owners == owners => span.to = round.t,
            _ => result.timeline.push(Span {
                from: round.t,
                to: round.t,
                owners,
            }),
        }
    }
    if let Some(first) = result.double.first() {
        result.problems.push(format!(
            "two owners of the VIP in {} rounds; first: round {} at {:.3}: {:?}",
            result.double.len(),
            first.round,
            first.t,
            first.macs
        ));
    }
    if !arp.unattributed.is_empty() {
        result.problems.push(format!(
            "{} ARP replies came too late to tell which round they answered: {:?}",
            arp.unattributed.len(),
            &arp.unattributed[..arp.unattributed.len().min(5)]
        ));
    }
    if !arp.send_errors.is_empty() {
        result.problems.push(format!(
            "the observer could not send {} requests: {:?}",
            arp.send_errors.len(),
            &arp.send_errors[..arp.send_errors.len().min(3)]
        ));
    }
    // Rounds are numbered from 0 without gaps; a missing one was not observed.
    if let Some(last) = arp.rounds.last()
        && last.round + 1 != arp.rounds.len() as u64
    {
        result.problems.push(format!(
            "the observer reported {} of {} rounds",
            arp.rounds.len(),
            last.round + 1
        ));
    }
    result
}

#[cfg(test)]
mod tests;
