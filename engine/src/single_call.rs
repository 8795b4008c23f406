//! One call, driven end to end without a campaign: the controller behind
//! `dialcast dial` (outbound) and `dialcast listen` (inbound). It wires a `sip`
//! call to a `media` session: early media, answer, the prompt, DTMF, hold, the
//! hang-up, and the outcome with its counters.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dialcast_media::{MediaEngine, MediaEvent, MediaSession, MediaStats, Prompt, RemoteMedia};
use dialcast_sip::sdp::{self, LocalMedia, NegotiatedMedia};
use dialcast_sip::{
    CallEvent, CallRequest, EndCause, InboundCall, InboundEvent, SipEndpoint, Transport,
};
use serde::Serialize;

/// What `dialcast dial` does.
#[derive(Clone, Debug)]
pub struct DialOptions {
    pub target: String,
    pub transport: Transport,
    pub username: Option<String>,
    pub password: Option<String>,
    pub caller_id: Option<String>,
    pub prompt: Option<Arc<Prompt>>,
    pub record: Option<PathBuf>,
    pub ring_timeout: Duration,
    /// How long to stay after the prompt finished (collecting DTMF and echo).
    pub linger: Duration,
    /// Hard cap on the talk time.
    pub max_talk: Duration,
}

/// The outcome of one call, as printed by `dialcast dial --json`.
#[derive(Clone, Debug, Serialize)]
pub struct CallOutcome {
    pub status: String,
    pub sip_code: u16,
    pub answered: bool,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_lost: u64,
    pub rtp_late: u64,
    pub rtp_malformed: u64,
    /// Packets our socket refused to send (counted in rtp_sent too).
    pub rtp_send_errors: u64,
    pub jitter_ms: f64,
    pub dtmf: String,
    pub ring_ms: u64,
    pub talk_ms: u64,
    /// "us", "them", or null when the call never connected.
    pub hangup_by: Option<&'static str>,
    pub early_media: bool,
    pub cause: EndCause,
    pub call_id: String,
    pub codec: Option<&'static str>,
}

/// What a finished call reports; `hangup_by` follows from `cause`.
struct Finished {
    status: String,
    sip_code: u16,
    answered: bool,
    cause: EndCause,
    call_id: String,
    ring_ms: u64,
    talk_ms: u64,
    early_media: bool,
}

impl Finished {
    fn with_media(self, media: (MediaStats, String, Option<&'static str>)) -> CallOutcome {
        let (stats, dtmf, codec) = media;
        let hangup_by = match self.cause {
            EndCause::LocalHangup => Some("us"),
            EndCause::RemoteHangup => Some("them"),
            _ => None,
        };
        CallOutcome {
            status: self.status,
            sip_code: self.sip_code,
            answered: self.answered,
            rtp_sent: stats.rtp_sent,
            rtp_received: stats.rtp_received,
            rtp_lost: stats.rtp_lost,
            rtp_late: stats.rtp_late,
            rtp_malformed: stats.rtp_malformed,
            rtp_send_errors: stats.rtp_send_errors,
            jitter_ms: stats.jitter_ms,
            dtmf,
            ring_ms: self.ring_ms,
            talk_ms: self.talk_ms,
            hangup_by,
            early_media: self.early_media,
            cause: self.cause,
            call_id: self.call_id,
            codec,
        }
    }
}

/// The address to write into SDP: the RTP bind address, or when that is the
/// wildcard, the local address the system would use to reach `toward`.
pub fn advertised_ip(bind: IpAddr, toward: SocketAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bind, 0))
        .and_then(|s| s.connect(toward).map(|_| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(addr) => addr.ip(),
        Err(_) => bind,
    }
}

pub(crate) fn remote_media(m: &NegotiatedMedia) -> RemoteMedia {
    RemoteMedia {
        addr: m.remote,
        codec: match m.codec {
            sdp::Codec::Pcmu => dialcast_media::Codec::Pcmu,
            sdp::Codec::Pcma => dialcast_media::Codec::Pcma,
        },
        payload_type: m.payload_type,
        dtmf_payload_type: m.dtmf_payload_type,
        ssrc: m.ssrc,
    }
}

fn codec_name(m: &NegotiatedMedia) -> &'static str {
    match m.codec {
        sdp::Codec::Pcmu => "PCMU",
        sdp::Codec::Pcma => "PCMA",
    }
}

/// Media-side bookkeeping shared by both directions.
struct MediaLeg {
    session: MediaSession,
    prompt: Option<Arc<Prompt>>,
    linger: Duration,
    hangup_at: Option<tokio::time::Instant>,
    dtmf_from_info: String,
    codec: Option<&'static str>,
}

impl MediaLeg {
    fn new(session: MediaSession, prompt: Option<Arc<Prompt>>, linger: Duration) -> Self {
        MediaLeg {
            session,
            prompt,
            linger,
            hangup_at: None,
            dtmf_from_info: String::new(),
            codec: None,
        }
    }

    fn apply(&mut self, media: &NegotiatedMedia) {
        self.session.set_remote(remote_media(media));
        self.session.set_hold(media.on_hold);
        self.codec = Some(codec_name(media));
    }

    /// The call is up: send, play the prompt, or start lingering if none.
    fn connected(&mut self) {
        self.session.start_sending();
        match &self.prompt {
            Some(prompt) => self.session.play(prompt.clone()),
            None => self.hangup_at = Some(tokio::time::Instant::now() + self.linger),
        }
    }

    async fn finish(self) -> (MediaStats, String, Option<&'static str>) {
        let mut stats = self.session.close().await;
        let mut dtmf = std::mem::take(&mut stats.dtmf);
        dtmf.push_str(&self.dtmf_from_info);
        (stats, dtmf, self.codec)
    }
}

/// Places one outbound call and reports how it went.
pub async fn dial(
    endpoint: &SipEndpoint,
    media: &MediaEngine,
    rtp_bind: IpAddr,
    options: DialOptions,
) -> anyhow::Result<CallOutcome> {
    let session = media.open_session().context("no RTP port available")?;
    if let Some(path) = &options.record {
        session
            .record_to(path)
            .with_context(|| format!("cannot record to {}", path.display()))?;
    }
    let target_addr = {
        let uri = options
            .target
            .as_str()
            .try_into()
            .map_err(|e| anyhow::anyhow!("bad target {:?}: {e}", options.target))?;
        dialcast_sip::resolve::destination(&uri, options.transport).await?
    };
    let local = LocalMedia {
        ip: advertised_ip(rtp_bind, target_addr),
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    };
    let mut leg = MediaLeg::new(session, options.prompt.clone(), options.linger);
    let mut call = endpoint
        .place_call(CallRequest {
            target: options.target.clone(),
            transport: options.transport,
            caller_id: options.caller_id.clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            local_media: local,
            ring_timeout: options.ring_timeout,
            extra_headers: Vec::new(),
        })
        .await?;
    let started = Instant::now();
    let mut answered_at: Option<Instant> = None;
    let mut early_media = false;
    let mut max_talk_at: Option<tokio::time::Instant> = None;

    let end = loop {
        tokio::select! {
            event = call.next_event() => match event {
                Some(CallEvent::Progress { .. }) => {}
                Some(CallEvent::EarlyMedia(m)) => leg.apply(&m),
                Some(CallEvent::Answered(m)) => {
                    answered_at = Some(Instant::now());
                    max_talk_at = Some(tokio::time::Instant::now() + options.max_talk);
                    if let Some(m) = m {
                        leg.apply(&m);
                    }
                    leg.connected();
                }
                Some(CallEvent::MediaUpdated(m)) => leg.apply(&m),
                Some(CallEvent::InfoDtmf(d)) => leg.dtmf_from_info.push(d),
                // `dial` never sends REFER.
                Some(CallEvent::Refer { .. }) => {}
                Some(CallEvent::Ended(end)) => break end,
                None => anyhow::bail!("call ended without an outcome"),
            },
            event = leg.session.next_event() => match event {
                Some(MediaEvent::FirstPacket) if answered_at.is_none() => early_media = true,
                Some(MediaEvent::PlaybackFinished) => {
                    leg.hangup_at = Some(tokio::time::Instant::now() + options.linger);
                }
                Some(MediaEvent::InactivityTimeout) => {
                    tracing::info!("no RTP from the callee: hanging up");
                    call.hangup().await;
                }
                _ => {}
            },
            _ = sleep_until_opt(leg.hangup_at), if answered_at.is_some() => {
                leg.hangup_at = None;
                call.hangup().await;
            }
            _ = sleep_until_opt(max_talk_at) => {
                max_talk_at = None;
                call.hangup().await;
            }
        }
    };
    let ended = Instant::now();
    Ok(Finished {
        status: end.status.as_str().to_string(),
        sip_code: end.sip_code,
        answered: answered_at.is_some(),
        cause: end.cause,
        call_id: call.call_id().to_string(),
        ring_ms: millis(answered_at.unwrap_or(ended) - started),
        talk_ms: answered_at.map_or(0, |at| millis(ended - at)),
        early_media,
    }
    .with_media(leg.finish().await))
}

/// Answers one inbound call, plays the prompt, hangs up after it (or when the
/// caller does), and reports how it went.
pub async fn answer(
    mut call: InboundCall,
    media: &MediaEngine,
    rtp_bind: IpAddr,
    prompt: Option<Arc<Prompt>>,
    linger: Duration,
    max_talk: Duration,
) -> anyhow::Result<CallOutcome> {
    let session = media.open_session().context("no RTP port available")?;
    let started = Instant::now();
    let offer_addr = sdp::parse_answer(call.offer()).ok().map(|m| m.remote);
    let ip = match offer_addr {
        Some(addr) => advertised_ip(rtp_bind, addr),
        None => rtp_bind,
    };
    let local = LocalMedia {
        ip,
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    };
    let mut leg = MediaLeg::new(session, prompt, linger);
    let call_id = call.call_id();
    let negotiated = match call.answer(local) {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(error = %e, "inbound call refused");
            return Ok(Finished {
                status: "failed".into(),
                sip_code: 488,
                answered: false,
                cause: EndCause::Error,
                call_id,
                ring_ms: millis(started.elapsed()),
                talk_ms: 0,
                early_media: false,
            }
            .with_media(leg.finish().await));
        }
    };
    let answered_at = Instant::now();
    leg.apply(&negotiated);
    leg.connected();
    let max_talk_at = tokio::time::Instant::now() + max_talk;
    let cause = loop {
        tokio::select! {
            event = call.next_event() => match event {
                Some(InboundEvent::Confirmed) => {}
                Some(InboundEvent::MediaUpdated(m)) => leg.apply(&m),
                Some(InboundEvent::InfoDtmf(d)) => leg.dtmf_from_info.push(d),
                Some(InboundEvent::Ended(cause)) => break cause,
                None => break EndCause::Error,
            },
            event = leg.session.next_event() => match event {
                Some(MediaEvent::PlaybackFinished) => {
                    leg.hangup_at = Some(tokio::time::Instant::now() + linger);
                }
                Some(MediaEvent::InactivityTimeout) => call.hangup().await,
                _ => {}
            },
            _ = sleep_until_opt(leg.hangup_at) => {
                leg.hangup_at = None;
                call.hangup().await;
            }
            _ = tokio::time::sleep_until(max_talk_at) => call.hangup().await,
        }
    };
    let ended = Instant::now();
    Ok(Finished {
        status: "answered".into(),
        sip_code: 200,
        answered: true,
        cause,
        call_id,
        ring_ms: millis(answered_at - started),
        talk_ms: millis(ended - answered_at),
        early_media: false,
    }
    .with_media(leg.finish().await))
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
