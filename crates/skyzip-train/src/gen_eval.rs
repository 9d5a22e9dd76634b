//! What a VAE's or a VQ-VAE's code holds, ready to be entropy-coded into real bytes.
//!
//! The images are taken as 8-bit integers (round(255·x) of the min-max-normalised map, as
//! MiraBest's PNGs are), so "bits per pixel" has one meaning for every row: the bytes of a
//! stream that decodes, per 8-bit pixel. This module computes the integers a coder needs — a
//! VQ-VAE's indices with the training set's index frequencies, a VAE's posterior means
//! quantised per latent group — and the decoder's reconstruction of exactly those integers;
//! `skyzip evaluate` codes them with the codec's range coder (`skyzip_codec::latent_code`).
//! Beside the real bytes it reports what the seeds could have meant by bits per dimension: a
//! VAE's KL rate and its negative ELBO under a discretised Gaussian likelihood.

use crate::ae_eval::test_set;
use crate::config::Experiment;
use crate::{build_dataset, TrainError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use skyzip_data::Dataset;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::loss::ssim;
use skyzip_nn::model::{Model, ModelConfig};
use std::path::Path;

/// One test image as integers.
#[derive(Debug, Clone)]
pub struct CodedImage {
    /// The symbols to code: indices (VQ) or quantised latent numbers (VAE, coded groups only).
    pub symbols: Vec<i64>,
    /// The 8-bit image.
    pub target: Vec<i64>,
    /// The decoder's 8-bit reconstruction from exactly `symbols`.
    pub recon: Vec<i64>,
}

/// A lossy operating point: the symbols of every test image and their reconstructions.
#[derive(Debug, Clone)]
pub struct Operating {
    /// What was varied to get this point (a VAE's step factor; 1 for a VQ-VAE).
    pub step_factor: f64,
    /// Per symbol position, its quantisation step (VAE) — empty for a VQ-VAE.
    pub steps: Vec<f64>,
    pub images: Vec<CodedImage>,
    /// SSIM of the 8-bit reconstructions (mean over images).
    pub ssim: f64,
}

/// Per latent group (a dense unit, a conv channel): mean KL over the test images, in nats.
#[derive(Debug, Clone, Serialize)]
pub struct VaeStats {
    /// Σ over the group's numbers, mean over images.
    pub kl_per_group: Vec<f64>,
    /// Groups whose KL per number exceeds 0.01 nats ("active units").
    pub active_groups: usize,
    /// KL rate in bits per pixel (the rate term of the ELBO).
    pub kl_bpp: f64,
    /// Negative ELBO in bits per 8-bit pixel: KL + the reconstruction's NLL under a Gaussian
    /// of the decoder's σ discretised into the 256 levels (one posterior sample per image).
    pub nelbo_bpp: f64,
    /// The σ of that likelihood (learned, or √MSE for a `likelihood: loss` model).
    pub sigma: f64,
    pub sigma_learned: bool,
}

/// Everything `skyzip evaluate` needs to code a generative autoencoder's test set.
pub struct GenCodes {
    pub kind: &'static str,
    /// VQ-VAE: K and the training set's index counts.
    pub codebook: usize,
    pub counts: Vec<u64>,
    /// Symbols per image and pixels per image, image width.
    pub symbols_per_image: usize,
    pub pixels: usize,
    pub width: usize,
    pub points: Vec<Operating>,
    pub vae: Option<VaeStats>,
}

fn to_u8(v: &[f32]) -> Vec<i64> {
    v.iter()
        .map(|&x| (x.clamp(0.0, 1.0) * 255.0).round() as i64)
        .collect()
}

fn ints(t: Tensor<1, Int>) -> Vec<i64> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default()
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

fn all(ds: &Dataset) -> Vec<usize> {
    (0..ds.len()).collect()
}

/// SSIM of 8-bit reconstructions against 8-bit targets (on [0, 1]).
fn ssim_u8(images: &[CodedImage], ny: usize, nx: usize, device: &Device) -> f64 {
    let mut s = 0.0;
    for im in images {
        let t = |v: &[i64]| {
            let f: Vec<f32> = v.iter().map(|&x| x as f32 / 255.0).collect();
            skyzip_nn::image_tensor(&f, 1, ny, nx, device)
        };
        s += ssim(t(&im.recon), t(&im.target), 1.0).into_scalar::<f32>() as f64;
    }
    s / images.len().max(1) as f64
}

/// The VQ-VAE's indices of every image of `ds`, per image.
fn vq_indices(model: &Model, ds: &Dataset, device: &Device) -> (Vec<Vec<i64>>, [usize; 2]) {
    let mut out = Vec::new();
    let mut hw = [0, 0];
    for b in ds.batches(&all(ds), 16, 0, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let (idx, s) = model.vq_indices(x).expect("a vq-vae");
        hw = s;
        let v = ints(idx);
        out.extend(v.chunks(s[0] * s[1]).map(|c| c.to_vec()));
    }
    (out, hw)
}

fn vq_codes(model: &Model, train: &Dataset, test: &Dataset, k: usize, device: &Device) -> GenCodes {
    let mut counts = vec![0u64; k];
    let (train_idx, _) = vq_indices(model, train, device);
    train_idx
        .iter()
        .flatten()
        .for_each(|&i| counts[i as usize] += 1);
    let (test_idx, hw) = vq_indices(model, test, device);
    let mut images = Vec::new();
    for (i, idx) in test_idx.into_iter().enumerate() {
        let t = Tensor::<1, Int>::from_data(TensorData::new(idx.clone(), [idx.len()]), device);
        let recon = floats(model.decode_indices(t, 1, hw));
        images.push(CodedImage {
            symbols: idx,
            target: to_u8(test.target(i)),
            recon: to_u8(&recon),
        });
    }
    let ssim = ssim_u8(&images, test.ny, test.nx, device);
    GenCodes {
        kind: "vq-indices",
        codebook: k,
        counts,
        symbols_per_image: hw[0] * hw[1],
        pixels: test.nx * test.ny,
        width: test.nx,
        points: vec![Operating {
            step_factor: 1.0,
            steps: vec![],
            images,
            ssim,
        }],
        vae: None,
    }
}

/// Per image of `ds`: the posterior mean and standard deviation, flattened.
fn posteriors(model: &Model, ds: &Dataset, device: &Device) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut out = Vec::new();
    for b in ds.batches(&all(ds), 16, 0, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let p = model.posterior(x).expect("a vae");
        let m = floats(p.mean.flat());
        let s = floats(p.log_var.flat().mul_scalar(0.5).exp());
        let d = m.len() / b.n;
        for (a, c) in m.chunks(d).zip(s.chunks(d)) {
            out.push((a.to_vec(), c.to_vec()));
        }
    }
    out
}

fn kl(m: f32, s: f32) -> f64 {
    let (m, s) = (m as f64, s as f64);
    0.5 * (m * m + s * s - 1.0 - 2.0 * s.max(1e-30).ln())
}

/// −log2 P(level | μ, σ) of an 8-bit level under a Gaussian discretised into the 256 levels
/// (bins of 1/255; the end bins take the tails).
fn level_bits(level: i64, mu: f64, sigma: f64) -> f64 {
    let d = 0.5 / 255.0;
    let x = level as f64 / 255.0;
    let hi = if level >= 255 {
        1.0
    } else {
        normal_cdf((x + d - mu) / sigma)
    };
    let lo = if level <= 0 {
        0.0
    } else {
        normal_cdf((x - d - mu) / sigma)
    };
    -((hi - lo).max(1e-300)).log2()
}

/// Φ(x) (a statistic, not a bitstream: the platform's exp is fine).
fn normal_cdf(x: f64) -> f64 {
    skyzip_eval::metrics::normal_cdf_with(x, f64::exp)
}

fn vae_codes(
    model: &Model,
    mcfg: &ModelConfig,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
) -> GenCodes {
    let px = test.nx * test.ny;
    // Steps from the training set: a group's mean posterior σ; a group coded only if active.
    let tr = posteriors(model, train, device);
    let d = tr.first().map_or(0, |(m, _)| m.len());
    // Latent groups: a dense code's units, or a conv code's channels (positions share a step).
    let groups = mcfg.latent().max(1);
    let per = d / groups;
    let group = |j: usize| j / per.max(1);
    let mut sig = vec![0.0; groups];
    let mut kl_tr = vec![0.0; groups];
    for (m, s) in &tr {
        for j in 0..d {
            sig[group(j)] += s[j] as f64;
            kl_tr[group(j)] += kl(m[j], s[j]);
        }
    }
    let n_tr = (tr.len() * per).max(1) as f64;
    sig.iter_mut()
        .for_each(|v| *v = (*v / n_tr).clamp(1e-3, 2.0));
    let active: Vec<bool> = kl_tr.iter().map(|v| v / n_tr > 0.01).collect();

    // KL and the negative ELBO on the test set.
    let te = posteriors(model, test, device);
    let mut kl_te = vec![0.0; groups];
    for (m, s) in &te {
        for j in 0..d {
            kl_te[group(j)] += kl(m[j], s[j]);
        }
    }
    kl_te.iter_mut().for_each(|v| *v /= te.len().max(1) as f64);
    let kl_total: f64 = kl_te.iter().sum();
    let (sigma, learned) = match model.likelihood_sigma() {
        Some(s) => (s, true),
        None => (f64::NAN, false),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0x656c_626f);
    let mut nll_bits = 0.0;
    let mut sq = 0.0;
    let mut samples = Vec::new();
    for (i, (m, s)) in te.iter().enumerate() {
        use rand::Rng;
        let z: Vec<f32> = m
            .iter()
            .zip(s)
            .map(|(&a, &b)| {
                let u1: f64 = rng.random::<f64>().max(1e-300);
                let u2: f64 = rng.random();
                a + b * ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        let out = decode_flat(model, mcfg, &z, [test.ny, test.nx], device);
        let y = to_u8(test.target(i));
        sq += out
            .iter()
            .zip(&y)
            .map(|(&o, &t)| (o as f64 - t as f64 / 255.0).powi(2))
            .sum::<f64>();
        samples.push((out, y));
    }
    let sigma = if learned {
        sigma
    } else {
        (sq / (te.len() * px).max(1) as f64).sqrt().max(1e-4)
    };
    for (out, y) in &samples {
        nll_bits += out
            .iter()
            .zip(y)
            .map(|(&o, &t)| level_bits(t, o as f64, sigma))
            .sum::<f64>();
    }
    let nimg = te.len().max(1) as f64;
    let stats = VaeStats {
        active_groups: kl_te
            .iter()
            .filter(|&&v| v / per.max(1) as f64 > 0.01)
            .count(),
        kl_per_group: kl_te,
        kl_bpp: kl_total / std::f64::consts::LN_2 / px as f64,
        nelbo_bpp: (kl_total / std::f64::consts::LN_2 + nll_bits / nimg) / px as f64,
        sigma,
        sigma_learned: learned,
    };

    // Operating points: posterior means quantised with steps c·σ̄ of their group; inactive
    // groups are not coded (the decoder gets the prior mean, 0).
    let coded: Vec<usize> = (0..d).filter(|&j| active[group(j)]).collect();
    let mut points = Vec::new();
    for c in [0.5, 1.0, 2.0] {
        let steps: Vec<f64> = coded.iter().map(|&j| c * sig[group(j)]).collect();
        let mut images = Vec::new();
        for (i, (m, _)) in te.iter().enumerate() {
            let q: Vec<i64> = coded
                .iter()
                .zip(&steps)
                .map(|(&j, &st)| (m[j] as f64 / st).round() as i64)
                .collect();
            let mut z = vec![0f32; d];
            for ((&j, &st), &v) in coded.iter().zip(&steps).zip(&q) {
                z[j] = (v as f64 * st) as f32;
            }
            images.push(CodedImage {
                symbols: q,
                target: to_u8(test.target(i)),
                recon: to_u8(&decode_flat(model, mcfg, &z, [test.ny, test.nx], device)),
            });
        }
        let ssim = ssim_u8(&images, test.ny, test.nx, device);
        points.push(Operating {
            step_factor: c,
            steps,
            images,
            ssim,
        });
    }
    GenCodes {
        kind: "vae-latent",
        codebook: 0,
        counts: vec![],
        symbols_per_image: coded.len(),
        pixels: px,
        width: test.nx,
        points,
        vae: Some(stats),
    }
}

/// Decodes one image's flat code of a `shape` image (a conv code is reshaped to its channels
/// × positions).
fn decode_flat(
    model: &Model,
    mcfg: &ModelConfig,
    z: &[f32],
    shape: [usize; 2],
    device: &Device,
) -> Vec<f32> {
    let t = Tensor::<2>::from_data(TensorData::new(z.to_vec(), [1, z.len()]), device);
    let code = match mcfg.net() {
        ModelConfig::ConvAe { net, .. } => {
            let dv = net.divisor();
            skyzip_nn::model::Code::Conv(t.reshape([1, net.latent, shape[0] / dv, shape[1] / dv]))
        }
        _ => skyzip_nn::model::Code::Dense(t),
    };
    floats(model.decode(code, None))
}

/// The codes of a VAE or VQ-VAE run (its best weights) on `n` test maps drawn with `seed`;
/// None for other models.
pub fn codes(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
) -> Result<Option<GenCodes>, TrainError> {
    if !matches!(mcfg, ModelConfig::Vae { .. } | ModelConfig::VqVae { .. }) {
        return Ok(None);
    }
    let model = crate::load_best(run, mcfg, device)?;
    let train = build_dataset(exp)?;
    let test = test_set(exp, seed, n)?;
    Ok(Some(match mcfg {
        ModelConfig::VqVae { codebook, .. } => vq_codes(&model, &train, &test, *codebook, device),
        _ => vae_codes(&model, mcfg, &train, &test, device),
    }))
}
