//! skyzip-train: one JSON config per experiment → a trained model in a run folder.
//!
//! A run folder holds `config.json` (the experiment as run), `metrics.csv` (one row per epoch),
//! `last.safetensors`, `best.safetensors` (lowest validation loss) and
//! `epoch-NNNN.safetensors` every `checkpoint_every` epochs.

pub mod config;

use config::{DataSource, Experiment};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use skyzip_data::Dataset;
use skyzip_nn::burn::optim::{AdamConfig, AdamWConfig, GradientsParams};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::burn::store::{ModuleSnapshot, SafetensorsStore};
use skyzip_nn::model::Model;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] skyzip_data::DataError),
    #[error("{path}: {why}")]
    Io { path: String, why: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// Builds the dataset an experiment describes (normalised, NaN-filled).
pub fn build_dataset(exp: &Experiment) -> Result<Dataset, TrainError> {
    let d = &exp.data;
    let mut ds = match &d.source {
        DataSource::Simulator { kind, n, seed } => {
            let sim = config::simulator(kind)?;
            let noise = d
                .noise
                .as_deref()
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
    };
    ds.normalise(d.normalisation);
    ds.fill_nan(0.0);
    if d.target == config::Target::Input {
        ds.targets = None;
    }
    Ok(ds)
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub seconds: f64,
    pub samples_per_s: f64,
}

/// Mean loss of `model` over the items `idx` (full code, no tunable draw).
pub fn evaluate(
    model: &Model,
    ds: &Dataset,
    idx: &[usize],
    exp: &Experiment,
    device: &Device,
) -> f64 {
    let mut total = 0.0;
    let mut n = 0usize;
    for b in ds.batches(idx, exp.batch_size, exp.seed, 0, false, false) {
        let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, device);
        let y = skyzip_nn::image_tensor(&b.y, b.n, b.ny, b.nx, device);
        let l: f32 = exp
            .loss
            .forward(model.reconstruct(x, None), y)
            .into_scalar::<f32>();
        total += l as f64 * b.n as f64;
        n += b.n;
    }
    total / n.max(1) as f64
}

/// Saves a model's weights as safetensors (replacing the file).
pub fn save_model(model: &Model, path: &Path) -> Result<(), TrainError> {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    model.save_into(&mut store).map_err(|e| io(path, e))
}

/// Loads weights saved by [`save_model`] into a model built from the same config.
pub fn load_model(exp: &Experiment, path: &Path, device: &Device) -> Result<Model, TrainError> {
    if !path.exists() {
        return Err(io(path, "no such model file"));
    }
    let mut model = exp.model_config()?.init(device);
    let mut store = SafetensorsStore::from_file(path);
    model.load_from(&mut store).map_err(|e| {
        io(
            path,
            format!("does not match the model of this config: {e}"),
        )
    })?;
    Ok(model)
}

/// Trains an experiment into `out`, calling `progress(epoch, batch, batches, loss)` as it goes.
pub fn train(
    exp: &Experiment,
    out: &Path,
    device: &Device,
    mut progress: impl FnMut(usize, usize, usize, f64),
) -> Result<Vec<EpochMetrics>, TrainError> {
    let mcfg = exp.model_config()?;
    let ds = build_dataset(exp)?;
    let split = ds.split(exp.val_fraction, exp.seed)?;
    if split.train.is_empty() {
        return Err(TrainError::Config(
            "no training samples after the validation split".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let cfg_path = out.join("config.json");
    std::fs::write(
        &cfg_path,
        serde_json::to_string_pretty(exp).unwrap_or_default(),
    )
    .map_err(|e| io(&cfg_path, e))?;
    let ad = device.clone().autodiff();
    ad.seed(exp.seed);
    let mut model = mcfg.init(&ad);
    let mut rng = ChaCha8Rng::seed_from_u64(exp.seed ^ 0x0074_7261_696e);
    let mut adam = AdamConfig::new().init();
    let mut adamw = AdamWConfig::new()
        .with_weight_decay(exp.optimizer.weight_decay as f32)
        .init();
    let csv_path = out.join("metrics.csv");
    let mut csv = std::fs::File::create(&csv_path).map_err(|e| io(&csv_path, e))?;
    writeln!(csv, "epoch,train_loss,val_loss,lr,seconds,samples_per_s")
        .map_err(|e| io(&csv_path, e))?;
    let mut history = Vec::new();
    let mut best = f64::INFINITY;
    let mut since_best = 0;
    for epoch in 1..=exp.epochs {
        let t = std::time::Instant::now();
        let lr = exp.optimizer.lr_at(epoch, exp.epochs);
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
        for (bi, b) in batches.into_iter().enumerate() {
            let x = skyzip_nn::image_tensor(&b.x, b.n, b.ny, b.nx, &ad);
            let y = skyzip_nn::image_tensor(&b.y, b.n, b.ny, b.nx, &ad);
            let loss = model.training_loss(&mcfg, x, y, exp.loss, &mut rng);
            let l = loss.clone().into_scalar::<f32>() as f64;
            if !l.is_finite() {
                return Err(TrainError::Config(format!(
                    "epoch {epoch}: the loss became {l}; lower optimizer.lr or check the normalisation"
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = match exp.optimizer.kind {
                config::OptKind::Adam => adam.step(lr, model, grads),
                config::OptKind::Adamw => adamw.step(lr, model, grads),
            };
            sum += l * b.n as f64;
            count += b.n;
            progress(epoch, bi + 1, nb, sum / count as f64);
        }
        let valid = model.valid();
        let val_idx = if split.val.is_empty() {
            &split.train
        } else {
            &split.val
        };
        let val_loss = evaluate(&valid, &ds, val_idx, exp, device);
        let secs = t.elapsed().as_secs_f64();
        let m = EpochMetrics {
            epoch,
            train_loss: sum / count.max(1) as f64,
            val_loss,
            seconds: secs,
            samples_per_s: count as f64 / secs,
        };
        writeln!(
            csv,
            "{},{},{},{},{:.3},{:.1}",
            epoch, m.train_loss, m.val_loss, lr, secs, m.samples_per_s
        )
        .map_err(|e| io(&csv_path, e))?;
        save_model(&valid, &out.join("last.safetensors"))?;
        if val_loss < best {
            best = val_loss;
            since_best = 0;
            save_model(&valid, &out.join("best.safetensors"))?;
        } else {
            since_best += 1;
        }
        if exp.checkpoint_every > 0 && epoch % exp.checkpoint_every == 0 {
            save_model(&valid, &out.join(format!("epoch-{epoch:04}.safetensors")))?;
        }
        history.push(m);
        if exp.early_stopping.is_some_and(|p| since_best >= p) {
            break;
        }
    }
    Ok(history)
}
