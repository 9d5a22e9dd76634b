//! Every BITPIX, scaled and unsigned integers, BLANK and NaN masks, and 3-D cubes survive
//! write → read, plain and tile-compressed.

mod support;
use skyzip_fits::*;
use support::write_then_read;

fn header(cards: &[Card]) -> Header {
    Header {
        cards: cards.to_vec(),
    }
}

fn cube_axes() -> Vec<usize> {
    vec![37, 23, 3] // odd sizes: partial tiles and row lengths that are not multiples of 32
}

fn images() -> Vec<(&'static str, ImageHdu)> {
    let n: usize = cube_axes().iter().product();
    let blank = Card::value("BLANK", "-99", "no data");
    let scaled = [
        Card::value("BSCALE", "0.5", ""),
        Card::value("BZERO", "100.0", ""),
    ];
    let uint16 = [
        Card::value("BSCALE", "1", ""),
        Card::value("BZERO", "32768", "unsigned 16-bit"),
    ];
    let wcs = [
        Card::string("CTYPE1", "RA---TAN", "tangent plane"),
        Card::value("CRPIX1", "12.5", ""),
        Card::new("HISTORY written by the bitpix test"),
    ];
    let mut v = vec![
        (
            "u8",
            ImageHdu::new(
                cube_axes(),
                Pixels::U8((0..n).map(|i| (i * 7 % 256) as u8).collect()),
                header(&wcs),
            ),
        ),
        (
            "i16 blank",
            ImageHdu::new(
                cube_axes(),
                Pixels::I16(
                    (0..n)
                        .map(|i| {
                            if i % 11 == 0 {
                                -99
                            } else {
                                (i as i16).wrapping_mul(13)
                            }
                        })
                        .collect(),
                ),
                header(std::slice::from_ref(&blank)),
            ),
        ),
        (
            "u16",
            ImageHdu::new(
                cube_axes(),
                Pixels::I16((0..n).map(|i| (i as i16).wrapping_mul(331)).collect()),
                header(&uint16),
            ),
        ),
        (
            "i32 scaled",
            ImageHdu::new(
                cube_axes(),
                Pixels::I32((0..n).map(|i| (i as i32 - 1000) * 70001).collect()),
                header(&scaled),
            ),
        ),
        (
            "i32 blank",
            ImageHdu::new(
                cube_axes(),
                Pixels::I32(
                    (0..n)
                        .map(|i| if i % 5 == 0 { -99 } else { i as i32 })
                        .collect(),
                ),
                header(&[blank]),
            ),
        ),
        (
            "i64",
            ImageHdu::new(
                cube_axes(),
                Pixels::I64((0..n).map(|i| (i as i64 - 7) * 3_000_000_000_123).collect()),
                Header::default(),
            ),
        ),
        (
            "f32 nan",
            ImageHdu::new(
                cube_axes(),
                Pixels::F32(
                    (0..n)
                        .map(|i| {
                            if i % 9 == 0 {
                                f32::NAN
                            } else {
                                (i as f32).sin() * 1e3
                            }
                        })
                        .collect(),
                ),
                Header::default(),
            ),
        ),
        (
            "f64 nan",
            ImageHdu::new(
                cube_axes(),
                Pixels::F64(
                    (0..n)
                        .map(|i| {
                            if i % 13 == 0 {
                                f64::NAN
                            } else {
                                (i as f64).cos() * 1e-7
                            }
                        })
                        .collect(),
                ),
                Header::default(),
            ),
        ),
    ];
    v.push((
        "2-D f32",
        ImageHdu::new(
            vec![64, 40],
            Pixels::F32((0..2560).map(|i| i as f32 * 0.25).collect()),
            Header::default(),
        ),
    ));
    v
}

fn check(name: &str, a: &ImageHdu, b: &ImageHdu, exact: bool) {
    assert_eq!(a.axes, b.axes, "{name}");
    assert_eq!(a.bitpix(), b.bitpix(), "{name}");
    assert_eq!(
        (a.bscale, a.bzero, a.blank),
        (b.bscale, b.bzero, b.blank),
        "{name}"
    );
    let mismatched = a
        .mask()
        .iter()
        .zip(b.mask())
        .filter(|(x, y)| **x != *y)
        .count();
    assert_eq!(mismatched, 0, "{name}: mask");
    if exact {
        assert!(a.pixels.bit_identical(&b.pixels), "{name}: pixels");
    }
}

#[test]
fn every_bitpix_round_trips_plain() {
    let dir = tempfile::tempdir().unwrap();
    for (name, img) in images() {
        let p = dir.path().join(format!("{}.fits", name.replace(' ', "_")));
        let back = write_then_read(&img, None, &p);
        check(name, &img, &back, true);
        assert_eq!(back.planes(), img.planes());
        for card in img.header.cards.iter() {
            assert!(
                back.header.cards.contains(card),
                "{name}: lost card {}",
                card.text()
            );
        }
        if name == "u16" {
            assert!(back.is_unsigned16());
            assert!(back.physical().iter().all(|&v| (0.0..65536.0).contains(&v)));
        }
        if name == "i32 scaled" {
            let phys = back.physical();
            assert_eq!(phys[0], 100.0 + 0.5 * (-1000.0 * 70001.0));
        }
    }
}

#[test]
fn lossless_tile_compression_of_every_type() {
    let dir = tempfile::tempdir().unwrap();
    for (name, img) in images() {
        let specs: &[&str] = match img.bitpix() {
            64 => {
                let p = dir.path().join("i64.fz");
                let mut w = FitsWriter::create(&p, false).unwrap();
                let e = w
                    .write_image(&img, Some(&TileCompression::parse("gzip2").unwrap()))
                    .unwrap_err();
                assert!(e.to_string().contains("BITPIX 64"), "{e}");
                continue;
            }
            b if b < 0 => &["gzip1:q=0", "gzip2:q=0"],
            _ => &["rice", "gzip2", "hcompress"],
        };
        for spec in specs {
            let p = dir
                .path()
                .join(format!("{}.{spec}.fz", name.replace(' ', "_")));
            let back = write_then_read(&img, Some(&TileCompression::parse(spec).unwrap()), &p);
            assert!(back.compression.is_some(), "{name} {spec}");
            check(&format!("{name} {spec}"), &img, &back, true);
        }
    }
}

#[test]
fn quantised_floats_keep_blanks_and_bound_the_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, img) in images().into_iter().filter(|(_, i)| i.bitpix() < 0) {
        let p = dir.path().join(format!("{}.q.fz", name.replace(' ', "_")));
        let back = write_then_read(&img, Some(&TileCompression::parse("rice:q=4").unwrap()), &p);
        check(name, &img, &back, false);
    }
}

#[test]
fn plain_floats_keep_every_bit_denormals_and_nan_payloads_included() {
    let d = tempfile::tempdir().unwrap();
    let bits32: Vec<u32> = vec![
        1,
        0x0000_0101,
        0x807f_ffff,
        0x7fc0_0001,
        0xffc0_0000,
        0x3f80_0000,
        0x8000_0000,
    ];
    let img = ImageHdu::new(
        vec![bits32.len(), 1],
        Pixels::F32(bits32.iter().map(|&b| f32::from_bits(b)).collect()),
        Header::default(),
    );
    let back = write_then_read(&img, None, &d.path().join("f32.fits"));
    let Pixels::F32(v) = &back.pixels else {
        panic!()
    };
    assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), bits32);
    let bits64: Vec<u64> = vec![
        1,
        0x8000_0000_0000_0003,
        0x7ff8_0000_0000_0001,
        0x3ff0_0000_0000_0000,
    ];
    let img = ImageHdu::new(
        vec![bits64.len(), 1],
        Pixels::F64(bits64.iter().map(|&b| f64::from_bits(b)).collect()),
        Header::default(),
    );
    let back = write_then_read(&img, None, &d.path().join("f64.fits"));
    let Pixels::F64(v) = &back.pixels else {
        panic!()
    };
    assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), bits64);
}
