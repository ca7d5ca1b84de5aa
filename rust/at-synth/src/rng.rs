//! The generator's own PRNG, transcendental functions and distributions.
//!
//! Why not `rand` and `f64::ln`: the promise is "same seed, same bytes" forever. A `rand`
//! upgrade may change how a distribution consumes the stream, and `f64::exp`/`ln` call the
//! platform's libm, whose last-bit results differ between C libraries and versions. In a
//! chaotic simulation one flipped comparison changes every later event. Everything here
//! uses only IEEE-754 `+ - * /` and `sqrt` (all correctly rounded, and Rust never fuses
//! them into FMAs), so the output is identical on every platform and compiler version.

/// SplitMix64 (Steele, Lea, Flood 2014): expands a 64-bit seed into the xoshiro state.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman, Vigna 2018) plus the cached second normal of the polar method.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self {
            s,
            spare_normal: None,
        }
    }

    /// Independent stream for a sub-component: seeded from this seed and a stream tag.
    pub fn stream(seed: u64, tag: u64) -> Self {
        let mut sm = SplitMix64::new(seed ^ tag.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(sm.next_u64())
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on the open interval (0, 1): never 0 (safe for `ln`) and never 1.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0)
    }

    #[inline]
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard exponential variate (mean 1).
    #[inline]
    pub fn exp1(&mut self) -> f64 {
        -ln(self.uniform())
    }

    /// Standard normal by Marsaglia's polar method (only `ln` and `sqrt`, no trigonometry).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let m = (-2.0 * ln(s) / s).sqrt();
                self.spare_normal = Some(v * m);
                return u * m;
            }
        }
    }

    /// Log-normal variate with the given median and log-standard-deviation.
    #[inline]
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }

    /// Geometric count on {0, 1, 2, ...} with the given mean.
    pub fn geometric(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        let q = mean / (1.0 + mean); // P(N >= k+1 | N >= k)
        let n = ln(self.uniform()) / ln(q);
        if n >= u32::MAX as f64 {
            u32::MAX
        } else {
            n as u32
        }
    }
}

// fdlibm's split of ln 2: LN2_HI has trailing zero bits, so k * LN2_HI is exact.
#[allow(clippy::excessive_precision)]
const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1;
#[allow(clippy::excessive_precision)]
const LN2_LO: f64 = 1.908_214_929_270_587_700_0e-10;
const LN2: f64 = std::f64::consts::LN_2;
/// 1/(2k+1), k = 0..11: coefficients of atanh(s)/s in s^2.
const ATANH_C: [f64; 12] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
    1.0 / 23.0,
];
/// 1/k!, k = 0..14.
const EXP_C: [f64; 15] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
    1.0 / 87178291200.0,
];

/// Natural logarithm from IEEE arithmetic only. Relative error below 1e-15 on (0, inf).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut bits = x.to_bits();
    let mut e: i64 = ((bits >> 52) & 0x7ff) as i64;
    if e == 0 {
        // subnormal: scale into the normal range first
        let y = x * 18_014_398_509_481_984.0; // 2^54
        bits = y.to_bits();
        e = ((bits >> 52) & 0x7ff) as i64 - 54;
    }
    let mut k = e - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000); // [1, 2)
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: the odd series converges fast
    // (terms to s^23, error < 3e-19). Coefficients are compile-time constants, so this is
    // one division and a Horner chain of multiply-adds (never fused: Rust does not contract).
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = ATANH_C[ATANH_C.len() - 1];
    let mut i = ATANH_C.len() - 1;
    while i > 0 {
        i -= 1;
        p = p * s2 + ATANH_C[i];
    }
    let sum = s * p;
    let kf = k as f64;
    kf * LN2_HI + (kf * LN2_LO + 2.0 * sum)
}

/// Exponential from IEEE arithmetic only. Relative error below 1e-15 on its normal range.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -708.0 {
        return 0.0;
    }
    let kf = (x / LN2 + if x >= 0.0 { 0.5 } else { -0.5 }).trunc();
    let r = (x - kf * LN2_HI) - kf * LN2_LO; // |r| <= ln2/2
                                             // Taylor series of e^r to degree 14 (error < 1e-17 for |r| <= 0.347), Horner form.
    let mut sum = EXP_C[EXP_C.len() - 1];
    let mut i = EXP_C.len() - 1;
    while i > 0 {
        i -= 1;
        sum = sum * r + EXP_C[i];
    }
    let k = kf as i64;
    sum * f64::from_bits(((k + 1023) as u64) << 52)
}

/// `exp(x) - 1` without cancellation for small `x`.
pub fn expm1(x: f64) -> f64 {
    if x.abs() < 1e-3 {
        // series to x^6: error < 1e-22
        let mut term = x;
        let mut sum = x;
        for i in 2..7 {
            term *= x / i as f64;
            sum += term;
        }
        sum
    } else {
        exp(x) - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_reference_values() {
        // Reference outputs of splitmix64.c (Vigna) for seed 0.
        let mut sm = SplitMix64::new(0);
        assert_eq!(sm.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(sm.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(sm.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let va: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        let vc: Vec<u64> = (0..100).map(|_| c.next_u64()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
    }

    #[test]
    fn ln_and_exp_agree_with_libm() {
        let mut r = Rng::new(1);
        for _ in 0..20_000 {
            let x = exp_libm_range(&mut r);
            let got = ln(x);
            let want = x.ln();
            assert!(
                (got - want).abs() <= 2e-15 * want.abs().max(1e-300) + 1e-300,
                "ln({x}) = {got} vs {want}"
            );
            let y = r.range(-700.0, 700.0);
            let g = exp(y);
            let w = y.exp();
            assert!(((g - w) / w).abs() < 4e-15, "exp({y}) = {g} vs {w}");
        }
        for &x in &[
            1.0,
            2.0,
            0.5,
            f64::MIN_POSITIVE,
            5e-324,
            1e300,
            std::f64::consts::E,
        ] {
            assert!(
                ((ln(x) - x.ln()) / x.ln().abs().max(1.0)).abs() < 2e-15,
                "ln({x})"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        for &x in &[1e-12, -3e-5, 5e-4, -0.2, 1.5] {
            let w: f64 = f64::exp_m1(x);
            assert!(((expm1(x) - w) / w).abs() < 1e-14, "expm1({x})");
        }
    }

    fn exp_libm_range(r: &mut Rng) -> f64 {
        r.range(-700.0, 700.0).exp()
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(42);
        let n = 200_000;
        let (mut su, mut sn, mut sn2, mut se) = (0.0, 0.0, 0.0, 0.0);
        let mut sg = 0u64;
        for _ in 0..n {
            let u = r.uniform();
            assert!(u > 0.0 && u < 1.0);
            su += u;
            let z = r.normal();
            sn += z;
            sn2 += z * z;
            se += r.exp1();
            sg += r.geometric(2.0) as u64;
        }
        let nf = n as f64;
        assert!((su / nf - 0.5).abs() < 0.005);
        assert!((sn / nf).abs() < 0.01);
        assert!((sn2 / nf - 1.0).abs() < 0.015);
        assert!((se / nf - 1.0).abs() < 0.01);
        assert!((sg as f64 / nf - 2.0).abs() < 0.03);
    }
}
