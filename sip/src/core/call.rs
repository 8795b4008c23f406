//! One call's SIP state inside the core: the dialog (Call-ID, tags, route set,
//! remote target, CSeq), its INVITE transaction, the CANCEL/BYE in flight, and
//! the retransmission timers that belong to it. Also builds the requests that
//! live in the call: ACK, CANCEL, BYE.

use std::time::{Duration, Instant};

use rsipstack::sip::Method;

use super::msg::{new_branch, RequestBuilder};
use super::Peer;
use crate::sdp::LocalMedia;
use crate::uac::EndCause;
use crate::Transport;

/// A message that is resent until something stops it (RFC 3261 §17: Timers A,
/// E and G), with the time after which we give up (Timers B, F and H).
#[derive(Debug, Clone)]
pub struct Retransmit {
    pub bytes: Vec<u8>,
    pub to: Peer,
    /// Next resend; `None` on reliable transports (no resends, only the give-up).
    pub next: Option<Instant>,
    pub interval: Duration,
    /// Longest interval (T2 for non-INVITE requests and INVITE responses; none
    /// for INVITE requests, which double without cap).
    pub cap: Option<Duration>,
    pub give_up: Instant,
}

impl Retransmit {
    pub fn new(
        bytes: Vec<u8>,
        to: Peer,
        now: Instant,
        t1: Duration,
        cap: Option<Duration>,
    ) -> Self {
        let next = (to.transport == Transport::Udp).then(|| now + t1);
        Retransmit {
            bytes,
            to,
            next,
            interval: t1,
            cap,
            give_up: now + t1 * 64,
        }
    }

    pub fn deadline(&self) -> Instant {
        match self.next {
            Some(next) => next.min(self.give_up),
            None => self.give_up,
        }
    }

    /// Whether it is time to resend; advances the schedule when it is.
    pub fn due(&mut self, now: Instant) -> bool {
        match self.next {
            Some(next) if next <= now => {
                self.interval *= 2;
                if let Some(cap) = self.cap {
                    self.interval = self.interval.min(cap);
                }
                self.next = Some(now + self.interval);
                true
            }
            _ => false,
        }
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.give_up <= now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uac,
    Uas,
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// UAC: INVITE sent, no provisional yet. UAS: INVITE received, not answered.
    Setup,
    /// UAC: a provisional response arrived (CANCEL is allowed now).
    Proceeding,
    /// UAS: 2xx sent, waiting for the ACK.
    WaitAck,
    /// The dialog is up.
    Confirmed,
    /// We sent BYE and wait for its answer.
    Ending,
    /// Over; the record lingers to absorb retransmissions, then goes.
    Ended,
}

/// A call's CANCEL: wanted (no provisional yet) or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    None,
    Wanted,
    Sent,
}

/// Everything the core knows about one call.
#[derive(Debug)]
pub struct Call {
    pub role: Role,
    pub state: State,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// Our party as it appears in From (UAC) or To (UAS), tag included.
    pub local_party: String,
    /// The remote party as it appears in To (UAC) or From (UAS), without tag
    /// for a UAC until the answer brings one.
    pub remote_party: String,
    /// Request-URI of the INVITE (UAC).
    pub request_uri: String,
    /// Where in-dialog requests go (the remote Contact).
    pub remote_target: Option<String>,
    pub route_set: Vec<String>,
    /// Where we send: the trunk (UAC) or the INVITE's source (UAS).
    pub peer: Peer,
    pub local_cseq: u32,
    pub invite_cseq: u32,
    pub invite_branch: String,
    /// Headers of our INVITE after the Via..CSeq block, to rebuild it with auth.
    pub invite_tail: String,
    pub offer: Vec<u8>,
    pub local_media: Option<LocalMedia>,
    pub sdp_session_id: u64,
    pub sdp_version: u64,
    pub credential: Option<(String, String)>,
    pub auth_tries: u8,
    pub ring_deadline: Option<Instant>,
    pub cancel: Cancel,
    pub cancel_cause: Option<EndCause>,
    /// After our CANCEL: when we stop waiting for the INVITE's final response.
    pub cancel_deadline: Option<Instant>,
    pub invite_rtx: Option<Retransmit>,
    pub cancel_rtx: Option<Retransmit>,
    pub bye_rtx: Option<Retransmit>,
    pub bye_branch: Option<String>,
    /// Our REFER (RFC 3515), resent until a response.
    pub refer_rtx: Option<Retransmit>,
    pub refer_branch: Option<String>,
    /// UAS: our final response to the INVITE, resent until the ACK.
    pub response_rtx: Option<Retransmit>,
    /// UAS: the last response to the INVITE (resent on INVITE retransmissions).
    pub last_invite_response: Option<Vec<u8>>,
    /// UAS: our 2xx to a re-INVITE, resent until its ACK.
    pub reinvite_rtx: Option<(u32, Retransmit)>,
    /// UAC: the ACK we sent for the 2xx (resent when the 2xx is retransmitted),
    /// or for a non-2xx final response (same).
    pub ack: Option<(Vec<u8>, Peer)>,
    /// UAS: the INVITE as received (responses are built from it).
    pub invite: Option<super::msg::Incoming>,
    /// When the record may be forgotten (set once the call is over).
    pub linger_until: Option<Instant>,
    /// Generation of the timer entry in the core's heap.
    pub timer_gen: u64,
    pub timer_at: Option<Instant>,
}

impl Call {
    /// A call in `Setup` with nothing negotiated yet; the caller fills in the
    /// parties and what its direction needs.
    pub fn new(
        role: Role,
        call_id: String,
        local_tag: String,
        peer: Peer,
        invite_branch: String,
        invite_cseq: u32,
    ) -> Call {
        Call {
            role,
            state: State::Setup,
            call_id,
            local_tag,
            remote_tag: None,
            local_party: String::new(),
            remote_party: String::new(),
            request_uri: String::new(),
            remote_target: None,
            route_set: Vec::new(),
            peer,
            local_cseq: 0,
            invite_cseq,
            invite_branch,
            invite_tail: String::new(),
            offer: Vec::new(),
            local_media: None,
            sdp_session_id: 0,
            sdp_version: 1,
            credential: None,
            auth_tries: 0,
            ring_deadline: None,
            cancel: Cancel::None,
            cancel_cause: None,
            cancel_deadline: None,
            invite_rtx: None,
            cancel_rtx: None,
            bye_rtx: None,
            bye_branch: None,
            refer_rtx: None,
            refer_branch: None,
            response_rtx: None,
            last_invite_response: None,
            reinvite_rtx: None,
            ack: None,
            invite: None,
            linger_until: None,
            timer_gen: 0,
            timer_at: None,
        }
    }

    /// Frees what an ended call no longer needs while it lingers for
    /// retransmissions (its messages to resend are kept as bytes).
    pub fn compact(&mut self) {
        // Requests still in flight (a BYE) and answers to resend are kept as
        // bytes; nothing builds a new request for an ended call.
        self.local_party = String::new();
        self.remote_party = String::new();
        self.request_uri = String::new();
        self.remote_target = None;
        self.offer = Vec::new();
        self.invite_tail = String::new();
        self.invite = None;
        self.credential = None;
        self.route_set = Vec::new();
        self.local_media = None;
    }

    /// The earliest moment something must happen on this call.
    pub fn next_deadline(&self) -> Option<Instant> {
        let rtx = [
            &self.invite_rtx,
            &self.cancel_rtx,
            &self.bye_rtx,
            &self.refer_rtx,
            &self.response_rtx,
        ];
        let mut next = rtx
            .iter()
            .filter_map(|r| r.as_ref().map(Retransmit::deadline))
            .min();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.reinvite_rtx.as_ref().map(|(_, r)| r.deadline()));
        if matches!(self.state, State::Setup | State::Proceeding) && self.cancel == Cancel::None {
            consider(self.ring_deadline);
        }
        consider(self.cancel_deadline);
        consider(self.linger_until);
        next
    }

    /// Where to send an in-dialog request: the first route, else the peer we
    /// already talk to. (Trunks that Record-Route expect this; a Contact on
    /// another host without a route set is still reached through the trunk.)
    pub fn in_dialog_target(&self) -> &str {
        self.remote_target.as_deref().unwrap_or(&self.request_uri)
    }

    fn route_headers(&self, builder: RequestBuilder) -> RequestBuilder {
        let mut builder = builder;
        for route in &self.route_set {
            builder = builder.header("Route", route);
        }
        builder
    }

    /// ACK for a 2xx (its own transaction: new branch, to the remote target).
    pub fn ack_for_2xx(&self, local: &str, user_agent: &str) -> Vec<u8> {
        let builder = RequestBuilder::new(Method::Ack, self.in_dialog_target())
            .via(self.peer.transport.via_name(), local, &new_branch())
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .party("To", &self.remote_party, self.remote_tag.as_deref())
            .header("Call-ID", &self.call_id)
            .cseq(self.invite_cseq, &Method::Ack);
        self.route_headers(builder)
            .header("User-Agent", user_agent)
            .body(None, b"")
    }

    /// ACK for a 3xx-6xx (part of the INVITE transaction: same branch and URI).
    pub fn ack_for_failure(&self, local: &str, to_with_tag: &str) -> Vec<u8> {
        RequestBuilder::new(Method::Ack, &self.request_uri)
            .via(self.peer.transport.via_name(), local, &self.invite_branch)
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .header("To", to_with_tag)
            .header("Call-ID", &self.call_id)
            .cseq(self.invite_cseq, &Method::Ack)
            .body(None, b"")
    }

    /// CANCEL for our INVITE (same branch, URI, From, To and CSeq number).
    pub fn cancel_request(&self, local: &str) -> Vec<u8> {
        RequestBuilder::new(Method::Cancel, &self.request_uri)
            .via(self.peer.transport.via_name(), local, &self.invite_branch)
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .header("To", &self.remote_party)
            .header("Call-ID", &self.call_id)
            .cseq(self.invite_cseq, &Method::Cancel)
            .body(None, b"")
    }

    /// A new in-dialog request (BYE) with the next CSeq.
    pub fn in_dialog_request(
        &mut self,
        method: Method,
        local: &str,
        user_agent: &str,
    ) -> (String, Vec<u8>) {
        self.in_dialog_request_with(method, local, user_agent, &[])
    }

    /// An in-dialog request with `extra` headers after User-Agent.
    pub fn in_dialog_request_with(
        &mut self,
        method: Method,
        local: &str,
        user_agent: &str,
        extra: &[(&str, &str)],
    ) -> (String, Vec<u8>) {
        self.local_cseq += 1;
        let branch = new_branch();
        let builder = RequestBuilder::new(method, self.in_dialog_target())
            .via(self.peer.transport.via_name(), local, &branch)
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .party("To", &self.remote_party, self.remote_tag.as_deref())
            .header("Call-ID", &self.call_id)
            .cseq(self.local_cseq, &method);
        let mut builder = self.route_headers(builder).header("User-Agent", user_agent);
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        (branch, builder.body(None, b""))
    }

    /// The INVITE (first or re-sent with credentials).
    pub fn invite_request(&self, local: &str, authorization: Option<(&str, &str)>) -> Vec<u8> {
        let mut builder = RequestBuilder::new(Method::Invite, &self.request_uri)
            .via(self.peer.transport.via_name(), local, &self.invite_branch)
            .header("Max-Forwards", "70")
            .header("From", &self.local_party)
            .header("To", &self.remote_party)
            .header("Call-ID", &self.call_id)
            .cseq(self.invite_cseq, &Method::Invite);
        if let Some((name, value)) = authorization {
            builder = builder.header(name, value);
        }
        builder
            .raw(&self.invite_tail)
            .body(Some("application/sdp"), &self.offer)
    }
}
