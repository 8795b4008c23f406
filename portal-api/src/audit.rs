//! The audit log: one row per change, written in the same transaction as
//! the change, read back per organisation.

use serde::Serialize;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use utoipa::ToSchema;

use crate::authz::OrgId;

/// A change to record.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub org: OrgId,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
}

/// Writes `entry` inside the caller's transaction.
pub async fn record(tx: &mut Transaction<'_, Sqlite>, entry: Entry<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO portal_audit_log (org_id, at, actor, action, target, detail)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.org.0)
    .bind(entry.at)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A recorded change, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Most recent entries of `org` first, at most `limit`.
pub async fn list(db: &SqlitePool, org: OrgId, limit: u32) -> sqlx::Result<Vec<AuditRow>> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, detail FROM portal_audit_log
         WHERE org_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(org.0)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
