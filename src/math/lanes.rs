//! Eight f64 lanes in two AVX registers, with the scalar operators, so that a formula written
//! for `f64` reads the same on eight paths at once. Two registers rather than one give the
//! processor two independent chains of the same instructions to overlap (a Black–Scholes
//! value is one long chain of dependent divisions and polynomials).
//!
//! Only IEEE operations that round once (add, sub, mul, div) and exact ones (abs, neg,
//! selects, bit masks, powers of two) are offered, and no fused multiply-add: a formula
//! evaluated here gives, lane by lane, the bits the same formula gives on scalars. That is
//! what lets [`crate::pricing::batch`] reproduce the scalar revaluation to the last bit.
//!
//! Every function here is `#[inline(always)]` and must be called from code compiled with
//! AVX2 enabled (a `#[target_feature(enable = "avx2")]` function reached after
//! `is_x86_feature_detected!("avx2")`); the intrinsics are then inlined into it. Code built
//! on these types must not go through closures or iterator adapters, which are compiled out
//! of line without AVX (each operation would become a call). Crate-private for that reason.

use std::arch::x86_64::*;
use std::ops::{Add, Div, Mul, Neg, Not, Sub};

/// Number of lanes.
pub const LANES: usize = 8;

/// Applies a two-operand intrinsic to both registers.
macro_rules! both {
    ($intrinsic:expr, $a:expr, $b:expr) => {
        [$intrinsic($a[0], $b[0]), $intrinsic($a[1], $b[1])]
    };
    ($intrinsic:expr, $a:expr) => {
        [$intrinsic($a[0]), $intrinsic($a[1])]
    };
}

/// Eight f64 lanes.
#[derive(Clone, Copy, Debug)]
pub struct F64x8([__m256d; 2]);

/// Eight lane masks, all ones (true) or all zeros (false) per lane, from a comparison.
#[derive(Clone, Copy, Debug)]
pub struct Mask8([__m256d; 2]);

/// Eight i32 lanes (exponents of two), four per half.
#[derive(Clone, Copy, Debug)]
pub struct I32x8([__m128i; 2]);

impl F64x8 {
    /// The same value in every lane.
    #[inline(always)]
    pub fn splat(v: f64) -> F64x8 {
        unsafe { F64x8([_mm256_set1_pd(v); 2]) }
    }

    /// Lanes from `values[0..8]`.
    #[inline(always)]
    pub fn load(values: &[f64]) -> F64x8 {
        assert!(values.len() >= LANES);
        // SAFETY: eight f64 are readable at the pointer (checked above); unaligned loads.
        unsafe {
            let p = values.as_ptr();
            F64x8([_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4))])
        }
    }

    /// Writes the lanes to `out[0..8]`.
    #[inline(always)]
    pub fn store(self, out: &mut [f64]) {
        assert!(out.len() >= LANES);
        // SAFETY: eight f64 are writable at the pointer (checked above); unaligned stores.
        unsafe {
            let p = out.as_mut_ptr();
            _mm256_storeu_pd(p, self.0[0]);
            _mm256_storeu_pd(p.add(4), self.0[1]);
        }
    }

    /// |x|: the sign bit cleared.
    #[inline(always)]
    pub fn abs(self) -> F64x8 {
        unsafe { F64x8(both!(_mm256_andnot_pd, [_mm256_set1_pd(-0.0); 2], self.0)) }
    }

    /// x with the low 32 bits of its representation cleared (fdlibm's SET_LOW_WORD(x, 0)).
    #[inline(always)]
    pub fn with_low_word_cleared(self) -> F64x8 {
        let high_only = f64::from_bits(0xffff_ffff_0000_0000);
        unsafe { F64x8(both!(_mm256_and_pd, [_mm256_set1_pd(high_only); 2], self.0)) }
    }

    /// Lane-wise x < y (false when either is NaN).
    #[inline(always)]
    pub fn lt(self, y: F64x8) -> Mask8 {
        unsafe { Mask8(both!(_mm256_cmp_pd::<_CMP_LT_OQ>, self.0, y.0)) }
    }

    /// Lane-wise x ≥ y (false when either is NaN).
    #[inline(always)]
    pub fn ge(self, y: F64x8) -> Mask8 {
        unsafe { Mask8(both!(_mm256_cmp_pd::<_CMP_GE_OQ>, self.0, y.0)) }
    }

    /// Lane-wise x > y (false when either is NaN).
    #[inline(always)]
    pub fn gt(self, y: F64x8) -> Mask8 {
        unsafe { Mask8(both!(_mm256_cmp_pd::<_CMP_GT_OQ>, self.0, y.0)) }
    }

    /// Lanes that are NaN.
    #[inline(always)]
    pub fn is_nan(self) -> Mask8 {
        unsafe { Mask8(both!(_mm256_cmp_pd::<_CMP_UNORD_Q>, self.0, self.0)) }
    }

    /// Lanes whose sign bit is set (including −0 and negative NaNs).
    #[inline(always)]
    pub fn sign_bit(self) -> Mask8 {
        Mask8([sign_spread(self.0[0]), sign_spread(self.0[1])])
    }

    /// The lanes truncated towards zero to i32 (Rust's `as i32` for values in range).
    #[inline(always)]
    pub fn truncate_to_i32(self) -> I32x8 {
        unsafe { I32x8(both!(_mm256_cvttpd_epi32, self.0)) }
    }

    /// x · 2^n lane by lane, rounded once, for n in [−1022 − 969, 1023 + 1023]: the value of
    /// libm's `scalbn` (prescale by 2^−969 or 2^1023 when 2^n itself is not a normal
    /// number, then one multiplication by a power of two).
    #[inline(always)]
    pub fn scale_by_power_of_two(self, n: I32x8) -> F64x8 {
        F64x8([scale_half(self.0[0], n.0[0]), scale_half(self.0[1], n.0[1])])
    }
}

/// All ones in the lanes whose sign bit is set.
#[inline(always)]
fn sign_spread(v: __m256d) -> __m256d {
    unsafe {
        let bits = _mm256_castpd_si256(v);
        _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_setzero_si256(), bits))
    }
}

/// [`F64x8::scale_by_power_of_two`] on one register.
#[inline(always)]
fn scale_half(x: __m256d, n: __m128i) -> __m256d {
    unsafe {
        let below = _mm_cmpgt_epi32(_mm_set1_epi32(-1022), n);
        let above = _mm_cmpgt_epi32(n, _mm_set1_epi32(1023));
        let shift = _mm_add_epi32(
            _mm_and_si128(below, _mm_set1_epi32(969)),
            _mm_and_si128(above, _mm_set1_epi32(-1023)),
        );
        let below = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(below));
        let above = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(above));
        let prescale = _mm256_blendv_pd(
            _mm256_blendv_pd(
                _mm256_set1_pd(1.0),
                _mm256_set1_pd(f64::from_bits(0x7fe0_0000_0000_0000)), // 2^1023
                above,
            ),
            _mm256_set1_pd(f64::from_bits(0x0360_0000_0000_0000)), // 2^-969
            below,
        );
        let biased = _mm_add_epi32(_mm_add_epi32(n, shift), _mm_set1_epi32(1023));
        let power = _mm256_slli_epi64::<52>(_mm256_cvtepi32_epi64(biased));
        _mm256_mul_pd(_mm256_mul_pd(x, prescale), _mm256_castsi256_pd(power))
    }
}

/// Four 64-bit lane masks narrowed to four 32-bit ones.
#[inline(always)]
fn narrow_mask(m: __m256d) -> __m128i {
    unsafe {
        _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
            _mm256_castpd_si256(m),
            _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6),
        ))
    }
}

impl I32x8 {
    /// The same value in every lane.
    #[inline(always)]
    pub fn splat(v: i32) -> I32x8 {
        unsafe { I32x8([_mm_set1_epi32(v); 2]) }
    }

    /// The lanes as f64 (exact).
    #[inline(always)]
    pub fn to_f64(self) -> F64x8 {
        unsafe { F64x8(both!(_mm256_cvtepi32_pd, self.0)) }
    }

    /// Lane-wise `if mask { yes } else { no }`.
    #[inline(always)]
    pub fn select_where(mask: Mask8, yes: I32x8, no: I32x8) -> I32x8 {
        unsafe {
            I32x8([
                _mm_blendv_epi8(no.0[0], yes.0[0], narrow_mask(mask.0[0])),
                _mm_blendv_epi8(no.0[1], yes.0[1], narrow_mask(mask.0[1])),
            ])
        }
    }
}

impl Mask8 {
    /// Lane-wise `if self { yes } else { no }`.
    #[inline(always)]
    pub fn select(self, yes: F64x8, no: F64x8) -> F64x8 {
        unsafe {
            F64x8([
                _mm256_blendv_pd(no.0[0], yes.0[0], self.0[0]),
                _mm256_blendv_pd(no.0[1], yes.0[1], self.0[1]),
            ])
        }
    }

    /// One bit per lane, lane 0 the lowest.
    #[inline(always)]
    pub fn bits(self) -> i32 {
        unsafe { _mm256_movemask_pd(self.0[0]) | (_mm256_movemask_pd(self.0[1]) << 4) }
    }

    /// Whether any lane is true.
    #[inline(always)]
    pub fn any(self) -> bool {
        self.bits() != 0
    }

    /// Whether every lane is true.
    #[inline(always)]
    pub fn all(self) -> bool {
        self.bits() == 0xff
    }

    /// Lane-wise or.
    #[inline(always)]
    pub fn or(self, other: Mask8) -> Mask8 {
        unsafe { Mask8(both!(_mm256_or_pd, self.0, other.0)) }
    }

    /// Lane-wise `self and not other`.
    #[inline(always)]
    pub fn and_not(self, other: Mask8) -> Mask8 {
        unsafe { Mask8(both!(_mm256_andnot_pd, other.0, self.0)) }
    }
}

impl Not for Mask8 {
    type Output = Mask8;
    /// Lane-wise not.
    #[inline(always)]
    fn not(self) -> Mask8 {
        unsafe {
            let ones = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
            Mask8(both!(_mm256_xor_pd, [ones; 2], self.0))
        }
    }
}

macro_rules! lane_operator {
    ($trait:ident, $method:ident, $intrinsic:ident) => {
        impl $trait for F64x8 {
            type Output = F64x8;
            #[inline(always)]
            fn $method(self, rhs: F64x8) -> F64x8 {
                unsafe { F64x8(both!($intrinsic, self.0, rhs.0)) }
            }
        }
        impl $trait<f64> for F64x8 {
            type Output = F64x8;
            #[inline(always)]
            fn $method(self, rhs: f64) -> F64x8 {
                self.$method(F64x8::splat(rhs))
            }
        }
        impl $trait<F64x8> for f64 {
            type Output = F64x8;
            #[inline(always)]
            fn $method(self, rhs: F64x8) -> F64x8 {
                F64x8::splat(self).$method(rhs)
            }
        }
    };
}

lane_operator!(Add, add, _mm256_add_pd);
lane_operator!(Sub, sub, _mm256_sub_pd);
lane_operator!(Mul, mul, _mm256_mul_pd);
lane_operator!(Div, div, _mm256_div_pd);

impl Neg for F64x8 {
    type Output = F64x8;
    /// −x: the sign bit flipped (exact, as scalar negation).
    #[inline(always)]
    fn neg(self) -> F64x8 {
        unsafe { F64x8(both!(_mm256_xor_pd, [_mm256_set1_pd(-0.0); 2], self.0)) }
    }
}
