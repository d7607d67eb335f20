//! Who owns the tail: Euler (component), marginal and incremental VaR and ES of positions
//! and of their groups (underlying, venue, counterparty, book), each with a standard error.
//!
//! Let L = Σ_i L_i be the portfolio loss and L_i = s_i·ℓ_i the loss of entity i, with s_i
//! its size (the position's quantity; 1 for a group) and ℓ_i its loss per unit of size.
//! - Marginal VaR ∂VaR/∂s_i = E[ℓ_i | L = VaR], estimated by the mean of ℓ_i over a window of
//!   paths ranked around the VaR path (uniform kernel, half-width √(n·a(1−a)) ranks, the
//!   same window as the VaR standard error; Epperlein–Smillie); its standard error is the
//!   window's standard deviation over √(window size).
//! - Marginal ES ∂ES/∂s_i = E[ℓ_i | L ≥ VaR], the tail mean with the same fractional boundary
//!   weight as the portfolio ES; its standard error comes from the influence function
//!   ((ℓ_i − mVaR_i)·1{L ≥ VaR})/(1 − a), so the components' errors are consistent with the
//!   portfolio ES error (they sum to its influence function).
//! - Component = size × marginal (Euler). Component ES add up to the portfolio ES exactly
//!   (up to rounding); component VaR add up to the window's mean loss, which differs from
//!   VaR by the window's smoothing: both additivity errors are reported.
//! - Incremental = VaR(book) − VaR(book without the entity), on common random numbers, with
//!   the paired standard error of [`crate::risk::measures::change`].
//!
//! Memory: the first pass keeps one P&L per path. Per-entity losses are computed only on a
//! second pass over the tail and window paths, regenerated from their (seed, block) streams,
//! and summed on the fly; incremental measures take full passes over batches of
//! [`INCREMENTAL_BATCH`] entities, each one P&L vector.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::book::grouping::Grouping;
use crate::book::positions::Book;
use crate::input::job::Job;
use crate::mc::paths::PathMove;
use crate::mc::shocks::BLOCK_PATHS;
use crate::mc::simulation::Simulator;
use crate::pricing::revaluation::Revaluer;
use crate::risk::measures::{
    change, nonnegative_variance, tail_mass, var_es, RiskMeasure, TailMass,
};

/// Entities whose "book without it" P&L vectors are held at once by the incremental pass.
pub const INCREMENTAL_BATCH: usize = 16;

/// A position or group of positions, as a linear function of the netted instruments'
/// per-unit P&L.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// How the entity groups positions.
    pub group: Grouping,
    /// Position id, or the group's key (underlying, venue, counterparty or book name).
    pub key: String,
    /// The position's quantity; 1 for a group (marginals of a group are per unit of scale).
    pub size: f64,
    /// (instrument index, coins per unit of size).
    weights: Vec<(usize, f64)>,
}

impl Entity {
    /// A single position of `size` (its quantity) holding `instrument`, one coin per unit.
    pub fn position(key: String, size: f64, instrument: usize) -> Entity {
        Entity {
            group: Grouping::Position,
            key,
            size,
            weights: vec![(instrument, 1.0)],
        }
    }

    /// Loss per unit of size on a path, from the instruments' per-unit P&L.
    fn unit_loss(&self, instrument_pnl: &[f64]) -> f64 {
        -self
            .weights
            .iter()
            .map(|&(i, w)| w * instrument_pnl[i])
            .sum::<f64>()
    }
}

/// The entities of `group` in `book`, whose netted instruments are
/// indexed by `instrument_of[position]`. Groups are sorted by key; positions keep book order.
pub fn entities(book: &Book, instrument_of: &[usize], group: Grouping) -> Vec<Entity> {
    if group == Grouping::Position {
        return book
            .positions
            .iter()
            .zip(instrument_of)
            .map(|(p, &i)| Entity {
                group,
                key: p.id.clone(),
                size: p.quantity,
                weights: vec![(i, p.multiplier)],
            })
            .collect();
    }
    let mut by_key: BTreeMap<&str, BTreeMap<usize, f64>> = BTreeMap::new();
    for (p, &i) in book.positions.iter().zip(instrument_of) {
        *by_key
            .entry(group.key_of(p))
            .or_default()
            .entry(i)
            .or_default() += p.units();
    }
    by_key
        .into_iter()
        .map(|(key, weights)| Entity {
            group,
            key: key.to_owned(),
            size: 1.0,
            weights: weights.into_iter().collect(),
        })
        .collect()
}

/// Per-path losses of entities, visited block by block (the blocks of [`BLOCK_PATHS`] paths
/// the simulation uses, so tail paths can be regenerated).
pub trait EntityLosses: Sync {
    /// Number of entities.
    fn entity_count(&self) -> usize;
    /// Calls `visit(path, losses)` for every path of `block` that `wanted(path)` accepts,
    /// `losses[e]` being entity e's loss per unit of size on that path (paths not wanted
    /// need not be revalued).
    fn visit_block(
        &self,
        block: u64,
        wanted: &dyn Fn(u64) -> bool,
        visit: &mut dyn FnMut(u64, &[f64]),
    );
}

/// Entity losses on the simulator's own paths.
pub struct SimulatedLosses<'a> {
    /// The simulator whose paths (regenerated block by block) the losses are taken on.
    pub simulator: &'a Simulator,
    /// The entities whose losses per unit of size are visited, in this order.
    pub entities: &'a [Entity],
}

impl EntityLosses for SimulatedLosses<'_> {
    fn entity_count(&self) -> usize {
        self.entities.len()
    }

    fn visit_block(
        &self,
        block: u64,
        wanted: &dyn Fn(u64) -> bool,
        visit: &mut dyn FnMut(u64, &[f64]),
    ) {
        let revaluer = self.simulator.revaluer();
        let mut unit_losses = UnitLosses::new(revaluer, self.entities);
        self.simulator.visit_block(block, |path, moves| {
            if wanted(path) {
                visit(path, unit_losses.on(moves));
            }
        });
    }
}

/// Reads entities' losses per unit of size off a path's moves (reusing its buffers).
pub struct UnitLosses<'a> {
    revaluer: &'a Revaluer,
    entities: &'a [Entity],
    instrument_pnl: Vec<f64>,
    losses: Vec<f64>,
}

impl<'a> UnitLosses<'a> {
    /// Buffers for `entities`' losses revalued by `revaluer`.
    pub fn new(revaluer: &'a Revaluer, entities: &'a [Entity]) -> UnitLosses<'a> {
        UnitLosses {
            revaluer,
            entities,
            instrument_pnl: vec![0.0; revaluer.instrument_count()],
            losses: vec![0.0; entities.len()],
        }
    }

    /// Each entity's loss per unit of size on the path of `moves`, in entity order.
    pub fn on(&mut self, moves: PathMove) -> &[f64] {
        self.revaluer.unit_pnl(moves, &mut self.instrument_pnl);
        for (loss, e) in self.losses.iter_mut().zip(self.entities) {
            *loss = e.unit_loss(&self.instrument_pnl);
        }
        &self.losses
    }
}

/// The paths the Euler estimators read at one confidence level, chosen from the portfolio
/// P&L of the first pass.
#[derive(Debug, Clone, PartialEq)]
pub struct TailPlan {
    /// Confidence level a, as a fraction (0.99 = 99 %).
    pub confidence: f64,
    /// Number of paths n.
    pub paths: usize,
    /// Portfolio VaR and ES (as [`var_es`] reports them).
    pub measure: RiskMeasure,
    /// The exact tail mass n(1 − a), in paths.
    mass: TailMass,
    /// For each path read: (tail weight in [0, 1], inside the VaR window), by path index.
    members: BTreeMap<u64, (f64, bool)>,
    /// Number of paths in the VaR window.
    window_len: usize,
}

impl TailPlan {
    /// Ranks the losses (ties by path index, so the plan is deterministic) and marks the
    /// tail (the ⌊m⌋ largest losses with weight 1 and the next with weight m − ⌊m⌋,
    /// m = n(1 − a)) and the window of ranks ⌊m⌋+1 ± √(n·a(1 − a)) around the VaR path.
    pub fn new(pnl: &[f64], confidence: f64) -> TailPlan {
        let n = pnl.len();
        let mass = tail_mass(n, confidence);
        let whole = mass.whole;
        let half_window =
            ((n as f64 * confidence * (1.0 - confidence)).sqrt().round() as usize).max(1);
        let keep = (whole + 1 + half_window).min(n);
        let mut order: Vec<u64> = (0..n as u64).collect();
        let worst_first =
            |a: &u64, b: &u64| pnl[*a as usize].total_cmp(&pnl[*b as usize]).then(a.cmp(b));
        if keep < n {
            order.select_nth_unstable_by(keep - 1, worst_first);
            order.truncate(keep);
        }
        order.sort_unstable_by(worst_first);
        let var_rank = whole; // 0-based rank of the VaR path
        let window = var_rank.saturating_sub(half_window)..(var_rank + half_window + 1).min(keep);
        let mut members = BTreeMap::new();
        for (rank, &path) in order.iter().enumerate() {
            let weight = if rank < whole {
                1.0
            } else if rank == whole {
                mass.fraction
            } else {
                0.0
            };
            let in_window = window.contains(&rank);
            if weight > 0.0 || in_window {
                members.insert(path, (weight, in_window));
            }
        }
        TailPlan {
            confidence,
            paths: n,
            measure: var_es(pnl, &[confidence])[0],
            mass,
            members,
            window_len: window.len(),
        }
    }

    /// The blocks holding a path of the plan, ascending.
    fn blocks(&self) -> Vec<u64> {
        let mut blocks: Vec<u64> = self
            .members
            .keys()
            .map(|p| p / BLOCK_PATHS as u64)
            .collect();
        blocks.dedup();
        blocks
    }
}

/// Sums over the plan's paths, per entity, of the loss per unit of size and its square.
#[derive(Debug, Clone)]
struct Sums {
    tail: Vec<f64>,
    tail_squares: Vec<f64>,
    window: Vec<f64>,
    window_squares: Vec<f64>,
}

impl Sums {
    fn zero(entities: usize) -> Sums {
        Sums {
            tail: vec![0.0; entities],
            tail_squares: vec![0.0; entities],
            window: vec![0.0; entities],
            window_squares: vec![0.0; entities],
        }
    }

    fn add(&mut self, losses: &[f64], tail_weight: f64, in_window: bool) {
        for (e, &l) in losses.iter().enumerate() {
            self.tail[e] += tail_weight * l;
            self.tail_squares[e] += tail_weight * l * l;
            if in_window {
                self.window[e] += l;
                self.window_squares[e] += l * l;
            }
        }
    }

    fn merge(mut self, other: &Sums) -> Sums {
        for (a, b) in [
            (&mut self.tail, &other.tail),
            (&mut self.tail_squares, &other.tail_squares),
            (&mut self.window, &other.window),
            (&mut self.window_squares, &other.window_squares),
        ] {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        self
    }
}

/// Marginal VaR and ES per unit of size of every entity, with standard errors (component =
/// size × marginal).
pub fn marginals(plan: &TailPlan, losses: &dyn EntityLosses) -> Vec<RiskMeasure> {
    let count = losses.entity_count();
    let partial: Vec<Sums> = plan
        .blocks()
        .into_par_iter()
        .map(|block| {
            let mut sums = Sums::zero(count);
            let wanted = |path: u64| plan.members.contains_key(&path);
            losses.visit_block(block, &wanted, &mut |path, l| {
                if let Some(&(weight, in_window)) = plan.members.get(&path) {
                    sums.add(l, weight, in_window);
                }
            });
            sums
        })
        .collect();
    let sums = partial.iter().fold(Sums::zero(count), Sums::merge);
    (0..count).map(|e| marginal_of(plan, &sums, e)).collect()
}

fn marginal_of(plan: &TailPlan, sums: &Sums, e: usize) -> RiskMeasure {
    let a = plan.confidence;
    let n = plan.paths as f64;
    let tail_mass = plan.mass.total();
    let w = plan.window_len as f64;
    let var = sums.window[e] / w;
    let window_variance = nonnegative_variance(sums.window_squares[e] / w - var * var);
    let es = sums.tail[e] / tail_mass;
    // X = (ℓ − mVaR)·1{tail}: E[X] and E[X²] over all n paths from the tail sums.
    let mean = (sums.tail[e] - var * tail_mass) / n;
    let square = (sums.tail_squares[e] - 2.0 * var * sums.tail[e] + var * var * tail_mass) / n;
    RiskMeasure {
        confidence: a,
        var,
        es,
        var_stderr: (window_variance / w).sqrt(),
        es_stderr: (nonnegative_variance(square - mean * mean) / n).sqrt() / (1.0 - a),
    }
}

/// VaR(book) − VaR(book without entity e) and the same for ES, for every entity, with paired
/// standard errors. `pnl` is the book's per-path P&L from the first pass; `sizes[e]` scales
/// entity e's unit loss into its loss.
pub fn incrementals(
    pnl: &[f64],
    confidence: f64,
    sizes: &[f64],
    losses: &dyn EntityLosses,
) -> Vec<RiskMeasure> {
    let book = var_es(pnl, &[confidence])[0];
    let entities: Vec<usize> = (0..losses.entity_count()).collect();
    entities
        .chunks(INCREMENTAL_BATCH)
        .flat_map(|batch| {
            without_each(pnl, batch, sizes, losses)
                .iter()
                .map(|without_pnl| {
                    let without = var_es(without_pnl, &[confidence])[0];
                    let removal = change(pnl, without_pnl, &book, &without);
                    RiskMeasure {
                        var: -removal.var,
                        es: -removal.es,
                        ..removal
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The book's P&L without each entity of `batch`: pnl + size × unit loss, path by path.
fn without_each(
    pnl: &[f64],
    batch: &[usize],
    sizes: &[f64],
    losses: &dyn EntityLosses,
) -> Vec<Vec<f64>> {
    let width = batch.len();
    let mut rows = vec![0.0; pnl.len() * width];
    rows.par_chunks_mut(BLOCK_PATHS * width)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * BLOCK_PATHS;
            losses.visit_block(block as u64, &|_| true, &mut |path, l| {
                let i = path as usize;
                for (j, &e) in batch.iter().enumerate() {
                    out[(i - first) * width + j] = pnl[i] + sizes[e] * l[e];
                }
            });
        });
    (0..width)
        .map(|j| rows.iter().skip(j).step_by(width).copied().collect())
        .collect()
}

/// One entity's contributions at one confidence level (JSON `contributions` items).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// How the entity groups positions.
    pub group: Grouping,
    /// Position id, or the group's key (underlying, venue, counterparty or book name).
    pub key: String,
    /// Confidence level a, as a fraction (0.99 = 99 %).
    pub confidence: f64,
    /// Quantity of the position (1 for a group).
    pub size: f64,
    /// Euler component VaR = size × marginal VaR, in reporting currency (USD); positive adds to the
    /// loss.
    pub component_var: f64,
    /// Monte Carlo standard error of `component_var`, in reporting currency (USD).
    pub component_var_stderr: f64,
    /// Euler component ES = size × marginal ES, in reporting currency (USD); the components add up
    /// to the portfolio ES.
    pub component_es: f64,
    /// Monte Carlo standard error of `component_es`, in reporting currency (USD).
    pub component_es_stderr: f64,
    /// ∂VaR/∂size: per unit of quantity for a position, per unit of scale for a group.
    pub marginal_var: f64,
    /// Monte Carlo standard error of `marginal_var`, in the same units.
    pub marginal_var_stderr: f64,
    /// ∂ES/∂size, the mean loss per unit of size over the tail beyond VaR: in reporting currency
    /// (USD) per unit of quantity for a position, per unit of scale for a group.
    pub marginal_es: f64,
    /// Monte Carlo standard error of `marginal_es`, in the same units.
    pub marginal_es_stderr: f64,
    /// VaR(book) − VaR(book without the entity), in reporting currency (USD): positive when the
    /// entity adds risk.
    pub incremental_var: f64,
    /// Standard error of `incremental_var`, paired on common random numbers, in reporting currency
    /// (USD).
    pub incremental_var_stderr: f64,
    /// ES(book) − ES(book without the entity), in reporting currency (USD): positive when the
    /// entity adds risk.
    pub incremental_es: f64,
    /// Standard error of `incremental_es`, paired on common random numbers, in reporting currency
    /// (USD).
    pub incremental_es_stderr: f64,
}

/// How far the components are from adding up to the portfolio figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Additivity {
    /// Confidence level a, as a fraction (0.99 = 99 %).
    pub confidence: f64,
    /// Portfolio VaR in reporting currency (USD), positive = loss.
    pub var: f64,
    /// Portfolio ES in reporting currency (USD), positive = loss.
    pub es: f64,
    /// Σ component VaR over the entities, in reporting currency (USD).
    pub component_var_sum: f64,
    /// Σ component ES over the entities, in reporting currency (USD).
    pub component_es_sum: f64,
    /// Σ component VaR − VaR.
    pub var_error: f64,
    /// Σ component ES − ES.
    pub es_error: f64,
}

/// Contributions of every entity at the plan's level, and their additivity.
pub fn contributions(
    pnl: &[f64],
    plan: &TailPlan,
    entities: &[Entity],
    losses: &dyn EntityLosses,
) -> (Vec<Contribution>, Additivity) {
    let sizes: Vec<f64> = entities.iter().map(|e| e.size).collect();
    let marginal = marginals(plan, losses);
    let incremental = incrementals(pnl, plan.confidence, &sizes, losses);
    let rows: Vec<Contribution> = entities
        .iter()
        .zip(marginal.iter().zip(&incremental))
        .map(|(e, (m, inc))| Contribution {
            group: e.group,
            key: e.key.clone(),
            confidence: plan.confidence,
            size: e.size,
            component_var: e.size * m.var,
            component_var_stderr: e.size.abs() * m.var_stderr,
            component_es: e.size * m.es,
            component_es_stderr: e.size.abs() * m.es_stderr,
            marginal_var: m.var,
            marginal_var_stderr: m.var_stderr,
            marginal_es: m.es,
            marginal_es_stderr: m.es_stderr,
            incremental_var: inc.var,
            incremental_var_stderr: inc.var_stderr,
            incremental_es: inc.es,
            incremental_es_stderr: inc.es_stderr,
        })
        .collect();
    let component_var_sum = rows.iter().map(|r| r.component_var).sum();
    let component_es_sum = rows.iter().map(|r| r.component_es).sum();
    let additivity = Additivity {
        confidence: plan.confidence,
        var: plan.measure.var,
        es: plan.measure.es,
        component_var_sum,
        component_es_sum,
        var_error: component_var_sum - plan.measure.var,
        es_error: component_es_sum - plan.measure.es,
    };
    (rows, additivity)
}
/// Contributions of the entities of `group` at `level` to the run whose per-path P&L
/// `pnl` came from `simulator` (full revaluation): the tail paths are regenerated and each
/// entity's loss read off the netted instruments, on the simulator's workers.
pub fn contributions_of(
    job: &Job,
    simulator: &Simulator,
    pnl: &[f64],
    group: Grouping,
    level: f64,
) -> (Vec<Contribution>, Additivity) {
    let revaluer = simulator.revaluer();
    let instrument_of: Vec<usize> = job
        .aggregated
        .holdings
        .iter()
        .map(|&h| revaluer.instrument_index(h))
        .collect();
    let entities = entities(&job.book, &instrument_of, group);
    let losses = SimulatedLosses {
        simulator,
        entities: &entities,
    };
    let plan = TailPlan::new(pnl, level);
    simulator.install(|| contributions(pnl, &plan, &entities, &losses))
}
