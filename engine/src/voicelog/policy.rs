//! Which calls are recorded, and from when: pure decisions, no I/O.
//!
//! ```text
//! policy        starts the recording at
//! none          never
//! all           the answer (callbacks: when the call is answered)
//! from_success  the script's point of success
//! forwarded     the start of a forward to the call centre
//! ```
//!
//! A recording, once started, runs to the end of the call; later moments
//! do not start a second one.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A script's voicelog policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    #[default]
    None,
    All,
    FromSuccess,
    Forwarded,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::All => "all",
            Policy::FromSuccess => "from_success",
            Policy::Forwarded => "forwarded",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown voicelog policy {0:?} (expected none, all, from_success or forwarded)")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Policy, UnknownPolicy> {
        match s {
            "none" => Ok(Policy::None),
            "all" => Ok(Policy::All),
            "from_success" => Ok(Policy::FromSuccess),
            "forwarded" => Ok(Policy::Forwarded),
            other => Err(UnknownPolicy(other.to_string())),
        }
    }
}

/// A moment of a call at which a recording may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// The call was answered (with usable media).
    Answered,
    /// The script reached its point of success (committed to the store).
    SuccessPoint,
    /// A forward to the call centre starts (bridge or REFER).
    ForwardStarted,
}

/// Whether `moment` starts a recording under `policy`, given whether one
/// already runs.
pub fn starts_recording(policy: Policy, moment: Moment, recording: bool) -> bool {
    !recording
        && matches!(
            (policy, moment),
            (Policy::All, Moment::Answered)
                | (Policy::FromSuccess, Moment::SuccessPoint)
                | (Policy::Forwarded, Moment::ForwardStarted)
        )
}

/// What the engine records, where, and for how long it keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicelogSettings {
    /// Files go to `<dir>/<script>/<YYYY-MM-DD>/<attempt>.wav`.
    pub dir: PathBuf,
    /// Scripts without a policy of their own.
    pub default_policy: Policy,
    /// Per script name.
    pub scripts: HashMap<String, Policy>,
    /// Files and rows older than this are deleted by housekeeping.
    pub retention_days: u32,
}

/// Default retention of voicelogs.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

impl VoicelogSettings {
    /// Nothing recorded (the demo, tests).
    pub fn disabled() -> VoicelogSettings {
        VoicelogSettings {
            dir: PathBuf::from("voicelogs"),
            default_policy: Policy::None,
            scripts: HashMap::new(),
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }

    pub fn policy_for(&self, script: &str) -> Policy {
        self.scripts
            .get(script)
            .copied()
            .unwrap_or(self.default_policy)
    }

    pub fn retention_ms(&self) -> i64 {
        i64::from(self.retention_days) * 24 * 3600 * 1000
    }
}

/// The file of one attempt's voicelog, relative to the voicelog directory:
/// `<script>/<YYYY-MM-DD>/<attempt>.wav` (UTC day of the start). Characters
/// of the script name other than ASCII letters, digits, `-` and `_` become
/// `_`, so a name can never leave the directory.
pub fn relative_path(script: &str, started_at_ms: i64, attempt_id: i64) -> String {
    let safe: String = script
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = if safe.is_empty() {
        "_".to_string()
    } else {
        safe
    };
    let day = chrono::DateTime::from_timestamp_millis(started_at_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "unknown-day".to_string());
    format!("{safe}/{day}/{attempt_id}.wav")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_starts_at_its_moment_only() {
        use Moment::*;
        let table = [
            (Policy::None, [false, false, false]),
            (Policy::All, [true, false, false]),
            (Policy::FromSuccess, [false, true, false]),
            (Policy::Forwarded, [false, false, true]),
        ];
        for (policy, expected) in table {
            for (moment, want) in [Answered, SuccessPoint, ForwardStarted]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    starts_recording(policy, moment, false),
                    want,
                    "{policy} {moment:?}"
                );
                assert!(
                    !starts_recording(policy, moment, true),
                    "never a second recording"
                );
            }
        }
    }

    #[test]
    fn policies_parse_and_print_alike() {
        for p in [
            Policy::None,
            Policy::All,
            Policy::FromSuccess,
            Policy::Forwarded,
        ] {
            assert_eq!(p.as_str().parse::<Policy>(), Ok(p));
        }
        assert!("everything".parse::<Policy>().is_err());
    }

    #[test]
    fn scripts_override_the_default() {
        let mut s = VoicelogSettings::disabled();
        s.scripts.insert("reminder".into(), Policy::FromSuccess);
        assert_eq!(s.policy_for("reminder"), Policy::FromSuccess);
        assert_eq!(s.policy_for("other"), Policy::None);
        assert_eq!(s.retention_ms(), 90 * 86_400_000);
    }

    #[test]
    fn paths_stay_inside_the_directory() {
        // 2026-12-06T03:00:00Z
        let t = 1_796_526_000_000;
        assert_eq!(
            relative_path("payment_reminder", t, 42),
            "payment_reminder/2026-12-06/42.wav"
        );
        assert_eq!(relative_path("../etc", t, 1), "___etc/2026-12-06/1.wav");
        assert_eq!(relative_path("", t, 1), "_/2026-12-06/1.wav");
    }
}
