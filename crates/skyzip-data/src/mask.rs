//! Sigma clipping and source masks exactly as astropy and photutils compute them (spec §2.3):
//! `SigmaClip` (median centre, population std, bounds recomputed from the survivors until
//! nothing changes or `maxiters`), `sigma_clipped_stats`, `detect_threshold` (clipped mean +
//! nσ·std), `detect_sources` (pixels strictly above the threshold, 8-connected segments of at
//! least `npixels`), and the source mask dilated by a square or circular footprint.

/// Survivors of astropy's sigma clipping of the finite, unmasked values.
pub fn sigma_clip(values: &[f32], mask: Option<&[bool]>, sigma: f64, maxiters: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values
        .iter()
        .enumerate()
        .filter(|(i, x)| x.is_finite() && !mask.is_some_and(|m| m[*i]))
        .map(|(_, &x)| x as f64)
        .collect();
    for _ in 0..maxiters {
        if v.is_empty() {
            break;
        }
        let (_, med, std) = stats(&mut v);
        let (lo, hi) = (med - sigma * std, med + sigma * std);
        let before = v.len();
        v.retain(|&x| x >= lo && x <= hi);
        if v.len() == before {
            break;
        }
    }
    v
}

/// (mean, median, population std); the median of an even count is the mean of the middle two.
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    v.sort_by(f64::total_cmp);
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    };
    (mean, med, std)
}

/// astropy's `sigma_clipped_stats`: (mean, median, std) of the clipped values.
pub fn sigma_clipped_stats(
    values: &[f32],
    mask: Option<&[bool]>,
    sigma: f64,
    maxiters: usize,
) -> (f64, f64, f64) {
    let mut v = sigma_clip(values, mask, sigma, maxiters);
    stats(&mut v)
}

/// photutils' `detect_threshold` (scalar background): clipped mean + nsigma·clipped std.
pub fn detect_threshold(
    values: &[f32],
    mask: Option<&[bool]>,
    nsigma: f64,
    sigma: f64,
    maxiters: usize,
) -> f64 {
    let (mean, _, std) = sigma_clipped_stats(values, mask, sigma, maxiters);
    mean + nsigma * std
}

/// photutils' `detect_sources`: labels 1, 2, … of 8-connected segments of pixels strictly above
/// `threshold` with at least `npixels` pixels (0 = background). Row-major `ny`×`nx`.
pub fn detect_sources(
    values: &[f32],
    nx: usize,
    ny: usize,
    threshold: f64,
    npixels: usize,
) -> Vec<u32> {
    let mut labels = vec![0u32; nx * ny];
    let above = |i: usize| (values[i] as f64) > threshold;
    let mut next = 1u32;
    let mut stack = Vec::new();
    let mut members = Vec::new();
    for start in 0..nx * ny {
        if labels[start] != 0 || !above(start) {
            continue;
        }
        members.clear();
        labels[start] = next;
        stack.push(start);
        while let Some(i) = stack.pop() {
            members.push(i);
            let (x, y) = ((i % nx) as i64, (i / nx) as i64);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (xx, yy) = (x + dx, y + dy);
                    if xx < 0 || yy < 0 || xx >= nx as i64 || yy >= ny as i64 {
                        continue;
                    }
                    let j = yy as usize * nx + xx as usize;
                    if labels[j] == 0 && above(j) {
                        labels[j] = next;
                        stack.push(j);
                    }
                }
            }
        }
        if members.len() < npixels {
            for &i in &members {
                labels[i] = u32::MAX;
            }
        } else {
            next += 1;
        }
    }
    labels.iter_mut().for_each(|l| {
        if *l == u32::MAX {
            *l = 0
        }
    });
    labels
}

/// The footprint of a binary dilation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Footprint {
    /// `ones(size, size)` (legacy `make_source_mask(dilate_size=…)`).
    Square(usize),
    /// `circular_footprint(radius)`: offsets with dx² + dy² ≤ r².
    Circle(usize),
}

/// Binary dilation of `mask` (row-major `ny`×`nx`) by a footprint centred on each pixel.
pub fn dilate(mask: &[bool], nx: usize, ny: usize, fp: Footprint) -> Vec<bool> {
    let offsets: Vec<(i64, i64)> = match fp {
        Footprint::Square(s) => {
            // scipy centres an even footprint at index size/2.
            let lo = -((s / 2) as i64);
            let hi = lo + s as i64 - 1;
            (lo..=hi)
                .flat_map(|dy| (lo..=hi).map(move |dx| (dx, dy)))
                .collect()
        }
        Footprint::Circle(r) => {
            let r = r as i64;
            (-r..=r)
                .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
                .filter(|(dx, dy)| dx * dx + dy * dy <= r * r)
                .collect()
        }
    };
    let mut out = vec![false; nx * ny];
    for y in 0..ny {
        for x in 0..nx {
            if !mask[y * nx + x] {
                continue;
            }
            // Interior pixels of a segment add nothing their neighbours do not; skip them.
            let interior = x > 0
                && y > 0
                && x + 1 < nx
                && y + 1 < ny
                && mask[y * nx + x - 1]
                && mask[y * nx + x + 1]
                && mask[(y - 1) * nx + x]
                && mask[(y + 1) * nx + x];
            if interior {
                out[y * nx + x] = true;
                continue;
            }
            for &(dx, dy) in &offsets {
                let (xx, yy) = (x as i64 + dx, y as i64 + dy);
                if xx >= 0 && yy >= 0 && xx < nx as i64 && yy < ny as i64 {
                    out[yy as usize * nx + xx as usize] = true;
                }
            }
        }
    }
    out
}

/// Settings of a source mask.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceMaskSpec {
    pub nsigma: f64,
    pub npixels: usize,
    pub clip_sigma: f64,
    pub maxiters: usize,
    pub footprint: Footprint,
}

impl SourceMaskSpec {
    /// The current photutils recipe: SigmaClip(3, maxiters=10), n_sigma 2, n_pixels 10,
    /// circular footprint of radius 10.
    pub fn photutils() -> Self {
        SourceMaskSpec {
            nsigma: 2.0,
            npixels: 10,
            clip_sigma: 3.0,
            maxiters: 10,
            footprint: Footprint::Circle(10),
        }
    }
    /// The legacy `make_source_mask(data, nsigma=2, npixels=5, dilate_size=11)`.
    pub fn legacy() -> Self {
        SourceMaskSpec {
            nsigma: 2.0,
            npixels: 5,
            clip_sigma: 3.0,
            maxiters: 5,
            footprint: Footprint::Square(11),
        }
    }
}

/// Source mask (true = source or its dilated surroundings); NaN pixels are never sources.
/// Background-only pixels are `!mask`.
pub fn source_mask(values: &[f32], nx: usize, ny: usize, spec: &SourceMaskSpec) -> Vec<bool> {
    let t = detect_threshold(values, None, spec.nsigma, spec.clip_sigma, spec.maxiters);
    let seg = detect_sources(values, nx, ny, t, spec.npixels);
    let m: Vec<bool> = seg.iter().map(|&l| l > 0).collect();
    dilate(&m, nx, ny, spec.footprint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn clipping_follows_astropy() {
        // astropy: sigma_clipped_stats([1, 2, …, 10, 1000]) → (5.5, 5.5, 2.8722813232690143):
        // 1000 leaves in the first pass (median 6 ± 3·284.6), then nothing changes.
        let v: Vec<f32> = (1..=10).map(|x| x as f32).chain([1000.0]).collect();
        let (mean, med, std) = sigma_clipped_stats(&v, None, 3.0, 5);
        assert_eq!((mean, med), (5.5, 5.5));
        assert!((std - 2.8722813232690143).abs() < 1e-12);
        // With no outlier far enough, nothing is clipped: [1, 2, 3, 4, 5, 100] keeps 100.
        let (mean, med, _) = sigma_clipped_stats(&[1.0, 2.0, 3.0, 4.0, 5.0, 100.0], None, 3.0, 5);
        assert_eq!(med, 3.5);
        assert!((mean - 115.0 / 6.0).abs() < 1e-12);
        // NaNs and masked pixels are ignored.
        let (mean, _, _) = sigma_clipped_stats(
            &[1.0, f32::NAN, 3.0, 50.0],
            Some(&[false, false, false, true]),
            3.0,
            5,
        );
        assert_eq!(mean, 2.0);
    }

    #[test]
    fn segments_are_8_connected_and_small_ones_dropped() {
        #[rustfmt::skip]
        let img = [
            5.0, 0.0, 0.0, 0.0, 0.0,
            0.0, 5.0, 0.0, 0.0, 5.0,
            0.0, 0.0, 5.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0f32,
        ];
        let l = detect_sources(&img, 5, 4, 1.0, 2);
        assert_eq!((l[0], l[6], l[12]), (1, 1, 1), "diagonal pixels connect");
        assert_eq!(l[9], 0, "single pixel below npixels");
        let d = dilate(
            &l.iter().map(|&v| v > 0).collect::<Vec<_>>(),
            5,
            4,
            Footprint::Square(3),
        );
        assert!(d[1] && d[13] && !d[4] && !d[19]);
    }

    #[test]
    fn mask_flags_injected_sources_on_gaussian_noise() {
        let (nx, ny) = (128, 128);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut img: Vec<f32> = (0..nx * ny)
            .map(|_| {
                let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                (100.0 + 2.0 * (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
                    as f32
            })
            .collect();
        let sources = [(20.0, 30.0, 40.0), (90.0, 90.0, 15.0), (64.0, 10.0, 25.0)];
        for &(sx, sy, amp) in &sources {
            for y in 0..ny {
                for x in 0..nx {
                    let r2 = (x as f64 - sx).powi(2) + (y as f64 - sy).powi(2);
                    img[y * nx + x] += (amp * (-r2 / (2.0 * 2.0f64.powi(2))).exp()) as f32;
                }
            }
        }
        let m = source_mask(&img, nx, ny, &SourceMaskSpec::photutils());
        for &(sx, sy, _) in &sources {
            assert!(
                m[sy as usize * nx + sx as usize],
                "source at ({sx}, {sy}) masked"
            );
            // Dilation reaches 10 px beyond the detected footprint.
            assert!(m[sy as usize * nx + sx as usize + 9]);
        }
        let frac = m.iter().filter(|&&v| v).count() as f64 / m.len() as f64;
        assert!(
            frac < 0.2,
            "only the sources and their surroundings: {frac}"
        );
        // The background statistics with the mask recover the noise.
        let (_, med, std) = sigma_clipped_stats(&img, Some(&m), 3.0, 10);
        assert!(
            (med - 100.0).abs() < 0.1 && (std / 2.0 - 1.0).abs() < 0.05,
            "{med} {std}"
        );
    }
}
