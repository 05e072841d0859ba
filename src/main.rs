//! The `grpo` command line.

mod chart;
mod data;
mod merge;
mod sample;
mod score;
mod train;
mod worker;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "grpo",
    version,
    about = "GRPO: reinforcement learning from verifiable rewards"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score completions with the verifiers of a V.toml: one JSON line out per line in.
    Score(score::ScoreArgs),
    /// Sample completions from a model (a Hugging Face directory or one of our checkpoints).
    Sample(sample::SampleArgs),
    /// Run a whole recipe from a config: warm-up, GRPO, control arm, evaluation, plots.
    Train(train::TrainArgs),
    /// Evaluate a model on a run config's splits (greedy pass@1).
    Eval(train::EvalArgs),
    /// Fold a LoRA adapter into its base: one plain Hugging Face model directory.
    Merge(merge::MergeArgs),
    /// Plot metrics of a `metrics.jsonl` over steps as a PNG.
    Plot(chart::PlotArgs),
    /// Serve this machine's device to a run elsewhere, which lists it as `ws://HOST:PORT`.
    Worker(worker::WorkerArgs),
    /// Datasets: make procedural task rows, deduplicate JSONL.
    #[command(subcommand)]
    Data(data::DataCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Score(args) => score::run(&args),
        Command::Sample(args) => sample::run(&args),
        Command::Data(command) => data::run(&command),
        Command::Train(args) => train::train(&args),
        Command::Eval(args) => train::eval(&args),
        Command::Plot(args) => chart::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Worker(args) => worker::run(&args),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
