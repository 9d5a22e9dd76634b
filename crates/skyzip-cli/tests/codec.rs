//! `skyzip compress` / `decompress` as processes: golden bitstream, thread-count determinism,
//! standard FITS (fitsverify, astropy), and bad input refused.

mod common;
use common::{have, s, skyzip, stderr};
use skyzip_fits::{read_image, read_table_at, Card, Column, FitsWriter, HduSelector};
use std::path::Path;
use std::process::Command;

use skyzip_testdata::real;

fn tiles(path: &Path) -> Vec<Vec<u8>> {
    match read_table_at(path, 1).unwrap().column("COMPRESSED_DATA") {
        Some(Column::Bytes(b)) => b.clone(),
        _ => panic!("no COMPRESSED_DATA"),
    }
}

fn sha256_hex(parts: &[Vec<u8>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn with_threads(n: usize, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args(args)
        .env("RAYON_NUM_THREADS", n.to_string())
        .output()
        .unwrap()
}

/// The sha256 of the coded tiles of the ESO image (lossless, `default-1`, format 7). It never
/// changes: a new bitstream needs a new format version, a new model a new name (the codec's
/// golden files keep the old ones decoding: tests/golden/format-N).
const GOLDEN_ESO: &str = "a5f1c2bac377cbc8c187b9fafddc36da30ce6c551916c1bf34599d16f336d99e";

#[test]
fn golden_bitstream_and_thread_count_determinism() {
    let d = tempfile::tempdir().unwrap();
    let Some(img) = real("optical_eso_ntt_sep_image.fits") else {
        return;
    };
    let mut coded = Vec::new();
    for n in [1, 2] {
        let c = d.path().join(format!("c{n}.fits"));
        let o = with_threads(n, &["compress", "--model", "default-1", s(&img), s(&c)]);
        assert!(o.status.success(), "{}", stderr(&o));
        coded.push(tiles(&c));
    }
    assert_eq!(coded[0], coded[1], "encoding depends on the thread count");
    let got = sha256_hex(&coded[0]);
    assert_eq!(got, GOLDEN_ESO, "golden bitstream changed");
    // Decoding with 1 and 2 threads gives the same, original pixels.
    let c = d.path().join("c1.fits");
    let orig = read_image(&img, &HduSelector::FirstImage).unwrap();
    for n in [1, 2] {
        let out = d.path().join(format!("d{n}.fits"));
        let o = with_threads(n, &["decompress", s(&c), s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let back = read_image(&out, &HduSelector::FirstImage).unwrap();
        assert!(back.pixels.bit_identical(&orig.pixels));
        assert_eq!(back.header.string("OBJECT"), orig.header.string("OBJECT"));
    }
}

/// Two more pinned bitstreams: a float image with NaN blanks (quantisation with dither, the blank
/// mask, the adaptive-context residual mode), and the `rate` model at 2σ (the learned prior).
/// (Format 7.)
const GOLDEN_PARKES: &str = "f26fba9723380e5dcf4b28451adb4b8210b4fdafbd3321734d9393e1010a955a";
const GOLDEN_ESO_RATE_2S: &str = "4ed266ee874df623918de0b5bcf3d9c150f32881c07c5ee29844fddf69ddc946";

#[test]
fn golden_bitstreams_of_floats_and_the_rate_model() {
    let d = tempfile::tempdir().unwrap();
    let (Some(parkes), Some(eso)) = (
        real("radio_parkes_1904-66_SIN.fits"),
        real("optical_eso_ntt_sep_image.fits"),
    ) else {
        return;
    };
    for (img, args, golden) in [
        (&parkes, vec!["--model", "default-1"], GOLDEN_PARKES),
        (
            &eso,
            vec!["--model", "rate", "--max-error", "2"],
            GOLDEN_ESO_RATE_2S,
        ),
    ] {
        let c = d.path().join("g.fits");
        let mut all = vec!["compress", s(img), s(&c), "--force"];
        all.extend(args);
        let o = skyzip(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            sha256_hex(&tiles(&c)),
            golden,
            "golden bitstream of {} changed",
            img.display()
        );
    }
}

#[test]
fn compressed_files_are_standard_fits() {
    let Some(parkes) = real("radio_parkes_1904-66_SIN.fits") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("parkes.sz.fits");
    let o = skyzip(&["compress", s(&parkes), s(&c), "--max-error", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    if have("fitsverify") {
        let v = Command::new("fitsverify")
            .arg("-q")
            .arg(&c)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&v.stdout);
        assert!(text.contains("verification OK"), "fitsverify: {text}");
    }
    if have("python3") {
        let py = format!(
            "from astropy.io import fits\nf = fits.open('{}')\nh = f[1].header\nassert h['ZCMPTYPE'] == 'SKYZIP_1', h\nassert h['CTYPE1'].startswith('RA'), h\nassert f[0].header['NAXIS'] == 0\nprint(len(f))",
            s(&c)
        );
        let r = Command::new("python3").args(["-c", &py]).output().unwrap();
        if String::from_utf8_lossy(&r.stderr).contains("No module named 'astropy'") {
            assert!(
                std::env::var_os("CI").is_none(),
                "astropy must be installed in CI"
            );
        } else {
            assert!(
                r.status.success(),
                "astropy: {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
    }
}

/// Rewrites a compressed file's table through `f` (fresh checksums unless `keep_sums`).
fn tamper(src: &Path, dst: &Path, f: impl FnOnce(&mut skyzip_fits::Table)) {
    let mut t = read_table_at(src, 1).unwrap();
    f(&mut t);
    let mut w = FitsWriter::create(dst, true).unwrap();
    w.copy_hdu(src, 0).unwrap();
    let ext = t.header.string("EXTNAME").unwrap_or_default();
    w.write_table(ext.trim(), &t).unwrap();
    w.write_checksums().unwrap();
    w.finish().unwrap();
}

#[test]
fn bad_compressed_input_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let img = skyzip_testdata::sample();
    let c = d.path().join("c.fits");
    assert!(skyzip(&["compress", s(&img), s(&c)]).status.success());
    let bytes = std::fs::read(&c).unwrap();
    let out = d.path().join("out.fits");
    let refuse = |file: &Path, want: &str| {
        let o = skyzip(&["decompress", s(file), s(&out)]);
        assert_eq!(o.status.code(), Some(2), "{want}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want), "wanted '{want}': {e}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(!out.exists(), "no output for a bad input");
    };
    // Truncated.
    let cut = d.path().join("cut.fits");
    std::fs::write(&cut, &bytes[..bytes.len() - 4000]).unwrap();
    refuse(&cut, "cut.fits");
    // A flipped byte in the data with the old checksums: caught by DATASUM.
    let flip = d.path().join("flip.fits");
    let mut b = bytes.clone();
    let at = b.len() - 5000;
    b[at] ^= 0x40;
    std::fs::write(&flip, &b).unwrap();
    refuse(&flip, "checksum");
    // A damaged tile with fresh checksums: caught by the tile's own hash or bitstream checks.
    let bad = d.path().join("tile.fits");
    tamper(&c, &bad, |t| {
        if let Some((_, Column::Bytes(rows))) = t.columns.first_mut() {
            let r = &mut rows[0];
            let k = r.len() / 2;
            r[k] ^= 0x10;
        }
    });
    refuse(&bad, "tile 0");
    // Another model's hash: refused by name.
    let other = d.path().join("model.fits");
    tamper(&c, &other, |t| {
        let card = t
            .header
            .cards
            .iter_mut()
            .find(|c| c.keyword() == "ZVAL1")
            .unwrap();
        *card = Card::new("ZVAL1   = '0123456789abcdef'");
    });
    refuse(&other, "hash");
    // Not a skyzip file.
    refuse(&img, "not written by skyzip compress");
    // Output = input, and an existing output without --force.
    let o = skyzip(&["decompress", s(&c), s(&c), "--force"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refusing to overwrite"));
    let o = skyzip(&["compress", s(&img), s(&c)]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read(&c).unwrap(),
        bytes,
        "the existing file is untouched"
    );
    // Bad options.
    for args in [
        vec!["compress", s(&img), "x.fits", "--max-error", "-1"],
        vec!["compress", s(&img), "x.fits", "--tile", "100"],
        vec![
            "compress",
            s(&img),
            "x.fits",
            "--model",
            "/no/such/model.safetensors",
        ],
    ] {
        let o = skyzip(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn compare_prints_every_codec_and_plots() {
    let Some(parkes) = real("radio_parkes_1904-66_SIN.fits") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let plot = d.path().join("rd.png");
    let o = skyzip(&[
        "compare",
        s(&parkes),
        "--errors",
        "1",
        "--repeat",
        "1",
        "--json",
        "--plot",
        s(&plot),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v[0]["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["codec"].as_str().unwrap()).collect();
    for want in [
        "RICE_1 q=4",
        "HCOMPRESS_1 s=4 q=4",
        "skyzip lossless q=4",
        "skyzip max-error 1σ",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    for r in rows
        .iter()
        .filter(|r| r["codec"].as_str().unwrap().starts_with("skyzip"))
    {
        assert_eq!(r["mask_preserved"], true);
        let (bpp, est) = (
            r["bits_per_pixel"].as_f64().unwrap(),
            r["est_bits_per_pixel"].as_f64().unwrap(),
        );
        assert!((bpp - est).abs() / bpp < 0.03, "{r}");
    }
    let m = rows
        .iter()
        .find(|r| r["codec"] == "skyzip max-error 1σ")
        .unwrap();
    assert!(m["max_err_sigma"].as_f64().unwrap() <= 1.0 + 1e-9);
    assert!(std::fs::metadata(&plot).unwrap().len() > 1000);
}

#[test]
fn rate_control_meets_its_targets() {
    let d = tempfile::tempdir().unwrap();
    let Some(img) = real("optical_eso_ntt_sep_image.fits") else {
        return;
    };
    let orig = read_image(&img, &HduSelector::FirstImage).unwrap();
    let npix = orig.npix() as f64;
    // Size: the file fits the budget.
    let c = d.path().join("bpp.fits");
    let o = skyzip(&["compress", s(&img), s(&c), "--target-bpp", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bpp = 8.0 * std::fs::metadata(&c).unwrap().len() as f64 / npix;
    assert!(bpp <= 7.0, "{bpp} bits/pixel");
    // Distortion: the decoded image is within the RMSE target (σ as the codec measures it).
    let c = d.path().join("rmse.fits");
    let o = skyzip(&["compress", s(&img), s(&c), "--target-rmse", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("rmse.out.fits");
    assert!(skyzip(&["decompress", s(&c), s(&out)]).status.success());
    let back = read_image(&out, &HduSelector::FirstImage).unwrap();
    let (rmse, _, mask) = skyzip_fits::physical_errors(&orig, &back);
    let sigma = read_table_at(&c, 1).unwrap().header.f64("SZSIGMA").unwrap();
    assert!(mask && rmse / sigma <= 0.5 + 1e-9, "RMSE {}σ", rmse / sigma);
    assert!(rmse > 0.0, "a lossy mode was chosen");
    // The RMSE mode: within its target, no larger than --target-rmse's pick, verified, shown
    // by `info` and in the decoded file's HISTORY.
    let m = d.path().join("mode.fits");
    let o = skyzip(&["compress", s(&img), s(&m), "--rmse", "0.5", "--verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(&m).unwrap().len() >= std::fs::metadata(&c).unwrap().len());
    let out = d.path().join("mode.out.fits");
    assert!(skyzip(&["decompress", s(&m), s(&out)]).status.success());
    let back = read_image(&out, &HduSelector::FirstImage).unwrap();
    let (rmse, max, mask) = skyzip_fits::physical_errors(&orig, &back);
    assert!(
        mask && rmse / sigma <= 0.5 * (1.0 + 1e-6),
        "RMSE {}σ",
        rmse / sigma
    );
    assert!(
        rmse / sigma > 0.4 && max > rmse,
        "RMSE {}σ max {max}",
        rmse / sigma
    );
    let info = String::from_utf8_lossy(&skyzip(&["info", s(&m)]).stdout).to_string();
    assert!(
        info.contains("rmse ≤ 0.5 σ") && info.contains("no per-pixel bound"),
        "{info}"
    );
    let history: Vec<String> = back
        .header
        .cards
        .iter()
        .map(|c| c.text().to_string())
        .filter(|t| t.starts_with("HISTORY"))
        .collect();
    assert!(
        history.iter().any(|h| h.contains("mode rmse")),
        "{history:?}"
    );
    // A negative target: one line naming the file, exit 2.
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&d.path().join("y.fits")),
        "--rmse=-1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("RMSE target -1"), "{}", stderr(&o));
    // An impossible target is refused clearly.
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&d.path().join("x.fits")),
        "--target-bpp",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn quality_levels_eta_and_the_rate_model() {
    let d = tempfile::tempdir().unwrap();
    let Some(img) = real("gamma_fermi_3fhl_gc_counts_int16.fits") else {
        return;
    };
    let zval = |path: &Path, name: &str| {
        skyzip_codec::codec::zval(&read_table_at(path, 1).unwrap().header, name)
    };
    // --quality 5 is --max-error 1, --quality 10 lossless.
    let c = d.path().join("q5.fits");
    let o = skyzip(&["compress", s(&img), s(&c), "--quality", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(zval(&c, "MODE").unwrap(), "max-error");
    assert_eq!(zval(&c, "MAXERR").unwrap().parse::<f64>().unwrap(), 1.0);
    let c = d.path().join("q10.fits");
    assert!(skyzip(&["compress", s(&img), s(&c), "--quality", "10"])
        .status
        .success());
    assert_eq!(zval(&c, "MODE").unwrap(), "lossless");
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&d.path().join("x.fits")),
        "--quality",
        "11",
    ]);
    assert_eq!(o.status.code(), Some(2));
    // The bundled rate model (learned prior) round-trips exactly and names itself in the file.
    let c = d.path().join("rate.fits");
    let out = d.path().join("rate.out.fits");
    let o = skyzip(&["compress", s(&img), s(&c), "--model", "rate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(skyzip(&["decompress", s(&c), s(&out)]).status.success());
    let (a, b) = (
        read_image(&img, &HduSelector::FirstImage).unwrap(),
        read_image(&out, &HduSelector::FirstImage).unwrap(),
    );
    assert!(a.pixels.bit_identical(&b.pixels));
    // auto: every bundled model tried, the smaller file kept, and it decodes on its own.
    let c = d.path().join("auto.fits");
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&c),
        "--model",
        "auto",
        "--max-error",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sizes: Vec<u64> = ["default", "rate"]
        .iter()
        .map(|m| {
            let f = d.path().join(format!("single-{m}.fits"));
            let o = skyzip(&["compress", s(&img), s(&f), "--model", m, "--max-error", "2"]);
            assert!(o.status.success(), "{}", stderr(&o));
            std::fs::metadata(&f).unwrap().len()
        })
        .collect();
    assert_eq!(
        std::fs::metadata(&c).unwrap().len(),
        *sizes.iter().min().unwrap()
    );
    assert!(
        skyzip(&["decompress", s(&c), s(&d.path().join("auto.out.fits"))])
            .status
            .success()
    );
    // auto with a size budget: the file fits it.
    let c = d.path().join("auto-bpp.fits");
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&c),
        "--model",
        "auto",
        "--target-bpp",
        "1.6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let npix = read_image(&img, &HduSelector::FirstImage).unwrap().npix() as f64;
    assert!(8.0 * std::fs::metadata(&c).unwrap().len() as f64 / npix <= 1.6);
    // η needs a tunable model: the bundled ones are not, and say so.
    let o = skyzip(&[
        "compress",
        s(&img),
        s(&d.path().join("e.fits")),
        "--eta",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tunable"), "{}", stderr(&o));
}

#[test]
fn bench_codec_prints_skyzip_beside_rice() {
    // The bundled sample, one repeat: RICE, skyzip lossless and one lossy mode, each with its
    // rate and both speeds measured in the same run.
    let o = skyzip(&["bench", "codec", "--repeat", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sp = v[0]["speeds"].as_array().unwrap();
    let names: Vec<&str> = sp.iter().map(|s| s["codec"].as_str().unwrap()).collect();
    assert_eq!(names, ["RICE_1", "skyzip lossless", "skyzip max-error 1σ"]);
    for s in sp {
        for k in ["bits_per_pixel", "encode_mb_s", "decode_mb_s"] {
            assert!(s[k].as_f64().unwrap() > 0.0, "{s}");
        }
    }
    // Lossless skyzip beats RICE's bytes on the sample; the lossy mode is smaller still.
    let bpp: Vec<f64> = sp
        .iter()
        .map(|s| s["bits_per_pixel"].as_f64().unwrap())
        .collect();
    assert!(bpp[1] < bpp[0] && bpp[2] < bpp[1], "{bpp:?}");
    let o = skyzip(&["bench", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown benchmark"), "{}", stderr(&o));
}

#[test]
fn integer_codec_export_compresses_and_decodes_exactly() {
    // A tiny tunable meanvar conv-ae, exported as a codec model (integer engine), codes the
    // bundled frame losslessly, with every η; the files decode to the original pixels.
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("mv.json");
    let text = serde_json::json!({
        "model": {"name": "meanvar", "base": {"name": "conv-ae", "width": 8,
                  "stages": [8, 8, 8], "latent": 2, "tunable": true}},
        "data": {"source": {"type": "simulator", "kind": "ccd", "n": 8, "seed": 3},
                 "normalisation": {"kind": "asinh", "softening": 3.0}, "crop": 64},
        "batch_size": 4, "epochs": 1, "seed": 3
    });
    std::fs::write(&cfg, text.to_string()).unwrap();
    let run = d.path().join("run");
    let o = skyzip(&["train", "--config", s(&cfg), "--out", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Exported twice: the same run gives the same file (the model's hash is over its bytes).
    let (m, m2) = (
        d.path().join("int.safetensors"),
        d.path().join("int2.safetensors"),
    );
    for out in [&m, &m2] {
        let o = skyzip(&[
            "export",
            "--run",
            s(&run),
            "--part",
            "codec",
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(m.with_extension("json")).unwrap()).unwrap();
    assert_eq!(info["part"], "codec");
    assert_eq!(info["engine"], "skyzip-codec-model/1");
    assert_eq!(std::fs::read(&m).unwrap(), std::fs::read(&m2).unwrap());
    let src = skyzip_testdata::sample();
    let a = read_image(&src, &HduSelector::FirstImage).unwrap();
    for eta in [None, Some("1")] {
        let c = d.path().join("c.fits");
        let mut args = vec!["compress", "--force", "--model", s(&m), s(&src), s(&c)];
        if let Some(k) = eta {
            args.extend(["--eta", k]);
        }
        let o = skyzip(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let back = d.path().join("back.fits");
        let o = skyzip(&["decompress", "--force", "--model", s(&m), s(&c), s(&back)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let b = read_image(&back, &HduSelector::FirstImage).unwrap();
        assert!(a.pixels.bit_identical(&b.pixels), "η {eta:?}");
    }
    // η beyond the latent, and η on a model not trained for it, are refused by name.
    for (model, eta, why) in [
        (s(&m), "3", "2 latent channels"),
        ("default", "2", "tunable"),
    ] {
        let o = skyzip(&[
            "compress",
            "--model",
            model,
            "--eta",
            eta,
            s(&src),
            s(&d.path().join("eta.fits")),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
    // The float export of the same run is not a codec model: refused, saying what is.
    let f = d.path().join("float.safetensors");
    let o = skyzip(&["export", "--run", s(&run), "--part", "full", "--out", s(&f)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = d.path().join("c.fits");
    let o = skyzip(&[
        "decompress",
        "--model",
        s(&f),
        s(&c),
        s(&d.path().join("x.fits")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("export --part codec"), "{}", stderr(&o));
}

/// `compare --photometry` on the bundled frame: the original's sources measured on every
/// decoded image (exact codecs change nothing; a lossy one says how much), saved as JSON and
/// printed again from it (`--from-json`, `--summary`) without running anything.
#[test]
fn photometry_is_checked_and_reports_print_from_json() {
    let d = tempfile::tempdir().unwrap();
    let o = skyzip(&[
        "compare",
        "--photometry",
        "--errors",
        "1",
        "--rmse",
        "0.6",
        "--codecs",
        "rice,hcompress:s=4",
        "--repeat",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let setup = &v[0]["photometry"];
    assert!(setup["sources"].as_u64().unwrap() >= 3, "{setup}");
    for r in v[0]["rows"].as_array().unwrap() {
        let p = &r["photometry"];
        assert_eq!(p["sources"], setup["sources"], "{r}");
        assert_eq!(p["lost"], 0, "{r}");
        if r["exact"] == true {
            assert_eq!(p["median_bias"], 0.0, "{r}");
            assert_eq!(p["scatter"], 0.0, "{r}");
            assert_eq!(p["max_shift"], 0.0, "{r}");
        } else {
            assert!(p["scatter"].as_f64().unwrap() > 0.0, "{r}");
            assert!(p["max_shift"].as_f64().unwrap() < 1.0, "{r}");
        }
    }
    // The RMSE mode at the max-error file's own RMSE: no larger RMSE, fewer tile bytes (the
    // bundled frame at 1σ: 45,133 against 49,575).
    let rows = v[0]["rows"].as_array().unwrap();
    let row = |f: &dyn Fn(&str) -> bool| {
        rows.iter()
            .find(|r| f(r["codec"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{rows:?}"))
    };
    let bounded = row(&|c| c == "skyzip max-error 1σ");
    let matched = row(&|c| c.starts_with("skyzip rmse") && c.ends_with("(at max-error 1σ)"));
    assert!(matched["rmse_sigma"].as_f64() <= bounded["rmse_sigma"].as_f64());
    assert!(matched["tile_bytes"].as_u64() < bounded["tile_bytes"].as_u64());
    let report = d.path().join("report.json");
    std::fs::write(&report, &o.stdout).unwrap();
    let o = skyzip(&["compare", "--from-json", s(&report)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "bundled sample",
        "HCOMPRESS_1 s=4",
        "skyzip max-error 1σ",
        "skyzip rmse 0.6σ",
        "bias/σ_F",
        "at matched bits: HCOMPRESS_1 s=4",
        "lossless: skyzip",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let o = skyzip(&["compare", "--from-json", s(&report), "--summary"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("optical_ccd_raw_saao_a8280271")
            && text.contains("s=4@")
            && text.contains("the RMSE mode at each max-error point's RMSE/σ")
            && text.contains("1σ 49575 → 45133"),
        "{text}"
    );
    // Held against an earlier report (here the one above): the RMSE mode also runs at its
    // max-error point's RMSE, and the summary reads today's curves and that file there.
    let o = skyzip(&[
        "compare",
        "--errors",
        "1",
        "--rmse",
        "none",
        "--codecs",
        "rice",
        "--repeat",
        "1",
        "--json",
        "--baseline",
        s(&report),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = d.path().join("again.json");
    std::fs::write(&again, &o.stdout).unwrap();
    let o = skyzip(&[
        "compare",
        "--from-json",
        s(&again),
        "--summary",
        "--baseline",
        s(&report),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("the RMSE mode's file at that RMSE: tile bytes then → now")
            && text.contains("1σ 0.5916 → ")
            && text.contains("; 49575 → ")
            && text.contains("lower at 1 of 1 lossy points"),
        "{text}"
    );
    // A file that is not a report, as the report or as the baseline: one line naming it,
    // exit 2.
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    for args in [
        vec!["compare", "--from-json", s(&bad)],
        vec![
            "compare",
            "--from-json",
            s(&report),
            "--summary",
            "--baseline",
            s(&bad),
        ],
    ] {
        let o = skyzip(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
    }
}
