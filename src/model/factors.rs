//! The risk-factor model: which factors exist, their volatilities, their correlation and its
//! Cholesky factor.
//!
//! Every underlying U in `[model.factors]` has a factor `U.spot` (log spot) and either, when
//! its scalar `vol_of_vol` is positive, `U.vol` (log implied vol of every tenor), or, with
//! `vol_pillars`, one factor per pillar `U.vol.7d`, `U.vol.30d`, … (log ATM implied vol at
//! that tenor); with a positive `skew_vol` it also has `U.skew` (the 30-day smile slope), with
//! a positive `basis_vol` `U.basis` (the annualised futures basis) and with a positive
//! `funding_vol` `U.funding` (the perpetual funding rate). Each stablecoin of `[model.depeg]`
//! has `C.peg`, the driver of its de-peg jump.
//! Factors missing from `[model.correlation]` are uncorrelated with the rest. A `.vol` or
//! `.skew`, `.basis` or `.funding` factor listed there whose vol is 0 has no randomness and is
//! dropped.
//!
//! A path's moves beyond spot and the one vol factor live in its *surface row*
//! ([`FactorModel::surface_width`] numbers): per underlying, its pillars' log-vol moves in
//! tenor order, its skew move, its basis move and its funding slots ([`FundingFactor`]); then
//! per de-peg its shock and price move ([`JumpFactor`]).

use std::path::{Path, PathBuf};

use faer::Mat;

use crate::error::{Error, Location, Result};
use crate::input::scenario::{
    ChiSquareMixing, CorrelationSpec, DepegSpec, Distribution, ModelSpec, SmileDynamics,
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
    /// Annualised vol of ln(implied vol) of the one factor `U.vol`; 0 when implied vol is held
    /// fixed or moves by pillars.
    pub vol_of_vol: f64,
    /// Annualised drift of ln(spot).
    pub drift: f64,
    /// Power p of the term-structure scaling (30/T)^p of vol moves (0: none).
    pub term_power: f64,
    /// Index of `U.spot` in the factor list.
    pub spot_factor: usize,
    /// Index of `U.vol`, if the underlying has one.
    pub vol_factor: Option<usize>,
    /// ATM implied-vol pillars in increasing tenor (empty: no pillars).
    pub pillars: Vec<VolPillar>,
    /// The skew factor, when `skew_vol` is positive.
    pub skew: Option<ArithmeticFactor>,
    /// The basis factor `U.basis`, when `basis_vol` is positive.
    pub basis: Option<ArithmeticFactor>,
    /// Perpetual funding, when the funding rate or its vol is not 0.
    pub funding: Option<FundingFactor>,
    /// Position of this underlying's first pillar (or its skew) in a path's surface row.
    pub surface_offset: usize,
}

/// One ATM implied-vol pillar: factor `U.vol.{days}d`.
#[derive(Debug, Clone, PartialEq)]
pub struct VolPillar {
    /// Tenor in days.
    pub days: f64,
    /// Annualised vol of ln(ATM implied vol) at this tenor.
    pub vol_of_vol: f64,
    /// Index of the pillar's factor in the factor list.
    pub factor: usize,
}

/// A factor that moves a quantity arithmetically: the skew `U.skew` (the change of the 30-day
/// smile slope d ln σ / d ln(K/F)) or the basis `U.basis` (the change of the annualised
/// futures basis ln(F/S)/τ).
#[derive(Debug, Clone, PartialEq)]
pub struct ArithmeticFactor {
    /// Annualised standard deviation of the quantity's change (per √year).
    pub vol: f64,
    /// Index of the factor in the factor list.
    pub factor: usize,
}

/// Perpetual funding of one underlying: an annualised rate r = `rate` + the path's move of
/// `U.funding` (arithmetic, `vol` per √year), paid by longs when positive.
///
/// Its surface-row slots hold, in order: the rate's move; A_lin = Σ_k r_k·Δt·S_k/S_0 and
/// A_inv = Σ_k r_k·Δt·S_0/S_k over the steps k of the path (Δt in years, r_k and S_k at the
/// end of step k), from which a linear perpetual of u coins pays u·S_0·A_lin and a coin-settled
/// one of face f pays f·(S_h/S_0)·A_inv USD at the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct FundingFactor {
    /// Today's (mean) annualised funding rate.
    pub rate: f64,
    /// Annualised vol of the rate (0: a fixed rate).
    pub vol: f64,
    /// Index of `U.funding` in the factor list, when `vol` is positive.
    pub factor: Option<usize>,
}

/// Number of surface-row slots of an underlying's funding: rate move, A_lin, A_inv.
pub const FUNDING_SLOTS: usize = 3;

/// A jump over the horizon driven by one factor: the de-peg of a USD stablecoin ([`DepegSpec`],
/// factor `C.peg`) or the failure of a venue (factor `{venue}.default`, a de-peg of loss 1).
///
/// The path's standardised shock s (the steps' shocks summed over √steps) triggers the jump
/// when it falls below the horizon probability's quantile; the loss given a jump grows the
/// deeper s lies. Its two surface-row slots hold s and the resulting relative price move (−L,
/// or 0 without a jump; −1 for a venue failure).
#[derive(Debug, Clone, PartialEq)]
pub struct JumpFactor {
    /// The stablecoin (`USDC`, …) or the venue.
    pub name: String,
    /// Probability per year, smallest loss and tail index.
    pub spec: DepegSpec,
    /// Index of `C.peg` in the factor list.
    pub factor: usize,
    /// Its first surface-row slot (the shock; the price move is next).
    pub slot: usize,
}

/// The reference tenor in days (Deribit's 30 days): a term structure moves it by exactly the
/// vol factor's move, the skew factor is the change of its smile slope, and under pillars its
/// vol level scales later spot moves in multi-step paths (the one vol factor's role without
/// them).
pub const REFERENCE_TENOR_DAYS: f64 = 30.0;

/// m = (30/max(T, 1))^p: the power of the vol factor's move felt by an option with `days_left`
/// (T) days to expiry under a term structure of power `power` (T floored at one day).
pub fn term_structure_exponent(days_left: f64, power: f64) -> f64 {
    (REFERENCE_TENOR_DAYS / days_left.max(1.0)).powf(power)
}

/// ln(K/F)·√(30/max(T, 1)): the log-vol move of an option struck at `strike` with forward
/// `forward` and `days_left` (T) days to expiry per unit change of the 30-day smile slope.
pub fn skew_loading(strike: f64, forward: f64, days_left: f64) -> f64 {
    (strike / forward).ln() * (REFERENCE_TENOR_DAYS / days_left.max(1.0)).sqrt()
}

impl UnderlyingFactors {
    /// Surface-row slots and weights of the log-vol move at a tenor of `days`: linear in the
    /// tenor between the two pillars around it, flat beyond the first and last pillar. `None`
    /// without pillars.
    pub fn pillar_weights(&self, days: f64) -> Option<[(usize, f64); 2]> {
        let first = self.pillars.first()?;
        let last = self.pillars.last()?;
        let slot = |i: usize| self.surface_offset + i;
        if days <= first.days {
            return Some([(slot(0), 1.0), (slot(0), 0.0)]);
        }
        if days >= last.days {
            let n = self.pillars.len() - 1;
            return Some([(slot(n), 1.0), (slot(n), 0.0)]);
        }
        let hi = self.pillars.iter().position(|p| p.days > days)?;
        let (a, b) = (self.pillars[hi - 1].days, self.pillars[hi].days);
        let w = (days - a) / (b - a);
        Some([(slot(hi - 1), 1.0 - w), (slot(hi), w)])
    }

    /// Surface-row slot of the skew move, if the underlying has a skew factor.
    pub fn skew_slot(&self) -> Option<usize> {
        self.skew
            .as_ref()
            .map(|_| self.surface_offset + self.pillars.len())
    }

    /// Surface-row slot of the basis move, if the underlying has a basis factor.
    pub fn basis_slot(&self) -> Option<usize> {
        self.basis
            .as_ref()
            .map(|_| self.surface_offset + self.pillars.len() + usize::from(self.skew.is_some()))
    }

    /// First of the [`FUNDING_SLOTS`] surface-row slots of the funding, if the underlying has
    /// funding.
    pub fn funding_slot(&self) -> Option<usize> {
        self.funding.as_ref().map(|_| {
            self.surface_offset
                + self.pillars.len()
                + usize::from(self.skew.is_some())
                + usize::from(self.basis.is_some())
        })
    }

    /// Number of surface-row slots of this underlying (pillars, skew, basis, funding).
    pub fn surface_slots(&self) -> usize {
        self.pillars.len()
            + usize::from(self.skew.is_some())
            + usize::from(self.basis.is_some())
            + if self.funding.is_some() {
                FUNDING_SLOTS
            } else {
                0
            }
    }
}

/// The log-vol move read from a surface row at interpolation `weights`.
#[inline]
pub fn interpolated(weights: &[(usize, f64); 2], surface: &[f64]) -> f64 {
    weights[0].1 * surface[weights[0].0] + weights[1].1 * surface[weights[1].0]
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
    /// Numbers per path of pillar, skew, basis, funding and de-peg moves (0 without any).
    pub surface_width: usize,
    /// Stablecoin de-pegs, by currency; their slots come after every underlying's.
    pub depegs: Vec<JumpFactor>,
    /// Venue failures (only when the spec simulates them), by venue; slots after the de-pegs'.
    pub defaults: Vec<JumpFactor>,
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
        let (underlyings, jumps, factor_names) = list_factors(spec);
        let (depegs, defaults) = jumps;
        let surface_width = underlyings.iter().map(|u| u.surface_slots()).sum::<usize>()
            + 2 * (depegs.len() + defaults.len());
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
            surface_width,
            depegs,
            defaults,
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

type Jumps = (Vec<JumpFactor>, Vec<JumpFactor>);

fn list_factors(spec: &ModelSpec) -> (Vec<UnderlyingFactors>, Jumps, Vec<String>) {
    let mut names = Vec::new();
    let mut underlyings = Vec::new();
    let mut surface_offset = 0;
    for (name, f) in &spec.factors {
        let mut add = |factor: String| {
            names.push(factor);
            names.len() - 1
        };
        let spot_factor = add(format!("{name}.spot"));
        let vol_of_vol = f.vol_of_vol.scalar();
        let vol_factor = (vol_of_vol > 0.0).then(|| add(format!("{name}.vol")));
        let pillars: Vec<VolPillar> = f
            .vol_pillars
            .iter()
            .zip(f.vol_of_vol.values())
            .map(|(&days, &vol_of_vol)| VolPillar {
                days: f64::from(days),
                vol_of_vol,
                factor: add(format!("{name}.vol.{days}d")),
            })
            .collect();
        let skew = (f.skew_vol > 0.0).then(|| ArithmeticFactor {
            vol: f.skew_vol,
            factor: add(format!("{name}.skew")),
        });
        let basis = (f.basis_vol > 0.0).then(|| ArithmeticFactor {
            vol: f.basis_vol,
            factor: add(format!("{name}.basis")),
        });
        let funding = (f.funding_rate != 0.0 || f.funding_vol > 0.0).then(|| FundingFactor {
            rate: f.funding_rate,
            vol: f.funding_vol,
            factor: (f.funding_vol > 0.0).then(|| add(format!("{name}.funding"))),
        });
        let u = UnderlyingFactors {
            name: name.clone(),
            spot_vol: f.spot_vol,
            vol_of_vol,
            drift: f.drift,
            term_power: f.term_power,
            spot_factor,
            vol_factor,
            pillars,
            skew,
            basis,
            funding,
            surface_offset,
        };
        surface_offset += u.surface_slots();
        underlyings.push(u);
    }
    let mut jump = |name: &str, kind: &str, d: &DepegSpec| {
        names.push(format!("{name}.{kind}"));
        let f = JumpFactor {
            name: name.to_owned(),
            spec: d.clone(),
            factor: names.len() - 1,
            slot: surface_offset,
        };
        surface_offset += 2;
        f
    };
    let depegs: Vec<JumpFactor> = spec
        .depeg
        .iter()
        .filter(|(_, d)| d.probability > 0.0)
        .map(|(currency, d)| jump(currency, "peg", d))
        .collect();
    let defaults = if spec.simulate_defaults {
        spec.venue_defaults
            .iter()
            .filter(|(_, &probability)| probability > 0.0)
            .map(|(venue, &probability)| {
                let failure = DepegSpec {
                    probability,
                    loss: 1.0,
                    tail_index: 2.0,
                };
                jump(venue, "default", &failure)
            })
            .collect()
    } else {
        Vec::new()
    };
    (underlyings, (depegs, defaults), names)
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

/// `U.vol` for a modelled underlying without vol pillars whose vol_of_vol is 0, or `U.skew`,
/// `U.basis`, `U.funding` whose vol is 0, `C.peg` of a configured stablecoin that never
/// de-pegs, or `{venue}.default` of a venue with a failure rate in a model that does not
/// simulate failures: a factor with no randomness here.
fn is_fixed_vol_factor(name: &str, spec: &ModelSpec) -> bool {
    let Some((underlying, kind)) = name.rsplit_once('.') else {
        return false;
    };
    if kind == "peg" {
        return spec
            .depeg
            .get(underlying)
            .is_some_and(|d| d.probability == 0.0);
    }
    if kind == "default" {
        return spec
            .venue_defaults
            .get(underlying)
            .is_some_and(|&pd| !spec.simulate_defaults || pd == 0.0);
    }
    spec.factors.get(underlying).is_some_and(|f| match kind {
        "vol" => f.vol_pillars.is_empty() && f.vol_of_vol.scalar() == 0.0,
        "skew" => f.skew_vol == 0.0,
        "basis" => f.basis_vol == 0.0,
        "funding" => f.funding_vol == 0.0,
        _ => false,
    })
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
    use crate::input::scenario::{FactorSpec, VolOfVol};
    use std::collections::BTreeMap;

    fn spec(matrix: Vec<Vec<f64>>, factors: &[&str]) -> ModelSpec {
        let mut f = BTreeMap::new();
        for (name, vov) in [("BTC", 1.0), ("ETH", 0.0)] {
            f.insert(
                name.to_owned(),
                FactorSpec {
                    vol_of_vol: VolOfVol::Scalar(vov),
                    ..FactorSpec::spot_only(0.6)
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
            depeg: BTreeMap::new(),
            venue_defaults: BTreeMap::new(),
            simulate_defaults: false,
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
