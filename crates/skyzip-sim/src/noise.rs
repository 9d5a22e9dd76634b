//! Noise models for denoising tasks (applied to a clean image) and stacking of realisations.

use crate::SimError;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

/// Poisson draw that accepts λ = 0.
pub fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> f64 {
    if lambda > 0.0 {
        Poisson::new(lambda).map(|p| p.sample(rng)).unwrap_or(0.0)
    } else {
        0.0
    }
}

fn clipped(v: f32, clip: bool) -> f32 {
    if clip {
        v.clamp(0.0, 1.0)
    } else {
        v
    }
}

/// How a clean image is corrupted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// Additive Gaussian noise of standard deviation σ (clipped to [0, 1] after, with `clip`, as
    /// seed 003's `torch.clamp` on max-normalised maps).
    Gaussian { sigma: f64, clip: bool },
    /// Poisson counts of `scale`·x, divided back by `scale` (photon noise at a given exposure);
    /// `clip` as for Gaussian.
    Poisson { scale: f64, clip: bool },
    /// A fraction of pixels set to 0.
    Masked { fraction: f64 },
    /// A fraction of pixels set to the image minimum or maximum (half each).
    SaltPepper { fraction: f64 },
}

impl Noise {
    /// Parses `gaussian:SIGMA`, `poisson:SCALE`, `masked:FRACTION`, `saltpepper:FRACTION`;
    /// `gaussian:SIGMA:clip` and `poisson:SCALE:clip` clip the result to [0, 1].
    pub fn parse(spec: &str) -> Result<Noise, SimError> {
        let (body, clip) = match spec.strip_suffix(":clip") {
            Some(b) => (b, true),
            None => (spec, false),
        };
        let (kind, value) = body.split_once(':').unwrap_or((body, ""));
        let v: f64 = value.parse().map_err(|_| SimError::Invalid {
            name: "noise",
            why: format!("'{spec}': expected KIND:VALUE, e.g. gaussian:0.1"),
        })?;
        let n = match kind {
            "gaussian" => Noise::Gaussian { sigma: v, clip },
            "poisson" => Noise::Poisson { scale: v, clip },
            _ if clip => {
                return Err(SimError::Invalid {
                    name: "noise",
                    why: format!("'{spec}': only gaussian and poisson noise take :clip"),
                })
            }
            "masked" => Noise::Masked { fraction: v },
            "saltpepper" | "salt-pepper" => Noise::SaltPepper { fraction: v },
            _ => {
                return Err(SimError::Invalid {
                    name: "noise",
                    why: format!("unknown kind '{kind}' (gaussian, poisson, masked, saltpepper)"),
                })
            }
        };
        n.validate()?;
        Ok(n)
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |why: &str| {
            Err(SimError::Invalid {
                name: "noise",
                why: why.into(),
            })
        };
        match *self {
            Noise::Gaussian { sigma, .. } if !(sigma >= 0.0 && sigma.is_finite()) => {
                bad("σ must be ≥ 0")
            }
            Noise::Poisson { scale, .. } if !(scale > 0.0 && scale.is_finite()) => {
                bad("scale must be > 0")
            }
            Noise::Masked { fraction } | Noise::SaltPepper { fraction }
                if !(0.0..=1.0).contains(&fraction) =>
            {
                bad("fraction must be in [0, 1]")
            }
            _ => Ok(()),
        }
    }

    /// A noisy copy of `clean`.
    pub fn apply(&self, clean: &[f32], rng: &mut ChaCha8Rng) -> Vec<f32> {
        match *self {
            Noise::Gaussian { sigma, clip } => {
                let n = Normal::new(0.0, sigma).expect("validated σ");
                clean
                    .iter()
                    .map(|&x| clipped(x + n.sample(rng) as f32, clip))
                    .collect()
            }
            Noise::Poisson { scale, clip } => clean
                .iter()
                .map(|&x| {
                    clipped(
                        (poisson(rng, x.max(0.0) as f64 * scale) / scale) as f32,
                        clip,
                    )
                })
                .collect(),
            Noise::Masked { fraction } => clean
                .iter()
                .map(|&x| {
                    if rng.random::<f64>() < fraction {
                        0.0
                    } else {
                        x
                    }
                })
                .collect(),
            Noise::SaltPepper { fraction } => {
                let lo = clean.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = clean.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                clean
                    .iter()
                    .map(|&x| {
                        if rng.random::<f64>() < fraction {
                            if rng.random::<bool>() {
                                hi
                            } else {
                                lo
                            }
                        } else {
                            x
                        }
                    })
                    .collect()
            }
        }
    }

    /// The mean of `n` independent noisy realisations (noise falls as 1/√n for additive noise).
    pub fn stack(&self, clean: &[f32], n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        let mut acc = vec![0.0f64; clean.len()];
        for _ in 0..n.max(1) {
            for (a, v) in acc.iter_mut().zip(self.apply(clean, rng)) {
                *a += v as f64;
            }
        }
        acc.iter().map(|a| (a / n.max(1) as f64) as f32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_rng;

    #[test]
    fn noise_models_have_their_statistics() {
        let clean = vec![20.0f32; 100_000];
        let mut rng = sample_rng(1, 0);
        let g = Noise::Gaussian {
            sigma: 2.0,
            clip: false,
        }
        .apply(&clean, &mut rng);
        let var = g.iter().map(|&x| ((x - 20.0) as f64).powi(2)).sum::<f64>() / g.len() as f64;
        assert!((var.sqrt() - 2.0).abs() < 0.03);
        let p = Noise::Poisson {
            scale: 1.0,
            clip: false,
        }
        .apply(&clean, &mut rng);
        let m = p.iter().map(|&x| x as f64).sum::<f64>() / p.len() as f64;
        let v = p.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / p.len() as f64;
        assert!(
            (m - 20.0).abs() < 0.1 && (v / m - 1.0).abs() < 0.03,
            "{m} {v}"
        );
        let ramp: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let k = Noise::Masked { fraction: 0.5 }.apply(&ramp, &mut rng);
        let zeros = k.iter().filter(|&&x| x == 0.0).count() as f64 / 1e5;
        assert!((zeros - 0.5).abs() < 0.01);
        let s = Noise::SaltPepper { fraction: 0.5 }.apply(&ramp, &mut rng);
        let ext = s.iter().zip(&ramp).filter(|(a, b)| a != b).count() as f64 / 1e5;
        assert!((ext - 0.5).abs() < 0.01);
        let st = Noise::Gaussian {
            sigma: 2.0,
            clip: false,
        }
        .stack(&clean, 16, &mut rng);
        let sv = st.iter().map(|&x| ((x - 20.0) as f64).powi(2)).sum::<f64>() / st.len() as f64;
        assert!((sv.sqrt() - 0.5).abs() < 0.02);
    }

    #[test]
    fn bad_noise_specs_are_refused() {
        for s in [
            "gaussian:-1",
            "poisson:0",
            "masked:1.5",
            "fog:1",
            "gaussian",
        ] {
            assert!(Noise::parse(s).is_err(), "{s}");
        }
        assert_eq!(
            Noise::parse("masked:0.5").unwrap(),
            Noise::Masked { fraction: 0.5 }
        );
    }
}
