//! `grpo merge --base DIR --adapter DIR -o OUT`: folds a LoRA adapter into its base model and
//! writes one plain Hugging Face directory (what `transformers` or an inference server loads).

use std::path::PathBuf;

use anyhow::{Context, Result};
use grpo::policy::CausalLm;

use grpo::device::Backend;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The model the adapter was trained on: a Hugging Face directory or one of our own.
    #[arg(long)]
    base: PathBuf,
    /// A PEFT adapter directory (`adapter_config.json` + `adapter_model.safetensors`), ours
    /// (`grpo_adapter/`, a checkpoint) or one trained by peft.
    #[arg(long)]
    adapter: PathBuf,
    /// Where the merged model goes (`config.json` + `model.safetensors`; the tokenizer files
    /// of the base are copied beside them).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    device: Backend,
}

/// The base's files an inference stack needs beside the weights.
const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
];

pub fn run(args: &MergeArgs) -> Result<()> {
    let device = args.device.device()?;
    let base = CausalLm::load(&args.base, &device)?;
    if base.lora().is_some() {
        anyhow::bail!(
            "{}: this directory carries an adapter of its own; give the plain base model",
            args.base.display()
        );
    }
    let merged = base.load_adapter(&args.adapter)?.merge_adapters();
    merged.save_safetensors(&args.output)?;
    for name in TOKENIZER_FILES {
        let from = args.base.join(name);
        if from.exists() {
            grpo::base::replace(&args.output.join(name), |temp| {
                std::fs::copy(&from, temp)
                    .map(|_| ())
                    .with_context(|| format!("copying {}", from.display()))
            })?;
        }
    }
    eprintln!(
        "merged {} into {}: {}",
        args.adapter.display(),
        args.base.display(),
        args.output.display()
    );
    Ok(())
}
