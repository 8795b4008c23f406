//! Inbound callbacks: people who call back after a missed call. The caller's
//! number is matched to the record of the organisation's latest outbound
//! attempt to it within the configured days; the call is answered and runs
//! the script's inbound flow (its `inbound` block, else the main steps) with
//! that record's fields, as an inbound attempt of the record. A callback
//! that reaches the point of success ends the record as `success`. A number
//! nobody dialled is refused with 404.

use std::sync::Arc;
use std::time::Duration;

use dialcast_scripts::{Script, FORWARDING_OPEN_FIELD};
use dialcast_sip::InboundCall;
use tracing::Instrument as _;

use super::call::run_callback;
use super::{now_ms, Engine};
use crate::import::normalise::{normalise_phone, phone_region};
use crate::store::{Id, Store};

/// How callbacks are matched.
#[derive(Clone, Debug)]
pub struct CallbackSettings {
    /// Only this organisation's attempts are matched.
    pub organisation: Id,
    /// Country for callers presented without a country code.
    pub default_country: String,
    /// How far back an outbound attempt matches.
    pub match_days: u32,
}

/// Tries to commit the outcome this often before giving up (the attempt is
/// then recovered as interrupted at the next start).
const FINISH_TRIES: u32 = 5;

impl<S: Store> Engine<S> {
    /// Handles one inbound call to the end.
    pub async fn answer_callback(
        self: &Arc<Self>,
        mut call: InboundCall,
        settings: &CallbackSettings,
    ) {
        let Some(number) = caller_number(call.caller(), &settings.default_country) else {
            tracing::info!("inbound call without a usable caller number: refused");
            crate::metrics::callback(false);
            call.reject(404).ok();
            return;
        };
        let now = now_ms();
        let since = now.saturating_sub(i64::from(settings.match_days) * 24 * 3600 * 1000);
        let matched = match self
            .store()
            .claim_callback(settings.organisation, &number, since, now)
            .await
        {
            Ok(matched) => matched,
            Err(e) => {
                tracing::error!("cannot match an inbound call: {e}");
                call.reject_with(503, Some(Duration::from_secs(60))).ok();
                return;
            }
        };
        crate::metrics::callback(matched.is_some());
        let Some(mut callback) = matched else {
            tracing::info!("inbound call from a number not dialled recently: refused");
            call.reject(404).ok();
            return;
        };
        let campaign = &callback.campaign;
        let script = match Script::parse(
            &campaign.script_source,
            &campaign.script_file,
            self.catalog(),
        ) {
            Ok(script) => Arc::new(script),
            Err(e) => {
                tracing::error!(campaign = %campaign.name, "callback: script rejected: {e}");
                call.reject(500).ok();
                self.settle_callback(&callback, "failed").await;
                return;
            }
        };
        let voice = match self.voice_plan(campaign) {
            Ok(voice) => voice,
            Err(e) => {
                tracing::error!(campaign = %campaign.name, "callback: {e:#}");
                call.reject(500).ok();
                self.settle_callback(&callback, "failed").await;
                return;
            }
        };
        let forwarding = if campaign.forwarding_paused { "N" } else { "Y" };
        callback
            .claim
            .fields
            .insert(FORWARDING_OPEN_FIELD.to_string(), forwarding.to_string());
        let span = tracing::info_span!(
            "callback",
            campaign = %campaign.name,
            record = %callback.claim.record_id,
            attempt = callback.claim.attempt_id,
        );
        let outcome = run_callback(
            self.context(),
            call,
            &callback.claim,
            script,
            &campaign.settings,
            voice,
            self.rtp_bind(),
        )
        .instrument(span)
        .await;
        for attempt in 1..=FINISH_TRIES {
            match self.store().finish_callback(&callback, &outcome).await {
                Ok(()) => {
                    let at = outcome.answered_at.unwrap_or(outcome.ended_at);
                    match self.store().bucket_update(callback.campaign.id, at).await {
                        Ok(update) => self.stats_feed().publish(update),
                        Err(e) => tracing::warn!("callback statistics not published: {e}"),
                    }
                    return;
                }
                Err(e) if attempt < FINISH_TRIES => {
                    tracing::warn!("cannot store the callback yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => tracing::error!("callback outcome not stored: {e}"),
            }
        }
    }

    /// Ends a callback that never got going.
    async fn settle_callback(&self, callback: &crate::store::CallbackClaim, status: &str) {
        let outcome = crate::store::AttemptOutcome {
            status: status.to_string(),
            ended_at: now_ms(),
            ..Default::default()
        };
        if let Err(e) = self.store().finish_callback(callback, &outcome).await {
            tracing::error!("callback outcome not stored: {e}");
        }
    }
}

/// The caller as E.164: the From user part (`+31…`, `0031…`, `06…`).
pub fn caller_number(user: &str, default_country: &str) -> Option<String> {
    let user = user.trim();
    if user.is_empty() {
        return None;
    }
    let region = phone_region(default_country)?;
    normalise_phone(user, region).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_read_as_e164() {
        assert_eq!(
            caller_number("+31612345678", "NL").as_deref(),
            Some("+31612345678")
        );
        assert_eq!(
            caller_number("0612345678", "NL").as_deref(),
            Some("+31612345678")
        );
        assert_eq!(
            caller_number("0031612345678", "NL").as_deref(),
            Some("+31612345678")
        );
        assert_eq!(caller_number("anonymous", "NL"), None);
        assert_eq!(caller_number("", "NL"), None);
    }
}
