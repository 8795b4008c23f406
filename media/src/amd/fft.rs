//! A fixed-size real FFT (256 points) for the tone analysis: a 128-point
//! complex radix-2 transform of the even/odd samples packed as re/im, then
//! split into the spectrum of the real signal.
//!
//! The tables are fixed arrays built once per process and shared by every
//! detector; a transform allocates nothing.

use std::sync::LazyLock;

/// Points of the real transform (32 ms at 8 kHz, bins 31.25 Hz apart).
pub(crate) const N: usize = 256;
/// Points of the complex transform underneath.
const M: usize = N / 2;
/// Bins of a real transform of `N` points that carry information (0..=N/2).
pub(crate) const BINS: usize = N / 2 + 1;

/// Twiddle factors and the bit-reversal table: the same for every
/// detector, so built once per process and shared (a copy per call was
/// 2.7 kB of each detector's 6 kB; with a thousand calls detecting, their
/// tables alone overflowed the caches the media thread works in).
struct Tables {
    /// `exp(-2πi j / M)` for `j < M / 2`.
    tw_m: [(f32, f32); M / 2],
    /// `exp(-2πi k / N)` for `k <= N / 2`.
    tw_n: [(f32, f32); BINS],
    bitrev: [u8; M],
}

static TABLES: LazyLock<Tables> = LazyLock::new(Tables::new);

impl Tables {
    fn new() -> Tables {
        let mut tw_m = [(0.0, 0.0); M / 2];
        for (j, t) in tw_m.iter_mut().enumerate() {
            let a = -2.0 * std::f64::consts::PI * j as f64 / M as f64;
            *t = (a.cos() as f32, a.sin() as f32);
        }
        let mut tw_n = [(0.0, 0.0); BINS];
        for (k, t) in tw_n.iter_mut().enumerate() {
            let a = -2.0 * std::f64::consts::PI * k as f64 / N as f64;
            *t = (a.cos() as f32, a.sin() as f32);
        }
        let bits = M.trailing_zeros();
        let mut bitrev = [0u8; M];
        for (i, b) in bitrev.iter_mut().enumerate() {
            *b = ((i as u32).reverse_bits() >> (32 - bits)) as u8;
        }
        Tables { tw_m, tw_n, bitrev }
    }
}

/// Power spectrum `|X[k]|²` of `input` for `k` in `lo..=hi` (clamped to
/// `N/2`), written to `power[k]`; other entries are left untouched. The
/// scratch space is on the stack (1 kB, always in cache).
pub(crate) fn power(input: &[f32; N], lo: usize, hi: usize, power: &mut [f32; BINS]) {
    let t = &*TABLES;
    let mut re = [0.0f32; M];
    let mut im = [0.0f32; M];
    for i in 0..M {
        let j = usize::from(t.bitrev[i]);
        re[j] = input[2 * i];
        im[j] = input[2 * i + 1];
    }
    let mut size = 2;
    while size <= M {
        let half = size / 2;
        let step = M / size;
        for start in (0..M).step_by(size) {
            for k in 0..half {
                let (wr, wi) = t.tw_m[k * step];
                let a = start + k;
                let b = a + half;
                let tr = re[b] * wr - im[b] * wi;
                let ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        size *= 2;
    }
    for (k, p) in power
        .iter_mut()
        .enumerate()
        .take(hi.min(N / 2) + 1)
        .skip(lo)
    {
        let (zr, zi) = (re[k % M], im[k % M]);
        let (cr, ci) = (re[(M - k % M) % M], -im[(M - k % M) % M]);
        // Spectrum of the even samples, and of the odd samples.
        let (er, ei) = ((zr + cr) * 0.5, (zi + ci) * 0.5);
        let (dr, di) = (zr - cr, zi - ci);
        let (or, oi) = (di * 0.5, -dr * 0.5);
        let (wr, wi) = t.tw_n[k];
        let xr = er + wr * or - wi * oi;
        let xi = ei + wr * oi + wi * or;
        *p = xr * xr + xi * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_naive_dft() {
        let mut input = [0.0f32; N];
        for (i, x) in input.iter_mut().enumerate() {
            let t = i as f32;
            *x = (t * 0.37).sin() * 0.8 + (t * 1.9).cos() * 0.3 + ((i * 7919) % 13) as f32 * 0.01;
        }
        let mut power = [0.0f32; BINS];
        super::power(&input, 0, N / 2, &mut power);
        for (k, p) in power.iter().enumerate() {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (n, x) in input.iter().enumerate() {
                let a = -2.0 * std::f64::consts::PI * (k * n) as f64 / N as f64;
                re += f64::from(*x) * a.cos();
                im += f64::from(*x) * a.sin();
            }
            let want = re * re + im * im;
            let err = (f64::from(*p) - want).abs();
            assert!(err <= 1e-3 * want.max(1.0), "bin {k}: {p} vs {want}");
        }
    }
}
