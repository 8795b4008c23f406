//! Answering-machine detection (AMD) and voicemail-beep detection.
//!
//! Both detectors are pure: they are fed the received audio as 20 ms frames
//! of 160 samples at 8 kHz and count time in frames; no I/O, no clock. The
//! session feeds them (see [`crate::SessionCore::start_detection`]); a test
//! can feed them a WAV file.
//!
//! * [`AmdDetector`] — after the answer: how long until someone speaks, how
//!   long the greeting lasts, and what follows it. A short greeting followed
//!   by silence is a person; a greeting followed by a beep, or one that goes
//!   on longer than a person answering would, a machine; a longer greeting
//!   followed by silence and no beep, a person waiting for us (a
//!   receptionist); nothing at all, dead air; a fax calling tone (CNG,
//!   1100 Hz) or answer tone (CED, 2100 Hz), a fax. Over a loud background
//!   (babble, music) the speaker's silence is heard as the level falling
//!   back to the background's. The decision comes once, with its time, the
//!   rule that made it and what was measured.
//! * [`BeepDetector`] — a steady tone of 350-2050 Hz (one or two spectral
//!   peaks), at least 80 ms long, standing out from the sound around it:
//!   reported when it has lasted 80 ms and again when it ends, which is when
//!   a message should start. `AmdDetector` runs one too and reports its
//!   events ([`AmdDetector::process`]).
//!
//! Inside: `vad` (frame energy, adaptive noise floor), `fft` and `tone`
//! (spectral peaks, tone tracking), `features` (one frame's measurements),
//! `classifier` and `beep`. Nothing allocates after construction.
//!
//! The accuracy measured on the development clips, how it was measured and
//! why the parameters are what they are: `media/AMD.md`.

mod beep;
mod classifier;
mod features;
mod fft;
mod offline;
mod tone;
mod vad;

#[cfg(test)]
mod calibrate;
#[cfg(test)]
mod test_signals;

pub use beep::BeepDetector;
pub use classifier::{AmdDetector, AmdOutput};
pub use offline::{classify_samples, read_wav_8k, Classification};

/// Length of the frames the detectors take, in ms.
pub const FRAME_MS: u32 = 20;

/// How the classifier decides: a serde-friendly table (every field
/// optional, unknown keys refused), so a deployment or a script can override
/// any of it. Times in ms from the first frame fed (the answer).
///
/// The defaults, and why (`media/AMD.md` shows how the dev-set accuracy
/// moves with each):
///
/// | field | default | why |
/// | --- | --- | --- |
/// | `initial_silence_ms` | 3500 | people answer after up to ~3 s |
/// | `after_greeting_silence_ms` | 600 | someone who said "Hello?" waits for us; a turn gap over half a second is already long |
/// | `short_greeting_ms` | 1500 | a word or two; voicemail greetings are rarely this short |
/// | `beep_wait_ms` | 1200 | voicemail systems beep 0.15-0.9 s after their greeting; its weak last sounds can be lost in noise up to 0.2 s earlier; a beep is confirmed after 80 ms |
/// | `max_greeting_ms` | 6500 | a person answering leaves the caller a turn sooner |
/// | `max_window_ms` | 10000 | a cap; the rules above decide first |
/// | `min_word_ms` | 100 | clicks and pops are shorter |
/// | `speech_margin_db` | 10 | clearly above hiss and hum |
/// | `foreground_drop_db` | 7 | babble, music or TV under a call is quieter than the voice over it |
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmdConfig {
    /// Nothing said for this long after the answer: silence (dead air).
    pub initial_silence_ms: u32,
    /// Silence after a short greeting (at most `short_greeting_ms`) that
    /// means the speaker is waiting for us: a person.
    pub after_greeting_silence_ms: u32,
    /// Greetings up to this long are short.
    pub short_greeting_ms: u32,
    /// After a longer greeting, how long to wait for a voicemail beep: if
    /// the speaker stays silent this long and no beep has started, a person
    /// (a receptionist's long greeting) is waiting for us.
    pub beep_wait_ms: u32,
    /// A greeting (speech whose pauses are shorter than the silences above)
    /// that lasts this long is a machine.
    pub max_greeting_ms: u32,
    /// Longest we listen before deciding anyway.
    pub max_window_ms: u32,
    /// Shortest burst of sound that counts as a word (shorter ones are clicks
    /// and pops).
    pub min_word_ms: u32,
    /// A frame is sound when its energy is this many dB above the noise
    /// floor.
    pub speech_margin_db: f32,
    /// Over a loud background (babble, music, TV), the speaker has stopped
    /// when the 300 ms level falls this many dB below the greeting's loudest
    /// 300 ms (and stays within 20 dB of the noise floor).
    pub foreground_drop_db: f32,
    /// The beep detector run alongside.
    pub beep: BeepConfig,
}

impl Default for AmdConfig {
    fn default() -> Self {
        AmdConfig {
            initial_silence_ms: 3500,
            after_greeting_silence_ms: 600,
            short_greeting_ms: 1500,
            beep_wait_ms: 1200,
            max_greeting_ms: 6500,
            max_window_ms: 10_000,
            min_word_ms: 100,
            speech_margin_db: 10.0,
            foreground_drop_db: 7.0,
            beep: BeepConfig::default(),
        }
    }
}

impl AmdConfig {
    /// Checks the values make sense together; the error names the field
    /// (`beep.min_hz`...). Any config is safe to run, this catches typos.
    pub fn check(&self) -> Result<(), &'static str> {
        let b = &self.beep;
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !positive(self.speech_margin_db) {
            return Err("speech_margin_db must be a positive number of dB");
        }
        if !positive(self.foreground_drop_db) {
            return Err("foreground_drop_db must be a positive number of dB");
        }
        if self.short_greeting_ms > self.max_greeting_ms {
            return Err("short_greeting_ms must not exceed max_greeting_ms");
        }
        if self.initial_silence_ms > self.max_window_ms {
            return Err("initial_silence_ms must not exceed max_window_ms");
        }
        if !(b.min_hz.is_finite() && b.max_hz.is_finite() && b.min_hz < b.max_hz) {
            return Err("beep.min_hz must be below beep.max_hz");
        }
        if b.min_ms > b.max_ms {
            return Err("beep.min_ms must not exceed beep.max_ms");
        }
        Ok(())
    }
}

/// What counts as a voicemail beep (defaults: 350-2050 Hz, 80-2000 ms,
/// listened for until 30 s after the answer).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeepConfig {
    /// The tone's frequency must start in this band, Hz (the 2100 Hz fax
    /// answer tone stays out).
    pub min_hz: f32,
    pub max_hz: f32,
    /// Shortest beep (time the tone is present; a double beep counts both).
    pub min_ms: u32,
    /// Longer tones are not beeps (dial tone, fax answer tone).
    pub max_ms: u32,
    /// The session stops listening for a beep this long after detection
    /// started (0: never). The pure detector ignores it.
    pub listen_ms: u32,
}

impl Default for BeepConfig {
    fn default() -> Self {
        BeepConfig {
            min_hz: 350.0,
            max_hz: 2050.0,
            min_ms: 80,
            max_ms: 2000,
            listen_ms: 30_000,
        }
    }
}

/// The class of the answering party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmdVerdict {
    Human,
    Machine,
    Silence,
    Fax,
    Unknown,
}

impl AmdVerdict {
    /// The value written to result files.
    pub fn as_str(self) -> &'static str {
        match self {
            AmdVerdict::Human => "human",
            AmdVerdict::Machine => "machine",
            AmdVerdict::Silence => "silence",
            AmdVerdict::Fax => "fax",
            AmdVerdict::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AmdVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the classifier measured up to its decision, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AmdMeasures {
    /// From the answer to the first word (or to the decision, if none).
    pub initial_silence_ms: u32,
    /// From the first word's start to the end of the greeting's last sound.
    pub greeting_ms: u32,
    /// Words (bursts of at least `min_word_ms`) heard.
    pub words: u32,
    /// Silence since the last word, at the decision.
    pub silence_after_ms: u32,
}

/// The classifier's answer, given once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdDecision {
    pub verdict: AmdVerdict,
    /// When it was decided, in ms from the first frame.
    pub at_ms: u32,
    /// Which rule decided, in a few words.
    pub reason: &'static str,
    pub measures: AmdMeasures,
}

/// A beep, in ms from the first frame fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeepEvent {
    /// A steady tone that started at `at_ms` out of quiet has lasted
    /// `min_ms`. Provisional: it may still prove too long, or be followed by
    /// more sound, and then no `Ended` follows.
    Detected { at_ms: u32 },
    /// The beep ended into quiet: speak from `end_ms` on. Reported 60-80 ms
    /// after `end_ms` (the wait bridges the gap inside a double beep).
    Ended { start_ms: u32, end_ms: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_partial_serde_with_checked_values() {
        assert_eq!(AmdConfig::default().check(), Ok(()));
        let c: AmdConfig =
            serde_json::from_str(r#"{"beep_wait_ms": 1200, "beep": {"max_hz": 1800}}"#)
                .expect("partial config");
        assert_eq!(c.beep_wait_ms, 1200);
        assert_eq!(c.beep.max_hz, 1800.0);
        assert_eq!(c.beep.min_hz, BeepConfig::default().min_hz);
        assert_eq!(c.max_greeting_ms, AmdConfig::default().max_greeting_ms);
        let err = serde_json::from_str::<AmdConfig>(r#"{"beep_wait": 1200}"#).expect_err("typo");
        assert!(err.to_string().contains("beep_wait"), "{err}");
        let back: AmdConfig =
            serde_json::from_str(&serde_json::to_string(&c).expect("json")).expect("round trip");
        assert_eq!(back, c);
        let bad = AmdConfig {
            short_greeting_ms: 9000,
            ..AmdConfig::default()
        };
        assert!(bad
            .check()
            .is_err_and(|e| e.starts_with("short_greeting_ms")));
        let mut bad = AmdConfig::default();
        bad.beep.min_hz = 3000.0;
        assert!(bad.check().is_err_and(|e| e.starts_with("beep.min_hz")));
    }
}
