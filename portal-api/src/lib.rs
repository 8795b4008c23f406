//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document served at
//! `/api-docs/openapi.json`. Errors are RFC 9457 problem details.
//!
//! Callers authenticate with an API key (`X-AUTH-TOKEN`) or a login
//! session cookie ([`login`], [`session`]): password, optional second
//! factor ([`second_factor`]: TOTP or a code through the [`CodeSender`]),
//! temporary and expiring passwords, reset links, rate limits
//! ([`ratelimit`]). Its tables live in the engine's database file with a
//! migrations history of their own (see [`db`]).
//!
//! The file functions ([`files`]: result files; [`imports`]; [`calls`]
//! with voicelog playback; [`blocklist`] and the calendar) work on the
//! engine's store through `dialcast-engine` (never the reverse), given to
//! the state with [`AppState::with_engine`]; a portal organisation is the
//! engine organisation of the same name.
//!
//! # Serving it
//! ```no_run
//! # use std::{net::SocketAddr, sync::Arc};
//! # use dialcast_portal_api::{db, router, AppState, AuthConfig, CodeSender};
//! # async fn serve(outbox: Arc<dyn CodeSender>, cfg: AuthConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let listen: SocketAddr = "127.0.0.1:8080".parse()?;
//! cfg.check(listen)?; // refuses plain cookies off loopback, zero timeouts
//! let state = AppState::new(db::open("dialcast.sqlite".as_ref()).await?)
//!     .with_auth(cfg)
//!     .with_code_sender(outbox); // the engine's outbox: login codes, reset links
//! let app = router(state);
//! let listener = tokio::net::TcpListener::bind(listen).await?;
//! // With the client address: API-key allowlists and login rate limits.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod api;
pub mod apikey;
pub mod audit;
pub mod authz;
pub mod blocklist;
pub mod calls;
pub mod cidr;
pub mod db;
pub mod files;
pub mod imports;
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
