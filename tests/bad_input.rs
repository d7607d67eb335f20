//! Bad input is expected input: every class of malformed file gets a clear error naming the
//! file, row (or line) and field, a meaningful non-zero exit code and never a panic.

mod common;

use std::process::Output;

use common::{tailrisk, Scenario, MARKET, MODEL, POSITIONS, RUN};

const EXIT_USAGE: i32 = 2;
const EXIT_INPUT: i32 = 3;
const EXIT_MODEL: i32 = 4;

/// Asserts the exit code, that stderr names every fragment, and that nothing panicked.
fn assert_error(output: &Output, code: i32, fragments: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on error");
    for fragment in fragments {
        assert!(
            stderr.contains(fragment),
            "stderr lacks '{fragment}': {stderr}"
        );
    }
}

/// Runs `tailrisk run` on the standard scenario with these positions.
fn run_positions(positions: &str) -> Output {
    Scenario::with_positions(positions).tailrisk("run", &[])
}

/// Asserts that POSITIONS with `from` replaced by `to` is refused as bad input, the error
/// naming every fragment.
fn assert_edit_refused(from: &str, to: &str, fragments: &[&str]) {
    assert_error(
        &run_positions(&positions_with(from, to)),
        EXIT_INPUT,
        fragments,
    );
}

/// Asserts that the standard positions with these run, model and market sections are refused
/// as bad input, the error naming every fragment.
fn assert_scenario_refused(run: &str, model: &str, market: &str, fragments: &[&str]) {
    let scenario = Scenario::new(run, model, market, "positions.csv", POSITIONS);
    assert_error(&scenario.tailrisk("run", &[]), EXIT_INPUT, fragments);
}

/// POSITIONS with its `from` text replaced by `to` (which must occur).
fn positions_with(from: &str, to: &str) -> String {
    assert!(
        POSITIONS.contains(from),
        "test setup: '{from}' not in POSITIONS"
    );
    POSITIONS.replacen(from, to, 1)
}

#[test]
fn valid_scenario_runs() {
    let output = run_positions(POSITIONS);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn malformed_csv_row_names_its_line() {
    assert_edit_refused(
        "a,spot,BTC,10,,coinbase,,,,",
        "a,spot,BTC,10",
        &["positions.csv", "line 2", "fields"],
    );
}

#[test]
fn non_numeric_quantity_names_row_and_field() {
    assert_edit_refused(
        "b,perpetual,ETH,-100",
        "b,perpetual,ETH,lots",
        &[
            "positions.csv",
            "row 2 (line 3)",
            "field 'quantity'",
            "lots",
        ],
    );
}

#[test]
fn nan_quantity_is_refused() {
    assert_edit_refused(
        "b,perpetual,ETH,-100",
        "b,perpetual,ETH,NaN",
        &["positions.csv", "row 2", "field 'quantity'"],
    );
}

#[test]
fn infinite_strike_is_refused() {
    assert_edit_refused(
        "call,100000",
        "call,inf",
        &["positions.csv", "row 4", "field 'strike'"],
    );
}

#[test]
fn unknown_underlying_names_the_market_file() {
    assert_edit_refused(
        "a,spot,BTC",
        "a,spot,DOGE",
        &[
            "positions.csv",
            "row 1",
            "field 'underlying'",
            "DOGE",
            "market.csv",
        ],
    );
}

#[test]
fn underlying_without_model_factor_is_refused() {
    let market = format!("{MARKET}DOGE,0.2,1.1,0,2026-11-20T08:00:00Z\n");
    let positions = positions_with("a,spot,BTC", "a,spot,DOGE");
    let scenario = Scenario::new(RUN, MODEL, &market, "positions.csv", &positions);
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_INPUT,
        &[
            "positions.csv",
            "row 1",
            "field 'underlying'",
            "model.factors.DOGE",
        ],
    );
}

#[test]
fn missing_column_is_named() {
    let positions = POSITIONS
        .lines()
        .map(|line| {
            line.split_once(',')
                .map_or(line, |(_, rest)| rest)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let output = run_positions(&positions);
    assert_error(
        &output,
        EXIT_INPUT,
        &["positions.csv", "field 'id'", "missing"],
    );
}

#[test]
fn missing_option_field_is_named() {
    assert_edit_refused(
        "put,3000,2026-12-25,",
        "put,,2026-12-25,",
        &["positions.csv", "row 5", "field 'strike'"],
    );
}

#[test]
fn unknown_kind_and_option_type_are_named() {
    assert_edit_refused(
        "b,perpetual",
        "b,swaption",
        &["row 2", "field 'kind'", "swaption"],
    );
    assert_edit_refused(
        "put,3000",
        "straddle,3000",
        &["row 5", "field 'option_type'", "straddle"],
    );
}

#[test]
fn bad_expiry_is_named() {
    assert_edit_refused(
        "call,100000,2026-12-25",
        "call,100000,25/12/2026",
        &["row 4", "field 'expiry'", "25/12/2026"],
    );
}

#[test]
fn expired_option_is_refused() {
    assert_edit_refused(
        "call,100000,2026-12-25",
        "call,100000,2026-11-19",
        &["positions.csv", "row 4", "field 'expiry'", "expired"],
    );
}

#[test]
fn negative_vols_are_refused_wherever_they_appear() {
    assert_edit_refused(
        "2026-12-25,0.5",
        "2026-12-25,-0.5",
        &["positions.csv", "row 4", "field 'implied_vol'"],
    );

    let market = MARKET.replace("ETH,3100,0.65", "ETH,3100,-0.65");
    assert_scenario_refused(
        RUN,
        MODEL,
        &market,
        &["market.csv", "row 2", "field 'atm_vol'"],
    );

    let model = MODEL.replace("spot_vol = 0.70", "spot_vol = -0.70");
    assert_scenario_refused(
        RUN,
        &model,
        MARKET,
        &["scenario.toml", "model.factors.ETH.spot_vol"],
    );
}

#[test]
fn non_positive_spot_and_multiplier_are_refused() {
    let market = MARKET.replace("BTC,92000", "BTC,0");
    assert_scenario_refused(
        RUN,
        MODEL,
        &market,
        &["market.csv", "row 1", "field 'spot'"],
    );
    assert_edit_refused(
        "c,future,BTC,-1,5",
        "c,future,BTC,-1,-5",
        &["row 3", "field 'multiplier'"],
    );
}

#[test]
fn duplicate_ids_are_refused() {
    assert_edit_refused(
        "b,perpetual",
        "a,perpetual",
        &["positions.csv", "row 2", "field 'id'", "twice"],
    );
}

#[test]
fn empty_positions_file_is_refused() {
    let header = POSITIONS.lines().next().unwrap();
    let output = run_positions(&format!("{header}\n"));
    assert_error(&output, EXIT_INPUT, &["positions.csv", "no rows"]);
}

#[test]
fn missing_files_are_named() {
    let scenario = Scenario::new(RUN, MODEL, MARKET, "nowhere.csv", "");
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_INPUT,
        &["nowhere.csv", "not found"],
    );
    assert_error(
        &tailrisk(&["run", "no-such-scenario.toml"]),
        EXIT_INPUT,
        &["no-such-scenario.toml"],
    );
}

#[test]
fn toml_syntax_error_names_its_line() {
    let scenario = Scenario::with_positions(POSITIONS);
    let text = std::fs::read_to_string(scenario.scenario()).unwrap();
    scenario.write("scenario.toml", &text.replace("seed = 11", "seed = = 11"));
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_INPUT,
        &["scenario.toml", "line 3"],
    );
}

#[test]
fn unknown_and_out_of_range_keys_are_named() {
    assert_scenario_refused(
        "[run]\npathz = 10\n",
        MODEL,
        MARKET,
        &["scenario.toml", "pathz"],
    );
    assert_scenario_refused(
        "[run]\nconfidence = [99]\n",
        MODEL,
        MARKET,
        &["scenario.toml", "confidence"],
    );
    let model = MODEL.replace("dof = 4", "dof = 2");
    assert_scenario_refused(RUN, &model, MARKET, &["scenario.toml", "dof"]);
}

#[test]
fn correlation_entries_are_checked() {
    let cases = [
        ("[-0.3, -0.2, 1.0]]", "[-0.3, -0.25, 1.0]]", "symmetric"),
        ("[0.8, 1.0, -0.2]", "[0.8, 0.9, -0.2]", "diagonal"),
        ("[[1.0, 0.8, -0.3], [0.8,", "[[1.0, 1.8, -0.3], [1.8,", "1"),
        (
            "[\"BTC.spot\", \"ETH.spot\", \"BTC.vol\"]",
            "[\"BTC.spot\", \"ETH.spot\", \"XRP.vol\"]",
            "XRP.vol",
        ),
    ];
    for (from, to, fragment) in cases {
        assert!(MODEL.contains(from), "test setup: {from}");
        let model = MODEL.replace(from, to);
        assert_scenario_refused(
            RUN,
            &model,
            MARKET,
            &["scenario.toml", "model.correlation", fragment],
        );
    }
}

/// A ragged matrix (a short row after a full one) used to panic in the symmetry check,
/// reading the short row's entries before its length was checked.
#[test]
fn ragged_correlation_matrix_is_refused_naming_the_row() {
    let model = MODEL.replace(
        "factors = [\"BTC.spot\", \"ETH.spot\", \"BTC.vol\"]\nmatrix = [[1.0, 0.8, -0.3], [0.8, 1.0, -0.2], [-0.3, -0.2, 1.0]]",
        "factors = [\"BTC.spot\", \"ETH.spot\"]\nmatrix = [[1.0, 0.5], []]",
    );
    assert!(model.contains("[[1.0, 0.5], []]"), "test setup");
    assert_scenario_refused(
        RUN,
        &model,
        MARKET,
        &[
            "scenario.toml",
            "model.correlation.matrix[1]",
            "row has 0 entries for 2 factors",
        ],
    );
    let short_first = model.replace("[[1.0, 0.5], []]", "[[1.0], [0.5, 1.0]]");
    assert_scenario_refused(
        RUN,
        &short_first,
        MARKET,
        &[
            "model.correlation.matrix[0]",
            "row has 1 entries for 2 factors",
        ],
    );
}

/// A value of the wrong type names its key and what was expected, not only its line.
#[test]
fn toml_type_error_names_the_key_and_the_expected_type() {
    assert_scenario_refused(
        "[run]\npaths = \"many\"\n",
        MODEL,
        MARKET,
        &[
            "scenario.toml",
            "line 2",
            "field 'run.paths'",
            "invalid type: string \"many\", expected a whole number",
        ],
    );
    let model = MODEL.replace("spot_vol = 0.55", "spot_vol = \"55%\"");
    assert_scenario_refused(
        RUN,
        &model,
        MARKET,
        &["field 'model.factors.BTC.spot_vol'", "expected a number"],
    );
}

/// Pairwise plausible but jointly impossible: BTC~ETH 0.9, ETH~SOL 0.9, BTC~SOL −0.9.
const INDEFINITE_MODEL: &str = r#"[model]
distribution = "normal"

[model.factors.BTC]
spot_vol = 0.55

[model.factors.ETH]
spot_vol = 0.70

[model.factors.SOL]
spot_vol = 0.90

[model.correlation]
factors = ["BTC.spot", "ETH.spot", "SOL.spot"]
matrix = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]
"#;

#[test]
fn indefinite_correlation_is_refused_naming_its_smallest_eigenvalue() {
    let scenario = Scenario::new(RUN, INDEFINITE_MODEL, MARKET, "positions.csv", POSITIONS);
    // (1, −1, 1) is an eigenvector with eigenvalue 1 − 0.9 − 0.9 = −0.8, the smallest.
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_MODEL,
        &[
            "scenario.toml",
            "positive definite",
            "smallest eigenvalue is -0.800000",
            "--repair-correlation",
        ],
    );
}

#[test]
fn repair_correlation_runs_and_reports_the_move() {
    let scenario = Scenario::new(RUN, INDEFINITE_MODEL, MARKET, "positions.csv", POSITIONS);
    let doc =
        common::json(&scenario.tailrisk("run", &["--repair-correlation", "--format", "json"]));
    let repair = &doc["correlation_repair"];
    assert!((repair["min_eigenvalue_before"].as_f64().unwrap() + 0.8).abs() < 1e-9);
    assert!(repair["min_eigenvalue_after"].as_f64().unwrap() > 0.0);
    assert!(repair["frobenius_distance"].as_f64().unwrap() > 0.1);
    let table = scenario.tailrisk("run", &["--repair-correlation"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("repaired"));
}

#[test]
fn parquet_positions_missing_a_column_are_named() {
    let scenario = Scenario::with_positions(POSITIONS);
    write_positions_parquet(
        &scenario,
        "positions.parquet",
        &["id", "kind", "underlying"],
    );
    let text = std::fs::read_to_string(scenario.scenario()).unwrap();
    scenario.write(
        "scenario.toml",
        &text.replace("positions.csv", "positions.parquet"),
    );
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_INPUT,
        &["positions.parquet", "field 'quantity'", "missing"],
    );
}

#[test]
fn corrupt_parquet_is_refused() {
    let scenario = Scenario::new(
        RUN,
        MODEL,
        MARKET,
        "positions.parquet",
        "this is not parquet",
    );
    assert_error(
        &scenario.tailrisk("run", &[]),
        EXIT_INPUT,
        &["positions.parquet"],
    );
}

#[test]
fn bad_command_lines_exit_with_usage_code() {
    let scenario = Scenario::with_positions(POSITIONS);
    assert_error(
        &scenario.tailrisk("run", &["--paths", "zero"]),
        EXIT_USAGE,
        &["--paths"],
    );
    assert_error(
        &scenario.tailrisk("run", &["--threads", "0"]),
        EXIT_USAGE,
        &["--threads"],
    );
    assert_error(
        &scenario.tailrisk("run", &["--format", "xml"]),
        EXIT_USAGE,
        &["--format"],
    );
    assert_error(&tailrisk(&["frobnicate"]), EXIT_USAGE, &["frobnicate"]);
}

/// Writes the columns `keep` of POSITIONS as a Parquet file (all as strings, like a user's
/// export would have them).
pub fn write_positions_parquet(scenario: &Scenario, name: &str, keep: &[&str]) {
    common::write_parquet_from_csv(POSITIONS, &scenario.path(name), keep);
}

// ---- `calibrate --vol-history` in the long (pillar) layout ----

/// Daily prices of BTC and ETH on 2024-01-01 .. 2024-01-10.
fn pillar_prices() -> String {
    let mut text = String::from("date,BTC,ETH\n");
    for day in 1..=10 {
        let wiggle = if day % 2 == 0 { 1.0 } else { -1.0 };
        text.push_str(&format!(
            "2024-01-{day:02},{},{}\n",
            60_000.0 + 500.0 * wiggle + 10.0 * f64::from(day),
            3_000.0 - 40.0 * wiggle + f64::from(day)
        ));
    }
    text
}

/// A valid pillar vol history: per date 2024-01-01 .. 10, BTC then ETH, tenors 7 then 30.
/// Data row of (day d, BTC/ETH u = 0/1, tenor 7/30 t = 0/1): 4(d − 1) + 2u + t + 1, e.g.
/// 2024-01-03 BTC 30 is row 10 (line 11).
fn pillar_vols() -> String {
    let mut text = String::from("date,underlying,tenor_days,vol\n");
    for day in 1..=10 {
        for u in ["BTC", "ETH"] {
            for tenor in [7, 30] {
                let wiggle = if (day + tenor) % 3 == 0 { 0.05 } else { -0.02 };
                let vol = 0.5 + 0.01 * f64::from(day) + f64::from(tenor) / 1000.0 + wiggle;
                text.push_str(&format!("2024-01-{day:02},{u},{tenor},{vol:.4}\n"));
            }
        }
    }
    text
}

/// Runs `tailrisk calibrate` on [`pillar_prices`] and a vol history `vols_name` with
/// `vols` (CSV text, or for a `.parquet` name the columns `keep` of it as Parquet).
fn calibrate_pillars(vols_name: &str, vols: &str, keep: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temporary directory");
    let prices = dir.path().join("prices.csv");
    std::fs::write(&prices, pillar_prices()).unwrap();
    let path = dir.path().join(vols_name);
    if vols_name.ends_with(".parquet") {
        common::write_parquet_from_csv(vols, &path, keep);
    } else {
        std::fs::write(&path, vols).unwrap();
    }
    tailrisk(&[
        "calibrate",
        "--history",
        prices.to_str().unwrap(),
        "--vol-history",
        path.to_str().unwrap(),
        "--method",
        "sample",
    ])
}

/// Asserts that [`pillar_vols`] with its `from` text replaced by `to` is refused as bad
/// input, the error naming vols.csv and every fragment.
fn assert_pillar_edit_refused(from: &str, to: &str, fragments: &[&str]) {
    let vols = pillar_vols();
    assert!(vols.contains(from), "test setup: '{from}' not in the vols");
    let output = calibrate_pillars("vols.csv", &vols.replacen(from, to, 1), &[]);
    assert_error(&output, EXIT_INPUT, &[&["vols.csv"], fragments].concat());
}

#[test]
fn valid_pillar_history_calibrates() {
    let output = calibrate_pillars("vols.csv", &pillar_vols(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("vol_pillars = [7, 30]") && stdout.contains("\"ETH.vol.30d\""),
        "{stdout}"
    );
}

#[test]
fn pillar_history_missing_a_column_is_named() {
    let vols: String = pillar_vols()
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            format!("{},{},{}\n", cells[0], cells[1], cells[3])
        })
        .collect();
    assert_error(
        &calibrate_pillars("vols.csv", &vols, &[]),
        EXIT_INPUT,
        &["vols.csv", "field 'tenor_days'", "missing"],
    );
    assert_error(
        &calibrate_pillars(
            "vols.parquet",
            &pillar_vols(),
            &["date", "underlying", "tenor_days"],
        ),
        EXIT_INPUT,
        &["vols.parquet", "field 'vol'", "missing"],
    );
}

#[test]
fn pillar_vol_must_be_a_positive_finite_number() {
    let row = "2024-01-03,BTC,30,";
    let fragments = ["row 10 (line 11)", "field 'vol'"];
    for (bad, message) in [
        ("abc", "expected a number, found 'abc'"),
        ("NaN", "finite"),
        ("inf", "finite"),
        ("0", "must be positive"),
        ("-0.5", "must be positive"),
        ("", "is empty"),
    ] {
        let line = pillar_vols()
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap()
            .to_owned();
        assert_pillar_edit_refused(
            &line,
            &format!("{row}{bad}"),
            &[&fragments[..], &[message]].concat(),
        );
    }
}

#[test]
fn pillar_tenor_must_be_a_whole_positive_number_of_days() {
    for (bad, message) in [
        ("7.5", "whole number of days"),
        ("0", "whole number of days"),
        ("-30", "whole number of days"),
        ("1e12", "whole number of days"),
        ("week", "expected a number, found 'week'"),
        ("", "is empty"),
    ] {
        assert_pillar_edit_refused(
            "2024-01-03,BTC,30,",
            &format!("2024-01-03,BTC,{bad},"),
            &["row 10 (line 11)", "field 'tenor_days'", message],
        );
    }
}

#[test]
fn duplicated_pillar_row_is_refused_naming_both_rows() {
    let vols = pillar_vols();
    let line = vols
        .lines()
        .find(|l| l.starts_with("2024-01-03,BTC,30,"))
        .unwrap();
    let output = calibrate_pillars("vols.csv", &format!("{vols}{line}\n"), &[]);
    assert_error(
        &output,
        EXIT_INPUT,
        &[
            "vols.csv",
            "row 41 (line 42)",
            "field 'date'",
            "BTC at 30 days on 2024-01-03 is already given in row 10",
        ],
    );
}

#[test]
fn unparseable_pillar_date_and_empty_underlying_are_named() {
    assert_pillar_edit_refused(
        "2024-01-03,BTC,30,",
        "2024-13-03,BTC,30,",
        &["row 10 (line 11)", "field 'date'", "expected a date"],
    );
    assert_pillar_edit_refused(
        "2024-01-03,BTC,30,",
        "03/01/2024,BTC,30,",
        &["row 10 (line 11)", "field 'date'", "'03/01/2024'"],
    );
    assert_pillar_edit_refused(
        "2024-01-03,BTC,30,",
        "2024-01-03,,30,",
        &["row 10 (line 11)", "field 'underlying'", "is empty"],
    );
}

#[test]
fn pillar_with_too_few_dates_is_refused() {
    let vols = format!(
        "{}2024-01-01,BTC,90,0.6\n2024-01-02,BTC,90,0.61\n",
        pillar_vols()
    );
    assert_error(
        &calibrate_pillars("vols.csv", &vols, &[]),
        EXIT_INPUT,
        &[
            "vols.csv",
            "row 41 (line 42)",
            "field 'tenor_days'",
            "BTC at 90 days has 2 date(s)",
        ],
    );
}

/// A risk manager's vol file often covers more coins than the book's history: those rows are
/// checked, then ignored with a note (stderr and a TOML comment); a file with none of the
/// history's underlyings is an error.
#[test]
fn pillar_underlyings_outside_the_price_history_are_ignored_with_a_note() {
    let extra: String = (1..=5)
        .map(|day| format!("2024-01-{day:02},SOL,30,0.9{day}\n"))
        .collect();
    let output = calibrate_pillars("vols.csv", &format!("{}{extra}", pillar_vols()), &[]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("note:") && stderr.contains("SOL ignored"),
        "{stderr}"
    );
    assert!(stdout.contains("# note:") && stdout.contains("SOL ignored"));
    assert!(!stdout.contains("SOL.vol"), "{stdout}");
    // ignored rows are still checked
    let bad = format!("{}2024-01-01,SOL,30,zero\n", pillar_vols());
    assert_error(
        &calibrate_pillars("vols.csv", &bad, &[]),
        EXIT_INPUT,
        &["vols.csv", "row 41", "field 'vol'"],
    );
    assert_error(
        &calibrate_pillars(
            "vols.csv",
            &format!("date,underlying,tenor_days,vol\n{extra}"),
            &[],
        ),
        EXIT_INPUT,
        &[
            "vols.csv",
            "field 'underlying'",
            "no rows for any underlying",
            "SOL",
        ],
    );
}
