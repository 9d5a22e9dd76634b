//! Float pixels in the integers the tile coder codes, two ways.
//!
//! - **Quantised** (fpack's default): q = round((x − zero)/δ + dither) with step δ = σ/q and
//!   subtractive dither, restored as (q − dither + ½)·δ + zero, so |error| ≤ δ/2. "Lossless" for
//!   floats means this, at the same q as fpack.
//! - **Exact**: the IEEE bit patterns, mapped to integers in the order of their values
//!   ([`ordered`]), coded losslessly: every value comes back bit for bit, −0.0, infinities and
//!   NaN payloads included. Used for every tile with `q = 0` (fpack's `-q 0`), and, as fpack
//!   does, for tiles whose noise is zero (constant or near-constant) or that hold values the
//!   quantiser cannot represent.
//!
//! An exact tile's row starts with one byte saying how it was coded; the encoder tries each and
//! keeps the smallest: 1 = the tile coder on the ordered bit patterns (then the tile's offset, its
//! NaN payloads, then a tile of [`crate::tile`]) — good where values vary smoothly within a
//! binade; 3 = byte planes (each byte of the bit patterns, optionally XORed with the left
//! neighbour's, under its own per-tile histogram, as GZIP_2's byte shuffle) — good for noise
//! that crosses zero, where ordered patterns jump by 2^31; 2 = raw little-endian bit patterns,
//! so no tile ever costs more than its raw bits and a few bytes.

use crate::entropy::{Corrupt, IntTable, Reader, Writer};
use crate::predict::Predictor;
use crate::tile::{self, Settings};

/// Quantised values farther than this from the zero point are not quantised (2^52 steps).
pub const QUANT_LIMIT: f64 = (1u64 << 52) as f64;

/// The range of the integers a quantised float tile holds.
pub const QUANT_RANGE: (i64, i64) = (-(1i64 << 52), 1i64 << 52);

/// The range of an exact tile's integers (ordered bit pattern − the tile's offset).
const EXACT_RANGE: (i64, i64) = (-(1i64 << 62), 1i64 << 62);

/// fpack-style quantisation of one HDU's floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantiser {
    pub zero: f64,
    pub delta: f64,
    pub seed: u64,
}

/// The dither offset in [0, 1) of pixel `i` (SplitMix64 of seed and index).
pub fn dither(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Quantiser {
    /// The integer of finite `x` at pixel index `i`, or None when it is too far from the zero
    /// point (or not finite) to be quantised.
    pub fn quantise(&self, x: f64, i: u64) -> Option<i64> {
        let t = ((x - self.zero) / self.delta + dither(self.seed, i)).floor();
        (t.abs() <= QUANT_LIMIT).then_some(t as i64)
    }

    /// The value integer `q` at pixel index `i` stands for.
    pub fn restore(&self, q: i64, i: u64) -> f64 {
        (q as f64 - dither(self.seed, i) + 0.5) * self.delta + self.zero
    }
}

/// Bits of a float type: 32 or 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    F32,
    F64,
}

impl Width {
    pub fn of_bitpix(bitpix: i32) -> Option<Width> {
        match bitpix {
            -32 => Some(Width::F32),
            -64 => Some(Width::F64),
            _ => None,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Width::F32 => 4,
            Width::F64 => 8,
        }
    }

    /// True for any NaN bit pattern.
    pub fn is_nan(self, bits: u64) -> bool {
        match self {
            Width::F32 => f32::from_bits(bits as u32).is_nan(),
            Width::F64 => f64::from_bits(bits).is_nan(),
        }
    }

    /// The value of a bit pattern, widened to f64 (NaN payloads are not kept by this).
    pub fn value(self, bits: u64) -> f64 {
        match self {
            Width::F32 => f32::from_bits(bits as u32) as f64,
            Width::F64 => f64::from_bits(bits),
        }
    }

    /// The bit pattern of a value rounded to this width.
    pub fn bits(self, v: f64) -> u64 {
        match self {
            Width::F32 => (v as f32).to_bits() as u64,
            Width::F64 => v.to_bits(),
        }
    }

    /// The NaN that blanks decode to when no other payload was recorded.
    fn canonical_nan(self) -> u64 {
        match self {
            Width::F32 => 0x7fc0_0000,
            Width::F64 => 0x7ff8_0000_0000_0000,
        }
    }
}

/// A bit pattern as an integer in the order of the values: +0.0 → 0, positives upwards,
/// −0.0 → −1, negatives downwards (i128: a 64-bit pattern's order does not fit i64).
pub fn ordered(bits: u64, w: Width) -> i128 {
    let (sign, mag) = match w {
        Width::F32 => (bits >> 31 & 1, bits & 0x7fff_ffff),
        Width::F64 => (bits >> 63, bits & 0x7fff_ffff_ffff_ffff),
    };
    if sign == 0 {
        mag as i128
    } else {
        -(mag as i128) - 1
    }
}

/// The inverse of [`ordered`].
pub fn from_ordered(o: i128, w: Width) -> u64 {
    let sign_bit = match w {
        Width::F32 => 1u64 << 31,
        Width::F64 => 1u64 << 63,
    };
    if o >= 0 {
        o as u64
    } else {
        sign_bit | (-(o + 1)) as u64
    }
}

/// An exact tile: the row bytes and the entropy model's estimate of their bits.
pub struct ExactTile {
    pub bytes: Vec<u8>,
    pub est_bits: f64,
}

fn lower_median(mut v: Vec<i128>) -> i128 {
    if v.is_empty() {
        return 0;
    }
    let k = (v.len() - 1) / 2;
    *v.select_nth_unstable(k).1
}

/// Codes the bit patterns of a `w`×`h` tile exactly.
pub fn encode_exact(
    p: &Predictor,
    bits: &[u64],
    width: Width,
    w: usize,
    h: usize,
    eta: Option<usize>,
) -> ExactTile {
    let blank: Vec<bool> = bits.iter().map(|&b| width.is_nan(b)).collect();
    let ord: Vec<i128> = bits.iter().map(|&b| ordered(b, width)).collect();
    let offset = lower_median(
        ord.iter()
            .zip(&blank)
            .filter(|(_, &b)| !b)
            .map(|(&o, _)| o)
            .collect(),
    );
    let shifted: Option<Vec<i64>> = ord
        .iter()
        .zip(&blank)
        .map(|(&o, &b)| {
            let d = if b { 0 } else { o - offset };
            (EXACT_RANGE.0 as i128..=EXACT_RANGE.1 as i128)
                .contains(&d)
                .then_some(d as i64)
        })
        .collect();
    let mut raw = vec![2u8];
    for &b in bits {
        raw.extend_from_slice(&b.to_le_bytes()[..width.bytes()]);
    }
    let mut best = ExactTile {
        est_bits: 8.0 * raw.len() as f64,
        bytes: raw,
    };
    for xor in [false, true] {
        let p = encode_planes(bits, width, xor);
        if p.bytes.len() < best.bytes.len() {
            best = p;
        }
    }
    let Some(v) = shifted else {
        return best;
    };
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&(offset as i64).to_le_bytes());
    let payloads: Vec<(u32, u64)> = bits
        .iter()
        .enumerate()
        .filter(|(_, &b)| width.is_nan(b) && b != width.canonical_nan())
        .map(|(i, &b)| (i as u32, b))
        .collect();
    bytes.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for (i, b) in &payloads {
        bytes.extend_from_slice(&i.to_le_bytes());
        bytes.extend_from_slice(&b.to_le_bytes()[..width.bytes()]);
    }
    let s = Settings {
        e: 0,
        lo: EXACT_RANGE.0,
        hi: EXACT_RANGE.1,
        eta,
        rdo: None,
    };
    let t = tile::encode(p, &v, &blank, w, h, &s);
    let est_bits = 8.0 * bytes.len() as f64 + t.est_bits;
    bytes.extend(t.bytes);
    if bytes.len() < best.bytes.len() {
        best = ExactTile { bytes, est_bits };
    }
    best
}

/// Most a symbol's transmitted frequency can be (12 bits).
const FREQ_MAX: u64 = 4095;

/// Kind 3: every byte plane of the bit patterns (XORed with the left neighbour's pattern first,
/// with `xor`) under a histogram of that plane sent with the tile.
fn encode_planes(bits: &[u64], width: Width, xor: bool) -> ExactTile {
    let vals: Vec<u64> = (0..bits.len())
        .map(|i| {
            if xor && i > 0 {
                bits[i] ^ bits[i - 1]
            } else {
                bits[i]
            }
        })
        .collect();
    let mut w = Writer::default();
    w.put_bits(xor as u64, 1);
    for plane in 0..width.bytes() {
        let bytes: Vec<u8> = vals.iter().map(|v| (v >> (8 * plane)) as u8).collect();
        let mut hist = [0u64; 256];
        bytes.iter().for_each(|&b| hist[b as usize] += 1);
        let most = hist.iter().copied().max().unwrap_or(1).max(1);
        let freq: Vec<u64> = hist
            .iter()
            .map(|&c| (c * FREQ_MAX).div_ceil(most))
            .collect();
        for &f in &freq {
            w.put_bits((f > 0) as u64, 1);
        }
        for &f in freq.iter().filter(|&&f| f > 0) {
            w.put_bits(f, 12);
        }
        let table = plane_table(&freq);
        bytes.iter().for_each(|&b| w.put_int(&table, b as i64));
    }
    let est_bits = 8.0 + w.est_bits;
    // Kind 4: the planes with their uniform bits apart (format 4); kind 3 is format 3's.
    let mut out = vec![4u8];
    out.extend(w.finish());
    ExactTile {
        bytes: out,
        est_bits,
    }
}

/// The categorical table of a byte plane from its transmitted frequencies.
fn plane_table(freq: &[u64]) -> IntTable {
    let total: u64 = freq.iter().sum::<u64>().max(1);
    let p: Vec<f64> = freq.iter().map(|&f| f as f64 / total as f64).collect();
    IntTable::new(0, &p, 0.0)
}

fn decode_planes(body: &[u8], width: Width, n: usize, split: bool) -> Result<Vec<u64>, Corrupt> {
    let mut r = Reader::new(body, split)?;
    let xor = r.get_bits(1)? == 1;
    let mut vals = vec![0u64; n];
    for plane in 0..width.bytes() {
        let mut freq = vec![0u64; 256];
        let present: Vec<bool> = (0..256)
            .map(|_| r.get_bits(1).map(|b| b == 1))
            .collect::<Result<_, _>>()?;
        for (f, &p) in freq.iter_mut().zip(&present) {
            if p {
                *f = r.get_bits(12)?;
                if *f == 0 {
                    return Err(Corrupt("a byte plane's symbol has frequency 0".into()));
                }
            }
        }
        let table = plane_table(&freq);
        for v in vals.iter_mut() {
            let b = r.get_int(&table)?;
            if !(0..256).contains(&b) {
                return Err(Corrupt(format!("byte {b} in a byte plane")));
            }
            *v |= (b as u64) << (8 * plane);
        }
    }
    if xor {
        for i in 1..n {
            vals[i] ^= vals[i - 1];
        }
    }
    Ok(vals)
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Corrupt> {
    if b.len() < n {
        return Err(Corrupt("exact tile ends early".into()));
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn le(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(a)
}

/// Decodes a tile written by [`encode_exact`] into its bit patterns.
pub fn decode_exact(
    p: &Predictor,
    bytes: &[u8],
    width: Width,
    w: usize,
    h: usize,
    eta: Option<usize>,
) -> Result<Vec<u64>, Corrupt> {
    let n = w * h;
    let nb = width.bytes();
    let mut b = bytes;
    match take(&mut b, 1)?[0] {
        2 => {
            if b.len() != n * nb {
                return Err(Corrupt(format!(
                    "raw exact tile of {} bytes, {} expected",
                    b.len(),
                    n * nb
                )));
            }
            Ok(b.chunks_exact(nb).map(le).collect())
        }
        1 => {
            let offset = le(take(&mut b, 8)?) as i64 as i128;
            let count = le(take(&mut b, 4)?) as usize;
            if count > n {
                return Err(Corrupt(format!("{count} NaN payloads in a tile of {n}")));
            }
            let mut payloads = Vec::with_capacity(count);
            for _ in 0..count {
                let i = le(take(&mut b, 4)?) as usize;
                let bits = le(take(&mut b, nb)?);
                if i >= n || !width.is_nan(bits) {
                    return Err(Corrupt(format!("bad NaN payload at pixel {i}")));
                }
                payloads.push((i, bits));
            }
            let s = Settings {
                e: 0,
                lo: EXACT_RANGE.0,
                hi: EXACT_RANGE.1,
                eta,
                rdo: None,
            };
            let (v, blank) = tile::decode(p, b, w, h, &s)?;
            let mut out: Vec<u64> = v
                .iter()
                .zip(&blank)
                .map(|(&x, &bl)| {
                    if bl {
                        width.canonical_nan()
                    } else {
                        from_ordered(x as i128 + offset, width)
                    }
                })
                .collect();
            for (i, bits) in payloads {
                if !blank[i] {
                    return Err(Corrupt(format!("NaN payload for non-blank pixel {i}")));
                }
                out[i] = bits;
            }
            if out
                .iter()
                .zip(&blank)
                .any(|(&x, &bl)| !bl && width.is_nan(x))
            {
                return Err(Corrupt("a decoded value is a NaN outside the mask".into()));
            }
            Ok(out)
        }
        3 => decode_planes(b, width, n, false),
        4 => decode_planes(b, width, n, true),
        k => Err(Corrupt(format!("exact tile kind {k}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_is_monotone_and_invertible() {
        let vals32 = [
            f32::NEG_INFINITY,
            -3.5,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            f32::MIN_POSITIVE,
            1.0,
            7.5,
            f32::MAX,
            f32::INFINITY,
        ];
        let o: Vec<i128> = vals32
            .iter()
            .map(|v| ordered(v.to_bits() as u64, Width::F32))
            .collect();
        assert!(o.windows(2).all(|w| w[0] < w[1]), "{o:?}");
        for v in vals32 {
            let b = v.to_bits() as u64;
            assert_eq!(from_ordered(ordered(b, Width::F32), Width::F32), b);
        }
        for v in [f64::MIN, -1e-300, -0.0, 0.0, 1e-300, 2.0, f64::MAX] {
            let b = v.to_bits();
            assert_eq!(from_ordered(ordered(b, Width::F64), Width::F64), b);
        }
        assert!(ordered((-0.0f64).to_bits(), Width::F64) < ordered(0.0f64.to_bits(), Width::F64));
    }

    #[test]
    fn byte_planes_round_trip_noise_across_zero() {
        // Noise around 0 (the SDSS sky in nanomaggies): ordered patterns jump by 2^31 at each
        // sign change, byte planes do not care.
        let mut x: u64 = 9;
        let bits: Vec<u64> = (0..4096)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((x >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32 * 0.02).to_bits() as u64
            })
            .collect();
        for xor in [false, true] {
            let t = encode_planes(&bits, Width::F32, xor);
            assert!(t.bytes.len() < 4 * bits.len(), "{} bytes", t.bytes.len());
            assert_eq!(
                decode_planes(&t.bytes[1..], Width::F32, bits.len(), true).unwrap(),
                bits
            );
        }
    }

    #[test]
    fn quantiser_restores_within_half_a_step() {
        let q = Quantiser {
            zero: 10.0,
            delta: 0.25,
            seed: 1,
        };
        for i in 0..1000u64 {
            let x = 10.0 + (i as f64 * 0.37).sin() * 30.0;
            let back = q.restore(q.quantise(x, i).unwrap(), i);
            assert!((back - x).abs() <= 0.125 + 1e-12);
        }
        assert_eq!(q.quantise(1e300, 0), None);
    }
}
