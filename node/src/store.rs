//! The store seam: everything a mail session (SMTP, POP3, IMAP, and the outbound engine) needs
//! from the cluster, and nothing else.
//!
//! Reads of the applied state go through [`MailStore::state`]: the replicated state machine's
//! reader, which runs the same code on a store on disk (a cluster node) and on one in memory
//! (tests). What differs between a cluster and a test is behind [`Backend`]: a write that waits
//! until its entry is applied, a linearizable read barrier, and blob storage. The cluster's
//! backend is [`ClusterBackend`]; [`memory`] has the one the protocol transcript tests use.
//!
//! Sessions never see `Cluster` or `Blobs`: a new front end (ManageSieve, JMAP) gets the same
//! seam and the same in-memory tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use raft_store::blob_store::BlobStore;
use raft_store::blob_store::hash;
use raft_store::summary::{MessageSummary, TooComplex};
use raft_store::{BlobHash, Command, CommandResult, MailChange, StateReader, StoreError};

use crate::blobs::Blobs;
pub use crate::blobs::{BlobError, Stored};
use crate::cluster::Cluster;
pub use crate::cluster::ClusterError;
pub use addresses::{Resolved, primary_domain, resolve_postmaster};

mod addresses;

/// A boxed future, so [`Backend`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a cluster node and a test store do differently.
pub trait Backend: Send + Sync + 'static {
    /// Proposes `command` and completes once it is committed and applied on this node.
    fn write(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, ClusterError>>;
    /// Completes once this node has applied everything committed before the call, so a read
    /// of [`MailStore::state`] that follows is linearizable.
    fn linearize(&self) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Stores a new blob durably (in a cluster: fsync'd here and on the mirror partner).
    fn store_blob(
        &self,
        data: Arc<Vec<u8>>,
        hash: BlobHash,
    ) -> BoxFuture<'_, Result<Stored, BlobError>>;
    /// Reads a blob, wherever it is held.
    fn read_blob(&self, hash: BlobHash) -> BoxFuture<'_, Result<Vec<u8>, BlobError>>;
    /// Reads a blob from this node's own copy only, blocking (callers run it on a blocking
    /// thread): read-ahead for POP3 and IMAP, which falls back to [`Backend::read_blob`].
    fn read_local_blob(&self, hash: &BlobHash) -> std::io::Result<Vec<u8>>;
}

/// Why a new message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreMessageError {
    #[error("no mirror partner could store the message and degraded accept is refused")]
    NoMirror,
    #[error("{0}")]
    Storage(BlobError),
    /// Over the cluster's message limits (MIME parts, nesting, header sections).
    #[error("{0}")]
    TooComplex(TooComplex),
    #[error("parsing the message failed: {0}")]
    Parse(String),
}

/// The seam itself: cheap to clone.
#[derive(Clone)]
pub struct MailStore {
    state: StateReader,
    backend: Arc<dyn Backend>,
}

impl MailStore {
    pub fn new(state: StateReader, backend: Arc<dyn Backend>) -> MailStore {
        MailStore { state, backend }
    }

    /// Reads of the applied state (this node's copy: it may lag the leader by an entry or two;
    /// call [`MailStore::linearize`] first where that matters).
    pub fn state(&self) -> &StateReader {
        &self.state
    }

    /// Announcements of mail changes applied from now on (IMAP IDLE and NOOP).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<MailChange> {
        self.state.mail_changes()
    }

    /// Resolves a lowercase `local@domain` address: local accounts (through aliases), unknown,
    /// or remote.
    pub fn resolve(&self, address: &str) -> Result<Resolved, StoreError> {
        addresses::resolve(&self.state, address)
    }

    pub async fn write(&self, command: Command) -> Result<CommandResult, ClusterError> {
        self.backend.write(command).await
    }

    /// Like [`MailStore::write`], but a rejection is an error.
    pub async fn write_ok(&self, command: Command) -> Result<CommandResult, ClusterError> {
        match self.write(command).await? {
            CommandResult::Rejected(rejection) => Err(ClusterError::Rejected(rejection)),
            other => Ok(other),
        }
    }

    pub async fn linearize(&self) -> Result<(), ClusterError> {
        self.backend.linearize().await
    }

    pub async fn store_blob(
        &self,
        data: Arc<Vec<u8>>,
        hash: BlobHash,
    ) -> Result<Stored, BlobError> {
        self.backend.store_blob(data, hash).await
    }

    /// Stores a new message (SMTP DATA, IMAP APPEND, a notice): both copies of its blob, and
    /// its summary, parsed while the blob is fsync'd and within the cluster's message limits:
    /// the summary travels in the Raft entry, so its size must not follow whatever structure a
    /// stranger sends. A message refused after its blob was written leaves a blob nothing refers
    /// to, which garbage collection removes.
    pub async fn store_message(
        &self,
        data: Vec<u8>,
    ) -> Result<(Stored, MessageSummary), StoreMessageError> {
        let data = Arc::new(data);
        let blob = hash(&data);
        let limits = self.state.message_limits().unwrap_or_default();
        let summary = tokio::task::spawn_blocking({
            let data = data.clone();
            move || raft_store::summary::summarize_within(&data, &limits)
        });
        let stored = match self.store_blob(data, blob).await {
            Ok(stored) => stored,
            Err(BlobError::NoMirror) => return Err(StoreMessageError::NoMirror),
            Err(err) => return Err(StoreMessageError::Storage(err)),
        };
        match summary.await {
            Ok(Ok(summary)) => Ok((stored, summary)),
            Ok(Err(too_complex)) => Err(StoreMessageError::TooComplex(too_complex)),
            Err(err) => Err(StoreMessageError::Parse(err.to_string())),
        }
    }

    pub async fn read_blob(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
        self.backend.read_blob(*hash).await
    }

    /// Reads a blob from this node's own copy only. It blocks: call it on a blocking thread.
    pub fn read_local_blob(&self, hash: &BlobHash) -> std::io::Result<Vec<u8>> {
        self.backend.read_local_blob(hash)
    }

    /// The backend, for work that runs beside the sessions (the delivery batcher).
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }
}

/// The backend of a cluster node: Raft for writes and read barriers, mirrored blobs.
pub struct ClusterBackend {
    cluster: Arc<Cluster>,
    blobs: Arc<Blobs>,
    local: BlobStore,
}

impl ClusterBackend {
    pub fn new(cluster: Arc<Cluster>, blobs: Arc<Blobs>) -> ClusterBackend {
        let local = blobs.store().clone();
        ClusterBackend {
            cluster,
            blobs,
            local,
        }
    }
}

impl Backend for ClusterBackend {
    fn write(&self, command: Command) -> BoxFuture<'_, Result<CommandResult, ClusterError>> {
        Box::pin(self.cluster.write(command))
    }

    fn linearize(&self) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(self.cluster.linearize())
    }

    fn store_blob(
        &self,
        data: Arc<Vec<u8>>,
        hash: BlobHash,
    ) -> BoxFuture<'_, Result<Stored, BlobError>> {
        Box::pin(self.blobs.store_new(data, hash))
    }

    fn read_blob(&self, hash: BlobHash) -> BoxFuture<'_, Result<Vec<u8>, BlobError>> {
        Box::pin(async move { self.blobs.read(&hash).await })
    }

    fn read_local_blob(&self, hash: &BlobHash) -> std::io::Result<Vec<u8>> {
        self.local.read(hash)
    }
}

#[cfg(test)]
pub mod memory;
