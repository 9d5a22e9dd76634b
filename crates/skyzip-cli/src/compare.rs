//! `skyzip compare`: the learned codec beside fpack's codecs on the same images, one table per
//! file and a rate–distortion plot (bits/pixel against RMSE in units of the background σ).

use anyhow::{Context, Result};
use skyzip_codec::{Mode, Options, Predictor};
use skyzip_fits::{image_sigma, physical_errors, read_image, run_codec, FitsWriter, HduSelector};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// skyzip's codec model (`default`, `rate` or an export).
    #[arg(long, default_value = "default")]
    model: String,
    /// Max-error levels (in σ) for skyzip's lossy points.
    #[arg(long, default_value = "0.5,1,2,4", value_delimiter = ',')]
    errors: Vec<f64>,
    /// fpack codecs to run beside it.
    #[arg(long, default_value = crate::classic::DEFAULT_CODECS)]
    codecs: String,
    /// Timing repeats for fpack's codecs (median); skyzip runs once.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Write the rate–distortion plot here (one file per image: NAME.STEM.png when several).
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(serde::Serialize, Clone)]
struct Row {
    codec: String,
    lossless: bool,
    bytes: u64,
    bits_per_pixel: f64,
    /// skyzip only: the entropy model's estimate for the coded tiles + the file's headers.
    est_bits_per_pixel: Option<f64>,
    rmse_sigma: f64,
    max_err_sigma: f64,
    mask_preserved: bool,
    exact: bool,
    encode_mb_s: f64,
    decode_mb_s: f64,
}

#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    shape: String,
    bitpix: i32,
    sigma: f64,
    rows: Vec<Row>,
}

fn skyzip_row(
    img_path: &Path,
    img: &skyzip_fits::ImageHdu,
    sigma: f64,
    p: &Predictor,
    mode: Mode,
    dir: &Path,
    tag: &str,
) -> Result<Row> {
    let c = dir.join(format!("{tag}.sz.fits"));
    let o = dir.join(format!("{tag}.out.fits"));
    let opts = Options {
        mode,
        ..Options::default()
    };
    let raw = (img.npix() * img.pixels.bytes_per_pixel()) as f64;
    let t = Instant::now();
    let r = skyzip_codec::compress(img_path, &c, p, &opts, true)?;
    let enc = raw / 1e6 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    skyzip_codec::decompress(&c, &o, &|n: &str| Predictor::load(n), true)?;
    let dec = raw / 1e6 / t.elapsed().as_secs_f64();
    let back = read_image(&o, &HduSelector::FirstImage)?;
    let (rmse, max, mask) = physical_errors(img, &back);
    let npix = img.npix() as f64;
    let tiles: usize = r.images.iter().map(|i| i.tile_bytes).sum();
    let est: f64 = r.images.iter().map(|i| i.est_bits).sum();
    let overhead = r.file_bytes as f64 * 8.0 - tiles as f64 * 8.0;
    let label = match mode {
        Mode::Lossless if img.pixels.is_float() => format!("skyzip lossless q={}", opts.q),
        Mode::Lossless => "skyzip lossless".to_string(),
        Mode::MaxError(e) => format!("skyzip max-error {e}σ"),
    };
    Ok(Row {
        codec: label,
        lossless: mode == Mode::Lossless,
        bytes: r.file_bytes,
        bits_per_pixel: 8.0 * r.file_bytes as f64 / npix,
        est_bits_per_pixel: Some((est + overhead) / npix),
        rmse_sigma: rmse / sigma,
        max_err_sigma: max / sigma,
        mask_preserved: mask,
        exact: back.pixels.bit_identical(&img.pixels),
        encode_mb_s: enc,
        decode_mb_s: dec,
    })
}

pub fn run(a: Args) -> Result<()> {
    let specs = crate::classic::parse_codecs(&a.codecs)?;
    let p = Predictor::load(&a.model)?;
    let dir = tempfile::tempdir()?;
    let mut reports = Vec::new();
    for (fi, file) in a.files.iter().enumerate() {
        let img = read_image(file, &HduSelector::FirstImage)?;
        let sigma = image_sigma(&img);
        // The image alone, so that every codec sees the same single-HDU file.
        let single = dir.path().join(format!("img{fi}.fits"));
        let mut w = FitsWriter::create(&single, true)?;
        w.write_image(&img, None)?;
        w.finish()?;
        let mut rows = Vec::new();
        for (label, spec) in crate::classic::distinct(&specs, img.bitpix()) {
            let r = run_codec(&img, spec, sigma, a.repeat, None)
                .with_context(|| format!("{}: codec {label}", file.display()))?;
            rows.push(Row {
                codec: r.codec,
                lossless: r.lossless,
                bytes: r.bytes as u64,
                bits_per_pixel: r.bits_per_pixel,
                est_bits_per_pixel: None,
                rmse_sigma: r.rmse_sigma,
                max_err_sigma: r.max_err_sigma,
                mask_preserved: r.mask_preserved,
                exact: r.exact,
                encode_mb_s: r.encode_mb_s,
                decode_mb_s: r.decode_mb_s,
            });
        }
        let mut modes = vec![Mode::Lossless];
        modes.extend(a.errors.iter().map(|&e| Mode::MaxError(e)));
        for (k, m) in modes.into_iter().enumerate() {
            let row = skyzip_row(
                &single,
                &img,
                sigma,
                &p,
                m,
                dir.path(),
                &format!("f{fi}m{k}"),
            )
            .with_context(|| format!("{}: skyzip", file.display()))?;
            rows.push(row);
        }
        let report = FileReport {
            file: file.display().to_string(),
            shape: img.shape_string(),
            bitpix: img.bitpix(),
            sigma,
            rows,
        };
        if !a.json {
            print_table(&report);
        }
        if let Some(plot) = &a.plot {
            let path = if a.files.len() == 1 {
                plot.clone()
            } else {
                let stem = file.file_stem().unwrap_or_default().to_string_lossy();
                plot.with_extension(format!("{stem}.png"))
            };
            rd_plot(&path, &report)?;
        }
        reports.push(report);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn family(codec: &str) -> &str {
    if codec.starts_with("skyzip") {
        "skyzip"
    } else if codec.starts_with("HCOMPRESS") {
        "HCOMPRESS"
    } else if codec.contains("q=") || codec.starts_with("QUANT") {
        "RICE (quantised floats)"
    } else if codec.starts_with("RICE") {
        "RICE"
    } else if codec.starts_with("GZIP") {
        "GZIP"
    } else {
        "other"
    }
}

fn rd_plot(path: &Path, r: &FileReport) -> Result<()> {
    let mut fams: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for row in &r.rows {
        let f = family(&row.codec).to_string();
        let pt = (row.rmse_sigma, row.bits_per_pixel);
        match fams.iter_mut().find(|(n, _)| *n == f) {
            Some((_, v)) => v.push(pt),
            None => fams.push((f, vec![pt])),
        }
    }
    for (_, v) in fams.iter_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let series: Vec<skyzip_plot::Series> = fams
        .iter()
        .map(|(n, v)| skyzip_plot::Series {
            label: n,
            points: v,
        })
        .collect();
    let name = Path::new(&r.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    skyzip_plot::line_plot(
        path,
        &format!("{name}: rate vs distortion"),
        "RMSE / σ",
        "bits per pixel (file bytes)",
        &series,
        false,
    )?;
    Ok(())
}

fn print_table(r: &FileReport) {
    println!(
        "{}  {}  BITPIX={}  sigma={:.6}",
        r.file, r.shape, r.bitpix, r.sigma
    );
    println!(
        "  {:<26} {:>10} {:>7} {:>7} {:>8} {:>10} {:>5} {:>9} {:>9}",
        "codec", "bytes", "bpp", "est bpp", "RMSE/σ", "max|err|/σ", "mask", "enc MB/s", "dec MB/s"
    );
    for c in &r.rows {
        println!(
            "  {:<26} {:>10} {:>7.3} {:>7} {:>8.4} {:>10.4} {:>5} {:>9.1} {:>9.1}",
            c.codec,
            c.bytes,
            c.bits_per_pixel,
            c.est_bits_per_pixel
                .map(|e| format!("{e:.3}"))
                .unwrap_or_else(|| "-".into()),
            c.rmse_sigma,
            c.max_err_sigma,
            if c.mask_preserved { "yes" } else { "NO" },
            c.encode_mb_s,
            c.decode_mb_s
        );
    }
    println!();
}
