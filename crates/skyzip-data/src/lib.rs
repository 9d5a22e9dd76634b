//! skyzip-data: from images to training arrays (the stage between the simulators/FITS files and
//! the training crate). Datasets from simulators, FITS folders or `skyzip simulate` output;
//! stamps; photutils-compatible source masks; invertible normalisations; augmentation, resizing,
//! seeded splits and batches. Plain `f32` arrays: no deep-learning framework here.

pub mod augment;
pub mod dataset;
pub mod mask;
pub mod norm;
pub mod stamps;

pub use augment::{resize_bilinear, rotate_bilinear, Dihedral};
pub use dataset::{Batch, Dataset, Origin, Split};
pub use mask::{
    detect_sources, detect_threshold, dilate, sigma_clip, sigma_clipped_stats, source_mask,
    Footprint, SourceMaskSpec,
};
pub use norm::{Norm, NormKind};
pub use stamps::{cut, Stamp, StampSpec};

use std::path::Path;

/// What went wrong building a dataset; file problems name the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error(transparent)]
    Fits(#[from] skyzip_fits::FitsError),
}

impl DataError {
    pub fn invalid(why: impl Into<String>) -> Self {
        DataError::Invalid(why.into())
    }
    pub fn file(path: &Path, why: &str) -> Self {
        DataError::File {
            path: path.display().to_string(),
            why: why.to_string(),
        }
    }
}
