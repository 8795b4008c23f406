//! Reads the portal's file functions need that no engine loop does (an
//! organisation by name is in [`super::organisation`]): an organisation's
//! calendar, a campaign within an organisation, the
//! register of result files with their ids, call attempts searched by
//! number, record, status and date with keyset pagination, and the
//! voicelog of one attempt. Every read is scoped by organisation in the
//! query itself, so a caller never sees another organisation's rows.

use sqlx::{AssertSqlSafe, Row as _};

use super::{from_json, SqliteStore};
use crate::store::{EpochMs, Id, OrganisationCalendar, StoreResult};

/// Most attempts one page of [`SqliteStore::search_calls`] returns.
pub const MAX_CALLS_PAGE: u32 = 500;

/// A campaign of an organisation, as an import names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRef {
    pub id: Id,
    pub name: String,
    pub script: String,
}

/// One registered result file with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultFileRow {
    pub id: Id,
    pub script: String,
    /// `YYYY-MM-DD`, the organisation's local day.
    pub day: String,
    /// `csv` or `xml`.
    pub format: String,
    pub path: String,
    pub size: i64,
    pub rows: i64,
    pub written_at: EpochMs,
}

/// Which attempts to list. Every filter is optional; they combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// The dialled number, E.164.
    pub number: Option<String>,
    /// A record's RECORD_ID.
    pub record_id: Option<String>,
    /// Started at or after (ms).
    pub from: Option<EpochMs>,
    /// Started before (ms).
    pub to: Option<EpochMs>,
    /// A call status (`success`, `no_answer`, ...).
    pub status: Option<String>,
    /// Keyset cursor: only attempts with an id below this one.
    pub before_id: Option<Id>,
    /// Page size (capped at [`MAX_CALLS_PAGE`]).
    pub limit: u32,
}

/// One call attempt as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    pub attempt_id: Id,
    pub campaign: String,
    pub record_id: String,
    pub attempt_no: i64,
    pub number: String,
    pub direction: String,
    pub state: String,
    pub status: Option<String>,
    pub sip_code: Option<i64>,
    pub started_at: EpochMs,
    pub ended_at: Option<EpochMs>,
    pub ring_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub success_point: bool,
    /// The attempt's voicelog, if it was recorded.
    pub voicelog_id: Option<Id>,
}

/// A voicelog as playback needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicelogFile {
    pub id: Id,
    /// Relative to the voicelog directory.
    pub path: String,
    pub state: String,
}

impl SqliteStore {
    /// The organisation's calendar (time zone, workdays, holidays).
    pub async fn organisation_calendar(
        &self,
        organisation: Id,
    ) -> StoreResult<Option<OrganisationCalendar>> {
        let row = sqlx::query("SELECT time_zone, calendar_json FROM organisations WHERE id = ?")
            .bind(organisation)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut calendar: OrganisationCalendar = from_json(
            &row.try_get::<String, _>("calendar_json")?,
            "organisation calendar",
        )?;
        calendar.time_zone = row.try_get("time_zone")?;
        Ok(Some(calendar))
    }

    /// The organisation's campaign called `name`, with its script's name.
    pub async fn campaign_in_organisation(
        &self,
        organisation: Id,
        name: &str,
    ) -> StoreResult<Option<CampaignRef>> {
        let row = sqlx::query(
            "SELECT c.id, c.name, s.name AS script FROM campaigns c \
             JOIN scripts s ON s.id = c.script_id \
             WHERE c.organisation_id = ? AND c.name = ?",
        )
        .bind(organisation)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CampaignRef {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                script: r.try_get("script")?,
            })
        })
        .transpose()
    }

    /// The organisation's result files, newest day first.
    pub async fn result_files_of(&self, organisation: Id) -> StoreResult<Vec<ResultFileRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{RESULT_FILE_SELECT} WHERE s.organisation_id = ? \
             ORDER BY f.day DESC, s.name, f.format"
        )))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(result_file_row).collect()
    }

    /// One of the organisation's result files.
    pub async fn result_file_of(
        &self,
        organisation: Id,
        id: Id,
    ) -> StoreResult<Option<ResultFileRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{RESULT_FILE_SELECT} WHERE s.organisation_id = ? AND f.id = ?"
        )))
        .bind(organisation)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(result_file_row).transpose()
    }

    /// The organisation's call attempts matching `filter`, newest (highest
    /// id) first. The query is built from the filters given so that each
    /// shape reads an index: a number through `attempts_number_started`, a
    /// RECORD_ID through the campaigns' `(campaign_id, record_id)` key and
    /// `attempts_record_started`, a status through `attempts_status_id`,
    /// dates through `attempts_started`; the keyset cursor is the rowid.
    pub async fn search_calls(
        &self,
        organisation: Id,
        filter: &CallFilter,
    ) -> StoreResult<Vec<CallRow>> {
        let sql = calls_sql(filter);
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(organisation);
        if let Some(n) = &filter.number {
            q = q.bind(n);
        }
        if let Some(r) = &filter.record_id {
            q = q.bind(r);
        }
        if let Some(f) = filter.from {
            q = q.bind(f);
        }
        if let Some(t) = filter.to {
            q = q.bind(t);
        }
        if let Some(s) = &filter.status {
            q = q.bind(s);
        }
        if let Some(b) = filter.before_id {
            q = q.bind(b);
        }
        let rows = q
            .bind(filter.limit.clamp(1, MAX_CALLS_PAGE))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CallRow {
                    attempt_id: r.try_get("id")?,
                    campaign: r.try_get("campaign")?,
                    record_id: r.try_get("record_id")?,
                    attempt_no: r.try_get("attempt_no")?,
                    number: r.try_get("number")?,
                    direction: r.try_get("direction")?,
                    state: r.try_get("state")?,
                    status: r.try_get("status")?,
                    sip_code: r.try_get("sip_code")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    ring_ms: r.try_get("ring_ms")?,
                    talk_ms: r.try_get("talk_ms")?,
                    success_point: r.try_get::<i64, _>("success_point")? != 0,
                    voicelog_id: r.try_get("voicelog_id")?,
                })
            })
            .collect()
    }

    /// The voicelog of one of the organisation's attempts.
    pub async fn voicelog_of_attempt(
        &self,
        organisation: Id,
        attempt: Id,
    ) -> StoreResult<Option<VoicelogFile>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT v.id, v.path, v.state FROM voicelogs v \
             JOIN records r ON r.id = v.record_id \
             JOIN campaigns c ON c.id = r.campaign_id \
             WHERE v.attempt_id = ? AND c.organisation_id = ? AND {} \
             ORDER BY v.id LIMIT 1",
            visible!("r")
        )))
        .bind(attempt)
        .bind(organisation)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(VoicelogFile {
                id: r.try_get("id")?,
                path: r.try_get("path")?,
                state: r.try_get("state")?,
            })
        })
        .transpose()
    }
}

/// The query of [`SqliteStore::search_calls`] for the filters `filter`
/// sets (binds: organisation, then the set filters in field order, then
/// the limit).
fn calls_sql(filter: &CallFilter) -> String {
    let mut sql = String::from(
        "SELECT a.id, c.name AS campaign, r.record_id, a.attempt_no, a.number, a.direction, \
         a.state, a.status, a.sip_code, a.started_at, a.ended_at, a.ring_ms, a.talk_ms, \
         a.success_point, \
         (SELECT v.id FROM voicelogs v WHERE v.attempt_id = a.id ORDER BY v.id LIMIT 1) \
         AS voicelog_id ",
    );
    // SQLite keeps the order of a CROSS JOIN: without a RECORD_ID, attempts
    // are read first, through the index of the filter given (or newest
    // first by rowid, stopping at the page), and the organisation is
    // checked per attempt. Left to itself the planner would walk every
    // record of the organisation and sort all its attempts.
    sql.push_str(if filter.record_id.is_some() {
        "FROM campaigns c JOIN records r ON r.campaign_id = c.id \
         JOIN attempts a ON a.record_id = r.id "
    } else {
        "FROM attempts a CROSS JOIN records r ON r.id = a.record_id \
         CROSS JOIN campaigns c ON c.id = r.campaign_id "
    });
    sql.push_str("WHERE c.organisation_id = ? AND a.state <> 'staged' AND ");
    sql.push_str(visible!("r"));
    if filter.number.is_some() {
        sql.push_str(" AND a.number = ?");
    }
    if filter.record_id.is_some() {
        sql.push_str(" AND r.record_id = ?");
    }
    if filter.from.is_some() {
        sql.push_str(" AND a.started_at >= ?");
    }
    if filter.to.is_some() {
        sql.push_str(" AND a.started_at < ?");
    }
    if filter.status.is_some() {
        sql.push_str(" AND a.status = ?");
    }
    if filter.before_id.is_some() {
        sql.push_str(" AND a.id < ?");
    }
    sql.push_str(" ORDER BY a.id DESC LIMIT ?");
    sql
}

const RESULT_FILE_SELECT: &str = "SELECT f.id, s.name AS script, f.day, f.format, f.path, \
     f.size, f.rows, f.written_at FROM result_files f JOIN scripts s ON s.id = f.script_id";

fn result_file_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<ResultFileRow> {
    Ok(ResultFileRow {
        id: r.try_get("id")?,
        script: r.try_get("script")?,
        day: r.try_get("day")?,
        format: r.try_get("format")?,
        path: r.try_get("path")?,
        size: r.try_get("size")?,
        rows: r.try_get("rows")?,
        written_at: r.try_get("written_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan of the calls query for `filter`, one detail per line.
    async fn plan(store: &SqliteStore, filter: &CallFilter) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", calls_sql(filter));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(1_i64);
        if filter.number.is_some() {
            q = q.bind("+31612345678");
        }
        if filter.record_id.is_some() {
            q = q.bind("R1");
        }
        if filter.from.is_some() {
            q = q.bind(0_i64);
        }
        if filter.to.is_some() {
            q = q.bind(1_i64);
        }
        if filter.status.is_some() {
            q = q.bind("success");
        }
        if filter.before_id.is_some() {
            q = q.bind(10_i64);
        }
        let rows = q.bind(100_i64).fetch_all(&store.pool).await.expect("plan");
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").expect("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Each search shape reads attempts through an index, never by
    /// scanning the whole table. A status matches many attempts, so its
    /// search must not sort them: newest first is its index's rowid order
    /// (a number's or a record's few attempts are sorted in memory).
    #[tokio::test]
    async fn every_search_shape_reads_attempts_through_an_index() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let shapes = [
            (
                CallFilter {
                    number: Some(String::new()),
                    ..CallFilter::default()
                },
                "attempts_number_started",
            ),
            (
                CallFilter {
                    record_id: Some(String::new()),
                    ..CallFilter::default()
                },
                "attempts_record_started",
            ),
            (
                CallFilter {
                    status: Some(String::new()),
                    before_id: Some(0),
                    ..CallFilter::default()
                },
                "attempts_status_id",
            ),
            (
                CallFilter {
                    from: Some(0),
                    to: Some(0),
                    ..CallFilter::default()
                },
                "attempts_started",
            ),
        ];
        for (filter, index) in shapes {
            let plan = plan(&store, &filter).await;
            assert!(
                plan.contains(index),
                "{filter:?} does not use {index}:\n{plan}"
            );
            assert!(
                !plan.lines().any(|l| l.starts_with("SCAN a")),
                "{filter:?} scans attempts:\n{plan}"
            );
            if filter.status.is_some() {
                assert!(!plan.contains("TEMP B-TREE"), "{filter:?} sorts:\n{plan}");
            }
        }
    }
}
