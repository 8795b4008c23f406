//! Reads by organisation, for front ends that show one organisation at a
//! time (the portal): the organisation by name, its campaigns, and its
//! events from the store's outbox (`events`) after a given id.
//!
//! The `events` table is the durable, ordered log of what was committed:
//! its ids only grow (rows are never deleted), and every change to the
//! 5-minute statistics commits together with an event (see
//! [`STATS_EVENT_KINDS`]), as does every change of a campaign's state or
//! forwarding ([`STATE_EVENT_KINDS`]). A reader that remembers the last id
//! it has seen can therefore resume after it and miss nothing.

use sqlx::Row as _;

use super::{campaign_from_row, from_json, SqliteStore};
use crate::store::{Campaign, EpochMs, Id, StoreResult};

/// Event kinds committed with a change of the statistics, each in the
/// bucket of the event's `created_at`: an attempt ended (dialled or
/// recovered), a record finished without a call (`invalid_number` at
/// import, `blocked`), an import published, a callback matched or ended.
/// (A forward is counted at its answer, which may fall in the bucket
/// before its `attempt_ended`.)
pub const STATS_EVENT_KINDS: [&str; 5] = [
    "attempt_ended",
    "record_done",
    "import",
    "callback_started",
    "callback_ended",
];

/// Event kinds of a campaign's state (`{"state": ..}`) and its forwarding
/// (`{"paused": ..}`).
pub const STATE_EVENT_KINDS: [&str; 2] = ["campaign_state", "forwarding"];

/// An engine organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganisationInfo {
    pub id: Id,
    pub name: String,
    /// IANA name.
    pub time_zone: String,
}

/// One row of the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub id: Id,
    pub campaign_id: Id,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: EpochMs,
}

impl SqliteStore {
    /// The organisation called `name`, if there is one.
    pub async fn organisation_by_name(&self, name: &str) -> StoreResult<Option<OrganisationInfo>> {
        let row: Option<(Id, String, String)> =
            sqlx::query_as("SELECT id, name, time_zone FROM organisations WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, name, time_zone)| OrganisationInfo {
            id,
            name,
            time_zone,
        }))
    }

    /// Every campaign of the organisation, oldest first.
    pub async fn campaigns_of_organisation(&self, organisation: Id) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(campaign_select!(
            "WHERE c.organisation_id = ? ORDER BY c.id"
        ))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// The newest event's id (0 when there is none): where a reader that
    /// wants only what comes next starts.
    pub async fn last_event_id(&self) -> StoreResult<Id> {
        let id: Option<Id> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// The organisation's events of `kinds` with `after < id <= up_to`,
    /// oldest first, at most `limit`. The range bounds the work of one
    /// call: the rows in it are walked along the primary key whatever
    /// organisation they belong to.
    pub async fn organisation_events(
        &self,
        organisation: Id,
        after: Id,
        up_to: Id,
        kinds: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = String::from(
            "SELECT e.id, e.campaign_id, e.kind, e.payload_json, e.created_at \
             FROM events e JOIN campaigns c ON c.id = e.campaign_id \
             WHERE e.id > ? AND e.id <= ? AND c.organisation_id = ? AND e.kind IN (",
        );
        for i in 0..kinds.len() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
        }
        sql.push_str(") ORDER BY e.id LIMIT ?");
        // Only placeholders are added to the text; the values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(up_to)
            .bind(organisation);
        for kind in kinds {
            query = query.bind(*kind);
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    id: row.try_get("id")?,
                    campaign_id: row.try_get("campaign_id")?,
                    kind: row.try_get("kind")?,
                    payload: from_json(&row.try_get::<String, _>("payload_json")?, "event")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignSettings, CampaignState, Store as _, TrunkSettings};

    async fn campaign(store: &SqliteStore, org: &str, name: &str) -> Id {
        let org = store.ensure_organisation(org, "NL").await.expect("org");
        let trunk = store
            .upsert_trunk(
                org,
                &TrunkSettings {
                    name: "t".into(),
                    uri: "sip:127.0.0.1:5060".into(),
                    transport: "udp".into(),
                    max_cps: 10,
                    max_channels: 10,
                    caller_id: None,
                },
            )
            .await
            .expect("trunk");
        let script = store
            .upsert_script(org, name, "s.toml", "")
            .await
            .expect("script");
        store
            .ensure_campaign(org, name, script, trunk, &CampaignSettings::default())
            .await
            .expect("campaign")
    }

    #[tokio::test]
    async fn events_are_read_per_organisation_and_kind_in_order() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let a = campaign(&store, "a", "ca").await;
        let b = campaign(&store, "b", "cb").await;
        assert_eq!(store.last_event_id().await.expect("id"), 0);
        for (c, at) in [(a, 1), (b, 2), (a, 3)] {
            store
                .set_campaign_state(c, CampaignState::Paused, at)
                .await
                .expect("pause");
        }
        store.set_forwarding_paused(a, true, 4).await.expect("fwd");
        let org_a = store
            .organisation_by_name("a")
            .await
            .expect("read")
            .expect("org a");
        assert_eq!(org_a.time_zone, "UTC");
        assert!(store
            .organisation_by_name("zz")
            .await
            .expect("read")
            .is_none());
        let head = store.last_event_id().await.expect("id");
        assert_eq!(head, 4);
        let events = store
            .organisation_events(org_a.id, 0, head, &STATE_EVENT_KINDS, 10)
            .await
            .expect("events");
        let ids: Vec<Id> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 3, 4]);
        assert_eq!(events[2].payload["paused"], true);
        let after = store
            .organisation_events(org_a.id, 1, 3, &["campaign_state"], 10)
            .await
            .expect("events");
        assert_eq!(after.len(), 1);
        assert_eq!(
            store.campaigns_of_organisation(org_a.id).await.expect("c")[0].name,
            "ca"
        );
    }
}
