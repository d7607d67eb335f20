//! Elementary functions whose bits do not depend on the platform: the `libm` crate's exp
//! and erfc (fdlibm's algorithms, pure Rust) rather than the system library's, whose last
//! bit differs between C libraries and their versions. Slices are done eight values at a
//! time with AVX2 where the CPU has it, giving the scalar function's bits lane by lane.

#[cfg(target_arch = "x86_64")]
pub(crate) mod lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) mod libm_lanes;

/// e^x, the `libm` crate's (the same bits on every platform).
#[inline]
pub fn exp(x: f64) -> f64 {
    libm::exp(x)
}

/// `out[i] = scale · e^{x[i]}` for every i, e^x as [`exp`] gives it (eight at a time with
/// AVX2). `out` has `x`'s length.
pub fn scaled_exp(scale: f64, x: &[f64], out: &mut [f64]) {
    let done = scaled_exp_vectorised(scale, x, out);
    for (o, &v) in out[done..].iter_mut().zip(&x[done..]) {
        *o = scale * exp(v);
    }
}

/// The leading multiple of eight of [`scaled_exp`] with AVX2; how many were done.
fn scaled_exp_vectorised(scale: f64, x: &[f64], out: &mut [f64]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { avx2::scaled_exp(scale, x, out) };
    }
    let _ = (scale, x, out);
    0
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::lanes::{F64x8, LANES};
    use super::libm_lanes::exp;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scaled_exp(scale: f64, x: &[f64], out: &mut [f64]) -> usize {
        let whole = x.len().min(out.len()) / LANES * LANES;
        for i in (0..whole).step_by(LANES) {
            (scale * exp(F64x8::load(&x[i..i + LANES]))).store(&mut out[i..i + LANES]);
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice form gives the scalar bits on lengths that are not multiples of eight.
    #[test]
    fn scaled_exp_has_the_scalar_bits() {
        for len in [0, 1, 7, 8, 9, 31, 1000] {
            let x: Vec<f64> = (0..len).map(|i| (i as f64 - 500.0) * 0.731).collect();
            let mut out = vec![0.0; len];
            scaled_exp(92_000.0, &x, &mut out);
            for (o, v) in out.iter().zip(&x) {
                assert_eq!(o.to_bits(), (92_000.0 * libm::exp(*v)).to_bits(), "{v}");
            }
        }
    }
}
