//! The denoising benchmark (seed 003, part c): a trained dae beside the noisy input and the best
//! classical filter (Gaussian or median, its width tuned on the run's validation split), by MSE
//! against the clean map on a fresh test set, for each noise model the dae was trained on.

use crate::config::Experiment;
use crate::eval::{corrupt, dae_noise};
use crate::{build_dataset, TrainError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use skyzip_data::Dataset;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Model, ModelConfig};
use skyzip_sim::noise::Noise;
use std::path::Path;

/// A classical denoiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Filter {
    /// Gaussian smoothing of standard deviation σ pixels (edges reflected).
    Gaussian { sigma: f64 },
    /// The median of the k×k window (edges clamped).
    Median { size: usize },
}

/// The filters the tuning chooses from.
pub const FILTERS: [Filter; 10] = [
    Filter::Gaussian { sigma: 0.5 },
    Filter::Gaussian { sigma: 0.75 },
    Filter::Gaussian { sigma: 1.0 },
    Filter::Gaussian { sigma: 1.5 },
    Filter::Gaussian { sigma: 2.0 },
    Filter::Gaussian { sigma: 3.0 },
    Filter::Median { size: 3 },
    Filter::Median { size: 5 },
    Filter::Median { size: 7 },
    Filter::Median { size: 9 },
];

fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i - 1 } else { 2 * n - i - 1 };
    }
    i as usize
}

impl Filter {
    pub fn apply(&self, img: &[f32], nx: usize, ny: usize) -> Vec<f32> {
        match *self {
            Filter::Gaussian { sigma } => {
                let r = (3.0 * sigma).ceil() as isize;
                let w: Vec<f64> = (-r..=r)
                    .map(|d| (-((d * d) as f64) / (2.0 * sigma * sigma)).exp())
                    .collect();
                let sum: f64 = w.iter().sum();
                let w: Vec<f64> = w.iter().map(|v| v / sum).collect();
                let pass = |src: &[f32], along_x: bool| -> Vec<f32> {
                    let mut out = vec![0f32; src.len()];
                    for y in 0..ny {
                        for x in 0..nx {
                            let mut acc = 0.0;
                            for (k, wk) in w.iter().enumerate() {
                                let d = k as isize - r;
                                let (sx, sy) = if along_x {
                                    (reflect(x as isize + d, nx), y)
                                } else {
                                    (x, reflect(y as isize + d, ny))
                                };
                                acc += wk * src[sy * nx + sx] as f64;
                            }
                            out[y * nx + x] = acc as f32;
                        }
                    }
                    out
                };
                pass(&pass(img, true), false)
            }
            Filter::Median { size } => {
                let h = (size / 2) as isize;
                let mut win = Vec::with_capacity(size * size);
                let mut out = vec![0f32; img.len()];
                for y in 0..ny as isize {
                    for x in 0..nx as isize {
                        win.clear();
                        for dy in -h..=h {
                            for dx in -h..=h {
                                let sx = (x + dx).clamp(0, nx as isize - 1) as usize;
                                let sy = (y + dy).clamp(0, ny as isize - 1) as usize;
                                win.push(img[sy * nx + sx]);
                            }
                        }
                        let k = win.len() / 2;
                        win.select_nth_unstable_by(k, f32::total_cmp);
                        out[y as usize * nx + x as usize] = win[k];
                    }
                }
                out
            }
        }
    }

    pub fn label(&self) -> String {
        match *self {
            Filter::Gaussian { sigma } => format!("Gaussian σ = {sigma} px"),
            Filter::Median { size } => format!("median {size}×{size}"),
        }
    }
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// Clean targets and one fixed noisy draw of the items `idx` under `noise`.
fn noisy_set(ds: &Dataset, idx: &[usize], noise: &Noise, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0062_656e_6368);
    let mut clean = Vec::new();
    let mut noisy = Vec::new();
    for &i in idx {
        let c = ds.target(i).to_vec();
        let mut x = ds.input(i).to_vec();
        corrupt(&mut x, 1, std::slice::from_ref(noise), &mut rng);
        clean.extend(c);
        noisy.extend(x);
    }
    (clean, noisy)
}

/// One noise model's row of the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct DenoiseRow {
    pub noise: String,
    pub mse_noisy: f64,
    pub filter: Filter,
    pub filter_label: String,
    pub mse_filter: f64,
    pub mse_dae: f64,
}

/// The benchmark of one dae run.
#[derive(Debug, Clone, Serialize)]
pub struct DenoiseEvaluation {
    pub run: String,
    pub parameters: usize,
    pub epochs: usize,
    pub training_items: usize,
    pub tuning_items: usize,
    pub test_items: usize,
    pub test_seed: u64,
    pub rows: Vec<DenoiseRow>,
}

fn denoised(
    model: &Model,
    mcfg: &ModelConfig,
    x: &[f32],
    n: usize,
    ny: usize,
    nx: usize,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    let per = nx * ny;
    for chunk in x.chunks(64 * per) {
        let b = chunk.len() / per;
        let t = skyzip_nn::image_tensor(chunk, b, ny, nx, device);
        let (mu, _) = model.predict(t, None, mcfg.eps());
        out.extend(mu.into_data().try_to_vec::<f32>().unwrap_or_default());
    }
    debug_assert_eq!(out.len(), n * per);
    out
}

/// Runs the benchmark on `n` test maps drawn with `seed`; `examples` gets a PNG grid of the first
/// four (clean, noisy, filter, dae) per noise model when given.
pub fn evaluate(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
    examples: Option<&Path>,
) -> Result<DenoiseEvaluation, TrainError> {
    let noises = dae_noise(mcfg)
        .map_err(TrainError::Config)?
        .ok_or_else(|| TrainError::Config("the denoising benchmark needs a dae".into()))?;
    let specs: Vec<&str> = mcfg
        .noise()
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .collect();
    let model = crate::load_best(run, mcfg, device)?;
    // The training data's validation split tunes the filters; the test set is a fresh draw.
    let train = build_dataset(exp)?;
    let split = train.split(exp.val_fraction, exp.seed)?;
    let tune: Vec<usize> = split.val.iter().copied().take(256).collect();
    let test = crate::ae_eval::test_set(exp, seed, n)?;
    let all: Vec<usize> = (0..test.len()).collect();
    let (nx, ny) = (test.nx, test.ny);
    let mut rows = Vec::new();
    for (k, noise) in noises.iter().enumerate() {
        let (vc, vn) = noisy_set(&train, &tune, noise, exp.seed);
        let per = nx * ny;
        let score = |f: &Filter, clean: &[f32], noisy: &[f32]| {
            let out: Vec<f32> = noisy
                .chunks(per)
                .flat_map(|img| f.apply(img, nx, ny))
                .collect();
            (mse(&out, clean), out)
        };
        let best = FILTERS
            .iter()
            .min_by(|a, b| score(a, &vc, &vn).0.total_cmp(&score(b, &vc, &vn).0))
            .copied()
            .expect("filters to choose from");
        let (tc, tn) = noisy_set(&test, &all, noise, seed);
        let (mse_filter, filtered) = score(&best, &tc, &tn);
        let dae = denoised(&model, mcfg, &tn, test.len(), ny, nx, device);
        if let Some(dir) = examples {
            let show = test.len().min(4);
            let mut tiles = Vec::new();
            for i in 0..show {
                for src in [&tc, &tn, &filtered, &dae] {
                    tiles.push(skyzip_plot::Tile {
                        nx,
                        ny,
                        data: &src[i * per..(i + 1) * per],
                    });
                }
            }
            let p = dir.join(format!("denoise_examples_{k}.png"));
            skyzip_plot::image_grid(&p, &tiles, 4, 128, skyzip_plot::Stretch::Linear)
                .map_err(|e| crate::io(&p, e))?;
        }
        rows.push(DenoiseRow {
            noise: specs.get(k).copied().unwrap_or_default().to_string(),
            mse_noisy: mse(&tn, &tc),
            filter: best,
            filter_label: best.label(),
            mse_filter,
            mse_dae: mse(&dae, &tc),
        });
    }
    Ok(DenoiseEvaluation {
        run: run.display().to_string(),
        parameters: model.num_params(),
        epochs: crate::read_history(run).len(),
        training_items: train.len() - split.val.len(),
        tuning_items: tune.len(),
        test_items: test.len(),
        test_seed: seed,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_constants_and_smooth_noise() {
        let flat = vec![2.0f32; 64];
        for f in FILTERS {
            let out = f.apply(&flat, 8, 8);
            assert!(out.iter().all(|v| (v - 2.0).abs() < 1e-5), "{f:?}");
        }
        // One hot pixel: the median removes it, the Gaussian spreads it keeping the sum.
        let mut spike = vec![0f32; 81];
        spike[40] = 1.0;
        assert!(Filter::Median { size: 3 }
            .apply(&spike, 9, 9)
            .iter()
            .all(|&v| v == 0.0));
        let g = Filter::Gaussian { sigma: 1.0 }.apply(&spike, 9, 9);
        assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-3 && g[40] < 0.2);
    }
}
