//! Geometric augmentation (the 8 flips/rotations of a square) and bilinear resizing.

/// One of the 8 symmetries of the square: `rot` quarter turns counter-clockwise, then an
/// optional left-right flip. Non-square images allow only rot ∈ {0, 2}.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dihedral {
    pub rot: u8,
    pub flip: bool,
}

impl Dihedral {
    pub const ALL: [Dihedral; 8] = [
        Dihedral {
            rot: 0,
            flip: false,
        },
        Dihedral {
            rot: 1,
            flip: false,
        },
        Dihedral {
            rot: 2,
            flip: false,
        },
        Dihedral {
            rot: 3,
            flip: false,
        },
        Dihedral { rot: 0, flip: true },
        Dihedral { rot: 1, flip: true },
        Dihedral { rot: 2, flip: true },
        Dihedral { rot: 3, flip: true },
    ];

    /// Applies the transform to a row-major `ny`×`nx` image; returns the new (nx, ny) and data.
    pub fn apply<T: Copy>(&self, data: &[T], nx: usize, ny: usize) -> (usize, usize, Vec<T>) {
        let rot = self.rot % 4;
        let (ox, oy) = if rot % 2 == 1 { (ny, nx) } else { (nx, ny) };
        let mut out = Vec::with_capacity(data.len());
        for y in 0..oy {
            for x in 0..ox {
                let x = if self.flip { ox - 1 - x } else { x };
                // Source pixel of output (x, y) under `rot` counter-clockwise quarter turns.
                let (sx, sy) = match rot {
                    0 => (x, y),
                    1 => (nx - 1 - y, x),
                    2 => (nx - 1 - x, ny - 1 - y),
                    _ => (y, ny - 1 - x),
                };
                out.push(data[sy * nx + sx]);
            }
        }
        (ox, oy, out)
    }
}

/// Bilinear resize with pixel-centre alignment (as PyTorch `align_corners=False`, without
/// antialiasing): output pixel centres map to input coordinates (i + 0.5)·in/out − 0.5, clamped.
pub fn resize_bilinear(data: &[f32], nx: usize, ny: usize, ox: usize, oy: usize) -> Vec<f32> {
    let coords = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32)> {
        (0..n_out)
            .map(|i| {
                let s = ((i as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5)
                    .clamp(0.0, (n_in - 1) as f64);
                let i0 = s.floor() as usize;
                let i1 = (i0 + 1).min(n_in - 1);
                (i0, i1, (s - i0 as f64) as f32)
            })
            .collect()
    };
    let (cx, cy) = (coords(nx, ox), coords(ny, oy));
    let mut out = Vec::with_capacity(ox * oy);
    for &(y0, y1, fy) in &cy {
        for &(x0, x1, fx) in &cx {
            let a = data[y0 * nx + x0] * (1.0 - fx) + data[y0 * nx + x1] * fx;
            let b = data[y1 * nx + x0] * (1.0 - fx) + data[y1 * nx + x1] * fx;
            out.push(a * (1.0 - fy) + b * fy);
        }
    }
    out
}

/// The image turned by `angle` radians about its centre (the sense of [`Dihedral`]'s quarter
/// turns, numpy's `rot90`), bilinear, with 0
/// where the turned image has no data (as seed 003's randomly rotated maps).
pub fn rotate_bilinear(data: &[f32], nx: usize, ny: usize, angle: f64) -> Vec<f32> {
    let (c, s) = (angle.cos(), angle.sin());
    let (cx, cy) = ((nx as f64 - 1.0) / 2.0, (ny as f64 - 1.0) / 2.0);
    let at = |x: isize, y: isize| -> f64 {
        if x < 0 || y < 0 || x >= nx as isize || y >= ny as isize {
            0.0
        } else {
            data[y as usize * nx + x as usize] as f64
        }
    };
    let mut out = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            // The output pixel's source: the inverse rotation of its offset from the centre.
            let (dx, dy) = (i as f64 - cx, j as f64 - cy);
            let (u, v) = (c * dx - s * dy + cx, s * dx + c * dy + cy);
            let (u0, v0) = (u.floor(), v.floor());
            let (fu, fv) = (u - u0, v - v0);
            let (u0, v0) = (u0 as isize, v0 as isize);
            let val = at(u0, v0) * (1.0 - fu) * (1.0 - fv)
                + at(u0 + 1, v0) * fu * (1.0 - fv)
                + at(u0, v0 + 1) * (1.0 - fu) * fv
                + at(u0 + 1, v0 + 1) * fu * fv;
            out.push(val as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_zero_and_quarter_turns() {
        let img: Vec<f32> = (0..25).map(|i| i as f32).collect();
        assert_eq!(rotate_bilinear(&img, 5, 5, 0.0), img);
        // A quarter turn is numpy's rot90 up to rounding; four of them give the image back.
        let q = rotate_bilinear(&img, 5, 5, std::f64::consts::FRAC_PI_2);
        let (_, _, r) = Dihedral {
            rot: 1,
            flip: false,
        }
        .apply(&img, 5, 5);
        for (a, b) in q.iter().zip(&r) {
            assert!((a - b).abs() < 1e-4, "{q:?} vs {r:?}");
        }
        // The centre stays; a corner turned out of the frame becomes 0.
        let big: Vec<f32> = (0..81).map(|i| 1.0 + i as f32).collect();
        let t = rotate_bilinear(&big, 9, 9, std::f64::consts::FRAC_PI_4);
        assert!((t[40] - 41.0).abs() < 1e-4 && t[0] == 0.0, "{t:?}");
    }

    #[test]
    fn the_eight_symmetries_are_distinct_and_invertible() {
        let img: Vec<u32> = (0..12).collect(); // 4 wide, 3 high
        let sq: Vec<u32> = (0..9).collect();
        let mut seen = std::collections::HashSet::new();
        for d in Dihedral::ALL {
            let (ox, oy, out) = d.apply(&sq, 3, 3);
            assert_eq!((ox, oy), (3, 3));
            seen.insert(out);
        }
        assert_eq!(seen.len(), 8);
        // A quarter turn of a 4×3 image is 3×4; four of them give the image back.
        let mut cur = (4, 3, img.clone());
        for _ in 0..4 {
            cur = Dihedral {
                rot: 1,
                flip: false,
            }
            .apply(&cur.2, cur.0, cur.1);
        }
        assert_eq!(cur, (4, 3, img.clone()));
        // rot 1 is numpy's rot90 (counter-clockwise with row 0 on top).
        let (_, _, r) = Dihedral {
            rot: 1,
            flip: false,
        }
        .apply(&sq, 3, 3);
        assert_eq!(r, vec![2, 5, 8, 1, 4, 7, 0, 3, 6]);
    }

    #[test]
    fn bilinear_resize_keeps_constants_and_ramps() {
        let c = vec![3.5f32; 150 * 150];
        assert!(resize_bilinear(&c, 150, 150, 187, 187)
            .iter()
            .all(|&v| (v - 3.5).abs() < 1e-6));
        // A linear ramp stays linear in the interior: x_in = (i + 0.5)·2 − 0.5.
        let ramp: Vec<f32> = (0..8 * 2).map(|i| (i % 8) as f32).collect();
        let r = resize_bilinear(&ramp, 8, 2, 4, 1);
        assert_eq!(r, vec![0.5, 2.5, 4.5, 6.5]);
        assert_eq!(resize_bilinear(&ramp, 8, 2, 8, 2), ramp);
    }
}
