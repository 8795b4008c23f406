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
                "A valid API key is required in the X-AUTH-TOKEN header.".to_owned(),
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
        res
    }
}
