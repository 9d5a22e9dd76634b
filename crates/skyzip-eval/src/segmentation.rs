//! Point-source segmentation scored per image, as seed 003 did (at a probability cut, 0.02 there):
//!
//! - **approach A**: every pixel with point-source flux above the threshold is a target (the
//!   simulator's masks: flux > 0.8); accuracy of
//!   (probability > cut) over all pixels, and the ROC AUC of the probabilities;
//! - **approach B**: the N pixels predicted above the cut against the N brightest true pixels
//!   (N = the number predicted, at most the number with flux); accuracy over all pixels and AUC
//!   against that target.

use crate::metrics::{accuracy, roc_auc};
use serde::Serialize;

/// One image's scores (AUC is NaN where the target has one class only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImageScores {
    pub accuracy_a: f64,
    pub auc_a: f64,
    pub accuracy_b: f64,
    pub auc_b: f64,
    /// Pixels predicted above the cut, and target pixels (flux above the threshold).
    pub predicted: usize,
    pub with_flux: usize,
}

/// Scores the probabilities `prob` of one image against its true point-source flux map, a pixel
/// being a target when its flux exceeds `threshold`.
pub fn score_image(prob: &[f64], flux: &[f64], cut: f64, threshold: f64) -> ImageScores {
    assert_eq!(prob.len(), flux.len(), "one probability per pixel");
    let truth_a: Vec<bool> = flux.iter().map(|&f| f > threshold).collect();
    let pred: Vec<bool> = prob.iter().map(|&p| p > cut).collect();
    let predicted = pred.iter().filter(|&&p| p).count();
    let with_flux = truth_a.iter().filter(|&&t| t).count();
    let n = predicted.min(with_flux);
    let mut order: Vec<usize> = (0..flux.len()).collect();
    // Brightest first; equal fluxes in pixel order, so the target is a function of the map.
    order.sort_by(|&a, &b| flux[b].total_cmp(&flux[a]).then(a.cmp(&b)));
    let mut truth_b = vec![false; flux.len()];
    for &i in &order[..n] {
        truth_b[i] = true;
    }
    ImageScores {
        accuracy_a: accuracy(&pred, &truth_a),
        auc_a: roc_auc(prob, &truth_a).unwrap_or(f64::NAN),
        accuracy_b: accuracy(&pred, &truth_b),
        auc_b: roc_auc(prob, &truth_b).unwrap_or(f64::NAN),
        predicted,
        with_flux,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approaches_a_and_b_on_a_small_map() {
        // 8 pixels: fluxes, and probabilities that rank the three brightest first.
        let flux = [0.0, 5.0, 0.1, 0.0, 3.0, 0.2, 0.0, 4.0];
        let prob = [0.01, 0.9, 0.01, 0.0, 0.6, 0.03, 0.0, 0.8];
        let s = score_image(&prob, &flux, 0.02, 0.0);
        // A: pixels 1, 4, 5, 7 predicted; 1, 2, 4, 5, 7 have flux: 7 of 8 right.
        assert_eq!((s.predicted, s.with_flux), (4, 5));
        assert!((s.accuracy_a - 7.0 / 8.0).abs() < 1e-12);
        // B: the 4 brightest are 1, 7, 4, 5 — exactly the predicted ones.
        assert_eq!(s.accuracy_b, 1.0);
        assert_eq!(s.auc_b, 1.0);
        assert!(s.auc_a > 0.9);
    }
}
