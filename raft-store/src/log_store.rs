//! The Raft log and vote on RocksDB. Every append, vote, truncation and purge is fsync'd (a
//! synced WAL write) before openraft hears that it is done.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use crate::db::{
    CF_LOG, CF_RAFT_META, Db, KEY_COMMITTED, KEY_PURGED, KEY_VOTE, decode, encode, sync_write,
};
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// The log store handed to openraft. Cloning shares the database.
#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    pub fn new(db: Db) -> LogStore {
        LogStore { db }
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, io::Error> {
        let mut iter = self
            .db
            .disk()
            .iterator_cf(self.db.cf(CF_LOG), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item.map_err(io::Error::other)?;
                let entry: Entry = decode(CF_LOG, &key, &value)?;
                Ok(Some(entry.log_id))
            }
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), io::Error> {
        self.db
            .disk()
            .put_cf_opt(self.db.cf(CF_RAFT_META), key, encode(value), &sync_write())
            .map_err(io::Error::other)
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let from = index_key(start);
        let mut entries = Vec::new();
        for item in self.db.disk().iterator_cf(
            self.db.cf(CF_LOG),
            IteratorMode::From(&from, Direction::Forward),
        ) {
            let (key, value) = item.map_err(io::Error::other)?;
            let entry: Entry = decode(CF_LOG, &key, &value)?;
            if !range.contains(&entry.log_id.index) {
                break;
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.db.get(CF_RAFT_META, KEY_VOTE)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.db.get(CF_RAFT_META, KEY_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta(KEY_VOTE, vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.put_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self
            .db
            .get::<Option<LogId>>(CF_RAFT_META, KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = <TypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.db.cf(CF_LOG);
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, index_key(entry.log_id.index), encode(&entry));
        }
        // A synced write: the entries are on disk before openraft is told they are.
        let result = self
            .db
            .disk()
            .write_opt(batch, &sync_write())
            .map_err(io::Error::other);
        let reported = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| io::Error::other(e.to_string()));
        callback.io_completed(reported);
        result
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map(|id| id.index + 1).unwrap_or(0);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.db.cf(CF_LOG), index_key(from), index_key(u64::MAX));
        self.db
            .disk()
            .write_opt(batch, &sync_write())
            .map_err(io::Error::other)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Entries up to here are in a snapshot; make every state-machine write before it durable
        // too, so a power cut cannot leave the state machine behind a purged log.
        self.db.disk().flush_wal(true).map_err(io::Error::other)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(CF_RAFT_META), KEY_PURGED, encode(&log_id));
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            index_key(0),
            index_key(log_id.index + 1),
        );
        self.db
            .disk()
            .write_opt(batch, &sync_write())
            .map_err(io::Error::other)
    }
}
