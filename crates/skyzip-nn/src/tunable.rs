//! Tunable rate: a prefix mask η over latent units (dense) or channels (fully convolutional).
//!
//! Training draws η per batch. A uniform η alone trains the full code (η = K) only 1/K of the
//! time and the largest prefixes least, so the decoder never learns to use the last channels
//! well: the error is then not lowest at η = K but at some intermediate η (the seed's "behaves
//! unexpectedly"). skyzip's loss is the mean of the full-code loss and the prefix loss, so the
//! full code is trained every step and every prefix size keeps being trained (nested-dropout
//! ordering with a guaranteed top). The prefix loss is either one uniform random η per batch
//! (`Prefixes::Random`, 2 decodes: the default for conv models) or the exact expectation over
//! η = 1…K, every prefix decoded in one batched pass (`Prefixes::All`: the default for dense
//! models, whose decoders are cheap). The exact expectation removes the sampling noise that
//! otherwise leaves adjacent units' order (and so the error at η = k) slow to settle: on the
//! linear-Gaussian toy the random schedule left η = 6…8 15–25 % above the PCA error after 10k
//! steps, the exact one reaches it.

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
