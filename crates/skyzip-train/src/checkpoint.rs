//! What a run folder holds, written so that an interruption at any moment leaves it usable.
//!
//! - `last.safetensors`, `best.safetensors`, `epoch-NNNN.safetensors`: weights (safetensors,
//!   loadable by PyTorch), each written to a temporary name and renamed into place.
//! - `state/`: what `--resume` needs to continue exactly — `model.bpk` (burnpack: weights with
//!   their parameter ids, which key the optimizer state), `optim.bpk` (+ `optim-var.bpk` for the
//!   variance decoder's optimizer), `state.json` (epochs done, best loss, history). The folder is
//!   built as `state.tmp/` and swapped in with renames.

use crate::{io, EpochMetrics, TrainError};
use serde::{Deserialize, Serialize};
use skyzip_nn::burn::optim::{ModuleOptimizer, OptimizerRecord};
use skyzip_nn::burn::store::{BurnpackStore, ModuleSnapshot, PathFilter, SafetensorsStore};
use skyzip_nn::model::Model;
use std::path::{Path, PathBuf};

/// Writes `path` through a temporary sibling and a rename.
fn atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Which parameters a weights file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Full,
    Encoder,
    /// The mean decoder and, for meanvar, the variance decoder.
    Decoder,
}

impl Part {
    pub fn parse(s: &str) -> Result<Part, String> {
        match s {
            "full" => Ok(Part::Full),
            "encoder" => Ok(Part::Encoder),
            "decoder" => Ok(Part::Decoder),
            _ => Err(format!("unknown part '{s}' (encoder, decoder, full)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Part::Full => "full",
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
        }
    }
    fn filter(self) -> PathFilter {
        match self {
            Part::Full => PathFilter::new().match_all(),
            Part::Encoder => PathFilter::new().with_regex(r"^encoder\."),
            Part::Decoder => PathFilter::new().with_regex(r"^(decoder|var_decoder)\."),
        }
    }
}

/// Saves a model's weights (or one part of them) as safetensors, replacing the file atomically.
pub fn save_weights<M: ModuleSnapshot>(
    model: &M,
    path: &Path,
    part: Part,
) -> Result<(), TrainError> {
    atomically(path, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp)
            .overwrite(true)
            .filter(part.filter())
            .metadata("skyzip.part", part.name());
        model.save_into(&mut store).map_err(|e| io(path, e))
    })
}

/// Loads weights saved by [`save_weights`] into `model`; a partial file fills only its part.
pub fn load_weights<M: ModuleSnapshot>(
    model: &mut M,
    path: &Path,
    part: Part,
) -> Result<(), TrainError> {
    if !path.exists() {
        return Err(io(path, "no such model file"));
    }
    load_into(model, SafetensorsStore::from_file(path), part).map_err(|e| io(path, e))
}

/// Loads safetensors bytes (a model compiled into a binary) as [`load_weights`] loads a file.
pub fn load_weights_bytes(model: &mut Model, bytes: Vec<u8>, part: Part) -> Result<(), String> {
    load_into(model, SafetensorsStore::from_bytes(Some(bytes)), part)
}

/// Applies a store to `model`: a full part must fill every parameter, a partial one its own.
fn load_into<M: ModuleSnapshot>(
    model: &mut M,
    store: SafetensorsStore,
    part: Part,
) -> Result<(), String> {
    let mut store = store
        .filter(part.filter())
        .allow_partial(part != Part::Full);
    let r = model
        .load_from(&mut store)
        .map_err(|e| format!("does not match the model of this config: {e}"))?;
    if !r.errors.is_empty() || (part == Part::Full && !r.missing.is_empty()) {
        return Err(format!(
            "does not match the model of this config (missing {:?}, errors {:?})",
            r.missing, r.errors
        ));
    }
    Ok(())
}

/// The format named in every export's sidecar.
pub const EXPORT_FORMAT: &str = "skyzip-model/1";

/// The JSON written beside an exported `F.safetensors` as `F.json`: what the weights are.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInfo {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// encoder, decoder or full.
    pub part: String,
    pub model: serde_json::Value,
    /// The normalisation the model was trained on (fitted per tile when applied).
    pub normalisation: skyzip_data::NormKind,
    /// The run and checkpoint the weights came from.
    pub run: String,
    pub checkpoint: String,
    /// `part: codec` only: the integer engine's format, and how many training stamps its
    /// scales were calibrated on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_stamps: Option<usize>,
}

impl ExportInfo {
    /// Parses a sidecar's text and the model config in it, naming what is wrong.
    pub fn parse(text: &str) -> Result<(ExportInfo, skyzip_nn::model::ModelConfig), String> {
        let info: ExportInfo =
            serde_json::from_str(text).map_err(|e| format!("not a skyzip export config: {e}"))?;
        if info.format != EXPORT_FORMAT {
            return Err(format!("format '{}' is not {EXPORT_FORMAT}", info.format));
        }
        let cfg = skyzip_nn::model::ModelConfig::from_json(&info.model)?;
        Ok((info, cfg))
    }
}

/// Where an export's sidecar config lives: `F.json` beside `F.safetensors`.
pub fn sidecar(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// Writes an export: the part of `model`'s weights that `info.part` names to `out`, and `info`
/// as the sidecar beside it. Returns the sidecar's path.
pub fn write_export(model: &Model, out: &Path, info: &ExportInfo) -> Result<PathBuf, TrainError> {
    let part = Part::parse(&info.part).map_err(TrainError::Config)?;
    save_weights(model, out, part)?;
    let side = sidecar(out);
    let text = serde_json::to_string_pretty(info).map_err(|e| io(&side, e))?;
    std::fs::write(&side, text).map_err(|e| io(&side, e))?;
    Ok(side)
}

/// The bookkeeping of a run between epochs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub epochs_done: usize,
    pub best: Option<f64>,
    pub since_best: usize,
    pub history: Vec<EpochMetrics>,
}

fn state_dir(out: &Path) -> PathBuf {
    out.join("state")
}

/// Writes the resume state: model with parameter ids, optimizer records, bookkeeping.
pub fn save_state<M: ModuleSnapshot>(
    out: &Path,
    model: &M,
    optims: &[&ModuleOptimizer],
    state: &RunState,
) -> Result<(), TrainError> {
    let tmp = out.join("state.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let mp = tmp.join("model.bpk");
    let mut store = BurnpackStore::from_file(&mp).overwrite(true);
    model.save_into(&mut store).map_err(|e| io(&mp, e))?;
    for (i, o) in optims.iter().enumerate() {
        let p = tmp.join(optim_name(i));
        o.to_record()
            .save(&p)
            .map_err(|e| io(&p, format!("{e:?}")))?;
    }
    let sp = tmp.join("state.json");
    let text = serde_json::to_string_pretty(state).map_err(|e| io(&sp, e))?;
    std::fs::write(&sp, text).map_err(|e| io(&sp, e))?;
    let dir = state_dir(out);
    let old = out.join("state.old");
    let _ = std::fs::remove_dir_all(&old);
    if dir.exists() {
        std::fs::rename(&dir, &old).map_err(|e| io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| io(&dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn optim_name(i: usize) -> &'static str {
    if i == 0 {
        "optim.bpk"
    } else {
        "optim-var.bpk"
    }
}

/// The folder holding a complete resume state (`state/`, or `state.old/` when an interruption
/// fell between the two renames of [`save_state`]).
pub fn find_state(out: &Path) -> Option<PathBuf> {
    [state_dir(out), out.join("state.old")]
        .into_iter()
        .find(|d| d.join("state.json").exists())
}

/// Loads a resume state into a freshly built model and optimizers.
pub fn load_state<M: ModuleSnapshot>(
    dir: &Path,
    model: &mut M,
    optims: Vec<ModuleOptimizer>,
) -> Result<(RunState, Vec<ModuleOptimizer>), TrainError> {
    let sp = dir.join("state.json");
    let text = std::fs::read_to_string(&sp).map_err(|e| io(&sp, e))?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| io(&sp, e))?;
    let mp = dir.join("model.bpk");
    let mut store = BurnpackStore::from_file(&mp);
    model
        .load_from(&mut store)
        .map_err(|e| io(&mp, format!("does not match the model of this config: {e}")))?;
    let mut loaded = Vec::new();
    for (i, o) in optims.into_iter().enumerate() {
        let p = dir.join(optim_name(i));
        let rec = OptimizerRecord::load(&p).map_err(|e| io(&p, format!("{e:?}")))?;
        loaded.push(o.load_record(rec));
    }
    Ok((state, loaded))
}
