//! Risk limits and their breaches: VaR, ES or net delta of the whole book or of one
//! underlying, venue, counterparty or book (strategy), each against a ceiling.
//!
//! A group's VaR and ES are its own (standalone: the group's positions alone, revalued on
//! the live paths), not its contribution to the whole book's. Delta is the net USD delta
//! ([`crate::book::exposures`]); its limit caps the absolute value.

use serde::{Deserialize, Serialize};

use crate::book::exposures::ExposureRow;
use crate::book::grouping::Grouping;

/// Which figure a limit caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitMeasure {
    /// Value-at-Risk at the limit's confidence level (reporting currency).
    Var,
    /// Expected Shortfall at the limit's confidence level (reporting currency).
    Es,
    /// Net delta in USD (|delta| is capped).
    Delta,
}

/// What a limit covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    /// The whole book.
    Total,
    /// The positions on one underlying.
    Underlying,
    /// The positions on one venue.
    Venue,
    /// The positions with one counterparty.
    Counterparty,
    /// The positions of one internal book (strategy).
    Book,
}

impl LimitScope {
    /// The grouping of positions the scope selects by (`None` for the whole book).
    pub fn grouping(self) -> Option<Grouping> {
        match self {
            LimitScope::Total => None,
            LimitScope::Underlying => Some(Grouping::Underlying),
            LimitScope::Venue => Some(Grouping::Venue),
            LimitScope::Counterparty => Some(Grouping::Counterparty),
            LimitScope::Book => Some(Grouping::Book),
        }
    }
}

/// A ceiling on one figure of the book or of a group of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// What it covers.
    pub scope: LimitScope,
    /// The underlying, venue, counterparty or book name (absent for `total`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The figure capped.
    pub measure: LimitMeasure,
    /// Confidence level of a VaR or ES limit, in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The ceiling, reporting currency (USD for delta), above 0.
    pub limit: f64,
}

impl Limit {
    /// Why this limit cannot be kept (the field and the reason), if it cannot.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(self.limit.is_finite() && self.limit > 0.0) {
            return Some(("limit", format!("must be above 0, found {}", self.limit)));
        }
        match (self.scope, &self.name) {
            (LimitScope::Total, Some(_)) => {
                return Some(("name", "a total limit names no group".into()))
            }
            (LimitScope::Total, None) => {}
            (_, None) => return Some(("name", "a group limit needs the group's name".into())),
            (_, Some(_)) => {}
        }
        match (self.measure, self.confidence) {
            (LimitMeasure::Delta, Some(_)) => {
                Some(("confidence", "a delta limit has no confidence level".into()))
            }
            (LimitMeasure::Delta, None) => None,
            (_, None) => Some(("confidence", "a VaR or ES limit needs one".into())),
            (_, Some(a)) if !(a > 0.0 && a < 1.0) => {
                Some(("confidence", format!("must lie in (0, 1), found {a}")))
            }
            (_, Some(_)) => None,
        }
    }

    /// Whether `other` caps the same figure (scope, name, measure and level), whatever its
    /// ceiling.
    pub fn same_figure(&self, other: &Limit) -> bool {
        (self.scope, &self.name, self.measure, self.confidence)
            == (other.scope, &other.name, other.measure, other.confidence)
    }
}

/// A limit with the live figure it caps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitStatus {
    /// The limit.
    #[serde(flatten)]
    pub limit: Limit,
    /// The figure now (|delta| for a delta limit).
    pub value: f64,
    /// value / limit.
    pub utilisation: f64,
    /// value > limit.
    pub breached: bool,
}

impl LimitStatus {
    /// `limit` against its figure `value`.
    pub fn of(limit: Limit, value: f64) -> LimitStatus {
        LimitStatus {
            utilisation: value / limit.limit,
            breached: value > limit.limit,
            value,
            limit,
        }
    }
}

/// The net USD delta a delta limit of `scope` / `name` caps, from the exposure rows (the
/// whole book's is the sum over underlyings).
pub fn net_delta(rows: &[ExposureRow], limit: &Limit) -> f64 {
    let grouping = limit.scope.grouping().unwrap_or(Grouping::Underlying);
    rows.iter()
        .filter(|r| r.group == grouping)
        .filter(|r| limit.scope == LimitScope::Total || limit.name.as_deref() == Some(&r.key))
        .map(|r| r.delta_usd)
        .sum()
}
