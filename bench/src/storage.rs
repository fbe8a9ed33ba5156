//! Blob storage backends (issue #10): a 100 MB model artifact put and read back through
//! `BlobStore`, the layer every region write goes through, on the local disk (fsync'd, the
//! anchor) and on an S3-compatible bucket (multipart upload above 32 MiB).
//!
//! The bucket comes from `TANDEM_TEST_S3_URL` and the `AWS_*` variables, as the tests take it:
//! `scripts/s3-server.sh run target/release/tandem-bench storage` starts a Garage node on
//! loopback for the run.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;
use tandem_store::{BlobStore, S3Options};

use crate::stats::{median, save};

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

async fn time_backend(
    label: &str,
    blobs: &BlobStore,
    data: &Bytes,
    reps: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let key = format!("bench/artifact-{i}");
        let t = Instant::now();
        blobs.put(&key, data.clone()).await?;
        up.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let back = blobs.get(&key).await?.expect("just written");
        down.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(back.len() == data.len(), "{label}: short read");
        anyhow::ensure!(back == *data, "{label}: the bytes read back differ");
        blobs.delete(&key).await?;
        eprintln!("storage: {label} {}/{reps}", i + 1);
    }
    Ok((up, down))
}

/// Runs the benchmark: `mb` MB of incompressible bytes, `reps` times per backend.
pub async fn run(out: &Path, mb: usize, reps: usize) -> anyhow::Result<()> {
    let url = std::env::var("TANDEM_TEST_S3_URL").map_err(|_| {
        anyhow::anyhow!(
            "no S3 bucket: run `scripts/s3-server.sh run target/release/tandem-bench storage`"
        )
    })?;
    let size = mb * 1_000_000;
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in data.iter_mut() {
        // xorshift: incompressible, reproducible.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let data = Bytes::from(data);
    let dir = tempfile::tempdir()?;
    let local = BlobStore::from_url(&format!("file://{}", dir.path().join("blobs").display()))?;
    let s3_url = format!(
        "{}/bench-storage-{}",
        url.trim_end_matches('/'),
        std::process::id()
    );
    let s3 = BlobStore::open(&s3_url, &S3Options::from_env()).await?;
    let (lu, ld) = time_backend("local disk", &local, &data, reps).await?;
    let (su, sd) = time_backend("s3", &s3, &data, reps).await?;
    let (lu, ld, su, sd) = (median(&lu), median(&ld), median(&su), median(&sd));
    println!(
        "\n### Blob storage: a {mb} MB artifact through `BlobStore`, {reps} runs each (medians)\n"
    );
    println!("| operation | local disk (fsync'd) | S3 (Garage on loopback) | S3 / local |");
    println!("|---|---|---|---|");
    println!(
        "| upload | {:.0} ms ({:.0} MB/s) | {:.0} ms ({:.0} MB/s) | {:.2}× |",
        lu * 1e3,
        mbps(size, lu),
        su * 1e3,
        mbps(size, su),
        su / lu
    );
    println!(
        "| download | {:.0} ms ({:.0} MB/s) | {:.0} ms ({:.0} MB/s) | {:.2}× |",
        ld * 1e3,
        mbps(size, ld),
        sd * 1e3,
        mbps(size, sd),
        sd / ld
    );
    save(
        out,
        "storage",
        &json!({
            "bytes": size, "reps": reps,
            "local": {"upload_s": lu, "download_s": ld},
            "s3": {"upload_s": su, "download_s": sd},
        }),
    )
}
