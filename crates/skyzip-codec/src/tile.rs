//! One tile: blank mask, normalisation, quantised latent, residuals — decodable on its own.
//!
//! Layout: `[version u8][8 bytes of sha256 over the decoded tile][range-coded body]`. The body
//! holds, in order: the blank mask (none / all / run lengths), the tile's normalisation
//! (2 × 64 raw bits), the latent (per channel a scale index, then every value; for a model with
//! a learned prior, first a bit per channel choosing that or the prior's table), the residual
//! mode (2 bits before format 5, 3 bits before the latent from format 5 on) and the residual of
//! every non-blank pixel, each under a Laplace snapped to the table:
//! against the model's prediction round(μ) with the model's σ as scale, or against round(μ) plus
//! a median-edge prediction from the decoded neighbours' model residuals (for images whose
//! structure the latent does not carry), with the scale from the neighbours or from the model;
//! or that prediction corrected by a running per-context bias with a per-context adaptive scale
//! (JPEG-LS-style; contexts from the model's σ, the neighbours' activity and the local gradient),
//! or (format 7, mode 5) the same with the mean of the left and upper neighbours' residuals in
//! place of the median edge. The encoder keeps the cheapest (or mode 4, [`crate::histogram`]). In the
//! RMSE mode (format 6, [`Rdo`]) the residuals lie on a step of any size with indices chosen
//! for rate and distortion together, and two centroid offsets precede them (from format 7 on,
//! three: the zero bin's too). The hash is
//! checked after decoding, so a corrupted tile is an error, never a silently wrong image.

use crate::entropy::{cost, cost_fx, snap, Corrupt, Reader, Writer, SCALES};
use crate::histogram::{Predict, Quant};
use crate::predict::Predictor;
use sha2::{Digest, Sha256};
use skyzip_data::{Norm, NormKind};

/// The tile format (the file format's version: see [`crate::codec::FORMAT_VERSION`]).
pub const VERSION: u8 = 7;
const SCALE_BITS: u32 = 7;

/// How the integers of a tile may be coded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Largest allowed |error| in integer units (0 = lossless).
    pub e: i64,
    /// The range every decoded value must lie in (the pixel type's).
    pub lo: i64,
    pub hi: i64,
    /// A tunable model's rate: only the first η latent channels are coded, the others are
    /// zero (the prefix mask it was trained with). None: every channel.
    pub eta: Option<usize>,
    /// The RMSE mode (format 6; `e` is then 0): no per-pixel bound. None in the lossless and
    /// max-error modes.
    pub rdo: Option<Rdo>,
}

/// The RMSE mode's quantiser: residuals on any step ≥ 2, each pixel's index chosen for rate
/// and distortion together (D + λ·R, which widens the zero bin: a dead zone where the noise
/// is not worth its bits), and the nonzero bins reconstructed at the tile's measured centroid
/// of each (|index| = 1, |index| ≥ 2: the conditional mean, pulled toward the prediction),
/// both sent in the tile, and (format 7) the zero bin at the mean residual of its pixels (the
/// prediction's bias over the tile), sent too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rdo {
    /// The quantiser step in integer units (≥ 2).
    pub step: i64,
    /// The encoder's 1/λ: fixed-point bits ([`crate::entropy::COST_ONE`] a bit) that one unit²
    /// of squared error is worth; 0: the nearest bin, decisions by bits alone (the max-error
    /// quantiser's, on this step). The decoder does not use it.
    pub inv_lambda: u64,
}

impl Settings {
    /// The residual step: 1 when lossless, 2e + 1 in the max-error mode, the RMSE mode's own.
    pub fn step(&self) -> i64 {
        match self.rdo {
            Some(r) => r.step,
            None => 2 * self.e + 1,
        }
    }
}

/// A coded tile.
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// The entropy model's estimate of the body's size, in bits.
    pub est_bits: f64,
    /// What the decoder will produce.
    pub decoded: Vec<i64>,
    /// How many latent channels went under the model's learned prior (the others under
    /// per-tile Laplace scales).
    pub prior_channels: usize,
}

/// The tile hash over every pixel's 8 little-endian bytes (0 for a blank) and its blank byte:
/// format 4, XXH3-64 (its frozen 0.8 specification, seed 0; the 8 bytes little-endian);
/// format 3, the first 8 bytes of sha256.
fn digest(v: &[i64], blank: &[bool], version: u8) -> [u8; 8] {
    if version >= 4 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        hashed_bytes(v, blank, |b| h.update(b));
        h.digest().to_le_bytes()
    } else {
        let mut h = Sha256::new();
        hashed_bytes(v, blank, |b| h.update(b));
        let mut out = [0u8; 8];
        out.copy_from_slice(&h.finalize()[..8]);
        out
    }
}

/// The bytes a tile hash covers, a block of pixels at a time (the same bytes as one update
/// per value).
fn hashed_bytes(v: &[i64], blank: &[bool], mut update: impl FnMut(&[u8])) {
    const BLOCK: usize = 512;
    let mut buf = [0u8; 9 * BLOCK];
    for (vs, bs) in v.chunks(BLOCK).zip(blank.chunks(BLOCK)) {
        for ((x, b), out) in vs.iter().zip(bs).zip(buf.chunks_exact_mut(9)) {
            out[..8].copy_from_slice(&if *b { 0 } else { *x }.to_le_bytes());
            out[8] = *b as u8;
        }
        update(&buf[..9 * vs.len()]);
    }
}

fn put_norm(w: &mut Writer, n: &Norm) {
    for v in n.params() {
        w.put_bits(v.to_bits(), 64);
    }
}

fn get_norm(r: &mut Reader, kind: NormKind) -> Result<Norm, Corrupt> {
    let a = f64::from_bits(r.get_bits(64)?);
    let b = f64::from_bits(r.get_bits(64)?);
    if !(a.is_finite() && b.is_finite()) {
        return Err(Corrupt("non-finite normalisation".into()));
    }
    Ok(kind.with_params([a, b]))
}

/// The network's input: the tile normalised and quantised to the encoder's input scale
/// ([`crate::engine::IntNet::quantise_value`]), blanks at 0, edge-padded to `pw`×`ph`.
#[allow(clippy::too_many_arguments)]
fn network_input(
    net: &crate::engine::IntNet,
    v: &[i64],
    blank: &[bool],
    w: usize,
    h: usize,
    norm: &Norm,
    pw: usize,
    ph: usize,
) -> Vec<i16> {
    let f = |x: i64| net.quantise_value(crate::detmath::norm::forward(norm, x as f64) as f32);
    // Each distinct value is normalised once, remembered over the tile's range of values
    // when that is not much wider than the tile (`None`: not yet seen).
    let values = v.iter().zip(blank).filter(|(_, &b)| !b).map(|(&x, _)| x);
    let (lo, hi) = values.fold((i64::MAX, i64::MIN), |(l, h), x| (l.min(x), h.max(x)));
    let span = hi
        .checked_sub(lo)
        .filter(|&d| d >= 0 && (d as u64) < 4 * (w * h) as u64);
    let mut memo = vec![None; span.map_or(0, |d| d as usize + 1)];
    let mut norm_of = |x: i64| match memo.get_mut(x.wrapping_sub(lo) as usize) {
        Some(m) => *m.get_or_insert_with(|| f(x)),
        _ => f(x),
    };
    let mut out = vec![0i16; pw * ph];
    for y in 0..h {
        let row = &mut out[y * pw..(y + 1) * pw];
        let (vs, bs) = (&v[y * w..(y + 1) * w], &blank[y * w..(y + 1) * w]);
        for ((r, &x), &b) in row.iter_mut().zip(vs).zip(bs) {
            *r = if b { 0 } else { norm_of(x) };
        }
        let edge = row[w - 1];
        row[w..].fill(edge);
    }
    for y in h..ph {
        out.copy_within((h - 1) * pw..h * pw, y * pw);
    }
    out
}

/// Per pixel: the integer prediction and the scale index of the residual (after the step).
/// A tile's size and the padded width the network saw.
#[derive(Clone, Copy)]
struct Geometry {
    w: usize,
    h: usize,
    pw: usize,
}

fn predictions(
    p: &Predictor,
    (mu, var): &(Vec<i16>, Vec<i16>),
    norm: &Norm,
    g: Geometry,
    s: &Settings,
) -> (Vec<i64>, Vec<usize>) {
    let Geometry { w, h, pw } = g;
    let step = s.step() as f64;
    let (lo, hi) = (s.lo as f64, s.hi as f64);
    let unit = s.step() == 1;
    let mut pred = Vec::with_capacity(w * h);
    let mut scale = Vec::with_capacity(w * h);
    for y in 0..h {
        let (mr, vr) = (&mu[y * pw..y * pw + w], &var[y * pw..y * pw + w]);
        for (&m, &v) in mr.iter().zip(vr) {
            let (md, sigma) = p.mean_and_sigma(norm, m, v);
            pred.push(if md.is_finite() {
                crate::detmath::round_half_away(md).clamp(lo, hi) as i64
            } else {
                0
            });
            // A Laplace of standard deviation σ has scale σ/√2 (÷ 1 is exact: skipped).
            let b = sigma / std::f64::consts::SQRT_2;
            scale.push(snap(if unit { b } else { b / step }));
        }
    }
    (pred, scale)
}

fn put_runs(w: &mut Writer, blank: &[bool]) {
    let mut runs = Vec::new();
    let (mut cur, mut len) = (false, 0i64);
    for &b in blank {
        if b == cur {
            len += 1;
        } else {
            runs.push(len);
            cur = b;
            len = 1;
        }
    }
    runs.push(len);
    let mean = runs.iter().sum::<i64>() as f64 / runs.len() as f64;
    let s = snap(mean);
    w.put_bits(s as u64, SCALE_BITS);
    for r in runs {
        w.put(r, s);
    }
}

fn get_runs(r: &mut Reader, n: usize) -> Result<Vec<bool>, Corrupt> {
    let s = r.get_bits(SCALE_BITS)? as usize;
    let mut out = Vec::with_capacity(n);
    let mut cur = false;
    while out.len() < n {
        let len = r.get(s)?;
        if len < 0 || len as usize > n - out.len() {
            return Err(Corrupt(format!("blank run of {len} pixels")));
        }
        out.extend(std::iter::repeat_n(cur, len as usize));
        cur = !cur;
    }
    Ok(out)
}

/// How a tile's residuals are predicted and scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Residuals {
    /// x − round(μ), Laplace scale from the model's σ.
    Model = 0,
    /// The model residual further predicted from its causal neighbours (LOCO-I's median edge
    /// detector on x − round(μ)); scale from the neighbours' coded values (JPEG-LS-like context).
    MedContext = 1,
    /// The same prediction with the model's σ as the scale.
    MedModel = 2,
    /// The median-edge prediction corrected by each context's running bias, with the scale
    /// each context has seen so far (JPEG-LS-style adaptation), contexts from the model's σ and
    /// the neighbours' activity.
    Adaptive = 3,
    /// As `Adaptive` with the mean of the left and upper neighbours' residuals, ⌊(a + b)/2⌋,
    /// in place of the median edge (format 7 on; code 5, 4 being the histogram): where the
    /// residuals are mostly noise the mean of two predicts with less noise than a + b − c.
    AdaptiveAvg = 5,
}

/// Running statistics of one adaptive context, in units of the residual step.
#[derive(Clone, Copy, Default)]
struct Ctx {
    abs: i64,
    sum: i64,
    n: i64,
}

/// Context statistics are halved when a context has seen this many values (so they follow
/// changes across the tile, as JPEG-LS's RESET).
const CTX_RESET: i64 = 1024;
/// Weight, in values, of a context's starting guess (the model's or neighbours' scale).
const CTX_PRIOR: f64 = 8.0;
/// Activity buckets: 0, then ⌊log2⌋ + 1 of the neighbours' mean |q|, capped.
const ACT_BUCKETS: usize = 12;

/// Gradient buckets (the same log2 bucketing of |a−c| + |b−c| + |d−b|, in steps).
const GRAD_BUCKETS: usize = 8;

fn activity_bucket(mean_abs: i64) -> usize {
    if mean_abs <= 0 {
        0
    } else {
        ((64 - mean_abs.leading_zeros()) as usize).min(ACT_BUCKETS - 1)
    }
}

/// LOCO-I's median edge detector.
pub(crate) fn med(a: i64, b: i64, c: i64) -> i64 {
    if c >= a.max(b) {
        a.min(b)
    } else if c <= a.min(b) {
        a.max(b)
    } else {
        a.saturating_add(b).saturating_sub(c)
    }
}

/// The mean of two neighbours, ⌊(a + b)/2⌋ (format 7's predictor for noise: mode 5 and mode
/// 4's [`Predict::Avg`]).
pub(crate) fn mean2(a: i64, b: i64) -> i64 {
    a.saturating_add(b).div_euclid(2)
}

/// The sum of |coded value| over a pixel's causal neighbours (left, up-left, up, up-right, those
/// inside the tile; 0 for blanks) and how many there are: `cur` is the pixel's row so far,
/// `prev` the row above (None on the first row).
#[inline(always)]
fn neighbour_magnitudes(cur: &[i64], prev: Option<&[i64]>, x: usize, w: usize) -> (i64, i64) {
    let mut sum = 0i64;
    let mut k = 0i64;
    let mut add = |v: i64| {
        sum = sum.saturating_add(v);
        k += 1;
    };
    if x > 0 {
        add(cur[x - 1]);
    }
    if let Some(up) = prev {
        add(up[x]);
        if x > 0 {
            add(up[x - 1]);
        }
        if x + 1 < w {
            add(up[x + 1]);
        }
    }
    (sum, k)
}

/// Visits the non-blank pixels in raster order with the prediction (`base`) and scale index
/// the mode gives them; `code` returns the quantised residual (the encoder computes and writes
/// it, the decoder reads it). Returns the decoded values. Encoder and decoder share this walk,
/// so they derive the same contexts from the same decoded neighbours.
#[allow(clippy::too_many_arguments)]
fn walk(
    mode: Residuals,
    pred: &[i64],
    scale: &[usize],
    blank: &[bool],
    w: usize,
    h: usize,
    s: &Settings,
    theta: [i64; 3],
    code: impl FnMut(usize, usize, i64) -> Result<i64, Corrupt>,
    row_done: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<i64>>, Corrupt> {
    // Each mode, lossless (a step of 1: no divisions by the step) or not, is compiled on its
    // own, without a branch on the mode per pixel.
    macro_rules! go {
        ($unit:expr) => {
            match mode {
                Residuals::Model => {
                    walk_with::<$unit, 0>(pred, scale, blank, w, h, s, theta, code, row_done)
                }
                Residuals::MedContext => {
                    walk_with::<$unit, 1>(pred, scale, blank, w, h, s, theta, code, row_done)
                }
                Residuals::MedModel => {
                    walk_with::<$unit, 2>(pred, scale, blank, w, h, s, theta, code, row_done)
                }
                Residuals::Adaptive => {
                    walk_with::<$unit, 3>(pred, scale, blank, w, h, s, theta, code, row_done)
                }
                Residuals::AdaptiveAvg => {
                    walk_with::<$unit, 4>(pred, scale, blank, w, h, s, theta, code, row_done)
                }
            }
        };
    }
    if s.step() == 1 {
        go!(true)
    } else {
        go!(false)
    }
}

/// The residual modes of the model (codes 0–3 and 5; 4 is the histogram, [`crate::histogram`]).
const MODES: [Residuals; 5] = [
    Residuals::Model,
    Residuals::MedContext,
    Residuals::MedModel,
    Residuals::Adaptive,
    Residuals::AdaptiveAvg,
];

/// The model's residual mode of code `m` in a tile of format `version` (None: not one).
fn residual_mode(m: usize, version: u8) -> Option<Residuals> {
    match m {
        0..=3 => Some(MODES[m]),
        5 if version >= 7 => Some(Residuals::AdaptiveAvg),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn walk_with<const UNIT: bool, const MODE: usize>(
    pred: &[i64],
    scale: &[usize],
    blank: &[bool],
    w: usize,
    h: usize,
    s: &Settings,
    theta: [i64; 3],
    mut code: impl FnMut(usize, usize, i64) -> Result<i64, Corrupt>,
    mut row_done: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<i64>>, Corrupt> {
    let mode = MODES[MODE];
    let adaptive = matches!(mode, Residuals::Adaptive | Residuals::AdaptiveAvg);
    let step = if UNIT { 1 } else { s.step() };
    let n = w * h;
    // Every pixel's value in raster order (0 for blanks).
    let mut out = Vec::with_capacity(n);
    // Reconstructed model residuals and |coded values| (0 for blanks) of the current row and
    // the row above: row y is held at (y mod 2)·w.
    let mut res = vec![0i64; 2 * w];
    let mut mag = vec![0i64; 2 * w];
    let mut ctx = if adaptive {
        vec![Ctx::default(); SCALES.div_ceil(2) * ACT_BUCKETS * GRAD_BUCKETS]
    } else {
        Vec::new()
    };
    for y in 0..h {
        let (here, up) = if y % 2 == 0 { (0, w) } else { (w, 0) };
        for x in 0..w {
            let i = y * w + x;
            if blank[i] {
                if MODE != 0 {
                    res[here + x] = 0;
                    mag[here + x] = 0;
                }
                out.push(0);
                continue;
            }
            let neighbours = |mag: &[i64]| {
                let above = (y > 0).then(|| &mag[up..up + w]);
                neighbour_magnitudes(&mag[here..here + w], above, x, w)
            };
            let (mut cur, mut corr) = (0, 0i64);
            let (base, sidx) = match mode {
                Residuals::Model => (pred[i], scale[i]),
                _ => {
                    let a = if x > 0 {
                        res[here + x - 1]
                    } else if y > 0 {
                        res[up + x]
                    } else {
                        0
                    };
                    let b = if y > 0 { res[up + x] } else { a };
                    let c = if x > 0 && y > 0 { res[up + x - 1] } else { b };
                    let near = if mode == Residuals::AdaptiveAvg {
                        mean2(a, b)
                    } else {
                        med(a, b, c)
                    };
                    let mut base = pred[i].saturating_add(near).clamp(s.lo, s.hi);
                    let sidx = match mode {
                        Residuals::MedModel => scale[i],
                        Residuals::Adaptive | Residuals::AdaptiveAvg => {
                            let (sum, k) = neighbours(&mag);
                            let d = if y > 0 && x + 1 < w {
                                res[up + x + 1]
                            } else {
                                b
                            };
                            let grad = (a.saturating_sub(c).saturating_abs())
                                .saturating_add(b.saturating_sub(c).saturating_abs())
                                .saturating_add(d.saturating_sub(b).saturating_abs())
                                / step;
                            let cj = ((scale[i] / 2) * ACT_BUCKETS
                                + activity_bucket(if k == 0 { 0 } else { sum / k }))
                                * GRAD_BUCKETS
                                + activity_bucket(grad).min(GRAD_BUCKETS - 1);
                            cur = cj;
                            let st = ctx[cj];
                            if st.n > 0 {
                                // Bias cancellation: the context's mean signed residual (before
                                // correction), rounded.
                                corr = (2 * st.sum + st.n).div_euclid(2 * st.n);
                                base = base
                                    .saturating_add(corr.saturating_mul(step))
                                    .clamp(s.lo, s.hi);
                            }
                            let model_b = crate::entropy::scale(scale[i]);
                            let guess = if k == 0 {
                                model_b
                            } else {
                                0.5 * (model_b + sum as f64 / k as f64)
                            };
                            snap(
                                ((st.abs as f64 + CTX_PRIOR * guess) / (st.n as f64 + CTX_PRIOR))
                                    .max(0.3),
                            )
                        }
                        _ => match neighbours(&mag) {
                            (_, 0) => scale[i],
                            (sum, k) => snap((sum as f64 / k as f64).max(0.3)),
                        },
                    };
                    (base, sidx)
                }
            };
            let q = code(i, sidx, base)?;
            if adaptive {
                let st = &mut ctx[cur];
                st.abs = st.abs.saturating_add(q.saturating_abs());
                st.sum = st.sum.saturating_add(q.saturating_add(corr));
                st.n += 1;
                if st.n >= CTX_RESET {
                    st.abs /= 2;
                    st.sum /= 2;
                    st.n /= 2;
                }
            }
            let xv = if UNIT {
                base.saturating_add(q)
            } else {
                base.saturating_add(reconstruction(q, step, theta))
            }
            .clamp(s.lo, s.hi);
            // The RMSE mode's zero-bin offset (format 7) moves the decoded value only: the
            // neighbours' residuals below stay the bin's, so the walk's predictions, contexts
            // and decisions do not depend on it.
            if UNIT || q != 0 || theta[2] == 0 {
                out.push(xv);
            } else {
                out.push(base.saturating_add(theta[2]).clamp(s.lo, s.hi));
            }
            // The model mode reads no neighbours: nothing to keep for them.
            if MODE != 0 {
                res[here + x] = xv.saturating_sub(pred[i]);
                mag[here + x] = q.saturating_abs();
            }
        }
        if !row_done(y) {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// The residual that index q stands for in the walk: q·step, less the class's centroid offset
/// θ toward zero (θ = 0 outside the RMSE mode: the bin centre); 0 for q = 0 (the zero bin's
/// offset θ[2] moves only the decoded value, see [`decoded_residual`]).
#[inline(always)]
fn reconstruction(q: i64, step: i64, theta: [i64; 3]) -> i64 {
    let t = theta[(q.unsigned_abs() > 1) as usize];
    let r = q.saturating_mul(step);
    match q.signum() {
        1 => r - t,
        -1 => r + t,
        _ => 0,
    }
}

/// The residual that index q decodes to: [`reconstruction`], or the zero bin's offset θ[2] for
/// q = 0 (format 7: the tile's mean residual where the prediction is kept).
#[inline(always)]
fn decoded_residual(q: i64, step: i64, theta: [i64; 3]) -> i64 {
    if q == 0 {
        theta[2]
    } else {
        reconstruction(q, step, theta)
    }
}

/// The RMSE mode's choice of index for residual r at scale index `sidx`: of the nearest bin,
/// its neighbours and 0, the one of least D·(1/λ) + R (fixed-point bits). Returns it and that
/// cost.
#[inline]
fn rdo_index(r: i64, sidx: usize, step: i64, theta: [i64; 3], inv_lambda: u64) -> (i64, u64) {
    let k = (r.unsigned_abs() as i64 + step / 2) / step;
    let sign = if r < 0 { -1 } else { 1 };
    if inv_lambda == 0 {
        // κ = 0: the nearest bin, weighed by its bits alone (the max-error quantiser's
        // decisions, reconstructed at the centroids).
        return (sign * k, cost_fx(sign * k, sidx));
    }
    let mut best = (0i64, u64::MAX);
    // [k, k − 1, k + 1, 0] without repeats, in that order (the first of equal costs wins).
    let cands: &[i64] = match k {
        0 => &[0, 1],
        1 => &[1, 0, 2],
        _ => &[k, k - 1, k + 1, 0],
    };
    for &m in cands {
        let q = sign * m;
        let d = r
            .saturating_sub(decoded_residual(q, step, theta))
            .unsigned_abs();
        let j = d
            .saturating_mul(d)
            .saturating_mul(inv_lambda)
            .saturating_add(cost_fx(q, sidx));
        if j < best.1 {
            best = (q, j);
        }
    }
    best
}

/// The quantised residual of r: ⌊(r + e) / (2e + 1)⌋ (r itself when lossless).
#[inline(always)]
fn quantise(r: i64, e: i64, step: i64) -> i64 {
    if e == 0 {
        r
    } else {
        (r + e).div_euclid(step)
    }
}

/// The encoder's first look at the residual modes: every SAMPLE_PART-th band of SAMPLE_BAND
/// rows (when those hold at least SAMPLE_MIN pixels with data), and the margin over the
/// cheapest there within which a mode is costed on the whole tile too.
const SAMPLE_PART: usize = 8;
const SAMPLE_BAND: usize = 8;
const SAMPLE_MIN: usize = 4096;
const SAMPLE_MARGIN: f64 = 0.10;
/// The mean-of-two adaptive mode's margin on the sample (where it does not lead there): on
/// white noise it comes within 5 % of the model's own mode and never wins, and walking it whole
/// cost M13's lossless encoding 12 %.
const AVG_SAMPLE_MARGIN: f64 = 0.03;
/// Mode 4's further margin on the sample: its tables learn as the tile is coded, so a sample
/// of an eighth of the rows prices it high (kept within 20 % there, SAAO's lossless tiles took
/// it on 5 of 9 tiles instead of 3: −1.9 %).
const HISTOGRAM_SAMPLE_MARGIN: f64 = 0.20;

/// Whether the encoder offers residual mode `m` under settings `s`: every mode but mode 5 in
/// the RMSE mode at κ = 0. There the mode is chosen by bits alone, and mode 5's mean spreads
/// half of a source's residual into its neighbours' predictions, which a zero index then keeps:
/// on ESO at a 4σ step it saved 3 % of the bytes for 12 % more RMSE (1.217σ against 1.089σ).
fn offered(m: Residuals, s: &Settings) -> bool {
    m != Residuals::AdaptiveAvg || !matches!(s.rdo, Some(r) if r.inv_lambda == 0)
}

/// Which of a pair of modes that differ only in their neighbour predictor (MED or the mean of
/// two) the encoder prices on a sample: Some(true) the mean's, Some(false) the median edge's,
/// None both. Outside the RMSE mode only the one whose predictor is nearer the sample's values
/// `r(i)` ([`mean_predicts_better`]): pricing both cost M13's lossless encoding 12 %. In the
/// RMSE mode both: at its coarse steps the decoded neighbours are far from the originals that
/// sum sees, and it chose badly (SAAO at 1σ RMSE +29 %, HorseHead +59 %).
fn mean_or_edge(rmse: bool, r: impl Fn(usize) -> i64, blank: &[bool], w: usize) -> Option<bool> {
    (!rmse).then(|| mean_predicts_better(r, blank, w))
}

/// Whether ⌊(a + b)/2⌋ of the left and upper neighbours predicts a sample's values `r(i)`
/// (blanks skipped) with a smaller Σ|error| than the median edge MED(a, b, c) (an integer sum:
/// the same choice on every machine).
fn mean_predicts_better(r: impl Fn(usize) -> i64, blank: &[bool], w: usize) -> bool {
    let (mut mean, mut edge) = (0u64, 0u64);
    for i in w + 1..blank.len() {
        if i % w == 0 || blank[i] || blank[i - 1] || blank[i - w] || blank[i - w - 1] {
            continue;
        }
        let (x, a, b, c) = (r(i), r(i - 1), r(i - w), r(i - w - 1));
        mean += x.saturating_sub(mean2(a, b)).unsigned_abs();
        edge += x.saturating_sub(med(a, b, c)).unsigned_abs();
    }
    mean < edge
}

/// The given rows of a `w`-wide image, one after another.
fn gather<T: Copy>(x: &[T], rows: &[usize], w: usize) -> Vec<T> {
    rows.iter()
        .flat_map(|&y| x[y * w..(y + 1) * w].iter().copied())
        .collect()
}

/// Whether a walk with `bits` after row `y` is too far behind the leader (`lead`: its bits
/// after each row of the walk) there to be costed further: checked every CHECK_ROWS rows,
/// past the first, once the leader has spent a LEAD_PART of its bits (rows with little or no
/// data, such as a blank border, say nothing of a mode yet), against `slack` plus a margin that
/// narrows from LEAD_MARGIN to nothing as the walk nears the last row.
const CHECK_ROWS: usize = 8;
const LEAD_MARGIN: f64 = 0.1;
const LEAD_PART: u64 = 8;

fn behind(bits: u64, lead: &[u64], y: usize, slack: f64) -> bool {
    let rows = lead.len();
    if !(y + 1).is_multiple_of(CHECK_ROWS) || y + 1 < 2 * CHECK_ROWS || y >= rows {
        return false;
    }
    if lead[y] < lead[rows - 1] / LEAD_PART {
        return false;
    }
    let left = 1.0 - (y + 1) as f64 / rows as f64;
    bits as f64 > lead[y] as f64 * (1.0 + slack + LEAD_MARGIN * left)
}

/// The max error of mode 4's grid: the max-error mode's; in the RMSE mode the largest odd
/// grid within its step ((step − 1)/2: mode 4 quantises with a dither and no dead zone, every
/// |error| ≤ that).
fn histogram_e(s: &Settings) -> i64 {
    match s.rdo {
        Some(r) => (r.step - 1) / 2,
        None => s.e,
    }
}

/// Σ (decoded − value)² over the pixels with data.
fn squared_error(decoded: &[i64], v: &[i64], blank: &[bool]) -> u128 {
    decoded
        .iter()
        .zip(v)
        .zip(blank)
        .filter(|(_, &b)| !b)
        .map(|((&a, &x), _)| (a as i128 - x as i128).unsigned_abs().pow(2))
        .sum()
}

/// Bits of each centroid offset θ ∈ 0…step/2 (the RMSE mode).
fn theta_bits(step: i64) -> u32 {
    64 - ((step / 2) as u64).leading_zeros()
}

/// The RMSE mode's offsets. Format 6: the two centroid offsets θ ∈ 0…step/2 in [`theta_bits`]
/// each. Format 7: each centroid offset as a bit (whether it is nonzero) and then those bits,
/// and the zero bin's offset (|θ| ≤ step/2) as an Elias gamma code of its zigzag value plus one
/// (1 bit for 0, 3 for ±1: it is the prediction's bias, small beside the step).
fn put_theta(wr: &mut Writer, theta: [i64; 3], step: i64) {
    for &t in &theta[..2] {
        wr.put_bits((t != 0) as u64, 1);
        if t != 0 {
            wr.put_bits(t as u64, theta_bits(step));
        }
    }
    let u = zigzag(theta[2]) + 1;
    let n = 64 - u.leading_zeros();
    for _ in 1..n {
        wr.put_bits(0, 1);
    }
    // The leading 1, then the bits below it (the raw bits go low first).
    wr.put_bits(1, 1);
    wr.put_bits(u & !(1 << (n - 1)), n - 1);
}

/// The bits [`put_theta`] writes.
fn theta_cost(theta: [i64; 3], step: i64) -> u64 {
    let centroids: u64 = theta[..2]
        .iter()
        .map(|&t| 1 + if t != 0 { theta_bits(step) as u64 } else { 0 })
        .sum();
    let n = 64 - (zigzag(theta[2]) + 1).leading_zeros() as u64;
    centroids + 2 * n - 1
}

fn zigzag(t: i64) -> u64 {
    ((t << 1) ^ (t >> 63)) as u64
}

fn get_theta(rd: &mut Reader, step: i64, version: u8) -> Result<[i64; 3], Corrupt> {
    let mut theta = [0i64; 3];
    let check = |t: i64| {
        if t.unsigned_abs() > (step / 2) as u64 {
            Err(Corrupt(format!("centroid offset {t} of a step {step}")))
        } else {
            Ok(t)
        }
    };
    for t in &mut theta[..2] {
        if version < 7 || rd.get_bits(1)? == 1 {
            *t = check(rd.get_bits(theta_bits(step))? as i64)?;
        }
    }
    if version >= 7 {
        let mut n = 1;
        while rd.get_bits(1)? == 0 {
            n += 1;
            if n > 40 {
                return Err(Corrupt("zero-bin offset code too long".into()));
            }
        }
        let u = (1u64 << (n - 1)) | rd.get_bits(n - 1)?;
        let z = u - 1;
        theta[2] = check((z >> 1) as i64 ^ -((z & 1) as i64))?;
    }
    Ok(theta)
}

/// Bits of the residual mode field: 3 from format 5 on (mode 4, the histogram), 2 before.
const MODE_BITS: u32 = 3;
/// The offset predictor is tried on tiles whose values span fewer steps than this.
const OFFSET_RANGE: i64 = 4096;

/// The tile's stream with mode 4 written after `stream` (and the values it decodes to) when
/// one of its predictors is cheaper than the best other mode (`best`: its bits and the
/// latent's, which mode 4 does not need), for values from `quant.origin` (the tile's
/// smallest) to `hi`: costed first on the sample (`sample`: the cheapest other mode's bits
/// there after each row, the latent's share included, and the sample's values, blanks and
/// rows), stopped where it falls behind them and kept only where it comes within
/// HISTOGRAM_SAMPLE_MARGIN of them at the end, then written on the whole tile as it is costed.
/// In the RMSE mode the costs compared are D·(1/λ) + R.
#[allow(clippy::type_complexity)]
fn histogram_choice(
    (v, blank, w, h): (&[i64], &[bool], usize, usize),
    (quant, hi): (Quant, i64),
    sample: Option<(&[u64], (&[i64], &[bool], usize))>,
    best: u64,
    stream: &Writer,
) -> Option<(Writer, Vec<i64>)> {
    let mut cands = vec![Predict::Med, Predict::Avg];
    if hi.saturating_sub(quant.origin) / (2 * quant.e + 1) < OFFSET_RANGE {
        cands.push(Predict::Offset);
    }
    if let Some((lead, (sv, sb, rows))) = sample {
        let least = lead[rows - 1];
        // Of MED and the mean of two, see `mean_or_edge`.
        let skip = mean_or_edge(quant.rdo != 0, |i| sv[i], sb, w).map(|mean| {
            if mean {
                Predict::Med
            } else {
                Predict::Avg
            }
        });
        let mut within: Vec<(u64, Predict)> = Vec::with_capacity(cands.len());
        for pr in cands {
            if Some(pr) == skip {
                continue;
            }
            let b = crate::histogram::cost(pr, quant, (sv, sb), w, rows, |y, b| {
                !behind(b, lead, y, SAMPLE_MARGIN + HISTOGRAM_SAMPLE_MARGIN)
            })
            .filter(|&b| (b as f64) < least as f64 * (1.0 + HISTOGRAM_SAMPLE_MARGIN));
            if let Some(b) = b {
                within.push((b, pr));
            }
        }
        // Those within the margin there; of them only the cheaper there, but at the RMSE
        // mode's dead zones (1/λ > 0), where the sample is a poorer guide (Fermi at 2σ RMSE:
        // 79 bytes of tiles against 1,739).
        if quant.rdo == 0 {
            within.sort_by_key(|&(b, pr)| (b, pr as u8));
            within.truncate(1);
        }
        cands = within.into_iter().map(|(_, pr)| pr).collect();
    }
    // Each is written, mode field first, into a copy of the tile's stream as it is priced;
    // the cheapest copy, if any beats `best`, is the tile's.
    let mut choice: (u64, Option<(Writer, Vec<i64>)>) = (best, None);
    for pr in cands {
        let header = crate::histogram::header_bits(pr, quant) * crate::entropy::COST_ONE;
        let mut written = stream.clone();
        written.put_bits(4, MODE_BITS);
        // Walked until its bits pass the cheapest so far (they only grow), not stopped by the
        // leader's profile: its tables learn as it goes, so it can trail the leader for most
        // of the tile and still end cheaper (a stop at the profile lost SAAO's 1σ tiles 2.7 %).
        let cheapest = choice.0;
        let walked =
            crate::histogram::cost_put(&mut written, pr, quant, (v, blank), w, h, |_, b| {
                b + header < cheapest
            });
        if let Some((b, decoded)) = walked.map(|(b, d)| (b + header, d)) {
            if b < choice.0 {
                choice = (b, Some((written, decoded)));
            }
        }
    }
    choice.1
}

/// A residual mode's cost, its decoded tile and the (value, scale index) it codes per pixel.
type Costed = (u64, Residuals, Vec<i64>, Vec<(i64, u8)>);

/// What the network makes of a tile with data, which the quantiser's settings do not change:
/// its normalisation, its latent (the channels beyond η zeroed) and the decoders' outputs.
/// The RMSE mode's search codes each tile at many steps and works this out once per tile.
pub struct Analysed {
    norm: Norm,
    latent: Vec<i64>,
    shape: [usize; 3],
    out: (Vec<i16>, Vec<i16>),
}

fn analyse(
    p: &Predictor,
    v: &[i64],
    blank: &[bool],
    (w, h): (usize, usize),
    eta: Option<usize>,
) -> Analysed {
    let norm = p.fit_int(v, blank);
    let d = p.divisor();
    let (pw, ph) = (w.div_ceil(d) * d, h.div_ceil(d) * d);
    let input = network_input(p.net(), v, blank, w, h, &norm, pw, ph);
    let (mut latent, shape) = p.encode_quantised(input, pw, ph);
    let per = shape[1] * shape[2];
    let channels = eta.unwrap_or(shape[0]).min(shape[0]);
    latent[channels * per..].fill(0);
    let out = p.decode(&latent, shape);
    Analysed {
        norm,
        latent,
        shape,
        out,
    }
}

/// Codes a `w`×`h` tile of integers (`blank` marks pixels without data).
pub fn encode(
    p: &Predictor,
    v: &[i64],
    blank: &[bool],
    w: usize,
    h: usize,
    s: &Settings,
) -> Encoded {
    encode_with(p, None, v, blank, w, h, s)
}

/// [`encode`], with the tile's network analysis kept in (or taken from) `cache`: the same
/// bytes, for a caller that codes the same tile again with other settings of the quantiser
/// (and the same η).
pub fn encode_with(
    p: &Predictor,
    cache: Option<&std::sync::OnceLock<Analysed>>,
    v: &[i64],
    blank: &[bool],
    w: usize,
    h: usize,
    s: &Settings,
) -> Encoded {
    let mut wr = Writer::default();
    let nblank = blank.iter().filter(|&&b| b).count();
    let flag = if nblank == 0 {
        0
    } else if nblank == w * h {
        1
    } else {
        2
    };
    wr.put_bits(flag, 2);
    if flag == 2 {
        put_runs(&mut wr, blank);
    }
    let mut prior_channels = 0;
    let decoded = if flag == 1 {
        vec![0i64; w * h]
    } else {
        let own;
        let a = match cache {
            Some(c) => c.get_or_init(|| analyse(p, v, blank, (w, h), s.eta)),
            None => {
                own = analyse(p, v, blank, (w, h), s.eta);
                &own
            }
        };
        let (norm, latent, shape) = (&a.norm, &a.latent, a.shape);
        let pw = w.div_ceil(p.divisor()) * p.divisor();
        let per = shape[1] * shape[2];
        let channels = s.eta.unwrap_or(shape[0]).min(shape[0]);
        let scales: Vec<usize> = latent[..channels * per]
            .chunks(per)
            .map(|ch| {
                let b = ch.iter().map(|x| x.unsigned_abs() as f64).sum::<f64>() / per as f64;
                snap(b.max(0.3))
            })
            .collect();
        let (pred, scale) = predictions(p, &a.out, norm, Geometry { w, h, pw }, s);
        let step = s.step();
        // The residual modes are costed (the entropy model's bits, in exact fixed point) on a
        // sample of the tile's rows; those within SAMPLE_MARGIN of the cheapest there are
        // costed on the whole tile, cheapest first, keeping what each would code. A contender
        // stops at a check row where it is too far behind the cheapest full walk so far (the
        // leader: its bits after each row, see `behind`), and the tile codes the cheapest
        // full walk (2 bits say which; the first of equals).
        // In the RMSE mode "bits" are D·(1/λ) + R, what its decisions minimise, and the
        // walk also sums, per class of nonzero index, how far the residuals lie inside their
        // bins' outer points (their centroid offsets θ).
        let centroid = std::cell::Cell::new([(0i64, 0i64); 3]);
        let cost_of = |mode: Residuals,
                       (v, pred, scale, blank): (&[i64], &[i64], &[usize], &[bool]),
                       coded: &mut Vec<(i64, u8)>,
                       profile: &mut Vec<u64>,
                       leader: Option<&[u64]>,
                       slack: f64,
                       theta: [i64; 3]| {
            let bits = std::cell::Cell::new(0u64);
            centroid.set([(0, 0); 3]);
            coded.clear();
            profile.clear();
            let rows = v.len() / w;
            let out = walk(
                mode,
                pred,
                scale,
                blank,
                w,
                rows,
                s,
                theta,
                |i, sidx, base| {
                    let r = v[i] - base;
                    let q = match s.rdo {
                        None => {
                            let q = quantise(r, s.e, step);
                            bits.set(bits.get() + cost_fx(q, sidx));
                            q
                        }
                        Some(rdo) => {
                            let (q, j) = rdo_index(r, sidx, step, theta, rdo.inv_lambda);
                            bits.set(bits.get().saturating_add(j));
                            let mut c = centroid.get();
                            if q != 0 {
                                let k = &mut c[(q.unsigned_abs() > 1) as usize];
                                k.0 = k.0.saturating_add(q.saturating_mul(step) - q.signum() * r);
                                k.1 += 1;
                            } else {
                                // The zero bin: its residuals' mean is its offset.
                                c[2].0 = c[2].0.saturating_add(r);
                                c[2].1 += 1;
                            }
                            centroid.set(c);
                            q
                        }
                    };
                    coded.push((q, sidx as u8));
                    Ok(q)
                },
                |y| {
                    profile.push(bits.get());
                    leader.is_none_or(|l| !behind(bits.get(), l, y, slack))
                },
            )
            .expect("costing cannot fail");
            (bits.get(), out)
        };
        // The RMSE mode's first guess at the centroid offsets, for choosing the mode.
        let theta0 = match s.rdo {
            // κ = 0 (1/λ = 0): the max-error quantiser's decisions, so its bin centres.
            Some(r) if r.inv_lambda == 0 => [0, 0, 0],
            Some(_) => [step / 4, step / 8, 0],
            None => [0, 0, 0],
        };
        let mut best_centroid = [(0, 0); 3];
        let mut coded = Vec::with_capacity(w * h);
        let mut profile = Vec::with_capacity(h);
        // The sample: every SAMPLE_PART-th band of SAMPLE_BAND rows, walked as one image.
        let rows: Vec<usize> = (0..h)
            .filter(|y| (y / SAMPLE_BAND).is_multiple_of(SAMPLE_PART))
            .collect();
        let (sv, sp, ss, sb) = (
            gather(v, &rows, w),
            gather(&pred, &rows, w),
            gather(&scale, &rows, w),
            gather(blank, &rows, w),
        );
        let seen = sb.iter().filter(|&&b| !b).count();
        // The cheapest mode's bits on the sample after each row (when there is a sample): what
        // mode 4 must beat.
        let mut sample_lead: Option<Vec<u64>> = None;
        let sample = (&sv[..], &sb[..], rows.len());
        // The contenders, cheapest on the sample first (so the first full walk is likely the
        // leader that stops the others early).
        let contenders: Vec<Residuals> = if seen >= SAMPLE_MIN && rows.len() < h {
            // Each mode in turn, stopped where it is out of reach of the cheapest so far
            // (beyond SAMPLE_MARGIN, with the walks' narrowing margin on top).
            let mut bits: Vec<(u64, Residuals)> = Vec::with_capacity(MODES.len());
            let mut lead: Vec<u64> = Vec::with_capacity(rows.len());
            // Of the two adaptive modes, see `mean_or_edge` (on the model residuals).
            let model_residual = |i: usize| sv[i].saturating_sub(sp[i]);
            let skip = mean_or_edge(s.rdo.is_some(), model_residual, &sb, w).map(|mean| {
                if mean {
                    Residuals::Adaptive
                } else {
                    Residuals::AdaptiveAvg
                }
            });
            for &m in &MODES {
                if Some(m) == skip || !offered(m, s) {
                    continue;
                }
                let leader = (!lead.is_empty()).then_some(lead.as_slice());
                let sample = (&sv[..], &sp[..], &ss[..], &sb[..]);
                let (b, out) = cost_of(
                    m,
                    sample,
                    &mut coded,
                    &mut profile,
                    leader,
                    SAMPLE_MARGIN,
                    theta0,
                );
                if out.is_some() {
                    if bits.iter().all(|&(least, _)| b < least) {
                        std::mem::swap(&mut lead, &mut profile);
                    }
                    bits.push((b, m));
                }
            }
            let least = bits
                .iter()
                .map(|b| b.0)
                .min()
                .expect("the first mode runs whole");
            sample_lead = Some(lead.clone());
            let mut c: Vec<(u64, Residuals)> = bits
                .into_iter()
                .filter(|&(b, m)| {
                    let margin = match m {
                        Residuals::AdaptiveAvg => AVG_SAMPLE_MARGIN,
                        _ => SAMPLE_MARGIN,
                    };
                    b as f64 <= least as f64 * (1.0 + margin)
                })
                .collect();
            c.sort_by_key(|&(b, m)| (b, m as u8));
            c.into_iter().map(|(_, m)| m).collect()
        } else {
            MODES.iter().copied().filter(|&m| offered(m, s)).collect()
        };
        // (bits, mode, decoded, coded values, bits after each row) of the cheapest full walk.
        let mut best: Option<(Costed, Vec<u64>)> = None;
        for mode in contenders {
            let leader = best.as_ref().map(|b| b.1.as_slice());
            let (bits, out) = cost_of(
                mode,
                (v, &pred, &scale, blank),
                &mut coded,
                &mut profile,
                leader,
                0.0,
                theta0,
            );
            let Some(out) = out else { continue };
            // The cheapest wins; of equals, the first in the modes' order.
            if best
                .as_ref()
                .is_none_or(|(b, _)| (bits, mode as u8) < (b.0, b.1 as u8))
            {
                best_centroid = centroid.get();
                let (spare, spare_profile) =
                    best.map_or_else(|| (Vec::new(), Vec::new()), |(b, p)| (b.3, p));
                best = Some((
                    (bits, mode, out, std::mem::replace(&mut coded, spare)),
                    std::mem::replace(&mut profile, spare_profile),
                ));
            }
        }
        let ((mut bits, mode, mut out, mut codes), _) =
            best.expect("the first contender runs whole");
        // The RMSE mode: the chosen mode walked again with each class's reconstruction at
        // the centroid the first walk measured (rounded, within the bin's inner half). With
        // κ = 0 (the max-error quantiser's decisions) it is kept only where it spends no more
        // bits for no more error than the first walk at the bin centres (the neighbours it
        // decodes move the predictions, so the first walk's centroids need not hold in it).
        // (Holding the other slopes to less D·(1/λ) + R than the first walk, whose θ is only a
        // guess, made worse files: HorseHead at 1σ RMSE +1.8 %.)
        let theta = match s.rdo {
            None => [0, 0, 0],
            Some(rdo) => {
                let mean = |(sum, n): (i64, i64)| {
                    if n == 0 {
                        0
                    } else {
                        (2 * sum + n).div_euclid(2 * n)
                    }
                };
                let theta = [
                    mean(best_centroid[0]).clamp(0, step / 2),
                    mean(best_centroid[1]).clamp(0, step / 2),
                    mean(best_centroid[2]).clamp(-(step / 2), step / 2),
                ];
                let mut again_with = |theta: [i64; 3]| {
                    let (again, fin) = cost_of(
                        mode,
                        (v, &pred, &scale, blank),
                        &mut coded,
                        &mut Vec::new(),
                        None,
                        0.0,
                        theta,
                    );
                    (again, fin.expect("a walk without a leader runs whole"))
                };
                let (again, fin) = again_with(theta);
                let better = |again: u64, fin: &[i64]| {
                    again <= bits && squared_error(fin, v, blank) <= squared_error(&out, v, blank)
                };
                if rdo.inv_lambda != 0 || better(again, &fin) {
                    (bits, out, codes) = (again, fin, std::mem::take(&mut coded));
                    theta
                } else {
                    // κ = 0 and the centroids did not pay: the bin centres, with the zero
                    // bin's offset alone (it moves no decision, no context and no bit).
                    let zero_only = [0, 0, theta[2]];
                    let (again, fin) = again_with(zero_only);
                    if theta[2] != 0 && better(again, &fin) {
                        (bits, out, codes) = (again, fin, std::mem::take(&mut coded));
                        zero_only
                    } else {
                        theta0
                    }
                }
            }
        };
        // The tile may go under a model of the values seen instead (mode 4): its predictors
        // are costed on the sample first and on the whole tile only where one comes close to
        // the other modes there (with their latent: mode 4 needs none).
        // The tile's smallest and largest values with data (there are some: flag ≠ 1).
        let (lo, hi) = v
            .iter()
            .zip(blank)
            .filter(|(_, &b)| !b)
            .fold((i64::MAX, i64::MIN), |(lo, hi), (&x, _)| {
                (lo.min(x), hi.max(x))
            });
        let quant = Quant {
            e: histogram_e(s),
            lo: s.lo,
            hi: s.hi,
            origin: lo,
            rdo: s.rdo.map_or(0, |r| r.inv_lambda),
        };
        // With a learned prior, one bit per channel says whether its table or a per-tile
        // Laplace scale codes the channel (whichever is cheaper here); without one, no bit.
        // What the latent costs (fixed point) is what mode 4, which needs none, saves.
        let mut latent_fx = 128 * crate::entropy::COST_ONE;
        if s.rdo.is_some() {
            latent_fx += theta_cost(theta, step) * crate::entropy::COST_ONE;
        }
        let picks: Vec<bool> = latent[..channels * per]
            .chunks(per)
            .enumerate()
            .map(|(c, ch)| {
                let laplace: f64 =
                    SCALE_BITS as f64 + ch.iter().map(|&x| cost(x, scales[c])).sum::<f64>();
                let Some(t) = p.prior().map(|t| &t[c]) else {
                    latent_fx += crate::entropy::fixed(laplace);
                    return false;
                };
                let learned: f64 = ch.iter().map(|&x| t.cost(x)).sum();
                latent_fx += crate::entropy::COST_ONE + crate::entropy::fixed(learned.min(laplace));
                learned < laplace
            })
            .collect();
        // Mode 4 is weighed against the other modes' residuals and their latent (on the
        // sample, the sample's share of it), spread over the rows as they are walked.
        let spread = |l: &[u64], total: u64| {
            let rows = l.len().max(1) as u64;
            l.iter()
                .enumerate()
                .map(|(y, &b)| b + total * (y as u64 + 1) / rows)
                .collect::<Vec<u64>>()
        };
        let sample_lead = sample_lead
            .as_deref()
            .map(|l| spread(l, latent_fx * sample.2 as u64 / h as u64));
        let histogram = histogram_choice(
            (v, blank, w, h),
            (quant, hi),
            sample_lead.as_deref().map(|l| (l, sample)),
            bits + latent_fx,
            &wr,
        );
        match histogram {
            Some((written, decoded)) => {
                wr = written;
                decoded
            }
            None => {
                wr.put_bits(mode as u64, MODE_BITS);
                put_norm(&mut wr, norm);
                for (c, ch) in latent[..channels * per].chunks(per).enumerate() {
                    let table = p.prior().map(|t| &t[c]).filter(|_| {
                        wr.put_bits(picks[c] as u64, 1);
                        picks[c]
                    });
                    match table {
                        Some(t) => {
                            prior_channels += 1;
                            ch.iter().for_each(|&x| wr.put_int(t, x));
                        }
                        None => {
                            wr.put_bits(scales[c] as u64, SCALE_BITS);
                            ch.iter().for_each(|&x| wr.put(x, scales[c]));
                        }
                    }
                }
                if s.rdo.is_some() {
                    put_theta(&mut wr, theta, step);
                }
                for &(q, sidx) in &codes {
                    wr.put(q, sidx as usize);
                }
                out
            }
        }
    };
    let est_bits = wr.est_bits;
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(&digest(&decoded, blank, VERSION));
    bytes.extend(wr.finish());
    Encoded {
        bytes,
        est_bits,
        decoded,
        prior_channels,
    }
}

/// Decodes a tile written by [`encode`] with the same model and settings.
pub fn decode(
    p: &Predictor,
    bytes: &[u8],
    w: usize,
    h: usize,
    s: &Settings,
) -> Result<(Vec<i64>, Vec<bool>), Corrupt> {
    if bytes.len() < 9 {
        return Err(Corrupt(format!(
            "tile of {} bytes is truncated",
            bytes.len()
        )));
    }
    let version = bytes[0];
    if !crate::codec::READ_VERSIONS.contains(&version) {
        return Err(Corrupt(format!(
            "tile format version {version} (this build reads 3 to {VERSION})"
        )));
    }
    let mut rd = Reader::new(&bytes[9..], version >= 4)?;
    let n = w * h;
    let blank = match rd.get_bits(2)? {
        0 => vec![false; n],
        1 => vec![true; n],
        2 => get_runs(&mut rd, n)?,
        f => return Err(Corrupt(format!("blank-mask flag {f}"))),
    };
    let mut v = vec![0i64; n];
    let any_data = blank.iter().any(|b| !b);
    // Format 5 on: the residual mode first (3 bits; mode 4 codes the values alone).
    let early_mode = if version >= 5 && any_data {
        Some(rd.get_bits(MODE_BITS)? as usize)
    } else {
        None
    };
    if early_mode == Some(4) {
        let quant = Quant {
            e: histogram_e(s),
            lo: s.lo,
            hi: s.hi,
            origin: 0,
            rdo: 0,
        };
        v = crate::histogram::get(&mut rd, quant, &blank, (w, h), version)?;
    } else if any_data {
        let norm = get_norm(&mut rd, p.norm_kind())?;
        let d = p.divisor();
        let (pw, ph) = (w.div_ceil(d) * d, h.div_ceil(d) * d);
        let shape = [p.latent_channels(), ph / d, pw / d];
        let per = shape[1] * shape[2];
        let mut latent = Vec::with_capacity(shape[0] * per);
        let coded = s.eta.unwrap_or(shape[0]).min(shape[0]);
        for c in 0..coded {
            let table = match p.prior() {
                Some(t) if rd.get_bits(1)? == 1 => Some(&t[c]),
                _ => None,
            };
            let sc = match table {
                Some(_) => 0,
                None => rd.get_bits(SCALE_BITS)? as usize,
            };
            if sc >= SCALES {
                return Err(Corrupt(format!("latent scale index {sc}")));
            }
            for _ in 0..per {
                let x = match table {
                    Some(t) => rd.get_int(t)?,
                    None => rd.get(sc)?,
                };
                if x.abs() > 1_000_000 {
                    return Err(Corrupt(format!("latent value {x}")));
                }
                latent.push(x);
            }
        }
        latent.resize(shape[0] * per, 0);
        let out = p.decode(&latent, shape);
        let (pred, scale) = predictions(p, &out, &norm, Geometry { w, h, pw }, s);
        let m = match early_mode {
            Some(m) => m,
            None => rd.get_bits(2)? as usize,
        };
        let mode =
            residual_mode(m, version).ok_or_else(|| Corrupt(format!("residual mode {m}")))?;
        let theta = match s.rdo {
            Some(_) => get_theta(&mut rd, s.step(), version)?,
            None => [0; 3],
        };
        v = walk(
            mode,
            &pred,
            &scale,
            &blank,
            w,
            h,
            s,
            theta,
            |_, sidx, _| rd.get(sidx),
            |_| true,
        )?
        .expect("the decoder walks every row");
    }
    if digest(&v, &blank, version) != bytes[1..9] {
        return Err(Corrupt(
            "decoded tile does not match its hash (corrupt data, or a model/arithmetic mismatch)"
                .into(),
        ));
    }
    Ok((v, blank))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The residual mode a tile was coded with (format 5).
    fn mode_of(bytes: &[u8]) -> u64 {
        let mut rd = Reader::new(&bytes[9..], true).unwrap();
        assert_eq!(rd.get_bits(2).unwrap(), 0, "no blanks in these tiles");
        rd.get_bits(MODE_BITS).unwrap()
    }

    fn settings(e: i64) -> Settings {
        Settings {
            e,
            lo: i16::MIN as i64,
            hi: i16::MAX as i64,
            eta: None,
            rdo: None,
        }
    }

    #[test]
    fn rmse_mode_tiles_decode_to_what_the_encoder_saw() {
        use skyzip_fits::{read_image, HduSelector};
        let p = Predictor::load("default-2").unwrap();
        let img = read_image(&skyzip_testdata::sample(), &HduSelector::FirstImage).unwrap();
        let (w, h) = (96, 64);
        let v: Vec<i64> = (0..w * h)
            .map(|k| {
                img.pixels
                    .raw_i64((k / w + 150) * img.nx() + k % w + 150)
                    .unwrap()
            })
            .collect();
        // A blank patch and a blank row start.
        let blank: Vec<bool> = (0..w * h)
            .map(|k| (10..20).contains(&(k % w)) && (5..30).contains(&(k / w)) || k < 7)
            .collect();
        let mse = |d: &[i64]| {
            let n = blank.iter().filter(|&&b| !b).count() as f64;
            (0..w * h)
                .filter(|&k| !blank[k])
                .map(|k| ((v[k] - d[k]) as f64).powi(2))
                .sum::<f64>()
                / n
        };
        for step in [2, 5, 16, 60] {
            let at = |inv_lambda| Settings {
                rdo: Some(Rdo { step, inv_lambda }),
                ..settings(0)
            };
            let lambda = 0.15 * (step * step) as f64;
            let t = encode(&p, &v, &blank, w, h, &at((65536.0 / lambda) as u64));
            let (back, b) = decode(&p, &t.bytes, w, h, &at(0)).unwrap();
            assert_eq!(back, t.decoded, "step {step}");
            assert_eq!(b, blank);
            assert!(back
                .iter()
                .zip(&blank)
                .all(|(&x, &b)| !b || (-32768..=32767).contains(&x)));
            // Distortion alone (the largest 1/λ): nearest bins, more bits, less error.
            let near = encode(&p, &v, &blank, w, h, &at(u64::MAX / (1 << 40)));
            assert!(near.bytes.len() >= t.bytes.len(), "step {step}");
            assert!(
                mse(&near.decoded) <= mse(&t.decoded) * 1.0001,
                "step {step}"
            );
            // Error of the order of a uniform quantiser's at the step (or the noise's).
            assert!(mse(&t.decoded) < (step * step) as f64, "step {step}");
        }
    }

    #[test]
    fn offsets_round_trip_and_out_of_range_ones_are_refused() {
        for step in [2, 3, 9, 64, 1001, 1 << 24] {
            for theta in [
                [0, 0, 0],
                [step / 2, 1, -1],
                [0, step / 4, step / 2],
                [1, 0, -(step / 2)],
                [0, 0, 3.min(step / 2)],
            ] {
                let mut wr = Writer::default();
                put_theta(&mut wr, theta, step);
                wr.put_bits(0x2a, 7);
                let before = wr.est_bits;
                let bytes = wr.finish();
                assert_eq!(theta_cost(theta, step) as f64, before - 7.0);
                let mut rd = Reader::new(&bytes, true).unwrap();
                assert_eq!(get_theta(&mut rd, step, 7).unwrap(), theta, "step {step}");
                assert_eq!(rd.get_bits(7).unwrap(), 0x2a);
            }
        }
        // A zero-bin offset beyond half the step is corrupt data, not a value.
        let mut wr = Writer::default();
        put_theta(&mut wr, [0, 0, 40], 1000);
        let bytes = wr.finish();
        let mut rd = Reader::new(&bytes, true).unwrap();
        assert!(get_theta(&mut rd, 60, 7).is_err());
    }

    #[test]
    fn resampled_noise_takes_the_mean_of_two_and_decodes_exactly() {
        // A frame resampled as a reprojection does (each pixel 4× the mean of a 3×3 box): its
        // noise is correlated between neighbours, and the mean of the left and upper
        // neighbours predicts it better than the median edge (format 7: residual mode 5). At
        // every bound the tile decodes to what the encoder saw, within the bound.
        use skyzip_fits::{read_image, HduSelector};
        let p = Predictor::load("default-2").unwrap();
        let img = read_image(&skyzip_testdata::sample(), &HduSelector::FirstImage).unwrap();
        let (w, h) = (96, 96);
        let at = |x: usize, y: usize| img.pixels.raw_i64((y + 200) * img.nx() + x + 200).unwrap();
        let v: Vec<i64> = (0..w * h)
            .map(|k| {
                let (x, y) = (k % w, k / w);
                (0..3)
                    .flat_map(|dy| (0..3).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| at(x + dx, y + dy))
                    .sum::<i64>()
                    * 4
                    / 9
            })
            .collect();
        let blank = vec![false; w * h];
        let mut modes = Vec::new();
        for e in [0, 1, 3, 8] {
            let s = Settings {
                lo: i32::MIN as i64,
                hi: i32::MAX as i64,
                ..settings(e)
            };
            let t = encode(&p, &v, &blank, w, h, &s);
            let (back, _) = decode(&p, &t.bytes, w, h, &s).unwrap();
            assert_eq!(back, t.decoded, "e = {e}");
            assert!(
                v.iter().zip(&back).all(|(a, b)| (a - b).abs() <= e),
                "e = {e}"
            );
            modes.push(mode_of(&t.bytes));
        }
        assert!(modes.contains(&5), "{modes:?}");
    }

    #[test]
    fn damaged_rmse_mode_tiles_are_errors_not_panics() {
        // Every byte of a format-7 RMSE-mode tile flipped in turn, and every truncation: the
        // decoder returns an error (or, by the hash, the very pixels), never panics.
        let p = Predictor::load("default-1").unwrap();
        let (w, h) = (24, 16);
        let v: Vec<i64> = (0..w * h)
            .map(|k| 500 + (k % w) as i64 * 3 + ((k as u64 * 2654435761) % 17) as i64)
            .collect();
        let blank: Vec<bool> = (0..w * h).map(|k| k % w < 2 && k / w < 3).collect();
        let s = Settings {
            rdo: Some(Rdo {
                step: 9,
                inv_lambda: 2000,
            }),
            ..settings(0)
        };
        let t = encode(&p, &v, &blank, w, h, &s);
        assert_eq!(decode(&p, &t.bytes, w, h, &s).unwrap().0, t.decoded);
        for i in 0..t.bytes.len() {
            let mut b = t.bytes.clone();
            b[i] ^= 0xa5;
            if let Ok((d, _)) = decode(&p, &b, w, h, &s) {
                assert_eq!(d, t.decoded, "byte {i}");
            }
            let _ = decode(&p, &t.bytes[..i], w, h, &s);
        }
    }

    #[test]
    fn the_zero_bin_takes_the_predictions_bias() {
        // The frame with a quarter of its pixels raised by about two of its noise's σ (a skewed
        // noise, as of cosmic rays or faint sources): the model's predictions are biased, and
        // at a step where nearly every index is 0 the zero bin's offset takes the bias out
        // (format 7). At κ = 0 it moves no decision: the residuals cost the same bits.
        use skyzip_fits::{read_image, HduSelector};
        let p = Predictor::load("default-2").unwrap();
        let img = read_image(&skyzip_testdata::sample(), &HduSelector::FirstImage).unwrap();
        let (w, h) = (64, 64);
        let v: Vec<i64> = (0..w * h)
            .map(|k| {
                img.pixels
                    .raw_i64((k / w + 300) * img.nx() + k % w + 300)
                    .unwrap()
                    + if (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 62 == 0 {
                        24
                    } else {
                        0
                    }
            })
            .collect();
        let blank = vec![false; w * h];
        let s = Settings {
            rdo: Some(Rdo {
                step: 121,
                inv_lambda: 0,
            }),
            ..settings(0)
        };
        let t = encode(&p, &v, &blank, w, h, &s);
        let (back, _) = decode(&p, &t.bytes, w, h, &s).unwrap();
        assert_eq!(back, t.decoded);
        let sq = |d: &[i64]| squared_error(d, &v, &blank);
        // The same walk with the zero bin at 0 (the format 6 decoding of the same indices).
        let mut rd = Reader::new(&t.bytes[9..], true).unwrap();
        assert_eq!(rd.get_bits(2).unwrap(), 0);
        let mode = rd.get_bits(MODE_BITS).unwrap();
        if mode == 4 {
            return; // the histogram took it: no offsets to look at
        }
        let a = analyse(&p, &v, &blank, (w, h), None);
        let pw = w.div_ceil(p.divisor()) * p.divisor();
        let (pred, scale) = predictions(&p, &a.out, &a.norm, Geometry { w, h, pw }, &s);
        let codes = std::cell::RefCell::new(Vec::new());
        let zero_walk = |theta: [i64; 3]| {
            walk(
                residual_mode(mode as usize, VERSION).unwrap(),
                &pred,
                &scale,
                &blank,
                w,
                h,
                &s,
                theta,
                |i, _, base| {
                    let q = quantise(v[i] - base, 60, 121);
                    codes.borrow_mut().push(q);
                    Ok(q)
                },
                |_| true,
            )
            .unwrap()
            .unwrap()
        };
        let plain = zero_walk([0, 0, 0]);
        let zeros = codes.borrow().iter().filter(|&&q| q == 0).count();
        assert!(zeros > w * h / 2, "{zeros}");
        let mean = (0..w * h).map(|k| v[k] - plain[k]).sum::<i64>() as f64 / (w * h) as f64;
        assert!(mean > 1.0, "a biased prediction: {mean}");
        assert!(sq(&t.decoded) < sq(&plain), "the offset lowered the error");
    }

    #[test]
    fn lattice_and_count_tiles_go_under_the_histogram_and_come_back_exact() {
        let p = Predictor::load("default-2").unwrap();
        let (w, h) = (64, 64);
        let mut seed = 11u64;
        let mut noise = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 59) as i64
        };
        // A plate: a smooth field with noise, through a nonlinear table (a sparse lattice).
        let lattice: Vec<i64> = (0..w * h)
            .map(|k| {
                let level = ((k % w) / 3 + (k / w) / 4) as i64 + noise() / 8;
                200 + level * level / 2 + 37 * level
            })
            .collect();
        // Counts: mostly 0, a few photons.
        let counts: Vec<i64> = (0..w * h).map(|_| (noise() - 12).max(0) / 2).collect();
        let blank = vec![false; w * h];
        for (name, v) in [("lattice", &lattice), ("counts", &counts)] {
            let t = encode(&p, v, &blank, w, h, &settings(0));
            assert_eq!(mode_of(&t.bytes), 4, "{name}");
            let (back, b) = decode(&p, &t.bytes, w, h, &settings(0)).unwrap();
            assert_eq!(&back, v, "{name}");
            assert!(b.iter().all(|&x| !x));
            // Near-lossless: within the bound, whichever mode codes it.
            let t = encode(&p, v, &blank, w, h, &settings(2));
            let (back, _) = decode(&p, &t.bytes, w, h, &settings(2)).unwrap();
            assert_eq!(back, t.decoded, "{name}");
            assert!(
                back.iter().zip(v).all(|(a, b)| (a - b).abs() <= 2),
                "{name}"
            );
        }
    }
}
