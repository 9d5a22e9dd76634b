//! The best classical image coders beside fpack's: JPEG-XL (libjxl, lossless modular mode) and
//! JPEG-LS (CharLS, lossless and near-lossless), run in-process on integer images of up to 16
//! bits, with their results stated as whole-file equivalents (codestream + the image's FITS
//! header) so that they compare with fpack's and skyzip's files byte for byte.
//!
//! Both libraries are BSD-3-Clause C libraries that Debian packages (`libjxl0.7`, `libcharls2`);
//! they are loaded at run time (`dlopen`), so skyzip builds and runs without them and a missing
//! library is one failed row with an install hint, not a build failure. The bindings are our own
//! (the `jpegxl-rs` crate is GPL-3.0): only the handful of C functions used here.
//!
//! Pixels: stored values (before BSCALE/BZERO) minus the image's minimum, so that any integer
//! image whose values span at most 16 bits codes as unsigned samples; planes stacked as rows.
//! Blank (BLANK) pixels are coded as their stored value: exact in the lossless modes; in
//! near-lossless mode a blank may come back as another value, and the row says so (mask).

use crate::classic::{measured, ClassicResult, CompressedFile};
use crate::error::{ErrorKind, FitsError, Result};
use crate::image::{ImageHdu, Pixels};
use libloading::Library;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

/// JPEG-LS's largest NEAR (ISO 14495-1: NEAR ≤ min(255, MAXVAL/2)).
const NEAR_MAX: u32 = 255;

/// A JPEG-XL or JPEG-LS peer, as written in `--codecs`.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerCodec {
    /// `jxl[:e=E]`: JPEG-XL lossless at effort E (1–9, default 7).
    Jxl { effort: u32 },
    /// `jpegls[:near=E]`: JPEG-LS, lossless, or near-lossless with NEAR = ⌊E·σ⌋ in stored units
    /// (every pixel within NEAR of the original, as skyzip's `--max-error E`).
    JpegLs { near_sigma: f64 },
}

impl PeerCodec {
    /// Parses a peer spec; `None` when `s` names no peer (an fpack codec, say).
    pub fn parse(s: &str) -> Option<std::result::Result<PeerCodec, String>> {
        let mut parts = s.split(':');
        let head = parts.next()?.trim().to_ascii_lowercase();
        let opts: Vec<&str> = parts.collect();
        let value = |key: &str| -> std::result::Result<Option<f64>, String> {
            let mut found = None;
            for o in &opts {
                match o.split_once('=') {
                    Some((k, v)) if k == key => {
                        found = Some(
                            v.parse::<f64>()
                                .map_err(|_| format!("{s}: {key}={v} is not a number"))?,
                        );
                    }
                    _ => return Err(format!("{s}: unknown option `{o}` (expected {key}=…)")),
                }
            }
            Ok(found)
        };
        match head.as_str() {
            "jxl" | "jpegxl" | "jpeg-xl" => Some(value("e").and_then(|e| {
                let effort = e.unwrap_or(7.0);
                if effort.fract() != 0.0 || !(1.0..=9.0).contains(&effort) {
                    return Err(format!("{s}: JPEG-XL effort must be 1–9"));
                }
                Ok(PeerCodec::Jxl {
                    effort: effort as u32,
                })
            })),
            "jpegls" | "jpeg-ls" | "jls" => Some(value("near").and_then(|n| {
                let near_sigma = n.unwrap_or(0.0);
                if !(near_sigma >= 0.0 && near_sigma.is_finite()) {
                    return Err(format!("{s}: near must be ≥ 0 (in units of σ)"));
                }
                Ok(PeerCodec::JpegLs { near_sigma })
            })),
            _ => None,
        }
    }

    /// NEAR as asked, in stored units, for an image of background σ (physical units) and
    /// scale BSCALE, before JPEG-LS's cap.
    fn near_asked(&self, sigma: f64, bscale: f64) -> f64 {
        match self {
            // NEAR counts stored units; a tiny epsilon keeps 1σ = 3.0 units at NEAR 3.
            PeerCodec::JpegLs { near_sigma } if *near_sigma > 0.0 && sigma > 0.0 => {
                (near_sigma * sigma / bscale.abs() + 1e-9).floor()
            }
            _ => 0.0,
        }
    }

    /// NEAR in stored units: as asked, capped at JPEG-LS's 255.
    fn near(&self, sigma: f64, bscale: f64) -> u32 {
        self.near_asked(sigma, bscale).clamp(0.0, NEAR_MAX as f64) as u32
    }

    /// The row label on an image with this σ and BSCALE (NEAR shown in stored units, and where
    /// the cap bites, what it is in σ).
    pub fn label(&self, sigma: f64, bscale: f64) -> String {
        match self {
            PeerCodec::Jxl { effort } => format!("JPEG-XL e{effort}"),
            PeerCodec::JpegLs { near_sigma } => match self.near(sigma, bscale) {
                0 => "JPEG-LS".to_string(),
                n if self.near_asked(sigma, bscale) > n as f64 => format!(
                    "JPEG-LS near={n} (capped, {:.2}σ)",
                    n as f64 * bscale.abs() / sigma
                ),
                n => format!("JPEG-LS near={n} ({near_sigma}σ)"),
            },
        }
    }

    pub fn is_lossless(&self, sigma: f64, bscale: f64) -> bool {
        self.near(sigma, bscale) == 0
    }
}

/// Versions of the peer libraries found on this machine, or why each is missing.
pub fn peer_versions() -> (
    std::result::Result<String, String>,
    std::result::Result<String, String>,
) {
    (
        jxl().map(|j| j.version.clone()).map_err(Clone::clone),
        charls().map(|c| c.version.clone()).map_err(Clone::clone),
    )
}

fn err(kind: String) -> FitsError {
    FitsError::new(Path::new("(peer)"), ErrorKind::Io(kind))
}

/// Integer samples of `img` as unsigned values (stored − minimum), planes stacked as rows, and
/// the bits they need; an error when the image is float or spans more than 16 bits.
fn samples(img: &ImageHdu) -> std::result::Result<(Vec<u16>, i64, u32), String> {
    let n = img.npix();
    if img.pixels.is_float() {
        return Err("JPEG-XL and JPEG-LS peers code integer images only".into());
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for i in 0..n {
        let v = img.pixels.raw_i64(i).unwrap_or(0);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if n == 0 {
        return Err("empty image".into());
    }
    let span = (hi - lo) as u64;
    if span > u16::MAX as u64 {
        return Err(format!(
            "stored values span {} bits ({lo}…{hi}); the JPEG-XL/JPEG-LS peers take at most 16",
            64 - span.leading_zeros()
        ));
    }
    let bits = (64 - span.leading_zeros()).max(2);
    let v = (0..n)
        .map(|i| (img.pixels.raw_i64(i).unwrap_or(0) - lo) as u16)
        .collect();
    Ok((v, lo, bits))
}

/// The image rebuilt from decoded unsigned samples.
fn rebuild(img: &ImageHdu, s: &[u16], lo: i64) -> ImageHdu {
    let px = match &img.pixels {
        Pixels::U8(_) => Pixels::U8(s.iter().map(|&v| (v as i64 + lo) as u8).collect()),
        Pixels::I16(_) => Pixels::I16(s.iter().map(|&v| (v as i64 + lo) as i16).collect()),
        Pixels::I32(_) => Pixels::I32(s.iter().map(|&v| (v as i64 + lo) as i32).collect()),
        _ => Pixels::I64(s.iter().map(|&v| v as i64 + lo).collect()),
    };
    let mut out = img.clone();
    out.pixels = px;
    out
}

/// Bytes of the FITS header the image needs as an uncompressed single-HDU file (the file's
/// length less its padded data): what a peer's codestream is wrapped in to make a whole file.
pub fn header_bytes(img: &ImageHdu) -> Result<usize> {
    let file = CompressedFile::write(img, None)?;
    let data = (img.npix() * img.pixels.bytes_per_pixel()).div_ceil(2880) * 2880;
    Ok(file.len() - data)
}

/// Runs a peer on `img` (σ in physical units): codestream bytes + FITS header as the file size,
/// speeds the median of up to `repeats` runs (fewer when one run takes long), and the decoded
/// image checked against the original.
pub fn run_peer(
    img: &ImageHdu,
    codec: &PeerCodec,
    sigma: f64,
    repeats: usize,
) -> Result<ClassicResult> {
    run_peer_decoded(img, codec, sigma, repeats).map(|r| r.0)
}

/// [`run_peer`], and the decoded image.
pub fn run_peer_decoded(
    img: &ImageHdu,
    codec: &PeerCodec,
    sigma: f64,
    repeats: usize,
) -> Result<(ClassicResult, ImageHdu)> {
    let (s, lo, bits) = samples(img).map_err(err)?;
    let (nx, ny) = (img.nx(), img.ny() * img.planes());
    let near = codec.near(sigma, img.bscale);
    if near > ((1u32 << bits) - 1) / 2 {
        return Err(err(format!(
            "NEAR {near} exceeds half the {bits}-bit sample range (JPEG-LS's limit)"
        )));
    }
    let header = header_bytes(img)?;
    let lib = match codec {
        PeerCodec::Jxl { effort } => Lib::Jxl(jxl().map_err(|e| err(e.clone()))?, *effort),
        PeerCodec::JpegLs { .. } => Lib::Charls(charls().map_err(|e| err(e.clone()))?),
    };
    let mut enc_t = Vec::new();
    let mut dec_t = Vec::new();
    let mut spent = 0.0;
    let mut last = None;
    // Timing repeats while they are cheap: JPEG-XL at effort 9 runs at ~1 MB/s.
    while enc_t.len() < repeats.max(1) && (enc_t.is_empty() || spent < 3.0) {
        let t = Instant::now();
        let code = match &lib {
            Lib::Jxl(j, effort) => j.encode(&s, nx, ny, *effort),
            Lib::Charls(c) => c.encode(&s, nx, ny, bits, near),
        }
        .map_err(err)?;
        enc_t.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let back = match &lib {
            Lib::Jxl(j, _) => j.decode(&code, nx, ny),
            Lib::Charls(c) => c.decode(&code, nx, ny, bits),
        }
        .map_err(err)?;
        dec_t.push(t.elapsed().as_secs_f64());
        spent += enc_t.last().unwrap() + dec_t.last().unwrap();
        last = Some((code.len(), back));
    }
    let (code_len, back) = last.expect("one run at least");
    // The guarantee each mode makes, checked on the decoded samples.
    let worst = s
        .iter()
        .zip(&back)
        .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs())
        .max()
        .unwrap_or(0);
    if worst > near {
        return Err(err(format!(
            "{} broke its bound: a sample came back {worst} units off (NEAR {near})",
            codec.label(sigma, img.bscale)
        )));
    }
    let decoded = rebuild(img, &back, lo);
    let r = measured(
        img,
        codec.label(sigma, img.bscale),
        code_len + header,
        &decoded,
        sigma,
        (&mut enc_t, &mut dec_t),
    );
    Ok((r, decoded))
}

/// The loaded library a peer runs on (and JPEG-XL's effort).
enum Lib {
    Jxl(&'static Jxl, u32),
    Charls(&'static Charls),
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Opens the first of `names` that loads, or says which were tried.
fn open(names: &[&str], package: &str) -> std::result::Result<Library, String> {
    for n in names {
        // SAFETY: loading a system library runs its initialisers; libjxl and CharLS have none
        // with side effects beyond their own state.
        if let Ok(l) = unsafe { Library::new(n) } {
            return Ok(l);
        }
    }
    Err(format!(
        "{} not found on this machine (tried {}); install it, e.g. `apt-get install {package}`",
        names[0],
        names.join(", ")
    ))
}

/// A C function of `lib` by name, typed as the field it fills.
fn get<T: Copy>(lib: &Library, name: &str) -> std::result::Result<T, String> {
    // SAFETY: each field's type is the C declaration of the library's public header
    // (libjxl 0.7+ `encode.h`/`decode.h`/`thread_parallel_runner.h`, CharLS 2.x `charls.h`).
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("{name}: {e}"))
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {
        get(&$lib, $name)?
    };
}

// ---------------------------------------------------------------------------------------------
// libjxl

/// `JxlBasicInfo` (libjxl ≥ 0.7): 18 scalar fields, preview and animation headers, intrinsic
/// size, and 100 padding bytes reserved for later fields.
#[repr(C)]
struct JxlBasicInfo {
    have_container: c_int,
    xsize: u32,
    ysize: u32,
    bits_per_sample: u32,
    exponent_bits_per_sample: u32,
    intensity_target: f32,
    min_nits: f32,
    relative_to_max_display: c_int,
    linear_below: f32,
    uses_original_profile: c_int,
    have_preview: c_int,
    have_animation: c_int,
    orientation: c_int,
    num_color_channels: u32,
    num_extra_channels: u32,
    alpha_bits: u32,
    alpha_exponent_bits: u32,
    alpha_premultiplied: c_int,
    preview: [u32; 2],
    animation: [u32; 4],
    intrinsic_xsize: u32,
    intrinsic_ysize: u32,
    padding: [u8; 100],
}

/// `JxlPixelFormat`.
#[repr(C)]
struct JxlPixelFormat {
    num_channels: u32,
    data_type: c_int,
    endianness: c_int,
    align: usize,
}

const JXL_TYPE_UINT16: c_int = 3;
const JXL_NATIVE_ENDIAN: c_int = 0;
const JXL_ENC_SUCCESS: c_int = 0;
const JXL_ENC_NEED_MORE_OUTPUT: c_int = 2;
const JXL_ENC_FRAME_SETTING_EFFORT: c_int = 0;
const JXL_DEC_SUCCESS: c_int = 0;
const JXL_DEC_ERROR: c_int = 1;
const JXL_DEC_NEED_MORE_INPUT: c_int = 2;
const JXL_DEC_NEED_IMAGE_OUT_BUFFER: c_int = 5;
const JXL_DEC_BASIC_INFO: c_int = 0x40;
const JXL_DEC_FULL_IMAGE: c_int = 0x1000;

type Runner =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *const c_void, *const c_void, u32, u32) -> i32;

struct Jxl {
    _lib: Library,
    _threads: Library,
    version: String,
    enc_create: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    enc_destroy: unsafe extern "C" fn(*mut c_void),
    enc_runner: unsafe extern "C" fn(*mut c_void, Runner, *mut c_void) -> c_int,
    init_basic: unsafe extern "C" fn(*mut JxlBasicInfo),
    set_basic: unsafe extern "C" fn(*mut c_void, *const JxlBasicInfo) -> c_int,
    gray: unsafe extern "C" fn(*mut c_void, c_int),
    set_color: unsafe extern "C" fn(*mut c_void, *const c_void) -> c_int,
    settings: unsafe extern "C" fn(*mut c_void, *const c_void) -> *mut c_void,
    lossless: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    option: unsafe extern "C" fn(*mut c_void, c_int, i64) -> c_int,
    add_frame:
        unsafe extern "C" fn(*const c_void, *const JxlPixelFormat, *const c_void, usize) -> c_int,
    close_input: unsafe extern "C" fn(*mut c_void),
    process: unsafe extern "C" fn(*mut c_void, *mut *mut u8, *mut usize) -> c_int,
    dec_create: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    dec_destroy: unsafe extern "C" fn(*mut c_void),
    dec_runner: unsafe extern "C" fn(*mut c_void, Runner, *mut c_void) -> c_int,
    subscribe: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    set_input: unsafe extern "C" fn(*mut c_void, *const u8, usize) -> c_int,
    dec_close_input: unsafe extern "C" fn(*mut c_void),
    process_input: unsafe extern "C" fn(*mut c_void) -> c_int,
    basic_info: unsafe extern "C" fn(*const c_void, *mut JxlBasicInfo) -> c_int,
    out_size: unsafe extern "C" fn(*const c_void, *const JxlPixelFormat, *mut usize) -> c_int,
    set_out: unsafe extern "C" fn(*mut c_void, *const JxlPixelFormat, *mut c_void, usize) -> c_int,
    runner_create: unsafe extern "C" fn(*const c_void, usize) -> *mut c_void,
    runner_destroy: unsafe extern "C" fn(*mut c_void),
    runner: Runner,
}

// SAFETY: the struct holds function pointers into loaded libraries that stay loaded for the
// process's life; libjxl's functions are safe to call from any thread on distinct objects.
unsafe impl Send for Jxl {}
unsafe impl Sync for Jxl {}

fn jxl() -> std::result::Result<&'static Jxl, &'static String> {
    static JXL: OnceLock<std::result::Result<Jxl, String>> = OnceLock::new();
    JXL.get_or_init(Jxl::load).as_ref()
}

const GRAY: c_int = 1;

impl Jxl {
    fn load() -> std::result::Result<Jxl, String> {
        let lib = open(&["libjxl.so.0.7", "libjxl.so"], "libjxl0.7 (Debian 12)")?;
        let threads = open(
            &["libjxl_threads.so.0.7", "libjxl_threads.so"],
            "libjxl0.7 (Debian 12)",
        )?;
        let version: unsafe extern "C" fn() -> u32 = sym!(lib, "JxlEncoderVersion");
        // SAFETY: a pure function of the library.
        let v = unsafe { version() };
        Ok(Jxl {
            version: format!("libjxl {}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000),
            enc_create: sym!(lib, "JxlEncoderCreate"),
            enc_destroy: sym!(lib, "JxlEncoderDestroy"),
            enc_runner: sym!(lib, "JxlEncoderSetParallelRunner"),
            init_basic: sym!(lib, "JxlEncoderInitBasicInfo"),
            set_basic: sym!(lib, "JxlEncoderSetBasicInfo"),
            gray: sym!(lib, "JxlColorEncodingSetToLinearSRGB"),
            set_color: sym!(lib, "JxlEncoderSetColorEncoding"),
            settings: sym!(lib, "JxlEncoderFrameSettingsCreate"),
            lossless: sym!(lib, "JxlEncoderSetFrameLossless"),
            option: sym!(lib, "JxlEncoderFrameSettingsSetOption"),
            add_frame: sym!(lib, "JxlEncoderAddImageFrame"),
            close_input: sym!(lib, "JxlEncoderCloseInput"),
            process: sym!(lib, "JxlEncoderProcessOutput"),
            dec_create: sym!(lib, "JxlDecoderCreate"),
            dec_destroy: sym!(lib, "JxlDecoderDestroy"),
            dec_runner: sym!(lib, "JxlDecoderSetParallelRunner"),
            subscribe: sym!(lib, "JxlDecoderSubscribeEvents"),
            set_input: sym!(lib, "JxlDecoderSetInput"),
            dec_close_input: sym!(lib, "JxlDecoderCloseInput"),
            process_input: sym!(lib, "JxlDecoderProcessInput"),
            basic_info: sym!(lib, "JxlDecoderGetBasicInfo"),
            out_size: sym!(lib, "JxlDecoderImageOutBufferSize"),
            set_out: sym!(lib, "JxlDecoderSetImageOutBuffer"),
            runner_create: sym!(threads, "JxlThreadParallelRunnerCreate"),
            runner_destroy: sym!(threads, "JxlThreadParallelRunnerDestroy"),
            runner: sym!(threads, "JxlThreadParallelRunner"),
            _lib: lib,
            _threads: threads,
        })
    }

    fn format() -> JxlPixelFormat {
        JxlPixelFormat {
            num_channels: 1,
            data_type: JXL_TYPE_UINT16,
            endianness: JXL_NATIVE_ENDIAN,
            align: 0,
        }
    }

    /// Lossless modular JPEG-XL codestream of a 16-bit grey image.
    fn encode(
        &self,
        s: &[u16],
        nx: usize,
        ny: usize,
        effort: u32,
    ) -> std::result::Result<Vec<u8>, String> {
        let fail = |what: &str| Err(format!("libjxl encoder: {what} failed"));
        // SAFETY: every pointer passed is live for the call; the encoder, its settings and the
        // runner are destroyed on every path below (the guard), after their last use.
        unsafe {
            let enc = (self.enc_create)(std::ptr::null());
            let runner = (self.runner_create)(std::ptr::null(), threads());
            if enc.is_null() || runner.is_null() {
                return fail("create");
            }
            let _guard = Guard(|| {
                (self.enc_destroy)(enc);
                (self.runner_destroy)(runner);
            });
            if (self.enc_runner)(enc, self.runner, runner) != JXL_ENC_SUCCESS {
                return fail("SetParallelRunner");
            }
            let mut info: JxlBasicInfo = std::mem::zeroed();
            (self.init_basic)(&mut info);
            info.xsize = nx as u32;
            info.ysize = ny as u32;
            info.bits_per_sample = 16;
            info.exponent_bits_per_sample = 0;
            info.num_color_channels = 1;
            info.uses_original_profile = 1;
            if (self.set_basic)(enc, &info) != JXL_ENC_SUCCESS {
                return fail("SetBasicInfo");
            }
            let mut color = [0u64; 64];
            (self.gray)(color.as_mut_ptr() as *mut c_void, GRAY);
            if (self.set_color)(enc, color.as_ptr() as *const c_void) != JXL_ENC_SUCCESS {
                return fail("SetColorEncoding");
            }
            let fs = (self.settings)(enc, std::ptr::null());
            if fs.is_null() || (self.lossless)(fs, 1) != JXL_ENC_SUCCESS {
                return fail("SetFrameLossless");
            }
            if (self.option)(fs, JXL_ENC_FRAME_SETTING_EFFORT, effort as i64) != JXL_ENC_SUCCESS {
                return fail("effort");
            }
            let fmt = Self::format();
            if (self.add_frame)(fs, &fmt, s.as_ptr() as *const c_void, s.len() * 2)
                != JXL_ENC_SUCCESS
            {
                return fail("AddImageFrame");
            }
            (self.close_input)(enc);
            let mut out = vec![0u8; 1 << 16];
            let mut used = 0usize;
            loop {
                let mut next = out.as_mut_ptr().add(used);
                let mut avail = out.len() - used;
                let status = (self.process)(enc, &mut next, &mut avail);
                used = out.len() - avail;
                match status {
                    JXL_ENC_SUCCESS => break,
                    JXL_ENC_NEED_MORE_OUTPUT => out.resize(out.len() * 2, 0),
                    _ => return fail("ProcessOutput"),
                }
            }
            out.truncate(used);
            Ok(out)
        }
    }

    fn decode(&self, code: &[u8], nx: usize, ny: usize) -> std::result::Result<Vec<u16>, String> {
        let fail = |what: &str| Err(format!("libjxl decoder: {what}"));
        let mut out = vec![0u16; nx * ny];
        // SAFETY: as in `encode`; the output buffer outlives the decoder.
        unsafe {
            let dec = (self.dec_create)(std::ptr::null());
            let runner = (self.runner_create)(std::ptr::null(), threads());
            if dec.is_null() || runner.is_null() {
                return fail("create failed");
            }
            let _guard = Guard(|| {
                (self.dec_destroy)(dec);
                (self.runner_destroy)(runner);
            });
            if (self.dec_runner)(dec, self.runner, runner) != JXL_DEC_SUCCESS
                || (self.subscribe)(dec, JXL_DEC_BASIC_INFO | JXL_DEC_FULL_IMAGE) != JXL_DEC_SUCCESS
                || (self.set_input)(dec, code.as_ptr(), code.len()) != JXL_DEC_SUCCESS
            {
                return fail("set-up failed");
            }
            (self.dec_close_input)(dec);
            let fmt = Self::format();
            loop {
                match (self.process_input)(dec) {
                    JXL_DEC_BASIC_INFO => {
                        let mut info: JxlBasicInfo = std::mem::zeroed();
                        if (self.basic_info)(dec, &mut info) != JXL_DEC_SUCCESS
                            || info.xsize as usize != nx
                            || info.ysize as usize != ny
                        {
                            return fail("wrong image size in the codestream");
                        }
                    }
                    JXL_DEC_NEED_IMAGE_OUT_BUFFER => {
                        let mut size = 0usize;
                        if (self.out_size)(dec, &fmt, &mut size) != JXL_DEC_SUCCESS
                            || size != out.len() * 2
                            || (self.set_out)(dec, &fmt, out.as_mut_ptr() as *mut c_void, size)
                                != JXL_DEC_SUCCESS
                        {
                            return fail("output buffer refused");
                        }
                    }
                    JXL_DEC_FULL_IMAGE => {}
                    JXL_DEC_SUCCESS => break,
                    JXL_DEC_NEED_MORE_INPUT => return fail("codestream truncated"),
                    JXL_DEC_ERROR => return fail("decoding failed"),
                    other => return fail(&format!("unexpected status {other:#x}")),
                }
            }
        }
        Ok(out)
    }
}

/// Runs its closure when dropped (the C objects' destructors on every return path).
struct Guard<F: FnMut()>(F);

impl<F: FnMut()> Drop for Guard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

// ---------------------------------------------------------------------------------------------
// CharLS

/// `charls_frame_info`.
#[repr(C)]
struct FrameInfo {
    width: u32,
    height: u32,
    bits_per_sample: i32,
    component_count: i32,
}

struct Charls {
    _lib: Library,
    version: String,
    enc_create: unsafe extern "C" fn() -> *mut c_void,
    enc_destroy: unsafe extern "C" fn(*mut c_void),
    frame_info: unsafe extern "C" fn(*mut c_void, *const FrameInfo) -> i32,
    near: unsafe extern "C" fn(*mut c_void, i32) -> i32,
    estimate: unsafe extern "C" fn(*const c_void, *mut usize) -> i32,
    destination: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> i32,
    encode: unsafe extern "C" fn(*mut c_void, *const c_void, usize, u32) -> i32,
    written: unsafe extern "C" fn(*const c_void, *mut usize) -> i32,
    dec_create: unsafe extern "C" fn() -> *mut c_void,
    dec_destroy: unsafe extern "C" fn(*mut c_void),
    source: unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> i32,
    read_header: unsafe extern "C" fn(*mut c_void) -> i32,
    dest_size: unsafe extern "C" fn(*const c_void, u32, *mut usize) -> i32,
    decode: unsafe extern "C" fn(*mut c_void, *mut c_void, usize, u32) -> i32,
    message: unsafe extern "C" fn(i32) -> *const c_char,
}

// SAFETY: as for `Jxl`.
unsafe impl Send for Charls {}
unsafe impl Sync for Charls {}

fn charls() -> std::result::Result<&'static Charls, &'static String> {
    static CHARLS: OnceLock<std::result::Result<Charls, String>> = OnceLock::new();
    CHARLS.get_or_init(Charls::load).as_ref()
}

impl Charls {
    fn load() -> std::result::Result<Charls, String> {
        let lib = open(&["libcharls.so.2", "libcharls.so"], "libcharls2")?;
        let version: unsafe extern "C" fn() -> *const c_char =
            sym!(lib, "charls_get_version_string");
        // SAFETY: returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(version()) }
            .to_string_lossy()
            .into_owned();
        Ok(Charls {
            version: format!("CharLS {v}"),
            enc_create: sym!(lib, "charls_jpegls_encoder_create"),
            enc_destroy: sym!(lib, "charls_jpegls_encoder_destroy"),
            frame_info: sym!(lib, "charls_jpegls_encoder_set_frame_info"),
            near: sym!(lib, "charls_jpegls_encoder_set_near_lossless"),
            estimate: sym!(lib, "charls_jpegls_encoder_get_estimated_destination_size"),
            destination: sym!(lib, "charls_jpegls_encoder_set_destination_buffer"),
            encode: sym!(lib, "charls_jpegls_encoder_encode_from_buffer"),
            written: sym!(lib, "charls_jpegls_encoder_get_bytes_written"),
            dec_create: sym!(lib, "charls_jpegls_decoder_create"),
            dec_destroy: sym!(lib, "charls_jpegls_decoder_destroy"),
            source: sym!(lib, "charls_jpegls_decoder_set_source_buffer"),
            read_header: sym!(lib, "charls_jpegls_decoder_read_header"),
            dest_size: sym!(lib, "charls_jpegls_decoder_get_destination_size"),
            decode: sym!(lib, "charls_jpegls_decoder_decode_to_buffer"),
            message: sym!(lib, "charls_get_error_message"),
            _lib: lib,
        })
    }

    fn check(&self, what: &str, e: i32) -> std::result::Result<(), String> {
        if e == 0 {
            return Ok(());
        }
        // SAFETY: returns a static NUL-terminated string for any code.
        let m = unsafe { CStr::from_ptr((self.message)(e)) }.to_string_lossy();
        Err(format!("CharLS {what}: {m} (error {e})"))
    }

    /// JPEG-LS codestream (8-bit samples when `bits` ≤ 8, else 16-bit).
    fn encode(
        &self,
        s: &[u16],
        nx: usize,
        ny: usize,
        bits: u32,
        near: u32,
    ) -> std::result::Result<Vec<u8>, String> {
        let narrow: Vec<u8>;
        let (src, len) = if bits <= 8 {
            narrow = s.iter().map(|&v| v as u8).collect();
            (narrow.as_ptr() as *const c_void, narrow.len())
        } else {
            (s.as_ptr() as *const c_void, s.len() * 2)
        };
        let info = FrameInfo {
            width: nx as u32,
            height: ny as u32,
            bits_per_sample: bits as i32,
            component_count: 1,
        };
        // SAFETY: pointers live for each call; the encoder is destroyed by the guard.
        unsafe {
            let enc = (self.enc_create)();
            if enc.is_null() {
                return Err("CharLS encoder: create failed".into());
            }
            let _guard = Guard(|| (self.enc_destroy)(enc));
            self.check("frame info", (self.frame_info)(enc, &info))?;
            self.check("near", (self.near)(enc, near as i32))?;
            let mut cap = 0usize;
            self.check("estimate", (self.estimate)(enc, &mut cap))?;
            let mut out = vec![0u8; cap];
            self.check(
                "destination",
                (self.destination)(enc, out.as_mut_ptr() as *mut c_void, cap),
            )?;
            self.check("encode", (self.encode)(enc, src, len, 0))?;
            let mut n = 0usize;
            self.check("bytes written", (self.written)(enc, &mut n))?;
            out.truncate(n);
            Ok(out)
        }
    }

    fn decode(
        &self,
        code: &[u8],
        nx: usize,
        ny: usize,
        bits: u32,
    ) -> std::result::Result<Vec<u16>, String> {
        let bytes = if bits <= 8 { 1 } else { 2 };
        let mut out = vec![0u8; nx * ny * bytes];
        // SAFETY: as in `encode`.
        unsafe {
            let dec = (self.dec_create)();
            if dec.is_null() {
                return Err("CharLS decoder: create failed".into());
            }
            let _guard = Guard(|| (self.dec_destroy)(dec));
            self.check(
                "source",
                (self.source)(dec, code.as_ptr() as *const c_void, code.len()),
            )?;
            self.check("header", (self.read_header)(dec))?;
            let mut size = 0usize;
            self.check("size", (self.dest_size)(dec, 0, &mut size))?;
            if size != out.len() {
                return Err(format!(
                    "CharLS decoder: {size} bytes of image where {} were coded",
                    out.len()
                ));
            }
            self.check(
                "decode",
                (self.decode)(dec, out.as_mut_ptr() as *mut c_void, size, 0),
            )?;
        }
        Ok(if bytes == 1 {
            out.into_iter().map(u16::from).collect()
        } else {
            out.chunks_exact(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;

    #[test]
    fn specs_parse() {
        assert_eq!(
            PeerCodec::parse("jxl:e=9"),
            Some(Ok(PeerCodec::Jxl { effort: 9 }))
        );
        assert_eq!(
            PeerCodec::parse("jxl"),
            Some(Ok(PeerCodec::Jxl { effort: 7 }))
        );
        assert_eq!(
            PeerCodec::parse("jpegls:near=1"),
            Some(Ok(PeerCodec::JpegLs { near_sigma: 1.0 }))
        );
        assert!(matches!(PeerCodec::parse("jxl:e=12"), Some(Err(_))));
        assert!(matches!(PeerCodec::parse("jpegls:q=1"), Some(Err(_))));
        assert_eq!(PeerCodec::parse("rice"), None);
        let c = PeerCodec::JpegLs { near_sigma: 1.0 };
        assert_eq!(c.label(3.0, 1.0), "JPEG-LS near=3 (1σ)");
        assert_eq!(c.label(0.5, 1.0), "JPEG-LS");
        assert_eq!(c.label(408.6, 1.0), "JPEG-LS near=255 (capped, 0.62σ)");
    }

    #[test]
    fn wide_and_float_images_are_refused_with_a_reason() {
        let img = ImageHdu::new(
            vec![4, 1],
            Pixels::I32(vec![0, 1, 70000, 3]),
            Header::default(),
        );
        assert!(samples(&img).unwrap_err().contains("17 bits"));
        let img = ImageHdu::new(vec![2, 1], Pixels::F32(vec![0.0, 1.0]), Header::default());
        assert!(samples(&img).unwrap_err().contains("integer"));
    }

    /// Round trips where the libraries are installed (CI installs them; see tests/peers.rs).
    #[test]
    fn peers_round_trip_when_installed() {
        let data: Vec<i16> = (0..96 * 40)
            .map(|i| ((i * 37) % 501) as i16 - 250)
            .collect();
        let img = ImageHdu::new(vec![96, 40], Pixels::I16(data), Header::default());
        for spec in ["jxl:e=3", "jpegls", "jpegls:near=2"] {
            let c = PeerCodec::parse(spec).unwrap().unwrap();
            match run_peer(&img, &c, 1.0, 1) {
                Ok(r) => {
                    assert_eq!(r.exact, spec != "jpegls:near=2", "{spec}");
                    assert!(r.max_err_sigma <= 2.0, "{spec}");
                }
                Err(e) if e.to_string().contains("not found") => {
                    eprintln!("skipped {spec}: {e}")
                }
                Err(e) => panic!("{spec}: {e}"),
            }
        }
    }
}
