//! Arithmetic that gives the same bits on every IEEE-754 machine: only +, −, ×, ÷ and rounding,
//! which IEEE fixes exactly (Rust never fuses them into FMAs). The entropy coder's probability
//! tables are built from these, so an encoder and a decoder on different machines agree on
//! every table entry — unlike `f64::exp`, which calls the platform's libm.

// fdlibm's split of ln 2: the high part has trailing zero bits, so n·LN2_HI is exact.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// 2^n for n in the normal range (exact), 0 below it.
fn pow2i(n: i64) -> f64 {
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

#[cfg(test)]
mod tests {
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
}
