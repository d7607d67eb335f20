//! How positions are grouped for exposures, contributions and stress breakdowns: by
//! position, underlying, venue, counterparty or book. One enum for every report, so that an
//! unknown name is an error wherever it is given.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::book::positions::Position;

/// A way of grouping positions (JSON: its lowercase name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// Each position on its own, keyed by its id.
    Position,
    /// By underlying coin.
    Underlying,
    /// By trading venue.
    Venue,
    /// By counterparty (custodian, dealer or venue of clearing).
    Counterparty,
    /// By the fund's internal book (strategy).
    Book,
}

impl Grouping {
    /// Every grouping, in report order.
    pub const ALL: [Grouping; 5] = [
        Grouping::Position,
        Grouping::Underlying,
        Grouping::Venue,
        Grouping::Counterparty,
        Grouping::Book,
    ];

    /// The groupings that gather several positions: the sections of the exposures report and
    /// of a stress scenario's breakdown.
    pub const AGGREGATES: [Grouping; 4] = [
        Grouping::Underlying,
        Grouping::Venue,
        Grouping::Counterparty,
        Grouping::Book,
    ];

    /// The lowercase name used in files, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Position => "position",
            Grouping::Underlying => "underlying",
            Grouping::Venue => "venue",
            Grouping::Counterparty => "counterparty",
            Grouping::Book => "book",
        }
    }

    /// The key of the group `position` falls in (its id under [`Grouping::Position`]).
    pub fn key_of(self, position: &Position) -> &str {
        match self {
            Grouping::Position => &position.id,
            Grouping::Underlying => &position.underlying,
            Grouping::Venue => &position.venue,
            Grouping::Counterparty => &position.counterparty,
            Grouping::Book => &position.book,
        }
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Grouping {
    type Err = String;

    /// Parses a grouping's name; an unknown name is an error listing the known ones.
    fn from_str(text: &str) -> Result<Grouping, String> {
        Grouping::ALL
            .into_iter()
            .find(|g| g.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Grouping::ALL.iter().map(|g| g.name()).collect();
                format!(
                    "unknown grouping '{text}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for g in Grouping::ALL {
            assert_eq!(g.name().parse::<Grouping>(), Ok(g));
            assert_eq!(serde_json::to_string(&g).unwrap(), format!("\"{g}\""));
        }
        let e = "desk".parse::<Grouping>().unwrap_err();
        assert!(e.contains("desk") && e.contains("counterparty"), "{e}");
    }
}
