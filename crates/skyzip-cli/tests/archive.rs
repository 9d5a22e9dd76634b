//! Archives: `skyzip compress DIR --out OUT --jobs N --verify [--delete-input]` and decompress.
//! A run killed midway leaves nothing under a final name that is not complete, the rerun
//! finishes with every output verified, and no input is lost.

mod common;
use common::{s, skyzip, stderr};
use skyzip_fits::{read_all_images, FitsWriter, Header, ImageHdu, Pixels};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A folder of `n` simulated 1024² int16 frames (sky + noise + a gradient; distinct seeds).
fn frames(dir: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|k| {
            let (nx, ny) = (1024, 1024);
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (k as u64 + 1);
            let px: Vec<i16> = (0..nx * ny)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let noise = ((x >> 40) % 61) as i32 - 30;
                    (1000 + (i % nx) as i32 / 8 + noise + 50 * k as i32) as i16
                })
                .collect();
            let p = dir.join(format!("frame{k:02}.fits"));
            let mut w = FitsWriter::create(&p, false).unwrap();
            w.write_image(
                &ImageHdu::new(vec![nx, ny], Pixels::I16(px), Header::default()),
                None,
            )
            .unwrap();
            w.finish().unwrap();
            p
        })
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every final-named output decodes to its input's pixels.
fn outputs_match(inputs: &[PathBuf], out: &Path, tmp: &Path) {
    for i in inputs {
        let stem = i
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".fits", "");
        let o = out.join(format!("{stem}.sz.fits"));
        if !o.exists() {
            continue;
        }
        let back = tmp.join(format!("{stem}.back.fits"));
        let _ = std::fs::remove_file(&back);
        let r = skyzip(&["decompress", s(&o), s(&back)]);
        assert!(r.status.success(), "{}: {}", o.display(), stderr(&r));
        let (a, b) = (read_all_images(i).unwrap(), read_all_images(&back).unwrap());
        assert_eq!(a[0].pixels, b[0].pixels, "{}", o.display());
    }
}

/// Starts a run and kills it (`signal`) once `after` outputs exist under their final names.
fn kill_midway(args: &[&str], out: &Path, after: usize, signal: &str) -> std::process::ExitStatus {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        let done = names(out)
            .iter()
            .filter(|n| n.ends_with(".sz.fits"))
            .count();
        if done >= after || t.elapsed() > Duration::from_secs(120) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    child.wait().unwrap()
}

#[test]
fn a_killed_run_resumes_and_every_output_is_verified() {
    let t = tempfile::tempdir().unwrap();
    let (inp, out) = (t.path().join("in"), t.path().join("out"));
    let inputs = frames(&inp, 6);
    let run = [
        "compress",
        s(&inp),
        "--out",
        s(&out),
        "--jobs",
        "1",
        "--verify",
    ];

    // SIGTERM: the handler removes what was unfinished and exits 130.
    let st = kill_midway(&run, &out, 1, "-TERM");
    assert_eq!(st.code(), Some(130), "SIGTERM ends the run with 130");
    let left = names(&out);
    assert!(
        left.iter().all(|n| n.ends_with(".sz.fits")),
        "an interrupted run leaves only complete outputs: {left:?}"
    );
    outputs_match(&inputs, &out, t.path());

    // SIGKILL: nothing can clean up; whatever was unfinished is in the hidden work folder only.
    let st = kill_midway(&run, &out, left.len() + 1, "-KILL");
    assert!(!st.success());
    for n in names(&out) {
        assert!(
            n.ends_with(".sz.fits") || n.starts_with(".skyzip-run-"),
            "a killed run leaves no partial output under a final name: {n}"
        );
    }
    outputs_match(&inputs, &out, t.path());
    let finished = names(&out)
        .iter()
        .filter(|n| n.ends_with(".sz.fits"))
        .count();
    assert!(
        finished < inputs.len(),
        "the kill came midway ({finished} done)"
    );

    // The rerun: complete outputs verified and skipped, the rest done, the dead run's work
    // folder cleared, every input still there.
    let r = skyzip(&run);
    assert!(r.status.success(), "{}", stderr(&r));
    let so = String::from_utf8_lossy(&r.stdout);
    assert!(so.contains("skipped, verified"), "{so}");
    assert!(so.contains("ok, verified"), "{so}");
    assert!(so.contains("6 files:") && so.contains("0 failed"), "{so}");
    let want: Vec<String> = (0..6).map(|k| format!("frame{k:02}.sz.fits")).collect();
    assert_eq!(names(&out), want, "outputs, and no work folder left");
    assert!(inputs.iter().all(|i| i.exists()), "no input lost");
    outputs_match(&inputs, &out, t.path());

    // --delete-input: refused without --verify; with it, inputs go only after verification.
    let r = skyzip(&["compress", s(&inp), "--out", s(&out), "--delete-input"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("add --verify"), "{}", stderr(&r));
    assert!(inputs.iter().all(|i| i.exists()));
    // Keep a copy to compare with after the inputs are gone.
    let keep = t.path().join("keep");
    std::fs::create_dir_all(&keep).unwrap();
    let kept: Vec<PathBuf> = inputs
        .iter()
        .map(|i| {
            let k = keep.join(i.file_name().unwrap());
            std::fs::copy(i, &k).unwrap();
            k
        })
        .collect();
    let r = skyzip(&[
        "compress",
        s(&inp),
        "--out",
        s(&out),
        "--jobs",
        "2",
        "--verify",
        "--delete-input",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        inputs.iter().all(|i| !i.exists()),
        "verified inputs deleted"
    );
    outputs_match(&kept, &out, t.path());

    // And back: the archive decompressed, verified, to the originals' pixels.
    let back = t.path().join("back");
    let r = skyzip(&[
        "decompress",
        s(&out),
        "--out",
        s(&back),
        "--jobs",
        "2",
        "--verify",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    for k in &kept {
        let b = back.join(k.file_name().unwrap());
        let (x, y) = (read_all_images(k).unwrap(), read_all_images(&b).unwrap());
        assert_eq!(x[0].pixels, y[0].pixels);
    }
}

#[test]
fn one_bad_file_fails_by_name_and_the_others_go_on() {
    let t = tempfile::tempdir().unwrap();
    let (inp, out) = (t.path().join("in"), t.path().join("out"));
    frames(&inp, 2);
    std::fs::write(inp.join("broken.fits"), b"SIMPLE  =  not really").unwrap();
    let r = skyzip(&[
        "compress",
        s(&inp),
        "--out",
        s(&out),
        "--jobs",
        "2",
        "--verify",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let e = stderr(&r);
    assert!(e.contains("broken.fits"), "{e}");
    assert!(e.contains("1 of 3 files failed"), "{e}");
    assert_eq!(names(&out), ["frame00.sz.fits", "frame01.sz.fits"]);
    // Two inputs that would write the same output are refused before any work.
    let dup = t.path().join("dup");
    std::fs::create_dir_all(&dup).unwrap();
    std::fs::copy(inp.join("frame00.fits"), dup.join("frame00.fit")).unwrap();
    let r = skyzip(&[
        "compress",
        s(&inp),
        s(&dup),
        "--out",
        s(&t.path().join("o2")),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("two inputs would write"),
        "{}",
        stderr(&r)
    );
}

/// A file's bytes less its CHECKSUM and DATASUM cards (their comments carry the time written).
fn without_checksums(b: &[u8]) -> Vec<u8> {
    b.chunks(80)
        .filter(|c| !(c.starts_with(b"CHECKSUM= ") || c.starts_with(b"DATASUM = ")))
        .flatten()
        .copied()
        .collect()
}

#[test]
fn the_real_images_compress_as_an_archive_each_verified() {
    let Some(dir) = skyzip_testdata::real_dir() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    for mode in [&[][..], &["--max-error", "1"][..]] {
        let o = out.join(if mode.is_empty() {
            "lossless"
        } else {
            "1sigma"
        });
        let mut args = vec![
            "compress",
            s(&dir),
            "--out",
            s(&o),
            "--jobs",
            "2",
            "--verify",
        ];
        args.extend_from_slice(mode);
        let r = skyzip(&args);
        assert!(r.status.success(), "{mode:?}: {}", stderr(&r));
        let so = String::from_utf8_lossy(&r.stdout);
        assert!(
            so.contains("11 files: 11 done, 0 skipped, 0 failed"),
            "{so}"
        );
        // The same bytes as the one-file form.
        let one = t.path().join("one.fits");
        let m13 = dir.join("optical_ccd_raw_M13_blue_0001.fits");
        let mut a1 = vec!["compress", s(&m13), s(&one), "--force"];
        a1.extend_from_slice(mode);
        assert!(skyzip(&a1).status.success());
        let a = without_checksums(&std::fs::read(&one).unwrap());
        let b = without_checksums(
            &std::fs::read(o.join("optical_ccd_raw_M13_blue_0001.sz.fits")).unwrap(),
        );
        assert!(
            a == b,
            "{mode:?}: the archive's file differs from the one-file form's"
        );
    }
}

#[test]
fn a_wrong_output_under_a_final_name_fails_verification_and_is_made_anew() {
    let t = tempfile::tempdir().unwrap();
    let (inp, out) = (t.path().join("in"), t.path().join("out"));
    let inputs = frames(&inp, 2);
    let run = ["compress", s(&inp), "--out", s(&out), "--verify"];
    assert!(skyzip(&run).status.success());
    // frame01's output put in frame00's place: a rerun without --verify trusts it, with
    // --verify finds it wrong and codes frame00 again.
    std::fs::copy(out.join("frame01.sz.fits"), out.join("frame00.sz.fits")).unwrap();
    let r = skyzip(&["compress", s(&inp), "--out", s(&out)]);
    assert!(String::from_utf8_lossy(&r.stdout).contains("2 skipped"));
    let r = skyzip(&run);
    let so = String::from_utf8_lossy(&r.stdout);
    assert!(
        r.status.success() && so.contains("1 done, 1 skipped"),
        "{so}"
    );
    outputs_match(&inputs, &out, t.path());
}
