//! What the store keeps of voicelogs: one row per recorded call, naming its
//! record, attempt and script, written when the recording starts and
//! settled when it ends (or after a crash). The files themselves live under
//! the voicelog directory; see [`crate::voicelog`].
//!
//! ```text
//! recording ──settle_voicelog──► complete
//!     └──── (crash) ── repair at start ──► repaired | missing
//! any ──delete_voicelogs (past retention, file deleted)──► (row gone)
//! ```

use std::future::Future;

use serde::Serialize;

use super::{EpochMs, Id, StoreResult};

/// A recording about to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVoicelog {
    pub attempt_id: Id,
    pub record: Id,
    pub script_name: String,
    /// The policy that asked for it (`all`, `from_success`, `forwarded`).
    pub policy: String,
    /// Relative to the voicelog directory.
    pub path: String,
    pub started_at: EpochMs,
}

/// How a recording ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoicelogEnd {
    /// `complete`, `repaired`, `missing` or `failed`.
    pub state: String,
    pub ended_at: Option<EpochMs>,
    pub duration_ms: Option<i64>,
    pub bytes: Option<i64>,
    /// 20 ms frames written as silence because their audio never reached
    /// the writer (dropped under load, or a stalled media thread).
    pub frames_filled: Option<i64>,
    /// Blocks the media thread dropped because the writer's queue was full.
    pub blocks_dropped: Option<i64>,
}

/// One voicelog as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoicelogInfo {
    pub id: Id,
    pub script: String,
    pub campaign: String,
    /// The record's RECORD_ID.
    pub record_id: String,
    pub attempt_id: Id,
    /// Which attempt of the record (1-based).
    pub attempt_no: u32,
    /// The attempt's status, once ended.
    pub attempt_status: Option<String>,
    /// The attempt's talk time (answer to hang-up), ms.
    pub talk_ms: Option<i64>,
    pub policy: String,
    pub state: String,
    /// Relative to the voicelog directory.
    pub path: String,
    pub started_at: EpochMs,
    pub ended_at: Option<EpochMs>,
    pub duration_ms: Option<i64>,
    pub bytes: Option<i64>,
    pub frames_filled: Option<i64>,
    pub blocks_dropped: Option<i64>,
}

/// Which voicelogs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoicelogFilter {
    pub script: Option<String>,
    /// A record's RECORD_ID.
    pub record_id: Option<String>,
    /// Newest first, at most this many (all when `None`).
    pub limit: Option<u32>,
}

/// Voicelog rows.
pub trait VoicelogStore: Send + Sync + 'static {
    /// Writes the row of a recording that starts now; returns its id.
    fn insert_voicelog(&self, log: &NewVoicelog) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Records how a recording ended.
    fn settle_voicelog(
        &self,
        id: Id,
        end: &VoicelogEnd,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Recordings still in state `recording` (cut off by a crash when no
    /// call is running).
    fn unsettled_voicelogs(&self) -> impl Future<Output = StoreResult<Vec<VoicelogInfo>>> + Send;

    /// Voicelogs started before `before`, oldest first, at most `limit`.
    fn voicelogs_started_before(
        &self,
        before: EpochMs,
        limit: u32,
    ) -> impl Future<Output = StoreResult<Vec<VoicelogInfo>>> + Send;

    /// Deletes rows (their files are deleted by the caller first).
    fn delete_voicelogs(&self, ids: &[Id]) -> impl Future<Output = StoreResult<u64>> + Send;

    fn list_voicelogs(
        &self,
        filter: &VoicelogFilter,
    ) -> impl Future<Output = StoreResult<Vec<VoicelogInfo>>> + Send;

    fn voicelog(&self, id: Id) -> impl Future<Output = StoreResult<Option<VoicelogInfo>>> + Send;
}
