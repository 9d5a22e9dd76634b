//! skyzip-codec: the learned FITS codec.
//!
//! A file's image HDUs are cut into tiles; each tile goes through a `meanvar` conv autoencoder
//! whose latent is quantised and entropy-coded, and whose two decoders give a per-pixel
//! prediction μ and spread σ; the residual x − round(μ) is coded exactly (lossless), with a
//! step 2e+1 (|error| ≤ e), or in the RMSE mode on a step chosen for an image RMSE with
//! rate–distortion-optimised indices, under a discretised Laplace of scale σ snapped to a fixed
//! table.
//!
//! Determinism: every number that decides the bitstream is an integer or an exactly
//! specified IEEE-754 operation, so every machine — any CPU, thread count, build flags, or later
//! release — writes and reads the same bits:
//! - the network is the integer [`engine`] (int8 weights, int16 activations, exact i32 sums,
//!   integer requantisation); its fast kernels and its scalar reference agree bit for bit;
//! - the normalisation and the probability tables use [`detmath`] (exp, ln, asinh, sinh, … from
//!   +, −, ×, ÷ and √, which IEEE-754 rounds exactly), never libm;
//! - a learned prior is stored as integer frequency tables in the model file.
//!
//! No deep-learning framework is in this crate. Each tile still carries a hash of its decoded
//! pixels, so corrupt data is a clear error, never a wrong image. Files record the format
//! version (SZFORMAT, [`codec::FORMAT_VERSION`]) and the model's name and hash; golden files of
//! every format version and bundled model are decoded by the tests.

pub mod codec;
pub mod container;
pub mod detmath;
pub mod engine;
pub mod entropy;
pub mod floats;
pub mod fuzzing;
pub mod header;
pub mod histogram;
pub mod image;
pub mod latent_code;
pub mod predict;
pub mod prior;
pub mod rate;
pub mod tile;

pub use codec::{compress, decompress, verify, Mode, Options, Report, Verified};
pub use header::CodedHdu;
pub use predict::Predictor;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error(transparent)]
    Fits(#[from] skyzip_fits::FitsError),
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("model {model}: {why}")]
    Model { model: String, why: String },
}

impl CodecError {
    /// The error of a file: its path and what is wrong with it.
    pub(crate) fn file(path: &std::path::Path, why: impl std::fmt::Display) -> CodecError {
        CodecError::File {
            path: path.display().to_string(),
            why: why.to_string(),
        }
    }
}
