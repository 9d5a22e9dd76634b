//! Whole files: every image HDU tiled and coded, other HDUs copied, in a standard FITS container.
//!
//! The layers, each its own module: [`crate::predict`] (the model: a tile's latent, μ and σ),
//! [`crate::tile`] (one tile ↔ its bytes), [`crate::image`] (one image ↔ its table of tiles, in
//! memory), [`crate::header`] (what a coded HDU's header says) and this file (FITS files in and
//! out).
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
pub use crate::header::is_coded;
use crate::image;
use crate::predict::Predictor;
use crate::tile;
use crate::CodecError;
use skyzip_fits::{
    list_hdus, read_header, read_image, read_table_at, Card, FitsWriter, HduInfo, HduSelector,
    Header, ImageHdu, Pixels,
};
use std::path::Path;

pub use crate::container::CMPTYPE;
pub use crate::header::{coded_hdus, zval, CodedHdu};

/// The file format version, in every coded HDU's SZFORMAT (and the first byte of every tile).
/// 7 (what this build writes): as 6, with the RMSE mode's zero-bin offset after its centroid
/// offsets. 6: as 5, with the RMSE mode ([`crate::tile::Rdo`]). 5: as 4, with a 3-bit residual mode read before the latent, and mode 4 (lossless tiles): the
/// values under frequency tables learned as the tile is coded ([`crate::histogram`]), no
/// latent. 4: as 3, with each tile's uniform bits outside the range coder and an XXH3-64 tile hash.
/// 3: the integer engine (the same bits on every machine): still
/// decoded. 1–2 were pre-release formats whose prediction came from a float framework; no
/// release wrote them and this build refuses them.
pub const FORMAT_VERSION: u8 = tile::VERSION;

/// Every format version this build decodes, oldest first (the last is [`FORMAT_VERSION`]).
pub const READ_VERSIONS: [u8; 5] = [3, 4, 5, 6, 7];

/// What the coder may change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Integers exact; floats exact after quantisation at step σ/q (bit-exact with q = 0).
    Lossless,
    /// |error| ≤ E·σ for every pixel (σ: the image's background noise).
    MaxError(f64),
    /// RMSE ≤ R·σ over each image, without a per-pixel bound: the smallest file the RMSE mode's
    /// quantiser (dead zone, rate–distortion decisions, centroid reconstruction) finds
    /// within it. NaN/BLANK masks are kept as in every mode.
    Rmse(f64),
}

impl Mode {
    /// The max-error mode at E σ, lossless for E = 0 (what the rate searches find).
    pub fn max_error_or_lossless(e: f64) -> Mode {
        if e > 0.0 {
            Mode::MaxError(e)
        } else {
            Mode::Lossless
        }
    }
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
    /// The RMSE mode's quantiser step in coded integers (1 in the other modes, and where the
    /// RMSE mode fell back to lossless), and the decoded image's RMSE in σ (measured on the
    /// pixels the decoder will produce).
    pub step: i64,
    pub rmse: f64,
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

/// Refuses files that have nothing to compress, or that skyzip compressed already.
fn check_compressible(input: &Path, hdus: &[HduInfo]) -> Result<(), CodecError> {
    for info in hdus.iter().filter(|i| i.kind == "binary table") {
        let h = read_header(input, info.index)?;
        if h.string("ZCMPTYPE").is_some_and(|z| z.trim() == CMPTYPE) {
            return Err(CodecError::file(
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
        return Err(CodecError::file(
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
        return Err(CodecError::file(
            input,
            format!("q = {} must be ≥ 0 (0: bit-exact floats)", opts.q),
        ));
    }
    match opts.mode {
        Mode::MaxError(e) if !(e >= 0.0 && e.is_finite()) => {
            return Err(CodecError::file(
                input,
                format!("max error {e} must be ≥ 0 (units of σ)"),
            ));
        }
        Mode::Rmse(r) if !(r >= 0.0 && r.is_finite()) => {
            return Err(CodecError::file(
                input,
                format!("RMSE target {r} must be ≥ 0 (units of σ)"),
            ));
        }
        _ => {}
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
    if opts.tile < d || !opts.tile.is_multiple_of(d) {
        return Err(CodecError::file(
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
        let (table, report) =
            image::encode(p, &img, opts, info.index).map_err(|why| CodecError::file(input, why))?;
        let extname = img
            .extname
            .clone()
            .unwrap_or_else(|| "COMPRESSED_IMAGE".into());
        w.write_table(&extname, &table)?;
        w.write_checksum_last()?;
        images.push(report);
    }
    // The HDUs copied from the input keep what they had, so they come back byte for byte.
    let out = w.finish()?;
    let file_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    Ok(Report { images, file_bytes })
}

/// Refuses a file whose CHECKSUM/DATASUM do not match its bytes.
fn check_checksums(path: &Path) -> Result<(), CodecError> {
    let bad = skyzip_fits::verify_checksums(path)?
        .into_iter()
        .filter(|(_, c)| *c == skyzip_fits::Checksum::Mismatch)
        .map(|(i, _)| i.to_string())
        .collect::<Vec<_>>();
    if !bad.is_empty() {
        return Err(CodecError::file(
            path,
            format!(
                "checksum mismatch in HDU {} (the file was changed or damaged)",
                bad.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The models a file's HDUs name, each loaded once and held to the hash the HDU records.
#[derive(Default)]
struct Models(Vec<Predictor>);

impl Models {
    fn get(
        &mut self,
        c: &CodedHdu,
        path: &Path,
        load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
    ) -> Result<&Predictor, CodecError> {
        if let Some(i) = self.0.iter().position(|m| m.hash == c.model_hash) {
            return Ok(&self.0[i]);
        }
        let m = load(&c.model_name)?;
        if m.hash != c.model_hash {
            return Err(CodecError::file(
                path,
                format!(
                    "HDU {} was coded with model '{}' (hash {}); the model loaded ('{}') has \
                     hash {}",
                    c.hdu, c.model_name, c.model_hash, m.name, m.hash
                ),
            ));
        }
        self.0.push(m);
        Ok(self.0.last().expect("just pushed"))
    }
}

/// Decompresses a file written by [`compress`] (models are looked up by `load`, given the
/// model name recorded in the file; the hash must match). Returns the number of images decoded.
pub fn decompress(
    input: &Path,
    output: &Path,
    load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
    overwrite: bool,
) -> Result<usize, CodecError> {
    check_checksums(input)?;
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
        return Err(CodecError::file(
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
    let mut models = Models::default();
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
        let p = models.get(&c, input, load)?;
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
        let (pixels, quantised) = image::decode(p, &c, t, input, blank_value)?;
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

/// What [`verify`] checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Image HDUs decoded and compared.
    pub images: usize,
    /// Pixels compared, and the largest |error| seen in stored units (0 for exact).
    pub pixels: usize,
    pub max_error: f64,
}

/// Cards that must come back: everything but the structural keywords and checksums, which every
/// writer makes anew.
fn kept_cards(h: &Header) -> Vec<String> {
    // A lossy decode's HISTORY lines (from "HISTORY skyzip:" on) are the decoder's own.
    let mut ours = false;
    h.cards
        .iter()
        .filter(|c| {
            let k = c.keyword();
            ours |= c.text().starts_with("HISTORY skyzip:");
            let remade = c.is_structural() || matches!(k, "CHECKSUM" | "DATASUM" | "EXTNAME");
            let decoders = ours && k == "HISTORY";
            !(remade || decoders)
        })
        .map(|c| c.text().trim_end().to_string())
        .collect()
}

/// Checks a compressed file against its original before anyone relies on it: checksums; every
/// coded image decoded (its tiles' hashes checked) and compared with the original's pixels —
/// the same shape, the same NaN/BLANK mask, each pixel within the bound the file promises
/// (identical bits where it promises exactness) — and the same header cards. Returns what it
/// compared, or an error naming the HDU and the first difference.
pub fn verify(
    original: &Path,
    compressed: &Path,
    load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
) -> Result<Verified, CodecError> {
    check_checksums(compressed)?;
    let orig_hdus = list_hdus(original)?;
    let hdus = list_hdus(compressed)?;
    // A primary image moved to HDU 1 behind an empty primary: every later HDU moved by one.
    let shift = usize::from(orig_hdus.first().is_some_and(HduInfo::has_image));
    if hdus.len() != orig_hdus.len() + shift {
        return Err(CodecError::file(
            compressed,
            format!(
                "{} HDUs where the original's {} need {}",
                hdus.len(),
                orig_hdus.len(),
                orig_hdus.len() + shift
            ),
        ));
    }
    let mut models = Models::default();
    let mut done = Verified {
        images: 0,
        pixels: 0,
        max_error: 0.0,
    };
    for info in orig_hdus.iter().filter(|i| i.has_image()) {
        let at = info.index + shift;
        let t = read_table_at(compressed, at)?;
        if !is_coded(&t.header) {
            return Err(CodecError::file(
                compressed,
                format!("HDU {at} should hold the tiles of image HDU {}", info.index),
            ));
        }
        let c = CodedHdu::parse(&t.header, at, compressed)?;
        let p = models.get(&c, compressed, load)?;
        let img = read_image(original, &HduSelector::Index(info.index))?;
        let fail = |why: String| CodecError::file(compressed, format!("HDU {at}: {why}"));
        if img.axes != c.axes || img.bitpix() != c.bitpix {
            return Err(fail(format!(
                "shape {:?} BITPIX {} where the original has {:?} BITPIX {}",
                c.axes,
                c.bitpix,
                img.axes,
                img.bitpix()
            )));
        }
        let (pixels, _) = image::decode(p, &c, &t, compressed, img.blank)?;
        // The RMSE mode promises no per-pixel bound: its image RMSE is checked below.
        let rmse_mode = c.step.is_some_and(|s| s > 1);
        // The bound in stored units: the integer bound, or for quantised floats the bound in
        // steps plus the half step of quantisation.
        let bound = match (&c.quant, img.pixels.is_float()) {
            (Some(q), true) => (c.error_int as f64 + 0.5) * q.delta * (1.0 + 1e-9),
            _ => c.error_int as f64,
        };
        let mut worst = 0f64;
        let (mut sq, mut n) = (0f64, 0usize);
        for i in 0..img.pixels.len() {
            let (a, b) = (img.pixels.raw_f64(i), pixels.raw_f64(i));
            let blank =
                |v: f64, px: &Pixels| v.is_nan() || (!px.is_float() && img.blank == px.raw_i64(i));
            let (ma, mb) = (blank(a, &img.pixels), blank(b, &pixels));
            if ma != mb {
                return Err(fail(format!(
                    "pixel {i}: the NaN/BLANK mask differs (original {a}, decoded {b})"
                )));
            }
            if ma {
                continue;
            }
            let e = if bound == 0.0 {
                if img.pixels.raw_bits(i) != pixels.raw_bits(i) {
                    f64::INFINITY
                } else {
                    0.0
                }
            } else {
                (a - b).abs()
            };
            // A float image's decoded value is the reconstruction rounded to its type: up to
            // half an ulp more.
            let ulp = match pixels {
                Pixels::F32(_) => b.abs() * f32::EPSILON as f64,
                Pixels::F64(_) => b.abs() * f64::EPSILON,
                _ => 0.0,
            };
            if rmse_mode {
                let d = a - b;
                if !d.is_finite() {
                    return Err(fail(format!("pixel {i}: original {a}, decoded {b}")));
                }
                sq += d * d;
                n += 1;
                worst = worst.max(d.abs());
                continue;
            }
            // NaN-safe: an error that is not ≤ the bound (NaN included) fails.
            let within = e <= bound + ulp;
            if !within {
                return Err(fail(format!(
                    "pixel {i}: original {a}, decoded {b}, beyond the bound {bound}"
                )));
            }
            worst = worst.max(e);
        }
        if rmse_mode && n > 0 {
            // Within the target, with room for a float type's rounding of each value.
            let rmse = (sq / n as f64).sqrt();
            let allowed = c.rmse_target * c.sigma * (1.0 + 1e-6);
            if rmse.is_nan() || rmse > allowed {
                return Err(fail(format!(
                    "RMSE {rmse:.6e} beyond the target {} σ = {allowed:.6e}",
                    c.rmse_target
                )));
            }
        }
        let ih = container::table_to_image(&t.header);
        let (want, got) = (kept_cards(&img.header), kept_cards(&ih));
        if want != got {
            let first = want
                .iter()
                .zip(&got)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("'{a}' became '{b}'"))
                .unwrap_or_else(|| format!("{} cards became {}", want.len(), got.len()));
            return Err(fail(format!("header differs: {first}")));
        }
        done.images += 1;
        done.pixels += img.pixels.len();
        done.max_error = done.max_error.max(worst);
    }
    if done.images == 0 {
        return Err(CodecError::file(original, "no image HDU to compare"));
    }
    Ok(done)
}
