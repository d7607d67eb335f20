//! The analyst notebooks execute top to bottom against this build (notebooks/run.sh sets up
//! their pinned virtual environment on first use), without an error and with their charts.

use std::path::Path;
use std::process::Command;

#[test]
fn every_notebook_runs_top_to_bottom() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(root.join("notebooks/run.sh"))
        .arg("--out")
        .arg(out.path())
        .env("TAILRISK_BIN", env!("CARGO_BIN_EXE_tailrisk"))
        .output()
        .expect("notebooks/run.sh runs");
    assert!(
        run.status.success(),
        "notebooks failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for name in [
        "01_var_es",
        "02_contributions_whatif",
        "03_stress",
        "04_backtest",
    ] {
        let text = std::fs::read_to_string(out.path().join(format!("{name}.ipynb"))).unwrap();
        assert!(
            !text.contains("\"output_type\": \"error\""),
            "{name} has an error output"
        );
        assert!(text.contains("image/png"), "{name} shows a chart");
        let committed =
            std::fs::read_to_string(root.join(format!("notebooks/{name}.ipynb"))).unwrap();
        assert!(
            committed.contains("image/png"),
            "{name} is committed with its outputs"
        );
    }
}
