//! `skyzip`: one subcommand per job; the work lives in the library crates.

mod archive;
mod bench;
mod classic;
mod codec;
mod compare;
mod evaluate;
mod files;
mod fmt;
mod gencode;
mod info;
mod interrupt;
mod latents;
mod model;
mod pack;
mod phot;
mod pixelcode;
mod seeds_report;
mod simulate;
mod stamps;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// skyzip — learned and classical compression of astronomical FITS images.
///
/// Every size is real bytes written; every error is stated in units of the image's background
/// noise σ, estimated as fpack does (median absolute 2nd/3rd/5th-order differences along rows).
/// Shapes are printed in FITS order, NAXIS1×NAXIS2.
#[derive(Parser)]
#[command(
    name = "skyzip",
    version,
    propagate_version = true,
    after_help = "Examples:
  skyzip compare --plot rd.png                      the codec beside fpack's on the bundled frame
  skyzip compress frame.fits frame.sz.fits          lossless (floats: --q 0 for bit-exact)
  skyzip decompress frame.sz.fits frame.fits
  skyzip info frame.sz.fits                         mode, model, max error, tiles, ratio
Bad input ends with exit code 2 and one line naming the file and the problem."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe every HDU of FITS files: shape, type, scaling, blanks, range, background and noise.
    Info(info::Args),
    /// Run fpack's codecs (cfitsio, in-process) on images: bytes, bits/pixel, errors in σ, speed.
    Classic(classic::Args),
    /// Compress a FITS file with the learned codec (lossless or max-error in σ).
    Compress(codec::CompressArgs),
    /// Decompress a file written by `skyzip compress`.
    Decompress(codec::DecompressArgs),
    /// skyzip's codec beside fpack's on the same images: table and rate–distortion plot.
    Compare(compare::Args),
    /// Tile-compress every image HDU of a file with one of fpack's codecs (other HDUs copied).
    Pack(pack::PackArgs),
    /// Write a tile-compressed file back as plain FITS images.
    Unpack(pack::UnpackArgs),
    /// Simulate a labelled dataset (gce, ccd, radio, toy-*) and write it as FITS cubes + tables.
    Simulate(simulate::Args),
    /// Cut N×N training stamps from FITS images into a dataset file (blank-heavy stamps skipped).
    Stamps(stamps::Args),
    /// Train a model from an experiment config (JSON) into a run folder.
    Train(train::TrainArgs),
    /// List the registered models and their parameters.
    Models,
    /// Export a trained run's encoder, decoder or full model as safetensors + config JSON.
    Export(model::ExportArgs),
    /// Reconstruct a FITS image through an exported model (σ map too for meanvar).
    Reconstruct(model::ReconstructArgs),
    /// Score a trained estimator or segmenter on a fresh test set: evaluation.json and plots.
    Evaluate(evaluate::EvaluateArgs),
    /// Tables from committed evaluation JSON (`report gce`: seed 003; `report seeds`: 000–002).
    Report(evaluate::ReportArgs),
    /// Map an autoencoder's codes of a test set in 2-D (PCA, t-SNE), coloured by a label.
    Latents(latents::LatentsArgs),
    /// Benchmarks: `bench train` = steps/s of the reference conv-AE training step; `bench codec
    /// FILE…` = skyzip's encode/decode MB/s beside RICE's.
    Bench(train::BenchArgs),
}

/// mimalloc keeps the codec's per-tile buffers (a few MB each, freed and taken again every
/// tile) in its own pages, where glibc's allocator hands them back to the kernel and faults them
/// in again: 10–25 % of the codec's time (`perf`), measured with `skyzip bench codec`.
/// Transparent huge pages are turned off for this process: mimalloc hands freed pages back
/// and a 2 MB huge page is zeroed whole on its next fault, which was 5–6 % of `skyzip bench
/// codec`'s time (`perf`: clear_page) and is gone with 4 KB pages.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only how later page faults
    // of this process are served; a failure (an old kernel) leaves things as they were.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// mimalloc's `mi_option_purge_delay` (option 15 of `mi_option_e` in the mimalloc v3 header
/// that `libmimalloc-sys` builds): how long freed pages stay with the process before they go
/// back to the kernel. Its default, 10 ms, is shorter than a tile: pages went back between
/// tiles and were faulted and zeroed again (`skyzip bench codec` on M13: 327,000 page faults
/// and 1.3 s of system time; with 1 s, 46,000 and 0.3 s; the 8192² peak RSS stayed at
/// 233 MB compressing and 364 MB decompressing).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

fn slow_purge() {
    // SAFETY: mi_option_set stores an integer option of the allocator this binary links
    // (libmimalloc-sys); it may be called at any time.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

fn main() -> ExitCode {
    no_huge_pages();
    slow_purge();
    let cli = Cli::parse();
    interrupt::quiet_broken_pipe();
    if let Err(e) = interrupt::install() {
        eprintln!("skyzip: error: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Info(a) => info::run(a),
        Command::Classic(a) => classic::run(a),
        Command::Compress(a) => codec::run_compress(a),
        Command::Decompress(a) => codec::run_decompress(a),
        Command::Compare(a) => compare::run(a),
        Command::Pack(a) => pack::run_pack(a),
        Command::Unpack(a) => pack::run_unpack(a),
        Command::Simulate(a) => simulate::run(a),
        Command::Stamps(a) => stamps::run(a),
        Command::Train(a) => train::run_train(a),
        Command::Models => train::run_models(),
        Command::Export(a) => model::run_export(a),
        Command::Reconstruct(a) => model::run_reconstruct(a),
        Command::Evaluate(a) => evaluate::run_evaluate(a),
        Command::Latents(a) => latents::run(a),
        Command::Report(a) => evaluate::run_report(a),
        Command::Bench(a) => train::run_bench(a),
    };
    // An interrupt that came while the command ended: its handler's exit (130) is the status.
    interrupt::wait_if_interrupted();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skyzip: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
