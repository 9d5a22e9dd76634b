//! ZTF-like raw CCD stamps (spec §2): stars from power-law number counts, Sérsic galaxies, an
//! elliptical Moffat PSF, sky with moonlight, hot pixels, cosmic rays, Poisson and read noise,
//! gain, the inverse ZTF non-linearity, bias with a row ramp, saturation with charge bleeding,
//! and 16-bit unsigned output.
//!
//! Labels: the expected DN before noise (`clean`, with bias), the sources alone (`clean_nosky`),
//! a segmentation map (`seg`, catalogue index + 1 of the dominant source where its noiseless DN
//! exceeds 0.5·σ_bkg), masks (`source`, `cr`, `hot`, `sat`), a source catalogue and the scalars.

use crate::{Catalog, Sample, SimError, Simulator};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, StandardNormal};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Pixel scale, arcsec per pixel.
pub const PIXEL_SCALE: f64 = 1.01;
/// Full well (e⁻) above which a pixel saturates and bleeds along its column.
pub const FULL_WELL: f64 = 350_000.0;
/// Typical ZTF non-linearity coefficients: DN_true = x/(A x² + B x + 1).
pub const NONLIN_A: f64 = -7e-12;
pub const NONLIN_B: f64 = 2e-7;
const MAG_MIN_STAR: f64 = 11.0;
const MAG_MAX: f64 = 23.0;
const MAG_MIN_GAL: f64 = 16.0;
/// Half-width of the pixel PSF kernel that galaxies are convolved with (25×25 pixels).
const PSF_K: usize = 12;
/// Area of one pixel in deg².
const PIX_DEG2: f64 = (PIXEL_SCALE / 3600.0) * (PIXEL_SCALE / 3600.0);

/// A photometric band with its ZTF zero point and dark-sky brightness (mag/arcsec²).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    G,
    R,
    I,
}

impl Band {
    pub fn zero_point(self) -> f64 {
        match self {
            Band::G => 26.325,
            Band::R => 26.275,
            Band::I => 25.660,
        }
    }
    pub fn dark_sky(self) -> f64 {
        match self {
            Band::G => 22.01,
            Band::R => 21.15,
            Band::I => 19.89,
        }
    }
    pub fn index(self) -> f64 {
        match self {
            Band::G => 0.0,
            Band::R => 1.0,
            Band::I => 2.0,
        }
    }
    pub fn parse(s: &str) -> Result<Band, SimError> {
        match s {
            "g" => Ok(Band::G),
            "r" => Ok(Band::R),
            "i" => Ok(Band::I),
            _ => Err(SimError::Invalid {
                name: "band",
                why: format!("'{s}' (g, r or i)"),
            }),
        }
    }
}

/// Settings of the CCD simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct CcdConfig {
    /// Stamp side in pixels (256 for ZTF-like stamps).
    pub size: usize,
    /// A fixed band, or None for g/r/i drawn with weights 0.45/0.45/0.10.
    pub band: Option<Band>,
    /// Moonlight: sky brighter than dark by U(0, 2.5) mag; false gives dark sky.
    pub moon: bool,
    /// Draw stars and galaxies.
    pub sources: bool,
    /// Upper end of the cosmic-ray rate U(0.05, max) per stamp (spec: 0.3; up to 5 to augment).
    pub cr_rate_max: f64,
    /// Hot pixels are a property of the detector: this seed fixes them for every stamp.
    pub detector_seed: u64,
}

impl Default for CcdConfig {
    fn default() -> Self {
        CcdConfig {
            size: 256,
            band: None,
            moon: true,
            sources: true,
            cr_rate_max: 0.3,
            detector_seed: 0,
        }
    }
}

/// Moffat PSF I ∝ (1 + r²/α²)^−β with an ellipticity e = 1 − q at angle φ.
#[derive(Debug, Clone, Copy)]
pub struct Moffat {
    pub alpha: f64,
    pub beta: f64,
    pub q: f64,
    pub cos: f64,
    pub sin: f64,
    norm: f64,
}

impl Moffat {
    /// A unit-flux Moffat with FWHM (pixels), β, ellipticity and angle.
    pub fn new(fwhm: f64, beta: f64, e: f64, angle: f64) -> Moffat {
        let alpha = fwhm / (2.0 * (2f64.powf(1.0 / beta) - 1.0).sqrt());
        let q = 1.0 - e;
        Moffat {
            alpha,
            beta,
            q,
            cos: angle.cos(),
            sin: angle.sin(),
            norm: (beta - 1.0) / (PI * alpha * alpha * q),
        }
    }
    /// Surface density (per pixel²) at offset (dx, dy).
    #[inline]
    pub fn density(&self, dx: f64, dy: f64) -> f64 {
        let u = dx * self.cos + dy * self.sin;
        let v = (-dx * self.sin + dy * self.cos) / self.q;
        self.norm * (1.0 + (u * u + v * v) / (self.alpha * self.alpha)).powf(-self.beta)
    }
    /// Radius (pixels) beyond which a source of `flux` puts less than `floor` per pixel.
    pub fn radius_for(&self, flux: f64, floor: f64) -> f64 {
        let peak = flux * self.norm;
        if peak <= floor {
            return 1.0;
        }
        self.alpha / self.q * ((peak / floor).powf(1.0 / self.beta) - 1.0).max(0.0).sqrt()
    }
}

/// Γ(x) for x > 0 (Lanczos, g = 7), accurate to ~1e-13.
pub fn gamma_fn(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return PI / ((PI * x).sin() * gamma_fn(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    (2.0 * PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

/// Sérsic b_n (Ciotti & Bertin expansion, as in the spec).
pub fn sersic_b(n: f64) -> f64 {
    2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)
}

/// I_e of a Sérsic profile with total `flux`, index n, effective radius r_e and axis ratio q.
pub fn sersic_ie(flux: f64, n: f64, r_e: f64, q: f64) -> f64 {
    let b = sersic_b(n);
    flux / (2.0 * PI * n * q * r_e * r_e * b.exp() * b.powf(-2.0 * n) * gamma_fn(2.0 * n))
}

/// Pixel-integrated unit-flux PSF kernel of odd side 2K+1 (5×5 sub-samples per pixel), summing to 1.
fn psf_kernel(psf: &Moffat, k: usize) -> Vec<f64> {
    let side = 2 * k + 1;
    let mut ker = vec![0.0; side * side];
    for r in 0..side {
        for c in 0..side {
            ker[r * side + c] = pixel_integral(
                |x, y| psf.density(x, y),
                c as f64 - k as f64,
                r as f64 - k as f64,
                5,
            );
        }
    }
    let s: f64 = ker.iter().sum();
    ker.iter_mut().for_each(|v| *v /= s);
    ker
}

/// Mean of f over the pixel centred at (x, y) with os×os sub-samples.
#[inline]
fn pixel_integral(f: impl Fn(f64, f64) -> f64, x: f64, y: f64, os: usize) -> f64 {
    if os <= 1 {
        return f(x, y);
    }
    let mut s = 0.0;
    let step = 1.0 / os as f64;
    for j in 0..os {
        for i in 0..os {
            s += f(
                x - 0.5 + (i as f64 + 0.5) * step,
                y - 0.5 + (j as f64 + 0.5) * step,
            );
        }
    }
    s / (os * os) as f64
}

/// Raw DN x whose linearised value x/(A x² + B x + 1) equals `dn` (the inverse of ZTF's
/// correction, i.e. what the detector records for a true signal `dn`).
pub fn inverse_nonlinearity(dn: f64) -> f64 {
    if dn <= 0.0 {
        return dn;
    }
    let b1 = 1.0 - NONLIN_B * dn;
    2.0 * dn / (b1 + (b1 * b1 - 4.0 * NONLIN_A * dn * dn).sqrt())
}

/// The simulator, with its detector defects fixed at construction.
pub struct Ccd {
    pub config: CcdConfig,
    /// Hot-pixel excess (e⁻) per pixel of the detector, 0 where cold.
    hot: Vec<f64>,
}

impl Ccd {
    pub fn new(config: CcdConfig) -> Result<Ccd, SimError> {
        if config.size < 8 || config.size > 4096 {
            return Err(SimError::Invalid {
                name: "size",
                why: format!("{} (8 to 4096 pixels)", config.size),
            });
        }
        if !(0.05..=50.0).contains(&config.cr_rate_max) {
            return Err(SimError::Invalid {
                name: "cr_rate_max",
                why: format!("{} (0.05 to 50 per stamp)", config.cr_rate_max),
            });
        }
        let mut rng = crate::sample_rng(config.detector_seed, u64::MAX);
        let npix = config.size * config.size;
        let frac = 10f64.powf(rng.random_range(-4.0..-3.0));
        let mut hot = vec![0.0; npix];
        for h in hot.iter_mut() {
            if rng.random::<f64>() < frac {
                *h = 10f64.powf(rng.random_range(1.7..3.7));
            }
        }
        Ok(Ccd { config, hot })
    }

    /// Sky electrons per pixel for a zero point, sky brightness and gain.
    pub fn sky_electrons(zp: f64, sb: f64, gain: f64) -> f64 {
        10f64.powf(0.4 * (zp - sb)) * PIXEL_SCALE * PIXEL_SCALE * gain
    }
}

/// Magnitude from N(<m) ∝ 10^(α m) on [lo, hi] by inverse CDF.
fn power_law_mag(rng: &mut ChaCha8Rng, alpha: f64, lo: f64, hi: f64) -> f64 {
    let a = 10f64.powf(alpha * lo);
    let b = 10f64.powf(alpha * hi);
    (a + rng.random::<f64>() * (b - a)).log10() / alpha
}

/// Accumulates one source into the image and the segmentation bookkeeping.
struct Canvas {
    n: usize,
    src: Vec<f64>,
    best: Vec<f64>,
    seg: Vec<u32>,
}

impl Canvas {
    /// Adds a local box (x0, y0 = its lower-left pixel in stamp coordinates) for source `id`.
    fn add(&mut self, x0: i64, y0: i64, w: usize, h: usize, vals: &[f64], id: u32) {
        let n = self.n as i64;
        for r in 0..h {
            let y = y0 + r as i64;
            if y < 0 || y >= n {
                continue;
            }
            for c in 0..w {
                let x = x0 + c as i64;
                if x < 0 || x >= n {
                    continue;
                }
                let v = vals[r * w + c];
                let i = (y * n + x) as usize;
                self.src[i] += v;
                if v > self.best[i] {
                    self.best[i] = v;
                    self.seg[i] = id;
                }
            }
        }
    }
}

impl Simulator for Ccd {
    fn name(&self) -> &'static str {
        "ccd"
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample {
        let cfg = &self.config;
        let n = cfg.size;
        let npix = n * n;
        // 1. Stamp parameters.
        let band = cfg.band.unwrap_or_else(|| {
            let u: f64 = rng.random();
            if u < 0.45 {
                Band::G
            } else if u < 0.9 {
                Band::R
            } else {
                Band::I
            }
        });
        let fwhm_arcsec = LogNormal::new(2f64.ln(), 0.2)
            .unwrap()
            .sample(rng)
            .clamp(1.4, 4.0);
        let fwhm = fwhm_arcsec / PIXEL_SCALE;
        let beta = rng.random_range(2.5..4.5);
        let e = rng.random_range(0.0..0.1);
        let psf_angle = rng.random_range(0.0..PI);
        let psf = Moffat::new(fwhm, beta, e, psf_angle);
        let sb = band.dark_sky()
            - if cfg.moon {
                rng.random_range(0.0..2.5)
            } else {
                0.0
            };
        let zp = band.zero_point() + 0.05 * rng.sample::<f64, _>(StandardNormal);
        let gain = rng.random_range(5.8..6.4);
        let rn = rng.random_range(8.0..10.5);
        let bias = rng.random_range(700.0..1300.0);
        let ramp = rng.random_range(-5.0..5.0);
        let grad = (rng.random_range(-0.01..0.01), rng.random_range(-0.01..0.01));
        let star_slope = rng.random_range(0.2..0.35);
        let log_n26 = rng.random_range(4.0..5.5);

        // 2. Sky (e⁻/px) with a gradient of ≤ 1 % across the stamp.
        let sky_e = Ccd::sky_electrons(zp, sb, gain);
        let sigma_bkg_dn = (sky_e + rn * rn).sqrt() / gain;

        // 3. Sources, positions U(−16, n + 16).
        let margin = 16.0;
        let span = n as f64 + 2.0 * margin;
        let area = span * span * PIX_DEG2;
        let mut cat = Catalog::new(&[
            "x", "y", "mag", "type", "flux_dn", "sersic_n", "r_e_px", "q", "pa",
        ]);
        let mut canvas = Canvas {
            n,
            src: vec![0.0; npix],
            best: vec![0.0; npix],
            seg: vec![0; npix],
        };
        // Below this per-pixel contribution (e⁻) a source's wings are not drawn.
        let floor = 0.02;
        if cfg.sources {
            let n26 = 10f64.powf(log_n26);
            let lo = 10f64.powf(star_slope * (MAG_MIN_STAR - 26.0));
            let hi = 10f64.powf(star_slope * (MAG_MAX - 26.0));
            let n_stars = crate::noise::poisson(rng, n26 * (hi - lo) * area) as usize;
            // dN/dm = 1.5e3·10^(0.45(m−20)) deg⁻² mag⁻¹ on [16, 23].
            let gal_total = 1.5e3 / (0.45 * std::f64::consts::LN_10)
                * (10f64.powf(0.45 * (MAG_MAX - 20.0)) - 10f64.powf(0.45 * (MAG_MIN_GAL - 20.0)));
            let n_gal = crate::noise::poisson(rng, gal_total * area) as usize;
            let kernel = psf_kernel(&psf, PSF_K);
            let kside = 2 * PSF_K + 1;
            for _ in 0..n_stars {
                let x = rng.random_range(-margin..n as f64 + margin);
                let y = rng.random_range(-margin..n as f64 + margin);
                let mag = power_law_mag(rng, star_slope, MAG_MIN_STAR, MAG_MAX);
                let flux_dn = 10f64.powf(0.4 * (zp - mag));
                let flux_e = flux_dn * gain;
                let rad = psf.radius_for(flux_e, floor).clamp(2.0, 3.0 * n as f64);
                let (x0, x1) = ((x - rad).floor() as i64, (x + rad).ceil() as i64);
                let (y0, y1) = ((y - rad).floor() as i64, (y + rad).ceil() as i64);
                let (x0, x1) = (x0.max(0), x1.min(n as i64 - 1));
                let (y0, y1) = (y0.max(0), y1.min(n as i64 - 1));
                let id = cat.rows.len() as u32 + 1;
                cat.push(vec![x, y, mag, 0.0, flux_dn, 0.0, 0.0, 1.0 - e, psf_angle]);
                if x1 < x0 || y1 < y0 {
                    continue;
                }
                let (w, h) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
                let mut vals = vec![0.0; w * h];
                for r in 0..h {
                    for c in 0..w {
                        let dx = (x0 + c as i64) as f64 - x;
                        let dy = (y0 + r as i64) as f64 - y;
                        let os = if dx * dx + dy * dy < 4.0 * fwhm * fwhm {
                            5
                        } else {
                            1
                        };
                        vals[r * w + c] =
                            flux_e * pixel_integral(|u, v| psf.density(u, v), dx, dy, os);
                    }
                }
                canvas.add(x0, y0, w, h, &vals, id);
            }
            for _ in 0..n_gal {
                let x = rng.random_range(-margin..n as f64 + margin);
                let y = rng.random_range(-margin..n as f64 + margin);
                let mag = power_law_mag(rng, 0.45, MAG_MIN_GAL, MAG_MAX);
                let sn = if rng.random::<f64>() < 0.6 {
                    1.0
                } else {
                    rng.random_range(2.5..4.5)
                };
                let re_arcsec = LogNormal::new((1.2 * 10f64.powf(-0.15 * (mag - 20.0))).ln(), 0.4)
                    .unwrap()
                    .sample(rng);
                let re = (re_arcsec / PIXEL_SCALE).clamp(0.2, 40.0);
                let q = rng.random_range(0.3..1.0);
                let pa = rng.random_range(0.0..PI);
                let flux_dn = 10f64.powf(0.4 * (zp - mag));
                let flux_e = flux_dn * gain;
                let id = cat.rows.len() as u32 + 1;
                cat.push(vec![x, y, mag, 1.0, flux_dn, sn, re, q, pa]);
                // The Sérsic profile on a local grid out to 6 R_e (renormalised to the flux),
                // then convolved with the pixel PSF kernel by scattering.
                let rg = (6.0 * re).max(2.0).ceil() as i64;
                let (cx, cy) = (x.round() as i64, y.round() as i64);
                let (gx0, gy0) = (cx - rg, cy - rg);
                let gs = (2 * rg + 1) as usize;
                let b = sersic_b(sn);
                let (ca, sa) = (pa.cos(), pa.sin());
                let prof = |dx: f64, dy: f64| {
                    let u = dx * ca + dy * sa;
                    let v = (-dx * sa + dy * ca) / q;
                    let rr = (u * u + v * v).sqrt() / re;
                    (-b * (rr.powf(1.0 / sn) - 1.0)).exp()
                };
                let mut gal = vec![0.0; gs * gs];
                let inner = (2.0f64).max(re);
                for r in 0..gs {
                    for c in 0..gs {
                        let dx = (gx0 + c as i64) as f64 - x;
                        let dy = (gy0 + r as i64) as f64 - y;
                        let os = if dx * dx + dy * dy < inner * inner {
                            5
                        } else {
                            1
                        };
                        gal[r * gs + c] = pixel_integral(prof, dx, dy, os);
                    }
                }
                let s: f64 = gal.iter().sum();
                if s <= 0.0 {
                    continue;
                }
                let scale = flux_e / s;
                let k = PSF_K as i64;
                let os_side = gs + kside - 1;
                let mut conv = vec![0.0; os_side * os_side];
                for r in 0..gs {
                    for c in 0..gs {
                        let v = gal[r * gs + c] * scale;
                        if v < 1e-3 * floor {
                            continue;
                        }
                        for kr in 0..kside {
                            let row =
                                &mut conv[(r + kr) * os_side + c..(r + kr) * os_side + c + kside];
                            let krow = &kernel[kr * kside..(kr + 1) * kside];
                            for (o, kv) in row.iter_mut().zip(krow) {
                                *o += v * kv;
                            }
                        }
                    }
                }
                canvas.add(gx0 - k, gy0 - k, os_side, os_side, &conv, id);
            }
        }

        // 4.–10. Hot pixels, Poisson, cosmic rays, read noise, gain, non-linearity, bias, saturation.
        let mut hot_e = self.hot.clone();
        let mut hotmask: Vec<bool> = hot_e.iter().map(|&h| h > 0.0).collect();
        let bad_column = rng.random::<f64>() < 0.02;
        if bad_column {
            let col = rng.random_range(0..n);
            let excess = rng.random_range(20.0..200.0);
            for r in 0..n {
                hot_e[r * n + col] += excess;
                hotmask[r * n + col] = true;
            }
        }
        let half = (n as f64 - 1.0) / 2.0;
        let mut lambda = vec![0.0; npix];
        let mut electrons = vec![0.0; npix];
        for r in 0..n {
            for c in 0..n {
                let i = r * n + c;
                let g = 1.0
                    + grad.0 * (c as f64 - half) / n as f64
                    + grad.1 * (r as f64 - half) / n as f64;
                let l = sky_e * g + canvas.src[i] + hot_e[i];
                lambda[i] = l;
                electrons[i] = if l > 1e4 {
                    l + l.sqrt() * rng.sample::<f64, _>(StandardNormal)
                } else {
                    crate::noise::poisson(rng, l)
                };
            }
        }
        // Cosmic rays: 60 % spots/worms of 1–4 px, 40 % straight tracks of 2–15 px.
        let cr_rate = rng.random_range(0.05..cfg.cr_rate_max.max(0.0501));
        let n_cr = crate::noise::poisson(rng, cr_rate) as usize;
        let mut crmask = vec![false; npix];
        for _ in 0..n_cr {
            let charge = 10f64.powf(rng.random_range(500f64.log10()..2e4f64.log10()));
            let mut path: Vec<(i64, i64)> = Vec::new();
            let (mut px, mut py) = (rng.random_range(0..n) as i64, rng.random_range(0..n) as i64);
            if rng.random::<f64>() < 0.6 {
                let len = rng.random_range(1..=4);
                for _ in 0..len {
                    path.push((px, py));
                    match rng.random_range(0..4) {
                        0 => px += 1,
                        1 => px -= 1,
                        2 => py += 1,
                        _ => py -= 1,
                    }
                }
            } else {
                let len = rng.random_range(2..=15);
                let ang = rng.random_range(0.0..2.0 * PI);
                let (fx, fy) = (px as f64, py as f64);
                for s in 0..len {
                    let p = (
                        (fx + s as f64 * ang.cos()).round() as i64,
                        (fy + s as f64 * ang.sin()).round() as i64,
                    );
                    if path.last() != Some(&p) {
                        path.push(p);
                    }
                }
            }
            let per = charge / path.len() as f64;
            for (x, y) in path {
                if x >= 0 && y >= 0 && (x as usize) < n && (y as usize) < n {
                    let i = y as usize * n + x as usize;
                    electrons[i] += per;
                    crmask[i] = true;
                }
            }
        }
        // Saturation: charge above the full well bleeds up and down its column.
        let mut satmask = vec![false; npix];
        for c in 0..n {
            for r in 0..n {
                let i = r * n + c;
                if electrons[i] > FULL_WELL {
                    let excess = electrons[i] - FULL_WELL;
                    electrons[i] = FULL_WELL;
                    satmask[i] = true;
                    for (dir, share) in [(1i64, 0.5), (-1i64, 0.5)] {
                        let mut left = excess * share;
                        let mut rr = r as i64 + dir;
                        while left > 0.0 && rr >= 0 && (rr as usize) < n {
                            let j = rr as usize * n + c;
                            let room = (FULL_WELL - electrons[j]).max(0.0);
                            let put = left.min(room);
                            electrons[j] += put;
                            left -= put;
                            if electrons[j] >= FULL_WELL {
                                satmask[j] = true;
                            }
                            rr += dir;
                        }
                    }
                }
            }
        }
        let mut image = vec![0.0f32; npix];
        let mut clean = vec![0.0f32; npix];
        let mut nosky = vec![0.0f32; npix];
        let read = Normal::new(0.0, rn).unwrap();
        for r in 0..n {
            let row_bias = bias + ramp * r as f64 / (n - 1) as f64;
            for c in 0..n {
                let i = r * n + c;
                let ne = electrons[i] + read.sample(rng);
                let dn = inverse_nonlinearity(ne / gain) + row_bias;
                let v = dn.round();
                let v = if satmask[i] || v >= 65535.0 {
                    satmask[i] = true;
                    65535.0
                } else {
                    v.max(0.0)
                };
                image[i] = v as f32;
                clean[i] = (inverse_nonlinearity(lambda[i] / gain) + row_bias) as f32;
                nosky[i] = (canvas.src[i] / gain) as f32;
            }
        }
        let seg_threshold = 0.5 * sigma_bkg_dn;
        let seg: Vec<f32> = (0..npix)
            .map(|i| {
                if canvas.src[i] / gain > seg_threshold {
                    canvas.seg[i] as f32
                } else {
                    0.0
                }
            })
            .collect();
        let source: Vec<bool> = seg.iter().map(|&s| s > 0.0).collect();

        let mut params = BTreeMap::new();
        params.insert("band".into(), band.index());
        params.insert("seeing_arcsec".into(), fwhm_arcsec);
        params.insert("moffat_beta".into(), beta);
        params.insert("psf_e".into(), e);
        params.insert("psf_angle".into(), psf_angle);
        params.insert("sky_sb".into(), sb);
        params.insert("sky_dn".into(), sky_e / gain);
        params.insert("zp".into(), zp);
        params.insert("gain".into(), gain);
        params.insert("read_noise_e".into(), rn);
        params.insert("bias".into(), bias);
        params.insert("bias_ramp".into(), ramp);
        params.insert("sigma_bkg_dn".into(), sigma_bkg_dn);
        params.insert("star_slope".into(), star_slope);
        params.insert("log_n26".into(), log_n26);
        params.insert("n_sources".into(), cat.rows.len() as f64);
        params.insert("n_cosmic_rays".into(), n_cr as f64);
        let mut maps = BTreeMap::new();
        maps.insert("clean_nosky".into(), nosky);
        maps.insert("seg".into(), seg);
        let mut masks = BTreeMap::new();
        masks.insert("source".into(), source);
        masks.insert("cr".into(), crmask);
        masks.insert("hot".into(), hotmask);
        masks.insert("sat".into(), satmask);
        Sample {
            nx: n,
            ny: n,
            image,
            clean,
            params,
            maps,
            masks,
            catalog: cat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample_rng;

    #[test]
    fn gamma_and_sersic_normalisation() {
        assert!((gamma_fn(5.0) - 24.0).abs() < 1e-9);
        assert!((gamma_fn(0.5) - PI.sqrt()).abs() < 1e-12);
        // Integrate a Sérsic n = 4 profile numerically: its total equals the flux it was made for.
        let (n, re, q) = (4.0, 3.0, 0.7);
        let ie = sersic_ie(1000.0, n, re, q);
        let b = sersic_b(n);
        let mut s = 0.0;
        let h = 0.01;
        let mut r = h / 2.0;
        while r < 400.0 * re {
            s += ie * (-b * ((r / re).powf(1.0 / n) - 1.0)).exp() * 2.0 * PI * r * q * h;
            r += h;
        }
        assert!((s / 1000.0 - 1.0).abs() < 2e-3, "{s}");
    }

    #[test]
    fn moffat_is_unit_flux_and_has_the_fwhm() {
        let m = Moffat::new(2.5, 3.0, 0.0, 0.0);
        let peak = m.density(0.0, 0.0);
        assert!((m.density(1.25, 0.0) / peak - 0.5).abs() < 1e-12);
        let mut s = 0.0;
        for r in -400..=400 {
            for c in -400..=400 {
                s += m.density(c as f64 * 0.25, r as f64 * 0.25) * 0.0625;
            }
        }
        assert!((s - 1.0).abs() < 1e-3, "{s}");
    }

    #[test]
    fn nonlinearity_inverts_ztf_correction() {
        for dn in [0.0, 10.0, 1e3, 3e4, 6e4] {
            let x = inverse_nonlinearity(dn);
            let back = x / (NONLIN_A * x * x + NONLIN_B * x + 1.0);
            assert!((back - dn).abs() < 1e-6 * (1.0 + dn), "{dn} {x} {back}");
        }
        // Under 1 % at 50 kDN.
        assert!((inverse_nonlinearity(5e4) / 5e4 - 1.0).abs() < 0.01);
    }

    #[test]
    fn r_band_dark_sky_is_114_dn() {
        let sky = Ccd::sky_electrons(Band::R.zero_point(), Band::R.dark_sky(), 6.2) / 6.2;
        assert!((sky - 114.0).abs() < 2.0, "{sky}");
    }

    #[test]
    fn background_noise_matches_sky_gain_and_read_noise() {
        let ccd = Ccd::new(CcdConfig {
            band: Some(Band::R),
            moon: false,
            ..Default::default()
        })
        .unwrap();
        for i in 0..4 {
            let s = ccd.sample(&mut sample_rng(3, i));
            let p = &s.params;
            let expect = (p["sky_dn"] * p["gain"] + p["read_noise_e"].powi(2)).sqrt() / p["gain"];
            // Residuals over background pixels (no source, CR, hot or saturated pixel).
            let res: Vec<f64> = (0..s.image.len())
                .filter(|&k| {
                    !s.masks["source"][k]
                        && !s.masks["cr"][k]
                        && !s.masks["hot"][k]
                        && !s.masks["sat"][k]
                })
                .map(|k| (s.image[k] - s.clean[k]) as f64)
                .collect();
            let m = res.iter().sum::<f64>() / res.len() as f64;
            let sd = (res.iter().map(|v| (v - m).powi(2)).sum::<f64>() / res.len() as f64).sqrt();
            // Rounding to integers adds 1/12 DN² of variance.
            let expect_q = (expect * expect + 1.0 / 12.0).sqrt();
            assert!((sd / expect_q - 1.0).abs() < 0.05, "σ {sd} vs {expect_q}");
            assert!(res.len() > 40_000);
            // Dark r-band sky: about 114 DN with σ about 4.5 DN (spec §2.1).
            assert!((p["sky_dn"] - 114.0).abs() < 12.0 && (4.0..5.2).contains(&expect));
            // The clean image's clipped median minus bias is the sky, within 1 %.
            let mut bg: Vec<f64> = (0..s.clean.len())
                .filter(|&k| !s.masks["source"][k] && !s.masks["hot"][k])
                .map(|k| s.clean[k] as f64)
                .collect();
            bg.sort_by(f64::total_cmp);
            let med = bg[bg.len() / 2] - p["bias"] - p["bias_ramp"] / 2.0;
            assert!(
                (med / p["sky_dn"] - 1.0).abs() < 0.01,
                "{med} vs {}",
                p["sky_dn"]
            );
        }
    }

    #[test]
    fn stamps_are_raw_16_bit_with_labels() {
        let ccd = Ccd::new(CcdConfig::default()).unwrap();
        let mut n_src = 0;
        for i in 0..6 {
            let s = ccd.sample(&mut sample_rng(11, i));
            assert!(s
                .image
                .iter()
                .all(|&v| (0.0..=65535.0).contains(&v) && v.fract() == 0.0));
            assert_eq!(s.catalog.rows.len() as f64, s.params["n_sources"]);
            n_src += s.catalog.rows.len();
            // Saturated pixels read 65535 and nothing else does.
            for k in 0..s.image.len() {
                assert_eq!(s.masks["sat"][k], s.image[k] == 65535.0);
            }
            // The segmentation refers to catalogue rows.
            let max_id = s.maps["seg"].iter().cloned().fold(0.0, f32::max) as usize;
            assert!(max_id <= s.catalog.rows.len());
        }
        assert!(n_src > 6 * 20, "{n_src} sources in 6 stamps");
    }

    #[test]
    fn hot_pixels_belong_to_the_detector() {
        let ccd = Ccd::new(CcdConfig::default()).unwrap();
        let a = ccd.sample(&mut sample_rng(1, 0));
        let b = ccd.sample(&mut sample_rng(1, 1));
        let detector: Vec<usize> = (0..ccd.hot.len()).filter(|&k| ccd.hot[k] > 0.0).collect();
        assert!(!detector.is_empty());
        for k in detector {
            assert!(
                a.masks["hot"][k] && b.masks["hot"][k],
                "hot pixel {k} in every stamp"
            );
            assert!(a.image[k] as f64 > a.params["bias"]);
        }
    }
}
