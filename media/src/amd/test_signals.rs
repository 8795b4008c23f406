//! Synthetic test signals for the detectors' unit tests: silence, tones,
//! white noise and a crude voiced sound (harmonics under moving formants,
//! with syllable-rate loudness changes).

use std::f64::consts::PI;

const RATE: f64 = 8000.0;

fn samples(ms: u32) -> usize {
    ms as usize * 8
}

/// Digital silence.
pub(crate) fn silence(ms: u32) -> Vec<i16> {
    vec![0; samples(ms)]
}

/// A sum of sines (equal amplitudes summing to `amplitude`), 2 ms fades.
pub(crate) fn tone(freqs: &[f64], amplitude: f64, ms: u32) -> Vec<i16> {
    let n = samples(ms);
    let fade = 16.0;
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE;
            let g = (i as f64 / fade).min((n - i) as f64 / fade).min(1.0);
            let v: f64 = freqs.iter().map(|f| (2.0 * PI * f * t).sin()).sum::<f64>()
                / freqs.len().max(1) as f64;
            (v * amplitude * g) as i16
        })
        .collect()
}

/// Deterministic uniform white noise of RMS about `rms`.
pub(crate) fn noise(ms: u32, rms: f64, seed: u64) -> Vec<i16> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..samples(ms))
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0;
            (u * rms * 3f64.sqrt()) as i16
        })
        .collect()
}

/// A voiced sound: harmonics of a gliding `pitch` shaped by two moving
/// formants, loudness varying at syllable rate (~4 Hz) but never silent.
pub(crate) fn voice(ms: u32, pitch: f64, amplitude: f64) -> Vec<i16> {
    let n = samples(ms);
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE;
            let f0 = pitch * (1.0 + 0.15 * (2.0 * PI * 1.3 * t).sin());
            phase += 2.0 * PI * f0 / RATE;
            let f1 = 600.0 + 250.0 * (2.0 * PI * 3.1 * t).sin();
            let f2 = 1600.0 + 500.0 * (2.0 * PI * 2.3 * t).cos();
            let mut v = 0.0;
            let mut k = 1.0;
            while k * f0 < 3400.0 {
                let h = k * f0;
                let g = 1.0 / (1.0 + ((h - f1) / 150.0).powi(2))
                    + 0.6 / (1.0 + ((h - f2) / 200.0).powi(2))
                    + 0.05;
                v += g * (k * phase).sin();
                k += 1.0;
            }
            let env = 0.6 + 0.4 * (2.0 * PI * 4.0 * t).sin();
            (v * amplitude * env / 2.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Concatenates pieces.
#[derive(Default)]
pub(crate) struct Signal(Vec<i16>);

impl Signal {
    pub(crate) fn new() -> Signal {
        Signal::default()
    }

    pub(crate) fn then(mut self, piece: Vec<i16>) -> Signal {
        self.0.extend(piece);
        self
    }

    pub(crate) fn build(self) -> Vec<i16> {
        self.0
    }
}
