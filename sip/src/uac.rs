//! Outbound calls (UAC): INVITE with an SDP offer, provisional responses and
//! early media, answer, our ring timeout (CANCEL → 487), BYE from either side,
//! digest authentication on 401/407 (done by rsipstack from the credential), and
//! the in-dialog requests a trunk may send during the call.
//!
//! The call is driven by its owner's task: [`OutboundCall::next_event`] waits on
//! the dialog's state channel, the INVITE transaction and the ring timer, and
//! turns them into [`CallEvent`]s. No task of its own per call.
//!
//! ```text
//!  Setup ──1xx──► Ringing ──2xx──► Confirmed ──BYE (either side)──► Ended
//!    │               │  ring timeout: CANCEL ──487──► Ended(no_answer)
//!    └───────────────┴──3xx-6xx / transaction timeout──────────────► Ended
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invitation::{InviteAsyncResult, InviteOption};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::dialog::DialogId;
use rsipstack::sip::{Header, Response, StatusCodeKind};
use rsipstack::transport::SipAddr;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::endpoint::SipEndpoint;
use crate::error::SipError;
use crate::in_dialog::{answer_in_dialog, InDialogOutcome};
use crate::sdp::{self, LocalMedia, NegotiatedMedia};
use crate::status::CallStatus;
use crate::trunk::parse_retry_after;
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
    /// The callee answered. `None` when the 2xx had no usable SDP.
    Answered(Option<NegotiatedMedia>),
    /// A re-INVITE or UPDATE changed the media (hold, unhold, new address).
    MediaUpdated(NegotiatedMedia),
    /// A DTMF digit sent with SIP INFO (application/dtmf-relay).
    InfoDtmf(char),
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
    /// The callee sent BYE.
    RemoteHangup,
    /// No final response to the INVITE (Timer B) or a dialog timeout.
    Timeout,
    /// The transport or the stack failed.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Setup,
    Confirmed,
    Ended,
}

/// One outbound call in progress.
pub struct OutboundCall {
    endpoint: SipEndpoint,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    invite: Option<JoinHandle<InviteAsyncResult>>,
    phase: Phase,
    ring_deadline: tokio::time::Instant,
    cancel_cause: Option<EndCause>,
    pending: VecDeque<CallEvent>,
    local_media: LocalMedia,
    sdp_session_id: u64,
    sdp_version: u64,
    confirmed_id: Option<DialogId>,
    /// A 2xx other than 200 leaves rsipstack's dialog terminated: we BYE it by hand.
    unmanaged_2xx: Option<Response>,
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
        if request.transport == Transport::Tcp {
            self.ensure_tcp(destination).await?;
        }
        let host = callee.host_with_port.host.to_string();
        let caller_user = request
            .caller_id
            .clone()
            .unwrap_or_else(|| "dialcast".to_string());
        let caller = rsipstack::sip::Uri::try_from(format!("sip:{caller_user}@{host}").as_str())
            .map_err(|e| SipError::BadCallerId {
                caller_id: caller_user.clone(),
                reason: e.to_string(),
            })?;
        let contact = rsipstack::sip::Uri::try_from(
            format!("sip:dialcast@{}", self.local_addr()).as_str(),
        )
        .map_err(|e| SipError::Stack(e.to_string()))?;

        let mut headers = Vec::new();
        if let Some(number) = &request.caller_id {
            headers.push(Header::PAssertedIdentity(
                format!("<sip:{number}@{host}>").into(),
            ));
        }
        headers.push(Header::Allow(crate::ALLOWED_METHODS.into()));
        for (name, value) in &request.extra_headers {
            headers.push(Header::Other(name.clone(), value.clone()));
        }

        let sdp_session_id = rand::random::<u32>() as u64;
        let offer = sdp::build_offer(&request.local_media, sdp_session_id, 1);
        let credential = request.username.clone().map(|username| Credential {
            username,
            password: request.password.clone().unwrap_or_default(),
            realm: None,
            auth_username: None,
        });
        let option = InviteOption {
            caller,
            callee,
            destination: Some(SipAddr {
                r#type: Some(request.transport.to_rsip()),
                addr: destination.into(),
            }),
            content_type: Some("application/sdp".to_string()),
            offer: Some(offer.into_bytes()),
            contact,
            credential,
            headers: Some(headers),
            ..Default::default()
        };
        let (state_tx, states) = self.inner.dialog_layer.new_dialog_state_channel();
        let (dialog, invite) = self
            .inner
            .dialog_layer
            .do_invite_async(option, state_tx)
            .map_err(|e| SipError::Stack(e.to_string()))?;
        Ok(OutboundCall {
            endpoint: self.clone(),
            dialog,
            states,
            invite: Some(invite),
            phase: Phase::Setup,
            ring_deadline: tokio::time::Instant::now() + request.ring_timeout,
            cancel_cause: None,
            pending: VecDeque::new(),
            local_media: request.local_media,
            sdp_session_id,
            sdp_version: 1,
            confirmed_id: None,
            unmanaged_2xx: None,
            started: Instant::now(),
            first_provisional: None,
            answered_at: None,
        })
    }
}

impl OutboundCall {
    /// The Call-ID of the INVITE.
    pub fn call_id(&self) -> String {
        self.dialog.id().call_id
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
        loop {
            if let Some(event) = self.pending.pop_front() {
                if matches!(event, CallEvent::Ended(_)) {
                    self.finish();
                }
                return Some(event);
            }
            if self.phase == Phase::Ended {
                return None;
            }
            let ringing = self.phase == Phase::Setup && self.cancel_cause.is_none();
            tokio::select! {
                state = self.states.recv() => match state {
                    Some(state) => self.on_state(state).await,
                    None => {
                        if self.invite.is_none() {
                            // The stack dropped the dialog: treat as a dialog timeout.
                            self.end(CallStatus::Answered, 200, EndCause::Timeout, None);
                        } else {
                            // The state channel closes while the INVITE settles; keep
                            // waiting for the transaction result.
                            let result = match self.invite.as_mut() {
                                Some(handle) => handle.await,
                                None => continue,
                            };
                            self.invite = None;
                            self.on_invite_result(result).await;
                        }
                    }
                },
                result = async { match self.invite.as_mut() { Some(h) => h.await, None => std::future::pending().await } } => {
                    self.invite = None;
                    self.on_invite_result(result).await;
                }
                _ = tokio::time::sleep_until(self.ring_deadline), if ringing => {
                    self.cancel(EndCause::RingTimeout);
                }
            }
        }
    }

    /// Ends the call from our side: BYE when answered, CANCEL before that.
    /// Keep calling `next_event` until `Ended` to learn the outcome.
    pub async fn hangup(&mut self) {
        match self.phase {
            Phase::Setup => self.cancel(EndCause::LocalCancel),
            Phase::Confirmed => {
                if let Some(resp) = self.unmanaged_2xx.take() {
                    crate::in_dialog::bye_unmanaged(&self.endpoint, &self.dialog, &resp).await;
                } else if let Err(e) = self.dialog.bye().await {
                    debug!(error = %e, "BYE failed");
                }
                self.end(CallStatus::Answered, 200, EndCause::LocalHangup, None);
            }
            Phase::Ended => {}
        }
    }

    fn cancel(&mut self, cause: EndCause) {
        if self.cancel_cause.is_some() {
            return;
        }
        self.cancel_cause = Some(cause);
        let dialog = self.dialog.clone();
        // `cancel` waits for the CANCEL's own response: do not hold up the call.
        tokio::spawn(async move {
            if let Err(e) = dialog.cancel().await {
                debug!(error = %e, "CANCEL failed");
            }
        });
    }

    async fn on_state(&mut self, state: DialogState) {
        match state {
            DialogState::Calling(_) | DialogState::WaitAck(_, _) | DialogState::Confirmed(_, _) => {
            }
            DialogState::Trying(_) => {
                self.first_provisional.get_or_insert_with(Instant::now);
                self.pending.push_back(CallEvent::Progress { code: 100 });
            }
            DialogState::Early(_, resp) => {
                self.first_provisional.get_or_insert_with(Instant::now);
                self.pending.push_back(CallEvent::Progress {
                    code: resp.status_code.code(),
                });
                if has_sdp(&resp.body) {
                    match sdp::parse_answer(&resp.body) {
                        Ok(media) => self.pending.push_back(CallEvent::EarlyMedia(media)),
                        Err(e) => debug!(error = %e, "unusable SDP in provisional response"),
                    }
                }
            }
            DialogState::Terminated(_, reason) => {
                if self.phase == Phase::Confirmed {
                    let cause = match reason {
                        TerminatedReason::UasBye => EndCause::RemoteHangup,
                        TerminatedReason::UacBye => EndCause::LocalHangup,
                        TerminatedReason::Timeout => EndCause::Timeout,
                        _ => EndCause::RemoteHangup,
                    };
                    self.end(CallStatus::Answered, 200, cause, None);
                }
                // Before the answer, the INVITE transaction's result says how it ended.
            }
            other => {
                self.sdp_version += 1;
                let outcome =
                    answer_in_dialog(other, &self.local_media, self.sdp_session_id, self.sdp_version)
                        .await;
                match outcome {
                    InDialogOutcome::MediaUpdated(media) => {
                        self.pending.push_back(CallEvent::MediaUpdated(media))
                    }
                    InDialogOutcome::Dtmf(digit) => self.pending.push_back(CallEvent::InfoDtmf(digit)),
                    InDialogOutcome::Nothing => {}
                }
            }
        }
    }

    async fn on_invite_result(
        &mut self,
        result: Result<InviteAsyncResult, tokio::task::JoinError>,
    ) {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                self.end_with_error(format!("INVITE task failed: {e}"));
                return;
            }
        };
        match outcome {
            Ok((id, Some(resp))) => {
                let code = resp.status_code.code();
                if resp.status_code.kind() == StatusCodeKind::Successful {
                    self.on_answered(id, resp).await;
                    return;
                }
                let retry_after = resp.headers.iter().find_map(|h| match h {
                    Header::RetryAfter(v) => parse_retry_after(v.value()),
                    _ => None,
                });
                let cause = match (code, &self.cancel_cause) {
                    (487, Some(cause)) => cause.clone(),
                    _ => EndCause::FinalResponse,
                };
                self.pending.push_back(CallEvent::Ended(CallEnd {
                    status: CallStatus::from_final_response(code),
                    sip_code: code,
                    cause,
                    retry_after,
                    from_network: true,
                    detail: None,
                }));
            }
            Ok((_, None)) => {
                // No final response at all: Timer B, or cancelled before any answer.
                let cause = self.cancel_cause.clone().unwrap_or(EndCause::Timeout);
                let status = if cause == EndCause::Timeout {
                    CallStatus::Failed
                } else {
                    CallStatus::NoAnswer
                };
                let sip_code = if cause == EndCause::Timeout { 408 } else { 487 };
                self.pending.push_back(CallEvent::Ended(CallEnd {
                    status,
                    sip_code,
                    cause,
                    retry_after: None,
                    from_network: false,
                    detail: None,
                }));
            }
            Err(e) => {
                let text = e.to_string();
                if text.to_ascii_lowercase().contains("timeout") {
                    self.pending.push_back(CallEvent::Ended(CallEnd {
                        status: CallStatus::Failed,
                        sip_code: 408,
                        cause: EndCause::Timeout,
                        retry_after: None,
                        from_network: false,
                        detail: Some(text),
                    }));
                } else {
                    self.end_with_error(text);
                }
            }
        }
    }

    async fn on_answered(&mut self, id: DialogId, resp: Response) {
        self.answered_at = Some(Instant::now());
        self.phase = Phase::Confirmed;
        let media = if has_sdp(&resp.body) {
            match sdp::parse_answer(&resp.body) {
                Ok(media) => Some(media),
                Err(e) => {
                    debug!(error = %e, "unusable SDP in the answer");
                    None
                }
            }
        } else {
            None
        };
        if self.dialog.state().is_terminated() {
            // rsipstack confirms only a 200; for any other 2xx (RFC 3261 says
            // every 2xx establishes the dialog) it has already ACKed but dropped
            // the dialog, so we keep the response to send our own BYE.
            if self.cancel_cause.is_none() {
                self.unmanaged_2xx = Some(resp);
            } else {
                // We had cancelled; the stack BYEs a 2xx to a cancelled INVITE.
                self.phase = Phase::Setup;
            }
        }
        if self.cancel_cause.is_some() && self.phase == Phase::Confirmed {
            // The 2xx crossed our CANCEL: the call is up, so hang it up now.
            self.confirmed_id = Some(id);
            self.pending.push_back(CallEvent::Answered(media));
            self.hangup().await;
            return;
        }
        self.confirmed_id = Some(id);
        self.pending.push_back(CallEvent::Answered(media));
    }

    fn end_with_error(&mut self, detail: String) {
        self.pending.push_back(CallEvent::Ended(CallEnd {
            status: CallStatus::Failed,
            sip_code: 500,
            cause: EndCause::Error,
            retry_after: None,
            from_network: false,
            detail: Some(detail),
        }));
    }

    fn end(&mut self, status: CallStatus, sip_code: u16, cause: EndCause, detail: Option<String>) {
        if self.pending.iter().any(|e| matches!(e, CallEvent::Ended(_))) {
            return;
        }
        self.pending.push_back(CallEvent::Ended(CallEnd {
            status,
            sip_code,
            cause,
            retry_after: None,
            from_network: true,
            detail,
        }));
    }

    /// Removes the dialog from the stack's table (rsipstack leaves that to us).
    fn finish(&mut self) {
        self.phase = Phase::Ended;
        if let Some(id) = self.confirmed_id.take() {
            self.endpoint.inner.dialog_layer.remove_dialog(&id);
        }
        self.endpoint.inner.dialog_layer.remove_dialog(&self.dialog.id());
    }
}

impl Drop for OutboundCall {
    fn drop(&mut self) {
        // A call dropped mid-way must not leave a dialog behind.
        if self.phase != Phase::Ended {
            if self.phase == Phase::Setup {
                self.cancel(EndCause::LocalCancel);
            } else if let Some(id) = self.confirmed_id.clone() {
                let dialog = self.dialog.clone();
                let layer = self.endpoint.inner.dialog_layer.clone();
                tokio::spawn(async move {
                    dialog.bye().await.ok();
                    layer.remove_dialog(&id);
                });
                return;
            }
            self.finish();
        }
    }
}

fn has_sdp(body: &[u8]) -> bool {
    body.iter().any(|b| !b.is_ascii_whitespace())
}

/// Reads the Content-Type of a message as lower-case text.
pub(crate) fn content_type_of(headers: &rsipstack::sip::Headers) -> Option<String> {
    headers.iter().find_map(|h| match h {
        Header::ContentType(v) => Some(v.value().to_ascii_lowercase()),
        _ => None,
    })
}
