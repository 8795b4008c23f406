//! Operator control of a campaign: pause and resume voice, pause and resume
//! forwarding. The state rules live here once, for every front end that
//! offers them (`dialcast campaign pause|resume|pause-forwarding|resume-forwarding`
//! and the portal's `POST /api/v1/scripts/{script}/...`).
//!
//! How fast a pause lands: [`crate::store::Store::claim_next`] reads the
//! campaign's state inside its write transaction, so once [`apply`] has
//! committed a pause, no new attempt of the campaign is claimed, by this
//! process or any other sharing the store. What may still start is an
//! attempt claimed just before the commit and waiting for its start slot
//! (at most one per campaign, one pacing interval away). No notification
//! is needed for a pause; forwarding is re-read by a running campaign every
//! few seconds (its `STATE_CHECK`).
//!
//! ```text
//! voice:      idle | running | paused ──Pause──► paused   (finished: refused)
//!             paused ──Resume──► running                   (others: refused)
//! forwarding: any ──PauseForwarding / ResumeForwarding──► flag set / cleared
//! ```

use serde::Serialize;

use crate::store::{Campaign, CampaignState, EpochMs, Store, StoreError};

/// What an operator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// No new calls start; calls in progress finish.
    Pause,
    /// Dial again after a pause.
    Resume,
    /// Scripts take their "outside opening hours" branch instead of forwarding.
    PauseForwarding,
    /// Forwarding is open again.
    ResumeForwarding,
}

impl Control {
    /// The command-line and audit-log word.
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::PauseForwarding => "pause-forwarding",
            Control::ResumeForwarding => "resume-forwarding",
        }
    }
}

/// Why a control was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The campaign's state does not allow it.
    #[error("campaign {campaign} is {state}; {rule}")]
    WrongState {
        campaign: String,
        state: &'static str,
        rule: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `control` against the campaign's state without changing
/// anything: `Ok(())` when it may be applied.
pub fn check(campaign: &Campaign, control: Control) -> Result<(), ControlError> {
    let refuse = |rule: &'static str| {
        Err(ControlError::WrongState {
            campaign: campaign.name.clone(),
            state: campaign.state.as_str(),
            rule,
        })
    };
    match control {
        Control::Pause => match campaign.state {
            CampaignState::Running | CampaignState::Idle | CampaignState::Paused => Ok(()),
            CampaignState::Finished => refuse("only a running or idle campaign can be paused"),
        },
        Control::Resume => match campaign.state {
            CampaignState::Paused => Ok(()),
            _ => refuse("only a paused campaign can be resumed"),
        },
        Control::PauseForwarding | Control::ResumeForwarding => Ok(()),
    }
}

/// Checks `control` and commits it (with its `campaign_state` or
/// `forwarding` event in the store's outbox).
pub async fn apply<S: Store>(
    store: &S,
    campaign: &Campaign,
    control: Control,
    now: EpochMs,
) -> Result<(), ControlError> {
    check(campaign, control)?;
    match control {
        Control::Pause => {
            store
                .set_campaign_state(campaign.id, CampaignState::Paused, now)
                .await?
        }
        Control::Resume => {
            store
                .set_campaign_state(campaign.id, CampaignState::Running, now)
                .await?
        }
        Control::PauseForwarding => store.set_forwarding_paused(campaign.id, true, now).await?,
        Control::ResumeForwarding => store.set_forwarding_paused(campaign.id, false, now).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignSettings, SqliteStore, TrunkSettings};

    async fn campaign(store: &SqliteStore) -> Campaign {
        let org = store.ensure_organisation("o", "NL").await.expect("org");
        let trunk = store
            .upsert_trunk(
                org,
                &TrunkSettings {
                    name: "t".into(),
                    uri: "sip:127.0.0.1:5060".into(),
                    transport: "udp".into(),
                    max_cps: 10,
                    max_channels: 10,
                    caller_id: Some("+31200000000".into()),
                },
            )
            .await
            .expect("trunk");
        let script = store
            .upsert_script(org, "s", "s.toml", "")
            .await
            .expect("script");
        store
            .ensure_campaign(org, "c", script, trunk, &CampaignSettings::default())
            .await
            .expect("campaign");
        store.campaign_by_name("c").await.expect("campaign")
    }

    #[tokio::test]
    async fn pause_and_resume_follow_the_state_rules() {
        let store = SqliteStore::open_in_memory().await.expect("store");
        let c = campaign(&store).await;
        assert!(matches!(
            apply(&store, &c, Control::Resume, 1).await,
            Err(ControlError::WrongState { state: "idle", .. })
        ));
        apply(&store, &c, Control::Pause, 2).await.expect("pause");
        let c = store.campaign_by_name("c").await.expect("campaign");
        assert_eq!(c.state, CampaignState::Paused);
        apply(&store, &c, Control::Resume, 3).await.expect("resume");
        let c = store.campaign_by_name("c").await.expect("campaign");
        assert_eq!(c.state, CampaignState::Running);
        store
            .set_campaign_state(c.id, CampaignState::Finished, 4)
            .await
            .expect("finish");
        let c = store.campaign_by_name("c").await.expect("campaign");
        assert!(apply(&store, &c, Control::Pause, 5).await.is_err());
        apply(&store, &c, Control::PauseForwarding, 6)
            .await
            .expect("forwarding");
        let c = store.campaign_by_name("c").await.expect("campaign");
        assert!(c.forwarding_paused);
    }
}
