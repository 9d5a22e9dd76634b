//! Read → write → read is exact on every real image: pixels bit for bit, blanks, header cards.

mod support;
use skyzip_fits::*;
use support::write_then_read;

fn same_cards(a: &Header, b: &Header) -> std::result::Result<(), String> {
    let keep = |h: &Header| -> Vec<String> {
        h.cards
            .iter()
            .filter(|c| !matches!(c.keyword(), "CHECKSUM" | "DATASUM"))
            .map(|c| c.text().trim_end().to_string())
            .collect()
    };
    let (ka, kb) = (keep(a), keep(b));
    if ka == kb {
        return Ok(());
    }
    for (i, (x, y)) in ka.iter().zip(&kb).enumerate() {
        if x != y {
            return Err(format!("card {i} differs:\n  {x}\n  {y}"));
        }
    }
    Err(format!("card counts differ: {} vs {}", ka.len(), kb.len()))
}

fn mask_diff(a: &ImageHdu, b: &ImageHdu) -> usize {
    a.mask()
        .iter()
        .zip(b.mask())
        .filter(|(x, y)| **x != *y)
        .count()
}

#[test]
fn every_real_file_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    for path in files {
        let out = dir.path().join(path.file_name().unwrap());
        rewrite_file(&path, &out, false, None).unwrap();
        let before = read_all_images(&path).unwrap();
        let after = read_all_images(&out).unwrap();
        assert_eq!(before.len(), after.len(), "{}", path.display());
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(a.axes, b.axes);
            assert!(
                a.pixels.bit_identical(&b.pixels),
                "{}: pixels differ",
                path.display()
            );
            assert_eq!(mask_diff(a, b), 0, "{}: mask", path.display());
            assert_eq!((a.bscale, a.bzero, a.blank), (b.bscale, b.bzero, b.blank));
            same_cards(&a.header, &b.header).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        assert_eq!(
            list_hdus(&path).unwrap().len(),
            list_hdus(&out).unwrap().len(),
            "{}: HDU count",
            path.display()
        );
    }
}

#[test]
fn lossless_tile_compression_round_trips_on_integer_images() {
    let dir = tempfile::tempdir().unwrap();
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    for path in files {
        let img = read_image(&path, &HduSelector::FirstImage).unwrap();
        if img.bitpix() < 0 {
            continue;
        }
        for spec in ["rice", "gzip1", "gzip2", "hcompress"] {
            let c = TileCompression::parse(spec).unwrap();
            let out = dir.path().join(format!("{spec}.fits.fz"));
            let back = write_then_read(&img, Some(&c), &out);
            assert_eq!(back.compression.as_deref(), Some(c.algorithm.zcmptype()));
            assert!(
                back.pixels.bit_identical(&img.pixels),
                "{} {spec}",
                path.display()
            );
            assert_eq!(
                (back.bscale, back.bzero),
                (img.bscale, img.bzero),
                "{} {spec}",
                path.display()
            );
        }
    }
}

#[test]
fn quantised_floats_keep_nan_masks() {
    let dir = tempfile::tempdir().unwrap();
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    for path in files {
        let img = read_image(&path, &HduSelector::FirstImage).unwrap();
        if img.bitpix() > 0 {
            continue;
        }
        for spec in ["rice:q=4", "gzip2:q=16:dither=2", "gzip2:q=0"] {
            let c = TileCompression::parse(spec).unwrap();
            let out = dir.path().join("q.fits.fz");
            let back = write_then_read(&img, Some(&c), &out);
            assert_eq!(
                mask_diff(&back, &img),
                0,
                "{} {spec}: NaN mask",
                path.display()
            );
            if spec.ends_with("q=0") {
                assert!(
                    back.pixels.bit_identical(&img.pixels),
                    "{} lossless gzip",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn binary_tables_round_trip() {
    use skyzip_fits::{read_table, Column, FitsWriter, Table};
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("t.fits");
    let mut t = Table::default();
    t.columns
        .push(("flux".into(), Column::F64(vec![1.5, f64::NAN, -3.0])));
    t.columns
        .push(("id".into(), Column::I64(vec![7, -1, i64::MAX])));
    t.columns.push((
        "code".into(),
        Column::Bytes(vec![vec![1, 2, 3], vec![], vec![255; 1000]]),
    ));
    t.header
        .set(skyzip_fits::Card::value("NSAMPLE", "3", "rows"));
    let mut w = FitsWriter::create(&path, false).unwrap();
    w.write_table("CAT", &t).unwrap();
    w.finish().unwrap();
    let r = read_table(&path, "cat").unwrap();
    assert_eq!(r.rows(), 3);
    let Some(Column::F64(f)) = r.column("FLUX") else {
        panic!()
    };
    assert_eq!(f[0], 1.5);
    assert!(f[1].is_nan());
    assert_eq!(r.column("id"), Some(&Column::I64(vec![7, -1, i64::MAX])));
    assert_eq!(r.column("code"), t.column("code"));
    assert_eq!(r.header.f64("NSAMPLE"), Some(3.0));
    assert!(read_table(&path, "nope").is_err());
}
