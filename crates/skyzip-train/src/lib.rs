//! skyzip-train: one JSON config per experiment → a trained model in a run folder.
//!
//! A run folder holds `config.json` (the experiment as run), `metrics.csv` and `metrics.json`
//! (one row per epoch), `last.safetensors`, `best.safetensors` (lowest validation loss),
//! `epoch-NNNN.safetensors` every `checkpoint_every` epochs, `state/` for `--resume`,
//! `loss_curve.png`, `summary.json` and, for tunable models, `eta_curve.csv` + `eta_curve.png`.
//!
//! Determinism: the batches, the η draws and the dae noise of epoch e come from generators seeded
//! by (seed, e), so a run resumed after epoch e repeats the uninterrupted run's losses exactly.

pub mod ae_eval;
pub mod apply;
pub mod checkpoint;
pub mod config;
pub mod denoise;
pub mod eval;
pub mod gen_eval;
pub mod latents;
pub mod pixel_eval;
pub mod stack_eval;
pub mod supervised;

use checkpoint::{Part, RunState};
use config::{DataSource, Experiment};
use eval::Scores;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skyzip_data::Dataset;
use skyzip_nn::burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Model, ModelConfig};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] skyzip_data::DataError),
    #[error("{path}: {why}")]
    Io { path: String, why: String },
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// The raw items of one data source (before normalisation); `targets`: keep the clean targets
/// a simulator gives (a model trained to reconstruct its input does not use them).
fn load_source(
    src: &DataSource,
    noise: Option<&str>,
    targets: bool,
) -> Result<Dataset, TrainError> {
    let mut ds = match src {
        DataSource::Simulator { kind, n, seed } => {
            let sim = config::simulator(kind)?;
            let noise = noise
                .map(skyzip_sim::noise::Noise::parse)
                .transpose()
                .map_err(|e| TrainError::Config(format!("data.noise: {e}")))?;
            Dataset::from_simulator(sim.as_ref(), *seed, *n, noise)?
        }
        DataSource::Fits {
            files,
            stamp,
            stride,
        } => {
            for f in files {
                if !f.exists() {
                    return Err(io(f, "no such file"));
                }
            }
            let spec = skyzip_data::StampSpec {
                size: *stamp,
                stride: stride.unwrap_or(*stamp),
                max_bad: 0.5,
            };
            Dataset::from_fits_files(files, &spec)?
        }
        DataSource::Dataset { path } => {
            if !path.exists() {
                return Err(io(path, "no such file or folder"));
            }
            Dataset::from_skyzip(path)?
        }
        DataSource::Mix { sources } => Dataset::concat(
            sources
                .iter()
                .map(|s| load_source(s, noise, targets))
                .collect::<Result<_, _>>()?,
        )
        .map_err(|e| TrainError::Config(format!("data.source (mix): {e}")))?,
    };
    if !targets {
        ds.targets = None;
    }
    Ok(ds)
}

/// Builds the dataset an experiment describes (normalised, NaN-filled).
pub fn build_dataset(exp: &Experiment) -> Result<Dataset, TrainError> {
    let d = &exp.data;
    let input = d.target == config::Target::Input;
    let mut ds = load_source(&d.source, d.noise.as_deref(), !input)?;
    if d.rotate {
        rotate_items(&mut ds, exp.seed);
    }
    if let Some(r) = d.resize {
        if r == 0 {
            return Err(TrainError::Config("data.resize must be at least 1".into()));
        }
        ds.resize(r, r);
    }
    ds.normalise(d.normalisation);
    ds.fill_nan(0.0);
    Ok(ds)
}

/// The angle (radians) item `i` of a dataset seeded `seed` is turned by (`data.rotate`).
pub fn rotation_angle(seed: u64, i: usize) -> f64 {
    use rand::Rng;
    let mut rng = skyzip_sim::sample_rng(seed ^ 0x726f_7461_7465, i as u64);
    rng.random_range(0.0..std::f64::consts::TAU)
}

/// Turns every item (input and target alike) by its own angle.
fn rotate_items(ds: &mut Dataset, seed: u64) {
    let (nx, ny, n) = (ds.nx, ds.ny, ds.nx * ds.ny);
    for i in 0..ds.len() {
        let a = rotation_angle(seed, i);
        let r = skyzip_data::rotate_bilinear(&ds.inputs[i * n..(i + 1) * n], nx, ny, a);
        ds.inputs[i * n..(i + 1) * n].copy_from_slice(&r);
        if let Some(t) = ds.targets.as_mut() {
            let r = skyzip_data::rotate_bilinear(&t[i * n..(i + 1) * n], nx, ny, a);
            t[i * n..(i + 1) * n].copy_from_slice(&r);
        }
    }
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val: Scores,
    pub lr: f64,
    pub seconds: f64,
    pub samples_per_s: f64,
}

/// How a call to [`train`] runs.
#[derive(Default)]
pub struct TrainOptions<'a> {
    /// Continue the run in the output folder from its last completed epoch.
    pub resume: bool,
    /// Checked after every batch: when set, training stops, `last.safetensors` gets the current
    /// weights and the resume state stays at the last completed epoch.
    pub stop: Option<&'a AtomicBool>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Every epoch of the run, resumed ones included.
    pub history: Vec<EpochMetrics>,
    /// (epoch, batches done, batches) when stopped by [`TrainOptions::stop`].
    pub interrupted: Option<(usize, usize, usize)>,
    /// Held-out scores of the final model at every η (tunable models).
    pub eta_curve: Vec<(usize, Scores)>,
    /// Held-out scores of the final model with the full code.
    pub final_scores: Option<Scores>,
}

pub(crate) fn optimizer(exp: &Experiment) -> ModuleOptimizer {
    match exp.optimizer.kind {
        config::OptKind::Adam => AdamConfig::new().init(),
        config::OptKind::Adamw => AdamWConfig::new()
            .with_weight_decay(exp.optimizer.weight_decay as f32)
            .init(),
    }
}

/// The generator of epoch `epoch`'s random choices (η draws, dae noise).
pub(crate) fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    key[16..21].copy_from_slice(b"train");
    ChaCha8Rng::from_seed(key)
}

/// The top-level fields (and `model`/`data` sub-fields) where two experiments differ.
fn differences(a: &Experiment, b: &Experiment) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut out = Vec::new();
    if let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) {
        for (k, x) in ma {
            let y = mb.get(k).cloned().unwrap_or_default();
            if *x == y {
                continue;
            }
            match (x.as_object(), y.as_object()) {
                (Some(xa), Some(ya)) => {
                    for (kk, xx) in xa {
                        if Some(xx) != ya.get(kk) {
                            out.push(format!("{k}.{kk}"));
                        }
                    }
                    for kk in ya.keys().filter(|kk| !xa.contains_key(*kk)) {
                        out.push(format!("{k}.{kk}"));
                    }
                }
                _ => out.push(k.clone()),
            }
        }
    }
    out
}

/// Checks a resumed run's config against the one the run was started with (only `epochs` may
/// change, to train longer).
fn check_resume(exp: &Experiment, out: &Path) -> Result<(), TrainError> {
    let p = out.join("config.json");
    let old = Experiment::load(&p)?;
    let diff: Vec<String> = differences(&old, exp)
        .into_iter()
        .filter(|f| f != "epochs")
        .collect();
    if !diff.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: cannot resume: the config differs from the run's in {} (only epochs may change)",
            out.display(),
            diff.join(", ")
        )));
    }
    Ok(())
}

pub(crate) fn write_metrics(out: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let mut csv =
        String::from("epoch,train_loss,val_loss,val_mse,val_nll,val_z2,lr,seconds,samples_per_s\n");
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for m in history {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{:.3},{:.1}\n",
            m.epoch,
            m.train_loss,
            m.val.loss,
            m.val.mse,
            opt(m.val.nll),
            opt(m.val.z2),
            m.lr,
            m.seconds,
            m.samples_per_s
        ));
    }
    let p = out.join("metrics.csv");
    std::fs::write(&p, csv).map_err(|e| io(&p, e))?;
    let p = out.join("metrics.json");
    let text = serde_json::to_string_pretty(history).map_err(|e| io(&p, e))?;
    std::fs::write(&p, text).map_err(|e| io(&p, e))
}

pub(crate) fn plot_losses(out: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let tr: Vec<(f64, f64)> = history
        .iter()
        .map(|m| (m.epoch as f64, m.train_loss))
        .collect();
    let va: Vec<(f64, f64)> = history
        .iter()
        .map(|m| (m.epoch as f64, m.val.loss))
        .collect();
    let log = history
        .iter()
        .all(|m| m.train_loss > 0.0 && m.val.loss > 0.0);
    skyzip_plot::line_plot_with(
        &out.join("loss_curve.png"),
        "loss per epoch",
        "epoch",
        "loss",
        &[
            skyzip_plot::Series {
                label: "train",
                points: &tr,
            },
            skyzip_plot::Series {
                label: "validation",
                points: &va,
            },
        ],
        skyzip_plot::Axes {
            log_y: log,
            integer_x: true,
        },
    )
    .map_err(|e| io(out, e))
}

fn write_eta_curve(out: &Path, curve: &[(usize, Scores)]) -> Result<(), TrainError> {
    let mut csv = String::from("eta,loss,mse\n");
    for (k, s) in curve {
        csv.push_str(&format!("{k},{},{}\n", s.loss, s.mse));
    }
    let p = out.join("eta_curve.csv");
    std::fs::write(&p, csv).map_err(|e| io(&p, e))?;
    let pts: Vec<(f64, f64)> = curve.iter().map(|(k, s)| (*k as f64, s.mse)).collect();
    skyzip_plot::line_plot_with(
        &out.join("eta_curve.png"),
        "held-out error vs latent prefix η",
        "η (latent channels/units kept)",
        "MSE",
        &[skyzip_plot::Series {
            label: "held-out MSE",
            points: &pts,
        }],
        skyzip_plot::Axes {
            log_y: pts.iter().all(|p| p.1 > 0.0),
            integer_x: true,
        },
    )
    .map_err(|e| io(out, e))
}

/// Replaces every image of a batch by a random `c`×`c` window of it (inputs and targets alike).
fn crop_batch(b: &mut skyzip_data::Batch, c: usize, rng: &mut ChaCha8Rng) {
    use rand::Rng;
    let (nx, ny) = (b.nx, b.ny);
    let (mut x, mut y) = (
        Vec::with_capacity(b.n * c * c),
        Vec::with_capacity(b.n * c * c),
    );
    for i in 0..b.n {
        let ox = rng.random_range(0..=nx - c);
        let oy = rng.random_range(0..=ny - c);
        for r in 0..c {
            let at = i * nx * ny + (oy + r) * nx + ox;
            x.extend_from_slice(&b.x[at..at + c]);
            y.extend_from_slice(&b.y[at..at + c]);
        }
    }
    b.x = x;
    b.y = y;
    b.nx = c;
    b.ny = c;
}

/// Trains an experiment into `out`, calling `progress(epoch, batch, batches, loss)` as it goes.
/// The state folder to resume from (`resume`), or None for a fresh run into an empty `out`.
pub(crate) fn resume_dir(
    exp: &Experiment,
    out: &Path,
    resume: bool,
) -> Result<Option<std::path::PathBuf>, TrainError> {
    if resume {
        let dir = checkpoint::find_state(out).ok_or_else(|| {
            TrainError::Config(format!(
                "{}: nothing to resume (no state/ with a completed epoch)",
                out.display()
            ))
        })?;
        check_resume(exp, out)?;
        Ok(Some(dir))
    } else {
        if checkpoint::find_state(out).is_some() {
            return Err(TrainError::Config(format!(
                "{}: already holds a run (resume it, or train into another folder)",
                out.display()
            )));
        }
        Ok(None)
    }
}

/// Writes the experiment as run into `out/config.json`.
pub(crate) fn write_config(exp: &Experiment, out: &Path) -> Result<(), TrainError> {
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let cfg_path = out.join("config.json");
    let text = serde_json::to_string_pretty(exp).map_err(|e| io(&cfg_path, e))?;
    std::fs::write(&cfg_path, text).map_err(|e| io(&cfg_path, e))
}

/// The epochs a run folder's `metrics.json` records (empty when there is none).
pub fn read_history(run: &Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(run.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn train(
    exp: &Experiment,
    out: &Path,
    device: &Device,
    opts: &TrainOptions,
    mut progress: impl FnMut(usize, usize, usize, f64),
) -> Result<TrainReport, TrainError> {
    let mcfg = exp.model_config()?;
    if mcfg.task() != skyzip_nn::model::Task::Reconstruct {
        return supervised::train(exp, &mcfg, out, device, opts, progress);
    }
    let noise = eval::dae_noise(&mcfg).map_err(TrainError::Config)?;
    let resume_dir = resume_dir(exp, out, opts.resume)?;
    let ds = build_dataset(exp)?;
    if let Some(c) = exp.data.crop {
        if c == 0 || c > ds.nx || c > ds.ny {
            return Err(TrainError::Config(format!(
                "data.crop {c} does not fit images of {}×{}",
                ds.nx, ds.ny
            )));
        }
        mcfg.check_shape(c, c).map_err(TrainError::Config)?;
        exp.loss.check_shape(c, c).map_err(TrainError::Config)?;
    }
    mcfg.check_shape(ds.ny, ds.nx).map_err(TrainError::Config)?;
    exp.loss
        .check_shape(ds.ny, ds.nx)
        .map_err(TrainError::Config)?;
    let split = ds.split(exp.val_fraction, exp.seed)?;
    if split.train.is_empty() {
        return Err(TrainError::Config(
            "no training samples after the validation split".into(),
        ));
    }
    let val_idx = if split.val.is_empty() {
        &split.train
    } else {
        &split.val
    };
    write_config(exp, out)?;

    let ad = device.clone().autodiff();
    let mut model = mcfg.init_seeded(&ad, exp.seed);
    let mut optims = vec![optimizer(exp)];
    if mcfg.is_meanvar() {
        optims.push(optimizer(exp));
    }
    let mut state = RunState::default();
    if let Some(dir) = &resume_dir {
        let (s, o) = checkpoint::load_state(dir, &mut model, optims)?;
        state = s;
        optims = o;
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
        let batches = ds.batches(
            &split.train,
            exp.batch_size,
            exp.seed,
            epoch as u64,
            true,
            exp.data.augment,
        );
        let nb = batches.len();
        let (mut sum, mut count) = (0.0, 0usize);
        for (bi, mut b) in batches.into_iter().enumerate() {
            if let Some(c) = exp.data.crop {
                crop_batch(&mut b, c, &mut rng);
            }
            if let Some(noise) = &noise {
                eval::corrupt(&mut b.x, b.n, noise, &mut rng);
            }
            let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, &ad);
            let y = skyzip_nn::image_tensor(&b.y, b.n, b.ny, b.nx, &ad);
            // The global step, the same on a resumed run (a VAE's β annealing counts it).
            let step = (epoch - 1) * nb + bi;
            let loss = model.training_loss(&mcfg, x.clone(), y, exp.loss, step, &mut rng);
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(TrainError::Config(format!(
                    "epoch {epoch}: the loss became {l}; lower optimizer.lr or check the normalisation"
                )));
            }
            let (g_mean, g_var) = model.split_grads(loss.backward());
            model = optims[0].step(lr, model, g_mean);
            if let (Some(g), Some(o)) = (g_var, optims.get_mut(1)) {
                model = o.step(lr, model, g);
            }
            model = model.after_step(&mcfg, x, step, &mut rng);
            sum += l * b.n as f64;
            count += b.n;
            progress(epoch, bi + 1, nb, sum / count as f64);
            if opts.stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                interrupted = Some((epoch, bi + 1, nb));
                break;
            }
        }
        if interrupted.is_some() {
            checkpoint::save_weights(&model.valid(), &out.join("last.safetensors"), Part::Full)?;
            break;
        }
        let valid = model.valid();
        let val = eval::evaluate(&valid, &mcfg, &ds, val_idx, exp, device, None);
        let secs = t.elapsed().as_secs_f64();
        state.history.push(EpochMetrics {
            epoch,
            train_loss: sum / count.max(1) as f64,
            val,
            lr,
            seconds: secs,
            samples_per_s: count as f64 / secs,
        });
        checkpoint::save_weights(&valid, &out.join("last.safetensors"), Part::Full)?;
        if state.best.is_none_or(|b| val.loss < b) {
            state.best = Some(val.loss);
            state.since_best = 0;
            checkpoint::save_weights(&valid, &out.join("best.safetensors"), Part::Full)?;
        } else {
            state.since_best += 1;
        }
        if exp.checkpoint_every > 0 && epoch % exp.checkpoint_every == 0 {
            let p = out.join(format!("epoch-{epoch:04}.safetensors"));
            checkpoint::save_weights(&valid, &p, Part::Full)?;
        }
        state.epochs_done = epoch;
        write_metrics(out, &state.history)?;
        let refs: Vec<&ModuleOptimizer> = optims.iter().collect();
        checkpoint::save_state(out, &model, &refs, &state)?;
    }
    let mut report = TrainReport {
        history: state.history.clone(),
        interrupted,
        eta_curve: Vec::new(),
        final_scores: None,
    };
    if interrupted.is_some() || state.history.is_empty() {
        return Ok(report);
    }
    plot_losses(out, &state.history)?;
    let valid = model.valid();
    report.final_scores = Some(eval::evaluate(
        &valid, &mcfg, &ds, val_idx, exp, device, None,
    ));
    if mcfg.tunable() {
        report.eta_curve = eval::eta_curve(&valid, &mcfg, &ds, val_idx, exp, device);
        write_eta_curve(out, &report.eta_curve)?;
    }
    let summary = serde_json::json!({
        "epochs": state.epochs_done,
        "best_val_loss": state.best,
        "final": report.final_scores,
        "eta_curve": report.eta_curve.iter().map(|(k, s)| serde_json::json!({"eta": k, "scores": s})).collect::<Vec<_>>(),
        "training_items": split.train.len(),
        "validation_items": val_idx.len(),
    });
    let p = out.join("summary.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .map_err(|e| io(&p, e))?;
    Ok(report)
}

/// Loads a run's (or an export's) weights into the model of its config, on `device`.
/// How many maps a run trained on: its `summary.json`'s `training_items`, or, for autoencoder
/// runs written before that was recorded, the simulator's maps less the validation items.
pub(crate) fn training_items(run: &Path, exp: &Experiment) -> usize {
    let summary: serde_json::Value = std::fs::read_to_string(run.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(t) = summary["training_items"].as_u64() {
        return t as usize;
    }
    match (&exp.data.source, summary["validation_items"].as_u64()) {
        (DataSource::Simulator { n, .. }, Some(v)) => n.saturating_sub(v as usize),
        _ => 0,
    }
}

/// A run's best weights (`best.safetensors`, the whole model).
pub fn load_best(run: &Path, mcfg: &ModelConfig, device: &Device) -> Result<Model, TrainError> {
    load_model(mcfg, &run.join("best.safetensors"), Part::Full, device)
}

pub fn load_model(
    mcfg: &ModelConfig,
    path: &Path,
    part: Part,
    device: &Device,
) -> Result<Model, TrainError> {
    let mut model = mcfg.init(device);
    checkpoint::load_weights(&mut model, path, part)?;
    Ok(model)
}
