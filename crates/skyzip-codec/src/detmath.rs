//! Arithmetic that gives the same bits on every IEEE-754 machine: only +, −, ×, ÷ and rounding,
//! which IEEE fixes exactly (Rust never fuses them into FMAs). The entropy coder's probability
//! tables are built from these, so an encoder and a decoder on different machines agree on
//! every table entry — unlike `f64::exp`, which calls the platform's libm.

// fdlibm's split of ln 2: the high part has trailing zero bits, so n·LN2_HI is exact.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// 2^n for n in the normal range (exact), 0 below it.
pub fn pow2i(n: i64) -> f64 {
    if n < -1022 {
        0.0
    } else if n > 1023 {
        f64::INFINITY
    } else {
        f64::from_bits(((1023 + n) as u64) << 52)
    }
}

/// e^x, deterministic, relative error < 1e-15 on [−700, 700].
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < -745.0 {
        return 0.0;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    let n = (x * LOG2_E).round();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series of e^r for |r| ≤ ln2/2, Horner form, 1/k! as exact-enough literals.
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for k in (0..13).rev() {
        p = p * r + INV_FACT[k];
    }
    // Split 2^n so that subnormal results stay exact enough.
    let n = n as i64;
    if n < -1000 {
        p * pow2i(n + 60) * pow2i(-60)
    } else {
        p * pow2i(n)
    }
}

/// ln x, deterministic, absolute error < 1e-15 for x in the normal range; NaN for x < 0,
/// −∞ at 0.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // x = m·2^k with m in [√½, √2): then ln m = 2·atanh(s), s = (m−1)/(m+1), |s| ≤ 0.172.
    let (mut x, mut k) = (x, 0i64);
    if x < f64::MIN_POSITIVE {
        x *= pow2i(54);
        k -= 54;
    }
    let bits = x.to_bits();
    k += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    // atanh(s)/s = Σ s^(2j)/(2j+1), j = 0…11 (the next term is below 1e-18).
    let mut p = 1.0 / 25.0;
    for j in (0..12).rev() {
        p = p * s2 + 1.0 / (2 * j + 1) as f64;
    }
    let k = k as f64;
    k * LN2_HI + (k * LN2_LO + 2.0 * s * p)
}

/// asinh x = sign(x)·ln(|x| + √(x² + 1)) (√ is IEEE-exact).
pub fn asinh(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a > 1e150 {
        ln(a) + std::f64::consts::LN_2
    } else {
        ln(a + (a * a + 1.0).sqrt())
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// (sinh y, cosh y) = ((e^y − e^−y)/2, (e^y + e^−y)/2), from one pair of exponentials.
pub fn sinh_cosh(y: f64) -> (f64, f64) {
    let (a, b) = (exp(y), exp(-y));
    (0.5 * (a - b), 0.5 * (a + b))
}

/// sinh y = (e^y − e^−y)/2.
pub fn sinh(y: f64) -> f64 {
    sinh_cosh(y).0
}

/// cosh y = (e^y + e^−y)/2.
pub fn cosh(y: f64) -> f64 {
    sinh_cosh(y).1
}

/// The normalisations of `skyzip_data::Norm` in these exact operations: forward, inverse and
/// the delta-method spread, as the integer engine's codec path uses them.
pub mod norm {
    use super::{asinh, cosh, exp, ln, sinh};
    use skyzip_data::Norm;

    const LN_10: f64 = std::f64::consts::LN_10;

    pub fn forward(n: &Norm, x: f64) -> f64 {
        match *n {
            Norm::None => x,
            Norm::Log10 { shift } => ln(x + shift) / LN_10,
            Norm::Asinh { background, scale } => asinh((x - background) / scale),
            Norm::MinMax { min, max } => (x - min) / (max - min),
            Norm::Max { max } => x / max,
            Norm::ZScore { background, sigma } => (x - background) / sigma,
        }
    }

    pub fn inverse(n: &Norm, y: f64) -> f64 {
        match *n {
            Norm::None => y,
            Norm::Log10 { shift } => exp(y * LN_10) - shift,
            Norm::Asinh { background, scale } => sinh(y) * scale + background,
            Norm::MinMax { min, max } => y * (max - min) + min,
            Norm::Max { max } => y * max,
            Norm::ZScore { background, sigma } => y * sigma + background,
        }
    }

    /// d f⁻¹/dy at y, analytically.
    pub fn slope(n: &Norm, y: f64) -> f64 {
        match *n {
            Norm::None => 1.0,
            Norm::Log10 { .. } => exp(y * LN_10) * LN_10,
            Norm::Asinh { scale, .. } => cosh(y) * scale,
            Norm::MinMax { min, max } => max - min,
            Norm::Max { max } => max,
            Norm::ZScore { sigma, .. } => sigma,
        }
    }

    /// A spread sd at y in data units: |d f⁻¹/dy| · sd (the delta method).
    pub fn inverse_sigma(n: &Norm, y: f64, sd: f64) -> f64 {
        slope(n, y).abs() * sd
    }
}

/// The logistic function 1/(1 + e^−x).
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

/// tanh x.
pub fn tanh(x: f64) -> f64 {
    let e = exp(-2.0 * x.abs().min(40.0));
    let t = (1.0 - e) / (1.0 + e);
    if x < 0.0 {
        -t
    } else {
        t
    }
}

/// softplus x = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^−|x|).
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + ln(1.0 + exp(-x.abs()))
}

/// 1/k! for k = 0…12.
const INV_FACT: [f64; 13] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
];

/// `x.round()` (half away from zero) for finite x, inline: exact, since x − trunc(x) is.
#[inline(always)]
pub fn round_half_away(x: f64) -> f64 {
    // 2^52: from there on every f64 is an integer (NaN and infinities come back as they are).
    if x.is_nan() || x.abs() >= 4_503_599_627_370_496.0 {
        return x;
    }
    let t = x as i64 as f64;
    let d = x - t;
    // Without branches on d: rounding data is a coin flip per value for a predictor.
    t + ((d >= 0.5) as i64 - (d <= -0.5) as i64) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_half_away_is_rounds() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            0.49999999999999994,
            -0.49999999999999994,
            4503599627370495.5,
            -4503599627370495.5,
            4503599627370496.0,
            9.3e18,
            -9.3e18,
            1e300,
            f64::MIN_POSITIVE,
        ];
        let mut s = 7u64;
        for _ in 0..100_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let scale = [1.0, 1e3, 1e6, 1e12, 1e16][(s % 5) as usize];
            xs.push(((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale);
            xs.push((s % 2000) as f64 / 2.0 - 500.0);
        }
        for x in xs {
            let (a, b) = (super::round_half_away(x), x.round());
            assert!(a == b, "{x}: {a} vs {b}");
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(super::round_half_away(x).to_bits(), x.round().to_bits());
        }
    }

    #[test]
    fn exp_matches_libm_closely() {
        let mut x = -740.0;
        while x < 700.0 {
            let (a, b) = (super::exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-14, "exp({x}) = {a} vs {b}");
            x += 0.137;
        }
        assert_eq!(super::exp(0.0), 1.0);
        assert_eq!(super::exp(-800.0), 0.0);
    }

    #[test]
    fn ln_tanh_softplus_match_libm_closely() {
        let mut x = 1e-310;
        while x < 1e300 {
            let (a, b) = (super::ln(x), x.ln());
            assert!(
                (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                "ln({x}) = {a} vs {b}"
            );
            x *= 1.37;
        }
        assert_eq!(super::ln(1.0), 0.0);
        assert!(super::ln(-1.0).is_nan());
        let mut x = -30.0;
        while x < 30.0 {
            assert!((super::tanh(x) - x.tanh()).abs() < 1e-15, "tanh({x})");
            let sp = x.max(0.0) + (-x.abs()).exp().ln_1p();
            assert!((super::softplus(x) - sp).abs() < 1e-14, "softplus({x})");
            assert!((super::sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() < 1e-15);
            x += 0.0731;
        }
    }

    #[test]
    fn asinh_sinh_and_the_norms_match_libm_closely() {
        for k in -400i32..=400 {
            // |x| from 1e-6 to 1e6 on both sides, and 0.
            let x = if k == 0 {
                0.0
            } else {
                (k as f64).signum() * 10f64.powf((k.abs() as f64 - 1.0) / 400.0 * 12.0 - 6.0)
            };
            let (a, b) = (super::asinh(x), x.asinh());
            assert!(
                (a - b).abs() <= 1e-14 * b.abs().max(1.0),
                "asinh({x}) = {a} vs {b}"
            );
        }
        let mut y = -30.0;
        while y < 30.0 {
            let (a, b) = (super::sinh(y), y.sinh());
            assert!(
                (a - b).abs() <= 1e-13 * b.abs().max(1.0),
                "sinh({y}) = {a} vs {b}"
            );
            y += 0.0917;
        }
        let n = skyzip_data::Norm::Asinh {
            background: 1000.0,
            scale: 27.0,
        };
        for v in [0.0, 950.0, 1000.0, 1003.5, 65535.0] {
            let y = super::norm::forward(&n, v);
            assert!((y - n.forward_value(v)).abs() < 1e-13);
            assert!((super::norm::inverse(&n, y) - v).abs() < 1e-8 * v.max(1.0));
            let (a, b) = (
                super::norm::inverse_sigma(&n, y, 0.1),
                n.inverse_sigma(y, 0.1),
            );
            assert!((a - b).abs() < 1e-6 * b, "{a} vs {b}");
        }
    }
}
