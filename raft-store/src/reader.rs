//! Reads of the applied state ([`StateReader`]), the write batch one entry stages
//! ([`Staged`]), and the announcements of mail changes: what the state machine, the mail
//! commands in `mail/` and the node share, below the state machine itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::db::{
    Batch, CF_ACCOUNTS, CF_ALIASES, CF_DOMAINS, CF_PENDING_NODES, CF_SETTINGS, CF_SM_META, Db,
    KEY_APPLIED, KEY_CLUSTER, KEY_MEMBERSHIP, decode, encode,
};
use crate::error::StoreError;
use crate::types::{
    Account, Alias, ClusterSettings, Domain, LogId, NodeId, PendingNode, StoredMembership,
};

/// Which mail changed in an applied entry, announced after the entry's batch is written (so a
/// read on receipt sees the change). IMAP sessions use it to report new messages, flag changes
/// and expunges (IDLE and NOOP) without polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailChange {
    /// Messages or mailboxes of this account.
    Account(std::sync::Arc<str>),
    /// Anything (a snapshot was installed).
    All,
}

/// A write batch bound to the database's column families.
pub(crate) struct Staged<'a> {
    db: &'a Db,
    batch: Batch,
}

impl<'a> Staged<'a> {
    pub(crate) fn new(db: &'a Db) -> Staged<'a> {
        Staged {
            db,
            batch: db.batch(),
        }
    }

    pub(crate) fn put<T: Serialize + ?Sized>(&mut self, cf: &'static str, key: &[u8], value: &T) {
        self.db.stage_put(&mut self.batch, cf, key, encode(value));
    }

    /// Drops everything staged so far.
    pub(crate) fn discard(&mut self) {
        self.batch = self.db.batch();
    }

    pub(crate) fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.db.stage_delete(&mut self.batch, cf, key);
    }

    /// Writes everything staged, atomically.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        self.db.write(self.batch)
    }
}

/// A digest of the whole state machine (see [`StateReader::digest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateDigest {
    pub applied_index: Option<u64>,
    pub sha256: [u8; 32],
}

/// Reads of the applied state. Cheap to clone; reads see the latest applied entry.
#[derive(Clone)]
pub struct StateReader {
    pub(crate) db: Db,
    pub(crate) changes: tokio::sync::broadcast::Sender<MailChange>,
    pub(crate) access_version: Arc<AtomicU64>,
}

impl StateReader {
    /// A number that changes (after the write) whenever an applied entry or an installed
    /// snapshot may have changed the access lists, so the node can cache them compiled and
    /// re-read them only then. It starts at 0 when the store opens.
    pub fn access_version(&self) -> u64 {
        self.access_version.load(Ordering::Acquire)
    }

    /// Announcements of mail changes applied from now on (see [`MailChange`]).
    pub fn mail_changes(&self) -> tokio::sync::broadcast::Receiver<MailChange> {
        self.changes.subscribe()
    }

    pub fn last_applied(&self) -> Result<Option<LogId>, StoreError> {
        Ok(self
            .db
            .get::<Option<LogId>>(CF_SM_META, KEY_APPLIED)?
            .flatten())
    }

    pub fn membership(&self) -> Result<StoredMembership, StoreError> {
        Ok(self.db.get(CF_SM_META, KEY_MEMBERSHIP)?.unwrap_or_default())
    }

    pub fn cluster_settings(&self) -> Result<Option<ClusterSettings>, StoreError> {
        self.db.get(CF_SETTINGS, KEY_CLUSTER)
    }

    /// The SHA-256 (hex) of the read-only token, if one was set.
    pub fn read_only_token_sha256(&self) -> Result<Option<String>, StoreError> {
        self.db.get(CF_SETTINGS, crate::db::KEY_READ_ONLY_TOKEN)
    }

    /// Nodes that registered (`mclusterctl join`) and are not members yet.
    pub fn pending_nodes(&self) -> Result<Vec<PendingNode>, StoreError> {
        self.db.scan(CF_PENDING_NODES)
    }

    pub fn pending_node(&self, node_id: NodeId) -> Result<Option<PendingNode>, StoreError> {
        self.db.get(CF_PENDING_NODES, &node_id.to_be_bytes())
    }

    pub fn domain(&self, name: &str) -> Result<Option<Domain>, StoreError> {
        self.db.get(CF_DOMAINS, name.as_bytes())
    }

    pub fn domains(&self) -> Result<Vec<Domain>, StoreError> {
        self.db.scan(CF_DOMAINS)
    }

    pub fn account(&self, address: &str) -> Result<Option<Account>, StoreError> {
        self.db.get(CF_ACCOUNTS, address.as_bytes())
    }

    /// All accounts, or those of one domain.
    pub fn accounts(&self, domain: Option<&str>) -> Result<Vec<Account>, StoreError> {
        let all: Vec<Account> = self.db.scan(CF_ACCOUNTS)?;
        Ok(all
            .into_iter()
            .filter(|a| domain.is_none_or(|d| a.domain == d))
            .collect())
    }

    pub fn alias(&self, address: &str) -> Result<Option<Alias>, StoreError> {
        self.db.get(CF_ALIASES, address.as_bytes())
    }

    /// A SHA-256 over every table of the state machine, read at one point in time, with the
    /// index it covers. Nodes that applied the same log hold the same state, so their digests
    /// at the same index must be equal: the chaos checkers compare them across nodes.
    pub fn digest(&self) -> Result<StateDigest, StoreError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut applied_bytes = None;
        self.db.visit_state(|cf, entry| match entry {
            None => {
                hasher.update((cf.len() as u64).to_be_bytes());
                hasher.update(cf.as_bytes());
            }
            Some((key, value)) => {
                if cf == CF_SM_META && key == KEY_APPLIED {
                    applied_bytes = Some(value.to_vec());
                }
                // Lengths first, so no two different tables can hash alike.
                hasher.update((key.len() as u64).to_be_bytes());
                hasher.update(key);
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(value);
            }
        })?;
        let applied: Option<LogId> = match applied_bytes {
            Some(bytes) => decode::<Option<LogId>>(CF_SM_META, KEY_APPLIED, &bytes)?,
            None => None,
        };
        Ok(StateDigest {
            applied_index: applied.map(|id| id.index),
            sha256: hasher.finalize().into(),
        })
    }

    pub fn aliases(&self, domain: Option<&str>) -> Result<Vec<Alias>, StoreError> {
        let all: Vec<Alias> = self.db.scan(CF_ALIASES)?;
        Ok(all
            .into_iter()
            .filter(|a| domain.is_none_or(|d| a.domain == d))
            .collect())
    }
}
