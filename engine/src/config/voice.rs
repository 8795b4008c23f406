//! `[voicemail]`, `[forwarding]` and their per-script overrides
//! (`[script_settings.<name>] voicemail_wait_ms`,
//! `[script_settings.<name>.forwarding]`), turned into the engine's
//! [`VoiceTuning`].

use serde::Deserialize;

use super::WeekWindows;
use crate::campaign::calendar::Window;
use crate::campaign::schedule::WEEKDAY_KEYS;
pub use crate::campaign::voice::ForwardMode;
use crate::campaign::voice::{
    ForwardTarget, VoiceSettings, VoiceTuning, DEFAULT_FORWARD_RING_MS, DEFAULT_REFERENCE_HEADER,
    DEFAULT_VOICEMAIL_WAIT_MS,
};

/// `[voicemail]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoicemailConfig {
    /// After a `machine` verdict with no beep yet: how long to wait for one
    /// before the voicemail block is spoken anyway (ms).
    #[serde(default = "default_wait")]
    pub wait_ms: u32,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            wait_ms: DEFAULT_VOICEMAIL_WAIT_MS,
        }
    }
}

fn default_wait() -> u32 {
    DEFAULT_VOICEMAIL_WAIT_MS
}

/// `[forwarding]` and `[script_settings.<name>.forwarding]`: every key
/// optional, a script's over the organisation's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardingConfig {
    /// The call centre's SIP URI.
    pub uri: Option<String>,
    pub mode: Option<ForwardMode>,
    /// The header carrying the record's reference.
    pub reference_header: Option<String>,
    pub ring_timeout_s: Option<u32>,
    /// Opening hours per weekday; none: open whenever calls are made.
    pub opening_hours: Option<WeekWindows>,
}

impl ForwardingConfig {
    /// `self` with `over`'s keys on top.
    fn merged(&self, over: Option<&ForwardingConfig>) -> ForwardingConfig {
        let Some(over) = over else {
            return self.clone();
        };
        ForwardingConfig {
            uri: over.uri.clone().or_else(|| self.uri.clone()),
            mode: over.mode.or(self.mode),
            reference_header: over
                .reference_header
                .clone()
                .or_else(|| self.reference_header.clone()),
            ring_timeout_s: over.ring_timeout_s.or(self.ring_timeout_s),
            opening_hours: over
                .opening_hours
                .clone()
                .or_else(|| self.opening_hours.clone()),
        }
    }

    /// The target, checked; `section` names the table in errors.
    fn target(&self, section: &str) -> anyhow::Result<Option<ForwardTarget>> {
        let Some(uri) = self.uri.as_ref() else {
            return Ok(None);
        };
        let uri = uri.trim();
        anyhow::ensure!(
            uri.starts_with("sip:") || uri.starts_with("sips:"),
            "{section}.uri {uri:?}: expected a SIP URI such as sip:queue@callcentre.example:5060"
        );
        let header = self
            .reference_header
            .clone()
            .unwrap_or_else(|| DEFAULT_REFERENCE_HEADER.to_string());
        anyhow::ensure!(
            !header.is_empty()
                && header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{section}.reference_header {header:?}: expected a header name such as X-Dialcast-Reference"
        );
        let ring_timeout_ms = match self.ring_timeout_s {
            Some(s) => {
                anyhow::ensure!(
                    (1..=300).contains(&s),
                    "{section}.ring_timeout_s = {s}: expected 1 to 300"
                );
                s * 1000
            }
            None => DEFAULT_FORWARD_RING_MS,
        };
        let opening_hours = match &self.opening_hours {
            Some(week) => {
                let days = week.days();
                for (day, windows) in days.iter().enumerate() {
                    for text in windows {
                        Window::parse(text).map_err(|e| {
                            anyhow::anyhow!("{section}.opening_hours.{}: {e}", WEEKDAY_KEYS[day])
                        })?;
                    }
                }
                Some(days)
            }
            None => None,
        };
        Ok(Some(ForwardTarget {
            uri: uri.to_string(),
            mode: self.mode.unwrap_or_default(),
            reference_header: header,
            ring_timeout_ms,
            opening_hours,
        }))
    }
}

impl super::Config {
    /// The voicemail and forwarding settings of every script, checked.
    pub fn voice_tuning(&self) -> anyhow::Result<VoiceTuning> {
        let default = VoiceSettings {
            voicemail_wait_ms: self.voicemail.wait_ms,
            forward: self.forwarding.target("forwarding")?,
        };
        let mut scripts = Vec::new();
        for (name, o) in &self.script_settings {
            let forwarding = self.forwarding.merged(o.forwarding.as_ref());
            let section = format!("script_settings.{name}.forwarding");
            scripts.push((
                name.clone(),
                VoiceSettings {
                    voicemail_wait_ms: o.voicemail_wait_ms.unwrap_or(self.voicemail.wait_ms),
                    forward: forwarding.target(&section)?,
                },
            ));
        }
        Ok(VoiceTuning::new(default, scripts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_keys_override_the_organisation() {
        let base = ForwardingConfig {
            uri: Some("sip:cc@10.0.0.1".into()),
            ring_timeout_s: Some(15),
            ..ForwardingConfig::default()
        };
        let over = ForwardingConfig {
            reference_header: Some("X-Case".into()),
            ..ForwardingConfig::default()
        };
        let target = base
            .merged(Some(&over))
            .target("f")
            .expect("valid")
            .expect("a target");
        assert_eq!(target.uri, "sip:cc@10.0.0.1");
        assert_eq!(target.reference_header, "X-Case");
        assert_eq!(target.ring_timeout_ms, 15_000);
        assert_eq!(target.opening_hours, None);

        let refer = ForwardingConfig {
            mode: Some(ForwardMode::Refer),
            ..ForwardingConfig::default()
        };
        let target = base.merged(Some(&refer)).target("f").expect("valid");
        assert_eq!(target.map(|t| t.mode), Some(ForwardMode::Refer));

        let bad_hours = ForwardingConfig {
            opening_hours: Some(WeekWindows {
                mon: vec!["18:00-09:00".into()],
                ..WeekWindows::default()
            }),
            ..base
        };
        let err = bad_hours
            .target("forwarding")
            .expect_err("hours")
            .to_string();
        assert!(err.contains("forwarding.opening_hours.mon"), "{err}");
        assert_eq!(ForwardingConfig::default().target("f").expect("ok"), None);
    }
}
