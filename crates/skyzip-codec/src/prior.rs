//! The learned factorized prior of a rate-trained model (`skyzip_nn::prior`) as integer tables,
//! one per latent channel, as CompressAI's `EntropyBottleneck.update()` builds its quantised CDFs.
//!
//! This runs once, when `skyzip export --part codec` writes the model: the cumulative network
//! is evaluated in f64 with [`crate::detmath`] only (softplus, tanh, sigmoid from +, −, ×, ÷),
//! and the tables' integer frequencies go into the model file. The codec reads those integers;
//! it never evaluates the network, so nothing about the prior depends on the machine.

use crate::detmath;
use crate::entropy::IntTable;

/// One layer of the prior's cumulative network, every channel's weights (as trained, before
/// the softplus and tanh that the network applies to them).
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// [channels][out][in].
    pub matrix: Vec<f64>,
    /// [channels][out].
    pub bias: Vec<f64>,
    /// [channels][out], hidden layers only.
    pub factor: Option<Vec<f64>>,
}

/// The widest table: integers in [−LIMIT, LIMIT]; anything further escapes.
const LIMIT: i64 = 1024;
/// Integers whose mass is below this are left to the escape symbol (at the ends of the range).
const TAIL: f64 = 1e-9;

/// One channel's cumulative network with its weights in f64.
struct Channel<'a> {
    /// Per layer, already transformed: softplus(matrix) [out][in], bias [out], tanh(factor).
    layers: Vec<LayerWeights>,
    widths: &'a [usize],
}

impl Channel<'_> {
    fn logit(&self, x: f64) -> f64 {
        let w = self.widths;
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

/// One table per latent channel of a prior with `channels` channels whose layers map
/// `widths[i]` → `widths[i + 1]` values (1 → … → 1).
pub fn tables(weights: &[LayerWeights], widths: &[usize], channels: usize) -> Vec<IntTable> {
    let w = widths;
    let c = channels;
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
            let chan = Channel { layers, widths };
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
