//! Claiming a running campaign's records a little ahead of its start slots.
//!
//! A claim is a write transaction; on a busy machine it takes longer than
//! the gap between two starts at a few hundred calls per second, and a start
//! slot nobody waits for is lost (the trunk's rate never catches up, see
//! [`super::pacing`]). So the claimer runs beside the loop that starts the
//! calls: while the starter waits for the slots of the records it has, the
//! claimer commits the next ones, several in one transaction
//! ([`crate::store::Store::claim_batch`]).
//!
//! How far ahead is bounded by time, not by a count: at most
//! [`batch_size`] records (the starts of about [`CLAIM_AHEAD`] at the
//! campaign's rate) wait for a slot, each with its channel permit already
//! held; the claimer tops them up when half have started. At a slow pace
//! that is one record, and the order is the plain one: claim, wait for its
//! slot, start, claim the next. A committed attempt is
//! always started, even when the campaign is paused or the service stops
//! meanwhile (its attempt row says it started before the pause).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::pacing::TrunkGate;
use super::schedule::{Candidate, DialRules};
use crate::store::{Claim, ClaimBatch, Id, Store};

/// The claimer keeps about this much of the campaign's starts claimed.
pub const CLAIM_AHEAD: Duration = Duration::from_millis(100);
/// Most records one claim commits.
pub const MAX_BATCH: usize = 64;
/// Longest idle wait before looking for due records again.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How many records to hold claimed at `cps` starts a second: the starts of
/// [`CLAIM_AHEAD`], at least one, at most [`MAX_BATCH`].
pub fn batch_size(cps: f64) -> usize {
    if !cps.is_finite() || cps <= 0.0 {
        return 1;
    }
    // In whole milliseconds, so that 300 × 0.1 s is 30, not 30.000…04.
    let ahead = (cps * CLAIM_AHEAD.as_millis() as f64 / 1000.0).ceil();
    if ahead >= MAX_BATCH as f64 {
        MAX_BATCH
    } else {
        (ahead as usize).max(1)
    }
}

/// A claimed record with the channel it will use.
pub type ReadyStart = (Claim, OwnedSemaphorePermit);

/// Why the claimer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimerEnd {
    /// No record is due any more and no call is in flight.
    NothingLeft,
    /// The campaign left the running state (paused or stopped elsewhere).
    NotRunning,
    /// The service is stopping (or the starter failed).
    Cancelled,
}

/// What the claimer and the starter share.
pub struct Shared {
    /// Claimed records not yet handed to a call task.
    pub pending: AtomicUsize,
    /// The campaign's current rate (`f64` bits), kept by the starter.
    cps_bits: AtomicU64,
    /// The starter took a record.
    pub started: Notify,
    /// A call ended (a retry may have become due, a channel is free).
    pub call_ended: Notify,
}

impl Shared {
    pub fn new(cps: f64) -> Shared {
        Shared {
            pending: AtomicUsize::new(0),
            cps_bits: AtomicU64::new(cps.to_bits()),
            started: Notify::new(),
            call_ended: Notify::new(),
        }
    }

    pub fn set_cps(&self, cps: f64) {
        self.cps_bits.store(cps.to_bits(), Ordering::Relaxed);
    }

    fn batch(&self) -> usize {
        batch_size(f64::from_bits(self.cps_bits.load(Ordering::Relaxed)))
    }

    /// The starter has handed one record to its call task.
    pub fn took_one(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        self.started.notify_one();
    }
}

/// The claiming side of one running campaign.
pub struct Claimer<'a, S: Store> {
    pub store: &'a S,
    pub gate: &'a TrunkGate,
    pub rules: &'a DialRules,
    pub campaign: Id,
    pub priority: u32,
    pub shared: &'a Shared,
    pub calls: &'a TaskTracker,
    pub stop: &'a CancellationToken,
}

impl<S: Store> Claimer<'_, S> {
    /// Claims records and sends them to the starter until none is left, the
    /// campaign stops running, or `stop` fires. Dropping `ready` when it
    /// returns tells the starter that nothing more comes.
    /// `ready` holds [`MAX_BATCH`]: never fewer than the claims pending, so
    /// a send does not wait.
    pub async fn run(self, ready: mpsc::Sender<ReadyStart>) -> anyhow::Result<ClaimerEnd> {
        loop {
            if self.stop.is_cancelled() {
                return Ok(ClaimerEnd::Cancelled);
            }
            let batch = self.shared.batch();
            // Refill when half of the batch has started, so that each claim
            // takes about half a batch: one record per claim would cost a
            // transaction per start again.
            while self.shared.pending.load(Ordering::Acquire) > batch / 2 {
                tokio::select! {
                    _ = self.shared.started.notified() => {}
                    _ = self.stop.cancelled() => return Ok(ClaimerEnd::Cancelled),
                }
            }
            let first = tokio::select! {
                permit = self.gate.channel(self.campaign, self.priority) => permit?,
                _ = self.stop.cancelled() => return Ok(ClaimerEnd::Cancelled),
            };
            let room = batch.saturating_sub(self.shared.pending.load(Ordering::Acquire));
            let mut permits = vec![first];
            while permits.len() < room {
                match self.gate.try_channel() {
                    Some(permit) => permits.push(permit),
                    None => break,
                }
            }
            let now = crate::campaign::now_ms();
            let decide = |candidate: &Candidate<'_>| self.rules.decide(candidate, now);
            let claimed = crate::metrics::timed(
                "claim",
                self.store
                    .claim_batch(self.campaign, now, permits.len(), &decide),
            )
            .await?;
            match claimed {
                ClaimBatch::Claimed(claims) => {
                    // Permits left over (fewer records were due) go back.
                    for (claim, permit) in claims.into_iter().zip(permits) {
                        self.shared.pending.fetch_add(1, Ordering::AcqRel);
                        ready.send((claim, permit)).await.map_err(|_| {
                            anyhow::anyhow!("the campaign's starter stopped before its claims")
                        })?;
                    }
                }
                ClaimBatch::NotRunning => return Ok(ClaimerEnd::NotRunning),
                ClaimBatch::NothingDue => {
                    drop(permits);
                    if let Some(end) = self.idle().await? {
                        return Ok(end);
                    }
                }
            }
        }
    }

    /// Nothing was due: waits for the next due record, a call's end or the
    /// stop; `Some` when the campaign has nothing left.
    async fn idle(&self) -> anyhow::Result<Option<ClaimerEnd>> {
        let due = crate::metrics::timed("next_due", self.store.next_due(self.campaign)).await?;
        let now = crate::campaign::now_ms();
        // The claim moved the due records it looked at (deferred or ended
        // them); more may be due behind them.
        if due.is_some_and(|due| due < now) {
            return Ok(None);
        }
        if due.is_none()
            && self.calls.is_empty()
            && self.shared.pending.load(Ordering::Acquire) == 0
        {
            return Ok(Some(ClaimerEnd::NothingLeft));
        }
        let until_due = due.map_or(IDLE_POLL, |due| {
            Duration::from_millis(u64::try_from((due - now).clamp(1, 1000)).unwrap_or(1000))
        });
        tokio::select! {
            _ = self.shared.call_ended.notified() => {}
            _ = tokio::time::sleep(until_due.min(IDLE_POLL)) => {}
            _ = self.stop.cancelled() => return Ok(Some(ClaimerEnd::Cancelled)),
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_campaign_claims_one_record_at_a_time() {
        for cps in [0.0, 0.5, 1.0, 5.0, 10.0] {
            assert_eq!(batch_size(cps), 1, "{cps}");
        }
        assert_eq!(batch_size(f64::NAN), 1);
    }

    #[test]
    fn a_fast_one_claims_the_starts_of_a_tenth_of_a_second() {
        assert_eq!(batch_size(11.0), 2);
        assert_eq!(batch_size(100.0), 10);
        assert_eq!(batch_size(300.0), 30);
        assert_eq!(batch_size(640.0), MAX_BATCH);
        assert_eq!(batch_size(10_000.0), MAX_BATCH);
    }
}
