//! Seed 001's U-Net autoencoder: four encoder blocks (two 3×3 convs with batch norm and ReLU,
//! then a 2×2 max-pool) of 16, 32, 64, 128 filters, a fully connected layer to an 8-number code,
//! and a decoder from the code (fully connected, reshaped) through transposed-conv up-blocks to a
//! sigmoid output.
//!
//! With `skips`, each up-block also concatenates the encoder's feature map of its scale, as the
//! seed's net did. Those maps carry the image around the 8 numbers (at 192×192, 16·192² +
//! 32·96² + 64·48² + 128·24² = 1,105,920 values per image against 8), so a skip model's error
//! says nothing about its code: [`crate::model::Code::without_skips`] zeroes them to measure the
//! code alone, and the codec refuses such a model.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetAeConfig {
    /// Input side (square, a multiple of 2^levels; the seed resized to 187, we take 192).
    pub size: usize,
    #[serde(default = "default_filters")]
    pub filters: Vec<usize>,
    /// Code size (the seed's 8).
    #[serde(default = "default_latent")]
    pub latent: usize,
    /// Whether the decoder sees the encoder's feature maps (the seed's net did).
    #[serde(default = "default_true")]
    pub skips: bool,
}

fn default_filters() -> Vec<usize> {
    vec![16, 32, 64, 128]
}
fn default_latent() -> usize {
    8
}
fn default_true() -> bool {
    true
}

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// (3×3 conv, batch norm, ReLU) twice.
#[derive(Module, Debug)]
pub struct Block {
    a: Conv2d,
    bn_a: BatchNorm,
    b: Conv2d,
    bn_b: BatchNorm,
    act: Relu,
}

impl Block {
    fn new(cin: usize, cout: usize, device: &Device) -> Block {
        Block {
            a: conv3(cin, cout, device),
            bn_a: BatchNormConfig::new(cout).init(device),
            b: conv3(cout, cout, device),
            bn_b: BatchNormConfig::new(cout).init(device),
            act: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.act.forward(self.bn_a.forward(self.a.forward(x)));
        self.act.forward(self.bn_b.forward(self.b.forward(h)))
    }
}

/// [b, 1, n, n] → the code [b, latent] and the feature map of every block, finest first.
#[derive(Module, Debug)]
pub struct UnetAeEncoder {
    blocks: Vec<Block>,
    pool: MaxPool2d,
    fc: Linear,
}

/// The code (and the skip maps, or zeros) → [b, 1, n, n] in (0, 1).
#[derive(Module, Debug)]
pub struct UnetAeDecoder {
    fc: Linear,
    ups: Vec<ConvTranspose2d>,
    blocks: Vec<Block>,
    out: Conv2d,
    shape: [usize; 3],
    skips: bool,
}

impl UnetAeConfig {
    pub fn divisor(&self) -> usize {
        1 << self.filters.len()
    }

    fn bottom(&self) -> [usize; 3] {
        let side = self.size / self.divisor();
        [*self.filters.last().unwrap_or(&1), side, side]
    }

    /// How many numbers the skip maps carry per image (0 without skips).
    pub fn skip_values(&self) -> usize {
        if !self.skips {
            return 0;
        }
        self.filters
            .iter()
            .enumerate()
            .map(|(k, &f)| f * (self.size >> k) * (self.size >> k))
            .sum()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.filters.is_empty() || self.filters.contains(&0) || self.latent == 0 {
            return Err("unet-ae: filters and latent must be positive".into());
        }
        if self.size == 0 || !self.size.is_multiple_of(self.divisor()) {
            return Err(format!(
                "unet-ae: size {} must be a multiple of {}",
                self.size,
                self.divisor()
            ));
        }
        Ok(())
    }

    pub fn encoder(&self, device: &Device) -> UnetAeEncoder {
        let mut blocks = Vec::new();
        let mut c = 1;
        for &f in &self.filters {
            blocks.push(Block::new(c, f, device));
            c = f;
        }
        let [bc, s, _] = self.bottom();
        UnetAeEncoder {
            blocks,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc: LinearConfig::new(bc * s * s, self.latent).init(device),
        }
    }

    pub fn decoder(&self, device: &Device) -> UnetAeDecoder {
        let [bc, s, _] = self.bottom();
        let mut ups = Vec::new();
        let mut blocks = Vec::new();
        let mut c = bc;
        for &f in self.filters.iter().rev() {
            ups.push(
                ConvTranspose2dConfig::new([c, f], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            );
            let cin = if self.skips { 2 * f } else { f };
            blocks.push(Block::new(cin, f, device));
            c = f;
        }
        UnetAeDecoder {
            fc: LinearConfig::new(self.latent, bc * s * s).init(device),
            ups,
            blocks,
            out: Conv2dConfig::new([c, 1], [1, 1]).init(device),
            shape: [bc, s, s],
            skips: self.skips,
        }
    }
}

impl UnetAeEncoder {
    /// The code and, finest first, every block's feature map before its pool.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Vec<Tensor<4>>) {
        let mut skips = Vec::with_capacity(self.blocks.len());
        let mut h = x;
        for b in &self.blocks {
            let f = b.forward(h);
            h = self.pool.forward(f.clone());
            skips.push(f);
        }
        let [n, c, hh, ww] = h.dims();
        (self.fc.forward(h.reshape([n, c * hh * ww])), skips)
    }
}

impl UnetAeDecoder {
    /// Decodes the code; `skips` (finest first) are concatenated into the up-blocks when the
    /// model was built with them (pass zeros to measure the code alone).
    pub fn forward(&self, z: Tensor<2>, skips: &[Tensor<4>]) -> Tensor<4> {
        let b = z.dims()[0];
        let [c, s, _] = self.shape;
        let mut h = self.fc.forward(z).reshape([b, c, s, s]);
        let n = self.ups.len();
        for (k, (up, block)) in self.ups.iter().zip(&self.blocks).enumerate() {
            h = up.forward(h);
            if self.skips {
                h = Tensor::cat(vec![h, skips[n - 1 - k].clone()], 1);
            }
            h = block.forward(h);
        }
        sigmoid(self.out.forward(h))
    }
}
