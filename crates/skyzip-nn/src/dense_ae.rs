//! Conv encoder with a fully connected bottleneck of d units (the seed's "1-D" autoencoder).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseAeConfig {
    /// Input side (square images, e.g. 28 or 64).
    pub size: usize,
    /// Channels of the stride-2 conv stages of the encoder (may be empty: a linear AE).
    #[serde(default)]
    pub stages: Vec<usize>,
    /// Hidden units between the conv features and the bottleneck (0 = none).
    #[serde(default)]
    pub hidden: usize,
    /// Bottleneck size d.
    pub latent: usize,
}

#[derive(Module, Debug)]
pub struct DenseAe {
    convs: Vec<Conv2d>,
    enc_fc: Vec<Linear>,
    dec_fc: Vec<Linear>,
    act: Relu,
    size: usize,
}

impl DenseAeConfig {
    pub fn init(&self, device: &Device) -> DenseAe {
        let mut convs = Vec::new();
        let (mut c, mut side) = (1, self.size);
        for &s in &self.stages {
            convs.push(
                Conv2dConfig::new([c, s], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            c = s;
            side = side.div_ceil(2);
        }
        let feat = c * side * side;
        let (mut enc_fc, mut dec_fc) = (Vec::new(), Vec::new());
        let out = self.size * self.size;
        if self.hidden > 0 {
            enc_fc.push(LinearConfig::new(feat, self.hidden).init(device));
            enc_fc.push(LinearConfig::new(self.hidden, self.latent).init(device));
            dec_fc.push(LinearConfig::new(self.latent, self.hidden).init(device));
            dec_fc.push(LinearConfig::new(self.hidden, out).init(device));
        } else {
            enc_fc.push(LinearConfig::new(feat, self.latent).init(device));
            dec_fc.push(LinearConfig::new(self.latent, out).init(device));
        }
        DenseAe {
            convs,
            enc_fc,
            dec_fc,
            act: Relu::new(),
            size: self.size,
        }
    }
}

impl DenseAe {
    /// [b, 1, n, n] → [b, d].
    pub fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for c in &self.convs {
            h = self.act.forward(c.forward(h));
        }
        let [b, c, hh, ww] = h.dims();
        let mut z = h.reshape([b, c * hh * ww]);
        let n = self.enc_fc.len();
        for (i, l) in self.enc_fc.iter().enumerate() {
            z = l.forward(z);
            if i + 1 < n {
                z = self.act.forward(z);
            }
        }
        z
    }
    /// [b, d] → [b, 1, n, n].
    pub fn decode(&self, z: Tensor<2>) -> Tensor<4> {
        let mut h = z;
        let n = self.dec_fc.len();
        for (i, l) in self.dec_fc.iter().enumerate() {
            h = l.forward(h);
            if i + 1 < n {
                h = self.act.forward(h);
            }
        }
        let b = h.dims()[0];
        h.reshape([b, 1, self.size, self.size])
    }
}
