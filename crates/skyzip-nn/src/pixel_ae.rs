//! Seed 000's pixel autoencoder: residual blocks after the Keras PixelCNN example (1×1 conv to
//! half the channels, a 3×3 conv, a 1×1 conv back, added to the input; ReLU before each conv),
//! in a fully convolutional encoder to a [b, K, h/2^s, w/2^s] code and its mirror, trained on
//! log10-normalised counts with the focal frequency loss (Jiang et al. 2021) beside the pixel
//! loss; and the seed's second residual block, which maps the normalised output back to counts.
//!
//! The PixelCNN example's 3×3 convolutions are *masked* (each output sees only pixels above and
//! to the left), which is what makes a PixelCNN autoregressive. An autoencoder decodes all pixels
//! from its code at once, so the mask would only blind it; the blocks here are unmasked. With
//! `gated`, the 3×3 conv gives twice the channels and the block takes tanh(a)·σ(b) of the halves
//! (the gated activation of van den Oord et al. 2016) instead of ReLU.
//!
//! The counts block sees the autoencoder's normalised output ŷ (detached: it never changes the
//! autoencoder, so one run scores the model with and without it) and adds a learned correction
//! in counts: ĉ = 10^ŷ + scale·r(ŷ). Because the data are log10(x − min + offset), 10^ŷ − 10^y is
//! the error in counts whatever each image's shift. The block is trained on the squared error in
//! counts, as the seed's was, but divided by a Poisson-like variance scale² + 10^y (a χ²), so
//! that a few saturated cores of 10⁴–10⁵ counts do not swamp the sum.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid, tanh};
use serde::{Deserialize, Serialize};

/// Settings of the pixel autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelAeConfig {
    /// Channels of the 7×7 input convolution.
    #[serde(default = "default_width")]
    pub width: usize,
    /// Channels after each stride-2 stage (2^len downsampling).
    #[serde(default = "default_stages")]
    pub stages: Vec<usize>,
    /// Residual blocks at each scale (input scale, after each stage).
    #[serde(default = "default_blocks")]
    pub blocks: usize,
    /// Latent channels.
    pub latent: usize,
    /// Gated activations in the residual blocks.
    #[serde(default)]
    pub gated: bool,
}

fn default_width() -> usize {
    32
}
fn default_stages() -> Vec<usize> {
    vec![64, 64, 64]
}
fn default_blocks() -> usize {
    1
}

/// The focal frequency loss term: `weight`·FFL with spectrum weights |ΔF|^`alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FocalConfig {
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default = "one")]
    pub alpha: f64,
}

/// The second residual block, from the normalised output to counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsConfig {
    #[serde(default = "default_counts_width")]
    pub width: usize,
    #[serde(default = "default_counts_blocks")]
    pub blocks: usize,
    /// Counts per unit of the block's output, and the noise floor of its loss (≈ the
    /// background σ in counts).
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// Weight of its loss beside the autoencoder's.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}
fn default_counts_width() -> usize {
    16
}
fn default_counts_blocks() -> usize {
    2
}
fn default_scale() -> f64 {
    10.0
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// x + conv1×1(act(conv3×3(act(conv1×1(act(x)))))), halving the channels inside.
#[derive(Module, Debug)]
pub struct ResBlock {
    reduce: Conv2d,
    mid: Conv2d,
    expand: Conv2d,
    gated: bool,
}

impl ResBlock {
    pub fn new(c: usize, gated: bool, device: &Device) -> ResBlock {
        let h = (c / 2).max(1);
        ResBlock {
            reduce: conv(c, h, 1, 1, device),
            mid: conv(h, if gated { 2 * h } else { h }, 3, 1, device),
            expand: conv(h, c, 1, 1, device),
            gated,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.reduce.forward(relu(x.clone()));
        let h = self.mid.forward(relu(h));
        let h = if self.gated {
            let c = h.dims()[1] / 2;
            tanh(h.clone().narrow(1, 0, c)) * sigmoid(h.narrow(1, c, c))
        } else {
            relu(h)
        };
        x + self.expand.forward(h)
    }
}

fn blocks(c: usize, n: usize, gated: bool, device: &Device) -> Vec<ResBlock> {
    (0..n).map(|_| ResBlock::new(c, gated, device)).collect()
}

fn run(bs: &[ResBlock], mut h: Tensor<4>) -> Tensor<4> {
    for b in bs {
        h = b.forward(h);
    }
    h
}

/// conv 7×7 → blocks → (stride-2 conv → blocks)×stages → 1×1 conv to the latent.
#[derive(Module, Debug)]
pub struct PixelEncoder {
    input: Conv2d,
    first: Vec<ResBlock>,
    downs: Vec<Conv2d>,
    stages: Vec<Vec<ResBlock>>,
    out: Conv2d,
}

/// 1×1 conv from the latent → blocks → (transposed stride-2 conv → blocks)×stages → 3×3 conv
/// to one channel (linear: log counts are not bounded).
#[derive(Module, Debug)]
pub struct PixelDecoder {
    input: Conv2d,
    first: Vec<ResBlock>,
    ups: Vec<ConvTranspose2d>,
    stages: Vec<Vec<ResBlock>>,
    out: Conv2d,
}

/// The second residual block: normalised image → a correction in units of `scale` counts.
#[derive(Module, Debug)]
pub struct CountsBlock {
    input: Conv2d,
    body: Vec<ResBlock>,
    out: Conv2d,
}

impl PixelAeConfig {
    pub fn divisor(&self) -> usize {
        1 << self.stages.len()
    }

    pub fn check(&self) -> Result<(), String> {
        if self.width < 2 || self.latent == 0 || self.stages.iter().any(|&c| c < 2) {
            return Err("pixel-ae: width and stage channels at least 2, latent at least 1".into());
        }
        Ok(())
    }

    pub fn encoder(&self, device: &Device) -> PixelEncoder {
        let mut c = self.width;
        let mut downs = Vec::new();
        let mut stages = Vec::new();
        for &s in &self.stages {
            downs.push(conv(c, s, 3, 2, device));
            stages.push(blocks(s, self.blocks, self.gated, device));
            c = s;
        }
        PixelEncoder {
            input: conv(1, self.width, 7, 1, device),
            first: blocks(self.width, self.blocks, self.gated, device),
            downs,
            stages,
            out: conv(c, self.latent, 1, 1, device),
        }
    }

    pub fn decoder(&self, device: &Device) -> PixelDecoder {
        let mut chans = vec![self.width];
        chans.extend(&self.stages);
        let last = *chans.last().unwrap_or(&self.width);
        let mut ups = Vec::new();
        let mut stages = Vec::new();
        for k in (1..chans.len()).rev() {
            ups.push(
                ConvTranspose2dConfig::new([chans[k], chans[k - 1]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .init(device),
            );
            stages.push(blocks(chans[k - 1], self.blocks, self.gated, device));
        }
        PixelDecoder {
            input: conv(self.latent, last, 1, 1, device),
            first: blocks(last, self.blocks, self.gated, device),
            ups,
            stages,
            out: conv(self.width, 1, 3, 1, device),
        }
    }
}

impl CountsConfig {
    pub fn init(&self, gated: bool, device: &Device) -> CountsBlock {
        CountsBlock {
            input: conv(1, self.width, 3, 1, device),
            body: blocks(self.width, self.blocks, gated, device),
            out: conv(self.width, 1, 1, 1, device),
        }
    }
}

impl PixelEncoder {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = run(&self.first, self.input.forward(x));
        for (d, s) in self.downs.iter().zip(&self.stages) {
            h = run(s, d.forward(relu(h)));
        }
        self.out.forward(relu(h))
    }
}

impl PixelDecoder {
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = run(&self.first, self.input.forward(z));
        for (u, s) in self.ups.iter().zip(&self.stages) {
            h = run(s, u.forward(relu(h)));
        }
        self.out.forward(relu(h))
    }
}

impl CountsBlock {
    pub fn forward(&self, y: Tensor<4>) -> Tensor<4> {
        let h = run(&self.body, self.input.forward(y));
        self.out.forward(relu(h))
    }
}

/// Counts above each image's shift predicted from the normalised output ŷ: 10^ŷ without the
/// block, 10^ŷ + scale·r(ŷ) with it (ŷ clamped to [−3, 5.5] so that 10^ŷ stays finite).
pub fn linear_counts(y: Tensor<4>, block: Option<(&CountsBlock, f64)>) -> Tensor<4> {
    let y = y.clamp(-3.0, 5.5);
    let lin = y.clone().mul_scalar(std::f64::consts::LN_10).exp();
    match block {
        Some((b, scale)) => lin + b.forward(y).mul_scalar(scale),
        None => lin,
    }
}

/// cos and sin of the orthonormal DFT of length n: [n, n] each.
fn dft(n: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let s = 1.0 / (n as f64).sqrt();
    let mut c = vec![0f32; n * n];
    let mut si = vec![0f32; n * n];
    for k in 0..n {
        for j in 0..n {
            // k·j mod n keeps the angle small and exact.
            let a = 2.0 * std::f64::consts::PI * ((k * j) % n) as f64 / n as f64;
            c[k * n + j] = (a.cos() * s) as f32;
            si[k * n + j] = (a.sin() * s) as f32;
        }
    }
    (
        Tensor::from_data(TensorData::new(c, [n, n]), device),
        Tensor::from_data(TensorData::new(si, [n, n]), device),
    )
}

/// The focal frequency loss (Jiang et al. 2021) of `pred` against `target` ([b, 1, h, w]):
/// the mean over images and frequencies of w·|F(pred) − F(target)|², F the orthonormal 2-D DFT
/// and w = |ΔF|^α divided by its maximum in each image (no gradient through w). Without the
/// weights it equals the MSE (Parseval); the weights focus it on the frequencies reproduced
/// worst. The DFT is two matrix products per axis.
pub fn focal_frequency_loss(pred: Tensor<4>, target: Tensor<4>, alpha: f64) -> Tensor<1> {
    let [b, c, h, w] = pred.dims();
    let device = pred.device();
    let (cw, sw) = dft(w, &device);
    let (ch, sh) = dft(h, &device);
    // F is linear, so ΔF = F(pred − target).
    let d = (pred - target).reshape([b * c * h, w]);
    // Along x: A = D·C, B = D·S (each row of D a row of the image).
    let a = d.clone().matmul(cw);
    let bb = d.matmul(sw);
    // Along y: transpose each image, multiply, and F = C_y A − S_y B − i (C_y B + S_y A).
    let t = |m: Tensor<2>| {
        m.reshape([b * c, h, w])
            .swap_dims(1, 2)
            .reshape([b * c * w, h])
    };
    let (at, bt) = (t(a), t(bb));
    let re = at.clone().matmul(ch.clone()) - bt.clone().matmul(sh.clone());
    let im = bt.matmul(ch) + at.matmul(sh);
    let fd = (re.powf_scalar(2.0) + im.powf_scalar(2.0)).reshape([b * c, w * h]);
    let wgt = fd.clone().detach().sqrt().powf_scalar(alpha);
    let max = wgt.clone().max_dim(1).clamp_min(1e-12);
    let wgt = wgt / max;
    (wgt * fd).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: Vec<f32>, b: usize, n: usize) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, [b, 1, n, n]), &Device::flex())
    }

    #[test]
    fn focal_loss_of_one_frequency_is_its_mean_power() {
        // A single 2-D cosine puts all its power in two conjugate bins of equal |ΔF|: both get
        // weight 1, every other bin 0, so FFL = MSE (Parseval), and a zero error gives 0.
        let n = 16;
        let v: Vec<f32> = (0..n * n)
            .map(|i| {
                let (y, x) = (i / n, i % n);
                (2.0 * std::f64::consts::PI * (3 * x + 5 * y) as f64 / n as f64).cos() as f32
            })
            .collect();
        let mse = v.iter().map(|x| (x * x) as f64).sum::<f64>() / (n * n) as f64;
        let z = vec![0f32; n * n];
        let ffl = focal_frequency_loss(t(v.clone(), 1, n), t(z.clone(), 1, n), 1.0)
            .into_scalar::<f32>() as f64;
        assert!((ffl - mse).abs() < 1e-4 * mse, "{ffl} vs {mse}");
        let zero = focal_frequency_loss(t(v.clone(), 1, n), t(v, 1, n), 1.0).into_scalar::<f32>();
        assert!(zero.abs() < 1e-9);
        // α = 0: every bin weighs 1 and the loss is the MSE for any error.
        let r: Vec<f32> = (0..n * n)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0)
            .collect();
        let m2 = r.iter().map(|x| (x * x) as f64).sum::<f64>() / (n * n) as f64;
        let f0 = focal_frequency_loss(t(r, 1, n), t(z, 1, n), 0.0).into_scalar::<f32>() as f64;
        assert!((f0 - m2).abs() < 1e-4 * m2, "{f0} vs {m2}");
    }

    #[test]
    fn shapes_round_trip() {
        let cfg = PixelAeConfig {
            width: 8,
            stages: vec![8, 8],
            blocks: 1,
            latent: 2,
            gated: true,
        };
        let d = Device::flex();
        let x = Tensor::<4>::zeros([2, 1, 16, 16], &d);
        let z = cfg.encoder(&d).forward(x);
        assert_eq!(z.dims(), [2, 2, 4, 4]);
        assert_eq!(cfg.decoder(&d).forward(z).dims(), [2, 1, 16, 16]);
    }
}
