//! A conv stack with batch norm and LeakyReLU, then fully connected layers to a small vector code,
//! and the mirror image back: seed 003's denoising autoencoder (part c). Its encoder is six
//! 3×3 convs 1→8→16→16→32→64→64 with strides 2, 2, 2, 2, 1, 1, then 4·4·64 → 128 → 6 (each
//! followed by LeakyReLU, as the seed's code has it); the decoder retraces the same layers with
//! transposed convs where the encoder had stride 2, and no activation at the output.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, LeakyRelu, LeakyReluConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BottleneckAeConfig {
    /// Input side (square images).
    pub size: usize,
    /// Output channels of the encoder's convs.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Their strides (1 or 2).
    #[serde(default = "default_strides")]
    pub strides: Vec<usize>,
    /// Units of the fully connected layer before the code.
    #[serde(default = "default_fc")]
    pub fc: usize,
    /// Code size.
    pub latent: usize,
}

fn default_channels() -> Vec<usize> {
    vec![8, 16, 16, 32, 64, 64]
}
fn default_strides() -> Vec<usize> {
    vec![2, 2, 2, 2, 1, 1]
}
fn default_fc() -> usize {
    128
}

impl BottleneckAeConfig {
    fn downsampling(&self) -> usize {
        self.strides.iter().product()
    }

    /// The input side must be a multiple of this.
    pub fn divisor(&self) -> usize {
        self.downsampling()
    }

    fn features(&self) -> usize {
        let side = self.size / self.downsampling();
        self.channels.last().copied().unwrap_or(1) * side * side
    }

    pub fn check(&self) -> Result<(), String> {
        if self.channels.len() != self.strides.len() || self.channels.is_empty() {
            return Err("bottleneck-ae: one stride per conv channel count".into());
        }
        if self.strides.iter().any(|s| !matches!(s, 1 | 2)) {
            return Err("bottleneck-ae: strides must be 1 or 2".into());
        }
        if self.latent == 0 || self.fc == 0 || !self.size.is_multiple_of(self.downsampling()) {
            return Err(format!(
                "bottleneck-ae: latent and fc must be positive and size {} a multiple of {}",
                self.size,
                self.downsampling()
            ));
        }
        Ok(())
    }

    pub fn encoder(&self, device: &Device) -> BottleneckEncoder {
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        let mut c = 1;
        for (&o, &s) in self.channels.iter().zip(&self.strides) {
            convs.push(
                Conv2dConfig::new([c, o], [3, 3])
                    .with_stride([s, s])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
            norms.push(BatchNormConfig::new(o).init(device));
            c = o;
        }
        BottleneckEncoder {
            convs,
            norms,
            fc1: LinearConfig::new(self.features(), self.fc).init(device),
            fc2: LinearConfig::new(self.fc, self.latent).init(device),
            act: LeakyReluConfig::new().init(),
        }
    }

    pub fn decoder(&self, device: &Device) -> BottleneckDecoder {
        // The encoder's layers backwards: (in, out, stride) of each, in and out swapped.
        let mut ins = vec![1];
        ins.extend(self.channels.iter().take(self.channels.len() - 1));
        let layers: Vec<(usize, usize, usize)> = self
            .channels
            .iter()
            .zip(&ins)
            .zip(&self.strides)
            .map(|((&o, &i), &s)| (o, i, s))
            .rev()
            .collect();
        let n = layers.len();
        let mut ups = Vec::new();
        let mut norms = Vec::new();
        for (k, &(cin, cout, s)) in layers.iter().enumerate() {
            ups.push(
                ConvTranspose2dConfig::new([cin, cout], [3, 3])
                    .with_stride([s, s])
                    .with_padding([1, 1])
                    .with_padding_out([s - 1, s - 1])
                    .init(device),
            );
            if k + 1 < n {
                norms.push(BatchNormConfig::new(cout).init(device));
            }
        }
        let side = self.size / self.downsampling();
        BottleneckDecoder {
            fc1: LinearConfig::new(self.latent, self.fc).init(device),
            fc2: LinearConfig::new(self.fc, self.features()).init(device),
            ups,
            norms,
            act: LeakyReluConfig::new().init(),
            shape: [self.channels.last().copied().unwrap_or(1), side, side],
        }
    }
}

/// [b, 1, n, n] → [b, latent].
#[derive(Module, Debug)]
pub struct BottleneckEncoder {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    fc1: Linear,
    fc2: Linear,
    act: LeakyRelu,
}

/// [b, latent] → [b, 1, n, n].
#[derive(Module, Debug)]
pub struct BottleneckDecoder {
    fc1: Linear,
    fc2: Linear,
    ups: Vec<ConvTranspose2d>,
    norms: Vec<BatchNorm>,
    act: LeakyRelu,
    shape: [usize; 3],
}

impl BottleneckEncoder {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for (c, bn) in self.convs.iter().zip(&self.norms) {
            h = self.act.forward(bn.forward(c.forward(h)));
        }
        let [b, c, hh, ww] = h.dims();
        let z = self
            .act
            .forward(self.fc1.forward(h.reshape([b, c * hh * ww])));
        self.act.forward(self.fc2.forward(z))
    }
}

impl BottleneckDecoder {
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let b = z.dims()[0];
        let h = self.act.forward(self.fc1.forward(z));
        let h = self.act.forward(self.fc2.forward(h));
        let [c, s, _] = self.shape;
        let mut h = h.reshape([b, c, s, s]);
        let n = self.ups.len();
        for (k, u) in self.ups.iter().enumerate() {
            h = u.forward(h);
            if k + 1 < n {
                h = self.act.forward(self.norms[k].forward(h));
            }
        }
        h
    }
}
