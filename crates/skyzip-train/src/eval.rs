//! Held-out evaluation: loss, MSE, Gaussian NLL and calibration, and the error curve over η.

use crate::config::Experiment;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skyzip_data::Dataset;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::loss::{gaussian_nll, mse};
use skyzip_nn::model::{Model, ModelConfig};
use skyzip_sim::noise::Noise;

/// Scores of a model on a set of items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// The experiment's loss.
    pub loss: f64,
    pub mse: f64,
    /// Gaussian NLL (meanvar only): mean of log σ² + (x − μ)²/σ².
    pub nll: Option<f64>,
    /// Calibration (meanvar only): the mean of (x − μ)²/σ², 1 for a calibrated variance.
    pub z2: Option<f64>,
}

/// A dae's corruptions, parsed from its config: one noise model, or several separated by `|`
/// (each image then gets one of them at random, the seed's "mixed" model).
pub fn dae_noise(mcfg: &ModelConfig) -> Result<Option<Vec<Noise>>, String> {
    mcfg.noise()
        .map(|s| {
            s.split('|')
                .map(|p| Noise::parse(p.trim()).map_err(|e| format!("model.noise: {e}")))
                .collect()
        })
        .transpose()
}

/// Corrupts each of the `n` images of a batch with the dae noise (fresh draws from `rng`);
/// returns which of the noise models each image got.
pub fn corrupt(x: &mut [f32], n: usize, noise: &[Noise], rng: &mut ChaCha8Rng) -> Vec<usize> {
    use rand::Rng;
    let per = x.len() / n.max(1);
    let mut kinds = Vec::with_capacity(n);
    for img in x.chunks_mut(per.max(1)) {
        let k = if noise.len() > 1 {
            rng.random_range(0..noise.len())
        } else {
            0
        };
        let noisy = noise[k].apply(img, rng);
        img.copy_from_slice(&noisy);
        kinds.push(k);
    }
    kinds
}

/// Scores of `model` on the items `idx` with the first `eta` latent channels/units (None = all).
/// A dae is scored on inputs corrupted by a fixed noise draw, so epochs compare like with like.
pub fn evaluate(
    model: &Model,
    mcfg: &ModelConfig,
    ds: &Dataset,
    idx: &[usize],
    exp: &Experiment,
    device: &Device,
    eta: Option<usize>,
) -> Scores {
    let noise = dae_noise(mcfg).ok().flatten();
    let mut rng = ChaCha8Rng::seed_from_u64(exp.seed ^ 0x7661_6c69_6420);
    let (mut loss, mut sq, mut nll, mut z2) = (0.0, 0.0, 0.0, 0.0);
    let mut n = 0usize;
    for mut b in ds.batches(idx, exp.batch_size, exp.seed, 0, false, false) {
        if let Some(noise) = &noise {
            corrupt(&mut b.x, b.n, noise, &mut rng);
        }
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let y = skyzip_nn::image_tensor(&b.y, b.n, b.ny, b.nx, device);
        let (mu, var) = model.predict(x, eta, mcfg.eps());
        let w = b.n as f64;
        loss += exp.loss.forward(mu.clone(), y.clone()).into_scalar::<f32>() as f64 * w;
        sq += mse(mu.clone(), y.clone()).into_scalar::<f32>() as f64 * w;
        if let Some(v) = var {
            nll +=
                gaussian_nll(mu.clone(), v.clone(), y.clone(), 0.0).into_scalar::<f32>() as f64 * w;
            z2 += ((y - mu).powf_scalar(2.0) / v).mean().into_scalar::<f32>() as f64 * w;
        }
        n += b.n;
    }
    let n = n.max(1) as f64;
    let mv = mcfg.is_meanvar();
    Scores {
        loss: loss / n,
        mse: sq / n,
        nll: mv.then_some(nll / n),
        z2: mv.then_some(z2 / n),
    }
}

/// Scores at every η = 1…K (tunable models): the rate–distortion curve of the prefix code.
pub fn eta_curve(
    model: &Model,
    mcfg: &ModelConfig,
    ds: &Dataset,
    idx: &[usize],
    exp: &Experiment,
    device: &Device,
) -> Vec<(usize, Scores)> {
    (1..=mcfg.latent())
        .map(|k| (k, evaluate(model, mcfg, ds, idx, exp, device, Some(k))))
        .collect()
}
