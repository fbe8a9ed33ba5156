//! A `tandem gateway` process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `tandem gateway` and its URL.
pub struct GatewayProcess {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    child: Child,
}

impl GatewayProcess {
    /// Starts `tandem gateway --regions FILE --listen 127.0.0.1:0` and reads its address.
    pub fn start(bin: &Path, regions_file: &Path) -> Self {
        let mut child = Command::new(bin)
            .args(["gateway", "--listen", "127.0.0.1:0", "--regions"])
            .arg(regions_file)
            .env(
                "TANDEM_LOG",
                std::env::var("TANDEM_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway printed no address");
        let url = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line from tandem gateway: {line:?}"))
            .to_owned();
        Self { url, child }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
