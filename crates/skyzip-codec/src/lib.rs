//! skyzip-codec: the learned FITS codec.

pub mod detmath;
pub mod entropy;
