//! Which call a datagram on a shared RTP socket belongs to: the pure
//! demultiplexing table of [`RtpSocketMode::PerThread`](crate::RtpSocketMode),
//! with no sockets and no clock.
//!
//! With one socket per scheduler thread every call of the thread has the
//! same local port, so a datagram is told apart by where it came from and
//! the SSRC it carries. [`Demux::route`] tries, in order:
//!
//! 1. **(source, SSRC) known**: the call that announced this SSRC in its SDP
//!    (`a=ssrc`, RFC 5576) or whose first packets carried it, at this
//!    address. The steady state: one hash lookup per datagram.
//! 2. **Our own SSRC** from one of the call's addresses: a peer that echoes
//!    our packets back (SIPp's `-rtp_echo`). Our SSRCs are unique per engine.
//! 3. **The source is one call's address alone**: real trunks and SBCs use a
//!    port per call, so the SDP address identifies the call whatever SSRC it
//!    sends (a changed SSRC, after a media server switch, is learned again).
//!    Unless the call announced another SSRC: then the datagram is for
//!    another call from the same peer socket whose answer we have not
//!    processed yet, and it matches nothing (the shared socket keeps such
//!    datagrams a moment for the call that claims them, see
//!    `crate::shared_socket`).
//! 4. **The source is shared** (a peer that sends all its calls from one
//!    socket, such as the callee farm in this mode) and the SSRC is new: the
//!    call on that address that has no SSRC yet, **only if exactly one** has
//!    none; its SSRC is learned from this packet. When several are waiting
//!    for their first packet the datagram is ambiguous and dropped (counted),
//!    and the calls learn from a later packet, once all but one have theirs
//!    or the peer announces SSRCs. A peer that announces them never hits
//!    this.
//! 5. **An unknown source** (symmetric RTP: the SDP named a NAT's inside
//!    address): the call that announced this SSRC, else the only call of
//!    the table that has heard nothing yet and announced nothing. The source
//!    becomes the call's latched address (the session sends there too).
//!    With many calls starting at once this is ambiguous and the datagram is
//!    dropped: peers behind NAT that announce no SSRC need
//!    [`RtpSocketMode::PerCall`](crate::RtpSocketMode).
//!
//! Anything else matches no call and is dropped by the caller, counted.
//! A call is in the table from its first `set_remote` (before that its
//! remote is unknown and its datagrams match nothing); `set_remote` again
//! (re-INVITE) moves it to the new address and re-arms latching, keeping a
//! learned SSRC only if the address is unchanged.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::SocketAddr;

/// Where [`Demux::route`] sent a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<K> {
    To(K),
    /// From a source and SSRC no call claims.
    Unknown,
    /// Several calls could claim it and none does by SSRC.
    Ambiguous,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The address of the remote SDP.
    sdp: SocketAddr,
    /// Where packets came from when that was not `sdp` (symmetric RTP).
    latched: Option<SocketAddr>,
    /// The peer's SSRC, announced or learned.
    ssrc: Option<u32>,
    /// `ssrc` came from the SDP: a packet never changes it.
    announced: bool,
    /// Our SSRC (what an echoing peer sends back).
    own: u32,
    /// A datagram was routed here since the last `set_remote`.
    heard: bool,
}

impl Entry {
    fn addrs(&self) -> impl Iterator<Item = SocketAddr> {
        std::iter::once(self.sdp).chain(self.latched.filter(|l| *l != self.sdp))
    }
}

#[derive(Debug)]
struct AddrSet<K> {
    all: HashSet<K>,
    /// Members whose SSRC is not known yet.
    unlearned: HashSet<K>,
}

impl<K> Default for AddrSet<K> {
    fn default() -> Self {
        AddrSet {
            all: HashSet::new(),
            unlearned: HashSet::new(),
        }
    }
}

/// The table of one shared socket. `K` names a call (the scheduler's slot).
#[derive(Debug)]
pub(crate) struct Demux<K> {
    entries: HashMap<K, Entry>,
    by_addr: HashMap<SocketAddr, AddrSet<K>>,
    by_addr_ssrc: HashMap<(SocketAddr, u32), K>,
    /// Announced SSRCs, for packets from an unknown source.
    announced: HashMap<u32, Vec<K>>,
    /// Our SSRCs.
    own: HashMap<u32, K>,
    /// Calls that have heard nothing and announced nothing.
    unheard: HashSet<K>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Demux {
            entries: HashMap::new(),
            by_addr: HashMap::new(),
            by_addr_ssrc: HashMap::new(),
            announced: HashMap::new(),
            own: HashMap::new(),
            unheard: HashSet::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// Calls in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Set or change a call's remote: its SDP address, the SSRC it
    /// announced, and ours.
    pub(crate) fn set_remote(&mut self, key: K, sdp: SocketAddr, announced: Option<u32>, own: u32) {
        let previous = self.unindex(key);
        let (ssrc, is_announced) = match (announced, previous) {
            (Some(s), _) => (Some(s), true),
            // Same address, nothing announced: keep what was learned.
            (None, Some(p)) if p.sdp == sdp && !p.announced => (p.ssrc, false),
            (None, _) => (None, false),
        };
        self.index(
            key,
            Entry {
                sdp,
                latched: None,
                ssrc,
                announced: is_announced,
                own,
                heard: false,
            },
        );
    }

    /// Forget a call (closed).
    pub(crate) fn remove(&mut self, key: K) {
        self.unindex(key);
    }

    /// The call a datagram from `from` carrying `ssrc` (none when it is too
    /// short to be RTP) belongs to. Learns SSRCs and latched addresses.
    pub(crate) fn route(&mut self, from: SocketAddr, ssrc: Option<u32>) -> Route<K> {
        if let Some(s) = ssrc {
            if let Some(&key) = self.by_addr_ssrc.get(&(from, s)) {
                self.heard(key);
                return Route::To(key);
            }
            if let Some(&key) = self.own.get(&s) {
                if self
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.addrs().any(|a| a == from))
                {
                    self.heard(key);
                    return Route::To(key);
                }
            }
        }
        let (alone, waiting) = match self.by_addr.get(&from) {
            Some(set) if set.all.len() == 1 => (set.all.iter().next().copied(), None),
            Some(set) => (None, Some(set.unlearned.len())),
            None => (None, None),
        };
        if let Some(key) = alone {
            let someone_else = ssrc.is_some()
                && self
                    .entries
                    .get(&key)
                    .is_some_and(|e| e.announced && e.ssrc != ssrc);
            if someone_else {
                return Route::Unknown;
            }
            self.learn(key, ssrc);
            return Route::To(key);
        }
        if let Some(waiting) = waiting {
            let Some(s) = ssrc else {
                return Route::Ambiguous;
            };
            if waiting != 1 {
                return Route::Ambiguous;
            }
            let key = self
                .by_addr
                .get(&from)
                .and_then(|set| set.unlearned.iter().next().copied());
            return match key {
                Some(key) => {
                    self.learn(key, Some(s));
                    Route::To(key)
                }
                None => Route::Ambiguous,
            };
        }
        // An unknown source: latch a call to it.
        let by_announced = ssrc.and_then(|s| match self.announced.get(&s).map(Vec::as_slice) {
            Some([key]) => Some(*key),
            _ => None,
        });
        let key = match by_announced {
            Some(key) => key,
            None if self.unheard.len() == 1 => match self.unheard.iter().next() {
                Some(key) => *key,
                None => return Route::Unknown,
            },
            None if self.unheard.len() > 1 => return Route::Ambiguous,
            None => return Route::Unknown,
        };
        let Some(mut entry) = self.unindex(key) else {
            return Route::Unknown;
        };
        entry.latched = Some(from);
        self.index(key, entry);
        self.learn(key, ssrc);
        Route::To(key)
    }

    fn heard(&mut self, key: K) {
        if let Some(e) = self.entries.get_mut(&key) {
            if !e.heard {
                e.heard = true;
                self.unheard.remove(&key);
            }
        }
    }

    /// A datagram with `ssrc` went to `key`: take its SSRC if none was
    /// announced and it is new.
    fn learn(&mut self, key: K, ssrc: Option<u32>) {
        self.heard(key);
        let Some(s) = ssrc else { return };
        let stale = self
            .entries
            .get(&key)
            .is_some_and(|e| !e.announced && e.ssrc != Some(s));
        if stale {
            if let Some(mut entry) = self.unindex(key) {
                entry.ssrc = Some(s);
                self.index(key, entry);
            }
        }
    }

    fn index(&mut self, key: K, entry: Entry) {
        for addr in entry.addrs() {
            let set = self.by_addr.entry(addr).or_default();
            set.all.insert(key);
            match entry.ssrc {
                Some(s) => {
                    self.by_addr_ssrc.insert((addr, s), key);
                }
                None => {
                    set.unlearned.insert(key);
                }
            }
        }
        if let (true, Some(s)) = (entry.announced, entry.ssrc) {
            self.announced.entry(s).or_default().push(key);
        }
        if !entry.heard && !entry.announced {
            self.unheard.insert(key);
        }
        self.own.insert(entry.own, key);
        self.entries.insert(key, entry);
    }

    fn unindex(&mut self, key: K) -> Option<Entry> {
        let entry = self.entries.remove(&key)?;
        for addr in entry.addrs() {
            if let Some(set) = self.by_addr.get_mut(&addr) {
                set.all.remove(&key);
                set.unlearned.remove(&key);
                if set.all.is_empty() {
                    self.by_addr.remove(&addr);
                }
            }
            if let Some(s) = entry.ssrc {
                if self.by_addr_ssrc.get(&(addr, s)) == Some(&key) {
                    self.by_addr_ssrc.remove(&(addr, s));
                }
            }
        }
        if let (true, Some(s)) = (entry.announced, entry.ssrc) {
            if let Some(keys) = self.announced.get_mut(&s) {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    self.announced.remove(&s);
                }
            }
        }
        if self.own.get(&entry.own) == Some(&key) {
            self.own.remove(&entry.own);
        }
        self.unheard.remove(&key);
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn a_port_per_call_peer_is_told_apart_by_address_whatever_its_ssrc() {
        let mut d = Demux::default();
        d.set_remote(1, addr(4000), None, 100);
        d.set_remote(2, addr(4002), None, 200);
        assert_eq!(d.route(addr(4000), Some(7)), Route::To(1));
        assert_eq!(d.route(addr(4002), Some(7)), Route::To(2));
        // A new SSRC on the same port (media server switch) is the same call.
        assert_eq!(d.route(addr(4000), Some(8)), Route::To(1));
        assert_eq!(d.route(addr(4000), None), Route::To(1));
        assert_eq!(d.route(addr(4004), Some(7)), Route::Unknown);
    }

    #[test]
    fn a_shared_peer_is_told_apart_by_the_ssrc_it_announced() {
        let mut d = Demux::default();
        for k in 0..100u32 {
            d.set_remote(k, addr(5000), Some(1000 + k), 10_000 + k);
        }
        assert_eq!(d.route(addr(5000), Some(1042)), Route::To(42));
        assert_eq!(d.route(addr(5000), Some(1099)), Route::To(99));
        // Nobody announced 7, and none is waiting to learn: dropped.
        assert_eq!(d.route(addr(5000), Some(7)), Route::Ambiguous);
        assert_eq!(d.route(addr(5000), None), Route::Ambiguous);
        // A packet from elsewhere with an announced SSRC latches that call.
        assert_eq!(d.route(addr(6000), Some(1005)), Route::To(5));
        assert_eq!(d.route(addr(6000), Some(1005)), Route::To(5));
        assert_eq!(d.route(addr(5000), Some(1005)), Route::To(5));
        // Alone on its address, a call that announced its SSRC does not take
        // another's: that is a call from the same peer not set up yet.
        d.set_remote(500, addr(7000), Some(77), 10_500);
        assert_eq!(d.route(addr(7000), Some(78)), Route::Unknown);
        assert_eq!(d.route(addr(7000), Some(77)), Route::To(500));
    }

    #[test]
    fn an_unannounced_ssrc_is_learned_only_when_one_call_on_the_address_waits() {
        let mut d = Demux::default();
        d.set_remote(1, addr(5000), None, 100);
        d.set_remote(2, addr(5000), None, 200);
        // Two calls wait on the same address: which one sent 7 is unknown.
        assert_eq!(d.route(addr(5000), Some(7)), Route::Ambiguous);
        // One of them announces its SSRC in a re-INVITE: the other is the
        // only one waiting, so 7 is its.
        d.set_remote(2, addr(5000), Some(9), 200);
        assert_eq!(d.route(addr(5000), Some(7)), Route::To(1));
        assert_eq!(d.route(addr(5000), Some(9)), Route::To(2));
        assert_eq!(d.route(addr(5000), Some(7)), Route::To(1));
        // A third call starts: it is now the only one waiting.
        d.set_remote(3, addr(5000), None, 300);
        assert_eq!(d.route(addr(5000), Some(11)), Route::To(3));
        assert_eq!(d.route(addr(5000), Some(7)), Route::To(1));
    }

    #[test]
    fn an_echoing_peer_is_recognised_by_our_own_ssrc() {
        let mut d = Demux::default();
        d.set_remote(1, addr(6000), None, 100);
        d.set_remote(2, addr(6000), None, 200);
        assert_eq!(d.route(addr(6000), Some(200)), Route::To(2));
        assert_eq!(d.route(addr(6000), Some(100)), Route::To(1));
        // Our SSRC from an address the call does not use is not proof.
        assert_eq!(d.route(addr(6002), Some(100)), Route::Unknown);
    }

    #[test]
    fn symmetric_rtp_latches_the_only_call_that_has_heard_nothing() {
        let mut d = Demux::default();
        d.set_remote(1, addr(4000), None, 100);
        assert_eq!(d.route(addr(4000), Some(5)), Route::To(1));
        d.set_remote(2, addr(4002), None, 200);
        // Call 2's peer is behind NAT and sends from elsewhere.
        assert_eq!(d.route(addr(9999), Some(6)), Route::To(2));
        assert_eq!(d.route(addr(9999), Some(6)), Route::To(2));
        // Its SDP address still reaches it too.
        assert_eq!(d.route(addr(4002), Some(6)), Route::To(2));
        // With two calls silent, a stranger is ambiguous, then unknown.
        d.set_remote(3, addr(4004), None, 300);
        d.set_remote(4, addr(4006), None, 400);
        assert_eq!(d.route(addr(8888), Some(1)), Route::Ambiguous);
        d.remove(3);
        d.remove(4);
        assert_eq!(d.route(addr(8888), Some(1)), Route::Unknown);
    }

    #[test]
    fn a_reinvite_moves_the_call_and_close_forgets_it() {
        let mut d = Demux::default();
        d.set_remote(1, addr(4000), None, 100);
        d.set_remote(2, addr(4000), None, 200);
        assert_eq!(d.route(addr(4000), Some(200)), Route::To(2));
        d.set_remote(1, addr(4100), None, 100);
        assert_eq!(d.route(addr(4100), Some(3)), Route::To(1));
        // Address 4000 is call 2's alone now.
        assert_eq!(d.route(addr(4000), Some(3)), Route::To(2));
        d.remove(1);
        d.remove(2);
        assert_eq!(d.len(), 0);
        assert_eq!(d.route(addr(4100), Some(3)), Route::Unknown);
        assert!(d.by_addr.is_empty() && d.by_addr_ssrc.is_empty() && d.own.is_empty());
        assert!(d.announced.is_empty() && d.unheard.is_empty());
    }

    #[test]
    fn a_reinvite_to_the_same_address_keeps_a_learned_ssrc() {
        let mut d = Demux::default();
        d.set_remote(1, addr(5000), None, 100);
        assert_eq!(d.route(addr(5000), Some(7)), Route::To(1));
        d.set_remote(2, addr(5000), None, 200);
        d.set_remote(1, addr(5000), None, 100); // hold / resume
                                                // Call 1 keeps 7, so call 2 is the only one waiting.
        assert_eq!(d.route(addr(5000), Some(7)), Route::To(1));
        assert_eq!(d.route(addr(5000), Some(8)), Route::To(2));
    }
}
