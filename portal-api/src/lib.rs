//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document.

pub mod authz;
pub mod cidr;

pub use authz::{allowed, Action, Denied, OrgId, Principal, Role};
