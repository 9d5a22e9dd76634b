//! How every command prints the same quantities: shapes in FITS order (NAXIS1×NAXIS2, as
//! `skyzip_fits::fits_shape`) and σ with four significant digits.

/// A shape in FITS order, planes only when there are several.
pub fn shape(dims: &[usize]) -> String {
    let dims: Vec<usize> = match dims {
        [nx, ny, 1] => vec![*nx, *ny],
        d => d.to_vec(),
    };
    skyzip_fits::fits_shape(&dims)
}

/// A value with four significant digits: plain between 10⁻³ and 10⁵, scientific outside.
pub fn sigma(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let digits = a.log10().floor() as i32 + 1;
        let decimals = (4 - digits).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A ratio to σ for tables: plain when moderate, scientific and marked `!` when it is beyond
/// 1000 (a codec that lost the image, e.g. HCOMPRESS filling NaN blanks).
pub fn in_sigma(v: f64, width: usize) -> String {
    let s = if !v.is_finite() {
        format!("{v}!")
    } else if v.abs() >= 1000.0 {
        format!("{v:.1e}!")
    } else {
        format!("{v:.4}")
    };
    format!("{s:>width$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_has_four_significant_digits() {
        assert_eq!(sigma(25.160590), "25.16");
        assert_eq!(sigma(0.012346), "0.01235");
        assert_eq!(sigma(1234.4), "1234");
        assert_eq!(sigma(2.5e-7), "2.500e-7");
        assert_eq!(shape(&[1392, 1040, 1]), "1392×1040");
        assert_eq!(in_sigma(1.4e7, 9), "   1.4e7!");
        assert_eq!(in_sigma(0.0, 6), "0.0000");
    }
}
