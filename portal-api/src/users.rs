//! Users management, the Manager's, always in the caller's organisation:
//! `GET`/`POST /api/v1/users`, `PATCH`/`DELETE /api/v1/users/{id}`; and a
//! session's own default organisation, `PUT /api/v1/me/default-organisation`.
//! The store side, with the last-manager rule and the audit entries, is
//! [`crate::membership`].
//!
//! A user of another organisation is answered 404 like a missing one, never
//! 403. A new user's temporary password is in the creation's answer only
//! (14 days, to be changed at first login); an address that already has an
//! account gets a membership instead, and the answer says so without
//! showing anything of the account's other organisations. No answer holds a
//! hash or a secret.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{AccountError, TEMP_PASSWORD_LIFETIME_SECS};
use crate::api::AppState;
use crate::authz::{allowed, may_grant, Action, Credential, Denied, OrgId, Principal, Role};
use crate::login::{self, AccountView};
use crate::membership::{self, Change, Member, MemberError, Module};
use crate::problem::{ApiError, Problem};
use crate::second_factor::SecondFactor;
use crate::session::{ActiveUser, AuthConfig};

/// A member of the caller's organisation (never a hash or a secret).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    /// The role in this organisation.
    pub role: Role,
    /// The modules the user may use in this organisation.
    pub modules: Vec<Module>,
    /// This organisation is the user's default (where their login starts).
    pub default_organisation: bool,
    /// A temporary password has been issued and not yet changed, and still
    /// works.
    pub temporary_password_pending: bool,
    /// A temporary password was issued and not changed in time: it no
    /// longer works ("forgot password" or a new account is needed).
    pub temporary_password_expired: bool,
    /// When the temporary password stops (or stopped) working, if there is
    /// one (Unix seconds).
    pub temporary_password_expires_at: Option<i64>,
    /// When the current password expires (Unix seconds).
    pub password_expires_at: i64,
    /// The password has expired; it must be changed at the next login.
    pub password_expired: bool,
    /// The second factor enrolled, if any.
    pub second_factor: Option<SecondFactor>,
}

impl UserView {
    fn new(m: Member, cfg: &AuthConfig, now: i64) -> UserView {
        let temp = m.temp_expires_at.filter(|_| m.must_change);
        let password_expires_at = cfg.password_expires_at(m.password_changed_at);
        UserView {
            id: m.user_id,
            email: m.email,
            role: m.role,
            modules: m.modules,
            default_organisation: m.is_default,
            temporary_password_pending: temp.is_some_and(|t| now < t),
            temporary_password_expired: temp.is_some_and(|t| now >= t),
            temporary_password_expires_at: temp,
            password_expires_at,
            password_expired: now >= password_expires_at,
            second_factor: m.second_factor,
        }
    }
}

/// A user to add to the caller's organisation.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUser {
    /// The login; if it already has an account (in another organisation),
    /// that account becomes a member.
    #[schema(format = Email)]
    pub email: String,
    /// At most the caller's own role.
    pub role: Role,
    /// Modules the user may use here; none if absent.
    #[serde(default)]
    pub modules: Vec<Module>,
}

/// The member added.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserView,
    /// The new account's temporary password, shown this once: it works for
    /// 14 days and must be changed at first login. Null when the address
    /// already had an account (it keeps its own password).
    pub temporary_password: Option<String>,
    /// The address already had an account: a membership was added to it
    /// instead of a new account.
    pub existing_account: bool,
    /// What happened, to show to the manager.
    pub message: String,
}

/// A change of a member; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUser {
    /// At most the caller's own role.
    #[serde(default)]
    pub role: Option<Role>,
    /// The whole new list of modules.
    #[serde(default)]
    pub modules: Option<Vec<Module>>,
}

/// The organisation a login should start in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DefaultOrganisation {
    pub organisation_id: OrgId,
}

fn member_err(e: MemberError) -> ApiError {
    match e {
        MemberError::NotFound => ApiError::NotFound,
        MemberError::LastManager => ApiError::LastManager,
        MemberError::AlreadyMember => ApiError::AlreadyMember,
        MemberError::Account(AccountError::BadEmail(_)) => {
            ApiError::Invalid("The e-mail address is not valid.".to_owned())
        }
        e => ApiError::internal(e),
    }
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn view(state: &AppState, org: OrgId, user_id: i64) -> Result<UserView, ApiError> {
    let m = membership::get(&state.db, org, user_id)
        .await
        .map_err(member_err)?;
    Ok(UserView::new(m, &state.auth, state.now()))
}

#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    security(("api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The organisation's users, by e-mail address", body = Vec<UserView>),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role, or password-change-required", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<UserView>>, ApiError> {
    allowed(&who, Action::ListUsers, who.org)?;
    let now = state.now();
    let members = membership::list(&state.db, who.org)
        .await
        .map_err(member_err)?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| UserView::new(m, &state.auth, now))
            .collect(),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    security(("api_key" = []), ("session" = [])),
    request_body = CreateUser,
    params(("X-Dialcast-CSRF" = Option<String>, Header, description = "Any non-empty value (CSRF guard); needed with the session cookie")),
    responses(
        (status = 201, description = "Added: a new account with its temporary password (shown once), or a membership of an existing account", body = CreatedUser),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role, a role above the caller's, password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already-a-member: the address already belongs to a member of the organisation", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid: not an e-mail address", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    who: Principal,
    req: Result<Json<CreateUser>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    allowed(&who, Action::CreateUser, who.org)?;
    let req = body(req)?;
    may_grant(&who, req.role)?;
    let now = state.now();
    let added = membership::add(
        &state.db,
        who.org,
        &req.email,
        req.role,
        &req.modules,
        &who.credential.to_string(),
        now,
    )
    .await
    .map_err(member_err)?;
    let message = if added.existing_account {
        "This address already had an account: it is now also a member of this organisation, \
         with its own password."
            .to_owned()
    } else {
        format!(
            "Account created. Give the temporary password to the user: it is shown only now, \
             works for {} days and must be changed at first login.",
            TEMP_PASSWORD_LIFETIME_SECS / (24 * 3600)
        )
    };
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: view(&state, who.org, added.user_id).await?,
            temporary_password: added.temporary_password.map(|p| p.expose().to_owned()),
            existing_account: added.existing_account,
            message,
        }),
    ))
}

#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "users",
    security(("api_key" = []), ("session" = [])),
    request_body = UpdateUser,
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("X-Dialcast-CSRF" = Option<String>, Header, description = "Any non-empty value (CSRF guard); needed with the session cookie"),
    ),
    responses(
        (status = 200, description = "The member as changed", body = UserView),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role, a role above the caller's, password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No user with this id in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "last-manager: the organisation's only manager keeps the role", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_user(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
    req: Result<Json<UpdateUser>, JsonRejection>,
) -> Result<Json<UserView>, ApiError> {
    allowed(&who, Action::EditUser, who.org)?;
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    let req = body(req)?;
    if let Some(role) = req.role {
        may_grant(&who, role)?;
    }
    let change = Change {
        role: req.role,
        modules: req.modules,
    };
    membership::update(
        &state.db,
        who.org,
        id,
        &change,
        &who.credential.to_string(),
        state.now(),
    )
    .await
    .map_err(member_err)?;
    Ok(Json(view(&state, who.org, id).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/users/{id}", tag = "users",
    security(("api_key" = []), ("session" = [])),
    params(
        ("id" = i64, Path, description = "The user's id"),
        ("X-Dialcast-CSRF" = Option<String>, Header, description = "Any non-empty value (CSRF guard); needed with the session cookie"),
    ),
    responses(
        (status = 204, description = "The user is no longer a member (the account stays for its other organisations); their sessions here are ended"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the manager role, password-change-required or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No user with this id in the caller's organisation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "last-manager (the organisation's only manager), or own-membership (a user cannot remove themselves)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn remove_user(
    State(state): State<AppState>,
    who: Principal,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    allowed(&who, Action::RemoveUser, who.org)?;
    let Path(id) = id.map_err(|_| ApiError::NotFound)?;
    if who.credential == Credential::User(id) {
        return Err(ApiError::OwnMembership);
    }
    membership::remove(
        &state.db,
        who.org,
        id,
        &who.credential.to_string(),
        state.now(),
    )
    .await
    .map_err(member_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put, path = "/api/v1/me/default-organisation", tag = "auth",
    security(("session" = [])),
    request_body = DefaultOrganisation,
    params(("X-Dialcast-CSRF" = String, Header, description = "Any non-empty value (CSRF guard)")),
    responses(
        (status = 200, description = "The account, with its new default organisation (where the next login starts)", body = AccountView),
        (status = 400, description = "Bad request body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No session, or it expired", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a member of that organisation, password-change-required, or csrf-header-missing", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn set_default_organisation(
    State(state): State<AppState>,
    ActiveUser(s): ActiveUser,
    req: Result<Json<DefaultOrganisation>, JsonRejection>,
) -> Result<Json<AccountView>, ApiError> {
    allowed(&s.principal(), Action::SetOwnDefaultOrganisation, s.org)?;
    let req = body(req)?;
    let now = state.now();
    membership::set_default(&state.db, s.user_id, req.organisation_id, now)
        .await
        .map_err(|e| match e {
            MemberError::NotFound => ApiError::Forbidden(Denied::NotAMember),
            e => member_err(e),
        })?;
    Ok(Json(
        login::account(&state.db, &state.auth, s.user_id, now).await?,
    ))
}

/// The users-management routes, for the API router.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, remove_user))
        .routes(routes!(set_default_organisation))
}
