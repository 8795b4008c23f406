//! Pacing per trunk: at most `max_cps` call starts in any one-second window and
//! at most `max_channels` calls at once.
//!
//! The rate rule is pure ([`RateRule`]): starts are spaced evenly, one every
//! `ceil(1 s / max_cps)`, and a late start never earns a burst to catch up, so
//! no window of one second ever holds more than `max_cps` starts. Channels are
//! a semaphore: a permit is held for the whole life of a call.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Evenly spaced call starts.
#[derive(Debug, Clone)]
pub struct RateRule {
    interval: Duration,
    next_free: Option<Instant>,
}

impl RateRule {
    /// `max_cps` of 0 is read as 1.
    pub fn new(max_cps: u32) -> RateRule {
        let per_second: u64 = 1_000_000_000;
        let nanos = per_second.div_ceil(u64::from(max_cps.max(1)));
        RateRule {
            interval: Duration::from_nanos(nanos),
            next_free: None,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Books the next start at or after `now` and returns its time.
    pub fn book(&mut self, now: Instant) -> Instant {
        let slot = match self.next_free {
            Some(free) if free > now => free,
            _ => now,
        };
        self.next_free = Some(slot + self.interval);
        slot
    }
}

/// The pacing of one trunk, shared by every campaign that uses it.
pub struct TrunkGate {
    rate: Mutex<RateRule>,
    channels: Arc<Semaphore>,
    max_channels: u32,
}

impl TrunkGate {
    pub fn new(max_cps: u32, max_channels: u32) -> TrunkGate {
        let max_channels = max_channels.max(1);
        TrunkGate {
            rate: Mutex::new(RateRule::new(max_cps)),
            channels: Arc::new(Semaphore::new(max_channels as usize)),
            max_channels,
        }
    }

    /// Waits for a free channel; the call holds the permit until it ends.
    /// (The semaphore is never closed, so this does not fail in practice.)
    pub async fn channel(&self) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        Arc::clone(&self.channels).acquire_owned().await
    }

    /// Waits until this trunk may start another call.
    pub async fn start_slot(&self) {
        let slot = self.rate.lock().await.book(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    /// Calls in progress on this trunk.
    pub fn busy_channels(&self) -> u32 {
        self.max_channels
            .saturating_sub(self.channels.available_permits() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn starts(max_cps: u32, requests_ms: &[u64]) -> Vec<Duration> {
        let origin = Instant::now();
        let mut rule = RateRule::new(max_cps);
        let mut out = Vec::new();
        let mut at = origin;
        for ms in requests_ms {
            at = at.max(origin + Duration::from_millis(*ms));
            let slot = rule.book(at);
            out.push(slot - origin);
            // A caller waits for its slot before asking for the next one.
            at = slot;
        }
        out
    }

    #[test]
    fn three_per_second_never_four_in_a_second() {
        let s = starts(3, &[0, 0, 0, 0, 0, 0]);
        assert!(s[3] >= Duration::from_secs(1), "{s:?}");
    }

    proptest! {
        #[test]
        fn no_window_of_one_second_exceeds_max_cps(
            max_cps in 1u32..200,
            mut requests in proptest::collection::vec(0u64..5_000, 1..400),
        ) {
            requests.sort_unstable();
            let s = starts(max_cps, &requests);
            for (i, first) in s.iter().enumerate() {
                let in_window = s[i..].iter().take_while(|t| **t < *first + Duration::from_secs(1)).count();
                prop_assert!(in_window <= max_cps as usize, "{} starts in a second", in_window);
            }
            // And no start is delayed more than needed: each is either its
            // request time or one interval after the previous start.
            for w in s.windows(2) {
                prop_assert!(w[1] >= w[0] + RateRule::new(max_cps).interval());
            }
        }
    }
}
