//! Logging in and out, second factors, organisation switching, password
//! change, expiry and reset: the `/api/v1/auth/*` and `/api/v1/me/*`
//! account endpoints.
//!
//! A login is `POST /api/v1/auth/login` (e-mail, password). For a user with
//! a second factor it answers `second_factor_required` with a short-lived
//! cookie naming a pending login; `POST /api/v1/auth/2fa` with the code
//! then replaces it by the session cookie (a new token: a pending login's
//! cookie never becomes a session's). A temporary password (14 days) or a
//! password older than 6 months logs in to a session that may only change
//! its password (`password_change_required`); every other endpoint answers
//! 403 `password-change-required` until it does.
//!
//! Secrets (passwords, codes, tokens, TOTP seeds) are never logged: the
//! request types have no `Debug`, and the audit log names only what
//! changed.

use std::sync::OnceLock;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqlitePool};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{self, verify_password};
use crate::api::AppState;
use crate::audit;
use crate::authz::{allowed, Action, Credential, Denied, OrgId, Role};
use crate::membership::{parse_modules, Module};
use crate::problem::{ApiError, Problem};
use crate::ratelimit;
use crate::second_factor::{self as sf, Channel, Content, Outbound, SecondFactor};
use crate::session::{self, ActiveUser, AuthConfig, ClientAddr, Stage, Token, UserSession};

/// A user row, secrets included: never leaves this module.
struct User {
    id: i64,
    email: String,
    password_hash: String,
    must_change: bool,
    temp_expires_at: Option<i64>,
    password_changed_at: i64,
    default_org: Option<i64>,
    second_factor: Option<SecondFactor>,
    phone: Option<String>,
    totp_secret: Option<Vec<u8>>,
    totp_pending: Option<Vec<u8>>,
}

macro_rules! user_columns {
    () => {
        "SELECT id, email, password_hash, must_change_password, temp_expires_at,
                password_changed_at, default_org_id, second_factor, phone, totp_secret,
                totp_pending_secret FROM portal_users "
    };
}

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> sqlx::Result<User> {
    let factor: Option<String> = r.try_get("second_factor")?;
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        must_change: r.try_get("must_change_password")?,
        temp_expires_at: r.try_get("temp_expires_at")?,
        password_changed_at: r.try_get("password_changed_at")?,
        default_org: r.try_get("default_org_id")?,
        second_factor: factor.as_deref().and_then(SecondFactor::parse),
        phone: r.try_get("phone")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_pending: r.try_get("totp_pending_secret")?,
    })
}

async fn user_by_email(db: &SqlitePool, email: &str) -> sqlx::Result<Option<User>> {
    sqlx::query(concat!(user_columns!(), "WHERE email = ?"))
        .bind(email.trim())
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

async fn user_by_id(db: &SqlitePool, id: i64) -> Result<User, ApiError> {
    sqlx::query(concat!(user_columns!(), "WHERE id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(ApiError::internal)?
        .as_ref()
        .map(user_from_row)
        .transpose()
        .map_err(ApiError::internal)?
        .ok_or(ApiError::SessionExpired)
}

/// An argon2id hash no password matches, verified when the address is
/// unknown so that a wrong address costs the same time as a wrong
/// password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        accounts::hash_password(Token::generate().expose()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot make the dummy password hash");
            String::new()
        })
    })
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

fn db_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

// ---------------------------------------------------------------- views

/// One organisation the user belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub organisation_id: OrgId,
    pub name: String,
    pub role: Role,
    /// The modules the user may use in this organisation.
    pub modules: Vec<Module>,
}

/// A logged-in user's account as `GET /api/v1/me` and the login answers
/// show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub user_id: i64,
    pub email: String,
    /// Every organisation the user belongs to; the session acts in one.
    pub organisations: Vec<MembershipView>,
    /// Where a login starts (one of `organisations`; when none is set, or
    /// it is no longer one of them, the first).
    pub default_organisation_id: Option<OrgId>,
    pub second_factor: Option<SecondFactor>,
    /// Temporary or expired password: only `POST /api/v1/me/password`
    /// works until it is changed.
    pub must_change_password: bool,
    /// When the current password expires (Unix seconds).
    pub password_expires_at: i64,
    /// True from 2 weeks before `password_expires_at`.
    pub password_expiry_notice: bool,
    /// When a temporary password stops working, if it is one.
    pub temporary_password_expires_at: Option<i64>,
}

/// How a login step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    /// Logged in: the cookie names a session.
    LoggedIn,
    /// Logged in, but the password must be changed first.
    PasswordChangeRequired,
    /// The password was right; send the second factor to
    /// `POST /api/v1/auth/2fa` (with the cookie just set).
    SecondFactorRequired,
}

/// The answer of the login steps and of switch-org.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    pub status: LoginStatus,
    /// The factor asked for, with `second_factor_required`.
    pub second_factor: Option<SecondFactor>,
    /// The organisation the session acts in.
    pub organisation_id: Option<OrgId>,
    pub role: Option<Role>,
    /// When the session ends at the latest (Unix seconds); it also ends
    /// after 30 minutes without a request.
    pub session_expires_at: Option<i64>,
    pub account: Option<AccountView>,
}

/// A user's account as shown to them.
pub(crate) async fn account(
    db: &SqlitePool,
    cfg: &AuthConfig,
    user_id: i64,
    now: i64,
) -> Result<AccountView, ApiError> {
    let user = user_by_id(db, user_id).await?;
    let orgs = sqlx::query(
        "SELECT m.org_id, o.name, m.role, m.modules FROM portal_memberships m
         JOIN portal_organisations o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY m.org_id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
    .map_err(db_err)?
    .iter()
    .map(|r| {
        let role: String = r.try_get("role").map_err(db_err)?;
        Ok(MembershipView {
            organisation_id: OrgId(r.try_get("org_id").map_err(db_err)?),
            name: r.try_get("name").map_err(db_err)?,
            role: role.parse().map_err(db_err)?,
            modules: parse_modules(&r.try_get::<String, _>("modules").map_err(db_err)?),
        })
    })
    .collect::<Result<Vec<_>, ApiError>>()?;
    let expires = cfg.password_expires_at(user.password_changed_at);
    let default_organisation_id = user
        .default_org
        .map(OrgId)
        .filter(|d| orgs.iter().any(|o| o.organisation_id == *d));
    Ok(AccountView {
        user_id,
        email: user.email,
        organisations: orgs,
        default_organisation_id,
        second_factor: user.second_factor,
        must_change_password: user.must_change || now >= expires,
        password_expires_at: expires,
        password_expiry_notice: now >= expires - cfg.password_notice_secs,
        temporary_password_expires_at: user.temp_expires_at.filter(|_| user.must_change),
    })
}

async fn role_in(db: &SqlitePool, user_id: i64, org: OrgId) -> Result<Option<Role>, ApiError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM portal_memberships WHERE user_id = ? AND org_id = ?")
            .bind(user_id)
            .bind(org.0)
            .fetch_optional(db)
            .await
            .map_err(db_err)?;
    role.map(|r| r.parse().map_err(db_err)).transpose()
}

/// The organisation a login starts in: the default one if the user still
/// belongs to it, else the first they belong to.
async fn login_org(db: &SqlitePool, user: &User) -> Result<Option<OrgId>, ApiError> {
    if let Some(d) = user.default_org {
        if role_in(db, user.id, OrgId(d)).await?.is_some() {
            return Ok(Some(OrgId(d)));
        }
    }
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT org_id FROM portal_memberships WHERE user_id = ? ORDER BY org_id LIMIT 1",
    )
    .bind(user.id)
    .fetch_optional(db)
    .await
    .map_err(db_err)?;
    Ok(first.map(OrgId))
}

/// Starts a full session for `user` in `org`, audited; returns the answer
/// with its cookie. `replaces` names the pending login it completes: it is
/// deleted in the same transaction, and if it is already gone (a second
/// request with the same code won the race) nothing starts.
async fn start_session(
    state: &AppState,
    user_id: i64,
    org: OrgId,
    replaces: Option<i64>,
    how: &str,
    now: i64,
) -> Result<Response, ApiError> {
    let token = Token::generate();
    let mut tx = state.db.begin().await.map_err(db_err)?;
    if let Some(pending) = replaces {
        let claimed =
            sqlx::query("DELETE FROM portal_sessions WHERE id = ? AND stage = 'second_factor'")
                .bind(pending)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected()
                == 1;
        if !claimed {
            return Err(ApiError::SessionExpired);
        }
    }
    session::create(&mut *tx, &token, user_id, org, Stage::Active, now)
        .await
        .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor: &Credential::User(user_id).to_string(),
            action: "session.login",
            target: &format!("user:{user_id}"),
            detail: how,
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    let account = account(&state.db, &state.auth, user_id, now).await?;
    let role = role_in(&state.db, user_id, org).await?;
    let body = LoginResponse {
        status: if account.must_change_password {
            LoginStatus::PasswordChangeRequired
        } else {
            LoginStatus::LoggedIn
        },
        second_factor: None,
        organisation_id: Some(org),
        role,
        session_expires_at: Some(now + state.auth.absolute_timeout_secs),
        account: Some(account),
    };
    Ok((
        [(header::SET_COOKIE, state.auth.set_cookie(&token))],
        Json(body),
    )
        .into_response())
}

// ---------------------------------------------------------------- login

/// E-mail and password.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in, logged in with a password to change, or a second factor is required; the session cookie is set", body = LoginResponse,
         headers(("Set-Cookie" = String, description = "The session (or pending login) cookie: HttpOnly; SameSite=Strict; Secure"))),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid-credentials, or temporary-password-expired (older than 14 days)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The user belongs to no organisation", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too-many-attempts: too many failures for this user or address; see Retry-After", body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = i64, description = "Seconds to wait"))),
        (status = 503, description = "code-delivery-failed: the e-mail or SMS code could not be queued", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    req: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let req = body(req)?;
    let now = state.now();
    let cfg = &state.auth;
    let ukey = ratelimit::user_key(&req.email);
    let akey = ratelimit::address_key(addr);
    if let Some(secs) = ratelimit::check(&state.db, &ukey, &akey, cfg, now)
        .await
        .map_err(db_err)?
    {
        tracing::info!(address = %akey, "login rate-limited");
        return Err(ApiError::TooManyAttempts(secs));
    }
    let user = user_by_email(&state.db, &req.email).await.map_err(db_err)?;
    let hash: &str = match &user {
        Some(u) => &u.password_hash,
        None => dummy_hash(),
    };
    let password_ok = verify_password(&req.password, hash);
    let Some(user) = user.filter(|_| password_ok) else {
        ratelimit::record_failure(&state.db, &ukey, &akey, cfg, now)
            .await
            .map_err(db_err)?;
        tracing::info!(address = %akey, "login refused: bad credentials");
        return Err(ApiError::InvalidCredentials);
    };
    if user.must_change && user.temp_expires_at.is_some_and(|t| now >= t) {
        tracing::info!(
            user_id = user.id,
            "login refused: temporary password expired"
        );
        return Err(ApiError::TemporaryPasswordExpired);
    }
    let org = login_org(&state.db, &user)
        .await?
        .ok_or(ApiError::Forbidden(Denied::NotAMember))?;
    ratelimit::clear_user(&state.db, &ukey)
        .await
        .map_err(db_err)?;
    session::prune(&state.db, cfg, now).await.map_err(db_err)?;
    let Some(factor) = user.second_factor else {
        return start_session(&state, user.id, org, None, "password", now).await;
    };
    // The second step: a pending login, and for e-mail or SMS its code.
    let token = Token::generate();
    let sid = session::create(&state.db, &token, user.id, org, Stage::SecondFactor, now)
        .await
        .map_err(db_err)?;
    let channel = match factor {
        SecondFactor::Totp => None,
        SecondFactor::Email => Some(Channel::Email(user.email.clone())),
        SecondFactor::Sms => user.phone.clone().map(Channel::Sms),
    };
    if factor != SecondFactor::Totp {
        let sent = match channel {
            Some(channel) => {
                let code = sf::generate_code();
                sqlx::query(
                    "UPDATE portal_sessions SET code_hash = ?, code_expires_at = ? WHERE id = ?",
                )
                .bind(sf::code_hash(&token, &code))
                .bind(now + cfg.second_factor_timeout_secs)
                .bind(sid)
                .execute(&state.db)
                .await
                .map_err(db_err)?;
                let msg = Outbound {
                    user_id: user.id,
                    channel,
                    content: Content::LoginCode {
                        code,
                        valid_secs: cfg.second_factor_timeout_secs,
                    },
                };
                state.codes.send(&msg).await
            }
            None => Err(sf::SendError("no phone number for SMS".to_owned())),
        };
        if let Err(e) = sent {
            tracing::warn!(user_id = user.id, error = %e, "login code not sent");
            session::delete(&state.db, sid).await.map_err(db_err)?;
            return Err(ApiError::CodeDeliveryFailed);
        }
    }
    let body = LoginResponse {
        status: LoginStatus::SecondFactorRequired,
        second_factor: Some(factor),
        organisation_id: None,
        role: None,
        session_expires_at: Some(now + cfg.second_factor_timeout_secs),
        account: None,
    };
    Ok(([(header::SET_COOKIE, cfg.set_cookie(&token))], Json(body)).into_response())
}

/// A second-factor code.
#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// 6 digits.
    pub code: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/2fa", tag = "auth",
    security(("session" = [])),
    request_body = CodeRequest,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 200, description = "Logged in; a new session cookie replaces the pending login's", body = LoginResponse,
         headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, description = "Bad request body, or the cookie names no pending login", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "invalid-code (wrong, expired or replayed), or session-expired (no pending login, or it timed out or ran out of attempts)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too-many-attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn second_factor(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    method: Method,
    headers: HeaderMap,
    req: Result<Json<CodeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let cfg = &state.auth;
    let token =
        session::cookie_token(&headers, cfg.cookie_name()).ok_or(ApiError::SessionExpired)?;
    session::check_csrf(&method, &headers)?;
    let req = body(req)?;
    let now = state.now();
    let row = session::find(&state.db, &token)
        .await
        .map_err(db_err)?
        .ok_or(ApiError::SessionExpired)?;
    if row.stage != Stage::SecondFactor {
        return Err(ApiError::BadRequest(
            "This session is already logged in.".to_owned(),
        ));
    }
    if row.expired(cfg, now) || row.code_attempts >= cfg.code_attempts {
        session::delete(&state.db, row.id).await.map_err(db_err)?;
        return Err(ApiError::SessionExpired);
    }
    let user = user_by_id(&state.db, row.user_id).await?;
    let ukey = ratelimit::user_key(&user.email);
    let akey = ratelimit::address_key(addr);
    if let Some(secs) = ratelimit::check(&state.db, &ukey, &akey, cfg, now)
        .await
        .map_err(db_err)?
    {
        return Err(ApiError::TooManyAttempts(secs));
    }
    let ok = match user.second_factor {
        Some(SecondFactor::Totp) => match user
            .totp_secret
            .as_deref()
            .and_then(|s| sf::totp_check(s, &req.code, now))
        {
            // Accept each step once: the update succeeds only if this step
            // is later than the last one accepted.
            Some(step) => {
                sqlx::query(
                    "UPDATE portal_users SET totp_last_step = ?
                     WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)",
                )
                .bind(step)
                .bind(user.id)
                .bind(step)
                .execute(&state.db)
                .await
                .map_err(db_err)?
                .rows_affected()
                    == 1
            }
            None => false,
        },
        Some(SecondFactor::Email | SecondFactor::Sms) => {
            row.code_expires_at.is_some_and(|t| now < t)
                && row
                    .code_hash
                    .as_deref()
                    .is_some_and(|h| sf::code_matches(&token, &req.code, h))
        }
        None => false,
    };
    if !ok {
        sqlx::query("UPDATE portal_sessions SET code_attempts = code_attempts + 1 WHERE id = ?")
            .bind(row.id)
            .execute(&state.db)
            .await
            .map_err(db_err)?;
        if row.code_attempts + 1 >= cfg.code_attempts {
            session::delete(&state.db, row.id).await.map_err(db_err)?;
        }
        ratelimit::record_failure(&state.db, &ukey, &akey, cfg, now)
            .await
            .map_err(db_err)?;
        tracing::info!(user_id = user.id, "second factor refused");
        return Err(ApiError::InvalidCode);
    }
    ratelimit::clear_user(&state.db, &ukey)
        .await
        .map_err(db_err)?;
    let how = format!(
        "password+{}",
        user.second_factor.map_or("none", SecondFactor::as_str)
    );
    start_session(&state, user.id, row.org, Some(row.id), &how, now).await
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    security(("session" = []), ()),
    params(("X-Dialcast-CSRF" = Option<String>, Header, description = "Any non-empty value (CSRF guard); needed when the session cookie is sent")),
    responses(
        (status = 204, description = "The session (if any) is ended and the cookie cleared",
         headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 403, description = "csrf-header-missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cfg = &state.auth;
    if let Some(token) = session::cookie_token(&headers, cfg.cookie_name()) {
        session::check_csrf(&method, &headers)?;
        if let Some(row) = session::find(&state.db, &token).await.map_err(db_err)? {
            let now = state.now();
            let mut tx = state.db.begin().await.map_err(db_err)?;
            session::delete(&mut *tx, row.id).await.map_err(db_err)?;
            audit::record(
                &mut tx,
                audit::Entry {
                    org: row.org,
                    at: now,
                    actor: &Credential::User(row.user_id).to_string(),
                    action: "session.logout",
                    target: &format!("user:{}", row.user_id),
                    detail: "",
                },
            )
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cfg.clear_cookie())],
    )
        .into_response())
}

/// The organisation to act in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SwitchOrg {
    pub organisation_id: OrgId,
}

#[utoipa::path(
    post, path = "/api/v1/auth/switch-org", tag = "auth",
    security(("session" = [])),
    request_body = SwitchOrg,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 200, description = "The session now acts in that organisation", body = LoginResponse),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or it expired", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a member of that organisation, password-change-required, or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn switch_org(
    State(state): State<AppState>,
    ActiveUser(s): ActiveUser,
    req: Result<Json<SwitchOrg>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiError> {
    allowed(&s.principal(), Action::SwitchOrganisation, s.org)?;
    let req = body(req)?;
    let now = state.now();
    let role = role_in(&state.db, s.user_id, req.organisation_id)
        .await?
        .ok_or(ApiError::Forbidden(Denied::NotAMember))?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    sqlx::query("UPDATE portal_sessions SET org_id = ? WHERE id = ?")
        .bind(req.organisation_id.0)
        .bind(s.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: req.organisation_id,
            at: now,
            actor: &Credential::User(s.user_id).to_string(),
            action: "session.switch_org",
            target: &format!("user:{}", s.user_id),
            // Not the organisation switched from: this row is read by the
            // managers of the one switched to, who need not learn it.
            detail: "",
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(LoginResponse {
        status: LoginStatus::LoggedIn,
        second_factor: None,
        organisation_id: Some(req.organisation_id),
        role: Some(role),
        session_expires_at: Some(s.created_at + state.auth.absolute_timeout_secs),
        account: Some(account(&state.db, &state.auth, s.user_id, now).await?),
    }))
}

// ---------------------------------------------------------------- passwords

/// The current password and the new one.
#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    pub current_password: String,
    /// At least 12 characters, not the e-mail address, not the current
    /// password.
    pub new_password: String,
}

#[utoipa::path(
    post, path = "/api/v1/me/password", tag = "auth",
    security(("session" = [])),
    request_body = ChangePassword,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 204, description = "Changed; the user's other sessions are ended"),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or invalid-credentials (wrong current password)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "password-policy: the new password is refused", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too-many-attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    UserSession(s): UserSession,
    req: Result<Json<ChangePassword>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&s.principal(), Action::ChangeOwnPassword, s.org)?;
    let req = body(req)?;
    let now = state.now();
    let user = user_by_id(&state.db, s.user_id).await?;
    reauthenticate(&state, &user, &req.current_password, addr, now).await?;
    accounts::check_password_policy(&req.new_password, &user.email, Some(&user.password_hash))
        .map_err(|e| ApiError::PasswordPolicy(e.to_owned()))?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    accounts::set_password(&mut tx, user.id, &req.new_password, now)
        .await
        .map_err(db_err)?;
    session::delete_for_user(&mut *tx, user.id, Some(s.id))
        .await
        .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: s.org,
            at: now,
            actor: &Credential::User(user.id).to_string(),
            action: "user.password_change",
            target: &format!("user:{}", user.id),
            detail: "",
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a logged-in user's password again (for a change of password or
/// second factor); failures count towards the login rate limits.
async fn reauthenticate(
    state: &AppState,
    user: &User,
    password: &str,
    addr: Option<std::net::IpAddr>,
    now: i64,
) -> Result<(), ApiError> {
    let ukey = ratelimit::user_key(&user.email);
    let akey = ratelimit::address_key(addr);
    if let Some(secs) = ratelimit::check(&state.db, &ukey, &akey, &state.auth, now)
        .await
        .map_err(db_err)?
    {
        return Err(ApiError::TooManyAttempts(secs));
    }
    if !verify_password(password, &user.password_hash) {
        ratelimit::record_failure(&state.db, &ukey, &akey, &state.auth, now)
            .await
            .map_err(db_err)?;
        return Err(ApiError::InvalidCredentials);
    }
    Ok(())
}

/// Unused, unexpired reset links a user may have at once.
pub const MAX_LIVE_RESET_LINKS: i64 = 3;

/// An address that may have forgotten its password.
#[derive(Deserialize, ToSchema)]
pub struct ForgotRequest {
    pub email: String,
}

/// The same answer whatever the address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub message: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/forgot", tag = "auth",
    request_body = ForgotRequest,
    responses(
        (status = 202, description = "Always the same answer: if the address has an account, a reset link valid 30 minutes was sent to it", body = Accepted),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn forgot(
    State(state): State<AppState>,
    req: Result<Json<ForgotRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let req = body(req)?;
    let now = state.now();
    let cfg = &state.auth;
    let user = user_by_email(&state.db, &req.email).await.map_err(db_err)?;
    // Links that have expired go (a day late, so that a late click still
    // finds its row and gets "expired", not "unknown").
    sqlx::query("DELETE FROM portal_password_resets WHERE expires_at <= ?")
        .bind(now - 24 * 3600)
        .execute(&state.db)
        .await
        .map_err(db_err)?;
    // At most a few live links per user: more requests are answered the
    // same but send nothing, so the form cannot flood someone's mailbox.
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM portal_password_resets
         WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(user.as_ref().map(|u| u.id))
    .bind(now)
    .fetch_one(&state.db)
    .await
    .map_err(db_err)?;
    let user = user.filter(|_| live < MAX_LIVE_RESET_LINKS);
    // The same row is written whether or not the address exists (with no
    // user for an unknown one), so both answers cost the same database
    // work; only a known address adds the outbox hand-over. No argon2
    // work is done on either path (nothing is verified here), so there is
    // none to balance.
    let token = Token::generate();
    sqlx::query(
        "INSERT INTO portal_password_resets (token_hash, user_id, created_at, expires_at)
         VALUES (?, ?, ?, ?)",
    )
    .bind(token.hash())
    .bind(user.as_ref().map(|u| u.id))
    .bind(now)
    .bind(now + cfg.reset_lifetime_secs)
    .execute(&state.db)
    .await
    .map_err(db_err)?;
    if let Some(user) = user {
        let msg = Outbound {
            user_id: user.id,
            channel: Channel::Email(user.email.clone()),
            content: Content::PasswordReset {
                link: format!("{}?token={}", cfg.reset_url, token.expose()),
                valid_secs: cfg.reset_lifetime_secs,
            },
        };
        if let Err(e) = state.codes.send(&msg).await {
            tracing::warn!(user_id = user.id, error = %e, "password reset link not sent");
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            message:
                "If this address belongs to an account, a password reset link has been sent to it."
                    .to_owned(),
        }),
    ))
}

/// The token from the reset link and the new password.
#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    pub token: String,
    pub new_password: String,
}

#[utoipa::path(
    post, path = "/api/v1/auth/reset", tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 204, description = "The password is set; every session of the user is ended"),
        (status = 400, description = "Bad request body, or invalid-reset-token (unknown, used or expired)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "password-policy: the new password is refused", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn reset(
    State(state): State<AppState>,
    req: Result<Json<ResetRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let req = body(req)?;
    let now = state.now();
    let token = Token::parse(req.token.trim()).ok_or(ApiError::InvalidResetToken)?;
    let row = sqlx::query(
        "SELECT id, user_id, expires_at, used_at FROM portal_password_resets WHERE token_hash = ?",
    )
    .bind(token.hash())
    .fetch_optional(&state.db)
    .await
    .map_err(db_err)?
    .ok_or(ApiError::InvalidResetToken)?;
    let id: i64 = row.try_get("id").map_err(db_err)?;
    let user_id: Option<i64> = row.try_get("user_id").map_err(db_err)?;
    let expires_at: i64 = row.try_get("expires_at").map_err(db_err)?;
    let used_at: Option<i64> = row.try_get("used_at").map_err(db_err)?;
    let Some(user_id) = user_id.filter(|_| used_at.is_none() && now < expires_at) else {
        return Err(ApiError::InvalidResetToken);
    };
    let user = user_by_id(&state.db, user_id).await?;
    accounts::check_password_policy(&req.new_password, &user.email, Some(&user.password_hash))
        .map_err(|e| ApiError::PasswordPolicy(e.to_owned()))?;
    let org = login_org(&state.db, &user).await?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    let claimed = sqlx::query(
        "UPDATE portal_password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected()
        == 1;
    if !claimed {
        return Err(ApiError::InvalidResetToken);
    }
    // Every other link of this user dies too.
    sqlx::query(
        "UPDATE portal_password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL",
    )
    .bind(now)
    .bind(user.id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    accounts::set_password(&mut tx, user.id, &req.new_password, now)
        .await
        .map_err(db_err)?;
    session::delete_for_user(&mut *tx, user.id, None)
        .await
        .map_err(db_err)?;
    if let Some(org) = org {
        audit::record(
            &mut tx,
            audit::Entry {
                org,
                at: now,
                actor: &Credential::User(user.id).to_string(),
                action: "user.password_reset",
                target: &format!("user:{}", user.id),
                detail: "",
            },
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    ratelimit::clear_user(&state.db, &ratelimit::user_key(&user.email))
        .await
        .map_err(db_err)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- 2FA enrolment

/// The password again, to prove it is the user at the keyboard.
#[derive(Deserialize, ToSchema)]
pub struct Reauth {
    pub password: String,
}

/// A new TOTP seed, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrolment {
    /// For authenticator apps (as a QR code).
    pub otpauth_uri: String,
    /// The seed in base32, for typing in.
    pub secret: String,
}

#[utoipa::path(
    post, path = "/api/v1/me/2fa/totp", tag = "auth",
    security(("session" = [])),
    request_body = Reauth,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 200, description = "A new seed, shown once; confirm it with a first code", body = TotpEnrolment),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or invalid-credentials (wrong password)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too-many-attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn totp_enrol(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ActiveUser(s): ActiveUser,
    req: Result<Json<Reauth>, JsonRejection>,
) -> Result<Json<TotpEnrolment>, ApiError> {
    allowed(&s.principal(), Action::ManageOwnSecondFactor, s.org)?;
    let req = body(req)?;
    let now = state.now();
    let user = user_by_id(&state.db, s.user_id).await?;
    reauthenticate(&state, &user, &req.password, addr, now).await?;
    let secret = sf::generate_totp_secret();
    let (otpauth_uri, b32) = sf::totp_uri(&secret, &user.email, &state.auth.totp_issuer)
        .ok_or_else(|| ApiError::internal("cannot build the otpauth URI"))?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    sqlx::query("UPDATE portal_users SET totp_pending_secret = ? WHERE id = ?")
        .bind(&secret)
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: s.org,
            at: now,
            actor: &Credential::User(user.id).to_string(),
            action: "user.totp_enrol",
            target: &format!("user:{}", user.id),
            detail: "started",
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(Json(TotpEnrolment {
        otpauth_uri,
        secret: b32,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/me/2fa/totp/confirm", tag = "auth",
    security(("session" = [])),
    request_body = CodeRequest,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 204, description = "TOTP is now the user's second factor"),
        (status = 400, description = "Bad request body, or no enrolment pending", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or invalid-code", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn totp_confirm(
    State(state): State<AppState>,
    ActiveUser(s): ActiveUser,
    req: Result<Json<CodeRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&s.principal(), Action::ManageOwnSecondFactor, s.org)?;
    let req = body(req)?;
    let now = state.now();
    let user = user_by_id(&state.db, s.user_id).await?;
    let pending = user
        .totp_pending
        .ok_or_else(|| ApiError::BadRequest("No TOTP enrolment is pending.".to_owned()))?;
    let step = sf::totp_check(&pending, &req.code, now).ok_or(ApiError::InvalidCode)?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    sqlx::query(
        "UPDATE portal_users SET second_factor = 'totp', totp_secret = totp_pending_secret,
                totp_pending_secret = NULL, totp_last_step = ? WHERE id = ?",
    )
    .bind(step)
    .bind(user.id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: s.org,
            at: now,
            actor: &Credential::User(user.id).to_string(),
            action: "user.second_factor",
            target: &format!("user:{}", user.id),
            detail: "totp",
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A code sent by e-mail (to the login address) or SMS as second factor.
#[derive(Deserialize, ToSchema)]
pub struct CodeFactorRequest {
    /// The password again.
    pub password: String,
    /// `email` or `sms`.
    pub channel: SecondFactor,
    /// E.164 number, for `sms`.
    #[serde(default)]
    pub phone: Option<String>,
}

/// A plausible E.164 number: `+` and 8 to 15 digits.
fn e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

#[utoipa::path(
    post, path = "/api/v1/me/2fa/code", tag = "auth",
    security(("session" = [])),
    request_body = CodeFactorRequest,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 204, description = "Codes by e-mail or SMS are now the user's second factor"),
        (status = 400, description = "Bad request body, channel totp, or no valid phone for sms", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or invalid-credentials (wrong password)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too-many-attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn code_factor(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ActiveUser(s): ActiveUser,
    req: Result<Json<CodeFactorRequest>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&s.principal(), Action::ManageOwnSecondFactor, s.org)?;
    let req = body(req)?;
    let now = state.now();
    let phone = match req.channel {
        SecondFactor::Totp => {
            return Err(ApiError::BadRequest(
                "Enrol TOTP with POST /api/v1/me/2fa/totp.".to_owned(),
            ))
        }
        SecondFactor::Email => None,
        SecondFactor::Sms => Some(
            req.phone
                .as_deref()
                .map(str::trim)
                .filter(|p| e164(p))
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "SMS codes need a phone number in E.164 form (+31612345678).".to_owned(),
                    )
                })?,
        ),
    };
    let user = user_by_id(&state.db, s.user_id).await?;
    reauthenticate(&state, &user, &req.password, addr, now).await?;
    let mut tx = state.db.begin().await.map_err(db_err)?;
    sqlx::query("UPDATE portal_users SET second_factor = ?, phone = ? WHERE id = ?")
        .bind(req.channel.as_str())
        .bind(phone)
        .bind(user.id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: s.org,
            at: now,
            actor: &Credential::User(user.id).to_string(),
            action: "user.second_factor",
            target: &format!("user:{}", user.id),
            detail: req.channel.as_str(),
        },
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The login and own-account routes, for the API router.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(second_factor))
        .routes(routes!(logout))
        .routes(routes!(switch_org))
        .routes(routes!(forgot))
        .routes(routes!(reset))
        .routes(routes!(change_password))
        .routes(routes!(totp_enrol))
        .routes(routes!(totp_confirm))
        .routes(routes!(code_factor))
}
