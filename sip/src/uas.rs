//! Inbound calls (UAS): an INVITE arrives, the application answers it with SDP
//! (or rejects it), media flows, and either side ends it with BYE. A CANCEL
//! before the answer ends it with 487 (rsipstack answers the CANCEL itself).
//!
//! ```text
//!  Offered ──answer──► Answered ──ACK──► Confirmed ──BYE (either side)──► Ended
//!     │                                    (no ACK in 64·T1 → Ended(timeout))
//!     └──reject / CANCEL────────────────────────────────────────────────► Ended
//! ```

use std::sync::Arc;

use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use tracing::debug;

use crate::endpoint::{EndpointInner, SipEndpoint};
use crate::error::SipError;
use crate::in_dialog::{answer_in_dialog, InDialogOutcome};
use crate::sdp::{self, LocalMedia, NegotiatedMedia};
use crate::uac::EndCause;

/// What happened on an inbound call.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundEvent {
    /// The ACK for our 2xx arrived.
    Confirmed,
    /// A re-INVITE or UPDATE changed the media.
    MediaUpdated(NegotiatedMedia),
    /// A DTMF digit sent with SIP INFO.
    InfoDtmf(char),
    /// The call is over; no more events follow.
    Ended(EndCause),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Offered,
    Answered,
    Ended,
}

/// One inbound call.
pub struct InboundCall {
    endpoint: SipEndpoint,
    dialog: InviteDialog,
    states: DialogStateReceiver,
    offer: Vec<u8>,
    caller: String,
    callee: String,
    phase: Phase,
    local_media: Option<LocalMedia>,
    sdp_session_id: u64,
    sdp_version: u64,
}

impl InboundCall {
    pub(crate) fn accept_transaction(
        inner: &Arc<EndpointInner>,
        tx: Transaction,
    ) -> Result<InboundCall, SipError> {
        let (state_tx, states) = inner.dialog_layer.new_dialog_state_channel();
        let contact =
            rsipstack::sip::Uri::try_from(format!("sip:dialcast@{}", inner.local_addr).as_str())
                .map_err(|e| SipError::Stack(e.to_string()))?;
        let dialog = inner
            .dialog_layer
            .get_or_create_server_invite(&tx, state_tx, None, Some(contact))
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let user_of = |uri: Option<rsipstack::sip::Uri>| {
            uri.map(|u| {
                u.auth
                    .map(|a| a.user)
                    .unwrap_or_else(|| u.host_with_port.to_string())
            })
            .unwrap_or_default()
        };
        let caller = user_of(
            tx.original
                .from_header()
                .ok()
                .and_then(|h| h.uri().ok()),
        );
        let callee = user_of(tx.original.to_header().ok().and_then(|h| h.uri().ok()));
        let offer = tx.original.body.clone();
        // The INVITE server transaction (provisional/final responses, CANCEL, the
        // wait for ACK) runs in its own task, as rsipstack expects.
        let mut server = dialog.clone();
        tokio::spawn(async move {
            let mut tx = tx;
            if let Err(e) = server.handle(&mut tx).await {
                debug!(error = %e, "inbound INVITE transaction ended with an error");
            }
        });
        Ok(InboundCall {
            endpoint: SipEndpoint {
                inner: inner.clone(),
            },
            dialog,
            states,
            offer,
            caller,
            callee,
            phase: Phase::Offered,
            local_media: None,
            sdp_session_id: rand::random::<u32>() as u64,
            sdp_version: 1,
        })
    }

    /// The user part of the From URI (the caller's number).
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The user part of the To URI (the number that was called).
    pub fn callee(&self) -> &str {
        &self.callee
    }

    pub fn call_id(&self) -> String {
        self.dialog.id().call_id
    }

    /// The SDP offer of the INVITE (may be empty: offerless INVITE).
    pub fn offer(&self) -> &[u8] {
        &self.offer
    }

    /// Sends 180 Ringing.
    pub fn ringing(&self) -> Result<(), SipError> {
        self.dialog
            .ringing(None, None)
            .map_err(|e| SipError::Stack(e.to_string()))
    }

    /// Answers with 200 and our SDP. Returns the negotiated media, or an error
    /// (after replying 488) when the offer has nothing we can use.
    pub fn answer(&mut self, local: LocalMedia) -> Result<NegotiatedMedia, SipError> {
        let (answer, media) = match sdp::answer_offer(
            &self.offer,
            &local,
            self.sdp_session_id,
            self.sdp_version,
            false,
        ) {
            Ok(pair) => pair,
            Err(e) => {
                self.reject(488).ok();
                return Err(SipError::Offer(e));
            }
        };
        let headers = vec![
            Header::ContentType("application/sdp".into()),
            Header::Allow(crate::ALLOWED_METHODS.into()),
        ];
        self.dialog
            .accept(Some(headers), Some(answer.into_bytes()))
            .map_err(|e| SipError::Stack(e.to_string()))?;
        self.local_media = Some(local);
        self.phase = Phase::Answered;
        Ok(media)
    }

    /// Refuses the call with `code` (e.g. 486, 603, 488).
    pub fn reject(&mut self, code: u16) -> Result<(), SipError> {
        self.phase = Phase::Ended;
        self.dialog
            .reject(Some(StatusCode::from(code)), None)
            .map_err(|e| SipError::Stack(e.to_string()))
    }

    /// Waits for the next event. Returns `None` after [`InboundEvent::Ended`].
    pub async fn next_event(&mut self) -> Option<InboundEvent> {
        loop {
            if self.phase == Phase::Ended {
                return None;
            }
            let state = match self.states.recv().await {
                Some(state) => state,
                None => return self.ended(EndCause::Error),
            };
            match state {
                DialogState::Confirmed(_, _) => return Some(InboundEvent::Confirmed),
                DialogState::Terminated(_, reason) => {
                    let cause = match reason {
                        TerminatedReason::UacBye | TerminatedReason::UacCancel => {
                            EndCause::RemoteHangup
                        }
                        TerminatedReason::UasBye => EndCause::LocalHangup,
                        TerminatedReason::Timeout => EndCause::Timeout,
                        _ => EndCause::FinalResponse,
                    };
                    return self.ended(cause);
                }
                DialogState::Calling(_)
                | DialogState::Trying(_)
                | DialogState::Early(_, _)
                | DialogState::WaitAck(_, _) => {}
                other => {
                    let Some(local) = self.local_media else {
                        continue;
                    };
                    self.sdp_version += 1;
                    match answer_in_dialog(other, &local, self.sdp_session_id, self.sdp_version)
                        .await
                    {
                        InDialogOutcome::MediaUpdated(m) => {
                            return Some(InboundEvent::MediaUpdated(m))
                        }
                        InDialogOutcome::Dtmf(d) => return Some(InboundEvent::InfoDtmf(d)),
                        InDialogOutcome::Nothing => {}
                    }
                }
            }
        }
    }

    /// Ends an answered call with BYE (or rejects an unanswered one with 480).
    pub async fn hangup(&mut self) {
        match self.phase {
            Phase::Offered => {
                self.reject(480).ok();
            }
            Phase::Answered => {
                if let Err(e) = self.dialog.bye().await {
                    debug!(error = %e, "BYE failed");
                }
            }
            Phase::Ended => {}
        }
    }

    fn ended(&mut self, cause: EndCause) -> Option<InboundEvent> {
        self.phase = Phase::Ended;
        self.endpoint
            .inner
            .dialog_layer
            .remove_dialog(&self.dialog.id());
        Some(InboundEvent::Ended(cause))
    }
}

impl Drop for InboundCall {
    fn drop(&mut self) {
        if self.phase != Phase::Ended {
            let dialog = self.dialog.clone();
            let answered = self.phase == Phase::Answered;
            let layer = self.endpoint.inner.dialog_layer.clone();
            if !answered {
                dialog.reject(Some(StatusCode::TemporarilyUnavailable), None).ok();
                layer.remove_dialog(&dialog.id());
                return;
            }
            tokio::spawn(async move {
                dialog.bye().await.ok();
                layer.remove_dialog(&dialog.id());
            });
        }
    }
}
