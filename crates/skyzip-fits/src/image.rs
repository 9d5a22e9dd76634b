//! Image HDUs: raw stored pixels of any BITPIX, their scaling, blanks and header.

use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::Handle;
use crate::header::Header;
use fitsio::sys;
use std::os::raw::{c_int, c_void};
use std::path::Path;

/// Pixels exactly as stored in the file (before BSCALE/BZERO), in FITS (row-major, x fastest) order.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    U8(Vec<u8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

macro_rules! each_pixels {
    ($p:expr, $v:ident => $e:expr) => {
        match $p {
            Pixels::U8($v) => $e,
            Pixels::I16($v) => $e,
            Pixels::I32($v) => $e,
            Pixels::I64($v) => $e,
            Pixels::F32($v) => $e,
            Pixels::F64($v) => $e,
        }
    };
}

impl Pixels {
    pub fn len(&self) -> usize {
        each_pixels!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The FITS BITPIX of this storage type.
    pub fn bitpix(&self) -> i32 {
        match self {
            Pixels::U8(_) => 8,
            Pixels::I16(_) => 16,
            Pixels::I32(_) => 32,
            Pixels::I64(_) => 64,
            Pixels::F32(_) => -32,
            Pixels::F64(_) => -64,
        }
    }

    /// Bytes per pixel as stored.
    pub fn bytes_per_pixel(&self) -> usize {
        (self.bitpix().unsigned_abs() / 8) as usize
    }

    pub fn is_float(&self) -> bool {
        self.bitpix() < 0
    }

    /// An all-zero buffer of `n` pixels for this BITPIX.
    pub fn zeros(bitpix: i32, n: usize) -> Option<Self> {
        Some(match bitpix {
            8 => Pixels::U8(vec![0; n]),
            16 => Pixels::I16(vec![0; n]),
            32 => Pixels::I32(vec![0; n]),
            64 => Pixels::I64(vec![0; n]),
            -32 => Pixels::F32(vec![0.0; n]),
            -64 => Pixels::F64(vec![0.0; n]),
            _ => return None,
        })
    }

    /// The stored value of pixel `i` as f64 (exact for all but |int64| > 2^53).
    #[allow(clippy::unnecessary_cast)]
    pub fn raw_f64(&self, i: usize) -> f64 {
        each_pixels!(self, v => v[i] as f64)
    }

    /// Appends the stored integers of pixels `range` to `out` as f64, `blank`'s value as NaN;
    /// false (nothing appended) for float pixels.
    pub fn ints_as_f64(
        &self,
        range: std::ops::Range<usize>,
        blank: Option<i64>,
        out: &mut Vec<f64>,
    ) -> bool {
        fn go<T: Copy + Into<i64>>(v: &[T], blank: Option<i64>, out: &mut Vec<f64>) {
            out.extend(v.iter().map(|&x| {
                let x: i64 = x.into();
                if Some(x) == blank {
                    f64::NAN
                } else {
                    x as f64
                }
            }));
        }
        match self {
            Pixels::U8(v) => go(&v[range], blank, out),
            Pixels::I16(v) => go(&v[range], blank, out),
            Pixels::I32(v) => go(&v[range], blank, out),
            Pixels::I64(v) => go(&v[range], blank, out),
            _ => return false,
        }
        true
    }

    /// The stored value of pixel `i` as an integer, for integer types.
    pub fn raw_i64(&self, i: usize) -> Option<i64> {
        match self {
            Pixels::U8(v) => Some(v[i] as i64),
            Pixels::I16(v) => Some(v[i] as i64),
            Pixels::I32(v) => Some(v[i] as i64),
            Pixels::I64(v) => Some(v[i]),
            _ => None,
        }
    }

    /// The stored bits of pixel `i`: a float's IEEE bit pattern (NaN payloads and −0.0 kept), an
    /// integer's two's complement, widened to 64 bits.
    pub fn raw_bits(&self, i: usize) -> u64 {
        match self {
            Pixels::F32(v) => v[i].to_bits() as u64,
            Pixels::F64(v) => v[i].to_bits(),
            _ => self.raw_i64(i).unwrap_or(0) as u64,
        }
    }

    pub(crate) fn datatype(&self) -> c_int {
        (match self {
            Pixels::U8(_) => sys::TBYTE,
            Pixels::I16(_) => sys::TSHORT,
            Pixels::I32(_) => sys::TINT,
            Pixels::I64(_) => sys::TLONGLONG,
            Pixels::F32(_) => sys::TFLOAT,
            Pixels::F64(_) => sys::TDOUBLE,
        }) as c_int
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut c_void {
        each_pixels!(self, v => v.as_mut_ptr() as *mut c_void)
    }

    /// True when both hold the same bits (NaN payloads included).
    pub fn bit_identical(&self, other: &Pixels) -> bool {
        match (self, other) {
            (Pixels::F32(a), Pixels::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Pixels::F64(a), Pixels::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => self == other,
        }
    }
}

/// An image's shape in FITS order, NAXIS1 × NAXIS2 (× NAXIS3): "1392×1040". Every command
/// prints shapes this way.
pub fn fits_shape(axes: &[usize]) -> String {
    axes.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

/// Which HDU to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HduSelector {
    /// The first HDU that holds image data (an empty primary is skipped).
    FirstImage,
    /// By 0-based index (0 = primary).
    Index(usize),
    /// By EXTNAME (case-insensitive).
    Name(String),
}

impl std::str::FromStr for HduSelector {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s.parse::<usize>() {
            Ok(i) => HduSelector::Index(i),
            Err(_) => HduSelector::Name(s.to_string()),
        })
    }
}

/// One image HDU: pixels as stored, scaling, blank value, header and origin.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageHdu {
    /// 0-based HDU index in the file it came from.
    pub hdu: usize,
    pub extname: Option<String>,
    /// Axis lengths in FITS order: NAXIS1 (x, fastest) first.
    pub axes: Vec<usize>,
    pub pixels: Pixels,
    pub bscale: f64,
    pub bzero: f64,
    /// BLANK of integer images: stored value meaning "no data".
    pub blank: Option<i64>,
    pub header: Header,
    /// ZCMPTYPE when the HDU was tile-compressed in its file.
    pub compression: Option<String>,
}

impl ImageHdu {
    /// Builds an image from physical-type pixels and a header (structural cards are derived).
    pub fn new(axes: Vec<usize>, pixels: Pixels, header: Header) -> Self {
        let bscale = header.f64("BSCALE").unwrap_or(1.0);
        let bzero = header.f64("BZERO").unwrap_or(0.0);
        // BLANK applies to integer images only, as when reading.
        let blank = if pixels.bitpix() > 0 {
            header.f64("BLANK").map(|b| b as i64)
        } else {
            None
        };
        ImageHdu {
            hdu: 0,
            extname: header.string("EXTNAME"),
            axes,
            pixels,
            bscale,
            bzero,
            blank,
            header,
            compression: None,
        }
    }

    pub fn bitpix(&self) -> i32 {
        self.pixels.bitpix()
    }

    pub fn npix(&self) -> usize {
        self.pixels.len()
    }

    /// Row length (NAXIS1).
    pub fn nx(&self) -> usize {
        self.axes.first().copied().unwrap_or(1)
    }

    /// Number of rows in one plane (NAXIS2, 1 for a 1-D image).
    pub fn ny(&self) -> usize {
        self.axes.get(1).copied().unwrap_or(1)
    }

    /// Number of 2-D planes (product of NAXIS3…).
    pub fn planes(&self) -> usize {
        self.axes.iter().skip(2).product::<usize>().max(1)
    }

    /// Shape in numpy order (slowest axis first), e.g. "1040x1392".
    pub fn shape_string(&self) -> String {
        fits_shape(&self.axes)
    }

    /// True when BZERO/BSCALE make a 16-bit image unsigned (uint16).
    pub fn is_unsigned16(&self) -> bool {
        self.bitpix() == 16 && self.bscale == 1.0 && self.bzero == 32768.0
    }

    /// True where a pixel holds no data: BLANK for integers, NaN for floats.
    pub fn is_blank(&self, i: usize) -> bool {
        match self.pixels.raw_i64(i) {
            Some(v) => self.blank == Some(v),
            None => self.pixels.raw_f64(i).is_nan(),
        }
    }

    /// The blank mask (true = no data).
    pub fn mask(&self) -> Vec<bool> {
        (0..self.npix()).map(|i| self.is_blank(i)).collect()
    }

    pub fn blank_count(&self) -> usize {
        (0..self.npix()).filter(|&i| self.is_blank(i)).count()
    }

    /// Physical values `BZERO + BSCALE·stored`, NaN where blank.
    pub fn physical(&self) -> Vec<f64> {
        self.physical_range(0..self.npix())
    }

    /// Plane `p` of the physical values.
    pub fn physical_plane(&self, p: usize) -> Vec<f64> {
        let n = self.nx() * self.ny();
        self.physical_range(p * n..(p + 1) * n)
    }

    fn physical_range(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let (s, z) = (self.bscale, self.bzero);
        range
            .map(|i| {
                if self.is_blank(i) {
                    f64::NAN
                } else {
                    z + s * self.pixels.raw_f64(i)
                }
            })
            .collect()
    }
}

/// A short description of one HDU of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct HduInfo {
    pub index: usize,
    pub extname: Option<String>,
    /// "image", "compressed image", "binary table", "ascii table".
    pub kind: &'static str,
    pub bitpix: i32,
    pub axes: Vec<usize>,
}

impl HduInfo {
    pub fn has_image(&self) -> bool {
        self.kind.ends_with("image") && !self.axes.is_empty() && self.axes.iter().all(|&a| a > 0)
    }
}

/// Lists the HDUs of a file.
pub fn list_hdus(path: &Path) -> Result<Vec<HduInfo>> {
    let h = Handle::open(path)?;
    let n = h.num_hdus()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(hdu_info(&h, i)?);
    }
    Ok(out)
}

fn hdu_info(h: &Handle, index: usize) -> Result<HduInfo> {
    let t = h.goto(index)?;
    let extname = h.key_string("EXTNAME");
    if t != sys::IMAGE_HDU as c_int {
        let kind = if t == sys::BINARY_TBL as c_int {
            "binary table"
        } else {
            "ascii table"
        };
        return Ok(HduInfo {
            index,
            extname,
            kind,
            bitpix: 8,
            axes: vec![],
        });
    }
    let (bitpix, axes) = image_geometry(h)?;
    Ok(HduInfo {
        index,
        extname,
        kind: if h.is_compressed() {
            "compressed image"
        } else {
            "image"
        },
        bitpix,
        axes,
    })
}

fn image_geometry(h: &Handle) -> Result<(i32, Vec<usize>)> {
    let mut bitpix = 0;
    let mut naxis = 0;
    let mut naxes = [0i64; 9];
    let mut status = 0;
    unsafe {
        sys::ffgiprll(
            h.ptr,
            9,
            &mut bitpix,
            &mut naxis,
            naxes.as_mut_ptr(),
            &mut status,
        )
    };
    h.check(status)?;
    if !matches!(bitpix, 8 | 16 | 32 | 64 | -32 | -64) {
        return Err(h.err(ErrorKind::UnsupportedBitpix(bitpix)));
    }
    let naxis = (naxis.max(0) as usize).min(9);
    Ok((
        bitpix,
        naxes[..naxis].iter().map(|&a| a.max(0) as usize).collect(),
    ))
}

/// Resolves a selector to an HDU index holding an image.
pub fn find_image_hdu(path: &Path, sel: &HduSelector) -> Result<usize> {
    let hdus = list_hdus(path)?;
    let found = match sel {
        HduSelector::FirstImage => hdus.iter().find(|i| i.has_image()),
        HduSelector::Index(i) => Some(hdus.get(*i).ok_or_else(|| {
            FitsError::new(
                path,
                ErrorKind::NoSuchHdu(format!("{i} (file has {})", hdus.len())),
            )
        })?),
        HduSelector::Name(n) => Some(
            hdus.iter()
                .find(|i| {
                    i.extname
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(n))
                })
                .ok_or_else(|| FitsError::new(path, ErrorKind::NoSuchHdu(format!("named {n}"))))?,
        ),
    };
    match found {
        Some(info) if info.has_image() => Ok(info.index),
        Some(info) => Err(FitsError::new(
            path,
            ErrorKind::NotImage(format!("{} ({})", info.index, info.kind)),
        )),
        None => Err(FitsError::new(
            path,
            ErrorKind::NotImage("(none: no HDU of this file holds an image)".into()),
        )),
    }
}

/// Reads one image HDU with its raw pixels, scaling, blanks and header.
pub fn read_image(path: &Path, sel: &HduSelector) -> Result<ImageHdu> {
    let index = find_image_hdu(path, sel)?;
    let h = Handle::open(path)?;
    read_image_at(&h, index)
}

/// Reads every HDU that holds an image.
pub fn read_all_images(path: &Path) -> Result<Vec<ImageHdu>> {
    let h = Handle::open(path)?;
    let n = h.num_hdus()?;
    let mut out = Vec::new();
    for i in 0..n {
        if hdu_info(&h, i)?.has_image() {
            out.push(read_image_at(&h, i)?);
        }
    }
    Ok(out)
}

pub(crate) fn read_image_at(h: &Handle, index: usize) -> Result<ImageHdu> {
    let t = h.goto(index)?;
    if t != sys::IMAGE_HDU as c_int {
        return Err(h.err(ErrorKind::NotImage(index.to_string())));
    }
    let (bitpix, axes) = image_geometry(h)?;
    let npix: usize = axes.iter().product();
    if axes.is_empty() || npix == 0 {
        return Err(h.err(ErrorKind::NotImage(format!("{index} (NAXIS = 0)"))));
    }
    let header = Header::read(h)?;
    let compression = if h.is_compressed() {
        h.key_string("ZCMPTYPE")
    } else {
        None
    };
    let mut pixels =
        Pixels::zeros(bitpix, npix).ok_or_else(|| h.err(ErrorKind::UnsupportedBitpix(bitpix)))?;
    let mut status = 0;
    // Raw stored values: switch cfitsio's scaling off for this read.
    unsafe { sys::ffpscl(h.ptr, 1.0, 0.0, &mut status) };
    h.check(status)?;
    let mut anynul = 0;
    let datatype = pixels.datatype();
    let buf = pixels.as_mut_ptr();
    // Floats of tile-compressed images: blank pixels of quantised tiles must come back as NaN
    // (read_image gives garbage). Plain images are read with no null checking at all, which
    // copies every bit: with checking on, cfitsio turns denormal floats into 0.
    let mut nan32 = f32::NAN;
    let mut nan64 = f64::NAN;
    let nulval: *mut c_void = match bitpix {
        -32 if h.is_compressed() => Handle::void(&mut nan32),
        -64 if h.is_compressed() => Handle::void(&mut nan64),
        _ => std::ptr::null_mut(),
    };
    unsafe {
        sys::ffgpv(
            h.ptr,
            datatype,
            1,
            npix as i64,
            nulval,
            buf,
            &mut anynul,
            &mut status,
        )
    };
    h.check(status)?;
    let bscale = header.f64("BSCALE").unwrap_or(1.0);
    let bzero = header.f64("BZERO").unwrap_or(0.0);
    let blank = if bitpix > 0 {
        header.f64("BLANK").map(|b| b as i64)
    } else {
        None
    };
    Ok(ImageHdu {
        hdu: index,
        extname: header.string("EXTNAME"),
        axes,
        pixels,
        bscale,
        bzero,
        blank,
        header,
        compression,
    })
}
