//! The directory source and sink, end to end on a `file://` repository.

use std::path::Path;

use bytes::Bytes;
use tandem_backup::*;

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_round_trip_and_unchanged_rebackup() {
    let tmp = tempfile::tempdir().unwrap();
    let (src_dir, out_dir) = (tmp.path().join("src"), tmp.path().join("out"));
    write(&src_dir, "a.txt", b"hello");
    write(&src_dir, "empty", b"");
    write(&src_dir, "deep/er/big.bin", &vec![3u8; 3_000_000]);
    let url = format!("file://{}/repo", tmp.path().display());
    let repo = Repository::open_or_init(&url, &RepoOptions::default())
        .await
        .unwrap();
    let source = DirSource {
        root: src_dir.clone(),
        metadata: Bytes::from_static(b"sqlite dump"),
    };
    let first = repo
        .backup(&source, &BackupOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(first.totals.files, 3);
    let second = repo
        .backup(&source, &BackupOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(second.totals.new_chunks, 0);
    assert_eq!(second.parent.as_deref(), Some(first.id.as_str()));

    let repo = Repository::open(&url, &RepoOptions::default())
        .await
        .unwrap();
    let sink = DirSink {
        root: out_dir.clone(),
        metadata_file: Some(tmp.path().join("meta.out")),
    };
    let r = repo
        .restore(&second.id, &sink, &RestoreOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(r.files, 3);
    for rel in ["a.txt", "empty", "deep/er/big.bin"] {
        assert_eq!(
            std::fs::read(src_dir.join(rel)).unwrap(),
            std::fs::read(out_dir.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert_eq!(
        std::fs::read(tmp.path().join("meta.out")).unwrap(),
        b"sqlite dump"
    );
}
