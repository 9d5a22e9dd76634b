//! Residual coding: integers under a discretised Laplace of a scale snapped to a fixed table,
//! coded with constriction's range coder.
//!
//! A value r with scale index s is split as r = q·2^k + low (k from s, so that the Laplace scale
//! of q is between 4 and 8): q goes through a categorical table of the discretised Laplace
//! (|q| ≤ Q, plus an escape symbol for the far tails), `low` as k uniform bits, an escaped r as
//! 64 uniform bits. Since format 4 the uniform bits go into a plain bit stream after the range
//! coder's words (format 3 coded them through the range coder: still read). Tables are built once from [`crate::detmath`], so every machine builds the same
//! integers (the tables decide the bitstream; see the crate docs for what else must agree).

use crate::detmath;
use constriction::stream::model::{DecoderModel, EncoderModel, EntropyModel};
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};
use std::num::NonZeroU32;
use std::sync::OnceLock;

/// Number of scales: b(s) = 2^(s/4 − 2), from 0.25 to 2^22.75 ≈ 7·10^6 (data units).
pub const SCALES: usize = 100;
const PRECISION: u32 = 24;
/// Bits per uniform chunk.
const CHUNK: u32 = 12;

/// A categorical model over symbols 0…n−1 with fixed-point frequencies (summing to
/// 2^PRECISION, none zero): constriction's contiguous categorical model (the same cumulative
/// table, so the same bitstream), with a lookup of the decoded symbol's neighbourhood by the
/// quantile's top bits instead of a binary search over the table.
struct Categorical {
    /// cdf[s] = Σ_{j<s} f_j, then 2^PRECISION.
    cdf: Vec<u32>,
    /// For each of the 2^LUT_BITS quantile buckets, the symbol of the bucket's first quantile.
    lut: Vec<u16>,
}

const LUT_BITS: u32 = 10;

impl Categorical {
    fn new(f: &[u32]) -> Categorical {
        assert!(f.len() < u16::MAX as usize && f.iter().all(|&v| v > 0));
        let mut cdf = Vec::with_capacity(f.len() + 1);
        let mut acc = 0u64;
        for &v in f {
            cdf.push(acc as u32);
            acc += v as u64;
        }
        assert_eq!(acc, 1 << PRECISION, "frequencies sum to 2^{PRECISION}");
        cdf.push(acc as u32);
        let mut lut = Vec::with_capacity(1 << LUT_BITS);
        let mut sym = 0usize;
        for b in 0..1u32 << LUT_BITS {
            let q = b << (PRECISION - LUT_BITS);
            while cdf[sym + 1] <= q {
                sym += 1;
            }
            lut.push(sym as u16);
        }
        Categorical { cdf, lut }
    }
}

impl EntropyModel<24> for Categorical {
    type Symbol = usize;
    type Probability = u32;
}

impl EncoderModel<24> for Categorical {
    #[inline]
    fn left_cumulative_and_probability(
        &self,
        symbol: impl std::borrow::Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let s = *symbol.borrow();
        let (&l, &r) = (self.cdf.get(s)?, self.cdf.get(s + 1)?);
        Some((l, NonZeroU32::new(r - l)?))
    }
}

impl DecoderModel<24> for Categorical {
    #[inline]
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        // The unique s with cdf[s] ≤ quantile < cdf[s + 1]: from the bucket's first symbol up.
        let mut s = self.lut[(quantile >> (PRECISION - LUT_BITS)) as usize] as usize;
        while self.cdf[s + 1] <= quantile {
            s += 1;
        }
        let (l, r) = (self.cdf[s], self.cdf[s + 1]);
        (
            s,
            l,
            NonZeroU32::new(r - l).expect("frequencies are non-zero"),
        )
    }
}

/// Equal probabilities over 2^bits symbols: constriction's uniform model at that size (the
/// same intervals: 2^(PRECISION − bits) each), without its divisions.
#[derive(Clone, Copy)]
struct Pow2 {
    bits: u32,
}

impl EntropyModel<24> for Pow2 {
    type Symbol = usize;
    type Probability = u32;
}

impl EncoderModel<24> for Pow2 {
    #[inline]
    fn left_cumulative_and_probability(
        &self,
        symbol: impl std::borrow::Borrow<usize>,
    ) -> Option<(u32, NonZeroU32)> {
        let s = *symbol.borrow();
        (s < 1 << self.bits).then(|| {
            let w = PRECISION - self.bits;
            ((s as u32) << w, NonZeroU32::new(1 << w).expect("non-zero"))
        })
    }
}

impl DecoderModel<24> for Pow2 {
    #[inline]
    fn quantile_function(&self, quantile: u32) -> (usize, u32, NonZeroU32) {
        let w = PRECISION - self.bits;
        let s = quantile >> w;
        (
            s as usize,
            s << w,
            NonZeroU32::new(1 << w).expect("non-zero"),
        )
    }
}

/// 2^(j/4) for j = 0…3, as literals (the table must not depend on libm).
const QUARTER_POW2: [f64; 4] = [
    1.0,
    1.189_207_115_002_721,
    std::f64::consts::SQRT_2,
    1.681_792_830_507_429,
];

/// The Laplace scale b of index s: 2^(s/4 − 2), built from its exponent bits (exact, and
/// without libm).
const fn scale_of(s: usize) -> f64 {
    let e = (s / 4) as i64 - 2;
    QUARTER_POW2[s % 4] * f64::from_bits(((1023 + e) as u64) << 52)
}

/// Every scale, and 2^(1/8) above each (the geometric midpoint to the next: [`snap`]'s
/// thresholds), evaluated at compile time (IEEE products, the same as at run time).
const SCALE_TABLE: [f64; SCALES] = {
    let mut t = [0.0; SCALES];
    let mut s = 0;
    while s < SCALES {
        t[s] = scale_of(s);
        s += 1;
    }
    t
};
const THRESHOLDS: [f64; SCALES + 4] = {
    let mut t = [f64::INFINITY; SCALES + 4];
    let mut s = 0;
    while s < SCALES {
        t[s] = scale_of(s) * MID;
        s += 1;
    }
    t
};

/// The Laplace scale b of index s.
#[inline]
pub fn scale(s: usize) -> f64 {
    SCALE_TABLE[s]
}

/// The index whose scale is nearest to `b` (geometrically), by comparisons only: the same
/// float always gives the same index. NaN and b ≤ 0 map to 0.
#[inline]
pub fn snap(b: f64) -> usize {
    if b.is_nan() || b <= SCALE_TABLE[0] {
        return 0;
    }
    // The first index whose threshold is ≥ b. With 2^e ≤ b < 2^(e+1), every index below
    // 4(e + 2) − 1 has a threshold below 2^e, so the search starts there: a few comparisons,
    // the same answer as a binary search over all of them.
    if b >= SCALE_TABLE[SCALES - 1] {
        return SCALES - 1;
    }
    // The answer is at most 5 above the start (2^(e+1)·2^(1/8), the threshold 5 above, is
    // > b), so the thresholds passed are counted without branches (those past the table are
    // infinite).
    let e = ((b.to_bits() >> 52) & 0x7ff) as i64 - 1023;
    let m = (4 * (e + 2) - 1).clamp(0, SCALES as i64 - 1) as usize;
    let t = &THRESHOLDS[m..m + 5];
    let passed = t.iter().map(|&x| (b > x) as usize).sum::<usize>();
    (m + passed).min(SCALES - 1)
}

/// Thresholds: 2^(1/8) above each scale.
const MID: f64 = 1.090_507_732_665_257_7;

/// [`snap`] by binary search (its definition; the tests hold the fast form to it).
#[cfg(test)]
fn snap_search(b: f64) -> usize {
    if b.is_nan() || b <= scale(0) {
        return 0;
    }
    let (mut lo, mut hi) = (0usize, SCALES - 1);
    while lo < hi {
        let m = (lo + hi) / 2;
        if b > scale_of(m) * MID {
            lo = m + 1;
        } else {
            hi = m;
        }
    }
    lo
}

fn shift(s: usize) -> u32 {
    ((s / 4) as i32 - 4).max(0) as u32
}

struct Table {
    k: u32,
    q: i64,
    model: Categorical,
    /// −log2 of each symbol's probability (for estimated bits).
    cost: Vec<f64>,
    /// What coding a value through each symbol costs in all, the raw bits included (k low
    /// bits, or the escape's 64), in fixed point ([`COST_ONE`] a bit): [`cost_fx`]'s sums are
    /// exact integers, the same in any order on any machine.
    cost_fx: Vec<u64>,
}

/// One bit in [`cost_fx`]'s fixed point.
pub const COST_ONE: u64 = 1 << 16;

/// Bits (as [`IntTable::cost`] gives them) in [`cost_fx`]'s fixed point.
pub fn fixed(bits: f64) -> u64 {
    (bits * COST_ONE as f64).round() as u64
}

fn laplace_mass(a: f64, c: f64, b: f64) -> f64 {
    if a >= 0.0 {
        0.5 * (detmath::exp(-a / b) - detmath::exp(-c / b))
    } else if c <= 0.0 {
        0.5 * (detmath::exp(c / b) - detmath::exp(a / b))
    } else {
        1.0 - 0.5 * detmath::exp(a / b) - 0.5 * detmath::exp(-c / b)
    }
}

fn build(s: usize) -> Table {
    let b = scale(s);
    let k = shift(s);
    let w = (1u64 << k) as f64;
    let bq = b / w;
    let q = (bq * 16.0).ceil() as i64 + 2;
    let mut p: Vec<f64> = (-q..=q)
        .map(|j| laplace_mass(j as f64 * w - 0.5, (j + 1) as f64 * w - 0.5, b))
        .collect();
    let lo = -q as f64 * w - 0.5;
    let hi = (q + 1) as f64 * w - 0.5;
    p.push(0.5 * detmath::exp(lo / b) + 0.5 * detmath::exp(-hi / b));
    let (model, cost) = quantise(&p);
    let n = cost.len();
    let cost_fx = cost
        .iter()
        .enumerate()
        .map(|(j, &c)| fixed(c) + if j + 1 < n { k as u64 } else { 64 } * COST_ONE)
        .collect();
    Table {
        k,
        q,
        model,
        cost,
        cost_fx,
    }
}

/// Integer frequencies summing to 2^PRECISION, none zero, from probabilities summing to ~1
/// (the largest absorbs the difference).
fn frequencies(p: &[f64]) -> Vec<u32> {
    let total = (1u64 << PRECISION) as f64;
    let n = p.len() as f64;
    let mut f: Vec<u32> = p
        .iter()
        .map(|&x| ((x * (total - n)).floor() as u32).max(1))
        .collect();
    let sum: i64 = f.iter().map(|&v| v as i64).sum();
    let diff = (1i64 << PRECISION) - sum;
    let (imax, _) = f
        .iter()
        .enumerate()
        .max_by_key(|(_, v)| **v)
        .expect("non-empty");
    f[imax] = (f[imax] as i64 + diff) as u32;
    f
}

/// The categorical model of frequencies summing to 2^PRECISION (none zero), and −log2 of each
/// symbol's probability.
fn model_of(f: &[u32]) -> (Categorical, Vec<f64>) {
    let total = (1u64 << PRECISION) as f64;
    // −log2 p through detmath (not libm), so that the encoder's choices, made on these
    // costs, are the same on every machine.
    let cost = f
        .iter()
        .map(|&v| -detmath::ln(v as f64 / total) * std::f64::consts::LOG2_E)
        .collect();
    (Categorical::new(f), cost)
}

fn quantise(p: &[f64]) -> (Categorical, Vec<f64>) {
    model_of(&frequencies(p))
}

/// The Laplace scale index that codes the values an [`IntTable`] escapes.
const ESCAPE_SCALE: usize = 24;

/// A categorical model of the integers `lo ..= lo + n − 1`, with an escape symbol for every
/// other integer (which then goes under a wide Laplace). Built from probabilities computed with
/// [`crate::detmath`], so every machine builds the same one.
pub struct IntTable {
    lo: i64,
    n: usize,
    /// The integer frequencies of `lo ..= lo + n − 1` and of the escape (last), summing to
    /// 2^24: what decides the bitstream.
    freq: Vec<u32>,
    model: Categorical,
    cost: Vec<f64>,
}

impl IntTable {
    /// `p[i]` is the probability of `lo + i`; `escape` that of all the others together.
    pub fn new(lo: i64, p: &[f64], escape: f64) -> IntTable {
        let mut all = p.to_vec();
        all.push(escape);
        let norm: f64 = all.iter().sum();
        all.iter_mut().for_each(|x| *x /= norm);
        let freq = frequencies(&all);
        let (model, cost) = model_of(&freq);
        IntTable {
            lo,
            n: p.len(),
            freq,
            model,
            cost,
        }
    }

    /// A table from its integer frequencies (`lo ..= lo + freq.len() − 2`, then the escape),
    /// as [`IntTable::frequencies`] gives them; they must be non-zero and sum to 2^24.
    pub fn from_frequencies(lo: i64, freq: Vec<u32>) -> Result<IntTable, String> {
        let sum: u64 = freq.iter().map(|&f| f as u64).sum();
        if freq.len() < 2 || freq.contains(&0) || sum != 1 << PRECISION {
            return Err(format!(
                "a table of {} frequencies summing to {sum} (must be ≥ 2, non-zero, sum 2^{PRECISION})",
                freq.len()
            ));
        }
        if lo.checked_add(freq.len() as i64).is_none() {
            return Err(format!("table start {lo}"));
        }
        let (model, cost) = model_of(&freq);
        Ok(IntTable {
            lo,
            n: freq.len() - 1,
            freq,
            model,
            cost,
        })
    }

    /// The first integer of the table.
    pub fn lo(&self) -> i64 {
        self.lo
    }

    /// The integer frequencies (the last is the escape's).
    pub fn frequencies(&self) -> &[u32] {
        &self.freq
    }

    /// −log2 of the probability of `v` (plus the escape's payload).
    pub fn cost(&self, v: i64) -> f64 {
        match self.index(v) {
            Some(i) => self.cost[i],
            None => self.cost[self.n] + cost(v, ESCAPE_SCALE),
        }
    }

    /// −log2 of the escape symbol's probability alone (without a payload).
    pub fn escape_cost(&self) -> f64 {
        self.cost[self.n]
    }

    fn index(&self, v: i64) -> Option<usize> {
        let i = v.checked_sub(self.lo)?;
        (0..self.n as i64).contains(&i).then_some(i as usize)
    }
}

fn tables() -> &'static [Table] {
    static T: OnceLock<Vec<Table>> = OnceLock::new();
    T.get_or_init(|| (0..SCALES).map(build).collect())
}

/// The table of scale index `s` (the largest for any index beyond).
#[inline]
fn table(s: usize) -> &'static Table {
    &tables()[s.min(SCALES - 1)]
}

impl Table {
    /// The symbol that codes `r`, and whether it is in the table (`r`'s k low bits follow it)
    /// or the escape (all 64 bits follow).
    #[inline]
    fn symbol(&self, r: i64) -> (usize, bool) {
        let q = r >> self.k; // floor division by 2^k
        if (-self.q..=self.q).contains(&q) {
            ((q + self.q) as usize, true)
        } else {
            ((2 * self.q + 1) as usize, false)
        }
    }
}

/// Uniform bits outside the range coder (format 4 on): packed least significant bit first into
/// little-endian bytes, in the order they are written.
#[derive(Clone, Default)]
struct RawWriter {
    bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl RawWriter {
    /// The `bits` (≤ 64) low bits of `v`.
    #[inline]
    fn put(&mut self, v: u64, bits: u32) {
        if bits == 0 {
            return;
        }
        let v = if bits == 64 {
            v
        } else {
            v & ((1u64 << bits) - 1)
        };
        let free = 64 - self.n;
        if bits < free {
            self.acc |= v << self.n;
            self.n += bits;
        } else {
            // Fills the accumulator: 8 bytes out, the rest of v starts the next one.
            let acc = self.acc | (v << self.n);
            self.bytes.extend_from_slice(&acc.to_le_bytes());
            let used = free;
            self.acc = if used == 64 { 0 } else { v >> used };
            self.n = bits - used;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let tail = self.n.div_ceil(8) as usize;
        self.bytes
            .extend_from_slice(&self.acc.to_le_bytes()[..tail]);
        self.bytes
    }
}

/// Reads what [`RawWriter`] wrote; past the end it fails, as the range decoder does.
struct RawReader {
    bytes: Vec<u8>,
    /// Next byte to load into `acc`.
    at: usize,
    acc: u64,
    /// Valid bits in `acc`.
    n: u32,
}

impl RawReader {
    fn new(bytes: &[u8]) -> RawReader {
        RawReader {
            bytes: bytes.to_vec(),
            at: 0,
            acc: 0,
            n: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        // Whole bytes while they fit (at least 57 valid bits after, or the stream's end).
        if self.at + 8 <= self.bytes.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.bytes[self.at..self.at + 8]);
            let word = u64::from_le_bytes(w);
            let take = (63 - self.n) / 8;
            self.acc |= (word & ((1u64 << (8 * take)) - 1)) << self.n;
            self.n += 8 * take;
            self.at += take as usize;
        } else {
            while self.n <= 56 && self.at < self.bytes.len() {
                self.acc |= (self.bytes[self.at] as u64) << self.n;
                self.n += 8;
                self.at += 1;
            }
        }
    }

    /// `bits` (≤ 32) bits.
    #[inline]
    fn get_small(&mut self, bits: u32) -> Result<u64, Corrupt> {
        if self.n < bits {
            self.refill();
            if self.n < bits {
                return Err(Corrupt(RAN_OUT.into()));
            }
        }
        let v = self.acc & ((1u64 << bits) - 1);
        self.acc >>= bits;
        self.n -= bits;
        Ok(v)
    }

    fn get(&mut self, bits: u32) -> Result<u64, Corrupt> {
        if bits <= 32 {
            return self.get_small(bits);
        }
        let lo = self.get_small(32)?;
        Ok(lo | (self.get_small(bits - 32)? << 32))
    }
}

/// A bitstream being written, with the estimated cost of what went in.
#[derive(Clone)]
pub struct Writer {
    enc: DefaultRangeEncoder,
    raw: RawWriter,
    /// Σ −log2 p over every symbol coded (the model's estimate of the size).
    pub est_bits: f64,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            enc: DefaultRangeEncoder::new(),
            raw: RawWriter::default(),
            est_bits: 0.0,
        }
    }
}

impl Writer {
    #[inline]
    fn uniform_bits(&mut self, v: u64, bits: u32) {
        self.raw.put(v, bits);
    }

    /// Codes `r` under the Laplace of scale index `s`.
    pub fn put(&mut self, r: i64, s: usize) {
        let t = table(s);
        let (sym, inside) = t.symbol(r);
        self.enc
            .encode_symbol(sym, &t.model)
            .expect("a symbol of the table");
        if inside {
            self.est_bits += t.cost[sym];
            if t.k > 0 {
                // r − ⌊r / 2^k⌋·2^k: the k low bits.
                self.uniform_bits((r & ((1 << t.k) - 1)) as u64, t.k);
                self.est_bits += t.k as f64;
            }
        } else {
            self.est_bits += t.cost[sym] + 64.0;
            let z = ((r << 1) ^ (r >> 63)) as u64;
            self.uniform_bits(z, 64);
        }
    }

    /// Codes `v` under a categorical table.
    pub fn put_int(&mut self, t: &IntTable, v: i64) {
        match t.index(v) {
            Some(i) => {
                self.enc
                    .encode_symbol(i, &t.model)
                    .expect("symbol in table");
                self.est_bits += t.cost[i];
            }
            None => {
                self.put_escape_only(t);
                self.put(v, ESCAPE_SCALE);
            }
        }
    }

    /// Codes a table's escape symbol alone (the caller codes what it stands for).
    pub fn put_escape_only(&mut self, t: &IntTable) {
        self.enc
            .encode_symbol(t.n, &t.model)
            .expect("escape symbol");
        self.est_bits += t.cost[t.n];
    }

    /// Codes `v` in 0..2^bits with equal probabilities.
    pub fn put_bits(&mut self, v: u64, bits: u32) {
        self.uniform_bits(v, bits);
        self.est_bits += bits as f64;
    }

    /// The compressed bytes: the number of range-coder words (LEB128: 7 bits a byte, low
    /// first), the words (little-endian 32-bit), then the uniform bits ([`RawWriter`]).
    pub fn finish(self) -> Vec<u8> {
        let words = self.enc.into_compressed().expect("in-memory backend");
        let raw = self.raw.finish();
        let mut out = Vec::with_capacity(5 + 4 * words.len() + raw.len());
        let mut n = words.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        out.extend_from_slice(&raw);
        out
    }
}

/// What a reader says when the range decoder cannot go on: the tile's bytes end before its
/// pixels do, which a damaged tile (a flipped bit anywhere) causes as often as a cut one.
const RAN_OUT: &str = "the coded data is damaged (the range decoder ran out of data before \
                       the tile was complete)";

/// Why a bitstream could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("corrupt bitstream: {0}")]
pub struct Corrupt(pub String);

/// A bitstream being read.
pub struct Reader {
    dec: DefaultRangeDecoder,
    /// Format 4 on: the uniform bits, apart from the range coder's words.
    raw: Option<RawReader>,
}

impl Reader {
    /// A reader of what [`Writer::finish`] wrote (format 4 on: `split`), or of format 3's
    /// single range-coded stream (uniform bits inside it).
    pub fn new(bytes: &[u8], split: bool) -> Result<Reader, Corrupt> {
        let (words, raw) = if split {
            // LEB128, at most 5 bytes (a u32).
            let (mut n, mut at) = (0usize, 0usize);
            loop {
                let b = *bytes
                    .get(at)
                    .filter(|_| at < 5)
                    .ok_or_else(|| Corrupt("the stream's word count is damaged".into()))?;
                n |= ((b & 0x7f) as usize) << (7 * at);
                at += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let end = n
                .checked_mul(4)
                .and_then(|b| b.checked_add(at))
                .filter(|&e| e <= bytes.len())
                .ok_or_else(|| {
                    Corrupt(format!("{n} range-coder words in {} bytes", bytes.len()))
                })?;
            (&bytes[at..end], Some(RawReader::new(&bytes[end..])))
        } else {
            (bytes, None)
        };
        if !words.len().is_multiple_of(4) {
            return Err(Corrupt(format!(
                "{} bytes is not a whole number of words",
                words.len()
            )));
        }
        let words: Vec<u32> = words
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let dec = DefaultRangeDecoder::from_compressed(words)
            .map_err(|_| Corrupt("cannot start the range decoder".into()))?;
        Ok(Reader { dec, raw })
    }

    #[inline]
    fn uniform_bits(&mut self, bits: u32) -> Result<u64, Corrupt> {
        match &mut self.raw {
            Some(r) => r.get(bits),
            None => self.uniform_bits_ranged(bits),
        }
    }

    /// Format 3: uniform bits through the range coder, in chunks.
    fn uniform_bits_ranged(&mut self, mut bits: u32) -> Result<u64, Corrupt> {
        let (mut v, mut at) = (0u64, 0);
        while bits > 0 {
            let c = bits.min(CHUNK);
            let x = self
                .dec
                .decode_symbol(Pow2 { bits: c })
                .map_err(|_| Corrupt(RAN_OUT.into()))? as u64;
            v |= x << at;
            at += c;
            bits -= c;
        }
        Ok(v)
    }

    pub fn get(&mut self, s: usize) -> Result<i64, Corrupt> {
        let t = table(s);
        let sym = self
            .dec
            .decode_symbol(&t.model)
            .map_err(|_| Corrupt(RAN_OUT.into()))? as i64;
        if sym <= 2 * t.q {
            let q = sym - t.q;
            let low = if t.k > 0 {
                self.uniform_bits(t.k)? as i64
            } else {
                0
            };
            Ok((q << t.k) + low)
        } else {
            let z = self.uniform_bits(64)?;
            Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
    }

    pub fn get_int(&mut self, t: &IntTable) -> Result<i64, Corrupt> {
        match self.get_int_or_escape(t)? {
            Some(v) => Ok(v),
            None => self.get(ESCAPE_SCALE),
        }
    }

    /// A table's symbol: Some(value), or None for the escape (what [`Writer::put_escape_only`]
    /// wrote; the caller reads what follows).
    pub fn get_int_or_escape(&mut self, t: &IntTable) -> Result<Option<i64>, Corrupt> {
        let i = self
            .dec
            .decode_symbol(&t.model)
            .map_err(|_| Corrupt(RAN_OUT.into()))?;
        Ok((i < t.n).then(|| t.lo + i as i64))
    }

    pub fn get_bits(&mut self, bits: u32) -> Result<u64, Corrupt> {
        self.uniform_bits(bits)
    }
}

/// What [`Writer::put`] spends on `r` at scale `s` (its symbol and raw bits), in the fixed
/// point of [`COST_ONE`]: integer sums, so that the encoder's choice between codings of a
/// tile does not depend on the order it adds them in.
#[inline]
pub fn cost_fx(r: i64, s: usize) -> u64 {
    let t = table(s);
    t.cost_fx[t.symbol(r).0]
}

/// −log2 of the model probability of `r` at scale `s`, plus its raw bits.
pub fn cost(r: i64, s: usize) -> f64 {
    let t = table(s);
    match t.symbol(r) {
        (sym, true) => t.cost[sym] + t.k as f64,
        (sym, false) => t.cost[sym] + 64.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use constriction::stream::model::{
        DefaultContiguousCategoricalEntropyModel, DefaultUniformModel,
    };

    #[test]
    fn the_models_are_constrictions() {
        // Every Laplace table and a learned-prior-like table: the same interval for every
        // symbol, and the same symbol at every cumulative boundary, either side of it, and
        // along the whole range.
        let prior = frequencies(&[0.5, 0.25, 0.125, 0.0625, 0.0625]);
        let mut freqs: Vec<Vec<u32>> = (0..SCALES)
            .map(|s| {
                let t = &tables()[s];
                (0..t.model.cdf.len() - 1)
                    .map(|j| t.model.cdf[j + 1] - t.model.cdf[j])
                    .collect()
            })
            .collect();
        freqs.push(prior);
        for f in &freqs {
            let ours = Categorical::new(f);
            let theirs =
                DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(
                    f, false,
                )
                .unwrap();
            for s in 0..f.len() {
                assert_eq!(
                    ours.left_cumulative_and_probability(s),
                    theirs.left_cumulative_and_probability(s)
                );
            }
            let mut qs: Vec<u32> = (0..1u32 << 14)
                .map(|j| (j << 10) | ((j * 7919) % 1024))
                .collect();
            for &c in &ours.cdf[..f.len()] {
                qs.extend([c.saturating_sub(1), c, c + 1]);
            }
            for q in qs.into_iter().filter(|&q| q < 1 << PRECISION) {
                assert_eq!(
                    ours.quantile_function(q),
                    theirs.quantile_function(q),
                    "{q}"
                );
            }
        }
        for bits in 1..=CHUNK {
            let ours = Pow2 { bits };
            let theirs = DefaultUniformModel::new(1 << bits);
            for s in [0, 1, (1 << bits) - 1, 1 << bits] {
                assert_eq!(
                    ours.left_cumulative_and_probability(s),
                    theirs.left_cumulative_and_probability(s)
                );
            }
            for q in (0..1u32 << PRECISION)
                .step_by(4099)
                .chain([(1 << PRECISION) - 1])
            {
                assert_eq!(ours.quantile_function(q), theirs.quantile_function(q));
            }
        }
    }

    #[test]
    fn snap_is_nearest_and_monotone() {
        for s in 0..SCALES {
            assert_eq!(
                scale(s),
                QUARTER_POW2[s % 4] * 2f64.powi((s / 4) as i32 - 2)
            );
            // The compile-time thresholds are the run-time products.
            let b = std::hint::black_box(scale(s));
            assert_eq!(
                THRESHOLDS[s].to_bits(),
                (b * std::hint::black_box(MID)).to_bits()
            );
            assert_eq!(snap(scale(s)), s);
            assert_eq!(snap(scale(s) * 1.05), s);
        }
        assert_eq!(snap(1e30), SCALES - 1);
        assert_eq!(snap(f64::INFINITY), SCALES - 1);
        let mut b: f64 = 1e-3;
        while b < 1e9 {
            for x in [b, b.next_up(), b.next_down(), b * MID, scale(snap(b)) * MID] {
                assert_eq!(snap(x), snap_search(x), "{x}");
            }
            b *= 1.0007;
        }
        for s in 0..SCALES {
            let t = scale(s) * MID;
            for x in [t, t.next_up(), t.next_down(), scale(s)] {
                assert_eq!(snap(x), snap_search(x), "{x}");
            }
        }
        assert_eq!(snap(f64::NAN), 0);
        assert_eq!(snap(-3.0), 0);
    }

    #[test]
    fn raw_bits_round_trip_at_every_width_and_fail_past_the_end() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut items = Vec::new();
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = [0, 1, 7, 12, 31, 32, 33, 63, 64][(i % 9) as usize].max(i % 65);
            let v = if bits == 64 {
                x
            } else {
                x & ((1u64 << bits) - 1)
            };
            items.push((v, bits));
        }
        let mut w = RawWriter::default();
        items
            .iter()
            .for_each(|&(v, b)| w.put(v | if b < 64 { 1u64 << b } else { 0 }, b));
        let total: u32 = items.iter().map(|i| i.1).sum();
        let bytes = w.finish();
        assert_eq!(bytes.len(), total.div_ceil(8) as usize);
        let mut r = RawReader::new(&bytes);
        for &(v, b) in &items {
            assert_eq!(r.get(b).unwrap(), v, "{b} bits");
        }
        // What is left is the last byte's padding; beyond it the stream has ended.
        assert!(r.get(9).is_err());
        // A word count past the end, or a damaged count, is an error, not a panic.
        assert!(Reader::new(&[0x85, 0x01, 0, 0], true).is_err());
        assert!(Reader::new(&[0xff; 6], true).is_err());
        assert!(Reader::new(&[], true).is_err());
    }

    #[test]
    fn values_round_trip_at_every_scale_with_near_entropy_cost() {
        let mut vals = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for s in (0..SCALES).step_by(7) {
            for i in 0..300 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Laplace-like draws at scale b, plus extremes that must escape.
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                let mag = (-(1.0 - u).ln() * scale(s)).round() as i64;
                let r = match i {
                    0 => i64::MAX,
                    1 => i64::MIN,
                    2 => 0,
                    _ if x & 1 == 0 => mag,
                    _ => -mag,
                };
                vals.push((r, s));
            }
        }
        let mut w = Writer::default();
        for &(r, s) in &vals {
            w.put(r, s);
        }
        w.put_bits(0xabc, 12);
        let t = IntTable::new(-2, &[0.1, 0.2, 0.4, 0.2, 0.1], 1e-3);
        for v in [-2, 0, 2, 3, -7, 1 << 40, i64::MIN] {
            w.put_int(&t, v);
        }
        let est = w.est_bits;
        let bytes = w.finish();
        let mut rd = Reader::new(&bytes, true).unwrap();
        for &(r, s) in &vals {
            assert_eq!(rd.get(s).unwrap(), r);
        }
        assert_eq!(rd.get_bits(12).unwrap(), 0xabc);
        for v in [-2, 0, 2, 3, -7, 1 << 40, i64::MIN] {
            assert_eq!(rd.get_int(&t).unwrap(), v);
        }
        let actual = bytes.len() as f64 * 8.0;
        assert!(
            (actual - est).abs() / est < 0.01,
            "actual {actual} vs estimated {est}"
        );
    }
}
