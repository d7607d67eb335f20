//! Correlation matrices: entry checks, positive definiteness, Higham's nearest correlation
//! matrix, and the Cholesky factor the scenario generator uses.

use faer::{Mat, MatRef, Side};

/// Below this smallest eigenvalue a correlation matrix is treated as not positive definite:
/// its Cholesky factor would amplify rounding into the shocks.
pub const MIN_EIGENVALUE: f64 = 1e-10;

/// Eigenvalue floor of the repaired matrix, so that the result is safely positive definite.
const REPAIR_FLOOR: f64 = 1e-8;

/// A part of a correlation matrix that breaks the rules, with its (0-based) position: the
/// whole matrix (both `None`), a row (`col` `None`) or an entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryProblem {
    /// 0-based row of the problem; `None` when it is about the whole matrix.
    pub row: Option<usize>,
    /// 0-based column of the problem; `None` when it is about a whole row or the whole matrix.
    pub col: Option<usize>,
    /// What is wrong, e.g. `diagonal must be 1, found 0.9`.
    pub message: String,
}

/// Checks shape, finiteness, unit diagonal, |ρ| ≤ 1 and symmetry (to 1e-12).
pub fn check_entries(matrix: &[Vec<f64>], size: usize) -> Result<(), EntryProblem> {
    let problem = |row, col, message: String| Err(EntryProblem { row, col, message });
    if matrix.len() != size {
        return problem(
            None,
            None,
            format!("has {} rows for {size} factors", matrix.len()),
        );
    }
    // every row's length first: the symmetry check reads [j][i] of later rows
    for (i, row) in matrix.iter().enumerate() {
        if row.len() != size {
            return problem(
                Some(i),
                None,
                format!("row has {} entries for {size} factors", row.len()),
            );
        }
    }
    for (i, row) in matrix.iter().enumerate() {
        for (j, &rho) in row.iter().enumerate() {
            if !rho.is_finite() {
                return problem(Some(i), Some(j), format!("is not a finite number ({rho})"));
            }
            if i == j && (rho - 1.0).abs() > 1e-12 {
                return problem(Some(i), Some(j), format!("diagonal must be 1, found {rho}"));
            }
            if rho.abs() > 1.0 {
                return problem(
                    Some(i),
                    Some(j),
                    format!("|rho| must be at most 1, found {rho}"),
                );
            }
            if (rho - matrix[j][i]).abs() > 1e-12 {
                return problem(
                    Some(i),
                    Some(j),
                    format!(
                        "matrix is not symmetric: {rho} here, {} at [{j}][{i}]",
                        matrix[j][i]
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Smallest eigenvalue of a symmetric matrix (`NaN` if the eigen-solver fails to converge).
pub fn smallest_eigenvalue(m: MatRef<'_, f64>) -> f64 {
    m.self_adjoint_eigenvalues(Side::Lower)
        .ok()
        .and_then(|values| values.first().copied())
        .unwrap_or(f64::NAN)
}

/// The lower Cholesky factor L with L·Lᵀ = `m`, or `None` if `m` is not positive definite.
pub fn cholesky_lower(m: MatRef<'_, f64>) -> Option<Mat<f64>> {
    let llt = m.llt(Side::Lower).ok()?;
    Some(llt.L().to_owned())
}

/// What Higham's repair did to a matrix.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RepairReport {
    /// Smallest eigenvalue of the matrix as given.
    pub min_eigenvalue_before: f64,
    /// Smallest eigenvalue of the repaired matrix.
    pub min_eigenvalue_after: f64,
    /// Frobenius norm of (repaired − given).
    pub frobenius_distance: f64,
    /// Largest change of any single correlation.
    pub max_abs_change: f64,
    /// Alternating-projection iterations used.
    pub iterations: usize,
}

/// Higham (2002) nearest correlation matrix in the Frobenius norm: alternating projections
/// onto the positive semidefinite cone (eigenvalues floored at a tiny positive value so the
/// result is positive definite) and the unit-diagonal matrices, with Dykstra's correction.
/// Returns `None` only if the eigen-solver fails to converge.
pub fn nearest_correlation(a: MatRef<'_, f64>) -> Option<(Mat<f64>, RepairReport)> {
    const TOLERANCE: f64 = 1e-12;
    const MAX_ITERATIONS: usize = 10_000;
    let n = a.nrows();
    let mut y = a.to_owned();
    let mut correction = Mat::<f64>::zeros(n, n);
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let r = &y - &correction;
        let x = project_positive_definite(r.as_ref(), REPAIR_FLOOR)?;
        correction = &x - &r;
        let previous = y;
        y = x.clone();
        for i in 0..n {
            y[(i, i)] = 1.0;
        }
        let change = (&y - &previous).norm_l2() / y.norm_l2();
        let off_cone = (&y - &x).norm_l2() / y.norm_l2();
        if change < TOLERANCE && off_cone < TOLERANCE {
            break;
        }
    }
    symmetrise(&mut y);
    let diff = &y - a;
    let mut max_abs_change: f64 = 0.0;
    for j in 0..n {
        for i in 0..n {
            max_abs_change = max_abs_change.max(diff[(i, j)].abs());
        }
    }
    let report = RepairReport {
        min_eigenvalue_before: smallest_eigenvalue(a),
        min_eigenvalue_after: smallest_eigenvalue(y.as_ref()),
        frobenius_distance: diff.norm_l2(),
        max_abs_change,
        iterations,
    };
    Some((y, report))
}

/// U·max(Λ, floor)·Uᵀ for the eigen-decomposition U·Λ·Uᵀ of the symmetric `r`.
fn project_positive_definite(r: MatRef<'_, f64>, floor: f64) -> Option<Mat<f64>> {
    let evd = r.self_adjoint_eigen(Side::Lower).ok()?;
    let u = evd.U();
    let values = evd.S().column_vector();
    let scaled = Mat::from_fn(u.nrows(), u.ncols(), |i, j| {
        u[(i, j)] * values[j].max(floor)
    });
    let mut x = &scaled * u.transpose();
    symmetrise(&mut x);
    Some(x)
}

fn symmetrise(m: &mut Mat<f64>) {
    for j in 0..m.ncols() {
        for i in (j + 1)..m.nrows() {
            let mean = 0.5 * (m[(i, j)] + m[(j, i)]);
            m[(i, j)] = mean;
            m[(j, i)] = mean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(rows: &[&[f64]]) -> Mat<f64> {
        Mat::from_fn(rows.len(), rows.len(), |i, j| rows[i][j])
    }

    /// Higham's own example (N. J. Higham, "Computing the nearest correlation matrix", 2002,
    /// and his blog post of the same name): A = [[1,1,0],[1,1,1],[0,1,1]] has nearest
    /// correlation matrix with off-diagonals 0.7607, 0.1573, 0.7607.
    #[test]
    fn higham_published_example() {
        let a = mat(&[&[1.0, 1.0, 0.0], &[1.0, 1.0, 1.0], &[0.0, 1.0, 1.0]]);
        assert!(smallest_eigenvalue(a.as_ref()) < 0.0);
        let (x, report) = nearest_correlation(a.as_ref()).unwrap();
        for (i, j, want) in [(0, 1, 0.7607), (0, 2, 0.1573), (1, 2, 0.7607)] {
            assert!(
                (x[(i, j)] - want).abs() < 5e-5,
                "[{i}][{j}] = {}",
                x[(i, j)]
            );
        }
        for i in 0..3 {
            assert_eq!(x[(i, i)], 1.0);
        }
        assert!(report.min_eigenvalue_after > 0.0);
        assert!(cholesky_lower(x.as_ref()).is_some());
        assert!((report.max_abs_change - (1.0 - 0.7607)).abs() < 1e-4);
    }

    #[test]
    fn a_valid_matrix_is_left_where_it_is() {
        let a = mat(&[&[1.0, 0.5], &[0.5, 1.0]]);
        let (x, report) = nearest_correlation(a.as_ref()).unwrap();
        assert!(report.frobenius_distance < 1e-12);
        assert!((x[(0, 1)] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn cholesky_reproduces_the_matrix() {
        let a = mat(&[&[1.0, 0.8, -0.3], &[0.8, 1.0, -0.2], &[-0.3, -0.2, 1.0]]);
        let l = cholesky_lower(a.as_ref()).unwrap();
        let back = &l * l.transpose();
        assert!((&back - &a).norm_l2() < 1e-14);
        let singular = mat(&[&[1.0, 1.0], &[1.0, 1.0]]);
        assert!(smallest_eigenvalue(singular.as_ref()).abs() < 1e-15);
    }

    #[test]
    fn entry_checks_name_the_offending_entry() {
        let asym = vec![vec![1.0, 0.3], vec![0.2, 1.0]];
        assert_eq!(check_entries(&asym, 2).unwrap_err().row, Some(0));
        let big = vec![vec![1.0, 1.5], vec![1.5, 1.0]];
        assert!(check_entries(&big, 2)
            .unwrap_err()
            .message
            .contains("at most 1"));
        let diag = vec![vec![0.9, 0.0], vec![0.0, 1.0]];
        assert!(check_entries(&diag, 2)
            .unwrap_err()
            .message
            .contains("diagonal"));
        assert!(check_entries(&diag, 3).is_err());
        let ragged = vec![vec![1.0, 0.5], vec![]];
        let problem = check_entries(&ragged, 2).unwrap_err();
        assert_eq!((problem.row, problem.col), (Some(1), None));
        assert!(problem.message.contains("0 entries"), "{problem:?}");
    }
}
