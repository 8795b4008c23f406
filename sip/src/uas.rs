//! Inbound calls (UAS), as their owner sees them: the INVITE arrived (the core
//! already sent 100 Trying), the owner answers with SDP or rejects it, media
//! flows, and either side ends it with BYE. A CANCEL before the answer ends it
//! (the core answers 200 to the CANCEL and 487 to the INVITE).
//!
//! ```text
//!  Offered ──answer──► Answered ──ACK──► Confirmed ──BYE (either side)──► Ended
//!     │                                    (no ACK in 64·T1 → Ended(timeout))
//!     └──reject / CANCEL────────────────────────────────────────────────► Ended
//! ```

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::core::{CallHandle, Command, Offered};
use crate::driver::{DriverCommand, Shared};
use crate::error::SipError;
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
    handle: CallHandle,
    shared: Arc<Shared>,
    offered: Offered,
    events: mpsc::Receiver<InboundEvent>,
    phase: Phase,
    sdp_session_id: u64,
}

impl InboundCall {
    pub(crate) fn new(
        handle: CallHandle,
        shared: Arc<Shared>,
        offered: Offered,
        events: mpsc::Receiver<InboundEvent>,
    ) -> Self {
        InboundCall {
            handle,
            shared,
            offered,
            events,
            phase: Phase::Offered,
            sdp_session_id: u64::from(rand::random::<u32>()),
        }
    }

    /// Marks a call the driver refused before anyone saw it (no Drop action).
    pub(crate) fn disarm(mut self) {
        self.phase = Phase::Ended;
    }

    /// The user part of the From URI (the caller's number).
    pub fn caller(&self) -> &str {
        &self.offered.caller
    }

    /// The user part of the To URI (the number that was called).
    pub fn callee(&self) -> &str {
        &self.offered.callee
    }

    pub fn call_id(&self) -> String {
        self.offered.call_id.clone()
    }

    /// The SDP offer of the INVITE (may be empty: offerless INVITE).
    pub fn offer(&self) -> &[u8] {
        &self.offered.offer
    }

    fn command(&self, command: Command) -> Result<(), SipError> {
        self.shared
            .commands
            .try_send(DriverCommand::Core(command))
            .map_err(|_| SipError::Busy)
    }

    /// Sends 180 Ringing.
    pub fn ringing(&self) -> Result<(), SipError> {
        self.command(Command::Ringing(self.handle))
    }

    /// Answers with 200 and our SDP. Returns the negotiated media, or an error
    /// (after rejecting with 488) when the offer has nothing we can use.
    pub fn answer(&mut self, local: LocalMedia) -> Result<NegotiatedMedia, SipError> {
        let (answer, media) =
            match sdp::answer_offer(&self.offered.offer, &local, self.sdp_session_id, 1, false) {
                Ok(pair) => pair,
                Err(e) => {
                    self.reject(488).ok();
                    return Err(SipError::Offer(e));
                }
            };
        self.command(Command::Answer(self.handle, answer.into_bytes(), local))?;
        self.phase = Phase::Answered;
        Ok(media)
    }

    /// Refuses the call with `code` (e.g. 486, 603, 488).
    pub fn reject(&mut self, code: u16) -> Result<(), SipError> {
        self.phase = Phase::Ended;
        self.command(Command::Reject(self.handle, code))
    }

    /// Waits for the next event. Returns `None` after [`InboundEvent::Ended`].
    pub async fn next_event(&mut self) -> Option<InboundEvent> {
        if self.phase == Phase::Ended {
            return None;
        }
        let event = match self.events.recv().await {
            Some(event) => event,
            None => InboundEvent::Ended(EndCause::Error),
        };
        if matches!(event, InboundEvent::Ended(_)) {
            self.phase = Phase::Ended;
        }
        Some(event)
    }

    /// Ends an answered call with BYE (or rejects an unanswered one with 480).
    pub async fn hangup(&mut self) {
        if self.phase != Phase::Ended {
            self.shared
                .commands
                .send(DriverCommand::Core(Command::Hangup(self.handle)))
                .await
                .ok();
        }
    }
}

impl Drop for InboundCall {
    fn drop(&mut self) {
        if self.phase != Phase::Ended {
            self.shared
                .commands
                .try_send(DriverCommand::Core(Command::Forget(self.handle)))
                .ok();
        }
    }
}
