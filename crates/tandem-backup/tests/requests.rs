//! Request counts: an unchanged re-backup lists the chunks once and writes only its manifest (no
//! HEAD or GET per chunk).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use support::*;
use tandem_backup::*;

#[derive(Debug, Default)]
struct Counts {
    puts: AtomicUsize,
    gets: AtomicUsize,
    lists: AtomicUsize,
    deletes: AtomicUsize,
}

#[derive(Debug)]
struct Counting {
    inner: InMemory,
    counts: Arc<Counts>,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        // HEAD is a get_opts with `head: true` by default.
        self.counts.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.counts.deletes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.counts.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

fn snapshot(c: &Counts) -> [usize; 4] {
    [
        c.puts.load(Ordering::SeqCst),
        c.gets.load(Ordering::SeqCst),
        c.lists.load(Ordering::SeqCst),
        c.deletes.load(Ordering::SeqCst),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_rebackup_lists_once_and_puts_only_the_manifest() {
    let counts = Arc::new(Counts::default());
    let target = Target {
        store: Arc::new(Counting {
            inner: InMemory::new(),
            counts: counts.clone(),
        }),
        local_root: None,
    };
    let opts = RepoOptions {
        chunker: ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        },
        ..RepoOptions::default()
    };
    let repo = Repository::init_target(target, "counting", &opts)
        .await
        .unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("f{i}"), noise(50_000, i)))
        .collect();
    let files: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let src = MemSource::new(b"meta", &files);
    let no_parent = BackupOptions {
        parent: ParentChoice::None,
        ..BackupOptions::default()
    };
    let first = repo.backup(&src, &no_parent, &NoProgress).await.unwrap();
    assert!(first.totals.new_chunks > 40);

    let before = snapshot(&counts);
    let second = repo.backup(&src, &no_parent, &NoProgress).await.unwrap();
    let after = snapshot(&counts);
    assert_eq!(second.totals.new_chunks, 0);
    // puts, gets (and heads), lists, deletes
    assert_eq!(
        [
            after[0] - before[0],
            after[1] - before[1],
            after[2] - before[2],
            after[3] - before[3]
        ],
        [1, 0, 1, 0]
    );
}
