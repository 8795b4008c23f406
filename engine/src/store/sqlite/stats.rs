//! The statistics in SQLite: the functions that add to the 5-minute
//! counters inside a caller's transaction (so a counted change and its
//! count commit together, or neither does), and [`StatsStore`] for
//! [`SqliteStore`].
//!
//! Callers with a transaction `tx` pass `&mut tx`:
//! - an attempt ends: [`count_attempt_end`] (before the attempt row is
//!   updated; it counts an attempt only while it is still dialing, so a
//!   repeated finish never counts twice);
//! - records are imported: [`count_import`] with an [`ImportTally`];
//! - an inbound call is matched, a call forwarded, a callback made:
//!   [`count_event`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::{Row as _, SqliteConnection};

use super::SqliteStore;
use crate::stats::{
    bucket_start, day_start, BucketUpdate, Counters, DaySplit, ImportTally, StatsEvent,
};
use crate::store::stats::{ResultFile, ScriptCampaigns, StatsStore};
use crate::store::{EpochMs, Id, StoreError, StoreResult};

/// Adds `counters` to the campaign's bucket holding `at` and to its day
/// rollup (`stats_daily`, which long periods sum instead of every bucket),
/// one statement per table whatever their number (an attempt's end touches
/// four or five counters; a statement per counter was most of the store's
/// work per call). The text depends only on the table and how many
/// counters there are, so each shape is prepared once per connection.
pub async fn add_counters(
    conn: &mut SqliteConnection,
    campaign: Id,
    at: EpochMs,
    counters: &Counters,
    now: EpochMs,
) -> StoreResult<()> {
    let named = counters.named();
    if named.is_empty() {
        return Ok(());
    }
    let rows = |columns: &str, row: &str, conflict: &str| {
        let mut sql = format!("INSERT INTO {columns} VALUES ");
        for i in 0..named.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(row);
        }
        sql.push_str(conflict);
        sql
    };
    let bucket = rows(
        "stats_counters (campaign_id, bucket_start, counter, n, updated_at)",
        "(?, ?, ?, ?, ?)",
        " ON CONFLICT (campaign_id, bucket_start, counter) \
         DO UPDATE SET n = stats_counters.n + excluded.n, updated_at = excluded.updated_at",
    );
    // Only placeholders are added to the text; the values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(bucket));
    for (counter, n) in &named {
        query = query
            .bind(campaign)
            .bind(bucket_start(at))
            .bind(counter.as_str())
            .bind(i64::try_from(*n).unwrap_or(i64::MAX))
            .bind(now);
    }
    query.execute(&mut *conn).await?;
    let day = rows(
        "stats_daily (campaign_id, day_start, counter, n)",
        "(?, ?, ?, ?)",
        " ON CONFLICT (campaign_id, day_start, counter) \
         DO UPDATE SET n = stats_daily.n + excluded.n",
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(day));
    for (counter, n) in &named {
        query = query
            .bind(campaign)
            .bind(day_start(at))
            .bind(counter.as_str())
            .bind(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// The counters of the buckets overlapping `[from, to)`, summed, of one
/// campaign or (`None`) of all: whole UTC days from the day rollups, the
/// partial days at the ends from the buckets ([`DaySplit`]), so a month
/// sums about 30 rows per counter instead of 8,640.
async fn sum_counters(
    store: &SqliteStore,
    campaign: Option<Id>,
    from: EpochMs,
    to: EpochMs,
) -> StoreResult<Counters> {
    let split = DaySplit::of(from, to);
    // `campaign_id = ?` or, for all, `campaign_id IN (SELECT id FROM
    // campaigns)`, which lets SQLite seek the primary key per campaign
    // instead of scanning every row ever counted.
    let which = if campaign.is_some() {
        "campaign_id = ?"
    } else {
        "campaign_id IN (SELECT id FROM campaigns)"
    };
    let sql = format!(
        "SELECT counter, SUM(n) FROM (\
         SELECT counter, n FROM stats_counters \
         WHERE {which} AND bucket_start >= ? AND bucket_start < ? \
         UNION ALL SELECT counter, n FROM stats_daily \
         WHERE {which} AND day_start >= ? AND day_start < ? \
         UNION ALL SELECT counter, n FROM stats_counters \
         WHERE {which} AND bucket_start >= ? AND bucket_start < ?\
         ) GROUP BY counter"
    );
    // Only a fixed condition is added to the text; the values are bound.
    let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
    for (a, z) in [split.head, split.days, split.tail] {
        if let Some(campaign) = campaign {
            query = query.bind(campaign);
        }
        query = query.bind(a).bind(z);
    }
    let mut totals = Counters::default();
    for (counter, n) in query.fetch_all(&store.pool).await? {
        totals.add(&counter, count(n));
    }
    Ok(totals)
}

/// After the commit of a transaction that added `counters` to a bucket of
/// `campaign`: the same deltas to the Prometheus counters that follow the
/// buckets ([`crate::metrics::bucket_committed`]). Every committed
/// attempt-end and undialled report goes through here, so those metrics
/// count what the buckets count, and only once it is committed. Without a
/// recorder it does nothing; the campaign's script is read once per
/// campaign and process.
pub(crate) async fn committed(store: &SqliteStore, campaign: Id, counters: &Counters) {
    if crate::metrics::needs_campaign_script(campaign) {
        let script: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
            "SELECT s.name FROM campaigns c JOIN scripts s ON s.id = c.script_id WHERE c.id = ?",
        )
        .bind(campaign)
        .fetch_optional(&store.pool)
        .await;
        match script {
            Ok(Some(script)) => crate::metrics::campaign_script(campaign, &script),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(campaign, "statistics not counted in the metrics: {e}");
                return;
            }
        }
    }
    crate::metrics::bucket_committed(campaign, counters);
}

/// Counts the end of `attempt` with `status` in the bucket of `now` (the
/// instant it ended), and the record's end when `record_done`. Counting by
/// the end, not the start, makes a bucket final once its five minutes are
/// over, and lets a counter that rises when attempts end (Prometheus's
/// `dialcast_call_attempts_total`) show the same buckets. Call it before the attempt row
/// is marked ended: an attempt that is no longer dialing was counted
/// already and is skipped. Returns the attempt's campaign and what was
/// counted (for [`committed`]) when it counted, `None` when it was skipped.
pub async fn count_attempt_end(
    conn: &mut SqliteConnection,
    attempt: Id,
    status: &str,
    voicemail_left: bool,
    record_done: bool,
    now: EpochMs,
) -> StoreResult<Option<(Id, Counters)>> {
    let row: Option<(String, i64, Id)> = sqlx::query_as(
        "SELECT a.state, a.dialled, r.campaign_id \
         FROM attempts a JOIN records r ON r.id = a.record_id WHERE a.id = ?",
    )
    .bind(attempt)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((state, dialled, campaign)) = row else {
        return Err(StoreError::NotFound {
            kind: "attempt",
            name: attempt.to_string(),
        });
    };
    if state != "dialing" {
        return Ok(None);
    }
    let mut counters = Counters::attempts_ended(status, voicemail_left, dialled != 0, 1);
    if record_done {
        counters.records_done = 1;
    }
    add_counters(conn, campaign, now, &counters, now).await?;
    Ok(Some((campaign, counters)))
}

/// Counts what an import stored (see [`ImportTally`]) in the bucket of `now`.
pub async fn count_import(
    conn: &mut SqliteConnection,
    campaign: Id,
    now: EpochMs,
    tally: &ImportTally,
) -> StoreResult<()> {
    add_counters(conn, campaign, now, tally.counters(), now).await
}

/// Counts one event of the campaign at `at`.
pub async fn count_event(
    conn: &mut SqliteConnection,
    campaign: Id,
    at: EpochMs,
    event: StatsEvent,
) -> StoreResult<()> {
    let mut counters = Counters::default();
    counters.add(event.counter(), 1);
    add_counters(conn, campaign, at, &counters, at).await
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn parse_day(text: &str) -> StoreResult<NaiveDate> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("result file day {text:?}")))
}

fn result_file_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<ResultFile> {
    Ok(ResultFile {
        script_id: row.try_get("script_id")?,
        script: row.try_get("script")?,
        day: parse_day(&row.try_get::<String, _>("day")?)?,
        format: row.try_get("format")?,
        path: row.try_get("path")?,
        outbox_path: row.try_get("outbox_path")?,
        size: count(row.try_get("size")?),
        rows: count(row.try_get("rows")?),
        written_at: row.try_get("written_at")?,
    })
}

/// `SELECT` of registered result files with their script's name, then `$tail`.
macro_rules! result_file_select {
    ($tail:literal) => {
        concat!(
            "SELECT f.script_id, s.name AS script, f.day, f.format, f.path, f.outbox_path, \
             f.size, f.rows, f.written_at FROM result_files f JOIN scripts s ON s.id = f.script_id ",
            $tail
        )
    };
}

/// Groups `(script id, script, campaign id, campaign)` rows, ordered by
/// script, into [`ScriptCampaigns`].
fn group_by_script(rows: Vec<(Id, String, Id, String)>) -> Vec<ScriptCampaigns> {
    let mut out: Vec<ScriptCampaigns> = Vec::new();
    for (script_id, script, campaign_id, campaign) in rows {
        match out.last_mut() {
            Some(last) if last.script_id == script_id => {
                last.campaigns.push((campaign_id, campaign))
            }
            _ => out.push(ScriptCampaigns {
                script_id,
                script,
                campaigns: vec![(campaign_id, campaign)],
            }),
        }
    }
    out
}

impl StatsStore for SqliteStore {
    async fn stats_buckets(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> StoreResult<Vec<(EpochMs, Counters)>> {
        let rows: Vec<(EpochMs, String, i64)> = sqlx::query_as(
            "SELECT bucket_start, counter, n FROM stats_counters \
             WHERE campaign_id = ? AND bucket_start >= ? AND bucket_start < ? \
             ORDER BY bucket_start",
        )
        .bind(campaign)
        .bind(bucket_start(from))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut buckets: BTreeMap<EpochMs, Counters> = BTreeMap::new();
        for (start, counter, n) in rows {
            buckets.entry(start).or_default().add(&counter, count(n));
        }
        Ok(buckets.into_iter().collect())
    }

    async fn stats_totals(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> StoreResult<Counters> {
        sum_counters(self, Some(campaign), from, to).await
    }

    async fn stats_totals_all(&self, from: EpochMs, to: EpochMs) -> StoreResult<Counters> {
        sum_counters(self, None, from, to).await
    }

    async fn records_imported_per_service(
        &self,
        from: EpochMs,
        to: EpochMs,
    ) -> StoreResult<BTreeMap<String, u64>> {
        // `campaign_id IN (...)` lets SQLite seek the primary key
        // (campaign_id, bucket_start, counter) per campaign instead of
        // scanning every bucket ever counted.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT counter, SUM(n) FROM stats_counters \
             WHERE campaign_id IN (SELECT id FROM campaigns) \
             AND bucket_start >= ? AND bucket_start < ? \
             AND counter IN ('imported.voice', 'imported.sms', 'imported.email') \
             GROUP BY counter",
        )
        .bind(bucket_start(from))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let mut totals = Counters::default();
        for (counter, n) in rows {
            totals.add(&counter, count(n));
        }
        Ok(totals.imported)
    }

    async fn bucket_update(&self, campaign: Id, at: EpochMs) -> StoreResult<BucketUpdate> {
        let names: Option<(String, String)> = sqlx::query_as(
            "SELECT c.name, s.name FROM campaigns c JOIN scripts s ON s.id = c.script_id \
             WHERE c.id = ?",
        )
        .bind(campaign)
        .fetch_optional(&self.pool)
        .await?;
        let Some((name, script)) = names else {
            return Err(StoreError::NotFound {
                kind: "campaign",
                name: campaign.to_string(),
            });
        };
        let start = bucket_start(at);
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT counter, n FROM stats_counters WHERE campaign_id = ? AND bucket_start = ?",
        )
        .bind(campaign)
        .bind(start)
        .fetch_all(&self.pool)
        .await?;
        let mut counters = Counters::default();
        for (counter, n) in rows {
            counters.add(&counter, count(n));
        }
        Ok(BucketUpdate {
            campaign_id: campaign,
            campaign: name,
            script,
            bucket_start: start,
            counters,
        })
    }

    async fn attempt_bucket(&self, attempt: Id) -> StoreResult<BucketUpdate> {
        let found: Option<(Id, EpochMs)> = sqlx::query_as(
            "SELECT r.campaign_id, a.started_at FROM attempts a JOIN records r ON r.id = a.record_id \
             WHERE a.id = ?",
        )
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?;
        let Some((campaign, started_at)) = found else {
            return Err(StoreError::NotFound {
                kind: "attempt",
                name: attempt.to_string(),
            });
        };
        self.bucket_update(campaign, started_at).await
    }

    async fn scripts_active(
        &self,
        from: EpochMs,
        to: EpochMs,
    ) -> StoreResult<Vec<ScriptCampaigns>> {
        let rows: Vec<(Id, String, Id, String)> = sqlx::query_as(
            "SELECT s.id, s.name, c.id, c.name FROM campaigns c JOIN scripts s ON s.id = c.script_id \
             WHERE (c.started_at IS NOT NULL AND c.started_at < ? \
                    AND (c.finished_at IS NULL OR c.finished_at >= ?)) \
                OR EXISTS (SELECT 1 FROM stats_counters k WHERE k.campaign_id = c.id \
                           AND k.counter = 'attempts' AND k.bucket_start >= ? AND k.bucket_start < ?) \
             ORDER BY s.name, s.id, c.id",
        )
        .bind(to)
        .bind(from)
        .bind(bucket_start(from))
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(group_by_script(rows))
    }

    async fn script_of_campaign(&self, campaign: Id) -> StoreResult<ScriptCampaigns> {
        let rows: Vec<(Id, String, Id, String)> = sqlx::query_as(
            "SELECT s.id, s.name, c.id, c.name FROM campaigns c JOIN scripts s ON s.id = c.script_id \
             WHERE c.script_id = (SELECT script_id FROM campaigns WHERE id = ?) ORDER BY c.id",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        group_by_script(rows)
            .pop()
            .ok_or_else(|| StoreError::NotFound {
                kind: "campaign",
                name: campaign.to_string(),
            })
    }

    async fn record_result_file(&self, file: &ResultFile) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO result_files (script_id, day, format, path, outbox_path, size, rows, written_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (script_id, day, format) DO UPDATE SET path = excluded.path, \
             outbox_path = excluded.outbox_path, size = excluded.size, rows = excluded.rows, \
             written_at = excluded.written_at",
        )
        .bind(file.script_id)
        .bind(file.day.format("%Y-%m-%d").to_string())
        .bind(&file.format)
        .bind(&file.path)
        .bind(&file.outbox_path)
        .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
        .bind(i64::try_from(file.rows).unwrap_or(i64::MAX))
        .bind(file.written_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn result_file(
        &self,
        script: Id,
        day: NaiveDate,
        format: &str,
    ) -> StoreResult<Option<ResultFile>> {
        let row = sqlx::query(result_file_select!(
            "WHERE f.script_id = ? AND f.day = ? AND f.format = ?"
        ))
        .bind(script)
        .bind(day.format("%Y-%m-%d").to_string())
        .bind(format)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(result_file_from_row).transpose()
    }

    async fn result_files(&self) -> StoreResult<Vec<ResultFile>> {
        let rows = sqlx::query(result_file_select!("ORDER BY f.day DESC, s.name, f.format"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(result_file_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::DAY_MS;
    use crate::store::{CampaignSettings, Store as _, TrunkSettings};

    async fn campaign(store: &SqliteStore) -> Id {
        let org = store.ensure_organisation("O", "NL").await.expect("org");
        let trunk = store
            .upsert_trunk(
                org,
                &TrunkSettings {
                    name: "t".into(),
                    uri: "sip:127.0.0.1:5090".into(),
                    transport: "udp".into(),
                    max_cps: 1,
                    max_channels: 1,
                    caller_id: None,
                },
            )
            .await
            .expect("trunk");
        let script = store
            .upsert_script(org, "s", "s.toml", "")
            .await
            .expect("script");
        store
            .ensure_campaign(org, "c", script, trunk, &CampaignSettings::default())
            .await
            .expect("campaign")
    }

    #[tokio::test]
    async fn an_event_counts_only_when_its_transaction_commits() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let campaign = campaign(&store).await;
        let at = 1_750_000_000_000;
        let mut tx = store.begin_write().await.expect("begin");
        count_event(&mut tx, campaign, at, StatsEvent::InboundMatched)
            .await
            .expect("count");
        tx.rollback().await.expect("rollback");
        assert_eq!(
            store
                .stats_totals(campaign, 0, i64::MAX)
                .await
                .expect("totals"),
            Counters::default()
        );
        let mut tx = store.begin_write().await.expect("begin");
        for event in [
            StatsEvent::InboundMatched,
            StatsEvent::Forwarded,
            StatsEvent::CalledBack,
            StatsEvent::CalledBack,
        ] {
            count_event(&mut tx, campaign, at, event)
                .await
                .expect("count");
        }
        tx.commit().await.expect("commit");
        let totals = store
            .stats_totals(campaign, 0, i64::MAX)
            .await
            .expect("totals");
        assert_eq!(
            (totals.inbound, totals.forwards, totals.callbacks),
            (1, 1, 2)
        );
        assert_eq!(totals.attempts, 0);
    }

    /// A period's totals read through the day rollups equal the sum of its
    /// 5-minute buckets, for periods that start and end inside days, on day
    /// boundaries, and span none or many whole days.
    #[tokio::test]
    async fn totals_through_day_rollups_equal_the_buckets_summed() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let campaign = campaign(&store).await;
        // 2026-12-01T00:00:00Z.
        let day = 1_796_083_200_000;
        let hour = 3_600_000;
        // An event every 47 minutes for 5 days.
        let mut tx = store.begin_write().await.expect("begin");
        let mut at = day - 3 * hour;
        while at < day + 5 * DAY_MS {
            count_event(&mut tx, campaign, at, StatsEvent::CalledBack)
                .await
                .expect("count");
            at += 47 * 60_000;
        }
        tx.commit().await.expect("commit");
        let periods = [
            (day, day + DAY_MS),
            (day + 7 * hour + 1, day + 3 * DAY_MS + 2 * hour),
            (day - hour, day + 4 * DAY_MS + hour),
            (day + 5 * hour, day + 9 * hour),
            (0, i64::MAX),
            (day + DAY_MS, day + DAY_MS),
        ];
        for (from, to) in periods {
            let by_bucket: u64 = store
                .stats_buckets(campaign, from, to)
                .await
                .expect("buckets")
                .iter()
                .map(|(_, c)| c.callbacks)
                .sum();
            let totals = store
                .stats_totals(campaign, from, to)
                .await
                .expect("totals");
            assert_eq!(totals.callbacks, by_bucket, "{from}..{to}");
            let all = store.stats_totals_all(from, to).await.expect("all");
            assert_eq!(all.callbacks, by_bucket, "{from}..{to}, all campaigns");
        }
        let days: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_daily")
            .fetch_one(&store.pool)
            .await
            .expect("days");
        assert_eq!(days, 6, "one rollup row per day touched");
    }

    /// Today's records per service: only the `imported.*` counters of the
    /// buckets in the range, over every campaign; the outbox depth counts
    /// queued messages.
    #[tokio::test]
    async fn records_per_service_read_only_the_range_and_their_counters() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let campaign = campaign(&store).await;
        // 2025-06-15T00:00:00Z.
        let day = 1_749_945_600_000;
        let mut inside = ImportTally::default();
        let voice_and_sms: std::collections::BTreeMap<String, String> =
            [("SERVICES_SMS".to_string(), "Y".to_string())].into();
        inside.record(&voice_and_sms);
        inside.record(&Default::default());
        inside.undialled("invalid_number");
        let mut before = ImportTally::default();
        before.record(&Default::default());
        let mut tx = store.begin_write().await.expect("begin");
        count_import(&mut tx, campaign, day + 3_600_000, &inside)
            .await
            .expect("count");
        count_import(&mut tx, campaign, day - 1, &before)
            .await
            .expect("count");
        tx.commit().await.expect("commit");
        let today = store
            .records_imported_per_service(day, day + 24 * 3_600_000)
            .await
            .expect("today");
        assert_eq!(
            today,
            [("sms".to_string(), 1), ("voice".to_string(), 2)].into()
        );
        assert_eq!(
            store.sms_outbox_backlog().await.expect("outbox"),
            crate::store::OutboxBacklog::default()
        );
    }
}
