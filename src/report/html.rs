//! The risk committee report: one self-contained HTML page (inline CSS and SVG, no scripts,
//! no external resources) with the summary, exposures, P&L distribution, contributions,
//! stress table, spot × vol heatmap, model parameters and data provenance.

use std::fmt::Write as _;

use crate::book::exposures;
use crate::book::exposures::ExposureRow;
use crate::book::grouping::Grouping;
use crate::error::Result;
use crate::hedge::candidates::Candidates;
use crate::hedge::proposal::{
    propose_hedge, too_few_tail_paths, HedgeGoal, HedgeProposal, HedgeRequest,
};
use crate::input::job::Job;
use crate::margin::projection::{project_margin, MarginReport, MarginRequest};
use crate::mc::simulation::{SimulationSettings, Simulator};
use crate::report::svg::{bars_with_errors, escape, heatmap, pnl_histogram};
use crate::report::text::{money, named_move, run_report, RunReport, StressReport};
use crate::risk::contributions::contributions_of;
use crate::risk::contributions::{Additivity, Contribution};
use crate::risk::measures::RiskMeasure;
use crate::stress::report::{stress_report, StressRequest};

/// Everything the report shows, computed by the caller.
pub struct CommitteeInputs<'a> {
    /// The loaded scenario: the book, market and model the report describes.
    pub job: &'a Job,
    /// The run's report: VaR, ES, standard errors, P&L moments and run settings.
    pub run: &'a RunReport,
    /// Per-path P&L of the run.
    pub pnl: &'a [f64],
    /// Net Greeks by underlying, venue, counterparty and book.
    pub exposures: Vec<ExposureRow>,
    /// Contributions per underlying and their additivity (the CLI computes them at the run's
    /// highest confidence level).
    pub by_underlying: (Vec<Contribution>, Additivity),
    /// Contributions per position and their additivity (the CLI computes them at the run's highest
    /// confidence level).
    pub by_position: (Vec<Contribution>, Additivity),
    /// Named stress scenarios, spot × implied-vol grids, and the optional historical replay and
    /// reverse stress.
    pub stress: StressReport,
    /// The venues' margin projection, when the scenario has `[[venue]]` entries.
    pub margin: Option<MarginReport>,
    /// The proposed hedge when the report was asked for one, or why none could be fitted.
    pub hedge: Option<std::result::Result<HedgeProposal, String>>,
}

/// Paths of the report's margin projection: enough for probabilities of a few percent to a
/// fraction of a percent, without the portfolio grids dominating the report's time.
pub const REPORT_MARGIN_PATHS: u64 = 5_000;

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222}\
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}\
table{border-collapse:collapse;margin:8px 0;font-size:12px}td,th{border:1px solid #ddd;padding:3px 7px}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}\
.note{color:#555;font-size:12px}.neg{color:#b03a2e}";

/// The committee report of `job`: simulates it with `settings` (full revaluation), adds
/// contributions by underlying and by position at the highest configured level, the
/// exposures and the stresses of `stress`, and renders the page. `progress` is called with
/// the number of paths of each finished block. With `hedge` candidates, the report proposes
/// the least-ES hedge among them at [`REPORT_HEDGE_LEVEL`] (chosen on the run's paths, judged
/// on the next seed's).
pub fn committee_report_of(
    job: &Job,
    settings: SimulationSettings,
    stress: &StressRequest,
    hedge: Option<&Candidates>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<String> {
    let simulator = Simulator::new(&job.model, &job.aggregated, settings)?
        .in_currency(&job.currency, job.aggregated.base_value());
    let pnl = simulator.pnl(progress)?;
    let run = run_report(job, &settings, &pnl);
    let level = job.scenario.run.highest_level();
    let by = |group| contributions_of(job, &simulator, &pnl, group, level);
    let inputs = CommitteeInputs {
        job,
        run: &run,
        pnl: &pnl,
        exposures: exposures::exposures(&job.book, &job.aggregated),
        by_underlying: by(Grouping::Underlying),
        by_position: by(Grouping::Position),
        stress: stress_report(job, stress)?,
        margin: margin_projection(job, settings)?,
        hedge: hedge
            .map(|candidates| report_hedge(job, candidates, settings))
            .transpose()?,
    };
    Ok(committee_report(&inputs))
}

/// The report's least-ES hedge among `candidates`, or, when the run's paths are too few to
/// fit one, the reason (the rest of the report stands).
fn report_hedge(
    job: &Job,
    candidates: &Candidates,
    settings: SimulationSettings,
) -> Result<std::result::Result<HedgeProposal, String>> {
    if let Some(reason) = too_few_tail_paths(settings.paths, REPORT_HEDGE_LEVEL) {
        return Ok(Err(reason));
    }
    let request = HedgeRequest {
        goal: HedgeGoal::MinimizeEs,
        level: REPORT_HEDGE_LEVEL,
        budget: None,
        settings,
        check_seed: settings.seed.wrapping_add(1),
    };
    propose_hedge(job, candidates, &request, &|_| {}).map(Ok)
}

/// ES level of the report's proposed hedge (the Basel FRTB level).
pub const REPORT_HEDGE_LEVEL: f64 = 0.975;

/// The margin projection of the report: hourly steps over the horizon (at most 240),
/// [`REPORT_MARGIN_PATHS`] paths of the run's seed; `None` without venues.
fn margin_projection(job: &Job, settings: SimulationSettings) -> Result<Option<MarginReport>> {
    if job.scenario.venues.is_empty() {
        return Ok(None);
    }
    let hourly = (settings.horizon_days * 24.0).round().clamp(1.0, 240.0) as u32;
    let request = MarginRequest {
        settings: SimulationSettings {
            paths: REPORT_MARGIN_PATHS.min(settings.paths),
            steps: hourly.max(settings.steps),
            ..settings
        },
        target: 0.01,
        reserve_delay_hours: 4.0,
    };
    project_margin(job, &request, &|_| {}).map(Some)
}

/// The report as HTML text.
pub fn committee_report(r: &CommitteeInputs) -> String {
    let mut html = format!(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>tailrisk report — {}</title>\
         <style>{STYLE}</style></head><body>",
        escape(&r.job.scenario.path.display().to_string())
    );
    summary(&mut html, r);
    distribution(&mut html, r);
    exposures(&mut html, r);
    contributions(&mut html, r);
    stress(&mut html, r);
    if let Some(m) = &r.margin {
        margin(&mut html, m);
    }
    match &r.hedge {
        Some(Ok(h)) => hedge(&mut html, h),
        Some(Err(reason)) => {
            let _ = write!(
                html,
                "<h2>Proposed hedge</h2><p class='note'>No hedge proposed: {}.</p>",
                escape(reason)
            );
        }
        None => {}
    }
    model(&mut html, r);
    html.push_str("</body></html>\n");
    html
}

fn cell(value: f64, decimals: usize) -> String {
    let class = if value < 0.0 { "n neg" } else { "n" };
    format!("<td class='{class}'>{}</td>", money(value, decimals))
}

fn summary(html: &mut String, r: &CommitteeInputs) {
    let run = r.run;
    let _ = write!(
        html,
        "<h1>Risk report: {}</h1><p>Valuation time {} · horizon {} day(s) in {} step(s) · \
         {} shocks{} · {} paths, seed {}</p><h2>Summary</h2><p>Base value <b>{} {}</b> · {} \
         positions netted into {} option contracts and linear exposure on {} underlyings.</p>\
         <table><tr><th>confidence</th><th>VaR</th><th>± s.e.</th><th>ES</th><th>± s.e.</th>\
         <th>VaR % of base</th></tr>",
        escape(&r.job.scenario.path.display().to_string()),
        escape(&run.valuation_time),
        run.horizon_days,
        run.steps,
        run.distribution,
        run.dof.map(|d| format!(" (dof {d})")).unwrap_or_default(),
        money(run.paths as f64, 0),
        run.seed,
        money(run.base_value, 0),
        run.currency,
        run.positions,
        run.option_contracts,
        run.underlyings
    );
    for m in &run.measures {
        let _ = write!(
            html,
            "<tr><td>{:.2}%</td>{}{}{}{}<td class='n'>{:.2}%</td></tr>",
            m.confidence * 100.0,
            cell(m.var, 0),
            cell(m.var_stderr, 0),
            cell(m.es, 0),
            cell(m.es_stderr, 0),
            100.0 * m.var / run.base_value
        );
    }
    html.push_str(
        "</table><p class='note'>VaR and ES are positive numbers meaning a loss; ES is the mean \
         loss in the worst (1 − a) of scenarios. ± s.e. is the Monte Carlo standard error.</p>",
    );
}

fn distribution(html: &mut String, r: &CommitteeInputs) {
    let Some(top) = r.run.measures.last() else {
        return;
    };
    let _ = write!(
        html,
        "<h2>P&amp;L distribution</h2>{}<p class='note'>Simulated P&amp;L over the horizon; \
         red bars lie beyond the {:.1}% VaR.</p>",
        pnl_histogram(r.pnl, top.var, top.es, top.confidence),
        top.confidence * 100.0
    );
}

fn exposures(html: &mut String, r: &CommitteeInputs) {
    html.push_str(
        "<h2>Exposures</h2><table><tr><th>group</th><th>key</th><th>underlying</th>\
         <th>delta (coins)</th><th>delta USD</th><th>gamma USD /1%</th><th>vega /pt</th>\
         <th>theta /day</th><th>value</th></tr>",
    );
    for e in r
        .exposures
        .iter()
        .filter(|e| matches!(e.group, Grouping::Underlying | Grouping::Venue))
    {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{}{}{}{}{}{}</tr>",
            e.group,
            escape(&e.key),
            escape(&e.underlying),
            cell(e.delta, 2),
            cell(e.delta_usd, 0),
            cell(e.gamma_usd, 0),
            cell(e.vega, 0),
            cell(e.theta, 0),
            cell(e.value, 0)
        );
    }
    html.push_str(
        "</table><p class='note'>By counterparty and book: <code>tailrisk exposures</code>.</p>",
    );
}

fn contributions(html: &mut String, r: &CommitteeInputs) {
    let (rows, additivity) = &r.by_underlying;
    let _ = write!(
        html,
        "<h2>Contributions at {:.1}%</h2>{}",
        additivity.confidence * 100.0,
        bars_with_errors(
            &rows
                .iter()
                .map(|c| (c.key.clone(), c.component_es, c.component_es_stderr))
                .collect::<Vec<_>>(),
            "component ES by underlying (± s.e.)",
        )
    );
    contribution_table(html, rows, additivity, "underlying");
    let (positions, position_additivity) = &r.by_position;
    let mut top: Vec<&Contribution> = positions.iter().collect();
    top.sort_by(|a, b| b.component_es.abs().total_cmp(&a.component_es.abs()));
    top.truncate(12);
    let top: Vec<Contribution> = top.into_iter().cloned().collect();
    html.push_str("<p>The twelve positions with the largest component ES (either sign):</p>");
    contribution_table(html, &top, position_additivity, "position");
}

fn contribution_table(html: &mut String, rows: &[Contribution], a: &Additivity, group: &str) {
    let _ = write!(
        html,
        "<table><tr><th>{group}</th><th>component VaR</th><th>± s.e.</th><th>component ES</th>\
         <th>± s.e.</th><th>incremental ES</th><th>± s.e.</th></tr>"
    );
    for c in rows {
        let _ = write!(
            html,
            "<tr><td>{}</td>{}{}{}{}{}{}</tr>",
            escape(&c.key),
            cell(c.component_var, 0),
            cell(c.component_var_stderr, 0),
            cell(c.component_es, 0),
            cell(c.component_es_stderr, 0),
            cell(c.incremental_es, 0),
            cell(c.incremental_es_stderr, 0)
        );
    }
    let _ = write!(
        html,
        "</table><p class='note'>All components sum to VaR {} (portfolio {}) and ES {} \
         (portfolio {}).</p>",
        money(a.component_var_sum, 0),
        money(a.var, 0),
        money(a.component_es_sum, 0),
        money(a.es, 0)
    );
}

fn margin(html: &mut String, m: &MarginReport) {
    let _ = write!(
        html,
        "<h2>Margin, liquidations and venue failure</h2><table><tr><th>venue</th><th>margin</th>\
         <th>equity</th><th>initial</th><th>maintenance</th><th>utilisation</th>\
         <th>P(margin call)</th><th>P(liquidation)</th><th>expected liquidation loss</th>\
         <th>buffer for P(liq.) ≤ {}</th><th>P(failure)</th><th>expected failure loss</th></tr>",
        m.target
    );
    for v in &m.venues {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td>{}{}{}<td class='n'>{:.1}%</td>\
             <td class='n'>{:.4} ± {:.4}</td><td class='n'>{:.4} ± {:.4}</td>{}{}\
             <td class='n'>{:.4}</td>{}</tr>",
            escape(&v.name),
            escape(&v.margin),
            cell(v.equity, 0),
            cell(v.initial_margin, 0),
            cell(v.maintenance_margin, 0),
            v.utilisation * 100.0,
            v.p_margin_call,
            v.p_margin_call_stderr,
            v.p_liquidation,
            v.p_liquidation_stderr,
            cell(v.expected_liquidation_loss, 0),
            cell(v.buffer, 0),
            v.p_default.value,
            cell(v.expected_default_loss.value, 0)
        );
    }
    let f = &m.fund;
    let last = f.measures_with_defaults.len().saturating_sub(1);
    let _ = write!(
        html,
        "</table><p class='note'>{} paths of the run's seed checked every {:.1} h over the \
         horizon. Fund: P(any margin call) {:.4}, P(any liquidation) {:.4}; buffers {} in \
         total, or one central reserve of {} moved after {} h. At the highest level, VaR {} \
         without liquidations, {} with them, {} with venue failures too; venue failures alone \
         have an ES of {}, {:.1}% of the ES with failures.</p>",
        m.paths,
        m.step_hours,
        f.p_margin_call.value,
        f.p_liquidation.value,
        money(f.buffers, 0),
        f.central_reserve
            .map_or_else(|| "— (not enough on its own)".to_owned(), |x| money(x, 0)),
        m.reserve_delay_hours,
        f.measures
            .get(last)
            .map_or_else(String::new, |x| money(x.var, 0)),
        f.measures_with_liquidation
            .get(last)
            .map_or_else(String::new, |x| money(x.var, 0)),
        f.measures_with_defaults
            .get(last)
            .map_or_else(String::new, |x| money(x.var, 0)),
        f.counterparty_es
            .get(last)
            .map_or_else(String::new, |x| money(*x, 0)),
        f.counterparty_es_share.get(last).copied().unwrap_or(0.0) * 100.0
    );
}

fn hedge(html: &mut String, h: &HedgeProposal) {
    let _ = write!(
        html,
        "<h2>Proposed hedge</h2><table><tr><th>trade</th><th>kind</th><th>underlying</th>\
         <th>quantity</th><th>cost</th><th>premium</th></tr>"
    );
    for t in &h.trades {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class='n'>{:.4}</td>{}{}</tr>",
            escape(&t.id),
            escape(&t.kind),
            escape(&t.underlying),
            t.quantity,
            cell(t.cost, 0),
            cell(t.premium, 0)
        );
    }
    let _ = write!(
        html,
        "</table><table><tr><th>{:.1}% on fresh paths</th><th>before</th><th>after</th>\
         <th>change</th></tr>",
        h.level * 100.0
    );
    let estimate = |value: f64, stderr: f64| {
        format!(
            "<td class='n'>{} ± {}</td>",
            money(value, 0),
            money(stderr, 0)
        )
    };
    for (name, of) in [
        (
            "VaR",
            (|m: &RiskMeasure| (m.var, m.var_stderr)) as fn(&RiskMeasure) -> (f64, f64),
        ),
        ("ES", |m: &RiskMeasure| (m.es, m.es_stderr)),
    ] {
        let _ = write!(html, "<tr><td>{name}</td>");
        for m in [&h.before, &h.after, &h.change] {
            let (value, stderr) = of(m);
            html.push_str(&estimate(value, stderr));
        }
        html.push_str("</tr>");
    }
    let _ = write!(
        html,
        "</table><p class='note'>The trades of least ES at {:.1}% among {} candidates (costs of \
         {} included), chosen on {} paths of seed {} and judged on as many fresh paths of seed \
         {}, before and after on the same paths. On the paths they were chosen on the ES after \
         is {} (in-sample, biased low); rounding to lots changed it by {}.</p>",
        h.level * 100.0,
        h.candidates,
        money(h.cost, 0),
        money(h.paths as f64, 0),
        h.seed,
        h.check_seed,
        money(h.in_sample.es_after, 0),
        money(h.in_sample.rounding_effect, 0)
    );
}

fn stress(html: &mut String, r: &CommitteeInputs) {
    let s = &r.stress;
    html.push_str(
        "<h2>Stress scenarios</h2><table><tr><th>scenario</th><th>P&amp;L</th><th>% base</th>\
         <th>by underlying</th><th>by venue</th><th>what and source</th></tr>",
    );
    for x in &s.stress {
        let list = |group: &str| {
            x.breakdown[group]
                .iter()
                .map(|(k, v)| format!("{} {}", escape(k), money(*v, 0)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let about = [&x.description, &x.source]
            .into_iter()
            .flatten()
            .map(|t| escape(t))
            .collect::<Vec<_>>()
            .join("<br><i>");
        let _ = write!(
            html,
            "<tr><td>{}</td>{}<td class='n'>{:.1}%</td><td>{}</td><td>{}</td><td class='note'>{about}</td></tr>",
            escape(&x.name),
            cell(x.pnl, 0),
            100.0 * x.pnl / s.base_value,
            list("underlying"),
            list("venue")
        );
    }
    html.push_str("</table>");
    if let Some(h) = &s.history {
        let _ = write!(
            html,
            "<p>Worst {}-day historical moves ({} windows):</p><table><tr><th>from</th><th>to</th>\
             <th>moves</th><th>P&amp;L</th></tr>",
            h.window_days, h.windows
        );
        for w in &h.worst {
            let moves: Vec<String> = w
                .window
                .moves
                .iter()
                .map(|(u, m)| format!("{} {:+.1}%", escape(u), m * 100.0))
                .collect();
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
                w.window.start,
                w.window.end,
                moves.join(", "),
                cell(w.pnl, 0)
            );
        }
        html.push_str("</table>");
    }
    if let Some(rev) = &s.reverse {
        let moves: Vec<String> = rev
            .scenario
            .moves
            .iter()
            .map(|(f, m)| escape(&named_move(f, *m)))
            .collect();
        let _ = write!(
            html,
            "<p>Reverse stress: the most plausible move losing {} is {:.2} standard deviations \
             away (tail probability {:.2e} under the model): {}.</p>",
            money(rev.target_loss, 0),
            rev.mahalanobis_distance,
            rev.probability_model,
            moves.join(", ")
        );
    }
    if let Some(all) = s.grid.iter().find(|g| g.underlying == "all") {
        let rows: Vec<String> = all
            .spot_moves
            .iter()
            .map(|m| format!("{:+.0}%", m * 100.0))
            .collect();
        let cols: Vec<String> = all
            .vol_moves
            .iter()
            .map(|m| format!("vol {:+.0}%", m * 100.0))
            .collect();
        let _ = write!(
            html,
            "<h2>Spot × implied-vol grid</h2>{}<p class='note'>P&amp;L of the book when every \
             spot moves by the row and every implied vol by the column, at the horizon.</p>",
            heatmap(
                &rows,
                &cols,
                &all.pnl,
                "all underlyings together: spot move (rows) × vol move (columns)"
            )
        );
    }
}

fn model(html: &mut String, r: &CommitteeInputs) {
    let m = &r.job.model;
    html.push_str(
        "<h2>Model and data</h2><table><tr><th>underlying</th><th>spot vol</th>\
         <th>vol of vol</th><th>skew vol</th><th>basis vol</th><th>funding rate · vol</th>\
         <th>drift</th></tr>",
    );
    for u in &m.underlyings {
        let vol_of_vol = if u.pillars.is_empty() {
            format!("{:.2}", u.vol_of_vol)
        } else {
            let pillars: Vec<String> = u
                .pillars
                .iter()
                .map(|p| format!("{}d {:.2}", p.days, p.vol_of_vol))
                .collect();
            pillars.join(" · ")
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td class='n'>{:.1}%</td><td class='n'>{vol_of_vol}</td>\
             <td class='n'>{:.2}</td><td class='n'>{:.2}</td><td class='n'>{}</td>\
             <td class='n'>{:.2}</td></tr>",
            escape(&u.name),
            u.spot_vol * 100.0,
            u.skew.as_ref().map_or(0.0, |k| k.vol),
            u.basis.as_ref().map_or(0.0, |b| b.vol),
            u.funding.as_ref().map_or("—".to_owned(), |f| format!(
                "{:.1}% · {:.2}",
                f.rate * 100.0,
                f.vol
            )),
            u.drift
        );
    }
    for d in &m.depegs {
        let _ = write!(
            html,
            "<tr><td>{}</td><td colspan='6'>de-peg {:.1}%/year, loss from {:.1}% \
             (Pareto tail {:.1}, mean {:.1}%)</td></tr>",
            escape(&d.name),
            d.spec.probability * 100.0,
            d.spec.loss * 100.0,
            d.spec.tail_index,
            d.spec.mean_loss() * 100.0
        );
    }
    html.push_str("</table><table><tr><th>correlation</th>");
    for f in &m.factor_names {
        let _ = write!(html, "<th>{}</th>", escape(f));
    }
    html.push_str("</tr>");
    for (i, f) in m.factor_names.iter().enumerate() {
        let _ = write!(html, "<tr><th>{}</th>", escape(f));
        for j in 0..m.factor_names.len() {
            let _ = write!(html, "<td class='n'>{:.2}</td>", m.correlation[(i, j)]);
        }
        html.push_str("</tr>");
    }
    let scenario = &r.job.scenario;
    let repair = m.repair.map_or(String::new(), |rep| {
        format!(
            " The correlation matrix was repaired (Higham): smallest eigenvalue {:.4} → {:.2e}, \
             Frobenius distance {:.4}.",
            rep.min_eigenvalue_before, rep.min_eigenvalue_after, rep.frobenius_distance
        )
    });
    let _ = write!(
        html,
        "</table><p class='note'>Scenario file {}; market file {} (as of {}); positions file \
         {}. Model parameters are as configured in the scenario file.{repair} Historical stress \
         figures come from the sources listed with each scenario. Generated by tailrisk {}.</p>",
        escape(&scenario.path.display().to_string()),
        escape(&scenario.market_file.display().to_string()),
        escape(&r.run.valuation_time),
        escape(&scenario.portfolio_file.display().to_string()),
        env!("CARGO_PKG_VERSION")
    );
}
