//! Applying a trained model to whole images: tiles, normalisation, NaN masks, σ maps.

use skyzip_data::NormKind;
use skyzip_nn::burn::prelude::*;
use skyzip_nn::model::{Model, ModelConfig};

/// What a model gives for one image (physical units, NaN where the input was blank).
pub struct Reconstruction {
    pub mean: Vec<f32>,
    /// Per-pixel σ (meanvar models).
    pub sigma: Option<Vec<f32>>,
}

/// A trained model with what applying it needs.
#[derive(Clone, Copy)]
pub struct Trained<'a> {
    pub model: &'a Model,
    pub config: &'a ModelConfig,
    /// The normalisation it was trained with.
    pub norm: NormKind,
    pub device: &'a Device,
}

/// Core side of the tiles a fully convolutional model sees at once, and the margin of context
/// around each (the margin's outputs are discarded, so tiles join without seams from padding).
const CONV_TILE: usize = 256;
const CONV_HALO: usize = 16;

/// Tile cores along one axis: `(core_start, core_end, window_start, window_end)`.
fn spans(n: usize, core: usize, halo: usize, fixed: bool) -> Vec<(usize, usize, usize, usize)> {
    let mut out = Vec::new();
    let mut s = 0;
    while s < n {
        let e = (s + core).min(n);
        if fixed {
            // Dense models see exactly `core` pixels: the last tile is shifted back to fit.
            let ws = s.min(n.saturating_sub(core));
            out.push((s, e, ws, (ws + core).min(n)));
        } else {
            out.push((s, e, s.saturating_sub(halo), (e + halo).min(n)));
        }
        s = e;
    }
    out
}

/// Runs `model` over a `nx`×`ny` image (row-major, NaN = blank) with the first `eta` latent
/// channels/units (None = all). Each tile is normalised with `norm` fitted to that tile — as
/// training stamps were — and mapped back; σ goes through the inverse by the delta method.
pub fn reconstruct_image(
    trained: &Trained,
    data: &[f32],
    nx: usize,
    ny: usize,
    eta: Option<usize>,
) -> Result<Reconstruction, String> {
    let Trained {
        model,
        config: mcfg,
        norm,
        device,
    } = *trained;
    let (core, halo, fixed, div) = match mcfg.net() {
        ModelConfig::DenseAe { net, .. } => (net.size, 0, true, 1),
        ModelConfig::BottleneckAe { net } => (net.size, 0, true, 1),
        ModelConfig::UnetAe { net } => (net.size, 0, true, 1),
        ModelConfig::ConvAe { net, .. } => (CONV_TILE, CONV_HALO, false, net.divisor()),
        ModelConfig::PixelAe { net, .. } => (CONV_TILE, CONV_HALO, false, net.divisor()),
        other => {
            return Err(format!(
                "{} is not an image-to-image model; evaluate it with `skyzip evaluate`",
                other.name()
            ))
        }
    };
    let mut mean = vec![f32::NAN; nx * ny];
    let mut sigma = mcfg.is_meanvar().then(|| vec![f32::NAN; nx * ny]);
    for &(cy0, cy1, wy0, wy1) in &spans(ny, core, halo, fixed) {
        for &(cx0, cx1, wx0, wx1) in &spans(nx, core, halo, fixed) {
            let (w, h) = (wx1 - wx0, wy1 - wy0);
            let (pw, ph) = if fixed {
                (core, core)
            } else {
                (w.div_ceil(div) * div, h.div_ceil(div) * div)
            };
            // The window, edge-replicated out to the padded size.
            let mut tile = vec![0f32; pw * ph];
            for y in 0..ph {
                for x in 0..pw {
                    let sy = wy0 + y.min(h - 1);
                    let sx = wx0 + x.min(w - 1);
                    tile[y * pw + x] = data[sy * nx + sx];
                }
            }
            let fitted = norm.fit(&tile);
            fitted.forward(&mut tile);
            tile.iter_mut()
                .filter(|v| !v.is_finite())
                .for_each(|v| *v = 0.0);
            let x = skyzip_nn::image_tensor(&tile, 1, ph, pw, device);
            let (mu, var) = model.predict(x, eta, mcfg.eps());
            let mu = mu
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| format!("reading the model output: {e:?}"))?;
            let var = match var {
                Some(v) => Some(
                    v.into_data()
                        .try_to_vec::<f32>()
                        .map_err(|e| format!("reading the model output: {e:?}"))?,
                ),
                None => None,
            };
            for y in cy0..cy1 {
                for x in cx0..cx1 {
                    let i = y * nx + x;
                    if !data[i].is_finite() {
                        continue;
                    }
                    let t = (y - wy0) * pw + (x - wx0);
                    let m = mu[t] as f64;
                    mean[i] = fitted.inverse_value(m) as f32;
                    if let (Some(s), Some(v)) = (sigma.as_mut(), var.as_ref()) {
                        s[i] = fitted.inverse_sigma(m, (v[t] as f64).sqrt()) as f32;
                    }
                }
            }
        }
    }
    Ok(Reconstruction { mean, sigma })
}

#[cfg(test)]
mod tests {
    use super::spans;

    #[test]
    fn tiles_cover_every_pixel_once() {
        for n in [1, 5, 28, 64, 255, 256, 257, 600, 1000] {
            for fixed in [false, true] {
                let mut hit = vec![0; n];
                for (c0, c1, w0, w1) in spans(n, if fixed { 28 } else { 256 }, 16, fixed) {
                    assert!(w0 <= c0 && c1 <= w1 && w1 <= n, "{n} {fixed}");
                    if fixed && n >= 28 {
                        assert_eq!(w1 - w0, 28);
                    }
                    (c0..c1).for_each(|i| hit[i] += 1);
                }
                assert!(hit.iter().all(|&h| h == 1), "{n} {fixed}");
            }
        }
    }
}
