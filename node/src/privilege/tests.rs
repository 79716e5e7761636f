use std::os::unix::fs::MetadataExt;

use super::*;

#[test]
fn resolves_users_and_groups_by_name() {
    let nobody = resolve("nobody", "").unwrap();
    assert_eq!(nobody.uid.as_raw(), 65534);
    assert_eq!(nobody.gid.as_raw(), 65534, "nobody's primary group");
    let with_group = resolve("nobody", "root").unwrap();
    assert_eq!(with_group.gid.as_raw(), 0);
    let err = resolve("no-such-user-mcluster", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    let err = format!(
        "{:#}",
        resolve("nobody", "no-such-group-mcluster").unwrap_err()
    );
    assert!(
        err.contains("group \"no-such-group-mcluster\" does not exist"),
        "{err}"
    );
}

#[test]
fn missing_directories_are_created_for_the_account() {
    let root = tempfile::tempdir().unwrap();
    let nobody = resolve("nobody", "").unwrap();
    let dir = root.path().join("data/blobs");
    prepare_dir(&dir, &nobody).unwrap();
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // Now it is the account's, and a second start accepts it.
    prepare_dir(&dir, &nobody).unwrap();
}

#[test]
fn directories_of_another_owner_are_refused_with_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let nobody = resolve("nobody", "").unwrap();
    let err = prepare_dir(root.path(), &nobody).unwrap_err().to_string();
    assert!(err.contains("chown -R nobody:"), "{err}");

    // The directory is right but a file inside it was left by a run as root.
    let dir = root.path().join("data");
    prepare_dir(&dir, &nobody).unwrap();
    std::fs::write(dir.join("CURRENT"), b"x").unwrap();
    let err = prepare_dir(&dir, &nobody).unwrap_err().to_string();
    assert!(err.contains("CURRENT belongs to uid 0"), "{err}");
    nix::unistd::chown(&dir.join("CURRENT"), Some(nobody.uid), None).unwrap();
    prepare_dir(&dir, &nobody).unwrap();
}

#[test]
fn the_switch_refuses_to_run_once_threads_exist() {
    // The test harness runs this test on a thread of its own, so there are at least two.
    let nobody = resolve("nobody", "").unwrap();
    let err = become_user(&nobody, &[]).unwrap_err().to_string();
    assert!(err.contains("before any thread starts"), "{err}");
}
