//! `skyzip train`, `skyzip models`, `skyzip bench train`.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use skyzip_nn::burn::optim::{AdamConfig, GradientsParams};
use skyzip_nn::conv_ae::ConvAeConfig;
use skyzip_nn::model::REGISTRY;
use skyzip_train::config::Experiment;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Experiment config (JSON; see configs/).
    #[arg(long)]
    config: PathBuf,
    /// Run folder for config.json, metrics.csv and the checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// Device: cpu (burn flex), or cuda / wgpu when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Train into a run folder that already has a model.
    #[arg(long)]
    force: bool,
}

pub fn run_train(a: TrainArgs) -> Result<()> {
    let exp = Experiment::load(&a.config)?;
    let device = skyzip_nn::device(&a.device).map_err(anyhow::Error::msg)?;
    if a.out.join("last.safetensors").exists() && !a.force {
        bail!(
            "{}: already holds a trained model (use --force to train over it)",
            a.out.display()
        );
    }
    let bar = ProgressBar::new(exp.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {pos}/{len} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let t = Instant::now();
    let history = skyzip_train::train(&exp, &a.out, &device, |epoch, b, nb, loss| {
        bar.set_position(epoch as u64 - 1);
        bar.set_message(format!("batch {b}/{nb} loss {loss:.5}"));
    })
    .with_context(|| format!("training {}", a.config.display()))?;
    bar.finish_and_clear();
    for m in &history {
        println!(
            "epoch {:4}  train {:.6}  val {:.6}  {:.1} s  {:.0} samples/s",
            m.epoch, m.train_loss, m.val_loss, m.seconds, m.samples_per_s
        );
    }
    println!(
        "{}: {} epochs in {:.1} s (metrics.csv, best.safetensors, last.safetensors)",
        a.out.display(),
        history.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn run_models() -> Result<()> {
    for (name, what, params) in REGISTRY {
        println!("{name}\n    {what}\n    parameters: {params}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to benchmark: train (the reference conv-AE training step).
    what: String,
    /// Timed steps (after 2 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Training steps/s of the reference net (batch 16×1×64×64; conv 1→32 s1, 32→64 s2, 64→64 s2,
/// 64→8 s1; convT 8→64, 64→32; conv 32→1; MSE; Adam), as in the training issue.
pub fn run_bench(a: BenchArgs) -> Result<()> {
    if a.what != "train" {
        bail!("unknown benchmark '{}' (train)", a.what);
    }
    let device = skyzip_nn::device(&a.device)
        .map_err(anyhow::Error::msg)?
        .autodiff();
    device.seed(0);
    let mut model = ConvAeConfig::default().init(&device);
    let mut opt = AdamConfig::new().init();
    let data: Vec<f32> = (0..16 * 64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let x = skyzip_nn::image_tensor(&data, 16, 64, 64, &device);
    let mut step = |model: skyzip_nn::conv_ae::ConvAe| {
        let loss = skyzip_nn::loss::mse(model.forward(x.clone()), x.clone());
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
