//! Venue-by-venue margin along the simulated paths: equity against initial and maintenance
//! margin at every step, margin calls, liquidations and the buffers that would avoid them.
//!
//! On each path and at the end of each step k (time t_k) every venue's equity is its
//! collateral at its haircut plus its derivatives' value ([`VenueBook::equity`]) and its
//! requirements are recomputed on the path's prices and vols ([`VenueBook::requirement`]).
//! Equity below initial margin is a margin call; below maintenance margin a liquidation: the
//! venue's derivatives are closed at that step, losing `liquidation_fee` × their notional,
//! and contribute no later P&L on that path (its collateral stays and keeps moving).
//!
//! A venue with a failure rate fails over the horizon when its latent factor `{venue}.default`
//! (correlated with the market through `[model.correlation]`: a crash can make a failure
//! likelier) falls below the quantile of its horizon probability; the fund then loses the
//! venue's positive equity at the horizon × its loss given default.
//!
//! Buffers are read off the same paths (common random numbers). A path needs
//! max(0, −min_k(equity_k − maintenance_k)) more USD on the venue never to be liquidated
//! (positions kept), so the smallest extra collateral with a liquidation probability at most
//! the target is a quantile of that need: monotone in the target and reproducible. A central
//! reserve moved to a venue `delay` hours after its first margin call must cover, per path,
//! every venue's need from the reserve's arrival on; a liquidation before it arrives cannot
//! be avoided by any reserve.

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::input::job::Job;
use crate::margin::venue_book::{Requirement, VenueBook};
use crate::mc::paths::HorizonMoves;
use crate::mc::simulation::{SimulationSettings, Simulator};
use crate::pricing::revaluation::Revaluer;
use crate::risk::measures::{count_at_rate, var_es, RiskMeasure};

/// What a margin projection is asked for.
#[derive(Debug, Clone)]
pub struct MarginRequest {
    /// Paths, seed, horizon, steps and threads.
    pub settings: SimulationSettings,
    /// Target liquidation probability of the buffers (0.01).
    pub target: f64,
    /// Hours before a central reserve reaches a venue after its first margin call.
    pub reserve_delay_hours: f64,
}

/// A probability or mean with its Monte Carlo standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub stderr: f64,
}

/// One venue's projection (JSON `venues` items).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VenueMargin {
    /// Venue name.
    pub name: String,
    /// `linear` or `portfolio`.
    pub margin: String,
    /// Equity today, USD: collateral at its haircut plus the derivatives' value.
    pub equity: f64,
    /// Initial margin today, USD.
    pub initial_margin: f64,
    /// Maintenance margin today, USD.
    pub maintenance_margin: f64,
    /// Maintenance margin over equity today (above 1: liquidated today).
    pub utilisation: f64,
    /// Probability of a margin call (equity below initial margin) within the horizon.
    pub p_margin_call: f64,
    /// Its standard error.
    pub p_margin_call_stderr: f64,
    /// Probability of a liquidation (equity below maintenance margin) within the horizon.
    pub p_liquidation: f64,
    /// Its standard error.
    pub p_liquidation_stderr: f64,
    /// Mean hours to the first margin call, over paths with one (null without any).
    pub hours_to_margin_call: Option<Estimate>,
    /// Mean hours to the liquidation, over paths with one (null without any).
    pub hours_to_liquidation: Option<Estimate>,
    /// Mean close-out loss (fee × notional at liquidation) over all paths, USD.
    pub expected_liquidation_loss: f64,
    /// Its standard error.
    pub expected_liquidation_loss_stderr: f64,
    /// The smallest extra USD collateral with a liquidation probability at most the target.
    pub buffer: f64,
    /// Probability that the venue fails within the horizon.
    pub p_default: Estimate,
    /// Mean loss from its failure (loss given default × positive equity), USD.
    pub expected_default_loss: Estimate,
}

/// The fund's projection (JSON `fund`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FundMargin {
    /// Probability that some venue makes a margin call within the horizon.
    pub p_margin_call: Estimate,
    /// Probability that some venue liquidates within the horizon.
    pub p_liquidation: Estimate,
    /// Mean close-out loss over all venues and paths, USD.
    pub expected_liquidation_loss: Estimate,
    /// VaR and ES of the fund's P&L over the horizon without liquidations.
    pub measures: Vec<RiskMeasure>,
    /// The same with liquidations: liquidated derivatives frozen at their close-out, fees lost.
    pub measures_with_liquidation: Vec<RiskMeasure>,
    /// Sum of the venues' buffers, USD.
    pub buffers: f64,
    /// The smallest central reserve, moved after `reserve_delay_hours`, with a probability of
    /// any liquidation at most the target (null when liquidations before it can arrive
    /// already exceed the target).
    pub central_reserve: Option<f64>,
    /// Probability of a liquidation before a reserve could arrive: the floor any reserve
    /// leaves.
    pub p_liquidation_before_reserve: Estimate,
    /// VaR and ES with liquidations and venue failures.
    pub measures_with_defaults: Vec<RiskMeasure>,
    /// ES of the venue-failure losses alone, per level.
    pub counterparty_es: Vec<f64>,
    /// Share of the ES with failures owned by the failure losses (their mean over the same tail
    /// paths over that ES), per level.
    pub counterparty_es_share: Vec<f64>,
}

/// The whole projection (`tailrisk margin --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MarginReport {
    /// Paths simulated.
    pub paths: u64,
    /// Seed.
    pub seed: u64,
    /// Horizon in days.
    pub horizon_days: f64,
    /// Steps at which margin is checked.
    pub steps: u32,
    /// Hours per step.
    pub step_hours: f64,
    /// Target liquidation probability of the buffers.
    pub target: f64,
    /// Hours before a central reserve reaches a venue.
    pub reserve_delay_hours: f64,
    /// Per `[[venue]]`, in file order.
    pub venues: Vec<VenueMargin>,
    /// The fund.
    pub fund: FundMargin,
}

/// One venue on one path.
#[derive(Debug, Clone, Copy, Default)]
struct VenuePath {
    call_step: Option<u32>,
    liquidation_step: Option<u32>,
    /// Derivatives' value frozen at the liquidation.
    frozen: Option<f64>,
    fee: f64,
    /// min_k (equity_k − maintenance_k) with positions kept.
    min_excess: f64,
    /// The reserve's arrival step, once a margin call set it.
    arrival: Option<u32>,
    /// min excess before the reserve's arrival (after the first call), and from it on.
    min_before_arrival: f64,
    min_after_arrival: f64,
    /// Loss from the venue's failure on the path (0 without one).
    default_loss: f64,
    defaulted: bool,
}

/// One path's outcome.
#[derive(Debug, Clone)]
struct PathOutcome {
    pnl: f64,
    pnl_with_liquidation: f64,
    venues: Vec<VenuePath>,
}

/// Projects every `[[venue]]` of `job` along the paths of `request`; `progress` is called
/// with the number of paths of each finished block.
pub fn project_margin(
    job: &Job,
    request: &MarginRequest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<MarginReport> {
    let job = &job.clone().simulating_venue_defaults()?;
    let settings = request.settings;
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?;
    let step_days = settings.horizon_days / f64::from(settings.steps);
    let revaluers: Vec<Revaluer> = (0..=settings.steps)
        .map(|k| {
            let t = step_days * f64::from(k);
            Revaluer::on_paths(&job.aggregated, &job.model, t)
        })
        .collect();
    let venues = VenueBook::all(job, &revaluers[0]);
    let failure_slots: Vec<Option<usize>> = venues
        .iter()
        .map(|v| {
            job.model
                .defaults
                .iter()
                .find(|d| d.name == v.spec.name)
                .map(|d| d.slot + 1)
        })
        .collect();
    let delay_steps = (request.reserve_delay_hours / (step_days * 24.0)).ceil() as u32;
    let today = today(job, &venues, &revaluers[0]);
    let blocks: Vec<u64> = (0..simulator.block_count()).collect();
    let outcomes: Vec<Vec<PathOutcome>> = simulator.install(|| {
        blocks
            .par_iter()
            .map(|&b| {
                let context = BlockContext {
                    simulator: &simulator,
                    venues: &venues,
                    revaluers: &revaluers,
                    failure_slots: &failure_slots,
                    delay_steps,
                    today: &today,
                };
                let paths = project_block(&context, b);
                progress(paths.len() as u64);
                paths
            })
            .collect()
    });
    let outcomes: Vec<PathOutcome> = outcomes.into_iter().flatten().collect();
    Ok(summarise(
        job, request, &venues, &today, &outcomes, step_days,
    ))
}

/// Every venue's equity, requirements, derivatives' value and close-out fee today.
fn today(job: &Job, venues: &[VenueBook], revaluer: &Revaluer) -> Vec<Today> {
    let mut flat = HorizonMoves::default();
    flat.reset(1, job.model.underlyings.len(), job.model.surface_width);
    let m = flat.row(0);
    let mut unit = vec![0.0; revaluer.instrument_count()];
    revaluer.unit_pnl(m, &mut unit);
    venues
        .iter()
        .map(|v| Today {
            equity: v.equity(&unit),
            requirement: v.requirement(revaluer, m),
            derivatives: v.derivatives_value(&unit),
            fee: v.spec.liquidation_fee * v.notional(revaluer, m),
        })
        .collect()
}

/// What every block of the projection reads.
struct BlockContext<'a> {
    simulator: &'a Simulator,
    venues: &'a [VenueBook],
    /// One per step, the first at the valuation time.
    revaluers: &'a [Revaluer],
    /// Per venue, the surface slot of its failure's move (−1 on failure), if it can fail.
    failure_slots: &'a [Option<usize>],
    delay_steps: u32,
    /// Per venue, today's equity, requirements, derivatives' value and close-out fee: step 0.
    today: &'a [Today],
}

/// A venue's state at the valuation time, the same on every path.
#[derive(Debug, Clone, Copy)]
struct Today {
    equity: f64,
    requirement: Requirement,
    derivatives: f64,
    fee: f64,
}

impl VenuePath {
    /// Records step `step`'s equity against `requirement`: the excess over maintenance with
    /// positions kept, a first margin call (setting the reserve's arrival), a liquidation
    /// freezing the derivatives at `derivatives` with close-out `fee`.
    fn observe(
        &mut self,
        step: u32,
        equity: f64,
        requirement: Requirement,
        close_out: impl FnOnce() -> (f64, f64),
        delay_steps: u32,
    ) {
        let kept = equity - requirement.maintenance;
        self.min_excess = self.min_excess.min(kept);
        if self.call_step.is_none()
            && self.liquidation_step.is_none()
            && equity < requirement.initial
        {
            self.call_step = Some(step);
            self.arrival = Some(step + delay_steps);
        }
        match self.arrival {
            Some(arrival) if step >= arrival => {
                self.min_after_arrival = self.min_after_arrival.min(kept)
            }
            Some(_) => self.min_before_arrival = self.min_before_arrival.min(kept),
            None => {}
        }
        if self.liquidation_step.is_none() && equity < requirement.maintenance {
            let (derivatives, fee) = close_out();
            self.liquidation_step = Some(step);
            self.frozen = Some(derivatives);
            self.fee = fee;
        }
    }
}

fn project_block(c: &BlockContext, block: u64) -> Vec<PathOutcome> {
    let (simulator, venues, revaluers, delay_steps) =
        (c.simulator, c.venues, c.revaluers, c.delay_steps);
    let paths = simulator.block_len(block);
    let last = revaluers.len() - 1;
    let mut out: Vec<PathOutcome> = (0..paths)
        .map(|_| PathOutcome {
            pnl: 0.0,
            pnl_with_liquidation: 0.0,
            venues: vec![
                VenuePath {
                    min_excess: f64::INFINITY,
                    min_before_arrival: f64::INFINITY,
                    min_after_arrival: f64::INFINITY,
                    ..VenuePath::default()
                };
                venues.len()
            ],
        })
        .collect();
    for outcome in &mut out {
        for ((v, state), t) in venues.iter().zip(&mut outcome.venues).zip(c.today) {
            if v.is_margined() {
                state.observe(
                    0,
                    t.equity,
                    t.requirement,
                    || (t.derivatives, t.fee),
                    delay_steps,
                );
            }
        }
    }
    let mut unit = vec![0.0; revaluers[0].instrument_count()];
    simulator.visit_block_steps(block, |step, moves| {
        let revaluer = &revaluers[step as usize];
        for (i, outcome) in out.iter_mut().enumerate() {
            let m = moves.row(i);
            revaluer.unit_pnl(m, &mut unit);
            for (v, state) in venues.iter().zip(outcome.venues.iter_mut()) {
                if !v.is_margined() {
                    continue;
                }
                let requirement = v.requirement(revaluer, m);
                let equity = v.equity(&unit);
                let close_out = || {
                    let fee = v.spec.liquidation_fee * v.notional(revaluer, m);
                    (v.derivatives_value(&unit), fee)
                };
                state.observe(step, equity, requirement, close_out, delay_steps);
            }
            if step as usize == last {
                outcome.pnl = revaluer.path_pnl(m);
                let liquidation: f64 = venues
                    .iter()
                    .zip(&outcome.venues)
                    .filter_map(|(v, s)| {
                        s.frozen
                            .map(|frozen| frozen - v.derivatives_value(&unit) - s.fee)
                    })
                    .sum();
                outcome.pnl_with_liquidation = outcome.pnl + liquidation;
                let failing = venues.iter().zip(outcome.venues.iter_mut());
                for ((v, s), slot) in failing.zip(c.failure_slots) {
                    if slot.is_some_and(|slot| m.surface[slot] < 0.0) {
                        s.defaulted = true;
                        let value = v.value_at_failure(&unit, s.frozen) - s.fee;
                        s.default_loss = v.spec.loss_given_default * value.max(0.0);
                    }
                }
            }
        }
    });
    out
}

fn summarise(
    job: &Job,
    request: &MarginRequest,
    venues: &[VenueBook],
    today: &[Today],
    outcomes: &[PathOutcome],
    step_days: f64,
) -> MarginReport {
    let step_hours = step_days * 24.0;
    let rows: Vec<VenueMargin> = venues
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let states: Vec<&VenuePath> = outcomes.iter().map(|o| &o.venues[j]).collect();
            let calls = proportion(states.iter().map(|s| s.call_step.is_some()));
            let liquidations = proportion(states.iter().map(|s| s.liquidation_step.is_some()));
            let hours = |step: fn(&VenuePath) -> Option<u32>| {
                mean_of(
                    states
                        .iter()
                        .filter_map(|s| step(s))
                        .map(|k| f64::from(k) * step_hours),
                )
            };
            let loss = mean_of(states.iter().map(|s| s.fee)).unwrap_or(Estimate {
                value: 0.0,
                stderr: 0.0,
            });
            let Today {
                equity,
                requirement,
                ..
            } = today[j];
            VenueMargin {
                name: v.spec.name.clone(),
                margin: v.spec.margin.clone(),
                equity,
                initial_margin: requirement.initial,
                maintenance_margin: requirement.maintenance,
                utilisation: utilisation(requirement.maintenance, equity),
                p_margin_call: calls.value,
                p_margin_call_stderr: calls.stderr,
                p_liquidation: liquidations.value,
                p_liquidation_stderr: liquidations.stderr,
                hours_to_margin_call: hours(|s| s.call_step),
                hours_to_liquidation: hours(|s| s.liquidation_step),
                expected_liquidation_loss: loss.value,
                expected_liquidation_loss_stderr: loss.stderr,
                buffer: smallest_covering(
                    states.iter().map(|s| need(s.min_excess)).collect(),
                    request.target,
                ),
                p_default: proportion(states.iter().map(|s| s.defaulted)),
                expected_default_loss: mean_or_zero(states.iter().map(|s| s.default_loss)),
            }
        })
        .collect();
    let confidence = &job.scenario.run.confidence;
    let pnl: Vec<f64> = outcomes.iter().map(|o| o.pnl).collect();
    let with: Vec<f64> = outcomes.iter().map(|o| o.pnl_with_liquidation).collect();
    let reserve_needs: Vec<f64> = outcomes
        .iter()
        .map(|o| o.venues.iter().map(reserve_need).sum())
        .collect();
    let central = smallest_covering(reserve_needs.clone(), request.target);
    let failure_losses: Vec<f64> = outcomes
        .iter()
        .map(|o| o.venues.iter().map(|s| s.default_loss).sum())
        .collect();
    let with_defaults: Vec<f64> = with
        .iter()
        .zip(&failure_losses)
        .map(|(pnl, loss)| pnl - loss)
        .collect();
    let negated: Vec<f64> = failure_losses.iter().map(|l| -l).collect();
    let measures_with_defaults = var_es(&with_defaults, confidence);
    MarginReport {
        paths: request.settings.paths,
        seed: request.settings.seed,
        horizon_days: request.settings.horizon_days,
        steps: request.settings.steps,
        step_hours,
        target: request.target,
        reserve_delay_hours: request.reserve_delay_hours,
        venues: rows.clone(),
        fund: FundMargin {
            p_margin_call: proportion(
                outcomes
                    .iter()
                    .map(|o| o.venues.iter().any(|s| s.call_step.is_some())),
            ),
            p_liquidation: proportion(
                outcomes
                    .iter()
                    .map(|o| o.venues.iter().any(|s| s.liquidation_step.is_some())),
            ),
            expected_liquidation_loss: mean_of(
                outcomes
                    .iter()
                    .map(|o| o.venues.iter().map(|s| s.fee).sum()),
            )
            .unwrap_or(Estimate {
                value: 0.0,
                stderr: 0.0,
            }),
            measures: var_es(&pnl, confidence),
            measures_with_liquidation: var_es(&with, confidence),
            buffers: rows.iter().map(|r| r.buffer).sum(),
            central_reserve: central.is_finite().then_some(central),
            p_liquidation_before_reserve: proportion(reserve_needs.iter().map(|r| r.is_infinite())),
            counterparty_es: var_es(&negated, confidence).iter().map(|m| m.es).collect(),
            counterparty_es_share: measures_with_defaults
                .iter()
                .map(|m| tail_share(&with_defaults, &failure_losses, m.confidence, m.es))
                .collect(),
            measures_with_defaults,
        },
    }
}

/// The part of ES at level `a` (`es`) owned by `part` (a loss per path): its mean over the
/// ⌈n(1 − a)⌉ worst paths of `pnl` (ties in path order) over `es` — whole paths, where ES
/// weighs the boundary path by its fraction, so exact when n(1 − a) is whole.
fn tail_share(pnl: &[f64], part: &[f64], a: f64, es: f64) -> f64 {
    let mut order: Vec<usize> = (0..pnl.len()).collect();
    order.sort_by(|&i, &j| pnl[i].total_cmp(&pnl[j]).then(i.cmp(&j)));
    let tail = ((pnl.len() as f64) * (1.0 - a)).ceil().max(1.0) as usize;
    let owned = order[..tail.min(order.len())]
        .iter()
        .map(|&i| part[i])
        .sum::<f64>()
        / tail as f64;
    if es > 0.0 {
        owned / es
    } else {
        0.0
    }
}

/// [`mean_of`], 0 ± 0 for no values.
fn mean_or_zero(values: impl Iterator<Item = f64>) -> Estimate {
    mean_of(values).unwrap_or(Estimate {
        value: 0.0,
        stderr: 0.0,
    })
}

/// Maintenance margin over equity: 0 without a requirement, infinite (JSON null) when a
/// requirement meets no positive equity.
fn utilisation(maintenance: f64, equity: f64) -> f64 {
    if maintenance <= 0.0 {
        0.0
    } else if equity <= 0.0 {
        f64::INFINITY
    } else {
        maintenance / equity
    }
}

/// USD a path needs on a venue never to fall below maintenance: −min excess, at least 0.
fn need(min_excess: f64) -> f64 {
    if min_excess.is_finite() {
        (-min_excess).max(0.0)
    } else {
        0.0
    }
}

/// The central reserve a path needs for one venue: nothing without a margin call; infinite
/// if the venue falls below maintenance before the reserve arrives; else its need from then.
fn reserve_need(s: &VenuePath) -> f64 {
    if s.call_step.is_none() {
        return 0.0;
    }
    if s.min_before_arrival < 0.0 {
        return f64::INFINITY;
    }
    need(s.min_after_arrival)
}

/// The smallest x with #(need > x) ≤ ⌊n·target⌋: the (⌊n·target⌋ + 1)-th largest need
/// (⌊n·target⌋ exact for the target as written, [`count_at_rate`]).
fn smallest_covering(mut needs: Vec<f64>, target: f64) -> f64 {
    if needs.is_empty() {
        return 0.0;
    }
    let allowed = count_at_rate(needs.len(), target);
    needs.sort_by(|a, b| b.total_cmp(a));
    needs[allowed.min(needs.len() - 1)]
}

/// Share of `true` with its binomial standard error √(p(1 − p)/n).
fn proportion(flags: impl Iterator<Item = bool>) -> Estimate {
    let (mut hits, mut n) = (0usize, 0usize);
    for flag in flags {
        hits += usize::from(flag);
        n += 1;
    }
    let p = hits as f64 / n.max(1) as f64;
    Estimate {
        value: p,
        stderr: (p * (1.0 - p) / n.max(1) as f64).sqrt(),
    }
}

/// Mean and standard error of the mean (`None` for no values).
fn mean_of(values: impl Iterator<Item = f64>) -> Option<Estimate> {
    let values: Vec<f64> = values.collect();
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Some(Estimate {
        value: mean,
        stderr: (var / n).sqrt(),
    })
}
