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

/// [b, 1, n, n] → (conv k3 s2 + ReLU)×stages → flatten → (linear + ReLU)* → [b, d].
#[derive(Module, Debug)]
pub struct DenseEncoder {
    convs: Vec<Conv2d>,
    fc: Vec<Linear>,
    act: Relu,
}

/// [b, d] → (linear + ReLU)* → linear → [b, 1, n, n].
#[derive(Module, Debug)]
pub struct DenseDecoder {
    fc: Vec<Linear>,
    act: Relu,
    size: usize,
}

impl DenseAeConfig {
    fn features(&self) -> usize {
        let (mut c, mut side) = (1, self.size);
        for &s in &self.stages {
            c = s;
            side = side.div_ceil(2);
        }
        c * side * side
    }

    pub fn encoder(&self, device: &Device) -> DenseEncoder {
        let mut convs = Vec::new();
        let mut c = 1;
        for &s in &self.stages {
            convs.push(
                Conv2dConfig::new([c, s], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            c = s;
        }
        let feat = self.features();
        let fc = if self.hidden > 0 {
            vec![
                LinearConfig::new(feat, self.hidden).init(device),
                LinearConfig::new(self.hidden, self.latent).init(device),
            ]
        } else {
            vec![LinearConfig::new(feat, self.latent).init(device)]
        };
        DenseEncoder {
            convs,
            fc,
            act: Relu::new(),
        }
    }

    pub fn decoder(&self, device: &Device) -> DenseDecoder {
        let out = self.size * self.size;
        let fc = if self.hidden > 0 {
            vec![
                LinearConfig::new(self.latent, self.hidden).init(device),
                LinearConfig::new(self.hidden, out).init(device),
            ]
        } else {
            vec![LinearConfig::new(self.latent, out).init(device)]
        };
        DenseDecoder {
            fc,
            act: Relu::new(),
            size: self.size,
        }
    }
}

impl DenseEncoder {
    /// [b, 1, n, n] → [b, d].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for c in &self.convs {
            h = self.act.forward(c.forward(h));
        }
        let [b, c, hh, ww] = h.dims();
        let mut z = h.reshape([b, c * hh * ww]);
        let n = self.fc.len();
        for (i, l) in self.fc.iter().enumerate() {
            z = l.forward(z);
            if i + 1 < n {
                z = self.act.forward(z);
            }
        }
        z
    }
}

impl DenseDecoder {
    /// [b, d] → [b, 1, n, n].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let mut h = z;
        let n = self.fc.len();
        for (i, l) in self.fc.iter().enumerate() {
            h = l.forward(h);
            if i + 1 < n {
                h = self.act.forward(h);
            }
        }
        let b = h.dims()[0];
        h.reshape([b, 1, self.size, self.size])
    }
}
