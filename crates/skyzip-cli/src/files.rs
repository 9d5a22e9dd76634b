//! Checks on the files a command reads and writes, made before any work, each failing with one
//! line that names the file.

use anyhow::{bail, Result};
use std::path::Path;

/// An input must be an existing file (standard input is not read).
pub fn input(path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        bail!("-: reading standard input is not supported; name a FITS file");
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no such file", path.display())
        }
        Err(e) => bail!("{}: {e}", path.display()),
        Ok(m) if m.is_dir() => bail!("{}: is a directory, not a FITS file", path.display()),
        Ok(_) => Ok(()),
    }
}

/// An output must be a file name (not `-`, not a directory), never the input, and not an
/// existing file unless `force`.
pub fn output(input: &Path, output: &Path, force: bool) -> Result<()> {
    if output.as_os_str() == "-" {
        bail!("-: writing to standard output is not supported; name an output file");
    }
    if output.is_dir() {
        bail!(
            "{}: is a directory; name the output file inside it",
            output.display()
        );
    }
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            bail!(
                "{}: output is the input file; refusing to overwrite it",
                output.display()
            );
        }
    }
    if output.exists() && !force {
        bail!(
            "{}: output file exists already (--force to replace it)",
            output.display()
        );
    }
    Ok(())
}

/// Both checks for a command that turns one file into another.
pub fn input_output(input: &Path, output: &Path, force: bool) -> Result<()> {
    self::input(input)?;
    self::output(input, output, force)
}
