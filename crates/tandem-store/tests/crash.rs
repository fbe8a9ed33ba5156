//! `kill -9` loses nothing that was acknowledged.
//!
//! The test re-runs its own binary, filtered to `crash_child_writer` and with
//! `TANDEM_STORE_CRASH_DIR` set, as a child that writes resources and blobs in a loop and prints
//! `@@ACK` for each only after the writes returned `Ok`. The parent SIGKILLs it after enough acks,
//! reopens the store and checks every acknowledged write is there, intact.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use bytes::Bytes;
use tandem_core::{KeyHash, RegionName, ResourceId};
use tandem_store::{NewResource, SqliteMetaStore, Store};

const CHILD_ENV: &str = "TANDEM_STORE_CRASH_DIR";
const MARK: &str = "@@ACK ";
const ACKS_BEFORE_KILL: usize = 200;
const WRITERS: u32 = 4;

fn region() -> RegionName {
    RegionName::new("crashus").unwrap()
}

fn key(i: u32, slot: u8) -> KeyHash {
    let mut b = [0x5a; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    b[4] = slot;
    KeyHash(b)
}

fn blob_key(i: u32) -> String {
    format!("crash/{:02}/{i}.bin", i % 16)
}

fn blob_data(i: u32) -> Bytes {
    let len = 1000 + (i as usize % 7) * 4096;
    (0..len)
        .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i) as u8)
        .collect::<Vec<_>>()
        .into()
}

async fn open(dir: &Path) -> Store {
    let meta = format!("sqlite://{}", dir.join("tandem.db").display());
    let blobs = format!("file://{}", dir.join("blobs").display());
    Store::open(&meta, &blobs).await.expect("open store")
}

/// The child half. A no-op unless the parent started this binary with `CHILD_ENV` set.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = open(Path::new(&dir)).await;
        let writers = (0..WRITERS).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                // Bounded, so an orphaned child stops by itself.
                for n in 0..25_000u32 {
                    let i = n * WRITERS + w;
                    let r = NewResource {
                        id: ResourceId::random(),
                        region: region(),
                        name: format!("crash-{i}"),
                        key1: key(i, 1),
                        key2: key(i, 2),
                        concurrency_limit: i,
                    };
                    let id = r.id;
                    store
                        .meta
                        .create_resource(r)
                        .await
                        .expect("create_resource");
                    store
                        .blobs
                        .put(&blob_key(i), blob_data(i))
                        .await
                        .expect("blob put");
                    // Acknowledge only now. A closed pipe (parent gone) ends the child.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{MARK}{i} {id}")
                        .and_then(|()| out.flush())
                        .expect("stdout");
                }
            })
        });
        for w in futures::future::join_all(writers).await {
            w.expect("writer task");
        }
    });
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let mut acks: Vec<(u32, ResourceId)> = Vec::new();
    let mut killed = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.expect("read child stdout");
        // libtest may print "test crash_child_writer ... " on the same line: find the mark.
        let Some((_, ack)) = line.split_once(MARK) else {
            continue;
        };
        let (i, id) = ack.split_once(' ').expect("ack has index and id");
        acks.push((i.parse().unwrap(), id.trim().parse().unwrap()));
        if acks.len() >= ACKS_BEFORE_KILL && !killed {
            child.kill().expect("SIGKILL child"); // kill -9 on Unix
            killed = true;
        }
        // After the kill, keep reading: lines already in the pipe were acknowledged too.
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "child exited ({status}) after only {} acks",
        acks.len()
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "child must die of SIGKILL, not finish: {status}"
        );
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let check = SqliteMetaStore::open(&format!(
            "sqlite://{}",
            dir.path().join("tandem.db").display()
        ))
        .await
        .expect("reopen after kill");
        let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(check.pool())
            .await
            .unwrap();
        assert_eq!(ok, "ok", "database integrity after kill -9");

        let store = open(dir.path()).await;
        for &(i, id) in &acks {
            let r = store.meta.get_resource(id).await.unwrap();
            let r = r.unwrap_or_else(|| panic!("acknowledged resource {i} ({id}) lost"));
            assert_eq!(
                (r.name.as_str(), r.concurrency_limit),
                (format!("crash-{i}").as_str(), i)
            );
            let (auth, _) = store
                .meta
                .authenticate(&region(), &key(i, 2))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("key of acknowledged resource {i} lost"));
            assert_eq!(auth.id, id);
            let blob = store.blobs.get(&blob_key(i)).await.unwrap();
            let blob = blob.unwrap_or_else(|| panic!("acknowledged blob {i} lost"));
            assert!(
                blob == blob_data(i),
                "acknowledged blob {i} corrupted ({} bytes)",
                blob.len()
            );
        }
        eprintln!("verified {} acknowledged writes after kill -9", acks.len());
        let listed = store.meta.list_resources(&region()).await.unwrap();
        assert!(
            listed.len() >= acks.len(),
            "{} listed < {} acknowledged",
            listed.len(),
            acks.len()
        );
    });
}
