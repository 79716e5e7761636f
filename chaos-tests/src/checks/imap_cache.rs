//! Guarantee 4 as an IMAP client's cache sees it across a kill -9 of the VIP holder
//! (`clients/imap_cache.py`): after reconnecting through the VIP, every mailbox it cached has
//! the same UIDVALIDITY; every cached UID is still there with the same message, flags and
//! MODSEQ (or was deleted by the workload's POP3 reader, which recorded it); no UID below the
//! cached UIDNEXT appears that was not cached; CHANGEDSINCE the cached HIGHESTMODSEQ reports
//! nothing; every message acknowledged before a SELECT is in that SELECT's listing; the
//! client's own changes made before the fault are in its cache; and an IDLE connection through
//! the VIP notices the holder's death within a bound instead of hanging.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::checks::no_acked_mail_lost::push_examples;
use crate::history::WorkloadHistory;

/// The client's two sessions: the one that caches and changes mailboxes, and the one idling.
pub const SESSIONS: [&str; 2] = ["cache", "idle"];

/// How long after the kill a session may take to notice that its connection is dead.
pub const DROP_NOTICED_WITHIN_S: f64 = 10.0;

/// The mailbox every delivery goes to (and the only one the POP3 reader sees).
const INBOX: &str = "INBOX";

/// One message of a snapshot.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CachedMessage {
    pub uid: u32,
    /// As the server sent them (without `\Recent`), sorted.
    pub flags: Vec<String>,
    pub modseq: u64,
    pub id: String,
    pub token: String,
    /// The body is exactly what was sent for this token.
    pub body_ok: bool,
}

/// A mailbox as the client read it: SELECT, then UID FETCH 1:*.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub session: String,
    /// "cached" (before the fault) or "after" (after reconnecting).
    pub phase: String,
    pub user: String,
    pub mailbox: String,
    /// SELECT sent; SELECT answered; the listing read.
    pub t_select: f64,
    pub t_selected: f64,
    pub t_end: f64,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub messages: Vec<CachedMessage>,
}

/// A flag change the client made: "+" added, "-" removed, "=" replaced (STORE, or APPEND's
/// flags).
#[derive(Debug, Clone, Deserialize)]
pub struct FlagChange {
    pub user: String,
    pub mailbox: String,
    pub uid: u32,
    pub op: String,
    pub flags: Vec<String>,
}

/// The first SELECT that worked after a session's connection dropped.
#[derive(Debug, Clone, Deserialize)]
pub struct Selected {
    pub session: String,
    pub t: f64,
    pub attempts: u32,
    pub last_error: String,
}

/// What UID FETCH 1:<cached UIDNEXT-1> (CHANGEDSINCE <cached HIGHESTMODSEQ>) returned.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangedSince {
    pub session: String,
    pub mailbox: String,
    pub modseq: u64,
    pub uids: Vec<u32>,
}

/// Everything `imap_cache.py` recorded. A session that lost its connection before the fault
/// started over ("restart"): what it did before is dropped here, except the count.
#[derive(Debug, Default)]
pub struct ImapRecords {
    pub snapshots: Vec<Snapshot>,
    pub changes: Vec<FlagChange>,
    /// (mailbox, [(source UID in INBOX, UID in the mailbox)]) from COPYUID.
    pub copied: Vec<(String, Vec<(u32, u32)>)>,
    /// (mailbox, UID, Message-ID) from APPENDUID.
    pub appended: Vec<(String, u32, String)>,
    /// (mailbox, UID) removed by UID EXPUNGE.
    pub expunged: Vec<(String, u32)>,
    /// Session -> when it was ready (cache taken, IDLE started).
    pub ready: BTreeMap<String, f64>,
    /// Untagged responses pushed during IDLE: (time, line).
    pub idle_updates: Vec<(f64, String)>,
    /// Session -> (when its connection dropped, why).
    pub dropped: BTreeMap<String, (f64, String)>,
    pub selected: BTreeMap<String, Selected>,
    pub changed_since: Vec<ChangedSince>,
    /// Session -> how many times it started over before the fault.
    pub restarts: BTreeMap<String, usize>,
    /// A session that gave up: its reason.
    pub errors: Vec<String>,
    /// The client wrote its end line.
    pub done: bool,
}

impl ImapRecords {
    pub fn parse(path: &Path) -> Result<ImapRecords> {
        let text = fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let n_lines = text.lines().count();
        let mut records = ImapRecords::default();
        for (n, line) in text.lines().enumerate() {
            let value: Value = match serde_json::from_str(line) {
                Ok(value) => value,
                // A line cut short by a kill (or being written): only the last line can be.
                Err(_) if n + 1 == n_lines => continue,
                Err(err) => return Err(err).with_context(|| format!("line {}", n + 1)),
            };
            records
                .add(&value)
                .with_context(|| format!("line {}: {line}", n + 1))?;
        }
        Ok(records)
    }

    fn add(&mut self, value: &Value) -> Result<()> {
        let text = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        let t = value["t"].as_f64().unwrap_or_default();
        let uid = || value["uid"].as_u64().and_then(|u| u32::try_from(u).ok());
        match value["ev"].as_str() {
            Some("snapshot") => self.snapshots.push(serde_json::from_value(value.clone())?),
            Some("set") => self.changes.push(serde_json::from_value(value.clone())?),
            Some("copied") => self.copied.push((
                text("mailbox"),
                serde_json::from_value(value["pairs"].clone())?,
            )),
            Some("appended") => {
                self.appended
                    .push((text("mailbox"), uid().context("uid")?, text("id")))
            }
            Some("expunged") => self.expunged.push((text("mailbox"), uid().context("uid")?)),
            Some("ready") => {
                self.ready.insert(text("session"), t);
            }
            Some("restart") => {
                let session = text("session");
                *self.restarts.entry(session.clone()).or_default() += 1;
                self.ready.remove(&session);
                self.snapshots.retain(|s| s.session != session);
                if session == "cache" {
                    self.changes.clear();
                    self.copied.clear();
                    self.appended.clear();
                    self.expunged.clear();
                } else {
                    self.idle_updates.clear();
                }
            }
            Some("idle_update") => self.idle_updates.push((t, text("line"))),
            Some("dropped") => {
                self.dropped.insert(text("session"), (t, text("error")));
            }
            Some("selected") => {
                let selected: Selected = serde_json::from_value(value.clone())?;
                self.selected.insert(selected.session.clone(), selected);
            }
            Some("changed_since") => self
                .changed_since
                .push(serde_json::from_value(value.clone())?),
            Some("error") => {
                self.errors
                    .push(format!("{} session: {}", text("session"), text("error")))
            }
            Some("done") => self.done = true,
            _ => {}
        }
        Ok(())
    }

    /// Whether `session` is ready, since its last restart (for the harness, which waits for
    /// both before the fault).
    pub fn is_ready(&self, session: &str) -> bool {
        self.ready.contains_key(session)
    }
}

#[derive(Debug, Default)]
pub struct ImapCacheCheck {
    /// Cached UIDs found again after the failover (same message, flags and MODSEQ).
    pub unchanged: usize,
    /// Cached INBOX UIDs gone because the POP3 reader deleted them.
    pub deleted_by_reader: usize,
    /// Messages that arrived after the cache was taken, all above its UIDNEXT.
    pub new_after: usize,
    /// Session -> seconds from the fault to its first SELECT through the VIP.
    pub select_after: BTreeMap<String, f64>,
    /// Session -> seconds from the fault to noticing its connection dropped.
    pub drop_after: BTreeMap<String, f64>,
    /// Untagged responses IDLE pushed before the fault.
    pub idle_updates_before: usize,
    pub problems: Vec<String>,
}

/// What the workload's POP3 reader deleted (certainly or maybe), by (user, Message-ID) and
/// (user, UIDL); deleted ones may vanish from INBOX.
struct ReaderDeletions<'a> {
    by_id: HashMap<(&'a str, &'a str), f64>,
    by_uidl: BTreeSet<(&'a str, &'a str)>,
}

impl<'a> ReaderDeletions<'a> {
    fn new(history: &'a WorkloadHistory) -> ReaderDeletions<'a> {
        let mut by_id = HashMap::new();
        let mut by_uidl = BTreeSet::new();
        for deletion in &history.deletions {
            let key = (deletion.user.as_str(), deletion.id.as_str());
            // The time only matters for certain deletions (see `certainly_before`).
            let t = if deletion.certain {
                deletion.t
            } else {
                f64::INFINITY
            };
            let entry = by_id.entry(key).or_insert(t);
            *entry = entry.min(t);
            by_uidl.insert((deletion.user.as_str(), deletion.uidl.as_str()));
        }
        ReaderDeletions { by_id, by_uidl }
    }

    fn deleted(&self, user: &str, uidvalidity: u32, message: &CachedMessage) -> bool {
        self.by_id.contains_key(&(user, message.id.as_str()))
            || self.deleted_uid(user, uidvalidity, message.uid)
    }

    fn deleted_uid(&self, user: &str, uidvalidity: u32, uid: u32) -> bool {
        let uidl = format!("{uidvalidity}.{uid}");
        self.by_uidl.contains(&(user, uidl.as_str()))
    }

    /// The reader's QUIT had answered +OK (and the deletion was recorded) before `t`.
    fn certainly_before(&self, user: &str, id: &str, t: f64) -> bool {
        self.by_id.get(&(user, id)).is_some_and(|&d| d < t)
    }
}

/// Checks the client's records against the workload's (complete) history; `fault_at` is when
/// the VIP holder was killed.
pub fn check(history: &WorkloadHistory, records: &ImapRecords, fault_at: f64) -> ImapCacheCheck {
    let mut result = ImapCacheCheck::default();
    let mut details: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut problem =
        |kind: &'static str, text: String| details.entry(kind).or_default().push(text);

    for error in &records.errors {
        problem("client", error.clone());
    }
    if !records.done {
        problem("client", "imap_cache.py did not write its end line".into());
    }
    check_sessions(records, fault_at, &mut result, &mut problem);

    let deletions = ReaderDeletions::new(history);
    for snapshot in &records.snapshots {
        check_listing(history, &deletions, snapshot, records, &mut problem);
    }
    let cached: Vec<&Snapshot> = records
        .snapshots
        .iter()
        .filter(|s| s.phase == "cached")
        .collect();
    for before in &cached {
        let place = format!(
            "{}'s {} ({} session)",
            before.user, before.mailbox, before.session
        );
        if before.t_end >= fault_at {
            problem("client", format!("{place} was cached after the fault"));
        }
        // Read again once, or more often when a connection was lost meanwhile: each time the
        // same rules hold.
        let afters: Vec<&Snapshot> = records
            .snapshots
            .iter()
            .filter(|s| {
                s.phase == "after" && s.session == before.session && s.mailbox == before.mailbox
            })
            .collect();
        if afters.is_empty() {
            problem(
                "client",
                format!("{place} was not read again after the fault"),
            );
        }
        for after in afters {
            if after.t_select < fault_at {
                problem("client", format!("{place} was read again before the fault"));
            }
            compare(before, after, &deletions, &mut result, &mut problem);
        }
        let asked: Vec<&ChangedSince> = records
            .changed_since
            .iter()
            .filter(|c| c.session == before.session && c.mailbox == before.mailbox)
            .collect();
        if asked.is_empty() {
            problem(
                "changed",
                format!(
                    "{place}: no CHANGEDSINCE {} after the fault",
                    before.highestmodseq
                ),
            );
        }
        for changed in asked {
            if changed.modseq != before.highestmodseq {
                problem(
                    "client",
                    format!(
                        "{place}: CHANGEDSINCE {} asked, cached {}",
                        changed.modseq, before.highestmodseq
                    ),
                );
            } else if !changed.uids.is_empty() {
                // Nobody stores flags after the cache was taken: nothing may have changed.
                problem(
                    "changed",
                    format!(
                        "{place}: UID FETCH (CHANGEDSINCE {}) after the fault reports UIDs {:?}",
                        changed.modseq, changed.uids
                    ),
                );
            }
        }
    }
    if !cached.iter().any(|s| s.mailbox != INBOX) {
        problem("client", "no mailbox besides INBOX was cached".into());
    }
    check_own_changes(records, &cached, &deletions, &mut problem);

    push_examples(&mut result.problems, "imap ", details);
    result
}

/// Each session was ready before the fault, noticed the drop within the bound (not before
/// the fault), and selected INBOX through the VIP again.
fn check_sessions(
    records: &ImapRecords,
    fault_at: f64,
    result: &mut ImapCacheCheck,
    problem: &mut impl FnMut(&'static str, String),
) {
    for session in SESSIONS {
        match records.ready.get(session) {
            Some(&t) if t < fault_at => {}
            Some(_) => problem(
                "client",
                format!("the {session} session was ready only after the fault"),
            ),
            None => problem("client", format!("the {session} session never got ready")),
        }
        let Some((dropped, why)) = records.dropped.get(session) else {
            problem(
                "drop",
                format!("the {session} session's connection never dropped (it hangs)"),
            );
            continue;
        };
        let after = dropped - fault_at;
        if after < 0.0 {
            problem(
                "drop",
                format!(
                    "the {session} session's connection dropped {:.3} s before the fault: {why}",
                    -after
                ),
            );
        } else if after > DROP_NOTICED_WITHIN_S {
            problem(
                "drop",
                format!(
                    "the {session} session noticed the dead connection only {after:.1} s after \
                     the fault (bound {DROP_NOTICED_WITHIN_S} s): {why}"
                ),
            );
        }
        result.drop_after.insert(session.into(), after);
        match records.selected.get(session) {
            Some(selected) if selected.t > *dropped => {
                result
                    .select_after
                    .insert(session.into(), selected.t - fault_at);
            }
            Some(_) => problem(
                "client",
                format!("the {session} session selected before it dropped"),
            ),
            None => problem(
                "reconnect",
                format!("the {session} session never selected INBOX through the VIP again"),
            ),
        }
    }
    result.idle_updates_before = records
        .idle_updates
        .iter()
        .filter(|(t, _)| *t < fault_at)
        .count();
    if result.idle_updates_before == 0 {
        problem(
            "idle",
            "IDLE pushed no update before the fault (mail kept arriving)".into(),
        );
    }
}

/// One listing on its own: intact bodies, no phantoms, nothing acknowledged before the SELECT
/// missing, nothing deleted before it still there, and UIDs that agree with POP3's UIDLs.
fn check_listing(
    history: &WorkloadHistory,
    deletions: &ReaderDeletions<'_>,
    snapshot: &Snapshot,
    records: &ImapRecords,
    problem: &mut impl FnMut(&'static str, String),
) {
    let user = snapshot.user.as_str();
    let place = format!(
        "{user}'s {} ({} {})",
        snapshot.mailbox, snapshot.session, snapshot.phase
    );
    let sent: HashMap<&str, &crate::history::Attempt> = history
        .attempts
        .iter()
        .filter(|a| a.user == user)
        .map(|a| (a.id.as_str(), a))
        .collect();
    let appended: BTreeSet<&str> = records
        .appended
        .iter()
        .filter(|(mailbox, _, _)| *mailbox == snapshot.mailbox)
        .map(|(_, _, id)| id.as_str())
        .collect();
    let mut by_id: HashMap<&str, u32> = HashMap::new();
    for message in &snapshot.messages {
        if let Some(uid) = by_id.insert(&message.id, message.uid) {
            problem(
                "duplicated",
                format!(
                    "{} is in {place} twice (UIDs {uid} and {})",
                    message.id, message.uid
                ),
            );
        }
        if !message.body_ok {
            problem(
                "intact",
                format!(
                    "UID {} ({}) in {place} is not intact",
                    message.uid, message.id
                ),
            );
        }
        match sent.get(message.id.as_str()) {
            _ if appended.contains(message.id.as_str()) => {}
            None => problem(
                "phantom",
                format!(
                    "UID {} ({}) in {place} was never sent to {user}",
                    message.uid, message.id
                ),
            ),
            Some(a) if a.refused() => problem(
                "phantom",
                format!(
                    "UID {} ({}) in {place} was refused",
                    message.uid, message.id
                ),
            ),
            Some(_) => {}
        }
        if snapshot.mailbox == INBOX
            && deletions.certainly_before(user, &message.id, snapshot.t_select)
        {
            problem(
                "resurrected",
                format!(
                    "{} is in {place} after the POP3 reader deleted it",
                    message.id
                ),
            );
        }
    }
    if snapshot.mailbox != INBOX {
        return;
    }
    // The SELECT is a linearizable read: everything acknowledged before it is in it.
    for attempt in sent
        .values()
        .filter(|a| a.acked() && a.end < snapshot.t_select)
    {
        if !by_id.contains_key(attempt.id.as_str())
            && !deletions.by_id.contains_key(&(user, attempt.id.as_str()))
        {
            problem(
                "lost",
                format!(
                    "{} (250 {:.3} s before the SELECT) is missing from {place}",
                    attempt.id,
                    snapshot.t_select - attempt.end
                ),
            );
        }
    }
    // INBOX is also the POP3 maildrop: the same message has the same UID there.
    for seen in history.seen.iter().filter(|s| s.user == user) {
        if let Some(uid) = by_id.get(seen.id.as_str()) {
            let uidl = format!("{}.{uid}", snapshot.uidvalidity);
            if seen.uidl != uidl {
                problem(
                    "uidl",
                    format!(
                        "{} is UID {uid} in {place} (UIDL {uidl}) but POP3 listed it as {}",
                        seen.id, seen.uidl
                    ),
                );
            }
        }
    }
}

/// A mailbox before the fault and after reconnecting.
fn compare(
    before: &Snapshot,
    after: &Snapshot,
    deletions: &ReaderDeletions<'_>,
    result: &mut ImapCacheCheck,
    problem: &mut impl FnMut(&'static str, String),
) {
    let user = before.user.as_str();
    let place = format!("{user}'s {} ({} session)", before.mailbox, before.session);
    if after.uidvalidity != before.uidvalidity {
        problem(
            "uidvalidity",
            format!(
                "UIDVALIDITY of {place} changed from {} to {}",
                before.uidvalidity, after.uidvalidity
            ),
        );
    }
    if after.uidnext < before.uidnext || after.highestmodseq < before.highestmodseq {
        problem(
            "uidnext",
            format!(
                "{place} went back: UIDNEXT {} -> {}, HIGHESTMODSEQ {} -> {}",
                before.uidnext, after.uidnext, before.highestmodseq, after.highestmodseq
            ),
        );
    }
    let now: BTreeMap<u32, &CachedMessage> = after.messages.iter().map(|m| (m.uid, m)).collect();
    let cached: BTreeSet<u32> = before.messages.iter().map(|m| m.uid).collect();
    for old in &before.messages {
        match now.get(&old.uid) {
            Some(new) if *new == old => result.unchanged += 1,
            Some(new) if new.id != old.id => problem(
                "reused",
                format!(
                    "UID {} of {place} was {} and is now {}",
                    old.uid, old.id, new.id
                ),
            ),
            Some(new) => problem(
                "flags",
                format!(
                    "UID {} ({}) of {place} had flags {:?} MODSEQ {} and now {:?} MODSEQ {}",
                    old.uid, old.id, old.flags, old.modseq, new.flags, new.modseq
                ),
            ),
            None if before.mailbox == INBOX && deletions.deleted(user, before.uidvalidity, old) => {
                result.deleted_by_reader += 1;
            }
            None => problem(
                "vanished",
                format!(
                    "UID {} ({}) of {place} is gone after the fault",
                    old.uid, old.id
                ),
            ),
        }
    }
    for new in after.messages.iter().filter(|m| !cached.contains(&m.uid)) {
        if new.uid < before.uidnext {
            problem(
                "below uidnext",
                format!(
                    "UID {} ({}) of {place} appeared after the fault below the cached UIDNEXT {}",
                    new.uid, new.id, before.uidnext
                ),
            );
        } else {
            result.new_after += 1;
        }
        if let Some(old) = before.messages.iter().find(|m| m.id == new.id) {
            problem(
                "reused",
                format!(
                    "{} of {place} moved from UID {} to UID {}",
                    new.id, old.uid, new.uid
                ),
            );
        }
    }
}

/// What the client's STOREs on one message add up to (flags compared without case).
#[derive(Debug, Default)]
struct ExpectedFlags {
    with: BTreeSet<String>,
    without: BTreeSet<String>,
    /// The last change replaced the flags: exactly `with`.
    exact: bool,
}

/// The client's own changes (flags, copies, the appended message, the expunge), all made
/// before it cached, are what its cache shows.
fn check_own_changes(
    records: &ImapRecords,
    cached: &[&Snapshot],
    deletions: &ReaderDeletions<'_>,
    problem: &mut impl FnMut(&'static str, String),
) {
    let cache_of = |mailbox: &str| {
        cached
            .iter()
            .find(|s| s.session == "cache" && s.mailbox == mailbox)
    };
    let mut expected: BTreeMap<(&str, u32), ExpectedFlags> = BTreeMap::new();
    for change in &records.changes {
        let entry = expected
            .entry((change.mailbox.as_str(), change.uid))
            .or_default();
        let flags: BTreeSet<String> = change.flags.iter().map(|f| f.to_lowercase()).collect();
        match change.op.as_str() {
            "+" => {
                entry.without.retain(|f| !flags.contains(f));
                entry.with.extend(flags);
            }
            "-" => {
                entry.with.retain(|f| !flags.contains(f));
                entry.without.extend(flags);
            }
            _ => {
                *entry = ExpectedFlags {
                    with: flags,
                    without: BTreeSet::new(),
                    exact: true,
                }
            }
        }
    }
    // A message the client expunged keeps no flags to check.
    for (mailbox, uid) in &records.expunged {
        expected.remove(&(mailbox.as_str(), *uid));
    }
    let mut verified: BTreeMap<&str, usize> = BTreeMap::new();
    for (&(mailbox, uid), want) in &expected {
        let ExpectedFlags {
            with,
            without,
            exact,
        } = want;
        let Some(snapshot) = cache_of(mailbox) else {
            problem(
                "own",
                format!("{mailbox}, where the client stored flags, was not cached"),
            );
            continue;
        };
        let Some(message) = snapshot.messages.iter().find(|m| m.uid == uid) else {
            if mailbox != INBOX || !deletions.deleted_uid(&snapshot.user, snapshot.uidvalidity, uid)
            {
                problem(
                    "own",
                    format!(
                        "UID {uid} of {mailbox}, whose flags the client set, is not in its cache"
                    ),
                );
            }
            continue;
        };
        let flags: BTreeSet<String> = message.flags.iter().map(|f| f.to_lowercase()).collect();
        let ok = if *exact {
            flags == *with
        } else {
            flags.is_superset(with) && flags.is_disjoint(without)
        };
        if ok {
            *verified.entry(mailbox).or_default() += 1;
        } else {
            problem(
                "own",
                format!(
                    "UID {uid} of {mailbox} has flags {:?}; the client's STOREs want {with:?}, \
                     not {without:?}{}",
                    message.flags,
                    if *exact { " (exactly)" } else { "" }
                ),
            );
        }
    }
    for mailbox in expected.keys().map(|(m, _)| *m).collect::<BTreeSet<_>>() {
        if !verified.contains_key(mailbox) {
            problem(
                "own",
                format!("none of the client's flag changes in {mailbox} could be checked"),
            );
        }
    }
    for (mailbox, uid, id) in &records.appended {
        let found = cache_of(mailbox).and_then(|s| s.messages.iter().find(|m| m.uid == *uid));
        if found.is_none_or(|m| m.id != *id) {
            problem(
                "own",
                format!("the appended {id} is not UID {uid} of the cached {mailbox}"),
            );
        }
    }
    for (mailbox, uid) in &records.expunged {
        if cache_of(mailbox).is_some_and(|s| s.messages.iter().any(|m| m.uid == *uid)) {
            problem(
                "own",
                format!("UID {uid} of {mailbox} is still cached after UID EXPUNGE"),
            );
        }
    }
    // The copies' mailbox is the client's alone: exactly the copies, less the expunged, plus
    // the appended.
    for (mailbox, pairs) in &records.copied {
        let Some(snapshot) = cache_of(mailbox) else {
            continue;
        };
        let mut want: BTreeSet<u32> = pairs.iter().map(|p| p.1).collect();
        for (m, uid) in &records.expunged {
            if m == mailbox {
                want.remove(uid);
            }
        }
        want.extend(
            records
                .appended
                .iter()
                .filter(|a| a.0 == *mailbox)
                .map(|a| a.1),
        );
        let have: BTreeSet<u32> = snapshot.messages.iter().map(|m| m.uid).collect();
        if have != want {
            problem(
                "own",
                format!(
                    "the cached {mailbox} holds UIDs {have:?}, the client's copies and append made {want:?}"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
