//! Typed errors of the FITS layer. Every error names the file it concerns.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, without the file name (see [`FitsError`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// The file does not exist or cannot be opened.
    Open(String),
    /// The file is not FITS at all.
    NotFits,
    /// The file ends before the data its header announces.
    Truncated,
    /// The requested HDU does not exist.
    NoSuchHdu(String),
    /// The HDU holds no image (a table, or an empty primary).
    NotImage(String),
    /// A BITPIX value that FITS does not define.
    UnsupportedBitpix(i32),
    /// The output exists and overwriting was not asked for.
    OutputExists,
    /// A compression option that cfitsio does not accept.
    BadOption(String),
    /// The header is malformed.
    BadHeader(String),
    /// A checksum does not match the data.
    Checksum(String),
    /// Any other cfitsio error, with its status and message.
    Cfitsio { status: i32, message: String },
    /// An operating-system I/O error.
    Io(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Open(m) => write!(f, "cannot open file: {m}"),
            ErrorKind::NotFits => write!(f, "not a FITS file (no SIMPLE card at the start)"),
            ErrorKind::Truncated => {
                write!(
                    f,
                    "file is truncated: it ends before the data its header announces"
                )
            }
            ErrorKind::NoSuchHdu(h) => write!(f, "no HDU {h} in this file"),
            ErrorKind::NotImage(h) => write!(f, "HDU {h} holds no image data"),
            ErrorKind::UnsupportedBitpix(b) => {
                write!(
                    f,
                    "unsupported BITPIX {b} (FITS allows 8, 16, 32, 64, -32, -64)"
                )
            }
            ErrorKind::OutputExists => {
                write!(
                    f,
                    "output file exists already (pass --force to overwrite it)"
                )
            }
            ErrorKind::BadOption(m) => write!(f, "bad compression option: {m}"),
            ErrorKind::BadHeader(m) => write!(f, "bad header: {m}"),
            ErrorKind::Checksum(m) => write!(f, "checksum mismatch: {m}"),
            ErrorKind::Cfitsio { status, message } => {
                write!(f, "cfitsio error {status}: {message}")
            }
            ErrorKind::Io(m) => write!(f, "{m}"),
        }
    }
}

/// An error of the FITS layer: the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct FitsError {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl FitsError {
    pub fn new(path: &Path, kind: ErrorKind) -> Self {
        FitsError {
            path: path.to_path_buf(),
            kind,
        }
    }
}

pub type Result<T> = std::result::Result<T, FitsError>;
