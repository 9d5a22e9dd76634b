//! `skyzip simulate`: same seed → byte-identical dataset with 1 and 2 threads; bad settings exit 2.

mod common;
use common::*;
use std::process::Command;

fn simulate(threads: &str, out: &std::path::Path, kind: &str, n: &str, extra: &[&str]) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args(["simulate", kind, "--n", n, "--seed", "5", "--out", s(out)])
        .args(extra)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(out.join(format!("{kind}-seed5-n{n}.fits"))).unwrap()
}

#[test]
fn same_seed_gives_identical_bytes_with_one_and_two_threads() {
    let d = tempfile::tempdir().unwrap();
    for (kind, n, extra) in [
        ("gce", "12", &["--noise", "poisson:2"][..]),
        ("ccd", "4", &[][..]),
        ("radio", "6", &[][..]),
        ("toy-blobs", "20", &[][..]),
    ] {
        let one = simulate("1", &d.path().join(format!("{kind}1")), kind, n, extra);
        let two = simulate("2", &d.path().join(format!("{kind}2")), kind, n, extra);
        assert!(
            one == two,
            "{kind}: datasets differ between 1 and 2 threads"
        );
    }
    simulate(
        "2",
        &d.path().join("t1"),
        "gce",
        "12",
        &["--noise", "poisson:2"],
    );
    let t = skyzip_fits::read_table(&d.path().join("t1/gce-seed5-n12.fits"), "PARAMS").unwrap();
    assert_eq!((t.rows(), t.columns.len()), (12, 7), "INDEX + 6 parameters");
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
        vec![
            "simulate",
            "ccd",
            "--n",
            "3",
            "--size",
            "4",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "ccd",
            "--n",
            "3",
            "--cr-rate-max",
            "-1",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "ccd",
            "--n",
            "3",
            "--band",
            "z",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "radio",
            "--n",
            "3",
            "--class",
            "fr3",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "toy-linear",
            "--n",
            "3",
            "--rho",
            "0",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "toy-linear",
            "--n",
            "3",
            "--sigma-n",
            "-0.1",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "toy-blobs",
            "--n",
            "3",
            "--blob-noise",
            "poisson:-1",
            "--out",
            s(d.path()),
        ],
        vec![
            "simulate",
            "gce",
            "--n",
            "3",
            "--shard-size",
            "0",
            "--out",
            s(d.path()),
        ],
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

#[test]
fn a_written_dataset_reads_back_as_the_simulator_made_it() {
    let d = tempfile::tempdir().unwrap();
    let o = skyzip(&[
        "simulate",
        "toy-blobs",
        "--n",
        "7",
        "--seed",
        "3",
        "--shard-size",
        "3",
        "--out",
        s(d.path()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = skyzip_data::Dataset::from_skyzip(d.path()).unwrap();
    let made = skyzip_data::Dataset::from_simulator(&skyzip_sim::toy::Blobs::default(), 3, 7, None)
        .unwrap();
    assert_eq!(read.len(), 7);
    assert_eq!(read.inputs, made.inputs);
    let (rt, mt) = (read.targets.unwrap(), made.targets.unwrap());
    assert_eq!(rt.len(), mt.len());
    let diff = rt.iter().zip(&mt).position(|(a, b)| a != b);
    assert!(
        diff.is_none(),
        "targets differ at {diff:?}: {:?}",
        diff.map(|i| (rt[i], mt[i]))
    );
    assert_eq!(read.params, made.params);
    assert_eq!(read.origins, made.origins);
    let e = skyzip_data::Dataset::from_skyzip(&d.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn stamps_from_real_images_make_a_dataset() {
    let d = tempfile::tempdir().unwrap();
    let Some(files) = skyzip_testdata::real_files() else {
        return;
    };
    let out = d.path().join("stamps.fits");
    let mut args = vec![
        "stamps",
        "--size",
        "48",
        "--stride",
        "40",
        "--mask",
        "--out",
        s(&out),
    ];
    args.extend(files.iter().map(|f| s(f)));
    let o = skyzip(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let ds = skyzip_data::Dataset::from_skyzip(&out).unwrap();
    assert!(ds.len() > 100 && ds.nx == 48);
    assert_eq!(ds.param_names, ["FILE", "HDU", "PLANE", "X0", "Y0"]);
    // A stamp larger than the image, a bad fraction, and writing over an input: exit 2.
    let f0 = s(&files[0]);
    for bad in [
        vec![
            "stamps",
            f0,
            "--size",
            "5000",
            "--out",
            s(&d.path().join("a.fits")),
        ],
        vec![
            "stamps",
            f0,
            "--max-bad",
            "2",
            "--out",
            s(&d.path().join("b.fits")),
        ],
        vec![
            "stamps",
            f0,
            "--size",
            "0",
            "--out",
            s(&d.path().join("c.fits")),
        ],
        vec!["stamps", f0, "--out", f0, "--force"],
    ] {
        let o = skyzip(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&o).contains("error"), "{}", stderr(&o));
    }
}

#[test]
fn train_runs_a_config_and_refuses_bad_ones() {
    let d = tempfile::tempdir().unwrap();
    let cfg = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/conv-ae-blobs-smoke.json"
    );
    let run = d.path().join("run");
    let o = skyzip(&["train", "--config", cfg, "--out", s(&run)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("best.safetensors").exists());
    // A second run into the same folder needs --force.
    let o = skyzip(&["train", "--config", cfg, "--out", s(&run)]);
    assert_eq!(o.status.code(), Some(2));
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, r#"{"model": {"name": "vit"}, "data": {"source": {"type": "simulator", "kind": "gce", "n": 4, "seed": 1}}, "epochs": 1}"#).unwrap();
    let o = skyzip(&[
        "train",
        "--config",
        s(&bad),
        "--out",
        s(&d.path().join("r2")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.json") && stderr(&o).contains("unknown model 'vit'"),
        "{}",
        stderr(&o)
    );
    assert!(
        !d.path().join("r2").exists(),
        "nothing is written for a bad config"
    );
}
