//! Changing a campaign's settings while it runs: which settings may change
//! ([`SettingsChange`]: attempts per record, the retry delay, the ring
//! timeout and the longest call), the range each must lie in, and the
//! check that names the first field out of range. Pure; the store applies
//! a checked change ([`crate::store::SqliteStore::change_campaign_settings`]).
//!
//! A running campaign re-reads these settings with its state (every few
//! seconds, see [`super::Engine::run_campaign`]): a call started after that
//! rings, lasts and is retried under the new values; a call in flight
//! keeps the values it started with. The call windows, the trunk and AMD
//! are not changed here (they are built into the campaign's dialling rules
//! and media set-up when it starts).

use serde::Serialize;

/// Attempts per record, the first included.
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=20;
/// Seconds between attempts of a record: a minute to a week.
pub const RETRY_DELAY_S: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;
/// Seconds a call may ring before it counts as not answered.
pub const RING_TIMEOUT_S: std::ops::RangeInclusive<u64> = 5..=120;
/// Seconds an answered call may last at most.
pub const MAX_CALL_S: std::ops::RangeInclusive<u64> = 30..=3600;

/// The settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SettingsChange {
    pub max_attempts: Option<u32>,
    pub retry_delay_s: Option<u64>,
    pub ring_timeout_s: Option<u64>,
    pub max_call_s: Option<u64>,
}

/// A setting outside its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{field} must be between {min} and {max}, not {value}")]
    OutOfRange {
        /// The field's name, as in [`SettingsChange`].
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("nothing to change: give at least one of max_attempts, retry_delay_s, ring_timeout_s, max_call_s")]
    Empty,
}

impl SettingsChange {
    /// Whether the change changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == SettingsChange::default()
    }

    /// Checks every given setting against its range, in field order.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.is_empty() {
            return Err(SettingsError::Empty);
        }
        let attempts = self.max_attempts.map(u64::from);
        let attempts_range = u64::from(*MAX_ATTEMPTS.start())..=u64::from(*MAX_ATTEMPTS.end());
        for (field, value, range) in [
            ("max_attempts", attempts, attempts_range),
            ("retry_delay_s", self.retry_delay_s, RETRY_DELAY_S),
            ("ring_timeout_s", self.ring_timeout_s, RING_TIMEOUT_S),
            ("max_call_s", self.max_call_s, MAX_CALL_S),
        ] {
            if let Some(value) = value {
                if !range.contains(&value) {
                    return Err(SettingsError::OutOfRange {
                        field,
                        value,
                        min: *range.start(),
                        max: *range.end(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_checked_against_its_range() {
        let ok = SettingsChange {
            max_attempts: Some(5),
            retry_delay_s: Some(3600),
            ring_timeout_s: Some(25),
            max_call_s: Some(300),
        };
        assert_eq!(ok.check(), Ok(()));
        let cases = [
            (
                SettingsChange {
                    max_attempts: Some(0),
                    ..SettingsChange::default()
                },
                "max_attempts",
            ),
            (
                SettingsChange {
                    retry_delay_s: Some(59),
                    ..SettingsChange::default()
                },
                "retry_delay_s",
            ),
            (
                SettingsChange {
                    ring_timeout_s: Some(121),
                    ..SettingsChange::default()
                },
                "ring_timeout_s",
            ),
            (
                SettingsChange {
                    max_call_s: Some(u64::MAX),
                    ..SettingsChange::default()
                },
                "max_call_s",
            ),
        ];
        for (change, name) in cases {
            match change.check() {
                Err(SettingsError::OutOfRange { field, .. }) => assert_eq!(field, name),
                other => panic!("{change:?}: {other:?}"),
            }
        }
        assert_eq!(SettingsChange::default().check(), Err(SettingsError::Empty));
    }
}
