//! Correlated, unit-variance factor shocks (SPEC "Conventions").
//!
//! Normal: e = L·z with z iid N(0,1). Student-t with v > 2 degrees of freedom:
//! e = √((v−2)/W)·L·z with one W ~ χ²(v) per path (and step) shared by all factors — a
//! multivariate t scaled to unit variance, so its correlation is still L·Lᵀ.
//!
//! Reproducibility: paths are simulated in fixed blocks of [`BLOCK_PATHS`]; block b draws from
//! its own ChaCha8 stream b under a key derived from the seed, never from a shared generator,
//! so the numbers do not depend on how blocks are spread over threads.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{ChiSquared, Distribution as _, StandardNormal};

use crate::config::Distribution;

/// Paths per block: the unit of parallel work and of random streams. Fixed, so that results
/// do not depend on the thread count.
pub const BLOCK_PATHS: usize = 2048;

/// The random stream of block `block` under `seed`: ChaCha8 keyed by the seed, stream = block.
pub fn block_rng(seed: u64, block: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(block);
    rng
}

/// Draws blocks of correlated shocks for a given Cholesky factor and distribution.
#[derive(Debug, Clone)]
pub struct ShockGenerator {
    /// Lᵀ, so that a row-major block of normals Z becomes Z·Lᵀ (each row L·z).
    cholesky_transposed: Mat<f64>,
    /// χ²(v) and v − 2, for Student-t.
    student: Option<(ChiSquared<f64>, f64)>,
}

impl ShockGenerator {
    /// A generator for lower Cholesky factor `cholesky` and `distribution`. Returns `None`
    /// when the Student-t degrees of freedom are not a valid χ² parameter (validated earlier).
    pub fn new(cholesky: MatRef<'_, f64>, distribution: Distribution) -> Option<ShockGenerator> {
        let student = match distribution {
            Distribution::Normal => None,
            Distribution::StudentT { dof } => Some((ChiSquared::new(dof).ok()?, dof - 2.0)),
        };
        Some(ShockGenerator {
            cholesky_transposed: cholesky.transpose().to_owned(),
            student,
        })
    }

    /// Number of factors per shock vector.
    pub fn dimension(&self) -> usize {
        self.cholesky_transposed.nrows()
    }

    /// Fills `shocks` with `shocks.len() / dimension` shock vectors, row-major (one path per
    /// row), drawing from `rng`. `normals` is scratch space of the same length.
    pub fn fill(&self, rng: &mut ChaCha8Rng, normals: &mut [f64], shocks: &mut [f64]) {
        self.fill_inner(rng, normals, shocks, None);
    }

    /// [`ShockGenerator::fill`] under importance sampling: each path's independent normals
    /// ζ are shifted to ζ + μ (`shift`, in the whitened space) before correlation and the
    /// Student-t scaling, and `log_weights` receives the exact log likelihood ratio
    /// −μ·ζ − |μ|²/2 of each path (the chi-square draw is not shifted, so it cancels). The
    /// random stream is the same as without the shift.
    pub fn fill_shifted(
        &self,
        rng: &mut ChaCha8Rng,
        normals: &mut [f64],
        shocks: &mut [f64],
        shift: &[f64],
        log_weights: &mut [f64],
    ) {
        self.fill_inner(rng, normals, shocks, Some((shift, log_weights)));
    }

    fn fill_inner(
        &self,
        rng: &mut ChaCha8Rng,
        normals: &mut [f64],
        shocks: &mut [f64],
        shifted: Option<(&[f64], &mut [f64])>,
    ) {
        let k = self.dimension();
        let paths = shocks.len() / k;
        for z in normals.iter_mut() {
            *z = StandardNormal.sample(rng);
        }
        // one chi-square per path, drawn after the normals (the stream order of every run)
        let scales: Option<Vec<f64>> = self.student.as_ref().map(|(chi_square, dof_minus_two)| {
            (0..paths)
                .map(|_| {
                    let w: f64 = chi_square.sample(rng);
                    (dof_minus_two / w).sqrt()
                })
                .collect()
        });
        if let Some((shift, log_weights)) = shifted {
            for (i, (row, lw)) in normals
                .chunks_exact_mut(k)
                .zip(log_weights.iter_mut())
                .enumerate()
            {
                // under Student-t, the shift of path i is μ/s_i, so the shifted path's shock
                // s_i·L(ζ + μ/s_i) is centred on the design point L·μ whatever its scale s_i
                let shrink = scales.as_ref().map_or(1.0, |s| 1.0 / s[i]);
                let dot: f64 = row.iter().zip(shift).map(|(z, m)| z * m).sum();
                let norm: f64 = shift.iter().map(|m| m * m).sum();
                *lw = -shrink * dot - 0.5 * shrink * shrink * norm;
                row.iter_mut()
                    .zip(shift)
                    .for_each(|(z, m)| *z += shrink * m);
            }
        }
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
        if let Some(scales) = scales {
            for (row, scale) in shocks.chunks_exact_mut(k).zip(scales) {
                row.iter_mut().for_each(|x| *x *= scale);
            }
        }
    }
}
