//! Datasets from simulators and real FITS files; masks on simulated CCD stamps; splits, batches.

use skyzip_data::*;
use skyzip_sim::ccd::{Ccd, CcdConfig};
use skyzip_sim::{sample_rng, Simulator};

#[test]
fn photutils_mask_flags_every_source_brighter_than_19() {
    let ccd = Ccd::new(CcdConfig::default()).unwrap();
    let mut checked = 0;
    for i in 0..4 {
        let s = ccd.sample(&mut sample_rng(21, i));
        let m = source_mask(&s.image, s.nx, s.ny, &SourceMaskSpec::photutils());
        let cols = &s.catalog.columns;
        let (cx, cy, cm) = (
            cols.iter().position(|c| c == "x").unwrap(),
            cols.iter().position(|c| c == "y").unwrap(),
            cols.iter().position(|c| c == "mag").unwrap(),
        );
        for row in &s.catalog.rows {
            let (x, y) = (row[cx].round(), row[cy].round());
            if row[cm] < 19.0 && x >= 0.0 && y >= 0.0 && x < s.nx as f64 && y < s.ny as f64 {
                assert!(
                    m[y as usize * s.nx + x as usize],
                    "stamp {i}: m = {} at ({x}, {y}) not masked",
                    row[cm]
                );
                checked += 1;
            }
        }
        // Masked background statistics recover the sky + read noise σ (within 10 %: the mask
        // misses the faintest galaxies' wings).
        let (_, _, std) = sigma_clipped_stats(&s.image, Some(&m), 3.0, 10);
        let p = &s.params;
        assert!(
            (std / p["sigma_bkg_dn"] - 1.0).abs() < 0.1,
            "{std} vs {}",
            p["sigma_bkg_dn"]
        );
    }
    assert!(checked >= 4, "{checked} bright sources checked");
}

#[test]
fn stamps_from_every_real_file_with_nan_limits() {
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    assert!(!files.is_empty());
    let spec = StampSpec {
        size: 32,
        stride: 32,
        max_bad: 0.5,
    };
    let mut d = Dataset::from_fits_files(&files, &spec).unwrap();
    assert!(d.len() > 100);
    for (i, o) in d.origins.iter().enumerate() {
        let Origin::File { path, x0, y0, .. } = o else {
            panic!()
        };
        assert!(path.exists());
        let bad = d.input(i).iter().filter(|v| !v.is_finite()).count();
        assert!(
            bad <= 512,
            "{} ({x0}, {y0}): {bad} blank pixels",
            path.display()
        );
    }
    d.normalise(NormKind::Asinh { softening: 3.0 });
    d.fill_nan(0.0);
    assert!(d.inputs.iter().all(|v| v.is_finite()));
    // Too large a stamp is a clear error naming the file.
    let e = Dataset::from_fits_files(
        &files[..1],
        &StampSpec {
            size: 100_000,
            stride: 1,
            max_bad: 0.5,
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(&files[0].display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn splits_and_batches_are_seeded() {
    let toy = skyzip_sim::toy::Blobs::default();
    let d = Dataset::from_simulator(&toy, 1, 50, None).unwrap();
    let s = d.split(0.2, 7).unwrap();
    assert_eq!((s.train.len(), s.val.len()), (40, 10));
    assert_eq!(s, d.split(0.2, 7).unwrap());
    assert_ne!(s, d.split(0.2, 8).unwrap());
    let mut all: Vec<usize> = s.train.iter().chain(&s.val).copied().collect();
    all.sort();
    assert_eq!(all, (0..50).collect::<Vec<_>>());
    let b1 = d.batches(&s.train, 16, 3, 0, true, true);
    assert_eq!(b1.iter().map(|b| b.n).collect::<Vec<_>>(), vec![16, 16, 8]);
    assert_eq!(
        b1,
        d.batches(&s.train, 16, 3, 0, true, true),
        "same seed and epoch, same batches"
    );
    assert_ne!(
        b1[0].indices,
        d.batches(&s.train, 16, 3, 1, true, true)[0].indices,
        "epochs reshuffle"
    );
    // Augmentation moves pixels but keeps their values; input and target move together.
    let plain = d.batches(&s.train, 16, 3, 0, true, false);
    for (a, p) in b1[0].x.chunks(28 * 28).zip(plain[0].x.chunks(28 * 28)) {
        let (mut a, mut p) = (a.to_vec(), p.to_vec());
        a.sort_by(f32::total_cmp);
        p.sort_by(f32::total_cmp);
        assert_eq!(a, p);
    }
    assert!(Dataset::from_simulator(&toy, 1, 0, None).is_err());
    assert!(d.split(1.0, 0).is_err());
}

#[test]
fn denoising_sets_pair_noisy_inputs_with_clean_targets() {
    let toy = skyzip_sim::toy::Blobs::default();
    let noise = skyzip_sim::noise::Noise::parse("masked:0.3").unwrap();
    let d = Dataset::from_simulator(&toy, 2, 5, Some(noise)).unwrap();
    for i in 0..5 {
        let zeros = d
            .input(i)
            .iter()
            .zip(d.target(i))
            .filter(|(a, b)| **a == 0.0 && **b != 0.0)
            .count();
        assert!(zeros > 100, "about 30 % of 784 pixels masked: {zeros}");
    }
    let mut r = d.clone();
    r.resize(56, 56);
    assert_eq!((r.nx, r.inputs.len()), (56, 5 * 56 * 56));
}
