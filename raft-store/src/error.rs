//! Errors of the store, one variant per case a caller handles differently.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupted value in column family {cf}, key {key:?}: {reason}")]
    Corrupted {
        cf: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "on-disk format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

impl From<StoreError> for io::Error {
    fn from(err: StoreError) -> io::Error {
        match err {
            StoreError::Io { source, .. } => source,
            other => io::Error::other(other),
        }
    }
}
