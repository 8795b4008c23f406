//! A campaign's own pace, inside its trunk's: the campaign's normal rate,
//! or, after a resume within the same call window, the catch-up rate that
//! starts the remaining attempts before the window closes (recomputed as
//! calls go, never above what the trunk allows; see [`super::catch_up`]).

use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use tokio::time::Instant;

use super::calendar::Calendar;
use super::catch_up::{catch_up_cps, Limits};
use super::pacing::RateRule;
use super::LiveCounters;
use crate::store::{Campaign, EpochMs, Id, Store, StoreResult};

/// Assumed length of a call before any has ended.
const ASSUMED_CALL: Duration = Duration::from_secs(30);

/// The pace of one running campaign.
pub struct Pace {
    rule: RateRule,
    cps: f64,
    base_cps: f64,
    trunk_cps: f64,
    channels: u32,
    /// The end of the window being caught up in.
    catch_up_until: Option<EpochMs>,
}

impl Pace {
    pub fn new(campaign: &Campaign, calendar: &Calendar, now: EpochMs) -> Pace {
        let trunk_cps = f64::from(campaign.trunk.max_cps.max(1));
        let base_cps = campaign
            .settings
            .schedule
            .cps
            .map_or(trunk_cps, |cps| f64::from(cps.max(1)).min(trunk_cps));
        let catch_up_until =
            catch_up_window(calendar, campaign.paused_at, campaign.resumed_at, now);
        Pace {
            rule: RateRule::per_second(base_cps),
            cps: base_cps,
            base_cps,
            trunk_cps,
            channels: campaign.trunk.max_channels,
            catch_up_until,
        }
    }

    /// The rate now (calls/s).
    pub fn cps(&self) -> f64 {
        self.cps
    }

    pub fn catching_up(&self) -> bool {
        self.catch_up_until.is_some()
    }

    /// Recomputes the catch-up rate from what is left; back to normal once
    /// the window has closed.
    pub async fn update<S: Store>(
        &mut self,
        store: &S,
        campaign: Id,
        counters: &LiveCounters,
        now: EpochMs,
    ) -> StoreResult<()> {
        let Some(until) = self.catch_up_until else {
            return Ok(());
        };
        if now >= until {
            self.catch_up_until = None;
            self.set_cps(self.base_cps);
            return Ok(());
        }
        let remaining = store.pending_due_before(campaign, until).await?;
        let time_left = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
        let cps = catch_up_cps(
            remaining,
            time_left,
            Limits {
                base_cps: self.base_cps,
                max_cps: self.trunk_cps,
                channels: self.channels,
                mean_call: counters.mean_call().unwrap_or(ASSUMED_CALL),
            },
        );
        if (cps - self.cps).abs() > 1e-6 {
            tracing::info!(
                cps,
                remaining,
                minutes_left = time_left.as_secs() / 60,
                "catching up after the resume"
            );
        }
        self.set_cps(cps);
        Ok(())
    }

    fn set_cps(&mut self, cps: f64) {
        self.cps = cps;
        self.rule.set_per_second(cps);
    }

    /// Waits for the campaign's next start; at the trunk's own rate there is
    /// nothing to wait for here (the trunk gate paces).
    pub async fn start_slot(&mut self) {
        if self.cps >= self.trunk_cps {
            return;
        }
        let slot = self.rule.book(Instant::now());
        tokio::time::sleep_until(slot).await;
    }
}

/// The end of the call window to catch up in: the campaign was paused inside
/// a window and resumed inside the same one, which is still open at `now`.
pub fn catch_up_window(
    calendar: &Calendar,
    paused_at: Option<EpochMs>,
    resumed_at: Option<EpochMs>,
    now: EpochMs,
) -> Option<EpochMs> {
    let (paused, resumed) = (paused_at?, resumed_at?);
    if resumed < paused {
        return None;
    }
    let end = calendar.window_at(utc(paused)?)?;
    let same = calendar.window_at(utc(resumed)?) == Some(end)
        && calendar.window_at(utc(now)?) == Some(end);
    same.then(|| end.timestamp_millis())
}

fn utc(ms: EpochMs) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::schedule::calendar;
    use crate::store::{OrganisationCalendar, ScheduleSettings};

    fn ms(s: &str) -> EpochMs {
        s.parse::<DateTime<Utc>>()
            .expect("RFC 3339")
            .timestamp_millis()
    }

    fn nine_to_five() -> Calendar {
        let organisation = OrganisationCalendar {
            time_zone: "Europe/Amsterdam".into(),
            ..OrganisationCalendar::default()
        };
        let schedule = ScheduleSettings {
            windows: std::array::from_fn(|_| vec!["09:00-12:00".into(), "13:00-17:00".into()]),
            ..ScheduleSettings::default()
        };
        calendar(&organisation, &schedule).expect("calendar")
    }

    #[test]
    fn a_resume_in_the_same_window_catches_up_until_it_closes() {
        let c = nine_to_five();
        // Tuesday 13 January 2026, Amsterdam is UTC+1: the afternoon window
        // is 12:00–16:00 UTC. Paused 14:00, resumed 15:20: 40 minutes left.
        let end = catch_up_window(
            &c,
            Some(ms("2026-01-13T13:00:00Z")),
            Some(ms("2026-01-13T15:20:00Z")),
            ms("2026-01-13T15:20:01Z"),
        );
        assert_eq!(end, Some(ms("2026-01-13T16:00:00Z")));
    }

    #[test]
    fn a_resume_in_another_window_or_outside_does_not() {
        let c = nine_to_five();
        // Paused in the morning window, resumed in the afternoon one.
        assert_eq!(
            catch_up_window(
                &c,
                Some(ms("2026-01-13T09:00:00Z")),
                Some(ms("2026-01-13T13:00:00Z")),
                ms("2026-01-13T13:00:00Z"),
            ),
            None
        );
        // Paused over the lunch break.
        assert_eq!(
            catch_up_window(
                &c,
                Some(ms("2026-01-13T11:30:00Z")),
                Some(ms("2026-01-13T12:30:00Z")),
                ms("2026-01-13T12:30:00Z"),
            ),
            None
        );
        // Never paused.
        assert_eq!(
            catch_up_window(&c, None, None, ms("2026-01-13T12:30:00Z")),
            None
        );
    }
}
