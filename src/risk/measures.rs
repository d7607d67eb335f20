//! Value-at-Risk and Expected Shortfall of simulated P&L, each with its Monte Carlo
//! standard error.
//!
//! Conventions (SPEC): losses are `−pnl`; VaR and ES are positive numbers meaning a loss.
//! With n equally likely paths and tail mass m = n(1 − a):
//! - VaR_a is the smallest loss x with P(L ≤ x) ≥ a: the ⌊m⌋+1-th largest loss.
//! - ES_a is the mean loss over the worst (1 − a) of the probability mass — the tail mean of
//!   the empirical distribution, counting the boundary path with the fractional weight
//!   m − ⌊m⌋ (Acerbi–Tasche), so ES is exact for any n, not only when m is whole.
//!
//! Standard errors:
//! - VaR: distribution-free order-statistic interval. The rank of the true quantile among
//!   the sorted losses is binomial with standard deviation d = √(n·a(1−a)), so the losses d
//!   ranks either side of the VaR bracket ±1 s.e.; half their distance is the s.e. It is the
//!   delta-method √(a(1−a)/n)/f(q) with the density f estimated by a finite difference
//!   over exactly that rank window, and it needs no assumption on the loss distribution.
//! - ES: the asymptotic variance of the tail-mean estimator, Var((L − VaR)⁺)/(n(1−a)²)
//!   (the VaR estimate's own error cancels to first order because ∂ES/∂q = 0 at the
//!   quantile). It is estimated from the same paths.
//!
//! Both are checked against the empirical spread over independent seeds in the tests.

use serde::Serialize;

/// VaR and ES at one confidence level, with standard errors, all in reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct RiskMeasure {
    /// Confidence level a, e.g. 0.99.
    pub confidence: f64,
    /// Value-at-Risk: a positive number is a loss.
    pub var: f64,
    /// Expected Shortfall (tail mean): a positive number is a loss.
    pub es: f64,
    /// Monte Carlo standard error of `var`.
    pub var_stderr: f64,
    /// Monte Carlo standard error of `es`.
    pub es_stderr: f64,
}

/// The worst losses of a sample, sorted from the largest down, plus the sample size.
struct Tail {
    /// Largest losses, descending; long enough for every requested level.
    losses: Vec<f64>,
    n: usize,
}

impl Tail {
    /// Keeps the `keep` largest losses of `pnl` (loss = −pnl), sorted descending.
    fn of_pnl(pnl: &[f64], keep: usize) -> Tail {
        Tail {
            losses: largest_losses(pnl, keep),
            n: pnl.len(),
        }
    }

    /// The loss of descending rank `rank` (1 = largest), interpolated between integer ranks.
    fn at_rank(&self, rank: f64) -> f64 {
        let last = self.losses.len() as f64;
        let rank = rank.clamp(1.0, last);
        let lower = rank.floor();
        let frac = rank - lower;
        let i = lower as usize - 1;
        if frac == 0.0 || i + 1 >= self.losses.len() {
            self.losses[i]
        } else {
            self.losses[i] * (1.0 - frac) + self.losses[i + 1] * frac
        }
    }

    fn measure(&self, confidence: f64) -> RiskMeasure {
        let n = self.n as f64;
        let mass = tail_mass(self.n, confidence);
        let full = mass.whole;
        let var_rank = full as f64 + 1.0;
        let var = self.at_rank(var_rank);

        let tail_sum: f64 = self.losses[..full.min(self.losses.len())].iter().sum();
        let es = if mass.total() > 0.0 {
            (tail_sum + mass.fraction * var) / mass.total()
        } else {
            var
        };

        let half_window = (n * confidence * (1.0 - confidence)).sqrt();
        let var_stderr = self.quantile_stderr(var_rank, half_window);
        let es_stderr = self.tail_mean_stderr(var, full, confidence);
        RiskMeasure {
            confidence,
            var,
            es,
            var_stderr,
            es_stderr,
        }
    }

    /// Half the distance between the losses `half_window` ranks either side of `rank`,
    /// rescaled when the window is clipped by the largest loss.
    fn quantile_stderr(&self, rank: f64, half_window: f64) -> f64 {
        let last = self.losses.len() as f64;
        let above = (rank - half_window).max(1.0);
        let below = (rank + half_window).min(last);
        if below <= above {
            return 0.0;
        }
        (self.at_rank(above) - self.at_rank(below)) / (below - above) * half_window
    }

    /// √(Var((L − q)⁺)/n) / (1 − a), from the `count` losses above the quantile q.
    fn tail_mean_stderr(&self, q: f64, count: usize, confidence: f64) -> f64 {
        let excesses = || self.losses[..count].iter().map(move |l| (l - q).max(0.0));
        let (s1, s2) = sums_and_squares(excesses());
        if s2.is_finite() {
            return mean_stderr(s1, s2, self.n as f64) / (1.0 - confidence);
        }
        // squares beyond floating point (losses above ~1e154, as in a model without
        // exponential moments): the same in units of the largest excess, rather than
        // ∞ − ∞ = NaN passing for a zero standard error
        let scale = excesses().fold(0.0, f64::max);
        if !scale.is_finite() {
            return f64::INFINITY;
        }
        let (t1, t2) = sums_and_squares(excesses().map(|x| x / scale));
        scale * mean_stderr(t1, t2, self.n as f64) / (1.0 - confidence)
    }
}

/// Σx and Σx² of `values`.
fn sums_and_squares(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((0.0, 0.0), |(s1, s2), x| (s1 + x, s2 + x * x))
}

/// √(Var(X)/n) of a mean over `n` values from Σx = `s1` and Σx² = `s2` (X is 0 on the
/// paths not summed).
fn mean_stderr(s1: f64, s2: f64, n: f64) -> f64 {
    let mean = s1 / n;
    (nonnegative_variance(s2 / n - mean * mean) / n).sqrt()
}

/// A variance computed as E[X²] − E[X]², floored at 0 against rounding; NaN (∞ − ∞, when
/// the squares overflow) is ∞: not estimable, never a zero standard error.
pub fn nonnegative_variance(variance: f64) -> f64 {
    if variance.is_nan() {
        f64::INFINITY
    } else {
        variance.max(0.0)
    }
}

/// How many of the largest losses the estimators at `confidence` read.
fn tail_length(n: usize, confidence: f64) -> usize {
    let half_window = (n as f64 * confidence * (1.0 - confidence)).sqrt();
    tail_count(n, confidence) + half_window.ceil() as usize + 3
}

/// The tail mass m = n(1 − a) of `n` equally likely paths at confidence level a, in paths,
/// split into its whole part ⌊m⌋ and fractional part m − ⌊m⌋, both exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailMass {
    /// ⌊m⌋: the number of paths wholly in the tail; VaR is the (⌊m⌋ + 1)-th largest loss.
    pub whole: usize,
    /// m − ⌊m⌋ in [0, 1] (1 only by rounding, for levels below 10⁻¹⁶): the weight of the boundary (VaR) path in the tail mean.
    pub fraction: f64,
}

impl TailMass {
    /// m itself, in paths (exact up to the rounding of `fraction`).
    pub fn total(&self) -> f64 {
        self.whole as f64 + self.fraction
    }
}

/// The exact tail mass n(1 − a) of `n` paths at confidence level `confidence` = a.
///
/// The level is taken as the decimal it was written as: the shortest decimal that rounds
/// to the f64 (what `{}` prints, e.g. `0.9999`), so a = p/10^d with integers p and d, and
/// n(1 − a) = n − n·p/10^d is computed in integer arithmetic (u128). In floating point,
/// 10⁶·(1 − 0.9999) is 99.99999999998899 and would put VaR one rank off. Exact for every
/// f64 level and every `n`; a level ≤ 0 (or below any decimal) puts all `n` paths in the
/// tail, a level ≥ 1 (or NaN) none.
pub fn tail_mass(n: usize, confidence: f64) -> TailMass {
    if confidence.is_nan() || confidence >= 1.0 {
        return TailMass {
            whole: 0,
            fraction: 0.0,
        };
    }
    if confidence <= 0.0 {
        return TailMass {
            whole: n,
            fraction: 0.0,
        };
    }
    // n·a = whole_part + fraction_part exactly; n(1 − a) = n − n·a.
    match scaled_decimal(n, confidence) {
        (floor, None) => TailMass {
            whole: n - floor,
            fraction: 0.0,
        },
        (floor, Some(remainder)) => TailMass {
            whole: n - floor - 1,
            fraction: 1.0 - remainder,
        },
    }
}

/// ⌊n(1 − a)⌋ exactly: the number of paths strictly beyond VaR at level a (see
/// [`tail_mass`]). E.g. 100 for n = 10⁶, a = 0.9999; 2 for n = 10, a = 0.8.
pub fn tail_count(n: usize, confidence: f64) -> usize {
    tail_mass(n, confidence).whole
}

/// ⌊n·rate⌋ exactly, the rate (in [0, 1]) read as the decimal it was written as (see
/// [`tail_mass`]): e.g. the exceptions a target exception rate allows in n days.
pub fn count_at_rate(n: usize, rate: f64) -> usize {
    if rate.is_nan() || rate <= 0.0 {
        0
    } else if rate >= 1.0 {
        n
    } else {
        scaled_decimal(n, rate).0
    }
}

/// n·x for x in (0, 1), x read as its shortest round-trip decimal p/10^d: the whole part
/// ⌊n·x⌋ exactly and the fractional part n·x − ⌊n·x⌋, `None` when n·x is whole.
fn scaled_decimal(n: usize, x: f64) -> (usize, Option<f64>) {
    // Display never uses an exponent; x in (0, 1) prints as "0.ddd…d" with ≤ 17
    // significant digits, so p < 10¹⁷ and n·p < 2⁶⁴·10¹⁷ < 2¹²⁸.
    let text = format!("{x}");
    let digits = text.strip_prefix("0.").unwrap_or("");
    let Ok(p) = digits.parse::<u128>() else {
        // unreachable for x in (0, 1); the float product keeps the function total
        let m = n as f64 * x;
        let whole = m.floor();
        return (whole as usize, (m > whole).then_some(m - whole));
    };
    let product = n as u128 * p;
    let d = digits.len();
    if product == 0 {
        (0, None)
    } else if d <= 38 {
        let scale = 10u128.pow(d as u32);
        let whole = (product / scale) as usize;
        let rest = product % scale;
        (whole, (rest > 0).then(|| rest as f64 / scale as f64))
    } else {
        // 10^d > 10³⁸ > n·p: the product is a positive number below one
        (0, Some(product as f64 * 10f64.powi(-(d as i32))))
    }
}

/// The `keep` largest of `losses`, sorted descending: O(n) selection, then a sort of only
/// the tail. The result depends only on the multiset of values, so tails merged from
/// disjoint shards give the same numbers as one pass.
pub fn largest(mut losses: Vec<f64>, keep: usize) -> Vec<f64> {
    let keep = keep.clamp(1, losses.len().max(1));
    let descending = |a: &f64, b: &f64| b.total_cmp(a);
    if keep < losses.len() {
        losses.select_nth_unstable_by(keep - 1, descending);
        losses.truncate(keep);
    }
    losses.sort_unstable_by(descending);
    losses
}

/// [`largest`] of the losses −p of `pnl`: the same numbers, without a negated copy of every
/// path. A strided sample of the losses gives a level that well over `keep` paths reach, and
/// only the losses at or beyond it are selected among; when fewer than `keep` reach it (a
/// sample unlike the whole, e.g. P&L repeating with the sample's stride), all of them are.
pub fn largest_losses(pnl: &[f64], keep: usize) -> Vec<f64> {
    let keep = keep.clamp(1, pnl.len().max(1));
    if let Some(level) = sampled_loss_level(pnl, keep) {
        let beyond: Vec<f64> = pnl
            .iter()
            .map(|p| -p)
            .filter(|loss| loss.total_cmp(&level).is_ge())
            .collect();
        if beyond.len() >= keep {
            return largest(beyond, keep);
        }
    }
    largest(pnl.iter().map(|p| -p).collect(), keep)
}

/// Every how many paths the loss level of [`largest_losses`] is sampled.
const LEVEL_SAMPLE_STRIDE: usize = 16;

/// A loss level about 1.25·`keep` + 512 of the losses of `pnl` reach (the sample's loss of
/// that rank over the stride); `None` when `pnl` is too short for a sample to save work.
fn sampled_loss_level(pnl: &[f64], keep: usize) -> Option<f64> {
    if pnl.len() < 4 * keep || pnl.len() < 64 * LEVEL_SAMPLE_STRIDE {
        return None;
    }
    let mut sample: Vec<f64> = pnl
        .iter()
        .step_by(LEVEL_SAMPLE_STRIDE)
        .map(|p| -p)
        .collect();
    let rank = (keep + keep / 4) / LEVEL_SAMPLE_STRIDE + 32;
    if rank >= sample.len() {
        return None;
    }
    let (_, level, _) = sample.select_nth_unstable_by(rank - 1, |a, b| b.total_cmp(a));
    Some(*level)
}

/// How many of the largest losses of `n` paths the estimators at `confidences` read.
pub fn tail_keep(n: usize, confidences: &[f64]) -> usize {
    confidences
        .iter()
        .map(|&a| tail_length(n, a))
        .max()
        .unwrap_or(1)
}

/// VaR and ES with standard errors at each confidence level, from equally weighted
/// per-path P&L (positive = gain). Levels must lie in (0, 1); `pnl` must be non-empty.
pub fn var_es(pnl: &[f64], confidences: &[f64]) -> Vec<RiskMeasure> {
    let tail = Tail::of_pnl(pnl, tail_keep(pnl.len(), confidences));
    confidences.iter().map(|&a| tail.measure(a)).collect()
}

/// [`var_es`] from the largest losses of `n` paths (at least [`tail_keep`] of them, any
/// order): what a merge of shards computes, equal to the single pass to the last bit.
pub fn var_es_from_tail(losses: Vec<f64>, n: usize, confidences: &[f64]) -> Vec<RiskMeasure> {
    let tail = Tail {
        losses: largest(losses, tail_keep(n, confidences)),
        n,
    };
    confidences.iter().map(|&a| tail.measure(a)).collect()
}

/// VaR and ES with standard errors from importance-sampled paths: path i has P&L `pnl[i]`
/// and likelihood-ratio weight `weights[i]` (mean 1), so the loss distribution puts mass
/// wᵢ/n on path i.
///
/// - VaR_a: the smallest loss x whose weighted mass strictly above, Σ_{L > x} w/n, is at
///   most 1 − a (the tail mass n(1 − a) exact, see [`tail_mass`]).
/// - ES_a: the weighted tail mean over that mass, the boundary path counted fractionally.
/// - ES error: √(Var(w·(L − VaR)⁺)/n)/(1 − a), the weighted influence function.
/// - VaR error: √(Var(w·1{L ≥ VaR})/n)/f(VaR), with the density f the weighted probability
///   mass √(a(1 − a)/n) either side of the tail mass over the loss distance it spans.
///
/// With all weights 1, VaR and ES are those of [`var_es`] (their standard errors are
/// estimated differently: from the weighted tail indicator rather than interpolated ranks).
pub fn var_es_weighted(pnl: &[f64], weights: &[f64], confidences: &[f64]) -> Vec<RiskMeasure> {
    let n = pnl.len() as f64;
    let mut paths: Vec<(f64, f64)> = pnl
        .iter()
        .map(|p| -p)
        .zip(weights.iter().copied())
        .collect();
    paths.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    // cumulative[i]: weighted tail mass of the i + 1 largest losses, in paths (Σ w)
    let mut cumulative = Vec::with_capacity(paths.len());
    let mut total = 0.0;
    for &(_, w) in &paths {
        total += w;
        cumulative.push(total);
    }
    // the index of the smallest loss with at most `mass` paths' weight strictly above it
    let loss_at_mass = |mass: f64| {
        let i = cumulative
            .partition_point(|&c| c <= mass)
            .min(paths.len() - 1);
        (i, paths[i].0)
    };
    confidences
        .iter()
        .map(|&a| {
            let mass = tail_mass(pnl.len(), a).total();
            let (k, var) = loss_at_mass(mass);
            let before = if k == 0 { 0.0 } else { cumulative[k - 1] };
            let above: f64 = paths[..k].iter().map(|(l, w)| w * l).sum::<f64>();
            let es = (above + (mass - before) * var) / mass;
            let (mut s1, mut s2, mut i1, mut i2) = (0.0, 0.0, 0.0, 0.0);
            for &(l, w) in &paths[..=k] {
                let y = w * (l - var).max(0.0);
                s1 += y;
                s2 += y * y;
                i1 += w;
                i2 += w * w;
            }
            let variance = |a: f64, b: f64| nonnegative_variance(b / n - (a / n) * (a / n)) / n;
            let band = (a * (1.0 - a) / n).sqrt();
            let (_, upper) = loss_at_mass((mass - n * band).max(0.0));
            let (_, lower) = loss_at_mass(mass + n * band);
            let density = if upper > lower {
                2.0 * band / (upper - lower)
            } else {
                f64::INFINITY
            };
            RiskMeasure {
                confidence: a,
                var,
                es,
                var_stderr: variance(i1, i2).sqrt() / density,
                es_stderr: variance(s1, s2).sqrt() / (1.0 - a),
            }
        })
        .collect()
}

/// The change of VaR and ES between two P&L vectors simulated on the same paths (common
/// random numbers), with standard errors of the change itself.
///
/// `before` and `after` are [`var_es`] of `pnl_before` and `pnl_after` at the same level.
/// Delta method on the paired influence functions:
/// - VaR: IF = (1{L ≤ q} − a)/f(q); the change's variance is
///   Var(1{L₂ ≤ q₂}/f₂ − 1{L₁ ≤ q₁}/f₁)/n, counted on the paths, with each density f the
///   one already implied by that VaR's standard error (identical books give exactly 0).
/// - ES: IF = ((L − q)⁺ − E)/(1 − a); the change's variance is
///   Var((L₂ − q₂)⁺ − (L₁ − q₁)⁺)/(n(1 − a)²), from the paths.
///
/// When the two books share most of their risk, ρ is near 1 and the error of the change is
/// far below either figure's own.
pub fn change(
    pnl_before: &[f64],
    pnl_after: &[f64],
    before: &RiskMeasure,
    after: &RiskMeasure,
) -> RiskMeasure {
    let a = before.confidence;
    let n = pnl_before.len() as f64;
    // 1/f_j = se_j·√n/√(a(1 − a)): the inverse density implied by each VaR error.
    let inverse_density = |m: &RiskMeasure| m.var_stderr * n.sqrt() / (a * (1.0 - a)).sqrt();
    let (h1, h2) = (inverse_density(before), inverse_density(after));
    let (mut v1, mut v2, mut e1, mut e2) = (0.0, 0.0, 0.0, 0.0);
    for (p1, p2) in pnl_before.iter().zip(pnl_after) {
        let (l1, l2) = (-p1, -p2);
        let below = |l: f64, q: f64| f64::from(u8::from(l <= q));
        let v = h2 * below(l2, after.var) - h1 * below(l1, before.var);
        v1 += v;
        v2 += v * v;
        let e = (l2 - after.var).max(0.0) - (l1 - before.var).max(0.0);
        e1 += e;
        e2 += e * e;
    }
    let variance_of_mean =
        |s1: f64, s2: f64| nonnegative_variance(s2 / n - (s1 / n) * (s1 / n)) / n;
    RiskMeasure {
        confidence: a,
        var: after.var - before.var,
        es: after.es - before.es,
        var_stderr: variance_of_mean(v1, v2).sqrt(),
        es_stderr: variance_of_mean(e1, e2).sqrt() / (1.0 - a),
    }
}

/// Count, mean and sum of squared deviations of a block of P&L, combinable in order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Moments {
    /// Number of P&L values in the block (paths).
    pub count: u64,
    /// Mean P&L of the block, in reporting currency (USD), positive = gain.
    pub mean: f64,
    /// Sum of squared deviations from `mean`, in reporting currency squared (USD²).
    pub m2: f64,
}

impl Moments {
    /// Two-pass moments of one block.
    pub fn of(values: &[f64]) -> Moments {
        let count = values.len() as u64;
        let mean = values.iter().sum::<f64>() / count.max(1) as f64;
        let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        Moments { count, mean, m2 }
    }

    /// Chan et al.'s pairwise combination.
    pub fn combine(self, other: Moments) -> Moments {
        if self.count == 0 {
            return other;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let weight = other.count as f64 / count as f64;
        Moments {
            count,
            mean: self.mean + delta * weight,
            m2: self.m2 + other.m2 + delta * delta * self.count as f64 * weight,
        }
    }

    /// (mean, population standard deviation).
    pub fn mean_and_stdev(self) -> (f64, f64) {
        (self.mean, (self.m2 / self.count.max(1) as f64).sqrt())
    }
}

/// Moments of each block of `block` paths, in order.
pub fn block_moments(pnl: &[f64], block: usize) -> Vec<Moments> {
    pnl.chunks(block).map(Moments::of).collect()
}

/// Mean and standard deviation of the P&L, block by block in path order (the same
/// arithmetic whether the blocks were simulated in one run or in shards).
pub fn mean_and_stdev(pnl: &[f64]) -> (f64, f64) {
    combine_moments(&block_moments(pnl, crate::mc::shocks::BLOCK_PATHS))
}

/// Mean and standard deviation from per-block moments in block order.
pub fn combine_moments(blocks: &[Moments]) -> (f64, f64) {
    blocks
        .iter()
        .fold(
            Moments {
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
            |a, &b| a.combine(b),
        )
        .mean_and_stdev()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Losses 1..=100 (pnl −1..−100): the definitions by hand.
    #[test]
    fn empirical_definitions_on_a_ladder() {
        let pnl: Vec<f64> = (1..=100).map(|i| -(i as f64)).collect();
        let m = var_es(&pnl, &[0.95, 0.975, 0.99]);
        assert_eq!(m[0].var, 95.0);
        assert!((m[0].es - 98.0).abs() < 1e-12);
        assert_eq!(m[1].var, 98.0);
        assert!((m[1].es - (100.0 + 99.0 + 0.5 * 98.0) / 2.5).abs() < 1e-12);
        assert_eq!(m[2].var, 99.0);
        assert_eq!(m[2].es, 100.0);
    }

    /// Losses so large that their squares overflow (a model without exponential moments)
    /// keep an ES standard error: the one of the same losses scaled down, scaled back up
    /// (the estimator is homogeneous), not the 0 that ∞ − ∞ = NaN once became.
    #[test]
    fn es_standard_error_survives_losses_whose_squares_overflow() {
        let pnl: Vec<f64> = (0..10_000)
            .map(|i| -((i * 7919 % 10_000) as f64 / 100.0).powi(3))
            .collect();
        let huge: Vec<f64> = pnl.iter().map(|x| x * 1e200).collect();
        let levels = [0.95, 0.99];
        for (small, big) in var_es(&pnl, &levels).iter().zip(var_es(&huge, &levels)) {
            assert!(small.es_stderr > 0.0);
            let relative = (big.es_stderr / 1e200 - small.es_stderr).abs() / small.es_stderr;
            assert!(relative < 1e-12, "{} vs {}", big.es_stderr, small.es_stderr);
            assert!((big.es / 1e200 - small.es).abs() < 1e-12 * small.es);
        }
    }

    #[test]
    fn an_overflowing_variance_is_infinite_never_zero() {
        assert_eq!(
            nonnegative_variance(f64::INFINITY - f64::INFINITY),
            f64::INFINITY
        );
        assert_eq!(nonnegative_variance(-1e-18), 0.0);
        assert_eq!(nonnegative_variance(2.5), 2.5);
    }

    #[test]
    fn es_is_never_below_var() {
        let pnl: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 - 500.0)
            .collect();
        for m in var_es(&pnl, &[0.9, 0.95, 0.99, 0.999]) {
            assert!(m.es >= m.var, "{m:?}");
            assert!(m.var_stderr >= 0.0 && m.es_stderr >= 0.0);
        }
    }

    #[test]
    fn tail_counts_are_exact_where_floating_point_is_one_off() {
        assert_eq!(tail_count(1_000_000, 0.9999), 100);
        assert_eq!(tail_count(10, 0.8), 2);
        assert_eq!(tail_count(10_000, 0.9), 1000);
        assert_eq!(tail_count(1_000_000, 0.9995), 500);
        assert_eq!(tail_count(100_000, 0.999), 100);
        assert_eq!(tail_count(100, 0.975), 2);
        assert_eq!(tail_mass(100, 0.975).fraction, 0.5);
        assert_eq!(tail_mass(10, 0.8).fraction, 0.0);
        // 1/3 of a path: 0.99 · 1001 = 990.99, m = 10.01
        let m = tail_mass(1001, 0.99);
        assert_eq!(m.whole, 10);
        assert!((m.fraction - 0.01).abs() < 1e-15, "{m:?}");
        // n as large as it gets, and the ends of the range
        assert_eq!(tail_count(usize::MAX, 0.5), usize::MAX / 2);
        assert_eq!(tail_count(7, 1.0), 0);
        assert_eq!(tail_count(7, 0.0), 7);
        assert_eq!(tail_count(7, f64::NAN), 0);
        assert_eq!(tail_count(0, 0.99), 0);
        // a level below every decimal: all but the boundary path
        let tiny = tail_mass(5, 1e-300);
        assert_eq!(tiny.whole, 4);
        assert_eq!(tiny.fraction, 1.0);
        assert_eq!(count_at_rate(100, 0.29), 29);
        assert_eq!(count_at_rate(300, 0.01), 3);
        assert_eq!(count_at_rate(3, 1.0), 3);
    }

    /// The brute-force definition: VaR is the (⌊n(1 − a)⌋ + 1)-th largest loss, also for
    /// the importance-sampling estimator with unit weights.
    #[test]
    fn var_is_the_exact_rank_for_every_level() {
        for n in [10, 1000, 10_000] {
            let pnl: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 - 3.0).collect();
            let mut losses: Vec<f64> = pnl.iter().map(|p| -p).collect();
            losses.sort_by(|a, b| b.total_cmp(a));
            let levels = [0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9995, 0.9999];
            let plain = var_es(&pnl, &levels);
            let weighted = var_es_weighted(&pnl, &vec![1.0; n], &levels);
            for ((a, m), w) in levels.iter().zip(&plain).zip(&weighted) {
                let rank = tail_count(n, *a).min(n - 1);
                assert_eq!(m.var, losses[rank], "n {n}, a {a}");
                assert_eq!(w.var, m.var, "weighted, n {n}, a {a}");
                assert!(
                    (w.es - m.es).abs() <= 1e-12 * m.es.abs().max(1.0),
                    "{w:?} {m:?}"
                );
            }
        }
    }

    #[test]
    fn order_of_paths_does_not_matter() {
        let pnl: Vec<f64> = (0..5000).map(|i| ((i * 104_729) % 5000) as f64).collect();
        let mut rev = pnl.clone();
        rev.reverse();
        assert_eq!(var_es(&pnl, &[0.99]), var_es(&rev, &[0.99]));
    }

    /// The sampled pre-selection gives [`largest`] of the negated P&L bit for bit: on
    /// shuffled P&L, on P&L whose large losses sit exactly on the sample's stride (the
    /// sample then overstates them, and the fallback must catch it), on ties and on short
    /// samples.
    #[test]
    fn largest_losses_equal_the_selection_over_every_path() {
        let negated = |pnl: &[f64]| pnl.iter().map(|p| -p).collect::<Vec<f64>>();
        let shuffled: Vec<f64> = (0..200_000u64)
            .map(|i| ((i * 2_654_435_761) % 200_003) as f64 - 1e5)
            .collect();
        // every 16th path a large loss, the others gains: the sample holds only losses
        let on_stride: Vec<f64> = (0..200_000)
            .map(|i| {
                if i % 16 == 0 {
                    -1e6 - i as f64
                } else {
                    i as f64
                }
            })
            .collect();
        let ties = vec![-1.0; 100_000];
        let short: Vec<f64> = (0..500).map(|i| (i * 7 % 500) as f64).collect();
        for pnl in [&shuffled, &on_stride, &ties, &short] {
            for keep in [1, 37, 5_000, 12_500, 60_000] {
                let expected = largest(negated(pnl), keep);
                let got = largest_losses(pnl, keep);
                assert_eq!(got.len(), expected.len());
                assert!(got
                    .iter()
                    .zip(&expected)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }
}
