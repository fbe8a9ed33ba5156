//! Energy-based voice activity detection with an adaptive noise floor.
//!
//! The audio is cut into 20 ms frames and each frame's RMS level measured. The noise floor is
//! the 10th-percentile frame level of the recording, so it adapts to each recording's
//! background. A frame is voiced when it is at least [`ABOVE_FLOOR_DB`] over that floor *and*
//! above the absolute minimum [`MIN_SPEECH_DBFS`]. Voiced runs separated by less than the
//! hangover are merged (pauses between words), and a merged segment with under 100 ms of voiced
//! frames is discarded (clicks, pops).

use crate::level::amplitude_to_dbfs;
use crate::Pcm;

/// Frame length in seconds.
const FRAME_SECS: f64 = 0.020;
/// How far above the noise floor a frame must be to count as speech, dB.
const ABOVE_FLOOR_DB: f32 = 12.0;
/// Absolute minimum level of speech, dBFS.
const MIN_SPEECH_DBFS: f32 = -45.0;
/// Percentile of frame levels taken as the noise floor.
const FLOOR_PERCENTILE: f64 = 0.10;
/// Gaps up to this long between voiced runs belong to the same utterance, seconds.
const HANGOVER_SECS: f64 = 0.300;
/// Segments with less voiced time than this are clicks, not speech, seconds.
const MIN_VOICED_SECS: f64 = 0.100;

/// Where speech starts and ends in a recording, in seconds from its beginning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechSpan {
    /// Start of the first voiced frame.
    pub start_secs: f64,
    /// End of the last voiced frame.
    pub end_secs: f64,
}

impl SpeechSpan {
    /// `end_secs - start_secs`.
    pub fn duration_secs(&self) -> f64 {
        self.end_secs - self.start_secs
    }
}

/// A speech segment as a half-open range of frame indices.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    end: usize,
}

/// Samples per frame for a rate (at least 1).
fn frame_len(rate: u32) -> usize {
    ((f64::from(rate) * FRAME_SECS).round() as usize).max(1)
}

/// RMS level of each whole frame, dBFS.
fn frame_levels(pcm: &Pcm) -> Vec<f32> {
    pcm.samples
        .chunks_exact(frame_len(pcm.sample_rate))
        .map(|frame| {
            let energy: f64 = frame.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            amplitude_to_dbfs((energy / frame.len() as f64).sqrt())
        })
        .collect()
}

/// Speech segments, in frames, after floor estimation, hangover and click removal.
fn segments(pcm: &Pcm) -> Vec<Segment> {
    if pcm.sample_rate == 0 {
        return Vec::new();
    }
    let levels = frame_levels(pcm);
    if levels.is_empty() {
        return Vec::new();
    }
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let floor = sorted[((sorted.len() - 1) as f64 * FLOOR_PERCENTILE) as usize];
    let threshold = (floor + ABOVE_FLOOR_DB).max(MIN_SPEECH_DBFS);
    let frame_secs = frame_len(pcm.sample_rate) as f64 / f64::from(pcm.sample_rate);
    let hangover = (HANGOVER_SECS / frame_secs).round() as usize;
    let min_voiced = (MIN_VOICED_SECS / frame_secs).ceil() as usize;

    let mut kept = Vec::new();
    // The segment being built and its number of voiced frames.
    let mut current: Option<(Segment, usize)> = None;
    for (i, &level) in levels.iter().enumerate() {
        if level <= threshold {
            continue;
        }
        current = match current {
            Some((seg, voiced)) if i - seg.end <= hangover => Some((
                Segment {
                    start: seg.start,
                    end: i + 1,
                },
                voiced + 1,
            )),
            previous => {
                if let Some((seg, voiced)) = previous {
                    if voiced >= min_voiced {
                        kept.push(seg);
                    }
                }
                Some((
                    Segment {
                        start: i,
                        end: i + 1,
                    },
                    1,
                ))
            }
        };
    }
    if let Some((seg, voiced)) = current {
        if voiced >= min_voiced {
            kept.push(seg);
        }
    }
    kept
}

/// Find where speech starts and ends; `None` for silence, near-silence or steady noise.
///
/// The span runs from the start of the first speech segment to the end of the last, so pauses
/// inside an utterance are included.
pub fn detect_speech(pcm: &Pcm) -> Option<SpeechSpan> {
    let segs = segments(pcm);
    let (first, last) = (segs.first()?, segs.last()?);
    let frame_secs = frame_len(pcm.sample_rate) as f64 / f64::from(pcm.sample_rate);
    Some(SpeechSpan {
        start_secs: first.start as f64 * frame_secs,
        end_secs: last.end as f64 * frame_secs,
    })
}

/// Total time inside speech segments, seconds (short pauses within an utterance count, long
/// silences between utterances do not). 0 for silence.
pub fn voiced_secs(pcm: &Pcm) -> f64 {
    if pcm.sample_rate == 0 {
        return 0.0;
    }
    let frame_secs = frame_len(pcm.sample_rate) as f64 / f64::from(pcm.sample_rate);
    segments(pcm)
        .iter()
        .map(|s| (s.end - s.start) as f64 * frame_secs)
        .sum()
}

#[cfg(test)]
mod tests;
