//! Scalar metrics: ROC AUC (as scikit-learn's `roc_auc_score`), accuracy, mean relative error,
//! and mean ± standard deviation over images.

use serde::Serialize;

/// Area under the ROC curve of `scores` for binary `labels`: the probability that a random
/// positive scores above a random negative, ties counting one half (the Mann–Whitney U; equal to
/// scikit-learn's trapezoidal `roc_auc_score`). None when only one class is present.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one score per label");
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the positives' ranks, tied values sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let k = order[i..=j].iter().filter(|&&o| labels[o]).count();
        rank_sum += avg * k as f64;
        i = j + 1;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

/// Fraction of equal entries.
pub fn accuracy(pred: &[bool], truth: &[bool]) -> f64 {
    assert_eq!(pred.len(), truth.len(), "one prediction per truth");
    if pred.is_empty() {
        return f64::NAN;
    }
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64
}

/// Mean of |predicted − true| / |true| (items with true = 0 are skipped).
pub fn mean_relative_error(pred: &[f64], truth: &[f64]) -> f64 {
    assert_eq!(pred.len(), truth.len(), "one prediction per truth");
    let r: Vec<f64> = pred
        .iter()
        .zip(truth)
        .filter(|(_, t)| **t != 0.0)
        .map(|(p, t)| ((p - t) / t).abs())
        .collect();
    r.iter().sum::<f64>() / r.len().max(1) as f64
}

/// Mean and (population) standard deviation of per-image values, NaNs skipped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n.max(1) as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.max(1) as f64;
        Summary {
            mean,
            std: var.sqrt(),
            n,
        }
    }
}

/// Φ(x), the standard normal CDF, from erfc (Numerical Recipes' Chebyshev fit, relative error
/// < 1.2e-7), with the exponential a caller chooses: the codec passes its deterministic one, so
/// that its probability tables are the same on every machine.
pub fn normal_cdf_with(x: f64, exp: impl Fn(f64) -> f64) -> f64 {
    let z = (x / std::f64::consts::SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(poly);
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of tools/pin_roc_auc.py: scikit-learn gives roc_auc_score = 0.8125 (printed
    // 0.8124999999999999) and accuracy_score at a cut of 0.4 = 0.7333333333333333.
    const LABELS: [u8; 30] = [
        0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1,
    ];
    const SCORES: [f64; 30] = [
        0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.05, 0.35, 0.6, 0.2, 0.7, 0.4, 0.02, 0.02, 0.5, 0.5, 0.97,
        0.3, 0.1, 0.6, 0.02, 0.25, 0.45, 0.45, 0.0, 0.15, 0.99, 0.33, 0.01, 0.62,
    ];

    #[test]
    fn roc_auc_and_accuracy_match_scikit_learn() {
        let labels: Vec<bool> = LABELS.iter().map(|&l| l == 1).collect();
        let auc = roc_auc(&SCORES, &labels).unwrap();
        assert!((auc - 0.812_499_999_999_999_9).abs() < 1e-12, "{auc}");
        let pred: Vec<bool> = SCORES.iter().map(|&s| s > 0.4).collect();
        assert!((accuracy(&pred, &labels) - 0.733_333_333_333_333_3).abs() < 1e-12);
        // One class only: undefined, as scikit-learn refuses it.
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        // Perfect and reversed rankings.
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.1], &[false, true]), Some(0.0));
    }

    #[test]
    fn mean_relative_error_by_hand() {
        // |1.1 − 1|/1 = 0.1, |1.5 − 2|/2 = 0.25, |−3 − −4|/4 = 0.25; the zero truth is skipped.
        let e = mean_relative_error(&[1.1, 1.5, -3.0, 5.0], &[1.0, 2.0, -4.0, 0.0]);
        assert!((e - 0.2).abs() < 1e-12, "{e}");
        let s = Summary::of(&[1.0, 3.0, f64::NAN]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 2));
    }
}
