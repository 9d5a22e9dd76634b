//! Ctrl-C. A training run stops after its current batch (a second Ctrl-C leaves at once); every
//! other command removes its unfinished outputs and temporary folders and exits with 130, so an
//! interrupted run never leaves partial files behind.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static GRACEFUL: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);
/// Set once the handler has begun removing the outputs and will exit with 130.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Once an interrupt is removing the unfinished outputs, the work may fail under it (its files
/// and folders vanish) or finish: neither may end the process with its own status or message.
/// This waits for the handler's exit (130) instead; it returns at once when no interrupt came.
pub fn wait_if_interrupted() {
    if EXITING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

fn cleanup() {
    skyzip_fits::remove_unfinished_outputs();
    if let Ok(dirs) = TEMP_DIRS.lock() {
        for d in dirs.iter() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Installs the handler (once, at start-up).
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        if GRACEFUL.load(Ordering::SeqCst) {
            if !STOP.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\nskyzip: interrupt: stopping after this batch (Ctrl-C again to leave now)"
                );
                return;
            }
            eprintln!(
                "\nskyzip: interrupted twice; leaving now (the last completed epoch is saved)"
            );
        } else {
            eprintln!("\nskyzip: interrupted; unfinished outputs removed");
        }
        EXITING.store(true, Ordering::SeqCst);
        cleanup();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")
}

/// Makes a closed standard output (`skyzip … | head`) end the program as a closed pipe ends
/// other Unix tools: unfinished outputs removed, exit status 141 (128 + SIGPIPE), no panic
/// message. Rust ignores SIGPIPE, so `println!` panics on the broken pipe instead; this hook
/// catches exactly that panic and lets every other one through.
pub fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A thread whose files an interrupt removed: the handler exits with 130.
        wait_if_interrupted();
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            cleanup();
            std::process::exit(141);
        }
        default(info);
    }));
}

/// The flag a training loop polls: from now on the first Ctrl-C only sets it.
pub fn graceful_stop() -> &'static AtomicBool {
    GRACEFUL.store(true, Ordering::SeqCst);
    &STOP
}

/// A temporary folder that an interrupt removes too (and dropping it, as tempfile's does).
pub struct TempDir {
    dir: Option<tempfile::TempDir>,
}

impl TempDir {
    /// A new hidden folder inside `parent` (so that files made there rename into place).
    pub fn new_in(parent: &Path) -> Result<TempDir> {
        Self::new_in_named(parent, ".skyzip-")
    }

    /// A new folder inside `parent` whose name starts with `prefix`.
    pub fn new_in_named(parent: &Path, prefix: &str) -> Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .with_context(|| format!("{}: cannot make a temporary folder", parent.display()))?;
        if let Ok(mut v) = TEMP_DIRS.lock() {
            v.push(dir.path().to_path_buf());
        }
        Ok(TempDir { dir: Some(dir) })
    }

    /// A new folder in the system's temporary directory.
    pub fn new() -> Result<TempDir> {
        Self::new_in(&std::env::temp_dir())
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("live").path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            if let Ok(mut v) = TEMP_DIRS.lock() {
                v.retain(|p| p != d.path());
            }
        }
    }
}
