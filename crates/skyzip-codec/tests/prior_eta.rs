//! The learned prior's tables on real tiles (η through whole files: the CLI's tests, which
//! can build a tunable model).

use skyzip_codec::tile::{decode, encode, Settings};
use skyzip_codec::Predictor;
use skyzip_fits::{read_image, HduSelector};
use std::path::PathBuf;

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
                rdo: None,
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
