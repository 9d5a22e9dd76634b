//! The models that are not autoencoders (seed 003, parts a and b): parameter estimators and
//! point-source segmenters — their labelled data, their training loop and their held-out
//! evaluation.
//!
//! Labels come from the simulator: an estimator's targets are the sample's parameters by name
//! (`a+b` sums two, e.g. `n_ps_gc+n_ps_disk` for the total number of point sources), scaled to
//! [0, 1] by the training data's range (kept in the run's `targets.json`); a segmenter's target is
//! every pixel whose point-source flux (the simulator's `flux_ps_*` maps summed) exceeds its
//! `threshold` (0.8: the simulator's masks, the student U-Net's targets). The test
//! set is drawn from the same simulator with another seed (`data.test`), never seen in training.

use crate::checkpoint::{self, Part, RunState};
use crate::config::{DataSource, Experiment};
use crate::eval::Scores;
use crate::{epoch_rng, io, optimizer, plot_losses, write_metrics, EpochMetrics, TrainError};
use crate::{TrainOptions, TrainReport};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skyzip_data::Dihedral;
use skyzip_eval::catalog::{completeness_purity, detections, Detection, FluxBin, TrueSource};
use skyzip_eval::segmentation::{score_image, ImageScores};
use skyzip_eval::{mean_relative_error, Summary};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{ModelConfig, Supervised, Task};
use skyzip_sim::{generate, Sample};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Images with their labels, `per` numbers per item.
pub struct Labelled {
    pub nx: usize,
    pub ny: usize,
    /// Normalised inputs, item after item.
    pub inputs: Vec<f32>,
    /// Training targets: scaled parameters, or 0/1 point-source masks.
    pub labels: Vec<f32>,
    pub per: usize,
    /// Estimators: the parameters unscaled, one row per item.
    pub truth: Vec<Vec<f64>>,
    /// Segmenters: the true point-source flux of every pixel, and each item's sources (pixel,
    /// flux) from the simulator's catalogue.
    pub flux: Vec<f32>,
    pub sources: Vec<Vec<TrueSource>>,
    /// Noise classifiers: which noise model corrupted each item.
    pub classes: Vec<usize>,
}

impl Labelled {
    pub fn len(&self) -> usize {
        self.inputs.len() / (self.nx * self.ny).max(1)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn npix(&self) -> usize {
        self.nx * self.ny
    }
}

/// How an estimator's targets were scaled to [0, 1]: per output, the training data's range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub names: Vec<String>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Scaling {
    fn of(names: &[String], truth: &[Vec<f64>]) -> Scaling {
        let col = |k: usize| truth.iter().map(move |r| r[k]);
        let lo: Vec<f64> = (0..names.len())
            .map(|k| col(k).fold(f64::INFINITY, f64::min))
            .collect();
        let hi: Vec<f64> = (0..names.len())
            .map(|k| col(k).fold(f64::NEG_INFINITY, f64::max))
            .collect();
        Scaling {
            names: names.to_vec(),
            lo,
            hi,
        }
    }

    fn scale(&self, k: usize, v: f64) -> f64 {
        let span = self.hi[k] - self.lo[k];
        if span > 0.0 {
            (v - self.lo[k]) / span
        } else {
            0.0
        }
    }

    pub fn unscale(&self, k: usize, v: f64) -> f64 {
        self.lo[k] + v * (self.hi[k] - self.lo[k])
    }
}

/// A sample's parameter by name; `a+b` is the sum of two.
pub fn param(s: &Sample, name: &str) -> Result<f64, String> {
    name.split('+')
        .map(|p| {
            s.params.get(p.trim()).copied().ok_or_else(|| {
                format!(
                    "no parameter '{}' (the simulator has: {})",
                    p.trim(),
                    s.params.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .sum()
}

/// The labelled images of `exp`'s simulator: `n` samples from `seed` (the experiment's own source
/// when None), inputs normalised as the experiment says.
pub fn labelled(
    exp: &Experiment,
    mcfg: &ModelConfig,
    draw: Option<(u64, usize)>,
) -> Result<Labelled, TrainError> {
    let DataSource::Simulator { kind, n, seed } = &exp.data.source else {
        return Err(TrainError::Config(
            "data.source: estimators and segmenters learn from a simulator's labels \
             ({\"type\": \"simulator\", ...})"
                .into(),
        ));
    };
    let (seed, n) = draw.unwrap_or((*seed, *n));
    if n == 0 {
        return Err(TrainError::Config(
            "data.source.n must be at least 1".into(),
        ));
    }
    let sim = crate::config::simulator(kind)?;
    let samples = generate(sim.as_ref(), seed, 0, n);
    let (nx, ny) = (samples[0].nx, samples[0].ny);
    let mut l = Labelled {
        nx,
        ny,
        inputs: Vec::with_capacity(n * nx * ny),
        labels: Vec::new(),
        per: 0,
        truth: Vec::new(),
        flux: Vec::new(),
        sources: Vec::new(),
        classes: Vec::new(),
    };
    if exp.data.rotate && mcfg.task() == Task::Segment {
        return Err(TrainError::Config(
            "data.rotate: not for segmenters (interpolation would blur their 0/1 masks)".into(),
        ));
    }
    for (i, s) in samples.iter().enumerate() {
        let mut x = s.image.clone();
        if exp.data.rotate {
            x = skyzip_data::rotate_bilinear(&x, nx, ny, crate::rotation_angle(seed, i));
        }
        exp.data.normalisation.fit(&x).forward(&mut x);
        l.inputs
            .extend(x.iter().map(|v| if v.is_finite() { *v } else { 0.0 }));
    }
    match mcfg.task() {
        Task::Estimate => {
            let names = mcfg.outputs();
            l.per = names.len();
            for s in &samples {
                let row = names
                    .iter()
                    .map(|k| param(s, k))
                    .collect::<Result<Vec<f64>, String>>()
                    .map_err(|e| TrainError::Config(format!("model.outputs: {e}")))?;
                l.truth.push(row);
            }
        }
        Task::Segment => {
            l.per = nx * ny;
            for s in &samples {
                let maps: Vec<&Vec<f32>> = s
                    .maps
                    .iter()
                    .filter(|(k, _)| k.starts_with("flux_ps"))
                    .map(|(_, v)| v)
                    .collect();
                if maps.is_empty() {
                    return Err(TrainError::Config(format!(
                        "data.source: the {kind} simulator has no point-source flux maps to segment"
                    )));
                }
                let flux: Vec<f32> = (0..nx * ny)
                    .map(|i| maps.iter().map(|m| m[i]).sum())
                    .collect();
                let thr = mcfg.segment_threshold() as f32;
                l.labels
                    .extend(flux.iter().map(|&f| if f > thr { 1.0 } else { 0.0 }));
                l.flux.extend(flux);
                let cols = &s.catalog.columns;
                let col = |name: &str| cols.iter().position(|c| c == name);
                l.sources
                    .push(match (col("l_deg"), col("b_deg"), col("flux")) {
                        (Some(a), Some(b), Some(f)) => s
                            .catalog
                            .rows
                            .iter()
                            .map(|r| TrueSource {
                                pixel: skyzip_sim::gce::pixel_index(r[a], r[b]),
                                flux: r[f],
                            })
                            .collect(),
                        _ => Vec::new(),
                    });
            }
        }
        Task::Classify => {
            let noises = mcfg
                .outputs()
                .iter()
                .map(|s| skyzip_sim::noise::Noise::parse(s.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TrainError::Config(format!("model.outputs: {e}")))?;
            let k = noises.len();
            l.per = k;
            let np = nx * ny;
            for i in 0..n {
                // Each map gets one noise model at random, drawn from (seed, i) alone.
                let c =
                    skyzip_sim::sample_rng(seed ^ 0x006e_6f69_7365, i as u64).random_range(0..k);
                let noisy = noises[c].apply(
                    &l.inputs[i * np..(i + 1) * np],
                    &mut skyzip_sim::noise_rng(seed, i as u64),
                );
                l.inputs[i * np..(i + 1) * np].copy_from_slice(&noisy);
                l.labels
                    .extend((0..k).map(|j| if j == c { 1.0 } else { 0.0 }));
                l.classes.push(c);
            }
        }
        Task::Reconstruct => unreachable!("autoencoders train through crate::train"),
    }
    Ok(l)
}

/// Scaled labels of an estimator from its truth.
fn scale_labels(l: &mut Labelled, sc: &Scaling) {
    l.labels = l
        .truth
        .iter()
        .flat_map(|r| r.iter().enumerate().map(|(k, &v)| sc.scale(k, v) as f32))
        .collect();
}

struct Batch {
    n: usize,
    x: Vec<f32>,
    y: Vec<f32>,
}

/// The batches of `idx`, shuffled (and augmented by the dihedral group: labels of a segmenter
/// transform with their image) by `rng` when given.
fn batches(
    l: &Labelled,
    idx: &[usize],
    size: usize,
    rng: Option<&mut ChaCha8Rng>,
    augment: bool,
) -> Vec<Batch> {
    let mut order = idx.to_vec();
    let mut rng = rng;
    if let Some(r) = rng.as_deref_mut() {
        order.shuffle(r);
    }
    let (np, per) = (l.npix(), l.per);
    let segment = per == np;
    order
        .chunks(size.max(1))
        .map(|chunk| {
            let mut x = Vec::with_capacity(chunk.len() * np);
            let mut y = Vec::with_capacity(chunk.len() * per);
            for &i in chunk {
                let xi = &l.inputs[i * np..(i + 1) * np];
                let yi = &l.labels[i * per..(i + 1) * per];
                match rng.as_deref_mut() {
                    Some(r) if augment && l.nx == l.ny => {
                        let d = Dihedral::ALL[r.random_range(0..8)];
                        x.extend(d.apply(xi, l.nx, l.ny).2);
                        if segment {
                            y.extend(d.apply(yi, l.nx, l.ny).2);
                        } else {
                            y.extend_from_slice(yi);
                        }
                    }
                    _ => {
                        x.extend_from_slice(xi);
                        y.extend_from_slice(yi);
                    }
                }
            }
            Batch {
                n: chunk.len(),
                x,
                y,
            }
        })
        .collect()
}

/// The model's outputs on items `idx`: [n·per] (probabilities, or scaled estimates).
fn predict(
    net: &Supervised,
    l: &Labelled,
    idx: &[usize],
    size: usize,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * l.per);
    for b in batches(l, idx, size, None, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, l.ny, l.nx, device);
        out.extend(
            net.forward(x)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
        );
    }
    out
}

/// The held-out loss of `net` on `idx`.
fn val_loss(
    net: &Supervised,
    mcfg: &ModelConfig,
    l: &Labelled,
    idx: &[usize],
    size: usize,
    device: &Device,
) -> f64 {
    let (mut sum, mut n) = (0.0, 0);
    for b in batches(l, idx, size, None, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, l.ny, l.nx, device);
        let y = Tensor::from_data(TensorData::new(b.y, [b.n, l.per]), device);
        sum += net.training_loss(mcfg, x, y).into_scalar::<f32>() as f64 * b.n as f64;
        n += b.n;
    }
    sum / n.max(1) as f64
}

/// Trains an estimator or a segmenter into `out` (as [`crate::train`] does for autoencoders:
/// metrics, best/last weights, resume state, loss curve; plus `targets.json`).
pub fn train(
    exp: &Experiment,
    mcfg: &ModelConfig,
    out: &Path,
    device: &Device,
    opts: &TrainOptions,
    mut progress: impl FnMut(usize, usize, usize, f64),
) -> Result<TrainReport, TrainError> {
    let resume_dir = crate::resume_dir(exp, out, opts.resume)?;
    let mut l = labelled(exp, mcfg, None)?;
    mcfg.check_shape(l.ny, l.nx).map_err(TrainError::Config)?;
    if mcfg.task() == Task::Estimate {
        let sc = Scaling::of(mcfg.outputs(), &l.truth);
        scale_labels(&mut l, &sc);
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        let p = out.join("targets.json");
        let text = serde_json::to_string_pretty(&sc).map_err(|e| io(&p, e))?;
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    let mut idx: Vec<usize> = (0..l.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(exp.seed ^ 0x73706c6974));
    let n_val = ((l.len() as f64) * exp.val_fraction).round() as usize;
    let val = idx.split_off(l.len() - n_val);
    let train_idx = idx;
    if train_idx.is_empty() {
        return Err(TrainError::Config(
            "no training samples after the validation split".into(),
        ));
    }
    let val_idx = if val.is_empty() { &train_idx } else { &val };
    crate::write_config(exp, out)?;
    let ad = device.clone().autodiff();
    let mut net = mcfg
        .init_supervised(&ad, exp.seed)
        .expect("an estimator or segmenter");
    let mut optim = optimizer(exp);
    let mut state = RunState::default();
    if let Some(dir) = &resume_dir {
        let (s, mut o) = checkpoint::load_state(dir, &mut net, vec![optim])?;
        state = s;
        optim = o.remove(0);
    }
    let mut interrupted = None;
    for epoch in state.epochs_done + 1..=exp.epochs {
        if exp
            .early_stopping
            .is_some_and(|p| state.since_best >= p && state.epochs_done > 0)
        {
            break;
        }
        let t = std::time::Instant::now();
        let lr = exp.optimizer.lr_at(epoch, exp.epochs);
        let mut rng = epoch_rng(exp.seed, epoch);
        let bs = batches(
            &l,
            &train_idx,
            exp.batch_size,
            Some(&mut rng),
            exp.data.augment,
        );
        let nb = bs.len();
        let (mut sum, mut count) = (0.0, 0usize);
        for (bi, b) in bs.into_iter().enumerate() {
            let x = skyzip_nn::image_tensor(&b.x, b.n, l.ny, l.nx, &ad);
            let y = Tensor::from_data(TensorData::new(b.y, [b.n, l.per]), &ad);
            let loss = net.training_loss(mcfg, x, y);
            let v = loss.clone().into_scalar::<f32>() as f64;
            if !v.is_finite() {
                return Err(TrainError::Config(format!(
                    "epoch {epoch}: the loss became {v}; lower optimizer.lr or check the normalisation"
                )));
            }
            let grads = skyzip_nn::burn::optim::GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
            sum += v * b.n as f64;
            count += b.n;
            progress(epoch, bi + 1, nb, sum / count as f64);
            if opts.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                interrupted = Some((epoch, bi + 1, nb));
                break;
            }
        }
        let valid = net.valid();
        if interrupted.is_some() {
            checkpoint::save_weights(&valid, &out.join("last.safetensors"), Part::Full)?;
            break;
        }
        let vl = val_loss(&valid, mcfg, &l, val_idx, exp.batch_size, device);
        let secs = t.elapsed().as_secs_f64();
        state.history.push(EpochMetrics {
            epoch,
            train_loss: sum / count.max(1) as f64,
            val: Scores {
                loss: vl,
                mse: vl,
                nll: None,
                z2: None,
            },
            lr,
            seconds: secs,
            samples_per_s: count as f64 / secs,
        });
        checkpoint::save_weights(&valid, &out.join("last.safetensors"), Part::Full)?;
        if state.best.is_none_or(|b| vl < b) {
            state.best = Some(vl);
            state.since_best = 0;
            checkpoint::save_weights(&valid, &out.join("best.safetensors"), Part::Full)?;
        } else {
            state.since_best += 1;
        }
        state.epochs_done = epoch;
        write_metrics(out, &state.history)?;
        checkpoint::save_state(out, &net, &[&optim], &state)?;
    }
    if interrupted.is_none() && !state.history.is_empty() {
        plot_losses(out, &state.history)?;
        let summary = serde_json::json!({
            "epochs": state.epochs_done,
            "best_val_loss": state.best,
            "training_items": train_idx.len(),
            "validation_items": val_idx.len(),
        });
        let p = out.join("summary.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&summary).unwrap_or_default(),
        )
        .map_err(|e| io(&p, e))?;
    }
    Ok(TrainReport {
        history: state.history,
        interrupted,
        eta_curve: Vec::new(),
        final_scores: None,
    })
}

/// An estimator's held-out results: per parameter, the mean relative error and the
/// (true, predicted) pairs behind the scatter plot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EstimateResult {
    pub parameter: String,
    pub mean_relative_error: f64,
    /// The same over the maps whose true value is in the upper 90 % of the training range
    /// (a relative error near a true value of 0 is unbounded: A_dm ~ U(0, 1)).
    pub mean_relative_error_upper90: f64,
    pub median_relative_error: f64,
    pub mean_absolute_error: f64,
    pub pairs: Vec<(f64, f64)>,
}

/// A segmenter's held-out results at one probability cut.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentResult {
    pub cut: f64,
    pub accuracy_a: Summary,
    pub auc_a: Summary,
    pub accuracy_b: Summary,
    pub auc_b: Summary,
    pub per_image: Vec<ImageScores>,
    /// The catalogue from the mask against the simulator's: completeness and purity by flux.
    pub catalogue: Vec<FluxBin>,
    /// Detections (8-connected groups above the cut) per image, on average.
    pub detections_per_image: f64,
    /// The catalogue itself: (test image, detection), positions in that image's pixels.
    #[serde(skip)]
    pub detections: Vec<(usize, Detection)>,
}

/// A noise classifier's held-out results.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifyResult {
    pub classes: Vec<String>,
    pub accuracy: f64,
    /// confusion[true][predicted], in maps.
    pub confusion: Vec<Vec<usize>>,
}

/// What `evaluate` reports about a run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub run: String,
    pub model: String,
    pub parameters: usize,
    pub epochs: usize,
    pub training_items: usize,
    pub test_items: usize,
    pub test_seed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub estimates: Vec<EstimateResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<ClassifyResult>,
}

/// Flux bins (counts) for completeness and purity: powers of two from 1/4 to 256.
const FLUX_EDGES: [f64; 12] = [
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    256.0,
    f64::INFINITY,
];

/// Evaluates a trained estimator or segmenter (its best weights) on a fresh test set of `n`
/// samples drawn with `seed`.
pub fn evaluate(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
    cut: f64,
) -> Result<Evaluation, TrainError> {
    let mut net = mcfg
        .init_supervised(device, 0)
        .ok_or_else(|| TrainError::Config("evaluate: not an estimator or segmenter".into()))?;
    let w = run.join("best.safetensors");
    checkpoint::load_weights(&mut net, &w, Part::Full)?;
    let mut l = labelled(exp, mcfg, Some((seed, n)))?;
    // An estimator's outputs are scaled as its training targets were (the run's targets.json).
    let scaling = match mcfg.task() {
        Task::Estimate => {
            let p = run.join("targets.json");
            let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
            let sc: Scaling = serde_json::from_str(&text).map_err(|e| io(&p, e))?;
            scale_labels(&mut l, &sc);
            Some(sc)
        }
        _ => None,
    };
    let idx: Vec<usize> = (0..l.len()).collect();
    let out = predict(&net, &l, &idx, exp.batch_size, device);
    let epochs = crate::read_history(run).len();
    let mut ev = Evaluation {
        run: run.display().to_string(),
        model: mcfg.name(),
        parameters: net.num_params(),
        epochs,
        training_items: crate::training_items(run, exp),
        test_items: l.len(),
        test_seed: seed,
        estimates: Vec::new(),
        segmentation: None,
        classification: None,
    };
    match mcfg.task() {
        Task::Estimate => {
            let sc = scaling.expect("read above");
            for (k, name) in sc.names.iter().enumerate() {
                let pred: Vec<f64> = (0..l.len())
                    .map(|i| sc.unscale(k, out[i * l.per + k] as f64))
                    .collect();
                let truth: Vec<f64> = l.truth.iter().map(|r| r[k]).collect();
                let cut = sc.lo[k] + 0.1 * (sc.hi[k] - sc.lo[k]);
                let (up_p, up_t): (Vec<f64>, Vec<f64>) = pred
                    .iter()
                    .zip(&truth)
                    .filter(|(_, t)| **t >= cut)
                    .map(|(p, t)| (*p, *t))
                    .unzip();
                let mut rel: Vec<f64> = pred
                    .iter()
                    .zip(&truth)
                    .filter(|(_, t)| **t != 0.0)
                    .map(|(p, t)| ((p - t) / t).abs())
                    .collect();
                rel.sort_by(f64::total_cmp);
                ev.estimates.push(EstimateResult {
                    parameter: name.clone(),
                    mean_relative_error: mean_relative_error(&pred, &truth),
                    mean_relative_error_upper90: mean_relative_error(&up_p, &up_t),
                    median_relative_error: rel.get(rel.len() / 2).copied().unwrap_or(f64::NAN),
                    mean_absolute_error: pred
                        .iter()
                        .zip(&truth)
                        .map(|(p, t)| (p - t).abs())
                        .sum::<f64>()
                        / truth.len().max(1) as f64,
                    pairs: truth.into_iter().zip(pred).collect(),
                });
            }
        }
        Task::Segment => {
            let np = l.npix();
            let mut per_image = Vec::new();
            let mut dets_all = Vec::new();
            let mut catalogue = Vec::new();
            let mut srcs_all = Vec::new();
            for i in 0..l.len() {
                let prob: Vec<f64> = out[i * np..(i + 1) * np]
                    .iter()
                    .map(|&p| p as f64)
                    .collect();
                let flux: Vec<f64> = l.flux[i * np..(i + 1) * np]
                    .iter()
                    .map(|&f| f as f64)
                    .collect();
                per_image.push(score_image(&prob, &flux, cut, mcfg.segment_threshold()));
                let mask: Vec<bool> = prob.iter().map(|&p| p > cut).collect();
                let img: Vec<f64> = l.inputs[i * np..(i + 1) * np]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                // Detections of every image in one catalogue: pixel indices offset per image.
                for d in detections(&mask, &img, l.nx, l.ny) {
                    let mut offset = d.clone();
                    offset.members.iter_mut().for_each(|m| *m += i * np);
                    dets_all.push(offset);
                    catalogue.push((i, d));
                }
                srcs_all.extend(l.sources[i].iter().map(|s| TrueSource {
                    pixel: s.pixel + i * np,
                    flux: s.flux,
                }));
            }
            let summ = |f: fn(&ImageScores) -> f64| {
                Summary::of(&per_image.iter().map(f).collect::<Vec<_>>())
            };
            ev.segmentation = Some(SegmentResult {
                cut,
                accuracy_a: summ(|s| s.accuracy_a),
                auc_a: summ(|s| s.auc_a),
                accuracy_b: summ(|s| s.accuracy_b),
                auc_b: summ(|s| s.auc_b),
                detections_per_image: dets_all.len() as f64 / l.len().max(1) as f64,
                catalogue: completeness_purity(
                    &dets_all,
                    &srcs_all,
                    np * l.len(),
                    1.0,
                    &FLUX_EDGES,
                ),
                per_image,
                detections: catalogue,
            });
        }
        Task::Classify => {
            let k = l.per;
            let mut confusion = vec![vec![0usize; k]; k];
            for (i, &c) in l.classes.iter().enumerate() {
                let row = &out[i * k..(i + 1) * k];
                let p = (0..k)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                confusion[c][p] += 1;
            }
            let right: usize = (0..k).map(|j| confusion[j][j]).sum();
            ev.classification = Some(ClassifyResult {
                classes: mcfg.outputs().to_vec(),
                accuracy: right as f64 / l.len().max(1) as f64,
                confusion,
            });
        }
        Task::Reconstruct => unreachable!("checked above"),
    }
    Ok(ev)
}
