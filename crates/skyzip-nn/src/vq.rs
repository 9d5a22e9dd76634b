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
    pub fn new(k: usize, d: usize, device: &Device) -> Codebook {
        let a = 1.0 / k as f64;
        Codebook {
            vectors: Param::from_tensor(Tensor::random(
                [k, d],
                Distribution::Uniform(-a, a),
                device,
            )),
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
