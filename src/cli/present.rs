//! How results reach the user: JSON on stdout for scripts, progress bars on stderr for long
//! runs at a terminal.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use tailrisk::error::{Error, Result};

/// Prints `value` as pretty JSON; `source` names the input in the (unlikely) error.
pub(crate) fn print_json(value: &impl serde::Serialize, source: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Output {
        path: source.to_path_buf(),
        message: e.to_string(),
    })?;
    println!("{text}");
    Ok(())
}

/// A progress bar on stderr, drawn only when stderr is a terminal and not `--quiet`.
pub(crate) fn progress_bar(length: u64, unit: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    let template =
        format!("{{spinner}} {{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
