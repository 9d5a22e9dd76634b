//! Fully convolutional autoencoder: an encoder to a [b, K, h/2^s, w/2^s] code and a mirrored
//! decoder, built separately so a model can carry a second (variance) decoder.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{PaddingConfig2d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Settings of a conv autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvAeConfig {
    /// Channels of the stride-1 input convolution.
    pub width: usize,
    /// Channels after each stride-2 stage (one stage per entry: 2^len downsampling).
    pub stages: Vec<usize>,
    /// Latent channels.
    pub latent: usize,
}

impl Default for ConvAeConfig {
    /// The reference net of the benchmark: conv 1→32 k3 s1, 32→64 k3 s2, 64→64 k3 s2, 64→8 k3 s1;
    /// convT 8→64 k4 s2, 64→32 k4 s2, conv 32→1 k3.
    fn default() -> Self {
        ConvAeConfig {
            width: 32,
            stages: vec![64, 64],
            latent: 8,
        }
    }
}

/// conv k3 s1 → (conv k3 s2)×stages → conv k3 s1 to the latent channels; ReLU between.
#[derive(Module, Debug)]
pub struct ConvEncoder {
    convs: Vec<Conv2d>,
    act: Relu,
}

/// (convT k4 s2)×stages → conv k3 s1 to one channel; ReLU between.
#[derive(Module, Debug)]
pub struct ConvDecoder {
    up: Vec<ConvTranspose2d>,
    out: Conv2d,
    act: Relu,
}

fn conv(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl ConvAeConfig {
    /// The input side must be a multiple of this.
    pub fn divisor(&self) -> usize {
        1 << self.stages.len()
    }

    pub fn encoder(&self, device: &Device) -> ConvEncoder {
        let mut convs = vec![conv(1, self.width, 1, device)];
        let mut c = self.width;
        for &s in &self.stages {
            convs.push(conv(c, s, 2, device));
            c = s;
        }
        convs.push(conv(c, self.latent, 1, device));
        ConvEncoder {
            convs,
            act: Relu::new(),
        }
    }

    pub fn decoder(&self, device: &Device) -> ConvDecoder {
        // Mirror: up-stages to the stage widths in reverse, ending at `width`.
        let mut outs: Vec<usize> = self.stages.iter().rev().skip(1).copied().collect();
        outs.insert(0, *self.stages.last().unwrap_or(&self.width));
        outs.truncate(self.stages.len());
        if let Some(last) = outs.last_mut() {
            *last = self.width;
        }
        let mut up = Vec::new();
        let mut c = self.latent;
        for &o in &outs {
            up.push(
                ConvTranspose2dConfig::new([c, o], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device),
            );
            c = o;
        }
        ConvDecoder {
            up,
            out: conv(c, 1, 1, device),
            act: Relu::new(),
        }
    }
}

impl ConvEncoder {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.convs.len();
        let mut h = x;
        for (i, c) in self.convs.iter().enumerate() {
            h = c.forward(h);
            if i + 1 < n {
                h = self.act.forward(h);
            }
        }
        h
    }
}

impl ConvDecoder {
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = z;
        for u in &self.up {
            h = self.act.forward(u.forward(h));
        }
        self.out.forward(h)
    }
}
