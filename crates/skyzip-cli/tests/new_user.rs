//! What a new user hits first, as processes on real and made-up files: standard files that
//! fitsverify passes, floats that come back exactly where promised, decoded files that keep the
//! original structure and say how they were coded, and one clear line for every bad input.

mod common;
use common::*;
use skyzip_fits::{
    read_header, read_image, Card, FitsWriter, HduSelector, Header, ImageHdu, Pixels,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = skyzip(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn refused(args: &[&str], words: &str) -> String {
    let o = skyzip(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
    assert!(
        e.to_lowercase().contains(&words.to_lowercase()),
        "{args:?}: expected '{words}' in: {e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line expected: {e}");
    e
}

/// fitsverify's warnings and errors, with the card numbers taken out (they move when the cards
/// move to another HDU), as a set of messages.
fn fitsverify_findings(path: &Path) -> BTreeSet<String> {
    let out = Command::new("fitsverify").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("Verification found") || text.contains("verification OK"),
        "unexpected fitsverify output: {text}"
    );
    text.lines()
        .filter(|l| l.starts_with("*** Warning") || l.starts_with("*** Error"))
        .map(|l| {
            let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
            // "Keyword #41, CRPIX1: …" → "Keyword CRPIX1: …"; duplicates name two numbers.
            let mut out = String::new();
            let mut skip = false;
            for w in l.split(' ') {
                if skip {
                    skip = false;
                    continue;
                }
                if w == "card" || w.starts_with('#') {
                    skip = w == "card";
                    continue;
                }
                out.push_str(w);
                out.push(' ');
            }
            out.trim().to_string()
        })
        .collect()
}

/// The small real frame that travels with the repository, copied into `dir`.
fn sample_in(dir: &Path) -> PathBuf {
    let p = dir.join("saao.fits");
    std::fs::copy(skyzip_testdata::sample(), &p).unwrap();
    p
}

fn float_image(path: &Path, nx: usize, ny: usize, f: impl Fn(usize) -> f32, cards: &[&str]) {
    let h = Header {
        cards: cards.iter().map(|c| Card::new(c)).collect(),
    };
    let mut w = FitsWriter::create(path, true).unwrap();
    w.write_image(
        &ImageHdu::new(vec![nx, ny], Pixels::F32((0..nx * ny).map(f).collect()), h),
        None,
    )
    .unwrap();
    w.finish().unwrap();
}

#[test]
fn compressed_files_verify_clean_and_decode_to_the_original_file() {
    let d = tempfile::tempdir().unwrap();
    let fitsverify = have("fitsverify");
    let mut files = vec![sample_in(d.path())];
    files.extend(skyzip_testdata::real_files().unwrap_or_default());
    for (k, f) in files.iter().enumerate() {
        let c = d.path().join(format!("c{k}.fits"));
        let o = d.path().join(format!("o{k}.fits"));
        ok(&["compress", s(f), s(&c)]);
        if fitsverify {
            // Nothing fitsverify says of the compressed file that it does not say of the
            // original's own cards (ESO's duplicated keywords, MAGPIS's dates and EPOCH, SAAO's
            // EPOCH travel with the header, as they do through fpack); none at all elsewhere.
            let (before, after) = (fitsverify_findings(f), fitsverify_findings(&c));
            let new: Vec<_> = after.difference(&before).collect();
            assert!(new.is_empty(), "{}: fitsverify: {new:?}", f.display());
        }
        // The primary image left a primary with no axes and no WCS behind.
        let h0 = read_header(&c, 0).unwrap();
        assert_eq!(h0.f64("NAXIS"), Some(0.0));
        assert!(h0.get("CRPIX1").is_none() && h0.get("BZERO").is_none());
        ok(&["decompress", s(&c), s(&o)]);
        let orig = read_image(f, &HduSelector::FirstImage).unwrap();
        if orig.bitpix() > 0 {
            // Lossless integers: the decoded file is the original, byte for byte (the image back
            // in the primary, every card in place, other HDUs copied).
            let (a, b) = (std::fs::read(f).unwrap(), std::fs::read(&o).unwrap());
            let at = a.iter().zip(&b).position(|(x, y)| x != y);
            assert!(
                a.len() == b.len() && at.is_none(),
                "{}: decoded file differs from the original ({} vs {} bytes, first at {at:?}: {:?})",
                f.display(),
                a.len(),
                b.len(),
                at.map(|i| String::from_utf8_lossy(&b[i / 80 * 80..(i / 80 * 80 + 80).min(b.len())]).into_owned())
            );
        } else {
            let back = read_image(&o, &HduSelector::FirstImage).unwrap();
            assert_eq!(back.hdu, 0, "{}: image back in the primary", f.display());
            assert_eq!(
                skyzip_fits::list_hdus(&o).unwrap().len(),
                skyzip_fits::list_hdus(f).unwrap().len()
            );
            // Floats at the default q are quantised, and the decoded file says so.
            assert!(back
                .header
                .cards
                .iter()
                .any(|c| c.text().starts_with("HISTORY skyzip")));
            // With q = 0 the decoded file is the original, byte for byte, and no tile costs
            // more than its raw bits: the file is never larger than the original.
            let c0 = d.path().join(format!("c{k}.q0.fits"));
            let o0 = d.path().join(format!("o{k}.q0.fits"));
            ok(&["compress", s(f), s(&c0), "--q", "0"]);
            ok(&["decompress", s(&c0), s(&o0)]);
            let (a, b) = (std::fs::read(f).unwrap(), std::fs::read(&o0).unwrap());
            assert!(a == b, "{}: q = 0 is not bit-exact", f.display());
            let size = std::fs::metadata(&c0).unwrap().len();
            assert!(
                size <= a.len() as u64,
                "{}: {size} bytes at q = 0",
                f.display()
            );
        }
    }
}

#[test]
fn floats_are_bit_exact_with_q0_and_constant_tiles_in_every_mode() {
    let d = tempfile::tempdir().unwrap();
    // A constant image: fpack restores it exactly; so must the default mode.
    let flat = d.path().join("flat.fits");
    float_image(&flat, 300, 200, |_| 7.5, &[]);
    // Awkward values: −0.0, infinities, subnormals, NaNs with payloads, noise.
    let odd = d.path().join("odd.fits");
    let special = [
        -0.0f32,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(1),
        f32::from_bits(0x7fc0_0001),
        f32::from_bits(0xffff_ffff),
        f32::NAN,
        f32::MAX,
    ];
    // The awkward values sit in the first tile's rows; the other tiles hold noise only.
    let is_special = |i: usize| i % 997 < special.len() && i < 300 * 100;
    float_image(
        &odd,
        300,
        270,
        |i| {
            if is_special(i) {
                special[i % 997]
            } else {
                100.0 + ((i * 7919) % 1013) as f32 * 0.01
            }
        },
        &["BUNIT   = 'Jy/beam '"],
    );
    for (img, args, exact) in [
        (&flat, vec![], true),
        (&flat, vec!["--max-error", "2"], true),
        (&odd, vec!["--q", "0"], true),
        (&odd, vec![], false),
    ] {
        let c = d.path().join("c.fits");
        let o = d.path().join("o.fits");
        let mut a = vec!["compress", s(img), s(&c), "--force"];
        a.extend(&args);
        ok(&a);
        ok(&["decompress", s(&c), s(&o), "--force"]);
        let (x, y) = (
            read_image(img, &HduSelector::FirstImage).unwrap(),
            read_image(&o, &HduSelector::FirstImage).unwrap(),
        );
        assert_eq!(
            x.pixels.bit_identical(&y.pixels),
            exact,
            "{} {args:?}",
            img.display()
        );
        assert_eq!(x.mask(), y.mask(), "NaN mask");
        let history = y
            .header
            .cards
            .iter()
            .any(|c| c.text().starts_with("HISTORY skyzip"));
        assert_eq!(history, !exact, "HISTORY only on a lossy decode");
    }
    // Infinities cannot be quantised: their tiles go bit-exact in the default mode too, the
    // others are quantised.
    let c = d.path().join("c.fits");
    let o = d.path().join("o.fits");
    let out = ok(&["compress", s(&odd), s(&c), "--force"]);
    assert!(out.contains("bit-exact floats"), "{out}");
    ok(&["decompress", s(&c), s(&o), "--force"]);
    let (x, y) = (
        read_image(&odd, &HduSelector::FirstImage).unwrap(),
        read_image(&o, &HduSelector::FirstImage).unwrap(),
    );
    let (Pixels::F32(a), Pixels::F32(b)) = (&x.pixels, &y.pixels) else {
        panic!("floats expected");
    };
    for i in (0..a.len()).filter(|&i| is_special(i)) {
        assert_eq!(
            a[i].to_bits(),
            b[i].to_bits(),
            "pixel {i}: {} → {}",
            a[i],
            b[i]
        );
    }
    // q = 0 is bit-exact, so a max error with it is refused.
    refused(
        &[
            "compress",
            s(&odd),
            s(&d.path().join("x.fits")),
            "--q",
            "0",
            "--max-error",
            "1",
        ],
        "q = 0",
    );
    // --help says which mode is exact for floats.
    let help = ok(&["compress", "--help"]);
    assert!(help.contains("bit-exact floats"), "{help}");
}

#[test]
fn lossy_decodes_carry_history_and_checksums() {
    let d = tempfile::tempdir().unwrap();
    let img = sample_in(d.path());
    let c = d.path().join("c.fits");
    let o = d.path().join("o.fits");
    ok(&["compress", s(&img), s(&c), "--max-error", "1"]);
    ok(&["decompress", s(&c), s(&o)]);
    let h = read_header(&o, 0).unwrap();
    let history: Vec<&str> = h
        .cards
        .iter()
        .map(Card::text)
        .filter(|t| t.starts_with("HISTORY"))
        .collect();
    let all = history.join("\n");
    for want in [
        "SKYZIP_1",
        "max-error",
        "sigma",
        "data units",
        "model default",
        "hash",
    ] {
        assert!(all.contains(want), "{want} missing from {all}");
    }
    assert!(h.get("CHECKSUM").is_some() && h.get("DATASUM").is_some());
    let sums = skyzip_fits::verify_checksums(&o).unwrap();
    assert!(
        sums.iter().all(|(_, c)| *c == skyzip_fits::Checksum::Ok),
        "{sums:?}"
    );
}

#[test]
fn pack_unpack_keep_the_structure_and_skyzip_files_are_recognised() {
    let d = tempfile::tempdir().unwrap();
    let img = sample_in(d.path());
    // pack → unpack gives the primary image back in the primary, at the original's size.
    let fz = d.path().join("p.fits.fz");
    let back = d.path().join("p.fits");
    let out = ok(&["pack", s(&img), s(&fz)]);
    assert!(out.contains("bytes"), "pack says what it did: {out}");
    ok(&["unpack", s(&fz), s(&back)]);
    assert_eq!(skyzip_fits::list_hdus(&back).unwrap().len(), 1);
    assert_eq!(
        std::fs::metadata(&back).unwrap().len(),
        std::fs::metadata(&img).unwrap().len()
    );
    let (a, b) = (
        read_image(&img, &HduSelector::FirstImage).unwrap(),
        read_image(&back, &HduSelector::FirstImage).unwrap(),
    );
    assert!(a.pixels.bit_identical(&b.pixels) && b.hdu == 0);
    if have("funpack") {
        // fpack's reader restores our pack output to the primary too (ZSIMPLE).
        let f = d.path().join("funpacked.fits");
        let o = Command::new("funpack")
            .args(["-O", s(&f), s(&fz)])
            .output()
            .unwrap();
        assert!(o.status.success());
        assert_eq!(
            std::fs::metadata(&f).unwrap().len(),
            std::fs::metadata(&img).unwrap().len()
        );
    }
    if have("fpack") {
        // And our unpack restores fpack's output of a primary image the same way.
        let f = d.path().join("fpacked.fits.fz");
        let o = Command::new("fpack")
            .args(["-O", s(&f), s(&img)])
            .output()
            .unwrap();
        assert!(o.status.success());
        let u = d.path().join("u.fits");
        ok(&["unpack", s(&f), s(&u)]);
        assert_eq!(skyzip_fits::list_hdus(&u).unwrap().len(), 1);
        assert_eq!(
            std::fs::metadata(&u).unwrap().len(),
            std::fs::metadata(&img).unwrap().len()
        );
    }
    // A skyzip file: info describes it; pack, unpack and compress refuse it by name.
    let c = d.path().join("c.fits");
    ok(&["compress", s(&img), s(&c), "--max-error", "2"]);
    let info = ok(&["info", s(&c)]);
    for want in [
        "skyzip compressed image",
        "max-error 2 σ",
        "model default",
        "ratio",
        "tiles",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }
    let x = d.path().join("x.fits");
    refused(&["unpack", s(&c), s(&x)], "skyzip decompress");
    refused(&["pack", s(&c), s(&x)], "skyzip decompress");
    refused(&["compress", s(&c), s(&x)], "already compressed by skyzip");
    assert!(!x.exists());
}

#[test]
fn nothing_to_compress_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("tables.fits");
    let mut w = FitsWriter::create(&t, false).unwrap();
    w.write_table(
        "CAT",
        &skyzip_fits::Table {
            columns: vec![("FLUX".into(), skyzip_fits::Column::F64(vec![1.0, 2.0]))],
            header: Header::default(),
        },
    )
    .unwrap();
    w.finish().unwrap();
    let x = d.path().join("x.fits");
    let e = refused(&["compress", s(&t), s(&x)], "no image HDU");
    assert!(e.contains("tables.fits"), "{e}");
    assert!(!x.exists());
}

#[test]
fn bad_arguments_get_one_clear_line() {
    let d = tempfile::tempdir().unwrap();
    let img = sample_in(d.path());
    let missing = d.path().join("nope.fits");
    let x = d.path().join("x.fits");
    for cmd in ["compress", "decompress", "pack", "unpack"] {
        let e = refused(&[cmd, s(&missing), s(&x)], "no such file");
        assert!(e.contains("nope.fits"), "{cmd}: {e}");
    }
    let e = refused(&["compress", s(&img), s(&x), "--model", "bogus"], "bogus");
    for name in ["default", "rate", "auto", "safetensors"] {
        assert!(e.contains(name), "--model bogus should list {name}: {e}");
    }
    // An output that is a directory: named as such, with or without --force.
    for force in [false, true] {
        let mut a = vec!["compress", s(&img), s(d.path())];
        if force {
            a.push("--force");
        }
        refused(&a, "is a directory");
    }
    refused(&["compress", s(&img), "-"], "standard output");
    assert!(!Path::new("-").exists());
    // A flipped bit in a tile, checksums blanked: a damaged tile, not a "truncated" file.
    let c = d.path().join("c.fits");
    ok(&["compress", s(&img), s(&c)]);
    let mut bytes = std::fs::read(&c).unwrap();
    for key in [b"CHECKSUM", b"DATASUM "] {
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(8).position(|w| w == key) {
            let i = at + i;
            bytes[i..i + 8].copy_from_slice(b"COMMENT ");
            at = i + 8;
        }
    }
    let n = bytes.len();
    bytes[n - 3000] ^= 0x10;
    let flip = d.path().join("flip.fits");
    std::fs::write(&flip, &bytes).unwrap();
    let o = skyzip(&["decompress", s(&flip), s(&x)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(!e.contains("truncated") && !e.contains("panicked"), "{e}");
    assert!(e.contains("tile"), "{e}");
    // info of several files reports each, names the bad one, and fails at the end.
    let o = skyzip(&["info", s(&img), s(&missing), s(&c)]);
    assert_eq!(o.status.code(), Some(2));
    let (out, e) = (stdout(&o), stderr(&o));
    assert!(out.contains("saao.fits") && out.contains("c.fits"), "{out}");
    assert!(e.contains("nope.fits") && e.contains("1 of 3"), "{e}");
}

#[test]
fn classic_and_compare_go_on_past_a_failing_codec() {
    let d = tempfile::tempdir().unwrap();
    // HCOMPRESS cannot code a 1×1 image: its row says so and the table goes on.
    let one = d.path().join("one.fits");
    let mut w = FitsWriter::create(&one, false).unwrap();
    w.write_image(
        &ImageHdu::new(vec![1, 1], Pixels::I16(vec![5]), Header::default()),
        None,
    )
    .unwrap();
    w.finish().unwrap();
    let out = ok(&[
        "classic",
        s(&one),
        "--codecs",
        "hcompress,rice",
        "--repeat",
        "1",
    ]);
    let row = out
        .lines()
        .find(|l| l.contains("HCOMPRESS_1"))
        .unwrap_or("");
    assert!(row.contains("failed"), "{out}");
    assert!(out.contains("RICE_1 "), "the table goes on: {out}");
    // A constant float image: every exact codec has RMSE 0 (σ = 0, said so), never NaN.
    let flat = d.path().join("flat.fits");
    float_image(&flat, 64, 64, |_| 7.5, &[]);
    let out = ok(&[
        "classic",
        s(&flat),
        "--codecs",
        "rice,gzip2:q=0",
        "--repeat",
        "1",
    ]);
    assert!(
        out.contains("GZIP_2 lossless") && out.contains("σ = 0"),
        "{out}"
    );
    assert!(!out.contains("NaN"), "{out}");
    let json = ok(&[
        "classic",
        s(&flat),
        "--codecs",
        "gzip2:q=0",
        "--repeat",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["results"][0]["rmse_sigma"], 0.0, "{json}");
    // Integer images drop the quantisers, and say why.
    let img = sample_in(d.path());
    let out = ok(&[
        "classic",
        s(&img),
        "--codecs",
        "rice,quantize:q=4",
        "--repeat",
        "1",
    ]);
    assert!(out.contains("quantize:q=4 (= RICE_1)"), "{out}");
    assert!(out.contains("536×520"), "shapes in FITS order: {out}");
    // compare with no file runs on the bundled frame, explains its columns, plots.
    let plot = d.path().join("rd.png");
    let out = ok(&[
        "compare",
        "--errors",
        "2",
        "--codecs",
        "rice,hcompress:s=4",
        "--repeat",
        "1",
        "--plot",
        s(&plot),
    ]);
    for want in [
        "bundled sample",
        "tile bytes",
        "est bpp",
        "2880-byte",
        "skyzip max-error 2σ",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(std::fs::metadata(&plot).unwrap().len() > 1000);
    // HCOMPRESS losing Parkes's NaN mask: scientific notation, marked, and off the plot.
    if let Some(parkes) = skyzip_testdata::real("radio_parkes_1904-66_SIN.fits") {
        let out = ok(&[
            "compare",
            s(&parkes),
            "--errors",
            "1",
            "--codecs",
            "hcompress:s=10",
            "--repeat",
            "1",
            "--plot",
            s(&plot),
        ]);
        let row = out
            .lines()
            .find(|l| l.contains("HCOMPRESS_1 s=10"))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(row.contains("e7!") || row.contains("e8!"), "{row}");
        assert!(out.contains("lost the image"), "{out}");
    }
}

#[test]
fn rate_control_shows_progress_and_auto_names_models() {
    let d = tempfile::tempdir().unwrap();
    let img = sample_in(d.path());
    let c = d.path().join("bpp.fits");
    let out = ok(&["compress", s(&img), s(&c), "--target-bpp", "4"]);
    assert!(out.contains("trials") && out.contains("whole run"), "{out}");
    let c = d.path().join("auto.fits");
    let out = ok(&["compress", s(&img), s(&c), "--model", "auto"]);
    assert!(
        out.contains("model default-2:") && out.contains("model rate-1:"),
        "{out}"
    );
    assert!(!out.contains(".skyzip-"), "no temporary paths: {out}");
    assert!(out.contains("536×520"), "{out}");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn ctrl_c_leaves_no_temporary_files() {
    let d = tempfile::tempdir().unwrap();
    let img = sample_in(d.path());
    let c = d.path().join("auto.fits");
    let child = Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args([
            "compress",
            s(&img),
            s(&c),
            "--model",
            "auto",
            "--target-bpp",
            "3",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a trial file exists, then interrupt.
    let hidden = || {
        std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(".skyzip-"))
    };
    let t = std::time::Instant::now();
    while !hidden() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(hidden(), "the auto trials' folder never appeared");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "saao.fits")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn every_command_has_examples_and_positional_help() {
    for cmd in [
        "compress",
        "decompress",
        "compare",
        "classic",
        "info",
        "pack",
        "unpack",
        "simulate",
        "stamps",
        "train",
        "export",
        "reconstruct",
        "bench",
    ] {
        let help = ok(&[cmd, "--help"]);
        assert!(
            help.contains("Example"),
            "{cmd} --help has no example: {help}"
        );
        // Every positional argument has a line of help.
        let args = help
            .split("Arguments:")
            .nth(1)
            .map(|a| a.split("Options:").next().unwrap_or(""))
            .unwrap_or("");
        for line in args.lines().filter(|l| l.trim_start().starts_with('<')) {
            assert!(
                line.trim().split("  ").filter(|p| !p.is_empty()).count() > 1,
                "{cmd}: positional argument without help: {line}"
            );
        }
    }
    // One name for replacing outputs: --force (export and reconstruct take it too).
    for cmd in ["export", "reconstruct"] {
        assert!(ok(&[cmd, "--help"]).contains("--force"), "{cmd}");
    }
}

#[test]
fn release_builds_ship_without_debug_info() {
    let toml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml")).unwrap();
    let release = toml
        .split("[profile.release]")
        .nth(1)
        .and_then(|r| r.split("\n[").next())
        .expect("a release profile");
    assert!(release.contains("debug = false"), "{release}");
    assert!(release.contains("strip"), "{release}");
    assert!(
        toml.contains("[profile.profiling]"),
        "a profile with debug info for perf"
    );
}
