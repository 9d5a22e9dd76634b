//! `skyzip latents`: a trained autoencoder's codes of a test set as 2-D maps (PCA and t-SNE),
//! coloured by a simulator label, with the coordinates as CSV.

use anyhow::{Context, Result};
use skyzip_plot::Colouring;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  skyzip latents --run runs/radio-unet-ae --plot map.png                coloured by class (FRI/FRII)
  skyzip latents --run runs/conv-gce --color A_dm --test 500 --plot gce-map.png

Writes PLOT (t-SNE), PLOT with .pca.png (the first two principal components) and PLOT with
.csv (item, pca1, pca2, tsne1, tsne2 and every label of the test set).")]
pub struct LatentsArgs {
    /// Run folder written by `skyzip train` (an autoencoder).
    #[arg(long)]
    run: PathBuf,
    /// The PNG to write (t-SNE map).
    #[arg(long)]
    plot: PathBuf,
    /// The label or parameter that colours the points (default: class if the data has one,
    /// else the first parameter).
    #[arg(long)]
    color: Option<String>,
    /// Test maps (default: the config's data.test.n).
    #[arg(long)]
    test: Option<usize>,
    /// Test seed (default: the config's data.test.seed, else the training seed + 1,000,003).
    #[arg(long)]
    seed: Option<u64>,
    /// t-SNE perplexity (lowered for small sets).
    #[arg(long, default_value_t = 30.0)]
    perplexity: f64,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Class names of the simulators' categorical labels.
fn class_names(label: &str, values: &[f64]) -> Option<(Vec<usize>, Vec<String>)> {
    let ints = values
        .iter()
        .all(|v| v.is_finite() && v.fract() == 0.0 && (0.0..16.0).contains(v));
    if !ints {
        return None;
    }
    let mut seen: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    seen.sort_unstable();
    seen.dedup();
    let name = |v: i64| match (label, v) {
        ("class", 1) => "FRI".to_string(),
        ("class", 2) => "FRII".to_string(),
        ("class", 3) => "hybrid".to_string(),
        _ => format!("{label} = {v}"),
    };
    let cls = values
        .iter()
        .map(|&v| seen.iter().position(|&s| s == v as i64).unwrap_or(0))
        .collect();
    Some((cls, seen.into_iter().map(name).collect()))
}

pub fn run(a: LatentsArgs) -> Result<()> {
    let crate::evaluate::RunTest { exp, mcfg, n, seed } =
        crate::evaluate::load_run(&a.run, a.test, a.seed)?;
    let device = skyzip_nn::device(&a.device).map_err(anyhow::Error::msg)?;
    let m = skyzip_train::latents::latent_map(&a.run, &exp, &mcfg, &device, seed, n, a.perplexity)?;
    let pick = match &a.color {
        Some(c) => Some(
            m.labels
                .iter()
                .find(|(name, _)| name == c)
                .with_context(|| {
                    let names: Vec<&str> = m.labels.iter().map(|l| l.0.as_str()).collect();
                    format!(
                        "--color {c}: the test set has no such label ({})",
                        names.join(", ")
                    )
                })?,
        ),
        None => m
            .labels
            .iter()
            .find(|(n, _)| n == "class")
            .or_else(|| m.labels.first()),
    };
    let classes = pick.and_then(|(name, v)| class_names(name, v));
    let none: Vec<usize> = vec![0; m.items];
    let all = vec!["all test maps".to_string()];
    let colouring = match (pick, &classes) {
        (Some(_), Some((cls, names))) => Colouring::Classes(cls, names),
        (Some((name, v)), None) => Colouring::Values(v, name),
        (None, _) => Colouring::Classes(&none, &all),
    };
    let model = mcfg.name();
    let pts = |v: &[[f64; 2]]| v.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>();
    skyzip_plot::embedding_plot(
        &a.plot,
        &format!(
            "{model}: t-SNE of {} test codes ({} numbers each)",
            m.items, m.code_dims
        ),
        "t-SNE 1",
        "t-SNE 2",
        &pts(&m.tsne),
        &colouring,
    )?;
    let pca_png = a.plot.with_extension("pca.png");
    skyzip_plot::embedding_plot(
        &pca_png,
        &format!(
            "{model}: PCA of {} test codes ({:.1} % + {:.1} % of the variance)",
            m.items,
            100.0 * m.pca_explained[0],
            100.0 * m.pca_explained[1]
        ),
        "PC 1",
        "PC 2",
        &pts(&m.pca),
        &colouring,
    )?;
    let csv_path = a.plot.with_extension("csv");
    let mut csv = String::from("item,pca1,pca2,tsne1,tsne2");
    for (name, _) in &m.labels {
        csv.push(',');
        csv.push_str(name);
    }
    csv.push('\n');
    for i in 0..m.items {
        csv.push_str(&format!(
            "{i},{},{},{},{}",
            m.pca[i][0], m.pca[i][1], m.tsne[i][0], m.tsne[i][1]
        ));
        for (_, v) in &m.labels {
            csv.push_str(&format!(",{}", v[i]));
        }
        csv.push('\n');
    }
    std::fs::write(&csv_path, csv).with_context(|| format!("writing {}", csv_path.display()))?;
    println!(
        "{} test codes of {} numbers; PCA explains {:.1} % + {:.1} %; coloured by {}",
        m.items,
        m.code_dims,
        100.0 * m.pca_explained[0],
        100.0 * m.pca_explained[1],
        pick.map_or("nothing (the test set has no labels)", |p| p.0.as_str())
    );
    for p in [&a.plot, &pca_png, &csv_path] {
        println!("{}", p.display());
    }
    Ok(())
}
