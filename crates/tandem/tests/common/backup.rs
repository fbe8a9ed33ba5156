//! Helpers of the backup black-box tests: the `tandem` CLI on a region's config, and empty
//! stopped regions to restore into.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tandem_store::Store;

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

/// sha256 of every blob under a region's blob directory, by key.
pub fn blob_hashes(data: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !key.starts_with("_tandem") && !key.contains('#') {
                    out.insert(key, hex(&Sha256::digest(std::fs::read(&p).unwrap())));
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&data.join("blobs"), &data.join("blobs"), &mut out);
    out
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The region's metadata export, read straight from its database.
pub async fn export(data: &Path) -> Vec<u8> {
    let store = Store::open(
        &format!("sqlite://{}", data.join("tandem.db").display()),
        &format!("file://{}", data.join("blobs").display()),
    )
    .await
    .unwrap();
    let bytes = store.meta.export_metadata().await.unwrap().to_bytes();
    store.close().await;
    bytes
}
