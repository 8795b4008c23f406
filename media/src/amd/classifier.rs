//! The answering-machine classifier: a state machine over 20 ms frames.
//!
//! ```text
//!  frame ─► energy vs noise floor ─► active (+10 dB)? ─► spectral peaks ─► beep tracker (350-2050 Hz)
//!                                                                     └─► CED tracker (2100 Hz)
//!        ─► speech? energy > floor + margin (5 dB less inside a burst), not in a confirmed tone
//!        ─► 300 ms level; foreground gone? level 8 dB under the greeting's loudest 300 ms
//!           and within 20 dB of the floor (what is left is background: babble, music, TV)
//!  speech frames ─► bursts (gaps <= 60 ms join) ─► words (bursts >= min_word_ms)
//!  greeting: from the first word's start to the last speech frame where the
//!  foreground was still there (a confirmed tone takes back the burst it made)
//!
//!  Listening ──(first rule that holds, checked every frame)──► Decided(decision)
//!    CED tone confirmed, no words ................... Fax      "fax answer tone"
//!    tone ended as a beep, no words, 1100 Hz ± 38,
//!      0.35-0.8 s long (CNG) ........................ Fax      "fax calling tone"
//!    any other beep ................................. Machine  "beep"
//!    greeting >= max_greeting_ms .................... Machine  "greeting too long for a person"
//!    silence after a greeting of at most
//!      short_greeting_ms >= after_greeting_silence_ms Human    "short greeting then silence"
//!    silence after a longer greeting
//!      >= beep_wait_ms, no beep started ............. Human    "greeting then silence, no beep"
//!      (silence: no speech frame and no burst going on; or, over a noisy
//!      background, no foreground for the needed time + 300 ms)
//!    no words by initial_silence_ms ................. Silence  "no speech"
//!    max_window_ms reached (or `finish()`: the audio ended):
//!      words, a beep under way ...................... Machine  "beep under way at the limit"
//!      words, now quiet ............................. Human    "greeting then silence at the limit"
//!      words, still sounding ........................ Unknown  "speech at the limit"
//!      a tone, no words ............................. Unknown  "tone only"
//!      nothing ...................................... Silence  "no speech"
//! ```
//!
//! A long greeting alone does not make a machine: a receptionist's "Good
//! morning, Riverside Dental, this is Anna, how can I help you?" is as long
//! as many voicemail greetings. What tells them apart is what comes next: a
//! machine beeps within a second of its greeting's end (or talks on for
//! longer than a person answering would), a person stops and waits for us.
//! So after a longer greeting the detector waits `beep_wait_ms` for a beep
//! before it calls the silence a person's. A machine that never beeps and
//! stops talking within `max_greeting_ms` is taken for a person: playing
//! the script to it costs less than hanging up on a person.
//!
//! After the decision the detector keeps following beeps, so a caller can
//! wait for the end of a voicemail beep with the same object.

use super::beep::{beep_event, beep_spec};
use super::features::FrameAnalyzer;
use super::tone::{ToneEvent, ToneSpec, ToneTracker};
use super::vad::{db, MIN_DB};
use super::{AmdConfig, AmdDecision, AmdMeasures, AmdVerdict, BeepEvent, FRAME_MS};

/// Speech frames separated by at most this many quiet frames belong to one
/// burst (the dips inside a word).
const JOIN_GAP_FRAMES: u32 = 3;
/// Once a burst has begun, sound counts as speech down to this many dB
/// less above the floor (weak word endings and consonants hold the burst).
const HOLD_BELOW_ONSET_DB: f32 = 5.0;
/// Frames in the level used to tell the foreground speaker from the
/// background (300 ms: a syllable and the pause after it, so the level of
/// someone talking does not dip between words).
const LEVEL_FRAMES: usize = 15;
/// The foreground is gone when the 300 ms level is
/// [`AmdConfig::foreground_drop_db`] below the loudest 300 ms of the
/// greeting, and within this many dB of the noise floor. Sound further above the
/// floor is never taken for background, so a greeting's softer phrase on a
/// clean line does not count as silence (a background's loud moments stay
/// within ~20 dB of its quiet ones).
const BACKGROUND_SPAN_DB: f32 = 20.0;
/// Silence judged by the foreground level must last this much longer than
/// silence judged frame by frame: the 300 ms level can fall while a voice's
/// weak last sounds are still coming.
const LEVEL_LAG_FRAMES: u32 = LEVEL_FRAMES as u32;
/// T.30 calling tone: 1100 Hz ± 38 Hz, on for 0.5 s (± 15 %).
const CNG_HZ: f32 = 1100.0;
const CNG_TOLERANCE_HZ: f32 = 38.0;
const CNG_MIN_MS: f32 = 350.0;
const CNG_MAX_MS: f32 = 800.0;
/// T.30 answer tone: 2100 Hz ± 15 Hz, 2.6-4 s; half a second of it is enough.
const CED_SPEC: ToneSpec = ToneSpec {
    lo_hz: 2080.0,
    hi_hz: 2120.0,
    min_purity: super::beep::BEEP_PURITY,
    max_step_hz: 5.0,
    max_bend_hz: 5.0,
    min_frames: 25,
    max_frames: u32::MAX,
    max_gap_frames: 3,
    contrast_db: super::beep::CONTRAST_DB,
    refuse_signalling: false,
};

/// Speech bursts and words so far (frame indices).
#[derive(Debug, Clone, Copy, Default)]
struct Words {
    in_burst: bool,
    burst_start: u32,
    burst_last: u32,
    burst_counted: bool,
    words: u32,
    greeting_start: Option<u32>,
    /// Frame index just after the last speech frame of the greeting.
    greeting_end: u32,
    /// Frame index just after the last speech frame that was foreground
    /// (not background under a speaker who has stopped).
    voice_end: u32,
    /// `words`, `greeting_start`, `greeting_end` and `voice_end` before the
    /// current burst, to take it back if it turns out to be a tone.
    before_burst: (u32, Option<u32>, u32, u32),
}

impl Words {
    /// A word needs `min_word_frames` of sound; once the greeting has begun
    /// any sound extends it.
    /// `foreground`: the frame is not background under a silent speaker.
    fn push(&mut self, index: u32, speech: bool, foreground: bool, min_word_frames: u32) {
        if speech {
            if !self.in_burst {
                self.in_burst = true;
                self.burst_start = index;
                self.burst_counted = false;
                self.before_burst = (
                    self.words,
                    self.greeting_start,
                    self.greeting_end,
                    self.voice_end,
                );
            }
            self.burst_last = index;
            if !self.burst_counted && index - self.burst_start >= min_word_frames.saturating_sub(1)
            {
                self.burst_counted = true;
                self.words += 1;
                if self.greeting_start.is_none() {
                    self.greeting_start = Some(self.burst_start);
                    self.voice_end = index.saturating_add(1);
                }
            }
            if self.greeting_start.is_some() {
                self.greeting_end = index.saturating_add(1);
                if foreground {
                    self.voice_end = index.saturating_add(1);
                }
            }
        } else if self.in_burst && index - self.burst_last > JOIN_GAP_FRAMES {
            self.in_burst = false;
        }
    }

    /// A tone starting at frame `first` was confirmed: the burst it made is
    /// not speech.
    fn retract_tone(&mut self, first: u32) {
        if self.in_burst && self.burst_start.saturating_add(1) >= first {
            (
                self.words,
                self.greeting_start,
                self.greeting_end,
                self.voice_end,
            ) = self.before_burst;
            self.in_burst = false;
        }
    }

    /// How long the speaker has been silent at frame count `now`, in ms:
    /// frame by frame (no speech frame, no burst going on), or by the
    /// foreground level (its lag taken off) when a background keeps the
    /// frames loud. 0 while talking or before the greeting.
    fn silence_ms(&self, now: u32) -> u32 {
        if self.greeting_start.is_none() {
            return 0;
        }
        let silent = if self.in_burst {
            0
        } else {
            now.saturating_sub(self.greeting_end)
        };
        let no_voice = now
            .saturating_sub(self.voice_end)
            .saturating_sub(LEVEL_LAG_FRAMES);
        silent.max(no_voice).saturating_mul(FRAME_MS)
    }

    fn measures(&self, now: u32) -> AmdMeasures {
        let frames = |n: u32| n.saturating_mul(FRAME_MS);
        match self.greeting_start {
            Some(start) => AmdMeasures {
                initial_silence_ms: frames(start),
                greeting_ms: frames(self.voice_end.saturating_sub(start)),
                words: self.words,
                silence_after_ms: frames(now.saturating_sub(self.voice_end)),
            },
            None => AmdMeasures {
                initial_silence_ms: frames(now),
                ..AmdMeasures::default()
            },
        }
    }
}

/// The level of the last 300 ms and the loudest it has been since the
/// greeting began: the foreground speaker's level.
#[derive(Debug, Clone, Copy)]
struct Level {
    powers: [f32; LEVEL_FRAMES],
    next: usize,
    /// Loudest 300 ms level of the greeting, dBFS ([`MIN_DB`] before it).
    loudest_db: f32,
}

impl Default for Level {
    fn default() -> Self {
        Level {
            powers: [0.0; LEVEL_FRAMES],
            next: 0,
            loudest_db: MIN_DB,
        }
    }
}

impl Level {
    /// Adds a frame's power; returns the 300 ms level in dBFS.
    fn push(&mut self, power: f32, in_greeting: bool) -> f32 {
        self.powers[self.next] = power;
        self.next = (self.next + 1) % LEVEL_FRAMES;
        let level = db(self.powers.iter().sum::<f32>() / LEVEL_FRAMES as f32);
        if in_greeting {
            self.loudest_db = self.loudest_db.max(level);
        }
        level
    }

    /// Whether the 300 ms level `level` says the foreground speaker has
    /// gone quiet, on a line whose floor is `floor_db`.
    fn background_only(&self, level: f32, floor_db: f32, drop_db: f32) -> bool {
        self.loudest_db > MIN_DB
            && level < self.loudest_db - drop_db
            && level < floor_db + BACKGROUND_SPAN_DB
    }
}

/// What one frame produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmdOutput {
    /// The decision, on the frame it was made (once).
    pub decision: Option<AmdDecision>,
    /// A beep event, before or after the decision.
    pub beep: Option<BeepEvent>,
}

/// The answering-machine detector; see the module documentation.
#[derive(Debug, Clone)]
pub struct AmdDetector {
    config: AmdConfig,
    analyzer: FrameAnalyzer,
    beep: ToneTracker,
    ced: ToneTracker,
    words: Words,
    level: Level,
    /// A tone confirmed before any word, waiting for its end to tell a fax
    /// calling tone from a beep.
    tone_first: bool,
    decision: Option<AmdDecision>,
}

impl AmdDetector {
    pub fn new(config: AmdConfig) -> AmdDetector {
        AmdDetector {
            config,
            analyzer: FrameAnalyzer::new(config.speech_margin_db),
            beep: ToneTracker::new(beep_spec(&config.beep)),
            ced: ToneTracker::new(CED_SPEC),
            words: Words::default(),
            level: Level::default(),
            tone_first: false,
            decision: None,
        }
    }

    /// Feed one 20 ms frame (160 samples; a shorter one is padded with
    /// silence, a longer one cut). Returns the decision once, on the frame
    /// that makes it.
    pub fn push_frame(&mut self, samples: &[i16]) -> Option<AmdDecision> {
        self.process(samples).decision
    }

    /// Like [`push_frame`](Self::push_frame), also returning beep events.
    pub fn process(&mut self, samples: &[i16]) -> AmdOutput {
        let f = self.analyzer.push(samples);
        let peaks = f.peaks.as_ref();
        let beep = self
            .beep
            .push(f.index, f.energy_db, f.power_above_floor, peaks);
        let ced = self
            .ced
            .push(f.index, f.energy_db, f.power_above_floor, peaks);
        for ev in [beep, ced] {
            if let Some(ToneEvent::Confirmed(info)) = ev {
                self.words.retract_tone(info.first_frame);
            }
        }
        let in_tone = self.beep.in_tone() || self.ced.in_tone();
        let margin = if self.words.in_burst {
            self.config.speech_margin_db - HOLD_BELOW_ONSET_DB
        } else {
            self.config.speech_margin_db
        };
        let speech = !in_tone && f.energy_db > f.floor_db + margin;
        let level = self
            .level
            .push(f.power, self.words.greeting_start.is_some());
        let foreground =
            !self
                .level
                .background_only(level, f.floor_db, self.config.foreground_drop_db);
        let min_word = self.config.min_word_ms.div_ceil(FRAME_MS).max(1);
        self.words.push(f.index, speech, foreground, min_word);
        let mut out = AmdOutput {
            decision: None,
            beep: beep.and_then(beep_event),
        };
        if self.decision.is_none() {
            let now = f.index.saturating_add(1);
            if let Some((verdict, reason)) = self.rule(now, beep, ced) {
                let d = AmdDecision {
                    verdict,
                    at_ms: now.saturating_mul(FRAME_MS),
                    reason,
                    measures: self.words.measures(now),
                };
                self.decision = Some(d);
                out.decision = Some(d);
            }
        }
        out
    }

    /// The first rule that holds at frame count `now`.
    fn rule(
        &mut self,
        now: u32,
        beep: Option<ToneEvent>,
        ced: Option<ToneEvent>,
    ) -> Option<(AmdVerdict, &'static str)> {
        let c = &self.config;
        let w = &self.words;
        let elapsed = now.saturating_mul(FRAME_MS);
        let has_words = w.words > 0;
        if matches!(ced, Some(ToneEvent::Confirmed(_))) && !has_words {
            return Some((AmdVerdict::Fax, "fax answer tone"));
        }
        match beep {
            Some(ToneEvent::Confirmed(_)) if !has_words => self.tone_first = true,
            Some(ToneEvent::Rejected) => self.tone_first = false,
            Some(ToneEvent::Ended(info)) => {
                let ms = info.end_ms - info.start_ms;
                let cng = !has_words
                    && (info.mean_hz - CNG_HZ).abs() <= CNG_TOLERANCE_HZ
                    && (CNG_MIN_MS..=CNG_MAX_MS).contains(&ms);
                return Some(if cng {
                    (AmdVerdict::Fax, "fax calling tone")
                } else {
                    (AmdVerdict::Machine, "beep")
                });
            }
            _ => {}
        }
        if let Some(start) = w.greeting_start {
            let greeting = (w.voice_end - start).saturating_mul(FRAME_MS);
            if greeting >= c.max_greeting_ms {
                return Some((AmdVerdict::Machine, "greeting too long for a person"));
            }
            let short = greeting <= c.short_greeting_ms;
            let needed = if short {
                c.after_greeting_silence_ms
            } else {
                c.beep_wait_ms
            };
            if w.silence_ms(now) >= needed && !self.beep.in_tone() {
                return Some(if short {
                    (AmdVerdict::Human, "short greeting then silence")
                } else {
                    (AmdVerdict::Human, "greeting then silence, no beep")
                });
            }
        } else if elapsed >= c.initial_silence_ms && !self.tone_first {
            return Some((AmdVerdict::Silence, "no speech"));
        }
        if elapsed >= c.max_window_ms {
            return Some(self.at_limit(now));
        }
        None
    }

    /// The judgement when listening ends before a rule has decided (at
    /// `max_window_ms`, or where a recording ends): what the rules would say
    /// a moment later, from the state so far. Quiet after words: the
    /// speaker has stopped, and only a beep could still make it a machine,
    /// so a person (the silence rules, not waited out). A beep under way
    /// after words: a machine. Still talking: not known. A tone and no
    /// words: not known. Nothing: dead air.
    fn at_limit(&self, now: u32) -> (AmdVerdict, &'static str) {
        let w = &self.words;
        let quiet = w.silence_ms(now) > 0;
        match (w.words > 0, quiet, self.beep.in_tone(), self.tone_first) {
            (true, _, true, _) => (AmdVerdict::Machine, "beep under way at the limit"),
            (true, true, false, _) => (AmdVerdict::Human, "greeting then silence at the limit"),
            (true, false, false, _) => (AmdVerdict::Unknown, "speech at the limit"),
            (false, _, _, true) => (AmdVerdict::Unknown, "tone only"),
            (false, _, _, false) => (AmdVerdict::Silence, "no speech"),
        }
    }

    /// Listening is over (a recording has ended, or a caller stops and
    /// wants an answer): the decision made earlier, or else one made now by
    /// the rule of the `max_window_ms` limit (and kept: asked again, the
    /// same answer).
    pub fn finish(&mut self) -> AmdDecision {
        if let Some(d) = self.decision {
            return d;
        }
        let now = self.analyzer.frames();
        let (verdict, reason) = self.at_limit(now);
        let d = AmdDecision {
            verdict,
            at_ms: now.saturating_mul(FRAME_MS),
            reason,
            measures: self.words.measures(now),
        };
        self.decision = Some(d);
        d
    }

    /// One line of internal state, for the calibration tools.
    #[cfg(test)]
    pub(crate) fn trace(&self) -> String {
        let w = &self.words;
        format!(
            "loudest {:.1} burst {} words {} start {:?} end {} voice_end {} tone {}",
            self.level.loudest_db,
            u8::from(w.in_burst),
            w.words,
            w.greeting_start,
            w.greeting_end,
            w.voice_end,
            u8::from(self.beep.in_tone())
        )
    }

    /// Whether there is still something to hear: the decision, or after a
    /// `machine` or `unknown` one, beeps until `beep.listen_ms` from the
    /// start (0: for ever). The session stops feeding the detector, and frees
    /// it, once this is false; [`super::classify_samples`] stops the same
    /// way.
    pub fn wants_audio(&self) -> bool {
        match self.decision {
            None => true,
            Some(d) if matches!(d.verdict, AmdVerdict::Machine | AmdVerdict::Unknown) => {
                let listen = self.config.beep.listen_ms;
                listen == 0 || self.elapsed_ms() < listen
            }
            Some(_) => false,
        }
    }

    /// What has been measured so far.
    pub fn measures(&self) -> AmdMeasures {
        self.words.measures(self.analyzer.frames())
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<AmdDecision> {
        self.decision
    }

    /// Time fed so far, in ms.
    pub fn elapsed_ms(&self) -> u32 {
        self.analyzer.frames().saturating_mul(FRAME_MS)
    }

    pub fn config(&self) -> &AmdConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::test_signals::{noise, silence, tone, voice, Signal};

    /// Runs the detector over `signal` (then 4 s of silence); returns the
    /// decision and every beep event.
    fn classify(signal: Vec<i16>) -> (AmdDecision, Vec<BeepEvent>) {
        let mut det = AmdDetector::new(AmdConfig::default());
        let mut decision = None;
        let mut beeps = Vec::new();
        let padded = Signal::new().then(signal).then(silence(4000)).build();
        for frame in padded.chunks(160) {
            let out = det.process(frame);
            if let Some(d) = out.decision {
                assert!(decision.is_none(), "decided twice");
                decision = Some(d);
            }
            beeps.extend(out.beep);
        }
        (decision.expect("decided within the window"), beeps)
    }

    fn hiss(ms: u32) -> Vec<i16> {
        noise(ms, 20.0, 99)
    }

    #[test]
    fn dead_air_is_silence() {
        let (d, _) = classify(silence(5000));
        assert_eq!((d.verdict, d.at_ms), (AmdVerdict::Silence, 3500));
        let (d, _) = classify(hiss(5000));
        assert_eq!(d.verdict, AmdVerdict::Silence);
        // Handset clicks (10 ms) are not words.
        let mut s = Signal::new();
        for _ in 0..5 {
            s = s.then(hiss(600)).then(noise(10, 5000.0, 3));
        }
        let (d, _) = classify(s.build());
        assert_eq!(d.verdict, AmdVerdict::Silence, "{d:?}");
    }

    #[test]
    fn short_hello_then_silence_is_human() {
        let s = Signal::new()
            .then(hiss(700))
            .then(voice(500, 180.0, 3000.0))
            .build();
        let (d, _) = classify(s.clone());
        assert_eq!(d.verdict, AmdVerdict::Human, "{d:?}");
        assert_eq!(d.reason, "short greeting then silence");
        // Decided 0.6 s after the hello ends (plus a frame or two).
        assert!((1800..=1900).contains(&d.at_ms), "{d:?}");
        assert_eq!(d.measures.words, 1);
        assert!(d.measures.initial_silence_ms.abs_diff(700) <= 40, "{d:?}");
        assert!(d.measures.greeting_ms.abs_diff(500) <= 60, "{d:?}");
    }

    /// Phrases with short pauses, 2.7 s in all.
    fn receptionist() -> Signal {
        Signal::new()
            .then(hiss(300))
            .then(voice(900, 120.0, 4000.0))
            .then(hiss(300))
            .then(voice(1500, 120.0, 4000.0))
    }

    #[test]
    fn long_greeting_then_silence_is_a_person_waiting() {
        // No beep within `beep_wait_ms` of the greeting's end: human.
        let (d, _) = classify(receptionist().build());
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Human, "greeting then silence, no beep"),
            "{d:?}"
        );
        // 3.0 s of sound, then 1.2 s of silence.
        assert!((4200..=4300).contains(&d.at_ms), "{d:?}");
        assert!(d.measures.greeting_ms.abs_diff(2700) <= 60, "{d:?}");
    }

    #[test]
    fn long_greeting_then_beep_is_machine() {
        // The same greeting, then a beep 0.8 s after it (within the wait).
        let s = receptionist()
            .then(hiss(800))
            .then(tone(&[850.0], 5000.0, 400))
            .build();
        let (d, beeps) = classify(s);
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Machine, "beep"),
            "{d:?}"
        );
        // Decided once the beep has ended (3.8 s + 0.4 s, and the wait for a
        // second half).
        assert!((4200..=4300).contains(&d.at_ms), "{d:?}");
        let ended = beeps.iter().any(|b| {
            matches!(b, BeepEvent::Ended { start_ms, end_ms }
                if start_ms.abs_diff(3800) <= 10 && end_ms.abs_diff(4200) <= 10)
        });
        assert!(ended, "{beeps:?}");
    }

    #[test]
    fn greeting_longer_than_a_person_speaks_is_machine() {
        let mut s = Signal::new().then(hiss(200));
        for _ in 0..6 {
            s = s.then(voice(1000, 130.0, 4000.0)).then(hiss(200));
        }
        let (d, _) = classify(s.build());
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Machine, "greeting too long for a person"),
            "{d:?}"
        );
        assert!((6600..=6800).contains(&d.at_ms), "{d:?}");
    }

    #[test]
    fn speaker_over_babble_is_heard_to_stop() {
        // A voice ~12 dB over a babble-like background (four quieter voices
        // that never stop): the frames stay loud after the voice ends, the
        // 300 ms level falls back to the background's.
        let babble = (0..4)
            .map(|k| voice(4000, 110.0 + 37.0 * f64::from(k), 500.0))
            .fold(vec![0i16; 4000 * 8], |acc, v| {
                acc.iter()
                    .zip(&v)
                    .map(|(a, b)| a.saturating_add(*b))
                    .collect()
            });
        let speech = Signal::new()
            .then(silence(800))
            .then(voice(800, 170.0, 4000.0))
            .then(silence(2400))
            .build();
        let mixed: Vec<i16> = speech
            .iter()
            .zip(&babble)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        // Frame by frame the babble is sound: without the level test the
        // greeting never ends.
        let mut det = AmdDetector::new(AmdConfig {
            foreground_drop_db: 100.0,
            ..AmdConfig::default()
        });
        assert_eq!(mixed.chunks(160).find_map(|f| det.push_frame(f)), None);
        let (d, _) = classify(mixed);
        assert_eq!(d.verdict, AmdVerdict::Human, "{d:?}");
        // The voice ends at 1.6 s; then the silence needed (0.6 s, or 1.2 s
        // when the babble's own bursts made the greeting start early and
        // look long) and the 300 ms the level needs.
        assert!((2300..=3600).contains(&d.at_ms), "{d:?}");
    }

    #[test]
    fn short_greeting_and_beep_is_machine() {
        let s = Signal::new()
            .then(hiss(200))
            .then(voice(1200, 200.0, 4000.0))
            .then(hiss(400))
            .then(tone(&[1000.0], 5000.0, 300))
            .build();
        let (d, beeps) = classify(s);
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Machine, "beep"),
            "{d:?}"
        );
        assert!(d.at_ms <= 2200 + 100, "{d:?}");
        let ended = beeps.iter().any(|b| {
            matches!(b, BeepEvent::Ended { start_ms, end_ms }
                if start_ms.abs_diff(1800) <= 10 && end_ms.abs_diff(2100) <= 10)
        });
        assert!(ended, "{beeps:?}");
    }

    #[test]
    fn a_beep_alone_is_machine_and_fax_tones_are_fax() {
        let (d, _) = classify(
            Signal::new()
                .then(hiss(400))
                .then(tone(&[1400.0], 5000.0, 400))
                .build(),
        );
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Machine, "beep"),
            "{d:?}"
        );
        let cng = Signal::new()
            .then(hiss(1000))
            .then(tone(&[1100.0], 8000.0, 500))
            .then(hiss(3000))
            .build();
        let (d, _) = classify(cng);
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Fax, "fax calling tone"),
            "{d:?}"
        );
        assert!(d.at_ms < 1700, "{d:?}");
        let ced = Signal::new()
            .then(hiss(800))
            .then(tone(&[2100.0], 8000.0, 3000))
            .build();
        let (d, _) = classify(ced);
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Fax, "fax answer tone"),
            "{d:?}"
        );
        assert!(d.at_ms <= 800 + 540, "{d:?}");
    }

    #[test]
    fn the_end_of_audio_is_judged_by_the_window_limit_rule() {
        // The receptionist's greeting, then 0.5 s of quiet: inside the beep
        // wait. A recording ending here and a call whose window ends here
        // get the same answer.
        let s = receptionist().then(hiss(500)).build();
        let mut det = AmdDetector::new(AmdConfig::default());
        assert_eq!(s.chunks(160).find_map(|f| det.push_frame(f)), None);
        let ended = det.finish();
        assert_eq!(
            (ended.verdict, ended.reason, ended.at_ms),
            (
                AmdVerdict::Human,
                "greeting then silence at the limit",
                3500
            ),
            "{ended:?}"
        );
        assert_eq!(det.finish(), ended, "asked again, the same answer");
        assert_eq!(det.decision(), Some(ended));
        let mut limited = AmdDetector::new(AmdConfig {
            max_window_ms: 3500,
            ..AmdConfig::default()
        });
        let at_limit = s.chunks(160).find_map(|f| limited.push_frame(f));
        assert_eq!(at_limit, Some(ended));
        // A beep under way after words: a machine; nothing heard: silence.
        let mut det = AmdDetector::new(AmdConfig::default());
        let s = receptionist()
            .then(hiss(400))
            .then(tone(&[1000.0], 5000.0, 200))
            .build();
        assert_eq!(s.chunks(160).find_map(|f| det.push_frame(f)), None);
        assert_eq!(
            det.finish().verdict,
            AmdVerdict::Machine,
            "{:?}",
            det.decision()
        );
        let mut det = AmdDetector::new(AmdConfig::default());
        for f in hiss(1000).chunks(160) {
            det.push_frame(f);
        }
        assert_eq!(det.finish().verdict, AmdVerdict::Silence);
    }

    #[test]
    fn late_answer_and_window_end() {
        // Someone answering after 3 s is still heard (before the 3.5 s of
        // initial silence run out).
        let s = Signal::new()
            .then(hiss(3000))
            .then(voice(400, 150.0, 3000.0))
            .build();
        let (d, _) = classify(s);
        assert_eq!(
            (d.verdict, d.reason),
            (AmdVerdict::Human, "short greeting then silence"),
            "{d:?}"
        );
        // With a short window, sound still going at its end is unknown.
        let mut det = AmdDetector::new(AmdConfig {
            max_window_ms: 4000,
            ..AmdConfig::default()
        });
        let s = Signal::new()
            .then(hiss(3300))
            .then(voice(1000, 150.0, 3000.0))
            .build();
        let d = s.chunks(160).find_map(|f| det.push_frame(f));
        let d = d.expect("decided");
        assert_eq!(
            (d.verdict, d.reason, d.at_ms),
            (AmdVerdict::Unknown, "speech at the limit", 4000),
            "{d:?}"
        );
    }

    #[test]
    fn odd_frame_sizes_do_not_panic_and_count_as_frames() {
        let mut det = AmdDetector::new(AmdConfig::default());
        assert_eq!(det.push_frame(&[]), None);
        assert_eq!(det.push_frame(&[1000; 500]), None);
        assert_eq!(det.elapsed_ms(), 40);
        let silly = AmdConfig {
            max_window_ms: 0,
            min_word_ms: 0,
            ..AmdConfig::default()
        };
        let mut det = AmdDetector::new(silly);
        let d = det.push_frame(&[0; 160]).expect("decides at once");
        assert_eq!(d.verdict, AmdVerdict::Silence);
        assert_eq!(det.push_frame(&[0; 160]), None, "only once");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any audio, any frame sizes, any config: no panic, one decision at
        /// most, and always one by the end of the window.
        #[test]
        fn arbitrary_audio_decides_once(
            frames in proptest::collection::vec(
                (proptest::collection::vec(proptest::prelude::any::<i16>(), 0..200), 0u32..4),
                0..260,
            ),
            window in 0u32..6000,
            greeting in 0u32..3000,
            margin in -20.0f32..40.0,
        ) {
            let config = AmdConfig {
                max_window_ms: window,
                max_greeting_ms: greeting,
                speech_margin_db: margin,
                ..AmdConfig::default()
            };
            let mut det = AmdDetector::new(config);
            let mut decisions = 0;
            for (samples, shift) in &frames {
                // Quiet and loud versions of the same noise.
                let scaled: Vec<i16> = samples.iter().map(|s| s >> (4 * shift)).collect();
                let out = det.process(&scaled);
                decisions += usize::from(out.decision.is_some());
            }
            proptest::prop_assert!(decisions <= 1);
            if det.elapsed_ms() >= window {
                proptest::prop_assert_eq!(decisions, 1);
            }
        }
    }
}
