//! The error type of the media crate's public API.

use std::path::PathBuf;

/// Errors returned by `MediaEngine`, `MediaSession` and `Prompt`.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid media config: {reason}")]
    InvalidConfig { reason: &'static str },
    #[error("no free RTP port in {min}..={max}")]
    PortRangeExhausted { min: u16, max: u16 },
    #[error("cannot create RTP socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot start media thread")]
    Thread(#[source] std::io::Error),
    #[error("the media engine has stopped")]
    EngineStopped,
    #[error("cannot open prompt {path}")]
    PromptOpen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot decode prompt {path}")]
    PromptDecode {
        path: PathBuf,
        #[source]
        source: symphonia::core::errors::Error,
    },
    #[error("prompt {path} has no audio track")]
    PromptNoAudio { path: PathBuf },
    #[error("cannot resample prompt {path} from {rate} Hz")]
    PromptResample {
        path: PathBuf,
        rate: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot read {path} as a WAV file")]
    WavRead {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("{path} holds no audio")]
    WavEmpty { path: PathBuf },
    #[error("cannot resample {path} from {rate} Hz")]
    WavResample {
        path: PathBuf,
        rate: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot write recording {path}")]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a recording is already running for this session")]
    AlreadyRecording,
}
