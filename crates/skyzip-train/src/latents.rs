//! Latent-space maps (seeds 001, 002): the codes of a test set, projected to two dimensions by
//! PCA and by t-SNE (Barnes-Hut, the `bhtsne` crate: a maintained, MIT-licensed Rust
//! implementation; no maintained pure-Rust UMAP without BLAS was found), coloured by a
//! simulator label or parameter.
//!
//! PCA is computed through the n×n Gram matrix of the centred codes (nalgebra's symmetric
//! eigensolver), so it costs the same for an 8-number U-Net code and a VQ-VAE's 8,192-number
//! grid. t-SNE runs on the first (up to) 50 principal components and starts from the first two,
//! so the map is the same on every run.

use crate::ae_eval::test_set;
use crate::config::Experiment;
use crate::TrainError;
use serde::Serialize;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::ModelConfig;
use std::path::Path;

/// A test set's codes in two dimensions, twice.
#[derive(Debug, Clone, Serialize)]
pub struct LatentMap {
    pub items: usize,
    /// Numbers per code (a U-Net's skip maps are not part of its code).
    pub code_dims: usize,
    pub pca: Vec<[f64; 2]>,
    /// Fraction of the codes' variance along the first two principal components.
    pub pca_explained: [f64; 2],
    pub tsne: Vec<[f64; 2]>,
    pub perplexity: f64,
    /// The colouring: every label of the test set, by name, one value per item.
    pub labels: Vec<(String, Vec<f64>)>,
}

/// The first `k` principal-component scores of the rows of `x` (n × d), and each component's
/// share of the variance.
pub fn pca(x: &[Vec<f64>], k: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let n = x.len();
    let d = x.first().map_or(0, Vec::len);
    if n < 2 || d == 0 {
        return (vec![vec![0.0; k]; n], vec![0.0; k]);
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let c: Vec<Vec<f64>> = x
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(a, m)| a - m).collect())
        .collect();
    let g = nalgebra::DMatrix::from_fn(n, n, |i, j| {
        c[i].iter().zip(&c[j]).map(|(a, b)| a * b).sum::<f64>()
    });
    let total = g.trace().max(1e-300);
    let eig = nalgebra::SymmetricEigen::new(g);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let k = k.min(n);
    let mut scores = vec![vec![0.0; k]; n];
    let mut explained = Vec::with_capacity(k);
    for (c_i, &e) in order.iter().take(k).enumerate() {
        let lam = eig.eigenvalues[e].max(0.0);
        explained.push(lam / total);
        let u = eig.eigenvectors.column(e);
        // A fixed sign: the largest |entry| of each component is positive.
        let big = (0..n)
            .max_by(|&a, &b| u[a].abs().total_cmp(&u[b].abs()))
            .unwrap_or(0);
        let sign = if u[big] < 0.0 { -1.0 } else { 1.0 };
        for i in 0..n {
            scores[i][c_i] = sign * u[i] * lam.sqrt();
        }
    }
    (scores, explained)
}

/// The latent map of a run's best weights on `n` test maps drawn with `seed`.
pub fn latent_map(
    run: &Path,
    exp: &Experiment,
    mcfg: &ModelConfig,
    device: &Device,
    seed: u64,
    n: usize,
    perplexity: f64,
) -> Result<LatentMap, TrainError> {
    if mcfg.task() != skyzip_nn::model::Task::Reconstruct {
        return Err(TrainError::Config(
            "latent maps are made of an autoencoder's codes".into(),
        ));
    }
    let model = crate::load_best(run, mcfg, device)?;
    let test = test_set(exp, seed, n)?;
    let codes: Vec<Vec<f64>> = crate::ae_eval::codes(&model, &test, device)
        .into_iter()
        .map(|c| c.into_iter().map(f64::from).collect())
        .collect();
    let code_dims = codes.first().map_or(0, Vec::len);
    let (pcs, explained) = pca(&codes, 50.min(code_dims));
    let k = pcs.first().map_or(0, Vec::len);
    let two = |r: &Vec<f64>| {
        [
            r.first().copied().unwrap_or(0.0),
            r.get(1).copied().unwrap_or(0.0),
        ]
    };
    let pca2: Vec<[f64; 2]> = pcs.iter().map(two).collect();
    let tsne = if codes.len() >= 8 && k >= 2 {
        let perp = perplexity
            .min((codes.len() as f64 - 1.0) / 3.0 - 1.0)
            .max(2.0);
        let rows: Vec<&[f64]> = pcs.iter().map(|r| r.as_slice()).collect();
        // Start from the PCA plane scaled to a small spread, as openTSNE does.
        let s = pca2
            .iter()
            .map(|p| p[0].abs())
            .fold(0.0, f64::max)
            .max(1e-12);
        let init: Vec<f64> = pca2
            .iter()
            .flat_map(|p| [1e-4 * p[0] / s, 1e-4 * p[1] / s])
            .collect();
        let mut t: bhtsne::tSNE<f64, &[f64]> = bhtsne::tSNE::new(&rows);
        t.perplexity(perp)
            .epochs(750)
            .initial_embedding(init)
            .barnes_hut(0.5, |a, b| {
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum::<f64>()
                    .sqrt()
            });
        t.embedding().chunks(2).map(|c| [c[0], c[1]]).collect()
    } else {
        pca2.clone()
    };
    let labels = test
        .param_names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            (
                name.clone(),
                test.params
                    .iter()
                    .map(|p| p.get(j).copied().unwrap_or(f64::NAN))
                    .collect(),
            )
        })
        .collect();
    Ok(LatentMap {
        items: codes.len(),
        code_dims,
        pca: pca2,
        pca_explained: [
            explained.first().copied().unwrap_or(0.0),
            explained.get(1).copied().unwrap_or(0.0),
        ],
        tsne,
        perplexity,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_direction_of_largest_variance() {
        // Points along (3, 4)/5 with a little spread across it.
        let x: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                let t = i as f64 - 20.0;
                let e = if i % 2 == 0 { 0.1 } else { -0.1 };
                vec![0.6 * t - 0.8 * e, 0.8 * t + 0.6 * e, 1.0]
            })
            .collect();
        let (s, ex) = pca(&x, 2);
        assert!(ex[0] > 0.999 && ex[1] < 0.001, "{ex:?}");
        // Scores along the first component are the centred positions t + ½ (up to sign).
        let t: Vec<f64> = (0..40).map(|i| i as f64 - 19.5).collect();
        let sign = s[39][0].signum();
        for (a, b) in s.iter().zip(&t) {
            assert!((a[0] * sign - b).abs() < 1e-3, "{} vs {b}", a[0]);
        }
    }
}
