//! The command line: `tailrisk run`, `exposures`, `whatif`, `margin`, `stress`, `report`,
//! `calibrate`, `backtest`, `merge` and `synthetic`. The binary's own module, a thin shell
//! over the library: [`args`] (what can be asked), [`commands`] (one short function per
//! command) and [`present`] (JSON and progress bars).

mod args;
mod commands;
mod present;

use std::process::ExitCode;

use clap::Parser;

use tailrisk::error::EXIT_OK;

use args::{Cli, Command};

/// Parses the command line, runs the command, prints errors on stderr and returns the exit
/// code (see `--help`).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let outcome = match cli.command {
        Command::Run(args) => commands::run(&args),
        Command::Exposures(args) => commands::show_exposures(&args),
        Command::Whatif(args) => commands::run_what_if(&args),
        Command::Hedge(args) => commands::run_hedge(&args),
        Command::Margin(args) => commands::run_margin(&args),
        Command::Stress(args) => commands::run_stress(&args),
        Command::Report(args) => commands::write_report(&args),
        Command::Calibrate(args) => commands::run_calibrate(&args),
        Command::Backtest(args) => commands::run_backtest(&args),
        Command::Merge(args) => commands::run_merge(&args),
        Command::Synthetic(args) => commands::write_synthetic(&args),
        Command::Serve(args) => commands::serve(&args),
    };
    match outcome {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
