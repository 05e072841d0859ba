//! `grpo train --config RUN.toml` and `grpo eval --config RUN.toml --model DIR`.

use std::path::PathBuf;

use anyhow::Result;
use grpo::device::Backend;
use grpo::recipe::{Run, load_model};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The run: model, task, warm-up, GRPO settings and `[[verifiers]]` (see
    /// `examples/configs/`).
    #[arg(long)]
    config: PathBuf,
    /// The run directory (default: `runs/<name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the GRPO phase from the run directory's newest checkpoint.
    #[arg(long)]
    resume: bool,
    #[arg(long, value_enum, default_value_t)]
    device: Backend,
    /// Data parallel: spread each step over these devices (`flex`, `ndarray`, `wgpu`, or a
    /// `grpo worker`'s `ws://HOST:PORT`), comma-separated; overrides `devices` in the file.
    /// The weights and the optimizer stay on `--device`.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// Run the recipe this many times (seeds + 0, + 1, …, each in `seed-K/`) and report every
    /// arm and split as a mean with its 95% interval.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Change a key of the run file, `KEY=VALUE` with a dotted key (`--set grpo.beta=0.04
    /// --set sft.max_steps=200`); repeatable. The run directory's `run.toml` is the edited file.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn train(args: &TrainArgs) -> Result<()> {
    let mut run = Run::from_file_with_overrides(&args.config, &args.overrides)?;
    if !args.devices.is_empty() {
        run.set_devices(args.devices.clone());
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&run.config.name));
    if args.seeds > 1 {
        let started = std::time::Instant::now();
        let summary = run.execute_seeds(&out, &args.device.device()?, args.seeds, args.resume)?;
        println!("{}", summary.markdown());
        eprintln!(
            "{:.0} s; every seed's results and the summary in {}",
            started.elapsed().as_secs_f64(),
            out.display()
        );
        return Ok(());
    }
    let results = run.execute(&out, &args.device.device()?, args.resume)?;
    println!("{}", results.markdown());
    eprintln!(
        "{:.0} s; results, metrics and plots in {}",
        results.wall_s,
        out.display()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The run config whose evaluation splits and verifiers are used.
    #[arg(long)]
    config: PathBuf,
    /// The model directory (a Hugging Face one, or `warmup_model/` / a checkpoint of a run).
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    device: Backend,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let run = Run::from_file(&args.config)?;
    let (model, tokenizer) = load_model(&args.model, &args.device.device()?)?;
    let (_, sets) = run.data()?;
    let accuracy = run.evaluate(&model, tokenizer.as_ref(), &sets)?;
    println!("{}", serde_json::to_string_pretty(&accuracy)?);
    Ok(())
}
