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
