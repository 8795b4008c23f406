//! The media crate's Prometheus metrics: their names and HELP texts, in one
//! place, and [`RtpTally`], the plain counters a scheduler thread keeps and
//! hands to the `metrics` facade once per housekeeping round (every 100 ms),
//! never per packet.
//!
//! Names are registered without `_total`; the exporter (engine::metrics,
//! `with_recommended_naming`) adds it to counters. Only the facade is used
//! here: without an installed recorder every call is a no-op.

use crate::session::MediaStats;

/// RTP packets sent (counter).
pub const RTP_PACKETS_SENT: &str = "dialcast_rtp_packets_sent";
/// RTP packets received (counter).
pub const RTP_PACKETS_RECEIVED: &str = "dialcast_rtp_packets_received";
/// RTP packets sent more than 5 ms after their deadline (counter).
pub const RTP_PACKETS_LATE: &str = "dialcast_rtp_packets_late";
/// RTP packets lost, from sequence gaps (counter).
pub const RTP_PACKETS_LOST: &str = "dialcast_rtp_packets_lost";
/// Datagrams on an RTP port that were not RTP (counter).
pub const RTP_PACKETS_MALFORMED: &str = "dialcast_rtp_packets_malformed";
/// Datagrams on a shared RTP socket that matched no call (counter; see
/// `crate::demux`).
pub const RTP_DATAGRAMS_UNMATCHED: &str = "dialcast_rtp_datagrams_unmatched";
/// RTP packets sent in UDP GSO buffers with others to the same address
/// (counter; a share of `dialcast_rtp_packets_sent`, see `crate::send_batch`).
pub const RTP_PACKETS_GSO: &str = "dialcast_rtp_packets_gso";
/// Interarrival jitter of a call, observed when its session closes (histogram, s).
pub const RTP_JITTER_SECONDS: &str = "dialcast_rtp_jitter_seconds";
/// Answer to answering-machine decision (histogram, s; label `result`).
pub const AMD_DECISION_SECONDS: &str = "dialcast_amd_decision_seconds";

/// Buckets of [`RTP_JITTER_SECONDS`].
pub const JITTER_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1];
/// Buckets of [`AMD_DECISION_SECONDS`].
pub const AMD_BUCKETS: &[f64] = &[0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0];

/// Gives every metric of this crate its HELP text (call once, after the
/// recorder is installed).
pub fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(RTP_PACKETS_SENT, "RTP packets sent by the media engine.");
    describe_counter!(
        RTP_PACKETS_RECEIVED,
        "RTP packets received by the media engine."
    );
    describe_counter!(
        RTP_PACKETS_LATE,
        "RTP packets sent more than 5 ms after their deadline (and frames skipped after a stall)."
    );
    describe_counter!(
        RTP_PACKETS_LOST,
        "RTP packets lost, from sequence gaps in received streams less late arrivals."
    );
    describe_counter!(
        RTP_PACKETS_MALFORMED,
        "Datagrams received on RTP ports that were not valid RTP."
    );
    describe_counter!(
        RTP_DATAGRAMS_UNMATCHED,
        "Datagrams on a shared RTP socket (one per media thread) that matched no call, dropped."
    );
    describe_counter!(
        RTP_PACKETS_GSO,
        "RTP packets sent in one UDP GSO buffer with others bound for the same address (a share of the packets sent)."
    );
    describe_histogram!(
        RTP_JITTER_SECONDS,
        "RFC 3550 interarrival jitter of a call's received stream, observed when the call's media closes."
    );
    describe_histogram!(
        AMD_DECISION_SECONDS,
        "Time from the first received audio after answer to the answering-machine decision, by result."
    );
}

/// The RTP counters of one session or a sum of sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpTally {
    pub sent: u64,
    pub received: u64,
    pub late: u64,
    pub lost: u64,
    pub malformed: u64,
}

impl RtpTally {
    /// The counters of `stats`.
    pub fn of(stats: &MediaStats) -> RtpTally {
        RtpTally {
            sent: stats.rtp_sent,
            received: stats.rtp_received,
            late: stats.rtp_late,
            lost: stats.rtp_lost,
            malformed: stats.rtp_malformed,
        }
    }

    /// Adds what `now` counted since `reported` and moves `reported` up to
    /// it. Session counters only grow, except `lost`, which a late packet
    /// filling a gap lowers again: a drop is kept for later (never a
    /// negative increment).
    pub fn add_since(&mut self, reported: &mut RtpTally, now: RtpTally) {
        fn step(total: &mut u64, reported: &mut u64, now: u64) {
            if now > *reported {
                *total += now - *reported;
                *reported = now;
            }
        }
        step(&mut self.sent, &mut reported.sent, now.sent);
        step(&mut self.received, &mut reported.received, now.received);
        step(&mut self.late, &mut reported.late, now.late);
        step(&mut self.lost, &mut reported.lost, now.lost);
        step(&mut self.malformed, &mut reported.malformed, now.malformed);
    }

    pub fn is_zero(&self) -> bool {
        *self == RtpTally::default()
    }

    /// Adds the tally to the facade's counters (five calls) and clears it.
    pub fn flush(&mut self) {
        if self.is_zero() {
            return;
        }
        metrics::counter!(RTP_PACKETS_SENT).increment(self.sent);
        metrics::counter!(RTP_PACKETS_RECEIVED).increment(self.received);
        metrics::counter!(RTP_PACKETS_LATE).increment(self.late);
        metrics::counter!(RTP_PACKETS_LOST).increment(self.lost);
        metrics::counter!(RTP_PACKETS_MALFORMED).increment(self.malformed);
        *self = RtpTally::default();
    }
}

/// Records a closed session's jitter (once per call).
pub fn observe_jitter(stats: &MediaStats) {
    if stats.rtp_received > 1 {
        metrics::histogram!(RTP_JITTER_SECONDS).record(stats.jitter_ms / 1000.0);
    }
}

/// Records an answering-machine decision `at_ms` after detection began.
pub fn observe_amd_decision(result: &'static str, at_ms: u32) {
    metrics::histogram!(AMD_DECISION_SECONDS, "result" => result).record(f64::from(at_ms) / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_add_up_and_a_falling_loss_count_is_not_negative() {
        let mut reported = RtpTally::default();
        let mut total = RtpTally::default();
        let a = RtpTally {
            sent: 10,
            received: 8,
            late: 1,
            lost: 2,
            malformed: 0,
        };
        total.add_since(&mut reported, a);
        assert_eq!(total, a);
        // A late packet fills a gap: lost goes 2 -> 1; nothing is taken back.
        let b = RtpTally {
            sent: 15,
            received: 14,
            lost: 1,
            ..a
        };
        total.add_since(&mut reported, b);
        assert_eq!(total.sent, 15);
        assert_eq!(total.received, 14);
        assert_eq!(total.lost, 2);
        assert_eq!(reported.lost, 2);
        // Loss counted again only past what was already reported.
        total.add_since(&mut reported, RtpTally { lost: 3, ..b });
        assert_eq!(total.lost, 3);
    }
}
