//! Real bytes for a VAE's or VQ-VAE's test set: the codes from `skyzip_train::gen_eval` through
//! the codec's range coder (`skyzip_codec::latent_code`), every stream decoded again and
//! compared before its size counts, then made lossless with the codec's Laplace residual coder.

use anyhow::{ensure, Result};
use serde::Serialize;
use skyzip_codec::latent_code as lc;
use skyzip_train::gen_eval::{GenCodes, VaeStats};

/// One lossy operating point, and the same made lossless.
#[derive(Debug, Clone, Serialize)]
pub struct CodingPoint {
    /// A VAE's quantisation step as a multiple of its posterior σ (1 for a VQ-VAE).
    pub step_factor: f64,
    pub symbols_per_image: usize,
    /// Bytes of the code streams (one per image, each decodable alone), summed over the set.
    pub code_bytes: usize,
    /// 8 · code_bytes per pixel: the rate.
    pub code_bpp: f64,
    /// The entropy model's estimate Σ −log2 p per pixel (no stream flushes).
    pub code_est_bpp: f64,
    /// All images' codes as one stream: its bytes per pixel (the flushes amortised).
    pub code_one_stream_bpp: f64,
    /// Distortion of the 8-bit reconstruction: MSE on [0, 1], PSNR (peak 1), SSIM.
    pub mse: f64,
    pub psnr: f64,
    pub ssim: f64,
    /// Bytes of the residual streams (target − reconstruction: a byte choosing one Laplace
    /// scale per image or the median edge predictor on the residual image, then that coding).
    pub residual_bytes: usize,
    pub residual_bpp: f64,
    /// code + residual: the end-to-end lossless code length per 8-bit pixel.
    pub lossless_bpp: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coding {
    pub kind: String,
    pub test_items: usize,
    pub pixels_per_image: usize,
    /// VQ-VAE: K, how many of them the training set used, and the training set's index
    /// entropy (bits per index).
    pub codebook: usize,
    pub used_codes: usize,
    pub index_entropy_bits: f64,
    pub points: Vec<CodingPoint>,
    /// The classical baseline on the same 8-bit images: LOCO-I's median edge predictor and
    /// the same residual coder.
    pub med_bpp: f64,
    pub vae: Option<VaeStats>,
}

fn entropy(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// The lossless stream of an 8-bit map given the decoder's reconstruction: a byte saying which
/// of two codings follows, then the residual target − recon either under one Laplace scale or
/// after LOCO-I's median edge predictor run on the residual image (which keeps what the
/// reconstruction missed and is still locally smooth); the smaller is kept. Decoded and
/// compared before it counts.
fn residual_stream(target: &[i64], recon: &[i64], width: usize) -> Result<Vec<u8>> {
    let r: Vec<i64> = target.iter().zip(recon).map(|(a, b)| a - b).collect();
    let plain = lc::code_residuals(target, recon).bytes;
    let med = lc::code_med(&r, width).bytes;
    let (flag, body) = if med.len() < plain.len() {
        (1u8, med)
    } else {
        (0u8, plain)
    };
    let back = if flag == 1 {
        lc::decode_med(&body, width, r.len())?
            .iter()
            .zip(recon)
            .map(|(a, b)| a + b)
            .collect()
    } else {
        lc::decode_residuals(&body, recon)?
    };
    ensure!(
        back == target,
        "a residual stream did not decode to its image"
    );
    let mut out = vec![flag];
    out.extend(body);
    Ok(out)
}

/// Codes, decodes and checks every stream; sizes of what decoded.
pub fn code(g: &GenCodes) -> Result<Coding> {
    let px = g.pixels as f64;
    let mut points = Vec::new();
    let mut n_img = 0;
    for op in &g.points {
        n_img = op.images.len();
        // Symbol j of a map goes under table j mod the tables: the one index prior of a
        // VQ-VAE, or a VAE's table per coded latent number.
        let tables: Vec<skyzip_codec::entropy::IntTable> = match g.kind {
            "vq-indices" => vec![lc::index_table(&g.counts)],
            _ => op.steps.iter().map(|&s| lc::gaussian_table(s)).collect(),
        };
        let put = |sym: &[i64]| lc::code_with(tables.iter().cycle().zip(sym.iter().copied()));
        let get = |bytes: &[u8], n: usize| lc::decode_with(bytes, tables.iter().cycle().take(n));
        let (mut cb, mut est, mut rb, mut sq) = (0usize, 0.0, 0usize, 0.0);
        let mut all_symbols = Vec::new();
        for im in &op.images {
            let c = put(&im.symbols);
            ensure!(
                get(&c.bytes, im.symbols.len())? == im.symbols,
                "a code stream did not decode to its symbols"
            );
            cb += c.bytes.len();
            est += c.est_bits;
            rb += residual_stream(&im.target, &im.recon, g.width)?.len();
            sq += im
                .target
                .iter()
                .zip(&im.recon)
                .map(|(&a, &b)| ((a - b) as f64 / 255.0).powi(2))
                .sum::<f64>();
            all_symbols.extend_from_slice(&im.symbols);
        }
        // Every map's symbols in one stream (the tables repeat map after map).
        let one = put(&all_symbols).bytes.len();
        let total_px = px * op.images.len().max(1) as f64;
        let mse = sq / total_px;
        points.push(CodingPoint {
            step_factor: op.step_factor,
            symbols_per_image: g.symbols_per_image,
            code_bytes: cb,
            code_bpp: 8.0 * cb as f64 / total_px,
            code_est_bpp: est / total_px,
            code_one_stream_bpp: 8.0 * one as f64 / total_px,
            mse,
            psnr: -10.0 * mse.max(1e-12).log10(),
            ssim: op.ssim,
            residual_bytes: rb,
            residual_bpp: 8.0 * rb as f64 / total_px,
            lossless_bpp: 8.0 * (cb + rb) as f64 / total_px,
        });
    }
    let mut med = 0usize;
    if let Some(op) = g.points.first() {
        for im in &op.images {
            let c = lc::code_med(&im.target, g.width);
            ensure!(
                lc::decode_med(&c.bytes, g.width, im.target.len())? == im.target,
                "a MED stream did not decode to its image"
            );
            med += c.bytes.len();
        }
    }
    Ok(Coding {
        kind: g.kind.to_string(),
        test_items: n_img,
        pixels_per_image: g.pixels,
        codebook: g.codebook,
        used_codes: g.counts.iter().filter(|&&c| c > 0).count(),
        index_entropy_bits: entropy(&g.counts),
        points,
        med_bpp: 8.0 * med as f64 / (px * n_img.max(1) as f64),
        vae: g.vae.clone(),
    })
}
