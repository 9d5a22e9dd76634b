//! `compare --photometry`: the science check users ask for first. Sources are detected on the
//! original (5σ over the sigma-clipped background, at least 5 8-connected pixels), measured with
//! circular apertures and a median sky annulus, and measured again on every decoded image: the
//! flux bias and added scatter in units of each source's flux error, and the centroid shift.

use skyzip_eval::photometry::{check, measure_sources, PhotometryCheck, Source};
use skyzip_fits::ImageHdu;

/// Sources measured, brightest first: enough for stable medians, few enough to stay fast.
const MAX_SOURCES: usize = 500;
/// Detection threshold over the background, in σ, and the smallest source (pixels).
const NSIGMA: f64 = 5.0;
const NPIXELS: usize = 5;

/// How the sources of a file were found (in the report beside the per-codec checks).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Setup {
    /// Segments above the threshold, and sources measured (inside the image, no blanks).
    pub detections: usize,
    pub sources: usize,
    /// The clipped background and the threshold, in physical units.
    pub background: f64,
    pub threshold: f64,
}

/// The original's sources, ready to check decoded images against.
pub struct Photometry {
    sources: Vec<Source>,
    nx: usize,
    ny: usize,
    pub setup: Setup,
}

/// The first plane's physical values as f32 (NaN where blank).
fn plane(img: &ImageHdu) -> Vec<f32> {
    img.physical_plane(0).iter().map(|&v| v as f32).collect()
}

impl Photometry {
    /// Detects and measures the sources of `img` (background noise σ, physical units).
    pub fn of(img: &ImageHdu, sigma: f64) -> Photometry {
        let (nx, ny) = (img.nx(), img.ny());
        let v = plane(img);
        let (_, background, _) = skyzip_data::mask::sigma_clipped_stats(&v, None, 3.0, 5);
        let threshold = background + NSIGMA * sigma;
        let labels = skyzip_data::mask::detect_sources(&v, nx, ny, threshold, NPIXELS);
        let mask: Vec<bool> = labels.iter().map(|&l| l > 0).collect();
        let above: Vec<f64> = v
            .iter()
            .map(|&x| {
                if x.is_finite() {
                    x as f64 - background
                } else {
                    0.0
                }
            })
            .collect();
        let mut dets = skyzip_eval::catalog::detections(&mask, &above, nx, ny);
        dets.sort_by(|a, b| b.flux.total_cmp(&a.flux));
        let list: Vec<(f64, f64, usize)> = dets.iter().map(|d| (d.x, d.y, d.pixels)).collect();
        let sources = measure_sources(&v, nx, ny, &list, sigma, MAX_SOURCES);
        Photometry {
            setup: Setup {
                detections: dets.len(),
                sources: sources.len(),
                background,
                threshold,
            },
            sources,
            nx,
            ny,
        }
    }

    /// The check of one decoded image (the original's shape).
    pub fn check(&self, decoded: &ImageHdu) -> PhotometryCheck {
        check(&self.sources, &plane(decoded), self.nx, self.ny)
    }
}

/// What the photometry table's header says about the method.
pub fn method(s: &Setup) -> String {
    format!(
        "photometry: {} sources measured of {} detections ({NSIGMA}σ over the clipped \
         background {:.6}, ≥ {NPIXELS} connected pixels; the brightest {MAX_SOURCES} at most);\n  \
         aperture r = 1.5·√(area/π) in 2–12 px, sky = median of r+3 … r+8; σ_F = \
         σ·√(N_ap·(1 + N_ap/N_sky)) (background-limited: no gain is known)",
        s.sources, s.detections, s.background
    )
}
