use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use raft_store::Message;
use raft_store::summary::{MessageSummary, summarize};

use super::{base_subject, order};

/// RFC 5256 section 2.1, case by case.
#[test]
fn the_base_subject_drops_reply_and_forward_markers() {
    for (subject, base) in [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE:  re: Hello", "hello"),
        ("Fwd: Re: Hello", "hello"),
        ("fw: hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("[imap] Re: Hello", "hello"),
        ("Re: [imap] Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("Hello (FWD) (fwd) ", "hello"),
        ("[Fwd: Re: Hello]", "hello"),
        ("[Fwd: [Fwd: Hello (fwd)]]", "hello"),
        ("  Hello \t  world  ", "hello world"),
        // A blob that is all there is stays: it is the subject.
        ("[imap]", "[imap]"),
        ("Re: [imap]", "[imap]"),
        // Not a leader: no colon after it, or a word that merely starts like one.
        ("Re Hello", "re hello"),
        ("Reply: Hello", "reply: hello"),
        ("Fwdx: Hello", "fwdx: hello"),
        ("", ""),
        ("回复: 会议", "回复: 会议"),
    ] {
        assert_eq!(base_subject(subject), base, "{subject:?}");
    }
}

fn message(uid: u32, size: u64, internal_date: i64) -> Message {
    Message {
        uid,
        blob: [0; 32],
        size,
        flags: 0,
        keywords: Vec::new(),
        internal_date,
        queue_id: String::new(),
        modseq: 1,
    }
}

fn criterion(key: SortKey, reverse: bool) -> SortCriterion {
    SortCriterion { reverse, key }
}

/// Three messages whose keys disagree, sorted by each key: ties keep mailbox order.
#[test]
fn each_key_orders_the_messages_and_ties_keep_mailbox_order() {
    let messages = [
        message(1, 300, 3_000),
        message(2, 100, 1_000),
        message(3, 200, 2_000),
    ];
    let summaries: Vec<MessageSummary> = [
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nSubject: Re: beta\r\nFrom: Carol <carol@x.test>\r\nTo: zed@x.test\r\n\r\n",
        "Date: Mon, 1 Jan 2024 12:00:00 +0200\r\nSubject: alpha\r\nFrom: \"Bob\" <zz@x.test>\r\nTo: Amy <amy@x.test>\r\nCc: cc@x.test\r\n\r\n",
        "Subject: Fwd: Beta\r\nFrom: alice@x.test\r\nTo: amy@x.test\r\n\r\n",
    ]
    .iter()
    .map(|header| summarize(header.as_bytes()))
    .collect();
    let candidates: Vec<_> = messages
        .iter()
        .zip(&summaries)
        .enumerate()
        .map(|(i, (m, s))| (i as u32 + 1, m, s))
        .collect();
    let sorted = |key: SortKey, reverse: bool| order(&[criterion(key, reverse)], &candidates);
    assert_eq!(sorted(SortKey::Arrival, false), [2, 3, 1]);
    assert_eq!(sorted(SortKey::Size, false), [2, 3, 1]);
    assert_eq!(sorted(SortKey::Size, true), [1, 3, 2]);
    // 12:00 +0200 is 10:00 UTC, the same instant as message 1: mailbox order. Message 3 has no
    // Date and sorts by its internal date (1970).
    assert_eq!(sorted(SortKey::Date, false), [3, 1, 2]);
    // "alpha" < "beta" = "beta": the two betas keep mailbox order.
    assert_eq!(sorted(SortKey::Subject, false), [2, 1, 3]);
    assert_eq!(sorted(SortKey::Subject, true), [1, 3, 2]);
    // Local parts: alice < carol < zz.
    assert_eq!(sorted(SortKey::From, false), [3, 1, 2]);
    // Display names, else the address: alice@x.test < bob < carol.
    assert_eq!(sorted(SortKey::DisplayFrom, false), [3, 2, 1]);
    // No Cc sorts first (empty).
    assert_eq!(sorted(SortKey::Cc, false), [1, 3, 2]);
    assert_eq!(sorted(SortKey::To, false), [2, 3, 1]);
    // amy < amy@x.test < zed@x.test.
    assert_eq!(sorted(SortKey::DisplayTo, false), [2, 3, 1]);
    // Two keys: subject, then reverse arrival among equals.
    assert_eq!(
        order(
            &[
                criterion(SortKey::Subject, false),
                criterion(SortKey::Arrival, true)
            ],
            &candidates
        ),
        [2, 1, 3]
    );
    assert_eq!(
        order(
            &[
                criterion(SortKey::Subject, true),
                criterion(SortKey::Arrival, false)
            ],
            &candidates
        ),
        [3, 1, 2]
    );
}
