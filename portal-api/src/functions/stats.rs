//! `GET /api/v1/dashboard` and `GET /api/v1/statistics`: read from the
//! engine's 5-minute aggregates (`StatsStore`), never from the attempts,
//! so their cost depends on the number of campaigns and buckets, not on
//! the number of calls.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use dialcast_engine::stats::range::{self, Range};
use dialcast_engine::stats::{
    self as engine_stats, bucket_start, Counters, StatsReport, BUCKET_MS,
};
use dialcast_engine::store::StatsStore as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{engine, scope, script_states, ScriptState};
use crate::authz::{allowed, Action, Principal};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// Buckets the dashboard shows: the last 4 hours.
pub const DASHBOARD_BUCKETS: i64 = 48;
/// Longest custom statistics range, in days.
pub const MAX_RANGE_DAYS: i64 = 366;

/// One 5-minute bucket of the dashboard: the attempts that ended in it,
/// summed over the organisation's campaigns, by colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ColourBucket {
    /// RFC 3339, UTC.
    pub start: String,
    pub start_ms: i64,
    pub attempts: u64,
    /// Delivered: success, forwarded, voicemail with a message left.
    pub green: u64,
    /// Not reached: no_answer, busy, rejected, unavailable, answered_no_success.
    pub yellow: u64,
    /// Invalid number.
    pub red: u64,
    /// Anything else (voicemail without a message, blocked, failed, interrupted).
    pub other: u64,
}

/// Today's figures (the organisation's local day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Today {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Records imported today per service (`voice`, `sms`, `email`; all three always present).
    pub records: BTreeMap<String, u64>,
    /// Voice records that got their final status today.
    pub voice_completed: u64,
    /// Attempts that ended today.
    pub attempts: u64,
}

/// The dashboard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    /// The organisation's time zone (IANA).
    pub time_zone: String,
    /// RFC 3339, UTC: the instant the figures are of.
    pub at: String,
    /// The id of the newest event in the store: connect the live stream
    /// (`GET /api/v1/events`) with `Last-Event-ID` set to it to get every
    /// change after this dashboard.
    pub last_event_id: i64,
    /// The last 4 hours, oldest first, the current bucket last; buckets
    /// without attempts are listed with zeros.
    pub buckets: Vec<ColourBucket>,
    pub today: Today,
    pub scripts: Vec<ScriptState>,
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn colour_bucket(start_ms: i64, c: &Counters) -> ColourBucket {
    ColourBucket {
        start: rfc3339(start_ms),
        start_ms,
        attempts: c.attempts,
        green: c.green,
        yellow: c.yellow,
        red: c.red,
        other: c.other,
    }
}

#[utoipa::path(
    get, path = "/api/v1/dashboard", tag = "statistics",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "Attempts of the last 4 hours in 5-minute buckets by colour, today's records per service and completed voice records, and each script's state", body = Dashboard),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the dashboard role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable: the portal runs without the engine's store", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Dashboard>, ApiError> {
    allowed(&who, Action::ViewDashboard, who.org)?;
    let engine = engine(&state)?;
    let scope = scope(&state.db, engine, who.org).await?;
    let store = &engine.store;
    // Read the head first: anything committed after it reaches a stream
    // resumed from it, even if this dashboard already shows it.
    let last_event_id = store.last_event_id().await.map_err(ApiError::internal)?;
    let now_ms = state.now().saturating_mul(1000);
    let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let campaigns = scope.campaigns(engine).await?;

    let first = bucket_start(now_ms) - (DASHBOARD_BUCKETS - 1) * BUCKET_MS;
    let mut buckets: BTreeMap<i64, Counters> = (0..DASHBOARD_BUCKETS)
        .map(|i| (first + i * BUCKET_MS, Counters::default()))
        .collect();
    let day = range::today(now, scope.tz);
    let day_range = range::day_range(day, scope.tz)
        .ok_or_else(|| ApiError::internal(format!("no range for {day}")))?;
    let mut today = Counters::default();
    for c in &campaigns {
        let rows = store
            .stats_buckets(c.id, first, bucket_start(now_ms) + BUCKET_MS)
            .await
            .map_err(ApiError::internal)?;
        for (start, counters) in rows {
            if let Some(sum) = buckets.get_mut(&start) {
                sum.merge(&counters);
            }
        }
        today.merge(
            &store
                .stats_totals(c.id, day_range.from, day_range.to)
                .await
                .map_err(ApiError::internal)?,
        );
    }
    let mut records: BTreeMap<String, u64> = engine_stats::counters::SERVICES
        .iter()
        .map(|s| ((*s).to_owned(), 0))
        .collect();
    for (service, n) in &today.imported {
        *records.entry(service.clone()).or_default() += n;
    }
    Ok(Json(Dashboard {
        time_zone: scope.tz.name().to_owned(),
        at: rfc3339(now_ms),
        last_event_id,
        buckets: buckets
            .iter()
            .map(|(start, c)| colour_bucket(*start, c))
            .collect(),
        today: Today {
            day: day.to_string(),
            records,
            voice_completed: today.records_done,
            attempts: today.attempts,
        },
        scripts: script_states(&campaigns),
    }))
}

/// Which period the statistics cover.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The organisation's local day before today.
    #[default]
    Yesterday,
    /// The local day before yesterday.
    DayBefore,
    /// `from` to `to`.
    Custom,
}

/// The statistics query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatisticsQuery {
    /// `yesterday` (default), `day_before` or `custom`.
    #[serde(default)]
    #[param(value_type = Option<String>, example = "yesterday")]
    pub period: Option<Period>,
    /// For `custom`: RFC 3339, or a local `YYYY-MM-DDTHH:MM[:SS]` or
    /// `YYYY-MM-DD` in the organisation's time zone (inclusive).
    pub from: Option<String>,
    /// For `custom`: as `from` (exclusive); at most 366 days after it.
    pub to: Option<String>,
    /// Only this script's campaigns.
    pub script: Option<String>,
}

/// A share of the attempts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Share {
    pub count: u64,
    /// Percent of the attempts, one decimal.
    pub percent: f64,
}

/// Records done against records imported, to the end of the period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Completion {
    pub done: u64,
    pub records: u64,
    pub percent: f64,
}

/// One campaign's statistics over the period: the engine's report
/// (`dialcast stats --json` prints the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CampaignStatistics {
    pub campaign: String,
    pub script: String,
    pub time_zone: String,
    /// Local RFC 3339.
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Attempts that ended in the period: the base of every percentage.
    pub attempts: u64,
    pub dialled: u64,
    pub delivered: Share,
    pub invalid: Share,
    pub not_reached: Share,
    pub other: Share,
    pub forwarded: Share,
    pub called_back: Share,
    pub inbound: u64,
    pub voicemail_left: u64,
    pub statuses: BTreeMap<String, u64>,
    pub imported: BTreeMap<String, u64>,
    pub voice_completed: Completion,
}

impl From<StatsReport> for CampaignStatistics {
    fn from(r: StatsReport) -> CampaignStatistics {
        let share = |s: engine_stats::Share| Share {
            count: s.count,
            percent: s.percent,
        };
        CampaignStatistics {
            campaign: r.campaign,
            script: r.script,
            time_zone: r.time_zone,
            from: r.from,
            to: r.to,
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            attempts: r.attempts,
            dialled: r.dialled,
            delivered: share(r.delivered),
            invalid: share(r.invalid),
            not_reached: share(r.not_reached),
            other: share(r.other),
            forwarded: share(r.forwarded),
            called_back: share(r.called_back),
            inbound: r.inbound,
            voicemail_left: r.voicemail_left,
            statuses: r.statuses,
            imported: r.imported,
            voice_completed: Completion {
                done: r.voice_completed.done,
                records: r.voice_completed.records,
                percent: r.voice_completed.percent,
            },
        }
    }
}

/// The statistics of a period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Statistics {
    pub time_zone: String,
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// One entry per campaign, by script then campaign.
    pub campaigns: Vec<CampaignStatistics>,
}

/// The UTC range of the query at `now` in `tz`.
fn period_range(
    q: &StatisticsQuery,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<Range, ApiError> {
    let day = |d| range::day_range(d, tz).ok_or_else(|| ApiError::BadRequest("no such day".into()));
    match q.period.unwrap_or_default() {
        Period::Yesterday => day(range::yesterday(now, tz)),
        Period::DayBefore => day(range::day_before(now, tz)),
        Period::Custom => {
            let (Some(from), Some(to)) = (&q.from, &q.to) else {
                return Err(ApiError::BadRequest(
                    "period=custom needs from and to".into(),
                ));
            };
            let from = range::parse_time(from, tz).map_err(ApiError::BadRequest)?;
            let to = range::parse_time(to, tz).map_err(ApiError::BadRequest)?;
            let r = range::instant_range(from, to).map_err(ApiError::BadRequest)?;
            if r.to - r.from > MAX_RANGE_DAYS * 24 * 3600 * 1000 {
                return Err(ApiError::BadRequest(format!(
                    "a custom range covers at most {MAX_RANGE_DAYS} days"
                )));
            }
            Ok(r)
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/statistics", tag = "statistics",
    security(("api_key" = []), ("session" = [])),
    params(StatisticsQuery),
    responses(
        (status = 200, description = "Per campaign: delivered, invalid, not reached, forwarded and called back, each a count with its percentage of the attempts", body = Statistics),
        (status = 400, description = "A bad period, time or range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the dashboard role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn statistics(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<StatisticsQuery>, QueryRejection>,
) -> Result<Json<Statistics>, ApiError> {
    allowed(&who, Action::ViewStatistics, who.org)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let engine = engine(&state)?;
    let scope = scope(&state.db, engine, who.org).await?;
    let now = DateTime::from_timestamp(state.now(), 0).unwrap_or_default();
    let range = period_range(&query, now, scope.tz)?;
    let mut campaigns = scope.campaigns(engine).await?;
    if let Some(script) = &query.script {
        campaigns.retain(|c| &c.script_name == script);
        if campaigns.is_empty() {
            return Err(ApiError::NotFound);
        }
    }
    campaigns.sort_by(|a, b| (&a.script_name, a.id).cmp(&(&b.script_name, b.id)));
    let mut out = Vec::with_capacity(campaigns.len());
    for c in &campaigns {
        let report = engine_stats::campaign_report(&engine.store, c, range, scope.tz, false)
            .await
            .map_err(ApiError::internal)?;
        out.push(report.into());
    }
    let local = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&scope.tz).to_rfc3339())
            .unwrap_or_default()
    };
    Ok(Json(Statistics {
        time_zone: scope.tz.name().to_owned(),
        from: local(range.from),
        to: local(range.to),
        from_ms: range.from,
        to_ms: range.to,
        campaigns: out,
    }))
}
