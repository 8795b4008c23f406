//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document served at
//! `/api-docs/openapi.json`. Errors are RFC 9457 problem details.
//!
//! This first slice of issue 7 authenticates API keys (`X-AUTH-TOKEN`);
//! logins, sessions and second factors come later. Its tables live in the
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
pub mod problem;

pub use api::{openapi, router, AppState, Clock};
pub use authz::{allowed, Action, Denied, OrgId, Principal, Role};
pub use problem::{ApiError, Problem};
