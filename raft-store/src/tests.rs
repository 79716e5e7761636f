//! Tests of the store: openraft's conformance suite, command semantics, snapshots, durability.

use futures::stream;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::vote::RaftLeaderId;
use openraft::{Entry as RaftEntry, EntryPayload, RaftSnapshotBuilder, StorageError};
use tempfile::TempDir;

use crate::{
    ClusterVersion, Command, CommandResult, LogStore, MemberBuild, Rejection, StateMachine,
    TypeConfig,
};

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().expect("create temp dir");
        let (log_store, state_machine) = crate::open(dir.path()).expect("open store");
        Ok((dir, log_store, state_machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_log_store_conformance_suite() {
    Suite::test_all(RocksBuilder)
        .await
        .expect("openraft storage suite");
}

/// A state machine on a new store on disk, and the directory that holds it (kept while the
/// test runs).
fn fresh_store() -> (TempDir, StateMachine) {
    let dir = TempDir::new().unwrap();
    let (_log, sm) = crate::open(dir.path()).unwrap();
    (dir, sm)
}

fn log_id(term: u64, index: u64) -> crate::LogId {
    openraft::LogId::new(
        openraft::vote::leader_id_adv::CommittedLeaderId::new(term, 1),
        index,
    )
}

fn normal(index: u64, command: Command) -> crate::Entry {
    RaftEntry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(crate::Request::new(command)),
    }
}

/// Applies commands one entry each, returning each entry's result through its responder path.
async fn apply_all(
    sm: &mut StateMachine,
    first_index: u64,
    commands: Vec<Command>,
) -> Vec<CommandResult> {
    let mut results = Vec::new();
    for (i, command) in commands.into_iter().enumerate() {
        // openraft's responders cannot be built outside openraft: decide the result on a
        // throw-away batch first, then apply the entry for real.
        let mut staged = crate::reader::Staged::new(&sm.db);
        results.push(sm.execute(&command, &mut staged).expect("execute"));
        let entry = normal(first_index + i as u64, command);
        sm.apply(stream::iter([Ok((entry, None))]))
            .await
            .expect("apply");
    }
    results
}

fn add_domain(name: &str) -> Command {
    Command::AddDomain {
        name: name.into(),
        at: 1,
    }
}

fn add_account(address: &str) -> Command {
    Command::AddAccount {
        address: address.into(),
        password_hash: "$argon2id$x".into(),
        quota_mb: 100,
        at: 2,
    }
}

/// Applies, as log entry 1, a membership of these voters.
async fn apply_voters<const N: usize>(sm: &mut StateMachine, voters: [(u64, crate::Member); N]) {
    let ids = voters.iter().map(|(id, _)| *id).collect();
    let membership =
        openraft::Membership::new(vec![ids], std::collections::BTreeMap::from(voters)).unwrap();
    sm.apply(stream::iter([Ok((
        RaftEntry {
            log_id: log_id(1, 1),
            payload: EntryPayload::Membership(membership),
        },
        None,
    ))]))
    .await
    .unwrap();
}

/// A store of a one-node cluster (node 1) at this build's newest cluster version, as a new
/// cluster starts: log indexes 1 to 3 are used.
async fn store_at_newest_version() -> (TempDir, StateMachine) {
    store_at_version(ClusterVersion::NEWEST).await
}

/// A store of a one-node cluster (node 1) whose members run up to `version`, raised to it:
/// log indexes 1 to 3 are used.
async fn store_at_version(version: ClusterVersion) -> (TempDir, StateMachine) {
    let (dir, mut sm) = fresh_store();
    apply_voters(&mut sm, [(1, member("mail1", 11))]).await;
    let results = apply_all(
        &mut sm,
        2,
        vec![
            Command::ReportBuild(crate::MemberBuild::this_build(1, version)),
            Command::SetClusterVersion { version },
        ],
    )
    .await;
    check_results(results, &[CommandResult::Done, CommandResult::Done]);
    assert_eq!(sm.reader().cluster_version().unwrap(), version);
    (dir, sm)
}

#[track_caller]
fn check_results(actual: Vec<CommandResult>, expected: &[CommandResult]) {
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn commands_are_validated_against_applied_state() {
    let (_dir, mut sm) = fresh_store();
    let results = apply_all(
        &mut sm,
        1,
        vec![
            add_account("a@example.test"),
            add_domain("example.test"),
            add_domain("example.test"),
            add_account("a@example.test"),
            add_account("a@example.test"),
            Command::DeleteDomain {
                name: "example.test".into(),
            },
            Command::DeleteAccount {
                address: "a@example.test".into(),
            },
            Command::DeleteDomain {
                name: "example.test".into(),
            },
            add_account("no-at-sign"),
        ],
    )
    .await;
    check_results(
        results,
        &[
            CommandResult::Rejected(Rejection::NoSuchDomain("example.test".into())),
            CommandResult::Done,
            CommandResult::Rejected(Rejection::DomainExists("example.test".into())),
            CommandResult::Done,
            CommandResult::Rejected(Rejection::AddressExists("a@example.test".into())),
            CommandResult::Rejected(Rejection::DomainNotEmpty("example.test".into())),
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Rejected(Rejection::InvalidAddress("no-at-sign".into())),
        ],
    );
    let reader = sm.reader();
    assert!(reader.domains().unwrap().is_empty());
    assert_eq!(reader.last_applied().unwrap().map(|id| id.index), Some(9));
}

#[tokio::test]
async fn a_retried_request_applies_once_and_gets_the_first_outcome() {
    let (_dir, mut sm) = fresh_store();
    apply_all(&mut sm, 1, vec![add_domain("a.test")]).await;
    let request = crate::Request::new(add_account("u@a.test"));
    for index in [2, 3] {
        let entry = RaftEntry {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(request.clone()),
        };
        sm.apply(stream::iter([Ok((entry, None))])).await.unwrap();
    }
    // Applied once (the second copy would have been rejected as existing, and left no outcome
    // of its own); a fresh request for the same address is rejected.
    let mut staged = crate::reader::Staged::new(&sm.db);
    assert_eq!(
        sm.apply_request(&request, 4, &mut staged).unwrap(),
        CommandResult::Done
    );
    let fresh = crate::Request::new(add_account("u@a.test"));
    let mut staged = crate::reader::Staged::new(&sm.db);
    assert_eq!(
        sm.apply_request(&fresh, 4, &mut staged).unwrap(),
        CommandResult::Rejected(Rejection::AddressExists("u@a.test".into()))
    );
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        apply_all(
            &mut sm,
            1,
            vec![add_domain("a.test"), add_account("u@a.test")],
        )
        .await;
    }
    let (_log, sm) = crate::open(dir.path()).unwrap();
    let account = sm
        .reader()
        .account("u@a.test")
        .unwrap()
        .expect("account after reopen");
    assert_eq!(account.domain, "a.test");
    assert!(account.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_installs_on_a_fresh_store() {
    let leader_dir = TempDir::new().unwrap();
    let (_log, mut leader_sm) = crate::open(leader_dir.path()).unwrap();
    apply_all(
        &mut leader_sm,
        1,
        vec![
            add_domain("a.test"),
            add_account("u@a.test"),
            add_account("v@a.test"),
        ],
    )
    .await;
    let snapshot = leader_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot");
    assert_eq!(
        snapshot.meta.last_log_id.as_ref().map(|id| id.index),
        Some(3)
    );
    // The snapshot carries the state machine only: no Raft log, no vote.
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &snapshot.snapshot.path).unwrap();
    assert!(
        !cfs.iter().any(|cf| cf == "log" || cf == "raft_meta"),
        "{cfs:?}"
    );

    // Ship it the way the network does: copy the files into an incoming directory.
    let follower_dir = TempDir::new().unwrap();
    let (_flog, mut follower_sm) = crate::open(follower_dir.path()).unwrap();
    apply_all(&mut follower_sm, 1, vec![add_domain("stale.test")]).await;
    let incoming = crate::incoming_dir(&crate::snapshot_root(follower_dir.path())).unwrap();
    for file in std::fs::read_dir(&snapshot.snapshot.path).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), incoming.join(file.file_name())).unwrap();
    }
    follower_sm
        .install_snapshot(&snapshot.meta, crate::SnapshotDir { path: incoming })
        .await
        .expect("install");

    let reader = follower_sm.reader();
    let domains: Vec<String> = reader
        .domains()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(domains, vec!["a.test".to_string()]);
    assert_eq!(reader.accounts(Some("a.test")).unwrap().len(), 2);
    assert_eq!(reader.last_applied().unwrap().map(|id| id.index), Some(3));
    let current = follower_sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("installed snapshot is current");
    assert_eq!(current.meta, snapshot.meta);
}

#[tokio::test]
async fn newer_format_version_is_refused() {
    let dir = TempDir::new().unwrap();
    drop(crate::open(dir.path()).unwrap());
    {
        let db = crate::db::Db::open(dir.path()).unwrap();
        db.disk()
            .put_cf(
                db.cf(crate::db::CF_RAFT_META),
                crate::db::KEY_FORMAT,
                crate::db::encode(&(crate::FORMAT_VERSION + 1)),
            )
            .unwrap();
    }
    match crate::open(dir.path()) {
        Err(crate::StoreError::UnsupportedFormat { found, .. }) => {
            assert_eq!(found, crate::FORMAT_VERSION + 1)
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a store of an unknown format version opened"),
    }
}

#[tokio::test]
async fn purge_and_truncate_keep_log_state_consistent() {
    let dir = TempDir::new().unwrap();
    let (mut log, sm) = crate::open(dir.path()).unwrap();
    let entries: Vec<_> = (1..=10)
        .map(|i| normal(i, add_domain(&format!("d{i}.test"))))
        .collect();
    openraft::storage::RaftLogStorageExt::blocking_append(&mut log, entries)
        .await
        .unwrap();
    log.purge(log_id(1, 4)).await.unwrap();
    log.truncate_after(Some(log_id(1, 7))).await.unwrap();
    drop((log, sm));
    let (mut log, _sm) = crate::open(dir.path()).unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|id| id.index), Some(4));
    assert_eq!(state.last_log_id.map(|id| id.index), Some(7));
}

fn delivery(queue_id: &str, blob: u8, recipients: &[&str], missing: &[u64]) -> crate::Delivery {
    crate::Delivery {
        queue_id: queue_id.into(),
        blob: [blob; 32],
        size: 100,
        replicas: vec![1, 2],
        missing: missing.to_vec(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        internal_date: 1_700_000_000,
        summary: crate::summary::summarize(
            format!("Subject: message {queue_id}\r\n\r\nbody\r\n").as_bytes(),
        ),
        outbound: None,
    }
}

#[tokio::test]
async fn filed_deliveries_go_to_junk_once_and_fall_back_to_inbox() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(&mut sm, 1, vec![add_domain("example.test"), add_account(a)]).await;
    let filed = |queue_id: &str, blob: u8, filing| crate::FiledDelivery {
        delivery: delivery(queue_id, blob, &[a], &[]),
        filing,
    };
    let junk = Command::DeliverFiled {
        deliveries: vec![
            filed("q1", 1, crate::Filing::Junk),
            filed("q2", 2, crate::Filing::Inbox),
        ],
    };
    let one = crate::DeliveryOutcome {
        delivered: 1,
        undeliverable: Vec::new(),
    };
    let delivered = CommandResult::Delivered(vec![one.clone(), one.clone()]);
    // The retry (same queue ids) delivers nothing new.
    let results = apply_all(&mut sm, 3, vec![junk.clone(), junk]).await;
    check_results(results, &[delivered.clone(), delivered]);
    let uids = |mailbox: &str| -> Vec<(u32, String)> {
        reader
            .messages(a, mailbox)
            .unwrap()
            .into_iter()
            .map(|m| (m.uid, m.queue_id))
            .collect()
    };
    assert_eq!(uids("Junk"), [(1, "q1".to_owned())]);
    assert_eq!(uids(crate::INBOX), [(1, "q2".to_owned())]);
    assert_eq!(reader.mailbox(a, "Junk").unwrap().unwrap().messages, 1);

    // Without a \Junk mailbox, Junk mail goes to INBOX rather than being lost.
    let results = apply_all(
        &mut sm,
        5,
        vec![
            Command::DeleteMailbox {
                account: a.into(),
                name: "Junk".into(),
            },
            Command::DeliverFiled {
                deliveries: vec![filed("q3", 3, crate::Filing::Junk)],
            },
        ],
    )
    .await;
    check_results(
        results,
        &[CommandResult::Done, CommandResult::Delivered(vec![one])],
    );
    assert_eq!(
        uids(crate::INBOX),
        [(1, "q2".to_owned()), (2, "q3".to_owned())]
    );
}

#[tokio::test]
async fn deliveries_allocate_uids_once_and_expunge_releases_blobs() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let (a, b) = ("a@example.test", "b@example.test");
    apply_all(
        &mut sm,
        1,
        vec![add_domain("example.test"), add_account(a), add_account(b)],
    )
    .await;
    let names: Vec<_> = reader
        .mailboxes(a)
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["Drafts", "INBOX", "Junk", "Sent", "Trash"]);
    let validity_a = reader
        .mailbox(a, crate::INBOX)
        .unwrap()
        .unwrap()
        .uidvalidity;
    let validity_b = reader
        .mailbox(b, crate::INBOX)
        .unwrap()
        .unwrap()
        .uidvalidity;
    assert_ne!(
        validity_a, validity_b,
        "UIDVALIDITY values are never shared"
    );

    let first = Command::Deliver {
        deliveries: vec![
            delivery("q1", 1, &[a, b], &[]),
            // Two messages to one account in one entry get consecutive UIDs.
            delivery("q2", 2, &[a, "gone@example.test"], &[2]),
        ],
    };
    let results = apply_all(&mut sm, 4, vec![first.clone(), first]).await;
    let outcome = |delivered, undeliverable: &[&str]| crate::DeliveryOutcome {
        delivered,
        undeliverable: undeliverable.iter().map(|s| s.to_string()).collect(),
    };
    let expected =
        CommandResult::Delivered(vec![outcome(2, &[]), outcome(1, &["gone@example.test"])]);
    // The second copy (a retry under a new request id) delivers nothing new.
    check_results(results, &[expected.clone(), expected]);
    let uids: Vec<_> = reader
        .messages(a, crate::INBOX)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [1, 2]);
    let inbox = reader.mailbox(a, crate::INBOX).unwrap().unwrap();
    assert_eq!((inbox.uidnext, inbox.messages, inbox.bytes), (3, 2, 200));
    assert_eq!(reader.blob(&[1; 32]).unwrap().unwrap().refs, 2);
    assert_eq!(reader.missing_blobs(2, 10).unwrap(), vec![[2u8; 32]]);
    assert_eq!(reader.missing_blob_counts().unwrap().get(&2), Some(&1));

    let results = apply_all(
        &mut sm,
        6,
        vec![
            Command::Expunge {
                account: a.into(),
                mailbox: crate::INBOX.into(),
                uids: vec![1, 2, 2, 9],
            },
            // A second session expunging the same messages changes nothing.
            Command::Expunge {
                account: a.into(),
                mailbox: crate::INBOX.into(),
                uids: vec![1, 2],
            },
        ],
    )
    .await;
    check_results(
        results,
        &[CommandResult::Expunged(2), CommandResult::Expunged(0)],
    );
    assert_eq!(
        reader.blob(&[1; 32]).unwrap().unwrap().refs,
        1,
        "b still has it"
    );
    assert_eq!(reader.blob(&[2; 32]).unwrap(), None);
    assert_eq!(reader.missing_blob_count(2).unwrap(), 0);
    let inbox = reader.mailbox(a, crate::INBOX).unwrap().unwrap();
    assert_eq!(
        (inbox.uidnext, inbox.messages, inbox.bytes),
        (3, 0, 0),
        "UIDs are not reused"
    );

    // Deleting an account releases its blobs and mailboxes.
    apply_all(
        &mut sm,
        8,
        vec![Command::DeleteAccount { address: b.into() }],
    )
    .await;
    assert_eq!(reader.blob(&[1; 32]).unwrap(), None);
    assert!(reader.mailboxes(b).unwrap().is_empty());
    // A recreated account gets new UIDVALIDITY values.
    apply_all(&mut sm, 9, vec![add_account(b)]).await;
    let recreated = reader
        .mailbox(b, crate::INBOX)
        .unwrap()
        .unwrap()
        .uidvalidity;
    assert!(recreated > validity_b);
}

#[tokio::test]
async fn blobs_stored_clears_missing_markers() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(
        &mut sm,
        1,
        vec![
            add_domain("example.test"),
            add_account(a),
            Command::Deliver {
                deliveries: vec![delivery("q1", 1, &[a], &[2]), delivery("q2", 2, &[a], &[2])],
            },
            Command::BlobsStored {
                node: 2,
                blobs: vec![[1; 32]],
            },
        ],
    )
    .await;
    assert_eq!(reader.missing_blobs(2, 10).unwrap(), vec![[2u8; 32]]);
    assert_eq!(reader.missing_blob_count(1).unwrap(), 0);
}

#[tokio::test]
async fn lost_blobs_go_back_on_the_replicas_pull_list() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(
        &mut sm,
        1,
        vec![
            add_domain("example.test"),
            add_account(a),
            Command::Deliver {
                deliveries: vec![delivery("q1", 1, &[a], &[]), delivery("q2", 2, &[a], &[2])],
            },
        ],
    )
    .await;
    // Node 2 holds blob 1; blob 2 is already on its list.
    assert_eq!(reader.blobs_held_by(2).unwrap(), vec![[1u8; 32]]);
    assert_eq!(reader.blobs_held_by(1).unwrap().len(), 2);
    apply_all(
        &mut sm,
        4,
        vec![Command::BlobsLost {
            node: 2,
            // Blob 9 has no record and node 3 is no replica: both ignored.
            blobs: vec![[1; 32], [9; 32]],
        }],
    )
    .await;
    apply_all(
        &mut sm,
        5,
        vec![Command::BlobsLost {
            node: 3,
            blobs: vec![[1; 32]],
        }],
    )
    .await;
    assert_eq!(
        reader.missing_blobs(2, 10).unwrap(),
        vec![[1u8; 32], [2u8; 32]]
    );
    assert_eq!(reader.missing_blob_count(3).unwrap(), 0);
    assert!(reader.blobs_held_by(2).unwrap().is_empty());
}

#[tokio::test]
async fn digests_agree_on_equal_state_and_differ_otherwise() {
    let entries: Vec<crate::Entry> = vec![
        normal(1, add_domain("a.test")),
        normal(2, add_account("u@a.test")),
    ];
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (_la, mut a) = crate::open(dir_a.path()).unwrap();
    let (_lb, mut b) = crate::open(dir_b.path()).unwrap();
    for sm in [&mut a, &mut b] {
        let batch: Vec<_> = entries.iter().cloned().map(|e| Ok((e, None))).collect();
        sm.apply(stream::iter(batch)).await.expect("apply");
    }
    let (da, db) = (a.reader().digest().unwrap(), b.reader().digest().unwrap());
    assert_eq!(da.applied_index, Some(2));
    assert_eq!(da, db, "the same log gives the same digest");

    // One more entry on one side only: both the index and the digest move.
    b.apply(stream::iter([Ok((
        normal(3, add_account("v@a.test")),
        None,
    ))]))
    .await
    .expect("apply");
    let db = b.reader().digest().unwrap();
    assert_eq!(db.applied_index, Some(3));
    assert_ne!(da.sha256, db.sha256);
}

mod folders {
    use super::*;
    use crate::mail::flag;
    use crate::mail::folders::FlagOp;

    const A: &str = "a@example.test";

    async fn mailbox_with_three(sm: &mut StateMachine) {
        apply_all(
            sm,
            1,
            vec![
                add_domain("example.test"),
                add_account(A),
                Command::Deliver {
                    deliveries: vec![
                        delivery("q1", 1, &[A], &[]),
                        delivery("q2", 2, &[A], &[]),
                        delivery("q3", 3, &[A], &[]),
                    ],
                },
            ],
        )
        .await;
    }

    fn create(name: &str) -> Command {
        Command::CreateMailbox {
            account: A.into(),
            name: name.into(),
            at: 0,
        }
    }

    fn store(uids: &[u32], op: FlagOp, flags: u8, kw: &[&str], since: Option<u64>) -> Command {
        Command::StoreFlags {
            account: A.into(),
            mailbox: crate::INBOX.into(),
            uids: uids.to_vec(),
            op,
            flags,
            keywords: kw.iter().map(|k| k.to_string()).collect(),
            unchanged_since: since,
        }
    }

    #[tokio::test]
    async fn create_delete_and_subscribe() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        let reader = sm.reader();
        mailbox_with_three(&mut sm).await;
        let results = apply_all(
            &mut sm,
            4,
            vec![
                create("Work/项目"),
                create("Work/项目"),
                create("inbox"),
                create("bad//name"),
                Command::SetSubscribed {
                    account: A.into(),
                    name: "Work/项目".into(),
                    subscribed: true,
                },
            ],
        )
        .await;
        assert_eq!(results[0], CommandResult::Done);
        assert!(matches!(
            results[1],
            CommandResult::Rejected(Rejection::MailboxExists(_))
        ));
        assert!(matches!(
            results[2],
            CommandResult::Rejected(Rejection::InvalidMailboxName(_))
        ));
        assert!(matches!(
            results[3],
            CommandResult::Rejected(Rejection::InvalidMailboxName(_))
        ));
        let work = reader.mailbox(A, "Work/项目").unwrap().unwrap();
        assert!(
            reader
                .subscriptions(A)
                .unwrap()
                .contains(&"Work/项目".to_owned())
        );
        // Never an UIDVALIDITY another mailbox of the cluster had.
        let others: Vec<u32> = reader
            .mailboxes(A)
            .unwrap()
            .iter()
            .filter(|m| m.name != "Work/项目")
            .map(|m| m.uidvalidity)
            .collect();
        assert!(
            others.iter().all(|&v| v < work.uidvalidity),
            "{others:?} {work:?}"
        );
        // The superior name was created too, with a UIDVALIDITY of its own.
        let parent = reader
            .mailbox(A, "Work")
            .unwrap()
            .expect("superior created");
        let mut all: Vec<u32> = reader
            .mailboxes(A)
            .unwrap()
            .iter()
            .map(|m| m.uidvalidity)
            .collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            reader.mailboxes(A).unwrap().len(),
            "UIDVALIDITY values are unique"
        );
        assert!(parent.uidvalidity < work.uidvalidity);
        // Deleting a mailbox releases its messages' blobs; INBOX cannot go.
        let results = apply_all(
            &mut sm,
            9,
            vec![
                Command::CopyMessages {
                    account: A.into(),
                    from: crate::INBOX.into(),
                    to: "Work/项目".into(),
                    uids: vec![1],
                    remove_source: false,
                },
                Command::DeleteMailbox {
                    account: A.into(),
                    name: "Work/项目".into(),
                },
                Command::DeleteMailbox {
                    account: A.into(),
                    name: crate::INBOX.into(),
                },
            ],
        )
        .await;
        assert_eq!(reader.blob(&[1; 32]).unwrap().unwrap().refs, 1);
        assert_eq!(results[1], CommandResult::Done);
        assert!(matches!(results[2], CommandResult::Rejected(_)));
        assert!(reader.mailbox(A, "Work/项目").unwrap().is_none());
        assert!(reader.messages(A, "Work/项目").unwrap().is_empty());
    }

    #[tokio::test]
    async fn store_flags_moves_modseq_and_honours_unchanged_since() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        let reader = sm.reader();
        mailbox_with_three(&mut sm).await;
        let before = reader
            .mailbox(A, crate::INBOX)
            .unwrap()
            .unwrap()
            .highest_modseq;
        assert_eq!(
            before, 4,
            "a new mailbox starts at 1; each arrival is a change"
        );
        let results = apply_all(
            &mut sm,
            4,
            vec![
                store(&[1, 2, 99], FlagOp::Add, flag::SEEN, &["$Work"], None),
                // Message 1 changed at modseq 5 > 4: left alone and reported.
                store(&[1, 3], FlagOp::Add, flag::FLAGGED, &[], Some(4)),
                store(&[2], FlagOp::Remove, 0, &["$work"], None),
                store(
                    &[2],
                    FlagOp::Replace,
                    flag::ANSWERED | flag::SEEN,
                    &[],
                    None,
                ),
            ],
        )
        .await;
        let CommandResult::FlagsStored { changed, failed } = &results[0] else {
            panic!("{:?}", results[0]);
        };
        assert_eq!(changed.iter().map(|c| c.uid).collect::<Vec<_>>(), [1, 2]);
        assert!(failed.is_empty());
        assert_eq!(changed[0].keywords, ["$Work"]);
        assert_eq!((changed[0].modseq, changed[1].modseq), (5, 6));
        let CommandResult::FlagsStored { changed, failed } = &results[1] else {
            panic!("{:?}", results[1]);
        };
        assert_eq!(failed, &[1]);
        assert_eq!(changed[0].uid, 3);
        assert_eq!(changed[0].flags, flag::FLAGGED);
        let messages = reader.messages(A, crate::INBOX).unwrap();
        assert_eq!(
            messages[1].keywords,
            Vec::<String>::new(),
            "keywords match without case"
        );
        assert_eq!(messages[1].flags, flag::ANSWERED | flag::SEEN);
        let mailbox = reader.mailbox(A, crate::INBOX).unwrap().unwrap();
        assert_eq!(mailbox.highest_modseq, 9);
        assert_eq!(messages[1].modseq, 9);
    }

    #[tokio::test]
    async fn copy_and_move_keep_flags_and_count_blob_references() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        let reader = sm.reader();
        mailbox_with_three(&mut sm).await;
        let results = apply_all(
            &mut sm,
            4,
            vec![
                create("Archive"),
                store(&[3], FlagOp::Add, flag::SEEN, &[], None),
                Command::CopyMessages {
                    account: A.into(),
                    from: crate::INBOX.into(),
                    to: "Archive".into(),
                    uids: vec![3, 1, 3, 42],
                    remove_source: false,
                },
                Command::CopyMessages {
                    account: A.into(),
                    from: crate::INBOX.into(),
                    to: "Archive".into(),
                    uids: vec![2],
                    remove_source: true,
                },
            ],
        )
        .await;
        let archive = reader.mailbox(A, "Archive").unwrap().unwrap();
        assert_eq!(
            results[2],
            CommandResult::Copied {
                uidvalidity: archive.uidvalidity,
                pairs: vec![(1, 1), (3, 2)],
            }
        );
        assert_eq!(
            results[3],
            CommandResult::Copied {
                uidvalidity: archive.uidvalidity,
                pairs: vec![(2, 3)],
            }
        );
        let copied = reader.messages(A, "Archive").unwrap();
        assert_eq!(copied.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(copied[1].flags, flag::SEEN, "flags travel with the copy");
        assert_eq!((archive.messages, archive.uidnext), (3, 4));
        let inbox: Vec<u32> = reader
            .messages(A, crate::INBOX)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(inbox, [1, 3], "MOVE removed the original");
        assert_eq!(reader.blob(&[1; 32]).unwrap().unwrap().refs, 2);
        assert_eq!(reader.blob(&[2; 32]).unwrap().unwrap().refs, 1);
    }

    /// MOVE into the mailbox the messages are in (RFC 6851 allows it) changes what a
    /// replicated command does, so it waits for cluster version 3: before, it is refused and
    /// nothing changes; from then on, each message gets a new UID there, and the counts, the
    /// flags and the blob references stay as they were.
    #[tokio::test]
    async fn a_move_within_one_mailbox_applies_only_from_cluster_version_3() {
        let within = Command::CopyMessages {
            account: A.into(),
            from: crate::INBOX.into(),
            to: crate::INBOX.into(),
            uids: vec![3, 1, 42],
            remove_source: true,
        };
        let setup = || {
            vec![
                add_domain("example.test"),
                add_account(A),
                Command::Deliver {
                    deliveries: vec![
                        delivery("q1", 1, &[A], &[]),
                        delivery("q2", 2, &[A], &[]),
                        delivery("q3", 3, &[A], &[]),
                    ],
                },
                store(&[1], FlagOp::Add, flag::FLAGGED, &["$Work"], None),
            ]
        };
        let uids = |sm: &StateMachine| -> Vec<u32> {
            sm.reader()
                .messages(A, crate::INBOX)
                .unwrap()
                .iter()
                .map(|m| m.uid)
                .collect()
        };

        let (_dir, mut sm) = store_at_version(ClusterVersion::V2).await;
        apply_all(&mut sm, 4, setup()).await;
        let before = sm.reader().mailbox(A, crate::INBOX).unwrap().unwrap();
        let results = apply_all(&mut sm, 8, vec![within.clone()]).await;
        let [CommandResult::Rejected(Rejection::NotActive(why))] = &results[..] else {
            panic!("{results:?}");
        };
        assert!(why.contains("move-within-mailbox"), "{why}");
        assert_eq!(uids(&sm), [1, 2, 3]);
        assert_eq!(
            sm.reader().mailbox(A, crate::INBOX).unwrap().unwrap(),
            before
        );

        let (_dir, mut sm) = store_at_version(ClusterVersion::V3).await;
        apply_all(&mut sm, 4, setup()).await;
        let before = sm.reader().mailbox(A, crate::INBOX).unwrap().unwrap();
        let results = apply_all(&mut sm, 8, vec![within]).await;
        check_results(
            results,
            &[CommandResult::Copied {
                uidvalidity: before.uidvalidity,
                pairs: vec![(1, 4), (3, 5)],
            }],
        );
        assert_eq!(uids(&sm), [2, 4, 5]);
        let reader = sm.reader();
        let after = reader.mailbox(A, crate::INBOX).unwrap().unwrap();
        assert_eq!(
            (after.messages, after.bytes, after.uidnext),
            (3, before.bytes, 6)
        );
        assert!(after.highest_modseq > before.highest_modseq);
        let moved = &reader.messages(A, crate::INBOX).unwrap()[1];
        assert_eq!(
            (moved.flags, moved.keywords.clone()),
            (flag::FLAGGED, vec!["$Work".to_owned()]),
            "flags travel with the moved message"
        );
        for blob in [[1; 32], [2; 32], [3; 32]] {
            assert_eq!(reader.blob(&blob).unwrap().unwrap().refs, 1);
        }
    }

    #[tokio::test]
    async fn rename_keeps_identity_and_moves_children_and_inbox_is_special() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        let reader = sm.reader();
        mailbox_with_three(&mut sm).await;
        apply_all(
            &mut sm,
            4,
            vec![create("Work"), create("Work/A"), create("Workshop")],
        )
        .await;
        let work = reader.mailbox(A, "Work").unwrap().unwrap();
        let child = reader.mailbox(A, "Work/A").unwrap().unwrap();
        let inbox = reader.mailbox(A, crate::INBOX).unwrap().unwrap();
        let results = apply_all(
            &mut sm,
            7,
            vec![
                Command::CopyMessages {
                    account: A.into(),
                    from: crate::INBOX.into(),
                    to: "Work/A".into(),
                    uids: vec![1],
                    remove_source: false,
                },
                Command::RenameMailbox {
                    account: A.into(),
                    from: "Work".into(),
                    to: "Jobs".into(),
                    at: 0,
                },
                Command::RenameMailbox {
                    account: A.into(),
                    from: crate::INBOX.into(),
                    to: "Old".into(),
                    at: 0,
                },
                Command::RenameMailbox {
                    account: A.into(),
                    from: "Jobs".into(),
                    to: "Workshop".into(),
                    at: 0,
                },
            ],
        )
        .await;
        assert_eq!(results[1], CommandResult::Done);
        assert!(matches!(
            results[3],
            CommandResult::Rejected(Rejection::MailboxExists(_))
        ));
        let names: Vec<String> = reader
            .mailboxes(A)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert!(names.contains(&"Jobs".to_string()) && names.contains(&"Jobs/A".to_string()));
        assert!(
            names.contains(&"Workshop".to_string()),
            "only Work's own children move"
        );
        assert!(!names.contains(&"Work".to_string()));
        assert_eq!(
            reader.mailbox(A, "Jobs").unwrap().unwrap().uidvalidity,
            work.uidvalidity
        );
        assert_eq!(
            reader.mailbox(A, "Jobs/A").unwrap().unwrap().uidvalidity,
            child.uidvalidity
        );
        assert_eq!(reader.messages(A, "Jobs/A").unwrap()[0].uid, 1);
        // INBOX: its messages move to a new mailbox; INBOX stays, empty, same UIDVALIDITY.
        let inbox_after = reader.mailbox(A, crate::INBOX).unwrap().unwrap();
        assert_eq!(inbox_after.uidvalidity, inbox.uidvalidity);
        assert_eq!(inbox_after.messages, 0);
        assert!(reader.messages(A, crate::INBOX).unwrap().is_empty());
        assert_eq!(reader.messages(A, "Old").unwrap().len(), 3);
        assert_ne!(
            reader.mailbox(A, "Old").unwrap().unwrap().uidvalidity,
            inbox.uidvalidity
        );
    }
}

#[tokio::test]
async fn append_goes_to_the_named_mailbox_with_its_flags() {
    use crate::mail::folders::AppendedMessage;
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    let message = AppendedMessage {
        blob: [7; 32],
        size: 1234,
        replicas: vec![1, 2],
        missing: vec![2],
        flags: crate::mail::flag::SEEN | crate::mail::flag::DRAFT,
        keywords: vec!["$Draft".into(), "$draft".into()],
        internal_date: 1_600_000_000,
        summary: crate::summary::summarize(b"Subject: draft\r\n\r\nbody\r\n"),
    };
    let append = |mailbox: &str| Command::Append {
        account: a.into(),
        mailbox: mailbox.into(),
        message: Box::new(message.clone()),
    };
    let results = apply_all(
        &mut sm,
        1,
        vec![
            add_domain("example.test"),
            add_account(a),
            append("Drafts"),
            append("Drafts"),
            append("Nowhere"),
        ],
    )
    .await;
    let drafts = reader.mailbox(a, "Drafts").unwrap().unwrap();
    assert_eq!(
        results[2..4],
        [
            CommandResult::Appended {
                uidvalidity: drafts.uidvalidity,
                uid: 1
            },
            CommandResult::Appended {
                uidvalidity: drafts.uidvalidity,
                uid: 2
            },
        ]
    );
    assert!(matches!(
        results[4],
        CommandResult::Rejected(Rejection::NoSuchMailbox(_))
    ));
    let stored = reader.messages(a, "Drafts").unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].flags, message.flags);
    assert_eq!(
        stored[0].keywords,
        ["$Draft"],
        "keywords dedup without case"
    );
    assert_eq!(stored[0].internal_date, 1_600_000_000);
    assert_eq!((drafts.messages, drafts.bytes), (2, 2468));
    assert_eq!(reader.blob(&[7; 32]).unwrap().unwrap().refs, 2);
    assert_eq!(reader.missing_blobs(2, 10).unwrap(), vec![[7u8; 32]]);
}

#[tokio::test]
async fn a_blob_keeps_its_summary_while_messages_refer_to_it() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let (a, b) = ("a@example.test", "b@example.test");
    apply_all(
        &mut sm,
        1,
        vec![
            add_domain("example.test"),
            add_account(a),
            add_account(b),
            Command::Deliver {
                deliveries: vec![delivery("q1", 1, &[a, b], &[])],
            },
        ],
    )
    .await;
    let summary = reader.summary(&[1; 32]).unwrap().expect("summary stored");
    assert_eq!(
        summary.envelope.subject.as_deref(),
        Some(&b"message q1"[..])
    );
    let expunge = |account: &str| Command::Expunge {
        account: account.into(),
        mailbox: crate::INBOX.into(),
        uids: vec![1],
    };
    apply_all(&mut sm, 5, vec![expunge(a)]).await;
    assert!(
        reader.summary(&[1; 32]).unwrap().is_some(),
        "b still has it"
    );
    apply_all(&mut sm, 6, vec![expunge(b)]).await;
    assert!(reader.summary(&[1; 32]).unwrap().is_none());
    assert!(reader.blob(&[1; 32]).unwrap().is_none());
}

fn outbound(sender: &str, recipients: &[&str]) -> Option<crate::Outbound> {
    Some(crate::Outbound {
        sender: sender.into(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        envid: None,
        ret_full: false,
    })
}

fn attempt_error(status: &str) -> crate::AttemptError {
    crate::AttemptError {
        status: status.into(),
        diagnostic: format!("{status} said the remote"),
        remote: Some("mx.remote.test".into()),
        at: 1_700_000_100,
    }
}

#[tokio::test]
async fn the_remote_part_of_a_message_is_queued_with_its_local_part_once() {
    use crate::{AttemptOutcome, QueueAction, RecipientState};
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(&mut sm, 1, vec![add_domain("example.test"), add_account(a)]).await;
    let mixed = crate::Delivery {
        outbound: outbound("a@example.test", &["x@remote.test", "y@remote.test"]),
        ..delivery("q1", 7, &[a], &[])
    };
    let only_remote = crate::Delivery {
        recipients: Vec::new(),
        outbound: outbound("", &["z@remote.test"]),
        ..delivery("q2", 8, &[], &[])
    };
    let deliver = Command::Deliver {
        deliveries: vec![mixed, only_remote],
    };
    // A retried entry (new request id) queues nothing twice.
    apply_all(&mut sm, 3, vec![deliver.clone(), deliver]).await;
    assert_eq!(reader.queue_len().unwrap(), 2);
    assert_eq!(reader.messages(a, crate::INBOX).unwrap().len(), 1);
    // The local copy and the queue entry each hold the blob.
    assert_eq!(reader.blob(&[7; 32]).unwrap().unwrap().refs, 2);
    assert_eq!(reader.blob(&[8; 32]).unwrap().unwrap().refs, 1);
    let queued = reader.queued("q1").unwrap().unwrap();
    assert_eq!(queued.sender, "a@example.test");
    assert_eq!(queued.pending().count(), 2);
    assert_eq!(queued.next_attempt_at, 1_700_000_000);
    assert_eq!(reader.due(1_699_999_999, 10).unwrap(), Vec::<String>::new());
    assert_eq!(reader.due(1_700_000_000, 10).unwrap(), ["q1", "q2"]);
    assert_eq!(reader.due(1_700_000_000, 1).unwrap(), ["q1"]);
    // Listing pages in queue id order.
    let ids = |page: Vec<crate::QueuedMessage>| page.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(reader.queue(None, 1).unwrap()), ["q1"]);
    assert_eq!(ids(reader.queue(Some("q1"), 10).unwrap()), ["q2"]);
    assert!(reader.queue(Some("q2"), 10).unwrap().is_empty());

    // One recipient delivered, one deferred: due again at the next attempt time only.
    let results = apply_all(
        &mut sm,
        5,
        vec![Command::RecordAttempt {
            id: "q1".into(),
            outcomes: vec![
                ("x@remote.test".into(), AttemptOutcome::Delivered),
                (
                    "y@remote.test".into(),
                    AttemptOutcome::Deferred(attempt_error("4.4.1")),
                ),
            ],
            next_attempt_at: 1_700_000_480,
        }],
    )
    .await;
    let CommandResult::Queued(Some(entry)) = &results[0] else {
        panic!("{results:?}");
    };
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.recipients[0].state, RecipientState::Delivered);
    assert_eq!(entry.recipients[1].state, RecipientState::Pending);
    assert_eq!(entry.recipients[1].last_error, Some(attempt_error("4.4.1")));
    assert_eq!(reader.due(1_700_000_479, 10).unwrap(), ["q2"]);
    assert_eq!(reader.due(1_700_000_480, 10).unwrap(), ["q2", "q1"]);

    // Held messages are never due; a retry releases them and makes them due at once.
    apply_all(
        &mut sm,
        6,
        vec![Command::QueueAct {
            id: "q1".into(),
            action: QueueAction::Hold,
        }],
    )
    .await;
    assert_eq!(reader.due(i64::MAX, 10).unwrap(), ["q2"]);
    apply_all(
        &mut sm,
        7,
        vec![Command::QueueAct {
            id: "q1".into(),
            action: QueueAction::Retry,
        }],
    )
    .await;
    assert_eq!(reader.due(0, 10).unwrap(), ["q1"]);

    // A permanent failure keeps the entry until the sender has been told.
    apply_all(
        &mut sm,
        8,
        vec![Command::RecordAttempt {
            id: "q1".into(),
            outcomes: vec![(
                "y@remote.test".into(),
                AttemptOutcome::Failed(attempt_error("5.1.1")),
            )],
            next_attempt_at: 1_700_000_900,
        }],
    )
    .await;
    let entry = reader.queued("q1").unwrap().unwrap();
    assert_eq!(entry.unreported().count(), 1);
    assert_eq!(entry.pending().count(), 0);
    let results = apply_all(
        &mut sm,
        9,
        vec![Command::MarkBounced {
            id: "q1".into(),
            recipients: vec!["y@remote.test".into()],
        }],
    )
    .await;
    check_results(results, &[CommandResult::Queued(None)]);
    assert!(reader.queued("q1").unwrap().is_none());
    assert_eq!(reader.blob(&[7; 32]).unwrap().unwrap().refs, 1);

    // A bounce (null sender) that fails is dropped, never reported: nobody to tell.
    apply_all(
        &mut sm,
        10,
        vec![Command::RecordAttempt {
            id: "q2".into(),
            outcomes: vec![(
                "z@remote.test".into(),
                AttemptOutcome::Failed(attempt_error("5.1.1")),
            )],
            next_attempt_at: 0,
        }],
    )
    .await;
    assert!(reader.queued("q2").unwrap().is_none());
    assert!(
        reader.blob(&[8; 32]).unwrap().is_none(),
        "the last reference went"
    );
    assert_eq!(reader.queue_len().unwrap(), 0);
    assert!(reader.due(i64::MAX, 10).unwrap().is_empty());

    // Commands on what is not queued are rejected alike on every node.
    let results = apply_all(
        &mut sm,
        11,
        vec![Command::QueueAct {
            id: "q1".into(),
            action: QueueAction::Delete,
        }],
    )
    .await;
    check_results(
        results,
        &[CommandResult::Rejected(crate::Rejection::NotQueued(
            "q1".into(),
        ))],
    );
}

#[tokio::test]
async fn deleting_a_queued_message_releases_its_blob() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let remote_only = crate::Delivery {
        recipients: Vec::new(),
        outbound: outbound("s@example.test", &["x@remote.test"]),
        ..delivery("q9", 9, &[], &[2])
    };
    apply_all(
        &mut sm,
        1,
        vec![
            Command::Deliver {
                deliveries: vec![remote_only],
            },
            Command::QueueAct {
                id: "q9".into(),
                action: crate::QueueAction::Delete,
            },
        ],
    )
    .await;
    assert!(reader.queued("q9").unwrap().is_none());
    assert!(reader.blob(&[9; 32]).unwrap().is_none());
    assert!(reader.missing_blobs(2, 10).unwrap().is_empty());
    assert!(reader.due(i64::MAX, 10).unwrap().is_empty());
}

#[tokio::test]
async fn a_notice_is_delivered_and_recorded_once_and_the_outbound_policy_is_replicated() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    assert_eq!(
        reader.outbound_policy().unwrap(),
        crate::OutboundPolicy::default()
    );
    let remote = crate::Delivery {
        recipients: Vec::new(),
        outbound: outbound("a@example.test", &["x@remote.test", "y@remote.test"]),
        ..delivery("q5", 5, &[], &[])
    };
    // The notices go to a@example.test's INBOX.
    let notice = |queue_id: &str, blob: u8| {
        Some(Box::new(crate::Delivery {
            outbound: None,
            ..delivery(queue_id, blob, &["a@example.test"], &[])
        }))
    };
    let policy = crate::OutboundPolicy {
        retry_interval_secs: 2,
        smarthost: "relay.example.test:587".into(),
        smarthost_mode: crate::SmarthostMode::OnFailure,
        ..crate::OutboundPolicy::default()
    };
    let delay = || Command::Notify {
        id: "q5".into(),
        kind: crate::NoticeKind::Delay,
        delivery: notice("D-q5", 6),
    };
    apply_all(
        &mut sm,
        1,
        vec![add_domain("example.test"), add_account("a@example.test")],
    )
    .await;
    let results = apply_all(
        &mut sm,
        3,
        vec![
            Command::Deliver {
                deliveries: vec![remote],
            },
            delay(),
            delay(),
            Command::SetOutboundPolicy(policy.clone()),
        ],
    )
    .await;
    let CommandResult::Queued(Some(entry)) = &results[1] else {
        panic!("{results:?}");
    };
    assert!(entry.delay_notified);
    // The second delay notice was not delivered: one message in the INBOX.
    assert_eq!(
        reader
            .messages("a@example.test", crate::INBOX)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(reader.due(i64::MAX, 10).unwrap(), ["q5"], "still pending");
    assert_eq!(reader.outbound_policy().unwrap(), policy);

    // A failure keeps the entry until its bounce is recorded, once.
    apply_all(
        &mut sm,
        7,
        vec![Command::RecordAttempt {
            id: "q5".into(),
            outcomes: vec![
                ("x@remote.test".into(), crate::AttemptOutcome::Delivered),
                (
                    "y@remote.test".into(),
                    crate::AttemptOutcome::Failed(attempt_error("5.1.1")),
                ),
            ],
            next_attempt_at: 1_800_000_000,
        }],
    )
    .await;
    // The bounce does not wait for the next attempt time.
    assert_eq!(reader.due(1_700_000_000, 10).unwrap(), ["q5"]);
    let bounce = || Command::Notify {
        id: "q5".into(),
        kind: crate::NoticeKind::Failures(vec!["y@remote.test".into()]),
        delivery: notice("B-q5", 7),
    };
    let results = apply_all(&mut sm, 8, vec![bounce(), bounce()]).await;
    check_results(
        results,
        &[
            CommandResult::Queued(None),
            CommandResult::Rejected(crate::Rejection::NotQueued("q5".into())),
        ],
    );
    assert_eq!(
        reader
            .messages("a@example.test", crate::INBOX)
            .unwrap()
            .len(),
        2
    );
    assert!(
        reader.blob(&[5; 32]).unwrap().is_none(),
        "q5 released its blob"
    );
    let secret = crate::OutboundPolicy {
        smarthost_password: "hunter2".into(),
        ..policy
    };
    assert!(!format!("{secret:?}").contains("hunter2"));
}

fn dkim_key(domain: &str, selector: &str) -> crate::DkimKey {
    crate::DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm: crate::DkimAlgorithm::Ed25519Sha256,
        private_key_pem: format!("-----BEGIN PRIVATE KEY-----\nsecret-of-{selector}\n"),
        created_at: 7,
    }
}

#[tokio::test]
async fn dkim_keys_belong_to_local_domains_and_go_with_them() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let results = apply_all(
        &mut sm,
        1,
        vec![
            Command::SetDkimKey(dkim_key("a.test", "s1")),
            add_domain("a.test"),
            add_domain("b.test"),
            Command::SetDkimKey(dkim_key("a.test", "s1")),
            Command::SetDkimKey(dkim_key("b.test", "s1")),
            // Rotation: a new selector replaces the old key.
            Command::SetDkimKey(dkim_key("a.test", "s2")),
            Command::DeleteDkimKey {
                domain: "b.test".into(),
            },
            Command::DeleteDkimKey {
                domain: "b.test".into(),
            },
        ],
    )
    .await;
    let done = CommandResult::Done;
    check_results(
        results,
        &[
            CommandResult::Rejected(Rejection::NoSuchDomain("a.test".into())),
            done.clone(),
            done.clone(),
            done.clone(),
            done.clone(),
            done.clone(),
            done.clone(),
            CommandResult::Rejected(Rejection::NoDkimKey("b.test".into())),
        ],
    );
    assert_eq!(
        reader.dkim_key("a.test").unwrap(),
        Some(dkim_key("a.test", "s2"))
    );
    assert_eq!(reader.dkim_key("b.test").unwrap(), None);
    assert_eq!(reader.dkim_keys().unwrap(), [dkim_key("a.test", "s2")]);

    // Deleting the domain deletes its key; a domain added again starts without one.
    apply_all(
        &mut sm,
        9,
        vec![
            Command::DeleteDomain {
                name: "a.test".into(),
            },
            add_domain("a.test"),
        ],
    )
    .await;
    assert_eq!(reader.dkim_key("a.test").unwrap(), None);
    assert!(reader.dkim_keys().unwrap().is_empty());
}

#[test]
fn dkim_private_keys_are_never_printed() {
    let key = dkim_key("a.test", "s1");
    assert!(!format!("{key:?}").contains("secret-of"));
    let command = Command::SetDkimKey(key);
    assert_eq!(command.to_string(), "SetDkimKey(a.test, s1)");
    assert!(!format!("{command:?}").contains("secret-of"));
}

#[tokio::test]
async fn a_store_from_before_dkim_keys_opens_and_takes_keys() {
    let dir = TempDir::new().unwrap();
    {
        let (_log, mut sm) = crate::open(dir.path()).unwrap();
        apply_all(&mut sm, 1, vec![add_domain("a.test")]).await;
    }
    // Make it a store written by the previous version: no dkim_keys family.
    {
        let path = dir.path().join("rocksdb");
        let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).unwrap();
        let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, &names).unwrap();
        db.drop_cf(crate::db::CF_DKIM_KEYS).unwrap();
    }
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path().join("rocksdb"));
    assert!(!names.unwrap().iter().any(|n| n == crate::db::CF_DKIM_KEYS));

    let (_log, mut sm) = crate::open(dir.path()).unwrap();
    let reader = sm.reader();
    assert!(reader.domain("a.test").unwrap().is_some());
    assert!(reader.dkim_keys().unwrap().is_empty());
    let results = apply_all(
        &mut sm,
        2,
        vec![Command::SetDkimKey(dkim_key("a.test", "s1"))],
    )
    .await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(
        reader.dkim_key("a.test").unwrap(),
        Some(dkim_key("a.test", "s1"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_carry_dkim_keys() {
    let leader_dir = TempDir::new().unwrap();
    let (_log, mut leader_sm) = crate::open(leader_dir.path()).unwrap();
    apply_all(
        &mut leader_sm,
        1,
        vec![
            add_domain("a.test"),
            Command::SetDkimKey(dkim_key("a.test", "s1")),
        ],
    )
    .await;
    let snapshot = leader_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot");

    // The follower's own key of another domain must not survive the install.
    let follower_dir = TempDir::new().unwrap();
    let (_flog, mut follower_sm) = crate::open(follower_dir.path()).unwrap();
    apply_all(
        &mut follower_sm,
        1,
        vec![
            add_domain("stale.test"),
            Command::SetDkimKey(dkim_key("stale.test", "old")),
        ],
    )
    .await;
    let incoming = crate::incoming_dir(&crate::snapshot_root(follower_dir.path())).unwrap();
    for file in std::fs::read_dir(&snapshot.snapshot.path).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), incoming.join(file.file_name())).unwrap();
    }
    follower_sm
        .install_snapshot(&snapshot.meta, crate::SnapshotDir { path: incoming })
        .await
        .expect("install");
    assert_eq!(
        follower_sm.reader().dkim_keys().unwrap(),
        [dkim_key("a.test", "s1")]
    );
}

fn lockout_of(target: crate::LockTarget, since: u64, until: u64) -> crate::Lockout {
    crate::Lockout {
        target,
        since,
        until,
        reason: "test".into(),
    }
}

#[tokio::test]
async fn lockouts_hold_until_they_end_and_an_operator_can_lift_them() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let ip = crate::LockTarget::Ip("192.0.2.1".parse().unwrap());
    let alice = crate::LockTarget::Account("alice@a.test".into());
    let policy = crate::ProtectionPolicy {
        connections_per_minute_per_ip: 5,
        ..Default::default()
    };
    let results = apply_all(
        &mut sm,
        1,
        vec![
            Command::Lock(lockout_of(ip.clone(), 100, 200)),
            Command::Lock(lockout_of(alice.clone(), 150, 300)),
            Command::SetProtectionPolicy(policy.clone()),
        ],
    )
    .await;
    check_results(
        results,
        &[
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Done,
        ],
    );
    assert_eq!(reader.protection_policy().unwrap(), policy);
    assert!(reader.locked(&ip, 199).unwrap());
    assert!(!reader.locked(&ip, 200).unwrap());
    assert!(reader.locked(&alice, 250).unwrap());
    assert_eq!(reader.lockouts().unwrap().len(), 2);

    // A later lockout clears those that had ended when it began; the same target is replaced.
    let bob = crate::LockTarget::Account("bob@a.test".into());
    let results = apply_all(
        &mut sm,
        4,
        vec![
            Command::Lock(lockout_of(bob.clone(), 250, 400)),
            Command::Lock(lockout_of(bob.clone(), 260, 500)),
            Command::Unlock {
                target: alice.clone(),
            },
            Command::Unlock {
                target: alice.clone(),
            },
        ],
    )
    .await;
    check_results(
        results,
        &[
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Rejected(Rejection::NoLockout("account:alice@a.test".into())),
        ],
    );
    assert_eq!(
        reader.lockouts().unwrap(),
        [lockout_of(bob.clone(), 260, 500)]
    );
    assert_eq!(reader.lockout(&ip).unwrap(), None);
}

fn access_entry(
    list: crate::AccessList,
    pattern: &str,
    at: u64,
    expires: Option<u64>,
) -> crate::AccessEntry {
    crate::AccessEntry {
        list,
        pattern: pattern.parse().expect("test pattern"),
        comment: Some(format!("test {pattern}")),
        created_at: at,
        expires_at: expires,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_entries_are_added_replaced_removed_and_expire() {
    use crate::AccessList::{Allow, Block};
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let version = reader.access_version();
    let net = access_entry(Block, "203.0.113.0/24", 100, None);
    let temporary = access_entry(Block, "198.51.100.7", 100, Some(200));
    let sender = access_entry(Block, "*@spam.example", 100, None);
    let partner = access_entry(Allow, "*@spam.example", 100, None);
    let results = apply_all(
        &mut sm,
        1,
        vec![
            Command::AddAccessEntry(net.clone()),
            Command::AddAccessEntry(temporary.clone()),
            Command::AddAccessEntry(sender.clone()),
            Command::AddAccessEntry(partner.clone()),
        ],
    )
    .await;
    assert!(results.iter().all(|r| *r == CommandResult::Done));
    assert!(
        reader.access_version() > version,
        "adding bumps the version"
    );
    assert_eq!(reader.access_entries().unwrap().len(), 4);
    // The same pattern on both lists is two entries.
    assert_eq!(
        reader.access_entry(Allow, &partner.pattern).unwrap(),
        Some(partner.clone())
    );
    assert_eq!(
        reader.access_entry(Block, &sender.pattern).unwrap(),
        Some(sender.clone())
    );

    // Adding the same list and pattern replaces (a ban renewed); a later add drops entries
    // that had expired when it was made.
    let renewed = access_entry(Block, "203.0.113.0/24", 150, Some(1_000));
    let later = access_entry(Block, "spam.example", 250, None);
    let version = reader.access_version();
    let results = apply_all(
        &mut sm,
        5,
        vec![
            Command::AddAccessEntry(renewed.clone()),
            Command::AddAccessEntry(later.clone()),
            Command::RemoveAccessEntry {
                list: Allow,
                pattern: partner.pattern.clone(),
            },
            Command::RemoveAccessEntry {
                list: Allow,
                pattern: partner.pattern.clone(),
            },
        ],
    )
    .await;
    assert_eq!(
        results,
        [
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Done,
            CommandResult::Rejected(Rejection::NoAccessEntry("allow *@spam.example".into())),
        ]
    );
    assert!(reader.access_version() > version);
    let mut left: Vec<String> = reader
        .access_entries()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {:?}", e.list, e.pattern, e.expires_at))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "block *@spam.example None",
            "block 203.0.113.0/24 Some(1000)",
            "block spam.example None",
        ]
    );
    assert_eq!(
        reader.access_entry(Block, &temporary.pattern).unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_carry_access_lists() {
    use crate::AccessList::{Allow, Block};
    let leader_dir = TempDir::new().unwrap();
    let (_log, mut leader_sm) = crate::open(leader_dir.path()).unwrap();
    let kept = [
        access_entry(Block, "2001:db8::/32", 100, None),
        access_entry(Allow, "partner.example", 100, Some(5_000)),
    ];
    apply_all(
        &mut leader_sm,
        1,
        kept.iter().cloned().map(Command::AddAccessEntry).collect(),
    )
    .await;
    let snapshot = leader_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot");

    // The follower's own entry must not survive the install.
    let follower_dir = TempDir::new().unwrap();
    let (_flog, mut follower_sm) = crate::open(follower_dir.path()).unwrap();
    apply_all(
        &mut follower_sm,
        1,
        vec![Command::AddAccessEntry(access_entry(
            Block,
            "stale.example",
            100,
            None,
        ))],
    )
    .await;
    let reader = follower_sm.reader();
    let version = reader.access_version();
    let incoming = crate::incoming_dir(&crate::snapshot_root(follower_dir.path())).unwrap();
    for file in std::fs::read_dir(&snapshot.snapshot.path).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), incoming.join(file.file_name())).unwrap();
    }
    follower_sm
        .install_snapshot(&snapshot.meta, crate::SnapshotDir { path: incoming })
        .await
        .expect("install");
    assert!(
        reader.access_version() > version,
        "an install bumps the version"
    );
    let mut entries = reader.access_entries().unwrap();
    entries.sort_by_key(|e| e.pattern.to_string());
    assert_eq!(entries, kept);
}

/// A domain name whose `AddDomain` panics in `execute` (test builds only).
pub(crate) const PANICKING_DOMAIN: &str = "panics.invalid";

/// An entry that panics while it applies is refused, with nothing of it written, and the state
/// machine goes on with the next entry: a bug met by one entry must not stop every node.
#[tokio::test]
async fn an_entry_that_panics_is_refused_and_the_next_one_applies() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let request = crate::Request::new(add_domain(PANICKING_DOMAIN));
    let mut staged = crate::reader::Staged::new(&sm.db);
    let result = sm
        .apply_request(&request, 1, &mut staged)
        .expect("no storage error");
    assert_eq!(result, CommandResult::Rejected(Rejection::ApplyFailed));
    // Through apply(): the panicking entry and a good one after it.
    let entries = [
        Ok((normal(1, add_domain(PANICKING_DOMAIN)), None)),
        Ok((normal(2, add_domain("example.test")), None)),
    ];
    sm.apply(stream::iter(entries))
        .await
        .expect("apply goes on");
    assert!(reader.domain(PANICKING_DOMAIN).unwrap().is_none());
    assert!(reader.domain("example.test").unwrap().is_some());
    assert_eq!(reader.last_applied().unwrap().map(|l| l.index), Some(2));
}

/// A delivery whose summary is over the hard ceilings (which no proposer of this build makes)
/// is refused the same way on every node, and mail after it is delivered.
#[tokio::test]
async fn a_delivery_over_the_summary_ceiling_is_refused() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(&mut sm, 1, vec![add_domain("example.test"), add_account(a)]).await;
    let mut hostile = delivery("q1", 1, &[a], &[]);
    let leaf = hostile.summary.root.clone();
    hostile.summary.root.kind = crate::summary::PartKind::Multipart(vec![leaf; 20_000]);
    let results = apply_all(
        &mut sm,
        3,
        vec![
            Command::Deliver {
                deliveries: vec![hostile],
            },
            Command::Deliver {
                deliveries: vec![delivery("q2", 2, &[a], &[])],
            },
        ],
    )
    .await;
    assert_eq!(
        results[0],
        CommandResult::Rejected(Rejection::MessageTooComplex)
    );
    assert!(matches!(results[1], CommandResult::Delivered(_)));
    assert!(reader.summary(&[1; 32]).unwrap().is_none());
    assert_eq!(reader.messages(a, "INBOX").unwrap().len(), 1);
}

fn member(name: &str, last_octet: u8) -> crate::Member {
    crate::Member {
        name: name.into(),
        role: crate::Role::Data,
        raft_addr: format!("127.0.0.{last_octet}:7071"),
        admin_addr: format!("127.0.0.{last_octet}:7070"),
    }
}

/// A join with a name or address a member already has is refused, saying which member has
/// it; a registration that never became a member is replaced by a new one of its name.
#[tokio::test]
async fn a_join_that_clashes_with_a_member_is_refused() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    apply_voters(&mut sm, [(1, member("mail1", 11))]).await;
    let register = |m| Command::RegisterNode { member: m };
    let results = apply_all(
        &mut sm,
        2,
        vec![
            register(member("MAIL1", 12)),
            register(member("mail2", 11)),
            register(crate::Member {
                admin_addr: "127.0.0.11:7070".into(),
                ..member("mail2", 12)
            }),
            register(member("mail2", 12)),
            register(member("mail2", 13)),
        ],
    )
    .await;
    let clash = |text: &str| CommandResult::Rejected(Rejection::MemberClash(text.into()));
    check_results(
        results,
        &[
            clash(r#"the name "MAIL1" is already used by node 1 (mail1)"#),
            clash("the raft address 127.0.0.11:7071 is already used by node 1 (mail1)"),
            clash("the admin address 127.0.0.11:7070 is already used by node 1 (mail1)"),
            CommandResult::NodeRegistered(2),
            CommandResult::NodeRegistered(3),
        ],
    );
    // The second mail2 replaced the first, which never became a member.
    let pending: Vec<u64> = reader
        .pending_nodes()
        .unwrap()
        .iter()
        .map(|p| p.node_id)
        .collect();
    assert_eq!(pending, [3]);
}

/// A data node that leaves (2) hands its copies on first: the drain plan gives each blob that
/// lacks two other data voters one more (3), which must pull it; the plan waits until those
/// copies are confirmed; after the node left, its name is forgotten only on blobs with two
/// other confirmed copies.
#[tokio::test]
async fn a_leaving_data_node_is_drained_before_its_name_is_forgotten() {
    let (_dir, mut sm) = store_at_newest_version().await;
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(&mut sm, 4, vec![add_domain("example.test"), add_account(a)]).await;
    let mut on_2_and_3 = delivery("q3", 3, &[a], &[]);
    on_2_and_3.replicas = vec![2, 3];
    let mut on_1_and_3 = delivery("q4", 4, &[a], &[]);
    on_1_and_3.replicas = vec![1, 3];
    apply_all(
        &mut sm,
        6,
        vec![Command::Deliver {
            deliveries: vec![
                delivery("q1", 1, &[a], &[]),
                delivery("q2", 2, &[a], &[2]),
                on_2_and_3,
                on_1_and_3,
            ],
        }],
    )
    .await;
    let voters = [1, 2, 3];
    let plan = reader.drain_plan(2, &voters, 100).unwrap();
    assert_eq!(plan.naming, 3);
    assert_eq!(plan.waiting, 3);
    assert_eq!(
        plan.add,
        std::collections::BTreeMap::from([(1, vec![[3; 32]]), (3, vec![[1; 32], [2; 32]])])
    );
    // A limit bounds the copies asked for, not the count.
    let limited = reader.drain_plan(2, &voters, 1).unwrap();
    assert_eq!(
        (limited.waiting, limited.add.values().flatten().count()),
        (3, 1)
    );

    let adds: Vec<Command> = plan
        .add
        .into_iter()
        .map(|(to, blobs)| Command::AddReplicas { to, blobs })
        .collect();
    apply_all(&mut sm, 7, adds).await;
    assert_eq!(
        reader.blob(&[1; 32]).unwrap().unwrap().replicas,
        vec![1, 2, 3]
    );
    assert_eq!(
        reader.blob(&[3; 32]).unwrap().unwrap().replicas,
        vec![2, 3, 1]
    );
    // Adding again changes nothing.
    apply_all(
        &mut sm,
        9,
        vec![Command::AddReplicas {
            to: 3,
            blobs: vec![[1; 32], [4; 32]],
        }],
    )
    .await;
    assert_eq!(reader.blob(&[4; 32]).unwrap().unwrap().replicas, vec![1, 3]);
    assert_eq!(reader.missing_blobs(3, 10).unwrap(), vec![[1; 32], [2; 32]]);
    let plan = reader.drain_plan(2, &voters, 100).unwrap();
    assert_eq!(
        (plan.waiting, plan.add.len()),
        (3, 0),
        "waiting for the pulls"
    );

    // Too early: no blob has two other confirmed copies, so none forgets node 2.
    let forget = Command::ForgetReplicas {
        from: 2,
        blobs: vec![[1; 32], [2; 32], [3; 32]],
    };
    apply_all(&mut sm, 10, vec![forget.clone()]).await;
    assert_eq!(
        reader.blob(&[1; 32]).unwrap().unwrap().replicas,
        vec![1, 2, 3]
    );

    apply_all(
        &mut sm,
        11,
        vec![
            Command::BlobsStored {
                node: 3,
                blobs: vec![[1; 32], [2; 32]],
            },
            Command::BlobsStored {
                node: 1,
                blobs: vec![[3; 32]],
            },
        ],
    )
    .await;
    // [2] had never reached node 2 and [1] and [3] are on two others: all may go.
    assert_eq!(reader.drain_plan(2, &voters, 100).unwrap().waiting, 0);
    apply_all(&mut sm, 13, vec![forget]).await;
    assert_eq!(reader.blob(&[1; 32]).unwrap().unwrap().replicas, vec![1, 3]);
    assert_eq!(reader.blob(&[2; 32]).unwrap().unwrap().replicas, vec![1, 3]);
    assert_eq!(reader.blob(&[3; 32]).unwrap().unwrap().replicas, vec![3, 1]);
    assert!(reader.missing_blobs(2, 10).unwrap().is_empty());
    assert_eq!(reader.replica_count(2).unwrap(), 0);
}

/// A blob that names a node which left gets the new node as replica instead, which must then
/// pull it; blobs that no longer name the old node, or already name the new one, stay as they
/// are.
#[tokio::test]
async fn moved_replicas_are_pulled_by_their_new_node() {
    let (_dir, mut sm) = store_at_newest_version().await;
    let reader = sm.reader();
    let a = "a@example.test";
    apply_all(&mut sm, 4, vec![add_domain("example.test"), add_account(a)]).await;
    let mut on_1_and_4 = delivery("q3", 3, &[a], &[]);
    on_1_and_4.replicas = vec![1, 4];
    apply_all(
        &mut sm,
        6,
        vec![Command::Deliver {
            deliveries: vec![
                delivery("q1", 1, &[a], &[2]),
                delivery("q2", 2, &[a], &[]),
                on_1_and_4,
            ],
        }],
    )
    .await;
    let members = std::collections::BTreeSet::from([1, 3, 4]);
    let misplaced = reader.misplaced_blobs(&members, 10).unwrap();
    assert_eq!(misplaced.total, 2);
    // A blob with one replica only (taken while no other data node existed) needs placing too.
    let mut alone = delivery("q9", 9, &[a], &[]);
    alone.replicas = vec![1];
    let with_alone = {
        let dir = TempDir::new().unwrap();
        let (_log, mut other) = crate::open(dir.path()).unwrap();
        apply_all(
            &mut other,
            1,
            vec![add_domain("example.test"), add_account(a)],
        )
        .await;
        apply_all(
            &mut other,
            3,
            vec![Command::Deliver {
                deliveries: vec![alone],
            }],
        )
        .await;
        other.reader().misplaced_blobs(&members, 10).unwrap()
    };
    assert_eq!(with_alone.total, 1);
    assert_eq!(with_alone.found, vec![([9; 32], vec![1])]);
    assert_eq!(
        misplaced.found,
        vec![([1; 32], vec![1, 2]), ([2; 32], vec![1, 2])]
    );
    assert_eq!(
        misplaced.per_replica,
        std::collections::BTreeMap::from([(1, 3), (2, 2), (4, 1)])
    );
    apply_all(
        &mut sm,
        7,
        vec![Command::MoveReplicas {
            from: 2,
            to: 4,
            blobs: vec![[1; 32], [2; 32], [3; 32], [9; 32]],
        }],
    )
    .await;
    assert_eq!(reader.misplaced_blobs(&members, 10).unwrap().total, 0);
    assert_eq!(reader.blob(&[1; 32]).unwrap().unwrap().replicas, vec![1, 4]);
    assert_eq!(reader.blob(&[3; 32]).unwrap().unwrap().replicas, vec![1, 4]);
    assert_eq!(reader.missing_blobs(4, 10).unwrap(), vec![[1; 32], [2; 32]]);
    assert!(reader.missing_blobs(2, 10).unwrap().is_empty());
    // A resync pass walks the set with a cursor.
    assert_eq!(
        reader.missing_blobs_after(4, None, 1).unwrap(),
        vec![[1; 32]]
    );
    assert_eq!(
        reader.missing_blobs_after(4, Some(&[1; 32]), 10).unwrap(),
        vec![[2; 32]]
    );
    assert!(
        reader
            .missing_blobs_after(4, Some(&[2; 32]), 10)
            .unwrap()
            .is_empty()
    );
}

fn settings(admin: &str, join: &str) -> crate::ClusterSettings {
    crate::ClusterSettings {
        cluster_name: "c".into(),
        admin_token_sha256: admin.into(),
        join_token_sha256: join.into(),
        ca_cert_pem: "cert".into(),
        ca_key_pem: "key".into(),
    }
}

/// A rotated token digest replaces only its own token's digest; before the settings exist
/// there is nothing to rotate.
#[tokio::test]
async fn a_token_digest_replaces_only_its_own_token() {
    let (_dir, mut sm) = store_at_newest_version().await;
    let set = |token, sha256: &str| Command::SetTokenDigest {
        token,
        sha256: sha256.into(),
    };
    let results = apply_all(
        &mut sm,
        4,
        vec![
            set(crate::TokenKind::Join, "j2"),
            Command::InitCluster(settings("a1", "j1")),
            set(crate::TokenKind::Join, "j2"),
        ],
    )
    .await;
    check_results(
        results,
        &[
            CommandResult::Rejected(Rejection::NotInitialized),
            CommandResult::Done,
            CommandResult::Done,
        ],
    );
    let reader = sm.reader();
    assert_eq!(
        reader.cluster_settings().unwrap(),
        Some(settings("a1", "j2"))
    );
    apply_all(&mut sm, 7, vec![set(crate::TokenKind::Admin, "a2")]).await;
    assert_eq!(
        reader.cluster_settings().unwrap(),
        Some(settings("a2", "j2"))
    );
    // The read-only token's digest lives apart: the settings keep their shape and values.
    assert_eq!(reader.read_only_token_sha256().unwrap(), None);
    apply_all(&mut sm, 8, vec![set(crate::TokenKind::ReadOnly, "r1")]).await;
    assert_eq!(
        reader.read_only_token_sha256().unwrap().as_deref(),
        Some("r1")
    );
    assert_eq!(
        reader.cluster_settings().unwrap(),
        Some(settings("a2", "j2"))
    );
}

/// Bytes a build from before `SetTokenDigest` wrote (taken from that build): its log entries,
/// stored settings and results decode to what they were, so adding the command changed no
/// existing encoding.
#[test]
fn entries_and_settings_from_before_token_rotation_decode() {
    #[track_caller]
    fn check<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(hex: &str, value: T) {
        let bytes = hex::decode(hex).expect("hex");
        let decoded: T = crate::db::decode("test", b"key", &bytes).expect("decode");
        assert_eq!(decoded, value);
    }
    check(
        "070001630261610262620463657274036b6579",
        crate::Request {
            id: 7,
            command: Command::InitCluster(settings("aa", "bb")),
        },
    );
    check(
        &format!("0725010201{}", "ab".repeat(32)),
        crate::Request {
            id: 7,
            command: Command::MoveReplicas {
                from: 1,
                to: 2,
                blobs: vec![[0xab; 32]],
            },
        },
    );
    check("01630261610262620463657274036b6579", settings("aa", "bb"));
    check(
        "04110178",
        CommandResult::Rejected(Rejection::MemberClash("x".into())),
    );
    // The new command takes the next variant index.
    let rotate = crate::Request {
        id: 7,
        command: Command::SetTokenDigest {
            token: crate::TokenKind::Join,
            sha256: "cc".into(),
        },
    };
    assert_eq!(hex::encode(crate::db::encode(&rotate)), "072601026363");
}

/// A protection policy as a build before the connection budgets stored it (bincode, the store's
/// and the log's encoding), and a `SetProtectionPolicy` request with it (id 7): written down
/// from that build, so a change to either encoding fails here.
const LEGACY_PROTECTION_POLICY: &str =
    "fb5802010a31302e302e302e302f38fbe8030a14fb8403fb840301fb0004";
const LEGACY_SET_PROTECTION_POLICY: &str =
    "071efb5802010a31302e302e302e302f38fbe8030a14fb8403fb840301fb0004";

fn legacy_protection_policy() -> crate::ProtectionPolicy {
    crate::ProtectionPolicy {
        connections_per_minute_per_ip: 600,
        exempt_networks: vec!["10.0.0.0/8".into()],
        ..Default::default()
    }
}

#[test]
fn protection_policies_of_older_builds_still_decode() {
    let policy = legacy_protection_policy();
    let stored = hex::decode(LEGACY_PROTECTION_POLICY).unwrap();
    assert_eq!(
        crate::db::decode::<crate::ProtectionPolicy>("settings", b"protection_policy", &stored)
            .unwrap(),
        policy
    );
    assert_eq!(crate::db::encode(&policy), stored);
    let logged = hex::decode(LEGACY_SET_PROTECTION_POLICY).unwrap();
    let request = crate::Request {
        id: 7,
        command: Command::SetProtectionPolicy(policy),
    };
    assert_eq!(
        crate::db::decode::<crate::Request>("log", b"entry", &logged).unwrap(),
        request
    );
    assert_eq!(crate::db::encode(&request), logged);
}

#[tokio::test]
async fn connection_budgets_come_from_the_legacy_rate_until_set() {
    use crate::{ConnectionBudgets, PasswordPolicy};

    let (_dir, mut sm) = store_at_newest_version().await;
    let reader = sm.reader();
    // A fresh store: the defaults.
    assert_eq!(
        reader.connection_budgets().unwrap(),
        ConnectionBudgets::default()
    );
    assert_eq!(reader.password_policy().unwrap(), PasswordPolicy::default());
    // An older build's entry, as its log holds it, raised the shared rate to 600: no service
    // gets less after the upgrade.
    let request: crate::Request = crate::db::decode(
        "log",
        b"entry",
        &hex::decode(LEGACY_SET_PROTECTION_POLICY).unwrap(),
    )
    .unwrap();
    let results = apply_all(&mut sm, 4, vec![request.command]).await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(
        reader.connection_budgets().unwrap(),
        ConnectionBudgets {
            smtp_connections_per_minute_per_ip: 600,
            submission_connections_per_minute_per_ip: 600,
            imap_connections_per_minute_per_ip: 600,
            pop3_connections_per_minute_per_ip: 600,
        }
    );
    // Set by the new command, each part is stored and read back on its own.
    let budgets = ConnectionBudgets {
        imap_connections_per_minute_per_ip: 1000,
        ..ConnectionBudgets::default()
    };
    let passwords = PasswordPolicy {
        min_password_length: 14,
    };
    let policy = crate::ProtectionPolicy {
        lockout_secs: 60,
        ..legacy_protection_policy()
    };
    let results = apply_all(
        &mut sm,
        5,
        vec![Command::SetProtectionSettings {
            policy: policy.clone(),
            budgets,
            passwords,
        }],
    )
    .await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(reader.protection_policy().unwrap(), policy);
    assert_eq!(reader.connection_budgets().unwrap(), budgets);
    assert_eq!(reader.password_policy().unwrap(), passwords);
    // A legacy entry applied later changes the policy, not the budgets set since.
    let results = apply_all(
        &mut sm,
        6,
        vec![Command::SetProtectionPolicy(crate::ProtectionPolicy {
            connections_per_minute_per_ip: 5,
            ..Default::default()
        })],
    )
    .await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(reader.connection_budgets().unwrap(), budgets);
}

#[test]
fn legacy_rates_never_lower_a_budget() {
    use crate::ConnectionBudgets;

    assert_eq!(
        ConnectionBudgets::from_legacy(32),
        ConnectionBudgets::default()
    );
    let off = ConnectionBudgets::from_legacy(0);
    assert_eq!(off.smtp_connections_per_minute_per_ip, 0);
    assert_eq!(off.imap_connections_per_minute_per_ip, 0);
    let raised = ConnectionBudgets::from_legacy(200);
    assert_eq!(raised.smtp_connections_per_minute_per_ip, 200);
    assert_eq!(raised.submission_connections_per_minute_per_ip, 200);
    assert_eq!(raised.imap_connections_per_minute_per_ip, 300);
    assert_eq!(raised.pop3_connections_per_minute_per_ip, 200);
}

/// `SetMailPolicyAndLimits { max-connections-per-ip = 200, the rest default }` as builds
/// before the per-service connection limits wrote it into their logs.
const LEGACY_SET_MAIL_POLICY_AND_LIMITS: &str =
    "0924fc00002003640000fbe803c80afb2c01fb5802fbe80320fbe803fc00000800";

#[tokio::test]
async fn per_service_connection_limits_come_from_the_legacy_shared_limit_until_set() {
    use crate::{ConnectionsPerIp, MailPolicy, MessageLimits};

    let (_dir, mut sm) = store_at_newest_version().await;
    let reader = sm.reader();
    assert_eq!(
        reader.connections_per_ip().unwrap(),
        ConnectionsPerIp::default()
    );
    // An older build's entry, as its log holds it, raised the shared limit to 200: no service
    // gets less after the upgrade, and none less than the defaults.
    let logged = hex::decode(LEGACY_SET_MAIL_POLICY_AND_LIMITS).unwrap();
    let request: crate::Request = crate::db::decode("log", b"entry", &logged).unwrap();
    let legacy = MailPolicy {
        max_connections_per_ip: 200,
        ..MailPolicy::default()
    };
    assert_eq!(
        request.command,
        Command::SetMailPolicyAndLimits {
            policy: legacy.clone(),
            limits: MessageLimits::default(),
        }
    );
    let results = apply_all(&mut sm, 4, vec![request.command]).await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(
        reader.connections_per_ip().unwrap(),
        ConnectionsPerIp {
            smtp_connections_per_ip: 200,
            submission_connections_per_ip: 200,
            imap_connections_per_ip: 500,
            pop3_connections_per_ip: 200,
        }
    );
    // Set by the new command, the limits are stored and read back on their own.
    let limits = ConnectionsPerIp {
        imap_connections_per_ip: 2000,
        ..ConnectionsPerIp::default()
    };
    let results = apply_all(
        &mut sm,
        5,
        vec![Command::SetMailPolicyLimitsAndConnections {
            policy: MailPolicy::default(),
            limits: MessageLimits::default(),
            connections: limits,
        }],
    )
    .await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(reader.connections_per_ip().unwrap(), limits);
    assert_eq!(reader.mail_policy().unwrap(), MailPolicy::default());
    // A legacy entry applied later changes the policy, not the limits set since.
    let results = apply_all(
        &mut sm,
        6,
        vec![Command::SetMailPolicyAndLimits {
            policy: legacy.clone(),
            limits: MessageLimits::default(),
        }],
    )
    .await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(reader.connections_per_ip().unwrap(), limits);
    assert_eq!(reader.mail_policy().unwrap(), legacy);
}

/// openraft's limit on a heartbeat is the heartbeat interval; with the node's floor set, an
/// answer that is ready after that (read late on a starved host) is still taken.
#[tokio::test]
async fn openraft_time_limits_have_the_floor_the_node_sets() {
    use std::time::Duration;

    use openraft::AsyncRuntime;

    use crate::runtime::{TokioWithTimeoutFloor, floored, set_timeout_floor};

    let late_answer = || tokio::time::sleep(Duration::from_millis(120));
    set_timeout_floor(Duration::ZERO);
    assert_eq!(
        floored(Duration::from_millis(50)),
        Duration::from_millis(50)
    );
    assert!(
        TokioWithTimeoutFloor::timeout(Duration::from_millis(50), late_answer())
            .await
            .is_err()
    );
    set_timeout_floor(Duration::from_millis(400));
    assert_eq!(
        floored(Duration::from_millis(50)),
        Duration::from_millis(400)
    );
    assert_eq!(floored(Duration::from_secs(1)), Duration::from_secs(1));
    assert!(
        TokioWithTimeoutFloor::timeout(Duration::from_millis(50), late_answer())
            .await
            .is_ok()
    );
    set_timeout_floor(Duration::ZERO);
}

/// The state machine in memory (the node's protocol tests run on it) decides every command as
/// the one on RocksDB does: the same results and, table by table, the same state.
#[tokio::test]
async fn the_state_machine_in_memory_applies_commands_as_the_one_on_disk() {
    let dir = TempDir::new().unwrap();
    let (_log, mut disk) = crate::open(dir.path()).unwrap();
    let mut memory = StateMachine::in_memory();
    let (a, b) = ("a@example.test", "b@example.test");
    let deliver = Command::Deliver {
        deliveries: vec![
            delivery("q1", 1, &[a, b], &[]),
            delivery("q2", 2, &[a, "gone@example.test"], &[2]),
        ],
    };
    let commands = vec![
        add_domain("example.test"),
        add_account(a),
        add_account(b),
        // A refusal, a delivery and a retry of it, an expunge that releases a blob.
        add_account(a),
        deliver.clone(),
        deliver,
        Command::Expunge {
            account: a.into(),
            mailbox: crate::INBOX.into(),
            uids: vec![1],
        },
    ];
    let mut on_disk = Vec::new();
    let mut in_memory = Vec::new();
    for (i, command) in commands.into_iter().enumerate() {
        // The same request (its id is remembered for retries) goes to both.
        let request = crate::Request::new(command);
        let mut staged = crate::reader::Staged::new(&disk.db);
        on_disk.push(
            disk.execute(&request.command, &mut staged)
                .expect("execute"),
        );
        let entry = RaftEntry {
            log_id: log_id(1, i as u64 + 1),
            payload: EntryPayload::Normal(request.clone()),
        };
        disk.apply(stream::iter([Ok((entry, None))]))
            .await
            .expect("apply on disk");
        in_memory.push(memory.apply_unreplicated(request).expect("apply in memory"));
    }
    assert_eq!(format!("{on_disk:?}"), format!("{in_memory:?}"));
    assert!(matches!(on_disk[3], CommandResult::Rejected(_)));
    let (disk_digest, memory_digest) = (
        disk.reader().digest().unwrap(),
        memory.reader().digest().unwrap(),
    );
    assert_eq!(memory_digest.applied_index, Some(7));
    assert_eq!(disk_digest, memory_digest);
    let uids: Vec<_> = memory
        .reader()
        .messages(a, crate::INBOX)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [2]);
}

/// A store from before versions is at version 1; a command of version 2 is refused there,
/// changes nothing, and says what it waits for.
#[tokio::test]
async fn a_gated_command_is_refused_until_its_cluster_version_is_active() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    assert_eq!(reader.cluster_version().unwrap(), ClusterVersion::V1);
    let budgets = crate::ConnectionBudgets {
        imap_connections_per_minute_per_ip: 1000,
        ..crate::ConnectionBudgets::default()
    };
    let settings = Command::SetProtectionSettings {
        policy: crate::ProtectionPolicy::default(),
        budgets,
        passwords: crate::PasswordPolicy::default(),
    };
    let results = apply_all(&mut sm, 1, vec![settings.clone()]).await;
    let [CommandResult::Rejected(Rejection::NotActive(why))] = &results[..] else {
        panic!("{results:?}");
    };
    assert!(why.contains("cluster version 2"), "{why}");
    assert!(why.contains("runs version 1"), "{why}");
    assert_eq!(
        reader.connection_budgets().unwrap(),
        crate::ConnectionBudgets::default()
    );
    // The same entry after activation applies.
    let (_dir, mut sm) = store_at_newest_version().await;
    let results = apply_all(&mut sm, 4, vec![settings]).await;
    check_results(results, &[CommandResult::Done]);
    assert_eq!(sm.reader().connection_budgets().unwrap(), budgets);
}

/// The active version moves only forward, and only to a version every member reported it
/// runs; a member's new report replaces its old one.
#[tokio::test]
async fn the_cluster_version_is_raised_only_to_what_every_member_runs() {
    let (_dir, mut sm) = fresh_store();
    let reader = sm.reader();
    apply_voters(
        &mut sm,
        [(1, member("mail1", 11)), (2, member("mail2", 12))],
    )
    .await;
    let raise = Command::SetClusterVersion {
        version: ClusterVersion::V2,
    };
    let rejection = |results: Vec<CommandResult>| match &results[..] {
        [CommandResult::Rejected(Rejection::ClusterVersion(why))] => why.clone(),
        other => panic!("{other:?}"),
    };
    // Node 2 has not reported: it holds the cluster back, named.
    let report = |node, newest| Command::ReportBuild(MemberBuild::this_build(node, newest));
    apply_all(&mut sm, 2, vec![report(1, ClusterVersion::V2)]).await;
    let why = rejection(apply_all(&mut sm, 3, vec![raise.clone()]).await);
    assert!(why.contains("[2]"), "{why}");
    // Node 2 runs a build of version 1 only.
    apply_all(&mut sm, 4, vec![report(2, ClusterVersion::V1)]).await;
    let why = rejection(apply_all(&mut sm, 5, vec![raise.clone()]).await);
    assert!(why.contains("up to 1"), "{why}");
    assert_eq!(reader.cluster_version().unwrap(), ClusterVersion::V1);
    assert_eq!(reader.runnable_version().unwrap(), Ok(ClusterVersion::V1));
    // Node 2 is upgraded and reports again: its report replaces the old one.
    apply_all(&mut sm, 6, vec![report(2, ClusterVersion::V2)]).await;
    assert_eq!(reader.member_builds().unwrap().len(), 2);
    let results = apply_all(&mut sm, 7, vec![raise.clone(), raise]).await;
    check_results(results, &[CommandResult::Done, CommandResult::Done]);
    assert_eq!(reader.cluster_version().unwrap(), ClusterVersion::V2);
    // Never back.
    let why = rejection(
        apply_all(
            &mut sm,
            9,
            vec![Command::SetClusterVersion {
                version: ClusterVersion::V1,
            }],
        )
        .await,
    );
    assert!(why.contains("never goes back"), "{why}");
    assert_eq!(reader.cluster_version().unwrap(), ClusterVersion::V2);
}

/// A snapshot records its store format. One without the record (from a build before it, all
/// format 4) installs; one of a newer format is refused, and the state stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_installs_only_in_a_format_this_build_reads() {
    let leader_dir = TempDir::new().unwrap();
    let (_log, mut leader_sm) = crate::open(leader_dir.path()).unwrap();
    apply_all(&mut leader_sm, 1, vec![add_domain("a.test")]).await;
    let snapshot = leader_sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build snapshot");
    let format = snapshot.snapshot.path.join("format");
    assert_eq!(
        std::fs::read_to_string(&format).unwrap(),
        crate::FORMAT_VERSION.to_string()
    );

    let follower_dir = TempDir::new().unwrap();
    let (_flog, mut follower_sm) = crate::open(follower_dir.path()).unwrap();
    apply_all(&mut follower_sm, 1, vec![add_domain("stale.test")]).await;
    let ship = |format_text: Option<String>| {
        let incoming = crate::incoming_dir(&crate::snapshot_root(follower_dir.path())).unwrap();
        for file in std::fs::read_dir(&snapshot.snapshot.path).unwrap() {
            let file = file.unwrap();
            if file.file_name() != "format" {
                std::fs::copy(file.path(), incoming.join(file.file_name())).unwrap();
            }
        }
        if let Some(text) = format_text {
            std::fs::write(incoming.join("format"), text).unwrap();
        }
        crate::SnapshotDir { path: incoming }
    };
    let newer = ship(Some((crate::FORMAT_VERSION + 1).to_string()));
    let err = follower_sm
        .install_snapshot(&snapshot.meta, newer)
        .await
        .expect_err("a newer format installs");
    assert!(err.to_string().contains("format version"), "{err}");
    let names = |sm: &StateMachine| -> Vec<String> {
        sm.reader()
            .domains()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect()
    };
    assert_eq!(names(&follower_sm), vec!["stale.test".to_string()]);
    // From a build before the record: format 4, which this build reads.
    assert_eq!(crate::FORMAT_VERSION, 4);
    let older = ship(None);
    follower_sm
        .install_snapshot(&snapshot.meta, older)
        .await
        .expect("install");
    assert_eq!(names(&follower_sm), vec!["a.test".to_string()]);
}

/// `\Recent`: each UID goes to the first claim that covers it, whoever makes it; a claim never
/// goes past the mailbox's last UID; a new mailbox of the same name starts afresh; and before
/// cluster version 3 nothing is claimed.
#[tokio::test]
async fn each_new_message_is_recent_in_exactly_one_claim() {
    use crate::mail::folders::AppendedMessage;
    let a = "a@example.test";
    let append = Command::Append {
        account: a.into(),
        mailbox: "INBOX".into(),
        message: Box::new(AppendedMessage {
            blob: [9; 32],
            size: 10,
            replicas: vec![1],
            missing: vec![],
            flags: 0,
            keywords: vec![],
            internal_date: 1_600_000_000,
            summary: crate::summary::summarize(b"Subject: new\r\n\r\nbody\r\n"),
        }),
    };
    let claim = |up_to| Command::ClaimRecent {
        account: a.into(),
        mailbox: "INBOX".into(),
        up_to,
    };
    let claimed = |result: &CommandResult| match result {
        CommandResult::RecentClaimed { from, to, .. } => (*from, *to),
        other => panic!("{other:?}"),
    };

    let (_dir, mut sm) = store_at_newest_version().await;
    let reader = sm.reader();
    let mut commands = vec![add_domain("example.test"), add_account(a)];
    commands.extend(std::iter::repeat_n(append.clone(), 3));
    apply_all(&mut sm, 4, commands).await;
    // Two sessions select at once: the first claim takes UIDs 1-3, the second none. A claim
    // beyond the last UID stops at it.
    let results = apply_all(&mut sm, 9, vec![claim(u32::MAX), claim(3)]).await;
    assert_eq!(claimed(&results[0]), (0, 3));
    assert_eq!(claimed(&results[1]), (3, 3));
    let inbox = reader.mailbox(a, "INBOX").unwrap().unwrap();
    assert_eq!(
        reader.recent_floor(a, "INBOX", inbox.uidvalidity).unwrap(),
        3
    );
    assert_eq!(reader.unclaimed_messages(a, "INBOX").unwrap(), 0);
    // A new message is recent to the next claim only.
    apply_all(&mut sm, 11, vec![append.clone()]).await;
    assert_eq!(reader.unclaimed_messages(a, "INBOX").unwrap(), 1);
    let results = apply_all(&mut sm, 12, vec![claim(4), claim(4)]).await;
    assert_eq!(claimed(&results[0]), (3, 4));
    assert_eq!(claimed(&results[1]), (4, 4));
    // A floor belongs to one UIDVALIDITY: another mailbox of that name starts from 0.
    assert_eq!(
        reader
            .recent_floor(a, "INBOX", inbox.uidvalidity + 1)
            .unwrap(),
        0
    );
    let results = apply_all(
        &mut sm,
        14,
        vec![Command::ClaimRecent {
            account: a.into(),
            mailbox: "Nowhere".into(),
            up_to: 1,
        }],
    )
    .await;
    check_results(
        results,
        &[CommandResult::Rejected(Rejection::NoSuchMailbox(
            "Nowhere".into(),
        ))],
    );
    // A renamed mailbox keeps its claim; a deleted one leaves none behind.
    let create = |name: &str| Command::CreateMailbox {
        account: a.into(),
        name: name.into(),
        at: 3,
    };
    let claim_in = |mailbox: &str| Command::ClaimRecent {
        account: a.into(),
        mailbox: mailbox.into(),
        up_to: u32::MAX,
    };
    let mut to_lab = append.clone();
    if let Command::Append { mailbox, .. } = &mut to_lab {
        *mailbox = "Lab".into();
    }
    let results = apply_all(
        &mut sm,
        15,
        vec![
            create("Lab"),
            to_lab,
            claim_in("Lab"),
            Command::RenameMailbox {
                account: a.into(),
                from: "Lab".into(),
                to: "Lab2".into(),
                at: 4,
            },
            claim_in("Lab2"),
        ],
    )
    .await;
    assert_eq!(claimed(&results[2]), (0, 1));
    assert_eq!(claimed(&results[4]), (1, 1), "the rename kept the claim");
    let lab = reader.mailbox(a, "Lab2").unwrap().unwrap();
    apply_all(
        &mut sm,
        20,
        vec![Command::DeleteMailbox {
            account: a.into(),
            name: "Lab2".into(),
        }],
    )
    .await;
    assert_eq!(reader.recent_floor(a, "Lab2", lab.uidvalidity).unwrap(), 0);
    // Deleting the account forgets its claims.
    apply_all(
        &mut sm,
        21,
        vec![Command::DeleteAccount { address: a.into() }],
    )
    .await;
    assert_eq!(
        reader.recent_floor(a, "INBOX", inbox.uidvalidity).unwrap(),
        0
    );

    // Cluster version 2: refused, nothing claimed.
    let (_dir, mut sm) = store_at_version(ClusterVersion::V2).await;
    let mut commands = vec![add_domain("example.test"), add_account(a), append];
    commands.push(claim(1));
    let results = apply_all(&mut sm, 4, commands).await;
    assert!(
        matches!(&results[3], CommandResult::Rejected(Rejection::NotActive(why)) if why.contains("recent-flag")),
        "{results:?}"
    );
    let inbox = sm.reader().mailbox(a, "INBOX").unwrap().unwrap();
    assert_eq!(
        sm.reader()
            .recent_floor(a, "INBOX", inbox.uidvalidity)
            .unwrap(),
        0
    );
}
