//! The model registry: names → configurations → modules, one interface for training.

use crate::conv_ae::{ConvAe, ConvAeConfig};
use crate::dense_ae::{DenseAe, DenseAeConfig};
use crate::loss::Loss;
use crate::tunable::{channel_mask, draw_eta, unit_mask};
use burn::prelude::*;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A model and its settings, as written in an experiment's config (`"name": "conv-ae", ...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Fully convolutional autoencoder; `tunable` masks latent channels beyond a prefix η.
    ConvAe {
        #[serde(flatten)]
        net: ConvAeConfig,
        #[serde(default)]
        tunable: bool,
    },
    /// Conv encoder + fully connected bottleneck; `tunable` masks latent units beyond η.
    DenseAe {
        #[serde(flatten)]
        net: DenseAeConfig,
        #[serde(default)]
        tunable: bool,
    },
}

/// Names and one-line descriptions of every registered model, with their parameters.
pub const REGISTRY: &[(&str, &str, &str)] = &[
    (
        "conv-ae",
        "fully convolutional autoencoder (optionally tunable: channel prefix mask η)",
        "width (32), stages ([64, 64]: one stride-2 conv each), latent (8 channels), tunable (false)",
    ),
    (
        "dense-ae",
        "conv encoder with a fully connected bottleneck of d units (optionally tunable over units)",
        "size (input side), stages ([] = linear), hidden (0), latent (d), tunable (false)",
    ),
];

// Models live once per run, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    ConvAe(ConvAe),
    DenseAe(DenseAe),
}

impl ModelConfig {
    /// Parses a model config from JSON, naming the problem on failure.
    pub fn from_json(v: &serde_json::Value) -> Result<ModelConfig, String> {
        if let Some(name) = v.get("name").and_then(|n| n.as_str()) {
            if !REGISTRY.iter().any(|r| r.0 == name) {
                let names: Vec<&str> = REGISTRY.iter().map(|r| r.0).collect();
                return Err(format!(
                    "unknown model '{name}' (available: {})",
                    names.join(", ")
                ));
            }
        }
        serde_json::from_value(v.clone()).map_err(|e| format!("model: {e}"))
    }
    pub fn init(&self, device: &Device) -> Model {
        match self {
            ModelConfig::ConvAe { net, .. } => Model::ConvAe(net.init(device)),
            ModelConfig::DenseAe { net, .. } => Model::DenseAe(net.init(device)),
        }
    }
    pub fn tunable(&self) -> bool {
        match self {
            ModelConfig::ConvAe { tunable, .. } | ModelConfig::DenseAe { tunable, .. } => *tunable,
        }
    }
    /// Latent channels (conv) or units (dense): the range of η.
    pub fn latent(&self) -> usize {
        match self {
            ModelConfig::ConvAe { net, .. } => net.latent,
            ModelConfig::DenseAe { net, .. } => net.latent,
        }
    }
}

/// A latent code: channels of a conv model, units of a dense one.
#[derive(Clone)]
enum Code {
    Conv(Tensor<4>),
    Dense(Tensor<2>),
}

impl Model {
    fn encode(&self, x: Tensor<4>) -> Code {
        match self {
            Model::ConvAe(m) => Code::Conv(m.encode(x)),
            Model::DenseAe(m) => Code::Dense(m.encode(x)),
        }
    }

    /// Decodes the code with its first `eta` channels/units kept (None = all).
    fn decode(&self, z: Code, eta: Option<usize>) -> Tensor<4> {
        match (self, z) {
            (Model::ConvAe(m), Code::Conv(z)) => {
                let k = z.dims()[1];
                match eta {
                    Some(e) if e < k => m.decode(z.clone() * channel_mask(k, e, &z.device())),
                    _ => m.decode(z),
                }
            }
            (Model::DenseAe(m), Code::Dense(z)) => {
                let d = z.dims()[1];
                match eta {
                    Some(e) if e < d => m.decode(z.clone() * unit_mask(d, e, &z.device())),
                    _ => m.decode(z),
                }
            }
            _ => unreachable!("a model decodes only its own codes"),
        }
    }

    /// Reconstruction with the first `eta` latent channels/units kept (None = all).
    pub fn reconstruct(&self, x: Tensor<4>, eta: Option<usize>) -> Tensor<4> {
        self.decode(self.encode(x), eta)
    }

    /// The training loss of one batch. Tunable models average the loss at a random η and at
    /// the full code (see [`crate::tunable`]); the encoding is shared between the two.
    pub fn training_loss(
        &self,
        cfg: &ModelConfig,
        x: Tensor<4>,
        y: Tensor<4>,
        loss: Loss,
        rng: &mut impl Rng,
    ) -> Tensor<1> {
        if !cfg.tunable() {
            return loss.forward(self.reconstruct(x, None), y);
        }
        let eta = draw_eta(rng, cfg.latent());
        let z = self.encode(x);
        let (a, b) = (self.decode(z.clone(), Some(eta)), self.decode(z, None));
        (loss.forward(a, y.clone()) + loss.forward(b, y)).div_scalar(2.0)
    }
}
