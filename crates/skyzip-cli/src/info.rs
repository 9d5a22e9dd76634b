use anyhow::{bail, Result};
use skyzip_codec::CodedHdu;
use skyzip_fits::{
    clipped_background, list_hdus, noise_bits, noise_stats, read_header, read_image, HduSelector,
};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip info frame.fits frame.fits.fz frame.sz.fits     one report per file; bad files named, the rest go on
  skyzip info *.fits --json")]
pub struct Args {
    /// FITS files: plain, tile-compressed (fpack's .fits.fz) or written by skyzip compress.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct HduReport {
    file: String,
    hdu: usize,
    extname: Option<String>,
    kind: String,
    shape: String,
    bitpix: i32,
    bzero: Option<f64>,
    bscale: Option<f64>,
    blank_pixels: Option<usize>,
    min: Option<f64>,
    max: Option<f64>,
    background: Option<f64>,
    sigma: Option<f64>,
    /// log2(σ·√12) with σ in stored units: bits/pixel the noise makes incompressible.
    noise_bits: Option<f64>,
    compression: Option<String>,
    /// For HDUs holding skyzip tiles: how the image was coded.
    #[serde(skip_serializing_if = "Option::is_none")]
    skyzip: Option<SkyzipReport>,
}

#[derive(serde::Serialize)]
struct SkyzipReport {
    shape: String,
    bitpix: i32,
    mode: String,
    max_error_sigma: f64,
    /// The RMSE mode: its target and the decoded RMSE the encoder measured (σ), its step.
    #[serde(skip_serializing_if = "Option::is_none")]
    rmse_target_sigma: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rmse_sigma: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<i64>,
    q: f64,
    model: String,
    model_hash: String,
    tile: usize,
    tiles: usize,
    exact_tiles: usize,
    tile_bytes: usize,
    /// Uncompressed pixel bytes / coded tile bytes.
    ratio: f64,
}

fn skyzip_report(file: &Path, index: usize) -> Result<Option<SkyzipReport>> {
    let h = read_header(file, index)?;
    if !skyzip_codec::codec::is_coded(&h) {
        return Ok(None);
    }
    let c = CodedHdu::parse(&h, index, file)?;
    let t = skyzip_fits::read_table_at(file, index)?;
    let count = |name: &str| match t.column(name) {
        Some(skyzip_fits::Column::Bytes(rows)) => (
            rows.iter().filter(|r| !r.is_empty()).count(),
            rows.iter().map(Vec::len).sum::<usize>(),
        ),
        _ => (0, 0),
    };
    let (_, qbytes) = count("COMPRESSED_DATA");
    let (exact, xbytes) = count("EXACT_DATA");
    let raw = c.npix() * (c.bitpix.unsigned_abs() as usize / 8);
    Ok(Some(SkyzipReport {
        shape: crate::fmt::shape(&c.axes),
        bitpix: c.bitpix,
        mode: c.mode.clone(),
        max_error_sigma: c.max_error,
        rmse_target_sigma: c.step.map(|_| c.rmse_target),
        rmse_sigma: c.step.map(|_| c.rmse),
        step: c.step,
        q: c.q,
        model: c.model_name.clone(),
        model_hash: c.model_hash.clone(),
        tile: c.tile,
        tiles: t.rows(),
        exact_tiles: exact,
        tile_bytes: qbytes + xbytes,
        ratio: raw as f64 / (qbytes + xbytes).max(1) as f64,
    }))
}

fn file_reports(file: &Path) -> Result<Vec<HduReport>> {
    crate::files::input(file)?;
    let mut reports = Vec::new();
    for h in list_hdus(file)? {
        let mut r = HduReport {
            file: file.display().to_string(),
            hdu: h.index,
            extname: h.extname.clone(),
            kind: h.kind.to_string(),
            shape: skyzip_fits::fits_shape(&h.axes),
            bitpix: h.bitpix,
            bzero: None,
            bscale: None,
            blank_pixels: None,
            min: None,
            max: None,
            background: None,
            sigma: None,
            noise_bits: None,
            compression: None,
            skyzip: None,
        };
        if h.has_image() {
            let img = read_image(file, &HduSelector::Index(h.index))?;
            let phys = img.physical();
            let st = noise_stats(&phys, img.nx(), img.ny() * img.planes());
            let (bg, _) = clipped_background(&phys, 3.0, 10);
            r.bzero = Some(img.bzero);
            r.bscale = Some(img.bscale);
            r.blank_pixels = Some(img.blank_count());
            r.min = Some(st.min);
            r.max = Some(st.max);
            r.background = Some(bg);
            r.sigma = Some(st.sigma());
            r.noise_bits = Some(noise_bits(st.sigma() / img.bscale.abs()));
            r.compression = img.compression.clone();
        } else if h.kind == "binary table" {
            r.skyzip = skyzip_report(file, h.index)?;
            if r.skyzip.is_some() {
                r.kind = "skyzip compressed image".into();
                r.compression = Some(skyzip_codec::codec::CMPTYPE.into());
            }
        }
        reports.push(r);
    }
    Ok(reports)
}

pub fn run(args: Args) -> Result<()> {
    if let [one] = args.files.as_slice() {
        let r = file_reports(one)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            print_file(&r);
        }
        return Ok(());
    }
    let mut reports = Vec::new();
    let mut failed = 0;
    for file in &args.files {
        match file_reports(file) {
            Ok(r) => {
                if !args.json {
                    print_file(&r);
                }
                reports.extend(r);
            }
            Err(e) => {
                // Each bad file is named and the others are still reported.
                eprintln!("skyzip: error: {e:#}");
                failed += 1;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if failed > 0 {
        bail!("{failed} of {} files could not be read", args.files.len());
    }
    Ok(())
}

fn print_file(reports: &[HduReport]) {
    let Some(first) = reports.first() else {
        return;
    };
    println!("{}", first.file);
    for r in reports {
        let name = r
            .extname
            .as_deref()
            .map(|n| format!(" '{n}'"))
            .unwrap_or_default();
        if let Some(z) = &r.skyzip {
            println!(
                "  HDU {}{name}: skyzip compressed image {} BITPIX={} ({} tiles of {}², {} of \
                 them bit-exact floats)",
                r.hdu, z.shape, z.bitpix, z.tiles, z.tile, z.exact_tiles
            );
            let mode = if z.mode == "max-error" {
                format!("max-error {} σ", z.max_error_sigma)
            } else if let (Some(t), Some(r), Some(s)) = (z.rmse_target_sigma, z.rmse_sigma, z.step)
            {
                format!("rmse ≤ {t} σ (decoded {r:.4} σ, step {s}, no per-pixel bound)")
            } else if z.bitpix < 0 && z.q == 0.0 {
                "lossless, floats bit-exact (q = 0)".into()
            } else if z.bitpix < 0 {
                format!("lossless after quantisation at σ/{}", z.q)
            } else {
                "lossless".into()
            };
            println!(
                "      mode {mode}  model {} (hash {})  tiles {} bytes  ratio {:.3}",
                z.model, z.model_hash, z.tile_bytes, z.ratio
            );
            continue;
        }
        if r.sigma.is_none() {
            println!(
                "  HDU {}{name}: {} {}",
                r.hdu,
                r.kind,
                if r.shape.is_empty() {
                    "(no data)".into()
                } else {
                    r.shape.clone()
                }
            );
            continue;
        }
        let f = |v: Option<f64>| v.map(crate::fmt::sigma).unwrap_or_default();
        println!(
            "  HDU {}{name}: {} {} BITPIX={} BZERO={} BSCALE={}{}",
            r.hdu,
            r.kind,
            r.shape,
            r.bitpix,
            r.bzero.unwrap_or(0.0),
            r.bscale.unwrap_or(1.0),
            r.compression
                .as_deref()
                .map(|c| format!(" compression={c}"))
                .unwrap_or_default()
        );
        println!(
            "      blank={} min={} max={} background={} σ={} noise_bits={:.2}",
            r.blank_pixels.unwrap_or(0),
            f(r.min),
            f(r.max),
            f(r.background),
            f(r.sigma),
            r.noise_bits.unwrap_or(0.0)
        );
    }
}
