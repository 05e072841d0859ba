//! Figures for grpo-data: rows/s reading GSM8K, deduplicating its train split, and generating
//! the procedural tasks. `cargo run --release --features ndarray,wgpu --example data_throughput`
//! (the features only make it reuse the test build).

use std::path::Path;
use std::time::Instant;

use grpo::data::tasks::{ArithmeticTask, CountdownTask, Split, Task};
use grpo::data::{DedupConfig, Deduplicator, OnMalformed, read_gsm8k};

/// The best of `runs` timings of `work`, which returns how many rows it handled.
fn rows_per_second(runs: usize, mut work: impl FnMut() -> usize) -> f64 {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let rows = work();
            rows as f64 / started.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn main() -> anyhow::Result<()> {
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gsm8k/train.jsonl");
    anyhow::ensure!(train.exists(), "{} is absent", train.display());
    let read = rows_per_second(5, || read_gsm8k(&train, OnMalformed::Fail).unwrap().len());
    println!("read GSM8K train (7,473 rows): {read:>10.0} rows/s");
    let rows = read_gsm8k(&train, OnMalformed::Fail)?;
    let dedup = rows_per_second(3, || {
        let mut dedup = Deduplicator::new(DedupConfig::default()).unwrap();
        for row in &rows {
            dedup.check(row.prompt());
        }
        rows.len()
    });
    println!("dedup GSM8K train (exact + MinHash, 128 permutations): {dedup:>10.0} rows/s");
    for task in [
        &ArithmeticTask::default() as &dyn Task,
        &CountdownTask::default(),
    ] {
        for split in [Split::Train, Split::OodComposition] {
            let made = rows_per_second(3, || task.generate(split, 5000, 1).unwrap().len());
            println!("make {} {split}: {made:>10.0} rows/s", task.name());
        }
    }
    Ok(())
}
