//! Bridging two calls: each session's received audio, decoded to 8 kHz
//! linear frames, goes into a bounded lock-free queue that the other session
//! takes one frame from on each of its 20 ms ticks and encodes with its own
//! codec (so a PCMU leg and a PCMA leg bridge too).
//!
//! ```text
//!   leg A RTP in ─► decode ─► [queue A→B] ─► leg B tick ─► encode ─► RTP out
//!   leg A RTP out ◄─ encode ◄─ leg A tick ◄─ [queue B→A] ◄─ decode ◄─ leg B RTP in
//! ```
//!
//! The sessions may run on different scheduler threads; the queues are the
//! only thing they share, and nothing allocates per packet. When a queue is
//! full (the receiving leg's clock is behind, or a peer sends too fast) the
//! oldest frame is dropped: the bridge keeps at most [`BRIDGE_QUEUE`] frames
//! of delay. When it is empty a tick sends silence.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::codec::FRAME_SAMPLES;

/// Frames a direction of a bridge holds (100 ms); the oldest is dropped
/// when a new one arrives on a full queue.
pub const BRIDGE_QUEUE: usize = 5;

/// One 20 ms frame of 8 kHz linear audio.
pub type PcmFrame = [i16; FRAME_SAMPLES];

/// One session's end of a bridge: where its received audio goes and where
/// the audio it sends comes from.
#[derive(Debug, Clone)]
pub struct BridgeEnd {
    pub(crate) to_peer: Arc<ArrayQueue<PcmFrame>>,
    pub(crate) from_peer: Arc<ArrayQueue<PcmFrame>>,
}

impl BridgeEnd {
    /// Both ends of a new bridge: give one to each session.
    pub fn pair() -> (BridgeEnd, BridgeEnd) {
        let a_to_b = Arc::new(ArrayQueue::new(BRIDGE_QUEUE));
        let b_to_a = Arc::new(ArrayQueue::new(BRIDGE_QUEUE));
        (
            BridgeEnd {
                to_peer: Arc::clone(&a_to_b),
                from_peer: Arc::clone(&b_to_a),
            },
            BridgeEnd {
                to_peer: b_to_a,
                from_peer: a_to_b,
            },
        )
    }

    /// Hands a received frame to the peer, dropping its oldest if full.
    pub(crate) fn send(&self, frame: PcmFrame) {
        let _ = self.to_peer.force_push(frame);
    }

    /// The next frame from the peer, if one is waiting.
    pub(crate) fn receive(&self) -> Option<PcmFrame> {
        self.from_peer.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_both_ways_and_a_full_queue_drops_the_oldest() {
        let (a, b) = BridgeEnd::pair();
        a.send([1; FRAME_SAMPLES]);
        b.send([2; FRAME_SAMPLES]);
        assert_eq!(b.receive().map(|f| f[0]), Some(1));
        assert_eq!(a.receive().map(|f| f[0]), Some(2));
        assert_eq!(a.receive(), None);
        for i in 0..(BRIDGE_QUEUE as i16 + 2) {
            a.send([i; FRAME_SAMPLES]);
        }
        assert_eq!(b.receive().map(|f| f[0]), Some(2));
    }
}
