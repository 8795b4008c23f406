//! Outbound calls (UAC), as their owner sees them: [`SipEndpoint::place_call`]
//! sends the INVITE, [`OutboundCall::next_event`] reports progress, early media,
//! the answer, media changes and the end; [`OutboundCall::hangup`] sends CANCEL
//! or BYE. The protocol work happens in the SIP core (`crate::core`).
//!
//! ```text
//!  Setup ──1xx──► Ringing ──2xx──► Confirmed ──BYE (either side)──► Ended
//!    │               │  ring timeout: CANCEL ──487──► Ended(no_answer)
//!    └───────────────┴──3xx-6xx / transaction timeout──────────────► Ended
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::core::{CallHandle, Command, Dial, Peer};
use crate::driver::{DriverCommand, Shared, CALL_EVENT_QUEUE};
use crate::endpoint::SipEndpoint;
use crate::error::SipError;
use crate::sdp::{self, LocalMedia, NegotiatedMedia};
use crate::status::CallStatus;
use crate::Transport;

/// What to dial and how.
#[derive(Clone, Debug)]
pub struct CallRequest {
    /// The callee, e.g. `sip:+31201234567@trunk.example:5060`.
    pub target: String,
    pub transport: Transport,
    /// The number we present: user part of From and P-Asserted-Identity.
    pub caller_id: Option<String>,
    /// Digest credentials for 401/407 challenges.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Where our RTP is received (goes into the SDP offer).
    pub local_media: LocalMedia,
    /// How long we let it ring before sending CANCEL.
    pub ring_timeout: Duration,
    /// Extra headers for the INVITE (name, value), e.g. a record reference.
    pub extra_headers: Vec<(String, String)>,
}

/// What happened on the call.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    /// A provisional response: 100, 180, 183, ...
    Progress { code: u16 },
    /// A provisional response carried SDP: media may flow before the answer.
    EarlyMedia(NegotiatedMedia),
    /// The callee answered (any 2xx). `None` when it had no usable SDP.
    Answered(Option<NegotiatedMedia>),
    /// A re-INVITE or UPDATE changed the media (hold, unhold, new address).
    MediaUpdated(NegotiatedMedia),
    /// A DTMF digit sent with SIP INFO (application/dtmf-relay).
    InfoDtmf(char),
    /// How our REFER ([`OutboundCall::refer`]) goes: the final response to
    /// it (`notify` false: 202 accepted, else refused; 408 when none came,
    /// 481 when the call was not answered), or the status a NOTIFY reported
    /// for the transfer (`notify` true: 1xx trying, 2xx the target answered,
    /// 3xx-6xx it failed).
    Refer { code: u16, notify: bool },
    /// The call is over; no more events follow.
    Ended(CallEnd),
}

/// Who or what ended the call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// A 3xx-6xx final response to the INVITE.
    FinalResponse,
    /// Our ring timeout expired: CANCEL was sent.
    RingTimeout,
    /// We cancelled before an answer (not because of the ring timeout).
    LocalCancel,
    /// We sent BYE.
    LocalHangup,
    /// The other side sent BYE (or, inbound, CANCEL).
    RemoteHangup,
    /// No final response to the INVITE (Timer B), or no ACK for our 2xx.
    Timeout,
    /// The transport or the endpoint failed.
    Error,
}

/// How the call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEnd {
    pub status: CallStatus,
    /// The final SIP status of the INVITE (200 if answered).
    pub sip_code: u16,
    pub cause: EndCause,
    /// Retry-After of the final response, if any (feeds trunk back-off).
    pub retry_after: Option<Duration>,
    /// Whether `sip_code` came from the network (false: generated locally).
    pub from_network: bool,
    /// A short description for logs when `cause` is `Error`.
    pub detail: Option<String>,
}

/// One outbound call in progress.
pub struct OutboundCall {
    call_id: String,
    handle: CallHandle,
    shared: Arc<Shared>,
    events: mpsc::Receiver<CallEvent>,
    ended: bool,
    started: Instant,
    first_provisional: Option<Instant>,
    answered_at: Option<Instant>,
}

impl SipEndpoint {
    /// Sends the INVITE and returns the call; drive it with `next_event`.
    pub async fn place_call(&self, request: CallRequest) -> Result<OutboundCall, SipError> {
        let callee = rsipstack::sip::Uri::try_from(request.target.as_str()).map_err(|e| {
            SipError::BadTarget {
                target: request.target.clone(),
                reason: e.to_string(),
            }
        })?;
        let destination = crate::resolve::destination(&callee, request.transport).await?;
        let host = callee.host_with_port.host.to_string();
        let caller_user = request.caller_id.as_deref().unwrap_or("dialcast");
        if !caller_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.!~*'()&=$,;?/".contains(c))
        {
            return Err(SipError::BadCallerId {
                caller_id: caller_user.to_string(),
                reason: "not a valid SIP user part".into(),
            });
        }
        let mut target_uri = request.target.clone();
        if request.transport == Transport::Tcp && !target_uri.contains("transport=") {
            target_uri.push_str(";transport=tcp");
        }
        let mut extra_headers = Vec::new();
        if let Some(number) = &request.caller_id {
            extra_headers.push((
                "P-Asserted-Identity".to_string(),
                format!("<sip:{number}@{host}>"),
            ));
        }
        extra_headers.extend(request.extra_headers.iter().cloned());
        let sdp_session_id = u64::from(rand::random::<u32>());
        let offer = sdp::build_offer(&request.local_media, sdp_session_id, 1);
        let call_id = format!("{}@dialcast", crate::core::msg::token(20));
        let dial = Dial {
            call_id: call_id.clone(),
            target_uri,
            peer: Peer {
                addr: destination,
                transport: request.transport,
            },
            from: format!("<sip:{caller_user}@{host}>"),
            extra_headers,
            offer: offer.into_bytes(),
            local_media: request.local_media,
            sdp_session_id,
            credential: request
                .username
                .clone()
                .map(|u| (u, request.password.clone().unwrap_or_default())),
            ring_timeout: request.ring_timeout,
        };
        let handle = self.shared.new_handle();
        let (tx, rx) = mpsc::channel(CALL_EVENT_QUEUE);
        self.shared
            .commands
            .send(DriverCommand::Dial(handle, Box::new(dial), tx))
            .await
            .map_err(|_| SipError::Stopped)?;
        Ok(OutboundCall {
            call_id,
            handle,
            shared: self.shared.clone(),
            events: rx,
            ended: false,
            started: Instant::now(),
            first_provisional: None,
            answered_at: None,
        })
    }
}

impl OutboundCall {
    /// The Call-ID of the INVITE.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Time from the INVITE to the first provisional response, if any came.
    pub fn setup_time(&self) -> Option<Duration> {
        self.first_provisional.map(|t| t - self.started)
    }

    /// Time from the INVITE to the answer, or until now if not answered yet.
    pub fn ring_time(&self) -> Duration {
        self.answered_at.unwrap_or_else(Instant::now) - self.started
    }

    /// When the call was answered.
    pub fn answered_at(&self) -> Option<Instant> {
        self.answered_at
    }

    /// Waits for the next event. Returns `None` after [`CallEvent::Ended`].
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        if self.ended {
            return None;
        }
        let Some(event) = self.events.recv().await else {
            self.ended = true;
            return Some(CallEvent::Ended(CallEnd {
                status: CallStatus::Failed,
                sip_code: 500,
                cause: EndCause::Error,
                retry_after: None,
                from_network: false,
                detail: Some("the SIP endpoint stopped".into()),
            }));
        };
        match &event {
            CallEvent::Progress { .. } | CallEvent::EarlyMedia(_) => {
                self.first_provisional.get_or_insert_with(Instant::now);
            }
            CallEvent::Answered(_) => self.answered_at = Some(Instant::now()),
            CallEvent::Ended(_) => self.ended = true,
            _ => {}
        }
        Some(event)
    }

    /// Asks the answered peer to call `target` instead (REFER, RFC 3515;
    /// `target` is the Refer-To URI, which may carry headers for the new
    /// INVITE as `?Name=value`). Progress comes as [`CallEvent::Refer`]; the
    /// call stays up until someone hangs up.
    pub async fn refer(&self, target: &str) {
        if !self.ended {
            self.shared
                .commands
                .send(DriverCommand::Core(Command::Refer(
                    self.handle,
                    target.to_string(),
                )))
                .await
                .ok();
        }
    }

    /// Ends the call from our side: BYE when answered, CANCEL before that.
    /// Keep calling `next_event` until `Ended` to learn the outcome.
    pub async fn hangup(&mut self) {
        if !self.ended {
            self.shared
                .commands
                .send(DriverCommand::Core(Command::Hangup(self.handle)))
                .await
                .ok();
        }
    }
}

impl Drop for OutboundCall {
    fn drop(&mut self) {
        // A call dropped mid-way is hung up (CANCEL or BYE), never left behind.
        if !self.ended {
            self.shared
                .commands
                .try_send(DriverCommand::Core(Command::Forget(self.handle)))
                .ok();
        }
    }
}
