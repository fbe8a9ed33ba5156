//! One `tandem serve` process per region, on loopback with embedded storage, behind a
//! [`Proxy`]. Killed (SIGKILL, after SIGCONT) when dropped, so no error path leaves one behind.
//! Or an existing endpoint behind its proxy: checked at setup, never signalled nor stopped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{DrillError, Result};
use crate::scenario::RegionSpec;
use tandem_faults::Proxy;

/// How long a region may take to load its engines.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A region the drill started, or an existing endpoint.
pub struct Region {
    /// Region name.
    pub name: String,
    /// The proxy in front of it: the address everyone uses.
    pub proxy: Proxy,
    /// The process's own address (changes on restart); an existing region's endpoint.
    pub direct_url: String,
    /// The admin token (in a 0600 file; never printed). `None`: an existing endpoint given
    /// without `admin_token_file`.
    pub(crate) admin_token: Option<String>,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    /// An existing endpoint's resource key, from its `key_file` (never printed). `None`: the
    /// drill started this region.
    existing_key: Option<String>,
}

/// Where each region lives and how they reach each other.
pub struct Layout<'a> {
    /// The `tandem` binary.
    pub bin: &'a Path,
    /// The drill's temporary directory.
    pub root: &'a Path,
    /// The federation's peer secret file.
    pub peer_secret: &'a Path,
    /// The scenario file's directory: existing regions' `key_file` and `admin_token_file` are
    /// relative to it.
    pub base_dir: &'a Path,
}

/// How long an existing endpoint has to answer `/readyz` at setup.
const EXISTING_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Reads a secret file (a key, a token), trimmed. The error names the file, never its contents.
fn read_secret(region: &str, field: &str, path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DrillError::region(region, format!("{field} {}: {e}", path.display())))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(DrillError::region(
            region,
            format!("{field} {} is empty", path.display()),
        ));
    }
    Ok(secret.to_owned())
}

/// Writes `contents` to a file only its owner can read.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(DrillError::io(format!("writing {}", path.display())))?;
    f.write_all(contents)
        .map_err(DrillError::io(format!("writing {}", path.display())))
}

/// 32 random bytes, hex: peer secret and admin token.
pub(crate) fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(DrillError::io("reading /dev/urandom"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Starts `bin args…` with stderr appended to `log`, dying with the drill, and returns the
/// child and the URL it printed on its first line (`… listening on http://addr`). The error is
/// a sentence naming the log. Its TMPDIR is `tmp/` next to the log (inside the drill's
/// temporary directory), so whatever a library leaves there goes with the drill.
pub(crate) async fn spawn_tandem(
    bin: &Path,
    args: &[std::ffi::OsString],
    log_path: &Path,
) -> std::result::Result<(Child, String), String> {
    let failed = |what: &str| format!("{what} (log: {})", log_path.display());
    let tmp = log_path.with_file_name("tmp");
    std::fs::create_dir_all(&tmp)
        .map_err(|e| failed(&format!("creating {}: {e}", tmp.display())))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| failed(&format!("opening the log: {e}")))?;
    let mut cmd = Command::new(bin);
    // The process dies with the drill even if the drill is killed with SIGKILL, when no
    // destructor runs.
    // SAFETY: prctl(2) only, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .env("TMPDIR", &tmp)
        .env(
            "TANDEM_LOG",
            std::env::var("TANDEM_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .spawn()
        .map_err(|e| failed(&format!("starting {}: {e}", bin.display())))?;
    let stdout = child.stdout.take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {} // drain, so the child never blocks on a full pipe
    });
    let line = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .ok()
        .and_then(|r| r.ok());
    let kill = |mut child: Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let Some(line) = line else {
        kill(child);
        return Err(failed("printed no listen address"));
    };
    match line.rsplit(' ').next().filter(|u| u.starts_with("http://")) {
        Some(url) => Ok((child, url.to_owned())),
        None => {
            kill(child);
            Err(failed(&format!("unexpected first line {line:?}")))
        }
    }
}

/// The `tandem gateway` the drill starts in front of every region (through their proxies).
/// Killed when dropped.
pub struct GatewayProcess {
    /// Its URL.
    pub url: String,
    child: Child,
}

impl GatewayProcess {
    /// Writes the regions file (0600: it holds the regions' keys) into `dir` and starts the
    /// gateway on a free loopback port; returns once it is ready.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        config: &tandem_client::ClientConfig,
    ) -> Result<Self> {
        let file = dir.join("gateway-regions.toml");
        let text = toml::to_string(config)
            .map_err(|e| DrillError::Setup(format!("the gateway's regions file: {e}")))?;
        write_private(&file, text.as_bytes())?;
        let args = [
            "gateway".into(),
            "--regions".into(),
            file.into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        let (child, url) = spawn_tandem(bin, &args, &dir.join("gateway.log"))
            .await
            .map_err(|e| DrillError::Setup(format!("the gateway: {e}")))?;
        let g = GatewayProcess { url, child };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = http.get(format!("{}/readyz", g.url)).send().await;
            if ok.is_ok_and(|r| r.status().is_success()) {
                return Ok(g);
            }
            if Instant::now() > deadline {
                return Err(DrillError::Setup(
                    "the gateway is not ready after 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Region {
    /// Writes the region's config (each peer reached through the drill's link proxy from this
    /// region to it, which leads to the peer's own proxy) and starts it.
    pub async fn start(
        spec: &RegionSpec,
        proxy: Proxy,
        peers: &[(String, String)],
        layout: &Layout<'_>,
    ) -> Result<Self> {
        let dir = layout.root.join(&spec.name);
        std::fs::create_dir_all(&dir).map_err(DrillError::io("creating a region directory"))?;
        let admin_token = random_hex()?;
        write_private(&dir.join("admin.token"), admin_token.as_bytes())?;
        let d = dir.display();
        let mut config = format!(
            "region = \"{name}\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{d}/data\"\n\
             admin_token_file = \"{d}/admin.token\"\ntoken_secret_file = \"{d}/sts.secret\"\n",
            name = spec.name,
        );
        if let Some(pair) = &spec.pair {
            config.push_str(&format!(
                "pair = \"{pair}\"\npeer_secret_file = \"{}\"\n",
                layout.peer_secret.display()
            ));
        }
        for line in &spec.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        config.push_str(&format!(
            "[backup]\ninterval_secs = {}\n",
            spec.backup_interval_secs
        ));
        for (name, url) in peers {
            config.push_str(&format!(
                "[[peers]]\nname = \"{name}\"\nendpoint = \"{url}\"\n"
            ));
        }
        std::fs::write(dir.join("region.toml"), config)
            .map_err(DrillError::io("writing a region config"))?;
        let mut region = Region {
            name: spec.name.clone(),
            proxy,
            direct_url: String::new(),
            admin_token: Some(admin_token),
            dir,
            bin: layout.bin.to_owned(),
            child: None,
            existing_key: None,
        };
        region.spawn().await?;
        Ok(region)
    }

    /// An existing region (`spec.endpoint`): reads its key (and admin token) files, points the
    /// proxy at it, and checks that it answers `/readyz` and is the region it is declared as
    /// (`/.well-known/tandem`). Starts nothing.
    pub async fn existing(spec: &RegionSpec, proxy: Proxy, layout: &Layout<'_>) -> Result<Self> {
        let name = &spec.name;
        let fail = |m: String| DrillError::region(name, m);
        let endpoint = spec
            .endpoint
            .as_deref()
            .ok_or_else(|| fail("no endpoint".into()))?
            .trim_end_matches('/')
            .to_owned();
        let key_file = spec
            .key_file
            .as_ref()
            .ok_or_else(|| fail("an existing endpoint needs key_file".into()))?;
        let key = read_secret(name, "key_file", &layout.base_dir.join(key_file))?;
        let admin_token = match &spec.admin_token_file {
            Some(f) => Some(read_secret(
                name,
                "admin_token_file",
                &layout.base_dir.join(f),
            )?),
            None => None,
        };
        // The proxy relays TCP to an address: resolve the endpoint's host.
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| fail(format!("endpoint {endpoint}: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| fail(format!("endpoint {endpoint}: cannot resolve {host}")))?;
        proxy.set_target(&addr.to_string())?;
        check_existing(name, &endpoint, spec.pair.as_deref()).await?;
        tracing::info!(region = %name, %endpoint, "existing endpoint");
        Ok(Region {
            name: name.clone(),
            proxy,
            direct_url: endpoint,
            admin_token,
            dir: layout.root.join(name),
            bin: layout.bin.to_owned(),
            child: None,
            existing_key: Some(key),
        })
    }

    /// Whether this is an existing endpoint (no process of the drill's).
    pub fn is_existing(&self) -> bool {
        self.existing_key.is_some()
    }

    /// The region's config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("region.toml")
    }

    /// The region's log (stderr of every incarnation).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("stderr.log")
    }

    async fn spawn(&mut self) -> Result<()> {
        let args = ["serve".into(), "--config".into(), self.config_path().into()];
        match spawn_tandem(&self.bin, &args, &self.log_path()).await {
            Ok((child, url)) => {
                self.child = Some(child);
                self.direct_url = url;
            }
            Err(e) => return Err(DrillError::region(&self.name, e)),
        }
        self.proxy.set_target(&self.direct_url)?;
        self.wait_ready("/readyz").await
    }

    fn failed(&self, what: &str) -> DrillError {
        if self.is_existing() {
            return DrillError::region(&self.name, format!("{what} ({})", self.direct_url));
        }
        DrillError::region(
            &self.name,
            format!("{what} (log: {})", self.log_path().display()),
        )
    }

    /// Polls `path` on the process itself until 200.
    pub async fn wait_ready(&mut self, path: &str) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Err(self.failed(&format!("exited while starting: {status}")));
                }
            }
            let url = format!("{}{path}", self.direct_url);
            if let Ok(r) = http.get(url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(self.failed(&format!("{path} not ready in time")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `tandem resource create --json` on a region the drill started; returns key 1. An
    /// existing region's key is its `key_file`'s. Never printed.
    pub fn resource_key(&self, name: &str) -> Result<String> {
        if let Some(key) = &self.existing_key {
            return Ok(key.clone());
        }
        let out = Command::new(&self.bin)
            .args(["resource", "create", "--name", name, "--json", "--config"])
            .arg(self.config_path())
            .output()
            .map_err(|e| DrillError::region(&self.name, format!("resource create: {e}")))?;
        if !out.status.success() {
            return Err(DrillError::region(
                &self.name,
                format!(
                    "resource create failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| DrillError::region(&self.name, format!("resource create: {e}")))?;
        v["key1"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DrillError::region(&self.name, "resource create printed no key1"))
    }

    /// Whether the process runs (not killed, not exited; a stopped one counts). An existing
    /// region counts as running: the drill never stops it.
    pub fn is_running(&mut self) -> bool {
        if self.is_existing() {
            return true;
        }
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_pid(c.id(), libc::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP or SIGCONT.
    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        let pid = self
            .child
            .as_ref()
            .ok_or_else(|| DrillError::region(&self.name, self.not_ours()))?
            .id();
        if self.signal_pid(pid, sig) {
            Ok(())
        } else {
            Err(DrillError::region(
                &self.name,
                format!("kill({sig}) failed"),
            ))
        }
    }

    fn signal_pid(&self, pid: u32, sig: libc::c_int) -> bool {
        // SAFETY: kill(2) on a child we own and have not reaped, so the pid is still ours.
        unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
    }

    fn not_ours(&self) -> &'static str {
        if self.is_existing() {
            "an existing endpoint: the drill does not own its process"
        } else {
            "not running"
        }
    }

    /// Kills the process if it runs, starts it again on the same data; returns once ready.
    pub async fn restart(&mut self) -> Result<()> {
        if self.is_existing() {
            return Err(DrillError::region(&self.name, self.not_ours()));
        }
        self.kill9();
        self.spawn().await
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Checks an existing endpoint at setup: `/readyz` answers 200 (within
/// [`EXISTING_READY_TIMEOUT`]), and `/.well-known/tandem` names `name` (and `pair`, when the
/// scenario declares one).
async fn check_existing(name: &str, endpoint: &str, pair: Option<&str>) -> Result<()> {
    let fail = |m: String| DrillError::region(name, format!("endpoint {endpoint}: {m}"));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + EXISTING_READY_TIMEOUT;
    loop {
        let last = match http.get(format!("{endpoint}/readyz")).send().await {
            Ok(r) if r.status().is_success() => break,
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => format!("does not answer ({e})"),
        };
        if Instant::now() > deadline {
            return Err(fail(format!(
                "/readyz {last} after {} s",
                EXISTING_READY_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let discovery: serde_json::Value = http
        .get(format!("{endpoint}/.well-known/tandem"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(format!("/.well-known/tandem: {e}")))?
        .json()
        .await
        .map_err(|e| fail(format!("/.well-known/tandem is not JSON: {e}")))?;
    match discovery["region"].as_str() {
        Some(r) if r == name => {}
        Some(r) => return Err(fail(format!("it is region {r}, not {name}"))),
        None => return Err(fail("/.well-known/tandem names no region".into())),
    }
    if let Some(pair) = pair {
        let theirs = discovery["pair"]["region"].as_str();
        if theirs != Some(pair) {
            return Err(fail(format!(
                "the scenario pairs it with {pair}, but its pair is {}",
                theirs.unwrap_or("none")
            )));
        }
    }
    Ok(())
}
