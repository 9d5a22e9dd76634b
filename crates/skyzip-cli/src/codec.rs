//! `skyzip compress` and `skyzip decompress`: the learned codec on FITS files.

use crate::interrupt::TempDir;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use skyzip_codec::rate::Target;
use skyzip_codec::{Mode, Options, Predictor};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
#[command(after_help = "Examples:
  skyzip compress frame.fits frame.sz.fits                   lossless (integers exact, floats at q = 4)
  skyzip compress frame.fits frame.sz.fits --q 0             floats bit-exact too
  skyzip compress frame.fits frame.sz.fits --max-error 1     every pixel within 1 σ
  skyzip compress frame.fits frame.sz.fits --rmse 0.5        image RMSE within 0.5 σ, no per-pixel bound
  skyzip compress frame.fits frame.sz.fits --target-bpp 3    the best quality within 3 bits/pixel
  skyzip compress frame.fits frame.sz.fits --model auto      every bundled model tried, smallest kept
  skyzip compress night/ --out archive/ --jobs 2 --verify     a folder: archive/NAME.sz.fits, each verified
  skyzip compress night/ --out archive/ --verify --delete-input   inputs deleted once verified")]
pub struct CompressArgs {
    /// INPUT OUTPUT: the FITS file to compress (every image HDU is coded, other HDUs copied) and
    /// the compressed file to write (standard FITS; `skyzip decompress` restores the original).
    /// With --out: every path is an input, a file or a folder of FITS files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    archive: crate::archive::ArchiveArgs,
    #[arg(skip)]
    input: PathBuf,
    #[arg(skip)]
    output: PathBuf,
    /// Codec model: `default` or `rate` (the newest bundled models; `skyzip models` lists them
    /// all), a model file from `skyzip export --part codec`, or `auto`: every current bundled
    /// model is tried and the smallest file kept.
    #[arg(long, default_value = "default")]
    model: String,
    /// Integers exact; floats exact after quantisation at σ/q, or bit for bit with `--q 0`
    /// (the default mode).
    #[arg(long, conflicts_with = "max_error")]
    lossless: bool,
    /// Every pixel within E·σ of the original (σ: the image's background noise).
    #[arg(long, value_name = "E")]
    max_error: Option<f64>,
    /// The RMSE mode: the smallest file whose RMSE stays within R·σ in every image HDU, with
    /// no per-pixel bound (a dead-zone quantiser with rate–distortion-optimised decisions and
    /// centroid reconstruction: below about 1σ of RMSE the noise is not coded). Masks are
    /// kept; `--verify` checks the RMSE.
    #[arg(long, value_name = "R",
          conflicts_with_all = ["lossless", "max_error", "quality", "target_bpp", "target_rmse"])]
    rmse: Option<f64>,
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
    /// Rate control: the smaller file of the largest max-error (in σ) whose RMSE stays within
    /// R·σ in every image HDU (a per-pixel bound too) and the RMSE mode at R (`--rmse R`);
    /// it says which it kept.
    #[arg(long, value_name = "R", conflicts_with_all = ["lossless", "max_error"])]
    target_rmse: Option<f64>,
    /// Floats: quantisation step σ/q as fpack's -q (|error| ≤ step/2); 0 = bit-exact floats
    /// (every bit pattern, NaN payloads and −0.0 included, as fpack's -q 0). Tiles whose noise
    /// is zero (constant or near-constant) are bit-exact at any q. Ignored for integers.
    #[arg(long, default_value_t = 4.0)]
    q: f64,
    /// Tile side (a multiple of the model's stride).
    #[arg(long, default_value_t = 256)]
    tile: usize,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

/// The two positional paths of the one-file form, or the archive form's error.
fn in_out(paths: &[PathBuf], what: &str) -> Result<(PathBuf, PathBuf)> {
    match paths {
        [i, o] => Ok((i.clone(), o.clone())),
        _ => bail!(
            "{what} takes INPUT OUTPUT, or any number of files and folders with --out DIR \
             ({} paths given)",
            paths.len()
        ),
    }
}

pub fn run_compress(mut a: CompressArgs) -> Result<()> {
    a.archive.check()?;
    if let Some(out) = a.archive.out.clone() {
        return run_compress_archive(a, &out);
    }
    (a.input, a.output) = in_out(&a.paths, "compress")?;
    crate::files::input_output(&a.input, &a.output, a.force)?;
    if a.archive.verify {
        // The one-file form with --verify: the output is verified before it takes its name.
        let job = crate::archive::Job {
            input: a.input.clone(),
            output: a.output.clone(),
        };
        return run_compress_jobs(a, vec![job]);
    }
    if a.model == "auto" {
        return run_auto(a);
    }
    let t = Instant::now();
    let p = Predictor::load(&a.model)?;
    let r = run_one(&a, &p, &a.output)?;
    print_report(&a, &r, &a.output, t.elapsed().as_secs_f64());
    Ok(())
}

fn run_compress_archive(a: CompressArgs, out: &Path) -> Result<()> {
    let jobs = crate::archive::collect(
        &a.paths,
        out,
        a.archive.recursive,
        crate::archive::Direction::Compress,
    )?;
    run_compress_jobs(a, jobs)
}

fn run_compress_jobs(a: CompressArgs, jobs: Vec<crate::archive::Job>) -> Result<()> {
    let p = match a.model.as_str() {
        "auto" => None,
        m => Some(Predictor::load(m)?),
    };
    let work = |input: &Path, out: &Path| -> Result<()> {
        let mut b = a.clone();
        b.input = input.to_path_buf();
        b.output = out.to_path_buf();
        match &p {
            Some(p) => run_one(&b, p, out).map(|_| ()),
            None => auto_one(&b, out, false).map(|_| ()),
        }
    };
    let check = |input: &Path, out: &Path| -> Result<()> {
        skyzip_codec::verify(input, out, &Predictor::load)?;
        Ok(())
    };
    crate::archive::run(jobs, &a.archive, a.force, &work, &check)
}

/// One compression: the report and the max-error used (σ units, 0 = lossless).
struct Done {
    report: skyzip_codec::Report,
    max_error: f64,
    /// --target-rmse kept the RMSE mode's file (smaller than the bounded one).
    rmse_mode: bool,
    trials: usize,
}

fn options(a: &CompressArgs) -> Options {
    let max_error = match a.quality {
        Some(10) => None,
        Some(q) => Some(2f64.powi(5 - q as i32)),
        None => a.max_error,
    };
    Options {
        mode: match (max_error, a.rmse) {
            (_, Some(r)) => Mode::Rmse(r),
            (Some(e), None) => Mode::MaxError(e),
            (None, None) => Mode::Lossless,
        },
        q: a.q,
        tile: a.tile,
        eta: a.eta,
    }
}

/// Compresses `a.input` with model `p` into `out` (rate control first, if asked for).
fn run_one(a: &CompressArgs, p: &Predictor, out: &Path) -> Result<Done> {
    let mut opts = options(a);
    let mut trials = 0;
    if a.target_bpp.is_some() || a.target_rmse.is_some() {
        let (mode, n) = search_error(a, p, &opts)?;
        trials = n;
        opts.mode = mode;
    }
    let report = skyzip_codec::compress(&a.input, out, p, &opts, true)?;
    let max_error = match opts.mode {
        Mode::Lossless | Mode::Rmse(_) => 0.0,
        Mode::MaxError(e) => e,
    };
    Ok(Done {
        report,
        max_error,
        rmse_mode: matches!(opts.mode, Mode::Rmse(_)),
        trials,
    })
}

fn print_report(a: &CompressArgs, d: &Done, shown_as: &Path, secs: f64) {
    let r = &d.report;
    let in_bytes = std::fs::metadata(&a.input).map(|m| m.len()).unwrap_or(0);
    let npix: usize = r.images.iter().map(|i| i.nx * i.ny * i.planes).sum();
    if d.trials > 0 && d.rmse_mode {
        println!(
            "rate control: the RMSE mode (no per-pixel bound), smaller than the largest \
             max-error within the target, after {} trials",
            d.trials
        );
    } else if d.trials > 0 {
        println!(
            "rate control: max-error {:.4} σ after {} trials",
            d.max_error, d.trials
        );
    }
    for i in &r.images {
        let n = (i.nx * i.ny * i.planes) as f64;
        let exact = if i.exact_tiles > 0 {
            format!("  {} of {} tiles bit-exact floats", i.exact_tiles, i.tiles)
        } else {
            String::new()
        };
        println!(
            "HDU {}: {} BITPIX {}  σ {}  tiles {} bytes = {:.3} bits/pixel (estimated {:.3}){}{exact}",
            i.hdu,
            crate::fmt::shape(&[i.nx, i.ny, i.planes]),
            i.bitpix,
            crate::fmt::sigma(i.sigma),
            i.tile_bytes,
            8.0 * i.tile_bytes as f64 / n,
            i.est_bits / n,
            if i.max_error_int > 0 {
                format!("  max |error| {} coded units", i.max_error_int)
            } else {
                String::new()
            }
        );
    }
    println!(
        "{}: {} → {} bytes ({:.3}×), {:.3} bits/pixel for the whole file (headers included), \
         {:.2} s, {:.1} MB/s{}",
        shown_as.display(),
        in_bytes,
        r.file_bytes,
        in_bytes as f64 / r.file_bytes.max(1) as f64,
        8.0 * r.file_bytes as f64 / npix.max(1) as f64,
        secs,
        in_bytes as f64 / 1e6 / secs.max(1e-9),
        if d.trials > 0 {
            " (whole run, rate-control trials included)"
        } else {
            ""
        }
    );
}

/// `--model auto`: the file compressed with every bundled model and one kept (the file names its
/// model, so decompress needs nothing more). With a fixed mode, or --target-rmse, the smallest
/// file; with --target-bpp, the one whose rate control reached the smallest max-error (the best
/// quality within the budget), the smaller file on a tie.
fn run_auto(a: CompressArgs) -> Result<()> {
    let t = Instant::now();
    let (name, done) = auto_one(&a, &a.output, true)?;
    println!("model {name} kept");
    print_report(&a, &done, &a.output, t.elapsed().as_secs_f64());
    Ok(())
}

/// `--model auto` on `a.input`, the kept file renamed to `output`: the model kept and its run.
fn auto_one(a: &CompressArgs, output: &Path, talk: bool) -> Result<(String, Done)> {
    // Trials go to a hidden folder beside the output (removed on Ctrl-C too), so the kept one
    // is renamed into place.
    let parent = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = TempDir::new_in(parent)?;
    let mut best: Option<((f64, u64), String, PathBuf, Done)> = None;
    for name in skyzip_codec::predict::bundled() {
        let trial = dir.path().join(format!("{name}.fits"));
        let p = Predictor::load(name)?;
        let d = run_one(a, &p, &trial)?;
        let bytes = d.report.file_bytes;
        if talk {
            println!(
                "model {name}: {bytes} bytes{}",
                if d.max_error > 0.0 {
                    format!(" at max-error {:.4} σ", d.max_error)
                } else {
                    String::new()
                }
            );
        }
        // Ordered by quality first under a size budget, by size otherwise.
        let key = if a.target_bpp.is_some() {
            (d.max_error, bytes)
        } else {
            (0.0, bytes)
        };
        if best.as_ref().is_none_or(|b| key < b.0) {
            best = Some((key, name.to_string(), trial, d));
        }
    }
    let (_, name, path, done) = best.expect("at least one bundled model");
    if output.exists() && !a.force {
        bail!(
            "{}: output file exists already (--force to replace it)",
            output.display()
        );
    }
    std::fs::rename(&path, output)?;
    Ok((name, done))
}

/// The mode meeting --target-bpp (the smallest max-error within it) or --target-rmse (the
/// smaller file of the largest max-error within it and the RMSE mode at it), with a spinner
/// (skyzip_codec::rate), and how many trials it took.
fn search_error(a: &CompressArgs, p: &Predictor, opts: &Options) -> Result<(Mode, usize)> {
    let target = match (a.target_bpp, a.target_rmse) {
        (Some(b), _) => {
            if b.is_nan() || b <= 0.0 {
                bail!("--target-bpp {b} must be positive");
            }
            Target::Bpp(b)
        }
        (_, Some(r)) => {
            if r.is_nan() || r < 0.0 {
                bail!("--target-rmse {r} must be ≥ 0");
            }
            Target::Rmse(r)
        }
        _ => bail!("no rate target"),
    };
    let dir = TempDir::new()?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("rate control {spinner} trial {pos}: {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let goal = match target {
        Target::Bpp(b) => format!("≤ {b} bits/pixel"),
        Target::Rmse(r) => format!("RMSE ≤ {r} σ"),
    };
    let on_trial = |e: f64| {
        bar.inc(1);
        bar.set_message(format!("max-error {e:.4} σ (target {goal})"));
    };
    // The trials' model: the one given (a file's recorded name is not its path), or under
    // `auto` the bundled model the file names.
    let load = |name: &str| match a.model.as_str() {
        "auto" => Predictor::load(name),
        m => Predictor::load(m),
    };
    let r = match target {
        Target::Rmse(r) => {
            skyzip_codec::rate::within_rmse(&a.input, dir.path(), p, &load, opts, r, &on_trial)
        }
        Target::Bpp(_) => skyzip_codec::rate::search_max_error(
            &a.input,
            dir.path(),
            p,
            &load,
            opts,
            target,
            &on_trial,
        )
        .map(|(e, n)| (Mode::max_error_or_lossless(e), n)),
    };
    bar.finish_and_clear();
    Ok(r?)
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip decompress frame.sz.fits frame.fits
  skyzip decompress frame.sz.fits frame.fits --model my-codec.safetensors
  skyzip decompress archive/ --out restored/ --jobs 2 --verify   every *.sz.fits → restored/NAME.fits")]
pub struct DecompressArgs {
    /// INPUT OUTPUT: a file written by `skyzip compress` and the FITS file to write (the
    /// original's HDUs, images decoded, a primary image back in the primary HDU). With --out:
    /// every path is an input, a file or a folder of *.sz.fits files.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    archive: crate::archive::ArchiveArgs,
    #[arg(skip)]
    input: PathBuf,
    #[arg(skip)]
    output: PathBuf,
    /// The codec model, when the file was written with a model file of
    /// `skyzip export --part codec`: files record the model's name and hash, not where it
    /// lives. The hash must match. (Bundled models are found by name.)
    #[arg(long)]
    model: Option<String>,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

pub fn run_decompress(mut a: DecompressArgs) -> Result<()> {
    a.archive.check()?;
    let given = a.model.clone();
    let load = move |name: &str| match &given {
        Some(m) => Predictor::load(m),
        None => Predictor::load(name),
    };
    let jobs = match a.archive.out.clone() {
        Some(out) => crate::archive::collect(
            &a.paths,
            &out,
            a.archive.recursive,
            crate::archive::Direction::Decompress,
        )?,
        None => {
            (a.input, a.output) = in_out(&a.paths, "decompress")?;
            crate::files::input_output(&a.input, &a.output, a.force)?;
            if !a.archive.verify {
                return decompress_one(&a, &load);
            }
            vec![crate::archive::Job {
                input: a.input.clone(),
                output: a.output.clone(),
            }]
        }
    };
    let work = |input: &Path, out: &Path| -> Result<()> {
        if skyzip_codec::decompress(input, out, &load, true)? == 0 {
            bail!("{}: nothing decoded", input.display());
        }
        Ok(())
    };
    // The decoded file is the "original" of the compressed input: the input's tiles must decode
    // to exactly the pixels and cards written.
    let check = |input: &Path, out: &Path| -> Result<()> {
        skyzip_codec::verify(out, input, &load)?;
        Ok(())
    };
    crate::archive::run(jobs, &a.archive, a.force, &work, &check)
}

fn decompress_one(
    a: &DecompressArgs,
    load: &dyn Fn(&str) -> Result<Predictor, skyzip_codec::CodecError>,
) -> Result<()> {
    let t = Instant::now();
    let n = skyzip_codec::decompress(&a.input, &a.output, load, a.force)?;
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
