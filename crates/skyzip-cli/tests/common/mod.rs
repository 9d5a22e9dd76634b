#![allow(dead_code)]
use std::path::Path;
use std::process::{Command, Output};

pub fn skyzip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyzip"))
        .args(args)
        .output()
        .expect("run skyzip")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when an external tool is on PATH; CI installs them, so a missing one there is a failure.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} must be installed in CI (.ci/run)"
        );
        eprintln!("note: {tool} not installed; skipping its checks");
    }
    found
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
