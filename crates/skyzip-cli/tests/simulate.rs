//! `skyzip simulate`: same seed → byte-identical dataset with 1 and 2 threads; bad settings exit 2.

mod common;
use common::*;
use std::process::Command;

fn simulate(threads: &str, out: &std::path::Path) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args([
            "simulate",
            "gce",
            "--n",
            "12",
            "--seed",
            "5",
            "--out",
            s(out),
            "--noise",
            "poisson:2",
        ])
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(out.join("gce-seed5-n12.fits")).unwrap()
}

#[test]
fn same_seed_gives_identical_bytes_with_one_and_two_threads() {
    let d = tempfile::tempdir().unwrap();
    let one = simulate("1", &d.path().join("t1"));
    let two = simulate("2", &d.path().join("t2"));
    assert!(one == two, "datasets differ between 1 and 2 threads");
    let img = skyzip_fits::read_image(
        &d.path().join("t1/gce-seed5-n12.fits"),
        &skyzip_fits::HduSelector::Name("PARAMS".into()),
    )
    .unwrap();
    assert_eq!(img.axes, vec![6, 12]);
}

#[test]
fn impossible_settings_exit_2() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        vec!["simulate", "gce", "--n", "0", "--out", s(d.path())],
        vec![
            "simulate",
            "gce",
            "--n",
            "3",
            "--out",
            s(d.path()),
            "--noise",
            "masked:2",
        ],
        vec!["simulate", "nebula", "--n", "3", "--out", s(d.path())],
    ] {
        let o = skyzip(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = skyzip(&["simulate", "gce", "--n", "2", "--out", s(d.path())]);
    assert!(o.status.success());
    let o = skyzip(&["simulate", "gce", "--n", "2", "--out", s(d.path())]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing dataset is not overwritten without --force"
    );
}
