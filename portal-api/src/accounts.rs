//! Organisations and users: the library functions the `dialcast` command
//! calls (`dialcast user create`), and the password hashing rules.
//!
//! A portal organisation is the engine's organisation with the same id and
//! name (the engine's `organisations` table, in the same database file):
//! [`ensure_organisation`] makes its portal row the first time the
//! `dialcast` command needs it, so `OrgId(n)` is the engine's organisation
//! `n` and later portal functions scope engine queries by it directly.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::Rng;
use sqlx::SqlitePool;

use crate::audit;
use crate::authz::{OrgId, Role};

/// How long a temporary password works: 14 days.
pub const TEMP_PASSWORD_LIFETIME_SECS: i64 = 14 * 24 * 3600;
/// Length of a generated temporary password.
const TEMP_PASSWORD_LEN: usize = 20;
/// Letters and digits without look-alikes (0/O, 1/l/I), for passwords read
/// out over the phone.
const TEMP_PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// Errors of the account functions.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("no organisation named {0:?}")]
    NoSuchOrganisation(String),
    #[error("a user with e-mail {0:?} already exists")]
    EmailTaken(String),
    #[error("not an e-mail address: {0:?}")]
    BadEmail(String),
    #[error(
        "organisation {id} is {name:?} in the engine but the portal has {existing:?} \
         for that id or that name"
    )]
    OrganisationMismatch {
        id: i64,
        name: String,
        existing: String,
    },
}

/// A temporary password, shown once. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TempPassword(String);

impl TempPassword {
    fn generate() -> TempPassword {
        let mut rng = rand::rng();
        TempPassword(
            (0..TEMP_PASSWORD_LEN)
                .map(|_| {
                    TEMP_PASSWORD_ALPHABET[rng.random_range(0..TEMP_PASSWORD_ALPHABET.len())]
                        as char
                })
                .collect(),
        )
    }

    /// The password, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TempPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TempPassword(…)")
    }
}

/// Hashes a password with argon2id (the crate's default parameters) and a
/// random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates an organisation; returns its id.
pub async fn create_organisation(
    db: &SqlitePool,
    name: &str,
    now: i64,
) -> Result<OrgId, AccountError> {
    let id = sqlx::query_scalar(
        "INSERT INTO portal_organisations (name, created_at) VALUES (?, ?) RETURNING id",
    )
    .bind(name)
    .bind(now)
    .fetch_one(db)
    .await?;
    Ok(OrgId(id))
}

/// Makes sure the portal has the engine's organisation `id` called `name`
/// (see the module doc); returns `OrgId(id)`. An error if the portal holds
/// that id under another name, or that name under another id.
pub async fn ensure_organisation(
    db: &SqlitePool,
    id: i64,
    name: &str,
    now: i64,
) -> Result<OrgId, AccountError> {
    let mismatch = |existing: String| AccountError::OrganisationMismatch {
        id,
        name: name.to_owned(),
        existing,
    };
    let inserted = sqlx::query(
        "INSERT INTO portal_organisations (id, name, created_at) VALUES (?, ?, ?)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(now)
    .execute(db)
    .await;
    match inserted {
        Ok(_) => {}
        // The name is taken by another id.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let other: Option<i64> =
                sqlx::query_scalar("SELECT id FROM portal_organisations WHERE name = ?")
                    .bind(name)
                    .fetch_optional(db)
                    .await?;
            return Err(mismatch(format!(
                "{name} with id {}",
                other.map_or("?".to_string(), |o| o.to_string())
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let stored: String = sqlx::query_scalar("SELECT name FROM portal_organisations WHERE id = ?")
        .bind(id)
        .fetch_one(db)
        .await?;
    if stored == name {
        Ok(OrgId(id))
    } else {
        Err(mismatch(stored))
    }
}

/// Finds an organisation by name.
pub async fn organisation_by_name(db: &SqlitePool, name: &str) -> Result<OrgId, AccountError> {
    sqlx::query_scalar("SELECT id FROM portal_organisations WHERE name = ?")
        .bind(name)
        .fetch_optional(db)
        .await?
        .map(OrgId)
        .ok_or_else(|| AccountError::NoSuchOrganisation(name.to_owned()))
}

/// Creates a user who belongs to `org` with `role` (their default
/// organisation), with a temporary password that works for 14 days and
/// must be changed at first login. Returns the user id and the password,
/// which is not stored (only its argon2id hash is).
pub async fn create_user(
    db: &SqlitePool,
    org: OrgId,
    email: &str,
    role: Role,
    actor: &str,
    now: i64,
) -> Result<(i64, TempPassword), AccountError> {
    let (password, hash) = new_temporary_password()?;
    let mut tx = db.begin().await?;
    let id = insert_user(&mut tx, org, email, role, &hash, actor, now).await?;
    tx.commit().await?;
    Ok((id, password))
}

/// A fresh temporary password and its argon2id hash: the slow part of
/// [`create_user`], done before a transaction is opened.
pub fn new_temporary_password() -> Result<(TempPassword, String), AccountError> {
    let password = TempPassword::generate();
    let hash = hash_password(password.expose())?;
    Ok((password, hash))
}

/// The rows of [`create_user`] inside the caller's transaction: the user
/// with the temporary password `hash` (from [`new_temporary_password`]),
/// their membership of `org` (also their default organisation), and the
/// audit entry `user.create`. [`AccountError::EmailTaken`] if the address
/// has an account.
pub async fn insert_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    org: OrgId,
    email: &str,
    role: Role,
    hash: &str,
    actor: &str,
    now: i64,
) -> Result<i64, AccountError> {
    let email = email.trim();
    if !valid_email(email) {
        return Err(AccountError::BadEmail(email.to_owned()));
    }
    let id: i64 = match sqlx::query_scalar(
        "INSERT INTO portal_users (email, password_hash, must_change_password, temp_expires_at,
                                   password_changed_at, default_org_id, created_at)
         VALUES (?, ?, 1, ?, ?, ?, ?) RETURNING id",
    )
    .bind(email)
    .bind(hash)
    .bind(now + TEMP_PASSWORD_LIFETIME_SECS)
    .bind(now)
    .bind(org.0)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(AccountError::EmailTaken(email.to_owned()))
        }
        Err(e) => return Err(e.into()),
    };
    sqlx::query("INSERT INTO portal_memberships (user_id, org_id, role) VALUES (?, ?, ?)")
        .bind(id)
        .bind(org.0)
        .bind(role.as_str())
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "user.create",
            target: &format!("user:{id}"),
            detail: &format!("role={role}"),
        },
    )
    .await?;
    Ok(id)
}

/// Shortest password the policy accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes (bounds the hashing work a request
/// can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The password policy: at least [`MIN_PASSWORD_CHARS`] characters, at most
/// [`MAX_PASSWORD_BYTES`] bytes, not the e-mail address, not the current
/// password (`old_hash`). The error says what to fix.
pub fn check_password_policy(
    new: &str,
    email: &str,
    old_hash: Option<&str>,
) -> Result<(), &'static str> {
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err("The new password must be at least 12 characters long.");
    }
    if new.len() > MAX_PASSWORD_BYTES {
        return Err("The new password must be at most 1024 bytes long.");
    }
    if new.trim().eq_ignore_ascii_case(email.trim()) {
        return Err("The new password must not be the e-mail address.");
    }
    if old_hash.is_some_and(|h| verify_password(new, h)) {
        return Err("The new password must differ from the current one.");
    }
    Ok(())
}

/// Sets a user's password (already checked against the policy): no longer
/// temporary, six months from `now`. Inside the caller's transaction.
pub async fn set_password(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: i64,
    password: &str,
    now: i64,
) -> Result<(), AccountError> {
    let hash = hash_password(password)?;
    sqlx::query(
        "UPDATE portal_users SET password_hash = ?, must_change_password = 0,
                temp_expires_at = NULL, password_changed_at = ? WHERE id = ?",
    )
    .bind(&hash)
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes `user_id` a member of `org` with `role` (or changes the role if it
/// already is one); audited in `org`.
pub async fn add_membership(
    db: &SqlitePool,
    user_id: i64,
    org: OrgId,
    role: Role,
    actor: &str,
    now: i64,
) -> Result<(), AccountError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO portal_memberships (user_id, org_id, role) VALUES (?, ?, ?)
         ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
    )
    .bind(user_id)
    .bind(org.0)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "user.membership",
            target: &format!("user:{user_id}"),
            detail: &format!("role={role}"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A plausibility check only: one `@` with something on both sides and no
/// spaces. Delivery is the real test.
fn valid_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn argon2id_hash_verifies() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
    }

    #[test]
    fn temp_passwords_use_the_alphabet() {
        let p = TempPassword::generate();
        assert_eq!(p.expose().len(), TEMP_PASSWORD_LEN);
        assert!(p
            .expose()
            .bytes()
            .all(|b| TEMP_PASSWORD_ALPHABET.contains(&b)));
        assert_ne!(p, TempPassword::generate());
        assert!(!format!("{p:?}").contains(p.expose()));
    }

    #[tokio::test]
    async fn portal_organisations_take_the_engine_id_and_name() {
        let db = crate::db::open_in_memory().await.unwrap();
        assert_eq!(
            ensure_organisation(&db, 7, "Acme", 1).await.unwrap(),
            OrgId(7)
        );
        // Again: the same row.
        assert_eq!(
            ensure_organisation(&db, 7, "Acme", 2).await.unwrap(),
            OrgId(7)
        );
        assert_eq!(organisation_by_name(&db, "Acme").await.unwrap(), OrgId(7));
        // The id under another name, the name under another id.
        for (id, name) in [(7, "Other"), (8, "Acme")] {
            let err = ensure_organisation(&db, id, name, 3).await.unwrap_err();
            assert!(
                matches!(err, AccountError::OrganisationMismatch { .. }),
                "{err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn password_policy() {
        let old = hash_password("the old password").unwrap();
        let ok = |p: &str| check_password_policy(p, "ann@example.org", Some(&old));
        assert!(ok("a fine new password").is_ok());
        assert!(ok("short").is_err());
        assert!(ok("elevenchars").is_err());
        assert!(ok("twelve chars").is_ok());
        assert!(ok("the old password").is_err());
        assert!(ok("ANN@example.org").is_err());
        assert!(ok(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn emails() {
        assert!(valid_email("a@b.example"));
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b@c"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
