//! Black–Scholes pricing of European options on spot with carry b = r (equivalently Black-76
//! on the forward S·e^{rτ}), and their analytic Greeks.
//!
//! Units: prices and Greeks are per one unit of the underlying (one coin). `tau` is in years
//! of 365 days, `vol` and `rate` are annualised (vol as a fraction, 0.6 = 60 %).

use crate::book::instrument::OptionType;

/// Standard normal cumulative distribution function, accurate to double precision through
/// the complementary error function (no polynomial approximation).
#[inline]
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// Standard normal density.
#[inline]
pub fn norm_pdf(x: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Black–Scholes price of a European option with carry b = r. `tau` must be positive.
#[inline]
pub fn bs_price(kind: OptionType, spot: f64, strike: f64, tau: f64, vol: f64, rate: f64) -> f64 {
    let discounted_strike = strike * (-rate * tau).exp();
    let vol_sqrt_tau = vol * tau.sqrt();
    let log_moneyness = (spot / strike).ln() + rate * tau;
    price_from_parts(kind, spot, discounted_strike, log_moneyness, vol_sqrt_tau)
}

/// The Black–Scholes formula written on precomputed parts, the form the revaluation loop
/// uses: `log_moneyness = ln(S/K) + r·τ`, `vol_sqrt_tau = σ·√τ`, `discounted_strike = K·e^{−rτ}`.
#[inline]
pub fn price_from_parts(
    kind: OptionType,
    spot: f64,
    discounted_strike: f64,
    log_moneyness: f64,
    vol_sqrt_tau: f64,
) -> f64 {
    let d1 = log_moneyness / vol_sqrt_tau + 0.5 * vol_sqrt_tau;
    let d2 = d1 - vol_sqrt_tau;
    match kind {
        OptionType::Call => spot * norm_cdf(d1) - discounted_strike * norm_cdf(d2),
        OptionType::Put => discounted_strike * norm_cdf(-d2) - spot * norm_cdf(-d1),
    }
}

/// Value of an option at expiry: its intrinsic value.
#[inline]
pub fn intrinsic(kind: OptionType, spot: f64, strike: f64) -> f64 {
    match kind {
        OptionType::Call => (spot - strike).max(0.0),
        OptionType::Put => (strike - spot).max(0.0),
    }
}

/// Price and analytic sensitivities of one option, per unit of underlying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Greeks {
    /// Option price in the reporting currency.
    pub price: f64,
    /// ∂V/∂S, in units of the underlying (coins).
    pub delta: f64,
    /// ∂²V/∂S², in coins per unit of currency.
    pub gamma: f64,
    /// ∂V/∂σ per one vol point (σ moving by 0.01), in currency.
    pub vega: f64,
    /// Change in value as one calendar day passes (−∂V/∂τ / 365), in currency.
    pub theta: f64,
}

/// A coin-settled ("inverse") option's price and delta in its coin, from its USD Greeks at
/// `spot`: the price V/S (Deribit's mark, coins per coin of underlying) and the delta
/// S·∂(V/S)/∂S = Δ − V/S (Deribit's delta, in coins).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoinGreeks {
    /// Price in coin per unit of underlying.
    pub price: f64,
    /// Delta of the coin value, in coins: Black–Scholes delta − price in coin.
    pub delta: f64,
}

impl Greeks {
    /// The same option quoted in coin at `spot` ([`CoinGreeks`]).
    pub fn in_coin(&self, spot: f64) -> CoinGreeks {
        let price = self.price / spot;
        CoinGreeks {
            price,
            delta: self.delta - price,
        }
    }
}

/// Black–Scholes price and Greeks (carry b = r). `tau` must be positive.
pub fn bs_greeks(
    kind: OptionType,
    spot: f64,
    strike: f64,
    tau: f64,
    vol: f64,
    rate: f64,
) -> Greeks {
    let sqrt_tau = tau.sqrt();
    let vol_sqrt_tau = vol * sqrt_tau;
    let d1 = ((spot / strike).ln() + (rate + 0.5 * vol * vol) * tau) / vol_sqrt_tau;
    let d2 = d1 - vol_sqrt_tau;
    let discounted_strike = strike * (-rate * tau).exp();
    let pdf_d1 = norm_pdf(d1);
    let gamma = pdf_d1 / (spot * vol_sqrt_tau);
    let vega = spot * pdf_d1 * sqrt_tau;
    let time_decay = -spot * pdf_d1 * vol / (2.0 * sqrt_tau);
    let (price, delta, theta_per_year) = match kind {
        OptionType::Call => (
            spot * norm_cdf(d1) - discounted_strike * norm_cdf(d2),
            norm_cdf(d1),
            time_decay - rate * discounted_strike * norm_cdf(d2),
        ),
        OptionType::Put => (
            discounted_strike * norm_cdf(-d2) - spot * norm_cdf(-d1),
            norm_cdf(d1) - 1.0,
            time_decay + rate * discounted_strike * norm_cdf(-d2),
        ),
    };
    Greeks {
        price,
        delta,
        gamma,
        vega: vega * 0.01,
        theta: theta_per_year / crate::DAYS_PER_YEAR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OptionType::{Call, Put};

    fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
        assert!(
            (got - want).abs() <= tol,
            "{what}: got {got}, want {want} ± {tol}"
        );
    }

    /// Hull, Options, Futures and Other Derivatives, Example 15.6 (S=42, K=40, r=10 %,
    /// σ=20 %, T=0.5): call 4.76, put 0.81.
    #[test]
    fn hull_example_prices() {
        assert_close(
            bs_price(Call, 42.0, 40.0, 0.5, 0.2, 0.1),
            4.76,
            0.005,
            "call",
        );
        assert_close(bs_price(Put, 42.0, 40.0, 0.5, 0.2, 0.1), 0.81, 0.005, "put");
    }

    /// Haug, The Complete Guide to Option Pricing Formulas, generalised BSM example with
    /// b = r: S=60, K=65, T=0.25, r=8 %, σ=30 % gives a call of 2.1334.
    #[test]
    fn haug_gbsm_call() {
        assert_close(
            bs_price(Call, 60.0, 65.0, 0.25, 0.3, 0.08),
            2.1334,
            5e-5,
            "call",
        );
    }

    /// Hull's delta-hedging example (S=49, K=50, r=5 %, σ=20 %, T=20 weeks = 0.3846 y):
    /// call 2.40, delta 0.522, gamma 0.066, vega 12.1 per 1.00 of vol, theta −4.31 a year.
    #[test]
    fn hull_greeks_example() {
        let g = bs_greeks(Call, 49.0, 50.0, 0.3846, 0.2, 0.05);
        assert_close(g.price, 2.40, 0.005, "price");
        assert_close(g.delta, 0.522, 0.0005, "delta");
        assert_close(g.gamma, 0.066, 0.0005, "gamma");
        assert_close(g.vega, 0.121, 0.0005, "vega per vol point");
        assert_close(
            g.theta * crate::DAYS_PER_YEAR,
            -4.31,
            0.005,
            "theta per year",
        );
    }

    #[test]
    fn put_call_parity_holds() {
        let (s, k, t, v, r) = (30_000.0, 32_000.0, 0.3, 0.7, 0.04);
        let lhs = bs_price(Call, s, k, t, v, r) - bs_price(Put, s, k, t, v, r);
        assert_close(lhs, s - k * (-r * t).exp(), 1e-8, "parity");
    }

    /// Greeks against central finite differences of the price (an independent route).
    #[test]
    fn greeks_match_finite_differences() {
        let (s, k, t, v, r) = (2_500.0, 2_400.0, 0.2, 0.8, 0.03);
        for kind in [Call, Put] {
            let g = bs_greeks(kind, s, k, t, v, r);
            let p = |s: f64, t: f64, v: f64| bs_price(kind, s, k, t, v, r);
            let hs = 0.01;
            let delta = (p(s + hs, t, v) - p(s - hs, t, v)) / (2.0 * hs);
            let gamma = (p(s + hs, t, v) - 2.0 * p(s, t, v) + p(s - hs, t, v)) / (hs * hs);
            let vega = (p(s, t, v + 1e-5) - p(s, t, v - 1e-5)) / 2e-5 * 0.01;
            let day = 1.0 / crate::DAYS_PER_YEAR;
            let theta = (p(s, t - 1e-3 * day, v) - p(s, t + 1e-3 * day, v)) / 2e-3;
            assert_close(g.delta, delta, 1e-7, "delta");
            assert_close(g.gamma, gamma, 1e-6, "gamma");
            assert_close(g.vega, vega, 1e-6, "vega");
            assert_close(g.theta, theta, 1e-6, "theta");
        }
    }

    #[test]
    fn intrinsic_values() {
        assert_eq!(intrinsic(Call, 110.0, 100.0), 10.0);
        assert_eq!(intrinsic(Put, 110.0, 100.0), 0.0);
        assert_eq!(intrinsic(Put, 90.0, 100.0), 10.0);
    }
}
