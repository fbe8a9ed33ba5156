//! `tandem-bench`: reproducible figures for BENCHMARKS.md.
//!
//! Each benchmark runs the engine alone (in this process) and the same work through a real
//! `tandem serve` region on loopback, interleaved so that machine noise hits both alike, and
//! reports medians and ratios. Results are printed as Markdown and written as JSON to
//! `bench/results/`.

mod backup;
mod copy;
mod custom_speech;
mod custom_voice;
mod failover;
mod gateway;
mod http_path;
mod metadata;
mod nodes;
mod replication;
mod speaker;
mod stats;
mod storage;
mod stt;
mod tts;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Benchmarks for Tandem (run `make bench`, or one of the subcommands).
#[derive(Parser)]
struct Cli {
    /// The `tandem` binary to start regions from (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/tandem", global = true)]
    bin: PathBuf,
    /// Where JSON results go.
    #[arg(long, default_value = "bench/results", global = true)]
    out: PathBuf,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Whisper tiny.en on the 50 biology recordings: WER and real-time factor, engine alone and
    /// through HTTP.
    Stt {
        /// Only the first N recordings.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Text-to-speech real-time factor through HTTP against the engine alone (goal ≤ 1.1×).
    Tts {
        /// Repetitions of each sentence.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Latency the HTTP path adds to a tiny request.
    Http {
        /// Requests to time.
        #[arg(long, default_value_t = 200)]
        n: usize,
    },
    /// Client continuity: failed calls while the primary dies, added latency once the breaker is
    /// open, first-call latency with a hanging primary, p99 with hedging.
    Failover,
    /// Gateway overhead against direct calls, with wrk (apt-get install wrk).
    Gateway {
        /// Interleaved rounds of 5 s each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Speaker recognition: verify latency, and identify latency against 50 profiles.
    Speaker {
        /// Timed requests of each kind.
        #[arg(long, default_value_t = 20)]
        n: usize,
    },
    /// Paired-region speaker replication: lag under an enrollment load, and the time from
    /// the primary's death to the first verify served by the pair.
    Replication {
        /// Concurrent enrolling clients.
        #[arg(long, default_value_t = 2)]
        enrollers: usize,
        /// Enrollments per client.
        #[arg(long, default_value_t = 100)]
        n: usize,
        /// Kill/restart cycles of the primary.
        #[arg(long, default_value_t = 3)]
        kills: usize,
    },
    /// Custom Speech on the 50 biology recordings against Microsoft's guide times: upload,
    /// model creation, evaluation (base and custom WER, all 50 and held-out half B), endpoint
    /// deployment, and the real-time factor of `?cid=` recognition.
    CustomSpeech {
        /// Repetitions of the fast steps (upload, model creation, deployment).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Repetitions of the evaluation (100 decodes each).
        #[arg(long, default_value_t = 1)]
        evals: usize,
    },
    /// Models_CopyTo between two regions on loopback (v3.2 and v3.1) against a raw HTTP
    /// transfer of the same artifact bytes, and the copy's deployment in the target: the
    /// biology model, and a model trained from a synthetic corpus to at least `--large-mb` MB.
    Copy {
        /// Copies of each kind (and raw transfers).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Least size of the large (synthetic) artifact, in MB; 0 skips it.
        #[arg(long, default_value_t = 100)]
        large_mb: u64,
    },
    /// Backups (issue #5) against restic and a raw copy on the same data: first and unchanged
    /// backup, restore; and the RPO of acknowledged writes under load.
    Backup {
        /// Repetitions of each backup and restore.
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Blob storage: a model artifact put and read back through `BlobStore` on S3 against the
    /// local disk (run under `scripts/s3-server.sh run`, which starts Garage).
    Storage {
        /// Size of the artifact, in MB.
        #[arg(long, default_value_t = 100)]
        mb: usize,
        /// Uploads and downloads per backend.
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// One node against two nodes of one region (sharing its data directory): TTS and STT
    /// requests per second under the same closed-loop load, and per core.
    Nodes {
        /// Seconds of load per configuration.
        #[arg(long, default_value_t = 15)]
        secs: u64,
        /// Concurrent clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// `engine_workers` of each node (default: the region's default sizing).
        #[arg(long)]
        engine_workers: Option<usize>,
    },
    /// Custom voice: deployment time beside the guide's 3 minutes, synthesis RTF through
    /// `?deploymentId=` against Piper alone, and a voice model's copy to another region against
    /// a raw HTTP transfer of the same bytes (needs `tandem models pull`).
    CustomVoice {
        /// Repetitions (deployments of each kind, and of each sentence).
        #[arg(long, default_value_t = 3)]
        reps: usize,
    },
    /// Metadata operation latency, PostgreSQL against SQLite (run under `scripts/pg-server.sh
    /// run`, which starts a throwaway PostgreSQL, or give `--pg-url`).
    Metadata {
        /// Timed calls of each operation per backend.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Alternating rounds (backends take turns).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// A PostgreSQL database to migrate and write to (default: `TANDEM_TEST_PG_URL`).
        #[arg(long)]
        pg_url: Option<String>,
    },
    /// Everything above but `backup`, `storage`, `nodes`, `custom-voice` and `metadata`.
    All,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.bin.exists(),
        "{} not found: run `cargo build --release --bin tandem` first",
        cli.bin.display()
    );
    std::fs::create_dir_all(&cli.out)?;
    let model_dir = tandem_core::default_model_dir();
    match cli.what {
        What::Stt { limit } => stt::run(&cli.bin, &cli.out, &model_dir, limit).await?,
        What::Tts { reps } => tts::run(&cli.bin, &cli.out, reps).await?,
        What::Http { n } => http_path::run(&cli.bin, &cli.out, n).await?,
        What::Failover => failover::run(&cli.bin, &cli.out).await?,
        What::Gateway { rounds } => gateway::run(&cli.bin, &cli.out, rounds).await?,
        What::Speaker { n } => speaker::run(&cli.bin, &cli.out, n).await?,
        What::Replication {
            enrollers,
            n,
            kills,
        } => replication::run(&cli.bin, &cli.out, enrollers, n, kills).await?,
        What::CustomSpeech { reps, evals } => {
            custom_speech::run(&cli.bin, &cli.out, reps, evals).await?
        }
        What::Copy { reps, large_mb } => copy::run(&cli.bin, &cli.out, reps, large_mb).await?,
        What::Backup { reps } => backup::run(&cli.bin, &cli.out, reps).await?,
        What::Storage { mb, reps } => storage::run(&cli.out, mb, reps).await?,
        What::CustomVoice { reps } => custom_voice::run(&cli.bin, &cli.out, reps).await?,
        What::Metadata { n, rounds, pg_url } => metadata::run(&cli.out, n, rounds, pg_url).await?,
        What::Nodes {
            secs,
            clients,
            engine_workers,
        } => nodes::run(&cli.bin, &cli.out, secs, clients, engine_workers).await?,
        What::All => {
            stt::run(&cli.bin, &cli.out, &model_dir, None).await?;
            tts::run(&cli.bin, &cli.out, 5).await?;
            http_path::run(&cli.bin, &cli.out, 200).await?;
            failover::run(&cli.bin, &cli.out).await?;
            gateway::run(&cli.bin, &cli.out, 3).await?;
            speaker::run(&cli.bin, &cli.out, 20).await?;
            replication::run(&cli.bin, &cli.out, 2, 100, 3).await?;
            custom_speech::run(&cli.bin, &cli.out, 5, 1).await?;
            copy::run(&cli.bin, &cli.out, 5, 100).await?;
        }
    }
    Ok(())
}
