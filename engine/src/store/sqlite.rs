//! The embedded default store: one SQLite file in WAL mode, migrations from
//! `engine/migrations/sqlite` run at open.
//!
//! Durability: WAL with `synchronous = NORMAL` survives a killed process (a
//! committed transaction is in the WAL before `COMMIT` returns); only a power
//! loss may drop the last transactions. Writes take the database lock at
//! `BEGIN IMMEDIATE`, so two processes on one file (a `dialcast import` beside
//! a running `serve`) queue behind `busy_timeout` instead of failing.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use super::{
    AttemptOutcome, Campaign, CampaignSettings, CampaignState, CampaignStatus, Claim, EpochMs, Id,
    InsertSummary, NextStep, RecordFinal, Store, StoreError, StoreResult, TrunkSettings,
};
use crate::import::ImportedRecord;
use crate::results::{CallResult, Direction, ResultRow};

mod blocklist;
mod imports;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections in the pool: writes are serialised by SQLite anyway; a few
/// connections let status reads run beside them.
const POOL_SIZE: u32 = 4;
/// Page cache per connection, in KiB: an import batch (10,000 records, a
/// few MiB with their index entries) fits, so pages are not spilled to the
/// WAL before the batch commits.
const PAGE_CACHE_KIB: u32 = 32 * 1024;
/// The WAL file is truncated to this many bytes after a checkpoint (a
/// million-row import's publish grows it to over 600 MB).
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"))
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        Self::connect(options).await
    }

    /// Opens an existing database for reading only, without migrations:
    /// `dialcast campaign status` polled beside a busy `serve` must never
    /// take the write lock.
    pub async fn open_read_only(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }

    /// A private in-memory database (tests).
    pub async fn open_in_memory() -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

fn campaign_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Campaign> {
    let state: String = row.try_get("state")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        state: CampaignState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("campaign state {state:?}")))?,
        script_name: row.try_get("script_name")?,
        script_file: row.try_get("file_name")?,
        script_source: row.try_get("source")?,
        trunk: TrunkSettings {
            name: row.try_get("trunk_name")?,
            uri: row.try_get("uri")?,
            transport: row.try_get("transport")?,
            max_cps: to_u32(row.try_get("max_cps")?),
            max_channels: to_u32(row.try_get("max_channels")?),
            caller_id: row.try_get("caller_id")?,
        },
        settings: CampaignSettings {
            max_attempts: to_u32(row.try_get("max_attempts")?),
            retry_delay_ms: row.try_get("retry_delay_ms")?,
            ring_timeout_ms: row.try_get("ring_timeout_ms")?,
            max_call_ms: row.try_get("max_call_ms")?,
            amd: row.try_get::<i64, _>("amd")? != 0,
        },
    })
}

/// `SELECT` of a campaign with its script and trunk, then `$tail`.
macro_rules! campaign_select {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.name, c.state, c.max_attempts, c.retry_delay_ms, \
             c.ring_timeout_ms, c.max_call_ms, c.amd, s.name AS script_name, s.file_name, s.source, \
             t.name AS trunk_name, t.uri, t.transport, t.max_cps, t.max_channels, t.caller_id \
             FROM campaigns c JOIN scripts s ON s.id = c.script_id JOIN trunks t ON t.id = c.trunk_id",
            " ",
            $tail
        )
    };
}

async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    campaign: Id,
    record: Option<Id>,
    attempt: Option<Id>,
    kind: &str,
    payload: &serde_json::Value,
    now: EpochMs,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (campaign_id, record_id, attempt_id, kind, payload_json, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(campaign)
    .bind(record)
    .bind(attempt)
    .bind(kind)
    .bind(json(payload)?)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store for SqliteStore {
    async fn ensure_organisation(&self, name: &str, default_country: &str) -> StoreResult<Id> {
        Ok(sqlx::query_scalar(
            "INSERT INTO organisations (name, default_country, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET default_country = excluded.default_country \
             RETURNING id",
        )
        .bind(name)
        .bind(default_country)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn upsert_trunk(&self, organisation: Id, trunk: &TrunkSettings) -> StoreResult<Id> {
        Ok(sqlx::query_scalar(
            "INSERT INTO trunks (organisation_id, name, uri, transport, max_cps, max_channels, caller_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, name) DO UPDATE SET uri = excluded.uri, \
             transport = excluded.transport, max_cps = excluded.max_cps, \
             max_channels = excluded.max_channels, caller_id = excluded.caller_id \
             RETURNING id",
        )
        .bind(organisation)
        .bind(&trunk.name)
        .bind(&trunk.uri)
        .bind(&trunk.transport)
        .bind(i64::from(trunk.max_cps))
        .bind(i64::from(trunk.max_channels))
        .bind(&trunk.caller_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn upsert_script(
        &self,
        organisation: Id,
        name: &str,
        file_name: &str,
        source: &str,
    ) -> StoreResult<Id> {
        Ok(sqlx::query_scalar(
            "INSERT INTO scripts (organisation_id, name, file_name, source, updated_at) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, name) DO UPDATE SET file_name = excluded.file_name, \
             source = excluded.source, updated_at = excluded.updated_at RETURNING id",
        )
        .bind(organisation)
        .bind(name)
        .bind(file_name)
        .bind(source)
        .bind(Utc::now().timestamp_millis())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn ensure_campaign(
        &self,
        organisation: Id,
        name: &str,
        script: Id,
        trunk: Id,
        settings: &CampaignSettings,
    ) -> StoreResult<Id> {
        // The no-op update keeps an existing campaign's settings and still
        // returns its id.
        Ok(sqlx::query_scalar(
            "INSERT INTO campaigns (organisation_id, name, script_id, trunk_id, state, max_attempts, \
             retry_delay_ms, ring_timeout_ms, max_call_ms, amd, created_at) \
             VALUES (?, ?, ?, ?, 'idle', ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, name) DO UPDATE SET name = excluded.name \
             RETURNING id",
        )
        .bind(organisation)
        .bind(name)
        .bind(script)
        .bind(trunk)
        .bind(i64::from(settings.max_attempts))
        .bind(settings.retry_delay_ms)
        .bind(settings.ring_timeout_ms)
        .bind(settings.max_call_ms)
        .bind(i64::from(settings.amd))
        .bind(Utc::now().timestamp_millis())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn campaign_by_name(&self, name: &str) -> StoreResult<Campaign> {
        let row = sqlx::query(campaign_select!("WHERE c.name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "campaign",
                name: name.to_string(),
            })?;
        campaign_from_row(&row)
    }

    async fn campaigns_in_state(&self, state: CampaignState) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(campaign_select!("WHERE c.state = ? ORDER BY c.id"))
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    async fn set_campaign_state(
        &self,
        campaign: Id,
        state: CampaignState,
        now: EpochMs,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let query = match state {
            CampaignState::Running => sqlx::query(
                "UPDATE campaigns SET state = ?, started_at = COALESCE(started_at, ?), \
                 finished_at = NULL WHERE id = ?",
            )
            .bind(state.as_str())
            .bind(now),
            CampaignState::Finished => {
                sqlx::query("UPDATE campaigns SET state = ?, finished_at = ? WHERE id = ?")
                    .bind(state.as_str())
                    .bind(now)
            }
            CampaignState::Idle | CampaignState::Paused => {
                sqlx::query("UPDATE campaigns SET state = ? WHERE id = ?").bind(state.as_str())
            }
        };
        query.bind(campaign).execute(&mut *tx).await?;
        insert_event(
            &mut tx,
            campaign,
            None,
            None,
            "campaign_state",
            &serde_json::json!({ "state": state.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_records(
        &self,
        campaign: Id,
        records: &[ImportedRecord],
        now: EpochMs,
    ) -> StoreResult<InsertSummary> {
        let mut summary = InsertSummary::default();
        let mut tx = self.begin_write().await?;
        for record in records {
            let invalid = record.invalid_number || record.phones.is_empty();
            let state = if invalid { "done" } else { "pending" };
            let final_status = invalid.then_some("invalid_number");
            let inserted = sqlx::query(
                "INSERT INTO records (campaign_id, record_id, client_reference, fields_json, \
                 phones_json, import_line, state, attempts, next_attempt_at, final_status, imported_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) \
                 ON CONFLICT (campaign_id, record_id) DO NOTHING RETURNING id",
            )
            .bind(campaign)
            .bind(&record.record_id)
            .bind(&record.client_reference)
            .bind(json(&record.fields)?)
            .bind(json(&record.phones)?)
            .bind(i64::try_from(record.line).unwrap_or(i64::MAX))
            .bind(state)
            .bind(now)
            .bind(final_status)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = inserted else {
                summary.duplicates += 1;
                continue;
            };
            summary.inserted += 1;
            let record_row: Id = row.try_get(0)?;
            if invalid {
                summary.invalid_number += 1;
                // Reported like a call result, without a call.
                let number = first_phone_field(&record.fields).unwrap_or_default();
                sqlx::query(
                    "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, status, \
                     started_at, ended_at, ring_ms, talk_ms, success_point, dtmf, outputs_json) \
                     VALUES (?, 1, ?, 0, 'ended', 'invalid_number', ?, ?, 0, 0, 0, '', '[]')",
                )
                .bind(record_row)
                .bind(number)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                insert_event(
                    &mut tx,
                    campaign,
                    Some(record_row),
                    None,
                    "record_done",
                    &serde_json::json!({ "record_id": record.record_id, "status": "invalid_number" }),
                    now,
                )
                .await?;
            }
        }
        insert_event(
            &mut tx,
            campaign,
            None,
            None,
            "import",
            &serde_json::json!({
                "inserted": summary.inserted,
                "duplicates": summary.duplicates,
                "invalid_number": summary.invalid_number,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    async fn recover_interrupted(
        &self,
        now: EpochMs,
        next_step: &(dyn Fn(&str, u32, u32) -> NextStep + Sync),
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT a.id, a.record_id, a.attempt_no, a.success_point, a.started_at, r.campaign_id, \
             c.max_attempts FROM attempts a JOIN records r ON r.id = a.record_id \
             JOIN campaigns c ON c.id = r.campaign_id WHERE a.state = 'dialing'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let attempt: Id = row.try_get("id")?;
            let record: Id = row.try_get("record_id")?;
            let campaign: Id = row.try_get("campaign_id")?;
            let attempt_no = to_u32(row.try_get("attempt_no")?);
            let max_attempts = to_u32(row.try_get("max_attempts")?);
            let reached = row.try_get::<i64, _>("success_point")? != 0;
            // A callee who heard the core of the message was reached: the
            // attempt counts as a success even though the call was cut.
            let status = if reached { "success" } else { "interrupted" };
            sqlx::query(
                "UPDATE attempts SET state = 'ended', status = ?, ended_at = ? WHERE id = ?",
            )
            .bind(status)
            .bind(now)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
            let next = next_step(status, attempt_no, max_attempts);
            update_record_after(&mut tx, record, status, next).await?;
            insert_event(
                &mut tx,
                campaign,
                Some(record),
                Some(attempt),
                "attempt_ended",
                &serde_json::json!({ "status": status, "recovered": true }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn claim_next(&self, campaign: Id, now: EpochMs) -> StoreResult<Option<Claim>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE records SET state = 'dialing', attempts = attempts + 1 \
             WHERE id = (SELECT id FROM records WHERE campaign_id = ? AND state = 'pending' \
                         AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1) \
             RETURNING id, record_id, attempts, fields_json, phones_json",
        )
        .bind(campaign)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let record: Id = row.try_get("id")?;
        let record_id: String = row.try_get("record_id")?;
        let attempt_no = to_u32(row.try_get("attempts")?);
        let fields: BTreeMap<String, String> =
            from_json(&row.try_get::<String, _>("fields_json")?, "record fields")?;
        let phones: Vec<String> =
            from_json(&row.try_get::<String, _>("phones_json")?, "record phones")?;
        if phones.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "record {record_id} is pending without a number"
            )));
        }
        // Attempts go round the record's numbers in order.
        let number = phones[(attempt_no.saturating_sub(1) as usize) % phones.len()].clone();
        let attempt_id: Id = sqlx::query_scalar(
            "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, started_at, \
             success_point, dtmf, outputs_json) VALUES (?, ?, ?, 1, 'dialing', ?, 0, '', '[]') \
             RETURNING id",
        )
        .bind(record)
        .bind(i64::from(attempt_no))
        .bind(&number)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            campaign,
            Some(record),
            Some(attempt_id),
            "attempt_started",
            &serde_json::json!({ "record_id": record_id, "attempt_no": attempt_no }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Claim {
            attempt_id,
            record,
            record_id,
            attempt_no,
            number,
            fields,
        }))
    }

    async fn mark_success_point(&self, attempt: Id, at: EpochMs) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let campaign: Option<(Id, Id)> = sqlx::query_as(
            "SELECT r.campaign_id, r.id FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE a.id = ?",
        )
        .bind(attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((campaign, record)) = campaign else {
            return Err(StoreError::NotFound {
                kind: "attempt",
                name: attempt.to_string(),
            });
        };
        sqlx::query("UPDATE attempts SET success_point = 1, success_at = ? WHERE id = ?")
            .bind(at)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            campaign,
            Some(record),
            Some(attempt),
            "success_point",
            &serde_json::json!({}),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_attempt(
        &self,
        claim: &Claim,
        outcome: &AttemptOutcome,
        next: NextStep,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let campaign: Id = sqlx::query_scalar("SELECT campaign_id FROM records WHERE id = ?")
            .bind(claim.record)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE attempts SET state = 'ended', status = ?, sip_code = ?, answered_at = ?, \
             ended_at = ?, ring_ms = ?, talk_ms = ?, amd = ?, dtmf = ?, outputs_json = ?, \
             call_id = ? WHERE id = ?",
        )
        .bind(&outcome.status)
        .bind(outcome.sip_code.map(i64::from))
        .bind(outcome.answered_at)
        .bind(outcome.ended_at)
        .bind(outcome.ring_ms)
        .bind(outcome.talk_ms)
        .bind(&outcome.amd)
        .bind(&outcome.dtmf)
        .bind(json(&outcome.outputs)?)
        .bind(&outcome.call_id)
        .bind(claim.attempt_id)
        .execute(&mut *tx)
        .await?;
        update_record_after(&mut tx, claim.record, &outcome.status, next).await?;
        insert_event(
            &mut tx,
            campaign,
            Some(claim.record),
            Some(claim.attempt_id),
            "attempt_ended",
            &serde_json::json!({
                "record_id": claim.record_id,
                "status": outcome.status,
                "sip_code": outcome.sip_code,
                "final": next == NextStep::Final,
            }),
            outcome.ended_at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_due(&self, campaign: Id) -> StoreResult<Option<EpochMs>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM records WHERE campaign_id = ? AND state = 'pending'",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn campaign_status(&self, campaign: Id) -> StoreResult<CampaignStatus> {
        let (name, state): (String, String) =
            sqlx::query_as("SELECT name, state FROM campaigns WHERE id = ?")
                .bind(campaign)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "campaign",
                    name: campaign.to_string(),
                })?;
        let mut status = CampaignStatus {
            name,
            state,
            ..CampaignStatus::default()
        };
        let by_state: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM records WHERE campaign_id = ? AND state <> 'staged' \
             GROUP BY state",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        for (state, count) in by_state {
            let count = count.max(0) as u64;
            status.records += count;
            match state.as_str() {
                "pending" => status.pending = count,
                "dialing" => status.dialing = count,
                _ => status.done += count,
            }
        }
        let finals: Vec<(String, i64)> = sqlx::query_as(
            "SELECT final_status, COUNT(*) FROM records WHERE campaign_id = ? AND state = 'done' \
             GROUP BY final_status",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        status.statuses = finals
            .into_iter()
            .map(|(s, n)| (s, n.max(0) as u64))
            .collect();
        status.attempts = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE r.campaign_id = ? AND a.dialled = 1",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await?
        .max(0) as u64;
        status.success = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(DISTINCT a.record_id) FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE r.campaign_id = ? AND a.success_point = 1",
        )
        .bind(campaign)
        .fetch_one(&self.pool)
        .await?
        .max(0) as u64;
        Ok(status)
    }

    async fn record_finals(&self, campaign: Id) -> StoreResult<Vec<RecordFinal>> {
        let rows = sqlx::query(
            "SELECT r.record_id, r.state, r.final_status, \
             (SELECT COUNT(*) FROM attempts a WHERE a.record_id = r.id AND a.dialled = 1) AS dialled, \
             (SELECT COUNT(*) FROM attempts a WHERE a.record_id = r.id AND a.success_point = 1) AS reached \
             FROM records r WHERE r.campaign_id = ? AND r.state <> 'staged' ORDER BY r.id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RecordFinal {
                    record_id: row.try_get("record_id")?,
                    state: row.try_get("state")?,
                    final_status: row.try_get("final_status")?,
                    attempts: to_u32(row.try_get("dialled")?),
                    success_point: row.try_get::<i64, _>("reached")? > 0,
                })
            })
            .collect()
    }

    async fn result_rows(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> StoreResult<Vec<ResultRow>> {
        let rows = sqlx::query(
            "SELECT r.id AS rid, r.record_id, r.client_reference, a.number, a.status, a.sip_code, \
             a.started_at, a.ring_ms, a.talk_ms, a.success_point, a.amd, a.dtmf, a.outputs_json \
             FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE r.campaign_id = ? AND a.state = 'ended' AND a.started_at >= ? AND a.started_at < ? \
             ORDER BY r.id, a.attempt_no",
        )
        .bind(campaign)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<ResultRow> = Vec::new();
        let mut last_record: Option<Id> = None;
        for row in &rows {
            let rid: Id = row.try_get("rid")?;
            if last_record != Some(rid) {
                out.push(ResultRow {
                    record_id: row.try_get("record_id")?,
                    client_reference: row.try_get("client_reference")?,
                    calls: Vec::new(),
                    custom: Vec::new(),
                });
                last_record = Some(rid);
            }
            let started: i64 = row.try_get("started_at")?;
            let outputs: Vec<(String, String)> = from_json(
                &row.try_get::<String, _>("outputs_json")?,
                "attempt outputs",
            )?;
            let Some(current) = out.last_mut() else {
                continue;
            };
            current.custom.extend(outputs);
            current.calls.push(CallResult {
                started_at: DateTime::<Utc>::from_timestamp_millis(started).unwrap_or_default(),
                number: row.try_get("number")?,
                direction: Direction::Out,
                status: row
                    .try_get::<Option<String>, _>("status")?
                    .unwrap_or_else(|| "failed".to_string()),
                sip_code: row
                    .try_get::<Option<i64>, _>("sip_code")?
                    .and_then(|c| u16::try_from(c).ok()),
                ring_s: row.try_get::<Option<i64>, _>("ring_ms")?.unwrap_or(0) as f64 / 1000.0,
                talk_s: row.try_get::<Option<i64>, _>("talk_ms")?.unwrap_or(0) as f64 / 1000.0,
                success_point: row.try_get::<i64, _>("success_point")? != 0,
                amd: row.try_get("amd")?,
                voicemail_left: false,
                forwarded: false,
                dtmf: row.try_get("dtmf")?,
                voicelog_id: None,
            });
        }
        Ok(out)
    }
}

/// Moves a record on after an attempt ended with `status`.
async fn update_record_after(
    tx: &mut sqlx::SqliteConnection,
    record: Id,
    status: &str,
    next: NextStep,
) -> StoreResult<()> {
    match next {
        NextStep::Final => {
            sqlx::query("UPDATE records SET state = 'done', final_status = ? WHERE id = ?")
                .bind(status)
                .bind(record)
                .execute(&mut *tx)
                .await?;
        }
        NextStep::RetryAt(at) => {
            sqlx::query(
                "UPDATE records SET state = 'pending', next_attempt_at = ?, final_status = NULL \
                 WHERE id = ?",
            )
            .bind(at)
            .bind(record)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// The number field shown for a record that had none dialable.
fn first_phone_field(fields: &BTreeMap<String, String>) -> Option<String> {
    [
        "CONTACT_PHONE_1",
        "CONTACT_PHONE_2",
        "CONTACT_PHONE_3",
        "CONTACT_MOBILE",
    ]
    .iter()
    .find_map(|f| fields.get(*f).cloned())
}
