//! The calls list (search by number, RECORD_ID, date range and status,
//! newest first, keyset-paginated) and voicelog playback (`audio/wav` with
//! HTTP Range, so a browser's audio element can seek). Manager only.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use dialcast_engine::store::sqlite::portal::{CallFilter, CallRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::authz::{allowed, Action, Principal};
use crate::files::{engine, engine_org, serve_file};
use crate::listing;
use crate::problem::{ApiError, Problem};

/// Attempts per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;
/// Most attempts per page.
const MAX_PAGE: u32 = 500;

/// Filters of the calls list; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallQuery {
    /// The number dialled, E.164 (`+31201234567`).
    pub number: Option<String>,
    /// The record's RECORD_ID.
    pub record_id: Option<String>,
    /// Started at or after: RFC 3339, or a date (`YYYY-MM-DD`, UTC midnight).
    pub from: Option<String>,
    /// Started before: RFC 3339, or a date (UTC midnight).
    pub to: Option<String>,
    /// A call status: success, forwarded, voicemail, answered_no_success,
    /// no_answer, busy, rejected, unavailable, invalid_number, blocked,
    /// failed, interrupted.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Attempts per page (1 to 500, default 100).
    pub limit: Option<u32>,
}

/// One call attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallView {
    /// The attempt's id (voicelog: `/api/v1/calls/{attempt_id}/voicelog`).
    pub attempt_id: i64,
    pub campaign: String,
    pub record_id: String,
    /// Which attempt of the record (1-based).
    pub attempt_no: i64,
    pub number: String,
    /// `out` or `in`.
    pub direction: String,
    pub state: String,
    pub status: Option<String>,
    pub sip_code: Option<i64>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub ring_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub success_point: bool,
    /// Whether the call was recorded.
    pub has_voicelog: bool,
}

impl From<CallRow> for CallView {
    fn from(c: CallRow) -> Self {
        CallView {
            attempt_id: c.attempt_id,
            campaign: c.campaign,
            record_id: c.record_id,
            attempt_no: c.attempt_no,
            number: c.number,
            direction: c.direction,
            state: c.state,
            status: c.status,
            sip_code: c.sip_code,
            started_at: c.started_at,
            ended_at: c.ended_at,
            ring_ms: c.ring_ms,
            talk_ms: c.talk_ms,
            success_point: c.success_point,
            has_voicelog: c.voicelog_id.is_some(),
        }
    }
}

/// One page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub calls: Vec<CallView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/calls", tag = "calls",
    security(("api_key" = []), ("session" = [])),
    params(CallQuery),
    responses(
        (status = 200, description = "Matching attempts, newest first", body = CallPage),
        (status = 400, description = "A bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn search_calls(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<CallQuery>, QueryRejection>,
) -> Result<Json<CallPage>, ApiError> {
    allowed(&who, Action::SearchCalls, who.org)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = listing::limit(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let filter = CallFilter {
        number: listing::text(q.number),
        record_id: listing::text(q.record_id),
        from: listing::time("from", q.from.as_deref())?,
        to: listing::time("to", q.to.as_deref())?,
        status: listing::text(q.status),
        before_id: listing::cursor(q.cursor.as_deref())?,
        limit,
    };
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(CallPage {
            calls: Vec::new(),
            next_cursor: None,
        }));
    };
    let rows = engine
        .store
        .search_calls(org, &filter)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = listing::next_cursor(rows.len(), limit, rows.last().map(|r| r.attempt_id));
    Ok(Json(CallPage {
        calls: rows.into_iter().map(CallView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/calls/{attempt}/voicelog", tag = "calls",
    security(("api_key" = []), ("session" = [])),
    params(
        ("attempt" = i64, Path, description = "The attempt's id"),
        ("Range" = Option<String>, Header, description = "A byte range (`bytes=0-99`, `bytes=-500`)"),
    ),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav"),
        (status = 206, description = "The requested range, with Content-Range", content_type = "audio/wav"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No recording of this attempt in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still being recorded", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range outside the file", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn play_voicelog(
    State(state): State<AppState>,
    who: Principal,
    attempt: Result<UrlPath<i64>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed(&who, Action::PlayVoicelog, who.org)?;
    let UrlPath(attempt) = attempt.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let org = engine_org(&state, &engine, who.org)
        .await?
        .ok_or(ApiError::NotFound)?;
    let log = engine
        .store
        .voicelog_of_attempt(org, attempt)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    if log.state == "recording" {
        return Err(ApiError::Conflict(
            "the call is still being recorded".to_owned(),
        ));
    }
    if log.state == "missing" {
        return Err(ApiError::NotFound);
    }
    let path = engine.voicelog_dir.join(&log.path);
    serve_file(&path, "audio/wav", None, &headers).await
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_calls))
        .routes(routes!(play_voicelog))
}
