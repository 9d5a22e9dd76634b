//! `skyzip compress` and `skyzip decompress`: the learned codec on FITS files.

use anyhow::{bail, Result};
use skyzip_codec::{Mode, Options, Predictor};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct CompressArgs {
    input: PathBuf,
    output: PathBuf,
    /// Codec model: `default` (bundled) or an export (F.safetensors with F.json beside it).
    #[arg(long, default_value = "default")]
    model: String,
    /// Integers exact; floats exact after quantisation at σ/q (the default mode).
    #[arg(long, conflicts_with = "max_error")]
    lossless: bool,
    /// Every pixel within E·σ of the original (σ: the image's background noise).
    #[arg(long, value_name = "E")]
    max_error: Option<f64>,
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
    let p = Predictor::load(&a.model)?;
    let opts = Options {
        mode: match a.max_error {
            Some(e) => Mode::MaxError(e),
            None => Mode::Lossless,
        },
        q: a.q,
        tile: a.tile,
    };
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
    Ok(())
}

#[derive(clap::Args)]
pub struct DecompressArgs {
    input: PathBuf,
    output: PathBuf,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

pub fn run_decompress(a: DecompressArgs) -> Result<()> {
    crate::pack::check_not_input(&a.input, &a.output)?;
    let t = Instant::now();
    let n = skyzip_codec::decompress(
        &a.input,
        &a.output,
        &|name: &str| Predictor::load(name),
        a.force,
    )?;
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
