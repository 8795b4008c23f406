//! The portal's functions on the engine's data: the dashboard and the
//! statistics ([`stats`]), pausing and resuming scripts ([`control`]),
//! the live stream of statistics and script states ([`events`]), the
//! scripts' settings, flow, prompts and templates ([`scripts`]) and the
//! voice insights of the last 8 hours ([`insights`]).
//!
//! Organisations are matched by name: the caller's portal organisation
//! (`portal_organisations.name`) is the engine organisation of the same
//! name (`organisations.name`), whose campaigns and scripts it sees. A
//! portal organisation without an engine one has no campaigns: empty
//! results, not errors. Every read is scoped by that organisation, so
//! another organisation's script is "not found", never "forbidden".

pub mod control;
pub mod events;
pub mod insights;
pub mod scripts;
pub mod stats;

use std::sync::Arc;

use chrono_tz::Tz;
use dialcast_engine::stats::StatsFeed;
use dialcast_engine::store::sqlite::organisation::OrganisationInfo;
use dialcast_engine::store::{Campaign, SqliteStore};
use serde::Serialize;
use sqlx::SqlitePool;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::authz::OrgId;
use crate::problem::ApiError;

/// What the portal needs of the engine: its store (the same database
/// file), and, when the portal is served in the engine's process, its
/// statistics feed, so the live stream hears of a committed bucket at once
/// instead of at its next poll.
#[derive(Clone)]
pub struct EngineAccess {
    pub store: SqliteStore,
    pub feed: Option<StatsFeed>,
    /// Poked after the portal itself changed a script's state, so the
    /// live streams read the store now.
    pub(crate) changed: Arc<Notify>,
}

impl EngineAccess {
    /// Access through `store`, without a statistics feed.
    pub fn new(store: SqliteStore) -> EngineAccess {
        EngineAccess {
            store,
            feed: None,
            changed: Arc::new(Notify::new()),
        }
    }

    /// The same access, woken by the engine's statistics feed.
    pub fn with_stats_feed(self, feed: StatsFeed) -> EngineAccess {
        EngineAccess {
            feed: Some(feed),
            ..self
        }
    }
}

/// The engine organisation that a portal organisation sees.
pub(crate) struct Scope {
    pub org: Option<OrganisationInfo>,
    pub tz: Tz,
}

/// The engine organisation with the name of the portal organisation `org`
/// (`None` when the engine has none of that name).
pub(crate) async fn scope(
    db: &SqlitePool,
    engine: &EngineAccess,
    org: OrgId,
) -> Result<Scope, ApiError> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM portal_organisations WHERE id = ?")
            .bind(org.0)
            .fetch_optional(db)
            .await
            .map_err(ApiError::internal)?;
    let Some(name) = name else {
        return Ok(Scope {
            org: None,
            tz: Tz::UTC,
        });
    };
    let org = engine
        .store
        .organisation_by_name(&name)
        .await
        .map_err(ApiError::internal)?;
    let tz = org
        .as_ref()
        .and_then(|o| o.time_zone.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC);
    Ok(Scope { org, tz })
}

impl Scope {
    /// The organisation's campaigns (none without an engine organisation).
    pub async fn campaigns(&self, engine: &EngineAccess) -> Result<Vec<Campaign>, ApiError> {
        match &self.org {
            Some(org) => engine
                .store
                .campaigns_of_organisation(org.id)
                .await
                .map_err(ApiError::internal),
            None => Ok(Vec::new()),
        }
    }
}

/// Whether a script dials: `active` while any of its campaigns runs,
/// else `paused` while any is paused, else `idle` while any waits to
/// start, else `finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoiceState {
    Finished,
    Idle,
    Paused,
    Active,
}

/// One campaign of a script.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignView {
    pub name: String,
    /// `idle`, `running`, `paused` or `finished`.
    pub state: String,
    pub forwarding_paused: bool,
}

/// A script as the dashboard and the control endpoints show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScriptState {
    pub script: String,
    pub voice: VoiceState,
    /// Forwarding is paused while any of the script's campaigns has it
    /// paused.
    pub forwarding_paused: bool,
    pub campaigns: Vec<CampaignView>,
}

/// The organisation's scripts with their campaigns, by script name.
pub(crate) fn script_states(campaigns: &[Campaign]) -> Vec<ScriptState> {
    use dialcast_engine::store::CampaignState as S;
    let mut out: std::collections::BTreeMap<&str, ScriptState> = Default::default();
    for c in campaigns {
        let voice = match c.state {
            S::Running => VoiceState::Active,
            S::Paused => VoiceState::Paused,
            S::Idle => VoiceState::Idle,
            S::Finished => VoiceState::Finished,
        };
        let entry = out
            .entry(c.script_name.as_str())
            .or_insert_with(|| ScriptState {
                script: c.script_name.clone(),
                voice,
                forwarding_paused: false,
                campaigns: Vec::new(),
            });
        entry.voice = entry.voice.max(voice);
        entry.forwarding_paused |= c.forwarding_paused;
        entry.campaigns.push(CampaignView {
            name: c.name.clone(),
            state: c.state.as_str().to_owned(),
            forwarding_paused: c.forwarding_paused,
        });
    }
    out.into_values().collect()
}

/// The engine access of `state`, or the problem saying the portal runs
/// without one.
pub(crate) fn engine(state: &crate::AppState) -> Result<&EngineAccess, ApiError> {
    state.engine.as_ref().ok_or(ApiError::EngineUnavailable)
}
