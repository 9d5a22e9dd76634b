//! `skyzip pack` and `skyzip unpack`: fpack and funpack in-process (any of fpack's codecs).

use anyhow::{bail, Result};
use skyzip_fits::{rewrite_file, TileCompression};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip pack frame.fits frame.fits.fz                     RICE, as fpack
  skyzip pack frame.fits frame.fits.fz --codec hcompress:s=4
  skyzip pack float.fits float.fits.fz --codec gzip2:q=0   bit-exact floats")]
pub struct PackArgs {
    /// Input FITS file.
    input: PathBuf,
    /// Output file (fpack's convention: NAME.fits.fz).
    output: PathBuf,
    /// One codec, as in `skyzip classic --codecs` (e.g. rice, hcompress:s=4, gzip2:q=0).
    #[arg(long, default_value = "rice")]
    codec: String,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
#[command(after_help = "Example:
  skyzip unpack frame.fits.fz frame.fits                   as funpack: a primary image goes back to the primary")]
pub struct UnpackArgs {
    /// Tile-compressed input (fpack or `skyzip pack` output).
    input: PathBuf,
    /// Output FITS file with plain image HDUs.
    output: PathBuf,
    /// Replace an existing output (never the input).
    #[arg(long)]
    force: bool,
}

/// fpack's codecs cannot read skyzip's tiles: such a file is refused, not copied.
fn refuse_skyzip(input: &Path, what: &str) -> Result<()> {
    if let Some(i) = skyzip_codec::codec::coded_hdus(input)?.first() {
        bail!(
            "{}: HDU {i} holds skyzip tiles ({}); {what}",
            input.display(),
            skyzip_codec::codec::CMPTYPE
        );
    }
    Ok(())
}

fn summary(input: &Path, output: &Path) -> Result<()> {
    let (a, b) = (
        std::fs::metadata(input)?.len(),
        std::fs::metadata(output)?.len(),
    );
    println!(
        "{}: {a} → {b} bytes ({:.3}×)",
        output.display(),
        a as f64 / b.max(1) as f64
    );
    Ok(())
}

pub fn run_pack(a: PackArgs) -> Result<()> {
    crate::files::input_output(&a.input, &a.output, a.force)?;
    refuse_skyzip(&a.input, "`skyzip decompress` it first")?;
    let c = TileCompression::parse(&a.codec).map_err(anyhow::Error::msg)?;
    rewrite_file(&a.input, &a.output, a.force, Some(&c))?;
    summary(&a.input, &a.output)
}

pub fn run_unpack(a: UnpackArgs) -> Result<()> {
    crate::files::input_output(&a.input, &a.output, a.force)?;
    refuse_skyzip(&a.input, "use `skyzip decompress`")?;
    rewrite_file(&a.input, &a.output, a.force, None)?;
    summary(&a.input, &a.output)
}
