//! The SIP core: RFC 3261 transactions and dialogs for every call of the process
//! as one sans-IO state machine. Inputs are parsed messages, commands from the
//! calls' owners and the clock; outputs are datagrams to send and events for the
//! calls. It owns no socket and reads no clock (`crate::driver` does both).
//!
//! Why our own and not rsipstack's transaction and dialog layers: measured on
//! this machine (2 cores, SIPp 3.6.1 UAS on loopback, `dialcast-loadtest dialer`,
//! 1,000 calls/s, 1 s hold), dialling through rsipstack 0.7.14's `DialogLayer`
//! cost 450 µs of CPU per call (410 µs on a single-threaded runtime) against
//! 76 µs for SIPp's own UAC, and 290 KB of memory per concurrent call; it spawns
//! a task and channels per transaction and clones whole messages at every step.
//! Parsing and printing a message with rsipstack's types costs about 2 µs, so we
//! keep those (and its digest computation) and drive the protocol here with one
//! timer heap and no task per call.
//!
//! What it covers: UAC INVITE with retransmission (Timer A/B), provisional
//! responses and early media, 2xx ACK (any 2xx; resent on retransmitted 2xx),
//! non-2xx ACK, digest auth on 401/407 (once per call), CANCEL after a
//! provisional (deferred until one arrives), BYE either way, REFER on an
//! answered outbound call (RFC 3515: resent until answered, its answer and
//! the sipfrag status of the NOTIFYs reported), and answers to in-dialog
//! re-INVITE/UPDATE/INFO/OPTIONS/NOTIFY/MESSAGE/REFER (an inbound REFER is
//! declined 603); UAS INVITE with
//! 100 Trying, 180, 183 with an SDP answer (early media; sent once, without
//! 100rel), 2xx resent until ACK (Timer G/H), rejection (with Retry-After if
//! asked), CANCEL → 487; out-of-dialog OPTIONS probes and answers. In-dialog
//! requests are sent to the peer the call already talks to (the trunk acts as
//! outbound proxy), with the remote Contact as Request-URI and the recorded
//! route set.

pub mod call;
pub mod fast;
pub mod msg;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

// FxHash where we choose the keys (call handles, our branches, keys that
// include our random tag): SipHash cost 1.4 % of the dialer's CPU (perf, 2,000
// calls/s). Maps keyed by what a peer chooses alone (the branch of a request it
// sends) keep std's SipHash, so crafted branches cannot flood them.
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsipstack::sip::Method;

use call::{Call, Cancel, Retransmit, Role, State};
use msg::{new_branch, reason, response, token, Incoming, Kind};

use crate::in_dialog::{dtmf_from_body, session_update, sipfrag_status, Update};
use crate::sdp::{self, LocalMedia};
use crate::status::CallStatus;
use crate::trunk::parse_retry_after;
use crate::uac::{CallEnd, CallEvent, EndCause};
use crate::uas::InboundEvent;
use crate::Transport;

/// Identifies a call between the core, the driver and the call's owner.
pub type CallHandle = u64;

/// A remote address and the transport to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// A message to send.
#[derive(Debug)]
pub struct Transmit {
    pub to: Peer,
    pub bytes: Vec<u8>,
}

/// What an outbound call needs from its owner.
#[derive(Debug, Clone)]
pub struct Dial {
    pub call_id: String,
    pub target_uri: String,
    pub peer: Peer,
    /// `<sip:user@host>` for From.
    pub from: String,
    pub extra_headers: Vec<(String, String)>,
    pub offer: Vec<u8>,
    pub local_media: LocalMedia,
    pub sdp_session_id: u64,
    pub credential: Option<(String, String)>,
    pub ring_timeout: Duration,
}

/// Commands from the calls' owners.
#[derive(Debug)]
pub enum Command {
    Dial(CallHandle, Box<Dial>),
    Hangup(CallHandle),
    Ringing(CallHandle),
    /// 183 Session Progress with this SDP answer (early media). Unreliable
    /// (no 100rel): sent once, repeated only to INVITE retransmissions.
    Progress(CallHandle, Vec<u8>),
    /// Answer an inbound call with this SDP.
    Answer(CallHandle, Vec<u8>, LocalMedia),
    /// A final 3xx-6xx, with a Retry-After header when the duration is set.
    Reject(CallHandle, u16, Option<Duration>),
    /// The owner is gone: end the call whatever its state.
    Forget(CallHandle),
    /// Ask the peer of an answered outbound call to call this URI instead
    /// (REFER, RFC 3515; the value of Refer-To).
    Refer(CallHandle, String),
    Options(u64, Peer),
}

/// A new inbound call.
#[derive(Debug, Clone)]
pub struct Offered {
    pub caller: String,
    pub callee: String,
    pub call_id: String,
    pub offer: Vec<u8>,
    /// The `o=` session id of our SDP answers: the core uses it for answers
    /// to re-INVITEs and UPDATEs, so the owner's first answer must too
    /// (RFC 3264 §8: only the version changes within a session).
    pub sdp_session_id: u64,
}

/// Events for the calls' owners.
#[derive(Debug)]
pub enum Event {
    Outbound(CallHandle, CallEvent),
    Offered(CallHandle, Offered),
    Inbound(CallHandle, InboundEvent),
    /// The answer to an OPTIONS probe: status and Retry-After, or `None` on timeout.
    Probe(u64, Option<(u16, Option<Duration>)>),
}

/// Timer values (RFC 3261 §17.1.1.1 and Table 4). T4 is not needed: ended
/// calls linger 64·T1, which covers Timer K and Timer I.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

/// Which client transaction a response belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientTx {
    Invite(CallHandle),
    Cancel(CallHandle),
    Bye(CallHandle),
    Refer(CallHandle),
    Probe(u64),
}

struct Probe {
    rtx: Retransmit,
}

/// What is left of an ended call once nothing of ours is in flight: the one
/// message to repeat if the peer retransmits into it, kept for the rest of
/// the call's 64·T1 (see [`SipCore::settle`]).
struct Tomb {
    role: Role,
    /// UAC: the ACK, repeated on a retransmitted final response to the
    /// INVITE. UAS: the final response, repeated on a retransmitted INVITE.
    repeat: Option<(Box<[u8]>, Peer)>,
}

/// A response we sent to a non-INVITE request, kept for its retransmissions.
struct Answered {
    bytes: Vec<u8>,
    to: Peer,
}

/// The state machine. See the module documentation.
pub struct SipCore {
    local: String,
    local_addr: SocketAddr,
    user_agent: String,
    timers: Timers,
    calls: FxHashMap<CallHandle, Call>,
    /// (Call-ID, local tag) → call, for in-dialog requests.
    dialogs: FxHashMap<(String, String), CallHandle>,
    /// Branch of our requests → transaction (CANCEL shares the INVITE's branch).
    client: FxHashMap<(String, bool), ClientTx>,
    /// Branch of received INVITEs → the UAS call.
    server_invites: HashMap<String, CallHandle>,
    /// Branch of answered non-INVITE requests → our response, for T1·64.
    answered: HashMap<String, Answered>,
    answered_order: VecDeque<(Instant, String)>,
    /// Ended calls by INVITE branch, and when each may go (in the order
    /// they ended; every call lingers equally long).
    tombs: FxHashMap<Box<str>, Tomb>,
    tomb_order: VecDeque<(Instant, Box<str>)>,
    probes: FxHashMap<u64, Probe>,
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_inbound_handle: CallHandle,
    /// Requests and final responses of calls resent by their timers (A, E,
    /// G and the like), since the start.
    retransmissions: u64,
}

/// Inbound handles count down from the top so they never meet the driver's
/// outbound handles, which count up from 1.
const FIRST_INBOUND_HANDLE: CallHandle = u64::MAX / 2;
/// Heap entries for probes carry this flag in the handle slot.
const PROBE_FLAG: u64 = 1 << 63;

impl SipCore {
    /// Messages of calls resent by their retransmission timers so far.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions
    }

    pub fn new(local_addr: SocketAddr, user_agent: String, timers: Timers) -> Self {
        SipCore {
            local: local_addr.to_string(),
            local_addr,
            user_agent,
            timers,
            calls: FxHashMap::default(),
            dialogs: FxHashMap::default(),
            client: FxHashMap::default(),
            server_invites: HashMap::default(),
            answered: HashMap::default(),
            answered_order: VecDeque::new(),
            tombs: FxHashMap::default(),
            tomb_order: VecDeque::new(),
            probes: FxHashMap::default(),
            heap: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_inbound_handle: FIRST_INBOUND_HANDLE,
            retransmissions: 0,
        }
    }

    /// Calls the core still holds (live ones and those lingering after the end).
    pub fn call_count(&self) -> usize {
        self.calls.len() + self.tombs.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must run next.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let heap = self.heap.peek().map(|Reverse((at, _, _))| *at);
        let answered = self.answered_order.front().map(|(at, _)| *at);
        let tomb = self.tomb_order.front().map(|(at, _)| *at);
        [heap, answered, tomb].into_iter().flatten().min()
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        self.transmits.push_back(Transmit { to, bytes });
    }

    fn contact(&self, transport: Transport) -> String {
        contact_for(&self.local, transport)
    }

    /// Re-arms the call's single heap entry when its next deadline moved.
    fn schedule(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let next = call.next_deadline();
        if next != call.timer_at {
            call.timer_gen += 1;
            call.timer_at = next;
            if let Some(at) = next {
                self.heap.push(Reverse((at, handle, call.timer_gen)));
            }
        }
    }

    // ---- commands -------------------------------------------------------

    pub fn handle_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Dial(handle, dial) => self.dial(handle, *dial, now),
            Command::Hangup(handle) => self.hangup(handle, EndCause::LocalCancel, now),
            Command::Forget(handle) => self.forget(handle, now),
            Command::Refer(handle, target) => self.send_refer(handle, &target, now),
            Command::Ringing(handle) => self.uas_provisional(handle, 180, b""),
            Command::Progress(handle, sdp) => self.uas_provisional(handle, 183, &sdp),
            Command::Answer(handle, sdp, local) => self.uas_answer(handle, sdp, local, now),
            Command::Reject(handle, code, retry_after) => {
                self.uas_reject_with(handle, code, retry_after, now)
            }
            Command::Options(id, peer) => self.probe(id, peer, now),
        }
    }

    fn dial(&mut self, handle: CallHandle, dial: Dial, now: Instant) {
        let local_tag = token(10);
        let mut tail = format!(
            "Contact: {}\r\nUser-Agent: {}\r\nAllow: {}\r\n",
            self.contact(dial.peer.transport),
            self.user_agent,
            crate::ALLOWED_METHODS
        );
        for (name, value) in &dial.extra_headers {
            tail.push_str(name);
            tail.push_str(": ");
            tail.push_str(value);
            tail.push_str("\r\n");
        }
        let mut call = Call::new(
            Role::Uac,
            dial.call_id,
            local_tag.clone(),
            dial.peer,
            new_branch(),
            1,
        );
        call.local_party = format!("{};tag={local_tag}", dial.from);
        call.remote_party = format!("<{}>", dial.target_uri);
        call.request_uri = dial.target_uri;
        call.local_cseq = 1;
        call.invite_tail = tail;
        call.offer = dial.offer;
        call.local_media = Some(dial.local_media);
        call.sdp_session_id = dial.sdp_session_id;
        call.credential = dial.credential;
        call.ring_deadline = Some(now + dial.ring_timeout);
        let bytes = call.invite_request(&self.local, None);
        call.invite_rtx = Some(Retransmit::new(
            bytes.clone(),
            call.peer,
            now,
            self.timers.t1,
            None,
        ));
        self.client.insert(
            (call.invite_branch.clone(), false),
            ClientTx::Invite(handle),
        );
        self.dialogs
            .insert((call.call_id.clone(), call.local_tag.clone()), handle);
        let peer = call.peer;
        self.calls.insert(handle, call);
        self.send(peer, bytes);
        self.schedule(handle);
    }

    /// Our side ends the call: CANCEL before the answer, BYE after it.
    fn hangup(&mut self, handle: CallHandle, cause: EndCause, now: Instant) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        match (call.role, call.state) {
            (Role::Uac, State::Setup | State::Proceeding) => self.cancel(handle, cause, now),
            (Role::Uas, State::Setup) => self.uas_reject(handle, 480, now),
            (_, State::WaitAck | State::Confirmed) => self.send_bye(handle, now),
            _ => {}
        }
    }

    /// The owner dropped its handle: end the call whatever its state.
    fn forget(&mut self, handle: CallHandle, now: Instant) {
        self.hangup(handle, EndCause::LocalCancel, now);
    }

    fn cancel(&mut self, handle: CallHandle, cause: EndCause, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.cancel != Cancel::None {
            return;
        }
        call.cancel_cause = Some(cause);
        if call.state == State::Setup {
            // RFC 3261 §9.1: no CANCEL before a provisional response.
            call.cancel = Cancel::Wanted;
            self.schedule(handle);
            return;
        }
        self.send_cancel(handle, now);
    }

    fn send_cancel(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let bytes = call.cancel_request(&self.local);
        call.cancel = Cancel::Sent;
        call.cancel_rtx = Some(Retransmit::new(
            bytes.clone(),
            call.peer,
            now,
            self.timers.t1,
            Some(self.timers.t2),
        ));
        call.cancel_deadline = Some(now + self.timers.t1 * 64);
        let peer = call.peer;
        self.client
            .insert((call.invite_branch.clone(), true), ClientTx::Cancel(handle));
        self.send(peer, bytes);
        self.schedule(handle);
    }

    fn send_bye(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let (branch, bytes) = call.in_dialog_request(Method::Bye, &self.local, &self.user_agent);
        call.state = State::Ending;
        call.response_rtx = None;
        call.bye_rtx = Some(Retransmit::new(
            bytes.clone(),
            call.peer,
            now,
            self.timers.t1,
            Some(self.timers.t2),
        ));
        call.bye_branch = Some(branch.clone());
        let peer = call.peer;
        self.client.insert((branch, false), ClientTx::Bye(handle));
        self.send(peer, bytes);
        self.schedule(handle);
    }

    /// REFER (RFC 3515) on an answered outbound call, with Refer-To,
    /// Referred-By and a Contact (a REFER sets up an implicit
    /// subscription); the answer and the NOTIFYs come back as
    /// [`CallEvent::Refer`]. In any other state, or with a REFER still
    /// unanswered, nothing is sent and the owner hears 481 at once.
    fn send_refer(&mut self, handle: CallHandle, target: &str, now: Instant) {
        let contact = match self.calls.get(&handle) {
            Some(call) => contact_for(&self.local, call.peer.transport),
            None => return,
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.role != Role::Uac || call.state != State::Confirmed || call.refer_rtx.is_some() {
            self.events.push_back(Event::Outbound(
                handle,
                CallEvent::Refer {
                    code: 481,
                    notify: false,
                },
            ));
            return;
        }
        let refer_to = format!("<{target}>");
        // Our From without its dialog tag (RFC 3892: Referred-By names the referrer).
        let referred_by = call
            .local_party
            .split(";tag=")
            .next()
            .unwrap_or_default()
            .to_string();
        let (branch, bytes) = call.in_dialog_request_with(
            Method::Refer,
            &self.local,
            &self.user_agent,
            &[
                ("Contact", &contact),
                ("Refer-To", &refer_to),
                ("Referred-By", &referred_by),
            ],
        );
        call.refer_rtx = Some(Retransmit::new(
            bytes.clone(),
            call.peer,
            now,
            self.timers.t1,
            Some(self.timers.t2),
        ));
        call.refer_branch = Some(branch.clone());
        let peer = call.peer;
        self.client.insert((branch, false), ClientTx::Refer(handle));
        self.send(peer, bytes);
        self.schedule(handle);
    }

    fn probe(&mut self, id: u64, peer: Peer, now: Instant) {
        let branch = new_branch();
        let uri = match peer.transport {
            Transport::Udp => format!("sip:{}", peer.addr),
            Transport::Tcp => format!("sip:{};transport=tcp", peer.addr),
        };
        let bytes = msg::RequestBuilder::new(Method::Options, &uri)
            .header(
                "Via",
                &format!(
                    "SIP/2.0/{} {};branch={branch};rport",
                    peer.transport.via_name(),
                    self.local
                ),
            )
            .header("Max-Forwards", "70")
            .header(
                "From",
                &format!("<sip:dialcast@{}>;tag={}", self.local, token(10)),
            )
            .header("To", &format!("<{uri}>"))
            .header("Call-ID", &format!("{}@dialcast", token(20)))
            .header("CSeq", "1 OPTIONS")
            .header("User-Agent", &self.user_agent)
            .header("Accept", "application/sdp")
            .body(None, b"");
        let rtx = Retransmit::new(
            bytes.clone(),
            peer,
            now,
            self.timers.t1,
            Some(self.timers.t2),
        );
        let deadline = rtx.deadline();
        self.probes.insert(id, Probe { rtx });
        self.client.insert((branch, false), ClientTx::Probe(id));
        self.heap.push(Reverse((deadline, id | PROBE_FLAG, 0)));
        self.send(peer, bytes);
    }

    // ---- timers ---------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, branch)) = self.answered_order.front() {
            if *at > now {
                break;
            }
            self.answered.remove(branch);
            self.answered_order.pop_front();
        }
        while let Some((at, branch)) = self.tomb_order.front() {
            if *at > now {
                break;
            }
            self.tombs.remove(branch);
            self.tomb_order.pop_front();
        }
        while let Some(Reverse((at, handle, gen))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            if handle & PROBE_FLAG != 0 {
                self.probe_timer(handle & !PROBE_FLAG, now);
                continue;
            }
            let current = self.calls.get(&handle).map(|c| c.timer_gen);
            if current == Some(gen) {
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.timer_at = None;
                }
                self.call_timer(handle, now);
                self.schedule(handle);
            }
        }
    }

    fn probe_timer(&mut self, id: u64, now: Instant) {
        let Some(probe) = self.probes.get_mut(&id) else {
            return;
        };
        if probe.rtx.expired(now) {
            self.probes.remove(&id);
            self.events.push_back(Event::Probe(id, None));
            return;
        }
        if probe.rtx.due(now) {
            let (to, bytes) = (probe.rtx.to, probe.rtx.bytes.clone());
            let next = probe.rtx.deadline();
            self.send(to, bytes);
            self.heap.push(Reverse((next, id | PROBE_FLAG, 0)));
        } else {
            let next = probe.rtx.deadline();
            self.heap.push(Reverse((next, id | PROBE_FLAG, 0)));
        }
    }

    fn call_timer(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.linger_until.is_some_and(|t| t <= now) {
            self.remove(handle);
            return;
        }
        let mut resend: Vec<(Peer, Vec<u8>)> = Vec::new();
        let mut failure: Option<CallEnd> = None;
        let mut want_cancel = false;
        let mut want_bye = false;
        let mut bye_done = false;

        if let Some(rtx) = call.invite_rtx.as_mut() {
            if rtx.expired(now) {
                // Timer B: no response at all.
                call.invite_rtx = None;
                failure = Some(local_end(CallStatus::Failed, 408, EndCause::Timeout));
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        if let Some(rtx) = call.cancel_rtx.as_mut() {
            if rtx.expired(now) {
                call.cancel_rtx = None;
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        if call.cancel_deadline.is_some_and(|t| t <= now) && failure.is_none() {
            // No final response after our CANCEL: the INVITE is given up.
            call.cancel_deadline = None;
            let cause = call.cancel_cause.clone().unwrap_or(EndCause::LocalCancel);
            failure = Some(local_end(CallStatus::NoAnswer, 487, cause));
        }
        if let Some(rtx) = call.bye_rtx.as_mut() {
            if rtx.expired(now) {
                call.bye_rtx = None;
                bye_done = true;
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        let mut refer_timed_out = false;
        if let Some(rtx) = call.refer_rtx.as_mut() {
            if rtx.expired(now) {
                // Timer F: no answer to our REFER.
                call.refer_rtx = None;
                refer_timed_out = true;
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        if let Some(rtx) = call.response_rtx.as_mut() {
            if rtx.expired(now) {
                // Timer H: our final response was never ACKed.
                call.response_rtx = None;
                if call.state == State::WaitAck {
                    want_bye = true;
                }
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        if let Some((_, rtx)) = call.reinvite_rtx.as_mut() {
            if rtx.expired(now) {
                call.reinvite_rtx = None;
            } else if rtx.due(now) {
                resend.push((rtx.to, rtx.bytes.clone()));
            }
        }
        if matches!(call.state, State::Setup | State::Proceeding)
            && call.role == Role::Uac
            && call.cancel == Cancel::None
            && call.ring_deadline.is_some_and(|t| t <= now)
        {
            call.ring_deadline = None;
            want_cancel = true;
        }
        let role = call.role;
        self.retransmissions += resend.len() as u64;
        for (to, bytes) in resend {
            self.send(to, bytes);
        }
        if refer_timed_out {
            self.events.push_back(Event::Outbound(
                handle,
                CallEvent::Refer {
                    code: 408,
                    notify: false,
                },
            ));
        }
        if let Some(end) = failure {
            self.finish(handle, end, now);
            return;
        }
        if want_cancel {
            self.cancel(handle, EndCause::RingTimeout, now);
        }
        if want_bye {
            self.send_bye(handle, now);
            self.end_inbound_or_outbound(handle, role, EndCause::Timeout, now);
        }
        if bye_done {
            self.end_after_bye(handle, now);
        }
        self.settle(handle);
    }

    // ---- incoming messages ---------------------------------------------

    /// Feeds one validated incoming message received from `from`.
    pub fn handle_message(&mut self, message: Incoming, from: Peer, now: Instant) {
        match message.kind.clone() {
            Kind::Response { code } => self.on_response(message, code, now),
            Kind::Request { method, .. } => self.on_request(message, method, from, now),
        }
    }

    fn on_response(&mut self, resp: Incoming, code: u16, now: Instant) {
        let is_cancel = resp.cseq_method == Method::Cancel;
        let Some(tx) = self.client.get(&(resp.branch.clone(), is_cancel)).copied() else {
            // A final response to the INVITE of an ended call: its ACK was
            // lost, so repeat it. Anything else is stray or late.
            if resp.cseq_method == Method::Invite && code >= 200 {
                self.repeat_from_tomb(&resp.branch, Role::Uac, None);
            }
            return;
        };
        match tx {
            ClientTx::Invite(handle) if resp.cseq_method == Method::Invite => {
                self.on_invite_response(handle, resp, code, now)
            }
            ClientTx::Cancel(handle) => {
                if code >= 200 {
                    if let Some(call) = self.calls.get_mut(&handle) {
                        call.cancel_rtx = None;
                    }
                    self.schedule(handle);
                    self.settle(handle);
                }
            }
            ClientTx::Bye(handle) => {
                if code >= 200 {
                    if let Some(call) = self.calls.get_mut(&handle) {
                        call.bye_rtx = None;
                    }
                    self.end_after_bye(handle, now);
                    self.settle(handle);
                } else if let Some(rtx) =
                    self.calls.get_mut(&handle).and_then(|c| c.bye_rtx.as_mut())
                {
                    // Provisional: stop resending, keep waiting (Timer F still runs).
                    rtx.next = None;
                }
            }
            ClientTx::Refer(handle) => {
                if code >= 200 {
                    self.client.remove(&(resp.branch.clone(), false));
                    if let Some(call) = self.calls.get_mut(&handle) {
                        call.refer_rtx = None;
                        call.refer_branch = None;
                    }
                    self.events.push_back(Event::Outbound(
                        handle,
                        CallEvent::Refer {
                            code,
                            notify: false,
                        },
                    ));
                    self.settle(handle);
                } else if let Some(rtx) = self
                    .calls
                    .get_mut(&handle)
                    .and_then(|c| c.refer_rtx.as_mut())
                {
                    rtx.next = None;
                }
            }
            ClientTx::Probe(id) => {
                if code >= 200 {
                    self.client.remove(&(resp.branch.clone(), false));
                    if self.probes.remove(&id).is_some() {
                        let retry = resp.retry_after.as_deref().and_then(parse_retry_after);
                        self.events.push_back(Event::Probe(id, Some((code, retry))));
                    }
                }
            }
            ClientTx::Invite(_) => {}
        }
    }

    fn on_invite_response(&mut self, handle: CallHandle, resp: Incoming, code: u16, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if resp.cseq != call.invite_cseq {
            return; // a response to the INVITE we replaced after a challenge
        }
        match code {
            100..=199 => {
                if !matches!(call.state, State::Setup | State::Proceeding) {
                    return;
                }
                if let Some(rtx) = call.invite_rtx.as_mut() {
                    // Proceeding: no more resends and no Timer B (§17.1.1.2).
                    rtx.next = None;
                    rtx.give_up = now + Duration::from_secs(24 * 3600);
                }
                call.state = State::Proceeding;
                if let Some(tag) = &resp.to_tag {
                    call.remote_tag.get_or_insert_with(|| tag.clone());
                }
                let wanted = call.cancel == Cancel::Wanted;
                self.events
                    .push_back(Event::Outbound(handle, CallEvent::Progress { code }));
                if resp.has_body() {
                    match sdp::parse_answer(&resp.body) {
                        Ok(media) => self
                            .events
                            .push_back(Event::Outbound(handle, CallEvent::EarlyMedia(media))),
                        Err(e) => {
                            tracing::debug!(error = %e, "unusable SDP in a provisional response")
                        }
                    }
                }
                if wanted {
                    self.send_cancel(handle, now);
                }
                self.schedule(handle);
            }
            200..=299 => {
                if let Some((ack, to)) = call.ack.clone() {
                    // A retransmitted 2xx: ACK it again.
                    self.send(to, ack);
                    return;
                }
                call.invite_rtx = None;
                call.cancel_rtx = None;
                call.cancel_deadline = None;
                call.remote_tag = resp.to_tag.clone();
                call.remote_target = resp.contact.clone();
                call.route_set = resp.record_route.iter().rev().cloned().collect();
                let ack = call.ack_for_2xx(&self.local, &self.user_agent);
                let peer = call.peer;
                call.ack = Some((ack.clone(), peer));
                call.state = State::Confirmed;
                let cancelled = call.cancel != Cancel::None;
                self.dialogs
                    .insert((call.call_id.clone(), call.local_tag.clone()), handle);
                self.send(peer, ack);
                let media = if resp.has_body() {
                    sdp::parse_answer(&resp.body)
                        .map_err(|e| tracing::debug!(error = %e, "unusable SDP in the answer"))
                        .ok()
                } else {
                    None
                };
                self.events
                    .push_back(Event::Outbound(handle, CallEvent::Answered(media)));
                if cancelled {
                    // The 2xx crossed our CANCEL: the call is up, so end it (§9.1).
                    self.send_bye(handle, now);
                }
                self.schedule(handle);
            }
            _ => {
                let to_with_tag = resp.to.clone();
                if let Some((ack, to)) = call.ack.clone() {
                    self.send(to, ack);
                    return;
                }
                let ack = call.ack_for_failure(&self.local, &to_with_tag);
                let peer = call.peer;
                self.send(peer, ack.clone());
                let Some(call) = self.calls.get_mut(&handle) else {
                    return;
                };
                let challenged = matches!(code, 401 | 407)
                    && call.auth_tries == 0
                    && call.cancel == Cancel::None
                    && call.credential.is_some()
                    && resp.challenge.is_some();
                if challenged {
                    if let Some(authorization) = authorize(call, &resp) {
                        call.auth_tries += 1;
                        call.invite_cseq += 1;
                        call.local_cseq = call.invite_cseq;
                        let old_branch = std::mem::replace(&mut call.invite_branch, new_branch());
                        call.state = State::Setup;
                        call.remote_tag = None;
                        let name = if code == 407 {
                            "Proxy-Authorization"
                        } else {
                            "Authorization"
                        };
                        let bytes = call.invite_request(&self.local, Some((name, &authorization)));
                        call.invite_rtx = Some(Retransmit::new(
                            bytes.clone(),
                            peer,
                            now,
                            self.timers.t1,
                            None,
                        ));
                        let branch = call.invite_branch.clone();
                        self.client.remove(&(old_branch, false));
                        self.client
                            .insert((branch, false), ClientTx::Invite(handle));
                        self.send(peer, bytes);
                        self.schedule(handle);
                        return;
                    }
                }
                call.ack = Some((ack, peer));
                call.invite_rtx = None;
                let cause = match (code, call.cancel_cause.clone()) {
                    (487, Some(cause)) => cause,
                    _ => EndCause::FinalResponse,
                };
                let end = CallEnd {
                    status: CallStatus::from_final_response(code),
                    sip_code: code,
                    cause,
                    retry_after: resp.retry_after.as_deref().and_then(parse_retry_after),
                    from_network: true,
                    detail: None,
                };
                self.finish(handle, end, now);
            }
        }
    }

    fn on_request(&mut self, req: Incoming, method: Method, from: Peer, now: Instant) {
        // A retransmission of a non-INVITE request we answered.
        if method != Method::Ack && method != Method::Invite {
            if let Some(answered) = self.answered.get(&req.branch) {
                let (to, bytes) = (answered.to, answered.bytes.clone());
                self.send(to, bytes);
                return;
            }
        }
        match method {
            Method::Invite => {
                if let Some(&handle) = self.server_invites.get(&req.branch) {
                    // Retransmitted INVITE: repeat our last response.
                    if let Some(bytes) = self
                        .calls
                        .get(&handle)
                        .and_then(|c| c.last_invite_response.clone())
                    {
                        self.send(from, bytes);
                    }
                    return;
                }
                if self.repeat_from_tomb(&req.branch, Role::Uas, Some(from)) {
                    return;
                }
                if req.to_tag.is_some() {
                    self.in_dialog(req, method, from, now);
                } else {
                    self.new_inbound(req, from, now);
                }
            }
            Method::Ack => self.on_ack(req, now),
            Method::Cancel => self.on_cancel(req, from, now),
            _ if req.to_tag.is_some() => self.in_dialog(req, method, from, now),
            Method::Options => {
                let allow = crate::ALLOWED_METHODS;
                let bytes = response(
                    &req,
                    200,
                    "OK",
                    Some(&token(10)),
                    &[
                        ("Allow", allow),
                        ("Accept", "application/sdp"),
                        ("User-Agent", &self.user_agent),
                    ],
                    None,
                    b"",
                );
                self.remember_answer(&req.branch, from, bytes, now);
            }
            Method::Bye => {
                let bytes = response(&req, 481, reason(481), None, &[], None, b"");
                self.remember_answer(&req.branch, from, bytes, now);
            }
            _ => {
                let bytes = response(
                    &req,
                    405,
                    reason(405),
                    Some(&token(10)),
                    &[("Allow", crate::ALLOWED_METHODS)],
                    None,
                    b"",
                );
                self.remember_answer(&req.branch, from, bytes, now);
            }
        }
    }

    /// Sends a response to a non-INVITE request and keeps it for the request's
    /// retransmissions (Timer J/K: 64·T1 on UDP).
    fn remember_answer(&mut self, branch: &str, to: Peer, bytes: Vec<u8>, now: Instant) {
        if to.transport == Transport::Udp && !branch.is_empty() {
            self.answered.insert(
                branch.to_string(),
                Answered {
                    bytes: bytes.clone(),
                    to,
                },
            );
            self.answered_order
                .push_back((now + self.timers.t1 * 64, branch.to_string()));
        }
        self.send(to, bytes);
    }

    fn new_inbound(&mut self, req: Incoming, from: Peer, now: Instant) {
        let handle = self.next_inbound_handle;
        self.next_inbound_handle -= 1;
        let local_tag = token(10);
        let user_of = |value: &str| -> String {
            let uri = msg::uri_of(value).unwrap_or_default();
            let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
            match rest.split_once('@') {
                Some((user, _)) => user.to_string(),
                None => rest.split(';').next().unwrap_or(rest).to_string(),
            }
        };
        let offered = Offered {
            caller: user_of(&req.from),
            callee: user_of(&req.to),
            call_id: req.call_id.clone(),
            offer: req.body.clone(),
            sdp_session_id: u64::from(rand::random::<u32>()),
        };
        let trying = response(&req, 100, "Trying", None, &[], None, b"");
        let mut call = Call::new(
            Role::Uas,
            req.call_id.clone(),
            local_tag.clone(),
            from,
            req.branch.clone(),
            req.cseq,
        );
        call.local_party = msg::with_tag(&req.to, &local_tag);
        call.remote_tag = Some(req.from_tag.clone());
        call.remote_party = req.from.clone();
        if let Kind::Request { uri, .. } = &req.kind {
            call.request_uri = uri.clone();
        }
        call.remote_target = req.contact.clone();
        call.route_set = req.record_route.clone();
        call.offer = req.body.clone();
        call.sdp_session_id = offered.sdp_session_id;
        call.last_invite_response = Some(trying.clone());
        call.invite = Some(req);
        self.server_invites
            .insert(call.invite_branch.clone(), handle);
        self.dialogs
            .insert((call.call_id.clone(), local_tag), handle);
        self.calls.insert(handle, call);
        self.send(from, trying);
        self.events.push_back(Event::Offered(handle, offered));
        let _ = now;
    }

    /// Sends a provisional response to an unanswered inbound INVITE, with an
    /// SDP body when `sdp` is not empty (183 early media). Not resent on a
    /// timer (RFC 3261 §13.3.1.1 leaves that to 100rel, which we do not
    /// offer); an INVITE retransmission gets it again.
    fn uas_provisional(&mut self, handle: CallHandle, code: u16, sdp: &[u8]) {
        let contact = self.contact(Transport::Udp);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.role != Role::Uas || call.state != State::Setup {
            return;
        }
        let Some(invite) = call.invite.as_ref() else {
            return;
        };
        let contact = if call.peer.transport == Transport::Tcp {
            format!("<sip:dialcast@{};transport=tcp>", self.local)
        } else {
            contact
        };
        let bytes = response(
            invite,
            code,
            reason(code),
            Some(&call.local_tag),
            &[("Contact", &contact)],
            (!sdp.is_empty()).then_some("application/sdp"),
            sdp,
        );
        call.last_invite_response = Some(bytes.clone());
        let peer = call.peer;
        self.send(peer, bytes);
    }

    fn uas_answer(&mut self, handle: CallHandle, sdp: Vec<u8>, local: LocalMedia, now: Instant) {
        let transport = self
            .calls
            .get(&handle)
            .map_or(Transport::Udp, |c| c.peer.transport);
        let contact = self.contact(transport);
        let user_agent = self.user_agent.clone();
        let extra = [
            ("Contact", contact.as_str()),
            ("Allow", crate::ALLOWED_METHODS),
            ("User-Agent", user_agent.as_str()),
        ];
        if self.uas_final(handle, 200, &extra, Some("application/sdp"), &sdp, now) {
            if let Some(call) = self.calls.get_mut(&handle) {
                call.local_media = Some(local);
                call.state = State::WaitAck;
            }
            self.schedule(handle);
        }
    }

    fn uas_reject(&mut self, handle: CallHandle, code: u16, now: Instant) {
        self.uas_reject_with(handle, code, None, now);
    }

    /// A final 3xx-6xx, resent until its ACK. `retry_after` becomes a
    /// Retry-After header in whole seconds, rounded up (RFC 3261 §20.33).
    fn uas_reject_with(
        &mut self,
        handle: CallHandle,
        code: u16,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let seconds =
            retry_after.map(|d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).to_string());
        let header = seconds.as_deref().map(|v| [("Retry-After", v)]);
        let extra: &[(&str, &str)] = header.as_ref().map_or(&[], |h| h.as_slice());
        if self.uas_final(handle, code, extra, None, b"", now) {
            if let Some(call) = self.calls.get_mut(&handle) {
                call.state = State::Ended;
                call.linger_until = Some(now + self.timers.t1 * 64);
                call.compact();
            }
            self.schedule(handle);
        }
    }

    /// Sends the final response to an unanswered inbound INVITE and keeps
    /// resending it until the ACK (Timer G, capped at T2; Timer H gives up).
    /// Returns false when the call is not an unanswered inbound one.
    fn uas_final(
        &mut self,
        handle: CallHandle,
        code: u16,
        extra: &[(&str, &str)],
        content_type: Option<&str>,
        body: &[u8],
        now: Instant,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        if call.role != Role::Uas || call.state != State::Setup {
            return false;
        }
        let Some(invite) = call.invite.as_ref() else {
            return false;
        };
        let bytes = response(
            invite,
            code,
            reason(code),
            Some(&call.local_tag),
            extra,
            content_type,
            body,
        );
        call.last_invite_response = Some(bytes.clone());
        call.response_rtx = Some(Retransmit::new(
            bytes.clone(),
            call.peer,
            now,
            self.timers.t1,
            Some(self.timers.t2),
        ));
        let peer = call.peer;
        self.send(peer, bytes);
        true
    }

    fn on_ack(&mut self, req: Incoming, now: Instant) {
        // ACK for a non-2xx final response: same branch as the INVITE.
        if let Some(&handle) = self.server_invites.get(&req.branch) {
            if let Some(call) = self.calls.get_mut(&handle) {
                if call.state == State::Ended {
                    call.response_rtx = None;
                    self.schedule(handle);
                    self.settle(handle);
                    return;
                }
            }
        }
        if self
            .tombs
            .get(req.branch.as_str())
            .is_some_and(|t| t.role == Role::Uas)
        {
            return; // the ACK of a retransmitted final response
        }
        let Some(tag) = req.to_tag.clone() else {
            return;
        };
        let Some(&handle) = self.dialogs.get(&(req.call_id.clone(), tag)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if let Some((cseq, _)) = &call.reinvite_rtx {
            if *cseq == req.cseq {
                call.reinvite_rtx = None;
                self.schedule(handle);
                return;
            }
        }
        if call.state == State::WaitAck && req.cseq == call.invite_cseq {
            call.response_rtx = None;
            call.state = State::Confirmed;
            self.events
                .push_back(Event::Inbound(handle, InboundEvent::Confirmed));
            self.schedule(handle);
        }
        let _ = now;
    }

    fn on_cancel(&mut self, req: Incoming, from: Peer, now: Instant) {
        let ok = response(&req, 200, "OK", None, &[], None, b"");
        let Some(&handle) = self.server_invites.get(&req.branch) else {
            // An ended call's INVITE transaction still exists (RFC 3261
            // §9.2: the CANCEL gets 200 and has no effect); else 481.
            let code = if self
                .tombs
                .get(req.branch.as_str())
                .is_some_and(|t| t.role == Role::Uas)
            {
                200
            } else {
                481
            };
            let bytes = response(&req, code, reason(code), None, &[], None, b"");
            self.remember_answer(&format!("{}:cancel", req.branch), from, bytes, now);
            return;
        };
        // The CANCEL has the INVITE's branch: remember the answer under a key
        // of its own so an INVITE retransmission is not answered with it.
        self.remember_answer(&format!("{}:cancel", req.branch), from, ok.clone(), now);
        let still_pending = self
            .calls
            .get(&handle)
            .is_some_and(|c| c.state == State::Setup);
        if still_pending {
            self.uas_reject(handle, 487, now);
            self.events.push_back(Event::Inbound(
                handle,
                InboundEvent::Ended(EndCause::RemoteHangup),
            ));
        }
    }

    /// A request inside an existing dialog (BYE, re-INVITE, UPDATE, INFO, ...).
    fn in_dialog(&mut self, req: Incoming, method: Method, from: Peer, now: Instant) {
        let key = (req.call_id.clone(), req.to_tag.clone().unwrap_or_default());
        let Some(&handle) = self.dialogs.get(&key) else {
            let bytes = response(&req, 481, reason(481), None, &[], None, b"");
            if method == Method::Invite {
                self.send(from, bytes);
            } else {
                self.remember_answer(&req.branch, from, bytes, now);
            }
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let role = call.role;
        if call.state == State::Ended && method != Method::Bye {
            // The dialog is over; only BYE retransmissions are still answered.
            let bytes = response(&req, 481, reason(481), None, &[], None, b"");
            self.remember_answer(&req.branch, from, bytes, now);
            return;
        }
        if method == Method::Bye {
            let ok = response(&req, 200, "OK", None, &[], None, b"");
            let live = matches!(
                call.state,
                State::Confirmed | State::WaitAck | State::Ending | State::Proceeding
            );
            self.remember_answer(&req.branch, from, ok, now);
            if live {
                self.end_inbound_or_outbound(handle, role, EndCause::RemoteHangup, now);
            }
            return;
        }
        let local = call.local_media.unwrap_or(LocalMedia {
            ip: self.local_addr.ip(),
            port: 9,
            ssrc: None,
        });
        call.sdp_version += 1;
        let (session_id, version) = (call.sdp_session_id, call.sdp_version);
        let contact = contact_for(&self.local, call.peer.transport);
        let (code, body, update) = match method {
            Method::Invite | Method::Update => {
                session_update(method, &req.body, &local, session_id, version)
            }
            Method::Info => (
                200,
                None,
                dtmf_from_body(req.content_type.as_deref(), &req.body)
                    .map_or(Update::None, Update::Dtmf),
            ),
            Method::Notify => (
                200,
                None,
                sipfrag_status(req.content_type.as_deref(), &req.body)
                    .map_or(Update::None, Update::TransferStatus),
            ),
            Method::Options | Method::Message => (200, None, Update::None),
            Method::Refer => (603, None, Update::None),
            _ => (405, None, Update::None),
        };
        let mut extra: Vec<(&str, &str)> = vec![("User-Agent", &self.user_agent)];
        if method == Method::Invite || method == Method::Update {
            extra.push(("Contact", &contact));
        }
        if code == 405 || method == Method::Options {
            extra.push(("Allow", crate::ALLOWED_METHODS));
        }
        let content_type = body.as_ref().map(|_| "application/sdp");
        let bytes = response(
            &req,
            code,
            reason(code),
            None,
            &extra,
            content_type,
            body.as_deref().unwrap_or_default(),
        );
        if method == Method::Invite {
            if code == 200 {
                let rtx = Retransmit::new(
                    bytes.clone(),
                    from,
                    now,
                    self.timers.t1,
                    Some(self.timers.t2),
                );
                if let Some(call) = self.calls.get_mut(&handle) {
                    call.reinvite_rtx = Some((req.cseq, rtx));
                }
            }
            self.send(from, bytes);
            self.schedule(handle);
        } else {
            self.remember_answer(&req.branch, from, bytes, now);
        }
        match update {
            Update::Media(media) => self.push_call_event(
                handle,
                role,
                CallEvent::MediaUpdated(media),
                InboundEvent::MediaUpdated(media),
            ),
            Update::Dtmf(d) => self.push_call_event(
                handle,
                role,
                CallEvent::InfoDtmf(d),
                InboundEvent::InfoDtmf(d),
            ),
            // Only our REFERs are followed; inbound calls never send one.
            Update::TransferStatus(code) if role == Role::Uac => self.events.push_back(
                Event::Outbound(handle, CallEvent::Refer { code, notify: true }),
            ),
            Update::TransferStatus(_) | Update::None => {}
        }
    }

    fn push_call_event(
        &mut self,
        handle: CallHandle,
        role: Role,
        out: CallEvent,
        inbound: InboundEvent,
    ) {
        self.events.push_back(match role {
            Role::Uac => Event::Outbound(handle, out),
            Role::Uas => Event::Inbound(handle, inbound),
        });
    }

    // ---- ending ---------------------------------------------------------

    fn end_after_bye(&mut self, handle: CallHandle, now: Instant) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.state == State::Ending {
            let role = call.role;
            self.end_inbound_or_outbound(handle, role, EndCause::LocalHangup, now);
        }
    }

    fn end_inbound_or_outbound(
        &mut self,
        handle: CallHandle,
        role: Role,
        cause: EndCause,
        now: Instant,
    ) {
        match role {
            Role::Uac => self.finish(
                handle,
                CallEnd {
                    status: CallStatus::Answered,
                    sip_code: 200,
                    cause,
                    retry_after: None,
                    from_network: true,
                    detail: None,
                },
                now,
            ),
            Role::Uas => {
                if let Some(call) = self.calls.get_mut(&handle) {
                    if call.linger_until.is_some() {
                        return;
                    }
                    call.state = State::Ended;
                    call.linger_until = Some(now + self.timers.t1 * 64);
                    call.compact();
                }
                self.events
                    .push_back(Event::Inbound(handle, InboundEvent::Ended(cause)));
                self.schedule(handle);
                self.settle(handle);
            }
        }
    }

    /// Ends an outbound call with `end` (once) and lets its record linger.
    fn finish(&mut self, handle: CallHandle, end: CallEnd, now: Instant) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.linger_until.is_some() {
            return;
        }
        call.state = State::Ended;
        call.invite_rtx = None;
        call.cancel_deadline = None;
        call.response_rtx = None;
        call.linger_until = Some(now + self.timers.t1 * 64);
        call.compact();
        self.events
            .push_back(Event::Outbound(handle, CallEvent::Ended(end)));
        self.schedule(handle);
        self.settle(handle);
    }

    /// Replaces an ended call whose own messages are all settled (nothing of
    /// ours left to retransmit) by a tomb holding the one message a late
    /// retransmission from the peer still needs, for the rest of its 64·T1.
    ///
    /// Why: at 2,000 calls/s, 64,000 ended calls linger; as full records in
    /// the call, dialog and transaction maps they were 120 MB and made every
    /// map operation a cache miss: a tomb is the repeated message and the
    /// branch (the dialer benchmark: 48-53 µs of CPU per call with full
    /// records, 42-45 µs with none lingering at all).
    fn settle(&mut self, handle: CallHandle) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let in_flight = call.invite_rtx.is_some()
            || call.cancel_rtx.is_some()
            || call.bye_rtx.is_some()
            || call.refer_rtx.is_some()
            || call.response_rtx.is_some()
            || call.reinvite_rtx.is_some();
        let (State::Ended, false, Some(until)) = (call.state, in_flight, call.linger_until) else {
            return;
        };
        let role = call.role;
        let branch: Box<str> = call.invite_branch.as_str().into();
        let Some(mut call) = self.remove(handle) else {
            return;
        };
        let repeat = match role {
            Role::Uac => call
                .ack
                .take()
                .map(|(bytes, to)| (bytes.into_boxed_slice(), to)),
            Role::Uas => call
                .last_invite_response
                .take()
                .map(|bytes| (bytes.into_boxed_slice(), call.peer)),
        };
        if repeat.is_none() || branch.is_empty() {
            return; // nothing a retransmission could still need
        }
        self.tomb_order.push_back((until, branch.clone()));
        self.tombs.insert(branch, Tomb { role, repeat });
    }

    /// Repeats the message an ended call's tomb keeps for `role`, to `to`
    /// (else where it went before). Returns whether there was such a tomb.
    fn repeat_from_tomb(&mut self, branch: &str, role: Role, to: Option<Peer>) -> bool {
        let Some(tomb) = self.tombs.get(branch).filter(|t| t.role == role) else {
            return false;
        };
        if let Some((bytes, peer)) = &tomb.repeat {
            let to = to.unwrap_or(*peer);
            self.transmits.push_back(Transmit {
                to,
                bytes: bytes.to_vec(),
            });
        }
        true
    }

    /// Forgets a call in every map; returns what it was.
    fn remove(&mut self, handle: CallHandle) -> Option<Call> {
        let mut call = self.calls.remove(&handle)?;
        let dialog = (
            std::mem::take(&mut call.call_id),
            std::mem::take(&mut call.local_tag),
        );
        self.dialogs.remove(&dialog);
        let mut invite = (std::mem::take(&mut call.invite_branch), false);
        self.client.remove(&invite);
        invite.1 = true;
        self.client.remove(&invite);
        if let Some(branch) = call.bye_branch.take() {
            self.client.remove(&(branch, false));
        }
        if let Some(branch) = call.refer_branch.take() {
            self.client.remove(&(branch, false));
        }
        if call.role == Role::Uas {
            self.server_invites.remove(&invite.0);
        }
        Some(call)
    }
}

/// Our Contact for a transport.
fn contact_for(local: &str, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("<sip:dialcast@{local}>"),
        Transport::Tcp => format!("<sip:dialcast@{local};transport=tcp>"),
    }
}

fn local_end(status: CallStatus, sip_code: u16, cause: EndCause) -> CallEnd {
    CallEnd {
        status,
        sip_code,
        cause,
        retry_after: None,
        from_network: false,
        detail: None,
    }
}

/// The Authorization (or Proxy-Authorization) value answering the challenge
/// in `resp` (RFC 3261 §22.4, digest per RFC 2617 as rsipstack computes it).
fn authorize(call: &Call, resp: &Incoming) -> Option<String> {
    use rsipstack::sip::headers::auth::{Algorithm, AuthQop, Qop};
    use rsipstack::sip::prelude::ToTypedHeader;
    use rsipstack::sip::Header;
    let (username, password) = call.credential.as_ref()?;
    let challenge = match resp.challenge.as_ref()? {
        Header::WwwAuthenticate(h) => h.typed().ok()?,
        Header::ProxyAuthenticate(h) => {
            let t = h.typed().ok()?;
            rsipstack::sip::typed::WwwAuthenticate {
                scheme: t.scheme,
                realm: t.realm,
                domain: t.domain,
                nonce: t.nonce,
                opaque: t.opaque,
                stale: t.stale,
                algorithm: t.algorithm,
                qop: t.qop,
                charset: t.charset,
            }
        }
        _ => return None,
    };
    let qop = match challenge.qop {
        Some(Qop::Auth) => Some(AuthQop::Auth {
            cnonce: token(16),
            nc: 1,
        }),
        Some(Qop::AuthInt) => Some(AuthQop::AuthInt {
            cnonce: token(16),
            nc: 1,
        }),
        None => None,
    };
    let algorithm = challenge.algorithm.unwrap_or(Algorithm::Md5);
    let digest = rsipstack::dialog::authenticate::compute_digest(
        username,
        password,
        &challenge.realm,
        &challenge.nonce,
        &Method::Invite,
        &call.request_uri,
        algorithm,
        qop.as_ref(),
    );
    let mut value = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{digest}\", algorithm={algorithm}",
        challenge.realm, challenge.nonce, call.request_uri
    );
    if let Some(opaque) = &challenge.opaque {
        value.push_str(&format!(", opaque=\"{opaque}\""));
    }
    if let Some(qop) = &qop {
        value.push_str(&format!(", {qop}"));
    }
    Some(value)
}

#[cfg(test)]
mod tests;
