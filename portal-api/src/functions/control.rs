//! `POST /api/v1/scripts/{script}/pause|resume` and
//! `.../forwarding/pause|resume`: the engine's control rules
//! (`dialcast_engine::campaign::control`, the ones `dialcast campaign
//! pause|resume|pause-forwarding|resume-forwarding` applies) on every
//! campaign of the script, audited.
//!
//! A pause stops new calls at once: the engine's claim of the next attempt
//! reads the campaign's state inside its write transaction, so from the
//! commit on no attempt of the script is claimed, by `dialcast serve` in
//! this process or in another one (see the engine's `control` module).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use dialcast_engine::campaign::control::{self as rules, Control, ControlError};
use dialcast_engine::store::Campaign;

use super::{engine, scope, script_states, ScriptState};
use crate::audit;
use crate::authz::{allowed, Action, Principal};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// Applies `control` to the campaigns of `script` that its rule allows
/// (pausing leaves finished campaigns alone; resuming takes the paused
/// ones); refused when it allows none.
async fn apply(
    state: &AppState,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
    control: Control,
) -> Result<Json<ScriptState>, ApiError> {
    allowed(&who, Action::ControlScript, who.org)?;
    let Path(script) = script.map_err(|_| ApiError::NotFound)?;
    let engine = engine(state)?;
    let scope = scope(&state.db, engine, who.org).await?;
    // Scoped by organisation: another organisation's script is not found.
    let campaigns: Vec<Campaign> = scope
        .campaigns(engine)
        .await?
        .into_iter()
        .filter(|c| c.script_name == script)
        .collect();
    if campaigns.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut refusal = None;
    let targets: Vec<&Campaign> = campaigns
        .iter()
        .filter(|c| match rules::check(c, control) {
            Ok(()) => true,
            Err(e) => {
                refusal.get_or_insert(e);
                false
            }
        })
        .collect();
    if targets.is_empty() {
        return Err(match refusal {
            Some(ControlError::WrongState { state, rule, .. }) => {
                ApiError::Conflict(format!("script {script} is {state}: {rule}"))
            }
            Some(e) => ApiError::internal(e),
            None => ApiError::NotFound,
        });
    }
    let now_ms = state.now().saturating_mul(1000);
    for c in &targets {
        rules::apply(&engine.store, c, control, now_ms)
            .await
            .map_err(|e| match e {
                ControlError::WrongState { state, rule, .. } => {
                    ApiError::Conflict(format!("script {script} is {state}: {rule}"))
                }
                ControlError::Store(e) => ApiError::internal(e),
            })?;
    }
    // The live streams read the store now rather than at their next poll.
    engine.changed.notify_waiters();
    // The change is committed in the engine's store; the audit row follows
    // it (two stores, so not one transaction: a failure here is logged and
    // answered 500, with the change made).
    let names: Vec<&str> = targets.iter().map(|c| c.name.as_str()).collect();
    let detail = format!("campaigns: {}", names.join(", "));
    let target = format!("script:{script}");
    let action = format!("script.{}", control.as_str());
    let mut tx = state.db.begin().await.map_err(ApiError::internal)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: who.org,
            at: state.now(),
            actor: &who.credential.to_string(),
            action: &action,
            target: &target,
            detail: &detail,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    let after: Vec<Campaign> = scope
        .campaigns(engine)
        .await?
        .into_iter()
        .filter(|c| c.script_name == script)
        .collect();
    script_states(&after)
        .into_iter()
        .next()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(
    post, path = "/api/v1/scripts/{script}/pause", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name")),
    responses(
        (status = 200, description = "Paused: no new call of the script starts; calls in progress finish", body = ScriptState),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the scheduler role (or a session's CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "wrong-state: every campaign of the script is finished", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn pause(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptState>, ApiError> {
    apply(&state, who, script, Control::Pause).await
}

#[utoipa::path(
    post, path = "/api/v1/scripts/{script}/resume", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name")),
    responses(
        (status = 200, description = "Running again (within the same call window it catches up)", body = ScriptState),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the scheduler role (or a session's CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "wrong-state: no campaign of the script is paused", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn resume(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptState>, ApiError> {
    apply(&state, who, script, Control::Resume).await
}

#[utoipa::path(
    post, path = "/api/v1/scripts/{script}/forwarding/pause", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name")),
    responses(
        (status = 200, description = "Forwarding paused: calls take the script's outside-opening-hours branch", body = ScriptState),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the scheduler role (or a session's CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn pause_forwarding(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptState>, ApiError> {
    apply(&state, who, script, Control::PauseForwarding).await
}

#[utoipa::path(
    post, path = "/api/v1/scripts/{script}/forwarding/resume", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name")),
    responses(
        (status = 200, description = "Forwarding open again", body = ScriptState),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the scheduler role (or a session's CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn resume_forwarding(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptState>, ApiError> {
    apply(&state, who, script, Control::ResumeForwarding).await
}
