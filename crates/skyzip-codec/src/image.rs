//! One image ↔ its coded tiles: how an image HDU's pixels become the tile coder's integers
//! (the domain: stored integers, or floats quantised as fpack does, or bit-exact floats), the
//! tiles coded in parallel, and the table of the tiled-image convention that holds them — and
//! back. In memory only: the files are [`crate::codec`]'s.

use crate::codec::{HduReport, Mode, Options, FORMAT_VERSION};
use crate::container::{self, CMPTYPE};
use crate::floats::{self, Quantiser, Width};
use crate::header::CodedHdu;
use crate::predict::Predictor;
use crate::tile::{self, Settings};
use crate::CodecError;
use rayon::prelude::*;
use skyzip_fits::{noise_stats, noise_stats_rows, Card, Column, Header, ImageHdu, Pixels, Table};
use std::path::Path;

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
                let ints = img
                    .pixels
                    .ints_as_f64(y * nx..((y + 1) * nx).min(n), blank, row);
                debug_assert!(ints, "an integer domain has integer pixels");
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

/// Codes one image (HDU `hdu` of its file): the BINTABLE of its tiles, with the tiled-image
/// keywords and the image's own cards, and what was done.
pub fn encode(
    p: &Predictor,
    img: &ImageHdu,
    opts: &Options,
    hdu: usize,
) -> Result<(Table, HduReport), String> {
    let (dom, sigma) = domain(img, opts.q);
    if let (Domain::Int { lo, hi, blank }, Pixels::I64(v)) = (dom, &img.pixels) {
        // The coder's integers keep a bit of headroom: int64 values beyond ±2^62 cannot be
        // coded, and are refused rather than clamped.
        if let Some((i, x)) = v
            .iter()
            .enumerate()
            .find(|(_, &x)| Some(x) != blank && !(lo..=hi).contains(&x))
        {
            return Err(format!(
                "HDU {hdu}: BITPIX 64 pixel {i} = {x} lies beyond ±2^62, the range skyzip \
                 codes; keep this HDU with fpack (e.g. `skyzip pack --codec gzip2`)"
            ));
        }
    }
    let (nx, ny, planes) = (img.nx(), img.ny(), img.planes());
    let e = match (opts.mode, dom) {
        (Mode::Lossless, _) => 0,
        (Mode::MaxError(_), Domain::Float { quant: None, .. }) if opts.q == 0.0 => {
            return Err(format!(
                "HDU {hdu}: q = 0 codes floats bit-exactly; a max error needs q > 0"
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
        .map(|&(pl, r)| encode_tile(p, img, dom, pl, r, e, opts.eta))
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
    let report = HduReport {
        hdu,
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
    };
    Ok((table, report))
}

/// Tiles per thread in a band of [`decode`]: with two per thread (one row of six tiles on two
/// threads, the last one narrow), one thread waited a quarter of the time.
const BAND_TILES_PER_THREAD: usize = 8;

/// Decodes one coded HDU's pixels.
pub fn decode(
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
        _ => return Err(CodecError::file(path, "no COMPRESSED_DATA column")),
    };
    let exact_rows = match t.column("EXACT_DATA") {
        Some(Column::Bytes(r)) if c.bitpix < 0 && r.len() == rows.len() => Some(r),
        None => None,
        _ => {
            return Err(CodecError::file(
                path,
                "EXACT_DATA column of the wrong type or length",
            ))
        }
    };
    // Checked before anything is allocated for the image: the header's axes must agree with
    // the rows the table really holds, and the image must fit in memory.
    let rects = tiles(nx, ny, c.tile);
    let expected = rects.len() as u128 * planes as u128;
    if rows.len() as u128 != expected {
        return Err(CodecError::file(
            path,
            format!("{} tiles stored, {expected} expected", rows.len()),
        ));
    }
    let npix = c.npix();
    if npix as u128 > MAX_PIXELS {
        return Err(CodecError::file(
            path,
            format!("{nx}×{ny}×{planes} pixels is more than this decoder takes ({MAX_PIXELS})"),
        ));
    }
    if let Some(k) = c.eta {
        if !(1..=p.latent_channels()).contains(&k) {
            return Err(CodecError::file(
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
    // decoded at once (whole rows of tiles, at least BAND_TILES_PER_THREAD per thread, so
    // that the threads' loads even out before they wait for each other), so memory grows with
    // the tile row, not the image.
    let mut pixels = match c.bitpix {
        8 => Pixels::U8(vec![0; npix]),
        16 => Pixels::I16(vec![0; npix]),
        32 => Pixels::I32(vec![0; npix]),
        64 => Pixels::I64(vec![0; npix]),
        -32 => Pixels::F32(vec![0.0; npix]),
        _ => Pixels::F64(vec![0.0; npix]),
    };
    let per_row = nx.div_ceil(c.tile).max(1);
    let band = per_row * (BAND_TILES_PER_THREAD * rayon::current_num_threads()).div_ceil(per_row);
    let mut quantised = 0;
    for chunk in jobs.chunks(band) {
        // Per tile: the pixel values as the HDU stores them (integers, or float bit patterns), and
        // whether the tile was quantised.
        let decoded: Vec<Result<(Vec<u64>, bool), CodecError>> = chunk
            .par_iter()
            .map(|&(pl, k)| {
                let (_, _, tw, th) = rects[k];
                let row = pl * rects.len() + k;
                let bad = |why: String| {
                    CodecError::file(path, format!("HDU {} tile {row}: {why}", c.hdu))
                };
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
