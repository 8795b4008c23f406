//! [`BlocklistStore`] on SQLite: the `blocklist` table, and stopping the
//! pending records a new entry leaves without a number to dial.

use std::collections::HashSet;

use sqlx::Row as _;

use super::{from_json, insert_event, SqliteStore};
use crate::store::blocklist::{BlockEntry, BlockOutcome, BlocklistStore};
use crate::store::{Id, StoreResult};

impl BlocklistStore for SqliteStore {
    async fn block_number(
        &self,
        organisation: Id,
        entry: &BlockEntry,
    ) -> StoreResult<BlockOutcome> {
        let now = entry.added_at;
        let mut tx = self.begin_write().await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blocklist WHERE organisation_id = ? AND number = ?")
                .bind(organisation)
                .bind(&entry.number)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO blocklist (organisation_id, number, reason, added_at, added_by) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (organisation_id, number) \
             DO UPDATE SET reason = excluded.reason, added_by = excluded.added_by",
        )
        .bind(organisation)
        .bind(&entry.number)
        .bind(&entry.reason)
        .bind(now)
        .bind(&entry.added_by)
        .execute(&mut *tx)
        .await?;
        // E.164 holds no LIKE wildcards; the JSON list quotes each number.
        // Records of an import in progress are left alone: they are not
        // records yet, and every claim checks the blocklist anyway.
        let candidates = sqlx::query(concat!(
            "SELECT r.id, r.campaign_id, r.record_id, r.phones_json FROM records r \
             JOIN campaigns c ON c.id = r.campaign_id \
             WHERE c.organisation_id = ? AND r.state = 'pending' AND r.phones_json LIKE ? AND ",
            visible!("r")
        ))
        .bind(organisation)
        .bind(format!("%\"{}\"%", entry.number))
        .fetch_all(&mut *tx)
        .await?;
        let mut records_blocked = 0;
        for row in &candidates {
            let record: Id = row.try_get("id")?;
            let campaign: Id = row.try_get("campaign_id")?;
            let record_id: String = row.try_get("record_id")?;
            let phones: Vec<String> =
                from_json(&row.try_get::<String, _>("phones_json")?, "record phones")?;
            if !phones.contains(&entry.number) {
                continue;
            }
            let mut all_blocked = true;
            for phone in phones.iter().filter(|p| **p != entry.number) {
                let blocked: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM blocklist WHERE organisation_id = ? AND number = ?",
                )
                .bind(organisation)
                .bind(phone)
                .fetch_optional(&mut *tx)
                .await?;
                if blocked.is_none() {
                    all_blocked = false;
                    break;
                }
            }
            if !all_blocked {
                continue;
            }
            sqlx::query("UPDATE records SET state = 'done', final_status = 'blocked' WHERE id = ?")
                .bind(record)
                .execute(&mut *tx)
                .await?;
            let attempt: Id = sqlx::query_scalar(
                "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, status, \
                 started_at, ended_at, ring_ms, talk_ms, success_point, dtmf, outputs_json) \
                 SELECT ?, COALESCE(MAX(attempt_no), 0) + 1, ?, 0, 'ended', 'blocked', ?, ?, 0, 0, 0, '', '[]' \
                 FROM attempts WHERE record_id = ? RETURNING id",
            )
            .bind(record)
            .bind(&entry.number)
            .bind(now)
            .bind(now)
            .bind(record)
            .fetch_one(&mut *tx)
            .await?;
            insert_event(
                &mut tx,
                campaign,
                Some(record),
                Some(attempt),
                "record_done",
                &serde_json::json!({ "record_id": record_id, "status": "blocked" }),
                now,
            )
            .await?;
            records_blocked += 1;
        }
        tx.commit().await?;
        Ok(BlockOutcome {
            added: known.is_none(),
            records_blocked,
        })
    }

    async fn unblock_number(&self, organisation: Id, number: &str) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM blocklist WHERE organisation_id = ? AND number = ?")
            .bind(organisation)
            .bind(number)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(removed > 0)
    }

    async fn blocklist(&self, organisation: Id) -> StoreResult<Vec<BlockEntry>> {
        let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT number, reason, added_at, added_by FROM blocklist \
             WHERE organisation_id = ? ORDER BY number",
        )
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(number, reason, added_at, added_by)| BlockEntry {
                number,
                reason,
                added_at,
                added_by,
            })
            .collect())
    }

    async fn is_blocked(&self, organisation: Id, number: &str) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM blocklist WHERE organisation_id = ? AND number = ?")
                .bind(organisation)
                .bind(number)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn blocked_numbers(&self, organisation: Id) -> StoreResult<HashSet<String>> {
        let numbers: Vec<String> =
            sqlx::query_scalar("SELECT number FROM blocklist WHERE organisation_id = ?")
                .bind(organisation)
                .fetch_all(&self.pool)
                .await?;
        Ok(numbers.into_iter().collect())
    }
}
