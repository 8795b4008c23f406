//! [`ImportStore`] on SQLite: the `imports` table and the records of an
//! import.
//!
//! An import's records are written in their final state (`pending`, or
//! `done` with an undialled attempt in state `staged`) with multi-row
//! `INSERT`s of [`ROWS_PER_INSERT`] rows (one prepared statement per size,
//! cached by sqlx), each batch in one write transaction, so a `serve` beside
//! the import waits at most one batch for the write lock. Until the import
//! is `finished` every reader treats them as absent (`visible!` and
//! `due_ranges` in the parent module); publishing marks it finished, ends
//! the undialled attempts and counts the statistics, without touching the
//! records themselves.

use std::collections::HashSet;

use sqlx::{AssertSqlSafe, Row as _};

use super::{add_counters, insert_event, SqliteStore};
use crate::stats::Counters;
use crate::store::imports::{
    ExpiredFile, ImportInfo, ImportStatus, ImportStore, NewImport, PassCounts, Services,
    StageSummary, StagedOutcome, StagedRecord,
};
use crate::store::{EpochMs, Id, StoreError, StoreResult};

/// Rows per `INSERT` statement: 8 parameters each, well below SQLite's
/// limit of 32,766 parameters per statement.
const ROWS_PER_INSERT: usize = 500;
/// Record ids per lookup of existing ones.
const IDS_PER_LOOKUP: usize = 500;

/// `INSERT` of `rows` records of an import (record ids the campaign has are
/// skipped), stamped with the import's start. The import's integers are
/// written into the statement (they are ours, not outside input), leaving
/// eight parameters per row to bind. `email_pending` is set in the same
/// statement for records that get an e-mail (`SERVICES_EMAIL=Y`): they are
/// owed it once the import is published, at no extra statement per row.
fn insert_records_sql(rows: usize, campaign: Id, import: Id, stamp: EpochMs) -> String {
    let mut sql = String::with_capacity(320 + rows * 84);
    sql.push_str(
        "INSERT INTO records (campaign_id, import_id, record_id, client_reference, fields_json, \
         phones_json, import_line, state, attempts, next_attempt_at, final_status, imported_at, \
         email_pending) VALUES ",
    );
    let row = format!("({campaign}, {import}, ?, ?, ?, ?, ?, ?, 0, {stamp}, ?, {stamp}, ?)");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    sql.push_str(" ON CONFLICT (campaign_id, record_id) DO NOTHING");
    sql
}

fn wrong_state(import: Id, status: &str, expected: &'static str) -> StoreError {
    StoreError::WrongState {
        kind: "import",
        id: import,
        state: status.to_owned(),
        expected,
    }
}

/// The import's status, or `NotFound`.
async fn status_of(conn: &mut sqlx::SqliteConnection, import: Id) -> StoreResult<String> {
    sqlx::query_scalar("SELECT status FROM imports WHERE id = ?")
        .bind(import)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "import",
            name: import.to_string(),
        })
}

/// The import's campaign if its status is one of `allowed`, else an error
/// naming the status it is in.
async fn campaign_if(
    conn: &mut sqlx::SqliteConnection,
    import: Id,
    allowed: &[ImportStatus],
    expected: &'static str,
) -> StoreResult<Id> {
    let row: Option<(Id, String)> =
        sqlx::query_as("SELECT campaign_id, status FROM imports WHERE id = ?")
            .bind(import)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((campaign, status)) = row else {
        return Err(StoreError::NotFound {
            kind: "import",
            name: import.to_string(),
        });
    };
    if allowed.iter().any(|s| s.as_str() == status) {
        Ok(campaign)
    } else {
        Err(wrong_state(import, &status, expected))
    }
}

/// Which of `ids` are records of this import (the others were already in
/// the campaign).
async fn staged_ids(
    conn: &mut sqlx::SqliteConnection,
    import: Id,
    campaign: Id,
    ids: &[(u64, String)],
) -> StoreResult<HashSet<String>> {
    let mut sql = String::from(
        "SELECT record_id FROM records WHERE campaign_id = ? AND import_id = ? AND record_id IN (",
    );
    for i in 0..ids.len() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql))
        .bind(campaign)
        .bind(import);
    for (_, id) in ids {
        query = query.bind(id.clone());
    }
    Ok(query.fetch_all(&mut *conn).await?.into_iter().collect())
}

/// Counts what a publish adds to the 5-minute statistics, in its
/// transaction: the records per service and the undialled reports, as the
/// staging transactions counted them. Returns the records and what was
/// counted (for `stats::committed` once the publish commits).
async fn count_published(
    tx: &mut sqlx::SqliteConnection,
    campaign: Id,
    import: Id,
    now: EpochMs,
) -> StoreResult<(u64, Counters)> {
    let (records, voice, sms, email, invalid, blocked): (i64, i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT staged_records, staged_voice, staged_sms, staged_email, staged_invalid, \
             staged_blocked FROM imports WHERE id = ?",
        )
        .bind(import)
        .fetch_one(&mut *tx)
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut counters = Counters::default();
    counters.add("records_imported", count(records));
    counters.add("imported.voice", count(voice));
    counters.add("imported.sms", count(sms));
    counters.add("imported.email", count(email));
    for (status, n) in [("invalid_number", invalid), ("blocked", blocked)] {
        if n > 0 {
            counters.merge(&Counters::attempts_ended(status, false, false, count(n)));
            counters.records_done += count(n);
        }
    }
    add_counters(tx, campaign, now, &counters, now).await?;
    Ok((count(records), counters))
}

/// What one staging statement stored, for the statistics.
#[derive(Default)]
struct StagedCounts {
    records: i64,
    voice: i64,
    sms: i64,
    email: i64,
    invalid: i64,
    blocked: i64,
}

impl StagedCounts {
    fn add(&mut self, services: Services, status: Option<&str>) {
        self.records += 1;
        self.voice += i64::from(services.voice);
        self.sms += i64::from(services.sms);
        self.email += i64::from(services.email);
        match status {
            Some("invalid_number") => self.invalid += 1,
            Some("blocked") => self.blocked += 1,
            _ => {}
        }
    }

    /// Adds to the import's running counts, in the staging transaction.
    async fn store(&self, tx: &mut sqlx::SqliteConnection, import: Id) -> StoreResult<()> {
        sqlx::query(
            "UPDATE imports SET staged_records = staged_records + ?, \
             staged_voice = staged_voice + ?, staged_sms = staged_sms + ?, \
             staged_email = staged_email + ?, staged_invalid = staged_invalid + ?, \
             staged_blocked = staged_blocked + ? WHERE id = ?",
        )
        .bind(self.records)
        .bind(self.voice)
        .bind(self.sms)
        .bind(self.email)
        .bind(self.invalid)
        .bind(self.blocked)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Deletes the records of an import that is not finished (their undialled
/// attempts first).
async fn delete_staged(conn: &mut sqlx::SqliteConnection, import: Id) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM attempts WHERE state = 'staged' AND EXISTS \
         (SELECT 1 FROM records r WHERE r.id = attempts.record_id AND r.import_id = ?)",
    )
    .bind(import)
    .execute(&mut *conn)
    .await?;
    // By the records_import index; rows of an older version (state
    // 'staged') go the same way.
    sqlx::query("DELETE FROM records WHERE import_id = ?")
        .bind(import)
        .execute(&mut *conn)
        .await?;
    // A later confirm stages (and counts) again from nothing.
    sqlx::query(
        "UPDATE imports SET staged_records = 0, staged_voice = 0, staged_sms = 0, \
         staged_email = 0, staged_invalid = 0, staged_blocked = 0 WHERE id = ?",
    )
    .bind(import)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn u64_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn i64_of(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

const INFO_SELECT: &str =
    "SELECT i.id, i.organisation_id, o.name AS organisation, c.name AS campaign, i.campaign_id, \
     i.script_name, i.file_name, i.file_size, i.status, i.records, i.imported, i.failed, \
     i.uploaded_at, i.started_at, i.finished_at, i.stored_path, i.file_deleted_at, i.error, \
     i.report_json FROM imports i JOIN organisations o ON o.id = i.organisation_id \
     JOIN campaigns c ON c.id = i.campaign_id";

fn info_from_row(row: &sqlx::sqlite::SqliteRow, with_report: bool) -> StoreResult<ImportInfo> {
    let status: String = row.try_get("status")?;
    let report = match (
        with_report,
        row.try_get::<Option<String>, _>("report_json")?,
    ) {
        (true, Some(text)) => Some(
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("import report: {e}")))?,
        ),
        _ => None,
    };
    Ok(ImportInfo {
        id: row.try_get("id")?,
        organisation_id: row.try_get("organisation_id")?,
        organisation: row.try_get("organisation")?,
        campaign: row.try_get("campaign")?,
        campaign_id: row.try_get("campaign_id")?,
        script: row.try_get("script_name")?,
        file_name: row.try_get("file_name")?,
        file_size: u64_of(row.try_get("file_size")?),
        status: ImportStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("import status {status:?}")))?,
        records: u64_of(row.try_get("records")?),
        imported: u64_of(row.try_get("imported")?),
        failed: u64_of(row.try_get("failed")?),
        uploaded_at: row.try_get("uploaded_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        stored_path: row.try_get("stored_path")?,
        file_deleted_at: row.try_get("file_deleted_at")?,
        error: row.try_get("error")?,
        report,
    })
}

impl ImportStore for SqliteStore {
    async fn create_import(&self, import: &NewImport<'_>, now: EpochMs) -> StoreResult<Id> {
        Ok(sqlx::query_scalar(
            "INSERT INTO imports (organisation_id, campaign_id, script_name, file_name, file_size, \
             stored_path, status, records, imported, failed, uploaded_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'uploaded', 0, 0, 0, ?) RETURNING id",
        )
        .bind(import.organisation)
        .bind(import.campaign)
        .bind(import.script_name)
        .bind(import.file_name)
        .bind(i64_of(import.file_size))
        .bind(import.stored_path)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn begin_pass(&self, import: Id, to: ImportStatus, now: EpochMs) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let status = status_of(&mut tx, import).await?;
        let from = ImportStatus::parse(&status);
        if !from.is_some_and(ImportStatus::may_start_pass) {
            return Err(wrong_state(import, &status, "uploaded or validated"));
        }
        sqlx::query(
            "UPDATE imports SET status = ?, started_at = ?, finished_at = NULL, error = NULL \
             WHERE id = ?",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_validation(
        &self,
        import: Id,
        counts: PassCounts,
        report: &str,
        now: EpochMs,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        campaign_if(&mut tx, import, &[ImportStatus::Validating], "validating").await?;
        sqlx::query(
            "UPDATE imports SET status = 'validated', records = ?, imported = 0, failed = ?, \
             report_json = ?, finished_at = ? WHERE id = ?",
        )
        .bind(i64_of(counts.records))
        .bind(i64_of(counts.failed))
        .bind(report)
        .bind(now)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn existing_record_ids(
        &self,
        campaign: Id,
        record_ids: &[&str],
    ) -> StoreResult<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in record_ids.chunks(IDS_PER_LOOKUP) {
            let mut sql = String::from(
                "SELECT record_id FROM records WHERE campaign_id = ? AND record_id IN (",
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
            }
            sql.push(')');
            let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(campaign);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            found.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(found)
    }

    async fn stage_records(
        &self,
        import: Id,
        campaign: Id,
        records: Vec<StagedRecord>,
    ) -> StoreResult<StageSummary> {
        let mut summary = StageSummary::default();
        let mut tx = self.begin_write().await?;
        let stored_campaign =
            campaign_if(&mut tx, import, &[ImportStatus::Importing], "importing").await?;
        // The records wait at the import's start until it is published (see
        // `due_ranges`), and say that they were imported then.
        let stamp: EpochMs = sqlx::query_scalar("SELECT started_at FROM imports WHERE id = ?")
            .bind(import)
            .fetch_one(&mut *tx)
            .await?;
        if stored_campaign != campaign {
            return Err(StoreError::Corrupt(format!(
                "import {import} belongs to campaign {stored_campaign}, not {campaign}"
            )));
        }
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let chunk: Vec<StagedRecord> = records.by_ref().take(ROWS_PER_INSERT).collect();
            // (record id, final status, number to report) of records done at once.
            let mut done: Vec<(String, &'static str, String)> = Vec::new();
            let mut ids: Vec<(u64, String)> = Vec::with_capacity(chunk.len());
            // (services, final status) per row, for the statistics.
            let mut tallies: Vec<(Services, Option<&'static str>)> =
                Vec::with_capacity(chunk.len());
            let sql = insert_records_sql(chunk.len(), campaign, import, stamp);
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for staged in chunk {
                let final_status = match staged.outcome {
                    StagedOutcome::Dial => None,
                    StagedOutcome::InvalidNumber { number } => {
                        done.push((staged.record_id.clone(), "invalid_number", number));
                        Some("invalid_number")
                    }
                    StagedOutcome::Blocked { number } => {
                        done.push((staged.record_id.clone(), "blocked", number));
                        Some("blocked")
                    }
                };
                ids.push((staged.line, staged.record_id.clone()));
                tallies.push((staged.services, final_status));
                query = query
                    .bind(staged.record_id)
                    .bind(staged.client_reference)
                    .bind(staged.fields_json)
                    .bind(staged.phones_json)
                    .bind(i64_of(staged.line))
                    .bind(if final_status.is_some() {
                        "done"
                    } else {
                        "pending"
                    })
                    .bind(final_status)
                    .bind(i64::from(staged.services.email));
            }
            let stored = query.execute(&mut *tx).await?.rows_affected();
            summary.staged += stored;
            let mut counted = StagedCounts::default();
            if stored != ids.len() as u64 {
                let ours = staged_ids(&mut tx, import, campaign, &ids).await?;
                summary.existing_lines.extend(
                    ids.iter()
                        .filter(|(_, id)| !ours.contains(id))
                        .map(|(line, _)| *line),
                );
                for ((_, id), (services, status)) in ids.iter().zip(&tallies) {
                    if ours.contains(id) {
                        counted.add(*services, *status);
                    }
                }
            } else {
                for (services, status) in &tallies {
                    counted.add(*services, *status);
                }
            }
            counted.store(&mut tx, import).await?;
            for (record_id, status, number) in done {
                sqlx::query(
                    "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, status, \
                     started_at, ended_at, ring_ms, talk_ms, success_point, dtmf, outputs_json) \
                     SELECT id, 1, ?, 0, 'staged', ?, ?, ?, 0, 0, 0, '', '[]' FROM records \
                     WHERE campaign_id = ? AND record_id = ? AND import_id = ?",
                )
                .bind(number)
                .bind(status)
                .bind(stamp)
                .bind(stamp)
                .bind(campaign)
                .bind(record_id)
                .bind(import)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn publish_import(
        &self,
        import: Id,
        counts: PassCounts,
        report: &str,
        now: EpochMs,
    ) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let campaign =
            campaign_if(&mut tx, import, &[ImportStatus::Importing], "importing").await?;
        // One `record_done` event per record reported without a call: those
        // are the records with a staged attempt (found by the attempts_state
        // index, not by reading the import's records).
        sqlx::query(
            "INSERT INTO events (campaign_id, record_id, attempt_id, kind, payload_json, created_at) \
             SELECT r.campaign_id, r.id, NULL, 'record_done', ? || r.final_status || '\"}', ? \
             FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE a.state = 'staged' AND r.import_id = ? ORDER BY r.id",
        )
        .bind(format!("{{\"import_id\":{import},\"status\":\""))
        .bind(now)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE attempts SET state = 'ended' WHERE state = 'staged' AND EXISTS \
             (SELECT 1 FROM records r WHERE r.id = attempts.record_id AND r.import_id = ?)",
        )
        .bind(import)
        .execute(&mut *tx)
        .await?;
        let (published, counted) = count_published(&mut tx, campaign, import, now).await?;
        // The records become visible with this status.
        sqlx::query(
            "UPDATE imports SET status = 'finished', records = ?, imported = ?, failed = ?, \
             report_json = ?, finished_at = ? WHERE id = ?",
        )
        .bind(i64_of(counts.records))
        .bind(i64_of(published))
        .bind(i64_of(counts.failed))
        .bind(report)
        .bind(now)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            campaign,
            None,
            None,
            "import",
            &serde_json::json!({
                "import_id": import,
                "inserted": published,
                "failed": counts.failed,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        super::stats::committed(self, campaign, &counted).await;
        Ok(published)
    }

    async fn discard_import(
        &self,
        import: Id,
        to: ImportStatus,
        counts: PassCounts,
        report: Option<&str>,
        error: Option<&str>,
        now: EpochMs,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        campaign_if(
            &mut tx,
            import,
            &[ImportStatus::Validating, ImportStatus::Importing],
            "validating or importing",
        )
        .await?;
        delete_staged(&mut tx, import).await?;
        sqlx::query(
            "UPDATE imports SET status = ?, records = ?, imported = 0, failed = ?, \
             report_json = COALESCE(?, report_json), error = ?, finished_at = ? WHERE id = ?",
        )
        .bind(to.as_str())
        .bind(i64_of(counts.records))
        .bind(i64_of(counts.failed))
        .bind(report)
        .bind(error)
        .bind(now)
        .bind(import)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cancel_import(&self, import: Id, now: EpochMs) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        campaign_if(
            &mut tx,
            import,
            &[ImportStatus::Uploaded, ImportStatus::Validated],
            "uploaded or validated (not yet confirmed)",
        )
        .await?;
        sqlx::query("UPDATE imports SET status = 'cancelled', finished_at = ? WHERE id = ?")
            .bind(now)
            .bind(import)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn import_info(&self, import: Id) -> StoreResult<ImportInfo> {
        let row = sqlx::query(AssertSqlSafe(format!("{INFO_SELECT} WHERE i.id = ?")))
            .bind(import)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "import",
                name: import.to_string(),
            })?;
        info_from_row(&row, true)
    }

    async fn imports(&self, organisation: Id) -> StoreResult<Vec<ImportInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{INFO_SELECT} WHERE i.organisation_id = ? ORDER BY i.id DESC"
        )))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| info_from_row(row, false)).collect()
    }

    async fn imports_in_progress(&self) -> StoreResult<Vec<ImportInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{INFO_SELECT} WHERE i.status IN ('validating', 'importing') ORDER BY i.id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| info_from_row(row, false)).collect()
    }

    async fn expired_import_files(
        &self,
        uploaded_before: EpochMs,
    ) -> StoreResult<Vec<ExpiredFile>> {
        let rows: Vec<(Id, String)> = sqlx::query_as(
            "SELECT id, stored_path FROM imports WHERE stored_path IS NOT NULL AND uploaded_at < ? \
             AND status NOT IN ('validating', 'importing') ORDER BY id",
        )
        .bind(uploaded_before)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(import, stored_path)| ExpiredFile {
                import,
                stored_path,
            })
            .collect())
    }

    async fn mark_import_file_deleted(&self, import: Id, now: EpochMs) -> StoreResult<()> {
        sqlx::query("UPDATE imports SET stored_path = NULL, file_deleted_at = ? WHERE id = ?")
            .bind(now)
            .bind(import)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
