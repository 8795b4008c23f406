//! API keys: generation, the `dc_<prefix>_<secret>` format, hashing,
//! and their rows (create, look up, revoke, last-used).
//!
//! A key is 32 random bytes, so it cannot be guessed or brute-forced from
//! its hash; a fast hash (SHA-256) is therefore right, unlike passwords,
//! which are low-entropy and get argon2id. Only the hash is stored; the
//! key is shown once, when created. The prefix (6 random bytes, hex) is
//! public: it finds the row, and the whole key's hash is then compared in
//! constant time.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};
use subtle::ConstantTimeEq;

use crate::audit;
use crate::authz::{OrgId, Role};
use crate::cidr;

/// Random bytes in the public prefix.
const PREFIX_BYTES: usize = 6;
/// Random bytes in the secret.
const SECRET_BYTES: usize = 32;
/// `last_used_at` is written at most this often per key, in seconds, so a
/// busy key does not cost a write per request.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// A whole API key as shown to its owner once. Its `Debug` hides the
/// secret so that it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    /// Generates a new random key.
    pub fn generate() -> PlainKey {
        let mut rng = rand::rng();
        let mut prefix = [0u8; PREFIX_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut prefix);
        rng.fill_bytes(&mut secret);
        PlainKey(format!("dc_{}_{}", hex(&prefix), hex(&secret)))
    }

    /// The key, to print or send once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public prefix.
    pub fn prefix(&self) -> &str {
        parse(&self.0).map(|(p, _)| p).unwrap_or_default()
    }

    /// SHA-256 of the whole key: what is stored.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey(dc_{}_…)", self.prefix())
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Splits a presented token into (prefix, secret) if it has the shape of
/// a key: `dc_`, 12 lowercase hex digits, `_`, 64 lowercase hex digits.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("dc_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (is_hex(prefix, PREFIX_BYTES * 2) && is_hex(secret, SECRET_BYTES * 2))
        .then_some((prefix, secret))
}

/// Compares a presented token with a stored hash in constant time.
pub fn matches(token: &str, stored_hash: &[u8]) -> bool {
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    presented.ct_eq(stored_hash).into()
}

/// A key's row, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub prefix: String,
    pub org: OrgId,
    pub role: Role,
    pub name: String,
    pub cidrs: Vec<IpNet>,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// What a new key gets besides its organisation and role.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub cidrs: Vec<IpNet>,
}

/// Why a stored key could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row holds a value this code cannot parse (a broken database).
    #[error("api key {id}: bad stored {column}")]
    Corrupt { id: i64, column: &'static str },
}

/// Why a presented token was refused. The client is told only that it is
/// not a valid key; the reason is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
    AddressNotAllowed,
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKey, KeyError> {
    let id: i64 = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let cidrs: String = row.try_get("cidrs")?;
    let cidrs = if cidrs.is_empty() {
        Vec::new()
    } else {
        cidr::parse_list(&cidrs.split(',').collect::<Vec<_>>()).map_err(|_| KeyError::Corrupt {
            id,
            column: "cidrs",
        })?
    };
    Ok(ApiKey {
        id,
        prefix: row.try_get("prefix")?,
        org: OrgId(row.try_get("org_id")?),
        role: role
            .parse()
            .map_err(|_| KeyError::Corrupt { id, column: "role" })?,
        name: row.try_get("name")?,
        cidrs,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// The columns [`from_row`] reads, as a literal for `concat!` (sqlx 0.9
/// takes only static SQL strings).
macro_rules! columns {
    () => {
        "id, prefix, org_id, role, name, cidrs, created_by, created_at, revoked_at, last_used_at"
    };
}

/// Creates a key for `org` with `role`, records it in the audit log in the
/// same transaction, and returns its row and the key (shown once).
pub async fn create(
    db: &SqlitePool,
    org: OrgId,
    role: Role,
    new: NewKey,
    actor: &str,
    now: i64,
) -> Result<(ApiKey, PlainKey), KeyError> {
    let key = PlainKey::generate();
    let cidrs = new
        .cidrs
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut tx = db.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO portal_api_keys (prefix, hash, org_id, role, name, cidrs, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(key.prefix())
    .bind(&key.hash()[..])
    .bind(org.0)
    .bind(role.as_str())
    .bind(&new.name)
    .bind(&cidrs)
    .bind(actor)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "apikey.create",
            target: &format!("apikey:{id}"),
            detail: &format!("role={role} prefix={}", key.prefix()),
        },
    )
    .await?;
    tx.commit().await?;
    let row = ApiKey {
        id,
        prefix: key.prefix().to_owned(),
        org,
        role,
        name: new.name,
        cidrs: new.cidrs,
        created_by: actor.to_owned(),
        created_at: now,
        revoked_at: None,
        last_used_at: None,
    };
    Ok((row, key))
}

/// The keys of one organisation, newest first, revoked ones included.
pub async fn list(db: &SqlitePool, org: OrgId) -> Result<Vec<ApiKey>, KeyError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM portal_api_keys WHERE org_id = ? ORDER BY id DESC"
    ))
    .bind(org.0)
    .fetch_all(db)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes key `id` of `org`. Returns false if `org` has no such live key
/// (another organisation's key looks exactly like a missing one).
pub async fn revoke(
    db: &SqlitePool,
    org: OrgId,
    id: i64,
    actor: &str,
    now: i64,
) -> Result<bool, KeyError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE portal_api_keys SET revoked_at = ?
         WHERE id = ? AND org_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(org.0)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        audit::record(
            &mut tx,
            audit::Entry {
                org,
                at: now,
                actor,
                action: "apikey.revoke",
                target: &format!("apikey:{id}"),
                detail: "",
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Checks a presented token: its shape, its hash, that it is not revoked,
/// and that `client` (if known) is in its allowlist. A key with an
/// allowlist refuses a caller whose address is unknown. On success the
/// last-used time is brought up to date (at most once a minute).
pub async fn authenticate(
    db: &SqlitePool,
    token: &str,
    client: Option<IpAddr>,
    now: i64,
) -> Result<Result<ApiKey, Refused>, KeyError> {
    let Some((prefix, _)) = parse(token) else {
        return Ok(Err(Refused::Malformed));
    };
    let Some(row) = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        ", hash FROM portal_api_keys WHERE prefix = ?"
    ))
    .bind(prefix)
    .fetch_optional(db)
    .await?
    else {
        return Ok(Err(Refused::Unknown));
    };
    let hash: Vec<u8> = row.try_get("hash")?;
    if !matches(token, &hash) {
        return Ok(Err(Refused::Unknown));
    }
    let key = from_row(&row)?;
    if key.revoked_at.is_some() {
        return Ok(Err(Refused::Revoked));
    }
    let address_ok = match client {
        Some(ip) => cidr::ip_allowed(&key.cidrs, ip),
        None => key.cidrs.is_empty(),
    };
    if !address_ok {
        return Ok(Err(Refused::AddressNotAllowed));
    }
    sqlx::query(
        "UPDATE portal_api_keys SET last_used_at = ?
         WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
    )
    .bind(now)
    .bind(key.id)
    .bind(now - LAST_USED_RESOLUTION_SECS)
    .execute(db)
    .await?;
    Ok(Ok(key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = PlainKey::generate();
        let b = PlainKey::generate();
        assert_ne!(a, b);
        let (prefix, secret) = parse(a.expose()).unwrap();
        assert_eq!(prefix.len(), 12);
        assert_eq!(secret.len(), 64);
        assert_eq!(a.prefix(), prefix);
    }

    #[test]
    fn debug_hides_the_secret() {
        let k = PlainKey::generate();
        let (_, secret) = parse(k.expose()).unwrap();
        assert!(!format!("{k:?}").contains(secret));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let good = PlainKey::generate();
        let g = good.expose();
        for bad in [
            "",
            "dc_",
            &g[1..],
            &g[..g.len() - 1],
            &g.replace("dc_", "xx_"),
            &g.to_uppercase(),
            &format!("{g}0"),
            "dc_zzzzzzzzzzzz_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn hash_matches_only_its_key() {
        let a = PlainKey::generate();
        let b = PlainKey::generate();
        assert!(matches(a.expose(), &a.hash()));
        assert!(!matches(b.expose(), &a.hash()));
        assert!(!matches(a.expose(), &a.hash()[..31]));
    }
}
