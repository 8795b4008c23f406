//! The Dialcast portal's HTTP API (axum): accounts, roles, API keys, the
//! authorisation core, the audit log, and the OpenAPI document served at
//! `/api-docs/openapi.json`. Errors are RFC 9457 problem details.
//!
//! Callers authenticate with an API key (`X-AUTH-TOKEN`) or a login
//! session cookie ([`login`], [`session`]): password, optional second
//! factor ([`second_factor`]: TOTP or a code through the [`CodeSender`]),
//! temporary and expiring passwords, reset links, rate limits
//! ([`ratelimit`]). Its tables live in the engine's database file with a
//! migrations history of their own (see [`db`]). The portal functions
//! ([`functions`]: dashboard, statistics, pause and resume, the live
//! stream) read and change the engine's data through `dialcast-engine`'s
//! store, given with [`AppState::with_engine`]; the engine never depends on
//! the portal. A portal organisation is the engine's organisation of the
//! same id and name ([`accounts::ensure_organisation`]). Interactive
//! documentation (RapiDoc, vendored) is at `/docs` ([`docs`]);
//! [`server::serve`] serves it all on an address, as `dialcast serve` and
//! `dialcast demo` do (`--portal-addr`).
//!
//! The file functions ([`files`]: result files; [`imports`]; [`calls`]
//! with voicelog playback; [`sms`], the SMS list; [`emails`], the e-mail
//! list; [`blocklist`] and the
//! calendar; the scripts' settings, flow and prompt recordings in
//! [`functions::scripts`]) take the engine's directories, audio roots and
//! upload limit besides its store, given with [`AppState::with_files`].
//!
//! Users management ([`users`], over [`membership`]): a manager lists,
//! adds, changes and removes the members of their organisation.
//!
//! Login codes and reset links are queued on the engine's notifications
//! outbox by [`outbox::EngineOutbox`], given with
//! [`AppState::with_code_sender`].
//!
//! # Serving it
//! ```no_run
//! # use std::{net::SocketAddr, sync::Arc};
//! # use dialcast_portal_api::{db, router, AppState, AuthConfig, CodeSender, EngineAccess};
//! # use dialcast_engine::{stats::StatsFeed, store::SqliteStore};
//! # async fn serve(outbox: Arc<dyn CodeSender>, cfg: AuthConfig, feed: StatsFeed) -> Result<(), Box<dyn std::error::Error>> {
//! let listen: SocketAddr = "127.0.0.1:8080".parse()?;
//! cfg.check(listen)?; // refuses plain cookies off loopback, zero timeouts
//! let file = std::path::Path::new("dialcast.sqlite");
//! // The engine's store over the same file (the portal functions), and,
//! // in `dialcast serve`'s process, its statistics feed
//! // (`Engine::stats_feed().clone()`) so the live stream is woken at once.
//! let engine = EngineAccess::new(SqliteStore::open(file).await?).with_stats_feed(feed);
//! let state = AppState::new(db::open(file).await?)
//!     .with_auth(cfg)
//!     .with_engine(engine)
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
pub mod docs;
pub mod emails;
pub mod files;
pub mod functions;
pub mod imports;
mod listing;
pub mod login;
pub mod membership;
pub mod outbox;
pub mod problem;
pub mod ratelimit;
pub mod second_factor;
pub mod server;
pub mod session;
pub mod sms;
pub mod users;

pub use api::{openapi, router, AppState, Clock};
pub use authz::{allowed, Action, Denied, OrgId, Principal, Role};
pub use functions::EngineAccess;
pub use outbox::EngineOutbox;
pub use problem::{ApiError, Problem};
pub use second_factor::{CodeSender, Outbound};
pub use session::AuthConfig;
