//! The voicemail beep detector. A beep is a generated tone, so it is
//!
//! * nearly pure: at least 95 % of the 300-3400 Hz energy in one or two
//!   spectral peaks (a sine, a two-frequency beep, a buzzy beep whose third
//!   harmonic is the second peak);
//! * steady: its frequency holds or glides evenly (within 5 Hz per frame of
//!   the line through the last frames, at most 15 Hz per frame), and its level
//!   holds (at least `min_ms` less one frame of it within 1.5 dB of its
//!   loudest);
//! * alone: the sound just before it and after it is at least 12 dB quieter
//!   (a voicemail system beeps after its greeting and then records silence;
//!   a sung or spoken vowel, however pure, is surrounded by more voice);
//! * in the band `min_hz..=max_hz`, present for `min_ms` to `max_ms`;
//! * not telephone signalling: not mostly frames holding a DTMF digit (one
//!   tone of each ITU-T Q.23 group, within 3 %), and not one spectral peak
//!   whose envelope beats within the frame (ring-back's close pairs, 440 +
//!   480 Hz and 400 + 450 Hz, which the 31 Hz bins cannot separate).
//!
//! [`BeepEvent::Detected`] comes as soon as the tone has lasted `min_ms`
//! after a quiet stretch, [`BeepEvent::Ended`] three frames after it stops
//! (the wait lets the second half of a double beep join the first) if it
//! passed every test, with start and end refined to a few ms from the energy
//! of the partial frames at its edges.

use super::features::FrameAnalyzer;
use super::tone::{ToneEvent, ToneSpec, ToneTracker};
use super::{AmdConfig, BeepConfig, BeepEvent, FRAME_MS};

/// Least share of the band's energy in the two strongest peaks.
pub(crate) const BEEP_PURITY: f32 = 0.95;
/// Largest frequency change per frame (a gliding beep moves ~10 Hz).
const MAX_STEP_HZ: f32 = 15.0;
/// Largest departure per frame from an even glide.
const MAX_BEND_HZ: f32 = 5.0;
/// How far the frames around a beep must be below it: a frame of purity
/// 0.95 has its tone at least 13 dB above the rest, so steady noise around a
/// beep that passes is about that far down.
pub(crate) const CONTRAST_DB: f32 = 12.0;
/// Frames without the tone that end it.
const MAX_GAP_FRAMES: u32 = 3;

/// The tone tracker settings for a beep.
pub(crate) fn beep_spec(config: &BeepConfig) -> ToneSpec {
    ToneSpec {
        lo_hz: config.min_hz,
        hi_hz: config.max_hz,
        min_purity: BEEP_PURITY,
        max_step_hz: MAX_STEP_HZ,
        max_bend_hz: MAX_BEND_HZ,
        min_frames: config.min_ms.div_ceil(FRAME_MS).max(2),
        max_frames: (config.max_ms / FRAME_MS).max(2),
        max_gap_frames: MAX_GAP_FRAMES,
        contrast_db: CONTRAST_DB,
        refuse_signalling: true,
    }
}

/// Rounds a tone time to whole ms.
pub(crate) fn ms(t: f32) -> u32 {
    t.round().max(0.0) as u32
}

/// The public event for a tracker event, if it has one.
pub(crate) fn beep_event(ev: ToneEvent) -> Option<BeepEvent> {
    match ev {
        ToneEvent::Confirmed(info) => Some(BeepEvent::Detected {
            at_ms: ms(info.start_ms),
        }),
        ToneEvent::Ended(info) => Some(BeepEvent::Ended {
            start_ms: ms(info.start_ms),
            end_ms: ms(info.end_ms),
        }),
        ToneEvent::Rejected => None,
    }
}

/// A standalone beep detector (the [`super::AmdDetector`] runs its own).
#[derive(Debug, Clone)]
pub struct BeepDetector {
    analyzer: FrameAnalyzer,
    tracker: ToneTracker,
}

impl BeepDetector {
    /// `speech_margin_db` of the default [`AmdConfig`] decides which frames
    /// are loud enough to look at.
    pub fn new(config: BeepConfig) -> BeepDetector {
        BeepDetector {
            analyzer: FrameAnalyzer::new(AmdConfig::default().speech_margin_db),
            tracker: ToneTracker::new(beep_spec(&config)),
        }
    }

    /// Feed one 20 ms frame (160 samples; a shorter one is padded with
    /// silence, a longer one cut).
    pub fn push_frame(&mut self, samples: &[i16]) -> Option<BeepEvent> {
        let f = self.analyzer.push(samples);
        self.tracker
            .push(f.index, f.energy_db, f.power_above_floor, f.peaks.as_ref())
            .and_then(beep_event)
    }

    /// Time fed so far, in ms.
    pub fn elapsed_ms(&self) -> u32 {
        self.analyzer.frames().saturating_mul(FRAME_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::test_signals::{noise, silence, tone, voice, Signal};

    fn run(signal: &[i16]) -> Vec<BeepEvent> {
        let mut d = BeepDetector::new(BeepConfig::default());
        signal.chunks(160).filter_map(|c| d.push_frame(c)).collect()
    }

    #[test]
    fn sine_beep_start_and_end_within_a_few_ms() {
        for hz in [440.0, 1000.0, 1400.0, 1950.0] {
            let s = Signal::new()
                .then(noise(1230, 60.0, 1))
                .then(tone(&[hz], 3000.0, 437))
                .then(noise(1000, 60.0, 2))
                .build();
            let ev = run(&s);
            assert_eq!(ev.len(), 2, "{hz}: {ev:?}");
            let BeepEvent::Detected { at_ms } = ev[0] else {
                panic!("{ev:?}")
            };
            let BeepEvent::Ended { start_ms, end_ms } = ev[1] else {
                panic!("{ev:?}")
            };
            assert!(at_ms.abs_diff(1230) <= 10, "{hz}: start {at_ms}");
            assert!(start_ms.abs_diff(1230) <= 10, "{hz}: start {start_ms}");
            assert!(end_ms.abs_diff(1230 + 437) <= 10, "{hz}: end {end_ms}");
        }
    }

    #[test]
    fn double_and_dual_tone_beeps_are_one_beep() {
        let s = Signal::new()
            .then(silence(500))
            .then(tone(&[1000.0], 4000.0, 70))
            .then(silence(40))
            .then(tone(&[1000.0], 4000.0, 70))
            .then(silence(500))
            .then(tone(&[880.0, 1100.0], 3000.0, 300))
            .then(silence(500))
            .build();
        let ends: Vec<_> = run(&s)
            .into_iter()
            .filter_map(|e| match e {
                BeepEvent::Ended { start_ms, end_ms } => Some((start_ms, end_ms)),
                BeepEvent::Detected { .. } => None,
            })
            .collect();
        assert_eq!(ends.len(), 2, "{ends:?}");
        assert!(
            ends[0].0.abs_diff(500) <= 10 && ends[0].1.abs_diff(680) <= 10,
            "{ends:?}"
        );
        assert!(
            ends[1].0.abs_diff(1180) <= 10 && ends[1].1.abs_diff(1480) <= 10,
            "{ends:?}"
        );
    }

    #[test]
    fn short_blips_noise_speech_and_out_of_band_tones_are_not_beeps() {
        let s = Signal::new()
            .then(silence(300))
            .then(tone(&[1000.0], 4000.0, 40))
            .then(silence(300))
            .then(tone(&[2600.0], 4000.0, 500))
            .then(silence(300))
            .then(noise(1000, 3000.0, 7))
            .then(silence(300))
            .then(voice(1500, 130.0, 3000.0))
            .then(silence(300))
            .build();
        assert_eq!(run(&s), vec![]);
    }

    #[test]
    fn ring_back_and_dtmf_are_not_beeps() {
        let hiss = |ms, seed| noise(ms, 30.0, seed);
        // North American ring-back (440 + 480 Hz), whole and cut short; the
        // UK's (400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on).
        for ms in [2000, 1000, 400] {
            let s = Signal::new()
                .then(hiss(500, 1))
                .then(tone(&[440.0, 480.0], 6000.0, ms))
                .then(hiss(3000, 2))
                .build();
            let ev = run(&s);
            assert!(
                ev.iter().all(|e| matches!(e, BeepEvent::Detected { .. })),
                "{ms} ms: {ev:?}"
            );
        }
        let uk = Signal::new()
            .then(hiss(500, 3))
            .then(tone(&[400.0, 450.0], 6000.0, 400))
            .then(hiss(200, 4))
            .then(tone(&[400.0, 450.0], 6000.0, 400))
            .then(hiss(2000, 5))
            .build();
        let ev = run(&uk);
        assert!(
            ev.iter().all(|e| matches!(e, BeepEvent::Detected { .. })),
            "{ev:?}"
        );
        // DTMF digits, alone and in a quick string, with twist.
        let mut s = Signal::new().then(hiss(500, 6));
        for (lo, hi, ms) in [
            (697.0, 1209.0, 200),
            (770.0, 1336.0, 100),
            (852.0, 1477.0, 80),
            (941.0, 1633.0, 90),
        ] {
            s = s
                .then(tone(&[lo, hi], 6000.0, ms))
                .then(hiss(80, 7))
                .then(Signal::new().build());
        }
        let digits: Vec<i16> = s.then(hiss(500, 8)).build();
        let ev = run(&digits);
        assert!(
            ev.iter().all(|e| matches!(e, BeepEvent::Detected { .. })),
            "{ev:?}"
        );
        // Next to them, real beeps of the same frequencies still pass: a
        // 440 Hz sine, a 440 + 550 Hz two-tone beep.
        let s = Signal::new()
            .then(hiss(500, 9))
            .then(tone(&[440.0], 6000.0, 500))
            .then(hiss(800, 10))
            .then(tone(&[440.0, 550.0], 6000.0, 450))
            .then(hiss(800, 11))
            .build();
        let ends = run(&s)
            .into_iter()
            .filter(|e| matches!(e, BeepEvent::Ended { .. }))
            .count();
        assert_eq!(ends, 2);
    }

    #[test]
    fn a_long_tone_never_ends_as_a_beep() {
        let s = Signal::new()
            .then(silence(300))
            .then(tone(&[425.0], 4000.0, 3000))
            .then(silence(300))
            .build();
        let ev = run(&s);
        assert!(
            ev.iter().all(|e| matches!(e, BeepEvent::Detected { .. })),
            "{ev:?}"
        );
    }
}
