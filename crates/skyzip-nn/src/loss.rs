//! Reusable, differentiable losses on [b, c, h, w] tensors.
//!
//! SSIM follows Wang et al. (2004) as scikit-image (`gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False`) and pytorch-msssim compute it: an 11-tap Gaussian window
//! (σ = 1.5) applied without padding, K1 = 0.01, K2 = 0.03, constants from the data range.
//! MS-SSIM is pytorch-msssim's: contrast-structure terms at the finer scales (ReLU-clamped), SSIM
//! at the coarsest, 2×2 average pooling between scales, weights 0.0448, 0.2856, 0.3001, 0.2363,
//! 0.1333 (fewer scales use the first weights, renormalised, so 64-pixel stamps work at 3 scales).

use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use serde::{Deserialize, Serialize};

/// A named reconstruction loss, written in a config as a name (`"mse"`) or an object with
/// parameters (`{"name": "ssim-l1", "alpha": 0.84, "data_range": 1.0}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Loss {
    Mse,
    L1,
    /// Binary cross-entropy on predictions in (0, 1) (targets in [0, 1]).
    Bce,
    /// 1 − SSIM.
    Ssim {
        #[serde(default = "one")]
        data_range: f64,
    },
    /// 1 − MS-SSIM over `levels` scales.
    MsSsim {
        #[serde(default = "one")]
        data_range: f64,
        #[serde(default = "five")]
        levels: usize,
    },
    /// α·(1 − SSIM) + (1 − α)·L1 (Zhao et al. 2017 use α = 0.84).
    SsimL1 {
        #[serde(default = "alpha")]
        alpha: f64,
        #[serde(default = "one")]
        data_range: f64,
    },
}

fn one() -> f64 {
    1.0
}
fn five() -> usize {
    5
}
fn alpha() -> f64 {
    0.84
}

/// Side of the SSIM window.
pub const SSIM_WIN: usize = 11;
/// Standard deviation of the SSIM window.
pub const SSIM_SIGMA: f64 = 1.5;
/// pytorch-msssim's (and Wang et al. 2003's) scale weights, finest first.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

impl Loss {
    /// A loss from a name (`"ssim"`) or an object (`{"name": "ssim", "data_range": 2}`).
    pub fn from_json(v: &serde_json::Value) -> Result<Loss, String> {
        let v = match v {
            serde_json::Value::String(s) => serde_json::json!({ "name": s }),
            other => other.clone(),
        };
        let l: Loss = serde_json::from_value(v).map_err(|e| format!("loss: {e}"))?;
        l.check()?;
        Ok(l)
    }

    pub fn parse(s: &str) -> Result<Loss, String> {
        Loss::from_json(&serde_json::Value::String(s.into()))
    }

    fn check(&self) -> Result<(), String> {
        match *self {
            Loss::Ssim { data_range }
            | Loss::MsSsim { data_range, .. }
            | Loss::SsimL1 { data_range, .. }
                if !(data_range > 0.0 && data_range.is_finite()) =>
            {
                Err(format!("loss.data_range {data_range} must be positive"))
            }
            Loss::MsSsim { levels, .. } if !(1..=5).contains(&levels) => {
                Err(format!("loss.levels {levels} must be 1 to 5"))
            }
            Loss::SsimL1 { alpha, .. } if !(0.0..=1.0).contains(&alpha) => {
                Err(format!("loss.alpha {alpha} must be in [0, 1]"))
            }
            _ => Ok(()),
        }
    }

    /// Checks that images of `ny`×`nx` are large enough for the loss's windows.
    pub fn check_shape(&self, ny: usize, nx: usize) -> Result<(), String> {
        let need = match *self {
            Loss::Ssim { .. } | Loss::SsimL1 { .. } => SSIM_WIN,
            Loss::MsSsim { levels, .. } => SSIM_WIN << (levels - 1),
            _ => 1,
        };
        if ny < need || nx < need {
            return Err(format!(
                "loss {self:?} needs images of at least {need}×{need} pixels (these are {nx}×{ny})"
            ));
        }
        Ok(())
    }

    pub fn forward(&self, pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        match *self {
            Loss::Mse => mse(pred, target),
            Loss::L1 => l1(pred, target),
            Loss::Bce => bce(pred, target),
            Loss::Ssim { data_range } => ssim(pred, target, data_range).neg().add_scalar(1.0),
            Loss::MsSsim { data_range, levels } => ms_ssim(pred, target, data_range, levels)
                .neg()
                .add_scalar(1.0),
            Loss::SsimL1 { alpha, data_range } => {
                let s = ssim(pred.clone(), target.clone(), data_range);
                s.neg().add_scalar(1.0).mul_scalar(alpha) + l1(pred, target).mul_scalar(1.0 - alpha)
            }
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

fn gaussian_window() -> Vec<f32> {
    let c = (SSIM_WIN / 2) as f64;
    let g: Vec<f64> = (0..SSIM_WIN)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.iter().map(|v| (v / s) as f32).collect()
}

/// The separable Gaussian window applied without padding ("valid") to [n, 1, h, w].
fn blur(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let g = gaussian_window();
    let wv = Tensor::from_data(TensorData::new(g.clone(), [1, 1, SSIM_WIN, 1]), &device);
    let wh = Tensor::from_data(TensorData::new(g, [1, 1, 1, SSIM_WIN]), &device);
    let opt = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    conv2d(conv2d(x, wv, None, opt()), wh, None, opt())
}

/// Per-image SSIM and contrast-structure means, [n] each, of [n, 1, h, w] images.
fn ssim_cs(x: Tensor<4>, y: Tensor<4>, data_range: f64) -> (Tensor<1>, Tensor<1>) {
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let n = x.dims()[0];
    // One convolution pass over the five maps stacked along the batch.
    let stack = Tensor::cat(
        vec![
            x.clone(),
            y.clone(),
            x.clone() * x.clone(),
            y.clone() * y.clone(),
            x * y,
        ],
        0,
    );
    let f = blur(stack);
    let part = |i: usize| f.clone().narrow(0, i * n, n);
    let (mx, my) = (part(0), part(1));
    let sxx = part(2) - mx.clone() * mx.clone();
    let syy = part(3) - my.clone() * my.clone();
    let sxy = part(4) - mx.clone() * my.clone();
    let cs = (sxy.mul_scalar(2.0).add_scalar(c2)) / (sxx + syy).add_scalar(c2);
    let lum = (mx.clone() * my.clone()).mul_scalar(2.0).add_scalar(c1)
        / (mx.clone() * mx + my.clone() * my).add_scalar(c1);
    let per = |t: Tensor<4>| {
        let [n, c, h, w] = t.dims();
        t.reshape([n, c * h * w]).mean_dim(1).reshape([n])
    };
    (per(lum * cs.clone()), per(cs))
}

/// [b, c, h, w] → [b·c, 1, h, w]: SSIM is computed per image and channel.
fn planes(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b * c, 1, h, w])
}

/// Mean SSIM (differentiable) of two [b, c, h, w] batches with the given data range.
pub fn ssim(pred: Tensor<4>, target: Tensor<4>, data_range: f64) -> Tensor<1> {
    ssim_cs(planes(pred), planes(target), data_range).0.mean()
}

/// Mean MS-SSIM (differentiable) over `levels` scales (1–5).
pub fn ms_ssim(pred: Tensor<4>, target: Tensor<4>, data_range: f64, levels: usize) -> Tensor<1> {
    let w = &MS_SSIM_WEIGHTS[..levels.clamp(1, 5)];
    let total: f64 = w.iter().sum();
    let (mut x, mut y) = (planes(pred), planes(target));
    let mut prod: Option<Tensor<1>> = None;
    for (i, wi) in w.iter().enumerate() {
        let (s, cs) = ssim_cs(x.clone(), y.clone(), data_range);
        let last = i + 1 == w.len();
        // A tiny floor keeps the fractional power differentiable where a term is clamped to 0.
        let term = if last { s } else { cs }
            .clamp_min(1e-12)
            .powf_scalar(wi / total);
        prod = Some(match prod {
            Some(p) => p * term,
            None => term,
        });
        if !last {
            let [_, _, h, ww] = x.dims();
            let pool = AvgPoolOptions::new([2, 2]).with_padding([h % 2, ww % 2]);
            x = avg_pool2d(x, pool.clone());
            y = avg_pool2d(y, pool);
        }
    }
    prod.expect("at least one level").mean()
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
        assert!(Loss::parse("huber").unwrap_err().contains("huber"));
        assert_eq!(
            Loss::from_json(&serde_json::json!({"name": "ssim-l1", "alpha": 0.5})),
            Ok(Loss::SsimL1 {
                alpha: 0.5,
                data_range: 1.0
            })
        );
        assert!(Loss::from_json(&serde_json::json!({"name": "ssim-l1", "alpha": 2})).is_err());
        assert!(Loss::from_json(&serde_json::json!({"name": "ssim", "alfa": 2})).is_err());
    }
}
