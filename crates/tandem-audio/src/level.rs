//! Signal levels in dBFS (0 dBFS = full scale; a full-scale sine has an RMS of about -3 dBFS).

use crate::Pcm;

/// Level reported for silence or empty audio, instead of minus infinity.
pub const SILENCE_DBFS: f32 = -120.0;

/// Convert a linear amplitude to dBFS, floored at [`SILENCE_DBFS`].
pub(crate) fn amplitude_to_dbfs(amplitude: f64) -> f32 {
    if amplitude > 0.0 {
        (20.0 * amplitude.log10()).max(f64::from(SILENCE_DBFS)) as f32
    } else {
        SILENCE_DBFS
    }
}

/// Peak absolute sample level in dBFS; -120 for silence or empty audio.
pub fn peak_dbfs(pcm: &Pcm) -> f32 {
    let peak = pcm.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    amplitude_to_dbfs(f64::from(peak))
}

/// Root-mean-square level in dBFS; -120 for silence or empty audio.
pub fn rms_dbfs(pcm: &Pcm) -> f32 {
    if pcm.samples.is_empty() {
        return SILENCE_DBFS;
    }
    let energy: f64 = pcm
        .samples
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum();
    amplitude_to_dbfs((energy / pcm.samples.len() as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_known_signals() {
        let empty = Pcm {
            sample_rate: 16_000,
            samples: vec![],
        };
        assert_eq!(peak_dbfs(&empty), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&empty), SILENCE_DBFS);
        let zeros = Pcm {
            sample_rate: 16_000,
            samples: vec![0.0; 100],
        };
        assert_eq!(rms_dbfs(&zeros), SILENCE_DBFS);
        let half = Pcm {
            sample_rate: 16_000,
            samples: vec![0.5, -0.5, 0.5, -0.5],
        };
        assert!((peak_dbfs(&half) + 6.02).abs() < 0.01);
        assert!((rms_dbfs(&half) + 6.02).abs() < 0.01);
        let sine = Pcm {
            sample_rate: 16_000,
            samples: (0..16_000).map(|i| (i as f32 * 0.1).sin()).collect(),
        };
        assert!((rms_dbfs(&sine) + 3.01).abs() < 0.05);
    }
}
