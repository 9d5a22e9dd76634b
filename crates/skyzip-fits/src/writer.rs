//! Writing FITS files safely: to a temporary name beside the target, renamed into place at the end.

use crate::compress::TileCompression;
use crate::error::{ErrorKind, FitsError, Result};
use crate::ffi::Handle;
use crate::header::Header;
use crate::image::{ImageHdu, Pixels};
use fitsio::sys;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// cfitsio's FLOATNULLVALUE: how a blank float is handed to its quantiser.
const FLOAT_NULL_SENTINEL: f64 = -9.11912E-36;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The temporary files of writers (and of in-process codec runs) not yet finished or dropped.
static UNFINISHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn track(p: &Path) {
    if let Ok(mut v) = UNFINISHED.lock() {
        v.push(p.to_path_buf());
    }
}

pub(crate) fn untrack(p: &Path) {
    if let Ok(mut v) = UNFINISHED.lock() {
        v.retain(|q| q != p);
    }
}

/// Deletes the temporary file of every writer still open (for an interrupt handler, which exits
/// without running destructors): nothing half-written is left behind.
pub fn remove_unfinished_outputs() {
    if let Ok(v) = UNFINISHED.lock() {
        for p in v.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A FITS file being written. Nothing appears at the target path until [`FitsWriter::finish`];
/// dropping an unfinished writer deletes its temporary file.
pub struct FitsWriter {
    handle: Option<Handle>,
    tmp: PathBuf,
    dest: PathBuf,
    overwrite: bool,
    hdus: usize,
}

impl FitsWriter {
    /// Starts a file at `dest`. Fails at once if it exists and `overwrite` is false.
    pub fn create(dest: &Path, overwrite: bool) -> Result<Self> {
        if dest.exists() && !overwrite {
            return Err(FitsError::new(dest, ErrorKind::OutputExists));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(FitsError::new(
                dest,
                ErrorKind::Io(format!("output directory {} does not exist", dir.display())),
            ));
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out.fits".into());
        let tmp = dir.join(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&tmp);
        track(&tmp);
        let handle = Handle::create(&tmp).map_err(|e| {
            untrack(&tmp);
            FitsError::new(dest, e.kind)
        })?;
        Ok(FitsWriter {
            handle: Some(handle),
            tmp,
            dest: dest.to_path_buf(),
            overwrite,
            hdus: 0,
        })
    }

    fn h(&self) -> &Handle {
        self.handle.as_ref().expect("writer used after finish")
    }

    pub(crate) fn handle(&self) -> &Handle {
        self.h()
    }

    pub(crate) fn count_hdu(&mut self) {
        self.hdus += 1;
    }

    pub(crate) fn dest(&self) -> &Path {
        &self.dest
    }

    fn wrap<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| FitsError::new(&self.dest, e.kind))
    }

    /// Appends an image HDU: pixels in their stored type, every header card in order.
    /// With `compression`, the HDU is tile-compressed as fpack would (preceded by an empty
    /// primary if it is the first HDU).
    pub fn write_image(
        &mut self,
        img: &ImageHdu,
        compression: Option<&TileCompression>,
    ) -> Result<()> {
        let r = self.write_image_inner(img, compression);
        self.wrap(r)
    }

    fn write_image_inner(
        &mut self,
        img: &ImageHdu,
        compression: Option<&TileCompression>,
    ) -> Result<()> {
        write_image_hdu(self.h(), img, compression)?;
        self.hdus += 1;
        Ok(())
    }

    /// Copies HDU `index` (0-based) of another file verbatim (tables, masks…).
    pub fn copy_hdu(&mut self, src: &Path, index: usize) -> Result<()> {
        self.copy_from(&Handle::open(src)?, index)
    }

    fn copy_from(&mut self, input: &Handle, index: usize) -> Result<()> {
        input.goto(index)?;
        let mut status = 0;
        unsafe { sys::ffcopy(input.ptr, self.h().ptr, 0, &mut status) };
        input.check(status)?;
        self.hdus += 1;
        Ok(())
    }

    /// Writes an empty primary HDU with these header cards (for files whose images are extensions).
    pub fn write_empty_primary(&mut self, header: &Header) -> Result<()> {
        let r = (|| {
            let h = self.h();
            let mut status = 0;
            unsafe { sys::ffcrimll(h.ptr, 8, 0, std::ptr::null_mut(), &mut status) };
            h.check(status)?;
            write_header_cards(h, header, true)
        })();
        self.hdus += 1;
        self.wrap(r)
    }

    /// Number of HDUs written so far.
    pub fn hdu_count(&self) -> usize {
        self.hdus
    }

    /// Closes the file and moves it to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        let h = self.handle.take().expect("finish called twice");
        let r = self.finish_inner(h);
        untrack(&self.tmp);
        r
    }

    fn finish_inner(&mut self, h: Handle) -> Result<PathBuf> {
        if let Err(e) = h.close() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(FitsError::new(&self.dest, e.kind));
        }
        if self.dest.exists() && !self.overwrite {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(FitsError::new(&self.dest, ErrorKind::OutputExists));
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(FitsError::new(&self.dest, ErrorKind::Io(e.to_string())));
        }
        Ok(self.dest.clone())
    }
}

impl Drop for FitsWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            drop(h);
            let _ = std::fs::remove_file(&self.tmp);
            untrack(&self.tmp);
        }
    }
}

/// Appends an image HDU to an open file (see [`FitsWriter::write_image`]).
pub(crate) fn write_image_hdu(
    h: &Handle,
    img: &ImageHdu,
    compression: Option<&TileCompression>,
) -> Result<()> {
    let bitpix = img.bitpix();
    if compression.is_some() && bitpix == 64 {
        return Err(h.err(ErrorKind::BadOption(
            "cfitsio cannot tile-compress BITPIX 64 images (fpack refuses them too); write them uncompressed".into(),
        )));
    }
    if let Some(c) = compression {
        c.apply(h, bitpix)?;
    }
    let mut naxes: Vec<i64> = img.axes.iter().map(|&a| a as i64).collect();
    let mut status = 0;
    unsafe {
        sys::ffcrimll(
            h.ptr,
            bitpix,
            naxes.len() as c_int,
            naxes.as_mut_ptr(),
            &mut status,
        )
    };
    if compression.is_some() {
        TileCompression::reset(h);
    }
    h.check(status)?;
    if compression.is_none() {
        drop_added_cards(h)?;
    }
    write_header_cards(h, &img.header, compression.is_none())?;
    unsafe {
        sys::ffrdef(h.ptr, &mut status);
        sys::ffpscl(h.ptr, 1.0, 0.0, &mut status);
    }
    h.check(status)?;
    let mut pixels = img.pixels.clone();
    let dt = pixels.datatype();
    let n = pixels.len() as i64;
    let quantised = compression.is_some_and(|c| c.is_lossy_for(bitpix)) && bitpix < 0;
    if quantised {
        // cfitsio's quantiser recognises blanks only through a null value: NaN → sentinel.
        let mut null32 = FLOAT_NULL_SENTINEL as f32;
        let mut null64 = FLOAT_NULL_SENTINEL;
        let nulval = match &mut pixels {
            Pixels::F32(v) => {
                v.iter_mut()
                    .filter(|x| x.is_nan())
                    .for_each(|x| *x = null32);
                &mut null32 as *mut f32 as *mut c_void
            }
            Pixels::F64(v) => {
                v.iter_mut()
                    .filter(|x| x.is_nan())
                    .for_each(|x| *x = null64);
                &mut null64 as *mut f64 as *mut c_void
            }
            _ => std::ptr::null_mut(),
        };
        unsafe { sys::ffppn(h.ptr, dt, 1, n, pixels.as_mut_ptr(), nulval, &mut status) };
    } else {
        unsafe { sys::ffppr(h.ptr, dt, 1, n, pixels.as_mut_ptr(), &mut status) };
    }
    h.check(status)?;
    if img.header.get("CHECKSUM").is_some() || img.header.get("DATASUM").is_some() {
        unsafe { sys::ffpcks(h.ptr, &mut status) };
        h.check(status)?;
    }
    Ok(())
}

/// Writes the non-structural cards in order; with `restore_structural`, also puts back the
/// original text (comments) of structural cards that the new HDU has.
fn write_header_cards(h: &Handle, header: &Header, restore_structural: bool) -> Result<()> {
    let mut status = 0;
    let has_extend = header.get("EXTEND").is_some();
    for card in &header.cards {
        let key = card.keyword();
        if key == "CHECKSUM" || key == "DATASUM" {
            continue;
        }
        let text = CString::new(card.text().trim_end()).unwrap_or_default();
        if card.is_structural() {
            // Only the text (comment) of a structural card comes back, never another value:
            // the HDU's structure is what cfitsio wrote for the pixels given.
            let same_value = restore_structural
                && h.card(key)
                    .is_some_and(|c| crate::header::Card::new(&c).raw_value() == card.raw_value());
            if same_value {
                let k = CString::new(key).unwrap_or_default();
                unsafe { sys::ffucrd(h.ptr, k.as_ptr(), text.as_ptr(), &mut status) };
            }
        } else {
            unsafe { sys::ffprec(h.ptr, text.as_ptr(), &mut status) };
        }
        h.check(status)?;
    }
    if restore_structural && !has_extend && h.card("EXTEND").is_some() {
        let k = CString::new("EXTEND").unwrap_or_default();
        unsafe { sys::ffdkey(h.ptr, k.as_ptr(), &mut status) };
        h.check(status)?;
    }
    Ok(())
}

/// Removes the commentary cards cfitsio adds to a new primary ("FITS (Flexible Image Transport
/// System) format is defined in…"), so that the header is the caller's alone.
fn drop_added_cards(h: &Handle) -> Result<()> {
    let mut nkeys = 0;
    let mut status = 0;
    unsafe { sys::ffghsp(h.ptr, &mut nkeys, std::ptr::null_mut(), &mut status) };
    h.check(status)?;
    for k in (1..=nkeys).rev() {
        let mut buf = [0 as c_char; 81];
        unsafe { sys::ffgrec(h.ptr, k, buf.as_mut_ptr(), &mut status) };
        h.check(status)?;
        let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        if !crate::header::Card::new(&text).is_structural() {
            unsafe { sys::ffdrec(h.ptr, k, &mut status) };
            h.check(status)?;
        }
    }
    Ok(())
}

/// Copies a file HDU by HDU: images re-written (optionally tile-compressed), other HDUs verbatim.
/// As fpack and funpack do, a compressed primary image keeps its SIMPLE/EXTEND cards as
/// ZSIMPLE/ZEXTEND, and decompressing puts such an image back into the primary HDU.
pub fn rewrite_file(
    src: &Path,
    dest: &Path,
    overwrite: bool,
    compression: Option<&TileCompression>,
) -> Result<PathBuf> {
    let infos = crate::image::list_hdus(src)?;
    let mut w = FitsWriter::create(dest, overwrite)?;
    let input = Handle::open(src)?;
    let primary_back = compression.is_none()
        && infos.len() > 1
        && !infos[0].has_image()
        && infos[1].kind == "compressed image"
        && input.goto(1).is_ok()
        && input.card("ZSIMPLE").is_some();
    for info in &infos {
        if primary_back && info.index == 0 {
            continue;
        }
        if info.has_image() {
            let img = crate::image::read_image_at(&input, info.index)?;
            w.write_image(&img, compression)?;
            if compression.is_some() && info.index == 0 {
                w.keep_primary_cards(&img.header)?;
            }
        } else {
            w.copy_from(&input, info.index)?;
        }
    }
    w.finish()
}

impl FitsWriter {
    /// Records in the compressed HDU just written that its image was the primary (ZSIMPLE, and
    /// ZEXTEND where the image had EXTEND), as fpack does.
    fn keep_primary_cards(&mut self, header: &Header) -> Result<()> {
        let r = (|| {
            let h = self.h();
            let simple = header
                .get("SIMPLE")
                .map(|c| c.text().to_string())
                .unwrap_or_else(|| {
                    "SIMPLE  =                    T / file does conform to FITS standard".into()
                });
            let mut cards = vec![format!("ZSIMPLE {}", &simple[8..])];
            if let Some(e) = header.get("EXTEND") {
                cards.push(format!("ZEXTEND {}", &e.text()[8..]));
            }
            let mut status = 0;
            for c in cards {
                let text = CString::new(c.trim_end()).unwrap_or_default();
                unsafe { sys::ffprec(h.ptr, text.as_ptr(), &mut status) };
                h.check(status)?;
            }
            if header.get("CHECKSUM").is_some() || header.get("DATASUM").is_some() {
                unsafe { sys::ffpcks(h.ptr, &mut status) };
                h.check(status)?;
            }
            Ok(())
        })();
        self.wrap(r)
    }
}

impl FitsWriter {
    /// Writes CHECKSUM and DATASUM into the HDU written last.
    pub fn write_checksum_last(&mut self) -> Result<()> {
        let h = self.h();
        let mut status = 0;
        unsafe { sys::ffpcks(h.ptr, &mut status) };
        let r = h.check(status);
        self.wrap(r)
    }

    /// Writes CHECKSUM and DATASUM into every HDU written so far (call last, before finish).
    pub fn write_checksums(&mut self) -> Result<()> {
        let r = (|| {
            let h = self.h();
            for i in 0..h.num_hdus()? {
                h.goto(i)?;
                let mut status = 0;
                unsafe { sys::ffpcks(h.ptr, &mut status) };
                h.check(status)?;
            }
            Ok(())
        })();
        self.wrap(r)
    }
}

/// What CHECKSUM/DATASUM say about one HDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Both present and correct.
    Ok,
    /// No CHECKSUM/DATASUM keywords.
    Absent,
    /// Present and wrong: the HDU changed since it was written.
    Mismatch,
}

/// Verifies CHECKSUM/DATASUM of every HDU of a file (index, verdict).
pub fn verify_checksums(path: &Path) -> Result<Vec<(usize, Checksum)>> {
    let h = Handle::open(path)?;
    let mut out = Vec::new();
    for i in 0..h.num_hdus()? {
        h.goto(i)?;
        let (mut data_ok, mut hdu_ok, mut status) = (0, 0, 0);
        unsafe { sys::ffvcks(h.ptr, &mut data_ok, &mut hdu_ok, &mut status) };
        h.check(status)?;
        let v = if data_ok < 0 || hdu_ok < 0 {
            Checksum::Mismatch
        } else if data_ok == 0 && hdu_ok == 0 {
            Checksum::Absent
        } else {
            Checksum::Ok
        };
        out.push((i, v));
    }
    Ok(out)
}
