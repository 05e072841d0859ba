//! `grpo plot METRICS.jsonl -o OUT.png`: a metric (or several) over steps, as a PNG.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use grpo::recipe::chart::{Chart, Series, save};
use grpo::trainer::read_metrics;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// A metrics file (`metrics.jsonl` of a run).
    metrics: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// Metrics to draw, comma-separated.
    #[arg(long, default_value = "reward", value_delimiter = ',')]
    keys: Vec<String>,
}

pub fn run(args: &PlotArgs) -> Result<()> {
    let metrics = read_metrics(&args.metrics)?;
    let series: Vec<Series> = args
        .keys
        .iter()
        .map(|key| Series::from_metrics(&metrics, key, key))
        .collect();
    for s in &series {
        ensure!(
            !s.points.is_empty(),
            "{}: no line has both `step` and `{}`",
            args.metrics.display(),
            s.name
        );
    }
    let chart = Chart {
        title: args.metrics.display().to_string(),
        x_label: "step".into(),
        y_label: args.keys.join(", "),
        series,
    };
    save(&chart, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}
