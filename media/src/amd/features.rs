//! Per-frame measurements shared by the classifier and the beep detector:
//! energy, the noise floor, whether the frame is active (clearly above the
//! floor) and, for active frames only, the spectral peaks.

use super::fft::N;
use super::tone::{self, Peaks};
use super::vad::{db, from_db, mean_square, NoiseFloor};
use crate::codec::FRAME_SAMPLES;

/// What one 20 ms frame measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FrameFeatures {
    /// Frames fed before this one.
    pub index: u32,
    /// Mean square of the frame (full scale 1.0), and in dBFS.
    pub power: f32,
    pub energy_db: f32,
    pub floor_db: f32,
    /// Linear power above the floor (0 when below it).
    pub power_above_floor: f32,
    /// `energy_db` exceeds the floor by the activity margin.
    pub active: bool,
    /// Spectral peaks of the last 32 ms; only for active frames.
    pub peaks: Option<Peaks>,
}

/// Turns frames of samples into [`FrameFeatures`]; holds the last 32 ms.
#[derive(Debug, Clone)]
pub(crate) struct FrameAnalyzer {
    margin_db: f32,
    floor: NoiseFloor,
    history: [f32; N],
    frames: u32,
}

impl FrameAnalyzer {
    /// `margin_db`: how far above the noise floor a frame must be to count
    /// as sound.
    pub(crate) fn new(margin_db: f32) -> FrameAnalyzer {
        FrameAnalyzer {
            margin_db,
            floor: NoiseFloor::default(),
            history: [0.0; N],
            frames: 0,
        }
    }

    /// Frames fed so far.
    pub(crate) fn frames(&self) -> u32 {
        self.frames
    }

    /// Measure one frame: the first [`FRAME_SAMPLES`] of `samples`, padded
    /// with silence if it is shorter.
    pub(crate) fn push(&mut self, samples: &[i16]) -> FrameFeatures {
        self.history.copy_within(FRAME_SAMPLES.., 0);
        let fresh = &mut self.history[N - FRAME_SAMPLES..];
        for (i, h) in fresh.iter_mut().enumerate() {
            *h = samples.get(i).map_or(0.0, |s| f32::from(*s) / 32768.0);
        }
        let power = mean_square(fresh);
        let energy_db = db(power);
        let floor_db = self.floor.update(power);
        let active = energy_db > floor_db + self.margin_db;
        let peaks = if active {
            Some(tone::peaks(&self.history))
        } else {
            None
        };
        let index = self.frames;
        self.frames = self.frames.saturating_add(1);
        FrameFeatures {
            index,
            power,
            energy_db,
            floor_db,
            power_above_floor: (power - from_db(floor_db)).max(0.0),
            active,
            peaks,
        }
    }
}
