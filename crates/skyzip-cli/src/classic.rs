use anyhow::{Context, Result};
use skyzip_fits::{
    image_sigma, read_image, run_codec, run_peer, ClassicResult, HduSelector, ImageHdu, PeerCodec,
    TileCompression,
};
use std::path::PathBuf;

/// The codecs compared when none are named: lossless RICE/GZIP/HCOMPRESS, lossy HCOMPRESS at
/// 2.5/4/10 σ, float quantisation at q = 4 and 16 (fpack's `-q`) and bit-exact floats (GZIP at
/// q = 0, fpack's `-q 0`); on integer images JPEG-XL lossless at effort 7 and 9 and JPEG-LS,
/// lossless and near-lossless at 1 and 4 σ.
pub const DEFAULT_CODECS: &str =
    "rice,gzip2,hcompress,hcompress:s=2.5,hcompress:s=4,hcompress:s=10,\
                                  quantize:q=4,quantize:q=16,gzip2:q=0,\
                                  jxl:e=7,jxl:e=9,jpegls,jpegls:near=1,jpegls:near=4";

/// One codec of a `--codecs` list: one of fpack's, or a JPEG-XL/JPEG-LS peer.
pub enum Spec {
    Fpack(TileCompression),
    Peer(PeerCodec),
}

impl Spec {
    /// The row label on this image.
    fn label(&self, img: &ImageHdu, sigma: f64) -> String {
        match self {
            Spec::Fpack(c) => c.label(img.bitpix()),
            Spec::Peer(p) => p.label(sigma, img.bscale),
        }
    }

    /// Runs the codec on `img` (σ in physical units).
    pub fn run(
        &self,
        img: &ImageHdu,
        sigma: f64,
        repeat: usize,
        keep: Option<&std::path::Path>,
    ) -> skyzip_fits::Result<ClassicResult> {
        match self {
            Spec::Fpack(c) => run_codec(img, c, sigma, repeat, keep),
            Spec::Peer(p) => run_peer(img, p, sigma, repeat),
        }
    }

    /// [`Spec::run`], and the decoded image.
    pub fn run_decoded(
        &self,
        img: &ImageHdu,
        sigma: f64,
        repeat: usize,
    ) -> skyzip_fits::Result<(ClassicResult, ImageHdu)> {
        match self {
            Spec::Fpack(c) => skyzip_fits::run_codec_decoded(img, c, sigma, repeat, None),
            Spec::Peer(p) => skyzip_fits::run_peer_decoded(img, p, sigma, repeat),
        }
    }
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip classic frame.fits                                 fpack's codecs, lossless and lossy
  skyzip classic frame.fits --codecs rice,hcompress:s=4 --repeat 10
  skyzip classic frame.fits --keep out/                     keep each .fits.fz to check with funpack")]
pub struct Args {
    /// FITS files; the first HDU holding an image is used unless --hdu says otherwise.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Comma-separated codecs: rice, gzip1, gzip2, plio, hcompress[:s=S][:smooth],
    /// quantize:q=Q (RICE after quantising floats with step σ/Q), and for any of them
    /// :q=Q (0 = lossless floats, GZIP only), :dither=0|1|2, :seed=N, :tile=NXxNY.
    /// Floats are quantised at q=4 unless told otherwise, as fpack does. Peers on integer
    /// images of up to 16 bits (libjxl, CharLS): jxl[:e=1..9] (lossless), jpegls[:near=E]
    /// (NEAR = E·σ in stored units).
    #[arg(long, default_value = DEFAULT_CODECS)]
    codecs: String,
    /// HDU by 0-based index or EXTNAME.
    #[arg(long)]
    hdu: Option<String>,
    /// Timing repeats; speeds are the median.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Keep each of fpack's compressed files in this directory as NAME.CODEC.fits.fz (never
    /// overwriting).
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
    results: Vec<Outcome>,
    /// Codecs of the list not run because they are the same as another on this BITPIX.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Parses a comma-separated `--codecs` list: each spec as written, and what it means.
pub fn parse_codecs(list: &str) -> Result<Vec<(String, Spec)>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let spec = match PeerCodec::parse(s) {
                Some(p) => p.map(Spec::Peer),
                None => TileCompression::parse(s).map(Spec::Fpack),
            };
            spec.map(|c| (s.to_string(), c)).map_err(anyhow::Error::msg)
        })
        .collect::<Result<_>>()
        .context("--codecs")
}

/// The codecs of `specs` that differ on this image (a float quantiser is the same codec as RICE
/// on integers; JPEG-LS at a NEAR that rounds to 0 is lossless JPEG-LS), each with its label, in
/// order; and a note naming those dropped (and the peers, which code integer images only).
pub fn distinct<'a>(
    specs: &'a [(String, Spec)],
    img: &ImageHdu,
    sigma: f64,
) -> (Vec<(String, &'a Spec)>, Option<String>) {
    let bitpix = img.bitpix();
    let mut out: Vec<(String, &Spec)> = Vec::new();
    let mut dropped = Vec::new();
    let mut peers = Vec::new();
    for (text, spec) in specs {
        if matches!(spec, Spec::Peer(_)) && bitpix < 0 {
            peers.push(text.as_str());
            continue;
        }
        let label = spec.label(img, sigma);
        if out.iter().any(|(l, _)| *l == label) {
            dropped.push(format!("{text} (= {label})"));
        } else {
            out.push((label, spec));
        }
    }
    let mut notes = Vec::new();
    if !dropped.is_empty() {
        notes.push(format!(
            "not run, the same codec as a row above on this image{}: {}",
            if bitpix > 0 {
                " (float quantisation does not apply to integers)"
            } else {
                ""
            },
            dropped.join(", ")
        ));
    }
    if !peers.is_empty() {
        notes.push(format!(
            "not run, JPEG-XL/JPEG-LS code integer images only: {}",
            peers.join(", ")
        ));
    }
    (out, (!notes.is_empty()).then(|| notes.join("; ")))
}

/// One codec's row: its result, or why it could not run on this image (the table goes on).
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Ran(ClassicResult),
    Failed { codec: String, failed: String },
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
        crate::files::input(file)?;
        let img = read_image(file, &sel)?;
        let sigma = image_sigma(&img);
        let mut results = Vec::new();
        let (codecs, note) = distinct(&specs, &img, sigma);
        for (label, spec) in codecs {
            // Peers write codestreams, not FITS files: nothing to keep.
            let keep = match (&args.keep, spec) {
                (Some(dir), Spec::Fpack(_)) => {
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
                _ => None,
            };
            results.push(match spec.run(&img, sigma, args.repeat, keep.as_deref()) {
                Ok(r) => Outcome::Ran(r),
                Err(e) => Outcome::Failed {
                    codec: label,
                    failed: e.kind.to_string(),
                },
            });
        }
        let report = FileReport {
            file: file.display().to_string(),
            shape: img.shape_string(),
            bitpix: img.bitpix(),
            sigma,
            results,
            note,
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

/// The line above a file's table: name, shape, BITPIX, σ.
pub fn table_title(file: &str, shape: &str, bitpix: i32, sigma: f64) -> String {
    format!(
        "{file}  {shape} (NAXIS1×NAXIS2)  BITPIX={bitpix}  σ={}{}",
        crate::fmt::sigma(sigma),
        if sigma > 0.0 {
            ""
        } else {
            "  (σ = 0: a constant image; errors in σ are 0 when exact, inf otherwise)"
        }
    )
}

fn print_table(r: &FileReport) {
    println!("{}", table_title(&r.file, &r.shape, r.bitpix, r.sigma));
    println!(
        "  {:<22} {:>10} {:>7} {:>7} {:>9} {:>11} {:>5} {:>9} {:>9}",
        "codec", "bytes", "bpp", "ratio", "RMSE/σ", "max|err|/σ", "mask", "enc MB/s", "dec MB/s"
    );
    let mut marked = false;
    for o in &r.results {
        match o {
            Outcome::Ran(c) => {
                marked |= [c.rmse_sigma, c.max_err_sigma]
                    .iter()
                    .any(|v| !v.is_finite() || v.abs() >= 1000.0);
                println!(
                    "  {:<22} {:>10} {:>7.3} {:>7.2} {} {} {:>5} {:>9.1} {:>9.1}",
                    c.codec,
                    c.bytes,
                    c.bits_per_pixel,
                    c.ratio,
                    crate::fmt::in_sigma(c.rmse_sigma, 9),
                    crate::fmt::in_sigma(c.max_err_sigma, 11),
                    if c.mask_preserved { "yes" } else { "NO" },
                    c.encode_mb_s,
                    c.decode_mb_s
                );
            }
            Outcome::Failed { codec, failed } => println!("  {codec:<22} failed: {failed}"),
        }
    }
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
