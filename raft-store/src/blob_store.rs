//! The blob store: message bodies as files named by their SHA-256, in 256 shard directories.
//!
//! A write is durable when it returns: temp file, fdatasync, rename into its shard, fsync of the
//! shard directory. Many blobs at once (resync) are staged as temp files and installed together
//! with one file-system flush before and one after their renames, instead of two flushes each.
//! A blob file is only ever replaced by the same bytes, so a reader never sees a partial blob
//! under its final name. Which blobs a node must keep is decided by the replicated
//! state (`BlobRecord`); this module only stores, reads, lists and removes files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::mail::BlobHash;

#[cfg(test)]
mod tests;

const TMP_DIR: &str = "tmp";

/// The blob files of one node. Cheap to clone; all methods block (call from blocking threads).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// SHA-256 of `data`.
pub fn hash(data: &[u8]) -> BlobHash {
    Sha256::digest(data).into()
}

pub fn hex(hash: &BlobHash) -> String {
    ::hex::encode(hash)
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, removing temp files a crash left.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            fs::remove_file(entry?.path())?;
        }
        let mut created = false;
        for shard in 0..=255u8 {
            let dir = root.join(format!("{shard:02x}"));
            if !dir.exists() {
                fs::create_dir(&dir)?;
                created = true;
            }
        }
        if created {
            sync_dir(root)?;
            if let Some(parent) = root.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        self.root.join(format!("{:02x}", hash[0])).join(hex(hash))
    }

    /// Stores `data` under `hash` durably. The caller has computed or checked the hash.
    pub fn write(&self, hash: &BlobHash, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(&self::hash(data), hash);
        let tmp = self.tmp_path(hash);
        let result = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(data)?;
            file.sync_data()?;
            let final_path = self.path(hash);
            fs::rename(&tmp, &final_path)?;
            sync_dir(
                final_path
                    .parent()
                    .expect("a blob path has a shard directory"),
            )
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Writes `data` to a temp file without flushing it, for [`BlobStore::install`]. The caller
    /// has computed or checked the hash.
    pub fn stage(&self, hash: &BlobHash, data: &[u8]) -> io::Result<Staged> {
        debug_assert_eq!(&self::hash(data), hash);
        let tmp = self.tmp_path(hash);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut file| file.write_all(data));
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
        Ok(Staged { tmp, hash: *hash })
    }

    /// Makes staged blobs durable under their final names: one flush of the file system (their
    /// bytes, and whatever else of the store is not yet on disk, such as a blob file found in
    /// place after a crash), the renames, and one more flush (the renames). On an error the
    /// blobs not yet renamed are removed; those renamed stay (a blob file always holds its
    /// blob's bytes).
    pub fn install(&self, staged: Vec<Staged>) -> io::Result<()> {
        let result = (|| {
            sync_file_system(&self.root)?;
            if staged.is_empty() {
                return Ok(());
            }
            for blob in &staged {
                fs::rename(&blob.tmp, self.path(&blob.hash))?;
            }
            sync_file_system(&self.root)
        })();
        if result.is_err() {
            for blob in &staged {
                let _ = fs::remove_file(&blob.tmp);
            }
        }
        result
    }

    fn tmp_path(&self, hash: &BlobHash) -> PathBuf {
        self.root
            .join(TMP_DIR)
            .join(format!("{}.{:016x}", hex(hash), rand::random::<u64>()))
    }

    /// Reads a blob, or `NotFound`.
    pub fn read(&self, hash: &BlobHash) -> io::Result<Vec<u8>> {
        fs::read(self.path(hash))
    }

    pub fn contains(&self, hash: &BlobHash) -> bool {
        self.path(hash).is_file()
    }

    /// Every blob file with its modification time, for garbage collection.
    pub fn list(&self) -> io::Result<Vec<(BlobHash, SystemTime)>> {
        let mut blobs = Vec::new();
        for shard in 0..=255u8 {
            let dir = self.root.join(format!("{shard:02x}"));
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let Some(hash) = parse_name(&entry.file_name().to_string_lossy()) else {
                    continue;
                };
                let modified = entry.metadata()?.modified()?;
                blobs.push((hash, modified));
            }
        }
        Ok(blobs)
    }

    pub fn remove(&self, hash: &BlobHash) -> io::Result<()> {
        match fs::remove_file(self.path(hash)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn parse_name(name: &str) -> Option<BlobHash> {
    let bytes = ::hex::decode(name).ok()?;
    BlobHash::try_from(bytes.as_slice()).ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// syncfs(2): writes back and flushes everything of the file system that holds `path` (its
/// files' data and metadata, renames included) before returning.
fn sync_file_system(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    nix::unistd::syncfs(&dir).map_err(io::Error::from)
}

/// A blob written to a temp file by [`BlobStore::stage`], not yet durable or visible.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    hash: BlobHash,
}

impl Staged {
    pub fn hash(&self) -> &BlobHash {
        &self.hash
    }
}
