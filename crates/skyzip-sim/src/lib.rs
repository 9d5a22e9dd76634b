//! skyzip-sim: simulators that make labelled astronomical images with no network access (the
//! second stage of skyzip's flow, above the FITS layer and below datasets and training).
//!
//! Every sample is a pure function of `(seed, index)`: its random stream is a ChaCha8 generator
//! keyed by both, so datasets are reproducible and generation in parallel gives the same bytes
//! for any thread count. Specification: `shared/specs/simulators.md`.

pub mod ccd;
pub mod gce;
pub mod noise;
pub mod radio;
pub mod toy;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One simulated image with its labels. Images are row-major `ny`×`nx` (row 0 = lowest y).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub nx: usize,
    pub ny: usize,
    /// The observation.
    pub image: Vec<f32>,
    /// The noiseless image (the target for denoising).
    pub clean: Vec<f32>,
    /// Scalar parameters (regression targets).
    pub params: BTreeMap<String, f64>,
    /// Further per-pixel maps (templates, point-source maps, …).
    pub maps: BTreeMap<String, Vec<f32>>,
    /// Per-pixel boolean labels (segmentation targets).
    pub masks: BTreeMap<String, Vec<bool>>,
    /// Objects in the sample (sources, components), one row each.
    pub catalog: Catalog,
}

/// A table of numbers with named columns (a source catalogue).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Catalog {
    pub fn new(columns: &[&str]) -> Catalog {
        Catalog {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    /// Appends a row; it must have one value per column.
    pub fn push(&mut self, row: Vec<f64>) {
        assert_eq!(row.len(), self.columns.len(), "catalogue row width");
        self.rows.push(row);
    }
}

/// Errors for impossible simulator settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("invalid parameter {name}: {why}")]
    Invalid { name: &'static str, why: String },
}

/// A simulator: a sample is determined by its generator alone.
pub trait Simulator: Sync {
    /// Short name used by the CLI and in file headers.
    fn name(&self) -> &'static str;
    /// Draws one sample from the generator.
    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample;
}

/// Every simulator's name, as the CLI and experiment configs spell it.
pub const KINDS: &[&str] = &[
    "gce",
    "ccd",
    "radio",
    "toy-linear",
    "toy-linear-1d",
    "toy-blobs",
];

/// The simulator named `kind` with its default settings.
pub fn by_name(kind: &str) -> Result<Box<dyn Simulator>, SimError> {
    Ok(match kind {
        "gce" => Box::new(gce::Gce::default()),
        "ccd" => Box::new(ccd::Ccd::new(ccd::CcdConfig::default())?),
        "radio" => Box::new(radio::Radio::new(radio::RadioConfig::default())?),
        "toy-linear" => Box::new(toy::Linear::new(toy::LinearConfig::default())?),
        "toy-linear-1d" => Box::new(toy::Linear::new(toy::LinearConfig {
            one_d: true,
            ..Default::default()
        })?),
        "toy-blobs" => Box::new(toy::Blobs::default()),
        other => {
            return Err(SimError::Invalid {
                name: "kind",
                why: format!(
                    "unknown simulator '{other}' (available: {})",
                    KINDS.join(", ")
                ),
            })
        }
    })
}

/// The generator of sample `index` of a dataset with `seed`.
pub fn sample_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(b"skyzip\0\0");
    ChaCha8Rng::from_seed(key)
}

/// The generator of the denoising noise of sample `index`: a stream of its own, keyed by the same
/// (seed, index), so adding noise never changes the simulator's draws.
pub fn noise_rng(seed: u64, index: u64) -> ChaCha8Rng {
    sample_rng(seed ^ 0x6e6f697365, index)
}

/// Threads that [`generate`] runs on (rayon's pool; `RAYON_NUM_THREADS` sets it).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Samples `start..start+n` of a dataset, in parallel; the result does not depend on threads.
pub fn generate<S: Simulator + ?Sized>(sim: &S, seed: u64, start: u64, n: usize) -> Vec<Sample> {
    (0..n as u64)
        .into_par_iter()
        .map(|i| sim.sample(&mut sample_rng(seed, start + i)))
        .collect()
}
