//! Writing files atomically with the permissions their contents call for.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

#[cfg(test)]
mod tests;

/// Mode of files holding keys or tokens.
pub const PRIVATE: u32 = 0o600;
/// Mode of files anyone may read, such as certificates.
pub const PUBLIC: u32 = 0o644;

/// Writes `contents` to `path` through a temporary file and a rename, so a reader never sees a
/// half-written file and a crash never leaves one; the file ends up with exactly `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp_path = path.with_file_name(temp_name);
    let result = write_then_rename(&temp_path, path, contents, mode);
    if result.is_err() {
        // The temporary file is ours alone; a failure to remove it changes nothing for the caller.
        let _ = fs::remove_file(&temp_path);
    }
    result.with_context(|| format!("write {}", path.display()))
}

fn write_then_rename(temp_path: &Path, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temp_path)
        .with_context(|| format!("create {}", temp_path.display()))?;
    // The mode given to open() is filtered by the umask; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .context("set file permissions")?;
    file.write_all(contents).context("write contents")?;
    file.sync_all().context("flush to disk")?;
    fs::rename(temp_path, path).context("move into place")?;
    Ok(())
}

/// Creates `dir` and its parents if they do not exist yet.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create directory {}", dir.display()))
}

/// Reads a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}
