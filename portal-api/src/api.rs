//! The HTTP endpoints, the [`Principal`] extractor (an `X-AUTH-TOKEN` API
//! key or a session cookie), and the OpenAPI document built from them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;
use utoipa::openapi::security::{ApiKey as ApiKeyScheme, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::apikey::{self, NewKey};
use crate::audit::{self, AuditRow};
use crate::authz::{allowed, may_grant, Action, Credential, OrgId, Principal, Role};
use crate::cidr;
use crate::functions::{self, EngineAccess};
use crate::login::{self, AccountView};
use crate::problem::{ApiError, Problem};
use crate::second_factor::{CodeSender, NoCodeSender};
use crate::session::{self, AuthConfig};

/// The header that carries an API key.
pub const AUTH_HEADER: &str = "x-auth-token";
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";
/// Most audit rows one request returns.
const AUDIT_PAGE: u32 = 200;

/// The current time in Unix seconds. A function so that tests can run the
/// login flows on a virtual clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: SqlitePool,
    pub clock: Clock,
    /// Login, session and password settings.
    pub auth: Arc<AuthConfig>,
    /// Where login codes and reset links go (the engine's outbox).
    pub codes: Arc<dyn CodeSender>,
    /// The engine's store (and, in the engine's process, its statistics
    /// feed) for the portal functions; without it they answer 503
    /// `engine-unavailable`.
    pub engine: Option<EngineAccess>,
    /// The engine's directories and upload limit (and its store) for the
    /// file functions (imports, result files, calls, blocklist, calendar);
    /// without it they answer 503 `engine-unavailable`.
    pub files: Option<Arc<crate::files::Engine>>,
}

impl AppState {
    /// State on the system clock with the default [`AuthConfig`] (secure
    /// cookies) and no code sender: set one with
    /// [`AppState::with_code_sender`].
    pub fn new(db: SqlitePool) -> AppState {
        AppState {
            db,
            clock: Arc::new(|| chrono::Utc::now().timestamp()),
            auth: Arc::new(AuthConfig::default()),
            codes: Arc::new(NoCodeSender),
            engine: None,
            files: None,
        }
    }

    /// The same state with the engine's directories, upload limit and
    /// store for the file functions.
    pub fn with_files(self, files: crate::files::Engine) -> AppState {
        AppState {
            files: Some(Arc::new(files)),
            ..self
        }
    }

    /// The same state with the engine's store for the portal functions.
    pub fn with_engine(self, engine: EngineAccess) -> AppState {
        AppState {
            engine: Some(engine),
            ..self
        }
    }

    /// The same state on another clock.
    pub fn with_clock(self, clock: Clock) -> AppState {
        AppState { clock, ..self }
    }

    /// The same state with other login settings.
    pub fn with_auth(self, auth: AuthConfig) -> AppState {
        AppState {
            auth: Arc::new(auth),
            ..self
        }
    }

    /// The same state sending codes and reset links through `codes`.
    pub fn with_code_sender(self, codes: Arc<dyn CodeSender>) -> AppState {
        AppState { codes, ..self }
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// An `X-AUTH-TOKEN` header wins; without one, the session cookie. A
    /// session whose password must be changed is refused here (only the
    /// password change takes it).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = parts.headers.get(AUTH_HEADER) else {
            let s = session::from_parts(parts, state)
                .await?
                .ok_or(ApiError::Unauthorised)?;
            if s.must_change {
                return Err(ApiError::PasswordChangeRequired);
            }
            return Ok(Principal {
                org: s.org,
                role: s.role,
                credential: Credential::User(s.user_id),
            });
        };
        let token = token.to_str().map_err(|_| ApiError::Unauthorised)?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        match apikey::authenticate(&state.db, token, client, state.now())
            .await
            .map_err(ApiError::internal)?
        {
            Ok(key) => Ok(Principal {
                org: key.org,
                role: key.role,
                credential: Credential::ApiKey(key.id),
            }),
            Err(refused) => {
                tracing::info!(?refused, "api key refused");
                Err(ApiError::Unauthorised)
            }
        }
    }
}

/// The caller as the API sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub organisation_id: OrgId,
    pub role: Role,
    /// The API key used, if the caller used one.
    pub api_key_id: Option<i64>,
    /// The logged-in user's account, for a session (absent for API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountView>,
}

/// An API key as listed (never its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    /// The public part of the key, `dc_<prefix>_…`.
    pub prefix: String,
    pub role: Role,
    pub name: String,
    /// Allowed client addresses (CIDR); empty means any.
    pub allowed_cidrs: Vec<String>,
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl From<apikey::ApiKey> for ApiKeyView {
    fn from(k: apikey::ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: k.id,
            prefix: k.prefix,
            role: k.role,
            name: k.name,
            allowed_cidrs: k.cidrs.iter().map(|c| c.to_string()).collect(),
            created_by: k.created_by,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A request for a new API key in the caller's organisation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKey {
    /// At most the caller's own role.
    pub role: Role,
    #[serde(default)]
    pub name: String,
    /// Client addresses or CIDR blocks allowed to use the key; empty or
    /// absent means any.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
}

/// A new key: `key` is shown this once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKeyView,
}

#[utoipa::path(
    get, path = "/api/v1/me", tag = "auth",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller's organisation and role; for a session also the account, with the password-expiry notice", body = Me),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "password-change-required", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn me(State(state): State<AppState>, who: Principal) -> Result<Json<Me>, ApiError> {
    allowed(&who, Action::ViewSelf, who.org)?;
    let (api_key_id, account) = match who.credential {
        Credential::ApiKey(id) => (Some(id), None),
        Credential::User(id) => (
            None,
            Some(login::account(&state.db, &state.auth, id, state.now()).await?),
        ),
    };
    Ok(Json(Me {
        organisation_id: who.org,
        role: who.role,
        api_key_id,
        account,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/apikeys", tag = "apikeys",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The organisation's API keys, newest first", body = Vec<ApiKeyView>),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_api_keys(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    allowed(&who, Action::ListApiKeys, who.org)?;
    let keys = apikey::list(&state.db, who.org)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(keys.into_iter().map(ApiKeyView::from).collect()))
}

#[utoipa::path(
    post, path = "/api/v1/apikeys", tag = "apikeys",
    security(("api_key" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The new key, shown once", body = CreatedApiKey),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role, or a role above the caller's", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_api_key(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Json<CreateApiKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    allowed(&who, Action::CreateApiKey, who.org)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    may_grant(&who, body.role)?;
    let cidrs =
        cidr::parse_list(&body.allowed_cidrs).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (row, key) = apikey::create(
        &state.db,
        who.org,
        body.role,
        NewKey {
            name: body.name,
            cidrs,
        },
        &who.credential.to_string(),
        state.now(),
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.expose().to_owned(),
            info: row.into(),
        }),
    ))
}

#[utoipa::path(
    delete, path = "/api/v1/apikeys/{id}", tag = "apikeys",
    security(("api_key" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live key with this id in the caller's organisation", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&who, Action::RevokeApiKey, who.org)?;
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    // Scoped by organisation in the query itself: another organisation's
    // key is indistinguishable from a missing one.
    let revoked = apikey::revoke(
        &state.db,
        who.org,
        id,
        &who.credential.to_string(),
        state.now(),
    )
    .await
    .map_err(ApiError::internal)?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The organisation's most recent changes, newest first", body = Vec<AuditRow>),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_audit(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    allowed(&who, Action::ViewAudit, who.org)?;
    let rows = audit::list(&state.db, who.org, AUDIT_PAGE)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rows))
}

/// Adds the `X-AUTH-TOKEN` and session-cookie security schemes.
struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::new("X-AUTH-TOKEN"))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKeyScheme::Cookie(ApiKeyValue::with_description(
                session::SECURE_COOKIE_NAME,
                "The session cookie set by POST /api/v1/auth/login (named dialcast_session \
                 when secure_cookies is off). State-changing requests also need the \
                 X-Dialcast-CSRF header.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Dialcast portal API", description = "Accounts, logins, API keys, audit log, dashboard, statistics, script control, the live statistics stream, imports, result files, calls and voicelogs, blocklist and calendar, scripts (settings, flow, prompts, templates), voice insights, the SMS list."),
    modifiers(&SecurityAddon),
    components(schemas(Problem))
)]
struct ApiDoc;

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The API's routes (still wanting their state) and their OpenAPI document.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(list_audit))
        .routes(routes!(functions::stats::dashboard))
        .routes(routes!(functions::stats::statistics))
        .routes(routes!(functions::control::pause))
        .routes(routes!(functions::control::resume))
        .routes(routes!(functions::control::pause_forwarding))
        .routes(routes!(functions::control::resume_forwarding))
        .routes(routes!(functions::events::events))
        .routes(routes!(functions::scripts::list_scripts))
        .routes(routes!(
            functions::scripts::script_settings,
            functions::scripts::change_settings
        ))
        .routes(routes!(functions::scripts::script_flow))
        .routes(routes!(functions::scripts::prompt_audio))
        .routes(routes!(functions::scripts::script_templates))
        .routes(routes!(functions::insights::voice_insights))
        .merge(crate::sms::routes())
        .merge(crate::emails::routes())
        .merge(login::routes())
        .merge(crate::files::routes())
        .merge(crate::users::routes())
        .split_for_parts()
}

/// The OpenAPI document, without serving anything.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The whole portal router: the API, [`OPENAPI_PATH`] and the interactive
/// documentation ([`crate::docs`]). Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that key
/// allowlists and login rate limits see the client address, as
/// [`crate::server::serve`] does.
pub fn router(state: AppState) -> Router {
    let (router, api) = routes();
    let api = Arc::new(api);
    router
        .route(
            OPENAPI_PATH,
            get(move || async move { Json(api.as_ref().clone()) }),
        )
        .merge(crate::docs::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}
