//! `skyzip export` and `skyzip reconstruct`: trained models out of run folders and onto images.

use anyhow::{bail, Context, Result};
use skyzip_fits::{Card, HduSelector, ImageHdu, Pixels};
use skyzip_nn::model::ModelConfig;
use skyzip_train::checkpoint::{sidecar, write_export, ExportInfo, Part, EXPORT_FORMAT};
use skyzip_train::config::Experiment;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "Example:
  skyzip export --run runs/gce --part full --out gce.safetensors    writes gce.safetensors + gce.json")]
pub struct ExportArgs {
    /// Run folder written by `skyzip train`.
    #[arg(long)]
    run: PathBuf,
    /// encoder, decoder (mean and, for meanvar, variance decoders), full, or codec (a meanvar
    /// conv-ae as the codec's integer engine runs it: quantised after training, calibrated on
    /// the run's training stamps).
    #[arg(long, default_value = "full")]
    part: String,
    /// Which checkpoint: best, last or epoch-NNNN.
    #[arg(long, default_value = "best")]
    checkpoint: String,
    /// Output weights (safetensors); its config goes beside it as .json.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output.
    #[arg(long, alias = "overwrite")]
    force: bool,
    /// codec: where the model came from, recorded in it (default: the run folder).
    #[arg(long)]
    about: Option<String>,
}

pub fn run_export(a: ExportArgs) -> Result<()> {
    let a = &a;
    if a.part == "codec" {
        return export_codec(a);
    }
    let part = Part::parse(&a.part).map_err(anyhow::Error::msg)?;
    let exp = Experiment::load(&a.run.join("config.json"))
        .with_context(|| format!("{}: not a run folder", a.run.display()))?;
    let mcfg = exp.model_config()?;
    if mcfg.task() != skyzip_nn::model::Task::Reconstruct {
        bail!(
            "{}: export writes autoencoders; an estimator's or segmenter's weights are the run's              {}.safetensors, scored by `skyzip evaluate`",
            a.run.display(),
            a.checkpoint
        );
    }
    let src = a.run.join(format!("{}.safetensors", a.checkpoint));
    let device = skyzip_nn::device("cpu").map_err(anyhow::Error::msg)?;
    let model = skyzip_train::load_model(&mcfg, &src, Part::Full, &device)?;
    let side = export_outputs(a)?;
    let info = ExportInfo {
        format: EXPORT_FORMAT.into(),
        part: part.name().into(),
        model: exp.model.clone(),
        normalisation: exp.data.normalisation,
        run: a.run.display().to_string(),
        checkpoint: a.checkpoint.clone(),
        engine: None,
        calibration_stamps: None,
    };
    write_export(&model, &a.out, &info)?;
    println!(
        "{}: {} of {} ({}), config in {}",
        a.out.display(),
        part.name(),
        src.display(),
        mcfg_name(&mcfg),
        side.display()
    );
    Ok(())
}

/// The export's weights and sidecar paths, checked not to exist (unless --force), with the
/// output folder made; returns the sidecar's path.
fn export_outputs(a: &ExportArgs) -> Result<PathBuf> {
    let side = sidecar(&a.out);
    for p in [&a.out, &side] {
        if p.exists() && !a.force {
            bail!(
                "{}: output file exists already (--force to replace it)",
                p.display()
            );
        }
    }
    if let Some(d) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    Ok(side)
}

/// Stamps of the run's training data the integer engine calibrates its scales on.
const CALIBRATION_STAMPS: usize = 16;

/// `--part codec`: the run's weights as the codec's model: the integer engine's net
/// (post-training quantisation calibrated on the run's first training stamps), the learned
/// prior's integer tables for a rate-trained model, and the model's description, in one
/// safetensors file (format skyzip-codec-model/1); F.json beside it says where it came from.
fn export_codec(a: &ExportArgs) -> Result<()> {
    use skyzip_codec::engine::{FloatNet, IntNet, Map, NetShape};
    use skyzip_codec::predict::{model_file, ModelInfo};
    let exp = Experiment::load(&a.run.join("config.json"))
        .with_context(|| format!("{}: not a run folder", a.run.display()))?;
    let mcfg = exp.model_config()?;
    if mcfg.side_channel_values() > 0 {
        bail!(
            "{}: its decoder sees {} encoder values per image beside the code (U-Net skips), \
             which would carry the image around the bitstream",
            a.run.display(),
            mcfg.side_channel_values()
        );
    }
    let ModelConfig::ConvAe { net, .. } = mcfg.net() else {
        bail!("{}: --part codec needs a meanvar conv-ae", a.run.display());
    };
    if !mcfg.is_meanvar() {
        bail!("{}: --part codec needs a meanvar conv-ae", a.run.display());
    }
    let src = a.run.join(format!("{}.safetensors", a.checkpoint));
    let weights = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
    let float = FloatNet::from_safetensors(
        &weights,
        NetShape {
            width: net.width,
            stages: net.stages.clone(),
            latent: net.latent,
            shuffle: net.shuffle,
        },
    )?;
    // The first training stamps, normalised as in training.
    let mut cal = exp.clone();
    if let skyzip_train::config::DataSource::Simulator { n, .. } = &mut cal.data.source {
        *n = (*n).min(CALIBRATION_STAMPS);
    }
    let ds = skyzip_train::build_dataset(&cal)?;
    let tiles: Vec<Map<f32>> = (0..ds.len().min(CALIBRATION_STAMPS))
        .map(|i| Map {
            c: 1,
            h: ds.ny,
            w: ds.nx,
            data: ds.input(i).to_vec(),
        })
        .collect();
    let q = IntNet::calibrate(&float, &tiles)?;
    // A rate-trained model's prior: its cumulative network evaluated once, here, into integer
    // frequency tables (the codec reads the integers).
    let prior = if mcfg.rate() {
        let device = skyzip_nn::device("cpu").map_err(anyhow::Error::msg)?;
        let model = skyzip_train::load_model(&mcfg, &src, Part::Full, &device)?;
        let fp = model
            .prior
            .as_ref()
            .context("a rate-trained model without a prior")?;
        let layers: Vec<skyzip_codec::prior::LayerWeights> = fp
            .weights()
            .into_iter()
            .map(|l| skyzip_codec::prior::LayerWeights {
                matrix: l.matrix,
                bias: l.bias,
                factor: l.factor,
            })
            .collect();
        Some(skyzip_codec::prior::tables(
            &layers,
            &skyzip_nn::prior::widths(),
            fp.channels(),
        ))
    } else {
        None
    };
    let side = export_outputs(a)?;
    let about =
        format!(
        "{} ({} checkpoint), quantised by skyzip export --part codec, calibrated on {} training \
         stamps",
        a.about.clone().unwrap_or_else(|| a.run.display().to_string()),
        a.checkpoint,
        tiles.len()
    );
    let info = ModelInfo {
        normalisation: exp.data.normalisation,
        eps: mcfg.eps(),
        tunable: mcfg.tunable(),
        about,
    };
    let file = model_file(&q, &info, prior.as_deref());
    let sidecar_info = ExportInfo {
        format: EXPORT_FORMAT.into(),
        part: "codec".into(),
        model: exp.model.clone(),
        normalisation: exp.data.normalisation,
        run: a.run.display().to_string(),
        checkpoint: a.checkpoint.clone(),
        engine: Some(skyzip_codec::predict::MODEL_FORMAT.into()),
        calibration_stamps: Some(tiles.len()),
    };
    std::fs::write(&a.out, &file).with_context(|| format!("writing {}", a.out.display()))?;
    std::fs::write(&side, serde_json::to_string_pretty(&sidecar_info)?)
        .with_context(|| format!("writing {}", side.display()))?;
    let p = skyzip_codec::Predictor::from_bytes("export", &file)?;
    println!(
        "{}: codec model ({}, hash {}) of {}, calibrated on {} training stamps{}; provenance in {}",
        a.out.display(),
        skyzip_codec::predict::MODEL_FORMAT,
        p.hash,
        src.display(),
        tiles.len(),
        if prior.is_some() {
            ", with its prior's integer tables"
        } else {
            ""
        },
        side.display()
    );
    Ok(())
}

fn mcfg_name(m: &ModelConfig) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(String::from))
        .unwrap_or_default()
}

/// Reads an export's sidecar config.
pub fn read_export(weights: &Path) -> Result<(ExportInfo, ModelConfig)> {
    let side = sidecar(weights);
    let text = std::fs::read_to_string(&side).with_context(|| {
        format!(
            "{}: the model's config {} is missing (write both with skyzip export)",
            weights.display(),
            side.display()
        )
    })?;
    ExportInfo::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", side.display()))
}

#[derive(clap::Args)]
#[command(after_help = "Example:
  skyzip reconstruct --model gce.safetensors map.fits map.rec.fits --eta 4")]
pub struct ReconstructArgs {
    /// An export written by `skyzip export --part full` (F.safetensors with F.json beside it).
    #[arg(long)]
    model: PathBuf,
    /// Input FITS image.
    input: PathBuf,
    /// Output FITS: the reconstruction (input header kept) and, for meanvar, a SIGMA extension.
    output: PathBuf,
    /// Keep only the first K latent channels/units (tunable models).
    #[arg(long)]
    eta: Option<usize>,
    /// Which HDU: index or EXTNAME (default: the first image).
    #[arg(long)]
    hdu: Option<String>,
    /// Replace an existing output (never the input).
    #[arg(long, alias = "overwrite")]
    force: bool,
    /// Device: cpu (burn flex), or cuda / wgpu when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The input's cards that no longer describe float pixels written by us.
const DROPPED: &[&str] = &["BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM"];

pub fn run_reconstruct(a: ReconstructArgs) -> Result<()> {
    crate::files::input_output(&a.input, &a.output, a.force)?;
    let (info, mcfg) = read_export(&a.model)?;
    if info.part != "full" {
        bail!(
            "{}: holds only the {} (export --part full to reconstruct)",
            a.model.display(),
            info.part
        );
    }
    if let Some(k) = a.eta {
        if !mcfg.tunable() {
            bail!("--eta: {} is not a tunable model", a.model.display());
        }
        if k == 0 || k > mcfg.latent() {
            bail!("--eta {k}: must be 1 to {} for this model", mcfg.latent());
        }
    }
    let device = skyzip_nn::device(&a.device).map_err(anyhow::Error::msg)?;
    let model = skyzip_train::load_model(&mcfg, &a.model, Part::Full, &device)?;
    let sel = match &a.hdu {
        Some(s) => s.parse::<HduSelector>().unwrap_or(HduSelector::FirstImage),
        None => HduSelector::FirstImage,
    };
    let img = skyzip_fits::read_image(&a.input, &sel)?;
    let (nx, ny, planes) = (img.nx(), img.ny(), img.planes());
    if nx == 0 || ny == 0 {
        bail!("{}: the image is empty", a.input.display());
    }
    let mut mean = Vec::with_capacity(nx * ny * planes);
    let mut sigma = mcfg.is_meanvar().then(Vec::new);
    for p in 0..planes {
        let data: Vec<f32> = img.physical_plane(p).iter().map(|&v| v as f32).collect();
        let trained = skyzip_train::apply::Trained {
            model: &model,
            config: &mcfg,
            norm: info.normalisation,
            device: &device,
        };
        let r = skyzip_train::apply::reconstruct_image(&trained, &data, nx, ny, a.eta)
            .map_err(|e| anyhow::anyhow!("{}: {e}", a.input.display()))?;
        mean.extend(r.mean);
        if let (Some(s), Some(rs)) = (sigma.as_mut(), r.sigma) {
            s.extend(rs);
        }
    }
    let mut header = img.header.clone();
    header.cards.retain(|c| !DROPPED.contains(&c.keyword()));
    let eta = a.eta.map(|k| format!(", eta {k}")).unwrap_or_default();
    header.cards.push(Card::new(&format!(
        "HISTORY skyzip reconstruct: model {}{eta}",
        a.model.file_name().unwrap_or_default().to_string_lossy()
    )));
    let mut w = skyzip_fits::FitsWriter::create(&a.output, a.force)?;
    w.write_image(
        &ImageHdu::new(img.axes.clone(), Pixels::F32(mean), header),
        None,
    )?;
    if let Some(s) = sigma {
        let mut h = skyzip_fits::Header::default();
        h.set(Card::string(
            "EXTNAME",
            "SIGMA",
            "per-pixel sigma of the reconstruction",
        ));
        h.set(Card::string(
            "BUNIT",
            &img.header.string("BUNIT").unwrap_or_default(),
            "as the image",
        ));
        w.write_image(&ImageHdu::new(img.axes.clone(), Pixels::F32(s), h), None)?;
    }
    let out = w.finish()?;
    println!(
        "{}: {} reconstructed by {}{}",
        out.display(),
        crate::fmt::shape(&[nx, ny, planes]),
        a.model.display(),
        if mcfg.is_meanvar() {
            " (+ SIGMA HDU)"
        } else {
            ""
        }
    );
    Ok(())
}
