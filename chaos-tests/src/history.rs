//! What the clients saw, as the checkers read it: the workload's send attempts, POP3
//! observations and deletions (`clients/workload.py`), final listings of every node's
//! mailboxes, and the ARP observer's rounds (`clients/arp_observer.py`). Times are seconds of
//! CLOCK_MONOTONIC, the clock the harness stamps faults with ([`monotonic_now`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use nix::time::{ClockId, clock_gettime};
use serde::Deserialize;
use serde_json::Value;

/// CLOCK_MONOTONIC in seconds: the same clock as Python's `time.monotonic()` in the clients.
pub fn monotonic_now() -> f64 {
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always there");
    now.tv_sec() as f64 + now.tv_nsec() as f64 / 1e9
}

/// One SMTP transaction of the workload: one Message-ID, never retried.
#[derive(Debug, Clone, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub token: String,
    pub user: String,
    pub start: f64,
    pub end: f64,
    /// The reply to DATA, if DATA was answered.
    pub code: Option<u16>,
    /// The last step that started: connect, ehlo, mail, rcpt, data, done.
    pub stage: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl Attempt {
    /// The server said 250 to DATA: the message must be delivered exactly once.
    pub fn acked(&self) -> bool {
        self.code == Some(250)
    }

    /// The server certainly did not take the message: it refused DATA (or an earlier step) or
    /// the message was never sent. Only an attempt cut off while DATA was in flight may or may
    /// not have been delivered.
    pub fn refused(&self) -> bool {
        match self.code {
            Some(code) => code != 250,
            None => self.stage != "data",
        }
    }
}

/// The reader listed a message through the VIP.
#[derive(Debug, Clone, Deserialize)]
pub struct Seen {
    pub user: String,
    pub uidl: String,
    pub id: String,
    pub t: f64,
}

/// The reader deleted a message (QUIT answered +OK), or may have (the session broke after DELE).
#[derive(Debug, Clone)]
pub struct Deletion {
    pub user: String,
    pub uidl: String,
    pub id: String,
    pub t: f64,
    pub certain: bool,
}

#[derive(Debug, Default)]
pub struct WorkloadHistory {
    pub attempts: Vec<Attempt>,
    pub seen: Vec<Seen>,
    pub deletions: Vec<Deletion>,
    pub pop_errors: Vec<String>,
    /// The workload wrote its end line (it was not killed).
    pub finished: bool,
}

impl WorkloadHistory {
    pub fn parse(path: &Path) -> Result<WorkloadHistory> {
        let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let mut history = WorkloadHistory::default();
        for (n, line) in text.lines().enumerate() {
            let value: Value = match serde_json::from_str(line) {
                Ok(value) => value,
                // A line cut short by a kill: only the last line can be.
                Err(_) if n + 1 == text.lines().count() => continue,
                Err(err) => return Err(err).with_context(|| format!("line {}", n + 1)),
            };
            let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
            match value["ev"].as_str() {
                Some("send") => history.attempts.push(
                    serde_json::from_value(value.clone())
                        .with_context(|| format!("send record {line}"))?,
                ),
                Some("seen") => history.seen.push(
                    serde_json::from_value(value.clone())
                        .with_context(|| format!("seen record {line}"))?,
                ),
                Some(ev @ ("deleted" | "delete_unknown")) => history.deletions.push(Deletion {
                    user: field("user"),
                    uidl: field("uidl"),
                    id: field("id"),
                    t: value["t"].as_f64().unwrap_or_default(),
                    certain: ev == "deleted",
                }),
                Some("pop_error") => history.pop_errors.push(field("error")),
                Some("end") => history.finished = true,
                _ => {}
            }
        }
        Ok(history)
    }

    pub fn n_acked(&self) -> usize {
        self.attempts.iter().filter(|a| a.acked()).count()
    }

    /// The longest time, in seconds, between two 250s in a row that overlaps `from..to`: how
    /// long senders saw no message taken during that window (at least the time between
    /// messages under this load). None without a 250 on each side of the window.
    pub fn longest_gap(&self, from: f64, to: f64) -> Option<f64> {
        let mut acks: Vec<f64> = self
            .attempts
            .iter()
            .filter(|a| a.acked())
            .map(|a| a.end)
            .collect();
        acks.sort_by(f64::total_cmp);
        let before = acks.iter().rposition(|&t| t <= from)?;
        let after = acks.iter().position(|&t| t >= to)?;
        acks[before..=after]
            .windows(2)
            .map(|w| w[1] - w[0])
            .reduce(f64::max)
    }

    /// The first attempt that started at or after `t` and got a 250: (its end, the attempt).
    pub fn first_ack_after(&self, t: f64) -> Option<&Attempt> {
        self.attempts
            .iter()
            .filter(|a| a.acked() && a.start >= t)
            .min_by(|a, b| a.end.total_cmp(&b.end))
    }
}

/// One message of a final listing: read in full (RETR) from one node.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub uidl: String,
    pub id: String,
    pub token: String,
    /// The body is exactly what the workload sent for this token.
    pub body_ok: bool,
    /// The server's -ERR when it could not serve the message (id and token may be empty).
    #[serde(default)]
    pub error: Option<String>,
}

/// Every user's maildrop as one node serves it, after the cluster healed.
#[derive(Debug, Clone)]
pub struct Listing {
    pub node: String,
    pub users: BTreeMap<String, Vec<Listed>>,
}

/// One round of the ARP observer: who answered the who-has for the VIP.
#[derive(Debug, Clone, Deserialize)]
pub struct ArpRound {
    pub round: u64,
    pub t: f64,
    pub macs: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ArpHistory {
    pub rounds: Vec<ArpRound>,
    /// Gratuitous ARP seen for the VIP: (time, MAC).
    pub gratuitous: Vec<(f64, String)>,
    /// Replies that arrived too late to be given to their round.
    pub unattributed: Vec<(f64, String)>,
    pub send_errors: Vec<String>,
    pub finished: bool,
}

impl ArpHistory {
    pub fn parse(path: &Path) -> Result<ArpHistory> {
        let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let mut history = ArpHistory::default();
        let n_lines = text.lines().count();
        for (n, line) in text.lines().enumerate() {
            let value: Value = match serde_json::from_str(line) {
                Ok(value) => value,
                Err(_) if n + 1 == n_lines => continue,
                Err(err) => return Err(err).with_context(|| format!("line {}", n + 1)),
            };
            let t = value["t"].as_f64().unwrap_or_default();
            if value.get("round").is_some() {
                history.rounds.push(serde_json::from_value(value)?);
            } else if let Some(mac) = value["garp"].as_str() {
                history.gratuitous.push((t, mac.to_owned()));
            } else if let Some(mac) = value["late"].as_str() {
                history.unattributed.push((t, mac.to_owned()));
            } else if let Some(err) = value["send_error"].as_str() {
                history.send_errors.push(err.to_owned());
            } else if value.get("end").is_some() {
                history.finished = true;
            }
        }
        history.rounds.sort_by_key(|r| r.round);
        Ok(history)
    }
}

#[cfg(test)]
mod tests;
