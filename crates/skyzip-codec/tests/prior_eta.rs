//! The learned prior's tables on real tiles, and the tunable rate η through whole files.

use skyzip_codec::codec::zval;
use skyzip_codec::tile::{decode, encode, Settings};
use skyzip_codec::{compress, decompress, CodecError, Mode, Options, Predictor};
use skyzip_fits::{read_header, read_image, HduSelector};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::ModelConfig;
use skyzip_train::checkpoint::{write_export, ExportInfo, EXPORT_FORMAT};
use std::path::{Path, PathBuf};

fn real(name: &str) -> PathBuf {
    skyzip_testdata::real(name).expect("the test checked for the shared images first")
}

/// A 128×128 integer tile cut from a real image (floats scaled to integers).
fn tile_of(name: &str, x0: usize, y0: usize) -> (Vec<i64>, Vec<bool>) {
    let img = read_image(&real(name), &HduSelector::FirstImage).unwrap();
    let nx = img.nx();
    let (mut v, mut b) = (Vec::new(), Vec::new());
    for y in y0..y0 + 128 {
        for x in x0..x0 + 128 {
            let f = img.pixels.raw_f64(y * nx + x);
            b.push(f.is_nan());
            v.push(if f.is_nan() { 0 } else { f.round() as i64 });
        }
    }
    (v, b)
}

#[test]
fn learned_prior_tables_code_real_latents_exactly() {
    if skyzip_testdata::real_dir().is_none() {
        return;
    }
    let p = Predictor::load("rate").unwrap();
    let tables = p
        .prior()
        .expect("the bundled rate model has a learned prior");
    assert_eq!(tables.len(), p.latent_channels());
    let mut used = 0;
    for (name, x0, y0) in [
        ("optical_ccd_raw_M13_blue_0001.fits", 300, 300),
        ("optical_sdss_reprojected_r.fits", 100, 100),
        ("optical_eso_ntt_sep_image.fits", 0, 0),
    ] {
        let (v, blank) = tile_of(name, x0, y0);
        for e in [0, 2] {
            let s = Settings {
                e,
                lo: i32::MIN as i64,
                hi: i32::MAX as i64,
                eta: None,
            };
            let t = encode(&p, &v, &blank, 128, 128, &s);
            let (got, gb) = decode(&p, &t.bytes, 128, 128, &s).unwrap();
            assert_eq!(gb, blank);
            assert_eq!(got, t.decoded, "{name}, e = {e}");
            for (a, b) in v.iter().zip(&got) {
                assert!((a - b).abs() <= e, "{name}: |{a} − {b}| > {e}");
            }
            used += t.prior_channels;
        }
    }
    // The prior is chosen where it is cheaper than a per-tile scale: for some of these channels.
    assert!(used > 0, "the learned prior never won");
    eprintln!(
        "{used} of {} channels coded with the learned prior",
        6 * tables.len()
    );
}

/// A freshly initialised (untrained) tunable meanvar model, exported like `skyzip export`.
fn tunable_export(dir: &Path) -> PathBuf {
    let json = serde_json::json!({
        "name": "meanvar",
        "base": {"name": "conv-ae", "width": 8, "stages": [8, 8], "latent": 4, "tunable": true}
    });
    let cfg = ModelConfig::from_json(&json).unwrap();
    let model = cfg.init_seeded(&Device::flex(), 1);
    let path = dir.join("tunable.safetensors");
    let info = ExportInfo {
        format: EXPORT_FORMAT.into(),
        part: "full".into(),
        model: json,
        normalisation: skyzip_data::NormKind::Asinh { softening: 3.0 },
        run: "test".into(),
        checkpoint: "init".into(),
        engine: None,
        calibration_stamps: None,
    };
    write_export(&model, &path, &info).unwrap();
    path
}

#[test]
fn eta_codes_a_prefix_and_decodes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let model = tunable_export(d.path());
    let spec = model.to_str().unwrap().to_string();
    let p = Predictor::load(&spec).unwrap();
    assert!(p.tunable());
    let src = skyzip_testdata::sample();
    let orig = read_image(&src, &HduSelector::FirstImage).unwrap();
    for eta in [1, 2, 4] {
        let c = d.path().join(format!("eta{eta}.fits"));
        let o = d.path().join(format!("eta{eta}.out.fits"));
        let opts = Options {
            mode: Mode::Lossless,
            eta: Some(eta),
            ..Options::default()
        };
        compress(&src, &c, &p, &opts, false).unwrap();
        let h = read_header(&c, 1).unwrap();
        assert_eq!(zval(&h, "ETA"), Some(eta.to_string()), "ZNAME/ZVAL ETA");
        let load = |_: &str| Predictor::load(&spec);
        decompress(&c, &o, &load, false).unwrap();
        let back = read_image(&o, &HduSelector::FirstImage).unwrap();
        assert!(orig.pixels.bit_identical(&back.pixels), "η = {eta}");
    }
    // η beyond the latent, and η on a model not trained for it, are refused by name.
    let out = d.path().join("x.fits");
    for (p, eta, why) in [
        (&p, 5, "4 latent channels"),
        (&Predictor::load("default").unwrap(), 2, "tunable"),
    ] {
        let opts = Options {
            eta: Some(eta),
            ..Options::default()
        };
        match compress(&src, &out, p, &opts, true) {
            Err(e @ CodecError::Model { .. }) => assert!(e.to_string().contains(why), "{e}"),
            other => panic!("η = {eta} accepted: {:?}", other.map(|r| r.file_bytes)),
        }
    }
}
