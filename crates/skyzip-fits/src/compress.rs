//! fpack's tile compression, set up through cfitsio before an image HDU is created.

use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::Handle;
use fitsio::sys;
use std::fmt;
use std::os::raw::{c_int, c_long};

/// cfitsio's tile-compression algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rice,
    Gzip1,
    Gzip2,
    Hcompress,
    Plio,
}

impl Algorithm {
    fn code(self) -> c_int {
        (match self {
            Algorithm::Rice => sys::RICE_1,
            Algorithm::Gzip1 => sys::GZIP_1,
            Algorithm::Gzip2 => sys::GZIP_2,
            Algorithm::Hcompress => sys::HCOMPRESS_1,
            Algorithm::Plio => sys::PLIO_1,
        }) as c_int
    }

    /// The ZCMPTYPE value cfitsio writes.
    pub fn zcmptype(self) -> &'static str {
        match self {
            Algorithm::Rice => "RICE_1",
            Algorithm::Gzip1 => "GZIP_1",
            Algorithm::Gzip2 => "GZIP_2",
            Algorithm::Hcompress => "HCOMPRESS_1",
            Algorithm::Plio => "PLIO_1",
        }
    }
}

/// Dithering applied before quantising floats (fpack's `-nodither`, default, `-q2`… options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    None,
    /// SUBTRACTIVE_DITHER_1: every pixel dithered.
    Subtractive1,
    /// SUBTRACTIVE_DITHER_2: as 1, but exact zeros stay zero.
    Subtractive2,
}

/// A complete tile-compression setting, as fpack would take it on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct TileCompression {
    pub algorithm: Algorithm,
    /// HCOMPRESS scale in units of the tile's noise σ (fpack `-s`); 0 = lossless.
    pub hcomp_scale: f32,
    pub hcomp_smooth: bool,
    /// Float quantisation level q (step σ/q, fpack `-q`); 0 = lossless (GZIP only). Ignored for integers.
    pub quantize: f32,
    pub dither: Dither,
    /// Dither seed 1…10000 (0 = from the clock, as cfitsio does — avoid for reproducibility).
    pub seed: i32,
    /// Tile shape in FITS order; None = cfitsio's default (row by row; 16 rows for HCOMPRESS).
    pub tile: Option<Vec<usize>>,
}

impl TileCompression {
    /// fpack's defaults for an algorithm: q = 4 with subtractive dither 1, seed 1.
    pub fn new(algorithm: Algorithm) -> Self {
        TileCompression {
            algorithm,
            hcomp_scale: 0.0,
            hcomp_smooth: false,
            quantize: 4.0,
            dither: Dither::Subtractive1,
            seed: 1,
            tile: None,
        }
    }

    /// True when this setting loses information on an image of this BITPIX.
    pub fn is_lossy_for(&self, bitpix: i32) -> bool {
        (self.algorithm == Algorithm::Hcompress && self.hcomp_scale > 0.0)
            || (bitpix < 0 && self.quantize > 0.0)
    }

    /// Parses `rice`, `gzip1`, `gzip2`, `hcompress:s=4`, `plio`, `quantize:q=4` (RICE + q),
    /// with options `:q=Q`, `:s=S`, `:smooth`, `:dither=0|1|2`, `:seed=N`, `:tile=NXxNY`.
    pub fn parse(spec: &str) -> std::result::Result<Self, String> {
        let mut parts = spec.split(':');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let algorithm = match name.as_str() {
            "rice" | "rice_1" | "quantize" | "q" => Algorithm::Rice,
            "gzip" | "gzip1" | "gzip_1" => Algorithm::Gzip1,
            "gzip2" | "gzip_2" => Algorithm::Gzip2,
            "hcompress" | "hcompress_1" | "h" => Algorithm::Hcompress,
            "plio" | "plio_1" => Algorithm::Plio,
            other => {
                return Err(format!(
                    "unknown codec '{other}' (known: rice, gzip1, gzip2, hcompress, plio, quantize)"
                ))
            }
        };
        let mut c = TileCompression::new(algorithm);
        for opt in parts {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let bad = || format!("bad value '{v}' for option '{k}' in codec '{spec}'");
            match k.trim() {
                "q" => c.quantize = v.parse().map_err(|_| bad())?,
                "s" => c.hcomp_scale = v.parse().map_err(|_| bad())?,
                "smooth" => c.hcomp_smooth = true,
                "seed" => c.seed = v.parse().map_err(|_| bad())?,
                "dither" => {
                    c.dither = match v {
                        "0" | "none" => Dither::None,
                        "1" => Dither::Subtractive1,
                        "2" => Dither::Subtractive2,
                        _ => return Err(bad()),
                    }
                }
                "tile" => {
                    let t: std::result::Result<Vec<usize>, _> =
                        v.split(['x', ',']).map(str::parse).collect();
                    c.tile = Some(t.map_err(|_| bad())?);
                }
                other => return Err(format!("unknown option '{other}' in codec '{spec}'")),
            }
        }
        if c.quantize < 0.0 || c.hcomp_scale < 0.0 || !(0..=10000).contains(&c.seed) {
            return Err(format!("out-of-range value in codec '{spec}'"));
        }
        Ok(c)
    }

    /// A label for tables: the codec with the options that matter for this BITPIX.
    pub fn label(&self, bitpix: i32) -> String {
        let mut s = self.algorithm.zcmptype().to_string();
        if self.algorithm == Algorithm::Hcompress && self.hcomp_scale > 0.0 {
            s.push_str(&format!(" s={}", self.hcomp_scale));
        }
        if bitpix < 0 {
            if self.quantize > 0.0 {
                s.push_str(&format!(" q={}", self.quantize));
            } else {
                s.push_str(" lossless");
            }
        }
        s
    }

    /// Applies the setting to an open output file; the next image created there is compressed.
    pub(crate) fn apply(&self, h: &Handle, bitpix: i32) -> Result<()> {
        let mut status = 0;
        if bitpix < 0
            && self.quantize == 0.0
            && !matches!(self.algorithm, Algorithm::Gzip1 | Algorithm::Gzip2)
        {
            return Err(FitsError::new(
                &h.path,
                ErrorKind::BadOption(format!(
                    "lossless float compression (q=0) needs GZIP, not {}",
                    self.algorithm.zcmptype()
                )),
            ));
        }
        unsafe {
            sys::fits_set_compression_type(h.ptr, self.algorithm.code(), &mut status);
            sys::fits_set_quantize_level(h.ptr, self.quantize, &mut status);
            let method = match self.dither {
                Dither::None => sys::NO_DITHER,
                Dither::Subtractive1 => sys::SUBTRACTIVE_DITHER_1 as c_int,
                Dither::Subtractive2 => sys::SUBTRACTIVE_DITHER_2 as c_int,
            };
            sys::fits_set_quantize_method(h.ptr, method, &mut status);
            sys::fits_set_dither_seed(h.ptr, self.seed, &mut status);
            sys::fits_set_hcomp_scale(h.ptr, self.hcomp_scale, &mut status);
            sys::fits_set_hcomp_smooth(h.ptr, self.hcomp_smooth as c_int, &mut status);
            if let Some(t) = &self.tile {
                let mut dims: Vec<c_long> = t.iter().map(|&d| d as c_long).collect();
                sys::fits_set_tile_dim(h.ptr, dims.len() as c_int, dims.as_mut_ptr(), &mut status);
            }
        }
        h.check(status)
    }

    /// Switches compression off again for the next HDU.
    pub(crate) fn reset(h: &Handle) {
        let mut status = 0;
        unsafe { sys::fits_set_compression_type(h.ptr, 0, &mut status) };
        if status != 0 {
            crate::ffi::status_message(status);
        }
    }
}

impl fmt::Display for TileCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label(-32))
    }
}
