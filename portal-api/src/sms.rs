//! The SMS list: the organisation's text messages (the engine's
//! `sms_outbox`), searched by number, RECORD_ID, script, state and date
//! range, newest first, keyset-paginated like the calls list. Manager only.
//!
//! There is no e-mail list: the engine has no e-mail messages yet (e-mail
//! sending comes with the messaging adapters).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use dialcast_engine::store::sqlite::sms::{SmsFilter, SmsRow, MAX_SMS_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::authz::{allowed, Action, Principal};
use crate::files::{engine, engine_org};
use crate::problem::{ApiError, Problem};

/// Messages per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;

/// Filters of the SMS list; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SmsQuery {
    /// The number the message goes to, E.164 (`+31612345678`).
    pub number: Option<String>,
    /// The record's RECORD_ID.
    pub record_id: Option<String>,
    /// The script whose call queued the message.
    pub script: Option<String>,
    /// The message's state: `queued` (later also sent, delivered,
    /// undeliverable, expired, rejected).
    pub state: Option<String>,
    /// Created at or after: RFC 3339, or a date (`YYYY-MM-DD`, UTC midnight).
    pub from: Option<String>,
    /// Created before: RFC 3339, or a date (UTC midnight).
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Messages per page (1 to 500, default 100).
    pub limit: Option<u32>,
}

/// One text message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SmsView {
    pub id: i64,
    pub script: String,
    pub campaign: String,
    pub record_id: String,
    /// The record's CLIENT_REFERENCE, if it has one.
    pub client_reference: Option<String>,
    /// The call attempt that queued it (`/api/v1/calls`).
    pub attempt_id: i64,
    pub number: String,
    pub template: String,
    /// The language of the call that queued it.
    pub language: String,
    pub state: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<SmsRow> for SmsView {
    fn from(m: SmsRow) -> Self {
        SmsView {
            id: m.id,
            script: m.script,
            campaign: m.campaign,
            record_id: m.record_id,
            client_reference: m.client_reference,
            attempt_id: m.attempt_id,
            number: m.number,
            template: m.template,
            language: m.language,
            state: m.state,
            created_at: m.created_at,
        }
    }
}

/// One page of messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SmsPage {
    pub messages: Vec<SmsView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be an RFC 3339 time or a YYYY-MM-DD date"
    )))
}

/// The store's filter for a query (empty texts are no filter).
fn filter(q: SmsQuery) -> Result<SmsFilter, ApiError> {
    let before_id = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::BadRequest("cursor is not one this API gave".into()))?,
        ),
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_SMS_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_SMS_PAGE}"
        )));
    }
    let text = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(SmsFilter {
        number: text(q.number),
        record_id: text(q.record_id),
        script: text(q.script),
        state: text(q.state),
        from: q
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: q.to.as_deref().map(|t| parse_time("to", t)).transpose()?,
        before_id,
        limit,
    })
}

#[utoipa::path(
    get, path = "/api/v1/sms", tag = "messages",
    security(("api_key" = []), ("session" = [])),
    params(SmsQuery),
    responses(
        (status = 200, description = "Matching text messages, newest first", body = SmsPage),
        (status = 400, description = "A bad filter, limit or cursor, or an unknown query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn search_sms(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<SmsQuery>, QueryRejection>,
) -> Result<Json<SmsPage>, ApiError> {
    allowed(&who, Action::SearchSms, who.org)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = filter(q)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(SmsPage {
            messages: Vec::new(),
            next_cursor: None,
        }));
    };
    let rows = engine
        .store
        .search_sms(org, &filter)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = if rows.len() == filter.limit as usize {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(Json(SmsPage {
        messages: rows.into_iter().map(SmsView::from).collect(),
        next_cursor,
    }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_sms))
}
