//! Toy sets with known structure (spec §4), to test that ordered/tunable autoencoders find it.
//!
//! * `linear`: x = μ + Σ_k σ_k z_k φ_k + ε with K orthonormal modes φ_k (2-D Hermite–Gauss on a
//!   28×28 grid, or DCT-II cosines for a 1-D signal of 64), σ_k = ρ^(k−1), z ~ N(0, 1),
//!   ε ~ N(0, σ_n²): the principal components and their variances are known exactly.
//! * `blobs`: one elliptical Gaussian blob per 28×28 image with six factors of decreasing
//!   effect (x, y, width, amplitude, axis ratio, angle), Gaussian or Poisson noise.

use crate::{Catalog, Sample, SimError, Simulator};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Side of the 2-D toy images.
pub const SIDE: usize = 28;
/// Length of the 1-D toy signals.
pub const LEN_1D: usize = 64;

/// Settings of the linear-Gaussian toy.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearConfig {
    /// 1-D signals of length 64 (DCT modes) instead of 28×28 images (Hermite–Gauss modes).
    pub one_d: bool,
    /// Number of modes K.
    pub modes: usize,
    /// Ratio of successive mode standard deviations (spec: 0.5, 0.7 or 0.85).
    pub rho: f64,
    /// White noise σ_n (spec: 0, 0.01 or 0.05).
    pub sigma_n: f64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            one_d: false,
            modes: 16,
            rho: 0.7,
            sigma_n: 0.01,
        }
    }
}

/// The linear-Gaussian toy with its basis.
pub struct Linear {
    pub config: LinearConfig,
    /// φ_k, each of length D, orthonormal.
    pub basis: Vec<Vec<f64>>,
    /// σ_k.
    pub sigmas: Vec<f64>,
    /// The mean image μ.
    pub mean: Vec<f64>,
}

fn hermite(n: usize, x: f64) -> f64 {
    let (mut h0, mut h1) = (1.0, 2.0 * x);
    if n == 0 {
        return h0;
    }
    for k in 1..n {
        let h2 = 2.0 * x * h1 - 2.0 * k as f64 * h0;
        h0 = h1;
        h1 = h2;
    }
    h1
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Linear {
    pub fn new(config: LinearConfig) -> Result<Linear, SimError> {
        let d = if config.one_d { LEN_1D } else { SIDE * SIDE };
        if config.modes == 0 || config.modes > 21 {
            return Err(SimError::Invalid {
                name: "modes",
                why: format!("{} (1 to 21)", config.modes),
            });
        }
        if !(config.rho > 0.0 && config.rho <= 1.0) {
            return Err(SimError::Invalid {
                name: "rho",
                why: format!("{} (0 < ρ ≤ 1)", config.rho),
            });
        }
        if !(config.sigma_n >= 0.0 && config.sigma_n.is_finite()) {
            return Err(SimError::Invalid {
                name: "sigma_n",
                why: format!("{} (≥ 0)", config.sigma_n),
            });
        }
        let mut basis: Vec<Vec<f64>> = Vec::new();
        if config.one_d {
            for k in 0..config.modes {
                let norm = if k == 0 {
                    (1.0 / d as f64).sqrt()
                } else {
                    (2.0 / d as f64).sqrt()
                };
                basis.push(
                    (0..d)
                        .map(|i| norm * (PI * (i as f64 + 0.5) * k as f64 / d as f64).cos())
                        .collect(),
                );
            }
        } else {
            // Hermite–Gauss H_m(x/s)H_n(y/s)e^(−(x²+y²)/2s²), s = 4 px, ordered by m + n then n,
            // orthonormalised on the pixel grid by modified Gram–Schmidt.
            let s = 4.0;
            let c = (SIDE as f64 - 1.0) / 2.0;
            let mut order = Vec::new();
            for deg in 0..8 {
                for nn in 0..=deg {
                    order.push((deg - nn, nn));
                }
            }
            for &(m, nn) in order.iter().take(config.modes) {
                let mut v: Vec<f64> = (0..d)
                    .map(|i| {
                        let (x, y) = ((i % SIDE) as f64 - c, (i / SIDE) as f64 - c);
                        hermite(m, x / s)
                            * hermite(nn, y / s)
                            * (-(x * x + y * y) / (2.0 * s * s)).exp()
                    })
                    .collect();
                for b in &basis {
                    let p = dot(&v, b);
                    v.iter_mut().zip(b).for_each(|(x, y)| *x -= p * y);
                }
                let n2 = dot(&v, &v).sqrt();
                v.iter_mut().for_each(|x| *x /= n2);
                basis.push(v);
            }
        }
        let sigmas = (0..config.modes)
            .map(|k| config.rho.powi(k as i32))
            .collect();
        let mean = if config.one_d {
            (0..d)
                .map(|i| 0.5 * (-((i as f64 - 31.5) / 12.0).powi(2) / 2.0).exp())
                .collect()
        } else {
            let c = (SIDE as f64 - 1.0) / 2.0;
            (0..d)
                .map(|i| {
                    let (x, y) = ((i % SIDE) as f64 - c, (i / SIDE) as f64 - c);
                    0.5 * (-(x * x + y * y) / (2.0 * 36.0)).exp()
                })
                .collect()
        };
        Ok(Linear {
            config,
            basis,
            sigmas,
            mean,
        })
    }

    /// Dimension D of a sample.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Per-pixel MSE of the best rank-k linear reconstruction, against the noisy input
    /// ((Σ_{j>k} σ_j² + (D−k)σ_n²)/D) or against the clean target ((Σ_{j>k} σ_j² + kσ_n²)/D).
    pub fn rank_k_mse(&self, k: usize, against_clean: bool) -> f64 {
        let d = self.dim() as f64;
        let tail: f64 = self.sigmas.iter().skip(k).map(|s| s * s).sum();
        let sn2 = self.config.sigma_n.powi(2);
        let k = k.min(self.sigmas.len()) as f64;
        if against_clean {
            (tail + k * sn2) / d
        } else {
            (tail + (d - k) * sn2) / d
        }
    }
}

impl Simulator for Linear {
    fn name(&self) -> &'static str {
        if self.config.one_d {
            "toy-linear-1d"
        } else {
            "toy-linear"
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample {
        let d = self.dim();
        let z: Vec<f64> = (0..self.sigmas.len())
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let mut clean = self.mean.clone();
        for ((b, s), zk) in self.basis.iter().zip(&self.sigmas).zip(&z) {
            clean.iter_mut().zip(b).for_each(|(x, p)| *x += s * zk * p);
        }
        let image: Vec<f32> = clean
            .iter()
            .map(|&x| (x + self.config.sigma_n * rng.sample::<f64, _>(StandardNormal)) as f32)
            .collect();
        let params = z
            .iter()
            .enumerate()
            .map(|(k, &v)| (format!("z{:02}", k + 1), v))
            .collect();
        let (nx, ny) = if self.config.one_d {
            (d, 1)
        } else {
            (SIDE, SIDE)
        };
        Sample {
            nx,
            ny,
            image,
            clean: clean.iter().map(|&x| x as f32).collect(),
            params,
            maps: BTreeMap::new(),
            masks: BTreeMap::new(),
            catalog: Catalog::default(),
        }
    }
}

/// Noise of the blob toy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BlobNoise {
    Gaussian {
        sigma: f64,
    },
    /// Poisson with `scale` photons at intensity 1.
    Poisson {
        scale: f64,
    },
}

/// The blob toy.
pub struct Blobs {
    pub noise: BlobNoise,
}

impl Blobs {
    pub fn new(noise: BlobNoise) -> Result<Blobs, SimError> {
        let ok = match noise {
            BlobNoise::Gaussian { sigma } => sigma >= 0.0 && sigma.is_finite(),
            BlobNoise::Poisson { scale } => scale > 0.0 && scale.is_finite(),
        };
        if !ok {
            return Err(SimError::Invalid {
                name: "noise",
                why: format!("{noise:?}"),
            });
        }
        Ok(Blobs { noise })
    }
}

impl Default for Blobs {
    fn default() -> Self {
        Blobs {
            noise: BlobNoise::Gaussian { sigma: 0.02 },
        }
    }
}

impl Simulator for Blobs {
    fn name(&self) -> &'static str {
        "toy-blobs"
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample {
        let x0 = rng.random_range(-7.0..7.0);
        let y0 = rng.random_range(-4.0..4.0);
        let width = rng.random_range(1.5..3.5);
        let amp = rng.random_range(0.6..1.0);
        let q = rng.random_range(0.6..1.0);
        let angle = rng.random_range(0.0..PI);
        let (ca, sa) = (angle.cos(), angle.sin());
        let c = (SIDE as f64 - 1.0) / 2.0;
        let mut clean = vec![0.0f64; SIDE * SIDE];
        for r in 0..SIDE {
            for col in 0..SIDE {
                let mut s = 0.0;
                for j in 0..4 {
                    for i in 0..4 {
                        let dx = col as f64 - c - 0.375 + 0.25 * i as f64 - x0;
                        let dy = r as f64 - c - 0.375 + 0.25 * j as f64 - y0;
                        let u = (dx * ca + dy * sa) / width;
                        let v = (-dx * sa + dy * ca) / (q * width);
                        s += (-0.5 * (u * u + v * v)).exp();
                    }
                }
                clean[r * SIDE + col] = (amp * s / 16.0).clamp(0.0, 1.0);
            }
        }
        let image: Vec<f32> = match self.noise {
            BlobNoise::Gaussian { sigma } => {
                let g = Normal::new(0.0, sigma).unwrap();
                clean.iter().map(|&x| (x + g.sample(rng)) as f32).collect()
            }
            BlobNoise::Poisson { scale } => clean
                .iter()
                .map(|&x| (crate::noise::poisson(rng, x * scale) / scale) as f32)
                .collect(),
        };
        let mut params = BTreeMap::new();
        for (k, v) in [
            ("x", x0),
            ("y", y0),
            ("width", width),
            ("amplitude", amp),
            ("axis_ratio", q),
            ("angle", angle),
        ] {
            params.insert(k.to_string(), v);
        }
        let mut masks = BTreeMap::new();
        masks.insert(
            "blob".into(),
            clean.iter().map(|&v| v > 0.1 * amp).collect(),
        );
        Sample {
            nx: SIDE,
            ny: SIDE,
            image,
            clean: clean.iter().map(|&x| x as f32).collect(),
            params,
            maps: BTreeMap::new(),
            masks,
            catalog: Catalog::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;
    use nalgebra::{DMatrix, SymmetricEigen};

    fn eigenvalues(samples: &[Sample], d: usize) -> Vec<f64> {
        let n = samples.len();
        let mut mean = vec![0.0; d];
        for s in samples {
            mean.iter_mut()
                .zip(&s.image)
                .for_each(|(m, &x)| *m += x as f64 / n as f64);
        }
        let mut cov = DMatrix::<f64>::zeros(d, d);
        let mut row = vec![0.0; d];
        for s in samples {
            row.iter_mut()
                .zip(&s.image)
                .zip(&mean)
                .for_each(|((r, &x), m)| *r = x as f64 - m);
            for i in 0..d {
                for j in i..d {
                    cov[(i, j)] += row[i] * row[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                cov[(i, j)] /= (n - 1) as f64;
                cov[(j, i)] = cov[(i, j)];
            }
        }
        let mut ev: Vec<f64> = SymmetricEigen::new(cov)
            .eigenvalues
            .iter()
            .copied()
            .collect();
        ev.sort_by(|a, b| b.total_cmp(a));
        ev
    }

    #[test]
    fn bases_are_orthonormal() {
        for one_d in [false, true] {
            let t = Linear::new(LinearConfig {
                one_d,
                ..Default::default()
            })
            .unwrap();
            for (i, a) in t.basis.iter().enumerate() {
                for (j, b) in t.basis.iter().enumerate() {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot(a, b) - want).abs() < 1e-10);
                }
            }
        }
    }

    #[test]
    fn pca_spectrum_matches_the_designed_variances() {
        // In 784 dimensions with 1e4 samples, noise eigenvalues spread up to (1+√(D/n))²σ_n² =
        // 1.6σ_n² (Marchenko–Pastur) and push the weakest modes up by ~10 %, so the 2-D check
        // runs noiseless; the 1-D one (D/n = 0.006) keeps σ_n = 0.01.
        for (one_d, sigma_n) in [(true, 0.01), (false, 0.0)] {
            let t = Linear::new(LinearConfig {
                one_d,
                sigma_n,
                ..Default::default()
            })
            .unwrap();
            let samples = generate(&t, 1, 0, 10_000);
            let ev = eigenvalues(&samples, t.dim());
            let sn2 = t.config.sigma_n.powi(2);
            for (k, s) in t.sigmas.iter().enumerate() {
                let want = s * s + sn2;
                assert!(
                    (ev[k] / want - 1.0).abs() < 0.05,
                    "1d={one_d} λ{k} {} vs {want}",
                    ev[k]
                );
            }
            // The rest is white noise at σ_n².
            assert!((ev[t.sigmas.len() + 2] - sn2).abs() < 0.25 * sn2 + 1e-9);
        }
    }

    #[test]
    fn rank_k_errors_follow_the_formula() {
        let t = Linear::new(LinearConfig {
            one_d: true,
            ..Default::default()
        })
        .unwrap();
        let samples = generate(&t, 2, 0, 2000);
        for k in [0, 1, 4, 8] {
            // Project on the first k true modes: error against the noisy input.
            let mut se = 0.0;
            for s in &samples {
                let x: Vec<f64> = s
                    .image
                    .iter()
                    .zip(&t.mean)
                    .map(|(&v, m)| v as f64 - m)
                    .collect();
                let mut rec = vec![0.0; x.len()];
                for b in t.basis.iter().take(k) {
                    let p = dot(&x, b);
                    rec.iter_mut().zip(b).for_each(|(r, v)| *r += p * v);
                }
                se += x
                    .iter()
                    .zip(&rec)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>();
            }
            let mse = se / (samples.len() * t.dim()) as f64;
            let want = t.rank_k_mse(k, false);
            assert!((mse / want - 1.0).abs() < 0.05, "k={k}: {mse} vs {want}");
        }
    }

    #[test]
    fn blobs_have_factors_masks_and_noise() {
        let b = Blobs::default();
        let s = generate(&b, 3, 0, 50);
        for x in &s {
            assert!(x.clean.iter().all(|&v| (0.0..=1.0).contains(&v)));
            let peak = x.clean.iter().cloned().fold(0.0, f32::max) as f64;
            assert!(peak <= x.params["amplitude"] + 1e-6 && peak > 0.5 * x.params["amplitude"]);
            assert!(x.masks["blob"].iter().any(|&m| m));
            let res: f64 = x
                .image
                .iter()
                .zip(&x.clean)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let sd = (res / x.image.len() as f64).sqrt();
            assert!((sd / 0.02 - 1.0).abs() < 0.1);
        }
        let p = Blobs::new(BlobNoise::Poisson { scale: 100.0 }).unwrap();
        let s = generate(&p, 3, 0, 5);
        assert!(s.iter().all(|x| x
            .image
            .iter()
            .all(|&v| (v * 100.0 - (v * 100.0).round()).abs() < 1e-3)));
        assert!(Blobs::new(BlobNoise::Poisson { scale: 0.0 }).is_err());
    }
}
