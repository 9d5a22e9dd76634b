use anyhow::{bail, Context, Result};
use skyzip_fits::{Card, FitsWriter, Header, ImageHdu, Pixels};
use skyzip_sim::gce::{Gce, GceConfig};
use skyzip_sim::noise::Noise;
use skyzip_sim::{generate, sample_rng, Sample, Simulator};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// What to simulate: gce (gamma-ray Galactic Centre, 64×64 counts maps).
    kind: String,
    /// Number of samples.
    #[arg(long)]
    n: usize,
    /// Dataset seed: sample i depends on (seed, i) alone.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (created if missing); writes KIND-seedS-nN.fits there.
    #[arg(long)]
    out: PathBuf,
    /// Replace the observation by the clean image with this noise: gaussian:SIGMA,
    /// poisson:SCALE, masked:FRACTION or saltpepper:FRACTION (for denoising sets).
    #[arg(long)]
    noise: Option<String>,
    /// gce: divide the PSF by its sum (Coogan's TMNRE variant) instead of the notebook's kernel.
    #[arg(long)]
    psf_normalised: bool,
    /// Overwrite an existing dataset file.
    #[arg(long)]
    force: bool,
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

pub fn run(a: Args) -> Result<()> {
    if a.n == 0 {
        bail!("--n must be at least 1");
    }
    let noise = a
        .noise
        .as_deref()
        .map(Noise::parse)
        .transpose()
        .context("--noise")?;
    let sim: Box<dyn Simulator> = match a.kind.as_str() {
        "gce" => Box::new(Gce::new(GceConfig {
            psf_normalised: a.psf_normalised,
        })),
        other => bail!("unknown simulator '{other}' (available: gce)"),
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create directory", a.out.display()))?;
    let path = a
        .out
        .join(format!("{}-seed{}-n{}.fits", sim.name(), a.seed, a.n));
    let t = Instant::now();
    let mut samples = generate(sim.as_ref(), a.seed, 0, a.n);
    if let Some(noise) = noise {
        for (i, s) in samples.iter_mut().enumerate() {
            // A separate stream from the simulator's, keyed by the same (seed, index).
            s.image = noise.apply(&s.clean, &mut sample_rng(a.seed ^ 0x6e6f697365, i as u64));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let mut primary = Header::default();
    primary.set(Card::string("SIMKIND", sim.name(), "skyzip simulator"));
    primary.set(Card::value(
        "SIMSEED",
        &a.seed.to_string(),
        "dataset seed; sample i = f(seed, i)",
    ));
    primary.set(Card::value("NSAMPLE", &a.n.to_string(), "samples (NAXIS3)"));
    primary.set(Card::value(
        "PSFNORM",
        if a.psf_normalised { "T" } else { "F" },
        "PSF kernel divided by its sum",
    ));
    primary.set(Card::string(
        "NOISE",
        a.noise.as_deref().unwrap_or("simulator"),
        "noise of the observation",
    ));
    primary.set(Card::string("BUNIT", "counts", ""));
    primary.set(Card::new(
        "COMMENT Primary: observations. CLEAN: noiseless (PSF-blurred) images.",
    ));
    primary.set(Card::new(
        "COMMENT PARAMS: one row per sample, columns named by PARAMn cards.",
    ));
    let mut w = FitsWriter::create(&path, a.force)?;
    w.write_image(&cube(&samples, |s| &s.image, "IMAGE", primary), None)?;
    w.write_image(
        &cube(&samples, |s| &s.clean, "CLEAN", Header::default()),
        None,
    )?;
    for name in samples[0].maps.keys() {
        w.write_image(
            &cube(
                &samples,
                |s| &s.maps[name],
                &name.to_uppercase(),
                Header::default(),
            ),
            None,
        )?;
    }
    for name in samples[0].masks.keys() {
        let data: Vec<u8> = samples
            .iter()
            .flat_map(|s| s.masks[name].iter().map(|&m| m as u8))
            .collect();
        let mut h = Header::default();
        h.set(Card::string(
            "EXTNAME",
            &name.to_uppercase(),
            "1 = point source flux > 0.8",
        ));
        w.write_image(
            &ImageHdu::new(vec![samples[0].nx, samples[0].ny, a.n], Pixels::U8(data), h),
            None,
        )?;
    }
    let names: Vec<&String> = samples[0].params.keys().collect();
    let mut h = Header::default();
    h.set(Card::string(
        "EXTNAME",
        "PARAMS",
        "sample parameters, one row per sample",
    ));
    for (i, n) in names.iter().enumerate() {
        h.set(Card::string(&format!("PARAM{}", i + 1), n, "column name"));
    }
    let data: Vec<f64> = samples
        .iter()
        .flat_map(|s| names.iter().map(|n| s.params[*n]))
        .collect();
    w.write_image(
        &ImageHdu::new(vec![names.len(), a.n], Pixels::F64(data), h),
        None,
    )?;
    w.finish()?;
    println!(
        "{}: {} {} samples in {:.2} s ({:.0} samples/s on {} threads)",
        path.display(),
        a.n,
        sim.name(),
        secs,
        a.n as f64 / secs,
        skyzip_sim::threads()
    );
    Ok(())
}
