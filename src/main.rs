//! The `grpo` command line.

mod data;
mod device;
mod sample;
mod score;

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
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
