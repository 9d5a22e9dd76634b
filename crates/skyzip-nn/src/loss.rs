//! Reusable, differentiable losses on [b, c, h, w] tensors (means over every element).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// A named reconstruction loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    Mse,
    L1,
    /// Binary cross-entropy on predictions in (0, 1) (targets in [0, 1]).
    Bce,
}

impl Loss {
    pub fn parse(s: &str) -> Result<Loss, String> {
        serde_json::from_value(serde_json::Value::String(s.into()))
            .map_err(|_| format!("unknown loss '{s}' (mse, l1, bce)"))
    }
    pub fn forward(&self, pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        match self {
            Loss::Mse => mse(pred, target),
            Loss::L1 => l1(pred, target),
            Loss::Bce => bce(pred, target),
        }
    }
}

pub fn mse(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    (pred - target).powf_scalar(2.0).mean()
}

pub fn l1(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    (pred - target).abs().mean()
}

pub fn bce(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let eps = 1e-7;
    let p = pred.clamp(eps, 1.0 - eps);
    let one_minus = p.clone().neg().add_scalar(1.0);
    (target.clone() * p.log() + target.neg().add_scalar(1.0) * one_minus.log())
        .mean()
        .neg()
}

/// Gaussian negative log-likelihood (up to a constant): mean of log(σ² + ε) + (x − μ)²/(σ² + ε).
pub fn gaussian_nll(mu: Tensor<4>, var: Tensor<4>, target: Tensor<4>, eps: f64) -> Tensor<1> {
    let v = var.add_scalar(eps);
    (v.clone().log() + (target - mu).powf_scalar(2.0) / v).mean()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], dev: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v.to_vec(), [1, 1, 1, v.len()]), dev)
    }

    #[test]
    fn losses_have_their_textbook_values() {
        let dev = Device::flex();
        let (p, y) = (t(&[0.0, 1.0, 3.0], &dev), t(&[1.0, 1.0, 1.0], &dev));
        let s = |x: Tensor<1>| x.into_scalar::<f32>();
        assert!((s(mse(p.clone(), y.clone())) - 5.0 / 3.0).abs() < 1e-6);
        assert!((s(l1(p, y)) - 1.0).abs() < 1e-6);
        let b = s(bce(t(&[0.5, 0.9], &dev), t(&[1.0, 0.0], &dev)));
        assert!((b - (0.5f32.ln() + 0.1f32.ln()).abs() / 2.0).abs() < 1e-5);
        // NLL at σ² = 1: mean squared error; at the true variance it is minimal.
        let nll = s(gaussian_nll(
            t(&[0.0], &dev),
            t(&[1.0], &dev),
            t(&[2.0], &dev),
            0.0,
        ));
        assert!((nll - 4.0).abs() < 1e-6);
        assert_eq!(Loss::parse("l1"), Ok(Loss::L1));
        assert!(Loss::parse("huber").is_err());
    }
}
