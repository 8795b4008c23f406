//! Scripts for front ends that show one organisation at a time (the
//! portal): an organisation's scripts with their source, and a run-time
//! change of a campaign's settings (checked by
//! [`crate::campaign::settings_change`]), committed with a
//! `campaign_settings` event in the outbox. Every read and write is scoped
//! by organisation in the query itself.

use sqlx::Row as _;

use super::{insert_event, SqliteStore};
use crate::campaign::settings_change::SettingsChange;
use crate::store::{EpochMs, Id, StoreResult};

/// The outbox event kind of a settings change (payload: the change).
pub const SETTINGS_EVENT_KIND: &str = "campaign_settings";

/// A stored script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptRow {
    pub id: Id,
    pub name: String,
    pub file_name: String,
    /// The script's text, stored verbatim.
    pub source: String,
    pub updated_at: EpochMs,
}

const SCRIPT_SELECT: &str =
    "SELECT id, name, file_name, source, updated_at FROM scripts WHERE organisation_id = ?";

fn script_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<ScriptRow> {
    Ok(ScriptRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        file_name: r.try_get("file_name")?,
        source: r.try_get("source")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// The organisation's scripts, by name.
    pub async fn scripts_of_organisation(&self, organisation: Id) -> StoreResult<Vec<ScriptRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SCRIPT_SELECT} ORDER BY name"
        )))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(script_row).collect()
    }

    /// The organisation's script called `name`.
    pub async fn script_of_organisation(
        &self,
        organisation: Id,
        name: &str,
    ) -> StoreResult<Option<ScriptRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SCRIPT_SELECT} AND name = ?")))
            .bind(organisation)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(script_row).transpose()
    }

    /// Applies `change` (checked by the caller) to the organisation's
    /// campaign, with a [`SETTINGS_EVENT_KIND`] event, in one transaction.
    /// `false` when the organisation has no such campaign.
    pub async fn change_campaign_settings(
        &self,
        organisation: Id,
        campaign: Id,
        change: &SettingsChange,
        now: EpochMs,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE campaigns SET \
             max_attempts = COALESCE(?, max_attempts), \
             retry_delay_ms = COALESCE(?, retry_delay_ms), \
             ring_timeout_ms = COALESCE(?, ring_timeout_ms), \
             max_call_ms = COALESCE(?, max_call_ms) \
             WHERE id = ? AND organisation_id = ?",
        )
        .bind(change.max_attempts.map(i64::from))
        .bind(change.retry_delay_s.map(ms))
        .bind(change.ring_timeout_s.map(ms))
        .bind(change.max_call_s.map(ms))
        .bind(campaign)
        .bind(organisation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let payload = serde_json::to_value(change)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        insert_event(
            &mut tx,
            campaign,
            None,
            None,
            SETTINGS_EVENT_KIND,
            &payload,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignSettings, Store as _, TrunkSettings};

    async fn campaign(store: &SqliteStore, org: &str, script: &str) -> (Id, Id) {
        let org = store.ensure_organisation(org, "NL").await.expect("org");
        let trunk = store
            .upsert_trunk(
                org,
                &TrunkSettings {
                    name: "t".into(),
                    uri: "sip:127.0.0.1:5060".into(),
                    transport: "udp".into(),
                    max_cps: 1,
                    max_channels: 1,
                    caller_id: None,
                },
            )
            .await
            .expect("trunk");
        let s = store
            .upsert_script(org, script, "s.toml", "name = \"x\"")
            .await
            .expect("script");
        let c = store
            .ensure_campaign(org, script, s, trunk, &CampaignSettings::default())
            .await
            .expect("campaign");
        (org, c)
    }

    #[tokio::test]
    async fn a_change_is_scoped_by_organisation_and_leaves_the_rest() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let (a, ca) = campaign(&store, "a", "sa").await;
        let (b, _) = campaign(&store, "b", "sb").await;
        let scripts = store.scripts_of_organisation(a).await.expect("scripts");
        assert_eq!(scripts.len(), 1);
        assert_eq!(scripts[0].name, "sa");
        assert!(store
            .script_of_organisation(b, "sa")
            .await
            .expect("read")
            .is_none());
        let change = SettingsChange {
            max_attempts: Some(7),
            retry_delay_s: Some(600),
            ..SettingsChange::default()
        };
        assert!(!store
            .change_campaign_settings(b, ca, &change, 5)
            .await
            .expect("other org"));
        assert!(store
            .change_campaign_settings(a, ca, &change, 5)
            .await
            .expect("change"));
        let c = store.campaign_by_name("sa").await.expect("campaign");
        assert_eq!(c.settings.max_attempts, 7);
        assert_eq!(c.settings.retry_delay_ms, 600_000);
        let defaults = CampaignSettings::default();
        assert_eq!(c.settings.ring_timeout_ms, defaults.ring_timeout_ms);
        assert_eq!(c.settings.max_call_ms, defaults.max_call_ms);
        let events = store
            .organisation_events(a, 0, i64::MAX, &[SETTINGS_EVENT_KIND], 10)
            .await
            .expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payload["max_attempts"], 7);
    }
}
