//! Test support shared by the crates' tests: the real development images in
//! `shared/data/real` beside the checkout (never copied into the repository), and the one
//! small real frame bundled in `data/sample/`.
//!
//! A clone with no `../shared` beside it still passes its tests: a test that needs the shared
//! images prints a note and returns. Under `CI=true` the images must be there, and a missing
//! folder fails the test instead, so CI never passes by skipping.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled real frame (SAAO raw CCD, BSD-3-Clause; provenance in `data/sample/README.md`).
pub fn sample() -> PathBuf {
    root().join("data/sample/optical_ccd_raw_saao_a8280271.fits")
}

/// The folder of real images (`../shared/data/real` from the repository root), or None when it
/// is missing: outside CI with a note on stderr, under `CI=true` a panic.
pub fn real_dir() -> Option<PathBuf> {
    let dir = root().join("../shared/data/real");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI must run with the development images beside the checkout",
        dir.display()
    );
    eprintln!(
        "note: {} is missing; skipping the checks on the shared development images",
        dir.display()
    );
    None
}

/// One shared real image by file name (None as for [`real_dir`]).
pub fn real(name: &str) -> Option<PathBuf> {
    real_dir().map(|d| d.join(name))
}

/// Every `.fits` file of the shared folder, sorted (None as for [`real_dir`]); panics if the
/// folder is there but nearly empty.
pub fn real_files() -> Option<Vec<PathBuf>> {
    let dir = real_dir()?;
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "expected the real images, found {}", v.len());
    Some(v)
}
