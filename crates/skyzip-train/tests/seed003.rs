//! Seed 003's models on tiny data: the estimator's, the segmenter's and the bottleneck DAE's
//! losses fall in a few epochs, and evaluation scores a run end to end.

use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::ModelConfig;
use skyzip_train::config::Experiment;
use skyzip_train::*;

fn gce(model: serde_json::Value, n: usize, epochs: usize, norm: serde_json::Value) -> Experiment {
    serde_json::from_value(serde_json::json!({
        "model": model,
        "data": {"source": {"type": "simulator", "kind": "gce", "n": n, "seed": 5},
                 "normalisation": norm,
                 "test": {"n": 24, "seed": 99}},
        "optimizer": {"kind": "adam", "lr": 0.002},
        "batch_size": 16,
        "epochs": epochs,
        "seed": 5
    }))
    .unwrap()
}

fn run(e: &Experiment, out: &std::path::Path) -> TrainReport {
    train(
        e,
        out,
        &Device::flex(),
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap()
}

#[test]
fn the_seed_architectures_have_the_seed_parameter_counts() {
    let d = Device::flex();
    let count = |v: serde_json::Value| {
        ModelConfig::from_json(&v)
            .unwrap()
            .init_supervised(&d, 0)
            .unwrap()
            .num_params()
    };
    // Seed 003's torchinfo summaries: 1,447,393 (one output) and 400,658 (two outputs).
    let single = serde_json::json!({"name": "cnn-estimator", "size": 64,
        "channels": [32, 64, 128, 128, 64, 32], "pool_after": [1, 3, 4],
        "hidden": [512, 128], "outputs": ["A_dm"]});
    assert_eq!(count(single), 1_447_393);
    let multi = serde_json::json!({"name": "cnn-estimator", "size": 64,
        "channels": [16, 32, 64, 128, 128, 32, 32, 32], "kernels": [3, 3, 3, 3, 3, 3, 5, 5],
        "pool_after": [1, 3, 5, 7], "hidden": [128, 16], "outputs": ["A_dm", "n_ps_gc+n_ps_disk"]});
    assert_eq!(count(multi), 400_658);
}

#[test]
fn estimator_learns_and_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let model = serde_json::json!({"name": "cnn-estimator", "size": 64,
        "channels": [4, 8], "pool_after": [0, 1], "hidden": [16],
        "outputs": ["A_dm", "n_ps_gc+n_ps_disk"]});
    let e = gce(
        model,
        96,
        6,
        serde_json::json!({"kind": "log10", "offset": 1.0}),
    );
    let r = run(&e, d.path());
    let h = &r.history;
    assert!(h[5].train_loss < 0.8 * h[0].train_loss, "{h:?}");
    let mcfg = e.model_config().unwrap();
    let ev = supervised::evaluate(d.path(), &e, &mcfg, &Device::flex(), 99, 24, 0.02).unwrap();
    assert_eq!(ev.estimates.len(), 2);
    assert_eq!(ev.test_items, 24);
    for est in &ev.estimates {
        assert_eq!(est.pairs.len(), 24);
        assert!(est.mean_relative_error.is_finite(), "{est:?}");
        // The reported error is the mean of |pred − true|/true over the pairs written.
        let by_hand = est
            .pairs
            .iter()
            .map(|(t, p)| ((p - t) / t).abs())
            .sum::<f64>()
            / 24.0;
        assert!((by_hand - est.mean_relative_error).abs() < 1e-12);
    }
    // The test set is a fresh draw: another seed gives other maps.
    let other = supervised::evaluate(d.path(), &e, &mcfg, &Device::flex(), 98, 24, 0.02).unwrap();
    assert_ne!(other.estimates[0].pairs, ev.estimates[0].pairs);
}

#[test]
fn segmenter_learns_with_either_count_penalty_and_evaluates() {
    for kind in ["hard", "soft"] {
        let d = tempfile::tempdir().unwrap();
        let model = serde_json::json!({"name": "unet-segmenter", "filters": [4, 8],
            "bridge": 8, "dropout": 0.1,
            "count_penalty": {"kind": kind, "weight": 1e-7, "cut": 1.08}});
        let e = gce(model, 64, 5, serde_json::json!({"kind": "max"}));
        let r = run(&e, d.path());
        let h = &r.history;
        assert!(h[4].train_loss < 0.8 * h[0].train_loss, "{kind}: {h:?}");
        let mcfg = e.model_config().unwrap();
        let ev = supervised::evaluate(d.path(), &e, &mcfg, &Device::flex(), 99, 8, 0.02).unwrap();
        let s = ev.segmentation.unwrap();
        assert_eq!(s.per_image.len(), 8);
        assert!(s.auc_a.mean > 0.5, "{kind}: AUC {:?}", s.auc_a);
        assert!(!s.catalogue.is_empty());
    }
}

#[test]
fn bottleneck_dae_learns() {
    let d = tempfile::tempdir().unwrap();
    let model = serde_json::json!({"name": "dae", "noise": "gaussian:0.2",
        "base": {"name": "bottleneck-ae", "size": 64, "channels": [4, 8, 8, 8, 8, 8],
                 "fc": 16, "latent": 6}});
    let mut e = gce(model, 64, 6, serde_json::json!({"kind": "max"}));
    e.data.test = None;
    let r = run(&e, d.path());
    let h = &r.history;
    assert!(h[5].val.mse < 0.8 * h[0].val.mse, "{h:?}");
}

#[test]
fn noise_classifier_learns_and_evaluates() {
    let d = tempfile::tempdir().unwrap();
    let model = serde_json::json!({"name": "noise-classifier", "size": 64,
        "channels": [4, 8], "pool_after": [0, 1], "hidden": [16],
        "outputs": ["gaussian:0.2:clip", "masked:0.5", "saltpepper:0.5"]});
    let e = gce(model, 96, 6, serde_json::json!({"kind": "max"}));
    let r = run(&e, d.path());
    let h = &r.history;
    assert!(h[5].train_loss < 0.8 * h[0].train_loss, "{h:?}");
    let mcfg = e.model_config().unwrap();
    let ev = supervised::evaluate(d.path(), &e, &mcfg, &Device::flex(), 99, 24, 0.02).unwrap();
    let c = ev.classification.unwrap();
    assert_eq!(c.confusion.iter().flatten().sum::<usize>(), 24);
    assert!(c.accuracy > 1.0 / 3.0, "better than chance: {c:?}");
}
