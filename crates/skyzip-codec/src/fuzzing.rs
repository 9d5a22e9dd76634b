//! The decoder's fuzz harnesses, shared by the `cargo fuzz` targets (`fuzz/`) and by the test
//! that replays their corpus on stable Rust in CI (`tests/fuzz_corpus.rs`).
//!
//! Both take arbitrary bytes and must return — an image or an error — without panicking,
//! aborting, hanging or allocating without bound. A successful decode is re-checked: the tile
//! decoder verifies its own hash, so "Ok" means the bytes really were an encoded tile.

use crate::tile::{decode, Settings};
use crate::{CodecError, Predictor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn default_model() -> &'static Predictor {
    static P: OnceLock<Predictor> = OnceLock::new();
    P.get_or_init(|| Predictor::load("default-1").expect("the bundled model loads"))
}

/// The error bounds a tile case can ask for (byte 2 picks one).
const ERRORS: [i64; 5] = [0, 1, 3, 1000, i64::MAX / 4];

/// The settings and tile size a tile case starts with: 4 header bytes, then the tile.
/// Byte 0..2: width and height (1–64); byte 2: the error bound (one of [`ERRORS`]; any other
/// `e` asks for the last, huge one); byte 3: the pixel range (16-bit, 32-bit, or the float
/// codec's wide range).
pub fn tile_header(w: usize, h: usize, e: i64, range: u8) -> [u8; 4] {
    let ecode = ERRORS
        .iter()
        .position(|&x| x == e)
        .unwrap_or(ERRORS.len() - 1);
    [(w - 1) as u8, (h - 1) as u8, ecode as u8, range]
}

fn tile_settings(data: &[u8]) -> Option<(usize, usize, Settings, &[u8])> {
    if data.len() < 4 {
        return None;
    }
    let w = (data[0] % 64) as usize + 1;
    let h = (data[1] % 64) as usize + 1;
    let e = ERRORS[data[2] as usize % ERRORS.len()];
    let (lo, hi) = match data[3] % 3 {
        0 => (i16::MIN as i64, i16::MAX as i64),
        1 => (i32::MIN as i64, i32::MAX as i64),
        _ => (-(1 << 52), 1 << 52),
    };
    Some((
        w,
        h,
        Settings {
            e,
            lo,
            hi,
            eta: None,
            rdo: None,
        },
        &data[4..],
    ))
}

/// One tile-decoder case. Returns whether the tile decoded.
pub fn tile_case(data: &[u8]) -> bool {
    let Some((w, h, s, bytes)) = tile_settings(data) else {
        return false;
    };
    match decode(default_model(), bytes, w, h, &s) {
        Ok((v, blank)) => {
            assert_eq!(v.len(), w * h);
            assert_eq!(blank.len(), w * h);
            for (x, b) in v.iter().zip(&blank) {
                assert!(
                    *b || (s.lo..=s.hi).contains(x),
                    "decoded {x} outside the range"
                );
            }
            true
        }
        Err(_) => false,
    }
}

/// Blanks the CHECKSUM and DATASUM cards of a FITS byte stream (the cards become 80 spaces, a
/// valid blank card), so that mutated files reach the container parser and the tile decoder
/// rather than stopping at the checksum check.
pub fn strip_checksums(bytes: &mut [u8]) {
    for card in bytes.chunks_exact_mut(80) {
        if card.starts_with(b"CHECKSUM=") || card.starts_with(b"DATASUM =") {
            card.fill(b' ');
        }
    }
}

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "skyzip-fuzz-{}-{}-{tag}.fits",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// One whole-file case: the bytes (checksum cards blanked) are written to a scratch file and
/// decompressed with the bundled model; any other model name the file asks for is refused
/// (a fuzz input must not make the harness read arbitrary paths). Returns whether it decoded.
pub fn file_case(data: &[u8]) -> bool {
    let mut bytes = data.to_vec();
    strip_checksums(&mut bytes);
    let (input, output) = (scratch("in"), scratch("out"));
    if std::fs::write(&input, &bytes).is_err() {
        return false;
    }
    let load = |name: &str| -> Result<Predictor, CodecError> {
        if crate::predict::resolve(name).is_some() {
            Predictor::load(name)
        } else {
            Err(CodecError::Model {
                model: name.to_string(),
                why: "the fuzz harness loads only the bundled model".into(),
            })
        }
    };
    let r = crate::decompress(&input, &output, &load, true);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    r.is_ok()
}
