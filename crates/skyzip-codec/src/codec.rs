//! Whole files: every image HDU tiled and coded, other HDUs copied, in a standard FITS container.
//!
//! Container: each coded image is a BINTABLE with one row per tile (`COMPRESSED_DATA`, a `1PB`
//! byte string; `EXACT_DATA` beside it for float tiles coded bit-exactly, see [`crate::floats`];
//! `EST_BITS`, the entropy model's estimate) and the keywords of the tiled-image convention:
//! ZCMPTYPE = 'SKYZIP_1', ZBITPIX, ZNAXIS, ZNAXISn, ZTILEn, ZNAMEi/ZVALi (model hash, mode, max
//! error, q, normalisation), the image's own cards as fpack carries them ([`crate::container`])
//! and CHECKSUM/DATASUM in every HDU it writes (HDUs copied from the input stay as they were).
//! ZIMAGE is F: with T, cfitsio — and so fitsverify,
//! funpack, ds9 — refuses to move to an HDU whose ZCMPTYPE it does not know ("Unknown image
//! compression type"), and astropy builds a broken CompImageHDU. With F the file is a plain,
//! valid FITS file that every tool opens (funpack copies it unchanged), and skyzip finds its
//! tables by ZCMPTYPE.
//!
//! Pixels: integers are coded as stored (BSCALE/BZERO untouched, BLANK as the mask). Floats are
//! quantised as fpack does (step δ = σ/q, subtractive dither; "lossless" then means the
//! quantised integers come back, error ≤ δ/2), or with q = 0 coded bit-exactly; tiles whose noise
//! is zero are coded bit-exactly in every mode, as fpack does. NaNs are the mask.

use crate::container;
use crate::floats::{self, Quantiser, Width};
use crate::predict::Predictor;
use crate::tile::{self, Settings};
use crate::CodecError;
use rayon::prelude::*;
use skyzip_fits::{
    list_hdus, noise_stats, noise_stats_rows, read_header, read_image, read_table_at, Card, Column,
    FitsWriter, HduInfo, HduSelector, Header, ImageHdu, Pixels, Table,
};
use std::path::Path;

pub use crate::container::CMPTYPE;

/// The file format version, in every coded HDU's SZFORMAT (and the first byte of every tile).
/// 3: the integer engine (the same bits on every machine). 1–2 were pre-release formats whose
/// prediction came from a float framework; no release wrote them and this build refuses them.
pub const FORMAT_VERSION: u8 = tile::VERSION;

/// What the coder may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Integers exact; floats exact after quantisation at step σ/q (bit-exact with q = 0).
    Lossless,
    /// |error| ≤ E·σ for every pixel (σ: the image's background noise).
    MaxError(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub mode: Mode,
    /// Float quantisation: step σ/q (fpack's -q; 4 is fpack's default); 0 codes floats
    /// bit-exactly (fpack's -q 0).
    pub q: f64,
    /// Tile side.
    pub tile: usize,
    /// A tunable model's rate: code only the first η latent channels (None: all).
    pub eta: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Lossless,
            q: 4.0,
            tile: 256,
            eta: None,
        }
    }
}

/// What happened to one image HDU.
#[derive(Debug, Clone, PartialEq)]
pub struct HduReport {
    pub hdu: usize,
    pub nx: usize,
    pub ny: usize,
    pub planes: usize,
    pub bitpix: i32,
    /// Bytes of coded tiles (the table's heap).
    pub tile_bytes: usize,
    /// The entropy model's estimate of those bytes' bits.
    pub est_bits: f64,
    /// σ of the image (physical units) and the largest |error| allowed in integer units.
    pub sigma: f64,
    pub max_error_int: i64,
    /// Float quantisation step (physical units), when any tile was quantised.
    pub delta: Option<f64>,
    /// Tiles, and how many of them were float tiles coded bit-exactly.
    pub tiles: usize,
    pub exact_tiles: usize,
}

/// A compressed file's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub images: Vec<HduReport>,
    /// Bytes of the file written.
    pub file_bytes: u64,
}

fn err(path: &Path, why: impl std::fmt::Display) -> CodecError {
    CodecError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

const DITHER_SEED: u64 = 1;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// How one HDU's pixels become the tile coder's integers.
#[derive(Debug, Clone, Copy)]
enum Domain {
    /// Stored integers in the type's range, BLANK as the mask.
    Int {
        lo: i64,
        hi: i64,
        blank: Option<i64>,
    },
    /// Floats: quantised tiles where a quantiser is set (and the tile allows it), the others
    /// bit-exact.
    Float {
        width: Width,
        quant: Option<Quantiser>,
    },
}

fn int_range(bitpix: i32) -> (i64, i64) {
    match bitpix {
        8 => (0, 255),
        16 => (i16::MIN as i64, i16::MAX as i64),
        32 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN / 2, i64::MAX / 2),
    }
}

/// Background σ of pixels (NaN and infinities skipped) in an `nx`-wide raster.
fn sigma_of(x: &[f64], nx: usize, rows: usize) -> f64 {
    let finite: Vec<f64> = x
        .iter()
        .map(|&v| if v.is_finite() { v } else { f64::NAN })
        .collect();
    noise_stats(&finite, nx, rows).sigma()
}

/// The image's domain and σ (physical units).
fn domain(img: &ImageHdu, q: f64) -> (Domain, f64) {
    let n = img.npix();
    let (nx, rows) = (img.nx(), img.ny() * img.planes());
    match Width::of_bitpix(img.bitpix()) {
        Some(width) => {
            let x: Vec<f64> = (0..n).map(|i| img.pixels.raw_f64(i)).collect();
            let sigma = sigma_of(&x, nx, rows);
            let zero = median(x.iter().copied().filter(|v| v.is_finite()).collect());
            let delta = sigma / q;
            let quant = (q > 0.0 && delta > 0.0 && delta.is_finite()).then_some(Quantiser {
                zero,
                delta,
                seed: DITHER_SEED,
            });
            (Domain::Float { width, quant }, sigma)
        }
        None => {
            let blank = img.blank;
            // Row by row: no copy of the image (an 8192² frame would take 512 MB as f64).
            let stats = noise_stats_rows(nx, rows, |y, row| {
                row.extend(
                    (y * nx..((y + 1) * nx).min(n)).map(|i| match img.pixels.raw_i64(i) {
                        Some(v) if Some(v) != blank => v as f64,
                        _ => f64::NAN,
                    }),
                )
            });
            let (lo, hi) = int_range(img.bitpix());
            let sigma = stats.sigma() * img.bscale.abs();
            (Domain::Int { lo, hi, blank }, sigma)
        }
    }
}

/// Tile rectangles of a plane: (x0, y0, w, h).
fn tiles(nx: usize, ny: usize, t: usize) -> Vec<(usize, usize, usize, usize)> {
    let mut out = Vec::new();
    for y0 in (0..ny).step_by(t) {
        for x0 in (0..nx).step_by(t) {
            out.push((x0, y0, t.min(nx - x0), t.min(ny - y0)));
        }
    }
    out
}

/// The most pixels one image HDU may have (2^33: 64 GiB as 64-bit integers while decoding).
const MAX_PIXELS: u128 = 1 << 33;

fn fmt_f64(v: f64) -> String {
    format!("{v:E}")
}

/// A coded tile: its bytes and in which column they go.
struct CodedTile {
    bytes: Vec<u8>,
    exact: bool,
    est_bits: f64,
}

/// The pixel indices (into the HDU's raster) of a tile, row by row.
fn tile_indices(
    (nx, ny): (usize, usize),
    plane: usize,
    (x0, y0, tw, th): (usize, usize, usize, usize),
) -> impl Iterator<Item = usize> {
    (y0..y0 + th).flat_map(move |y| {
        let at = plane * nx * ny + y * nx + x0;
        at..at + tw
    })
}

/// Codes one tile of an image.
fn encode_tile(
    p: &Predictor,
    img: &ImageHdu,
    dom: Domain,
    plane: usize,
    rect: (usize, usize, usize, usize),
    e: i64,
    eta: Option<usize>,
) -> CodedTile {
    let (tw, th) = (rect.2, rect.3);
    let idx: Vec<usize> = tile_indices((img.nx(), img.ny()), plane, rect).collect();
    let quantised = |v: Vec<i64>, blank: Vec<bool>, lo: i64, hi: i64| {
        let t = tile::encode(p, &v, &blank, tw, th, &Settings { e, lo, hi, eta });
        CodedTile {
            bytes: t.bytes,
            exact: false,
            est_bits: t.est_bits,
        }
    };
    match dom {
        Domain::Int { lo, hi, blank } => {
            let v: Vec<i64> = idx
                .iter()
                .map(|&i| img.pixels.raw_i64(i).unwrap_or(0))
                .collect();
            let b = v.iter().map(|&x| Some(x) == blank).collect();
            quantised(v, b, lo, hi)
        }
        Domain::Float { width, quant } => {
            let x: Vec<f64> = idx.iter().map(|&i| img.pixels.raw_f64(i)).collect();
            let blank: Vec<bool> = x.iter().map(|v| v.is_nan()).collect();
            // As fpack: a tile quantises only if its own noise is not zero; and only if every
            // value can be quantised (finite, within the quantiser's range).
            let q = quant.filter(|_| blank.iter().all(|&b| b) || sigma_of(&x, tw, th) > 0.0);
            let v: Option<Vec<i64>> = q.and_then(|q| {
                x.iter()
                    .zip(&idx)
                    .map(|(&v, &i)| {
                        if v.is_nan() {
                            Some(0)
                        } else {
                            q.quantise(v, i as u64)
                        }
                    })
                    .collect()
            });
            match v {
                Some(v) => {
                    let (lo, hi) = floats::QUANT_RANGE;
                    quantised(v, blank, lo, hi)
                }
                None => {
                    let bits: Vec<u64> = idx.iter().map(|&i| img.pixels.raw_bits(i)).collect();
                    let t = floats::encode_exact(p, &bits, width, tw, th, eta);
                    CodedTile {
                        bytes: t.bytes,
                        exact: true,
                        est_bits: t.est_bits,
                    }
                }
            }
        }
    }
}

/// Refuses files that have nothing to compress, or that skyzip compressed already.
fn check_compressible(input: &Path, hdus: &[HduInfo]) -> Result<(), CodecError> {
    for info in hdus.iter().filter(|i| i.kind == "binary table") {
        let h = read_header(input, info.index)?;
        if h.string("ZCMPTYPE").is_some_and(|z| z.trim() == CMPTYPE) {
            return Err(err(
                input,
                format!(
                    "already compressed by skyzip (HDU {} holds {CMPTYPE} tiles); \
                     `skyzip decompress` it first",
                    info.index
                ),
            ));
        }
    }
    if !hdus.iter().any(HduInfo::has_image) {
        return Err(err(
            input,
            "no image HDU to compress (the file holds only tables or empty HDUs)",
        ));
    }
    Ok(())
}

/// Compresses every image HDU of `input` into `output`.
pub fn compress(
    input: &Path,
    output: &Path,
    p: &Predictor,
    opts: &Options,
    overwrite: bool,
) -> Result<Report, CodecError> {
    if !(opts.q >= 0.0 && opts.q.is_finite()) {
        return Err(err(
            input,
            format!("q = {} must be ≥ 0 (0: bit-exact floats)", opts.q),
        ));
    }
    if let Mode::MaxError(e) = opts.mode {
        if !(e >= 0.0 && e.is_finite()) {
            return Err(err(
                input,
                format!("max error {e} must be ≥ 0 (units of σ)"),
            ));
        }
    }
    if let Some(k) = opts.eta {
        let n = p.latent_channels();
        if !(1..=n).contains(&k) {
            return Err(CodecError::Model {
                model: p.name.clone(),
                why: format!("η = {k}: the model has {n} latent channels"),
            });
        }
        if k < n && !p.tunable() {
            return Err(CodecError::Model {
                model: p.name.clone(),
                why: "was not trained with a tunable rate (η); train a meanvar model on a \
                      tunable conv-ae to use --eta"
                    .into(),
            });
        }
    }
    let d = p.divisor();
    if opts.tile < d || opts.tile % d != 0 {
        return Err(err(
            input,
            format!("tile {} must be a multiple of {d}", opts.tile),
        ));
    }
    let hdus = list_hdus(input)?;
    check_compressible(input, &hdus)?;
    let mut w = FitsWriter::create(output, overwrite)?;
    let mut images = Vec::new();
    for info in &hdus {
        if !info.has_image() {
            // Tables, and an empty primary, go across as they are.
            w.copy_hdu(input, info.index)?;
            continue;
        }
        let img = read_image(input, &HduSelector::Index(info.index))?;
        if info.index == 0 {
            // The primary image's cards all travel with its tiles (WCS included); the primary
            // left behind has no axes and so no WCS to verify.
            w.write_empty_primary(&container::minimal_primary())?;
            w.write_checksum_last()?;
        }
        let (dom, sigma) = domain(&img, opts.q);
        let (nx, ny, planes) = (img.nx(), img.ny(), img.planes());
        let e = match (opts.mode, dom) {
            (Mode::Lossless, _) => 0,
            (Mode::MaxError(_), Domain::Float { quant: None, .. }) if opts.q == 0.0 => {
                return Err(err(
                    input,
                    format!(
                        "HDU {}: q = 0 codes floats bit-exactly; a max error needs q > 0",
                        info.index
                    ),
                ))
            }
            // Nothing quantised (σ = 0): every tile is bit-exact.
            (Mode::MaxError(_), Domain::Float { quant: None, .. }) => 0,
            (Mode::MaxError(emax), Domain::Float { .. }) => {
                // Quantisation costs δ/2 = σ/(2q); the residual step the rest.
                (emax * opts.q - 0.5).floor().max(0.0) as i64
            }
            (Mode::MaxError(emax), Domain::Int { .. }) => {
                (emax * sigma / img.bscale.abs()).floor().max(0.0) as i64
            }
        };
        // Tiles are independent: coded in parallel, kept in order.
        let rects = tiles(nx, ny, opts.tile);
        let jobs: Vec<(usize, (usize, usize, usize, usize))> = (0..planes)
            .flat_map(|pl| rects.iter().map(move |&r| (pl, r)))
            .collect();
        let coded: Vec<CodedTile> = jobs
            .par_iter()
            .map(|&(pl, r)| encode_tile(p, &img, dom, pl, r, e, opts.eta))
            .collect();
        let tile_bytes = coded.iter().map(|t| t.bytes.len()).sum();
        let est_bits: f64 = coded.iter().map(|t| t.est_bits).sum();
        let exact_tiles = coded.iter().filter(|t| t.exact).count();
        let quant = match dom {
            Domain::Float { quant, .. } if exact_tiles < coded.len() => quant,
            _ => None,
        };
        let mut h = Header::default();
        let mut set = |c: Card| h.cards.push(c);
        set(Card::value(
            "ZIMAGE",
            "F",
            "T would make cfitsio refuse the HDU",
        ));
        set(Card::string("ZCMPTYPE", CMPTYPE, "skyzip learned codec"));
        container::array_cards(&img.header, img.bitpix(), &img.axes)
            .into_iter()
            .for_each(&mut set);
        set(Card::value(
            "ZTILE1",
            &opts.tile.min(nx).to_string(),
            "tile width",
        ));
        set(Card::value(
            "ZTILE2",
            &opts.tile.min(ny).to_string(),
            "tile height",
        ));
        for k in 2..img.axes.len() {
            set(Card::value(&format!("ZTILE{}", k + 1), "1", ""));
        }
        let (mode, maxerr) = match opts.mode {
            Mode::Lossless => ("lossless", 0.0),
            Mode::MaxError(e) => ("max-error", e),
        };
        let zv = [
            ("MODEL", format!("'{}'", p.hash)),
            ("MODE", format!("'{mode}'")),
            ("MAXERR", fmt_f64(maxerr)),
            ("Q", fmt_f64(opts.q)),
            ("NORM", format!("'{}'", p.norm_kind().name())),
        ];
        let eta = opts.eta.map(|k| ("ETA", k.to_string()));
        let zv: Vec<_> = zv.into_iter().chain(eta).collect();
        for (i, (name, val)) in zv.iter().enumerate() {
            set(Card::string(&format!("ZNAME{}", i + 1), name, ""));
            set(Card::new(&format!("ZVAL{:<4}= {val:>20}", i + 1)));
        }
        set(Card::value(
            "SZFORMAT",
            &FORMAT_VERSION.to_string(),
            "skyzip format version",
        ));
        set(Card::string("SZMODEL", &p.name, "codec model"));
        set(Card::value(
            "SZERRINT",
            &e.to_string(),
            "max |error| in coded integer units",
        ));
        set(Card::value(
            "SZSIGMA",
            &fmt_f64(sigma),
            "background noise sigma",
        ));
        if let Some(q) = quant {
            set(Card::value(
                "SZZERO",
                &fmt_f64(q.zero),
                "float quantisation zero point",
            ));
            set(Card::value(
                "SZDELTA",
                &fmt_f64(q.delta),
                "float quantisation step",
            ));
            set(Card::value("SZDSEED", &q.seed.to_string(), "dither seed"));
        }
        container::image_to_table(&img.header)
            .into_iter()
            .for_each(&mut set);
        let mut columns = Vec::new();
        let (mut q_rows, mut x_rows): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        let mut est = Vec::with_capacity(coded.len());
        for t in coded {
            est.push(t.est_bits);
            let (mine, other) = if t.exact {
                (&mut x_rows, &mut q_rows)
            } else {
                (&mut q_rows, &mut x_rows)
            };
            mine.push(t.bytes);
            other.push(Vec::new());
        }
        columns.push(("COMPRESSED_DATA".to_string(), Column::Bytes(q_rows)));
        if exact_tiles > 0 {
            columns.push(("EXACT_DATA".to_string(), Column::Bytes(x_rows)));
        }
        columns.push(("EST_BITS".to_string(), Column::F64(est)));
        let table = Table { columns, header: h };
        let extname = img
            .extname
            .clone()
            .unwrap_or_else(|| "COMPRESSED_IMAGE".into());
        w.write_table(&extname, &table)?;
        w.write_checksum_last()?;
        images.push(HduReport {
            hdu: info.index,
            nx,
            ny,
            planes,
            bitpix: img.bitpix(),
            tile_bytes,
            est_bits,
            sigma,
            max_error_int: e,
            delta: quant.map(|q| q.delta),
            tiles: jobs.len(),
            exact_tiles,
        });
    }
    // The HDUs copied from the input keep what they had, so they come back byte for byte.
    let out = w.finish()?;
    let file_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    Ok(Report { images, file_bytes })
}

fn key_f64(h: &Header, k: &str, path: &Path) -> Result<f64, CodecError> {
    h.get(k)
        .and_then(|c| c.raw_value())
        .and_then(|v| v.trim().replace('D', "E").parse::<f64>().ok())
        .ok_or_else(|| err(path, format!("missing or bad keyword {k}")))
}

fn key_i64(h: &Header, k: &str, path: &Path) -> Result<i64, CodecError> {
    h.get(k)
        .and_then(|c| c.raw_value())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| err(path, format!("missing or bad keyword {k}")))
}

/// The value of the ZNAMEi/ZVALi pair named `name` in a compressed HDU's header (quotes and
/// blanks stripped), as the tiled-image convention records the codec's parameters.
pub fn zval(h: &Header, name: &str) -> Option<String> {
    (1..=99).find_map(|i| {
        (h.string(&format!("ZNAME{i}"))?.trim() == name)
            .then(|| {
                h.get(&format!("ZVAL{i}"))
                    .and_then(|c| c.raw_value())
                    .map(|v| v.trim().trim_matches('\'').trim().to_string())
            })
            .flatten()
    })
}

/// True for the header of a table holding skyzip tiles.
pub fn is_coded(h: &Header) -> bool {
    h.string("ZCMPTYPE").is_some_and(|z| z.trim() == CMPTYPE)
}

/// The indices of a file's HDUs that hold skyzip tiles (empty for any other FITS file).
pub fn coded_hdus(path: &Path) -> Result<Vec<usize>, CodecError> {
    let mut out = Vec::new();
    for info in list_hdus(path)? {
        if info.kind == "binary table" && is_coded(&read_header(path, info.index)?) {
            out.push(info.index);
        }
    }
    Ok(out)
}

/// What a coded HDU's header says about its image and how it was coded.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedHdu {
    pub hdu: usize,
    pub bitpix: i32,
    pub axes: Vec<usize>,
    pub tile: usize,
    pub model_name: String,
    pub model_hash: String,
    pub mode: String,
    /// Max error in σ (0 for lossless), q, the normalisation, η.
    pub max_error: f64,
    pub q: f64,
    pub norm: String,
    pub eta: Option<usize>,
    /// Max |error| in coded integer units, σ, and the float quantisation (zero, δ, seed).
    pub error_int: i64,
    pub sigma: f64,
    pub quant: Option<Quantiser>,
    /// The image was the file's primary HDU.
    pub primary: bool,
}

impl CodedHdu {
    /// Reads and checks the keywords of a coded HDU's table header.
    pub fn parse(h: &Header, hdu: usize, path: &Path) -> Result<CodedHdu, CodecError> {
        match h.get("SZFORMAT").and_then(|c| c.raw_value()) {
            Some(v) if v.trim() == FORMAT_VERSION.to_string() => {}
            v => {
                let v = v.map_or("none".to_string(), |v| v.trim().to_string());
                return Err(err(
                    path,
                    format!(
                        "HDU {hdu}: skyzip format version {v} (SZFORMAT); this build reads \
                         version {FORMAT_VERSION}. Files without SZFORMAT come from a \
                         pre-release skyzip whose float prediction no release shipped: \
                         compress the original again"
                    ),
                ));
            }
        }
        let bitpix = key_i64(h, "ZBITPIX", path)? as i32;
        if !matches!(bitpix, 8 | 16 | 32 | 64 | -32 | -64) {
            return Err(err(path, format!("ZBITPIX = {bitpix}")));
        }
        let naxis = key_i64(h, "ZNAXIS", path)? as usize;
        if !(1..=3).contains(&naxis) {
            return Err(err(path, format!("ZNAXIS = {naxis}")));
        }
        let mut axes = Vec::new();
        for k in 1..=naxis {
            let a = key_i64(h, &format!("ZNAXIS{k}"), path)?;
            if !(1..=1 << 24).contains(&a) {
                return Err(err(path, format!("ZNAXIS{k} = {a}")));
            }
            axes.push(a as usize);
        }
        let nx = axes[0];
        let ny = axes.get(1).copied().unwrap_or(1);
        let t1 = key_i64(h, "ZTILE1", path)?.max(0) as usize;
        let t2 = key_i64(h, "ZTILE2", path)?.max(0) as usize;
        let tile = if t1 < nx {
            t1
        } else if t2 < ny {
            t2
        } else {
            nx.max(ny)
        };
        if tile == 0 || t1 != tile.min(nx) || t2 != tile.min(ny) {
            return Err(err(
                path,
                format!("ZTILE1/2 = {t1}/{t2} do not describe square tiles of a {nx}×{ny} image"),
            ));
        }
        let error_int = key_i64(h, "SZERRINT", path)?;
        if error_int < 0 {
            return Err(err(path, format!("SZERRINT = {error_int}")));
        }
        let quant = if bitpix < 0 && h.get("SZDELTA").is_some() {
            let q = Quantiser {
                zero: key_f64(h, "SZZERO", path)?,
                delta: key_f64(h, "SZDELTA", path)?,
                seed: key_i64(h, "SZDSEED", path)? as u64,
            };
            if !(q.delta > 0.0 && q.delta.is_finite() && q.zero.is_finite()) {
                return Err(err(
                    path,
                    format!("SZZERO/SZDELTA = {}/{}", q.zero, q.delta),
                ));
            }
            Some(q)
        } else {
            None
        };
        let num = |name: &str| zval(h, name).and_then(|v| v.parse::<f64>().ok());
        Ok(CodedHdu {
            hdu,
            bitpix,
            axes,
            tile,
            model_name: h
                .string("SZMODEL")
                .map(|m| m.trim().to_string())
                .unwrap_or_else(|| "default".into()),
            model_hash: zval(h, "MODEL").ok_or_else(|| err(path, "no model hash (ZNAME MODEL)"))?,
            mode: zval(h, "MODE").unwrap_or_default(),
            max_error: num("MAXERR").unwrap_or(0.0),
            q: num("Q").unwrap_or(0.0),
            norm: zval(h, "NORM").unwrap_or_default(),
            eta: match zval(h, "ETA") {
                None => None,
                Some(v) => Some(
                    v.parse::<usize>()
                        .map_err(|_| err(path, format!("ETA = {v}")))?,
                ),
            },
            error_int,
            sigma: h.f64("SZSIGMA").unwrap_or(f64::NAN),
            quant,
            primary: container::was_primary(h),
        })
    }

    pub fn npix(&self) -> usize {
        self.axes.iter().product()
    }

    /// HISTORY cards for a decoded image that is not bit-exact (empty when it is).
    fn history(&self, quantised_tiles: usize, bscale: f64) -> Vec<Card> {
        let lossy = match self.bitpix {
            b if b > 0 => self.error_int > 0,
            _ => quantised_tiles > 0,
        };
        if !lossy {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "skyzip: decoded from {CMPTYPE} tiles; not bit-exact (lossy mode)"
        )];
        let unit = match self.quant {
            Some(q) => q.delta,
            None => bscale.abs(),
        };
        let (e_data, how) = match self.quant {
            Some(_) => (
                (self.error_int as f64 + 0.5) * unit,
                format!("{} quantisation steps + half a step", self.error_int),
            ),
            None => (
                self.error_int as f64 * unit,
                format!("{} stored integers", self.error_int),
            ),
        };
        lines.push(format!(
            "  mode {}: max |error| {:.4} sigma = {e_data:.6e} data units",
            self.mode,
            e_data / self.sigma
        ));
        lines.push(format!(
            "  ({how}); background sigma {:.6e} data units",
            self.sigma
        ));
        if self.mode == "max-error" {
            lines.push(format!(
                "  requested max error {} sigma (--max-error)",
                self.max_error
            ));
        }
        if let Some(q) = self.quant {
            lines.push(format!(
                "  floats quantised as fpack does: q = {}, step {:.6e} data units,",
                self.q, q.delta
            ));
            lines.push(format!(
                "  subtractive dither seed {}; zero-noise tiles coded bit-exactly",
                q.seed
            ));
        }
        lines.push(format!(
            "  model {} (hash {}), normalisation {}",
            self.model_name, self.model_hash, self.norm
        ));
        lines
            .into_iter()
            .map(|l| Card::new(&format!("HISTORY {l}")))
            .collect()
    }
}

/// Decodes one coded HDU's pixels.
fn decode_hdu(
    p: &Predictor,
    c: &CodedHdu,
    t: &Table,
    path: &Path,
    blank_value: Option<i64>,
) -> Result<(Pixels, usize), CodecError> {
    let (nx, ny) = (c.axes[0], c.axes.get(1).copied().unwrap_or(1));
    let planes = c.axes.get(2).copied().unwrap_or(1);
    let rows = match t.column("COMPRESSED_DATA") {
        Some(Column::Bytes(r)) => r,
        _ => return Err(err(path, "no COMPRESSED_DATA column")),
    };
    let exact_rows = match t.column("EXACT_DATA") {
        Some(Column::Bytes(r)) if c.bitpix < 0 && r.len() == rows.len() => Some(r),
        None => None,
        _ => return Err(err(path, "EXACT_DATA column of the wrong type or length")),
    };
    // Checked before anything is allocated for the image: the header's axes must agree with
    // the rows the table really holds, and the image must fit in memory.
    let rects = tiles(nx, ny, c.tile);
    let expected = rects.len() as u128 * planes as u128;
    if rows.len() as u128 != expected {
        return Err(err(
            path,
            format!("{} tiles stored, {expected} expected", rows.len()),
        ));
    }
    let npix = c.npix();
    if npix as u128 > MAX_PIXELS {
        return Err(err(
            path,
            format!("{nx}×{ny}×{planes} pixels is more than this decoder takes ({MAX_PIXELS})"),
        ));
    }
    if let Some(k) = c.eta {
        if !(1..=p.latent_channels()).contains(&k) {
            return Err(err(
                path,
                format!(
                    "ETA = {k}: the model has {} latent channels",
                    p.latent_channels()
                ),
            ));
        }
    }
    let width = Width::of_bitpix(c.bitpix);
    let (lo, hi) = match width {
        Some(_) => floats::QUANT_RANGE,
        None => int_range(c.bitpix),
    };
    let s = Settings {
        e: c.error_int,
        lo,
        hi,
        eta: c.eta,
    };
    let jobs: Vec<(usize, usize)> = (0..planes)
        .flat_map(|pl| (0..rects.len()).map(move |k| (pl, k)))
        .collect();
    // The image in its own pixel type, filled band by band: only one band of tiles is ever
    // decoded at once (rows of tiles, enough of them to keep every thread busy), so memory
    // grows with the tile row, not the image.
    let mut pixels = match c.bitpix {
        8 => Pixels::U8(vec![0; npix]),
        16 => Pixels::I16(vec![0; npix]),
        32 => Pixels::I32(vec![0; npix]),
        64 => Pixels::I64(vec![0; npix]),
        -32 => Pixels::F32(vec![0.0; npix]),
        _ => Pixels::F64(vec![0.0; npix]),
    };
    let per_row = nx.div_ceil(c.tile).max(1);
    let band = per_row * (2 * rayon::current_num_threads()).div_ceil(per_row);
    let mut quantised = 0;
    for chunk in jobs.chunks(band) {
        // Per tile: the pixel values as the HDU stores them (integers, or float bit patterns), and
        // whether the tile was quantised.
        let decoded: Vec<Result<(Vec<u64>, bool), CodecError>> = chunk
            .par_iter()
            .map(|&(pl, k)| {
                let (_, _, tw, th) = rects[k];
                let row = pl * rects.len() + k;
                let bad = |why: String| err(path, format!("HDU {} tile {row}: {why}", c.hdu));
                let exact = exact_rows.map(|r| &r[row]).filter(|r| !r.is_empty());
                if let Some(bytes) = exact {
                    if !rows[row].is_empty() {
                        return Err(bad("coded both exactly and quantised".into()));
                    }
                    let w = width.expect("exact rows only for floats");
                    return floats::decode_exact(p, bytes, w, tw, th, c.eta)
                        .map(|b| (b, false))
                        .map_err(|e| bad(e.0));
                }
                let (v, blank) = tile::decode(p, &rows[row], tw, th, &s).map_err(|e| bad(e.0))?;
                let idx = tile_indices((nx, ny), pl, rects[k]);
                let out = match (width, c.quant) {
                    (None, _) => v
                        .iter()
                        .zip(&blank)
                        .map(|(&x, &b)| if b { blank_value.unwrap_or(0) } else { x } as u64)
                        .collect(),
                    (Some(w), Some(q)) => v
                        .iter()
                        .zip(&blank)
                        .zip(idx)
                        .map(|((&x, &b), i)| {
                            w.bits(if b { f64::NAN } else { q.restore(x, i as u64) })
                        })
                        .collect(),
                    (Some(_), None) => {
                        if blank.iter().all(|&b| b) {
                            vec![width.map(|w| w.bits(f64::NAN)).unwrap_or(0); v.len()]
                        } else {
                            return Err(bad("a quantised float tile, but no SZDELTA".into()));
                        }
                    }
                };
                Ok((out, true))
            })
            .collect();
        for (&(pl, k), r) in chunk.iter().zip(decoded) {
            let (tv, q) = r?;
            quantised += q as usize;
            let idx = tile_indices((nx, ny), pl, rects[k]);
            match &mut pixels {
                Pixels::U8(p) => idx.zip(tv).for_each(|(i, v)| p[i] = v as i64 as u8),
                Pixels::I16(p) => idx.zip(tv).for_each(|(i, v)| p[i] = v as i64 as i16),
                Pixels::I32(p) => idx.zip(tv).for_each(|(i, v)| p[i] = v as i64 as i32),
                Pixels::I64(p) => idx.zip(tv).for_each(|(i, v)| p[i] = v as i64),
                Pixels::F32(p) => idx
                    .zip(tv)
                    .for_each(|(i, v)| p[i] = f32::from_bits(v as u32)),
                Pixels::F64(p) => idx.zip(tv).for_each(|(i, v)| p[i] = f64::from_bits(v)),
            }
        }
    }
    if width.is_none() || c.quant.is_none() {
        quantised = 0;
    }
    Ok((pixels, quantised))
}

/// Decompresses a file written by [`compress`] (models are looked up by `load`, given the
/// model name recorded in the file; the hash must match). Returns the number of images decoded.
pub fn decompress(
    input: &Path,
    output: &Path,
    load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
    overwrite: bool,
) -> Result<usize, CodecError> {
    let bad = skyzip_fits::verify_checksums(input)?
        .into_iter()
        .filter(|(_, c)| *c == skyzip_fits::Checksum::Mismatch)
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>();
    if !bad.is_empty() {
        return Err(err(
            input,
            format!(
                "checksum mismatch in HDU {} (the file was changed or damaged)",
                bad.join(", ")
            ),
        ));
    }
    let hdus = list_hdus(input)?;
    let mut coded = Vec::new();
    for info in &hdus {
        if info.kind == "binary table" {
            let t = read_table_at(input, info.index)?;
            if is_coded(&t.header) {
                coded.push((info.index, t));
            }
        }
    }
    if coded.is_empty() {
        return Err(err(
            input,
            format!("no {CMPTYPE} image in this file (not written by skyzip compress)"),
        ));
    }
    // A primary image goes back into the primary, as funpack does, when the file's primary is
    // the empty one that compress left.
    let primary_back = coded
        .first()
        .is_some_and(|(i, t)| *i == 1 && container::was_primary(&t.header))
        && !hdus[0].has_image();
    let mut w = FitsWriter::create(output, overwrite)?;
    let mut models: Vec<Predictor> = Vec::new();
    let mut n = 0;
    for info in &hdus {
        if primary_back && info.index == 0 {
            continue;
        }
        let Some((_, t)) = coded.iter().find(|(i, _)| *i == info.index) else {
            w.copy_hdu(input, info.index)?;
            continue;
        };
        let c = CodedHdu::parse(&t.header, info.index, input)?;
        let p = match models.iter().position(|m| m.hash == c.model_hash) {
            Some(i) => &models[i],
            None => {
                let m = load(&c.model_name)?;
                if m.hash != c.model_hash {
                    return Err(err(
                        input,
                        format!(
                            "HDU {} was coded with model '{}' (hash {}); the model loaded ('{}') \
                             has hash {}",
                            info.index, c.model_name, c.model_hash, m.name, m.hash
                        ),
                    ));
                }
                models.push(m);
                models.last().expect("just pushed")
            }
        };
        // The image header: the table's cards minus the container's, renamed keys restored.
        let mut ih = container::table_to_image(&t.header);
        if !primary_back || info.index != 1 {
            if let Some(x) = t
                .header
                .string("EXTNAME")
                .filter(|x| x.trim() != "COMPRESSED_IMAGE")
            {
                ih.set(Card::string("EXTNAME", x.trim(), ""));
            }
        }
        let blank_value = if c.bitpix > 0 {
            ih.f64("BLANK").map(|b| b as i64)
        } else {
            None
        };
        let (pixels, quantised) = decode_hdu(p, &c, t, input, blank_value)?;
        let history = c.history(quantised, ih.f64("BSCALE").unwrap_or(1.0));
        if !history.is_empty() {
            // A lossy decode says so, and carries checksums (as funpack writes them).
            ih.cards.extend(history);
            ih.set(Card::string("CHECKSUM", "0000000000000000", ""));
        }
        w.write_image(&ImageHdu::new(c.axes.clone(), pixels, ih), None)?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}
