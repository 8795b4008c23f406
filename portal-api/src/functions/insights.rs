//! `GET /api/v1/insights/voice`: each script's last 8 hours in 5-minute
//! buckets and in total (attempts, reached / not reached / invalid, the
//! call statuses, voicemails left, forwards, the success-point ratio), in
//! the organisation's time zone. Read from the engine's 5-minute
//! aggregates through its statistics store (`stats_buckets`), never from
//! the attempts, so the cost depends on the campaigns and buckets, not on
//! the calls.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::DateTime;
use dialcast_engine::stats::{bucket_start, Counters, BUCKET_MS};
use dialcast_engine::store::StatsStore as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{engine, scope};
use crate::authz::{allowed, Action, Principal};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// Buckets the insights cover: 8 hours, the current bucket last.
pub const INSIGHT_BUCKETS: i64 = 96;

/// The insights query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InsightsQuery {
    /// Only this script (404 when the organisation has no campaign of it).
    pub script: Option<String>,
}

/// A count and its share of a whole.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ratio {
    pub count: u64,
    /// Percent of the whole, one decimal (0 when the whole is 0).
    pub percent: f64,
}

impl Ratio {
    fn of(count: u64, whole: u64) -> Ratio {
        let percent = if whole == 0 {
            0.0
        } else {
            (count as f64 * 1000.0 / whole as f64).round() / 10.0
        };
        Ratio { count, percent }
    }
}

/// The figures of a bucket or of the whole period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VoiceFigures {
    /// Attempts that ended (undialled `invalid_number` and `blocked`
    /// reports included); reached + not_reached + invalid + other.
    pub attempts: u64,
    /// Attempts really dialled.
    pub dialled: u64,
    /// Green: success, forwarded, voicemail with a message left.
    pub reached: u64,
    /// Yellow: no_answer, busy, rejected, unavailable, answered_no_success.
    pub not_reached: u64,
    /// Red: invalid_number.
    pub invalid: u64,
    /// Anything else (voicemail without a message, blocked, failed, interrupted).
    pub other: u64,
    /// Attempts per call status.
    pub statuses: BTreeMap<String, u64>,
    pub voicemail_left: u64,
    /// Calls forwarded to the call centre.
    pub forwards: u64,
    /// Calls answered by a person (statuses success, forwarded and
    /// answered_no_success) and how many of them passed the point of
    /// success (success and forwarded).
    pub success_point: Ratio,
}

impl VoiceFigures {
    fn from(c: &Counters) -> VoiceFigures {
        let status = |s: &str| c.statuses.get(s).copied().unwrap_or(0);
        let succeeded = status("success") + status("forwarded");
        let answered = succeeded + status("answered_no_success");
        VoiceFigures {
            attempts: c.attempts,
            dialled: c.dialled,
            reached: c.green,
            not_reached: c.yellow,
            invalid: c.red,
            other: c.other,
            statuses: c.statuses.clone(),
            voicemail_left: c.voicemail_left,
            forwards: c.forwards,
            success_point: Ratio::of(succeeded, answered),
        }
    }
}

/// One 5-minute bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InsightBucket {
    /// RFC 3339 in the organisation's time zone.
    pub start: String,
    pub start_ms: i64,
    pub figures: VoiceFigures,
}

/// One script's insights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScriptInsights {
    pub script: String,
    /// The whole 8 hours.
    pub totals: VoiceFigures,
    /// Every bucket of the 8 hours, oldest first, the current one last;
    /// buckets without activity are listed with zeros.
    pub buckets: Vec<InsightBucket>,
}

/// The voice insights of the organisation's scripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VoiceInsights {
    /// The organisation's time zone (IANA).
    pub time_zone: String,
    /// RFC 3339 in that time zone: the start of the first bucket and the
    /// end of the current one.
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// By script name; scripts with no campaign are left out.
    pub scripts: Vec<ScriptInsights>,
}

#[utoipa::path(
    get, path = "/api/v1/insights/voice", tag = "statistics",
    security(("api_key" = []), ("session" = [])),
    params(InsightsQuery),
    responses(
        (status = 200, description = "Each script's last 8 hours in 5-minute buckets and in total", body = VoiceInsights),
        (status = 400, description = "A bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the dashboard role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn voice_insights(
    State(state): State<AppState>,
    who: Principal,
    query: Result<Query<InsightsQuery>, QueryRejection>,
) -> Result<Json<VoiceInsights>, ApiError> {
    allowed(&who, Action::ViewInsights, who.org)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let engine = engine(&state)?;
    let scope = scope(&state.db, engine, who.org).await?;
    let mut campaigns = scope.campaigns(engine).await?;
    if let Some(script) = &query.script {
        campaigns.retain(|c| &c.script_name == script);
        if campaigns.is_empty() {
            return Err(ApiError::NotFound);
        }
    }
    let now_ms = state.now().saturating_mul(1000);
    let to = bucket_start(now_ms) + BUCKET_MS;
    let first = to - INSIGHT_BUCKETS * BUCKET_MS;
    let empty: BTreeMap<i64, Counters> = (0..INSIGHT_BUCKETS)
        .map(|i| (first + i * BUCKET_MS, Counters::default()))
        .collect();
    let mut per_script: BTreeMap<String, BTreeMap<i64, Counters>> = BTreeMap::new();
    for c in &campaigns {
        let rows = engine
            .store
            .stats_buckets(c.id, first, to)
            .await
            .map_err(ApiError::internal)?;
        let buckets = per_script
            .entry(c.script_name.clone())
            .or_insert_with(|| empty.clone());
        for (start, counters) in rows {
            if let Some(sum) = buckets.get_mut(&start) {
                sum.merge(&counters);
            }
        }
    }
    let local = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|t| t.with_timezone(&scope.tz).to_rfc3339())
            .unwrap_or_default()
    };
    let scripts = per_script
        .into_iter()
        .map(|(script, buckets)| {
            let mut totals = Counters::default();
            for c in buckets.values() {
                totals.merge(c);
            }
            ScriptInsights {
                script,
                totals: VoiceFigures::from(&totals),
                buckets: buckets
                    .iter()
                    .map(|(start, c)| InsightBucket {
                        start: local(*start),
                        start_ms: *start,
                        figures: VoiceFigures::from(c),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(VoiceInsights {
        time_zone: scope.tz.name().to_owned(),
        from: local(first),
        to: local(to),
        from_ms: first,
        to_ms: to,
        scripts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_success_point_ratio_counts_calls_answered_by_a_person() {
        let mut c = Counters::default();
        c.merge(&Counters::attempts_ended("success", false, true, 3));
        c.merge(&Counters::attempts_ended("forwarded", false, true, 1));
        c.merge(&Counters::attempts_ended(
            "answered_no_success",
            false,
            true,
            4,
        ));
        c.merge(&Counters::attempts_ended("no_answer", false, true, 10));
        let f = VoiceFigures::from(&c);
        assert_eq!(f.attempts, 18);
        assert_eq!(f.reached, 4);
        assert_eq!(f.not_reached, 14);
        assert_eq!(
            f.success_point,
            Ratio {
                count: 4,
                percent: 50.0
            }
        );
    }
}
