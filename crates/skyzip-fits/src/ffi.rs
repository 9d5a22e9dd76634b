//! A small safe owner of a cfitsio `fitsfile*`: open, create, status checking and close.
//!
//! cfitsio is built reentrant by `fitsio-sys`, so distinct handles may be used from distinct threads.

use crate::error::{ErrorKind, FitsError, Result};
use fitsio::sys;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};

pub(crate) const END_OF_FILE: c_int = 107;
pub(crate) const READ_ERROR: c_int = 108;
pub(crate) const FILE_NOT_OPENED: c_int = 104;
pub(crate) const BAD_HDU_NUM: c_int = 301;
pub(crate) const UNKNOWN_REC: c_int = 252;
pub(crate) const NO_SIMPLE: c_int = 221;
pub(crate) const BAD_BITPIX: c_int = 211;

/// Reads cfitsio's message for `status` and empties its error stack.
pub(crate) fn status_message(status: c_int) -> String {
    let mut buf = [0 as c_char; 81];
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    let mut msg = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // The error stack holds more detail; keep the first line of it.
    let mut detail = [0 as c_char; 81];
    if unsafe { sys::ffgmsg(detail.as_mut_ptr()) } != 0 {
        let d = unsafe { CStr::from_ptr(detail.as_ptr()) }.to_string_lossy();
        let d = d.trim();
        if !d.is_empty() && d != msg {
            msg = format!("{msg} ({d})");
        }
    }
    unsafe { sys::ffcmsg() };
    msg
}

/// Turns a cfitsio status into a typed error for `path`.
pub(crate) fn status_error(path: &Path, status: c_int) -> FitsError {
    let message = status_message(status);
    let kind = match status {
        END_OF_FILE | READ_ERROR => ErrorKind::Truncated,
        FILE_NOT_OPENED => ErrorKind::Open(message),
        UNKNOWN_REC | NO_SIMPLE => ErrorKind::NotFits,
        BAD_BITPIX => match message
            .rsplit(':')
            .next()
            .and_then(|v| v.trim().trim_end_matches(')').parse().ok())
        {
            Some(b) => ErrorKind::UnsupportedBitpix(b),
            None => ErrorKind::BadHeader(message),
        },
        _ => ErrorKind::Cfitsio { status, message },
    };
    FitsError::new(path, kind)
}

/// An open FITS file. Closed on drop; [`Handle::close`] reports close errors.
pub(crate) struct Handle {
    pub(crate) ptr: *mut sys::fitsfile,
    pub(crate) path: PathBuf,
}

// cfitsio is compiled with --enable-reentrant; one handle is used by one thread at a time.
unsafe impl Send for Handle {}

impl Handle {
    /// Opens a file read-only, without cfitsio's extended-filename parsing.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(FitsError::new(path, ErrorKind::Open("no such file".into())));
        }
        if path.is_dir() {
            return Err(FitsError::new(
                path,
                ErrorKind::Open("is a directory".into()),
            ));
        }
        check_signature(path)?;
        let c = cpath(path)?;
        let mut ptr = std::ptr::null_mut();
        let mut status = 0;
        unsafe { sys::ffdkopn(&mut ptr, c.as_ptr(), sys::READONLY as c_int, &mut status) };
        if status != 0 {
            if !ptr.is_null() {
                let mut s2 = 0;
                unsafe { sys::ffclos(ptr, &mut s2) };
            }
            return Err(status_error(path, status));
        }
        Ok(Handle {
            ptr,
            path: path.to_path_buf(),
        })
    }

    /// Creates a new file; fails if it exists.
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let c = cpath(path)?;
        let mut ptr = std::ptr::null_mut();
        let mut status = 0;
        unsafe { sys::ffdkinit(&mut ptr, c.as_ptr(), &mut status) };
        if status != 0 {
            return Err(status_error(path, status));
        }
        Ok(Handle {
            ptr,
            path: path.to_path_buf(),
        })
    }

    /// Turns a cfitsio status into a result naming this file.
    pub(crate) fn check(&self, status: c_int) -> Result<()> {
        if status == 0 {
            Ok(())
        } else {
            Err(status_error(&self.path, status))
        }
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> FitsError {
        FitsError::new(&self.path, kind)
    }

    /// Number of HDUs in the file.
    pub(crate) fn num_hdus(&self) -> Result<usize> {
        let mut n = 0;
        let mut status = 0;
        unsafe { sys::ffthdu(self.ptr, &mut n, &mut status) };
        self.check(status)?;
        Ok(n as usize)
    }

    /// Moves to HDU `index` (0-based) and returns cfitsio's HDU type.
    pub(crate) fn goto(&self, index: usize) -> Result<c_int> {
        let mut t = 0;
        let mut status = 0;
        unsafe { sys::ffmahd(self.ptr, index as c_int + 1, &mut t, &mut status) };
        if status == BAD_HDU_NUM {
            status_message(status);
            return Err(self.err(ErrorKind::NoSuchHdu(index.to_string())));
        }
        self.check(status)?;
        Ok(t)
    }

    pub(crate) fn is_compressed(&self) -> bool {
        let mut status = 0;
        unsafe { sys::fits_is_compressed_image(self.ptr, &mut status) != 0 }
    }

    /// Reads a string keyword of the current HDU (raw header, not translated), if present.
    /// The current HDU's card with this keyword as written (no conversion of a compressed
    /// HDU's keywords), if it has one.
    pub(crate) fn card(&self, key: &str) -> Option<String> {
        let k = CString::new(key).ok()?;
        let mut card = [0 as c_char; 81];
        let mut status = 0;
        unsafe { sys::ffgcrd(self.ptr, k.as_ptr(), card.as_mut_ptr(), &mut status) };
        if status != 0 {
            status_message(status);
            return None;
        }
        Some(
            unsafe { CStr::from_ptr(card.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    pub(crate) fn key_string(&self, key: &str) -> Option<String> {
        let k = CString::new(key).ok()?;
        let mut value = [0 as c_char; 81];
        let mut status = 0;
        unsafe {
            sys::ffgkys(
                self.ptr,
                k.as_ptr(),
                value.as_mut_ptr(),
                std::ptr::null_mut(),
                &mut status,
            )
        };
        if status != 0 {
            status_message(status);
            return None;
        }
        Some(
            unsafe { CStr::from_ptr(value.as_ptr()) }
                .to_string_lossy()
                .trim()
                .to_string(),
        )
    }

    /// Closes the file, reporting any error of the final flush.
    pub(crate) fn close(mut self) -> Result<()> {
        let mut status = 0;
        unsafe { sys::ffclos(self.ptr, &mut status) };
        self.ptr = std::ptr::null_mut();
        self.check(status)
    }

    pub(crate) fn void<T>(v: &mut T) -> *mut c_void {
        v as *mut T as *mut c_void
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            let mut status = 0;
            unsafe { sys::ffclos(self.ptr, &mut status) };
            if status != 0 {
                status_message(status);
            }
        }
    }
}

/// A FITS file starts with `SIMPLE  =` and is whole 2880-byte blocks; say which rule fails.
fn check_signature(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .map_err(|e| FitsError::new(path, ErrorKind::Open(e.to_string())))?;
    let mut head = [0u8; 9];
    let n = f
        .read(&mut head)
        .map_err(|e| FitsError::new(path, ErrorKind::Open(e.to_string())))?;
    if n < 9 || &head != b"SIMPLE  =" {
        return Err(FitsError::new(path, ErrorKind::NotFits));
    }
    Ok(())
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| FitsError::new(path, ErrorKind::Open("path contains a NUL byte".into())))
}
