//! A [`Backend`] in memory for the protocol tests: the real state machine on in-memory tables
//! (`raft_store::StateMachine::in_memory`), every write applied at once as the next entry of a
//! log of its own, and blobs in a map. No Raft, no sockets, no disk, no RocksDB database.

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
    /// An empty store and the seam over it.
    pub fn new() -> (Arc<MemoryBackend>, MailStore) {
        let state_machine = StateMachine::in_memory();
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
