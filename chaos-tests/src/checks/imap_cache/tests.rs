use crate::checks::imap_cache::{
    CachedMessage, ChangedSince, FlagChange, ImapCacheCheck, ImapRecords, Selected, Snapshot, check,
};
use crate::history::{Attempt, Deletion, Seen, WorkloadHistory};

const FAULT: f64 = 100.0;

fn attempt(id: &str, end: f64) -> Attempt {
    Attempt {
        id: id.into(),
        token: format!("t-{id}"),
        user: "u".into(),
        start: end - 0.05,
        end,
        code: Some(250),
        stage: "done".into(),
        error: None,
    }
}

fn message(uid: u32, id: &str, flags: &[&str], modseq: u64) -> CachedMessage {
    CachedMessage {
        uid,
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        modseq,
        id: id.into(),
        token: format!("t-{id}"),
        body_ok: true,
    }
}

fn snapshot(
    session: &str,
    phase: &str,
    mailbox: &str,
    t_select: f64,
    uidnext: u32,
    messages: Vec<CachedMessage>,
) -> Snapshot {
    Snapshot {
        session: session.into(),
        phase: phase.into(),
        user: "u".into(),
        mailbox: mailbox.into(),
        t_select,
        t_selected: t_select + 0.01,
        t_end: t_select + 0.02,
        uidvalidity: 7,
        uidnext,
        highestmodseq: messages.iter().map(|m| m.modseq).max().unwrap_or(1),
        messages,
    }
}

fn history() -> WorkloadHistory {
    WorkloadHistory {
        // <a>-<c> before the cache, <d> during the failover, <e> after the last SELECT.
        attempts: vec![
            attempt("<a>", 90.0),
            attempt("<b>", 91.0),
            attempt("<c>", 92.0),
            attempt("<d>", 101.0),
            attempt("<e>", 200.0),
        ],
        seen: vec![Seen {
            user: "u".into(),
            uidl: "7.2".into(),
            id: "<b>".into(),
            t: 93.0,
        }],
        finished: true,
        ..WorkloadHistory::default()
    }
}

/// A run that went right: INBOX (uids 1-3, flags set on 1), Kept (copies 1-3 of them, 2
/// expunged, 4 appended), the IDLE session's INBOX, and the same after the fault plus <d>.
fn records() -> ImapRecords {
    let inbox = vec![
        message(1, "<a>", &["$ChaosKept", "\\Flagged"], 10),
        message(2, "<b>", &[], 2),
        message(3, "<c>", &[], 3),
    ];
    let kept = vec![
        message(1, "<a>", &["\\Seen"], 5),
        message(3, "<c>", &[], 4),
        message(4, "<kept>", &["\\Draft"], 6),
    ];
    let mut inbox_after = inbox.clone();
    inbox_after.push(message(4, "<d>", &[], 12));
    let mut snapshots = Vec::new();
    for session in ["cache", "idle"] {
        snapshots.push(snapshot(session, "cached", "INBOX", 95.0, 4, inbox.clone()));
        snapshots.push(snapshot(
            session,
            "after",
            "INBOX",
            103.0,
            5,
            inbox_after.clone(),
        ));
    }
    snapshots.push(snapshot("cache", "cached", "Kept", 95.0, 5, kept.clone()));
    snapshots.push(snapshot("cache", "after", "Kept", 103.0, 5, kept));
    let change = |mailbox: &str, uid: u32, op: &str, flags: &[&str]| FlagChange {
        user: "u".into(),
        mailbox: mailbox.into(),
        uid,
        op: op.into(),
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
    };
    let mut records = ImapRecords {
        changes: vec![
            change("INBOX", 1, "+", &["\\Flagged", "$ChaosKept"]),
            change("Kept", 1, "=", &["\\Seen"]),
            change("Kept", 3, "-", &["\\Flagged"]),
            change("Kept", 2, "+", &["\\Deleted"]),
            change("Kept", 4, "=", &["\\Draft"]),
        ],
        copied: vec![("Kept".into(), vec![(1, 1), (2, 2), (3, 3)])],
        appended: vec![("Kept".into(), 4, "<kept>".into())],
        expunged: vec![("Kept".into(), 2)],
        idle_updates: vec![(96.0, "* 4 EXISTS".into())],
        done: true,
        snapshots,
        ..ImapRecords::default()
    };
    for session in ["cache", "idle"] {
        records.ready.insert(session.into(), 96.0);
        records
            .dropped
            .insert(session.into(), (100.01, "end of stream".into()));
        records.selected.insert(
            session.into(),
            Selected {
                session: session.into(),
                t: 102.0,
                attempts: 3,
                last_error: String::new(),
            },
        );
    }
    for (session, mailbox, modseq) in [
        ("cache", "INBOX", 10),
        ("cache", "Kept", 6),
        ("idle", "INBOX", 10),
    ] {
        records.changed_since.push(ChangedSince {
            session: session.into(),
            mailbox: mailbox.into(),
            modseq,
            uids: Vec::new(),
        });
    }
    records
}

fn snapshot_mut<'a>(
    records: &'a mut ImapRecords,
    session: &str,
    phase: &str,
    mailbox: &str,
) -> &'a mut Snapshot {
    records
        .snapshots
        .iter_mut()
        .find(|s| s.session == session && s.phase == phase && s.mailbox == mailbox)
        .expect("the test's records have it")
}

/// A deletion by the workload's POP3 reader from u's INBOX.
fn deletion(uidl: &str, id: &str, t: f64, certain: bool) -> Deletion {
    Deletion {
        user: "u".into(),
        uidl: uidl.into(),
        id: id.into(),
        t,
        certain,
    }
}

/// Writes `lines` as the client's output file and parses it.
fn parse(lines: &[&str]) -> ImapRecords {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("imap_cache.jsonl");
    std::fs::write(&path, lines.join("\n")).expect("write");
    ImapRecords::parse(&path).expect("parse")
}

#[track_caller]
fn assert_problem(result: &ImapCacheCheck, needle: &str) {
    assert!(
        result.problems.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle:?}: {:?}",
        result.problems
    );
}

/// Checks `records` against [`history`] and asserts that a problem mentions `needle`.
#[track_caller]
fn assert_fails(records: &ImapRecords, needle: &str) {
    assert_problem(&check(&history(), records, FAULT), needle);
}

#[test]
fn a_clean_run_passes_and_is_counted() {
    let result = check(&history(), &records(), FAULT);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    // 3 INBOX UIDs twice, 3 Kept UIDs.
    assert_eq!(result.unchanged, 9);
    assert_eq!(result.new_after, 2);
    assert_eq!(result.idle_updates_before, 1);
    assert!((result.select_after["cache"] - 2.0).abs() < 1e-9);
    assert!((result.drop_after["idle"] - 0.01).abs() < 1e-9);
}

#[test]
fn a_changed_uidvalidity_fails() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "after", "Kept").uidvalidity = 8;
    assert_fails(&records, "UIDVALIDITY of u's Kept");
}

#[test]
fn changed_flags_fail() {
    let mut records = records();
    snapshot_mut(&mut records, "idle", "after", "INBOX").messages[1].flags = vec!["\\Seen".into()];
    assert_fails(&records, "UID 2 (<b>) of u's INBOX");
}

#[test]
fn a_changed_modseq_fails() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "after", "Kept").messages[0].modseq = 9;
    assert_fails(&records, "MODSEQ 5 and now");
}

#[test]
fn a_vanished_uid_fails_unless_the_reader_deleted_it() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "after", "INBOX")
        .messages
        .remove(2);
    assert_fails(&records, "UID 3 (<c>) of u's INBOX");

    let mut history = history();
    history.deletions.push(deletion("7.3", "<c>", 101.5, false));
    let result = check(&history, &records, FAULT);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    assert_eq!(result.deleted_by_reader, 1);
}

#[test]
fn the_client_s_own_mailbox_may_lose_nothing() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "after", "Kept")
        .messages
        .remove(1);
    let mut history = history();
    // Deleting the INBOX original does not excuse losing the copy.
    history.deletions.push(deletion("7.3", "<c>", 101.5, true));
    assert_problem(&check(&history, &records, FAULT), "UID 3 (<c>) of u's Kept");
}

#[test]
fn a_new_uid_below_the_cached_uidnext_fails() {
    let mut records = records();
    snapshot_mut(&mut records, "idle", "cached", "INBOX")
        .messages
        .remove(1);
    assert_fails(
        &records,
        "UID 2 (<b>) of u's INBOX (idle session) appeared after the fault below the cached \
         UIDNEXT 4",
    );
}

#[test]
fn a_reused_uid_fails() {
    let mut records = records();
    let after = snapshot_mut(&mut records, "idle", "after", "INBOX");
    after.messages.pop();
    after.messages[2].id = "<d>".into();
    assert_fails(
        &records,
        "UID 3 of u's INBOX (idle session) was <c> and is now <d>",
    );
}

#[test]
fn a_renumbered_message_fails() {
    let mut records = records();
    let after = snapshot_mut(&mut records, "cache", "after", "INBOX");
    after.messages[2].uid = 5;
    assert_fails(&records, "moved from UID 3 to UID 5");
}

#[test]
fn a_message_acknowledged_before_the_select_must_be_listed() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "after", "INBOX")
        .messages
        .pop();
    assert_fails(&records, "<d> (250 2.000 s before the SELECT)");
}

#[test]
fn a_phantom_or_broken_message_fails() {
    let mut records = records();
    let after = snapshot_mut(&mut records, "cache", "after", "INBOX");
    after.messages.push(message(9, "<never>", &[], 13));
    after.messages[0].body_ok = false;
    let result = check(&history(), &records, FAULT);
    assert_problem(
        &result,
        "<never>) in u's INBOX (cache after) was never sent",
    );
    assert_problem(
        &result,
        "UID 1 (<a>) in u's INBOX (cache after) is not intact",
    );
}

#[test]
fn a_uid_that_disagrees_with_pop3_fails() {
    let mut history = history();
    history.seen[0].uidl = "7.5".into();
    assert_problem(&check(&history, &records(), FAULT), "POP3 listed it as 7.5");
}

#[test]
fn a_message_deleted_before_the_select_must_not_be_listed() {
    let mut history = history();
    history.deletions.push(deletion("7.2", "<b>", 99.0, true));
    assert_problem(
        &check(&history, &records(), FAULT),
        "<b> is in u's INBOX (cache after)",
    );
}

#[test]
fn changes_reported_by_changedsince_fail() {
    let mut records = records();
    records.changed_since[1].uids = vec![3];
    assert_fails(&records, "reports UIDs [3]");
    records.changed_since.remove(1);
    assert_fails(&records, "no CHANGEDSINCE 6");
}

#[test]
fn the_client_s_own_changes_must_be_in_its_cache() {
    let mut records = records();
    snapshot_mut(&mut records, "cache", "cached", "INBOX").messages[0].flags = vec![];
    snapshot_mut(&mut records, "cache", "after", "INBOX").messages[0].flags = vec![];
    assert_fails(&records, "UID 1 of INBOX has flags []");

    let mut records = self::records();
    records.expunged[0].1 = 3;
    let result = check(&history(), &records, FAULT);
    assert_problem(&result, "UID 3 of Kept is still cached after UID EXPUNGE");
    assert_problem(&result, "the cached Kept holds UIDs {1, 3, 4}");

    let mut records = self::records();
    records.appended[0].2 = "<other>".into();
    assert_fails(&records, "the appended <other>");
}

#[test]
fn an_idle_connection_that_hangs_or_drops_early_fails() {
    let mut records = records();
    records.dropped.remove("idle");
    assert_fails(&records, "never dropped (it hangs)");
    records
        .dropped
        .insert("idle".into(), (125.0, "keepalive".into()));
    assert_fails(&records, "only 25.0 s after the fault");
    records
        .dropped
        .insert("idle".into(), (99.0, "reset".into()));
    assert_fails(&records, "before the fault: reset");
    records.idle_updates.clear();
    assert_fails(&records, "IDLE pushed no update");
}

#[test]
fn a_client_that_did_not_reconnect_or_gave_up_fails() {
    let mut records = records();
    records.selected.remove("cache");
    records
        .errors
        .push("cache session: Failed: no IMAP SELECT".into());
    records.done = false;
    let result = check(&history(), &records, FAULT);
    assert_problem(&result, "never selected INBOX through the VIP again");
    assert_problem(&result, "Failed: no IMAP SELECT");
    assert_problem(&result, "did not write its end line");
}

#[test]
fn records_are_parsed_from_the_client_s_lines() {
    let records = parse(&[
        r#"{"ev": "snapshot", "session": "cache", "phase": "cached", "user": "u", "mailbox": "INBOX", "t_select": 1.0, "t_selected": 1.1, "t_end": 1.2, "uidvalidity": 7, "uidnext": 3, "highestmodseq": 4, "messages": [{"uid": 2, "flags": ["\\Seen"], "modseq": 4, "id": "<a>", "token": "t", "body_ok": true}]}"#,
        r#"{"ev": "set", "session": "cache", "user": "u", "mailbox": "INBOX", "uid": 2, "op": "+", "flags": ["\\Seen"], "t": 0.9}"#,
        r#"{"ev": "copied", "session": "cache", "user": "u", "mailbox": "Kept", "pairs": [[2, 1]], "t": 0.9}"#,
        r#"{"ev": "appended", "session": "cache", "user": "u", "mailbox": "Kept", "uid": 2, "id": "<k>", "t": 0.9}"#,
        r#"{"ev": "expunged", "session": "cache", "user": "u", "mailbox": "Kept", "uid": 1, "t": 0.9}"#,
        r#"{"ev": "ready", "session": "idle", "t": 1.5}"#,
        r#"{"ev": "idle_update", "session": "idle", "line": "* 3 EXISTS", "t": 1.6}"#,
        r#"{"ev": "dropped", "session": "idle", "t": 2.0, "error": "end of stream"}"#,
        r#"{"ev": "selected", "session": "idle", "mailbox": "INBOX", "t": 3.0, "attempts": 4, "last_error": "x"}"#,
        r#"{"ev": "changed_since", "session": "idle", "mailbox": "INBOX", "modseq": 4, "uids": [], "t": 3.1}"#,
        r#"{"ev": "error", "session": "cache", "error": "Failed: x", "t": 3.2}"#,
        r#"{"ev": "done", "t": 4.0}"#,
        r#"{"ev": "idle_upd"#,
    ]);
    assert_eq!(records.snapshots[0].messages[0].flags, ["\\Seen"]);
    assert_eq!(records.changes[0].uid, 2);
    assert_eq!(records.copied, [("Kept".to_owned(), vec![(2, 1)])]);
    assert_eq!(records.appended, [("Kept".to_owned(), 2, "<k>".to_owned())]);
    assert_eq!(records.expunged, [("Kept".to_owned(), 1)]);
    assert!(records.is_ready("idle") && !records.is_ready("cache"));
    assert_eq!(records.idle_updates.len(), 1);
    assert_eq!(records.dropped["idle"].0, 2.0);
    assert_eq!(records.selected["idle"].attempts, 4);
    assert_eq!(records.changed_since[0].modseq, 4);
    assert_eq!(records.errors, ["cache session: Failed: x"]);
    assert!(records.done);
}

#[test]
fn a_restart_drops_what_the_session_did_before() {
    let records = parse(&[
        r#"{"ev": "set", "session": "cache", "user": "u", "mailbox": "Kept", "uid": 2, "op": "+", "flags": ["\\Seen"], "t": 0.9}"#,
        r#"{"ev": "copied", "session": "cache", "user": "u", "mailbox": "Kept", "pairs": [[2, 1]], "t": 0.9}"#,
        r#"{"ev": "snapshot", "session": "cache", "phase": "cached", "user": "u", "mailbox": "Kept", "t_select": 1.0, "t_selected": 1.1, "t_end": 1.2, "uidvalidity": 7, "uidnext": 3, "highestmodseq": 4, "messages": []}"#,
        r#"{"ev": "ready", "session": "cache", "t": 1.5}"#,
        r#"{"ev": "ready", "session": "idle", "t": 1.5}"#,
        r#"{"ev": "idle_update", "session": "idle", "line": "* 3 EXISTS", "t": 1.6}"#,
        r#"{"ev": "restart", "session": "cache", "t": 2.0, "error": "abort: EOF"}"#,
        r#"{"ev": "set", "session": "cache", "user": "u", "mailbox": "Kept2", "uid": 5, "op": "+", "flags": ["\\Seen"], "t": 2.9}"#,
    ]);
    assert_eq!(records.restarts["cache"], 1);
    assert!(!records.is_ready("cache") && records.is_ready("idle"));
    assert!(records.snapshots.is_empty() && records.copied.is_empty());
    assert_eq!(records.changes.len(), 1);
    assert_eq!(records.changes[0].mailbox, "Kept2");
    // The other session keeps its state.
    assert_eq!(records.idle_updates.len(), 1);
}

#[test]
fn every_reading_after_the_fault_is_checked() {
    let mut records = records();
    let mut again = snapshot_mut(&mut records, "cache", "after", "Kept").clone();
    again.t_select = 104.0;
    again.messages[1].flags = vec!["\\Seen".into()];
    records.snapshots.push(again);
    let mut asked = records.changed_since[0].clone();
    asked.uids = vec![1];
    records.changed_since.push(asked);
    let result = check(&history(), &records, FAULT);
    assert_problem(
        &result,
        "UID 3 (<c>) of u's Kept (cache session) had flags []",
    );
    assert_problem(
        &result,
        "u's INBOX (cache session): UID FETCH (CHANGEDSINCE 10)",
    );
}
