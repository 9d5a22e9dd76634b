//! The learned part of the codec: a `meanvar` conv autoencoder, run by the integer
//! [`crate::engine`], whose quantised latent is sent and whose decoders give, for every pixel,
//! a prediction μ and a spread σ.
//!
//! A codec model is one safetensors file ([`MODEL_FORMAT`]): the integer net's tensors, the
//! learned prior's integer frequency tables (rate-trained models), and one metadata entry with
//! everything else (normalisation, ε, whether it is tunable, provenance). It holds integers and
//! exactly specified parameters only: no framework, no float weights. Its hash (in every file it
//! writes) is over the file's bytes, which are a function of its content alone.
//!
//! Bundled models are never changed in place: a new model gets a new name (`default-2`, …), and
//! the aliases `default` and `rate` move to it; files name the model they were written with, so
//! older ones stay decodable.

use crate::engine::{self, IntNet, Map, Meta, Path as EnginePath, Tensors};
use crate::entropy::IntTable;
use crate::CodecError;
use sha2::{Digest, Sha256};
use skyzip_data::{Norm, NormKind};
use std::path::Path;

/// The codec model file format.
pub const MODEL_FORMAT: &str = "skyzip-codec-model/1";

/// The codec models bundled in the binary: name, file. Never change one in place.
/// `default-1`: `configs/codec-default.json`; `rate-1`: `configs/codec-rate.json` (trained for
/// code length, with a learned factorized prior whose tables code the latent); both quantised
/// by `tools/bundle-models.sh`.
/// `fast-1`: `configs/codec-fast.json`, the default's net with `shuffle` (a third of the
/// multiply-adds: decodes about 1.45× faster, at −14 % to +17 % of the default's bytes).
/// `default-2`: `configs/codec-default-2.json`, the default net at width 8 (fewer
/// full-resolution multiply-adds; −0.5 % to +0.5 % of default-1's bytes on the real images).
const BUNDLED: [(&str, &[u8]); 4] = [
    (
        "default-1",
        include_bytes!("../models/default-1.safetensors"),
    ),
    ("rate-1", include_bytes!("../models/rate-1.safetensors")),
    ("fast-1", include_bytes!("../models/fast-1.safetensors")),
    (
        "default-2",
        include_bytes!("../models/default-2.safetensors"),
    ),
];

/// Names that stand for the newest bundled model of their kind.
const ALIASES: [(&str, &str); 3] = [
    ("default", "default-2"),
    ("rate", "rate-1"),
    ("fast", "fast-1"),
];

/// The names of the bundled models (each alias's current model).
pub fn bundled() -> impl Iterator<Item = &'static str> {
    ALIASES.iter().map(|a| a.1)
}

/// Every bundled model, old ones included.
pub fn bundled_all() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|b| b.0)
}

/// The bundled model an alias or name stands for.
pub fn resolve(spec: &str) -> Option<&'static str> {
    ALIASES
        .iter()
        .find(|a| a.0 == spec)
        .map(|a| a.1)
        .or_else(|| BUNDLED.iter().find(|b| b.0 == spec).map(|b| b.0))
}

/// What a codec model file says beside its net.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub normalisation: NormKind,
    /// σ² = softplus(v) + ε.
    pub eps: f64,
    /// Trained with a prefix mask η over its latent channels.
    pub tunable: bool,
    /// Where it came from (run, checkpoint, calibration).
    pub about: String,
}

/// A loaded codec model.
pub struct Predictor {
    net: IntNet,
    info: ModelInfo,
    /// 16 hex digits of sha256 of the model file: written in every file, checked on decode.
    pub hash: String,
    /// What the files say the model is (a bundled name or the model file's name).
    pub name: String,
    /// The learned prior's tables, one per latent channel (rate-trained models).
    prior: Option<Vec<IntTable>>,
    /// Per value of the variance decoder's i16 output: σ in normalised units.
    sd: Vec<f64>,
    /// Per value of the μ decoder's i16 output y: sinh y and cosh y (asinh models).
    sinh: Vec<f64>,
    cosh: Vec<f64>,
}

/// The index of an i16 in a table of all 65536.
#[inline]
fn at(q: i16) -> usize {
    (q as i32 + 32768) as usize
}

/// 16 hex digits of sha256 of `bytes`.
fn hash_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A codec model file: the net, its description and (rate models) its prior's tables.
pub fn model_file(net: &IntNet, info: &ModelInfo, prior: Option<&[IntTable]>) -> Vec<u8> {
    let (mut meta, mut tensors): (Meta, Tensors) = net.to_parts();
    meta.insert("skyzip.model".into(), MODEL_FORMAT.into());
    meta.insert(
        "normalisation".into(),
        serde_json::to_string(&info.normalisation).expect("a plain enum"),
    );
    meta.insert("eps".into(), format!("{:e}", info.eps));
    meta.insert("tunable".into(), info.tunable.to_string());
    meta.insert("about".into(), info.about.clone());
    if let Some(tables) = prior {
        meta.insert("prior.channels".into(), tables.len().to_string());
        for (c, t) in tables.iter().enumerate() {
            meta.insert(format!("prior.{c}.lo"), t.lo().to_string());
            let f = t.frequencies();
            tensors.push((
                format!("prior.{c}.freq"),
                safetensors::Dtype::I32,
                vec![f.len()],
                f.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
            ));
        }
    }
    engine::write_safetensors(&meta, &tensors)
}

impl Predictor {
    /// The integer net (for tools that time or inspect its layers).
    pub fn net(&self) -> &IntNet {
        &self.net
    }

    /// A bundled model (by name or alias: `default`, `rate`, `default-1`, …) or a model file
    /// written by `skyzip export --part codec`.
    pub fn load(spec: &str) -> Result<Predictor, CodecError> {
        if let Some(name) = resolve(spec) {
            let bytes = BUNDLED
                .iter()
                .find(|b| b.0 == name)
                .map(|b| b.1)
                .expect("resolve names bundled models");
            return Predictor::from_bytes(name, bytes);
        }
        let p = Path::new(spec);
        if !p.is_file() {
            let names: Vec<&str> = ALIASES.iter().map(|a| a.0).chain(bundled_all()).collect();
            return Err(CodecError::Model {
                model: spec.to_string(),
                why: format!(
                    "no such model: give a bundled one ({}), `auto` (compress tries every \
                     bundled model), or a model file (F.safetensors) from `skyzip export --part codec`",
                    names.join(", ")
                ),
            });
        }
        let bytes = std::fs::read(p).map_err(|e| CodecError::Model {
            model: spec.to_string(),
            why: e.to_string(),
        })?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Predictor::from_bytes(&name, &bytes).map_err(|e| match e {
            CodecError::Model { why, .. } => CodecError::Model {
                model: spec.to_string(),
                why,
            },
            e => e,
        })
    }

    /// A model from the bytes of its file, called `name` in the files it writes.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Predictor, CodecError> {
        let bad = |why: String| CodecError::Model {
            model: name.to_string(),
            why,
        };
        let (meta, st) = engine::read_safetensors(bytes).map_err(|e| match e {
            CodecError::Model { why, .. } => bad(format!(
                "{why}; a codec model is written by `skyzip export --part codec`"
            )),
            e => e,
        })?;
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| bad(format!("no metadata entry {k}")))
        };
        let format = get("skyzip.model")?;
        if format != MODEL_FORMAT {
            return Err(bad(format!(
                "model format '{format}' (this build reads {MODEL_FORMAT})"
            )));
        }
        let net = IntNet::from_parts(&meta, &st).map_err(|e| match e {
            CodecError::Model { why, .. } => bad(why),
            e => e,
        })?;
        let normalisation: NormKind = serde_json::from_str(get("normalisation")?)
            .map_err(|e| bad(format!("normalisation: {e}")))?;
        let eps: f64 = get("eps")?
            .parse()
            .map_err(|_| bad("eps is not a number".into()))?;
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(bad(format!("eps = {eps}")));
        }
        let tunable = get("tunable")? == "true";
        let info = ModelInfo {
            normalisation,
            eps,
            tunable,
            about: meta.get("about").cloned().unwrap_or_default(),
        };
        check_geometry(&net).map_err(bad)?;
        let prior = match meta.get("prior.channels") {
            None => None,
            Some(c) => {
                let c: usize = c
                    .parse()
                    .map_err(|_| bad(format!("prior.channels = {c}")))?;
                if c != net.latent_channels() {
                    return Err(bad(format!(
                        "a prior of {c} channels for a latent of {}",
                        net.latent_channels()
                    )));
                }
                let mut tables = Vec::with_capacity(c);
                for ch in 0..c {
                    let lo: i64 = get(&format!("prior.{ch}.lo"))?
                        .parse()
                        .map_err(|_| bad(format!("prior.{ch}.lo")))?;
                    let b = engine::tensor_bytes(
                        &st,
                        &format!("prior.{ch}.freq"),
                        safetensors::Dtype::I32,
                        None,
                    )
                    .map_err(bad)?;
                    let f: Vec<u32> = engine::le_i32s(b).into_iter().map(|v| v as u32).collect();
                    tables.push(
                        IntTable::from_frequencies(lo, f)
                            .map_err(|e| bad(format!("prior.{ch}: {e}")))?,
                    );
                }
                Some(tables)
            }
        };
        // σ and the asinh inverse are functions of one i16 each: computed once per model, on
        // every core (each entry alone, so the tables do not depend on the thread count).
        use rayon::prelude::*;
        let all = || {
            (0..1usize << 16)
                .into_par_iter()
                .map(|i| i as f64 - 32768.0)
        };
        let (vs, ms) = (
            crate::detmath::pow2i(-net.var_frac() as i64),
            crate::detmath::pow2i(-net.mu_frac() as i64),
        );
        let sd = all()
            .map(|v| {
                ((crate::detmath::softplus(v * vs) + eps) as f32 as f64)
                    .max(0.0)
                    .sqrt()
            })
            .collect();
        let asinh = matches!(normalisation, NormKind::Asinh { .. });
        let (sinh, cosh) = if asinh {
            all().map(|y| crate::detmath::sinh_cosh(y * ms)).unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Predictor {
            net,
            info,
            hash: hash_of(bytes),
            name: name.to_string(),
            prior,
            sd,
            sinh,
            cosh,
        })
    }

    /// The model's description.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The tile sides must be multiples of this.
    pub fn divisor(&self) -> usize {
        self.net.divisor()
    }

    /// Whether the model was trained with a prefix mask η over its latent channels.
    pub fn tunable(&self) -> bool {
        self.info.tunable
    }

    /// The integer tables of the model's learned prior, if it has one.
    pub fn prior(&self) -> Option<&[IntTable]> {
        self.prior.as_deref()
    }

    pub fn latent_channels(&self) -> usize {
        self.net.latent_channels()
    }

    /// The normalisation the model was trained with (fitted to each tile).
    pub fn norm_kind(&self) -> NormKind {
        self.info.normalisation
    }

    /// A pixel's prediction and spread in data units from the decoders' integer outputs
    /// (μ · 2^f and v · 2^f', as [`Predictor::decode`] gives them): f⁻¹(μ) and
    /// |d f⁻¹/dy|(μ) · √(softplus(v) + ε), in [`crate::detmath`]'s operations.
    #[inline]
    pub fn mean_and_sigma(&self, n: &Norm, qmu: i16, qv: i16) -> (f64, f64) {
        let sd = self.sd[at(qv)];
        match *n {
            Norm::Asinh { background, scale } if !self.sinh.is_empty() => (
                self.sinh[at(qmu)] * scale + background,
                (self.cosh[at(qmu)] * scale).abs() * sd,
            ),
            _ => {
                let y = qmu as f64 * crate::detmath::pow2i(-self.net.mu_frac() as i64);
                (
                    crate::detmath::norm::inverse(n, y),
                    crate::detmath::norm::inverse_sigma(n, y, sd),
                )
            }
        }
    }

    /// Fits the normalisation to a tile (NaN = blank).
    pub fn fit(&self, tile: &[f32]) -> Norm {
        self.info.normalisation.fit(tile)
    }

    /// [`Predictor::fit`] of a tile of integers (`blank`: no data), the same parameters.
    pub fn fit_int(&self, v: &[i64], blank: &[bool]) -> Norm {
        self.info.normalisation.fit_int(v, blank)
    }

    /// The latent of a padded, normalised `w`×`h` tile, rounded to integers: ([C, h', w'] values).
    pub fn encode(&self, tile: &[f32], w: usize, h: usize) -> (Vec<i64>, [usize; 3]) {
        self.encode_quantised(self.net.quantise_input(tile, h, w).data, w, h)
    }

    /// [`Predictor::encode`] of a tile already at the encoder's input scale
    /// ([`IntNet::quantise_value`] of each value).
    pub fn encode_quantised(&self, tile: Vec<i16>, w: usize, h: usize) -> (Vec<i64>, [usize; 3]) {
        let x = Map {
            c: 1,
            h,
            w,
            data: tile,
        };
        let z = self.net.encode(x, EnginePath::Fast);
        (z.data, [z.c, z.h, z.w])
    }

    /// The decoders' integer outputs for every pixel from a quantised latent: μ and the
    /// variance decoder's v, each as its i16 (see [`Predictor::mean_and_sigma`]).
    pub fn decode(&self, latent: &[i64], shape: [usize; 3]) -> (Vec<i16>, Vec<i16>) {
        let [c, h, w] = shape;
        let z = Map {
            c,
            h,
            w,
            data: latent.to_vec(),
        };
        self.net.decode_q(&z, EnginePath::Fast)
    }
}

/// A codec net: one input channel into the encoder, one output channel out of each decoder,
/// the latent's channels into both decoders.
fn check_geometry(net: &IntNet) -> Result<(), String> {
    let (Some(e0), Some(el)) = (net.encoder.first(), net.encoder.last()) else {
        return Err("an empty encoder".into());
    };
    let block = if net.shuffle { 4 } else { 1 };
    if e0.cin != block {
        return Err(format!(
            "the encoder takes {} channels ({block} expected)",
            e0.cin
        ));
    }
    for (part, d) in [("decoder", &net.decoder), ("var_decoder", &net.var_decoder)] {
        let (Some(d0), Some(dl)) = (d.first(), d.last()) else {
            return Err(format!("an empty {part}"));
        };
        if d0.cin != el.cout || dl.cout != block {
            return Err(format!(
                "the {part} maps {} → {} channels (latent {} → {block} expected)",
                d0.cin, dl.cout, el.cout
            ));
        }
        for l in d.windows(2).chain(net.encoder.windows(2)) {
            if l[0].cout != l[1].cin {
                return Err("consecutive layers' channels do not match".into());
            }
        }
        let down = net.divisor();
        let up: usize = d
            .iter()
            .map(|l| match l.kind {
                engine::Kind::ConvT => 2,
                _ => 1,
            })
            .product::<usize>()
            * if net.shuffle { 2 } else { 1 };
        if up != down {
            return Err(format!(
                "the {part} enlarges {up}× where the encoder shrinks {down}×"
            ));
        }
    }
    Ok(())
}
