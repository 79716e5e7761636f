use crate::blob_store::{BlobStore, hash};

#[test]
fn write_read_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let data = b"Subject: hi\r\n\r\nbody\r\n";
    let h = hash(data);
    assert!(!store.contains(&h));
    store.write(&h, data).unwrap();
    // Writing the same content again replaces the file with identical bytes.
    store.write(&h, data).unwrap();
    assert_eq!(store.read(&h).unwrap(), data);
    let listed: Vec<_> = store.list().unwrap().into_iter().map(|(h, _)| h).collect();
    assert_eq!(listed, vec![h]);
    store.remove(&h).unwrap();
    store.remove(&h).unwrap();
    assert!(!store.contains(&h));
    assert_eq!(
        store.read(&h).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn open_removes_leftover_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    BlobStore::open(&root).unwrap();
    std::fs::write(root.join("tmp").join("abc.123"), b"half").unwrap();
    BlobStore::open(&root).unwrap();
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
}

#[test]
fn staged_blobs_are_invisible_until_installed_and_a_restart_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let store = BlobStore::open(&root).unwrap();
    let blobs: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("blob {i}\r\n").into_bytes())
        .collect();
    let staged: Vec<_> = blobs
        .iter()
        .map(|data| store.stage(&hash(data), data).unwrap())
        .collect();
    for data in &blobs {
        assert!(
            !store.contains(&hash(data)),
            "a staged blob is not readable yet"
        );
    }
    store.install(staged).unwrap();
    for data in &blobs {
        assert_eq!(store.read(&hash(data)).unwrap(), *data);
    }
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);

    // Staged but never installed (the process died): nothing appears, the temp file goes.
    let lost = b"never installed\r\n";
    store.stage(&hash(lost), lost).unwrap();
    let store = BlobStore::open(&root).unwrap();
    assert!(!store.contains(&hash(lost)));
    assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert_eq!(store.list().unwrap().len(), blobs.len());
}
