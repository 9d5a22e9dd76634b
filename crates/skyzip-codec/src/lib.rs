//! skyzip-codec: the learned FITS codec.
//!
//! A file's image HDUs are cut into tiles; each tile goes through a `meanvar` conv autoencoder
//! whose latent is quantised and entropy-coded, and whose two decoders give a per-pixel
//! prediction μ and spread σ; the residual x − round(μ) is coded exactly (lossless) or with a
//! step 2e+1 (|error| ≤ e) under a discretised Laplace of scale σ snapped to a fixed table.
//!
//! Determinism: the probability tables are built with IEEE-exact arithmetic
//! ([`detmath`]), so they are the same everywhere. The network (burn's CPU kernels) and the
//! normalisation (libm's asinh/sinh) are floating point: the same binary on the same CPU gives
//! the same μ and σ for any thread count (tested), but another CPU or libm may not. Each tile
//! carries a hash of its decoded pixels, so a disagreement is a clear error, never a wrong image.
//!
//! [`engine`] is the integer replacement for burn in this path (int8 weights, int16
//! activations, exact i32 sums, integer requantisation), quantised after training; it is not
//! the default yet (`Predictor::integer` opts in): files do not yet record which engine or
//! integer model wrote them.

pub mod codec;
pub mod container;
pub mod detmath;
pub mod engine;
pub mod entropy;
pub mod floats;
pub mod fuzzing;
pub mod latent_code;
pub mod predict;
pub mod prior;
pub mod tile;

pub use codec::{compress, decompress, CodedHdu, Mode, Options, Report};
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
