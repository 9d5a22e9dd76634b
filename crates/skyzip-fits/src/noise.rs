//! Background level and noise σ of an image, estimated as cfitsio/fpack do.
//!
//! cfitsio's `FnNoise5` computes, row by row over the valid (non-blank) pixels, the median absolute
//! 2nd, 3rd and 5th order differences (the MAD estimators of Stoehr et al., ST-ECF newsletter 42),
//! takes the median over rows and scales them to a Gaussian σ. fpack quantises floats with
//! σ = min(noise2, noise3, noise5) (ignoring zeros), and HCOMPRESS's `-s` is in the same σ.
//! Constant runs (flat regions, saturated stars) are skipped, as cfitsio does.

/// The noise estimates of one 2-D image (blank = NaN pixels are skipped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseStats {
    pub ngood: usize,
    pub min: f64,
    pub max: f64,
    /// 1.0483579 · median |x[i] − x[i+2]| (2nd order).
    pub noise2: f64,
    /// 0.6052697 · median |2x[i] − x[i−2] − x[i+2]| (3rd order).
    pub noise3: f64,
    /// 0.1772048 · median |6x[i] − 4x[i−2] − 4x[i+2] + x[i−4] + x[i+4]| (5th order).
    pub noise5: f64,
}

impl NoiseStats {
    /// fpack's σ: noise3, or noise2/noise5 where smaller and non-zero.
    pub fn sigma(&self) -> f64 {
        let mut s = self.noise3;
        if self.noise2 != 0.0 && self.noise2 < s {
            s = self.noise2;
        }
        if self.noise5 != 0.0 && self.noise5 < s {
            s = self.noise5;
        }
        s
    }
}

/// Mean of the two middle values (cfitsio's median over rows).
fn middle_median(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

/// Noise estimates of an `nx`×`ny` image stored row by row; NaN marks blank pixels.
pub fn noise_stats(data: &[f64], nx: usize, ny: usize) -> NoiseStats {
    let (nx, ny) = if nx < 9 { (nx * ny, 1) } else { (nx, ny) };
    let ny = ny.min(data.len() / nx.max(1) + usize::from(!data.len().is_multiple_of(nx.max(1))));
    noise_stats_rows(nx, ny, |y, row| {
        let end = ((y + 1) * nx).min(data.len());
        row.extend_from_slice(&data[y * nx..end]);
    })
}

/// [`noise_stats`] of an image given one row at a time: `fill(y, buf)` appends row y's pixels
/// to the (empty) `buf`. Rows are read in parallel, in bands of [`BAND`] rows (memory: a few
/// rows per thread, whatever the image's size); the per-row medians are combined in row order,
/// so the result does not depend on the thread count. Images narrower than 9 pixels are read
/// as one row (as [`noise_stats`] does).
pub fn noise_stats_rows(
    nx: usize,
    ny: usize,
    fill: impl Fn(usize, &mut Vec<f64>) + Sync,
) -> NoiseStats {
    use rayon::prelude::*;
    if nx < 9 && ny > 1 {
        let mut all = Vec::with_capacity(nx * ny);
        for y in 0..ny {
            fill(y, &mut all);
        }
        return noise_stats(&all, nx, ny);
    }
    let bands: Vec<Band> = (0..ny.div_ceil(BAND))
        .into_par_iter()
        .map(|k| {
            let mut band = Band {
                ngood: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                rows: Vec::with_capacity(BAND),
            };
            let mut s = Scratch::default();
            for y in k * BAND..((k + 1) * BAND).min(ny) {
                s.buf.clear();
                fill(y, &mut s.buf);
                s.good.clear();
                s.good.extend(s.buf.iter().copied().filter(|v| !v.is_nan()));
                band.ngood += s.good.len();
                for &v in &s.good {
                    band.min = band.min.min(v);
                    band.max = band.max.max(v);
                }
                if let Some(r) = row_medians(&mut s) {
                    band.rows.push(r);
                }
            }
            band
        })
        .collect();
    let (mut rows2, mut rows3, mut rows5) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ngood, mut min, mut max) = (0, f64::INFINITY, f64::NEG_INFINITY);
    for b in &bands {
        ngood += b.ngood;
        min = min.min(b.min);
        max = max.max(b.max);
        for &(m2, m3, m5) in &b.rows {
            rows2.extend(m2);
            rows3.push(m3);
            rows5.push(m5);
        }
    }
    let med = |v: &mut Vec<f64>| if v.is_empty() { 0.0 } else { middle_median(v) };
    NoiseStats {
        ngood,
        min: if ngood > 0 { min } else { f64::NAN },
        max: if ngood > 0 { max } else { f64::NAN },
        noise2: 1.0483579 * med(&mut rows2),
        noise3: 0.6052697 * med(&mut rows3),
        noise5: 0.1772048 * med(&mut rows5),
    }
}

/// Rows per parallel band of [`noise_stats_rows`].
const BAND: usize = 32;

/// What one band of rows contributes: its valid pixels' count and range, and per row with
/// enough of them the medians of the 2nd (if any), 3rd and 5th order differences.
struct Band {
    ngood: usize,
    min: f64,
    max: f64,
    rows: Vec<(Option<f64>, f64, f64)>,
}

/// One row's buffers: as read, its valid pixels, and its differences.
#[derive(Default)]
struct Scratch {
    buf: Vec<f64>,
    good: Vec<f64>,
    d2: Vec<u64>,
    d3: Vec<u64>,
    d5: Vec<u64>,
}

/// Lower median, as cfitsio's `quick_select` (element (n−1)/2 of the sorted values), of
/// non-negative values (|x|, NaN included) given by their bits, whose order as integers is
/// `f64::total_cmp`'s.
fn lower_median_bits(v: &mut [u64]) -> f64 {
    let k = (v.len() - 1) / 2;
    f64::from_bits(*v.select_nth_unstable(k).1)
}

/// The row's difference medians (of `s.good`), or None when it has too few non-constant
/// stretches (fewer than 9 valid pixels, or no 3rd-order difference).
fn row_medians(s: &mut Scratch) -> Option<(Option<f64>, f64, f64)> {
    if s.good.len() < 9 {
        return None;
    }
    s.d2.clear();
    s.d3.clear();
    s.d5.clear();
    for w in s.good.windows(9) {
        let (v1, v3, v4, v5, v6, v7, v9) = (w[0], w[2], w[3], w[4], w[5], w[6], w[8]);
        if !(v5 == v6 && v6 == v7) {
            s.d2.push((v5 - v7).abs().to_bits());
        }
        if !(v3 == v4 && v4 == v5 && v5 == v6 && v6 == v7) {
            s.d3.push((2.0 * v5 - v3 - v7).abs().to_bits());
            s.d5.push((6.0 * v5 - 4.0 * v3 - 4.0 * v7 + v1 + v9).abs().to_bits());
        }
    }
    if s.d3.is_empty() {
        return None;
    }
    let m2 = (!s.d2.is_empty()).then(|| lower_median_bits(&mut s.d2));
    Some((
        m2,
        lower_median_bits(&mut s.d3),
        lower_median_bits(&mut s.d5),
    ))
}

/// Sigma-clipped background: median and standard deviation after iterative `kappa`·σ clipping
/// (astropy's `sigma_clipped_stats` with the median as centre).
pub fn clipped_background(data: &[f64], kappa: f64, iterations: usize) -> (f64, f64) {
    let mut v: Vec<f64> = data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut median = 0.0;
    let mut std = 0.0;
    for _ in 0..iterations.max(1) {
        let n = v.len();
        median = if n % 2 == 1 {
            *v.select_nth_unstable_by(n / 2, f64::total_cmp).1
        } else {
            let hi = *v.select_nth_unstable_by(n / 2, f64::total_cmp).1;
            let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo + hi) / 2.0
        };
        let mean = v.iter().sum::<f64>() / n as f64;
        std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64).sqrt();
        let before = v.len();
        v.retain(|x| (x - median).abs() <= kappa * std);
        if v.len() == before || v.is_empty() {
            break;
        }
    }
    (median, std)
}

/// Bits per pixel that Gaussian noise σ (in stored integer units) makes incompressible: log2(σ√12).
pub fn noise_bits(sigma: f64) -> f64 {
    if sigma > 0.0 {
        (sigma * 12f64.sqrt()).log2()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic Gaussian generator (Box–Muller on a 64-bit LCG) for tests.
    fn gaussian(n: usize, sigma: f64, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                sigma * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }

    #[test]
    fn sigma_of_gaussian_noise_within_two_percent() {
        for (sigma, seed) in [(1.0, 1), (7.5, 2), (250.0, 3)] {
            let data: Vec<f64> = gaussian(512 * 512, sigma, seed)
                .iter()
                .map(|x| x + 1000.0)
                .collect();
            let st = noise_stats(&data, 512, 512);
            for est in [st.noise2, st.noise3, st.noise5, st.sigma()] {
                assert!(
                    (est / sigma - 1.0).abs() < 0.02,
                    "σ={sigma}: estimate {est}"
                );
            }
        }
    }

    #[test]
    fn blanks_are_skipped_and_flat_rows_ignored() {
        let mut data = gaussian(256 * 256, 3.0, 9);
        for (i, v) in data.iter_mut().enumerate() {
            if i % 7 == 0 {
                *v = f64::NAN;
            }
        }
        for v in data[..256 * 10].iter_mut() {
            *v = 5.0;
        }
        let st = noise_stats(&data, 256, 256);
        assert!((st.sigma() / 3.0 - 1.0).abs() < 0.03, "{st:?}");
        assert_eq!(st.ngood, data.iter().filter(|v| !v.is_nan()).count());
    }

    #[test]
    fn clipped_background_ignores_sources() {
        let mut data: Vec<f64> = gaussian(100_000, 2.0, 5).iter().map(|x| x + 50.0).collect();
        for v in data.iter_mut().step_by(50) {
            *v += 5000.0;
        }
        let (bg, sd) = clipped_background(&data, 3.0, 10);
        assert!((bg - 50.0).abs() < 0.05, "{bg}");
        assert!((sd / 2.0 - 1.0).abs() < 0.05, "{sd}");
    }
}
