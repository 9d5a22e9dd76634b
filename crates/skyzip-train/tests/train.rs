//! Tiny nets, few steps: losses fall, weights survive save/load, bad configs fail early.

use skyzip_nn::burn::prelude::*;
use skyzip_train::config::Experiment;
use skyzip_train::*;

fn exp(model: serde_json::Value, epochs: usize) -> Experiment {
    serde_json::from_value(serde_json::json!({
        "model": model,
        "data": {"source": {"type": "simulator", "kind": "toy-blobs", "n": 160, "seed": 1}},
        "loss": "mse",
        "optimizer": {"kind": "adam", "lr": 0.005},
        "batch_size": 16,
        "epochs": epochs,
        "seed": 3
    }))
    .unwrap()
}

#[test]
fn every_model_family_learns() {
    let dev = Device::flex();
    for model in [
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8, 8], "latent": 4}),
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "tunable": true}),
        serde_json::json!({"name": "dense-ae", "size": 28, "stages": [8], "latent": 6}),
        serde_json::json!({"name": "dense-ae", "size": 28, "latent": 6, "tunable": true}),
    ] {
        let d = tempfile::tempdir().unwrap();
        let e = exp(model.clone(), 6);
        let h = train(&e, d.path(), &dev, |_, _, _, _| {}).unwrap();
        assert_eq!(h.len(), 6);
        let (first, last) = (h[0].train_loss, h[5].train_loss);
        eprintln!(
            "{model}: {:?}",
            h.iter().map(|m| m.val_loss).collect::<Vec<_>>()
        );
        assert!(last < 0.7 * first, "{model}: loss {first} → {last}");
        assert!(h[5].val_loss < h[0].val_loss, "{model}: validation {h:?}");
        for f in [
            "config.json",
            "metrics.csv",
            "last.safetensors",
            "best.safetensors",
        ] {
            assert!(d.path().join(f).exists(), "{f}");
        }
        let csv = std::fs::read_to_string(d.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7);
    }
}

#[test]
fn saved_weights_load_back_to_identical_outputs() {
    let dev = Device::flex();
    let e = exp(
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}),
        1,
    );
    let d = tempfile::tempdir().unwrap();
    dev.seed(1);
    let a = e.model_config().unwrap().init(&dev);
    save_model(&a, &d.path().join("m.safetensors")).unwrap();
    dev.seed(2);
    let b = load_model(&e, &d.path().join("m.safetensors"), &dev).unwrap();
    let x: Vec<f32> = (0..2 * 28 * 28).map(|i| (i % 17) as f32 / 17.0).collect();
    let x = skyzip_nn::image_tensor(&x, 2, 28, 28, &dev);
    let (ya, yb) = (a.reconstruct(x.clone(), None), b.reconstruct(x, None));
    assert_eq!(
        ya.into_data().try_to_vec::<f32>().unwrap(),
        yb.into_data().try_to_vec::<f32>().unwrap()
    );
    // Weights of another architecture are refused with the file named.
    let other = exp(
        serde_json::json!({"name": "conv-ae", "width": 4, "stages": [8], "latent": 4}),
        1,
    );
    let err = load_model(&other, &d.path().join("m.safetensors"), &dev).unwrap_err();
    assert!(err.to_string().contains("m.safetensors"), "{err}");
}

#[test]
fn bad_configs_fail_before_training() {
    let bad = [
        (serde_json::json!({"name": "transformer"}), "unknown model"),
        (
            serde_json::json!({"name": "conv-ae", "width": "wide", "stages": [8], "latent": 4}),
            "model",
        ),
        (
            serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "depth": 3}),
            "depth",
        ),
    ];
    for (model, want) in bad {
        let e = exp(model, 1);
        let err = e.check().unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    let mut e = exp(
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}),
        1,
    );
    e.data.source = skyzip_train::config::DataSource::Dataset {
        path: "/no/such/dataset".into(),
    };
    let err = train(
        &e,
        tempfile::tempdir().unwrap().path(),
        &Device::flex(),
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("/no/such/dataset"), "{err}");
    let r: Result<Experiment, _> = serde_json::from_value(
        serde_json::json!({"model": {}, "data": {"source": {"type": "simulator", "kind": "gce", "n": "many", "seed": 1}}, "epochs": 1}),
    );
    assert!(r.unwrap_err().to_string().contains("invalid type"));
    let r: Result<Experiment, _> = serde_json::from_value(
        serde_json::json!({"model": {}, "data": {"source": {"type": "simulator", "kind": "gce", "n": 1, "seed": 1}}, "epochs": 1, "loss": "huber"}),
    );
    assert!(r.is_err());
}

#[test]
fn every_committed_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            Experiment::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 3);
}
