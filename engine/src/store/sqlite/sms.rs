//! The organisation's text messages (`sms_outbox`) as a front end lists
//! them: searched by number, RECORD_ID, script, state and date, newest
//! first, with a keyset cursor (the message id). Scoped by organisation in
//! the query itself.

use sqlx::{AssertSqlSafe, Row as _};

use super::SqliteStore;
use crate::store::{EpochMs, Id, StoreResult};

/// Most messages one page of [`SqliteStore::search_sms`] returns.
pub const MAX_SMS_PAGE: u32 = 500;

/// Which messages to list. Every filter is optional; they combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmsFilter {
    /// The number the message goes to, E.164.
    pub number: Option<String>,
    /// The record's RECORD_ID.
    pub record_id: Option<String>,
    /// The script whose call queued it.
    pub script: Option<String>,
    /// `queued`, later `sent`, `delivered`, ...
    pub state: Option<String>,
    /// Created at or after (ms).
    pub from: Option<EpochMs>,
    /// Created before (ms).
    pub to: Option<EpochMs>,
    /// Keyset cursor: only messages with an id below this one.
    pub before_id: Option<Id>,
    /// Page size (capped at [`MAX_SMS_PAGE`]).
    pub limit: u32,
}

/// One text message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRow {
    pub id: Id,
    pub campaign: String,
    pub script: String,
    pub record_id: String,
    pub client_reference: Option<String>,
    /// The call attempt that queued it.
    pub attempt_id: Id,
    pub number: String,
    pub template: String,
    pub language: String,
    /// The rendered text (`sms_outbox.body`); `None` for messages queued
    /// before texts were stored.
    pub text: Option<String>,
    /// `queued`, or `failed` when the template could not be filled in.
    pub state: String,
    /// Why a `failed` message could not be made (`sms_outbox.error`).
    pub error: Option<String>,
    pub created_at: EpochMs,
}

impl SqliteStore {
    /// The organisation's messages matching `filter`, newest (highest id)
    /// first. A number reads `sms_outbox_number`, a RECORD_ID the
    /// campaigns' `(campaign_id, record_id)` key and `sms_outbox_record`,
    /// a state `sms_outbox_state`, dates `sms_outbox_created`.
    pub async fn search_sms(
        &self,
        organisation: Id,
        filter: &SmsFilter,
    ) -> StoreResult<Vec<SmsRow>> {
        let mut q = sqlx::query(AssertSqlSafe(sms_sql(filter))).bind(organisation);
        for text in [
            &filter.number,
            &filter.record_id,
            &filter.script,
            &filter.state,
        ]
        .into_iter()
        .flatten()
        {
            q = q.bind(text);
        }
        for n in [filter.from, filter.to, filter.before_id]
            .into_iter()
            .flatten()
        {
            q = q.bind(n);
        }
        let rows = q
            .bind(filter.limit.clamp(1, MAX_SMS_PAGE))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SmsRow {
                    id: r.try_get("id")?,
                    campaign: r.try_get("campaign")?,
                    script: r.try_get("script")?,
                    record_id: r.try_get("record_id")?,
                    client_reference: r.try_get("client_reference")?,
                    attempt_id: r.try_get("attempt_id")?,
                    number: r.try_get("number")?,
                    template: r.try_get("template")?,
                    language: r.try_get("language")?,
                    text: r.try_get("body")?,
                    error: r.try_get("error")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// The query of [`SqliteStore::search_sms`] for the filters `filter` sets
/// (binds: organisation, then number, RECORD_ID, script, state, from, to,
/// cursor as set, then the limit).
fn sms_sql(filter: &SmsFilter) -> String {
    let mut sql = String::from(
        "SELECT m.id, c.name AS campaign, sc.name AS script, r.record_id, r.client_reference, \
         m.attempt_id, m.number, m.template, m.language, m.body, m.state, m.error, m.created_at ",
    );
    // As for the calls list: without a RECORD_ID the messages are read
    // first (through the index of the filter, or newest first by rowid)
    // and the organisation is checked per message.
    sql.push_str(if filter.record_id.is_some() {
        "FROM campaigns c JOIN records r ON r.campaign_id = c.id \
         JOIN sms_outbox m ON m.record_id = r.id JOIN scripts sc ON sc.id = c.script_id "
    } else {
        "FROM sms_outbox m CROSS JOIN campaigns c ON c.id = m.campaign_id \
         CROSS JOIN scripts sc ON sc.id = c.script_id CROSS JOIN records r ON r.id = m.record_id "
    });
    sql.push_str("WHERE c.organisation_id = ?");
    if filter.number.is_some() {
        sql.push_str(" AND m.number = ?");
    }
    if filter.record_id.is_some() {
        sql.push_str(" AND r.record_id = ?");
    }
    if filter.script.is_some() {
        sql.push_str(" AND sc.name = ?");
    }
    if filter.state.is_some() {
        sql.push_str(" AND m.state = ?");
    }
    if filter.from.is_some() {
        sql.push_str(" AND m.created_at >= ?");
    }
    if filter.to.is_some() {
        sql.push_str(" AND m.created_at < ?");
    }
    if filter.before_id.is_some() {
        sql.push_str(" AND m.id < ?");
    }
    sql.push_str(" ORDER BY m.id DESC LIMIT ?");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each search shape reads the messages through an index, never by
    /// scanning the outbox.
    #[tokio::test]
    async fn every_search_shape_reads_messages_through_an_index() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let some = || Some(String::new());
        let shapes = [
            (
                SmsFilter {
                    number: some(),
                    ..SmsFilter::default()
                },
                "sms_outbox_number",
            ),
            (
                SmsFilter {
                    record_id: some(),
                    ..SmsFilter::default()
                },
                "sms_outbox_record",
            ),
            (
                SmsFilter {
                    state: some(),
                    before_id: Some(5),
                    ..SmsFilter::default()
                },
                "sms_outbox_state",
            ),
            (
                SmsFilter {
                    from: Some(0),
                    to: Some(1),
                    ..SmsFilter::default()
                },
                "sms_outbox_created",
            ),
        ];
        for (filter, index) in shapes {
            let sql = format!("EXPLAIN QUERY PLAN {}", sms_sql(&filter));
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(1_i64);
            for text in [
                &filter.number,
                &filter.record_id,
                &filter.script,
                &filter.state,
            ]
            .into_iter()
            .flatten()
            {
                q = q.bind(text.clone());
            }
            for n in [filter.from, filter.to, filter.before_id]
                .into_iter()
                .flatten()
            {
                q = q.bind(n);
            }
            let rows = q.bind(10_i64).fetch_all(&store.pool).await.expect("plan");
            let plan: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>("detail").expect("detail"))
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains(index),
                "{filter:?} does not use {index}:\n{plan}"
            );
            assert!(
                !plan.lines().any(|l| l.starts_with("SCAN m")),
                "{filter:?} scans the outbox:\n{plan}"
            );
        }
    }
}
