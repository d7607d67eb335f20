//! Black–Scholes P&L of one option over a block of paths at once: the loop of full
//! revaluation turned inside out, option by option over the paths' structure-of-arrays
//! (spot, log move and vol of every path in its own array), eight paths per AVX2 instruction.
//!
//! The eight-lane formula is the scalar one operation for operation
//! ([`crate::pricing::black_scholes::price_from_parts`], `libm`'s erfc and exp, no fused
//! multiply-adds), so the P&L it adds is bit for bit the scalar revaluation's: the batch is a
//! faster road to the same numbers, not a new approximation. Without AVX2 (checked once per
//! call at run time) the scalar formula runs.

use crate::book::instrument::OptionType;
use crate::pricing::black_scholes::price_from_parts;

/// One option's path-independent terms (per unit of underlying, USD).
#[derive(Debug, Clone, Copy)]
pub struct OptionTerms {
    /// Call or put.
    pub kind: OptionType,
    /// Units held (coins of underlying, negative when short).
    pub units: f64,
    /// Today's price per unit, subtracted from the horizon value.
    pub base_price: f64,
    /// K·e^{−r·τ_h}.
    pub discounted_strike: f64,
    /// ln(S_0/K) + r·τ_h: the path's log move x is added to it.
    pub base_log_moneyness: f64,
}

/// Where the option's σ·√τ_h on each path comes from.
#[derive(Debug, Clone, Copy)]
pub enum PathVol<'a> {
    /// σ_0·√τ_h (the first number) times the path's vol ratio (the slice): an option whose
    /// vol moves exactly with its underlying's vol factor.
    Scaled(f64, &'a [f64]),
    /// σ·√τ_h per path, computed by the caller.
    Given(&'a [f64]),
}

impl PathVol<'_> {
    /// σ·√τ_h on path `p`, as the scalar revaluation computes it.
    #[inline(always)]
    fn at(&self, p: usize) -> f64 {
        match *self {
            PathVol::Scaled(base, ratio) => base * ratio[p],
            PathVol::Given(v) => v[p],
        }
    }
}

/// Adds units × (V_h − V_0) of the option to `total[p]` for every path p, V_h the
/// Black–Scholes value at spot `spot[p]`, log-moneyness `base_log_moneyness + x[p]` and
/// σ·√τ_h from `vol`. Every slice has `total`'s length.
pub fn accumulate_pnl(
    option: &OptionTerms,
    spot: &[f64],
    x: &[f64],
    vol: PathVol,
    total: &mut [f64],
) {
    let done = vectorised(option, spot, x, vol, total);
    for p in done..total.len() {
        let value = price_from_parts(
            option.kind,
            spot[p],
            option.discounted_strike,
            option.base_log_moneyness + x[p],
            vol.at(p),
        );
        total[p] += option.units * (value - option.base_price);
    }
}

/// Runs the eight-lane kernel over the leading multiple of eight paths when the CPU has AVX2;
/// the number of paths done.
fn vectorised(
    option: &OptionTerms,
    spot: &[f64],
    x: &[f64],
    vol: PathVol,
    total: &mut [f64],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { avx2::accumulate_pnl(option, spot, x, vol, total) };
    }
    let _ = (option, spot, x, vol, total);
    0
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{OptionTerms, PathVol};
    use crate::book::instrument::OptionType;
    use crate::math::lanes::{F64x8, LANES};
    use crate::math::libm_lanes::erfc;

    /// N(v) = erfc(−v/√2)/2, as [`crate::pricing::black_scholes::norm_cdf`].
    #[inline(always)]
    fn norm_cdf(v: F64x8) -> F64x8 {
        0.5 * erfc(-v * std::f64::consts::FRAC_1_SQRT_2)
    }

    /// The vol lanes of paths `p..p + LANES`.
    #[inline(always)]
    fn vol_lanes(vol: &PathVol, p: usize) -> F64x8 {
        match *vol {
            PathVol::Scaled(base, ratio) => base * F64x8::load(&ratio[p..p + LANES]),
            PathVol::Given(v) => F64x8::load(&v[p..p + LANES]),
        }
    }

    /// [`super::accumulate_pnl`] on the leading multiple of eight paths; returns how many.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn accumulate_pnl(
        option: &OptionTerms,
        spot: &[f64],
        x: &[f64],
        vol: PathVol,
        total: &mut [f64],
    ) -> usize {
        let whole = total.len() / LANES * LANES;
        for p in (0..whole).step_by(LANES) {
            let s = F64x8::load(&spot[p..p + LANES]);
            let log_moneyness = option.base_log_moneyness + F64x8::load(&x[p..p + LANES]);
            let v = vol_lanes(&vol, p);
            let d1 = log_moneyness / v + 0.5 * v;
            let d2 = d1 - v;
            let k = option.discounted_strike;
            let value = match option.kind {
                OptionType::Call => s * norm_cdf(d1) - k * norm_cdf(d2),
                OptionType::Put => k * norm_cdf(-d2) - s * norm_cdf(-d1),
            };
            let sum =
                F64x8::load(&total[p..p + LANES]) + option.units * (value - option.base_price);
            sum.store(&mut total[p..p + LANES]);
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The scalar revaluation's sum, path by path.
    fn scalar(option: &OptionTerms, spot: &[f64], x: &[f64], vol: &[f64], total: &mut [f64]) {
        for p in 0..total.len() {
            let value = price_from_parts(
                option.kind,
                spot[p],
                option.discounted_strike,
                option.base_log_moneyness + x[p],
                vol[p],
            );
            total[p] += option.units * (value - option.base_price);
        }
    }

    /// Calls and puts from deep in the money to far out, vols from 0.1 % to 2,000 % over
    /// an hour to five years, on path counts that are not multiples of the lane count: the
    /// batch adds the scalar P&L's bits.
    #[test]
    fn batch_pnl_has_the_scalar_bits_on_every_kind_of_option() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..400 {
            let paths = 1 + rng.random_range(0..100);
            let kind = if case % 2 == 0 {
                OptionType::Call
            } else {
                OptionType::Put
            };
            let strike = 100.0 * 10f64.powf(rng.random_range(-1.5..1.5));
            let sigma_sqrt_tau = 10f64.powf(rng.random_range(-4.0..1.0));
            let option = OptionTerms {
                kind,
                units: rng.random_range(-5.0..5.0),
                base_price: rng.random_range(0.0..10.0),
                discounted_strike: strike * 0.99,
                base_log_moneyness: (100.0 / strike).ln() + 0.001,
            };
            let x: Vec<f64> = (0..paths).map(|_| rng.random_range(-0.5..0.5)).collect();
            let spot: Vec<f64> = x.iter().map(|x| 100.0 * x.exp()).collect();
            let ratio: Vec<f64> = (0..paths).map(|_| rng.random_range(0.5..2.0)).collect();
            let vol: Vec<f64> = ratio.iter().map(|r| sigma_sqrt_tau * r).collect();
            let start: Vec<f64> = (0..paths).map(|_| rng.random_range(-1.0..1.0)).collect();

            let mut want = start.clone();
            scalar(&option, &spot, &x, &vol, &mut want);
            let mut scaled = start.clone();
            accumulate_pnl(
                &option,
                &spot,
                &x,
                PathVol::Scaled(sigma_sqrt_tau, &ratio),
                &mut scaled,
            );
            let mut given = start;
            accumulate_pnl(&option, &spot, &x, PathVol::Given(&vol), &mut given);
            for p in 0..paths {
                assert_eq!(
                    scaled[p].to_bits(),
                    want[p].to_bits(),
                    "case {case}, path {p}"
                );
                assert_eq!(
                    given[p].to_bits(),
                    want[p].to_bits(),
                    "case {case}, path {p}"
                );
            }
        }
    }
}
