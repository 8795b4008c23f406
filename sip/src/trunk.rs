//! Trunk health: whether a SIP trunk may be dialled now.
//!
//! [`TrunkHealth`] is a pure state machine fed with OPTIONS keep-alive results and
//! the final responses of calls, on a caller-supplied clock. The async OPTIONS
//! pinger that drives it lives in [`crate::endpoint::SipEndpoint::monitor_trunk`].
//!
//! ```text
//!            any OPTIONS response                 N probes unanswered
//!  Unknown ──────────────────────► Up ◄────────────────────────────┐
//!     │                             │  N probes unanswered          │ any response
//!     └─────────────────────────────┴──────────────────────► Down ──┘
//!
//!  independent of the above: a 503/480 (to a call or a probe) opens a back-off
//!  window (Retry-After, else exponential from `backoff_base` up to `backoff_max`);
//!  no call may start inside it. Any other response resets the exponent.
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::uac::CallEnd;
use crate::Transport;

/// What monitoring shows for a trunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrunkState {
    /// No probe answered yet.
    Unknown,
    /// Answers probes.
    Up,
    /// `down_after` probes in a row went unanswered.
    Down,
}

/// Tuning of the health machine.
#[derive(Clone, Debug)]
pub struct TrunkHealthConfig {
    /// Time between OPTIONS probes while the trunk is up.
    pub probe_interval: Duration,
    /// Time between probes while it is down (find it back quickly).
    pub probe_interval_down: Duration,
    /// How long to wait for a probe's answer.
    pub probe_timeout: Duration,
    /// Unanswered probes in a row that mark the trunk down.
    pub down_after: u32,
    /// First back-off after a 503/480 without Retry-After.
    pub backoff_base: Duration,
    /// Longest back-off, also the cap on a Retry-After value.
    pub backoff_max: Duration,
}

impl Default for TrunkHealthConfig {
    fn default() -> Self {
        TrunkHealthConfig {
            probe_interval: Duration::from_secs(30),
            probe_interval_down: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(4),
            down_after: 2,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// Health of one trunk; see the module docs for the transitions.
#[derive(Clone, Debug)]
pub struct TrunkHealth {
    config: TrunkHealthConfig,
    state: TrunkState,
    unanswered_probes: u32,
    backoff_exponent: u32,
    backoff_until: Option<Instant>,
    backoffs_total: u64,
}

impl TrunkHealth {
    pub fn new(config: TrunkHealthConfig) -> Self {
        TrunkHealth {
            config,
            state: TrunkState::Unknown,
            unanswered_probes: 0,
            backoff_exponent: 0,
            backoff_until: None,
            backoffs_total: 0,
        }
    }

    pub fn config(&self) -> &TrunkHealthConfig {
        &self.config
    }

    pub fn state(&self) -> TrunkState {
        self.state
    }

    /// How many back-off windows were opened so far (a monotonic counter).
    pub fn backoffs_total(&self) -> u64 {
        self.backoffs_total
    }

    /// The end of the current back-off window, if one is open at `now`.
    pub fn backing_off_until(&self, now: Instant) -> Option<Instant> {
        self.backoff_until.filter(|until| *until > now)
    }

    /// Whether a new call may be sent to the trunk at `now`. An `Unknown` trunk may
    /// be dialled: the first call is as good a probe as an OPTIONS.
    pub fn can_dial(&self, now: Instant) -> bool {
        self.state != TrunkState::Down && self.backing_off_until(now).is_none()
    }

    /// When the next OPTIONS probe is due, given the last one was sent at `last`.
    pub fn next_probe_after(&self, last: Instant) -> Instant {
        match self.state {
            TrunkState::Down | TrunkState::Unknown => last + self.config.probe_interval_down,
            TrunkState::Up => last + self.config.probe_interval,
        }
    }

    /// A probe got a response with `code` (any response proves the trunk is alive).
    pub fn on_probe_response(&mut self, code: u16, retry_after: Option<Duration>, now: Instant) {
        self.unanswered_probes = 0;
        self.state = TrunkState::Up;
        self.on_response(code, retry_after, now);
    }

    /// A probe went unanswered within the probe timeout.
    pub fn on_probe_timeout(&mut self) {
        self.unanswered_probes = self.unanswered_probes.saturating_add(1);
        if self.unanswered_probes >= self.config.down_after {
            self.state = TrunkState::Down;
        }
    }

    /// A call through the trunk ended with final response `code` from the network.
    pub fn on_call_final(&mut self, code: u16, retry_after: Option<Duration>, now: Instant) {
        if self.state != TrunkState::Up {
            // A response to a call is as good as one to a probe.
            self.unanswered_probes = 0;
            self.state = TrunkState::Up;
        }
        self.on_response(code, retry_after, now);
    }

    fn on_response(&mut self, code: u16, retry_after: Option<Duration>, now: Instant) {
        if !crate::status::is_backoff_response(code) {
            self.backoff_exponent = 0;
            return;
        }
        let computed = self
            .config
            .backoff_base
            .saturating_mul(1u32 << self.backoff_exponent.min(16));
        let wait = retry_after.unwrap_or(computed).min(self.config.backoff_max);
        self.backoff_exponent = self.backoff_exponent.saturating_add(1);
        let until = now + wait;
        // Never shorten an open window.
        if self.backoff_until.is_none_or(|current| current < until) {
            self.backoff_until = Some(until);
        }
        self.backoffs_total += 1;
    }
}

/// A SIP trunk: where calls go, and whether they may go now. Cheap to clone;
/// clones share the health state, so the pacer, the calls and the OPTIONS
/// monitor all see the same trunk.
#[derive(Clone, Debug)]
pub struct Trunk {
    pub name: String,
    pub addr: SocketAddr,
    pub transport: Transport,
    health: Arc<Mutex<TrunkHealth>>,
}

impl Trunk {
    pub fn new(
        name: impl Into<String>,
        addr: SocketAddr,
        transport: Transport,
        config: TrunkHealthConfig,
    ) -> Self {
        Trunk {
            name: name.into(),
            addr,
            transport,
            health: Arc::new(Mutex::new(TrunkHealth::new(config))),
        }
    }

    /// The shared health machine (for the OPTIONS monitor).
    pub fn health(&self) -> Arc<Mutex<TrunkHealth>> {
        self.health.clone()
    }

    pub fn state(&self) -> TrunkState {
        crate::endpoint::lock(&self.health).state()
    }

    pub fn can_dial(&self, now: Instant) -> bool {
        crate::endpoint::lock(&self.health).can_dial(now)
    }

    pub fn backing_off_until(&self, now: Instant) -> Option<Instant> {
        crate::endpoint::lock(&self.health).backing_off_until(now)
    }

    pub fn backoffs_total(&self) -> u64 {
        crate::endpoint::lock(&self.health).backoffs_total()
    }

    /// Feeds a call's outcome: a final response from the network (503 and 480
    /// open a back-off window; anything else proves the trunk works).
    pub fn record_call_end(&self, end: &CallEnd, now: Instant) {
        if end.from_network {
            crate::endpoint::lock(&self.health).on_call_final(end.sip_code, end.retry_after, now);
        }
    }
}

/// Parses a Retry-After header value (RFC 3261 §20.33: delta-seconds, then
/// optional comment and parameters).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits: &str = value
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    digits.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> TrunkHealth {
        TrunkHealth::new(TrunkHealthConfig::default())
    }

    #[test]
    fn unknown_trunk_may_be_dialled_and_probes_mark_it_up() {
        let now = Instant::now();
        let mut h = health();
        assert_eq!(h.state(), TrunkState::Unknown);
        assert!(h.can_dial(now));
        h.on_probe_response(200, None, now);
        assert_eq!(h.state(), TrunkState::Up);
        // Any response proves liveness, even 404 or 405 to OPTIONS.
        h.on_probe_response(405, None, now);
        assert_eq!(h.state(), TrunkState::Up);
        assert!(h.can_dial(now));
    }

    #[test]
    fn unanswered_probes_mark_it_down_and_an_answer_brings_it_back() {
        let now = Instant::now();
        let mut h = health();
        h.on_probe_response(200, None, now);
        h.on_probe_timeout();
        assert_eq!(h.state(), TrunkState::Up, "one lost probe is not enough");
        h.on_probe_timeout();
        assert_eq!(h.state(), TrunkState::Down);
        assert!(!h.can_dial(now));
        assert_eq!(
            h.next_probe_after(now),
            now + h.config().probe_interval_down
        );
        h.on_probe_response(200, None, now);
        assert_eq!(h.state(), TrunkState::Up);
        assert_eq!(h.next_probe_after(now), now + h.config().probe_interval);
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let t0 = Instant::now();
        let mut h = health();
        h.on_call_final(503, None, t0);
        assert_eq!(h.backing_off_until(t0), Some(t0 + Duration::from_secs(1)));
        assert!(!h.can_dial(t0));
        assert!(h.can_dial(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(2);
        h.on_call_final(480, None, t1);
        assert_eq!(h.backing_off_until(t1), Some(t1 + Duration::from_secs(2)));
        for _ in 0..20 {
            h.on_call_final(503, None, t1);
        }
        assert_eq!(h.backing_off_until(t1), Some(t1 + Duration::from_secs(60)));
        assert_eq!(h.backoffs_total(), 22);
    }

    #[test]
    fn retry_after_is_honoured_and_other_responses_reset_the_exponent() {
        let t0 = Instant::now();
        let mut h = health();
        h.on_call_final(503, Some(Duration::from_secs(7)), t0);
        assert_eq!(h.backing_off_until(t0), Some(t0 + Duration::from_secs(7)));
        let t1 = t0 + Duration::from_secs(8);
        h.on_call_final(486, None, t1);
        h.on_call_final(503, None, t1);
        assert_eq!(h.backing_off_until(t1), Some(t1 + Duration::from_secs(1)));
        // A Retry-After beyond the cap is capped.
        h.on_call_final(503, Some(Duration::from_secs(3600)), t1);
        assert_eq!(h.backing_off_until(t1), Some(t1 + Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(parse_retry_after("18000"), Some(Duration::from_secs(18000)));
        assert_eq!(
            parse_retry_after(" 120 (I'm in a meeting);duration=3600"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
