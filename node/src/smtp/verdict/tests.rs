use raft_store::Filing;

use crate::smtp::verdict::{Action, Verdict};

#[track_caller]
fn check_apply(message: &str, tag: Option<&str>, headers: &[&str], expected: &str) {
    let verdict = Verdict {
        action: Action::Accept,
        headers: headers.iter().map(|h| h.to_string()).collect(),
        subject_tag: tag.map(str::to_owned),
        owned: Vec::new(),
    };
    let out = verdict.apply(message.as_bytes().to_vec());
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn subject_is_tagged_after_the_colon_and_space() {
    check_apply(
        "From: a@x\r\nSubject: hello\r\n\r\nbody\r\n",
        Some("[SPAM] "),
        &["X-Spam-Flag: YES"],
        "X-Spam-Flag: YES\r\nFrom: a@x\r\nSubject: [SPAM] hello\r\n\r\nbody\r\n",
    );
}

#[test]
fn subject_without_space_and_in_other_case() {
    check_apply(
        "SUBJECT:hi\r\n\r\n",
        Some("[SPAM] "),
        &[],
        "SUBJECT:[SPAM] hi\r\n\r\n",
    );
}

#[test]
fn subject_in_the_body_is_not_tagged() {
    check_apply(
        "From: a@x\r\n\r\nSubject: not a header\r\n",
        Some("[SPAM] "),
        &[],
        "Subject: [SPAM]\r\nFrom: a@x\r\n\r\nSubject: not a header\r\n",
    );
}

#[test]
fn no_tag_leaves_the_message_alone() {
    check_apply(
        "Subject: x\r\n\r\nbody",
        None,
        &[],
        "Subject: x\r\n\r\nbody",
    );
}

#[test]
fn merge_keeps_the_most_severe_action_and_all_headers() {
    let mut verdict = Verdict::accept().with_header("A: 1".into());
    verdict.merge(Verdict {
        action: Action::Junk,
        headers: vec!["B: 2".into()],
        subject_tag: Some("[SPAM] ".into()),
        owned: vec!["X-Spam-Flag"],
    });
    assert_eq!(verdict.filing(), Filing::Junk);
    verdict.merge(Verdict {
        action: Action::Reject(crate::smtp::reply::virus("x")),
        headers: vec![],
        subject_tag: Some("[OTHER] ".into()),
        owned: Vec::new(),
    });
    verdict.merge(Verdict {
        action: Action::TempFail(crate::smtp::reply::SCANNER_UNAVAILABLE.clone()),
        headers: vec!["C: 3".into()],
        subject_tag: None,
        owned: vec!["X-Virus-Scanned"],
    });
    assert_eq!(
        verdict.refusal().map(ToString::to_string),
        Some("554 5.7.1 Message rejected: virus found (x)".into())
    );
    assert_eq!(verdict.headers, ["A: 1", "B: 2", "C: 3"]);
    assert_eq!(verdict.subject_tag.as_deref(), Some("[SPAM] "));
    assert_eq!(verdict.owned, ["X-Spam-Flag", "X-Virus-Scanned"]);
}

#[test]
fn owned_fields_already_in_the_message_are_removed_with_their_folded_lines() {
    let verdict = Verdict::accept()
        .with_header("X-Spam-Status: Yes, score=9.0".into())
        .owning(&["X-Spam-Status", "X-Spam-Flag"]);
    let message = "x-spam-status: No, forged\r\n\tcontinued\r\nFrom: a@x\r\n\
                   X-Spam-Flag : NO\r\nX-Spam-Level: *\r\n\r\nX-Spam-Status: in the body\r\n";
    let out = String::from_utf8(verdict.apply(message.as_bytes().to_vec())).unwrap();
    assert_eq!(
        out,
        "X-Spam-Status: Yes, score=9.0\r\nFrom: a@x\r\nX-Spam-Level: *\r\n\r\n\
         X-Spam-Status: in the body\r\n"
    );
}
