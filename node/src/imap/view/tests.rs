use super::*;
use raft_store::flag;

fn message(uid: u32, flags: u8) -> Message {
    Message {
        uid,
        blob: [uid as u8; 32],
        size: 100,
        internal_date: 0,
        flags,
        keywords: Vec::new(),
        queue_id: String::new(),
        modseq: u64::from(uid),
    }
}

fn mailbox(uidnext: u32, highest_modseq: u64) -> Mailbox {
    Mailbox {
        name: "INBOX".into(),
        uidvalidity: 7,
        uidnext,
        messages: 0,
        bytes: 0,
        special_use: None,
        highest_modseq,
    }
}

fn view(uids: &[u32]) -> View {
    let messages: Vec<Message> = uids.iter().map(|u| message(*u, 0)).collect();
    View::new("INBOX".into(), false, &mailbox(10, 10), messages)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn set(text: &str) -> SequenceSet {
    text.parse().unwrap()
}

#[test]
fn sequence_numbers_must_exist_but_unknown_uids_are_skipped() {
    let v = view(&[3, 5, 9]);
    assert_eq!(v.resolve(&set("1:*"), false), Ok(vec![0, 1, 2]));
    assert_eq!(v.resolve(&set("3,1,2,1"), false), Ok(vec![0, 1, 2]));
    assert_eq!(v.resolve(&set("*:2"), false), Ok(vec![1, 2]));
    assert_eq!(v.resolve(&set("4"), false), Err(BadSequence(4)));
    assert_eq!(v.resolve(&set("4,6:8,1"), true), Ok(vec![]));
    assert_eq!(v.resolve(&set("4:9"), true), Ok(vec![1, 2]));
    // n:* includes the highest UID even when n is above it (RFC 3501 6.4.8).
    assert_eq!(v.resolve(&set("100:*"), true), Ok(vec![2]));
    assert_eq!(v.resolve(&set("1:4294967295"), true), Ok(vec![0, 1, 2]));
    let empty = view(&[]);
    assert!(empty.resolve(&set("1:*"), false).is_err());
    assert_eq!(empty.resolve(&set("1:*"), true), Ok(vec![]));
}

#[test]
fn expunges_are_reported_highest_first_with_numbers_valid_when_read() {
    let mut v = view(&[1, 2, 3, 4, 5]);
    let fresh = vec![message(1, 0), message(3, 0), message(5, 0)];
    let out = text(v.sync(&mailbox(10, 12), fresh, true, false));
    assert_eq!(out, "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n");
    assert_eq!(v.len(), 3);
    assert_eq!(v.seq_of(5), Some(3));
}

#[test]
fn expunges_wait_while_forbidden_and_are_told_later() {
    let mut v = view(&[1, 2, 3]);
    let out = text(v.sync(
        &mailbox(11, 12),
        vec![message(1, 0), message(3, 0), message(10, 0)],
        false,
        false,
    ));
    // The gone message keeps its number; the new one is announced.
    assert_eq!(out, "* 4 EXISTS\r\n");
    assert_eq!(v.len(), 4);
    assert!(v.is_gone(1));
    assert_eq!(v.resolve(&set("2"), false), Ok(vec![1]));
    // Nothing changed in the store since, but the pending expunge is now told.
    let out = text(v.sync(
        &mailbox(11, 12),
        vec![message(1, 0), message(3, 0), message(10, 0)],
        true,
        false,
    ));
    assert_eq!(out, "* 2 EXPUNGE\r\n");
    assert_eq!(v.len(), 3);
    assert!(!(0..3).any(|i| v.is_gone(i)));
}

#[test]
fn flag_changes_by_others_are_fetched_with_numbers_after_expunges() {
    let mut v = view(&[1, 2, 3]);
    let mut changed = message(3, flag::SEEN | flag::FLAGGED);
    changed.modseq = 20;
    let out = text(v.sync(&mailbox(10, 20), vec![message(2, 0), changed], true, true));
    assert_eq!(
        out,
        "* 1 EXPUNGE\r\n* 2 FETCH (UID 3 FLAGS (\\Seen \\Flagged) MODSEQ (20))\r\n"
    );
    // The session's own STORE, once noted, is not reported again.
    let mut own = message(2, flag::DELETED);
    own.modseq = 21;
    assert!(v.note_flags(2, flag::DELETED, &[], 21));
    let mut third = message(3, flag::SEEN | flag::FLAGGED);
    third.modseq = 20;
    let out = text(v.sync(&mailbox(10, 21), vec![own, third], true, true));
    assert_eq!(out, "");
}

#[test]
fn new_keywords_extend_the_flags_list_before_they_are_shown() {
    let mut v = view(&[1]);
    let mut tagged = message(1, 0);
    tagged.keywords = vec!["$Forwarded".into()];
    let out = text(v.sync(&mailbox(10, 11), vec![tagged], true, false));
    assert!(
        out.starts_with("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)]"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("* 1 FETCH (UID 1 FLAGS ($Forwarded))\r\n"),
        "{out}"
    );
}

#[test]
fn an_unchanged_mailbox_needs_no_rescan() {
    let v = view(&[1]);
    assert!(!v.outdated(&mailbox(10, 10)));
    assert!(v.outdated(&mailbox(11, 10)));
    assert!(v.outdated(&mailbox(10, 11)));
    assert!(!v.needs_sync(&mailbox(10, 10), true));
    assert!(v.needs_sync(&mailbox(10, 11), false));
}

#[test]
fn an_expunge_held_back_during_fetch_needs_a_sync_once_it_may_be_told() {
    // FETCH saw message 2 go (and caught the view up with the store) but could not say so.
    let mut v = view(&[1, 2, 3]);
    let now = mailbox(10, 12);
    let fresh = || vec![message(1, 0), message(3, 0)];
    assert_eq!(text(v.sync(&now, fresh(), false, false)), "");
    assert!(!v.outdated(&now), "the view has caught up with the store");
    assert!(
        !v.needs_sync(&now, false),
        "still nothing to tell during FETCH"
    );
    // The next NOOP must not skip the sync: the EXPUNGE is still owed to the client.
    assert!(v.needs_sync(&now, true));
    assert_eq!(text(v.sync(&now, fresh(), true, false)), "* 2 EXPUNGE\r\n");
    assert!(!v.needs_sync(&now, true));
}

#[test]
fn a_keyword_is_announced_once_and_known_ones_not_at_all() {
    let mut v = view(&[1]);
    let work = vec!["$Work".to_owned()];
    assert_eq!(
        v.announce_keywords(&work),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted\r\n"
    );
    assert_eq!(v.announce_keywords(&work), "");
    assert_eq!(v.announce_keywords(&[]), "");
}
