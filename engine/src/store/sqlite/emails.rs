//! The e-mail outbox (`email_outbox`, migration 0012) on SQLite: which
//! records are still owed their e-mail (`records.email_pending`, set by the
//! import for `SERVICES_EMAIL=Y` and seen once the import is published),
//! queuing the rendered (or failed) messages with their events in one
//! transaction, the backlog for the queue metrics, and the organisation's
//! e-mails as a front end lists them: searched by address, RECORD_ID,
//! script, state and date, newest first, with a keyset cursor (the message
//! id), scoped by organisation in the query itself.
//!
//! ```text
//! record (SERVICES_EMAIL=Y) staged ──publish_import──► pending
//!     ──queue_emails──► email_outbox: queued | failed (reason), not pending
//! ```

use sqlx::{AssertSqlSafe, Row as _};

use super::{from_json, insert_event, SqliteStore};
use crate::store::{EmailOutcome, EpochMs, Id, OutboxBacklog, PendingEmail, StoreResult};

/// Most messages one page of [`SqliteStore::search_emails`] returns.
pub const MAX_EMAIL_PAGE: u32 = 500;

/// Most pending records one [`pending`] call returns, whatever it is asked.
const MAX_PENDING: usize = 10_000;

/// The records of `campaign` still owed their e-mail, lowest id first: read
/// through the partial index `records_email_pending`, which holds only
/// those, and without the records of imports that are not finished.
pub(super) async fn pending(
    store: &SqliteStore,
    campaign: Id,
    limit: usize,
) -> StoreResult<Vec<PendingEmail>> {
    let limit = i64::try_from(limit.min(MAX_PENDING)).unwrap_or(0);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(PENDING_SQL)
        .bind(campaign)
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    rows.iter()
        .map(|row| {
            let fields: std::collections::BTreeMap<String, String> =
                from_json(&row.try_get::<String, _>("fields_json")?, "record fields")?;
            Ok(PendingEmail {
                record: row.try_get("id")?,
                record_id: row.try_get("record_id")?,
                address: fields.get("CONTACT_EMAIL").cloned().unwrap_or_default(),
                fields,
            })
        })
        .collect()
}

const PENDING_SQL: &str = concat!(
    "SELECT r.id, r.record_id, r.fields_json FROM records r \
     WHERE r.campaign_id = ? AND r.email_pending = 1 AND ",
    visible!("r"),
    " ORDER BY r.id LIMIT ?"
);

/// Takes the record off the pending list if it is still on it (of this
/// campaign, published): the guard that makes queuing happen once.
const TAKE_SQL: &str = concat!(
    "UPDATE records SET email_pending = 0 \
     WHERE id = ? AND campaign_id = ? AND email_pending = 1 AND ",
    visible!("records")
);

/// See [`crate::store::Store::queue_emails`]: one write transaction for
/// the whole batch.
pub(super) async fn queue(
    store: &SqliteStore,
    campaign: Id,
    items: &[(Id, EmailOutcome)],
    at: EpochMs,
) -> StoreResult<Vec<Id>> {
    let mut ids = Vec::with_capacity(items.len());
    if items.is_empty() {
        return Ok(ids);
    }
    let mut tx = store.begin_write().await?;
    for (record, outcome) in items {
        let taken = sqlx::query(TAKE_SQL)
            .bind(record)
            .bind(campaign)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            continue;
        }
        let insert = sqlx::query_scalar::<_, Id>(
            "INSERT INTO email_outbox (campaign_id, record_id, address, template, language, \
             subject, body, state, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(campaign)
        .bind(record);
        let (insert, kind) = match outcome {
            EmailOutcome::Queued {
                address,
                template,
                language,
                subject,
                body,
            } => (
                insert
                    .bind(address)
                    .bind(Some(template))
                    .bind(Some(language))
                    .bind(Some(subject))
                    .bind(Some(body))
                    .bind("queued")
                    .bind(None::<&str>),
                "email_queued",
            ),
            EmailOutcome::Failed {
                address,
                template,
                reason,
            } => (
                insert
                    .bind(address)
                    .bind(template.as_deref())
                    .bind(None::<&str>)
                    .bind(None::<&str>)
                    .bind(None::<&str>)
                    .bind("failed")
                    .bind(Some(reason)),
                "email_failed",
            ),
        };
        let id = insert.bind(at).fetch_one(&mut *tx).await?;
        let payload = match outcome {
            EmailOutcome::Queued {
                template, language, ..
            } => serde_json::json!({ "email_id": id, "template": template, "language": language }),
            EmailOutcome::Failed {
                template, reason, ..
            } => serde_json::json!({ "email_id": id, "template": template, "reason": reason }),
        };
        insert_event(&mut tx, campaign, Some(*record), None, kind, &payload, at).await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Queued e-mails: how many, and when the oldest was queued. Both on the
/// `email_outbox_state` index (state, id): ids grow with time, so the
/// lowest queued id is the oldest queued message.
pub(super) async fn backlog(store: &SqliteStore) -> StoreResult<OutboxBacklog> {
    let depth: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox WHERE state = 'queued'")
        .fetch_one(&store.pool)
        .await?;
    let oldest_at: Option<EpochMs> = sqlx::query_scalar(
        "SELECT created_at FROM email_outbox WHERE state = 'queued' ORDER BY id LIMIT 1",
    )
    .fetch_optional(&store.pool)
    .await?;
    Ok(OutboxBacklog {
        depth: u64::try_from(depth).unwrap_or(0),
        oldest_at,
    })
}

/// Which e-mails to list. Every filter is optional; they combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmailFilter {
    /// The address the message goes to, exactly as imported.
    pub address: Option<String>,
    /// The record's RECORD_ID.
    pub record_id: Option<String>,
    /// The script of the record's campaign.
    pub script: Option<String>,
    /// `queued` or `failed`, later `sent`, `delivered`, ...
    pub state: Option<String>,
    /// Created at or after (ms).
    pub from: Option<EpochMs>,
    /// Created before (ms).
    pub to: Option<EpochMs>,
    /// Keyset cursor: only messages with an id below this one.
    pub before_id: Option<Id>,
    /// Page size (capped at [`MAX_EMAIL_PAGE`]).
    pub limit: u32,
}

/// One e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailRow {
    pub id: Id,
    pub campaign: String,
    pub script: String,
    pub record_id: String,
    pub client_reference: Option<String>,
    pub address: String,
    /// `None` when it failed before a template was chosen.
    pub template: Option<String>,
    pub language: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: EpochMs,
}

impl SqliteStore {
    /// The organisation's e-mails matching `filter`, newest (highest id)
    /// first. An address reads `email_outbox_address`, a RECORD_ID the
    /// campaigns' `(campaign_id, record_id)` key and `email_outbox_record`,
    /// a state `email_outbox_state`, dates `email_outbox_created`.
    pub async fn search_emails(
        &self,
        organisation: Id,
        filter: &EmailFilter,
    ) -> StoreResult<Vec<EmailRow>> {
        let rows = bind_filter(
            sqlx::query(AssertSqlSafe(email_sql(filter))),
            organisation,
            filter,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EmailRow {
                    id: r.try_get("id")?,
                    campaign: r.try_get("campaign")?,
                    script: r.try_get("script")?,
                    record_id: r.try_get("record_id")?,
                    client_reference: r.try_get("client_reference")?,
                    address: r.try_get("address")?,
                    template: r.try_get("template")?,
                    language: r.try_get("language")?,
                    subject: r.try_get("subject")?,
                    body: r.try_get("body")?,
                    state: r.try_get("state")?,
                    error: r.try_get("error")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds what [`email_sql`] asks for: the organisation, then address,
/// RECORD_ID, script, state, from, to, cursor as set, then the limit.
fn bind_filter<'q>(mut q: Query<'q>, organisation: Id, filter: &EmailFilter) -> Query<'q> {
    q = q.bind(organisation);
    for text in [
        &filter.address,
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
    q.bind(filter.limit.clamp(1, MAX_EMAIL_PAGE))
}

/// The query of [`SqliteStore::search_emails`] for the filters `filter`
/// sets (binds: see [`bind_filter`]).
fn email_sql(filter: &EmailFilter) -> String {
    let mut sql = String::from(
        "SELECT m.id, c.name AS campaign, sc.name AS script, r.record_id, r.client_reference, \
         m.address, m.template, m.language, m.subject, m.body, m.state, m.error, m.created_at ",
    );
    // As for the SMS list: without a RECORD_ID the messages are read first
    // (through the index of the filter, or newest first by rowid) and the
    // organisation is checked per message.
    sql.push_str(if filter.record_id.is_some() {
        "FROM campaigns c JOIN records r ON r.campaign_id = c.id \
         JOIN email_outbox m ON m.record_id = r.id JOIN scripts sc ON sc.id = c.script_id "
    } else {
        "FROM email_outbox m CROSS JOIN campaigns c ON c.id = m.campaign_id \
         CROSS JOIN scripts sc ON sc.id = c.script_id CROSS JOIN records r ON r.id = m.record_id "
    });
    sql.push_str("WHERE c.organisation_id = ?");
    for (set, clause) in [
        (filter.address.is_some(), " AND m.address = ?"),
        (filter.record_id.is_some(), " AND r.record_id = ?"),
        (filter.script.is_some(), " AND sc.name = ?"),
        (filter.state.is_some(), " AND m.state = ?"),
        (filter.from.is_some(), " AND m.created_at >= ?"),
        (filter.to.is_some(), " AND m.created_at < ?"),
        (filter.before_id.is_some(), " AND m.id < ?"),
    ] {
        if set {
            sql.push_str(clause);
        }
    }
    sql.push_str(" ORDER BY m.id DESC LIMIT ?");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(
        store: &SqliteStore,
        sql: String,
        binds: impl FnOnce(Query<'_>) -> Query<'_>,
    ) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let rows = binds(sqlx::query(AssertSqlSafe(sql)))
            .fetch_all(&store.pool)
            .await
            .expect("plan");
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").expect("detail"))
            .collect();
        plan.join("\n")
    }

    /// Each search shape reads the messages through an index, never by
    /// scanning the outbox.
    #[tokio::test]
    async fn every_search_shape_reads_messages_through_an_index() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let some = || Some(String::new());
        let shapes = [
            (
                EmailFilter {
                    address: some(),
                    ..EmailFilter::default()
                },
                "email_outbox_address",
            ),
            (
                EmailFilter {
                    record_id: some(),
                    ..EmailFilter::default()
                },
                "email_outbox_record",
            ),
            (
                EmailFilter {
                    state: some(),
                    before_id: Some(5),
                    ..EmailFilter::default()
                },
                "email_outbox_state",
            ),
            (
                EmailFilter {
                    from: Some(0),
                    to: Some(1),
                    ..EmailFilter::default()
                },
                "email_outbox_created",
            ),
        ];
        for (filter, index) in shapes {
            let plan = plan(&store, email_sql(&filter), |q| bind_filter(q, 1, &filter)).await;
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

    /// Finding and taking pending records reads only the partial index of
    /// the records still waiting, never the whole records table.
    #[tokio::test]
    async fn pending_records_are_found_and_taken_through_their_partial_index() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let found = plan(&store, PENDING_SQL.to_owned(), |q| {
            q.bind(1_i64).bind(10_i64)
        })
        .await;
        assert!(
            found.contains("records_email_pending"),
            "pending_emails does not use the partial index:\n{found}"
        );
        assert!(
            !found.lines().any(|l| l.starts_with("SCAN r")),
            "pending_emails scans the records:\n{found}"
        );
        let take = plan(&store, TAKE_SQL.to_owned(), |q| q.bind(1_i64).bind(1_i64)).await;
        assert!(
            !take.lines().any(|l| l.starts_with("SCAN records")),
            "queue_emails scans the records:\n{take}"
        );
    }
}
