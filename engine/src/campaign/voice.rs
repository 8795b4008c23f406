//! What a script's calls do with the voice features around the script
//! itself: how long to wait for a voicemail beep before leaving the
//! message anyway, and where and when a `forward` step connects (the call
//! centre's SIP URI, the header carrying the record's reference, the ring
//! timeout, the opening hours). Built from `[voicemail]`, `[forwarding]` and
//! their `[script_settings.<name>]` overrides; pure, no I/O.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::calendar::Calendar;
use super::schedule::{calendar, ScheduleError};
use crate::store::{OrganisationCalendar, ScheduleSettings};

/// Default wait for a beep after a machine verdict.
pub const DEFAULT_VOICEMAIL_WAIT_MS: u32 = 5_000;
/// Default header that carries the record's reference to the call centre.
pub const DEFAULT_REFERENCE_HEADER: &str = "X-Dialcast-Reference";
/// Default ring time of the call centre.
pub const DEFAULT_FORWARD_RING_MS: u32 = 20_000;

/// One script's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceSettings {
    /// After a `machine` verdict with no beep heard yet: how long to wait
    /// for one before speaking the voicemail block anyway.
    pub voicemail_wait_ms: u32,
    /// Where `forward` steps connect; `None`: they fail (the script's
    /// `failed` block runs).
    pub forward: Option<ForwardTarget>,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            voicemail_wait_ms: DEFAULT_VOICEMAIL_WAIT_MS,
            forward: None,
        }
    }
}

/// How a forward reaches the call centre.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// A second call from us, its RTP relayed to the callee's.
    #[default]
    Bridge,
    /// A REFER asking the trunk to connect the callee to the call centre
    /// itself (RFC 3515); we leave the call once it reports success.
    Refer,
}

/// The call centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    /// Its SIP URI, e.g. `sip:queue@callcentre.example:5060`.
    pub uri: String,
    pub mode: ForwardMode,
    /// The header that carries the record's reference (`CLIENT_REFERENCE`,
    /// else its `RECORD_ID`).
    pub reference_header: String,
    /// How long it may ring before the forward counts as failed.
    pub ring_timeout_ms: u32,
    /// Opening hours per weekday, Monday first, `HH:MM-HH:MM` in the
    /// organisation's time zone, on its workdays and not on its holidays;
    /// `None`: open whenever a call is made.
    pub opening_hours: Option<[Vec<String>; 7]>,
}

/// The settings of every script: `default` for those without their own.
#[derive(Debug, Clone, Default)]
pub struct VoiceTuning {
    default: VoiceSettings,
    scripts: HashMap<String, VoiceSettings>,
}

impl VoiceTuning {
    pub fn new(
        default: VoiceSettings,
        scripts: impl IntoIterator<Item = (String, VoiceSettings)>,
    ) -> VoiceTuning {
        VoiceTuning {
            default,
            scripts: scripts.into_iter().collect(),
        }
    }

    /// The settings for calls of `script`.
    pub fn for_script(&self, script: &str) -> VoiceSettings {
        self.scripts
            .get(script)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// A script's settings made ready for its calls.
#[derive(Debug, Clone)]
pub struct VoicePlan {
    pub settings: VoiceSettings,
    /// The call centre's opening hours on the organisation's calendar.
    opening: Option<Calendar>,
}

/// Why a forward does not go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardGate {
    /// Place the second call.
    Open,
    /// Outside opening hours or paused: the script's closed branch.
    Closed,
    /// No call centre configured: the script's failed branch.
    NoTarget,
}

impl VoicePlan {
    /// Resolves the opening hours against the organisation's calendar.
    pub fn new(
        settings: VoiceSettings,
        organisation: &OrganisationCalendar,
    ) -> Result<VoicePlan, ScheduleError> {
        let opening = match settings
            .forward
            .as_ref()
            .and_then(|f| f.opening_hours.clone())
        {
            Some(windows) => Some(calendar(
                organisation,
                &ScheduleSettings {
                    windows,
                    ..ScheduleSettings::around_the_clock()
                },
            )?),
            None => None,
        };
        Ok(VoicePlan { settings, opening })
    }

    /// Whether a forward may go ahead at `now`, with forwarding paused for
    /// the script or not.
    pub fn forward_gate(&self, paused: bool, now: DateTime<Utc>) -> ForwardGate {
        if self.settings.forward.is_none() {
            return ForwardGate::NoTarget;
        }
        let open = self.opening.as_ref().is_none_or(|c| c.is_open(now));
        if paused || !open {
            ForwardGate::Closed
        } else {
            ForwardGate::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(hours: Option<[Vec<String>; 7]>) -> VoicePlan {
        let settings = VoiceSettings {
            forward: Some(ForwardTarget {
                uri: "sip:cc@127.0.0.1".into(),
                mode: ForwardMode::Bridge,
                reference_header: DEFAULT_REFERENCE_HEADER.into(),
                ring_timeout_ms: DEFAULT_FORWARD_RING_MS,
                opening_hours: hours,
            }),
            ..VoiceSettings::default()
        };
        VoicePlan::new(
            settings,
            &OrganisationCalendar::every_day("Europe/Amsterdam"),
        )
        .expect("plan")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("RFC 3339")
    }

    #[test]
    fn the_gate_follows_pause_opening_hours_and_the_target() {
        let always = plan(None);
        let now = at("2026-12-07T03:00:00Z");
        assert_eq!(always.forward_gate(false, now), ForwardGate::Open);
        assert_eq!(always.forward_gate(true, now), ForwardGate::Closed);
        // 09:00-17:00 Amsterdam (UTC+1 in December), weekdays only.
        let mut hours: [Vec<String>; 7] = Default::default();
        for day in hours.iter_mut().take(5) {
            day.push("09:00-17:00".into());
        }
        let office = plan(Some(hours));
        assert_eq!(
            office.forward_gate(false, at("2026-12-07T08:30:00Z")),
            ForwardGate::Open
        );
        assert_eq!(
            office.forward_gate(false, at("2026-12-07T16:30:00Z")),
            ForwardGate::Closed
        );
        // Saturday.
        assert_eq!(
            office.forward_gate(false, at("2026-12-12T10:00:00Z")),
            ForwardGate::Closed
        );
        let none = VoicePlan::new(
            VoiceSettings::default(),
            &OrganisationCalendar::every_day("Europe/Amsterdam"),
        )
        .expect("plan");
        assert_eq!(none.forward_gate(false, now), ForwardGate::NoTarget);
    }
}
