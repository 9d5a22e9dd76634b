//! The model registry: names → configurations → modules, one interface for training.
//!
//! Every model is an encoder, a (mean) decoder and, for `meanvar`, a second decoder for the
//! per-pixel variance. Keeping the three apart lets `skyzip export` write each part and lets the
//! two decoders have their own optimizers.

use crate::bottleneck_ae::{BottleneckAeConfig, BottleneckDecoder, BottleneckEncoder};
use crate::conv_ae::{ConvAeConfig, ConvDecoder, ConvEncoder};
use crate::dense_ae::{DenseAeConfig, DenseDecoder, DenseEncoder};
use crate::estimator::{Estimator, EstimatorConfig};
use crate::loss::{gaussian_nll, mse as loss_mse, Loss};
use crate::pixel_ae::{
    focal_frequency_loss, linear_counts, CountsBlock, CountsConfig, FocalConfig, PixelAeConfig,
    PixelDecoder, PixelEncoder,
};
use crate::prior::FactorizedPrior;
use crate::tunable::{channel_mask, draw_eta, unit_mask};
use crate::unet::{Unet, UnetConfig};
use crate::unet_ae::{UnetAeConfig, UnetAeDecoder, UnetAeEncoder};
use crate::vq::Codebook;
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::softplus;
use burn::tensor::Gradients;
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
        /// Which prefixes a tunable model trains on per batch (default: random).
        #[serde(default)]
        prefixes: Option<Prefixes>,
    },
    /// Conv encoder + fully connected bottleneck; `tunable` masks latent units beyond η.
    DenseAe {
        #[serde(flatten)]
        net: DenseAeConfig,
        #[serde(default)]
        tunable: bool,
        /// Which prefixes a tunable model trains on per batch (default: all).
        #[serde(default)]
        prefixes: Option<Prefixes>,
    },
    /// An autoencoder (`base`: conv-ae or dense-ae) with a second decoder for the per-pixel
    /// variance σ² = softplus(·) + eps, trained on the Gaussian NLL with μ and the code detached.
    Meanvar {
        base: Box<ModelConfig>,
        #[serde(default = "default_eps")]
        eps: f64,
        /// Train for code length instead (the codec's objective): the latent passes through
        /// uniform noise (the quantisation proxy) and is scored in nats under a learned
        /// factorized prior per channel ([`crate::prior`]), plus the Gaussian NLL of the pixels given μ and σ — jointly,
        /// nothing detached — plus `lambda`·MSE(μ) as a distortion term.
        #[serde(default)]
        rate: bool,
        #[serde(default)]
        lambda: f64,
    },
    /// A denoising autoencoder: `base` trained to map `noise`(x) back to x, with the noise
    /// (gaussian:S, poisson:S, masked:F, saltpepper:F) drawn afresh for every batch.
    Dae {
        base: Box<ModelConfig>,
        noise: String,
    },
    /// Conv stack with batch norm and LeakyReLU, fully connected layers to a vector code, and
    /// its mirror (seed 003's denoising autoencoder).
    BottleneckAe {
        #[serde(flatten)]
        net: BottleneckAeConfig,
    },
    /// Seed 001's U-Net autoencoder: an 8-number code, and (with `skips`) the encoder's feature
    /// maps handed to the decoder as well.
    UnetAe {
        #[serde(flatten)]
        net: UnetAeConfig,
    },
    /// A variational autoencoder (`base`: conv-ae or dense-ae, whose encoder then gives a mean
    /// and a log-variance per latent number): a Gaussian posterior sampled with the
    /// reparameterisation trick, a standard normal prior, and β·KL beside the reconstruction
    /// term (β reached linearly over `anneal_steps`, 0 = at once).
    Vae {
        base: Box<ModelConfig>,
        #[serde(default = "default_beta")]
        beta: f64,
        #[serde(default)]
        anneal_steps: usize,
        #[serde(default)]
        likelihood: Likelihood,
    },
    /// Seed 002's VQ-VAE: a conv-ae whose `latent` channels are the dimension D of the
    /// codebook's `codebook` vectors (K); straight-through gradients, codebook loss +
    /// `commitment`·commitment loss; every `restart_every` steps the codes no latent vector of
    /// the batch chose are moved onto random encoder outputs of the batch (0 = never).
    VqVae {
        #[serde(flatten)]
        net: ConvAeConfig,
        codebook: usize,
        #[serde(default = "default_commitment")]
        commitment: f64,
        #[serde(default = "default_restart")]
        restart_every: usize,
        /// EMA codebook updates with this decay (e.g. 0.99) instead of the codebook loss.
        #[serde(default)]
        ema: Option<f64>,
    },
    /// Seed 000's pixel autoencoder: residual blocks, the experiment's `loss` plus (with
    /// `focal`) the focal frequency loss, and (with `counts`) the second residual block that
    /// maps the normalised output back to counts (see [`crate::pixel_ae`]).
    PixelAe {
        #[serde(flatten)]
        net: PixelAeConfig,
        #[serde(default)]
        focal: Option<FocalConfig>,
        #[serde(default)]
        counts: Option<CountsConfig>,
    },
    /// CNN parameter estimation: image → the named scalar parameters (scaled to [0, 1]).
    CnnEstimator {
        #[serde(flatten)]
        net: EstimatorConfig,
    },
    /// Which of several noise models corrupted an image (seed 003's "next step"): a CNN like
    /// the estimator with one output per noise model in `outputs` (their specs, e.g.
    /// "masked:0.5"), trained with softmax cross-entropy.
    NoiseClassifier {
        #[serde(flatten)]
        net: EstimatorConfig,
    },
    /// U-Net point-source segmentation: image → per-pixel probability, BCE plus a count penalty.
    UnetSegmenter {
        #[serde(flatten)]
        net: UnetConfig,
        #[serde(default)]
        count_penalty: CountPenalty,
        /// A pixel is a point-source pixel when its true point-source flux exceeds this (counts):
        /// 0.8 is the simulator's `mask_*` maps, the student U-Net's targets.
        #[serde(default = "default_threshold")]
        threshold: f64,
    },
}

/// The segmenter's penalty on the number of point-source pixels it predicts, added to the BCE.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountPenalty {
    /// `hard`: as the seed's code, weight·|#(p > cut) − #(target > 0)| per batch — a count of
    /// thresholded pixels, which has no gradient (so it changes the loss value, never the
    /// weights); `soft`: weight·|Σp − #(target > 0)|, the differentiable count; `none`.
    pub kind: PenaltyKind,
    /// The seed used 1e-7 (so that the penalty, in pixels, is comparable to the BCE).
    pub weight: f64,
    /// The probability above which a pixel counts, for `hard`. The seed's code takes 1.08 × the
    /// smallest positive target, which for 0/1 masks is 1.08: no probability exceeds it.
    pub cut: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyKind {
    None,
    Hard,
    Soft,
}

impl Default for CountPenalty {
    fn default() -> Self {
        CountPenalty {
            kind: PenaltyKind::Hard,
            weight: 1e-7,
            cut: 1.08,
        }
    }
}

/// How a tunable model's loss covers the prefixes η = 1…K in each batch (see [`crate::tunable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefixes {
    /// Every prefix, decoded together: the exact expectation over a uniform η (K decodes).
    All,
    /// One uniform random η and the full code (2 decodes).
    Random,
}

fn default_eps() -> f64 {
    1e-6
}

fn default_beta() -> f64 {
    1.0
}

fn default_commitment() -> f64 {
    0.25
}

fn default_restart() -> usize {
    100
}

/// A VAE's reconstruction term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Likelihood {
    /// Gaussian with one learned σ for all pixels (the calibrated decoder of Rybkin et al.
    /// 2021): reconstruction and KL are both nats per pixel, so β = 1 is the ELBO and the
    /// balance between them is learned rather than set by the loss's scale.
    #[default]
    Gaussian,
    /// The experiment's `loss` (per-pixel mean) beside β·KL per pixel, as most notebook VAEs do:
    /// the KL then weighs as if σ² = ½, which is what makes their latents collapse.
    Loss,
}

fn default_threshold() -> f64 {
    0.8
}

/// Names, one-line descriptions and parameters of every registered model.
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
    (
        "meanvar",
        "autoencoder with a mean and a variance decoder (Gaussian NLL, two optimizers)",
        "base (a conv-ae or dense-ae config), eps (1e-6: σ² = softplus + eps)",
    ),
    (
        "dae",
        "denoising autoencoder: fresh noise on every batch, clean target",
        "base (a conv-ae, dense-ae or bottleneck-ae config), noise (gaussian:S | poisson:S | masked:F | saltpepper:F)",
    ),
    (
        "bottleneck-ae",
        "conv stack + batch norm + LeakyReLU, FC to a vector code, mirrored decoder (seed 003's DAE)",
        "size, channels ([8, 16, 16, 32, 64, 64]), strides ([2, 2, 2, 2, 1, 1]), fc (128), latent",
    ),
    (
        "unet-ae",
        "seed 001's U-Net autoencoder: 4 conv blocks, FC to an 8-number code, up-blocks, sigmoid; skips switchable",
        "size (a multiple of 16), filters ([16, 32, 64, 128]), latent (8), skips (true)",
    ),
    (
        "vae",
        "variational autoencoder (β-VAE): Gaussian posterior, reparameterisation, β·KL with linear annealing",
        "base (a conv-ae or dense-ae config; latent = posterior size), beta (1), anneal_steps (0), likelihood (gaussian: learned σ | loss)",
    ),
    (
        "vq-vae",
        "seed 002's VQ-VAE: conv encoder, nearest of K codebook vectors, straight-through, codebook + commitment losses",
        "width, stages, latent (D), codebook (K), commitment (0.25), restart_every (100 steps; 0 = no dead-code restarts), ema (none; a decay such as 0.99: EMA codebook updates)",
    ),
    (
        "pixel-ae",
        "seed 000's pixel autoencoder: PixelCNN-style residual blocks, focal frequency loss, a second residual block back to counts",
        "width (32), stages ([64, 64, 64]), blocks (1 per scale), latent, gated (false), focal ({weight: 1, alpha: 1} | none), counts ({width: 16, blocks: 2, scale: 10 counts, weight: 1} | none)",
    ),
    (
        "cnn-estimator",
        "CNN parameter estimation: conv trunk, shared FC layers, one head per parameter (targets in [0, 1])",
        "size, channels, kernels (3 each), pool_after, hidden, outputs (parameter names)",
    ),
    (
        "noise-classifier",
        "which noise model corrupted an image: a CNN with one softmax output per noise model",
        "as cnn-estimator, with outputs = the noise models (gaussian:S[:clip], poisson:S[:clip], masked:F, saltpepper:F)",
    ),
    (
        "unet-segmenter",
        "U-Net point-source segmentation: per-pixel probability, BCE + count penalty",
        "filters ([8, 16, 32, 64]), bridge (128), dropout (0.1), count_penalty ({kind: hard|soft|none, weight: 1e-7, cut: 1.08}), threshold (0.8 counts: the simulator's masks)",
    ),
];

/// What a model learns to produce, which decides how it is trained and evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// An image from an image (autoencoders, denoisers).
    Reconstruct,
    /// Scalar parameters from an image.
    Estimate,
    /// A per-pixel probability from an image.
    Segment,
    /// One of several classes (which noise model) from an image.
    Classify,
}

/// The networks that are not autoencoders.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Supervised {
    Estimator(Estimator),
    Segmenter(Unet),
}

impl Supervised {
    /// Estimates [b, outputs], or probabilities [b, 1, h, w] flattened to [b, h·w].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Supervised::Estimator(e) => e.forward(x),
            Supervised::Segmenter(u) => {
                let [b, _, h, w] = x.dims();
                u.forward(x).reshape([b, h * w])
            }
        }
    }

    /// The training loss of a batch: MSE of the scaled estimates, or the segmenter's BCE plus
    /// its count penalty (targets [b, outputs] or [b, h·w] masks).
    pub fn training_loss(&self, cfg: &ModelConfig, x: Tensor<4>, y: Tensor<2>) -> Tensor<1> {
        match (self, cfg) {
            (s, ModelConfig::NoiseClassifier { .. }) => {
                // Softmax cross-entropy against one-hot labels.
                let logp = burn::tensor::activation::log_softmax(s.forward(x), 1);
                (logp * y).sum_dim(1).mean().neg()
            }
            (Supervised::Segmenter(u), ModelConfig::UnetSegmenter { count_penalty, .. }) => {
                let [b, _, h, w] = x.dims();
                let p = u.forward(x).reshape([b, h * w]);
                let eps = 1e-7;
                let pc = p.clone().clamp(eps, 1.0 - eps);
                let bce = (y.clone() * pc.clone().log()
                    + y.clone().neg().add_scalar(1.0) * pc.neg().add_scalar(1.0).log())
                .mean()
                .neg();
                let n_true = y.clone().greater_elem(0.0).float().sum();
                let pen = match count_penalty.kind {
                    PenaltyKind::None => return bce,
                    PenaltyKind::Hard => {
                        (p.greater_elem(count_penalty.cut).float().sum() - n_true).abs()
                    }
                    PenaltyKind::Soft => (p.sum() - n_true).abs(),
                };
                bce + pen.mul_scalar(count_penalty.weight)
            }
            (s, _) => (s.forward(x) - y).powf_scalar(2.0).mean(),
        }
    }
}

// A model holds one of each, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    Conv(ConvEncoder),
    Dense(DenseEncoder),
    Bottleneck(BottleneckEncoder),
    UnetAe(UnetAeEncoder),
    Pixel(PixelEncoder),
}

#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    Conv(ConvDecoder),
    Dense(DenseDecoder),
    Bottleneck(BottleneckDecoder),
    UnetAe(UnetAeDecoder),
    Pixel(PixelDecoder),
}

/// Encoder, mean decoder and (meanvar only) variance decoder.
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub var_decoder: Option<Decoder>,
    /// The learned factorized prior over latent channels (rate-trained meanvar only).
    pub prior: Option<FactorizedPrior>,
    /// A VQ-VAE's codebook: the encoder's outputs are replaced by their nearest vectors.
    pub codebook: Option<Codebook>,
    /// A VAE's learned log σ of its Gaussian likelihood (`likelihood: gaussian`).
    pub log_sigma: Option<Param<Tensor<1>>>,
    /// A pixel-ae's second residual block, from the normalised output to counts.
    pub counts: Option<CountsBlock>,
    /// A VAE's encoder gives [mean, log-variance] (twice the latent); the code is the mean.
    posterior: bool,
}

/// A latent code: channels of a conv model ([b, K, h, w]), units of a dense one ([b, d]), or a
/// U-Net's units with the encoder feature maps its decoder may also see (finest first).
#[derive(Clone, Debug)]
pub enum Code {
    Conv(Tensor<4>),
    Dense(Tensor<2>),
    Unet(Tensor<2>, Vec<Tensor<4>>),
}

impl Code {
    pub fn detach(self) -> Code {
        match self {
            Code::Conv(z) => Code::Conv(z.detach()),
            Code::Dense(z) => Code::Dense(z.detach()),
            Code::Unet(z, s) => Code::Unet(z.detach(), s.into_iter().map(|t| t.detach()).collect()),
        }
    }

    /// The code with the U-Net's skip maps replaced by zeros: what the decoder makes of the
    /// code alone (other codes are returned as they are).
    pub fn without_skips(self) -> Code {
        match self {
            Code::Unet(z, s) => Code::Unet(z, s.into_iter().map(|t| t.zeros_like()).collect()),
            other => other,
        }
    }
    /// The code with its first `eta` channels/units kept (None = all).
    pub fn masked(self, eta: Option<usize>) -> Code {
        match (self, eta) {
            (Code::Conv(z), Some(e)) if e < z.dims()[1] => {
                let m = channel_mask(z.dims()[1], e, &z.device());
                Code::Conv(z * m)
            }
            (Code::Dense(z), Some(e)) if e < z.dims()[1] => {
                let m = unit_mask(z.dims()[1], e, &z.device());
                Code::Dense(z * m)
            }
            (z, _) => z,
        }
    }
}

impl Code {
    /// K copies of a batch of b codes, copy k keeping its first k+1 channels/units: [K·b, …].
    pub fn every_prefix(self) -> Code {
        match self {
            Code::Conv(z) => {
                let [b, k, h, w] = z.dims();
                let m = prefix_masks(k, &z.device()).reshape([k, 1, k, 1, 1]);
                let all = z.unsqueeze_dim::<5>(0) * m;
                Code::Conv(all.reshape([k * b, k, h, w]))
            }
            Code::Dense(z) => {
                let [b, d] = z.dims();
                let m = prefix_masks(d, &z.device()).reshape([d, 1, d]);
                let all = z.unsqueeze_dim::<3>(0) * m;
                Code::Dense(all.reshape([d * b, d]))
            }
            Code::Unet(..) => panic!("unet-ae models are not tunable"),
        }
    }
}

/// A standard normal draw (Box–Muller) from the run's seeded generator.
fn gauss(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// [K, K] lower-triangular ones: row k keeps the first k+1 entries.
fn prefix_masks(k: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..k * k)
        .map(|i| if i % k <= i / k { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(v, [k, k]), device)
}

/// A module built by `make` with weights drawn from `seed`, the same on every call: burn's
/// generator is global and its parameters initialise lazily, so the draws happen here, under a
/// lock, in the module's fixed order — runs in other threads cannot interleave with them.
fn seeded<M: Module>(device: &Device, seed: u64, make: impl FnOnce() -> M) -> M {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let m = make();
    m.visit(&mut Touch);
    m
}

impl ModelConfig {
    /// Parses a model config from JSON, naming the problem on failure.
    pub fn from_json(v: &serde_json::Value) -> Result<ModelConfig, String> {
        let cfg: ModelConfig = match v.get("name").and_then(|n| n.as_str()) {
            Some(name) if !REGISTRY.iter().any(|r| r.0 == name) => {
                let names: Vec<&str> = REGISTRY.iter().map(|r| r.0).collect();
                return Err(format!(
                    "unknown model '{name}' (available: {})",
                    names.join(", ")
                ));
            }
            _ => serde_json::from_value(v.clone()).map_err(|e| format!("model: {e}"))?,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        match self {
            ModelConfig::Meanvar {
                base, eps, lambda, ..
            } => {
                if !(*eps > 0.0 && eps.is_finite()) {
                    return Err(format!("model.eps {eps} must be positive"));
                }
                if !(*lambda >= 0.0 && lambda.is_finite()) {
                    return Err(format!("model.lambda {lambda} must be ≥ 0"));
                }
                base.check_base("meanvar")
            }
            ModelConfig::Dae { base, .. } => base.check_base("dae"),
            ModelConfig::Vae {
                base,
                beta,
                likelihood: _,
                anneal_steps: _,
            } => {
                if !(*beta >= 0.0 && beta.is_finite()) {
                    return Err(format!("model.beta {beta} must be ≥ 0"));
                }
                match base.as_ref() {
                    ModelConfig::ConvAe { tunable: false, .. }
                    | ModelConfig::DenseAe { tunable: false, .. } => base.check(),
                    _ => {
                        Err("model.base of vae must be a conv-ae or dense-ae (not tunable)".into())
                    }
                }
            }
            ModelConfig::VqVae {
                net,
                codebook,
                commitment,
                ema,
                ..
            } => {
                if net.latent == 0 || net.width == 0 || *codebook < 2 {
                    return Err(
                        "vq-vae: width and latent must be at least 1, codebook at least 2".into(),
                    );
                }
                if !(*commitment >= 0.0 && commitment.is_finite()) {
                    return Err(format!("model.commitment {commitment} must be ≥ 0"));
                }
                if let Some(g) = ema {
                    if !(*g > 0.0 && *g < 1.0) {
                        return Err(format!("model.ema {g}: the decay must lie in (0, 1)"));
                    }
                }
                Ok(())
            }
            ModelConfig::BottleneckAe { net } => net.check(),
            ModelConfig::UnetAe { net } => net.check(),
            ModelConfig::PixelAe { net, focal, counts } => {
                if let Some(f) = focal {
                    if !(f.weight >= 0.0 && f.alpha >= 0.0 && f.weight.is_finite()) {
                        return Err("model.focal: weight and alpha must be ≥ 0".into());
                    }
                }
                if let Some(c) = counts {
                    if c.width < 2 || !(c.scale > 0.0 && c.weight >= 0.0 && c.scale.is_finite()) {
                        return Err(
                            "model.counts: width at least 2, scale > 0 and weight ≥ 0".into()
                        );
                    }
                }
                net.check()
            }
            ModelConfig::CnnEstimator { net } | ModelConfig::NoiseClassifier { net } => {
                net.check()?;
                if let ModelConfig::NoiseClassifier { .. } = self {
                    if net.outputs.len() < 2 {
                        return Err("noise-classifier: at least two noise models".into());
                    }
                }
                Ok(())
            }
            ModelConfig::UnetSegmenter {
                net, count_penalty, ..
            } => {
                if !(count_penalty.weight >= 0.0 && count_penalty.weight.is_finite()) {
                    return Err("model.count_penalty.weight must be ≥ 0".into());
                }
                net.check()
            }
            ModelConfig::ConvAe { net, .. } if net.latent == 0 || net.width == 0 => {
                Err("model: width and latent must be at least 1".into())
            }
            ModelConfig::DenseAe { net, .. } if net.latent == 0 || net.size == 0 => {
                Err("model: size and latent must be at least 1".into())
            }
            _ => Ok(()),
        }
    }

    fn check_base(&self, of: &str) -> Result<(), String> {
        match self {
            ModelConfig::ConvAe { .. }
            | ModelConfig::DenseAe { .. }
            | ModelConfig::BottleneckAe { .. } => self.check(),
            _ => Err(format!(
                "model.base of {of} must be a conv-ae, dense-ae or bottleneck-ae"
            )),
        }
    }

    /// The conv-ae or dense-ae underneath.
    pub fn net(&self) -> &ModelConfig {
        match self {
            ModelConfig::Meanvar { base, .. }
            | ModelConfig::Dae { base, .. }
            | ModelConfig::Vae { base, .. } => base.net(),
            other => other,
        }
    }

    /// The registry name of this config.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v["name"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// A conv-ae or dense-ae with `k` latent channels/units.
    fn with_latent(&self, k: usize) -> ModelConfig {
        let mut c = self.clone();
        match &mut c {
            ModelConfig::ConvAe { net, .. } | ModelConfig::VqVae { net, .. } => net.latent = k,
            ModelConfig::DenseAe { net, .. } => net.latent = k,
            _ => {}
        }
        c
    }

    pub fn init(&self, device: &Device) -> Model {
        let (encoder, decoder, second) = match self {
            // The encoder gives a mean and a log-variance per latent number.
            ModelConfig::Vae { .. } => {
                let (e, _, _) = self.net().with_latent(2 * self.latent()).parts(device);
                let (_, d, v) = self.net().parts(device);
                (e, d, v)
            }
            _ => self.net().parts(device),
        };
        let codebook = match self {
            ModelConfig::VqVae {
                net, codebook, ema, ..
            } => Some(Codebook::new(*codebook, net.latent, ema.is_some(), device)),
            _ => None,
        };
        let log_sigma = matches!(
            self,
            ModelConfig::Vae {
                likelihood: Likelihood::Gaussian,
                ..
            }
        )
        .then(|| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![-2.0f32], [1]),
                device,
            ))
        });
        Model {
            encoder,
            decoder,
            var_decoder: self.is_meanvar().then_some(second),
            prior: self
                .rate()
                .then(|| FactorizedPrior::new(self.latent(), device)),
            codebook,
            log_sigma,
            counts: match self {
                ModelConfig::PixelAe {
                    net,
                    counts: Some(c),
                    ..
                } => Some(c.init(net.gated, device)),
                _ => None,
            },
            posterior: matches!(self, ModelConfig::Vae { .. }),
        }
    }

    /// An encoder and two decoders of this autoencoder net (built in that order, so a seed
    /// gives the same weights as before the models that share this code existed).
    fn parts(&self, device: &Device) -> (Encoder, Decoder, Decoder) {
        match self {
            ModelConfig::VqVae { net, .. } => (
                Encoder::Conv(net.encoder(device)),
                Decoder::Conv(net.decoder(device)),
                Decoder::Conv(net.decoder(device)),
            ),
            other => other.parts_of_net(device),
        }
    }

    fn parts_of_net(&self, device: &Device) -> (Encoder, Decoder, Decoder) {
        match self.net() {
            ModelConfig::ConvAe { net, .. } => (
                Encoder::Conv(net.encoder(device)),
                Decoder::Conv(net.decoder(device)),
                Decoder::Conv(net.decoder(device)),
            ),
            ModelConfig::DenseAe { net, .. } => (
                Encoder::Dense(net.encoder(device)),
                Decoder::Dense(net.decoder(device)),
                Decoder::Dense(net.decoder(device)),
            ),
            ModelConfig::BottleneckAe { net } => (
                Encoder::Bottleneck(net.encoder(device)),
                Decoder::Bottleneck(net.decoder(device)),
                Decoder::Bottleneck(net.decoder(device)),
            ),
            ModelConfig::UnetAe { net } => (
                Encoder::UnetAe(net.encoder(device)),
                Decoder::UnetAe(net.decoder(device)),
                Decoder::UnetAe(net.decoder(device)),
            ),
            ModelConfig::PixelAe { net, .. } => (
                Encoder::Pixel(net.encoder(device)),
                Decoder::Pixel(net.decoder(device)),
                Decoder::Pixel(net.decoder(device)),
            ),
            other => {
                panic!("{other:?} is not an autoencoder (ModelConfig::task says how to build it)")
            }
        }
    }

    /// The model with weights drawn from `seed`, the same on every call: burn's generator is
    /// global and its parameters initialise lazily, so the draws happen here, under a lock, in
    /// the module's fixed order — runs in other threads cannot interleave with them.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> Model {
        seeded(device, seed, || self.init(device))
    }

    /// How many numbers beside the code the decoder sees per image (a U-Net's skip maps; 0 for
    /// every model whose code is its only information path).
    pub fn side_channel_values(&self) -> usize {
        match self.net() {
            ModelConfig::UnetAe { net } => net.skip_values(),
            _ => 0,
        }
    }

    /// What the model learns to produce.
    pub fn task(&self) -> Task {
        match self {
            ModelConfig::CnnEstimator { .. } => Task::Estimate,
            ModelConfig::NoiseClassifier { .. } => Task::Classify,
            ModelConfig::UnetSegmenter { .. } => Task::Segment,
            _ => Task::Reconstruct,
        }
    }

    /// A network that is not an autoencoder, with weights drawn from `seed` (None for
    /// autoencoders).
    pub fn init_supervised(&self, device: &Device, seed: u64) -> Option<Supervised> {
        match self {
            ModelConfig::CnnEstimator { net } | ModelConfig::NoiseClassifier { net } => {
                Some(seeded(device, seed, || {
                    Supervised::Estimator(net.init(device))
                }))
            }
            ModelConfig::UnetSegmenter { net, .. } => Some(seeded(device, seed, || {
                Supervised::Segmenter(net.init(device))
            })),
            _ => None,
        }
    }

    /// A segmenter's flux threshold for a point-source pixel.
    pub fn segment_threshold(&self) -> f64 {
        match self {
            ModelConfig::UnetSegmenter { threshold, .. } => *threshold,
            _ => 0.0,
        }
    }

    /// The parameters an estimator predicts.
    pub fn outputs(&self) -> &[String] {
        match self {
            ModelConfig::CnnEstimator { net } | ModelConfig::NoiseClassifier { net } => {
                &net.outputs
            }
            _ => &[],
        }
    }

    pub fn tunable(&self) -> bool {
        match self.net() {
            ModelConfig::ConvAe { tunable, .. } | ModelConfig::DenseAe { tunable, .. } => *tunable,
            _ => false,
        }
    }

    /// The prefix schedule of a tunable model: all prefixes for dense models (cheap decoders),
    /// a random one for conv models unless the config says otherwise.
    pub fn prefixes(&self) -> Prefixes {
        match self.net() {
            ModelConfig::ConvAe { prefixes, .. } => prefixes.unwrap_or(Prefixes::Random),
            ModelConfig::DenseAe { prefixes, .. } => prefixes.unwrap_or(Prefixes::All),
            _ => Prefixes::Random,
        }
    }

    /// Whether the model trains for code length (see `ModelConfig::Meanvar`), and its λ.
    pub fn rate(&self) -> bool {
        matches!(self, ModelConfig::Meanvar { rate: true, .. })
    }

    fn lambda(&self) -> f64 {
        match self {
            ModelConfig::Meanvar { lambda, .. } => *lambda,
            _ => 0.0,
        }
    }

    pub fn is_meanvar(&self) -> bool {
        matches!(self, ModelConfig::Meanvar { .. })
    }

    /// The variance floor ε of a meanvar model.
    pub fn eps(&self) -> f64 {
        match self {
            ModelConfig::Meanvar { eps, .. } => *eps,
            _ => default_eps(),
        }
    }

    /// The corruption of a dae model, as written in its config.
    pub fn noise(&self) -> Option<&str> {
        match self {
            ModelConfig::Dae { noise, .. } => Some(noise),
            _ => None,
        }
    }

    /// Latent channels (conv) or units (dense): the range of η.
    pub fn latent(&self) -> usize {
        match self.net() {
            ModelConfig::ConvAe { net, .. } => net.latent,
            ModelConfig::DenseAe { net, .. } => net.latent,
            ModelConfig::BottleneckAe { net } => net.latent,
            ModelConfig::UnetAe { net } => net.latent,
            ModelConfig::VqVae { net, .. } => net.latent,
            ModelConfig::PixelAe { net, .. } => net.latent,
            _ => 0,
        }
    }

    /// Checks that an image of `ny`×`nx` fits the model, naming the problem otherwise.
    pub fn check_shape(&self, ny: usize, nx: usize) -> Result<(), String> {
        match self.net() {
            ModelConfig::PixelAe { net, .. } => {
                let d = net.divisor();
                if !ny.is_multiple_of(d) || !nx.is_multiple_of(d) || ny == 0 || nx == 0 {
                    return Err(format!(
                        "images of {nx}×{ny} do not fit this pixel-ae: both sides must be multiples of {d}"
                    ));
                }
            }
            ModelConfig::ConvAe { net, .. } | ModelConfig::VqVae { net, .. } => {
                let d = net.divisor();
                if !ny.is_multiple_of(d) || !nx.is_multiple_of(d) || ny == 0 || nx == 0 {
                    return Err(format!(
                        "images of {nx}×{ny} do not fit this {}: both sides must be multiples of {d}",
                        self.net().name()
                    ));
                }
            }
            ModelConfig::DenseAe { net, .. } if ny != net.size || nx != net.size => {
                return Err(format!(
                    "images of {nx}×{ny} do not fit this dense-ae: it takes {s}×{s}",
                    s = net.size
                ));
            }
            ModelConfig::UnetAe { net } if ny != net.size || nx != net.size => {
                return Err(format!(
                    "images of {nx}×{ny} do not fit this unet-ae: it takes {s}×{s} (data.resize)",
                    s = net.size
                ));
            }
            ModelConfig::BottleneckAe { net } if ny != net.size || nx != net.size => {
                return Err(format!(
                    "images of {nx}×{ny} do not fit this bottleneck-ae: it takes {s}×{s}",
                    s = net.size
                ));
            }
            ModelConfig::CnnEstimator { net } | ModelConfig::NoiseClassifier { net }
                if ny != net.size || nx != net.size =>
            {
                return Err(format!(
                    "images of {nx}×{ny} do not fit this cnn-estimator: it takes {s}×{s}",
                    s = net.size
                ));
            }
            ModelConfig::UnetSegmenter { net, .. } => {
                let d = net.divisor();
                if !ny.is_multiple_of(d) || !nx.is_multiple_of(d) || ny == 0 || nx == 0 {
                    return Err(format!(
                        "images of {nx}×{ny} do not fit this unet-segmenter: both sides must be multiples of {d}"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A VAE's posterior for a batch: mean and log-variance, each shaped like the code.
pub struct Posterior {
    pub mean: Code,
    pub log_var: Code,
}

/// The halves of a VAE encoder's output along the latent axis: (mean, log-variance).
fn halves(code: Code) -> (Code, Code) {
    match code {
        Code::Conv(z) => {
            let k = z.dims()[1] / 2;
            (
                Code::Conv(z.clone().narrow(1, 0, k)),
                Code::Conv(z.narrow(1, k, k)),
            )
        }
        Code::Dense(z) => {
            let k = z.dims()[1] / 2;
            (
                Code::Dense(z.clone().narrow(1, 0, k)),
                Code::Dense(z.narrow(1, k, k)),
            )
        }
        Code::Unet(..) => unreachable!("a vae's base is a conv-ae or dense-ae"),
    }
}

impl Code {
    /// [b, n]: every number of each image's code in a row (skip maps left out).
    pub fn flat(&self) -> Tensor<2> {
        match self {
            Code::Conv(z) => {
                let [b, c, h, w] = z.dims();
                z.clone().reshape([b, c * h * w])
            }
            Code::Dense(z) | Code::Unet(z, _) => z.clone(),
        }
    }

    /// A code shaped like this one from [b, n] rows.
    pub fn like(&self, t: Tensor<2>) -> Code {
        match self {
            Code::Conv(z) => Code::Conv(t.reshape(z.dims())),
            Code::Dense(_) => Code::Dense(t),
            Code::Unet(_, s) => Code::Unet(t, s.clone()),
        }
    }
}

impl Model {
    /// The code of a batch: a VAE's posterior mean, a VQ-VAE's nearest codebook vectors.
    pub fn encode(&self, x: Tensor<4>) -> Code {
        let code = self.raw_encode(x);
        if self.posterior {
            return halves(code).0;
        }
        match (&self.codebook, code) {
            (Some(cb), Code::Conv(z)) => {
                let [b, _, h, w] = z.dims();
                Code::Conv(cb.lookup(cb.nearest_of(z), b, h, w))
            }
            (_, code) => code,
        }
    }

    /// A VAE's posterior of a batch (None for other models).
    pub fn posterior(&self, x: Tensor<4>) -> Option<Posterior> {
        self.posterior.then(|| {
            let (mean, log_var) = halves(self.raw_encode(x));
            let log_var = log_var.clone().like(log_var.flat().clamp(-12.0, 8.0));
            Posterior { mean, log_var }
        })
    }

    /// A VQ-VAE's indices of a batch, [b·h·w] row-major per image, with (h, w) (None for other
    /// models).
    pub fn vq_indices(&self, x: Tensor<4>) -> Option<(Tensor<1, Int>, [usize; 2])> {
        let cb = self.codebook.as_ref()?;
        match self.raw_encode(x) {
            Code::Conv(z) => {
                let [_, _, h, w] = z.dims();
                Some((cb.nearest_of(z), [h, w]))
            }
            _ => None,
        }
    }

    /// Decodes a VQ-VAE's indices of `b` images.
    pub fn decode_indices(&self, idx: Tensor<1, Int>, b: usize, hw: [usize; 2]) -> Tensor<4> {
        let cb = self.codebook.as_ref().expect("a vq-vae has a codebook");
        self.decode(Code::Conv(cb.lookup(idx, b, hw[0], hw[1])), None)
    }

    /// The learned σ of a VAE's Gaussian likelihood.
    pub fn likelihood_sigma(&self) -> Option<f64> {
        self.log_sigma
            .as_ref()
            .map(|p| (p.val().into_scalar::<f32>() as f64).exp())
    }

    fn raw_encode(&self, x: Tensor<4>) -> Code {
        match &self.encoder {
            Encoder::Conv(e) => Code::Conv(e.forward(x)),
            Encoder::Dense(e) => Code::Dense(e.forward(x)),
            Encoder::Bottleneck(e) => Code::Dense(e.forward(x)),
            Encoder::Pixel(e) => Code::Conv(e.forward(x)),
            Encoder::UnetAe(e) => {
                let (z, s) = e.forward(x);
                Code::Unet(z, s)
            }
        }
    }

    fn run(decoder: &Decoder, z: Code) -> Tensor<4> {
        match (decoder, z) {
            (Decoder::Conv(d), Code::Conv(z)) => d.forward(z),
            (Decoder::Dense(d), Code::Dense(z)) => d.forward(z),
            (Decoder::Bottleneck(d), Code::Dense(z)) => d.forward(z),
            (Decoder::Pixel(d), Code::Conv(z)) => d.forward(z),
            (Decoder::UnetAe(d), Code::Unet(z, s)) => d.forward(z, &s),
            _ => unreachable!("a model decodes only its own codes"),
        }
    }

    /// The mean decoder on the code with its first `eta` channels/units kept (None = all).
    pub fn decode(&self, z: Code, eta: Option<usize>) -> Tensor<4> {
        Self::run(&self.decoder, z.masked(eta))
    }

    /// σ² = softplus(variance decoder) + eps; None for a model without a variance decoder.
    pub fn variance(&self, z: Code, eta: Option<usize>, eps: f64) -> Option<Tensor<4>> {
        let d = self.var_decoder.as_ref()?;
        Some(softplus(Self::run(d, z.masked(eta)), 1.0).add_scalar(eps))
    }

    /// Reconstruction with the first `eta` latent channels/units kept (None = all).
    pub fn reconstruct(&self, x: Tensor<4>, eta: Option<usize>) -> Tensor<4> {
        self.decode(self.encode(x), eta)
    }

    /// Mean and (meanvar) variance of the reconstruction.
    pub fn predict(
        &self,
        x: Tensor<4>,
        eta: Option<usize>,
        eps: f64,
    ) -> (Tensor<4>, Option<Tensor<4>>) {
        let z = self.encode(x);
        let var = self.variance(z.clone(), eta, eps);
        (self.decode(z, eta), var)
    }

    /// The training loss of one batch: the reconstruction loss (tunable models average it at a
    /// random η and at the full code, see [`crate::tunable`]) plus, for meanvar, the Gaussian NLL
    /// of the variance decoder fed the detached code and scored against the detached μ — so its
    /// gradients reach the variance decoder only and the mean path ignores it.
    pub fn training_loss(
        &self,
        cfg: &ModelConfig,
        x: Tensor<4>,
        y: Tensor<4>,
        loss: Loss,
        step: usize,
        rng: &mut impl Rng,
    ) -> Tensor<1> {
        if cfg.rate() {
            return self.rate_loss(cfg, x, y, rng);
        }
        match cfg {
            ModelConfig::Vae {
                beta, anneal_steps, ..
            } => {
                let b = if *anneal_steps > 0 {
                    beta * ((step + 1) as f64 / *anneal_steps as f64).min(1.0)
                } else {
                    *beta
                };
                let (recon, kl) = self.vae_terms(x, y, loss, rng);
                return recon + kl.mul_scalar(b);
            }
            ModelConfig::VqVae {
                commitment, ema, ..
            } => {
                let cb = self.codebook.as_ref().expect("a vq-vae has a codebook");
                let Code::Conv(ze) = self.raw_encode(x) else {
                    unreachable!("a vq-vae's encoder is convolutional")
                };
                let q = cb.quantise(ze);
                let out = self.decode(Code::Conv(q.z), None);
                let total = loss.forward(out, y) + q.commitment_loss.mul_scalar(*commitment);
                // An EMA codebook moves by its averages, not by a loss.
                return if ema.is_some() {
                    total
                } else {
                    total + q.codebook_loss
                };
            }
            ModelConfig::PixelAe { focal, counts, .. } => {
                let out = self.reconstruct(x, None);
                let mut total = loss.forward(out.clone(), y.clone());
                if let Some(f) = focal {
                    total = total
                        + focal_frequency_loss(out.clone(), y.clone(), f.alpha)
                            .mul_scalar(f.weight);
                }
                if let (Some(c), Some(b)) = (counts, &self.counts) {
                    // The block learns from the detached output: the autoencoder is the same
                    // with or without it.
                    let pred = linear_counts(out.detach(), Some((b, c.scale)));
                    let truth = linear_counts(y, None);
                    // χ² against a Poisson-like variance scale² + counts: bright cores
                    // would otherwise swamp the sum.
                    let var = truth.clone().clamp_min(0.0).add_scalar(c.scale * c.scale);
                    let err = ((pred - truth).powf_scalar(2.0) / var).mean();
                    total = total + err.mul_scalar(c.weight);
                }
                return total;
            }
            _ => {}
        }
        let z = self.encode(x);
        let mu = self.decode(z.clone(), None);
        let mut total = loss.forward(mu.clone(), y.clone());
        if cfg.tunable() {
            let part = match cfg.prefixes() {
                Prefixes::Random => {
                    let eta = draw_eta(rng, cfg.latent());
                    loss.forward(self.decode(z.clone(), Some(eta)), y.clone())
                }
                Prefixes::All => {
                    let all = Self::run(&self.decoder, z.clone().every_prefix());
                    loss.forward(all, y.clone().repeat_dim(0, cfg.latent()))
                }
            };
            total = (total + part).div_scalar(2.0);
        }
        if let Some(var) = self.variance(z.detach(), None, cfg.eps()) {
            total = total + gaussian_nll(mu.detach(), var, y, 0.0);
        }
        total
    }

    /// The code-length objective of a rate-trained meanvar model, in nats per pixel: latent
    /// (with uniform noise for rounding) under the learned factorized prior, plus the pixels'
    /// Gaussian NLL given μ and σ, plus λ·MSE(μ).
    fn rate_loss(
        &self,
        cfg: &ModelConfig,
        x: Tensor<4>,
        y: Tensor<4>,
        rng: &mut impl Rng,
    ) -> Tensor<1> {
        let [b, _, h, w] = y.dims();
        let z = match self.encode(x) {
            Code::Conv(z) => {
                let dims = z.dims();
                let n: usize = dims.iter().product();
                let u: Vec<f32> = (0..n).map(|_| rng.random::<f32>() - 0.5).collect();
                z.clone() + Tensor::from_data(TensorData::new(u, dims), &z.device())
            }
            _ => panic!("rate training needs a conv-ae base"),
        };
        let p = self
            .prior
            .as_ref()
            .expect("rate-trained models have a prior")
            .likelihood(z.clone());
        let latent = p.log().sum().neg().div_scalar((b * h * w) as f64);
        let code = Code::Conv(z);
        let mu = self.decode(code.clone(), None);
        let var = self
            .variance(code, None, cfg.eps())
            .expect("meanvar models have a variance decoder");
        let nll = gaussian_nll(mu.clone(), var, y.clone(), 0.0).mul_scalar(0.5);
        let mut total = latent + nll;
        if cfg.lambda() > 0.0 {
            total = total + loss_mse(mu, y).mul_scalar(cfg.lambda());
        }
        total
    }

    /// A VAE's two terms on a batch, both in nats per pixel: the reconstruction of one
    /// posterior sample (Gaussian NLL under the learned σ, or the experiment's loss) and the KL
    /// divergence of the posterior from the standard normal prior.
    pub fn vae_terms(
        &self,
        x: Tensor<4>,
        y: Tensor<4>,
        loss: Loss,
        rng: &mut impl Rng,
    ) -> (Tensor<1>, Tensor<1>) {
        let [b, _, h, w] = y.dims();
        let post = self.posterior(x).expect("a vae has a posterior");
        let (mu, lv) = (post.mean.flat(), post.log_var.flat());
        let dims = mu.dims();
        let n = dims[0] * dims[1];
        let e: Vec<f32> = (0..n).map(|_| gauss(rng)).collect();
        let eps = Tensor::from_data(TensorData::new(e, dims), &mu.device());
        let z = mu.clone() + lv.clone().mul_scalar(0.5).exp() * eps;
        let out = self.decode(post.mean.like(z), None);
        let recon = match &self.log_sigma {
            Some(ls) => {
                let ls = ls.val().reshape([1, 1, 1, 1]);
                let inv = ls.clone().mul_scalar(-2.0).exp();
                ((out - y).powf_scalar(2.0) * inv.mul_scalar(0.5) + ls)
                    .mean()
                    .add_scalar(0.5 * (2.0 * std::f64::consts::PI).ln())
            }
            None => loss.forward(out, y),
        };
        let kl = (mu.powf_scalar(2.0) + lv.clone().exp() - lv)
            .add_scalar(-1.0)
            .sum()
            .mul_scalar(0.5 / (b * h * w) as f64);
        (recon, kl)
    }

    /// What a model does between optimizer steps: a VQ-VAE with `restart_every` moves the codes
    /// that no latent vector of this batch chose onto random encoder outputs of the batch.
    pub fn after_step(
        mut self,
        cfg: &ModelConfig,
        x: Tensor<4>,
        step: usize,
        rng: &mut impl Rng,
    ) -> Model {
        let ModelConfig::VqVae {
            restart_every, ema, ..
        } = cfg
        else {
            return self;
        };
        let restart = *restart_every > 0 && (step + 1).is_multiple_of(*restart_every);
        if !restart && ema.is_none() {
            return self;
        }
        let Some(mut cb) = self.codebook.take() else {
            return self;
        };
        let Code::Conv(ze) = self.raw_encode(x.detach()) else {
            unreachable!("a vq-vae's encoder is convolutional")
        };
        let ze = ze.detach();
        let [b, d, h, w] = ze.dims();
        let idx: Vec<i64> = cb
            .nearest_of(ze.clone())
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap_or_default();
        let rows: Vec<f32> = ze
            .permute([0, 2, 3, 1])
            .reshape([b * h * w, d])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        if let Some(g) = ema {
            cb = cb.ema_update(&rows, &idx, d, *g);
        }
        let k = cb.size();
        let mut used = vec![false; k];
        idx.iter().for_each(|&i| used[i as usize] = true);
        if !restart || used.iter().all(|&u| u) {
            self.codebook = Some(cb);
            return self;
        }
        let device = cb.vectors.val().device();
        let vectors = cb.vectors.map(|old| {
            let req = old.is_require_grad();
            let mut v: Vec<f32> = old
                .detach()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            for (c, _) in used.iter().enumerate().filter(|(_, u)| !**u) {
                let r = rng.random_range(0..b * h * w);
                v[c * d..(c + 1) * d].copy_from_slice(&rows[r * d..(r + 1) * d]);
            }
            Tensor::from_data(TensorData::new(v, [k, d]), &device).set_require_grad(req)
        });
        self.codebook = Some(Codebook {
            vectors,
            ema: cb.ema,
        });
        self
    }

    /// Splits the gradients of [`Model::training_loss`] into those of the encoder + mean decoder
    /// and (meanvar) those of the variance decoder, one set per optimizer.
    pub fn split_grads(&self, mut grads: Gradients) -> (GradientsParams, Option<GradientsParams>) {
        let var = self
            .var_decoder
            .as_ref()
            .map(|d| GradientsParams::from_module(&mut grads, d));
        (GradientsParams::from_grads(grads, self), var)
    }
}
