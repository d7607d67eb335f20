//! The reporting currency: every P&L, VaR, ES and value is in USD (the currency prices are
//! quoted in) or in a coin of the model. A P&L in a coin C is the change of the holding's
//! value counted in C, each path converted at that path's simulated price of C, never at
//! today's:
//!
//! ```text
//! P&L_C = (V_0 + P&L_USD) / S_h − V_0 / S_0
//! ```
//!
//! V_0 is the holding's value today in USD (0 for margined perpetuals and futures), S the
//! USD price of C. A long coin position reported in that coin never gains or loses; a USD
//! balance reported in BTC loses when BTC rises.

use crate::error::{Error, Location, Result};
use crate::market::MarketData;
use crate::model::factors::FactorModel;

/// The numeraire coin of a non-USD reporting currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoinNumeraire {
    /// The coin's column in a path's moves (its index among the model's underlyings).
    pub model_index: usize,
    /// Its USD price today, S_0.
    pub spot: f64,
}

impl CoinNumeraire {
    /// The P&L in the coin of a holding worth `value` USD today that gains `pnl` USD while
    /// the coin's ln price moves by `log_move`.
    #[inline]
    pub fn convert(&self, value: f64, pnl: f64, log_move: f64) -> f64 {
        ((value + pnl) * (-log_move).exp() - value) / self.spot
    }
}

/// The currency a job reports in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportingCurrency {
    /// Its name: `USD` or a modelled coin.
    pub name: String,
    /// The coin, unless the currency is USD.
    pub coin: Option<CoinNumeraire>,
}

impl ReportingCurrency {
    /// USD: figures as priced.
    pub fn usd() -> ReportingCurrency {
        ReportingCurrency {
            name: "USD".to_owned(),
            coin: None,
        }
    }

    /// `name` as a reporting currency: USD, or a coin with a risk factor in `model` and a
    /// quote in `market`. `field` names where the name came from in errors (`run.currency` of
    /// the scenario file `file`, or the `--currency` flag).
    pub fn resolve(
        name: &str,
        model: &FactorModel,
        market: &MarketData,
        file: &std::path::Path,
        field: &str,
    ) -> Result<ReportingCurrency> {
        if name == "USD" {
            return Ok(ReportingCurrency::usd());
        }
        let coin = model.underlying_index(name).and_then(|model_index| {
            market.quote(name).map(|q| CoinNumeraire {
                model_index,
                spot: q.spot,
            })
        });
        let coin = coin.ok_or_else(|| {
            let coins: Vec<&str> = model.underlyings.iter().map(|u| u.name.as_str()).collect();
            Error::input(
                file,
                Location::File,
                Some(field),
                format!(
                    "unknown reporting currency '{name}': USD or a coin of the model ({})",
                    coins.join(", ")
                ),
            )
        })?;
        Ok(ReportingCurrency {
            name: name.to_owned(),
            coin: Some(coin),
        })
    }

    /// A value of `usd` USD today, in this currency (at today's price).
    pub fn value_today(&self, usd: f64) -> f64 {
        self.coin.map_or(usd, |c| usd / c.spot)
    }
}
