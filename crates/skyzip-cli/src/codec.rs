//! `skyzip compress` and `skyzip decompress`: the learned codec on FITS files.

use anyhow::{bail, Result};
use skyzip_codec::{Mode, Options, Predictor};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct CompressArgs {
    input: PathBuf,
    output: PathBuf,
    /// Codec model: `default` or `rate` (bundled), an export (F.safetensors with F.json beside
    /// it), or `auto`: every bundled model is tried and the smallest file kept.
    #[arg(long, default_value = "default")]
    model: String,
    /// Integers exact; floats exact after quantisation at σ/q (the default mode).
    #[arg(long, conflicts_with = "max_error")]
    lossless: bool,
    /// Every pixel within E·σ of the original (σ: the image's background noise).
    #[arg(long, value_name = "E")]
    max_error: Option<f64>,
    /// A quality level 1–10, shorthand for the max-error ladder E = 2^(5−Q) σ (1: 16σ, 5: 1σ,
    /// 9: σ/16) and 10 = lossless.
    #[arg(long, value_name = "Q", value_parser = clap::value_parser!(u8).range(1..=10),
          conflicts_with_all = ["lossless", "max_error", "target_bpp", "target_rmse"])]
    quality: Option<u8>,
    /// A tunable model's rate: code only its first K latent channels (combines with any mode).
    #[arg(long, value_name = "K")]
    eta: Option<usize>,
    /// Rate control: the smallest max-error (in σ), i.e. the best quality, whose file fits in B
    /// bits/pixel.
    #[arg(long, value_name = "B", conflicts_with_all = ["lossless", "max_error", "target_rmse"])]
    target_bpp: Option<f64>,
    /// Rate control: the largest max-error (in σ) whose RMSE stays within R·σ (every image HDU).
    #[arg(long, value_name = "R", conflicts_with_all = ["lossless", "max_error"])]
    target_rmse: Option<f64>,
    /// Float quantisation step σ/q (as fpack's -q).
    #[arg(long, default_value_t = 4.0)]
    q: f64,
    /// Tile side (a multiple of the model's stride).
    #[arg(long, default_value_t = 256)]
    tile: usize,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

pub fn run_compress(a: CompressArgs) -> Result<()> {
    crate::pack::check_not_input(&a.input, &a.output)?;
    if a.model == "auto" {
        return run_auto(a);
    }
    run_one(a).map(|_| ())
}

/// Compresses with one model, prints what happened, returns the file's bytes and the max-error
/// used (σ units, 0 = lossless).
fn run_one(a: CompressArgs) -> Result<(u64, f64)> {
    let p = Predictor::load(&a.model)?;
    let max_error = match a.quality {
        Some(10) => None,
        Some(q) => Some(2f64.powi(5 - q as i32)),
        None => a.max_error,
    };
    let opts = Options {
        mode: match max_error {
            Some(e) => Mode::MaxError(e),
            None => Mode::Lossless,
        },
        q: a.q,
        tile: a.tile,
        eta: a.eta,
    };
    let mut opts = opts;
    if a.target_bpp.is_some() || a.target_rmse.is_some() {
        let e = search_error(&a, &p, &opts)?;
        opts.mode = if e > 0.0 {
            Mode::MaxError(e)
        } else {
            Mode::Lossless
        };
        println!("rate control: max-error {e:.4} σ");
    }
    let in_bytes = std::fs::metadata(&a.input)?.len();
    let t = Instant::now();
    let r = skyzip_codec::compress(&a.input, &a.output, &p, &opts, a.force)?;
    let secs = t.elapsed().as_secs_f64();
    let npix: usize = r.images.iter().map(|i| i.nx * i.ny * i.planes).sum();
    for i in &r.images {
        let n = (i.nx * i.ny * i.planes) as f64;
        println!(
            "HDU {}: {}×{}{} BITPIX {}  σ {:.4e}  tiles {} bytes = {:.3} bits/pixel (estimated {:.3}){}",
            i.hdu,
            i.nx,
            i.ny,
            if i.planes > 1 { format!("×{}", i.planes) } else { String::new() },
            i.bitpix,
            i.sigma,
            i.tile_bytes,
            8.0 * i.tile_bytes as f64 / n,
            i.est_bits / n,
            if i.max_error_int > 0 { format!("  max |error| {} coded units", i.max_error_int) } else { String::new() }
        );
    }
    println!(
        "{}: {} → {} bytes ({:.3}×), {:.3} bits/pixel for the whole file, {:.1} MB/s",
        a.output.display(),
        in_bytes,
        r.file_bytes,
        in_bytes as f64 / r.file_bytes.max(1) as f64,
        8.0 * r.file_bytes as f64 / npix.max(1) as f64,
        in_bytes as f64 / 1e6 / secs
    );
    let e = match opts.mode {
        Mode::Lossless => 0.0,
        Mode::MaxError(e) => e,
    };
    Ok((r.file_bytes, e))
}

/// `--model auto`: the file compressed with every bundled model and one kept (the file names its
/// model, so decompress needs nothing more). With a fixed mode, or --target-rmse, the smallest
/// file; with --target-bpp, the one whose rate control reached the smallest max-error (the best
/// quality within the budget), the smaller file on a tie.
fn run_auto(a: CompressArgs) -> Result<()> {
    if a.output.exists() && !a.force {
        bail!(
            "{}: already exists (--force to replace it)",
            a.output.display()
        );
    }
    let dir = tempfile::tempdir_in(
        a.output
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    let mut best: Option<((f64, u64), String, PathBuf)> = None;
    for name in skyzip_codec::predict::bundled() {
        let trial = dir.path().join(format!("{name}.fits"));
        let sub = CompressArgs {
            input: a.input.clone(),
            output: trial.clone(),
            model: name.to_string(),
            force: true,
            ..a.clone()
        };
        let (bytes, e) = run_one(sub)?;
        // Ordered by quality first under a size budget, by size otherwise.
        let key = if a.target_bpp.is_some() {
            (e, bytes)
        } else {
            (0.0, bytes)
        };
        if best.as_ref().is_none_or(|b| key < b.0) {
            best = Some((key, name.to_string(), trial));
        }
    }
    let ((_, bytes), name, path) = best.expect("at least one bundled model");
    std::fs::rename(&path, &a.output)?;
    println!("{}: model {name} kept, {bytes} bytes", a.output.display());
    Ok(())
}

/// The largest max-error (σ units, 0 = lossless) meeting --target-rmse, or the smallest meeting
/// --target-bpp, from real compress (and, for RMSE, decompress) trials. Sizes fall and errors
/// grow with E, so whether E meets the target switches once: a doubling scan finds the switch,
/// bisection narrows it.
fn search_error(a: &CompressArgs, p: &Predictor, opts: &Options) -> Result<f64> {
    if let Some(b) = a.target_bpp {
        if b.is_nan() || b <= 0.0 {
            bail!("--target-bpp {b} must be positive");
        }
    }
    if let Some(r) = a.target_rmse {
        if r.is_nan() || r < 0.0 {
            bail!("--target-rmse {r} must be ≥ 0");
        }
    }
    let dir = tempfile::tempdir()?;
    let (c, o) = (
        dir.path().join("trial.fits"),
        dir.path().join("trial.out.fits"),
    );
    // The originals, read once, for the RMSE trials.
    let originals = match a.target_rmse {
        Some(_) => skyzip_fits::read_all_images(&a.input)?,
        None => Vec::new(),
    };
    let size = a.target_bpp.is_some();
    // True when E lies past the switch: the size target met, or the RMSE target missed.
    let past = |e: f64| -> Result<bool> {
        let mut t = *opts;
        t.mode = if e > 0.0 {
            Mode::MaxError(e)
        } else {
            Mode::Lossless
        };
        let r = skyzip_codec::compress(&a.input, &c, p, &t, true)?;
        if let Some(b) = a.target_bpp {
            let npix: usize = r.images.iter().map(|i| i.nx * i.ny * i.planes).sum();
            return Ok(8.0 * r.file_bytes as f64 / npix.max(1) as f64 <= b);
        }
        let target = a.target_rmse.unwrap_or(f64::INFINITY);
        skyzip_codec::decompress(&c, &o, &|_: &str| Predictor::load(&a.model), true)?;
        let back = skyzip_fits::read_all_images(&o)?;
        let mut worst = 0f64;
        for ((rep, orig), dec) in r.images.iter().zip(&originals).zip(&back) {
            let (rmse, _, _) = skyzip_fits::physical_errors(orig, dec);
            if rep.sigma > 0.0 {
                worst = worst.max(rmse / rep.sigma);
            }
        }
        Ok(worst > target)
    };
    if past(0.0)? {
        // Lossless already fits the size, or no lossy setting can beat its RMSE.
        return Ok(0.0);
    }
    let limit = if size { 1024.0 } else { 64.0 };
    let (mut lo, mut hi) = (0.0, None);
    let mut e = 0.125;
    while e <= limit {
        if past(e)? {
            hi = Some(e);
            break;
        }
        lo = e;
        e *= 2.0;
    }
    let Some(mut hi) = hi else {
        if size {
            bail!(
                "{}: no max-error up to {limit} σ reaches {} bits/pixel",
                a.input.display(),
                a.target_bpp.unwrap_or(0.0)
            );
        }
        return Ok(lo);
    };
    for _ in 0..6 {
        let m = 0.5 * (lo + hi);
        if past(m)? {
            hi = m;
        } else {
            lo = m;
        }
    }
    // The size target holds from `hi` on; the RMSE target up to `lo`.
    Ok(if size { hi } else { lo })
}

#[derive(clap::Args)]
pub struct DecompressArgs {
    input: PathBuf,
    output: PathBuf,
    /// The codec model, when the file was written with an export (F.safetensors): files record
    /// the model's name and hash, not where it lives. The hash must match.
    #[arg(long)]
    model: Option<String>,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

pub fn run_decompress(a: DecompressArgs) -> Result<()> {
    crate::pack::check_not_input(&a.input, &a.output)?;
    let t = Instant::now();
    let given = a.model.clone();
    let load = move |name: &str| match &given {
        Some(m) => Predictor::load(m),
        None => Predictor::load(name),
    };
    let n = skyzip_codec::decompress(&a.input, &a.output, &load, a.force)?;
    if n == 0 {
        bail!("{}: nothing decoded", a.input.display());
    }
    println!(
        "{}: {n} image HDU(s) decoded in {:.2} s",
        a.output.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
