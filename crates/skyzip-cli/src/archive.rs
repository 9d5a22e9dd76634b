//! Many files at once: `skyzip compress FILE_OR_DIR… --out DIR` (and `decompress`), files in
//! parallel, one progress bar, a failure reported by name while the others go on, a summary
//! table at the end.
//!
//! Safety of the data, in order: an output appears under its final name only once it is
//! complete (and, with `--verify`, decoded and compared with its input); an interrupted run
//! (Ctrl-C, SIGTERM) removes its unfinished files, and one killed outright leaves them only in a
//! hidden work folder that the next run clears; a rerun skips outputs that are complete (and,
//! with `--verify`, verified again); `--delete-input` needs `--verify` and deletes an input only
//! after its output has passed.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Which way the files go (it decides which files a folder contributes and how outputs are
/// named).
#[derive(Clone, Copy, PartialEq)]
pub enum Direction {
    Compress,
    Decompress,
}

/// The suffix of skyzip's compressed files.
pub const SUFFIX: &str = ".sz.fits";
const FITS_SUFFIXES: &[&str] = &[".fits.fz", ".fits", ".fit", ".fts", ".fz"];

/// What the archive options say (shared by compress and decompress).
#[derive(clap::Args, Clone, Debug)]
pub struct ArchiveArgs {
    /// Archive mode: every FILE_OR_DIR given is an input (folders contribute their FITS files;
    /// compress: *.fits, *.fit, *.fts, *.fz; decompress: *.sz.fits), and each output goes into DIR
    /// (compress: NAME.sz.fits; decompress: NAME.fits), sub-folders kept with --recursive.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Files coded at once (each file's tiles are coded in parallel too).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Folders: their sub-folders too.
    #[arg(long)]
    pub recursive: bool,
    /// Decode every output and compare it with its input (pixels within the promised bound,
    /// masks and header cards equal) before the file counts as done; a rerun verifies outputs
    /// that exist already.
    #[arg(long)]
    pub verify: bool,
    /// Delete each input once its output has been verified (needs --verify).
    #[arg(long)]
    pub delete_input: bool,
}

impl ArchiveArgs {
    pub fn check(&self) -> Result<()> {
        if self.delete_input && !self.verify {
            bail!(
                "--delete-input deletes an input only after its output has been verified; \
                 add --verify"
            );
        }
        if self.jobs == 0 {
            bail!("--jobs must be at least 1");
        }
        Ok(())
    }
}

/// One file to code.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

fn lower_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// Does a folder's file belong to this direction's inputs?
fn wanted(p: &Path, dir: Direction) -> bool {
    let n = lower_name(p);
    if n.starts_with('.') {
        return false;
    }
    match dir {
        Direction::Compress => !n.ends_with(SUFFIX) && FITS_SUFFIXES.iter().any(|s| n.ends_with(s)),
        Direction::Decompress => n.ends_with(SUFFIX),
    }
}

/// The output's file name for an input's.
pub fn output_name(input: &Path, dir: Direction) -> String {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_lowercase();
    let strip = |suffixes: &[&str]| {
        suffixes
            .iter()
            .find(|s| lower.ends_with(*s) && lower.len() > s.len())
            .map(|s| name[..name.len() - s.len()].to_string())
    };
    match dir {
        Direction::Compress => {
            format!("{}{SUFFIX}", strip(FITS_SUFFIXES).unwrap_or(name.clone()))
        }
        Direction::Decompress => {
            format!("{}.fits", strip(&[SUFFIX, ".fits"]).unwrap_or(name.clone()))
        }
    }
}

/// The files to code, in a stable order, each with its output under `out`.
pub fn collect(paths: &[PathBuf], out: &Path, recursive: bool, dir: Direction) -> Result<Vec<Job>> {
    let out_canon = out.canonicalize().ok();
    let mut jobs = Vec::new();
    for p in paths {
        let m = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: no such file", p.display()),
            _ => anyhow::anyhow!("{}: {e}", p.display()),
        })?;
        if m.is_dir() {
            walk(
                p,
                Path::new(""),
                out,
                out_canon.as_deref(),
                recursive,
                dir,
                &mut jobs,
            )?;
        } else {
            jobs.push(Job {
                input: p.clone(),
                output: out.join(output_name(p, dir)),
            });
        }
    }
    let mut seen = HashSet::new();
    for j in &jobs {
        if !seen.insert(j.output.clone()) {
            bail!(
                "{}: two inputs would write this output (rename one, or give them separately)",
                j.output.display()
            );
        }
        if j.input.canonicalize().ok() == j.output.canonicalize().ok() {
            bail!(
                "{}: output is the input file; refusing to overwrite it",
                j.output.display()
            );
        }
    }
    if jobs.is_empty() {
        bail!(
            "{}: no {} files found{}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            match dir {
                Direction::Compress => "FITS (*.fits, *.fit, *.fts, *.fz)",
                Direction::Decompress => "skyzip (*.sz.fits)",
            },
            if recursive {
                ""
            } else {
                " (--recursive for sub-folders)"
            }
        );
    }
    Ok(jobs)
}

fn walk(
    root: &Path,
    rel: &Path,
    out: &Path,
    out_canon: Option<&Path>,
    recursive: bool,
    dir: Direction,
    jobs: &mut Vec<Job>,
) -> Result<()> {
    let here = root.join(rel);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&here)
        .with_context(|| format!("{}: cannot list the folder", here.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        let name = e.file_name().map(PathBuf::from).unwrap_or_default();
        if e.is_dir() {
            // Never descend into the output folder (or hidden folders: work folders).
            if recursive
                && !lower_name(&e).starts_with('.')
                && e.canonicalize().ok().as_deref() != out_canon
            {
                walk(root, &rel.join(&name), out, out_canon, recursive, dir, jobs)?;
            }
        } else if wanted(&e, dir) {
            jobs.push(Job {
                output: out.join(rel).join(output_name(&e, dir)),
                input: e,
            });
        }
    }
    Ok(())
}

/// How one file ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Done,
    /// The output was there already (and, with --verify, passed again).
    Skipped,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub job: Job,
    pub status: Status,
    pub verified: bool,
    pub deleted: bool,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub secs: f64,
}

/// The work folder of this process inside an output folder, named so that a later run can tell
/// a dead run's leftovers (`.skyzip-run-PID-…`) from a live one's.
const WORK_PREFIX: &str = ".skyzip-run-";

/// Removes work folders that runs killed outright left behind (their process is gone).
fn clear_dead_work_folders(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(WORK_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = Path::new("/proc").is_dir() && Path::new("/proc").join(pid).exists();
        if !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit()) && !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Codes every job: `work(input, tmp)` writes an output, `check(input, output)` verifies one.
pub fn run(
    jobs: Vec<Job>,
    a: &ArchiveArgs,
    force: bool,
    work: &(dyn Fn(&Path, &Path) -> Result<()> + Sync),
    check: &(dyn Fn(&Path, &Path) -> Result<()> + Sync),
) -> Result<()> {
    a.check()?;
    let mut folders: Vec<PathBuf> = jobs
        .iter()
        .filter_map(|j| j.output.parent().map(Path::to_path_buf))
        .collect();
    folders.sort();
    folders.dedup();
    let mut work_dirs = Vec::new();
    for f in &folders {
        std::fs::create_dir_all(f)
            .with_context(|| format!("{}: cannot make the output folder", f.display()))?;
        clear_dead_work_folders(f);
        let d = crate::interrupt::TempDir::new_in_named(
            f,
            &format!("{WORK_PREFIX}{}-", std::process::id()),
        )?;
        work_dirs.push((f.clone(), d));
    }
    let total_bytes: u64 = jobs
        .iter()
        .map(|j| std::fs::metadata(&j.input).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = ProgressBar::with_draw_target(Some(jobs.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} files  {msg}  {elapsed_precise} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let bytes_done = AtomicU64::new(0);
    let one = |j: &Job| -> Row {
        let t = Instant::now();
        let in_bytes = std::fs::metadata(&j.input).map(|m| m.len()).unwrap_or(0);
        let folder = j.output.parent().unwrap_or(Path::new("."));
        let tmp_dir = work_dirs
            .iter()
            .find(|(f, _)| f == folder)
            .map(|(_, d)| d.path().to_path_buf())
            .unwrap_or_else(|| folder.to_path_buf());
        let (status, verified, deleted) = match one_file(j, a, force, &tmp_dir, work, check) {
            Ok(r) => r,
            Err(e) => {
                bar.suspend(|| eprintln!("skyzip: error: {e:#}"));
                (Status::Failed(format!("{e:#}")), false, false)
            }
        };
        let failed = matches!(status, Status::Failed(_));
        let row = Row {
            job: j.clone(),
            status,
            verified,
            deleted,
            in_bytes,
            // A failed file's output is not counted (an old one may stand under its name).
            out_bytes: if failed {
                0
            } else {
                std::fs::metadata(&j.output).map(|m| m.len()).unwrap_or(0)
            },
            secs: t.elapsed().as_secs_f64(),
        };
        let done = bytes_done.fetch_add(in_bytes, Ordering::Relaxed) + in_bytes;
        bar.set_message(format!(
            "{:.0}/{:.0} MB  {:.1} MB/s",
            done as f64 / 1e6,
            total_bytes as f64 / 1e6,
            done as f64 / 1e6 / t0.elapsed().as_secs_f64().max(1e-9)
        ));
        bar.inc(1);
        row
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs)
        .build()
        .context("starting the worker threads")?;
    let rows: Vec<Row> = pool.install(|| jobs.par_iter().map(one).collect());
    bar.finish_and_clear();
    drop(work_dirs);
    summary(&rows, t0.elapsed().as_secs_f64());
    let failed = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Failed(_)))
        .count();
    if failed > 0 {
        bail!("{failed} of {} files failed (named above)", rows.len());
    }
    Ok(())
}

/// One file: (status, verified, input deleted).
fn one_file(
    j: &Job,
    a: &ArchiveArgs,
    force: bool,
    tmp_dir: &Path,
    work: &(dyn Fn(&Path, &Path) -> Result<()> + Sync),
    check: &(dyn Fn(&Path, &Path) -> Result<()> + Sync),
) -> Result<(Status, bool, bool)> {
    crate::files::input(&j.input)?;
    let mut status = Status::Done;
    let mut redo = true;
    if j.output.exists() && !force {
        // Complete by construction (outputs appear under their name only when finished); with
        // --verify it must pass again, or it is made anew.
        redo = a.verify && check(&j.input, &j.output).is_err();
        if !redo {
            status = Status::Skipped;
        }
    }
    if redo {
        let name = j
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tmp_dir.join(&name);
        let _ = std::fs::remove_file(&tmp);
        let r = (|| {
            work(&j.input, &tmp)?;
            if a.verify {
                check(&j.input, &tmp).context("verification failed; output not kept")?;
            }
            std::fs::rename(&tmp, &j.output).with_context(|| {
                format!("{}: cannot move the output into place", j.output.display())
            })
        })();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r?;
    }
    let mut deleted = false;
    if a.delete_input {
        // Only ever after this run's verification of the output (a.check: verify is on).
        std::fs::remove_file(&j.input).with_context(|| {
            format!(
                "{}: verified, but cannot delete the input",
                j.input.display()
            )
        })?;
        deleted = true;
    }
    Ok((status, a.verify, deleted))
}

fn summary(rows: &[Row], secs: f64) {
    let width = rows
        .iter()
        .map(|r| r.job.input.display().to_string().chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    println!(
        "{:<width$}  {:<16}  {:>12}  {:>12}  {:>7}  {:>7}",
        "file", "status", "in bytes", "out bytes", "ratio", "s"
    );
    let (mut n_ok, mut n_skip, mut n_fail, mut bin, mut bout) = (0, 0, 0, 0u64, 0u64);
    for r in rows {
        let status = match &r.status {
            Status::Done => {
                n_ok += 1;
                if r.verified {
                    "ok, verified"
                } else {
                    "ok"
                }
            }
            Status::Skipped => {
                n_skip += 1;
                if r.verified {
                    "skipped, verified"
                } else {
                    "skipped (exists)"
                }
            }
            Status::Failed(_) => {
                n_fail += 1;
                "FAILED"
            }
        };
        let status = if r.deleted {
            format!("{status}, input deleted")
        } else {
            status.to_string()
        };
        let ratio = if r.out_bytes > 0 {
            format!("{:.3}", r.in_bytes as f64 / r.out_bytes as f64)
        } else {
            "-".into()
        };
        if r.out_bytes > 0 {
            bin += r.in_bytes;
            bout += r.out_bytes;
        }
        println!(
            "{:<width$}  {:<16}  {:>12}  {:>12}  {:>7}  {:>7.2}",
            r.job.input.display(),
            status,
            r.in_bytes,
            r.out_bytes,
            ratio,
            r.secs
        );
    }
    println!(
        "{} files: {n_ok} done, {n_skip} skipped, {n_fail} failed; {bin} → {bout} bytes ({:.3}×) in \
         {secs:.1} s",
        rows.len(),
        bin as f64 / bout.max(1) as f64
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_by_direction() {
        let c = |n: &str| output_name(Path::new(n), Direction::Compress);
        let d = |n: &str| output_name(Path::new(n), Direction::Decompress);
        assert_eq!(c("a/m13.fits"), "m13.sz.fits");
        assert_eq!(c("x.FITS"), "x.sz.fits");
        assert_eq!(c("x.fits.fz"), "x.sz.fits");
        assert_eq!(c("plain"), "plain.sz.fits");
        assert_eq!(d("m13.sz.fits"), "m13.fits");
        assert_eq!(d("other.fits"), "other.fits");
        assert!(wanted(Path::new("a.fits"), Direction::Compress));
        assert!(!wanted(Path::new("a.sz.fits"), Direction::Compress));
        assert!(!wanted(Path::new(".a.fits"), Direction::Compress));
        assert!(!wanted(Path::new("notes.txt"), Direction::Compress));
        assert!(wanted(Path::new("a.sz.fits"), Direction::Decompress));
    }
}
