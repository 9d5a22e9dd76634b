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
fn every_model_family_learns() {
    for model in [
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8, 8], "latent": 4}),
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "tunable": true}),
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "tunable": true, "prefixes": "all"}),
        serde_json::json!({"name": "dense-ae", "size": 28, "stages": [8], "latent": 6}),
        serde_json::json!({"name": "dense-ae", "size": 28, "latent": 6, "tunable": true}),
        serde_json::json!({"name": "meanvar", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
        serde_json::json!({"name": "meanvar", "rate": true, "lambda": 0.1, "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
        serde_json::json!({"name": "dae", "noise": "gaussian:0.05", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
        serde_json::json!({"name": "dae", "noise": "saltpepper:0.05", "base": {"name": "dense-ae", "size": 28, "latent": 6}}),
    ] {
        let d = tempfile::tempdir().unwrap();
        let e = exp(model.clone(), 6);
        let r = run(&e, d.path());
        let h = &r.history;
        assert_eq!(h.len(), 6);
        let (first, last) = (h[0].train_loss, h[5].train_loss);
        eprintln!(
            "{model}: {:?}",
            h.iter().map(|m| m.val.loss).collect::<Vec<_>>()
        );
        // meanvar's training loss includes the NLL, which may be negative: compare the MSE.
        if model["rate"] == true {
            // Code length (nats/pixel; may go negative) falls, and so does the NLL.
            assert!(last < first - 0.5, "{model}: {h:?}");
            assert!(h[5].val.nll < h[0].val.nll, "{model}: {h:?}");
        } else if model["name"] == "meanvar" {
            assert!(h[5].val.mse < 0.7 * h[0].val.mse, "{model}: {h:?}");
            assert!(h[5].val.nll < h[0].val.nll, "{model}: {h:?}");
        } else {
            assert!(last < 0.7 * first, "{model}: loss {first} → {last}");
            assert!(h[5].val.loss < h[0].val.loss, "{model}: validation {h:?}");
        }
        for f in [
            "config.json",
            "metrics.csv",
            "metrics.json",
            "summary.json",
            "last.safetensors",
            "best.safetensors",
            "loss_curve.png",
            "state/state.json",
        ] {
            assert!(d.path().join(f).exists(), "{f}");
        }
        let csv = std::fs::read_to_string(d.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 7);
        if model["tunable"] == true {
            assert_eq!(r.eta_curve.len(), e.model_config().unwrap().latent());
            assert!(d.path().join("eta_curve.png").exists());
        }
    }
}

#[test]
fn ssim_losses_train() {
    let mut e = exp(
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}),
        4,
    );
    for loss in [
        serde_json::json!("ssim-l1"),
        serde_json::json!({"name": "ms-ssim", "levels": 2}),
    ] {
        e.loss = skyzip_nn::loss::Loss::from_json(&loss).unwrap();
        let d = tempfile::tempdir().unwrap();
        let h = run(&e, d.path()).history;
        assert!(h[3].train_loss < h[0].train_loss, "{loss}: {h:?}");
    }
    // MS-SSIM at 5 scales needs 176-pixel images: refused before training, not a panic.
    e.loss = skyzip_nn::loss::Loss::parse("ms-ssim").unwrap();
    let d = tempfile::tempdir().unwrap();
    let err = train(
        &e,
        d.path(),
        &Device::flex(),
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("176"), "{err}");
}

#[test]
fn saved_weights_and_parts_load_back_to_identical_outputs() {
    use skyzip_train::checkpoint::{save_weights, Part};
    let dev = Device::flex();
    let e = exp(
        serde_json::json!({"name": "meanvar", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
        1,
    );
    let m = e.model_config().unwrap();
    let d = tempfile::tempdir().unwrap();
    dev.seed(1);
    let a = m.init(&dev);
    for part in [Part::Full, Part::Encoder, Part::Decoder] {
        save_weights(
            &a,
            &d.path().join(format!("{}.safetensors", part.name())),
            part,
        )
        .unwrap();
    }
    dev.seed(2);
    let full = load_model(&m, &d.path().join("full.safetensors"), Part::Full, &dev).unwrap();
    // An encoder export and a decoder export together rebuild the model.
    let mut parts = m.init(&dev);
    skyzip_train::checkpoint::load_weights(
        &mut parts,
        &d.path().join("encoder.safetensors"),
        Part::Encoder,
    )
    .unwrap();
    skyzip_train::checkpoint::load_weights(
        &mut parts,
        &d.path().join("decoder.safetensors"),
        Part::Decoder,
    )
    .unwrap();
    let x: Vec<f32> = (0..2 * 28 * 28).map(|i| (i % 17) as f32 / 17.0).collect();
    let x = skyzip_nn::image_tensor(&x, 2, 28, 28, &dev);
    let out = |model: &skyzip_nn::model::Model| {
        let (mu, var) = model.predict(x.clone(), None, m.eps());
        (
            mu.into_data().try_to_vec::<f32>().unwrap(),
            var.unwrap().into_data().try_to_vec::<f32>().unwrap(),
        )
    };
    assert_eq!(out(&a), out(&full));
    assert_eq!(out(&a), out(&parts));
    // An encoder-only file is not a full model; weights of another architecture are refused.
    let err = load_model(&m, &d.path().join("encoder.safetensors"), Part::Full, &dev).unwrap_err();
    assert!(err.to_string().contains("encoder.safetensors"), "{err}");
    let other = exp(
        serde_json::json!({"name": "conv-ae", "width": 4, "stages": [8], "latent": 4}),
        1,
    );
    let err = load_model(
        &other.model_config().unwrap(),
        &d.path().join("full.safetensors"),
        Part::Full,
        &dev,
    )
    .unwrap_err();
    assert!(err.to_string().contains("full.safetensors"), "{err}");
}

#[test]
fn a_resumed_run_repeats_the_uninterrupted_losses() {
    for model in [
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "tunable": true}),
        serde_json::json!({"name": "meanvar", "base": {"name": "dense-ae", "size": 28, "latent": 4}}),
        serde_json::json!({"name": "dae", "noise": "poisson:50", "base": {"name": "dense-ae", "size": 28, "latent": 4}}),
    ] {
        let whole = tempfile::tempdir().unwrap();
        let a = run(&exp(model.clone(), 4), whole.path()).history;
        let parted = tempfile::tempdir().unwrap();
        run(&exp(model.clone(), 2), parted.path());
        let resumed = TrainOptions {
            resume: true,
            stop: None,
        };
        let b = train(
            &exp(model.clone(), 4),
            parted.path(),
            &Device::flex(),
            &resumed,
            |_, _, _, _| {},
        )
        .unwrap()
        .history;
        assert_eq!(b.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.train_loss, x.val),
                (y.train_loss, y.val),
                "{model} epoch {}",
                x.epoch
            );
        }
    }
}

#[test]
fn resume_and_stop_are_guarded() {
    let model = serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4});
    let d = tempfile::tempdir().unwrap();
    let dev = Device::flex();
    let resume = TrainOptions {
        resume: true,
        stop: None,
    };
    // Nothing to resume yet.
    let err = train(
        &exp(model.clone(), 2),
        d.path(),
        &dev,
        &resume,
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
    // A stop request ends the run after the batch with a loadable last checkpoint.
    let stop = std::sync::atomic::AtomicBool::new(true);
    let opts = TrainOptions {
        resume: false,
        stop: Some(&stop),
    };
    let r = train(
        &exp(model.clone(), 2),
        d.path(),
        &dev,
        &opts,
        |_, _, _, _| {},
    )
    .unwrap();
    assert_eq!(r.interrupted.map(|i| (i.0, i.1)), Some((1, 1)));
    let m = exp(model.clone(), 2).model_config().unwrap();
    load_model(
        &m,
        &d.path().join("last.safetensors"),
        skyzip_train::checkpoint::Part::Full,
        &dev,
    )
    .unwrap();
    // One complete epoch, then a resumed run with another learning rate is refused by field.
    let d = tempfile::tempdir().unwrap();
    run(&exp(model.clone(), 1), d.path());
    let err = train(
        &exp(model.clone(), 1),
        d.path(),
        &dev,
        &TrainOptions::default(),
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
    let mut other = exp(model.clone(), 2);
    other.optimizer.lr = 0.01;
    other.batch_size = 8;
    let err = train(&other, d.path(), &dev, &resume, |_, _, _, _| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("optimizer.lr") && msg.contains("batch_size"),
        "{msg}"
    );
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
        (
            serde_json::json!({"name": "dae", "noise": "pink:3", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
            "pink",
        ),
        (
            serde_json::json!({"name": "meanvar", "base": {"name": "meanvar", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}}),
            "must be a conv-ae, dense-ae or bottleneck-ae",
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
        &TrainOptions::default(),
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
    // configs/ and configs/cpu/ (the reduced runs two CPU cores can finish).
    for d in [dir.clone(), dir.join("cpu")] {
        for f in std::fs::read_dir(&d).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "json") {
                let e = Experiment::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                e.model_config()
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
    }
    assert!(n >= 20, "{n} configs");
}

/// The dense tunable AE on the linear-Gaussian toy (16 Hermite–Gauss modes, ρ = 0.7,
/// σ_n = 0.01, 28×28) orders its bottleneck like PCA: at η = k its held-out error is within 15 %
/// of the exact rank-k PCA error for k = 1…8, and it never rises with k.
#[test]
fn dense_tunable_ae_matches_pca_on_the_linear_toy() {
    let e: Experiment = serde_json::from_value(serde_json::json!({
        "model": {"name": "dense-ae", "size": 28, "latent": 16, "tunable": true, "prefixes": "all"},
        "data": {"source": {"type": "simulator", "kind": "toy-linear", "n": 4000, "seed": 1}},
        "loss": "mse",
        "optimizer": {"kind": "adam", "lr": 0.01, "schedule": "cosine"},
        "batch_size": 32,
        "epochs": 300,
        "seed": 1
    }))
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let r = run(&e, d.path());
    let toy = skyzip_sim::toy::Linear::new(skyzip_sim::toy::LinearConfig::default()).unwrap();
    let mut prev = f64::INFINITY;
    for (k, s) in &r.eta_curve {
        let pca = toy.rank_k_mse(*k, false);
        eprintln!(
            "eta {k:2}: AE {:.4e}  PCA {pca:.4e}  ratio {:.3}",
            s.mse,
            s.mse / pca
        );
        if *k <= 8 {
            assert!(
                (s.mse / pca - 1.0).abs() <= 0.15,
                "η = {k}: {} vs PCA {pca}",
                s.mse
            );
        }
        assert!(s.mse <= prev * (1.0 + 1e-6), "error rose at η = {k}");
        prev = s.mse;
    }
}

/// The variance decoder is calibrated: on held-out blobs with Gaussian noise the mean of
/// (x − μ)²/σ² is within [0.8, 1.25].
#[test]
fn meanvar_variance_is_calibrated_on_held_out_data() {
    let mut e = exp(
        serde_json::json!({"name": "meanvar", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}}),
        12,
    );
    e.data.source = skyzip_train::config::DataSource::Simulator {
        kind: "toy-blobs".into(),
        n: 480,
        seed: 2,
    };
    e.val_fraction = 0.25;
    let d = tempfile::tempdir().unwrap();
    let r = run(&e, d.path());
    let s = r.final_scores.unwrap();
    let z2 = s.z2.unwrap();
    eprintln!(
        "held-out mean (x-mu)^2/sigma^2 = {z2:.3}, nll {:?}, mse {:.3e}",
        s.nll, s.mse
    );
    assert!((0.8..=1.25).contains(&z2), "calibration {z2}");
}

/// The fully convolutional tunable AE, trained a little longer, orders its channels: the
/// held-out error falls at every added channel and is lowest with the full code.
#[test]
fn conv_tunable_error_falls_monotonically_with_eta() {
    let mut e = exp(
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4, "tunable": true}),
        20,
    );
    e.data.source = skyzip_train::config::DataSource::Simulator {
        kind: "toy-blobs".into(),
        n: 320,
        seed: 4,
    };
    let d = tempfile::tempdir().unwrap();
    let r = run(&e, d.path());
    let mse: Vec<f64> = r.eta_curve.iter().map(|(_, s)| s.mse).collect();
    eprintln!("held-out MSE over eta: {mse:?}");
    for w in mse.windows(2) {
        assert!(w[1] < w[0], "not monotone: {mse:?}");
    }
}
