//! Replays the `cargo fuzz` corpus of the decoder (`fuzz/corpus/<target>/`) and the inputs that
//! once found bugs (`fuzz/regressions/<target>/`) on stable Rust: every case must return, never
//! panic. `cargo test -p skyzip-codec --test fuzz_corpus -- --ignored` rewrites the seeds.

use skyzip_codec::fuzzing::{file_case, tile_case, tile_header};
use skyzip_codec::tile::{encode, Settings};
use skyzip_codec::{compress, Mode, Options, Predictor};
use skyzip_fits::{read_image, FitsWriter, HduSelector, Header, ImageHdu, Pixels};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn cases(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(sub).join(target);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            out.push((e.path(), bytes));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, f: fn(&[u8]) -> bool, min_ok: usize) {
    let cases = cases(target);
    assert!(
        !cases.is_empty(),
        "no corpus for {target} under {}",
        fuzz_dir().display()
    );
    let mut ok = 0;
    for (path, bytes) in &cases {
        let r = std::panic::catch_unwind(|| f(bytes));
        match r {
            Ok(true) => ok += 1,
            Ok(false) => {}
            Err(_) => panic!("{target}: {} panicked", path.display()),
        }
    }
    eprintln!("{target}: {} cases, {ok} decoded", cases.len());
    assert!(ok >= min_ok, "{target}: only {ok} valid seeds decoded");
}

#[test]
fn tile_decoder_corpus_never_panics() {
    replay("tile_decode", tile_case, 4);
}

#[test]
fn file_decoder_corpus_never_panics() {
    replay("file_decode", file_case, 3);
}

/// A crop of a real image, as a small FITS file.
fn crop(src: &str, x0: usize, y0: usize, w: usize, h: usize, out: &Path, extra_table: bool) {
    let img = read_image(
        &skyzip_testdata::real_dir()
            .expect("the seed corpus is cut from the shared images")
            .join(src),
        &HduSelector::FirstImage,
    )
    .unwrap();
    let nx = img.nx();
    let idx: Vec<usize> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (y0 + y) * nx + x0 + x))
        .collect();
    let pixels = match &img.pixels {
        Pixels::I16(v) => Pixels::I16(idx.iter().map(|&i| v[i]).collect()),
        Pixels::I32(v) => Pixels::I32(idx.iter().map(|&i| v[i]).collect()),
        Pixels::F32(v) => Pixels::F32(idx.iter().map(|&i| v[i]).collect()),
        Pixels::F64(v) => Pixels::F64(idx.iter().map(|&i| v[i]).collect()),
        p => panic!("unexpected pixel type {}", p.bitpix()),
    };
    let mut hdr = Header::default();
    for c in &img.header.cards {
        let k = c.keyword();
        if matches!(k, "BSCALE" | "BZERO" | "BLANK" | "BUNIT") {
            hdr.cards.push(c.clone());
        }
    }
    let mut wr = FitsWriter::create(out, true).unwrap();
    wr.write_image(&ImageHdu::new(vec![w, h], pixels, hdr), None)
        .unwrap();
    if extra_table {
        let small = ImageHdu::new(
            vec![5, 3],
            Pixels::I32((0..15).collect()),
            Header::default(),
        );
        wr.write_image(&small, None).unwrap();
    }
    wr.finish().unwrap();
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus"]
fn write_seed_corpus() {
    // The tile seeds are decoded with default-1 (fuzzing.rs): tiles do not name their model.
    let p = Predictor::load("default-1").unwrap();
    let tiles = fuzz_dir().join("corpus/tile_decode");
    let files = fuzz_dir().join("corpus/file_decode");
    std::fs::create_dir_all(&tiles).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    // Tiles: noise on a gradient with a blank patch, several sizes and error bounds.
    let mut x: u64 = 7;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as i64
    };
    for (i, (w, h, e, range, blanks)) in [
        (8, 8, 0, 0, false),
        (40, 24, 0, 1, true),
        (64, 64, 3, 2, true),
        (17, 64, 1, 0, false),
        (64, 9, 1000, 1, true),
    ]
    .into_iter()
    .enumerate()
    {
        let n = w * h;
        let blank: Vec<bool> = (0..n).map(|j| blanks && j % w < 3 && j / w < 5).collect();
        let v: Vec<i64> = (0..n)
            .map(|j| {
                if blank[j] {
                    0
                } else {
                    3000 + (j % w) as i64 * 7 + rnd() / 10
                }
            })
            .collect();
        let s = Settings {
            e,
            lo: i16::MIN as i64,
            hi: i16::MAX as i64,
            eta: None,
            rdo: None,
        };
        let t = encode(&p, &v, &blank, w, h, &s);
        let mut bytes = tile_header(w, h, e, range).to_vec();
        bytes.extend(&t.bytes);
        std::fs::write(tiles.join(format!("seed-{i}")), bytes).unwrap();
    }
    // Files: crops of real images (16-bit, 32-bit float with NaN blanks), lossless and lossy.
    let dir = tempfile::tempdir().unwrap();
    let inputs = [
        (
            "optical_ccd_raw_M13_blue_0001.fits",
            100,
            100,
            48,
            40,
            false,
        ),
        ("radio_parkes_1904-66_SIN.fits", 0, 0, 70, 33, true),
    ];
    let mut k = 0;
    for (src, x0, y0, w, h, table) in inputs {
        let raw = dir.path().join("raw.fits");
        crop(src, x0, y0, w, h, &raw, table);
        for mode in [Mode::Lossless, Mode::MaxError(2.0)] {
            let out = dir.path().join("c.fits");
            let opts = Options {
                mode,
                tile: 32,
                ..Options::default()
            };
            compress(&raw, &out, &p, &opts, true).unwrap();
            std::fs::copy(&out, files.join(format!("seed-{k}"))).unwrap();
            k += 1;
        }
    }
}
