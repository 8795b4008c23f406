//! The callee farm: a SIP UAS on loopback (or any address) that plays
//! realistic callees, chosen by the dialled number, so the dialler can be
//! load-tested and demonstrated end to end without a carrier.
//!
//! * [`behaviour`] — the behaviours, their number prefixes and the call
//!   status each implies for the caller (pure).
//! * [`mix`] — weighted mixes and the deterministic number generator (pure).
//! * [`plan`] — what one callee does, from its behaviour and [`Timings`] (pure).
//! * [`tones`] — generated DTMF and intercept tones (pure).
//! * [`audio`] — the clips, loaded once and shared as `Arc<Prompt>`.
//! * `callee` — the task that carries out one call's plan.
//! * [`stats`] — counters and the [`FarmStats`] snapshot.
//!
//! One tokio task per call; prompts are decoded once at start; RTP is paced by
//! the media crate's shared scheduler thread. Nothing logs per packet.
//!
//! What the far end sees of the behaviours that need more than a status code:
//!
//! * **early_media_404** sends 183 Session Progress with its SDP answer
//!   (`InboundCall::session_progress`), plays the intercept announcement as
//!   early media, then answers 404 (no 200 ever).
//! * **unavailable** answers 480 with `Retry-After` ([`Timings`]'s
//!   `unavailable_retry_after`, 60 s by default).
//! * **presses_keys** presses its keys as RFC 4733 events
//!   (`MediaSession::send_dtmf`) when the caller offered telephone-event, and
//!   as in-band DTMF tones (ITU-T Q.23) otherwise. It sends no SIP INFO (the
//!   SIP crate has no in-dialog request for a call's owner).

pub mod audio;
pub mod behaviour;
mod callee;
pub mod mix;
pub mod plan;
pub mod stats;
pub mod tones;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dialcast_media::{MediaConfig, MediaEngine};
use dialcast_sip::{InboundCalls, SipConfig, SipEndpoint};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug_span, info, warn, Instrument as _};

pub use behaviour::{behaviour_for, Behaviour, UnknownBehaviour, PREFIXES};
pub use mix::{numbers, Mix, MixError, DEFAULT_MIX};
pub use plan::{Span, Timings, TimingsError};
pub use stats::{BehaviourStats, FarmStats, RtpTotals};

use callee::Context;
use mix::SplitMix64;
use stats::Counters;

/// How long [`Farm::shutdown`] waits for calls to end after sending their BYEs.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of a farm.
#[derive(Clone, Debug)]
pub struct FarmConfig {
    /// Where the SIP endpoint listens (UDP; port 0 picks a free port).
    pub sip_bind: SocketAddr,
    /// Also listen on TCP (same port).
    pub tcp: bool,
    /// RTP: bind address, port range, silence while not speaking.
    pub media: MediaConfig,
    /// Ring times, delays and caps.
    pub timings: Timings,
    /// The behaviour of numbers that match no prefix.
    pub unknown: Behaviour,
    /// Where the clips are (default: this crate's `audio/`).
    pub audio_dir: PathBuf,
    /// Where voicemail callees write what they hear after the beep (one
    /// stereo WAV per call); `None` (the default) writes nothing.
    pub record_dir: Option<PathBuf>,
    /// Seeds the per-call choices (ring time, greeting): the same seed and
    /// the same order of calls give the same callees.
    pub seed: u64,
}

impl FarmConfig {
    /// A farm on `sip_bind`, its RTP on the same address (ports
    /// 20000-29999), default timings, unknown numbers answered 404.
    pub fn new(sip_bind: SocketAddr) -> FarmConfig {
        FarmConfig {
            sip_bind,
            tcp: false,
            media: MediaConfig {
                bind_ip: sip_bind.ip(),
                port_min: 20000,
                port_max: 29999,
                // Callers may send no RTP at all; the farm ignores the
                // inactivity event and relies on its own caps.
                inactivity_timeout: Duration::from_secs(300),
                send_silence: true,
                metrics: false,
                ..MediaConfig::default()
            },
            timings: Timings::default(),
            unknown: Behaviour::Invalid,
            audio_dir: audio::default_dir(),
            record_dir: None,
            seed: 0,
        }
    }
}

impl Default for FarmConfig {
    /// `127.0.0.1:5090`.
    fn default() -> Self {
        FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 5090)))
    }
}

/// A running farm. Stop it with [`Farm::shutdown`]; dropping it stops the
/// endpoint without waiting for the calls.
pub struct Farm {
    endpoint: SipEndpoint,
    context: Arc<Context>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Farm {
    /// Loads the clips, starts the media engine and the SIP endpoint, and
    /// serves calls until [`Farm::shutdown`].
    pub async fn start(config: FarmConfig) -> anyhow::Result<Farm> {
        config.timings.validate().context("invalid farm timings")?;
        let clips = audio::Clips::load(&config.audio_dir, &config.timings.keys)?;
        if let Some(dir) = &config.record_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let rtp_ip: IpAddr = config.media.bind_ip;
        let media =
            MediaEngine::start(config.media.clone()).context("cannot start the media engine")?;
        let (endpoint, inbound) = SipEndpoint::start(SipConfig {
            bind: config.sip_bind,
            tcp: config.tcp,
            user_agent: format!("Dialcast-Farm/{}", env!("CARGO_PKG_VERSION")),
            ..SipConfig::default()
        })
        .await
        .context("cannot start the farm's SIP endpoint")?;
        let context = Arc::new(Context {
            media,
            clips,
            timings: config.timings,
            counters: Counters::default(),
            rtp_ip,
            record_dir: config.record_dir,
            recordings: AtomicU64::new(0),
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept(
            inbound,
            Arc::clone(&context),
            config.unknown,
            config.seed,
            cancel.clone(),
            tracker.clone(),
        ));
        info!(addr = %endpoint.local_addr(), "callee farm listening");
        Ok(Farm {
            endpoint,
            context,
            cancel,
            tracker,
        })
    }

    /// The address the farm's SIP endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FarmStats {
        self.context.counters.snapshot(self.endpoint.counters())
    }

    /// Stops taking calls (new INVITEs get 503), ends the calls in progress
    /// (BYE if answered, 480 if not), waits up to [`SHUTDOWN_GRACE`] for them,
    /// then stops the endpoint. Returns the final stats.
    pub async fn shutdown(self) -> FarmStats {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                active = self.stats().active,
                "calls still running at shutdown"
            );
        }
        let stats = self.stats();
        self.endpoint.shutdown();
        stats
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.endpoint.shutdown();
    }
}

/// Takes inbound calls and starts a callee task for each.
async fn accept(
    mut inbound: InboundCalls,
    context: Arc<Context>,
    unknown: Behaviour,
    seed: u64,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut rolls = SplitMix64::new(seed);
    loop {
        let call = tokio::select! {
            _ = cancel.cancelled() => break,
            call = inbound.next() => call,
        };
        let Some(call) = call else { break };
        let behaviour = match behaviour_for(call.callee()) {
            Some(b) => b,
            None => {
                context.counters.unknown_number();
                unknown
            }
        };
        let span = debug_span!("callee", %behaviour, call_id = %call.call_id());
        tracker.spawn(
            callee::run(
                call,
                behaviour,
                rolls.next_u64(),
                Arc::clone(&context),
                cancel.clone(),
            )
            .instrument(span),
        );
    }
}
