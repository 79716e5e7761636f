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
                            UNSELECT SPECIAL-USE CHILDREN QUOTA CONDSTORE SORT SORT=DISPLAY \
                            STATUS=SIZE BINARY APPENDLIMIT=52428800";

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
        S: * {{..}} RECENT
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
        S: * 2 FETCH (FLAGS (\\Recent) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE {size} ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\") BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 25 1))
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
        S:  FLAGS (\\Seen \\Recent))
        S: a004 OK Fetch completed
        C: a005 store 2 +flags \\deleted
        S: * 2 FETCH (FLAGS (\\Seen \\Deleted \\Recent))
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
        S: * 1 RECENT
        S: * OK [UIDVALIDITY {{..}}] UIDs valid
        S: * OK [UIDNEXT 2] Predicted next UID
        S: * OK [HIGHESTMODSEQ {{..}}] Highest
        S: A004 OK [READ-ONLY] Examine completed
        C: A005 FETCH 1 (FLAGS BODY[TEXT])
        S: * 1 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT] {{55}}
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
        S: * 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE 25)
        S: * 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE {size})
        S: A999 OK Fetch completed
        C: A202 EXPUNGE
        S: A202 OK Expunge completed
        C: A003 STORE 1 +FLAGS (\\Deleted)
        S: * 1 FETCH (FLAGS (\\Deleted \\Recent))
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
        S: * 3 RECENT
        X: flag
        S: * 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))
        X: expunge
        S: * 2 EXPUNGE
        C: DONE
        S: a3 OK IDLE terminated
        C: a4 UID FETCH 1:* FLAGS
        S: * 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))
        S: * 2 FETCH (UID 3 FLAGS (\\Recent))
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

/// Dovecot's rule for an address without a phrase: its comment is the display name
/// (`From: user@domain (Real Name)`), in ENVELOPE and for SEARCH FROM, TO, CC and BCC.
#[tokio::test]
async fn a_comment_names_an_address_written_without_a_phrase() {
    let harness = mailbox();
    harness.deliver(
        "alice@example.test",
        "From: carol@example.test (Carol Example)\r\n\
         To: dave@example.test (Dave), \"Erin\" <erin@example.test> (not a name)\r\n\
         Subject: comments\r\n\
         \r\n\
         hi\r\n",
        INTERNAL_DATE,
    );
    let carol = r#"(("Carol Example" NIL "carol" "example.test"))"#;
    let script = format!(
        "
        {login}
        {sel_a2}
        C: a3 FETCH 3 ENVELOPE
        S: * 3 FETCH (ENVELOPE (NIL \"comments\" {carol} {carol} {carol} ((\"Dave\" NIL \"dave\" \"example.test\")(\"Erin\" NIL \"erin\" \"example.test\")) NIL NIL NIL NIL))
        S: a3 OK Fetch completed
        C: a4 SEARCH FROM \"carol example\"
        S: * SEARCH 3
        S: a4 OK Search completed
        C: a5 SEARCH TO \"Dave\"
        S: * SEARCH 3
        S: a5 OK Search completed
        C: a6 SEARCH TO \"not a name\"
        S: * SEARCH
        S: a6 OK Search completed
        {logout}
        ",
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 3, 4),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}

/// A message that is one encapsulated message (Content-Type: message/rfc822) whose own body is
/// a multipart with an epilogue: BODY[1.TEXT] is all of the encapsulated message's body, the
/// epilogue included (RFC 3501 6.4.5).
#[tokio::test]
async fn the_text_of_an_encapsulated_multipart_keeps_its_epilogue() {
    let harness = mailbox();
    let text = "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\nepilogue\r\n";
    harness.deliver(
        "alice@example.test",
        &format!(
            "From: a@example.test\r\n\
             Subject: forwarded\r\n\
             Content-Type: message/rfc822\r\n\
             \r\n\
             From: b@example.test\r\n\
             Subject: inner\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
             \r\n\
             {text}"
        ),
        INTERNAL_DATE,
    );
    let script = format!(
        "
        {login}
        {sel_a2}
        C: a3 FETCH 3 (BODY.PEEK[1.TEXT])
        S: * 3 FETCH (BODY[1.TEXT] {{{len}}}
        S: --b1
        S: Content-Type: text/plain
        S:
        S: hello
        S: --b1--
        S: epilogue
        S: )
        S: a3 OK Fetch completed
        {logout}
        ",
        len = text.len(),
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 3, 4),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}

/// A mailbox name that is not valid modified UTF-7 ("&U,BTFw" never ends its base64 run) is
/// refused with NO, not BAD, by every command that takes one: many clients drop the connection
/// on a BAD. The session goes on.
#[tokio::test]
async fn a_name_that_is_not_modified_utf7_gets_no_from_every_command() {
    let harness = mailbox();
    let no = "NO [CANNOT] Mailbox name is not valid modified UTF-7";
    let script = format!(
        "
        {login}
        C: b1 SELECT &U,BTFw
        S: b1 {no}
        C: b2 EXAMINE &U,BTFw
        S: b2 {no}
        C: b3 CREATE &U,BTFw
        S: b3 {no}
        C: b4 DELETE &U,BTFw
        S: b4 {no}
        C: b5 RENAME &U,BTFw Other
        S: b5 {no}
        C: b6 RENAME INBOX &U,BTFw
        S: b6 {no}
        C: b7 SUBSCRIBE &U,BTFw
        S: b7 {no}
        C: b8 UNSUBSCRIBE &U,BTFw
        S: b8 {no}
        C: b9 STATUS &U,BTFw (MESSAGES)
        S: b9 {no}
        C: b10 APPEND &U,BTFw {{5+}}
        C: hello
        S: b10 {no}
        C: b11 GETQUOTAROOT &U,BTFw
        S: b11 {no}
        C: b12 LIST \"\" &U,BTFw
        S: b12 NO [CANNOT] Mailbox pattern is not valid modified UTF-7
        C: b13 LSUB &U,BTFw *
        S: b13 NO [CANNOT] Mailbox pattern is not valid modified UTF-7
        {sel_c1}
        C: c2 COPY 1 &U,BTFw
        S: c2 {no}
        C: c3 MOVE 1 &U,BTFw
        S: c3 {no}
        C: c4 UID COPY 1 &U,BTFw
        S: c4 {no}
        C: c5 UID MOVE 1 &U,BTFw
        S: c5 {no}
        C: c6 NOOP
        S: c6 OK NOOP completed
        {logout}
        ",
        login = login(),
        sel_c1 = select_inbox("SELECT INBOX", "c1", 2, 3),
        logout = logout("z1"),
    );
    harness.play(IMAPS, &script).await;
}

/// RFC 6851: MOVE into the selected mailbox gives each message a new UID there, with COPYUID,
/// EXPUNGE and EXISTS as for any move; COPY into it adds copies. Flags travel with the message.
#[tokio::test]
async fn move_and_copy_into_the_selected_mailbox_renumber_the_messages() {
    let harness = mailbox();
    let script = format!(
        "
        {login}
        {sel_a2}
        C: a3 STORE 1 +FLAGS (\\Flagged)
        S: * 1 FETCH (FLAGS (\\Flagged \\Recent))
        S: a3 OK Store completed
        C: a4 COPY 1 INBOX
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a4 OK [COPYUID {{..}} 1 3] Copy completed
        C: a5 MOVE 2 INBOX
        S: * OK [COPYUID {{..}} 2 4] Moved
        S: * 2 EXPUNGE
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a5 OK Move completed
        C: a6 UID MOVE 1 INBOX
        S: * OK [COPYUID {{..}} 1 5] Moved
        S: * 1 EXPUNGE
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a6 OK Move completed
        C: a7 UID FETCH 1:* FLAGS
        S: * 1 FETCH (UID 3 FLAGS (\\Flagged \\Recent))
        S: * 2 FETCH (UID 4 FLAGS (\\Recent))
        S: * 3 FETCH (UID 5 FLAGS (\\Flagged \\Recent))
        S: a7 OK Fetch completed
        C: a8 STATUS INBOX (MESSAGES UIDNEXT)
        S: * STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 6)
        S: a8 OK Status completed
        {logout}
        ",
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 2, 3),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}

/// RFC 3501 7.2.6: a STORE or APPEND that brings a keyword the client was not told of announces
/// it in FLAGS and PERMANENTFLAGS before any FETCH shows it.
#[tokio::test]
async fn a_new_keyword_is_announced_before_a_fetch_shows_it() {
    let harness = mailbox();
    let system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
    let script = format!(
        "
        {login}
        {sel_a2}
        C: a3 STORE 1 +FLAGS ($Work)
        S: * FLAGS ({system} $Work)
        S: * OK [PERMANENTFLAGS ({system} $Work \\*)] Flags permitted
        S: * 1 FETCH (FLAGS (\\Recent $Work))
        S: a3 OK Store completed
        C: a4 UID STORE 2 +FLAGS ($Home)
        S: * FLAGS ({system} $Home $Work)
        S: * OK [PERMANENTFLAGS ({system} $Home $Work \\*)] Flags permitted
        S: * 2 FETCH (UID 2 FLAGS (\\Recent $Home))
        S: a4 OK Store completed
        C: a5 STORE 2 +FLAGS.SILENT ($Late)
        S: * FLAGS ({system} $Home $Late $Work)
        S: * OK [PERMANENTFLAGS ({system} $Home $Late $Work \\*)] Flags permitted
        S: a5 OK Store completed
        C: a6 APPEND INBOX ($Appended) {{5+}}
        C: hello
        S: * FLAGS ({system} $Appended $Home $Late $Work)
        S: * OK [PERMANENTFLAGS ({system} $Appended $Home $Late $Work \\*)] Flags permitted
        S: * 3 EXISTS
        S: * 3 RECENT
        S: a6 OK [APPENDUID {{..}} 3] Append completed
        C: a7 FETCH 3 FLAGS
        S: * 3 FETCH (FLAGS (\\Recent $Appended))
        S: a7 OK Fetch completed
        {logout}
        ",
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 2, 3),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}

/// A STORE that names a message another session expunged stores the flags of the others and
/// answers OK, skipping the gone one silently, as Dovecot does (RFC 9051 leaves the choice).
/// The EXPUNGE is told when it may be: at once for UID STORE, at the next NOOP otherwise.
#[tokio::test]
async fn store_on_a_message_expunged_elsewhere_answers_ok() {
    let harness = mailbox();
    let alice = "alice@example.test";
    let script = format!(
        "
        {login}
        {sel_a2}
        X: expunge
        C: a3 FETCH 1 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: a3 OK Fetch completed
        C: a4 STORE 1:2 +FLAGS (\\Flagged)
        S: * 1 FETCH (FLAGS (\\Flagged \\Recent))
        S: a4 OK Store completed
        C: a5 STORE 2 +FLAGS (\\Seen)
        S: a5 OK Store completed
        C: a6 UID STORE 2 +FLAGS (\\Seen)
        S: * 2 EXPUNGE
        S: a6 OK Store completed
        {logout}
        ",
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 2, 3),
        logout = logout("a9"),
    );
    harness
        .play_with(IMAPS, &script, |step| match step {
            "expunge" => harness.apply(raft_store::Command::Expunge {
                account: alice.into(),
                mailbox: raft_store::INBOX.into(),
                uids: vec![2],
            }),
            other => panic!("no step {other}"),
        })
        .await;
}

/// `\Recent` (RFC 3501 2.3.2): STATUS and EXAMINE show what no session has claimed and claim
/// nothing; the first SELECT claims it, and only that session sees `\Recent` (in FLAGS, the
/// RECENT count, SEARCH RECENT, NEW and OLD); a message that arrives later is recent in the
/// session that has the mailbox selected, and no later session sees it as recent.
#[tokio::test]
async fn each_new_message_is_recent_in_the_first_session_that_selects_it() {
    let harness = mailbox();
    let alice = "alice@example.test";
    let select = |command: &str, tag: &str, exists: u32, recent: u32, uidnext: u32| {
        let (permanent, code) = if command.starts_with("EXAMINE") {
            (
                "* OK [PERMANENTFLAGS ()] Read-only mailbox",
                "[READ-ONLY] Examine",
            )
        } else {
            (
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted",
                "[READ-WRITE] Select",
            )
        };
        format!(
            "
            C: {tag} {command}
            S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
            S: {permanent}
            S: * {exists} EXISTS
            S: * {recent} RECENT
            S: * OK [UNSEEN {{..}}] First unseen
            S: * OK [UIDVALIDITY {{..}}] UIDs valid
            S: * OK [UIDNEXT {uidnext}] Predicted next UID
            S: * OK [HIGHESTMODSEQ {{..}}] Highest
            S: {tag} OK {code} completed
            "
        )
    };
    let first = format!(
        "
        {login}
        C: a2 STATUS INBOX (RECENT)
        S: * STATUS \"INBOX\" (RECENT 2)
        S: a2 OK Status completed
        {examine}
        C: a4 FETCH 1:2 FLAGS
        S: * 1 FETCH (FLAGS (\\Recent))
        S: * 2 FETCH (FLAGS (\\Recent))
        S: a4 OK Fetch completed
        {select}
        C: a6 SEARCH RECENT
        S: * SEARCH 1 2
        S: a6 OK Search completed
        C: a7 STORE 1 +FLAGS (\\Seen)
        S: * 1 FETCH (FLAGS (\\Seen \\Recent))
        S: a7 OK Store completed
        C: a8 SEARCH NEW
        S: * SEARCH 2
        S: a8 OK Search completed
        C: a9 SEARCH OLD
        S: * SEARCH
        S: a9 OK Search completed
        C: b1 STATUS INBOX (RECENT)
        S: * STATUS \"INBOX\" (RECENT 0)
        S: b1 OK Status completed
        {logout}
        ",
        login = login(),
        examine = select("EXAMINE INBOX", "a3", 2, 2, 3),
        select = select("SELECT INBOX", "a5", 2, 2, 3),
        logout = logout("b2"),
    );
    harness.play(IMAPS, &first).await;
    // Another session: nothing is recent any more, until a message arrives while it has the
    // mailbox selected.
    let second = format!(
        "
        {login}
        {select}
        C: a3 SEARCH OLD
        S: * SEARCH 1 2
        S: a3 OK Search completed
        X: deliver
        C: a4 NOOP
        S: * 3 EXISTS
        S: * 1 RECENT
        S: a4 OK NOOP completed
        C: a5 FETCH 1:3 FLAGS
        S: * 1 FETCH (FLAGS (\\Seen))
        S: * 2 FETCH (FLAGS ())
        S: * 3 FETCH (FLAGS (\\Recent))
        S: a5 OK Fetch completed
        C: a6 SEARCH RECENT
        S: * SEARCH 3
        S: a6 OK Search completed
        {logout}
        ",
        login = login(),
        select = select("SELECT INBOX", "a2", 2, 0, 3),
        logout = logout("a7"),
    );
    harness
        .play_with(IMAPS, &second, |step| match step {
            "deliver" => harness.deliver(alice, "Subject: third\r\n\r\nnew\r\n", INTERNAL_DATE),
            other => panic!("no step {other}"),
        })
        .await;
    let third = format!(
        "
        {login}
        {select}
        {logout}
        ",
        login = login(),
        select = select("SELECT INBOX", "a2", 3, 0, 4),
        logout = logout("a3"),
    );
    harness.play(IMAPS, &third).await;
}

/// SORT (RFC 5256, with SORT=DISPLAY of RFC 5957), after the RFC's own examples: base subjects,
/// REVERSE on one key, the search criteria first, UID SORT, and an unknown charset.
#[tokio::test]
async fn sort_orders_what_the_search_criteria_find() {
    let harness = Harness::new();
    let alice = "alice@example.test";
    for (subject, from, date, at) in [
        (
            "Re: budget",
            "Zoe <zoe@example.test>",
            "Tue, 2 Jan 2024 09:00:00 +0000",
            5,
        ),
        (
            "agenda",
            "bob@example.test",
            "Mon, 1 Jan 2024 09:00:00 +0000",
            4,
        ),
        (
            "Fwd: Budget",
            "Amy <amy@example.test>",
            "Wed, 3 Jan 2024 09:00:00 +0000",
            3,
        ),
        (
            "[team] Agenda (fwd)",
            "carl@example.test",
            "Thu, 4 Jan 2024 09:00:00 +0000",
            2,
        ),
        (
            "minutes",
            "Bob <bob@example.test>",
            "Fri, 5 Jan 2024 09:00:00 +0000",
            1,
        ),
    ] {
        harness.deliver(
            alice,
            &format!("Subject: {subject}\r\nFrom: {from}\r\nDate: {date}\r\n\r\nhi\r\n"),
            INTERNAL_DATE - at,
        );
    }
    let script = format!(
        "
        {login}
        C: a2 EXAMINE INBOX
        S: * FLAGS {{..}}
        S: * OK [PERMANENTFLAGS ()] Read-only mailbox
        S: * 5 EXISTS
        S: * 5 RECENT
        S: * OK [UNSEEN 1] First unseen
        S: * OK [UIDVALIDITY {{..}}] UIDs valid
        S: * OK [UIDNEXT 6] Predicted next UID
        S: * OK [HIGHESTMODSEQ {{..}}] Highest
        S: a2 OK [READ-ONLY] Examine completed
        C: a3 SORT (SUBJECT) UTF-8 ALL
        S: * SORT 2 4 1 3 5
        S: a3 OK Sort completed
        C: a4 SORT (SUBJECT REVERSE DATE) UTF-8 ALL
        S: * SORT 4 2 3 1 5
        S: a4 OK Sort completed
        C: a5 SORT (SUBJECT) UTF-8 SENTSINCE 3-Jan-2024
        S: * SORT 4 3 5
        S: a5 OK Sort completed
        C: a6 UID SORT (REVERSE ARRIVAL) UTF-8 NOT FROM bob
        S: * SORT 4 3 1
        S: a6 OK Sort completed
        C: a7 SORT (DISPLAYFROM) UTF-8 ALL
        S: * SORT 3 5 2 4 1
        S: a7 OK Sort completed
        C: a8 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"
        S: * SORT
        S: a8 OK Sort completed
        C: a9 SORT (SUBJECT) KOI8-R ALL
        S: a9 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset
        {logout}
        ",
        login = login(),
        logout = logout("b1"),
    );
    harness.play(IMAPS, &script).await;
}

/// BINARY (RFC 3516): a part's content with its transfer encoding undone, its decoded size,
/// and APPEND of a literal8.
#[tokio::test]
async fn binary_fetch_decodes_a_part_and_append_takes_a_literal8() {
    let harness = Harness::new();
    harness.deliver(
        "alice@example.test",
        "Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
         --x\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
         --x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         aGVsbG8=\r\n--x--\r\n",
        INTERNAL_DATE,
    );
    let script = format!(
        "
        {login}
        {sel_a2}
        C: a3 FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])
        S: * 1 FETCH (BINARY.SIZE[2] 5 BINARY[2] {{5}}
        S: hello)
        S: a3 OK Fetch completed
        C: a4 APPEND INBOX ~{{5}}
        S: + Ready for literal data
        C: hello
        S: * 2 EXISTS
        S: * 2 RECENT
        S: a4 OK [APPENDUID {{..}} 2] Append completed
        {logout}
        ",
        login = login(),
        sel_a2 = select_inbox("SELECT INBOX", "a2", 1, 2),
        logout = logout("a9"),
    );
    harness.play(IMAPS, &script).await;
}
