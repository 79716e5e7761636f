//! The node's one RocksDB: column families, the on-disk format version, and value encoding.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// Bumped whenever a key or value layout changes; a node refuses to open a store of another
/// version rather than misread it.
pub const FORMAT_VERSION: u32 = 4;

/// Raft log entries, keyed by big-endian index.
pub const CF_LOG: &str = "log";
/// Raft metadata: vote, committed log id, last purged log id, format version.
pub const CF_RAFT_META: &str = "raft_meta";
/// State machine: last applied log id and last membership.
pub const CF_SM_META: &str = "sm_meta";
pub const CF_SETTINGS: &str = "settings";
pub const CF_DOMAINS: &str = "domains";
pub const CF_ACCOUNTS: &str = "accounts";
pub const CF_ALIASES: &str = "aliases";
pub const CF_PENDING_NODES: &str = "pending_nodes";
/// Outcomes of recently applied requests, by request id, so a retried request applies once.
pub const CF_REQUESTS: &str = "requests";
/// Mailboxes, keyed by `account \0 mailbox`.
pub const CF_MAILBOXES: &str = "mailboxes";
/// Messages, keyed by `account \0 mailbox \0 uid` (uid big-endian, so a scan is in UID order).
pub const CF_MESSAGES: &str = "messages";
/// Blob records (size, replicas, reference count), keyed by content hash.
pub const CF_BLOBS: &str = "blobs";
/// Blobs a node must hold but does not yet, keyed by `node id (big-endian) ++ hash`.
pub const CF_BLOB_MISSING: &str = "blob_missing";
/// Local deliveries already made, keyed by `queue id \0 recipient`: delivery is exactly-once.
pub const CF_DELIVERED: &str = "delivered";
/// IMAP summaries of blobs (envelope, MIME structure, part offsets), by blob hash, kept while
/// any message refers to the blob.
pub const CF_SUMMARIES: &str = "summaries";
/// The outbound queue, keyed by queue id.
pub const CF_QUEUE: &str = "queue";
/// Queued messages by due time: `next attempt (big-endian, sign-flipped) ++ queue id`.
pub const CF_QUEUE_DUE: &str = "queue_due";
/// IMAP subscriptions, keyed by `account \0 mailbox name`: kept apart from the mailboxes
/// because a subscription outlives its mailbox (RFC 3501 6.3.6).
pub const CF_SUBSCRIPTIONS: &str = "subscriptions";
/// DKIM signing keys, keyed by domain. Added after format 4 was fixed: opening an older store
/// creates the family empty (`create_missing_column_families`), so no format change.
pub const CF_DKIM_KEYS: &str = "dkim_keys";
/// Login lockouts by target (`ip:…`, `account:…`).
pub const CF_LOCKOUTS: &str = "lockouts";
/// Block and allow list entries, keyed by `list:pattern` (`block:192.0.2.0/24`).
pub const CF_ACCESS_LISTS: &str = "access_lists";

/// The column families that make up the state machine, and so a snapshot.
pub const SM_CFS: [&str; 19] = [
    CF_SM_META,
    CF_SETTINGS,
    CF_DOMAINS,
    CF_ACCOUNTS,
    CF_ALIASES,
    CF_PENDING_NODES,
    CF_REQUESTS,
    CF_MAILBOXES,
    CF_MESSAGES,
    CF_BLOBS,
    CF_BLOB_MISSING,
    CF_DELIVERED,
    CF_SUMMARIES,
    CF_QUEUE,
    CF_QUEUE_DUE,
    CF_SUBSCRIPTIONS,
    CF_DKIM_KEYS,
    CF_LOCKOUTS,
    CF_ACCESS_LISTS,
];

/// The largest entry (a whole `Request`, encoded) the cluster proposes: well under the transport's
/// frame limit, and sent to a follower in about a second on a slow link.
pub const MAX_ENTRY_BYTES: usize = 32 * 1024 * 1024;

pub use mcluster_types::encoded_len;

pub const KEY_FORMAT: &[u8] = b"format_version";
pub const KEY_VOTE: &[u8] = b"vote";
pub const KEY_COMMITTED: &[u8] = b"committed";
pub const KEY_PURGED: &[u8] = b"last_purged";
pub const KEY_APPLIED: &[u8] = b"last_applied";
pub const KEY_MEMBERSHIP: &[u8] = b"last_membership";
pub const KEY_CLUSTER: &[u8] = b"cluster";
pub const KEY_NEXT_NODE_ID: &[u8] = b"next_node_id";
pub const KEY_NEXT_UIDVALIDITY: &[u8] = b"next_uidvalidity";
pub const KEY_CLIENT_TLS: &[u8] = b"client_tls";
pub const KEY_MAIL_POLICY: &[u8] = b"mail_policy";
pub const KEY_OUTBOUND_POLICY: &[u8] = b"outbound_policy";
pub const KEY_PROTECTION_POLICY: &[u8] = b"protection_policy";
pub const KEY_MESSAGE_LIMITS: &[u8] = b"message_limits";
pub const KEY_CONNECTION_BUDGETS: &[u8] = b"connection_budgets";
pub const KEY_PASSWORD_POLICY: &[u8] = b"password_policy";
pub const KEY_CONNECTIONS_PER_IP: &[u8] = b"connections_per_ip";
/// The active cluster version; absent: [`crate::ClusterVersion::V1`].
pub const KEY_CLUSTER_VERSION: &[u8] = b"cluster_version";
/// SHA-256 (hex) of the read-only token, if one was set (cluster version 3).
pub const KEY_READ_ONLY_TOKEN: &[u8] = b"read_only_token";
/// What each member reported it runs (`Vec<MemberBuild>`, by node id).
pub const KEY_MEMBER_BUILDS: &[u8] = b"member_builds";
/// Prefix of the IMAP `\Recent` claims in the settings table, one key per mailbox
/// (`recent \0 account \0 mailbox`; cluster version 3). Not a column family of their own: the
/// previous build cannot open a store that has a family it does not know, and until the
/// upgrade is finalized a node must be able to go back to it.
pub const PREFIX_RECENT: &[u8] = b"recent\0";

/// A key with its decoded value.
pub(crate) type KeyValue<T> = (Box<[u8]>, T);

/// An open store: the database and where its snapshots live.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    pub(crate) snapshot_root: PathBuf,
}

/// Where the tables are. A store on disk is RocksDB; a store in memory holds only the state
/// machine's tables, for running the state machine without Raft (protocol tests, see
/// [`crate::StateMachine::in_memory`]): it has no log and takes no snapshots.
#[derive(Clone)]
enum Backend {
    Disk(Arc<DB>),
    Memory(Arc<RwLock<MemoryTables>>),
}

/// The tables of a store in memory: one ordered map per column family.
type MemoryTables = HashMap<&'static str, BTreeMap<Box<[u8]>, Box<[u8]>>>;

/// One key and its raw value, as a scan yields them.
pub(crate) type RawEntry = (Box<[u8]>, Box<[u8]>);

/// Writes staged for one atomic batch.
pub(crate) enum Batch {
    Disk(WriteBatch),
    Memory(Vec<MemoryWrite>),
}

/// A put (with the value) or a delete (None) in a column family of a store in memory.
pub(crate) type MemoryWrite = (&'static str, Box<[u8]>, Option<Box<[u8]>>);

impl Db {
    /// Opens (or creates) the store under `dir`: `dir/rocksdb` and `dir/snapshots`.
    pub fn open(dir: &Path) -> Result<Db, StoreError> {
        let db_path = dir.join("rocksdb");
        let snapshot_root = dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_root).map_err(|source| StoreError::Io {
            what: "create snapshot directory",
            source,
        })?;

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let all_cfs = [CF_LOG, CF_RAFT_META].into_iter().chain(SM_CFS);
        let descriptors = all_cfs.map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, &db_path, descriptors)?;
        let db = Db {
            backend: Backend::Disk(Arc::new(db)),
            snapshot_root,
        };
        db.check_format()?;
        Ok(db)
    }

    /// An empty store of the state machine's tables in memory (nothing is written to disk).
    pub(crate) fn in_memory() -> Db {
        let tables = SM_CFS.into_iter().map(|cf| (cf, BTreeMap::new())).collect();
        Db {
            backend: Backend::Memory(Arc::new(RwLock::new(tables))),
            snapshot_root: PathBuf::new(),
        }
    }

    fn check_format(&self) -> Result<(), StoreError> {
        match self.get::<u32>(CF_RAFT_META, KEY_FORMAT)? {
            Some(FORMAT_VERSION) => Ok(()),
            Some(found) => Err(StoreError::UnsupportedFormat {
                found,
                supported: FORMAT_VERSION,
            }),
            None => {
                self.disk().put_cf_opt(
                    self.cf(CF_RAFT_META),
                    KEY_FORMAT,
                    encode(&FORMAT_VERSION),
                    &sync_write(),
                )?;
                Ok(())
            }
        }
    }

    /// The RocksDB of a store on disk. The Raft log, the vote and snapshots exist only there:
    /// a store in memory is never handed to the log store or asked for a snapshot.
    pub(crate) fn disk(&self) -> &DB {
        match &self.backend {
            Backend::Disk(db) => db,
            Backend::Memory(_) => {
                unreachable!("the Raft log and snapshots are only kept by a store on disk")
            }
        }
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.disk()
            .cf_handle(name)
            .expect("every column family is created when the store opens")
    }

    fn memory_tables(
        tables: &RwLock<MemoryTables>,
    ) -> std::sync::RwLockReadGuard<'_, MemoryTables> {
        // A panic while holding the lock cannot leave a table half-written (a batch is applied
        // after it is complete), so a poisoned lock is still sound to read.
        tables
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let bytes = match &self.backend {
            Backend::Disk(db) => db.get_cf(self.cf(cf), key)?,
            Backend::Memory(tables) => Self::memory_tables(tables)
                .get(cf)
                .and_then(|table| table.get(key))
                .map(|value| value.to_vec()),
        };
        match bytes {
            None => Ok(None),
            Some(bytes) => decode(cf, key, &bytes).map(Some),
        }
    }

    /// The raw entries of a column family from `start` on, in key order. On disk they are read
    /// lazily; in memory (small, test-sized stores) they are copied out under the lock.
    pub(crate) fn iter_from(
        &self,
        cf: &'static str,
        start: &[u8],
    ) -> Box<dyn Iterator<Item = Result<RawEntry, StoreError>> + '_> {
        match &self.backend {
            Backend::Disk(db) => {
                let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
                Box::new(
                    db.iterator_cf(self.cf(cf), mode)
                        .map(|item| item.map_err(StoreError::from)),
                )
            }
            Backend::Memory(tables) => {
                let entries: Vec<_> = Self::memory_tables(tables)
                    .get(cf)
                    .into_iter()
                    .flat_map(|table| {
                        table.range::<[u8], _>((
                            std::ops::Bound::Included(start),
                            std::ops::Bound::Unbounded,
                        ))
                    })
                    .map(|(key, value)| Ok((key.clone(), value.clone())))
                    .collect();
                Box::new(entries.into_iter())
            }
        }
    }

    /// Every key and value under `prefix`, in key order.
    pub(crate) fn scan_prefix<T: DeserializeOwned>(
        &self,
        cf: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<KeyValue<T>>, StoreError> {
        let mut values = Vec::new();
        for item in self.iter_from(cf, prefix) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            let value = decode(cf, &key, &value)?;
            values.push((key, value));
        }
        Ok(values)
    }

    /// Entries from `start` on (in key order) for as long as `keep` says so, at most `limit`:
    /// the reader stops early instead of loading the whole family.
    pub(crate) fn scan_from<T: DeserializeOwned>(
        &self,
        cf: &'static str,
        start: &[u8],
        limit: usize,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<KeyValue<T>>, StoreError> {
        let mut values = Vec::new();
        for item in self.iter_from(cf, start) {
            if values.len() == limit {
                break;
            }
            let (key, value) = item?;
            if !keep(&key) {
                break;
            }
            let value = decode(cf, &key, &value)?;
            values.push((key, value));
        }
        Ok(values)
    }

    /// How many keys lie under `prefix`.
    pub(crate) fn count_prefix(&self, cf: &'static str, prefix: &[u8]) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self.iter_from(cf, prefix) {
            let (key, _) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Every value of a column family, in key order.
    pub(crate) fn scan<T: DeserializeOwned>(&self, cf: &'static str) -> Result<Vec<T>, StoreError> {
        let mut values = Vec::new();
        for item in self.iter_from(cf, &[]) {
            let (key, value) = item?;
            values.push(decode(cf, &key, &value)?);
        }
        Ok(values)
    }

    /// An empty batch for this store.
    pub(crate) fn batch(&self) -> Batch {
        match &self.backend {
            Backend::Disk(_) => Batch::Disk(WriteBatch::default()),
            Backend::Memory(_) => Batch::Memory(Vec::new()),
        }
    }

    pub(crate) fn stage_put(
        &self,
        batch: &mut Batch,
        cf: &'static str,
        key: &[u8],
        value: Vec<u8>,
    ) {
        match batch {
            Batch::Disk(batch) => batch.put_cf(self.cf(cf), key, value),
            Batch::Memory(ops) => ops.push((cf, key.into(), Some(value.into()))),
        }
    }

    pub(crate) fn stage_delete(&self, batch: &mut Batch, cf: &'static str, key: &[u8]) {
        match batch {
            Batch::Disk(batch) => batch.delete_cf(self.cf(cf), key),
            Batch::Memory(ops) => ops.push((cf, key.into(), None)),
        }
    }

    /// Writes a batch atomically. On disk it is not synced: what it holds is in the synced Raft
    /// log and is applied again after a crash.
    pub(crate) fn write(&self, batch: Batch) -> Result<(), StoreError> {
        match (&self.backend, batch) {
            (Backend::Disk(db), Batch::Disk(batch)) => Ok(db.write(batch)?),
            (Backend::Memory(tables), Batch::Memory(ops)) => {
                let mut tables = tables
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for (cf, key, value) in ops {
                    let table = tables.entry(cf).or_default();
                    match value {
                        Some(value) => table.insert(key, value),
                        None => table.remove(&key),
                    };
                }
                Ok(())
            }
            _ => unreachable!("a batch is written to the store that made it"),
        }
    }

    /// Walks every table of the state machine as of one point in time: `visit(cf, None)` as
    /// each table starts, then `visit(cf, Some((key, value)))` for its entries in key order.
    pub(crate) fn visit_state(
        &self,
        mut visit: impl FnMut(&'static str, Option<(&[u8], &[u8])>),
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Disk(db) => {
                let snapshot = db.snapshot();
                for cf in SM_CFS {
                    visit(cf, None);
                    for item in snapshot.iterator_cf(self.cf(cf), rocksdb::IteratorMode::Start) {
                        let (key, value) = item?;
                        visit(cf, Some((&key, &value)));
                    }
                }
            }
            Backend::Memory(tables) => {
                let tables = Self::memory_tables(tables);
                for cf in SM_CFS {
                    visit(cf, None);
                    for (key, value) in tables.get(cf).into_iter().flatten() {
                        visit(cf, Some((key, value)));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Write options for anything Raft relies on surviving a crash: the WAL is fsync'd before the
/// write returns.
pub(crate) fn sync_write() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("bincode encoding of our own types into a Vec cannot fail")
}

pub(crate) fn decode<T: DeserializeOwned>(
    cf: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((value, _)) => Ok(value),
        Err(err) => Err(StoreError::Corrupted {
            cf,
            key: String::from_utf8_lossy(key).into_owned(),
            reason: err.to_string(),
        }),
    }
}
