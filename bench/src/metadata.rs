//! Metadata operation latency (issue #10): the same `MetaStore` calls on SQLite (one file on
//! local disk, WAL, `synchronous=FULL`: the embedded default) and on PostgreSQL (what the
//! nodes of a larger region share), one call at a time, so each figure is one operation's
//! latency as a request sees it.
//!
//! Operations: key lookup (`authenticate`, every data-plane request), asset create, asset get,
//! an asset list page (100 of the resource's assets), a speaker enrollment write (the
//! transaction that appends it and recomputes the profile), lease acquire and renew (jobs,
//! backup, replication). Backends alternate in rounds, so that machine noise hits both alike.
//!
//! PostgreSQL comes from `--pg-url` or `TANDEM_TEST_PG_URL`; the database is migrated and
//! written to (one fresh resource per run), so give it a scratch database:
//! `scripts/pg-server.sh run target/release/tandem-bench metadata` starts a throwaway server.
//! That server runs with `fsync=off` (a test server); `--pg-url` can name a durable one.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_core::{KeyHash, RegionName, ResourceId, ResourceKey};
use tandem_store::{
    AssetKind, AssetStatus, NewAsset, NewEnrollment, NewProfile, NewResource, ProfileKind, Store,
};

use crate::stats::{median, percentile, save};

/// The operations timed, in report order.
const OPS: [&str; 7] = [
    "key lookup (authenticate)",
    "asset create",
    "asset get",
    "asset list page (100)",
    "speaker enroll write",
    "lease acquire",
    "lease renew",
];

/// Enrollments per profile before the bench starts another (the write recomputes the
/// profile from its live enrollments, so its cost grows with them; Azure caps them at 50).
const ENROLLMENTS_PER_PROFILE: usize = 10;

/// One backend under test, its fixtures, and its samples in seconds, per operation.
struct Backend {
    label: &'static str,
    store: Store,
    region: RegionName,
    resource: ResourceId,
    key: KeyHash,
    /// Ids of the assets created so far (`ResourceId` only for its random UUID).
    assets: Vec<ResourceId>,
    /// The profile being enrolled, and its enrollments so far.
    profile: Option<(ResourceId, usize)>,
    leases: usize,
    samples: Vec<Vec<f64>>,
}

impl Backend {
    async fn open(label: &'static str, metadata_url: &str, blobs: &Path) -> anyhow::Result<Self> {
        let store = Store::open(metadata_url, &format!("file://{}", blobs.display())).await?;
        let region = RegionName::new("benchus")?;
        let key = ResourceKey::generate().hash();
        let resource = ResourceId::random();
        store
            .meta
            .create_resource(NewResource {
                id: resource,
                region: region.clone(),
                name: format!("bench-{resource}"),
                key1: key,
                key2: ResourceKey::generate().hash(),
                concurrency_limit: 100,
            })
            .await?;
        Ok(Backend {
            label,
            store,
            region,
            resource,
            key,
            assets: Vec::new(),
            profile: None,
            leases: 0,
            samples: vec![Vec::new(); OPS.len()],
        })
    }

    /// `n` calls of operation `op`, each timed alone.
    async fn run(&mut self, op: usize, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let t = self.once(op).await?;
            self.samples[op].push(t.as_secs_f64());
        }
        Ok(())
    }

    async fn once(&mut self, op: usize) -> anyhow::Result<Duration> {
        let meta = self.store.meta.clone();
        let now = time::OffsetDateTime::now_utc();
        let ttl = Duration::from_secs(30);
        Ok(match op {
            0 => {
                let t = Instant::now();
                let found = meta.authenticate(&self.region, &self.key).await?;
                let took = t.elapsed();
                anyhow::ensure!(found.is_some(), "{}: the key was not found", self.label);
                took
            }
            1 => {
                let id = ResourceId::random();
                let asset = NewAsset {
                    id: id.0,
                    resource_id: self.resource,
                    kind: AssetKind::Dataset,
                    status: AssetStatus::Succeeded,
                    display_name: "bench dataset".into(),
                    description: Some("a dataset row of typical size".into()),
                    locale: "en-US".into(),
                    properties: json!({"acceptedLineCount": 1200, "rejectedLineCount": 0}),
                    doc: json!({"format": 1, "kind": "Language", "files": [
                        {"id": ResourceId::random().to_string(), "name": "corpus.txt", "bytes": 123_456}
                    ]}),
                };
                let t = Instant::now();
                meta.create_asset(asset).await?;
                let took = t.elapsed();
                self.assets.push(id);
                took
            }
            2 => {
                let id = self.assets[self.samples[op].len() % self.assets.len()];
                let t = Instant::now();
                let found = meta
                    .get_asset(self.resource, AssetKind::Dataset, id.0)
                    .await?;
                let took = t.elapsed();
                anyhow::ensure!(found.is_some(), "{}: asset not found", self.label);
                took
            }
            3 => {
                let t = Instant::now();
                let page = meta
                    .list_assets(self.resource, AssetKind::Dataset, 0, 100)
                    .await?;
                let took = t.elapsed();
                anyhow::ensure!(!page.values.is_empty(), "{}: empty page", self.label);
                took
            }
            4 => {
                let (profile, count) = match self.profile {
                    Some((p, c)) if c < ENROLLMENTS_PER_PROFILE => (p, c),
                    _ => {
                        let p = ResourceId::random();
                        meta.create_profile(NewProfile {
                            id: p.0,
                            resource_id: self.resource,
                            kind: ProfileKind::TextIndependentVerification,
                            locale: "en-us".into(),
                        })
                        .await?;
                        (p, 0)
                    }
                };
                let e = ResourceId::random();
                let mut embedding: Vec<f32> =
                    (0..256).map(|i| ((i * 7 + count) % 13) as f32).collect();
                let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
                embedding.iter_mut().for_each(|x| *x /= norm);
                let enrollment = NewEnrollment {
                    id: e.0,
                    profile_id: profile.0,
                    audio_secs: 8.0,
                    speech_secs: 6.5,
                    audio_key: tandem_store::enrollment_audio_key(self.resource, profile.0, e.0),
                    embedding,
                    passphrase: None,
                };
                let t = Instant::now();
                meta.add_enrollment(
                    self.resource,
                    ProfileKind::TextIndependentVerification,
                    enrollment,
                    20.0,
                )
                .await?;
                let took = t.elapsed();
                self.profile = Some((profile, count + 1));
                took
            }
            5 => {
                self.leases += 1;
                let job = format!("bench/{}/{}", self.resource, self.leases);
                let t = Instant::now();
                let got = meta.acquire_lease(&job, "bench-node", now, ttl).await?;
                let took = t.elapsed();
                anyhow::ensure!(got.is_some(), "{}: a fresh lease was refused", self.label);
                took
            }
            _ => {
                let job = format!("bench/{}/renewed", self.resource);
                if self.samples[op].is_empty() {
                    meta.acquire_lease(&job, "bench-node", now, ttl).await?;
                }
                let t = Instant::now();
                let renewed = meta.renew_lease(&job, "bench-node", now, ttl).await?;
                let took = t.elapsed();
                anyhow::ensure!(renewed, "{}: renew refused", self.label);
                took
            }
        })
    }
}

fn ms(s: f64) -> f64 {
    s * 1e3
}

/// Runs the benchmark: `n` timed calls of each operation per backend, in `rounds` alternating
/// rounds. `pg_url` (or `TANDEM_TEST_PG_URL`) names the PostgreSQL database.
pub async fn run(
    out: &Path,
    n: usize,
    rounds: usize,
    pg_url: Option<String>,
) -> anyhow::Result<()> {
    let pg_url = pg_url
        .or_else(|| std::env::var("TANDEM_TEST_PG_URL").ok())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no PostgreSQL: pass --pg-url, or run `scripts/pg-server.sh run target/release/tandem-bench metadata`"
            )
        })?;
    // On the local disk (not a tmpfs): SQLite's fsyncs are part of what is measured.
    let dir = tempfile::Builder::new()
        .prefix("tandem-bench-metadata-")
        .tempdir_in(out)?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let mut backends = [
        Backend::open("SQLite", &sqlite_url, &dir.path().join("blobs-sqlite")).await?,
        Backend::open("PostgreSQL", &pg_url, &dir.path().join("blobs-pg")).await?,
    ];
    let rounds = rounds.max(1);
    let per_round = n.div_ceil(rounds);
    // Warm-up: connections, statement caches, and enough assets for the list page.
    for b in backends.iter_mut() {
        for op in 0..OPS.len() {
            b.run(op, if op == 1 { 100 } else { 5 }).await?;
        }
        b.samples.iter_mut().for_each(Vec::clear);
    }
    for round in 0..rounds {
        for b in backends.iter_mut() {
            for op in 0..OPS.len() {
                b.run(op, per_round).await?;
            }
        }
        eprintln!("metadata: round {}/{rounds}", round + 1);
    }

    println!("\n### Metadata operation latency, PostgreSQL against SQLite\n");
    println!(
        "{} calls of each, one at a time; medians (p99) in ms.\n",
        per_round * rounds
    );
    println!("| operation | SQLite | PostgreSQL | PG / SQLite (median) |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for (op, name) in OPS.iter().enumerate() {
        let (s, p) = (&backends[0].samples[op], &backends[1].samples[op]);
        let (sm, pm) = (median(s), median(p));
        let (s99, p99) = (percentile(s, 99.0), percentile(p, 99.0));
        println!(
            "| {name} | {:.3} ({:.3}) | {:.3} ({:.3}) | {:.2}x |",
            ms(sm),
            ms(s99),
            ms(pm),
            ms(p99),
            pm / sm
        );
        rows.push(json!({
            "operation": name,
            "sqlite_median_ms": ms(sm), "sqlite_p99_ms": ms(s99),
            "postgres_median_ms": ms(pm), "postgres_p99_ms": ms(p99),
            "ratio_median": pm / sm, "samples": s.len(),
        }));
    }
    for b in &backends {
        b.store.close().await;
    }
    save(
        out,
        "metadata",
        &json!({"benchmark": "metadata", "calls": per_round * rounds, "rounds": rounds, "results": rows}),
    )
}
