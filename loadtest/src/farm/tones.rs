//! Tones the farm generates instead of shipping recordings: in-band DTMF key
//! presses (ITU-T Q.23 frequency pairs) and the special information tone that
//! precedes a "number not in service" announcement (ITU-T E.180 SIT).
//!
//! Pure: 8 kHz mono 16-bit samples, ready for `Prompt::from_pcm`.

use std::f64::consts::TAU;

/// Sample rate of every buffer built here.
pub const RATE: u32 = 8000;
/// Length of one key press.
pub const DTMF_TONE_MS: u32 = 100;
/// Silence after each key press (well above Q.24's 40 ms minimum pause).
pub const DTMF_GAP_MS: u32 = 100;
/// Amplitude of each of the two DTMF tones (about -10 dBFS each).
const DTMF_LEVEL: f64 = 0.3;
/// Amplitude of SIT tones (about -16 dBFS).
const SIT_LEVEL: f64 = 0.16;

/// The low and high frequency of a DTMF key (`0-9`, `*`, `#`, `A-D`).
pub fn dtmf_frequencies(key: char) -> Option<(f64, f64)> {
    const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    let (row, col) = match key.to_ascii_uppercase() {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        _ => return None,
    };
    Some((LOW[row], HIGH[col]))
}

/// Whether every character of `digits` is a DTMF key.
pub fn valid_dtmf(digits: &str) -> bool {
    !digits.is_empty() && digits.chars().all(|c| dtmf_frequencies(c).is_some())
}

/// The key presses of `digits` as in-band audio: each key a 100 ms tone pair
/// followed by 100 ms of silence. Characters that are not keys are skipped.
pub fn dtmf_pcm(digits: &str) -> Vec<i16> {
    let tone = samples(DTMF_TONE_MS);
    let gap = samples(DTMF_GAP_MS);
    let mut out = Vec::with_capacity(digits.len() * (tone + gap));
    for (low, high) in digits.chars().filter_map(dtmf_frequencies) {
        for n in 0..tone {
            let t = n as f64 / f64::from(RATE);
            let v = DTMF_LEVEL * ((TAU * low * t).sin() + (TAU * high * t).sin());
            out.push(to_i16(v * fade(n, tone)));
        }
        out.resize(out.len() + gap, 0);
    }
    out
}

/// An intercept announcement without words: the SIT (913.8, 1370.6 and
/// 1776.7 Hz for 274, 274 and 380 ms), a second of silence, twice.
pub fn sit_announcement_pcm() -> Vec<i16> {
    const SEGMENTS: [(f64, u32); 3] = [(913.8, 274), (1370.6, 274), (1776.7, 380)];
    let mut out = Vec::new();
    for _ in 0..2 {
        for (freq, ms) in SEGMENTS {
            let len = samples(ms);
            for n in 0..len {
                let t = n as f64 / f64::from(RATE);
                out.push(to_i16(SIT_LEVEL * (TAU * freq * t).sin() * fade(n, len)));
            }
        }
        out.resize(out.len() + samples(1000), 0);
    }
    out
}

fn samples(ms: u32) -> usize {
    (ms * RATE / 1000) as usize
}

/// A 2 ms linear ramp at both ends, so tones start and stop without clicks.
fn fade(n: usize, len: usize) -> f64 {
    const RAMP: usize = 16;
    let last = len.saturating_sub(1);
    let from_edge = n.min(last.saturating_sub(n));
    if from_edge >= RAMP {
        1.0
    } else {
        from_edge as f64 / RAMP as f64
    }
}

fn to_i16(v: f64) -> i16 {
    (v.clamp(-1.0, 1.0) * f64::from(i16::MAX)).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Energy of `pcm` at `freq` (Goertzel), relative to the signal's own.
    fn relative_power(pcm: &[i16], freq: f64) -> f64 {
        let coeff = 2.0 * (TAU * freq / f64::from(RATE)).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let mut energy = 0.0f64;
        for &x in pcm {
            let x = f64::from(x);
            energy += x * x;
            let s = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        power / (energy * pcm.len() as f64 / 2.0)
    }

    #[test]
    fn each_key_has_its_two_frequencies() {
        let pcm = dtmf_pcm("5");
        assert_eq!(pcm.len(), samples(DTMF_TONE_MS + DTMF_GAP_MS));
        let tone = &pcm[..samples(DTMF_TONE_MS)];
        assert!(relative_power(tone, 770.0) > 0.3);
        assert!(relative_power(tone, 1336.0) > 0.3);
        assert!(relative_power(tone, 697.0) < 0.05);
        assert!(relative_power(tone, 1209.0) < 0.05);
        assert!(pcm[samples(DTMF_TONE_MS)..].iter().all(|s| *s == 0));
    }

    #[test]
    fn keys_and_validation() {
        assert_eq!(dtmf_frequencies('1'), Some((697.0, 1209.0)));
        assert_eq!(dtmf_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(dtmf_frequencies('x'), None);
        assert!(valid_dtmf("0123456789*#ABCD"));
        assert!(!valid_dtmf(""));
        assert!(!valid_dtmf("1 2"));
        assert_eq!(dtmf_pcm("1x2").len(), 2 * samples(200));
    }

    #[test]
    fn sit_announcement_is_about_three_and_a_half_seconds() {
        let pcm = sit_announcement_pcm();
        assert_eq!(pcm.len(), 2 * samples(274 + 274 + 380 + 1000));
        let first = &pcm[..samples(274)];
        assert!(relative_power(first, 913.8) > 0.5);
        assert!(pcm.iter().all(|s| s.unsigned_abs() < 6000));
    }
}
