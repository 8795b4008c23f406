//! The detector run over a recording, as if it were the first seconds of a
//! call: the same [`AmdDetector`], fed the same 20 ms frames and stopped by
//! the same rule as the live session ([`AmdDetector::wants_audio`]). Used by
//! `dialcast amd classify` and the corpus test.

use std::path::Path;

use super::{AmdConfig, AmdDecision, AmdDetector, AmdVerdict, BeepEvent};
use crate::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::MediaError;

/// What the detector made of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The decision; when the audio ended first, the judgement at the end
    /// of the audio by the rule of the `max_window_ms` limit
    /// ([`AmdDetector::finish`]).
    pub decision: AmdDecision,
    /// The first beep heard, `(start_ms, end_ms)`, while the session would
    /// still have been listening (after a `human`, `silence` or `fax`
    /// decision it stops). None for a fax: its calling tone is not a beep.
    pub beep: Option<(u32, u32)>,
    /// Length of the audio fed, ms (whole frames).
    pub audio_ms: u32,
}

/// Runs a detector with `config` over 8 kHz mono `samples` from the moment
/// of answer (a last partial frame is padded with silence).
pub fn classify_samples(config: AmdConfig, samples: &[i16]) -> Classification {
    let mut det = AmdDetector::new(config);
    let mut decision = None;
    let mut beep = None;
    for frame in samples.chunks(FRAME_SAMPLES) {
        if !det.wants_audio() {
            break;
        }
        let out = det.process(frame);
        decision = decision.or(out.decision);
        if let (None, Some(BeepEvent::Ended { start_ms, end_ms })) = (beep, out.beep) {
            beep = Some((start_ms, end_ms));
        }
    }
    let audio_ms = u32::try_from(samples.len().div_ceil(FRAME_SAMPLES))
        .unwrap_or(u32::MAX)
        .saturating_mul(super::FRAME_MS);
    // The end of the recording is the end of listening: the same rule as
    // the `max_window_ms` limit of a call.
    let decision = decision.unwrap_or_else(|| det.finish());
    if decision.verdict == AmdVerdict::Fax {
        beep = None;
    }
    Classification {
        decision,
        beep,
        audio_ms,
    }
}

/// Reads a WAV file as 8 kHz mono 16-bit samples: integer or float samples
/// of any width, channels mixed (averaged) to mono, other rates resampled
/// with the prompts' resampler. Errors name the file.
pub fn read_wav_8k(path: &Path) -> Result<Vec<i16>, MediaError> {
    let read_err = |source| MediaError::WavRead {
        path: path.to_owned(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(read_err)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(read_err)?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(read_err)?
        }
    };
    let mono: Vec<f32> = interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect();
    if mono.is_empty() {
        return Err(MediaError::WavEmpty {
            path: path.to_owned(),
        });
    }
    let mono = if spec.sample_rate == SAMPLE_RATE {
        mono
    } else {
        crate::prompt::resample(&mono, spec.sample_rate).map_err(|source| {
            MediaError::WavResample {
                path: path.to_owned(),
                rate: spec.sample_rate,
                source,
            }
        })?
    };
    Ok(mono
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd::test_signals::{noise, silence, tone, voice, Signal};

    fn write(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for s in samples {
            for _ in 0..channels {
                w.write_sample(*s).expect("write");
            }
        }
        w.finalize().expect("finalize");
    }

    fn greeting_and_beep() -> Vec<i16> {
        Signal::new()
            .then(noise(300, 20.0, 5))
            .then(voice(2500, 140.0, 4000.0))
            .then(noise(400, 20.0, 6))
            .then(tone(&[1000.0], 5000.0, 300))
            .then(noise(800, 20.0, 7))
            .build()
    }

    #[test]
    fn machine_with_beep_reports_the_first_beep() {
        let c = classify_samples(AmdConfig::default(), &greeting_and_beep());
        assert_eq!(c.decision.verdict, AmdVerdict::Machine, "{c:?}");
        let (start, end) = c.beep.expect("beep");
        assert!(
            start.abs_diff(3200) <= 10 && end.abs_diff(3500) <= 10,
            "{c:?}"
        );
        assert_eq!(c.audio_ms, 4300);
    }

    #[test]
    fn audio_ending_first_is_judged_as_at_the_limit_and_beeps_after_human_are_not_heard() {
        // Dead air shorter than `initial_silence_ms`: nothing said.
        let c = classify_samples(AmdConfig::default(), &silence(1000));
        assert_eq!(
            (c.decision.verdict, c.decision.reason, c.decision.at_ms),
            (AmdVerdict::Silence, "no speech", 1000)
        );
        // A long sentence, and the audio ends 0.5 s into the beep wait: the
        // speaker has stopped, as a call would hear at its limit.
        let s = Signal::new()
            .then(noise(500, 20.0, 3))
            .then(voice(3000, 140.0, 4000.0))
            .then(noise(500, 20.0, 4))
            .build();
        let c = classify_samples(AmdConfig::default(), &s);
        assert_eq!(
            (c.decision.verdict, c.decision.reason, c.decision.at_ms),
            (
                AmdVerdict::Human,
                "greeting then silence at the limit",
                4000
            ),
            "{c:?}"
        );
        // Cut while still talking: not known.
        let c = classify_samples(AmdConfig::default(), &s[..8 * 2000]);
        assert_eq!(
            (c.decision.verdict, c.decision.reason),
            (AmdVerdict::Unknown, "speech at the limit"),
            "{c:?}"
        );
        // "Hello", silence (human), then a tone the session would not hear.
        let s = Signal::new()
            .then(silence(500))
            .then(voice(500, 150.0, 4000.0))
            .then(silence(1500))
            .then(tone(&[1000.0], 5000.0, 300))
            .then(silence(500))
            .build();
        let c = classify_samples(AmdConfig::default(), &s);
        assert_eq!((c.decision.verdict, c.beep), (AmdVerdict::Human, None));
    }

    #[test]
    fn wav_files_of_other_rates_and_stereo_give_the_same_answer() {
        let dir = std::env::temp_dir().join(format!("dialcast-amd-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let pcm = greeting_and_beep();
        let plain = dir.join("plain.wav");
        write(&plain, 8000, 1, &pcm);
        assert_eq!(read_wav_8k(&plain).expect("read"), pcm);
        // The same audio at 16 kHz (each sample twice), in stereo.
        let doubled: Vec<i16> = pcm.iter().flat_map(|s| [*s, *s]).collect();
        let wide = dir.join("wide.wav");
        write(&wide, 16_000, 2, &doubled);
        let back = read_wav_8k(&wide).expect("read");
        assert!(back.len().abs_diff(pcm.len()) <= 16, "{}", back.len());
        let a = classify_samples(AmdConfig::default(), &pcm);
        let b = classify_samples(AmdConfig::default(), &back);
        assert_eq!(a.decision.verdict, b.decision.verdict);
        let (sa, sb) = (a.beep.expect("beep").0, b.beep.expect("beep").0);
        assert!(sa.abs_diff(sb) <= 10, "{sa} vs {sb}");
        // Not a WAV file, and a missing one: errors naming the file.
        let text = dir.join("notes.wav");
        std::fs::write(&text, "not audio").expect("write");
        let err = read_wav_8k(&text).expect_err("not a wav");
        assert!(err.to_string().contains("notes.wav"), "{err}");
        let err = read_wav_8k(&dir.join("missing.wav")).expect_err("missing");
        assert!(err.to_string().contains("missing.wav"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
