//! The organisation's blocklist (numbers never dialled) and its calendar
//! (time zone, workdays, holidays): Manager only, every change audited.
//! Numbers are normalised to E.164 with the engine's rules (as
//! `dialcast blocklist` and import files do). Reads for a portal
//! organisation the engine does not know are empty; changes are refused
//! with 409 (the engine, not the portal, creates organisations).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use dialcast_engine::blocklist::normalise;
use dialcast_engine::campaign::schedule;
use dialcast_engine::store::blocklist::entry;
use dialcast_engine::store::{
    BlockEntry, BlocklistStore as _, Id, OrganisationCalendar, ScheduleSettings, Store as _,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::authz::{allowed, Action, Principal};
use crate::files::{engine, engine_org, Engine};
use crate::imports::audited;
use crate::problem::{ApiError, Problem};

/// Longest reason accepted.
const MAX_REASON: usize = 500;

/// One blocked number.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedNumber {
    /// E.164.
    pub number: String,
    pub reason: String,
    /// Unix milliseconds.
    pub added_at: i64,
    pub added_by: Option<String>,
}

impl From<BlockEntry> for BlockedNumber {
    fn from(e: BlockEntry) -> Self {
        BlockedNumber {
            number: e.number,
            reason: e.reason,
            added_at: e.added_at,
            added_by: e.added_by,
        }
    }
}

/// A number to block.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockNumber {
    /// As typed (`020 123 4567`) or E.164 (`+31201234567`).
    pub number: String,
    /// Why (required).
    pub reason: String,
}

/// What blocking did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blocked {
    /// The number in E.164.
    pub number: String,
    /// False when it was already blocked (its reason is updated).
    pub added: bool,
    /// Pending records that were stopped (all their numbers are blocked).
    pub records_blocked: u64,
}

/// The organisation's days.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// IANA time zone, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    /// Seven flags, Monday first.
    pub workdays: [bool; 7],
    /// Holidays on one date, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Holidays every year, `MM-DD`.
    pub yearly_holidays: Vec<String>,
}

impl From<OrganisationCalendar> for Calendar {
    fn from(c: OrganisationCalendar) -> Self {
        Calendar {
            time_zone: c.time_zone,
            workdays: c.workdays,
            holidays: c.holidays,
            yearly_holidays: c.yearly_holidays,
        }
    }
}

/// The engine organisation of the caller for a change. The portal never
/// creates engine organisations: the engine creates them (and the portal
/// follows with the same id and name, see `accounts::ensure_organisation`),
/// so a portal organisation the engine does not know yet gets a conflict.
async fn engine_org_for_change(
    state: &AppState,
    engine: &Engine,
    who: &Principal,
) -> Result<Id, ApiError> {
    engine_org(state, engine, who.org).await?.ok_or_else(|| {
        ApiError::Conflict(
            "the engine has no organisation of this name yet; it is made when the engine \
             first runs with it"
                .to_owned(),
        )
    })
}

fn e164(number: &str, country: &str) -> Result<String, ApiError> {
    normalise(number, country).map_err(|e| ApiError::Invalid(format!("number: {e:#}")))
}

#[utoipa::path(
    get, path = "/api/v1/blocklist", tag = "blocklist",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The blocked numbers, by number", body = Vec<BlockedNumber>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_blocklist(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<BlockedNumber>>, ApiError> {
    allowed(&who, Action::ViewBlocklist, who.org)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(Vec::new()));
    };
    let list = engine
        .store
        .blocklist(org)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(list.into_iter().map(BlockedNumber::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/blocklist", tag = "blocklist",
    security(("api_key" = []), ("session" = [])),
    request_body = BlockNumber,
    responses(
        (status = 200, description = "Blocked; pending records with no other number are stopped", body = Blocked),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The engine has no organisation of this name yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a phone number, or no reason", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn block_number(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<BlockNumber>, JsonRejection>,
) -> Result<Json<Blocked>, ApiError> {
    allowed(&who, Action::EditBlocklist, who.org)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(ApiError::Invalid(format!(
            "reason: say why the number is blocked (1 to {MAX_REASON} characters)"
        )));
    }
    let engine = engine(&state)?;
    let number = e164(&body.number, &engine.default_country)?;
    let org = engine_org_for_change(&state, &engine, &who).await?;
    let actor = who.credential.to_string();
    let outcome = engine
        .store
        .block_number(
            org,
            &entry(
                &number,
                reason,
                Some(&actor),
                state.now().saturating_mul(1000),
            ),
        )
        .await
        .map_err(ApiError::internal)?;
    audited(
        &state,
        &who,
        "blocklist.add",
        &number,
        &format!("{reason} ({} records stopped)", outcome.records_blocked),
    )
    .await?;
    Ok(Json(Blocked {
        number,
        added: outcome.added,
        records_blocked: outcome.records_blocked,
    }))
}

#[utoipa::path(
    delete, path = "/api/v1/blocklist/{number}", tag = "blocklist",
    security(("api_key" = []), ("session" = [])),
    params(("number" = String, Path, description = "The number (E.164, `+` URL-encoded as %2B, or as typed)")),
    responses(
        (status = 204, description = "No longer blocked"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not on the organisation's blocklist", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a phone number", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn unblock_number(
    State(state): State<AppState>,
    who: Principal,
    number: Result<UrlPath<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&who, Action::EditBlocklist, who.org)?;
    let UrlPath(number) = number.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let number = e164(&number, &engine.default_country)?;
    let org = engine_org(&state, &engine, who.org)
        .await?
        .ok_or(ApiError::NotFound)?;
    let removed = engine
        .store
        .unblock_number(org, &number)
        .await
        .map_err(ApiError::internal)?;
    if !removed {
        return Err(ApiError::NotFound);
    }
    audited(&state, &who, "blocklist.remove", &number, "").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/calendar", tag = "calendar",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's time zone, workdays and holidays", body = Calendar),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_calendar(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Calendar>, ApiError> {
    allowed(&who, Action::ViewCalendar, who.org)?;
    let engine = engine(&state)?;
    let calendar = match engine_org(&state, &engine, who.org).await? {
        Some(org) => engine
            .store
            .organisation_calendar(org)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_default(),
        None => OrganisationCalendar::default(),
    };
    Ok(Json(calendar.into()))
}

#[utoipa::path(
    put, path = "/api/v1/calendar", tag = "calendar",
    security(("api_key" = []), ("session" = [])),
    request_body = Calendar,
    responses(
        (status = 200, description = "Stored; it applies to the next scheduling decision", body = Calendar),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The engine has no organisation of this name yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown time zone or a bad date", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn put_calendar(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<Calendar>, JsonRejection>,
) -> Result<Json<Calendar>, ApiError> {
    allowed(&who, Action::EditCalendar, who.org)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut calendar = OrganisationCalendar {
        time_zone: body.time_zone.trim().to_owned(),
        workdays: body.workdays,
        holidays: body.holidays,
        yearly_holidays: body.yearly_holidays,
    };
    calendar.holidays.sort();
    calendar.holidays.dedup();
    calendar.yearly_holidays.sort();
    calendar.yearly_holidays.dedup();
    // The engine's own reading of a calendar decides what is valid.
    schedule::calendar(&calendar, &ScheduleSettings::around_the_clock())
        .map_err(|e| ApiError::Invalid(format!("{}: {}", e.field, e.message)))?;
    let engine = engine(&state)?;
    let org = engine_org_for_change(&state, &engine, &who).await?;
    engine
        .store
        .set_organisation_calendar(org, &calendar)
        .await
        .map_err(ApiError::internal)?;
    audited(
        &state,
        &who,
        "calendar.update",
        "calendar",
        &format!(
            "{}; {} holidays, {} yearly",
            calendar.time_zone,
            calendar.holidays.len(),
            calendar.yearly_holidays.len()
        ),
    )
    .await?;
    Ok(Json(calendar.into()))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_blocklist, block_number))
        .routes(routes!(unblock_number))
        .routes(routes!(get_calendar, put_calendar))
}
