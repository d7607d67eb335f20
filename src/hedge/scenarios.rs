//! The scenarios a hedge is chosen on: the book's P&L and each candidate's P&L per unit on
//! the same simulated paths.
//!
//! The book and the candidates are netted together once, so every path is generated and
//! revalued once; each position's P&L is its units times its netted instrument's P&L per
//! unit ([`crate::pricing::revaluation::Revaluer::unit_pnl`]). The matrix is n × m numbers
//! (40 MB for 100,000 paths × 50 candidates): the linear program needs all of it.

use rayon::prelude::*;

use crate::book::positions::Book;
use crate::error::{Error, Result};
use crate::hedge::candidates::Candidates;
use crate::input::job::Job;
use crate::mc::simulation::{SimulationSettings, Simulator};

/// Per-path P&L (positive = gain, USD) of the book and of one unit of every candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioMatrix {
    /// The book's P&L per path.
    pub book_pnl: Vec<f64>,
    /// Candidate j's P&L per unit on path i at `candidate_pnl[j·n + i]` (column-major).
    pub candidate_pnl: Vec<f64>,
    /// Number of candidates m.
    pub candidates: usize,
}

impl ScenarioMatrix {
    /// Number of paths n.
    pub fn paths(&self) -> usize {
        self.book_pnl.len()
    }

    /// Candidate `j`'s P&L per unit on every path.
    pub fn column(&self, j: usize) -> &[f64] {
        let n = self.paths();
        &self.candidate_pnl[j * n..(j + 1) * n]
    }

    /// The book's P&L plus `quantities` of the candidates, less `cost`, on every path.
    pub fn hedged_pnl(&self, quantities: &[f64], cost: f64) -> Vec<f64> {
        let mut pnl: Vec<f64> = self.book_pnl.iter().map(|p| p - cost).collect();
        for (j, &q) in quantities.iter().enumerate() {
            if q != 0.0 {
                pnl.iter_mut()
                    .zip(self.column(j))
                    .for_each(|(p, x)| *p += q * x);
            }
        }
        pnl
    }
}

/// Simulates the job's book and `candidates` on the paths of `settings` (full revaluation),
/// calling `progress` with the paths of each finished block.
pub fn simulate(
    job: &Job,
    candidates: &Candidates,
    settings: SimulationSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ScenarioMatrix> {
    let book_len = job.book.positions.len();
    let mut positions = job.book.positions.clone();
    positions.extend(candidates.list.iter().map(|c| c.position.clone()));
    let together = Book {
        file: job.book.file.clone(),
        positions,
    };
    let netted = job.net(&together)?;
    let simulator = Simulator::new(&job.model, &netted, settings)?;
    let revaluer = simulator.revaluer();
    let weights: Vec<(usize, f64)> = together
        .positions
        .iter()
        .zip(&netted.holdings)
        .map(|(p, &h)| (revaluer.instrument_index(h), p.units()))
        .collect();
    let (book_positions, candidate_weights) = weights.split_at(book_len);
    // The book's P&L per netted instrument, not per position: units summed per instrument.
    let mut netted_units = std::collections::BTreeMap::new();
    for &(i, w) in book_positions {
        *netted_units.entry(i).or_insert(0.0) += w;
    }
    let book_weights: Vec<(usize, f64)> = netted_units.into_iter().collect();
    let m = candidate_weights.len();
    let blocks: Vec<(Vec<f64>, Vec<f64>)> = simulator.install(|| {
        (0..simulator.block_count())
            .into_par_iter()
            .map(|block| {
                let len = simulator.block_len(block);
                let mut book = Vec::with_capacity(len);
                let mut units = vec![0.0; len * m];
                let mut unit_pnl = vec![0.0; revaluer.instrument_count()];
                let mut row = 0;
                simulator.visit_block(block, |_, moves| {
                    revaluer.unit_pnl(moves, &mut unit_pnl);
                    book.push(book_weights.iter().map(|&(i, w)| w * unit_pnl[i]).sum());
                    for (j, &(i, w)) in candidate_weights.iter().enumerate() {
                        units[j * len + row] = w * unit_pnl[i];
                    }
                    row += 1;
                });
                progress(len as u64);
                (book, units)
            })
            .collect()
    });
    let n = settings.paths as usize;
    let mut matrix = ScenarioMatrix {
        book_pnl: Vec::with_capacity(n),
        candidate_pnl: vec![0.0; n * m],
        candidates: m,
    };
    for (book, units) in blocks {
        let (start, len) = (matrix.book_pnl.len(), book.len());
        for j in 0..m {
            matrix.candidate_pnl[j * n + start..j * n + start + len]
                .copy_from_slice(&units[j * len..(j + 1) * len]);
        }
        matrix.book_pnl.extend(book);
    }
    if let Some(path) = (0..n).find(|&i| {
        !matrix.book_pnl[i].is_finite()
            || (0..m).any(|j| !matrix.candidate_pnl[j * n + i].is_finite())
    }) {
        return Err(Error::Numerical {
            message: format!(
                "path {path}: a P&L of the book or of a hedge candidate is not finite (check {})",
                job.scenario.path.display()
            ),
        });
    }
    Ok(matrix)
}
