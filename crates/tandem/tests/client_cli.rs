//! `tandem recognize`, `tandem synthesize` and `tandem regions status` on real regions.

mod common;
use common::*;

use std::process::Command;

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "tandem {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn the_cli_fails_over_like_the_sdk() {
    let (mut west, east) = tokio::join!(region("westus"), region("eastus"));
    let dir = tempfile::tempdir().unwrap();
    let (wk, ek) = (
        west.create_resource("cli").key1,
        east.create_resource("cli").key1,
    );
    std::fs::write(dir.path().join("east.key"), format!("{ek}\n")).unwrap();
    let file = dir.path().join("regions.toml");
    std::fs::write(
        &file,
        format!(
            "[[regions]]\nname = \"westus\"\nendpoint = \"{}\"\nkey = \"{wk}\"\n[[regions]]\nname = \"eastus\"\nendpoint = \"{}\"\nkey_file = \"{}\"\n",
            west.url,
            east.url,
            dir.path().join("east.key").display()
        ),
    )
    .unwrap();
    let regions = file.to_str().unwrap();
    let clip = &biology()[0];

    let (out, err) = run(&[
        "recognize",
        "--regions",
        regions,
        clip.path.to_str().unwrap(),
        "--format",
        "detailed",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        wer(&clip.transcript, v["NBest"][0]["Display"].as_str().unwrap()) < 0.5,
        "{v}"
    );
    assert!(err.contains("answered by westus"), "{err}");

    let (out, _) = run(&["regions", "status", "--regions", regions, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["health"], "ready", "{v}");

    west.kill9();
    let wav = dir.path().join("out.wav");
    let (_, err) = run(&[
        "synthesize",
        "--regions",
        regions,
        "--text",
        "Still speaking.",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(err.contains("from eastus"), "{err}");
    let audio = std::fs::read(&wav).unwrap();
    assert!(audio.len() > 16_000 && &audio[..4] == b"RIFF");

    let (out, _) = run(&["regions", "status", "--regions", regions]);
    let west_line = out.lines().find(|l| l.starts_with("westus")).unwrap();
    let east_line = out.lines().find(|l| l.starts_with("eastus")).unwrap();
    assert!(west_line.contains("unreachable"), "{out}");
    assert!(east_line.contains("ready"), "{out}");
}

#[test]
fn an_open_gateway_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regions.toml");
    std::fs::write(
        &file,
        "[[regions]]\nname = \"westus\"\nendpoint = \"http://127.0.0.1:9\"\nkey = \"k\"\n",
    )
    .unwrap();
    // It refuses before binding anything, so nothing ever listens on 0.0.0.0.
    let out = Command::new(BIN)
        .args(["gateway", "--listen", "0.0.0.0:0", "--regions"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a gateway_key"),
        "{err}"
    );
}
