//! Tones: the spectral peaks of one frame, and a tracker that follows a
//! sustained tone (a voicemail beep, a fax CNG or CED tone) across frames.
//!
//! Each frame is judged on the last 32 ms of audio (a 256-point Hann-windowed
//! FFT, bins 31.25 Hz apart). Its *purity* is the share of the 300-3400 Hz
//! energy that lies in the main lobes of the two strongest peaks: close to 1
//! for a sine, a two-frequency beep or a buzzy beep (whose third harmonic is
//! the second peak), mostly well below 0.9 for speech, whose energy is spread
//! over many harmonics and formants (though a synthetic vowel can come close
//! to 1 for a few frames: hence the tracker's further tests). A tone is a run
//! of pure frames whose peak frequency holds or glides evenly; it may have
//! short gaps (double beeps). Start and end are refined within a frame from
//! the energy of the partial frames at either edge.

use std::sync::LazyLock;

use super::fft::{self, BINS, N};
use super::vad::MIN_DB;
use super::FRAME_MS;
use crate::codec::FRAME_SAMPLES;

/// Bin width in Hz.
pub(crate) const BIN_HZ: f32 = 8000.0 / N as f32;
/// First and last bin of the telephone band used for the energy total.
const LO_BIN: usize = 10; // 312 Hz
const HI_BIN: usize = 109; // 3406 Hz
/// Half-width of a Hann main lobe, in bins.
const LOBE: usize = 2;

/// The DTMF frequency groups (ITU-T Q.23) and the tolerance within which a
/// receiver must not ignore a digit (Q.24: ±1.8 % accepted, ±3 % may be).
const DTMF_LOW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_HIGH_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const DTMF_TOLERANCE: f32 = 0.03;
/// Least power of a DTMF digit's weaker tone against its stronger (Q.24
/// allows a twist of up to ~8 dB).
const DTMF_TWIST: f32 = 0.15;
/// A tone seen as one spectral peak keeps its envelope within this many dB
/// over the four 5 ms quarters of a frame. Two tones too close to resolve
/// (ring-back: 440 + 480 Hz, 400 + 450 Hz) beat at their difference (25,
/// 20 ms periods), swinging the quarters' energies by far more; a sine's
/// quarters (≥ 1.75 cycles of ≥ 350 Hz each) differ by < 0.5 dB.
pub(crate) const FLAT_ENVELOPE_DB: f32 = 3.0;

/// A generated tone keeps its level: at least `min_frames - 1` of its pure
/// frames must be within this many dB of its loudest (the frames at its edges
/// and around the gap of a double beep are partial and may fall short).
pub(crate) const STEADY_DB: f32 = 1.5;

/// The two strongest spectral peaks of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Peaks {
    /// Interpolated frequency of the strongest peak, Hz.
    pub f1: f32,
    /// Power in its main lobe.
    pub e1: f32,
    /// The second peak (more than three bins from the first; bins it shares
    /// with the first's lobe are left out of `e2`).
    pub f2: f32,
    pub e2: f32,
    /// Power in the whole band.
    pub total: f32,
    /// Spread of the energy over the four 5 ms quarters of the newest
    /// 20 ms, dB (loudest over quietest).
    pub envelope_db: f32,
}

impl Peaks {
    /// Share of the band's power in the two peaks (0..=1).
    pub(crate) fn purity(&self) -> f32 {
        if self.total <= 0.0 {
            0.0
        } else {
            ((self.e1 + self.e2) / self.total).min(1.0)
        }
    }

    /// The peak frequency within `tol` Hz of `hz` (the second peak counts
    /// only if it carries a tenth of the first's power), if any.
    pub(crate) fn near(&self, hz: f32, tol: f32) -> Option<f32> {
        if (self.f1 - hz).abs() <= tol {
            Some(self.f1)
        } else if self.two_tones() && (self.f2 - hz).abs() <= tol {
            Some(self.f2)
        } else {
            None
        }
    }

    /// Whether a second tone carries a tenth of the first's power.
    fn two_tones(&self) -> bool {
        self.e2 >= 0.1 * self.e1
    }

    /// The two peaks are a DTMF digit: one tone of each group, the weaker at
    /// least [`DTMF_TWIST`] of the stronger.
    pub(crate) fn dtmf_pair(&self) -> bool {
        let near =
            |f: f32, group: &[f32; 4]| group.iter().any(|g| (f - g).abs() <= DTMF_TOLERANCE * g);
        self.e2 >= DTMF_TWIST * self.e1
            && ((near(self.f1, &DTMF_LOW_HZ) && near(self.f2, &DTMF_HIGH_HZ))
                || (near(self.f1, &DTMF_HIGH_HZ) && near(self.f2, &DTMF_LOW_HZ)))
    }

    /// One peak whose envelope swings within the frame: an unresolved pair
    /// of tones beating, not a single tone.
    pub(crate) fn beating(&self) -> bool {
        !self.two_tones() && self.envelope_db > FLAT_ENVELOPE_DB
    }

    /// A peak frequency inside `lo..=hi` (the stronger first), if any.
    pub(crate) fn in_band(&self, lo: f32, hi: f32) -> Option<f32> {
        if (lo..=hi).contains(&self.f1) {
            Some(self.f1)
        } else if self.two_tones() && (lo..=hi).contains(&self.f2) {
            Some(self.f2)
        } else {
            None
        }
    }
}

/// The Hann window of the analysis, built once per process and shared.
static HANN: LazyLock<[f32; N]> = LazyLock::new(|| {
    let mut hann = [0.0; N];
    for (i, w) in hann.iter_mut().enumerate() {
        let a = 2.0 * std::f64::consts::PI * i as f64 / N as f64;
        *w = (0.5 - 0.5 * a.cos()) as f32;
    }
    hann
});

/// The peaks of the last `N` samples. Stateless: the window and the FFT
/// tables are shared, the scratch space (3.5 kB) is on the stack, so a
/// detector carries only its 1 kB of history.
pub(crate) fn peaks(history: &[f32; N]) -> Peaks {
    let mut windowed = [0.0f32; N];
    for ((w, x), h) in windowed.iter_mut().zip(history).zip(HANN.iter()) {
        *w = x * h;
    }
    let mut power = [0.0f32; BINS];
    fft::power(&windowed, LO_BIN, HI_BIN, &mut power);
    let band = &power[LO_BIN..=HI_BIN];
    let total: f32 = band.iter().sum();
    let k1 = argmax(&power, None);
    let k2 = argmax(&power, Some(k1));
    let (mut lo, mut hi) = (f32::INFINITY, 0.0f32);
    for quarter in history[N - FRAME_SAMPLES..].chunks_exact(FRAME_SAMPLES / 4) {
        let e = quarter.iter().map(|x| x * x).sum::<f32>();
        lo = lo.min(e);
        hi = hi.max(e);
    }
    let envelope_db = if hi <= 0.0 {
        0.0
    } else {
        10.0 * (hi / lo.max(hi * 1e-6)).log10()
    };
    Peaks {
        f1: interpolate(&power, k1),
        e1: lobe(&power, k1, None),
        f2: interpolate(&power, k2),
        e2: lobe(&power, k2, Some(k1)),
        total,
        envelope_db,
    }
}

/// Power in the main lobe around bin `k`, leaving out bins of the lobe
/// around `other` (two tones close together share a bin or two).
fn lobe(power: &[f32; BINS], k: usize, other: Option<usize>) -> f32 {
    let lo = k.saturating_sub(LOBE).max(LO_BIN);
    let hi = (k + LOBE).min(HI_BIN);
    (lo..=hi)
        .filter(|b| other.is_none_or(|o| b.abs_diff(o) > LOBE))
        .map(|b| power[b])
        .sum()
}

/// Parabolic interpolation of the log power around bin `k`.
fn interpolate(power: &[f32; BINS], k: usize) -> f32 {
    if k <= LO_BIN || k >= HI_BIN {
        return k as f32 * BIN_HZ;
    }
    let l = |p: f32| p.max(1e-20).ln();
    let (a, b, c) = (l(power[k - 1]), l(power[k]), l(power[k + 1]));
    let den = a - 2.0 * b + c;
    let delta = if den < 0.0 {
        (0.5 * (a - c) / den).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    (k as f32 + delta) * BIN_HZ
}

/// Index of the largest power in the band, skipping `exclude` and the three
/// bins each side of it (its main lobe and a margin: two tones 110 Hz apart,
/// 3.5 bins, are still told apart).
fn argmax(power: &[f32; BINS], exclude: Option<usize>) -> usize {
    let mut best = LO_BIN;
    let mut best_p = -1.0;
    for (k, p) in power.iter().enumerate().take(HI_BIN + 1).skip(LO_BIN) {
        if exclude.is_some_and(|x| k.abs_diff(x) <= LOBE + 1) {
            continue;
        }
        if *p > best_p {
            best_p = *p;
            best = k;
        }
    }
    best
}

/// What a tracked tone must look like.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToneSpec {
    /// Band its frequency must start in, Hz.
    pub lo_hz: f32,
    pub hi_hz: f32,
    /// Least purity of a frame that belongs to the tone.
    pub min_purity: f32,
    /// Largest frequency change from one frame to the next, Hz (a glide).
    pub max_step_hz: f32,
    /// Largest departure from the frequency predicted by the last step, Hz:
    /// a generated tone is steady or glides evenly, a voice wobbles.
    pub max_bend_hz: f32,
    /// Pure frames needed before the tone is confirmed.
    pub min_frames: u32,
    /// A tone lasting longer than this many frames is rejected.
    pub max_frames: u32,
    /// Frames without the tone that end it (double beeps have ~40 ms gaps).
    pub max_gap_frames: u32,
    /// One of the two frames before the tone, and every frame from the
    /// second after it until it is declared over, must be this many dB below
    /// its loudest frame: a beep stands alone, a sung or spoken vowel is
    /// surrounded by more voice.
    pub contrast_db: f32,
    /// Refuse telephone signalling: a tone most of whose frames are a DTMF
    /// digit, or one peak beating (ring-back's close pair).
    pub refuse_signalling: bool,
}

/// A tracked tone. Times in ms from the first frame fed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ToneInfo {
    /// Index of its first pure frame.
    pub first_frame: u32,
    pub start_ms: f32,
    pub end_ms: f32,
    pub mean_hz: f32,
}

/// What one frame changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ToneEvent {
    /// The tone has lasted `min_frames` after a quiet stretch (`end_ms` is
    /// so far).
    Confirmed(ToneInfo),
    /// A confirmed tone ended, within `max_frames`, into a quiet stretch.
    Ended(ToneInfo),
    /// A confirmed tone ended without qualifying (too long, not steady, or
    /// followed by more sound).
    Rejected,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    first: u32,
    last: u32,
    pure_frames: u32,
    hz: f32,
    slope: f32,
    hz_sum: f32,
    /// Loudest pure frame, dBFS, and how many pure frames came within
    /// [`STEADY_DB`] of it (counted against the peak as it was then).
    peak_db: f32,
    steady_frames: u32,
    /// Quietest of the two frames before the first, dBFS.
    before_db: f32,
    /// A frame after the one following `last` was not `contrast_db` below
    /// the peak (the one right after may hold the tone's tail).
    loud_after: bool,
    /// Power above the floor of the frame before the first, the first, the
    /// last and the one after the last; and of the loudest frame.
    before: f32,
    first_power: f32,
    last_power: f32,
    after: f32,
    peak: f32,
    confirmed: bool,
    /// Confirmation refused (no quiet before it): followed, never reported.
    refused: bool,
    too_long: bool,
    /// Pure frames that were a DTMF digit, and that beat.
    dtmf_frames: u32,
    beating_frames: u32,
}

impl Run {
    fn fraction(&self, p: f32) -> f32 {
        if self.peak <= 0.0 {
            0.0
        } else {
            (p / self.peak).clamp(0.0, 1.0)
        }
    }

    fn info(&self) -> ToneInfo {
        let ms = FRAME_MS as f32;
        let start = (self.first as f32 + 1.0) * ms
            - ms * self.fraction(self.first_power)
            - ms * self.fraction(self.before);
        let end = self.last as f32 * ms
            + ms * self.fraction(self.last_power)
            + ms * self.fraction(self.after);
        ToneInfo {
            first_frame: self.first,
            start_ms: start.max(0.0),
            end_ms: end.max(start),
            mean_hz: self.hz_sum / self.pure_frames.max(1) as f32,
        }
    }

    /// The frequency `peaks` continues this run with, if any.
    fn continues(&self, spec: &ToneSpec, index: u32, peaks: &Peaks) -> Option<f32> {
        let gap = index.saturating_sub(self.last).max(1) as f32;
        let tolerance = if self.pure_frames <= 2 {
            spec.max_step_hz * gap
        } else {
            spec.max_bend_hz * gap
        };
        peaks.near(self.hz + self.slope * gap, tolerance)
    }
}

/// Follows one tone at a time.
#[derive(Debug, Clone)]
pub(crate) struct ToneTracker {
    spec: ToneSpec,
    run: Option<Run>,
    /// Power above the floor, and energy in dBFS, of the previous frame; and
    /// energy of the one before.
    prev_power: f32,
    prev_db: [f32; 2],
}

impl ToneTracker {
    pub(crate) fn new(spec: ToneSpec) -> ToneTracker {
        ToneTracker {
            spec,
            run: None,
            prev_power: 0.0,
            prev_db: [MIN_DB; 2],
        }
    }

    /// True while a confirmed tone is sounding (its frames are not speech).
    pub(crate) fn in_tone(&self) -> bool {
        self.run.is_some_and(|r| r.confirmed)
    }

    /// Feed frame `index`: its energy (dBFS), its power above the noise
    /// floor (linear) and its peaks if it was loud enough to analyse.
    pub(crate) fn push(
        &mut self,
        index: u32,
        energy_db: f32,
        power: f32,
        peaks: Option<&Peaks>,
    ) -> Option<ToneEvent> {
        let event = self.step(index, energy_db, power, peaks);
        self.prev_power = power;
        self.prev_db = [energy_db, self.prev_db[0]];
        event
    }

    fn step(
        &mut self,
        index: u32,
        energy_db: f32,
        power: f32,
        peaks: Option<&Peaks>,
    ) -> Option<ToneEvent> {
        let spec = self.spec;
        let pure = peaks.filter(|p| p.purity() >= spec.min_purity);
        let mut event = None;
        if let Some(run) = self.run.as_mut() {
            if let Some(hz) = pure.and_then(|p| run.continues(&spec, index, p)) {
                let gap = index.saturating_sub(run.last).max(1) as f32;
                let step = ((hz - run.hz) / gap).clamp(-spec.max_step_hz, spec.max_step_hz);
                // The first frame often holds only part of the tone (its
                // frequency is less sure): the line starts from the second.
                run.slope = match run.pure_frames {
                    1 => 0.0,
                    2 => step,
                    _ => 0.5 * (run.slope + step),
                };
                run.last = index;
                run.pure_frames += 1;
                run.hz = hz;
                run.hz_sum += hz;
                if let Some(p) = pure {
                    run.dtmf_frames += u32::from(p.dtmf_pair());
                    run.beating_frames += u32::from(p.beating());
                }
                run.last_power = power;
                run.after = 0.0;
                run.loud_after = false;
                run.peak = run.peak.max(power);
                if energy_db > run.peak_db + STEADY_DB {
                    run.steady_frames = 0;
                }
                if energy_db >= run.peak_db - STEADY_DB {
                    run.steady_frames += 1;
                }
                run.peak_db = run.peak_db.max(energy_db);
                if index - run.first >= spec.max_frames {
                    run.too_long = true;
                }
                if !run.confirmed && !run.refused && run.pure_frames >= spec.min_frames {
                    if run.before_db <= run.peak_db - spec.contrast_db {
                        run.confirmed = true;
                        event = Some(ToneEvent::Confirmed(run.info()));
                    } else {
                        run.refused = true;
                    }
                }
                return event;
            }
            if index == run.last.saturating_add(1) {
                run.after = power;
            }
            if index > run.last.saturating_add(1) && energy_db > run.peak_db - spec.contrast_db {
                run.loud_after = true;
            }
            if index - run.last > spec.max_gap_frames {
                if run.confirmed {
                    let steady = run.steady_frames + 1 >= spec.min_frames;
                    let signalling = spec.refuse_signalling
                        && (2 * run.dtmf_frames > run.pure_frames
                            || 2 * run.beating_frames > run.pure_frames);
                    event = Some(
                        if steady && !run.loud_after && !run.too_long && !signalling {
                            ToneEvent::Ended(run.info())
                        } else {
                            ToneEvent::Rejected
                        },
                    );
                }
                self.run = None;
            }
        }
        if self.run.is_none() {
            if let Some(hz) = pure.and_then(|p| p.in_band(spec.lo_hz, spec.hi_hz)) {
                self.run = Some(Run {
                    first: index,
                    last: index,
                    pure_frames: 1,
                    hz,
                    slope: 0.0,
                    hz_sum: hz,
                    peak_db: energy_db,
                    steady_frames: 1,
                    before_db: self.prev_db[0].min(self.prev_db[1]),
                    loud_after: false,
                    before: self.prev_power,
                    first_power: power,
                    last_power: power,
                    after: 0.0,
                    peak: power,
                    confirmed: false,
                    refused: false,
                    too_long: false,
                    dtmf_frames: u32::from(pure.is_some_and(Peaks::dtmf_pair)),
                    beating_frames: u32::from(pure.is_some_and(Peaks::beating)),
                });
            }
        }
        event
    }
}
