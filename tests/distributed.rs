//! The shipped distributed driver: the sample scenario as shards on a Dask LocalCluster
//! (distributed/run.sh creates its virtual environment on first use), merged, equals the
//! single-machine run to the last bit.

mod common;

use std::path::Path;
use std::process::Command;

use common::{sample, tailrisk};

#[test]
fn dask_driver_reproduces_the_single_machine_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fund = sample("fund.toml");
    let out = tempfile::tempdir().unwrap();
    let driver = Command::new(root.join("distributed/run.sh"))
        .arg(&fund)
        .args([
            "--shards",
            "4",
            "--paths",
            "30000",
            "--workers",
            "2",
            "--format",
            "json",
        ])
        .arg("--out")
        .arg(out.path())
        .arg("--tailrisk")
        .arg(env!("CARGO_BIN_EXE_tailrisk"))
        .output()
        .expect("the driver runs");
    assert!(
        driver.status.success(),
        "driver failed: {}",
        String::from_utf8_lossy(&driver.stderr)
    );
    let single = tailrisk(&[
        "run",
        fund.to_str().unwrap(),
        "--format",
        "json",
        "--paths",
        "30000",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&driver.stdout),
        String::from_utf8_lossy(&single.stdout)
    );
    for i in 0..4 {
        assert!(out.path().join(format!("shard-{i}-of-4.parquet")).exists());
    }
}
