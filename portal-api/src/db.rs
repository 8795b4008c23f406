//! The portal's tables and their migrations.
//!
//! The portal keeps its tables (all named `portal_*`) in the engine's
//! database file, but records its migrations in a table of its own,
//! `_portal_migrations`, not the engine's `_sqlx_migrations`. Why not share
//! `_sqlx_migrations` with `set_ignore_missing(true)`: that would only make
//! the portal's migrator tolerate the engine's versions; the engine's
//! migrator (which does not ignore missing versions) would then fail with
//! `VersionMissing(1000)` on every start after the portal ran, so the
//! engine would have to change too, and each side would silently accept
//! the other's unknown rows. sqlx 0.9's `Migrator::dangerous_set_table_name`
//! keeps the two histories apart instead; the migrations are still numbered
//! from 1000 so that a later merge of the two histories cannot collide.

use std::path::Path;
use std::str::FromStr;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

/// The table that records the portal's applied migrations.
pub const MIGRATIONS_TABLE: &str = "_portal_migrations";

/// Connections in the portal's pool.
const POOL_SIZE: u32 = 4;

/// The portal's migrator, recording into [`MIGRATIONS_TABLE`].
pub fn migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations");
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// Runs the portal's migrations on `db`.
pub async fn migrate(db: &SqlitePool) -> Result<(), MigrateError> {
    migrator().run(db).await
}

/// Opens (creating if needed) the database file and runs the migrations.
pub async fn open(path: &Path) -> Result<SqlitePool, MigrateError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    let db = SqlitePoolOptions::new()
        .max_connections(POOL_SIZE)
        .connect_with(options)
        .await?;
    migrate(&db).await?;
    Ok(db)
}

/// A private in-memory database with the migrations run: for tests.
pub async fn open_in_memory() -> Result<SqlitePool, MigrateError> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    // One connection: each in-memory connection is its own database.
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    migrate(&db).await?;
    Ok(db)
}
