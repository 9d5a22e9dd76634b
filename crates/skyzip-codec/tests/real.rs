//! The codec on every real development image: lossless is exact, max-error holds its bound,
//! the RMSE mode its target, masks survive, estimated and actual bits agree.

use skyzip_codec::{compress, decompress, Mode, Options, Predictor};
use skyzip_fits::{list_hdus, read_image, HduSelector, ImageHdu};

fn images(path: &std::path::Path) -> Vec<ImageHdu> {
    list_hdus(path)
        .unwrap()
        .into_iter()
        .filter(|h| h.has_image())
        .map(|h| read_image(path, &HduSelector::Index(h.index)).unwrap())
        .collect()
}

fn load(name: &str) -> Result<Predictor, skyzip_codec::CodecError> {
    Predictor::load(name)
}

#[test]
fn lossless_max_error_and_rmse_on_every_real_file() {
    let p = Predictor::load("default").unwrap();
    let d = tempfile::tempdir().unwrap();
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let orig = images(&f);
        for mode in [Mode::Lossless, Mode::MaxError(1.0), Mode::Rmse(0.6)] {
            let c = d.path().join(format!("{name}.{mode:?}.sz.fits"));
            let o = d.path().join(format!("{name}.{mode:?}.out.fits"));
            let opts = Options {
                mode,
                ..Options::default()
            };
            let r = compress(&f, &c, &p, &opts, false).unwrap();
            assert_eq!(decompress(&c, &o, &load, false).unwrap(), orig.len());
            skyzip_codec::verify(&f, &c, &load).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = images(&o);
            assert_eq!(back.len(), orig.len(), "{name}");
            for ((a, b), rep) in orig.iter().zip(&back).zip(&r.images) {
                assert_eq!(a.axes, b.axes, "{name}");
                assert_eq!(a.bitpix(), b.bitpix(), "{name}");
                assert_eq!(a.mask(), b.mask(), "{name}: blank mask");
                let (x, y) = (a.physical(), b.physical());
                let sigma = rep.sigma;
                let mut worst = 0f64;
                for (u, v) in x.iter().zip(&y) {
                    if u.is_finite() {
                        worst = worst.max((u - v).abs());
                    }
                }
                let npix = x.len() as f64;
                match (mode, a.pixels.is_float()) {
                    (Mode::Lossless, false) => {
                        assert!(
                            a.pixels.bit_identical(&b.pixels),
                            "{name}: lossless is not exact"
                        )
                    }
                    (Mode::Lossless, true) => {
                        // Exact after quantisation: within half a step (+ float32 rounding).
                        let delta = rep.delta.unwrap();
                        let tol = 0.5 * delta + 1e-6 * x.iter().fold(0f64, |m, v| m.max(v.abs()));
                        assert!(
                            worst <= tol,
                            "{name}: max error {worst} > δ/2 = {}",
                            delta / 2.0
                        );
                    }
                    (Mode::MaxError(e), _) => {
                        let tol = e * sigma * (1.0 + 1e-9)
                            + 1e-6 * x.iter().fold(0f64, |m, v| m.max(v.abs()));
                        assert!(
                            worst <= tol,
                            "{name}: max error {worst} > {e}σ = {}",
                            e * sigma
                        );
                    }
                    (Mode::Rmse(r), _) => {
                        // The image RMSE within the target; the encoder's own measure of it
                        // (in the report) is the decoder's.
                        let (sq, n) = x
                            .iter()
                            .zip(&y)
                            .filter(|(u, _)| u.is_finite())
                            .fold((0f64, 0usize), |(s, n), (u, v)| {
                                (s + (u - v).powi(2), n + 1)
                            });
                        let rmse = (sq / n as f64).sqrt() / sigma;
                        assert!(rmse <= r * (1.0 + 1e-6), "{name}: RMSE {rmse}σ > {r}σ");
                        assert!(
                            (rmse - rep.rmse).abs() <= 1e-4 * r.max(rmse),
                            "{name}: RMSE {rmse}σ decoded, {}σ by the encoder",
                            rep.rmse
                        );
                    }
                }
                // Estimated and actual bits agree (the tile bytes carry a 9-byte head and word padding).
                if npix > 256.0 * 256.0 {
                    let actual = 8.0 * rep.tile_bytes as f64;
                    assert!(
                        (actual - rep.est_bits).abs() / actual < 0.03,
                        "{name}: {actual} bits vs {} estimated",
                        rep.est_bits
                    );
                }
            }
        }
    }
}

/// A deterministic stand-in for `cargo fuzz` (which needs a nightly toolchain): thousands of
/// byte flips, insertions and truncations of real tiles; decoding must fail cleanly or give
/// back exactly the original tile — never panic, never a different image.
#[test]
fn mutated_tiles_never_panic_or_decode_wrong() {
    use skyzip_codec::tile::{decode, encode, Settings};
    let Some(parkes) = skyzip_testdata::real("radio_parkes_1904-66_SIN.fits") else {
        return;
    };
    let p = Predictor::load("default").unwrap();
    let img = read_image(&parkes, &HduSelector::FirstImage).unwrap();
    // A 64×64 corner with NaN blanks, quantised like the codec does (step 0.01).
    let (nx, w) = (img.nx(), 64);
    let mut v = Vec::new();
    let mut blank = Vec::new();
    for y in 0..w {
        for x in 0..w {
            let f = img.pixels.raw_f64(y * nx + x);
            blank.push(f.is_nan());
            v.push(if f.is_nan() {
                0
            } else {
                (f * 100.0).round() as i64
            });
        }
    }
    assert!(blank.iter().any(|b| *b) && blank.iter().any(|b| !*b));
    for e in [0, 3] {
        let s = Settings {
            e,
            lo: -(1 << 40),
            hi: 1 << 40,
            eta: None,
            rdo: None,
        };
        let t = encode(&p, &v, &blank, w, w, &s);
        let good = decode(&p, &t.bytes, w, w, &s).unwrap();
        assert_eq!(good.1, blank);
        assert_eq!(good.0, t.decoded);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ e as u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut failed, mut same) = (0, 0);
        for _ in 0..3000 {
            let mut b = t.bytes.clone();
            match next() % 4 {
                0 => {
                    let i = (next() as usize) % b.len();
                    b[i] ^= 1 << (next() % 8);
                }
                1 => b.truncate((next() as usize) % b.len()),
                2 => {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                _ => {
                    let i = (next() as usize) % b.len();
                    b.insert(i, next() as u8);
                }
            }
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(&p, &b, w, w, &s)));
            match r.expect("decoding a mutated tile panicked") {
                Ok(got) => {
                    assert_eq!(got, good, "a mutated tile decoded to a different image");
                    same += 1;
                }
                Err(_) => failed += 1,
            }
        }
        eprintln!("e = {e}: {failed} mutations refused, {same} decoded to the original");
        assert!(failed > 2500);
    }
}
