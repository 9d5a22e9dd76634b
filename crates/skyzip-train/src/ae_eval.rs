//! Held-out scores of an autoencoder on its test set (`data.test`): MSE, SSIM and MS-SSIM of the
//! reconstructions, and — for a model whose decoder also sees encoder feature maps (a U-Net's
//! skips) — the same with those maps zeroed, which is what the code alone carries; plus a latent
//! traversal (each code number swept over its test-set range and decoded, or for a spatial code
//! the code moved along its principal directions).

use crate::config::{DataSource, Experiment};
use crate::{build_dataset, TrainError};
use serde::Serialize;
use skyzip_data::Dataset;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::loss::{ms_ssim, mse, ssim};
use skyzip_nn::model::{Code, Model, ModelConfig};
use std::path::Path;

/// Reconstruction scores over a test set (means over images).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quality {
    pub mse: f64,
    pub ssim: f64,
    /// MS-SSIM over as many scales as the images allow (up to 5).
    pub ms_ssim: f64,
    pub ms_ssim_levels: usize,
}

/// What `evaluate` reports about an autoencoder run.
#[derive(Debug, Clone, Serialize)]
pub struct AeEvaluation {
    pub run: String,
    pub model: String,
    pub parameters: usize,
    pub epochs: usize,
    pub training_items: usize,
    pub test_items: usize,
    pub test_seed: u64,
    /// Numbers in the code, and numbers the decoder also sees beside it per image.
    pub code_values: usize,
    pub side_channel_values: usize,
    /// With everything the decoder sees.
    pub quality: Quality,
    /// With the skip maps zeroed (the code alone); None for models without them.
    pub code_only: Option<Quality>,
}

fn levels(side: usize) -> usize {
    (1..=5)
        .rev()
        .find(|&l| side >= skyzip_nn::loss::SSIM_WIN << (l - 1))
        .unwrap_or(1)
}

/// The test set of an experiment: its simulator drawn with another seed, prepared as in training.
pub fn test_set(exp: &Experiment, seed: u64, n: usize) -> Result<Dataset, TrainError> {
    let mut t = exp.clone();
    match &mut t.data.source {
        DataSource::Simulator {
            n: tn, seed: ts, ..
        } => (*tn, *ts) = (n, seed),
        _ => {
            return Err(TrainError::Config(
                "evaluate draws its test set from a simulator (data.source)".into(),
            ))
        }
    }
    build_dataset(&t)
}

fn score(model: &Model, ds: &Dataset, device: &Device, zero: bool) -> Quality {
    let lv = levels(ds.nx.min(ds.ny));
    let (mut m, mut s, mut ms, mut n) = (0.0, 0.0, 0.0, 0usize);
    let idx: Vec<usize> = (0..ds.len()).collect();
    for b in ds.batches(&idx, 16, 0, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let y = skyzip_nn::image_tensor(&b.y, b.n, b.ny, b.nx, device);
        let mut z = model.encode(x);
        if zero {
            z = z.without_skips();
        }
        let out = model.decode(z, None);
        let w = b.n as f64;
        m += mse(out.clone(), y.clone()).into_scalar::<f32>() as f64 * w;
        s += ssim(out.clone(), y.clone(), 1.0).into_scalar::<f32>() as f64 * w;
        ms += ms_ssim(out, y, 1.0, lv).into_scalar::<f32>() as f64 * w;
        n += b.n;
    }
    let n = n.max(1) as f64;
    Quality {
        mse: m / n,
        ssim: s / n,
        ms_ssim: ms / n,
        ms_ssim_levels: lv,
    }
}

/// The code of every image of `ds`, flattened (a U-Net's skip maps left out).
pub(crate) fn codes(model: &Model, ds: &Dataset, device: &Device) -> Vec<Vec<f32>> {
    let idx: Vec<usize> = (0..ds.len()).collect();
    let mut out = Vec::new();
    for b in ds.batches(&idx, 16, 0, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let z = model.encode(x).flat();
        let d = z.dims()[1];
        let v = z.into_data().try_to_vec::<f32>().unwrap_or_default();
        out.extend(v.chunks(d).map(|c| c.to_vec()));
    }
    out
}

/// A traversal grid for test image `item`: row k sweeps code number k over `steps` values from
/// its test-set minimum to maximum (the others kept), decoded with the skips zeroed.
pub fn traversal(
    model: &Model,
    ds: &Dataset,
    item: usize,
    steps: usize,
    device: &Device,
    path: &Path,
) -> Result<(), TrainError> {
    let all = codes(model, ds, device);
    let d = all.first().map(Vec::len).unwrap_or(0);
    let x = skyzip_nn::image_tensor(ds.input(item), 1, ds.ny, ds.nx, device);
    let skips = match model.encode(x).without_skips() {
        Code::Unet(_, s) => Some(s),
        _ => None,
    };
    let mut images: Vec<Vec<f32>> = Vec::new();
    for k in 0..d {
        let lo = all.iter().map(|c| c[k]).fold(f32::INFINITY, f32::min);
        let hi = all.iter().map(|c| c[k]).fold(f32::NEG_INFINITY, f32::max);
        for j in 0..steps {
            let mut c = all[item].clone();
            c[k] = lo + (hi - lo) * j as f32 / (steps - 1).max(1) as f32;
            let z = Tensor::from_data(TensorData::new(c, [1, d]), device);
            let code = match &skips {
                Some(s) => Code::Unet(z, s.clone()),
                None => Code::Dense(z),
            };
            images.push(decoded(model, code));
        }
    }
    traversal_grid(ds, &images, steps, path)
}

fn decoded(model: &Model, code: Code) -> Vec<f32> {
    model
        .decode(code, None)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

/// The decoded images as a grid of `steps` columns, linear stretch.
fn traversal_grid(
    ds: &Dataset,
    images: &[Vec<f32>],
    steps: usize,
    path: &Path,
) -> Result<(), TrainError> {
    let tiles: Vec<skyzip_plot::Tile> = images
        .iter()
        .map(|v| skyzip_plot::Tile {
            nx: ds.nx,
            ny: ds.ny,
            data: v,
        })
        .collect();
    skyzip_plot::image_grid(path, &tiles, steps, 96, skyzip_plot::Stretch::Linear)
        .map_err(|e| crate::io(path, e))
}

/// A traversal grid for a model with a spatial code (conv-ae, VAE, VQ-VAE, pixel-ae), whose
/// thousands of numbers cannot be swept one by one: row k moves test image `item`'s code along
/// the k-th principal direction of the test set's codes, from −2 to +2 standard deviations of
/// that component, and decodes it. A VQ-VAE's moved code is quantised again (each vector to its
/// nearest codebook entry) before decoding, so every tile is an image its discrete code can
/// express.
pub fn pc_traversal(
    model: &Model,
    ds: &Dataset,
    item: usize,
    components: usize,
    steps: usize,
    device: &Device,
    path: &Path,
) -> Result<(), TrainError> {
    let x = skyzip_nn::image_tensor(ds.input(item), 1, ds.ny, ds.nx, device);
    let Code::Conv(z0) = model.encode(x) else {
        return Ok(());
    };
    let dims = z0.dims();
    let all: Vec<Vec<f64>> = codes(model, ds, device)
        .into_iter()
        .map(|c| c.into_iter().map(f64::from).collect())
        .collect();
    let (n, d) = (all.len(), all.first().map_or(0, Vec::len));
    if n < 2 || d == 0 {
        return Ok(());
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| all.iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let c: Vec<Vec<f64>> = all
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(a, m)| a - m).collect())
        .collect();
    // Principal directions from the n×n Gram matrix: v = Cᵀu/√λ, standard deviation √(λ/n).
    let g = nalgebra::DMatrix::from_fn(n, n, |i, j| {
        c[i].iter().zip(&c[j]).map(|(a, b)| a * b).sum::<f64>()
    });
    let eig = nalgebra::SymmetricEigen::new(g);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let z0: Vec<f32> = z0.into_data().try_to_vec::<f32>().unwrap_or_default();
    let mut images: Vec<Vec<f32>> = Vec::new();
    for &e in order.iter().take(components.min(n)) {
        let lam = eig.eigenvalues[e].max(0.0);
        let u = eig.eigenvectors.column(e);
        let mut v = vec![0.0; d];
        for (i, ci) in c.iter().enumerate() {
            v.iter_mut().zip(ci).for_each(|(a, b)| *a += u[i] * b);
        }
        let norm = lam.sqrt().max(1e-300);
        let sd = (lam / n as f64).sqrt();
        for j in 0..steps {
            let t = -2.0 + 4.0 * j as f64 / (steps - 1).max(1) as f64;
            let moved: Vec<f32> = z0
                .iter()
                .zip(&v)
                .map(|(&a, &b)| (a as f64 + t * sd * b / norm) as f32)
                .collect();
            let mut z = Tensor::from_data(TensorData::new(moved, dims), device);
            if let Some(cb) = &model.codebook {
                let [b, _, h, w] = dims;
                z = cb.lookup(cb.nearest_of(z), b, h, w);
            }
            images.push(decoded(model, Code::Conv(z)));
        }
    }
    traversal_grid(ds, &images, steps, path)
}

/// Scores an autoencoder run (its best weights) on `n` test maps drawn with `seed`; with
/// `plots`, writes `traversal.png` there.
pub fn evaluate(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
    plots: Option<&Path>,
) -> Result<AeEvaluation, TrainError> {
    let model = crate::load_best(run, mcfg, device)?;
    let test = test_set(exp, seed, n)?;
    mcfg.check_shape(test.ny, test.nx)
        .map_err(TrainError::Config)?;
    let quality = score(&model, &test, device, false);
    let side = mcfg.side_channel_values();
    let code_only = (side > 0).then(|| score(&model, &test, device, true));
    if let Some(dir) = plots {
        if matches!(
            mcfg.net(),
            ModelConfig::DenseAe { .. }
                | ModelConfig::BottleneckAe { .. }
                | ModelConfig::UnetAe { .. }
        ) {
            traversal(&model, &test, 0, 7, device, &dir.join("traversal.png"))?;
        } else if matches!(mcfg, ModelConfig::VqVae { .. } | ModelConfig::Vae { .. }) {
            pc_traversal(&model, &test, 0, 4, 7, device, &dir.join("traversal.png"))?;
        }
    }
    Ok(AeEvaluation {
        run: run.display().to_string(),
        model: mcfg.name(),
        parameters: model.num_params(),
        epochs: crate::read_history(run).len(),
        training_items: crate::training_items(run, exp),
        test_items: test.len(),
        test_seed: seed,
        code_values: mcfg.latent(),
        side_channel_values: side,
        quality,
        code_only,
    })
}
