//! One `tandem serve` process per region.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tandem_core::{RegionName, TokenSigner};

/// How to start a region.
#[derive(Debug, Clone)]
pub struct RegionOptions {
    /// Extra `key = value` lines for the region's TOML config.
    pub extra_config: Vec<String>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
}

impl Default for RegionOptions {
    fn default() -> Self {
        Self {
            extra_config: Vec::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// A resource's id and keys, as printed by `tandem resource create --json`.
#[derive(Debug, Clone)]
pub struct ResourceKeys {
    /// Resource id.
    pub id: String,
    /// Key 1.
    pub key1: String,
    /// Key 2.
    pub key2: String,
}

/// A running `tandem serve` process and its data.
pub struct RegionProcess {
    /// Region name.
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The admin API token.
    pub admin_token: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The data directory (a sibling node shares its first node's).
    data: PathBuf,
    secret: Vec<u8>,
    child: Option<Child>,
    ready_timeout: Duration,
}

impl RegionProcess {
    /// Writes a config for region `name` and starts it; returns once `/readyz` says ready.
    pub async fn start(bin: &Path, name: &str, opts: RegionOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tandem-{name}-"))
            .tempdir()
            .expect("tempdir");
        let secret: Vec<u8> = (0..32)
            .map(|i| (i as u8).wrapping_mul(31) ^ name.len() as u8)
            .collect();
        let secret = [secret, name.as_bytes().to_vec()].concat();
        std::fs::write(dir.path().join("sts.secret"), hex::encode(&secret)).expect("secret");
        let admin_token = format!("admin-{name}-{}", std::process::id());
        std::fs::write(dir.path().join("admin.token"), &admin_token).expect("admin token");
        let mut config = format!(
            "region = \"{name}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}/data\"\nadmin_token_file = \"{d}/admin.token\"\ntoken_secret_file = \"{d}/sts.secret\"\n",
            d = dir.path().display()
        );
        for line in &opts.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        std::fs::write(dir.path().join("region.toml"), config).expect("config");
        let data = dir.path().join("data");
        let mut region = Self {
            name: name.to_owned(),
            url: String::new(),
            admin_token,
            bin: bin.to_owned(),
            dir,
            data,
            secret,
            child: None,
            ready_timeout: opts.ready_timeout,
        };
        region.spawn().await;
        region
    }

    /// The region's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("region.toml")
    }

    /// The region's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// Starts another node of this region: its own config file, log and listen port, the same
    /// data directory (so the same SQLite database and blobs), STS secret and admin token, plus
    /// `extra_config` lines (e.g. `node_name = "b"`; with [`crate::SharedStorage::with`], the
    /// same PostgreSQL database and bucket prefix as the first node). Returns once it is ready.
    pub async fn start_sibling(&self, extra_config: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tandem-{}-node-", self.name))
            .tempdir()
            .expect("tempdir");
        let first = self.dir.path();
        let mut config = format!(
            "region = \"{name}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nadmin_token_file = \"{d}/admin.token\"\ntoken_secret_file = \"{d}/sts.secret\"\n",
            name = self.name,
            data = self.data.display(),
            d = first.display()
        );
        for line in extra_config {
            config.push_str(line);
            config.push('\n');
        }
        std::fs::write(dir.path().join("region.toml"), config).expect("config");
        let mut node = Self {
            name: self.name.clone(),
            url: String::new(),
            admin_token: self.admin_token.clone(),
            bin: self.bin.clone(),
            dir,
            data: self.data.clone(),
            secret: self.secret.clone(),
            child: None,
            ready_timeout: self.ready_timeout,
        };
        node.spawn().await;
        node
    }

    /// A signer holding this region's STS secret, for forging test tokens.
    pub fn signer(&self, ttl_secs: u64) -> TokenSigner {
        TokenSigner::new(
            RegionName::new(&self.name).expect("name"),
            self.secret.clone(),
            ttl_secs,
        )
    }

    /// Everything the process (and its earlier incarnations) wrote to stderr: its logs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    async fn spawn(&mut self) {
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("stderr.log"))
                    .expect("log file"),
            ))
            .env(
                "TANDEM_LOG",
                std::env::var("TANDEM_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.url = crate::process::read_listen_url(&mut child, &format!("region {}", self.name));
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Polls `/readyz` until it answers 200, or panics after the ready timeout.
    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "region {} exited while starting: {status}\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "region {} not ready in time",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process dies at once, with no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGSTOP: the process freezes. The kernel still accepts TCP connections on its port, but
    /// nothing answers: a hung region, as a client sees it.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT: a frozen region resumes.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: plain kill(2) on a child we own and have not reaped.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// SIGTERM, then waits for the exit status.
    pub fn sigterm(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: plain kill(2) on a child we own and have not reaped.
        let rc = unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        c.wait().expect("wait")
    }

    /// Starts the region again on the same data, config and secret (a new port).
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Runs `tandem <args…>` against this region's config and returns stdout; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("run tandem");
        assert!(
            out.status.success(),
            "tandem {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// `tandem resource create --json` on this region.
    pub fn create_resource(&self, name: &str) -> ResourceKeys {
        let out = self.cli(&["resource", "create", "--name", name, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(out.trim()).expect("JSON from resource create");
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("no {k} in {v}"))
                .to_owned()
        };
        assert_eq!(s("region"), self.name);
        ResourceKeys {
            id: s("id"),
            key1: s("key1"),
            key2: s("key2"),
        }
    }
}

impl Drop for RegionProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
