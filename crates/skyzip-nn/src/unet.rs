//! U-Net point-source segmentation (seed 003, part b): four encoder blocks (3×3 conv + LeakyReLU,
//! dropout, 3×3 conv, batch norm, LeakyReLU, 2×2 max-pool), a bridge, four decoder blocks (3×3
//! transposed conv ×2, concatenation with the encoder's map at that scale, batch norm,
//! LeakyReLU) and a 1×1 conv with a sigmoid: the probability that a pixel holds a point source.
//!
//! The skip connections carry the input around the bridge: fine for segmentation, where the
//! output is a per-pixel label; never for a code (issue 13's U-Net AE makes them switchable).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LeakyRelu, LeakyReluConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetConfig {
    /// Filters of the encoder blocks (the seed: 8, 16, 32, 64); the decoder mirrors them.
    #[serde(default = "default_filters")]
    pub filters: Vec<usize>,
    /// Filters of the bridge (the seed: 128).
    #[serde(default = "default_bridge")]
    pub bridge: usize,
    /// Dropout between each block's two convs (the seed's value is not given; 0.1).
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_filters() -> Vec<usize> {
    vec![8, 16, 32, 64]
}
fn default_bridge() -> usize {
    128
}
fn default_dropout() -> f64 {
    0.1
}

impl Default for UnetConfig {
    fn default() -> Self {
        UnetConfig {
            filters: default_filters(),
            bridge: default_bridge(),
            dropout: default_dropout(),
        }
    }
}

fn conv3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// conv + LeakyReLU, dropout, conv, batch norm, LeakyReLU.
#[derive(Module, Debug)]
pub struct DoubleConv {
    a: Conv2d,
    drop: Dropout,
    b: Conv2d,
    bn: BatchNorm,
    act: LeakyRelu,
}

impl DoubleConv {
    fn new(cin: usize, cout: usize, dropout: f64, device: &Device) -> DoubleConv {
        DoubleConv {
            a: conv3(cin, cout, device),
            drop: DropoutConfig::new(dropout).init(),
            b: conv3(cout, cout, device),
            bn: BatchNormConfig::new(cout).init(device),
            act: LeakyReluConfig::new().init(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.drop.forward(self.act.forward(self.a.forward(x)));
        self.act.forward(self.bn.forward(self.b.forward(h)))
    }
}

/// 3×3 transposed conv ×2, concatenation with the skip, batch norm, LeakyReLU.
#[derive(Module, Debug)]
pub struct Up {
    up: ConvTranspose2d,
    bn: BatchNorm,
    act: LeakyRelu,
}

impl Up {
    fn new(cin: usize, cout: usize, device: &Device) -> Up {
        Up {
            up: ConvTranspose2dConfig::new([cin, cout], [3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_padding_out([1, 1])
                .init(device),
            bn: BatchNormConfig::new(2 * cout).init(device),
            act: LeakyReluConfig::new().init(),
        }
    }

    fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let h = Tensor::cat(vec![self.up.forward(x), skip], 1);
        self.act.forward(self.bn.forward(h))
    }
}

#[derive(Module, Debug)]
pub struct Unet {
    down: Vec<DoubleConv>,
    pool: MaxPool2d,
    bridge: DoubleConv,
    up: Vec<Up>,
    out: Conv2d,
}

impl UnetConfig {
    /// The input side must be a multiple of this.
    pub fn divisor(&self) -> usize {
        1 << self.filters.len()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.filters.is_empty() || self.filters.contains(&0) || self.bridge == 0 {
            return Err("unet-segmenter: filters and bridge must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "unet-segmenter: dropout {} not in [0, 1)",
                self.dropout
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Unet {
        let mut down = Vec::new();
        let mut c = 1;
        for &f in &self.filters {
            down.push(DoubleConv::new(c, f, self.dropout, device));
            c = f;
        }
        let bridge = DoubleConv::new(c, self.bridge, self.dropout, device);
        let mut up = Vec::new();
        let mut c = self.bridge;
        for &f in self.filters.iter().rev() {
            up.push(Up::new(c, f, device));
            c = 2 * f;
        }
        Unet {
            down,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            bridge,
            up,
            out: Conv2dConfig::new([c, 1], [1, 1]).init(device),
        }
    }
}

impl Unet {
    /// The logits of the point-source probability, [b, 1, h, w].
    pub fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::new();
        let mut h = x;
        for d in &self.down {
            let s = d.forward(h);
            h = self.pool.forward(s.clone());
            skips.push(s);
        }
        h = self.bridge.forward(h);
        for (u, s) in self.up.iter().zip(skips.into_iter().rev()) {
            h = u.forward(h, s);
        }
        self.out.forward(h)
    }

    /// The point-source probability of every pixel, [b, 1, h, w].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        sigmoid(self.logits(x))
    }
}
