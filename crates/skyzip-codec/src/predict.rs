//! The learned part of the codec: a `meanvar` conv autoencoder whose quantised latent is sent
//! and whose decoders give, for every pixel, a prediction μ and a spread σ.

use crate::engine::{FloatNet, IntNet, Map, NetShape, Path as EnginePath};
use crate::entropy::IntTable;
use crate::CodecError;
use sha2::{Digest, Sha256};
use skyzip_data::{Norm, NormKind};
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Code, Model, ModelConfig};
use skyzip_train::checkpoint::{load_weights_bytes, sidecar, ExportInfo, Part};
use std::path::Path;

/// The codec models bundled in the binary: name, weights, sidecar config.
/// `default`: trained by `configs/codec-default.json`; `rate`: by `configs/codec-rate.json`
/// (trained for code length, with a learned factorized prior whose tables code the latent).
const BUNDLED: [(&str, &[u8], &str); 2] = [
    (
        "default",
        include_bytes!("../models/default.safetensors"),
        include_str!("../models/default.json"),
    ),
    (
        "rate",
        include_bytes!("../models/rate.safetensors"),
        include_str!("../models/rate.json"),
    ),
];

/// The names of the bundled models.
pub fn bundled() -> impl Iterator<Item = &'static str> {
    BUNDLED.iter().map(|b| b.0)
}

/// A loaded codec model.
pub struct Predictor {
    model: Model,
    cfg: ModelConfig,
    norm: NormKind,
    device: Device,
    /// 16 hex digits of sha256(config ‖ weights): written in every file, checked on decode.
    pub hash: String,
    /// What the files say the model is (a bundled name or the export's file name).
    pub name: String,
    /// The learned prior's tables, one per latent channel (rate-trained models).
    prior: Option<Vec<IntTable>>,
    /// The export's weights (safetensors) and config text, as loaded.
    weights: Vec<u8>,
    info_text: String,
    /// When set, the integer engine computes the latent, μ and σ² instead of burn.
    engine: Option<IntNet>,
}

/// 16 hex digits of sha256 over `parts` in order (a model's config, its weights, …).
fn hash_of(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Predictor {
    /// A bundled model (`default`, `rate`) or an export written by `skyzip export --part full` (F.safetensors +
    /// F.json), which must be a meanvar conv autoencoder.
    pub fn load(spec: &str) -> Result<Predictor, CodecError> {
        let bad = |why: String| CodecError::Model {
            model: spec.to_string(),
            why,
        };
        let (info_text, weights, name) = if let Some(b) = BUNDLED.iter().find(|b| b.0 == spec) {
            (b.2.to_string(), b.1.to_vec(), b.0.to_string())
        } else {
            let p = Path::new(spec);
            if !p.is_file() {
                let names: Vec<&str> = bundled().collect();
                return Err(bad(format!(
                    "no such model: give a bundled one ({}), `auto` (compress tries every \
                     bundled model), or an export F.safetensors with F.json beside it",
                    names.join(", ")
                )));
            }
            let w = std::fs::read(p).map_err(|e| bad(e.to_string()))?;
            let side = sidecar(p);
            let i = std::fs::read_to_string(&side)
                .map_err(|e| bad(format!("{}: {e}", side.display())))?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (i, w, name)
        };
        let (info, cfg) = ExportInfo::parse(&info_text).map_err(bad)?;
        if info.part != "full" && info.part != "codec" {
            return Err(bad(format!(
                "holds only the {} (export --part full or codec for a codec model)",
                info.part
            )));
        }
        if cfg.side_channel_values() > 0 {
            return Err(bad(format!(
                "its decoder sees {} encoder values per image beside the code (U-Net skips): \
                 they would carry the image around the bitstream",
                cfg.side_channel_values()
            )));
        }
        let conv = matches!(cfg.net(), ModelConfig::ConvAe { .. });
        if !cfg.is_meanvar() || !conv {
            return Err(bad(
                "a codec model must be a meanvar model on a conv-ae".into()
            ));
        }
        let device = Device::flex();
        let mut model = cfg.init(&device);
        // An integer export (`--part codec`) holds the engine's integers only; burn's model is
        // then never run (its untrained weights stay unused).
        let engine = if info.part == "codec" {
            if cfg.rate() {
                return Err(bad(
                    "an integer export of a rate-trained model (its prior) is not supported yet"
                        .into(),
                ));
            }
            Some(IntNet::from_safetensors(&weights).map_err(|e| bad(e.to_string()))?)
        } else {
            load_weights_bytes(&mut model, weights.clone(), Part::Full)
                .map_err(|e| bad(format!("weights {e}")))?;
            None
        };
        let prior = model.prior.as_ref().map(crate::prior::tables);
        Ok(Predictor {
            prior,
            model,
            cfg,
            norm: info.normalisation,
            device,
            hash: hash_of(&[info_text.as_bytes(), &weights]),
            name,
            weights,
            info_text,
            engine,
        })
    }

    /// The model's conv autoencoder as the engine's float net (plain f32 loops).
    pub fn float_net(&self) -> Result<FloatNet, CodecError> {
        if self.engine.is_some() {
            return Err(CodecError::Model {
                model: self.name.clone(),
                why: "an integer model has no float weights".into(),
            });
        }
        let ModelConfig::ConvAe { net, .. } = self.cfg.net() else {
            unreachable!("codec models are conv-ae based (checked on load)")
        };
        FloatNet::from_safetensors(
            &self.weights,
            NetShape {
                width: net.width,
                stages: net.stages.clone(),
                latent: net.latent,
            },
        )
    }

    /// The same model run by the integer engine, quantised after training with `calibration`
    /// tiles (normalised as the model's inputs). Its files are not those of the float model:
    /// it has its own hash.
    pub fn integer(mut self, calibration: &[Map<f32>]) -> Result<Predictor, CodecError> {
        let q = IntNet::calibrate(&self.float_net()?, calibration)?;
        self.hash = hash_of(&[
            self.info_text.as_bytes(),
            &self.weights,
            format!("{q:?}").as_bytes(),
        ]);
        self.name = format!("{} (integer)", self.name);
        self.engine = Some(q);
        Ok(self)
    }

    /// The tile sides must be multiples of this.
    pub fn divisor(&self) -> usize {
        match self.cfg.net() {
            ModelConfig::ConvAe { net, .. } => net.divisor(),
            _ => 1,
        }
    }

    /// Whether the model was trained with a prefix mask η over its latent channels.
    pub fn tunable(&self) -> bool {
        self.cfg.tunable()
    }

    /// The integer tables of the model's learned prior, if it has one.
    pub fn prior(&self) -> Option<&[IntTable]> {
        self.prior.as_deref()
    }

    pub fn latent_channels(&self) -> usize {
        self.cfg.latent()
    }

    /// The normalisation the model was trained with (fitted to each tile).
    pub fn norm_kind(&self) -> NormKind {
        self.norm
    }

    /// x → normalised units: libm's functions for burn's float path (as its files were
    /// written), [`crate::detmath`]'s exact ones for the integer engine.
    pub fn norm_forward(&self, n: &Norm, x: f64) -> f64 {
        if self.engine.is_some() {
            crate::detmath::norm::forward(n, x)
        } else {
            n.forward_value(x)
        }
    }

    /// Normalised units → x, as [`Predictor::norm_forward`] chooses.
    pub fn norm_inverse(&self, n: &Norm, y: f64) -> f64 {
        if self.engine.is_some() {
            crate::detmath::norm::inverse(n, y)
        } else {
            n.inverse_value(y)
        }
    }

    /// A spread in normalised units at y → data units, as [`Predictor::norm_forward`] chooses.
    pub fn norm_inverse_sigma(&self, n: &Norm, y: f64, sd: f64) -> f64 {
        if self.engine.is_some() {
            crate::detmath::norm::inverse_sigma(n, y, sd)
        } else {
            n.inverse_sigma(y, sd)
        }
    }

    /// Fits the normalisation to a tile (NaN = blank).
    pub fn fit(&self, tile: &[f32]) -> Norm {
        self.norm.fit(tile)
    }

    /// The latent of a padded, normalised `w`×`h` tile, rounded to integers: ([C, h', w'] values).
    pub fn encode(&self, tile: &[f32], w: usize, h: usize) -> (Vec<i64>, [usize; 3]) {
        if let Some(q) = &self.engine {
            let z = q.encode(q.quantise_input(tile, h, w), EnginePath::Fast);
            return (z.data, [z.c, z.h, z.w]);
        }
        let x = skyzip_nn::image_tensor(tile, 1, h, w, &self.device);
        let z = match self.model.encode(x) {
            Code::Conv(z) => z,
            _ => unreachable!("codec models are convolutional"),
        };
        let [_, c, zh, zw] = z.dims();
        let v = z.into_data().try_to_vec::<f32>().unwrap_or_default();
        let q = v
            .iter()
            .map(|&x| {
                if x.is_finite() {
                    (x as f64).round().clamp(-1e6, 1e6) as i64
                } else {
                    0
                }
            })
            .collect();
        (q, [c, zh, zw])
    }

    /// μ and σ² (normalised units) of every pixel from a quantised latent.
    pub fn decode(&self, latent: &[i64], shape: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
        let [c, zh, zw] = shape;
        if let Some(q) = &self.engine {
            let z = Map {
                c,
                h: zh,
                w: zw,
                data: latent.to_vec(),
            };
            let (mu, v) = q.decode(&z, EnginePath::Fast);
            let eps = self.cfg.eps();
            return (
                mu.iter().map(|&m| m as f32).collect(),
                v.iter()
                    .map(|&v| (crate::detmath::softplus(v) + eps) as f32)
                    .collect(),
            );
        }
        let v: Vec<f32> = latent.iter().map(|&x| x as f32).collect();
        let z = Tensor::from_data(TensorData::new(v, [1, c, zh, zw]), &self.device);
        let code = Code::Conv(z);
        let var = self
            .model
            .variance(code.clone(), None, self.cfg.eps())
            .expect("meanvar models have a variance decoder");
        let mu = self.model.decode(code, None);
        (
            mu.into_data().try_to_vec::<f32>().unwrap_or_default(),
            var.into_data().try_to_vec::<f32>().unwrap_or_default(),
        )
    }
}
