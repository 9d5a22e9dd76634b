//! Vector quantisation (van den Oord et al. 2017, seed 002's VQ-VAE): every latent vector of a
//! conv encoder's [b, D, h, w] output is replaced by its nearest of K codebook vectors; the
//! decoder sees the codebook vectors, the gradient passes straight through to the encoder, and
//! two losses pull the codebook towards the encoder outputs (codebook loss) and the encoder
//! towards its chosen codes (commitment loss, weighted by β).
//!
//! The code of an image is its K-ary indices, which `skyzip evaluate` entropy-codes under a
//! factorized prior (the index frequencies of the training set) into real bytes.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;

#[derive(Module, Debug)]
pub struct Codebook {
    /// [K, D].
    pub vectors: Param<Tensor<2>>,
    /// With EMA updates: the running assignment counts and sums of encoder outputs per code.
    pub ema: Option<EmaState>,
}

/// The exponential moving averages that an EMA codebook is made of (never given gradients:
/// [`Codebook::ema_update`] sets them).
#[derive(Module, Debug)]
pub struct EmaState {
    /// [K].
    pub counts: Param<Tensor<1>>,
    /// [K, D].
    pub sums: Param<Tensor<2>>,
}

/// The quantised latent and what training needs of it.
pub struct Quantised {
    /// [b, D, h, w]: the codebook vectors, with the encoder's gradient passed straight through.
    pub z: Tensor<4>,
    /// [b·h·w] indices, row-major per image.
    pub indices: Tensor<1, Int>,
    /// ‖sg[z_e] − e‖² (moves the codebook).
    pub codebook_loss: Tensor<1>,
    /// ‖z_e − sg[e]‖² (moves the encoder).
    pub commitment_loss: Tensor<1>,
}

impl Codebook {
    /// K vectors of dimension D, uniform in ±1/K (the original paper's initialisation).
    /// With `ema`, the codebook follows moving averages of its assignments (count 1 and the
    /// initial vector to start with, so an unused code stays where it is).
    pub fn new(k: usize, d: usize, ema: bool, device: &Device) -> Codebook {
        let a = 1.0 / k as f64;
        let init: Tensor<2> = Tensor::random([k, d], Distribution::Uniform(-a, a), device);
        let ema = ema.then(|| EmaState {
            counts: Param::from_tensor(Tensor::ones([k], device)),
            sums: Param::from_tensor(init.clone()),
        });
        Codebook {
            vectors: Param::from_tensor(init),
            ema,
        }
    }

    /// One EMA step with decay `gamma` from a batch's (detached) encoder rows [N, D] and their
    /// indices: counts ← γ·counts + (1−γ)·n, sums ← γ·sums + (1−γ)·Σ rows, and each vector the
    /// mean sums/counts (counts Laplace-smoothed, as van den Oord et al.'s appendix).
    pub fn ema_update(self, rows: &[f32], idx: &[i64], d: usize, gamma: f64) -> Codebook {
        let Some(st) = self.ema else {
            return self;
        };
        let k = self.vectors.val().dims()[0];
        let device = self.vectors.val().device();
        let vals = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        let mut counts = vals(st.counts.val().detach());
        let mut sums: Vec<f32> = st
            .sums
            .val()
            .detach()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        let mut n = vec![0f64; k];
        let mut s = vec![0f64; k * d];
        for (r, &i) in idx.iter().enumerate() {
            let i = i as usize;
            n[i] += 1.0;
            for j in 0..d {
                s[i * d + j] += rows[r * d + j] as f64;
            }
        }
        let g = gamma as f32;
        for c in 0..k {
            counts[c] = g * counts[c] + (1.0 - g) * n[c] as f32;
            for j in 0..d {
                sums[c * d + j] = g * sums[c * d + j] + (1.0 - g) * s[c * d + j] as f32;
            }
        }
        let total: f32 = counts.iter().sum();
        let eps = 1e-5f32;
        let mut v = vec![0f32; k * d];
        for c in 0..k {
            let nc = (counts[c] + eps) / (total + k as f32 * eps) * total;
            for j in 0..d {
                v[c * d + j] = sums[c * d + j] / nc;
            }
        }
        let put1 = |p: Param<Tensor<1>>, v: Vec<f32>| {
            p.map(|old| {
                let req = old.is_require_grad();
                Tensor::from_data(TensorData::new(v, [k]), &device).set_require_grad(req)
            })
        };
        let put2 = |p: Param<Tensor<2>>, v: Vec<f32>| {
            p.map(|old| {
                let req = old.is_require_grad();
                Tensor::from_data(TensorData::new(v, [k, d]), &device).set_require_grad(req)
            })
        };
        Codebook {
            vectors: put2(self.vectors, v),
            ema: Some(EmaState {
                counts: put1(st.counts, counts),
                sums: put2(st.sums, sums),
            }),
        }
    }

    pub fn size(&self) -> usize {
        self.vectors.val().dims()[0]
    }

    /// [N, D] → the index of the nearest codebook vector of each row, [N].
    fn nearest(&self, flat: Tensor<2>) -> Tensor<1, Int> {
        let e = self.vectors.val();
        let [n, _] = flat.dims();
        let k = e.dims()[0];
        let d2 = flat.clone().powf_scalar(2.0).sum_dim(1)
            - flat.matmul(e.clone().transpose()).mul_scalar(2.0)
            + e.powf_scalar(2.0).sum_dim(1).reshape([1, k]);
        d2.argmin(1).reshape([n])
    }

    /// The nearest codebook index of every latent vector of [b, D, h, w], [b·h·w].
    pub fn nearest_of(&self, ze: Tensor<4>) -> Tensor<1, Int> {
        let [b, d, h, w] = ze.dims();
        self.nearest(ze.permute([0, 2, 3, 1]).reshape([b * h * w, d]))
    }

    /// Quantises an encoder output [b, D, h, w].
    pub fn quantise(&self, ze: Tensor<4>) -> Quantised {
        let [b, d, h, w] = ze.dims();
        let flat = ze.permute([0, 2, 3, 1]).reshape([b * h * w, d]);
        let idx = self.nearest(flat.clone().detach());
        let e = self.vectors.val().select(0, idx.clone());
        let codebook_loss = (flat.clone().detach() - e.clone()).powf_scalar(2.0).mean();
        let commitment_loss = (flat.clone() - e.clone().detach()).powf_scalar(2.0).mean();
        let st = flat.clone() + (e - flat).detach();
        Quantised {
            z: st.reshape([b, h, w, d]).permute([0, 3, 1, 2]),
            indices: idx,
            codebook_loss,
            commitment_loss,
        }
    }

    /// Indices [b·h·w] of `b` images of `h`×`w` codes → the decoder's input [b, D, h, w].
    pub fn lookup(&self, idx: Tensor<1, Int>, b: usize, h: usize, w: usize) -> Tensor<4> {
        let e = self.vectors.val();
        let d = e.dims()[1];
        e.select(0, idx).reshape([b, h, w, d]).permute([0, 3, 1, 2])
    }
}
