//! `dialcast amd classify`: the answering-machine detector run on
//! recordings, as if each were the first seconds of a call. The audio goes
//! through [`dialcast_media::amd::classify_samples`], the live detector
//! stopped as a live session stops it, so a file gets the answer a call
//! would have got.

use std::path::Path;

use dialcast_media::amd::{classify_samples, read_wav_8k};
use dialcast_media::{AmdConfig, MediaError};
use serde::Serialize;

/// One file's answer: the `--json` line of `dialcast amd classify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileVerdict {
    /// The file as given on the command line.
    pub file: String,
    /// human, machine, silence, fax or unknown.
    pub label: &'static str,
    /// When the detector decided, in ms from the start of the file (for
    /// a file that ends before a rule decides: the length of the audio,
    /// judged as a call at its `max_window_ms` limit).
    pub decision_ms: u32,
    /// Where the first voicemail beep starts, in ms from the start of the
    /// file; `None` (JSON null) when none was heard. As on a call, beeps are
    /// listened for until the decision, and after a machine or unknown one.
    pub beep_ms: Option<u32>,
    /// The rule that decided, in a few words ("beep", "short greeting then
    /// silence", ...).
    pub cause: &'static str,
}

/// Reads `path` (a WAV file; other rates resampled to 8 kHz, channels mixed
/// to mono) and classifies it with `config`. The error names the file.
pub fn classify_file(config: AmdConfig, path: &Path) -> Result<FileVerdict, MediaError> {
    let samples = read_wav_8k(path)?;
    let c = classify_samples(config, &samples);
    Ok(FileVerdict {
        file: path.display().to_string(),
        label: c.decision.verdict.as_str(),
        decision_ms: c.decision.at_ms,
        beep_ms: c.beep.map(|(start, _)| start),
        cause: c.decision.reason,
    })
}
