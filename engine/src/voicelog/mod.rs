//! Voicelogs: stereo recordings of campaign calls (left what we sent, right
//! what the callee said; 8 kHz 16-bit WAV), by script policy, with their
//! record, attempt and script in the store.
//!
//! * [`policy`] — which calls are recorded and from when (pure).
//! * [`recording`] — the per-call hook the call controller drives.
//! * [`housekeeping`] — repair after a crash, deletion after retention.
//! * [`access`] — listing and fetching, for the portal and `dialcast voicelogs`.
//!
//! The media crate writes the files on its recorder thread (never on the
//! media thread), with their length on the call's media clock.

pub mod access;
pub mod housekeeping;
pub mod policy;
pub mod recording;

pub use policy::{Moment, Policy, VoicelogSettings, DEFAULT_RETENTION_DAYS};
pub use recording::CallRecorder;
