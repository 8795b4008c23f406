//! Voicelog WAV files: 16-bit PCM, stereo, 8 kHz, one 44-byte header.
//!
//! [`WavFile`] appends 20 ms stereo frames through a buffer and rewrites the
//! header's RIFF and data sizes on [`WavFile::sync_header`] (the recorder
//! thread does that about once a second), so a crash leaves a file that
//! players open, missing at most the audio since the last sync.
//! [`WavFile::finish`] pads or cuts the file to the exact frame count the
//! call's media clock spanned.
//!
//! A file left by a crash still has the sizes of its last sync (or zero);
//! [`plan_repair`] (pure: header bytes and file length in, the fix out) and
//! [`repair_file`] (its I/O) set them to what the file holds, cut to whole
//! sample frames.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::codec::{FRAME_SAMPLES, SAMPLE_RATE};

/// Length of the header [`WavFile`] writes.
pub const HEADER_LEN: u64 = 44;
/// Channels of a voicelog: left what we sent, right what we received.
pub const CHANNELS: u16 = 2;
/// Bytes of one sample frame (both channels).
pub const BLOCK_ALIGN: u16 = CHANNELS * 2;
/// Bytes of one 20 ms stereo frame.
pub const FRAME_BYTES: u64 = FRAME_SAMPLES as u64 * BLOCK_ALIGN as u64;
/// Write buffer per open file: half a second of audio, so an open call costs
/// about two `write` calls a second.
const WRITE_BUFFER: usize = 16 * 1024;
/// How much of a file [`repair_file`] reads to find the data chunk.
const REPAIR_HEAD: usize = 4096;

/// The header of a stereo 8 kHz 16-bit PCM file holding `data_len` bytes.
pub fn header(data_len: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(SAMPLE_RATE * u32::from(BLOCK_ALIGN)).to_le_bytes());
    h[32..34].copy_from_slice(&BLOCK_ALIGN.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Data bytes for `frames` 20 ms frames, capped at what a WAV header holds.
fn data_len_for(frames: u64) -> u64 {
    frames
        .saturating_mul(FRAME_BYTES)
        .min(u64::from(u32::MAX) - 36)
}

/// A voicelog being written.
#[derive(Debug)]
pub struct WavFile {
    out: BufWriter<File>,
    /// Whole 20 ms frames appended so far.
    frames: u64,
}

impl WavFile {
    /// Creates (truncating) `path` with an empty-data header.
    pub fn create(path: &Path) -> io::Result<WavFile> {
        let file = File::create(path)?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        out.write_all(&header(0))?;
        Ok(WavFile { out, frames: 0 })
    }

    /// Whole frames appended so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Appends one 20 ms stereo frame (interleaved left/right).
    pub fn append(&mut self, frame: &[i16; 2 * FRAME_SAMPLES]) -> io::Result<()> {
        let mut bytes = [0u8; FRAME_BYTES as usize];
        for (b, s) in bytes.chunks_exact_mut(2).zip(frame.iter()) {
            b.copy_from_slice(&s.to_le_bytes());
        }
        self.out.write_all(&bytes)?;
        self.frames += 1;
        Ok(())
    }

    /// Appends `frames` frames of silence.
    pub fn append_silence(&mut self, frames: u64) -> io::Result<()> {
        const ZERO: [u8; FRAME_BYTES as usize] = [0; FRAME_BYTES as usize];
        for _ in 0..frames {
            self.out.write_all(&ZERO)?;
            self.frames += 1;
        }
        Ok(())
    }

    /// Writes the buffer out and sets the header's sizes to what the file
    /// now holds.
    pub fn sync_header(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let data_len = data_len_for(self.frames) as u32;
        let h = header(data_len);
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&h[4..8])?;
        file.seek(SeekFrom::Start(40))?;
        file.write_all(&h[40..44])?;
        file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Pads with silence or cuts to `frames` when given, then writes the
    /// final header. Returns the frames the file holds.
    pub fn finish(mut self, frames: Option<u64>) -> io::Result<u64> {
        if let Some(want) = frames {
            if want > self.frames {
                self.append_silence(want - self.frames)?;
            }
            self.out.flush()?;
            if want < self.frames {
                self.frames = want;
                self.out
                    .get_mut()
                    .set_len(HEADER_LEN + data_len_for(want))?;
            }
        }
        self.sync_header()?;
        Ok(self.frames)
    }
}

/// Why a file cannot be repaired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavRepairError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("no data chunk in the first {0} bytes")]
    NoDataChunk(usize),
}

/// What [`plan_repair`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairPlan {
    /// Where the samples start.
    pub data_offset: u64,
    /// The data size the header should say (whole sample frames).
    pub data_len: u64,
    /// Bytes per sample frame, from the `fmt ` chunk (4 if absent).
    pub block_align: u16,
    /// The length the file should have (a torn last sample frame cut off).
    pub file_len: u64,
    /// Whether the file on disk differs from the plan.
    pub needed: bool,
}

impl RepairPlan {
    /// Duration of the data at 8 kHz, in ms.
    pub fn duration_ms(&self) -> u64 {
        let frames = self.data_len / u64::from(self.block_align.max(1));
        frames * 1000 / u64::from(SAMPLE_RATE)
    }
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// The fix for a WAV file whose first bytes are `head` and whose length on
/// disk is `file_len`: the data chunk runs to the end of the file, cut to
/// whole sample frames, and the RIFF and data sizes say so.
pub fn plan_repair(head: &[u8], file_len: u64) -> Result<RepairPlan, WavRepairError> {
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(WavRepairError::NotWave);
    }
    let mut pos = 12usize;
    let mut block_align = BLOCK_ALIGN;
    loop {
        let (Some(id), Some(size)) = (head.get(pos..pos + 4), le_u32(head, pos + 4)) else {
            return Err(WavRepairError::NoDataChunk(head.len()));
        };
        if id == b"data" {
            let data_offset = pos as u64 + 8;
            let align = u64::from(block_align.max(1));
            let available = file_len.saturating_sub(data_offset);
            let data_len = (available - available % align).min(u64::from(u32::MAX) - 36);
            let wanted_riff = (data_offset - 8 + data_len) as u32;
            let needed = u64::from(size) != data_len
                || le_u32(head, 4) != Some(wanted_riff)
                || data_offset + data_len != file_len;
            return Ok(RepairPlan {
                data_offset,
                data_len,
                block_align,
                file_len: data_offset + data_len,
                needed,
            });
        }
        if id == b"fmt " {
            if let Some(b) = head.get(pos + 20..pos + 22) {
                block_align = u16::from_le_bytes([b[0], b[1]]);
            }
        }
        // Chunks are padded to an even length.
        let skip = usize::try_from(size).unwrap_or(usize::MAX);
        pos = pos
            .saturating_add(8)
            .saturating_add(skip)
            .saturating_add(skip % 2);
    }
}

/// Applies [`plan_repair`] to the file at `path` (sizes rewritten, a torn
/// last sample frame cut off). Returns the plan; nothing is written when
/// `needed` is false.
pub fn repair_file(path: &Path) -> io::Result<Result<RepairPlan, WavRepairError>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let file_len = file.metadata()?.len();
    let mut head = vec![0u8; REPAIR_HEAD.min(file_len as usize)];
    file.read_exact(&mut head)?;
    let plan = match plan_repair(&head, file_len) {
        Ok(plan) => plan,
        Err(e) => return Ok(Err(e)),
    };
    if plan.needed {
        file.set_len(plan.file_len)?;
        let riff = (plan.data_offset - 8 + plan.data_len) as u32;
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&riff.to_le_bytes())?;
        file.seek(SeekFrom::Start(plan.data_offset - 4))?;
        file.write_all(&(plan.data_len as u32).to_le_bytes())?;
        file.sync_all()?;
    }
    Ok(Ok(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> [i16; 2 * FRAME_SAMPLES] {
        [v; 2 * FRAME_SAMPLES]
    }

    #[test]
    fn header_matches_what_hound_reads() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.wav");
        let mut w = WavFile::create(&path).expect("create");
        w.append(&frame(7)).expect("append");
        w.append_silence(2).expect("silence");
        assert_eq!(w.finish(None).expect("finish"), 3);
        let r = hound::WavReader::open(&path).expect("hound opens it");
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(r.duration(), 3 * FRAME_SAMPLES as u32);
    }

    #[test]
    fn finish_pads_and_cuts_to_the_media_clock() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.wav");
        let mut w = WavFile::create(&path).expect("create");
        w.append(&frame(1)).expect("append");
        assert_eq!(w.finish(Some(5)).expect("pad"), 5);
        assert_eq!(
            std::fs::metadata(&path).expect("meta").len(),
            HEADER_LEN + 5 * FRAME_BYTES
        );
        let mut w = WavFile::create(&path).expect("create");
        for _ in 0..4 {
            w.append(&frame(1)).expect("append");
        }
        assert_eq!(w.finish(Some(2)).expect("cut"), 2);
        let r = hound::WavReader::open(&path).expect("open");
        assert_eq!(r.duration(), 2 * FRAME_SAMPLES as u32);
    }

    #[test]
    fn plan_repair_sets_sizes_from_the_file_length() {
        let h = header(0);
        // 3 frames and a torn half sample frame after the header.
        let len = HEADER_LEN + 3 * FRAME_BYTES + 2;
        let plan = plan_repair(&h, len).expect("plan");
        assert_eq!(plan.data_offset, 44);
        assert_eq!(plan.data_len, 3 * FRAME_BYTES);
        assert_eq!(plan.file_len, HEADER_LEN + 3 * FRAME_BYTES);
        assert!(plan.needed);
        assert_eq!(plan.duration_ms(), 60);
        // A finished file needs nothing.
        let h = header((3 * FRAME_BYTES) as u32);
        let plan = plan_repair(&h, HEADER_LEN + 3 * FRAME_BYTES).expect("plan");
        assert!(!plan.needed);
    }

    #[test]
    fn plan_repair_walks_other_chunks_and_rejects_garbage() {
        let mut h = header(0).to_vec();
        // Insert a LIST chunk of odd length 3 (padded to 4) before data.
        let data = h.split_off(36);
        h.extend_from_slice(b"LIST");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&[1, 2, 3, 0]);
        h.extend_from_slice(&data);
        let plan = plan_repair(&h, h.len() as u64 + 8).expect("plan");
        assert_eq!(plan.data_offset, 56);
        assert_eq!(plan.data_len, 8);
        assert_eq!(
            plan_repair(b"not a wave file", 100),
            Err(WavRepairError::NotWave)
        );
        assert_eq!(
            plan_repair(&header(0)[..40], 40),
            Err(WavRepairError::NoDataChunk(40))
        );
        // A chunk size near u32::MAX must not overflow.
        let mut h = header(0);
        h[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(plan_repair(&h, 1000).is_err());
    }

    #[test]
    fn a_file_left_unfinished_is_repaired_and_readable() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("crash.wav");
        let mut w = WavFile::create(&path).expect("create");
        for i in 0..10 {
            w.append(&frame(i)).expect("append");
        }
        w.sync_header().expect("sync");
        for i in 0..5 {
            w.append(&frame(i)).expect("append");
        }
        // The process dies: the buffer reaches the file (as the OS would have
        // it after the writes), the header still says 10 frames.
        w.out.flush().expect("flush");
        std::mem::forget(w);
        let plan = repair_file(&path).expect("io").expect("plan");
        assert!(plan.needed);
        assert_eq!(plan.data_len, 15 * FRAME_BYTES);
        let r = hound::WavReader::open(&path).expect("readable");
        assert_eq!(r.duration(), 15 * FRAME_SAMPLES as u32);
        // Repairing again changes nothing.
        assert!(!repair_file(&path).expect("io").expect("plan").needed);
    }
}
