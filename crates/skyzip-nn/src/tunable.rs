//! Tunable rate: a prefix mask η over latent units (dense) or channels (fully convolutional).
//!
//! Training draws η per batch. A uniform η alone trains the full code (η = K) only 1/K of the
//! time and the largest prefixes least, so the decoder never learns to use the last channels
//! well: the error is then not lowest at η = K but at some intermediate η (the seed's "behaves
//! unexpectedly"). skyzip's schedule evaluates every batch at a random η *and* at η = K and
//! averages the two losses, so each prefix size keeps being trained and the full code is
//! trained every step (nested-dropout ordering with a guaranteed top).

use burn::prelude::*;
use rand::Rng;

/// A [1, K, 1, 1] mask (1 for channels < eta) to multiply a [b, K, h, w] latent.
pub fn channel_mask(k: usize, eta: usize, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..k).map(|i| if i < eta { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(v, [1, k, 1, 1]), device)
}

/// A [1, d] mask for a [b, d] latent.
pub fn unit_mask(d: usize, eta: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..d).map(|i| if i < eta { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(v, [1, d]), device)
}

/// η for one training batch: uniform on 1..=k.
pub fn draw_eta(rng: &mut impl Rng, k: usize) -> usize {
    rng.random_range(1..=k)
}
