//! What a run reports: the SPEC's JSON document and the readable tables.

use std::fmt::Write as _;

use serde::Serialize;

use crate::backtest::rolling::{RollingSettings, ShockModel};
use crate::backtest::statistics::{Backtest, Observation, TRAFFIC_LIGHT_DAYS};
use crate::book::exposures::ExposureRow;
use crate::book::grouping::Grouping;
use crate::hedge::proposal::HedgeProposal;
use crate::input::job::Job;
use crate::input::scenario::Distribution;
use crate::margin::projection::{Estimate, MarginReport};
use crate::mc::importance::ImportanceSampling;
use crate::mc::simulation::{GridCheck, SimulationSettings, UsedRevaluation};
use crate::model::calibration::Weighting;
use crate::model::correlation::RepairReport;
use crate::risk::contributions::{Additivity, Contribution};
use crate::risk::measures::{mean_and_stdev, var_es, RiskMeasure};
use crate::risk::whatif::WhatIf;
use crate::stress::replay::Replay;
use crate::stress::reverse::ReverseStress;
use crate::stress::scenarios::{StressGrid, StressResult};

/// The result of `tailrisk run`: the SPEC keys first, then context. Contains nothing that
/// depends on the machine or the thread count, so equal inputs give byte-equal JSON.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunReport {
    /// Today's mark-to-market value of the book, in reporting currency.
    pub base_value: f64,
    /// Monte Carlo paths simulated (count).
    pub paths: u64,
    /// Horizon in calendar days (365-day year; may be fractional).
    pub horizon_days: f64,
    /// Random seed: the same seed and inputs give the same numbers.
    pub seed: u64,
    /// VaR and ES per confidence level, positive = loss, with Monte Carlo standard errors.
    pub measures: Vec<RiskMeasure>,
    /// Sub-steps of the horizon taken by the price and implied-vol paths.
    pub steps: u32,
    /// `normal` or `student-t`.
    pub distribution: String,
    /// Student-t degrees of freedom, if any.
    pub dof: Option<f64>,
    /// Student-t only: `per-path` (one chi-square per path, shared by its steps) or
    /// `per-step` (one per step).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub chi_square: Option<String>,
    /// Valuation time, RFC 3339 UTC.
    pub valuation_time: String,
    /// Reporting currency of every money figure (always `USD`).
    pub currency: String,
    /// Positions in the book, distinct option contracts after netting, underlyings held.
    pub positions: usize,
    /// Distinct option contracts after netting (count).
    pub option_contracts: usize,
    /// Futures and perpetual contracts netted apart from linear exposure: coin-settled, or
    /// accruing funding, or carrying a basis (count).
    pub delta_one_contracts: usize,
    /// Underlyings the book holds (count).
    pub underlyings: usize,
    /// Mean and standard deviation of the simulated P&L (of the grid P&L with grid
    /// revaluation: estimates, unlike VaR and ES).
    pub pnl_mean: f64,
    /// Population standard deviation of the simulated P&L, in reporting currency (USD).
    pub pnl_stdev: f64,
    /// Present when `--repair-correlation` changed the correlation matrix.
    pub correlation_repair: Option<RepairReport>,
    /// How paths were revalued: with the grid, its error seen on the pilot paths and the
    /// tail revalued in full.
    pub revaluation: GridCheck,
    /// With `--importance-sampling`: the proposal's tail regions, the effective sample size
    /// and the variance gain, or why plain Monte Carlo was used.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub importance_sampling: Option<ImportanceSampling>,
    /// With `--contributions`: one item per position or group key.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub contributions: Option<Vec<Contribution>>,
    /// With `--contributions`: how far the components are from adding up.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub contribution_additivity: Option<Additivity>,
}

/// Builds the report of a run from its per-path P&L.
pub fn run_report(job: &Job, settings: &SimulationSettings, pnl: &[f64]) -> RunReport {
    let (pnl_mean, pnl_stdev) = mean_and_stdev(pnl);
    RunReport {
        measures: var_es(pnl, &job.scenario.run.confidence),
        pnl_mean,
        pnl_stdev,
        ..report_context(job, settings)
    }
}

/// The report of a run before any path is simulated: no measures, zero moments (what a
/// shard records for the merge).
pub fn report_context(job: &Job, settings: &SimulationSettings) -> RunReport {
    let (distribution, dof, chi_square) = match job.model.distribution {
        Distribution::Normal => ("normal", None, None),
        Distribution::StudentT { dof } => (
            "student-t",
            Some(dof),
            Some(job.model.chi_square.name().to_owned()),
        ),
    };
    RunReport {
        base_value: job.base_value(),
        paths: settings.paths,
        horizon_days: settings.horizon_days,
        seed: settings.seed,
        measures: Vec::new(),
        steps: settings.steps,
        distribution: distribution.to_owned(),
        dof,
        chi_square,
        valuation_time: job.valuation_time.to_rfc3339(),
        currency: job.currency.name.clone(),
        positions: job.book.positions.len(),
        option_contracts: job.aggregated.option_count(),
        delta_one_contracts: job.aggregated.delta_one_count(),
        underlyings: job.aggregated.underlyings.len(),
        pnl_mean: 0.0,
        pnl_stdev: 0.0,
        correlation_repair: job.model.repair,
        revaluation: GridCheck::full(),
        importance_sampling: None,
        contributions: None,
        contribution_additivity: None,
    }
}

/// Decimals of a figure shown with `usd` decimals in USD: four more in a coin, whose units
/// are worth thousands of dollars.
pub fn places(currency: &str, usd: usize) -> usize {
    if currency == "USD" {
        usd
    } else {
        usd + 4
    }
}

/// Formats a number with thousands separators and `decimals` decimals: 1234567.8 → 1,234,567.80.
pub fn money(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// The readable report of a run.
pub fn render_run(
    report: &RunReport,
    scenario: &str,
    elapsed_seconds: f64,
    threads: usize,
) -> String {
    let mut out = String::new();
    let dist = match (report.dof, &report.chi_square) {
        (Some(dof), Some(mixing)) if report.steps > 1 => {
            format!("{} (dof {dof}, chi-square {mixing})", report.distribution)
        }
        (Some(dof), _) => format!("{} (dof {dof})", report.distribution),
        (None, _) => report.distribution.to_owned(),
    };
    let _ = writeln!(out, "tailrisk run — {scenario}");
    let _ = writeln!(out, "valuation time   {}", report.valuation_time);
    let _ = writeln!(
        out,
        "horizon          {} day(s) in {} step(s), {dist} shocks",
        report.horizon_days, report.steps
    );
    let _ = writeln!(
        out,
        "book             {} positions → {} option contracts + {} futures and perpetuals + linear \
         exposure on {} underlyings",
        report.positions, report.option_contracts, report.delta_one_contracts, report.underlyings
    );
    let _ = writeln!(
        out,
        "base value       {} {}",
        money(report.base_value, places(&report.currency, 2)),
        report.currency
    );
    let _ = writeln!(
        out,
        "P&L mean / sd    {} / {}",
        money(report.pnl_mean, places(&report.currency, 2)),
        money(report.pnl_stdev, places(&report.currency, 2))
    );
    if let Some(r) = &report.correlation_repair {
        let _ = writeln!(
            out,
            "correlation      repaired (Higham): smallest eigenvalue {:.4} → {:.2e}, \
             max change {:.4}, Frobenius {:.4}",
            r.min_eigenvalue_before, r.min_eigenvalue_after, r.max_abs_change, r.frobenius_distance
        );
    }
    let r = &report.revaluation;
    match (r.mode, r.relative_error) {
        (UsedRevaluation::Grid, Some(e)) => {
            let _ = writeln!(
                out,
                "revaluation      grid (surfaces for underlyings without a skew factor; largest error seen on {} pilot paths {:.4}% of VaR)",
                r.pilot_paths,
                e * 100.0
            );
            let _ = match (r.exact_tail, r.exact_tail_paths) {
                (true, Some(paths)) => writeln!(
                    out,
                    "exact tail       {} largest losses revalued in full: VaR, ES and s.e. as with full revaluation{}",
                    money(paths as f64, 0),
                    r.max_tail_error
                        .map(|x| format!(" (grid off by ≤ {} there)", money(x, places(&report.currency, 2))))
                        .unwrap_or_default()
                ),
                _ => writeln!(out, "exact tail       no: VaR and ES are read off the grid"),
            };
        }
        (UsedRevaluation::Full, Some(e)) => {
            let _ = writeln!(
                out,
                "revaluation      full (the grid's pilot error {:.4}% of VaR is above the 0.1% tolerance)",
                e * 100.0
            );
        }
        _ => match r.estimated_core_seconds {
            Some(cost) => {
                let _ = writeln!(
                    out,
                    "revaluation      full (estimated {:.2} core-s against {:.2} with the grid's surfaces, pilot and exact tail)",
                    cost.full, cost.grid
                );
            }
            None => {
                let _ = writeln!(out, "revaluation      full");
            }
        },
    }
    if let Some(is) = &report.importance_sampling {
        render_importance(&mut out, is);
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>10}  {:>18} {:>12}  {:>18} {:>12}",
        "confidence", "VaR", "± s.e.", "ES", "± s.e."
    );
    for m in &report.measures {
        let _ = writeln!(
            out,
            "{:>9.2}%  {:>18} {:>12}  {:>18} {:>12}",
            m.confidence * 100.0,
            money(m.var, places(&report.currency, 2)),
            money(m.var_stderr, places(&report.currency, 2)),
            money(m.es, places(&report.currency, 2)),
            money(m.es_stderr, places(&report.currency, 2))
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} paths, seed {}, {threads} thread(s), {:.2} s ({} paths/s)",
        money(report.paths as f64, 0),
        report.seed,
        elapsed_seconds,
        money(report.paths as f64 / elapsed_seconds.max(1e-9), 0)
    );
    out
}

/// The importance-sampling lines of the run table: the proposal and the variance gain per
/// level, or why plain Monte Carlo was used.
fn render_importance(out: &mut String, is: &ImportanceSampling) {
    if let Some(reason) = &is.fallback {
        let _ = writeln!(
            out,
            "importance       not used, plain Monte Carlo: {reason}"
        );
        return;
    }
    let distances = is.components.iter().map(|c| c.shift_norm);
    let nearest = distances.clone().fold(f64::INFINITY, f64::min);
    let farthest = distances.fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "importance       {} shifted component(s) at {nearest:.2}–{farthest:.2} sd + {:.0}% \
         the model itself; effective sample size {}",
        is.components.len(),
        is.defensive_share * 100.0,
        money(is.effective_sample_size, 0)
    );
    for g in &is.variance_gain {
        let _ = writeln!(
            out,
            "variance gain    {:.2}%: VaR ×{:.1}, ES ×{:.1} against plain Monte Carlo",
            g.confidence * 100.0,
            g.var,
            g.es
        );
    }
}

/// The readable contributions table: component, marginal and incremental VaR and ES with
/// standard errors, then the additivity check.
pub fn render_contributions(rows: &[Contribution], additivity: &Additivity) -> String {
    let mut out = String::new();
    let group = rows.first().map_or(Grouping::Position, |r| r.group);
    let _ = writeln!(
        out,
        "\ncontributions by {group} at {:.2}%, largest component ES first (± standard error; \
         marginal per unit of {})",
        additivity.confidence * 100.0,
        if group == Grouping::Position {
            "quantity"
        } else {
            "scale"
        }
    );
    let _ = writeln!(
        out,
        "{:<26} {:>21} {:>21} {:>19} {:>19} {:>21} {:>21}",
        group,
        "component VaR",
        "component ES",
        "marginal VaR",
        "marginal ES",
        "incremental VaR",
        "incremental ES"
    );
    let pair = |v: f64, se: f64, width: usize| {
        let decimals = if v.abs() < 100.0 { 2 } else { 0 };
        let text = format!("{} ±{}", money(v, decimals), money(se, decimals));
        format!("{text:>width$}")
    };
    let mut by_es: Vec<&Contribution> = rows.iter().collect();
    by_es.sort_by(|a, b| b.component_es.total_cmp(&a.component_es));
    for r in by_es {
        let _ = writeln!(
            out,
            "{:<26} {} {} {} {} {} {}",
            r.key,
            pair(r.component_var, r.component_var_stderr, 21),
            pair(r.component_es, r.component_es_stderr, 21),
            pair(r.marginal_var, r.marginal_var_stderr, 19),
            pair(r.marginal_es, r.marginal_es_stderr, 19),
            pair(r.incremental_var, r.incremental_var_stderr, 21),
            pair(r.incremental_es, r.incremental_es_stderr, 21),
        );
    }
    for (label, var, es) in [
        (
            "sum of components",
            additivity.component_var_sum,
            additivity.component_es_sum,
        ),
        ("portfolio", additivity.var, additivity.es),
    ] {
        let _ = writeln!(
            out,
            "{label:<26} {:>21} {:>21}",
            money(var, 0),
            money(es, 0)
        );
    }
    let _ = writeln!(
        out,
        "additivity error: VaR {} (window smoothing of the VaR scenario), ES {}",
        money(additivity.var_error, 2),
        money(additivity.es_error, 2)
    );
    out
}

/// The readable what-if report: VaR and ES before, after and the change, each with its
/// standard error.
pub fn render_what_if(w: &WhatIf) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "what-if: {} trade(s) added, {} position(s) removed; {} paths, seed {}, common random numbers",
        w.trades_added.len(),
        w.positions_removed.len(),
        money(w.paths as f64, 0),
        w.seed
    );
    let _ = writeln!(
        out,
        "base value       {} → {} {} ({} → {} positions)",
        money(w.before.base_value, places(&w.currency, 2)),
        money(w.after.base_value, places(&w.currency, 2)),
        w.currency,
        w.before.positions,
        w.after.positions
    );
    let _ = writeln!(
        out,
        "\n{:>10}  {:>6}  {:>24} {:>24} {:>24}",
        "confidence", "", "before ± s.e.", "after ± s.e.", "change ± s.e."
    );
    let d = places(&w.currency, 0);
    let cell = |v: f64, se: f64| format!("{:>24}", format!("{} ±{}", money(v, d), money(se, d)));
    for ((b, a), c) in w
        .before
        .measures
        .iter()
        .zip(&w.after.measures)
        .zip(&w.change)
    {
        for (name, pick) in [("VaR", 0), ("ES", 1)] {
            let get = |m: &RiskMeasure| {
                if pick == 0 {
                    (m.var, m.var_stderr)
                } else {
                    (m.es, m.es_stderr)
                }
            };
            let (level, label) = if pick == 0 {
                (format!("{:.2}%", b.confidence * 100.0), name)
            } else {
                (String::new(), name)
            };
            let _ = writeln!(
                out,
                "{level:>10}  {label:>6}  {} {} {}",
                cell(get(b).0, get(b).1),
                cell(get(a).0, get(a).1),
                cell(get(c).0, get(c).1)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nthe change's standard error is that of the difference on the same paths (common random \
         numbers)"
    );
    out
}

/// The result of `tailrisk stress` (JSON: `stress` array, `grid` array).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StressReport {
    /// Today's mark-to-market value of the book, in the reporting currency.
    pub base_value: f64,
    /// Reporting currency of every value and P&L (`USD` or a coin).
    pub currency: String,
    /// Horizon the scenarios are revalued at, in calendar days (times to expiry shortened by it).
    pub horizon_days: f64,
    /// Valuation time, RFC 3339 UTC.
    pub valuation_time: String,
    /// Named scenarios' results: the scenario file's `[[stress]]`, then each stress file's, in
    /// order.
    pub stress: Vec<StressResult>,
    /// Spot × implied-vol P&L grids: one per underlying held, then all underlyings together.
    pub grid: Vec<StressGrid>,
    /// With `--term-power`: the same grids with Deribit-style term-structure vol shocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term_structure_grid: Option<TermStructureGrids>,
    /// With `--history`: the worst historical windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Replay>,
    /// With `--reverse`: the most plausible move losing the amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverse: Option<ReverseStress>,
}

/// Spot × implied-vol grids whose vol move v is that of a 30-day option: an option with T
/// days left at the horizon has its vol multiplied by (1 + v)^((30/max(T, 1))^p).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermStructureGrids {
    /// The power p.
    pub power: f64,
    /// One grid per underlying held, then all together.
    pub grids: Vec<StressGrid>,
}

/// The readable stress report: named scenarios with their breakdown by underlying, then the
/// spot × implied-vol grids.
pub fn render_stress(report: &StressReport) -> String {
    let mut out = String::new();
    let dp = places(&report.currency, 0);
    let _ = writeln!(
        out,
        "stress at {} over {} day(s); base value {} {}",
        report.valuation_time,
        report.horizon_days,
        money(report.base_value, dp),
        report.currency
    );
    if !report.stress.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<40} {:>14} {:>8}  by underlying",
            "scenario", "P&L", "% base"
        );
        for s in &report.stress {
            let by_underlying: Vec<String> = s.breakdown["underlying"]
                .iter()
                .map(|(k, v)| format!("{k} {}", money(*v, dp)))
                .collect();
            let _ = writeln!(
                out,
                "{:<40} {:>14} {:>7.2}%  {}",
                s.name,
                money(s.pnl, dp),
                100.0 * s.pnl / report.base_value,
                by_underlying.join(", ")
            );
            if let (Some(d), Some(lost)) = (&s.default, s.exposure_lost) {
                let _ = writeln!(
                    out,
                    "{:<40} default of {} '{}': exposure lost {}",
                    "",
                    d.group,
                    d.key,
                    money(lost, dp)
                );
            }
        }
    }
    if let Some(h) = &report.history {
        render_replay(&mut out, h);
    }
    if let Some(r) = &report.reverse {
        render_reverse(&mut out, r, dp);
    }
    for g in &report.grid {
        render_grid(&mut out, g, "implied-vol move", dp);
    }
    if let Some(t) = &report.term_structure_grid {
        let columns = format!("30-day vol move, other tenors × (30/T)^{}", t.power);
        for g in &t.grids {
            render_grid(&mut out, g, &columns, dp);
        }
    }
    out
}

/// One grid: spot moves down the rows, vol moves (described by `columns`) across.
fn render_grid(out: &mut String, g: &StressGrid, columns: &str, decimals: usize) {
    let _ = writeln!(
        out,
        "\nP&L grid, {}: spot move (rows) × {columns} (columns)",
        g.underlying
    );
    let header: String = g
        .vol_moves
        .iter()
        .map(|v| format!("{:>12}", format!("{:+.0}%", v * 100.0)))
        .collect();
    let _ = writeln!(out, "{:>8}{header}", "");
    for (s, row) in g.spot_moves.iter().zip(&g.pnl) {
        let cells: String = row
            .iter()
            .map(|p| format!("{:>12}", money(*p, decimals)))
            .collect();
        let _ = writeln!(out, "{:>8}{cells}", format!("{:+.0}%", s * 100.0));
    }
}

fn render_replay(out: &mut String, h: &Replay) {
    let _ = writeln!(
        out,
        "\nhistorical replay: {} windows of {} day(s); worst {}",
        h.windows,
        h.window_days,
        h.worst.len()
    );
    if !h.not_in_history.is_empty() {
        let _ = writeln!(
            out,
            "not in the history (held fixed): {}",
            h.not_in_history.join(", ")
        );
    }
    for r in &h.worst {
        let moves: Vec<String> = r
            .window
            .moves
            .iter()
            .map(|(u, m)| format!("{u} {:+.1}%", m * 100.0))
            .collect();
        let missing = if r.window.missing.is_empty() {
            String::new()
        } else {
            format!(" (no data: {})", r.window.missing.join(", "))
        };
        let _ = writeln!(
            out,
            "{} → {}  {:>14}  {}{missing}",
            r.window.start,
            r.window.end,
            money(r.pnl, 0),
            moves.join(", ")
        );
    }
}

fn render_reverse(out: &mut String, r: &ReverseStress, decimals: usize) {
    let _ = writeln!(
        out,
        "\nreverse stress: loss of at least {}",
        money(r.target_loss, decimals)
    );
    if !r.reached {
        let _ = writeln!(
            out,
            "not reached within {} standard deviations (best found loses {})",
            crate::stress::reverse::MAX_DISTANCE,
            money(r.loss, decimals)
        );
        return;
    }
    let _ = writeln!(
        out,
        "most plausible move: {:.2} standard deviations (Mahalanobis); tail probability {:.2e} \
         under the model, {:.2e} if normal; loses {}",
        r.mahalanobis_distance,
        r.probability_model,
        r.probability_normal,
        money(r.loss, decimals)
    );
    let moves: Vec<String> = r
        .scenario
        .moves
        .iter()
        .map(|(f, m)| named_move(f, *m))
        .collect();
    let _ = writeln!(out, "moves: {}", moves.join(", "));
}

/// A stress move by factor name: relative moves as percentages, the absolute changes of a
/// skew (smile slope), basis or funding rate (annualised) as numbers.
pub fn named_move(factor: &str, moved: f64) -> String {
    if [".skew", ".basis", ".funding"]
        .iter()
        .any(|kind| factor.ends_with(kind))
    {
        format!("{factor} {moved:+.3}")
    } else {
        format!("{factor} {:+.1}%", moved * 100.0)
    }
}

/// One alternative model's backtest (limit calibration compares them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    /// The alternative model's rolling settings (weighting and shock model varied, the rest as the
    /// main model).
    pub settings: RollingSettings,
    /// Its backtest at the same confidence level and target rate.
    pub backtest: Backtest,
}

/// The result of `tailrisk backtest` (JSON: `backtest` object and context).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// The price history or series file.
    pub source: String,
    /// The backtest of the tested series.
    pub backtest: Backtest,
    /// The rolling model's settings (absent for --series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<RollingSettings>,
    /// Rolling backtests only: every combination of EWMA or sample weighting with Student-t or
    /// normal shocks, for comparison (left out of the JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// Ids of positions left out because their underlying has no price history (left out of the
    /// JSON when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub positions_left_out: Vec<String>,
    /// The daily series tested.
    pub series: Vec<Observation>,
}

fn describe(settings: &RollingSettings) -> String {
    let weighting = match settings.weighting {
        Weighting::Ewma { lambda } => format!("EWMA λ {lambda}"),
        Weighting::Sample => "sample".to_owned(),
    };
    let shocks = match settings.shocks {
        ShockModel::StudentT => "Student-t",
        ShockModel::Normal => "normal",
    };
    format!("{weighting}, {shocks}")
}

/// The readable backtest report.
pub fn render_backtest(r: &BacktestReport) -> String {
    let mut out = String::new();
    let b = &r.backtest;
    let first = r.series.first().map_or("", |o| o.date.as_str());
    let last = r.series.last().map_or("", |o| o.date.as_str());
    let _ = writeln!(
        out,
        "backtest of {:.1}% VaR on {}: {} days from {first} to {last}{}",
        b.confidence * 100.0,
        r.source,
        b.observations,
        r.model
            .as_ref()
            .map(|m| format!(" ({}, {} paths a day)", describe(m), m.paths))
            .unwrap_or_default()
    );
    if !r.positions_left_out.is_empty() {
        let _ = writeln!(
            out,
            "positions without price history, left out: {}",
            r.positions_left_out.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "exceptions       {} ({:.2}% vs {:.2}% expected)",
        b.exceptions,
        b.exception_rate * 100.0,
        (1.0 - b.confidence) * 100.0
    );
    let _ = writeln!(
        out,
        "Kupiec POF       LR {:.3}, p-value {:.4}",
        b.kupiec.lr, b.kupiec.p_value
    );
    let c = &b.christoffersen;
    let _ = writeln!(
        out,
        "Christoffersen   independence LR {:.3} (p {:.4}); conditional coverage LR {:.3} (p {:.4})",
        c.lr_ind, c.p_value_ind, c.lr_cc, c.p_value_cc
    );
    match &b.traffic_light {
        Some(t) => {
            let _ = writeln!(
                out,
                "traffic light    {} — {} exceptions in the last {} days, cumulative probability {:.2}%{}",
                t.zone.to_uppercase(),
                t.exceptions,
                t.observations,
                t.cumulative_probability * 100.0,
                t.multiplier
                    .map(|m| format!(", Basel multiplier {m:.2}"))
                    .unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "traffic light    not shown: the Basel zones are defined for {TRAFFIC_LIGHT_DAYS} days, the series has {}",
                b.observations
            );
        }
    }
    if let Some(es) = &b.es_test {
        let _ = writeln!(out, "ES (Acerbi–Szekely Z2) {:.3}: {}", es.z2, es.zone);
    }
    let green = b
        .limits
        .green_multiplier
        .map(|k| {
            format!("VaR × {k:.3} would have been green over the last {TRAFFIC_LIGHT_DAYS} days; ")
        })
        .unwrap_or_else(|| "VaR ".to_owned());
    let _ = writeln!(
        out,
        "limits           {green}× {:.3} meets an exception rate of {:.2}%",
        b.limits.rate_multiplier,
        b.limits.target_rate * 100.0
    );
    if !r.alternatives.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<26} {:>10} {:>10} {:>8} {:>12} {:>12}",
            "model", "exceptions", "Kupiec p", "zone", "× for green", "× for rate"
        );
        for a in &r.alternatives {
            let _ = writeln!(
                out,
                "{:<26} {:>10} {:>10.4} {:>8} {:>12} {:>12.3}",
                describe(&a.settings),
                a.backtest.exceptions,
                a.backtest.kupiec.p_value,
                a.backtest.traffic_light.map_or("—", |t| t.zone),
                a.backtest
                    .limits
                    .green_multiplier
                    .map_or_else(|| "—".to_owned(), |k| format!("{k:.3}")),
                a.backtest.limits.rate_multiplier
            );
        }
    }
    out
}

/// The readable margin projection: today's requirements per venue, then per venue the
/// probabilities and timing of margin calls and liquidations and the buffers, then the
/// fund's VaR and ES with and without liquidations.
pub fn render_margin(r: &MarginReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "margin over {} day(s) checked every {:.2} h ({} steps), {} paths, seed {}\n",
        r.horizon_days, r.step_hours, r.steps, r.paths, r.seed
    );
    let _ = writeln!(
        out,
        "{:<12} {:<9} {:>14} {:>14} {:>14} {:>7}",
        "venue", "margin", "equity", "initial", "maintenance", "util."
    );
    for v in &r.venues {
        let _ = writeln!(
            out,
            "{:<12} {:<9} {:>14} {:>14} {:>14} {:>6.1}%",
            v.name,
            v.margin,
            money(v.equity, 0),
            money(v.initial_margin, 0),
            money(v.maintenance_margin, 0),
            v.utilisation * 100.0
        );
    }
    let hours = |e: &Option<Estimate>| {
        e.map_or_else(
            || "—".to_owned(),
            |e| format!("{:.1} ±{:.1}", e.value, e.stderr),
        )
    };
    let _ = writeln!(
        out,
        "\n{:<12} {:>16} {:>12} {:>16} {:>12} {:>14} {:>12} {:>16} {:>14}",
        "venue",
        "P(margin call)",
        "hours",
        "P(liquidation)",
        "hours",
        "E[liq. loss]",
        "buffer",
        "P(failure)",
        "E[failure loss]"
    );
    for v in &r.venues {
        let _ = writeln!(
            out,
            "{:<12} {:>16} {:>12} {:>16} {:>12} {:>14} {:>12} {:>16} {:>14}",
            v.name,
            format!("{:.4} ±{:.4}", v.p_margin_call, v.p_margin_call_stderr),
            hours(&v.hours_to_margin_call),
            format!("{:.4} ±{:.4}", v.p_liquidation, v.p_liquidation_stderr),
            hours(&v.hours_to_liquidation),
            money(v.expected_liquidation_loss, 0),
            money(v.buffer, 0),
            format!("{:.4} ±{:.4}", v.p_default.value, v.p_default.stderr),
            money(v.expected_default_loss.value, 0)
        );
    }
    let f = &r.fund;
    let _ = writeln!(
        out,
        "\nfund: P(any margin call) {:.4} ±{:.4}, P(any liquidation) {:.4} ±{:.4}, expected \
         liquidation loss {} ±{}",
        f.p_margin_call.value,
        f.p_margin_call.stderr,
        f.p_liquidation.value,
        f.p_liquidation.stderr,
        money(f.expected_liquidation_loss.value, 0),
        money(f.expected_liquidation_loss.stderr, 0)
    );
    let _ = writeln!(
        out,
        "buffers: {} in total per venue for P(liquidation) ≤ {}; one central reserve moved \
         after {} h: {} (P(liquidation before it arrives) {:.4})",
        money(f.buffers, 0),
        r.target,
        r.reserve_delay_hours,
        f.central_reserve
            .map_or_else(|| "not enough on its own".to_owned(), |x| money(x, 0)),
        f.p_liquidation_before_reserve.value
    );
    let _ = writeln!(
        out,
        "\n{:<10} {:>22} {:>22} {:>22} {:>22} {:>22} {:>22} {:>16}",
        "confidence",
        "VaR",
        "with liquidations",
        "with failures too",
        "ES",
        "with liquidations",
        "with failures too",
        "failures' ES"
    );
    let measures = f
        .measures
        .iter()
        .zip(&f.measures_with_liquidation)
        .zip(&f.measures_with_defaults);
    for (i, ((a, b), c)) in measures.enumerate() {
        let pm = |x: f64, se: f64| format!("{} ±{}", money(x, 0), money(se, 0));
        let _ = writeln!(
            out,
            "{:>9.2}% {:>22} {:>22} {:>22} {:>22} {:>22} {:>22} {:>16}",
            a.confidence * 100.0,
            pm(a.var, a.var_stderr),
            pm(b.var, b.var_stderr),
            pm(c.var, c.var_stderr),
            pm(a.es, a.es_stderr),
            pm(b.es, b.es_stderr),
            pm(c.es, c.es_stderr),
            format!(
                "{} ({:.1}%)",
                money(f.counterparty_es[i], 0),
                f.counterparty_es_share[i] * 100.0
            )
        );
    }
    out
}

/// The readable exposures report: one section per group, a subtotal of currency figures
/// per key.
pub fn render_exposures(rows: &[ExposureRow], valuation_time: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "net exposures at {valuation_time}");
    for group in Grouping::AGGREGATES {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<18} {:<5} {:>13} {:>13} {:>13} {:>14} {:>13} {:>11} {:>11} {:>10} {:>10}",
            format!("by {group}"),
            "",
            "linear",
            "options",
            "delta",
            "delta_usd",
            "gamma",
            "gamma_usd",
            "vega",
            "theta",
            "value"
        );
        let group_rows: Vec<&ExposureRow> = rows.iter().filter(|r| r.group == group).collect();
        for (i, r) in group_rows.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:<18} {:<5} {:>13.4} {:>13.4} {:>13.4} {:>14} {:>13.6} {:>11} {:>11} {:>10} {:>10}",
                r.key,
                r.underlying,
                r.linear_position,
                r.option_position,
                r.delta,
                money(r.delta_usd, 0),
                r.gamma,
                money(r.gamma_usd, 0),
                money(r.vega, 0),
                money(r.theta, 0),
                money(r.value, 0)
            );
            let last_of_key = group_rows.get(i + 1).is_none_or(|next| next.key != r.key);
            let of_key: Vec<&ExposureRow> = group_rows
                .iter()
                .filter(|x| x.key == r.key)
                .copied()
                .collect();
            if last_of_key && of_key.len() > 1 {
                write_currency_total(&mut out, "", "all", &of_key);
            }
        }
        if group == Grouping::Underlying {
            write_currency_total(&mut out, "book total", "", &group_rows);
        }
    }
    write_vega_by_tenor(&mut out, rows);
    write_settlement_and_carry(&mut out, rows);
    let _ = writeln!(
        out,
        "\nlinear / options: net positions in coins; delta and gamma in coins of the underlying; \
         gamma_usd: change of delta_usd for a 1 % spot move; vega per vol point; theta per day; \
         value: mark-to-market (perpetuals and futures 0)"
    );
    out
}

/// Vega by tenor bucket and the skew sensitivity per underlying (rows with options only).
fn write_vega_by_tenor(out: &mut String, rows: &[ExposureRow]) {
    let by_underlying: Vec<&ExposureRow> = rows
        .iter()
        .filter(|r| r.group == Grouping::Underlying && r.option_position != 0.0)
        .collect();
    let Some(first) = by_underlying.first() else {
        return;
    };
    let _ = write!(
        out,
        "\nvega by days to expiry (currency per vol point); skew: per +0.01 of the 30-day \
         slope d ln(vol)/d ln(K/F)\n{:<10}",
        "underlying"
    );
    for bucket in &first.vega_by_tenor {
        let _ = write!(out, " {:>12}", bucket.tenor);
    }
    let _ = writeln!(out, " {:>12}", "skew");
    for r in by_underlying {
        let _ = write!(out, "{:<10}", r.underlying);
        for bucket in &r.vega_by_tenor {
            let _ = write!(out, " {:>12}", money(bucket.vega, 0));
        }
        let _ = writeln!(out, " {:>12}", money(r.skew, 0));
    }
}

/// Per underlying holding coin-settled contracts, futures with an expiry or perpetuals: its
/// delta as venues quote it and its basis and funding sensitivities.
fn write_settlement_and_carry(out: &mut String, rows: &[ExposureRow]) {
    let shown: Vec<&ExposureRow> = rows
        .iter()
        .filter(|r| {
            r.group == Grouping::Underlying
                && (r.settlement_delta != r.delta || r.basis != 0.0 || r.funding != 0.0)
        })
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "
coin settlement and carry: settlement_delta in coins as venues quote coin-settled \
         contracts (Deribit: option delta − price in coin); basis per +0.01 of the annualised \
         basis; funding per day for +0.01 of the annualised rate\n{:<10} {:>13} {:>17} {:>12} {:>12}",
        "underlying", "delta", "settlement_delta", "basis", "funding"
    );
    for r in shown {
        let _ = writeln!(
            out,
            "{:<10} {:>13.4} {:>17.4} {:>12} {:>12}",
            r.underlying,
            r.delta,
            r.settlement_delta,
            money(r.basis, 0),
            money(r.funding, 2)
        );
    }
}

/// A row of currency totals (coin figures do not add across underlyings).
fn write_currency_total(out: &mut String, key: &str, underlying: &str, rows: &[&ExposureRow]) {
    let sum = |f: fn(&ExposureRow) -> f64| rows.iter().map(|x| f(x)).sum::<f64>();
    let _ = writeln!(
        out,
        "{:<18} {:<5} {:>13} {:>13} {:>13} {:>14} {:>13} {:>11} {:>11} {:>10} {:>10}",
        key,
        underlying,
        "",
        "",
        "",
        money(sum(|x| x.delta_usd), 0),
        "",
        money(sum(|x| x.gamma_usd), 0),
        money(sum(|x| x.vega), 0),
        money(sum(|x| x.theta), 0),
        money(sum(|x| x.value), 0)
    );
}

/// `tailrisk hedge` as text: the trades, ES before and after on fresh paths with the
/// in-sample figure beside, and every candidate's marginal ES at the proposal.
pub fn render_hedge(h: &HedgeProposal) -> String {
    let mut out = String::new();
    let goal = match h.target_es {
        Some(x) => format!("cheapest hedge reaching ES {} USD", money(x, 0)),
        None => h.goal.replace('-', " "),
    };
    let _ = writeln!(
        out,
        "hedge: {goal} at {:.2}% over {} day(s); {} candidates; chosen on {} paths (seed {}), \
         judged on {} fresh paths (seed {})",
        h.level * 100.0,
        h.horizon_days,
        h.candidates,
        money(h.paths as f64, 0),
        h.seed,
        money(h.paths as f64, 0),
        h.check_seed
    );
    if let Some(budget) = h.budget {
        let _ = writeln!(
            out,
            "budget {} USD (net premium plus fees and spread)",
            money(budget, 0)
        );
    }
    if h.trades.is_empty() {
        let why = match (h.optimum_traded, h.target_es) {
            (true, _) => "rounding to the candidates' lots removed every trade",
            (false, Some(_)) => "the book's ES is already at or below the target",
            (false, None) if h.goal.starts_with("neutralize") => "the book is already neutral",
            (false, None) => {
                "none lowers ES by more than it costs, within the candidates' bounds and the budget"
            }
        };
        let _ = writeln!(out, "\nno trades: {why}");
    } else {
        let _ = writeln!(
            out,
            "\n{:<28} {:<10} {:<6} {:>16} {:>16} {:>14} {:>14}",
            "trade", "kind", "coin", "quantity", "unrounded", "cost USD", "premium USD"
        );
        for t in &h.trades {
            let _ = writeln!(
                out,
                "{:<28} {:<10} {:<6} {:>16} {:>16} {:>14} {:>14}",
                t.id,
                t.kind,
                t.underlying,
                format!("{:.6}", t.quantity),
                format!("{:.6}", t.unrounded_quantity),
                money(t.cost, 2),
                money(t.premium, 2)
            );
        }
        let _ = writeln!(
            out,
            "total cost {} USD; spend (net premium + cost) {} USD",
            money(h.cost, 2),
            money(h.spend, 2)
        );
    }
    let cell = |v: f64, se: f64| format!("{:>22}", format!("{} ±{}", money(v, 0), money(se, 0)));
    let _ = writeln!(
        out,
        "\nfresh paths {:>10} {:>22} {:>22} {:>22}",
        "", "before ± s.e.", "after ± s.e.", "change ± s.e."
    );
    for (name, pick) in [("VaR", false), ("ES", true)] {
        let get = |m: &RiskMeasure| {
            if pick {
                (m.es, m.es_stderr)
            } else {
                (m.var, m.var_stderr)
            }
        };
        let _ = writeln!(
            out,
            "{:>22} {} {} {}",
            format!("{:.2}% {name}", h.level * 100.0),
            cell(get(&h.before).0, get(&h.before).1),
            cell(get(&h.after).0, get(&h.after).1),
            cell(get(&h.change).0, get(&h.change).1)
        );
    }
    let s = &h.in_sample;
    let _ = writeln!(
        out,
        "in sample (the optimisation's own paths, biased low): ES {} → {} (optimum before \
         rounding {}, rounding {:+})",
        money(s.es_before, 0),
        money(s.es_after, 0),
        money(s.es_optimal, 0),
        money(s.rounding_effect, 0)
    );
    if let (Some(false), Some(target)) = (s.target_met, h.target_es) {
        let _ = writeln!(
            out,
            "warning: rounded to lots the trades miss the target of {} on these paths; finer \
             lots or a wider budget reach it",
            money(target, 0)
        );
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:>16} {:>26}",
        "candidate", "quantity", "marginal ES ± s.e. (USD/unit)"
    );
    for m in &h.marginal_es {
        let _ = writeln!(
            out,
            "{:<28} {:>16} {:>26}",
            m.id,
            format!("{:.6}", m.quantity),
            format!("{} ±{}", money(m.marginal_es, 2), money(m.stderr, 2))
        );
    }
    let _ = writeln!(
        out,
        "\nES after includes the trades' fees and spread; `whatif --trades` on the trades shows \
         it less the cost. Marginal ES: ∂ES/∂quantity on the fresh paths."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(1_234_567.891, 2), "1,234,567.89");
        assert_eq!(money(-1234.5, 0), "-1,234");
        assert_eq!(money(999.0, 0), "999");
        assert_eq!(money(-0.001, 2), "0.00");
    }
}
