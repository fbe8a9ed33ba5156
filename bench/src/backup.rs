//! Backups (issue #5) against their anchors, on the same data, on the same machine, in the same
//! run. The data is a real region: the biology set (its 50 WAVs as an Acoustic dataset, the
//! language data, a model trained from it, an endpoint), plus further Acoustic datasets of the
//! same recordings, each copy made unique (see [`acoustic_zip`]), until the region holds at
//! least [`LEAST_BYTES`]: WAV audio is what a speech region mostly stores.
//!
//! - Throughput, `reps` times each, medians: restic (`init` + first `backup`, an unchanged
//!   `backup`, `restore latest`) against `tandem backup run` (first into a fresh repository, then
//!   unchanged) and `tandem restore` into an empty stopped region, each timed end to end as a
//!   process; and `cp -r <data-dir> && sync` as the raw-copy anchor of restore.
//! - RPO under load: the same region restarted with `[backup] interval_secs = I`, a client
//!   writing Language datasets at a steady rate; the RPO of an acknowledged write is the time
//!   from its acknowledgement to the end of the first snapshot that holds it, bracketed by the
//!   first snapshot that began after it (upper bound) and the first that ended after it (lower
//!   bound); a few snapshots are restored to check the claim.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};
use tandem_testkit::{biology, shared_data, RegionOptions, RegionProcess};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::custom_speech::{id_of, Api};
use crate::stats::{median, percentile, save};

/// The least size of the region's data directory.
const LEAST_BYTES: u64 = 200_000_000;
/// The backup interval of the RPO run, in seconds (short, to keep the benchmark short: the
/// RPO is reported as a multiple of it).
const INTERVAL_SECS: u64 = 5;
/// How long the RPO client writes, and how often.
const WRITE_SECS: u64 = 60;
const WRITES_PER_SEC: u64 = 8;
/// Snapshots restored to check which writes they hold.
const CHECKED_SNAPSHOTS: usize = 3;
const RESTIC_PASSWORD: &str = "tandem-bench";

/// `[backup]` lines: the repository at `repo`, a snapshot every `interval` seconds (0: none).
fn backup_config(repo: &Path, interval: u64) -> Vec<String> {
    vec![
        "[backup]".into(),
        format!("target = \"file://{}\"", repo.display()),
        format!("interval_secs = {interval}"),
    ]
}

/// Runs `cmd` to its end; the seconds it took (process start included) and its stdout.
fn timed(cmd: &mut Command) -> anyhow::Result<(f64, String)> {
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((secs, String::from_utf8(out.stdout)?))
}

/// `tandem <args> --config <config>`.
fn tandem(bin: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args).arg("--config").arg(config);
    c
}

/// `restic --repo <repo> --quiet`, with the repository password in the environment.
fn restic(repo: &Path) -> Command {
    let mut c = Command::new("restic");
    c.arg("--repo")
        .arg(repo)
        .arg("--quiet")
        .env("RESTIC_PASSWORD", RESTIC_PASSWORD);
    c
}

/// Flushes every dirty page, so that no step pays for the writes of the one before.
fn sync() -> anyhow::Result<()> {
    ensure!(Command::new("sync").status()?.success(), "sync failed");
    Ok(())
}

/// Files and bytes under `dir`.
fn tree_size(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let m = e.metadata()?;
        if m.is_dir() {
            let (f, b) = tree_size(&e.path())?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += m.len();
        }
    }
    Ok((files, bytes))
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The biology set as an Acoustic zip (its 50 WAVs and `trans.txt`). With `copy`, each
/// sample's least significant bit is flipped at random (seeded by `copy`): noise at -90 dB
/// that nobody hears, but that makes every copy's bytes unique, as the recordings of a real
/// region are, so that neither restic nor Tandem can deduplicate one copy against another.
fn acoustic_zip(copy: Option<u64>) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut rng = Rng(copy.unwrap_or(0));
    for clip in biology() {
        let mut wav = std::fs::read(&clip.path)?;
        if copy.is_some() {
            ensure!(
                wav.len() > 44 && &wav[36..40] == b"data",
                "{}: not a plain 44-byte-header WAV",
                clip.path.display()
            );
            let mut bits = 0;
            for (i, b) in wav[44..].iter_mut().step_by(2).enumerate() {
                if i % 64 == 0 {
                    bits = rng.next();
                }
                *b ^= ((bits >> (i % 64)) & 1) as u8;
            }
        }
        w.start_file(clip.name.as_str(), opts)?;
        w.write_all(&wav)?;
    }
    w.start_file("trans.txt", opts)?;
    w.write_all(&std::fs::read(
        shared_data().join("custom-speech-biology/trans.txt"),
    )?)?;
    Ok(w.finish()?.into_inner())
}

/// The v3.2 API of `region` with `key`.
fn api(region: &RegionProcess, key: &str) -> Api {
    Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .expect("client"),
        base: format!("{}/speechtotext/v3.2", region.url),
        origin: region.url.clone(),
        key: key.to_owned(),
    }
}

/// What the region holds, as described in the output.
struct Data {
    /// Acoustic datasets beyond the biology one (unique copies of its recordings).
    copies: u64,
    files: u64,
    bytes: u64,
}

/// Fills `region` with the biology assets, then with unique copies of the biology audio until
/// its data directory holds at least [`LEAST_BYTES`].
async fn populate(region: &RegionProcess) -> anyhow::Result<Data> {
    let keys = region.create_resource("biology");
    let api = api(region, &keys.key1);
    api.upload("Acoustic", acoustic_zip(None)?).await?;
    let text = std::fs::read(shared_data().join("custom-speech-biology/language-data.txt"))?;
    let language = api.upload("Language", text).await?;
    let model = api
        .post(
            "/models",
            json!({"datasets": [{"self": language["self"]}], "locale": "en-US",
                   "displayName": "biology"}),
        )
        .await?;
    let model = api.wait(model, Duration::from_secs(600)).await?;
    let endpoint = api
        .post(
            "/endpoints",
            json!({"model": {"self": model["self"]}, "locale": "en-US",
                   "displayName": "biology"}),
        )
        .await?;
    api.wait(endpoint, Duration::from_secs(600)).await?;
    let mut copies = 0;
    while tree_size(&region.data_dir())?.1 < LEAST_BYTES {
        copies += 1;
        api.upload("Acoustic", acoustic_zip(Some(copies))?).await?;
        eprint!("\rbackup: populating, {copies} audio copies");
    }
    eprintln!();
    let (files, bytes) = tree_size(&region.data_dir())?;
    Ok(Data {
        copies,
        files,
        bytes,
    })
}

/// A stopped region named `name` with an empty store, ready for `tandem restore`.
async fn empty_region(bin: &Path, name: &str, repo: &Path) -> RegionProcess {
    let mut r = RegionProcess::start(
        bin,
        name,
        RegionOptions {
            extra_config: backup_config(repo, 0),
            ..RegionOptions::default()
        },
    )
    .await;
    r.kill9();
    r
}

/// The timings of the throughput part, in seconds, one entry per rep.
#[derive(Default)]
struct Times {
    restic_first: Vec<f64>,
    restic_again: Vec<f64>,
    restic_restore: Vec<f64>,
    /// restic's restore and then `sync`: restic does not fsync what it restores.
    restic_restore_sync: Vec<f64>,
    tandem_first: Vec<f64>,
    tandem_again: Vec<f64>,
    tandem_restore: Vec<f64>,
    /// `tandem backup verify --read-data` of the first snapshot's repository: reading and
    /// checking every chunk, which a restore does once as it writes.
    tandem_verify: Vec<f64>,
    raw_copy: Vec<f64>,
    /// What the first Tandem backup reported (of the last rep).
    tandem_snapshot: Value,
    /// New chunks of each unchanged Tandem re-backup (must be 0).
    again_new_chunks: Vec<u64>,
    /// Size of restic's repository after the first backup (last rep), and of Tandem's.
    restic_repo_bytes: u64,
    tandem_repo_bytes: u64,
}

/// One rep of every throughput step, on `region`'s data, in `work`.
async fn throughput_rep(
    bin: &Path,
    region: &RegionProcess,
    work: &Path,
    t: &mut Times,
) -> anyhow::Result<()> {
    let data = region.data_dir();
    // restic: init + backup, unchanged backup, restore.
    let rrepo = work.join("restic");
    sync()?;
    let (init, _) = timed(restic(&rrepo).arg("init"))?;
    let (first, _) = timed(restic(&rrepo).arg("backup").arg(&data))?;
    t.restic_first.push(init + first);
    t.restic_repo_bytes = tree_size(&rrepo)?.1;
    sync()?;
    t.restic_again
        .push(timed(restic(&rrepo).arg("backup").arg(&data))?.0);
    sync()?;
    let restored = work.join("restic-restored");
    t.restic_restore.push(
        timed(
            restic(&rrepo)
                .args(["restore", "latest", "--target"])
                .arg(&restored),
        )?
        .0,
    );
    let (flush, _) = timed(&mut Command::new("sync"))?;
    let restore = *t.restic_restore.last().expect("pushed");
    t.restic_restore_sync.push(restore + flush);
    std::fs::remove_dir_all(&restored)?;
    std::fs::remove_dir_all(&rrepo)?;

    // Tandem: first backup into a fresh repository, unchanged re-backup, restore.
    let trepo = work.join("tandem");
    let target = format!("file://{}", trepo.display());
    let config = region.config_path();
    sync()?;
    let (secs, out) = timed(&mut tandem(
        bin,
        &config,
        &["backup", "run", "--json", "--target", &target],
    ))?;
    t.tandem_first.push(secs);
    t.tandem_snapshot = serde_json::from_str(&out)?;
    t.tandem_repo_bytes = tree_size(&trepo)?.1;
    sync()?;
    let (secs, out) = timed(&mut tandem(
        bin,
        &config,
        &["backup", "run", "--json", "--target", &target],
    ))?;
    t.tandem_again.push(secs);
    let again: Value = serde_json::from_str(&out)?;
    t.again_new_chunks
        .push(again["new_chunks"].as_u64().context("new_chunks")?);
    sync()?;
    t.tandem_verify.push(
        timed(&mut tandem(
            bin,
            &config,
            &[
                "backup",
                "verify",
                "--read-data",
                "--json",
                "--target",
                &target,
            ],
        ))?
        .0,
    );
    let empty = empty_region(bin, &region.name, &trepo).await;
    sync()?;
    let (secs, _) = timed(&mut tandem(
        bin,
        &empty.config_path(),
        &[
            "restore",
            "--snapshot",
            "latest",
            "--json",
            "--target",
            &target,
        ],
    ))?;
    t.tandem_restore.push(secs);
    let (src_blobs, dst_blobs) = (
        tree_size(&data.join("blobs"))?,
        tree_size(&empty.data_dir().join("blobs"))?,
    );
    ensure!(
        src_blobs.1 == dst_blobs.1,
        "restored blobs differ: {dst_blobs:?} against {src_blobs:?}"
    );
    drop(empty);
    std::fs::remove_dir_all(&trepo)?;

    // The raw copy: the same bytes, copied and flushed.
    let dst = work.join("copy");
    sync()?;
    t.raw_copy.push(
        timed(
            Command::new("sh")
                .arg("-c")
                .arg("cp -r \"$0\" \"$1\" && sync")
                .arg(&data)
                .arg(&dst),
        )?
        .0,
    );
    std::fs::remove_dir_all(&dst)?;
    Ok(())
}

/// A snapshot the backup worker took, from its log line.
struct Snap {
    id: String,
    /// When the worker began it (the log line's time less `took_ms`): no later than the start
    /// of its metadata export.
    start: OffsetDateTime,
    /// When its manifest was written (the log line's time).
    end: OffsetDateTime,
}

/// The worker's snapshots in `log`: lines `<time> INFO …: backup snapshot=… took_ms=…`.
fn worker_snapshots(log: &str) -> Vec<Snap> {
    log.lines()
        .filter(|l| l.contains(" backup ") && l.contains("took_ms="))
        .filter_map(|l| {
            let end = OffsetDateTime::parse(l.split_whitespace().next()?, &Rfc3339).ok()?;
            let field = |k: &str| l.split_whitespace().find_map(|w| w.strip_prefix(k));
            let took: i64 = field("took_ms=")?.parse().ok()?;
            Some(Snap {
                id: field("snapshot=")?.to_owned(),
                start: end - time::Duration::milliseconds(took),
                end,
            })
        })
        .collect()
}

/// An acknowledged write: the dataset's id and when its 201 arrived.
struct Write {
    id: String,
    acked: OffsetDateTime,
}

/// Uploads small Language datasets at [`WRITES_PER_SEC`] for [`WRITE_SECS`]; the
/// acknowledged ones.
async fn write_load(api: &Api) -> anyhow::Result<Vec<Write>> {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / WRITES_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut acked = Vec::new();
    while started.elapsed() < Duration::from_secs(WRITE_SECS) {
        tick.tick().await;
        let i = acked.len();
        let form = reqwest::multipart::Form::new()
            .text("displayName", format!("w{i}"))
            .text("locale", "en-US")
            .text("kind", "Language")
            .part(
                "data",
                reqwest::multipart::Part::bytes(
                    format!("the cell membrane write number {i}\n").into_bytes(),
                )
                .file_name("data.txt"),
            );
        let r = api
            .http
            .post(format!("{}/datasets/upload", api.base))
            .header("Ocp-Apim-Subscription-Key", &api.key)
            .multipart(form)
            .send()
            .await?;
        ensure!(r.status().as_u16() == 201, "upload: {}", r.status());
        let acked_at = OffsetDateTime::now_utc();
        let v: Value = r.json().await?;
        acked.push(Write {
            id: id_of(&v),
            acked: acked_at,
        });
    }
    Ok(acked)
}

/// A restored snapshot against the claim: the writes acknowledged before its start are in it,
/// those acknowledged after its end are not.
struct Check {
    snapshot: String,
    before_start: usize,
    before_start_missing: usize,
    after_end: usize,
    after_end_present: usize,
    during: usize,
    during_present: usize,
}

/// Restores `snap` into an empty region and asks it for every write.
async fn check_snapshot(
    bin: &Path,
    name: &str,
    repo: &Path,
    key: &str,
    snap: &Snap,
    writes: &[Write],
) -> anyhow::Result<Check> {
    let mut region = empty_region(bin, name, repo).await;
    timed(&mut tandem(
        bin,
        &region.config_path(),
        &["restore", "--snapshot", &snap.id, "--json"],
    ))?;
    region.restart().await;
    let api = api(&region, key);
    let mut c = Check {
        snapshot: snap.id.clone(),
        before_start: 0,
        before_start_missing: 0,
        after_end: 0,
        after_end_present: 0,
        during: 0,
        during_present: 0,
    };
    for w in writes {
        let r = api
            .http
            .get(format!("{}/datasets/{}", api.base, w.id))
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
            .await?;
        let present = match r.status().as_u16() {
            200 => true,
            404 => false,
            s => anyhow::bail!("GET dataset {}: {s}", w.id),
        };
        if w.acked < snap.start {
            c.before_start += 1;
            c.before_start_missing += usize::from(!present);
        } else if w.acked > snap.end {
            c.after_end += 1;
            c.after_end_present += usize::from(present);
        } else {
            c.during += 1;
            c.during_present += usize::from(present);
        }
    }
    Ok(c)
}

/// The RPO part's results.
struct Rpo {
    /// Per acknowledged write, seconds from its ack to the end of the first snapshot that
    /// began after it (so surely holds it): an upper bound.
    rpo: Vec<f64>,
    /// The same to the end of the first snapshot that ended after it (the earliest that could
    /// hold it): a lower bound.
    rpo_lower: Vec<f64>,
    /// Seconds each worker snapshot took during the load.
    took: Vec<f64>,
    snapshots: usize,
    checks: Vec<Check>,
}

/// Restarts `region` with a backup every [`INTERVAL_SECS`], writes to it, and measures RPO.
async fn rpo(bin: &Path, region: &mut RegionProcess, repo: &Path) -> anyhow::Result<Rpo> {
    let config = region.config_path();
    let text = std::fs::read_to_string(&config)?;
    ensure!(text.contains("interval_secs = 0"), "unexpected config");
    std::fs::write(
        &config,
        text.replace(
            "interval_secs = 0",
            &format!("interval_secs = {INTERVAL_SECS}"),
        ),
    )?;
    let log_from = region.log().len();
    region.restart().await;
    // The worker's first snapshot (a full one, at once): the load starts after it.
    let waited = Instant::now();
    while worker_snapshots(&region.log()[log_from..]).is_empty() {
        ensure!(
            waited.elapsed() < Duration::from_secs(300),
            "no worker backup"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys = region.create_resource("rpo");
    let writer = api(region, &keys.key1);
    eprintln!("backup: RPO load, {WRITES_PER_SEC} writes/s for {WRITE_SECS} s");
    let writes = write_load(&writer).await?;
    let last = writes.last().context("no write acknowledged")?.acked;
    // Until a snapshot that began after the last ack has ended.
    let waited = Instant::now();
    let snaps = loop {
        let snaps = worker_snapshots(&region.log()[log_from..]);
        if snaps.iter().any(|s| s.start > last) {
            break snaps;
        }
        ensure!(
            waited.elapsed() < Duration::from_secs(10 * INTERVAL_SECS),
            "no snapshot after the load"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = writes[0].acked;
    let under_load: Vec<&Snap> = snaps
        .iter()
        .filter(|s| s.end >= first && s.start <= last)
        .collect();
    let mut rpo = Vec::with_capacity(writes.len());
    let mut rpo_lower = Vec::with_capacity(writes.len());
    for w in &writes {
        let s = snaps
            .iter()
            .find(|s| s.start > w.acked)
            .context("a write no snapshot holds")?;
        rpo.push((s.end - w.acked).as_seconds_f64());
        let s = snaps.iter().find(|s| s.end > w.acked).expect("a later one");
        rpo_lower.push((s.end - w.acked).as_seconds_f64());
    }
    let took = under_load
        .iter()
        .map(|s| (s.end - s.start).as_seconds_f64())
        .collect();
    // The containment claim, checked on a few snapshots taken under the load.
    let mut checks = Vec::new();
    for k in 1..=CHECKED_SNAPSHOTS {
        let s = under_load[k * under_load.len() / (CHECKED_SNAPSHOTS + 1)];
        eprintln!("backup: restoring {} to check what it holds", s.id);
        checks.push(check_snapshot(bin, &region.name, repo, &keys.key1, s, &writes).await?);
    }
    Ok(Rpo {
        rpo,
        rpo_lower,
        took,
        snapshots: under_load.len(),
        checks,
    })
}

/// Seconds, readably.
fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Runs the backup benchmarks with `reps` of each throughput step.
pub async fn run(bin: &Path, out: &Path, reps: usize) -> anyhow::Result<()> {
    let reps = reps.max(1);
    let version = Command::new("restic").arg("version").output();
    let restic_version = match version {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => anyhow::bail!("restic not found: install it (Debian: `apt-get install -y restic`)"),
    };
    let repos = tempfile::tempdir()?;
    let rpo_repo: PathBuf = repos.path().join("worker");
    let mut region = RegionProcess::start(
        bin,
        "westus",
        RegionOptions {
            extra_config: backup_config(&rpo_repo, 0),
            ..RegionOptions::default()
        },
    )
    .await;
    let t = Instant::now();
    let data = populate(&region).await?;
    eprintln!(
        "backup: region holds {} files, {:.1} MB ({} audio copies), populated in {:.0} s",
        data.files,
        data.bytes as f64 / 1e6,
        data.copies,
        t.elapsed().as_secs_f64()
    );

    let mut times = Times::default();
    for rep in 0..reps {
        let work = tempfile::tempdir()?;
        throughput_rep(bin, &region, work.path(), &mut times).await?;
        eprintln!("backup: throughput {}/{reps}", rep + 1);
    }
    let rpo = rpo(bin, &mut region, &rpo_repo).await?;
    drop(region);

    let m = |xs: &[f64]| median(xs);
    let mb = data.bytes as f64 / 1e6;
    let rate = |s: f64| format!("{:.0} MB/s", mb / s);
    println!(
        "\n### Backups (issue #5): {reps} runs each (medians), warm page cache\n\n\
         Data: a region's data directory of {} files, {:.1} MB: the biology set (50 WAVs as an \
         Acoustic dataset, the language data, a trained model, an endpoint) and {} more \
         Acoustic datasets of the same 50 recordings, each copy made unique (random \
         least-significant bits). {restic_version}.\n",
        data.files, mb, data.copies
    );
    println!("| step | Tandem | anchor | ratio | goal |");
    println!("|---|---|---|---|---|");
    let (tf, rf) = (m(&times.tandem_first), m(&times.restic_first));
    println!(
        "| first backup (fresh repository) | {} ({}) | restic init + backup: {} ({}) | {:.2}× | ≤ 1.0× |",
        secs(tf),
        rate(tf),
        secs(rf),
        rate(rf),
        tf / rf
    );
    let (ta, ra) = (m(&times.tandem_again), m(&times.restic_again));
    println!(
        "| unchanged re-backup | {} | restic: {} | {:.2}× | ≤ 1 s |",
        secs(ta),
        secs(ra),
        ta / ra
    );
    let (tr, rr, raw) = (
        m(&times.tandem_restore),
        m(&times.restic_restore),
        m(&times.raw_copy),
    );
    println!(
        "| restore | {} ({}) | restic: {} ({}) | {:.2}× | ≤ 1.0× |",
        secs(tr),
        rate(tr),
        secs(rr),
        rate(rr),
        tr / rr
    );
    let rrs = m(&times.restic_restore_sync);
    println!(
        "| restore | {} | restic + `sync`: {} ({}) | {:.2}× | |",
        secs(tr),
        secs(rrs),
        rate(rrs),
        tr / rrs
    );
    println!(
        "| restore | {} | `cp -r` + `sync`: {} ({}) | {:.2}× | ≤ 2× |",
        secs(tr),
        secs(raw),
        rate(raw),
        tr / raw
    );
    println!(
        "\nEvery step is one process, timed from its start to its exit, after a `sync`. Tandem's \
         backup fsyncs each chunk file, restic's each pack file; Tandem's restore checks every \
         chunk as it reads it, writes each blob once its hash matches, fsyncs all blobs and \
         their directories at the end, then imports the metadata; restic's restore does not \
         fsync (hence the row with `sync` after it); `cp -r` is followed by one `sync`."
    );
    println!(
        "\nRepository after the first backup: Tandem {:.1} MB, restic {:.1} MB. New chunks of \
         the unchanged re-backups: {:?}. `tandem backup verify --read-data` (reading and \
         checking every chunk, as a restore does once) took {}.",
        times.tandem_repo_bytes as f64 / 1e6,
        times.restic_repo_bytes as f64 / 1e6,
        times.again_new_chunks,
        secs(m(&times.tandem_verify))
    );

    let i = INTERVAL_SECS as f64;
    let (p50, p99) = (percentile(&rpo.rpo, 50.0), percentile(&rpo.rpo, 99.0));
    let max = rpo.rpo.iter().copied().fold(0.0, f64::max);
    let lower = |p: f64| percentile(&rpo.rpo_lower, p);
    let lower_max = rpo.rpo_lower.iter().copied().fold(0.0, f64::max);
    println!(
        "\n### RPO under load: interval I = {INTERVAL_SECS} s, {} acknowledged writes over \
         {WRITE_SECS} s, {} snapshots\n",
        rpo.rpo.len(),
        rpo.snapshots
    );
    println!("| | seconds | × I | lower bound, seconds | × I |");
    println!("|---|---|---|---|---|");
    for (name, v, lo) in [
        ("p50", p50, lower(50.0)),
        ("p99", p99, lower(99.0)),
        ("max", max, lower_max),
    ] {
        println!(
            "| {name} | {v:.2} | {:.2} | {lo:.2} | {:.2} |",
            v / i,
            lo / i
        );
    }
    println!(
        "\nA write counts as held by the first snapshot that began after its acknowledgement \
         (the metadata export, one read transaction, begins after the snapshot does): the RPO \
         figures are upper bounds. The lower bound counts it as held by the first snapshot that \
         ended after it."
    );
    println!(
        "\nA worker snapshot took {} (median; max {}) under the load.",
        secs(m(&rpo.took)),
        secs(rpo.took.iter().copied().fold(0.0, f64::max))
    );
    println!("\n| restored snapshot | acked before its start: missing | acked after its end: present | acked during it: present |");
    println!("|---|---|---|---|");
    for c in &rpo.checks {
        println!(
            "| {} | {} of {} | {} of {} | {} of {} |",
            c.snapshot,
            c.before_start_missing,
            c.before_start,
            c.after_end_present,
            c.after_end,
            c.during_present,
            c.during
        );
    }

    let checks: Vec<Value> = rpo
        .checks
        .iter()
        .map(|c| {
            json!({"snapshot": c.snapshot, "before_start": c.before_start,
                   "before_start_missing": c.before_start_missing, "after_end": c.after_end,
                   "after_end_present": c.after_end_present, "during": c.during,
                   "during_present": c.during_present})
        })
        .collect();
    save(
        out,
        "backup",
        &json!({
            "reps": reps,
            "restic": restic_version,
            "data": {"files": data.files, "bytes": data.bytes, "audio_copies": data.copies},
            "tandem_snapshot": times.tandem_snapshot,
            "repo_bytes": {"tandem": times.tandem_repo_bytes, "restic": times.restic_repo_bytes},
            "seconds": {
                "restic_init_and_first_backup": times.restic_first,
                "restic_unchanged_backup": times.restic_again,
                "restic_restore": times.restic_restore,
                "restic_restore_and_sync": times.restic_restore_sync,
                "tandem_first_backup": times.tandem_first,
                "tandem_unchanged_backup": times.tandem_again,
                "tandem_restore": times.tandem_restore,
                "tandem_verify_read_data": times.tandem_verify,
                "raw_copy_and_sync": times.raw_copy,
            },
            "medians_s": {"tandem_first": tf, "restic_first": rf, "tandem_again": ta,
                          "restic_again": ra, "tandem_restore": tr, "restic_restore": rr,
                          "restic_restore_and_sync": rrs,
                          "raw_copy": raw},
            "ratios": {"backup": tf / rf, "unchanged_backup": ta / ra, "restore": tr / rr,
                       "restore_over_restic_and_sync": tr / rrs,
                       "restore_over_raw_copy": tr / raw},
            "again_new_chunks": times.again_new_chunks,
            "rpo": {"interval_s": INTERVAL_SECS, "writes_per_s": WRITES_PER_SEC,
                    "write_s": WRITE_SECS, "writes": rpo.rpo.len(), "snapshots": rpo.snapshots,
                    "p50_s": p50, "p99_s": p99, "max_s": max, "p50_over_i": p50 / i,
                    "p99_over_i": p99 / i, "snapshot_took_s": rpo.took, "per_write_s": rpo.rpo,
                    "lower_bound": {"p50_s": lower(50.0), "p99_s": lower(99.0),
                                    "max_s": lower_max, "per_write_s": rpo.rpo_lower},
                    "checks": checks},
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_log_lines_are_parsed() {
        let log = "2026-11-26T22:42:09.500000Z  INFO tandem_server::backup::worker: backup \
                   snapshot=20261126T224209Z-0a1b2c3d files=3 bytes=9 new_chunks=1 new_bytes=9 \
                   took_ms=250\n\
                   2026-11-26T22:42:10.000000Z  INFO tandem_server::backup::worker: backup prune \
                   forgotten=0\n";
        let s = worker_snapshots(log);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].id, "20261126T224209Z-0a1b2c3d");
        assert_eq!((s[0].end - s[0].start).whole_milliseconds(), 250);
    }
}
