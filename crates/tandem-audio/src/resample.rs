//! Band-limited sample-rate conversion: polyphase windowed-sinc with a Kaiser window.
//!
//! The ratio is reduced to `up / down`. Each output sample sits at an exact rational position in
//! the input, `n · down / up`; the fractional part selects one of `up` precomputed filter phases
//! (or, for awkward ratios with a huge `up`, the nearest of a few thousand). When downsampling,
//! the cutoff moves below the output Nyquist frequency so nothing aliases.

use crate::Pcm;

/// Zero crossings of the sinc on each side of the centre: sets steepness and cost.
const ZERO_CROSSINGS: f64 = 16.0;
/// Cutoff as a fraction of the lower Nyquist frequency, leaving room for the transition band.
const ROLLOFF: f64 = 0.94;
/// Kaiser β: about 85 dB stop-band attenuation.
const KAISER_BETA: f64 = 8.5;
/// Upper bound on the filter table, in coefficients, for ratios that need phase quantisation.
const MAX_TABLE: usize = 2_000_000;

/// Resample to `to_rate` Hz. Identity (a copy) when the rates already match; an empty result if
/// either rate is 0. Output length is `ceil(len · to_rate / from_rate)`.
pub fn resample(pcm: &Pcm, to_rate: u32) -> Pcm {
    let from_rate = pcm.sample_rate;
    if from_rate == to_rate {
        return pcm.clone();
    }
    if from_rate == 0 || to_rate == 0 || pcm.samples.is_empty() {
        return Pcm {
            sample_rate: to_rate,
            samples: Vec::new(),
        };
    }
    let g = gcd(from_rate, to_rate);
    let filter = Filter::new(u64::from(to_rate / g), u64::from(from_rate / g));
    Pcm {
        sample_rate: to_rate,
        samples: filter.run(&pcm.samples),
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A polyphase filter bank for one `up / down` ratio.
struct Filter {
    up: u64,
    down: u64,
    /// Number of phases in the table (`up`, or fewer when quantised).
    phases: u64,
    /// Taps per phase; the window covers `taps` consecutive input samples.
    taps: usize,
    /// Input samples before the output position covered by tap 0, minus one.
    half: usize,
    /// `phases × taps` coefficients, phase-major.
    table: Vec<f32>,
}

impl Filter {
    fn new(up: u64, down: u64) -> Filter {
        // Cutoff in cycles per input sample.
        let cutoff = 0.5 * ROLLOFF * (up as f64 / down as f64).min(1.0);
        let half_width = ZERO_CROSSINGS / (2.0 * cutoff);
        let half = half_width.ceil() as usize;
        let taps = 2 * half;
        let max_phases = (MAX_TABLE / taps).max(64) as u64;
        let phases = up.min(max_phases);
        let mut table = Vec::with_capacity(phases as usize * taps);
        let norm = bessel_i0(KAISER_BETA);
        for p in 0..phases {
            let frac = p as f64 / phases as f64;
            let start = table.len();
            for j in 0..taps {
                // Distance from the output position (i + frac) to input sample i + j - (half - 1).
                let d = j as f64 - (half as f64 - 1.0) - frac;
                let x = d / half_width;
                let w = if x.abs() >= 1.0 {
                    0.0
                } else {
                    bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / norm
                };
                table.push((2.0 * cutoff * sinc(2.0 * cutoff * d) * w) as f32);
            }
            // Unity gain at DC for every phase.
            let sum: f32 = table[start..].iter().sum();
            if sum.abs() > f32::EPSILON {
                table[start..].iter_mut().for_each(|c| *c /= sum);
            }
        }
        Filter {
            up,
            down,
            phases,
            taps,
            half,
            table,
        }
    }

    fn run(&self, input: &[f32]) -> Vec<f32> {
        let out_len = (input.len() as u64 * self.up).div_ceil(self.down) as usize;
        // Zero padding on both sides keeps the inner loop free of bounds logic.
        let pad = self.taps;
        let mut padded = vec![0.0f32; input.len() + 2 * pad];
        padded[pad..pad + input.len()].copy_from_slice(input);
        let mut out = Vec::with_capacity(out_len);
        for n in 0..out_len as u64 {
            let pos = n * self.down;
            let mut i = (pos / self.up) as usize;
            let mut phase = if self.phases == self.up {
                pos % self.up
            } else {
                ((pos % self.up) * self.phases + self.up / 2) / self.up
            };
            if phase == self.phases {
                phase = 0;
                i += 1;
            }
            let first = pad + i + 1 - self.half;
            let window = &padded[first..first + self.taps];
            let coeffs = &self.table[phase as usize * self.taps..][..self.taps];
            out.push(dot(window, coeffs));
        }
        out
    }
}

/// Dot product in eight independent lanes, which the compiler vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests;
