//! Rate control: the max-error that meets a size or an RMSE target, found by real compress (and,
//! for RMSE, decompress) trials, and for an RMSE target the smaller of that bounded file and the
//! RMSE mode's. Used by `skyzip compress --target-bpp/--target-rmse` and by the Python
//! package's `rmse=`.

use crate::codec::{compress, decompress, Mode, Options};
use crate::predict::Predictor;
use crate::CodecError;
use std::cell::Cell;
use std::path::Path;

/// What the search aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The smallest max-error (the best quality) whose file fits in B bits/pixel.
    Bpp(f64),
    /// The largest max-error whose RMSE stays within R·σ in every image HDU.
    Rmse(f64),
}

/// The max-error (σ units, 0 = lossless) meeting `target` for `input`, and how many trials it
/// took. Trials are written in `work` (a folder the caller owns) and decoded with the models
/// `load` finds; `on_trial(e)` is told each.
/// Sizes fall and errors grow with E, so whether E meets the target switches once: a doubling
/// scan finds the switch, bisection narrows it.
pub fn search_max_error(
    input: &Path,
    work: &Path,
    p: &Predictor,
    load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
    opts: &Options,
    target: Target,
    on_trial: &dyn Fn(f64),
) -> Result<(f64, usize), CodecError> {
    match target {
        Target::Bpp(b) if b.is_nan() || b <= 0.0 => {
            return Err(CodecError::file(
                input,
                format!("target {b} bits/pixel must be positive"),
            ))
        }
        Target::Rmse(r) if r.is_nan() || r < 0.0 => {
            return Err(CodecError::file(
                input,
                format!("target RMSE {r} σ must be ≥ 0"),
            ))
        }
        _ => {}
    }
    let (c, o) = (work.join("trial.fits"), work.join("trial.out.fits"));
    // The originals, read once, for the RMSE trials.
    let originals = match target {
        Target::Rmse(_) => skyzip_fits::read_all_images(input)?,
        Target::Bpp(_) => Vec::new(),
    };
    let trials = Cell::new(0);
    // True when E lies past the switch: the size target met, or the RMSE target missed.
    let past = |e: f64| -> Result<bool, CodecError> {
        trials.set(trials.get() + 1);
        on_trial(e);
        let mut t = *opts;
        t.mode = Mode::max_error_or_lossless(e);
        let r = compress(input, &c, p, &t, true)?;
        let r_target = match target {
            Target::Bpp(b) => {
                let npix: usize = r.images.iter().map(|i| i.nx * i.ny * i.planes).sum();
                return Ok(8.0 * r.file_bytes as f64 / npix.max(1) as f64 <= b);
            }
            Target::Rmse(r) => r,
        };
        decompress(&c, &o, load, true)?;
        let back = skyzip_fits::read_all_images(&o)?;
        let mut worst = 0f64;
        for ((rep, orig), dec) in r.images.iter().zip(&originals).zip(&back) {
            let (rmse, _, _) = skyzip_fits::physical_errors(orig, dec);
            if rep.sigma > 0.0 {
                worst = worst.max(rmse / rep.sigma);
            }
        }
        Ok(worst > r_target)
    };
    let size = matches!(target, Target::Bpp(_));
    if past(0.0)? {
        // Lossless already fits the size, or no lossy setting can beat its RMSE.
        return Ok((0.0, trials.get()));
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
        if let Target::Bpp(b) = target {
            return Err(CodecError::file(
                input,
                format!("no max-error up to {limit} σ reaches {b} bits/pixel"),
            ));
        }
        return Ok((lo, trials.get()));
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
    Ok((if size { hi } else { lo }, trials.get()))
}

/// An RMSE target R (σ units): the smaller file of the largest max-error whose RMSE stays within
/// R·σ ([`search_max_error`]: a per-pixel bound too; lossless where no max-error meets R) and the
/// RMSE mode at R (no per-pixel bound), by the bytes each writes; of equal sizes the bounded
/// one. Returns the mode and the trials.
pub fn within_rmse(
    input: &Path,
    work: &Path,
    p: &Predictor,
    load: &dyn Fn(&str) -> Result<Predictor, CodecError>,
    opts: &Options,
    r: f64,
    on_trial: &dyn Fn(f64),
) -> Result<(Mode, usize), CodecError> {
    let (e, trials) = search_max_error(input, work, p, load, opts, Target::Rmse(r), on_trial)?;
    let bounded = Mode::max_error_or_lossless(e);
    let bytes = |mode: Mode| {
        let t = Options { mode, ..*opts };
        compress(input, &work.join("pick.fits"), p, &t, true).map(|r| r.file_bytes)
    };
    let (b, m) = (bytes(bounded)?, bytes(Mode::Rmse(r))?);
    let mode = if m < b { Mode::Rmse(r) } else { bounded };
    Ok((mode, trials + 2))
}
