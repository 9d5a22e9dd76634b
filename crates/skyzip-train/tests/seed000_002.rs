//! Seeds 000 and 002 at test scale: the VAE (β·KL, learned likelihood σ, annealing) and the
//! VQ-VAE (codebook, straight-through, dead-code restarts) train, and their codes are what the
//! coder needs.

use skyzip_nn::burn::prelude::*;
use skyzip_train::config::Experiment;
use skyzip_train::{gen_eval, train, TrainOptions};

/// The toy blobs (28×28): the radio maps need a few hundred steps before a small net leaves
/// the mean image, the blobs a few dozen.
fn blobs(model: serde_json::Value) -> Experiment {
    serde_json::from_value(serde_json::json!({
        "model": model,
        "data": {"source": {"type": "simulator", "kind": "toy-blobs", "n": 96, "seed": 5},
                 "normalisation": {"kind": "min-max"}, "test": {"n": 8, "seed": 50}},
        "loss": "mse",
        "optimizer": {"kind": "adam", "lr": 0.003},
        "batch_size": 8,
        "epochs": 8,
        "seed": 5
    }))
    .unwrap()
}

#[test]
fn vae_learns_and_reports_its_kl_and_elbo() {
    let d = tempfile::tempdir().unwrap();
    let e = blobs(serde_json::json!({"name": "vae",
        "base": {"name": "conv-ae", "width": 8, "stages": [8, 8], "latent": 4},
        "beta": 1.0, "anneal_steps": 20}));
    let r = train(
        &e,
        d.path(),
        &Device::flex(),
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap();
    let h = &r.history;
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "{h:?}");
    assert!(h.last().unwrap().val.mse < 0.5 * h[0].val.mse, "{h:?}");
    let mcfg = e.model_config().unwrap();
    let g = gen_eval::codes(d.path(), &e, &mcfg, &Device::flex(), 50, 8)
        .unwrap()
        .expect("a vae has codes");
    let v = g.vae.as_ref().unwrap();
    assert_eq!(v.kl_per_group.len(), 4);
    assert!(v.kl_per_group.iter().all(|k| *k >= 0.0));
    assert!(v.sigma_learned && v.sigma > 0.0 && v.sigma < 1.0, "{v:?}");
    // The negative ELBO (KL + discretised NLL) exceeds its KL part.
    assert!(v.nelbo_bpp > v.kl_bpp && v.nelbo_bpp.is_finite());
    assert_eq!(g.points.len(), 3);
    for p in &g.points {
        assert_eq!(p.images.len(), 8);
        assert!(p
            .images
            .iter()
            .all(|i| i.symbols.len() == g.symbols_per_image
                && i.target.len() == 28 * 28
                && i.recon.iter().all(|&x| (0..=255).contains(&x))));
    }
}

#[test]
fn vq_vae_learns_and_its_indices_lie_in_the_codebook() {
    // With the codebook loss, and with EMA updates instead.
    for ema in [None, Some(0.9)] {
        vq_vae_case(ema);
    }
}

fn vq_vae_case(ema: Option<f64>) {
    let d = tempfile::tempdir().unwrap();
    let e = blobs(
        serde_json::json!({"name": "vq-vae", "width": 8, "stages": [8, 8],
        "latent": 4, "codebook": 16, "restart_every": 20, "ema": ema}),
    );
    let r = train(
        &e,
        d.path(),
        &Device::flex(),
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap();
    let h = &r.history;
    assert!(
        h.last().unwrap().val.mse < 0.5 * h[0].val.mse,
        "ema {ema:?}: {h:?}"
    );
    let mcfg = e.model_config().unwrap();
    let g = gen_eval::codes(d.path(), &e, &mcfg, &Device::flex(), 50, 8)
        .unwrap()
        .expect("a vq-vae has codes");
    assert_eq!(g.codebook, 16);
    assert_eq!(g.symbols_per_image, 7 * 7);
    // Dead-code restarts keep most of the codebook in use.
    let used = g.counts.iter().filter(|&&c| c > 0).count();
    assert!(used >= 8, "{:?}", g.counts);
    assert!(g.points[0]
        .images
        .iter()
        .flat_map(|i| &i.symbols)
        .all(|&s| (0..16).contains(&s)));
}

#[test]
fn pixel_ae_with_focal_loss_and_counts_block_learns() {
    // Gated residual blocks, the focal frequency loss and the counts block on log10 blobs.
    let d = tempfile::tempdir().unwrap();
    let mut e = blobs(
        serde_json::json!({"name": "pixel-ae", "width": 8, "stages": [8, 8],
        "latent": 4, "gated": true, "focal": {"weight": 1.0, "alpha": 1.0},
        "counts": {"width": 4, "blocks": 1, "scale": 0.05}}),
    );
    e.data.normalisation = skyzip_data::NormKind::Log10 { offset: 1.0 };
    let r = train(
        &e,
        d.path(),
        &Device::flex(),
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap();
    let h = &r.history;
    assert!(h.last().unwrap().train_loss < h[0].train_loss, "{h:?}");
    assert!(h.last().unwrap().val.mse < 0.7 * h[0].val.mse, "{h:?}");
    let mcfg = e.model_config().unwrap();
    assert_eq!(mcfg.name(), "pixel-ae");
    let m = skyzip_train::load_best(d.path(), &mcfg, &Device::flex()).unwrap();
    assert!(m.counts.is_some());
}
