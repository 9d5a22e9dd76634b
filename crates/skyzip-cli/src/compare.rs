//! `skyzip compare`: the learned codec beside fpack's codecs on the same images, one table per
//! file and a rate–distortion plot (bits/pixel against RMSE in units of the background σ).

use crate::interrupt::TempDir;
use anyhow::{Context, Result};
use skyzip_codec::{Mode, Options, Predictor};
use skyzip_fits::{image_sigma, in_sigma, physical_errors, read_image, FitsWriter, HduSelector};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The real frame bundled in the binary (SAAO raw CCD, BSD-3-Clause; `data/sample/README.md`),
/// compared when no file is given.
const SAMPLE: &[u8] = include_bytes!("../../../data/sample/optical_ccd_raw_saao_a8280271.fits");
const SAMPLE_NAME: &str = "optical_ccd_raw_saao_a8280271.fits";

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip compare --plot rd.png                   the bundled SAAO raw CCD frame
  skyzip compare frame.fits --errors 0.5,1,2 --plot rd.png
  skyzip compare *.fits --json > results.json    one table and one RD plot per file")]
pub struct Args {
    /// FITS images (the first image HDU of each); none: the bundled sample frame, a raw SAAO
    /// CCD frame (data/sample/).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// skyzip's codec model (`default`, `rate` or an export).
    #[arg(long, default_value = "default")]
    model: String,
    /// Max-error levels (in σ) for skyzip's lossy points.
    #[arg(long, default_value = "0.5,1,2,4", value_delimiter = ',')]
    errors: Vec<f64>,
    /// Classical codecs to run beside it (fpack's, JPEG-XL and JPEG-LS; see `skyzip classic
    /// --help`).
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
    /// skyzip only: bytes of the coded tiles (the table's heap), and the entropy model's
    /// estimate for them plus the file's other bytes, in bits/pixel.
    tile_bytes: Option<u64>,
    est_bits_per_pixel: Option<f64>,
    rmse_sigma: f64,
    max_err_sigma: f64,
    mask_preserved: bool,
    exact: bool,
    encode_mb_s: f64,
    decode_mb_s: f64,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Line {
    Row(Row),
    Failed { codec: String, failed: String },
}

#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    shape: String,
    bitpix: i32,
    sigma: f64,
    rows: Vec<Line>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

struct SkyzipMode {
    mode: Mode,
    q: f64,
}

#[allow(clippy::too_many_arguments)]
fn skyzip_row(
    img_path: &Path,
    img: &skyzip_fits::ImageHdu,
    sigma: f64,
    p: &Predictor,
    m: &SkyzipMode,
    dir: &Path,
    tag: &str,
) -> Result<Row> {
    let c = dir.join(format!("{tag}.sz.fits"));
    let o = dir.join(format!("{tag}.out.fits"));
    let opts = Options {
        mode: m.mode,
        q: m.q,
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
    let label = match m.mode {
        Mode::Lossless if img.pixels.is_float() && m.q == 0.0 => "skyzip bit-exact q=0".into(),
        Mode::Lossless if img.pixels.is_float() => format!("skyzip lossless q={}", m.q),
        Mode::Lossless => "skyzip lossless".to_string(),
        Mode::MaxError(e) => format!("skyzip max-error {e}σ"),
    };
    let exact = back.pixels.bit_identical(&img.pixels);
    Ok(Row {
        codec: label,
        lossless: exact,
        bytes: r.file_bytes,
        bits_per_pixel: 8.0 * r.file_bytes as f64 / npix,
        tile_bytes: Some(tiles as u64),
        est_bits_per_pixel: Some((est + overhead) / npix),
        rmse_sigma: in_sigma(rmse, sigma),
        max_err_sigma: in_sigma(max, sigma),
        mask_preserved: mask,
        exact,
        encode_mb_s: enc,
        decode_mb_s: dec,
    })
}

/// The files given, each with its name for the tables; none: the bundled sample, written into
/// `dir`.
pub(crate) fn files_or_sample(files: &[PathBuf], dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    if files.is_empty() {
        let f = dir.join(SAMPLE_NAME);
        std::fs::write(&f, SAMPLE).context("writing the bundled sample")?;
        return Ok(vec![(f, format!("{SAMPLE_NAME} (bundled sample)"))]);
    }
    Ok(files
        .iter()
        .map(|f| (f.clone(), f.display().to_string()))
        .collect())
}

/// `img` as the only HDU of a new file at `path`, so that every codec sees the same input.
pub(crate) fn write_alone(img: &skyzip_fits::ImageHdu, path: &Path) -> Result<()> {
    let mut w = FitsWriter::create(path, true)?;
    w.write_image(img, None)?;
    w.finish()?;
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let specs = crate::classic::parse_codecs(&a.codecs)?;
    let p = Predictor::load(&a.model)?;
    let dir = TempDir::new()?;
    let files = files_or_sample(&a.files, dir.path())?;
    let mut reports = Vec::new();
    for (fi, (file, name)) in files.iter().enumerate() {
        crate::files::input(file)?;
        let img = read_image(file, &HduSelector::FirstImage)?;
        let sigma = image_sigma(&img);
        // The image alone, so that every codec sees the same single-HDU file.
        let single = dir.path().join(format!("img{fi}.fits"));
        write_alone(&img, &single)?;
        let mut rows = Vec::new();
        let (codecs, note) = crate::classic::distinct(&specs, &img, sigma);
        for (label, spec) in codecs {
            rows.push(match spec.run(&img, sigma, a.repeat, None) {
                Ok(r) => Line::Row(Row {
                    codec: r.codec,
                    lossless: r.lossless,
                    bytes: r.bytes as u64,
                    bits_per_pixel: r.bits_per_pixel,
                    tile_bytes: None,
                    est_bits_per_pixel: None,
                    rmse_sigma: r.rmse_sigma,
                    max_err_sigma: r.max_err_sigma,
                    mask_preserved: r.mask_preserved,
                    exact: r.exact,
                    encode_mb_s: r.encode_mb_s,
                    decode_mb_s: r.decode_mb_s,
                }),
                Err(e) => Line::Failed {
                    codec: label,
                    failed: e.kind.to_string(),
                },
            });
        }
        let q = Options::default().q;
        let mut modes = vec![SkyzipMode {
            mode: Mode::Lossless,
            q,
        }];
        if img.pixels.is_float() {
            modes.push(SkyzipMode {
                mode: Mode::Lossless,
                q: 0.0,
            });
        }
        modes.extend(a.errors.iter().map(|&e| SkyzipMode {
            mode: Mode::MaxError(e),
            q,
        }));
        for (k, m) in modes.iter().enumerate() {
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
            rows.push(Line::Row(row));
        }
        let report = FileReport {
            file: name.clone(),
            shape: img.shape_string(),
            bitpix: img.bitpix(),
            sigma,
            rows,
            note,
        };
        if !a.json {
            print_table(&report);
        }
        if let Some(plot) = &a.plot {
            let path = if files.len() == 1 {
                plot.clone()
            } else {
                let stem = file.file_stem().unwrap_or_default().to_string_lossy();
                plot.with_extension(format!("{stem}.png"))
            };
            rd_plot(&path, &report)?;
            if !a.json {
                println!("RD plot: {}", path.display());
            }
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
    } else if codec.starts_with("JPEG-XL") {
        "JPEG-XL (lossless)"
    } else if codec.starts_with("JPEG-LS") {
        "JPEG-LS"
    } else {
        "other"
    }
}

/// Points with RMSE beyond this many σ are left off the RD plot (and named in its legend): a
/// codec that lost the image would stretch the axis until nothing else can be read.
const PLOT_RMSE_LIMIT: f64 = 20.0;

fn rd_plot(path: &Path, r: &FileReport) -> Result<()> {
    let mut fams: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut off = Vec::new();
    for row in r.rows.iter().filter_map(|l| match l {
        Line::Row(r) => Some(r),
        Line::Failed { .. } => None,
    }) {
        if row.rmse_sigma.is_nan() || row.rmse_sigma > PLOT_RMSE_LIMIT {
            off.push(format!("{} at {:.1e}σ", row.codec, row.rmse_sigma));
            continue;
        }
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
    // Points off the axis are named in the legend (an entry without points).
    let off_label = format!("off scale: {}", off.join(", "));
    let series: Vec<skyzip_plot::Series> = fams
        .iter()
        .map(|(n, v)| skyzip_plot::Series {
            label: n,
            points: v,
        })
        .chain((!off.is_empty()).then(|| skyzip_plot::Series {
            label: &off_label,
            points: &[],
        }))
        .collect();
    let name = Path::new(&r.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = format!("{name}: rate vs distortion");
    skyzip_plot::line_plot(
        path,
        &title,
        "RMSE / σ",
        "bits per pixel (file bytes)",
        &series,
        false,
    )?;
    Ok(())
}

fn print_table(r: &FileReport) {
    println!(
        "{}",
        crate::classic::table_title(&r.file, &r.shape, r.bitpix, r.sigma)
    );
    println!(
        "  {:<26} {:>10} {:>10} {:>7} {:>7} {:>9} {:>11} {:>5} {:>9} {:>9}",
        "codec",
        "bytes",
        "tile bytes",
        "bpp",
        "est bpp",
        "RMSE/σ",
        "max|err|/σ",
        "mask",
        "enc MB/s",
        "dec MB/s"
    );
    let mut marked = false;
    for l in &r.rows {
        let c = match l {
            Line::Row(c) => c,
            Line::Failed { codec, failed } => {
                println!("  {codec:<26} failed: {failed}");
                continue;
            }
        };
        marked |= [c.rmse_sigma, c.max_err_sigma]
            .iter()
            .any(|v| !v.is_finite() || v.abs() >= 1000.0);
        println!(
            "  {:<26} {:>10} {:>10} {:>7.3} {:>7} {} {} {:>5} {:>9.1} {:>9.1}",
            c.codec,
            c.bytes,
            c.tile_bytes
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            c.bits_per_pixel,
            c.est_bits_per_pixel
                .map(|e| format!("{e:.3}"))
                .unwrap_or_else(|| "-".into()),
            crate::fmt::in_sigma(c.rmse_sigma, 9),
            crate::fmt::in_sigma(c.max_err_sigma, 11),
            if c.mask_preserved { "yes" } else { "NO" },
            c.encode_mb_s,
            c.decode_mb_s
        );
    }
    println!(
        "  bytes and bpp: the whole compressed file (headers and 2880-byte FITS blocks included); \
         tile bytes: skyzip's coded tiles alone;"
    );
    println!(
        "  est bpp: skyzip's entropy-model estimate of its tiles plus the file's other bytes, \
         beside the real bpp."
    );
    if marked {
        println!(
            "  !: the codec lost the image there (e.g. numbers written where NaN blanks were)"
        );
    }
    if let Some(n) = &r.note {
        println!("  {n}");
    }
    println!();
}
