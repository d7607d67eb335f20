//! What a trade would change: the book before and after adding trades and removing
//! positions, simulated on common random numbers (the same shocks drive both books, since
//! the random streams depend only on the seed, the block and the model), so the change of
//! VaR and ES has a standard error far below either figure's own.

use std::path::Path;

use serde::Serialize;

use rayon::prelude::*;

use crate::book::aggregate::AggregatedBook;
use crate::book::grouping::Grouping;
use crate::book::positions::{Book, Position};
use crate::error::{Error, Location, Result};
use crate::input::job::Job;
use crate::mc::paths::HorizonMoves;
use crate::mc::shocks::BLOCK_PATHS;
use crate::mc::simulation::{check_finite, SimulationSettings, Simulator};
use crate::pricing::revaluation::Revaluer;
use crate::risk::contributions::{
    contributions, entities, Additivity, Contribution, Entity, EntityLosses, TailPlan, UnitLosses,
};
use crate::risk::measures::{change, var_es, RiskMeasure};
use crate::risk::whatif_cache::{fingerprint, MovesCache};

/// One side of a what-if: the book's value and risk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BookRisk {
    /// Mark-to-market value today, reporting currency.
    pub base_value: f64,
    /// Positions in the book (count).
    pub positions: usize,
    /// VaR and ES per configured level, positive = loss, with standard errors.
    pub measures: Vec<RiskMeasure>,
}

/// The result of `tailrisk whatif` (JSON keys `before`, `after`, `change`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    /// Monte Carlo paths each book is simulated on (count); both books share them.
    pub paths: u64,
    /// Random seed shared by both simulations (common random numbers).
    pub seed: u64,
    /// Horizon in calendar days (365-day year).
    pub horizon_days: f64,
    /// Reporting currency of every value, VaR and ES (`USD` or a coin).
    pub currency: String,
    /// The scenario's book as loaded.
    pub before: BookRisk,
    /// The book with the trades added and the positions removed.
    pub after: BookRisk,
    /// after − before per level; the standard errors are those of the change itself.
    pub change: Vec<RiskMeasure>,
    /// Ids of the trades added and of the positions removed.
    pub trades_added: Vec<String>,
    /// Ids of the positions removed (`--remove`), as given.
    pub positions_removed: Vec<String>,
}

/// The book with `remove` taken out and `trades` added. Removing an id the book does not
/// hold, or adding a trade whose id the book already uses, is an error naming the file.
pub fn modified_book(book: &Book, trades: Option<&Book>, remove: &[String]) -> Result<Book> {
    if let Some(missing) = remove
        .iter()
        .find(|id| !book.positions.iter().any(|p| &p.id == *id))
    {
        return Err(Error::input(
            &book.file,
            Location::File,
            Some("id"),
            format!("cannot remove '{missing}': the book holds no position with that id"),
        ));
    }
    let mut positions: Vec<_> = book
        .positions
        .iter()
        .filter(|p| !remove.contains(&p.id))
        .cloned()
        .collect();
    for trade in trades.map_or(&[][..], |t| &t.positions[..]) {
        if book.positions.iter().any(|p| p.id == trade.id) {
            let file = trades.map_or(book.file.as_path(), |t| t.file.as_path());
            return Err(Error::in_row(
                file,
                trade.row.clone(),
                "id",
                format!(
                    "'{}' is already a position id in {}; give the trade its own id",
                    trade.id,
                    book.file.display()
                ),
            ));
        }
        positions.push(trade.clone());
    }
    Ok(Book {
        file: book.file.clone(),
        positions,
    })
}

/// The positions a what-if adds to the book: the trades, and each removed position with
/// its quantity negated. The modified book's P&L on a path is the book's plus theirs.
pub fn traded_positions(book: &Book, trades: Option<&Book>, remove: &[String]) -> Book {
    let removed = book
        .positions
        .iter()
        .filter(|p| remove.contains(&p.id))
        .map(|p| Position {
            quantity: -p.quantity,
            ..p.clone()
        });
    let added = trades.map_or(&[][..], |t| &t.positions[..]).iter().cloned();
    Book {
        file: trades.map_or(book.file.clone(), |t| t.file.clone()),
        positions: removed.chain(added).collect(),
    }
}

/// Simulates the job's book and the modified one on the same paths and compares them: the
/// modified book's P&L on each path is the book's plus that of the traded positions
/// ([`traded_positions`]), both in USD, converted to the reporting currency afterwards.
/// With `cache`, the book's P&L and the paths' moves are read from (or first written to)
/// that directory ([`crate::risk::whatif_cache`]) and only the trades are revalued; the
/// numbers are the same to the last bit.
pub fn what_if(
    job: &Job,
    trades_file: Option<&Path>,
    remove: &[String],
    settings: SimulationSettings,
    cache: Option<&Path>,
) -> Result<WhatIf> {
    let trades = trades_file
        .map(|path| Book::load(path, &job.market, job.valuation_time))
        .transpose()?;
    let pool = settings.threads.pool()?;
    // the books and the check of the cache do not depend on each other
    let (books, checked) = pool.install(|| {
        rayon::join(
            || Books::build(job, trades, remove, settings.horizon_days),
            || cache.map(|dir| CheckedCache::of(job, settings, dir)),
        )
    });
    let books = books?;
    let usd = match checked.transpose()? {
        None => simulate(job, Some(&books.traded), settings, false)?.0,
        Some(checked) => cached(job, &books.traded, settings, checked)?,
    };
    compare(job, books, usd, remove, settings)
}

/// [`what_if`] on a base run kept in memory (the service's live paths): only the trades
/// are revalued, and the numbers are those of [`what_if`] on the same inputs to the last
/// bit. `base` must be `job`'s.
pub fn what_if_on(
    job: &Job,
    base: &BaseRun,
    trades: Option<Book>,
    remove: &[String],
) -> Result<WhatIf> {
    let settings = base.settings;
    let books = Books::build(job, trades, remove, settings.horizon_days)?;
    let usd = base.with_traded(job, &books.traded)?;
    compare(job, books, usd, remove, settings)
}

/// The job's book's paths kept in memory: its USD P&L and every block's moves, on which
/// what-ifs revalue only their trades ([`what_if_on`]).
#[derive(Debug, Clone)]
pub struct BaseRun {
    settings: SimulationSettings,
    before: Vec<f64>,
    blocks: Vec<HorizonMoves>,
}

impl BaseRun {
    /// Simulates `job`'s paths and revalues its book on them, keeping the moves (about 8
    /// bytes × paths × (1 + 2 × underlyings + surface slots)).
    pub fn simulate(job: &Job, settings: SimulationSettings) -> Result<BaseRun> {
        let (usd, blocks) = simulate(job, None, settings, true)?;
        Ok(BaseRun {
            settings,
            before: usd.before,
            blocks,
        })
    }

    /// The same paths, with what-ifs on them computed on a pool of their own
    /// ([`crate::mc::threads::Threads::for_requests`]).
    pub fn serving_requests(mut self) -> BaseRun {
        self.settings.threads = self.settings.threads.for_requests();
        self
    }

    /// The settings the paths were simulated with.
    pub fn settings(&self) -> SimulationSettings {
        self.settings
    }

    /// The book's USD P&L per path, positive = gain.
    pub fn book_pnl(&self) -> &[f64] {
        &self.before
    }

    /// The USD P&L per path of the positions `revaluer` revalues, on these paths.
    pub fn revalued(&self, revaluer: &Revaluer) -> Result<Vec<f64>> {
        let pool = self.settings.threads.pool()?;
        let blocks: Vec<Vec<f64>> = pool.install(|| {
            self.blocks
                .par_iter()
                .map(|moves| {
                    let mut pnl = vec![0.0; moves.paths()];
                    revaluer.revalue(moves, &mut pnl);
                    pnl
                })
                .collect()
        });
        Ok(blocks.concat())
    }

    /// The book's P&L per path in the job's reporting currency (what its VaR and ES are of),
    /// the same to the last bit as a full-revaluation `run` on these paths.
    pub fn book_pnl_reported(&self, job: &Job) -> Result<Vec<f64>> {
        let coin_log_move = self.coin_log_move(job);
        in_currency(
            job,
            self.before.clone(),
            job.aggregated.base_value(),
            &coin_log_move,
        )
    }

    /// Euler contributions (component, marginal, incremental VaR and ES) of the entities of
    /// `group` at `level` to the book's USD P&L, read off the kept moves: the numbers of
    /// [`crate::risk::contributions::contributions_of`] on the same paths, without
    /// regenerating them.
    pub fn contributions(
        &self,
        job: &Job,
        group: Grouping,
        level: f64,
    ) -> Result<(Vec<Contribution>, Additivity)> {
        let revaluer = Revaluer::on_paths(&job.aggregated, &job.model, self.settings.horizon_days);
        let instrument_of: Vec<usize> = job
            .aggregated
            .holdings
            .iter()
            .map(|&h| revaluer.instrument_index(h))
            .collect();
        let entities = entities(&job.book, &instrument_of, group);
        let losses = KeptLosses {
            blocks: &self.blocks,
            revaluer: &revaluer,
            entities: &entities,
        };
        let plan = TailPlan::new(&self.before, level);
        let pool = self.settings.threads.pool()?;
        Ok(pool.install(|| contributions(&self.before, &plan, &entities, &losses)))
    }

    /// The reporting coin's ln move per path (empty when reporting in USD).
    fn coin_log_move(&self, job: &Job) -> Vec<f64> {
        match job.currency.coin {
            None => Vec::new(),
            Some(coin) => self
                .blocks
                .iter()
                .flat_map(|moves| moves.log_spot_column(coin.model_index))
                .collect(),
        }
    }

    /// The book's and the traded positions' USD P&L and the reporting coin's move.
    fn with_traded(&self, job: &Job, traded: &Revaluer) -> Result<UsdPnl> {
        let traded_pnl = self.revalued(traded)?;
        check_finite(&traded_pnl, 0, &job.model.file)?;
        Ok(UsdPnl {
            before: self.before.clone(),
            traded: traded_pnl,
            coin_log_move: self.coin_log_move(job),
        })
    }
}

/// Entity losses on a base run's kept moves (its blocks of [`BLOCK_PATHS`] paths).
struct KeptLosses<'a> {
    blocks: &'a [HorizonMoves],
    revaluer: &'a Revaluer,
    entities: &'a [Entity],
}

impl EntityLosses for KeptLosses<'_> {
    fn entity_count(&self) -> usize {
        self.entities.len()
    }

    fn visit_block(
        &self,
        block: u64,
        wanted: &dyn Fn(u64) -> bool,
        visit: &mut dyn FnMut(u64, &[f64]),
    ) {
        let mut unit_losses = UnitLosses::new(self.revaluer, self.entities);
        let first = block * BLOCK_PATHS as u64;
        for (i, moves) in self.blocks[block as usize].rows().enumerate() {
            let path = first + i as u64;
            if wanted(path) {
                visit(path, unit_losses.on(moves));
            }
        }
    }
}

/// The what-if's figures from the P&L of the book and of the traded positions.
fn compare(
    job: &Job,
    books: Books,
    usd: UsdPnl,
    remove: &[String],
    settings: SimulationSettings,
) -> Result<WhatIf> {
    let Books {
        trades,
        after_book,
        after,
        traded: _,
    } = books;
    let levels = &job.scenario.run.confidence;
    let currency = &job.currency;
    let UsdPnl {
        before: pnl_before,
        traded: mut pnl_after,
        coin_log_move,
    } = usd;
    for (after, before) in pnl_after.iter_mut().zip(&pnl_before) {
        *after += before;
    }
    let pnl_before = in_currency(job, pnl_before, job.aggregated.base_value(), &coin_log_move)?;
    let pnl_after = in_currency(job, pnl_after, after.base_value(), &coin_log_move)?;
    // each figure computed in one piece, the pieces side by side on the workers
    let pool = settings.threads.pool()?;
    let (before_measures, after_measures) = pool.install(|| {
        rayon::join(
            || var_es(&pnl_before, levels),
            || var_es(&pnl_after, levels),
        )
    });
    let changes = pool.install(|| {
        before_measures
            .par_iter()
            .zip(&after_measures)
            .map(|(b, a)| change(&pnl_before, &pnl_after, b, a))
            .collect()
    });
    Ok(WhatIf {
        paths: settings.paths,
        seed: settings.seed,
        horizon_days: settings.horizon_days,
        currency: currency.name.clone(),
        before: BookRisk {
            base_value: job.base_value(),
            positions: job.book.positions.len(),
            measures: before_measures,
        },
        after: BookRisk {
            base_value: currency.value_today(after.base_value()),
            positions: after_book.positions.len(),
            measures: after_measures,
        },
        change: changes,
        trades_added: trades
            .iter()
            .flat_map(|t| t.positions.iter().map(|p| p.id.clone()))
            .collect(),
        positions_removed: remove.to_vec(),
    })
}

/// The books of a what-if besides the job's.
struct Books {
    /// The trades as loaded.
    trades: Option<Book>,
    /// The job's book with the trades added and the positions removed.
    after_book: Book,
    /// `after_book` netted.
    after: AggregatedBook,
    /// The revaluation of the traded positions ([`traded_positions`]), in USD.
    traded: Revaluer,
}

impl Books {
    /// The books for `trades` and `remove`, for a horizon of `horizon_days`.
    fn build(
        job: &Job,
        trades: Option<Book>,
        remove: &[String],
        horizon_days: f64,
    ) -> Result<Books> {
        let after_book = modified_book(&job.book, trades.as_ref(), remove)?;
        let after = job.net(&after_book)?;
        let traded = job.net(&traded_positions(&job.book, trades.as_ref(), remove))?;
        let revaluer = Revaluer::on_paths(&traded, &job.model, horizon_days);
        Ok(Books {
            trades,
            after_book,
            after,
            traded: revaluer,
        })
    }
}

/// A what-if cache directory and what it holds for the job.
struct CheckedCache<'a> {
    dir: &'a Path,
    /// The job's inputs' fingerprint ([`fingerprint`]).
    fingerprint: String,
    /// The cache of these inputs, when there is one that this build reproduces.
    usable: Option<MovesCache>,
}

impl<'a> CheckedCache<'a> {
    /// Looks for a usable cache of the job's inputs in `dir`.
    fn of(job: &Job, settings: SimulationSettings, dir: &'a Path) -> Result<CheckedCache<'a>> {
        let fingerprint = fingerprint(job, &settings);
        let (underlyings, surface_width) = (job.model.underlyings.len(), job.model.surface_width);
        let opened = MovesCache::open(
            dir,
            &fingerprint,
            settings.paths,
            underlyings,
            surface_width,
        );
        let reproduced = match &opened {
            Some(cache) => reproduces(job, settings, cache)?,
            None => false,
        };
        Ok(CheckedCache {
            dir,
            fingerprint,
            usable: opened.filter(|_| reproduced),
        })
    }
}

/// Per path, in USD: the book's P&L, the traded positions' P&L, and the reporting coin's
/// ln price move (empty when reporting in USD).
struct UsdPnl {
    before: Vec<f64>,
    traded: Vec<f64>,
    coin_log_move: Vec<f64>,
}

/// `pnl` (USD per path) of a book worth `value` USD today, in `job`'s reporting currency,
/// the reporting coin's ln price moving by `coin_log_move` on each path; an error when a
/// converted P&L is not finite.
fn in_currency(
    job: &Job,
    mut pnl: Vec<f64>,
    value: f64,
    coin_log_move: &[f64],
) -> Result<Vec<f64>> {
    if let Some(coin) = job.currency.coin {
        for (p, &x) in pnl.iter_mut().zip(coin_log_move) {
            *p = coin.convert(value, *p, x);
        }
        // converted, a P&L can leave floating point where the USD one did not (a coin
        // price near 0); the USD P&L was checked when it was revalued
        check_finite(&pnl, 0, &job.model.file)?;
    }
    Ok(pnl)
}

/// One block of a what-if's simulation.
struct BlockPnl {
    before: Vec<f64>,
    traded: Vec<f64>,
    coin_log_move: Vec<f64>,
    /// The block's moves, kept when a cache is being written.
    moves: Option<HorizonMoves>,
}

/// Simulates the paths once, revaluing the book and the traded positions (if any) on each
/// block; with `keep_moves`, also returns every block's moves.
fn simulate(
    job: &Job,
    traded: Option<&Revaluer>,
    settings: SimulationSettings,
    keep_moves: bool,
) -> Result<(UsdPnl, Vec<HorizonMoves>)> {
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?;
    let coin = job.currency.coin.map(|c| c.model_index);
    let blocks = simulator.map_blocks(|_, moves| {
        let mut before = vec![0.0; moves.paths()];
        simulator.revaluer().revalue(moves, &mut before);
        let traded_pnl = traded.map_or(Vec::new(), |traded| {
            let mut pnl = vec![0.0; moves.paths()];
            traded.revalue(moves, &mut pnl);
            pnl
        });
        BlockPnl {
            before,
            traded: traded_pnl,
            coin_log_move: coin.map_or(Vec::new(), |u| moves.log_spot_column(u).collect()),
            moves: keep_moves.then(|| moves.clone()),
        }
    });
    let usd = UsdPnl {
        before: blocks
            .iter()
            .flat_map(|b| b.before.iter().copied())
            .collect(),
        traded: blocks
            .iter()
            .flat_map(|b| b.traded.iter().copied())
            .collect(),
        coin_log_move: blocks
            .iter()
            .flat_map(|b| b.coin_log_move.iter().copied())
            .collect(),
    };
    check_finite(&usd.before, 0, &job.model.file)?;
    check_finite(&usd.traded, 0, &job.model.file)?;
    let moves = blocks.into_iter().filter_map(|b| b.moves).collect();
    Ok((usd, moves))
}

/// The what-if's P&L from the checked cache, building it first when there is none usable
/// (absent, or built from other inputs or by a build with other numerics).
fn cached(
    job: &Job,
    traded: &Revaluer,
    settings: SimulationSettings,
    checked: CheckedCache,
) -> Result<UsdPnl> {
    let CheckedCache {
        dir,
        fingerprint,
        usable,
    } = checked;
    let Some(cache) = usable else {
        eprintln!(
            "tailrisk: writing the what-if cache in {} (first use, or the inputs or this \
             build's numbers changed)",
            dir.display()
        );
        MovesCache::prepare(dir)?;
        let (usd, moves) = simulate(job, Some(traded), settings, true)?;
        MovesCache::write(dir, &fingerprint, &usd.before, &moves)?;
        return Ok(usd);
    };
    // the compact moves hold the traded underlyings' columns, then the coin's
    let mut columns = traded.model_underlyings();
    let coin = job.currency.coin.map(|c| {
        columns.push(c.model_index);
        columns.len() - 1
    });
    let traded = traded.clone().reading_columns(&columns);
    let reader = cache.moves(&columns).reader()?;
    let paths = cache.paths();
    let mut usd = UsdPnl {
        before: vec![0.0; paths],
        traded: vec![0.0; paths],
        coin_log_move: vec![0.0; if coin.is_some() { paths } else { 0 }],
    };
    let coin_blocks: Vec<&mut [f64]> = match coin {
        Some(_) => usd.coin_log_move.chunks_mut(BLOCK_PATHS).collect(),
        None => std::iter::repeat_with(|| &mut [][..])
            .take(paths.div_ceil(BLOCK_PATHS))
            .collect(),
    };
    let pool = settings.threads.pool()?;
    pool.install(|| {
        usd.before
            .par_chunks_mut(BLOCK_PATHS)
            .zip(usd.traded.par_chunks_mut(BLOCK_PATHS))
            .zip(coin_blocks)
            .enumerate()
            .try_for_each_init(
                || (Vec::new(), HorizonMoves::default()),
                |(buffer, block_moves), (block, ((before, traded_pnl), coin_move))| {
                    let first = block * BLOCK_PATHS;
                    reader.base_pnl(first, before)?;
                    reader.fill(first, before.len(), buffer, block_moves)?;
                    traded.revalue(block_moves, traded_pnl);
                    if let Some(c) = coin {
                        for (to, x) in coin_move.iter_mut().zip(block_moves.log_spot_column(c)) {
                            *to = x;
                        }
                    }
                    Ok::<(), Error>(())
                },
            )
    })?;
    check_finite(&usd.traded, 0, &job.model.file)?;
    Ok(usd)
}

/// Paths of the cache's first block that this build must reproduce to the last bit.
const CHECKED_PATHS: usize = 8;

/// Whether this build simulates the cache's first paths' moves and the book's P&L on them
/// to the last bit (a cache written by a build with other numerics does not).
fn reproduces(job: &Job, settings: SimulationSettings, cache: &MovesCache) -> Result<bool> {
    // a cache replaced or removed since it was opened is rebuilt, not an error
    let Ok((stored_pnl, stored)) = cache.head(CHECKED_PATHS) else {
        return Ok(false);
    };
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?;
    let rows: Vec<usize> = (0..stored_pnl.len()).collect();
    let moves = simulator.block_moves(0).subset(&rows);
    let mut pnl = vec![0.0; rows.len()];
    simulator.revaluer().revalue(&moves, &mut pnl);
    let same = |a: &mut dyn Iterator<Item = f64>, b: &mut dyn Iterator<Item = f64>| {
        a.map(f64::to_bits).eq(b.map(f64::to_bits))
    };
    let underlyings = moves.underlyings;
    Ok(stored.paths() == rows.len()
        && stored.underlyings == underlyings
        && same(&mut pnl.into_iter(), &mut stored_pnl.into_iter())
        && (0..underlyings).all(|u| {
            same(
                &mut moves.log_spot_column(u),
                &mut stored.log_spot_column(u),
            ) && same(
                &mut moves.vol_ratio_column(u),
                &mut stored.vol_ratio_column(u),
            )
        })
        && same(
            &mut moves.surface.iter().copied(),
            &mut stored.surface.iter().copied(),
        ))
}
