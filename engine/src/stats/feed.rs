//! The in-process stream of bucket updates that the portal API will expose:
//! after a change to the statistics is committed, the bucket it changed is
//! read back from the store and sent to every subscriber. The store stays
//! the truth; an update is a hint that a bucket changed, carrying what the
//! store said right after the commit.
//!
//! Two calls ending at once may read their bucket back in one order and
//! send in the other, so an update can be older than one received before
//! it. Counters only grow: of two updates of one bucket, the one with more
//! `attempts` (or any counter larger) is the newer; when in doubt, re-read
//! the bucket from the store.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;

use super::counters::Counters;
use crate::store::{EpochMs, Id};

/// Updates a subscriber may fall behind by. Senders never wait: a receiver
/// that is slower than this loses the oldest updates
/// (`RecvError::Lagged`) and must re-read the buckets it shows from the
/// store (`StatsStore::stats_buckets`).
pub const STATS_FEED_CAPACITY: usize = 1024;

/// One bucket of one campaign as committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketUpdate {
    pub campaign_id: Id,
    pub campaign: String,
    pub script: String,
    /// UTC milliseconds, floored to 5 minutes.
    pub bucket_start: EpochMs,
    /// The whole bucket (not the change).
    pub counters: Counters,
}

/// The sending side, owned by the engine.
#[derive(Clone, Debug)]
pub struct StatsFeed {
    sender: broadcast::Sender<BucketUpdate>,
    /// When each update still in the channel was sent, oldest first (at
    /// most [`STATS_FEED_CAPACITY`]); held while sending so the order matches.
    sent_at: Arc<Mutex<VecDeque<Instant>>>,
}

impl Default for StatsFeed {
    fn default() -> Self {
        StatsFeed {
            sender: broadcast::Sender::new(STATS_FEED_CAPACITY),
            sent_at: Arc::default(),
        }
    }
}

impl StatsFeed {
    pub fn subscribe(&self) -> broadcast::Receiver<BucketUpdate> {
        self.sender.subscribe()
    }

    /// Whether anyone listens (reading the bucket back can be skipped when not).
    pub fn has_subscribers(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Updates the slowest subscriber has not taken yet (0 without
    /// subscribers), at most [`STATS_FEED_CAPACITY`].
    pub fn len(&self) -> usize {
        self.sender.len()
    }

    /// No update is waiting for a subscriber.
    pub fn is_empty(&self) -> bool {
        self.sender.is_empty()
    }

    /// How long the oldest update the slowest subscriber has not taken has
    /// waited (zero when none waits), for a queue-latency gauge.
    pub fn oldest_wait(&self) -> Duration {
        let sent_at = self.sent_at.lock().unwrap_or_else(|p| p.into_inner());
        // Waiting are the newest `len()` updates sent, so the oldest of them
        // is that far from the end of `sent_at` (which keeps a full channel's worth).
        let waiting = self.sender.len();
        match sent_at.len().checked_sub(waiting) {
            Some(i) if waiting > 0 => sent_at.get(i).map_or(Duration::ZERO, |t| t.elapsed()),
            _ => Duration::ZERO,
        }
    }

    /// Sends an update read from the store after its commit. Nobody
    /// listening is not an error.
    pub fn publish(&self, update: BucketUpdate) {
        let mut sent_at = self.sent_at.lock().unwrap_or_else(|p| p.into_inner());
        if self.sender.send(update).is_ok() {
            if sent_at.len() == STATS_FEED_CAPACITY {
                sent_at.pop_front();
            }
            sent_at.push_back(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(n: u64) -> BucketUpdate {
        BucketUpdate {
            campaign_id: 1,
            campaign: "c".into(),
            script: "s".into(),
            bucket_start: 0,
            counters: Counters {
                attempts: n,
                ..Counters::default()
            },
        }
    }

    #[tokio::test]
    async fn a_slow_receiver_lags_and_keeps_the_newest() {
        let feed = StatsFeed::default();
        assert!(!feed.has_subscribers());
        feed.publish(update(0));
        let mut rx = feed.subscribe();
        assert!(feed.has_subscribers());
        for n in 0..(STATS_FEED_CAPACITY as u64 + 5) {
            feed.publish(update(n));
        }
        assert!(matches!(
            rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(5))
        ));
        assert_eq!(rx.recv().await.expect("update").counters.attempts, 5);
    }

    #[tokio::test]
    async fn the_oldest_wait_is_that_of_the_oldest_update_not_taken() {
        let feed = StatsFeed::default();
        feed.publish(update(0));
        assert_eq!(feed.oldest_wait(), Duration::ZERO, "nobody listens");
        let mut rx = feed.subscribe();
        feed.publish(update(1));
        std::thread::sleep(Duration::from_millis(30));
        let before_second = Instant::now();
        feed.publish(update(2));
        let both = feed.oldest_wait();
        assert!(both >= Duration::from_millis(30), "{both:?}");
        assert_eq!(rx.recv().await.expect("update").counters.attempts, 1);
        let one = feed.oldest_wait();
        assert!(
            one <= before_second.elapsed(),
            "{one:?} is the second's age"
        );
        assert_eq!(rx.recv().await.expect("update").counters.attempts, 2);
        assert_eq!(feed.oldest_wait(), Duration::ZERO);
    }
}
