//! Seed 000's comparison, made with bytes: a pixel autoencoder's quantised code through the
//! codec's range coder (each stamp its own stream, decoded and compared before it counts, plus
//! its 32-bit normalisation shift) against HCOMPRESS run in-process by cfitsio on the same
//! integer stamps at the scale that gives the same RMSE/σ; then aperture photometry of every
//! star on the truth, the observation and each reconstruction, binned by the star's S/N.

use anyhow::{ensure, Context, Result};
use serde::Serialize;
use skyzip_codec::latent_code as lc;
use skyzip_eval::photometry::{aperture_flux, bin_ratios, FluxBin};
use skyzip_fits::{CompressedFile, Header, ImageHdu, Pixels, TileCompression};
use skyzip_train::pixel_eval::{PixelCodes, Point};

/// Errors of a reconstruction in units of each stamp's background σ, pooled over all pixels.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Errors {
    /// Against the observation the coder was given.
    pub rmse_sigma: f64,
    /// The same over the sky pixels only (sources below 0.5 σ).
    pub rmse_sigma_sky: f64,
    /// Against the noiseless image (below 1 means the reconstruction is closer to the truth
    /// than the observation was: it has dropped noise).
    pub rmse_sigma_clean: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HcompressPoint {
    /// fpack's `-s`: the scale in units of each tile's noise (cfitsio measures it).
    pub scale: f64,
    /// Bytes of the whole compressed FITS file of all stamps (one 256×256 tile per stamp,
    /// headers included) per pixel.
    pub bpp: f64,
    pub errors: Errors,
    /// Whether the quantity it was matched on is within 1 % of the autoencoder's (false when no
    /// scale from 0.25 to 256 reaches it, and for the sweep's points).
    pub matched: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PixelPoint {
    pub step_factor: f64,
    pub symbols_per_image: usize,
    /// Code streams plus 4 bytes of shift per stamp, over the set.
    pub bytes: usize,
    pub bpp: f64,
    /// The entropy model's estimate (Σ −log2 p + the 32-bit shifts) per pixel.
    pub est_bpp: f64,
    /// 10^ŷ back to DN, and through the counts block.
    pub errors: Errors,
    pub errors_counts_block: Option<Errors>,
    /// HCOMPRESS at the scale whose RMSE/σ against the observation equals the autoencoder's
    /// (without the counts block): over all pixels (the seed's comparison), and over the sky.
    pub hcompress: HcompressPoint,
    pub hcompress_sky: HcompressPoint,
    /// HCOMPRESS at the scale whose file has the autoencoder's bits per pixel.
    pub hcompress_rate: HcompressPoint,
}

#[derive(Debug, Clone, Serialize)]
pub struct Photometry {
    /// The step factor of the reconstructions measured.
    pub step_factor: f64,
    pub aperture_fwhm: f64,
    pub annulus_fwhm: [f64; 2],
    /// The image kinds, in the order of each bin's ratios.
    pub kinds: Vec<String>,
    pub stars: usize,
    pub bins: Vec<FluxBin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PixelCoding {
    pub test_items: usize,
    pub pixels_per_image: usize,
    /// The continuous (unquantised) code's errors: what quantisation adds to.
    pub unquantised: Errors,
    pub unquantised_counts_block: Option<Errors>,
    pub points: Vec<PixelPoint>,
    /// The HCOMPRESS scales tried on the way.
    pub hcompress_sweep: Vec<HcompressPoint>,
    /// Lossless references on the same stamps: RICE (fpack's default) and HCOMPRESS s = 0.
    pub rice_bpp: f64,
    pub hcompress_lossless_bpp: f64,
    pub photometry: Photometry,
}

fn errors(codes: &PixelCodes, recon: &[Vec<f32>]) -> Errors {
    let (mut a, mut b, mut n) = (0.0, 0.0, 0usize);
    let (mut sa, mut sn) = (0.0, 0usize);
    for (s, r) in codes.stamps.iter().zip(recon) {
        for (((&x, &c), &y), &sky) in s.raw.iter().zip(&s.clean).zip(r).zip(&s.sky) {
            let e = ((y - x) as f64 / s.sigma).powi(2);
            a += e;
            b += ((y - c) as f64 / s.sigma).powi(2);
            n += 1;
            if sky {
                sa += e;
                sn += 1;
            }
        }
    }
    let n = n.max(1) as f64;
    Errors {
        rmse_sigma: (a / n).sqrt(),
        rmse_sigma_sky: (sa / sn.max(1) as f64).sqrt(),
        rmse_sigma_clean: (b / n).sqrt(),
    }
}

/// All stamps stacked into one image (one tile each), as integers.
fn stack(codes: &PixelCodes) -> ImageHdu {
    let px: Vec<i32> = codes
        .stamps
        .iter()
        .flat_map(|s| s.raw.iter().map(|&v| v.round() as i32))
        .collect();
    ImageHdu::new(
        vec![codes.nx, codes.ny * codes.stamps.len()],
        Pixels::I32(px),
        Header::default(),
    )
}

/// Compresses the stack with `spec` (tiles of one stamp); bits per pixel and the decoded stamps.
fn classic(codes: &PixelCodes, img: &ImageHdu, spec: &str) -> Result<(f64, Vec<Vec<f32>>)> {
    let tc = TileCompression::parse(&format!("{spec}:tile={}x{}", codes.nx, codes.ny))
        .map_err(anyhow::Error::msg)?;
    let f = CompressedFile::compress(img, &tc).with_context(|| format!("{spec} compression"))?;
    let back = f.decompress()?.physical();
    let n = codes.nx * codes.ny;
    let stamps = back
        .chunks(n)
        .map(|c| c.iter().map(|&v| v as f32).collect())
        .collect();
    Ok((8.0 * f.len() as f64 / img.npix() as f64, stamps))
}

fn hcompress(
    codes: &PixelCodes,
    img: &ImageHdu,
    scale: f64,
) -> Result<(HcompressPoint, Vec<Vec<f32>>)> {
    let (bpp, d) = classic(codes, img, &format!("hcompress:s={scale}"))?;
    Ok((
        HcompressPoint {
            scale,
            bpp,
            errors: errors(codes, &d),
            matched: false,
        },
        d,
    ))
}

/// HCOMPRESS at the scale whose RMSE/σ matches `target`: a sweep brackets it, bisection in
/// log scale narrows it to 0.5 %.
fn match_hcompress(
    codes: &PixelCodes,
    img: &ImageHdu,
    target: f64,
    key: fn(&HcompressPoint) -> f64,
    sweep: &mut Vec<HcompressPoint>,
) -> Result<(HcompressPoint, Vec<Vec<f32>>)> {
    let (mut p, d) = bracket_hcompress(codes, img, target, key, sweep)?;
    p.matched = ((key(&p) - target) / target).abs() < 0.01;
    Ok((p, d))
}

fn bracket_hcompress(
    codes: &PixelCodes,
    img: &ImageHdu,
    target: f64,
    key: fn(&HcompressPoint) -> f64,
    sweep: &mut Vec<HcompressPoint>,
) -> Result<(HcompressPoint, Vec<Vec<f32>>)> {
    let mut lo: Option<f64> = None;
    let mut hi: Option<f64> = None;
    for &s in &[
        0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0,
    ] {
        let found = sweep.iter().find(|p| p.scale == s).cloned();
        let p = match found {
            Some(p) => p,
            None => {
                let (p, _) = hcompress(codes, img, s)?;
                sweep.push(p.clone());
                p
            }
        };
        if key(&p) < target {
            lo = Some(s);
        } else {
            hi = Some(s);
            break;
        }
    }
    let (mut a, mut b) = match (lo, hi) {
        (Some(a), Some(b)) => (a, b),
        (None, Some(b)) => return hcompress(codes, img, b),
        (_, None) => return hcompress(codes, img, 256.0),
    };
    let mut best = hcompress(codes, img, b)?;
    for _ in 0..12 {
        let m = (a * b).sqrt();
        let (p, d) = hcompress(codes, img, m)?;
        let rel = (key(&p) - target) / target.abs();
        if key(&p) < target {
            a = m;
        } else {
            b = m;
        }
        if rel.abs() < (key(&best.0) - target).abs() / target.abs() {
            best = (p, d);
        }
        if rel.abs() < 0.005 {
            break;
        }
    }
    Ok(best)
}

fn photometry(codes: &PixelCodes, kinds: &[(&str, &[Vec<f32>])], step: f64) -> Photometry {
    let (ap, ann) = (1.0, [3.0, 5.0]);
    let mut rows = Vec::new();
    let (nx, ny) = (codes.nx, codes.ny);
    for (i, s) in codes.stamps.iter().enumerate() {
        let r = s.fwhm.max(1.5);
        let (r_in, r_out) = (ann[0] * r, ann[1] * r);
        for &(x, y) in &s.stars {
            let Some((truth, npix)) = aperture_flux(&s.clean, nx, ny, x, y, r, r_in, r_out) else {
                continue;
            };
            if truth <= 0.0 {
                continue;
            }
            let snr = truth / (s.sigma * (npix as f64).sqrt());
            let ratios = kinds
                .iter()
                .map(|(_, imgs)| {
                    aperture_flux(&imgs[i], nx, ny, x, y, r, r_in, r_out)
                        .map(|(f, _)| f / truth)
                        .unwrap_or(f64::NAN)
                })
                .collect();
            rows.push((snr, ratios));
        }
    }
    Photometry {
        step_factor: step,
        aperture_fwhm: ap,
        annulus_fwhm: ann,
        kinds: kinds.iter().map(|(k, _)| k.to_string()).collect(),
        stars: rows.len(),
        bins: bin_ratios(&rows, &[1.0, 3.0, 10.0, 30.0, 100.0, 1000.0], kinds.len()),
    }
}

fn code_point(p: &Point) -> Result<(usize, f64)> {
    let t = lc::gaussian_table(p.step_factor);
    let (mut bytes, mut est) = (0usize, 0.0);
    for sym in &p.symbols {
        let c = lc::code_with(sym.iter().map(|&v| (&t, v)));
        ensure!(
            lc::decode_with(&c.bytes, std::iter::repeat_n(&t, sym.len()))? == *sym,
            "a code stream did not decode to its symbols"
        );
        // Each stamp's normalisation shift rides along as 32 bits.
        bytes += c.bytes.len() + 4;
        est += c.est_bits + 32.0;
    }
    Ok((bytes, est))
}

/// Codes every operating point and compares it with HCOMPRESS; photometry at the point whose
/// step factor is `photometry_step` (else the first); with `examples`, a PNG there of three
/// stamps: noiseless, observation, HCOMPRESS (both matches), pixel-ae (and its counts block).
pub fn code(
    g: &PixelCodes,
    photometry_step: f64,
    examples: Option<&std::path::Path>,
) -> Result<PixelCoding> {
    let total_px = (g.nx * g.ny * g.stamps.len()).max(1) as f64;
    let img = stack(g);
    let (rice_bpp, rice) = classic(g, &img, "rice")?;
    ensure!(
        rice.iter()
            .zip(&g.stamps)
            .all(|(d, s)| d.iter().zip(&s.raw).all(|(a, b)| a == b)),
        "RICE did not give the stamps back exactly"
    );
    let (hl_bpp, _) = classic(g, &img, "hcompress")?;
    let mut sweep = Vec::new();
    let mut points = Vec::new();
    let mut measured = None;
    for p in &g.points {
        let (bytes, est) = code_point(p)?;
        let e = errors(g, &p.plain);
        let bpp = 8.0 * bytes as f64 / total_px;
        let (h, hd) = match_hcompress(g, &img, e.rmse_sigma, |h| h.errors.rmse_sigma, &mut sweep)?;
        let (hs, hsd) = match_hcompress(
            g,
            &img,
            e.rmse_sigma_sky,
            |h| h.errors.rmse_sigma_sky,
            &mut sweep,
        )?;
        // Bits per pixel fall as the scale grows: matched through their negative.
        let (hb, hbd) = match_hcompress(g, &img, -bpp, |h| -h.bpp, &mut sweep)?;
        if measured.is_none() || (p.step_factor - photometry_step).abs() < 1e-9 {
            measured = Some((p, hd, hsd, hbd));
        }
        points.push(PixelPoint {
            step_factor: p.step_factor,
            symbols_per_image: g.symbols_per_image,
            bytes,
            bpp,
            est_bpp: est / total_px,
            errors: e,
            errors_counts_block: p.counts.as_ref().map(|c| errors(g, c)),
            hcompress: h,
            hcompress_sky: hs,
            hcompress_rate: hb,
        });
    }
    sweep.sort_by(|a, b| a.scale.total_cmp(&b.scale));
    let (p, hd, hsd, hbd) = measured.context("no operating points")?;
    let raw: Vec<Vec<f32>> = g.stamps.iter().map(|s| s.raw.clone()).collect();
    let mut kinds: Vec<(&str, &[Vec<f32>])> = vec![
        ("observation", &raw),
        ("HCOMPRESS at the same RMSE/σ", &hd),
        ("HCOMPRESS at the same sky RMSE/σ", &hsd),
        ("HCOMPRESS at the same bits/pixel", &hbd),
        ("pixel-ae", &p.plain),
    ];
    if let Some(c) = &p.counts {
        kinds.push(("pixel-ae + counts block", c));
    }
    let phot = photometry(g, &kinds, p.step_factor);
    if let Some(path) = examples {
        // Three stamps, one per row: the noiseless image, then every kind measured.
        let clean: Vec<Vec<f32>> = g.stamps.iter().map(|s| s.clean.clone()).collect();
        let mut tiles = Vec::new();
        for i in 0..g.stamps.len().min(3) {
            for imgs in std::iter::once(&clean[..]).chain(kinds.iter().map(|k| k.1)) {
                tiles.push(skyzip_plot::Tile {
                    nx: g.nx,
                    ny: g.ny,
                    data: &imgs[i],
                });
            }
        }
        skyzip_plot::image_grid(
            path,
            &tiles,
            kinds.len() + 1,
            160,
            skyzip_plot::Stretch::Asinh,
        )?;
    }
    Ok(PixelCoding {
        test_items: g.stamps.len(),
        pixels_per_image: g.nx * g.ny,
        unquantised: errors(g, &g.unquantised.plain),
        unquantised_counts_block: g.unquantised.counts.as_ref().map(|c| errors(g, c)),
        points,
        hcompress_sweep: sweep,
        rice_bpp,
        hcompress_lossless_bpp: hl_bpp,
        photometry: phot,
    })
}
