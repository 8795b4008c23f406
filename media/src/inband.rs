//! In-band DTMF detection: key presses heard as ITU-T Q.23 tone pairs in the
//! decoded 8 kHz audio, for peers that send no RFC 4733 telephone-event.
//!
//! Pure and allocation-free: [`InbandDtmf::process`] takes one 20 ms frame
//! (160 samples) and returns a key when a press is confirmed. Per frame, a
//! Goertzel filter measures each of the eight DTMF frequencies; a frame holds
//! a key when
//!
//! - one row tone (697-941 Hz) and one column tone (1209-1633 Hz) each stand
//!   out from the other three of their group by [`GROUP_MARGIN`],
//! - each is loud enough ([`MIN_AMPLITUDE`], about -36 dBm0),
//! - the twist (column power over row power) lies within Q.24's limits:
//!   at most [`MAX_NORMAL_TWIST_DB`] with the column louder, at most
//!   [`MAX_REVERSE_TWIST_DB`] with the row louder,
//! - and the two tones carry at least [`MIN_TONE_SHARE`] of the frame's
//!   energy: speech and music spread theirs over many frequencies.
//!
//! A key is reported once when [`CONFIRM_FRAMES`] frames in a row hold it
//! (40 ms, Q.24's shortest valid press) and is released after
//! [`RELEASE_FRAMES`] frames without it, so a one-frame dropout inside a
//! press does not make two presses.

use crate::codec::{FRAME_SAMPLES, SAMPLE_RATE};

/// Row (low group) frequencies, Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies, Hz.
const COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad: `KEYS[row][column]`.
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Smallest amplitude of each tone (16-bit linear; 0 dBm0 is about 22,700).
pub const MIN_AMPLITUDE: f32 = 350.0;
/// The strongest tone of a group must exceed the others of that group by
/// this power ratio (8 dB).
pub const GROUP_MARGIN: f32 = 6.3;
/// Column louder than row by at most this (Q.24 "normal twist").
pub const MAX_NORMAL_TWIST_DB: f32 = 8.0;
/// Row louder than column by at most this (Q.24 "reverse twist").
pub const MAX_REVERSE_TWIST_DB: f32 = 6.0;
/// Share of the frame's energy the two tones must carry.
pub const MIN_TONE_SHARE: f32 = 0.6;
/// Frames in a row that confirm a key.
pub const CONFIRM_FRAMES: u8 = 2;
/// Frames in a row without the key that release it.
pub const RELEASE_FRAMES: u8 = 2;

/// The in-band detector of one call.
#[derive(Debug, Clone)]
pub struct InbandDtmf {
    /// Goertzel coefficients 2·cos(2πf/fs): rows then columns.
    coefficients: [f32; 8],
    /// The key the last frames held, and for how many frames.
    candidate: Option<(char, u8)>,
    /// The key reported and not yet released.
    pressed: Option<char>,
    /// Frames without the pressed key.
    gap: u8,
}

impl Default for InbandDtmf {
    fn default() -> Self {
        InbandDtmf::new()
    }
}

impl InbandDtmf {
    pub fn new() -> InbandDtmf {
        let mut coefficients = [0.0; 8];
        for (c, f) in coefficients
            .iter_mut()
            .zip(ROWS.iter().chain(COLUMNS.iter()))
        {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / SAMPLE_RATE as f32).cos();
        }
        InbandDtmf {
            coefficients,
            candidate: None,
            pressed: None,
            gap: 0,
        }
    }

    /// Feeds one 20 ms frame; returns a key the moment its press is confirmed.
    pub fn process(&mut self, frame: &[i16; FRAME_SAMPLES]) -> Option<char> {
        let key = self.frame_key(frame);
        if let Some(pressed) = self.pressed {
            if key == Some(pressed) {
                self.gap = 0;
                return None;
            }
            self.gap += 1;
            if self.gap < RELEASE_FRAMES {
                return None;
            }
            self.pressed = None;
            self.gap = 0;
        }
        let Some(key) = key else {
            self.candidate = None;
            return None;
        };
        let count = match self.candidate {
            Some((k, n)) if k == key => n.saturating_add(1),
            _ => 1,
        };
        self.candidate = Some((key, count));
        if count >= CONFIRM_FRAMES {
            self.candidate = None;
            self.pressed = Some(key);
            return Some(key);
        }
        None
    }

    /// The key one frame holds, if any.
    fn frame_key(&self, frame: &[i16; FRAME_SAMPLES]) -> Option<char> {
        let mut energy = 0.0f32;
        let mut state = [(0.0f32, 0.0f32); 8];
        for &sample in frame.iter() {
            let x = f32::from(sample);
            energy += x * x;
            for (s, c) in state.iter_mut().zip(self.coefficients.iter()) {
                let next = x + c * s.0 - s.1;
                s.1 = s.0;
                s.0 = next;
            }
        }
        if energy <= 0.0 {
            return None;
        }
        let mut power = [0.0f32; 8];
        for ((p, s), c) in power
            .iter_mut()
            .zip(state.iter())
            .zip(self.coefficients.iter())
        {
            *p = (s.0 * s.0 + s.1 * s.1 - c * s.0 * s.1).max(0.0);
        }
        let (row, row_power) = strongest(&power[..4])?;
        let (column, column_power) = strongest(&power[4..])?;
        // |X|² of a tone of amplitude A over N samples is (A·N/2)².
        let n = FRAME_SAMPLES as f32;
        let min_power = (MIN_AMPLITUDE * n / 2.0).powi(2);
        if row_power < min_power || column_power < min_power {
            return None;
        }
        let twist_db = 10.0 * (column_power / row_power).log10();
        if !(-MAX_REVERSE_TWIST_DB..=MAX_NORMAL_TWIST_DB).contains(&twist_db) {
            return None;
        }
        // A tone's energy over the frame is 2·|X|²/N.
        let share = 2.0 * (row_power + column_power) / n / energy;
        if share < MIN_TONE_SHARE {
            return None;
        }
        Some(KEYS[row][column])
    }
}

/// The strongest of a group's four powers, if it stands out by
/// [`GROUP_MARGIN`] from each of the others.
fn strongest(group: &[f32]) -> Option<(usize, f32)> {
    let (best, &power) = group.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = group
        .iter()
        .enumerate()
        .all(|(i, p)| i == best || *p * GROUP_MARGIN <= power);
    clear.then_some((best, power))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise source (xorshift), uniform in ±amplitude.
    struct Noise(u32);

    impl Noise {
        fn next(&mut self, amplitude: f32) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            (self.0 as f32 / u32::MAX as f32 * 2.0 - 1.0) * amplitude
        }
    }

    /// `ms` of audio: the key's two tones at the given amplitudes (none for
    /// silence), plus noise, from sample `start` on.
    fn tone(
        key: Option<char>,
        row_amp: f32,
        col_amp: f32,
        ms: usize,
        noise: f32,
        offset_hz: f32,
    ) -> Vec<i16> {
        let (rf, cf) = key
            .and_then(|k| {
                KEYS.iter().enumerate().find_map(|(r, cols)| {
                    cols.iter()
                        .position(|c| *c == k)
                        .map(|c| (ROWS[r] + offset_hz, COLUMNS[c] + offset_hz))
                })
            })
            .unwrap_or((0.0, 0.0));
        let mut rng = Noise(0x1234_5678);
        (0..ms * 8)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                let mut x = noise_sample(&mut rng, noise);
                if key.is_some() {
                    x += row_amp * (2.0 * std::f32::consts::PI * rf * t).sin()
                        + col_amp * (2.0 * std::f32::consts::PI * cf * t).sin();
                }
                x.clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    fn noise_sample(rng: &mut Noise, amplitude: f32) -> f32 {
        if amplitude > 0.0 {
            rng.next(amplitude)
        } else {
            0.0
        }
    }

    fn keys(audio: &[i16]) -> String {
        let mut detector = InbandDtmf::new();
        let mut out = String::new();
        for chunk in audio.chunks_exact(FRAME_SAMPLES) {
            let mut frame = [0i16; FRAME_SAMPLES];
            frame.copy_from_slice(chunk);
            out.extend(detector.process(&frame));
        }
        out
    }

    #[test]
    fn every_key_is_heard_once() {
        for key in "123A456B789C*0#D".chars() {
            let mut audio = tone(Some(key), 6000.0, 7000.0, 100, 0.0, 0.0);
            audio.extend(tone(None, 0.0, 0.0, 100, 0.0, 0.0));
            assert_eq!(keys(&audio), key.to_string(), "key {key}");
        }
    }

    #[test]
    fn a_sequence_with_pauses_and_a_misaligned_start() {
        let mut audio = tone(None, 0.0, 0.0, 13, 0.0, 0.0);
        for key in ['1', '5', '9', '#', '1'] {
            audio.extend(tone(Some(key), 5000.0, 5000.0, 70, 0.0, 0.0));
            audio.extend(tone(None, 0.0, 0.0, 60, 0.0, 0.0));
        }
        assert_eq!(keys(&audio), "159#1");
    }

    #[test]
    fn twist_within_limits_is_accepted_beyond_them_rejected() {
        // Column 6 dB louder (normal twist), row 4 dB louder (reverse).
        let normal = tone(Some('5'), 2000.0, 2000.0 * 2.0, 100, 0.0, 0.0);
        assert_eq!(keys(&normal), "5");
        let reverse = tone(Some('5'), 3000.0 * 1.58, 3000.0, 100, 0.0, 0.0);
        assert_eq!(keys(&reverse), "5");
        // 12 dB either way is not a key.
        let too_normal = tone(Some('5'), 1000.0, 4000.0, 100, 0.0, 0.0);
        assert_eq!(keys(&too_normal), "");
        let too_reverse = tone(Some('5'), 4000.0, 1000.0, 100, 0.0, 0.0);
        assert_eq!(keys(&too_reverse), "");
    }

    #[test]
    fn noise_and_frequency_drift() {
        // About 15 dB signal to noise, and each tone 1.5 % off (Q.24 allows
        // ±1.8 %): still heard.
        let noisy = tone(Some('8'), 3000.0, 3000.0, 120, 1800.0, 0.0);
        assert_eq!(keys(&noisy), "8");
        let drift = tone(Some('3'), 4000.0, 4000.0, 120, 0.0, 15.0);
        assert_eq!(keys(&drift), "3");
        // Noise alone, loud or soft, never is.
        assert_eq!(keys(&tone(None, 0.0, 0.0, 2000, 8000.0, 0.0)), "");
        assert_eq!(keys(&tone(None, 0.0, 0.0, 2000, 300.0, 0.0)), "");
        // A tone too quiet is not a key.
        assert_eq!(keys(&tone(Some('1'), 200.0, 200.0, 100, 0.0, 0.0)), "");
    }

    #[test]
    fn a_press_shorter_than_40_ms_or_a_single_tone_is_not_a_key() {
        assert_eq!(keys(&tone(Some('2'), 5000.0, 5000.0, 20, 0.0, 0.0)), "");
        // One tone alone (a row frequency) is not a key.
        let single: Vec<i16> = (0..800)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                (8000.0 * (2.0 * std::f32::consts::PI * 770.0 * t).sin()) as i16
            })
            .collect();
        assert_eq!(keys(&single), "");
    }

    #[test]
    fn speech_like_harmonics_are_rejected() {
        // A voiced sound: a gliding 110-160 Hz fundamental with 25 harmonics
        // under a formant envelope, some of them passing the DTMF
        // frequencies.
        let mut phase = [0.0f32; 25];
        let audio: Vec<i16> = (0..16_000)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                let f0 = 135.0 + 25.0 * (2.0 * std::f32::consts::PI * 1.5 * t).sin();
                let mut x = 0.0;
                for (h, p) in phase.iter_mut().enumerate() {
                    let f = f0 * (h + 1) as f32;
                    *p += 2.0 * std::f32::consts::PI * f / SAMPLE_RATE as f32;
                    let formant = (-((f - 700.0) / 300.0).powi(2)).exp()
                        + 0.6 * (-((f - 1250.0) / 250.0).powi(2)).exp()
                        + 0.2;
                    x += 3000.0 * formant * p.sin();
                }
                x.clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        assert_eq!(keys(&audio), "");
    }

    #[test]
    fn a_held_key_with_a_one_frame_dropout_counts_once() {
        let mut audio = tone(Some('7'), 5000.0, 5000.0, 80, 0.0, 0.0);
        audio.extend(tone(None, 0.0, 0.0, 20, 0.0, 0.0));
        audio.extend(tone(Some('7'), 5000.0, 5000.0, 80, 0.0, 0.0));
        assert_eq!(keys(&audio), "7");
    }
}
