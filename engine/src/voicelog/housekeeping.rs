//! Voicelog housekeeping run by `dialcast serve`: at start, recordings cut
//! off by a crash are repaired (WAV sizes set from the file, see
//! `dialcast_media::wav::repair_file`) and settled; hourly, voicelogs past
//! their retention are deleted, file first, then row.

use std::path::Path;

use anyhow::Context as _;
use dialcast_media::wav::repair_file;

use crate::store::{EpochMs, VoicelogEnd, VoicelogStore};

/// Rows handled per retention pass.
const PURGE_BATCH: u32 = 500;

/// What [`repair_unsettled`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairSummary {
    /// Files whose header had to be fixed.
    pub repaired: u64,
    /// Files that were already whole (settled as they are).
    pub intact: u64,
    /// Rows whose file is gone or not a WAV file.
    pub missing: u64,
}

/// Settles every voicelog still `recording`: run once at start, before any
/// call, on the node that is the sole user of its store.
pub async fn repair_unsettled<S: VoicelogStore>(
    store: &S,
    dir: &Path,
    now: EpochMs,
) -> anyhow::Result<RepairSummary> {
    let mut summary = RepairSummary::default();
    for log in store.unsettled_voicelogs().await? {
        let path = dir.join(&log.path);
        let plan = tokio::task::spawn_blocking({
            let path = path.clone();
            move || repair_file(&path)
        })
        .await
        .context("voicelog repair task")?;
        let end = match plan {
            Ok(Ok(plan)) => {
                if plan.needed {
                    summary.repaired += 1;
                } else {
                    summary.intact += 1;
                }
                VoicelogEnd {
                    state: "repaired".to_string(),
                    ended_at: Some(now),
                    duration_ms: Some(plan.duration_ms() as i64),
                    bytes: Some(plan.file_len as i64),
                    frames_filled: None,
                    blocks_dropped: None,
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(voicelog = log.id, "{}: {e}", path.display());
                summary.missing += 1;
                missing(now)
            }
            Err(e) => {
                tracing::warn!(voicelog = log.id, "{}: {e}", path.display());
                summary.missing += 1;
                missing(now)
            }
        };
        store.settle_voicelog(log.id, &end).await?;
    }
    Ok(summary)
}

fn missing(now: EpochMs) -> VoicelogEnd {
    VoicelogEnd {
        state: "missing".to_string(),
        ended_at: Some(now),
        ..VoicelogEnd::default()
    }
}

/// Deletes the voicelogs started more than `retention_ms` before `now`:
/// each file (a file already gone is fine), then the rows. Returns how
/// many were deleted.
pub async fn purge_expired<S: VoicelogStore>(
    store: &S,
    dir: &Path,
    retention_ms: i64,
    now: EpochMs,
) -> anyhow::Result<u64> {
    let before = now.saturating_sub(retention_ms);
    let mut deleted = 0;
    loop {
        let batch = store.voicelogs_started_before(before, PURGE_BATCH).await?;
        if batch.is_empty() {
            return Ok(deleted);
        }
        let mut ids = Vec::with_capacity(batch.len());
        for log in &batch {
            let path = dir.join(&log.path);
            match std::fs::remove_file(&path) {
                Ok(()) => ids.push(log.id),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ids.push(log.id),
                Err(e) => {
                    tracing::warn!(voicelog = log.id, "cannot delete {}: {e}", path.display())
                }
            }
        }
        if ids.is_empty() {
            // Every file of the batch refused: try again next pass.
            return Ok(deleted);
        }
        deleted += store.delete_voicelogs(&ids).await?;
        if batch.len() < PURGE_BATCH as usize {
            return Ok(deleted);
        }
    }
}
