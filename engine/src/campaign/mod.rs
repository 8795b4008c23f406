//! Running campaigns: claim the next due record, wait for a channel and a
//! start slot on its trunk, and hand the attempt to a call task; when the call
//! ends, commit its outcome and decide on a retry. A campaign finishes when no
//! record is pending and no call is in flight.
//!
//! Order of a start: channel permit → claim (the attempt is committed as
//! dialing) → start slot → INVITE. The attempt row exists before the INVITE
//! leaves, so a crash can never make the engine dial it again; see
//! [`crate::store`]. At a high rate the claims run a few slots ahead of the
//! starts, several records a transaction ([`claim_ahead`]).

pub mod calendar;
pub mod call;
pub mod callback;
pub mod callee_zone;
pub mod catch_up;
pub mod channels;
pub mod claim_ahead;
pub mod clips;
pub mod control;
mod country_zones;
pub mod pacing;
pub mod retry;
pub mod schedule;
pub mod settings_change;
pub mod target;
pub mod voice;
pub mod weekly_cap;

pub mod pace;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use dialcast_scripts::{AudioCatalog, Script};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use call::{CallContext, CallPlan};
use claim_ahead::ClaimerEnd;
use clips::ClipLibrary;
use dialcast_scripts::FORWARDING_OPEN_FIELD;
use pace::Pace;
use pacing::TrunkGate;
use schedule::DialRules;
use target::{Credentials, TrunkTarget};
use voice::{VoicePlan, VoiceTuning};

use crate::stats::{BucketUpdate, StatsFeed};
use crate::store::{Campaign, CampaignState, NextStep, Store, TrunkSettings};

/// How often a running campaign re-reads its state (pause from another
/// process) while it dials.
const STATE_CHECK: Duration = Duration::from_secs(2);
/// Attempts to commit an outcome before giving up (the attempt then stays
/// dialing and is recovered as interrupted at the next start).
const FINISH_TRIES: u32 = 5;

/// The answering-machine detector's tuning per script (from `[amd]` and
/// `[script_settings.<name>.amd]`); scripts without their own take the
/// default.
#[derive(Debug, Clone, Default)]
pub struct AmdTuning {
    default: dialcast_media::AmdConfig,
    scripts: HashMap<String, dialcast_media::AmdConfig>,
}

impl AmdTuning {
    pub fn new(
        default: dialcast_media::AmdConfig,
        scripts: impl IntoIterator<Item = (String, dialcast_media::AmdConfig)>,
    ) -> AmdTuning {
        AmdTuning {
            default,
            scripts: scripts.into_iter().collect(),
        }
    }

    /// The tuning for calls of `script`.
    pub fn for_script(&self, script: &str) -> dialcast_media::AmdConfig {
        self.scripts.get(script).copied().unwrap_or(self.default)
    }
}

/// Live counters, announced after the store has committed.
#[derive(Default)]
pub struct LiveCounters {
    pub started: AtomicU64,
    pub ended: AtomicU64,
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    /// Sum of the lengths of ended calls, start to end (ms).
    pub call_ms: AtomicU64,
}

impl LiveCounters {
    fn call_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    fn call_ended(&self, length: Duration) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        self.call_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The mean length of the calls that ended, if any did.
    pub fn mean_call(&self) -> Option<Duration> {
        let ended = self.ended.load(Ordering::Relaxed);
        (ended > 0).then(|| Duration::from_millis(self.call_ms.load(Ordering::Relaxed) / ended))
    }
}

/// The engine: runs campaigns against the store with shared SIP and media.
pub struct Engine<S> {
    ctx: Arc<CallContext<S>>,
    catalog: Arc<AudioCatalog>,
    credentials: HashMap<String, Credentials>,
    gates: std::sync::Mutex<HashMap<String, Arc<TrunkGate>>>,
    rtp_bind: IpAddr,
    amd: AmdTuning,
    voice: VoiceTuning,
    pub counters: Arc<LiveCounters>,
    /// Bucket updates, sent after the store committed them.
    stats: StatsFeed,
    /// When the process-wide gauges were last sampled (see
    /// [`Engine::sample_engine_gauges`]).
    engine_gauges_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// What the engine is built from.
pub struct EngineParts<S> {
    pub store: Arc<S>,
    pub sip: dialcast_sip::SipEndpoint,
    pub media: dialcast_media::MediaEngine,
    pub catalog: AudioCatalog,
    /// Digest credentials per trunk name.
    pub credentials: HashMap<String, Credentials>,
    pub rtp_bind: IpAddr,
    /// Answering-machine detector tuning per script.
    pub amd: AmdTuning,
    /// Voicemail and forwarding settings per script.
    pub voice: VoiceTuning,
    /// Which calls are recorded, and where.
    pub voicelogs: crate::voicelog::VoicelogSettings,
    /// Where committed bucket updates are announced; made before the
    /// engine when something beside it (the portal's live stream)
    /// subscribes from the start, else `StatsFeed::default()`.
    pub stats: StatsFeed,
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

impl<S: Store> Engine<S> {
    /// Loads every clip of the catalogue once.
    pub fn new(parts: EngineParts<S>) -> anyhow::Result<Arc<Engine<S>>> {
        let clips = ClipLibrary::load(&parts.catalog)?;
        if let Some(metrics) = crate::metrics::installed() {
            // The SIP receive loop counts in atomics; a scrape copies them.
            let sip = parts.sip.clone();
            metrics.add_collector(move || dialcast_sip::metrics::export(&sip.counters()));
        }
        Ok(Arc::new(Engine {
            ctx: Arc::new(CallContext {
                store: parts.store,
                sip: parts.sip,
                media: parts.media,
                clips: Arc::new(clips),
                voicelogs: Arc::new(parts.voicelogs),
            }),
            catalog: Arc::new(parts.catalog),
            credentials: parts.credentials,
            gates: std::sync::Mutex::new(HashMap::new()),
            rtp_bind: parts.rtp_bind,
            amd: parts.amd,
            voice: parts.voice,
            counters: Arc::new(LiveCounters::default()),
            stats: parts.stats,
            engine_gauges_at: std::sync::Mutex::new(None),
        }))
    }

    /// Samples the process-wide gauges: today's records per service (the
    /// local day of `time_zone`, as `dialcast stats` counts it) and the
    /// depths and oldest waits of the voicelog writer's queue, the SMS and
    /// e-mail outboxes and the statistics feed. At most once per
    /// [`STATE_CHECK`] whoever asks (each running campaign's check, and
    /// `serve`'s loop), a few cheap store reads each time.
    pub async fn sample_engine_gauges(&self, time_zone: chrono_tz::Tz) {
        let now = tokio::time::Instant::now();
        {
            let mut at = self
                .engine_gauges_at
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if at.is_some_and(|at| now.duration_since(at) < STATE_CHECK) {
                return;
            }
            *at = Some(now);
        }
        use crate::metrics::{queue, queue_depth, queue_oldest_wait};
        let media = &self.ctx.media;
        queue_depth(queue::VOICELOG_WRITER, media.recorder_backlog());
        queue_oldest_wait(queue::VOICELOG_WRITER, media.recorder_longest_wait());
        queue_depth(queue::STATS_FEED, self.stats.len());
        queue_oldest_wait(queue::STATS_FEED, self.stats.oldest_wait());
        let store = &self.ctx.store;
        for (name, backlog) in [
            (queue::SMS_OUTBOX, store.sms_outbox_backlog().await),
            (queue::EMAIL_OUTBOX, store.email_outbox_backlog().await),
        ] {
            match backlog {
                Ok(backlog) => {
                    queue_depth(name, usize::try_from(backlog.depth).unwrap_or(usize::MAX));
                    let age_ms = backlog
                        .oldest_at
                        .map_or(0, |at| Utc::now().timestamp_millis().saturating_sub(at));
                    queue_oldest_wait(
                        name,
                        std::time::Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)),
                    );
                }
                Err(e) => tracing::debug!("{name} backlog not read: {e}"),
            }
        }
        let today = crate::stats::range::today(Utc::now(), time_zone);
        let Some(day) = crate::stats::range::day_range(today, time_zone) else {
            return;
        };
        match store.records_imported_per_service(day.from, day.to).await {
            Ok(per_service) => crate::metrics::records_today(&per_service),
            Err(e) => tracing::debug!("records of today not read: {e}"),
        }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.ctx.store
    }

    pub fn catalog(&self) -> &AudioCatalog {
        &self.catalog
    }

    pub(crate) fn context(&self) -> &CallContext<S> {
        &self.ctx
    }

    /// The voicemail and forwarding settings of `campaign`'s calls.
    pub(crate) fn voice_plan(&self, campaign: &Campaign) -> anyhow::Result<Arc<VoicePlan>> {
        let settings = self.voice.for_script(&campaign.script_name);
        let plan = VoicePlan::new(settings, &campaign.calendar).map_err(|e| {
            anyhow::anyhow!("campaign {}: forwarding opening hours: {e}", campaign.name)
        })?;
        Ok(Arc::new(plan))
    }

    pub(crate) fn rtp_bind(&self) -> IpAddr {
        self.rtp_bind
    }

    /// Every statistics bucket an ended attempt changed, as committed (see
    /// [`crate::stats::feed`] for what a lagging receiver must do).
    pub fn subscribe_stats(&self) -> tokio::sync::broadcast::Receiver<BucketUpdate> {
        self.stats.subscribe()
    }

    /// The feed, for other committed changes (inbound calls, forwards,
    /// callbacks) to publish their bucket on.
    pub fn stats_feed(&self) -> &StatsFeed {
        &self.stats
    }

    /// After a crash: ends attempts left dialing as interrupted and
    /// reschedules their records. Run once at start, before any campaign, and
    /// only on a node that is the sole user of its store.
    pub async fn recover(&self) -> anyhow::Result<u64> {
        let now = now_ms();
        let rule = |status: &str, attempt_no: u32, max_attempts: u32| {
            // Retry at once: the interrupted attempt was not the callee's fault.
            retry::next_step(status, attempt_no, max_attempts, 0, now)
        };
        Ok(self.ctx.store.recover_interrupted(now, &rule).await?)
    }

    fn gate(&self, trunk: &TrunkSettings) -> Arc<TrunkGate> {
        let mut gates = match self.gates.lock() {
            Ok(gates) => gates,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(
            gates
                .entry(trunk.name.clone())
                .or_insert_with(|| Arc::new(TrunkGate::new(trunk.max_cps, trunk.max_channels))),
        )
    }

    /// Dials the campaign's due records until none is left (the campaign is
    /// then marked finished), the campaign leaves the running state (a pause
    /// takes effect at the next claim), or `cancel` fires. Calls in flight
    /// are waited for before returning.
    pub async fn run_campaign(
        self: &Arc<Self>,
        campaign: Campaign,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let amd_config = self.amd.for_script(&campaign.script_name);
        let voice = self.voice_plan(&campaign)?;
        let script = Arc::new(
            Script::parse(
                &campaign.script_source,
                &campaign.script_file,
                &self.catalog,
            )
            .with_context(|| format!("campaign {}: script rejected", campaign.name))?,
        );
        let rules = DialRules::new(&campaign.calendar, &campaign.settings.schedule)
            .with_context(|| format!("campaign {}: schedule rejected", campaign.name))?;
        anyhow::ensure!(
            campaign.trunk.caller_id.is_some(),
            "campaign {}: trunk {} has no caller_id; every call must present one",
            campaign.name,
            campaign.trunk.name
        );
        let credentials = self
            .credentials
            .get(&campaign.trunk.name)
            .cloned()
            .unwrap_or_default();
        let target =
            Arc::new(TrunkTarget::resolve(&campaign.trunk, credentials, self.rtp_bind).await?);
        let gate = self.gate(&campaign.trunk);
        let priority = campaign.settings.schedule.priority.max(1);
        let mut pace = Pace::new(&campaign, &rules.calendar, now_ms());
        let calls = TaskTracker::new();
        let shared = Arc::new(claim_ahead::Shared::new(pace.cps()));
        let store = Arc::clone(&self.ctx.store);
        let mut forwarding_paused = campaign.forwarding_paused;
        // The settings a new call starts with: re-read with the state, so a
        // change made while the campaign runs (`settings_change`) applies to
        // the calls started after it.
        let mut settings = campaign.settings.clone();
        let mut next_check = tokio::time::Instant::now();
        let script_name = campaign.script_name.clone();
        let trunk_name: Arc<str> = Arc::from(campaign.trunk.name.as_str());
        crate::metrics::trunk_configured(&trunk_name, campaign.trunk.max_channels);
        crate::metrics::script_started(campaign.id, &script_name);
        tracing::info!(
            campaign = %campaign.name,
            trunk = %campaign.trunk.name,
            cps = pace.cps(),
            catch_up = pace.catching_up(),
            "campaign running"
        );

        // The claimer commits attempts ahead of the start slots
        // (`claim_ahead`); the starter below waits for each one's slot and
        // hands it to a call task. A starter that fails stops the claimer
        // but still starts what was claimed.
        let stop = cancel.child_token();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(claim_ahead::MAX_BATCH);
        let claimer = claim_ahead::Claimer {
            store: &*store,
            gate: &gate,
            rules: &rules,
            campaign: campaign.id,
            priority,
            shared: &shared,
            calls: &calls,
            stop: &stop,
        }
        .run(ready_tx);
        let starter = async {
            let mut failure: Option<anyhow::Error> = None;
            loop {
                let (mut claim, permit) = tokio::select! {
                    ready = ready_rx.recv() => match ready {
                        Some(ready) => ready,
                        None => break,
                    },
                    _ = tokio::time::sleep_until(next_check), if failure.is_none() => {
                        next_check = tokio::time::Instant::now() + STATE_CHECK;
                        let checked = self
                            .refresh_state(&campaign, &mut pace, &mut settings, &mut forwarding_paused)
                            .await;
                        shared.set_cps(pace.cps());
                        match checked {
                            Ok(()) => {
                                self.sample_metrics(&campaign, &rules, pace.cps(), forwarding_paused, false)
                                    .await;
                            }
                            Err(e) => {
                                stop.cancel();
                                failure = Some(e);
                            }
                        }
                        continue;
                    }
                };
                // The attempt is committed: it is dialled now, whatever happens.
                pace.start_slot().await;
                gate.start_slot(campaign.id, priority).await;
                let forwarding_open = if forwarding_paused { "N" } else { "Y" };
                claim.fields.insert(
                    FORWARDING_OPEN_FIELD.to_string(),
                    forwarding_open.to_string(),
                );
                let plan = CallPlan {
                    claim,
                    script: Arc::clone(&script),
                    target: Arc::clone(&target),
                    settings: settings.clone(),
                    amd: amd_config,
                    voice: Arc::clone(&voice),
                };
                self.spawn_call(
                    &calls,
                    &campaign.name,
                    &script_name,
                    &trunk_name,
                    plan,
                    permit,
                    &shared,
                );
                shared.took_one();
            }
            failure
        };
        let (claimed, failure) = tokio::join!(claimer, starter);
        if let Some(e) = failure {
            calls.close();
            calls.wait().await;
            return Err(e);
        }
        let finished = match claimed {
            Ok(ClaimerEnd::NothingLeft) => true,
            Ok(ClaimerEnd::Cancelled) => false,
            Ok(ClaimerEnd::NotRunning) => {
                let paused = store
                    .campaign_by_name(&campaign.name)
                    .await
                    .is_ok_and(|c| c.state == CampaignState::Paused);
                self.sample_metrics(&campaign, &rules, pace.cps(), forwarding_paused, paused)
                    .await;
                tracing::info!(campaign = %campaign.name, "campaign stopped dialling (paused or stopped)");
                false
            }
            Err(e) => {
                calls.close();
                calls.wait().await;
                return Err(e);
            }
        };
        calls.close();
        calls.wait().await;
        crate::metrics::records_due(&script_name, 0);
        if finished && !cancel.is_cancelled() {
            // Records may have been rescheduled by the last calls.
            if store.next_due(campaign.id).await?.is_none() {
                store
                    .set_campaign_state(campaign.id, CampaignState::Finished, now_ms())
                    .await?;
                tracing::info!(campaign = %campaign.name, "campaign finished");
            }
        }
        Ok(())
    }

    /// Re-reads what may change while a campaign runs (forwarding paused,
    /// retry and call settings) and the catch-up rate.
    async fn refresh_state(
        &self,
        campaign: &Campaign,
        pace: &mut Pace,
        settings: &mut crate::store::CampaignSettings,
        forwarding_paused: &mut bool,
    ) -> anyhow::Result<()> {
        let fresh = self.ctx.store.campaign_by_name(&campaign.name).await?;
        *forwarding_paused = fresh.forwarding_paused;
        settings.max_attempts = fresh.settings.max_attempts;
        settings.retry_delay_ms = fresh.settings.retry_delay_ms;
        settings.ring_timeout_ms = fresh.settings.ring_timeout_ms;
        settings.max_call_ms = fresh.settings.max_call_ms;
        pace.update(&*self.ctx.store, campaign.id, &self.counters, now_ms())
            .await?;
        Ok(())
    }

    /// Hands a started attempt to its call task, which holds `permit` (the
    /// trunk channel) until the call ends and then tells the claimer.
    #[allow(clippy::too_many_arguments)]
    fn spawn_call(
        self: &Arc<Self>,
        calls: &TaskTracker,
        campaign_name: &str,
        script_name: &str,
        trunk_name: &Arc<str>,
        plan: CallPlan,
        permit: tokio::sync::OwnedSemaphorePermit,
        shared: &Arc<claim_ahead::Shared>,
    ) {
        let engine = Arc::clone(self);
        let shared = Arc::clone(shared);
        self.counters.call_started();
        crate::metrics::call_started(script_name, trunk_name);
        let trunk_name = Arc::clone(trunk_name);
        // A span per call; never the phone number (STYLE: no numbers at info).
        let span = tracing::info_span!(
            "call",
            campaign = %campaign_name,
            record = %plan.claim.record_id,
            attempt = plan.claim.attempt_id,
        );
        calls.spawn(
            async move {
                let started = std::time::Instant::now();
                engine.attempt(plan).await;
                drop(permit);
                engine.counters.call_ended(started.elapsed());
                crate::metrics::call_finished(&trunk_name);
                shared.call_ended.notify_one();
            }
            .instrument(span),
        );
    }

    /// Samples the script's gauges (every [`STATE_CHECK`] while it runs).
    async fn sample_metrics(
        &self,
        campaign: &Campaign,
        rules: &DialRules,
        cps: f64,
        forwarding_paused: bool,
        paused: bool,
    ) {
        let script = &campaign.script_name;
        let now = now_ms();
        self.sample_engine_gauges(rules.calendar.time_zone).await;
        crate::metrics::pacer_target(&campaign.trunk.name, cps);
        crate::metrics::script_state(
            script,
            paused,
            forwarding_paused,
            rules.calendar.is_open(Utc::now()),
        );
        match crate::metrics::timed(
            "pending_due",
            self.ctx.store.pending_due_before(campaign.id, now + 1),
        )
        .await
        {
            Ok(due) => crate::metrics::records_due(script, due),
            Err(e) => tracing::debug!(campaign = %campaign.name, "records due not read: {e}"),
        }
    }

    /// One attempt: the call, then its outcome committed with the retry
    /// decision.
    async fn attempt(&self, plan: CallPlan) {
        let claim = plan.claim.clone();
        let settings = plan.settings.clone();
        let outcome = call::run_attempt(&self.ctx, plan).await;
        let next: NextStep = retry::next_step(
            &outcome.status,
            claim.attempt_no,
            settings.max_attempts,
            settings.retry_delay_ms,
            outcome.ended_at,
        );
        for attempt in 1..=FINISH_TRIES {
            let stored = crate::metrics::timed(
                "attempt_end",
                self.ctx.store.finish_attempt(&claim, &outcome, next),
            )
            .await;
            match stored {
                // The store's commit counted the attempt in the bucket and
                // in the metrics (`metrics::bucket_committed`).
                Ok(()) => return self.publish_attempt_bucket(&claim).await,
                Err(e) if attempt < FINISH_TRIES => {
                    tracing::warn!(record = %claim.record_id, "cannot store the outcome yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => tracing::error!(
                    record = %claim.record_id,
                    "outcome not stored (recovered as interrupted at the next start): {e}"
                ),
            }
        }
    }

    /// Reads back the bucket the committed attempt changed and sends it.
    async fn publish_attempt_bucket(&self, claim: &crate::store::Claim) {
        if !self.stats.has_subscribers() {
            return;
        }
        match self.ctx.store.attempt_bucket(claim.attempt_id).await {
            Ok(update) => self.stats.publish(update),
            Err(e) => tracing::debug!(record = %claim.record_id, "bucket not read back: {e}"),
        }
    }
}
