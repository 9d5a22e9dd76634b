//! `skyzip._native`: the codec for Python. Arrays cross as bytes with their dtype and shape (the
//! Python layer, `skyzip/__init__.py`, turns them into numpy arrays), headers as 80-character
//! cards. Every call runs the same `skyzip_codec::compress` / `decompress` / `verify` as the
//! CLI, on FITS files in a private temporary folder, with the GIL released; every error is a
//! `skyzip.SkyzipError` carrying the message the CLI prints.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use skyzip_codec::{Mode, Options, Predictor};
use skyzip_fits::{Card, FitsWriter, HduSelector, Header, ImageHdu, Pixels};
use std::path::{Path, PathBuf};

/// As in the CLI: the codec's per-tile buffers stay in the allocator's pages instead of going
/// back to the kernel after every tile.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    skyzip,
    SkyzipError,
    PyException,
    "A file, array or option skyzip cannot code (the message names it and the problem)."
);

type R<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A private folder, and messages with its path taken out (they name "array.fits" or
/// "buffer.sz.fits", not a temporary path the caller never saw).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> R<Work> {
        let dir = tempfile::Builder::new()
            .prefix("skyzip-py-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
        Ok(Work { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn clean(&self, msg: String) -> String {
        let prefix = format!("{}/", self.dir.path().display());
        msg.replace(&prefix, "")
    }
}

fn options(max_error: Option<f64>, q: f64, tile: usize) -> Options {
    Options {
        mode: match max_error {
            Some(e) => Mode::MaxError(e),
            None => Mode::Lossless,
        },
        q,
        tile,
        eta: None,
    }
}

/// The stored pixels and the BZERO of a numpy array's raw bytes ("u2" etc., native order):
/// unsigned and int8 arrays are offset as FITS stores them (BZERO = 2^(bits−1), or −128).
fn pixels(raw: &[u8], dtype: &str) -> R<(Pixels, Option<&'static str>)> {
    macro_rules! cast {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| <$t>::from_ne_bytes(c.try_into().expect("chunk")))
        };
    }
    Ok(match dtype {
        "u1" => (Pixels::U8(raw.to_vec()), None),
        "i1" => (
            Pixels::U8(raw.iter().map(|b| b ^ 0x80).collect()),
            Some("-128"),
        ),
        "i2" => (Pixels::I16(cast!(i16, 2).collect()), None),
        "u2" => (
            Pixels::I16(cast!(u16, 2).map(|v| (v ^ 0x8000) as i16).collect()),
            Some("32768"),
        ),
        "i4" => (Pixels::I32(cast!(i32, 4).collect()), None),
        "u4" => (
            Pixels::I32(cast!(u32, 4).map(|v| (v ^ 0x8000_0000) as i32).collect()),
            Some("2147483648"),
        ),
        "i8" => (Pixels::I64(cast!(i64, 8).collect()), None),
        "u8" => (
            Pixels::I64(cast!(u64, 8).map(|v| (v ^ (1 << 63)) as i64).collect()),
            Some("9223372036854775808"),
        ),
        "f4" => (Pixels::F32(cast!(f32, 4).collect()), None),
        "f8" => (Pixels::F64(cast!(f64, 8).collect()), None),
        d => {
            return Err(format!(
                "array: dtype {d} cannot be a FITS image (uint8–64, int8–64, float32/64)"
            ))
        }
    })
}

/// Writes an array and its cards as a one-image FITS file. The array holds physical values, so
/// the caller's BSCALE/BZERO (and BLANK of a float array) are dropped; structural cards and
/// checksums are the writer's.
fn write_array(path: &Path, raw: &[u8], dtype: &str, shape: &[usize], cards: &[String]) -> R<()> {
    if !(1..=3).contains(&shape.len()) || shape.contains(&0) {
        return Err(format!(
            "array: shape {shape:?}; skyzip codes images of 1 to 3 axes, none empty"
        ));
    }
    let (px, bzero) = pixels(raw, dtype)?;
    let npix: usize = shape.iter().product();
    if px.len() != npix {
        return Err(format!("array: {} pixels for shape {shape:?}", px.len()));
    }
    let float = px.is_float();
    let mut h = Header::default();
    for c in cards {
        let card = Card::new(c);
        let k = card.keyword();
        if card.is_structural()
            || matches!(k, "BSCALE" | "BZERO" | "CHECKSUM" | "DATASUM" | "END")
            || (float && k == "BLANK")
        {
            continue;
        }
        h.cards.push(card);
    }
    if let Some(z) = bzero {
        h.cards
            .push(Card::value("BZERO", z, "offset of the unsigned integers"));
        h.cards.push(Card::value("BSCALE", "1", ""));
    }
    // numpy's shape is (planes, rows, columns); FITS lists NAXIS1 (columns) first.
    let axes: Vec<usize> = shape.iter().rev().copied().collect();
    let mut w = FitsWriter::create(path, true).map_err(err)?;
    w.write_image(&ImageHdu::new(axes, px, h), None)
        .map_err(err)?;
    w.finish().map_err(err)?;
    Ok(())
}

/// An image's pixels as numpy would hold their physical values: (bytes, dtype, shape, cards).
/// The unsigned and int8 conventions give unsigned / int8 arrays, other scaling float64 (BLANK
/// as NaN); the cards then have no BSCALE/BZERO (the values are physical).
type Array = (Vec<u8>, String, Vec<usize>, Vec<String>);

fn to_array(img: &ImageHdu) -> Array {
    let shape: Vec<usize> = img.axes.iter().rev().copied().collect();
    let (bs, bz) = (img.bscale, img.bzero);
    let ne = |v: &mut Vec<u8>, b: &[u8]| v.extend_from_slice(b);
    let mut out = Vec::with_capacity(img.pixels.len() * 8);
    let unsigned = |p: &Pixels| -> Option<&'static str> {
        match (p, bs == 1.0, bz) {
            (Pixels::U8(_), true, -128.0) => Some("i1"),
            (Pixels::I16(_), true, 32768.0) => Some("u2"),
            (Pixels::I32(_), true, 2147483648.0) => Some("u4"),
            (Pixels::I64(_), true, 9223372036854775808.0) => Some("u8"),
            _ => None,
        }
    };
    let dtype: String = if let Some(d) = unsigned(&img.pixels) {
        match &img.pixels {
            Pixels::U8(v) => v.iter().for_each(|x| out.push(x ^ 0x80)),
            Pixels::I16(v) => v
                .iter()
                .for_each(|x| ne(&mut out, &((*x as u16) ^ 0x8000).to_ne_bytes())),
            Pixels::I32(v) => v
                .iter()
                .for_each(|x| ne(&mut out, &((*x as u32) ^ 0x8000_0000).to_ne_bytes())),
            Pixels::I64(v) => v
                .iter()
                .for_each(|x| ne(&mut out, &((*x as u64) ^ (1 << 63)).to_ne_bytes())),
            _ => unreachable!("unsigned conventions are integer"),
        }
        d.into()
    } else if bs != 1.0 || bz != 0.0 {
        for x in img.physical() {
            ne(&mut out, &x.to_ne_bytes());
        }
        "f8".into()
    } else {
        match &img.pixels {
            Pixels::U8(v) => out.extend_from_slice(v),
            Pixels::I16(v) => v.iter().for_each(|x| ne(&mut out, &x.to_ne_bytes())),
            Pixels::I32(v) => v.iter().for_each(|x| ne(&mut out, &x.to_ne_bytes())),
            Pixels::I64(v) => v.iter().for_each(|x| ne(&mut out, &x.to_ne_bytes())),
            Pixels::F32(v) => v.iter().for_each(|x| ne(&mut out, &x.to_ne_bytes())),
            Pixels::F64(v) => v.iter().for_each(|x| ne(&mut out, &x.to_ne_bytes())),
        }
        match img.pixels {
            Pixels::U8(_) => "u1",
            Pixels::I16(_) => "i2",
            Pixels::I32(_) => "i4",
            Pixels::I64(_) => "i8",
            Pixels::F32(_) => "f4",
            Pixels::F64(_) => "f8",
        }
        .into()
    };
    let physical_float = dtype == "f8" && !img.pixels.is_float();
    let cards = img
        .header
        .cards
        .iter()
        .filter(|c| {
            let scaling = matches!(c.keyword(), "BSCALE" | "BZERO");
            let nan_blank = physical_float && c.keyword() == "BLANK";
            !(scaling || nan_blank)
        })
        .map(|c| c.text().to_string())
        .collect();
    (out, dtype, shape, cards)
}

fn load(
    model: &Option<String>,
) -> impl Fn(&str) -> Result<Predictor, skyzip_codec::CodecError> + '_ {
    move |name: &str| Predictor::load(model.as_deref().unwrap_or(name))
}

fn report_dict<'py>(py: Python<'py>, r: &skyzip_codec::Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("file_bytes", r.file_bytes)?;
    let mut hdus = Vec::new();
    for i in &r.images {
        let h = PyDict::new(py);
        h.set_item("hdu", i.hdu)?;
        h.set_item("shape", (i.planes, i.ny, i.nx))?;
        h.set_item("bitpix", i.bitpix)?;
        h.set_item("tile_bytes", i.tile_bytes)?;
        h.set_item("estimated_bits", i.est_bits)?;
        h.set_item("sigma", i.sigma)?;
        h.set_item("max_error_int", i.max_error_int)?;
        h.set_item("tiles", i.tiles)?;
        hdus.push(h);
    }
    d.set_item("images", hdus)?;
    Ok(d)
}

fn check_mode(max_error: Option<f64>, rmse: Option<f64>) -> R<()> {
    if max_error.is_some() && rmse.is_some() {
        return Err("give max_error= or rmse=, not both".into());
    }
    if let Some(e) = max_error {
        if !(e >= 0.0 && e.is_finite()) {
            return Err(format!("max_error = {e} must be ≥ 0 (units of σ)"));
        }
    }
    if let Some(r) = rmse {
        if !(r >= 0.0 && r.is_finite()) {
            return Err(format!("rmse = {r} must be ≥ 0 (units of σ)"));
        }
    }
    Ok(())
}

/// The options for `src`: with `rmse`, the smaller file of the largest max-error whose RMSE
/// stays within rmse·σ and the RMSE mode at rmse (the CLI's --target-rmse: real compress and
/// decompress trials in `work`).
fn resolve(
    src: &Path,
    work: &Path,
    p: &Predictor,
    max_error: Option<f64>,
    rmse: Option<f64>,
    q: f64,
    tile: usize,
) -> R<Options> {
    let mut opts = options(max_error, q, tile);
    if let Some(r) = rmse {
        let load = |name: &str| Predictor::load(name);
        let (mode, _) =
            skyzip_codec::rate::within_rmse(src, work, p, &load, &opts, r, &|_| {}).map_err(err)?;
        opts.mode = mode;
    }
    Ok(opts)
}

/// compress_array(data, dtype, shape, cards, max_error, rmse, q, model, tile) -> bytes
#[pyfunction]
#[pyo3(signature = (data, dtype, shape, cards, max_error=None, rmse=None, q=4.0, model="default".to_string(), tile=256))]
#[allow(clippy::too_many_arguments)]
fn compress_array<'py>(
    py: Python<'py>,
    data: Vec<u8>,
    dtype: String,
    shape: Vec<usize>,
    cards: Vec<String>,
    max_error: Option<f64>,
    rmse: Option<f64>,
    q: f64,
    model: String,
    tile: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| -> R<Vec<u8>> {
        check_mode(max_error, rmse)?;
        let w = Work::new()?;
        let (src, dst) = (w.path("array.fits"), w.path("array.sz.fits"));
        let run = || -> R<Vec<u8>> {
            write_array(&src, &data, &dtype, &shape, &cards)?;
            let p = Predictor::load(&model).map_err(err)?;
            let opts = resolve(&src, w.dir.path(), &p, max_error, rmse, q, tile)?;
            skyzip_codec::compress(&src, &dst, &p, &opts, true).map_err(err)?;
            std::fs::read(&dst).map_err(err)
        };
        run().map_err(|m| w.clean(m))
    });
    match out {
        Ok(b) => Ok(PyBytes::new(py, &b)),
        Err(m) => Err(SkyzipError::new_err(m)),
    }
}

/// decompress_bytes(buf, model=None) -> (bytes, dtype, shape, cards) of the first image.
#[pyfunction]
#[pyo3(signature = (buf, model=None))]
fn decompress_bytes(py: Python<'_>, buf: Vec<u8>, model: Option<String>) -> PyResult<Array> {
    py.detach(|| -> R<Array> {
        let w = Work::new()?;
        let (src, dst) = (w.path("buffer.sz.fits"), w.path("buffer.fits"));
        let run = || -> R<Array> {
            std::fs::write(&src, &buf).map_err(err)?;
            skyzip_codec::decompress(&src, &dst, &load(&model), true).map_err(err)?;
            let img = skyzip_fits::read_image(&dst, &HduSelector::FirstImage).map_err(err)?;
            Ok(to_array(&img))
        };
        run().map_err(|m| w.clean(m))
    })
    .map_err(SkyzipError::new_err)
}

/// decompress_path_to_bytes(path, model=None) -> the whole decoded FITS file of a skyzip file.
#[pyfunction]
#[pyo3(signature = (path, model=None))]
fn decompress_path_to_bytes<'py>(
    py: Python<'py>,
    path: PathBuf,
    model: Option<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.detach(|| -> R<Vec<u8>> {
        let w = Work::new()?;
        let dst = w.path("decoded.fits");
        let run = || -> R<Vec<u8>> {
            check_paths(&path, &dst, true)?;
            skyzip_codec::decompress(&path, &dst, &load(&model), true).map_err(err)?;
            std::fs::read(&dst).map_err(err)
        };
        run().map_err(|m| w.clean(m))
    });
    out.map(|b| PyBytes::new(py, &b))
        .map_err(SkyzipError::new_err)
}

fn check_paths(src: &Path, dst: &Path, overwrite: bool) -> R<()> {
    match std::fs::metadata(src) {
        Err(_) => return Err(format!("{}: no such file", src.display())),
        Ok(m) if m.is_dir() => {
            return Err(format!(
                "{}: is a directory, not a FITS file",
                src.display()
            ))
        }
        Ok(_) => {}
    }
    if let (Ok(a), Ok(b)) = (src.canonicalize(), dst.canonicalize()) {
        if a == b {
            return Err(format!(
                "{}: output is the input file; refusing to overwrite it",
                dst.display()
            ));
        }
    }
    if dst.exists() && !overwrite {
        return Err(format!(
            "{}: output file exists already (overwrite=True to replace it)",
            dst.display()
        ));
    }
    Ok(())
}

/// compress_file(src, dst, max_error=None, rmse=None, q=4, model="default", tile=256,
/// overwrite=False, verify=False) -> report dict. The same file as `skyzip compress`.
#[pyfunction]
#[pyo3(signature = (src, dst, max_error=None, rmse=None, q=4.0, model="default".to_string(), tile=256, overwrite=false, verify=false))]
#[allow(clippy::too_many_arguments)]
fn compress_file<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    max_error: Option<f64>,
    rmse: Option<f64>,
    q: f64,
    model: String,
    tile: usize,
    overwrite: bool,
    verify: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let r = py.detach(|| -> R<skyzip_codec::Report> {
        check_mode(max_error, rmse)?;
        check_paths(&src, &dst, overwrite)?;
        let p = Predictor::load(&model).map_err(err)?;
        let opts = match rmse {
            Some(_) => {
                let w = Work::new()?;
                resolve(&src, w.dir.path(), &p, max_error, rmse, q, tile)?
            }
            None => options(max_error, q, tile),
        };
        if !verify {
            return skyzip_codec::compress(&src, &dst, &p, &opts, overwrite).map_err(err);
        }
        // Verified before it takes its name: written beside the target, checked, renamed.
        let dir = dst
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".skyzip-")
            .tempdir_in(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let t = tmp.path().join("out.fits");
        let r = skyzip_codec::compress(&src, &t, &p, &opts, true).map_err(err)?;
        skyzip_codec::verify(&src, &t, &Predictor::load)
            .map_err(|e| format!("verification failed, nothing written: {e}"))?;
        std::fs::rename(&t, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        Ok(r)
    });
    match r {
        Ok(r) => report_dict(py, &r),
        Err(m) => Err(SkyzipError::new_err(m)),
    }
}

/// decompress_file(src, dst, model=None, overwrite=False) -> number of images decoded.
#[pyfunction]
#[pyo3(signature = (src, dst, model=None, overwrite=false))]
fn decompress_file(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    model: Option<String>,
    overwrite: bool,
) -> PyResult<usize> {
    py.detach(|| -> R<usize> {
        check_paths(&src, &dst, overwrite)?;
        skyzip_codec::decompress(&src, &dst, &load(&model), overwrite).map_err(err)
    })
    .map_err(SkyzipError::new_err)
}

/// verify_file(original, compressed, model=None) -> (images, pixels, max_error).
#[pyfunction]
#[pyo3(signature = (original, compressed, model=None))]
fn verify_file(
    py: Python<'_>,
    original: PathBuf,
    compressed: PathBuf,
    model: Option<String>,
) -> PyResult<(usize, usize, f64)> {
    py.detach(|| {
        skyzip_codec::verify(&original, &compressed, &load(&model))
            .map(|v| (v.images, v.pixels, v.max_error))
            .map_err(err)
    })
    .map_err(SkyzipError::new_err)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SkyzipError", m.py().get_type::<SkyzipError>())?;
    m.add("FORMAT_VERSION", skyzip_codec::codec::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(compress_array, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_path_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(compress_file, m)?)?;
    m.add_function(wrap_pyfunction!(decompress_file, m)?)?;
    m.add_function(wrap_pyfunction!(verify_file, m)?)?;
    Ok(())
}
