//! The integer engine against burn's float model: the same net, and what quantising it does to
//! the bytes of real files.

use skyzip_codec::engine::Map;
use skyzip_codec::{compress, decompress, Mode, Options, Predictor};

/// Simulated CCD stamps (the bundled models' training data), normalised as model inputs.
fn calibration(p: &Predictor, n: usize) -> Vec<Map<f32>> {
    let sim = skyzip_sim::by_name("ccd").unwrap();
    skyzip_sim::generate(sim.as_ref(), 7, 0, n)
        .into_iter()
        .map(|s| {
            let mut t = s.image.clone();
            p.fit(&t).forward(&mut t);
            Map {
                c: 1,
                h: s.ny,
                w: s.nx,
                data: t,
            }
        })
        .collect()
}

#[test]
fn the_float_net_is_burns_net() {
    let p = Predictor::load("default").unwrap();
    let f = p.float_net().unwrap();
    let t = &calibration(&p, 1)[0];
    // A 64×64 corner.
    let c: Vec<f32> = (0..64 * 64)
        .map(|k| t.data[(k / 64) * t.w + k % 64])
        .collect();
    let (zb, shape) = p.encode(&c, 64, 64);
    let zf = f.encode(&Map {
        c: 1,
        h: 64,
        w: 64,
        data: c,
    });
    let same = zf
        .data
        .iter()
        .zip(&zb)
        .filter(|(a, b)| a.round() as i64 == **b)
        .count();
    assert!(
        same as f64 >= 0.99 * zb.len() as f64,
        "{same} of {}",
        zb.len()
    );
    let (mb, vb) = p.decode(&zb, shape);
    let z = Map {
        c: shape[0],
        h: shape[1],
        w: shape[2],
        data: zb.iter().map(|&v| v as f32).collect(),
    };
    let (mf, vf) = f.decode(&z);
    let dm = mb
        .iter()
        .zip(&mf.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(dm < 1e-3, "max |Δμ| {dm}");
    // burn's σ² = softplus(v) + ε.
    let dv = vb
        .iter()
        .zip(&vf.data)
        .map(|(a, &b)| (a - (skyzip_codec::detmath::softplus(b as f64) as f32 + 1e-4)).abs())
        .fold(0f32, f32::max);
    assert!(dv < 1e-3, "max |Δσ²| {dv}");
}

#[test]
fn integer_engine_bytes_on_real_files() {
    let Some(dir) = skyzip_testdata::real_dir() else {
        return;
    };
    let pf = Predictor::load("default").unwrap();
    let calib = calibration(&pf, 3);
    let pi = Predictor::load("default").unwrap().integer(&calib).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    files.sort();
    let mut worst: f64 = 0.0;
    for f in &files {
        for mode in [Mode::Lossless, Mode::MaxError(1.0)] {
            let opts = Options {
                mode,
                ..Options::default()
            };
            let t = std::time::Instant::now();
            let a = compress(f, &tmp.path().join("f.fits"), &pf, &opts, true).unwrap();
            let ta_s = t.elapsed().as_secs_f64();
            let out = tmp.path().join("i.fits");
            let t = std::time::Instant::now();
            let b = compress(f, &out, &pi, &opts, true).unwrap();
            let tb_s = t.elapsed().as_secs_f64();
            // Coded tile bytes: whole files move in 2880-byte blocks.
            let tiles =
                |r: &skyzip_codec::Report| -> usize { r.images.iter().map(|i| i.tile_bytes).sum() };
            let (ta, tb) = (tiles(&a), tiles(&b));
            let r = tb as f64 / ta as f64;
            worst = worst.max(r);
            eprintln!(
                "{} {:?}: float {ta} tile bytes, integer {tb} ({:+.3} %); encode {ta_s:.2} s \
                 (burn) / {tb_s:.2} s (integer)",
                f.file_name().unwrap().to_string_lossy(),
                mode,
                100.0 * (r - 1.0)
            );
            if mode == Mode::Lossless && f.to_string_lossy().contains("saao") {
                // The integer model's file decodes back to the original with the same engine.
                let back = tmp.path().join("back.fits");
                let load = |_: &str| Predictor::load("default")?.integer(&calib);
                decompress(&out, &back, &load, true).unwrap();
            }
        }
    }
    eprintln!("worst integer / float tile bytes: {worst:.5}");
    assert!(worst < 1.01, "{worst}");
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
    let p = Predictor::load("default").unwrap();
    let calib: Vec<Map<f32>> = (0..3).map(|s| synthetic(48, s)).collect();
    let q = IntNet::calibrate(&p.float_net().unwrap(), &calib).unwrap();
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
