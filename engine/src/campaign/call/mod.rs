//! The per-call controller of a campaign: one task per live call drives a
//! `sip` call, a `media` session and a `scripts` run together, and turns what
//! happened into an [`AttemptOutcome`]. The point of success is committed to
//! the store the moment the script reaches it, before anything else hears of it.
//!
//! ```text
//! INVITE ──► ringing / early media ──► answered ──► [AMD] ──► script ──► BYE
//!    │                                    │ human / unknown ──┘  │  (either side)
//!    │                                    │ machine ──► wait for the beep's end (or
//!    │                                    │   voicemail_wait_ms) ──► voicemail block
//!    │                                    │   (none in the script: BYE)
//!    │                                    └ silence / fax ──► BYE
//!    └──────────── final response / ring timeout ─────────────────────────┘
//!
//! script Forward ──► gate (paused / opening hours / no target) ──► Closed / Failed
//!          └─► second INVITE to the call centre ──► answered: bridge RTP both
//!              ways (media::bridge) until either side hangs up (status forwarded)
//!                                               └─► no answer / error: Failed
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dialcast_media::{AmdConfig, AmdVerdict, MediaEngine, MediaEvent, MediaSession};
use dialcast_scripts::{Action, Event, Run, Script, VOICEMAIL_BLOCK};
use dialcast_sip::sdp::{LocalMedia, NegotiatedMedia};
use dialcast_sip::{
    CallEnd, CallEvent, CallRequest, CallStatus, InboundCall, InboundEvent, OutboundCall,
    SipEndpoint,
};
use tokio::time::Instant as TokioInstant;

use super::clips::ClipLibrary;
use super::target::TrunkTarget;
use super::voice::VoicePlan;
use crate::single_call::remote_media;
use crate::store::{AttemptOutcome, CampaignSettings, Claim, ForwardStats, SmsRequest, Store};

mod forward;

use crate::voicelog::{CallRecorder, Moment, VoicelogSettings};
use forward::{forward_event, ForwardLeg, Referral};

/// Extra time after the detector's own window before we give up waiting for
/// its verdict (e.g. no RTP at all) and start the script.
const AMD_GRACE: Duration = Duration::from_millis(1500);

/// What every call of the engine shares.
pub struct CallContext<S> {
    pub store: Arc<S>,
    pub sip: SipEndpoint,
    pub media: MediaEngine,
    pub clips: Arc<ClipLibrary>,
    /// Which calls are recorded, and where.
    pub voicelogs: Arc<VoicelogSettings>,
}

/// One attempt to run.
pub struct CallPlan {
    pub claim: Claim,
    pub script: Arc<Script>,
    pub target: Arc<TrunkTarget>,
    pub settings: CampaignSettings,
    /// The answering-machine detector's tuning for this script.
    pub amd: AmdConfig,
    /// Voicemail and forwarding settings for this script.
    pub voice: Arc<VoicePlan>,
}

/// Places the call, runs the script and reports the outcome. Never fails: a
/// local problem becomes status `failed`.
pub async fn run_attempt<S: Store>(ctx: &CallContext<S>, plan: CallPlan) -> AttemptOutcome {
    let session = match ctx.media.open_session() {
        Ok(session) => session,
        Err(e) => return local_failure(&plan, format!("no RTP port: {e}")),
    };
    let local = LocalMedia {
        ip: plan.target.rtp_ip,
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    };
    let request = CallRequest {
        target: plan.target.dial_uri(&plan.claim.number),
        transport: plan.target.transport,
        caller_id: plan.target.caller_id.clone(),
        username: plan.target.username.clone(),
        password: plan.target.password.clone(),
        local_media: local,
        ring_timeout: Duration::from_millis(plan.settings.ring_timeout_ms.max(1) as u64),
        extra_headers: vec![(
            "X-Dialcast-Attempt".to_string(),
            plan.claim.attempt_id.to_string(),
        )],
    };
    let call = match ctx.sip.place_call(request).await {
        Ok(call) => call,
        Err(e) => {
            session.close().await;
            return local_failure(&plan, format!("cannot place the call: {e}"));
        }
    };
    let run = Run::start(Arc::clone(&plan.script), &plan.claim.fields);
    let voicemail = plan.script.has_block(VOICEMAIL_BLOCK);
    let leg = Leg::new(SipSide::Out(call), session, run, &ctx.clips, voicemail);
    leg.drive(
        ctx,
        LegPlan {
            claim: &plan.claim,
            settings: &plan.settings,
            amd: plan.amd,
            voice: &plan.voice,
            rtp_ip: plan.target.rtp_ip,
            script: plan.script.name(),
            trunk: Some(&plan.target.name),
        },
    )
    .await
}

/// Answers a matched callback and runs the script's inbound flow (no AMD:
/// the person called us). Never fails: a local problem becomes `failed`.
pub async fn run_callback<S: Store>(
    ctx: &CallContext<S>,
    mut call: InboundCall,
    claim: &Claim,
    script: Arc<Script>,
    settings: &CampaignSettings,
    voice: Arc<VoicePlan>,
    rtp_bind: std::net::IpAddr,
) -> AttemptOutcome {
    let offer_addr = dialcast_sip::sdp::parse_answer(call.offer())
        .ok()
        .map(|m| m.remote);
    let rtp_ip = offer_addr.map_or(rtp_bind, |addr| {
        crate::single_call::advertised_ip(rtp_bind, addr)
    });
    let settings = CampaignSettings {
        amd: false,
        ..settings.clone()
    };
    let failed = |detail: String| {
        tracing::warn!(record = %claim.record_id, "callback: {detail}");
        AttemptOutcome {
            status: "failed".to_string(),
            ended_at: Utc::now().timestamp_millis(),
            ..AttemptOutcome::default()
        }
    };
    let session = match ctx.media.open_session() {
        Ok(session) => session,
        Err(e) => {
            call.reject(503).ok();
            return failed(format!("no RTP port: {e}"));
        }
    };
    let local = LocalMedia {
        ip: rtp_ip,
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    };
    let media = match call.answer(local) {
        Ok(media) => media,
        Err(e) => {
            call.reject(488).ok();
            session.close().await;
            return failed(format!("cannot answer: {e}"));
        }
    };
    let side = SipSide::In {
        call,
        answered: Some(media),
    };
    let script_name = script.name().to_string();
    let run = Run::start_inbound(script, &claim.fields);
    let leg = Leg::new(side, session, run, &ctx.clips, false);
    leg.drive(
        ctx,
        LegPlan {
            claim,
            settings: &settings,
            // No detection on a callback (settings.amd is off).
            amd: AmdConfig::default(),
            voice: &voice,
            rtp_ip,
            script: &script_name,
            trunk: None,
        },
    )
    .await
}

/// What a leg needs to know of its attempt.
#[derive(Clone, Copy)]
struct LegPlan<'a> {
    claim: &'a Claim,
    settings: &'a CampaignSettings,
    amd: AmdConfig,
    voice: &'a VoicePlan,
    /// Our RTP address, for the call centre's leg.
    rtp_ip: std::net::IpAddr,
    /// The script's name (its voicelog policy; a metrics label).
    script: &'a str,
    /// The trunk of a call we placed (a metrics label); `None` for callbacks.
    trunk: Option<&'a str>,
}

/// The SIP side of a leg: a call we placed, or an inbound call we answered.
enum SipSide {
    Out(OutboundCall),
    In {
        call: InboundCall,
        /// The answer's media, handed to the leg as its first event.
        answered: Option<NegotiatedMedia>,
    },
}

impl SipSide {
    /// The next event, inbound ones told in the outbound call's terms.
    async fn next_event(&mut self) -> Option<CallEvent> {
        match self {
            SipSide::Out(call) => call.next_event().await,
            SipSide::In { call, answered } => {
                if let Some(media) = answered.take() {
                    return Some(CallEvent::Answered(Some(media)));
                }
                Some(match call.next_event().await? {
                    InboundEvent::Confirmed => CallEvent::Progress { code: 200 },
                    InboundEvent::MediaUpdated(media) => CallEvent::MediaUpdated(media),
                    InboundEvent::InfoDtmf(digit) => CallEvent::InfoDtmf(digit),
                    InboundEvent::Ended(cause) => CallEvent::Ended(CallEnd {
                        status: CallStatus::Answered,
                        sip_code: 200,
                        cause,
                        retry_after: None,
                        from_network: true,
                        detail: None,
                    }),
                })
            }
        }
    }

    async fn hangup(&mut self) {
        match self {
            SipSide::Out(call) => call.hangup().await,
            SipSide::In { call, .. } => call.hangup().await,
        }
    }

    fn ring_time(&self) -> Duration {
        match self {
            SipSide::Out(call) => call.ring_time(),
            SipSide::In { .. } => Duration::ZERO,
        }
    }

    /// INVITE to the first provisional response, if one came.
    fn setup_time(&self) -> Option<Duration> {
        match self {
            SipSide::Out(call) => call.setup_time(),
            SipSide::In { .. } => None,
        }
    }

    /// Sends REFER on a call we placed; false for an inbound call (the
    /// caller's trunk is not ours to ask).
    async fn refer(&self, target: &str) -> bool {
        match self {
            SipSide::Out(call) => {
                call.refer(target).await;
                true
            }
            SipSide::In { .. } => false,
        }
    }

    fn call_id(&self) -> String {
        match self {
            SipSide::Out(call) => call.call_id().to_string(),
            SipSide::In { call, .. } => call.call_id(),
        }
    }
}

fn local_failure(plan: &CallPlan, detail: String) -> AttemptOutcome {
    tracing::warn!(record = %plan.claim.record_id, "{detail}");
    AttemptOutcome {
        status: "failed".to_string(),
        ended_at: Utc::now().timestamp_millis(),
        ..AttemptOutcome::default()
    }
}

/// The live call: its SIP side, its media side and its script.
struct Leg {
    call: SipSide,
    session: MediaSession,
    run: Run,
    clips: Arc<ClipLibrary>,
    /// Clips queued by the last `Play` that have not finished yet.
    pending_clips: usize,
    /// A stop was asked and not yet confirmed by `PlaybackStopped`.
    stopping: bool,
    timer: Option<(u32, TokioInstant)>,
    success: bool,
    /// The point of success being stored: the script goes on while the
    /// store writes it (a busy store must not stretch the call); the
    /// outcome waits for it.
    success_write: Option<tokio::task::JoinHandle<bool>>,
    outputs: Vec<(String, String)>,
    dtmf_info: String,
    hung_up: bool,
    /// The answering-machine verdict, once known.
    amd: Option<AmdVerdict>,
    /// While waiting for the verdict: when to stop waiting.
    amd_deadline: Option<TokioInstant>,
    /// The script has a voicemail block to speak to machines.
    has_voicemail: bool,
    /// A beep has ended since detection started.
    beep_heard: bool,
    /// After a machine verdict: when to speak the voicemail block if no
    /// beep has ended by then.
    voicemail_deadline: Option<TokioInstant>,
    /// The voicemail block is being spoken.
    voicemail_started: bool,
    /// ... and was spoken to its end.
    voicemail_left: bool,
    /// In-band DTMF detection is on (while the script waits for keys).
    inband: bool,
    /// The call centre's leg, while a forward rings or is bridged.
    forward: Option<ForwardLeg>,
    /// What the bridge carried, once it has ended.
    forward_stats: Option<ForwardStats>,
    /// A REFER to the call centre in progress.
    referral: Option<Referral>,
    /// The call's voicelog (set when the leg starts driving).
    voicelog: Option<CallRecorder>,
}

impl Leg {
    fn new(
        call: SipSide,
        session: MediaSession,
        run: Run,
        clips: &Arc<ClipLibrary>,
        has_voicemail: bool,
    ) -> Leg {
        Leg {
            call,
            session,
            run,
            clips: Arc::clone(clips),
            pending_clips: 0,
            stopping: false,
            timer: None,
            success: false,
            success_write: None,
            outputs: Vec::new(),
            dtmf_info: String::new(),
            hung_up: false,
            amd: None,
            amd_deadline: None,
            has_voicemail,
            beep_heard: false,
            voicemail_deadline: None,
            voicemail_started: false,
            voicemail_left: false,
            inband: false,
            forward: None,
            forward_stats: None,
            referral: None,
            voicelog: None,
        }
    }

    async fn drive<S: Store>(mut self, ctx: &CallContext<S>, plan: LegPlan<'_>) -> AttemptOutcome {
        let mut answered_wall: Option<i64> = None;
        let mut answered_at: Option<Instant> = None;
        let mut max_call_at: Option<TokioInstant> = None;
        self.voicelog = Some(CallRecorder::new(&ctx.voicelogs, plan.script, plan.claim));
        let end = loop {
            tokio::select! {
                event = self.call.next_event() => match event {
                    Some(CallEvent::Progress { .. }) => {}
                    Some(CallEvent::EarlyMedia(m)) => self.apply(&m),
                    Some(CallEvent::Answered(m)) => {
                        let answer = Instant::now();
                        answered_at = Some(answer);
                        answered_wall = Some(Utc::now().timestamp_millis());
                        max_call_at = Some(TokioInstant::now()
                            + Duration::from_millis(plan.settings.max_call_ms.max(1) as u64));
                        match m {
                            Some(m) => {
                                self.apply(&m);
                                self.session.start_sending();
                                self.voicelog_moment(ctx, Moment::Answered, answer).await;
                                if plan.settings.amd {
                                    // Listen first: the script starts for a person.
                                    let config = plan.amd;
                                    self.amd_deadline = Some(TokioInstant::now()
                                        + Duration::from_millis(u64::from(config.max_window_ms))
                                        + AMD_GRACE);
                                    self.session.detect(config);
                                } else {
                                    self.start_script(ctx, plan).await;
                                }
                            }
                            None => {
                                tracing::warn!(record = %plan.claim.record_id,
                                    "answered without usable SDP: hanging up");
                                self.hangup().await;
                            }
                        }
                    }
                    Some(CallEvent::MediaUpdated(m)) => self.apply(&m),
                    Some(CallEvent::Refer { code, notify }) => {
                        self.on_refer_event(ctx, plan, code, notify).await;
                    }
                    Some(CallEvent::InfoDtmf(digit)) => {
                        self.dtmf_info.push(digit);
                        self.feed(ctx, plan, Event::Dtmf(digit)).await;
                    }
                    Some(CallEvent::Ended(end)) => break end,
                    None => break dialcast_sip::CallEnd {
                        status: dialcast_sip::CallStatus::Failed,
                        sip_code: 500,
                        cause: dialcast_sip::EndCause::Error,
                        retry_after: None,
                        from_network: false,
                        detail: Some("call ended without an outcome".into()),
                    },
                },
                event = self.session.next_event() => match event {
                    Some(MediaEvent::PlaybackStopped) => self.stopping = false,
                    Some(MediaEvent::PlaybackFinished) if self.pending_clips > 0 && !self.stopping => {
                        self.pending_clips -= 1;
                        if self.pending_clips == 0 {
                            self.feed(ctx, plan, Event::PlaybackFinished).await;
                        }
                    }
                    Some(MediaEvent::Dtmf { digit, .. }) => {
                        self.feed(ctx, plan, Event::Dtmf(digit)).await;
                    }
                    Some(MediaEvent::Amd(decision)) if self.amd_deadline.is_some() => {
                        self.amd_deadline = None;
                        self.amd = Some(decision.verdict);
                        dialcast_media::metrics::observe_amd_decision(
                            decision.verdict.as_str(), decision.at_ms);
                        tracing::debug!(record = %plan.claim.record_id,
                            verdict = decision.verdict.as_str(), at_ms = decision.at_ms,
                            reason = decision.reason, measures = ?decision.measures,
                            "answering-machine detection");
                        match decision.verdict {
                            AmdVerdict::Machine if self.has_voicemail => {
                                if self.beep_heard {
                                    self.leave_voicemail(ctx, plan).await;
                                } else {
                                    self.voicemail_deadline = Some(TokioInstant::now()
                                        + Duration::from_millis(u64::from(
                                            plan.voice.settings.voicemail_wait_ms)));
                                }
                            }
                            // No message for machines without a voicemail
                            // block; none for dead air or a fax line.
                            AmdVerdict::Machine | AmdVerdict::Fax | AmdVerdict::Silence => {
                                self.session.stop_detect();
                                self.hangup().await;
                            }
                            AmdVerdict::Human | AmdVerdict::Unknown => {
                                self.start_script(ctx, plan).await
                            }
                        }
                    }
                    Some(MediaEvent::Beep { start_ms, end_ms }) => {
                        self.beep_heard = true;
                        tracing::debug!(record = %plan.claim.record_id, start_ms, end_ms, "voicemail beep");
                        if self.voicemail_deadline.take().is_some() {
                            self.leave_voicemail(ctx, plan).await;
                        }
                    }
                    Some(MediaEvent::InactivityTimeout) => {
                        tracing::info!(record = %plan.claim.record_id, "no RTP from the callee: hanging up");
                        self.hangup().await;
                    }
                    Some(_) => {}
                    None => {}
                },
                _ = sleep_until_opt(self.timer.map(|(_, at)| at)) => {
                    if let Some((id, _)) = self.timer.take() {
                        self.feed(ctx, plan, Event::TimerFired { id }).await;
                    }
                }
                event = forward_event(&mut self.forward) => {
                    self.on_forward_event(ctx, plan, event).await;
                }
                _ = sleep_until_opt(self.referral.as_ref().map(Referral::deadline)) => {
                    self.refer_timed_out(ctx, plan).await;
                }
                _ = sleep_until_opt(self.voicemail_deadline) => {
                    // No beep came: the machine is recording after silence.
                    self.voicemail_deadline = None;
                    self.leave_voicemail(ctx, plan).await;
                }
                _ = sleep_until_opt(self.amd_deadline) => {
                    self.amd_deadline = None;
                    self.amd = Some(AmdVerdict::Unknown);
                    self.start_script(ctx, plan).await;
                }
                _ = sleep_until_opt(max_call_at) => {
                    max_call_at = None;
                    tracing::info!(record = %plan.claim.record_id, "maximum call length reached");
                    self.hangup().await;
                }
            }
        };
        let ended = Instant::now();
        // Read before anything else can take time: for a call that got only
        // a final response, the ring time now is the time to that response.
        let ring_time = self.call.ring_time();
        let setup_time = self
            .call
            .setup_time()
            .or(end.from_network.then_some(ring_time));
        let voicelog = self.voicelog.take();
        if let Some(v) = &voicelog {
            v.call_ended(&self.session, ended);
        }
        if answered_at.is_some() && !self.run.is_finished() {
            self.run.handle(Event::RemoteHangup);
            // Drain what the script still says; nothing more can be played.
            while self.run.poll_action().is_some() {}
        }
        self.end_forward().await;
        let ended_at = Utc::now().timestamp_millis();
        let talk_ms = answered_at.map_or(0, |t| ended.duration_since(t).as_millis() as i64);
        let ring_ms = ring_time.as_millis() as i64;
        let call_id = self.call.call_id();
        let outputs = std::mem::take(&mut self.outputs);
        let stats = self.session.close().await;
        let forwarded = self.forward_stats.map(|f| ForwardStats {
            to_callee_frames: stats.bridged_frames,
            ..f
        });
        if let Some(v) = voicelog {
            v.settle(&*ctx.store, &stats, ended_at).await;
        }
        let mut dtmf = stats.dtmf;
        dtmf.push_str(&self.dtmf_info);
        if let Some(write) = self.success_write.take() {
            // Stored, or the outcome says the callee did not get that far
            // (as before a crash: recovered attempts count only what was
            // stored).
            self.success = write.await.unwrap_or(false);
        }
        let status = match answered_at {
            None => end.status.as_str().to_string(),
            Some(_) if forwarded.is_some() => "forwarded".to_string(),
            Some(_) if self.amd == Some(AmdVerdict::Machine) => "voicemail".to_string(),
            Some(_) if self.success => "success".to_string(),
            Some(_) => "answered_no_success".to_string(),
        };
        if let Some(trunk) = plan.trunk {
            let answered = answered_at.is_some();
            crate::metrics::call_summary(&crate::metrics::CallSummary {
                script: plan.script,
                trunk,
                sip_code: end.sip_code,
                from_network: end.from_network,
                retry_after: end.retry_after,
                setup: setup_time,
                ring: answered.then_some(ring_time),
                talk: answered_at.map(|t| ended.duration_since(t)),
                amd: answered.then(|| match (plan.settings.amd, self.amd) {
                    (false, _) => "off",
                    (true, Some(v)) => v.as_str(),
                    (true, None) => "unknown",
                }),
                success: self.success,
                voicemail_left: self.voicemail_left,
            });
        }
        AttemptOutcome {
            status,
            sip_code: Some(end.sip_code),
            answered_at: answered_wall,
            ended_at,
            ring_ms,
            talk_ms,
            amd: self.amd.map(|v| v.as_str().to_string()),
            dtmf,
            outputs,
            call_id: Some(call_id),
            voicemail_left: self.voicemail_left,
            forwarded,
        }
    }

    /// A machine's greeting is over (its beep ended, or no beep came in
    /// time): the script's voicemail block is spoken.
    async fn leave_voicemail<S: Store>(&mut self, ctx: &CallContext<S>, plan: LegPlan<'_>) {
        self.session.stop_detect();
        self.voicemail_started = true;
        self.feed(ctx, plan, Event::MachineAnswered).await;
    }

    /// Tells the voicelog that the call reached `moment` at `at`; it starts
    /// recording when the script's policy says so.
    async fn voicelog_moment<S: Store>(
        &mut self,
        ctx: &CallContext<S>,
        moment: Moment,
        at: Instant,
    ) {
        if let Some(v) = self.voicelog.as_mut() {
            v.at_moment(&*ctx.store, &self.session, moment, at).await;
        }
    }

    /// The hook for the forward step: a forward to the call centre starts
    /// now (a `forwarded` policy records from here to the end of the call).
    async fn forward_started<S: Store>(&mut self, ctx: &CallContext<S>) {
        self.voicelog_moment(ctx, Moment::ForwardStarted, Instant::now())
            .await;
    }

    /// The callee is a person (or we could not tell): the script begins.
    async fn start_script<S: Store>(&mut self, ctx: &CallContext<S>, plan: LegPlan<'_>) {
        self.feed(ctx, plan, Event::Answered).await;
    }

    fn apply(&mut self, media: &NegotiatedMedia) {
        self.session.set_remote(remote_media(media));
        self.session.set_hold(media.on_hold);
    }

    async fn hangup(&mut self) {
        if !self.hung_up {
            self.hung_up = true;
            self.call.hangup().await;
        }
    }

    /// Gives the script an event and carries out what it asks.
    async fn feed<S: Store>(&mut self, ctx: &CallContext<S>, plan: LegPlan<'_>, event: Event) {
        self.run.handle(event);
        self.perform(ctx, plan).await;
    }

    /// Carries out the script's actions until it waits for an event.
    async fn perform<S: Store>(&mut self, ctx: &CallContext<S>, plan: LegPlan<'_>) {
        while let Some(action) = self.run.poll_action() {
            match action {
                Action::Play(list) => {
                    let mut queued = 0;
                    for clip in &list {
                        match self.clips.get(clip) {
                            Some(prompt) => {
                                self.session.play(prompt);
                                queued += 1;
                            }
                            None => tracing::warn!(
                                record = %plan.claim.record_id,
                                "clip {}/{} is not loaded", clip.language, clip.name
                            ),
                        }
                    }
                    self.pending_clips = queued;
                    if queued == 0 {
                        self.run.handle(Event::PlaybackFinished);
                    }
                }
                Action::StopPlayback => {
                    self.session.stop_playback();
                    self.pending_clips = 0;
                    // Until the media thread confirms, a PlaybackFinished
                    // may still be from the stopped prompts.
                    self.stopping = true;
                }
                Action::StartTimer { id, ms } => {
                    self.timer = Some((
                        id,
                        TokioInstant::now() + Duration::from_millis(u64::from(ms)),
                    ));
                }
                Action::SuccessPoint => {
                    let reached = Instant::now();
                    let now = Utc::now().timestamp_millis();
                    let store = Arc::clone(&ctx.store);
                    let attempt = plan.claim.attempt_id;
                    let record = plan.claim.record_id.clone();
                    // A script that marks a second point of success writes
                    // it after the first, so the stored time is the last.
                    let earlier = self.success_write.take();
                    self.success_write = Some(tokio::spawn(async move {
                        let earlier_stored = match earlier {
                            Some(write) => write.await.unwrap_or(false),
                            None => false,
                        };
                        match crate::metrics::timed(
                            "success_point",
                            store.mark_success_point(attempt, now),
                        )
                        .await
                        {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::error!(
                                    record = %record,
                                    "cannot store the point of success: {e}"
                                );
                                earlier_stored
                            }
                        }
                    }));
                    self.voicelog_moment(ctx, Moment::SuccessPoint, reached)
                        .await;
                }
                Action::Output { key, value } => self.outputs.push((key, value)),
                Action::Warning(text) => {
                    tracing::warn!(record = %plan.claim.record_id, "script: {text}")
                }
                Action::Hangup => {
                    // The voicemail block ran to its end: the message is left.
                    self.voicemail_left |= self.voicemail_started;
                    self.hangup().await
                }
                Action::Finished => self.hangup().await,
                Action::Forward => self.start_forward(ctx, plan).await,
                Action::QueueSms { template, message } => {
                    let sms = SmsRequest {
                        attempt: plan.claim.attempt_id,
                        number: plan.claim.number.clone(),
                        template,
                        language: self.run.language().to_string(),
                        body: message.map(|m| m.text).map_err(|e| e.to_string()),
                    };
                    let now = Utc::now().timestamp_millis();
                    if let Err(e) = ctx.store.queue_sms(&sms, now).await {
                        tracing::error!(record = %plan.claim.record_id, "cannot queue the SMS: {e}");
                    }
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        // Listen for keys in the audio only while the script waits for them.
        let wants_keys = self.run.wants_keys();
        if wants_keys != self.inband {
            self.inband = wants_keys;
            self.session.detect_inband_dtmf(wants_keys);
        }
    }
}

async fn sleep_until_opt(at: Option<TokioInstant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
