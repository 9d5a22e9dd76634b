//! What a coded HDU's header says: the tiled-image keywords, the codec's ZNAME/ZVAL
//! parameters and skyzip's own (format version, model, error bound, quantisation), checked.

use crate::codec::FORMAT_VERSION;
use crate::container::{self, CMPTYPE};
use crate::floats::Quantiser;
use crate::CodecError;
use skyzip_fits::{list_hdus, read_header, Card, Header};
use std::path::Path;

fn key_f64(h: &Header, k: &str, path: &Path) -> Result<f64, CodecError> {
    h.get(k)
        .and_then(|c| c.raw_value())
        .and_then(|v| v.trim().replace('D', "E").parse::<f64>().ok())
        .ok_or_else(|| CodecError::file(path, format!("missing or bad keyword {k}")))
}

fn key_i64(h: &Header, k: &str, path: &Path) -> Result<i64, CodecError> {
    h.get(k)
        .and_then(|c| c.raw_value())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| CodecError::file(path, format!("missing or bad keyword {k}")))
}

/// The value of the ZNAMEi/ZVALi pair named `name` in a compressed HDU's header (quotes and
/// blanks stripped), as the tiled-image convention records the codec's parameters.
pub fn zval(h: &Header, name: &str) -> Option<String> {
    (1..=99).find_map(|i| {
        (h.string(&format!("ZNAME{i}"))?.trim() == name)
            .then(|| {
                h.get(&format!("ZVAL{i}"))
                    .and_then(|c| c.raw_value())
                    .map(|v| v.trim().trim_matches('\'').trim().to_string())
            })
            .flatten()
    })
}

/// True for the header of a table holding skyzip tiles.
pub fn is_coded(h: &Header) -> bool {
    h.string("ZCMPTYPE").is_some_and(|z| z.trim() == CMPTYPE)
}

/// The indices of a file's HDUs that hold skyzip tiles (empty for any other FITS file).
pub fn coded_hdus(path: &Path) -> Result<Vec<usize>, CodecError> {
    let mut out = Vec::new();
    for info in list_hdus(path)? {
        if info.kind == "binary table" && is_coded(&read_header(path, info.index)?) {
            out.push(info.index);
        }
    }
    Ok(out)
}

/// What a coded HDU's header says about its image and how it was coded.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedHdu {
    pub hdu: usize,
    pub bitpix: i32,
    pub axes: Vec<usize>,
    pub tile: usize,
    pub model_name: String,
    pub model_hash: String,
    pub mode: String,
    /// Max error in σ (0 for lossless), q, the normalisation, η.
    pub max_error: f64,
    pub q: f64,
    pub norm: String,
    pub eta: Option<usize>,
    /// Max |error| in coded integer units, σ, and the float quantisation (zero, δ, seed).
    pub error_int: i64,
    pub sigma: f64,
    pub quant: Option<Quantiser>,
    /// The RMSE mode (format 6): the quantiser step in coded units (SZSTEP; 1 where the mode
    /// fell back to lossless), the RMSE target (ZVAL RMSE) and the decoded RMSE the encoder
    /// measured (SZRMSE), both in σ. None, 0, 0 in the other modes.
    pub step: Option<i64>,
    pub rmse_target: f64,
    pub rmse: f64,
    /// The image was the file's primary HDU.
    pub primary: bool,
}

impl CodedHdu {
    /// Reads and checks the keywords of a coded HDU's table header.
    pub fn parse(h: &Header, hdu: usize, path: &Path) -> Result<CodedHdu, CodecError> {
        match h.get("SZFORMAT").and_then(|c| c.raw_value()) {
            Some(v)
                if crate::codec::READ_VERSIONS
                    .iter()
                    .any(|r| v.trim() == r.to_string()) => {}
            v => {
                let v = v.map_or("none".to_string(), |v| v.trim().to_string());
                return Err(CodecError::file(
                    path,
                    format!(
                        "HDU {hdu}: skyzip format version {v} (SZFORMAT); this build reads \
                         versions 3 to {FORMAT_VERSION}. Files without SZFORMAT come from a \
                         pre-release skyzip whose float prediction no release shipped: \
                         compress the original again"
                    ),
                ));
            }
        }
        let bitpix = key_i64(h, "ZBITPIX", path)? as i32;
        if !matches!(bitpix, 8 | 16 | 32 | 64 | -32 | -64) {
            return Err(CodecError::file(path, format!("ZBITPIX = {bitpix}")));
        }
        let naxis = key_i64(h, "ZNAXIS", path)? as usize;
        if !(1..=3).contains(&naxis) {
            return Err(CodecError::file(path, format!("ZNAXIS = {naxis}")));
        }
        let mut axes = Vec::new();
        for k in 1..=naxis {
            let a = key_i64(h, &format!("ZNAXIS{k}"), path)?;
            if !(1..=1 << 24).contains(&a) {
                return Err(CodecError::file(path, format!("ZNAXIS{k} = {a}")));
            }
            axes.push(a as usize);
        }
        let nx = axes[0];
        let ny = axes.get(1).copied().unwrap_or(1);
        let t1 = key_i64(h, "ZTILE1", path)?.max(0) as usize;
        let t2 = key_i64(h, "ZTILE2", path)?.max(0) as usize;
        let tile = if t1 < nx {
            t1
        } else if t2 < ny {
            t2
        } else {
            nx.max(ny)
        };
        if tile == 0 || t1 != tile.min(nx) || t2 != tile.min(ny) {
            return Err(CodecError::file(
                path,
                format!("ZTILE1/2 = {t1}/{t2} do not describe square tiles of a {nx}×{ny} image"),
            ));
        }
        let error_int = key_i64(h, "SZERRINT", path)?;
        if error_int < 0 {
            return Err(CodecError::file(path, format!("SZERRINT = {error_int}")));
        }
        let quant = if bitpix < 0 && h.get("SZDELTA").is_some() {
            let q = Quantiser {
                zero: key_f64(h, "SZZERO", path)?,
                delta: key_f64(h, "SZDELTA", path)?,
                seed: key_i64(h, "SZDSEED", path)? as u64,
            };
            if !(q.delta > 0.0 && q.delta.is_finite() && q.zero.is_finite()) {
                return Err(CodecError::file(
                    path,
                    format!("SZZERO/SZDELTA = {}/{}", q.zero, q.delta),
                ));
            }
            Some(q)
        } else {
            None
        };
        let num = |name: &str| zval(h, name).and_then(|v| v.parse::<f64>().ok());
        let mode = zval(h, "MODE").unwrap_or_default();
        let step = match mode.as_str() {
            "rmse" => {
                let s = key_i64(h, "SZSTEP", path)?;
                if !(1..=1 << 24).contains(&s) || error_int != 0 {
                    return Err(CodecError::file(
                        path,
                        format!("SZSTEP = {s} with SZERRINT = {error_int}"),
                    ));
                }
                Some(s)
            }
            _ => None,
        };
        Ok(CodedHdu {
            hdu,
            bitpix,
            axes,
            tile,
            model_name: h
                .string("SZMODEL")
                .map(|m| m.trim().to_string())
                .unwrap_or_else(|| "default".into()),
            model_hash: zval(h, "MODEL")
                .ok_or_else(|| CodecError::file(path, "no model hash (ZNAME MODEL)"))?,
            mode,
            max_error: num("MAXERR").unwrap_or(0.0),
            q: num("Q").unwrap_or(0.0),
            norm: zval(h, "NORM").unwrap_or_default(),
            eta: match zval(h, "ETA") {
                None => None,
                Some(v) => Some(
                    v.parse::<usize>()
                        .map_err(|_| CodecError::file(path, format!("ETA = {v}")))?,
                ),
            },
            error_int,
            sigma: h.f64("SZSIGMA").unwrap_or(f64::NAN),
            quant,
            step,
            rmse_target: num("RMSE").unwrap_or(0.0),
            rmse: h.f64("SZRMSE").unwrap_or(0.0),
            primary: container::was_primary(h),
        })
    }

    pub fn npix(&self) -> usize {
        self.axes.iter().product()
    }

    /// HISTORY cards for a decoded image that is not bit-exact (empty when it is).
    pub(crate) fn history(&self, quantised_tiles: usize, bscale: f64) -> Vec<Card> {
        let lossy = match self.bitpix {
            b if b > 0 => self.error_int > 0 || self.step.is_some_and(|s| s > 1),
            _ => quantised_tiles > 0,
        };
        if !lossy {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "skyzip: decoded from {CMPTYPE} tiles; not bit-exact (lossy mode)"
        )];
        let unit = match self.quant {
            Some(q) => q.delta,
            None => bscale.abs(),
        };
        let (e_data, how) = match self.quant {
            Some(_) => (
                (self.error_int as f64 + 0.5) * unit,
                format!("{} quantisation steps + half a step", self.error_int),
            ),
            None => (
                self.error_int as f64 * unit,
                format!("{} stored integers", self.error_int),
            ),
        };
        match self.step {
            Some(step) => {
                lines.push(format!(
                    "  mode rmse: RMSE {:.4} sigma (target {} sigma, --rmse); no per-pixel",
                    self.rmse, self.rmse_target
                ));
                lines.push(format!(
                    "  bound; quantiser step {step} {}; background sigma {:.6e} data units",
                    if self.quant.is_some() {
                        "quantisation steps"
                    } else {
                        "stored integers"
                    },
                    self.sigma
                ));
            }
            None => {
                lines.push(format!(
                    "  mode {}: max |error| {:.4} sigma = {e_data:.6e} data units",
                    self.mode,
                    e_data / self.sigma
                ));
                lines.push(format!(
                    "  ({how}); background sigma {:.6e} data units",
                    self.sigma
                ));
            }
        }
        if self.mode == "max-error" {
            lines.push(format!(
                "  requested max error {} sigma (--max-error)",
                self.max_error
            ));
        }
        if let Some(q) = self.quant {
            lines.push(format!(
                "  floats quantised as fpack does: q = {}, step {:.6e} data units,",
                self.q, q.delta
            ));
            lines.push(format!(
                "  subtractive dither seed {}; zero-noise tiles coded bit-exactly",
                q.seed
            ));
        }
        lines.push(format!(
            "  model {} (hash {}), normalisation {}",
            self.model_name, self.model_hash, self.norm
        ));
        lines
            .into_iter()
            .map(|l| Card::new(&format!("HISTORY {l}")))
            .collect()
    }
}
