//! The portal in the `dialcast` command: the API served beside the engine
//! by `serve` and `demo`, and the commands that make its first credentials
//! (`user create`, `apikey create`), which print a secret once, on
//! standard output only, and never log it.
//!
//! `--org ORG` is the organisation's name as the engine knows it: a row of
//! the store's `organisations` (made by imports and by `serve`), or the
//! configuration's `organisation.name`, which is added to the store if it is
//! not there yet, as every command on the configured organisation does. The
//! portal's organisation is the engine's with the same id
//! (`dialcast_portal_api::accounts::ensure_organisation`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use dialcast_engine::cli::{Extension, Running};
use dialcast_engine::config::Config;
use dialcast_engine::demo;
use dialcast_engine::service;
use dialcast_engine::stats::StatsFeed;
use dialcast_engine::store::Store as _;
use dialcast_portal_api::apikey::{self, NewKey};
use dialcast_portal_api::files::Engine as Files;
use dialcast_portal_api::{
    accounts, cidr, db, server, AppState, EngineAccess, EngineOutbox, OrgId, Role,
};
use sqlx::SqlitePool;
use tokio_util::sync::CancellationToken;

/// Who the audit log names for what these commands do.
const ACTOR: &str = "cli";

/// The portal's part of the `dialcast` command.
pub struct Portal;

/// The portal's commands.
#[derive(Subcommand)]
pub enum PortalCommand {
    /// Portal users.
    User(UserArgs),
    /// Portal API keys (sent by clients in the X-AUTH-TOKEN header).
    Apikey(ApiKeyArgs),
}

#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user in an organisation with a role, and print their
    /// temporary password (shown once; it works for 14 days and must be
    /// changed at first login).
    #[command(
        after_help = "Standard output: the temporary password alone on one line, or with \
                      --json one object (user_id, email, organisation, organisation_id, role, \
                      temporary_password, temporary_expires_at in Unix seconds). \
                      Exit status 1 when the organisation is unknown or the e-mail is taken."
    )]
    Create {
        /// The organisation's name, as the engine knows it.
        #[arg(long)]
        org: String,
        /// The user's e-mail address (their login).
        #[arg(long)]
        email: String,
        /// normal, dashboard, scheduler, file or manager.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ApiKeyArgs {
    #[command(subcommand)]
    action: ApiKeyAction,
}

#[derive(Subcommand)]
enum ApiKeyAction {
    /// Create an API key of an organisation with a role, and print it (shown
    /// once; only its hash is stored).
    #[command(
        after_help = "Standard output: the key (dc_<prefix>_<secret>) alone on one line, or \
                      with --json one object (id, prefix, organisation, organisation_id, role, \
                      allowed_cidrs, key). Exit status 1 when the organisation is unknown."
    )]
    Create {
        /// The organisation's name, as the engine knows it.
        #[arg(long)]
        org: String,
        /// normal, dashboard, scheduler, file or manager.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A name to recognise the key by in lists.
        #[arg(long, default_value = "")]
        name: String,
        /// Client addresses or CIDR blocks allowed to use the key (repeat
        /// or separate with commas); none means any.
        #[arg(long = "allow", value_delimiter = ',')]
        allow: Vec<String>,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The portal's arguments of `serve` and `demo`.
#[derive(Args)]
pub struct PortalArgs {
    /// Where to serve the portal API (http://ADDR/api/v1/..., its OpenAPI
    /// document at /api-docs/openapi.json, interactive docs at /docs); port
    /// 0 picks a free port.
    #[arg(long, default_value = server::DEFAULT_ADDR)]
    portal_addr: SocketAddr,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: dialcast_portal_api::authz::UnknownRole| e.to_string())
}

impl Extension for Portal {
    type Command = PortalCommand;
    type ServeArgs = PortalArgs;

    const LOG_DIRECTIVES: &'static str = "dialcast_portal_api=info";

    async fn run(command: PortalCommand) -> anyhow::Result<()> {
        match command {
            PortalCommand::User(UserArgs {
                action:
                    UserAction::Create {
                        org,
                        email,
                        role,
                        config,
                        json,
                    },
            }) => create_user(&config, &org, &email, role, json).await,
            PortalCommand::Apikey(ApiKeyArgs {
                action:
                    ApiKeyAction::Create {
                        org,
                        role,
                        name,
                        allow,
                        config,
                        json,
                    },
            }) => create_api_key(&config, &org, role, name, &allow, json).await,
        }
    }

    async fn serve(
        args: PortalArgs,
        config: &Config,
        stats: &StatsFeed,
        cancel: CancellationToken,
    ) -> anyhow::Result<Running> {
        let db = db::open(&config.storage.database).await.with_context(|| {
            format!(
                "cannot open the portal's tables in {}",
                config.storage.database.display()
            )
        })?;
        let state = with_engine(AppState::new(db), &config.storage.database, stats).await?;
        let state = with_files(state, config);
        let (_, running) = start(args.portal_addr, state, cancel).await?;
        Ok(running)
    }

    async fn demo(
        args: PortalArgs,
        demo: &demo::Prepared,
        cancel: CancellationToken,
    ) -> anyhow::Result<Running> {
        let db = db::open(demo.database()).await.with_context(|| {
            format!(
                "cannot open the portal's tables in {}",
                demo.database().display()
            )
        })?;
        let now = chrono::Utc::now().timestamp();
        let org = accounts::ensure_organisation(
            &db,
            demo.organisation_id(),
            demo::DEMO_ORGANISATION,
            now,
        )
        .await?;
        let (_, key) = apikey::create(
            &db,
            org,
            Role::Manager,
            NewKey {
                name: "demo".into(),
                cidrs: Vec::new(),
            },
            ACTOR,
            now,
        )
        .await?;
        let state = with_engine(AppState::new(db), demo.database(), demo.stats_feed()).await?;
        // The file functions too, with their folders beside the demo's database.
        let demo_dir = demo
            .database()
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."));
        let files = state
            .engine
            .as_ref()
            .map(|e| Files::under(std::sync::Arc::new(e.store.clone()), demo_dir));
        let state = match files {
            Some(files) => state.with_files(files),
            None => state,
        };
        let (url, mut running) = start(args.portal_addr, state, cancel).await?;
        running
            .summary
            .insert("portal_url".into(), url.clone().into());
        running
            .summary
            .insert("api_key".into(), key.expose().to_owned().into());
        running.report.push(format!(
            "Portal API on {url} (docs at {url}/docs); a manager key of organisation {}, \
             made for this run: {}",
            demo::DEMO_ORGANISATION,
            key.expose()
        ));
        Ok(running)
    }
}

/// The portal functions (dashboard, statistics, pause and resume, the live
/// stream) read and change the engine's store in the same database file;
/// the live stream is woken by the engine's statistics feed as each bucket
/// commits (it still reads the store, the truth, for what it sends). Login
/// codes and reset links are queued on the engine's notifications outbox.
async fn with_engine(
    state: AppState,
    database: &std::path::Path,
    stats: &StatsFeed,
) -> anyhow::Result<AppState> {
    let store = dialcast_engine::store::SqliteStore::open(database)
        .await
        .with_context(|| format!("cannot open the engine's store {}", database.display()))?;
    Ok(state
        .with_code_sender(Arc::new(EngineOutbox::new(store.clone())))
        .with_engine(EngineAccess::new(store).with_stats_feed(stats.clone())))
}

/// The file functions (imports, result files, calls and voicelogs,
/// blocklist, calendar) on the same store, with the configured import
/// archive, voicelog directory and `[imports] max_upload_bytes`.
fn with_files(state: AppState, config: &Config) -> AppState {
    let files = state
        .engine
        .as_ref()
        .map(|e| Files::from_config(std::sync::Arc::new(e.store.clone()), config));
    match files {
        Some(files) => state.with_files(files),
        None => state,
    }
}

/// Serves the portal on `addr` until `cancel`; returns its URL.
async fn start(
    addr: SocketAddr,
    state: AppState,
    cancel: CancellationToken,
) -> anyhow::Result<(String, Running)> {
    let served = server::serve(addr, state, cancel.cancelled_owned())
        .await
        .with_context(|| format!("--portal-addr {addr}: cannot serve the portal API"))?;
    let url = served.url();
    tracing::info!("portal API on {url} (docs at {url}/docs)");
    let stopped = tokio::spawn(async move {
        if let Err(e) = served.stopped().await {
            tracing::error!("the portal API stopped with an error: {e}");
        }
    });
    Ok((
        url.clone(),
        Running {
            stopped: Some(stopped),
            ..Running::default()
        },
    ))
}

/// The portal's database and its organisation for `--org NAME` (see the
/// module doc).
async fn organisation(
    config_path: &std::path::Path,
    name: &str,
) -> anyhow::Result<(SqlitePool, OrgId)> {
    let config = Config::load(config_path)?;
    let store = service::open_store(&config).await?;
    let id = if name == config.organisation.name {
        store
            .ensure_organisation(name, &config.organisation.default_country)
            .await?
    } else {
        match store.organisation_by_name(name).await? {
            Some(found) => found.id,
            None => {
                let mut known = store.organisation_names().await?;
                if !known.contains(&config.organisation.name) {
                    known.push(config.organisation.name.clone());
                    known.sort();
                }
                anyhow::bail!(
                    "no organisation named {name:?} in {} (known: {})",
                    config.storage.database.display(),
                    known
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    };
    let db = db::open(&config.storage.database).await.with_context(|| {
        format!(
            "cannot open the portal's tables in {}",
            config.storage.database.display()
        )
    })?;
    let org = accounts::ensure_organisation(&db, id, name, chrono::Utc::now().timestamp()).await?;
    Ok((db, org))
}

async fn create_user(
    config: &std::path::Path,
    org_name: &str,
    email: &str,
    role: Role,
    json: bool,
) -> anyhow::Result<()> {
    let (db, org) = organisation(config, org_name).await?;
    let now = chrono::Utc::now().timestamp();
    let (id, password) = accounts::create_user(&db, org, email, role, ACTOR, now).await?;
    let expires_at = now + accounts::TEMP_PASSWORD_LIFETIME_SECS;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "user_id": id,
                "email": email.trim(),
                "organisation": org_name,
                "organisation_id": org,
                "role": role,
                "temporary_password": password.expose(),
                "temporary_expires_at": expires_at,
            })
        );
    } else {
        eprintln!(
            "user {id} <{}> created in organisation {org_name} as {role}; the temporary \
             password below is shown once, works for 14 days and must be changed at first login",
            email.trim()
        );
        println!("{}", password.expose());
    }
    Ok(())
}

async fn create_api_key(
    config: &std::path::Path,
    org_name: &str,
    role: Role,
    name: String,
    allow: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let cidrs = cidr::parse_list(allow).context("--allow")?;
    let (db, org) = organisation(config, org_name).await?;
    let now = chrono::Utc::now().timestamp();
    let (row, key) = apikey::create(&db, org, role, NewKey { name, cidrs }, ACTOR, now).await?;
    let allowed: Vec<String> = row.cidrs.iter().map(ToString::to_string).collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "id": row.id,
                "prefix": row.prefix,
                "organisation": org_name,
                "organisation_id": org,
                "role": role,
                "allowed_cidrs": allowed,
                "key": key.expose(),
            })
        );
    } else {
        eprintln!(
            "API key {} (dc_{}_…) created for organisation {org_name} as {role}{}; it is shown \
             once, below (send it in the X-AUTH-TOKEN header)",
            row.id,
            row.prefix,
            if allowed.is_empty() {
                String::new()
            } else {
                format!(", usable from {}", allowed.join(", "))
            }
        );
        println!("{}", key.expose());
    }
    Ok(())
}
