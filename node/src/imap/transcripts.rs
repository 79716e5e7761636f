//! IMAP transcripts played in process against the in-memory store (`crate::transcript`): the
//! sample session of RFC 3501 section 8 and the examples of its section 6 for the commands we
//! support (with our response texts, which the RFC leaves to the server), then edge cases the
//! socket tests in chaos-tests also cover.

use crate::transcript::{Harness, PASSWORD, Session};

/// A session over implicit TLS (IMAPS).
const IMAPS: Session = Session::Imap { tls: true };
/// A session on the plain port before STARTTLS.
const IMAP_PLAIN: Session = Session::Imap { tls: false };

const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE \
                            UNSELECT SPECIAL-USE CHILDREN QUOTA CONDSTORE";

/// RFC 3501 section 8's message 12, smaller.
const MESSAGE: &str = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
From: Terry Gray <gray@cac.washington.edu>\r\n\
Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
To: imap@cac.washington.edu\r\n\
Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Minutes of the meeting.\r\n";

/// 17-Jul-1996 09:44:25 UTC.
const INTERNAL_DATE: i64 = 837_596_665;

/// alice with two messages in her INBOX, the second one RFC 3501's example.
fn mailbox() -> Harness {
    let harness = Harness::new();
    harness.deliver(
        "alice@example.test",
        "Subject: first\r\n\r\nhello\r\n",
        INTERNAL_DATE - 60,
    );
    harness.deliver("alice@example.test", MESSAGE, INTERNAL_DATE);
    harness
}

/// The greeting and alice's LOGIN, tagged `a1`.
fn login() -> String {
    format!(
        "
        S: * OK [CAPABILITY {{..}}] mail.example.test IMAP4rev1 mcluster ready
        C: a1 LOGIN alice@example.test \"{PASSWORD}\"
        S: a1 OK [CAPABILITY {{..}}] Logged in
        "
    )
}

/// SELECT INBOX, tagged `tag`, of a mailbox with `exists` messages, the first unseen, and the
/// next UID `uidnext`.
fn select_inbox(command: &str, tag: &str, exists: u32, uidnext: u32) -> String {
    format!(
        "
        C: {tag} {command}
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted
        S: * {exists} EXISTS
        S: * 0 RECENT
        S: * OK [UNSEEN 1] First unseen
        S: * OK [UIDVALIDITY {{..}}] UIDs valid
        S: * OK [UIDNEXT {uidnext}] Predicted next UID
        S: * OK [HIGHESTMODSEQ {{..}}] Highest
        S: {tag} OK [READ-WRITE] Select completed
        "
    )
}

/// LOGOUT, tagged `tag`.
fn logout(tag: &str) -> String {
    format!(
        "
        C: {tag} LOGOUT
        S: * BYE Logging out
        S: {tag} OK Logout completed
        "
    )
}

/// RFC 3501 section 8: LOGIN, SELECT, FETCH FULL, FETCH BODY[HEADER], STORE +FLAGS, LOGOUT.
#[tokio::test]
async fn rfc3501_section8_sample_session() {
    let harness = mailbox();
    let size = MESSAGE.len();
    let header_len = MESSAGE.find("\r\n\r\n").unwrap() + 4;
    let script = format!(
        "
        S: * OK [CAPABILITY {CAPABILITIES} AUTH=PLAIN] mail.example.test IMAP4rev1 mcluster ready
        C: a001 login alice@example.test \"{PASSWORD}\"
        S: a001 OK [CAPABILITY {CAPABILITIES}] Logged in
        {sel_a002}
        C: a003 fetch 2 full
        S: * 2 FETCH (FLAGS () INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE {size} ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 25 1))
        S: a003 OK Fetch completed
        C: a004 fetch 2 body[header]
        S: * 2 FETCH (BODY[HEADER] {{{header_len}}}
        S: Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
        S: From: Terry Gray <gray@cac.washington.edu>
        S: Subject: IMAP4rev1 WG mtg summary and minutes
        S: To: imap@cac.washington.edu
        S: Message-Id: <B27397-0100000@cac.washington.edu>
        S: MIME-Version: 1.0
        S: Content-Type: TEXT/PLAIN; CHARSET=US-ASCII
        S:
        S:  FLAGS (\\Seen))
        S: a004 OK Fetch completed
        C: a005 store 2 +flags \\deleted
        S: * 2 FETCH (FLAGS (\\Seen \\Deleted))
        S: a005 OK Store completed
        C: a006 logout
        S: * BYE Logging out
        S: a006 OK Logout completed
        ",
        sel_a002 = select_inbox("select inbox", "a002", 2, 3),
    );
    harness.play(IMAPS, &script).await;
}

/// RFC 3501 6.1 and 6.3: CAPABILITY, NOOP, CREATE, LIST, SUBSCRIBE, LSUB, RENAME, STATUS,
/// DELETE, in the authenticated state.
#[tokio::test]
async fn rfc3501_mailbox_commands() {
    let harness = mailbox();
    let script = format!(
        "
        S: * OK [CAPABILITY {{..}}] mail.example.test IMAP4rev1 mcluster ready
        C: abcd CAPABILITY
        S: * CAPABILITY {CAPABILITIES} AUTH=PLAIN
        S: abcd OK Capability completed
        C: a1 LOGIN alice@example.test \"{PASSWORD}\"
        S: a1 OK [CAPABILITY {{..}}] Logged in
        C: a2 NOOP
        S: a2 OK NOOP completed
        C: A003 CREATE owatagusiam/
        S: A003 OK Create completed
        C: A004 CREATE owatagusiam/blurdybloop
        S: A004 OK Create completed
        C: A004b CREATE owatagusiam
        S: A004b NO [ALREADYEXISTS] mailbox owatagusiam already exists
        C: A101 LIST \"\" \"\"
        S: * LIST (\\Noselect) \"/\" \"\"
        S: A101 OK List completed
        C: A102 LIST \"\" \"%\"
        S: * LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"
        S: * LIST (\\HasNoChildren) \"/\" \"INBOX\"
        S: * LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"
        S: * LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"
        S: * LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"
        S: * LIST (\\HasChildren) \"/\" \"owatagusiam\"
        S: A102 OK List completed
        C: A103 LIST owatagusiam/ %
        S: * LIST (\\HasNoChildren) \"/\" \"owatagusiam/blurdybloop\"
        S: A103 OK List completed
        C: A002 SUBSCRIBE owatagusiam/blurdybloop
        S: A002 OK Subscribe completed
        C: A004 LSUB \"\" \"*\"
        S: * LSUB (\\HasNoChildren) \"/\" \"Drafts\"
        S: * LSUB (\\HasNoChildren) \"/\" \"INBOX\"
        S: * LSUB (\\HasNoChildren) \"/\" \"Junk\"
        S: * LSUB (\\HasNoChildren) \"/\" \"Sent\"
        S: * LSUB (\\HasNoChildren) \"/\" \"Trash\"
        S: * LSUB (\\HasNoChildren) \"/\" \"owatagusiam/blurdybloop\"
        S: A004 OK Lsub completed
        C: A683 RENAME owatagusiam/blurdybloop sarasoop
        S: A683 OK Rename completed
        C: A042 STATUS INBOX (MESSAGES UIDNEXT UNSEEN)
        S: * STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)
        S: A042 OK Status completed
        C: A684 DELETE sarasoop
        S: A684 OK Delete completed
        C: A685 DELETE INBOX
        S: A685 NO {{..}}
        C: A686 SELECT nonexistent
        S: A686 NO [NONEXISTENT] {{..}}
        {logout}
        ",
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
    let names: Vec<String> = harness
        .context
        .store
        .state()
        .mailboxes("alice@example.test")
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        ["Drafts", "INBOX", "Junk", "Sent", "Trash", "owatagusiam"]
    );
}

/// RFC 3501 6.3.11 APPEND with a synchronizing literal, then 6.4: SEARCH, COPY with COPYUID
/// (RFC 4315), UID FETCH, STORE, EXPUNGE, CLOSE.
#[tokio::test]
async fn rfc3501_append_search_copy_expunge() {
    let harness = mailbox();
    let appended = "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let body_lines: String = appended
        .trim_end_matches("\r\n")
        .split("\r\n")
        .map(|line| format!("C: {line}\n"))
        .collect();
    let script = format!(
        "
        {login}
        C: A003 APPEND Sent (\\Seen) {{{len}}}
        S: + Ready for literal data
        {body_lines}
        C:
        S: A003 OK [APPENDUID {{..}} 1] Append completed
        C: A004 EXAMINE Sent
        S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
        S: * OK [PERMANENTFLAGS ()] Read-only mailbox
        S: * 1 EXISTS
        S: * 0 RECENT
        S: * OK [UIDVALIDITY {{..}}] UIDs valid
        S: * OK [UIDNEXT 2] Predicted next UID
        S: * OK [HIGHESTMODSEQ {{..}}] Highest
        S: A004 OK [READ-ONLY] Examine completed
        C: A005 FETCH 1 (FLAGS BODY[TEXT])
        S: * 1 FETCH (FLAGS (\\Seen) BODY[TEXT] {{55}}
        S: Hello Joe, do you think we can meet at 3:30 tomorrow?
        S: )
        S: A005 OK Fetch completed
        C: A006 STORE 1 +FLAGS (\\Deleted)
        S: A006 NO [READ-ONLY] Mailbox is read-only
        {sel_a282}
        C: A283 SEARCH SUBJECT \"meeting\"
        S: * SEARCH
        S: A283 OK Search completed
        C: A284 SEARCH FROM \"Terry\" SINCE 1-Jul-1996
        S: * SEARCH 2
        S: A284 OK Search completed
        C: A285 UID SEARCH UNSEEN
        S: * SEARCH 1 2
        S: A285 OK Search completed
        C: A003 COPY 2 Trash
        S: A003 OK [COPYUID {{..}} 2 1] Copy completed
        C: A999 UID FETCH 1:* (FLAGS RFC822.SIZE)
        S: * 1 FETCH (UID 1 FLAGS () RFC822.SIZE 25)
        S: * 2 FETCH (UID 2 FLAGS () RFC822.SIZE {size})
        S: A999 OK Fetch completed
        C: A202 EXPUNGE
        S: A202 OK Expunge completed
        C: A003 STORE 1 +FLAGS (\\Deleted)
        S: * 1 FETCH (FLAGS (\\Deleted))
        S: A003 OK Store completed
        C: A004 STORE 2 +FLAGS.SILENT (\\Answered)
        S: A004 OK Store completed
        C: A202 EXPUNGE
        S: * 1 EXPUNGE
        S: A202 OK Expunge completed
        C: A341 CLOSE
        S: A341 OK Close completed
        {logout}
        ",
        len = appended.len(),
        size = MESSAGE.len(),
        login = login(),
        sel_a282 = select_inbox("SELECT INBOX", "A282", 2, 3),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
    let state = harness.context.store.state();
    let inbox = state
        .messages("alice@example.test", raft_store::INBOX)
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].flags, raft_store::flag::ANSWERED);
    assert_eq!(
        state.messages("alice@example.test", "Trash").unwrap().len(),
        1
    );
}

/// Before STARTTLS: LOGINDISABLED and no LOGIN; a wrong password; bad syntax gets BAD and the
/// session goes on; a command that needs a selected mailbox is refused.
#[tokio::test]
async fn no_login_in_clear_and_bad_commands_get_bad() {
    let harness = mailbox();
    let script = format!(
        "
        S: * OK [CAPABILITY {CAPABILITIES} LOGINDISABLED] mail.example.test IMAP4rev1 mcluster ready
        C: a1 LOGIN alice@example.test \"{PASSWORD}\"
        S: a1 NO {{..}}
        C: a2 STARTTLS
        S: a2 NO {{..}}
        C: a3 SELECT INBOX
        S: a3 BAD {{..}}
        C: a4 FROB
        S: a4 BAD {{..}}
        {logout}
        ",
        logout = logout("a5"),
    );
    harness.play(IMAP_PLAIN, &script).await;
    let script = format!(
        "
        S: * OK [CAPABILITY {{..}}] mail.example.test IMAP4rev1 mcluster ready
        C: a1 LOGIN alice@example.test wrong
        S: a1 NO [AUTHENTICATIONFAILED] Authentication failed
        C: a2 LOGIN alice@example.test \"{PASSWORD}\"
        S: a2 OK [CAPABILITY {{..}}] Logged in
        C: a3 FETCH 1 FLAGS
        S: a3 BAD {{..}}
        {sel_a4}
        C: a5 FETCH 3 FLAGS
        S: a5 BAD {{..}}
        C: a6 FETCH 1 (FLAGS
        S: a6 BAD {{..}}
        C: a7 STORE 1 +FLAGS (\\Bogus)
        S: a7 BAD {{..}}
        C: a8 UID FETCH 9 FLAGS
        S: a8 OK Fetch completed
        {logout}
        ",
        sel_a4 = select_inbox("SELECT INBOX", "a4", 2, 3),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}

/// RFC 2177 IDLE: what other sessions (or deliveries) change is pushed from the change feed
/// while the client idles: a new message, a flag change, an expunge.
#[tokio::test]
async fn idle_reports_deliveries_flag_changes_and_expunges() {
    let harness = mailbox();
    let alice = "alice@example.test";
    let script = format!(
        "
        S: * OK [CAPABILITY {{..}}] mail.example.test IMAP4rev1 mcluster ready
        C: a1 LOGIN {alice} \"{PASSWORD}\"
        S: a1 OK [CAPABILITY {{..}}] Logged in
        {sel_a2}
        C: a3 IDLE
        S: + idling
        X: deliver
        S: * 3 EXISTS
        X: flag
        S: * 1 FETCH (UID 1 FLAGS (\\Flagged))
        X: expunge
        S: * 2 EXPUNGE
        C: DONE
        S: a3 OK IDLE terminated
        C: a4 UID FETCH 1:* FLAGS
        S: * 1 FETCH (UID 1 FLAGS (\\Flagged))
        S: * 2 FETCH (UID 3 FLAGS ())
        S: a4 OK Fetch completed
        {logout}
        ",
        sel_a2 = select_inbox("SELECT INBOX", "a2", 2, 3),
        logout = logout("a5"),
    );
    harness
        .play_with(IMAPS, &script, |step| match step {
            "deliver" => harness.deliver(alice, "Subject: third\r\n\r\nnew\r\n", INTERNAL_DATE),
            "flag" => harness.apply(raft_store::Command::StoreFlags {
                account: alice.into(),
                mailbox: raft_store::INBOX.into(),
                uids: vec![1],
                op: raft_store::FlagOp::Add,
                flags: raft_store::flag::FLAGGED,
                keywords: Vec::new(),
                unchanged_since: None,
            }),
            "expunge" => harness.apply(raft_store::Command::Expunge {
                account: alice.into(),
                mailbox: raft_store::INBOX.into(),
                uids: vec![2],
            }),
            other => panic!("no step {other}"),
        })
        .await;
}

/// Literals (synchronizing ones wait for "+", LITERAL+ ones do not), literals over the limits
/// refused before a byte is read, and bad input of every kind: each gets its RFC 3501 reply
/// and the session goes on (the socket suite in chaos-tests covers the same over TCP).
#[tokio::test]
async fn literals_and_bad_input_get_rfc_replies() {
    let harness = mailbox();
    let user = "alice@example.test";
    let long = format!("C: t8 NOOP {}", "x".repeat(300 * 1024));
    let script = format!(
        "
        S: * OK [CAPABILITY {{..}}] mail.example.test IMAP4rev1 mcluster ready
        C: w1 SELECT INBOX
        S: w1 BAD Log in first
        C: w2 IDLE
        S: w2 BAD Log in first
        C: t1 LOGIN {{{user_len}}}
        S: + {{..}}
        C: {user} {{{password_len}}}
        S: + {{..}}
        C: {PASSWORD}
        S: t1 OK [CAPABILITY {{..}}] Logged in
        R: t2 CREATE {{4+}}\\r\\nLitP\\r\\n
        S: t2 OK Create completed
        C: t3 LIST \"\" {{4}}
        S: + {{..}}
        C: LitP
        S: * LIST (\\HasNoChildren) \"/\" \"LitP\"
        S: t3 OK List completed
        C: t4 APPEND INBOX {{99999999}}
        S: t4 NO [TOOBIG] {{..}}
        C: t5 APPEND INBOX {{99999999999999999999999}}
        S: t5 NO [TOOBIG] {{..}}
        C: t6 CREATE {{70000}}
        S: t6 NO [TOOBIG] literal of 70000 bytes is over the limit{{..}}
        {logout}
        ",
        user_len = user.len(),
        password_len = PASSWORD.len(),
        logout = logout("z1"),
    );
    harness.play(IMAPS, &script).await;
    // A session allows ten errors: the bad input gets a session of its own.
    let script = format!(
        "
        {login}
        {long}
        S: t8 BAD command line too long{{..}}
        C: {garbage}
        S: * BAD syntax error
        R: t9 NOOP\\0\\r\\n
        S: t9 BAD syntax error
        C: t11 FROBNICATE
        S: t11 BAD syntax error
        C: s1 FETCH 1 FLAGS
        S: s1 BAD No mailbox selected
        C: s3 LOGIN a b
        S: s3 BAD Already authenticated
        C: s5 IDLE
        S: + idling
        C: NOT DONE
        S: s5 BAD Expected DONE
        C: s6 IDLE
        S: + idling
        R: done\\r\\ns7 NOOP\\r\\n
        S: s6 OK IDLE terminated
        S: s7 OK NOOP completed
        {logout}
        ",
        login = login(),
        logout = logout("z2"),
        garbage = "\u{1}\u{2}\u{7f} garbage",
    );
    harness.play(IMAPS, &script).await;
    let script = "
        S: * OK [CAPABILITY {..}] mail.example.test IMAP4rev1 mcluster ready
        C: a1 AUTHENTICATE PLAIN
        S: +{..}
        C: *
        S: a1 BAD Authentication cancelled
        C: a2 AUTHENTICATE CRAM-MD5
        S: a2 NO Unsupported authentication mechanism
        C: a3 AUTHENTICATE PLAIN
        S: +{..}
        C: %%% not base64
        S: a3 BAD Authentication cancelled
    ";
    harness.play(IMAPS, script).await;
}
