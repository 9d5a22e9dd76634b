//! Circular-aperture photometry with a median sky annulus, as an astronomer would check a
//! compressed image: the flux of each source measured the same way on the truth, on the
//! observation and on every reconstruction, and the ratios binned by the source's S/N.

use serde::Serialize;

/// Background-subtracted flux in a circle of radius `r` around (x, y) (pixel centres at
/// integers), the sky the median of the annulus `r_in` ≤ d < `r_out`; with the aperture's pixel
/// count. None when the annulus leaves the `nx`×`ny` image or holds a non-finite pixel.
#[allow(clippy::too_many_arguments)]
pub fn aperture_flux(
    img: &[f32],
    nx: usize,
    ny: usize,
    x: f64,
    y: f64,
    r: f64,
    r_in: f64,
    r_out: f64,
) -> Option<(f64, usize)> {
    aperture(img, nx, ny, (x, y), r, (r_in, r_out)).map(|a| (a.flux, a.n_ap))
}

/// One aperture measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aperture {
    /// Σ (value − sky) over the aperture.
    pub flux: f64,
    /// The sky level (median of the annulus).
    pub sky: f64,
    /// Pixels in the aperture and in the annulus.
    pub n_ap: usize,
    pub n_sky: usize,
}

/// [`aperture_flux`] with the sky and the pixel counts; centre `c` = (x, y), annulus
/// `ann` = (r_in, r_out).
pub fn aperture(
    img: &[f32],
    nx: usize,
    ny: usize,
    c: (f64, f64),
    r: f64,
    ann: (f64, f64),
) -> Option<Aperture> {
    let ((x, y), (r_in, r_out)) = (c, ann);
    if x - r_out < 0.0
        || y - r_out < 0.0
        || x + r_out > (nx - 1) as f64
        || y + r_out > (ny - 1) as f64
    {
        return None;
    }
    let (x0, x1) = ((x - r_out).floor() as usize, (x + r_out).ceil() as usize);
    let (y0, y1) = ((y - r_out).floor() as usize, (y + r_out).ceil() as usize);
    let mut sky = Vec::new();
    let mut inside = Vec::new();
    for j in y0..=y1.min(ny - 1) {
        for i in x0..=x1.min(nx - 1) {
            let v = img[j * nx + i];
            if !v.is_finite() {
                return None;
            }
            let d2 = (i as f64 - x).powi(2) + (j as f64 - y).powi(2);
            if d2 <= r * r {
                inside.push(v as f64);
            } else if d2 >= r_in * r_in && d2 < r_out * r_out {
                sky.push(v as f64);
            }
        }
    }
    if sky.is_empty() || inside.is_empty() {
        return None;
    }
    sky.sort_by(f64::total_cmp);
    let m = sky.len() / 2;
    let bg = if sky.len() % 2 == 1 {
        sky[m]
    } else {
        0.5 * (sky[m - 1] + sky[m])
    };
    Some(Aperture {
        flux: inside.iter().map(|v| v - bg).sum(),
        sky: bg,
        n_ap: inside.len(),
        n_sky: sky.len(),
    })
}

/// The first moment of (value − sky), negative values as 0, over the pixels within `r` of
/// (x, y): a source's centroid as an aperture sees it. None when no pixel is above the sky or
/// the circle leaves the image.
pub fn centroid(
    img: &[f32],
    nx: usize,
    ny: usize,
    c: (f64, f64),
    r: f64,
    sky: f64,
) -> Option<(f64, f64)> {
    let (x, y) = c;
    if x - r < 0.0 || y - r < 0.0 || x + r > (nx - 1) as f64 || y + r > (ny - 1) as f64 {
        return None;
    }
    let (mut w, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for j in (y - r).floor() as usize..=((y + r).ceil() as usize).min(ny - 1) {
        for i in (x - r).floor() as usize..=((x + r).ceil() as usize).min(nx - 1) {
            let (dx, dy) = (i as f64 - x, j as f64 - y);
            if dx * dx + dy * dy > r * r {
                continue;
            }
            let v = (img[j * nx + i] as f64 - sky).max(0.0);
            if !v.is_finite() {
                return None;
            }
            w += v;
            sx += v * i as f64;
            sy += v * j as f64;
        }
    }
    (w > 0.0).then(|| (sx / w, sy / w))
}

/// A source as measured on the original image: the aperture used, its flux and the flux's
/// background-limited error σ_F = σ·√(N_ap·(1 + N_ap/N_sky)) (no gain is known, so no photon
/// term: for bright sources the real error is larger and the biases below are upper bounds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Source {
    /// The aperture's centre (the detection's centroid, refined once).
    pub x: f64,
    pub y: f64,
    /// The centroid measured in that aperture: what a decoded image's centroid is held to.
    pub cx: f64,
    pub cy: f64,
    pub r: f64,
    pub flux: f64,
    pub flux_err: f64,
}

/// The aperture of a detection of `pixels` pixels: radius 1.5·√(pixels/π) within 2…12 px, the
/// sky annulus from r + 3 to r + 8.
pub fn aperture_radius(pixels: usize) -> (f64, (f64, f64)) {
    let r = (1.5 * (pixels as f64 / std::f64::consts::PI).sqrt()).clamp(2.0, 12.0);
    (r, annulus(r))
}

/// The sky annulus around an aperture of radius `r`.
fn annulus(r: f64) -> (f64, f64) {
    (r + 3.0, r + 8.0)
}

/// Measures each detection — (x, y, pixels), brightest first — on the original `img` (noise σ):
/// sources whose aperture and annulus lie inside the image, without blank pixels, with a
/// centroid. At most `max` sources.
pub fn measure_sources(
    img: &[f32],
    nx: usize,
    ny: usize,
    dets: &[(f64, f64, usize)],
    sigma: f64,
    max: usize,
) -> Vec<Source> {
    let mut out = Vec::new();
    for &(x, y, pixels) in dets {
        if out.len() >= max {
            break;
        }
        let (r, ann) = aperture_radius(pixels);
        let Some(a0) = aperture(img, nx, ny, (x, y), r, ann) else {
            continue;
        };
        let Some(c) = centroid(img, nx, ny, (x, y), r, a0.sky) else {
            continue;
        };
        // The aperture re-centred on the centroid, as a photometry pipeline would.
        let Some(a) = aperture(img, nx, ny, c, r, ann) else {
            continue;
        };
        let Some(cc) = centroid(img, nx, ny, c, r, a.sky) else {
            continue;
        };
        let err = sigma * (a.n_ap as f64 * (1.0 + a.n_ap as f64 / a.n_sky as f64)).sqrt();
        out.push(Source {
            x: c.0,
            y: c.1,
            cx: cc.0,
            cy: cc.1,
            r,
            flux: a.flux,
            flux_err: err,
        });
    }
    out
}

/// An f64 that JSON wrote as `null` (serde_json writes NaN and ±∞ so) read back as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// How a decoded image changes the photometry of the original's sources.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct PhotometryCheck {
    /// Sources measured (on the original and the decoded image alike).
    pub sources: usize,
    /// Sources the decoded image lost (blank, or no flux above its sky, where the original had).
    pub lost: usize,
    /// Median of (F_decoded − F_original)/σ_F: the flux bias in units of each source's error.
    #[serde(deserialize_with = "f64_or_nan")]
    pub median_bias: f64,
    /// 1.4826·MAD of the same: the scatter compression adds, in units of σ_F (the total error
    /// becomes √(1 + s²)·σ_F).
    #[serde(deserialize_with = "f64_or_nan")]
    pub scatter: f64,
    /// Centroid shifts in pixels: median and largest.
    #[serde(deserialize_with = "f64_or_nan")]
    pub median_shift: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_shift: f64,
}

/// [`PhotometryCheck`] of `decoded` (the same shape as the original) for `sources`.
pub fn check(sources: &[Source], decoded: &[f32], nx: usize, ny: usize) -> PhotometryCheck {
    let (mut dev, mut shift, mut lost) = (Vec::new(), Vec::new(), 0);
    for s in sources {
        let m = aperture(decoded, nx, ny, (s.x, s.y), s.r, annulus(s.r))
            .and_then(|a| centroid(decoded, nx, ny, (s.x, s.y), s.r, a.sky).map(|c| (a.flux, c)));
        match m {
            Some((f, c)) => {
                dev.push((f - s.flux) / s.flux_err);
                shift.push(((c.0 - s.cx).powi(2) + (c.1 - s.cy).powi(2)).sqrt());
            }
            None => lost += 1,
        }
    }
    let median = |v: &mut Vec<f64>| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        let m = v.len() / 2;
        if v.len() % 2 == 1 {
            v[m]
        } else {
            0.5 * (v[m - 1] + v[m])
        }
    };
    let bias = median(&mut dev.clone());
    let mut mad: Vec<f64> = dev.iter().map(|d| (d - bias).abs()).collect();
    let max_shift = shift.iter().copied().fold(f64::NAN, f64::max);
    PhotometryCheck {
        sources: sources.len(),
        lost,
        median_bias: bias,
        scatter: 1.4826 * median(&mut mad),
        median_shift: median(&mut shift),
        max_shift,
    }
}

/// Recovered / true aperture flux of the sources in one S/N bin, for each measured image kind.
#[derive(Debug, Clone, Serialize)]
pub struct FluxBin {
    pub snr_lo: f64,
    pub snr_hi: Option<f64>,
    pub sources: usize,
    /// Per image kind (in the order given): median and mean of recovered / true.
    pub median_ratio: Vec<f64>,
    pub mean_ratio: Vec<f64>,
}

/// Bins (S/N, ratios) rows by S/N at `edges` (the last bin open-ended).
pub fn bin_ratios(rows: &[(f64, Vec<f64>)], edges: &[f64], kinds: usize) -> Vec<FluxBin> {
    let mut out = Vec::new();
    for (k, &lo) in edges.iter().enumerate() {
        let hi = edges.get(k + 1).copied();
        let sel: Vec<&Vec<f64>> = rows
            .iter()
            .filter(|(s, _)| *s >= lo && hi.is_none_or(|h| *s < h))
            .map(|(_, r)| r)
            .collect();
        let mut median = Vec::new();
        let mut mean = Vec::new();
        for j in 0..kinds {
            let mut v: Vec<f64> = sel.iter().map(|r| r[j]).filter(|v| v.is_finite()).collect();
            v.sort_by(f64::total_cmp);
            median.push(if v.is_empty() {
                f64::NAN
            } else {
                v[v.len() / 2]
            });
            mean.push(if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            });
        }
        out.push(FluxBin {
            snr_lo: lo,
            snr_hi: hi,
            sources: sel.len(),
            median_ratio: median,
            mean_ratio: mean,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stars of 2000 counts (Gaussian σ = 1.5 px) on a sky of 100 with noise 5 (a fixed
    /// pseudo-random pattern).
    type Detections = Vec<(f64, f64, usize)>;

    fn field() -> (Vec<f32>, usize, usize, Detections) {
        let (nx, ny) = (96, 64);
        let stars = [(20.3, 19.6), (60.8, 30.1), (40.0, 45.5)];
        let mut seed = 7u64;
        let img = (0..nx * ny)
            .map(|k| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
                let (x, y) = ((k % nx) as f64, (k / nx) as f64);
                let mut v = 100.0 + 5.0 * 3f64.sqrt() * (2.0 * u - 1.0);
                for (sx, sy) in stars {
                    let d2 = (x - sx).powi(2) + (y - sy).powi(2);
                    v += 2000.0 / (2.0 * std::f64::consts::PI * 2.25) * (-d2 / 4.5).exp();
                }
                v as f32
            })
            .collect();
        let dets = stars
            .iter()
            .map(|&(x, y)| (x.round(), y.round(), 20))
            .collect();
        (img, nx, ny, dets)
    }

    #[test]
    fn sources_are_measured_and_a_changed_image_shows_its_bias() {
        let (img, nx, ny, dets) = field();
        let src = measure_sources(&img, nx, ny, &dets, 5.0, 10);
        assert_eq!(src.len(), 3);
        for (s, d) in src.iter().zip(&dets) {
            assert!((s.flux / 2000.0 - 1.0).abs() < 0.08, "{s:?}");
            assert!((s.x - d.0).abs() < 1.0 && (s.y - d.1).abs() < 1.0, "{s:?}");
            assert!(s.flux_err > 5.0 && s.flux_err < 100.0);
        }
        // The original itself: no bias, no scatter, no shift.
        let c = check(&src, &img, nx, ny);
        assert_eq!((c.sources, c.lost), (3, 0));
        assert!(c.median_bias.abs() < 1e-9 && c.scatter < 1e-9 && c.max_shift < 1e-9);
        // Every pixel 2 % low over the sky: the fluxes are 2 % low, tens of σ_F.
        let dim: Vec<f32> = img.iter().map(|&v| 100.0 + 0.98 * (v - 100.0)).collect();
        let c = check(&src, &dim, nx, ny);
        assert!(c.median_bias < -0.5, "{c:?}");
        // A blanked star is lost.
        let mut holed = img.clone();
        holed[20 * nx + 20] = f32::NAN;
        assert_eq!(check(&src, &holed, nx, ny).lost, 1);
    }

    #[test]
    fn a_gaussian_star_on_a_flat_sky() {
        // 1000 counts in a Gaussian of σ = 1.5 px at (20.3, 19.6) on a sky of 100: an aperture
        // of 3σ holds 1 − e^{−4.5} ≈ 98.9 % of it, the sky comes off exactly.
        let (nx, ny) = (40, 40);
        let s: f64 = 1.5;
        let img: Vec<f32> = (0..nx * ny)
            .map(|k| {
                let (x, y) = ((k % nx) as f64 - 20.3, (k / nx) as f64 - 19.6);
                (100.0
                    + 1000.0 / (2.0 * std::f64::consts::PI * s * s)
                        * (-(x * x + y * y) / (2.0 * s * s)).exp()) as f32
            })
            .collect();
        let (f, n) = aperture_flux(&img, nx, ny, 20.3, 19.6, 4.5, 9.0, 13.0).unwrap();
        assert!((f / 1000.0 - 0.989).abs() < 0.01, "{f}");
        assert!(n > 50 && n < 75);
        assert!(aperture_flux(&img, nx, ny, 5.0, 20.0, 4.5, 9.0, 13.0).is_none());
        let rows = vec![
            (2.0, vec![0.5, 1.0]),
            (4.0, vec![0.7, f64::NAN]),
            (50.0, vec![1.0, 1.0]),
        ];
        let b = bin_ratios(&rows, &[0.0, 10.0], 2);
        assert_eq!((b[0].sources, b[1].sources), (2, 1));
        assert_eq!(b[0].median_ratio[1], 1.0);
        assert!((b[0].mean_ratio[0] - 0.6).abs() < 1e-12);
    }
}
