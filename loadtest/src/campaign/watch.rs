//! What the callee farm sees of a run, sampled from its counters (a few
//! atomics, read every [`FARM_SAMPLE`]): when the first and the last INVITE
//! arrived and when the last call ended. Both sides of the benchmark are timed
//! this way, by the peer, so `achieved_cps` and `wall_s` mean the same thing
//! for the engine and for the bare dialer.

use std::time::{Duration, Instant};

use crate::farm::FarmStats;

/// How often the farm's counters are read.
pub const FARM_SAMPLE: Duration = Duration::from_millis(50);

/// The farm's view of one run.
#[derive(Clone, Debug, Default)]
pub struct FarmWatch {
    /// First sample that saw an INVITE: its time and the count then.
    first: Option<(Instant, u64)>,
    /// Last sample whose INVITE count went up: its time and the count.
    last: Option<(Instant, u64)>,
    /// Last sample that saw the farm go idle after calls.
    idle_since: Option<Instant>,
    was_active: bool,
}

impl FarmWatch {
    /// Takes one sample of the farm's counters at `now`.
    pub fn sample(&mut self, stats: &FarmStats, now: Instant) {
        let calls = stats.total().calls;
        if calls > 0 && self.first.is_none() {
            self.first = Some((now, calls));
        }
        if calls > self.last.map_or(0, |(_, c)| c) {
            self.last = Some((now, calls));
        }
        if stats.active > 0 {
            self.was_active = true;
            self.idle_since = None;
        } else if self.was_active && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    /// INVITEs per second between the first and the last one seen (0 when
    /// fewer than two samples saw INVITEs arrive).
    pub fn achieved_cps(&self) -> f64 {
        match (self.first, self.last) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 && c1 > c0 => {
                (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Seconds from the first INVITE to the end of the last call (or to
    /// `now` while calls are still up).
    pub fn wall_s(&self, now: Instant) -> f64 {
        let Some((t0, _)) = self.first else {
            return 0.0;
        };
        self.idle_since
            .unwrap_or(now)
            .saturating_duration_since(t0)
            .as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::farm::{Behaviour, BehaviourStats};

    fn stats(calls: u64, active: usize) -> FarmStats {
        let mut s = FarmStats::default();
        s.behaviours.insert(
            Behaviour::Human,
            BehaviourStats {
                calls,
                ..BehaviourStats::default()
            },
        );
        s.active = active;
        s
    }

    #[test]
    fn rate_and_wall_time_from_samples() {
        let t = Instant::now();
        let mut w = FarmWatch::default();
        w.sample(&stats(0, 0), t);
        w.sample(&stats(10, 10), t + Duration::from_secs(1));
        w.sample(&stats(110, 50), t + Duration::from_secs(2));
        w.sample(&stats(210, 60), t + Duration::from_secs(3));
        w.sample(&stats(210, 0), t + Duration::from_secs(9));
        w.sample(&stats(210, 0), t + Duration::from_secs(12));
        assert!((w.achieved_cps() - 100.0).abs() < 1e-9);
        assert!((w.wall_s(t + Duration::from_secs(20)) - 8.0).abs() < 1e-9);
    }
}
