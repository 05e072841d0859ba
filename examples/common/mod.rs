//! What the recipe examples share: their command line and their `main`.

use std::path::PathBuf;

use clap::Parser;
use grpo::device::Backend;
use grpo::recipe::Run;

/// Command-line options every recipe example takes.
#[derive(Parser)]
pub struct ExampleArgs {
    /// The run directory (default: `runs/<name>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub device: Backend,
    /// Continue the GRPO phase from the run directory's newest checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Start from this model directory instead of the config's model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Override `grpo.max_steps` (a quick look, or a plumbing check): `--set grpo.max_steps=N`.
    #[arg(long)]
    pub grpo_steps: Option<usize>,
    /// Run the recipe this many times (seeds + 0, + 1, …) and print means with 95% intervals.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Change a key of the recipe, `KEY=VALUE` with a dotted key (`--set grpo.beta=0.04`);
    /// repeatable, as `grpo train --set`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Parses [`ExampleArgs`], runs the recipe `text` (from `origin`), prints the results table.
pub fn example_main(text: &str, origin: &str) -> anyhow::Result<()> {
    let args = ExampleArgs::parse();
    // As an override, so that the step count is validated and the saved run.toml says it.
    let mut overrides = args.overrides;
    overrides.extend(args.grpo_steps.map(|n| format!("grpo.max_steps={n}")));
    let mut run = Run::from_str_with_overrides(text, origin, &overrides)?;
    if let Some(dir) = args.model {
        run.config.model.dir = Some(dir);
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(&run.config.name));
    if args.seeds > 1 {
        let started = std::time::Instant::now();
        let summary = run.execute_seeds(&out, &args.device.device()?, args.seeds, args.resume)?;
        println!("\n{}", summary.markdown());
        println!(
            "{:.0} s in all; every seed's results and the summary in {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
        return Ok(());
    }
    let results = run.execute(&out, &args.device.device()?, args.resume)?;
    println!(
        "\nGreedy accuracy (pass@1) per split, {:.0} s in all:\n",
        results.wall_s
    );
    println!("{}", results.markdown());
    println!(
        "phases (s): {}",
        results
            .phases_s
            .iter()
            .map(|(k, v)| format!("{k} {v:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("written to {}", out.display());
    Ok(())
}
