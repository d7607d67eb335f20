//! A loaded run: the scenario file and everything it points to, validated and netted.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::book::aggregate::AggregatedBook;
use crate::book::positions::Book;
use crate::error::{Error, Result};
use crate::input::scenario::ScenarioFile;
use crate::market::currency::ReportingCurrency;
use crate::market::vol_surface::VolSurfaces;
use crate::market::MarketData;
use crate::model::factors::FactorModel;
use crate::time::start_of_today;

/// Everything a command needs, loaded in pipeline order.
#[derive(Debug, Clone)]
pub struct Job {
    /// The parsed, validated scenario file.
    pub scenario: ScenarioFile,
    /// Today's market: the file named by the scenario's `[market] file`.
    pub market: MarketData,
    /// `[run] valuation_time`, else the market's `as_of`, else the start of today (UTC).
    pub valuation_time: DateTime<Utc>,
    /// The positions of the scenario's `[portfolio] file`, validated against the market and the
    /// valuation time.
    pub book: Book,
    /// The risk-factor model built from the scenario's `[model]` section.
    pub model: FactorModel,
    /// The book netted per distinct instrument, valued at `valuation_time`.
    pub aggregated: AggregatedBook,
    /// The currency figures are reported in (`[run] currency`, or `--currency`).
    pub currency: ReportingCurrency,
    /// Whether a correlation matrix that is not positive definite may be repaired
    /// (`--repair-correlation`), kept for models built later from the same scenario.
    pub repair_correlation: bool,
}

impl Job {
    /// Loads a scenario file and its market, positions and model. With `repair_correlation`,
    /// a correlation matrix that is not positive definite is replaced by the nearest one.
    pub fn load(scenario_path: &Path, repair_correlation: bool) -> Result<Job> {
        let scenario = ScenarioFile::load(scenario_path)?;
        let mut market = MarketData::load(&scenario.market_file)?;
        let valuation_time = valuation_time(&scenario, &market);
        if let Some(file) = &scenario.surface_file {
            market.surfaces = Some(VolSurfaces::load(file, &market, valuation_time)?);
        }
        let book = Book::load(&scenario.portfolio_file, &market, valuation_time)?;
        Job::assemble(scenario, market, valuation_time, book, repair_correlation)
    }

    /// A job from a scenario with the market and positions given rather than read from its
    /// files (the service's live book and market): builds the model, adds the venues'
    /// collateral, nets the book and resolves the reporting currency as [`Job::load`] does.
    pub fn assemble(
        scenario: ScenarioFile,
        market: MarketData,
        valuation_time: DateTime<Utc>,
        book: Book,
        repair_correlation: bool,
    ) -> Result<Job> {
        let model = FactorModel::build(&scenario.model, &scenario.path, repair_correlation)?;
        let book = book.with_venue_collateral(&scenario.venues, &market, &model, &scenario.path)?;
        let aggregated =
            AggregatedBook::build(&book, &market, &model, valuation_time, &scenario.path)?;
        let currency = ReportingCurrency::resolve(
            &scenario.run.currency,
            &model,
            &market,
            &scenario.path,
            "run.currency",
        )?;
        Ok(Job {
            scenario,
            market,
            valuation_time,
            book,
            model,
            aggregated,
            currency,
            repair_correlation,
        })
    }

    /// The same job reporting in `currency` (the `--currency` flag).
    pub fn in_currency(mut self, currency: &str) -> Result<Job> {
        self.currency = ReportingCurrency::resolve(
            currency,
            &self.model,
            &self.market,
            &self.scenario.path,
            "--currency",
        )
        .map_err(|e| Error::Usage {
            message: e.to_string(),
        })?;
        self.scenario.run.currency = currency.to_owned();
        Ok(self)
    }

    /// The same job whose model also draws the venues' latent failure factors
    /// (`{venue}.default`), for the margin projection. The other factors keep their order
    /// and the netted book stays valid.
    pub fn simulating_venue_defaults(mut self) -> Result<Job> {
        if self
            .scenario
            .model
            .venue_defaults
            .values()
            .all(|&pd| pd == 0.0)
        {
            return Ok(self);
        }
        self.scenario.model.simulate_defaults = true;
        self.model = FactorModel::build(
            &self.scenario.model,
            &self.scenario.path,
            self.repair_correlation,
        )?;
        Ok(self)
    }

    /// `book` netted on this job's market and model at its valuation time (trades, a
    /// group of positions, hedge candidates).
    pub fn net(&self, book: &Book) -> Result<AggregatedBook> {
        AggregatedBook::build(
            book,
            &self.market,
            &self.model,
            self.valuation_time,
            &self.scenario.path,
        )
    }

    /// Today's value of the book in the reporting currency.
    pub fn base_value(&self) -> f64 {
        self.currency.value_today(self.aggregated.base_value())
    }
}

/// The valuation time of `scenario` on `market`: `[run] valuation_time`, else the market
/// file's `as_of`, else the start of today (UTC).
pub fn valuation_time(scenario: &ScenarioFile, market: &MarketData) -> DateTime<Utc> {
    scenario
        .run
        .valuation_time
        .or(market.as_of)
        .unwrap_or_else(start_of_today)
}
