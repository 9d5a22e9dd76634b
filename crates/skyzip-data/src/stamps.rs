//! Cutting training stamps from large images.

use crate::DataError;

/// How to cut stamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampSpec {
    /// Stamp side N (stamps are N×N).
    pub size: usize,
    /// Step between stamp origins (= size for non-overlapping tiles).
    pub stride: usize,
    /// Skip a stamp when more than this fraction of its pixels is NaN/blank or masked.
    pub max_bad: f64,
}

impl Default for StampSpec {
    fn default() -> Self {
        StampSpec {
            size: 64,
            stride: 64,
            max_bad: 0.5,
        }
    }
}

/// One stamp: its pixels and where it came from (lower-left corner, 0-based pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    pub x0: usize,
    pub y0: usize,
    pub data: Vec<f32>,
}

/// Cuts `spec.size`² stamps from a row-major `ny`×`nx` image every `stride` pixels; `bad` marks
/// pixels to count as unusable besides NaNs.
pub fn cut(
    img: &[f32],
    nx: usize,
    ny: usize,
    bad: Option<&[bool]>,
    spec: &StampSpec,
) -> Result<Vec<Stamp>, DataError> {
    let n = spec.size;
    if n == 0 || spec.stride == 0 {
        return Err(DataError::invalid(
            "stamp size and stride must be at least 1",
        ));
    }
    if n > nx || n > ny {
        return Err(DataError::invalid(format!(
            "a {n}×{n} stamp is larger than the {nx}×{ny} image"
        )));
    }
    if !(0.0..=1.0).contains(&spec.max_bad) {
        return Err(DataError::invalid(format!(
            "max_bad {} is not a fraction",
            spec.max_bad
        )));
    }
    let mut out = Vec::new();
    for y0 in (0..=ny - n).step_by(spec.stride) {
        for x0 in (0..=nx - n).step_by(spec.stride) {
            let mut data = Vec::with_capacity(n * n);
            let mut nbad = 0usize;
            for y in y0..y0 + n {
                let row = &img[y * nx + x0..y * nx + x0 + n];
                for (k, &v) in row.iter().enumerate() {
                    if !v.is_finite() || bad.is_some_and(|b| b[y * nx + x0 + k]) {
                        nbad += 1;
                    }
                }
                data.extend_from_slice(row);
            }
            if nbad as f64 <= spec.max_bad * (n * n) as f64 {
                out.push(Stamp { x0, y0, data });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_tile_the_image_and_skip_blank_ones() {
        let (nx, ny) = (10, 7);
        let mut img: Vec<f32> = (0..nx * ny).map(|i| i as f32).collect();
        for y in 0..4 {
            for x in 0..4 {
                img[y * nx + x] = f32::NAN;
            }
        }
        let s = cut(
            &img,
            nx,
            ny,
            None,
            &StampSpec {
                size: 4,
                stride: 3,
                max_bad: 0.5,
            },
        )
        .unwrap();
        // Origins x ∈ {0, 3, 6}, y ∈ {0, 3}; the one at (0, 0) is all NaN.
        let origins: Vec<(usize, usize)> = s.iter().map(|s| (s.x0, s.y0)).collect();
        assert_eq!(origins, vec![(3, 0), (6, 0), (0, 3), (3, 3), (6, 3)]);
        assert_eq!(s[1].data[0], 6.0);
        assert_eq!(s[4].data[4], img[4 * nx + 6]);
        assert!(cut(
            &img,
            nx,
            ny,
            None,
            &StampSpec {
                size: 8,
                stride: 1,
                max_bad: 0.5
            }
        )
        .is_err());
    }
}
