use anyhow::{bail, Result};
use skyzip_fits::{rewrite_file, TileCompression};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct PackArgs {
    /// Input FITS file.
    input: PathBuf,
    /// Output file (fpack's convention: NAME.fits.fz).
    output: PathBuf,
    /// One codec, as in `skyzip classic --codecs` (e.g. rice, hcompress:s=4, gzip2:q=0).
    #[arg(long, default_value = "rice")]
    codec: String,
    /// Overwrite the output if it exists (never the input).
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct UnpackArgs {
    /// Tile-compressed input (fpack or `skyzip pack` output).
    input: PathBuf,
    /// Output FITS file with plain image HDUs.
    output: PathBuf,
    /// Overwrite the output if it exists (never the input).
    #[arg(long)]
    force: bool,
}

/// Refuses to write over the input, whatever --force says.
pub fn check_not_input(input: &Path, output: &Path) -> Result<()> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            bail!(
                "{}: output is the input file; refusing to overwrite it",
                output.display()
            );
        }
    }
    Ok(())
}

pub fn run_pack(a: PackArgs) -> Result<()> {
    check_not_input(&a.input, &a.output)?;
    let c = TileCompression::parse(&a.codec).map_err(anyhow::Error::msg)?;
    rewrite_file(&a.input, &a.output, a.force, Some(&c))?;
    Ok(())
}

pub fn run_unpack(a: UnpackArgs) -> Result<()> {
    check_not_input(&a.input, &a.output)?;
    rewrite_file(&a.input, &a.output, a.force, None)?;
    Ok(())
}
