//! One `tandem serve` process per region, on loopback with embedded storage, behind a
//! [`Proxy`]. Killed (SIGKILL, after SIGCONT) when dropped, so no error path leaves one behind.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{DrillError, Result};
use crate::proxy::Proxy;
use crate::scenario::RegionSpec;

/// How long a region may take to load its engines.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A region the drill started.
pub struct Region {
    /// Region name.
    pub name: String,
    /// The proxy in front of it: the address everyone uses.
    pub proxy: Proxy,
    /// The process's own address (changes on restart).
    pub direct_url: String,
    /// The admin token (in a 0600 file; never printed).
    pub(crate) admin_token: String,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

/// Where each region lives and how they reach each other.
pub struct Layout<'a> {
    /// The `tandem` binary.
    pub bin: &'a Path,
    /// The drill's temporary directory.
    pub root: &'a Path,
    /// The federation's peer secret file.
    pub peer_secret: &'a Path,
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
            admin_token,
            dir,
            bin: layout.bin.to_owned(),
            child: None,
        };
        region.spawn().await?;
        Ok(region)
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
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(DrillError::io("opening a region log"))?;
        let mut cmd = Command::new(&self.bin);
        // The region dies with the drill even if the drill is killed with SIGKILL, when no
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
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .env(
                "TANDEM_LOG",
                std::env::var("TANDEM_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .spawn()
            .map_err(|e| DrillError::region(&self.name, format!("starting tandem serve: {e}")))?;
        let stdout = child.stdout.take();
        self.child = Some(child);
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
            .and_then(|r| r.ok())
            .ok_or_else(|| self.failed("printed no listen address"))?;
        let url = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .ok_or_else(|| self.failed(&format!("unexpected first line {line:?}")))?;
        self.direct_url = url.to_owned();
        self.proxy.set_target(url)?;
        self.wait_ready("/readyz").await
    }

    fn failed(&self, what: &str) -> DrillError {
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

    /// `tandem resource create --json` on this region; returns key 1 (never printed).
    pub fn create_resource(&self, name: &str) -> Result<String> {
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

    /// Whether the process runs (not killed, not exited; a stopped one counts).
    pub fn is_running(&mut self) -> bool {
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
            .ok_or_else(|| DrillError::region(&self.name, "not running"))?
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

    /// Kills the process if it runs, starts it again on the same data; returns once ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.spawn().await
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.kill9();
    }
}
