//! Snapshots: a RocksDB checkpoint reduced to the state-machine column families, kept as a
//! directory under `snapshots/`, and installed by copying those families into the live store.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::RaftSnapshotBuilder;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch};

use crate::db::{
    CF_LOG, CF_RAFT_META, CF_SM_META, Db, FORMAT_VERSION, KEY_APPLIED, KEY_MEMBERSHIP, SM_CFS,
    decode, encode, sync_write,
};
use crate::error::StoreError;
use crate::types::{LogId, Snapshot, SnapshotDir, SnapshotMeta, StoredMembership, TypeConfig};

const META_FILE: &str = "meta.bin";
/// The store format version the snapshot's tables are in, as text. Snapshots of builds before
/// it have none: they are format 4.
const FORMAT_FILE: &str = "format";
const FORMAT_BEFORE_THE_FILE: u32 = 4;
const SNAPSHOT_PREFIX: &str = "snap-";
const INCOMING_PREFIX: &str = "incoming-";
const BUILDING_PREFIX: &str = "building-";
/// Older snapshots are kept a little while: one may still be streaming to a follower.
const SNAPSHOTS_KEPT: usize = 2;

/// Builds a snapshot from a checkpoint of the live database.
pub struct SnapshotBuilder {
    db: Db,
}

impl SnapshotBuilder {
    pub(crate) fn new(db: Db) -> SnapshotBuilder {
        SnapshotBuilder { db }
    }

    fn build(&self) -> Result<Snapshot, StoreError> {
        let root = &self.db.snapshot_root;
        let building = root.join(format!("{BUILDING_PREFIX}{}", unique_suffix()));
        // A checkpoint is a consistent point-in-time copy of every column family (hard links
        // plus the WAL), so the applied marker and the tables inside it agree.
        Checkpoint::new(self.db.disk())?.create_checkpoint(&building)?;
        let meta = reduce_checkpoint(&building)?;
        write_synced(
            &building.join(FORMAT_FILE),
            FORMAT_VERSION.to_string().as_bytes(),
        )?;
        write_meta(&building, &meta)?;
        let index = meta.last_log_id.as_ref().map(|id| id.index).unwrap_or(0);
        let final_path = root.join(format!("{SNAPSHOT_PREFIX}{index:020}-{}", unique_suffix()));
        rename_durably(&building, &final_path)?;
        prune(root)?;
        tracing::info!(index, path = %final_path.display(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: SnapshotDir { path: final_path },
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotDir;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let builder = SnapshotBuilder {
            db: self.db.clone(),
        };
        tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::from)
    }
}

/// Opens a fresh checkpoint, reads its applied state, and drops the Raft log and vote from it:
/// a snapshot carries the state machine only.
fn reduce_checkpoint(path: &Path) -> Result<SnapshotMeta, StoreError> {
    let names = DB::list_cf(&Options::default(), path)?;
    let descriptors = names
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    let mut checkpoint = DB::open_cf_descriptors(&Options::default(), path, descriptors)?;
    let meta = read_meta_from(&checkpoint)?;
    for cf in [CF_LOG, CF_RAFT_META] {
        if names.iter().any(|n| n == cf) {
            checkpoint.drop_cf(cf)?;
        }
    }
    drop(checkpoint);
    Ok(meta)
}

fn read_meta_from(db: &DB) -> Result<SnapshotMeta, StoreError> {
    let cf = db.cf_handle(CF_SM_META).ok_or(StoreError::Corrupted {
        cf: CF_SM_META,
        key: String::new(),
        reason: "snapshot has no state-machine metadata".into(),
    })?;
    let last_log_id: Option<LogId> = match db.get_cf(cf, KEY_APPLIED)? {
        Some(bytes) => decode(CF_SM_META, KEY_APPLIED, &bytes)?,
        None => None,
    };
    let last_membership: StoredMembership = match db.get_cf(cf, KEY_MEMBERSHIP)? {
        Some(bytes) => decode(CF_SM_META, KEY_MEMBERSHIP, &bytes)?,
        None => StoredMembership::default(),
    };
    Ok(SnapshotMeta {
        last_log_id,
        last_membership,
    })
}

/// Replaces the live state machine with the snapshot's, in one synced batch.
pub(crate) fn install(
    db: &Db,
    meta: &SnapshotMeta,
    snapshot: SnapshotDir,
) -> Result<(), StoreError> {
    // A snapshot in a format this build does not read (a newer build's) is refused before it
    // touches anything.
    check_format(&snapshot.path)?;
    // Make it this node's current snapshot first. A crash after this but before the state
    // machine batch below leaves a current snapshot newer than the state machine, which
    // openraft re-installs on restart; the other order could leave the log purged past a
    // snapshot this node no longer has.
    write_meta(&snapshot.path, meta)?;
    let index = meta.last_log_id.as_ref().map(|id| id.index).unwrap_or(0);
    let final_path = db
        .snapshot_root
        .join(format!("{SNAPSHOT_PREFIX}{index:020}-{}", unique_suffix()));
    rename_durably(&snapshot.path, &final_path)?;

    let names = DB::list_cf(&Options::default(), &final_path)?;
    let descriptors = names
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
    let source =
        DB::open_cf_descriptors_read_only(&Options::default(), &final_path, descriptors, false)?;
    let mut batch = WriteBatch::default();
    for cf_name in SM_CFS {
        let live_cf = db.cf(cf_name);
        for item in db.disk().iterator_cf(live_cf, IteratorMode::Start) {
            let (key, _) = item?;
            batch.delete_cf(live_cf, key);
        }
        if let Some(source_cf) = source.cf_handle(cf_name) {
            for item in source.iterator_cf(source_cf, IteratorMode::Start) {
                let (key, value) = item?;
                batch.put_cf(live_cf, key, value);
            }
        }
    }
    // The caller's meta is authoritative (it is what the leader sent with the data).
    batch.put_cf(db.cf(CF_SM_META), KEY_APPLIED, encode(&meta.last_log_id));
    batch.put_cf(
        db.cf(CF_SM_META),
        KEY_MEMBERSHIP,
        encode(&meta.last_membership),
    );
    drop(source);
    db.disk().write_opt(batch, &sync_write())?;
    prune(&db.snapshot_root)?;
    tracing::info!(index, "installed snapshot");
    Ok(())
}

/// The newest snapshot on disk, if any.
pub(crate) fn current(db: &Db) -> Result<Option<Snapshot>, StoreError> {
    let Some(path) = snapshot_dirs(&db.snapshot_root)?.pop() else {
        return Ok(None);
    };
    let bytes = fs::read(path.join(META_FILE)).map_err(|source| StoreError::Io {
        what: "read snapshot meta",
        source,
    })?;
    let meta: SnapshotMeta = decode("snapshot", META_FILE.as_bytes(), &bytes)?;
    Ok(Some(Snapshot {
        meta,
        snapshot: SnapshotDir { path },
    }))
}

/// A new, empty directory for a snapshot being received from the leader.
pub fn incoming_dir(snapshot_root: &Path) -> io::Result<PathBuf> {
    let path = snapshot_root.join(format!("{INCOMING_PREFIX}{}", unique_suffix()));
    fs::create_dir_all(&path)?;
    Ok(path)
}

/// Removes leftovers of interrupted builds and transfers. Called when the store opens.
pub(crate) fn remove_partial(snapshot_root: &Path) -> Result<(), StoreError> {
    for path in dirs_named(snapshot_root, &[INCOMING_PREFIX, BUILDING_PREFIX])? {
        fs::remove_dir_all(&path).map_err(|source| StoreError::Io {
            what: "remove partial snapshot",
            source,
        })?;
    }
    Ok(())
}

/// Complete snapshots, oldest first (names embed the zero-padded index).
fn snapshot_dirs(root: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut dirs = dirs_named(root, &[SNAPSHOT_PREFIX])?;
    dirs.sort();
    Ok(dirs)
}

/// Entries of `root` whose names start with one of `prefixes`.
fn dirs_named(root: &Path, prefixes: &[&str]) -> Result<Vec<PathBuf>, StoreError> {
    let io_err = |source| StoreError::Io {
        what: "list snapshots",
        source,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            found.push(entry.path());
        }
    }
    Ok(found)
}

fn prune(root: &Path) -> Result<(), StoreError> {
    let dirs = snapshot_dirs(root)?;
    let n_old = dirs.len().saturating_sub(SNAPSHOTS_KEPT);
    for old in &dirs[..n_old] {
        fs::remove_dir_all(old).map_err(|source| StoreError::Io {
            what: "remove old snapshot",
            source,
        })?;
    }
    Ok(())
}

fn write_meta(dir: &Path, meta: &SnapshotMeta) -> Result<(), StoreError> {
    write_synced(&dir.join(META_FILE), &encode(meta))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io_err = |source| StoreError::Io {
        what: "write a snapshot file",
        source,
    };
    fs::write(path, bytes).map_err(io_err)?;
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err)?;
    Ok(())
}

/// The snapshot in `dir` is in this build's store format.
fn check_format(dir: &Path) -> Result<(), StoreError> {
    let found = match fs::read_to_string(dir.join(FORMAT_FILE)) {
        Ok(text) => text.trim().parse().map_err(|_| StoreError::Corrupted {
            cf: "snapshot",
            key: FORMAT_FILE.into(),
            reason: format!("{text:?} is not a format version"),
        })?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => FORMAT_BEFORE_THE_FILE,
        Err(source) => {
            return Err(StoreError::Io {
                what: "read the snapshot's format",
                source,
            });
        }
    };
    if found != FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(())
}

fn rename_durably(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io_err = |source| StoreError::Io {
        what: "move snapshot into place",
        source,
    };
    fs::rename(from, to).map_err(io_err)?;
    if let Some(parent) = to.parent() {
        fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io_err)?;
    }
    Ok(())
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos}")
}
