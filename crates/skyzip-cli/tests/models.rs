//! `skyzip train --resume`, `skyzip export` and `skyzip reconstruct` end to end.

mod common;
use common::{s, skyzip, stderr};
use skyzip_fits::{Card, FitsWriter, HduSelector, Header, ImageHdu, Pixels};
use std::path::Path;

fn write_config(dir: &Path, model: serde_json::Value, epochs: usize) -> std::path::PathBuf {
    let p = dir.join(format!("cfg-{epochs}.json"));
    let cfg = serde_json::json!({
        "model": model,
        "data": {"source": {"type": "simulator", "kind": "toy-blobs", "n": 96, "seed": 1},
                 "normalisation": {"kind": "z-score"}},
        "optimizer": {"kind": "adam", "lr": 0.005},
        "batch_size": 16,
        "epochs": epochs,
        "seed": 1
    });
    std::fs::write(&p, cfg.to_string()).unwrap();
    p
}

/// A 60×44 float image (not a multiple of the model's stride) with NaN blanks and a header.
fn test_image(path: &Path) -> Vec<f32> {
    let (nx, ny) = (60, 44);
    let data: Vec<f32> = (0..nx * ny)
        .map(|i| {
            let (x, y) = ((i % nx) as f32, (i / nx) as f32);
            if i % 97 == 5 {
                f32::NAN
            } else {
                100.0
                    + 50.0 * (-((x - 30.0).powi(2) + (y - 20.0).powi(2)) / 20.0).exp()
                    + ((i * 7919) % 13) as f32 * 0.5
            }
        })
        .collect();
    let mut h = Header::default();
    h.set(Card::string("OBJECT", "test field", "kept by reconstruct"));
    let mut w = FitsWriter::create(path, false).unwrap();
    w.write_image(
        &ImageHdu::new(vec![nx, ny], Pixels::F32(data.clone()), h),
        None,
    )
    .unwrap();
    w.finish().unwrap();
    data
}

#[test]
fn resume_export_and_reconstruct() {
    let d = tempfile::tempdir().unwrap();
    let model = serde_json::json!({"name": "meanvar", "base": {"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}});
    let run = d.path().join("run");
    let o = skyzip(&[
        "train",
        "--config",
        s(&write_config(d.path(), model.clone(), 1)),
        "--out",
        s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Resuming with more epochs continues; with another model it is refused.
    let o = skyzip(&[
        "train",
        "--config",
        s(&write_config(d.path(), model.clone(), 2)),
        "--out",
        s(&run),
        "--resume",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let cfg = write_config(
        &other,
        serde_json::json!({"name": "conv-ae", "width": 8, "stages": [8], "latent": 4}),
        3,
    );
    let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run), "--resume"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot resume") && stderr(&o).contains("model"),
        "{}",
        stderr(&o)
    );

    // Export the parts and the whole.
    for part in ["encoder", "decoder", "full"] {
        let out = d.path().join(format!("{part}.safetensors"));
        let o = skyzip(&["export", "--run", s(&run), "--part", part, "--out", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.exists() && out.with_extension("json").exists());
    }
    let full = d.path().join("full.safetensors");
    let o = skyzip(&["export", "--run", s(&run), "--out", s(&full)]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an export is not overwritten silently"
    );

    // Reconstruct: header kept, NaN mask kept, a SIGMA extension, deterministic.
    let img = d.path().join("img.fits");
    let data = test_image(&img);
    let rec = d.path().join("rec.fits");
    let o = skyzip(&["reconstruct", "--model", s(&full), s(&img), s(&rec)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = skyzip_fits::read_image(&rec, &HduSelector::Index(0)).unwrap();
    assert_eq!(out.axes, vec![60, 44]);
    assert_eq!(out.header.string("OBJECT").as_deref(), Some("test field"));
    let mu = out.physical();
    for (a, b) in data.iter().zip(&mu) {
        assert_eq!(a.is_nan(), b.is_nan());
    }
    let sig = skyzip_fits::read_image(&rec, &HduSelector::Name("SIGMA".into())).unwrap();
    let sig = sig.physical();
    assert!(sig.iter().zip(&data).all(|(s, x)| x.is_nan() == s.is_nan()));
    assert!(sig.iter().filter(|s| s.is_finite()).all(|&s| s > 0.0));
    let rec2 = d.path().join("rec2.fits");
    let o = skyzip(&["reconstruct", "--model", s(&full), s(&img), s(&rec2)]);
    assert!(o.status.success());
    let again = skyzip_fits::read_image(&rec2, &HduSelector::Index(0)).unwrap();
    assert!(again.pixels.bit_identical(&out.pixels));
    // A scaled int16 image (BSCALE/BZERO, as ESO's): the reconstruction is written as floats in
    // physical units, not squeezed back into the input's BITPIX.
    let scaled = d.path().join("scaled.fits");
    let mut h = Header::default();
    h.set(Card::value("BSCALE", "2.92273835509", ""));
    h.set(Card::value("BZERO", "3713.66692596", ""));
    let px: Vec<i16> = (0..60 * 44)
        .map(|i| ((i * 7919) % 30000) as i16 - 15000)
        .collect();
    let mut w = FitsWriter::create(&scaled, false).unwrap();
    w.write_image(&ImageHdu::new(vec![60, 44], Pixels::I16(px), h), None)
        .unwrap();
    w.finish().unwrap();
    let rec3 = d.path().join("rec3.fits");
    let o = skyzip(&[
        "reconstruct",
        "--model",
        s(&full),
        s(&scaled),
        s(&rec3),
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r3 = skyzip_fits::read_image(&rec3, &HduSelector::Index(0)).unwrap();
    assert_eq!((r3.bitpix(), r3.axes.clone()), (-32, vec![60, 44]));

    // The meanvar conv model exported as a codec model (`--part codec`) codes files; files
    // name it, and decompressing needs it given again (its hash is checked). The float export
    // is not a codec model.
    let sz = d.path().join("img.sz.fits");
    let o = skyzip(&["compress", s(&img), s(&sz), "--model", s(&full)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--part codec"), "{}", stderr(&o));
    let codec = d.path().join("codec.safetensors");
    let o = skyzip(&[
        "export",
        "--run",
        s(&run),
        "--part",
        "codec",
        "--out",
        s(&codec),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = skyzip(&["compress", s(&img), s(&sz), "--model", s(&codec)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = skyzip(&["decompress", s(&sz), s(&d.path().join("a.fits"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("codec.safetensors"), "{}", stderr(&o));
    let o = skyzip(&[
        "decompress",
        s(&sz),
        s(&d.path().join("b.fits")),
        "--model",
        s(&codec),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = skyzip(&[
        "decompress",
        s(&sz),
        s(&d.path().join("c.fits")),
        "--model",
        "default",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("hash"), "{}", stderr(&o));

    // Bad input: each refused with the problem named, the input never touched.
    let before = std::fs::read(&img).unwrap();
    let enc = d.path().join("encoder.safetensors");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "reconstruct".into(),
                "--model".into(),
                s(&full).into(),
                s(&img).into(),
                s(&img).into(),
                "--overwrite".into(),
            ],
            "refusing to overwrite",
        ),
        (
            vec![
                "reconstruct".into(),
                "--model".into(),
                s(&enc).into(),
                s(&img).into(),
                s(&d.path().join("x.fits")).into(),
            ],
            "holds only the encoder",
        ),
        (
            vec![
                "reconstruct".into(),
                "--model".into(),
                s(&full).into(),
                s(&img).into(),
                s(&d.path().join("x.fits")).into(),
                "--eta".into(),
                "2".into(),
            ],
            "not a tunable model",
        ),
        (
            vec![
                "reconstruct".into(),
                "--model".into(),
                s(&d.path().join("none.safetensors")).into(),
                s(&img).into(),
                s(&d.path().join("x.fits")).into(),
            ],
            "none.json",
        ),
        (
            vec![
                "reconstruct".into(),
                "--model".into(),
                s(&full).into(),
                s(&rec).into(),
                s(&rec2).into(),
            ],
            "exists",
        ),
    ];
    for (args, want) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = skyzip(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A truncated weights file is named, not a panic.
    let cut = d.path().join("cut.safetensors");
    let bytes = std::fs::read(&full).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::copy(full.with_extension("json"), cut.with_extension("json")).unwrap();
    let o = skyzip(&[
        "reconstruct",
        "--model",
        s(&cut),
        s(&img),
        s(&d.path().join("y.fits")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cut.safetensors"), "{}", stderr(&o));
    assert!(!d.path().join("y.fits").exists());
    assert_eq!(std::fs::read(&img).unwrap(), before);
}

#[test]
fn evaluate_writes_json_and_plots_and_report_makes_the_tables() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    for (name, model, norm) in [
        (
            "unet",
            serde_json::json!({"name": "unet-segmenter", "filters": [4, 8], "bridge": 8}),
            "max",
        ),
        (
            "cnn",
            serde_json::json!({"name": "cnn-estimator", "size": 64, "channels": [4, 8],
                "pool_after": [0, 1], "hidden": [8], "outputs": ["A_dm"]}),
            "max",
        ),
    ] {
        let cfg = d.path().join(format!("{name}.json"));
        let text = serde_json::json!({
            "model": model,
            "data": {"source": {"type": "simulator", "kind": "gce", "n": 32, "seed": 2},
                     "normalisation": {"kind": norm}, "test": {"n": 8, "seed": 77}},
            "batch_size": 8, "epochs": 2, "seed": 2
        });
        std::fs::write(&cfg, text.to_string()).unwrap();
        let run = d.path().join(name);
        let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = results.join(format!("{name}.json"));
        let o = skyzip(&["evaluate", "--run", s(&run), "--out", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.exists() && run.join("evaluation.json").exists());
        let png = if name == "unet" {
            assert!(run.join("catalogue.csv").exists());
            run.join("auc_hist.png")
        } else {
            run.join("scatter_A_dm.png")
        };
        assert!(
            std::fs::metadata(&png).unwrap().len() > 1000,
            "{}",
            png.display()
        );
    }
    let md = d.path().join("gce.md");
    let o = skyzip(&["report", "gce", s(&results), "--out", s(&md)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&md).unwrap();
    for want in [
        "| unet |",
        "| cnn |",
        "0.0807",
        "0.80 ± 0.03",
        "completeness",
    ] {
        assert!(
            text.contains(want),
            "{want} missing from the report:\n{text}"
        );
    }
    // A folder that is not a run is refused.
    let o = skyzip(&["evaluate", "--run", s(d.path())]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_model_whose_decoder_sees_encoder_features_is_refused_by_the_codec() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("unet-ae.json");
    let text = serde_json::json!({
        "model": {"name": "unet-ae", "size": 32, "filters": [4, 8], "latent": 4, "skips": true},
        "data": {"source": {"type": "simulator", "kind": "toy-blobs", "n": 16, "seed": 1},
                 "normalisation": {"kind": "min-max"}, "resize": 32},
        "loss": "bce", "batch_size": 8, "epochs": 1, "seed": 1
    });
    std::fs::write(&cfg, text.to_string()).unwrap();
    let run = d.path().join("run");
    let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = d.path().join("unet.safetensors");
    let o = skyzip(&[
        "export",
        "--run",
        s(&run),
        "--part",
        "codec",
        "--out",
        s(&w),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("skips") && e.contains("encoder values"), "{e}");
    assert!(!w.exists());
}

#[test]
fn vq_vae_and_vae_rates_are_bytes_that_decode() {
    let d = tempfile::tempdir().unwrap();
    for (name, model) in [
        (
            "vq",
            serde_json::json!({"name": "vq-vae", "width": 8, "stages": [8, 8], "latent": 4,
                "codebook": 32}),
        ),
        (
            "vae",
            serde_json::json!({"name": "vae", "base": {"name": "conv-ae", "width": 8,
                "stages": [8, 8], "latent": 4}}),
        ),
    ] {
        let cfg = d.path().join(format!("{name}.json"));
        let text = serde_json::json!({
            "model": model,
            "data": {"source": {"type": "simulator", "kind": "radio", "n": 32, "seed": 3},
                     "normalisation": {"kind": "min-max"}, "resize": 32,
                     "test": {"n": 96, "seed": 33}},
            "batch_size": 8, "epochs": 2, "seed": 3
        });
        std::fs::write(&cfg, text.to_string()).unwrap();
        let run = d.path().join(name);
        let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = skyzip(&["evaluate", "--run", s(&run)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let ev: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("evaluation.json")).unwrap())
                .unwrap();
        let c = &ev["coding"];
        let p = &c["points"][0];
        let f = |k: &str| p[k].as_f64().unwrap();
        // The rate is the bytes written: per-image streams, each at least its estimate; one
        // stream over the whole set within 1 % of Σ −log2 p (the range coder's flush aside).
        let px = (96 * 32 * 32) as f64;
        assert_eq!(f("code_bpp"), 8.0 * p["code_bytes"].as_f64().unwrap() / px);
        assert!(f("code_bpp") >= f("code_est_bpp"));
        if name == "vq" {
            let (one, est) = (f("code_one_stream_bpp"), f("code_est_bpp"));
            assert!((one - est).abs() <= 0.01 * est, "{one} vs {est}");
            assert!(c["used_codes"].as_u64().unwrap() >= 1);
        } else {
            assert!(c["vae"]["kl_bpp"].as_f64().unwrap() >= 0.0);
        }
        assert!(
            (f("lossless_bpp") - f("code_bpp") - f("residual_bpp")).abs() < 1e-9,
            "{p}"
        );
        assert!(c["med_bpp"].as_f64().unwrap() > 0.0);
        // The stacking study: N = 1, 4, 16 with the noise falling as 1/√N, and the stack's own
        // photometry unbiased on bright components.
        let lv = ev["stacking"]["levels"].as_array().unwrap();
        assert_eq!(
            lv.iter()
                .map(|l| l["n"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            [1, 4, 16]
        );
        let rms: Vec<f64> = lv
            .iter()
            .map(|l| l["noise_rms"].as_f64().unwrap())
            .collect();
        assert!((rms[0] / rms[2] - 4.0).abs() < 0.4, "{rms:?}");
        let bright = &lv[0]["bins"].as_array().unwrap().last().unwrap()["median_ratio"];
        assert!((bright[0].as_f64().unwrap() - 1.0).abs() < 0.05, "{bright}");
        // The latent map of the same codes: t-SNE and PCA PNGs, and a CSV row per test map
        // with its labels.
        let png = d.path().join(format!("{name}-map.png"));
        let o = skyzip(&["latents", "--run", s(&run), "--plot", s(&png)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        assert!(png.with_extension("pca.png").exists());
        let csv = std::fs::read_to_string(png.with_extension("csv")).unwrap();
        assert_eq!(csv.lines().count(), 97);
        assert!(csv.lines().next().unwrap().contains(",class"), "{csv}");
        let o = skyzip(&[
            "latents",
            "--run",
            s(&run),
            "--plot",
            s(&png),
            "--color",
            "bogus",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("no such label"), "{}", stderr(&o));
    }
}

#[test]
fn pixel_ae_rate_is_bytes_and_is_held_against_hcompress() {
    // Seed 000's pixel AE on CCD stamps: bytes within 1 % of the estimate, HCOMPRESS run at the
    // scales around the autoencoder's error, and photometry of every star on every kind.
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("pixel.json");
    let text = serde_json::json!({
        "model": {"name": "pixel-ae", "width": 4, "stages": [8, 8], "latent": 2, "gated": true,
                  "focal": {"weight": 1.0, "alpha": 1.0}, "counts": {"width": 4, "blocks": 1}},
        "data": {"source": {"type": "simulator", "kind": "ccd", "n": 8, "seed": 3},
                 "normalisation": {"kind": "log10", "offset": 1.0}, "crop": 32,
                 "test": {"n": 2, "seed": 33}},
        "batch_size": 4, "epochs": 1, "seed": 3
    });
    std::fs::write(&cfg, text.to_string()).unwrap();
    let run = d.path().join("pixel");
    let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = skyzip(&["evaluate", "--run", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("evaluation.json")).unwrap())
            .unwrap();
    let c = &ev["pixel_coding"];
    let px = (2 * 256 * 256) as f64;
    for p in c["points"].as_array().unwrap() {
        let f = |k: &str| p[k].as_f64().unwrap();
        assert_eq!(f("bpp"), 8.0 * f("bytes") / px);
        assert!(
            f("bpp") >= f("est_bpp") && f("bpp") <= 1.01 * f("est_bpp") + 1e-3,
            "{p}"
        );
        let h = &p["hcompress"];
        assert!(h["bpp"].as_f64().unwrap() > 0.0 && h["scale"].as_f64().unwrap() > 0.0);
        assert!(!p["errors_counts_block"].is_null());
    }
    assert!(c["rice_bpp"].as_f64().unwrap() > 1.0);
    assert!(c["hcompress_sweep"].as_array().unwrap().len() >= 2);
    let ph = &c["photometry"];
    assert_eq!(ph["kinds"].as_array().unwrap().len(), 6);
    assert!(ph["stars"].as_u64().unwrap() > 10, "{ph}");
    // The observation's own photometry of bright stars is unbiased.
    let b = ph["bins"].as_array().unwrap();
    let bright = b
        .iter()
        .rev()
        .find(|b| b["sources"].as_u64().unwrap() > 0)
        .unwrap();
    assert!(
        (bright["median_ratio"][0].as_f64().unwrap() - 1.0).abs() < 0.05,
        "{bright}"
    );
}
