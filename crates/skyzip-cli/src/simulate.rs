//! `skyzip simulate`: writes a labelled dataset as FITS shards (layout in the README).

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use skyzip_fits::{Card, Column, FitsWriter, Header, ImageHdu, Pixels, Table};
use skyzip_sim::ccd::{Band, Ccd, CcdConfig};
use skyzip_sim::gce::{Gce, GceConfig};
use skyzip_sim::noise::Noise;
use skyzip_sim::radio::{Radio, RadioClass, RadioConfig};
use skyzip_sim::toy::{BlobNoise, Blobs, Linear, LinearConfig};
use skyzip_sim::{generate, noise_rng, Sample, Simulator};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip simulate gce --n 1000 --seed 0 --out data/gce --preview gce.png
  skyzip simulate ccd --n 64 --out data/ccd --noise gaussian:0.1")]
pub struct Args {
    /// What to simulate: gce (gamma-ray Galactic Centre 64×64 counts), ccd (ZTF-like raw 16-bit
    /// stamps), radio (FIRST-like FRI/FRII galaxies), toy-linear, toy-linear-1d, toy-blobs.
    kind: String,
    /// Number of samples.
    #[arg(long)]
    n: usize,
    /// Dataset seed: sample i depends on (seed, i) alone.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Replace the observation by the clean image with this noise: gaussian:SIGMA,
    /// poisson:SCALE, masked:FRACTION or saltpepper:FRACTION (for denoising sets).
    #[arg(long)]
    noise: Option<String>,
    /// Write a PNG grid of the first 16 observations (asinh stretch).
    #[arg(long)]
    preview: Option<PathBuf>,
    /// Samples per FITS file; larger datasets are split into numbered shards.
    #[arg(long, default_value_t = 2000)]
    shard_size: usize,
    /// Also write the per-sample object catalogue (default for ccd and radio; gce has thousands
    /// of point sources per sample, so it is opt-in there).
    #[arg(long)]
    catalog: bool,
    /// gce: divide the PSF by its sum (Coogan's TMNRE variant) instead of the notebook's kernel.
    #[arg(long)]
    psf_normalised: bool,
    /// ccd/radio: image side in pixels (default 256 for ccd, 150 for radio).
    #[arg(long)]
    size: Option<usize>,
    /// ccd: fixed band g, r or i (default: drawn 0.45/0.45/0.10).
    #[arg(long)]
    band: Option<String>,
    /// ccd: dark sky only (no moonlight).
    #[arg(long)]
    dark: bool,
    /// ccd: upper end of the cosmic-ray rate per stamp (0.3; up to 5 to augment).
    #[arg(long, default_value_t = 0.3)]
    cr_rate_max: f64,
    /// radio: fixed class fri, frii or hybrid.
    #[arg(long)]
    class: Option<String>,
    /// toy-linear: ratio of successive mode amplitudes.
    #[arg(long, default_value_t = 0.7)]
    rho: f64,
    /// toy-linear: white noise σ_n.
    #[arg(long, default_value_t = 0.01)]
    sigma_n: f64,
    /// toy-linear: number of modes.
    #[arg(long, default_value_t = 16)]
    modes: usize,
    /// toy-blobs: gaussian:SIGMA or poisson:SCALE.
    #[arg(long, default_value = "gaussian:0.02")]
    blob_noise: String,
    /// Overwrite existing dataset files.
    #[arg(long)]
    force: bool,
}

/// A simulator with the header cards that record its configuration.
struct Built {
    sim: Box<dyn Simulator>,
    cards: Vec<Card>,
    bunit: &'static str,
    unsigned16: bool,
    catalog: bool,
}

fn build(a: &Args) -> Result<Built> {
    let size_card = |n: usize| Card::value("SIMSIZE", &n.to_string(), "image side (pixels)");
    Ok(match a.kind.as_str() {
        "gce" => Built {
            sim: Box::new(Gce::new(GceConfig {
                psf_normalised: a.psf_normalised,
            })),
            cards: vec![Card::value(
                "PSFNORM",
                if a.psf_normalised { "T" } else { "F" },
                "PSF kernel divided by its sum",
            )],
            bunit: "counts",
            unsigned16: false,
            catalog: a.catalog,
        },
        "ccd" => {
            let band = a.band.as_deref().map(Band::parse).transpose()?;
            let cfg = CcdConfig {
                size: a.size.unwrap_or(256),
                band,
                moon: !a.dark,
                sources: true,
                cr_rate_max: a.cr_rate_max,
                detector_seed: a.seed,
            };
            let cards = vec![
                size_card(cfg.size),
                Card::string("BAND", a.band.as_deref().unwrap_or("gri"), "band(s) drawn"),
                Card::value(
                    "MOON",
                    if cfg.moon { "T" } else { "F" },
                    "moonlit sky drawn",
                ),
                Card::value(
                    "CRMAX",
                    &cfg.cr_rate_max.to_string(),
                    "max cosmic rays per stamp",
                ),
                Card::value(
                    "DETSEED",
                    &cfg.detector_seed.to_string(),
                    "hot-pixel map seed",
                ),
            ];
            Built {
                sim: Box::new(Ccd::new(cfg)?),
                cards,
                bunit: "adu",
                unsigned16: a.noise.is_none(),
                catalog: true,
            }
        }
        "radio" => {
            let class = match a.class.as_deref() {
                None => None,
                Some("fri") => Some(RadioClass::Fri),
                Some("frii") => Some(RadioClass::Frii),
                Some("hybrid") => Some(RadioClass::Hybrid),
                Some(c) => bail!("--class {c}: expected fri, frii or hybrid"),
            };
            let cfg = RadioConfig {
                size: a.size.unwrap_or(150),
                class,
                ..Default::default()
            };
            let cards = vec![
                size_card(cfg.size),
                Card::string(
                    "CLASSES",
                    a.class.as_deref().unwrap_or("all"),
                    "classes drawn",
                ),
                Card::value("CDELT1", &(-0.0005).to_string(), "deg/pixel (1.8 arcsec)"),
                Card::value("CDELT2", "0.0005", "deg/pixel"),
                Card::value("BMAJ", "0.0015", "beam FWHM (deg)"),
                Card::value("BMIN", "0.0015", "beam FWHM (deg)"),
            ];
            Built {
                sim: Box::new(Radio::new(cfg)?),
                cards,
                bunit: "Jy/beam",
                unsigned16: false,
                catalog: true,
            }
        }
        "toy-linear" | "toy-linear-1d" => {
            let cfg = LinearConfig {
                one_d: a.kind == "toy-linear-1d",
                modes: a.modes,
                rho: a.rho,
                sigma_n: a.sigma_n,
            };
            let cards = vec![
                Card::value("MODES", &cfg.modes.to_string(), "orthonormal modes K"),
                Card::value("RHO", &cfg.rho.to_string(), "sigma_k = rho^(k-1)"),
                Card::value("SIGMAN", &cfg.sigma_n.to_string(), "white noise sigma"),
            ];
            Built {
                sim: Box::new(Linear::new(cfg)?),
                cards,
                bunit: "",
                unsigned16: false,
                catalog: false,
            }
        }
        "toy-blobs" => {
            let noise = match a.blob_noise.split_once(':') {
                Some(("gaussian", v)) => BlobNoise::Gaussian {
                    sigma: v.parse().context("--blob-noise gaussian:SIGMA")?,
                },
                Some(("poisson", v)) => BlobNoise::Poisson {
                    scale: v.parse().context("--blob-noise poisson:SCALE")?,
                },
                _ => bail!(
                    "--blob-noise {}: expected gaussian:SIGMA or poisson:SCALE",
                    a.blob_noise
                ),
            };
            Built {
                sim: Box::new(Blobs::new(noise)?),
                cards: vec![Card::string(
                    "BLOBNOIS",
                    &a.blob_noise,
                    "noise of the blobs",
                )],
                bunit: "",
                unsigned16: false,
                catalog: false,
            }
        }
        other => bail!(
            "unknown simulator '{other}' (available: {})",
            skyzip_sim::KINDS.join(", ")
        ),
    })
}

fn cube(
    samples: &[Sample],
    f: impl Fn(&Sample) -> &[f32],
    extname: &str,
    mut header: Header,
) -> ImageHdu {
    let (nx, ny) = (samples[0].nx, samples[0].ny);
    let data: Vec<f32> = samples.iter().flat_map(|s| f(s).iter().copied()).collect();
    header.set(Card::string("EXTNAME", extname, ""));
    ImageHdu::new(vec![nx, ny, samples.len()], Pixels::F32(data), header)
}

/// Path of shard `k` of `shards`.
fn shard_path(out: &Path, kind: &str, seed: u64, n: usize, k: usize, shards: usize) -> PathBuf {
    if shards == 1 {
        out.join(format!("{kind}-seed{seed}-n{n}.fits"))
    } else {
        out.join(format!(
            "{kind}-seed{seed}-n{n}-part{:04}of{shards:04}.fits",
            k + 1
        ))
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    if a.shard_size == 0 {
        bail!("--shard-size must be at least 1");
    }
    let noise = a
        .noise
        .as_deref()
        .map(Noise::parse)
        .transpose()
        .context("--noise")?;
    let built = build(&a)?;
    let sim = built.sim.as_ref();
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create directory", a.out.display()))?;
    let shards = a.n.div_ceil(a.shard_size);
    let paths: Vec<PathBuf> = (0..shards)
        .map(|k| shard_path(&a.out, sim.name(), a.seed, a.n, k, shards))
        .collect();
    if !a.force {
        if let Some(p) = paths.iter().find(|p| p.exists()) {
            bail!("{}: already exists (use --force to overwrite)", p.display());
        }
    }
    let bar = ProgressBar::new(a.n as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} samples, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("simulate {}", sim.name()));
    let (mut sim_secs, t_all) = (0.0, Instant::now());
    let mut preview: Vec<Sample> = Vec::new();
    for (k, path) in paths.iter().enumerate() {
        let start = k * a.shard_size;
        let count = a.shard_size.min(a.n - start);
        let t = Instant::now();
        let mut samples = Vec::with_capacity(count);
        for chunk in (start..start + count).step_by(256) {
            let m = 256.min(start + count - chunk);
            samples.extend(generate(sim, a.seed, chunk as u64, m));
            bar.inc(m as u64);
        }
        if let Some(noise) = noise {
            for (i, s) in samples.iter_mut().enumerate() {
                s.image = noise.apply(&s.clean, &mut noise_rng(a.seed, (start + i) as u64));
            }
        }
        sim_secs += t.elapsed().as_secs_f64();
        write_shard(&a, &built, path, &samples, start, k, shards)?;
        if preview.len() < 16 {
            preview.extend(samples.iter().take(16 - preview.len()).cloned());
        }
    }
    bar.finish_and_clear();
    for p in &paths {
        println!("{}", p.display());
    }
    println!(
        "{} {} samples: simulated in {:.2} s ({:.0} samples/s on {} threads), {:.2} s with writing",
        a.n,
        sim.name(),
        sim_secs,
        a.n as f64 / sim_secs,
        skyzip_sim::threads(),
        t_all.elapsed().as_secs_f64()
    );
    if let Some(png) = &a.preview {
        write_preview(png, &preview)?;
        println!("{}: preview of {} samples", png.display(), preview.len());
    }
    Ok(())
}

fn write_preview(png: &Path, samples: &[Sample]) -> Result<()> {
    // 1-D signals are shown as strips 16 rows high.
    let strips: Vec<Vec<f32>> = samples
        .iter()
        .map(|s| {
            if s.ny == 1 {
                s.image.iter().cycle().take(s.nx * 16).copied().collect()
            } else {
                s.image.clone()
            }
        })
        .collect();
    let tiles: Vec<skyzip_plot::Tile> = samples
        .iter()
        .zip(&strips)
        .map(|(s, d)| skyzip_plot::Tile {
            nx: s.nx,
            ny: if s.ny == 1 { 16 } else { s.ny },
            data: d,
        })
        .collect();
    skyzip_plot::image_grid(png, &tiles, 4, 192, skyzip_plot::Stretch::Asinh)?;
    Ok(())
}

fn write_shard(
    a: &Args,
    built: &Built,
    path: &Path,
    samples: &[Sample],
    start: usize,
    k: usize,
    shards: usize,
) -> Result<()> {
    let sim = built.sim.as_ref();
    let (nx, ny, n) = (samples[0].nx, samples[0].ny, samples.len());
    let mut primary = Header::default();
    primary.set(Card::string("SIMKIND", sim.name(), "skyzip simulator"));
    primary.set(Card::value(
        "SIMSEED",
        &a.seed.to_string(),
        "dataset seed; sample i = f(seed, i)",
    ));
    primary.set(Card::value(
        "NSAMPLE",
        &n.to_string(),
        "samples in this file (NAXIS3)",
    ));
    primary.set(Card::value(
        "FIRSTIDX",
        &start.to_string(),
        "dataset index of the first sample",
    ));
    primary.set(Card::value(
        "NTOTAL",
        &a.n.to_string(),
        "samples in the whole dataset",
    ));
    primary.set(Card::value(
        "SHARD",
        &(k + 1).to_string(),
        "this file's number",
    ));
    primary.set(Card::value(
        "NSHARDS",
        &shards.to_string(),
        "files in the dataset",
    ));
    for c in &built.cards {
        primary.set(c.clone());
    }
    primary.set(Card::string(
        "NOISE",
        a.noise.as_deref().unwrap_or("simulator"),
        "noise of the observation",
    ));
    if !built.bunit.is_empty() {
        primary.set(Card::string("BUNIT", built.bunit, ""));
    }
    primary.set(Card::new(
        "COMMENT Primary: observations, one plane per sample. CLEAN: noiseless.",
    ));
    primary.set(Card::new(
        "COMMENT Other image HDUs: label maps and masks (1 = true) per sample.",
    ));
    primary.set(Card::new(
        "COMMENT PARAMS: one row per sample; CATALOG: objects, column SAMPLE.",
    ));
    let mut w = FitsWriter::create(path, a.force)?;
    let image = if built.unsigned16 {
        primary.set(Card::value("BZERO", "32768", "unsigned 16-bit raw ADU"));
        primary.set(Card::value("BSCALE", "1", ""));
        let data: Vec<i16> = samples
            .iter()
            .flat_map(|s| {
                s.image
                    .iter()
                    .map(|&v| (v.clamp(0.0, 65535.0) as i32 - 32768) as i16)
            })
            .collect();
        ImageHdu::new(vec![nx, ny, n], Pixels::I16(data), primary)
    } else {
        let mut img = cube(samples, |s| &s.image, "IMAGE", primary);
        img.header.cards.retain(|c| c.keyword() != "EXTNAME");
        img.extname = None;
        img
    };
    w.write_image(&image, None)?;
    w.write_image(
        &cube(samples, |s| &s.clean, "CLEAN", Header::default()),
        None,
    )?;
    for name in samples[0].maps.keys() {
        let mut c = cube(
            samples,
            |s| &s.maps[name],
            &name.to_uppercase(),
            Header::default(),
        );
        // Label maps (segmentation ids) are stored as integers.
        if let Pixels::F32(v) = &c.pixels {
            if v.iter().all(|x| x.fract() == 0.0 && x.abs() < 2e9) {
                c.pixels = Pixels::I32(v.iter().map(|&x| x as i32).collect());
            }
        }
        w.write_image(&c, None)?;
    }
    for name in samples[0].masks.keys() {
        let data: Vec<u8> = samples
            .iter()
            .flat_map(|s| s.masks[name].iter().map(|&m| m as u8))
            .collect();
        let mut h = Header::default();
        h.set(Card::string(
            "EXTNAME",
            &format!("MASK_{}", name.to_uppercase()),
            "1 = true",
        ));
        w.write_image(&ImageHdu::new(vec![nx, ny, n], Pixels::U8(data), h), None)?;
    }
    let mut params = Table::default();
    params.columns.push((
        "INDEX".into(),
        Column::I64((start..start + n).map(|i| i as i64).collect()),
    ));
    for name in samples[0].params.keys() {
        params.columns.push((
            name.clone(),
            Column::F64(samples.iter().map(|s| s.params[name]).collect()),
        ));
    }
    w.write_table("PARAMS", &params)?;
    if built.catalog && !samples[0].catalog.columns.is_empty() {
        let mut cat = Table::default();
        let idx: Vec<i64> = samples
            .iter()
            .enumerate()
            .flat_map(|(i, s)| std::iter::repeat_n((start + i) as i64, s.catalog.rows.len()))
            .collect();
        cat.columns.push(("SAMPLE".into(), Column::I64(idx)));
        for (c, name) in samples[0].catalog.columns.iter().enumerate() {
            let v: Vec<f64> = samples
                .iter()
                .flat_map(|s| s.catalog.rows.iter().map(move |r| r[c]))
                .collect();
            cat.columns.push((name.clone(), Column::F64(v)));
        }
        w.write_table("CATALOG", &cat)?;
    }
    w.finish()?;
    Ok(())
}
