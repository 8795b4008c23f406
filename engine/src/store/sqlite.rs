//! The embedded default store: one SQLite file in WAL mode, migrations from
//! `engine/migrations/sqlite` run at open.
//!
//! Durability: WAL with `synchronous = NORMAL` survives a killed process (a
//! committed transaction is in the WAL before `COMMIT` returns); only a power
//! loss may drop the last transactions. Writes take the database lock at
//! `BEGIN IMMEDIATE`, so two processes on one file (a `dialcast import` beside
//! a running `serve`) queue behind `busy_timeout` instead of failing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, SqlitePool};

use super::{
    AttemptOutcome, CallbackClaim, Campaign, CampaignSettings, CampaignState, CampaignStatus,
    Claim, ClaimBatch, ClaimResult, EmailOutcome, EpochMs, Id, InsertSummary, NextStep,
    OrganisationCalendar, OutboxBacklog, PendingEmail, RecordFinal, SmsRequest, Store, StoreError,
    StoreResult, TrunkSettings,
};
use crate::campaign::schedule::{Candidate, Decision, LOOKBACK_MS};
use crate::import::ImportedRecord;
use crate::results::{CallResult, Direction, ResultRow};
use crate::stats::{Counters, ImportTally, StatsEvent};
use crate::store::imports::Services;

/// The condition that a record (`$r`, the alias of `records` in the query)
/// is visible to dialling, statuses, results and the blocklist: it came from
/// no import, or from a finished one. An import stores its records in their
/// final state as it goes (see [`ImportStore::stage_records`]) and
/// publishing only marks it finished, so a million-row import is not
/// rewritten to be published; a failed, cancelled or interrupted one deletes
/// them. The subquery is not correlated: it is read once per statement.
/// Dialling reads due records through [`due_ranges`] instead, which leaves
/// them out without walking over them.
///
/// [`ImportStore::stage_records`]: crate::store::ImportStore::stage_records
macro_rules! visible {
    ($r:literal) => {
        concat!(
            "(",
            $r,
            ".import_id IS NULL OR ",
            $r,
            ".import_id NOT IN (SELECT hidden.id FROM imports hidden \
             WHERE hidden.status <> 'finished'))"
        )
    };
}

pub mod stats;
pub use stats::{add_counters, count_attempt_end, count_event};

mod blocklist;
pub mod emails;
mod imports;
mod notifications;
pub mod portal;
pub mod scripts;
pub mod sms;
mod voicelogs;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections for reads: a few let status reads run beside the writes.
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
///
/// Write transactions all go through one connection of their own
/// (`writer`). SQLite lets one writer in at a time anyway; on one
/// connection a writer never sleeps in the busy handler waiting for
/// another, and the connection keeps its page cache from one transaction
/// to the next (a commit made through another connection makes SQLite drop
/// it and read the pages again). Measured with `dialcast-loadtest
/// campaign`, see loadtest/RESULTS.md.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
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
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
        })
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
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
        })
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<SqliteStore> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool, writer })
    }

    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
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
    let mut calendar: OrganisationCalendar = from_json(
        &row.try_get::<String, _>("calendar_json")?,
        "organisation calendar",
    )?;
    calendar.time_zone = row.try_get("time_zone")?;
    Ok(Campaign {
        id: row.try_get("id")?,
        organisation: row.try_get("organisation_id")?,
        name: row.try_get("name")?,
        state: CampaignState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("campaign state {state:?}")))?,
        calendar,
        paused_at: row.try_get("paused_at")?,
        resumed_at: row.try_get("resumed_at")?,
        forwarding_paused: row.try_get::<i64, _>("forwarding_paused")? != 0,
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
            schedule: from_json(
                &row.try_get::<String, _>("schedule_json")?,
                "campaign schedule",
            )?,
        },
    })
}

/// `SELECT` of a campaign with its script and trunk, then `$tail`.
macro_rules! campaign_select {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.organisation_id, c.name, c.state, c.max_attempts, c.retry_delay_ms, \
             c.ring_timeout_ms, c.max_call_ms, c.amd, c.schedule_json, c.paused_at, c.resumed_at, \
             c.forwarding_paused, o.time_zone, o.calendar_json, \
             s.name AS script_name, s.file_name, s.source, \
             t.name AS trunk_name, t.uri, t.transport, t.max_cps, t.max_channels, t.caller_id \
             FROM campaigns c JOIN organisations o ON o.id = c.organisation_id \
             JOIN scripts s ON s.id = c.script_id JOIN trunks t ON t.id = c.trunk_id",
            " ",
            $tail
        )
    };
}

// After `campaign_select!`, which it uses.
pub mod organisation;

/// The inclusive ranges of `next_attempt_at`, up to `until`, in which the
/// campaign's due records are read. The records of an import in progress
/// wait, pending, at exactly its start (`imports.started_at`, the stamp
/// [`ImportStore::stage_records`] gives them): dialling reads around those
/// instants, so it neither sees them nor walks over them (with a million of
/// them ahead of the due records, every claim would be a scan). A visible
/// record due at the very millisecond an import started waits until that
/// import is settled (seconds).
///
/// [`ImportStore::stage_records`]: crate::store::ImportStore::stage_records
async fn due_ranges(
    conn: &mut sqlx::SqliteConnection,
    campaign: Id,
    until: EpochMs,
) -> StoreResult<Vec<(EpochMs, EpochMs)>> {
    let stamps: Vec<EpochMs> = sqlx::query_scalar(
        "SELECT DISTINCT started_at FROM imports WHERE campaign_id = ? AND status = 'importing' \
         AND started_at IS NOT NULL ORDER BY started_at",
    )
    .bind(campaign)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ranges_around(&stamps, until))
}

/// Inclusive ranges covering `[EpochMs::MIN, until]` except the instants
/// `stamps` (ascending).
fn ranges_around(stamps: &[EpochMs], until: EpochMs) -> Vec<(EpochMs, EpochMs)> {
    let mut ranges = Vec::with_capacity(stamps.len() + 1);
    let mut lo = EpochMs::MIN;
    for &stamp in stamps {
        if stamp > until {
            break;
        }
        if stamp > lo {
            ranges.push((lo, stamp - 1));
        }
        if stamp == EpochMs::MAX {
            return ranges;
        }
        lo = lo.max(stamp + 1);
    }
    if lo <= until {
        ranges.push((lo, until));
    }
    ranges
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

    async fn organisation_names(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM organisations ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
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
        // An existing campaign keeps its attempt settings; its schedule
        // (windows, limits, rate, priority) follows the latest setup.
        Ok(sqlx::query_scalar(
            "INSERT INTO campaigns (organisation_id, name, script_id, trunk_id, state, max_attempts, \
             retry_delay_ms, ring_timeout_ms, max_call_ms, amd, schedule_json, created_at) \
             VALUES (?, ?, ?, ?, 'idle', ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (organisation_id, name) DO UPDATE SET schedule_json = excluded.schedule_json \
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
        .bind(json(&settings.schedule)?)
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
            // A resume is a move to running from paused.
            CampaignState::Running => sqlx::query(
                "UPDATE campaigns SET started_at = COALESCE(started_at, ?), finished_at = NULL, \
                 resumed_at = CASE WHEN state = 'paused' THEN ? ELSE resumed_at END, \
                 state = ? WHERE id = ?",
            )
            .bind(now)
            .bind(now)
            .bind(state.as_str()),
            CampaignState::Finished => {
                sqlx::query("UPDATE campaigns SET state = ?, finished_at = ? WHERE id = ?")
                    .bind(state.as_str())
                    .bind(now)
            }
            CampaignState::Paused => {
                sqlx::query("UPDATE campaigns SET state = ?, paused_at = ? WHERE id = ?")
                    .bind(state.as_str())
                    .bind(now)
            }
            CampaignState::Idle => {
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
        let mut tally = ImportTally::default();
        let mut tx = self.begin_write().await?;
        for record in records {
            let invalid = record.invalid_number || record.phones.is_empty();
            let state = if invalid { "done" } else { "pending" };
            let final_status = invalid.then_some("invalid_number");
            let inserted = sqlx::query(
                "INSERT INTO records (campaign_id, record_id, client_reference, fields_json, \
                 phones_json, import_line, state, attempts, next_attempt_at, final_status, imported_at, \
                 email_pending) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) \
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
            .bind(i64::from(Services::of(&record.fields).email))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = inserted else {
                summary.duplicates += 1;
                continue;
            };
            summary.inserted += 1;
            tally.record(&record.fields);
            let record_row: Id = row.try_get(0)?;
            if invalid {
                summary.invalid_number += 1;
                tally.undialled("invalid_number");
                // Reported like a call result, without a call.
                let number = first_phone_field(&record.fields).unwrap_or_default();
                insert_undialled_attempt(&mut tx, record_row, 1, &number, "invalid_number", now)
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
        stats::count_import(&mut tx, campaign, now, &tally).await?;
        tx.commit().await?;
        stats::committed(self, campaign, tally.counters()).await;
        Ok(summary)
    }

    async fn recover_interrupted(
        &self,
        now: EpochMs,
        next_step: &(dyn Fn(&str, u32, u32) -> NextStep + Sync),
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT a.id, a.record_id, a.direction, a.success_point, a.started_at, r.campaign_id, \
             c.max_attempts, (SELECT COUNT(*) FROM attempts d WHERE d.record_id = a.record_id \
             AND d.dialled = 1) AS dialled_no FROM attempts a JOIN records r ON r.id = a.record_id \
             JOIN campaigns c ON c.id = r.campaign_id WHERE a.state = 'dialing'",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut counted: Vec<(Id, Counters)> = Vec::new();
        for row in &rows {
            let attempt: Id = row.try_get("id")?;
            let record: Id = row.try_get("record_id")?;
            let campaign: Id = row.try_get("campaign_id")?;
            let attempt_no = to_u32(row.try_get("dialled_no")?);
            let max_attempts = to_u32(row.try_get("max_attempts")?);
            let inbound = row.try_get::<String, _>("direction")? == "in";
            let reached = row.try_get::<i64, _>("success_point")? != 0;
            // A callee who heard the core of the message was reached: the
            // attempt counts as a success even though the call was cut.
            let status = if reached { "success" } else { "interrupted" };
            let next = next_step(status, attempt_no, max_attempts);
            // A callback is counted as one, not as an attempt.
            if !inbound {
                let done = next == NextStep::Final;
                counted
                    .extend(count_attempt_end(&mut tx, attempt, status, false, done, now).await?);
            }
            sqlx::query(
                "UPDATE attempts SET state = 'ended', status = ?, ended_at = ? WHERE id = ?",
            )
            .bind(status)
            .bind(now)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
            // A cut-off callback leaves its record as it was.
            if !inbound {
                update_record_after(&mut tx, record, status, next).await?;
            }
            insert_event(
                &mut tx,
                campaign,
                Some(record),
                Some(attempt),
                "attempt_ended",
                &serde_json::json!({ "status": status, "recovered": true, "inbound": inbound }),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        for (campaign, counters) in &counted {
            stats::committed(self, *campaign, counters).await;
        }
        Ok(rows.len() as u64)
    }

    async fn claim_next(
        &self,
        campaign: Id,
        now: EpochMs,
        decide: &(dyn Fn(&Candidate<'_>) -> Decision + Sync),
    ) -> StoreResult<ClaimResult> {
        Ok(match self.claim_batch(campaign, now, 1, decide).await? {
            ClaimBatch::Claimed(claims) => match claims.into_iter().next() {
                Some(claim) => ClaimResult::Claimed(claim),
                None => ClaimResult::NothingDue,
            },
            ClaimBatch::NothingDue => ClaimResult::NothingDue,
            ClaimBatch::NotRunning => ClaimResult::NotRunning,
        })
    }

    async fn claim_batch(
        &self,
        campaign: Id,
        now: EpochMs,
        max: usize,
        decide: &(dyn Fn(&Candidate<'_>) -> Decision + Sync),
    ) -> StoreResult<ClaimBatch> {
        let max = max.max(1);
        let mut tx = self.begin_write().await?;
        // Checked inside the write transaction: once a pause has committed,
        // no attempt of this campaign starts.
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM campaigns WHERE id = ?")
            .bind(campaign)
            .fetch_optional(&mut *tx)
            .await?;
        if state.as_deref() != Some(CampaignState::Running.as_str()) {
            tx.rollback().await?;
            return Ok(ClaimBatch::NotRunning);
        }
        // Most claims dial the first due records, so read as many as are
        // wanted first and more only when some were deferred or finished
        // (those leave the due set inside this transaction, so the next read
        // starts after them).
        let ranges = due_ranges(&mut tx, campaign, now).await?;
        let wanted = i64::try_from(max).unwrap_or(i64::MAX);
        let scan_limit = CLAIM_SCAN.saturating_add(wanted);
        let mut scanned: i64 = 0;
        let mut claims: Vec<Claim> = Vec::with_capacity(max);
        // Records `decide` lets dial, started in bulk after each read.
        let mut dials: Vec<Dialling> = Vec::new();
        // Records finished undialled by this claim, for the metrics once
        // it commits.
        let mut finished = Counters::default();
        while scanned < scan_limit && claims.len() < max {
            let want = if scanned == 0 {
                wanted
            } else {
                scan_limit - scanned
            };
            let due = due_records(&mut tx, campaign, &ranges, want).await?;
            if due.is_empty() {
                break;
            }
            scanned += due.len() as i64;
            for row in due {
                let record: Id = row.try_get("id")?;
                let record_id: String = row.try_get("record_id")?;
                let attempts_so_far = to_u32(row.try_get("attempts")?);
                let fields: BTreeMap<String, String> =
                    from_json(&row.try_get::<String, _>("fields_json")?, "record fields")?;
                let phones: Vec<String> =
                    from_json(&row.try_get::<String, _>("phones_json")?, "record phones")?;
                // One list gives both the count and the recent starts: a record
                // has a handful of attempts.
                let mut recent: Vec<EpochMs> =
                    from_json(&row.try_get::<String, _>("starts_json")?, "attempt starts")?;
                recent.sort_unstable();
                let dialled = recent.len();
                let since = now.saturating_sub(LOOKBACK_MS);
                recent.retain(|started| *started > since);
                let blocked: std::collections::BTreeSet<String> = from_json(
                    &row.try_get::<String, _>("blocked_json")?,
                    "blocked numbers",
                )?;
                let candidate = Candidate {
                    fields: &fields,
                    phones: &phones,
                    dialled: u32::try_from(dialled).unwrap_or(u32::MAX),
                    recent_starts: &recent,
                    blocked: &blocked,
                };
                let attempt_no = attempts_so_far + 1;
                match decide(&candidate) {
                    Decision::Defer { until, .. } => {
                        sqlx::query("UPDATE records SET next_attempt_at = ? WHERE id = ?")
                            .bind(until.max(now + 1))
                            .bind(record)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Decision::Finish { status } => {
                        sqlx::query(
                            "UPDATE records SET state = 'done', final_status = ?, attempts = ? \
                         WHERE id = ?",
                        )
                        .bind(status)
                        .bind(i64::from(attempt_no))
                        .bind(record)
                        .execute(&mut *tx)
                        .await?;
                        let number = phones.first().cloned().unwrap_or_default();
                        insert_undialled_attempt(&mut tx, record, attempt_no, &number, status, now)
                            .await?;
                        let mut counters = Counters::attempts_ended(status, false, false, 1);
                        counters.records_done = 1;
                        add_counters(&mut tx, campaign, now, &counters, now).await?;
                        finished.merge(&counters);
                        insert_event(
                            &mut tx,
                            campaign,
                            Some(record),
                            None,
                            "record_done",
                            &serde_json::json!({ "record_id": record_id, "status": status }),
                            now,
                        )
                        .await?;
                    }
                    Decision::Dial { number } => {
                        dials.push(Dialling {
                            record,
                            record_id,
                            attempt_no,
                            dialled_no: u32::try_from(dialled + 1).unwrap_or(u32::MAX),
                            number,
                            fields,
                        });
                        if claims.len() + dials.len() == max {
                            break;
                        }
                    }
                }
            }
            // Before the next read: the chosen records leave the due set.
            claims
                .extend(start_attempts(&mut tx, campaign, std::mem::take(&mut dials), now).await?);
            if claims.len() == max {
                break;
            }
        }
        tx.commit().await?;
        if finished.attempts > 0 {
            stats::committed(self, campaign, &finished).await;
        }
        Ok(if claims.is_empty() {
            ClaimBatch::NothingDue
        } else {
            ClaimBatch::Claimed(claims)
        })
    }

    async fn set_organisation_calendar(
        &self,
        organisation: Id,
        calendar: &OrganisationCalendar,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE organisations SET time_zone = ?, calendar_json = ? WHERE id = ?")
            .bind(&calendar.time_zone)
            .bind(json(calendar)?)
            .bind(organisation)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn set_forwarding_paused(
        &self,
        campaign: Id,
        paused: bool,
        now: EpochMs,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE campaigns SET forwarding_paused = ? WHERE id = ?")
            .bind(i64::from(paused))
            .bind(campaign)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            campaign,
            None,
            None,
            "forwarding",
            &serde_json::json!({ "paused": paused }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_due_before(&self, campaign: Id, until: EpochMs) -> StoreResult<u64> {
        // One read transaction: the imports and the records of one moment.
        let mut tx = self.pool.begin().await?;
        let mut count = 0;
        for (from, to) in due_ranges(&mut tx, campaign, until.saturating_sub(1)).await? {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM records WHERE campaign_id = ? AND state = 'pending' \
                 AND next_attempt_at BETWEEN ? AND ?",
            )
            .bind(campaign)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *tx)
            .await?;
            count += u64::try_from(n).unwrap_or(0);
        }
        tx.rollback().await?;
        Ok(count)
    }

    async fn claim_callback(
        &self,
        organisation: Id,
        number: &str,
        since: EpochMs,
        now: EpochMs,
    ) -> StoreResult<Option<CallbackClaim>> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query(
            "SELECT r.id, r.record_id, r.attempts, r.fields_json, r.campaign_id FROM attempts a \
             JOIN records r ON r.id = a.record_id JOIN campaigns c ON c.id = r.campaign_id \
             WHERE a.number = ? AND a.direction = 'out' AND a.dialled = 1 AND a.started_at >= ? \
             AND c.organisation_id = ? ORDER BY a.started_at DESC, a.id DESC LIMIT 1",
        )
        .bind(number)
        .bind(since)
        .bind(organisation)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = found else {
            tx.rollback().await?;
            return Ok(None);
        };
        let record: Id = row.try_get("id")?;
        let record_id: String = row.try_get("record_id")?;
        let campaign_id: Id = row.try_get("campaign_id")?;
        let row_no = to_u32(row.try_get("attempts")?) + 1;
        let fields: BTreeMap<String, String> =
            from_json(&row.try_get::<String, _>("fields_json")?, "record fields")?;
        sqlx::query("UPDATE records SET attempts = ? WHERE id = ?")
            .bind(i64::from(row_no))
            .bind(record)
            .execute(&mut *tx)
            .await?;
        let attempt_id: Id = sqlx::query_scalar(
            "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, started_at, \
             success_point, dtmf, outputs_json, direction) \
             VALUES (?, ?, ?, 0, 'dialing', ?, 0, '', '[]', 'in') RETURNING id",
        )
        .bind(record)
        .bind(i64::from(row_no))
        .bind(number)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        count_event(&mut tx, campaign_id, now, StatsEvent::InboundMatched).await?;
        insert_event(
            &mut tx,
            campaign_id,
            Some(record),
            Some(attempt_id),
            "callback_started",
            &serde_json::json!({ "record_id": record_id }),
            now,
        )
        .await?;
        let campaign_row = sqlx::query(campaign_select!("WHERE c.id = ?"))
            .bind(campaign_id)
            .fetch_one(&mut *tx)
            .await?;
        let campaign = campaign_from_row(&campaign_row)?;
        tx.commit().await?;
        Ok(Some(CallbackClaim {
            campaign,
            claim: Claim {
                attempt_id,
                record,
                record_id,
                attempt_no: 0,
                number: number.to_string(),
                fields,
            },
        }))
    }

    async fn finish_callback(
        &self,
        callback: &CallbackClaim,
        outcome: &AttemptOutcome,
    ) -> StoreResult<()> {
        let claim = &callback.claim;
        let mut tx = self.begin_write().await?;
        end_attempt(&mut tx, claim.attempt_id, outcome).await?;
        if let Some(answered) = outcome.answered_at {
            count_event(
                &mut tx,
                callback.campaign.id,
                answered,
                StatsEvent::CalledBack,
            )
            .await?;
        }
        let reached = outcome.status == "success";
        if reached {
            // The person heard the message: no more calls. A call in flight
            // (state dialing) settles the record itself when it ends.
            sqlx::query(
                "UPDATE records SET state = 'done', final_status = 'success' \
                 WHERE id = ? AND state <> 'dialing'",
            )
            .bind(claim.record)
            .execute(&mut *tx)
            .await?;
        }
        insert_event(
            &mut tx,
            callback.campaign.id,
            Some(claim.record),
            Some(claim.attempt_id),
            "callback_ended",
            &serde_json::json!({
                "record_id": claim.record_id,
                "status": outcome.status,
                "record_done": reached,
            }),
            outcome.ended_at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_success_point(&self, attempt: Id, at: EpochMs) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // The event names its campaign and record, read in the same
        // statement; no row means no such attempt.
        let logged = sqlx::query(
            "INSERT INTO events (campaign_id, record_id, attempt_id, kind, payload_json, \
             created_at) \
             SELECT r.campaign_id, r.id, a.id, 'success_point', '{}', ? \
             FROM attempts a JOIN records r ON r.id = a.record_id WHERE a.id = ?",
        )
        .bind(at)
        .bind(attempt)
        .execute(&mut *tx)
        .await?;
        if logged.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "attempt",
                name: attempt.to_string(),
            });
        }
        sqlx::query("UPDATE attempts SET success_point = 1, success_at = ? WHERE id = ?")
            .bind(at)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sms_outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        // Both on the sms_outbox_state index (state, id): ids grow with
        // time, so the lowest queued id is the oldest queued message.
        let depth: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sms_outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await?;
        let oldest_at: Option<EpochMs> = sqlx::query_scalar(
            "SELECT created_at FROM sms_outbox WHERE state = 'queued' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(OutboxBacklog {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_at,
        })
    }

    async fn queue_sms(&self, sms: &SmsRequest, at: EpochMs) -> StoreResult<Id> {
        let mut tx = self.begin_write().await?;
        let owner: Option<(Id, Id)> = sqlx::query_as(
            "SELECT r.campaign_id, r.id FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE a.id = ?",
        )
        .bind(sms.attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((campaign, record)) = owner else {
            return Err(StoreError::NotFound {
                kind: "attempt",
                name: sms.attempt.to_string(),
            });
        };
        let (state, body, error) = match &sms.body {
            Ok(body) => ("queued", Some(body.as_str()), None),
            Err(reason) => ("failed", None, Some(reason.as_str())),
        };
        let id: Id = sqlx::query_scalar(
            "INSERT INTO sms_outbox (campaign_id, record_id, attempt_id, number, template, \
             language, state, body, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(campaign)
        .bind(record)
        .bind(sms.attempt)
        .bind(&sms.number)
        .bind(&sms.template)
        .bind(&sms.language)
        .bind(state)
        .bind(body)
        .bind(error)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let (kind, payload) = match error {
            None => (
                "sms_queued",
                serde_json::json!({ "sms_id": id, "template": sms.template }),
            ),
            Some(reason) => (
                "sms_failed",
                serde_json::json!({ "sms_id": id, "template": sms.template, "reason": reason }),
            ),
        };
        insert_event(
            &mut tx,
            campaign,
            Some(record),
            Some(sms.attempt),
            kind,
            &payload,
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn pending_emails(&self, campaign: Id, limit: usize) -> StoreResult<Vec<PendingEmail>> {
        emails::pending(self, campaign, limit).await
    }

    async fn queue_emails(
        &self,
        campaign: Id,
        items: &[(Id, EmailOutcome)],
        at: EpochMs,
    ) -> StoreResult<Vec<Id>> {
        emails::queue(self, campaign, items, at).await
    }

    async fn email_outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        emails::backlog(self).await
    }

    async fn finish_attempt(
        &self,
        claim: &Claim,
        outcome: &AttemptOutcome,
        next: NextStep,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let done = next == NextStep::Final;
        let (status, at) = (&outcome.status, outcome.ended_at);
        let left = outcome.voicemail_left;
        let Some((campaign, counted)) =
            count_attempt_end(&mut tx, claim.attempt_id, status, left, done, at).await?
        else {
            // Ended already (a retried commit that had gone through): the
            // record may have moved on since, so nothing is applied twice.
            tx.rollback().await?;
            return Ok(());
        };
        end_attempt(&mut tx, claim.attempt_id, outcome).await?;
        update_record_after(&mut tx, claim.record, &outcome.status, next).await?;
        if outcome.forwarded.is_some() {
            let at = outcome.answered_at.unwrap_or(outcome.ended_at);
            count_event(&mut tx, campaign, at, StatsEvent::Forwarded).await?;
        }
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
                "voicemail_left": outcome.voicemail_left,
                "forwarded": outcome.forwarded,
            }),
            outcome.ended_at,
        )
        .await?;
        tx.commit().await?;
        stats::committed(self, campaign, &counted).await;
        Ok(())
    }

    async fn next_due(&self, campaign: Id) -> StoreResult<Option<EpochMs>> {
        // One read transaction: the imports and the records of one moment.
        let mut tx = self.pool.begin().await?;
        let mut next = None;
        for (from, to) in due_ranges(&mut tx, campaign, EpochMs::MAX).await? {
            next = sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM records WHERE campaign_id = ? \
                 AND state = 'pending' AND next_attempt_at BETWEEN ? AND ?",
            )
            .bind(campaign)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *tx)
            .await?;
            if next.is_some() {
                break;
            }
        }
        tx.rollback().await?;
        Ok(next)
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
        let by_state: Vec<(String, i64)> = sqlx::query_as(concat!(
            "SELECT r.state, COUNT(*) FROM records r WHERE r.campaign_id = ? AND ",
            visible!("r"),
            " GROUP BY r.state"
        ))
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
        let finals: Vec<(String, i64)> = sqlx::query_as(concat!(
            "SELECT r.final_status, COUNT(*) FROM records r WHERE r.campaign_id = ? \
                 AND r.state = 'done' AND ",
            visible!("r"),
            " GROUP BY r.final_status"
        ))
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
        let rows = sqlx::query(concat!(
            "SELECT r.record_id, r.state, r.final_status, \
             (SELECT COUNT(*) FROM attempts a WHERE a.record_id = r.id AND a.dialled = 1) AS dialled, \
             (SELECT COUNT(*) FROM attempts a WHERE a.record_id = r.id AND a.success_point = 1) AS reached \
             FROM records r WHERE r.campaign_id = ? AND ",
            visible!("r"),
            " ORDER BY r.id"
        ))
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
            "SELECT r.id AS rid, r.record_id, r.client_reference, a.number, a.direction, a.status, \
             a.sip_code, a.started_at, a.ring_ms, a.talk_ms, a.success_point, a.amd, a.dtmf, a.outputs_json, \
             a.voicemail_left, a.forwarded, \
             (SELECT MIN(v.id) FROM voicelogs v WHERE v.attempt_id = a.id) AS voicelog \
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
                direction: if row.try_get::<String, _>("direction")? == "in" {
                    Direction::In
                } else {
                    Direction::Out
                },
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
                voicemail_left: row.try_get::<i64, _>("voicemail_left")? != 0,
                forwarded: row.try_get::<i64, _>("forwarded")? != 0,
                dtmf: row.try_get("dtmf")?,
                voicelog_id: row
                    .try_get::<Option<i64>, _>("voicelog")?
                    .map(|id| id.to_string()),
            });
        }
        Ok(out)
    }
}

/// Writes how an attempt ended.
async fn end_attempt(
    tx: &mut sqlx::SqliteConnection,
    attempt: Id,
    outcome: &AttemptOutcome,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE attempts SET state = 'ended', status = ?, sip_code = ?, answered_at = ?, \
         ended_at = ?, ring_ms = ?, talk_ms = ?, amd = ?, dtmf = ?, outputs_json = ?, \
         call_id = ?, voicemail_left = ?, forwarded = ? WHERE id = ?",
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
    .bind(i64::from(outcome.voicemail_left))
    .bind(i64::from(outcome.forwarded.is_some()))
    .bind(attempt)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Up to `limit` due records of the campaign, earliest first, inside the
/// `ranges` [`due_ranges`] gave.
async fn due_records(
    conn: &mut sqlx::SqliteConnection,
    campaign: Id,
    ranges: &[(EpochMs, EpochMs)],
    limit: i64,
) -> StoreResult<Vec<sqlx::sqlite::SqliteRow>> {
    let mut due = Vec::new();
    for &(from, to) in ranges {
        let left = limit - due.len() as i64;
        if left <= 0 {
            break;
        }
        due.extend(
            sqlx::query(
                // With each record, what the rules read beside its fields:
                // the starts of its dialled attempts, oldest first, and which
                // of its numbers the organisation has blocked (checked at
                // every claim, so a number blocked after its record was
                // imported, or while an import ran, is never dialled).
                "SELECT r.id, r.record_id, r.attempts, r.fields_json, r.phones_json, \
                 (SELECT json_group_array(s.started_at) FROM \
                   (SELECT a.started_at FROM attempts a \
                    WHERE a.record_id = r.id AND a.dialled = 1 ORDER BY a.started_at) s) \
                   AS starts_json, \
                 (SELECT json_group_array(b.number) FROM blocklist b \
                   WHERE b.organisation_id = \
                     (SELECT c.organisation_id FROM campaigns c WHERE c.id = r.campaign_id) \
                   AND b.number IN (SELECT p.value FROM json_each(r.phones_json) p)) \
                   AS blocked_json \
                 FROM records r \
                 WHERE r.campaign_id = ? AND r.state = 'pending' \
                 AND r.next_attempt_at BETWEEN ? AND ? \
                 ORDER BY r.next_attempt_at, r.id LIMIT ?",
            )
            .bind(campaign)
            .bind(from)
            .bind(to)
            .bind(left)
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    Ok(due)
}

/// Due records [`Store::claim_next`] looks at in one transaction; those it
/// defers get a later time, so the next call sees others.
const CLAIM_SCAN: i64 = 32;

/// A due record a claim will dial.
struct Dialling {
    record: Id,
    record_id: String,
    /// The attempt's number among all of the record's (dialled or not).
    attempt_no: u32,
    /// Its number among the dialled ones (what retries count).
    dialled_no: u32,
    number: String,
    fields: BTreeMap<String, String>,
}

/// Commits the dialing attempts of `dials` (records, attempts and their
/// `attempt_started` events) in three statements however many there are:
/// a claim of a few dozen records holds the writer for three round trips to
/// SQLite's thread, not a hundred.
async fn start_attempts(
    tx: &mut sqlx::SqliteConnection,
    campaign: Id,
    dials: Vec<Dialling>,
    now: EpochMs,
) -> StoreResult<Vec<Claim>> {
    if dials.is_empty() {
        return Ok(Vec::new());
    }
    // `attempts` was read in this transaction: one more is `attempt_no`.
    let mut update = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "UPDATE records SET state = 'dialing', attempts = attempts + 1 WHERE id IN (",
    );
    let mut ids = update.separated(", ");
    for dial in &dials {
        ids.push_bind(dial.record);
    }
    update.push(")");
    update.build().execute(&mut *tx).await?;

    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, started_at, \
         success_point, dtmf, outputs_json) ",
    );
    insert.push_values(&dials, |mut row, dial| {
        row.push_bind(dial.record)
            .push_bind(i64::from(dial.attempt_no))
            .push_bind(&dial.number)
            .push_bind(1_i64)
            .push_bind("dialing")
            .push_bind(now)
            .push_bind(0_i64)
            .push_bind("")
            .push_bind("[]");
    });
    // The order RETURNING gives is not promised: match by record.
    insert.push(" RETURNING id, record_id");
    let started: HashMap<Id, Id> = insert
        .build_query_as::<(Id, Id)>()
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(attempt, record)| (record, attempt))
        .collect();

    let mut claims = Vec::with_capacity(dials.len());
    let mut payloads = Vec::with_capacity(dials.len());
    for dial in dials {
        payloads.push(json(&serde_json::json!({
            "record_id": dial.record_id,
            "attempt_no": dial.attempt_no,
        }))?);
        let attempt_id = *started.get(&dial.record).ok_or_else(|| {
            StoreError::Corrupt(format!("no attempt started for record {}", dial.record))
        })?;
        claims.push(Claim {
            attempt_id,
            record: dial.record,
            record_id: dial.record_id,
            attempt_no: dial.dialled_no,
            number: dial.number,
            fields: dial.fields,
        });
    }
    let mut events = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO events (campaign_id, record_id, attempt_id, kind, payload_json, created_at) ",
    );
    events.push_values(claims.iter().zip(&payloads), |mut row, (claim, payload)| {
        row.push_bind(campaign)
            .push_bind(claim.record)
            .push_bind(claim.attempt_id)
            .push_bind("attempt_started")
            .push_bind(payload)
            .push_bind(now);
    });
    events.build().execute(&mut *tx).await?;
    Ok(claims)
}

/// An attempt that reports a status without a call (a number that is
/// invalid or blocked), so results and statistics show the record.
async fn insert_undialled_attempt(
    tx: &mut sqlx::SqliteConnection,
    record: Id,
    attempt_no: u32,
    number: &str,
    status: &str,
    now: EpochMs,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, status, \
         started_at, ended_at, ring_ms, talk_ms, success_point, dtmf, outputs_json) \
         VALUES (?, ?, ?, 0, 'ended', ?, ?, ?, 0, 0, 0, '', '[]')",
    )
    .bind(record)
    .bind(i64::from(attempt_no))
    .bind(number)
    .bind(status)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::ranges_around;

    #[test]
    fn due_ranges_leave_out_the_instants_of_imports_in_progress() {
        let all = (i64::MIN, 100);
        assert_eq!(ranges_around(&[], 100), [all]);
        assert_eq!(
            ranges_around(&[10, 20], 100),
            [(i64::MIN, 9), (11, 19), (21, 100)]
        );
        // Adjacent and repeated instants leave no empty range.
        assert_eq!(
            ranges_around(&[10, 11, 11], 100),
            [(i64::MIN, 9), (12, 100)]
        );
        // Instants after `until` do not matter; one at `until` ends it.
        assert_eq!(ranges_around(&[100, 200], 100), [(i64::MIN, 99)]);
        assert_eq!(ranges_around(&[200], 100), [all]);
        assert_eq!(
            ranges_around(&[i64::MIN, i64::MAX], i64::MAX),
            [(i64::MIN + 1, i64::MAX - 1)]
        );
    }
}
