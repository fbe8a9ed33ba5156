//! Resemblyzer's front end: 16 kHz audio, volume raised to -30 dBFS, long silences dropped,
//! a 40-band Slaney mel *power* spectrogram (25 ms Hann window, 10 ms hop, no log), cut into
//! partial windows of 160 frames.

use tandem_audio::{detect_speech, resample, Pcm};

/// The encoder's sample rate, Hz.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT length and window: 25 ms.
const N_FFT: usize = 400;
/// Hop: 10 ms.
pub const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 40;
/// Spectrum bins.
const N_BINS: usize = N_FFT / 2 + 1;
/// Frames per partial window (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;
/// Partials per second of audio (Resemblyzer's `rate`): one every 77 frames.
const PARTIAL_RATE: f64 = 1.3;
/// A last partial covering less of real audio than this is dropped.
const MIN_COVERAGE: f64 = 0.75;
/// Volume target, dBFS (RMS); quieter audio is raised, louder is left alone.
const TARGET_DBFS: f64 = -30.0;
/// VAD frame: 30 ms.
const VAD_FRAME: usize = 480;
/// Width of the moving average over voiced flags, frames.
const VAD_AVERAGE: usize = 8;
/// Frames kept on each side of voiced frames (Resemblyzer's dilation by 6+1 frames).
const VAD_DILATE: usize = 3;
/// A frame is voiced when it is this far above the recording's noise floor, dB...
const VAD_ABOVE_FLOOR_DB: f64 = 12.0;
/// ...and above this absolute level, dBFS (after volume normalisation).
const VAD_MIN_DBFS: f64 = -45.0;

/// The audio the encoder sees: resampled to 16 kHz, volume-normalised, the silence before and
/// after speech ([`detect_speech`]) and long pauses inside it removed.
/// Non-finite samples count as silence.
pub fn preprocess(pcm: &Pcm) -> Vec<f32> {
    if pcm.sample_rate == 0 {
        return Vec::new();
    }
    let mut pcm = Pcm {
        sample_rate: pcm.sample_rate,
        samples: pcm
            .samples
            .iter()
            .map(|&x| if x.is_finite() { x } else { 0.0 })
            .collect(),
    };
    if pcm.sample_rate != SAMPLE_RATE {
        pcm = resample(&pcm, SAMPLE_RATE);
    }
    let Some(span) = detect_speech(&pcm) else {
        return Vec::new();
    };
    let wav = normalize_volume(&pcm.samples);
    let start = ((span.start_secs * f64::from(SAMPLE_RATE)) as usize).min(wav.len());
    let end = ((span.end_secs * f64::from(SAMPLE_RATE)) as usize).clamp(start, wav.len());
    drop_pauses(&wav, start, end)
}

/// Seconds of speech left after [`preprocess`]: what a voice signature is computed from.
pub fn voiced_seconds(pcm: &Pcm) -> f64 {
    preprocess(pcm).len() as f64 / f64::from(SAMPLE_RATE)
}

fn normalize_volume(wav: &[f32]) -> Vec<f32> {
    let mean_sq = wav
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / wav.len().max(1) as f64;
    let change = TARGET_DBFS - 10.0 * mean_sq.max(1e-20).log10();
    if change <= 0.0 {
        return wav.to_vec();
    }
    let gain = 10f64.powf(change / 20.0) as f32;
    wav.iter().map(|&x| x * gain).collect()
}

/// Keeps the 30 ms frames of `wav[start..end]` that are voiced after smoothing and dilation,
/// as Resemblyzer does with webrtcvad; ours is an energy detector with an adaptive floor.
fn drop_pauses(wav: &[f32], start: usize, end: usize) -> Vec<f32> {
    let level = |f: &[f32]| {
        let ms = f.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / f.len() as f64;
        10.0 * ms.max(1e-12).log10()
    };
    let mut all: Vec<f64> = wav.chunks_exact(VAD_FRAME).map(level).collect();
    if all.is_empty() {
        return Vec::new();
    }
    all.sort_by(f64::total_cmp);
    let floor = all[(all.len() - 1) / 10];
    let threshold = (floor + VAD_ABOVE_FLOOR_DB).max(VAD_MIN_DBFS);

    let frames: Vec<&[f32]> = wav[start..end].chunks(VAD_FRAME).collect();
    let voiced: Vec<f64> = frames
        .iter()
        .map(|f| if level(f) > threshold { 1.0 } else { 0.0 })
        .collect();
    let n = voiced.len();
    let half = VAD_AVERAGE / 2;
    let smooth: Vec<bool> = (0..n)
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + VAD_AVERAGE - half).min(n);
            voiced[lo..hi].iter().sum::<f64>() / VAD_AVERAGE as f64 > 0.5 - 1e-9
        })
        .collect();
    let mut out = Vec::with_capacity(end - start);
    for (i, frame) in frames.iter().enumerate() {
        let lo = i.saturating_sub(VAD_DILATE);
        let hi = (i + VAD_DILATE + 1).min(n);
        if smooth[lo..hi].iter().any(|&v| v) {
            out.extend_from_slice(frame);
        }
    }
    out
}

/// First mel frame of each partial window for `n_samples` of audio, and the length the audio
/// must be zero-padded to so that the last window is full (Resemblyzer's
/// `compute_partial_slices`).
pub fn partial_starts(n_samples: usize) -> (Vec<usize>, usize) {
    let n_frames = (n_samples + 1).div_ceil(HOP);
    let step = ((f64::from(SAMPLE_RATE) / PARTIAL_RATE) / HOP as f64).round() as usize;
    let steps = (n_frames + step + 1).saturating_sub(PARTIAL_FRAMES).max(1);
    let mut starts: Vec<usize> = (0..steps).step_by(step).collect();
    if let Some(&last) = starts.last() {
        let begin = last * HOP;
        let coverage = (n_samples as f64 - begin as f64) / (PARTIAL_FRAMES * HOP) as f64;
        if coverage < MIN_COVERAGE && starts.len() > 1 {
            starts.pop();
        }
    }
    let padded = (starts.last().copied().unwrap_or(0) + PARTIAL_FRAMES) * HOP;
    (starts, padded.max(n_samples))
}

/// The mel power spectrogram: tables computed once.
pub struct MelSpectrogram {
    window: Vec<f32>,
    /// cos and sin of the DFT, `N_BINS x N_FFT`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// Slaney mel filterbank, `N_MELS x N_BINS`.
    filters: Vec<f32>,
}

impl MelSpectrogram {
    /// Builds the window, DFT and filterbank tables.
    pub fn new() -> Self {
        let tau = std::f64::consts::TAU;
        let window = (0..N_FFT)
            .map(|n| (0.5 - 0.5 * (tau * n as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        let mut cos = Vec::with_capacity(N_BINS * N_FFT);
        let mut sin = Vec::with_capacity(N_BINS * N_FFT);
        for k in 0..N_BINS {
            for n in 0..N_FFT {
                let a = tau * ((k * n) % N_FFT) as f64 / N_FFT as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        Self {
            window,
            cos,
            sin,
            filters: slaney_filters(),
        }
    }

    /// `1 + len / HOP` frames of `N_MELS` values, centred frames with reflect padding.
    pub fn compute(&self, wav: &[f32]) -> Vec<[f32; N_MELS]> {
        let pad = N_FFT / 2;
        let len = wav.len();
        let at = |i: isize| -> f32 {
            // Reflect padding (no edge repeat); zero if the signal is too short to reflect.
            let n = len as isize;
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            if (0..n).contains(&j) {
                wav[j as usize]
            } else {
                0.0
            }
        };
        let n_frames = 1 + len / HOP;
        let mut frame = vec![0f32; N_FFT];
        let mut power = vec![0f32; N_BINS];
        let mut out = Vec::with_capacity(n_frames);
        for t in 0..n_frames {
            let origin = (t * HOP) as isize - pad as isize;
            for (n, x) in frame.iter_mut().enumerate() {
                *x = at(origin + n as isize) * self.window[n];
            }
            for (k, p) in power.iter_mut().enumerate() {
                let row = k * N_FFT..(k + 1) * N_FFT;
                let re = super::lstm::dot(&frame, &self.cos[row.clone()]);
                let im = super::lstm::dot(&frame, &self.sin[row]);
                *p = re * re + im * im;
            }
            let mut mel = [0f32; N_MELS];
            for (m, v) in mel.iter_mut().enumerate() {
                *v = super::lstm::dot(&power, &self.filters[m * N_BINS..(m + 1) * N_BINS]);
            }
            out.push(mel);
        }
        out
    }
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Slaney mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(f: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// Triangular filters between `N_MELS + 2` mel-spaced points from 0 to 8 kHz, area-normalised
/// (Slaney), as librosa's `filters.mel(norm="slaney")`.
fn slaney_filters() -> Vec<f32> {
    let fmax = f64::from(SAMPLE_RATE) / 2.0;
    let top = hz_to_mel(fmax);
    let points: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let freqs: Vec<f64> = (0..N_BINS)
        .map(|k| fmax * k as f64 / (N_BINS - 1) as f64)
        .collect();
    let mut w = vec![0f32; N_MELS * N_BINS];
    for m in 0..N_MELS {
        let (lo, mid, hi) = (points[m], points[m + 1], points[m + 2]);
        let enorm = 2.0 / (hi - lo);
        for (k, &f) in freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            w[m * N_BINS + k] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_follow_resemblyzer() {
        // 1 s: 101 frames, one partial (padded to 1.6 s).
        assert_eq!(partial_starts(16_000), (vec![0], 25_600));
        // 3 s: 301 frames; starts 0, 77, 154 (the last covers 91 % real audio).
        let (starts, padded) = partial_starts(48_000);
        assert_eq!(starts, vec![0, 77, 154]);
        assert_eq!(padded, (154 + 160) * 160);
    }

    #[test]
    fn mel_of_a_tone_peaks_in_its_band() {
        let mel = MelSpectrogram::new();
        let wav: Vec<f32> = (0..16_000)
            .map(|n| (std::f32::consts::TAU * 1000.0 * n as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let frames = mel.compute(&wav);
        assert_eq!(frames.len(), 101);
        let f = frames[50];
        let best = (0..N_MELS).max_by(|&a, &b| f[a].total_cmp(&f[b])).unwrap();
        // 1 kHz is mel 15; 8 kHz is mel 45.25, so band centres are 1.10 mel apart and the
        // tone falls between the centres of bands 12 and 13.
        assert!((12..=13).contains(&best), "peak in band {best}");
        // Power, not dB: a 0.5-amplitude tone has energy (0.5 * sum(w)/2)^2 ~ 2500 in its bin.
        assert!(f[best] > 1.0);
    }

    #[test]
    fn silence_is_trimmed_and_quiet_speech_raised() {
        let mut samples = vec![0.0f32; 16_000];
        samples.extend((0..16_000).map(|n| (n as f32 * 0.05).sin() * 0.02));
        samples.extend(vec![0.0f32; 16_000]);
        let wav = preprocess(&Pcm {
            sample_rate: 16_000,
            samples,
        });
        assert!((15_000..=20_000).contains(&wav.len()), "{}", wav.len());
        let rms = (wav.iter().map(|x| x * x).sum::<f32>() / wav.len() as f32).sqrt();
        assert!(rms > 0.03, "{rms}");
    }
}
