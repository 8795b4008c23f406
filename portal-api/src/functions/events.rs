//! `GET /api/v1/events`: the organisation's live statistics as
//! Server-Sent Events: `bucket` (a 5-minute bucket of a campaign changed;
//! the whole bucket as committed) and `script_state` (a campaign of a
//! script was paused, resumed, started, finished, or its forwarding
//! switched), plus `resync` when a client asks to resume from too far back.
//!
//! # Ids and resuming
//! Every event's `id` is the id of a row of the engine's outbox (`events`),
//! which only grows and commits with the change it reports (see
//! `dialcast_engine::store::sqlite::organisation`). The stream is a
//! cursor over that table: on connect it starts after `Last-Event-ID`
//! (or, without one, at the newest row: the dashboard's `last_event_id`
//! says where it read), reads the organisation's rows after the cursor,
//! sends them in id order and moves on. Several changes of one bucket read
//! together are sent once, at the id of the last of them, with the bucket
//! as it is then (counters only grow, so the newest wins). A client that
//! reconnects with the last id it got therefore gets every change after
//! it, in order, each once.
//!
//! One gap: a forwarded call's `forwards` counter goes to the bucket of its
//! answer, and its `attempt_ended` row names the bucket of its end; when
//! the two differ, the earlier bucket's new `forwards` shows with that
//! bucket's next change or on reloading the dashboard.
//!
//! The engine's in-process statistics feed (a broadcast that may lag) and
//! the portal's own pauses only wake the stream early; what is sent is
//! always read from the store, so a lagging feed loses nothing. Without
//! them (the engine in another process) the stream reads every
//! [`POLL`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use dialcast_engine::stats::{bucket_start, BucketUpdate};
use dialcast_engine::store::sqlite::organisation::{
    StoredEvent, STATE_EVENT_KINDS, STATS_EVENT_KINDS,
};
use dialcast_engine::store::{Id, StatsStore as _};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, Notify};
use utoipa::ToSchema;

use super::{engine, scope, EngineAccess};
use crate::authz::{allowed, Action, OrgId, Principal};
use crate::problem::{ApiError, Problem};
use crate::AppState;

/// How often the stream reads the store when nothing wakes it.
pub const POLL: Duration = Duration::from_secs(1);
/// Keep-alive comments, so proxies keep an idle stream open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Outbox ids walked by one read (whatever organisation they belong to).
const SCAN_WINDOW: Id = 10_000;
/// Rows of the organisation taken by one read.
const BATCH: u32 = 1_000;
/// A `Last-Event-ID` further back than this many outbox rows is not
/// replayed: the client gets `resync` (reload the dashboard) instead.
pub const MAX_REPLAY: Id = 500_000;

/// A `script_state` event's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScriptStateEvent {
    pub script: String,
    pub campaign: String,
    /// The campaign's new state (`idle`, `running`, `paused`, `finished`),
    /// when that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Whether forwarding is now paused, when that changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding_paused: Option<bool>,
    /// UTC milliseconds.
    pub at_ms: i64,
}

/// A `bucket` event's data: one campaign's 5-minute bucket as committed.
#[derive(Debug, Clone, Serialize)]
struct BucketEvent {
    /// RFC 3339, UTC.
    start: String,
    #[serde(flatten)]
    update: BucketUpdate,
}

enum Item {
    State(StoredEvent),
    Bucket { campaign: Id, start: i64 },
}

/// One client's cursor over the outbox.
struct Live {
    state: AppState,
    engine: EngineAccess,
    portal_org: OrgId,
    org: Option<Id>,
    cursor: Id,
    /// Campaign id → (campaign, script) of the organisation.
    names: HashMap<Id, (String, String)>,
    pending: VecDeque<Event>,
    feed: Option<broadcast::Receiver<BucketUpdate>>,
    changed: Arc<Notify>,
    started: bool,
}

impl Live {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.started {
                self.wait().await;
            }
            self.started = true;
            if let Err(e) = self.read().await {
                // The client reconnects with its Last-Event-ID.
                tracing::warn!(error = %e, "live statistics stream ended");
                return None;
            }
        }
    }

    /// Until something may have changed: a bucket of ours on the feed (or
    /// the feed lagged), a pause by this portal, or [`POLL`].
    async fn wait(&mut self) {
        let poll = tokio::time::sleep(POLL);
        tokio::pin!(poll);
        let changed = Arc::clone(&self.changed);
        let notified = changed.notified();
        tokio::pin!(notified);
        loop {
            let Some(feed) = self.feed.as_mut() else {
                tokio::select! {
                    _ = &mut poll => return,
                    _ = &mut notified => return,
                }
            };
            tokio::select! {
                _ = &mut poll => return,
                _ = &mut notified => return,
                update = feed.recv() => match update {
                    Ok(u) if self.names.contains_key(&u.campaign_id) => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => self.feed = None,
                },
            }
        }
    }

    async fn refresh_names(&mut self) -> Result<(), ApiError> {
        if self.org.is_none() {
            self.org = scope(&self.state.db, &self.engine, self.portal_org)
                .await?
                .org
                .map(|o| o.id);
        }
        if let Some(org) = self.org {
            let campaigns = self
                .engine
                .store
                .campaigns_of_organisation(org)
                .await
                .map_err(ApiError::internal)?;
            self.names = campaigns
                .into_iter()
                .map(|c| (c.id, (c.name, c.script_name)))
                .collect();
        }
        Ok(())
    }

    /// Reads what the organisation committed after the cursor, up to the
    /// newest row, into `pending`.
    async fn read(&mut self) -> Result<(), ApiError> {
        let store = &self.engine.store;
        let head = store.last_event_id().await.map_err(ApiError::internal)?;
        // An id from beyond the head names nothing this store committed.
        self.cursor = self.cursor.min(head);
        if self.org.is_none() {
            self.refresh_names().await?;
        }
        let Some(org) = self.org else {
            // No campaigns yet: nothing of ours before the head.
            self.cursor = self.cursor.max(head);
            return Ok(());
        };
        if head - self.cursor > MAX_REPLAY {
            self.pending.push_back(
                Event::default()
                    .id(head.to_string())
                    .event("resync")
                    .data("{\"reason\":\"too far behind: reload the dashboard\"}"),
            );
            self.cursor = head;
            return Ok(());
        }
        let kinds: Vec<&str> = STATS_EVENT_KINDS
            .iter()
            .chain(STATE_EVENT_KINDS.iter())
            .copied()
            .collect();
        while self.cursor < head {
            let up_to = head.min(self.cursor + SCAN_WINDOW);
            let rows = self
                .engine
                .store
                .organisation_events(org, self.cursor, up_to, &kinds, BATCH)
                .await
                .map_err(ApiError::internal)?;
            let next = if rows.len() == BATCH as usize {
                rows.last().map_or(up_to, |r| r.id)
            } else {
                up_to
            };
            self.send(rows).await?;
            self.cursor = next;
        }
        Ok(())
    }

    /// Turns rows into events: state rows one each, bucket rows once per
    /// bucket at the id of its last row.
    async fn send(&mut self, rows: Vec<StoredEvent>) -> Result<(), ApiError> {
        if rows
            .iter()
            .any(|r| !self.names.contains_key(&r.campaign_id))
        {
            self.refresh_names().await?;
        }
        let mut buckets: BTreeMap<(Id, i64), Id> = BTreeMap::new();
        let mut items: Vec<(Id, Item)> = Vec::new();
        for row in rows {
            if STATE_EVENT_KINDS.contains(&row.kind.as_str()) {
                items.push((row.id, Item::State(row)));
            } else {
                let start = bucket_start(row.created_at);
                buckets.insert((row.campaign_id, start), row.id);
            }
        }
        items.extend(
            buckets
                .into_iter()
                .map(|((campaign, start), id)| (id, Item::Bucket { campaign, start })),
        );
        items.sort_by_key(|(id, _)| *id);
        for (id, item) in items {
            let event = match item {
                Item::Bucket { campaign, start } => {
                    let update = self
                        .engine
                        .store
                        .bucket_update(campaign, start)
                        .await
                        .map_err(ApiError::internal)?;
                    let start = chrono::DateTime::from_timestamp_millis(update.bucket_start)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default();
                    Event::default()
                        .event("bucket")
                        .json_data(BucketEvent { start, update })
                }
                Item::State(row) => {
                    let (campaign, script) = self
                        .names
                        .get(&row.campaign_id)
                        .cloned()
                        .unwrap_or_default();
                    let data = ScriptStateEvent {
                        script,
                        campaign,
                        state: row.payload["state"].as_str().map(str::to_owned),
                        forwarding_paused: row.payload["paused"].as_bool(),
                        at_ms: row.created_at,
                    };
                    Event::default().event("script_state").json_data(data)
                }
            }
            .map_err(ApiError::internal)?;
            self.pending.push_back(event.id(id.to_string()));
        }
        Ok(())
    }
}

#[utoipa::path(
    get, path = "/api/v1/events", tag = "statistics",
    security(("api_key" = []), ("session" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (also the dashboard's last_event_id)")),
    responses(
        (status = 200, description = "text/event-stream: `bucket` events (a campaign's 5-minute bucket as committed), `script_state` events, `resync`; each with an id to resume after", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Last-Event-ID is not an event id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key or session", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs the dashboard role", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "engine-unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    who: Principal,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    allowed(&who, Action::WatchEvents, who.org)?;
    let engine = engine(&state)?.clone();
    let last = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<Id>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| ApiError::BadRequest("Last-Event-ID is not an event id".into()))?,
        ),
    };
    let cursor = match last {
        Some(id) => id,
        None => engine
            .store
            .last_event_id()
            .await
            .map_err(ApiError::internal)?,
    };
    let mut live = Live {
        feed: engine.feed.as_ref().map(|f| f.subscribe()),
        changed: Arc::clone(&engine.changed),
        engine,
        state,
        portal_org: who.org,
        org: None,
        cursor,
        names: HashMap::new(),
        pending: VecDeque::new(),
        started: false,
    };
    live.refresh_names().await?;
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        live.next().await.map(|e| (Ok(e), live))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
