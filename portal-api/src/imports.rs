//! Imports over HTTP: a multipart upload streamed to disk (never held in
//! memory, refused with 413 past [`Engine::max_upload_bytes`]), archived and
//! validated by the engine's import code ([`dialcast_engine::imports`]) in
//! the background; then confirm or cancel, the list, one import with its
//! validation report (row and column of every error), and the original
//! file.
//!
//! ```text
//! POST /imports ──► uploaded ──(background)──► validating ──► validated
//!                                        POST confirm ──► finished (or validated again, rows fail)
//!                                        POST cancel  ──► cancelled
//! ```

use std::path::{Path, PathBuf};

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dialcast_engine::imports::{self as engine_imports, PassOptions, Upload};
use dialcast_engine::store::{ImportInfo, ImportStatus, ImportStore as _, StoreError};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

use crate::api::AppState;
use crate::audit;
use crate::authz::{allowed, Action, Principal};
use crate::files::{attachment, engine, engine_org, serve_file, Engine};
use crate::problem::{ApiError, Problem};

/// Bytes of multipart framing allowed beyond the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Longest campaign name accepted in the form.
const MAX_TEXT_FIELD: usize = 1024;

/// One import: its file, status and counts (and, for one import, its last
/// validation report).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: i64,
    pub campaign: String,
    pub script: String,
    /// The name the file was uploaded under.
    pub file_name: String,
    /// Bytes.
    pub file_size: u64,
    /// uploaded, validating, validated, importing, finished, failed or
    /// cancelled.
    pub status: String,
    /// Data rows read by the last pass.
    pub records: u64,
    /// Records added (0 until finished).
    pub imported: u64,
    /// Rows that failed validation.
    pub failed: u64,
    /// Unix milliseconds.
    pub uploaded_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Whether the original can still be downloaded (retention deletes it).
    pub original_available: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// The last validation report: counts, and `errors`/`warnings` as
    /// `{row, column, reason}` with `row` the line the row starts on
    /// (header = 1).
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

impl From<ImportInfo> for ImportView {
    fn from(i: ImportInfo) -> Self {
        ImportView {
            id: i.id,
            campaign: i.campaign,
            script: i.script,
            file_name: i.file_name,
            file_size: i.file_size,
            status: i.status.as_str().to_owned(),
            records: i.records,
            imported: i.imported,
            failed: i.failed,
            uploaded_at: i.uploaded_at,
            started_at: i.started_at,
            finished_at: i.finished_at,
            original_available: i.stored_path.is_some(),
            error: i.error,
            report: i.report,
        }
    }
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads it as a stream
pub struct UploadForm {
    /// The campaign to import into (it names the script).
    pub campaign: String,
    /// The file: CSV, ODS, XLSX or XML (by its extension).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Options of a confirm.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmImport {
    /// Import the rows that pass even when other rows fail.
    #[serde(default)]
    pub accept_partial: bool,
}

/// Maps an engine error: a state conflict is the client's, the rest is
/// internal.
fn engine_error(e: anyhow::Error) -> ApiError {
    match e.downcast_ref::<StoreError>() {
        Some(StoreError::WrongState { .. }) => ApiError::Conflict(e.to_string()),
        Some(StoreError::NotFound { .. }) => ApiError::NotFound,
        _ => ApiError::internal(format!("{e:#}")),
    }
}

/// The error of a pass that could not start: a conflict when another pass
/// (the background validation, or another request) works on the import,
/// else [`engine_error`]. The engine reports a held import lock as a plain
/// error, so the import's status is read again to tell.
async fn busy_or(
    state: &AppState,
    engine: &Engine,
    who: &Principal,
    id: i64,
    e: anyhow::Error,
) -> ApiError {
    let busy = "another pass is working on this import; try again when it is validated";
    match own_import(state, engine, who, id).await {
        Ok(info)
            if matches!(
                info.status,
                ImportStatus::Validating | ImportStatus::Importing
            ) =>
        {
            ApiError::Conflict(busy.to_owned())
        }
        _ if format!("{e:#}").contains("being worked on") => ApiError::Conflict(busy.to_owned()),
        _ => engine_error(e),
    }
}

/// Writes one audit row for a change made in the engine's store.
pub(crate) async fn audited(
    state: &AppState,
    who: &Principal,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await.map_err(ApiError::internal)?;
    audit::record(
        &mut tx,
        audit::Entry {
            org: who.org,
            at: state.now(),
            actor: &who.credential.to_string(),
            action,
            target,
            detail,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)
}

/// The caller's import `id`, or 404 (also for another organisation's).
async fn own_import(
    state: &AppState,
    engine: &Engine,
    who: &Principal,
    id: i64,
) -> Result<ImportInfo, ApiError> {
    let org = engine_org(state, engine, who.org)
        .await?
        .ok_or(ApiError::NotFound)?;
    let info = engine.store.import_info(id).await.map_err(|e| match e {
        StoreError::NotFound { .. } => ApiError::NotFound,
        e => ApiError::internal(e),
    })?;
    if info.organisation_id != org {
        return Err(ApiError::NotFound);
    }
    Ok(info)
}

/// A file streamed to disk: removed when dropped unless kept.
struct Spooled {
    dir: PathBuf,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The uploaded name reduced to safe characters, keeping its extension
/// (which chooses the reader).
fn safe_name(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.trim_matches('.').is_empty() {
        "upload.csv".to_owned()
    } else {
        safe
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(0);
    }
    ApiError::BadRequest(format!("bad multipart body: {}", e.body_text()))
}

#[utoipa::path(
    post, path = "/api/v1/imports", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Uploaded; validation runs (poll GET /api/v1/imports/{id})", body = ImportView),
        (status = 400, description = "Bad multipart body or missing field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the configured limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown campaign", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn upload_import(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    allowed(&who, Action::UploadImport, who.org)?;
    let engine = engine(&state)?;
    let limit = engine.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut multipart = multipart.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut campaign: Option<String> = None;
    let mut spooled: Option<(Spooled, PathBuf, String)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("campaign") => {
                let text = field.text().await.map_err(multipart_error)?;
                if text.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::BadRequest("campaign is too long".to_owned()));
                }
                campaign = Some(text.trim().to_owned());
            }
            Some("file") if spooled.is_none() => {
                let original = field.file_name().unwrap_or("upload.csv").to_owned();
                let dir = engine
                    .upload_dir
                    .join(format!("{:016x}", rand::random::<u64>()));
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(ApiError::internal)?;
                let guard = Spooled { dir: dir.clone() };
                let path = dir.join(safe_name(&original));
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?;
                let mut written: u64 = 0;
                // One chunk at a time: memory stays flat whatever the size.
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    written += chunk.len() as u64;
                    if written > limit {
                        return Err(ApiError::PayloadTooLarge(limit));
                    }
                    out.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                out.flush().await.map_err(ApiError::internal)?;
                drop(out);
                spooled = Some((guard, path, original));
            }
            _ => {
                // Unknown or repeated fields are drained and ignored.
                while field.chunk().await.map_err(multipart_error)?.is_some() {}
            }
        }
    }
    let campaign = campaign
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the form needs a campaign field".to_owned()))?;
    let (_guard, path, original) =
        spooled.ok_or_else(|| ApiError::BadRequest("the form needs a file field".to_owned()))?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Err(ApiError::UnknownCampaign(campaign));
    };
    let target = engine
        .store
        .campaign_in_organisation(org, &campaign)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::UnknownCampaign(campaign.clone()))?;
    let id = engine_imports::upload(
        &*engine.store,
        &Upload {
            organisation: org,
            campaign: target.id,
            script: &target.script,
            file: &path,
            name: Some(&original),
            archive_dir: &engine.archive_dir,
        },
        state.now().saturating_mul(1000),
    )
    .await
    .map_err(engine_error)?;
    audited(
        &state,
        &who,
        "import.upload",
        &format!("import:{id}"),
        &format!("{original} into {campaign}"),
    )
    .await?;
    let info = engine
        .store
        .import_info(id)
        .await
        .map_err(ApiError::internal)?;
    // Validation reads the whole file: in the background, so that a large
    // upload answers at once; the client polls the import.
    let store = engine.store.clone();
    let options = PassOptions::new(&engine.default_country);
    tokio::spawn(async move {
        if let Err(e) = engine_imports::validate(&*store, id, &options).await {
            tracing::warn!(import = id, error = %format!("{e:#}"), "import validation failed");
        }
    });
    let location = format!("/api/v1/imports/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(ImportView::from(info)),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/api/v1/imports", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's imports with counts and status, newest first (without reports)", body = Vec<ImportView>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_imports(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<ImportView>>, ApiError> {
    allowed(&who, Action::ViewImports, who.org)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(Vec::new()));
    };
    let list = engine
        .store
        .imports(org)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(list.into_iter().map(ImportView::from).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/imports/{id}", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The import's id")),
    responses(
        (status = 200, description = "The import with its last validation report", body = ImportView),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in the caller's organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_import(
    State(state): State<AppState>,
    who: Principal,
    id: Result<UrlPath<i64>, PathRejection>,
) -> Result<Json<ImportView>, ApiError> {
    allowed(&who, Action::ViewImports, who.org)?;
    let UrlPath(id) = id.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    Ok(Json(own_import(&state, &engine, &who, id).await?.into()))
}

#[utoipa::path(
    post, path = "/api/v1/imports/{id}/confirm", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The import's id")),
    request_body(content = Option<ConfirmImport>, description = "Optional; `accept_partial` imports the passing rows when others fail"),
    responses(
        (status = 200, description = "The import after the pass: finished, or validated again when rows fail (see its report)", body = ImportView),
        (status = 400, description = "A body that is not a `ConfirmImport` object", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not uploaded or validated (still validating, finished, cancelled)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn confirm_import(
    State(state): State<AppState>,
    who: Principal,
    id: Result<UrlPath<i64>, PathRejection>,
    body: Result<Json<ConfirmImport>, JsonRejection>,
) -> Result<Json<ImportView>, ApiError> {
    allowed(&who, Action::ConfirmImport, who.org)?;
    let UrlPath(id) = id.map_err(|_| ApiError::NotFound)?;
    let options_in = match body {
        Ok(Json(b)) => b,
        Err(JsonRejection::MissingJsonContentType(_)) => ConfirmImport::default(),
        Err(e) => return Err(ApiError::BadRequest(e.body_text())),
    };
    let engine = engine(&state)?;
    let info = own_import(&state, &engine, &who, id).await?;
    if !info.status.may_start_pass() {
        return Err(ApiError::Conflict(format!(
            "import {id} is {}; only an uploaded or validated import can be confirmed",
            info.status.as_str()
        )));
    }
    let mut options = PassOptions::new(&engine.default_country);
    options.accept_partial = options_in.accept_partial;
    let report = match engine_imports::confirm(&*engine.store, id, &options).await {
        Ok(report) => report,
        Err(e) => return Err(busy_or(&state, &engine, &who, id, e).await),
    };
    audited(
        &state,
        &who,
        "import.confirm",
        &format!("import:{id}"),
        &format!(
            "{}: {} inserted, {} failing rows{}",
            report.status.as_str(),
            report.inserted,
            report.will_fail,
            if options_in.accept_partial {
                " (partial accepted)"
            } else {
                ""
            }
        ),
    )
    .await?;
    Ok(Json(own_import(&state, &engine, &who, id).await?.into()))
}

#[utoipa::path(
    post, path = "/api/v1/imports/{id}/cancel", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The import's id")),
    responses(
        (status = 200, description = "Cancelled", body = ImportView),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not uploaded or validated", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn cancel_import(
    State(state): State<AppState>,
    who: Principal,
    id: Result<UrlPath<i64>, PathRejection>,
) -> Result<Json<ImportView>, ApiError> {
    allowed(&who, Action::CancelImport, who.org)?;
    let UrlPath(id) = id.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let info = own_import(&state, &engine, &who, id).await?;
    if !matches!(
        info.status,
        ImportStatus::Uploaded | ImportStatus::Validated
    ) {
        return Err(ApiError::Conflict(format!(
            "import {id} is {}; only an uploaded or validated import can be cancelled",
            info.status.as_str()
        )));
    }
    engine_imports::cancel(&*engine.store, id)
        .await
        .map_err(engine_error)?;
    audited(&state, &who, "import.cancel", &format!("import:{id}"), "").await?;
    Ok(Json(own_import(&state, &engine, &who, id).await?.into()))
}

#[utoipa::path(
    get, path = "/api/v1/imports/{id}/original", tag = "imports",
    security(("api_key" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The import's id")),
    responses(
        (status = 200, description = "The file as uploaded, typed by its name's extension", content(
            (String = "text/csv"),
            (String = "application/xml"),
            (String = "application/vnd.oasis.opendocument.spreadsheet"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "application/octet-stream")
        )),
        (status = 206, description = "Part of it (Range)"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such import in the caller's organisation, or its file is past retention", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range outside the file", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn download_original(
    State(state): State<AppState>,
    who: Principal,
    id: Result<UrlPath<i64>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed(&who, Action::DownloadImport, who.org)?;
    let UrlPath(id) = id.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let info = own_import(&state, &engine, &who, id).await?;
    let stored = info.stored_path.ok_or(ApiError::NotFound)?;
    let content_type = match Path::new(&info.file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => "text/csv",
        Some("xml") => "application/xml",
        Some("ods") => "application/vnd.oasis.opendocument.spreadsheet",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    };
    serve_file(
        Path::new(&stored),
        content_type,
        Some(attachment(&info.file_name)),
        &headers,
    )
    .await
}

/// The import routes. The upload route lifts axum's default body limit:
/// the handler enforces [`Engine::max_upload_bytes`] while it streams.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_imports, upload_import).layer(DefaultBodyLimit::disable()))
        .routes(routes!(get_import))
        .routes(routes!(confirm_import))
        .routes(routes!(cancel_import))
        .routes(routes!(download_original))
}
