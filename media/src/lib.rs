//! Dialcast media: RTP sessions, G.711 codecs, RFC 4733 DTMF, prompt loading, voicelog
//! recording, and answering-machine / voicemail-beep detection.
//!
//! Knows nothing of SIP or campaigns: it is handed addresses and payload types
//! negotiated elsewhere.
//!
//! * [`rtp`], [`dtmf`], [`codec`] — pure wire formats and codecs.
//! * [`inband`] — pure in-band DTMF detection (Goertzel), the fallback when
//!   a peer sends no RFC 4733 events.
//! * [`bridge`] — the frame queues that relay audio between two sessions.
//! * [`amd`] — pure answering-machine and voicemail-beep detectors.
//! * [`session`] — the sans-IO per-call state machine ([`SessionCore`]).
//! * `scheduler` — the shared thread that paces and receives RTP for every call.
//! * `shared_socket`, `demux`, `send_batch` — one RTP socket per scheduler
//!   thread ([`RtpSocketMode::PerThread`]): batched sends and receives, and
//!   which call each datagram is for.
//! * [`MediaEngine`] / [`MediaSession`] — the handles the call controller uses.
//! * [`wav`] — voicelog WAV files: writing with periodic header syncs, repair after a crash.
//! * [`Prompt`] — audio decoded, resampled and encoded once at load time.

pub mod amd;
pub mod bridge;
pub mod codec;
mod demux;
pub mod dtmf;
mod engine;
mod error;
pub mod inband;
pub mod metrics;
mod priority;
pub mod prompt;
mod recorder;
mod recv_batch;
pub mod rtp;
mod scheduler;
mod send_batch;
pub mod session;
mod shared_socket;
pub mod wav;

pub use amd::{
    AmdConfig, AmdDecision, AmdDetector, AmdMeasures, AmdOutput, AmdVerdict, BeepConfig,
    BeepDetector, BeepEvent,
};
pub use bridge::BridgeEnd;
pub use codec::Codec;
pub use engine::{MediaConfig, MediaEngine, MediaSession, RtpSocketMode};
pub use error::MediaError;
pub use prompt::Prompt;
pub use recorder::{RecordingSummary, FLUSH_INTERVAL, RECORDER_QUEUE};
pub use rtp::{parse_rtp, RtpError, RtpHeader, RtpHeaderView};
pub use scheduler::{COMMAND_QUEUE, EVENT_QUEUE, HOUSEKEEPING};
pub use session::{MediaEvent, MediaStats, RemoteMedia, SessionConfig, SessionCore};
