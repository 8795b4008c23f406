//! A whole engine on the loopback interface: SIP on a free port of
//! 127.0.0.1 (UDP only) and RTP from a given port range, with the built-in
//! audio. The demo and the integration tests dial the callee farm or SIPp
//! with it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dialcast_media::{MediaConfig, MediaEngine};
use dialcast_sip::{InboundCalls, SipConfig, SipEndpoint};

use crate::campaign::voice::VoiceTuning;
use crate::campaign::{AmdTuning, Engine, EngineParts};
use crate::service::audio_catalog;
use crate::stats::StatsFeed;
use crate::store::Store;
use crate::voicelog::VoicelogSettings;

/// Starts an engine on 127.0.0.1 with RTP ports `rtp_ports` (inclusive).
/// Returns it with its SIP endpoint (shut it down when done).
pub async fn start_engine<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint)> {
    let (engine, sip, _inbound) = start_engine_with_inbound(store, rtp_ports).await?;
    Ok((engine, sip))
}

/// As [`start_engine`], with the stream of inbound calls (for callbacks).
pub async fn start_engine_with_inbound<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint, InboundCalls)> {
    start_engine_tuned(
        store,
        rtp_ports,
        AmdTuning::default(),
        VoiceTuning::default(),
    )
    .await
}

/// As [`start_engine_with_inbound`], recording calls as `voicelogs` says.
pub async fn start_engine_with_voicelogs<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
    voicelogs: VoicelogSettings,
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint, InboundCalls)> {
    start_engine_full(
        store,
        rtp_ports,
        AmdTuning::default(),
        VoiceTuning::default(),
        voicelogs,
        StatsFeed::default(),
    )
    .await
}

/// As [`start_engine_with_inbound`], with the detector's tuning and the
/// voicemail and forwarding settings.
pub async fn start_engine_tuned<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
    amd: AmdTuning,
    voice: VoiceTuning,
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint, InboundCalls)> {
    start_engine_full(
        store,
        rtp_ports,
        amd,
        voice,
        VoicelogSettings::disabled(),
        StatsFeed::default(),
    )
    .await
}

/// As [`start_engine`], announcing committed buckets on `stats` (a feed
/// made beforehand, e.g. for the demo's portal).
pub async fn start_engine_with_stats<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
    stats: StatsFeed,
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint)> {
    let (engine, sip, _inbound) = start_engine_full(
        store,
        rtp_ports,
        AmdTuning::default(),
        VoiceTuning::default(),
        VoicelogSettings::disabled(),
        stats,
    )
    .await?;
    Ok((engine, sip))
}

/// The engine with every setting given.
async fn start_engine_full<S: Store>(
    store: Arc<S>,
    rtp_ports: (u16, u16),
    amd: AmdTuning,
    voice: VoiceTuning,
    voicelogs: VoicelogSettings,
    stats: StatsFeed,
) -> anyhow::Result<(Arc<Engine<S>>, SipEndpoint, InboundCalls)> {
    let (sip, inbound) = SipEndpoint::start(SipConfig {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        tcp: false,
        ..SipConfig::default()
    })
    .await?;
    let media = MediaEngine::start(MediaConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: rtp_ports.0,
        port_max: rtp_ports.1,
        inactivity_timeout: Duration::from_secs(30),
        send_silence: true,
        metrics: true,
        ..MediaConfig::default()
    })?;
    let engine = Engine::new(EngineParts {
        store,
        sip: sip.clone(),
        media,
        catalog: audio_catalog(&[])?,
        credentials: Default::default(),
        rtp_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        amd,
        voice,
        voicelogs,
        stats,
    })?;
    Ok((engine, sip, inbound))
}
