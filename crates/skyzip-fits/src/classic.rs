//! fpack's codecs run in-process on an image: real compressed bytes (a complete FITS file,
//! headers included), decoded back, timed, and the errors
//! stated in units of the image's background noise σ.

use crate::compress::TileCompression;
use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::Handle;
use crate::image::{read_image, HduSelector, ImageHdu};
use crate::noise::noise_stats;
use crate::writer::write_image_hdu;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A compressed FITS file written by cfitsio to a private temporary file (removed on drop).
/// cfitsio's memory driver fails on GZIP tiles, so a real file (page cache) is used.
pub struct CompressedFile {
    path: PathBuf,
    len: usize,
}

static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl CompressedFile {
    /// Compresses `img` into a new FITS file, as fpack would.
    pub fn compress(img: &ImageHdu, compression: &TileCompression) -> Result<CompressedFile> {
        CompressedFile::write(img, Some(compression))
    }

    /// `img` as the only HDU of a new temporary file, tile-compressed or (None) as it is.
    pub(crate) fn write(
        img: &ImageHdu,
        compression: Option<&TileCompression>,
    ) -> Result<CompressedFile> {
        let path = std::env::temp_dir().join(format!(
            "skyzip-classic-{}-{}.fits",
            std::process::id(),
            FILE_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        crate::writer::track(&path);
        let mut file = CompressedFile { path, len: 0 };
        let h = Handle::create(&file.path)?;
        write_image_hdu(&h, img, compression)?;
        h.close()?;
        file.len = std::fs::metadata(&file.path)
            .map_err(|e| FitsError::new(&file.path, ErrorKind::Io(e.to_string())))?
            .len() as usize;
        Ok(file)
    }

    /// The file's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the compressed file to `dest` (e.g. to check it with funpack or fitsverify).
    pub fn save(&self, dest: &Path) -> Result<()> {
        std::fs::copy(&self.path, dest)
            .map(|_| ())
            .map_err(|e| FitsError::new(dest, ErrorKind::Io(e.to_string())))
    }

    /// Decodes the first image HDU.
    pub fn decompress(&self) -> Result<ImageHdu> {
        read_image(&self.path, &HduSelector::FirstImage)
    }
}

impl Drop for CompressedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        crate::writer::untrack(&self.path);
    }
}

/// One codec's result on one image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClassicResult {
    pub codec: String,
    pub lossless: bool,
    /// Size of the whole compressed FITS file (headers included).
    pub bytes: usize,
    pub bits_per_pixel: f64,
    /// Uncompressed pixel bytes / compressed file bytes.
    pub ratio: f64,
    pub rmse_sigma: f64,
    pub max_err_sigma: f64,
    /// True when every blank (NaN/BLANK) pixel is blank after decoding, and no other.
    pub mask_preserved: bool,
    /// True when decoded stored values equal the input bit for bit.
    pub exact: bool,
    pub encode_mb_s: f64,
    pub decode_mb_s: f64,
}

/// Errors of `decoded` against `original` in physical units; (rmse, max, mask equal).
pub fn physical_errors(original: &ImageHdu, decoded: &ImageHdu) -> (f64, f64, bool) {
    let a = original.physical();
    let b = decoded.physical();
    let mut sum = 0.0;
    let mut n = 0usize;
    let mut max: f64 = 0.0;
    let mut mask_ok = a.len() == b.len();
    for (x, y) in a.iter().zip(&b) {
        match (x.is_nan(), y.is_nan()) {
            (false, false) => {
                let d = x - y;
                sum += d * d;
                n += 1;
                max = max.max(d.abs());
            }
            (true, true) => {}
            _ => mask_ok = false,
        }
    }
    ((sum / n.max(1) as f64).sqrt(), max, mask_ok)
}

/// Background σ of an image in physical units (all planes stacked as rows).
pub fn image_sigma(img: &ImageHdu) -> f64 {
    noise_stats(&img.physical(), img.nx(), img.ny() * img.planes()).sigma()
}

/// An error in units of σ; on an image with σ = 0 (constant), 0 for no error and infinite for
/// any.
pub fn in_sigma(err: f64, sigma: f64) -> f64 {
    if sigma > 0.0 {
        err / sigma
    } else if err == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A codec's result on `img` from what it wrote and decoded: `bytes` of file, the decoded
/// image, and the seconds each encode and decode took (speeds are their medians).
pub(crate) fn measured(
    img: &ImageHdu,
    codec: String,
    bytes: usize,
    decoded: &ImageHdu,
    sigma: f64,
    (enc, dec): (&mut [f64], &mut [f64]),
) -> ClassicResult {
    let raw_bytes = (img.npix() * img.pixels.bytes_per_pixel()) as f64;
    let (rmse, max, mask_ok) = physical_errors(img, decoded);
    let exact = decoded.pixels.bit_identical(&img.pixels);
    ClassicResult {
        codec,
        lossless: exact,
        bytes,
        bits_per_pixel: bytes as f64 * 8.0 / img.npix() as f64,
        ratio: raw_bytes / bytes as f64,
        rmse_sigma: in_sigma(rmse, sigma),
        max_err_sigma: in_sigma(max, sigma),
        mask_preserved: mask_ok,
        exact,
        encode_mb_s: raw_bytes / 1e6 / median(enc),
        decode_mb_s: raw_bytes / 1e6 / median(dec),
    }
}

/// Runs one codec `repeats` times on `img`, with σ given (see [`image_sigma`]).
pub fn run_codec(
    img: &ImageHdu,
    compression: &TileCompression,
    sigma: f64,
    repeats: usize,
    keep: Option<&Path>,
) -> Result<ClassicResult> {
    run_codec_decoded(img, compression, sigma, repeats, keep).map(|r| r.0)
}

/// [`run_codec`], and the decoded image.
pub fn run_codec_decoded(
    img: &ImageHdu,
    compression: &TileCompression,
    sigma: f64,
    repeats: usize,
    keep: Option<&Path>,
) -> Result<(ClassicResult, ImageHdu)> {
    let repeats = repeats.max(1);
    let mut enc = Vec::with_capacity(repeats);
    let mut dec = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let m = CompressedFile::compress(img, compression)?;
        enc.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let d = m.decompress()?;
        dec.push(t.elapsed().as_secs_f64());
        last = Some((m, d));
    }
    let (m, d) = last.expect("at least one repeat");
    if let Some(dest) = keep {
        m.save(dest)?;
    }
    let r = measured(
        img,
        compression.label(img.bitpix()),
        m.len(),
        &d,
        sigma,
        (&mut enc, &mut dec),
    );
    Ok((r, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;
    use crate::image::Pixels;

    #[test]
    fn memory_round_trip_is_exact_for_rice() {
        let data: Vec<i16> = (0..64 * 32)
            .map(|i| ((i * 37) % 501) as i16 - 250)
            .collect();
        let img = ImageHdu::new(vec![64, 32], Pixels::I16(data), Header::default());
        let r = run_codec(&img, &TileCompression::parse("rice").unwrap(), 1.0, 1, None).unwrap();
        assert!(r.exact && r.mask_preserved);
        assert_eq!(r.rmse_sigma, 0.0);
        assert_eq!(r.bytes % 2880, 0);
    }
}
