//! The scenario file: one TOML document describing a run (SPEC "Inputs").
//!
//! Parsing is strict (an unknown key is an error, so a typo never silently falls back to a
//! default) and every value is range-checked here, naming the key at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{Error, Location, Result};
use crate::input::venue::VenueSpec;
use crate::market::MAX_ABS_RATE;
use crate::mc::simulation::MAX_PATHS;
use crate::time::parse_instant;

/// Default Monte Carlo paths when `[run] paths` is absent.
pub const DEFAULT_PATHS: u64 = 100_000;
/// Most sub-steps of the horizon `[run] steps` accepts: far beyond daily steps over years,
/// and a bound on the work per path (a typo such as `steps = 4000000000` would run for days).
pub const MAX_STEPS: u32 = 10_000;
/// Default confidence levels when `[run] confidence` is absent.
pub const DEFAULT_CONFIDENCE: [f64; 3] = [0.95, 0.975, 0.99];

/// A parsed, validated scenario file. Relative paths inside it are resolved against its folder.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The scenario file itself (for error messages).
    pub path: PathBuf,
    /// `[run]`: paths, seed, horizon, steps, confidence levels and valuation time.
    pub run: RunSettings,
    /// `[model]`: shock distribution, factor parameters and correlation, as written.
    pub model: ModelSpec,
    /// Market file (`[market] file`), resolved.
    pub market_file: PathBuf,
    /// Positions file (`[portfolio] file`), resolved.
    pub portfolio_file: PathBuf,
    /// Implied-vol surface file (`[market] surface`), resolved, if given: option marks by
    /// underlying, expiry and strike.
    pub surface_file: Option<PathBuf>,
    /// Named deterministic stress scenarios (`[[stress]]`).
    pub stress: Vec<StressSpec>,
    /// Venues with a margin model, collateral or a default (`[[venue]]`), names unique.
    pub venues: Vec<VenueSpec>,
}

/// `[run]`: how much to simulate and over what horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// Monte Carlo paths (count), from 2 to [`MAX_PATHS`]; [`DEFAULT_PATHS`] when absent.
    pub paths: u64,
    /// Random seed (0 when absent): the same seed gives the same paths.
    pub seed: u64,
    /// Horizon in calendar days (may be fractional).
    pub horizon_days: f64,
    /// Sub-steps of the horizon for price and implied-vol paths.
    pub steps: u32,
    /// Confidence levels, each in (0, 1).
    pub confidence: Vec<f64>,
    /// Explicit valuation time, overriding the market file's `as_of`.
    pub valuation_time: Option<DateTime<Utc>>,
    /// Reporting currency: `USD` (the default) or a coin of the model.
    pub currency: String,
}

impl RunSettings {
    /// The highest configured confidence level (the default level of contributions and
    /// backtests).
    pub fn highest_level(&self) -> f64 {
        self.confidence.iter().copied().fold(f64::NAN, f64::max)
    }

    /// The lowest configured confidence level (the deepest tail any estimator reads).
    pub fn lowest_level(&self) -> f64 {
        self.confidence.iter().copied().fold(f64::NAN, f64::min)
    }
}

/// Shock distribution of the risk factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Multivariate normal shocks (thin tails).
    Normal,
    /// Multivariate Student-t with `dof` > 2 degrees of freedom, scaled to unit variance.
    StudentT {
        /// Degrees of freedom ν, above 2 (finite variance); lower means fatter tails.
        dof: f64,
    },
}

/// How a Student-t path over several steps draws its chi-square mixing variable
/// (`[model] chi_square`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChiSquareMixing {
    /// One χ²(v) draw W per path, shared by every step: the horizon shock of a path is
    /// exactly the one-step multivariate t (with vol of vol 0), whatever the step count.
    #[default]
    PerPath,
    /// A fresh W at every step: i.i.d. Student-t innovations, whose sum over the steps is
    /// closer to normal, so the horizon tails are thinner than the one-step t's.
    PerStep,
}

impl ChiSquareMixing {
    /// The scenario-file spelling: `per-path` or `per-step`.
    pub fn name(self) -> &'static str {
        match self {
            ChiSquareMixing::PerPath => "per-path",
            ChiSquareMixing::PerStep => "per-step",
        }
    }
}

/// How an option's implied vol follows the smile when spot moves (`[model] smile`); it
/// matters only with an implied-vol surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmileDynamics {
    /// Each option keeps the vol of its strike: the smile stays put as spot moves. The
    /// default, because positions are marked per strike on the venue's surface and a risk
    /// engine should not assume a spot–vol co-movement the data did not give; the model's
    /// spot–vol correlation already carries the systematic part.
    #[default]
    StickyStrike,
    /// The smile moves with spot: an option's vol is read at its strike's moneyness against
    /// the simulated forward. Under a put skew, as spot falls an out-of-the-money put moves
    /// towards the money and takes the lower vol of strikes nearer the forward.
    StickyMoneyness,
}

/// `[model]`: the risk-factor model as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Shock distribution (`[model] distribution` and `dof`); normal when absent.
    pub distribution: Distribution,
    /// How Student-t paths of several steps share their chi-square (ignored under normal).
    pub chi_square: ChiSquareMixing,
    /// How option vols follow the smile when spot moves.
    pub smile: SmileDynamics,
    /// Per-underlying factor parameters, by underlying name (sorted).
    pub factors: BTreeMap<String, FactorSpec>,
    /// `[model.correlation]`, if given.
    pub correlation: Option<CorrelationSpec>,
    /// `[model.depeg.C]`: de-peg jumps of USD stablecoins, by currency (sorted); empty: every
    /// stablecoin holds its peg.
    pub depeg: BTreeMap<String, DepegSpec>,
    /// Failure rates per year of every `[[venue]]` entry (0 when it cannot fail), by venue:
    /// their latent factors `{venue}.default` may be listed in `[model.correlation]`.
    pub venue_defaults: BTreeMap<String, f64>,
    /// Whether the model simulates those factors (the margin projection does; a run, whose P&L
    /// does not depend on them, does not draw them).
    pub simulate_defaults: bool,
}

/// `[model.depeg.C]`: the de-peg of stablecoin C, a jump of its USD price (factor `C.peg`).
///
/// Over a horizon of h days C de-pegs with probability 1 − e^{−λ·h/365}; given a de-peg it
/// loses the fraction L = min(1, loss · U^{−1/tail_index}) of its value (a Pareto tail above
/// `loss`, U uniform), the deepest shocks of `C.peg` losing the most. See `docs/model.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepegSpec {
    /// λ: de-pegs per year (e.g. 0.05).
    pub probability: f64,
    /// The smallest loss given a de-peg, as a fraction of the peg (0.03 = 3 %).
    pub loss: f64,
    /// α > 1 of the loss's Pareto tail (smaller is fatter); default 2.
    #[serde(default = "default_tail_index")]
    pub tail_index: f64,
}

fn default_tail_index() -> f64 {
    2.0
}

impl DepegSpec {
    /// E(L), the mean loss given a de-peg as a fraction of the peg:
    /// loss + (loss − loss^α)/(α − 1) (the Pareto mean truncated at a total loss).
    pub fn mean_loss(&self) -> f64 {
        let (m, a) = (self.loss, self.tail_index);
        m + (m - m.powf(a)) / (a - 1.0)
    }
}

/// `[model.factors.U]`: annualised parameters of one underlying.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorSpec {
    /// Annualised volatility of ln(spot).
    pub spot_vol: f64,
    /// Annualised volatility of ln(implied vol): one number (one factor `U.vol` moving every
    /// tenor; 0 holds implied vol fixed), or one per pillar of `vol_pillars`.
    #[serde(default)]
    pub vol_of_vol: VolOfVol,
    /// Tenors (whole days) of the ATM implied-vol pillars, strictly increasing: each pillar is
    /// a factor `U.vol.{days}d` with its own vol of vol. Empty: no pillars.
    #[serde(default)]
    pub vol_pillars: Vec<u32>,
    /// Annualised volatility of the skew factor `U.skew` (the 30-day slope
    /// d ln σ / d ln(K/F), see `docs/model.md`); 0, the default, holds the skew fixed.
    #[serde(default)]
    pub skew_vol: f64,
    /// Annualised drift of ln(spot); 0 unless configured.
    #[serde(default)]
    pub drift: f64,
    /// Term structure of vol moves: an option with T days left at the horizon sees the vol
    /// factor's log move scaled by (30/max(T, 1))^p (Deribit-style; 0, the default, moves
    /// every tenor alike).
    #[serde(default)]
    pub term_power: f64,
    /// Annualised vol of the futures basis y = ln(F/S)/τ (arithmetic, per √year; factor
    /// `U.basis`; OKX charges a 0.05 move for BTC): dated futures need an expiry. 0, the
    /// default, keeps F moving one-for-one with spot.
    #[serde(default)]
    pub basis_vol: f64,
    /// Annualised funding rate perpetuals pay (longs pay when positive), e.g. 0.10; default 0.
    #[serde(default)]
    pub funding_rate: f64,
    /// Annualised vol of the funding rate (arithmetic, per √year; factor `U.funding`);
    /// default 0.
    #[serde(default)]
    pub funding_vol: f64,
}

impl FactorSpec {
    /// An underlying with only a spot factor: fixed implied vols, no drift.
    pub fn spot_only(spot_vol: f64) -> FactorSpec {
        FactorSpec {
            spot_vol,
            vol_of_vol: VolOfVol::default(),
            vol_pillars: Vec::new(),
            skew_vol: 0.0,
            drift: 0.0,
            term_power: 0.0,
            basis_vol: 0.0,
            funding_rate: 0.0,
            funding_vol: 0.0,
        }
    }
}

/// `vol_of_vol`: one annualised vol of ln(implied vol), or one per vol pillar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    untagged,
    expecting = "a number, or a list with one vol of vol per pillar of vol_pillars"
)]
pub enum VolOfVol {
    /// One vol factor `U.vol` for every tenor.
    Scalar(f64),
    /// One vol of vol per pillar of `vol_pillars`, in the same order.
    PerPillar(Vec<f64>),
}

impl Default for VolOfVol {
    fn default() -> VolOfVol {
        VolOfVol::Scalar(0.0)
    }
}

impl VolOfVol {
    /// Every vol of vol given (one for a scalar).
    pub fn values(&self) -> &[f64] {
        match self {
            VolOfVol::Scalar(x) => std::slice::from_ref(x),
            VolOfVol::PerPillar(v) => v,
        }
    }

    /// The scalar vol of vol; 0 when per-pillar vols are given (no single `U.vol` factor).
    pub fn scalar(&self) -> f64 {
        match self {
            VolOfVol::Scalar(x) => *x,
            VolOfVol::PerPillar(_) => 0.0,
        }
    }
}

/// `[model.correlation]`: factor names (`U.spot`, `U.vol`) and their correlation matrix.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSpec {
    /// Factor names (`U.spot`, `U.vol`) of the matrix's rows and columns, in order.
    pub factors: Vec<String>,
    /// Correlation matrix, one row per factor in `factors` order (checked for shape, unit diagonal,
    /// |ρ| ≤ 1 and symmetry when the model is built).
    pub matrix: Vec<Vec<f64>>,
}

/// `[[stress]]`: a named deterministic move of factors (relative: −0.30 means × 0.70),
/// optionally with the default of a venue or counterparty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressSpec {
    /// Scenario name, shown in the report.
    pub name: String,
    /// Factor name (`BTC.spot`, `BTC.vol`) → relative move; factors not named do not move.
    #[serde(default)]
    pub shocks: BTreeMap<String, f64>,
    /// What happened, for the report.
    #[serde(default)]
    pub description: Option<String>,
    /// Where the figures come from (data file and dates, or a citation).
    #[serde(default)]
    pub source: Option<String>,
    /// A venue whose positions are lost in this scenario.
    #[serde(default)]
    pub default_venue: Option<String>,
    /// A counterparty whose positions are lost in this scenario.
    #[serde(default)]
    pub default_counterparty: Option<String>,
}

/// A file of `[[stress]]` scenarios only (the shipped library in `scenarios/stress/`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct StressFile {
    #[serde(default)]
    stress: Vec<StressSpec>,
}

/// Reads a file of `[[stress]]` scenarios.
pub fn load_stress_file(path: &Path) -> Result<Vec<StressSpec>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::in_file(path, format!("cannot read stress file: {e}")))?;
    let file: StressFile = toml::from_str(&text).map_err(|e| toml_error(&text, path, &e))?;
    Ok(file.stress)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    run: RawRun,
    model: RawModel,
    market: RawMarketRef,
    portfolio: RawFileRef,
    #[serde(default)]
    stress: Vec<StressSpec>,
    #[serde(default)]
    venue: Vec<VenueSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    paths: Option<u64>,
    seed: Option<u64>,
    horizon_days: Option<f64>,
    steps: Option<u32>,
    confidence: Option<Vec<f64>>,
    valuation_time: Option<String>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(default = "default_distribution")]
    distribution: String,
    dof: Option<f64>,
    chi_square: Option<String>,
    smile: Option<String>,
    factors: BTreeMap<String, FactorSpec>,
    correlation: Option<CorrelationSpec>,
    #[serde(default)]
    depeg: BTreeMap<String, DepegSpec>,
}

fn default_distribution() -> String {
    "normal".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileRef {
    file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarketRef {
    file: String,
    surface: Option<String>,
}

impl ScenarioFile {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<ScenarioFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::in_file(path, format!("cannot read scenario file: {e}")))?;
        Self::parse(&text, path)
    }

    /// Parses scenario text; `path` names it in errors and anchors relative file paths.
    pub fn parse(text: &str, path: &Path) -> Result<ScenarioFile> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let venues = validate_venues(raw.venue, path)?;
        let mut model = validate_model(raw.model, path)?;
        model.venue_defaults = venues
            .iter()
            .map(|v| (v.name.clone(), v.default_probability))
            .collect();
        let scenario = ScenarioFile {
            path: path.to_path_buf(),
            run: validate_run(raw.run, path)?,
            model,
            market_file: base.join(raw.market.file),
            portfolio_file: base.join(raw.portfolio.file),
            surface_file: raw.market.surface.map(|f| base.join(f)),
            stress: raw.stress,
            venues,
        };
        Ok(scenario)
    }
}

/// A TOML parse or type error at its line, naming the key it is about (e.g. `run.paths`
/// for `paths = "many"` under `[run]`) and saying what was expected in plain words.
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> Error {
    let span = e.span();
    let location = span
        .as_ref()
        .map(|span| Location::Line(line_of_offset(text, span.start)))
        .unwrap_or(Location::File);
    let key = span.and_then(|span| key_at(text, &span));
    Error::input(
        path,
        location,
        key.as_deref(),
        plain_types(e.message().trim()),
    )
}

/// The dotted key path (`run.paths`, `run.confidence[1]`, `model.factors.BTC`) of the
/// deepest key or value of `text` whose span contains `span`; `None` if the text does not
/// parse or nothing matches.
fn key_at(text: &str, span: &std::ops::Range<usize>) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    use toml::Spanned;

    fn contains(outer: &std::ops::Range<usize>, inner: &std::ops::Range<usize>) -> bool {
        outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
    }
    /// Keeps (depth, path) if it is deeper than the best so far.
    fn consider(best: &mut Option<(usize, String)>, depth: usize, path: String) {
        if best.as_ref().is_none_or(|(d, _)| depth > *d) {
            *best = Some((depth, path));
        }
    }
    /// The deepest match under `value` (reached by `path`), as (depth, path).
    fn search(
        value: &Spanned<DeValue<'_>>,
        path: &str,
        depth: usize,
        span: &std::ops::Range<usize>,
        best: &mut Option<(usize, String)>,
    ) {
        if !path.is_empty() && contains(&value.span(), span) {
            consider(best, depth, path.to_owned());
        }
        match value.get_ref() {
            DeValue::Table(table) => {
                for (key, item) in table {
                    let child = if path.is_empty() {
                        key.get_ref().to_string()
                    } else {
                        format!("{path}.{}", key.get_ref())
                    };
                    if contains(&key.span(), span) {
                        consider(best, depth + 1, child.clone());
                    }
                    search(item, &child, depth + 1, span, best);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    search(item, &format!("{path}[{i}]"), depth + 1, span, best);
                }
            }
            _ => {}
        }
    }

    let root = DeTable::parse(text).ok()?;
    let (root_span, table) = (root.span(), root.into_inner());
    let root = Spanned::new(root_span, DeValue::Table(table));
    let mut best = None;
    search(&root, "", 0, span, &mut best);
    best.map(|(_, path)| path)
}

/// serde's Rust type names in a message, in the words of a scenario file.
fn plain_types(message: &str) -> String {
    [
        ("expected u64", "expected a whole number (0 or more)"),
        (
            "expected u32",
            "expected a whole number (0 or more, below 2^32)",
        ),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (rust, plain)| {
        m.replace(rust, plain)
    })
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn bad_key(path: &Path, key: &str, message: String) -> Error {
    Error::input(path, Location::File, Some(key), message)
}

fn validate_run(raw: RawRun, path: &Path) -> Result<RunSettings> {
    let paths = raw.paths.unwrap_or(DEFAULT_PATHS);
    if paths < 2 {
        return Err(bad_key(
            path,
            "run.paths",
            format!("must be at least 2, found {paths}"),
        ));
    }
    if paths > MAX_PATHS {
        return Err(bad_key(
            path,
            "run.paths",
            format!("at most {MAX_PATHS} paths fit one run (8 GiB of P&L), found {paths}"),
        ));
    }
    let horizon_days = raw.horizon_days.unwrap_or(1.0);
    if !(horizon_days.is_finite() && horizon_days > 0.0) {
        return Err(bad_key(
            path,
            "run.horizon_days",
            format!("must be a positive number of days, found {horizon_days}"),
        ));
    }
    let steps = raw.steps.unwrap_or(1);
    if steps == 0 || steps > MAX_STEPS {
        return Err(bad_key(
            path,
            "run.steps",
            format!("must be between 1 and {MAX_STEPS}, found {steps}"),
        ));
    }
    let confidence = raw
        .confidence
        .unwrap_or_else(|| DEFAULT_CONFIDENCE.to_vec());
    if confidence.is_empty() {
        return Err(bad_key(
            path,
            "run.confidence",
            "needs at least one level".to_owned(),
        ));
    }
    for (i, &level) in confidence.iter().enumerate() {
        if !(level > 0.0 && level < 1.0) {
            return Err(bad_key(
                path,
                &format!("run.confidence[{i}]"),
                format!("must lie strictly between 0 and 1 (0.99, not 99), found {level}"),
            ));
        }
    }
    let valuation_time = match raw.valuation_time {
        None => None,
        Some(text) => Some(parse_instant(&text, 0).ok_or_else(|| {
            bad_key(
                path,
                "run.valuation_time",
                format!(
                    "expected an ISO 8601 UTC time such as 2026-01-01T00:00:00Z, found '{text}'"
                ),
            )
        })?),
    };
    Ok(RunSettings {
        paths,
        seed: raw.seed.unwrap_or(0),
        horizon_days,
        steps,
        confidence,
        valuation_time,
        currency: raw.currency.unwrap_or_else(|| "USD".to_owned()),
    })
}

fn validate_model(raw: RawModel, path: &Path) -> Result<ModelSpec> {
    let distribution = match raw.distribution.as_str() {
        "normal" => Distribution::Normal,
        "student-t" => {
            let dof = raw.dof.ok_or_else(|| {
                bad_key(path, "model.dof", "student-t needs dof (> 2)".to_owned())
            })?;
            if !(dof.is_finite() && dof > 2.0) {
                return Err(bad_key(
                    path,
                    "model.dof",
                    format!("must be a number above 2 for a finite variance, found {dof}"),
                ));
            }
            Distribution::StudentT { dof }
        }
        other => {
            return Err(bad_key(
                path,
                "model.distribution",
                format!("expected 'normal' or 'student-t', found '{other}'"),
            ))
        }
    };
    let chi_square = match raw.chi_square.as_deref() {
        None | Some("per-path") => ChiSquareMixing::PerPath,
        Some("per-step") => ChiSquareMixing::PerStep,
        Some(other) => {
            return Err(bad_key(
                path,
                "model.chi_square",
                format!("expected 'per-path' or 'per-step', found '{other}'"),
            ))
        }
    };
    let smile = match raw.smile.as_deref() {
        None | Some("sticky-strike") => SmileDynamics::StickyStrike,
        Some("sticky-moneyness") => SmileDynamics::StickyMoneyness,
        Some(other) => {
            return Err(bad_key(
                path,
                "model.smile",
                format!("expected 'sticky-strike' or 'sticky-moneyness', found '{other}'"),
            ))
        }
    };
    if raw.factors.is_empty() {
        return Err(bad_key(
            path,
            "model.factors",
            "defines no underlying".to_owned(),
        ));
    }
    for (name, f) in &raw.factors {
        let key = |field: &str| format!("model.factors.{name}.{field}");
        let vols = std::iter::once(("spot_vol", f.spot_vol))
            .chain(f.vol_of_vol.values().iter().map(|&v| ("vol_of_vol", v)))
            .chain([
                ("skew_vol", f.skew_vol),
                ("basis_vol", f.basis_vol),
                ("funding_vol", f.funding_vol),
            ]);
        for (field, value) in vols {
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad_key(
                    path,
                    &key(field),
                    format!("must be a non-negative annualised volatility, found {value}"),
                ));
            }
        }
        if !(f.term_power.is_finite() && (0.0..=1.0).contains(&f.term_power)) {
            return Err(bad_key(
                path,
                &key("term_power"),
                format!(
                    "must be a power in [0, 1] (e.g. 0.3), found {}",
                    f.term_power
                ),
            ));
        }
        check_pillars(path, &key, f)?;
        if !f.drift.is_finite() {
            return Err(bad_key(
                path,
                &key("drift"),
                format!("must be finite, found {}", f.drift),
            ));
        }
        let carry = [
            ("funding_rate", f.funding_rate.abs()),
            ("basis_vol", f.basis_vol),
            ("funding_vol", f.funding_vol),
        ];
        for (field, value) in carry {
            if value > MAX_ABS_RATE {
                return Err(bad_key(
                    path,
                    &key(field),
                    format!(
                        "an annualised rate or vol beyond {MAX_ABS_RATE} (1000 %), found {value}: \
                         0.1 means 10 %"
                    ),
                ));
            }
        }
    }
    for (currency, d) in &raw.depeg {
        check_depeg(path, currency, d)?;
        if raw.factors.contains_key(currency) {
            return Err(bad_key(
                path,
                &format!("model.depeg.{currency}"),
                format!(
                    "{currency} also has [model.factors.{currency}], so it moves with its spot \
                     factor: give it a de-peg or a spot factor, not both"
                ),
            ));
        }
    }
    Ok(ModelSpec {
        distribution,
        chi_square,
        smile,
        factors: raw.factors,
        correlation: raw.correlation,
        depeg: raw.depeg,
        venue_defaults: BTreeMap::new(),
        simulate_defaults: false,
    })
}

/// Checks every `[[venue]]` entry and that no name appears twice.
fn validate_venues(venues: Vec<VenueSpec>, path: &Path) -> Result<Vec<VenueSpec>> {
    for (i, v) in venues.iter().enumerate() {
        v.check(i, path)?;
        if venues[..i].iter().any(|w| w.name == v.name) {
            return Err(bad_key(
                path,
                &format!("venue[{i}].name"),
                format!("venue '{}' is listed twice", v.name),
            ));
        }
    }
    Ok(venues)
}

/// Checks `[model.depeg.C]`: C a USD stablecoin, a non-negative rate, a loss in (0, 1] and a
/// tail index above 1 (a finite mean loss).
fn check_depeg(path: &Path, currency: &str, d: &DepegSpec) -> Result<()> {
    let key = |field: &str| format!("model.depeg.{currency}.{field}");
    if !crate::market::USD_STABLECOINS.contains(&currency) {
        return Err(bad_key(
            path,
            &format!("model.depeg.{currency}"),
            format!(
                "'{currency}' is not a USD stablecoin: de-pegs are for {}",
                crate::market::USD_STABLECOINS.join(", ")
            ),
        ));
    }
    if !(d.probability.is_finite() && d.probability >= 0.0) {
        return Err(bad_key(
            path,
            &key("probability"),
            format!(
                "must be a non-negative rate per year (0.05 = once in 20 years), found {}",
                d.probability
            ),
        ));
    }
    if !(d.loss > 0.0 && d.loss <= 1.0) {
        return Err(bad_key(
            path,
            &key("loss"),
            format!(
                "must be a fraction of the peg in (0, 1] (0.03 = 3 %), found {}",
                d.loss
            ),
        ));
    }
    if !(d.tail_index.is_finite() && d.tail_index > 1.0) {
        return Err(bad_key(
            path,
            &key("tail_index"),
            format!(
                "must be above 1 for a finite mean loss (2 is a common choice), found {}",
                d.tail_index
            ),
        ));
    }
    Ok(())
}

/// Checks `vol_pillars` against `vol_of_vol`: whole positive days, strictly increasing, one
/// vol of vol per pillar, and no `term_power` beside them (pillars already give each tenor
/// its own move).
fn check_pillars(path: &Path, key: &dyn Fn(&str) -> String, f: &FactorSpec) -> Result<()> {
    let pillars = &f.vol_pillars;
    match (&f.vol_of_vol, pillars.is_empty()) {
        (VolOfVol::Scalar(_), true) => return Ok(()),
        (VolOfVol::PerPillar(_), true) => {
            return Err(bad_key(
                path,
                &key("vol_of_vol"),
                "a list of vols of vol needs vol_pillars = [days, ...] beside it".to_owned(),
            ))
        }
        (VolOfVol::Scalar(_), false) => {
            return Err(bad_key(
                path,
                &key("vol_of_vol"),
                format!(
                    "give one vol of vol per pillar: a list of {} numbers",
                    pillars.len()
                ),
            ))
        }
        (VolOfVol::PerPillar(vols), false) if vols.len() != pillars.len() => {
            return Err(bad_key(
                path,
                &key("vol_of_vol"),
                format!(
                    "has {} values for {} vol_pillars: give one per pillar",
                    vols.len(),
                    pillars.len()
                ),
            ))
        }
        _ => {}
    }
    if pillars[0] == 0 || pillars.windows(2).any(|w| w[1] <= w[0]) {
        return Err(bad_key(
            path,
            &key("vol_pillars"),
            format!("must be whole days above 0, strictly increasing, found {pillars:?}"),
        ));
    }
    if f.term_power != 0.0 {
        return Err(bad_key(
            path,
            &key("term_power"),
            "cannot be combined with vol_pillars: the pillars give each tenor its own move"
                .to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[model]
[model.factors.BTC]
spot_vol = 0.6
[market]
file = "m.csv"
[portfolio]
file = "p.csv"
"#;

    #[test]
    fn defaults_fill_an_empty_run_section() {
        let s = ScenarioFile::parse(MINIMAL, Path::new("dir/s.toml")).unwrap();
        assert_eq!(s.run.paths, DEFAULT_PATHS);
        assert_eq!(s.run.horizon_days, 1.0);
        assert_eq!(s.run.confidence, DEFAULT_CONFIDENCE.to_vec());
        assert_eq!(s.model.distribution, Distribution::Normal);
        assert_eq!(s.market_file, Path::new("dir/m.csv"));
        assert_eq!(s.model.factors["BTC"].vol_of_vol, VolOfVol::Scalar(0.0));
    }

    #[test]
    fn a_typo_is_an_error_with_its_line() {
        let text = MINIMAL.replace("spot_vol", "spot_voll");
        let e = ScenarioFile::parse(&text, Path::new("s.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("s.toml, line 4"), "{msg}");
        assert!(msg.contains("spot_voll"), "{msg}");
    }

    #[test]
    fn a_type_error_names_its_key_and_what_was_expected() {
        let text = format!("[run]\npaths = \"many\"\n{MINIMAL}");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("field 'run.paths'"), "{msg}");
        assert!(msg.contains("expected a whole number"), "{msg}");
        let text = format!("[run]\nconfidence = [0.9, \"high\"]\n{MINIMAL}");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("field 'run.confidence[1]'"), "{msg}");
        let text = MINIMAL.replace("spot_vol = 0.6", "spot_vol = \"high\"");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("field 'model.factors.BTC.spot_vol'"), "{msg}");
        assert!(msg.contains("expected a number"), "{msg}");
    }

    #[test]
    fn model_options_are_checked_naming_their_key() {
        let text = MINIMAL.replace("spot_vol = 0.6", "spot_vol = 0.6\nterm_power = 3");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("model.factors.BTC.term_power"), "{msg}");
        for (key, value) in [("smile", "\"sticky-delta\""), ("chi_square", "\"per-day\"")] {
            let text = MINIMAL.replace("[model]\n", &format!("[model]\n{key} = {value}\n"));
            let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
                .unwrap_err()
                .to_string();
            assert!(msg.contains(&format!("model.{key}")), "{msg}");
        }
    }

    #[test]
    fn negative_vol_and_bad_levels_name_their_key() {
        let text = MINIMAL.replace("0.6", "-0.6");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("model.factors.BTC.spot_vol"), "{msg}");
        let text = format!("[run]\nconfidence = [99.0]\n{MINIMAL}");
        let msg = ScenarioFile::parse(&text, Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("run.confidence[0]"), "{msg}");
    }
}
