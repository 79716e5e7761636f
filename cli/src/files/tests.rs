//! Tests for atomic writes and their permissions.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::files::{PRIVATE, PUBLIC, write_atomic};

#[track_caller]
fn check_write(mode: u32) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("secret.toml");
    write_atomic(&path, b"first", PUBLIC).expect("write first version");
    write_atomic(&path, b"second", mode).expect("write second version");
    assert_eq!(fs::read(&path).expect("read back"), b"second");
    let metadata = fs::metadata(&path).expect("stat");
    assert_eq!(metadata.permissions().mode() & 0o777, mode);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("list dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .filter(|name| name != "secret.toml")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn private_file_gets_mode_0600() {
    check_write(PRIVATE);
}

#[test]
fn public_file_gets_mode_0644() {
    check_write(PUBLIC);
}

#[test]
fn missing_parent_is_an_error() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("missing").join("file");
    let err = write_atomic(&path, b"x", PRIVATE).expect_err("parent does not exist");
    assert!(format!("{err:#}").contains("missing"), "{err:#}");
}
