//! Voicelog recording: one background thread per engine owns every open
//! [`WavFile`] (stereo, 8 kHz, 16-bit; left = what we sent, right = what we
//! received), so file I/O never runs on the media scheduler thread.
//!
//! The scheduler hands it 20 ms blocks through a bounded channel
//! ([`RECORDER_QUEUE`]); when the queue is full the block is dropped and
//! counted (`record_dropped`) rather than stalling RTP. Every block carries
//! its frame number on the call's media clock, so the writer puts silence
//! where a block is missing (dropped here, or skipped by a stalled media
//! thread) and a recording is as long as the media clock says, whatever
//! the writer's own pace. At the end the session says how many frames the
//! recording spans and the file is padded or cut to exactly that.
//!
//! Every file's header is rewritten about once a second
//! ([`FLUSH_INTERVAL`]), so a crash leaves a readable file missing at most
//! the last second; `crate::wav::repair_file` fixes the sizes after one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::FRAME_SAMPLES;
use crate::wav::WavFile;
use crate::MediaError;

/// Blocks queued to the recorder thread: at 1,500 recorded calls (75,000
/// blocks/s) that absorbs a ~220 ms stall of the disk (at 900 calls,
/// 360 ms). 664 bytes each: 11 MB, allocated at start.
/// Full: the scheduler drops the block (never waits); the writer fills the
/// gap with silence.
pub const RECORDER_QUEUE: usize = 16384;
/// How often every open file is flushed (header rewritten).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How long the recorder sleeps after draining its queue: at 1,500 recorded
/// calls about 1,100 blocks arrive meanwhile, a fifteenth of [`RECORDER_QUEUE`].
/// A `close` waits at most this long for its file to be finished.
pub const POLL_INTERVAL: Duration = Duration::from_millis(15);
/// The longest gap the writer fills with silence at once (10 minutes): a
/// frame number further ahead is taken as a fault, not as lost audio.
const MAX_GAP_FRAMES: u64 = 30_000;

pub(crate) type Block = [i16; 2 * FRAME_SAMPLES];

/// What the writer did with one recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Frames in the finished file.
    pub frames: u64,
    /// Frames written as silence because their block never arrived.
    pub filled: u64,
    /// A write failed; the file holds what came before.
    pub failed: bool,
}

// Blocks travel by value on purpose (no allocation per block); the channel's
// slots are allocated once, at start.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecorderMsg {
    Open {
        id: u64,
        file: Box<WavFile>,
    },
    /// Sent by value: the channel's slots are preallocated, so no allocation.
    Block {
        id: u64,
        /// Frame number on the session's media clock, from 0.
        frame: u32,
        samples: Block,
    },
    Finish {
        id: u64,
        /// The frames the recording spans on the media clock, when known.
        frames: Option<u64>,
        done: tokio::sync::oneshot::Sender<RecordingSummary>,
    },
    Shutdown,
}

/// Create the WAV file on the caller's thread, so errors reach the caller.
pub(crate) fn create_file(path: &Path) -> Result<WavFile, MediaError> {
    WavFile::create(path).map_err(|source| MediaError::Record {
        path: path.to_owned(),
        source,
    })
}

/// Queue one block from the scheduler; returns false (block dropped) if the
/// queue is full. Never blocks.
pub(crate) fn send_block(tx: &SyncSender<RecorderMsg>, id: u64, frame: u32, block: &Block) -> bool {
    match tx.try_send(RecorderMsg::Block {
        id,
        frame,
        samples: *block,
    }) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    }
}

/// What the recorder thread last found in its queue, written by that thread
/// once per pass and read by whoever reports it (the std channel has no
/// length, and counting at the sender would add work to the media thread).
#[derive(Debug, Default)]
pub struct BacklogGauge {
    /// The messages it took in its last pass over the queue.
    depth: AtomicUsize,
    /// The longest a message can have waited before the writer took it,
    /// in microseconds, since the last [`BacklogGauge::take_longest_wait`]:
    /// a message taken in a pass was queued after the previous pass found
    /// the queue empty, so it waited at most from then to the end of its own
    /// pass (an upper bound: about [`POLL_INTERVAL`] plus the pass's writing).
    longest_wait_us: AtomicU64,
}

impl BacklogGauge {
    /// Messages found queued in the last pass.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// The longest wait since the previous call (zero when nothing was
    /// queued meanwhile); resets it.
    pub fn take_longest_wait(&self) -> Duration {
        Duration::from_micros(self.longest_wait_us.swap(0, Ordering::Relaxed))
    }

    fn pass_done(&self, taken: usize, longest_wait: Duration) {
        self.depth.store(taken, Ordering::Relaxed);
        if taken > 0 {
            let us = u64::try_from(longest_wait.as_micros()).unwrap_or(u64::MAX);
            self.longest_wait_us.fetch_max(us, Ordering::Relaxed);
        }
    }
}

/// Shared between the recorder thread and the engine.
pub type Backlog = Arc<BacklogGauge>;

/// Start the recorder thread.
pub(crate) fn spawn() -> Result<
    (
        SyncSender<RecorderMsg>,
        Backlog,
        std::thread::JoinHandle<()>,
    ),
    MediaError,
> {
    let (tx, rx) = std::sync::mpsc::sync_channel(RECORDER_QUEUE);
    let backlog = Backlog::default();
    let seen = Arc::clone(&backlog);
    let handle = std::thread::Builder::new()
        .name("dialcast-recorder".into())
        .spawn(move || run(rx, &seen))
        .map_err(MediaError::Thread)?;
    Ok((tx, backlog, handle))
}

struct Open {
    file: WavFile,
    /// The frame number the next block should have.
    next: u64,
    filled: u64,
    dirty: bool,
    failed: bool,
    /// When the header was last rewritten: each file on its own second, so
    /// the syncs of many calls are spread out instead of all at once.
    synced_at: Instant,
}

impl Open {
    fn write(&mut self, frame: u64, samples: &Block) {
        if self.failed || frame < self.next {
            return; // a stale block: its place is already written
        }
        let gap = frame - self.next;
        if gap > MAX_GAP_FRAMES {
            tracing::warn!(gap, "recording block far ahead of the last; ignored");
            return;
        }
        let result = self
            .file
            .append_silence(gap)
            .and_then(|()| self.file.append(samples));
        self.filled += gap;
        self.next = frame + 1;
        self.dirty = true;
        if let Err(e) = result {
            self.failed = true;
            tracing::warn!(error = %e, "recording write failed; recording stopped");
        }
    }

    fn finish(self, frames: Option<u64>) -> RecordingSummary {
        let filled = self.filled + frames.map_or(0, |f| f.saturating_sub(self.next));
        // A file that failed is left as it is (its header says what it holds
        // as of the last sync).
        let frames = if self.failed { None } else { frames };
        match self.file.finish(frames) {
            Ok(frames) => RecordingSummary {
                frames,
                filled,
                failed: self.failed,
            },
            Err(e) => {
                tracing::warn!(error = %e, "recording finalize failed");
                RecordingSummary {
                    frames: 0,
                    filled,
                    failed: true,
                }
            }
        }
    }
}

fn run(rx: Receiver<RecorderMsg>, backlog: &BacklogGauge) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    // When the queue was last found empty: nothing taken later was queued before.
    let mut emptied_at = Instant::now();
    loop {
        // Drain what is queued, then sleep: a receiver that never parks on
        // the channel is never woken by a send, so the media thread's
        // `try_send` stays a plain queue write (no futex wake per block).
        let mut taken: usize = 0;
        loop {
            let msg = rx.try_recv();
            if msg.is_ok() {
                taken += 1;
            }
            match msg {
                Ok(RecorderMsg::Open { id, file }) => {
                    open.insert(
                        id,
                        Open {
                            file: *file,
                            next: 0,
                            filled: 0,
                            dirty: false,
                            failed: false,
                            synced_at: Instant::now(),
                        },
                    );
                }
                Ok(RecorderMsg::Block { id, frame, samples }) => {
                    if let Some(o) = open.get_mut(&id) {
                        o.write(u64::from(frame), &samples);
                    }
                }
                Ok(RecorderMsg::Finish { id, frames, done }) => {
                    let summary = open.remove(&id).map(|o| o.finish(frames));
                    let _ = done.send(summary.unwrap_or_default());
                }
                Ok(RecorderMsg::Shutdown) | Err(TryRecvError::Disconnected) => {
                    for (_, o) in open.drain() {
                        o.finish(None);
                    }
                    return;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        // One clock read per pass, none per message.
        let now = Instant::now();
        backlog.pass_done(taken, now.duration_since(emptied_at));
        emptied_at = now;
        for o in open.values_mut() {
            if !o.dirty || o.failed || now.duration_since(o.synced_at) < FLUSH_INTERVAL {
                continue;
            }
            o.dirty = false;
            o.synced_at = now;
            if let Err(e) = o.file.sync_header() {
                o.failed = true;
                tracing::warn!(error = %e, "recording flush failed; recording stopped");
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_at(path: &Path) -> Open {
        Open {
            file: WavFile::create(path).expect("create"),
            next: 0,
            filled: 0,
            dirty: false,
            failed: false,
            synced_at: Instant::now(),
        }
    }

    #[test]
    fn the_longest_wait_is_kept_until_taken_and_idle_passes_add_none() {
        let gauge = BacklogGauge::default();
        gauge.pass_done(3, Duration::from_millis(40));
        gauge.pass_done(0, Duration::from_millis(900));
        gauge.pass_done(1, Duration::from_millis(16));
        assert_eq!(gauge.depth(), 1);
        assert_eq!(gauge.take_longest_wait(), Duration::from_millis(40));
        assert_eq!(gauge.take_longest_wait(), Duration::ZERO);
    }

    #[test]
    fn missing_blocks_become_silence_and_stale_ones_are_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.wav");
        let mut o = open_at(&path);
        let block = [5i16; 2 * FRAME_SAMPLES];
        o.write(0, &block);
        o.write(3, &block); // 1 and 2 dropped
        o.write(2, &block); // stale
        let summary = o.finish(Some(6));
        assert_eq!(
            summary,
            RecordingSummary {
                frames: 6,
                filled: 4,
                failed: false
            }
        );
        let mut r = hound::WavReader::open(&path).expect("open");
        let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
        let f = 2 * FRAME_SAMPLES;
        assert!(samples[..f].iter().all(|s| *s == 5));
        assert!(samples[f..3 * f].iter().all(|s| *s == 0));
        assert!(samples[3 * f..4 * f].iter().all(|s| *s == 5));
        assert!(samples[4 * f..].iter().all(|s| *s == 0));
    }

    #[test]
    fn blocks_past_the_end_are_cut() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.wav");
        let mut o = open_at(&path);
        let block = [1i16; 2 * FRAME_SAMPLES];
        for i in 0..5 {
            o.write(i, &block);
        }
        assert_eq!(o.finish(Some(3)).frames, 3);
    }
}
