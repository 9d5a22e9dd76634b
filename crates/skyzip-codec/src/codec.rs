//! Whole files: every image HDU tiled and coded, other HDUs copied, in a standard FITS container.
//!
//! Container: each coded image is a BINTABLE with one row per tile (`COMPRESSED_DATA`, a `1PB`
//! byte string; `EST_BITS`, the entropy model's estimate) and the keywords of the tiled-image
//! convention: ZCMPTYPE = 'SKYZIP_1', ZBITPIX, ZNAXIS, ZNAXISn, ZTILEn, ZNAMEi/ZVALi (model hash,
//! mode, max error, q, normalisation), the image's own cards (BSCALE/BZERO/BLANK renamed
//! ZSCALE/ZZERO/ZBLANK as fpack does) and CHECKSUM/DATASUM in every HDU. ZIMAGE is F: with T,
//! cfitsio — and so fitsverify, funpack, ds9 — refuses to move to an HDU whose ZCMPTYPE it does
//! not know ("Unknown image compression type"), and astropy builds a broken CompImageHDU. With F
//! the file is a plain, valid FITS file that every tool opens, and skyzip finds its tables by
//! ZCMPTYPE.
//!
//! Pixels: integers are coded as stored (BSCALE/BZERO untouched, BLANK as the mask). Floats are
//! first quantised as fpack does — step δ = σ/q (σ the background noise), subtractive dither —
//! and "lossless" means the quantised integers come back exactly (error ≤ δ/2); NaNs are the mask.

use crate::predict::Predictor;
use crate::tile::{self, Settings};
use crate::CodecError;
use rayon::prelude::*;
use skyzip_fits::{
    list_hdus, noise_stats, read_image, read_table_at, Card, Column, FitsWriter, HduSelector,
    Header, ImageHdu, Pixels, Table,
};
use std::path::Path;

pub const CMPTYPE: &str = "SKYZIP_1";

/// What the coder may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Integers exact; floats exact after quantisation at step σ/q.
    Lossless,
    /// |error| ≤ E·σ for every pixel (σ: the image's background noise).
    MaxError(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub mode: Mode,
    /// Float quantisation: step σ/q (fpack's -q; 4 is fpack's default).
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
    /// Float quantisation step (physical units), floats only.
    pub delta: Option<f64>,
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

/// The dither offset in [0, 1) of pixel `i` (SplitMix64 of seed and index).
fn dither(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

const DITHER_SEED: u64 = 1;

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The integer domain of an image: values, blank mask, the value range, and for floats the
/// quantisation (zero, δ).
struct Domain {
    v: Vec<i64>,
    blank: Vec<bool>,
    lo: i64,
    hi: i64,
    float: Option<(f64, f64)>,
    sigma: f64,
}

fn int_range(bitpix: i32) -> (i64, i64) {
    match bitpix {
        8 => (0, 255),
        16 => (i16::MIN as i64, i16::MAX as i64),
        32 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN / 2, i64::MAX / 2),
    }
}

const FLOAT_LIMIT: f64 = (1u64 << 52) as f64;

fn domain(img: &ImageHdu, q: f64, path: &Path) -> Result<Domain, CodecError> {
    let n = img.npix();
    let (nx, rows) = (img.nx(), img.ny() * img.planes());
    if img.pixels.is_float() {
        let x: Vec<f64> = (0..n).map(|i| img.pixels.raw_f64(i)).collect();
        if let Some(i) = x.iter().position(|v| v.is_infinite()) {
            return Err(err(
                path,
                format!(
                    "HDU {}: pixel {i} is infinite; skyzip codes finite values and NaN blanks only",
                    img.hdu
                ),
            ));
        }
        let fin: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
        let zero = median(fin.clone());
        let sigma = noise_stats(&x, nx, rows).sigma();
        let mut delta = sigma / q;
        if !(delta > 0.0 && delta.is_finite()) {
            delta = zero.abs().max(1.0) * 2f64.powi(-23);
        }
        let mut v = vec![0i64; n];
        let mut blank = vec![false; n];
        for i in 0..n {
            if x[i].is_nan() {
                blank[i] = true;
                continue;
            }
            let t = ((x[i] - zero) / delta + dither(DITHER_SEED, i as u64)).floor();
            if t.abs() > FLOAT_LIMIT {
                return Err(err(path, format!("HDU {}: pixel {i} is {:e} noise steps from the background; q = {q} cannot represent it", img.hdu, t)));
            }
            v[i] = t as i64;
        }
        Ok(Domain {
            v,
            blank,
            lo: -(FLOAT_LIMIT as i64),
            hi: FLOAT_LIMIT as i64,
            float: Some((zero, delta)),
            sigma,
        })
    } else {
        let v: Vec<i64> = (0..n).map(|i| img.pixels.raw_i64(i).unwrap_or(0)).collect();
        let blank: Vec<bool> = v.iter().map(|&x| Some(x) == img.blank).collect();
        let raw: Vec<f64> = v
            .iter()
            .zip(&blank)
            .map(|(&x, &b)| if b { f64::NAN } else { x as f64 })
            .collect();
        let sigma_raw = noise_stats(&raw, nx, rows).sigma();
        let (lo, hi) = int_range(img.bitpix());
        Ok(Domain {
            v,
            blank,
            lo,
            hi,
            float: None,
            sigma: sigma_raw * img.bscale.abs(),
        })
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

/// Keywords of ours and of the table's structure, dropped when restoring the image header.
fn is_container_key(k: &str) -> bool {
    let numbered = |p: &str| k.starts_with(p) && k[p.len()..].chars().all(|c| c.is_ascii_digit());
    matches!(
        k,
        "ZIMAGE"
            | "ZCMPTYPE"
            | "ZBITPIX"
            | "ZNAXIS"
            | "TFIELDS"
            | "CHECKSUM"
            | "DATASUM"
            | "EXTNAME"
            | "THEAP"
    ) || k.starts_with("SZ")
        || [
            "ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "TTYPE", "TFORM", "TUNIT", "TDIM",
        ]
        .iter()
        .any(|p| numbered(p))
}

/// Image keywords a BINTABLE may not carry, and their names in the container.
const RENAMED: [(&str, &str); 6] = [
    ("BSCALE", "ZSCALE"),
    ("BZERO", "ZZERO"),
    ("BLANK", "ZBLANK"),
    ("BUNIT", "ZBUNIT"),
    ("DATAMAX", "ZDATAMAX"),
    ("DATAMIN", "ZDATAMIN"),
];

/// The most pixels one image HDU may have (2^33: 64 GiB as 64-bit integers while decoding).
const MAX_PIXELS: u128 = 1 << 33;

fn fmt_f64(v: f64) -> String {
    format!("{v:E}")
}

/// Compresses every image HDU of `input` into `output`.
pub fn compress(
    input: &Path,
    output: &Path,
    p: &Predictor,
    opts: &Options,
    overwrite: bool,
) -> Result<Report, CodecError> {
    if !(opts.q > 0.0 && opts.q.is_finite()) {
        return Err(err(input, format!("q = {} must be positive", opts.q)));
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
            // The primary's cards (WCS included) stay in the primary; the pixels move to a
            // table. Only the cards that describe the pixels' array and scaling leave.
            let mut ph = Header::default();
            ph.cards
                .push(Card::value("EXTEND", "T", "extensions follow"));
            for c in &img.header.cards {
                let k = c.keyword();
                if c.is_structural()
                    || matches!(k, "BSCALE" | "BZERO" | "BLANK" | "CHECKSUM" | "DATASUM")
                {
                    continue;
                }
                ph.cards.push(c.clone());
            }
            w.write_empty_primary(&ph)?;
        }
        let dom = domain(&img, opts.q, input)?;
        let (nx, ny, planes) = (img.nx(), img.ny(), img.planes());
        let e = match opts.mode {
            Mode::Lossless => 0,
            Mode::MaxError(emax) => match dom.float {
                // Quantisation costs δ/2 = σ/(2q); the residual step the rest.
                Some(_) => (emax * opts.q - 0.5).floor().max(0.0) as i64,
                None => {
                    let sr = dom.sigma / img.bscale.abs();
                    (emax * sr).floor().max(0.0) as i64
                }
            },
        };
        let s = Settings {
            e,
            lo: dom.lo,
            hi: dom.hi,
            eta: opts.eta,
        };
        // Tiles are independent: coded in parallel, kept in order.
        let jobs: Vec<(usize, (usize, usize, usize, usize))> = (0..planes)
            .flat_map(|pl| tiles(nx, ny, opts.tile).into_iter().map(move |r| (pl, r)))
            .collect();
        let coded: Vec<tile::Encoded> = jobs
            .par_iter()
            .map(|&(pl, (x0, y0, tw, th))| {
                let mut v = Vec::with_capacity(tw * th);
                let mut b = Vec::with_capacity(tw * th);
                for y in y0..y0 + th {
                    let at = pl * nx * ny + y * nx + x0;
                    v.extend_from_slice(&dom.v[at..at + tw]);
                    b.extend_from_slice(&dom.blank[at..at + tw]);
                }
                tile::encode(p, &v, &b, tw, th, &s)
            })
            .collect();
        let est: Vec<f64> = coded.iter().map(|t| t.est_bits).collect();
        let rows: Vec<Vec<u8>> = coded.into_iter().map(|t| t.bytes).collect();
        let tile_bytes = rows.iter().map(Vec::len).sum();
        let est_bits: f64 = est.iter().sum();
        let mut h = Header::default();
        let mut set = |c: Card| h.cards.push(c);
        set(Card::value(
            "ZIMAGE",
            "F",
            "T would make cfitsio refuse the HDU",
        ));
        set(Card::string("ZCMPTYPE", CMPTYPE, "skyzip learned codec"));
        set(Card::value(
            "ZBITPIX",
            &img.bitpix().to_string(),
            "BITPIX of the image",
        ));
        set(Card::value(
            "ZNAXIS",
            &img.axes.len().to_string(),
            "axes of the image",
        ));
        for (k, a) in img.axes.iter().enumerate() {
            set(Card::value(&format!("ZNAXIS{}", k + 1), &a.to_string(), ""));
        }
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
        let mode = match opts.mode {
            Mode::Lossless => "lossless".to_string(),
            Mode::MaxError(_) => "max-error".to_string(),
        };
        let maxerr = match opts.mode {
            Mode::Lossless => 0.0,
            Mode::MaxError(e) => e,
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
        set(Card::string("SZMODEL", &p.name, "codec model"));
        set(Card::value(
            "SZERRINT",
            &e.to_string(),
            "max |error| in coded integer units",
        ));
        set(Card::value(
            "SZSIGMA",
            &fmt_f64(dom.sigma),
            "background noise sigma",
        ));
        if let Some((zero, delta)) = dom.float {
            set(Card::value(
                "SZZERO",
                &fmt_f64(zero),
                "float quantisation zero point",
            ));
            set(Card::value(
                "SZDELTA",
                &fmt_f64(delta),
                "float quantisation step",
            ));
            set(Card::value(
                "SZDSEED",
                &DITHER_SEED.to_string(),
                "dither seed",
            ));
        }
        set(Card::value(
            "SZPRIMRY",
            if info.index == 0 { "T" } else { "F" },
            "image was the primary HDU",
        ));
        // The image's own cards: for a primary image they stay in the primary (above) and only
        // the scaling travels here; an extension's cards travel here, with the keywords a table
        // may not carry renamed (as fpack renames BSCALE → ZSCALE).
        for c in &img.header.cards {
            let k = c.keyword();
            if c.is_structural() || is_container_key(k) {
                continue;
            }
            let renamed = RENAMED.iter().find(|(b, _)| *b == k).map(|(_, z)| *z);
            if info.index == 0 && renamed.is_none() {
                continue;
            }
            match renamed {
                Some(z) => set(Card::new(&format!("{z:<8}{}", &c.text()[8..]))),
                None => set(c.clone()),
            }
        }
        let table = Table {
            columns: vec![
                ("COMPRESSED_DATA".into(), Column::Bytes(rows)),
                ("EST_BITS".into(), Column::F64(est)),
            ],
            header: h,
        };
        let extname = img
            .extname
            .clone()
            .unwrap_or_else(|| "COMPRESSED_IMAGE".into());
        w.write_table(&extname, &table)?;
        images.push(HduReport {
            hdu: info.index,
            nx,
            ny,
            planes,
            bitpix: img.bitpix(),
            tile_bytes,
            est_bits,
            sigma: dom.sigma,
            max_error_int: e,
            delta: dom.float.map(|f| f.1),
        });
    }
    w.write_checksums()?;
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

/// Decompresses a file written by [`compress`] (models are looked up by `load`, given the
/// model name recorded in the file; the hash must match).
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
            if t.header
                .string("ZCMPTYPE")
                .is_some_and(|z| z.trim() == CMPTYPE)
            {
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
    let primary_coded = coded.first().is_some_and(|(i, t)| {
        *i == 1 && t.header.get("SZPRIMRY").and_then(|c| c.raw_value()) == Some("T")
    });
    let mut w = FitsWriter::create(output, overwrite)?;
    let mut models: Vec<Predictor> = Vec::new();
    let mut n = 0;
    for info in &hdus {
        if primary_coded && info.index == 0 {
            continue; // replaced by the decoded image
        }
        let Some((_, t)) = coded.iter().find(|(i, _)| *i == info.index) else {
            w.copy_hdu(input, info.index)?;
            continue;
        };
        let h = &t.header;
        let name = h.string("SZMODEL").unwrap_or_else(|| "default".into());
        let hash = zval(h, "MODEL").ok_or_else(|| err(input, "no model hash (ZNAME MODEL)"))?;
        let p = match models.iter().position(|m| m.hash == hash) {
            Some(i) => &models[i],
            None => {
                let m = load(name.trim())?;
                if m.hash != hash {
                    return Err(err(
                        input,
                        format!("HDU {} was coded with model '{}' (hash {hash}); the model loaded ('{}') has hash {}", info.index, name.trim(), m.name, m.hash)));
                }
                models.push(m);
                models.last().expect("just pushed")
            }
        };
        let bitpix = key_i64(h, "ZBITPIX", input)? as i32;
        let naxis = key_i64(h, "ZNAXIS", input)? as usize;
        if !(1..=3).contains(&naxis) {
            return Err(err(input, format!("ZNAXIS = {naxis}")));
        }
        let mut axes = Vec::new();
        for k in 1..=naxis {
            let a = key_i64(h, &format!("ZNAXIS{k}"), input)?;
            if !(1..=1 << 24).contains(&a) {
                return Err(err(input, format!("ZNAXIS{k} = {a}")));
            }
            axes.push(a as usize);
        }
        let nx = axes[0];
        let ny = axes.get(1).copied().unwrap_or(1);
        let planes = axes.get(2).copied().unwrap_or(1);
        let t1 = key_i64(h, "ZTILE1", input)?.max(0) as usize;
        let t2 = key_i64(h, "ZTILE2", input)?.max(0) as usize;
        let tile = if t1 < nx {
            t1
        } else if t2 < ny {
            t2
        } else {
            nx.max(ny)
        };
        if tile == 0 || t1 != tile.min(nx) || t2 != tile.min(ny) {
            return Err(err(
                input,
                format!("ZTILE1/2 = {t1}/{t2} do not describe square tiles of a {nx}×{ny} image"),
            ));
        }
        let e = key_i64(h, "SZERRINT", input)?;
        if e < 0 {
            return Err(err(input, format!("SZERRINT = {e}")));
        }
        let float = matches!(bitpix, -32 | -64);
        let (lo, hi) = if float {
            (-(FLOAT_LIMIT as i64), FLOAT_LIMIT as i64)
        } else {
            int_range(bitpix)
        };
        let quant = if float {
            Some((
                key_f64(h, "SZZERO", input)?,
                key_f64(h, "SZDELTA", input)?,
                key_i64(h, "SZDSEED", input)? as u64,
            ))
        } else {
            None
        };
        let rows = match t.column("COMPRESSED_DATA") {
            Some(Column::Bytes(r)) => r,
            _ => return Err(err(input, "no COMPRESSED_DATA column")),
        };
        // Checked before anything is allocated for the image: the header's axes must agree
        // with the rows the table really holds, and the image must fit in memory.
        let expected = nx.div_ceil(tile) as u128 * ny.div_ceil(tile) as u128 * planes as u128;
        if rows.len() as u128 != expected {
            return Err(err(
                input,
                format!("{} tiles stored, {expected} expected", rows.len()),
            ));
        }
        let npix128 = nx as u128 * ny as u128 * planes as u128;
        if npix128 > MAX_PIXELS {
            return Err(err(
                input,
                format!("{nx}×{ny}×{planes} pixels is more than this decoder takes ({MAX_PIXELS})"),
            ));
        }
        let rects = tiles(nx, ny, tile);
        let eta = match zval(h, "ETA") {
            None => None,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(k) if (1..=p.latent_channels()).contains(&k) => Some(k),
                _ => {
                    return Err(err(
                        input,
                        format!(
                            "ETA = {v}: the model has {} latent channels",
                            p.latent_channels()
                        ),
                    ))
                }
            },
        };
        let s = Settings { e, lo, hi, eta };
        let npix = nx * ny * planes;
        let mut v = vec![0i64; npix];
        let mut blank = vec![false; npix];
        let jobs: Vec<(usize, usize)> = (0..planes)
            .flat_map(|pl| (0..rects.len()).map(move |k| (pl, k)))
            .collect();
        let decoded: Vec<_> = jobs
            .par_iter()
            .map(|&(pl, k)| {
                let (_, _, tw, th) = rects[k];
                let row = pl * rects.len() + k;
                tile::decode(p, &rows[row], tw, th, &s)
                    .map_err(|c| err(input, format!("HDU {} tile {row}: {}", info.index, c.0)))
            })
            .collect();
        for (&(pl, k), r) in jobs.iter().zip(decoded) {
            let (tv, tb) = r?;
            let (x0, y0, tw, th) = rects[k];
            for y in 0..th {
                let at = pl * nx * ny + (y0 + y) * nx + x0;
                v[at..at + tw].copy_from_slice(&tv[y * tw..(y + 1) * tw]);
                blank[at..at + tw].copy_from_slice(&tb[y * tw..(y + 1) * tw]);
            }
        }
        // The image header: the table's cards minus the container's, Z-renamed keys restored.
        let mut ih = Header::default();
        for c in &h.cards {
            let k = c.keyword();
            if c.is_structural() || is_container_key(k) {
                continue;
            }
            let back = RENAMED.iter().find(|(_, z)| *z == k).map(|(b, _)| *b);
            match back {
                Some(b) => ih
                    .cards
                    .push(Card::new(&format!("{b:<8}{}", &c.text()[8..]))),
                None => ih.cards.push(c.clone()),
            }
        }
        if info.index != 1 || !primary_coded {
            if let Some(x) = h
                .string("EXTNAME")
                .filter(|x| x.trim() != "COMPRESSED_IMAGE")
            {
                ih.set(Card::string("EXTNAME", x.trim(), ""));
            }
        }
        let blank_value = ih.f64("BLANK").map(|b| b as i64);
        let pixels = match quant {
            Some((zero, delta, seed)) => {
                let f = |i: usize| {
                    if blank[i] {
                        f64::NAN
                    } else {
                        (v[i] as f64 - dither(seed, i as u64) + 0.5) * delta + zero
                    }
                };
                if bitpix == -32 {
                    Pixels::F32((0..npix).map(|i| f(i) as f32).collect())
                } else {
                    Pixels::F64((0..npix).map(f).collect())
                }
            }
            None => {
                let g = |i: usize| {
                    if blank[i] {
                        blank_value.unwrap_or(0)
                    } else {
                        v[i]
                    }
                };
                match bitpix {
                    8 => Pixels::U8((0..npix).map(|i| g(i) as u8).collect()),
                    16 => Pixels::I16((0..npix).map(|i| g(i) as i16).collect()),
                    32 => Pixels::I32((0..npix).map(|i| g(i) as i32).collect()),
                    64 => Pixels::I64((0..npix).map(g).collect()),
                    b => return Err(err(input, format!("ZBITPIX = {b}"))),
                }
            }
        };
        if primary_coded && info.index == 1 {
            // Back into the primary: its own cards were kept in the primary header.
            let mut ph = skyzip_fits::read_header(input, 0)?;
            ph.cards
                .retain(|c| !c.is_structural() || c.keyword() == "EXTEND");
            for c in &ih.cards {
                if RENAMED.iter().any(|(b, _)| *b == c.keyword()) {
                    ph.set(c.clone());
                }
            }
            ph.cards
                .retain(|c| !matches!(c.keyword(), "CHECKSUM" | "DATASUM"));
            w.write_image(&ImageHdu::new(axes.clone(), pixels, ph), None)?;
        } else {
            w.write_image(&ImageHdu::new(axes.clone(), pixels, ih), None)?;
        }
        n += 1;
    }
    w.finish()?;
    Ok(n)
}
