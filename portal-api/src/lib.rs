//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document served at
//! `/api-docs/openapi.json`. Errors are RFC 9457 problem details.
//!
//! Interactive documentation (RapiDoc, vendored) is at `/docs` ([`docs`]);
//! [`server::serve`] serves it all on an address, as `dialcast serve` and
//! `dialcast demo` do (`--portal-addr`).
//!
//! This first slice of issue 7 authenticates API keys (`X-AUTH-TOKEN`);
//! logins, sessions and second factors come later. Its tables live in the
//! engine's database file with a migrations history of their own (see
//! [`db`]); a portal organisation is the engine's organisation of the same
//! id ([`accounts::ensure_organisation`]). It does not depend on `engine`
//! yet (the `dialcast` crate maps one to the other); when portal functions
//! reach campaigns it will, never the reverse.

pub mod accounts;
pub mod api;
pub mod apikey;
pub mod audit;
pub mod authz;
pub mod cidr;
pub mod db;
pub mod docs;
pub mod problem;
pub mod server;

pub use api::{openapi, router, AppState, Clock};
pub use authz::{allowed, Action, Denied, OrgId, Principal, Role};
pub use problem::{ApiError, Problem};
