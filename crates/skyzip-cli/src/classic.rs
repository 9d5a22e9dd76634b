use anyhow::{Context, Result};
use skyzip_fits::{
    image_sigma, read_image, run_codec, ClassicResult, HduSelector, TileCompression,
};
use std::path::PathBuf;

/// The codecs compared when none are named: lossless RICE/GZIP/HCOMPRESS, lossy HCOMPRESS at
/// 2.5/4/10 σ and float quantisation at q = 4 and 16 (fpack's `-q`).
pub const DEFAULT_CODECS: &str =
    "rice,gzip2,hcompress,hcompress:s=2.5,hcompress:s=4,hcompress:s=10,quantize:q=4,quantize:q=16";

#[derive(clap::Args)]
pub struct Args {
    /// FITS files; the first HDU holding an image is used unless --hdu says otherwise.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Comma-separated codecs: rice, gzip1, gzip2, plio, hcompress[:s=S][:smooth],
    /// quantize:q=Q (RICE after quantising floats with step σ/Q), and for any of them
    /// :q=Q (0 = lossless floats, GZIP only), :dither=0|1|2, :seed=N, :tile=NXxNY.
    /// Floats are quantised at q=4 unless told otherwise, as fpack does.
    #[arg(long, default_value = DEFAULT_CODECS)]
    codecs: String,
    /// HDU by 0-based index or EXTNAME.
    #[arg(long)]
    hdu: Option<String>,
    /// Timing repeats; speeds are the median.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Keep each compressed file in this directory as NAME.CODEC.fits.fz (never overwriting).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct FileReport {
    file: String,
    shape: String,
    bitpix: i32,
    sigma: f64,
    results: Vec<ClassicResult>,
}

/// Parses a comma-separated `--codecs` list.
pub fn parse_codecs(list: &str) -> Result<Vec<TileCompression>> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| TileCompression::parse(s.trim()).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()
        .context("--codecs")
}

/// The codecs of `specs` that differ on an image of this BITPIX (a float quantiser is the same
/// codec as RICE on integers), each with its label, in order.
pub fn distinct(specs: &[TileCompression], bitpix: i32) -> Vec<(String, &TileCompression)> {
    let mut out: Vec<(String, &TileCompression)> = Vec::new();
    for spec in specs {
        let label = spec.label(bitpix);
        if !out.iter().any(|(l, _)| *l == label) {
            out.push((label, spec));
        }
    }
    out
}

pub fn run(args: Args) -> Result<()> {
    let specs = parse_codecs(&args.codecs)?;
    let sel = args
        .hdu
        .as_deref()
        .map(|h| h.parse().unwrap_or(HduSelector::FirstImage))
        .unwrap_or(HduSelector::FirstImage);
    let mut reports = Vec::new();
    for file in &args.files {
        let img = read_image(file, &sel)?;
        let sigma = image_sigma(&img);
        let mut results = Vec::new();
        for (label, spec) in distinct(&specs, img.bitpix()) {
            let keep = match &args.keep {
                Some(dir) => {
                    let stem = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let tag: String = label
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || c == '.' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let dest = dir.join(format!("{stem}.{tag}.fits.fz"));
                    if dest.exists() {
                        anyhow::bail!(
                            "{}: output file exists already (remove it first)",
                            dest.display()
                        );
                    }
                    Some(dest)
                }
                None => None,
            };
            let r = run_codec(&img, spec, sigma, args.repeat, keep.as_deref())
                .with_context(|| format!("{}: codec {label}", file.display()))?;
            results.push(r);
        }
        let report = FileReport {
            file: file.display().to_string(),
            shape: img.shape_string(),
            bitpix: img.bitpix(),
            sigma,
            results,
        };
        if !args.json {
            print_table(&report);
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn print_table(r: &FileReport) {
    println!(
        "{}  {}  BITPIX={}  sigma={:.6}",
        r.file, r.shape, r.bitpix, r.sigma
    );
    println!(
        "  {:<22} {:>10} {:>7} {:>7} {:>9} {:>11} {:>5} {:>9} {:>9}",
        "codec", "bytes", "bpp", "ratio", "RMSE/σ", "max|err|/σ", "mask", "enc MB/s", "dec MB/s"
    );
    for c in &r.results {
        println!(
            "  {:<22} {:>10} {:>7.3} {:>7.2} {:>9.4} {:>11.4} {:>5} {:>9.1} {:>9.1}",
            c.codec,
            c.bytes,
            c.bits_per_pixel,
            c.ratio,
            c.rmse_sigma,
            c.max_err_sigma,
            if c.mask_preserved { "yes" } else { "NO" },
            c.encode_mb_s,
            c.decode_mb_s
        );
    }
    println!();
}
