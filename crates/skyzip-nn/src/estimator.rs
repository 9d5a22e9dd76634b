//! CNN parameter estimation (seed 003, part a): a conv trunk (conv + ReLU, max-pools between
//! blocks), fully connected layers shared by every output, and one linear head per output.
//!
//! The seed's single-output net is `channels [32, 64, 128, 128, 64, 32]`, pools after the 2nd,
//! 4th and 5th conv, `hidden [512, 128]` (1,447,393 parameters for one output); its deeper,
//! narrower multi-output net is `channels [16, 32, 64, 128, 128, 32, 32, 32]`, kernels 3 but 5
//! for the last two, pools after every second conv, `hidden [128, 16]` (400,658 for two outputs).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, LeakyRelu, LeakyReluConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimatorConfig {
    /// Input side (square images).
    pub size: usize,
    /// Output channels of each conv (stride 1, "same" padding), ReLU after each.
    pub channels: Vec<usize>,
    /// Kernel side of each conv (default: 3 for all).
    #[serde(default)]
    pub kernels: Vec<usize>,
    /// 2×2 max-pool after these convs (0-based).
    pub pool_after: Vec<usize>,
    /// Fully connected layers after flattening, ReLU after each; shared by every output.
    pub hidden: Vec<usize>,
    /// The parameters predicted, by the dataset's names (e.g. ["A_dm", "n_ps_gc+n_ps_disk"]).
    pub outputs: Vec<String>,
    /// The slope of the activations below 0: 0 is the seed's ReLU; a LeakyReLU's small slope
    /// keeps units from dying.
    #[serde(default)]
    pub negative_slope: f64,
    /// Batch norm after every conv (not in the seed's nets: it trains in far fewer steps).
    #[serde(default)]
    pub batch_norm: bool,
}

impl EstimatorConfig {
    fn kernel(&self, i: usize) -> usize {
        self.kernels.get(i).copied().unwrap_or(3)
    }

    /// The side of the feature maps after the trunk.
    pub fn trunk_side(&self) -> usize {
        self.size >> self.pool_after.len()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.channels.is_empty() || self.outputs.is_empty() {
            return Err("cnn-estimator: channels and outputs must not be empty".into());
        }
        if !self.kernels.is_empty() && self.kernels.len() != self.channels.len() {
            return Err(format!(
                "cnn-estimator: {} kernels for {} convs",
                self.kernels.len(),
                self.channels.len()
            ));
        }
        if self.kernels.iter().any(|k| k % 2 == 0) {
            return Err("cnn-estimator: kernels must be odd".into());
        }
        if let Some(p) = self.pool_after.iter().find(|&&p| p >= self.channels.len()) {
            return Err(format!(
                "cnn-estimator: pool_after {p} is past the last conv"
            ));
        }
        if self.trunk_side() == 0 || !self.size.is_multiple_of(1 << self.pool_after.len()) {
            return Err(format!(
                "cnn-estimator: {} pools do not fit images of side {}",
                self.pool_after.len(),
                self.size
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Estimator {
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        let mut c = 1;
        for (i, &o) in self.channels.iter().enumerate() {
            if self.batch_norm {
                norms.push(BatchNormConfig::new(o).init(device));
            }
            let k = self.kernel(i);
            let p = k / 2;
            convs.push(
                Conv2dConfig::new([c, o], [k, k])
                    .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                    .init(device),
            );
            c = o;
        }
        let side = self.trunk_side();
        let mut f = c * side * side;
        let mut hidden = Vec::new();
        for &h in &self.hidden {
            hidden.push(LinearConfig::new(f, h).init(device));
            f = h;
        }
        let heads = self
            .outputs
            .iter()
            .map(|_| LinearConfig::new(f, 1).init(device))
            .collect();
        Estimator {
            convs,
            norms,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool_after: self.pool_after.clone(),
            hidden,
            heads,
            act: LeakyReluConfig::new()
                .with_negative_slope(self.negative_slope)
                .init(),
        }
    }
}

/// [b, 1, n, n] → [b, outputs].
#[derive(Module, Debug)]
pub struct Estimator {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    pool: MaxPool2d,
    pool_after: Vec<usize>,
    hidden: Vec<Linear>,
    heads: Vec<Linear>,
    act: LeakyRelu,
}

impl Estimator {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for (i, c) in self.convs.iter().enumerate() {
            h = c.forward(h);
            if let Some(bn) = self.norms.get(i) {
                h = bn.forward(h);
            }
            h = self.act.forward(h);
            if self.pool_after.contains(&i) {
                h = self.pool.forward(h);
            }
        }
        let [b, c, hh, ww] = h.dims();
        let mut z = h.reshape([b, c * hh * ww]);
        for l in &self.hidden {
            z = self.act.forward(l.forward(z));
        }
        let outs: Vec<Tensor<2>> = self.heads.iter().map(|l| l.forward(z.clone())).collect();
        Tensor::cat(outs, 1)
    }
}
