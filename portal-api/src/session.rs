//! Login sessions: their configuration, the cookie, the random token and
//! its stored hash, the idle and absolute timeouts, and the CSRF rule.
//!
//! # The cookie
//! A session is named by a 256-bit random token, sent as the cookie
//! [`AuthConfig::cookie_name`] with `HttpOnly; SameSite=Strict; Path=/`
//! and, unless [`AuthConfig::secure_cookies`] is off, `Secure` (the name is
//! then `__Host-dialcast_session`, which browsers accept only with
//! `Secure`, `Path=/` and no `Domain`). Only the token's SHA-256 is stored:
//! the token is high-entropy, so a fast hash is right (as for API keys).
//!
//! # Timeouts
//! A session ends [`DEFAULT_IDLE_TIMEOUT_SECS`] (30 min) after its last
//! request and [`DEFAULT_ABSOLUTE_TIMEOUT_SECS`] (12 h) after login,
//! whichever comes first. A login waiting for its second factor lasts
//! [`DEFAULT_SECOND_FACTOR_TIMEOUT_SECS`] (5 min).
//!
//! # CSRF
//! Requests that change something (any method but GET, HEAD and OPTIONS)
//! and carry the session cookie must also carry the header
//! [`CSRF_HEADER`] (`X-Dialcast-CSRF`, any non-empty value). A page of
//! another site cannot send a custom header without a CORS preflight, and
//! the portal answers no preflight; `SameSite=Strict` already keeps the
//! cookie off cross-site requests, so the header is the second, independent
//! guard (it also covers a sibling subdomain, which counts as same-site).
//! Origin checking was not chosen because it needs the public origin in the
//! configuration and some clients omit the header. Requests with
//! `X-AUTH-TOKEN` need no CSRF header: browsers never add that header by
//! themselves. Login itself takes only `application/json`, which a
//! cross-site form cannot send.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use crate::api::AppState;
use crate::authz::{Credential, OrgId, Principal, Role};
use crate::problem::ApiError;

/// Default idle timeout: 30 minutes.
pub const DEFAULT_IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// Default absolute timeout: 12 hours.
pub const DEFAULT_ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 3600;
/// How long a login may wait for its second factor, and how long an e-mail
/// or SMS code works: 5 minutes.
pub const DEFAULT_SECOND_FACTOR_TIMEOUT_SECS: i64 = 5 * 60;
/// Wrong second-factor codes a pending login may give before it is dropped.
pub const DEFAULT_CODE_ATTEMPTS: i64 = 5;
/// How long a password-reset link works: 30 minutes.
pub const DEFAULT_RESET_LIFETIME_SECS: i64 = 30 * 60;
/// How long a password works: 6 months (183 days).
pub const DEFAULT_PASSWORD_LIFETIME_SECS: i64 = 183 * 24 * 3600;
/// From how long before expiry the password-expiry notice shows: 2 weeks.
pub const DEFAULT_PASSWORD_NOTICE_SECS: i64 = 14 * 24 * 3600;
/// Failed logins per user (e-mail given) in the window before 429.
pub const DEFAULT_USER_FAILURES: i64 = 5;
/// Failed logins per client address in the window before 429.
pub const DEFAULT_ADDRESS_FAILURES: i64 = 20;
/// The sliding window the failures are counted in: 15 minutes.
pub const DEFAULT_FAILURE_WINDOW_SECS: i64 = 15 * 60;

/// The header a cookie-authenticated, state-changing request must carry.
pub const CSRF_HEADER: &str = "x-dialcast-csrf";
/// The cookie's name when `secure_cookies` is on.
pub const SECURE_COOKIE_NAME: &str = "__Host-dialcast_session";
/// The cookie's name on plain-HTTP loopback development.
pub const PLAIN_COOKIE_NAME: &str = "dialcast_session";
/// Random bytes in a session or reset token.
const TOKEN_BYTES: usize = 32;

/// The login settings, part of the binary's configuration (`[portal.auth]`);
/// every field has the documented default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Mark the cookie `Secure`. Leave on (the default) whenever the portal
    /// is reached over TLS, including behind a TLS-terminating proxy; turn
    /// off only for plain-HTTP development on loopback (see
    /// [`AuthConfig::check`]).
    pub secure_cookies: bool,
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
    pub second_factor_timeout_secs: i64,
    pub code_attempts: i64,
    pub reset_lifetime_secs: i64,
    pub password_lifetime_secs: i64,
    pub password_notice_secs: i64,
    pub user_failures: i64,
    pub address_failures: i64,
    pub failure_window_secs: i64,
    /// The page a reset link opens; the token is appended as `?token=`.
    pub reset_url: String,
    /// The issuer shown in authenticator apps.
    pub totp_issuer: String,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            secure_cookies: true,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            absolute_timeout_secs: DEFAULT_ABSOLUTE_TIMEOUT_SECS,
            second_factor_timeout_secs: DEFAULT_SECOND_FACTOR_TIMEOUT_SECS,
            code_attempts: DEFAULT_CODE_ATTEMPTS,
            reset_lifetime_secs: DEFAULT_RESET_LIFETIME_SECS,
            password_lifetime_secs: DEFAULT_PASSWORD_LIFETIME_SECS,
            password_notice_secs: DEFAULT_PASSWORD_NOTICE_SECS,
            user_failures: DEFAULT_USER_FAILURES,
            address_failures: DEFAULT_ADDRESS_FAILURES,
            failure_window_secs: DEFAULT_FAILURE_WINDOW_SECS,
            reset_url: "/reset-password".to_owned(),
            totp_issuer: "Dialcast".to_owned(),
        }
    }
}

/// A configuration the binary must refuse at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("secure_cookies = false is only for plain-HTTP development on loopback, not {0}")]
    PlainCookiesOffLoopback(SocketAddr),
    #[error("{0} must be greater than zero")]
    NotPositive(&'static str),
    #[error("idle_timeout_secs must not exceed absolute_timeout_secs")]
    IdleAboveAbsolute,
}

impl AuthConfig {
    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_COOKIE_NAME
        } else {
            PLAIN_COOKIE_NAME
        }
    }

    /// Checks the settings for serving on `listen`: every duration and
    /// limit positive, and `secure_cookies = false` only on a loopback
    /// address (a cookie without `Secure` must never cross a network).
    pub fn check(&self, listen: SocketAddr) -> Result<(), AuthConfigError> {
        for (name, v) in [
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("absolute_timeout_secs", self.absolute_timeout_secs),
            (
                "second_factor_timeout_secs",
                self.second_factor_timeout_secs,
            ),
            ("code_attempts", self.code_attempts),
            ("reset_lifetime_secs", self.reset_lifetime_secs),
            ("password_lifetime_secs", self.password_lifetime_secs),
            ("password_notice_secs", self.password_notice_secs),
            ("user_failures", self.user_failures),
            ("address_failures", self.address_failures),
            ("failure_window_secs", self.failure_window_secs),
        ] {
            if v <= 0 {
                return Err(AuthConfigError::NotPositive(name));
            }
        }
        if self.idle_timeout_secs > self.absolute_timeout_secs {
            return Err(AuthConfigError::IdleAboveAbsolute);
        }
        if !self.secure_cookies && !listen.ip().is_loopback() {
            return Err(AuthConfigError::PlainCookiesOffLoopback(listen));
        }
        Ok(())
    }

    /// The `Set-Cookie` value that starts a session.
    pub fn set_cookie(&self, token: &Token) -> String {
        format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
            self.cookie_name(),
            token.0,
            self.absolute_timeout_secs,
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
            self.cookie_name(),
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// When a password set at `changed_at` expires.
    pub fn password_expires_at(&self, changed_at: i64) -> i64 {
        changed_at + self.password_lifetime_secs
    }
}

/// A random 256-bit token (session or reset), as 64 hex digits. `Debug`
/// hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Token(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A presented value, if it has the shape of a token.
    pub fn parse(s: &str) -> Option<Token> {
        (s.len() == TOKEN_BYTES * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Token(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token: what is stored.
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The session cookie's value in `headers`, if any.
pub fn cookie_token(headers: &HeaderMap, name: &str) -> Option<Token> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| Token::parse(v.trim()))
}

/// Whether a request with this method changes something.
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Refuses a state-changing request that lacks the CSRF header.
pub fn check_csrf(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if changes_state(method)
        && headers
            .get(CSRF_HEADER)
            .is_none_or(|v| v.as_bytes().is_empty())
    {
        return Err(ApiError::CsrfHeaderMissing);
    }
    Ok(())
}

/// The stage of a session row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password right, second factor awaited.
    SecondFactor,
    /// Logged in.
    Active,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::Active => "active",
        }
    }
}

/// Creates a session row; returns its id. The caller sends the token.
pub async fn create(
    db: impl sqlx::SqliteExecutor<'_>,
    token: &Token,
    user_id: i64,
    org: OrgId,
    stage: Stage,
    now: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO portal_sessions (token_hash, user_id, org_id, stage, created_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(token.hash())
    .bind(user_id)
    .bind(org.0)
    .bind(stage.as_str())
    .bind(now)
    .bind(now)
    .fetch_one(db)
    .await
}

/// A session row as read for a request.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub org: OrgId,
    pub stage: Stage,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires_at: Option<i64>,
    pub code_attempts: i64,
}

/// The session named by `token`, if there is one.
pub async fn find(db: &SqlitePool, token: &Token) -> sqlx::Result<Option<SessionRow>> {
    let Some(r) = sqlx::query(
        "SELECT id, user_id, org_id, stage, created_at, last_seen_at, code_hash,
                code_expires_at, code_attempts
         FROM portal_sessions WHERE token_hash = ?",
    )
    .bind(token.hash())
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let stage: String = r.try_get("stage")?;
    Ok(Some(SessionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        org: OrgId(r.try_get("org_id")?),
        stage: if stage == "active" {
            Stage::Active
        } else {
            Stage::SecondFactor
        },
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get("code_attempts")?,
    }))
}

/// Deletes the sessions that have ended by `now` but were never presented
/// again (called at each login, so the table holds only live sessions and
/// the last few minutes' leftovers).
pub async fn prune(db: &SqlitePool, cfg: &AuthConfig, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM portal_sessions
         WHERE created_at <= ? OR (stage = 'active' AND last_seen_at <= ?)
            OR (stage = 'second_factor' AND created_at <= ?)",
    )
    .bind(now - cfg.absolute_timeout_secs)
    .bind(now - cfg.idle_timeout_secs)
    .bind(now - cfg.second_factor_timeout_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes one session.
pub async fn delete(db: impl sqlx::SqliteExecutor<'_>, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes every session of a user except `keep`.
pub async fn delete_for_user(
    db: impl sqlx::SqliteExecutor<'_>,
    user_id: i64,
    keep: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE user_id = ? AND id IS NOT ?")
        .bind(user_id)
        .bind(keep)
        .execute(db)
        .await?;
    Ok(())
}

impl SessionRow {
    /// Whether the session has ended by `now` under `cfg`.
    pub fn expired(&self, cfg: &AuthConfig, now: i64) -> bool {
        match self.stage {
            Stage::SecondFactor => now - self.created_at >= cfg.second_factor_timeout_secs,
            Stage::Active => {
                now - self.last_seen_at >= cfg.idle_timeout_secs
                    || now - self.created_at >= cfg.absolute_timeout_secs
            }
        }
    }
}

/// A logged-in session as a handler sees it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: i64,
    pub user_id: i64,
    pub org: OrgId,
    pub role: Role,
    /// Temporary or expired password: only a password change is allowed.
    pub must_change: bool,
    pub created_at: i64,
    pub token: Token,
}

/// Reads the session cookie of a request: `Ok(None)` without one; an
/// error if it names no live, fully logged-in session, or if the request
/// changes state without the CSRF header. A live session's last-seen time
/// is brought up to date.
pub async fn from_parts(parts: &Parts, state: &AppState) -> Result<Option<LiveSession>, ApiError> {
    let cfg = &state.auth;
    let Some(token) = cookie_token(&parts.headers, cfg.cookie_name()) else {
        return Ok(None);
    };
    check_csrf(&parts.method, &parts.headers)?;
    let now = (state.clock)();
    let row = find(&state.db, &token)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::SessionExpired)?;
    if row.expired(cfg, now) {
        delete(&state.db, row.id)
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::SessionExpired);
    }
    if row.stage == Stage::SecondFactor {
        return Err(ApiError::SecondFactorRequired);
    }
    let user = sqlx::query(
        "SELECT m.role, u.must_change_password, u.password_changed_at
         FROM portal_memberships m JOIN portal_users u ON u.id = m.user_id
         WHERE m.user_id = ? AND m.org_id = ?",
    )
    .bind(row.user_id)
    .bind(row.org.0)
    .fetch_optional(&state.db)
    .await
    .map_err(ApiError::internal)?;
    let Some(user) = user else {
        // The membership was removed while the session lived.
        delete(&state.db, row.id)
            .await
            .map_err(ApiError::internal)?;
        return Err(ApiError::SessionExpired);
    };
    let role: String = user.try_get("role").map_err(ApiError::internal)?;
    let role: Role = role.parse().map_err(ApiError::internal)?;
    let must_change: bool = user
        .try_get("must_change_password")
        .map_err(ApiError::internal)?;
    let changed_at: i64 = user
        .try_get("password_changed_at")
        .map_err(ApiError::internal)?;
    sqlx::query("UPDATE portal_sessions SET last_seen_at = ? WHERE id = ?")
        .bind(now)
        .bind(row.id)
        .execute(&state.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(Some(LiveSession {
        id: row.id,
        user_id: row.user_id,
        org: row.org,
        role,
        must_change: must_change || now >= cfg.password_expires_at(changed_at),
        created_at: row.created_at,
        token,
    }))
}

impl LiveSession {
    /// The session as the authorisation core sees it.
    pub fn principal(&self) -> Principal {
        Principal {
            org: self.org,
            role: self.role,
            credential: Credential::User(self.user_id),
        }
    }
}

/// A logged-in user, including one who must change the password first:
/// only `POST /api/v1/me/password` and logout take this.
#[derive(Debug, Clone)]
pub struct UserSession(pub LiveSession);

impl FromRequestParts<AppState> for UserSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        from_parts(parts, state)
            .await?
            .map(UserSession)
            .ok_or(ApiError::Unauthorised)
    }
}

/// A logged-in user whose password is in order: what every endpoint of a
/// user's own account but the password change takes.
#[derive(Debug, Clone)]
pub struct ActiveUser(pub LiveSession);

impl FromRequestParts<AppState> for ActiveUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let s = from_parts(parts, state)
            .await?
            .ok_or(ApiError::Unauthorised)?;
        if s.must_change {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(ActiveUser(s))
    }
}

/// The client's address, when the server was started with
/// `into_make_service_with_connect_info::<SocketAddr>()`; `None` otherwise
/// (then every such client shares one rate-limit bucket).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_256_bit_hex_and_hidden() {
        let t = Token::generate();
        assert_eq!(t.expose().len(), 64);
        assert_eq!(Token::parse(t.expose()), Some(t.clone()));
        assert_ne!(t, Token::generate());
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(Token::parse("abc").is_none());
        assert!(Token::parse(&t.expose().to_uppercase()).is_none());
    }

    #[test]
    fn cookie_attributes() {
        let t = Token::generate();
        let secure = AuthConfig::default();
        let c = secure.set_cookie(&t);
        assert!(c.starts_with(&format!("__Host-dialcast_session={}", t.expose())));
        for attr in ["; Path=/", "; HttpOnly", "; SameSite=Strict", "; Secure"] {
            assert!(c.contains(attr), "{c}");
        }
        let plain = AuthConfig {
            secure_cookies: false,
            ..AuthConfig::default()
        };
        assert!(!plain.set_cookie(&t).contains("Secure"));
        assert!(plain.clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn plain_cookies_only_on_loopback() {
        let plain = AuthConfig {
            secure_cookies: false,
            ..AuthConfig::default()
        };
        assert!(plain.check("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(plain.check("[::1]:8080".parse().unwrap()).is_ok());
        assert!(plain.check("0.0.0.0:8080".parse().unwrap()).is_err());
        assert!(AuthConfig::default()
            .check("0.0.0.0:8080".parse().unwrap())
            .is_ok());
        let zero = AuthConfig {
            idle_timeout_secs: 0,
            ..AuthConfig::default()
        };
        assert_eq!(
            zero.check("127.0.0.1:1".parse().unwrap()),
            Err(AuthConfigError::NotPositive("idle_timeout_secs"))
        );
    }

    #[test]
    fn cookie_is_found_among_others() {
        let t = Token::generate();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; dialcast_session={}; c=d", t.expose())).unwrap(),
        );
        assert_eq!(cookie_token(&h, PLAIN_COOKIE_NAME), Some(t));
        assert_eq!(cookie_token(&h, SECURE_COOKIE_NAME), None);
    }
}
