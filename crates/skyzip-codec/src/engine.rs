//! The codec's own inference engine for its conv autoencoders, in integers (after Ballé,
//! Johnston and Minnen, "Integer networks for data compression with latent-variable models",
//! ICLR 2019), so that every machine computes the same bits.
//!
//! Arithmetic, exactly:
//! - activations are `i16`, each layer's output at a power-of-two scale: value = q · 2^−f;
//! - weights are `i8` (|w| ≤ 127) with one real scale per output channel, biases `i32` in the
//!   accumulator's scale, clamped to |b| ≤ 2^29;
//! - a layer accumulates Σ w·a in `i32`. The bounds make overflow impossible (|w·a| ≤ 127·2^15,
//!   at most [`MAX_TERMS`] = 384 products per output, 384·127·2^15 + 2^29 < 2^31; the bundled
//!   nets sum at most 144), and integer addition without
//!   overflow is associative, so any summation order — the scalar reference's or the fast
//!   path's — gives the same sums;
//! - requantisation is ⌊(acc·M + 2^(S−1)) / 2^S⌋ in `i64` with a per-channel multiplier M
//!   (2^29 ≤ M < 2^30) and shift S, then clamped to the `i16` range, then ReLU where the
//!   float net had one.
//!
//! The float net ([`FloatNet`], plain f32 loops in a fixed order) exists for calibration and
//! tests; nothing decodes with it.

use crate::CodecError;
use safetensors::SafeTensors;

/// Shape of a conv autoencoder: conv k3 s1 1→width, (conv k3 s2)×stages, conv k3 s1 → latent;
/// decoder (convT k4 s2 p1)×stages back to width, conv k3 s1 → 1; ReLU between. With
/// `shuffle` (skyzip-nn's `ConvAeConfig::shuffle`), the encoder reads the image's 2×2 blocks
/// as four channels (conv k3 s1 4→stages[0] for the input conv and first stage) and each
/// decoder's last up-stage is a conv k3 s1 → 4 at half resolution, one channel per pixel of a
/// block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetShape {
    pub width: usize,
    pub stages: Vec<usize>,
    pub latent: usize,
    pub shuffle: bool,
}

/// [1, 2h, 2w] → [4, h, w]: channel 2·dy + dx holds pixel (2y + dy, 2x + dx).
pub fn space_to_depth<T: Copy + Default>(x: &Map<T>) -> Map<T> {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut data = vec![T::default(); 4 * h * w];
    for dy in 0..2 {
        for dx in 0..2 {
            let c = 2 * dy + dx;
            for y in 0..h {
                for xx in 0..w {
                    data[(c * h + y) * w + xx] = x.data[(2 * y + dy) * x.w + 2 * xx + dx];
                }
            }
        }
    }
    Map { c: 4, h, w, data }
}

/// The inverse of [`space_to_depth`]: [4, h, w] → [1, 2h, 2w].
pub fn depth_to_space<T: Copy + Default>(x: &Map<T>) -> Map<T> {
    let (h, w) = (x.h, x.w);
    let mut data = vec![T::default(); 4 * h * w];
    for dy in 0..2 {
        for dx in 0..2 {
            let c = 2 * dy + dx;
            for y in 0..h {
                for xx in 0..w {
                    data[(2 * y + dy) * (2 * w) + 2 * xx + dx] = x.data[(c * h + y) * w + xx];
                }
            }
        }
    }
    Map {
        c: 1,
        h: 2 * h,
        w: 2 * w,
        data,
    }
}

/// One layer's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 3×3, padding 1, stride 1 or 2.
    Conv { stride: usize },
    /// 4×4 transposed, stride 2, padding 1 (doubles each side).
    ConvT,
}

/// A float layer: weights [cout, cin, k, k] (conv) or [cin, cout, k, k] (transposed, as
/// PyTorch and burn store them).
#[derive(Debug, Clone)]
pub struct FloatLayer {
    pub kind: Kind,
    pub cin: usize,
    pub cout: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

/// A float tensor [c, h, w].
#[derive(Debug, Clone, PartialEq)]
pub struct Map<T> {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<T>,
}

impl Kind {
    fn k(self) -> usize {
        match self {
            Kind::Conv { .. } => 3,
            Kind::ConvT => 4,
        }
    }

    fn out_size(self, h: usize, w: usize) -> (usize, usize) {
        match self {
            Kind::Conv { stride } => ((h - 1) / stride + 1, (w - 1) / stride + 1),
            Kind::ConvT => (2 * h, 2 * w),
        }
    }
}

/// For an output position `o` of a layer: the input positions and kernel taps that reach it,
/// as (input index, tap) pairs, in increasing tap order.
fn taps(kind: Kind, o: usize, n_in: usize) -> impl Iterator<Item = (usize, usize)> {
    let k = kind.k();
    (0..k).filter_map(move |t| match kind {
        Kind::Conv { stride } => {
            let i = (o * stride + t) as isize - 1;
            (i >= 0 && (i as usize) < n_in).then_some((i as usize, t))
        }
        Kind::ConvT => {
            // o = 2·i − 1 + t.
            let v = o as isize + 1 - t as isize;
            (v >= 0 && v % 2 == 0 && ((v / 2) as usize) < n_in).then_some(((v / 2) as usize, t))
        }
    })
}

/// A layer's outputs by direct summation, in a fixed order (input channel, then taps):
/// `start(o)` for output channel o, `add(acc, o, i, ty, tx, v)` per product of input value v,
/// `finish(o, acc)`. The float net and the integer reference differ only in these three.
fn direct<T: Copy, A, U: Copy + Default>(
    kind: Kind,
    cin: usize,
    cout: usize,
    x: &Map<T>,
    start: impl Fn(usize) -> A,
    add: impl Fn(A, usize, usize, usize, usize, T) -> A,
    finish: impl Fn(usize, A) -> U,
) -> Map<U> {
    let (oh, ow) = kind.out_size(x.h, x.w);
    let mut out = vec![U::default(); cout * oh * ow];
    for o in 0..cout {
        for y in 0..oh {
            for xx in 0..ow {
                let mut acc = start(o);
                for i in 0..cin {
                    for (iy, ty) in taps(kind, y, x.h) {
                        for (ix, tx) in taps(kind, xx, x.w) {
                            acc = add(acc, o, i, ty, tx, x.data[(i * x.h + iy) * x.w + ix]);
                        }
                    }
                }
                out[(o * oh + y) * ow + xx] = finish(o, acc);
            }
        }
    }
    Map {
        c: cout,
        h: oh,
        w: ow,
        data: out,
    }
}

impl FloatLayer {
    fn w(&self, o: usize, i: usize, ty: usize, tx: usize) -> f32 {
        let k = self.kind.k();
        match self.kind {
            Kind::Conv { .. } => self.weight[((o * self.cin + i) * k + ty) * k + tx],
            Kind::ConvT => self.weight[((i * self.cout + o) * k + ty) * k + tx],
        }
    }

    /// The layer on `x`, f32, summed in a fixed order (input channel, then taps).
    pub fn forward(&self, x: &Map<f32>) -> Map<f32> {
        direct(
            self.kind,
            self.cin,
            self.cout,
            x,
            |o| self.bias[o],
            |acc, o, i, ty, tx, v| acc + self.w(o, i, ty, tx) * v,
            |_, acc| if self.relu { acc.max(0.0) } else { acc },
        )
    }
}

/// The float codec net: encoder, mean decoder, variance decoder (before softplus).
#[derive(Debug, Clone)]
pub struct FloatNet {
    pub shape: NetShape,
    pub encoder: Vec<FloatLayer>,
    pub decoder: Vec<FloatLayer>,
    pub var_decoder: Vec<FloatLayer>,
}

fn run_float(layers: &[FloatLayer], x: &Map<f32>) -> Map<f32> {
    let mut h = x.clone();
    for l in layers {
        h = l.forward(&h);
    }
    h
}

impl FloatNet {
    /// The net of a `skyzip export --part full` safetensors file of a meanvar conv-ae.
    pub fn from_safetensors(bytes: &[u8], shape: NetShape) -> Result<FloatNet, CodecError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| model_err(e.to_string()))?;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, CodecError> {
            let b =
                tensor_bytes(&st, name, safetensors::Dtype::F32, Some(len)).map_err(model_err)?;
            Ok(b.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let layer = |prefix: &str, kind: Kind, cin: usize, cout: usize, relu: bool| {
            let k = kind.k();
            Ok::<_, CodecError>(FloatLayer {
                kind,
                cin,
                cout,
                weight: get(&format!("{prefix}.weight"), cin * cout * k * k)?,
                bias: get(&format!("{prefix}.bias"), cout)?,
                relu,
            })
        };
        let s = &shape;
        let shuffle = s.shuffle && !s.stages.is_empty();
        let (first_in, first_out, stages) = if shuffle {
            (4, s.stages[0], &s.stages[1..])
        } else {
            (1, s.width, &s.stages[..])
        };
        let mut encoder = vec![layer(
            "encoder.Conv.convs.0",
            Kind::Conv { stride: 1 },
            first_in,
            first_out,
            true,
        )?];
        let mut c = first_out;
        for (k, &o) in stages.iter().enumerate() {
            encoder.push(layer(
                &format!("encoder.Conv.convs.{}", k + 1),
                Kind::Conv { stride: 2 },
                c,
                o,
                true,
            )?);
            c = o;
        }
        encoder.push(layer(
            &format!("encoder.Conv.convs.{}", stages.len() + 1),
            Kind::Conv { stride: 1 },
            c,
            s.latent,
            false,
        )?);
        // The decoder's up-stage widths, as skyzip-nn's ConvAeConfig::decoder builds them.
        let mut outs: Vec<usize> = s.stages.iter().rev().skip(1).copied().collect();
        outs.insert(0, *s.stages.last().unwrap_or(&s.width));
        outs.truncate(s.stages.len());
        if let Some(last) = outs.last_mut() {
            *last = s.width;
        }
        if shuffle {
            outs.pop();
            if let Some(last) = outs.last_mut() {
                *last = s.width;
            }
        }
        let out_ch = if shuffle { 4 } else { 1 };
        let dec = |name: &str| -> Result<Vec<FloatLayer>, CodecError> {
            let mut v = Vec::new();
            let mut c = s.latent;
            for (k, &o) in outs.iter().enumerate() {
                v.push(layer(
                    &format!("{name}.Conv.up.{k}"),
                    Kind::ConvT,
                    c,
                    o,
                    true,
                )?);
                c = o;
            }
            v.push(layer(
                &format!("{name}.Conv.out"),
                Kind::Conv { stride: 1 },
                c,
                out_ch,
                false,
            )?);
            Ok(v)
        };
        Ok(FloatNet {
            decoder: dec("decoder")?,
            var_decoder: dec("var_decoder")?,
            encoder,
            shape,
        })
    }

    /// The encoder's output on a normalised tile [1, h, w].
    pub fn encode(&self, x: &Map<f32>) -> Map<f32> {
        if self.shape.shuffle {
            run_float(&self.encoder, &space_to_depth(x))
        } else {
            run_float(&self.encoder, x)
        }
    }

    /// μ and the variance decoder's pre-softplus output from a latent.
    pub fn decode(&self, z: &Map<f32>) -> (Map<f32>, Map<f32>) {
        let (m, v) = (run_float(&self.decoder, z), run_float(&self.var_decoder, z));
        if self.shape.shuffle {
            (depth_to_space(&m), depth_to_space(&v))
        } else {
            (m, v)
        }
    }
}

fn model_err(why: String) -> CodecError {
    CodecError::Model {
        model: "integer engine".into(),
        why,
    }
}

/// An integer layer.
#[derive(Debug, Clone, PartialEq)]
pub struct IntLayer {
    pub kind: Kind,
    pub cin: usize,
    pub cout: usize,
    /// [cout][cin][k][k] for both kinds (transposed weights are reordered on conversion).
    pub weight: Vec<i8>,
    pub bias: Vec<i32>,
    /// Requantisation per output channel: multiplier and shift.
    pub mult: Vec<i32>,
    pub shift: Vec<u32>,
    pub relu: bool,
    /// Fractional bits of the input and of the output (value = q · 2^−f).
    pub in_frac: i32,
    pub out_frac: i32,
}

const BIAS_LIMIT: f64 = (1u32 << 29) as f64;
/// Products per output the i32 accumulator holds exactly: 384 · 127 · 32768 + 2^29 < 2^31.
pub const MAX_TERMS: usize = 384;

/// ⌊log2 |x|⌋ of a finite nonzero f64, exactly (from its exponent bits).
fn ilog2(x: f64) -> i32 {
    let bits = x.abs().to_bits();
    let e = ((bits >> 52) & 0x7ff) as i32;
    e - 1023
}

/// M, S with M / 2^S = `real` (2^29 ≤ M < 2^30), using only exact operations.
fn multiplier(real: f64) -> (i32, u32) {
    if !(real.is_finite() && real > 0.0) {
        return (0, 0);
    }
    let s = 29 - ilog2(real);
    let s = s.clamp(0, 62);
    let m = (real * 2f64.powi(s)).round();
    (m.min((1u32 << 31) as f64 - 1.0) as i32, s as u32)
}

/// The fractional bits that fit `max_abs` (with a little headroom) into an i16.
fn frac_for(max_abs: f64) -> i32 {
    if !(max_abs.is_finite() && max_abs > 0.0) {
        return 8;
    }
    (14 - ilog2(max_abs * 1.25)).clamp(-16, 24)
}

impl IntLayer {
    fn from_float(l: &FloatLayer, in_frac: i32, out_frac: i32) -> IntLayer {
        let k = l.kind.k();
        let per = l.cin * k * k;
        let mut weight = vec![0i8; l.cout * per];
        let mut bias = vec![0i32; l.cout];
        let mut mult = vec![0i32; l.cout];
        let mut shift = vec![0u32; l.cout];
        for o in 0..l.cout {
            let mut m = 0f64;
            for i in 0..l.cin {
                for ty in 0..k {
                    for tx in 0..k {
                        m = m.max(l.w(o, i, ty, tx).abs() as f64);
                    }
                }
            }
            let sw = if m > 0.0 { m / 127.0 } else { 1.0 };
            for i in 0..l.cin {
                for ty in 0..k {
                    for tx in 0..k {
                        let q = (l.w(o, i, ty, tx) as f64 / sw).round().clamp(-127.0, 127.0);
                        weight[o * per + (i * k + ty) * k + tx] = q as i8;
                    }
                }
            }
            // The accumulator's unit is sw · 2^−in_frac.
            let acc_unit = sw * 2f64.powi(-in_frac);
            bias[o] = (l.bias[o] as f64 / acc_unit)
                .round()
                .clamp(-BIAS_LIMIT, BIAS_LIMIT) as i32;
            let (mm, ss) = multiplier(acc_unit * 2f64.powi(out_frac));
            mult[o] = mm;
            shift[o] = ss;
        }
        IntLayer {
            kind: l.kind,
            cin: l.cin,
            cout: l.cout,
            weight,
            bias,
            mult,
            shift,
            relu: l.relu,
            in_frac,
            out_frac,
        }
    }

    #[inline]
    fn requant(&self, o: usize, acc: i32) -> i16 {
        requant_one(acc, self.mult[o], self.shift[o], self.relu)
    }

    /// The reference: every output's sum written out, one product at a time.
    pub fn forward_scalar(&self, x: &Map<i16>) -> Map<i16> {
        let k = self.kind.k();
        let per = self.cin * k * k;
        direct(
            self.kind,
            self.cin,
            self.cout,
            x,
            |o| self.bias[o],
            |acc, o, i, ty, tx, v| {
                acc + self.weight[o * per + (i * k + ty) * k + tx] as i32 * v as i32
            },
            |o, acc| self.requant(o, acc),
        )
    }

    /// The fast path. Every layer becomes sums over "terms": a term is an input plane read at
    /// a fixed offset (one input channel and kernel tap) with one weight per output channel.
    /// A stride-2 conv reads even and odd columns from separate (polyphase) planes; a
    /// transposed conv is four 2×2 convs, one per output parity, each writing every second
    /// output. Terms go in pairs through [`Terms::run`], which keeps 16 outputs × 4 output
    /// channels of sums in registers and requantises them there, so no i32 map is stored.
    /// Same integers as the reference, another order (see the module docs).
    pub fn forward_fast(&self, x: &Map<i16>) -> Map<i16> {
        let (oh, ow) = self.kind.out_size(x.h, x.w);
        let k = self.kind.k();
        let per = self.cin * k * k;
        // The input with a one-pixel zero border.
        let (ph, pw) = (x.h + 2, x.w + 2);
        // Buffers come from the thread's pool with whatever values they held: every value
        // that is read is written first (here: all of `pad`).
        let mut pad = take(self.cin * ph * pw + SLACK);
        for (i, plane) in pad.chunks_exact_mut(ph * pw).take(self.cin).enumerate() {
            plane[..pw].fill(0);
            plane[(ph - 1) * pw..].fill(0);
            for y in 0..x.h {
                let src = &x.data[(i * x.h + y) * x.w..(i * x.h + y + 1) * x.w];
                let row = &mut plane[(y + 1) * pw..(y + 2) * pw];
                row[0] = 0;
                row[1..=x.w].copy_from_slice(src);
                row[pw - 1] = 0;
            }
        }
        pad[self.cin * ph * pw..].fill(0);
        let w = |o: usize, i: usize, ty: usize, tx: usize| {
            self.weight[o * per + (i * k + ty) * k + tx] as i16
        };
        // Every output is written by the kernels (and the interleave below).
        let mut out = take(self.cout * oh * ow + SLACK);
        let rq = Requant {
            mult: &self.mult,
            shift: &self.shift,
            relu: self.relu,
        };
        let layout = Layout {
            plane: oh * ow,
            row: ow,
            col: 1,
            off: 0,
        };
        match self.kind {
            Kind::Conv { stride: 1 } => {
                let mut terms = Vec::with_capacity(self.cin * 9);
                for i in 0..self.cin {
                    for ty in 0..3 {
                        for tx in 0..3 {
                            terms.push((i * ph * pw + ty * pw + tx, (i, ty, tx)));
                        }
                    }
                }
                let t = Terms::new(&terms, self.cout, |o, (i, ty, tx)| w(o, i, ty, tx));
                t.run(&pad, pw, oh, ow, &self.bias, rq, &mut out, layout);
            }
            Kind::Conv { .. } => {
                // Output (y, x) reads padded (2y + ty, 2x + tx): columns 2x (tx 0), 2x + 1
                // (tx 1), 2x + 2 (tx 2) = even[x], odd[x], even[x + 1].
                let hw = pw.div_ceil(2);
                let plane = self.cin * ph * hw;
                let mut poly = take(2 * plane + SLACK);
                for r in 0..self.cin * ph {
                    let row = &pad[r * pw..(r + 1) * pw];
                    let (even, odd) = poly[r * hw..].split_at_mut(plane);
                    deinterleave(row, &mut even[..hw], &mut odd[..hw]);
                }
                poly[2 * plane..].fill(0);
                let mut terms = Vec::with_capacity(self.cin * 9);
                for i in 0..self.cin {
                    for ty in 0..3 {
                        for tx in 0..3 {
                            let (par, dx) = [(0, 0), (1, 0), (0, 1)][tx];
                            terms.push((par * plane + (i * ph + ty) * hw + dx, (i, ty, tx)));
                        }
                    }
                }
                let t = Terms::new(&terms, self.cout, |o, (i, ty, tx)| w(o, i, ty, tx));
                // Output row y reads padded rows 2y + ty: a step of two polyphase rows.
                t.run(&poly, 2 * hw, oh, ow, &self.bias, rq, &mut out, layout);
                give(poly);
            }
            Kind::ConvT => {
                // Output (2m + py, 2n + px): for parity 0 the taps 1 (padded row m + 1) and 3
                // (row m); for parity 1 the taps 2 (row m + 1) and 0 (row m + 2).
                const TAPS: [[(usize, usize); 2]; 2] = [[(1, 1), (0, 3)], [(1, 2), (2, 0)]];
                let (h, wd) = (x.h, x.w);
                // Each parity's outputs go contiguously into their own h×w plane of `split`
                // (the kernels' fast, contiguous store), then are interleaved into place.
                let part = h * wd;
                let mut split = take(self.cout * 4 * part);
                for (py, rows_taps) in TAPS.iter().enumerate() {
                    for (px, cols_taps) in TAPS.iter().enumerate() {
                        let mut terms = Vec::with_capacity(self.cin * 4);
                        for i in 0..self.cin {
                            for &(ry, ty) in rows_taps {
                                for &(rx, tx) in cols_taps {
                                    terms.push((i * ph * pw + ry * pw + rx, (i, ty, tx)));
                                }
                            }
                        }
                        let t = Terms::new(&terms, self.cout, |o, (i, ty, tx)| w(o, i, ty, tx));
                        let parity = Layout {
                            plane: 4 * part,
                            row: wd,
                            col: 1,
                            off: (2 * py + px) * part,
                        };
                        t.run(&pad, pw, h, wd, &self.bias, rq, &mut split, parity);
                    }
                }
                for o in 0..self.cout {
                    let planes = &split[o * 4 * part..(o + 1) * 4 * part];
                    let dst = &mut out[o * oh * ow..(o + 1) * oh * ow];
                    for (m, rows) in dst.chunks_exact_mut(2 * ow).enumerate() {
                        let (top, bottom) = rows.split_at_mut(ow);
                        for (py, row) in [top, bottom].into_iter().enumerate() {
                            let even = &planes[(2 * py) * part + m * wd..][..wd];
                            let odd = &planes[(2 * py + 1) * part + m * wd..][..wd];
                            interleave(even, odd, row);
                        }
                    }
                }
                give(split);
            }
        }
        give(pad);
        out.truncate(self.cout * oh * ow);
        Map {
            c: self.cout,
            h: oh,
            w: ow,
            data: out,
        }
    }
}

/// `dst` = a0 b0 a1 b1 … (x86-64: eight pairs at a time with SSE2, which every x86-64 CPU
/// has; the rest one pair at a time).
fn interleave(a: &[i16], b: &[i16], dst: &mut [i16]) {
    let n = a.len().min(b.len()).min(dst.len() / 2);
    let (a, b, dst) = (&a[..n], &b[..n], &mut dst[..2 * n]);
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while done + 8 <= n {
            // SAFETY: SSE2 is part of x86-64; the loads read a[done..done + 8] and
            // b[done..done + 8], the stores write dst[2·done..2·done + 16], all in bounds.
            unsafe {
                let x = _mm_loadu_si128(a.as_ptr().add(done) as *const __m128i);
                let y = _mm_loadu_si128(b.as_ptr().add(done) as *const __m128i);
                let d = dst.as_mut_ptr().add(2 * done);
                _mm_storeu_si128(d as *mut __m128i, _mm_unpacklo_epi16(x, y));
                _mm_storeu_si128(d.add(8) as *mut __m128i, _mm_unpackhi_epi16(x, y));
            }
            done += 8;
        }
    }
    for k in done..n {
        dst[2 * k] = a[k];
        dst[2 * k + 1] = b[k];
    }
}

/// `a` = x0 x2 x4 …, `b` = x1 x3 … (0 where x has no odd value left), for `a` and `b` of
/// ⌈len/2⌉ values (x86-64: eight pairs at a time with SSE2).
fn deinterleave(x: &[i16], a: &mut [i16], b: &mut [i16]) {
    let n = x.len().div_ceil(2).min(a.len()).min(b.len());
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while 2 * done + 16 <= x.len() && done + 8 <= n {
            // SAFETY: SSE2 is part of x86-64; the loads read x[2·done..2·done + 16], the
            // stores write a[done..done + 8] and b[done..done + 8], all in bounds. Each i32
            // lane holds a pair; shifted into sign-extended i16 values, packs narrows them
            // without saturating.
            unsafe {
                let p = x.as_ptr().add(2 * done) as *const __m128i;
                let (lo, hi) = (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)));
                let even = |v| _mm_srai_epi32(_mm_slli_epi32(v, 16), 16);
                let odd = |v| _mm_srai_epi32(v, 16);
                let ea = _mm_packs_epi32(even(lo), even(hi));
                let ob = _mm_packs_epi32(odd(lo), odd(hi));
                _mm_storeu_si128(a.as_mut_ptr().add(done) as *mut __m128i, ea);
                _mm_storeu_si128(b.as_mut_ptr().add(done) as *mut __m128i, ob);
            }
            done += 8;
        }
    }
    for c in done..n {
        a[c] = x[2 * c];
        b[c] = x.get(2 * c + 1).copied().unwrap_or(0);
    }
}

/// A layer's requantisation, per output channel (see [`requant_one`]).
#[derive(Clone, Copy)]
struct Requant<'a> {
    mult: &'a [i32],
    shift: &'a [u32],
    relu: bool,
}

/// Where output (o, y, x) of [`Terms::run`] goes: `o·plane + y·row + x·col + off`.
#[derive(Clone, Copy)]
struct Layout {
    plane: usize,
    row: usize,
    col: usize,
    off: usize,
}

#[cfg(test)]
type RequantRow = fn(&[i32], i32, u32, bool, &mut [i16]);

/// The requantisation: ⌊(a·m + 2^(s−1)) / 2^s⌋ clamped to i16, and at 0 after a ReLU.
#[inline(always)]
fn requant_one(a: i32, m: i32, s: u32, relu: bool) -> i16 {
    let r = if s > 0 { 1i64 << (s - 1) } else { 0 };
    let lo = if relu { 0 } else { -32768 };
    ((a as i64 * m as i64 + r) >> s).clamp(lo, 32767) as i16
}

/// [`requant_one`] over a row: the portable form.
fn requant_row_base(acc: &[i32], m: i32, s: u32, relu: bool, dst: &mut [i16]) {
    for (d, &a) in dst.iter_mut().zip(acc) {
        *d = requant_one(a, m, s, relu);
    }
}

/// [`requant_one`]'s constants for one output channel, in AVX2 registers. AVX2 has no
/// arithmetic 64-bit shift, so the sum is made non-negative first: ⌊(x + 2^61)/2^s⌋ − 2^(61−s)
/// = ⌊x/2^s⌋ exactly for |x| < 2^61 (|a·m| < 2^31·2^30) and s ≤ 61; a larger shift (never
/// chosen by the quantiser) takes the scalar form.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct RqAvx2 {
    scalar: bool,
    m: i32,
    s: u32,
    relu: bool,
    vm: std::arch::x86_64::__m256i,
    add: std::arch::x86_64::__m256i,
    cnt: std::arch::x86_64::__m128i,
    vlo: std::arch::x86_64::__m256i,
    vhi: std::arch::x86_64::__m256i,
    voff: std::arch::x86_64::__m256i,
}

#[cfg(target_arch = "x86_64")]
impl RqAvx2 {
    #[target_feature(enable = "avx2")]
    unsafe fn new(m: i32, s: u32, relu: bool) -> RqAvx2 {
        use std::arch::x86_64::*;
        let sc = s.min(61);
        let r = if sc > 0 { 1i64 << (sc - 1) } else { 0 };
        let lo = if relu { 0i64 } else { -32768 };
        let off = 1i64 << (61 - sc);
        RqAvx2 {
            scalar: s > 61,
            m,
            s,
            relu,
            vm: _mm256_set1_epi64x(m as i64),
            add: _mm256_set1_epi64x(r + (1i64 << 61)),
            cnt: _mm_set_epi64x(0, sc as i64),
            vlo: _mm256_set1_epi64x(lo + off),
            vhi: _mm256_set1_epi64x(32767 + off),
            voff: _mm256_set1_epi64x(off),
        }
    }

    /// Eight sums requantised, in order (for a channel that is not `scalar`).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn eight(&self, a: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m128i {
        use std::arch::x86_64::*;
        let q = |x: __m256i| {
            // x: four i64 sums a·m in lanes; shifted, clamped (in the offset scale), unshifted.
            let t = _mm256_srl_epi64(_mm256_add_epi64(x, self.add), self.cnt);
            let t = _mm256_blendv_epi8(t, self.vlo, _mm256_cmpgt_epi64(self.vlo, t));
            let t = _mm256_blendv_epi8(t, self.vhi, _mm256_cmpgt_epi64(t, self.vhi));
            _mm256_sub_epi64(t, self.voff)
        };
        let even = q(_mm256_mul_epi32(a, self.vm));
        let odd = q(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), self.vm));
        // Low dwords of even lanes, and of odd lanes moved up: the eight results in order.
        let v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
        // Narrowed to i16 (in range already): packs works per 128-bit lane, the permute
        // brings both lanes' four results together.
        let p = _mm256_permute4x64_epi64(_mm256_packs_epi32(v, v), 0b1000);
        _mm256_castsi256_si128(p)
    }
}

/// [`requant_row_base`] with AVX2, eight at a time (the tests hold [`RqAvx2`] to the scalar
/// form through it).
#[cfg(all(test, target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn requant_row_avx2_inner(acc: &[i32], m: i32, s: u32, relu: bool, dst: &mut [i16]) {
    use std::arch::x86_64::*;
    let c = RqAvx2::new(m, s, relu);
    if c.scalar {
        return requant_row_base(acc, m, s, relu, dst);
    }
    let n = acc.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        let a = _mm256_loadu_si256(acc.as_ptr().add(i) as *const __m256i);
        _mm_storeu_si128(dst[i..i + 8].as_mut_ptr() as *mut __m128i, c.eight(a));
        i += 8;
    }
    requant_row_base(&acc[i..n], m, s, relu, &mut dst[i..n]);
}

#[cfg(all(test, target_arch = "x86_64"))]
fn requant_row_avx2(acc: &[i32], m: i32, s: u32, relu: bool, dst: &mut [i16]) {
    // SAFETY: chosen only when the CPU reports AVX2 (see `requant_row`).
    unsafe { requant_row_avx2_inner(acc, m, s, relu, dst) }
}

/// The requantisation for this CPU (every choice gives the same integers).
#[cfg(test)]
fn requant_row() -> RequantRow {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return requant_row_avx2;
        }
    }
    requant_row_base
}

/// Extra zeros after every input buffer of the fast path, so that its 16- and 32-wide loads
/// past the last output of a row stay inside the buffer (those lanes' sums are discarded).
const SLACK: usize = 64;
/// The widest load of a kernel, in values.
const LANES: usize = 64;

/// A layer's terms in pairs, ready for [`Terms::run`]: per pair the two input offsets, and per
/// pair and output channel the two weights packed in one i32 (low half: the first term's).
struct Terms {
    offsets: Vec<(usize, usize)>,
    weights: Vec<i32>,
    cout: usize,
}

impl Terms {
    fn new<K: Copy>(terms: &[(usize, K)], cout: usize, w: impl Fn(usize, K) -> i16) -> Terms {
        let mut offsets = Vec::with_capacity(terms.len().div_ceil(2));
        let mut weights = Vec::with_capacity(offsets.capacity() * cout);
        for pair in terms.chunks(2) {
            let (a, ka) = pair[0];
            let second = pair.get(1).copied();
            offsets.push((a, second.map_or(a, |t| t.0)));
            for o in 0..cout {
                let w0 = w(o, ka) as u16 as u32;
                let w1 = second.map_or(0, |(_, kb)| w(o, kb)) as u16 as u32;
                weights.push((w0 | (w1 << 16)) as i32);
            }
        }
        Terms {
            offsets,
            weights,
            cout,
        }
    }

    /// Σ over terms of weight · src[offset + y·step + x] + bias, for y < rows, x < cols, and
    /// for every output channel o, requantised into `dst` at `layout`'s place of (o, y, x).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        src: &[i16],
        step: usize,
        rows: usize,
        cols: usize,
        bias: &[i32],
        rq: Requant,
        dst: &mut [i16],
        layout: Layout,
    ) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = self.offsets.iter().map(|p| p.0.max(p.1)).max().unwrap_or(0);
        assert!(
            last + (rows - 1) * step + cols.div_ceil(LANES) * LANES <= src.len(),
            "the fast path's loads stay inside its buffer"
        );
        let l = layout;
        assert!(
            (self.cout - 1) * l.plane + (rows - 1) * l.row + (cols - 1) * l.col + l.off < dst.len()
                && bias.len() >= self.cout
                && rq.mult.len() >= self.cout
                && rq.shift.len() >= self.cout,
            "the fast path's stores stay inside its buffer"
        );
        let job = Job {
            t: self,
            src,
            step,
            rows,
            cols,
            bias,
            rq,
            l: layout,
        };
        run_terms()(&job, dst);
    }
}

/// What one [`Terms::run`] computes: the terms, their input (rows `step` apart), the size of
/// the output, the bias and requantisation per output channel, and where the outputs go.
#[derive(Clone, Copy)]
struct Job<'a> {
    t: &'a Terms,
    src: &'a [i16],
    step: usize,
    rows: usize,
    cols: usize,
    bias: &'a [i32],
    rq: Requant<'a>,
    l: Layout,
}

/// A kernel: a [`Job`]'s outputs into the buffer.
type RunTerms = fn(&Job, &mut [i16]);

/// The portable kernel (any CPU): the same sums, one output channel and row at a time.
fn run_terms_base(j: &Job, dst: &mut [i16]) {
    let &Job {
        t,
        src,
        step,
        rows,
        cols,
        bias,
        rq,
        l,
    } = j;
    let mut acc = vec![0i32; cols];
    let mut q = vec![0i16; cols];
    for (o, &b0) in bias.iter().enumerate().take(t.cout) {
        for y in 0..rows {
            acc.fill(b0);
            for (p, &(a, b)) in t.offsets.iter().enumerate() {
                let wp = t.weights[p * t.cout + o];
                let (w0, w1) = (wp as i16 as i32, (wp >> 16) as i16 as i32);
                let (ra, rb) = (&src[a + y * step..], &src[b + y * step..]);
                for (x, v) in acc.iter_mut().enumerate() {
                    *v = v.wrapping_add(w0 * ra[x] as i32 + w1 * rb[x] as i32);
                }
            }
            requant_row_base(&acc, rq.mult[o], rq.shift[o], rq.relu, &mut q);
            let at = o * l.plane + y * l.row + l.off;
            for (x, &v) in q.iter().enumerate() {
                dst[at + x * l.col] = v;
            }
        }
    }
}

/// Visits every block of a job's outputs: per row, per `lanes` columns, the output channels in
/// runs of `sizes[0]`, then of `sizes[1]`, …; `f(y, x, o0, size)`. Channels that no size fits
/// (none when the last size is 1) are left to the caller.
#[inline(always)]
fn for_blocks(
    j: &Job,
    lanes: usize,
    sizes: &[usize],
    mut f: impl FnMut(usize, usize, usize, usize),
) {
    for y in 0..j.rows {
        let mut x = 0;
        while x < j.cols {
            let mut o0 = 0;
            for &nb in sizes {
                while o0 + nb <= j.t.cout {
                    f(y, x, o0, nb);
                    o0 += nb;
                }
            }
            x += lanes;
        }
    }
}

/// AVX2: 16 outputs of 4 output channels in eight registers; per pair of terms, the two input
/// rows interleaved (`unpack`) and multiplied by the packed weight pair (`madd`: two products
/// and their sum per lane, exact in i32); then bias, requantisation and the store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_terms_avx2_inner(j: &Job, dst: &mut [i16]) {
    let k = Kernel::new(j);
    // Output channels in fours; the rest (a net's last layer: one or two) 64 columns at once.
    for_blocks(j, 16, &[4], |y, x, o0, _| k.block::<4>(dst, y, x, o0));
    for o in j.t.cout / 4 * 4..j.t.cout {
        for y in 0..j.rows {
            for x in (0..j.cols).step_by(64) {
                k.block_wide::<4>(dst, y, x, o);
            }
        }
    }
}

/// A job, and its requantisation constants in registers: what every block of the SIMD kernels
/// reads.
#[cfg(target_arch = "x86_64")]
struct Kernel<'a> {
    j: &'a Job<'a>,
    consts: Vec<RqAvx2>,
}

#[cfg(target_arch = "x86_64")]
impl<'a> Kernel<'a> {
    #[target_feature(enable = "avx2")]
    unsafe fn new(j: &'a Job<'a>) -> Kernel<'a> {
        let rq = j.rq;
        let consts = (0..j.t.cout)
            .map(|o| RqAvx2::new(rq.mult[o], rq.shift[o], rq.relu))
            .collect();
        Kernel { j, consts }
    }
}

#[cfg(target_arch = "x86_64")]
impl Kernel<'_> {
    /// 16 outputs (row `y`, columns `x`…) of the output channels `o0`…`o0 + NB`: the
    /// accumulators stay in registers (NB is a constant).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block<const NB: usize>(&self, dst: &mut [i16], y: usize, x: usize, o0: usize) {
        use std::arch::x86_64::*;
        let t = self.j.t;
        let n = (self.j.cols - x).min(16);
        // SAFETY (every pointer below): `Terms::run` checked that every 16-wide load is in
        // `src`, and every store in `dst`; the weights hold `cout` entries per pair.
        let sp = self.j.src.as_ptr().add(y * self.j.step + x);
        let wp = t.weights.as_ptr().add(o0);
        let mut lo = [_mm256_setzero_si256(); NB];
        let mut hi = [_mm256_setzero_si256(); NB];
        for (p, &(a, b)) in t.offsets.iter().enumerate() {
            let va = _mm256_loadu_si256(sp.add(a) as *const __m256i);
            let vb = _mm256_loadu_si256(sp.add(b) as *const __m256i);
            let il = _mm256_unpacklo_epi16(va, vb);
            let ih = _mm256_unpackhi_epi16(va, vb);
            let wrow = wp.add(p * t.cout);
            for j in 0..NB {
                let w = _mm256_set1_epi32(*wrow.add(j));
                lo[j] = _mm256_add_epi32(lo[j], _mm256_madd_epi16(il, w));
                hi[j] = _mm256_add_epi32(hi[j], _mm256_madd_epi16(ih, w));
            }
        }
        for j in 0..NB {
            self.store16(dst, o0 + j, (y, x, n), lo[j], hi[j]);
        }
    }

    /// 16·U outputs (row `y`, columns `x`…) of the one output channel `o`: U blocks of 16
    /// side by side, so that 2·U sums are in flight at once (one channel's 16 alone would wait
    /// on each `madd` in turn).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn block_wide<const U: usize>(&self, dst: &mut [i16], y: usize, x: usize, o: usize) {
        use std::arch::x86_64::*;
        let t = self.j.t;
        let n = self.j.cols - x;
        // SAFETY (every pointer below): `Terms::run` checked that every load up to 16·U
        // (≤ LANES) past a block's start is in `src`, and every store in `dst`.
        let sp = self.j.src.as_ptr().add(y * self.j.step + x);
        let mut lo = [_mm256_setzero_si256(); U];
        let mut hi = [_mm256_setzero_si256(); U];
        for (p, &(a, b)) in t.offsets.iter().enumerate() {
            let w = _mm256_set1_epi32(*t.weights.get_unchecked(p * t.cout + o));
            for u in 0..U {
                let va = _mm256_loadu_si256(sp.add(a + 16 * u) as *const __m256i);
                let vb = _mm256_loadu_si256(sp.add(b + 16 * u) as *const __m256i);
                let il = _mm256_unpacklo_epi16(va, vb);
                let ih = _mm256_unpackhi_epi16(va, vb);
                lo[u] = _mm256_add_epi32(lo[u], _mm256_madd_epi16(il, w));
                hi[u] = _mm256_add_epi32(hi[u], _mm256_madd_epi16(ih, w));
            }
        }
        for u in 0..U {
            if 16 * u < n {
                self.store16(dst, o, (y, x + 16 * u, (n - 16 * u).min(16)), lo[u], hi[u]);
            }
        }
    }

    /// Bias, requantisation and the store of `n` ≤ 16 outputs of channel `o` from row `y`,
    /// column `x` on, whose sums are in `lo` (unpacklo's: outputs 0–3 and 8–11) and `hi`
    /// (4–7 and 12–15). Always inlined into the AVX2 blocks that call it (whose target
    /// feature its intrinsics then share); never called from anywhere else.
    #[inline(always)]
    unsafe fn store16(
        &self,
        dst: &mut [i16],
        o: usize,
        (y, x, n): (usize, usize, usize),
        lo: std::arch::x86_64::__m256i,
        hi: std::arch::x86_64::__m256i,
    ) {
        use std::arch::x86_64::*;
        let l = self.j.l;
        let vb = _mm256_set1_epi32(self.j.bias[o]);
        let first = _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), vb);
        let second = _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x31), vb);
        let c = &self.consts[o];
        let at = o * l.plane + y * l.row + x * l.col + l.off;
        let mut q = [0i16; 16];
        if c.scalar {
            let mut a = [0i32; 16];
            _mm256_storeu_si256(a.as_mut_ptr() as *mut __m256i, first);
            _mm256_storeu_si256(a.as_mut_ptr().add(8) as *mut __m256i, second);
            for (d, &s) in q.iter_mut().zip(&a) {
                *d = requant_one(s, c.m, c.s, c.relu);
            }
        } else if l.col == 1 && n == 16 {
            // SAFETY: `Terms::run` checked that the outputs (o, y, x…x + 15) are in `dst`.
            let d = dst.as_mut_ptr().add(at);
            _mm_storeu_si128(d as *mut __m128i, c.eight(first));
            _mm_storeu_si128(d.add(8) as *mut __m128i, c.eight(second));
            return;
        } else {
            _mm_storeu_si128(q.as_mut_ptr() as *mut __m128i, c.eight(first));
            _mm_storeu_si128(q.as_mut_ptr().add(8) as *mut __m128i, c.eight(second));
        }
        for (k, &v) in q[..n].iter().enumerate() {
            *dst.get_unchecked_mut(at + k * l.col) = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn run_terms_avx2(j: &Job, dst: &mut [i16]) {
    // SAFETY: chosen only when the CPU reports AVX2 (see `kernels`).
    unsafe { run_terms_avx2_inner(j, dst) }
}

/// AVX-512 with VNNI: 32 outputs of 8 output channels in sixteen registers, each pair of
/// terms added by one `vpdpwssd` per register (two products and the accumulator, wrapping in
/// i32: the same as `madd` then `add`); requantised eight at a time as the AVX2 kernel does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run_terms_avx512_inner(j: &Job, dst: &mut [i16]) {
    let k = Kernel::new(j);
    for_blocks(j, 32, &[8, 4, 1], |y, x, o0, nb| match nb {
        8 => k.block512::<8>(dst, y, x, o0),
        4 => k.block512::<4>(dst, y, x, o0),
        _ => k.block512::<1>(dst, y, x, o0),
    });
}

/// Where each of 16 outputs is, in order, among `unpacklo`'s (0–15) and `unpackhi`'s (16–31)
/// sums: per 128-bit lane, unpacklo holds four outputs and unpackhi the next four.
#[cfg(target_arch = "x86_64")]
const FIRST16: [i32; 16] = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
#[cfg(target_arch = "x86_64")]
const LAST16: [i32; 16] = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];

#[cfg(target_arch = "x86_64")]
impl Kernel<'_> {
    /// 32 outputs (row `y`, columns `x`…) of the output channels `o0`…`o0 + NB`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn block512<const NB: usize>(&self, dst: &mut [i16], y: usize, x: usize, o0: usize) {
        use std::arch::x86_64::*;
        let t = self.j.t;
        let n = (self.j.cols - x).min(32);
        // SAFETY (every pointer below): `Terms::run` checked that every 32-wide load is in
        // `src`, and every store in `dst`; the weights hold `cout` entries per pair.
        let sp = self.j.src.as_ptr().add(y * self.j.step + x);
        let wp = t.weights.as_ptr().add(o0);
        let mut lo = [_mm512_setzero_si512(); NB];
        let mut hi = [_mm512_setzero_si512(); NB];
        for (p, &(a, b)) in t.offsets.iter().enumerate() {
            let va = _mm512_loadu_si512(sp.add(a) as *const __m512i);
            let vb = _mm512_loadu_si512(sp.add(b) as *const __m512i);
            let il = _mm512_unpacklo_epi16(va, vb);
            let ih = _mm512_unpackhi_epi16(va, vb);
            let wrow = wp.add(p * t.cout);
            for j in 0..NB {
                let w = _mm512_set1_epi32(*wrow.add(j));
                lo[j] = _mm512_dpwssd_epi32(lo[j], il, w);
                hi[j] = _mm512_dpwssd_epi32(hi[j], ih, w);
            }
        }
        let first = _mm512_loadu_si512(FIRST16.as_ptr() as *const __m512i);
        let last = _mm512_loadu_si512(LAST16.as_ptr() as *const __m512i);
        let l = self.j.l;
        for j in 0..NB {
            let o = o0 + j;
            let vb = _mm512_set1_epi32(self.j.bias[o]);
            let halves = [
                _mm512_add_epi32(_mm512_permutex2var_epi32(lo[j], first, hi[j]), vb),
                _mm512_add_epi32(_mm512_permutex2var_epi32(lo[j], last, hi[j]), vb),
            ];
            let c = &self.consts[o];
            let at = o * l.plane + y * l.row + x * l.col + l.off;
            let mut q = [0i16; 32];
            if c.scalar {
                let mut a = [0i32; 32];
                _mm512_storeu_si512(a.as_mut_ptr() as *mut __m512i, halves[0]);
                _mm512_storeu_si512(a.as_mut_ptr().add(16) as *mut __m512i, halves[1]);
                for (d, &s) in q.iter_mut().zip(&a) {
                    *d = requant_one(s, c.m, c.s, c.relu);
                }
            } else {
                let direct = l.col == 1 && n == 32;
                let out = if direct {
                    dst.as_mut_ptr().add(at)
                } else {
                    q.as_mut_ptr()
                };
                for (h, v) in halves.iter().enumerate() {
                    let (e0, e1) = (
                        _mm512_castsi512_si256(*v),
                        _mm512_extracti64x4_epi64::<1>(*v),
                    );
                    _mm_storeu_si128(out.add(16 * h) as *mut __m128i, c.eight(e0));
                    _mm_storeu_si128(out.add(16 * h + 8) as *mut __m128i, c.eight(e1));
                }
                if direct {
                    continue;
                }
                if l.col == 2 && n == 32 {
                    // Every second place (a transposed conv's parity): the 32 values spread
                    // to the even lanes of two vectors, stored under a mask.
                    let v = _mm512_loadu_si512(q.as_ptr() as *const __m512i);
                    let d = dst.as_mut_ptr().add(at);
                    for (h, idx) in [&SPREAD_LO, &SPREAD_HI].into_iter().enumerate() {
                        let idx = _mm512_loadu_si512(idx.as_ptr() as *const __m512i);
                        let spread = _mm512_permutexvar_epi16(idx, v);
                        _mm512_mask_storeu_epi16(d.add(32 * h), 0x5555_5555, spread);
                    }
                    continue;
                }
            }
            for (k, &v) in q[..n].iter().enumerate() {
                *dst.get_unchecked_mut(at + k * l.col) = v;
            }
        }
    }
}

/// Lane 2k (and 2k + 1) of a spread takes value `first` + k: 0 for the first half of 32
/// values, 16 for the second.
#[cfg(target_arch = "x86_64")]
const fn spread(first: i16) -> [i16; 32] {
    let mut t = [0i16; 32];
    let mut k = 0;
    while k < 32 {
        t[k] = first + (k / 2) as i16;
        k += 1;
    }
    t
}
#[cfg(target_arch = "x86_64")]
const SPREAD_LO: [i16; 32] = spread(0);
#[cfg(target_arch = "x86_64")]
const SPREAD_HI: [i16; 32] = spread(16);

#[cfg(target_arch = "x86_64")]
fn run_terms_avx512(j: &Job, dst: &mut [i16]) {
    // SAFETY: chosen only when the CPU reports AVX-512 F, BW and VNNI (see `kernels`).
    unsafe { run_terms_avx512_inner(j, dst) }
}

/// The kernels this CPU can run, fastest first (the portable one last).
fn kernels() -> Vec<RunTerms> {
    let mut k: Vec<RunTerms> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
            k.push(run_terms_avx512);
        }
        if has!("avx2") {
            k.push(run_terms_avx2);
        }
    }
    k.push(run_terms_base);
    k
}

/// The kernel for this CPU: the same integers on every choice (the CPU only decides how many
/// lanes add at once), so the choice never changes a result.
fn run_terms() -> RunTerms {
    static BEST: std::sync::OnceLock<RunTerms> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| kernels()[0])
}

/// The integer codec net.
#[derive(Debug, Clone, PartialEq)]
pub struct IntNet {
    pub encoder: Vec<IntLayer>,
    pub decoder: Vec<IntLayer>,
    pub var_decoder: Vec<IntLayer>,
    /// Fractional bits of the encoder's input and of the decoders' input (the latent).
    pub input_frac: i32,
    pub latent_frac: i32,
    /// The encoder reads 2×2 blocks as channels, the decoders write them ([`NetShape`]).
    pub shuffle: bool,
}

/// Which implementation runs the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Scalar,
    Fast,
}

fn run_int(layers: &[IntLayer], x: Map<i16>, path: Path) -> Map<i16> {
    let mut h = x;
    for l in layers {
        let next = match path {
            Path::Scalar => l.forward_scalar(&h),
            Path::Fast => l.forward_fast(&h),
        };
        give(std::mem::replace(&mut h, next).data);
    }
    h
}

thread_local! {
    /// Buffers of the fast path, kept by each thread between layers and tiles: taking a few MB
    /// anew for every layer meant zeroing them each time (memset and page faults, 5–10 % of the
    /// codec's time).
    static POOL: std::cell::RefCell<Vec<Vec<i16>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most buffers a thread keeps (a tile's layers use about twenty sizes).
const POOL_SIZE: usize = 32;

/// A buffer of `n` values, holding whatever it held: one of the thread's buffers made for
/// exactly that size (the same layer of an earlier tile; a layer's output comes back shortened
/// by its slack, which is refilled with zeros), or a new one of zeros. Its user writes every
/// value it reads.
fn take(n: usize) -> Vec<i16> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        p.iter()
            .rposition(|v| v.capacity() == n)
            .map(|i| p.swap_remove(i))
    })
    .map(|mut v| {
        v.resize(n, 0);
        v
    })
    .unwrap_or_else(|| vec![0; n])
}

/// Hands a buffer back to the thread's pool (the oldest goes when it is full).
fn give(v: Vec<i16>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if !v.is_empty() {
            if p.len() == POOL_SIZE {
                p.remove(0);
            }
            p.push(v);
        }
    });
}

/// The largest |value| of every layer's output over `inputs`, layer by layer, and the last
/// layer's output for each input.
fn ranges(layers: &[FloatLayer], inputs: &[Map<f32>]) -> (Vec<f64>, Vec<Map<f32>>) {
    let mut m = vec![0f64; layers.len()];
    let mut outs = Vec::with_capacity(inputs.len());
    for x in inputs {
        let mut h = x.clone();
        for (k, l) in layers.iter().enumerate() {
            h = l.forward(&h);
            m[k] = h.data.iter().fold(m[k], |a, &v| a.max(v.abs() as f64));
        }
        outs.push(h);
    }
    (m, outs)
}

fn max_abs(maps: &[Map<f32>]) -> f64 {
    maps.iter()
        .flat_map(|m| m.data.iter())
        .fold(0f64, |a, &v| a.max(v.abs() as f64))
}

fn convert(layers: &[FloatLayer], in_frac: i32, range: &[f64]) -> Vec<IntLayer> {
    let mut f = in_frac;
    layers
        .iter()
        .zip(range)
        .map(|(l, &r)| {
            let out = frac_for(r);
            let q = IntLayer::from_float(l, f, out);
            f = out;
            q
        })
        .collect()
}

impl IntNet {
    /// The encoder's total stride: tile sides must be multiples of it.
    pub fn divisor(&self) -> usize {
        let d: usize = self
            .encoder
            .iter()
            .map(|l| match l.kind {
                Kind::Conv { stride } => stride,
                Kind::ConvT => 1,
            })
            .product();
        if self.shuffle {
            2 * d
        } else {
            d
        }
    }

    /// Channels of the latent.
    pub fn latent_channels(&self) -> usize {
        self.encoder.last().map_or(0, |l| l.cout)
    }

    /// Post-training quantisation: each layer's output scale from the largest value it takes
    /// on the calibration tiles (normalised, [1, h, w]).
    pub fn calibrate(net: &FloatNet, tiles: &[Map<f32>]) -> Result<IntNet, CodecError> {
        for l in net
            .encoder
            .iter()
            .chain(&net.decoder)
            .chain(&net.var_decoder)
        {
            let terms = l.cin * l.kind.k() * l.kind.k();
            if terms > MAX_TERMS {
                return Err(model_err(format!(
                    "a layer sums {terms} products per output; the i32 accumulator is exact up \
                     to {MAX_TERMS}"
                )));
            }
        }
        let input_frac = frac_for(max_abs(tiles));
        let blocks: Vec<Map<f32>>;
        let inputs = if net.shape.shuffle {
            blocks = tiles.iter().map(space_to_depth).collect();
            &blocks[..]
        } else {
            tiles
        };
        // The encoder's outputs are the latents; the decoders see them rounded.
        let (enc_r, mut latents) = ranges(&net.encoder, inputs);
        latents
            .iter_mut()
            .for_each(|z| z.data.iter_mut().for_each(|v| *v = v.round()));
        let latent_frac = frac_for(max_abs(&latents));
        Ok(IntNet {
            encoder: convert(&net.encoder, input_frac, &enc_r),
            decoder: convert(&net.decoder, latent_frac, &ranges(&net.decoder, &latents).0),
            var_decoder: convert(
                &net.var_decoder,
                latent_frac,
                &ranges(&net.var_decoder, &latents).0,
            ),
            input_frac,
            latent_frac,
            shuffle: net.shape.shuffle,
        })
    }

    /// A normalised tile in the encoder's input scale (round half away from zero, saturated).
    pub fn quantise_input(&self, tile: &[f32], h: usize, w: usize) -> Map<i16> {
        Map {
            c: 1,
            h,
            w,
            data: tile.iter().map(|&v| self.quantise_value(v)).collect(),
        }
    }

    /// One input value at the encoder's input scale 2^[`IntNet::input_frac`]: clamped to the
    /// i16 range, then rounded half away from zero; not finite: 0.
    #[inline]
    pub fn quantise_value(&self, v: f32) -> i16 {
        if v.is_finite() {
            let s = crate::detmath::pow2i(self.input_frac as i64);
            // Clamped first (to integers, so the same value), then rounded.
            crate::detmath::round_half_away((v as f64 * s).clamp(-32768.0, 32767.0)) as i16
        } else {
            0
        }
    }

    /// What the encoder's first layer reads from a quantised tile (its 2×2 blocks as channels
    /// for a `shuffle` net).
    pub fn encoder_input(&self, x: Map<i16>) -> Map<i16> {
        if self.shuffle {
            space_to_depth(&x)
        } else {
            x
        }
    }

    /// The latent of a quantised tile, rounded to integers: [C, h', w'].
    pub fn encode(&self, x: Map<i16>, path: Path) -> Map<i64> {
        let z = run_int(&self.encoder, self.encoder_input(x), path);
        let f = self.encoder.last().map_or(0, |l| l.out_frac);
        Map {
            c: z.c,
            h: z.h,
            w: z.w,
            data: z.data.iter().map(|&q| round_shift(q as i64, f)).collect(),
        }
    }

    /// μ (normalised units) and the variance decoder's output v (σ² = softplus(v) + ε), both
    /// as exact f64 of their integers.
    pub fn decode(&self, z: &Map<i64>, path: Path) -> (Vec<f64>, Vec<f64>) {
        let (mu, var) = self.decode_q(z, path);
        let to_f = |m: Vec<i16>, f: i32| -> Vec<f64> {
            let s = crate::detmath::pow2i(-f as i64);
            m.iter().map(|&q| q as f64 * s).collect()
        };
        (to_f(mu, self.mu_frac()), to_f(var, self.var_frac()))
    }

    /// Fractional bits of the μ decoder's output.
    pub fn mu_frac(&self) -> i32 {
        self.decoder.last().map_or(0, |l| l.out_frac)
    }

    /// Fractional bits of the variance decoder's output.
    pub fn var_frac(&self) -> i32 {
        self.var_decoder.last().map_or(0, |l| l.out_frac)
    }

    /// The decoders' integer outputs: μ · 2^[`IntNet::mu_frac`] and v · 2^[`IntNet::var_frac`].
    pub fn decode_q(&self, z: &Map<i64>, path: Path) -> (Vec<i16>, Vec<i16>) {
        let x = self.decoder_input(z);
        let mu = run_int(&self.decoder, x.clone(), path);
        let var = run_int(&self.var_decoder, x, path);
        if self.shuffle {
            (depth_to_space(&mu).data, depth_to_space(&var).data)
        } else {
            (mu.data, var.data)
        }
    }

    /// What both decoders' first layers read: the integer latent at the decoders' input scale
    /// (2^[`IntNet::latent_frac`], saturated to i16).
    pub fn decoder_input(&self, z: &Map<i64>) -> Map<i16> {
        let lf = self.latent_frac;
        Map {
            c: z.c,
            h: z.h,
            w: z.w,
            data: z
                .data
                .iter()
                .map(|&v| {
                    let q = if lf >= 0 {
                        v.saturating_mul(1i64 << lf)
                    } else {
                        round_shift(v, -lf)
                    };
                    q.clamp(-32768, 32767) as i16
                })
                .collect(),
        }
    }
}

/// Metadata entries of a model file (sorted, so a file's bytes depend only on its content).
pub type Meta = std::collections::BTreeMap<String, String>;
/// Tensors of a model file: name, type, shape, little-endian bytes.
pub type Tensors = Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// The little-endian bytes of `v`.
pub fn le_i32(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The values of little-endian i32 bytes.
pub fn le_i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A tensor's bytes, checked to be of type `dt` and, when given, to hold `len` values.
pub fn tensor_bytes<'a>(
    st: &'a SafeTensors,
    name: &str,
    dt: safetensors::Dtype,
    len: Option<usize>,
) -> Result<&'a [u8], String> {
    let t = st.tensor(name).map_err(|_| format!("no tensor {name}"))?;
    let b = t.data();
    if t.dtype() != dt || len.is_some_and(|n| b.len() != n * dt.bitsize() / 8) {
        return Err(format!("{name}: wrong type or size"));
    }
    Ok(b)
}

/// A safetensors file whose metadata is one entry, `skyzip`, holding `meta` as a JSON object
/// with sorted keys: the same model gives the same bytes on every run (safetensors orders the
/// tensors itself; a multi-entry metadata map would come out in hash order).
pub fn write_safetensors(meta: &Meta, tensors: &Tensors) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dt, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dt, shape.clone(), data).expect("shapes match their data"),
            )
        })
        .collect();
    let json = serde_json::to_string(meta).expect("a map of strings");
    let md = std::collections::HashMap::from([("skyzip".to_string(), json)]);
    safetensors::serialize(views, Some(md)).expect("an in-memory safetensors file")
}

/// The metadata entries and tensors of a file written by [`write_safetensors`].
pub fn read_safetensors(bytes: &[u8]) -> Result<(Meta, SafeTensors<'_>), CodecError> {
    let (_, md) = SafeTensors::read_metadata(bytes).map_err(|e| model_err(e.to_string()))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| model_err(e.to_string()))?;
    let json = md
        .metadata()
        .as_ref()
        .and_then(|m| m.get("skyzip"))
        .ok_or_else(|| model_err("no skyzip metadata (not a codec model file)".into()))?;
    let meta: Meta =
        serde_json::from_str(json).map_err(|e| model_err(format!("its skyzip metadata: {e}")))?;
    Ok((meta, st))
}

/// The engine format of [`IntNet::to_parts`] (inside a codec model file).
pub const FORMAT: &str = "skyzip-int8/1";

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Conv { stride: 1 } => "conv1",
        Kind::Conv { .. } => "conv2",
        Kind::ConvT => "convt",
    }
}

impl IntNet {
    fn parts(&self) -> [(&'static str, &Vec<IntLayer>); 3] {
        [
            ("encoder", &self.encoder),
            ("decoder", &self.decoder),
            ("var_decoder", &self.var_decoder),
        ]
    }

    /// The integer net as safetensors tensors and metadata entries: per layer `PART.K.weight`
    /// (I8, [cout, cin, k, k]), `.bias`, `.mult`, `.shift` (I32, [cout]); its geometry and
    /// scales in the metadata (`skyzip.engine` = [`FORMAT`]).
    pub fn to_parts(&self) -> (Meta, Tensors) {
        use safetensors::Dtype;
        let mut meta = Meta::new();
        meta.insert("skyzip.engine".to_string(), FORMAT.to_string());
        meta.insert("input_frac".into(), self.input_frac.to_string());
        meta.insert("latent_frac".into(), self.latent_frac.to_string());
        if self.shuffle {
            meta.insert("shuffle".into(), "true".into());
        }
        let mut bufs: Tensors = Vec::new();
        for (part, layers) in self.parts() {
            meta.insert(format!("{part}.layers"), layers.len().to_string());
            for (k, l) in layers.iter().enumerate() {
                let n = l.kind.k();
                meta.insert(
                    format!("{part}.{k}"),
                    format!(
                        "{} {} {} {} {} {}",
                        kind_name(l.kind),
                        l.cin,
                        l.cout,
                        u8::from(l.relu),
                        l.in_frac,
                        l.out_frac
                    ),
                );
                bufs.push((
                    format!("{part}.{k}.weight"),
                    Dtype::I8,
                    vec![l.cout, l.cin, n, n],
                    l.weight.iter().map(|&w| w as u8).collect(),
                ));
                bufs.push((
                    format!("{part}.{k}.bias"),
                    Dtype::I32,
                    vec![l.cout],
                    le_i32(&l.bias),
                ));
                bufs.push((
                    format!("{part}.{k}.mult"),
                    Dtype::I32,
                    vec![l.cout],
                    le_i32(&l.mult),
                ));
                let sh: Vec<i32> = l.shift.iter().map(|&x| x as i32).collect();
                bufs.push((
                    format!("{part}.{k}.shift"),
                    Dtype::I32,
                    vec![l.cout],
                    le_i32(&sh),
                ));
            }
        }
        (meta, bufs)
    }

    /// The net of [`IntNet::to_parts`]' entries, checking every shape and bound.
    pub fn from_parts(meta: &Meta, st: &SafeTensors) -> Result<IntNet, CodecError> {
        let get = |k: &str| {
            meta.get(k)
                .cloned()
                .ok_or_else(|| model_err(format!("no metadata {k}")))
        };
        let engine = get("skyzip.engine")?;
        if engine != FORMAT {
            return Err(model_err(format!(
                "integer model format '{engine}' (this build reads {FORMAT})"
            )));
        }
        let int = |v: String| -> Result<i64, CodecError> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| model_err(format!("'{v}' is not an integer")))
        };
        let tensor = |name: &str, dt: safetensors::Dtype, len: usize| {
            tensor_bytes(st, name, dt, Some(len)).map_err(model_err)
        };
        let mut parts = Vec::new();
        for part in ["encoder", "decoder", "var_decoder"] {
            let n = int(get(&format!("{part}.layers"))?)? as usize;
            let mut layers = Vec::with_capacity(n);
            for k in 0..n {
                let g = get(&format!("{part}.{k}"))?;
                let f: Vec<&str> = g.split_whitespace().collect();
                if f.len() != 6 {
                    return Err(model_err(format!("{part}.{k}: '{g}'")));
                }
                let kind = match f[0] {
                    "conv1" => Kind::Conv { stride: 1 },
                    "conv2" => Kind::Conv { stride: 2 },
                    "convt" => Kind::ConvT,
                    o => return Err(model_err(format!("{part}.{k}: unknown layer '{o}'"))),
                };
                let (cin, cout) = (int(f[1].into())? as usize, int(f[2].into())? as usize);
                let kk = kind.k();
                if cin == 0 || cout == 0 || cin * kk * kk > MAX_TERMS {
                    return Err(model_err(format!("{part}.{k}: {cin}→{cout} channels")));
                }
                let weight: Vec<i8> = tensor(
                    &format!("{part}.{k}.weight"),
                    safetensors::Dtype::I8,
                    cout * cin * kk * kk,
                )?
                .iter()
                .map(|&b| b as i8)
                .collect();
                let bias = le_i32s(tensor(
                    &format!("{part}.{k}.bias"),
                    safetensors::Dtype::I32,
                    cout,
                )?);
                let mult = le_i32s(tensor(
                    &format!("{part}.{k}.mult"),
                    safetensors::Dtype::I32,
                    cout,
                )?);
                let shift = le_i32s(tensor(
                    &format!("{part}.{k}.shift"),
                    safetensors::Dtype::I32,
                    cout,
                )?);
                let bounded = weight.iter().all(|&w| w != i8::MIN)
                    && bias.iter().all(|&b| (b as f64).abs() <= BIAS_LIMIT)
                    && mult.iter().all(|&m| m >= 0)
                    && shift.iter().all(|&s| (0..=62).contains(&s));
                if !bounded {
                    return Err(model_err(format!("{part}.{k}: a value outside its bounds")));
                }
                layers.push(IntLayer {
                    kind,
                    cin,
                    cout,
                    weight,
                    bias,
                    mult,
                    shift: shift.into_iter().map(|s| s as u32).collect(),
                    relu: f[3] == "1",
                    in_frac: int(f[4].into())? as i32,
                    out_frac: int(f[5].into())? as i32,
                });
            }
            parts.push(layers);
        }
        let var_decoder = parts.pop().unwrap_or_default();
        let decoder = parts.pop().unwrap_or_default();
        let encoder = parts.pop().unwrap_or_default();
        Ok(IntNet {
            encoder,
            decoder,
            var_decoder,
            input_frac: int(get("input_frac")?)? as i32,
            latent_frac: int(get("latent_frac")?)? as i32,
            shuffle: meta.get("shuffle").is_some_and(|v| v == "true"),
        })
    }
}

/// round(q · 2^−f) for f ≥ 0 (half away from zero), q · 2^−f for f < 0.
fn round_shift(q: i64, f: i32) -> i64 {
    if f <= 0 {
        return q.saturating_mul(1i64 << (-f).min(62));
    }
    let h = 1i64 << (f - 1);
    if q >= 0 {
        (q + h) >> f
    } else {
        -((-q + h) >> f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> FloatNet {
        let bytes = include_bytes!("../models/float/default.safetensors");
        FloatNet::from_safetensors(
            bytes,
            NetShape {
                width: 16,
                stages: vec![16, 16, 16],
                latent: 4,
                shuffle: false,
            },
        )
        .unwrap()
    }

    /// A xorshift64 stream of test integers.
    fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// A smooth test tile with a few "stars", in asinh-normalised-like units.
    fn tile(n: usize, seed: u64) -> Map<f32> {
        let mut s = seed;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        let stars: Vec<(f64, f64, f64)> = (0..6)
            .map(|_| {
                (
                    (rnd() + 0.5) * n as f64,
                    (rnd() + 0.5) * n as f64,
                    3.0 + 5.0 * rnd(),
                )
            })
            .collect();
        let data = (0..n * n)
            .map(|k| {
                let (x, y) = ((k % n) as f64, (k / n) as f64);
                let mut v = 0.3 * rnd();
                for &(sx, sy, a) in &stars {
                    v += a * (-((x - sx).powi(2) + (y - sy).powi(2)) / 4.0).exp();
                }
                v as f32
            })
            .collect();
        Map {
            c: 1,
            h: n,
            w: n,
            data,
        }
    }

    #[test]
    fn scalar_and_fast_paths_agree_bit_for_bit() {
        let f = bundled();
        let calib: Vec<Map<f32>> = (0..3).map(|s| tile(32, s)).collect();
        let q = IntNet::calibrate(&f, &calib).unwrap();
        for seed in 10..13 {
            let t = tile(32, seed);
            let x = q.quantise_input(&t.data, 32, 32);
            // And a non-square window of it (24 × 16).
            let crop: Vec<f32> = (0..24 * 16)
                .map(|k| t.data[(k / 16) * 32 + k % 16])
                .collect();
            let xc = q.quantise_input(&crop, 24, 16);
            let zc = q.encode(xc.clone(), Path::Scalar);
            assert_eq!(zc, q.encode(xc, Path::Fast));
            assert_eq!(q.decode(&zc, Path::Scalar), q.decode(&zc, Path::Fast));
            let za = q.encode(x.clone(), Path::Scalar);
            let zb = q.encode(x, Path::Fast);
            assert_eq!(za, zb);
            assert_eq!(q.decode(&za, Path::Scalar), q.decode(&za, Path::Fast));
        }
        for l in q.encoder.iter().chain(&q.decoder).chain(&q.var_decoder) {
            assert!(l
                .mult
                .iter()
                .all(|&m| m == 0 || (1 << 29..1 << 30).contains(&m)));
            assert!(l.weight.iter().all(|&w| w != i8::MIN));
        }
    }

    #[test]
    fn the_shuffle_net_runs_the_same_on_both_paths_and_follows_its_float_net() {
        let f = FloatNet::from_safetensors(
            include_bytes!("../models/float/fast.safetensors"),
            NetShape {
                width: 16,
                stages: vec![16, 16, 16],
                latent: 4,
                shuffle: true,
            },
        )
        .unwrap();
        let calib: Vec<Map<f32>> = (0..3).map(|s| tile(32, s)).collect();
        let q = IntNet::calibrate(&f, &calib).unwrap();
        assert!(q.shuffle);
        assert_eq!(q.divisor(), 8);
        let t = tile(32, 21);
        let x = q.quantise_input(&t.data, 32, 32);
        let z = q.encode(x.clone(), Path::Scalar);
        assert_eq!(z, q.encode(x, Path::Fast));
        assert_eq!((z.c, z.h, z.w), (4, 4, 4));
        let (mu, v) = q.decode(&z, Path::Scalar);
        assert_eq!((mu.clone(), v.clone()), q.decode(&z, Path::Fast));
        assert_eq!(mu.len(), 32 * 32);
        // Against the float net on the same rounded latent.
        let zf = Map {
            c: z.c,
            h: z.h,
            w: z.w,
            data: z.data.iter().map(|&v| v as f32).collect(),
        };
        let (mf, _) = f.decode(&zf);
        let err = mu
            .iter()
            .zip(&mf.data)
            .map(|(a, &b)| (a - b as f64).abs())
            .fold(0f64, f64::max);
        assert!(err < 0.05, "max |Δμ| {err}");
        // The blocks: space-to-depth and back is the identity.
        let m = Map {
            c: 1,
            h: 4,
            w: 6,
            data: (0..24).collect::<Vec<i32>>(),
        };
        let b = space_to_depth(&m);
        assert_eq!(b.data[(2 * 2 + 1) * 3 + 2], 3 * 6 + 4);
        assert_eq!(depth_to_space(&b), m);
    }

    #[test]
    fn interleave_and_deinterleave_move_every_value() {
        let mut r = xorshift(5);
        for len in 0usize..70 {
            let x: Vec<i16> = (0..len).map(|_| r() as i16).collect();
            let half = len.div_ceil(2);
            let (mut a, mut b) = (vec![7i16; half], vec![7i16; half]);
            deinterleave(&x, &mut a, &mut b);
            for c in 0..half {
                assert_eq!(a[c], x[2 * c], "len {len}");
                assert_eq!(b[c], x.get(2 * c + 1).copied().unwrap_or(0), "len {len}");
            }
            let mut y = vec![7i16; 2 * half];
            interleave(&a, &b, &mut y);
            assert_eq!(&y[..len], &x[..], "len {len}");
        }
        let ext = [i16::MIN, i16::MAX, -1, 0, 1, i16::MIN + 1];
        let x: Vec<i16> = (0..48).map(|k| ext[k % ext.len()]).collect();
        let (mut a, mut b) = (vec![0i16; 24], vec![0i16; 24]);
        deinterleave(&x, &mut a, &mut b);
        let mut y = vec![0i16; 48];
        interleave(&a, &b, &mut y);
        assert_eq!(x, y);
    }

    #[test]
    fn the_kernels_agree_on_random_terms() {
        // The portable kernel (what Nehalem runs) against this CPU's, on extreme values, with
        // both output layouts (a plain map, and every second column as a transposed conv's).
        let mut rnd = xorshift(99);
        for (n_terms, cout, rows, cols) in [
            (9, 16, 5, 37),
            (7, 1, 3, 16),
            (64, 6, 2, 5),
            (18, 8, 3, 70),
            (11, 3, 2, 150),
        ] {
            let step = cols + 3;
            let src: Vec<i16> = (0..n_terms * 4 + rows * step + SLACK + 64)
                .map(|_| match rnd() % 4 {
                    0 => i16::MIN,
                    1 => i16::MAX,
                    _ => rnd() as i16,
                })
                .collect();
            let terms: Vec<(usize, usize)> = (0..n_terms).map(|k| (k * 4, k)).collect();
            let wts: Vec<i16> = (0..n_terms * cout)
                .map(|_| (rnd() % 255) as i16 - 127)
                .collect();
            let t = Terms::new(&terms, cout, |o, k| wts[k * cout + o]);
            let bias: Vec<i32> = (0..cout).map(|_| (rnd() % (1 << 20)) as i32).collect();
            // Shift 0 with multiplier 1 keeps the sums where they fit in i16, so the sums
            // themselves can be checked; the other shifts exercise the requantisation, and one
            // above 61 its scalar form.
            for (k, &shift) in [0u32, 9, 17, 62].iter().enumerate() {
                let mult: Vec<i32> = (0..cout)
                    .map(|_| {
                        if shift == 0 {
                            1
                        } else {
                            (1 << 29) + (rnd() % (1 << 29)) as i32
                        }
                    })
                    .collect();
                let rq = Requant {
                    mult: &mult,
                    shift: &vec![shift; cout],
                    relu: k % 2 == 1,
                };
                for col in [1, 2] {
                    let l = Layout {
                        plane: rows * (cols * col + 1) + 3,
                        row: cols * col + 1,
                        col,
                        off: col - 1,
                    };
                    let mut a = vec![0i16; cout * l.plane];
                    let job = Job {
                        t: &t,
                        src: &src,
                        step,
                        rows,
                        cols,
                        bias: &bias,
                        rq,
                        l,
                    };
                    run_terms_base(&job, &mut a);
                    for (ki, kernel) in kernels().into_iter().enumerate() {
                        let mut b = vec![0i16; cout * l.plane];
                        kernel(&job, &mut b);
                        assert_eq!(
                            a, b,
                            "kernel {ki}: {n_terms} terms, {cout} outputs, shift {shift}"
                        );
                    }
                    let mut b = vec![0i16; cout * l.plane];
                    t.run(&src, step, rows, cols, &bias, rq, &mut b, l);
                    assert_eq!(a, b);
                    if shift != 0 {
                        continue;
                    }
                    // The sums themselves, written out (clamped to i16).
                    for o in 0..cout {
                        let want: i64 = bias[o] as i64
                            + (0..n_terms)
                                .map(|k| wts[k * cout + o] as i64 * src[k * 4 + step + 2] as i64)
                                .sum::<i64>();
                        let got = a[o * l.plane + l.row + 2 * col + l.off];
                        assert_eq!(got as i64, want.clamp(-32768, 32767));
                    }
                }
            }
        }
    }

    #[test]
    fn the_requantisations_agree() {
        let mut rnd = xorshift(7);
        let acc: Vec<i32> = (0..203)
            .map(|k| match k % 5 {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => (rnd() % 2000) as i32 - 1000,
                _ => rnd() as i32,
            })
            .collect();
        for shift in [0u32, 1, 17, 29, 40, 61, 62] {
            for relu in [false, true] {
                let m = (1 << 29) + (rnd() % (1 << 29)) as i32;
                let mut a = vec![0i16; acc.len()];
                let mut b = vec![0i16; acc.len()];
                requant_row_base(&acc, m, shift, relu, &mut a);
                requant_row()(&acc, m, shift, relu, &mut b);
                assert_eq!(a, b, "shift {shift}");
                let l = IntLayer {
                    kind: Kind::Conv { stride: 1 },
                    cin: 1,
                    cout: 1,
                    weight: vec![0; 9],
                    bias: vec![0],
                    mult: vec![m],
                    shift: vec![shift],
                    relu,
                    in_frac: 0,
                    out_frac: 0,
                };
                let want: Vec<i16> = acc.iter().map(|&x| l.requant(0, x)).collect();
                assert_eq!(a, want);
            }
        }
    }

    #[test]
    fn the_integer_net_follows_the_float_net() {
        let f = bundled();
        let calib: Vec<Map<f32>> = (0..4).map(|s| tile(32, s)).collect();
        let q = IntNet::calibrate(&f, &calib).unwrap();
        let t = tile(32, 99);
        let zf = f.encode(&t);
        let zi = q.encode(q.quantise_input(&t.data, 32, 32), Path::Fast);
        // The rounded latents agree but for values near a rounding boundary.
        let same = zf
            .data
            .iter()
            .zip(&zi.data)
            .filter(|(a, b)| a.round() as i64 == **b)
            .count();
        assert!(
            same as f64 >= 0.9 * zi.data.len() as f64,
            "{same} of {}",
            zi.data.len()
        );
        // From the same latent, μ is close to the float decoder's.
        let zr = Map {
            c: zi.c,
            h: zi.h,
            w: zi.w,
            data: zi.data.iter().map(|&v| v as f32).collect(),
        };
        let (mf, _) = f.decode(&zr);
        let (mi, _) = q.decode(&zi, Path::Fast);
        let err = mf
            .data
            .iter()
            .zip(&mi)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0f64, f64::max);
        let spread = mf.data.iter().fold(0f64, |a, &v| a.max(v.abs() as f64));
        assert!(err < 0.02 * spread.max(1.0), "max |Δμ| {err} of {spread}");
    }
}
