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
    /// Full resolution only at the ends: the encoder starts from the image's 2×2 blocks as
    /// four channels at half resolution (space-to-depth) in place of its stride-1 input conv
    /// and first stride-2 stage, and each decoder ends at half resolution with four channels,
    /// one per pixel of a 2×2 block (depth-to-space), in place of its last up-stage. About a
    /// third of the multiply-adds per pixel; the codec's speed option.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shuffle: bool,
}

impl Default for ConvAeConfig {
    /// The reference net of the benchmark: conv 1→32 k3 s1, 32→64 k3 s2, 64→64 k3 s2, 64→8 k3 s1;
    /// convT 8→64 k4 s2, 64→32 k4 s2, conv 32→1 k3.
    fn default() -> Self {
        ConvAeConfig {
            width: 32,
            stages: vec![64, 64],
            latent: 8,
            shuffle: false,
        }
    }
}

/// conv k3 s1 → (conv k3 s2)×stages → conv k3 s1 to the latent channels; ReLU between.
#[derive(Module, Debug)]
pub struct ConvEncoder {
    convs: Vec<Conv2d>,
    act: Relu,
    shuffle: bool,
}

/// (convT k4 s2)×stages → conv k3 s1 to one channel; ReLU between.
#[derive(Module, Debug)]
pub struct ConvDecoder {
    up: Vec<ConvTranspose2d>,
    out: Conv2d,
    act: Relu,
    shuffle: bool,
}

/// [b, 1, 2h, 2w] → [b, 4, h, w]: channel 2·dy + dx holds pixel (2y + dy, 2x + dx).
pub fn space_to_depth(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b * c, h / 2, 2, w / 2, 2])
        .permute([0, 2, 4, 1, 3])
        .reshape([b, c * 4, h / 2, w / 2])
}

/// The inverse of [`space_to_depth`].
pub fn depth_to_space(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b * c / 4, 2, 2, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([b, c / 4, h * 2, w * 2])
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
        let (mut convs, mut c, stages) = if self.shuffle && !self.stages.is_empty() {
            // The 2×2 blocks stand for the input conv and the first stride-2 stage.
            (
                vec![conv(4, self.stages[0], 1, device)],
                self.stages[0],
                &self.stages[1..],
            )
        } else {
            (
                vec![conv(1, self.width, 1, device)],
                self.width,
                &self.stages[..],
            )
        };
        for &s in stages {
            convs.push(conv(c, s, 2, device));
            c = s;
        }
        convs.push(conv(c, self.latent, 1, device));
        ConvEncoder {
            convs,
            act: Relu::new(),
            shuffle: self.shuffle && !self.stages.is_empty(),
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
        let shuffle = self.shuffle && !self.stages.is_empty();
        if shuffle {
            // The last up-stage becomes the 2×2 blocks of the output.
            outs.pop();
            if let Some(last) = outs.last_mut() {
                *last = self.width;
            }
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
            out: conv(c, if shuffle { 4 } else { 1 }, 1, device),
            act: Relu::new(),
            shuffle,
        }
    }
}

impl ConvEncoder {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.convs.len();
        let mut h = if self.shuffle { space_to_depth(x) } else { x };
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
        let out = self.out.forward(h);
        if self.shuffle {
            depth_to_space(out)
        } else {
            out
        }
    }
}

#[cfg(test)]
mod shuffle_tests {
    use super::*;

    #[test]
    fn space_to_depth_orders_blocks_and_inverts() {
        let device = Device::flex();
        let v: Vec<f32> = (0..2 * 4 * 6).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 1, 4, 6]), &device);
        let s = space_to_depth(x.clone());
        assert_eq!(s.dims(), [2, 4, 2, 3]);
        let sv = s.clone().into_data().try_to_vec::<f32>().unwrap();
        // Image 1, channel 2·1 + 0 (dy 1, dx 0), block (1, 2): pixel (3, 4).
        assert_eq!(sv[((4 + 2) * 2 + 1) * 3 + 2], v[24 + 3 * 6 + 4]);
        let back = depth_to_space(s).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(back, v);
    }
}
