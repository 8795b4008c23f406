//! A script's forward to the call centre: the gate (paused, opening hours,
//! a configured target), then either
//!
//! - **bridge**: the second call with the record's reference in a header,
//!   the bridge of the two calls' RTP when it answers (`dialcast_media::
//!   bridge`), and the end of both calls together; or
//! - **refer**: a REFER asking the trunk to connect the callee to the call
//!   centre itself (RFC 3515; the reference rides in the Refer-To URI as a
//!   header for the new INVITE); a NOTIFY with 2xx means it did, and we
//!   leave the call (RFC 5589 §6), a refusal, a failure NOTIFY or no final
//!   NOTIFY within the ring timeout is the failed branch.
//!
//! Methods of the call's [`Leg`].

use std::time::{Duration, Instant};

use tokio::time::Instant as TokioInstant;

use chrono::Utc;
use dialcast_media::MediaSession;
use dialcast_scripts::{Event, ForwardOutcome, FORWARDING_OPEN_FIELD};
use dialcast_sip::sdp::LocalMedia;
use dialcast_sip::{CallEvent, CallRequest, OutboundCall};

use super::{CallContext, Leg, LegPlan};
use crate::campaign::voice::{ForwardGate, ForwardMode};
use crate::single_call::remote_media;
use crate::store::{ForwardStats, Store};

/// The record field whose value the call centre is sent as the reference
/// (else the record's `RECORD_ID`).
const REFERENCE_FIELD: &str = "IDENTIFICATION_CLIENT_REFERENCE";

/// Extra time after the ring timeout for the trunk's final NOTIFY.
const REFER_GRACE: Duration = Duration::from_secs(5);

/// A REFER in progress.
pub(super) struct Referral {
    deadline: TokioInstant,
}

impl Referral {
    /// When to give up waiting for the transfer's outcome.
    pub(super) fn deadline(&self) -> TokioInstant {
        self.deadline
    }
}

/// `uri` with `name: value` as a header of the INVITE it leads to
/// (RFC 3261 §19.1.1: `?name=value`, the value percent-encoded).
/// The script's event for a forward's outcome, counted by `label` in
/// `dialcast_forwards_total` (bridged, referred, closed, paused, failed).
fn forward_result(script: &str, outcome: ForwardOutcome, label: &'static str) -> Event {
    crate::metrics::forward(script, label);
    Event::ForwardResult(outcome)
}

fn uri_with_header(uri: &str, name: &str, value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{name}={encoded}")
}

/// The second call of a forward: to the call centre.
pub(super) struct ForwardLeg {
    call: OutboundCall,
    session: MediaSession,
    /// When the call centre answered and the bridge began.
    bridged_at: Option<Instant>,
    /// The call ended (no hang-up to send).
    ended: bool,
}

impl Leg {
    /// The trunk answered our REFER, or reported the transfer's progress.
    pub(super) async fn on_refer_event<S: Store>(
        &mut self,
        ctx: &CallContext<S>,
        plan: LegPlan<'_>,
        code: u16,
        notify: bool,
    ) {
        if self.referral.is_none() {
            return;
        }
        match (notify, code) {
            (false, 200..=299) | (true, 100..=199) => {}
            (true, 200..=299) => {
                self.referral = None;
                tracing::info!(record = %plan.claim.record_id, "forward: the trunk connected the call centre (REFER)");
                self.forward_stats = Some(ForwardStats {
                    referred: true,
                    ..ForwardStats::default()
                });
                self.feed(
                    ctx,
                    plan,
                    forward_result(plan.script, ForwardOutcome::Connected, "referred"),
                )
                .await;
                // The transfer is done: our part of the call is over.
                self.hangup().await;
            }
            _ => {
                self.referral = None;
                tracing::info!(record = %plan.claim.record_id, code, notify, "forward: REFER failed");
                self.feed(
                    ctx,
                    plan,
                    forward_result(plan.script, ForwardOutcome::Failed, "failed"),
                )
                .await;
            }
        }
    }

    /// No final word on the REFER in time: the failed branch.
    pub(super) async fn refer_timed_out<S: Store>(
        &mut self,
        ctx: &CallContext<S>,
        plan: LegPlan<'_>,
    ) {
        if self.referral.take().is_some() {
            tracing::info!(record = %plan.claim.record_id, "forward: no outcome of the REFER in time");
            self.feed(
                ctx,
                plan,
                forward_result(plan.script, ForwardOutcome::Failed, "failed"),
            )
            .await;
        }
    }

    /// Carries out a script's forward: the call centre's leg is placed, or
    /// the script hears at once why not.
    pub(super) async fn start_forward<S: Store>(
        &mut self,
        ctx: &CallContext<S>,
        plan: LegPlan<'_>,
    ) {
        let paused = plan
            .claim
            .fields
            .get(FORWARDING_OPEN_FIELD)
            .is_some_and(|v| v == "N");
        let target = match (
            plan.voice.forward_gate(paused, Utc::now()),
            &plan.voice.settings.forward,
        ) {
            (ForwardGate::Open, Some(target)) => target,
            (ForwardGate::Closed, _) => {
                tracing::info!(record = %plan.claim.record_id, paused, "forward: the call centre is closed");
                self.run.handle(forward_result(
                    plan.script,
                    ForwardOutcome::Closed,
                    if paused { "paused" } else { "closed" },
                ));
                return;
            }
            _ => {
                tracing::warn!(record = %plan.claim.record_id,
                    "forward: no call centre configured ([forwarding] uri)");
                self.run.handle(forward_result(
                    plan.script,
                    ForwardOutcome::Failed,
                    "failed",
                ));
                return;
            }
        };
        let reference = plan
            .claim
            .fields
            .get(REFERENCE_FIELD)
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .unwrap_or(&plan.claim.record_id)
            .to_string();
        // A `forwarded` voicelog policy records from here on.
        self.forward_started(ctx).await;
        if target.mode == ForwardMode::Refer {
            let refer_to = uri_with_header(&target.uri, &target.reference_header, &reference);
            if self.call.refer(&refer_to).await {
                let wait = Duration::from_millis(u64::from(target.ring_timeout_ms)) + REFER_GRACE;
                self.referral = Some(Referral {
                    deadline: TokioInstant::now() + wait,
                });
            } else {
                tracing::warn!(record = %plan.claim.record_id,
                    "forward: REFER works only on calls we placed; a callback cannot be referred");
                self.run.handle(forward_result(
                    plan.script,
                    ForwardOutcome::Failed,
                    "failed",
                ));
            }
            return;
        }
        let session = match ctx.media.open_session() {
            Ok(session) => session,
            Err(e) => {
                tracing::warn!(record = %plan.claim.record_id, "forward: no RTP port: {e}");
                self.run.handle(forward_result(
                    plan.script,
                    ForwardOutcome::Failed,
                    "failed",
                ));
                return;
            }
        };
        let transport = if target.uri.to_ascii_lowercase().contains("transport=tcp") {
            dialcast_sip::Transport::Tcp
        } else {
            dialcast_sip::Transport::Udp
        };
        let request = CallRequest {
            target: target.uri.clone(),
            transport,
            // The agent sees who is being connected.
            caller_id: Some(plan.claim.number.clone()),
            username: None,
            password: None,
            local_media: LocalMedia {
                ip: plan.rtp_ip,
                port: session.local_addr().port(),
                ssrc: Some(session.ssrc()),
            },
            ring_timeout: Duration::from_millis(u64::from(target.ring_timeout_ms.max(1))),
            extra_headers: vec![(target.reference_header.clone(), reference)],
        };
        match ctx.sip.place_call(request).await {
            Ok(call) => {
                self.forward = Some(ForwardLeg {
                    call,
                    session,
                    bridged_at: None,
                    ended: false,
                })
            }
            Err(e) => {
                tracing::warn!(record = %plan.claim.record_id, "forward: cannot call the call centre: {e}");
                session.close().await;
                self.run.handle(forward_result(
                    plan.script,
                    ForwardOutcome::Failed,
                    "failed",
                ));
            }
        }
    }

    /// Something happened on the call centre's leg.
    pub(super) async fn on_forward_event<S: Store>(
        &mut self,
        ctx: &CallContext<S>,
        plan: LegPlan<'_>,
        event: Option<CallEvent>,
    ) {
        let Some(leg) = self.forward.as_mut() else {
            return;
        };
        match event {
            Some(CallEvent::Answered(Some(media))) if leg.bridged_at.is_none() => {
                leg.session.set_remote(remote_media(&media));
                leg.session.set_hold(media.on_hold);
                leg.session.start_sending();
                self.session.stop_playback();
                self.session.bridge_with(&leg.session);
                leg.bridged_at = Some(Instant::now());
                tracing::info!(record = %plan.claim.record_id, "forward: bridged to the call centre");
                self.feed(
                    ctx,
                    plan,
                    forward_result(plan.script, ForwardOutcome::Connected, "bridged"),
                )
                .await;
            }
            Some(CallEvent::MediaUpdated(media)) => {
                leg.session.set_remote(remote_media(&media));
                leg.session.set_hold(media.on_hold);
            }
            Some(CallEvent::Answered(None)) => {
                tracing::warn!(record = %plan.claim.record_id,
                    "forward: the call centre answered without usable SDP");
                self.end_forward().await;
                self.feed(
                    ctx,
                    plan,
                    forward_result(plan.script, ForwardOutcome::Failed, "failed"),
                )
                .await;
            }
            Some(CallEvent::Ended(_)) | None => {
                leg.ended = true;
                let bridged = leg.bridged_at.is_some();
                self.end_forward().await;
                if bridged {
                    // The agent hung up: the call is over.
                    self.hangup().await;
                } else {
                    tracing::info!(record = %plan.claim.record_id, "forward: the call centre did not answer");
                    self.feed(
                        ctx,
                        plan,
                        forward_result(plan.script, ForwardOutcome::Failed, "failed"),
                    )
                    .await;
                }
            }
            Some(_) => {}
        }
    }

    /// Hangs up and closes the call centre's leg, if any, and keeps what
    /// its bridge carried.
    pub(super) async fn end_forward(&mut self) {
        let Some(mut leg) = self.forward.take() else {
            return;
        };
        if !leg.ended {
            leg.call.hangup().await;
        }
        self.session.unbridge();
        let stats = leg.session.close().await;
        if let Some(at) = leg.bridged_at {
            self.forward_stats = Some(ForwardStats {
                to_centre_frames: stats.bridged_frames,
                to_callee_frames: 0,
                bridged_ms: at.elapsed().as_millis() as i64,
                referred: false,
            });
        }
    }
}

/// The next event of the call centre's leg; pending while there is none.
pub(super) async fn forward_event(leg: &mut Option<ForwardLeg>) -> Option<CallEvent> {
    match leg {
        Some(leg) if !leg.ended => leg.call.next_event().await,
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_rides_in_the_refer_to_uri() {
        assert_eq!(
            uri_with_header("sip:queue@cc.example", "X-Dialcast-Reference", "INV 7/ä"),
            "sip:queue@cc.example?X-Dialcast-Reference=INV%207%2F%C3%A4"
        );
        assert_eq!(
            uri_with_header("sip:q@cc?Priority=urgent", "X-Ref", "R1"),
            "sip:q@cc?Priority=urgent&X-Ref=R1"
        );
    }
}
