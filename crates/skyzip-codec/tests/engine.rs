//! The integer engine's pinned outputs (CI runs this file under emulated CPUs too).

use skyzip_codec::engine::{FloatNet, Map, NetShape};
use skyzip_codec::Mode;

/// The float weights the bundled `default-1` was quantised from.
fn float_default() -> FloatNet {
    FloatNet::from_safetensors(
        include_bytes!("../models/float/default.safetensors"),
        NetShape {
            width: 16,
            stages: vec![16, 16, 16],
            latent: 4,
            shuffle: false,
        },
    )
    .unwrap()
}

/// A deterministic tile from integer arithmetic only (no simulator, no libm).
fn synthetic(n: usize, seed: u64) -> Map<f32> {
    let mut s = seed;
    let data = (0..n * n)
        .map(|k| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            let (x, y) = ((k % n) as i64 - 20, (k / n) as i64 - 12);
            let r2 = (x * x + y * y) as f32;
            noise * 0.4 + 8.0 / (1.0 + r2 / 3.0)
        })
        .collect();
    Map {
        c: 1,
        h: n,
        w: n,
        data,
    }
}

#[test]
fn integer_engine_golden_outputs() {
    // The bundled default model quantised on synthetic tiles, run on another: the latent, μ and
    // v must hash to the pinned value on every CPU (CI runs this under qemu as Nehalem and
    // Haswell, and natively), with the scalar reference and the fast path alike.
    use sha2::{Digest, Sha256};
    use skyzip_codec::engine::{IntNet, Path};
    let calib: Vec<Map<f32>> = (0..3).map(|s| synthetic(48, s)).collect();
    let q = IntNet::calibrate(&float_default(), &calib).unwrap();
    let t = synthetic(48, 77);
    let mut hashes = Vec::new();
    for path in [Path::Scalar, Path::Fast] {
        let z = q.encode(q.quantise_input(&t.data, 48, 48), path);
        let (mu, v) = q.decode(&z, path);
        let mut h = Sha256::new();
        z.data.iter().for_each(|x| h.update(x.to_le_bytes()));
        mu.iter()
            .chain(&v)
            .for_each(|x| h.update(x.to_bits().to_le_bytes()));
        hashes.push(
            h.finalize()[..8]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
    }
    assert_eq!(hashes[0], hashes[1]);
    assert_eq!(hashes[0], "04b2294ac8120645", "{hashes:?}");
}

/// A row of docs/results/codec/engine-bytes.json: its real file, mode and options.
fn bytes_case(
    dir: &std::path::Path,
    r: &serde_json::Value,
) -> (
    std::path::PathBuf,
    skyzip_codec::Mode,
    skyzip_codec::Options,
) {
    let mode = match r["mode"].as_str().unwrap() {
        "lossless" => skyzip_codec::Mode::Lossless,
        _ => skyzip_codec::Mode::MaxError(1.0),
    };
    let opts = skyzip_codec::Options {
        mode,
        ..skyzip_codec::Options::default()
    };
    (dir.join(r["file"].as_str().unwrap()), mode, opts)
}

#[test]
fn integer_engine_bytes_within_a_percent_of_the_float_format() {
    // docs/results/codec/engine-bytes.json holds the tile bytes the float format (burn's
    // prediction) wrote on every real file; the integer engine must stay within +1 %.
    use skyzip_codec::{compress, Predictor};
    let Some(dir) = skyzip_testdata::real_dir() else {
        return;
    };
    let table: serde_json::Value = serde_json::from_str(include_str!(
        "../../../docs/results/codec/engine-bytes.json"
    ))
    .unwrap();
    let p = Predictor::load("default-1").unwrap();
    let p2 = Predictor::load("default-2").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 22);
    for r in rows {
        let (f, mode, opts) = bytes_case(&dir, r);
        let rep = compress(&f, &tmp.path().join("o.fits"), &p, &opts, true).unwrap();
        let got: usize = rep.images.iter().map(|i| i.tile_bytes).sum();
        let float = r["float_tile_bytes"].as_u64().unwrap() as f64;
        assert_eq!(
            got as u64,
            r["integer_tile_bytes"].as_u64().unwrap(),
            "{f:?} {mode:?}: the pinned integer bytes changed (a format change needs a new \
             version and a new model name; a change in the encoder's choices is re-pinned \
             in engine-bytes.json once the +1 % below holds)"
        );
        assert!(
            got as f64 <= 1.01 * float,
            "{f:?} {mode:?}: {got} vs {float}"
        );
        // And the current default (default-2) against the same float baseline.
        let rep = compress(&f, &tmp.path().join("o.fits"), &p2, &opts, true).unwrap();
        let got: usize = rep.images.iter().map(|i| i.tile_bytes).sum();
        assert_eq!(
            got as u64,
            r["default2_tile_bytes"].as_u64().unwrap(),
            "{f:?} {mode:?}"
        );
        assert!(
            got as f64 <= 1.01 * float,
            "{f:?} {mode:?}: {got} vs {float}"
        );
    }
}

/// The golden files of the current format: tests/golden/format-N/.
fn golden_dir() -> std::path::PathBuf {
    golden_dir_of(skyzip_codec::codec::FORMAT_VERSION)
}

fn golden_dir_of(version: u8) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/format-{version}"))
}

/// What the golden files are: (coded file, input, model, mode).
const GOLDEN: [(&str, &str, &str, Mode); 15] = [
    // Format 6 on: the RMSE mode (dead zone, rate–distortion decisions, centroid
    // reconstruction), on integers and on floats with a NaN mask.
    (
        "default-2.rmse-0.6.fits",
        "int16.fits",
        "default-2",
        Mode::Rmse(0.6),
    ),
    (
        "default-2.f32.rmse-0.6.fits",
        "f32-nan.fits",
        "default-2",
        Mode::Rmse(0.6),
    ),
    (
        "fast-1.rmse-0.6.fits",
        "int16.fits",
        "fast-1",
        Mode::Rmse(0.6),
    ),
    // Format 5 on: a plate-like image whose values lie on a sparse lattice (residual mode 4,
    // lossless and near-lossless).
    (
        "default-2.lattice.lossless.fits",
        "lattice.fits",
        "default-2",
        Mode::Lossless,
    ),
    (
        "default-2.lattice.max-error-1.fits",
        "lattice.fits",
        "default-2",
        Mode::MaxError(1.0),
    ),
    (
        "default-2.lossless.fits",
        "int16.fits",
        "default-2",
        Mode::Lossless,
    ),
    (
        "default-2.max-error-1.fits",
        "int16.fits",
        "default-2",
        Mode::MaxError(1.0),
    ),
    (
        "default-2.f32.lossless.fits",
        "f32-nan.fits",
        "default-2",
        Mode::Lossless,
    ),
    (
        "default-1.lossless.fits",
        "int16.fits",
        "default-1",
        Mode::Lossless,
    ),
    (
        "default-1.max-error-1.fits",
        "int16.fits",
        "default-1",
        Mode::MaxError(1.0),
    ),
    (
        "default-1.f32.lossless.fits",
        "f32-nan.fits",
        "default-1",
        Mode::Lossless,
    ),
    (
        "rate-1.lossless.fits",
        "int16.fits",
        "rate-1",
        Mode::Lossless,
    ),
    (
        "rate-1.max-error-1.fits",
        "int16.fits",
        "rate-1",
        Mode::MaxError(1.0),
    ),
    (
        "fast-1.lossless.fits",
        "int16.fits",
        "fast-1",
        Mode::Lossless,
    ),
    (
        "fast-1.max-error-1.fits",
        "int16.fits",
        "fast-1",
        Mode::MaxError(1.0),
    ),
];

/// sha256 (16 hex digits) of an image's pixels as stored (bit patterns, NaNs included).
fn pixel_hash(path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let img = skyzip_fits::read_image(path, &skyzip_fits::HduSelector::FirstImage).unwrap();
    let mut h = Sha256::new();
    h.update(format!("{:?} {}", img.axes, img.bitpix()).as_bytes());
    for i in 0..img.npix() {
        h.update(img.pixels.raw_bits(i).to_le_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every coded tile's bytes (both data columns) of a file's first coded HDU.
fn coded_tiles(path: &std::path::Path) -> Vec<Vec<u8>> {
    let t = skyzip_fits::read_table_at(path, 1).unwrap();
    let mut out = Vec::new();
    for name in ["COMPRESSED_DATA", "EXACT_DATA"] {
        if let Some(skyzip_fits::Column::Bytes(rows)) = t.column(name) {
            out.extend(rows.iter().cloned());
        }
    }
    assert!(!out.is_empty());
    out
}

fn golden_options(mode: Mode) -> skyzip_codec::Options {
    skyzip_codec::Options {
        mode,
        tile: 64,
        ..skyzip_codec::Options::default()
    }
}

#[test]
fn golden_files_decode_to_their_pinned_hashes_and_encode_to_their_bytes() {
    // Every bundled model and format version keeps golden files; they must decode to the
    // pinned pixels, and the encoder must write them byte for byte, on every machine (CI runs
    // this under emulated Nehalem and Haswell CPUs and on a target-cpu=native build).
    // Older format versions' golden files must still decode to their pins (the encoder
    // writes only the current one); a format change that keeps the arithmetic decodes the
    // same pixels from every version.
    let tmp = tempfile::tempdir().unwrap();
    let read_pins = |v: u8| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(golden_dir_of(v).join("hashes.json")).unwrap(),
        )
        .unwrap()
    };
    for &v in &skyzip_codec::codec::READ_VERSIONS {
        let (dir, pins) = (golden_dir_of(v), read_pins(v));
        let load = |n: &str| skyzip_codec::Predictor::load(n);
        for (coded, input, _, mode) in GOLDEN {
            let Some(pin) = pins[coded].as_str() else {
                continue; // a model newer than this format version
            };
            let out = tmp.path().join("out.fits");
            skyzip_codec::decompress(&dir.join(coded), &out, &load, true).unwrap();
            assert_eq!(pixel_hash(&out), pin, "format {v} {coded}: decoded pixels");
            if mode == Mode::Lossless && input == "int16.fits" {
                assert_eq!(pixel_hash(&out), pixel_hash(&dir.join(input)), "{coded}");
            }
        }
        // Files an earlier encoder of the same format wrote (NAME.encoder-K.fits: its choices
        // changed, the format did not) decode to their pins too.
        for (coded, pin) in pins.as_object().unwrap() {
            if GOLDEN.iter().any(|g| g.0 == coded) {
                continue;
            }
            let out = tmp.path().join("out.fits");
            skyzip_codec::decompress(&dir.join(coded), &out, &load, true).unwrap();
            assert_eq!(
                pixel_hash(&out),
                pin.as_str().unwrap(),
                "format {v} {coded}"
            );
        }
    }
    // The lossless lattice golden file exercises residual mode 4 (format 5: the 3-bit mode
    // after the 2-bit blank flag); its near-lossless form is unit-tested in histogram.rs.
    let name = "default-2.lattice.lossless.fits";
    let lattice = coded_tiles(&golden_dir().join(name));
    let modes: Vec<u64> = lattice
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| {
            let mut rd = skyzip_codec::entropy::Reader::new(&t[9..], true).unwrap();
            assert_eq!(rd.get_bits(2).unwrap(), 0);
            rd.get_bits(3).unwrap()
        })
        .collect();
    assert!(modes.contains(&4), "{name}: {modes:?}");
    let dir = golden_dir();
    for (coded, input, model, mode) in GOLDEN {
        let p = skyzip_codec::Predictor::load(model).unwrap();
        let again = tmp.path().join("again.fits");
        skyzip_codec::compress(&dir.join(input), &again, &p, &golden_options(mode), true).unwrap();
        // The coded tiles byte for byte (the headers' CHECKSUM comments carry the time).
        assert!(
            coded_tiles(&again) == coded_tiles(&dir.join(coded)),
            "{coded}: the encoder no longer writes the golden bytes"
        );
    }
}

#[test]
#[ignore = "re-measures docs/results/codec/engine-bytes.json's integer, fast and default2 columns \
            (the float baseline stays) after a format change"]
fn write_engine_bytes() {
    use skyzip_codec::{compress, Predictor};
    let dir = skyzip_testdata::real_dir().expect("the development images");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/codec/engine-bytes.json");
    let mut table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let models = [
        ("integer", "default-1"),
        ("fast", "fast-1"),
        ("default2", "default-2"),
    ];
    let models: Vec<(&str, Predictor)> = models
        .iter()
        .map(|(k, m)| (*k, Predictor::load(m).unwrap()))
        .collect();
    for r in table["rows"].as_array_mut().unwrap() {
        let (f, _, opts) = bytes_case(&dir, r);
        for (key, p) in &models {
            let rep = compress(&f, &tmp.path().join("o.fits"), p, &opts, true).unwrap();
            let tiles: usize = rep.images.iter().map(|i| i.tile_bytes).sum();
            r[format!("{key}_tile_bytes")] = tiles.into();
            r[format!("{key}_file_bytes")] = rep.file_bytes.into();
        }
    }
    std::fs::write(&path, serde_json::to_string_pretty(&table).unwrap() + "\n").unwrap();
}

#[test]
#[ignore = "writes the golden files that do not exist yet (never rewrites one)"]
fn write_golden_files() {
    use skyzip_fits::{FitsWriter, HduSelector, Header, ImageHdu, Pixels};
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    // Inputs: a 128×96 corner of the bundled sample frame as it is (int16), and the same as
    // float32 (pixel − 1000, ×0.37) with a blank (NaN) patch.
    let img =
        skyzip_fits::read_image(&skyzip_testdata::sample(), &HduSelector::FirstImage).unwrap();
    let (w, h) = (128, 96);
    let nx = img.nx();
    let v: Vec<i64> = (0..w * h)
        .map(|k| {
            img.pixels
                .raw_i64((k / w + 200) * nx + k % w + 200)
                .unwrap()
        })
        .collect();
    let write = |name: &str, pixels: Pixels| {
        if dir.join(name).exists() {
            return;
        }
        let mut wr = FitsWriter::create(&dir.join(name), false).unwrap();
        wr.write_image(&ImageHdu::new(vec![w, h], pixels, Header::default()), None)
            .unwrap();
        wr.finish().unwrap();
    };
    write(
        "int16.fits",
        Pixels::I16(v.iter().map(|&x| x as i16).collect()),
    );
    // A photographic plate's kind of values: a smooth field plus the frame's noise passed
    // through a nonlinear table, so neighbours differ by multiples of a local step.
    let lowest = v.iter().copied().min().unwrap();
    write(
        "lattice.fits",
        Pixels::I16(
            v.iter()
                .enumerate()
                .map(|(k, &x)| {
                    let level =
                        ((k % w) as i64 / 4 + (k / w) as i64 / 3 + (x - lowest) / 16).clamp(0, 200);
                    (200 + level * level / 2 + 37 * level) as i16
                })
                .collect(),
        ),
    );
    write(
        "f32-nan.fits",
        Pixels::F32(
            v.iter()
                .enumerate()
                .map(|(k, &x)| {
                    if (10..30).contains(&(k % w)) && (5..20).contains(&(k / w)) {
                        f32::NAN
                    } else {
                        (x - 1000) as f32 * 0.37
                    }
                })
                .collect(),
        ),
    );
    let pins_path = dir.join("hashes.json");
    let mut pins: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&pins_path)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_default();
    let tmp = tempfile::tempdir().unwrap();
    for (coded, input, model, mode) in GOLDEN {
        if dir.join(coded).exists() {
            assert!(pins.contains_key(coded), "{coded} has no pinned hash");
            continue;
        }
        let p = skyzip_codec::Predictor::load(model).unwrap();
        skyzip_codec::compress(
            &dir.join(input),
            &dir.join(coded),
            &p,
            &golden_options(mode),
            false,
        )
        .unwrap();
        let out = tmp.path().join("out.fits");
        let load = |n: &str| skyzip_codec::Predictor::load(n);
        skyzip_codec::decompress(&dir.join(coded), &out, &load, true).unwrap();
        pins.insert(coded.into(), pixel_hash(&out).into());
    }
    std::fs::write(
        pins_path,
        serde_json::to_string_pretty(&pins).unwrap() + "\n",
    )
    .unwrap();
}
