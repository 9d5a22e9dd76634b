//! `skyzip evaluate`: a trained run over a fresh test set → `evaluation.json` and plots;
//! `skyzip report gce`: the tables of `docs/results/gce.md` from committed evaluation JSON.

use anyhow::{bail, Context, Result};
use skyzip_nn::model::Task;
use skyzip_train::config::Experiment;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip evaluate --run runs/cnn-dm                     the config's test set (data.test)
  skyzip evaluate --run runs/unet --test 200 --out docs/results/gce/unet.json")]
pub struct EvaluateArgs {
    /// Run folder written by `skyzip train`.
    #[arg(long)]
    run: PathBuf,
    /// Test samples (default: the config's data.test.n).
    #[arg(long)]
    test: Option<usize>,
    /// Test seed (default: the config's data.test.seed, else the training seed + 1,000,003).
    #[arg(long)]
    seed: Option<u64>,
    /// Segmenters: the probability above which a pixel counts as a point source (the seed's
    /// 0.02).
    #[arg(long, default_value_t = 0.02)]
    cut: f64,
    /// Also write the JSON here (it always goes to RUN/evaluation.json).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// A trained run and the test set it is scored on.
pub struct RunTest {
    pub exp: Experiment,
    pub mcfg: skyzip_nn::model::ModelConfig,
    /// Test maps and their seed: --test/--seed, else the config's data.test, else the training
    /// seed + 1,000,003.
    pub n: usize,
    pub seed: u64,
}

/// Loads RUN/config.json and resolves the test set, naming the folder when it is not a run.
pub fn load_run(run: &Path, test: Option<usize>, seed: Option<u64>) -> Result<RunTest> {
    let cfg = run.join("config.json");
    if !cfg.exists() {
        bail!("{}: not a run folder (no config.json)", run.display());
    }
    let exp = Experiment::load(&cfg)?;
    let mcfg = exp.model_config()?;
    let (n, cfg_seed) = match (test, exp.data.test) {
        (Some(n), t) => (n, t.map(|t| t.seed)),
        (None, Some(t)) => (t.n, Some(t.seed)),
        (None, None) => bail!("--test N: the config has no data.test"),
    };
    let seed = seed.or(cfg_seed).unwrap_or(exp.seed + 1_000_003);
    Ok(RunTest { exp, mcfg, n, seed })
}

pub fn run_evaluate(a: EvaluateArgs) -> Result<()> {
    let RunTest { exp, mcfg, n, seed } = load_run(&a.run, a.test, a.seed)?;
    let device = skyzip_nn::device(&a.device).map_err(anyhow::Error::msg)?;
    if mcfg.task() == Task::Reconstruct && mcfg.noise().is_none() {
        let ev =
            skyzip_train::ae_eval::evaluate(&a.run, &exp, &mcfg, &device, seed, n, Some(&a.run))?;
        let q = |q: &skyzip_train::ae_eval::Quality| {
            format!(
                "MSE {:.3e}, SSIM {:.4}, MS-SSIM {:.4} ({} scales)",
                q.mse, q.ssim, q.ms_ssim, q.ms_ssim_levels
            )
        };
        println!(
            "{} test maps, code of {} numbers: {}",
            ev.test_items,
            ev.code_values,
            q(&ev.quality)
        );
        if let Some(c) = &ev.code_only {
            println!(
                "the decoder also sees {} encoder values per image (skips); with them zeroed, the \
                 code alone: {}",
                ev.side_channel_values,
                q(c)
            );
        }
        let mut v = serde_json::to_value(&ev)?;
        v["config"] = serde_json::to_value(&mcfg)?;
        if let Some(g) = skyzip_train::gen_eval::codes(&a.run, &exp, &mcfg, &device, seed, n)? {
            let c = crate::gencode::code(&g)?;
            if let Some(s) = &c.vae {
                println!(
                    "KL rate {:.4} bits/pixel ({} of {} latent groups active), negative ELBO {:.4} \
                     bits/pixel (discretised Gaussian, σ {:.4}{})",
                    s.kl_bpp,
                    s.active_groups,
                    s.kl_per_group.len(),
                    s.nelbo_bpp,
                    s.sigma,
                    if s.sigma_learned { ", learned" } else { " = √MSE" }
                );
            } else {
                println!(
                    "{} of {} codes used in training, index entropy {:.3} bits",
                    c.used_codes, c.codebook, c.index_entropy_bits
                );
            }
            for p in &c.points {
                println!(
                    "coded (step ×{}): {:.4} bits/pixel in bytes ({:.4} estimated), PSNR {:.2} dB, \
                     SSIM {:.4}; lossless with residuals {:.4} bits/pixel (MED baseline {:.4})",
                    p.step_factor, p.code_bpp, p.code_est_bpp, p.psnr, p.ssim, p.lossless_bpp, c.med_bpp
                );
            }
            v["coding"] = serde_json::to_value(&c)?;
        }
        if let Some(g) =
            skyzip_train::pixel_eval::codes(&a.run, &exp, &mcfg, &device, seed, n, &PIXEL_STEPS)?
        {
            let ex = a.run.join("pixel_examples.png");
            let c = crate::pixelcode::code(&g, 1.0, Some(&ex))?;
            let e = |e: &crate::pixelcode::Errors| {
                format!(
                    "RMSE/σ {:.3} (against the noiseless image {:.3})",
                    e.rmse_sigma, e.rmse_sigma_clean
                )
            };
            println!(
                "lossless on the same stamps: RICE {:.3} bits/pixel, HCOMPRESS {:.3}",
                c.rice_bpp, c.hcompress_lossless_bpp
            );
            for p in &c.points {
                println!(
                    "step ×{}: {:.4} bits/pixel in bytes ({:.4} estimated), {}{}; HCOMPRESS s={:.3}: \
                     {:.4} bits/pixel, {}",
                    p.step_factor,
                    p.bpp,
                    p.est_bpp,
                    e(&p.errors),
                    p.errors_counts_block
                        .as_ref()
                        .map(|b| format!(", with the counts block {}", e(b)))
                        .unwrap_or_default(),
                    p.hcompress.scale,
                    p.hcompress.bpp,
                    e(&p.hcompress.errors)
                );
            }
            let ph = &c.photometry;
            println!(
                "aperture flux recovered / true (median; {} stars, step ×{}): {}",
                ph.stars,
                ph.step_factor,
                ph.kinds.join(" | ")
            );
            for b in &ph.bins {
                println!(
                    "  S/N {}–{}: {} stars: {}",
                    b.snr_lo,
                    b.snr_hi.map(|h| h.to_string()).unwrap_or("∞".into()),
                    b.sources,
                    b.median_ratio
                        .iter()
                        .map(|r| format!("{r:.3}"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            v["pixel_coding"] = serde_json::to_value(&c)?;
        }
        if let Some(st) = skyzip_train::stack_eval::evaluate(&a.run, &exp, &mcfg, &device, seed, n)?
        {
            println!(
                "stacks of N noisy realisations: aperture flux recovered / true (median) for {}",
                st.kinds.join(" | ")
            );
            for l in &st.levels {
                let bins: Vec<String> = l
                    .bins
                    .iter()
                    .map(|b| {
                        format!(
                            "S/N ≥ {} ({}): {:.3} | {:.3}",
                            b.snr_lo, b.sources, b.median_ratio[0], b.median_ratio[1]
                        )
                    })
                    .collect();
                println!(
                    "  N = {}: noise rms {:.3e}, MSE against the noiseless map {:.3e}; {}",
                    l.n,
                    l.noise_rms,
                    l.mse_clean,
                    bins.join("; ")
                );
            }
            v["stacking"] = serde_json::to_value(&st)?;
        }
        return write_json(&a, &serde_json::to_string_pretty(&v)?);
    }
    if mcfg.task() == Task::Reconstruct {
        let ev =
            skyzip_train::denoise::evaluate(&a.run, &exp, &mcfg, &device, seed, n, Some(&a.run))?;
        for r in &ev.rows {
            println!(
                "{}: MSE noisy {:.5}, best filter ({}) {:.5}, dae {:.5} on {} test maps",
                r.noise, r.mse_noisy, r.filter_label, r.mse_filter, r.mse_dae, ev.test_items
            );
        }
        return write_json(&a, &serde_json::to_string_pretty(&ev)?);
    }
    let ev = skyzip_train::supervised::evaluate(&a.run, &exp, &mcfg, &device, seed, n, a.cut)?;
    for e in &ev.estimates {
        let p = a
            .run
            .join(format!("scatter_{}.png", e.parameter.replace('+', "_")));
        skyzip_plot::scatter_plot(
            &p,
            &format!(
                "{}: mean relative error {:.4} ({} test maps)",
                e.parameter, e.mean_relative_error, ev.test_items
            ),
            &format!("true {}", e.parameter),
            &format!("predicted {}", e.parameter),
            &e.pairs,
        )?;
        println!(
            "{}: mean relative error {:.4} on {} test maps ({})",
            e.parameter,
            e.mean_relative_error,
            ev.test_items,
            p.display()
        );
    }
    if let Some(s) = &ev.segmentation {
        let a_auc: Vec<f64> = s.per_image.iter().map(|i| i.auc_a).collect();
        let b_auc: Vec<f64> = s.per_image.iter().map(|i| i.auc_b).collect();
        let cat = a.run.join("catalogue.csv");
        let mut csv = String::from("image,x,y,pixels,flux\n");
        for (i, d) in &s.detections {
            csv.push_str(&format!(
                "{i},{:.3},{:.3},{},{:.6}\n",
                d.x, d.y, d.pixels, d.flux
            ));
        }
        std::fs::write(&cat, csv).with_context(|| format!("writing {}", cat.display()))?;
        println!(
            "{}: {} detections (x, y in pixels of each test map; flux in normalised units)",
            cat.display(),
            s.detections.len()
        );
        let p = a.run.join("auc_hist.png");
        skyzip_plot::histogram(
            &p,
            &format!(
                "per-image ROC AUC at cut {} ({} test maps)",
                s.cut, ev.test_items
            ),
            "AUC",
            &[
                ("A: all point-source pixels", &a_auc),
                ("B: the N brightest", &b_auc),
            ],
            40,
            (0.5, 1.0),
        )?;
        println!(
            "cut {}: A accuracy {:.3} ± {:.3}, AUC {:.3} ± {:.3}; B accuracy {:.3} ± {:.3}, AUC \
             {:.3} ± {:.3} ({} test maps, {})",
            s.cut,
            s.accuracy_a.mean,
            s.accuracy_a.std,
            s.auc_a.mean,
            s.auc_a.std,
            s.accuracy_b.mean,
            s.accuracy_b.std,
            s.auc_b.mean,
            s.auc_b.std,
            ev.test_items,
            p.display()
        );
    }
    if let Some(c) = &ev.classification {
        println!(
            "noise classes {}: accuracy {:.3} on {} test maps; confusion (rows true, columns \
             predicted): {:?}",
            c.classes.join(" | "),
            c.accuracy,
            ev.test_items,
            c.confusion
        );
    }
    println!("{} parameters, {} epochs", ev.parameters, ev.epochs);
    write_json(&a, &serde_json::to_string_pretty(&ev)?)
}

/// A pixel-ae's quantisation steps, in units of each code channel's σ.
const PIXEL_STEPS: [f64; 4] = [0.25, 0.5, 1.0, 2.0];

/// Writes the evaluation to RUN/evaluation.json and, with --out, there too.
fn write_json(a: &EvaluateArgs, text: &str) -> Result<()> {
    let p = a.run.join("evaluation.json");
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    if let Some(o) = &a.out {
        if let Some(d) = o.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(o, text).with_context(|| format!("writing {}", o.display()))?;
    }
    println!("{}", p.display());
    Ok(())
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip report gce docs/results/gce --out docs/results/gce.md
  skyzip report seeds docs/results/seeds --out docs/results/seeds.md")]
pub struct ReportArgs {
    /// Which report: gce (seed 003 on the Galactic Centre simulator) or seeds (the
    /// autoencoders of seeds 000–002).
    what: String,
    /// Folder of evaluation JSON files (written by `skyzip evaluate --out`).
    dir: PathBuf,
    /// Write the markdown here (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The seed's own numbers (seed 003's table), per parameter name.
const SEED_ESTIMATES: &[(&str, &str, f64)] = &[
    ("one output", "A_dm", 0.0807),
    ("two outputs", "A_dm", 0.1093),
    ("two outputs", "n_ps_gc+n_ps_disk", 0.0354),
    ("three outputs", "A_dm", 0.1175),
    ("three outputs", "n_ps_disk", 0.0453),
    ("three outputs", "n_ps_gc", 0.1364),
];

/// What the tables are, written above them.
const GCE_INTRO: &str = "# Seed 003 on the Galactic Centre simulator\n\n\
Seed 003's three experiments (CNN parameter estimation, U-Net point-source segmentation, \
denoising autoencoders) rebuilt in skyzip and run on skyzip's GCE simulator \
(`shared/specs/simulators.md` §1), each scored on a held-out test set drawn with another seed. \
Every row names the run's config (`configs/cpu/NAME.json`: the sizes two CPU cores finish; \
`configs/NAME.json` holds the seed-scale config of the same model), and gives the maps it \
was trained on, its epochs and the test maps. The seed's numbers come from its own table; its \
simulator was A. Coogan's, ours follows the same recipe, so the maps are alike but not the same, \
and where we trained on fewer maps for fewer epochs the comparison favours the seed. \
Plots beside this file: `NAME.scatter_PARAM.png` (predicted against true), \
`NAME.auc_hist.png` (per-image AUC), `NAME.denoise_examples_K.png` (clean, noisy, best \
classical filter, dae), `NAME.loss_curve.png`.\n\n\
Metrics. *Mean relative error* is the mean of |predicted − true|/true, as the seed reported it; \
A_dm is drawn from U(0, 1), where that mean is dominated by the maps with A_dm near 0, so the \
same mean over maps in the upper 90 % of the range, the median and the mean absolute error \
stand beside it. Segmentation is scored per image at the seed's probability cut 0.02: \
*approach A* takes every pixel with point-source flux above 0.8 counts (the simulator's masks, the student U-Net's targets) as a target (accuracy over all \
pixels, ROC AUC of the probabilities); *approach B* the N brightest true pixels, N the number \
predicted above the cut. The catalogue groups the pixels above the cut into 8-connected \
detections and matches them to the simulator's sources pixel by pixel: a source is *found* when \
its pixel is in a detection; a detection is *real* when it holds a source of ≥ 1 count. \
Denoising MSE is against the map before the added noise (the simulated observation, \
max-normalised and randomly rotated, as the seed's target was); the classical filter is the \
best Gaussian (σ 0.5–3 px) or median (3–9 px) on the run's validation maps.\n\n";

/// Seed 003's denoising MSEs, by noise model.
const SEED_DENOISE: &[(&str, f64)] = &[
    ("gaussian:0.2", 0.0011),
    ("poisson:1", 0.0012),
    ("masked:0.5", 0.0010),
    ("saltpepper:0.5", 0.0019),
];

fn load_all(dir: &Path) -> Result<Vec<(String, serde_json::Value)>> {
    let mut v = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let j: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}", f.display()))?;
        let stem = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        v.push((stem, j));
    }
    Ok(v)
}

pub fn run_report(a: ReportArgs) -> Result<()> {
    if a.what != "gce" && a.what != "seeds" {
        bail!("unknown report '{}' (gce, seeds)", a.what);
    }
    let all = load_all(&a.dir)?;
    if a.what == "seeds" {
        let md = crate::seeds_report::report(&all);
        return match &a.out {
            Some(o) => {
                let png = o.with_extension("rd.png");
                crate::seeds_report::rd_plot(&all, &png)?;
                std::fs::write(o, md).with_context(|| format!("writing {}", o.display()))?;
                println!("{}", png.display());
                println!("{}", o.display());
                Ok(())
            }
            None => {
                print!("{md}");
                Ok(())
            }
        };
    }
    let mut md = String::from(
        "<!-- generated by `skyzip report gce docs/results/gce --out docs/results/gce.md` \
         from the evaluation JSON beside it; do not edit by hand -->\n\n",
    );
    md.push_str(GCE_INTRO);
    md.push_str("## Parameter estimation (mean relative error on the test set)\n\n");
    md.push_str("| run | outputs | parameter | ours: mean relative error | seed | ours, true value in the upper 90 % of its range | median relative error | mean absolute error | model parameters | train maps | epochs | test maps |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (name, j) in &all {
        let Some(est) = j["estimates"].as_array() else {
            continue;
        };
        let outputs = match est.len() {
            1 => "one output",
            2 => "two outputs",
            _ => "three outputs",
        };
        for e in est {
            let p = e["parameter"].as_str().unwrap_or_default();
            let seed = SEED_ESTIMATES
                .iter()
                .find(|(o, q, _)| *o == outputs && *q == p)
                .map(|s| format!("{:.4}", s.2))
                .unwrap_or_else(|| "-".into());
            let num = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
            md.push_str(&format!(
                "| {name} | {outputs} | {p} | {:.4} | {seed} | {:.4} | {:.4} | {:.4} | {} | {} | {} | {} |\n",
                num("mean_relative_error"),
                num("mean_relative_error_upper90"),
                num("median_relative_error"),
                num("mean_absolute_error"),
                j["parameters"],
                j["training_items"],
                j["epochs"],
                j["test_items"],
            ));
        }
    }
    md.push_str("\n## Point-source segmentation (per-image mean ± std at the cut)\n\n");
    md.push_str("| run | cut | A accuracy | A AUC | B accuracy | B AUC | model parameters | train maps | epochs | test maps |\n|---|---|---|---|---|---|---|---|---|---|\n");
    md.push_str("| seed 003 | 0.02 | 0.80 ± 0.03 | 0.92 ± 0.01 | 0.94 ± 0.01 | 0.97 ± 0.01 | | 6592 | | 800 |\n");
    let ms = |v: &serde_json::Value| {
        format!(
            "{:.3} ± {:.3}",
            v["mean"].as_f64().unwrap_or(f64::NAN),
            v["std"].as_f64().unwrap_or(f64::NAN)
        )
    };
    for (name, j) in &all {
        let s = &j["segmentation"];
        if s.is_null() {
            continue;
        }
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s["cut"],
            ms(&s["accuracy_a"]),
            ms(&s["auc_a"]),
            ms(&s["accuracy_b"]),
            ms(&s["auc_b"]),
            j["parameters"],
            j["training_items"],
            j["epochs"],
            j["test_items"]
        ));
    }
    for (name, j) in &all {
        let Some(bins) = j["segmentation"]["catalogue"].as_array() else {
            continue;
        };
        md.push_str(&format!(
            "\n### {name}: the catalogue from the mask against the simulator's ({:.1} detections per map)\n\n\
             | true flux (counts) | sources | found | completeness | detections | real | purity |\n|---|---|---|---|---|---|---|\n",
            j["segmentation"]["detections_per_image"].as_f64().unwrap_or(0.0)
        ));
        for b in bins {
            let f = |k: &str| {
                b[k].as_f64()
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|| "-".into())
            };
            md.push_str(&format!(
                "| {}–{} | {} | {} | {} | {} | {} | {} |\n",
                b["lo"],
                b["hi"]
                    .as_f64()
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "∞".into()),
                b["sources"],
                b["found"],
                f("completeness"),
                b["detections"],
                b["real"],
                f("purity")
            ));
        }
    }
    md.push_str("\n## Denoising (MSE against the map before the added noise)\n\n");
    md.push_str("| run | noise | noisy input | best classical filter | dae | seed's dae | model parameters | train maps | epochs | test maps |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (name, j) in &all {
        let Some(rows) = j["rows"].as_array() else {
            continue;
        };
        for r in rows {
            let noise = r["noise"].as_str().unwrap_or_default();
            let seed = SEED_DENOISE
                .iter()
                .find(|(k, _)| noise.starts_with(k))
                .map(|s| format!("{:.4}", s.1))
                .unwrap_or_else(|| "-".into());
            md.push_str(&format!(
                "| {name} | {noise} | {:.5} | {:.5} ({}) | {:.5} | {seed} | {} | {} | {} | {} |\n",
                r["mse_noisy"].as_f64().unwrap_or(f64::NAN),
                r["mse_filter"].as_f64().unwrap_or(f64::NAN),
                r["filter_label"].as_str().unwrap_or_default(),
                r["mse_dae"].as_f64().unwrap_or(f64::NAN),
                j["parameters"],
                j["training_items"],
                j["epochs"],
                j["test_items"]
            ));
        }
    }
    for (name, j) in &all {
        let c = &j["classification"];
        let Some(classes) = c["classes"].as_array() else {
            continue;
        };
        md.push_str(&format!(
            "\n## Which noise? ({name}: accuracy {:.3} on {} test maps, {} train maps, {} epochs)\n\n| true \\ predicted |",
            c["accuracy"].as_f64().unwrap_or(f64::NAN),
            j["test_items"],
            j["training_items"],
            j["epochs"]
        ));
        for k in classes {
            md.push_str(&format!(" {} |", k.as_str().unwrap_or_default()));
        }
        md.push_str(&format!("\n|---|{}\n", "---|".repeat(classes.len())));
        for (k, row) in c["confusion"].as_array().into_iter().flatten().enumerate() {
            md.push_str(&format!("| {} |", classes[k].as_str().unwrap_or_default()));
            for v in row.as_array().into_iter().flatten() {
                md.push_str(&format!(" {v} |"));
            }
            md.push('\n');
        }
    }
    // Every plot kept beside the JSON, linked relative to where the report is written.
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&a.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pngs.sort();
    if !pngs.is_empty() {
        md.push_str("\n## Figures\n\n");
        let base = a
            .out
            .as_ref()
            .and_then(|o| o.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for p in pngs {
            let rel = p.strip_prefix(&base).unwrap_or(&p);
            let name = p.file_stem().unwrap_or_default().to_string_lossy();
            md.push_str(&format!("![{name}]({})\n\n", rel.display()));
        }
    }
    match &a.out {
        Some(o) => std::fs::write(o, md).with_context(|| format!("writing {}", o.display()))?,
        None => print!("{md}"),
    }
    Ok(())
}
