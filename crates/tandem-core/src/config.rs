//! A region's configuration: one documented serde tree, defaults in functions.
//!
//! The same fields can be set in `region.toml`, by a `tandem serve` flag or by a `TANDEM_*`
//! environment variable; the binary merges them (flag > env > file > default). Secrets can be
//! given inline or, better, as `*_file` paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CoreError, RegionName, Result};

/// The version of the config file format this build reads and writes.
pub const CONFIG_FORMAT_VERSION: u32 = 1;

/// Everything a `tandem serve` process needs to run one region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Config format version; must be [`CONFIG_FORMAT_VERSION`] or absent.
    #[serde(default = "default_format_version")]
    pub format_version: u32,
    /// The region's name, e.g. `westus`. Keys and tokens are valid only here.
    pub region: RegionName,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory for the region's metadata database, blobs and generated secrets.
    pub data_dir: PathBuf,
    /// Where speech models are cached. Defaults to `$TANDEM_MODEL_DIR`, else
    /// `$XDG_CACHE_HOME/tandem/models`, else `~/.cache/tandem/models`.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// Bearer token for the admin API. Without it (and without `admin_token_file`) the admin API
    /// answers 403 to everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// File holding the admin token (first line).
    #[serde(default)]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the STS signing secret. Defaults to `<data_dir>/sts.secret`, created with
    /// 256 random bits on first start. Nodes of one region must share it.
    #[serde(default)]
    pub token_secret_file: Option<PathBuf>,
    /// Lifetime of STS tokens, in seconds (Azure: 600).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// This node's name among the nodes of its region, the holder of the job leases it takes.
    /// Stable across restarts, so a restarted node takes its own jobs back at once. Default:
    /// `<host name>@<listen address>` (as configured: with `listen` on port 0, nodes on one host
    /// share that name; give each its own when several share a database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Where the per-resource concurrency quota is counted: `node` (in memory, each node
    /// enforcing the whole limit: the default, and right for a region of one node) or
    /// `region` (in the shared store, so the limit holds across every node of the region, at
    /// the cost of two store writes per request).
    #[serde(default)]
    pub quota_scope: QuotaScope,
    /// How long a job lease lasts without renewal, in seconds (30): when a node dies, another
    /// node of the region takes over its training, evaluation and copy jobs this long after its
    /// last renewal. Renewed every third of it.
    #[serde(default = "default_job_lease_secs")]
    pub job_lease_secs: u64,
    /// Concurrent requests allowed per resource before 429 (Azure's default: 100).
    #[serde(default = "default_concurrency")]
    pub default_concurrency: u32,
    /// Speech engine worker threads. Defaults to the number of CPU cores.
    #[serde(default)]
    pub engine_workers: Option<usize>,
    /// Requests allowed to wait for an engine worker before the region answers 503.
    #[serde(default = "default_queue_depth")]
    pub engine_queue_depth: usize,
    /// Longest audio accepted by short-audio recognition, in seconds (Azure: 60).
    #[serde(default = "default_max_audio_secs")]
    pub max_audio_secs: u32,
    /// Largest request body accepted, in bytes (413 above it).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest SSML document accepted, in bytes.
    #[serde(default = "default_max_ssml")]
    pub max_ssml_bytes: usize,
    /// Whisper `audio_ctx` for clips short enough to use it (0 = full 30 s window).
    #[serde(default = "default_audio_ctx")]
    pub whisper_audio_ctx: u32,
    /// Storage backends.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Other regions this one talks to (replication, model copy), as `[[peers]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerConfig>,
    /// The paired region, one of `peers`: speaker data replicates to it continuously, and it
    /// serves this region's speaker traffic while this region is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<RegionName>,
    /// Secret shared by every region of the federation; authenticates inter-region calls.
    /// Prefer `peer_secret_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_secret: Option<String>,
    /// File holding the peer secret (first line, at least 32 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_secret_file: Option<PathBuf>,
    /// Paired-region replication tuning.
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// Custom Speech (`/speechtotext/v3.x`): upload limits and where `contentUrl` may point.
    #[serde(default)]
    pub custom_speech: CustomSpeechConfig,
    /// Automatic backups of everything the region holds.
    #[serde(default)]
    pub backup: BackupConfig,
}

/// Another region, as this one reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its region name.
    pub name: RegionName,
    /// Its base URL, e.g. `http://10.0.2.5:5000`.
    pub endpoint: String,
}

impl std::str::FromStr for PeerConfig {
    type Err = CoreError;
    /// `NAME=URL`, as given to `--peer`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, endpoint) = s.split_once('=').ok_or_else(|| {
            CoreError::Config(format!(
                "peer {s:?}: expected NAME=URL, e.g. eastus=http://10.0.2.5:5000"
            ))
        })?;
        let peer = PeerConfig {
            name: RegionName::new(name.trim())?,
            endpoint: endpoint.trim().to_owned(),
        };
        peer.validate()?;
        Ok(peer)
    }
}

impl PeerConfig {
    fn validate(&self) -> Result<()> {
        let e = &self.endpoint;
        let rest = e
            .strip_prefix("http://")
            .or_else(|| e.strip_prefix("https://"))
            .ok_or_else(|| {
                CoreError::Config(format!(
                    "peer {}: endpoint {e:?} must start with http:// or https://",
                    self.name
                ))
            })?;
        if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
            return Err(CoreError::Config(format!(
                "peer {}: endpoint {e:?} has no host",
                self.name
            )));
        }
        Ok(())
    }
}

/// How a region follows its pair's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// Longest a pull waits at the pair for new changes (long poll), in ms (5 000). It also
    /// bounds how late the pair learns of a resource created or rotated by the CLI.
    pub poll_wait_ms: u64,
    /// Changes per pull at most (256).
    pub batch_limit: u32,
    /// First wait after a failed pull, in ms (250); doubles up to `retry_max_ms`.
    pub retry_base_ms: u64,
    /// Longest wait between failed pulls, in ms (5 000).
    pub retry_max_ms: u64,
    /// After a restart, how long the region keeps refusing speaker traffic while it cannot
    /// reach its pair to catch up, in ms (15 000). Past it the region serves anyway: the pair
    /// is presumably down too, and whatever was written at both sides merges later.
    pub catchup_timeout_ms: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            poll_wait_ms: 5_000,
            batch_limit: 256,
            retry_base_ms: 250,
            retry_max_ms: 5_000,
            catchup_timeout_ms: 15_000,
        }
    }
}

/// Custom Speech datasets: how large an upload may be, and which hosts the server may fetch a
/// dataset's `contentUrl` from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomSpeechConfig {
    /// Hosts a `contentUrl` may name, e.g. `["data.example.com", "10.0.0.5:8080"]`. An entry
    /// without a port allows only the scheme's default port. Empty (the default): the server
    /// fetches nothing, and creating a dataset from a URL is refused. Names are compared, never
    /// resolved: a host not listed is never fetched, whatever address it has.
    pub content_url_allow_hosts: Vec<String>,
    /// Largest dataset upload (multipart body) or `contentUrl` download, in bytes (512 MiB).
    pub max_upload_bytes: usize,
    /// How long a `contentUrl` download may take, in ms (120 000).
    pub content_url_timeout_ms: u64,
    /// Largest file inside an uploaded zip, decompressed, in bytes (64 MiB).
    pub max_zip_entry_bytes: u64,
    /// Largest total of an uploaded zip, decompressed, in bytes (1 GiB).
    pub max_zip_total_bytes: u64,
    /// How long endpoint and base-model logs (opt-in content logging: audio and transcription)
    /// are kept, in days (30, as in Azure). Older logs are deleted by a sweep every hour.
    pub log_retention_days: u32,
    /// Chunk size of model copies sent to other regions, in bytes (4 MiB; 1 KiB to 16 MiB).
    pub copy_chunk_bytes: usize,
}

impl Default for CustomSpeechConfig {
    fn default() -> Self {
        CustomSpeechConfig {
            content_url_allow_hosts: Vec::new(),
            max_upload_bytes: 512 * 1024 * 1024,
            content_url_timeout_ms: 120_000,
            max_zip_entry_bytes: 64 * 1024 * 1024,
            max_zip_total_bytes: 1024 * 1024 * 1024,
            log_retention_days: 30,
            copy_chunk_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Automatic, verified backups: where they go, how often, how long they are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The backup repository: `file:///path` (another disk or mount) or `s3://bucket/prefix`.
    /// Default: `file://<data_dir>-backups`, a sibling of the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Seconds between two automatic backups (60). 0 turns the backup worker off.
    pub interval_secs: u64,
    /// A key file (32 random bytes, hex; `tandem backup keygen`): when set, chunks and
    /// manifests are encrypted at rest (XChaCha20-Poly1305). Keep a copy away from the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Retention: the newest snapshots kept whatever their age (10).
    pub keep_last: u32,
    /// Retention: the newest snapshot of each of the last N hours that have one (24).
    pub keep_hourly: u32,
    /// Retention: the newest snapshot of each of the last N days that have one (7).
    pub keep_daily: u32,
    /// Seconds between two automatic prunes by the worker (3 600). 0: never prune
    /// automatically (`tandem backup prune` still does).
    pub prune_interval_secs: u64,
    /// S3: the endpoint URL of an S3-compatible server (e.g. `http://127.0.0.1:3900`); none for
    /// AWS. Also `AWS_ENDPOINT_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// S3: the signing region (`us-east-1`; Garage uses `garage`). Also `AWS_REGION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// S3: the access key id. Also `AWS_ACCESS_KEY_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    /// S3: a file whose first line is the secret access key. Also `AWS_SECRET_ACCESS_KEY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key_file: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            target: None,
            interval_secs: 60,
            key_file: None,
            keep_last: 10,
            keep_hourly: 24,
            keep_daily: 7,
            prune_interval_secs: 3_600,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key_file: None,
        }
    }
}

/// Where a per-resource concurrency quota is counted ([`RegionConfig::quota_scope`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaScope {
    /// In this process's memory.
    #[default]
    Node,
    /// In the region's shared store, across all its nodes.
    Region,
}

/// Where a region keeps its metadata and blobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Metadata database URL. Default: `sqlite://<data_dir>/tandem.db`.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// Blob store URL. Default: `file://<data_dir>/blobs`. `s3://bucket/prefix` keeps blobs
    /// in an S3-compatible bucket, with the `s3_*` settings below (or the `AWS_*` environment).
    #[serde(default)]
    pub blob_url: Option<String>,
    /// Apply pending metadata migrations when the region starts (true). With several nodes on
    /// one database, set it to false and run `tandem migrate` once per upgrade.
    #[serde(default = "default_true")]
    pub migrate_on_start: bool,
    /// S3: the endpoint URL of an S3-compatible server; none for AWS. Also `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// S3: the signing region (`us-east-1`; Garage uses `garage`). Also `AWS_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// S3: the access key id. Also `AWS_ACCESS_KEY_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    /// S3: a file whose first line is the secret access key. Also `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key_file: Option<PathBuf>,
}

fn default_format_version() -> u32 {
    CONFIG_FORMAT_VERSION
}
/// This machine's name (`/etc/hostname`, else `$HOSTNAME`, else `localhost`): recorded in each
/// backup snapshot, and the default prefix of a node's name.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn default_true() -> bool {
    true
}
impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            metadata_url: None,
            blob_url: None,
            migrate_on_start: true,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key_file: None,
        }
    }
}
fn default_job_lease_secs() -> u64 {
    30
}
fn default_listen() -> SocketAddr {
    "127.0.0.1:5000".parse().expect("valid literal")
}
fn default_token_ttl() -> u64 {
    600
}
fn default_concurrency() -> u32 {
    100
}
fn default_queue_depth() -> usize {
    256
}
fn default_max_audio_secs() -> u32 {
    60
}
fn default_max_body() -> usize {
    32 * 1024 * 1024
}
fn default_max_ssml() -> usize {
    64 * 1024
}
fn default_audio_ctx() -> u32 {
    768
}

impl RegionConfig {
    /// A config with every default, for `region` and `data_dir`.
    pub fn new(region: RegionName, data_dir: PathBuf) -> Self {
        Self {
            format_version: CONFIG_FORMAT_VERSION,
            region,
            listen: default_listen(),
            data_dir,
            model_dir: None,
            admin_token: None,
            admin_token_file: None,
            token_secret_file: None,
            token_ttl_secs: default_token_ttl(),
            node_name: None,
            quota_scope: QuotaScope::default(),
            job_lease_secs: default_job_lease_secs(),
            default_concurrency: default_concurrency(),
            engine_workers: None,
            engine_queue_depth: default_queue_depth(),
            max_audio_secs: default_max_audio_secs(),
            max_body_bytes: default_max_body(),
            max_ssml_bytes: default_max_ssml(),
            whisper_audio_ctx: default_audio_ctx(),
            storage: StorageConfig::default(),
            peers: Vec::new(),
            pair: None,
            peer_secret: None,
            peer_secret_file: None,
            replication: ReplicationConfig::default(),
            custom_speech: CustomSpeechConfig::default(),
            backup: BackupConfig::default(),
        }
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| CoreError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<()> {
        if self.format_version != CONFIG_FORMAT_VERSION {
            return Err(CoreError::Config(format!(
                "format_version {} is not supported (this build reads {CONFIG_FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.token_ttl_secs == 0 {
            return Err(CoreError::Config("token_ttl_secs must be > 0".into()));
        }
        if self.default_concurrency == 0 {
            return Err(CoreError::Config("default_concurrency must be > 0".into()));
        }
        if self.max_audio_secs == 0 || self.max_audio_secs > 600 {
            return Err(CoreError::Config("max_audio_secs must be 1..=600".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.peers {
            p.validate()?;
            if p.name == self.region {
                return Err(CoreError::Config(format!(
                    "peer {}: a region is not its own peer",
                    p.name
                )));
            }
            if !seen.insert(&p.name) {
                return Err(CoreError::Config(format!(
                    "peer {} is listed twice",
                    p.name
                )));
            }
        }
        if let Some(pair) = &self.pair {
            if self.peer(pair).is_none() {
                return Err(CoreError::Config(format!(
                    "pair {pair} is not one of the peers: add it with [[peers]] name = \"{pair}\" endpoint = \"http://…\" (or --peer {pair}=http://…)"
                )));
            }
            if self.peer_secret.is_none() && self.peer_secret_file.is_none() {
                return Err(CoreError::Config(format!(
                    "pair {pair} needs a peer secret shared by both regions: set peer_secret_file (or --peer-secret-file)"
                )));
            }
        }
        if self.custom_speech.log_retention_days == 0 {
            return Err(CoreError::Config(
                "custom_speech.log_retention_days must be > 0 (logging is opt-in per endpoint; turn it off there)".into(),
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.custom_speech.copy_chunk_bytes) {
            return Err(CoreError::Config(
                "custom_speech.copy_chunk_bytes must be between 1024 and 16777216".into(),
            ));
        }
        let b = &self.backup;
        if b.keep_last == 0 && b.keep_hourly == 0 && b.keep_daily == 0 {
            return Err(CoreError::Config(
                "backup: keep_last, keep_hourly and keep_daily are all 0, so prune would keep nothing; keep at least the last snapshot".into(),
            ));
        }
        if let Some(t) = &b.target {
            if !(t.starts_with("file:///") || t.starts_with("s3://")) {
                return Err(CoreError::Config(format!(
                    "backup.target {t:?} is neither file:///absolute/path nor s3://bucket/prefix"
                )));
            }
        }
        let r = &self.replication;
        if r.batch_limit == 0 || r.poll_wait_ms == 0 || r.retry_base_ms == 0 {
            return Err(CoreError::Config(
                "replication: batch_limit, poll_wait_ms and retry_base_ms must be > 0".into(),
            ));
        }
        Ok(())
    }

    /// The peer named `name`, if configured.
    pub fn peer(&self, name: &RegionName) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| &p.name == name)
    }

    /// The paired region's peer entry, if a pair is configured.
    pub fn pair_peer(&self) -> Option<&PeerConfig> {
        self.pair.as_ref().and_then(|p| self.peer(p))
    }

    /// The peer secret, from `peer_secret` or the first line of `peer_secret_file`; `None` when
    /// neither is set. Shorter than 32 characters is refused.
    pub fn peer_secret(&self) -> Result<Option<String>> {
        let secret = match (&self.peer_secret, &self.peer_secret_file) {
            (Some(s), _) => s.trim().to_owned(),
            (None, None) => return Ok(None),
            (None, Some(p)) => {
                let s = std::fs::read_to_string(p).map_err(|e| {
                    CoreError::Config(format!("peer_secret_file {}: {e}", p.display()))
                })?;
                s.lines().next().unwrap_or("").trim().to_owned()
            }
        };
        if secret.len() < 32 {
            return Err(CoreError::Config(
                "the peer secret must be at least 32 characters (e.g. `openssl rand -hex 32`)"
                    .into(),
            ));
        }
        Ok(Some(secret))
    }

    /// `data_dir` as an absolute path (relative to the working directory), so that the
    /// derived storage URLs are valid whatever directory the process runs in.
    pub fn absolute_data_dir(&self) -> PathBuf {
        std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone())
    }

    /// The metadata URL, defaulted.
    pub fn metadata_url(&self) -> String {
        self.storage.metadata_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.absolute_data_dir().join("tandem.db").display()
            )
        })
    }

    /// The backup repository URL, defaulted to `file://<data_dir>-backups`.
    pub fn backup_target(&self) -> String {
        self.backup.target.clone().unwrap_or_else(|| {
            let dir = self.absolute_data_dir();
            let mut name = dir.file_name().unwrap_or_default().to_os_string();
            name.push("-backups");
            format!("file://{}", dir.with_file_name(name).display())
        })
    }

    /// The blob store URL, defaulted.
    pub fn blob_url(&self) -> String {
        self.storage.blob_url.clone().unwrap_or_else(|| {
            format!(
                "file://{}",
                self.absolute_data_dir().join("blobs").display()
            )
        })
    }

    /// The model cache directory, defaulted as documented on [`RegionConfig::model_dir`].
    pub fn model_dir(&self) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(default_model_dir)
    }

    /// This node's name, defaulted to `<host name>@<listen address>`.
    pub fn node_name(&self) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(|| format!("{}@{}", host_name(), self.listen))
    }

    /// The STS secret file, defaulted.
    pub fn token_secret_path(&self) -> PathBuf {
        self.token_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sts.secret"))
    }

    /// The admin token, from `admin_token` or the first line of `admin_token_file`.
    pub fn admin_token(&self) -> Result<Option<String>> {
        if let Some(t) = &self.admin_token {
            return Ok(Some(t.clone()));
        }
        match &self.admin_token_file {
            None => Ok(None),
            Some(p) => {
                let s = std::fs::read_to_string(p).map_err(|e| {
                    CoreError::Config(format!("admin_token_file {}: {e}", p.display()))
                })?;
                let t = s.lines().next().unwrap_or("").trim().to_owned();
                if t.is_empty() {
                    return Err(CoreError::Config(format!(
                        "admin_token_file {} is empty",
                        p.display()
                    )));
                }
                Ok(Some(t))
            }
        }
    }
}

/// The default model cache directory (see [`RegionConfig::model_dir`]).
pub fn default_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TANDEM_MODEL_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("tandem/models");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/tandem/models")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_gets_defaults() {
        let c = RegionConfig::from_toml("region = \"westus\"\ndata_dir = \"/tmp/w\"\n").unwrap();
        assert_eq!(c.token_ttl_secs, 600);
        assert_eq!(c.default_concurrency, 100);
        assert_eq!(c.metadata_url(), "sqlite:///tmp/w/tandem.db");
        assert_eq!(c.blob_url(), "file:///tmp/w/blobs");
    }

    #[test]
    fn custom_speech_section_has_defaults_and_can_be_set() {
        let c = RegionConfig::from_toml("region = \"westus\"\ndata_dir = \"/tmp/w\"\n").unwrap();
        assert!(c.custom_speech.content_url_allow_hosts.is_empty());
        assert_eq!(c.custom_speech.max_upload_bytes, 512 * 1024 * 1024);
        let c = RegionConfig::from_toml(
            "region = \"westus\"\ndata_dir = \"/tmp/w\"\n[custom_speech]\ncontent_url_allow_hosts = [\"data.example.com\"]\nmax_zip_entry_bytes = 1000\n",
        )
        .unwrap();
        assert_eq!(
            c.custom_speech.content_url_allow_hosts,
            vec!["data.example.com".to_owned()]
        );
        assert_eq!(c.custom_speech.max_zip_entry_bytes, 1000);
        assert_eq!(c.custom_speech.content_url_timeout_ms, 120_000);
        assert_eq!(c.custom_speech.log_retention_days, 30);
        assert_eq!(c.custom_speech.copy_chunk_bytes, 4 * 1024 * 1024);
        assert!(RegionConfig::from_toml(
            "region = \"w\"\ndata_dir = \"/x\"\n[custom_speech]\ncopy_chunk_bytes = 10\n"
        )
        .and_then(|c| c.validate())
        .is_err());
        assert!(RegionConfig::from_toml(
            "region = \"westus\"\ndata_dir = \"/tmp/w\"\n[custom_speech]\nallow = 1\n"
        )
        .is_err());
    }

    #[test]
    fn backup_section_has_defaults_and_is_checked() {
        let c = RegionConfig::from_toml("region = \"westus\"\ndata_dir = \"/tmp/w\"\n").unwrap();
        assert_eq!(c.backup.interval_secs, 60);
        assert_eq!(c.backup_target(), "file:///tmp/w-backups");
        assert_eq!(
            (
                c.backup.keep_last,
                c.backup.keep_hourly,
                c.backup.keep_daily
            ),
            (10, 24, 7)
        );
        let c = RegionConfig::from_toml(
            "region = \"w\"\ndata_dir = \"/x\"\n[backup]\ntarget = \"s3://b/p\"\ninterval_secs = 5\n",
        )
        .unwrap();
        assert_eq!(c.backup_target(), "s3://b/p");
        assert_eq!(c.backup.interval_secs, 5);
        for bad in [
            "[backup]\ntarget = \"/relative/or/bare\"\n",
            "[backup]\nkeep_last = 0\nkeep_hourly = 0\nkeep_daily = 0\n",
            "[backup]\nevery = 1\n",
        ] {
            let text = format!("region = \"w\"\ndata_dir = \"/x\"\n{bad}");
            assert!(RegionConfig::from_toml(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_relative_data_dir_still_gives_absolute_storage_urls() {
        let c = RegionConfig::from_toml("region = \"westus\"\ndata_dir = \".tandem/w\"\n").unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            c.blob_url(),
            format!("file://{}", cwd.join(".tandem/w/blobs").display())
        );
        assert!(c
            .metadata_url()
            .starts_with(&format!("sqlite://{}", cwd.display())));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        assert!(RegionConfig::from_toml("region = \"w\"\ndata_dir = \"/x\"\ntypo = 1\n").is_err());
        assert!(RegionConfig::from_toml("region = \"West\"\ndata_dir = \"/x\"\n").is_err());
        assert!(
            RegionConfig::from_toml("region = \"w\"\ndata_dir = \"/x\"\nformat_version = 9\n")
                .is_err()
        );
        assert!(
            RegionConfig::from_toml("region = \"w\"\ndata_dir = \"/x\"\ntoken_ttl_secs = 0\n")
                .is_err()
        );
    }

    #[test]
    fn peers_and_pair_are_checked() {
        let base = "region = \"westus\"\ndata_dir = \"/x\"\npeer_secret = \"0123456789abcdef0123456789abcdef\"\n";
        let ok = format!("{base}pair = \"eastus\"\n[[peers]]\nname = \"eastus\"\nendpoint = \"http://127.0.0.1:5002\"\n");
        let c = RegionConfig::from_toml(&ok).unwrap();
        assert_eq!(c.pair_peer().unwrap().endpoint, "http://127.0.0.1:5002");
        assert_eq!(c.peer_secret().unwrap().unwrap().len(), 32);
        // The pair must be a peer.
        assert!(RegionConfig::from_toml(&format!("{base}pair = \"eastus\"\n")).is_err());
        // Not itself, not twice, and a real URL.
        let own = format!("{base}[[peers]]\nname = \"westus\"\nendpoint = \"http://h\"\n");
        assert!(RegionConfig::from_toml(&own).is_err());
        let twice = format!("{base}[[peers]]\nname = \"e\"\nendpoint = \"http://h\"\n[[peers]]\nname = \"e\"\nendpoint = \"http://i\"\n");
        assert!(RegionConfig::from_toml(&twice).is_err());
        assert!("eastus=ftp://h".parse::<PeerConfig>().is_err());
        assert!("eastus".parse::<PeerConfig>().is_err());
        assert!("eastus=http://".parse::<PeerConfig>().is_err());
        assert_eq!(
            "eastus=http://10.0.0.2:5000"
                .parse::<PeerConfig>()
                .unwrap()
                .name
                .as_str(),
            "eastus"
        );
        // A pair needs a secret, and a short secret is refused.
        let no_secret = "region = \"westus\"\ndata_dir = \"/x\"\npair = \"eastus\"\n[[peers]]\nname = \"eastus\"\nendpoint = \"http://h\"\n";
        assert!(RegionConfig::from_toml(no_secret).is_err());
        let short =
            RegionConfig::from_toml("region = \"w\"\ndata_dir = \"/x\"\npeer_secret = \"short\"\n")
                .unwrap();
        assert!(short.peer_secret().is_err());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let c = RegionConfig::new(RegionName::new("eastus").unwrap(), "/d".into());
        let text = toml::to_string(&c).unwrap();
        let back = RegionConfig::from_toml(&text).unwrap();
        assert_eq!(back.region, c.region);
        assert_eq!(back.listen, c.listen);
    }
}
