//! How long the engine's voicelogs are against the calls they record: read
//! from `dialcast voicelogs list --json` (each recording with its attempt's
//! talk time) and the WAV files themselves (their length from the file's
//! size, their format from the header). Pure summary over what was read.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Bytes per ms of a stereo 8 kHz 16-bit voicelog.
const BYTES_PER_MS: u64 = 32;
/// One 20 ms frame: the issue's bound on a recording's length error.
pub const ONE_FRAME_MS: f64 = 20.0;

/// One row of `dialcast voicelogs list --json`, the fields read here.
#[derive(Clone, Debug, Deserialize)]
pub struct Listed {
    pub path: String,
    pub state: String,
    pub talk_ms: Option<i64>,
    #[serde(default)]
    pub frames_filled: Option<i64>,
    #[serde(default)]
    pub blocks_dropped: Option<i64>,
}

#[derive(Deserialize)]
struct ListOutput {
    voicelogs: Vec<Listed>,
}

/// One recording as measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub talk_ms: f64,
    pub wav_ms: f64,
    /// Stereo, 8 kHz, 16-bit.
    pub format_ok: bool,
    pub complete: bool,
    pub frames_filled: u64,
    pub blocks_dropped: u64,
}

/// The summary in the benchmark's report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VoicelogAccuracy {
    pub policy: String,
    pub recordings: usize,
    /// Recordings not `complete`, or not stereo 8 kHz 16-bit.
    pub bad_files: usize,
    /// |WAV length − talk time|.
    pub mean_abs_error_ms: f64,
    pub p99_abs_error_ms: f64,
    pub max_abs_error_ms: f64,
    /// Recordings off by more than one 20 ms frame.
    pub over_one_frame: usize,
    /// Mean (WAV length − talk time): the bias.
    pub mean_error_ms: f64,
    /// Frames written as silence because their audio never reached the
    /// writer, over all recordings, and as a share of all frames.
    pub frames_filled: u64,
    pub filled_ratio: f64,
    /// Blocks the media thread dropped on a full recorder queue.
    pub blocks_dropped: u64,
}

/// Parses the list output.
pub fn parse_list(text: &str) -> anyhow::Result<Vec<Listed>> {
    let out: ListOutput = serde_json::from_str(text.trim())
        .with_context(|| "unexpected `dialcast voicelogs list --json` output")?;
    Ok(out.voicelogs)
}

/// Measures one listed recording's file under `dir`.
pub fn measure_file(dir: &Path, log: &Listed) -> Measured {
    let path = dir.join(&log.path);
    let format_ok = hound::WavReader::open(&path).is_ok_and(|r| {
        let s = r.spec();
        (s.channels, s.sample_rate, s.bits_per_sample) == (2, 8000, 16)
    });
    let wav_ms = std::fs::metadata(&path)
        .map(|m| m.len().saturating_sub(44) as f64 / BYTES_PER_MS as f64)
        .unwrap_or(0.0);
    Measured {
        talk_ms: log.talk_ms.unwrap_or(0) as f64,
        wav_ms,
        format_ok,
        complete: log.state == "complete",
        frames_filled: log.frames_filled.unwrap_or(0).max(0) as u64,
        blocks_dropped: log.blocks_dropped.unwrap_or(0).max(0) as u64,
    }
}

/// The summary of `measured`.
pub fn summarise(policy: &str, measured: &[Measured]) -> VoicelogAccuracy {
    let mut errors: Vec<f64> = measured.iter().map(|m| m.wav_ms - m.talk_ms).collect();
    let n = errors.len().max(1) as f64;
    let mean_error_ms = errors.iter().sum::<f64>() / n;
    let mut abs: Vec<f64> = errors.drain(..).map(f64::abs).collect();
    abs.sort_by(f64::total_cmp);
    let p99 = abs
        .get(((abs.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    let frames: f64 = measured.iter().map(|m| m.wav_ms / ONE_FRAME_MS).sum();
    let frames_filled = measured.iter().map(|m| m.frames_filled).sum();
    VoicelogAccuracy {
        policy: policy.to_string(),
        recordings: measured.len(),
        bad_files: measured
            .iter()
            .filter(|m| !m.format_ok || !m.complete)
            .count(),
        mean_abs_error_ms: abs.iter().sum::<f64>() / n,
        p99_abs_error_ms: p99,
        max_abs_error_ms: abs.last().copied().unwrap_or(0.0),
        over_one_frame: abs.iter().filter(|e| **e > ONE_FRAME_MS).count(),
        mean_error_ms,
        frames_filled,
        filled_ratio: if frames > 0.0 {
            frames_filled as f64 / frames
        } else {
            0.0
        },
        blocks_dropped: measured.iter().map(|m| m.blocks_dropped).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(talk: f64, wav: f64) -> Measured {
        Measured {
            talk_ms: talk,
            wav_ms: wav,
            format_ok: true,
            complete: true,
            frames_filled: 1,
            blocks_dropped: 0,
        }
    }

    #[test]
    fn errors_are_summarised_against_one_frame() {
        let s = summarise(
            "all",
            &[m(1000.0, 1000.0), m(2000.0, 1990.0), m(500.0, 530.0)],
        );
        assert_eq!(s.recordings, 3);
        assert_eq!(s.over_one_frame, 1);
        assert_eq!(s.max_abs_error_ms, 30.0);
        assert_eq!(s.p99_abs_error_ms, 30.0);
        assert!((s.mean_abs_error_ms - 40.0 / 3.0).abs() < 1e-9);
        assert!((s.mean_error_ms - 20.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.frames_filled, 3);
        assert!((s.filled_ratio - 3.0 / 176.0).abs() < 1e-9);
    }

    #[test]
    fn the_list_output_parses() {
        let text = r#"{"voicelogs":[{"id":1,"path":"s/2026-12-06/1.wav","state":"complete","talk_ms":1500,"frames_filled":0,"blocks_dropped":0,"script":"s"}]}"#;
        let logs = parse_list(text).expect("parse");
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].talk_ms, Some(1500));
        assert!(parse_list("nope").is_err());
    }
}
