//! The per-call side of voicelogs: [`CallRecorder`] is told the moments of
//! a call (answer, point of success, start of a forward) and the moment it
//! ended; it starts the recording when the script's policy says so, writes
//! the store row, and settles it when the media session has closed.
//!
//! The recording's length follows the call's media clock: it starts at the
//! instant of the moment that started it and stops at the instant the call
//! ended (see `MediaSession::record_from` and `stop_recording_at`), so the
//! file is as long as that span to the nearest 20 ms frame, whatever the
//! load; audio that never reached the writer is silence.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use dialcast_media::{MediaSession, MediaStats};

use super::policy::{relative_path, starts_recording, Moment, Policy, VoicelogSettings};
use crate::store::{Claim, EpochMs, Id, NewVoicelog, VoicelogEnd, VoicelogStore};

/// Milliseconds of one recorded frame.
const FRAME_MS: i64 = 20;

/// One call's voicelog.
#[derive(Debug)]
pub struct CallRecorder {
    policy: Policy,
    settings: Arc<VoicelogSettings>,
    attempt_id: Id,
    record: Id,
    script: String,
    active: Option<Active>,
}

#[derive(Debug)]
struct Active {
    /// The store row, once written.
    row: Option<Id>,
    path: PathBuf,
}

impl CallRecorder {
    /// The recorder of `claim`'s call under `script`'s policy.
    pub fn new(settings: &Arc<VoicelogSettings>, script: &str, claim: &Claim) -> CallRecorder {
        CallRecorder {
            policy: settings.policy_for(script),
            settings: Arc::clone(settings),
            attempt_id: claim.attempt_id,
            record: claim.record,
            script: script.to_string(),
            active: None,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether a recording was started.
    pub fn is_recording(&self) -> bool {
        self.active.is_some()
    }

    /// The call reached `moment` at `at`: start recording if the policy
    /// says so. A failure is logged; the call goes on unrecorded.
    pub async fn at_moment<S: VoicelogStore>(
        &mut self,
        store: &S,
        session: &MediaSession,
        moment: Moment,
        at: Instant,
    ) {
        if !starts_recording(self.policy, moment, self.active.is_some()) {
            return;
        }
        let ago = i64::try_from(at.elapsed().as_millis()).unwrap_or(0);
        let started_at = chrono::Utc::now().timestamp_millis() - ago;
        let relative = relative_path(&self.script, started_at, self.attempt_id);
        let path = self.settings.dir.join(&relative);
        if let Some(parent) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(parent) {
                tracing::warn!(
                    attempt = self.attempt_id,
                    "voicelog directory {}: {e}",
                    parent.display()
                );
                return;
            }
        }
        if let Err(e) = session.record_from(&path, at) {
            tracing::warn!(attempt = self.attempt_id, "voicelog not started: {e}");
            return;
        }
        let row = store
            .insert_voicelog(&NewVoicelog {
                attempt_id: self.attempt_id,
                record: self.record,
                script_name: self.script.clone(),
                policy: self.policy.as_str().to_string(),
                path: relative,
                started_at,
            })
            .await;
        let row = match row {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(attempt = self.attempt_id, "voicelog row not written: {e}");
                None
            }
        };
        self.active = Some(Active { row, path });
    }

    /// The call ended at `until`: nothing after it is recorded.
    pub fn call_ended(&self, session: &MediaSession, until: Instant) {
        if self.active.is_some() {
            session.stop_recording_at(until);
        }
    }

    /// After `MediaSession::close` (which finished the file): the row gets
    /// the file's length and what was lost on the way.
    pub async fn settle<S: VoicelogStore>(self, store: &S, stats: &MediaStats, ended_at: EpochMs) {
        let Some(Active {
            row: Some(row),
            path,
        }) = self.active
        else {
            return;
        };
        let bytes = std::fs::metadata(&path).ok().map(|m| m.len() as i64);
        let end = VoicelogEnd {
            state: if bytes.is_some() {
                "complete"
            } else {
                "missing"
            }
            .to_string(),
            ended_at: Some(ended_at),
            duration_ms: Some(stats.record_frames as i64 * FRAME_MS),
            bytes,
            frames_filled: Some(stats.record_filled as i64),
            blocks_dropped: Some(stats.record_dropped as i64),
        };
        if let Err(e) = store.settle_voicelog(row, &end).await {
            tracing::error!(attempt = self.attempt_id, "voicelog row not settled: {e}");
        }
    }
}
