//! `skyzip bench codec FILE…`: encode and decode speed of skyzip's codec (lossless and one
//! lossy mode) beside RICE run in-process by cfitsio, on the same image, in the same run.

use crate::interrupt::TempDir;
use anyhow::{Context, Result};
use skyzip_codec::{Mode, Options, Predictor};
use skyzip_fits::{image_sigma, read_image, run_codec, HduSelector, TileCompression};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One codec's speed on one image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Speed {
    pub codec: String,
    pub bits_per_pixel: f64,
    pub encode_mb_s: f64,
    pub decode_mb_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// skyzip compress → decompress of the single-HDU file `src` (`raw_bytes` of pixels, `npix`
/// of them), `repeat` times; medians. `model` names `p` for the decoder.
fn skyzip_speed(
    (src, raw_bytes, npix): (&Path, f64, f64),
    (p, model): (&Predictor, &str),
    mode: Mode,
    dir: &Path,
    repeat: usize,
) -> Result<Speed> {
    let (c, o) = (dir.join("bench.sz.fits"), dir.join("bench.out.fits"));
    let opts = Options {
        mode,
        ..Options::default()
    };
    let (mut enc, mut dec, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = skyzip_codec::compress(src, &c, p, &opts, true)?;
        enc.push(t.elapsed().as_secs_f64());
        bytes = r.file_bytes;
        let t = Instant::now();
        skyzip_codec::decompress(&c, &o, &|_: &str| Predictor::load(model), true)?;
        dec.push(t.elapsed().as_secs_f64());
    }
    Ok(Speed {
        codec: match mode {
            Mode::Lossless => "skyzip lossless".into(),
            Mode::MaxError(e) => format!("skyzip max-error {e}σ"),
            Mode::Rmse(r) => format!("skyzip rmse {r}σ"),
        },
        bits_per_pixel: 8.0 * bytes as f64 / npix,
        encode_mb_s: raw_bytes / 1e6 / median(enc),
        decode_mb_s: raw_bytes / 1e6 / median(dec),
    })
}

/// Speeds of skyzip (lossless, max-error `e`) and RICE on the first image HDU of `file`.
pub fn codec_speeds(
    file: &Path,
    p: &Predictor,
    model: &str,
    e: f64,
    repeat: usize,
    dir: &Path,
) -> Result<(String, Vec<Speed>)> {
    crate::files::input(file)?;
    let img = read_image(file, &HduSelector::FirstImage)?;
    let single = dir.join("bench.fits");
    crate::compare::write_alone(&img, &single)?;
    let raw = (img.npix() * img.pixels.bytes_per_pixel()) as f64;
    let npix = img.npix() as f64;
    let rice = TileCompression::parse("rice").map_err(anyhow::Error::msg)?;
    let r = run_codec(&img, &rice, image_sigma(&img), repeat, None)?;
    let mut out = vec![Speed {
        codec: r.codec,
        bits_per_pixel: r.bits_per_pixel,
        encode_mb_s: r.encode_mb_s,
        decode_mb_s: r.decode_mb_s,
    }];
    for mode in [Mode::Lossless, Mode::MaxError(e)] {
        out.push(
            skyzip_speed((&single, raw, npix), (p, model), mode, dir, repeat)
                .with_context(|| format!("{}: skyzip", file.display()))?,
        );
    }
    Ok((img.shape_string(), out))
}

/// What `skyzip bench codec` measures.
pub struct CodecBench {
    /// FITS images (none: the bundled sample frame).
    pub files: Vec<PathBuf>,
    /// Timed repeats per codec (median).
    pub repeat: usize,
    pub model: String,
    pub max_error: f64,
    pub json: bool,
}

pub fn run_codec_bench(a: &CodecBench) -> Result<()> {
    let p = Predictor::load(&a.model)?;
    let dir = TempDir::new()?;
    let files = crate::compare::files_or_sample(&a.files, dir.path())?;
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut all = Vec::new();
    for (f, name) in &files {
        let (shape, speeds) = codec_speeds(f, &p, &a.model, a.max_error, a.repeat, dir.path())?;
        if !a.json {
            let rice = &speeds[0];
            println!(
                "{name} ({shape}), {threads} thread(s), median of {}; MB/s of uncompressed pixels, \
                 files in the page cache",
                a.repeat.max(1)
            );
            println!(
                "  {:<22} {:>10} {:>12} {:>12} {:>10} {:>10}",
                "codec", "bits/pixel", "encode MB/s", "decode MB/s", "enc ×RICE", "dec ×RICE"
            );
            for s in &speeds {
                println!(
                    "  {:<22} {:>10.3} {:>12.1} {:>12.1} {:>10.3} {:>10.3}",
                    s.codec,
                    s.bits_per_pixel,
                    s.encode_mb_s,
                    s.decode_mb_s,
                    s.encode_mb_s / rice.encode_mb_s,
                    s.decode_mb_s / rice.decode_mb_s
                );
            }
        }
        all.push(serde_json::json!({
            "file": name,
            "shape": shape,
            "threads": threads,
            "speeds": speeds,
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
