//! Helpers of the backup black-box tests: the `tandem` CLI on a region's config, and empty
//! stopped regions to restore into.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::*;

/// Config lines: no automatic backups (the test runs them), the repository at `repo`.
pub fn manual(repo: &Path) -> Vec<String> {
    vec![
        "[backup]".into(),
        format!("target = \"file://{}\"", repo.display()),
        "interval_secs = 0".into(),
    ]
}

/// `tandem <args> --config <region's config>`: (success, stdout, stderr).
pub fn cli(region: &RegionProcess, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(region.config_path())
        .output()
        .expect("run tandem");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`cli`], which must succeed and print JSON.
pub fn cli_json(region: &RegionProcess, args: &[&str]) -> Value {
    let (ok, out, err) = cli(region, args);
    assert!(ok, "tandem {args:?} failed: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// A stopped region of `name` with an empty store, ready for `tandem restore` or `recover`.
pub async fn empty_region(name: &str, repo: &Path) -> RegionProcess {
    let mut r = RegionProcess::start(
        Path::new(BIN),
        name,
        RegionOptions {
            extra_config: manual(repo),
            ..RegionOptions::default()
        },
    )
    .await;
    r.kill9();
    r
}
