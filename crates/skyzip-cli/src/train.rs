//! `skyzip train`, `skyzip models`, `skyzip bench train`.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use skyzip_nn::burn::optim::{AdamConfig, GradientsParams};
use skyzip_nn::conv_ae::ConvAeConfig;
use skyzip_nn::model::{Model, ModelConfig, REGISTRY};
use skyzip_train::config::Experiment;
use skyzip_train::TrainOptions;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip train --config configs/conv-ae-blobs-smoke.json --out runs/smoke
  skyzip train --config configs/conv-tunable-gce.json --out runs/gce --resume")]
pub struct TrainArgs {
    /// Experiment config (JSON; see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Run folder for config.json, metrics, checkpoints and plots.
    #[arg(long)]
    out: PathBuf,
    /// Device: cpu (burn flex), or cuda / wgpu when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Continue the run in --out from its last completed epoch (same config; epochs may grow).
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Delete the run already in --out and train from scratch.
    #[arg(long)]
    force: bool,
}

/// The files a run folder may hold (what --force removes).
const RUN_FILES: &[&str] = &[
    "config.json",
    "metrics.csv",
    "metrics.json",
    "summary.json",
    "last.safetensors",
    "best.safetensors",
    "loss_curve.png",
    "eta_curve.csv",
    "eta_curve.png",
];

fn clear_run(out: &std::path::Path) -> Result<()> {
    for f in RUN_FILES {
        let p = out.join(f);
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    for d in ["state", "state.old", "state.tmp"] {
        let p = out.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with("epoch-") && n.ends_with(".safetensors") {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    Ok(())
}

pub fn run_train(a: TrainArgs) -> Result<()> {
    let exp = Experiment::load(&a.config)?;
    let device = skyzip_nn::device(&a.device).map_err(anyhow::Error::msg)?;
    let has_run = a.out.join("config.json").exists() || a.out.join("last.safetensors").exists();
    if has_run && !a.resume {
        if !a.force {
            bail!(
                "{}: already holds a run (--resume to continue it, --force to replace it)",
                a.out.display()
            );
        }
        clear_run(&a.out)?;
    }
    // First Ctrl-C: finish the batch, save the weights, stop. Second: leave at once.
    let stop = crate::interrupt::graceful_stop();
    // The bar counts completed epochs; the message names the one running.
    let bar = ProgressBar::new(exp.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} epochs done  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t = Instant::now();
    let (mut seen, mut last_t) = (0usize, Instant::now());
    let opts = TrainOptions {
        resume: a.resume,
        stop: Some(stop),
    };
    let batch = exp.batch_size;
    let report = skyzip_train::train(&exp, &a.out, &device, &opts, |epoch, b, nb, loss| {
        seen += batch;
        let dt = last_t.elapsed().as_secs_f64();
        let rate = if dt > 0.0 { seen as f64 / dt } else { 0.0 };
        if b == nb {
            seen = 0;
            last_t = Instant::now();
        }
        let (pos, msg) = progress(epoch, exp.epochs, b, nb, loss, rate);
        bar.set_position(pos);
        bar.set_message(msg);
    })
    .with_context(|| format!("training {}", a.config.display()))?;
    bar.finish_and_clear();
    for m in &report.history {
        let extra = match (m.val.nll, m.val.z2) {
            (Some(n), Some(z)) => format!("  nll {n:.4}  <(x-mu)^2/s^2> {z:.3}"),
            _ => String::new(),
        };
        println!(
            "epoch {:4}  train {:.6}  val {:.6} (mse {:.3e}){extra}  {:.1} s  {:.0} samples/s",
            m.epoch, m.train_loss, m.val.loss, m.val.mse, m.seconds, m.samples_per_s
        );
    }
    if let Some((e, b, nb)) = report.interrupted {
        println!(
            "{}: interrupted in epoch {e} after {b}/{nb} batches; last.safetensors holds the current \
             weights, --resume continues from the end of epoch {}",
            a.out.display(),
            e - 1
        );
        return Ok(());
    }
    if !report.eta_curve.is_empty() {
        println!("held-out error over the latent prefix (eta_curve.csv, eta_curve.png):");
        for (k, s) in &report.eta_curve {
            println!("  eta {k:3}  mse {:.6e}  loss {:.6}", s.mse, s.loss);
        }
    }
    println!(
        "{}: {} epochs in {:.1} s (metrics.csv, loss_curve.png, best/last.safetensors, state/)",
        a.out.display(),
        report.history.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The bar's position (epochs completed, counting from 1 as the summary does) and message while
/// batch `b` of `nb` of epoch `epoch` runs.
fn progress(
    epoch: usize,
    epochs: usize,
    b: usize,
    nb: usize,
    loss: f64,
    rate: f64,
) -> (u64, String) {
    (
        (epoch - 1 + (b == nb) as usize) as u64,
        format!("epoch {epoch}/{epochs}: batch {b}/{nb} loss {loss:.5} ({rate:.0} samples/s)"),
    )
}

pub fn run_models() -> Result<()> {
    for (name, what, params) in REGISTRY {
        println!("{name}\n    {what}\n    parameters: {params}");
    }
    println!(
        "\ncodec models bundled in this binary (compress --model NAME; `default`, `rate` and \
         `fast` name the newest of each; older ones stay to decode their files):"
    );
    for name in skyzip_codec::predict::bundled_all() {
        let p = skyzip_codec::Predictor::load(name)?;
        let alias: Vec<&str> = ["default", "rate", "fast"]
            .into_iter()
            .filter(|a| skyzip_codec::predict::resolve(a) == Some(name))
            .collect();
        println!(
            "{name}{}\n    hash {}, {} latent channels{}{}\n    {}",
            if alias.is_empty() {
                String::new()
            } else {
                format!(" (= {})", alias.join(", "))
            },
            p.hash,
            p.latent_channels(),
            if p.prior().is_some() {
                ", learned factorized prior"
            } else {
                ""
            },
            if p.tunable() { ", tunable (--eta)" } else { "" },
            p.info().about
        );
    }
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip bench train --steps 20
  skyzip bench codec frame.fits --max-error 1        skyzip and RICE, MB/s and the ratio
  RAYON_NUM_THREADS=1 skyzip bench codec frame.fits  one core")]
pub struct BenchArgs {
    /// What to benchmark: train (the reference conv-AE training step) or codec (skyzip's
    /// encode and decode speed, lossless and lossy, beside RICE's on the same image).
    what: String,
    /// codec: FITS images (the first image HDU of each; none: the bundled sample frame).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// train: timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// codec: timed repeats per codec (the median is printed).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// codec: skyzip's model.
    #[arg(long, default_value = "default")]
    model: String,
    /// codec: the lossy mode's max error in σ.
    #[arg(long, default_value_t = 1.0)]
    max_error: f64,
    /// codec: print JSON.
    #[arg(long)]
    json: bool,
}

/// Training steps/s of the reference net (batch 16×1×64×64; conv 1→32 s1, 32→64 s2, 64→64 s2,
/// 64→8 s1; convT 8→64, 64→32; conv 32→1; MSE; Adam), as in the training issue.
pub fn run_bench(a: BenchArgs) -> Result<()> {
    if a.what == "codec" {
        return crate::bench::run_codec_bench(&crate::bench::CodecBench {
            files: a.files,
            repeat: a.repeat,
            model: a.model,
            max_error: a.max_error,
            json: a.json,
        });
    }
    if a.what != "train" {
        bail!("unknown benchmark '{}' (train, codec)", a.what);
    }
    let device = skyzip_nn::device(&a.device)
        .map_err(anyhow::Error::msg)?
        .autodiff();
    device.seed(0);
    let cfg = ModelConfig::ConvAe {
        net: ConvAeConfig::default(),
        tunable: false,
        prefixes: None,
    };
    let mut model = cfg.init(&device);
    let mut opt = AdamConfig::new().init();
    let data: Vec<f32> = (0..16 * 64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let x = skyzip_nn::image_tensor(&data, 16, 64, 64, &device);
    let mut step = |model: Model| {
        let loss = skyzip_nn::loss::mse(model.reconstruct(x.clone(), None), x.clone());
        let l = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (opt.step(1e-3, model, grads), l)
    };
    for _ in 0..2 {
        model = step(model).0;
    }
    let t = Instant::now();
    let mut last = 0.0;
    for _ in 0..a.steps {
        let (m, l) = step(model);
        model = m;
        last = l;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "reference conv-AE training step, batch 16x1x64x64, {} ({} rayon threads): {:.2} steps/s ({:.1} ms/step, {} steps, final loss {:.5})",
        a.device,
        skyzip_sim::threads(),
        a.steps as f64 / s,
        1e3 * s / a.steps as f64,
        a.steps,
        last
    );
    println!("reference points on a 2-core machine: burn flex 2.6-3.8 steps/s, PyTorch CPU 10.8");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_counts_epochs_as_the_summary_does() {
        let (pos, msg) = super::progress(1, 3, 4, 10, 0.5, 100.0);
        assert_eq!(pos, 0, "no epoch completed yet");
        assert!(msg.starts_with("epoch 1/3"), "{msg}");
        assert_eq!(super::progress(3, 3, 10, 10, 0.5, 100.0).0, 3);
    }
}
