//! One short function per command: load the inputs, make one library call, present the
//! result as a table or JSON (and files with `--out`).

use std::path::Path;
use std::time::Instant;

use tailrisk::backtest::report::{rolling_report, series_report, RollingRequest};
use tailrisk::backtest::rolling::{RollingSettings, ShockModel};
use tailrisk::book::exposures::exposures;
use tailrisk::error::{Error, Result};
use tailrisk::hedge::candidates::Candidates;
use tailrisk::hedge::proposal::{propose_hedge, HedgeGoal, HedgeRequest};
use tailrisk::input::job::Job;
use tailrisk::input::synthetic::{write_synthetic_scenario, SyntheticSpec};
use tailrisk::margin::projection::{project_margin, MarginRequest};
use tailrisk::mc::shard::merge;
use tailrisk::model::calibration::{calibrate, load_returns};
use tailrisk::report::files::{
    write_backtest_series, write_hedge_outputs, write_run_outputs, write_summary,
};
use tailrisk::report::html::committee_report_of;
use tailrisk::report::text::{
    render_backtest, render_contributions, render_exposures, render_hedge, render_margin,
    render_run, render_stress, render_what_if,
};
use tailrisk::risk::run::{run_shard, RunRequest};
use tailrisk::risk::whatif::what_if;
use tailrisk::service::live::LiveSettings;
use tailrisk::service::ServeConfig;
use tailrisk::stress::report::{stress_report, StressRequest};

use crate::cli::args::{
    threads, BacktestArgs, CalibrateArgs, CurrencyArg, ExposuresArgs, Format, Greek, HedgeArgs,
    MarginArgs, MergeArgs, ReportArgs, RunArgs, ServeArgs, StressArgs, StressOptions,
    SyntheticArgs, WhatifArgs,
};
use crate::cli::present::{print_json, progress_bar};

/// Loads a scenario, reporting in `--currency` when given.
fn load_job(scenario: &Path, repair_correlation: bool, currency: &CurrencyArg) -> Result<Job> {
    let job = Job::load(scenario, repair_correlation)?;
    match &currency.currency {
        Some(name) => job.in_currency(name),
        None => Ok(job),
    }
}

/// `tailrisk run`: the run (or one shard of it), then its table or JSON and `--out` files.
pub(crate) fn run(args: &RunArgs) -> Result<()> {
    let job = load_job(
        &args.common.scenario,
        args.common.repair_correlation,
        &args.currency,
    )?;
    let highest = job.scenario.run.highest_level();
    let request = RunRequest {
        settings: args.simulation.settings(&job),
        revaluation: args.revaluation.mode(),
        importance_sampling: args.importance_sampling,
        contributions: args
            .contributions
            .map(|group| (group, args.contribution_level.unwrap_or(highest))),
    };
    if let (Some(spec), Some(dir)) = (args.shard, &args.out) {
        let (file, paths) = run_shard(&job, &request, spec, dir)?;
        eprintln!(
            "wrote {} ({paths} paths of {})",
            file.display(),
            request.settings.paths
        );
        return Ok(());
    }
    let started = Instant::now();
    // an importance-sampled run reports no progress: no bar rather than one that never moves
    let quiet = args.common.quiet || request.importance_sampling;
    let bar = progress_bar(request.settings.paths, "paths", quiet);
    let outcome = tailrisk::risk::run::run(&job, &request, &|done| bar.inc(done))?;
    bar.finish_and_clear();
    let report = &outcome.report;
    if let Some(reason) = report
        .importance_sampling
        .as_ref()
        .and_then(|is| is.fallback.as_ref())
    {
        eprintln!("importance sampling not used, plain Monte Carlo instead: {reason}");
    }
    if let Some(dir) = &args.out {
        write_run_outputs(dir, report, &outcome.pnl)?;
    }
    match args.common.format {
        Format::Json => print_json(report, &args.common.scenario),
        Format::Table => {
            let scenario = args.common.scenario.display().to_string();
            let elapsed = started.elapsed().as_secs_f64();
            let threads = request.settings.threads.count();
            print!("{}", render_run(report, &scenario, elapsed, threads));
            if let (Some(rows), Some(additivity)) =
                (&report.contributions, &report.contribution_additivity)
            {
                print!("{}", render_contributions(rows, additivity));
            }
            if let Some(dir) = &args.out {
                println!("outputs written to {}", dir.display());
            }
            Ok(())
        }
    }
}

/// `tailrisk exposures`: net Greeks by grouping.
pub(crate) fn show_exposures(args: &ExposuresArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    let rows = exposures(&job.book, &job.aggregated);
    let valuation_time = job.valuation_time.to_rfc3339();
    match args.common.format {
        Format::Json => print_json(
            &serde_json::json!({
                "valuation_time": valuation_time,
                "base_value": job.aggregated.base_value(),
                "exposures": rows,
            }),
            &args.common.scenario,
        ),
        Format::Table => {
            print!("{}", render_exposures(&rows, &valuation_time));
            Ok(())
        }
    }
}

/// `tailrisk margin`: every venue's margin today and along the paths.
pub(crate) fn run_margin(args: &MarginArgs) -> Result<()> {
    let job = Job::load(&args.common.scenario, args.common.repair_correlation)?;
    if job.scenario.venues.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{} has no [[venue]] entries: add one per venue to project its margin \
                 (docs/spec.md, \"Venues and margin\")",
                args.common.scenario.display()
            ),
        });
    }
    let mut settings = args.simulation.settings(&job);
    settings.steps = args.steps.unwrap_or(settings.steps);
    let request = MarginRequest {
        settings,
        target: args.target,
        reserve_delay_hours: args.reserve_delay,
    };
    let started = Instant::now();
    let bar = progress_bar(request.settings.paths, "paths", args.common.quiet);
    let report = project_margin(&job, &request, &|done| bar.inc(done))?;
    bar.finish_and_clear();
    match args.common.format {
        Format::Json => print_json(&report, &args.common.scenario),
        Format::Table => {
            print!("{}", render_margin(&report));
            eprintln!(
                "{} paths × {} steps in {:.2} s",
                report.paths,
                report.steps,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// `tailrisk whatif`: the book before and after trades, on common random numbers.
pub(crate) fn run_what_if(args: &WhatifArgs) -> Result<()> {
    let job = load_job(
        &args.common.scenario,
        args.common.repair_correlation,
        &args.currency,
    )?;
    let settings = args.simulation.settings(&job);
    let result = what_if(
        &job,
        args.trades.as_deref(),
        &args.remove,
        settings,
        args.cache.as_deref(),
    )?;
    match args.common.format {
        Format::Json => print_json(&result, &args.common.scenario),
        Format::Table => {
            print!("{}", render_what_if(&result));
            Ok(())
        }
    }
}

/// `tailrisk hedge`: propose trades and judge them on fresh paths.
pub(crate) fn run_hedge(args: &HedgeArgs) -> Result<()> {
    let job = load_job(
        &args.common.scenario,
        args.common.repair_correlation,
        &args.currency,
    )?;
    let settings = args.simulation.settings(&job);
    let candidates = match &args.instruments {
        Some(file) => Candidates::load(file, &job)?,
        None => Candidates::default_perpetuals(&job),
    };
    let goal = match (args.neutralize, args.target_es) {
        (Some(Greek::Delta), _) => HedgeGoal::NeutralizeDelta,
        (Some(Greek::Vega), _) => HedgeGoal::NeutralizeVega,
        (None, Some(x)) => HedgeGoal::TargetEs(x),
        (None, None) => HedgeGoal::MinimizeEs,
    };
    let request = HedgeRequest {
        goal,
        level: args.level,
        budget: args.budget,
        settings,
        check_seed: args.check_seed.unwrap_or(settings.seed.wrapping_add(1)),
    };
    let bar = progress_bar(2 * settings.paths, "paths", args.common.quiet);
    let proposal = propose_hedge(&job, &candidates, &request, &|done| bar.inc(done))?;
    bar.finish_and_clear();
    if let Some(dir) = &args.out {
        write_hedge_outputs(dir, &proposal)?;
    }
    match args.common.format {
        Format::Json => print_json(&proposal, &args.common.scenario),
        Format::Table => {
            print!("{}", render_hedge(&proposal));
            Ok(())
        }
    }
}

/// The stresses the stress flags ask for.
fn stress_request(options: &StressOptions) -> StressRequest {
    StressRequest {
        stress_files: options.stress_files.clone(),
        history: options
            .history
            .clone()
            .map(|file| (file, options.window, options.worst)),
        reverse: options.reverse,
        term_power: options.term_power,
    }
}

/// `tailrisk stress`: named scenarios, grids, replay and reverse stress.
pub(crate) fn run_stress(args: &StressArgs) -> Result<()> {
    let job = load_job(
        &args.common.scenario,
        args.common.repair_correlation,
        &args.currency,
    )?;
    let report = stress_report(&job, &stress_request(&args.options))?;
    match args.common.format {
        Format::Json => print_json(&report, &args.common.scenario),
        Format::Table => {
            print!("{}", render_stress(&report));
            Ok(())
        }
    }
}

/// `tailrisk report`: the committee report as one HTML file.
pub(crate) fn write_report(args: &ReportArgs) -> Result<()> {
    let job = load_job(&args.scenario, args.repair_correlation, &args.currency)?;
    let settings = args.simulation.settings(&job);
    let candidates = match (&args.hedge_instruments, args.hedge) {
        (Some(file), _) => Some(Candidates::load(file, &job)?),
        (None, true) => Some(Candidates::default_perpetuals(&job)),
        (None, false) => None,
    };
    let bar = progress_bar(settings.paths, "paths", args.quiet);
    let html = committee_report_of(
        &job,
        settings,
        &stress_request(&args.stress),
        candidates.as_ref(),
        &|done| bar.inc(done),
    )?;
    bar.finish_and_clear();
    std::fs::write(&args.out, html).map_err(|e| Error::output(&args.out, e))?;
    if !args.quiet {
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

/// `tailrisk calibrate`: the model from daily history, as a `[model]` section or JSON.
pub(crate) fn run_calibrate(args: &CalibrateArgs) -> Result<()> {
    let history = &args.calibration.history;
    let returns = load_returns(
        history,
        args.calibration.vol_history.as_deref(),
        &args.underlyings,
    )?;
    let weighting = &args.calibration.weighting;
    let mut calibration = calibrate(
        &returns.spots,
        &returns.vols,
        weighting.weighting(),
        weighting.window(),
        None,
    );
    for note in &returns.notes {
        eprintln!("note: {note}");
    }
    calibration.notes = returns.notes;
    let text = calibration.to_toml(&history.display().to_string());
    if let Some(out) = &args.out {
        std::fs::write(out, &text).map_err(|e| Error::output(out, e))?;
    }
    match args.format {
        Format::Json => print_json(&calibration, history),
        Format::Table => {
            print!("{text}");
            Ok(())
        }
    }
}

/// `tailrisk backtest`: a given series' tests, or the rolling backtest of a book.
pub(crate) fn run_backtest(args: &BacktestArgs) -> Result<()> {
    let report = match (&args.series, &args.scenario, &args.history) {
        (Some(series), _, _) => {
            series_report(series, args.confidence.unwrap_or(0.99), args.target_rate)?
        }
        (None, Some(scenario), Some(history)) => {
            let request = RollingRequest {
                settings: RollingSettings {
                    weighting: args.weighting.weighting(),
                    window: args.weighting.window(),
                    shocks: if args.normal {
                        ShockModel::Normal
                    } else {
                        ShockModel::StudentT
                    },
                    days: args.days,
                    paths: args.paths,
                    seed: args.seed,
                },
                confidence: args.confidence,
                target_rate: args.target_rate,
                alternatives: !args.no_alternatives,
                ewma_lambda: args.weighting.lambda,
                threads: threads(args.threads),
            };
            let bar = progress_bar(0, "days", false);
            let report = rolling_report(scenario, history, &request, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            report
        }
        _ => {
            return Err(Error::Usage {
                message: "give SCENARIO --history PRICES, or --series FILE".to_owned(),
            })
        }
    };
    if let Some(dir) = &args.out {
        write_backtest_series(dir, &report.series)?;
    }
    match args.format {
        Format::Json => print_json(&report, Path::new(&report.source)),
        Format::Table => {
            print!("{}", render_backtest(&report));
            Ok(())
        }
    }
}

/// `tailrisk merge`: shards of one run into the single-machine result.
pub(crate) fn run_merge(args: &MergeArgs) -> Result<()> {
    let report = merge(&args.shards)?;
    if let Some(dir) = &args.out {
        write_summary(dir, &report)?;
    }
    match args.format {
        Format::Json => print_json(&report, &args.shards[0]),
        Format::Table => {
            print!("{}", render_run(&report, "merged shards", 0.0, 0));
            Ok(())
        }
    }
}

/// `tailrisk synthetic`: a synthetic scenario folder for benchmarks.
pub(crate) fn write_synthetic(args: &SyntheticArgs) -> Result<()> {
    let spec = SyntheticSpec {
        underlyings: usize::from(args.underlyings),
        options: args.options,
        paths: args.paths,
        seed: args.seed,
    };
    let scenario = write_synthetic_scenario(&args.dir, &spec)?;
    println!("wrote {}", scenario.display());
    Ok(())
}

/// `tailrisk serve`: the live service, until interrupted.
pub(crate) fn serve(args: &ServeArgs) -> Result<()> {
    tailrisk::service::serve(ServeConfig {
        scenario: args.scenario.clone(),
        listen: args.listen,
        db: args.db.clone(),
        import: args.import.clone(),
        settings: LiveSettings {
            paths: args.paths,
            seed: args.seed,
            threads: threads(args.threads),
            group: args.group,
            repair_correlation: args.repair_correlation,
        },
    })
}
