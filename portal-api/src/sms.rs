//! The SMS list: the organisation's text messages (the engine's
//! `sms_outbox`), searched by number, RECORD_ID, script, state and date
//! range, newest first, keyset-paginated like the calls list. Manager only.
//! The e-mail list is [`crate::emails`].

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use dialcast_engine::store::sqlite::sms::{SmsFilter, SmsRow, MAX_SMS_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::authz::{allowed, Action, Principal};
use crate::files::{engine, engine_org};
use crate::listing;
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
    /// The message as rendered from its template; null for messages queued
    /// before the engine stored texts.
    pub text: Option<String>,
    /// `queued`, or `failed` when its template could not be filled in for
    /// the record (then `text` is null and `error` says why).
    pub state: String,
    /// Why a `failed` message was not made, e.g. a field the template
    /// needs is blank.
    pub error: Option<String>,
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
            text: m.text,
            state: m.state,
            error: m.error,
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

/// The store's filter for a query (empty texts are no filter).
fn filter(q: SmsQuery) -> Result<SmsFilter, ApiError> {
    Ok(SmsFilter {
        number: listing::text(q.number),
        record_id: listing::text(q.record_id),
        script: listing::text(q.script),
        state: listing::text(q.state),
        from: listing::time("from", q.from.as_deref())?,
        to: listing::time("to", q.to.as_deref())?,
        before_id: listing::cursor(q.cursor.as_deref())?,
        limit: listing::limit(q.limit, DEFAULT_PAGE, MAX_SMS_PAGE)?,
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
    let next_cursor = listing::next_cursor(rows.len(), filter.limit, rows.last().map(|r| r.id));
    Ok(Json(SmsPage {
        messages: rows.into_iter().map(SmsView::from).collect(),
        next_cursor,
    }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_sms))
}
