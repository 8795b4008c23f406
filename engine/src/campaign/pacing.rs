//! Pacing per trunk: at most `max_cps` call starts in any one-second window and
//! at most `max_channels` calls at once, shared between the campaigns on the
//! trunk by priority.
//!
//! The rate rule is pure ([`RateRule`]): starts are spaced evenly, one every
//! `ceil(1 s / max_cps)`, and no window of one second ever holds more than
//! `max_cps` starts (each start is checked against the last second's). A
//! start that came a little late (the scheduler's jitter: at 300 calls/s the
//! gap is 3.3 ms, and a busy machine wakes a task a millisecond or two late)
//! is made up by the next ones, spaced at half the interval until they are
//! back on the even schedule; at most [`MAX_DEBT`] of lateness is made up, so
//! an idle spell earns no burst. Channels are a semaphore: a permit is held for
//! the whole life of a call.
//!
//! Sharing is stride scheduling ([`FairShare`], pure): each start slot goes
//! to the waiting campaign that has had the least service for its priority,
//! so campaigns of priority 2 and 1 that both have calls waiting get starts
//! in the ratio 2:1, and a campaign alone on the trunk gets every slot.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::store::Id;

/// Lateness of the even schedule that later starts make up; beyond it the
/// schedule restarts from the late start.
pub const MAX_DEBT: Duration = Duration::from_millis(25);
/// The window no more than the rate's starts may fall in.
const WINDOW: Duration = Duration::from_secs(1);

/// Evenly spaced call starts.
#[derive(Debug, Clone)]
pub struct RateRule {
    interval: Duration,
    /// The next start's time on the even schedule: in the past when the
    /// last start came late (made up by the next ones, see the module doc).
    next_free: Option<Instant>,
    /// The last start given.
    last: Option<Instant>,
    /// Starts given within the last [`WINDOW`], oldest first.
    recent: VecDeque<Instant>,
    /// Most starts in any [`WINDOW`].
    per_window: usize,
}

impl RateRule {
    /// `max_cps` of 0 is read as 1.
    pub fn new(max_cps: u32) -> RateRule {
        let per_second: u64 = 1_000_000_000;
        let max_cps = max_cps.max(1);
        let nanos = per_second.div_ceil(u64::from(max_cps));
        RateRule {
            interval: Duration::from_nanos(nanos),
            next_free: None,
            last: None,
            recent: VecDeque::new(),
            per_window: max_cps as usize,
        }
    }

    /// A rate that need not be whole (a catch-up rate); at least one start
    /// an hour.
    pub fn per_second(cps: f64) -> RateRule {
        let mut rule = RateRule::new(1);
        rule.set_per_second(cps);
        rule
    }

    /// Changes the rate; the next start keeps its booked time.
    pub fn set_per_second(&mut self, cps: f64) {
        let cps = if cps.is_finite() {
            cps.max(1.0 / 3600.0)
        } else {
            1.0
        };
        self.interval = Duration::from_nanos((1e9 / cps).ceil() as u64);
        // At least one start fits in any second (a rate under one a second
        // has its interval to keep it).
        self.per_window = (cps.floor() as usize).max(1);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Books the next start at or after `now` and returns its time.
    pub fn book(&mut self, now: Instant) -> Instant {
        // On the even schedule, or a little behind it (made up below).
        let due = match self.next_free {
            Some(free) => free.max(now.checked_sub(MAX_DEBT).unwrap_or(now)),
            None => now,
        };
        let mut slot = due.max(now);
        if let Some(last) = self.last {
            slot = slot.max(last + self.interval / 2);
        }
        self.forget_before(slot);
        if self.recent.len() >= self.per_window {
            if let Some(oldest) = self.recent.front() {
                slot = slot.max(*oldest + WINDOW);
            }
            self.forget_before(slot);
        }
        self.recent.push_back(slot);
        self.last = Some(slot);
        self.next_free = Some(due + self.interval);
        slot
    }

    /// Drops the starts that no window ending at `slot` holds.
    fn forget_before(&mut self, slot: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|start| *start + WINDOW <= slot)
        {
            self.recent.pop_front();
        }
    }
}

/// Stride scheduling of start slots between campaigns by priority.
#[derive(Debug, Default)]
pub struct FairShare {
    /// Service received per campaign, in slots divided by priority.
    pass: HashMap<Id, f64>,
    /// The pass of the last campaign served: a campaign that was idle
    /// starts from here, so waiting earns it no burst.
    floor: f64,
}

impl FairShare {
    /// Picks who gets the next slot among `waiting` (campaign, priority) and
    /// charges it; `None` when nobody waits. Ties go to the lower id.
    pub fn pick(&mut self, waiting: &[(Id, u32)]) -> Option<Id> {
        let floor = self.floor;
        let (campaign, priority) = waiting
            .iter()
            .map(|(campaign, priority)| {
                let pass = self.pass.entry(*campaign).or_insert(floor);
                *pass = pass.max(floor);
                (*campaign, *priority, *pass)
            })
            .min_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)))
            .map(|(campaign, priority, _)| (campaign, priority))?;
        let pass = self.pass.entry(campaign).or_insert(floor);
        self.floor = *pass;
        *pass += 1.0 / f64::from(priority.max(1));
        Some(campaign)
    }
}

/// A campaign waiting for what a [`FairQueue`] hands out.
struct Waiter<T> {
    campaign: Id,
    priority: u32,
    ready: oneshot::Sender<T>,
}

/// Campaigns waiting for a channel or a start slot; a dispatcher task hands
/// each one out to the campaign [`FairShare`] picks.
struct FairQueue<T> {
    waiting: std::sync::Mutex<Vec<Waiter<T>>>,
    arrived: Notify,
}

impl<T> FairQueue<T> {
    fn new() -> Arc<FairQueue<T>> {
        Arc::new(FairQueue {
            waiting: std::sync::Mutex::new(Vec::new()),
            arrived: Notify::new(),
        })
    }

    /// Waits for this campaign's turn; `None` if the dispatcher is gone.
    async fn wait(&self, campaign: Id, priority: u32) -> Option<T> {
        let (ready, granted) = oneshot::channel();
        lock(&self.waiting).push(Waiter {
            campaign,
            priority,
            ready,
        });
        self.arrived.notify_one();
        granted.await.ok()
    }

    /// Waits until somebody waits.
    async fn someone_waiting(&self) {
        while lock(&self.waiting).is_empty() {
            self.arrived.notified().await;
        }
    }

    /// Gives `grant` to the waiting campaign `share` picks; a waiter that
    /// gave up (its campaign stopped) is skipped. The grant comes back when
    /// nobody takes it.
    fn hand_out(&self, share: &mut FairShare, mut grant: T) -> Option<T> {
        let mut waiting = lock(&self.waiting);
        loop {
            waiting.retain(|w| !w.ready.is_closed());
            let candidates: Vec<(Id, u32)> =
                waiting.iter().map(|w| (w.campaign, w.priority)).collect();
            let Some(at) = share
                .pick(&candidates)
                .and_then(|campaign| waiting.iter().position(|w| w.campaign == campaign))
            else {
                return Some(grant);
            };
            match waiting.remove(at).ready.send(grant) {
                Ok(()) => return None,
                Err(back) => grant = back,
            }
        }
    }
}

/// The pacing of one trunk, shared by every campaign that uses it.
pub struct TrunkGate {
    slots: Arc<FairQueue<()>>,
    channels: Arc<FairQueue<OwnedSemaphorePermit>>,
    semaphore: Arc<Semaphore>,
    max_channels: u32,
    dispatchers: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for TrunkGate {
    fn drop(&mut self) {
        for dispatcher in &self.dispatchers {
            dispatcher.abort();
        }
    }
}

impl TrunkGate {
    /// Starts the gate's dispatchers on the current tokio runtime.
    pub fn new(max_cps: u32, max_channels: u32) -> TrunkGate {
        let max_channels = max_channels.max(1);
        let slots = FairQueue::new();
        let channels = FairQueue::new();
        let semaphore = Arc::new(Semaphore::new(max_channels as usize));
        let dispatchers = [
            tokio::spawn(dispatch_slots(Arc::clone(&slots), RateRule::new(max_cps))),
            tokio::spawn(dispatch_channels(
                Arc::clone(&channels),
                Arc::clone(&semaphore),
            )),
        ];
        TrunkGate {
            slots,
            channels,
            semaphore,
            max_channels,
            dispatchers,
        }
    }

    /// Waits for a free channel for `campaign`; the call holds the permit
    /// until it ends. When campaigns wait for channels, they get them in
    /// proportion to their priority.
    pub async fn channel(
        &self,
        campaign: Id,
        priority: u32,
    ) -> anyhow::Result<OwnedSemaphorePermit> {
        self.channels
            .wait(campaign, priority)
            .await
            .ok_or_else(|| anyhow::anyhow!("the trunk's channel dispatcher stopped"))
    }

    /// A free channel at once, if one is free and no campaign is waiting
    /// for one (so a waiting campaign's turn is never taken).
    pub fn try_channel(&self) -> Option<OwnedSemaphorePermit> {
        if !lock(&self.channels.waiting).is_empty() {
            return None;
        }
        Arc::clone(&self.semaphore).try_acquire_owned().ok()
    }

    /// Waits until this trunk may start another call for `campaign`.
    pub async fn start_slot(&self, campaign: Id, priority: u32) {
        // The dispatcher lives as long as the gate; if it is gone, do not
        // hang.
        self.slots.wait(campaign, priority).await;
    }

    /// Calls in progress on this trunk.
    pub fn busy_channels(&self) -> u32 {
        self.max_channels
            .saturating_sub(self.semaphore.available_permits() as u32)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Hands out start slots at the trunk's rate, each to the campaign
/// [`FairShare`] picks among those waiting at that moment (a slot nobody
/// takes is lost, as an idle second is).
async fn dispatch_slots(slots: Arc<FairQueue<()>>, mut rate: RateRule) {
    let mut share = FairShare::default();
    loop {
        slots.someone_waiting().await;
        let slot = rate.book(Instant::now());
        tokio::time::sleep_until(slot).await;
        slots.hand_out(&mut share, ());
    }
}

/// Hands out free channels, each to the campaign [`FairShare`] picks among
/// those waiting when it frees (a channel nobody takes goes back).
async fn dispatch_channels(
    channels: Arc<FairQueue<OwnedSemaphorePermit>>,
    semaphore: Arc<Semaphore>,
) {
    let mut share = FairShare::default();
    loop {
        channels.someone_waiting().await;
        // The semaphore is never closed.
        let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else {
            return;
        };
        drop(channels.hand_out(&mut share, permit));
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

    #[test]
    fn a_late_start_is_made_up_by_the_next_ones() {
        // 100 a second: every 10 ms. The second start asks 15 ms late.
        let s = starts(100, &[0, 25, 25, 25, 25, 25]);
        let ms: Vec<u128> = s.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 25, 30, 35, 40, 50]);
    }

    #[test]
    fn an_idle_spell_earns_no_burst() {
        // Nobody asked for a second: only MAX_DEBT (25 ms, two and a half
        // intervals) is made up, then the even schedule again.
        let s = starts(100, &[0, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
        let ms: Vec<u128> = s.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 1000, 1005, 1010, 1015, 1020, 1025, 1035]);
    }

    #[test]
    fn a_fractional_rate_keeps_its_interval() {
        let mut rule = RateRule::per_second(0.5);
        let origin = Instant::now();
        let first = rule.book(origin);
        let second = rule.book(first);
        assert_eq!(second - first, Duration::from_secs(2));
    }

    #[test]
    fn priorities_share_slots_in_proportion() {
        let mut share = FairShare::default();
        let waiting = [(1, 2), (2, 1)];
        let picks: Vec<Id> = (0..300).filter_map(|_| share.pick(&waiting)).collect();
        let first = picks.iter().filter(|c| **c == 1).count();
        assert_eq!(first, 200, "{picks:?}");
    }

    #[test]
    fn an_idle_campaign_earns_no_burst() {
        let mut share = FairShare::default();
        for _ in 0..100 {
            share.pick(&[(1, 1)]);
        }
        // Campaign 2 arrives late: from then on the two alternate.
        let picks: Vec<Id> = (0..10)
            .filter_map(|_| share.pick(&[(1, 1), (2, 1)]))
            .collect();
        assert_eq!(picks.iter().filter(|c| **c == 2).count(), 5, "{picks:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_gives_a_lone_campaign_the_trunk_rate() {
        let gate = Arc::new(TrunkGate::new(10, 5));
        let started = Instant::now();
        for _ in 0..11 {
            gate.start_slot(1, 1).await;
        }
        // Ten intervals of 100 ms after the first start.
        assert_eq!(started.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn channels_are_shared_by_priority_when_they_are_the_limit() {
        // One channel, calls of 100 ms, a trunk rate that never binds.
        let gate = Arc::new(TrunkGate::new(1000, 1));
        let counts = Arc::new(std::sync::Mutex::new([0u32; 2]));
        let stop = Instant::now() + Duration::from_secs(4);
        let mut tasks = Vec::new();
        for (campaign, priority) in [(0i64, 3u32), (1, 1)] {
            let gate = Arc::clone(&gate);
            let counts = Arc::clone(&counts);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    let permit = gate.channel(campaign, priority).await.expect("channel");
                    lock(&counts)[campaign as usize] += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    drop(permit);
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let [high, low] = *lock(&counts);
        assert!(high + low <= 41, "one channel: {high} + {low}");
        assert!(
            (2.5..=3.5).contains(&(f64::from(high) / f64::from(low))),
            "{high}:{low}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_shares_by_priority_under_contention() {
        let gate = Arc::new(TrunkGate::new(100, 5));
        let counts = Arc::new(std::sync::Mutex::new([0u32; 2]));
        let stop = Instant::now() + Duration::from_secs(3);
        let mut tasks = Vec::new();
        for (campaign, priority) in [(0i64, 3u32), (1, 1)] {
            let gate = Arc::clone(&gate);
            let counts = Arc::clone(&counts);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    gate.start_slot(campaign, priority).await;
                    lock(&counts)[campaign as usize] += 1;
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        let [high, low] = *lock(&counts);
        assert!(high + low <= 302, "{high} + {low}");
        assert!(
            (2.7..=3.3).contains(&(f64::from(high) / f64::from(low))),
            "{high}:{low}"
        );
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
            // And starts are never closer than half the interval (the
            // spacing of a made-up late start).
            for w in s.windows(2) {
                prop_assert!(w[1] >= w[0] + RateRule::new(max_cps).interval() / 2);
            }
        }
    }
}
