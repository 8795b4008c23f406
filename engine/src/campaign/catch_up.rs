//! Catching up after a resume: the call rate needed to start the remaining
//! attempts before the call window closes, within what the trunk allows.
//! Pure, so a resume with 40 minutes left is a unit test, not a wait.

use std::time::Duration;

/// What the trunk and the calls allow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The script's normal rate (calls/s).
    pub base_cps: f64,
    /// The trunk's cap (calls/s).
    pub max_cps: f64,
    /// The trunk's channels.
    pub channels: u32,
    /// Mean length of a call, start to end, seen so far.
    pub mean_call: Duration,
}

/// Share of the time left we plan to use, so the last attempts do not start
/// in the window's final seconds.
pub const PLAN_SHARE: f64 = 0.9;

/// The rate (calls/s) to start `remaining` attempts within `time_left`:
/// never below the normal rate, never above the trunk's cap, nor above what
/// its channels can carry (`channels / mean_call`).
pub fn catch_up_cps(remaining: u64, time_left: Duration, limits: Limits) -> f64 {
    let base = limits.base_cps.max(0.0);
    let planned = time_left.as_secs_f64() * PLAN_SHARE;
    let needed = if planned > 0.0 {
        remaining as f64 / planned
    } else {
        f64::INFINITY
    };
    let carried = if limits.mean_call.is_zero() {
        f64::INFINITY
    } else {
        f64::from(limits.channels) / limits.mean_call.as_secs_f64()
    };
    let ceiling = limits.max_cps.min(carried).max(base);
    needed.max(base).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            base_cps: 2.0,
            max_cps: 20.0,
            channels: 100,
            mean_call: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_resume_with_40_minutes_left_speeds_up_to_finish_in_time() {
        // 6,000 attempts in 40 min: 2 calls/s would need 50 min.
        let cps = catch_up_cps(6_000, Duration::from_secs(40 * 60), limits());
        let expected = 6_000.0 / (40.0 * 60.0 * PLAN_SHARE);
        assert!((cps - expected).abs() < 1e-9, "{cps}");
        assert!(cps > 2.0 && cps < 100.0 / 30.0);
    }

    #[test]
    fn never_slower_than_normal() {
        assert_eq!(catch_up_cps(10, Duration::from_secs(3600), limits()), 2.0);
    }

    #[test]
    fn capped_by_the_trunk_and_by_its_channels() {
        // 100 channels / 30 s calls carry 3.33 calls/s: the trunk's 20 cannot be used.
        let cps = catch_up_cps(100_000, Duration::from_secs(600), limits());
        assert!((cps - 100.0 / 30.0).abs() < 1e-9, "{cps}");
        let wide = Limits {
            channels: 10_000,
            ..limits()
        };
        assert_eq!(catch_up_cps(100_000, Duration::from_secs(600), wide), 20.0);
    }

    #[test]
    fn no_time_left_means_as_fast_as_allowed() {
        let cps = catch_up_cps(5, Duration::ZERO, limits());
        assert!((cps - 100.0 / 30.0).abs() < 1e-9, "{cps}");
    }
}
