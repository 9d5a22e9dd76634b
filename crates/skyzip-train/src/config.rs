//! The experiment config (JSON). Unknown fields and wrong types are errors naming the field.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use skyzip_data::NormKind;
use skyzip_nn::loss::Loss;
use skyzip_nn::model::ModelConfig;
use skyzip_sim::Simulator;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// The model: `{"name": "conv-ae", ...its parameters}` (see `skyzip models`).
    pub model: serde_json::Value,
    pub data: DataConfig,
    /// A name ("mse", "l1", "bce", "ssim", "ms-ssim", "ssim-l1") or an object with parameters.
    #[serde(default = "default_loss", deserialize_with = "de_loss")]
    pub loss: Loss,
    #[serde(default)]
    pub optimizer: OptConfig,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    pub epochs: usize,
    #[serde(default = "default_val")]
    pub val_fraction: f64,
    /// Save `epoch-NNNN.safetensors` every N epochs (0 = never; last and best are always kept).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default)]
    pub early_stopping: Option<usize>,
    #[serde(default)]
    pub seed: u64,
}

fn default_loss() -> Loss {
    Loss::Mse
}

fn de_loss<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Loss, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Loss::from_json(&v).map_err(serde::de::Error::custom)
}
fn default_batch() -> usize {
    16
}
fn default_val() -> f64 {
    0.2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Reconstruct the input (autoencoders).
    Input,
    /// The clean image (denoising).
    Clean,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    /// Noise model applied to the clean image for denoising sets (gaussian:S, poisson:S, …).
    #[serde(default)]
    pub noise: Option<String>,
    #[serde(default = "default_norm")]
    pub normalisation: NormKind,
    #[serde(default)]
    pub augment: bool,
    /// Turn every image (and its target) by its own random angle about the centre, once, before
    /// normalising (seed 003's extra randomness, after telescopes' rotating fields).
    #[serde(default)]
    pub rotate: bool,
    /// Resize every image (bilinear) to `resize`×`resize` before normalising (seed 001 took its
    /// radio maps to 187×187; a U-Net takes multiples of 16).
    #[serde(default)]
    pub resize: Option<usize>,
    #[serde(default = "default_target")]
    pub target: Target,
    /// Train on a random `crop`×`crop` window of each image (drawn afresh every batch);
    /// validation uses whole images. Lets big stamps train at small-stamp cost.
    #[serde(default)]
    pub crop: Option<usize>,
    /// The held-out test set `skyzip evaluate` draws from the same simulator: `n` samples with
    /// another `seed` (never seen in training).
    #[serde(default)]
    pub test: Option<TestSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSet {
    pub n: usize,
    pub seed: u64,
}

fn default_norm() -> NormKind {
    NormKind::None
}
fn default_target() -> Target {
    Target::Input
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// Samples drawn from a simulator (gce, ccd, radio, toy-linear, toy-linear-1d, toy-blobs).
    Simulator { kind: String, n: usize, seed: u64 },
    /// Stamps cut from FITS files.
    Fits {
        files: Vec<PathBuf>,
        stamp: usize,
        #[serde(default)]
        stride: Option<usize>,
    },
    /// A dataset written by `skyzip simulate` or `skyzip stamps` (file or folder).
    Dataset { path: PathBuf },
    /// The items of several sources together (same image size), e.g. simulated and real
    /// stamps.
    Mix { sources: Vec<DataSource> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptKind {
    Adam,
    Adamw,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptConfig {
    pub kind: OptKind,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// "constant" or "cosine" (to 1 % of lr at the last epoch).
    #[serde(default = "default_schedule")]
    pub schedule: String,
}

fn default_schedule() -> String {
    "constant".into()
}

impl Default for OptConfig {
    fn default() -> Self {
        OptConfig {
            kind: OptKind::Adam,
            lr: 1e-3,
            weight_decay: 0.0,
            schedule: default_schedule(),
        }
    }
}

impl OptConfig {
    pub fn lr_at(&self, epoch: usize, epochs: usize) -> f64 {
        match self.schedule.as_str() {
            "cosine" if epochs > 1 => {
                let t = (epoch - 1) as f64 / (epochs - 1) as f64;
                let lo = 0.01 * self.lr;
                lo + 0.5 * (self.lr - lo) * (1.0 + (std::f64::consts::PI * t).cos())
            }
            _ => self.lr,
        }
    }
}

/// The simulator named `kind` with its default settings.
pub fn simulator(kind: &str) -> Result<Box<dyn Simulator>, TrainError> {
    skyzip_sim::by_name(kind).map_err(|e| TrainError::Config(format!("data.source: {e}")))
}

impl Experiment {
    /// Reads and checks a config file; every problem names the file and the field.
    pub fn load(path: &Path) -> Result<Experiment, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::io(path, e))?;
        let exp: Experiment = serde_json::from_str(&text).map_err(|e| crate::io(path, e))?;
        exp.check().map_err(|e| crate::io(path, e))?;
        Ok(exp)
    }

    /// Checks what serde cannot: the model, the loss and the numbers.
    pub fn check(&self) -> Result<(), TrainError> {
        let m = self.model_config()?;
        crate::eval::dae_noise(&m).map_err(TrainError::Config)?;
        if self.batch_size == 0 || self.epochs == 0 {
            return Err(TrainError::Config(
                "batch_size and epochs must be at least 1".into(),
            ));
        }
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return Err(TrainError::Config(format!(
                "optimizer.lr {} must be positive",
                self.optimizer.lr
            )));
        }
        if !["constant", "cosine"].contains(&self.optimizer.schedule.as_str()) {
            return Err(TrainError::Config(format!(
                "optimizer.schedule '{}' (constant or cosine)",
                self.optimizer.schedule
            )));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(TrainError::Config(format!(
                "val_fraction {} is not in [0, 1)",
                self.val_fraction
            )));
        }
        check_source(&self.data.source)
    }

    pub fn model_config(&self) -> Result<ModelConfig, TrainError> {
        ModelConfig::from_json(&self.model).map_err(TrainError::Config)
    }
}

fn check_source(src: &DataSource) -> Result<(), TrainError> {
    match src {
        DataSource::Simulator { kind, n, .. } => {
            simulator(kind)?;
            if *n == 0 {
                return Err(TrainError::Config(
                    "data.source.n must be at least 1".into(),
                ));
            }
        }
        DataSource::Mix { sources } => {
            if sources.is_empty() {
                return Err(TrainError::Config("data.source.sources is empty".into()));
            }
            sources.iter().try_for_each(check_source)?;
        }
        _ => {}
    }
    Ok(())
}
