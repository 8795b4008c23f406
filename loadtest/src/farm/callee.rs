//! One callee: a tokio task that carries out the [`Plan`] of one inbound call
//! on its `sip` call and, once answered, its `media` session, then counts how
//! it ended. Nothing here logs per packet; a call logs at debug level only.
//!
//! ```text
//!  start ─► Refuse:   [180 ─ ring] ─► 486/404/480 (Retry-After)/603 ────────► done
//!        ─► RingOnly: 180 ─► CANCEL (487 by the SIP core) | cap ─► 408 ────► done
//!        ─► Announce: 183 + SDP ─► announcement as early media ─► 404 ────► done
//!        ─► Answer:   180 ─ ring ─► 200 + greeting ─► after-answer rule ─► BYE ─► done
//!  CANCEL while ringing ends any of them (the caller hung up); shutdown sends
//!  BYE (answered) or 480 (not yet answered).
//! ```
//!
//! presses_keys presses its keys as RFC 4733 events when the caller's offer
//! had telephone-event, else as the in-band tones of [`Clips::keys`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dialcast_media::{MediaEngine, MediaEvent, MediaSession, RemoteMedia};
use dialcast_sip::sdp::{self, LocalMedia, NegotiatedMedia};
use dialcast_sip::{EndCause, InboundCall, InboundEvent};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::audio::Clips;
use super::behaviour::Behaviour;
use super::plan::{AfterAnswer, Greeting, Plan, Timings};
use super::stats::{ActiveCall, Counter, Counters};
use super::tones::DTMF_TONE_MS;

/// How long presses_keys holds each key when it sends RFC 4733 events: as
/// long as its in-band tones last.
const KEY_PRESS: Duration = Duration::from_millis(DTMF_TONE_MS as u64);

/// What every call task shares.
pub(crate) struct Context {
    pub(crate) media: MediaEngine,
    pub(crate) clips: Clips,
    pub(crate) timings: Timings,
    pub(crate) counters: Counters,
    /// The address RTP sockets bind to (what goes into our SDP, unless it is
    /// the wildcard).
    pub(crate) rtp_ip: IpAddr,
    /// Where voicemail callees write what they "record"; `None`: nowhere.
    pub(crate) record_dir: Option<PathBuf>,
    pub(crate) recordings: AtomicU64,
}

/// How a call ended, for the counters (answers and key presses are counted
/// as they happen).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    failed: bool,
    by_us: bool,
    by_caller: bool,
}

impl Outcome {
    fn done() -> Outcome {
        Outcome::default()
    }

    fn failed() -> Outcome {
        Outcome {
            failed: true,
            ..Outcome::default()
        }
    }

    fn caller_gone() -> Outcome {
        Outcome {
            by_caller: true,
            ..Outcome::default()
        }
    }
}

/// Plays callee `behaviour` on `call` until the call is over.
pub(crate) async fn run(
    mut call: InboundCall,
    behaviour: Behaviour,
    roll: u64,
    ctx: Arc<Context>,
    cancel: CancellationToken,
) {
    let counters = &ctx.counters;
    let _active = ActiveCall::new(counters);
    counters.add(behaviour, Counter::Calls, 1);
    let plan = Plan::new(behaviour, &ctx.timings, roll);
    let outcome = match plan {
        Plan::Refuse {
            ring,
            code,
            retry_after,
        } => refuse(&mut call, ring, code, retry_after, &cancel).await,
        Plan::RingOnly { cap, code } => refuse(&mut call, Some(cap), code, None, &cancel).await,
        Plan::Announce { code } => announce(&mut call, code, &ctx, &cancel).await,
        Plan::Answer {
            ring,
            greeting,
            after,
        } => {
            let answer_plan = AnswerPlan {
                behaviour,
                ring,
                greeting,
                after,
            };
            answer(&mut call, answer_plan, &ctx, &cancel).await
        }
    };
    debug!(%behaviour, ?outcome, "callee done");
    let count = |counter, yes: bool| {
        if yes {
            counters.add(behaviour, counter, 1);
        }
    };
    count(Counter::Completed, !outcome.failed);
    count(Counter::Failed, outcome.failed);
    count(Counter::HangupByUs, outcome.by_us);
    count(Counter::HangupByCaller, outcome.by_caller);
}

/// How a ringing phase ended.
enum Rang {
    /// The ring time is over.
    Elapsed,
    /// The caller cancelled.
    CallerGone,
    /// The farm is shutting down.
    Shutdown,
    /// The SIP layer ended the call (an error).
    Lost,
}

/// Sends 180 and waits `ring`, watching for the caller's CANCEL.
async fn ring(call: &mut InboundCall, ring: Duration, cancel: &CancellationToken) -> Rang {
    if let Err(e) = call.ringing() {
        // Only a full command queue: the final answer matters more.
        debug!(error = %e, "180 not sent");
    }
    let until = Instant::now() + ring;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return Rang::Elapsed,
            _ = cancel.cancelled() => return Rang::Shutdown,
            event = call.next_event() => match event {
                Some(InboundEvent::Ended(EndCause::RemoteHangup)) => return Rang::CallerGone,
                Some(InboundEvent::Ended(_)) | None => return Rang::Lost,
                Some(_) => {}
            },
        }
    }
}

/// Rings for `ring` (if set), then answers `code` (with `retry_after`).
async fn refuse(
    call: &mut InboundCall,
    ring_for: Option<Duration>,
    code: u16,
    retry_after: Option<Duration>,
    cancel: &CancellationToken,
) -> Outcome {
    if let Some(d) = ring_for {
        match ring(call, d, cancel).await {
            Rang::Elapsed => {}
            Rang::CallerGone => return Outcome::caller_gone(),
            Rang::Shutdown => {
                call.hangup().await;
                return Outcome::failed();
            }
            Rang::Lost => return Outcome::failed(),
        }
    }
    match call.reject_with(code, retry_after) {
        Ok(()) => Outcome::done(),
        Err(e) => {
            debug!(error = %e, code, "final response not sent");
            Outcome::failed()
        }
    }
}

/// Sends 183 with our SDP, plays the intercept announcement as early media,
/// then answers `code`. Without an RTP port it rings for as long instead.
async fn announce(
    call: &mut InboundCall,
    code: u16,
    ctx: &Context,
    cancel: &CancellationToken,
) -> Outcome {
    let announcement = Arc::clone(&ctx.clips.announcement);
    let length = announcement.duration();
    let mut session = match ctx.media.open_session() {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "no RTP port: ringing instead of early media");
            return refuse(call, Some(length), code, None, cancel).await;
        }
    };
    let negotiated = match call.session_progress(local_media(ctx, call, &session)) {
        Ok(m) => m,
        Err(e) => {
            // The SIP crate has already answered 488 (or its queue is full).
            debug!(error = %e, "cannot send early media");
            ctx.counters.add_rtp(&session.close().await);
            return Outcome::failed();
        }
    };
    apply(&session, &negotiated);
    session.start_sending();
    session.play(announcement);
    // PlaybackFinished ends it; the ceiling is in case that never comes.
    let until = Instant::now() + length + Duration::from_secs(1);
    let mut media_open = true;
    let rang = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break Rang::Elapsed,
            _ = cancel.cancelled() => break Rang::Shutdown,
            event = call.next_event() => match event {
                Some(InboundEvent::Ended(EndCause::RemoteHangup)) => break Rang::CallerGone,
                Some(InboundEvent::Ended(_)) | None => break Rang::Lost,
                Some(_) => {}
            },
            event = session.next_event(), if media_open => match event {
                Some(MediaEvent::PlaybackFinished) => break Rang::Elapsed,
                Some(_) => {}
                None => media_open = false,
            },
        }
    };
    let outcome = match rang {
        Rang::Elapsed => match call.reject(code) {
            Ok(()) => Outcome::done(),
            Err(e) => {
                debug!(error = %e, code, "final response not sent");
                Outcome::failed()
            }
        },
        Rang::CallerGone => Outcome::caller_gone(),
        Rang::Shutdown => {
            call.hangup().await;
            Outcome::failed()
        }
        Rang::Lost => Outcome::failed(),
    };
    ctx.counters.add_rtp(&session.close().await);
    outcome
}

/// Where our RTP is received, as our SDP is to say it.
fn local_media(ctx: &Context, call: &InboundCall, session: &MediaSession) -> LocalMedia {
    let ip = match sdp::parse_answer(call.offer()) {
        Ok(offer) => advertised_ip(ctx.rtp_ip, offer.remote),
        Err(_) => ctx.rtp_ip,
    };
    LocalMedia {
        ip,
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    }
}

/// The answering part of a [`Plan`].
struct AnswerPlan {
    behaviour: Behaviour,
    ring: Duration,
    greeting: Greeting,
    after: AfterAnswer,
}

/// Rings, answers with media, greets, then follows `after` until a BYE.
async fn answer(
    call: &mut InboundCall,
    plan: AnswerPlan,
    ctx: &Context,
    cancel: &CancellationToken,
) -> Outcome {
    let AnswerPlan {
        behaviour,
        ring: ring_for,
        greeting,
        after,
    } = plan;
    match ring(call, ring_for, cancel).await {
        Rang::Elapsed => {}
        Rang::CallerGone => return Outcome::caller_gone(),
        Rang::Shutdown => {
            call.hangup().await;
            return Outcome::failed();
        }
        Rang::Lost => return Outcome::failed(),
    }
    let mut session = match ctx.media.open_session() {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "no RTP port: 503");
            call.reject(503).ok();
            return Outcome::failed();
        }
    };
    let local = local_media(ctx, call, &session);
    let mut negotiated = match call.answer(local) {
        Ok(m) => m,
        Err(e) => {
            // The SIP crate has already answered 488 (or its queue is full).
            debug!(error = %e, "cannot answer");
            session.close().await;
            return Outcome::failed();
        }
    };
    apply(&session, &negotiated);
    session.start_sending();
    let greeting = ctx.clips.greeting(greeting);
    let greeting_length = greeting.duration();
    session.play(greeting);
    ctx.counters.add(behaviour, Counter::Answered, 1);
    let mut outcome = Outcome::default();
    let answered_at = Instant::now();
    let (mut hangup_at, mut keys_at, mut record_cap) = match &after {
        AfterAnswer::Wait { cap } => (Some(answered_at + *cap), None, None),
        AfterAnswer::HangUp { after } => (Some(answered_at + *after), None, None),
        // The cap runs from the beep (PlaybackFinished); until then, a
        // ceiling in case that event never comes.
        AfterAnswer::Record { cap } => (
            Some(answered_at + greeting_length + *cap + Duration::from_secs(1)),
            None,
            Some(*cap),
        ),
        AfterAnswer::PressKeys { after, cap, .. } => {
            (Some(answered_at + *cap), Some(answered_at + *after), None)
        }
    };
    let mut hung_up = false;
    let mut shutting_down = false;
    let mut media_open = true;
    let cause = loop {
        tokio::select! {
            event = call.next_event() => match event {
                Some(InboundEvent::Ended(cause)) => break cause,
                None => break EndCause::Error,
                Some(InboundEvent::MediaUpdated(m)) => {
                    apply(&session, &m);
                    negotiated = m;
                }
                Some(InboundEvent::Confirmed | InboundEvent::InfoDtmf(_)) => {}
            },
            event = session.next_event(), if media_open => match event {
                Some(MediaEvent::PlaybackFinished) => {
                    if let Some(cap) = record_cap.take() {
                        if !hung_up {
                            hangup_at = Some(Instant::now() + cap);
                            start_recording(&session, ctx);
                        }
                    }
                }
                Some(_) => {}
                None => media_open = false,
            },
            _ = sleep_until_opt(keys_at) => {
                keys_at = None;
                if let AfterAnswer::PressKeys { keys, .. } = &after {
                    if negotiated.dtmf_payload_type.is_some() {
                        session.send_dtmf(keys, KEY_PRESS);
                    } else {
                        session.play(Arc::clone(&ctx.clips.keys));
                    }
                    let presses = keys.chars().count() as u64;
                    ctx.counters.add(behaviour, Counter::DtmfSent, presses);
                }
            }
            _ = sleep_until_opt(hangup_at), if !hung_up => {
                hung_up = true;
                hangup_at = None;
                call.hangup().await;
            }
            _ = cancel.cancelled(), if !hung_up => {
                hung_up = true;
                shutting_down = true;
                call.hangup().await;
            }
        }
    };
    ctx.counters.add_rtp(&session.close().await);
    match cause {
        EndCause::LocalHangup => outcome.by_us = true,
        EndCause::RemoteHangup => outcome.by_caller = true,
        _ => outcome.failed = true,
    }
    outcome.failed |= shutting_down;
    outcome
}

/// Starts the voicemail "recording" when the farm was asked to keep one.
fn start_recording(session: &MediaSession, ctx: &Context) {
    let Some(dir) = &ctx.record_dir else {
        return;
    };
    let n = ctx.recordings.fetch_add(1, Ordering::Relaxed) + 1;
    let path = dir.join(format!("voicemail-{n:06}.wav"));
    if let Err(e) = session.record_to(&path) {
        debug!(error = %e, path = %path.display(), "cannot record");
    }
}

fn apply(session: &MediaSession, media: &NegotiatedMedia) {
    session.set_remote(RemoteMedia {
        addr: media.remote,
        codec: match media.codec {
            sdp::Codec::Pcmu => dialcast_media::Codec::Pcmu,
            sdp::Codec::Pcma => dialcast_media::Codec::Pcma,
        },
        payload_type: media.payload_type,
        dtmf_payload_type: media.dtmf_payload_type,
        ssrc: media.ssrc,
    });
    session.set_hold(media.on_hold);
}

/// The address to put into SDP: the RTP bind address, or when that is the
/// wildcard, the local address the system would use to reach `toward`.
fn advertised_ip(bind: IpAddr, toward: SocketAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    std::net::UdpSocket::bind(SocketAddr::new(bind, 0))
        .and_then(|s| s.connect(toward).map(|_| s))
        .and_then(|s| s.local_addr())
        .map_or(bind, |a| a.ip())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
