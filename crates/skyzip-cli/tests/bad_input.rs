//! Bad input never wins: exit code 2, one line naming the file and the problem, no panic,
//! no half-written output, never an overwritten file.

mod common;
use common::*;
use skyzip_testdata::sample;
use std::path::{Path, PathBuf};

fn fails_with(args: &[&str], file: &Path, words: &str) {
    let o = skyzip(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(&file.display().to_string()),
        "{args:?}: message does not name the file: {err}"
    );
    assert!(
        err.to_lowercase().contains(words),
        "{args:?}: expected '{words}' in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
}

/// A small image in the primary HDU and a binary table after it (as HorseHead's mask table).
fn image_and_table(dir: &Path) -> PathBuf {
    use skyzip_fits::{Column, FitsWriter, Header, ImageHdu, Pixels, Table};
    let p = dir.join("image+table.fits");
    let mut w = FitsWriter::create(&p, false).unwrap();
    let px = Pixels::I16((0..64 * 48).map(|i| (i % 97) as i16).collect());
    w.write_image(&ImageHdu::new(vec![64, 48], px, Header::default()), None)
        .unwrap();
    let t = Table {
        columns: vec![("FLUX".into(), Column::F64(vec![1.0, 2.0, 3.0]))],
        header: Header::default(),
    };
    w.write_table("MASK", &t).unwrap();
    w.finish().unwrap();
    p
}

fn no_tmp_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn missing_file() {
    let p = PathBuf::from("/nonexistent/dir/image.fits");
    for cmd in ["info", "classic"] {
        fails_with(&[cmd, s(&p)], &p, "no such file");
    }
}

#[test]
fn not_a_fits_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.fits");
    std::fs::write(&p, "this is a text file, not FITS\n").unwrap();
    for cmd in ["info", "classic"] {
        fails_with(&[cmd, s(&p)], &p, "not a fits file");
    }
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample()).unwrap();
    for cut in [1000, 2880 * 3, bytes.len() / 2] {
        let p = dir.path().join(format!("cut{cut}.fits"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        fails_with(&["info", s(&p)], &p, "truncated");
        fails_with(&["classic", s(&p), "--repeat", "1"], &p, "truncated");
        let out = dir.path().join(format!("cut{cut}.fits.fz"));
        fails_with(&["pack", s(&p), s(&out)], &p, "truncated");
        assert!(!out.exists(), "a failed write left {}", out.display());
        no_tmp_left(dir.path());
    }
}

#[test]
fn hdu_without_image() {
    let dir = tempfile::tempdir().unwrap();
    let p = image_and_table(dir.path());
    fails_with(&["classic", s(&p), "--hdu", "1"], &p, "holds no image");
    fails_with(&["classic", s(&p), "--hdu", "7"], &p, "no hdu 7");
    fails_with(
        &["classic", s(&p), "--hdu", "NOSUCH"],
        &p,
        "no hdu named nosuch",
    );
    // A file whose only image HDU is empty: a primary with NAXIS = 0 and nothing else.
    let e = dir.path().join("empty.fits");
    let mut w = skyzip_fits::FitsWriter::create(&e, false).unwrap();
    w.write_empty_primary(&skyzip_fits::Header::default())
        .unwrap();
    w.finish().unwrap();
    fails_with(&["classic", s(&e)], &e, "holds no image");
}

#[test]
fn unsupported_bitpix() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bitpix24.fits");
    let cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                   24",
        "NAXIS   =                    2",
        "NAXIS1  =                   10",
        "NAXIS2  =                   10",
        "END",
    ];
    let mut bytes: Vec<u8> = cards
        .iter()
        .flat_map(|c| format!("{c:<80}").into_bytes())
        .collect();
    bytes.resize(2880 * 2, b' ');
    std::fs::write(&p, bytes).unwrap();
    fails_with(&["info", s(&p)], &p, "unsupported bitpix 24");
    fails_with(&["classic", s(&p)], &p, "unsupported bitpix 24");
}

#[test]
fn outputs_are_never_overwritten_without_force_and_inputs_never() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.fits");
    std::fs::copy(sample(), &input).unwrap();
    let out = dir.path().join("out.fits.fz");
    std::fs::write(&out, b"precious").unwrap();
    fails_with(&["pack", s(&input), s(&out)], &out, "exists already");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let o = skyzip(&["pack", s(&input), s(&out), "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(skyzip_fits::read_image(&out, &skyzip_fits::HduSelector::FirstImage).is_ok());
    let before = std::fs::read(&input).unwrap();
    fails_with(
        &["pack", s(&input), s(&input), "--force"],
        &input,
        "refusing to overwrite",
    );
    fails_with(
        &["unpack", s(&input), s(&input), "--force"],
        &input,
        "refusing to overwrite",
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
    no_tmp_left(dir.path());
}

#[test]
fn bad_codec_option() {
    let p = sample();
    let o = skyzip(&["classic", s(&p), "--codecs", "zstd"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown codec 'zstd'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_closed_standard_output_ends_the_program_without_a_panic() {
    // `skyzip models | head -0`: the reader is gone before skyzip writes its first line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .arg("models")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(141), "{e}");
}
