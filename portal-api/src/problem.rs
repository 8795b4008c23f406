//! The API's one error type, sent as RFC 9457 problem details
//! (`application/problem+json`) with stable `type` URIs. Internal errors
//! are logged in full and shown to the client only as "internal".

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authz::Denied;

/// The base of every problem `type`.
pub const PROBLEM_BASE: &str = "https://dialcast.dev/problems/";
/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// Every error an endpoint returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credential, or one that is not valid (malformed, unknown,
    /// revoked, or used from an address its allowlist does not cover).
    #[error("unauthorised")]
    Unauthorised,
    #[error("forbidden: {0}")]
    Forbidden(#[from] Denied),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Login refused: unknown address or wrong password (the client is not
    /// told which).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The temporary password is older than 14 days.
    #[error("temporary password expired")]
    TemporaryPasswordExpired,
    /// The session may only change its password (temporary or expired one).
    #[error("password change required")]
    PasswordChangeRequired,
    /// The session still awaits its second factor.
    #[error("second factor required")]
    SecondFactorRequired,
    /// A wrong, expired or replayed second-factor code.
    #[error("invalid code")]
    InvalidCode,
    /// The session cookie names no live session (timed out or logged out).
    #[error("session expired")]
    SessionExpired,
    /// A state-changing request with a session cookie lacks the CSRF header.
    #[error("csrf header missing")]
    CsrfHeaderMissing,
    /// Too many failed logins; retry after this many seconds.
    #[error("too many attempts, retry after {0} s")]
    TooManyAttempts(i64),
    /// A new password the policy refuses.
    #[error("password policy: {0}")]
    PasswordPolicy(String),
    /// A password-reset token that is unknown, used or expired.
    #[error("invalid reset token")]
    InvalidResetToken,
    /// A one-time code could not be handed to the outbox.
    #[error("code delivery failed")]
    CodeDeliveryFailed,
    /// An upload larger than the configured limit (bytes).
    #[error("upload too large (limit {0} bytes)")]
    PayloadTooLarge(u64),
    /// A request naming a campaign the organisation does not have.
    #[error("unknown campaign {0:?}")]
    UnknownCampaign(String),
    /// A request body the API understood but refuses (calendar, number).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The change conflicts with the resource's state (e.g. resuming a
    /// script that is not paused).
    #[error("wrong state: {0}")]
    Conflict(String),
    /// The change would leave the organisation without a manager.
    #[error("last manager")]
    LastManager,
    /// The account is already a member of the organisation.
    #[error("already a member")]
    AlreadyMember,
    /// A user may not remove their own membership.
    #[error("own membership")]
    OwnMembership,
    /// The portal runs without the engine's store.
    #[error("engine unavailable")]
    EngineUnavailable,
    /// Anything the client cannot fix; logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// Wraps an internal error (database, hashing) without showing it.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    /// The problem details sent for this error.
    pub fn problem(&self) -> Problem {
        let (slug, title, status, detail) = match self {
            ApiError::Unauthorised => (
                "unauthorised",
                "Unauthorised",
                StatusCode::UNAUTHORIZED,
                "A valid API key (X-AUTH-TOKEN header) or session cookie is required.".to_owned(),
            ),
            ApiError::InvalidCredentials => (
                "invalid-credentials",
                "Invalid credentials",
                StatusCode::UNAUTHORIZED,
                "The e-mail address or password is not right.".to_owned(),
            ),
            ApiError::TemporaryPasswordExpired => (
                "temporary-password-expired",
                "Temporary password expired",
                StatusCode::UNAUTHORIZED,
                "The temporary password has expired; ask a manager for a new one or use \"forgot password\"."
                    .to_owned(),
            ),
            ApiError::PasswordChangeRequired => (
                "password-change-required",
                "Password change required",
                StatusCode::FORBIDDEN,
                "The password must be changed (POST /api/v1/me/password) before anything else."
                    .to_owned(),
            ),
            ApiError::SecondFactorRequired => (
                "second-factor-required",
                "Second factor required",
                StatusCode::UNAUTHORIZED,
                "The login awaits its second factor (POST /api/v1/auth/2fa).".to_owned(),
            ),
            ApiError::InvalidCode => (
                "invalid-code",
                "Invalid code",
                StatusCode::UNAUTHORIZED,
                "The code is wrong, expired or already used.".to_owned(),
            ),
            ApiError::SessionExpired => (
                "session-expired",
                "Session expired",
                StatusCode::UNAUTHORIZED,
                "The session has ended; log in again.".to_owned(),
            ),
            ApiError::CsrfHeaderMissing => (
                "csrf-header-missing",
                "CSRF header missing",
                StatusCode::FORBIDDEN,
                "A state-changing request with a session cookie needs the X-Dialcast-CSRF header."
                    .to_owned(),
            ),
            ApiError::TooManyAttempts(secs) => (
                "too-many-attempts",
                "Too many attempts",
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed logins; try again in {secs} seconds."),
            ),
            ApiError::PasswordPolicy(d) => (
                "password-policy",
                "Password refused",
                StatusCode::UNPROCESSABLE_ENTITY,
                d.clone(),
            ),
            ApiError::InvalidResetToken => (
                "invalid-reset-token",
                "Invalid reset token",
                StatusCode::BAD_REQUEST,
                "The reset link is unknown, already used or expired.".to_owned(),
            ),
            ApiError::CodeDeliveryFailed => (
                "code-delivery-failed",
                "Code delivery failed",
                StatusCode::SERVICE_UNAVAILABLE,
                "The one-time code could not be sent; try again later.".to_owned(),
            ),
            ApiError::Forbidden(d) => (
                "forbidden",
                "Forbidden",
                StatusCode::FORBIDDEN,
                d.to_string(),
            ),
            ApiError::NotFound => (
                "not-found",
                "Not found",
                StatusCode::NOT_FOUND,
                "No such resource in this organisation.".to_owned(),
            ),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "This path does not take this method.".to_owned(),
            ),
            ApiError::BadRequest(d) => (
                "bad-request",
                "Bad request",
                StatusCode::BAD_REQUEST,
                d.clone(),
            ),
            ApiError::PayloadTooLarge(limit) => (
                "payload-too-large",
                "Upload too large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The upload is larger than this portal accepts ({limit} bytes)."),
            ),
            ApiError::UnknownCampaign(name) => (
                "unknown-campaign",
                "Unknown campaign",
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("The organisation has no campaign named {name:?}."),
            ),
            ApiError::Conflict(d) => (
                "wrong-state",
                "Wrong state",
                StatusCode::CONFLICT,
                d.clone(),
            ),
            ApiError::Invalid(d) => (
                "invalid",
                "Invalid request",
                StatusCode::UNPROCESSABLE_ENTITY,
                d.clone(),
            ),
            ApiError::LastManager => (
                "last-manager",
                "Last manager",
                StatusCode::CONFLICT,
                "The organisation must keep at least one manager.".to_owned(),
            ),
            ApiError::AlreadyMember => (
                "already-a-member",
                "Already a member",
                StatusCode::CONFLICT,
                "This e-mail address already belongs to a member of the organisation.".to_owned(),
            ),
            ApiError::OwnMembership => (
                "own-membership",
                "Own membership",
                StatusCode::CONFLICT,
                "A user cannot remove themselves from an organisation; ask another manager."
                    .to_owned(),
            ),
            ApiError::EngineUnavailable => (
                "engine-unavailable",
                "Engine unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "This portal runs without the engine's store.".to_owned(),
            ),
            ApiError::Internal(_) => (
                "internal",
                "Internal error",
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not complete the request.".to_owned(),
            ),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = %e, "portal request failed");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(problem)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let ApiError::TooManyAttempts(secs) = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}
