//! A source catalogue from a detection mask, and how it compares with the true catalogue:
//! completeness (the fraction of true sources found) and purity (the fraction of detections
//! that are real), each as a function of flux.

use serde::Serialize;

/// One detection: an 8-connected group of masked pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Centroid (x = column, y = row, in pixels), weighted by the image's values.
    pub x: f64,
    pub y: f64,
    pub pixels: usize,
    /// Sum of the image over the detection's pixels.
    pub flux: f64,
    /// Row-major indices of its pixels.
    #[serde(skip)]
    pub members: Vec<usize>,
}

/// The detections of `mask` (`nx`×`ny`, row-major) on `image`.
pub fn detections(mask: &[bool], image: &[f64], nx: usize, ny: usize) -> Vec<Detection> {
    assert_eq!(mask.len(), nx * ny);
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut members = Vec::new();
        while let Some(i) = stack.pop() {
            members.push(i);
            let (x, y) = ((i % nx) as isize, (i / nx) as isize);
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (u, v) = (x + dx, y + dy);
                    if u < 0 || v < 0 || u >= nx as isize || v >= ny as isize {
                        continue;
                    }
                    let j = v as usize * nx + u as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        members.sort_unstable();
        let w: f64 = members.iter().map(|&i| image[i].max(0.0)).sum();
        let (mut cx, mut cy) = (0.0, 0.0);
        for &i in &members {
            let wi = if w > 0.0 {
                image[i].max(0.0) / w
            } else {
                1.0 / members.len() as f64
            };
            cx += wi * (i % nx) as f64;
            cy += wi * (i / nx) as f64;
        }
        out.push(Detection {
            x: cx,
            y: cy,
            pixels: members.len(),
            flux: members.iter().map(|&i| image[i]).sum(),
            members,
        });
    }
    out
}

/// A true source: its pixel (row-major index) and flux.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueSource {
    pub pixel: usize,
    pub flux: f64,
}

/// Completeness and purity in one flux bin [lo, hi).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FluxBin {
    pub lo: f64,
    pub hi: f64,
    /// True sources in the bin, and how many lie in a detection.
    pub sources: usize,
    pub found: usize,
    pub completeness: f64,
    /// Detections whose brightest contained true source is in the bin — none contained counts
    /// as a false detection, binned by the detection's own flux — and how many are real.
    pub detections: usize,
    pub real: usize,
    pub purity: f64,
}

/// Matches detections to true sources pixel by pixel: a source is found when its pixel belongs
/// to a detection; a detection is real when it holds a true source of flux ≥ `min_flux`. Both
/// are counted in the bins `edges` (ascending fluxes).
pub fn completeness_purity(
    dets: &[Detection],
    sources: &[TrueSource],
    npix: usize,
    min_flux: f64,
    edges: &[f64],
) -> Vec<FluxBin> {
    let mut owner = vec![usize::MAX; npix];
    for (k, d) in dets.iter().enumerate() {
        for &i in &d.members {
            owner[i] = k;
        }
    }
    let mut brightest = vec![f64::NEG_INFINITY; dets.len()];
    for s in sources {
        if let Some(&k) = owner.get(s.pixel).filter(|&&k| k != usize::MAX) {
            brightest[k] = brightest[k].max(s.flux);
        }
    }
    let bin_of = |f: f64| edges.windows(2).position(|w| f >= w[0] && f < w[1]);
    let mut bins: Vec<FluxBin> = edges
        .windows(2)
        .map(|w| FluxBin {
            lo: w[0],
            hi: w[1],
            sources: 0,
            found: 0,
            completeness: f64::NAN,
            detections: 0,
            real: 0,
            purity: f64::NAN,
        })
        .collect();
    for s in sources {
        if let Some(b) = bin_of(s.flux) {
            bins[b].sources += 1;
            bins[b].found += (owner.get(s.pixel).is_some_and(|&k| k != usize::MAX)) as usize;
        }
    }
    for (k, d) in dets.iter().enumerate() {
        let real = brightest[k] >= min_flux;
        let f = if brightest[k].is_finite() {
            brightest[k]
        } else {
            d.flux
        };
        if let Some(b) = bin_of(f) {
            bins[b].detections += 1;
            bins[b].real += real as usize;
        }
    }
    for b in &mut bins {
        if b.sources > 0 {
            b.completeness = b.found as f64 / b.sources as f64;
        }
        if b.detections > 0 {
            b.purity = b.real as f64 / b.detections as f64;
        }
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_centroids_and_matching() {
        // 5×4 mask with two groups (one diagonal, 8-connected) and an image to weight them.
        #[rustfmt::skip]
        let mask = [
            true,  false, false, false, false,
            false, true,  false, false, true,
            false, false, false, false, true,
            false, false, false, false, false,
        ];
        let image: Vec<f64> = (0..20).map(|i| if i == 6 { 3.0 } else { 1.0 }).collect();
        let d = detections(&mask, &image, 5, 4);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].pixels, d[1].pixels), (2, 2));
        // Weights 1 and 3 at (0, 0) and (1, 1): centroid (0.75, 0.75).
        assert!((d[0].x - 0.75).abs() < 1e-12 && (d[0].y - 0.75).abs() < 1e-12);
        assert_eq!(d[0].flux, 4.0);
        let sources = [
            TrueSource {
                pixel: 6,
                flux: 10.0,
            },
            TrueSource {
                pixel: 12,
                flux: 10.0,
            },
            TrueSource {
                pixel: 14,
                flux: 0.5,
            },
        ];
        let bins = completeness_purity(&d, &sources, 20, 1.0, &[0.0, 1.0, 100.0]);
        // Bright bin: 2 sources, 1 found; one real detection. Faint bin: the faint source is
        // found, but its detection is not real (below min_flux).
        assert_eq!((bins[1].sources, bins[1].found), (2, 1));
        assert_eq!((bins[1].detections, bins[1].real), (1, 1));
        assert_eq!((bins[0].sources, bins[0].found), (1, 1));
        assert_eq!((bins[0].detections, bins[0].real), (1, 0));
        assert_eq!(bins[1].completeness, 0.5);
    }
}
