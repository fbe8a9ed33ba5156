//! Custom Speech datasets (Speech-to-text v3.2, v3.1 aliases) through a real region process:
//! the biology set uploaded as an Acoustic zip and as Language text, list/paging/get/files/
//! report/content, PATCH, DELETE, tenancy, a `contentUrl` allow-list, and bad uploads (one per
//! case) that are refused or reported without leaving anything half-created behind: a BOM, CRLF
//! and stray spaces in trans.txt are tolerated; a missing WAV, a WAV with no transcript and a
//! wrong format are reported by name; zip slips (`..`, absolute, `\`, symbolic link), a zip
//! bomb, folders and oversized entries are refused naming the entry; `contentUrl` is fetched only
//! from allow-listed hosts, without following redirects.

mod common;
use std::io::Write;
use std::path::Path;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zip::write::SimpleFileOptions;

/// Entries above this many bytes (decompressed) are refused; set small for the test.
const ENTRY_LIMIT: u64 = 8 * 1024 * 1024;

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(region: &RegionProcess, key: &str) -> Self {
        Self {
            http: http(),
            base: format!("{}/speechtotext/v3.2", region.url),
            key: key.to_owned(),
        }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header(KEY, &self.key)
            .send()
            .await
            .unwrap()
    }

    async fn upload(&self, base: &str, kind: &str, name: &str, data: Vec<u8>) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("displayName", name.to_owned())
            .text("description", format!("{name}, uploaded by the test"))
            .text("locale", "en-US")
            .text("kind", kind.to_owned())
            .text("customProperties", r#"{"purpose":"test"}"#)
            .part(
                "data",
                reqwest::multipart::Part::bytes(data).file_name("upload.bin"),
            );
        self.http
            .post(format!("{base}/datasets/upload"))
            .header(KEY, &self.key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn create_from_url(&self, url: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/datasets", self.base))
            .header(KEY, &self.key)
            .json(&json!({
                "kind": "Language", "locale": "en-US", "displayName": "from a URL",
                "contentUrl": url,
            }))
            .send()
            .await
            .unwrap()
    }

    async fn total(&self) -> usize {
        let v: Value = self
            .get(&format!("{}/datasets", self.base))
            .await
            .json()
            .await
            .unwrap();
        v["values"].as_array().unwrap().len()
    }
}

/// Asserts a v3 error: `{"code","message","innerError":{"code","message"}}`; returns the body.
async fn v3_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status, "unexpected status");
    let v: Value = resp.json().await.expect("error body is JSON");
    assert!(v["code"].is_string(), "no code in {v}");
    assert!(
        !v["message"].as_str().unwrap_or("").is_empty(),
        "no message in {v}"
    );
    assert!(
        v["innerError"]["code"].is_string(),
        "no innerError.code in {v}"
    );
    assert!(v.get("error").is_none(), "gateway shape on a v3 route: {v}");
    v
}

fn zip_of(entries: &[(&str, &[u8])], stored: bool) -> Vec<u8> {
    let opts = if stored {
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
    } else {
        SimpleFileOptions::default()
    };
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The Acoustic zip of the biology set: its 50 WAVs and trans.txt (BOM, CRLF and all).
fn biology_zip() -> Vec<u8> {
    let dir = shared_data().join("custom-speech-biology");
    let mut entries: Vec<(String, Vec<u8>)> = biology()
        .iter()
        .map(|c| (c.name.clone(), wav_bytes(&c.path)))
        .collect();
    entries.push((
        "trans.txt".into(),
        std::fs::read(dir.join("trans.txt")).unwrap(),
    ));
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    zip_of(&refs, false)
}

/// A 16-bit PCM WAV of silence with any rate and channel count.
fn wav(rate: u32, channels: u16, secs: f64) -> Vec<u8> {
    let frames = (secs * f64::from(rate)) as u32;
    let data = frames * 2 * u32::from(channels);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    v.extend_from_slice(&(2 * channels).to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data.to_le_bytes());
    v.resize(44 + data as usize, 0);
    v
}

/// Bytes that do not compress (xorshift).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A tiny HTTP server for `contentUrl`: `/lang.txt` is the biology language data, `/moved`
/// redirects to it.
async fn content_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let text = text.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let resp = match path.as_str() {
                    "/lang.txt" => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            text.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&text);
                        r
                    }
                    "/moved" => b"HTTP/1.1 302 Found\r\nLocation: /lang.txt\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                let _ = sock.write_all(&resp).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_end_to_end_on_the_biology_set() {
    let (port, server) = content_server().await;
    let allow = format!("content_url_allow_hosts = [\"127.0.0.1:{port}\"]");
    let limit = format!("max_zip_entry_bytes = {ENTRY_LIMIT}");
    let region = region_with("westus", &["[custom_speech]", &allow, &limit]).await;
    let a_keys = region.create_resource("owner");
    let b_keys = region.create_resource("other");
    let a = Api::new(&region, &a_keys.key1);
    let b = Api::new(&region, &b_keys.key1);
    let v31 = format!("{}/speechtotext/v3.1", region.url);
    let blob_dir = region.data_dir().join("blobs/assets");

    // The Acoustic zip: 201, Location = self, Succeeded, every utterance accepted.
    let started = std::time::Instant::now();
    let resp = a
        .upload(&a.base, "Acoustic", "biology audio", biology_zip())
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let acoustic: Value = resp.json().await.unwrap();
    eprintln!("acoustic upload took {:?}", started.elapsed());
    assert_eq!(acoustic["self"], location.as_str());
    assert!(
        location.starts_with(&format!("{}/datasets/", a.base)),
        "{location}"
    );
    assert_eq!(acoustic["status"], "Succeeded");
    assert_eq!(acoustic["kind"], "Acoustic");
    assert_eq!(acoustic["locale"], "en-US");
    assert_eq!(acoustic["displayName"], "biology audio");
    assert_eq!(acoustic["customProperties"], json!({"purpose": "test"}));
    assert_eq!(acoustic["properties"]["acceptedLineCount"], 50);
    assert_eq!(acoustic["properties"]["rejectedLineCount"], 0);
    let duration = acoustic["properties"]["duration"].as_str().unwrap();
    assert!(
        duration.starts_with("PT") && duration.len() > 3,
        "{duration}"
    );
    assert_eq!(acoustic["links"]["files"], format!("{location}/files"));
    for k in ["createdDateTime", "lastActionDateTime"] {
        assert!(acoustic[k].as_str().unwrap().ends_with('Z'), "{k}");
    }

    // The language data through the v3.1 alias.
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let resp = a.upload(&v31, "Language", "biology text", text).await;
    assert_eq!(resp.status().as_u16(), 201);
    let language: Value = resp.json().await.unwrap();
    assert!(language["self"]
        .as_str()
        .unwrap()
        .contains("/speechtotext/v3.1/datasets/"));
    assert_eq!(language["status"], "Succeeded");
    assert!(
        language["properties"]["acceptedLineCount"]
            .as_u64()
            .unwrap()
            >= 150
    );
    assert!(language["properties"].get("duration").is_none());

    // List and paging.
    let page: Value = a
        .get(&format!("{}/datasets?top=1", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["values"].as_array().unwrap().len(), 1);
    assert_eq!(page["values"][0]["self"], location.as_str());
    let next = page["@nextLink"].as_str().expect("a next link").to_owned();
    let page2: Value = a.get(&next).await.json().await.unwrap();
    assert_eq!(page2["values"].as_array().unwrap().len(), 1);
    assert_eq!(page2["values"][0]["displayName"], "biology text");
    assert!(page2.get("@nextLink").is_none());
    assert_eq!(a.total().await, 2);

    // Get, files, the report and the content of files.
    let got: Value = a.get(&location).await.json().await.unwrap();
    assert_eq!(got, acoustic);
    let files: Value = a
        .get(&format!("{location}/files"))
        .await
        .json()
        .await
        .unwrap();
    let files = files["values"].as_array().unwrap().clone();
    assert_eq!(files.len(), 52, "report, trans.txt and 50 WAVs");
    let by_kind = |k: &str| files.iter().filter(|f| f["kind"] == k).count();
    assert_eq!(by_kind("DatasetReport"), 1);
    assert_eq!(by_kind("Audio"), 50);
    assert_eq!(by_kind("AcousticDataTranscriptionV2"), 1);
    let report_file = files.iter().find(|f| f["kind"] == "DatasetReport").unwrap();
    assert_eq!(report_file["name"], "report.json");
    let one: Value = a
        .get(report_file["self"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&one, report_file);
    let report: Value = a
        .get(report_file["links"]["contentUrl"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["acceptedLineCount"], 50);
    assert_eq!(report["files"].as_array().unwrap().len(), 50);
    let clip = &biology()[0];
    let audio = files
        .iter()
        .find(|f| f["name"] == clip.name.as_str())
        .unwrap();
    let resp = a.get(audio["links"]["contentUrl"].as_str().unwrap()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        wav_bytes(&clip.path).as_slice()
    );
    let trans = files.iter().find(|f| f["name"] == "trans.txt").unwrap();
    let trans = a
        .get(trans["links"]["contentUrl"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(trans.lines().count(), 50);
    assert!(!trans.contains('\r') && !trans.starts_with('\u{feff}'));
    assert!(trans.contains(&format!("{}\t{}\n", clip.name, clip.transcript)));

    // PATCH.
    let resp = a
        .http
        .patch(&location)
        .header(KEY, &a.key)
        .json(
            &json!({"displayName": "renamed", "description": "new words",
                      "customProperties": {"stage": "two"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["displayName"], "renamed");
    assert_eq!(patched["description"], "new words");
    assert_eq!(patched["customProperties"], json!({"stage": "two"}));
    assert_eq!(patched["properties"], acoustic["properties"]);
    assert!(patched["lastActionDateTime"].as_str() >= acoustic["lastActionDateTime"].as_str());
    let got: Value = a.get(&location).await.json().await.unwrap();
    assert_eq!(got["displayName"], "renamed");

    // Auth and tenancy: a wrong key is 401; another resource sees nothing of it.
    let wrong = Api::new(&region, "0123456789abcdef0123456789abcdef");
    v3_error(wrong.get(&format!("{}/datasets", a.base)).await, 401).await;
    for url in [
        location.clone(),
        format!("{location}/files"),
        report_file["self"].as_str().unwrap().to_owned(),
        report_file["links"]["contentUrl"]
            .as_str()
            .unwrap()
            .to_owned(),
    ] {
        v3_error(b.get(&url).await, 404).await;
    }
    let resp = b
        .http
        .patch(&location)
        .header(KEY, &b.key)
        .json(&json!({"displayName": "stolen"}))
        .send()
        .await
        .unwrap();
    v3_error(resp, 404).await;
    assert_eq!(b.total().await, 0);
    let resp = b
        .http
        .delete(&location)
        .header(KEY, &b.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        a.get(&location).await.status().as_u16(),
        200,
        "B's delete touched A's dataset"
    );
    v3_error(
        a.get(&format!("{}/datasets/{}", a.base, uuid_like())).await,
        404,
    )
    .await;

    // Refused uploads: 400 InvalidDataset naming the problem; nothing listed, no blob left.
    let good = wav_bytes(&clip.path);
    let trans_for = |names: &[&str]| -> Vec<u8> {
        names
            .iter()
            .map(|n| format!("{n}\tsome words\r\n"))
            .collect::<String>()
            .into_bytes()
    };
    let bomb = vec![0u8; 32 * 1024 * 1024];
    let big = noise(ENTRY_LIMIT as usize + 1024);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "zip slip",
            zip_of(
                &[
                    ("../evil.wav", &good),
                    ("trans.txt", &trans_for(&["evil.wav"])),
                ],
                false,
            ),
            "zip slip",
        ),
        (
            "zip slip, absolute path",
            zip_of(
                &[
                    ("/tmp/evil.wav", &good),
                    ("trans.txt", &trans_for(&["evil.wav"])),
                ],
                false,
            ),
            "zip slip",
        ),
        (
            "zip slip, Windows separators",
            zip_of(
                &[
                    ("..\\..\\evil.wav", &good),
                    ("trans.txt", &trans_for(&["evil.wav"])),
                ],
                false,
            ),
            "zip slip",
        ),
        (
            "zip slip through a symbolic link",
            {
                let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                w.add_symlink("link.wav", "/etc/passwd", SimpleFileOptions::default())
                    .unwrap();
                w.start_file("trans.txt", SimpleFileOptions::default())
                    .unwrap();
                w.write_all(&trans_for(&["link.wav"])).unwrap();
                w.finish().unwrap().into_inner()
            },
            "symbolic link",
        ),
        (
            "zip bomb",
            zip_of(
                &[
                    ("bomb.wav", &bomb),
                    ("trans.txt", &trans_for(&["bomb.wav"])),
                ],
                false,
            ),
            "zip bomb",
        ),
        (
            "nested folders",
            zip_of(
                &[
                    ("audio/a.wav", &good),
                    ("trans.txt", &trans_for(&["a.wav"])),
                ],
                false,
            ),
            "folder",
        ),
        (
            "oversized entry",
            zip_of(
                &[("big.wav", &big), ("trans.txt", &trans_for(&["big.wav"]))],
                true,
            ),
            "larger than",
        ),
        (
            "not a zip",
            b"this is not a zip archive at all".to_vec(),
            "not a zip",
        ),
        (
            "no trans.txt",
            zip_of(&[("a.wav", &good)], false),
            "trans.txt",
        ),
    ];
    // Every entry-level refusal names the entry.
    let names = [
        ("zip slip", "../evil.wav"),
        ("zip slip, absolute path", "/tmp/evil.wav"),
        ("zip slip through a symbolic link", "link.wav"),
        ("zip bomb", "bomb.wav"),
        ("nested folders", "audio/a.wav"),
        ("oversized entry", "big.wav"),
    ];
    let listed = a.total().await;
    let blobs = files_under(&blob_dir);
    let all_blobs = files_under(&region.data_dir().join("blobs"));
    for (case, data, says) in cases {
        let v = v3_error(a.upload(&a.base, "Acoustic", case, data).await, 400).await;
        assert_eq!(v["innerError"]["code"], "InvalidDataset", "{case}: {v}");
        let message = v["message"].as_str().unwrap();
        let msg = message.to_lowercase();
        assert!(msg.contains(says), "{case}: {msg:?} should say {says:?}");
        if let Some((_, entry)) = names.iter().find(|(c, _)| *c == case) {
            assert!(
                message.contains(entry),
                "{case}: {message:?} should name {entry:?}"
            );
        }
        assert_eq!(a.total().await, listed, "{case}: something was listed");
        assert_eq!(
            files_under(&blob_dir),
            blobs,
            "{case}: blobs were left behind"
        );
        assert_eq!(
            files_under(&region.data_dir().join("blobs")),
            all_blobs,
            "{case}: files were left behind"
        );
    }
    // Refused Language and Pronunciation uploads leave nothing either.
    for (kind, data, says) in [
        ("Language", vec![0xff, 0xfe, 0x00, 0x41], "utf-8"),
        ("Pronunciation", b"".to_vec(), "no data"),
    ] {
        let v = v3_error(a.upload(&a.base, kind, "bad text", data).await, 400).await;
        let msg = v["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(says), "{kind}: {msg:?} should say {says:?}");
        assert_eq!(a.total().await, listed, "{kind}: something was listed");
        assert_eq!(files_under(&region.data_dir().join("blobs")), all_blobs);
    }

    // A BOM, CRLF line ends and stray spaces in trans.txt are tolerated: every line accepted,
    // and the stored trans.txt is normalised.
    let quirky = zip_of(
        &[
            ("one.wav", &good),
            ("two.wav", &good),
            (
                "trans.txt",
                "\u{feff}one.wav \t  first line  \r\n  two.wav\tsecond line\t\r\n\r\n".as_bytes(),
            ),
        ],
        false,
    );
    let resp = a.upload(&a.base, "Acoustic", "quirky", quirky).await;
    assert_eq!(resp.status().as_u16(), 201);
    let quirky: Value = resp.json().await.unwrap();
    assert_eq!(quirky["status"], "Succeeded", "{quirky}");
    assert_eq!(quirky["properties"]["acceptedLineCount"], 2, "{quirky}");
    assert_eq!(quirky["properties"]["rejectedLineCount"], 0, "{quirky}");
    let files: Value = a
        .get(quirky["links"]["files"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let trans = files["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "trans.txt")
        .expect("a trans.txt")
        .clone();
    let trans = a
        .get(trans["links"]["contentUrl"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(trans, "one.wav\tfirst line\ntwo.wav\tsecond line\n");
    let resp = a
        .http
        .delete(quirky["self"].as_str().unwrap())
        .header(KEY, &a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(a.total().await, listed);
    // Bad metadata is refused the same way.
    let v = v3_error(
        a.upload(&a.base, "Holographic", "bad kind", b"x".to_vec())
            .await,
        400,
    )
    .await;
    assert_eq!(v["innerError"]["code"], "InvalidParameterValue");
    assert_eq!(a.total().await, listed);

    // Per-file problems are reported by name and the rest is kept.
    let stereo44 = wav(44_100, 2, 1.0);
    let partial = zip_of(
        &[
            ("good.wav", &good),
            ("orphan.wav", &good),
            ("stereo.wav", &stereo44),
            ("junk.wav", b"this is not audio"),
            (
                "trans.txt",
                &trans_for(&["good.wav", "missing.wav", "stereo.wav", "junk.wav"]),
            ),
        ],
        false,
    );
    let resp = a.upload(&a.base, "Acoustic", "partial", partial).await;
    assert_eq!(resp.status().as_u16(), 201);
    let partial: Value = resp.json().await.unwrap();
    assert_eq!(partial["status"], "Succeeded");
    assert_eq!(partial["properties"]["acceptedLineCount"], 1);
    assert_eq!(partial["properties"]["rejectedLineCount"], 4);
    let report = report_of(&a, &partial).await;
    let reason = |name: &str| -> String {
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the report: {report}"))["reason"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert!(reason("orphan.wav").contains("no transcript"));
    assert!(reason("missing.wav").contains("no such file"));
    assert!(reason("stereo.wav").contains("unsupported audio format"));
    assert!(reason("junk.wav").contains("not a usable WAV"));
    assert_eq!(reason("good.wav"), "");

    // Nothing usable: created as Failed, with its report.
    let useless = zip_of(
        &[
            ("stereo.wav", &stereo44),
            ("trans.txt", &trans_for(&["stereo.wav"])),
        ],
        false,
    );
    let resp = a.upload(&a.base, "Acoustic", "useless", useless).await;
    assert_eq!(resp.status().as_u16(), 201);
    let failed: Value = resp.json().await.unwrap();
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["properties"]["acceptedLineCount"], 0);
    assert_eq!(failed["properties"]["error"]["code"], "DataImportFailed");
    assert_eq!(report_of(&a, &failed).await["rejectedLineCount"], 1);

    // contentUrl: only the allowed host and port are fetched; redirects are not followed.
    let listed = a.total().await;
    let blobs = files_under(&blob_dir);
    for bad in [
        "http://evil.example.com/lang.txt".to_owned(),
        "http://127.0.0.1/lang.txt".to_owned(),
        format!("http://127.0.0.1:{}/lang.txt", port + 1),
        format!("http://127.0.0.1:{port}@evil.example.com/lang.txt"),
        format!("http://localhost:{port}/lang.txt"),
        "file:///etc/passwd".to_owned(),
    ] {
        let v = v3_error(a.create_from_url(&bad).await, 400).await;
        assert_eq!(
            v["innerError"]["code"], "InvalidParameterValue",
            "{bad}: {v}"
        );
    }
    let v = v3_error(
        a.create_from_url(&format!("http://127.0.0.1:{port}/moved"))
            .await,
        400,
    )
    .await;
    assert_eq!(v["innerError"]["code"], "DataImportFailed");
    assert!(v["message"].as_str().unwrap().contains("redirect"));
    let v = v3_error(
        a.create_from_url(&format!("http://127.0.0.1:{port}/missing.txt"))
            .await,
        400,
    )
    .await;
    assert_eq!(v["innerError"]["code"], "DataImportFailed", "{v}");
    assert_eq!(a.total().await, listed);
    assert_eq!(files_under(&blob_dir), blobs);
    let resp = a
        .create_from_url(&format!("http://127.0.0.1:{port}/lang.txt"))
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let fetched: Value = resp.json().await.unwrap();
    assert_eq!(fetched["status"], "Succeeded");
    assert_eq!(
        fetched["properties"]["acceptedLineCount"],
        language["properties"]["acceptedLineCount"]
    );

    // Uploads may be larger than the region's general 32 MiB body limit (here 36 MiB, of
    // files that are not audio: created, and Failed).
    let chunk = noise(6 * 1024 * 1024);
    let names: Vec<String> = (0..6).map(|i| format!("n{i}.wav")).collect();
    let mut entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), chunk.as_slice()))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let trans = trans_for(&refs);
    entries.push(("trans.txt", &trans));
    let large = zip_of(&entries, true);
    assert!(large.len() > 32 * 1024 * 1024);
    let resp = a.upload(&a.base, "Acoustic", "large", large).await;
    assert_eq!(resp.status().as_u16(), 201);
    let large: Value = resp.json().await.unwrap();
    assert_eq!(large["status"], "Failed");
    assert_eq!(large["properties"]["rejectedLineCount"], 6);

    // Locales.
    let locales: Value = a
        .get(&format!("{}/datasets/locales", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert!(locales["Acoustic"]
        .as_array()
        .unwrap()
        .contains(&json!("en-US")));

    // DELETE: gone from get and list, and its blobs with it.
    let id = location.rsplit('/').next().unwrap().to_owned();
    let before = files_under(&blob_dir).len();
    assert!(files_under(&blob_dir)
        .iter()
        .any(|p| p.to_string_lossy().contains(&id)));
    let resp = a
        .http
        .delete(&location)
        .header(KEY, &a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    v3_error(a.get(&location).await, 404).await;
    assert!(!files_under(&blob_dir)
        .iter()
        .any(|p| p.to_string_lossy().contains(&id)));
    assert_eq!(files_under(&blob_dir).len(), before - 52);
    assert_eq!(a.total().await, 5);

    server.abort();
}

async fn report_of(a: &Api, dataset: &Value) -> Value {
    let files: Value = a
        .get(dataset["links"]["files"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let report = files["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "DatasetReport")
        .expect("a report file")
        .clone();
    a.get(report["links"]["contentUrl"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap()
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}
