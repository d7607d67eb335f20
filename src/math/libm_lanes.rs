//! The `libm` crate's `exp` and `erfc` (fdlibm's e_exp.c and s_erf.c, Sun Microsystems 1993,
//! freely redistributable) on eight lanes at once, giving lane by lane the bits of the scalar
//! functions: the same constants, the same operations in the same order, with fdlibm's
//! branches on the argument's range turned into selects. A block of eight arguments pays
//! only for the ranges its lanes fall in, so a chunk of paths whose arguments share a range
//! (the usual case: one option's d₁ moves little from path to path) costs one branch.
//!
//! Accuracy is therefore fdlibm's (under one ulp); the tests compare bit patterns with the
//! scalar `libm` on every range boundary, special values and random arguments.
//!
//! fdlibm's notice: Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//! Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy, modify,
//! and distribute this software is freely granted, provided that this notice is preserved.

#[cfg(test)]
use crate::math::lanes::LANES;
use crate::math::lanes::{F64x8, I32x8, Mask8};

// e_exp.c
const LN2HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
/// Above it e^x overflows (fdlibm's o_threshold, 709.78…).
const EXP_OVERFLOW: f64 = f64::from_bits(0x4086_2e42_fefa_39ef);
/// Below it e^x underflows to 0 (fdlibm's u_threshold, −745.13…).
const EXP_UNDERFLOW: f64 = f64::from_bits(0xc087_4910_d52d_3051);
const EXP_P: [f64; 5] = [
    f64::from_bits(0x3fc5_5555_5555_553e),
    f64::from_bits(0xbf66_c16c_16be_bd93),
    f64::from_bits(0x3f11_566a_af25_de2c),
    f64::from_bits(0xbebb_bd41_c5d2_6bf1),
    f64::from_bits(0x3e66_3769_72be_a4d0),
];

// s_erf.c
const ERX: f64 = f64::from_bits(0x3feb_0ac1_6000_0000);
/// erf on [0, 0.84375]: numerator and denominator in x².
const PP: [f64; 5] = [
    f64::from_bits(0x3fc0_6eba_8214_db68),
    f64::from_bits(0xbfd4_cd7d_691c_b913),
    f64::from_bits(0xbf9d_2a51_dbd7_194f),
    f64::from_bits(0xbf77_a291_2366_68e4),
    f64::from_bits(0xbef8_ead6_1200_16ac),
];
const QQ: [f64; 6] = [
    1.0,
    f64::from_bits(0x3fd9_7779_cdda_dc09),
    f64::from_bits(0x3fb0_a54c_5536_ceba),
    f64::from_bits(0x3f74_d022_c4d3_6b0f),
    f64::from_bits(0x3f21_5dc9_221c_1a10),
    f64::from_bits(0xbed0_9c43_42a2_6120),
];
/// erf on [0.84375, 1.25]: in |x| − 1.
const PA: [f64; 7] = [
    f64::from_bits(0xbf63_59b8_bef7_7538),
    f64::from_bits(0x3fda_8d00_ad92_b34d),
    f64::from_bits(0xbfd7_d240_fbb8_c3f1),
    f64::from_bits(0x3fd4_5fca_8051_20e4),
    f64::from_bits(0xbfbc_6398_3d3e_28ec),
    f64::from_bits(0x3fa2_2a36_5997_95eb),
    f64::from_bits(0xbf61_bf38_0a96_073f),
];
const QA: [f64; 7] = [
    1.0,
    f64::from_bits(0x3fbb_3e66_18ee_e323),
    f64::from_bits(0x3fe1_4af0_92eb_6f33),
    f64::from_bits(0x3fb2_635c_d99f_e9a7),
    f64::from_bits(0x3fc0_2660_e763_351f),
    f64::from_bits(0x3f8b_edc2_6b51_dd1c),
    f64::from_bits(0x3f88_8b54_5735_151d),
];
/// erfc on [1.25, 1/0.35]: in 1/x².
const RA: [f64; 8] = [
    f64::from_bits(0xbf84_3412_600d_6435),
    f64::from_bits(0xbfe6_3416_e4ba_7360),
    f64::from_bits(0xc025_1e04_41b0_e726),
    f64::from_bits(0xc04f_300a_e4cb_a38d),
    f64::from_bits(0xc064_4cb1_8428_2266),
    f64::from_bits(0xc067_135c_ebcc_abb2),
    f64::from_bits(0xc054_5265_57e4_d2f2),
    f64::from_bits(0xc023_a0ef_c69a_c25c),
];
const SA: [f64; 9] = [
    1.0,
    f64::from_bits(0x4033_a6b9_bd70_7687),
    f64::from_bits(0x4061_350c_526a_e721),
    f64::from_bits(0x407b_290d_d58a_1a71),
    f64::from_bits(0x4084_2b19_21ec_2868),
    f64::from_bits(0x407a_d021_5770_0314),
    f64::from_bits(0x405b_28a3_ee48_ae2c),
    f64::from_bits(0x401a_47ef_8e48_4a93),
    f64::from_bits(0xbfae_eff2_ee74_9a62),
];
/// erfc on [1/0.35, 28]: in 1/x².
const RB: [f64; 7] = [
    f64::from_bits(0xbf84_3412_39e8_6f4a),
    f64::from_bits(0xbfe9_93ba_70c2_85de),
    f64::from_bits(0xc031_c209_555f_995a),
    f64::from_bits(0xc064_145d_43c5_ed98),
    f64::from_bits(0xc083_ec88_1375_f228),
    f64::from_bits(0xc090_0461_6a2e_5992),
    f64::from_bits(0xc07e_384e_9bdc_383f),
];
const SB: [f64; 8] = [
    1.0,
    f64::from_bits(0x403e_568b_261d_5190),
    f64::from_bits(0x4074_5cae_221b_9f0a),
    f64::from_bits(0x4098_02eb_189d_5118),
    f64::from_bits(0x40a8_ffb7_688c_246a),
    f64::from_bits(0x40a3_f219_cedf_3be6),
    f64::from_bits(0x407d_a874_e79f_e763),
    f64::from_bits(0xc036_70e2_4271_2d62),
];

/// The double whose high 32 bits are `high` and low 32 bits zero: comparing |x| with it
/// is fdlibm's comparison of |x|'s high word with `high`.
fn high_word(high: u64) -> f64 {
    f64::from_bits(high << 32)
}

/// c₀ + t·(c₁ + t·(c₂ + …)), evaluated innermost first as fdlibm writes it. (A plain loop:
/// a closure or iterator adapter here would be compiled out of line, without AVX.)
#[inline(always)]
fn horner(t: F64x8, coefficients: &[f64]) -> F64x8 {
    let mut i = coefficients.len() - 1;
    let mut acc = F64x8::splat(coefficients[i]);
    while i > 0 {
        i -= 1;
        acc = coefficients[i] + t * acc;
    }
    acc
}

/// e^x on eight lanes, lane by lane the bits of `libm::exp`.
#[inline(always)]
pub fn exp(x: F64x8) -> F64x8 {
    let ax = x.abs();
    let negative = x.sign_bit();
    // |x| ≥ 1.5·ln 2: k = (int)(x/ln 2 ± 1/2); 0.5·ln 2 < |x| < 1.5·ln 2: k = ±1;
    // 2⁻²⁸ < |x| ≤ 0.5·ln 2: k = 0 (hi = x, lo = 0 are what the general formulas give).
    let far = ax.ge(F64x8::splat(high_word(0x3ff0_a2b2)));
    let reduced = ax.ge(F64x8::splat(high_word(0x3fd6_2e43)));
    let half = negative.select(F64x8::splat(-0.5), F64x8::splat(0.5));
    let k_far = (INVLN2 * x + half).truncate_to_i32();
    let k_near = I32x8::select_where(negative, I32x8::splat(-1), I32x8::splat(1));
    let k = I32x8::select_where(
        far,
        k_far,
        I32x8::select_where(reduced, k_near, I32x8::splat(0)),
    );
    let kf = k.to_f64();
    let hi = x - kf * LN2HI;
    let lo = kf * LN2LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * horner(rr, &EXP_P);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    let scaled = y.scale_by_power_of_two(k);
    let tiny = ax.lt(F64x8::splat(high_word(0x3e30_0001)));
    let mut result = tiny.select(1.0 + x, scaled);
    // fdlibm's special cases: |x| ≥ 708.39 holds overflow, underflow to 0 and NaN.
    if ax.ge(F64x8::splat(high_word(0x4086_232b))).any() || x.is_nan().any() {
        let overflow = x.gt(F64x8::splat(EXP_OVERFLOW));
        let underflow = x.lt(F64x8::splat(EXP_UNDERFLOW));
        result = overflow.select(x * f64::from_bits(0x7fe0_0000_0000_0000), result);
        result = underflow.select(F64x8::splat(0.0), result);
        result = x.is_nan().select(x, result);
    }
    result
}

/// erfc(x) on eight lanes, lane by lane the bits of `libm::erfc`.
#[inline(always)]
pub fn erfc(x: F64x8) -> F64x8 {
    let ax = x.abs();
    let negative = x.sign_bit();
    let below_0_84375 = ax.lt(F64x8::splat(high_word(0x3feb_0000)));
    let below_1_25 = ax.lt(F64x8::splat(high_word(0x3ff4_0000)));
    let below_28 = ax.lt(F64x8::splat(high_word(0x403c_0000)));
    let near = below_0_84375;
    let shoulder = below_1_25.and_not(below_0_84375);
    let tail = below_28.and_not(below_1_25);

    let mut result = F64x8::splat(0.0);
    if near.any() {
        result = near.select(erfc_near_zero(x, ax, negative), result);
    }
    if shoulder.any() {
        result = shoulder.select(erfc_shoulder(ax, negative), result);
    }
    if tail.any() {
        result = tail.select(erfc_tail(ax, negative), result);
    }
    let beyond = !below_28;
    if beyond.any() {
        result = beyond.select(erfc_beyond_28(x, ax, negative), result);
    }
    result
}

/// |x| < 0.84375: 1 − erf(x) with erf(x) = x + x·P(x²)/Q(x²); 1 − x below 2⁻⁵⁶.
#[inline(always)]
fn erfc_near_zero(x: F64x8, ax: F64x8, negative: Mask8) -> F64x8 {
    let z = x * x;
    let y = horner(z, &PP) / horner(z, &QQ);
    let below_quarter = negative.or(ax.lt(F64x8::splat(high_word(0x3fd0_0000))));
    let value = below_quarter.select(1.0 - (x + x * y), 0.5 - (x - 0.5 + x * y));
    let tiny = ax.lt(F64x8::splat(high_word(0x3c70_0000)));
    tiny.select(1.0 - x, value)
}

/// 0.84375 ≤ |x| < 1.25: erfc(|x|) = 1 − c − P(s)/Q(s), s = |x| − 1; 2 − that for x < 0.
#[inline(always)]
fn erfc_shoulder(ax: F64x8, negative: Mask8) -> F64x8 {
    let s = ax - 1.0;
    let value = 1.0 - ERX - horner(s, &PA) / horner(s, &QA);
    negative.select(2.0 - value, value)
}

/// 1.25 ≤ |x| < 28: erfc(|x|) = exp(−z² − 0.5625)·exp((z − |x|)(z + |x|) + R/S)/|x| with z
/// |x| cut to its high word and R/S in 1/x² (one pair below 1/0.35, another above); 2 − that
/// for x < 0.
#[inline(always)]
fn erfc_tail(ax: F64x8, negative: Mask8) -> F64x8 {
    let s = 1.0 / (ax * ax);
    let first = ax.lt(F64x8::splat(high_word(0x4006_db6d)));
    let ratio = if first.all() {
        horner(s, &RA) / horner(s, &SA)
    } else if !first.any() {
        horner(s, &RB) / horner(s, &SB)
    } else {
        first.select(
            horner(s, &RA) / horner(s, &SA),
            horner(s, &RB) / horner(s, &SB),
        )
    };
    let z = ax.with_low_word_cleared();
    let value = exp(-z * z - 0.5625) * exp((z - ax) * (z + ax) + ratio) / ax;
    negative.select(2.0 - value, value)
}

/// |x| ≥ 28, ±∞ and NaN: 0 or 2 (fdlibm's tiny·tiny and 2 − tiny), and 2·sign + 1/x for
/// ±∞ and NaN.
#[inline(always)]
fn erfc_beyond_28(x: F64x8, ax: F64x8, negative: Mask8) -> F64x8 {
    let tiny = f64::from_bits(0x0010_0000_0000_0000);
    let finite = negative.select(F64x8::splat(2.0 - tiny), F64x8::splat(tiny * tiny));
    let sign = negative.select(F64x8::splat(2.0), F64x8::splat(0.0));
    let special = ax.ge(F64x8::splat(f64::INFINITY)).or(x.is_nan());
    special.select(sign + 1.0 / x, finite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `exp` or `erfc` on `values` eight at a time (the length a multiple of eight), inlined
    /// into an AVX2 function as in production.
    #[target_feature(enable = "avx2")]
    unsafe fn on_lanes(erfc_not_exp: bool, values: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; values.len()];
        for (chunk, result) in values.chunks_exact(LANES).zip(out.chunks_exact_mut(LANES)) {
            let x = F64x8::load(chunk);
            let y = if erfc_not_exp { erfc(x) } else { exp(x) };
            y.store(result);
        }
        out
    }

    /// Asserts that the lanes give `scalar`'s bits on every value, in the given order (mixed
    /// ranges within a block of eight) and sorted (blocks within one range).
    fn assert_bit_identical(erfc_not_exp: bool, scalar: fn(f64) -> f64, mut values: Vec<f64>) {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        values.truncate(values.len() / LANES * LANES);
        for pass in 0..2 {
            if pass == 1 {
                values.sort_by(f64::total_cmp);
            }
            // SAFETY: AVX2 is present (checked above).
            let lanes = unsafe { on_lanes(erfc_not_exp, &values) };
            for (&v, &got) in values.iter().zip(&lanes) {
                let want = scalar(v);
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "at {v:e} ({:#x}): lanes {got:e}, scalar {want:e}",
                    v.to_bits()
                );
            }
        }
    }

    /// Each value, its neighbours one ulp away, and their negatives.
    fn with_neighbours(points: &[f64]) -> Vec<f64> {
        points
            .iter()
            .flat_map(|&p| [p, p.next_up(), p.next_down()])
            .flat_map(|p| [p, -p])
            .collect()
    }

    fn random_arguments(seed: u64, count: usize, max_magnitude: f64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|i| {
                let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                if i % 2 == 0 {
                    sign * rng.random::<f64>() * max_magnitude
                } else {
                    // Log-uniform magnitudes from 1e-20 up.
                    sign * 10f64.powf(rng.random_range(-20.0..max_magnitude.log10()))
                }
            })
            .collect()
    }

    const SPECIAL: [f64; 8] = [
        0.0,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
        1.0,
        0.5,
    ];

    #[test]
    fn exp_gives_libm_bits_at_every_range_boundary() {
        let mut points: Vec<f64> = [
            0x3ff0_a2b2,
            0x3fd6_2e42,
            0x3fd6_2e43,
            0x3e30_0000,
            0x3e30_0001,
            0x4086_232b,
        ]
        .iter()
        .map(|&h| high_word(h))
        .collect();
        points.extend([
            EXP_OVERFLOW,
            EXP_UNDERFLOW,
            f64::from_bits(0x4086_232b_dd7a_bcd2),
            std::f64::consts::LN_2 / 2.0,
            1.5 * std::f64::consts::LN_2,
            1000.0,
        ]);
        points.extend(SPECIAL);
        assert_bit_identical(false, libm::exp, with_neighbours(&points));
    }

    #[test]
    fn exp_gives_libm_bits_on_random_arguments() {
        assert_bit_identical(false, libm::exp, random_arguments(1, 400_000, 760.0));
        // The arguments erfc's tail passes: −x² − 0.5625 for x up to 28, and small ones.
        assert_bit_identical(false, libm::exp, random_arguments(2, 200_000, 1.0));
    }

    #[test]
    fn erfc_gives_libm_bits_at_every_range_boundary() {
        let mut points: Vec<f64> = [
            0x3feb_0000,
            0x3ff4_0000,
            0x403c_0000,
            0x4006_db6d,
            0x3fd0_0000,
            0x3c70_0000,
        ]
        .iter()
        .map(|&h| high_word(h))
        .collect();
        points.extend([26.5, 26.6, 27.2, 27.9, 6.0, 2.0]);
        points.extend(SPECIAL);
        assert_bit_identical(true, libm::erfc, with_neighbours(&points));
    }

    #[test]
    fn erfc_gives_libm_bits_on_random_arguments() {
        assert_bit_identical(true, libm::erfc, random_arguments(3, 400_000, 30.0));
        assert_bit_identical(true, libm::erfc, random_arguments(4, 200_000, 3.0));
    }
}
