use anyhow::Result;
use skyzip_fits::{
    clipped_background, list_hdus, noise_bits, noise_stats, read_image, HduSelector,
};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// FITS files (plain or tile-compressed, e.g. fpack's .fits.fz).
    #[arg(required = true)]
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
}

pub fn run(args: Args) -> Result<()> {
    let mut reports = Vec::new();
    for file in &args.files {
        for h in list_hdus(file)? {
            let mut r = HduReport {
                file: file.display().to_string(),
                hdu: h.index,
                extname: h.extname.clone(),
                kind: h.kind.to_string(),
                shape: h
                    .axes
                    .iter()
                    .rev()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join("x"),
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
            }
            reports.push(r);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    let mut last = String::new();
    for r in &reports {
        if r.file != last {
            println!("{}", r.file);
            last = r.file.clone();
        }
        let name = r
            .extname
            .as_deref()
            .map(|n| format!(" '{n}'"))
            .unwrap_or_default();
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
        let f = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
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
            "      blank={} min={} max={} background={} sigma={} noise_bits={:.2}",
            r.blank_pixels.unwrap_or(0),
            f(r.min),
            f(r.max),
            f(r.background),
            f(r.sigma),
            r.noise_bits.unwrap_or(0.0)
        );
    }
    Ok(())
}
