//! Test support shared by the crates' tests: the real development images in
//! `shared/data/real` beside the checkout (never copied into the repository).

use std::path::PathBuf;

/// The folder of real images (`../shared/data/real` from the repository root).
pub fn real_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real")
}

/// Every `.fits` file there, sorted; panics if the folder is missing or nearly empty.
pub fn real_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(real_dir())
        .expect("../shared/data/real must exist for these tests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "fits"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "expected the real images, found {}", v.len());
    v
}
