//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document served at
//! `/api-docs/openapi.json`. Errors are RFC 9457 problem details.
//!
//! Callers authenticate with an API key (`X-AUTH-TOKEN`) or a login
//! session cookie ([`login`], [`session`]): password, optional second
//! factor ([`second_factor`]: TOTP or a code through the [`CodeSender`]),
//! temporary and expiring passwords, reset links, rate limits
//! ([`ratelimit`]). Its tables live in the
//! engine's database file with a migrations history of their own (see
//! [`db`]). It does not depend on `engine` yet; when portal functions
//! reach campaigns it will, never the reverse.

pub mod accounts;
pub mod api;
pub mod apikey;
pub mod audit;
pub mod authz;
pub mod cidr;
pub mod db;
pub mod login;
pub mod problem;
pub mod ratelimit;
pub mod second_factor;
pub mod session;

pub use api::{openapi, router, AppState, Clock};
pub use authz::{allowed, Action, Denied, OrgId, Principal, Role};
pub use problem::{ApiError, Problem};
pub use second_factor::{CodeSender, Outbound};
pub use session::AuthConfig;
