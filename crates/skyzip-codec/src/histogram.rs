//! Residual mode 4 (format 5 on): a non-parametric model learned as the tile is coded, lossless
//! or on the max-error quantiser's step (near-lossless, as JPEG-LS's NEAR). The learned μ/σ and the Laplace tables of the other modes cannot see a sparse
//! alphabet — a photographic plate's values pass through a density-to-intensity table, so
//! neighbours differ by multiples of a local step; counts of a few photons are mostly 0, 1, 2 —
//! but a frequency table of the values actually seen does.
//!
//! Three predictors (one per tile, the encoder keeps the cheapest): the median edge detector on
//! the decoded values (the residual x − MED(a, b, c): differences of values on the lattice), the
//! mean of the left and upper values (format 7: x − ⌊(a + b)/2⌋, for noise), or none (x − the
//! tile's minimum: counts), each pixel in one of a few contexts from its decoded
//! neighbours. Each context keeps integer counts of the symbols it has coded and codes the next
//! one under a table rebuilt from them after 16, 32, 64, … 4096 symbols and every 4096 after:
//! the seen symbols with their counts, plus an escape as likely as the number of distinct
//! symbols (PPM's method C); an escaped symbol follows under a Laplace of the context's mean
//! |symbol|. Integer counts, integer frequencies, [`crate::detmath`] costs: every machine codes
//! the same bits.

use crate::entropy::{cost_fx, fixed, snap, Corrupt, IntTable, Reader, Writer};
use std::collections::HashMap;

/// How a tile predicts the symbol it codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predict {
    /// x − MED(a, b, c); one context.
    Med,
    /// x − the tile's smallest value with data ([`Quant::origin`]); contexts from the
    /// neighbours' sum.
    Offset,
    /// x − ⌊(a + b)/2⌋ (format 7 on); one context. Where the values are mostly noise the mean
    /// of two neighbours predicts with less noise than MED's a + b − c.
    Avg,
}

/// Contexts of the offset predictor: ⌊log2⌋ + 1 of the four causal neighbours' sum, capped.
const OFFSET_CONTEXTS: usize = 8;
/// Symbols a context codes before its first table, and the period its tables settle at.
const FIRST_TABLE: u32 = 16;
const TABLE_PERIOD: u32 = 4096;

fn hash_map<V>() -> Map<V> {
    HashMap::default()
}

/// A multiplicative hasher for the i64 keys (lookups only: nothing depends on the map's order).
#[derive(Default)]
pub struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64 ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.0 ^= self.0 >> 31;
    }
}

type Map<V> = HashMap<i64, V, std::hash::BuildHasherDefault<Mix>>;

/// Where each symbol of a context's table is: a dense array over the symbols' span where that
/// is small (one load a lookup, not a hash), else a map.
#[derive(Default)]
enum Index {
    #[default]
    Empty,
    Dense {
        lo: i64,
        at: Vec<u32>,
    },
    Sparse(Map<usize>),
}

/// The widest span of symbols an [`Index`] keeps densely.
const DENSE_SPAN: i64 = 1 << 16;

impl Index {
    /// The index of a table whose symbols (ascending) are `all`'s.
    fn of(all: &[(i64, u32)]) -> Index {
        let (Some(&(lo, _)), Some(&(hi, _))) = (all.first(), all.last()) else {
            return Index::Empty;
        };
        if hi.saturating_sub(lo) < DENSE_SPAN {
            let mut at = vec![u32::MAX; (hi - lo + 1) as usize];
            for (i, e) in all.iter().enumerate() {
                at[(e.0 - lo) as usize] = i as u32;
            }
            Index::Dense { lo, at }
        } else {
            Index::Sparse(all.iter().enumerate().map(|(i, e)| (e.0, i)).collect())
        }
    }

    fn get(&self, r: i64) -> Option<usize> {
        match self {
            Index::Empty => None,
            Index::Dense { lo, at } => r
                .checked_sub(*lo)
                .and_then(|k| usize::try_from(k).ok())
                .and_then(|k| at.get(k).copied())
                .filter(|&i| i != u32::MAX)
                .map(|i| i as usize),
            Index::Sparse(m) => m.get(&r).copied(),
        }
    }
}

/// One context's model.
struct Context {
    /// Symbols coded, and Σ |symbol| (the escape's Laplace scale).
    n: u32,
    abs: u64,
    /// The current table's symbols (ascending), where each is, their counts so far, and the
    /// table (index i is `values[i]`; the last entry the escape) with each symbol's cost.
    values: Vec<i64>,
    at: Index,
    counts: Vec<u32>,
    table: Option<IntTable>,
    cost_fx: Vec<u64>,
    /// Counts of the symbols not in the table yet.
    fresh: Map<u32>,
}

impl Context {
    fn new() -> Context {
        Context {
            n: 0,
            abs: 0,
            values: Vec::new(),
            at: Index::default(),
            counts: Vec::new(),
            table: None,
            cost_fx: Vec::new(),
            fresh: hash_map(),
        }
    }

    /// The Laplace scale index an escaped symbol is coded at: the context's mean |symbol|.
    fn escape_scale(&self) -> usize {
        snap(if self.n == 0 {
            4.0
        } else {
            (self.abs as f64 / self.n as f64).max(0.3)
        })
    }

    /// Counts `r` (at table index `i`, or a symbol not in the table) and rebuilds the table on
    /// schedule.
    fn update(&mut self, r: i64, i: Option<usize>) {
        match i {
            Some(i) => self.counts[i] += 1,
            None => *self.fresh.entry(r).or_insert(0) += 1,
        }
        self.n += 1;
        self.abs = self.abs.saturating_add(r.unsigned_abs());
        if self.n == FIRST_TABLE
            || (self.n < TABLE_PERIOD && self.n.is_power_of_two() && self.n > FIRST_TABLE)
            || self.n.is_multiple_of(TABLE_PERIOD)
        {
            self.rebuild();
        }
    }

    /// The table of the counts so far: each symbol's share of 2^24 in proportion to its count,
    /// the escape's to the number of distinct symbols, the rounding left to the most frequent
    /// symbol (the smallest of equals).
    fn rebuild(&mut self) {
        let mut all: Vec<(i64, u32)> = self
            .values
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
            .chain(self.fresh.drain())
            .collect();
        all.sort_unstable_by_key(|e| e.0);
        let esc = all.len() as u64;
        let total = self.n as u64 + esc;
        const T: u64 = 1 << 24;
        let mut freq: Vec<u32> = all
            .iter()
            .map(|&(_, c)| ((c as u64 * T) / total).max(1) as u32)
            .collect();
        freq.push(((esc * T) / total).max(1) as u32);
        let sum: u64 = freq.iter().map(|&f| f as u64).sum();
        let top = (0..all.len())
            .max_by_key(|&i| (freq[i], std::cmp::Reverse(i)))
            .expect("a rebuilt context has symbols");
        // The counts never exceed 2^16 per tile, so every share is ≥ 256 and the rounding
        // (at most one per symbol) fits in the largest.
        freq[top] = (freq[top] as u64 + T - sum) as u32;
        self.at = Index::of(&all);
        self.values = all.iter().map(|e| e.0).collect();
        self.counts = all.iter().map(|e| e.1).collect();
        let table = IntTable::from_frequencies(0, freq).expect("frequencies sum to 2^24");
        self.cost_fx = (0..=self.values.len() as i64)
            .map(|i| {
                if (i as usize) < self.values.len() {
                    fixed(table.cost(i))
                } else {
                    fixed(table.escape_cost())
                }
            })
            .collect();
        self.table = Some(table);
    }

    /// What coding `r` would cost here (fixed point).
    fn price(&self, r: i64) -> u64 {
        self.price_at(r, self.at.get(r))
    }

    /// [`Context::price`] of `r`, at table index `i` (None: not in the table).
    fn price_at(&self, r: i64, i: Option<usize>) -> u64 {
        match (&self.table, i) {
            (Some(_), Some(i)) => self.cost_fx[i],
            (Some(_), None) => self.cost_fx[self.values.len()] + cost_fx(r, self.escape_scale()),
            (None, _) => cost_fx(r, self.escape_scale()),
        }
    }

    /// What coding `r` costs here (fixed point); counts it.
    fn cost(&mut self, r: i64) -> u64 {
        let i = self.at.get(r);
        let c = self.price_at(r, i);
        self.update(r, i);
        c
    }

    /// Writes `r` here; counts it and returns what it cost (as [`Context::cost`]).
    fn put(&mut self, w: &mut Writer, r: i64) -> u64 {
        let i = self.at.get(r);
        let c = self.price_at(r, i);
        match (&self.table, i) {
            (Some(t), Some(i)) => w.put_int(t, i as i64),
            (Some(t), None) => {
                w.put_escape_only(t);
                w.put(r, self.escape_scale());
            }
            (None, _) => w.put(r, self.escape_scale()),
        }
        self.update(r, i);
        c
    }

    fn get(&mut self, rd: &mut Reader) -> Result<i64, Corrupt> {
        let (r, i) = match &self.table {
            Some(t) => match rd.get_int_or_escape(t)? {
                Some(i) => (self.values[i as usize], Some(i as usize)),
                None => {
                    let r = rd.get(self.escape_scale())?;
                    // An escaped symbol is one the table lacks (else the stream is damaged).
                    if self.at.get(r).is_some() {
                        return Err(Corrupt(format!("escaped symbol {r} is in the table")));
                    }
                    (r, None)
                }
            },
            None => (rd.get(self.escape_scale())?, None),
        };
        self.update(r, i);
        Ok(r)
    }
}

/// The quantiser a tile's symbols go through: residuals on a step of 2e + 1 (e = 0: lossless),
/// every value clamped to the pixel type's range. Lossy tiles are quantised on a grid of that
/// step from `origin` (the tile's minimum) with a subtractive dither (a pseudo-random integer
/// in −e…e per pixel, added before quantising and taken off after): every |error| ≤ e, and the
/// decoded values do not sit on one lattice, so a median sky or a sum over an aperture is not
/// biased by the grid (fpack dithers its quantised floats for the same reason). The symbols are
/// then the grid indices, predicted from the neighbours' indices.
#[derive(Debug, Clone, Copy)]
pub struct Quant {
    pub e: i64,
    pub lo: i64,
    pub hi: i64,
    pub origin: i64,
    /// The RMSE mode's 1/λ (encoder only; 0: the nearest index, as the other modes): each
    /// pixel's symbol is then chosen for D·(1/λ) + R, see [`Quant::choose`].
    pub rdo: u64,
}

impl Quant {
    fn step(&self) -> i64 {
        2 * self.e + 1
    }

    /// The dither of pixel `i` of the tile: in −e…e, from the pixel and the origin.
    fn dither(&self, i: usize) -> i64 {
        let mut z = (self.origin as u64) ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % self.step() as u64) as i64 - self.e
    }

    /// Lossy: the grid index of value x at pixel i.
    fn index(&self, x: i64, i: usize) -> i64 {
        (x.saturating_add(self.dither(i)).saturating_sub(self.origin) + self.e)
            .div_euclid(self.step())
    }

    /// The symbol that codes value x at pixel i given the prediction p (a value when
    /// lossless, a grid index when lossy).
    fn symbol_of(&self, x: i64, p: i64, i: usize) -> i64 {
        if self.e == 0 {
            x.saturating_sub(p)
        } else {
            self.index(x, i).saturating_sub(p)
        }
    }

    /// The symbol the encoder codes for value x at pixel i given the prediction p under
    /// context c, and what its squared error is worth (fixed-point bits). The nearest index
    /// (worth 0) unless the RMSE mode asks for more: then of the nearest, its neighbour toward
    /// the prediction and the prediction itself, the one of least D·(1/λ) + R.
    fn choose(&self, c: &Context, x: i64, p: i64, i: usize) -> (i64, u64) {
        let s0 = self.symbol_of(x, p, i);
        if self.rdo == 0 || self.e == 0 {
            return (s0, 0);
        }
        let mut best = (s0, u64::MAX, 0);
        for s in [s0, s0 - s0.signum(), 0] {
            let d = x
                .saturating_sub(self.value(p.saturating_add(s), i))
                .unsigned_abs();
            let worth = d.saturating_mul(d).saturating_mul(self.rdo);
            let j = worth.saturating_add(c.price(s));
            if j < best.1 {
                best = (s, j, worth);
            }
        }
        (best.0, best.2)
    }

    /// Lossy: the value of grid index q at pixel i.
    fn value(&self, q: i64, i: usize) -> i64 {
        self.origin
            .saturating_add(q.saturating_mul(self.step()))
            .saturating_sub(self.dither(i))
            .clamp(self.lo, self.hi)
    }
}

/// The walk shared by costing, writing and reading: per non-blank pixel in raster order, the
/// prediction and context from the decoded neighbours, then `code(context, prediction, pixel)`
/// gives the pixel's symbol (the encoder's own, or the decoder's), and the decoded value is the
/// prediction plus the symbol's step, clamped. Blank pixels count as their prediction.
/// `row_done(y)` may stop the walk (None). Returns the decoded values (0 for blanks).
fn walk(
    predict: Predict,
    quant: Quant,
    blank: &[bool],
    w: usize,
    h: usize,
    mut code: impl FnMut(&mut Context, i64, usize) -> Result<i64, Corrupt>,
    mut row_done: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<i64>>, Corrupt> {
    let k = match predict {
        Predict::Med | Predict::Avg => 1,
        Predict::Offset => OFFSET_CONTEXTS,
    };
    let lossy = quant.e > 0;
    let mut ctx: Vec<Context> = (0..k).map(|_| Context::new()).collect();
    let mut out: Vec<i64> = Vec::with_capacity(w * h);
    // Values as the predictors see them (blanks: their prediction): lossless, the values;
    // lossy, their grid indices.
    // Two rows of them (this one and the one above), alternating.
    let mut seen = vec![0i64; 2 * w];
    for y in 0..h {
        let (here, up) = if y % 2 == 0 { (0, w) } else { (w, 0) };
        for x in 0..w {
            let i = y * w + x;
            let left = (x > 0).then(|| seen[here + x - 1]);
            let (ul, u, ur) = if y > 0 {
                (
                    (x > 0).then(|| seen[up + x - 1]),
                    Some(seen[up + x]),
                    (x + 1 < w).then(|| seen[up + x + 1]),
                )
            } else {
                (None, None, None)
            };
            // The left and upper neighbours (at the tile's edges, the one there is).
            let a = left.or(u).unwrap_or(0);
            let b = u.unwrap_or(a);
            let (p, c) = match predict {
                Predict::Med => {
                    let c = if x > 0 { ul.unwrap_or(b) } else { b };
                    (crate::tile::med(a, b, c), 0)
                }
                Predict::Avg => (crate::tile::mean2(a, b), 0),
                Predict::Offset => {
                    // Lossy indices count from the origin already.
                    let base = if lossy { 0 } else { quant.origin };
                    let s = [left, ul, u, ur]
                        .iter()
                        .flatten()
                        .fold(0i64, |acc, &v| acc.saturating_add(v.saturating_sub(base)));
                    let bucket = (64 - (s.max(0) as u64).leading_zeros()) as usize;
                    (base, bucket.min(OFFSET_CONTEXTS - 1))
                }
            };
            if blank[i] {
                seen[here + x] = p;
                out.push(0);
                continue;
            }
            let s = code(&mut ctx[c], p, i)?;
            let q = p.saturating_add(s);
            seen[here + x] = q;
            out.push(if lossy {
                quant.value(q, i)
            } else {
                q.clamp(quant.lo, quant.hi)
            });
        }
        if !row_done(y) {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// The cost (fixed point; in the RMSE mode D·(1/λ) + R) of coding `v` with `predict` under
/// `quant`, stopped where
/// `keep_going(y, bits after row y)` says so (None).
pub fn cost(
    predict: Predict,
    quant: Quant,
    (v, blank): (&[i64], &[bool]),
    w: usize,
    h: usize,
    keep_going: impl FnMut(usize, u64) -> bool,
) -> Option<u64> {
    priced_walk(predict, quant, (v, blank), (w, h), keep_going, |c, q| {
        c.cost(q)
    })
    .map(|(b, _)| b)
}

/// The walk of [`cost`] and [`cost_put`]: each value's symbol chosen, then `code(context,
/// symbol)` counts it (and may write it) and says what it cost; returns the bits (the error's
/// worth included) and the values as decoded, or None where `keep_going` stopped it.
fn priced_walk(
    predict: Predict,
    quant: Quant,
    (v, blank): (&[i64], &[bool]),
    (w, h): (usize, usize),
    mut keep_going: impl FnMut(usize, u64) -> bool,
    mut code: impl FnMut(&mut Context, i64) -> u64,
) -> Option<(u64, Vec<i64>)> {
    let bits = std::cell::Cell::new(0u64);
    walk(
        predict,
        quant,
        blank,
        w,
        h,
        |c, p, i| {
            let (q, worth) = quant.choose(c, v[i], p, i);
            bits.set(bits.get().saturating_add(code(c, q)).saturating_add(worth));
            Ok(q)
        },
        |y| keep_going(y, bits.get()),
    )
    .expect("costing cannot fail")
    .map(|out| (bits.get(), out))
}

/// The bits [`cost_put`] writes before the values: the predictor's (1 for the offset
/// predictor, 2 for the others from format 7 on) and the 64-bit origin where it is used.
pub fn header_bits(predict: Predict, quant: Quant) -> u64 {
    let predictor = match predict {
        Predict::Offset => 1,
        Predict::Med | Predict::Avg => 2,
    };
    predictor + if uses_origin(predict, quant) { 64 } else { 0 }
}

/// Whether the tile's origin (its minimum) is written: the offset predictor and the lossy grid
/// use it.
fn uses_origin(predict: Predict, quant: Quant) -> bool {
    predict == Predict::Offset || quant.e > 0
}

/// Writes what [`header_bits`] counts.
fn put_header(wr: &mut Writer, predict: Predict, quant: Quant) {
    wr.put_bits((predict == Predict::Offset) as u64, 1);
    if predict != Predict::Offset {
        wr.put_bits((predict == Predict::Avg) as u64, 1);
    }
    if uses_origin(predict, quant) {
        wr.put_bits(quant.origin as u64, 64);
    }
}

/// Writes the tile's values (`predict` and its parameter first, [`header_bits`]), costing them
/// as it writes them (as [`cost`] does, the predictor and its parameter aside), stopped where
/// `keep_going(y, bits after row y)` says so (None): the encoder writes mode 4 into a copy of
/// the tile's stream while it prices it, and keeps the copy where mode 4 wins, instead of
/// walking the tile again. Returns the bits and the values as decoded.
pub fn cost_put(
    wr: &mut Writer,
    predict: Predict,
    quant: Quant,
    (v, blank): (&[i64], &[bool]),
    w: usize,
    h: usize,
    keep_going: impl FnMut(usize, u64) -> bool,
) -> Option<(u64, Vec<i64>)> {
    put_header(wr, predict, quant);
    priced_walk(predict, quant, (v, blank), (w, h), keep_going, |c, q| {
        c.put(wr, q)
    })
}

/// Reads what [`cost_put`] wrote (a tile of format `version`: before 7 the predictor is one bit,
/// MED or offset).
pub fn get(
    rd: &mut Reader,
    mut quant: Quant,
    blank: &[bool],
    (w, h): (usize, usize),
    version: u8,
) -> Result<Vec<i64>, Corrupt> {
    let predict = if rd.get_bits(1)? == 1 {
        Predict::Offset
    } else if version >= 7 && rd.get_bits(1)? == 1 {
        Predict::Avg
    } else {
        Predict::Med
    };
    if uses_origin(predict, quant) {
        quant.origin = rd.get_bits(64)? as i64;
    }
    walk(predict, quant, blank, w, h, |c, _, _| c.get(rd), |_| true)
        .map(|o| o.expect("the decoder walks every row"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_lossless_is_within_the_bound_dithered_and_decodes_to_what_the_encoder_saw() {
        let (w, h) = (48, 40);
        let mut seed = 5u64;
        let v: Vec<i64> = (0..w * h)
            .map(|k| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                1000 + (k % w) as i64 * 3 + (seed >> 58) as i64
            })
            .collect();
        let mut blank = vec![false; w * h];
        blank[100..130].iter_mut().for_each(|b| *b = true);
        for (predict, e) in [
            (Predict::Med, 3),
            (Predict::Offset, 7),
            (Predict::Med, 0),
            (Predict::Avg, 0),
            (Predict::Avg, 2),
        ] {
            let quant = Quant {
                e,
                lo: 0,
                hi: 65535,
                origin: 1000,
                rdo: 0,
            };
            let mut wr = Writer::default();
            let enc = cost_put(&mut wr, predict, quant, (&v, &blank), w, h, |_, _| true)
                .unwrap()
                .1;
            let mut head = Writer::default();
            put_header(&mut head, predict, quant);
            assert_eq!(
                header_bits(predict, quant) as f64,
                head.est_bits,
                "{predict:?}"
            );
            let bytes = wr.finish();
            let mut rd = Reader::new(&bytes, true).unwrap();
            let dec = get(&mut rd, Quant { origin: 0, ..quant }, &blank, (w, h), 7).unwrap();
            assert_eq!(dec, enc, "{predict:?} e={e}");
            let ok = v.iter().zip(&dec).zip(&blank);
            assert!(ok.clone().all(|((a, b), &bl)| bl || (a - b).abs() <= e));
            if e > 0 {
                // Dithered: the decoded values are not all on one lattice of the step.
                let step = 2 * e + 1;
                let phases: std::collections::BTreeSet<i64> = dec
                    .iter()
                    .zip(&blank)
                    .filter(|(_, &b)| !b)
                    .map(|(x, _)| x.rem_euclid(step))
                    .collect();
                assert!(phases.len() > step as usize / 2, "{phases:?}");
            } else {
                assert!(ok.clone().all(|((a, b), &bl)| bl || a == b));
            }
        }
    }
}
