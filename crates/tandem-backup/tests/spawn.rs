//! Every operation's future can be spawned on tokio (it is `Send`), as the server's worker does.

mod support;

use std::sync::Arc;

use support::*;
use tandem_backup::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_can_be_spawned() {
    let repo = Arc::new(
        Repository::init_target(Memory.fresh(), "m", &RepoOptions::default())
            .await
            .unwrap(),
    );
    let r = repo.clone();
    let id = tokio::spawn(async move {
        let src = MemSource::new(b"m", &[("f", noise(1000, 1))]);
        r.backup(&src, &BackupOptions::default(), &NoProgress)
            .await
            .unwrap()
            .id
    })
    .await
    .unwrap();
    let r = repo.clone();
    tokio::spawn(async move { r.list().await.unwrap() })
        .await
        .unwrap();
    let r = repo.clone();
    tokio::spawn(async move { assert!(r.verify(true, &NoProgress).await.unwrap().is_ok()) })
        .await
        .unwrap();
    let r = repo.clone();
    let id2 = id.clone();
    tokio::spawn(async move {
        let sink = MemSink::default();
        r.restore(&id2, &sink, &RestoreOptions::default(), &NoProgress)
            .await
            .unwrap()
    })
    .await
    .unwrap();
    let r = repo.clone();
    tokio::spawn(async move {
        r.prune(&Retention::default(), &PruneOptions::default(), &NoProgress)
            .await
            .unwrap();
        r.forget(&[]).await.unwrap();
        r.verify_snapshot(&id, true, &NoProgress).await.unwrap()
    })
    .await
    .unwrap();
}
