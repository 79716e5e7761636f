//! A [`Backend`] in memory for the protocol tests: the real state machine on in-memory tables,
//! as a new one-node cluster at this build's newest cluster version starts
//! (`raft_store::StateMachine::in_memory_cluster`), every write applied at once as the next
//! entry of a log of its own, and blobs in a map. No Raft, no sockets, no disk, no RocksDB
//! database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use raft_store::{BlobHash, Command, CommandResult, Request, StateMachine};

use super::{Backend, BlobError, BoxFuture, ClusterError, MailStore, Stored};

/// The node id the in-memory store reports as the holder of every blob.
const NODE: u64 = 1;

pub struct MemoryBackend {
    state_machine: Mutex<StateMachine>,
    blobs: Mutex<HashMap<BlobHash, Arc<Vec<u8>>>>,
}

impl MemoryBackend {
    /// An empty store of a new one-node cluster (at this build's newest cluster version) and
    /// the seam over it.
    pub fn new() -> (Arc<MemoryBackend>, MailStore) {
        let state_machine = StateMachine::in_memory_cluster(raft_store::Member {
            name: "n1".into(),
            role: raft_store::Role::Data,
            raft_addr: "127.0.0.1:7071".into(),
            admin_addr: "127.0.0.1:7070".into(),
        });
        let state = state_machine.reader();
        let backend = Arc::new(MemoryBackend {
            state_machine: Mutex::new(state_machine),
            blobs: Mutex::new(HashMap::new()),
        });
        let store = MailStore::new(state, backend.clone());
        (backend, store)
    }

    /// Applies a command at once (tests set up their domains and accounts with it).
    pub fn apply(&self, command: Command) -> CommandResult {
        self.state_machine
            .lock()
            .expect("state machine lock")
            .apply_unreplicated(Request::new(command))
            .expect("a store in memory has no storage errors")
    }

    /// Stores a blob at once and returns its hash.
    pub fn put_blob(&self, data: Vec<u8>) -> BlobHash {
        let hash = raft_store::blob_store::hash(&data);
        self.blobs
            .lock()
            .expect("blob map lock")
            .insert(hash, Arc::new(data));
        hash
    }
}

impl Backend for MemoryBackend {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, ClusterError>> {
        let result = self.apply(command);
        Box::pin(async move { Ok(result) })
    }

    fn linearize(&self) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }

    fn store_blob(
        &self,
        data: Arc<Vec<u8>>,
        hash: BlobHash,
    ) -> BoxFuture<'_, Result<Stored, BlobError>> {
        self.blobs.lock().expect("blob map lock").insert(hash, data);
        Box::pin(async move {
            Ok(Stored {
                hash,
                replicas: vec![NODE],
                missing: Vec::new(),
            })
        })
    }

    fn read_blob(&self, hash: BlobHash) -> BoxFuture<'_, Result<Vec<u8>, BlobError>> {
        let found = self.read_local_blob(&hash);
        Box::pin(async move { found.map_err(|err| BlobError::Unavailable(err.to_string())) })
    }

    fn read_local_blob(&self, hash: &BlobHash) -> std::io::Result<Vec<u8>> {
        match self.blobs.lock().expect("blob map lock").get(hash) {
            Some(data) => Ok(data.as_ref().clone()),
            None => Err(std::io::ErrorKind::NotFound.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use raft_store::{Command, CommandResult, LockTarget, Lockout};

    use super::MemoryBackend;

    /// The store the protocol tests run on is a cluster at this build's newest version: what
    /// a newer cluster version brings (here a lockout for one address) applies there as it
    /// does on a new cluster.
    #[test]
    fn the_store_in_memory_runs_the_newest_cluster_version() {
        let (backend, store) = MemoryBackend::new();
        assert_eq!(
            store.state().cluster_version().unwrap(),
            raft_store::ClusterVersion::NEWEST
        );
        let result = backend.apply(Command::Lock(Lockout {
            target: LockTarget::AccountFrom {
                account: "alice@example.test".into(),
                ip: "192.0.2.7".parse().unwrap(),
            },
            since: 1,
            until: 2,
            reason: "a test".into(),
        }));
        assert_eq!(result, CommandResult::Done);
    }
}
