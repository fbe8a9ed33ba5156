//! Validation of each dataset kind.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use tandem_audio::decode_wav_with_format;
use tandem_engines::text::parse_trans_txt;

use crate::zipfile::{read_flat_zip, Entry};
use crate::{DatasetError, FileReport, Limits, Report};

/// Azure's dataset kinds that Tandem accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// A flat zip of WAVs plus `trans.txt` (`name<TAB>transcript`).
    Acoustic,
    /// Plain text, one sentence or phrase per line.
    Language,
    /// `word<TAB>spoken form` per line.
    Pronunciation,
    /// A flat zip of WAVs, no transcripts.
    AudioFiles,
}

impl DatasetKind {
    /// Azure's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Acoustic => "Acoustic",
            DatasetKind::Language => "Language",
            DatasetKind::Pronunciation => "Pronunciation",
            DatasetKind::AudioFiles => "AudioFiles",
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            DatasetKind::Acoustic,
            DatasetKind::Language,
            DatasetKind::Pronunciation,
            DatasetKind::AudioFiles,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            format!(
                "unknown dataset kind {s:?}: use Acoustic, Language, Pronunciation or AudioFiles"
            )
        })
    }
}

/// One audio file with its transcript (Acoustic) or without (AudioFiles).
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// The file name, as in the zip.
    pub name: String,
    /// Its transcript (empty for AudioFiles).
    pub transcript: String,
    /// Its length, seconds.
    pub duration_secs: f64,
}

/// A validated upload: what to keep, and the report.
#[derive(Debug, Clone, Default)]
pub struct Validated {
    /// The report, file by file.
    pub report: Report,
    /// Accepted audio files, with their bytes as uploaded (Acoustic, AudioFiles).
    pub audio: Vec<(Utterance, Vec<u8>)>,
    /// Accepted text lines (Language).
    pub lines: Vec<String>,
    /// Accepted pronunciations, `(word, spoken form)` (Pronunciation).
    pub pronunciations: Vec<(String, String)>,
}

/// Validates an upload of `kind`. Whole-upload problems are errors; per-file and per-line
/// problems are in the report, and whatever is valid is kept.
pub fn validate(
    kind: DatasetKind,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Validated, DatasetError> {
    match kind {
        DatasetKind::Acoustic => acoustic(read_flat_zip(bytes, limits)?, limits, true),
        DatasetKind::AudioFiles => acoustic(read_flat_zip(bytes, limits)?, limits, false),
        DatasetKind::Language => language(bytes, limits),
        DatasetKind::Pronunciation => pronunciation(bytes, limits),
    }
}

fn utf8<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, DatasetError> {
    if bytes.is_empty() {
        return Err(DatasetError::Empty);
    }
    std::str::from_utf8(bytes).map_err(|e| DatasetError::NotUtf8 {
        name: name.to_owned(),
        offset: e.valid_up_to(),
    })
}

/// Checks one audio file; `Ok(seconds)` or the reason to reject it.
fn check_audio(bytes: &[u8], limits: &Limits) -> Result<f64, String> {
    let (pcm, format) =
        decode_wav_with_format(bytes).map_err(|e| format!("not a usable WAV file: {e}"))?;
    if !format.is_azure_training_format() {
        return Err(format!(
            "unsupported audio format ({format}): use 16-bit mono PCM WAV at 8 or 16 kHz"
        ));
    }
    let secs = pcm.duration_secs();
    if secs <= 0.0 {
        return Err("the audio is empty".into());
    }
    if secs > limits.max_audio_secs {
        return Err(format!(
            "the audio is {secs:.1} s long; at most {} s per file",
            limits.max_audio_secs
        ));
    }
    Ok(secs)
}

fn acoustic(
    entries: Vec<Entry>,
    limits: &Limits,
    with_transcripts: bool,
) -> Result<Validated, DatasetError> {
    let mut out = Validated::default();
    let is_trans = |e: &Entry| e.name.eq_ignore_ascii_case("trans.txt");
    let mut transcripts: HashMap<String, String> = HashMap::new();
    if with_transcripts {
        let trans = entries
            .iter()
            .find(|e| is_trans(e))
            .ok_or(DatasetError::MissingTranscripts)?;
        let text = utf8(&trans.name, &trans.bytes)?;
        let mut seen = HashSet::new();
        for (name, transcript) in parse_trans_txt(text) {
            if !seen.insert(name.to_ascii_lowercase()) {
                out.report.push(FileReport::rejected(
                    format!("trans.txt:{name}"),
                    "a second transcript line for the same file",
                ));
            } else if transcript.is_empty() {
                out.report.push(FileReport::rejected(
                    format!("trans.txt:{name}"),
                    "the transcript is empty",
                ));
            } else {
                transcripts.insert(name.to_ascii_lowercase(), transcript);
            }
        }
    }
    let mut present = HashSet::new();
    for e in entries
        .into_iter()
        .filter(|e| !(with_transcripts && is_trans(e)))
    {
        present.insert(e.name.to_ascii_lowercase());
        if !e.name.to_ascii_lowercase().ends_with(".wav") {
            out.report
                .push(FileReport::rejected(&e.name, "not a .wav file"));
            continue;
        }
        let transcript = match transcripts.get(&e.name.to_ascii_lowercase()) {
            Some(t) => t.clone(),
            None if with_transcripts => {
                out.report.push(FileReport::rejected(
                    &e.name,
                    "no transcript for this file in trans.txt",
                ));
                continue;
            }
            None => String::new(),
        };
        match check_audio(&e.bytes, limits) {
            Ok(secs) => {
                out.report.push(FileReport::accepted(&e.name, Some(secs)));
                out.audio.push((
                    Utterance {
                        name: e.name,
                        transcript,
                        duration_secs: secs,
                    },
                    e.bytes,
                ));
            }
            Err(reason) => out.report.push(FileReport::rejected(&e.name, reason)),
        }
    }
    let mut missing: Vec<&String> = transcripts
        .keys()
        .filter(|n| !present.contains(*n))
        .collect();
    missing.sort();
    for name in missing {
        out.report.push(FileReport::rejected(
            name.clone(),
            "listed in trans.txt, but there is no such file in the zip",
        ));
    }
    Ok(out)
}

fn lines_of(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

fn language(bytes: &[u8], limits: &Limits) -> Result<Validated, DatasetError> {
    let text = utf8("the language data", bytes)?;
    let mut out = Validated::default();
    for (n, line) in lines_of(text) {
        if line.chars().count() > limits.max_line_chars {
            out.report.push(FileReport::rejected(
                format!("line {n}"),
                format!("longer than {} characters", limits.max_line_chars),
            ));
        } else {
            out.report.accepted_line_count += 1;
            out.lines.push(line.to_owned());
        }
    }
    Ok(out)
}

fn pronunciation(bytes: &[u8], limits: &Limits) -> Result<Validated, DatasetError> {
    let text = utf8("the pronunciation data", bytes)?;
    let mut out = Validated::default();
    for (n, line) in lines_of(text) {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        match fields.as_slice() {
            [word, spoken]
                if !word.is_empty()
                    && !spoken.is_empty()
                    && line.chars().count() <= limits.max_line_chars =>
            {
                out.report.accepted_line_count += 1;
                out.pronunciations
                    .push(((*word).to_owned(), (*spoken).to_owned()));
            }
            _ => out.report.push(FileReport::rejected(
                format!("line {n}"),
                "expected `word<TAB>spoken form`",
            )),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use tandem_audio::{encode_wav_pcm16, Pcm};

    use super::*;
    use crate::zipfile::tests::zip_of;
    use crate::FileStatus;

    fn wav(rate: u32, secs: f64) -> Vec<u8> {
        encode_wav_pcm16(&Pcm {
            sample_rate: rate,
            samples: vec![0.1; (f64::from(rate) * secs) as usize],
        })
    }

    fn rejected(v: &Validated) -> Vec<(String, String)> {
        v.report
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Rejected)
            .map(|f| (f.name.clone(), f.reason.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn an_acoustic_zip_with_a_messy_trans_txt_is_accepted_and_problems_are_named() {
        let good = wav(16_000, 1.5);
        let stereo44 = {
            // 44.1 kHz, 2 channels: a header by hand (the encoder writes mono only).
            let mut w = wav(44_100, 0.5);
            w[22] = 2;
            w[28..32].copy_from_slice(&(44_100u32 * 4).to_le_bytes());
            w[32] = 4;
            w
        };
        let trans = "\u{feff}a.wav \tHello there\r\nb.wav\t  Second one  \r\nmissing.wav\tnot here\r\nc.wav\tstereo\r\n";
        let z = zip_of(&[
            ("a.wav", &good),
            ("b.wav", &wav(8_000, 2.0)),
            ("c.wav", &stereo44),
            ("d.wav", &good),
            ("notes.txt", b"hi"),
            ("trans.txt", trans.as_bytes()),
        ]);
        let v = validate(DatasetKind::Acoustic, &z, &Limits::default()).unwrap();
        assert_eq!(v.report.accepted_line_count, 2);
        assert_eq!(v.audio[0].0.transcript, "Hello there");
        assert_eq!(v.audio[1].0.transcript, "Second one");
        assert!((v.report.duration_secs - 3.5).abs() < 1e-6);
        let r = rejected(&v);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(r
            .iter()
            .any(|(n, why)| n == "c.wav" && why.contains("44100 Hz, 2 channels")));
        assert!(r
            .iter()
            .any(|(n, why)| n == "d.wav" && why.contains("no transcript")));
        assert!(r
            .iter()
            .any(|(n, why)| n == "notes.txt" && why.contains("not a .wav")));
        assert!(r
            .iter()
            .any(|(n, why)| n == "missing.wav" && why.contains("no such file")));
    }

    #[test]
    fn an_acoustic_zip_needs_trans_txt_and_good_audio() {
        let z = zip_of(&[("a.wav", &wav(16_000, 1.0))]);
        assert_eq!(
            validate(DatasetKind::Acoustic, &z, &Limits::default()).unwrap_err(),
            DatasetError::MissingTranscripts
        );
        let z = zip_of(&[
            ("a.wav", b"not audio at all"),
            ("long.wav", &wav(8_000, 61.0)),
            ("trans.txt", b"a.wav\tx\nlong.wav\ty\n"),
        ]);
        let v = validate(DatasetKind::Acoustic, &z, &Limits::default()).unwrap();
        assert_eq!(v.report.accepted_line_count, 0);
        let r = rejected(&v);
        assert!(r[0].1.contains("not a usable WAV"), "{r:?}");
        assert!(r[1].1.contains("at most 60 s"), "{r:?}");
        let z = zip_of(&[("trans.txt", &[0xff, 0xfe, 0x00])]);
        assert!(matches!(
            validate(DatasetKind::Acoustic, &z, &Limits::default()),
            Err(DatasetError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn audio_files_need_no_transcripts() {
        let z = zip_of(&[("a.wav", &wav(16_000, 1.0))]);
        let v = validate(DatasetKind::AudioFiles, &z, &Limits::default()).unwrap();
        assert_eq!(v.report.accepted_line_count, 1);
        assert_eq!(v.audio[0].0.transcript, "");
    }

    #[test]
    fn text_kinds_count_lines_and_name_bad_ones() {
        let v = validate(
            DatasetKind::Language,
            "\u{feff}The cell wall.\r\n\r\n  Mitochondria make ATP. \n".as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(v.lines, ["The cell wall.", "Mitochondria make ATP."]);
        let long = "x".repeat(1001);
        let v = validate(DatasetKind::Language, long.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(rejected(&v)[0].0, "line 1");
        let v = validate(
            DatasetKind::Pronunciation,
            b"ATP\ta t p\nbroken line\nDNA\td n a\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(v.pronunciations.len(), 2);
        assert_eq!(
            rejected(&v),
            [(
                "line 2".to_string(),
                "expected `word<TAB>spoken form`".to_string()
            )]
        );
        assert_eq!(
            validate(DatasetKind::Language, b"", &Limits::default()).unwrap_err(),
            DatasetError::Empty
        );
        assert!(matches!(
            validate(DatasetKind::Language, &[b'a', 0xc3], &Limits::default()),
            Err(DatasetError::NotUtf8 { offset: 1, .. })
        ));
    }

    #[test]
    fn kinds_parse_case_insensitively_and_name_the_choices() {
        assert_eq!(
            "acoustic".parse::<DatasetKind>().unwrap(),
            DatasetKind::Acoustic
        );
        assert!("Video"
            .parse::<DatasetKind>()
            .unwrap_err()
            .contains("AudioFiles"));
    }

    #[test]
    fn the_biology_set_validates_whole() {
        let dir = tandem_testkit::shared_data().join("custom-speech-biology");
        let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("audio"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        entries.push((
            "trans.txt".into(),
            std::fs::read(dir.join("trans.txt")).unwrap(),
        ));
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let v = validate(DatasetKind::Acoustic, &zip_of(&refs), &Limits::default()).unwrap();
        assert_eq!(v.report.accepted_line_count, 50, "{:?}", rejected(&v));
        assert_eq!(v.report.rejected_line_count, 0);
        let text = std::fs::read(dir.join("language-data.txt")).unwrap();
        let v = validate(DatasetKind::Language, &text, &Limits::default()).unwrap();
        assert_eq!(v.report.rejected_line_count, 0);
        assert!(v.lines.len() >= 150, "{}", v.lines.len());
    }
}
