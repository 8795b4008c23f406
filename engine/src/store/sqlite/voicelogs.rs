//! [`VoicelogStore`] on SQLite: the `voicelogs` table (migration 0006).

use sqlx::sqlite::SqliteRow;
use sqlx::Row as _;

use super::SqliteStore;
use crate::store::voicelogs::{
    NewVoicelog, VoicelogEnd, VoicelogFilter, VoicelogInfo, VoicelogStore,
};
use crate::store::{EpochMs, Id, StoreResult};

/// The columns of [`VoicelogInfo`], joined to the record, attempt and
/// campaign, followed by `$tail`.
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT v.id, v.script_name, c.name AS campaign, r.record_id, \
             v.attempt_id, a.attempt_no, a.status, a.talk_ms, v.policy, v.state, v.path, \
             v.started_at, v.ended_at, v.duration_ms, v.bytes, v.frames_filled, \
             v.blocks_dropped FROM voicelogs v JOIN records r ON r.id = v.record_id \
             JOIN attempts a ON a.id = v.attempt_id JOIN campaigns c ON c.id = r.campaign_id ",
            $tail
        )
    };
}

fn info(row: &SqliteRow) -> StoreResult<VoicelogInfo> {
    Ok(VoicelogInfo {
        id: row.try_get("id")?,
        script: row.try_get("script_name")?,
        campaign: row.try_get("campaign")?,
        record_id: row.try_get("record_id")?,
        attempt_id: row.try_get("attempt_id")?,
        attempt_no: u32::try_from(row.try_get::<i64, _>("attempt_no")?).unwrap_or(0),
        attempt_status: row.try_get("status")?,
        talk_ms: row.try_get("talk_ms")?,
        policy: row.try_get("policy")?,
        state: row.try_get("state")?,
        path: row.try_get("path")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        duration_ms: row.try_get("duration_ms")?,
        bytes: row.try_get("bytes")?,
        frames_filled: row.try_get("frames_filled")?,
        blocks_dropped: row.try_get("blocks_dropped")?,
    })
}

impl VoicelogStore for SqliteStore {
    async fn insert_voicelog(&self, log: &NewVoicelog) -> StoreResult<Id> {
        let id = sqlx::query_scalar(
            "INSERT INTO voicelogs (attempt_id, record_id, script_name, policy, path, state, \
             started_at) VALUES (?, ?, ?, ?, ?, 'recording', ?) RETURNING id",
        )
        .bind(log.attempt_id)
        .bind(log.record)
        .bind(&log.script_name)
        .bind(&log.policy)
        .bind(&log.path)
        .bind(log.started_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn settle_voicelog(&self, id: Id, end: &VoicelogEnd) -> StoreResult<()> {
        sqlx::query(
            "UPDATE voicelogs SET state = ?, ended_at = COALESCE(?, ended_at), \
             duration_ms = ?, bytes = ?, frames_filled = ?, blocks_dropped = ? WHERE id = ?",
        )
        .bind(&end.state)
        .bind(end.ended_at)
        .bind(end.duration_ms)
        .bind(end.bytes)
        .bind(end.frames_filled)
        .bind(end.blocks_dropped)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn unsettled_voicelogs(&self) -> StoreResult<Vec<VoicelogInfo>> {
        let rows = sqlx::query(select!("WHERE v.state = 'recording' ORDER BY v.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(info).collect()
    }

    async fn voicelogs_started_before(
        &self,
        before: EpochMs,
        limit: u32,
    ) -> StoreResult<Vec<VoicelogInfo>> {
        let rows = sqlx::query(select!(
            "WHERE v.started_at < ? ORDER BY v.started_at LIMIT ?"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(info).collect()
    }

    async fn delete_voicelogs(&self, ids: &[Id]) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let mut deleted = 0;
        for id in ids {
            deleted += sqlx::query("DELETE FROM voicelogs WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_voicelogs(&self, filter: &VoicelogFilter) -> StoreResult<Vec<VoicelogInfo>> {
        let rows = sqlx::query(select!(
            "WHERE (? IS NULL OR v.script_name = ?) AND (? IS NULL OR r.record_id = ?) \
             ORDER BY v.started_at DESC, v.id DESC LIMIT ?"
        ))
        .bind(&filter.script)
        .bind(&filter.script)
        .bind(&filter.record_id)
        .bind(&filter.record_id)
        .bind(filter.limit.map_or(i64::MAX, i64::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(info).collect()
    }

    async fn voicelog(&self, id: Id) -> StoreResult<Option<VoicelogInfo>> {
        let row = sqlx::query(select!("WHERE v.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(info).transpose()
    }
}
