//! Frame energy and an adaptive noise floor: which 20 ms frames carry sound
//! clearly above the line's own background (hiss, hum, room tone).
//!
//! The floor is a minimum statistic: the lowest short-term energy seen over
//! the last 2-2.5 s. It follows a quieter line at once and a louder one
//! within 2.5 s; speech does not lift it, because speech has pauses within
//! that span. Short-term energy is averaged over three
//! frames so a single lost (zeroed) packet does not drag the floor down.

/// Energies are clamped to this (digital silence).
pub(crate) const MIN_DB: f32 = -90.0;
/// The floor never goes below this, so that near-digital silence (G.711
/// idle codes, dither) is not "above the floor" by the speech margin.
pub(crate) const FLOOR_MIN_DB: f32 = -66.0;
/// Frames per block of the minimum statistic (0.5 s).
const BLOCK_FRAMES: u32 = 25;
/// Blocks remembered besides the current one (4 x 0.5 s).
const BLOCKS: usize = 4;
/// Mean square of `samples`.
pub(crate) fn mean_square(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32
}

/// Power ratio to dB, clamped to [`MIN_DB`].
pub(crate) fn db(power: f32) -> f32 {
    if power <= 0.0 {
        MIN_DB
    } else {
        (10.0 * power.log10()).max(MIN_DB)
    }
}

/// dB to a power ratio.
pub(crate) fn from_db(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// The adaptive noise floor.
#[derive(Debug, Clone)]
pub(crate) struct NoiseFloor {
    /// Linear power of the last three frames.
    recent: [f32; 3],
    seen: u32,
    current_min: f32,
    in_block: u32,
    blocks: [f32; BLOCKS],
    next_block: usize,
}

impl Default for NoiseFloor {
    fn default() -> Self {
        NoiseFloor {
            recent: [0.0; 3],
            seen: 0,
            current_min: f32::INFINITY,
            in_block: 0,
            blocks: [f32::INFINITY; BLOCKS],
            next_block: 0,
        }
    }
}

impl NoiseFloor {
    /// Feed one frame's mean square power; returns the floor in dBFS to judge
    /// this frame by (the floor before the frame, so a loud frame cannot
    /// raise its own threshold).
    pub(crate) fn update(&mut self, power: f32) -> f32 {
        let floor = self.floor_db();
        self.recent[(self.seen % 3) as usize] = power;
        self.seen = self.seen.saturating_add(1);
        let n = self.seen.min(3);
        let short = self.recent.iter().take(n as usize).sum::<f32>() / n as f32;
        self.current_min = self.current_min.min(short);
        self.in_block += 1;
        if self.in_block == BLOCK_FRAMES {
            self.blocks[self.next_block] = self.current_min;
            self.next_block = (self.next_block + 1) % BLOCKS;
            self.current_min = f32::INFINITY;
            self.in_block = 0;
        }
        // The first frame judges itself: nothing better is known yet.
        if self.seen == 1 {
            return self.floor_db();
        }
        floor
    }

    /// The floor in dBFS (at least [`FLOOR_MIN_DB`]).
    pub(crate) fn floor_db(&self) -> f32 {
        let min = self.blocks.iter().fold(self.current_min, |a, b| a.min(*b));
        if min.is_finite() {
            db(min).max(FLOOR_MIN_DB)
        } else {
            FLOOR_MIN_DB
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a louder background takes, at most, to become the floor.
    const FLOOR_MEMORY_FRAMES: u32 = BLOCK_FRAMES * (BLOCKS as u32 + 1);

    fn energy_db(samples: &[f32]) -> f32 {
        db(mean_square(samples))
    }

    #[test]
    fn floor_follows_quieter_at_once_and_louder_within_memory() {
        let mut nf = NoiseFloor::default();
        for _ in 0..100 {
            nf.update(from_db(-50.0));
        }
        assert!((nf.floor_db() + 50.0).abs() < 0.1);
        // Speech bursts with pauses do not lift it.
        for i in 0..200 {
            let p = if i % 20 < 15 { -20.0 } else { -50.0 };
            nf.update(from_db(p));
        }
        assert!((nf.floor_db() + 50.0).abs() < 0.1, "{}", nf.floor_db());
        for _ in 0..FLOOR_MEMORY_FRAMES + 3 {
            nf.update(from_db(-40.0));
        }
        assert!((nf.floor_db() + 40.0).abs() < 0.1, "{}", nf.floor_db());
        for _ in 0..3 {
            nf.update(0.0);
        }
        assert_eq!(nf.floor_db(), FLOOR_MIN_DB);
    }

    #[test]
    fn one_lost_frame_barely_moves_the_floor() {
        let mut nf = NoiseFloor::default();
        for _ in 0..50 {
            nf.update(from_db(-50.0));
        }
        nf.update(0.0);
        assert!(nf.floor_db() > -52.0, "{}", nf.floor_db());
    }

    #[test]
    fn energy_of_full_scale_square_is_zero_db() {
        assert!(energy_db(&[1.0, -1.0, 1.0, -1.0]).abs() < 1e-6);
        assert_eq!(energy_db(&[0.0; 4]), MIN_DB);
        assert_eq!(energy_db(&[]), MIN_DB);
    }
}
