//! skyzip-plot: PNG figures. Image grids with astronomers' stretches (asinh with a noise-level
//! softening, zscale-like limits), written through plotters' bitmap backend.

use plotters::prelude::*;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write PNG: {why}")]
pub struct PlotError {
    pub path: String,
    pub why: String,
}

/// Writes the figure, then rewrites the PNG with the best compression (plotters encodes with
/// the fastest): the same pixels in about a quarter of the bytes.
fn finish(
    root: DrawingArea<BitMapBackend, plotters::coord::Shift>,
    path: &Path,
) -> Result<(), PlotError> {
    use image::ImageEncoder;
    root.present().map_err(|e| perr(path, e))?;
    drop(root);
    let rgb = image::open(path).map_err(|e| perr(path, e))?.to_rgb8();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        rgb.as_raw(),
        rgb.width(),
        rgb.height(),
        image::ColorType::Rgb8,
    )
    .map_err(|e| perr(path, e))?;
    std::fs::write(path, out).map_err(|e| perr(path, e))
}

fn perr(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// One image to show: `nx`×`ny` values, row 0 at the bottom (FITS order). NaNs show grey-blue.
#[derive(Clone, Copy)]
pub struct Tile<'a> {
    pub nx: usize,
    pub ny: usize,
    pub data: &'a [f32],
}

/// How values map to grey levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stretch {
    /// asinh((x − lo)/s)/asinh((hi − lo)/s) with lo = median − 2σ, hi = the 99.9th percentile,
    /// s = 3σ (σ from the MAD): noise stays visible, faint sources show, only the brightest
    /// 0.1 % of pixels (saturated stars) clip to white.
    Asinh,
    /// Linear between the 0.5 and 99.5 percentiles (zscale-like for flat images).
    Linear,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

/// Maps finite values to [0, 1] with a stretch fitted to the image itself.
pub fn stretch(data: &[f32], how: Stretch) -> Vec<Option<f64>> {
    let mut fin: Vec<f64> = data
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| v as f64)
        .collect();
    if fin.is_empty() {
        return vec![None; data.len()];
    }
    let med = median(&mut fin);
    let (lo, hi, soft) = match how {
        Stretch::Asinh => {
            let mut dev: Vec<f64> = fin.iter().map(|v| (v - med).abs()).collect();
            let sigma = 1.4826 * median(&mut dev);
            let max = fin[((fin.len() - 1) as f64 * 0.999) as usize];
            let min = fin[0];
            let sigma = if sigma > 0.0 {
                sigma
            } else {
                (max - min) / 50.0
            };
            ((med - 2.0 * sigma).max(min), max, 3.0 * sigma)
        }
        Stretch::Linear => {
            let p = |q: f64| fin[((fin.len() - 1) as f64 * q) as usize];
            (p(0.005), p(0.995), 0.0)
        }
    };
    let span = (hi - lo).max(1e-300);
    data.iter()
        .map(|&v| {
            if !v.is_finite() {
                return None;
            }
            let x = (v as f64 - lo).max(0.0);
            Some(if soft > 0.0 {
                ((x / soft).asinh() / (span / soft).asinh()).clamp(0.0, 1.0)
            } else {
                (x / span).clamp(0.0, 1.0)
            })
        })
        .collect()
}

/// Writes a grid of tiles (`cols` per row), each scaled to `tile_px` pixels on its longer side,
/// with a 4-pixel gap. Each tile is stretched on its own values.
pub fn image_grid(
    path: &Path,
    tiles: &[Tile],
    cols: usize,
    tile_px: u32,
    how: Stretch,
) -> Result<(), PlotError> {
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let gap = 4u32;
    let (w, h) = (
        cols as u32 * (tile_px + gap) + gap,
        rows as u32 * (tile_px + gap) + gap,
    );
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&RGBColor(30, 30, 30))
        .map_err(|e| perr(path, e))?;
    for (k, t) in tiles.iter().enumerate() {
        let (gx, gy) = ((k % cols) as u32, (k / cols) as u32);
        let (ox, oy) = (gap + gx * (tile_px + gap), gap + gy * (tile_px + gap));
        let s = stretch(t.data, how);
        let scale = tile_px as f64 / t.nx.max(t.ny) as f64;
        let (pw, ph) = ((t.nx as f64 * scale) as u32, (t.ny as f64 * scale) as u32);
        for py in 0..ph {
            // Row 0 of the image is drawn at the bottom, as ds9 does.
            let r = (t.ny - 1).min(((ph - 1 - py) as f64 / scale) as usize);
            for px in 0..pw {
                let c = (t.nx - 1).min((px as f64 / scale) as usize);
                let color = match s[r * t.nx + c] {
                    Some(v) => {
                        let g = (v * 255.0).round() as u8;
                        RGBColor(g, g, g)
                    }
                    None => RGBColor(70, 90, 140),
                };
                root.draw_pixel(((ox + px) as i32, (oy + py) as i32), &color)
                    .map_err(|e| perr(path, e))?;
            }
        }
    }
    finish(root, path)
}

/// Where a sans-serif TrueType font is looked for (Debian/Ubuntu `fonts-dejavu-core`, Fedora,
/// macOS); `SKYZIP_FONT` overrides. Without one, curves are drawn without text.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a system font with plotters once; true when text can be drawn.
fn font_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let env = std::env::var("SKYZIP_FONT").ok();
        let candidates = env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied());
        for p in candidates {
            if let Ok(bytes) = std::fs::read(p) {
                // plotters keeps the font for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One curve of a line plot.
pub struct Series<'a> {
    pub label: &'a str,
    pub points: &'a [(f64, f64)],
}

const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a line plot's axes are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Axes {
    /// Plot log10 of positive y values.
    pub log_y: bool,
    /// x takes whole numbers only (epochs): ticks at integers, labelled without decimals.
    pub integer_x: bool,
}

/// An x axis for whole numbers lo..=hi: its range and the most labels to ask plotters for.
fn integer_axis(lo: f64, hi: f64) -> (f64, f64, usize) {
    let (lo, hi) = (lo.round(), hi.round());
    (lo - 0.5, hi + 0.5, ((hi - lo) as usize + 1).clamp(1, 10))
}

/// A line plot (points marked) as a 800×500 PNG; `log_y` plots log10 of positive values.
/// Title, axis labels and legend need a font (see `FONT_PATHS`); the curves never do.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), PlotError> {
    let axes = Axes {
        log_y,
        integer_x: false,
    };
    line_plot_with(path, title, x_label, y_label, series, axes)
}

/// [`line_plot`] with every axis option.
pub fn line_plot_with(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    axes: Axes,
) -> Result<(), PlotError> {
    let log_y = axes.log_y;
    let tr = |y: f64| if log_y { y.log10() } else { y };
    let pts: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_y || *y > 0.0))
                .map(|&(x, y)| (x, tr(y)))
                .collect()
        })
        .collect();
    let all: Vec<&(f64, f64)> = pts.iter().flatten().collect();
    if all.is_empty() {
        return Err(perr(path, "no finite points to plot"));
    }
    let fold = |f: fn(&(f64, f64)) -> f64| {
        let v: Vec<f64> = all.iter().map(|p| f(p)).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
        (lo - pad, hi + pad)
    };
    let (mut x0, mut x1) = fold(|p| p.0);
    // Whole-number x: half a unit of margin, and at most as many labels as integers, so the
    // "nice" tick step plotters picks is a whole number too.
    let mut x_labels = 10;
    if axes.integer_x {
        let lo = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        (x0, x1, x_labels) = integer_axis(lo, hi);
    }
    let (y0, y1) = fold(|p| p.1);
    let text = font_ready();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = b
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| perr(path, e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        let ylab = if log_y {
            format!("log10 {y_label}")
        } else {
            y_label.to_string()
        };
        mesh.x_desc(x_label)
            .y_desc(ylab)
            .label_style(("sans-serif", 14));
        let whole = |v: &f64| format!("{v:.0}");
        if axes.integer_x {
            mesh.x_labels(x_labels).x_label_formatter(&whole);
        }
        mesh.draw().map_err(|e| perr(path, e))?;
    } else {
        mesh.disable_x_mesh()
            .disable_y_mesh()
            .draw()
            .map_err(|e| perr(path, e))?;
    }
    for (i, (s, p)) in series.iter().zip(&pts).enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let line = chart
            .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
            .map_err(|e| perr(path, e))?;
        if text {
            line.label(s.label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
        chart
            .draw_series(p.iter().map(|&q| Circle::new(q, 3, c.filled())))
            .map_err(|e| perr(path, e))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| perr(path, e))?;
    }
    finish(root, path)
}

/// Predicted against true values as a 600×600 PNG, with the line y = x.
pub fn scatter_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
) -> Result<(), PlotError> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return Err(perr(path, "no finite points to plot"));
    }
    let lo = pts
        .iter()
        .map(|p| p.0.min(p.1))
        .fold(f64::INFINITY, f64::min);
    let hi = pts
        .iter()
        .map(|p| p.0.max(p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    let pad = if hi > lo { 0.03 * (hi - lo) } else { 0.5 };
    let (lo, hi) = (lo - pad, hi + pad);
    let text = font_ready();
    let root = BitMapBackend::new(path, (600, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(title, ("sans-serif", 20))
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = b
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(|e| perr(path, e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14));
    }
    mesh.draw().map_err(|e| perr(path, e))?;
    chart
        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(1)))
        .map_err(|e| perr(path, e))?;
    chart
        .draw_series(
            pts.iter()
                .map(|&q| Circle::new(q, 2, COLOURS[0].mix(0.5).filled())),
        )
        .map_err(|e| perr(path, e))?;
    finish(root, path)
}

/// Histograms of one or more samples over [lo, hi] in `bins` bins, as a 800×500 PNG (outlined
/// bars, one colour per sample).
pub fn histogram(
    path: &Path,
    title: &str,
    x_label: &str,
    samples: &[(&str, &[f64])],
    bins: usize,
    (lo, hi): (f64, f64),
) -> Result<(), PlotError> {
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    if width.is_nan() || width <= 0.0 {
        return Err(perr(path, "empty histogram range"));
    }
    let counts: Vec<Vec<usize>> = samples
        .iter()
        .map(|(_, v)| {
            let mut c = vec![0usize; bins];
            for &x in v.iter().filter(|x| x.is_finite()) {
                let k = (((x - lo) / width).floor() as isize).clamp(0, bins as isize - 1);
                c[k as usize] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let text = font_ready();
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(title, ("sans-serif", 20))
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = b
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(|e| perr(path, e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(x_label)
            .y_desc("images")
            .label_style(("sans-serif", 14));
    }
    mesh.draw().map_err(|e| perr(path, e))?;
    for (i, ((label, _), c)) in samples.iter().zip(&counts).enumerate() {
        let col = COLOURS[i % COLOURS.len()];
        let bars = chart
            .draw_series(c.iter().enumerate().map(|(k, &n)| {
                let x0 = lo + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, n as f64)], col.stroke_width(2))
            }))
            .map_err(|e| perr(path, e))?;
        if text {
            bars.label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], col.filled()));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| perr(path, e))?;
    }
    finish(root, path)
}

/// How the points of an [`embedding_plot`] are coloured.
pub enum Colouring<'a> {
    /// One class per point, named by `names` (e.g. FRI, FRII): one colour and legend entry each.
    Classes(&'a [usize], &'a [String]),
    /// A value per point, from blue (lowest) to red (highest); the legend gives the range.
    Values(&'a [f64], &'a str),
}

/// A 2-D embedding (PCA, t-SNE…) as a 700×600 PNG, points coloured by a label or a parameter.
pub fn embedding_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    colour: &Colouring,
) -> Result<(), PlotError> {
    let fin: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    if fin.is_empty() {
        return Err(perr(path, "no finite points to plot"));
    }
    let range = |f: &dyn Fn(usize) -> f64| {
        let lo = fin.iter().map(|&i| f(i)).fold(f64::INFINITY, f64::min);
        let hi = fin.iter().map(|&i| f(i)).fold(f64::NEG_INFINITY, f64::max);
        let pad = if hi > lo { 0.04 * (hi - lo) } else { 0.5 };
        (lo - pad, hi + pad)
    };
    let (x0, x1) = range(&|i| points[i].0);
    let (y0, y1) = range(&|i| points[i].1);
    let text = font_ready();
    let root = BitMapBackend::new(path, (700, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(title, ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    let mut chart = b
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| perr(path, e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 13));
    }
    mesh.draw().map_err(|e| perr(path, e))?;
    match colour {
        Colouring::Classes(cls, names) => {
            for (c, name) in names.iter().enumerate() {
                let col = COLOURS[c % COLOURS.len()];
                let pts: Vec<(f64, f64)> = fin
                    .iter()
                    .filter(|&&i| cls.get(i) == Some(&c))
                    .map(|&i| points[i])
                    .collect();
                let s = chart
                    .draw_series(
                        pts.iter()
                            .map(|&q| Circle::new(q, 3, col.mix(0.6).filled())),
                    )
                    .map_err(|e| perr(path, e))?;
                s.label(format!("{name} ({})", pts.len()))
                    .legend(move |(x, y)| Circle::new((x + 7, y), 4, col.filled()));
            }
        }
        Colouring::Values(v, name) => {
            let fv: Vec<f64> = fin
                .iter()
                .map(|&i| v.get(i).copied().unwrap_or(f64::NAN))
                .collect();
            let lo = fv
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(f64::INFINITY, f64::min);
            let hi = fv
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(f64::NEG_INFINITY, f64::max);
            let shade = move |x: f64| {
                let t = if hi > lo {
                    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.5
                };
                RGBColor(
                    (40.0 + 210.0 * t) as u8,
                    (60.0 + 80.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8,
                    (230.0 - 200.0 * t) as u8,
                )
            };
            chart
                .draw_series(fin.iter().zip(&fv).map(|(&i, &x)| {
                    let c = if x.is_finite() {
                        shade(x)
                    } else {
                        RGBColor(160, 160, 160)
                    };
                    Circle::new(points[i], 3, c.mix(0.7).filled())
                }))
                .map_err(|e| perr(path, e))?;
            for (t, what) in [(lo, "lowest"), (hi, "highest")] {
                let c = shade(t);
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                    .map_err(|e| perr(path, e))?
                    .label(format!("{name} {what}: {t:.3}"))
                    .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
            }
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| perr(path, e))?;
    }
    finish(root, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asinh_stretch_is_monotone_and_bounded() {
        let data: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0)
            .chain([f32::NAN, 1e6])
            .collect();
        let s = stretch(&data, Stretch::Asinh);
        assert!(s[1000].is_none());
        assert_eq!(s[1001], Some(1.0));
        assert!(s[..1000]
            .iter()
            .all(|v| v.unwrap() < 1.0 || v.unwrap() == 1.0));
        let mut pairs: Vec<(f32, f64)> = data
            .iter()
            .zip(&s)
            .filter_map(|(d, v)| v.map(|v| (*d, v)))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(pairs.iter().all(|p| (0.0..=1.0).contains(&p.1)));
    }

    #[test]
    fn whole_number_axes_tick_at_whole_numbers() {
        use plotters::coord::ranged1d::Ranged;
        use plotters::coord::types::RangedCoordf64;
        for (lo, hi) in [(1.0, 3.0), (1.0, 1.0), (1.0, 40.0), (5.0, 17.0)] {
            let (x0, x1, n) = integer_axis(lo, hi);
            let ticks = RangedCoordf64::from(x0..x1).key_points(n);
            assert!(!ticks.is_empty(), "{lo}..{hi}");
            assert!(
                ticks.iter().all(|t| t.fract().abs() < 1e-9),
                "{lo}..{hi}: {ticks:?}"
            );
        }
    }

    #[test]
    fn grid_writes_a_png() {
        let d = std::env::temp_dir().join(format!("skyzip-plot-{}.png", std::process::id()));
        let a: Vec<f32> = (0..64 * 64).map(|i| (i % 64) as f32).collect();
        let tiles = vec![
            Tile {
                nx: 64,
                ny: 64,
                data: &a
            };
            3
        ];
        image_grid(&d, &tiles, 2, 32, Stretch::Linear).unwrap();
        let bytes = std::fs::read(&d).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::remove_file(&d).unwrap();
    }
}
