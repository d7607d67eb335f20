//! What a position holds, independent of who holds it and of how it is valued.
//!
//! Following QuantLib's split, an instrument says *what* it is; [`crate::pricing::black_scholes`] says how it
//! is valued and [`crate::market`] what it is valued on.

use chrono::{DateTime, Utc};

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionType {
    /// The right to buy the underlying at the strike.
    Call,
    /// The right to sell the underlying at the strike.
    Put,
}

impl OptionType {
    /// The positions-file spelling (`call` / `put`).
    pub fn as_str(self) -> &'static str {
        match self {
            OptionType::Call => "call",
            OptionType::Put => "put",
        }
    }
}

/// The currency a contract is quoted, margined and settled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Settlement {
    /// USD-settled (or a USD stablecoin): quantity × multiplier coins of exposure, P&L in USD.
    #[default]
    Linear,
    /// Coin-settled ("inverse", Deribit's BTC and ETH contracts, coin-margined futures): a
    /// future or perpetual has a USD face per contract (`multiplier`) and earns
    /// quantity × face × (1/F_0 − 1/F_h) coins; an option is priced in coin as the USD
    /// Black–Scholes price divided by spot. Coin amounts are worth the simulated spot at the
    /// horizon.
    Inverse,
}

impl Settlement {
    /// The positions-file spelling (`linear` / `inverse`).
    pub fn as_str(self) -> &'static str {
        match self {
            Settlement::Linear => "linear",
            Settlement::Inverse => "inverse",
        }
    }
}

/// A European option contract on one underlying.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionContract {
    /// Call or put.
    pub option_type: OptionType,
    /// Strike in the reporting currency per unit of underlying.
    pub strike: f64,
    /// Expiry instant (UTC).
    pub expiry: DateTime<Utc>,
    /// The option's own annualised mark vol; `None` means the market's ATM vol.
    pub implied_vol: Option<f64>,
}

/// The kind of instrument a position holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Instrument {
    /// The coin itself: worth quantity × S.
    Spot,
    /// A perpetual swap: its price moves one-for-one with spot, value settled as margin; it
    /// accrues funding when the model gives its underlying a funding rate.
    Perpetual,
    /// A futures contract: F moves one-for-one with spot unless the underlying has a basis
    /// (then F = S·e^{y·τ} converges to spot at `expiry`, which is required).
    Future {
        /// Expiry instant (UTC), if the positions file gives one.
        expiry: Option<DateTime<Utc>>,
    },
    /// A European option.
    Option(OptionContract),
    /// A balance held in a currency (`underlying`): a coin moves with its spot factor like
    /// spot; USD and USD stablecoins without a risk factor are worth their peg
    /// ([`crate::market::pegged_price`]) and carry no market risk.
    Cash,
}

impl Instrument {
    /// The contract's expiry, where it has one (options, and futures that give one).
    pub fn expiry(&self) -> Option<DateTime<Utc>> {
        match self {
            Instrument::Option(o) => Some(o.expiry),
            Instrument::Future { expiry } => *expiry,
            _ => None,
        }
    }

    /// The positions-file spelling of the kind (`spot`, `perpetual`, `future`, `option`,
    /// `cash`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Instrument::Spot => "spot",
            Instrument::Perpetual => "perpetual",
            Instrument::Future { .. } => "future",
            Instrument::Option(_) => "option",
            Instrument::Cash => "cash",
        }
    }

    /// True when the instrument's value counts in today's book value (spot, balances and
    /// options); perpetuals and futures are margined, so only their P&L counts.
    pub fn carries_value(&self) -> bool {
        matches!(
            self,
            Instrument::Spot | Instrument::Cash | Instrument::Option(_)
        )
    }
}
