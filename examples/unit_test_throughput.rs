//! Latency and throughput of the sandboxed unit-test runner on HumanEval's 164 canonical
//! solutions: `cargo run --release --features ndarray,wgpu --example unit_test_throughput`.
//!
//! Latency is per sample with one run at a time (median and p95); throughput is samples/s of a
//! batch scored with `workers = 2`.

use std::path::Path;
use std::time::Instant;

use grpo::data::{OnMalformed, read_humaneval};
use grpo::verifiers::unit_test::{UnitTestConfig, UnitTestRunner};
use grpo::verifiers::{Member, Sample, Verifier, VerifierSet};

fn main() -> anyhow::Result<()> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/humaneval/HumanEval.jsonl.gz");
    let rows = read_humaneval(&path, OnMalformed::Fail)?;
    let solution = |r: &grpo::data::Row| {
        r.get("canonical_solution")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let solutions: Vec<String> = rows.iter().map(solution).collect();

    let single = UnitTestRunner::new(UnitTestConfig {
        workers: 1,
        ..Default::default()
    })?;
    println!(
        "layers in use: {}",
        single
            .layers()
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut latencies: Vec<f64> = Vec::new();
    let mut passed = 0;
    for (row, code) in rows.iter().zip(&solutions) {
        let started = Instant::now();
        let score = single.verify(&Sample::new("", code, row.fields()))?;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
        passed += (score.correct == Some(true)) as usize;
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!("canonical solutions passing: {passed}/164");
    println!(
        "latency per sample, one at a time: median {:.0} ms, p95 {:.0} ms",
        at(0.5),
        at(0.95)
    );

    let set = VerifierSet::new(vec![(
        Member::new(
            "tests",
            UnitTestRunner::new(UnitTestConfig {
                workers: 2,
                ..Default::default()
            })?,
        ),
        1.0,
    )])?;
    let samples: Vec<Sample> = rows
        .iter()
        .zip(&solutions)
        .map(|(r, c)| Sample::new("", c, r.fields()))
        .collect();
    let started = Instant::now();
    let results = set.evaluate_batch(&samples);
    let seconds = started.elapsed().as_secs_f64();
    let ok = results.iter().filter(|e| e.correct == Some(true)).count();
    println!(
        "batch of 164 with workers = 2: {seconds:.1} s, {:.1} samples/s ({ok} passed)",
        164.0 / seconds
    );
    Ok(())
}
