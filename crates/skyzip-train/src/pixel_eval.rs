//! What a pixel autoencoder's code holds on whole CCD stamps, ready to be entropy-coded, and its
//! reconstructions in counts with and without the second (counts) block.
//!
//! The code is quantised per position after a per-channel standardisation fitted on training
//! stamps (μ_c, σ_c: part of the model, not of the stream): q = round((z − μ_c)/(k·σ_c)) for a
//! step factor k; the decoder sees exactly μ_c + q·k·σ_c. `skyzip evaluate` codes q with the
//! codec's range coder under the discretised standard normal of step k
//! (`skyzip_codec::latent_code::gaussian_table`), adds each stamp's 32-bit normalisation shift
//! to the rate, compares with HCOMPRESS at the same RMSE/σ and measures aperture photometry.

use crate::ae_eval::test_set;
use crate::config::{DataSource, Experiment};
use crate::{build_dataset, TrainError};
use skyzip_data::norm::Norm;
use skyzip_data::Dataset;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Code, Model, ModelConfig};
use skyzip_nn::pixel_ae::linear_counts;
use std::path::Path;

/// One test stamp and what the simulator knows about it.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The observation in DN (integers: the simulator's 16-bit output).
    pub raw: Vec<f32>,
    /// The expected DN before noise.
    pub clean: Vec<f32>,
    /// Background noise σ in DN.
    pub sigma: f64,
    /// PSF FWHM in pixels.
    pub fwhm: f64,
    /// Star centres (x, y) in pixels (pixel centres at integers).
    pub stars: Vec<(f64, f64)>,
    /// The log10 normalisation's shift: y = log10(x + shift).
    pub shift: f64,
    /// Sky pixels: where the sources add less than 0.5 σ (the simulator's `clean_nosky`).
    pub sky: Vec<bool>,
}

/// One operating point: every stamp's symbols and reconstructions in DN.
#[derive(Debug, Clone)]
pub struct Point {
    pub step_factor: f64,
    pub symbols: Vec<Vec<i64>>,
    /// 10^ŷ − shift.
    pub plain: Vec<Vec<f32>>,
    /// (10^ŷ + scale·r(ŷ)) − shift, for a model with a counts block.
    pub counts: Option<Vec<Vec<f32>>>,
}

/// The test stamps of a pixel-ae run and its operating points.
#[derive(Debug, Clone)]
pub struct PixelCodes {
    pub nx: usize,
    pub ny: usize,
    pub stamps: Vec<Stamp>,
    /// Code numbers per stamp (channels × h × w).
    pub symbols_per_image: usize,
    /// Without quantisation (the continuous code), for reference.
    pub unquantised: Point,
    pub points: Vec<Point>,
}

/// Per-channel mean and standard deviation of the code over some stamps.
fn channel_stats(model: &Model, ds: &Dataset, device: &Device) -> Vec<(f64, f64)> {
    let mut acc: Vec<(f64, f64, f64)> = Vec::new();
    let idx: Vec<usize> = (0..ds.len()).collect();
    for b in ds.batches(&idx, 4, 0, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let Code::Conv(z) = model.encode(x) else {
            continue;
        };
        let [bn, k, h, w] = z.dims();
        let v = z.into_data().try_to_vec::<f32>().unwrap_or_default();
        acc.resize(k, (0.0, 0.0, 0.0));
        for i in 0..bn {
            for (c, a) in acc.iter_mut().enumerate() {
                for &q in &v[(i * k + c) * h * w..(i * k + c + 1) * h * w] {
                    a.0 += 1.0;
                    a.1 += q as f64;
                    a.2 += (q as f64) * (q as f64);
                }
            }
        }
    }
    acc.iter()
        .map(|&(n, s, s2)| {
            let m = s / n.max(1.0);
            let var = (s2 / n.max(1.0) - m * m).max(0.0);
            (m, var.sqrt().max(1e-6))
        })
        .collect()
}

fn to_vec(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// Decodes codes [b, K, h, w] into DN stamps (plain, with the counts block).
fn decode_dn(
    model: &Model,
    mcfg: &ModelConfig,
    z: Tensor<4>,
    shifts: &[f64],
) -> (Vec<Vec<f32>>, Option<Vec<Vec<f32>>>) {
    let out = model.decode(Code::Conv(z), None);
    let [b, _, h, w] = out.dims();
    let n = h * w;
    let split = |v: Vec<f32>| -> Vec<Vec<f32>> {
        (0..b)
            .map(|i| {
                v[i * n..(i + 1) * n]
                    .iter()
                    .map(|&c| (c as f64 - shifts[i]) as f32)
                    .collect()
            })
            .collect()
    };
    let plain = split(to_vec(linear_counts(out.clone(), None)));
    let counts = match (mcfg, &model.counts) {
        (
            ModelConfig::PixelAe {
                counts: Some(c), ..
            },
            Some(block),
        ) => Some(split(to_vec(linear_counts(out, Some((block, c.scale)))))),
        _ => None,
    };
    (plain, counts)
}

/// The test stamps of a pixel-ae run (`n` drawn with `seed`, whole: no crop) and, for each
/// step factor, the quantised code and its reconstructions (None for other models).
pub fn codes(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
    factors: &[f64],
) -> Result<Option<PixelCodes>, TrainError> {
    if !matches!(mcfg, ModelConfig::PixelAe { .. }) {
        return Ok(None);
    }
    let DataSource::Simulator { kind, .. } = &exp.data.source else {
        return Err(TrainError::Config(
            "evaluate draws its test set from a simulator (data.source)".into(),
        ));
    };
    if kind != "ccd" {
        return Err(TrainError::Config(format!(
            "the pixel-ae evaluation (photometry, HCOMPRESS) needs CCD stamps, not '{kind}'"
        )));
    }
    let model = crate::load_best(run, mcfg, device)?;
    let mut whole = exp.clone();
    whole.data.crop = None;
    whole.data.augment = false;
    // Training stamps for the code's per-channel statistics: the first 32 of the training set.
    let mut tr = whole.clone();
    if let DataSource::Simulator { n: tn, .. } = &mut tr.data.source {
        *tn = (*tn).min(32);
    }
    let stats = channel_stats(&model, &build_dataset(&tr)?, device);
    let test = test_set(&whole, seed, n)?;
    mcfg.check_shape(test.ny, test.nx)
        .map_err(TrainError::Config)?;
    let sim = crate::config::simulator(kind)?;
    let samples = skyzip_sim::generate(sim.as_ref(), seed, 0, n);
    let mut stamps = Vec::with_capacity(n);
    for (s, norm) in samples.iter().zip(&test.norms) {
        let Norm::Log10 { shift } = *norm else {
            return Err(TrainError::Config(
                "the pixel-ae evaluation expects data.normalisation log10".into(),
            ));
        };
        let col = |name: &str| s.catalog.columns.iter().position(|c| c == name);
        let (cx, cy, ct) = (col("x"), col("y"), col("type"));
        let stars = match (cx, cy, ct) {
            (Some(cx), Some(cy), Some(ct)) => s
                .catalog
                .rows
                .iter()
                .filter(|r| r[ct] == 0.0)
                .map(|r| (r[cx], r[cy]))
                .collect(),
            _ => Vec::new(),
        };
        let sigma = s.params.get("sigma_bkg_dn").copied().unwrap_or(1.0);
        let sky = match s.maps.get("clean_nosky") {
            Some(m) => m.iter().map(|&v| (v as f64) < 0.5 * sigma).collect(),
            None => vec![true; s.image.len()],
        };
        stamps.push(Stamp {
            raw: s.image.clone(),
            clean: s.clean.clone(),
            sigma,
            fwhm: s.params.get("seeing_arcsec").copied().unwrap_or(2.0)
                / skyzip_sim::ccd::PIXEL_SCALE,
            stars,
            shift,
            sky,
        });
    }
    let k = stats.len();
    let mut unq = Point {
        step_factor: 0.0,
        symbols: Vec::new(),
        plain: Vec::new(),
        counts: None,
    };
    let mut points: Vec<Point> = factors
        .iter()
        .map(|&f| Point {
            step_factor: f,
            symbols: Vec::new(),
            plain: Vec::new(),
            counts: None,
        })
        .collect();
    let mut per_image = 0;
    let idx: Vec<usize> = (0..test.len()).collect();
    let mut done = 0;
    for b in test.batches(&idx, 4, 0, 0, false, false) {
        let shifts: Vec<f64> = stamps[done..done + b.n].iter().map(|s| s.shift).collect();
        done += b.n;
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let Code::Conv(z) = model.encode(x) else {
            unreachable!("a pixel-ae's code is convolutional")
        };
        let dims = z.dims();
        let hw = dims[2] * dims[3];
        per_image = k * hw;
        let zv = z
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let (p, c) = decode_dn(&model, mcfg, z, &shifts);
        unq.plain.extend(p);
        if let Some(c) = c {
            unq.counts.get_or_insert_with(Vec::new).extend(c);
        }
        for pt in points.iter_mut() {
            let f = pt.step_factor;
            let mut q = vec![0i64; zv.len()];
            let mut zq = vec![0f32; zv.len()];
            for (i, (&v, (qi, zi))) in zv.iter().zip(q.iter_mut().zip(zq.iter_mut())).enumerate() {
                let (m, s) = stats[(i / hw) % k];
                *qi = ((v as f64 - m) / (f * s)).round() as i64;
                *zi = (m + *qi as f64 * f * s) as f32;
            }
            pt.symbols.extend(q.chunks(per_image).map(|c| c.to_vec()));
            let zt = Tensor::from_data(TensorData::new(zq, dims), device);
            let (p, c) = decode_dn(&model, mcfg, zt, &shifts);
            pt.plain.extend(p);
            if let Some(c) = c {
                pt.counts.get_or_insert_with(Vec::new).extend(c);
            }
        }
    }
    Ok(Some(PixelCodes {
        nx: test.nx,
        ny: test.ny,
        stamps,
        symbols_per_image: per_image,
        unquantised: unq,
        points,
    }))
}
