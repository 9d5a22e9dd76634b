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

#[cfg(test)]
mod tests {
    use super::*;

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
