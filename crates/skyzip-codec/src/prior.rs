//! The learned factorized prior of a rate-trained model (`skyzip_nn::prior`) as integer tables,
//! one per latent channel, as CompressAI's `EntropyBottleneck.update()` builds its quantised CDFs.
//!
//! The cumulative network is evaluated here in f64 with [`crate::detmath`] only (softplus, tanh,
//! sigmoid from +, −, ×, ÷), from the f32 weights in the model file: the tables are a function
//! of the model's bytes alone and come out the same on every IEEE-754 machine.

use crate::detmath;
use crate::entropy::IntTable;
use skyzip_nn::prior::{widths, FactorizedPrior, LayerWeights};

/// The widest table: integers in [−LIMIT, LIMIT]; anything further escapes.
const LIMIT: i64 = 1024;
/// Integers whose mass is below this are left to the escape symbol (at the ends of the range).
const TAIL: f64 = 1e-9;

/// One channel's cumulative network with its weights in f64.
struct Channel {
    /// Per layer, already transformed: softplus(matrix) [out][in], bias [out], tanh(factor).
    layers: Vec<LayerWeights>,
}

impl Channel {
    fn logit(&self, x: f64) -> f64 {
        let w = widths();
        let mut h = vec![x];
        for (i, lw) in self.layers.iter().enumerate() {
            let (m, b, f) = (&lw.matrix, &lw.bias, &lw.factor);
            let (fin, fout) = (w[i], w[i + 1]);
            let mut next = vec![0.0; fout];
            for (o, v) in next.iter_mut().enumerate() {
                let mut acc = b[o];
                for (j, hj) in h.iter().enumerate() {
                    acc += m[o * fin + j] * hj;
                }
                if let Some(f) = f {
                    acc += f[o] * detmath::tanh(acc);
                }
                *v = acc;
            }
            h = next;
        }
        h[0]
    }

    /// The mass of [k − ½, k + ½].
    fn mass(&self, k: i64) -> f64 {
        let lo = self.logit(k as f64 - 0.5);
        let hi = self.logit(k as f64 + 0.5);
        // In the upper tail both sigmoids are near 1: subtract their complements instead.
        let p = if lo + hi > 0.0 {
            detmath::sigmoid(-lo) - detmath::sigmoid(-hi)
        } else {
            detmath::sigmoid(hi) - detmath::sigmoid(lo)
        };
        p.max(0.0)
    }
}

/// One table per latent channel.
pub fn tables(prior: &FactorizedPrior) -> Vec<IntTable> {
    let weights = prior.weights();
    let w = widths();
    let c = prior.channels();
    (0..c)
        .map(|ch| {
            let layers = weights
                .iter()
                .enumerate()
                .map(|(i, lw)| {
                    let (fin, fout) = (w[i], w[i + 1]);
                    let per = fin * fout;
                    LayerWeights {
                        matrix: lw.matrix[ch * per..(ch + 1) * per]
                            .iter()
                            .map(|&v| detmath::softplus(v))
                            .collect(),
                        bias: lw.bias[ch * fout..(ch + 1) * fout].to_vec(),
                        factor: lw.factor.as_ref().map(|f| {
                            f[ch * fout..(ch + 1) * fout]
                                .iter()
                                .map(|&v| detmath::tanh(v))
                                .collect()
                        }),
                    }
                })
                .collect();
            let chan = Channel { layers };
            let masses: Vec<f64> = (-LIMIT..=LIMIT).map(|k| chan.mass(k)).collect();
            let first = masses.iter().position(|&p| p >= TAIL).unwrap_or(0);
            let last = masses.iter().rposition(|&p| p >= TAIL).unwrap_or(0);
            let kept = &masses[first..=last];
            let inside: f64 = kept.iter().sum();
            let escape = (1.0 - inside).max(TAIL);
            IntTable::new(first as i64 - LIMIT, kept, escape)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use skyzip_nn::burn::prelude::*;

    #[test]
    fn tables_match_the_network_they_come_from() {
        let device = Device::flex();
        device.seed(5);
        let prior = FactorizedPrior::new(3, &device);
        let t = tables(&prior);
        assert_eq!(t.len(), 3);
        // The burn network's masses (f32) against the tables' costs.
        let ks: Vec<f32> = (0..3).flat_map(|_| (-8..=8).map(|k| k as f32)).collect();
        let z = Tensor::<4>::from_data(TensorData::new(ks, [1, 3, 1, 17]), &device);
        let p = prior.likelihood(z).into_data().try_to_vec::<f32>().unwrap();
        for c in 0..3 {
            for (i, k) in (-8..=8).enumerate() {
                let want = -(p[c * 17 + i] as f64).log2();
                let got = t[c].cost(k);
                assert!(
                    (want - got).abs() < 0.01,
                    "channel {c}, k = {k}: {got} vs {want}"
                );
            }
        }
    }
}
