//! The e-mail list: the organisation's e-mails (the engine's
//! `email_outbox`: one per record imported with `SERVICES_EMAIL=Y`, queued
//! or failed with its reason), searched by address, RECORD_ID, script,
//! state and date range, newest first, keyset-paginated like the calls and
//! SMS lists. Manager only.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use dialcast_engine::store::sqlite::emails::{EmailFilter, EmailRow, MAX_EMAIL_PAGE};
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

/// Filters of the e-mail list; all optional, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EmailQuery {
    /// The address the message goes to, exactly as imported
    /// (`CONTACT_EMAIL`).
    pub address: Option<String>,
    /// The record's RECORD_ID.
    pub record_id: Option<String>,
    /// The script of the record's campaign.
    pub script: Option<String>,
    /// The message's state: `queued` or `failed` (later also sent,
    /// delivered, opened, clicked, soft_bounce, hard_bounce,
    /// spam_complaint).
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

/// One e-mail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmailView {
    pub id: i64,
    pub script: String,
    pub campaign: String,
    pub record_id: String,
    /// The record's CLIENT_REFERENCE, if it has one.
    pub client_reference: Option<String>,
    /// `CONTACT_EMAIL` as imported (empty if the record had none).
    pub address: String,
    /// The script's e-mail template; null when it failed before one was
    /// chosen.
    pub template: Option<String>,
    /// The language it was rendered in; null when it failed.
    pub language: Option<String>,
    pub subject: Option<String>,
    /// The rendered text; null when it failed.
    pub body: Option<String>,
    /// `queued` or `failed` (later the delivery states).
    pub state: String,
    /// Why it failed (e.g. a field the template needs is empty).
    pub error: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<EmailRow> for EmailView {
    fn from(m: EmailRow) -> Self {
        EmailView {
            id: m.id,
            script: m.script,
            campaign: m.campaign,
            record_id: m.record_id,
            client_reference: m.client_reference,
            address: m.address,
            template: m.template,
            language: m.language,
            subject: m.subject,
            body: m.body,
            state: m.state,
            error: m.error,
            created_at: m.created_at,
        }
    }
}

/// One page of e-mails.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmailPage {
    pub emails: Vec<EmailView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The store's filter for a query (empty texts are no filter).
fn filter(q: EmailQuery) -> Result<EmailFilter, ApiError> {
    Ok(EmailFilter {
        address: listing::text(q.address),
        record_id: listing::text(q.record_id),
        script: listing::text(q.script),
        state: listing::text(q.state),
        from: listing::time("from", q.from.as_deref())?,
        to: listing::time("to", q.to.as_deref())?,
        before_id: listing::cursor(q.cursor.as_deref())?,
        limit: listing::limit(q.limit, DEFAULT_PAGE, MAX_EMAIL_PAGE)?,
    })
}

#[utoipa::path(
    get, path = "/api/v1/emails", tag = "messages",
    security(("api_key" = []), ("session" = [])),
    params(EmailQuery),
    responses(
        (status = 200, description = "Matching e-mails, newest first", body = EmailPage),
        (status = 400, description = "A bad filter, limit or cursor, or an unknown query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn search_emails(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<EmailQuery>, QueryRejection>,
) -> Result<Json<EmailPage>, ApiError> {
    allowed(&who, Action::SearchEmails, who.org)?;
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = filter(q)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(EmailPage {
            emails: Vec::new(),
            next_cursor: None,
        }));
    };
    let rows = engine
        .store
        .search_emails(org, &filter)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = listing::next_cursor(rows.len(), filter.limit, rows.last().map(|r| r.id));
    Ok(Json(EmailPage {
        emails: rows.into_iter().map(EmailView::from).collect(),
        next_cursor,
    }))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_emails))
}
