//! Voicelog recording: one background thread per engine owns every open WAV
//! writer (stereo, 8 kHz, 16-bit; left = what we sent, right = what we
//! received), so file I/O never runs on the media scheduler thread.
//!
//! The scheduler hands it 20 ms blocks through a bounded channel
//! ([`RECORDER_QUEUE`]); when the queue is full the block is dropped and
//! counted (`record_dropped`) rather than stalling RTP. Every writer is
//! flushed about once a second; `hound` rewrites the RIFF/data sizes on
//! flush, so a crash leaves a valid file missing at most the last second.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::MediaError;

/// Blocks queued to the recorder thread: at 1,500 recorded calls (75,000
/// blocks/s) that absorbs a ~110 ms stall of the disk. 640 bytes each.
pub const RECORDER_QUEUE: usize = 8192;
/// How often every open file is flushed (header rewritten).
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) type Writer = hound::WavWriter<BufWriter<File>>;
pub(crate) type Block = [i16; 2 * FRAME_SAMPLES];

// Blocks travel by value on purpose (no allocation per block); the channel's
// slots are allocated once, at start.
#[allow(clippy::large_enum_variant)]
pub(crate) enum RecorderMsg {
    Open {
        id: u64,
        writer: Box<Writer>,
    },
    /// Sent by value: the channel's slots are preallocated, so no allocation.
    Block {
        id: u64,
        samples: Block,
    },
    Finish {
        id: u64,
        done: tokio::sync::oneshot::Sender<()>,
    },
    Shutdown,
}

/// Create the WAV file on the caller's thread, so errors reach the caller.
pub(crate) fn create_writer(path: &Path) -> Result<Writer, MediaError> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec).map_err(|source| MediaError::Record {
        path: path.to_owned(),
        source,
    })
}

/// Queue one block from the scheduler; returns false (block dropped) if the
/// queue is full. Never blocks.
pub(crate) fn send_block(tx: &SyncSender<RecorderMsg>, id: u64, block: &Block) -> bool {
    match tx.try_send(RecorderMsg::Block {
        id,
        samples: *block,
    }) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    }
}

/// Start the recorder thread.
pub(crate) fn spawn() -> Result<(SyncSender<RecorderMsg>, std::thread::JoinHandle<()>), MediaError>
{
    let (tx, rx) = std::sync::mpsc::sync_channel(RECORDER_QUEUE);
    let handle = std::thread::Builder::new()
        .name("dialcast-recorder".into())
        .spawn(move || run(rx))
        .map_err(MediaError::Thread)?;
    Ok((tx, handle))
}

struct Open {
    writer: Writer,
    dirty: bool,
    failed: bool,
}

fn run(rx: Receiver<RecorderMsg>) {
    let mut open: HashMap<u64, Open> = HashMap::new();
    let mut last_flush = Instant::now();
    loop {
        match rx.recv_timeout(FLUSH_INTERVAL) {
            Ok(RecorderMsg::Open { id, writer }) => {
                open.insert(
                    id,
                    Open {
                        writer: *writer,
                        dirty: false,
                        failed: false,
                    },
                );
            }
            Ok(RecorderMsg::Block { id, samples }) => {
                if let Some(o) = open.get_mut(&id) {
                    if !o.failed {
                        let mut w = o.writer.get_i16_writer(samples.len() as u32);
                        for s in samples.iter() {
                            w.write_sample(*s);
                        }
                        if let Err(e) = w.flush() {
                            o.failed = true;
                            tracing::warn!(error = %e, "recording write failed; recording stopped");
                        }
                        o.dirty = true;
                    }
                }
            }
            Ok(RecorderMsg::Finish { id, done }) => {
                if let Some(o) = open.remove(&id) {
                    if let Err(e) = o.writer.finalize() {
                        tracing::warn!(error = %e, "recording finalize failed");
                    }
                }
                let _ = done.send(());
            }
            Ok(RecorderMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                for (_, o) in open.drain() {
                    let _ = o.writer.finalize();
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL {
            last_flush = Instant::now();
            for o in open.values_mut().filter(|o| o.dirty && !o.failed) {
                o.dirty = false;
                if let Err(e) = o.writer.flush() {
                    o.failed = true;
                    tracing::warn!(error = %e, "recording flush failed; recording stopped");
                }
            }
        }
    }
}
