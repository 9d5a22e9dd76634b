//! Seed 002's noise and stacking study, measured: test maps of the radio simulator observed N
//! times (N = 1, 4, 16), the N noise realisations averaged (the sample's own noise and N − 1
//! fresh ones of the same rms, so N = 1 is the test map itself), each stack put through the
//! trained model exactly as training maps were (resize, per-map normalisation, back), and the
//! flux of every catalogue component measured by aperture photometry on the noiseless map, the
//! stack and the reconstruction. A component's S/N is its true aperture flux over the standard
//! deviation of aperture sums of the stack's noise alone (measured at the components'
//! positions, so the beam's correlation is in it).

use crate::config::{DataSource, Experiment};
use crate::TrainError;
use serde::Serialize;
use skyzip_data::augment::resize_bilinear;
use skyzip_eval::photometry::{aperture_flux, bin_ratios, FluxBin};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Model, ModelConfig};
use std::path::Path;

/// The stack depths measured.
pub const DEPTHS: [usize; 3] = [1, 4, 16];

#[derive(Debug, Clone, Serialize)]
pub struct StackLevel {
    /// Realisations averaged.
    pub n: usize,
    /// Mean noise rms of the stacks (Jy/beam at the model's resolution).
    pub noise_rms: f64,
    /// Standard deviation of a noise-only aperture sum (Jy/beam · pixels).
    pub aperture_sigma: f64,
    /// MSE of the reconstruction against the noiseless map, both normalised as the training
    /// target (the stack's own normalisation).
    pub mse_clean: f64,
    pub components: usize,
    /// Ratios for [the stack, the reconstruction], by component S/N.
    pub bins: Vec<FluxBin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stacking {
    pub test_items: usize,
    /// Side of the maps the model sees (the radio maps resized), and the aperture radius and
    /// annulus there, in pixels.
    pub side: usize,
    pub aperture_px: f64,
    pub annulus_px: [f64; 2],
    pub kinds: Vec<String>,
    pub levels: Vec<StackLevel>,
}

fn fresh_rng(seed: u64, item: usize, k: usize) -> rand_chacha::ChaCha8Rng {
    // Realisation k ≥ 1 of test item `item`: a stream no simulator sample uses.
    skyzip_sim::sample_rng(seed ^ 0x5354_4143_4b00_0000 ^ k as u64, item as u64)
}

/// The study for a radio-trained vq-vae or vae run (None for other runs).
pub fn evaluate(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
) -> Result<Option<Stacking>, TrainError> {
    let DataSource::Simulator { kind, .. } = &exp.data.source else {
        return Ok(None);
    };
    if kind != "radio" || !matches!(mcfg, ModelConfig::VqVae { .. } | ModelConfig::Vae { .. }) {
        return Ok(None);
    }
    let model: Model = crate::load_best(run, mcfg, device)?;
    let sim = crate::config::simulator(kind)?;
    let samples = skyzip_sim::generate(sim.as_ref(), seed, 0, n);
    let src = samples.first().map(|s| s.nx).unwrap_or(0);
    // The model sees the maps as training prepared them: resized, when the config says so.
    let side = exp.data.resize.unwrap_or(src);
    mcfg.check_shape(side, side).map_err(TrainError::Config)?;
    let f = side as f64 / src.max(1) as f64;
    let beam = skyzip_sim::radio::BEAM_FWHM * f;
    let (ap, ann) = (
        (1.5 * beam).max(1.5),
        [4.0 * beam.max(1.0), 6.5 * beam.max(1.0)],
    );
    let resize = |v: &[f32]| {
        if side == src {
            v.to_vec()
        } else {
            resize_bilinear(v, src, src, side, side)
        }
    };
    let to_model = |x: f64| (x + 0.5) * f - 0.5;
    let mut levels = Vec::new();
    for &depth in &DEPTHS {
        let mut rows: Vec<(f64, Vec<f64>)> = Vec::new();
        let mut noise_sums: Vec<f64> = Vec::new();
        let (mut rms_sum, mut mse_sum) = (0.0, 0.0);
        for (i, s) in samples.iter().enumerate() {
            let rms = s.params.get("rms_jy_beam").copied().unwrap_or(1.6e-4);
            let mut noise: Vec<f64> = s
                .image
                .iter()
                .zip(&s.clean)
                .map(|(a, b)| (a - b) as f64)
                .collect();
            for k in 1..depth {
                let more = skyzip_sim::radio::noise_field(&mut fresh_rng(seed, i, k), src, rms);
                noise.iter_mut().zip(&more).for_each(|(a, b)| *a += b);
            }
            let noise: Vec<f32> = noise.iter().map(|v| (v / depth as f64) as f32).collect();
            let stack: Vec<f32> = s.clean.iter().zip(&noise).map(|(c, e)| c + e).collect();
            let (stack, clean, noise) = (resize(&stack), resize(&s.clean), resize(&noise));
            let m = noise.iter().map(|&v| v as f64).sum::<f64>() / noise.len() as f64;
            rms_sum += (noise.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>()
                / noise.len() as f64)
                .sqrt();
            // As in training: the stack's own normalisation, the model, the inverse.
            let norm = exp.data.normalisation.fit(&stack);
            let mut x = stack.clone();
            norm.forward(&mut x);
            x.iter_mut()
                .filter(|v| !v.is_finite())
                .for_each(|v| *v = 0.0);
            let xt = skyzip_nn::image_tensor(&x, 1, side, side, device);
            let mut recon = model
                .reconstruct(xt, None)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            let mut cn = clean.clone();
            norm.forward(&mut cn);
            mse_sum += recon
                .iter()
                .zip(&cn)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / cn.len() as f64;
            norm.inverse(&mut recon);
            let col = |name: &str| s.catalog.columns.iter().position(|c| c == name);
            let (Some(cx), Some(cy)) = (col("x"), col("y")) else {
                continue;
            };
            for r in &s.catalog.rows {
                let (x, y) = (to_model(r[cx]), to_model(r[cy]));
                let at = |img: &[f32]| aperture_flux(img, side, side, x, y, ap, ann[0], ann[1]);
                let (Some((truth, _)), Some((fs, _)), Some((fr, _)), Some((fnoise, _))) =
                    (at(&clean), at(&stack), at(&recon), at(&noise))
                else {
                    continue;
                };
                noise_sums.push(fnoise);
                if truth > 0.0 {
                    rows.push((truth, vec![fs / truth, fr / truth]));
                }
            }
        }
        let m = noise_sums.iter().sum::<f64>() / noise_sums.len().max(1) as f64;
        let sd = (noise_sums.iter().map(|v| (v - m).powi(2)).sum::<f64>()
            / noise_sums.len().max(1) as f64)
            .sqrt()
            .max(1e-30);
        let rows: Vec<(f64, Vec<f64>)> = rows.into_iter().map(|(t, r)| (t / sd, r)).collect();
        levels.push(StackLevel {
            n: depth,
            noise_rms: rms_sum / samples.len().max(1) as f64,
            aperture_sigma: sd,
            mse_clean: mse_sum / samples.len().max(1) as f64,
            components: rows.len(),
            bins: bin_ratios(&rows, &[1.0, 3.0, 10.0, 30.0, 100.0], 2),
        });
    }
    Ok(Some(Stacking {
        test_items: samples.len(),
        side,
        aperture_px: ap,
        annulus_px: ann,
        kinds: vec!["stack".into(), mcfg.name()],
        levels,
    }))
}
