//! Files skyzip writes are read by Debian's funpack to the same pixels, pass fitsverify, and
//! RICE sizes agree with fpack's own.

mod common;
use common::*;
use skyzip_fits::{read_image, HduSelector};
use skyzip_testdata::real_files;
use std::process::Command;

const CODECS: &[&str] = &[
    "rice",
    "gzip1",
    "gzip2",
    "hcompress",
    "hcompress:s=4",
    "gzip2:q=0",
    "quantize:q=16:dither=2",
];

/// fitsverify's error count for a file.
fn fitsverify_errors(path: &std::path::Path) -> usize {
    let out = Command::new("fitsverify")
        .args(["-q", "-e", s(path)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.contains("verification OK") {
        return 0;
    }
    // "verification FAILED: FILE, N errors"
    text.rsplit(", ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected fitsverify output: {text}"))
}

/// Output passes fitsverify with 0 errors, except errors already in the input's own header cards
/// (MAGPIS's DATE-OBS = '' and DATE-MAP = '20070425'), which skyzip copies faithfully.
fn assert_no_new_errors(input: &std::path::Path, output: &std::path::Path) {
    let (before, after) = (fitsverify_errors(input), fitsverify_errors(output));
    assert!(
        after <= before,
        "fitsverify: {} has {after} errors, its input {before}",
        output.display()
    );
}

#[test]
fn funpack_decodes_every_codec_to_our_pixels_and_fitsverify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let funpack = have("funpack");
    let fitsverify = have("fitsverify");
    let Some(files) = real_files() else {
        return;
    };
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let bitpix = read_image(&file, &HduSelector::FirstImage)
            .unwrap()
            .bitpix();
        for codec in CODECS {
            if bitpix > 0 && codec.contains("q=") {
                continue; // float-only settings
            }
            let fz = dir
                .path()
                .join(format!("{stem}.{}.fits.fz", codec.replace([':', '='], "_")));
            let o = skyzip(&["pack", s(&file), s(&fz), "--codec", codec]);
            assert!(
                o.status.success(),
                "pack {codec} {}: {}",
                file.display(),
                stderr(&o)
            );
            let ours = read_image(&fz, &HduSelector::FirstImage).unwrap();
            if funpack {
                let plain = dir.path().join(format!(
                    "{stem}.{}.funpacked.fits",
                    codec.replace([':', '='], "_")
                ));
                let st = Command::new("funpack")
                    .args(["-O", s(&plain), s(&fz)])
                    .status()
                    .unwrap();
                assert!(st.success(), "funpack failed on {}", fz.display());
                let theirs = read_image(&plain, &HduSelector::FirstImage).unwrap();
                assert_eq!(theirs.axes, ours.axes);
                let (a, b) = (ours.physical(), theirs.physical());
                let diff = a
                    .iter()
                    .zip(&b)
                    .filter(|(x, y)| !(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())))
                    .count();
                assert_eq!(
                    diff,
                    0,
                    "{} {codec}: funpack and skyzip disagree on {diff} pixels",
                    file.display()
                );
            }
            if fitsverify {
                assert_no_new_errors(&file, &fz);
            }
        }
        // The plain rewrite passes fitsverify too.
        let plain = dir.path().join(format!("{stem}.plain.fits"));
        let o = skyzip(&[
            "unpack",
            s(&dir.path().join(format!("{stem}.rice.fits.fz"))),
            s(&plain),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        if fitsverify {
            assert_no_new_errors(&file, &plain);
        }
    }
}

#[test]
fn rice_sizes_agree_with_fpack() {
    if !have("fpack") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(files) = real_files() else {
        return;
    };
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let copy = dir.path().join(format!("{stem}.fits"));
        std::fs::copy(&file, &copy).unwrap();
        // fpack -r (RICE, q=4 for floats); -D would delete the input: keep it, output NAME.fits.fz.
        let st = Command::new("fpack")
            .args(["-r", s(&copy)])
            .status()
            .unwrap();
        assert!(st.success());
        let theirs = std::fs::metadata(dir.path().join(format!("{stem}.fits.fz")))
            .unwrap()
            .len() as f64;
        let o = skyzip(&[
            "classic",
            s(&file),
            "--codecs",
            "rice",
            "--repeat",
            "1",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let ours = v[0]["results"][0]["bytes"].as_f64().unwrap();
        // fpack also copies non-image HDUs (HorseHead's mask table): compare like with like.
        let extra: f64 = skyzip_fits::list_hdus(&file)
            .unwrap()
            .iter()
            .filter(|h| !h.has_image() && h.index > 0)
            .map(|h| {
                let d = tempfile::tempdir().unwrap();
                let p = d.path().join("t.fits");
                let mut w = skyzip_fits::FitsWriter::create(&p, false).unwrap();
                w.copy_hdu(&file, h.index).unwrap();
                w.finish().unwrap();
                std::fs::metadata(&p).unwrap().len() as f64
            })
            .sum();
        let theirs = theirs - extra;
        // Same codec, same data bytes; headers may differ by one 2880-byte block (fpack adds a
        // few keywords), which matters only on the smallest images.
        let rel = (ours - theirs).abs() / theirs;
        assert!(
            rel < 0.03 || (ours - theirs).abs() <= 2880.0,
            "{}: ours {ours} vs fpack {theirs} bytes ({:.1} %)",
            file.display(),
            rel * 100.0
        );
    }
}

/// `compare` with no file lists JPEG-XL e7/e9 and JPEG-LS (lossless and near-lossless) beside
/// skyzip on the bundled frame, with bytes and speeds; without the libraries (outside CI) their
/// rows say how to install them.
#[test]
fn compare_lists_jpeg_xl_and_jpeg_ls() {
    let o = skyzip(&[
        "compare",
        "--errors",
        "1",
        "--codecs",
        "rice,jxl:e=7,jxl:e=9,jpegls,jpegls:near=1",
        "--repeat",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v[0]["rows"].as_array().unwrap();
    let required = std::env::var("SKYZIP_REQUIRE_PEERS").as_deref() == Ok("1");
    for want in ["JPEG-XL e7", "JPEG-XL e9", "JPEG-LS", "JPEG-LS near=7 (1σ)"] {
        let r = rows
            .iter()
            .find(|r| r["codec"] == want)
            .unwrap_or_else(|| panic!("{want}: {rows:?}"));
        if let Some(f) = r.get("failed") {
            assert!(
                !required && f.as_str().unwrap().contains("apt-get install"),
                "{r}"
            );
            continue;
        }
        assert!(r["bytes"].as_u64().unwrap() > 2880, "{r}");
        assert!(r["encode_mb_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["decode_mb_s"].as_f64().unwrap() > 0.0, "{r}");
        assert_eq!(r["exact"], !want.contains("near"), "{r}");
        assert_eq!(r["mask_preserved"], true, "{r}");
    }
}
