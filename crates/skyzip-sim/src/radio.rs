//! FIRST/MiraBest-like radio galaxies (spec §3): FRI (edge-darkened jets and plumes), FRII
//! (lobes with hotspots, faint often one-sided jets), hybrids and bent (wide-angle-tail) FRIs,
//! on a 150×150 grid of 1.8″ pixels in Jy/beam, with a 5.4″ (3 px) Gaussian beam, unrelated
//! compact sources and beam-correlated noise.
//!
//! Every component is a Gaussian, so its convolution with the beam is exact (the covariances
//! add) and each is integrated over pixels with 3×3 sub-samples. The Fanaroff–Riley ratio R_FR
//! is measured on the noiseless image and a drawn FRI/FRII is redrawn until it agrees.

use crate::{Catalog, Sample, SimError, Simulator};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, StandardNormal};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Pixel scale, arcsec per pixel (FIRST cut-outs).
pub const PIXEL_SCALE: f64 = 1.8;
/// Beam FWHM in pixels (5.4″).
pub const BEAM_FWHM: f64 = 3.0;
const FWHM_TO_SIGMA: f64 = 0.424_660_900_144_009_5;

/// Morphological class, coded like MiraBest's first digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadioClass {
    Fri,
    Frii,
    Hybrid,
}

/// Settings of the radio simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct RadioConfig {
    /// Image side in pixels (150 as MiraBest; 300 as the FIRST FITS cut-outs).
    pub size: usize,
    /// A fixed class, or None for FRI 0.47 / FRII 0.50 / hybrid 0.03 (MiraBest's proportions).
    pub class: Option<RadioClass>,
    /// Probability that an FRI is bent into a wide-angle tail (bend 30–90°).
    pub p_bent: f64,
}

impl Default for RadioConfig {
    fn default() -> Self {
        RadioConfig {
            size: 150,
            class: None,
            p_bent: 0.15,
        }
    }
}

/// The simulator.
pub struct Radio {
    pub config: RadioConfig,
}

impl Radio {
    pub fn new(config: RadioConfig) -> Result<Radio, SimError> {
        if !(32..=1024).contains(&config.size) {
            return Err(SimError::Invalid {
                name: "size",
                why: format!("{} (32 to 1024 pixels)", config.size),
            });
        }
        if !(0.0..=1.0).contains(&config.p_bent) {
            return Err(SimError::Invalid {
                name: "p_bent",
                why: format!("{} is not a probability", config.p_bent),
            });
        }
        Ok(Radio { config })
    }
}

/// A Gaussian component before the beam: flux (relative or Jy), centre, σ along/across, angle.
#[derive(Debug, Clone, Copy)]
struct Comp {
    kind: f64,
    flux: f64,
    x: f64,
    y: f64,
    s_major: f64,
    s_minor: f64,
    pa: f64,
}

/// Adds a beam-convolved Gaussian component to `img` in Jy/beam (flux in Jy).
fn render(img: &mut [f64], n: usize, c: &Comp) {
    let sb2 = (BEAM_FWHM * FWHM_TO_SIGMA).powi(2);
    let (a2, b2) = (c.s_major * c.s_major + sb2, c.s_minor * c.s_minor + sb2);
    let beam_area = 2.0 * PI * sb2;
    let amp = c.flux * beam_area / (2.0 * PI * (a2 * b2).sqrt());
    let (ca, sa) = (c.pa.cos(), c.pa.sin());
    let reach = 5.0 * a2.max(b2).sqrt();
    let x0 = ((c.x - reach).floor().max(0.0)) as usize;
    let y0 = ((c.y - reach).floor().max(0.0)) as usize;
    let x1 = ((c.x + reach).ceil().min(n as f64 - 1.0)).max(-1.0);
    let y1 = ((c.y + reach).ceil().min(n as f64 - 1.0)).max(-1.0);
    if x1 < 0.0 || y1 < 0.0 {
        return;
    }
    let (x1, y1) = (x1 as usize, y1 as usize);
    for py in y0..=y1 {
        for px in x0..=x1 {
            let mut s = 0.0;
            for j in 0..3 {
                for i in 0..3 {
                    let dx = px as f64 - 0.5 + (i as f64 + 0.5) / 3.0 - c.x;
                    let dy = py as f64 - 0.5 + (j as f64 + 0.5) / 3.0 - c.y;
                    let u = dx * ca + dy * sa;
                    let v = -dx * sa + dy * ca;
                    s += (-0.5 * (u * u / a2 + v * v / b2)).exp();
                }
            }
            img[py * n + px] += amp * s / 9.0;
        }
    }
}

/// Point on a quadratic Bézier curve.
fn bezier(p0: (f64, f64), p1: (f64, f64), p2: (f64, f64), t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    (
        u * u * p0.0 + 2.0 * u * t * p1.0 + t * t * p2.0,
        u * u * p0.1 + 2.0 * u * t * p1.1 + t * t * p2.1,
    )
}

/// One realisation of the simulator's noise on an `n`×`n` map: white Gaussian noise smoothed by
/// the beam, then set to zero mean and standard deviation `rms` (Jy/beam) over the map.
pub fn noise_field(rng: &mut ChaCha8Rng, n: usize, rms: f64) -> Vec<f64> {
    let white: Vec<f64> = (0..n * n)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    let mut noise = beam_smooth(&white, n);
    let m = noise.iter().sum::<f64>() / noise.len() as f64;
    let sd = (noise.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / noise.len() as f64).sqrt();
    noise.iter_mut().for_each(|v| *v = (*v - m) / sd * rms);
    noise
}

/// Separable beam smoothing of a white field (periodic edges, kernel truncated at 4σ).
fn beam_smooth(v: &[f64], n: usize) -> Vec<f64> {
    let s = BEAM_FWHM * FWHM_TO_SIGMA;
    let k = (4.0 * s).ceil() as i64;
    let ker: Vec<f64> = (-k..=k)
        .map(|i| (-0.5 * (i as f64 / s).powi(2)).exp())
        .collect();
    // One 1-D pass; `step` is 1 along rows, n along columns.
    let pass = |v: &[f64], step: usize| -> Vec<f64> {
        let mut out = vec![0.0; n * n];
        for (i, o) in out.iter_mut().enumerate() {
            let (line, pos) = if step == 1 {
                (i - i % n, i % n)
            } else {
                (i % n, i / n)
            };
            *o = ker
                .iter()
                .enumerate()
                .map(|(t, kv)| {
                    kv * v[line + (pos as i64 + t as i64 - k).rem_euclid(n as i64) as usize * step]
                })
                .sum();
        }
        out
    };
    pass(&pass(v, 1), n)
}

/// The Fanaroff–Riley ratio on a noiseless image: the separation between the brightest pixels on
/// either side of the core (across the line perpendicular to the source axis through the core,
/// excluding one beam FWHM around the core) over the largest angular size `las`.
pub fn fr_ratio(img: &[f64], n: usize, core: (f64, f64), axis: f64, las: f64) -> f64 {
    let (ca, sa) = (axis.cos(), axis.sin());
    let mut best = [(f64::MIN, 0.0, 0.0); 2];
    for r in 0..n {
        for c in 0..n {
            let (dx, dy) = (c as f64 - core.0, r as f64 - core.1);
            if dx * dx + dy * dy < BEAM_FWHM * BEAM_FWHM {
                continue;
            }
            let side = usize::from(dx * ca + dy * sa < 0.0);
            let v = img[r * n + c];
            if v > best[side].0 {
                best[side] = (v, dx, dy);
            }
        }
    }
    let sep = ((best[0].1 - best[1].1).powi(2) + (best[0].2 - best[1].2).powi(2)).sqrt();
    sep / las
}

struct Drawn {
    comps: Vec<Comp>,
    core: (f64, f64),
    axis: f64,
    las: f64,
    bend: f64,
}

/// Draws one source's components (relative fluxes summing to 1).
fn draw_source(rng: &mut ChaCha8Rng, n: usize, class: RadioClass, bent: bool) -> Drawn {
    let c0 = n as f64 / 2.0 - 0.5;
    let off = Normal::new(0.0, 2.0).unwrap();
    let core = (c0 + off.sample(rng), c0 + off.sample(rng));
    let median = if class == RadioClass::Fri { 31.0 } else { 17.0 };
    let las = LogNormal::new(f64::ln(median), 0.7)
        .unwrap()
        .sample(rng)
        .clamp(5.0, 150.0);
    let axis = rng.random_range(0.0..2.0 * PI);
    let bend = if bent {
        rng.random_range(30f64..90.0).to_radians() * if rng.random::<bool>() { 1.0 } else { -1.0 }
    } else {
        5f64.to_radians() * rng.sample::<f64, _>(StandardNormal)
    };
    let side_flux = 10f64.powf(rng.random_range(-0.3..0.3));
    let arm_ratio = rng.random_range(0.7..1.0);
    let core_frac = match class {
        RadioClass::Fri => 10f64.powf(rng.random_range(0.02f64.log10()..0.3f64.log10())),
        _ => 10f64.powf(rng.random_range(0.005f64.log10()..0.1f64.log10())),
    };
    // Arm 0 points along `axis`, arm 1 opposite, bent by `bend`; one arm is shorter.
    let short = rng.random_range(0..2usize);
    let hybrid_fri_side = rng.random_range(0..2usize);
    let mut comps = vec![Comp {
        kind: 0.0,
        flux: core_frac,
        x: core.0,
        y: core.1,
        s_major: 0.0,
        s_minor: 0.0,
        pa: 0.0,
    }];
    let w = [side_flux / (1.0 + side_flux), 1.0 / (1.0 + side_flux)];
    for (arm, w_arm) in w.iter().enumerate() {
        let dir = if arm == 0 { axis } else { axis + PI + bend };
        let len = las / 2.0 * if arm == short { arm_ratio } else { 1.0 };
        let arm_flux = (1.0 - core_frac) * w_arm;
        let fri_like = match class {
            RadioClass::Fri => true,
            RadioClass::Frii => false,
            RadioClass::Hybrid => arm == hybrid_fri_side,
        };
        // The jet follows a quadratic Bézier whose control point is pushed sideways.
        let end = (core.0 + len * dir.cos(), core.1 + len * dir.sin());
        let curl = if bent {
            0.25 * bend.signum()
        } else {
            0.1 * rng.sample::<f64, _>(StandardNormal)
        };
        let mid = (
            (core.0 + end.0) / 2.0 - curl * len * dir.sin(),
            (core.1 + end.1) / 2.0 + curl * len * dir.cos(),
        );
        let knots = (len / 1.0).ceil().max(3.0) as usize;
        if fri_like {
            // Edge-darkened: brightness ∝ exp(−s/ℓ), widening from 1 px to 3–8 px; a faint plume.
            let ell = rng.random_range(0.2..0.5) * len;
            let w_end = rng.random_range(3.0..8.0);
            let plume_frac = rng.random_range(0.05..0.25);
            let weights: Vec<f64> = (0..knots)
                .map(|k| (-(k as f64 + 0.5) / knots as f64 * len / ell).exp())
                .collect();
            let total: f64 = weights.iter().sum();
            for (k, wk) in weights.iter().enumerate() {
                let t = (k as f64 + 0.5) / knots as f64;
                let (x, y) = bezier(core, mid, end, t);
                let width = 1.0 + (w_end - 1.0) * t;
                let (tx, ty) = (
                    2.0 * (1.0 - t) * (mid.0 - core.0) + 2.0 * t * (end.0 - mid.0),
                    2.0 * (1.0 - t) * (mid.1 - core.1) + 2.0 * t * (end.1 - mid.1),
                );
                comps.push(Comp {
                    kind: 1.0,
                    flux: arm_flux * (1.0 - plume_frac) * wk / total,
                    x,
                    y,
                    s_major: width * 1.2,
                    s_minor: width,
                    pa: ty.atan2(tx),
                });
            }
            comps.push(Comp {
                kind: 2.0,
                flux: arm_flux * plume_frac,
                x: end.0,
                y: end.1,
                s_major: (0.15 * las).max(w_end),
                s_minor: (0.1 * las).max(w_end),
                pa: dir,
            });
        } else {
            // FRII: a faint jet (≤ 5 %, absent on one side half the time), a lobe at the end with
            // a compact hotspot near its outer edge carrying 20–60 % of the lobe's flux.
            let jet_frac = if arm == 1 && rng.random::<bool>() {
                0.0
            } else {
                rng.random_range(0.0..0.05)
            };
            let lobe_a = rng.random_range(0.1..0.3) * las;
            let lobe_b = lobe_a * rng.random_range(0.4..1.0);
            let hs_frac = rng.random_range(0.2..0.6);
            let lobe_flux = arm_flux * (1.0 - jet_frac);
            if jet_frac > 0.0 {
                for k in 0..knots {
                    let t = (k as f64 + 0.5) / knots as f64;
                    let (x, y) = bezier(core, mid, end, t);
                    comps.push(Comp {
                        kind: 1.0,
                        flux: arm_flux * jet_frac / knots as f64,
                        x,
                        y,
                        s_major: 1.0,
                        s_minor: 0.7,
                        pa: dir,
                    });
                }
            }
            // The lobe is centred inside the end so that its outer edge is the arm's end.
            let (ex, ey) = ((end.0 - mid.0), (end.1 - mid.1));
            let en = (ex * ex + ey * ey).sqrt().max(1e-9);
            let (ux, uy) = (ex / en, ey / en);
            let lobe_c = (end.0 - 0.5 * lobe_a * ux, end.1 - 0.5 * lobe_a * uy);
            comps.push(Comp {
                kind: 2.0,
                flux: lobe_flux * (1.0 - hs_frac),
                x: lobe_c.0,
                y: lobe_c.1,
                s_major: lobe_a / 2.0,
                s_minor: lobe_b / 2.0,
                pa: uy.atan2(ux),
            });
            let at = rng.random_range(0.85..1.0);
            let hs = (
                lobe_c.0 + (at - 0.5) * lobe_a * ux,
                lobe_c.1 + (at - 0.5) * lobe_a * uy,
            );
            let s = rng.random_range(0.3..1.0);
            comps.push(Comp {
                kind: 3.0,
                flux: lobe_flux * hs_frac,
                x: hs.0,
                y: hs.1,
                s_major: s,
                s_minor: s,
                pa: 0.0,
            });
        }
    }
    Drawn {
        comps,
        core,
        axis,
        las,
        bend,
    }
}

impl Simulator for Radio {
    fn name(&self) -> &'static str {
        "radio"
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample {
        let n = self.config.size;
        let class = self.config.class.unwrap_or_else(|| {
            let u: f64 = rng.random();
            if u < 0.47 {
                RadioClass::Fri
            } else if u < 0.97 {
                RadioClass::Frii
            } else {
                RadioClass::Hybrid
            }
        });
        let bent = class == RadioClass::Fri && rng.random::<f64>() < self.config.p_bent;
        // Draw until the Fanaroff–Riley ratio agrees with the class (hybrids: any ratio).
        let mut tries = 0;
        let (drawn, mut clean, r_fr) = loop {
            tries += 1;
            let d = draw_source(rng, n, class, bent);
            let mut img = vec![0.0; n * n];
            for c in &d.comps {
                render(&mut img, n, c);
            }
            let r = fr_ratio(&img, n, d.core, d.axis, d.las);
            let ok = match class {
                RadioClass::Fri => r < 0.5,
                RadioClass::Frii => r > 0.5,
                RadioClass::Hybrid => true,
            };
            if ok || tries >= 200 {
                break (d, img, r);
            }
        };
        // Scale so that the beam-convolved peak is log-uniform in [1.5, 80] mJy/beam.
        let peak_target = 10f64.powf(rng.random_range(1.5f64.log10()..80f64.log10())) * 1e-3;
        let peak = clean.iter().cloned().fold(0.0, f64::max).max(1e-30);
        let scale = peak_target / peak;
        clean.iter_mut().for_each(|v| *v *= scale);
        let total_flux = scale;
        let mut cat = Catalog::new(&[
            "type",
            "flux_jy",
            "x",
            "y",
            "sigma_major",
            "sigma_minor",
            "pa",
        ]);
        for c in &drawn.comps {
            cat.push(vec![
                c.kind,
                c.flux * scale,
                c.x,
                c.y,
                c.s_major,
                c.s_minor,
                c.pa,
            ]);
        }
        // Unrelated compact sources: Poisson, 0.5 per 4.5′ field, 1–20 mJy.
        let field = (n as f64 * PIXEL_SCALE / 270.0).powi(2);
        let n_cont = crate::noise::poisson(rng, 0.5 * field) as usize;
        for _ in 0..n_cont {
            let c = Comp {
                kind: 4.0,
                flux: 10f64.powf(rng.random_range(0.0..20f64.log10())) * 1e-3,
                x: rng.random_range(0.0..n as f64),
                y: rng.random_range(0.0..n as f64),
                s_major: 0.0,
                s_minor: 0.0,
                pa: 0.0,
            };
            render(&mut clean, n, &c);
            cat.push(vec![c.kind, c.flux, c.x, c.y, 0.0, 0.0, 0.0]);
        }
        // Beam-correlated noise scaled to the drawn rms.
        let rms = rng.random_range(0.135..0.19) * 1e-3;
        let noise = noise_field(rng, n, rms);
        let image: Vec<f32> = clean
            .iter()
            .zip(&noise)
            .map(|(c, e)| (c + e) as f32)
            .collect();
        // Should the rejection loop give up (never seen), the label follows the measured ratio.
        let class = match class {
            RadioClass::Hybrid => class,
            _ if r_fr < 0.5 => RadioClass::Fri,
            _ => RadioClass::Frii,
        };
        let code: f64 = match class {
            RadioClass::Fri => 100.0,
            RadioClass::Frii => 200.0,
            RadioClass::Hybrid => 300.0,
        } + if (r_fr - 0.5).abs() < 0.1 { 10.0 } else { 0.0 }
            + if bent { 2.0 } else { 0.0 };
        let mut params = BTreeMap::new();
        params.insert("class".into(), code.div_euclid(100.0));
        params.insert("mirabest_label".into(), code);
        params.insert("bent".into(), f64::from(u8::from(bent)));
        params.insert("r_fr".into(), r_fr);
        params.insert("las_px".into(), drawn.las);
        params.insert("las_arcsec".into(), drawn.las * PIXEL_SCALE);
        params.insert("pa".into(), drawn.axis);
        params.insert("bend".into(), drawn.bend);
        params.insert("peak_jy_beam".into(), peak_target);
        params.insert("flux_jy".into(), total_flux);
        params.insert("rms_jy_beam".into(), rms);
        params.insert("core_x".into(), drawn.core.0);
        params.insert("core_y".into(), drawn.core.1);
        params.insert("n_contaminants".into(), n_cont as f64);
        let mut masks = BTreeMap::new();
        masks.insert(
            "source".into(),
            clean.iter().map(|&v| v > 3.0 * rms).collect(),
        );
        Sample {
            nx: n,
            ny: n,
            image,
            clean: clean.iter().map(|&v| v as f32).collect(),
            params,
            maps: BTreeMap::new(),
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
    fn a_point_source_peaks_at_its_flux_in_jy_per_beam() {
        let n = 64;
        let mut img = vec![0.0; n * n];
        let c = Comp {
            kind: 0.0,
            flux: 0.01,
            x: 32.0,
            y: 32.0,
            s_major: 0.0,
            s_minor: 0.0,
            pa: 0.0,
        };
        render(&mut img, n, &c);
        let peak = img.iter().cloned().fold(0.0, f64::max);
        // Pixel integration lowers a 3-px-FWHM beam's peak by ~3 %.
        assert!((peak / 0.01 - 1.0).abs() < 0.05, "{peak}");
        // Flux = Σ pixels / beam area.
        let beam_area = 2.0 * PI * (BEAM_FWHM * FWHM_TO_SIGMA).powi(2);
        assert!((img.iter().sum::<f64>() / beam_area / 0.01 - 1.0).abs() < 1e-3);
    }

    #[test]
    fn noise_rms_and_classes_follow_the_spec() {
        let sim = Radio::new(RadioConfig::default()).unwrap();
        let mut seen = [0usize; 3];
        for i in 0..40 {
            let s = sim.sample(&mut sample_rng(2, i));
            let p = &s.params;
            let rms = p["rms_jy_beam"];
            assert!((0.135e-3..0.19e-3).contains(&rms));
            let res: Vec<f64> = s
                .image
                .iter()
                .zip(&s.clean)
                .map(|(a, b)| (a - b) as f64)
                .collect();
            let sd = (res.iter().map(|v| v * v).sum::<f64>() / res.len() as f64).sqrt();
            assert!((sd / rms - 1.0).abs() < 0.02, "rms {sd} vs {rms}");
            // Peak of the source 1.5–80 mJy/beam (contaminants may be brighter elsewhere).
            assert!((1.5e-3..80e-3).contains(&p["peak_jy_beam"]));
            let class = p["class"] as usize;
            seen[class - 1] += 1;
            match class {
                1 => assert!(p["r_fr"] < 0.5, "FRI with R_FR {}", p["r_fr"]),
                2 => assert!(p["r_fr"] > 0.5, "FRII with R_FR {}", p["r_fr"]),
                _ => {}
            }
            let npix = s.masks["source"].iter().filter(|&&m| m).count();
            assert!(npix > 5, "source pixels above 3 rms: {npix}");
        }
        assert!(seen[0] > 5 && seen[1] > 5, "{seen:?}");
    }

    #[test]
    fn fr_ratio_agrees_with_the_class_for_every_class() {
        for class in [RadioClass::Fri, RadioClass::Frii] {
            let sim = Radio::new(RadioConfig {
                class: Some(class),
                ..Default::default()
            })
            .unwrap();
            for i in 0..30 {
                let s = sim.sample(&mut sample_rng(9, i));
                let r = s.params["r_fr"];
                assert_eq!(class == RadioClass::Fri, r < 0.5, "{class:?} R_FR {r}");
            }
        }
    }
}
