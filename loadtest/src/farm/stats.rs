//! The farm's counters: plain atomics bumped by the call tasks (a handful per
//! call, none per packet), and [`FarmStats`], the snapshot callers read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dialcast_sip::endpoint::SipCountersSnapshot;
use serde::Serialize;

use super::behaviour::Behaviour;

/// What happened to the calls of one behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BehaviourStats {
    /// INVITEs received for this behaviour.
    pub calls: u64,
    /// Calls we answered with 200.
    pub answered: u64,
    /// Calls that ended without a fault: the final response sent (busy,
    /// invalid, ...; 408 at no_answer's cap), the caller's CANCEL before the
    /// answer, a BYE from either side once answered.
    pub completed: u64,
    /// Calls that did not: no RTP port, an offer we could not answer (488),
    /// no ACK, a SIP error, or the farm shutting down mid-call.
    pub failed: u64,
    /// BYEs we sent.
    pub hangups_by_us: u64,
    /// BYEs or CANCELs the caller sent.
    pub hangups_by_caller: u64,
    /// DTMF keys we pressed.
    pub dtmf_sent: u64,
}

/// A snapshot of the farm.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FarmStats {
    /// Per behaviour, every behaviour listed (zeros included).
    pub behaviours: BTreeMap<Behaviour, BehaviourStats>,
    /// Calls in progress now.
    pub active: usize,
    /// Most calls in progress at once since the start.
    pub peak_active: usize,
    /// Calls whose number matched no prefix (played as the `unknown`
    /// behaviour, and counted there too).
    pub unknown_numbers: u64,
    /// RTP of the calls that have ended (summed when each call closes its
    /// media session).
    pub rtp: RtpTotals,
    /// The SIP endpoint's own counters (overflow, malformed, send failures).
    pub sip: SipCountersSnapshot,
}

/// RTP counters summed over ended calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RtpTotals {
    pub sent: u64,
    pub received: u64,
    /// Packets sent more than 5 ms after their deadline.
    pub late: u64,
    /// Packets the socket refused to send.
    pub send_errors: u64,
    /// RFC 4733 key presses received (a caller's keys, or, from a caller
    /// that echoes our RTP, our own presses_keys events coming back).
    pub dtmf_received: u64,
}

impl FarmStats {
    /// The counters of `behaviour`.
    pub fn of(&self, behaviour: Behaviour) -> BehaviourStats {
        self.behaviours.get(&behaviour).copied().unwrap_or_default()
    }

    /// The sum over every behaviour.
    pub fn total(&self) -> BehaviourStats {
        self.behaviours
            .values()
            .fold(BehaviourStats::default(), |mut t, s| {
                t.calls += s.calls;
                t.answered += s.answered;
                t.completed += s.completed;
                t.failed += s.failed;
                t.hangups_by_us += s.hangups_by_us;
                t.hangups_by_caller += s.hangups_by_caller;
                t.dtmf_sent += s.dtmf_sent;
                t
            })
    }
}

/// One counter of [`BehaviourStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Calls,
    Answered,
    Completed,
    Failed,
    HangupByUs,
    HangupByCaller,
    DtmfSent,
}

const COUNTERS: usize = 7;

/// The live counters, shared by every call task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    per_behaviour: [[AtomicU64; COUNTERS]; Behaviour::ALL.len()],
    active: AtomicUsize,
    peak_active: AtomicUsize,
    unknown_numbers: AtomicU64,
    rtp: [AtomicU64; 5],
}

impl Counters {
    pub(crate) fn add(&self, behaviour: Behaviour, counter: Counter, n: u64) {
        self.per_behaviour[behaviour as usize][counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds the final media counters of one call.
    pub(crate) fn add_rtp(&self, media: &dialcast_media::MediaStats) {
        let values = [
            media.rtp_sent,
            media.rtp_received,
            media.rtp_late,
            media.rtp_send_errors,
            media.dtmf.chars().count() as u64,
        ];
        for (counter, v) in self.rtp.iter().zip(values) {
            counter.fetch_add(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn unknown_number(&self) {
        self.unknown_numbers.fetch_add(1, Ordering::Relaxed);
    }

    /// A call started: counts it active and keeps the peak.
    pub(crate) fn call_started(&self) {
        let now = self.active.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_active.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn call_ended(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, sip: SipCountersSnapshot) -> FarmStats {
        let behaviours = Behaviour::ALL
            .into_iter()
            .map(|b| {
                let c = &self.per_behaviour[b as usize];
                let get = |k: Counter| c[k as usize].load(Ordering::Relaxed);
                (
                    b,
                    BehaviourStats {
                        calls: get(Counter::Calls),
                        answered: get(Counter::Answered),
                        completed: get(Counter::Completed),
                        failed: get(Counter::Failed),
                        hangups_by_us: get(Counter::HangupByUs),
                        hangups_by_caller: get(Counter::HangupByCaller),
                        dtmf_sent: get(Counter::DtmfSent),
                    },
                )
            })
            .collect();
        FarmStats {
            behaviours,
            active: self.active.load(Ordering::Relaxed),
            peak_active: self.peak_active.load(Ordering::Relaxed),
            unknown_numbers: self.unknown_numbers.load(Ordering::Relaxed),
            rtp: {
                let [sent, received, late, send_errors, dtmf_received] =
                    self.rtp.each_ref().map(|c| c.load(Ordering::Relaxed));
                RtpTotals {
                    sent,
                    received,
                    late,
                    send_errors,
                    dtmf_received,
                }
            },
            sip,
        }
    }
}

/// Keeps a call counted as active for as long as it lives.
pub(crate) struct ActiveCall<'a>(&'a Counters);

impl<'a> ActiveCall<'a> {
    pub(crate) fn new(counters: &'a Counters) -> Self {
        counters.call_started();
        ActiveCall(counters)
    }
}

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_behaviour_and_peak() {
        let c = Counters::default();
        c.add(Behaviour::Busy, Counter::Calls, 1);
        c.add(Behaviour::Busy, Counter::Completed, 1);
        c.add(Behaviour::PressesKeys, Counter::DtmfSent, 3);
        {
            let _a = ActiveCall::new(&c);
            let _b = ActiveCall::new(&c);
            assert_eq!(c.snapshot(SipCountersSnapshot::default()).active, 2);
        }
        let s = c.snapshot(SipCountersSnapshot::default());
        assert_eq!(s.active, 0);
        assert_eq!(s.peak_active, 2);
        assert_eq!(s.of(Behaviour::Busy).calls, 1);
        assert_eq!(s.of(Behaviour::PressesKeys).dtmf_sent, 3);
        assert_eq!(s.behaviours.len(), Behaviour::ALL.len());
        assert_eq!(s.total().completed, 1);
        let json = serde_json::to_value(&s).expect("serialise");
        assert_eq!(json["behaviours"]["busy"]["calls"], 1);
        assert_eq!(json["behaviours"]["early_media_404"]["calls"], 0);
    }
}
