//! skyzip-fits: the bottom of skyzip's data flow. Reads and writes FITS images of any BITPIX
//! exactly (raw stored values, BSCALE/BZERO, BLANK/NaN masks, every header card) through cfitsio,
//! runs fpack's tile compression in-process (the classical baselines every learned codec is held
//! against), and estimates background and noise σ as fpack does.

mod classic;
mod compress;
mod error;
mod ffi;
mod header;
mod image;
mod noise;
mod peers;
mod table;
mod writer;

pub use classic::{
    image_sigma, in_sigma, physical_errors, run_codec, run_codec_decoded, ClassicResult,
    CompressedFile,
};
pub use compress::{Algorithm, Dither, TileCompression};
pub use error::{ErrorKind, FitsError, Result};
pub use header::{read_header, Card, Header};
pub use image::{
    find_image_hdu, fits_shape, list_hdus, read_all_images, read_image, HduInfo, HduSelector,
    ImageHdu, Pixels,
};
pub use noise::{clipped_background, noise_bits, noise_stats, noise_stats_rows, NoiseStats};
pub use peers::{header_bytes, peer_versions, run_peer, run_peer_decoded, PeerCodec};
pub use table::{read_table, read_table_at, Column, Table};
pub use writer::{remove_unfinished_outputs, rewrite_file, verify_checksums, Checksum, FitsWriter};
