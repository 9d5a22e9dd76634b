//! `skyzip report seeds`: docs/results/seeds.md from the evaluation JSON of the seed-000/001/002
//! runs (U-Net AE, VAE/β-VAE, VQ-VAE and its stacking study, the pixel AE against HCOMPRESS),
//! the seeds' own numbers beside ours.

use serde_json::Value;

const INTRO: &str = "# The seeds' autoencoders, measured\n\n\
Seeds 000, 001 and 002 rebuilt in skyzip and trained on skyzip's radio-galaxy simulator \
(`shared/specs/simulators.md` §3.2, FRI/FRII/hybrid sources with beam-correlated noise, \
min-max normalised per map). Each row names its config: `configs/cpu/NAME.json` is the run \
two CPU cores finish (its maps, size and epochs are in the table); `configs/NAME.json` is the \
seed-scale config of the same model for a GPU (`--device cuda|wgpu`). Test maps are drawn with \
another seed. The seeds' numbers come from their READMEs, on their own data (seed 001: \
telescope images resized to 187×187; seed 002: MiraBest-like radio maps), so they are \
context, not a like-for-like comparison.\n\n";

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

fn size(j: &Value) -> String {
    format!(
        "{} / {} / {} (seed {})",
        j["training_items"].as_u64().unwrap_or(0),
        j["epochs"].as_u64().unwrap_or(0),
        j["test_items"].as_u64().unwrap_or(0),
        j["test_seed"].as_u64().unwrap_or(0)
    )
}

fn unet_rows(all: &[(String, Value)], md: &mut String) {
    md.push_str(
        "## Seed 001: U-Net autoencoder, with and without its skips\n\n\
The seed's U-Net hands its encoder's feature maps to the decoder, so its reconstruction \
comes through the skips, not through the 8-number code. Each model is scored with \
everything its decoder sees, and with the skip maps zeroed at test time (what the code alone \
carries). *Side values* are the numbers the skips carry per image beside the code.\n\n\
| run | skips | code numbers | side values | MSE | SSIM | MS-SSIM | MSE, skips zeroed | SSIM, skips zeroed | MS-SSIM, skips zeroed | parameters | train maps / epochs / test maps (test seed) |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|\n\
| seed 001 (its README) | yes | 8 | (not reported) | 5.4e-5 | 0.9868 | 0.9982 | — | — | — | — | — |\n",
    );
    for (name, j) in all.iter().filter(|(_, j)| j["model"] == "unet-ae") {
        let q = &j["quality"];
        let c = &j["code_only"];
        let side = j["side_channel_values"].as_u64().unwrap_or(0);
        let z = |k: &str, p: usize| {
            if c.is_null() {
                "= left".to_string()
            } else {
                format!("{:.*}", p, f(c, k))
            }
        };
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.3e} | {:.4} | {:.4} | {} | {} | {} | {} | {} |\n",
            if side > 0 { "yes" } else { "no" },
            j["code_values"],
            side,
            f(q, "mse"),
            f(q, "ssim"),
            f(q, "ms_ssim"),
            if c.is_null() {
                "= left".to_string()
            } else {
                format!("{:.3e}", f(c, "mse"))
            },
            z("ssim", 4),
            z("ms_ssim", 4),
            j["parameters"],
            size(j)
        ));
    }
    md.push('\n');
}

fn vae_rows(all: &[(String, Value)], md: &mut String) {
    md.push_str(
        "## Seed 000: VAE and β-VAE\n\n\
Rate is the KL divergence of the posterior from the prior in bits per pixel (the ELBO's rate \
term); the negative ELBO adds the reconstruction's negative log-likelihood under a Gaussian \
of the decoder's σ, discretised into the 256 levels of the 8-bit map (one posterior sample \
per image). *Active* counts latent channels whose KL exceeds 0.01 nats per number. \
`likelihood: gaussian` learns one σ for all pixels, so KL and reconstruction are on the same \
scale; `likelihood: loss` uses the mean squared error beside β·KL, as notebook VAEs do. The \
coded rate (actual bytes of the posterior means, quantised and range-coded) is in the next \
table.\n\n\
| run | β | likelihood | active channels | KL rate (bits/pixel) | negative ELBO (bits/pixel) | σ | MSE (posterior mean) | SSIM | train maps / epochs / test maps (test seed) |\n\
|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, j) in all.iter().filter(|(_, j)| j["model"] == "vae") {
        let v = &j["coding"]["vae"];
        let q = &j["quality"];
        md.push_str(&format!(
            "| {name} | {} | {} | {} of {} | {:.4} | {:.4} | {:.4}{} | {:.3e} | {:.4} | {} |\n",
            j["config"]["beta"],
            j["config"]["likelihood"].as_str().unwrap_or("gaussian"),
            v["active_groups"],
            v["kl_per_group"].as_array().map_or(0, |a| a.len()),
            f(v, "kl_bpp"),
            f(v, "nelbo_bpp"),
            f(v, "sigma"),
            if v["sigma_learned"].as_bool() == Some(true) {
                " (learned)"
            } else {
                " (√MSE)"
            },
            f(q, "mse"),
            f(q, "ssim"),
            size(j)
        ));
    }
    md.push('\n');
}

fn coded_rows(all: &[(String, Value)], md: &mut String) {
    md.push_str(
        "## Seed 002: VQ-VAE against VAE, in bytes\n\n\
The seed reported a VQ-VAE \"bits per dimension\" of 2.68 against 3.89 for its VAE. Neither \
number was a code length: nothing was entropy-coded, and the VQ-VAE's index stream was never \
written (its value is consistent with a loss in nats or bits per dimension of the \
reconstruction, not with the size of a stream that decodes). Here every rate is bytes: a \
VQ-VAE's indices range-coded under a factorized prior (the training set's index \
frequencies), a VAE's posterior means quantised per channel (step = factor × the channel's \
mean posterior σ on the training set; inactive channels are not sent) and range-coded under \
its standard-normal prior discretised to those steps — one stream per map, each decoded and \
compared before its size counts. The VQ-VAE and the VAEs are scored on the same held-out maps \
(the same test seed). *Lossless* adds the map's residual against the 8-bit \
reconstruction under the codec's Laplace coder (one scale per map, or after the median edge \
predictor run on the residual image, whichever is smaller; one byte says which), so it is an \
end-to-end code length for the 8-bit map; *MED* is the same residual coder after LOCO-I's median edge \
predictor with no network at all, the classical floor.\n\n\
| run | step factor | code bits/pixel (bytes) | estimated | MSE | PSNR (dB) | SSIM | residual bits/pixel | lossless bits/pixel | MED bits/pixel | train maps / epochs / test maps (test seed) |\n\
|---|---|---|---|---|---|---|---|---|---|---|\n\
| seed 002 VQ-VAE (its README) | — | \"2.68 bits per dimension\" (no stream) | — | — | — | — | — | — | — | — |\n\
| seed 002 VAE (its README) | — | \"3.89 bits per dimension\" (no stream) | — | — | — | — | — | — | — | — |\n",
    );
    for (name, j) in all.iter().filter(|(_, j)| !j["coding"].is_null()) {
        let c = &j["coding"];
        for p in c["points"].as_array().into_iter().flatten() {
            md.push_str(&format!(
                "| {name} | {} | {:.4} | {:.4} | {:.3e} | {:.2} | {:.4} | {:.4} | {:.4} | {:.4} | {} |\n",
                if j["model"] == "vq-vae" {
                    "—".to_string()
                } else {
                    format!("{}", p["step_factor"])
                },
                f(p, "code_bpp"),
                f(p, "code_est_bpp"),
                f(p, "mse"),
                f(p, "psnr"),
                f(p, "ssim"),
                f(p, "residual_bpp"),
                f(p, "lossless_bpp"),
                f(c, "med_bpp"),
                size(j)
            ));
        }
    }
    let vq: Vec<_> = all
        .iter()
        .filter(|(_, j)| j["model"] == "vq-vae" && !j["coding"].is_null())
        .collect();
    if !vq.is_empty() {
        md.push_str("\nCodebook use:");
        for (name, j) in vq {
            let c = &j["coding"];
            md.push_str(&format!(
                " {name}: {} of {} codes chosen on the training maps, index entropy {:.3} bits \
                 (the factorized prior's rate per index).",
                c["used_codes"],
                c["codebook"],
                f(c, "index_entropy_bits")
            ));
        }
        md.push('\n');
    }
    md.push('\n');
}

fn bin_label(b: &Value) -> String {
    let lo = f(b, "snr_lo");
    match b["snr_hi"].as_f64() {
        Some(h) => format!("{lo}–{h}"),
        None => format!("≥ {lo}"),
    }
}

fn ratio(b: &Value, k: usize) -> String {
    match b["median_ratio"][k].as_f64() {
        Some(v) if b["sources"].as_u64().unwrap_or(0) > 0 => format!("{v:.3}"),
        _ => "—".into(),
    }
}

fn stacking_rows(all: &[(String, Value)], md: &mut String) {
    let runs: Vec<_> = all
        .iter()
        .filter(|(_, j)| !j["stacking"].is_null())
        .collect();
    if runs.is_empty() {
        return;
    }
    md.push_str(
        "## Seed 002: noise and stacking\n\n\
The seed found that its VQ-VAE \"struggled to retain faint astrophysical signals when applied \
to noisy image stacks\" and gave no number. Here each test map is observed N times (its own \
noise and N − 1 fresh realisations of the simulator's beam-correlated noise at the same rms), \
the N observations are averaged, and the stack goes through the model trained on single \
observations (N = 1), prepared as in training (resized, min-max normalised per map) and mapped \
back to Jy/beam. Every catalogue component (cores, jets, lobes, hotspots, unrelated compact \
sources) is measured by aperture photometry (a circle of 1.5 beams, sky from the median of an \
annulus at 4–6.5 beams) on the noiseless map, on the stack and on the reconstruction; the \
table gives the median of recovered / true aperture flux by the component's S/N (true aperture \
flux over the standard deviation of noise-only aperture sums of that stack depth). The stack's \
own ratio is the measurement floor: what noise alone does to the photometry. Each S/N cell is \
*stack / model (components)*.\n\n",
    );
    let first = &runs[0].1["stacking"]["levels"][0]["bins"];
    let labels: Vec<String> = first
        .as_array()
        .into_iter()
        .flatten()
        .map(bin_label)
        .collect();
    md.push_str(&format!(
        "| run | N | noise rms (Jy/beam) | MSE against the noiseless map | {} | train maps / epochs / test maps (test seed) |\n|---|---|---|---|{}---|\n",
        labels.iter().map(|l| format!("S/N {l}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(labels.len())
    ));
    for (name, j) in runs {
        let st = &j["stacking"];
        for l in st["levels"].as_array().into_iter().flatten() {
            let cells: Vec<String> = l["bins"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| format!("{} / {} ({})", ratio(b, 0), ratio(b, 1), b["sources"]))
                .collect();
            md.push_str(&format!(
                "| {name} | {} | {:.2e} | {:.3e} | {} | {} |\n",
                l["n"],
                f(l, "noise_rms"),
                f(l, "mse_clean"),
                cells.join(" | "),
                size(j)
            ));
        }
    }
    md.push('\n');
}

fn pixel_rows(all: &[(String, Value)], md: &mut String) {
    let runs: Vec<_> = all
        .iter()
        .filter(|(_, j)| !j["pixel_coding"].is_null())
        .collect();
    if runs.is_empty() {
        return;
    }
    md.push_str(
        "## Seed 000: pixel autoencoder with focal frequency loss against HCOMPRESS\n\n\
Seed 000 compared its pixel AE with HCOMPRESS on ZTF stamps but published no numbers, so \
there is no seed column here. Whole simulated ZTF-like CCD stamps (256×256, 16-bit DN; \
`shared/specs/simulators.md` §2), \
log10-normalised per stamp for the model. The code is quantised per channel (step = factor × \
the channel's σ on training stamps) and range-coded under the discretised standard normal, one \
stream per stamp that is decoded and compared before its bytes count, plus 4 bytes per stamp \
for its normalisation shift. HCOMPRESS runs in-process (cfitsio, one 256×256 tile per stamp, \
the whole FITS file's bytes) at the scale whose RMSE/σ against the observation equals the \
autoencoder's (bisection; *matched: no* when no scale from 0.25 to 256 reaches it and the \
nearest end is shown: at s = 256 it means HCOMPRESS's largest error is still below the \
autoencoder's), once for RMSE/σ over all pixels (the seed's \
comparison) and once for RMSE/σ over the sky; and at the scale whose file has the \
autoencoder's bits per pixel. σ is the simulator's background noise of each \
stamp; RMSE/σ is pooled over all pixels, so bright star cores dominate it; *sky* is over the \
pixels whose sources add less than 0.5 σ. *Counts block* is the seed's second residual block \
(normalised output → counts), trained on the detached output beside the same autoencoder.\n\n\
| run | focal loss | step factor | bits/pixel (bytes) | estimated | RMSE/σ | RMSE/σ sky | RMSE/σ vs noiseless | with counts block: RMSE/σ | sky | HCOMPRESS at the same RMSE/σ: s | matched | bits/pixel | RMSE/σ sky | HCOMPRESS at the same sky RMSE/σ: s | matched | bits/pixel | RMSE/σ | HCOMPRESS at the same bits/pixel: s | RMSE/σ | RMSE/σ sky | train stamps / epochs / test stamps (test seed) |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, j) in &runs {
        let c = &j["pixel_coding"];
        let focal = if j["config"]["focal"].is_null() {
            "no".to_string()
        } else {
            format!("α = {}", j["config"]["focal"]["alpha"])
        };
        for p in c["points"].as_array().into_iter().flatten() {
            let e = &p["errors"];
            let b = &p["errors_counts_block"];
            let h = &p["hcompress"];
            let hs = &p["hcompress_sky"];
            let hb = &p["hcompress_rate"];
            let yes = |h: &Value| {
                if h["matched"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            };
            let cb = |k: &str| {
                if b.is_null() {
                    "—".to_string()
                } else {
                    format!("{:.3}", f(b, k))
                }
            };
            md.push_str(&format!(
                "| {name} | {focal} | {} | {:.4} | {:.4} | {:.3} | {:.3} | {:.3} | {} | {} | {:.3} | {} | {:.4} | {:.3} | {:.3} | {} | {:.4} | {:.3} | {:.3}{} | {:.3} | {:.3} | {} |\n",
                p["step_factor"],
                f(p, "bpp"),
                f(p, "est_bpp"),
                f(e, "rmse_sigma"),
                f(e, "rmse_sigma_sky"),
                f(e, "rmse_sigma_clean"),
                cb("rmse_sigma"),
                cb("rmse_sigma_sky"),
                f(h, "scale"),
                yes(h),
                f(h, "bpp"),
                f(&h["errors"], "rmse_sigma_sky"),
                f(hs, "scale"),
                yes(hs),
                f(hs, "bpp"),
                f(&hs["errors"], "rmse_sigma"),
                f(hb, "scale"),
                if yes(hb) == "yes" { "" } else { " (unmatched)" },
                f(&hb["errors"], "rmse_sigma"),
                f(&hb["errors"], "rmse_sigma_sky"),
                size(j)
            ));
        }
    }
    md.push('\n');
    for (name, j) in &runs {
        let c = &j["pixel_coding"];
        md.push_str(&format!(
            "{name}: lossless on the same stamps, RICE {:.3} and HCOMPRESS {:.3} bits/pixel; \
             the unquantised code gives RMSE/σ {:.3} (sky {:.3}). HCOMPRESS scales tried: {}.\n\n",
            f(c, "rice_bpp"),
            f(c, "hcompress_lossless_bpp"),
            f(&c["unquantised"], "rmse_sigma"),
            f(&c["unquantised"], "rmse_sigma_sky"),
            c["hcompress_sweep"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| format!(
                    "s = {:.3}: {:.3} bits/pixel, RMSE/σ {:.3}",
                    f(h, "scale"),
                    f(h, "bpp"),
                    f(&h["errors"], "rmse_sigma")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    md.push_str(
        "### Dim stars: aperture flux recovered / true\n\n\
Every star of the catalogue whose annulus lies inside the stamp, measured in a circle of \
radius 1 FWHM (at least 1.5 px) with the sky from the median of an annulus at 3–5 FWHM, on the \
noiseless image (the truth), the observation and each reconstruction (the autoencoder at step \
factor 1, and HCOMPRESS at the three scales matched to it). S/N is the true aperture flux over σ·√(aperture \
pixels). The medians are in the columns, in the order of the kinds named.\n\n",
    );
    for (name, j) in &runs {
        let ph = &j["pixel_coding"]["photometry"];
        let kinds: Vec<String> = ph["kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        md.push_str(&format!(
            "{name} ({} stars, step factor {}):\n\n| S/N | stars | {} |\n|---|---|{}\n",
            ph["stars"],
            ph["step_factor"],
            kinds.join(" | "),
            "---|".repeat(kinds.len())
        ));
        for b in ph["bins"].as_array().into_iter().flatten() {
            let r: Vec<String> = (0..kinds.len()).map(|k| ratio(b, k)).collect();
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                bin_label(b),
                b["sources"],
                r.join(" | ")
            ));
        }
        md.push('\n');
    }
}

/// The markdown of the seeds report from `(stem, evaluation JSON)` pairs.
pub fn report(all: &[(String, Value)]) -> String {
    let mut md = String::from(
        "<!-- generated by `skyzip report seeds docs/results/seeds --out docs/results/seeds.md` \
         from the evaluation JSON beside it; do not edit by hand -->\n\n",
    );
    md.push_str(INTRO);
    unet_rows(all, &mut md);
    vae_rows(all, &mut md);
    coded_rows(all, &mut md);
    stacking_rows(all, &mut md);
    pixel_rows(all, &mut md);
    md.push_str(
        "Figures: `seeds.rd.png` beside this file (rate against MSE: the VAEs' KL rates and \
         coded bytes, the VQ-VAE's coded bytes); in `seeds/`, `NAME.traversal.png` (U-Net AE: \
         each code number swept over its test-set range, decoded with the skips zeroed; VAE and \
         VQ-VAE: the code moved along its first four principal directions from −2σ to +2σ, a \
         VQ-VAE's quantised again), `NAME.latents.png` / `.pca.png` / `.csv` (t-SNE and PCA \
         maps of the codes), `NAME.pixel_examples.png` (three CCD stamps: noiseless, observation, \
         HCOMPRESS at the three matched scales, pixel AE, pixel AE + counts block; asinh stretch \
         per tile) and `NAME.loss_curve.png`.\n",
    );
    md
}

/// The rate–distortion plot of the VAE/VQ-VAE runs: each VAE's KL rate (the ELBO's) and its
/// coded rates in bytes, and each VQ-VAE's coded rate, against MSE.
pub fn rd_plot(all: &[(String, Value)], path: &std::path::Path) -> anyhow::Result<()> {
    let mut kl = Vec::new();
    let mut vae = Vec::new();
    let mut vq = Vec::new();
    for (_, j) in all.iter().filter(|(_, j)| !j["coding"].is_null()) {
        let c = &j["coding"];
        if j["model"] == "vae" {
            kl.push((f(&c["vae"], "kl_bpp"), f(&j["quality"], "mse")));
        }
        for p in c["points"].as_array().into_iter().flatten() {
            let pt = (f(p, "code_bpp"), f(p, "mse"));
            if j["model"] == "vq-vae" {
                vq.push(pt);
            } else {
                vae.push(pt);
            }
        }
    }
    for v in [&mut kl, &mut vae, &mut vq] {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let series = [
        skyzip_plot::Series {
            label: "VAE: KL rate (the ELBO's), MSE of the posterior mean",
            points: &kl,
        },
        skyzip_plot::Series {
            label: "VAE: quantised means, coded bytes",
            points: &vae,
        },
        skyzip_plot::Series {
            label: "VQ-VAE: indices, coded bytes",
            points: &vq,
        },
    ];
    skyzip_plot::line_plot(
        path,
        "radio maps: rate against distortion (8-bit maps, test set)",
        "bits per pixel",
        "MSE",
        &series,
        true,
    )?;
    Ok(())
}
