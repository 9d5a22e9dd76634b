//! The gamma-ray Galactic Centre simulator (spec §1, after A. Coogan's Astromatic 2022 model):
//! 64×64 counts maps of a 30°×30° field with dark matter, inverse Compton, Fermi bubbles, a
//! random π⁰ gas field, GC and disk point sources, a 5×5 Gaussian PSF and Poisson noise.

use crate::noise::poisson;
use crate::{Sample, Simulator};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal, StandardNormal};
use std::collections::BTreeMap;

pub const N_PIX: usize = 64;
pub const EXTENT: f64 = 15.0;
pub const RES: f64 = 2.0 * EXTENT / N_PIX as f64;
const SIGMA_PI0: f64 = 0.25;
const PSF_SIGMA: f64 = 0.8 / 3.0;
const D_GC: f64 = 8.3;
const PS_DISK_HEIGHT: f64 = 0.3;
const PS_DISK_RADIUS: f64 = 5.0;
const LOG_FLUX_MU: f64 = 1.0;
const LOG_FLUX_SIGMA: f64 = 1.2;
/// Point-source flux above which a pixel counts as "has a source" (the student U-Net's targets).
pub const MASK_THRESHOLD: f32 = 0.8;

/// Pixel centre coordinate of index i (degrees): −14.765625 + 0.46875·i.
pub fn coord(i: usize) -> f64 {
    -EXTENT + RES * (i as f64 + 0.5)
}

/// The row-major index of the pixel holding the point (x, y) in degrees (the catalogue's
/// `l_deg`, `b_deg`), as the simulator puts sources' flux into pixels.
pub fn pixel_index(x: f64, y: f64) -> usize {
    let bin =
        |v: f64| (((v + EXTENT) / RES).floor() as isize).clamp(0, N_PIX as isize - 1) as usize;
    bin(y) * N_PIX + bin(x)
}

/// Settings of the simulator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GceConfig {
    /// Divide the PSF kernel by its sum (Coogan's TMNRE variant); the default (false) keeps the
    /// problem notebook's unnormalised kernel (total flux ×2.047).
    pub psf_normalised: bool,
}

/// The simulator with its fixed templates precomputed.
pub struct Gce {
    pub config: GceConfig,
    pub t_dm: Vec<f64>,
    pub t_ic: Vec<f64>,
    pub t_bubbles: Vec<f64>,
    pi0_envelope: Vec<f64>,
    pi0_kernel: [[f64; 7]; 7],
    psf: [[f64; 5]; 5],
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fills a 64×64 map from f(x, y) with x along columns and y along rows.
fn grid(f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let mut v = Vec::with_capacity(N_PIX * N_PIX);
    for row in 0..N_PIX {
        for col in 0..N_PIX {
            v.push(f(coord(col), coord(row)));
        }
    }
    v
}

/// Dark-matter template: 100·Gamma pdf(r; shape ½, rate ⅕).
pub fn dm_template() -> Vec<f64> {
    let norm = 100.0 / (5.0 * std::f64::consts::PI).sqrt();
    grid(|x, y| {
        let r = (x * x + y * y).sqrt();
        norm * r.powf(-0.5) * (-r / 5.0).exp()
    })
}

/// Inverse-Compton template: 25·exp(−|y|/5).
pub fn ic_template() -> Vec<f64> {
    grid(|_, y| 25.0 * (-y.abs() / 5.0).exp())
}

/// Fermi-bubbles template: two sigmoid-edged lobes of height 3.
pub fn bubbles_template() -> Vec<f64> {
    grid(|x, y| {
        if y > 0.0 {
            let yn = 10.5 * (((-x - 1.0) / 10.5).cosh() - 1.0) + 1.0;
            3.0 * sigmoid((y - yn) / 0.6)
        } else {
            let ys = -8.7 * (((-x + 1.7) / 8.7).cosh() - 1.0) - 1.0;
            3.0 * sigmoid((ys - y) / 0.6)
        }
    })
}

/// The 5×5 PSF kernel sampled at offsets −2…2 pixels (sum 2.0471477 unnormalised).
pub fn psf_kernel(normalised: bool) -> [[f64; 5]; 5] {
    let mut k = [[0.0; 5]; 5];
    for (i, row) in k.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let (dx, dy) = ((i as f64 - 2.0) * RES, (j as f64 - 2.0) * RES);
            *v = (-(dx * dx + dy * dy) / (2.0 * PSF_SIGMA * PSF_SIGMA)).exp();
        }
    }
    if normalised {
        let s: f64 = k.iter().flatten().sum();
        k.iter_mut().flatten().for_each(|v| *v /= s);
    }
    k
}

/// Zero-padded 2-D correlation of a 64×64 map with an odd square kernel (symmetric kernels:
/// the same as convolution).
fn convolve<const K: usize>(map: &[f64], kernel: &[[f64; K]; K]) -> Vec<f64> {
    let h = (K / 2) as isize;
    let n = N_PIX as isize;
    let mut out = vec![0.0; map.len()];
    for r in 0..n {
        for c in 0..n {
            let mut acc = 0.0;
            for (i, krow) in kernel.iter().enumerate() {
                let rr = r + i as isize - h;
                if rr < 0 || rr >= n {
                    continue;
                }
                for (j, &kv) in krow.iter().enumerate() {
                    let cc = c + j as isize - h;
                    if cc >= 0 && cc < n {
                        acc += kv * map[(rr * n + cc) as usize];
                    }
                }
            }
            out[(r * n + c) as usize] = acc;
        }
    }
    out
}

impl Gce {
    pub fn new(config: GceConfig) -> Self {
        let mut pi0_kernel = [[0.0; 7]; 7];
        for (i, row) in pi0_kernel.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let (dx, dy) = (i as f64 - 3.0, j as f64 - 3.0);
                *v = (-((dx * dx + dy * dy) * RES * RES) / (2.0 * SIGMA_PI0 * SIGMA_PI0)).exp();
            }
        }
        Gce {
            psf: psf_kernel(config.psf_normalised),
            config,
            t_dm: dm_template(),
            t_ic: ic_template(),
            t_bubbles: bubbles_template(),
            pi0_envelope: grid(|x, y| {
                50.0 * (-(x / 20.0).powi(2)).exp() * (-(y / 5.0).powi(2)).exp()
            }),
            pi0_kernel,
        }
    }

    /// A π⁰ template: 50·exp(g/8)·envelope with g = white noise ⊛ the 7×7 sampled kernel.
    pub fn pi0_template(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let z: Vec<f64> = (0..N_PIX * N_PIX)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let g = convolve(&z, &self.pi0_kernel);
        g.iter()
            .zip(&self.pi0_envelope)
            .map(|(g, e)| e * (g / 8.0).exp())
            .collect()
    }

    /// Bins point sources at (x, y) with fluxes into a 64×64 map (rows = y).
    fn pixelise(sources: &[(f64, f64, f64)]) -> Vec<f64> {
        let mut m = vec![0.0; N_PIX * N_PIX];
        for &(x, y, s) in sources {
            m[pixel_index(x, y)] += s;
        }
        m
    }
}

impl Default for Gce {
    fn default() -> Self {
        Gce::new(GceConfig::default())
    }
}

fn inside(x: f64, y: f64) -> bool {
    x.abs() <= EXTENT && y.abs() <= EXTENT
}

/// GC population: R ~ Gamma(1.5, 5°), uniform angle; redrawn until inside the field.
fn gc_source(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let gamma = Gamma::new(1.5, 5.0).expect("valid gamma");
    loop {
        let r: f64 = gamma.sample(rng);
        let phi = rng.random::<f64>() * std::f64::consts::TAU;
        let (x, y) = (r * phi.cos(), r * phi.sin());
        if inside(x, y) {
            return (x, y);
        }
    }
}

/// Disk population: R ~ Exp(mean R_d), x = R cos φ; |y| ~ Exp(mean z_d) with random sign.
fn disk_source(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let rd = PS_DISK_RADIUS / D_GC * 180.0 / std::f64::consts::PI;
    let zd = PS_DISK_HEIGHT / D_GC * 180.0 / std::f64::consts::PI;
    let er = Exp::new(1.0 / rd).expect("valid rate");
    let ez = Exp::new(1.0 / zd).expect("valid rate");
    loop {
        let r: f64 = er.sample(rng);
        let phi = rng.random::<f64>() * std::f64::consts::TAU;
        let x = r * phi.cos();
        let y: f64 = ez.sample(rng) * if rng.random::<bool>() { 1.0 } else { -1.0 };
        if inside(x, y) {
            return (x, y);
        }
    }
}

impl Simulator for Gce {
    fn name(&self) -> &'static str {
        "gce"
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Sample {
        let a_ic: f64 = rng.random();
        let a_pi0: f64 = rng.random();
        let a_bubbles: f64 = rng.random();
        let a_dm: f64 = rng.random();
        let t_pi0 = self.pi0_template(rng);
        let n_gc = rng.random_range(200..800usize);
        let n_disk = rng.random_range(1000..4000usize);
        let flux = LogNormal::new(LOG_FLUX_MU, LOG_FLUX_SIGMA).expect("valid lognormal");
        let mut catalogue = Vec::with_capacity(n_gc + n_disk);
        for _ in 0..n_gc {
            let s = flux.sample(rng);
            let (x, y) = gc_source(rng);
            catalogue.push((x, y, s));
        }
        for _ in 0..n_disk {
            let s = flux.sample(rng);
            let (x, y) = disk_source(rng);
            catalogue.push((x, y, s));
        }
        let ps_gc = Gce::pixelise(&catalogue[..n_gc]);
        let ps_disk = Gce::pixelise(&catalogue[n_gc..]);
        let mu: Vec<f64> = (0..N_PIX * N_PIX)
            .map(|i| {
                a_ic * self.t_ic[i]
                    + a_pi0 * t_pi0[i]
                    + a_dm * self.t_dm[i]
                    + a_bubbles * self.t_bubbles[i]
                    + ps_gc[i]
                    + ps_disk[i]
            })
            .collect();
        let blurred = convolve(&mu, &self.psf);
        let image: Vec<f32> = blurred.iter().map(|&l| poisson(rng, l) as f32).collect();
        let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let (gc32, disk32) = (f32s(&ps_gc), f32s(&ps_disk));
        let mut params = BTreeMap::new();
        params.insert("A_ic".into(), a_ic);
        params.insert("A_pi0".into(), a_pi0);
        params.insert("A_bubbles".into(), a_bubbles);
        params.insert("A_dm".into(), a_dm);
        params.insert("n_ps_gc".into(), n_gc as f64);
        params.insert("n_ps_disk".into(), n_disk as f64);
        let mut masks = BTreeMap::new();
        masks.insert(
            "mask_gc".into(),
            gc32.iter().map(|&v| v > MASK_THRESHOLD).collect(),
        );
        masks.insert(
            "mask_disk".into(),
            disk32.iter().map(|&v| v > MASK_THRESHOLD).collect(),
        );
        let mut maps = BTreeMap::new();
        maps.insert("mu".into(), f32s(&mu));
        maps.insert("template_pi0".into(), f32s(&t_pi0));
        maps.insert("flux_ps_gc".into(), gc32);
        maps.insert("flux_ps_disk".into(), disk32);
        let mut catalog = crate::Catalog::new(&["l_deg", "b_deg", "flux", "population"]);
        for (k, &(x, y, s)) in catalogue.iter().enumerate() {
            catalog.push(vec![x, y, s, if k < n_gc { 0.0 } else { 1.0 }]);
        }
        Sample {
            nx: N_PIX,
            ny: N_PIX,
            image,
            clean: f32s(&blurred),
            params,
            maps,
            masks,
            catalog,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{generate, sample_rng};

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    fn max(v: &[f64]) -> f64 {
        v.iter().copied().fold(f64::MIN, f64::max)
    }

    #[test]
    fn templates_match_the_spec() {
        assert!((coord(0) + 14.765625).abs() < 1e-12 && (coord(63) - 14.765625).abs() < 1e-12);
        let (dm, ic, b) = (dm_template(), ic_template(), bubbles_template());
        assert!((mean(&dm) - 1.59463).abs() < 1e-3, "{}", mean(&dm));
        assert!((max(&dm) - 41.0145).abs() < 1e-3, "{}", max(&dm));
        assert!((mean(&ic) - 7.91554).abs() < 1e-3, "{}", mean(&ic));
        assert!((max(&ic) - 23.8552).abs() < 1e-3, "{}", max(&ic));
        assert!((mean(&b) - 1.90192).abs() < 1e-3, "{}", mean(&b));
        assert!((max(&b) - 3.0).abs() < 1e-3);
        let k = psf_kernel(false);
        assert!((k.iter().flatten().sum::<f64>() - 2.0471477).abs() < 1e-6);
        assert!((k[2][3] - 0.21332).abs() < 1e-5 && (k[1][1] - 0.045506).abs() < 1e-6);
        let kn = psf_kernel(true);
        assert!((kn.iter().flatten().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn pi0_mean_is_in_the_measured_range() {
        let g = Gce::default();
        let means: Vec<f64> = (0..40)
            .map(|i| mean(&g.pi0_template(&mut sample_rng(7, i))))
            .collect();
        let m = mean(&means);
        assert!((12.35..=12.65).contains(&m), "mean π0 {m}");
    }

    #[test]
    fn samples_have_the_spec_labels() {
        let g = Gce::default();
        let samples = generate(&g, 3, 0, 24);
        let mut ratio = Vec::new();
        for s in &samples {
            let n_gc = s.params["n_ps_gc"];
            let n_disk = s.params["n_ps_disk"];
            assert!((200.0..800.0).contains(&n_gc) && (1000.0..4000.0).contains(&n_disk));
            for a in ["A_ic", "A_pi0", "A_bubbles", "A_dm"] {
                assert!((0.0..1.0).contains(&s.params[a]));
            }
            assert!(s.image.iter().all(|&v| v >= 0.0 && v.fract() == 0.0));
            let fg = s.masks["mask_gc"].iter().filter(|&&m| m).count() as f64 / 4096.0;
            let fd = s.masks["mask_disk"].iter().filter(|&&m| m).count() as f64 / 4096.0;
            assert!(
                (0.01..0.2).contains(&fg) && (0.08..0.45).contains(&fd),
                "{fg} {fd}"
            );
            // Poisson: residual variance ≈ mean, pixel by pixel on average.
            let (mut num, mut den) = (0.0, 0.0);
            for (x, l) in s.image.iter().zip(&s.clean) {
                num += ((x - l) as f64).powi(2);
                den += *l as f64;
            }
            ratio.push(num / den);
            // The unnormalised PSF raises the total flux by ≈2.047 (minus edge losses).
            let total_mu: f64 = s.maps["mu"].iter().map(|&v| v as f64).sum();
            let total_b: f64 = s.clean.iter().map(|&v| v as f64).sum();
            assert!((1.8..2.06).contains(&(total_b / total_mu)));
        }
        let r = mean(&ratio);
        assert!((r - 1.0).abs() < 0.03, "variance/mean {r}");
    }

    #[test]
    fn same_seed_same_samples_for_any_thread_count() {
        let g = Gce::default();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| generate(&g, 11, 5, 8));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| generate(&g, 11, 5, 8));
        assert_eq!(one, two);
        let again = generate(&g, 11, 9, 1);
        assert_eq!(again[0], one[4], "sample index alone determines the sample");
        assert_ne!(generate(&g, 12, 5, 1)[0], one[0]);
    }
}
