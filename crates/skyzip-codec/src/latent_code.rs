//! Real bytes for the codes of generative autoencoders, with the codec's own range coder
//! ([`crate::entropy`]): a VQ-VAE's indices under a factorized prior (the index frequencies of
//! the training set), a VAE's posterior means quantised per dimension under the discretised
//! standard-normal prior, and the integer residuals that make either lossless — so a bit rate
//! is the size of bytes that decode, never an estimate or a loss value.
//!
//! Each image is its own bitstream (decodable alone), so a rate includes the range coder's
//! flush (up to one 32-bit word per stream); the estimate Σ −log2 p is returned beside it.

use crate::detmath;
use crate::entropy::{snap, Corrupt, IntTable, Reader, Writer};

/// A coded stream and the model's estimate of its size.
#[derive(Debug, Clone)]
pub struct Coded {
    pub bytes: Vec<u8>,
    pub est_bits: f64,
}

/// The factorized prior over `counts.len()` indices: each index's training-set frequency, with
/// half a count added so that an index the training set never chose can still be coded.
pub fn index_table(counts: &[u64]) -> IntTable {
    let p: Vec<f64> = counts.iter().map(|&c| c as f64 + 0.5).collect();
    // No index lies outside 0..K: the escape gets the smallest probability the table keeps.
    IntTable::new(0, &p, 1e-9 * p.iter().sum::<f64>())
}

/// Codes each value under its table, in one stream (nothing to code: no bytes).
pub fn code_with<'a>(pairs: impl IntoIterator<Item = (&'a IntTable, i64)>) -> Coded {
    let mut pairs = pairs.into_iter().peekable();
    if pairs.peek().is_none() {
        return Coded {
            bytes: vec![],
            est_bits: 0.0,
        };
    }
    let mut w = Writer::default();
    pairs.for_each(|(t, v)| w.put_int(t, v));
    let est_bits = w.est_bits;
    Coded {
        bytes: w.finish(),
        est_bits,
    }
}

/// Decodes a stream written by [`code_with`], one value per table.
pub fn decode_with<'a>(
    bytes: &[u8],
    tables: impl IntoIterator<Item = &'a IntTable>,
) -> Result<Vec<i64>, Corrupt> {
    let mut tables = tables.into_iter().peekable();
    if tables.peek().is_none() {
        return Ok(vec![]);
    }
    let mut r = Reader::new(bytes, true)?;
    tables.map(|t| r.get_int(t)).collect()
}

/// Codes one image's indices.
pub fn code_indices(t: &IntTable, idx: &[i64]) -> Coded {
    code_with(idx.iter().map(|&i| (t, i)))
}

/// Decodes `n` indices written by [`code_indices`].
pub fn decode_indices(t: &IntTable, bytes: &[u8], n: usize) -> Result<Vec<i64>, Corrupt> {
    decode_with(bytes, std::iter::repeat_n(t, n))
}

/// Φ(x), the standard normal CDF, with the deterministic exp: the same table on every machine.
pub fn normal_cdf(x: f64) -> f64 {
    skyzip_eval::metrics::normal_cdf_with(x, detmath::exp)
}

/// The standard normal prior discretised into bins of width `step` centred on the multiples of
/// `step`: the table of q = round(z / step), for |q| up to 8σ (others escape).
pub fn gaussian_table(step: f64) -> IntTable {
    let r = (8.0 / step).ceil().clamp(1.0, 4096.0) as i64;
    let p: Vec<f64> = (-r..=r)
        .map(|q| {
            let (a, b) = ((q as f64 - 0.5) * step, (q as f64 + 0.5) * step);
            (normal_cdf(b) - normal_cdf(a)).max(1e-12)
        })
        .collect();
    IntTable::new(-r, &p, 1e-12)
}

/// Codes one image's quantised latent: value d under table `tables[d]` (nothing to code: no
/// bytes).
pub fn code_latent(tables: &[IntTable], q: &[i64]) -> Coded {
    code_with(tables.iter().zip(q.iter().copied()))
}

/// Decodes a latent written by [`code_latent`].
pub fn decode_latent(tables: &[IntTable], bytes: &[u8]) -> Result<Vec<i64>, Corrupt> {
    decode_with(bytes, tables)
}

const SCALE_BITS: u32 = 7;

/// Codes the residuals x − pred of one image under the codec's discretised Laplace, one scale
/// per image (the mean |residual|, snapped to the codec's table; 7 bits).
pub fn code_residuals(x: &[i64], pred: &[i64]) -> Coded {
    let r: Vec<i64> = x.iter().zip(pred).map(|(a, b)| a - b).collect();
    let mean = r.iter().map(|v| v.unsigned_abs() as f64).sum::<f64>() / r.len().max(1) as f64;
    let s = snap(mean.max(0.25));
    let mut w = Writer::default();
    w.put_bits(s as u64, SCALE_BITS);
    r.iter().for_each(|&v| w.put(v, s));
    let est_bits = w.est_bits;
    Coded {
        bytes: w.finish(),
        est_bits,
    }
}

/// Decodes residuals written by [`code_residuals`] and adds them to `pred`.
pub fn decode_residuals(bytes: &[u8], pred: &[i64]) -> Result<Vec<i64>, Corrupt> {
    let mut r = Reader::new(bytes, true)?;
    let s = r.get_bits(SCALE_BITS)? as usize;
    pred.iter().map(|&p| Ok(p + r.get(s)?)).collect()
}

/// The median edge detector of LOCO-I/JPEG-LS: the causal prediction of pixel k of a
/// `w`-wide image from its left, upper and upper-left neighbours (the first pixel: 0).
fn med_at(x: &[i64], k: usize, w: usize) -> i64 {
    let (i, j) = (k / w, k % w);
    let a = if j > 0 {
        x[k - 1]
    } else if i > 0 {
        x[k - w]
    } else {
        0
    };
    let b = if i > 0 { x[k - w] } else { a };
    let c = if i > 0 && j > 0 { x[k - w - 1] } else { b };
    if c >= a.max(b) {
        a.min(b)
    } else if c <= a.min(b) {
        a.max(b)
    } else {
        a + b - c
    }
}

/// Every pixel's MED prediction.
pub fn med_prediction(x: &[i64], w: usize) -> Vec<i64> {
    (0..x.len()).map(|k| med_at(x, k, w)).collect()
}

/// Decodes `n` pixels of a `w`-wide image written by [`code_med`], each predicted from the
/// pixels already decoded.
pub fn decode_med(bytes: &[u8], w: usize, n: usize) -> Result<Vec<i64>, Corrupt> {
    let mut r = Reader::new(bytes, true)?;
    let s = r.get_bits(SCALE_BITS)? as usize;
    let mut x = vec![0i64; n];
    for k in 0..n {
        x[k] = med_at(&x, k, w) + r.get(s)?;
    }
    Ok(x)
}

/// The classical lossless baseline: the image coded as its MED residuals, one Laplace scale.
pub fn code_med(x: &[i64], w: usize) -> Coded {
    code_residuals(x, &med_prediction(x, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_543),
            (-1.96, 0.024_997_895_148_220),
            (3.0, 0.998_650_101_968_37),
        ] {
            assert!((normal_cdf(x) - want).abs() < 2e-7, "Φ({x})");
        }
    }

    #[test]
    fn indices_latents_and_residuals_decode_and_their_bytes_match_the_estimate() {
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as usize
        };
        // Indices drawn from a skewed distribution over 64 codes.
        let idx: Vec<i64> = (0..20_000)
            .map(|_| (next() % 64).min(next() % 64) as i64)
            .collect();
        let mut counts = vec![0u64; 64];
        idx.iter().for_each(|&i| counts[i as usize] += 1);
        let t = index_table(&counts);
        let c = code_indices(&t, &idx);
        assert_eq!(decode_indices(&t, &c.bytes, idx.len()).unwrap(), idx);
        let bits = 8.0 * c.bytes.len() as f64;
        assert!(
            (bits - c.est_bits).abs() / c.est_bits < 0.01,
            "{bits} vs {}",
            c.est_bits
        );

        let tables: Vec<IntTable> = (0..200)
            .map(|d| gaussian_table(0.1 + 0.01 * d as f64))
            .collect();
        let q: Vec<i64> = (0..200)
            .map(|d| (next() % 7) as i64 - 3 + d as i64 % 2)
            .collect();
        let c = code_latent(&tables, &q);
        assert_eq!(decode_latent(&tables, &c.bytes).unwrap(), q);

        let x: Vec<i64> = (0..4096)
            .map(|k| (k as i64 % 64) * 3 + (next() % 5) as i64)
            .collect();
        let c = code_med(&x, 64);
        assert_eq!(decode_med(&c.bytes, 64, x.len()).unwrap(), x);
        let pred: Vec<i64> = x.iter().map(|v| v / 2).collect();
        let c = code_residuals(&x, &pred);
        assert_eq!(decode_residuals(&c.bytes, &pred).unwrap(), x);
    }
}
