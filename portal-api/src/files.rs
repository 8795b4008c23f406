//! The portal's file functions and what they share: the engine handle
//! ([`Engine`]: its store and directories), the mapping from a portal
//! organisation to the engine's, file responses with HTTP Range, and the
//! result-file endpoints. Imports are in [`crate::imports`], calls and
//! voicelogs in [`crate::calls`], the blocklist and the calendar in
//! [`crate::blocklist`].
//!
//! # Organisations
//! A portal organisation (`portal_organisations.name`) is the engine
//! organisation (`organisations.name`) of the same name. A portal
//! organisation the engine does not know has no engine data: lists are
//! empty and ids are not found. Every engine read is scoped by the engine
//! organisation in its query, so another organisation's object is a 404,
//! indistinguishable from a missing one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dialcast_engine::config::Config;
use dialcast_engine::store::sqlite::portal::ResultFileRow;
use dialcast_engine::store::{Id, SqliteStore};
use serde::Serialize;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::authz::{allowed, Action, OrgId, Principal};
use crate::problem::{ApiError, Problem};

/// Upper bound of one import upload in [`Engine::under`]: 512 MiB (the
/// same default as `[imports] max_upload_bytes`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// The engine's store and the directories the file functions use.
#[derive(Clone)]
pub struct Engine {
    pub store: Arc<SqliteStore>,
    /// Where uploads are streamed before they are archived (same file
    /// system as `archive_dir` is best).
    pub upload_dir: PathBuf,
    /// The engine's import archive (`Config::import_archive_dir`).
    pub archive_dir: PathBuf,
    /// The voicelog directory; voicelog paths are relative to it.
    pub voicelog_dir: PathBuf,
    /// Uploads larger than this are refused with 413.
    pub max_upload_bytes: u64,
    /// Country for numbers without a country code (imports).
    pub default_country: String,
    /// The audio roots of the scripts' prompts, in catalogue order (the
    /// built-in set first; later roots override earlier ones).
    pub audio_roots: Vec<PathBuf>,
}

impl Engine {
    /// The handle `dialcast serve` builds: the configured import archive
    /// (uploads are spooled in its `.uploads` folder, on the same file
    /// system), voicelog and result directories, `[imports]
    /// max_upload_bytes` and the organisation's default country.
    pub fn from_config(store: Arc<SqliteStore>, config: &Config) -> Engine {
        let archive_dir = config.import_archive_dir();
        Engine {
            store,
            upload_dir: archive_dir.join(".uploads"),
            archive_dir,
            voicelog_dir: config.voicelog_dir(),
            max_upload_bytes: config.imports.max_upload_bytes,
            default_country: config.organisation.default_country.clone(),
            audio_roots: std::iter::once(dialcast_scripts::default_audio_root())
                .chain(config.audio.roots.iter().cloned())
                .collect(),
        }
    }

    /// An engine handle keeping every file under `dir` (tests, demos), with
    /// the default upload limit, country NL and the built-in audio.
    pub fn under(store: Arc<SqliteStore>, dir: &Path) -> Engine {
        Engine {
            store,
            upload_dir: dir.join("uploads"),
            archive_dir: dir.join("imports"),
            voicelog_dir: dir.join("voicelogs"),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            default_country: "NL".to_owned(),
            audio_roots: vec![dialcast_scripts::default_audio_root()],
        }
    }
}

/// The engine handle, or 503 when the portal runs without one.
pub(crate) fn engine(state: &AppState) -> Result<Arc<Engine>, ApiError> {
    state.files.clone().ok_or(ApiError::EngineUnavailable)
}

/// The engine organisation of the caller's portal organisation (same
/// name); `None` when the engine has none of that name.
pub(crate) async fn engine_org(
    state: &AppState,
    engine: &Engine,
    org: OrgId,
) -> Result<Option<Id>, ApiError> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM portal_organisations WHERE id = ?")
            .bind(org.0)
            .fetch_optional(&state.db)
            .await
            .map_err(ApiError::internal)?;
    let Some(name) = name else { return Ok(None) };
    Ok(engine
        .store
        .organisation_by_name(&name)
        .await
        .map_err(ApiError::internal)?
        .map(|o| o.id))
}

/// Serves `path` with `content_type`, answering `Range` (206 with
/// `Content-Range`, 416 for a range outside the file) and conditional
/// headers, by tower-http's [`ServeFile`]. A 416 carries a problem body.
pub(crate) async fn serve_file(
    path: &Path,
    content_type: &'static str,
    disposition: Option<String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut req = Request::new(Body::empty());
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ] {
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    let res = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(ApiError::internal)?;
    let status = res.status();
    if status == StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound);
    }
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let content_range = res.headers().get(header::CONTENT_RANGE).cloned();
        let mut problem = range_not_satisfiable();
        if let Some(v) = content_range {
            problem.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        return Ok(problem);
    }
    let mut res = res.map(Body::new);
    if status.is_success() {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(d) = disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, d);
        }
    }
    Ok(res)
}

fn range_not_satisfiable() -> Response {
    let problem = Problem {
        type_: format!("{}range-not-satisfiable", crate::problem::PROBLEM_BASE),
        title: "Range not satisfiable".to_owned(),
        status: StatusCode::RANGE_NOT_SATISFIABLE.as_u16(),
        detail: "The requested byte range lies outside the file.".to_owned(),
    };
    let mut res = (StatusCode::RANGE_NOT_SATISFIABLE, Json(problem)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::problem::PROBLEM_JSON),
    );
    res
}

/// `attachment; filename="..."` with the name reduced to safe characters.
pub(crate) fn attachment(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_owned());
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
    format!("attachment; filename=\"{safe}\"")
}

/// One result file (one per script, day and format).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultFileView {
    pub id: i64,
    pub script: String,
    /// The organisation's local day, `YYYY-MM-DD`.
    pub day: String,
    /// `csv` or `xml`.
    pub format: String,
    /// Bytes.
    pub size: i64,
    /// Records in the file.
    pub rows: i64,
    /// Unix milliseconds.
    pub written_at: i64,
}

impl From<ResultFileRow> for ResultFileView {
    fn from(r: ResultFileRow) -> Self {
        ResultFileView {
            id: r.id,
            script: r.script,
            day: r.day,
            format: r.format,
            size: r.size,
            rows: r.rows,
            written_at: r.written_at,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/result-files", tag = "files",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's result files, newest day first", body = Vec<ResultFileView>),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No engine store", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_result_files(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<ResultFileView>>, ApiError> {
    allowed(&who, Action::ViewResultFiles, who.org)?;
    let engine = engine(&state)?;
    let Some(org) = engine_org(&state, &engine, who.org).await? else {
        return Ok(Json(Vec::new()));
    };
    let rows = engine
        .store
        .result_files_of(org)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rows.into_iter().map(ResultFileView::from).collect()))
}

#[utoipa::path(
    get, path = "/api/v1/result-files/{id}", tag = "files",
    security(("api_key" = []), ("session" = [])),
    params(("id" = i64, Path, description = "The result file's id")),
    responses(
        (status = 200, description = "The file: `text/csv`, or `application/xml` for an XML result file", content(
            (String = "text/csv"),
            (String = "application/xml")
        )),
        (status = 206, description = "Part of the file (Range)"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the file role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such file in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "Range outside the file", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn download_result_file(
    State(state): State<AppState>,
    who: Principal,
    id: Result<UrlPath<i64>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    allowed(&who, Action::ViewResultFiles, who.org)?;
    let UrlPath(id) = id.map_err(|_| ApiError::NotFound)?;
    let engine = engine(&state)?;
    let org = engine_org(&state, &engine, who.org)
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = engine
        .store
        .result_file_of(org, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound)?;
    let content_type = if row.format == "xml" {
        "application/xml"
    } else {
        "text/csv; charset=utf-8"
    };
    // Stored as written: absolute, or relative to the engine's working
    // directory like every path of its configuration.
    serve_file(
        Path::new(&row.path),
        content_type,
        Some(attachment(&row.path)),
        &headers,
    )
    .await
}

/// The routes of every file function.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_result_files))
        .routes(routes!(download_result_file))
        .merge(crate::imports::routes())
        .merge(crate::calls::routes())
        .merge(crate::blocklist::routes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../engine/dialcast.example.toml");

    #[tokio::test]
    async fn the_engine_handle_follows_the_configuration() {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let config = Config::parse(EXAMPLE, "x.toml", Vec::new()).unwrap();
        let engine = Engine::from_config(store.clone(), &config);
        assert_eq!(engine.max_upload_bytes, 512 * 1024 * 1024);
        assert_eq!(engine.archive_dir, config.import_archive_dir());
        assert!(engine.upload_dir.starts_with(&engine.archive_dir));
        assert_eq!(engine.voicelog_dir, config.voicelog_dir());
        let env = vec![(
            "DIALCAST__IMPORTS__MAX_UPLOAD_BYTES".to_owned(),
            "1000".to_owned(),
        )];
        let config = Config::parse(EXAMPLE, "x.toml", env).unwrap();
        assert_eq!(Engine::from_config(store, &config).max_upload_bytes, 1000);
    }

    #[test]
    fn attachment_names_are_reduced_to_safe_characters() {
        assert_eq!(
            attachment("/srv/results/s-2026-12-05.csv"),
            "attachment; filename=\"s-2026-12-05.csv\""
        );
        assert_eq!(
            attachment("a\"b\r\nc.csv"),
            "attachment; filename=\"a_b__c.csv\""
        );
    }
}
