//! `skyzip compare`: the learned codec beside fpack's codecs on the same images, one table per
//! file and a rate–distortion plot (bits/pixel against RMSE in units of the background σ).

use crate::interrupt::TempDir;
use crate::phot::{Photometry, Setup};
use anyhow::{Context, Result};
use skyzip_codec::{Mode, Options, Predictor};
use skyzip_eval::photometry::PhotometryCheck;
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
    /// RMSE targets (in σ) for skyzip's RMSE mode (no per-pixel bound: dead zone,
    /// rate–distortion decisions, centroid reconstruction); the default brackets HCOMPRESS's
    /// RMSE at s = 2.5, 4 and 10. `--rmse none`: no RMSE-mode points.
    #[arg(long, default_value = "0.2,0.35,0.6,1,1.25,1.5,2", value_parser = levels)]
    rmse: Levels,
    /// Do not also run the RMSE mode at each max-error point's measured RMSE (by default it
    /// runs, with any RMSE targets, so that each bounded file has an RMSE-mode file of no
    /// larger RMSE beside it: the bytes at the same RMSE, not interpolated).
    #[arg(long)]
    no_matched: bool,
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
    /// Detect sources on each original (5σ over the background, ≥ 5 connected pixels) and
    /// measure aperture fluxes and centroids on every decoded image: the flux bias and added
    /// scatter in units of each source's flux error, the centroid shift in pixels.
    #[arg(long)]
    photometry: bool,
    /// Print the tables of a saved `compare --json` report instead of running the codecs (and
    /// with --plot draw its RD plots again).
    #[arg(long, value_name = "REPORT.json", conflicts_with_all = ["files", "json"])]
    from_json: Option<PathBuf>,
    /// With --from-json: one line per image instead of the tables (lossless against RICE and
    /// the best classical coder, lossy against HCOMPRESS at equal RMSE/σ, photometry at
    /// matched bits).
    #[arg(long, requires = "from_json")]
    summary: bool,
    /// An earlier report of the same images (`compare --json`). Running the codecs: the RMSE
    /// mode also runs at each of its lossy max-error points' RMSE (rows "(at earlier max-error
    /// Eσ)"). With --summary: a table of today's curves at those points (the RMSE/σ of today's
    /// max-error mode and RMSE mode at each point's tile bytes, and the bytes of those rows).
    #[arg(long, value_name = "EARLIER.json", conflicts_with = "no_matched")]
    baseline: Option<PathBuf>,
}

/// A list of levels in σ (`none`: empty).
#[derive(Clone)]
struct Levels(Vec<f64>);

fn levels(s: &str) -> Result<Levels, String> {
    if s.trim() == "none" {
        return Ok(Levels(Vec::new()));
    }
    s.split(',')
        .map(|v| match v.trim().parse::<f64>() {
            Ok(x) if x >= 0.0 && x.is_finite() => Ok(x),
            _ => Err(format!("'{v}' is not a level ≥ 0 in σ")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Levels)
}

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Row {
    codec: String,
    lossless: bool,
    bytes: u64,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    bits_per_pixel: f64,
    /// skyzip only: bytes of the coded tiles (the table's heap), and the entropy model's
    /// estimate for them plus the file's other bytes, in bits/pixel.
    tile_bytes: Option<u64>,
    est_bits_per_pixel: Option<f64>,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    rmse_sigma: f64,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    max_err_sigma: f64,
    mask_preserved: bool,
    exact: bool,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    encode_mb_s: f64,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    decode_mb_s: f64,
    /// With `--photometry`: the original's sources measured on this codec's decoded image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    photometry: Option<PhotometryCheck>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Line {
    Row(Row),
    Failed { codec: String, failed: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FileReport {
    file: String,
    shape: String,
    bitpix: i32,
    #[serde(deserialize_with = "skyzip_eval::photometry::f64_or_nan")]
    sigma: f64,
    rows: Vec<Line>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    /// With `--photometry`: how the original's sources were found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    photometry: Option<Setup>,
}

/// What follows an RMSE-mode row's label when it was run at a max-error point's RMSE.
const MATCHED: &str = "(at max-error ";
/// The label's tail of an RMSE-mode row at an earlier report's max-error point.
const EARLIER: &str = "(at earlier max-error ";

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
) -> Result<(Row, skyzip_fits::ImageHdu)> {
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
        Mode::Rmse(r) => format!("skyzip rmse {r}σ"),
    };
    let exact = back.pixels.bit_identical(&img.pixels);
    let row = Row {
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
        photometry: None,
    };
    Ok((row, back))
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

/// A saved `compare --json` report (errors name the file).
fn read_report(path: &Path) -> Result<Vec<FileReport>> {
    crate::files::input(path)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a `skyzip compare --json` report", path.display()))
}

pub fn run(a: Args) -> Result<()> {
    if let Some(report) = &a.from_json {
        let reports = read_report(report)?;
        if a.summary {
            print_summary(&reports);
            if let Some(b) = &a.baseline {
                print_against_baseline(&reports, &read_report(b)?, b);
            }
        } else {
            reports.iter().for_each(print_table);
        }
        if let Some(plot) = &a.plot {
            for r in &reports {
                let path = plot_path(plot, Path::new(&r.file), reports.len());
                rd_plot(&path, r)?;
            }
        }
        return Ok(());
    }
    let earlier = a.baseline.as_deref().map(read_report).transpose()?;
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
        let phot = a.photometry.then(|| Photometry::of(&img, sigma));
        let (codecs, note) = crate::classic::distinct(&specs, &img, sigma);
        for (label, spec) in codecs {
            rows.push(match spec.run_decoded(&img, sigma, a.repeat) {
                Ok((r, decoded)) => Line::Row(Row {
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
                    photometry: phot.as_ref().map(|p| p.check(&decoded)),
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
        modes.extend(a.rmse.0.iter().map(|&r| SkyzipMode {
            mode: Mode::Rmse(r),
            q,
        }));
        // One of skyzip's rows, its photometry checked where asked.
        let run = |m: &SkyzipMode, tag: String| -> Result<Row> {
            let (mut row, back) = skyzip_row(&single, &img, sigma, &p, m, dir.path(), &tag)
                .with_context(|| format!("{}: skyzip", file.display()))?;
            row.photometry = phot.as_ref().map(|p| p.check(&back));
            Ok(row)
        };
        for (k, m) in modes.iter().enumerate() {
            rows.push(Line::Row(run(m, format!("f{fi}m{k}"))?));
        }
        // The RMSE mode at each lossy max-error point's RMSE, and at the earlier report's (the
        // codec keeps a hair, 1e-5 of the target, under it: the target is that much above, so
        // that the file it keeps has no larger RMSE than the max-error file).
        let before = earlier
            .iter()
            .flatten()
            .find(|o| stem(o) == file_stem(name));
        let at = |(e, c): (&str, &Row), tail: &'static str| {
            (e.to_string(), c.rmse_sigma * (1.0 + 1e-5), tail)
        };
        let mut targets: Vec<(String, f64, &str)> = Vec::new();
        if !a.no_matched && !a.rmse.0.is_empty() {
            targets.extend(lossy_points(&rows).map(|p| at(p, MATCHED)));
        }
        if let Some(old) = before {
            targets.extend(lossy_points(&old.rows).map(|p| at(p, EARLIER)));
        }
        for (k, (e, target, tail)) in targets.into_iter().enumerate() {
            let m = SkyzipMode {
                mode: Mode::Rmse(target),
                q,
            };
            let mut row = run(&m, format!("f{fi}x{k}"))?;
            row.codec = format!("skyzip rmse {target:.4}σ {tail}{e})");
            rows.push(Line::Row(row));
        }
        let report = FileReport {
            file: name.clone(),
            shape: img.shape_string(),
            bitpix: img.bitpix(),
            sigma,
            rows,
            note,
            photometry: phot.map(|p| p.setup),
        };
        if !a.json {
            print_table(&report);
        }
        if let Some(plot) = &a.plot {
            let path = plot_path(plot, file, files.len());
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

/// Where the RD plot of `file` goes: `plot` itself for one file, NAME.STEM.png for several.
fn plot_path(plot: &Path, file: &Path, files: usize) -> PathBuf {
    if files == 1 {
        plot.to_path_buf()
    } else {
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        plot.with_extension(format!("{stem}.png"))
    }
}

fn family(codec: &str) -> &str {
    if codec.starts_with("skyzip rmse") {
        "skyzip RMSE mode"
    } else if codec.starts_with("skyzip") {
        "skyzip lossless, max-error"
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
    for row in rows(r) {
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
    // The codec column as wide as its longest label.
    let w = r
        .rows
        .iter()
        .map(|l| match l {
            Line::Row(c) => c.codec.chars().count(),
            Line::Failed { codec, .. } => codec.chars().count(),
        })
        .max()
        .unwrap_or(0)
        .max(26);
    println!(
        "  {:<w$} {:>10} {:>10} {:>7} {:>7} {:>9} {:>11} {:>5} {:>9} {:>9}",
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
                println!("  {codec:<w$} failed: {failed}");
                continue;
            }
        };
        marked |= [c.rmse_sigma, c.max_err_sigma]
            .iter()
            .any(|v| !v.is_finite() || v.abs() >= 1000.0);
        println!(
            "  {:<w$} {:>10} {:>10} {:>7.3} {:>7} {} {} {:>5} {:>9.1} {:>9.1}",
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
    if let Some(l) = lossless_summary(r) {
        println!("  {l}");
    }
    if let Some(s) = &r.photometry {
        print_photometry(r, s);
    }
    println!();
}

/// One of skyzip's rate–distortion curves: its points of one lossy mode (`prefix`: "skyzip
/// max-error" or "skyzip rmse") and its lossless point at the default q, as (RMSE/σ, bits per
/// pixel), by RMSE.
fn skyzip_curve(r: &FileReport, prefix: &str) -> Vec<(f64, f64)> {
    skyzip_points(r, prefix, |c| c.bits_per_pixel)
}

/// The same curve in tile bytes (the table's heap): skyzip's modes against each other, with
/// the header, which they share but for a card or two, left out.
fn skyzip_tile_curve(r: &FileReport, prefix: &str) -> Vec<(f64, f64)> {
    skyzip_points(r, prefix, |c| c.tile_bytes.unwrap_or(0) as f64)
}

fn skyzip_points(r: &FileReport, prefix: &str, size: impl Fn(&Row) -> f64) -> Vec<(f64, f64)> {
    let lossless = format!("skyzip lossless{}", if r.bitpix < 0 { " q=4" } else { "" });
    let mut pts: Vec<(f64, f64)> = rows(r)
        .filter(|c| (c.codec.starts_with(prefix) || c.codec == lossless) && c.mask_preserved)
        .map(|c| (c.rmse_sigma, size(c)))
        .filter(|p| p.0.is_finite() && p.1 > 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pts
}

/// A curve's bits at an RMSE/σ, interpolated (log bits, linear RMSE) between the points that
/// bracket it; None outside them.
fn bits_at(pts: &[(f64, f64)], rmse: f64) -> Option<f64> {
    pts.windows(2).find_map(|w| {
        let ((r0, b0), (r1, b1)) = (w[0], w[1]);
        (r0 <= rmse && rmse <= r1 && r1 > r0).then(|| {
            let t = (rmse - r0) / (r1 - r0);
            (b0.ln() + t * (b1.ln() - b0.ln())).exp()
        })
    })
}

/// A curve's RMSE/σ at a size (bits per pixel, or tile bytes), interpolated the same way; None
/// outside it (or where the curve does not fall with size there).
fn rmse_at(pts: &[(f64, f64)], bits: f64) -> Option<f64> {
    pts.windows(2).find_map(|w| {
        let ((r0, b0), (r1, b1)) = (w[0], w[1]);
        (b1 <= bits && bits <= b0 && b0 > b1).then(|| {
            let t = (b0.ln() - bits.ln()) / (b0.ln() - b1.ln());
            r0 + t * (r1 - r0)
        })
    })
}

/// The lossy max-error rows (mask kept, RMSE > 0) of a report's lines, with their levels
/// ("1σ").
fn lossy_points(lines: &[Line]) -> impl Iterator<Item = (&str, &Row)> {
    line_rows(lines)
        .filter(|c| c.codec.starts_with("skyzip max-error") && c.mask_preserved)
        .filter(|c| c.rmse_sigma > 0.0 && c.rmse_sigma.is_finite())
        .map(|c| (c.codec.trim_start_matches("skyzip max-error "), c))
}

/// Today's max-error and RMSE-mode curves at each lossy max-error point of an earlier report
/// of the same images (matched by file name), interpolated in tile bytes, and, where the
/// report has it, the RMSE mode's own file at that point's RMSE ("(at earlier max-error Eσ)"):
/// whether today reaches a lower RMSE with no more bytes there.
fn print_against_baseline(reports: &[FileReport], earlier: &[FileReport], path: &Path) {
    println!();
    println!(
        "{:<36}  at {}'s max-error points: RMSE/σ then → today's max-error | RMSE mode at \
         those tile bytes (interpolated); and the RMSE mode's file at that RMSE: tile bytes \
         then → now",
        "image",
        path.display()
    );
    let (mut lower, mut points) = (0, 0);
    for r in reports {
        let Some(old) = earlier.iter().find(|o| stem(o) == stem(r)) else {
            println!("{:<36}  not in the earlier report", stem(r));
            continue;
        };
        let (max_curve, rmse_curve) = (
            skyzip_tile_curve(r, "skyzip max-error"),
            skyzip_tile_curve(r, "skyzip rmse"),
        );
        let lossless = rows(old)
            .filter(|c| c.codec.starts_with("skyzip max-error") && c.rmse_sigma == 0.0)
            .map(|c| {
                format!(
                    "{} lossless then",
                    c.codec.trim_start_matches("skyzip max-error ")
                )
            });
        let parts: Vec<String> = lossless
            .chain(lossy_points(&old.rows).map(|(e, c)| {
                let tiles = c.tile_bytes.unwrap_or(0);
                let at = |curve: &[(f64, f64)]| rmse_at(curve, tiles as f64);
                let show = |m: Option<f64>| m.map_or("out of range".into(), |m| format!("{m:.4}"));
                let (m, q) = (at(&max_curve), at(&rmse_curve));
                let tag = format!("{EARLIER}{e})");
                let direct = rows(r).find(|d| d.codec.ends_with(&tag));
                let interpolated = [m, q].into_iter().flatten().any(|b| b < c.rmse_sigma);
                let measured = direct.is_some_and(|d| {
                    d.tile_bytes.unwrap_or(u64::MAX) <= tiles && d.rmse_sigma < c.rmse_sigma
                });
                points += 1;
                let verdict = if interpolated || measured {
                    lower += 1;
                    "lower"
                } else {
                    "NOT lower"
                };
                let file = direct.map_or(String::new(), |d| {
                    format!(
                        "; {tiles} → {} at {:.4}σ",
                        d.tile_bytes.unwrap_or(0),
                        d.rmse_sigma
                    )
                });
                format!(
                    "{e} {:.4} → {} | {}{file} ({verdict})",
                    c.rmse_sigma,
                    show(m),
                    show(q)
                )
            }))
            .collect();
        println!("{:<36}  {}", stem(r), parts.join(", "));
    }
    println!("lower at {lower} of {points} lossy points");
}

/// One line per image: lossless against RICE and the smallest classical file, lossy against
/// HCOMPRESS at its RMSE/σ, and (with photometry) the flux scatter at matched bits.
fn print_summary(reports: &[FileReport]) {
    println!(
        "{:<36} {:>8} {:>10}  {:<14}  skyzip/HCOMPRESS bits at HCOMPRESS's RMSE/σ: max-error | RMSE mode",
        "image", "vs RICE", "vs best", "best classical"
    );
    for r in reports {
        let name = stem(r);
        let (ours, best) = lossless_pair(r);
        // On floats the best of the same promise is RICE at the same q already.
        let rice = if r.bitpix > 0 {
            rows(r).find(|c| c.codec.starts_with("RICE_1") && c.exact)
        } else {
            best
        };
        let vs = |b: Option<&Row>| match (ours, b) {
            (Some(o), Some(b)) => format!("{:.3}", o.bytes as f64 / b.bytes as f64),
            _ => "-".into(),
        };
        let lossy: Vec<String> = rows(r)
            .filter(|c| is_lossy_hcompress(c))
            .map(|h| {
                let s = hcompress_scale(h);
                if !h.mask_preserved {
                    return format!("s={s}: mask lost");
                }
                let ratio = |prefix: &str| match bits_at(&skyzip_curve(r, prefix), h.rmse_sigma) {
                    Some(b) => format!("{:.2}", b / h.bits_per_pixel),
                    None => "out of range".into(),
                };
                format!(
                    "s={s}@{:.2}σ: {} | {}",
                    h.rmse_sigma,
                    ratio("skyzip max-error"),
                    ratio("skyzip rmse")
                )
            })
            .collect();
        // The same max-error promise: skyzip at E σ against near-lossless JPEG-LS at E σ.
        let near: Vec<String> = rows(r)
            .filter(|c| c.codec.starts_with("JPEG-LS near=") && !c.codec.contains("capped"))
            .filter_map(|j| {
                let e = j.codec.rsplit('(').next()?.trim_end_matches(')');
                let z = rows(r).find(|c| c.codec == format!("skyzip max-error {e}"))?;
                Some(format!("{e}: {:.2}", z.bits_per_pixel / j.bits_per_pixel))
            })
            .collect();
        println!(
            "{:<36} {:>8} {:>10}  {:<14}  {}{}",
            name,
            vs(rice),
            vs(best),
            best.map(|b| b.codec.as_str()).unwrap_or("-"),
            lossy.join(", "),
            if near.is_empty() {
                String::new()
            } else {
                format!(
                    "; skyzip/JPEG-LS at the same max error: {}",
                    near.join(", ")
                )
            }
        );
    }
    println!(
        "vs RICE / vs best: skyzip's lossless file over RICE's and over the smallest exact \
         classical file (RICE, GZIP, HCOMPRESS, JPEG-XL e7/e9, JPEG-LS) on integers; on floats \
         both are RICE at the same q."
    );
    // The RMSE mode against the max-error mode at the same bits.
    if reports
        .iter()
        .any(|r| rows(r).any(|c| c.codec.starts_with("skyzip rmse")))
    {
        println!();
        println!(
            "{:<36}  RMSE/σ at each max-error point's tile bytes: max-error → RMSE mode \
             (interpolated on its curve)",
            "image"
        );
        for r in reports {
            let curve = skyzip_tile_curve(r, "skyzip rmse");
            let parts: Vec<String> = rows(r)
                .filter(|c| c.codec.starts_with("skyzip max-error") && c.mask_preserved)
                .map(|c| {
                    let e = c.codec.trim_start_matches("skyzip max-error ");
                    match rmse_at(&curve, c.tile_bytes.unwrap_or(0) as f64) {
                        Some(m) => format!("{e} {:.3} → {m:.3}", c.rmse_sigma),
                        None => format!("{e} {:.3} → out of range", c.rmse_sigma),
                    }
                })
                .collect();
            println!("{:<36}  {}", stem(r), parts.join(", "));
        }
        // Where the report has them, the RMSE mode's own files at each point's RMSE.
        if reports
            .iter()
            .any(|r| rows(r).any(|c| c.codec.contains(MATCHED)))
        {
            println!();
            println!(
                "{:<36}  the RMSE mode at each max-error point's RMSE/σ: tile bytes, max-error → \
                 RMSE mode (RMSE/σ, max-error → RMSE mode)",
                "image"
            );
            for r in reports {
                let parts: Vec<String> = rows(r)
                    .filter(|c| c.codec.starts_with("skyzip max-error") && c.mask_preserved)
                    .map(|c| {
                        let e = c.codec.trim_start_matches("skyzip max-error ");
                        let tiles = c.tile_bytes.unwrap_or(0);
                        if c.rmse_sigma == 0.0 {
                            return format!("{e} lossless ({tiles})");
                        }
                        let tag = format!("{MATCHED}{e})");
                        match rows(r).find(|m| m.codec.ends_with(&tag)) {
                            Some(m) => {
                                let t = m.tile_bytes.unwrap_or(0);
                                format!(
                                    "{e} {tiles} → {t} ({:+.1} %; {:.4}σ → {:.4}σ)",
                                    100.0 * (t as f64 / tiles.max(1) as f64 - 1.0),
                                    c.rmse_sigma,
                                    m.rmse_sigma
                                )
                            }
                            None => format!("{e} {tiles} → not run"),
                        }
                    })
                    .collect();
                println!("{:<36}  {}", stem(r), parts.join(", "));
            }
        }
    }
    if reports.iter().any(|r| r.photometry.is_some()) {
        println!();
        println!(
            "{:<36} {:>8}  flux scatter/σ_F (bias) at matched bits: HCOMPRESS s | skyzip's nearest lossy point",
            "image", "sources"
        );
        for r in reports {
            let Some(s) = &r.photometry else { continue };
            let name = stem(r);
            if s.sources == 0 {
                println!(
                    "{:<36} {:>8}  no source to measure ({} detections)",
                    name, 0, s.detections
                );
                continue;
            }
            let mut parts = Vec::new();
            for h in rows(r).filter(|c| is_lossy_hcompress(c) && c.photometry.is_some()) {
                let z = nearest_in_bits(r, h, |c| {
                    (c.codec.starts_with("skyzip max-error") || c.codec.starts_with("skyzip rmse"))
                        && c.photometry.is_some()
                });
                let (Some(z), Some(ph)) = (z, h.photometry) else {
                    continue;
                };
                let pz = z.photometry.unwrap();
                parts.push(format!(
                    "s={} {:.2} bpp {:.2} ({:+.2}) | {} {:.2} bpp {:.2} ({:+.2})",
                    hcompress_scale(h),
                    h.bits_per_pixel,
                    ph.scatter,
                    ph.median_bias,
                    z.codec.trim_start_matches("skyzip "),
                    z.bits_per_pixel,
                    pz.scatter,
                    pz.median_bias
                ));
            }
            println!("{:<36} {:>8}  {}", name, s.sources, parts.join("; "));
        }
    }
}

/// HCOMPRESS at a scale s > 0 (on floats, "HCOMPRESS_1 q=4" alone is lossless after
/// quantisation: not one of the lossy points).
fn is_lossy_hcompress(c: &Row) -> bool {
    c.codec.starts_with("HCOMPRESS") && c.codec.contains("s=") && !c.exact
}

fn rows(r: &FileReport) -> impl Iterator<Item = &Row> {
    line_rows(&r.rows)
}

/// The rows that ran among a report's lines.
fn line_rows(lines: &[Line]) -> impl Iterator<Item = &Row> {
    lines.iter().filter_map(|l| match l {
        Line::Row(r) => Some(r),
        Line::Failed { .. } => None,
    })
}

/// The report's image name without its directory and extension.
fn stem(r: &FileReport) -> String {
    file_stem(&r.file)
}

/// A file's name without its directory and extension.
fn file_stem(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `s` of an HCOMPRESS row's label ("HCOMPRESS_1 s=4 q=4" → "4").
fn hcompress_scale(c: &Row) -> &str {
    let s = c.codec.split("s=").nth(1).unwrap_or("?");
    s.split(' ').next().unwrap_or(s)
}

/// skyzip's lossless row and the smallest classical file of the same promise: on integers the
/// exact codecs; on floats RICE at the same q.
fn lossless_pair(r: &FileReport) -> (Option<&Row>, Option<&Row>) {
    let ours = rows(r).find(|c| c.codec.starts_with("skyzip lossless"));
    let best = if r.bitpix > 0 {
        rows(r)
            .filter(|c| c.exact && !c.codec.starts_with("skyzip"))
            .min_by_key(|c| c.bytes)
    } else {
        ours.and_then(|o| o.codec.rsplit(' ').next())
            .and_then(|q| rows(r).find(|c| c.codec == format!("RICE_1 {q}")))
    };
    (ours, best)
}

/// The row of those `pick` takes nearest to `h` in bits per pixel.
fn nearest_in_bits<'a>(r: &'a FileReport, h: &Row, pick: impl Fn(&Row) -> bool) -> Option<&'a Row> {
    rows(r).filter(|c| pick(c)).min_by(|a, b| {
        (a.bits_per_pixel - h.bits_per_pixel)
            .abs()
            .total_cmp(&(b.bits_per_pixel - h.bits_per_pixel).abs())
    })
}

/// skyzip's lossless file against the smallest classical one of the same promise: on integers
/// the exact codecs; on floats RICE at the same q.
fn lossless_summary(r: &FileReport) -> Option<String> {
    let (Some(ours), Some(best)) = lossless_pair(r) else {
        return None;
    };
    Some(format!(
        "lossless: skyzip {} bytes = {:.3}× the smallest classical file of the same promise ({}, {} bytes)",
        ours.bytes,
        ours.bytes as f64 / best.bytes as f64,
        best.codec,
        best.bytes
    ))
}

fn print_photometry(r: &FileReport, s: &Setup) {
    println!("  {}", crate::phot::method(s));
    println!(
        "  {:<26} {:>7} {:>9} {:>11} {:>10} {:>10} {:>5}",
        "codec", "bpp", "bias/σ_F", "scatter/σ_F", "shift med", "shift max", "lost"
    );
    let f = |v: f64, w: usize| {
        if v.is_finite() {
            format!("{v:>w$.3}")
        } else {
            format!("{:>w$}", "-")
        }
    };
    for c in rows(r) {
        let Some(p) = &c.photometry else { continue };
        println!(
            "  {:<26} {:>7.3} {} {} {} {} {:>5}",
            c.codec,
            c.bits_per_pixel,
            f(p.median_bias, 9),
            f(p.scatter, 11),
            f(p.median_shift, 10),
            f(p.max_shift, 10),
            p.lost
        );
    }
    // Each lossy HCOMPRESS point beside skyzip's lossy point nearest to it in bits.
    let lossy = |c: &&Row| !c.exact && c.photometry.is_some();
    for h in rows(r).filter(lossy).filter(|c| is_lossy_hcompress(c)) {
        let Some(z) = nearest_in_bits(r, h, |c| lossy(&c) && c.codec.starts_with("skyzip")) else {
            continue;
        };
        let (ph, pz) = (h.photometry.unwrap(), z.photometry.unwrap());
        println!(
            "  at matched bits: {} {:.3} bpp, bias {:.3} scatter {:.3} | {} {:.3} bpp, bias {:.3} scatter {:.3}",
            h.codec,
            h.bits_per_pixel,
            ph.median_bias,
            ph.scatter,
            z.codec,
            z.bits_per_pixel,
            pz.median_bias,
            pz.scatter
        );
    }
}
