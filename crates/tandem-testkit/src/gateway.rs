//! A `tandem gateway` process.

use std::path::Path;
use std::process::{Child, Command, Stdio};

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
        let url = crate::process::read_listen_url(&mut child, "tandem gateway");
        Self { url, child }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
