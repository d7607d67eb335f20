//! `[[venue]]` entries of the scenario file: where positions are margined, how, and what a
//! venue failure costs.
//!
//! A venue with no entry keeps the behaviour of a run without venues: no margin, no
//! liquidation, no default. Positions attach to a venue by their `venue` column; the
//! `collateral` listed here joins the book as balances held on the venue (list a balance
//! either here or in the positions file, not both).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Location, Result};

/// One `[[venue]]` entry as written (validated by [`VenueSpec::check`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    /// The venue's name, as in the positions file's `venue` column.
    pub name: String,
    /// Collateral posted beyond the positions file's balances, by currency (units of it).
    #[serde(default)]
    pub collateral: BTreeMap<String, f64>,
    /// Haircut per collateral currency, a fraction of its value (0.1: counted at 90 %);
    /// currencies not listed count in full. Applies to the venue's balances and spot too.
    #[serde(default)]
    pub haircut: BTreeMap<String, f64>,
    /// `linear` (fractions of notional), `portfolio` (worst loss over a scenario grid) or
    /// `none` (custody: no derivatives margined, only collateral and failure).
    #[serde(default = "default_margin")]
    pub margin: String,
    /// Linear margin: initial margin as a fraction of notional.
    pub initial_margin: Option<f64>,
    /// Linear margin: maintenance margin as a fraction of notional.
    pub maintenance_margin: Option<f64>,
    /// Linear margin tiered by notional: rates apply to the notional within each tier, like
    /// tax brackets; the last tier's rates apply beyond it.
    #[serde(default)]
    pub tiers: Vec<MarginTier>,
    /// Portfolio margin grid parameters (defaults: [`PortfolioGridSpec::default`]).
    #[serde(default)]
    pub portfolio: PortfolioGridSpec,
    /// Fraction of the notional lost when the venue liquidates the positions (default 0).
    #[serde(default)]
    pub liquidation_fee: f64,
    /// Probability per year that the venue fails (default 0).
    #[serde(default)]
    pub default_probability: f64,
    /// Fraction of the venue's positive equity lost if it fails (default 1).
    #[serde(default = "one")]
    pub loss_given_default: f64,
}

/// One tier of a linear margin schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginTier {
    /// Upper edge of the tier's notional, USD (strictly increasing).
    pub up_to: f64,
    /// Initial margin rate within the tier.
    pub initial_margin: f64,
    /// Maintenance margin rate within the tier.
    pub maintenance_margin: f64,
}

/// A portfolio margin scenario grid (Deribit's portfolio margin, support article "Portfolio
/// Margin": an underlying price range of ±16 % in 9 evenly spaced buckets, volatility up,
/// unchanged and down, an extended table of large moves on volatility up at a fraction of
/// the P&L, and a contingency per net short option).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortfolioGridSpec {
    /// Largest price move of the main grid, a fraction (0.16).
    pub price_range: f64,
    /// Number of evenly spaced price moves from −range to +range, zero included (9).
    pub price_steps: u32,
    /// Relative rise of 30-day implied vol in the "vol up" scenarios (0.38).
    pub vol_up: f64,
    /// Relative fall of 30-day implied vol in the "vol down" scenarios (0.38).
    pub vol_down: f64,
    /// An option with T days to expiry sees the vol move to the power (30/max(T, 1))^p (0.3).
    pub vol_power: f64,
    /// Price moves of the extended table, on vol up only.
    pub extended_moves: Vec<f64>,
    /// Fraction of the extended table's losses charged (0.2, an assumption: Deribit
    /// publishes the table, not the fraction's value).
    pub extended_fraction: f64,
    /// Contingency per net short option contract, in coins of the underlying (0.01).
    pub short_option_minimum: f64,
    /// Initial margin as a multiple of maintenance (1.2, an assumption).
    pub initial_factor: f64,
}

impl Default for PortfolioGridSpec {
    fn default() -> PortfolioGridSpec {
        PortfolioGridSpec {
            price_range: 0.16,
            price_steps: 9,
            vol_up: 0.38,
            vol_down: 0.38,
            vol_power: 0.3,
            extended_moves: vec![-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
            extended_fraction: 0.2,
            short_option_minimum: 0.01,
            initial_factor: 1.2,
        }
    }
}

/// Most price moves of a portfolio grid (each costs a revaluation per step and path).
pub const MAX_PRICE_STEPS: u32 = 101;

fn default_margin() -> String {
    "linear".to_owned()
}

fn one() -> f64 {
    1.0
}

impl VenueSpec {
    /// Checks the entry (index `i` in the file `path`): a name, finite non-negative amounts,
    /// haircuts and fees in [0, 1), a known margin model with its rates (maintenance at most
    /// initial), increasing tiers, a sane grid, a default probability ≥ 0 and a loss given
    /// default in [0, 1].
    pub fn check(&self, i: usize, path: &Path) -> Result<()> {
        let bad = |field: &str, message: String| {
            Error::input(
                path,
                Location::File,
                Some(&format!("venue[{i}].{field}")),
                message,
            )
        };
        if self.name.trim().is_empty() {
            return Err(bad("name", "a venue needs a name".to_owned()));
        }
        for (currency, &amount) in &self.collateral {
            if !(amount.is_finite() && amount >= 0.0) {
                return Err(bad(
                    &format!("collateral.{currency}"),
                    format!("must be a non-negative amount, found {amount}"),
                ));
            }
        }
        let fractions = self
            .haircut
            .iter()
            .map(|(c, &h)| (format!("haircut.{c}"), h))
            .chain([("liquidation_fee".to_owned(), self.liquidation_fee)]);
        for (field, value) in fractions {
            if !(0.0..1.0).contains(&value) {
                return Err(bad(
                    &field,
                    format!("must be a fraction in [0, 1) (0.1 = 10 %), found {value}"),
                ));
            }
        }
        if !(self.default_probability.is_finite() && self.default_probability >= 0.0) {
            return Err(bad(
                "default_probability",
                format!(
                    "must be a non-negative rate per year (0.02 = once in 50 years), found {}",
                    self.default_probability
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.loss_given_default) {
            return Err(bad(
                "loss_given_default",
                format!(
                    "must be a fraction in [0, 1], found {}",
                    self.loss_given_default
                ),
            ));
        }
        match self.margin.as_str() {
            "linear" => self.check_linear(&bad),
            "portfolio" => self.portfolio.check(&bad),
            "none" => Ok(()),
            other => Err(bad(
                "margin",
                format!("expected 'linear', 'portfolio' or 'none', found '{other}'"),
            )),
        }
    }

    fn check_linear(&self, bad: &dyn Fn(&str, String) -> Error) -> Result<()> {
        let rates = |im: Option<f64>, mm: Option<f64>, field: &str| -> Result<()> {
            let (Some(im), Some(mm)) = (im, mm) else {
                return Err(bad(
                    field,
                    "linear margin needs initial_margin and maintenance_margin (fractions of \
                     notional), or tiers"
                        .to_owned(),
                ));
            };
            if !(mm > 0.0 && mm <= im && im <= 1.0) {
                return Err(bad(
                    field,
                    format!(
                        "needs 0 < maintenance_margin ≤ initial_margin ≤ 1, found {mm} and {im}"
                    ),
                ));
            }
            Ok(())
        };
        if self.tiers.is_empty() {
            return rates(
                self.initial_margin,
                self.maintenance_margin,
                "initial_margin",
            );
        }
        let mut edge = 0.0;
        for (j, tier) in self.tiers.iter().enumerate() {
            let field = format!("tiers[{j}]");
            if !(tier.up_to.is_finite() && tier.up_to > edge) {
                return Err(bad(
                    &field,
                    format!(
                        "up_to must increase from tier to tier, found {} after {edge}",
                        tier.up_to
                    ),
                ));
            }
            rates(
                Some(tier.initial_margin),
                Some(tier.maintenance_margin),
                &field,
            )?;
            edge = tier.up_to;
        }
        Ok(())
    }

    /// The haircut of `currency` on this venue (0 when not listed).
    pub fn haircut_of(&self, currency: &str) -> f64 {
        self.haircut.get(currency).copied().unwrap_or(0.0)
    }
}

impl PortfolioGridSpec {
    fn check(&self, bad: &dyn Fn(&str, String) -> Error) -> Result<()> {
        let fractions = [
            ("portfolio.price_range", self.price_range, 0.0, 1.0),
            ("portfolio.vol_up", self.vol_up, 0.0, 10.0),
            ("portfolio.vol_down", self.vol_down, 0.0, 1.0),
            ("portfolio.vol_power", self.vol_power, 0.0, 1.0),
            (
                "portfolio.extended_fraction",
                self.extended_fraction,
                0.0,
                1.0,
            ),
            (
                "portfolio.short_option_minimum",
                self.short_option_minimum,
                0.0,
                1.0,
            ),
        ];
        for (field, value, lo, hi) in fractions {
            if !(lo..=hi).contains(&value) {
                return Err(bad(
                    field,
                    format!("must lie in [{lo}, {hi}], found {value}"),
                ));
            }
        }
        if self.vol_down >= 1.0 {
            return Err(bad(
                "portfolio.vol_down",
                format!(
                    "a vol cannot fall by 100 % or more, found {}",
                    self.vol_down
                ),
            ));
        }
        if !(3..=MAX_PRICE_STEPS).contains(&self.price_steps) || self.price_steps % 2 == 0 {
            return Err(bad(
                "portfolio.price_steps",
                format!(
                    "needs an odd number of price moves from 3 to {MAX_PRICE_STEPS}, so that 0 \
                     is one of them (9 is Deribit's), found {}",
                    self.price_steps
                ),
            ));
        }
        if let Some(m) = self
            .extended_moves
            .iter()
            .find(|m| !(m.is_finite() && **m > -1.0))
        {
            return Err(bad(
                "portfolio.extended_moves",
                format!("a price move must be above -1 (-0.66 means x 0.34), found {m}"),
            ));
        }
        if !(self.initial_factor.is_finite() && self.initial_factor >= 1.0) {
            return Err(bad(
                "portfolio.initial_factor",
                format!(
                    "initial margin is at least maintenance: a factor ≥ 1, found {}",
                    self.initial_factor
                ),
            ));
        }
        Ok(())
    }
}
