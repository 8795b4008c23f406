//! Inbound calls (UAS), as their owner sees them: the INVITE arrived (the core
//! already sent 100 Trying), the owner may ring (180) or send early media (183
//! with its SDP answer), then answers with SDP or rejects it, media flows, and
//! either side ends it with BYE. A CANCEL before the answer ends it (the core
//! answers 200 to the CANCEL and 487 to the INVITE).
//!
//! ```text
//!  Offered ──answer──────────────────► Answered ──ACK──► Confirmed ──BYE──► Ended
//!     │  └─session_progress─► Early ──answer─┘    (no ACK in 64·T1 → Ended(timeout))
//!     │                         │
//!     └──reject / CANCEL────────┴─reject / CANCEL─────────────────────────► Ended
//! ```
//!
//! Early media (RFC 3261 §13.3.1.1, RFC 3264): the 183 carries our answer to
//! the INVITE's offer. Without 100rel that answer is not final, so the 2xx
//! repeats it byte for byte (same media, same `o=` version) and, like every
//! response of the call, the same To tag.

use std::sync::Arc;
use std::time::Duration;

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
    /// A 183 with our SDP answer went out; `InboundCall::early` holds it.
    Early,
    Answered,
    Ended,
}

/// The SDP answer a 183 carried, repeated by the 2xx.
#[derive(Debug, Clone)]
struct EarlyAnswer {
    sdp: Vec<u8>,
    media: NegotiatedMedia,
    local: LocalMedia,
}

/// One inbound call.
pub struct InboundCall {
    handle: CallHandle,
    shared: Arc<Shared>,
    offered: Offered,
    events: mpsc::Receiver<InboundEvent>,
    phase: Phase,
    early: Option<EarlyAnswer>,
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
            early: None,
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

    /// Our SDP answer to the INVITE's offer, or an error after rejecting the
    /// call with 488 when the offer has nothing we can use.
    fn answer_sdp(&mut self, local: &LocalMedia) -> Result<(Vec<u8>, NegotiatedMedia), SipError> {
        let session_id = self.offered.sdp_session_id;
        match sdp::answer_offer(&self.offered.offer, local, session_id, 1, false) {
            Ok((answer, media)) => Ok((answer.into_bytes(), media)),
            Err(e) => {
                self.reject(488).ok();
                Err(SipError::Offer(e))
            }
        }
    }

    /// Sends 183 Session Progress with our SDP answer, so media may flow
    /// before the call is answered (announcements, in-band ringback). Returns
    /// the negotiated media: start sending to it now.
    ///
    /// The 183 is sent once (no 100rel; a retransmitted INVITE gets it
    /// again). A later [`answer`](Self::answer) sends the same SDP in its 200
    /// and returns the same media; [`reject_with`](Self::reject_with) or a
    /// CANCEL ends the call as before. Calling it again resends the same 183;
    /// once the call is answered or over, nothing is sent. An offer we
    /// cannot use is rejected with 488, as by `answer`.
    pub fn session_progress(&mut self, local: LocalMedia) -> Result<NegotiatedMedia, SipError> {
        if let Some(early) = &self.early {
            self.command(Command::Progress(self.handle, early.sdp.clone()))?;
            return Ok(early.media);
        }
        let (answer, media) = self.answer_sdp(&local)?;
        self.command(Command::Progress(self.handle, answer.clone()))?;
        if self.phase == Phase::Offered {
            self.phase = Phase::Early;
        }
        self.early = Some(EarlyAnswer {
            sdp: answer,
            media,
            local,
        });
        Ok(media)
    }

    /// Answers with 200 and our SDP. Returns the negotiated media, or an error
    /// (after rejecting with 488) when the offer has nothing we can use.
    ///
    /// After [`session_progress`](Self::session_progress) the 200 carries the
    /// answer the 183 carried and `local` is not used: the offer/answer
    /// exchange is already done, and moving the media would take a new offer
    /// (a re-INVITE), not a different answer.
    pub fn answer(&mut self, local: LocalMedia) -> Result<NegotiatedMedia, SipError> {
        let (answer, media, local) = match &self.early {
            Some(early) => (early.sdp.clone(), early.media, early.local),
            None => {
                let (answer, media) = self.answer_sdp(&local)?;
                (answer, media, local)
            }
        };
        self.command(Command::Answer(self.handle, answer, local))?;
        self.phase = Phase::Answered;
        Ok(media)
    }

    /// Refuses the call with `code` (e.g. 486, 603, 488).
    pub fn reject(&mut self, code: u16) -> Result<(), SipError> {
        self.reject_with(code, None)
    }

    /// Refuses the call with `code` and, when `retry_after` is set, a
    /// Retry-After header (RFC 3261 §20.33: whole seconds, rounded up), e.g.
    /// 480 or 503 with the time after which the caller may try again.
    pub fn reject_with(
        &mut self,
        code: u16,
        retry_after: Option<Duration>,
    ) -> Result<(), SipError> {
        self.phase = Phase::Ended;
        self.command(Command::Reject(self.handle, code, retry_after))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize};

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::endpoint::SipCounters;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";

    /// A call whose commands land in the returned receiver instead of a driver.
    fn call(offer: &str) -> (InboundCall, mpsc::Receiver<DriverCommand>) {
        let (tx, rx) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            commands: tx,
            local_addr: "127.0.0.1:5060".parse().expect("address"),
            counters: Arc::new(SipCounters::default()),
            next_handle: AtomicU64::new(1),
            calls_in_core: AtomicUsize::new(0),
            cancel: CancellationToken::new(),
        });
        let offered = Offered {
            caller: "0612345678".into(),
            callee: "+31615000001".into(),
            call_id: "c1".into(),
            offer: offer.as_bytes().to_vec(),
            sdp_session_id: 4242,
        };
        let (_events_tx, events) = mpsc::channel(4);
        (InboundCall::new(7, shared, offered, events), rx)
    }

    fn local(port: u16) -> LocalMedia {
        LocalMedia {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            ssrc: None,
        }
    }

    fn next(rx: &mut mpsc::Receiver<DriverCommand>) -> Command {
        match rx.try_recv() {
            Ok(DriverCommand::Core(command)) => command,
            Ok(_) => panic!("not a core command"),
            Err(e) => panic!("no command: {e}"),
        }
    }

    #[test]
    fn the_200_after_a_183_repeats_its_answer() {
        let (mut call, mut rx) = call(OFFER);
        let early = call.session_progress(local(30000)).expect("usable offer");
        assert_eq!(early.dtmf_payload_type, Some(96));
        let sdp_183 = match next(&mut rx) {
            Command::Progress(7, sdp) => sdp,
            other => panic!("{other:?}"),
        };
        let text = String::from_utf8_lossy(&sdp_183).into_owned();
        assert!(text.contains("o=dialcast 4242 1 "), "{text}");
        assert!(text.contains("m=audio 30000 RTP/AVP 8 96"), "{text}");
        // A second call resends the same 183.
        assert_eq!(call.session_progress(local(30002)).ok(), Some(early));
        assert!(matches!(next(&mut rx), Command::Progress(7, sdp) if sdp == sdp_183));
        // The answer is the one already given, whatever `local` says now.
        let answered = call.answer(local(30004)).expect("answer");
        assert_eq!(answered, early);
        match next(&mut rx) {
            Command::Answer(7, sdp, media) => {
                assert_eq!(sdp, sdp_183, "the 200 repeats the 183's SDP");
                assert_eq!(media, local(30000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(call.phase, Phase::Answered);
    }

    #[test]
    fn an_answer_without_a_183_uses_the_core_session_id() {
        let (mut call, mut rx) = call(OFFER);
        call.answer(local(30000)).expect("answer");
        match next(&mut rx) {
            Command::Answer(7, sdp, _) => {
                assert!(String::from_utf8_lossy(&sdp).contains("o=dialcast 4242 1 "));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unusable_offer_is_rejected_488_before_any_183() {
        let (mut call, mut rx) = call("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 18\r\n");
        assert!(matches!(
            call.session_progress(local(30000)),
            Err(SipError::Offer(_))
        ));
        assert!(matches!(next(&mut rx), Command::Reject(7, 488, None)));
        assert!(rx.try_recv().is_err(), "no 183");
        assert_eq!(call.phase, Phase::Ended);
    }

    #[test]
    fn reject_with_carries_the_retry_after() {
        let (mut call, mut rx) = call(OFFER);
        call.reject_with(480, Some(Duration::from_secs(60)))
            .expect("queued");
        assert!(matches!(
            next(&mut rx),
            Command::Reject(7, 480, Some(d)) if d == Duration::from_secs(60)
        ));
        let (mut call, mut rx) = self::call(OFFER);
        call.reject(486).expect("queued");
        assert!(matches!(next(&mut rx), Command::Reject(7, 486, None)));
    }
}
