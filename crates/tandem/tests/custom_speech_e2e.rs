//! Custom Speech end to end (issue #4), through HTTP against a real `tandem serve` process, on
//! the real biology data: an Acoustic zip built from the shared WAVs and their `trans.txt`
//! lines, uploaded with the Language data; a model trained from the Language data only; an
//! evaluation of base against custom on the Acoustic dataset; an endpoint; and short-audio
//! recognition with `?cid=`, scored with the project's one WER function.
//!
//! The test clips are the first [`CLIPS`] of `trans.txt` whose transcript does not occur
//! verbatim in `language-data.txt`, so that a lower custom WER cannot come from training on the
//! test sentences themselves.

mod common;
use std::io::Write;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};
use tandem_engines::text::{normalize_for_wer, word_errors, WerStats};
use zip::write::SimpleFileOptions;

/// Recordings in the test set (a subset of the 50, for CI time).
const CLIPS: usize = 8;

/// One line of the real `trans.txt`, as written there (stray spaces and all).
struct Line {
    raw: String,
    name: String,
    transcript: String,
}

fn biology_dir() -> std::path::PathBuf {
    shared_data().join("custom-speech-biology")
}

/// The test lines: the first `CLIPS` lines of `trans.txt` whose normalised transcript is not a
/// substring of the normalised language data.
fn test_lines(language_data: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(biology_dir().join("trans.txt")).unwrap();
    let language = format!(" {} ", normalize_for_wer(language_data).join(" "));
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter_map(|raw| {
            let (name, transcript) = raw.split_once('\t')?;
            Some(Line {
                raw: raw.trim_end_matches('\r').to_owned(),
                name: name.trim().to_owned(),
                transcript: transcript.trim().to_owned(),
            })
        })
        .filter(|l| {
            let words = format!(" {} ", normalize_for_wer(&l.transcript).join(" "));
            !language.contains(&words)
        })
        .take(CLIPS)
        .collect()
}

/// The Acoustic zip: the lines' WAVs from the shared folder and a `trans.txt` of the same lines,
/// with a BOM and CRLF line ends as Windows tools write them.
fn acoustic_zip_of(lines: &[Line]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    let mut trans = String::from("\u{feff}");
    for l in lines {
        w.start_file(l.name.as_str(), opts).unwrap();
        w.write_all(&wav_bytes(&biology_dir().join("audio").join(&l.name)))
            .unwrap();
        trans.push_str(&l.raw);
        trans.push_str("\r\n");
    }
    w.start_file("trans.txt", opts).unwrap();
    w.write_all(trans.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

/// The per-file error counts of hypothesis `n` (1 or 2) in an `EvaluationDetails` entry.
fn file_errors(entry: &Value, n: u8) -> WerStats {
    let e = &entry[format!("errors{n}")];
    let get = |k: &str| count(e, k) as usize;
    WerStats {
        substitutions: get("substitutions"),
        deletions: get("deletions"),
        insertions: get("insertions"),
        reference_words: get("wordCount"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_speech_end_to_end_on_the_biology_set() {
    let started = Instant::now();
    let region = region("westus").await;
    let keys = region.create_resource("e2e");
    let a = Api::new(&region, &keys.key1);
    let language_text = std::fs::read_to_string(biology_dir().join("language-data.txt")).unwrap();
    let lines = test_lines(&language_text);
    assert_eq!(lines.len(), CLIPS);

    // Upload the Acoustic zip and the Language data; both are Succeeded.
    let acoustic = a
        .upload("Acoustic", "biology test audio", acoustic_zip_of(&lines))
        .await;
    let acoustic_self = acoustic["self"].as_str().unwrap().to_owned();
    let acoustic = a.wait(&acoustic_self, Duration::from_secs(60)).await;
    assert_eq!(acoustic["kind"], "Acoustic");
    assert_eq!(acoustic["properties"]["acceptedLineCount"], CLIPS);
    assert_eq!(acoustic["properties"]["rejectedLineCount"], 0);
    let language = a
        .upload("Language", "biology text", language_text.into_bytes())
        .await;
    let language_self = language["self"].as_str().unwrap().to_owned();
    a.wait(&language_self, Duration::from_secs(60)).await;

    // Train from the Language dataset.
    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let base_self = bases["values"][0]["self"].as_str().unwrap().to_owned();
    let resp = a
        .post(
            "/models",
            json!({"baseModel": {"self": base_self}, "datasets": [{"self": language_self}],
                   "locale": "en-US", "displayName": "biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model_self = resp.json::<Value>().await.unwrap()["self"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = a.wait(&model_self, Duration::from_secs(120)).await;
    // Training saw the Language dataset and nothing else: not the Acoustic dataset (its
    // transcripts are the test references).
    assert_eq!(
        model["datasets"],
        json!([{"self": language_self}]),
        "{model}"
    );
    assert_eq!(model["baseModel"]["self"], base_self.as_str());
    assert!(
        !model
            .to_string()
            .contains(acoustic_self.rsplit('/').next().unwrap()),
        "the model refers to the Acoustic dataset: {model}"
    );

    // Evaluate base (model1) against custom (model2) on the Acoustic dataset.
    let resp = a
        .post(
            "/evaluations",
            json!({"model1": {"self": base_self}, "model2": {"self": model_self},
                   "dataset": {"self": acoustic_self}, "locale": "en-US",
                   "displayName": "base vs biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let eval_self = resp.headers()["location"].to_str().unwrap().to_owned();
    let eval = a.wait(&eval_self, Duration::from_secs(300)).await;
    let p = &eval["properties"];
    eprintln!("evaluation: {p}");

    // The per-file details add up to the totals, and the totals are consistent.
    let files: Value = a
        .get(&format!("{eval_self}/files"))
        .await
        .json()
        .await
        .unwrap();
    let details_url = files["values"][0]["links"]["contentUrl"].as_str().unwrap();
    let details: Value = a.get(details_url).await.json().await.unwrap();
    let entries = details["files"].as_array().unwrap().clone();
    assert_eq!(entries.len(), CLIPS, "{details}");
    let mut wers = Vec::new();
    for n in 1..=2u8 {
        let mut total = WerStats::default();
        let mut sentence_errors = 0;
        for (entry, line) in entries.iter().zip(&lines) {
            assert_eq!(entry["name"], line.name.as_str(), "in trans.txt order");
            let e = file_errors(entry, n);
            // Each file's counts are the WER function's on its reference and hypothesis.
            let hyp = entry[format!("hypothesis{n}")].as_str().unwrap();
            assert_eq!(e, word_errors(&line.transcript, hyp), "{entry}");
            assert_eq!(e.reference_words, normalize_for_wer(&line.transcript).len());
            sentence_errors += usize::from(e.errors() > 0);
            total.add(&e);
        }
        let words = count(p, &format!("wordCount{n}"));
        let (c, s, d, i) = (
            count(p, &format!("correctWordCount{n}")),
            count(p, &format!("wordSubstitutionCount{n}")),
            count(p, &format!("wordDeletionCount{n}")),
            count(p, &format!("wordInsertionCount{n}")),
        );
        assert_eq!(words as usize, total.reference_words, "{p}");
        assert_eq!(s as usize, total.substitutions, "{p}");
        assert_eq!(d as usize, total.deletions, "{p}");
        assert_eq!(i as usize, total.insertions, "{p}");
        assert_eq!(c + s + d, words, "{p}");
        let wer = p[format!("wordErrorRate{n}")].as_f64().unwrap();
        assert!((wer - total.wer()).abs() < 1e-9, "{wer} vs {}", total.wer());
        assert_eq!(count(p, &format!("sentenceCount{n}")), CLIPS as u64);
        let ser = p[format!("sentenceErrorRate{n}")].as_f64().unwrap();
        assert!(
            (ser - sentence_errors as f64 / CLIPS as f64).abs() < 1e-9,
            "{p}"
        );
        wers.push(wer);
    }
    assert!(
        wers[1] < wers[0],
        "custom WER {} is not below base {}",
        wers[1],
        wers[0]
    );

    // Deploy, then recognize with `?cid=`: the clip the custom model improved most.
    let resp = a
        .post(
            "/endpoints",
            json!({"model": {"self": model_self}, "locale": "en-US",
                   "displayName": "biology endpoint"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let endpoint = a
        .wait(endpoint["self"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(endpoint["model"]["self"], model_self.as_str());
    let cid = endpoint["self"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (entry, line) = entries
        .iter()
        .zip(&lines)
        .max_by_key(|(e, _)| file_errors(e, 1).errors() as i64 - file_errors(e, 2).errors() as i64)
        .unwrap();
    let base_errors = file_errors(entry, 1);
    let wav = wav_bytes(&biology_dir().join("audio").join(&line.name));
    let (status, body) = a
        .recognize(&region.url, &format!("language=en-US&cid={cid}"), wav)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["RecognitionStatus"], "Success", "{body}");
    let text = body["DisplayText"].as_str().unwrap();
    let errors = word_errors(&line.transcript, text);
    eprintln!(
        "{}: {:?}\n  base (evaluation) {:?}: {} errors\n  cid {text:?}: {} errors",
        line.name,
        line.transcript,
        entry["hypothesis1"],
        base_errors.errors(),
        errors.errors()
    );
    assert!(
        errors.errors() < base_errors.errors(),
        "cid recognition of {} has {} errors, base had {}",
        line.name,
        errors.errors(),
        base_errors.errors()
    );
    assert!(
        errors.errors() <= file_errors(entry, 2).errors() + 1,
        "cid recognition differs from the evaluation's custom hypothesis: {text:?} vs {}",
        entry["hypothesis2"]
    );
    eprintln!("end to end took {:?}", started.elapsed());
}
