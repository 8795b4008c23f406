//! The organisation's scripts: the list with each script's state
//! (dashboard role), and, for managers, one script's campaign settings
//! (read, and the run-time ones changed with an audit row), its flow (the
//! steps as the scripts crate parsed them, and the source), its prompt
//! recordings (`audio/wav` with HTTP Range) and its message templates
//! (SMS and e-mail texts per language).
//!
//! Settings that are not stored (the voicelog policy, the forwarding
//! target and opening hours, voicemail and AMD tuning) live in the
//! engine's configuration file and are not shown here. Scripts are found by
//! name within the caller's engine organisation: another organisation's
//! script is 404.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use dialcast_engine::campaign::settings_change::{SettingsChange, SettingsError};
use dialcast_engine::store::sqlite::scripts::ScriptRow;
use dialcast_engine::store::{Campaign, Id};
use dialcast_scripts::{AudioCatalog, Channel, ClipRef, Flow, Script};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{script_states, ScriptState, VoiceState};
use crate::audit;
use crate::authz::{allowed, Action, Principal};
use crate::files::{engine, engine_org, serve_file, Engine};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// Weekday keys of the call windows, Monday first.
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[utoipa::path(
    get, path = "/api/v1/scripts", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's scripts by name, each with its state and campaigns; a script without a campaign is `idle` with none", body = Vec<ScriptState>),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the dashboard role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_scripts(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<ScriptState>>, ApiError> {
    allowed(&who, Action::ListScripts, who.org)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(Vec::new()));
    };
    let scripts = engine
        .store
        .scripts_of_organisation(org)
        .await
        .map_err(ApiError::internal)?;
    let campaigns = engine
        .store
        .campaigns_of_organisation(org)
        .await
        .map_err(ApiError::internal)?;
    let mut states: BTreeMap<String, ScriptState> = script_states(&campaigns)
        .into_iter()
        .map(|s| (s.script.clone(), s))
        .collect();
    for s in scripts {
        states.entry(s.name.clone()).or_insert(ScriptState {
            script: s.name,
            voice: VoiceState::Idle,
            forwarding_paused: false,
            campaigns: Vec::new(),
        });
    }
    Ok(Json(states.into_values().collect()))
}

/// The organisation's script `name` with its campaigns (404 when it has
/// none of that name).
async fn script_of(
    state: &AppState,
    engine: &Engine,
    who: &Principal,
    name: &str,
) -> Result<(Id, ScriptRow, Vec<Campaign>), ApiError> {
    let org = engine_org(state, engine, who.org)
        .await?
        .ok_or(ApiError::NotFound)?;
    let script = engine
        .store
        .script_of_organisation(org, name)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    let campaigns = engine
        .store
        .campaigns_of_organisation(org)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|c| c.script_name == script.name)
        .collect();
    Ok((org, script, campaigns))
}

/// One campaign's call windows and limits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    /// Call windows per weekday (`mon` .. `sun`), `HH:MM-HH:MM` local time.
    pub windows: BTreeMap<String, Vec<String>>,
    /// Attempts per record per local day; 0: no limit besides the total.
    pub max_attempts_per_day: u32,
    /// Dialled attempts per record in any rolling 7 days.
    pub weekly_cap: u32,
    /// Number columns in the order attempts try them.
    pub number_order: Vec<String>,
    /// Calls per second; `null`: the trunk's rate.
    pub cps: Option<u32>,
    pub priority: u32,
}

/// One campaign of the script with its stored settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignSettingsView {
    pub campaign: String,
    /// `idle`, `running`, `paused` or `finished`.
    pub state: String,
    pub trunk: String,
    /// Attempts per record, the first included (changeable).
    pub max_attempts: u32,
    /// Seconds between attempts of a record (changeable).
    pub retry_delay_s: i64,
    /// Seconds a call rings before it counts as not answered (changeable).
    pub ring_timeout_s: i64,
    /// Longest answered call in seconds (changeable).
    pub max_call_s: i64,
    /// Answering-machine detection before the script starts.
    pub amd: bool,
    pub forwarding_paused: bool,
    pub schedule: ScheduleView,
}

/// A script's settings: those of each of its campaigns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScriptSettings {
    pub script: String,
    /// Oldest campaign first; empty for a script no import has used yet.
    pub campaigns: Vec<CampaignSettingsView>,
}

fn settings_view(script: &str, campaigns: &[Campaign]) -> ScriptSettings {
    ScriptSettings {
        script: script.to_owned(),
        campaigns: campaigns
            .iter()
            .map(|c| {
                let s = &c.settings;
                CampaignSettingsView {
                    campaign: c.name.clone(),
                    state: c.state.as_str().to_owned(),
                    trunk: c.trunk.name.clone(),
                    max_attempts: s.max_attempts,
                    retry_delay_s: s.retry_delay_ms / 1000,
                    ring_timeout_s: s.ring_timeout_ms / 1000,
                    max_call_s: s.max_call_ms / 1000,
                    amd: s.amd,
                    forwarding_paused: c.forwarding_paused,
                    schedule: ScheduleView {
                        windows: WEEKDAYS
                            .iter()
                            .zip(s.schedule.windows.iter())
                            .map(|(day, w)| ((*day).to_owned(), w.clone()))
                            .collect(),
                        max_attempts_per_day: s.schedule.max_attempts_per_day,
                        weekly_cap: s.schedule.weekly_cap,
                        number_order: s.schedule.number_order.clone(),
                        cps: s.schedule.cps,
                        priority: s.schedule.priority,
                    },
                }
            })
            .collect(),
    }
}

#[utoipa::path(
    get, path = "/api/v1/scripts/{script}/settings", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name", example = "payment_reminder")),
    responses(
        (status = 200, description = "The settings of each campaign of the script", body = ScriptSettings),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn script_settings(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptSettings>, ApiError> {
    allowed(&who, Action::ViewScript, who.org)?;
    let Path(name) = script.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let (_, script, campaigns) = script_of(&state, &engine, &who, &name).await?;
    Ok(Json(settings_view(&script.name, &campaigns)))
}

/// The settings a manager may change while the script runs; at least one.
/// Calls started after the change (a running campaign reads it within a
/// few seconds) use the new values; calls in flight keep theirs.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct SettingsPatch {
    /// Attempts per record, the first included: 1 to 20.
    #[schema(minimum = 1, maximum = 20)]
    pub max_attempts: Option<u32>,
    /// Seconds between attempts: 60 to 604800 (a week).
    #[schema(minimum = 60, maximum = 604800)]
    pub retry_delay_s: Option<u64>,
    /// Seconds a call rings: 5 to 120.
    #[schema(minimum = 5, maximum = 120)]
    pub ring_timeout_s: Option<u64>,
    /// Longest answered call in seconds: 30 to 3600.
    #[schema(minimum = 30, maximum = 3600)]
    pub max_call_s: Option<u64>,
}

/// Reads the patch field by field, so a problem names the field (a
/// number too large for any range is out of range, not a parse error).
fn parse_patch(body: &serde_json::Value) -> Result<SettingsChange, ApiError> {
    let serde_json::Value::Object(fields) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".to_owned(),
        ));
    };
    let mut change = SettingsChange::default();
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        let n = match value.as_u64() {
            Some(n) => n,
            None if value.is_number() => u64::MAX,
            None => {
                return Err(ApiError::BadRequest(format!(
                    "{key} must be a whole number"
                )))
            }
        };
        match key.as_str() {
            "max_attempts" => change.max_attempts = Some(u32::try_from(n).unwrap_or(u32::MAX)),
            "retry_delay_s" => change.retry_delay_s = Some(n),
            "ring_timeout_s" => change.ring_timeout_s = Some(n),
            "max_call_s" => change.max_call_s = Some(n),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{other} cannot be changed here; expected max_attempts, retry_delay_s, \
                     ring_timeout_s or max_call_s"
                )))
            }
        }
    }
    change.check().map_err(|e| match e {
        SettingsError::OutOfRange { .. } | SettingsError::Empty => {
            ApiError::BadRequest(e.to_string())
        }
    })?;
    Ok(change)
}

fn describe(change: &SettingsChange) -> String {
    let mut parts = Vec::new();
    if let Some(n) = change.max_attempts {
        parts.push(format!("max_attempts={n}"));
    }
    for (name, value) in [
        ("retry_delay_s", change.retry_delay_s),
        ("ring_timeout_s", change.ring_timeout_s),
        ("max_call_s", change.max_call_s),
    ] {
        if let Some(n) = value {
            parts.push(format!("{name}={n}"));
        }
    }
    parts.join(" ")
}

#[utoipa::path(
    patch, path = "/api/v1/scripts/{script}/settings", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name", example = "payment_reminder")),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "Changed on every campaign of the script (audited); the settings now stored", body = ScriptSettings),
        (status = 400, description = "bad-request: not a JSON object, an unknown field, or a value out of range (the detail names the field)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role (or a session's CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "wrong-state: the script has no campaign to change yet", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn change_settings(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<ScriptSettings>, ApiError> {
    allowed(&who, Action::EditScriptSettings, who.org)?;
    let Path(name) = script.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let (org, script, campaigns) = script_of(&state, &engine, &who, &name).await?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let change = parse_patch(&body)?;
    if campaigns.is_empty() {
        return Err(ApiError::Conflict(format!(
            "script {} has no campaign yet: its settings come with its first import",
            script.name
        )));
    }
    let now_ms = state.now().saturating_mul(1000);
    for c in &campaigns {
        let changed = engine
            .store
            .change_campaign_settings(org, c.id, &change, now_ms)
            .await
            .map_err(ApiError::internal)?;
        if !changed {
            return Err(ApiError::NotFound);
        }
    }
    // Committed in the engine's store; the audit row follows (two stores,
    // so not one transaction, as for pause and resume).
    let names: Vec<&str> = campaigns.iter().map(|c| c.name.as_str()).collect();
    let detail = format!("campaigns: {}; {}", names.join(", "), describe(&change));
    let target = format!("script:{}", script.name);
    let mut tx = state.db.begin().await.map_err(ApiError::internal)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: who.org,
            at: state.now(),
            actor: &who.credential.to_string(),
            action: "script.settings",
            target: &target,
            detail: &detail,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    let (_, script, campaigns) = script_of(&state, &engine, &who, &name).await?;
    Ok(Json(settings_view(&script.name, &campaigns)))
}

/// The script loaded against the engine's audio, or the problems that
/// keep it from loading (a script stored before a prompt was removed).
async fn load(engine: &Engine, script: &ScriptRow) -> Result<Loaded, ApiError> {
    let roots = engine.audio_roots.clone();
    let source = script.source.clone();
    let file = script.file_name.clone();
    tokio::task::spawn_blocking(move || {
        let catalog = AudioCatalog::from_roots(&roots).map_err(ApiError::internal)?;
        let script = Script::parse(&source, &file, &catalog).map_err(|e| match e {
            dialcast_scripts::ScriptError::Invalid { diagnostics } => {
                diagnostics.iter().map(|d| d.to_string()).collect()
            }
            other => vec![other.to_string()],
        });
        Ok(Loaded { catalog, script })
    })
    .await
    .map_err(ApiError::internal)?
}

struct Loaded {
    catalog: AudioCatalog,
    script: Result<Script, Vec<String>>,
}

/// A script's flow and source.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScriptFlow {
    pub script: String,
    pub file_name: String,
    /// Unix milliseconds of the last upload.
    pub updated_at: i64,
    /// The script's text (TOML), as uploaded.
    pub source: String,
    /// The parsed script: `name`, `description`, `default_language`,
    /// `languages`, `custom_fields`, `steps` (each an object with a `step`
    /// kind and its keys, blocks by name), `blocks` (name to steps),
    /// `prompts`, `sms_templates` and `has_success_point`. `null` when the
    /// script does not load (see `problems`).
    #[schema(value_type = Option<Object>)]
    pub flow: Option<Flow>,
    /// Why the script does not load (file, line and column); empty when it
    /// does.
    pub problems: Vec<String>,
}

#[utoipa::path(
    get, path = "/api/v1/scripts/{script}/flow", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name", example = "payment_reminder")),
    responses(
        (status = 200, description = "The script's steps, blocks, prompts, SMS templates and point of success, and its source", body = ScriptFlow),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn script_flow(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptFlow>, ApiError> {
    allowed(&who, Action::ViewScript, who.org)?;
    let Path(name) = script.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let (_, row, _) = script_of(&state, &engine, &who, &name).await?;
    let loaded = load(&engine, &row).await?;
    let (flow, problems) = match loaded.script {
        Ok(s) => (Some(s.flow()), Vec::new()),
        Err(problems) => (None, problems),
    };
    Ok(Json(ScriptFlow {
        script: row.name,
        file_name: row.file_name,
        updated_at: row.updated_at,
        source: row.source,
        flow,
        problems,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/scripts/{script}/prompts/{language}/{prompt}", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(
        ("script" = String, Path, description = "The script's name", example = "payment_reminder"),
        ("language" = String, Path, description = "One of the script's languages (`en`, `nl`)", example = "en"),
        ("prompt" = String, Path, description = "A clip the script plays: a prompt of its flow, or a segment it speaks values from (`say/25`, with `/` written `%2F`)", example = "payment_intro"),
        ("Range" = Option<String>, Header, description = "A byte range (`bytes=0-99`, `bytes=-500`)"),
    ),
    responses(
        (status = 200, description = "The recording", content_type = "audio/wav"),
        (status = 206, description = "The requested range, with Content-Range", content_type = "audio/wav"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such script in the organisation, the script does not load, or it plays no such clip in that language", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range outside the file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn prompt_audio(
    State(state): State<AppState>,
    who: Principal,
    path: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed(&who, Action::ViewScript, who.org)?;
    let Path((name, language, prompt)) = path.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let (_, row, _) = script_of(&state, &engine, &who, &name).await?;
    let loaded = load(&engine, &row).await?;
    let script = loaded.script.map_err(|_| ApiError::NotFound)?;
    let clip = ClipRef::new(language, prompt);
    if !script.required_clips().any(|c| *c == clip) {
        return Err(ApiError::NotFound);
    }
    let file = loaded.catalog.path(&clip).ok_or(ApiError::NotFound)?;
    serve_file(file, "audio/wav", None, &headers).await
}

/// A message template of a script (`[templates.<name>]`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    /// `sms` or `email`.
    pub channel: String,
    /// The languages it is written in: the script's languages (an SMS takes
    /// the language the call was spoken in, an e-mail the record's).
    pub languages: Vec<String>,
    /// The text per language as written, `{FIELD}` placeholders and all.
    pub texts: BTreeMap<String, String>,
    /// The subject per language (e-mail; empty for SMS).
    pub subjects: BTreeMap<String, String>,
}

/// The message templates of a script.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScriptTemplates {
    pub script: String,
    /// The SMS templates, by name.
    pub sms: Vec<TemplateView>,
    /// The e-mail templates, by name.
    pub email: Vec<TemplateView>,
    /// The e-mail template sent to records imported with
    /// `SERVICES_EMAIL=Y`; `null` when the script names none.
    pub email_template: Option<String>,
    /// Why the script does not load; the lists are then empty.
    pub problems: Vec<String>,
}

#[utoipa::path(
    get, path = "/api/v1/scripts/{script}/templates", tag = "scripts",
    security(("api_key" = []), ("session" = [])),
    params(("script" = String, Path, description = "The script's name", example = "payment_reminder")),
    responses(
        (status = 200, description = "The script's SMS and e-mail templates with their texts per language", body = ScriptTemplates),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No script of that name in the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn script_templates(
    State(state): State<AppState>,
    who: Principal,
    script: Result<Path<String>, PathRejection>,
) -> Result<Json<ScriptTemplates>, ApiError> {
    allowed(&who, Action::ViewScript, who.org)?;
    let Path(name) = script.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let (_, row, _) = script_of(&state, &engine, &who, &name).await?;
    let loaded = load(&engine, &row).await?;
    let mut templates = ScriptTemplates {
        script: row.name,
        sms: Vec::new(),
        email: Vec::new(),
        email_template: None,
        problems: Vec::new(),
    };
    match loaded.script {
        Ok(s) => {
            templates.email_template = s.email_template().map(|t| t.name().to_string());
            for template in s.templates() {
                let view = TemplateView {
                    name: template.name().to_string(),
                    channel: template.channel().as_str().to_string(),
                    languages: s.languages().to_vec(),
                    texts: collect(template.texts()),
                    subjects: collect(template.subjects()),
                };
                match template.channel() {
                    Channel::Sms => templates.sms.push(view),
                    Channel::Email => templates.email.push(view),
                }
            }
        }
        Err(problems) => templates.problems = problems,
    }
    Ok(Json(templates))
}

fn collect<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs.map(|(l, t)| (l.to_string(), t.to_string())).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn bad_field(body: serde_json::Value) -> String {
        match parse_patch(&body) {
            Err(ApiError::BadRequest(d)) => d,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn a_patch_names_the_field_that_is_wrong() {
        use serde_json::json;
        assert!(bad_field(json!({"max_attempts": 0})).contains("max_attempts"));
        assert!(bad_field(json!({"max_attempts": 1e300})).contains("max_attempts"));
        assert!(
            bad_field(json!({"retry_delay_s": 18446744073709551615_u64})).contains("retry_delay_s")
        );
        assert!(bad_field(json!({"ring_timeout_s": "20"})).contains("ring_timeout_s"));
        assert!(bad_field(json!({"amd": true})).contains("amd"));
        assert!(bad_field(json!({})).contains("nothing to change"));
        assert!(bad_field(json!([1])).contains("object"));
        let change = parse_patch(&json!({"max_attempts": 4, "max_call_s": null})).unwrap();
        assert_eq!(change.max_attempts, Some(4));
        assert_eq!(change.max_call_s, None);
    }
}
