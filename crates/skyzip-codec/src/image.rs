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

/// A coded tile: its bytes and in which column they go, and the decoder's squared error
/// summed over its pixels with data (physical units; the decoder's pixels are the encoder's,
/// as the tile hash checks).
struct CodedTile {
    bytes: Vec<u8>,
    exact: bool,
    est_bits: f64,
    sq_err: f64,
    /// Pixels with data.
    n: usize,
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
    (e, rdo): (i64, Option<tile::Rdo>),
    (eta, cache): (Option<usize>, Option<&std::sync::OnceLock<tile::Analysed>>),
) -> CodedTile {
    let (tw, th) = (rect.2, rect.3);
    let idx: Vec<usize> = tile_indices((img.nx(), img.ny()), plane, rect).collect();
    // `error(k, decoded)`: the physical error of the tile's k-th pixel (None: none can have
    // one).
    let quantised = |v: &[i64],
                     blank: &[bool],
                     (lo, hi): (i64, i64),
                     error: Option<&dyn Fn(usize, i64) -> f64>| {
        let s = Settings {
            e,
            lo,
            hi,
            eta,
            rdo,
        };
        let t = tile::encode_with(p, cache, v, blank, tw, th, &s);
        let sq_err = error.map_or(0.0, |error| {
            (0..v.len())
                .filter(|&k| !blank[k])
                .map(|k| error(k, t.decoded[k]).powi(2))
                .sum()
        });
        CodedTile {
            bytes: t.bytes,
            exact: false,
            est_bits: t.est_bits,
            sq_err,
            n: blank.iter().filter(|&&b| !b).count(),
        }
    };
    match dom {
        Domain::Int { lo, hi, blank } => {
            let v: Vec<i64> = idx
                .iter()
                .map(|&i| img.pixels.raw_i64(i).unwrap_or(0))
                .collect();
            let b: Vec<bool> = v.iter().map(|&x| Some(x) == blank).collect();
            let unit = img.bscale.abs();
            let error = |k: usize, d: i64| (v[k] - d) as f64 * unit;
            // Exact integers have no error to sum.
            let lossy = e > 0 || rdo.is_some();
            quantised(
                &v,
                &b,
                (lo, hi),
                lossy.then_some(&error as &dyn Fn(usize, i64) -> f64),
            )
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
                    let q = q.expect("quantised with a quantiser");
                    let error = |k: usize, d: i64| x[k] - q.restore(d, idx[k] as u64);
                    quantised(&v, &blank, floats::QUANT_RANGE, Some(&error))
                }
                None => {
                    let bits: Vec<u64> = idx.iter().map(|&i| img.pixels.raw_bits(i)).collect();
                    let t = floats::encode_exact(p, &bits, width, tw, th, eta);
                    CodedTile {
                        bytes: t.bytes,
                        exact: true,
                        est_bits: t.est_bits,
                        sq_err: 0.0,
                        n: blank.iter().filter(|&&b| !b).count(),
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
    // The RMSE mode quantises floats finely (its own step does the rest): a step of σ/q
    // with q ≥ RMSE_FLOAT_Q, so that its steps can be chosen finely and the quantisation
    // costs almost none of the RMSE.
    let q = match opts.mode {
        Mode::Rmse(_) if opts.q > 0.0 => opts.q.max(RMSE_FLOAT_Q),
        _ => opts.q,
    };
    let (dom, sigma) = domain(img, q);
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
        (Mode::MaxError(_), Domain::Float { quant: None, .. }) if q == 0.0 => {
            return Err(format!(
                "HDU {hdu}: q = 0 codes floats bit-exactly; a max error needs q > 0"
            ))
        }
        (Mode::Rmse(_), Domain::Float { quant: None, .. }) if q == 0.0 => {
            return Err(format!(
                "HDU {hdu}: q = 0 codes floats bit-exactly; an RMSE target needs q > 0"
            ))
        }
        (Mode::Rmse(_), _) => 0,
        // Nothing quantised (σ = 0): every tile is bit-exact.
        (Mode::MaxError(_), Domain::Float { quant: None, .. }) => 0,
        (Mode::MaxError(emax), Domain::Float { .. }) => {
            // Quantisation costs δ/2 = σ/(2q); the residual step the rest.
            (emax * q - 0.5).floor().max(0.0) as i64
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
    // The RMSE mode codes tiles many times: each tile's network analysis is kept for the
    // next time (up to 2^24 pixels: 4 bytes a pixel).
    let caches: Vec<std::sync::OnceLock<tile::Analysed>> = match opts.mode {
        Mode::Rmse(_) if img.npix() <= 1 << 24 => jobs.iter().map(|_| Default::default()).collect(),
        _ => Vec::new(),
    };
    // The tiles of `which` (indices into `jobs`), coded.
    let code = |which: &[usize], rdo: Option<tile::Rdo>| -> Vec<CodedTile> {
        which
            .par_iter()
            .map(|&k| {
                let (pl, r) = jobs[k];
                encode_tile(p, img, dom, pl, r, (e, rdo), (opts.eta, caches.get(k)))
            })
            .collect()
    };
    let (coded, step) = match (opts.mode, dom) {
        (Mode::Rmse(r), Domain::Int { .. } | Domain::Float { quant: Some(_), .. })
            if r > 0.0 && sigma > 0.0 =>
        {
            let unit = match dom {
                Domain::Float { quant: Some(q), .. } => q.delta,
                _ => img.bscale.abs(),
            };
            rmse_search(&code, jobs.len(), r * sigma, unit)
        }
        _ => (code(&(0..jobs.len()).collect::<Vec<_>>(), None), 1),
    };
    let with_data: usize = coded.iter().map(|t| t.n).sum();
    let sq_err: f64 = coded.iter().map(|t| t.sq_err).sum();
    let rmse = match (sigma > 0.0, with_data) {
        (true, n) if n > 0 => (sq_err / n as f64).sqrt() / sigma,
        _ => 0.0,
    };
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
        Mode::Rmse(_) => ("rmse", 0.0),
    };
    let zv = [
        ("MODEL", format!("'{}'", p.hash)),
        ("MODE", format!("'{mode}'")),
        ("MAXERR", fmt_f64(maxerr)),
        ("Q", fmt_f64(q)),
        ("NORM", format!("'{}'", p.norm_kind().name())),
    ];
    let eta = opts.eta.map(|k| ("ETA", k.to_string()));
    let target = match opts.mode {
        Mode::Rmse(r) => Some(("RMSE", fmt_f64(r))),
        _ => None,
    };
    let zv: Vec<_> = zv.into_iter().chain(eta).chain(target).collect();
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
    if let Mode::Rmse(_) = opts.mode {
        set(Card::value(
            "SZSTEP",
            &step.to_string(),
            "RMSE mode: quantiser step in coded units",
        ));
        set(Card::value(
            "SZRMSE",
            &fmt_f64(rmse),
            "RMSE of the decoded image in sigma",
        ));
    }
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
        step,
        rmse,
        delta: quant.map(|q| q.delta),
        tiles: jobs.len(),
        exact_tiles,
    };
    Ok((table, report))
}

/// The RMSE mode's 1/λ at quantiser step Δ and slope κ: λ = κ·Δ² squared units a bit
/// (high-rate theory gives ln 2/6 ≈ 0.12 for a uniform quantiser; larger κ widen the dead
/// zone, which pays at low rates).
fn rdo_at(step: i64, kappa: f64) -> tile::Rdo {
    if kappa == 0.0 {
        return tile::Rdo {
            step,
            inv_lambda: 0,
        };
    }
    let lambda = kappa * (step as f64).powi(2);
    tile::Rdo {
        step,
        inv_lambda: ((crate::entropy::COST_ONE as f64 / lambda).round() as u64).max(1),
    }
}

/// The slopes the RMSE mode's search tries. κ = 0 is the max-error quantiser's decisions (the
/// nearest bin, the mode of fewest bits) on any step, reconstructed at the centroids: it wins
/// where a dead zone does not pay (high rates, and the lowest, where a wide dead zone zeroes
/// whole tiles and leaves only their latent); 0.04 is all but that, the others widen the dead
/// zone.
const KAPPAS: [f64; 5] = [0.0, 0.04, 0.15, 0.3, 0.6];

/// The RMSE mode's float quantisation: σ/64 at least (at σ/16 its step moved in 6 % strides
/// near 0.5σ RMSE, too coarse to land on a target).
const RMSE_FLOAT_Q: f64 = 64.0;

/// The largest step the RMSE mode may take.
const MAX_STEP: i64 = 1 << 24;

/// Tiles the search codes at each trial: all of an image of up to SEARCH_TILES tiles, else
/// every m-th, at least SEARCH_TILES of them.
const SEARCH_TILES: usize = 8;

/// The bytes at RMSE `target` between a trial within it (`a`) and one beyond (`b`),
/// interpolated (log bytes, linear RMSE).
fn interpolated(
    a: (usize, f64, usize),
    b: (usize, f64, usize),
    target: f64,
    rmse_of: impl Fn((usize, f64, usize)) -> f64,
) -> f64 {
    // detmath's ln/exp, not libm's: the encoder's choice is the same on every machine (the
    // golden files pin its bytes).
    use crate::detmath::{exp, ln};
    let (r0, r1) = (rmse_of(a), rmse_of(b));
    let (b0, b1) = (a.0.max(1) as f64, b.0.max(1) as f64);
    let at = if r1 > r0 {
        ((target - r0) / (r1 - r0)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    exp(ln(b0) + at * (ln(b1) - ln(b0)))
}

/// Sums of coded tiles: (bytes, squared error, pixels with data).
fn totals(t: &[CodedTile]) -> (usize, f64, usize) {
    t.iter().fold((0, 0.0, 0), |(b, s, n), t| {
        (b + t.bytes.len(), s + t.sq_err, n + t.n)
    })
}

/// Codes the tiles of the given indices with the given RMSE quantiser (None: lossless).
type CodeTiles<'a> = &'a dyn Fn(&[usize], Option<tile::Rdo>) -> Vec<CodedTile>;

/// The RMSE mode's search: the smallest file whose image RMSE, measured on the pixels the
/// decoder will produce, stays within `target` (physical units; `unit` a coded integer's size).
/// RMSE need not grow steadily with the step (the dead zone and the residual modes switch as
/// it grows), so a search on the step alone can land badly: on a sample of the tiles, for each
/// slope κ, it walks a grid of steps a factor √2 apart (from the high-rate guess Δ = √12·R)
/// to the largest within the target and prices the slope by its bytes at the target
/// (interpolated between that step and the next); on the whole image, at κ = 0 and at the two
/// slopes of the fewest bytes, bisection then finds the largest step within the target between
/// the sample's step (10 % lower at a time while the whole image misses) and the next one up
/// ([`rmse_whole`]), and the smallest of those files is kept.
/// Returns the tiles and the step (1: lossless, where no step of 2 or more meets the target).
fn rmse_search(code: CodeTiles, ntiles: usize, target: f64, unit: f64) -> (Vec<CodedTile>, i64) {
    let all: Vec<usize> = (0..ntiles).collect();
    // Every m-th tile in a scrambled order, not every m-th in raster order (which could take
    // one column of tiles).
    let every = (ntiles / SEARCH_TILES).clamp(1, 4) as u64;
    let mut sample: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&k| ((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40).is_multiple_of(every))
        .collect();
    if sample.len() < ntiles.min(SEARCH_TILES) / 2 {
        sample = all.clone();
    }
    // A hair under the target: a float image's decoded values are rounded to its type.
    let goal = (target * (1.0 - 1e-5)).powi(2);
    let meets = |(_, sq, n): (usize, f64, usize)| n == 0 || sq <= goal * n as f64;
    let guess = (target / unit * 12f64.sqrt()).clamp(2.0, MAX_STEP as f64);
    // Steps a factor √2 apart, from 2 to sixteen times the guess.
    let mut grid: Vec<i64> = Vec::new();
    let mut s = 2.0;
    while s <= (guess * 16.0).min(MAX_STEP as f64) {
        let k = s.round() as i64;
        if grid.last() != Some(&k) {
            grid.push(k);
        }
        s *= std::f64::consts::SQRT_2;
    }
    let near_guess = grid
        .iter()
        .position(|&k| k as f64 >= guess)
        .unwrap_or(grid.len() - 1);
    // Per κ the sample's bytes at the target, interpolated (log bytes, linear RMSE) between the
    // largest grid step within it and the next one up, which misses it (walked to from the
    // guess for the first κ, from the previous κ's step for the others: a larger κ meets the
    // target at smaller steps): (bytes, κ, the step within, the step that misses).
    let rmse_of = |(_, sq, n): (usize, f64, usize)| (sq / n.max(1) as f64).sqrt();
    let mut found: Vec<(f64, f64, i64, Option<i64>)> = Vec::new();
    let mut start = near_guess;
    for &kappa in &KAPPAS {
        let at = |j: usize| totals(&code(&sample, Some(rdo_at(grid[j], kappa))));
        let (mut j, mut t) = (start, at(start));
        // Down while it misses (the last miss is then the step above), else up while it meets.
        let mut above = None;
        while !meets(t) && j > 0 {
            above = Some(t);
            j -= 1;
            t = at(j);
        }
        if !meets(t) {
            continue; // not even a step of 2
        }
        let (bytes, next) = match above {
            Some(miss) => (interpolated(t, miss, target, rmse_of), Some(grid[j + 1])),
            None => loop {
                if j + 1 == grid.len() {
                    break (t.0 as f64, None);
                }
                let up = at(j + 1);
                if !meets(up) {
                    break (interpolated(t, up, target, rmse_of), Some(grid[j + 1]));
                }
                (j, t) = (j + 1, up);
            },
        };
        found.push((bytes, kappa, grid[j], next));
        start = j;
    }
    // On the whole image: κ = 0 (the max-error quantiser's decisions, so never a larger file
    // than a max-error file of that RMSE but for the centroid offsets) and the sample's two
    // best other slopes (the sample's bytes at the target are an estimate: it cannot tell
    // slopes near each other apart).
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let nearest = found.iter().filter(|f| f.1 == 0.0);
    let others = found.iter().filter(|f| f.1 != 0.0).take(SEARCH_KAPPAS);
    let mut kept: Option<(Vec<CodedTile>, i64)> = None;
    for &(_, kappa, step, next) in nearest.chain(others) {
        if let Some((t, s)) = rmse_whole(code, ntiles, kappa, (step, next), &meets) {
            if kept
                .as_ref()
                .is_none_or(|(k, _)| totals(&t).0 < totals(k).0)
            {
                kept = Some((t, s));
            }
        }
    }
    kept.unwrap_or_else(|| (code(&all, None), 1))
}

/// How many of the sample's best slopes other than κ = 0 the RMSE search codes the whole
/// image at.
const SEARCH_KAPPAS: usize = 2;

/// The RMSE search on the whole image at slope κ: the largest step within the target,
/// bracketed from the sample's choice (`step`, 10 % lower at a time while the whole image
/// misses, and the grid's `next` step up) and narrowed to 1/64 of the step; of the trials
/// within the target the smallest file (at low rates a larger step need not code smaller: the
/// residual modes switch). None where no step of 2 or more meets the target.
fn rmse_whole(
    code: CodeTiles,
    ntiles: usize,
    kappa: f64,
    (step, next): (i64, Option<i64>),
    meets: &dyn Fn((usize, f64, usize)) -> bool,
) -> Option<(Vec<CodedTile>, i64)> {
    let all: Vec<usize> = (0..ntiles).collect();
    let whole = |step: i64| {
        let t = code(&all, Some(rdo_at(step, kappa)));
        let ok = meets(totals(&t));
        (t, ok)
    };
    let (mut lo, mut hi) = (step, next.unwrap_or(step * 2).min(MAX_STEP));
    let mut kept = loop {
        let (t, ok) = whole(lo);
        if ok {
            break t;
        }
        if lo == 2 {
            return None;
        }
        hi = lo;
        lo = ((lo as f64 * 0.9) as i64).clamp(2, lo - 1);
    };
    let mut kept_step = lo;
    while hi - lo > (lo / 64).max(1) {
        let m = lo + (hi - lo) / 2;
        let (t, ok) = whole(m);
        if ok {
            lo = m;
            if totals(&t).0 <= totals(&kept).0 {
                (kept, kept_step) = (t, m);
            }
        } else {
            hi = m;
        }
    }
    Some((kept, kept_step))
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
        rdo: c.step.filter(|&s| s >= 2).map(|step| tile::Rdo {
            step,
            inv_lambda: 0,
        }),
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
