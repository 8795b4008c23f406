//! Login rate limits: failed attempts counted per user (the e-mail address
//! given, lowercased, whether or not it exists) and per client address over
//! a sliding window; once either count reaches its limit, logins are
//! refused with 429 and `Retry-After` until the oldest failure in the
//! window ages out.
//!
//! The failures live in the database (`portal_login_failures`), not in
//! memory: they survive a restart, and several portal processes sharing
//! one store count together. Rows older than the window are pruned as new
//! ones are written, so the table stays small. A correct login clears the
//! user's failures (not the address's).

use std::net::IpAddr;

use sqlx::SqlitePool;

use crate::session::AuthConfig;

/// The bucket key of a client address; clients whose address is unknown
/// share one.
pub fn address_key(addr: Option<IpAddr>) -> String {
    addr.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}

/// The bucket key of a user: the e-mail given, trimmed and lowercased.
pub fn user_key(email: &str) -> String {
    email.trim().to_lowercase()
}

async fn retry_after(
    db: &SqlitePool,
    scope: &str,
    key: &str,
    limit: i64,
    cfg: &AuthConfig,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    let since = now - cfg.failure_window_secs;
    let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(at) FROM portal_login_failures
         WHERE scope = ? AND key = ? AND at > ?",
    )
    .bind(scope)
    .bind(key)
    .bind(since)
    .fetch_one(db)
    .await?;
    if count < limit {
        return Ok(None);
    }
    // The window slides: a new attempt is allowed once enough failures
    // have aged out; the oldest going is a lower bound, so say that.
    Ok(Some(
        oldest
            .map_or(cfg.failure_window_secs, |o| {
                o + cfg.failure_window_secs - now
            })
            .max(1),
    ))
}

/// `Some(seconds)` if a login for `user` from `addr` must be refused now.
pub async fn check(
    db: &SqlitePool,
    user: &str,
    addr: &str,
    cfg: &AuthConfig,
    now: i64,
) -> sqlx::Result<Option<i64>> {
    let u = retry_after(db, "user", user, cfg.user_failures, cfg, now).await?;
    let a = retry_after(db, "address", addr, cfg.address_failures, cfg, now).await?;
    Ok(u.max(a))
}

/// Records one failed attempt for both buckets.
pub async fn record_failure(
    db: &SqlitePool,
    user: &str,
    addr: &str,
    cfg: &AuthConfig,
    now: i64,
) -> sqlx::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM portal_login_failures WHERE at <= ?")
        .bind(now - cfg.failure_window_secs)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO portal_login_failures (scope, key, at) VALUES ('user', ?, ?), ('address', ?, ?)",
    )
    .bind(user)
    .bind(now)
    .bind(addr)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Forgets a user's failures after a correct login.
pub async fn clear_user(db: &SqlitePool, user: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portal_login_failures WHERE scope = 'user' AND key = ?")
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}
