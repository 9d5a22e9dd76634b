//! A learned factorized prior over latent channels: per channel, a monotone cumulative function
//! c(x) built from small matrices with non-negative (softplus) weights and tanh gates (Ballé et
//! al. 2018, appendix 6.1; CompressAI's `EntropyBottleneck`). The probability of an integer k is
//! sigmoid(c(k + ½)) − sigmoid(c(k − ½)); with uniform noise in place of rounding, the same
//! expression scores the training latents. The codec turns it into integer tables
//! (`skyzip_codec::prior`), evaluated there with deterministic arithmetic from the weights.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use burn::tensor::Distribution;

/// Widths of the cumulative network: 1 → 3 → 3 → 3 → 1 (CompressAI's default).
pub const FILTERS: [usize; 3] = [3, 3, 3];
/// The initial spread of the density (in latent units), as CompressAI's `init_scale`.
const INIT_SCALE: f64 = 10.0;

/// One layer's raw weights (before softplus/tanh), channel-major.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// [channels][out][in].
    pub matrix: Vec<f64>,
    /// [channels][out].
    pub bias: Vec<f64>,
    /// [channels][out], hidden layers only.
    pub factor: Option<Vec<f64>>,
}

#[derive(Module, Debug)]
pub struct FactorizedPrior {
    /// Per layer, [channels, out, in] (used through softplus, so the function is monotone).
    pub matrices: Vec<Param<Tensor<3>>>,
    /// Per layer, [channels, out, 1].
    pub biases: Vec<Param<Tensor<3>>>,
    /// Per hidden layer, [channels, out, 1] (used through tanh).
    pub factors: Vec<Param<Tensor<3>>>,
}

/// The layer widths, input and output included.
pub fn widths() -> Vec<usize> {
    let mut w = vec![1];
    w.extend(FILTERS);
    w.push(1);
    w
}

impl FactorizedPrior {
    pub fn new(channels: usize, device: &Device) -> Self {
        let w = widths();
        let layers = w.len() - 1;
        let scale = INIT_SCALE.powf(1.0 / layers as f64);
        let (mut matrices, mut biases, mut factors) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..layers {
            let (fin, fout) = (w[i], w[i + 1]);
            // softplus(init) = 1 / scale / fout, so the initial function spans ~INIT_SCALE.
            let init = (1.0 / scale / fout as f64).exp_m1().ln();
            matrices.push(Param::from_tensor(Tensor::full(
                [channels, fout, fin],
                init,
                device,
            )));
            biases.push(Param::from_tensor(Tensor::random(
                [channels, fout, 1],
                Distribution::Uniform(-0.5, 0.5),
                device,
            )));
            if i + 1 < layers {
                factors.push(Param::from_tensor(Tensor::zeros(
                    [channels, fout, 1],
                    device,
                )));
            }
        }
        FactorizedPrior {
            matrices,
            biases,
            factors,
        }
    }

    pub fn channels(&self) -> usize {
        self.matrices[0].dims()[0]
    }

    /// c(x) for x of shape [channels, 1, n].
    pub fn logits_cumulative(&self, x: Tensor<3>) -> Tensor<3> {
        let mut h = x;
        for (i, m) in self.matrices.iter().enumerate() {
            h = softplus(m.val(), 1.0).matmul(h) + self.biases[i].val();
            if let Some(f) = self.factors.get(i) {
                h = h.clone() + f.val().tanh() * h.tanh();
            }
        }
        h
    }

    /// The probability of each value of `z` ([b, channels, h, w], noisy or rounded) as the mass
    /// of [z − ½, z + ½], floored at 1e-9; same shape as `z`.
    pub fn likelihood(&self, z: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = z.dims();
        let x = z.permute([1, 0, 2, 3]).reshape([c, 1, b * h * w]);
        let lower = self.logits_cumulative(x.clone().sub_scalar(0.5));
        let upper = self.logits_cumulative(x.add_scalar(0.5));
        // Subtract in the tail where the sigmoids are far from 1 (CompressAI's sign trick).
        let s = (lower.clone() + upper.clone()).sign().neg();
        let p = (sigmoid(upper * s.clone()) - sigmoid(lower * s)).abs();
        p.clamp_min(1e-9)
            .reshape([c, b, h, w])
            .permute([1, 0, 2, 3])
    }

    /// The weights as f64 arrays, one entry per layer.
    pub fn weights(&self) -> Vec<LayerWeights> {
        let flat = |t: Tensor<3>| -> Vec<f64> {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 weights")
                .into_iter()
                .map(f64::from)
                .collect()
        };
        (0..self.matrices.len())
            .map(|i| LayerWeights {
                matrix: flat(self.matrices[i].val()),
                bias: flat(self.biases[i].val()),
                factor: self.factors.get(i).map(|f| flat(f.val())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};

    fn ints(c: usize, lo: i64, hi: i64, device: &Device) -> Tensor<4> {
        let n = (hi - lo + 1) as usize;
        let v: Vec<f32> = (0..c).flat_map(|_| (lo..=hi).map(|k| k as f32)).collect();
        Tensor::from_data(TensorData::new(v, [1, c, 1, n]), device)
    }

    #[test]
    fn masses_of_the_integers_sum_to_one() {
        let device = Device::flex();
        let p = FactorizedPrior::new(2, &device);
        let total: f32 = p
            .likelihood(ints(2, -200, 200, &device))
            .sum()
            .into_scalar::<f32>();
        assert!((total - 2.0).abs() < 1e-3, "Σ p = {total} over 2 channels");
    }

    #[test]
    fn fitting_lowers_the_code_length_of_laplace_draws() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let mut prior = FactorizedPrior::new(1, &device);
        // Two channels' worth of draws from one narrow Laplace (scale 0.7), centred at 2.
        let mut x: u64 = 99;
        let draws: Vec<f32> = (0..512)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                (2.0 - 0.7 * u.signum() * (1.0 - 2.0 * u.abs()).ln()).round() as f32
            })
            .collect();
        let z = Tensor::<4>::from_data(TensorData::new(draws, [1, 1, 1, 512]), &device);
        let bits = |p: &FactorizedPrior| -> f32 {
            p.likelihood(z.clone())
                .log()
                .mean()
                .neg()
                .into_scalar::<f32>()
                / std::f32::consts::LN_2
        };
        let before = bits(&prior);
        let mut opt = AdamConfig::new().init();
        for _ in 0..300 {
            let loss = prior.likelihood(z.clone()).log().mean().neg();
            let grads = GradientsParams::from_grads(loss.backward(), &prior);
            prior = opt.step(0.05, prior, grads);
        }
        let after = bits(&prior);
        // The entropy of a rounded Laplace(0.7) is about 1.9 bits.
        assert!(before > 4.0 && after < 2.2, "bits/value {before} → {after}");
    }
}
