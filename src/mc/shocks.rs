//! Correlated, unit-variance factor shocks (SPEC "Conventions").
//!
//! Normal: e = L·z with z iid N(0,1). Student-t with v > 2 degrees of freedom:
//! e = s(W)·L·z with s(W) = √((v−2)/W) and one W ~ χ²(v) per path shared by all factors — a
//! multivariate t scaled to unit variance, so its correlation is still L·Lᵀ. Over several
//! steps, W is drawn once per path and shared by every step ([`ChiSquareMixing::PerPath`],
//! the default: the horizon shock is exactly the one-step multivariate t) or drawn afresh at
//! every step ([`ChiSquareMixing::PerStep`]: i.i.d. t innovations, thinner horizon tails).
//!
//! Reproducibility: paths are simulated in fixed blocks of [`BLOCK_PATHS`]; block b draws from
//! its own ChaCha8 stream b under a key derived from the seed, never from a shared generator,
//! so the numbers do not depend on how blocks are spread over threads. Within a step the
//! stream order is: the normals of every path, then (when drawn at that step) the chi-squares
//! of every path, then (under importance sampling) one uniform per path.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{ChiSquared, Distribution as _, StandardNormal};

use crate::input::scenario::{ChiSquareMixing, Distribution};
use crate::mc::proposal::Proposal;
use crate::pricing::black_scholes::norm_cdf;

/// Clears the upper halves of the 256-bit vector registers (`vzeroupper`) after faer's
/// AVX kernels. faer dispatches to AVX at run time and can return with them dirty; every
/// legacy-SSE instruction that follows then stalls on the state transition, and the
/// system libm's `exp` and `ln` (called per path right after the shocks) cost about 130 ns
/// instead of 7 on this machine. Values are unaffected.
pub(crate) fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked above), the only requirement of vzeroupper.
        unsafe { std::arch::x86_64::_mm256_zeroupper() };
    }
}

/// Paths per block: the unit of parallel work and of random streams. Fixed, so that results
/// do not depend on the thread count.
pub const BLOCK_PATHS: usize = 2048;

/// The random stream of block `block` under `seed`: ChaCha8 keyed by the seed, stream = block.
pub fn block_rng(seed: u64, block: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(block);
    rng
}

/// P(X > x) for a Student-t X with `dof` > 2 scaled to unit variance: the upper tail of
/// t_v at y = x·√(v/(v−2)), integrated numerically with Simpson's rule — as 1/2 − ∫₀^y of the
/// density when y < 1, else on t = y/u, u in (0, 1], where the integrand behaves like
/// u^{v−1}.
pub fn unit_t_tail(x: f64, dof: f64) -> f64 {
    if x < 0.0 {
        return 1.0 - unit_t_tail(-x, dof);
    }
    let y = x * (dof / (dof - 2.0)).sqrt();
    let log_norm = libm::lgamma((dof + 1.0) / 2.0)
        - libm::lgamma(dof / 2.0)
        - 0.5 * (dof * std::f64::consts::PI).ln();
    let density = |t: f64| (log_norm - (dof + 1.0) / 2.0 * (t * t / dof).ln_1p()).exp();
    if y < 1.0 {
        return 0.5 - simpson(|t| density(t * y) * y);
    }
    simpson(|u| {
        if u <= 0.0 {
            0.0
        } else {
            density(y / u) * y / (u * u)
        }
    })
}

/// ∫₀¹ f by Simpson's rule on 4,000 intervals.
fn simpson(f: impl Fn(f64) -> f64) -> f64 {
    let intervals = 4000;
    let h = 1.0 / intervals as f64;
    let interior: f64 = (1..intervals)
        .map(|i| {
            let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
            weight * f(i as f64 * h)
        })
        .sum();
    (f(0.0) + interior + f(1.0)) * h / 3.0
}

/// P(e ≤ x) for one factor's horizon shock e: standard normal, or under Student-t the
/// unit-variance t of [`unit_t_tail`].
pub fn shock_cdf(distribution: Distribution, x: f64) -> f64 {
    match distribution {
        Distribution::Normal => norm_cdf(x),
        Distribution::StudentT { dof } => unit_t_tail(-x, dof),
    }
}

/// The x with [`shock_cdf`] of x equal to `p` (0 < p < 1), by bisection to 1e-12 relative.
pub fn shock_quantile(distribution: Distribution, p: f64) -> f64 {
    let (mut lo, mut hi) = (-50.0, 50.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if shock_cdf(distribution, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * mid.abs().max(1e-12) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The Student-t scale s(W) = √((v − 2)/W) that turns a χ²(v) draw W into a unit-variance
/// multiplier of the correlated normals.
pub fn t_scale(dof: f64, chi_square: f64) -> f64 {
    ((dof - 2.0) / chi_square).sqrt()
}

/// The draws of one block of paths at the current step, kept between steps.
#[derive(Debug, Clone, Default)]
pub struct BlockDraws {
    /// Independent N(0, 1) normals z of the current step, one row of factors per path (after
    /// any importance-sampling shift).
    pub normals: Vec<f64>,
    /// The χ²(v) draw W of each path (Student-t only; empty under normal shocks), after any
    /// importance-sampling tilt.
    pub chi_squares: Vec<f64>,
    /// The log likelihood ratio of each path under importance sampling (empty otherwise).
    pub log_weights: Vec<f64>,
}

#[derive(Debug, Clone)]
struct StudentMixing {
    chi_square: ChiSquared<f64>,
    dof: f64,
    mixing: ChiSquareMixing,
}

/// Draws blocks of correlated shocks for a given Cholesky factor and distribution.
#[derive(Debug, Clone)]
pub struct ShockGenerator {
    /// Lᵀ, so that a row-major block of normals Z becomes Z·Lᵀ (each row L·z).
    cholesky_transposed: Mat<f64>,
    student: Option<StudentMixing>,
}

impl ShockGenerator {
    /// A generator for lower Cholesky factor `cholesky` and `distribution`, with one
    /// chi-square per path ([`ChiSquareMixing::PerPath`]). Returns `None` when the Student-t
    /// degrees of freedom are not a valid χ² parameter (validated earlier).
    pub fn new(cholesky: MatRef<'_, f64>, distribution: Distribution) -> Option<ShockGenerator> {
        let student = match distribution {
            Distribution::Normal => None,
            Distribution::StudentT { dof } => Some(StudentMixing {
                chi_square: ChiSquared::new(dof).ok()?,
                dof,
                mixing: ChiSquareMixing::PerPath,
            }),
        };
        Some(ShockGenerator {
            cholesky_transposed: cholesky.transpose().to_owned(),
            student,
        })
    }

    /// The same generator with Student-t chi-squares shared by the steps of a path or drawn
    /// at every step (no effect under normal shocks).
    pub fn with_mixing(mut self, mixing: ChiSquareMixing) -> ShockGenerator {
        if let Some(student) = &mut self.student {
            student.mixing = mixing;
        }
        self
    }

    /// Number of factors per shock vector.
    pub fn dimension(&self) -> usize {
        self.cholesky_transposed.nrows()
    }

    /// Student-t degrees of freedom, `None` under normal shocks.
    pub fn dof(&self) -> Option<f64> {
        self.student.as_ref().map(|s| s.dof)
    }

    /// Fills `shocks` with `shocks.len() / dimension` independent shock vectors, row-major
    /// (one path per row), drawing from `rng`: one step of fresh draws. `normals` is scratch
    /// space of the same length.
    pub fn fill(&self, rng: &mut ChaCha8Rng, normals: &mut [f64], shocks: &mut [f64]) {
        let mut chi_squares = Vec::new();
        self.draw(rng, 0, normals, &mut chi_squares);
        self.correlate(normals, &chi_squares, shocks);
    }

    /// Step `step` (from 0) of a block's paths: draws the step's normals (and chi-squares
    /// where due) into `draws`, moves them to `proposal` when importance sampling (filling
    /// `draws.log_weights`), and writes the correlated shocks into `shocks` (one row per
    /// path; its length sets the number of paths).
    pub fn fill_step(
        &self,
        rng: &mut ChaCha8Rng,
        step: u32,
        draws: &mut BlockDraws,
        shocks: &mut [f64],
        proposal: Option<&Proposal>,
    ) {
        let paths = shocks.len() / self.dimension().max(1);
        draws.normals.resize(shocks.len(), 0.0);
        self.draw(rng, step, &mut draws.normals, &mut draws.chi_squares);
        if let Some(proposal) = proposal {
            draws.log_weights.resize(paths, 0.0);
            proposal.apply(
                rng,
                &mut draws.normals,
                &mut draws.chi_squares,
                &mut draws.log_weights,
            );
        }
        self.correlate(&draws.normals, &draws.chi_squares, shocks);
    }

    /// Draws the normals of a step, then the chi-squares of every path when the step needs
    /// new ones (every step per-step, step 0 per-path).
    fn draw(
        &self,
        rng: &mut ChaCha8Rng,
        step: u32,
        normals: &mut [f64],
        chi_squares: &mut Vec<f64>,
    ) {
        for z in normals.iter_mut() {
            *z = StandardNormal.sample(rng);
        }
        if let Some(student) = &self.student {
            if step == 0 || student.mixing == ChiSquareMixing::PerStep {
                let paths = normals.len() / self.dimension().max(1);
                chi_squares.clear();
                chi_squares.extend((0..paths).map(|_| student.chi_square.sample(rng)));
            }
        }
    }

    /// shocks = s(W)·L·z for each path's row of normals.
    fn correlate(&self, normals: &[f64], chi_squares: &[f64], shocks: &mut [f64]) {
        let k = self.dimension();
        let paths = shocks.len() / k;
        let z = MatRef::from_row_major_slice(&normals[..paths * k], paths, k);
        let e = MatMut::from_row_major_slice_mut(&mut shocks[..paths * k], paths, k);
        matmul(
            e,
            Accum::Replace,
            z,
            self.cholesky_transposed.as_ref(),
            1.0,
            Par::Seq,
        );
        clear_upper_vector_state();
        if let Some(student) = &self.student {
            for (row, &w) in shocks.chunks_exact_mut(k).zip(chi_squares) {
                let scale = t_scale(student.dof, w);
                row.iter_mut().for_each(|x| *x *= scale);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(mixing: ChiSquareMixing) -> ShockGenerator {
        let l = Mat::<f64>::identity(2, 2);
        ShockGenerator::new(l.as_ref(), Distribution::StudentT { dof: 4.0 })
            .unwrap()
            .with_mixing(mixing)
    }

    /// Per-path mixing keeps each path's chi-square for all steps; per-step redraws it.
    #[test]
    fn per_path_mixing_keeps_the_chi_square_of_step_zero() {
        for (mixing, kept) in [
            (ChiSquareMixing::PerPath, true),
            (ChiSquareMixing::PerStep, false),
        ] {
            let g = generator(mixing);
            let mut rng = block_rng(3, 0);
            let mut draws = BlockDraws::default();
            let mut shocks = vec![0.0; 2 * 8];
            g.fill_step(&mut rng, 0, &mut draws, &mut shocks, None);
            let first = draws.chi_squares.clone();
            g.fill_step(&mut rng, 1, &mut draws, &mut shocks, None);
            assert_eq!(first == draws.chi_squares, kept, "{mixing:?}");
            assert_eq!(draws.chi_squares.len(), 8);
        }
    }

    /// Step 0 of `fill_step` is the same stream and the same shocks as `fill`.
    #[test]
    fn step_zero_is_a_plain_fill() {
        let g = generator(ChiSquareMixing::PerPath);
        let (mut a, mut b) = (vec![0.0; 20], vec![0.0; 20]);
        let mut normals = vec![0.0; 20];
        g.fill(&mut block_rng(5, 2), &mut normals, &mut a);
        let mut draws = BlockDraws::default();
        g.fill_step(&mut block_rng(5, 2), 0, &mut draws, &mut b, None);
        assert_eq!(a, b);
    }
}
