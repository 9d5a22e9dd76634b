//! Invertible normalisations. Each is fitted to an image (its parameters kept, so the inverse
//! is exact up to float rounding) and maps NaN to NaN.

use serde::{Deserialize, Serialize};

/// Which normalisation to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum NormKind {
    /// Identity.
    None,
    /// log10(x − min + offset): for counts and positive images.
    Log10 { offset: f64 },
    /// asinh((x − background)/(softening·σ)): linear near the noise, logarithmic on sources.
    Asinh { softening: f64 },
    /// (x − min)/(max − min) into [0, 1].
    MinMax,
    /// x / max (per-image maximum, as the seed notebooks did).
    Max,
    /// (x − background)/σ: units of the background noise.
    ZScore,
}

/// A fitted normalisation with the parameters its inverse needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Norm {
    None,
    Log10 { shift: f64 },
    Asinh { background: f64, scale: f64 },
    MinMax { min: f64, max: f64 },
    Max { max: f64 },
    ZScore { background: f64, sigma: f64 },
}

/// Background (median of finite values) and σ (1.4826·MAD) used by asinh and z-score.
pub fn robust_background(data: &[f32]) -> (f64, f64) {
    let mut v: Vec<f64> = data
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x as f64)
        .collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    // The middle elements by selection (the values a full sort would put there).
    let half = v.len() / 2;
    let med = *v.select_nth_unstable_by(half, f64::total_cmp).1;
    let mut d: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    let mut sigma = 1.4826 * *d.select_nth_unstable_by(half, f64::total_cmp).1;
    if sigma.is_nan() || sigma <= 0.0 {
        // Flat or mostly constant images: fall back to the standard deviation, then 1 (the
        // sums in ascending order).
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        sigma = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        if sigma.is_nan() || sigma <= 0.0 {
            sigma = 1.0;
        }
    }
    (med, sigma)
}

/// [`robust_background`] of the integers `v` where `blank` is false, as f32 values, by counting
/// instead of selecting: the same two numbers, for integers within ±2^24 (exact in f32) whose
/// range is at most four times their count. None otherwise, or when the MAD is 0 (the caller
/// then takes [`robust_background`], with its fallback).
pub fn robust_background_int(v: &[i64], blank: &[bool]) -> Option<(f64, f64)> {
    const EXACT: i64 = 1 << 24;
    let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0usize);
    for (&x, _) in v.iter().zip(blank).filter(|(_, &b)| !b) {
        lo = lo.min(x);
        hi = hi.max(x);
        n += 1;
    }
    if n == 0 || lo < -EXACT || hi > EXACT || (hi - lo) as u64 >= 4 * n as u64 {
        return None;
    }
    let mut count = vec![0usize; (hi - lo + 1) as usize];
    for (&x, _) in v.iter().zip(blank).filter(|(_, &b)| !b) {
        count[(x - lo) as usize] += 1;
    }
    // The element of rank n/2 (from 0) in ascending order.
    let half = n / 2;
    let mut seen = 0;
    let mut m = 0;
    for (k, &c) in count.iter().enumerate() {
        seen += c;
        if seen > half {
            m = k;
            break;
        }
    }
    // |x − med| = d: the values med ± d, counted together.
    let mut seen = count[m];
    let mut d = 0;
    while seen <= half {
        d += 1;
        seen += count.get(m + d).copied().unwrap_or(0) + m.checked_sub(d).map_or(0, |i| count[i]);
    }
    let med = (lo + m as i64) as f64;
    (d > 0).then_some((med, 1.4826 * d as f64))
}

fn finite_min_max(data: &[f32]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &x in data.iter().filter(|x| x.is_finite()) {
        lo = lo.min(x as f64);
        hi = hi.max(x as f64);
    }
    if lo > hi {
        (0.0, 1.0)
    } else {
        (lo, hi)
    }
}

impl NormKind {
    /// The kind's name, as configs spell it.
    pub fn name(&self) -> &'static str {
        match self {
            NormKind::None => "none",
            NormKind::Log10 { .. } => "log10",
            NormKind::Asinh { .. } => "asinh",
            NormKind::MinMax => "min-max",
            NormKind::Max => "max",
            NormKind::ZScore => "z-score",
        }
    }

    /// Fits the normalisation's parameters to `data`.
    pub fn fit(&self, data: &[f32]) -> Norm {
        match *self {
            NormKind::None => Norm::None,
            NormKind::Log10 { offset } => {
                let (lo, _) = finite_min_max(data);
                Norm::Log10 {
                    shift: offset.max(f64::MIN_POSITIVE) - lo,
                }
            }
            NormKind::Asinh { .. } | NormKind::ZScore => {
                self.with_background(robust_background(data))
            }
            NormKind::MinMax => {
                let (lo, hi) = finite_min_max(data);
                Norm::MinMax {
                    min: lo,
                    max: if hi > lo { hi } else { lo + 1.0 },
                }
            }
            NormKind::Max => {
                let (_, hi) = finite_min_max(data);
                Norm::Max {
                    max: if hi != 0.0 { hi } else { 1.0 },
                }
            }
        }
    }

    /// The asinh or z-score normalisation with a robust background and σ.
    fn with_background(&self, (b, s): (f64, f64)) -> Norm {
        match *self {
            NormKind::Asinh { softening } => Norm::Asinh {
                background: b,
                scale: softening * s,
            },
            NormKind::ZScore => Norm::ZScore {
                background: b,
                sigma: s,
            },
            _ => unreachable!("only asinh and z-score take a robust background"),
        }
    }

    /// [`NormKind::fit`] of the integers `v` where `blank` is false (as f32 values, blanks as
    /// NaN): the same parameters, the robust background counted rather than selected where
    /// [`robust_background_int`] applies.
    pub fn fit_int(&self, v: &[i64], blank: &[bool]) -> Norm {
        if matches!(self, NormKind::Asinh { .. } | NormKind::ZScore) {
            if let Some(bs) = robust_background_int(v, blank) {
                return self.with_background(bs);
            }
        }
        let f: Vec<f32> = v
            .iter()
            .zip(blank)
            .map(|(&x, &b)| if b { f32::NAN } else { x as f32 })
            .collect();
        self.fit(&f)
    }

    /// The normalisation of this kind with parameters stored by [`Norm::params`].
    pub fn with_params(&self, [a, b]: [f64; 2]) -> Norm {
        match self {
            NormKind::None => Norm::None,
            NormKind::Log10 { .. } => Norm::Log10 { shift: a },
            NormKind::Asinh { .. } => Norm::Asinh {
                background: a,
                scale: b,
            },
            NormKind::MinMax => Norm::MinMax { min: a, max: b },
            NormKind::Max => Norm::Max { max: a },
            NormKind::ZScore => Norm::ZScore {
                background: a,
                sigma: b,
            },
        }
    }
}

impl Norm {
    /// y = f(x) for one value (in f64).
    #[inline]
    pub fn forward_value(&self, x: f64) -> f64 {
        match *self {
            Norm::None => x,
            Norm::Log10 { shift } => (x + shift).log10(),
            Norm::Asinh { background, scale } => ((x - background) / scale).asinh(),
            Norm::MinMax { min, max } => (x - min) / (max - min),
            Norm::Max { max } => x / max,
            Norm::ZScore { background, sigma } => (x - background) / sigma,
        }
    }
    /// x = f⁻¹(y) for one value.
    #[inline]
    pub fn inverse_value(&self, y: f64) -> f64 {
        match *self {
            Norm::None => y,
            Norm::Log10 { shift } => 10f64.powf(y) - shift,
            Norm::Asinh { background, scale } => y.sinh() * scale + background,
            Norm::MinMax { min, max } => y * (max - min) + min,
            Norm::Max { max } => y * max,
            Norm::ZScore { background, sigma } => y * sigma + background,
        }
    }
    /// The fitted parameters, two numbers for every kind (unused ones 0; identity: 0, 1), to be
    /// stored beside data and rebuilt with [`NormKind::with_params`].
    pub fn params(&self) -> [f64; 2] {
        match *self {
            Norm::None => [0.0, 1.0],
            Norm::Log10 { shift } => [shift, 0.0],
            Norm::Asinh { background, scale } => [background, scale],
            Norm::MinMax { min, max } => [min, max],
            Norm::Max { max } => [max, 0.0],
            Norm::ZScore { background, sigma } => [background, sigma],
        }
    }

    /// A spread `sd` around `y` in normalised units, mapped to data units by the delta method:
    /// |d f⁻¹/dy| · sd, the derivative by a central difference of step 10⁻³·sd.
    pub fn inverse_sigma(&self, y: f64, sd: f64) -> f64 {
        let h = 1e-3 * sd.max(1e-6);
        let slope = (self.inverse_value(y + h) - self.inverse_value(y - h)) / (2.0 * h);
        slope.abs() * sd
    }
    pub fn forward(&self, data: &mut [f32]) {
        data.iter_mut()
            .for_each(|v| *v = self.forward_value(*v as f64) as f32);
    }
    pub fn inverse(&self, data: &mut [f32]) {
        data.iter_mut()
            .for_each(|v| *v = self.inverse_value(*v as f64) as f32);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counting_gives_the_selections_background() {
        let mut s = 3u64;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut checked = 0;
        for case in 0..400 {
            let n = 1 + (rnd() % 3000) as usize;
            let spread = [1, 3, 40, 1000, 70000][case % 5];
            let base = [0i64, -500, 1 << 23, -(1 << 24), 12345][(case / 5) % 5];
            let v: Vec<i64> = (0..n)
                .map(|_| base + (rnd() % spread) as i64 - (spread / 3) as i64)
                .collect();
            let blank: Vec<bool> = (0..n).map(|_| case % 3 == 0 && rnd() % 5 == 0).collect();
            let f: Vec<f32> = v
                .iter()
                .zip(&blank)
                .map(|(&x, &b)| if b { f32::NAN } else { x as f32 })
                .collect();
            if let Some(got) = super::robust_background_int(&v, &blank) {
                assert_eq!(got, super::robust_background(&f), "case {case}");
                checked += 1;
            }
        }
        assert!(checked > 150, "{checked}");
    }

    use super::*;

    #[test]
    fn every_normalisation_inverts_within_float_precision() {
        // A sky-like image: background 1000, noise 5, a few bright sources, NaN blanks.
        let mut img: Vec<f32> = (0..4096)
            .map(|i| 1000.0 + 5.0 * (((i * 2654435761u64 as usize) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        img[100] = 60000.0;
        img[200] = 3e4;
        img[7] = f32::NAN;
        for kind in [
            NormKind::None,
            NormKind::Log10 { offset: 1.0 },
            NormKind::Asinh { softening: 3.0 },
            NormKind::MinMax,
            NormKind::Max,
            NormKind::ZScore,
        ] {
            let n = kind.fit(&img);
            let mut y = img.clone();
            n.forward(&mut y);
            assert!(y[7].is_nan());
            assert!(
                y.iter().enumerate().all(|(i, v)| i == 7 || v.is_finite()),
                "{kind:?}"
            );
            n.inverse(&mut y);
            for (a, b) in img.iter().zip(&y) {
                if a.is_nan() {
                    assert!(b.is_nan());
                } else {
                    // f32 keeps ~7 digits; log10/asinh lose a little more through the round trip.
                    assert!(
                        (a - b).abs() <= 4e-6 * a.abs().max(1.0),
                        "{kind:?}: {a} → {b}"
                    );
                }
            }
            let json = serde_json::to_string(&n).unwrap();
            assert_eq!(serde_json::from_str::<Norm>(&json).unwrap(), n);
            assert_eq!(kind.with_params(n.params()), n, "{kind:?}");
        }
    }

    #[test]
    fn min_max_maps_to_the_unit_interval() {
        let img = vec![3.0f32, 5.0, 4.0, f32::NAN];
        let mut y = img.clone();
        NormKind::MinMax.fit(&img).forward(&mut y);
        assert_eq!(&y[..3], &[0.0, 1.0, 0.5]);
        // Constant images do not divide by zero.
        let mut c = vec![2.0f32; 4];
        let n = NormKind::MinMax.fit(&c);
        n.forward(&mut c);
        assert!(c.iter().all(|v| v.is_finite()));
    }
}
