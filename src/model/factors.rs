//! The risk-factor model: which factors exist, their volatilities, their correlation and its
//! Cholesky factor.
//!
//! Every underlying U in `[model.factors]` has a factor `U.spot` (log spot) and, when its
//! `vol_of_vol` is positive, `U.vol` (log implied vol). Factors missing from
//! `[model.correlation]` are uncorrelated with the rest. A `.vol` factor listed there for an
//! underlying whose `vol_of_vol` is 0 has no randomness and is dropped.

use std::path::{Path, PathBuf};

use faer::Mat;

use crate::error::{Error, Location, Result};
use crate::input::scenario::{
    ChiSquareMixing, CorrelationSpec, Distribution, ModelSpec, SmileDynamics,
};
use crate::model::correlation::{
    check_entries, cholesky_lower, nearest_correlation, smallest_eigenvalue, RepairReport,
    MIN_EIGENVALUE,
};

/// One underlying's factors and annualised parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct UnderlyingFactors {
    /// Underlying name (the `U` of `[model.factors.U]`).
    pub name: String,
    /// Annualised vol of ln(spot).
    pub spot_vol: f64,
    /// Annualised vol of ln(implied vol); 0 when implied vol is held fixed.
    pub vol_of_vol: f64,
    /// Annualised drift of ln(spot).
    pub drift: f64,
    /// Power p of the term-structure scaling (30/T)^p of vol moves (0: none).
    pub term_power: f64,
    /// Index of `U.spot` in the factor list.
    pub spot_factor: usize,
    /// Index of `U.vol`, if the underlying has one.
    pub vol_factor: Option<usize>,
}

/// The validated model, ready for the scenario generator.
#[derive(Debug, Clone)]
pub struct FactorModel {
    /// Underlyings, sorted by name.
    pub underlyings: Vec<UnderlyingFactors>,
    /// Factor names in generator order (`BTC.spot`, `BTC.vol`, `ETH.spot`, …).
    pub factor_names: Vec<String>,
    /// The correlation matrix used (after repair, if any).
    pub correlation: Mat<f64>,
    /// Lower Cholesky factor of `correlation`.
    pub cholesky: Mat<f64>,
    /// Shock distribution: normal, or Student-t with its degrees of freedom.
    pub distribution: Distribution,
    /// How Student-t paths of several steps share their chi-square.
    pub chi_square: ChiSquareMixing,
    /// How option vols follow the smile when spot moves.
    pub smile: SmileDynamics,
    /// What Higham's repair changed, when it was applied.
    pub repair: Option<RepairReport>,
    /// The scenario file the model comes from, named when the model proves unusable later
    /// (a simulated P&L beyond floating point).
    pub file: PathBuf,
}

impl FactorModel {
    /// Builds the model from its scenario-file section. `file` names the scenario file in
    /// errors. A correlation matrix that is not positive definite is refused unless
    /// `repair_correlation` is set, in which case the nearest correlation matrix is used.
    pub fn build(spec: &ModelSpec, file: &Path, repair_correlation: bool) -> Result<FactorModel> {
        let (underlyings, factor_names) = list_factors(spec);
        let mut correlation = Mat::<f64>::identity(factor_names.len(), factor_names.len());
        if let Some(given) = &spec.correlation {
            fill_correlation(given, spec, &factor_names, file, &mut correlation)?;
        }
        let mut repair = None;
        let min_eigenvalue = smallest_eigenvalue(correlation.as_ref());
        if min_eigenvalue.is_nan() || min_eigenvalue <= MIN_EIGENVALUE {
            if !repair_correlation {
                return Err(Error::Model {
                    file: file.to_path_buf(),
                    message: format!(
                        "[model.correlation] is not positive definite: its smallest eigenvalue \
                         is {}; fix the matrix or pass --repair-correlation to \
                         use Higham's nearest correlation matrix",
                        readable(min_eigenvalue)
                    ),
                });
            }
            let (repaired, report) =
                nearest_correlation(correlation.as_ref()).ok_or_else(|| Error::Model {
                    file: file.to_path_buf(),
                    message: "the nearest-correlation repair did not converge".to_owned(),
                })?;
            correlation = repaired;
            repair = Some(report);
        }
        let cholesky = cholesky_lower(correlation.as_ref()).ok_or_else(|| Error::Model {
            file: file.to_path_buf(),
            message: "Cholesky factorisation of the correlation matrix failed".to_owned(),
        })?;
        Ok(FactorModel {
            underlyings,
            factor_names,
            correlation,
            cholesky,
            distribution: spec.distribution,
            chi_square: spec.chi_square,
            smile: spec.smile,
            repair,
            file: file.to_path_buf(),
        })
    }

    /// Number of factors (the shock dimension).
    pub fn factor_count(&self) -> usize {
        self.factor_names.len()
    }

    /// The index of an underlying in [`FactorModel::underlyings`].
    pub fn underlying_index(&self, name: &str) -> Option<usize> {
        self.underlyings.iter().position(|u| u.name == name)
    }
}

fn list_factors(spec: &ModelSpec) -> (Vec<UnderlyingFactors>, Vec<String>) {
    let mut names = Vec::new();
    let mut underlyings = Vec::new();
    for (name, f) in &spec.factors {
        let spot_factor = names.len();
        names.push(format!("{name}.spot"));
        let vol_factor = (f.vol_of_vol > 0.0).then(|| {
            names.push(format!("{name}.vol"));
            names.len() - 1
        });
        underlyings.push(UnderlyingFactors {
            name: name.clone(),
            spot_vol: f.spot_vol,
            vol_of_vol: f.vol_of_vol,
            drift: f.drift,
            term_power: f.term_power,
            spot_factor,
            vol_factor,
        });
    }
    (underlyings, names)
}

/// Checks `[model.correlation]` and writes its entries into `target` (model factor order).
fn fill_correlation(
    given: &CorrelationSpec,
    spec: &ModelSpec,
    factor_names: &[String],
    file: &Path,
    target: &mut Mat<f64>,
) -> Result<()> {
    let bad =
        |field: String, message: String| Error::input(file, Location::File, Some(&field), message);
    check_entries(&given.matrix, given.factors.len()).map_err(|p| {
        bad(
            format!(
                "model.correlation.matrix{}{}",
                p.row.map(|i| format!("[{i}]")).unwrap_or_default(),
                p.col.map(|j| format!("[{j}]")).unwrap_or_default()
            ),
            p.message,
        )
    })?;
    let mut slots = Vec::with_capacity(given.factors.len());
    for (i, name) in given.factors.iter().enumerate() {
        if given.factors[..i].contains(name) {
            return Err(bad(
                format!("model.correlation.factors[{i}]"),
                format!("factor '{name}' is listed twice"),
            ));
        }
        let slot = factor_names.iter().position(|f| f == name);
        if slot.is_none() && !is_fixed_vol_factor(name, spec) {
            return Err(bad(
                format!("model.correlation.factors[{i}]"),
                format!(
                    "unknown factor '{name}': the model's factors are {}",
                    factor_names.join(", ")
                ),
            ));
        }
        slots.push(slot);
    }
    for (i, si) in slots.iter().enumerate() {
        for (j, sj) in slots.iter().enumerate() {
            if let (Some(a), Some(b)) = (si, sj) {
                target[(*a, *b)] = given.matrix[i][j];
            }
        }
    }
    Ok(())
}

/// `U.vol` for a modelled underlying whose vol_of_vol is 0: a factor with no randomness.
fn is_fixed_vol_factor(name: &str, spec: &ModelSpec) -> bool {
    name.strip_suffix(".vol")
        .and_then(|u| spec.factors.get(u))
        .is_some_and(|f| f.vol_of_vol == 0.0)
}

/// A number readable at any magnitude: fixed-point unless it is tiny.
fn readable(x: f64) -> String {
    if x.abs() >= 1e-3 {
        format!("{x:.6}")
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::scenario::FactorSpec;
    use std::collections::BTreeMap;

    fn spec(matrix: Vec<Vec<f64>>, factors: &[&str]) -> ModelSpec {
        let mut f = BTreeMap::new();
        for (name, vov) in [("BTC", 1.0), ("ETH", 0.0)] {
            f.insert(
                name.to_owned(),
                FactorSpec {
                    spot_vol: 0.6,
                    vol_of_vol: vov,
                    drift: 0.0,
                    term_power: 0.0,
                },
            );
        }
        ModelSpec {
            distribution: Distribution::Normal,
            chi_square: ChiSquareMixing::PerPath,
            smile: SmileDynamics::StickyStrike,
            factors: f,
            correlation: Some(CorrelationSpec {
                factors: factors.iter().map(|s| s.to_string()).collect(),
                matrix,
            }),
        }
    }

    #[test]
    fn maps_named_factors_and_drops_fixed_vols() {
        let s = spec(
            vec![
                vec![1.0, 0.8, -0.3],
                vec![0.8, 1.0, -0.2],
                vec![-0.3, -0.2, 1.0],
            ],
            &["BTC.spot", "ETH.spot", "ETH.vol"],
        );
        let m = FactorModel::build(&s, Path::new("s.toml"), false).unwrap();
        assert_eq!(m.factor_names, ["BTC.spot", "BTC.vol", "ETH.spot"]);
        assert_eq!(m.correlation[(0, 2)], 0.8);
        assert_eq!(m.correlation[(1, 2)], 0.0);
        assert_eq!(m.underlyings[1].vol_factor, None);
    }

    #[test]
    fn refuses_an_indefinite_matrix_naming_its_smallest_eigenvalue() {
        let s = spec(
            vec![
                vec![1.0, 0.9, -0.9],
                vec![0.9, 1.0, 0.9],
                vec![-0.9, 0.9, 1.0],
            ],
            &["BTC.spot", "ETH.spot", "BTC.vol"],
        );
        let e = FactorModel::build(&s, Path::new("s.toml"), false).unwrap_err();
        assert!(e.to_string().contains("smallest eigenvalue is -"), "{e}");
        assert_eq!(e.exit_code(), crate::error::EXIT_MODEL);
        let m = FactorModel::build(&s, Path::new("s.toml"), true).unwrap();
        let report = m.repair.unwrap();
        assert!(report.min_eigenvalue_before < 0.0 && report.min_eigenvalue_after > 0.0);
    }

    #[test]
    fn unknown_factor_is_named() {
        let s = spec(
            vec![vec![1.0, 0.5], vec![0.5, 1.0]],
            &["BTC.spot", "XRP.spot"],
        );
        let e = FactorModel::build(&s, Path::new("s.toml"), false).unwrap_err();
        assert!(e.to_string().contains("unknown factor 'XRP.spot'"), "{e}");
    }
}
